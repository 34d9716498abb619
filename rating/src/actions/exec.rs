//! Running actions on an account and the scheduler core of ActionPlans,
//! CGRateS-compatible and sans-IO.
//!
//! [`apply_actions`] changes an [`Account`] as CGRateS's `engine/action.go`
//! does for the seventeen action types; actions with an outside effect
//! (`*log`, `*cdrlog`, `*http_post`) return an [`Effect`] the caller
//! performs. [`Schedule`] gives the ActionPlan runs due by a moment (the
//! triggers are in `triggers.rs`). The time is always passed in.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;

use super::{
    AccountPlanData, ActionDef, ActionTiming, ActionTriggerDef, ActionType, ExpiryTime, IdList,
};
use crate::Error;
use crate::account::{Account, Balance, BalanceType, FilterSet};

/// An outside effect of an action, for the caller to perform (rating does
/// no I/O).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// `*log`: the account as CGRateS's JSON, to log.
    Log {
        /// The account after the actions before this one.
        account_json: String,
    },
    /// `*cdrlog`: one CDR-like record per balance-changing action of the
    /// same list.
    Cdrlog {
        /// The ExtraParameters template, as written.
        template: String,
        /// `(action, balance type, balance ID, units)` of each change.
        entries: Vec<(ActionType, String, String, Decimal)>,
    },
    /// `*http_post`: post the account JSON to the URL.
    HttpPost {
        /// ExtraParameters.
        url: String,
        /// The account as CGRateS's JSON.
        body: String,
    },
}

/// What [`apply_actions`] did besides changing the account.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ActionsOutcome {
    /// Effects to perform, in action order.
    pub effects: Vec<Effect>,
    /// `*remove_account` ran: the caller removes the account.
    pub remove_account: bool,
}

/// `*any` and empty entries dropped, `!ID` an exclusion.
pub(super) fn filter_set(ids: &IdList) -> FilterSet {
    crate::account::parse_filter_set(&ids.join(";"))
}

pub(super) fn id_set(ids: &IdList) -> std::collections::BTreeSet<String> {
    ids.iter()
        .map(|s| s.trim())
        .filter(|s| !s.is_empty() && *s != "*any")
        .map(str::to_owned)
        .collect()
}

/// The balance type an action or trigger names; `None` when empty.
///
/// # Errors
/// [`Error::InvalidInput`] for a type we do not keep.
pub(super) fn balance_type(s: &str) -> Result<Option<BalanceType>, Error> {
    if s.trim().is_empty() {
        return Ok(None);
    }
    s.trim()
        .parse()
        .map(Some)
        .map_err(|()| Error::InvalidInput {
            what: "balance type",
            value: s.to_owned(),
        })
}

/// Whether balance `b` is the one action `a` names: by ID when the action
/// gives one, else by every filter the action sets (CGRateS's
/// `Balance.MatchFilter` on the fields that are set).
fn matches(b: &Balance, a: &ActionDef) -> bool {
    if !a.balance_id.is_empty() {
        return b.id == *a.balance_id;
    }
    let dst = filter_set(&a.destination_ids);
    let cat = filter_set(&a.categories);
    let sg = id_set(&a.shared_groups);
    let tm = id_set(&a.timing_ids);
    (dst.is_empty() || b.destination_ids == dst)
        && (cat.is_empty() || b.categories == cat)
        && (sg.is_empty() || b.shared_groups == sg)
        && (tm.is_empty() || b.timing_ids == tm)
        && (a.rating_subject.is_empty() || b.rating_subject == *a.rating_subject)
        && a.balance_weight.is_none_or(|w| b.weight == w)
}

