//! Account tests: each expectation is worked out by hand in the comment
//! above it, from the small plan below (the tutorial's 0.4 connect fee,
//! 0.2 the first minute, then 0.1 a minute by the second, for 1002).

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use rust_decimal::Decimal;

use super::*;
use crate::{CallDescriptor, Error, LoadOptions, RoundingMode, TariffPlan};

fn plan() -> TariffPlan {
    let files = [
        (
            "Timings.csv",
            "#Tag,Years,Months,MonthDays,WeekDays,Time\nTM_WEEKEND,*any,*any,*any,6;7,00:00:00\n",
        ),
        (
            "Destinations.csv",
            "#Id,Prefix\nDST_1002,1002\nDST_1003,1003\nDST_UK,44\nDST_MOBILE,447\n",
        ),
        (
            "Rates.csv",
            "#Id,ConnectFee,Rate,RateUnit,RateIncrement,GroupIntervalStart\n\
             RT_STD,0.4,0.2,60s,60s,0s\nRT_STD,0,0.1,60s,1s,60s\n\
             RT_MOB,0,0.3,60s,60s,0s\nRT_UK,0,0.06,60s,1s,0s\n\
             RT_SEC,0,0.01,1s,1s,0s\nRT_UNITS,0,0.6,60s,60s,0s\n",
        ),
        (
            "DestinationRates.csv",
            "#Id,DestinationId,RatesTag,RoundingMethod,RoundingDecimals,MaxCost,MaxCostStrategy\n\
             DR_1002,DST_1002,RT_STD,*up,4,0,\nDR_MOB,DST_MOBILE,RT_MOB,*up,4,0,\n\
             DR_UK,DST_UK,RT_UK,*up,4,0,\nDR_CUT,DST_1003,RT_SEC,*up,4,0.12,*disconnect\n\
             DR_UNITS,*any,RT_UNITS,*up,4,0,\n",
        ),
        (
            "RatingPlans.csv",
            "#Id,DestinationRatesId,TimingTag,Weight\n\
             RP_STD,DR_1002,*any,10\nRP_STD,DR_MOB,*any,10\nRP_STD,DR_UK,*any,10\n\
             RP_STD,DR_CUT,*any,10\nRP_UNITS,DR_UNITS,*any,10\n",
        ),
        (
            "RatingProfiles.csv",
            "#Tenant,Category,Subject,ActivationTime,RatingPlanId,RatesFallbackSubject\n\
             cgrates.org,call,1001,2014-01-01T00:00:00Z,RP_STD,\n\
             cgrates.org,call,rs_units,2014-01-01T00:00:00Z,RP_UNITS,\n",
        ),
    ];
    let v: Vec<(&Path, &str)> = files.iter().map(|(n, t)| (Path::new(*n), *t)).collect();
    let opts = LoadOptions {
        loaded_at: Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap(),
    };
    TariffPlan::from_csv(&v, &opts).unwrap().0
}

fn d(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 5, 13, 10, 0, 0).unwrap()
}

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 5, 13, 10, 5, 0).unwrap()
}

fn call(dest: &str, secs: u64) -> CallDescriptor<'_> {
    CallDescriptor::new("1001", dest, start(), Duration::from_secs(secs))
}

fn money(id: &str, value: &str, weight: i64) -> Balance {
    Balance {
        id: id.into(),
        value: d(value),
        weight: Decimal::from(weight),
        ..Balance::default()
    }
}

fn voice(id: &str, secs: u64, subject: &str) -> Balance {
    Balance {
        id: id.into(),
        value: Decimal::from(secs * 1_000_000_000),
        rating_subject: subject.into(),
        ..Balance::default()
    }
}

fn account(balances: Vec<(BalanceType, Balance)>) -> Account {
    let mut a = Account::new("cgrates.org", "1001");
    for (t, b) in balances {
        a.add_balance(t, b);
    }
    a
}

fn value(a: &Account, t: BalanceType, id: &str) -> Decimal {
    a.balances_of(t).iter().find(|b| b.id == id).unwrap().value
}

const NS: u64 = 1_000_000_000;

#[test]
fn destination_ids_for_lists_longest_prefix_first() {
    let p = plan();
    let ids: Vec<(usize, String)> = p
        .destination_ids_for("447700")
        .into_iter()
        .map(|(l, id)| (l, id.to_string()))
        .collect();
    assert_eq!(ids, vec![(3, "DST_MOBILE".into()), (2, "DST_UK".into())]);
    assert!(p.destination_ids_for("999").is_empty());
}

