//! Debits, refunds and the longest call an account can pay for.
//!
//! Order of a debit (as CGRateS's `debitCreditBalance`, see
//! `docs/accounts.md`): the connect fee, whole, from the first monetary
//! balance that can pay it; then the unit balances of the call's type
//! (free `*zero` units, or units priced at their rating subject and paid
//! from money); then the rest of the call at the tariff, increment by
//! increment, from the monetary balances. A debit is all or nothing: it
//! works on a copy of the account and only a successful walk replaces it.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;

use super::shared::{SharedGroups, Slot, walk_order};
use super::{Account, BalanceType};
use crate::Error;
use crate::call::CallDescriptor;
use crate::exact::ExactAmount;
use crate::money::RoundingMode;
use crate::plan::TariffPlan;

/// Why a balance was charged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChargeKind {
    /// The call's connect fee (money).
    ConnectFee,
    /// Free units of a `*zero` rating subject.
    FreeUnits,
    /// Units priced at the balance's rating subject (their money is a
    /// separate [`ChargeKind::UnitsPrice`] charge).
    PricedUnits,
    /// Money paying for priced units.
    UnitsPrice,
    /// Money paying the call's usage at the tariff.
    Usage,
    /// The difference between the rounded cost and the increments paid
    /// (rounding, a `*free` MaxCost cap), put on the last balance used.
    Rounding,
    /// Money nobody could pay, taken below zero on the default balance of
    /// an AllowNegative account.
    Negative,
}

/// What a debit took from one balance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BalanceCharge {
    /// `tenant:account` of the balance (another member's, for a shared
    /// balance).
    pub account: String,
    /// The balance's type.
    pub balance_type: BalanceType,
    /// The balance's uuid.
    pub balance_uuid: String,
    /// The balance's ID.
    pub balance_id: String,
    /// Why.
    pub kind: ChargeKind,
    /// Value taken (money, or units: ns for `*voice`); negative gives.
    pub amount: Decimal,
    /// Usage of the call this charge paid for (zero for fees and rounding).
    pub usage: Duration,
}

/// The result of a debit: what was taken from which balance.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DebitOutcome {
    /// `tenant:account`.
    pub account: String,
    /// Charges in the order they were made.
    pub charges: Vec<BalanceCharge>,
    /// Money taken in all (connect fee included).
    pub cost: Decimal,
    /// The connect fee charged.
    pub connect_fee: Decimal,
    /// Usage debited (as asked).
    pub usage: Duration,
    /// Usage paid by unit balances.
    pub unit_usage: Duration,
    /// Money taken below zero (AllowNegative).
    pub negative: Decimal,
}

impl DebitOutcome {
    /// Value taken from one balance in all.
    #[must_use]
    pub fn taken_from(&self, uuid: &str) -> Decimal {
        self.charges
            .iter()
            .filter(|c| c.balance_uuid == uuid)
            .fold(Decimal::ZERO, |s, c| s.saturating_add(c.amount))
    }
}

fn overflow(what: &'static str) -> Error {
    Error::Overflow { what }
}

fn ns(d: Duration) -> Result<u64, Error> {
    u64::try_from(d.as_nanos()).map_err(|_| overflow("usage"))
}

fn plus(t: DateTime<Utc>, n: u64) -> Result<DateTime<Utc>, Error> {
    let d = TimeDelta::nanoseconds(i64::try_from(n).map_err(|_| overflow("time"))?);
    t.checked_add_signed(d).ok_or_else(|| overflow("time"))
}

/// How many whole `c` fit in `v`, at most `cap` (`c > 0`).
fn fits(v: Decimal, c: Decimal, cap: u64) -> u64 {
    if v < c {
        return 0;
    }
    let q = v.checked_div(c).map_or(Decimal::MAX, |q| q.floor());
    let mut k = q.to_u64().unwrap_or(u64::MAX).min(cap);
    // The division rounds at 28 digits: never take more than the value.
    while k > 0 && Decimal::from(k).checked_mul(c).is_none_or(|t| t > v) {
        k -= 1;
    }
    k
}

/// A run of equal increments of a rated piece.
#[derive(Debug, Clone, Copy)]
struct Incs {
    /// How many.
    n: u64,
    /// Cost of one, exactly (in `cgrates` mode, CGRateS's rounded cost).
    cost: ExactAmount,
    /// Cost of one as a decimal.
    cost_dec: Decimal,
    /// Length of one.
    len: Duration,
    /// The rate, its unit and the increment, ns (exact mode prices `k`
    /// increments as one fraction, so 240 x 0.1/60 is 0.4, not 0.39...).
    rate: Decimal,
    unit: u64,
    inc: u64,
}

