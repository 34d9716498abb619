//! Loads the account side of the plans in `tests/data/tariffplans/`
//! (`accounts/` in the current layout, `accounts_directions/` in the older
//! one with direction columns) and checks the typed definitions and the
//! schedules of their ActionPlans.
#![allow(clippy::unwrap_used)] // test helpers panic on purpose

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use rating::{
    AccountPlanData, ActionType, ExpiryTime, LoadOptions, SharingStrategy, TariffPlan,
    ThresholdType,
};
use rust_decimal::Decimal;

/// A Wednesday, 2025-01-15 10:20:30 UTC: the load time the built-in
/// timings anchor at.
fn loaded_at() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 1, 15, 10, 20, 30).unwrap()
}

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn dec(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

fn load(name: &str) -> TariffPlan {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/data/tariffplans")
        .join(name);
    let opts = LoadOptions {
        loaded_at: loaded_at(),
    };
    let (plan, report) =
        TariffPlan::load_dir(&dir, &opts).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    assert!(
        report.unhandled_files.is_empty(),
        "{:?}",
        report.unhandled_files
    );
    for f in [
        "Actions.csv",
        "ActionPlans.csv",
        "ActionTriggers.csv",
        "AccountActions.csv",
        "SharedGroups.csv",
    ] {
        assert!(
            report.loaded_files.iter().any(|p| p.ends_with(f)),
            "{name}: {f} not loaded"
        );
    }
    plan
}

fn plan_timing<'a>(
    data: &'a AccountPlanData,
    plan: &str,
    actions: &str,
) -> &'a rating::ActionTiming {
    &data.action_plans[plan]
        .iter()
        .find(|p| &*p.actions_id == actions)
        .unwrap()
        .timing
}

