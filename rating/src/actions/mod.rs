//! The account side of a tariff plan: Actions, ActionPlans,
//! ActionTriggers, AccountActions and SharedGroups, as CGRateS lays them
//! out, loaded into typed definitions, plus the schedule of ActionPlan
//! timings ([`ActionTiming::next_run`]).
//!
//! `exec` runs them: actions on an account, triggers, the schedule. Amounts are exact decimals, times are passed in (the crate
//! has no clock).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Months, Utc};
use rust_decimal::Decimal;

use crate::plan::TariffPlan;

mod exec;
pub(crate) mod parse;
mod schedule;
mod triggers;

pub use exec::{
    ActionsOutcome, DueRun, Effect, Schedule, apply_actions, apply_actions_with, initial_account,
};
pub use schedule::ActionTiming;
pub use triggers::{
    TriggerRun, check_triggers, counter_key, next_balance_expiry, record_debit, trigger_key,
};

/// What an Actions row does (its `Action` column).
///
/// The first seventeen are the actions AccuRate executes. CGRateS
/// knows more (HTTP, RPC and session actions, ...): those load as
/// [`ActionType::Other`] with their name, so a CGRateS plan loads whole;
/// a name CGRateS does not know is a load error at its line and column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ActionType {
    /// `*topup`: add to a balance.
    Topup,
    /// `*topup_reset`: set a balance to the value.
    TopupReset,
    /// `*debit`: take from a balance.
    Debit,
    /// `*debit_reset`: reset a balance, then take from it.
    DebitReset,
    /// `*reset_account`: reset balances and counters.
    ResetAccount,
    /// `*set_balance`: set a balance's value and properties.
    SetBalance,
    /// `*enable_account`.
    EnableAccount,
    /// `*disable_account`.
    DisableAccount,
    /// `*allow_negative`.
    AllowNegative,
    /// `*deny_negative`.
    DenyNegative,
    /// `*reset_triggers`: re-arm the account's triggers the action's
    /// balance filter matches.
    ResetTriggers,
    /// `*reset_counters`: zero the event counters whose balance filter
    /// the action's equals.
    ResetCounters,
    /// `*log`: log the account.
    Log,
    /// `*cdrlog`: write a CDR for the action.
    Cdrlog,
    /// `*http_post`: post the account to the URL in ExtraParameters.
    HttpPost,
    /// `*remove_account`.
    RemoveAccount,
    /// `*remove_balance`.
    RemoveBalance,
    /// Another action CGRateS defines (`*http_post_async`, `*cgr_rpc`,
    /// `*alter_sessions`, ...): loaded, not planned for execution.
    Other(&'static str),
}

/// The executable actions, by name.
const ACTION_NAMES: [(&str, ActionType); 17] = [
    ("*topup", ActionType::Topup),
    ("*topup_reset", ActionType::TopupReset),
    ("*debit", ActionType::Debit),
    ("*debit_reset", ActionType::DebitReset),
    ("*reset_account", ActionType::ResetAccount),
    ("*set_balance", ActionType::SetBalance),
    ("*enable_account", ActionType::EnableAccount),
    ("*disable_account", ActionType::DisableAccount),
    ("*allow_negative", ActionType::AllowNegative),
    ("*deny_negative", ActionType::DenyNegative),
    ("*reset_triggers", ActionType::ResetTriggers),
    ("*reset_counters", ActionType::ResetCounters),
    ("*log", ActionType::Log),
    ("*cdrlog", ActionType::Cdrlog),
    ("*http_post", ActionType::HttpPost),
    ("*remove_account", ActionType::RemoveAccount),
    ("*remove_balance", ActionType::RemoveBalance),
];