impl Incs {
    /// How many of them `v` can pay, at most `cap`.
    fn fit_in(&self, v: Decimal, cap: u64) -> u64 {
        let exact = ExactAmount::from_decimal(v)
            .and_then(|v| v.floor_div(self.cost))
            .and_then(|k| u64::try_from(k).ok());
        match exact {
            Some(k) => k.min(cap),
            None => fits(v, self.cost_dec, cap),
        }
    }

    /// The cost of `k` of them.
    fn cost_of(&self, k: u64, mode: RoundingMode) -> Decimal {
        let kd = Decimal::from(k);
        if mode == RoundingMode::Exact {
            let whole = k
                .checked_mul(self.inc)
                .and_then(|len| ExactAmount::ratio(self.rate, len, self.unit))
                .and_then(ExactAmount::to_decimal);
            if let Some(d) = whole {
                return d;
            }
        }
        kd.checked_mul(self.cost_dec).unwrap_or(Decimal::MAX)
    }
}

/// A debit in progress, on copies of the accounts (the debited one first,
/// then the other members of its shared groups).
struct Walk<'a> {
    accts: Vec<Account>,
    plan: &'a TariffPlan,
    mode: RoundingMode,
    /// The monetary balances the call may use, in debit order.
    money: Vec<Slot>,
    charges: Vec<BalanceCharge>,
}

impl Walk<'_> {
    fn balance(&self, t: BalanceType, at: Slot) -> Option<&super::Balance> {
        self.accts.get(at.acct)?.balances_of(t).get(at.index)
    }

    fn charge(
        &mut self,
        t: BalanceType,
        at: Slot,
        kind: ChargeKind,
        amount: Decimal,
        usage: Duration,
    ) {
        let Some(acct) = self.accts.get_mut(at.acct) else {
            return;
        };
        let key = acct.key();
        let Some(b) = acct.balances.get_mut(&t).and_then(|l| l.get_mut(at.index)) else {
            return;
        };
        // Saturating: absurd stored values must not panic.
        b.value = b.value.saturating_sub(amount);
        self.charges.push(BalanceCharge {
            account: key,
            balance_type: t,
            balance_uuid: b.uuid.clone(),
            balance_id: b.id.clone(),
            kind,
            amount,
            usage,
        });
    }

    fn money_value(&self, at: Slot) -> Option<(Decimal, bool)> {
        self.balance(BalanceType::Monetary, at)
            .map(|b| (b.value, b.blocker))
    }

    /// Pays `amount` whole from the first monetary balance that has it (as
    /// CGRateS pays a connect fee); returns what is left unpaid.
    fn pay_whole(&mut self, amount: Decimal, kind: ChargeKind) -> Decimal {
        if amount <= Decimal::ZERO {
            if amount < Decimal::ZERO {
                let idx = self.default_slot();
                self.charge(BalanceType::Monetary, idx, kind, amount, Duration::ZERO);
            }
            return Decimal::ZERO;
        }
        for u in self.money.clone() {
            let Some((v, blocker)) = self.money_value(u) else {
                continue;
            };
            if v >= amount {
                self.charge(BalanceType::Monetary, u, kind, amount, Duration::ZERO);
                return Decimal::ZERO;
            }
            if blocker {
                break;
            }
        }
        amount
    }

    /// The debited account's default monetary balance (created if
    /// missing).
    fn default_slot(&mut self) -> Slot {
        let Some(acct) = self.accts.first_mut() else {
            return Slot { acct: 0, index: 0 };
        };
        let uuid = acct.default_money_uuid();
        let index = acct
            .balances_of(BalanceType::Monetary)
            .iter()
            .position(|b| b.uuid == uuid)
            .unwrap_or(0);
        Slot { acct: 0, index }
    }

    /// Pays a priced piece of the call increment by increment: each run of
    /// increments from the first monetary balance (in debit order) that
    /// can pay one; a blocker that cannot stops the search. `due` is the
    /// piece's rounded cost: the difference with the increments goes on
    /// the last balance used. Returns the unpaid money.
    fn pay_increments(&mut self, items: &[Incs], due: Decimal, kind: ChargeKind) -> Decimal {
        let (mut paid, mut unpaid) = (Decimal::ZERO, Decimal::ZERO);
        let mut last: Option<Slot> = None;
        for it in items {
            if it.cost_dec <= Decimal::ZERO {
                // Free (or crediting) increments: only the rounding below.
                continue;
            }
            let mut n = it.n;
            while n > 0 {
                let mut took = false;
                for u in self.money.clone() {
                    let Some((v, blocker)) = self.money_value(u) else {
                        continue;
                    };
                    let k = it.fit_in(v, n);
                    if k > 0 {
                        let amt = it.cost_of(k, self.mode);
                        let len = u32::try_from(k)
                            .ok()
                            .and_then(|k| it.len.checked_mul(k))
                            .unwrap_or(Duration::MAX);
                        self.charge(BalanceType::Monetary, u, kind, amt, len);
                        paid = paid.saturating_add(amt);
                        n -= k;
                        last = Some(u);
                        took = true;
                        break;
                    }
                    if blocker {
                        break;
                    }
                }
                if !took {
                    unpaid = unpaid.saturating_add(it.cost_of(n, self.mode));
                    break;
                }
            }
        }
        let diff = due.saturating_sub(paid).saturating_sub(unpaid);
        if !diff.is_zero() {
            let idx = match last {
                Some(i) => i,
                None => self.default_slot(),
            };
            self.charge(
                BalanceType::Monetary,
                idx,
                ChargeKind::Rounding,
                diff,
                Duration::ZERO,
            );
        }
        unpaid
    }
}

