//! Re-rating a charged call after a tariff change (CGRateS's
//! `CDRsV1.RateCDRs` on `*prepaid`, `*pseudoprepaid` and `*postpaid`
//! CDRs): the account gives back what the call cost and pays what it
//! costs now, in one atomic update, once.
//!
//! The account's charged mark of the session ([`super::SessionCharges`])
//! says what the account last paid for the call: [`rerate_session`]
//! refunds that, debits the call again with the plan given, and records
//! the new cost (and its debit) in the mark, in the same change. So a
//! second re-rate with the same plan finds the new cost in the mark and
//! changes nothing, and a re-rate interrupted after the account changed
//! (before the stored CDR did) takes nothing more when it is run again.
//!
//! What is refunded, best first ([`RerateBasis`]):
//! 1. the mark's recorded debit, charge by charge, to the balances it
//!    came from (free units back to their unit balances);
//! 2. a mark without its debit (written before debits were kept): the
//!    mark's cost, as money on the default monetary balance;
//! 3. no mark (pruned after `keep_marks`, or never charged here): the cost
//!    the caller read in the stored CDR, as money on the default monetary
//!    balance. A re-rate whose account update landed and whose CDR update
//!    did not, left for longer than `keep_marks`, would refund the CDR's
//!    stale cost: run re-rates again well within that time.

use std::collections::BTreeMap;

use rust_decimal::Decimal;

use super::refund_shared;
use super::session_ops::{first_mut, forced_with, no_fee_at_zero, prune_marks};
use super::{Account, BalanceType, DebitOutcome, FinalCharge, SessionCharges, SessionCtx};
use crate::Error;
use crate::call::CallDescriptor;

/// What the old cost given back by [`rerate_session`] was read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RerateBasis {
    /// The mark's recorded debit, refunded to its balances.
    Debit,
    /// The mark's cost, refunded as money (the mark kept no debit).
    MarkCost,
    /// The stored CDR's cost, refunded as money (no mark).
    CdrCost,
}

/// The result of [`rerate_session`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rerated {
    /// What the account had paid for the call (per `basis`).
    pub old_cost: Decimal,
    /// What it pays now.
    pub new_cost: Decimal,
    /// Whether the account changed (`false`: the call already cost
    /// `new_cost` for the usage given; nothing was done).
    pub changed: bool,
    /// Where `old_cost` came from.
    pub basis: RerateBasis,
    /// The new debit (`None` unchanged, or nothing to pay).
    pub debit: Option<DebitOutcome>,
}

/// Re-rates a call that happened (`used`: its answer time, whole usage,
/// offset zero) with `ctx.plan`: refunds what the account paid for it
/// (see the module documentation), debits it again whatever the
/// balances hold (as a forced settle: the unpaid rest goes below zero on
/// the default monetary balance) and records the new charge in the
/// session's mark, all in this one change of `accounts`. When the call's
/// cost and usage are already the mark's, nothing changes.
///
/// `cdr_cost`: the cost in the stored CDR, refunded only when the
/// account has no mark of the session (`None`: nothing was charged).
///
/// # Errors
/// The rating errors of the plan; [`Error::InvalidInput`] when the
/// session still holds reservations (it has not ended) or `accounts` is
/// empty. On error nothing changes.
pub fn rerate_session(
    accounts: &mut [Account],
    ctx: &SessionCtx<'_>,
    used: &CallDescriptor<'_>,
    cdr_cost: Option<Decimal>,
) -> Result<Rerated, Error> {
    let me = first_mut(accounts)?;
    prune_marks(me, ctx);
    let rec = me.sessions.get(ctx.session).cloned();
    if rec
        .as_ref()
        .is_some_and(|r| r.charged.is_none() && !r.reservations.is_empty())
    {
        return Err(Error::InvalidInput {
            what: "session",
            value: format!("{} has not ended", ctx.session),
        });
    }
    let mark = rec
        .as_ref()
        .and_then(|r| r.charged.map(|c| (c, r.debit.clone())));
    // Work on copies: an unchanged call or an error leaves the accounts.
    let mut copy = accounts.to_vec();
    let (old_cost, basis) = match &mark {
        Some((c, Some(d))) => {
            let lost = refund_shared(&mut copy, d, ctx.now);
            // A balance gone since: its money goes to the default balance.
            let money: Decimal = lost
                .iter()
                .filter(|l| l.balance_type == BalanceType::Monetary)
                .fold(Decimal::ZERO, |s, l| s.saturating_add(l.amount));
            refund_money(first_mut(&mut copy)?, money);
            (c.cost, RerateBasis::Debit)
        }
        Some((c, None)) => {
            refund_money(first_mut(&mut copy)?, c.cost);
            (c.cost, RerateBasis::MarkCost)
        }
        None => {
            let c = cdr_cost.unwrap_or(Decimal::ZERO);
            refund_money(first_mut(&mut copy)?, c);
            (c, RerateBasis::CdrCost)
        }
    };
    let debit = if used.usage.is_zero() && no_fee_at_zero(used, ctx) {
        None
    } else {
        Some(forced_with(
            &mut copy, ctx.groups, used, ctx.plan, ctx.mode, ctx.now,
        )?)
    };
    let new_cost = debit.as_ref().map_or(Decimal::ZERO, |d| d.cost);
    let same_usage = mark.as_ref().is_none_or(|(c, _)| c.usage == used.usage);
    if new_cost == old_cost && same_usage {
        return Ok(Rerated {
            old_cost,
            new_cost,
            changed: false,
            basis,
            debit: None,
        });
    }
    let me = first_mut(&mut copy)?;
    me.update_time = Some(ctx.now);
    me.sessions.insert(
        ctx.session.to_owned(),
        SessionCharges {
            updated: ctx.now,
            reservations: BTreeMap::new(),
            charged: Some(FinalCharge {
                cost: new_cost,
                usage: used.usage,
            }),
            debit: debit.clone(),
        },
    );
    accounts.clone_from_slice(&copy);
    Ok(Rerated {
        old_cost,
        new_cost,
        changed: true,
        basis,
        debit,
    })
}

