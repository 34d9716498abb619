//! Every action type, every trigger type and the scheduler, at fixed
//! instants.

use std::collections::BTreeMap;
use std::path::Path;

use chrono::{DateTime, TimeDelta, Utc};
use rust_decimal::Decimal;

use super::*;
use crate::account::{Account, BalanceType};
use crate::actions::triggers::*;
use crate::{LoadOptions, TariffPlan};

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn d(s: &str) -> Decimal {
    s.parse().unwrap()
}

const NOW: &str = "2025-01-15T10:20:30Z";

const RATING: [(&str, &str); 5] = [
    ("Destinations.csv", "DST_A,1\nDST_B,2\n"),
    ("Rates.csv", "RT_A,0,0.1,60s,60s,0s\n"),
    (
        "DestinationRates.csv",
        "DR_A,DST_A,RT_A,*up,4,0,\nDR_A,DST_B,RT_A,*up,4,0,\n",
    ),
    ("RatingPlans.csv", "RP_A,DR_A,*any,10\n"),
    (
        "RatingProfiles.csv",
        "t.test,call,*any,2024-01-01T00:00:00Z,RP_A,\n",
    ),
];

const ACTIONS: &str = "\
TOPUP,*topup,,,main,*monetary,call,DST_A;!DST_B,RS_X,SG_1,*month,TM_X,10.5,20,true,false,10
TOPUP_MIN,*topup,,,mins,*voice,,*any,,,+1h,,90s,,,,10
RESET,*topup_reset,,,main,*monetary,,,,,,,3,,,,10
DEBIT,*debit,,,main,*monetary,,,,,,,2.25,,,,10
DEBIT_RESET,*debit_reset,,,main,*monetary,,,,,,,4,,,,10
SET,*set_balance,,,main,*monetary,,,,,2030-01-01T00:00:00Z,,7,5,false,true,10
WIPE,*reset_account,,,,,,,,,,,,,,,10
OFF,*disable_account,,,,,,,,,,,,,,,10
OFF,*deny_negative,,,,,,,,,,,,,,,5
ON,*enable_account,,,,,,,,,,,,,,,10
ON,*allow_negative,,,,,,,,,,,,,,,5
REARM,*reset_triggers,,,,,,,,,,,,,,,10
REPORT,*topup,,,main,*monetary,,,,,,,1,,,,30
REPORT,*log,,,,,,,,,,,,,,,20
REPORT,*cdrlog,{},,,,,,,,,,,,,,10
REPORT,*http_post,http://hook.invalid/x,,,,,,,,,,,,,,5
CLOSE,*remove_balance,,,main,*monetary,,,,,,,,,,,20
CLOSE,*remove_account,,,,,,,,,,,,,,,10
BAD,*topup,,,main,*monetary,,,,,,,1,,,,20
BAD,*cgr_rpc,,,,,,,,,,,,,,,10
REARM_VOICE,*reset_triggers,,,,*voice,,,,,,,,,,,10
REARM_MAIN,*reset_triggers,,,main,,,,,,,,,,,,10
REARM_DST,*reset_triggers,,,,,,DST_A,,,,,,,,,10
REARM_UID,*reset_triggers,{\"UniqueID\":\"u2\"},,,,,,,,,,,,,,10
ZERO_A,*reset_counters,,,a,*monetary,,,,,,,,,,,10
ZERO_X,*reset_counters,,,,*monetary,,DST_A,,,,,,,,,10
";

const TRIGGERS: &str = "\
T_MIN,,*min_balance,2,false,0,,,main,*monetary,,,,,,,,,,OFF,10
T_MINR,,*min_balance,2,true,1h,,,main,*monetary,,,,,,,,,,OFF,10
T_MAX,,*max_balance,100,false,0,,,main,*monetary,,,,,,,,,,ON,10
T_EXP,,*balance_expired,0,false,0,,,mins,*voice,,,,,,,,,,CLOSE,10
T_CNT,,*max_event_counter,5,false,0,,,,*monetary,,,,,,,,,,OFF,10
T_CNT,,*min_event_counter,1,false,0,,,,*voice,,,,,,,,,,ON,5
T_WIN,,*min_balance,2,false,0,2025-01-01T00:00:00Z,,main,*monetary,,,,,,,,,,OFF,10
T_LATE,,*min_balance,2,false,0,,2026-01-01T00:00:00Z,main,*monetary,,,,,,,,,,OFF,10
T_MIX,u1,*min_balance,2,false,0,,,main,*monetary,,DST_A,,,,,,,,OFF,10
T_MIX,u2,*min_balance,2,false,0,,,other,*monetary,,,,,,,,,,OFF,10
T_MIX,u3,*min_balance,2,false,0,,,mins,*voice,,,,,,,,,,OFF,10
T_DST,a,*max_event_counter,0.15,false,0,,,,*monetary,,DST_A,,,,,,,,OFF,10
T_DST,b,*max_event_counter,0.15,false,0,,,,*monetary,,DST_B,,,,,,,,ON,10
";

const PLANS: &str = "\
AP,TOPUP,*asap,10
AP,RESET,*monthly,20
AP,DEBIT,*daily,5
";

fn plan() -> TariffPlan {
    plan_loaded_at(t(NOW))
}

fn plan_loaded_at(loaded_at: DateTime<Utc>) -> TariffPlan {
    let mut files: Vec<(&Path, &str)> = RATING.iter().map(|(n, t)| (Path::new(*n), *t)).collect();
    files.push((Path::new("Actions.csv"), ACTIONS));
    files.push((Path::new("ActionTriggers.csv"), TRIGGERS));
    files.push((Path::new("ActionPlans.csv"), PLANS));
    files.push((
        Path::new("AccountActions.csv"),
        "t.test,1001,AP,T_MIN,true,false\nt.test,1002,,,,\n",
    ));
    files.push((
        Path::new("Timings.csv"),
        "TM_X,*any,*any,*any,*any,00:00:00\n",
    ));
    let opts = LoadOptions { loaded_at };
    TariffPlan::from_csv(&files, &opts).unwrap().0
}

fn run(p: &TariffPlan, acc: &mut Account, id: &str, now: DateTime<Utc>) -> ActionsOutcome {
    apply_actions(acc, &p.account_data().actions[id], now).unwrap()
}

fn main_value(acc: &Account) -> Option<Decimal> {
    acc.balances_of(BalanceType::Monetary)
        .iter()
        .find(|b| b.id == "main")
        .map(|b| b.value)
}

#[test]
fn topup_creates_the_balance_with_the_action_properties_then_adds() {
    let p = plan();
    let now = t(NOW);
    let mut a = Account::new("t.test", "1001");
    run(&p, &mut a, "TOPUP", now);
    let b = &a.balances_of(BalanceType::Monetary)[0];
    assert_eq!(
        (b.id.as_str(), b.value, b.weight),
        ("main", d("10.5"), d("20"))
    );
    // *month: one calendar month after the run.
    assert_eq!(b.expiration, Some(t("2025-02-15T10:20:30Z")));
    assert_eq!(b.destination_ids.get("DST_A"), Some(&true));
    assert_eq!(b.destination_ids.get("DST_B"), Some(&false));
    assert_eq!(b.categories.get("call"), Some(&true));
    assert_eq!(b.rating_subject, "RS_X");
    assert!(b.shared_groups.contains("SG_1") && b.timing_ids.contains("TM_X"));
    assert!(b.blocker && !b.disabled);
    run(&p, &mut a, "TOPUP", now);
    assert_eq!(a.balances_of(BalanceType::Monetary).len(), 1);
    assert_eq!(main_value(&a), Some(d("21")));
    assert_eq!(a.update_time, Some(now));
    // *voice units count nanoseconds; +1h resolves against the run.
    run(&p, &mut a, "TOPUP_MIN", now);
    let m = &a.balances_of(BalanceType::Voice)[0];
    assert_eq!(m.value, Decimal::from(90_000_000_000u64));
    assert_eq!(m.expiration, Some(now + TimeDelta::hours(1)));
}

#[test]
fn topup_reset_debit_and_debit_reset() {
    let p = plan();
    let now = t(NOW);
    let mut a = Account::new("t.test", "1001");
    run(&p, &mut a, "TOPUP", now);
    run(&p, &mut a, "RESET", now);
    assert_eq!(main_value(&a), Some(d("3")));
    run(&p, &mut a, "DEBIT", now);
    assert_eq!(main_value(&a), Some(d("0.75")));
    run(&p, &mut a, "DEBIT_RESET", now);
    assert_eq!(main_value(&a), Some(d("-4")));
    // Still one balance: each action found "main" by its ID.
    assert_eq!(a.balances_of(BalanceType::Monetary).len(), 1);
}

#[test]
fn set_balance_sets_value_and_properties() {
    let p = plan();
    let mut a = Account::new("t.test", "1001");
    run(&p, &mut a, "TOPUP", t(NOW));
    run(&p, &mut a, "SET", t(NOW));
    let b = &a.balances_of(BalanceType::Monetary)[0];
    assert_eq!((b.value, b.weight), (d("7"), d("5")));
    assert_eq!(b.expiration, Some(t("2030-01-01T00:00:00Z")));
    assert!(b.disabled && !b.blocker);
}

#[test]
fn account_flags_reset_account_and_reset_triggers() {
    let p = plan();
    let now = t(NOW);
    let mut a = Account::new("t.test", "1001");
    a.allow_negative = true;
    run(&p, &mut a, "OFF", now);
    assert!(a.disabled && !a.allow_negative);
    run(&p, &mut a, "ON", now);
    assert!(!a.disabled && a.allow_negative);
    run(&p, &mut a, "TOPUP", now);
    a.counters.insert("*monetary".into(), d("3"));
    a.trigger_runs.insert(
        "T_MIN#0".into(),
        TriggerRun {
            executed: true,
            last_run: Some(now),
        },
    );
    run(&p, &mut a, "REARM", now);
    assert!(!a.trigger_runs["T_MIN#0"].executed);
    run(&p, &mut a, "WIPE", now);
    assert_eq!(main_value(&a), Some(Decimal::ZERO));
    assert!(a.counters.is_empty() && a.trigger_runs.is_empty());
}

#[test]
fn log_cdrlog_and_http_post_are_effects_for_the_caller() {
    let p = plan();
    let mut a = Account::new("t.test", "1001");
    let out = run(&p, &mut a, "REPORT", t(NOW));
    assert_eq!(out.effects.len(), 3);
    // Weight order: the top-up (30) ran before the *log (20) saw it.
    match &out.effects[0] {
        Effect::Log { account_json } => {
            assert!(account_json.contains("\"Value\":1"), "{account_json}")
        }
        e => panic!("{e:?}"),
    }
    match &out.effects[1] {
        Effect::Cdrlog { template, entries } => {
            assert_eq!(template, "{}");
            assert_eq!(entries.len(), 1);
            assert_eq!(entries[0].0, ActionType::Topup);
            assert_eq!(entries[0].3, d("1"));
        }
        e => panic!("{e:?}"),
    }
    match &out.effects[2] {
        Effect::HttpPost { url, body } => {
            assert_eq!(url, "http://hook.invalid/x");
            assert!(body.starts_with("{\"ID\":\"t.test:1001\""));
        }
        e => panic!("{e:?}"),
    }
    assert!(!out.remove_account);
}

#[test]
fn remove_balance_and_remove_account() {
    let p = plan();
    let mut a = Account::new("t.test", "1001");
    run(&p, &mut a, "TOPUP", t(NOW));
    run(&p, &mut a, "TOPUP_MIN", t(NOW));
    let out = run(&p, &mut a, "CLOSE", t(NOW));
    assert!(out.remove_account);
    assert!(a.balances_of(BalanceType::Monetary).is_empty());
    assert_eq!(a.balances_of(BalanceType::Voice).len(), 1);
}

#[test]
fn an_action_not_executed_fails_and_leaves_the_account_unchanged() {
    let p = plan();
    let mut a = Account::new("t.test", "1001");
    let before = a.clone();
    let r = apply_actions(&mut a, &p.account_data().actions["BAD"], t(NOW));
    assert!(r.is_err());
    assert_eq!(a, before);
}

fn with_triggers(sets: &[&str], main: &str) -> Account {
    let mut a = Account::new("t.test", "1001");
    a.action_triggers = sets.iter().map(|s| (*s).to_owned()).collect();
    a.add_balance(
        BalanceType::Monetary,
        crate::account::Balance {
            id: "main".into(),
            value: d(main),
            ..Default::default()
        },
    );
    a
}

#[test]
fn min_balance_fires_once_until_reset() {
    let p = plan();
    let defs = &p.account_data().triggers;
    let now = t(NOW);
    let mut a = with_triggers(&["T_MIN"], "5");
    assert!(check_triggers(&mut a, defs, now).is_empty());
    a.balances.get_mut(&BalanceType::Monetary).unwrap()[0].value = d("2");
    assert_eq!(check_triggers(&mut a, defs, now), vec![Arc::from("OFF")]);
    assert_eq!(a.trigger_runs["T_MIN#0"].last_run, Some(now));
    assert!(check_triggers(&mut a, defs, now + TimeDelta::days(1)).is_empty());
    run(&p, &mut a, "REARM", now);
    assert_eq!(check_triggers(&mut a, defs, now).len(), 1);
}

#[test]
fn recurrent_trigger_waits_min_sleep() {
    let p = plan();
    let defs = &p.account_data().triggers;
    let now = t(NOW);
    let mut a = with_triggers(&["T_MINR"], "1");
    assert_eq!(check_triggers(&mut a, defs, now).len(), 1);
    assert!(check_triggers(&mut a, defs, now + TimeDelta::minutes(59)).is_empty());
    assert_eq!(
        check_triggers(&mut a, defs, now + TimeDelta::hours(1)).len(),
        1
    );
}

#[test]
fn max_balance_fires_at_or_above() {
    let p = plan();
    let defs = &p.account_data().triggers;
    let mut a = with_triggers(&["T_MAX"], "99.99");
    assert!(check_triggers(&mut a, defs, t(NOW)).is_empty());
    a.balances.get_mut(&BalanceType::Monetary).unwrap()[0].value = d("100");
    assert_eq!(check_triggers(&mut a, defs, t(NOW)), vec![Arc::from("ON")]);
}

#[test]
fn balance_expired_fires_once_the_balance_expired() {
    let p = plan();
    let defs = &p.account_data().triggers;
    let now = t(NOW);
    let mut a = with_triggers(&["T_EXP"], "1");
    run(&p, &mut a, "TOPUP_MIN", now);
    assert!(check_triggers(&mut a, defs, now).is_empty());
    assert_eq!(
        check_triggers(&mut a, defs, now + TimeDelta::hours(1)),
        vec![Arc::from("CLOSE")]
    );
}

#[test]
fn event_counters_count_debits() {
    let p = plan();
    let defs = &p.account_data().triggers;
    let now = t(NOW);
    let mut a = with_triggers(&["T_CNT"], "100");
    a.balances.get_mut(&BalanceType::Monetary).unwrap()[0].value = d("100");
    // No *voice debited yet: the *min_event_counter (<= 1) fires.
    assert_eq!(check_triggers(&mut a, defs, now), vec![Arc::from("ON")]);
    let cd = crate::CallDescriptor::new("1001", "1", now, std::time::Duration::from_secs(60));
    let mut cd = cd;
    cd.tenant = "t.test";
    for _ in 0..49 {
        let out = crate::debit(&mut a, &cd, &p, crate::RoundingMode::Exact, now).unwrap();
        record_debit(&mut a, &out, &cd, &p, defs);
    }
    // 49 minutes at 0.1: 4.9, below the 5 of the *max_event_counter.
    let key = counter_key(&defs["T_CNT"][0]).unwrap();
    assert_eq!(a.counters[&key], d("4.9"));
    assert!(check_triggers(&mut a, defs, now).is_empty());
    let out = crate::debit(&mut a, &cd, &p, crate::RoundingMode::Exact, now).unwrap();
    record_debit(&mut a, &out, &cd, &p, defs);
    assert_eq!(check_triggers(&mut a, defs, now), vec![Arc::from("OFF")]);
}

#[test]
fn triggers_outside_their_window_do_not_fire() {
    let p = plan();
    let defs = &p.account_data().triggers;
    // T_WIN expired on 2025-01-01; T_LATE activates in 2026.
    let mut a = with_triggers(&["T_WIN", "T_LATE"], "0");
    assert!(check_triggers(&mut a, defs, t(NOW)).is_empty());
    assert_eq!(
        check_triggers(&mut a, defs, t("2026-01-02T00:00:00Z")),
        vec![Arc::from("OFF")]
    );
}

#[test]
fn schedule_runs_asap_once_and_recurring_rows_on_their_timing() {
    let p = plan();
    let data = p.account_data();
    let now = t(NOW);
    let mut s = Schedule::from_plan(data, now, now);
    let due = s.due(now);
    // Only 1001 has a plan; *asap is due at once.
    assert_eq!(due.len(), 1);
    assert_eq!((&*due[0].account, &*due[0].actions_id), ("1001", "TOPUP"));
    assert!(s.due(now).is_empty());
    // *daily (anchored at the load, 10:20:30) comes before *monthly.
    let next = s.next_wakeup().unwrap();
    assert_eq!(next, t("2025-01-16T10:20:30Z"));
    let due = s.due(next);
    assert_eq!(due.len(), 1);
    assert_eq!(&*due[0].actions_id, "DEBIT");
    assert_eq!(s.next_wakeup(), Some(t("2025-01-17T10:20:30Z")));
    // Runs missed while stopped run once.
    let due = s.due(t("2025-02-14T10:20:30Z"));
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].at, t("2025-01-17T10:20:30Z"));
    // On the monthly day both are due: the heavier row first.
    let due = s.due(t("2025-02-15T10:20:30Z"));
    let ids: Vec<&str> = due.iter().map(|r| &*r.actions_id).collect();
    assert_eq!(ids, ["RESET", "DEBIT"]);
    assert_eq!(s.accounts_of("AP"), ["t.test:1001"]);
    s.remove_account("t.test", "1001");
    assert_eq!(s.next_wakeup(), None);
    assert!(!s.add(data, "t.test", "1002", "AP_NONE", now, now));
    assert!(s.add(data, "t.test", "1002", "AP", now, now));
    let due = s.due(now);
    assert_eq!(due.len(), 1, "{due:?}");
}

