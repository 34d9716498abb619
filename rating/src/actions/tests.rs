//! Account-side loading errors (file, line, column), both layouts, and
//! schedules at fixed instants.

use std::path::Path;
use std::sync::Arc;

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::*;
use crate::timing::Timing;
use crate::{Error, LoadOptions};

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

const LOADED: &str = "2025-01-15T10:20:30Z";

const RATING: [(&str, &str); 5] = [
    ("Destinations.csv", "DST_A,1\n"),
    ("Rates.csv", "RT_A,0,0.1,60s,60s,0s\n"),
    ("DestinationRates.csv", "DR_A,DST_A,RT_A,*up,4,0,\n"),
    ("RatingPlans.csv", "RP_A,DR_A,*any,10\n"),
    (
        "RatingProfiles.csv",
        "t.test,call,*any,2024-01-01T00:00:00Z,RP_A,\n",
    ),
];

const ACTIONS: &str =
    "#ActionsId,...\nACT_A,*topup,,,main,*monetary,,*any,,,*unlimited,,10,10,false,false,10\n";
const PLANS: &str = "AP_A,ACT_A,*asap,10\n";
const TRIGGERS: &str = "TRG_A,,*min_balance,2,false,0,,,,*monetary,,,,,,,,,,ACT_A,10\n";
const ACCOUNTS: &str = "t.test,1001,AP_A,TRG_A,,\n";

/// Loads the rating files plus `extra`, replacing same-named defaults.
fn load(extra: &[(&str, &str)]) -> Result<TariffPlan, Error> {
    let mut files: Vec<(&Path, &str)> = RATING.iter().map(|(n, t)| (Path::new(*n), *t)).collect();
    let defaults = [
        ("Actions.csv", ACTIONS),
        ("ActionPlans.csv", PLANS),
        ("ActionTriggers.csv", TRIGGERS),
        ("AccountActions.csv", ACCOUNTS),
    ];
    for (n, text) in defaults {
        if !extra.iter().any(|(e, _)| *e == n) {
            files.push((Path::new(n), text));
        }
    }
    files.extend(extra.iter().map(|(n, t)| (Path::new(*n), *t)));
    let opts = LoadOptions {
        loaded_at: t(LOADED),
    };
    TariffPlan::from_csv(&files, &opts).map(|(p, _)| p)
}

/// The load error's (file, line, column, expected).
fn err(extra: &[(&str, &str)]) -> (String, usize, usize, String) {
    match load(extra) {
        Err(Error::Load {
            file,
            line,
            column,
            expected,
            ..
        }) => (file.display().to_string(), line, column, expected),
        Err(other) => panic!("not a load error: {other}"),
        Ok(_) => panic!("loaded: {extra:?}"),
    }
}

fn at(extra: &[(&str, &str)]) -> (String, usize, usize) {
    let (f, l, c, _) = err(extra);
    (f, l, c)
}

#[test]
fn defaults_load_and_are_reachable() {
    let p = load(&[]).unwrap();
    let d = p.account_data();
    assert_eq!(d.actions["ACT_A"][0].action, ActionType::Topup);
    assert_eq!(d.action_plans["AP_A"][0].timing.id(), "*asap");
    assert_eq!(
        d.triggers["TRG_A"][0].threshold_type,
        ThresholdType::MinBalance
    );
    assert_eq!(d.account_actions.len(), 1);
    assert!(!d.is_empty());
}

#[test]
fn unknown_action_type_is_an_error_at_its_column() {
    let bad = "ACT_A,*topup,,,m,*monetary,,*any,,,,,1,,,,10\nACT_B,*teleport,,,,,,,,,,,,,,,10\n";
    let (f, l, c, exp) = err(&[("Actions.csv", bad)]);
    assert_eq!((f.as_str(), l, c), ("Actions.csv", 2, 2));
    assert!(exp.contains("Action"), "{exp}");
    // CGRateS's other action names load, as Other.
    let other = "ACT_A,*topup,,,m,*monetary,,*any,,,,,1,,,,10\nACT_B,*http_post_async,http://x.invalid,,,,,,,,,,,,,,10\n";
    let p = load(&[("Actions.csv", other)]).unwrap();
    assert_eq!(
        p.account_data().actions["ACT_B"][0].action,
        ActionType::Other("*http_post_async")
    );
}