// 90 s to 1002 with 60 s of *zero1s and 10 of money: connect fee 0.4, the
// first 60 s free, then 30 s from 60 s at 0.1/min by the second = 0.05.
#[test]
fn free_zero1s_units_are_consumed_before_money() {
    let p = plan();
    let mut a = account(vec![
        (BalanceType::Monetary, money("main", "10", 10)),
        (BalanceType::Voice, voice("free", 60, "*zero1s")),
    ]);
    let out = debit(&mut a, &call("1002", 90), &p, RoundingMode::Exact, now()).unwrap();
    assert_eq!(value(&a, BalanceType::Voice, "free"), Decimal::ZERO);
    assert_eq!(value(&a, BalanceType::Monetary, "main"), d("9.55"));
    assert_eq!(out.cost, d("0.45"));
    assert_eq!(out.connect_fee, d("0.4"));
    assert_eq!(out.unit_usage, Duration::from_secs(60));
    assert_eq!(a.update_time, Some(now()));
}

// *zero1m units go by whole minutes: 61 s takes 2 minutes of the balance;
// the connect fee is still charged once from money.
#[test]
fn zero1m_consumes_whole_minutes_and_connect_fee_is_charged_once() {
    let p = plan();
    let mut a = account(vec![
        (BalanceType::Monetary, money("main", "10", 10)),
        (BalanceType::Voice, voice("free", 300, "*zero1m")),
    ]);
    let out = debit(&mut a, &call("1002", 61), &p, RoundingMode::Exact, now()).unwrap();
    assert_eq!(
        value(&a, BalanceType::Voice, "free"),
        Decimal::from(180 * NS)
    );
    assert_eq!(value(&a, BalanceType::Monetary, "main"), d("9.6"));
    let fees = out
        .charges
        .iter()
        .filter(|c| c.kind == ChargeKind::ConnectFee)
        .count();
    assert_eq!(fees, 1);
    // A second piece of the same call (offset 61 s) pays no connect fee:
    // 30 s at 0.1/min = 0.05, from money once the units are gone.
    let mut piece = call("1002", 30);
    piece.offset = Duration::from_secs(61);
    let mut b = account(vec![(BalanceType::Monetary, money("main", "1", 10))]);
    let out = debit(&mut b, &piece, &p, RoundingMode::Exact, now()).unwrap();
    assert_eq!(out.connect_fee, Decimal::ZERO);
    assert_eq!(value(&b, BalanceType::Monetary, "main"), d("0.95"));
}

// A balance for everything but DST_MOBILE: a mobile number (447...) pays
// from money (60 s at 0.3/min), a UK fixed number (44...) from the units.
#[test]
fn balance_excluding_mobile_is_skipped_for_mobile_numbers() {
    let p = plan();
    let mut free = voice("not_mobile", 600, "*zero1s");
    free.destination_ids = parse_filter_set("!DST_MOBILE");
    let mk = || {
        account(vec![
            (BalanceType::Monetary, money("main", "10", 10)),
            (BalanceType::Voice, free.clone()),
        ])
    };
    let mut a = mk();
    debit(
        &mut a,
        &call("447700900", 60),
        &p,
        RoundingMode::Exact,
        now(),
    )
    .unwrap();
    assert_eq!(
        value(&a, BalanceType::Voice, "not_mobile"),
        Decimal::from(600 * NS)
    );
    assert_eq!(value(&a, BalanceType::Monetary, "main"), d("9.7"));
    let mut b = mk();
    debit(
        &mut b,
        &call("441234567", 60),
        &p,
        RoundingMode::Exact,
        now(),
    )
    .unwrap();
    assert_eq!(
        value(&b, BalanceType::Voice, "not_mobile"),
        Decimal::from(540 * NS)
    );
    assert_eq!(value(&b, BalanceType::Monetary, "main"), d("10"));
}

#[test]
fn balance_for_a_destination_is_used_only_there() {
    let p = plan();
    let mut uk = voice("uk", 600, "*zero1s");
    uk.destination_ids = parse_filter_set("DST_UK");
    let mut a = account(vec![
        (BalanceType::Monetary, money("main", "10", 10)),
        (BalanceType::Voice, uk),
    ]);
    // 1002 is not DST_UK: money pays 0.4 + 0.2.
    debit(&mut a, &call("1002", 60), &p, RoundingMode::Exact, now()).unwrap();
    assert_eq!(value(&a, BalanceType::Monetary, "main"), d("9.4"));
    // A UK mobile is in DST_UK too (a shorter prefix): the units pay.
    debit(
        &mut a,
        &call("447700900", 60),
        &p,
        RoundingMode::Exact,
        now(),
    )
    .unwrap();
    assert_eq!(value(&a, BalanceType::Voice, "uk"), Decimal::from(540 * NS));
}

