//! Accounts and balances, CGRateS-compatible: the data model, which
//! balances a call may use, debits, refunds and the longest call an
//! account can pay for.
//!
//! Pure logic like the rest of the crate: the caller passes the time and the
//! tariff plan, and applies debits through an [`AccountStore`] so that two
//! debits of one account never spend the same money twice. `docs/accounts.md`
//! describes the debit order and what is not implemented yet.

mod debit;
mod matching;
mod rerate;
mod session_ops;
mod shared;
mod store;
mod wire;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;

pub use debit::{
    BalanceCharge, ChargeKind, DebitOutcome, debit, debit_shared, max_usage, max_usage_shared,
    refund, refund_shared, settle,
};
pub use rerate::{RerateBasis, Rerated, rerate_session};
pub use session_ops::{
    DEFAULT_KEEP_MARKS, FinalCharge, Reservation, SessionCharges, SessionCtx, Settlement,
    debit_forced, reserve_session, session_id, session_max_usage, settle_session,
};
pub use shared::{SharedGroup, SharedGroups, shared_members};
pub use store::{AccountStore, AccountStoreExt, MemoryAccounts};

use crate::call::Tor;

/// The type of a balance: what its value counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum BalanceType {
    /// `*monetary`: money.
    Monetary,
    /// `*voice`: call time, in nanoseconds as CGRateS counts it.
    Voice,
    /// `*sms`: messages.
    Sms,
    /// `*data`: data units.
    Data,
}

impl BalanceType {
    /// `*monetary`, `*voice`, `*sms` or `*data`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            BalanceType::Monetary => "*monetary",
            BalanceType::Voice => "*voice",
            BalanceType::Sms => "*sms",
            BalanceType::Data => "*data",
        }
    }

    /// The unit balance type that pays usage of `tor`.
    #[must_use]
    pub fn for_tor(tor: Tor) -> Self {
        match tor {
            Tor::Voice => BalanceType::Voice,
            Tor::Sms => BalanceType::Sms,
            Tor::Data => BalanceType::Data,
        }
    }
}

impl fmt::Display for BalanceType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for BalanceType {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        match s {
            "*monetary" => Ok(BalanceType::Monetary),
            "*voice" => Ok(BalanceType::Voice),
            "*sms" => Ok(BalanceType::Sms),
            "*data" => Ok(BalanceType::Data),
            _ => Err(()),
        }
    }
}

/// A set of IDs where each may be excluded, as CGRateS's `utils.StringMap`:
/// `DST_FR;!DST_MOBILE` is `{DST_FR: true, DST_MOBILE: false}`.
pub type FilterSet = BTreeMap<String, bool>;

/// Parses CGRateS's `;`-separated ID list (`DST_FR;!DST_MOBILE`, `*any`)
/// into a [`FilterSet`]; `*any` and empty entries give the empty set
/// (matches everything).
#[must_use]
pub fn parse_filter_set(s: &str) -> FilterSet {
    s.split(';')
        .map(str::trim)
        .filter(|p| !p.is_empty() && *p != "*any")
        .map(|p| match p.strip_prefix('!') {
            Some(ex) => (ex.to_owned(), false),
            None => (p.to_owned(), true),
        })
        .collect()
}

/// One balance of an account.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Balance {
    /// Unique ID of this balance (CGRateS's `Uuid`): refunds find it by this.
    pub uuid: String,
    /// The operator's ID (`*default` for the account's default monetary
    /// balance).
    pub id: String,
    /// Money, or units: nanoseconds for `*voice`, messages for `*sms`, data
    /// units for `*data`.
    pub value: Decimal,
    /// Higher weights are used first.
    pub weight: Decimal,
    /// The balance cannot be used from this moment; `None`: never expires.
    pub expiration: Option<DateTime<Utc>>,
    /// Destination IDs the balance pays for (`false`: excluded); empty:
    /// every destination.
    pub destination_ids: FilterSet,
    /// `*zero1s`-style: free units consumed by that increment; another
    /// subject: the units are priced at that subject's tariff and the money
    /// comes from the monetary balances; empty: `*zero1s` for `*voice`,
    /// `*zero1ns` otherwise (CGRateS's default `balance_rating_subject`).
    pub rating_subject: String,
    /// Categories the balance pays for; empty: all.
    pub categories: FilterSet,
    /// Shared groups the balance belongs to ([`debit_shared`] draws from
    /// the group's balances in every member account).
    pub shared_groups: BTreeSet<String>,
    /// Timing IDs (from the tariff plan's Timings.csv, or `*any`): the
    /// balance is used only when one covers the call's start; empty:
    /// always.
    pub timing_ids: BTreeSet<String>,
    /// A disabled balance is never used.
    pub disabled: bool,
    /// When this balance cannot pay (all of) the usage, no balance after it
    /// is tried.
    pub blocker: bool,
    /// CGRateS's `Factor` (per category multipliers); kept, not used.
    pub factor: BTreeMap<String, Decimal>,
}