#[test]
fn bad_values_in_actions_name_their_column() {
    let row = |units: &str, weight: &str, blocker: &str, expiry: &str| {
        format!("ACT_A,*topup,,,m,*monetary,,*any,,,{expiry},,{units},{weight},{blocker},,10\n")
    };
    for (text, col) in [
        (row("1o", "", "", ""), 13),
        (row("1", "heavy", "", ""), 14),
        (row("1", "", "yes", ""), 15),
        (row("1", "", "", "*never"), 11),
        (row("1", "", "", "next week"), 11),
    ] {
        assert_eq!(
            at(&[("Actions.csv", &text)]),
            ("Actions.csv".into(), 1, col),
            "{text}"
        );
    }
    // Weight is the last column.
    let w = "ACT_A,*topup,,,m,*monetary,,*any,,,,,1,,,,ten\n";
    assert_eq!(at(&[("Actions.csv", w)]).2, 17);
    // An empty ActionsId.
    let no_id = ",*topup,,,m,*monetary,,*any,,,,,1,,,,10\n";
    assert_eq!(at(&[("Actions.csv", no_id)]).2, 1);
    // 16 columns: neither layout.
    let short = "ACT_A,*topup,,,m,*monetary,,*any,,,,,1,,,\n";
    assert_eq!(at(&[("Actions.csv", short)]).2, 17);
}

#[test]
fn older_actions_layout_shifts_columns_after_balance_type() {
    let old = "ACT_A,*topup,,,m,*monetary,*out,,*any,,,+24h,,1o,10,false,false,10\n";
    // Units is column 14 in the older layout.
    assert_eq!(at(&[("Actions.csv", old)]).2, 14);
    let good = "ACT_A,*topup,,,m,*monetary,*out,call,*any,,,+24h,,5,10,false,false,10\n";
    let p = load(&[("Actions.csv", good)]).unwrap();
    let a = &p.account_data().actions["ACT_A"][0];
    assert_eq!(&*a.directions[0], "*out");
    assert_eq!(&*a.categories[0], "call");
    assert_eq!(a.units, Some(Decimal::from(5)));
}

#[test]
fn bad_threshold_type_and_values_in_triggers() {
    let row = |ty: &str, value: &str, rec: &str, sleep: &str| {
        format!("TRG_A,,{ty},{value},{rec},{sleep},,,,*monetary,,,,,,,,,,ACT_A,10\n")
    };
    for (text, col) in [
        (row("*min_balans", "2", "", ""), 3),
        (row("*min_balance", "two", "", ""), 4),
        (row("*min_balance", "", "", ""), 4),
        (row("*min_balance", "2", "maybe", ""), 5),
        (row("*min_balance", "2", "", "5x"), 6),
    ] {
        assert_eq!(
            at(&[("ActionTriggers.csv", &text)]),
            ("ActionTriggers.csv".into(), 1, col),
            "{text}"
        );
    }
    let bad_time = "TRG_A,,*min_balance,2,,,soon,,,*monetary,,,,,,,,,,ACT_A,10\n";
    assert_eq!(at(&[("ActionTriggers.csv", bad_time)]).2, 7);
    // Older layout: StatsMinQueuedItems (21) and ActionsId (22).
    let old = "TRG_A,,*min_balance,2,,,,,,*monetary,*out,,,,,,,,,,x,ACT_A,10\n";
    assert_eq!(at(&[("ActionTriggers.csv", old)]).2, 21);
    let old = "TRG_A,,*min_balance,2,,,,,,*monetary,*out,,,,,,,,,,1,ACT_NONE,10\n";
    assert_eq!(at(&[("ActionTriggers.csv", old)]).2, 22);
}