#[test]
fn expired_disabled_and_other_category_balances_are_ignored() {
    let p = plan();
    let mut expired = voice("expired", 600, "*zero1s");
    expired.expiration = Some(start());
    let mut disabled = voice("disabled", 600, "*zero1s");
    disabled.disabled = true;
    let mut sms_only = voice("sms_only", 600, "*zero1s");
    sms_only.categories = parse_filter_set("sms");
    let mut a = account(vec![
        (BalanceType::Monetary, money("main", "10", 10)),
        (BalanceType::Voice, expired),
        (BalanceType::Voice, disabled),
        (BalanceType::Voice, sms_only),
    ]);
    debit(&mut a, &call("1002", 60), &p, RoundingMode::Exact, now()).unwrap();
    assert_eq!(value(&a, BalanceType::Monetary, "main"), d("9.4"));
    for id in ["expired", "disabled", "sms_only"] {
        assert_eq!(value(&a, BalanceType::Voice, id), Decimal::from(600 * NS));
    }
}

// A weekend-only balance: not on Monday 2024-05-13, used on Saturday
// 2024-05-18; a timing the plan does not know never matches.
#[test]
fn balance_timings_limit_when_it_is_used() {
    let p = plan();
    let mut weekend = voice("weekend", 600, "*zero1s");
    weekend.timing_ids.insert("TM_WEEKEND".into());
    let mut unknown = voice("unknown", 600, "*zero1s");
    unknown.timing_ids.insert("TM_NOPE".into());
    let mut a = account(vec![
        (BalanceType::Monetary, money("main", "10", 10)),
        (BalanceType::Voice, weekend),
        (BalanceType::Voice, unknown),
    ]);
    debit(&mut a, &call("1002", 60), &p, RoundingMode::Exact, now()).unwrap();
    assert_eq!(value(&a, BalanceType::Monetary, "main"), d("9.4"));
    let mut sat = call("1002", 60);
    sat.start = Utc.with_ymd_and_hms(2024, 5, 18, 10, 0, 0).unwrap();
    debit(&mut a, &sat, &p, RoundingMode::Exact, now()).unwrap();
    assert_eq!(
        value(&a, BalanceType::Voice, "weekend"),
        Decimal::from(540 * NS)
    );
    assert_eq!(
        value(&a, BalanceType::Voice, "unknown"),
        Decimal::from(600 * NS)
    );
}

// Higher weight first: the 20-weight balance pays until it cannot pay the
// next increment, then the 10-weight one.
#[test]
fn monetary_balances_pay_by_weight() {
    let p = plan();
    let mut a = account(vec![
        (BalanceType::Monetary, money("low", "10", 10)),
        (BalanceType::Monetary, money("high", "0.5", 20)),
    ]);
    // 0.4 fee + 0.2 first minute + 0.05 = 0.65: the fee from high (0.1
    // left), the 0.2 minute from low (high cannot pay it), then the 30
    // increments of 0.1/60 from high again (0.05).
    let out = debit(&mut a, &call("1002", 90), &p, RoundingMode::Exact, now()).unwrap();
    assert_eq!(value(&a, BalanceType::Monetary, "high"), d("0.05"));
    assert_eq!(value(&a, BalanceType::Monetary, "low"), d("9.8"));
    assert_eq!(out.cost, d("0.65"));
}

#[test]
fn blocker_stops_the_walk() {
    let p = plan();
    // A blocker unit balance of 30 s: the rest of a 90 s call may not be
    // paid from money.
    let mut blocker = voice("blocker", 30, "*zero1s");
    blocker.blocker = true;
    let mut a = account(vec![
        (BalanceType::Monetary, money("main", "10", 10)),
        (BalanceType::Voice, blocker.clone()),
    ]);
    let before = a.clone();
    let err = debit(&mut a, &call("1002", 90), &p, RoundingMode::Exact, now()).unwrap_err();
    assert_eq!(err.reason(), "INSUFFICIENT_CREDIT");
    assert_eq!(a, before, "a failed debit changes nothing");
    // The same balance without the flag lets money pay the rest.
    blocker.blocker = false;
    let mut b = account(vec![
        (BalanceType::Monetary, money("main", "10", 10)),
        (BalanceType::Voice, blocker),
    ]);
    debit(&mut b, &call("1002", 90), &p, RoundingMode::Exact, now()).unwrap();
    // 0.4 fee; the money piece starts at 30 s, in the first-minute group:
    // one 60 s increment (0.2) takes it to 90 s.
    assert_eq!(value(&b, BalanceType::Monetary, "main"), d("9.4"));
    // A monetary blocker that cannot pay the connect fee stops the search.
    let mut m = money("small", "0.1", 20);
    m.blocker = true;
    let mut c = account(vec![
        (BalanceType::Monetary, money("main", "10", 10)),
        (BalanceType::Monetary, m),
    ]);
    assert!(matches!(
        debit(&mut c, &call("1002", 90), &p, RoundingMode::Exact, now()),
        Err(Error::InsufficientCredit { .. })
    ));
}

