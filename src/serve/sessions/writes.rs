//! A shard's session-store writes, buffered and made durable together
//! ([`SessionStore::apply_batch`]: one `fsync` on the embedded store, one
//! round trip on Redis) instead of one by one.
//!
//! Only adjacent store writes are merged: the shard flushes the buffer
//! before every other durable effect (an account update, through
//! [`super::timed::TimedAccounts`]; a CDR handed to the writer; an API
//! reply) and after each round of commands. So a passive call's end is
//! still durable before its charge, a session is saved before its
//! operation is answered, and a crash leaves the store as the writes one
//! by one could have left it.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::Ordering;

use sessions::SessionStore;

use super::{DriverCounters, lock};

/// Buffered writes of one shard: each key's last value, or its removal.
pub(super) struct StoreWrites<'a> {
    pending: Mutex<BTreeMap<String, Option<Vec<u8>>>>,
    store: &'a dyn SessionStore,
    counters: &'a DriverCounters,
}

impl<'a> StoreWrites<'a> {
    /// Nothing buffered yet.
    pub(super) fn new(store: &'a dyn SessionStore, counters: &'a DriverCounters) -> Self {
        StoreWrites {
            pending: Mutex::new(BTreeMap::new()),
            store,
            counters,
        }
    }

    /// Stores `value` under `key` at the next flush (a later write of the
    /// key replaces it).
    pub(super) fn put(&self, key: String, value: Vec<u8>) {
        lock(&self.pending).insert(key, Some(value));
    }

    /// Removes `key` at the next flush.
    pub(super) fn remove(&self, key: String) {
        lock(&self.pending).insert(key, None);
    }

    /// Makes everything buffered durable, in one batch; a failure is
    /// counted and logged (as a single write's was).
    pub(super) fn flush(&self) {
        let batch = std::mem::take(&mut *lock(&self.pending));
        if batch.is_empty() {
            return;
        }
        let mut puts = Vec::new();
        let mut removes = Vec::new();
        for (k, v) in &batch {
            match v {
                Some(v) => puts.push((k.as_str(), v.as_slice())),
                None => removes.push(k.as_str()),
            }
        }
        let c = self.counters;
        c.store_batches.fetch_add(1, Ordering::Relaxed);
        c.store_writes
            .fetch_add(batch.len() as u64, Ordering::Relaxed);
        if let Err(e) = self.store.apply_batch(&puts, &removes) {
            c.store_errors.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(writes = batch.len(), error = %e, "cannot save sessions");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Counts the store calls.
    #[derive(Default)]
    struct Counting {
        inner: sessions::MemorySessions,
        calls: std::sync::atomic::AtomicU64,
    }

    impl SessionStore for Counting {
        fn put(&self, key: &str, value: &[u8]) -> Result<(), sessions::Error> {
            self.calls.fetch_add(1, Ordering::Relaxed);
            self.inner.put(key, value)
        }
        fn remove(&self, key: &str) -> Result<bool, sessions::Error> {
            self.calls.fetch_add(1, Ordering::Relaxed);
            self.inner.remove(key)
        }
        fn list(&self) -> Result<Vec<(String, Vec<u8>)>, sessions::Error> {
            self.inner.list()
        }
        fn apply_batch(
            &self,
            puts: &[(&str, &[u8])],
            removes: &[&str],
        ) -> Result<(), sessions::Error> {
            self.calls.fetch_add(1, Ordering::Relaxed);
            self.inner.apply_batch(puts, removes)
        }
    }

    #[test]
    fn writes_wait_for_the_flush_and_go_as_one_batch() {
        let store = Counting::default();
        store.put("old", b"o").unwrap();
        let counters = DriverCounters::default();
        let w = StoreWrites::new(&store, &counters);
        w.put("d:a".into(), b"1".to_vec());
        w.put("d:a".into(), b"2".to_vec());
        w.put("s:a".into(), b"s".to_vec());
        w.remove("old".into());
        w.put("gone".into(), b"g".to_vec());
        w.remove("gone".into());
        assert_eq!(store.list().unwrap().len(), 1);
        w.flush();
        w.flush();
        assert_eq!(store.calls.load(Ordering::Relaxed), 2);
        assert_eq!(
            store.list().unwrap(),
            vec![("d:a".into(), b"2".to_vec()), ("s:a".into(), b"s".to_vec())]
        );
        assert_eq!(counters.store_batches.load(Ordering::Relaxed), 1);
        assert_eq!(counters.store_writes.load(Ordering::Relaxed), 4);
        // A key removed then saved again is saved.
        w.remove("s:a".into());
        w.put("s:a".into(), b"t".to_vec());
        w.flush();
        assert_eq!(store.list().unwrap()[1], ("s:a".into(), b"t".to_vec()));
    }
}
