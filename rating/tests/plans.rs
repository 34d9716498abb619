//! Loads the tariff plans in `tests/data/tariffplans/` (written for these
//! tests in CGRateS's CSV format) and checks costs worked out by hand from
//! their files, in both rounding modes. Where CGRateS publishes a result for
//! its own sample plans, the fixture uses the same rate figures and the test
//! expects the same figures.
#![allow(clippy::unwrap_used)] // test helpers panic on purpose

use std::path::PathBuf;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use rating::{CallDescriptor, LoadOptions, RoundingMode, TariffPlan, Tor, parse_duration};

/// Loads `tests/data/tariffplans/NAME` and checks that exactly the files
/// `unhandled` (other CGRateS files) are reported as not used.
fn load(name: &str, unhandled: &[&str]) -> TariffPlan {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/data/tariffplans")
        .join(name);
    let opts = LoadOptions {
        loaded_at: Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap(),
    };
    let (plan, report) =
        TariffPlan::load_dir(&dir, &opts).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let mut reported: Vec<String> = report
        .unhandled_files
        .iter()
        .map(|f| f.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    reported.sort();
    assert_eq!(reported, unhandled, "{name}: files reported as not handled");
    assert!(report.warnings.is_empty(), "{name}: {:?}", report.warnings);
    plan
}

struct Call<'a> {
    tenant: &'a str,
    category: &'a str,
    subject: &'a str,
    dest: &'a str,
    start: &'a str,
    usage: &'a str,
    tor: Tor,
}

fn call<'a>(subject: &'a str, dest: &'a str, start: &'a str, usage: &'a str) -> Call<'a> {
    Call {
        tenant: "cgrates.org",
        category: "call",
        subject,
        dest,
        start,
        usage,
        tor: Tor::Voice,
    }
}

impl Call<'_> {
    fn cd(&self) -> CallDescriptor<'_> {
        let start: DateTime<Utc> = DateTime::parse_from_rfc3339(self.start)
            .unwrap()
            .with_timezone(&Utc);
        let mut cd = CallDescriptor::new(
            self.subject,
            self.dest,
            start,
            parse_duration(self.usage).unwrap(),
        );
        cd.tenant = self.tenant;
        cd.category = self.category;
        cd.tor = self.tor;
        cd
    }

    /// Checks the cost in both modes.
    fn costs(&self, plan: &TariffPlan, exact: &str, cgrates: &str) {
        let cd = self.cd();
        let e = plan
            .cost(&cd, RoundingMode::Exact)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(e.cost.to_string(), exact, "exact: {}", e.to_json());
        let c = plan
            .cost(&cd, RoundingMode::Cgrates)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.cost.to_string(), cgrates, "cgrates: {}", c.to_json());
    }

    fn fails(&self, plan: &TariffPlan, reason: &str) {
        let e = plan.cost(&self.cd(), RoundingMode::Exact).unwrap_err();
        assert_eq!(e.reason(), reason, "{e}");
    }
}

// 2024-05-13 is a Monday.
const MON_10: &str = "2024-05-13T10:00:00Z";

/// The first-minute-then-per-second rates CGRateS's tutorial documents,
/// two activations of one subject, MaxCost `*disconnect`, messages to any
/// destination, a second tenant, and no Timings.csv.
#[test]
fn office() {
    // Actions.csv loads (account side); Chargers.csv is not handled.
    let p = load("office", &["Chargers.csv"]);
    // 1001 -> 1002: RPL_OFFICE (active 2015) -> DRT_1002_STANDARD ->
    // R_STANDARD. 90 s: 0.4 + 0.2 (first minute, one 60 s increment) +
    // 30 x 1 s at 0.1/min (0.05) = 0.65. CGRateS: 0.05/30 = 0.0016666 ->
    // 0.00167 per increment, x30 = 0.0501 -> 0.6501 (the figures CGRateS
    // publishes for the same rates).
    call("1001", "1002", MON_10, "90s").costs(&p, "0.65", "0.6501");
    // 1002 -> 1001: RPL_LEGACY -> R_STANDARD, 60 s: 0.4 + 0.2.
    call("1002", "1001", MON_10, "60s").costs(&p, "0.6", "0.6");
    // 1003 -> 1001: RPL_BUDGET -> R_BUDGET, 125 s: 0.2 + 0.1 + 65 x 1 s at
    // 0.05/min = 0.3541666 -> *up 4 -> 0.3542. CGRateS: 0.0541666 ->
    // 0.05417 / 65 = 0.00083338 -> 0.00083 x 65 = 0.05395; 0.35395 -> 0.354.
    call("1003", "1001", MON_10, "125s").costs(&p, "0.3542", "0.354");
    // In 2012 only RPL_LEGACY (active mid-2011, listed second) is in force
    // for 1001: 1001 -> 1001 at 0.6; it does not price 1002.
    call("1001", "1001", "2012-05-01T10:00:00Z", "60s").costs(&p, "0.6", "0.6");
    call("1001", "1002", "2012-05-01T10:00:00Z", "60s").fails(&p, "UNAUTHORIZED_DESTINATION");
    // 1001 -> 1003: R_CENT_PER_SEC with MaxCost 0.12 *disconnect: the cost
    // of 60 s is unchanged (0.6) but the call should stop after 12 s.
    let cc = p
        .cost(
            &call("1001", "1003", MON_10, "60s").cd(),
            RoundingMode::Exact,
        )
        .unwrap();
    assert_eq!(cc.cost.to_string(), "0.6");
    assert_eq!(cc.max_cost_disconnect_at, Some(Duration::from_secs(12)));
    // sms, *any subject, *any destination: 0.01 per message; 5 = 0.05.
    let mut sms = call("1001", "1002", MON_10, "5");
    sms.category = "sms";
    sms.tor = Tor::Sms;
    sms.costs(&p, "0.05", "0.05");
    // example.net, *any subject -> RPL_OFFICE: as the first call.
    let mut other = call("anyone", "1002", MON_10, "90s");
    other.tenant = "example.net";
    other.costs(&p, "0.65", "0.6501");
    // No profile for tenant example.org.
    let mut none = call("1001", "1002", MON_10, "60s");
    none.tenant = "example.org";
    none.fails(&p, "RATING_PLAN_NOT_FOUND");
}

