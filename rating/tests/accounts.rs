//! Accounts over the `office` tariff plan in `tests/data/tariffplans/`: an
//! account topped up with 25 as its `ACT_OFFICE_CREDIT` action does, calls
//! to 1002 (0.4 to connect, 0.2 the first minute, then 0.1 a minute by the
//! second), to 1003 (0.01 a second, MaxCost 0.12 `*disconnect`) and
//! messages (0.01 each). Expectations are worked out by hand in comments.
#![allow(clippy::unwrap_used)] // test helpers panic on purpose

use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use rating::{
    Account, AccountStore, AccountStoreExt, Balance, BalanceType, CallDescriptor, LoadOptions,
    MemoryAccounts, RoundingMode, TariffPlan, Tor, max_usage,
};
use rust_decimal::Decimal;

fn office() -> TariffPlan {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/data/tariffplans/office");
    let opts = LoadOptions {
        loaded_at: Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap(),
    };
    TariffPlan::load_dir(&dir, &opts).unwrap().0
}

fn d(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

fn at() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 5, 13, 10, 0, 0).unwrap()
}

fn topped_up() -> Account {
    let mut a = Account::new("cgrates.org", "1001");
    a.add_balance(
        BalanceType::Monetary,
        Balance {
            id: "office_main".into(),
            value: d("25"),
            weight: Decimal::from(10),
            ..Balance::default()
        },
    );
    a
}

fn main_value(a: &Account) -> Decimal {
    a.balances_of(BalanceType::Monetary)[0].value
}

// 0.4 + 0.2 leaves 24.4: 244 minutes more at 0.1 -> 245 minutes.
#[test]
fn max_usage_to_1002_from_25() {
    let p = office();
    let c = CallDescriptor::new("1001", "1002", at(), Duration::from_secs(6 * 3600));
    let m = max_usage(&topped_up(), &c, &p, RoundingMode::Exact, at()).unwrap();
    assert_eq!(m, Duration::from_secs(245 * 60));
}

// 1003: 0.01/s, cut at MaxCost 0.12 -> 12 s.
#[test]
fn max_usage_to_1003_stops_at_max_cost() {
    let p = office();
    let c = CallDescriptor::new("1001", "1003", at(), Duration::from_secs(60));
    let m = max_usage(&topped_up(), &c, &p, RoundingMode::Exact, at()).unwrap();
    assert_eq!(m, Duration::from_secs(12));
}

// 90 s to 1002 through the store: 0.65 exact, 0.6501 with CGRateS's
// rounding (its published figure for these rates).
#[test]
fn debit_90s_in_both_modes() {
    let p = office();
    for (mode, left) in [
        (RoundingMode::Exact, "24.35"),
        (RoundingMode::Cgrates, "24.3499"),
    ] {
        let store = MemoryAccounts::new();
        store.set(topped_up()).unwrap();
        let c = CallDescriptor::new("1001", "1002", at(), Duration::from_secs(90));
        store
            .debit_call("cgrates.org", "1001", &c, &p, mode, at())
            .unwrap();
        let a = store.get("cgrates.org", "1001").unwrap().unwrap();
        assert_eq!(main_value(&a), d(left), "{}", mode.as_str());
    }
}

// Messages: an *sms balance of 2 (empty rating subject: free units by 1)
// pays two messages, the third costs 0.01 of money.
#[test]
fn sms_units_then_money() {
    let p = office();
    let mut a = topped_up();
    a.add_balance(
        BalanceType::Sms,
        Balance {
            id: "sms_bundle".into(),
            value: Decimal::from(2),
            ..Balance::default()
        },
    );
    let store = MemoryAccounts::new();
    store.set(a).unwrap();
    for _ in 0..3 {
        let mut c = CallDescriptor::new("1001", "1002", at(), Duration::from_nanos(1));
        c.category = "sms";
        c.tor = Tor::Sms;
        store
            .debit_call("cgrates.org", "1001", &c, &p, RoundingMode::Exact, at())
            .unwrap();
    }
    let a = store.get("cgrates.org", "1001").unwrap().unwrap();
    assert_eq!(a.balances_of(BalanceType::Sms)[0].value, Decimal::ZERO);
    assert_eq!(main_value(&a), d("24.99"));
}