/// The increments of a rated piece and its cost without the connect fee.
fn priced(cc: &crate::CallCost) -> (Vec<Incs>, Decimal) {
    let items = cc
        .timespans
        .iter()
        .map(|ts| Incs {
            n: ts.increments,
            cost: ts.exact.1,
            cost_dec: ts.increment_cost.amount(),
            len: ts.rate_increment,
            rate: ts.rate.amount(),
            unit: u64::try_from(ts.rate_unit.as_nanos()).unwrap_or(u64::MAX),
            inc: u64::try_from(ts.rate_increment.as_nanos()).unwrap_or(u64::MAX),
        })
        .collect();
    (
        items,
        cc.cost.amount().saturating_sub(cc.connect_fee.amount()),
    )
}

/// Debits a call from `account`.
///
/// Balances are valid (not expired, timings aside) at the call's start;
/// `now` stamps the account's UpdateTime. The connect fee is charged when
/// the call's offset is zero. All or nothing: on error the account is not
/// changed.
///
/// # Errors
/// [`Error::AccountDisabled`]; [`Error::InsufficientCredit`] when the
/// balances cannot pay and the account may not go negative; the rating
/// errors of [`TariffPlan::cost`].
/// Every balance is the account's own: shared groups are not expanded
/// (see [`debit_shared`]).
pub fn debit(
    account: &mut Account,
    cd: &CallDescriptor<'_>,
    plan: &TariffPlan,
    mode: RoundingMode,
    now: DateTime<Utc>,
) -> Result<DebitOutcome, Error> {
    debit_with(std::slice::from_mut(account), None, cd, plan, mode, now)
}

/// [`debit`] with shared groups: `accounts[0]` is the debited account, the
/// others the members of its shared groups (from [`super::shared_members`]).
/// A balance in a shared group stands for the matching balances of that
/// group in every member account, ordered by the group's strategy; a group
/// `groups` does not know makes the balance unusable, as in CGRateS.
/// Money nobody can pay goes on `accounts[0]`'s `*default` balance.
///
/// # Errors
/// As [`debit`]; [`Error::InvalidInput`] for an empty `accounts`.
pub fn debit_shared(
    accounts: &mut [Account],
    groups: &dyn SharedGroups,
    cd: &CallDescriptor<'_>,
    plan: &TariffPlan,
    mode: RoundingMode,
    now: DateTime<Utc>,
) -> Result<DebitOutcome, Error> {
    debit_with(accounts, Some(groups), cd, plan, mode, now)
}

