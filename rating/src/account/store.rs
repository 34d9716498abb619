//! Where accounts live: the [`AccountStore`] trait the storage backends
//! implement, and [`MemoryAccounts`] for tests and single-process use.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use chrono::{DateTime, Utc};

use super::{Account, DebitOutcome, debit};
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
}

/// Typed helpers over any [`AccountStore`].
pub trait AccountStoreExt: AccountStore {
    /// [`AccountStore::update`] returning `f`'s value.
    ///
    /// # Errors
    /// As [`AccountStore::update`].
    fn update_with<T>(
        &self,
        tenant: &str,
        id: &str,
        f: impl FnOnce(&mut Account) -> Result<T, Error>,
    ) -> Result<T, Error> {
        let mut f = Some(f);
        let mut out = None;
        self.update(tenant, id, &mut |a| {
            let f = f.take().ok_or(Error::Store("update ran twice".into()))?;
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
}
