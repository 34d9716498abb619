//! Action triggers on an account, as CGRateS's `engine/account.go`,
//! `engine/action_trigger.go` and `engine/units_counter.go` (v0.10):
//! which trigger rows fire ([`check_triggers`]), the event counters they
//! watch ([`record_debit`], one counter per counter type, balance type and
//! balance filter), which rows an action re-arms (`*reset_triggers`) or
//! whose counters it zeroes (`*reset_counters`), and when a
//! `*balance_expired` row is next due ([`next_balance_expiry`]).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use rust_decimal::Decimal;

use super::exec::{balance_type, filter_set, id_set};
use super::{ActionDef, ActionTriggerDef, ThresholdType};
use crate::account::{Account, Balance, ChargeKind, DebitOutcome, FilterSet};
use crate::call::CallDescriptor;
use crate::plan::TariffPlan;

/// Trigger sets by ID (ActionTriggers.csv).
pub(crate) type TriggerSets = BTreeMap<Arc<str>, Vec<ActionTriggerDef>>;

/// The state of one attached trigger (CGRateS's `Executed` and
/// `LastExecutionTime`), kept on the account by [`trigger_key`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TriggerRun {
    /// Fired and not re-armed since (`*reset_triggers` re-arms).
    pub executed: bool,
    /// When it last fired.
    pub last_run: Option<DateTime<Utc>>,
}

/// The key of a trigger row in [`Account::trigger_runs`]: `SET#UniqueID`,
/// or `SET#index` (its row number within the set) without a UniqueID.
#[must_use]
pub fn trigger_key(def: &ActionTriggerDef, index: usize) -> String {
    if def.unique_id.is_empty() {
        format!("{}#{index}", def.id)
    } else {
        format!("{}#{}", def.id, def.unique_id)
    }
}

/// The account's attached trigger rows with their keys, by Weight
/// (highest first).
fn attached<'d>(acc: &Account, defs: &'d TriggerSets) -> Vec<(String, &'d ActionTriggerDef)> {
    let mut rows: Vec<(String, &ActionTriggerDef)> = Vec::new();
    for set in &acc.action_triggers {
        if let Some(list) = defs.get(set.as_str()) {
            for (i, d) in list.iter().enumerate() {
                rows.push((trigger_key(d, i), d));
            }
        }
    }
    rows.sort_by_key(|r| std::cmp::Reverse(r.1.weight));
    rows
}

/// Whether a threshold type watches a counter, and which kind: `*event`
/// (`*min_event_counter`, `*max_event_counter`) or `*balance`
/// (`*min_balance_counter`, `*max_balance_counter`).
fn counter_kind(t: ThresholdType) -> Option<&'static str> {
    match t {
        ThresholdType::MinEventCounter | ThresholdType::MaxEventCounter => Some("*event"),
        ThresholdType::MinBalanceCounter | ThresholdType::MaxBalanceCounter => Some("*balance"),
        _ => None,
    }
}

fn join(set: &FilterSet) -> String {
    set.iter()
        .map(|(k, on)| if *on { k.clone() } else { format!("!{k}") })
        .collect::<Vec<_>>()
        .join(",")
}

/// The ID a counter filter carries: the trigger's BalanceTag, else its
/// UniqueID (CGRateS's `InitCounters`).
fn counter_id(t: &ActionTriggerDef) -> &str {
    if t.balance_id.is_empty() {
        &t.unique_id
    } else {
        &t.balance_id
    }
}

/// The key of the counter a counter trigger watches in
/// [`Account::counters`]: counter kind, balance type and the trigger's
/// balance filter, so that triggers with the same filter share one counter
/// (CGRateS's `UnitCounters`, one `CounterFilter` per distinct filter);
/// `None` for a trigger that watches no counter.
#[must_use]
pub fn counter_key(t: &ActionTriggerDef) -> Option<String> {
    let kind = counter_kind(t.threshold_type)?;
    let opt = |o: Option<bool>| o.map_or(String::new(), |b| b.to_string());
    Some(format!(
        "{kind}|{}|id={};dst={};cat={};rs={};sg={};tm={};w={};blk={};dis={}",
        t.balance_type.trim(),
        counter_id(t),
        join(&filter_set(&t.balance_destination_ids)),
        join(&filter_set(&t.balance_categories)),
        t.balance_rating_subject,
        id_set(&t.balance_shared_groups)
            .into_iter()
            .collect::<Vec<_>>()
            .join(","),
        id_set(&t.balance_timing_ids)
            .into_iter()
            .collect::<Vec<_>>()
            .join(","),
        t.balance_weight
            .map_or(String::new(), |w| w.normalize().to_string()),
        opt(t.balance_blocker),
        opt(t.balance_disabled),
    ))
}