/// Other action names CGRateS (v0.10 and master) defines in
/// `utils/consts.go`.
const OTHER_CGRATES_ACTIONS: [&str; 24] = [
    "*http_post_async",
    "*mail_async",
    "*call_url",
    "*call_url_async",
    "*set_recurrent",
    "*unset_recurrent",
    "*set_ddestinations",
    "*transfer_monetary_default",
    "*transfer_balance",
    "*cgr_rpc",
    "*alter_sessions",
    "*force_disconnect_sessions",
    "*topup_zero_negative",
    "*set_expiry",
    "*publish_account",
    "*publish_balance",
    "*remove_session_costs",
    "*remove_expired",
    "*post_event",
    "*cdr_account",
    "*reset_account_cdr",
    "*reset_threshold",
    "*reset_stat_queue",
    "*remote_set_account",
];

impl ActionType {
    /// Parses an Action column; `None` for a name CGRateS does not define.
    #[must_use]
    pub fn parse(s: &str) -> Option<ActionType> {
        ACTION_NAMES
            .iter()
            .find(|(n, _)| *n == s)
            .map(|(_, t)| *t)
            .or_else(|| {
                OTHER_CGRATES_ACTIONS
                    .iter()
                    .find(|n| **n == s)
                    .map(|n| ActionType::Other(n))
            })
    }

    /// The CGRateS name, e.g. `*topup_reset`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            ActionType::Other(n) => n,
            t => ACTION_NAMES
                .iter()
                .find(|(_, x)| *x == t)
                .map_or("", |(n, _)| n),
        }
    }
}

/// When a balance an action creates expires (Actions `ExpiryTime`,
/// ActionTriggers `BalanceExpiryTime`), resolved against the moment the
/// action runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExpiryTime {
    /// `*unlimited` or empty: never.
    Unlimited,
    /// `*daily`: one day after the action runs.
    Daily,
    /// `*weekly`: seven days after.
    Weekly,
    /// `*month` / `*monthly`: one calendar month after (Go's `AddDate`),
    /// plus the duration of a `*month+1h` form.
    Month(Duration),
    /// `*monthly_estimated`: one calendar month after, on the last day of
    /// a shorter month (31 January -> 28/29 February).
    MonthEstimated,
    /// `*month_end`: 23:59:59 on the last day of the month the action runs
    /// in, plus the duration of a `*month_end+1h` form.
    MonthEnd(Duration),
    /// `*year` / `*yearly`: one calendar year after.
    Year,
    /// `+720h`: a duration after.
    After(Duration),
    /// A fixed moment (RFC 3339, `YYYY-MM-DD HH:MM:SS` UTC, Unix seconds).
    At(DateTime<Utc>),
}

impl ExpiryTime {
    /// Parses a CGRateS expiry; `None` if it is not one.
    #[must_use]
    pub fn parse(s: &str) -> Option<ExpiryTime> {
        Some(match s.trim() {
            "" | "*unlimited" => ExpiryTime::Unlimited,
            "*daily" => ExpiryTime::Daily,
            "*weekly" => ExpiryTime::Weekly,
            "*monthly_estimated" => ExpiryTime::MonthEstimated,
            "*year" | "*yearly" => ExpiryTime::Year,
            // CGRateS's ParseTimeDetectLayout: `*month_end` and `*month`
            // (`*monthly`) may carry `+duration`.
            s if s.starts_with("*month_end") => {
                ExpiryTime::MonthEnd(plus_duration(&s["*month_end".len()..])?)
            }
            s if s.starts_with("*monthly") => {
                ExpiryTime::Month(plus_duration(&s["*monthly".len()..])?)
            }
            s if s.starts_with("*month") => ExpiryTime::Month(plus_duration(&s["*month".len()..])?),
            s if s.starts_with('+') => ExpiryTime::After(crate::duration::parse_duration(s).ok()?),
            // `*asap`/`*now` would expire at once: not an expiry.
            s if s.starts_with('*') => return None,
            s => ExpiryTime::At(crate::load::parse_time(s, DateTime::UNIX_EPOCH)?),
        })
    }