#[test]
fn initial_account_takes_flags_and_trigger_sets() {
    let p = plan();
    let aa = &p.account_data().account_actions[&(Arc::from("t.test"), Arc::from("1001"))];
    let a = initial_account(aa);
    assert_eq!(a.key(), "t.test:1001");
    assert!(a.allow_negative && !a.disabled);
    assert_eq!(a.action_triggers, ["T_MIN"]);
}

fn fired(keys: &[&str], now: DateTime<Utc>) -> BTreeMap<String, TriggerRun> {
    keys.iter()
        .map(|k| {
            (
                (*k).to_owned(),
                TriggerRun {
                    executed: true,
                    last_run: Some(now),
                },
            )
        })
        .collect()
}

fn armed(a: &Account) -> Vec<&str> {
    a.trigger_runs
        .iter()
        .filter(|(_, r)| !r.executed)
        .map(|(k, _)| k.as_str())
        .collect()
}

/// CGRateS's `ActionTrigger.Match`: `*reset_triggers` re-arms only the
/// rows its balance type, BalanceId, destinations or ExtraParameters
/// (`UniqueID`) select.
#[test]
fn reset_triggers_rearms_only_the_rows_its_filter_matches() {
    let p = plan();
    let data = p.account_data();
    let now = t(NOW);
    let all = ["T_MIX#u1", "T_MIX#u2", "T_MIX#u3"];
    let rearm = |id: &str| {
        let mut a = with_triggers(&["T_MIX"], "5");
        a.trigger_runs = fired(&all, now);
        apply_actions_with(&mut a, &data.actions[id], &data.triggers, now).unwrap();
        armed(&a).into_iter().map(str::to_owned).collect::<Vec<_>>()
    };
    assert_eq!(rearm("REARM_VOICE"), ["T_MIX#u3"]);
    assert_eq!(rearm("REARM_MAIN"), ["T_MIX#u1"]);
    assert_eq!(rearm("REARM_DST"), ["T_MIX#u1"]);
    assert_eq!(rearm("REARM_UID"), ["T_MIX#u2"]);
    // Without a filter every row is re-armed.
    assert_eq!(rearm("REARM"), all);
}