/// Day and cheap rates by week day and hour, New Year, a fallback subject,
/// shared prefixes, free calls, data, messages and flat fees.
#[test]
fn peak_offpeak() {
    let p = load("peak_offpeak", &[]);
    // 1001 -> 1002: RPL_ONLY_1002 -> R_CENT_A_SECOND (0.1 + 0.01/s): 60 s = 0.7.
    call("1001", "1002", MON_10, "60s").costs(&p, "0.7", "0.7");
    // 1001 -> 1003: RPL_ONLY_1002 does not price it; fallback *any ->
    // RPL_GENERAL, D_TEN. Monday 10:00 is T_WORKDAY_DAY -> R_DAY: 0.2 + 1.2
    // (first minute) + 30 s at 1.2/min (0.6) = 2.
    call("1001", "1003", MON_10, "90s").costs(&p, "2", "2");
    // Monday 07:00 is T_WORKDAY_NIGHT -> R_CENT_A_SECOND: 0.1 + 90 x 0.01 = 1.
    call("1001", "1003", "2024-05-13T07:00:00Z", "90s").costs(&p, "1", "1");
    // Saturday: T_WEEKEND -> 1.
    call("1001", "1003", "2024-05-18T10:00:00Z", "90s").costs(&p, "1", "1");
    // 07:59:30 for 60 s: 30 s cheap (0.1 + 0.3) then day rate from 08:00,
    // 30 s rounded to R_DAY's 1 min increment at offset 30 s: 1.2. = 1.6
    call("1001", "1003", "2024-05-13T07:59:30Z", "60s").costs(&p, "1.6", "1.6");
    // 2012 on a weekday: D_TWENTY_THIRTY (R_DAY): 0.2 + 1.2 = 1.4; on New
    // Year's day D_TWENTY (T_JANUARY_FIRST, weight 20, R_CENT_A_SECOND):
    // 0.1 + 0.6 = 0.7.
    call("1001", "2012", "2025-02-03T10:00:00Z", "60s").costs(&p, "1.4", "1.4");
    call("1001", "2012", "2025-01-01T10:00:00Z", "60s").costs(&p, "0.7", "0.7");
    // The mailbox is free (R_NOTHING).
    call("1001", "voicemail", MON_10, "5m").costs(&p, "0", "0");
    // data *any: R_PER_KIB, 3000 units -> 3 increments of 1024 -> 3.
    let mut data = call("1001", "*any", MON_10, "3000");
    data.category = "data";
    data.tor = Tor::Data;
    data.costs(&p, "3", "3");
    // sms: 1002 at 0.1, 10xx at 0.2 per message; 2 messages.
    let mut sms = call("1001", "1002", MON_10, "2");
    sms.category = "sms";
    sms.tor = Tor::Sms;
    sms.costs(&p, "0.2", "0.2");
    sms.dest = "1099";
    sms.costs(&p, "0.4", "0.4");
    // wholesale: 0.1 per call whatever the duration.
    let mut flat = call("1001", "1002", MON_10, "5m");
    flat.category = "wholesale";
    flat.costs(&p, "0.1", "0.1");
    // SETUP_ONLY: R_SETUP_FEE, connect fee 0.1, rate 0 (RateUnit 0).
    call("SETUP_ONLY", "1002", MON_10, "45s").costs(&p, "0.1", "0.1");
}

