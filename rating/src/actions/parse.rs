//! Reading Actions, ActionPlans, ActionTriggers, AccountActions and
//! SharedGroups rows into [`AccountPlanData`].
//!
//! Two layouts of each file are accepted, told apart by their number of
//! columns as the RatingProfiles loader tells its two layouts apart: the
//! current one (CGRateS v0.10 and master) and the older one with
//! direction columns (`Directions` in Actions, `BalanceDirections` and
//! `StatsMinQueuedItems` in ActionTriggers, `Direction` in
//! AccountActions). References are checked as CGRateS's loader checks
//! them: an ActionPlan's Actions and Timing, a trigger's Actions, an
//! account's ActionPlan and ActionTriggers must exist.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;

use super::schedule::BUILTIN_TIMINGS;
use super::{
    AccountActionDef, AccountPlanData, ActionDef, ActionPlanDef, ActionTiming, ActionTriggerDef,
    ActionType, ExpiryTime, IdList, SharedGroupDef, SharingStrategy, ThresholdType,
};
use crate::Error;
use crate::csv::{Record, Records};
use crate::duration::parse_duration;
use crate::load::{check_width, id_field, load_err, parse_time};
use crate::money::Money;
use crate::prefix::FastMap;
use crate::timing::Timing;

/// The account-side files in the order they load (later ones refer to
/// earlier ones).
pub(crate) const ACCOUNT_FILES: [&str; 5] = [
    "SharedGroups.csv",
    "Actions.csv",
    "ActionPlans.csv",
    "ActionTriggers.csv",
    "AccountActions.csv",
];

const ACTIONS_LAYOUT: &str = "ActionsId,Action,ExtraParameters,Filter,BalanceId,BalanceType,Categories,DestinationIds,RatingSubject,SharedGroup,ExpiryTime,TimingIds,Units,BalanceWeight,BalanceBlocker,BalanceDisabled,Weight";
const TRIGGERS_LAYOUT: &str = "Tag,UniqueId,ThresholdType,ThresholdValue,Recurrent,MinSleep,ExpiryTime,ActivationTime,BalanceTag,BalanceType,BalanceCategories,BalanceDestinationIds,BalanceRatingSubject,BalanceSharedGroup,BalanceExpiryTime,BalanceTimingIds,BalanceWeight,BalanceBlocker,BalanceDisabled,ActionsId,Weight";

/// One row being read: the file, the record, and column offsets.
struct Row<'a> {
    path: &'a Path,
    r: Record<'a>,
}