#[test]
fn current_layout_loads_every_action_and_trigger_type() {
    let plan = load("accounts");
    let data = plan.account_data();
    let types: BTreeSet<&str> = data
        .actions
        .values()
        .flatten()
        .map(|a| a.action.as_str())
        .collect();
    let expected: BTreeSet<&str> = [
        "*topup",
        "*topup_reset",
        "*debit",
        "*debit_reset",
        "*reset_account",
        "*set_balance",
        "*enable_account",
        "*disable_account",
        "*allow_negative",
        "*deny_negative",
        "*reset_triggers",
        "*log",
        "*cdrlog",
        "*http_post",
        "*remove_account",
        "*remove_balance",
    ]
    .into_iter()
    .collect();
    assert_eq!(types, expected);
    assert!(
        data.actions
            .values()
            .flatten()
            .all(|a| !matches!(a.action, ActionType::Other(_)))
    );
    let thresholds: BTreeSet<&str> = data
        .triggers
        .values()
        .flatten()
        .map(|t| t.threshold_type.as_str())
        .collect();
    assert_eq!(thresholds.len(), 7, "{thresholds:?}");

    // ACT_WELCOME: rows in file order, values exact.
    let welcome = &data.actions["ACT_WELCOME"];
    assert_eq!(welcome.len(), 3);
    assert_eq!(welcome[0].action, ActionType::Topup);
    assert_eq!(welcome[0].units, Some(dec("12.50")));
    assert_eq!(welcome[0].expiry, ExpiryTime::Unlimited);
    assert_eq!(welcome[0].balance_blocker, Some(false));
    // 30m of *voice: nanoseconds, as CGRateS keeps voice units.
    assert_eq!(welcome[1].units, Some(Decimal::from(1_800_000_000_000_u64)));
    assert_eq!(welcome[1].expiry, ExpiryTime::Month(Duration::ZERO));
    assert_eq!(&*welcome[1].rating_subject, "RS_FREE");
    assert_eq!(welcome[2].units, None);
    assert_eq!(welcome[2].balance_blocker, None);

    let promo = &data.actions["ACT_PROMO"][0];
    assert_eq!(
        promo
            .destination_ids
            .iter()
            .map(|s| &**s)
            .collect::<Vec<_>>(),
        ["DST_LANDLINE", "!DST_MOBILE"]
    );
    assert_eq!(promo.categories.len(), 2);
    assert_eq!(&*promo.filters[0], "*string:~*req.Category:call");
    assert_eq!(promo.expiry, ExpiryTime::At(t("2025-06-30T23:59:59Z")));
    assert_eq!(promo.balance_weight, Some(dec("30")));
    assert_eq!(promo.balance_blocker, Some(true));
    let bundle = &data.actions["ACT_MONTHLY_BUNDLE"];
    assert_eq!(bundle[0].expiry, ExpiryTime::MonthEnd(Duration::ZERO));
    assert_eq!(
        bundle[1].expiry,
        ExpiryTime::After(Duration::from_secs(720 * 3600))
    );
    let report = &data.actions["ACT_REPORT"];
    assert_eq!(
        &*report[0].extra_parameters,
        r#"{"Category":"topup","Cost":"BalanceValue"}"#
    );

    // Triggers.
    let guard = &data.triggers["TRG_GUARD"];
    assert_eq!(guard[0].threshold_type, ThresholdType::MinBalance);
    assert_eq!(guard[0].threshold_value, dec("1.5"));
    assert!(guard[0].recurrent);
    assert_eq!(guard[0].min_sleep, Duration::from_secs(3600));
    assert_eq!(&*guard[0].unique_id, "low_credit");
    assert_eq!(guard[2].balance_expiry, ExpiryTime::Month(Duration::ZERO));
    let usage = &data.triggers["TRG_USAGE"][0];
    assert_eq!(usage.expiry_time, Some(t("2026-12-31T23:59:59Z")));
    assert_eq!(usage.activation_time, Some(t("2025-01-01T00:00:00Z")));
    assert_eq!(usage.balance_destination_ids.len(), 2);
    assert_eq!(&*usage.balance_shared_groups[0], "SG_TEAM");
    assert_eq!(&*usage.actions_id, "ACT_SUSPEND");

    // Accounts.
    let key = |a: &str| (std::sync::Arc::from("acme.test"), std::sync::Arc::from(a));
    let ben = &data.account_actions[&key("ben")];
    assert!(ben.allow_negative && !ben.disabled);
    assert_eq!(&*ben.action_plan_id, "AP_STARTER");
    let cat = &data.account_actions[&key("cat")];
    assert!(cat.disabled && cat.action_triggers_id.is_empty());
    let dan = &data.account_actions[&key("dan")];
    assert!(dan.action_plan_id.is_empty() && !dan.allow_negative);
    assert_eq!(data.account_actions.len(), 5);

    // Shared groups: every strategy.
    let strategies: BTreeSet<&str> = data
        .shared_groups
        .values()
        .flatten()
        .map(|g| g.strategy.as_str())
        .collect();
    assert_eq!(strategies.len(), 6, "{strategies:?}");
    let team = &data.shared_groups["SG_TEAM"];
    assert_eq!(team[0].strategy, SharingStrategy::Highest);
    assert_eq!(&*team[0].rating_subject, "RS_TEAM");
}

