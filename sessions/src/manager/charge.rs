//! Money: the session manager's calls into rating, through the account
//! store, each one atomic on the accounts it touches.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use rating::{
    Account, AccountStore, AccountStoreExt, CallDescriptor, Reservation, RoundingMode, SessionCtx,
    Settlement, SharedGroups, TariffPlan, Tor,
};
use rust_decimal::Decimal;

use super::{SessionEvent, SessionKey};
use crate::Error;

/// What charging needs: where the accounts are, the tariff plan in force
/// (`rating::SharedTariffPlan` holds it; pass the one read for this
/// call), the rounding and the shared groups' members.
#[derive(Clone, Copy)]
pub struct Charging<'a> {
    /// The accounts.
    pub accounts: &'a dyn AccountStore,
    /// The tariff plan in force.
    pub plan: &'a TariffPlan,
    /// Rounding of costs and debits.
    pub rounding: RoundingMode,
    /// Shared groups and their members.
    pub groups: &'a dyn SharedGroups,
}

/// One piece of a call to rate: from `offset` after the answer, `usage`
/// long.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Piece {
    pub answer: DateTime<Utc>,
    pub offset: Duration,
    pub usage: Duration,
}

fn cd<'e>(ev: &'e SessionEvent, p: Piece) -> CallDescriptor<'e> {
    let start = TimeDelta::from_std(p.offset)
        .ok()
        .and_then(|d| p.answer.checked_add_signed(d))
        .unwrap_or(p.answer);
    CallDescriptor {
        tenant: &ev.tenant,
        category: &ev.category,
        subject: &ev.subject,
        account: &ev.account,
        destination: &ev.destination,
        tor: ev.tor.parse().unwrap_or(Tor::Voice),
        start,
        usage: p.usage,
        offset: p.offset,
    }
}

impl Charging<'_> {
    fn ctx<'s>(
        &'s self,
        session: &'s str,
        shared: bool,
        now: DateTime<Utc>,
        keep: Duration,
    ) -> SessionCtx<'s> {
        SessionCtx {
            session,
            plan: self.plan,
            mode: self.rounding,
            groups: shared.then_some(self.groups),
            now,
            keep_marks: keep,
        }
    }

    /// The account and the other accounts a charge of it may touch: the
    /// members of its usable shared groups, and the owners of balances its
    /// open reservations for `session` took from. Missing members are left
    /// out.
    fn keys(
        &self,
        ev: &SessionEvent,
        p: Piece,
        session: &str,
    ) -> Result<Vec<(String, String)>, Error> {
        let me = self.accounts.get(&ev.tenant, &ev.account)?.ok_or_else(|| {
            rating::Error::AccountNotFound {
                account: format!("{}:{}", ev.tenant, ev.account),
            }
        })?;
        let mut others: Vec<String> =
            rating::shared_members(&me, &cd(ev, p), self.plan, self.groups)
                .into_iter()
                .collect();
        if let Some(rec) = me.sessions.get(session) {
            for o in rec.reservations.values() {
                others.extend(o.charges.iter().map(|c| c.account.clone()));
            }
        }
        let my_key = me.key();
        let mut keys = vec![(ev.tenant.clone(), ev.account.clone())];
        others.sort();
        others.dedup();
        for k in others.into_iter().filter(|k| *k != my_key) {
            if let Some((t, a)) = k.split_once(':') {
                if self.accounts.get(t, a)?.is_some() {
                    keys.push((t.to_owned(), a.to_owned()));
                }
            }
        }
        Ok(keys)
    }

    /// Runs `f` on the account (and its shared-group partners) atomically.
    fn with_accounts<T>(
        &self,
        keys: &[(String, String)],
        mut f: impl FnMut(&mut [Account], bool) -> Result<T, rating::Error>,
    ) -> Result<T, Error> {
        if let [(t, a)] = keys {
            return Ok(self
                .accounts
                .update_with(t, a, |acct| f(std::slice::from_mut(acct), false))?);
        }
        let mut out = None;
        self.accounts.update_many(keys, &mut |accts| {
            out = Some(f(accts, true)?);
            Ok(())
        })?;
        out.ok_or_else(|| Error::Rating(rating::Error::Store("update did not run".into())))
    }

    /// The longest part of `p.usage` the account can pay from `p.offset`.
    pub(crate) fn max_usage(
        &self,
        ev: &SessionEvent,
        key: &SessionKey,
        p: Piece,
        now: DateTime<Utc>,
    ) -> Result<Duration, Error> {
        let session = key.session_id();
        let keys = self.keys(ev, p, &session)?;
        let mut accts = Vec::with_capacity(keys.len());
        for (t, a) in &keys {
            if let Some(acct) = self.accounts.get(t, a)? {
                accts.push(acct);
            }
        }
        let ctx = self.ctx(&session, keys.len() > 1, now, Duration::ZERO);
        Ok(rating::session_max_usage(&accts, &ctx, &cd(ev, p))?)
    }

    /// Reserves `p` as reservation `seq` of the session (idempotent).
    pub(crate) fn reserve(
        &self,
        ev: &SessionEvent,
        key: &SessionKey,
        seq: u32,
        p: Piece,
        now: DateTime<Utc>,
        keep: Duration,
    ) -> Result<Reservation, Error> {
        let session = key.session_id();
        let keys = self.keys(ev, p, &session)?;
        let desc = cd(ev, p);
        self.with_accounts(&keys, |accts, shared| {
            rating::reserve_session(accts, &self.ctx(&session, shared, now, keep), seq, &desc)
        })
    }

    /// Settles the session for the whole call `p` (forced: the call
    /// happened); idempotent.
    pub(crate) fn settle(
        &self,
        ev: &SessionEvent,
        key: &SessionKey,
        p: Piece,
        now: DateTime<Utc>,
        keep: Duration,
    ) -> Result<Settlement, Error> {
        let session = key.session_id();
        let keys = self.keys(ev, p, &session)?;
        let desc = cd(ev, p);
        self.with_accounts(&keys, |accts, shared| {
            rating::settle_session(accts, &self.ctx(&session, shared, now, keep), &desc, true)
        })
    }

    /// The price of `p`, nothing debited (`*rated`).
    pub(crate) fn price(&self, ev: &SessionEvent, p: Piece) -> Result<Decimal, Error> {
        Ok(self.plan.cost(&cd(ev, p), self.rounding)?.cost.amount())
    }
}
