//! The session manager's charging operations in `/metrics`: every atomic
//! account update a shard makes (a reservation, a settle) is timed and
//! recorded with `APIerSv1.DebitUsage`'s ([`Debits`]: count, errors,
//! latency histogram).

use std::sync::Mutex;
use std::time::Instant;

use rating::{Account, AccountStore, Error};

use crate::serve::methods::Debits;

/// An [`AccountStore`] that records the time of each `update` and
/// `update_many` (the charging operations; reads are not debits) in
/// `debits`.
pub(super) struct TimedAccounts<'a> {
    /// The accounts.
    pub inner: &'a dyn AccountStore,
    /// Where the times go.
    pub debits: &'a Mutex<Debits>,
}

impl TimedAccounts<'_> {
    fn timed<T>(&self, f: impl FnOnce() -> Result<T, Error>) -> Result<T, Error> {
        let started = Instant::now();
        let r = f();
        if let Ok(mut d) = self.debits.lock() {
            d.record(started.elapsed(), r.is_ok());
        }
        r
    }
}

impl AccountStore for TimedAccounts<'_> {
    fn get(&self, tenant: &str, id: &str) -> Result<Option<Account>, Error> {
        self.inner.get(tenant, id)
    }

    fn set(&self, account: Account) -> Result<(), Error> {
        self.inner.set(account)
    }

    fn remove(&self, tenant: &str, id: &str) -> Result<bool, Error> {
        self.inner.remove(tenant, id)
    }

    fn list(&self, tenant: &str) -> Result<Vec<Account>, Error> {
        self.inner.list(tenant)
    }

    fn tenants(&self) -> Result<Vec<String>, Error> {
        self.inner.tenants()
    }

    fn update(
        &self,
        tenant: &str,
        id: &str,
        f: &mut dyn FnMut(&mut Account) -> Result<(), Error>,
    ) -> Result<(), Error> {
        self.timed(|| self.inner.update(tenant, id, f))
    }

    fn update_many(
        &self,
        keys: &[(String, String)],
        f: &mut dyn FnMut(&mut [Account]) -> Result<(), Error>,
    ) -> Result<(), Error> {
        self.timed(|| self.inner.update_many(keys, f))
    }
}

#[cfg(test)]
mod tests {
    use rating::{AccountStoreExt, MemoryAccounts};

    use super::*;

    #[test]
    fn updates_are_recorded_reads_are_not() {
        let store = MemoryAccounts::new();
        store.set(Account::new("t", "a")).unwrap();
        let debits = Mutex::new(Debits::default());
        let timed = TimedAccounts {
            inner: &store,
            debits: &debits,
        };
        timed.get("t", "a").unwrap();
        timed.update_with("t", "a", |_| Ok(())).unwrap();
        assert!(timed.update_with("t", "nobody", |_| Ok(())).is_err());
        timed
            .update_many(&[("t".into(), "a".into())], &mut |_| Ok(()))
            .unwrap();
        let d = debits.lock().unwrap();
        assert_eq!((d.count, d.errors), (3, 1));
        assert_eq!(d.latency_us.as_ref().unwrap().len(), 3);
    }
}
