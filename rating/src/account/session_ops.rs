//! Session charging that is idempotent inside the account's atomic update.
//!
//! A prepaid session reserves usage in pieces and settles at its end; a
//! postpaid one debits once at its end. Any of these steps may be repeated:
//! two proxies report the same call, a client repeats a TerminateSession or
//! a ProcessCDR, or a process restarts between a debit and the snapshot that
//! would have recorded it. So the account itself remembers, per session
//! (CGRID + RunID, [`session_id`]), the reservations made ([`DebitOutcome`]s
//! by sequence number) and, once settled, a "charged" mark with the cost.
//! The operations here check and change those records in the same update
//! as the balances, so whoever runs the update second finds the first's
//! record and takes nothing:
//!
//! - [`reserve_session`]: a reservation whose sequence number is already
//!   recorded returns the recorded outcome; after the charged mark, nothing.
//! - [`settle_session`]: gives back every reservation found in the account
//!   (not the ones the caller believes in: its snapshot may be stale),
//!   debits the real usage, and replaces the reservations by the mark; a
//!   second settle returns the mark's cost.
//!
//! Marks are pruned by age ([`SessionCtx::keep_marks`]) on every operation,
//! so an account does not grow with its call history.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::debit::debit_with;
use super::{Account, BalanceCharge, BalanceType, ChargeKind, DebitOutcome, refund_shared};
use super::{SharedGroups, max_usage_shared};
use crate::Error;
use crate::call::CallDescriptor;
use crate::money::RoundingMode;
use crate::plan::TariffPlan;

/// The key of a session's records in [`Account::sessions`]: `CGRID:RunID`.
#[must_use]
pub fn session_id(cgrid: &str, run_id: &str) -> String {
    format!("{cgrid}:{run_id}")
}

/// What an account remembers of one session's charging.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionCharges {
    /// When the session last changed these records (pruning goes by it).
    pub updated: DateTime<Utc>,
    /// Reservations not settled yet, by sequence number.
    pub reservations: BTreeMap<u32, DebitOutcome>,
    /// Set when the session is settled: nothing more is debited for it.
    pub charged: Option<FinalCharge>,
    /// The debit behind `charged` (the settle's, or the last re-rate's):
    /// what a re-rate gives back ([`super::rerate_session`]). `None` when
    /// nothing was debited, or for marks written before it was kept.
    pub debit: Option<DebitOutcome>,
}

/// The "charged" mark of a settled session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FinalCharge {
    /// Money the session cost in all.
    pub cost: Decimal,
    /// The usage it was charged for.
    pub usage: Duration,
}

/// What a session operation needs besides the accounts and the call.
#[derive(Clone, Copy)]
pub struct SessionCtx<'a> {
    /// [`session_id`] of the session.
    pub session: &'a str,
    /// The tariff plan in force.
    pub plan: &'a TariffPlan,
    /// Rounding of debits.
    pub mode: RoundingMode,
    /// Shared groups, when the accounts given include the members of the
    /// account's groups (`accounts[0]` is always the account charged).
    pub groups: Option<&'a dyn SharedGroups>,
    /// The current time: stamps the records and the account.
    pub now: DateTime<Utc>,
    /// Charged marks older than this (since their last change) are
    /// forgotten; [`DEFAULT_KEEP_MARKS`] is a good default.
    pub keep_marks: Duration,
}

/// How long charged marks are kept by default: a day covers repeated
/// terminates, the two proxies' copies of a call and a restart.
pub const DEFAULT_KEEP_MARKS: Duration = Duration::from_secs(24 * 3600);

/// The result of [`reserve_session`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reservation {
    /// Reserved now.
    Reserved(DebitOutcome),
    /// This sequence number was reserved before: its recorded outcome,
    /// nothing taken now.
    Replayed(DebitOutcome),
    /// The session is already settled: nothing taken.
    Settled(FinalCharge),
}

impl Reservation {
    /// The usage this reservation holds (zero for a settled session).
    #[must_use]
    pub fn usage(&self) -> Duration {
        match self {
            Reservation::Reserved(o) | Reservation::Replayed(o) => o.usage,
            Reservation::Settled(_) => Duration::ZERO,
        }
    }
}