#[test]
fn insufficient_credit_is_an_error_and_changes_nothing() {
    let p = plan();
    let mut a = account(vec![(BalanceType::Monetary, money("main", "0.5", 10))]);
    let before = a.clone();
    let err = debit(&mut a, &call("1002", 90), &p, RoundingMode::Exact, now()).unwrap_err();
    match err {
        // 0.4 paid, 0.2 minute unpaid (0.1 left cannot pay it), then 0.05
        // paid by the 0.1 left: 0.2 missing.
        Error::InsufficientCredit { missing, .. } => assert_eq!(missing, d("0.2")),
        e => panic!("{e}"),
    }
    assert_eq!(a, before);
}

// The 0.2 nobody can pay goes on the `*default` balance, created for it
// as CGRateS does (main pays the fee and the last 30 s: 0.05 left).
#[test]
fn allow_negative_takes_the_default_balance_below_zero() {
    let p = plan();
    let mut a = account(vec![(BalanceType::Monetary, money("main", "0.5", 10))]);
    a.allow_negative = true;
    let out = debit(&mut a, &call("1002", 90), &p, RoundingMode::Exact, now()).unwrap();
    assert_eq!(value(&a, BalanceType::Monetary, "main"), d("0.05"));
    assert_eq!(
        value(&a, BalanceType::Monetary, DEFAULT_BALANCE_ID),
        d("-0.2")
    );
    assert_eq!(out.negative, d("0.2"));
    assert_eq!(out.cost, d("0.65"));
    // An existing *default balance is the one that goes negative.
    let mut b = account(vec![
        (BalanceType::Monetary, money("main", "0", 20)),
        (BalanceType::Monetary, money(DEFAULT_BALANCE_ID, "0.1", 0)),
    ]);
    b.allow_negative = true;
    debit(&mut b, &call("1002", 60), &p, RoundingMode::Exact, now()).unwrap();
    assert_eq!(
        value(&b, BalanceType::Monetary, DEFAULT_BALANCE_ID),
        d("-0.5")
    );
    assert_eq!(b.balances_of(BalanceType::Monetary).len(), 2);
}

// A unit balance with a real rating subject: its units pay the usage and
// their price at rs_units (0.6/min) comes from money.
#[test]
fn units_with_a_rating_subject_are_priced_and_paid_from_money() {
    let p = plan();
    let mut a = account(vec![
        (BalanceType::Monetary, money("main", "10", 10)),
        (BalanceType::Voice, voice("priced", 120, "rs_units")),
    ]);
    let out = debit(&mut a, &call("1002", 60), &p, RoundingMode::Exact, now()).unwrap();
    assert_eq!(
        value(&a, BalanceType::Voice, "priced"),
        Decimal::from(60 * NS)
    );
    assert_eq!(value(&a, BalanceType::Monetary, "main"), d("9.0"));
    assert_eq!(out.cost, d("1.0"));
}

// CGRateS rounds each increment to 5 decimals: 30 x 0.00167 = 0.0501, so 90
// s cost 0.6501 (its published figure); exact mode charges 0.65.
#[test]
fn cgrates_rounding_moves_balances_to_cgrates_digit() {
    let p = plan();
    let mut a = account(vec![(BalanceType::Monetary, money("main", "10", 10))]);
    let out = debit(&mut a, &call("1002", 90), &p, RoundingMode::Cgrates, now()).unwrap();
    assert_eq!(out.cost, d("0.6501"));
    assert_eq!(value(&a, BalanceType::Monetary, "main"), d("9.3499"));
}

#[test]
fn refund_gives_back_a_reservation() {
    let p = plan();
    let mut a = account(vec![
        (BalanceType::Monetary, money("main", "10", 10)),
        (BalanceType::Voice, voice("free", 60, "*zero1s")),
    ]);
    let before = a.clone();
    let out = debit(&mut a, &call("1002", 90), &p, RoundingMode::Exact, now()).unwrap();
    assert_ne!(a.balances, before.balances);
    let lost = refund(&mut a, &out, now());
    assert!(lost.is_empty());
    assert_eq!(a.balances, before.balances);
}