/// Event counters are kept per balance filter: a debit to DST_A counts
/// for the DST_A trigger only.
#[test]
fn event_counters_are_kept_per_balance_filter() {
    let p = plan();
    let data = p.account_data();
    let defs = &data.triggers;
    let now = t(NOW);
    let mut a = with_triggers(&["T_DST"], "100");
    let mut cd = crate::CallDescriptor::new("1001", "1", now, std::time::Duration::from_secs(60));
    cd.tenant = "t.test";
    for _ in 0..2 {
        let out = crate::debit(&mut a, &cd, &p, crate::RoundingMode::Exact, now).unwrap();
        record_debit(&mut a, &out, &cd, &p, defs);
    }
    let ka = counter_key(&defs["T_DST"][0]).unwrap();
    let kb = counter_key(&defs["T_DST"][1]).unwrap();
    assert_eq!(
        a.counters.get(&ka),
        Some(&d("0.2")),
        "{:?} {ka}",
        a.counters
    );
    assert_eq!(a.counters[&kb], Decimal::ZERO);
    // Only DST_A's *max_event_counter (>= 0.15) fires.
    assert_eq!(check_triggers(&mut a, defs, now), vec![Arc::from("OFF")]);
    let mut cd_b = cd;
    cd_b.destination = "2";
    let out = crate::debit(&mut a, &cd_b, &p, crate::RoundingMode::Exact, now).unwrap();
    record_debit(&mut a, &out, &cd_b, &p, defs);
    assert_eq!(a.counters[&kb], d("0.1"));
    // *reset_counters compares filters as CGRateS's BalanceFilter.Equal:
    // the counter's filter carries the UniqueID as its ID, so an action
    // naming only DST_A equals nothing; one naming `a` zeroes a's only.
    apply_actions_with(&mut a, &data.actions["ZERO_X"], defs, now).unwrap();
    assert_eq!(a.counters[&ka], d("0.2"));
    apply_actions_with(&mut a, &data.actions["ZERO_A"], defs, now).unwrap();
    assert_eq!(a.counters[&ka], Decimal::ZERO);
    assert_eq!(a.counters[&kb], d("0.1"));
}