/// The result of [`settle_session`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settlement {
    /// The session's charge (the recorded one when `replayed`).
    pub charge: FinalCharge,
    /// The final debit (`None` when `replayed`, or when nothing was
    /// debited for a zero usage).
    pub debit: Option<DebitOutcome>,
    /// The reservations given back.
    pub refunded: Vec<DebitOutcome>,
    /// The session was settled before: nothing changed now.
    pub replayed: bool,
}

/// Reserves `cd` (one piece of the call: its start, usage and offset) as
/// reservation `seq` of the session, unless already done.
///
/// # Errors
/// As [`super::debit`]: a reservation the balances cannot pay fails and
/// changes nothing (use [`session_max_usage`] first to reserve what they
/// can).
pub fn reserve_session(
    accounts: &mut [Account],
    ctx: &SessionCtx<'_>,
    seq: u32,
    cd: &CallDescriptor<'_>,
) -> Result<Reservation, Error> {
    let me = first_mut(accounts)?;
    prune_marks(me, ctx);
    if let Some(rec) = me.sessions.get(ctx.session) {
        if let Some(c) = rec.charged {
            return Ok(Reservation::Settled(c));
        }
        if let Some(o) = rec.reservations.get(&seq) {
            return Ok(Reservation::Replayed(o.clone()));
        }
    }
    let out = debit_with(accounts, ctx.groups, cd, ctx.plan, ctx.mode, ctx.now)?;
    let me = first_mut(accounts)?;
    let rec = me
        .sessions
        .entry(ctx.session.to_owned())
        .or_insert_with(|| SessionCharges {
            updated: ctx.now,
            reservations: BTreeMap::new(),
            charged: None,
            debit: None,
        });
    rec.updated = ctx.now;
    rec.reservations.insert(seq, out.clone());
    Ok(Reservation::Reserved(out))
}

/// Settles the session: gives back every reservation the account holds
/// for it, debits `used` (the whole call: its answer time, total usage,
/// offset zero) and records the charged mark, all in this one change. A
/// session already settled is not charged again: its mark comes back.
///
/// `forced`: the call happened, so it is billed even when the balances
/// cannot pay, the unpaid rest going below zero on the default monetary
/// balance ([`debit_forced`]); otherwise a debit the balances cannot pay
/// fails and changes nothing.
///
/// # Errors
/// As [`super::debit`] (rating errors; insufficient credit unless forced).
pub fn settle_session(
    accounts: &mut [Account],
    ctx: &SessionCtx<'_>,
    used: &CallDescriptor<'_>,
    forced: bool,
) -> Result<Settlement, Error> {
    let me = first_mut(accounts)?;
    prune_marks(me, ctx);
    let reservations = match me.sessions.get(ctx.session) {
        Some(SessionCharges {
            charged: Some(c), ..
        }) => {
            return Ok(Settlement {
                charge: *c,
                debit: None,
                refunded: Vec::new(),
                replayed: true,
            });
        }
        Some(rec) => rec.reservations.values().cloned().collect(),
        None => Vec::new(),
    };
    // Work on copies: a failing debit leaves the reservations in place.
    let mut copy = accounts.to_vec();
    for r in &reservations {
        refund_shared(&mut copy, r, ctx.now);
    }
    let debit = if used.usage.is_zero() && no_fee_at_zero(used, ctx) {
        None
    } else if forced {
        Some(forced_with(
            &mut copy, ctx.groups, used, ctx.plan, ctx.mode, ctx.now,
        )?)
    } else {
        Some(debit_with(
            &mut copy, ctx.groups, used, ctx.plan, ctx.mode, ctx.now,
        )?)
    };
    let charge = FinalCharge {
        cost: debit.as_ref().map_or(Decimal::ZERO, |d| d.cost),
        usage: used.usage,
    };
    let me = first_mut(&mut copy)?;
    me.update_time = Some(ctx.now);
    me.sessions.insert(
        ctx.session.to_owned(),
        SessionCharges {
            updated: ctx.now,
            reservations: BTreeMap::new(),
            charged: Some(charge),
            debit: debit.clone(),
        },
    );
    accounts.clone_from_slice(&copy);
    Ok(Settlement {
        charge,
        debit,
        refunded: reservations,
        replayed: false,
    })
}