#[test]
fn dangling_references_name_file_line_and_column() {
    // An ActionPlan naming unknown Actions, then an unknown timing.
    let plans = "AP_A,ACT_A,*asap,10\nAP_A,ACT_NONE,*asap,10\n";
    assert_eq!(
        at(&[("ActionPlans.csv", plans)]),
        ("ActionPlans.csv".into(), 2, 2)
    );
    let plans = "AP_A,ACT_A,TM_NONE,10\n";
    let (f, l, c, exp) = err(&[("ActionPlans.csv", plans)]);
    assert_eq!((f.as_str(), l, c), ("ActionPlans.csv", 1, 3));
    assert!(exp.contains("*monthly_estimated"), "{exp}");
    // *any is a rating timing, not a schedule.
    assert_eq!(at(&[("ActionPlans.csv", "AP_A,ACT_A,*any,10\n")]).2, 3);
    // No Actions.csv at all.
    let files = [("Actions.csv", "")];
    assert_eq!(at(&files), ("ActionPlans.csv".into(), 1, 2));
    // A trigger naming unknown Actions.
    let trg = "TRG_A,,*min_balance,2,false,0,,,,*monetary,,,,,,,,,,ACT_NONE,10\n";
    assert_eq!(
        at(&[("ActionTriggers.csv", trg)]),
        ("ActionTriggers.csv".into(), 1, 20)
    );
    // AccountActions naming an unknown plan, unknown triggers.
    let acc = "t.test,1001,AP_A,TRG_A,,\nt.test,1002,AP_NONE,TRG_A,,\n";
    assert_eq!(
        at(&[("AccountActions.csv", acc)]),
        ("AccountActions.csv".into(), 2, 3)
    );
    let acc = "t.test,1001,AP_A,TRG_NONE,,\n";
    assert_eq!(at(&[("AccountActions.csv", acc)]).2, 4);
    // Older layout with Direction: the plan is column 4.
    let acc = "t.test,1001,*out,AP_NONE,TRG_A\n";
    assert_eq!(at(&[("AccountActions.csv", acc)]).2, 4);
    let acc = "t.test,1001,*out,AP_A,TRG_A\n";
    let p = load(&[("AccountActions.csv", acc)]).unwrap();
    assert_eq!(p.account_data().account_actions.len(), 1);
}

#[test]
fn account_rows_flags_and_duplicates() {
    let acc = "t.test,1001,AP_A,,true,maybe\n";
    assert_eq!(at(&[("AccountActions.csv", acc)]).2, 6);
    let acc = "t.test,1001,AP_A,,,\nt.test,1001,,,,\n";
    assert_eq!(
        at(&[("AccountActions.csv", acc)]),
        ("AccountActions.csv".into(), 2, 2)
    );
    let acc = ",1001,AP_A,,,\n";
    assert_eq!(at(&[("AccountActions.csv", acc)]).2, 1);
    let acc = "t.test,1001,AP_A,TRG_A,1,F\nt.test,1002\n";
    assert_eq!(
        at(&[("AccountActions.csv", acc)]),
        ("AccountActions.csv".into(), 2, 3)
    );
}

#[test]
fn shared_group_strategy_and_width() {
    let sg = "SG_A,*any,*lowest,\nSG_A,1001,*greedy,\n";
    assert_eq!(
        at(&[("SharedGroups.csv", sg)]),
        ("SharedGroups.csv".into(), 2, 3)
    );
    let sg = "SG_A,*any,*lowest,,extra\n";
    assert_eq!(at(&[("SharedGroups.csv", sg)]).2, 5);
    let p = load(&[("SharedGroups.csv", "SG_A,*any,*mine_highest,RS\n")]).unwrap();
    let g = &p.account_data().shared_groups["SG_A"][0];
    assert_eq!(g.strategy, SharingStrategy::MineHighest);
    assert_eq!(&*g.rating_subject, "RS");
}

fn builtin(id: &str, loaded: &str) -> ActionTiming {
    ActionTiming::builtin(id, t(loaded)).unwrap()
}

fn timing(cols: [&str; 5]) -> ActionTiming {
    let tm = Timing::parse("TM", cols, t(LOADED)).unwrap();
    ActionTiming::from_timing(Arc::new(tm), t(LOADED))
}

