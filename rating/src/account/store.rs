//! Where accounts live: the [`AccountStore`] trait the storage backends
//! implement, and [`MemoryAccounts`] for tests and single-process use.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use chrono::{DateTime, Utc};

use super::{
    Account, DebitOutcome, SharedGroups, debit, debit_shared, max_usage_shared, shared_members,
};
use crate::Error;
use crate::call::CallDescriptor;
use crate::money::RoundingMode;
use crate::plan::TariffPlan;

/// A store of accounts, keyed by tenant and account ID.
///
/// `update` is the one way to change an account that reads it: the store
/// must run it atomically for that account (a lock, a transaction, a
/// compare-and-set loop) so that concurrent debits never spend the same
/// money twice. Object safe; [`AccountStoreExt::update_with`] adds a typed
/// result.
pub trait AccountStore: Send + Sync {
    /// The account, if it exists.
    ///
    /// # Errors
    /// A backend error ([`Error::Store`]).
    fn get(&self, tenant: &str, id: &str) -> Result<Option<Account>, Error>;

    /// Creates or replaces the account.
    ///
    /// # Errors
    /// A backend error.
    fn set(&self, account: Account) -> Result<(), Error>;

    /// Removes the account; whether it existed.
    ///
    /// # Errors
    /// A backend error.
    fn remove(&self, tenant: &str, id: &str) -> Result<bool, Error>;

    /// The tenant's accounts, sorted by ID.
    ///
    /// # Errors
    /// A backend error.
    fn list(&self, tenant: &str) -> Result<Vec<Account>, Error>;

    /// The tenants that hold at least one account, sorted (a restart
    /// walks every account through them).
    ///
    /// # Errors
    /// A backend error.
    fn tenants(&self) -> Result<Vec<String>, Error>;

    /// Runs `f` on the account atomically: no other `update` of the same
    /// account runs between its read and its write. When `f` fails the
    /// account is left as it was.
    ///
    /// # Errors
    /// [`Error::AccountNotFound`], `f`'s error, or a backend error.
    fn update(
        &self,
        tenant: &str,
        id: &str,
        f: &mut dyn FnMut(&mut Account) -> Result<(), Error>,
    ) -> Result<(), Error>;

    /// Runs `f` on several accounts (`(tenant, id)`, in this order)
    /// atomically: the shared-group debit. Implementations must take their
    /// locks in one fixed order (e.g. sorted keys) so that two such updates
    /// cannot deadlock. All the accounts must exist; when `f` fails none
    /// changes.
    ///
    /// # Errors
    /// [`Error::AccountNotFound`], `f`'s error, or a backend error.
    fn update_many(
        &self,
        keys: &[(String, String)],
        f: &mut dyn FnMut(&mut [Account]) -> Result<(), Error>,
    ) -> Result<(), Error>;
}

/// Typed helpers over any [`AccountStore`].
pub trait AccountStoreExt: AccountStore {
    /// [`AccountStore::update`] returning `f`'s value. `f` is `FnMut`: a
    /// store with optimistic transactions (Redis) runs it again on the
    /// fresh state when a concurrent writer won; the value of the run that
    /// was committed is returned.
    ///
    /// # Errors
    /// As [`AccountStore::update`].
    fn update_with<T>(
        &self,
        tenant: &str,
        id: &str,
        mut f: impl FnMut(&mut Account) -> Result<T, Error>,
    ) -> Result<T, Error> {
        let mut out = None;
        self.update(tenant, id, &mut |a| {
            out = Some(f(a)?);
            Ok(())
        })?;
        out.ok_or(Error::Store("update did not run".into()))
    }

    /// Debits a call from the stored account, atomically.
    ///
    /// # Errors
    /// As [`super::debit`] and [`AccountStore::update`].
    fn debit_call(
        &self,
        tenant: &str,
        id: &str,
        cd: &CallDescriptor<'_>,
        plan: &TariffPlan,
        mode: RoundingMode,
        now: DateTime<Utc>,
    ) -> Result<DebitOutcome, Error> {
        self.update_with(tenant, id, |a| debit(a, cd, plan, mode, now))
    }

    /// Debits a call drawing on the account's shared groups: locks the
    /// account and the groups' member accounts together (members that no
    /// longer exist are left out), then [`debit_shared`]. The members are
    /// found before locking; the debit draws only on the accounts locked,
    /// so a member that joins meanwhile is simply not used this time.
    ///
    /// # Errors
    /// As [`debit_shared`] and [`AccountStore::update_many`].
    #[allow(clippy::too_many_arguments)]
    fn debit_call_shared(
        &self,
        tenant: &str,
        id: &str,
        cd: &CallDescriptor<'_>,
        plan: &TariffPlan,
        groups: &dyn SharedGroups,
        mode: RoundingMode,
        now: DateTime<Utc>,
    ) -> Result<DebitOutcome, Error> {
        let me = self
            .get(tenant, id)?
            .ok_or_else(|| Error::AccountNotFound {
                account: format!("{tenant}:{id}"),
            })?;
        let mut keys = vec![(tenant.to_owned(), id.to_owned())];
        for m in shared_members(&me, cd, plan, groups) {
            if let Some((t, a)) = m.split_once(':') {
                if self.get(t, a)?.is_some() {
                    keys.push((t.to_owned(), a.to_owned()));
                }
            }
        }
        let mut out = None;
        self.update_many(&keys, &mut |accts| {
            out = Some(debit_shared(accts, groups, cd, plan, mode, now)?);
            Ok(())
        })?;
        out.ok_or(Error::Store("update did not run".into()))
    }

