//! AccuRate rating core: CGRateS tariff plans, exact decimal costs, and
//! accounts with balances ([`Account`], [`debit`], [`max_usage`],
//! [`AccountStore`]).
//!
//! The account side of a plan (Actions, ActionPlans, ActionTriggers,
//! AccountActions, SharedGroups) loads with it, typed and cross-checked,
//! from [`TariffPlan::account_data`]; [`ActionTiming`] says when an
//! ActionPlan row runs. Nothing executes actions yet.
//!
//! Pure logic: no clock, no floats, no I/O except reading a tariff plan
//! folder. Load a plan once ([`TariffPlan::load_dir`]), share it behind an
//! [`std::sync::Arc`] (or a [`TariffStore`]), and rate calls with
//! [`TariffPlan::cost`]:
//!
//! ```
//! use std::{path::Path, time::Duration};
//! use chrono::{TimeZone, Utc};
//! use rating::{CallDescriptor, LoadOptions, RoundingMode, TariffPlan};
//!
//! let files = [
//!     (Path::new("Destinations.csv"), "DST_1002,1002\n"),
//!     (Path::new("Rates.csv"), "RT_20CNT,0.4,0.2,60s,60s,0s\nRT_20CNT,0,0.1,60s,1s,60s\n"),
//!     (Path::new("DestinationRates.csv"), "DR_1002,DST_1002,RT_20CNT,*up,4,0,\n"),
//!     (Path::new("RatingPlans.csv"), "RP_1001,DR_1002,*any,10\n"),
//!     (Path::new("RatingProfiles.csv"), "cgrates.org,call,1001,2014-01-14T00:00:00Z,RP_1001,\n"),
//! ];
//! let opts = LoadOptions { loaded_at: Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap() };
//! let (plan, _report) = TariffPlan::from_csv(&files, &opts).unwrap();
//! let start = Utc.with_ymd_and_hms(2024, 5, 13, 10, 0, 0).unwrap();
//! let cd = CallDescriptor::new("1001", "1002", start, Duration::from_secs(90));
//! // 0.4 connect fee + first minute 0.2 + 30 s at 0.1/min = 0.65
//! let cc = plan.cost(&cd, RoundingMode::Exact).unwrap();
//! assert_eq!(cc.cost.to_string(), "0.65");
//! ```
#![forbid(unsafe_code)]
#![deny(clippy::float_arithmetic)]

mod account;
mod actions;
mod call;
mod cost;
pub mod csv;
mod duration;
mod error;
mod exact;
mod json;
mod load;
mod money;
mod plan;
mod prefix;
mod resolve;
mod timing;

pub use account::{
    Account, AccountStore, AccountStoreExt, Balance, BalanceCharge, BalanceType, ChargeKind,
    DEFAULT_BALANCE_ID, DEFAULT_KEEP_MARKS, DebitOutcome, FilterSet, FinalCharge, MemoryAccounts,
    RerateBasis, Rerated, Reservation, SessionCharges, SessionCtx, Settlement, SharedGroup,
    SharedGroups, debit, debit_forced, debit_shared, max_usage, max_usage_shared, parse_filter_set,
    refund, refund_shared, rerate_session, reserve_session, session_id, session_max_usage, settle,
    settle_session, shared_members,
};
pub use actions::{
    AccountActionDef, AccountPlanData, ActionDef, ActionPlanDef, ActionTiming, ActionTriggerDef,
    ActionType, ActionsOutcome, DueRun, Effect, ExpiryTime, IdList, Schedule, SharedGroupDef,
    SharingStrategy, ThresholdType, TriggerRun, apply_actions, apply_actions_with, check_triggers,
    counter_key, initial_account, next_balance_expiry, record_debit, trigger_key,
};
pub use call::{CallDescriptor, Tor};
pub use cost::{CallCost, TimeSpan};
pub use duration::{format_duration, parse_duration};
pub use error::Error;
pub use exact::ExactAmount;
pub use json::json_number;
pub use load::{HANDLED_FILES, LoadOptions, LoadPolicy, LoadReport};
pub use money::{MAX_ROUNDING_DECIMALS, Money, Rounding, RoundingMethod, RoundingMode};
pub use plan::{MaxCost, MaxCostStrategy, SharedTariffPlan, TariffPlan, TariffStore};
pub use timing::Timing;