impl Balance {
    /// Whether the balance can be used at `at`: enabled and not expired.
    #[must_use]
    pub fn usable_at(&self, at: DateTime<Utc>) -> bool {
        !self.disabled && self.expiration.is_none_or(|e| at < e)
    }

    /// The increment of a `*zero` rating subject (`*zero1s` -> 1 s), for a
    /// usage of `tor`; `None` for a real rating subject.
    #[must_use]
    pub fn free_increment(&self, tor: Tor) -> Option<Duration> {
        let rs = self.rating_subject.trim();
        if rs.is_empty() {
            return Some(if tor == Tor::Voice {
                Duration::from_secs(1)
            } else {
                Duration::from_nanos(1)
            });
        }
        let d = crate::parse_duration(rs.strip_prefix("*zero")?).ok()?;
        Some(if d.is_zero() {
            Duration::from_nanos(1)
        } else {
            d
        })
    }
}

/// An account of a tenant with its balances.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Account {
    /// Tenant (`cgrates.org`).
    pub tenant: String,
    /// Account ID within the tenant (`1001`).
    pub id: String,
    /// Balances by type, in load order.
    pub balances: BTreeMap<BalanceType, Vec<Balance>>,
    /// Debits may take the default monetary balance below zero.
    pub allow_negative: bool,
    /// A disabled account cannot be debited.
    pub disabled: bool,
    /// When the account last changed (set by debits and refunds).
    pub update_time: Option<DateTime<Utc>>,
    /// ActionTriggers set IDs attached (evaluated by
    /// [`crate::actions::check_triggers`]).
    pub action_triggers: Vec<String>,
    /// State of the attached trigger rows, by
    /// [`crate::actions::trigger_key`].
    pub trigger_runs: BTreeMap<String, crate::actions::TriggerRun>,
    /// Event counters by balance type (`*monetary`: money debited,
    /// `*voice`: units debited), for the `*_event_counter` triggers.
    pub counters: BTreeMap<String, Decimal>,
    /// What the account remembers of the sessions charging it, by
    /// [`session_id`]: open reservations and "charged" marks, so that no
    /// session is debited twice (see [`reserve_session`],
    /// [`settle_session`]). Stored, not part of CGRateS's reply shape.
    pub sessions: BTreeMap<String, SessionCharges>,
}

/// The ID of the balance a debit takes negative when money runs out, as
/// CGRateS's `utils.MetaDefault`.
pub const DEFAULT_BALANCE_ID: &str = "*default";

impl Account {
    /// A new account without balances.
    #[must_use]
    pub fn new(tenant: &str, id: &str) -> Self {
        Account {
            tenant: tenant.to_owned(),
            id: id.to_owned(),
            ..Account::default()
        }
    }

    /// `tenant:id`, CGRateS's account key.
    #[must_use]
    pub fn key(&self) -> String {
        format!("{}:{}", self.tenant, self.id)
    }

    /// Balances of one type (empty if none).
    #[must_use]
    pub fn balances_of(&self, t: BalanceType) -> &[Balance] {
        self.balances.get(&t).map_or(&[], Vec::as_slice)
    }

    /// Sum of the values of one type's balances usable at `at`.
    #[must_use]
    pub fn total(&self, t: BalanceType, at: DateTime<Utc>) -> Decimal {
        self.balances_of(t)
            .iter()
            .filter(|b| b.usable_at(at))
            .fold(Decimal::ZERO, |s, b| s.saturating_add(b.value))
    }

    /// Adds a balance (its uuid is made up from the account key, type and
    /// position when empty).
    pub fn add_balance(&mut self, t: BalanceType, mut b: Balance) {
        let list = self.balances.entry(t).or_default();
        if b.uuid.is_empty() {
            b.uuid = format!("{}:{}:{}:{}", self.tenant, self.id, t, list.len());
        }
        list.push(b);
    }

    /// The balance with this uuid (any type).
    pub(crate) fn balance_mut(&mut self, t: BalanceType, uuid: &str) -> Option<&mut Balance> {
        self.balances
            .get_mut(&t)?
            .iter_mut()
            .find(|b| b.uuid == uuid)
    }

    /// The uuid of the default monetary balance (ID `*default`), created
    /// empty when missing, as CGRateS's `GetDefaultMoneyBalance`.
    pub(crate) fn default_money_uuid(&mut self) -> String {
        let found = self
            .balances_of(BalanceType::Monetary)
            .iter()
            .find(|b| b.id == DEFAULT_BALANCE_ID)
            .map(|b| b.uuid.clone());
        if let Some(uuid) = found {
            return uuid;
        }
        self.add_balance(
            BalanceType::Monetary,
            Balance {
                id: DEFAULT_BALANCE_ID.to_owned(),
                ..Balance::default()
            },
        );
        self.balances_of(BalanceType::Monetary)
            .last()
            .map(|b| b.uuid.clone())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests;