// Reserve 300 s, the call lasts 90 s: the account ends as if 90 s had
// been debited (0.4 + 0.2 + 0.05 from 10, 60 s of units first).
#[test]
fn settle_leaves_only_the_real_usage_debited() {
    let p = plan();
    let mk = || {
        account(vec![
            (BalanceType::Monetary, money("main", "10", 10)),
            (BalanceType::Voice, voice("free", 60, "*zero1s")),
        ])
    };
    let mut a = mk();
    let reserved = debit(&mut a, &call("1002", 300), &p, RoundingMode::Exact, now()).unwrap();
    let out = settle(
        &mut a,
        &reserved,
        &call("1002", 90),
        &p,
        RoundingMode::Exact,
        now(),
    )
    .unwrap();
    let mut direct = mk();
    debit(
        &mut direct,
        &call("1002", 90),
        &p,
        RoundingMode::Exact,
        now(),
    )
    .unwrap();
    assert_eq!(a.balances, direct.balances);
    assert_eq!(value(&a, BalanceType::Monetary, "main"), d("9.55"));
    assert_eq!(out.cost, d("0.45"));
}

// 1.0 of money: 0.4 fee + 0.2 first minute leaves 0.4, which pays 240 s
// at 0.1/min by the second: 300 s.
#[test]
fn max_usage_from_money_at_a_per_minute_rate() {
    let p = plan();
    let a = account(vec![(BalanceType::Monetary, money("main", "1", 10))]);
    let m = max_usage(&a, &call("1002", 3600), &p, RoundingMode::Exact, now()).unwrap();
    assert_eq!(m, Duration::from_secs(300));
    // Capped by the usage asked.
    let m = max_usage(&a, &call("1002", 100), &p, RoundingMode::Exact, now()).unwrap();
    assert_eq!(m, Duration::from_secs(100));
    // Not enough for the connect fee and a first minute: 0... only what
    // the fee and the first 60 s increment allow.
    let poor = account(vec![(BalanceType::Monetary, money("main", "0.5", 10))]);
    let m = max_usage(&poor, &call("1002", 3600), &p, RoundingMode::Exact, now()).unwrap();
    assert_eq!(m, Duration::ZERO);
}

// 60 s free, then 0.6 after the fee: 360 s more at 0.1/min by the second.
#[test]
fn max_usage_adds_free_units_and_money() {
    let p = plan();
    let a = account(vec![
        (BalanceType::Monetary, money("main", "1", 10)),
        (BalanceType::Voice, voice("free", 60, "*zero1s")),
    ]);
    let m = max_usage(&a, &call("1002", 3600), &p, RoundingMode::Exact, now()).unwrap();
    assert_eq!(m, Duration::from_secs(420));
}

// 1003 costs 0.01/s with MaxCost 0.12 *disconnect: 12 s at most, however
// much money there is; AllowNegative gets what it asks.
#[test]
fn max_usage_stops_at_disconnect_max_cost() {
    let p = plan();
    let mut a = account(vec![(BalanceType::Monetary, money("main", "100", 10))]);
    let m = max_usage(&a, &call("1003", 60), &p, RoundingMode::Exact, now()).unwrap();
    assert_eq!(m, Duration::from_secs(12));
    a.allow_negative = true;
    let m = max_usage(&a, &call("1002", 60), &p, RoundingMode::Exact, now()).unwrap();
    assert_eq!(m, Duration::from_secs(60));
}

#[test]
fn disabled_account_cannot_be_debited() {
    let p = plan();
    let mut a = account(vec![(BalanceType::Monetary, money("main", "10", 10))]);
    a.disabled = true;
    let err = debit(&mut a, &call("1002", 60), &p, RoundingMode::Exact, now()).unwrap_err();
    assert_eq!(err.reason(), "ACCOUNT_DISABLED");
}

// 8 threads x 25 debits of 0.6 (60 s to 1002) on 100: exactly 166 succeed
// and 0.4 is left, whatever the interleaving.
#[test]
fn concurrent_debits_never_spend_the_same_money_twice() {
    let p = Arc::new(plan());
    let store = Arc::new(MemoryAccounts::new());
    store
        .set(account(vec![(
            BalanceType::Monetary,
            money("main", "100", 10),
        )]))
        .unwrap();
    let handles: Vec<_> = (0..8)
        .map(|_| {
            let (p, store) = (p.clone(), store.clone());
            std::thread::spawn(move || {
                let mut ok = 0_u32;
                for _ in 0..25 {
                    let c = call("1002", 60);
                    match store.debit_call(
                        "cgrates.org",
                        "1001",
                        &c,
                        &p,
                        RoundingMode::Exact,
                        now(),
                    ) {
                        Ok(_) => ok += 1,
                        Err(Error::InsufficientCredit { .. }) => {}
                        Err(e) => panic!("{e}"),
                    }
                }
                ok
            })
        })
        .collect();
    let ok: u32 = handles.into_iter().map(|h| h.join().unwrap()).sum();
    assert_eq!(ok, 166);
    let a = store.get("cgrates.org", "1001").unwrap().unwrap();
    assert_eq!(value(&a, BalanceType::Monetary, "main"), d("0.4"));
}