    /// The longest usage the stored account can pay, counting its shared
    /// groups as [`AccountStoreExt::debit_call_shared`] does (the members
    /// are read, not locked: an authorization, not a debit).
    ///
    /// # Errors
    /// [`Error::AccountNotFound`], as [`max_usage_shared`], a backend error.
    #[allow(clippy::too_many_arguments)]
    fn max_usage_call_shared(
        &self,
        tenant: &str,
        id: &str,
        cd: &CallDescriptor<'_>,
        plan: &TariffPlan,
        groups: &dyn SharedGroups,
        mode: RoundingMode,
        now: DateTime<Utc>,
    ) -> Result<std::time::Duration, Error> {
        let me = self
            .get(tenant, id)?
            .ok_or_else(|| Error::AccountNotFound {
                account: format!("{tenant}:{id}"),
            })?;
        let key = me.key();
        let mut accts = vec![me];
        for m in shared_members(&accts[0], cd, plan, groups) {
            if m == key {
                continue;
            }
            if let Some((t, a)) = m.split_once(':') {
                if let Some(acc) = self.get(t, a)? {
                    accts.push(acc);
                }
            }
        }
        max_usage_shared(&accts, groups, cd, plan, mode, now)
    }
}

impl<S: AccountStore + ?Sized> AccountStoreExt for S {}

type Key = (String, String);

/// Accounts in memory: one mutex per account, so debits of different
/// accounts run in parallel and debits of one account one after another.
#[derive(Debug, Default)]
pub struct MemoryAccounts {
    map: RwLock<HashMap<Key, Arc<Mutex<Account>>>>,
}

impl MemoryAccounts {
    /// An empty store.
    #[must_use]
    pub fn new() -> Self {
        MemoryAccounts::default()
    }

    fn slot(&self, tenant: &str, id: &str) -> Option<Arc<Mutex<Account>>> {
        self.map
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&(tenant.to_owned(), id.to_owned()))
            .cloned()
    }
}

impl AccountStore for MemoryAccounts {
    fn get(&self, tenant: &str, id: &str) -> Result<Option<Account>, Error> {
        Ok(self
            .slot(tenant, id)
            .map(|s| s.lock().unwrap_or_else(PoisonError::into_inner).clone()))
    }

    fn set(&self, account: Account) -> Result<(), Error> {
        let key = (account.tenant.clone(), account.id.clone());
        let mut map = self.map.write().unwrap_or_else(PoisonError::into_inner);
        match map.get(&key) {
            Some(slot) => *slot.lock().unwrap_or_else(PoisonError::into_inner) = account,
            None => {
                map.insert(key, Arc::new(Mutex::new(account)));
            }
        }
        Ok(())
    }

    fn remove(&self, tenant: &str, id: &str) -> Result<bool, Error> {
        Ok(self
            .map
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&(tenant.to_owned(), id.to_owned()))
            .is_some())
    }

    fn list(&self, tenant: &str) -> Result<Vec<Account>, Error> {
        let map = self.map.read().unwrap_or_else(PoisonError::into_inner);
        let mut out: Vec<Account> = map
            .iter()
            .filter(|((t, _), _)| t == tenant)
            .map(|(_, s)| s.lock().unwrap_or_else(PoisonError::into_inner).clone())
            .collect();
        out.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(out)
    }

    fn tenants(&self) -> Result<Vec<String>, Error> {
        let map = self.map.read().unwrap_or_else(PoisonError::into_inner);
        let set: std::collections::BTreeSet<&String> = map.keys().map(|(t, _)| t).collect();
        Ok(set.into_iter().cloned().collect())
    }

    fn update(
        &self,
        tenant: &str,
        id: &str,
        f: &mut dyn FnMut(&mut Account) -> Result<(), Error>,
    ) -> Result<(), Error> {
        let slot = self
            .slot(tenant, id)
            .ok_or_else(|| Error::AccountNotFound {
                account: format!("{tenant}:{id}"),
            })?;
        let mut guard = slot.lock().unwrap_or_else(PoisonError::into_inner);
        // Work on a copy: a failing `f` leaves the account untouched.
        let mut copy = guard.clone();
        f(&mut copy)?;
        *guard = copy;
        Ok(())
    }

    fn update_many(
        &self,
        keys: &[(String, String)],
        f: &mut dyn FnMut(&mut [Account]) -> Result<(), Error>,
    ) -> Result<(), Error> {
        let mut sorted: Vec<&(String, String)> = keys.iter().collect();
        sorted.sort();
        sorted.dedup();
        let mut slots = Vec::with_capacity(sorted.len());
        for (t, a) in &sorted {
            let slot = self.slot(t, a).ok_or_else(|| Error::AccountNotFound {
                account: format!("{t}:{a}"),
            })?;
            slots.push(slot);
        }
        // Lock in sorted key order: two update_many never wait on each
        // other in a cycle.
        let mut guards: Vec<_> = slots
            .iter()
            .map(|s| s.lock().unwrap_or_else(PoisonError::into_inner))
            .collect();
        let pos = |k: &(String, String)| sorted.iter().position(|s| *s == k);
        let mut copies = Vec::with_capacity(keys.len());
        for k in keys {
            let g = pos(k)
                .and_then(|i| guards.get(i))
                .ok_or_else(|| Error::Store("lost key".into()))?;
            copies.push((**g).clone());
        }
        f(&mut copies)?;
        // A key given twice: its last copy wins.
        for (k, c) in keys.iter().zip(copies) {
            if let Some(g) = pos(k).and_then(|i| guards.get_mut(i)) {
                **g = c;
            }
        }
        Ok(())
    }
}