/// The longest usage, at most `cd.usage`, the account can pay for
/// ([`super::max_usage`], with the shared groups of `ctx` when given).
///
/// # Errors
/// As [`super::max_usage`].
pub fn session_max_usage(
    accounts: &[Account],
    ctx: &SessionCtx<'_>,
    cd: &CallDescriptor<'_>,
) -> Result<Duration, Error> {
    match (ctx.groups, accounts.first()) {
        (Some(g), _) => max_usage_shared(accounts, g, cd, ctx.plan, ctx.mode, ctx.now),
        (None, Some(a)) => super::max_usage(a, cd, ctx.plan, ctx.mode, ctx.now),
        (None, None) => Err(Error::InvalidInput {
            what: "accounts",
            value: "none".into(),
        }),
    }
}

/// Debits a call that happened, whatever the balances hold: as
/// [`super::debit`] on an account allowed to go negative (and not
/// disabled), the unpaid rest taken as a [`ChargeKind::Negative`] charge
/// on the default monetary balance. The account's own flags are kept.
///
/// # Errors
/// The rating errors of [`TariffPlan::cost`].
pub fn debit_forced(
    account: &mut Account,
    cd: &CallDescriptor<'_>,
    plan: &TariffPlan,
    mode: RoundingMode,
    now: DateTime<Utc>,
) -> Result<DebitOutcome, Error> {
    forced_with(std::slice::from_mut(account), None, cd, plan, mode, now)
}

pub(super) fn forced_with(
    accounts: &mut [Account],
    groups: Option<&dyn SharedGroups>,
    cd: &CallDescriptor<'_>,
    plan: &TariffPlan,
    mode: RoundingMode,
    now: DateTime<Utc>,
) -> Result<DebitOutcome, Error> {
    let me = first_mut(accounts)?;
    let flags = (me.allow_negative, me.disabled);
    me.allow_negative = true;
    me.disabled = false;
    let out = debit_with(accounts, groups, cd, plan, mode, now);
    // Restored whether the debit worked or not.
    let me = first_mut(accounts)?;
    (me.allow_negative, me.disabled) = flags;
    out
}

/// Whether a zero usage costs nothing (no connect fee): then settling it
/// debits nothing at all, which also works on an account whose rating
/// fails.
pub(super) fn no_fee_at_zero(used: &CallDescriptor<'_>, ctx: &SessionCtx<'_>) -> bool {
    ctx.plan
        .cost(used, ctx.mode)
        .map_or(true, |c| c.cost.amount().is_zero())
}

pub(super) fn first_mut(accounts: &mut [Account]) -> Result<&mut Account, Error> {
    accounts.first_mut().ok_or_else(|| Error::InvalidInput {
        what: "accounts",
        value: "none".into(),
    })
}

/// Forgets charged marks older than `keep_marks`. Open reservations are
/// kept whatever their age: they hold money that only a settle returns.
pub(super) fn prune_marks(account: &mut Account, ctx: &SessionCtx<'_>) {
    let keep = TimeDelta::from_std(ctx.keep_marks).unwrap_or(TimeDelta::MAX);
    let Some(cutoff) = ctx.now.checked_sub_signed(keep) else {
        return;
    };
    account
        .sessions
        .retain(|_, r| r.charged.is_none() || r.updated >= cutoff);
}