/// Sets the properties the action gives on a balance (value aside).
fn set_properties(b: &mut Balance, a: &ActionDef, now: DateTime<Utc>, creating: bool) {
    if creating && !a.balance_id.is_empty() {
        b.id = a.balance_id.to_string();
    }
    if let Some(w) = a.balance_weight {
        b.weight = w;
    }
    // An unlimited expiry on an existing balance keeps its expiry (the
    // column is often left empty on a top-up).
    if creating || a.expiry != ExpiryTime::Unlimited {
        b.expiration = a.expiry.resolve(now);
    }
    let dst = filter_set(&a.destination_ids);
    if creating || !dst.is_empty() {
        b.destination_ids = dst;
    }
    let cat = filter_set(&a.categories);
    if creating || !cat.is_empty() {
        b.categories = cat;
    }
    if creating || !a.rating_subject.is_empty() {
        b.rating_subject = a.rating_subject.to_string();
    }
    let sg = id_set(&a.shared_groups);
    if creating || !sg.is_empty() {
        b.shared_groups = sg;
    }
    let tm = id_set(&a.timing_ids);
    if creating || !tm.is_empty() {
        b.timing_ids = tm;
    }
    if let Some(x) = a.balance_blocker {
        b.blocker = x;
    }
    if let Some(x) = a.balance_disabled {
        b.disabled = x;
    }
}

/// The balance action `a` names, created (empty, with the action's
/// properties) when none matches; its index in the type's list.
fn find_or_create(acc: &mut Account, t: BalanceType, a: &ActionDef, now: DateTime<Utc>) -> usize {
    if let Some(i) = acc.balances_of(t).iter().position(|b| matches(b, a)) {
        let b = &mut acc.balances.entry(t).or_default()[i];
        set_properties(b, a, now, false);
        return i;
    }
    let mut b = Balance::default();
    set_properties(&mut b, a, now, true);
    acc.add_balance(t, b);
    let list = acc.balances.entry(t).or_default();
    let i = list.len() - 1;
    // add_balance numbers uuids by position: after a removal that number
    // may be taken; stamp the creation time to keep uuids unique.
    let uuid = list[i].uuid.clone();
    if list[..i].iter().any(|b| b.uuid == uuid) {
        list[i].uuid = format!("{uuid}:{}", now.timestamp_nanos_opt().unwrap_or_default());
    }
    i
}

/// Runs `actions` (sorted by Weight, highest first, as CGRateS's
/// `Actions.Sort`) on `acc` at `now`. Works on a copy: on error the
/// account is unchanged.
///
/// # Errors
/// [`Error::InvalidInput`] for an action without the balance type or
/// value it needs, or an action type AccuRate does not execute.
pub fn apply_actions(
    acc: &mut Account,
    actions: &[ActionDef],
    now: DateTime<Utc>,
) -> Result<ActionsOutcome, Error> {
    apply_actions_with(acc, actions, &BTreeMap::new(), now)
}

/// [`apply_actions`] with the plan's trigger sets (ActionTriggers.csv), so
/// that `*reset_triggers` re-arms only the rows its balance filter
/// matches and `*reset_counters` zeroes only the counters whose filter it
/// equals, as CGRateS; [`apply_actions`] has no trigger rows at hand and
/// re-arms every row.
///
/// # Errors
/// As [`apply_actions`].
pub fn apply_actions_with(
    acc: &mut Account,
    actions: &[ActionDef],
    triggers: &BTreeMap<Arc<str>, Vec<ActionTriggerDef>>,
    now: DateTime<Utc>,
) -> Result<ActionsOutcome, Error> {
    let mut sorted: Vec<&ActionDef> = actions.iter().collect();
    sorted.sort_by_key(|a| std::cmp::Reverse(a.weight));
    let mut work = acc.clone();
    let mut out = ActionsOutcome::default();
    for a in &sorted {
        apply_one(&mut work, a, &sorted, triggers, now, &mut out)?;
    }
    work.update_time = Some(now);
    *acc = work;
    Ok(out)
}

fn need_type(a: &ActionDef) -> Result<BalanceType, Error> {
    balance_type(&a.balance_type)?.ok_or_else(|| Error::InvalidInput {
        what: "balance type of the action",
        value: format!("{} {}: empty", a.id, a.action.as_str()),
    })
}