    /// The expiry moment for an action run at `now`; `None` for never (or
    /// a date past what the calendar holds).
    #[must_use]
    pub fn resolve(self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self {
            ExpiryTime::Unlimited => None,
            ExpiryTime::Daily => now.checked_add_signed(chrono::TimeDelta::days(1)),
            ExpiryTime::Weekly => now.checked_add_signed(chrono::TimeDelta::days(7)),
            // chrono clamps to the month's last day, which is what
            // *monthly_estimated asks for; Go's AddDate (plain *monthly in
            // CGRateS) overflows into the next month instead.
            ExpiryTime::MonthEstimated => now.checked_add_months(Months::new(1)),
            ExpiryTime::Month(plus) => add(schedule::add_months_overflowing(now, 1)?, plus),
            ExpiryTime::MonthEnd(plus) => add(schedule::month_end(now)?, plus),
            ExpiryTime::Year => schedule::add_months_overflowing(now, 12),
            ExpiryTime::After(d) => add(now, d),
            ExpiryTime::At(t) => Some(t),
        }
    }
}

/// `""` (no extra time) or `+duration`, after `*month` or `*month_end`.
fn plus_duration(rest: &str) -> Option<Duration> {
    if rest.is_empty() {
        return Some(Duration::ZERO);
    }
    rest.strip_prefix('+')
        .filter(|d| !d.is_empty())
        .and_then(|d| crate::duration::parse_duration(d).ok())
}

fn add(t: DateTime<Utc>, d: Duration) -> Option<DateTime<Utc>> {
    t.checked_add_signed(chrono::TimeDelta::from_std(d).ok()?)
}

/// A `;`-separated list column (Categories, DestinationIds, ...), empty
/// when the field is.
pub type IdList = Box<[Arc<str>]>;

/// One Actions.csv row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionDef {
    /// ActionsId: the group this row belongs to.
    pub id: Arc<str>,
    /// Action.
    pub action: ActionType,
    /// ExtraParameters (a URL for `*http_post`, a JSON template for
    /// `*cdrlog`, ...), as written.
    pub extra_parameters: Arc<str>,
    /// Filter(s), `;`-separated.
    pub filters: IdList,
    /// BalanceId.
    pub balance_id: Arc<str>,
    /// BalanceType (`*monetary`, `*voice`, `*sms`, `*data`, ...).
    pub balance_type: Arc<str>,
    /// Directions (older layout only; `*out`).
    pub directions: IdList,
    /// Categories.
    pub categories: IdList,
    /// DestinationIds (`*any`, IDs, `!ID` to exclude).
    pub destination_ids: IdList,
    /// RatingSubject.
    pub rating_subject: Arc<str>,
    /// SharedGroup(s).
    pub shared_groups: IdList,
    /// ExpiryTime.
    pub expiry: ExpiryTime,
    /// TimingIds.
    pub timing_ids: IdList,
    /// Units (BalanceValue): a decimal; a duration such as `10m` is kept
    /// as nanoseconds, as CGRateS keeps `*voice` units. `None` when empty.
    pub units: Option<Decimal>,
    /// BalanceWeight, `None` when empty.
    pub balance_weight: Option<Decimal>,
    /// BalanceBlocker, `None` when empty.
    pub balance_blocker: Option<bool>,
    /// BalanceDisabled, `None` when empty.
    pub balance_disabled: Option<bool>,
    /// Weight: order of the rows of one ActionsId (higher first).
    pub weight: Decimal,
}

/// One ActionPlans.csv row: run `actions_id` on `timing`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionPlanDef {
    /// Id of the plan.
    pub id: Arc<str>,
    /// ActionsId (defined in Actions.csv).
    pub actions_id: Arc<str>,
    /// TimingId and its schedule.
    pub timing: ActionTiming,
    /// Weight.
    pub weight: Decimal,
}