fn debit_with(
    accounts: &mut [Account],
    groups: Option<&dyn SharedGroups>,
    cd: &CallDescriptor<'_>,
    plan: &TariffPlan,
    mode: RoundingMode,
    now: DateTime<Utc>,
) -> Result<DebitOutcome, Error> {
    let Some(account) = accounts.first() else {
        return Err(Error::InvalidInput {
            what: "accounts",
            value: "none".into(),
        });
    };
    if account.disabled {
        return Err(Error::AccountDisabled {
            account: account.key(),
        });
    }
    let (key, allow_negative) = (account.key(), account.allow_negative);
    let full = plan.cost(cd, mode)?;
    let dests: Vec<(usize, Arc<str>)> = plan.destination_ids_for(cd.destination);
    let at = cd.start;
    let unit_type = BalanceType::for_tor(cd.tor);
    let order = |t| walk_order(accounts, t, cd, plan, &dests, at, groups);
    let money = order(BalanceType::Monetary);
    let units = order(unit_type);
    let mut w = Walk {
        accts: accounts.to_vec(),
        plan,
        mode,
        money,
        charges: Vec::new(),
    };
    let connect_fee = full.connect_fee.amount();
    let mut unpaid = w.pay_whole(connect_fee, ChargeKind::ConnectFee);

    let usage = ns(cd.usage)?;
    let mut done = 0_u64;
    let mut blocked = false;
    for u in &units {
        if done >= usage {
            break;
        }
        let left = usage - done;
        let Some(b) = w.balance(unit_type, *u).cloned() else {
            continue;
        };
        match b.free_increment(cd.tor) {
            Some(inc) => {
                let inc = ns(inc)?.max(1);
                let k = fits(b.value, Decimal::from(inc), left.div_ceil(inc));
                if k > 0 {
                    let take = k.checked_mul(inc).ok_or_else(|| overflow("units"))?;
                    let covered = take.min(left);
                    w.charge(
                        unit_type,
                        *u,
                        ChargeKind::FreeUnits,
                        Decimal::from(take),
                        Duration::from_nanos(covered),
                    );
                    done += covered;
                }
            }
            None => {
                let have = b.value.floor().to_u64().unwrap_or(0);
                let covered = left.min(have);
                if covered > 0 {
                    let piece = CallDescriptor {
                        subject: &b.rating_subject,
                        start: plus(cd.start, done)?,
                        usage: Duration::from_nanos(covered),
                        offset: cd.offset.saturating_add(Duration::from_nanos(done)),
                        ..*cd
                    };
                    // A subject the plan cannot rate makes the balance unusable.
                    if let Ok(cc) = w.plan.cost(&piece, w.mode) {
                        let saved = (w.accts.clone(), w.charges.len());
                        let (items, due) = priced(&cc);
                        if w.pay_increments(&items, due, ChargeKind::UnitsPrice)
                            .is_zero()
                        {
                            let taken = ns(cc.rated_usage)?.min(have);
                            w.charge(
                                unit_type,
                                *u,
                                ChargeKind::PricedUnits,
                                Decimal::from(taken),
                                Duration::from_nanos(covered),
                            );
                            done += covered;
                        } else {
                            w.accts = saved.0;
                            w.charges.truncate(saved.1);
                        }
                    }
                }
            }
        }
        if b.blocker && done < usage {
            blocked = true;
            break;
        }
    }

    if done < usage {
        let rest = CallDescriptor {
            start: plus(cd.start, done)?,
            usage: Duration::from_nanos(usage - done),
            offset: cd.offset.saturating_add(Duration::from_nanos(done)),
            ..*cd
        };
        let cc = if done == 0 {
            full
        } else {
            plan.cost(&rest, mode)?
        };
        let (items, due) = priced(&cc);
        let more = if blocked {
            due
        } else {
            w.pay_increments(&items, due, ChargeKind::Usage)
        };
        unpaid = unpaid.saturating_add(more);
    }

    let mut negative = Decimal::ZERO;
    if unpaid > Decimal::ZERO {
        if !allow_negative {
            return Err(Error::InsufficientCredit {
                account: key,
                missing: unpaid,
            });
        }
        let idx = w.default_slot();
        w.charge(
            BalanceType::Monetary,
            idx,
            ChargeKind::Negative,
            unpaid,
            Duration::ZERO,
        );
        negative = unpaid;
    }
    let cost = w
        .charges
        .iter()
        .filter(|c| c.balance_type == BalanceType::Monetary)
        .fold(Decimal::ZERO, |s, c| s.saturating_add(c.amount));
    // Stamp only the accounts the debit changed.
    for (a, new) in accounts.iter_mut().zip(w.accts) {
        if a.balances != new.balances || a.key() == key {
            *a = Account {
                update_time: Some(now),
                ..new
            };
        }
    }
    Ok(DebitOutcome {
        account: key,
        charges: w.charges,
        cost,
        connect_fee,
        usage: cd.usage,
        unit_usage: Duration::from_nanos(done),
        negative,
    })
}

/// Gives back what `outcome` took (a reservation not used): every charge,
/// connect fee included, to the balance with its uuid. Returns the charges
/// given to nobody: their balance no longer exists, or it belongs to
/// another account (a shared balance: use [`refund_shared`]).
pub fn refund(
    account: &mut Account,
    outcome: &DebitOutcome,
    now: DateTime<Utc>,
) -> Vec<BalanceCharge> {
    refund_shared(std::slice::from_mut(account), outcome, now)
}