impl<'a> Row<'a> {
    fn text(&self, col: usize) -> &'a str {
        self.r.field(col)
    }

    fn err(&self, col: usize, expected: &str) -> Error {
        load_err(self.path, self.r.line, col + 1, expected, self.r.field(col))
    }

    fn id(&self, col: usize, what: &str) -> Result<Arc<str>, Error> {
        id_field(self.path, self.r, col, what).map(Arc::from)
    }

    fn arc(&self, col: usize) -> Arc<str> {
        Arc::from(self.text(col))
    }

    fn list(&self, col: usize) -> IdList {
        self.text(col)
            .split(';')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(Arc::from)
            .collect()
    }

    /// A decimal; empty is `None`.
    fn decimal(&self, col: usize, what: &str) -> Result<Option<Decimal>, Error> {
        let v = self.text(col);
        if v.is_empty() {
            return Ok(None);
        }
        Money::parse(v)
            .map(|m| Some(m.amount()))
            .ok_or_else(|| self.err(col, &format!("{what}: a decimal number like 10 or 0.5")))
    }

    /// A decimal, or a duration kept as nanoseconds (`10m` of `*voice`).
    fn units(&self, col: usize) -> Result<Option<Decimal>, Error> {
        let v = self.text(col);
        if v.is_empty() {
            return Ok(None);
        }
        if let Some(m) = Money::parse(v) {
            return Ok(Some(m.amount()));
        }
        parse_duration(v)
            .ok()
            .and_then(|d| u64::try_from(d.as_nanos()).ok())
            .map(|ns| Some(Decimal::from(ns)))
            .ok_or_else(|| {
                self.err(
                    col,
                    "Units: a decimal number like 10, or a duration like 10m",
                )
            })
    }

    /// A weight; empty is 0.
    fn weight(&self, col: usize, what: &str) -> Result<Decimal, Error> {
        Ok(self.decimal(col, what)?.unwrap_or(Decimal::ZERO))
    }

    /// A boolean as Go's `strconv.ParseBool` reads one; empty is `None`.
    fn opt_bool(&self, col: usize, what: &str) -> Result<Option<bool>, Error> {
        match self.text(col) {
            "" => Ok(None),
            "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(Some(true)),
            "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(Some(false)),
            _ => Err(self.err(col, &format!("{what}: true, false or empty"))),
        }
    }

    fn flag(&self, col: usize, what: &str) -> Result<bool, Error> {
        Ok(self.opt_bool(col, what)?.unwrap_or(false))
    }

    fn expiry(&self, col: usize, what: &str) -> Result<ExpiryTime, Error> {
        ExpiryTime::parse(self.text(col)).ok_or_else(|| {
            self.err(
                col,
                &format!(
                    "{what}: *unlimited, *daily, *weekly, *month, *month_end, *year, +720h or a time like 2025-01-31T00:00:00Z"
                ),
            )
        })
    }

    fn time(
        &self,
        col: usize,
        what: &str,
        loaded_at: DateTime<Utc>,
    ) -> Result<Option<DateTime<Utc>>, Error> {
        let v = self.text(col);
        if v.is_empty() {
            return Ok(None);
        }
        parse_time(v, loaded_at)
            .map(Some)
            .ok_or_else(|| self.err(col, &format!("{what}: a time like 2025-01-31T00:00:00Z")))
    }

    fn duration(&self, col: usize, what: &str) -> Result<Duration, Error> {
        parse_duration(self.text(col))
            .map_err(|_| self.err(col, &format!("{what}: a duration like 10s, 1h or 0")))
    }
}

/// Loads the account-side files present in `files` (indexed as
/// [`ACCOUNT_FILES`]), checking references against each other and
/// against `timings` (Timings.csv).
pub(crate) fn load(
    files: &[Option<(&Path, Records)>; 5],
    timings: &FastMap<Box<str>, Arc<Timing>>,
    loaded_at: DateTime<Utc>,
) -> Result<AccountPlanData, Error> {
    let mut data = AccountPlanData::default();
    let [sgs, acts, plans, trigs, accts] = files;
    if let Some((p, r)) = sgs {
        shared_groups(p, r, &mut data)?;
    }
    if let Some((p, r)) = acts {
        actions(p, r, &mut data)?;
    }
    if let Some((p, r)) = plans {
        action_plans(p, r, &mut data, timings, loaded_at)?;
    }
    if let Some((p, r)) = trigs {
        action_triggers(p, r, &mut data, loaded_at)?;
    }
    if let Some((p, r)) = accts {
        account_actions(p, r, &mut data)?;
    }
    Ok(data)
}

/// SharedGroups.csv: `Id,Account,Strategy,RatingSubject`.
fn shared_groups(path: &Path, recs: &Records, data: &mut AccountPlanData) -> Result<(), Error> {
    for r in recs.iter() {
        check_width(path, r, 3, 4, "Id,Account,Strategy,RatingSubject")?;
        let row = Row { path, r };
        let strategy = SharingStrategy::parse(row.text(2)).ok_or_else(|| {
            row.err(
                2,
                "a Strategy: *lowest, *highest, *mine, *mine_lowest, *mine_highest or *random",
            )
        })?;
        let def = SharedGroupDef {
            id: row.id(0, "a shared group ID")?,
            account: row.id(1, "an account or *any")?,
            strategy,
            rating_subject: row.arc(3),
        };
        data.shared_groups
            .entry(def.id.clone())
            .or_default()
            .push(def);
    }
    Ok(())
}