#[test]
fn current_layout_schedules() {
    let plan = load("accounts");
    let data = plan.account_data();
    let now = loaded_at();
    // *asap: once, at load.
    let asap = plan_timing(data, "AP_STARTER", "ACT_WELCOME");
    assert!(asap.is_once());
    assert_eq!(asap.first_run(now), Some(now));
    assert_eq!(asap.next_run(now), None);
    // *monthly: the 15th at 10:20:30, from the load time on.
    let monthly = plan_timing(data, "AP_STARTER", "ACT_MONTHLY_BUNDLE");
    assert_eq!(monthly.first_run(now), Some(now));
    assert_eq!(monthly.next_run(now), Some(t("2025-02-15T10:20:30Z")));
    // Timings.csv: the first of each month at 06:00.
    let first = plan_timing(data, "AP_STARTER", "ACT_MONTHLY_FEE");
    assert_eq!(first.id(), "TM_FIRST_MORNING");
    assert_eq!(first.next_run(now), Some(t("2025-02-01T06:00:00Z")));
    assert_eq!(
        first.next_run(t("2025-12-01T06:00:00Z")),
        Some(t("2026-01-01T06:00:00Z"))
    );
    // A one-time date runs once.
    let launch = plan_timing(data, "AP_LAUNCH", "ACT_PROMO");
    assert_eq!(launch.next_run(now), Some(t("2025-03-15T09:30:00Z")));
    assert_eq!(launch.next_run(t("2025-03-15T09:30:00Z")), None);
    // A Timings.csv Time of *asap: once, at load.
    let at_load = plan_timing(data, "AP_LAUNCH", "ACT_REPORT");
    assert!(at_load.is_once());
    assert_eq!(at_load.first_run(now), Some(now));
    // *month_end: the last day of each month at the load time of day.
    let month_end = plan_timing(data, "AP_HOUSEKEEPING", "ACT_FEE_RESET");
    assert_eq!(month_end.next_run(now), Some(t("2025-01-31T10:20:30Z")));
    assert_eq!(
        month_end.next_run(t("2025-01-31T10:20:30Z")),
        Some(t("2025-02-28T10:20:30Z"))
    );
    // *yearly: 15 January.
    let yearly = plan_timing(data, "AP_HOUSEKEEPING", "ACT_SET_CREDIT");
    assert_eq!(yearly.next_run(now), Some(t("2026-01-15T10:20:30Z")));
}

#[test]
fn older_layout_with_directions_loads() {
    let plan = load("accounts_directions");
    let data = plan.account_data();
    let flat = &data.actions["ACT_TOPUP_FLAT"];
    assert_eq!(flat[0].action, ActionType::TopupReset);
    assert_eq!(&*flat[0].directions[0], "*out");
    assert_eq!(&*flat[0].shared_groups[0], "SG_FLAT");
    assert_eq!(flat[0].units, Some(dec("20")));
    assert_eq!(flat[0].balance_weight, Some(dec("10")));
    assert_eq!(flat[0].weight, dec("10"));
    assert_eq!(flat[1].units, Some(Decimal::from(90_000_000_000_u64)));
    assert_eq!(
        flat[1].expiry,
        ExpiryTime::After(Duration::from_secs(168 * 3600))
    );
    assert_eq!(&*flat[1].categories[0], "call");
    let trg = &data.triggers["TRG_FLAT"];
    assert_eq!(&*trg[1].balance_directions[0], "*out");
    assert_eq!(&*trg[1].balance_categories[0], "call");
    assert_eq!(&*trg[1].balance_destination_ids[0], "DST_CITY");
    assert_eq!(trg[1].stats_min_queued_items, Some(3));
    assert_eq!(trg[1].min_sleep, Duration::from_secs(1800));
    assert_eq!(&*trg[1].actions_id, "ACT_NOTE");
    assert_eq!(trg[1].weight, dec("5"));
    let acct = &data.account_actions[&(
        std::sync::Arc::from("town.test"),
        std::sync::Arc::from("1001"),
    )];
    assert_eq!(&*acct.action_plan_id, "AP_FLAT");
    assert_eq!(&*acct.action_triggers_id, "TRG_FLAT");

    // Built-in schedules anchored at the load time (10:20:30 on the 15th).
    let now = loaded_at();
    let est = &data.action_plans["AP_FLAT"][1].timing;
    assert_eq!(est.next_run(now), Some(t("2025-02-15T10:20:30Z")));
    let tick = &data.action_plans["AP_TICK"];
    let at = |id: &str| &tick.iter().find(|p| p.timing.id() == id).unwrap().timing;
    assert_eq!(at("*hourly").next_run(now), Some(t("2025-01-15T11:20:30Z")));
    assert_eq!(
        at("*every_minute").next_run(now),
        Some(t("2025-01-15T10:21:30Z"))
    );
    assert_eq!(at("*daily").next_run(now), Some(t("2025-01-16T10:20:30Z")));
    assert_eq!(at("*weekly").next_run(now), Some(t("2025-01-22T10:20:30Z")));
}