/// Adds a debit to the account's counters (CGRateS's `countUnits`): for
/// each counter trigger attached (`defs`), the charges of this account of
/// the trigger's balance type (money under `*monetary`, units under their
/// type) count when the call matches the trigger's filter (`*event`
/// counters: its categories and destination IDs, as `MatchCCFilter`) or
/// the balance charged matches it (`*balance` counters).
pub fn record_debit(
    acc: &mut Account,
    outcome: &DebitOutcome,
    cd: &CallDescriptor<'_>,
    plan: &TariffPlan,
    defs: &BTreeMap<Arc<str>, Vec<ActionTriggerDef>>,
) {
    let me = acc.key();
    let mut seen = BTreeSet::new();
    let mut add: Vec<(String, Decimal)> = Vec::new();
    for (_, t) in attached(acc, defs) {
        let Some(key) = counter_key(t) else { continue };
        if !seen.insert(key.clone()) {
            continue;
        }
        let Ok(Some(bt)) = balance_type(&t.balance_type) else {
            continue;
        };
        let event = counter_kind(t.threshold_type) == Some("*event");
        // The counter exists (at zero) even when this call is not counted.
        let mut sum = Decimal::ZERO;
        let call_ok = !event || call_matches(t, cd, plan);
        for c in outcome
            .charges
            .iter()
            .filter(|c| call_ok && c.account == me)
        {
            if c.balance_type != bt || (c.kind == ChargeKind::Rounding && c.amount.is_zero()) {
                continue;
            }
            let counts = event
                || acc
                    .balances_of(bt)
                    .iter()
                    .find(|b| b.uuid == c.balance_uuid)
                    .is_some_and(|b| balance_matches(b, t));
            if counts {
                sum = sum.saturating_add(c.amount);
            }
        }
        add.push((key, sum));
    }
    for (key, v) in add {
        let e = acc.counters.entry(key).or_default();
        *e = e.saturating_add(v);
    }
}

/// CGRateS's `CallCost.MatchCCFilter`: the trigger's categories name the
/// call's category, and one of its destination IDs holds a prefix of the
/// number (each unset: any).
fn call_matches(t: &ActionTriggerDef, cd: &CallDescriptor<'_>, plan: &TariffPlan) -> bool {
    let cats = filter_set(&t.balance_categories);
    if !cats.is_empty() && !cd.category.is_empty() && cats.get(cd.category) != Some(&true) {
        return false;
    }
    let dsts = filter_set(&t.balance_destination_ids);
    if dsts.is_empty() || cd.destination.is_empty() {
        return true;
    }
    plan.destination_ids_for(cd.destination)
        .iter()
        .any(|(_, id)| dsts.contains_key(&**id))
}

/// `a` names every entry of `b` (CGRateS's `StringMap.Includes`).
fn includes(a: &FilterSet, b: &FilterSet) -> bool {
    b.iter().all(|(k, on)| a.get(k) == Some(on))
}

fn includes_ids(a: &BTreeSet<String>, b: &BTreeSet<String>) -> bool {
    b.is_subset(a)
}

/// CGRateS's `Balance.MatchFilter(filter, skipIds)`: a balance matches a
/// trigger's balance filter on every property the filter sets.
fn balance_matches(b: &Balance, t: &ActionTriggerDef) -> bool {
    t.balance_weight.is_none_or(|w| b.weight == w)
        && t.balance_blocker.is_none_or(|x| b.blocker == x)
        && t.balance_disabled.is_none_or(|x| b.disabled == x)
        && includes(&b.destination_ids, &filter_set(&t.balance_destination_ids))
        && includes(&b.categories, &filter_set(&t.balance_categories))
        && includes_ids(&b.timing_ids, &id_set(&t.balance_timing_ids))
        && includes_ids(&b.shared_groups, &id_set(&t.balance_shared_groups))
        && (t.balance_rating_subject.is_empty() || b.rating_subject == *t.balance_rating_subject)
}

/// Whether a balance is one a trigger watches (its BalanceTag, and the
/// destination and category filters it sets).
fn trigger_watches(b: &Balance, t: &ActionTriggerDef) -> bool {
    (t.balance_id.is_empty() || b.id == *t.balance_id)
        && (t.balance_destination_ids.is_empty()
            || b.destination_ids == filter_set(&t.balance_destination_ids))
        && (t.balance_categories.is_empty() || b.categories == filter_set(&t.balance_categories))
}