/// [`refund`] over the accounts a shared debit touched.
pub fn refund_shared(
    accounts: &mut [Account],
    outcome: &DebitOutcome,
    now: DateTime<Utc>,
) -> Vec<BalanceCharge> {
    let mut lost = Vec::new();
    for c in &outcome.charges {
        let b = accounts
            .iter_mut()
            .find(|a| a.key() == c.account)
            .and_then(|a| {
                a.update_time = Some(now);
                a.balance_mut(c.balance_type, &c.balance_uuid)
            });
        match b {
            Some(b) => b.value = b.value.saturating_add(c.amount),
            None => lost.push(c.clone()),
        }
    }
    lost
}

/// Settles a reservation: gives back what `reserved` took and debits the
/// call as it really was (`used`: same call, the real usage), in one step,
/// so the account ends as if only `used` had been debited. On error the
/// account keeps the reservation. This is how a prepaid session ends (the
/// connect fee is given back and charged again, so it is paid once).
///
/// # Errors
/// As [`debit`].
pub fn settle(
    account: &mut Account,
    reserved: &DebitOutcome,
    used: &CallDescriptor<'_>,
    plan: &TariffPlan,
    mode: RoundingMode,
    now: DateTime<Utc>,
) -> Result<DebitOutcome, Error> {
    let mut copy = account.clone();
    refund(&mut copy, reserved, now);
    let out = debit(&mut copy, used, plan, mode, now)?;
    *account = copy;
    Ok(out)
}

/// The longest usage, at most `cd.usage`, the account can pay for
/// (CGRateS's GetMaxSessionTime): free units plus money at the tariff, in
/// whole increments, cut where a `*disconnect` MaxCost would be passed.
/// An AllowNegative account gets the usage asked for.
///
/// # Errors
/// [`Error::AccountDisabled`] and the rating errors of
/// [`TariffPlan::cost`].
pub fn max_usage(
    account: &Account,
    cd: &CallDescriptor<'_>,
    plan: &TariffPlan,
    mode: RoundingMode,
    now: DateTime<Utc>,
) -> Result<Duration, Error> {
    max_usage_with(std::slice::from_ref(account), None, cd, plan, mode, now)
}

/// [`max_usage`] counting the shared groups as [`debit_shared`] does:
/// `accounts` is the asking account first, then the members of its
/// groups (see [`super::shared_members`]); the longest usage whose shared
/// debit would succeed.
///
/// # Errors
/// As [`max_usage`]; [`Error::InvalidInput`] for an empty `accounts`.
pub fn max_usage_shared(
    accounts: &[Account],
    groups: &dyn SharedGroups,
    cd: &CallDescriptor<'_>,
    plan: &TariffPlan,
    mode: RoundingMode,
    now: DateTime<Utc>,
) -> Result<Duration, Error> {
    max_usage_with(accounts, Some(groups), cd, plan, mode, now)
}

fn max_usage_with(
    accounts: &[Account],
    groups: Option<&dyn SharedGroups>,
    cd: &CallDescriptor<'_>,
    plan: &TariffPlan,
    mode: RoundingMode,
    now: DateTime<Utc>,
) -> Result<Duration, Error> {
    let Some(account) = accounts.first() else {
        return Err(Error::InvalidInput {
            what: "accounts",
            value: "none".into(),
        });
    };
    if account.disabled {
        return Err(Error::AccountDisabled {
            account: account.key(),
        });
    }
    if account.allow_negative {
        return Ok(cd.usage);
    }
    let full = plan.cost(cd, mode)?;
    let cap = full
        .max_cost_disconnect_at
        .unwrap_or(cd.usage)
        .min(cd.usage);
    let fits_in = |u: u64| -> Result<bool, Error> {
        let mut accts = accounts.to_vec();
        let piece = CallDescriptor {
            usage: Duration::from_nanos(u),
            ..*cd
        };
        match debit_with(&mut accts, groups, &piece, plan, mode, now) {
            Ok(_) => Ok(true),
            Err(Error::InsufficientCredit { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    };
    let hi = ns(cap)?;
    if fits_in(hi)? {
        return Ok(cap);
    }
    if !fits_in(0)? {
        return Ok(Duration::ZERO);
    }
    // Whether a usage can be paid only grows shorter with the usage: find
    // the last one that can, to the nanosecond.
    let (mut lo, mut hi) = (0_u64, hi);
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if fits_in(mid)? {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    Ok(Duration::from_nanos(lo))
}