/// The first `n` runs after `from`.
fn runs(s: &ActionTiming, from: &str, n: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut at = t(from);
    for _ in 0..n {
        match s.next_run(at) {
            Some(next) => {
                out.push(next.format("%Y-%m-%dT%H:%M:%S").to_string());
                at = next;
            }
            None => break,
        }
    }
    out
}

#[test]
fn monthly_on_the_31st_skips_short_months_and_estimated_takes_their_last_day() {
    let m = builtin("*monthly", "2024-01-31T08:00:00Z");
    assert_eq!(
        runs(&m, "2024-01-31T08:00:00Z", 3),
        [
            "2024-03-31T08:00:00",
            "2024-05-31T08:00:00",
            "2024-07-31T08:00:00"
        ]
    );
    let e = builtin("*monthly_estimated", "2024-01-31T08:00:00Z");
    assert_eq!(
        runs(&e, "2024-01-31T08:00:00Z", 3),
        [
            "2024-02-29T08:00:00",
            "2024-03-31T08:00:00",
            "2024-04-30T08:00:00"
        ]
    );
    // 2025 is not a leap year.
    assert_eq!(runs(&e, "2025-01-31T08:00:00Z", 1), ["2025-02-28T08:00:00"]);
    // The first run at or after the load time is the load time itself.
    assert_eq!(
        e.first_run(t("2024-01-31T08:00:00Z")),
        Some(t("2024-01-31T08:00:00Z"))
    );
}

#[test]
fn month_end_and_yearly_across_leap_years() {
    let me = builtin("*month_end", "2024-01-10T23:00:00Z");
    assert_eq!(
        runs(&me, "2024-01-31T23:00:00Z", 3),
        [
            "2024-02-29T23:00:00",
            "2024-03-31T23:00:00",
            "2024-04-30T23:00:00"
        ]
    );
    assert_eq!(
        runs(&me, "2100-01-31T23:00:00Z", 1),
        ["2100-02-28T23:00:00"]
    );
    // Loaded on 29 February: the next 29 February is four years on.
    let y = builtin("*yearly", "2024-02-29T12:00:00Z");
    assert_eq!(
        runs(&y, "2024-02-29T12:00:00Z", 2),
        ["2028-02-29T12:00:00", "2032-02-29T12:00:00"]
    );
}

#[test]
fn minute_hour_day_and_week_steps_cross_boundaries() {
    let loaded = "2024-12-31T23:59:59Z";
    assert_eq!(
        runs(&builtin("*every_minute", loaded), loaded, 2),
        ["2025-01-01T00:00:59", "2025-01-01T00:01:59"]
    );
    assert_eq!(
        runs(&builtin("*hourly", loaded), loaded, 2),
        ["2025-01-01T00:59:59", "2025-01-01T01:59:59"]
    );
    assert_eq!(
        runs(&builtin("*daily", loaded), loaded, 1),
        ["2025-01-01T23:59:59"]
    );
    // 2024-12-31 is a Tuesday.
    assert_eq!(
        runs(&builtin("*weekly", loaded), loaded, 1),
        ["2025-01-07T23:59:59"]
    );
    // Asked between runs: the next one, not one step on.
    let h = builtin("*hourly", "2025-01-15T10:20:30Z");
    assert_eq!(
        h.first_run(t("2025-03-01T07:05:00Z")),
        Some(t("2025-03-01T07:20:30Z"))
    );
    assert_eq!(
        h.first_run(t("2025-03-01T07:25:00Z")),
        Some(t("2025-03-01T08:20:30Z"))
    );
}

#[test]
fn asap_runs_once() {
    let a = builtin("*asap", LOADED);
    assert!(a.is_once());
    assert_eq!(a.first_run(t(LOADED)), Some(t(LOADED)));
    assert_eq!(a.first_run(t("2025-01-15T10:20:31Z")), None);
    assert_eq!(a.next_run(t(LOADED)), None);
    assert!(ActionTiming::builtin("*any", t(LOADED)).is_none());
    assert!(ActionTiming::builtin("*fortnightly", t(LOADED)).is_none());
}