#[test]
fn memory_store_lists_removes_and_refuses_unknown_accounts() {
    let store = MemoryAccounts::new();
    store.set(Account::new("t", "b")).unwrap();
    store.set(Account::new("t", "a")).unwrap();
    store.set(Account::new("u", "c")).unwrap();
    let ids: Vec<String> = store.list("t").unwrap().into_iter().map(|a| a.id).collect();
    assert_eq!(ids, ["a", "b"]);
    assert!(store.remove("t", "a").unwrap());
    assert!(!store.remove("t", "a").unwrap());
    let err = store.update_with("t", "zz", |_| Ok(())).unwrap_err();
    assert_eq!(err.reason(), "ACCOUNT_NOT_FOUND");
    // A failing update leaves the account as it was.
    let r: Result<(), Error> = store.update_with("t", "b", |a| {
        a.disabled = true;
        Err(Error::Store("no".into()))
    });
    assert!(r.is_err());
    assert!(!store.get("t", "b").unwrap().unwrap().disabled);
}

#[test]
fn json_has_cgrates_account_shape_and_round_trips() {
    let mut b = voice("free", 60, "*zero1s");
    b.destination_ids = parse_filter_set("DST_UK;!DST_MOBILE");
    b.expiration = Some(Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap());
    let mut a = account(vec![
        (BalanceType::Monetary, money("main", "10.125", 10)),
        (BalanceType::Voice, b),
    ]);
    a.update_time = Some(now());
    let j = serde_json::to_value(&a).unwrap();
    assert_eq!(j["ID"], "cgrates.org:1001");
    let m = &j["BalanceMap"]["*monetary"][0];
    assert_eq!(m["ID"], "main");
    assert_eq!(m["Value"], "10.125");
    assert_eq!(m["ExpirationDate"], "0001-01-01T00:00:00Z");
    let v = &j["BalanceMap"]["*voice"][0];
    assert_eq!(v["Value"], "60000000000");
    assert_eq!(v["DestinationIDs"]["DST_MOBILE"], false);
    assert_eq!(v["DestinationIDs"]["DST_UK"], true);
    assert_eq!(v["ExpirationDate"], "2025-01-01T00:00:00Z");
    assert_eq!(j["AllowNegative"], false);
    assert_eq!(j["UpdateTime"], "2024-05-13T10:05:00Z");
    let back: Account = serde_json::from_value(j).unwrap();
    assert_eq!(back, a);
    // Numbers are read too (CGRateS writes floats).
    let from_cgr: Account = serde_json::from_str(
        r#"{"ID":"cgrates.org:1002","BalanceMap":{"*monetary":[{"Uuid":"u1","ID":"*default","Value":1.5,"Weight":0}]},"AllowNegative":true}"#,
    )
    .unwrap();
    assert_eq!(
        from_cgr.balances_of(BalanceType::Monetary)[0].value,
        d("1.5")
    );
    assert!(from_cgr.allow_negative);
}

#[test]
fn trigger_state_and_counters_survive_storage_json() {
    let mut a = account(vec![(BalanceType::Monetary, money("main", "1", 10))]);
    a.action_triggers = vec!["TRG".into()];
    a.trigger_runs.insert(
        "TRG#0".into(),
        crate::TriggerRun {
            executed: true,
            last_run: Some(now()),
        },
    );
    a.counters.insert("*monetary".into(), d("4.9"));
    let j = serde_json::to_value(&a).unwrap();
    let back: Account = serde_json::from_value(j).unwrap();
    assert_eq!(back, a);
    // Absent from an account without them (CGRateS's shape).
    a.trigger_runs.clear();
    a.counters.clear();
    let text = serde_json::to_string(&a).unwrap();
    assert!(
        !text.contains("TriggerRuns") && !text.contains("Counters"),
        "{text}"
    );
}

fn family() -> (Account, Account) {
    let mut mine = money("fam", "2", 10);
    mine.shared_groups.insert("SG_FAMILY".into());
    let mut theirs = money("fam2", "1", 10);
    theirs.shared_groups.insert("SG_FAMILY".into());
    let a = account(vec![(BalanceType::Monetary, mine)]);
    let mut b = Account::new("cgrates.org", "1002");
    b.add_balance(BalanceType::Monetary, theirs);
    (a, b)
}

fn groups(strategy: &str) -> std::collections::BTreeMap<String, SharedGroup> {
    let g = SharedGroup {
        id: "SG_FAMILY".into(),
        strategies: [(
            "*any".to_owned(),
            crate::SharingStrategy::parse(strategy).unwrap(),
        )]
        .into(),
        members: ["cgrates.org:1001".to_owned(), "cgrates.org:1002".to_owned()].into(),
    };
    [("SG_FAMILY".to_owned(), g)].into()
}