/// Evaluates the account's attached triggers (`acc.action_triggers`, sets
/// of `defs`) at `now`, as CGRateS's `Account.ExecuteActionTriggers`, in
/// Weight order (highest first): a trigger outside its activation/expiry
/// window is skipped; a fired one is skipped until re-armed, unless
/// recurrent; a recurrent one does not fire again within MinSleep of its
/// last run. Marks what fires and returns the ActionsIDs to run.
///
/// `*min_balance` fires when a watched balance is at or below the value,
/// `*max_balance` at or above, `*balance_expired` when one has expired;
/// `*min_event_counter` / `*max_event_counter` (and the `_balance_counter`
/// forms) compare the trigger's counter ([`counter_key`],
/// [`record_debit`]; zero before any debit).
pub fn check_triggers(
    acc: &mut Account,
    defs: &BTreeMap<Arc<str>, Vec<ActionTriggerDef>>,
    now: DateTime<Utc>,
) -> Vec<Arc<str>> {
    let mut fire = Vec::new();
    for (key, t) in attached(acc, defs) {
        if !active(t, now) {
            continue;
        }
        let run = acc.trigger_runs.get(&key).copied().unwrap_or_default();
        if run.executed && !t.recurrent {
            continue;
        }
        if t.recurrent
            && let Some(last) = run.last_run
            && TimeDelta::from_std(t.min_sleep)
                .ok()
                .and_then(|d| last.checked_add_signed(d))
                .is_none_or(|ok_at| now < ok_at)
        {
            continue;
        }
        let Ok(Some(bt)) = balance_type(&t.balance_type) else {
            continue;
        };
        let watched = || acc.balances_of(bt).iter().filter(|b| trigger_watches(b, t));
        let v = t.threshold_value;
        let counter = || {
            counter_key(t)
                .and_then(|k| acc.counters.get(&k).copied())
                .unwrap_or_default()
        };
        let hit = match t.threshold_type {
            ThresholdType::MinBalance => watched().any(|b| b.usable_at(now) && b.value <= v),
            ThresholdType::MaxBalance => watched().any(|b| b.usable_at(now) && b.value >= v),
            ThresholdType::BalanceExpired => {
                watched().any(|b| b.expiration.is_some_and(|e| e <= now))
            }
            ThresholdType::MinEventCounter | ThresholdType::MinBalanceCounter => counter() <= v,
            ThresholdType::MaxEventCounter | ThresholdType::MaxBalanceCounter => counter() >= v,
        };
        if hit {
            acc.trigger_runs.insert(
                key,
                TriggerRun {
                    executed: true,
                    last_run: Some(now),
                },
            );
            fire.push(t.actions_id.clone());
        }
    }
    fire
}

fn active(t: &ActionTriggerDef, now: DateTime<Utc>) -> bool {
    !(t.expiry_time.is_some_and(|e| e <= now) || t.activation_time.is_some_and(|a| a > now))
}

/// When a `*balance_expired` trigger of the account is next due: the
/// earliest expiry after `after` of a balance watched by such a trigger
/// that can still fire (armed, or recurrent, and not past its own
/// ExpiryTime). The server wakes then and runs [`check_triggers`], so
/// the trigger fires when the balance expires, not at the account's next
/// change. `after` = the start of time finds expiries already past that
/// never fired (the server was stopped).
#[must_use]
pub fn next_balance_expiry(
    acc: &Account,
    defs: &BTreeMap<Arc<str>, Vec<ActionTriggerDef>>,
    after: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    if acc.disabled {
        return None;
    }
    let mut best: Option<DateTime<Utc>> = None;
    for (key, t) in attached(acc, defs) {
        if t.threshold_type != ThresholdType::BalanceExpired {
            continue;
        }
        let run = acc.trigger_runs.get(&key).copied().unwrap_or_default();
        if run.executed && !t.recurrent {
            continue;
        }
        let Ok(Some(bt)) = balance_type(&t.balance_type) else {
            continue;
        };
        for b in acc.balances_of(bt).iter().filter(|b| trigger_watches(b, t)) {
            let Some(e) = b.expiration else { continue };
            // A trigger expired by then never fires; one not yet active
            // is judged when it is (the caller checks again then).
            let at = t.activation_time.map_or(e, |a| e.max(a));
            if at > after && t.expiry_time.is_none_or(|x| at < x) {
                best = Some(best.map_or(at, |b| b.min(at)));
            }
        }
    }
    best
}

