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
    /// Runs before every write (the shard's buffered store writes made
    /// durable first, so an account change never overtakes them).
    pub before_write: &'a (dyn Fn() + Sync),
}

impl TimedAccounts<'_> {
    fn timed<T>(&self, f: impl FnOnce() -> Result<T, Error>) -> Result<T, Error> {
        (self.before_write)();
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
        (self.before_write)();
        self.inner.set(account)
    }

    fn remove(&self, tenant: &str, id: &str) -> Result<bool, Error> {
        (self.before_write)();
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
        let flushes = std::sync::atomic::AtomicU32::new(0);
        let flush = || {
            flushes.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        };
        let timed = TimedAccounts {
            inner: &store,
            debits: &debits,
            before_write: &flush,
        };
        timed.get("t", "a").unwrap();
        assert_eq!(flushes.load(std::sync::atomic::Ordering::Relaxed), 0);
        timed.update_with("t", "a", |_| Ok(())).unwrap();
        assert!(timed.update_with("t", "nobody", |_| Ok(())).is_err());
        timed
            .update_many(&[("t".into(), "a".into())], &mut |_| Ok(()))
            .unwrap();
        // Every write first flushes what the shard buffered.
        assert_eq!(flushes.load(std::sync::atomic::Ordering::Relaxed), 3);
        let d = debits.lock().unwrap();
        assert_eq!((d.count, d.errors), (3, 1));
        assert_eq!(d.latency_us.as_ref().unwrap().len(), 3);
    }
}