// 60 s to 1002 costs 0.6. *lowest: 1002's 1.0 pays (0.4 left); *highest
// and *mine_lowest: 1001's 2.0 pays (1.4 left).
#[test]
fn shared_group_balances_are_drawn_by_strategy() {
    let p = plan();
    for (strategy, mine, theirs) in [
        ("*lowest", "2", "0.4"),
        ("*highest", "1.4", "1"),
        ("*mine_lowest", "1.4", "1"),
    ] {
        let (a, b) = family();
        let mut accts = [a, b];
        let out = debit_shared(
            &mut accts,
            &groups(strategy),
            &call("1002", 60),
            &p,
            RoundingMode::Exact,
            now(),
        )
        .unwrap();
        assert_eq!(
            value(&accts[0], BalanceType::Monetary, "fam"),
            d(mine),
            "{strategy}"
        );
        assert_eq!(
            value(&accts[1], BalanceType::Monetary, "fam2"),
            d(theirs),
            "{strategy}"
        );
        assert_eq!(out.cost, d("0.6"));
        // The refund finds each balance in its own account.
        assert!(refund_shared(&mut accts, &out, now()).is_empty());
        assert_eq!(value(&accts[0], BalanceType::Monetary, "fam"), d("2"));
        assert_eq!(value(&accts[1], BalanceType::Monetary, "fam2"), d("1"));
    }
    // A group the lookup does not know makes the balance unusable.
    let (a, b) = family();
    let mut accts = [a, b];
    let none = std::collections::BTreeMap::<String, SharedGroup>::new();
    let err = debit_shared(
        &mut accts,
        &none,
        &call("1002", 60),
        &p,
        RoundingMode::Exact,
        now(),
    );
    assert!(matches!(err, Err(Error::InsufficientCredit { .. })));
    // Without a lookup (debit) the balance is the account's own.
    let (mut a, _) = family();
    debit(&mut a, &call("1002", 60), &p, RoundingMode::Exact, now()).unwrap();
    assert_eq!(value(&a, BalanceType::Monetary, "fam"), d("1.4"));
}

// Two members debit the shared 3.0 from 4 threads: exactly 5 calls of 0.6
// succeed and nothing is left, and the cross-account locking never
// deadlocks.
#[test]
fn concurrent_shared_debits_never_overspend_the_group() {
    let p = Arc::new(plan());
    let store = Arc::new(MemoryAccounts::new());
    let (a, b) = family();
    store.set(a).unwrap();
    store.set(b).unwrap();
    let g = Arc::new(groups("*lowest"));
    let handles: Vec<_> = (0..4)
        .map(|i| {
            let (p, store, g) = (p.clone(), store.clone(), g.clone());
            std::thread::spawn(move || {
                let who = if i % 2 == 0 { "1001" } else { "1002" };
                let mut ok = 0_u32;
                for _ in 0..5 {
                    // Both rate as subject 1001.
                    let mut c = call("1002", 60);
                    c.account = who;
                    match store.debit_call_shared(
                        "cgrates.org",
                        who,
                        &c,
                        &p,
                        &*g,
                        RoundingMode::Exact,
                        now(),
                    ) {
                        Ok(_) => ok += 1,
                        Err(Error::InsufficientCredit { .. }) => {}
                        Err(e) => panic!("{e}"),
                    }
                }
                ok
            })
        })
        .collect();
    let ok: u32 = handles.into_iter().map(|h| h.join().unwrap()).sum();
    assert_eq!(ok, 5);
    let left: Decimal = store
        .list("cgrates.org")
        .unwrap()
        .iter()
        .map(|a| a.total(BalanceType::Monetary, start()))
        .sum();
    assert_eq!(left, Decimal::ZERO);
}