/// ActionTriggers ThresholdType.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ThresholdType {
    /// `*min_balance`: the balance falls below the value.
    MinBalance,
    /// `*max_balance`: the balance rises above the value.
    MaxBalance,
    /// `*min_event_counter`.
    MinEventCounter,
    /// `*max_event_counter`.
    MaxEventCounter,
    /// `*min_balance_counter`.
    MinBalanceCounter,
    /// `*max_balance_counter`.
    MaxBalanceCounter,
    /// `*balance_expired`.
    BalanceExpired,
}

const THRESHOLD_NAMES: [(&str, ThresholdType); 7] = [
    ("*min_balance", ThresholdType::MinBalance),
    ("*max_balance", ThresholdType::MaxBalance),
    ("*min_event_counter", ThresholdType::MinEventCounter),
    ("*max_event_counter", ThresholdType::MaxEventCounter),
    ("*min_balance_counter", ThresholdType::MinBalanceCounter),
    ("*max_balance_counter", ThresholdType::MaxBalanceCounter),
    ("*balance_expired", ThresholdType::BalanceExpired),
];

impl ThresholdType {
    /// Parses a ThresholdType column.
    #[must_use]
    pub fn parse(s: &str) -> Option<ThresholdType> {
        THRESHOLD_NAMES
            .iter()
            .find(|(n, _)| *n == s)
            .map(|(_, t)| *t)
    }

    /// The CGRateS name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        THRESHOLD_NAMES
            .iter()
            .find(|(_, t)| *t == self)
            .map_or("", |(n, _)| n)
    }
}

/// One ActionTriggers.csv row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionTriggerDef {
    /// Tag / ID: the trigger set this row belongs to.
    pub id: Arc<str>,
    /// UniqueId (may be empty).
    pub unique_id: Arc<str>,
    /// ThresholdType.
    pub threshold_type: ThresholdType,
    /// ThresholdValue.
    pub threshold_value: Decimal,
    /// Recurrent: fires again once re-armed (empty is false).
    pub recurrent: bool,
    /// MinSleep between two firings.
    pub min_sleep: Duration,
    /// ExpiryTime of the trigger itself.
    pub expiry_time: Option<DateTime<Utc>>,
    /// ActivationTime of the trigger.
    pub activation_time: Option<DateTime<Utc>>,
    /// BalanceTag / BalanceID.
    pub balance_id: Arc<str>,
    /// BalanceType.
    pub balance_type: Arc<str>,
    /// BalanceDirections (older layout only).
    pub balance_directions: IdList,
    /// BalanceCategories.
    pub balance_categories: IdList,
    /// BalanceDestinationIds.
    pub balance_destination_ids: IdList,
    /// BalanceRatingSubject.
    pub balance_rating_subject: Arc<str>,
    /// BalanceSharedGroup(s).
    pub balance_shared_groups: IdList,
    /// BalanceExpiryTime.
    pub balance_expiry: ExpiryTime,
    /// BalanceTimingIds.
    pub balance_timing_ids: IdList,
    /// BalanceWeight.
    pub balance_weight: Option<Decimal>,
    /// BalanceBlocker.
    pub balance_blocker: Option<bool>,
    /// BalanceDisabled.
    pub balance_disabled: Option<bool>,
    /// StatsMinQueuedItems (older layout only).
    pub stats_min_queued_items: Option<u64>,
    /// ActionsId to run when it fires (defined in Actions.csv).
    pub actions_id: Arc<str>,
    /// Weight.
    pub weight: Decimal,
}

/// One AccountActions.csv row: an account and what applies to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountActionDef {
    /// Tenant.
    pub tenant: Arc<str>,
    /// Account.
    pub account: Arc<str>,
    /// ActionPlanId (empty: none).
    pub action_plan_id: Arc<str>,
    /// ActionTriggersId (empty: none).
    pub action_triggers_id: Arc<str>,
    /// AllowNegative (empty is false).
    pub allow_negative: bool,
    /// Disabled (empty is false).
    pub disabled: bool,
}