/// Actions.csv: [`ACTIONS_LAYOUT`] (17 columns), or the older 18 with
/// `Directions` after BalanceType.
fn actions(path: &Path, recs: &Records, data: &mut AccountPlanData) -> Result<(), Error> {
    for r in recs.iter() {
        let old = r.len() == 18;
        if !old {
            check_width(path, r, 17, 17, ACTIONS_LAYOUT)?;
        }
        let row = Row { path, r };
        // Columns after BalanceType sit one further right in the old layout.
        let c = |i: usize| if old && i >= 6 { i + 1 } else { i };
        let action = ActionType::parse(row.text(1)).ok_or_else(|| {
            row.err(
                1,
                "an Action such as *topup, *topup_reset, *debit, *set_balance, *log (a CGRateS action type)",
            )
        })?;
        let def = ActionDef {
            id: row.id(0, "an ActionsId")?,
            action,
            extra_parameters: row.arc(2),
            filters: row.list(3),
            balance_id: row.arc(4),
            balance_type: row.arc(5),
            directions: if old { row.list(6) } else { IdList::default() },
            categories: row.list(c(6)),
            destination_ids: row.list(c(7)),
            rating_subject: row.arc(c(8)),
            shared_groups: row.list(c(9)),
            expiry: row.expiry(c(10), "ExpiryTime")?,
            timing_ids: row.list(c(11)),
            units: row.units(c(12))?,
            balance_weight: row.decimal(c(13), "BalanceWeight")?,
            balance_blocker: row.opt_bool(c(14), "BalanceBlocker")?,
            balance_disabled: row.opt_bool(c(15), "BalanceDisabled")?,
            weight: row.weight(c(16), "Weight")?,
        };
        data.actions.entry(def.id.clone()).or_default().push(def);
    }
    Ok(())
}

/// ActionPlans.csv: `Id,ActionsId,TimingId,Weight`.
fn action_plans(
    path: &Path,
    recs: &Records,
    data: &mut AccountPlanData,
    timings: &FastMap<Box<str>, Arc<Timing>>,
    loaded_at: DateTime<Utc>,
) -> Result<(), Error> {
    for r in recs.iter() {
        check_width(path, r, 3, 4, "Id,ActionsId,TimingId,Weight")?;
        let row = Row { path, r };
        let id = row.id(0, "an action plan ID")?;
        let actions_id = row.id(1, "an ActionsId defined in Actions.csv")?;
        if !data.actions.contains_key(&actions_id) {
            return Err(row.err(1, "an ActionsId defined in Actions.csv"));
        }
        let timing_id = row.text(2);
        let timing = match timings.get(timing_id) {
            Some(t) => ActionTiming::from_timing(t.clone(), loaded_at),
            None => ActionTiming::builtin(timing_id, loaded_at).ok_or_else(|| {
                row.err(
                    2,
                    &format!("a TimingId defined in Timings.csv, or {BUILTIN_TIMINGS}"),
                )
            })?,
        };
        let def = ActionPlanDef {
            id,
            actions_id,
            timing,
            weight: row.weight(3, "Weight")?,
        };
        data.action_plans
            .entry(def.id.clone())
            .or_default()
            .push(def);
    }
    Ok(())
}