#[test]
fn timings_rows_as_schedules() {
    // Weekdays at 08:00: Friday 17 January 2025, then Monday the 20th.
    let wd = timing(["*any", "*any", "*any", "1;2;3;4;5", "08:00:00"]);
    assert_eq!(
        runs(&wd, "2025-01-17T07:00:00Z", 2),
        ["2025-01-17T08:00:00", "2025-01-20T08:00:00"]
    );
    // The last day of February and August only, at noon.
    let last = timing(["*any", "2;8", "-1", "*any", "12:00:00"]);
    assert_eq!(
        runs(&last, "2024-01-01T00:00:00Z", 3),
        [
            "2024-02-29T12:00:00",
            "2024-08-31T12:00:00",
            "2025-02-28T12:00:00"
        ]
    );
    // 29 February in listed years only; once the years are past, none.
    let leap = timing(["2025;2028", "2", "29", "*any", "00:00:00"]);
    assert_eq!(
        runs(&leap, "2024-06-01T00:00:00Z", 3),
        ["2028-02-29T00:00:00"]
    );
    // A date that never comes (30 February) gives no run.
    let never = timing(["*any", "2", "30", "*any", "00:00:00"]);
    assert_eq!(never.next_run(t(LOADED)), None);
    // Friday the 13th.
    let f13 = timing(["*any", "*any", "13", "5", "13:00:00"]);
    assert_eq!(
        runs(&f13, LOADED, 2),
        ["2025-06-13T13:00:00", "2026-02-13T13:00:00"]
    );
    // A Time of *asap: once.
    let asap = timing(["*any", "*any", "*any", "*any", "*asap"]);
    assert!(asap.is_once());
    assert_eq!(asap.first_run(t(LOADED)), Some(t(LOADED)));
}

#[test]
fn expiry_times_resolve_against_the_run_time() {
    let jan31 = t("2025-01-31T10:00:00Z");
    let e = |s: &str| ExpiryTime::parse(s).unwrap().resolve(jan31);
    assert_eq!(e("*unlimited"), None);
    assert_eq!(e(""), None);
    // Go's AddDate runs 31 January + 1 month over into March.
    assert_eq!(e("*month"), Some(t("2025-03-03T10:00:00Z")));
    assert_eq!(e("*monthly"), Some(t("2025-03-03T10:00:00Z")));
    assert_eq!(
        ExpiryTime::Month(Duration::ZERO).resolve(t("2024-01-31T10:00:00Z")),
        Some(t("2024-03-02T10:00:00Z"))
    );
    assert_eq!(e("*monthly_estimated"), Some(t("2025-02-28T10:00:00Z")));
    assert_eq!(e("*month_end"), Some(t("2025-01-31T23:59:59Z")));
    assert_eq!(e("*month_end+1h2m"), Some(t("2025-02-01T01:01:59Z")));
    assert_eq!(e("*month+12h"), Some(t("2025-03-03T22:00:00Z")));
    assert_eq!(e("*monthly+1s"), Some(t("2025-03-03T10:00:01Z")));
    assert_eq!(e("*daily"), Some(t("2025-02-01T10:00:00Z")));
    assert_eq!(e("*weekly"), Some(t("2025-02-07T10:00:00Z")));
    assert_eq!(e("+720h"), Some(t("2025-03-02T10:00:00Z")));
    assert_eq!(e("2025-12-31T00:00:00Z"), Some(t("2025-12-31T00:00:00Z")));
    assert_eq!(e("2025-12-31 08:00:00"), Some(t("2025-12-31T08:00:00Z")));
    assert_eq!(
        ExpiryTime::Year.resolve(t("2024-02-29T00:00:00Z")),
        Some(t("2025-03-01T00:00:00Z"))
    );
    assert_eq!(e("*year"), Some(t("2026-01-31T10:00:00Z")));
    for bad in [
        "*never",
        "*asap",
        "+",
        "+5x",
        "tomorrow",
        "*month_end+",
        "*month_end1h",
        "*months",
    ] {
        assert!(ExpiryTime::parse(bad).is_none(), "{bad}");
    }
}