/// Increments of 1 s, 30 s and 10 s, 5 decimals, a rate group that starts
/// late, one destination rate over two destinations.
#[test]
fn increments() {
    let p = load("increments", &[]);
    // *any -> RPL_CENT -> R_CENT_A_MINUTE (0.01/min, 1 s), *up 5 decimals.
    // 90 s: 0.015. CGRateS: 0.015/90 = 0.000166 -> 0.00017 x 90 = 0.0153.
    call("1001", "1002", MON_10, "90s").costs(&p, "0.015", "0.0153");
    // RETAIL -> RPL_HALF_MINUTES prices D_TEN (10) only: 1001 matches 10.
    // R_HALF_MINUTES 65 s: 0.8 + 0.4 + one 10 s increment at 0.2/min
    // (0.0333..) -> *up 4 -> 1.2334 (CGRateS: 0.03333, 1.23333 -> 1.2334).
    call("RETAIL", "1001", MON_10, "65s").costs(&p, "1.2334", "1.2334");
    // Standard/LATE -> R_FROM_SECOND_MINUTE starts at GroupIntervalStart
    // 60 s: the first minute has no rate.
    let mut late = call("LATE", "1001", MON_10, "30s");
    late.category = "Standard";
    late.fails(&p, "NO_RATE_INTERVAL");
    // free/FREE -> D_FREE 077.
    let mut free = call("FREE", "0771234", MON_10, "10m");
    free.category = "free";
    free.costs(&p, "0", "0");
    // LOCAL -> DRT_LOCAL_TWO_CENTS covers both +246 and +135: 30 s at
    // 0.02/min = 0.01. CGRateS: 0.01/30 = 0.000333 -> 0.00033 x 30 = 0.0099.
    call("LOCAL", "+2461234", MON_10, "30s").costs(&p, "0.01", "0.0099");
    call("LOCAL", "+1351234", MON_10, "30s").costs(&p, "0.01", "0.0099");
}

/// Peak and off-peak, MaxCost `*free` and `*disconnect`, a destination
/// with several prefixes, data by the unit.
#[test]
fn caps() {
    let p = load("caps", &[]);
    // *any -> RPL_SHOP; 1002 is priced through D_TEN (10). Monday 10:00 is
    // T_DAY -> R_HALF_MINUTES: 65 s = 1.2334.
    call("2000", "1002", MON_10, "65s").costs(&p, "1.2334", "1.2334");
    // Monday 20:00 is T_EVENING -> R_BUDGET: 0.2 + 0.1 + 5 s at 0.05/min
    // (0.0041666) = 0.3041666 -> 0.3042. CGRateS: 0.00417/5 -> 0.00083 x 5
    // = 0.00415; 0.30415 -> *up 4 -> 0.3042.
    call("2000", "1002", "2024-05-13T20:00:00Z", "65s").costs(&p, "0.3042", "0.3042");
    // 1001 -> 1002 on Saturday: T_WEEKEND -> R_BUDGET, 60 s: 0.2 + 0.1.
    call("1001", "1002", "2024-05-18T10:00:00Z", "60s").costs(&p, "0.3", "0.3");
    // 1001 -> 1007: RPL_SHOP_CAPPED -> DRT_1007_CAPPED: 100 s at 0.01/s = 1,
    // capped at 0.62.
    call("1001", "1007", MON_10, "100s").costs(&p, "0.62", "0.62");
    // 2000 -> 1007: RPL_SHOP -> *disconnect at 0.62: cost 1, cut at 62 s.
    let cc = p
        .cost(
            &call("2000", "1007", MON_10, "100s").cd(),
            RoundingMode::Exact,
        )
        .unwrap();
    assert_eq!(cc.cost.to_string(), "1");
    assert_eq!(cc.max_cost_disconnect_at, Some(Duration::from_secs(62)));
    // Each prefix of D_DE_MOBILE: 30 s = 0.8 + 0.2 (one 30 s increment at
    // 0.4/min).
    for number in ["+491511234", "+491601234", "+491701234"] {
        call("1001", number, MON_10, "30s").costs(&p, "1", "1");
    }
    // data *any -> RPL_UNITS: R_UNIT, 1 per unit: 10 units = 10.
    let mut data = call("2000", "1002", MON_10, "10");
    data.category = "data";
    data.tor = Tor::Data;
    data.costs(&p, "10", "10");
}

#[test]
fn direction_layout() {
    let p = load("direction", &[]);
    // Monday 10:00, work hours (weight 20): RT_MOBILE_DAY, 61 s -> 11 x 6 s
    // = 66 s at 0.19/min = 0.209, + 0.05 = 0.259 -> *middle 2 -> 0.26.
    call("x", "+4915112345", MON_10, "61s").costs(&p, "0.26", "0.26");
    // 17:59:30 for 61 s: 30 s day rate (5 x 6 s, 0.095) + 31 s after 18:00
    // at RT_MOBILE (6 x 6 s = 36 s at 0.09/min, 0.054) + 0.05 = 0.199 -> 0.2.
    call("x", "+4915112345", "2024-05-13T17:59:30Z", "61s").costs(&p, "0.2", "0.2");
    // Fixed: 150 s -> 3 minutes at 0.015 = 0.045 (*down 3).
    call("x", "+4930123", MON_10, "150s").costs(&p, "0.045", "0.045");
}
