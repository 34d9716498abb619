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
mod tests {
    //! Every expectation is worked out by hand: the plan charges 0.01 a
    //! second (0.6 a minute, 1 s increments, no connect fee) to 44.
    #![allow(clippy::unwrap_used)]

    use std::path::Path;
    use std::str::FromStr;
    use std::sync::Arc;

    use chrono::TimeZone;

    use super::*;
    use crate::{AccountStore, AccountStoreExt, Balance, LoadOptions, MemoryAccounts};

    fn plan() -> TariffPlan {
        let files = [
            ("Destinations.csv", "DST_UK,44\n"),
            ("Rates.csv", "RT_SEC,0,0.6,60s,1s,0s\n"),
            ("DestinationRates.csv", "DR_UK,DST_UK,RT_SEC,*up,4,0,\n"),
            ("RatingPlans.csv", "RP_STD,DR_UK,*any,10\n"),
            (
                "RatingProfiles.csv",
                "cgrates.org,call,*any,2014-01-01T00:00:00Z,RP_STD,\n",
            ),
        ];
        let v: Vec<(&Path, &str)> = files.iter().map(|(n, t)| (Path::new(*n), *t)).collect();
        let opts = LoadOptions {
            loaded_at: Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap(),
        };
        TariffPlan::from_csv(&v, &opts).unwrap().0
    }

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2024, 5, 13, 10, 0, 0).unwrap()
    }

    fn at(secs: i64) -> DateTime<Utc> {
        t0() + TimeDelta::seconds(secs)
    }

    /// Piece of the call to 4420 answered at t0: `offset` s in, `secs` long.
    fn piece(offset: u64, secs: u64) -> CallDescriptor<'static> {
        CallDescriptor {
            start: at(i64::try_from(offset).unwrap()),
            offset: Duration::from_secs(offset),
            ..CallDescriptor::new("1001", "4420", t0(), Duration::from_secs(secs))
        }
    }

    fn account(money: &str, voice_secs: u64) -> Account {
        let mut a = Account::new("cgrates.org", "1001");
        a.add_balance(
            BalanceType::Monetary,
            Balance {
                id: "credit".into(),
                value: d(money),
                ..Balance::default()
            },
        );
        if voice_secs > 0 {
            a.add_balance(
                BalanceType::Voice,
                Balance {
                    id: "minutes".into(),
                    value: Decimal::from(voice_secs * 1_000_000_000),
                    rating_subject: "*zero1s".into(),
                    ..Balance::default()
                },
            );
        }
        a
    }

    fn money(a: &Account) -> Decimal {
        a.total(BalanceType::Monetary, t0())
    }

    fn voice(a: &Account) -> Decimal {
        a.total(BalanceType::Voice, t0())
    }

    fn ctx<'a>(plan: &'a TariffPlan, now: DateTime<Utc>) -> SessionCtx<'a> {
        SessionCtx {
            session: "cgrid1:*default",
            plan,
            mode: RoundingMode::Exact,
            groups: None,
            now,
            keep_marks: DEFAULT_KEEP_MARKS,
        }
    }

    fn one(a: &mut Account) -> &mut [Account] {
        std::slice::from_mut(a)
    }

    // 60 s reserved twice under the same number: 0.60 taken once.
    #[test]
    fn repeated_reservation_is_replayed_not_debited() {
        let p = plan();
        let mut a = account("10", 0);
        let c = ctx(&p, at(0));
        let r1 = reserve_session(one(&mut a), &c, 0, &piece(0, 60)).unwrap();
        assert!(matches!(r1, Reservation::Reserved(ref o) if o.cost == d("0.6")));
        let r2 = reserve_session(one(&mut a), &c, 0, &piece(0, 60)).unwrap();
        assert!(matches!(r2, Reservation::Replayed(ref o) if o.cost == d("0.6")));
        assert_eq!(money(&a), d("9.4"));
    }

    // Reserved 60 + 60 s (1.20), used 75 s: 0.75 in the end.
    #[test]
    fn settle_refunds_reservations_and_debits_real_usage_once() {
        let p = plan();
        let mut a = account("10", 0);
        reserve_session(one(&mut a), &ctx(&p, at(0)), 0, &piece(0, 60)).unwrap();
        reserve_session(one(&mut a), &ctx(&p, at(60)), 1, &piece(60, 60)).unwrap();
        assert_eq!(money(&a), d("8.8"));
        let s = settle_session(one(&mut a), &ctx(&p, at(75)), &piece(0, 75), false).unwrap();
        assert!(!s.replayed);
        assert_eq!(s.refunded.len(), 2);
        assert_eq!(s.charge.cost, d("0.75"));
        assert_eq!(money(&a), d("9.25"));
        let rec = &a.sessions["cgrid1:*default"];
        assert!(rec.reservations.is_empty());
        assert_eq!(rec.charged.unwrap().cost, d("0.75"));
    }

    #[test]
    fn double_terminate_charges_once() {
        let p = plan();
        let mut a = account("10", 0);
        reserve_session(one(&mut a), &ctx(&p, at(0)), 0, &piece(0, 60)).unwrap();
        let s1 = settle_session(one(&mut a), &ctx(&p, at(30)), &piece(0, 30), false).unwrap();
        let before = a.clone();
        // The second terminate even says another usage: the mark wins.
        let s2 = settle_session(one(&mut a), &ctx(&p, at(31)), &piece(0, 45), true).unwrap();
        assert!(s2.replayed);
        assert_eq!(s2.charge, s1.charge);
        assert_eq!(s2.charge.cost, d("0.3"));
        assert_eq!(a, before);
        // And a late reservation of a settled session takes nothing.
        let r = reserve_session(one(&mut a), &ctx(&p, at(32)), 1, &piece(60, 60)).unwrap();
        assert!(matches!(r, Reservation::Settled(_)));
        assert_eq!(money(&a), d("9.7"));
    }

    // The process reserved pieces 0, 1 and 2, but crashed before the
    // snapshot recording piece 2. After the restart it re-reserves piece 2
    // (replayed, nothing taken) and settles 150 s: 1.50 in all, every
    // reservation given back, including the one its snapshot missed.
    #[test]
    fn terminate_after_restart_with_stale_snapshot() {
        let p = plan();
        let mut a = account("10", 0);
        for seq in 0..3_u32 {
            let off = u64::from(seq) * 60;
            let c = ctx(&p, at(i64::from(seq) * 60));
            reserve_session(one(&mut a), &c, seq, &piece(off, 60)).unwrap();
        }
        assert_eq!(money(&a), d("8.2"));
        // Restarted from a snapshot that knew pieces 0 and 1 only.
        let again = reserve_session(one(&mut a), &ctx(&p, at(125)), 2, &piece(120, 60)).unwrap();
        assert!(matches!(again, Reservation::Replayed(_)));
        assert_eq!(money(&a), d("8.2"));
        let s = settle_session(one(&mut a), &ctx(&p, at(150)), &piece(0, 150), false).unwrap();
        assert_eq!(s.refunded.len(), 3);
        assert_eq!(money(&a), d("8.5"));
    }

    // 100 s of free minutes reserved, 40 used: 60 s come back.
    #[test]
    fn settle_gives_back_unit_balances() {
        let p = plan();
        let mut a = account("10", 100);
        reserve_session(one(&mut a), &ctx(&p, at(0)), 0, &piece(0, 100)).unwrap();
        assert_eq!(voice(&a), Decimal::ZERO);
        let s = settle_session(one(&mut a), &ctx(&p, at(40)), &piece(0, 40), false).unwrap();
        assert_eq!(s.charge.cost, Decimal::ZERO);
        assert_eq!(voice(&a), Decimal::from(60_u64 * 1_000_000_000));
        assert_eq!(money(&a), d("10"));
    }

    // 1.00 of credit, 150 s used: 1.50 due, 0.50 goes below zero although
    // the account may not go negative; its flags are kept.
    #[test]
    fn forced_settle_goes_negative_on_the_default_balance() {
        let p = plan();
        let mut a = account("1", 0);
        assert!(matches!(
            settle_session(one(&mut a), &ctx(&p, at(150)), &piece(0, 150), false),
            Err(Error::InsufficientCredit { .. })
        ));
        assert!(a.sessions.is_empty());
        let s = settle_session(one(&mut a), &ctx(&p, at(150)), &piece(0, 150), true).unwrap();
        assert_eq!(s.charge.cost, d("1.5"));
        assert_eq!(s.debit.unwrap().negative, d("0.5"));
        assert_eq!(money(&a), d("-0.5"));
        let def = a
            .balances_of(BalanceType::Monetary)
            .iter()
            .find(|b| b.id == crate::DEFAULT_BALANCE_ID)
            .unwrap();
        assert_eq!(def.value, d("-0.5"));
        assert!(!a.allow_negative);
    }

    #[test]
    fn debit_forced_on_a_disabled_account_keeps_it_disabled() {
        let p = plan();
        let mut a = account("0", 0);
        a.disabled = true;
        let o = debit_forced(&mut a, &piece(0, 10), &p, RoundingMode::Exact, at(10)).unwrap();
        assert_eq!(o.negative, d("0.1"));
        assert!(a.disabled);
    }

    #[test]
    fn marks_are_pruned_by_age_reservations_are_not() {
        let p = plan();
        let mut a = account("10", 0);
        settle_session(one(&mut a), &ctx(&p, at(0)), &piece(0, 10), false).unwrap();
        let mut other = ctx(&p, at(10));
        other.session = "cgrid2:*default";
        reserve_session(one(&mut a), &other, 0, &piece(0, 10)).unwrap();
        let mut late = ctx(&p, at(0) + TimeDelta::days(2));
        late.session = "cgrid3:*default";
        reserve_session(one(&mut a), &late, 0, &piece(0, 10)).unwrap();
        let keys: Vec<&str> = a.sessions.keys().map(String::as_str).collect();
        assert_eq!(keys, ["cgrid2:*default", "cgrid3:*default"]);
    }

    #[test]
    fn session_records_survive_the_json_round_trip_and_are_absent_when_empty() {
        let p = plan();
        let mut a = account("10", 100);
        let plain = serde_json::to_string(&a).unwrap();
        assert!(!plain.contains("Sessions"), "{plain}");
        reserve_session(one(&mut a), &ctx(&p, at(0)), 0, &piece(0, 130)).unwrap();
        let mut c2 = ctx(&p, at(0));
        c2.session = "other:*default";
        settle_session(one(&mut a), &c2, &piece(0, 5), false).unwrap();
        let json = serde_json::to_string(&a).unwrap();
        let back: Account = serde_json::from_str(&json).unwrap();
        assert_eq!(back, a);
    }

    // Two copies of one call (two proxies) race through a shared store:
    // each reserves piece 0 and settles 30 s; the account pays 0.30 once.
    #[test]
    fn concurrent_copies_of_a_call_are_charged_once() {
        let p = Arc::new(plan());
        let store = Arc::new(MemoryAccounts::new());
        store.set(account("10", 0)).unwrap();
        let mut handles = Vec::new();
        for _ in 0..4 {
            let (p, store) = (Arc::clone(&p), Arc::clone(&store));
            handles.push(std::thread::spawn(move || {
                let c = ctx(&p, at(0));
                store
                    .update_with("cgrates.org", "1001", |a| {
                        reserve_session(one(a), &c, 0, &piece(0, 60))
                    })
                    .unwrap();
                let c = ctx(&p, at(30));
                store
                    .update_with("cgrates.org", "1001", |a| {
                        settle_session(one(a), &c, &piece(0, 30), false)
                    })
                    .unwrap()
            }));
        }
        let outs: Vec<Settlement> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        assert_eq!(outs.iter().filter(|s| !s.replayed).count(), 1);
        assert!(outs.iter().all(|s| s.charge.cost == d("0.3")));
        let a = store.get("cgrates.org", "1001").unwrap().unwrap();
        assert_eq!(money(&a), d("9.7"));
    }

    // Interleaving by hand: copy A reserves, copy B reserves the same piece
    // (replayed), A settles 20 s, B's later reservation of piece 1 and its
    // settle of 45 s take nothing.
    #[test]
    fn interleaved_copies_by_hand() {
        let p = plan();
        let mut a = account("10", 0);
        reserve_session(one(&mut a), &ctx(&p, at(0)), 0, &piece(0, 60)).unwrap();
        let b0 = reserve_session(one(&mut a), &ctx(&p, at(1)), 0, &piece(0, 60)).unwrap();
        assert!(matches!(b0, Reservation::Replayed(_)));
        settle_session(one(&mut a), &ctx(&p, at(20)), &piece(0, 20), false).unwrap();
        let b1 = reserve_session(one(&mut a), &ctx(&p, at(60)), 1, &piece(60, 60)).unwrap();
        assert!(matches!(b1, Reservation::Settled(c) if c.cost == d("0.2")));
        let bs = settle_session(one(&mut a), &ctx(&p, at(45)), &piece(0, 45), false).unwrap();
        assert!(bs.replayed);
        assert_eq!(money(&a), d("9.8"));
    }

    // 3.00 of credit: 300 s at most; a reservation beyond fails whole.
    #[test]
    fn max_usage_and_a_reservation_too_big() {
        let p = plan();
        let mut a = account("3", 0);
        let c = ctx(&p, at(0));
        let m = session_max_usage(std::slice::from_ref(&a), &c, &piece(0, 3600)).unwrap();
        assert_eq!(m, Duration::from_secs(300));
        assert!(reserve_session(one(&mut a), &c, 0, &piece(0, 301)).is_err());
        assert!(a.sessions.is_empty());
        assert_eq!(money(&a), d("3"));
    }
}