#[test]
fn to_json_writes_exact_numbers_in_the_same_shape() {
    let mut b = voice("free", 60, "*zero1s");
    b.destination_ids = parse_filter_set("DST_UK;!DST_MOBILE");
    b.factor.insert("call".into(), d("1.5"));
    let mut a = account(vec![
        (
            BalanceType::Monetary,
            money("main", "0.1234567890123456789", 10),
        ),
        (BalanceType::Voice, b),
    ]);
    a.action_triggers.push("AT_LOW\"1".into());
    let text = a.to_json();
    assert!(text.contains(r#""Value":0.1234567890123456789,"#), "{text}");
    let j: serde_json::Value = serde_json::from_str(&text).unwrap();
    let mut via_serde = serde_json::to_value(&a).unwrap();
    // The serde form differs only in writing decimals as strings.
    for (t, i) in [("*monetary", 0), ("*voice", 0)] {
        let bal = &mut via_serde["BalanceMap"][t][i];
        for k in ["Value", "Weight"] {
            let digits = bal[k].as_str().unwrap().to_owned();
            bal[k] = serde_json::from_str(&digits).unwrap();
        }
    }
    via_serde["BalanceMap"]["*voice"][0]["Factor"]["call"] = serde_json::json!(1.5);
    assert_eq!(j, via_serde);
    assert_eq!(j["ActionTriggers"][0]["ID"], "AT_LOW\"1");
}

// Stored values come from outside: the most negative balance an
// AllowNegative account can hold must not make a debit or refund panic.
#[test]
fn absurd_balance_values_do_not_panic() {
    let p = plan();
    let mut a = account(vec![(
        BalanceType::Monetary,
        Balance {
            id: DEFAULT_BALANCE_ID.into(),
            value: Decimal::MIN,
            ..Balance::default()
        },
    )]);
    a.allow_negative = true;
    let out = debit(&mut a, &call("1002", 90), &p, RoundingMode::Exact, now()).unwrap();
    assert_eq!(
        value(&a, BalanceType::Monetary, DEFAULT_BALANCE_ID),
        Decimal::MIN
    );
    let mut rich = account(vec![(BalanceType::Monetary, money("main", "1", 10))]);
    rich.balances.get_mut(&BalanceType::Monetary).unwrap()[0].value = Decimal::MAX;
    let uuid = rich.balances_of(BalanceType::Monetary)[0].uuid.clone();
    let mut out2 = out.clone();
    for c in &mut out2.charges {
        c.balance_uuid.clone_from(&uuid);
        c.account = rich.key();
    }
    assert!(refund(&mut rich, &out2, now()).is_empty());
    assert_eq!(value(&rich, BalanceType::Monetary, "main"), Decimal::MAX);
}

mod props {
    use proptest::prelude::*;

    use super::*;

    fn arb_account() -> impl Strategy<Value = (Account, bool)> {
        (
            proptest::collection::vec((0_i64..500, 0_i64..30, any::<bool>()), 1..4),
            0_u64..200,
            any::<bool>(),
        )
            .prop_map(|(moneys, free_secs, blocker)| {
                let mut a = Account::new("cgrates.org", "1001");
                for (i, (cents, w, blk)) in moneys.into_iter().enumerate() {
                    a.add_balance(
                        BalanceType::Monetary,
                        Balance {
                            id: format!("m{i}"),
                            value: Decimal::new(cents, 2),
                            weight: Decimal::from(w),
                            blocker: blk && blocker,
                            ..Balance::default()
                        },
                    );
                }
                a.add_balance(BalanceType::Voice, voice("free", free_secs, "*zero1s"));
                (a, blocker)
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        // What a debit takes is what its outcome says; a refund gives it
        // all back; a failed debit changes nothing.
        #[test]
        fn debit_conserves_value_and_refund_undoes_it(
            (acct, _) in arb_account(),
            secs in 0_u64..900,
            cgr in any::<bool>(),
        ) {
            let p = plan();
            let mode = if cgr { RoundingMode::Cgrates } else { RoundingMode::Exact };
            let mut a = acct.clone();
            match debit(&mut a, &call("1002", secs), &p, mode, now()) {
                Ok(out) => {
                    let before = acct.total(BalanceType::Monetary, start());
                    let after = a.total(BalanceType::Monetary, start());
                    prop_assert_eq!(before - after, out.cost);
                    let lost = refund(&mut a, &out, now());
                    prop_assert!(lost.is_empty());
                    prop_assert_eq!(&a.balances, &acct.balances);
                }
                Err(Error::InsufficientCredit { .. }) => prop_assert_eq!(&a, &acct),
                Err(e) => prop_assert!(false, "{}", e),
            }
        }

        // max_usage is the boundary of what debit accepts: the usage it
        // gives can be debited, one nanosecond more cannot (unless it is
        // the usage asked for).
        #[test]
        fn max_usage_is_the_debit_boundary(
            (acct, _) in arb_account(),
            secs in 1_u64..900,
            cgr in any::<bool>(),
        ) {
            let p = plan();
            let mode = if cgr { RoundingMode::Cgrates } else { RoundingMode::Exact };
            let asked = call("1002", secs);
            let m = max_usage(&acct, &asked, &p, mode, now()).unwrap();
            prop_assert!(m <= asked.usage);
            let at = |u: Duration| {
                let mut a = acct.clone();
                let c = CallDescriptor { usage: u, ..asked };
                debit(&mut a, &c, &p, mode, now()).is_ok()
            };
            prop_assert!(at(m));
            if m < asked.usage {
                prop_assert!(!at(m + Duration::from_nanos(1)));
            }
        }
    }
}