/// The moment a `*balance_expired` trigger is next due: the watched
/// balance's expiry, while the trigger is armed.
#[test]
fn next_balance_expiry_is_the_watched_balance_expiry_while_armed() {
    let p = plan();
    let data = p.account_data();
    let now = t(NOW);
    let mut a = with_triggers(&["T_EXP"], "1");
    assert_eq!(next_balance_expiry(&a, &data.triggers, now), None);
    run(&p, &mut a, "TOPUP_MIN", now);
    let exp = now + TimeDelta::hours(1);
    assert_eq!(next_balance_expiry(&a, &data.triggers, now), Some(exp));
    // Past it: nothing later; from the start of time it is still pending.
    assert_eq!(next_balance_expiry(&a, &data.triggers, exp), None);
    assert_eq!(
        next_balance_expiry(&a, &data.triggers, DateTime::<Utc>::MIN_UTC),
        Some(exp)
    );
    assert_eq!(check_triggers(&mut a, &data.triggers, exp).len(), 1);
    assert_eq!(
        next_balance_expiry(&a, &data.triggers, DateTime::<Utc>::MIN_UTC),
        None
    );
}

fn next_of(s: &Schedule, id: &str) -> Option<DateTime<Utc>> {
    let mut copy = s.clone();
    // Runs due up to a year ahead, in order: the first of `id`.
    copy.due(t("2026-12-31T00:00:00Z"))
        .into_iter()
        .find(|r| &*r.actions_id == id)
        .map(|r| r.at)
}