/// How a shared group's members share its balances (the order a debit
/// takes them in).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum SharingStrategy {
    /// `*lowest`: the smallest value first.
    Lowest,
    /// `*highest` (CGRateS's default, also for an empty column): the
    /// largest value first.
    #[default]
    Highest,
    /// `*mine_lowest`: the debited account's balance first, then the
    /// smallest.
    MineLowest,
    /// `*mine_highest`: the debited account's balance first, then the
    /// largest.
    MineHighest,
    /// `*random`: CGRateS shuffles the members; rating draws no random
    /// numbers, so debits take them in member order (`tenant:account`).
    Random,
    /// `*mine_random`: the debited account's balance first, then the
    /// others in member order (see [`SharingStrategy::Random`]).
    MineRandom,
}

impl SharingStrategy {
    const NAMES: [(&'static str, SharingStrategy); 6] = [
        ("*lowest", SharingStrategy::Lowest),
        ("*highest", SharingStrategy::Highest),
        ("*mine_lowest", SharingStrategy::MineLowest),
        ("*mine_highest", SharingStrategy::MineHighest),
        ("*random", SharingStrategy::Random),
        ("*mine_random", SharingStrategy::MineRandom),
    ];

    /// Parses a Strategy column (empty: `*highest`).
    #[must_use]
    pub fn parse(s: &str) -> Option<SharingStrategy> {
        let s = s.trim();
        if s.is_empty() {
            return Some(SharingStrategy::Highest);
        }
        Self::NAMES.iter().find(|(n, _)| *n == s).map(|(_, t)| *t)
    }

    /// The CGRateS name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        Self::NAMES
            .iter()
            .find(|(_, t)| *t == self)
            .map_or("", |(n, _)| n)
    }

    /// Whether the debited account's own balance goes first.
    #[must_use]
    pub fn mine_first(self) -> bool {
        matches!(
            self,
            SharingStrategy::MineLowest
                | SharingStrategy::MineHighest
                | SharingStrategy::MineRandom
        )
    }
}

/// One SharedGroups.csv row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedGroupDef {
    /// Id of the group.
    pub id: Arc<str>,
    /// Account (or `*any`).
    pub account: Arc<str>,
    /// Strategy.
    pub strategy: SharingStrategy,
    /// RatingSubject (may be empty).
    pub rating_subject: Arc<str>,
}

/// The account-side definitions of a plan, by ID, rows in file order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccountPlanData {
    /// Actions.csv by ActionsId.
    pub actions: BTreeMap<Arc<str>, Vec<ActionDef>>,
    /// ActionPlans.csv by Id.
    pub action_plans: BTreeMap<Arc<str>, Vec<ActionPlanDef>>,
    /// ActionTriggers.csv by Tag/ID.
    pub triggers: BTreeMap<Arc<str>, Vec<ActionTriggerDef>>,
    /// AccountActions.csv by (tenant, account).
    pub account_actions: BTreeMap<(Arc<str>, Arc<str>), AccountActionDef>,
    /// SharedGroups.csv by Id.
    pub shared_groups: BTreeMap<Arc<str>, Vec<SharedGroupDef>>,
}

impl AccountPlanData {
    /// Whether no account-side file defined anything.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.actions.is_empty()
            && self.action_plans.is_empty()
            && self.triggers.is_empty()
            && self.account_actions.is_empty()
            && self.shared_groups.is_empty()
    }
}

impl TariffPlan {
    /// The account-side definitions (Actions, ActionPlans, ActionTriggers,
    /// AccountActions, SharedGroups) loaded with the plan
    /// ([`apply_actions`], [`check_triggers`] and [`Schedule`] run them).
    #[must_use]
    pub fn account_data(&self) -> &AccountPlanData {
        &self.account
    }
}

#[cfg(test)]
mod tests;