fn apply_one(
    acc: &mut Account,
    a: &ActionDef,
    all: &[&ActionDef],
    triggers: &BTreeMap<Arc<str>, Vec<ActionTriggerDef>>,
    now: DateTime<Utc>,
    out: &mut ActionsOutcome,
) -> Result<(), Error> {
    let units = a.units.unwrap_or_default();
    match a.action {
        ActionType::Topup | ActionType::Debit | ActionType::TopupReset | ActionType::DebitReset => {
            let t = need_type(a)?;
            let i = find_or_create(acc, t, a, now);
            let b = &mut acc.balances.entry(t).or_default()[i];
            b.value = match a.action {
                ActionType::Topup => b.value.saturating_add(units),
                ActionType::Debit => b.value.saturating_sub(units),
                ActionType::TopupReset => units,
                // CGRateS: reset to zero, then debit.
                _ => -units,
            };
        }
        ActionType::SetBalance => {
            let t = need_type(a)?;
            let i = find_or_create(acc, t, a, now);
            acc.balances.entry(t).or_default()[i].value = units;
        }
        ActionType::ResetAccount => {
            for b in acc.balances.values_mut().flatten() {
                b.value = Decimal::ZERO;
            }
            acc.counters.clear();
            acc.trigger_runs.clear();
        }
        ActionType::EnableAccount => acc.disabled = false,
        ActionType::DisableAccount => acc.disabled = true,
        ActionType::AllowNegative => acc.allow_negative = true,
        ActionType::DenyNegative => acc.allow_negative = false,
        ActionType::ResetTriggers => super::triggers::reset_triggers(acc, a, triggers),
        ActionType::ResetCounters => super::triggers::reset_counters(acc, a, triggers),
        ActionType::Log => out.effects.push(Effect::Log {
            account_json: acc.to_json(),
        }),
        ActionType::Cdrlog => {
            let entries = all
                .iter()
                .filter(|x| {
                    matches!(
                        x.action,
                        ActionType::Topup
                            | ActionType::TopupReset
                            | ActionType::Debit
                            | ActionType::DebitReset
                            | ActionType::SetBalance
                    )
                })
                .map(|x| {
                    (
                        x.action,
                        x.balance_type.to_string(),
                        x.balance_id.to_string(),
                        x.units.unwrap_or_default(),
                    )
                })
                .collect();
            out.effects.push(Effect::Cdrlog {
                template: a.extra_parameters.to_string(),
                entries,
            });
        }
        ActionType::HttpPost => out.effects.push(Effect::HttpPost {
            url: a.extra_parameters.to_string(),
            body: acc.to_json(),
        }),
        ActionType::RemoveAccount => out.remove_account = true,
        ActionType::RemoveBalance => {
            let t = need_type(a)?;
            if let Some(list) = acc.balances.get_mut(&t) {
                list.retain(|b| !matches(b, a));
            }
        }
        ActionType::Other(name) => {
            return Err(Error::InvalidInput {
                what: "action (not executed by AccuRate)",
                value: name.to_owned(),
            });
        }
    }
    Ok(())
}

/// An ActionPlan run for one account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueRun {
    /// Tenant of the account.
    pub tenant: Arc<str>,
    /// Account ID.
    pub account: Arc<str>,
    /// The ActionPlan.
    pub plan_id: Arc<str>,
    /// The ActionsID to run.
    pub actions_id: Arc<str>,
    /// When it was due.
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
struct Entry {
    run: DueRun,
    timing: ActionTiming,
    weight: Decimal,
}

/// The scheduler core: each (account, ActionPlan row) with its next run.
/// The server's timer asks [`Schedule::due`] for what is due and sleeps
/// until [`Schedule::next_wakeup`].
#[derive(Debug, Clone, Default)]
pub struct Schedule {
    entries: Vec<Entry>,
}