/// A plan loaded for rating is anchored at the epoch (replay
/// determinism); the schedule re-anchors its ActionPlan timings at the
/// load (or attach) moment, as CGRateS: `*monthly` on the load day at the
/// load time, not on the 1st at 00:00.
#[test]
fn schedule_anchors_builtin_timings_at_the_load_moment() {
    let p = plan_loaded_at(DateTime::UNIX_EPOCH);
    let data = p.account_data();
    let now = t(NOW);
    let s = Schedule::from_plan(data, now, now);
    assert_eq!(next_of(&s, "RESET"), Some(t("2025-02-15T10:20:30Z")));
    assert_eq!(next_of(&s, "DEBIT"), Some(t("2025-01-16T10:20:30Z")));
    let mut s = Schedule::default();
    let attached = t("2025-01-20T08:00:00Z");
    assert!(s.add(data, "t.test", "1002", "AP", attached, attached));
    assert_eq!(next_of(&s, "RESET"), Some(t("2025-02-20T08:00:00Z")));
    // Attached again later: one run a month, still on the 20th.
    let again = t("2025-01-25T08:00:00Z");
    assert!(s.add(data, "t.test", "1002", "AP", again, again));
    let runs = s.clone().due(t("2025-02-28T00:00:00Z"));
    let resets: Vec<_> = runs.iter().filter(|r| &*r.actions_id == "RESET").collect();
    assert_eq!(resets.len(), 1, "{runs:?}");
    assert_eq!(resets[0].at, t("2025-02-20T08:00:00Z"));
}