/// Gives `amount` back as money on the default monetary balance (made
/// when missing); nothing for zero.
fn refund_money(account: &mut Account, amount: Decimal) {
    if amount.is_zero() {
        return;
    }
    let uuid = account.default_money_uuid();
    if let Some(b) = account.balance_mut(BalanceType::Monetary, &uuid) {
        b.value = b.value.saturating_add(amount);
    }
}

#[cfg(test)]
mod tests {
    //! Expectations by hand: plan A charges 0.01 a second to 44, plan B
    //! 0.02 (1 s increments, no connect fee); calls of 60 s.
    #![allow(clippy::unwrap_used)]

    use std::path::Path;
    use std::str::FromStr;
    use std::time::Duration;

    use chrono::{DateTime, TimeDelta, TimeZone, Utc};

    use super::*;
    use crate::money::RoundingMode;
    use crate::plan::TariffPlan;
    use crate::{Balance, DEFAULT_KEEP_MARKS, LoadOptions, settle_session};

    fn plan(per_minute: &str) -> TariffPlan {
        let rates = format!("RT_SEC,0,{per_minute},60s,1s,0s\n");
        let files = [
            ("Destinations.csv", "DST_UK,44\n".to_owned()),
            ("Rates.csv", rates),
            (
                "DestinationRates.csv",
                "DR_UK,DST_UK,RT_SEC,*up,4,0,\n".into(),
            ),
            ("RatingPlans.csv", "RP_STD,DR_UK,*any,10\n".into()),
            (
                "RatingProfiles.csv",
                "cgrates.org,call,*any,2014-01-01T00:00:00Z,RP_STD,\n".into(),
            ),
        ];
        let v: Vec<(&Path, &str)> = files
            .iter()
            .map(|(n, t)| (Path::new(*n), t.as_str()))
            .collect();
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

    fn call(secs: u64) -> CallDescriptor<'static> {
        CallDescriptor::new("1001", "4420", t0(), Duration::from_secs(secs))
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
                    weight: d("20"),
                    ..Balance::default()
                },
            );
        }
        a
    }

    fn money(a: &Account) -> Decimal {
        a.total(BalanceType::Monetary, t0())
    }

    fn voice_secs(a: &Account) -> Decimal {
        a.total(BalanceType::Voice, t0()) / Decimal::from(1_000_000_000_u64)
    }

    fn ctx(plan: &TariffPlan, later: TimeDelta) -> SessionCtx<'_> {
        SessionCtx {
            session: "cgrid1:*default",
            plan,
            mode: RoundingMode::Exact,
            groups: None,
            now: t0() + TimeDelta::minutes(5) + later,
            keep_marks: DEFAULT_KEEP_MARKS,
        }
    }

    fn one(a: &mut Account) -> &mut [Account] {
        std::slice::from_mut(a)
    }

    /// Charged 0.60 under A; B makes it 1.20: 0.60 more, once; back to A
    /// gives the 0.60 back.
    #[test]
    fn rerate_moves_the_difference_once() {
        let (a_plan, b_plan) = (plan("0.6"), plan("1.2"));
        let mut a = account("10", 0);
        let z = TimeDelta::zero();
        settle_session(one(&mut a), &ctx(&a_plan, z), &call(60), true).unwrap();
        assert_eq!(money(&a), d("9.4"));
        let r = rerate_session(one(&mut a), &ctx(&b_plan, z), &call(60), Some(d("0.6"))).unwrap();
        assert_eq!(
            (r.old_cost, r.new_cost, r.changed),
            (d("0.6"), d("1.2"), true)
        );
        assert_eq!(r.basis, RerateBasis::Debit);
        assert_eq!(money(&a), d("8.8"));
        let mark = &a.sessions["cgrid1:*default"];
        assert_eq!(mark.charged.unwrap().cost, d("1.2"));
        assert_eq!(mark.debit.as_ref().unwrap().cost, d("1.2"));
        // Again with B (the CDR still says 0.60: a crash before its
        // update): nothing moves.
        let before = a.clone();
        let r = rerate_session(one(&mut a), &ctx(&b_plan, z), &call(60), Some(d("0.6"))).unwrap();
        assert!(!r.changed);
        assert_eq!(a, before);
        let r = rerate_session(one(&mut a), &ctx(&a_plan, z), &call(60), Some(d("1.2"))).unwrap();
        assert!(r.changed);
        assert_eq!(money(&a), d("9.4"));
    }

    /// 30 s of free minutes and 30 s of money (0.30 under A); under B the
    /// minutes come back and are used again, the money part costs 0.60.
    #[test]
    fn units_go_back_to_their_balance() {
        let (a_plan, b_plan) = (plan("0.6"), plan("1.2"));
        let mut a = account("10", 30);
        let z = TimeDelta::zero();
        let s = settle_session(one(&mut a), &ctx(&a_plan, z), &call(60), true).unwrap();
        assert_eq!(s.charge.cost, d("0.3"));
        assert_eq!((money(&a), voice_secs(&a)), (d("9.7"), d("0")));
        let r = rerate_session(one(&mut a), &ctx(&b_plan, z), &call(60), Some(d("0.3"))).unwrap();
        assert_eq!(r.new_cost, d("0.6"));
        assert_eq!((money(&a), voice_secs(&a)), (d("9.4"), d("0")));
    }

    /// A mark written before debits were kept: its cost comes back as
    /// money on the default balance.
    #[test]
    fn a_mark_without_its_debit_refunds_its_cost_as_money() {
        let (a_plan, b_plan) = (plan("0.6"), plan("1.2"));
        let mut a = account("10", 0);
        let z = TimeDelta::zero();
        settle_session(one(&mut a), &ctx(&a_plan, z), &call(60), true).unwrap();
        a.sessions.get_mut("cgrid1:*default").unwrap().debit = None;
        let r = rerate_session(one(&mut a), &ctx(&b_plan, z), &call(60), None).unwrap();
        assert_eq!(r.basis, RerateBasis::MarkCost);
        assert_eq!(r.old_cost, d("0.6"));
        assert_eq!(money(&a), d("8.8"));
    }

    /// The mark was pruned (two days later): the CDR's cost is refunded
    /// as money; the new mark makes a second run a no-op.
    #[test]
    fn a_pruned_mark_falls_back_to_the_cdr_cost() {
        let (a_plan, b_plan) = (plan("0.6"), plan("1.2"));
        let mut a = account("10", 0);
        settle_session(
            one(&mut a),
            &ctx(&a_plan, TimeDelta::zero()),
            &call(60),
            true,
        )
        .unwrap();
        let late = ctx(&b_plan, TimeDelta::days(2));
        let r = rerate_session(one(&mut a), &late, &call(60), Some(d("0.6"))).unwrap();
        assert_eq!((r.basis, r.changed), (RerateBasis::CdrCost, true));
        assert_eq!(money(&a), d("8.8"));
        let def = a
            .balances_of(BalanceType::Monetary)
            .iter()
            .find(|b| b.id == crate::DEFAULT_BALANCE_ID)
            .unwrap();
        assert_eq!(def.value, d("0.6"));
        let r = rerate_session(one(&mut a), &late, &call(60), Some(d("0.6"))).unwrap();
        assert_eq!((r.basis, r.changed), (RerateBasis::Debit, false));
        assert_eq!(money(&a), d("8.8"));
    }

    /// Unpaid: the new cost goes below zero, as a forced settle does.
    #[test]
    fn rerate_may_go_negative() {
        let (a_plan, b_plan) = (plan("0.6"), plan("1.2"));
        let mut a = account("1", 0);
        let z = TimeDelta::zero();
        settle_session(one(&mut a), &ctx(&a_plan, z), &call(100), true).unwrap();
        assert_eq!(money(&a), d("0"));
        rerate_session(one(&mut a), &ctx(&b_plan, z), &call(100), Some(d("1"))).unwrap();
        assert_eq!(money(&a), d("-1"));
    }

    #[test]
    fn an_open_session_is_not_rerated() {
        let (a_plan, b_plan) = (plan("0.6"), plan("1.2"));
        let mut a = account("10", 0);
        let z = TimeDelta::zero();
        crate::reserve_session(one(&mut a), &ctx(&a_plan, z), 0, &call(60)).unwrap();
        let before = a.clone();
        let r = rerate_session(one(&mut a), &ctx(&b_plan, z), &call(60), None);
        assert!(matches!(r, Err(Error::InvalidInput { .. })));
        assert_eq!(a, before);
    }
}