impl Schedule {
    /// The schedule of every AccountActions row with an ActionPlan, with
    /// the timings anchored at `anchor` (the moment the plan was loaded,
    /// [`ActionTiming::anchored_at`]), from `now`: `*asap` rows are due at
    /// `now` (they run at load), the others at their first run after
    /// `now` (a run missed before `now` is not caught up, as CGRateS's
    /// scheduler, which queues only future runs).
    #[must_use]
    pub fn from_plan(
        data: &AccountPlanData,
        anchor: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Schedule {
        let mut s = Schedule::default();
        for aa in data.account_actions.values() {
            for plan in aa.action_plan_id.split(';').filter(|p| !p.is_empty()) {
                s.add(data, &aa.tenant, &aa.account, plan, anchor, now);
            }
        }
        s
    }

    /// Schedules ActionPlan `plan_id` for one account (APIerSv1.SetAccount)
    /// with its timings anchored at `anchor` (the moment it was attached);
    /// whether the plan exists.
    pub fn add(
        &mut self,
        data: &AccountPlanData,
        tenant: &str,
        account: &str,
        plan_id: &str,
        anchor: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> bool {
        let Some(rows) = data.action_plans.get(plan_id) else {
            return false;
        };
        for r in rows {
            let timing = r.timing.anchored_at(anchor);
            // Attached again: the recurring row keeps its first anchor
            // (scheduling it twice would run it twice).
            let scheduled = self.entries.iter().any(|e| {
                &*e.run.tenant == tenant
                    && &*e.run.account == account
                    && e.run.plan_id == r.id
                    && e.run.actions_id == r.actions_id
                    && e.timing.id() == r.timing.id()
            });
            if scheduled && !timing.is_once() {
                continue;
            }
            // A recurring row's first run is after the load: loading a
            // plan does not charge this month's fee a second time.
            let at = if timing.is_once() {
                Some(now)
            } else {
                timing.next_run(now)
            };
            let Some(at) = at else { continue };
            self.entries.push(Entry {
                run: DueRun {
                    tenant: Arc::from(tenant),
                    account: Arc::from(account),
                    plan_id: r.id.clone(),
                    actions_id: r.actions_id.clone(),
                    at,
                },
                timing,
                weight: r.weight,
            });
        }
        true
    }

    /// Drops the entries of one account (removed).
    pub fn remove_account(&mut self, tenant: &str, account: &str) {
        self.entries
            .retain(|e| !(&*e.run.tenant == tenant && &*e.run.account == account));
    }

    /// The runs due at or before `now`, by time then plan row weight
    /// (highest first); each recurring entry moves to its next run, a
    /// one-time entry is dropped. A run missed more than once (the server
    /// was stopped) runs once.
    pub fn due(&mut self, now: DateTime<Utc>) -> Vec<DueRun> {
        let mut out: Vec<(DueRun, Decimal)> = Vec::new();
        self.entries.retain_mut(|e| {
            if e.run.at > now {
                return true;
            }
            out.push((e.run.clone(), e.weight));
            if e.timing.is_once() {
                return false;
            }
            match e.timing.next_run(now) {
                Some(next) => {
                    e.run.at = next;
                    true
                }
                None => false,
            }
        });
        out.sort_by(|a, b| a.0.at.cmp(&b.0.at).then(b.1.cmp(&a.1)));
        out.into_iter().map(|(r, _)| r).collect()
    }

    /// The earliest next run, if any.
    #[must_use]
    pub fn next_wakeup(&self) -> Option<DateTime<Utc>> {
        self.entries.iter().map(|e| e.run.at).min()
    }

    /// The accounts scheduled under an ActionPlan (`tenant:account`).
    #[must_use]
    pub fn accounts_of(&self, plan_id: &str) -> Vec<String> {
        let mut v: Vec<String> = self
            .entries
            .iter()
            .filter(|e| &*e.run.plan_id == plan_id)
            .map(|e| format!("{}:{}", e.run.tenant, e.run.account))
            .collect();
        v.sort();
        v.dedup();
        v
    }
}

/// The account an AccountActions row creates: flags and trigger sets.
#[must_use]
pub fn initial_account(aa: &super::AccountActionDef) -> Account {
    let mut a = Account::new(&aa.tenant, &aa.account);
    a.allow_negative = aa.allow_negative;
    a.disabled = aa.disabled;
    a.action_triggers = aa
        .action_triggers_id
        .split(';')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    a
}

#[cfg(test)]
#[path = "exec_tests.rs"]
mod tests;