/// After a restart the schedule is rebuilt with the saved anchor: a run
/// that happened just before is not run again, a run missed while
/// stopped is not caught up (CGRateS's scheduler queues only future runs)
/// and the next one is not skipped.
#[test]
fn a_rebuilt_schedule_neither_reruns_nor_skips_nor_catches_up() {
    let p = plan_loaded_at(DateTime::UNIX_EPOCH);
    let data = p.account_data();
    let loaded = t(NOW);
    let restart = |at: &str| {
        let mut s = Schedule::from_plan(data, loaded, t(at));
        // The restore drops the one-time rows: they ran at load.
        drop(s.due(t(at)));
        s
    };
    // Just after the February run: the next is March's.
    let s = restart("2025-02-15T10:20:31Z");
    assert_eq!(next_of(&s, "RESET"), Some(t("2025-03-15T10:20:30Z")));
    // Stopped over the February run: not caught up, March's is next.
    let s = restart("2025-02-16T00:00:00Z");
    assert_eq!(next_of(&s, "RESET"), Some(t("2025-03-15T10:20:30Z")));
    assert_eq!(next_of(&s, "DEBIT"), Some(t("2025-02-16T10:20:30Z")));
    // Just before it: February's run still comes.
    let s = restart("2025-02-15T10:20:29Z");
    assert_eq!(next_of(&s, "RESET"), Some(t("2025-02-15T10:20:30Z")));
    assert!(next_of(&s, "TOPUP").is_none());
}