/// Whether a `*reset_triggers` (or `*set_recurrent`) action applies to
/// a trigger row: CGRateS's `ActionTrigger.Match`. A BalanceType the
/// action sets must be the trigger's; ExtraParameters may name the set
/// (`{"GroupID": ...}`), the row (`{"UniqueID": ...}`) or the threshold
/// type (`{"ThresholdType": ...}`); then every balance property the
/// action sets must match the trigger's balance filter (its BalanceTag
/// for a BalanceId, the destination, category, timing and shared group
/// IDs it names, its rating subject, weight, blocker, disabled).
pub(crate) fn trigger_matches_action(t: &ActionTriggerDef, a: &ActionDef) -> bool {
    if !a.balance_type.trim().is_empty() && a.balance_type.trim() != t.balance_type.trim() {
        return false;
    }
    let mut threshold_ok = true;
    if !a.extra_parameters.trim().is_empty() {
        let v: serde_json::Value =
            serde_json::from_str(&a.extra_parameters).unwrap_or(serde_json::Value::Null);
        let field = |k: &str| v.get(k).and_then(serde_json::Value::as_str).unwrap_or("");
        if !field("GroupID").is_empty() {
            return *t.id == *field("GroupID");
        }
        if !field("UniqueID").is_empty() {
            return *t.unique_id == *field("UniqueID");
        }
        let tt = field("ThresholdType");
        threshold_ok = tt.is_empty() || tt == t.threshold_type.as_str();
    }
    threshold_ok && filter_matches(t, a)
}

/// CGRateS's `Balance.MatchFilter(action's filter)` on the balance a
/// trigger's filter describes.
fn filter_matches(t: &ActionTriggerDef, a: &ActionDef) -> bool {
    if !a.balance_id.is_empty() && &*a.balance_id != "*any" {
        return t.balance_id == a.balance_id;
    }
    let opt_eq = |x: Option<Decimal>, y: Option<Decimal>| x.is_none() || x == y;
    opt_eq(a.balance_weight, t.balance_weight)
        && a.balance_blocker
            .is_none_or(|x| t.balance_blocker == Some(x))
        && a.balance_disabled
            .is_none_or(|x| t.balance_disabled == Some(x))
        && includes(
            &filter_set(&t.balance_destination_ids),
            &filter_set(&a.destination_ids),
        )
        && includes(
            &filter_set(&t.balance_categories),
            &filter_set(&a.categories),
        )
        && includes_ids(&id_set(&t.balance_timing_ids), &id_set(&a.timing_ids))
        && includes_ids(&id_set(&t.balance_shared_groups), &id_set(&a.shared_groups))
        && (a.rating_subject.is_empty() || a.rating_subject == t.balance_rating_subject)
}

/// `*reset_triggers`: re-arms the account's trigger rows the action
/// matches ([`trigger_matches_action`]); a row whose set `defs` does not
/// hold (no longer in the plan) is re-armed.
pub(crate) fn reset_triggers(acc: &mut Account, a: &ActionDef, defs: &TriggerSets) {
    let rows: BTreeMap<String, &ActionTriggerDef> = defs
        .values()
        .flat_map(|list| list.iter().enumerate().map(|(i, d)| (trigger_key(d, i), d)))
        .collect();
    for (key, r) in &mut acc.trigger_runs {
        if rows.get(key).is_none_or(|t| trigger_matches_action(t, a)) {
            r.executed = false;
        }
    }
}

/// `*reset_counters`: zeroes the counters of the attached counter triggers
/// whose balance filter the action's equals (CGRateS's `resetCounters`:
/// the action's BalanceType must be the counter's, and its filter equal
/// to the counter's: the same BalanceId when both have one, else every
/// property alike).
pub(crate) fn reset_counters(acc: &mut Account, a: &ActionDef, defs: &TriggerSets) {
    let keys: Vec<String> = attached(acc, defs)
        .into_iter()
        .filter(|(_, t)| counter_filter_equals(t, a))
        .filter_map(|(_, t)| counter_key(t))
        .collect();
    for k in keys {
        if let Some(v) = acc.counters.get_mut(&k) {
            *v = Decimal::ZERO;
        }
    }
}

fn counter_filter_equals(t: &ActionTriggerDef, a: &ActionDef) -> bool {
    if counter_kind(t.threshold_type).is_none() {
        return false;
    }
    if a.balance_type.trim() != t.balance_type.trim() {
        return false;
    }
    let id = counter_id(t);
    if !a.balance_id.is_empty() && !id.is_empty() {
        return *a.balance_id == *id;
    }
    *a.balance_id == *id
        && a.units.is_none()
        && a.balance_weight == t.balance_weight
        && a.balance_blocker == t.balance_blocker
        && a.balance_disabled == t.balance_disabled
        && filter_set(&a.destination_ids) == filter_set(&t.balance_destination_ids)
        && filter_set(&a.categories) == filter_set(&t.balance_categories)
        && id_set(&a.timing_ids) == id_set(&t.balance_timing_ids)
        && id_set(&a.shared_groups) == id_set(&t.balance_shared_groups)
        && a.rating_subject == t.balance_rating_subject
}