/// ActionTriggers.csv: [`TRIGGERS_LAYOUT`] (21 columns), or the older 23
/// with `BalanceDirections` after BalanceType and `StatsMinQueuedItems`
/// before ActionsId.
fn action_triggers(
    path: &Path,
    recs: &Records,
    data: &mut AccountPlanData,
    loaded_at: DateTime<Utc>,
) -> Result<(), Error> {
    for r in recs.iter() {
        let old = r.len() == 23;
        if !old {
            check_width(path, r, 21, 21, TRIGGERS_LAYOUT)?;
        }
        let row = Row { path, r };
        let c = |i: usize| match (old, i) {
            (false, i) | (true, i @ 0..=9) => i,
            (true, i @ 10..=18) => i + 1,
            (true, i) => i + 2,
        };
        let threshold_type = ThresholdType::parse(row.text(2)).ok_or_else(|| {
            row.err(
                2,
                "a ThresholdType: *min_balance, *max_balance, *min_event_counter, *max_event_counter, *min_balance_counter, *max_balance_counter or *balance_expired",
            )
        })?;
        let threshold_value = row
            .decimal(3, "ThresholdValue")?
            .ok_or_else(|| row.err(3, "ThresholdValue: a decimal number like 10 or 0.5"))?;
        let stats_min_queued_items = if old && !row.text(20).is_empty() {
            Some(
                row.text(20)
                    .parse::<u64>()
                    .map_err(|_| row.err(20, "StatsMinQueuedItems: a whole number"))?,
            )
        } else {
            None
        };
        let actions_id = row.id(c(19), "an ActionsId defined in Actions.csv")?;
        if !data.actions.contains_key(&actions_id) {
            return Err(row.err(c(19), "an ActionsId defined in Actions.csv"));
        }
        let def = ActionTriggerDef {
            id: row.id(0, "an action triggers ID")?,
            unique_id: row.arc(1),
            threshold_type,
            threshold_value,
            recurrent: row.flag(4, "Recurrent")?,
            min_sleep: row.duration(5, "MinSleep")?,
            expiry_time: row.time(6, "ExpiryTime", loaded_at)?,
            activation_time: row.time(7, "ActivationTime", loaded_at)?,
            balance_id: row.arc(8),
            balance_type: row.arc(9),
            balance_directions: if old { row.list(10) } else { IdList::default() },
            balance_categories: row.list(c(10)),
            balance_destination_ids: row.list(c(11)),
            balance_rating_subject: row.arc(c(12)),
            balance_shared_groups: row.list(c(13)),
            balance_expiry: row.expiry(c(14), "BalanceExpiryTime")?,
            balance_timing_ids: row.list(c(15)),
            balance_weight: row.decimal(c(16), "BalanceWeight")?,
            balance_blocker: row.opt_bool(c(17), "BalanceBlocker")?,
            balance_disabled: row.opt_bool(c(18), "BalanceDisabled")?,
            stats_min_queued_items,
            actions_id,
            weight: row.weight(c(20), "Weight")?,
        };
        data.triggers.entry(def.id.clone()).or_default().push(def);
    }
    Ok(())
}

/// AccountActions.csv: `Tenant,Account,ActionPlanId,ActionTriggersId,
/// AllowNegative,Disabled`, or the older `Tenant,Account,Direction,
/// ActionPlanId,ActionTriggersId` (a third column of `*out`).
fn account_actions(path: &Path, recs: &Records, data: &mut AccountPlanData) -> Result<(), Error> {
    for r in recs.iter() {
        let old = matches!(r.field(2), "*out" | "*in");
        if old {
            check_width(
                path,
                r,
                5,
                5,
                "Tenant,Account,Direction,ActionPlanId,ActionTriggersId",
            )?;
        } else {
            check_width(
                path,
                r,
                4,
                6,
                "Tenant,Account,ActionPlanId,ActionTriggersId,AllowNegative,Disabled",
            )?;
        }
        let row = Row { path, r };
        let base = 2 + usize::from(old);
        let (plan_col, trig_col) = (base, base + 1);
        let def = AccountActionDef {
            tenant: row.id(0, "a tenant")?,
            account: row.id(1, "an account")?,
            action_plan_id: row.arc(plan_col),
            action_triggers_id: row.arc(trig_col),
            allow_negative: !old && row.flag(4, "AllowNegative")?,
            disabled: !old && row.flag(5, "Disabled")?,
        };
        if !def.action_plan_id.is_empty() && !data.action_plans.contains_key(&def.action_plan_id) {
            return Err(row.err(plan_col, "an ActionPlanId defined in ActionPlans.csv"));
        }
        if !def.action_triggers_id.is_empty()
            && !data.triggers.contains_key(&def.action_triggers_id)
        {
            return Err(row.err(
                trig_col,
                "an ActionTriggersId defined in ActionTriggers.csv",
            ));
        }
        let key = (def.tenant.clone(), def.account.clone());
        if data.account_actions.insert(key, def).is_some() {
            return Err(row.err(1, "an account not listed earlier for this tenant"));
        }
    }
    Ok(())
}