// --- serde: the records are part of the stored account -------------------

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ChargeWire {
    account: String,
    balance_type: String,
    uuid: String,
    #[serde(rename = "ID")]
    id: String,
    kind: String,
    amount: Decimal,
    usage: u64,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct OutcomeWire {
    account: String,
    charges: Vec<ChargeWire>,
    cost: Decimal,
    connect_fee: Decimal,
    usage: u64,
    unit_usage: u64,
    negative: Decimal,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct FinalWire {
    cost: Decimal,
    usage: u64,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct SessionWire {
    updated: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    reservations: BTreeMap<u32, OutcomeWire>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    charged: Option<FinalWire>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    debit: Option<OutcomeWire>,
}

fn kind_str(k: ChargeKind) -> &'static str {
    match k {
        ChargeKind::ConnectFee => "connect_fee",
        ChargeKind::FreeUnits => "free_units",
        ChargeKind::PricedUnits => "priced_units",
        ChargeKind::UnitsPrice => "units_price",
        ChargeKind::Usage => "usage",
        ChargeKind::Rounding => "rounding",
        ChargeKind::Negative => "negative",
    }
}

fn kind_from(s: &str) -> Option<ChargeKind> {
    Some(match s {
        "connect_fee" => ChargeKind::ConnectFee,
        "free_units" => ChargeKind::FreeUnits,
        "priced_units" => ChargeKind::PricedUnits,
        "units_price" => ChargeKind::UnitsPrice,
        "usage" => ChargeKind::Usage,
        "rounding" => ChargeKind::Rounding,
        "negative" => ChargeKind::Negative,
        _ => return None,
    })
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

impl From<&DebitOutcome> for OutcomeWire {
    fn from(o: &DebitOutcome) -> Self {
        OutcomeWire {
            account: o.account.clone(),
            charges: o
                .charges
                .iter()
                .map(|c| ChargeWire {
                    account: c.account.clone(),
                    balance_type: c.balance_type.as_str().to_owned(),
                    uuid: c.balance_uuid.clone(),
                    id: c.balance_id.clone(),
                    kind: kind_str(c.kind).to_owned(),
                    amount: c.amount,
                    usage: nanos(c.usage),
                })
                .collect(),
            cost: o.cost,
            connect_fee: o.connect_fee,
            usage: nanos(o.usage),
            unit_usage: nanos(o.unit_usage),
            negative: o.negative,
        }
    }
}

impl TryFrom<OutcomeWire> for DebitOutcome {
    type Error = String;
    fn try_from(w: OutcomeWire) -> Result<Self, String> {
        let mut charges = Vec::with_capacity(w.charges.len());
        for c in w.charges {
            let balance_type: BalanceType = c
                .balance_type
                .parse()
                .map_err(|()| format!("unknown balance type {:?}", c.balance_type))?;
            let kind = kind_from(&c.kind).ok_or_else(|| format!("unknown kind {:?}", c.kind))?;
            charges.push(BalanceCharge {
                account: c.account,
                balance_type,
                balance_uuid: c.uuid,
                balance_id: c.id,
                kind,
                amount: c.amount,
                usage: Duration::from_nanos(c.usage),
            });
        }
        Ok(DebitOutcome {
            account: w.account,
            charges,
            cost: w.cost,
            connect_fee: w.connect_fee,
            usage: Duration::from_nanos(w.usage),
            unit_usage: Duration::from_nanos(w.unit_usage),
            negative: w.negative,
        })
    }
}

impl Serialize for SessionCharges {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        SessionWire {
            updated: self.updated,
            reservations: self
                .reservations
                .iter()
                .map(|(k, o)| (*k, OutcomeWire::from(o)))
                .collect(),
            charged: self.charged.map(|c| FinalWire {
                cost: c.cost,
                usage: nanos(c.usage),
            }),
            debit: self.debit.as_ref().map(OutcomeWire::from),
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for SessionCharges {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let w = SessionWire::deserialize(d)?;
        let mut reservations = BTreeMap::new();
        for (k, o) in w.reservations {
            reservations.insert(
                k,
                DebitOutcome::try_from(o).map_err(serde::de::Error::custom)?,
            );
        }
        Ok(SessionCharges {
            updated: w.updated,
            reservations,
            charged: w.charged.map(|c| FinalCharge {
                cost: c.cost,
                usage: Duration::from_nanos(c.usage),
            }),
            debit: w
                .debit
                .map(DebitOutcome::try_from)
                .transpose()
                .map_err(serde::de::Error::custom)?,
        })
    }
}

#[cfg(test)]
mod tests;
