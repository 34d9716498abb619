//! [`SessionStore`]: where the session manager keeps its live sessions so
//! that a restart resumes them, and [`MemorySessions`] for tests.
//!
//! The values are opaque bytes (the session manager's serialized
//! snapshots); keys are the manager's own (one per session). The store
//! only has to make a `put` or `remove` durable before it returns: the
//! return is the acknowledgement, so a crash right after it loses
//! nothing, and on start the manager reads everything back with
//! [`SessionStore::list`].

use std::collections::BTreeMap;
use std::sync::{Mutex, PoisonError};

use crate::Error;

/// Durable key/value storage of live sessions (see the module
/// documentation). Implemented in `storage` for the embedded data
/// directory and for Redis. Calls block (a file `fsync` or a network round
/// trip): async callers run them on a blocking thread.
pub trait SessionStore: Send + Sync {
    /// Stores `value` under `key`, replacing any value there; durable when
    /// it returns `Ok`.
    ///
    /// # Errors
    /// [`Error::Store`] when the backend failed (then the value may or may
    /// not be stored).
    fn put(&self, key: &str, value: &[u8]) -> Result<(), Error>;

    /// Removes `key`; whether it was there. Durable when it returns `Ok`.
    ///
    /// # Errors
    /// [`Error::Store`] when the backend failed.
    fn remove(&self, key: &str) -> Result<bool, Error>;

    /// Every stored session, sorted by key.
    ///
    /// # Errors
    /// [`Error::Store`] when the backend failed.
    fn list(&self) -> Result<Vec<(String, Vec<u8>)>, Error>;

    /// Stores every `(key, value)` of `puts`, then removes every key of
    /// `removes` (a key in both ends removed), all durable when it returns
    /// `Ok`: one acknowledgement for the lot, so a backend can make them
    /// durable together (one `fsync`, one round trip). Not atomic: a
    /// failure or a crash before it returns may leave any of them done.
    /// The default does them one by one.
    ///
    /// # Errors
    /// [`Error::Store`] when the backend failed.
    fn apply_batch(&self, puts: &[(&str, &[u8])], removes: &[&str]) -> Result<(), Error> {
        for (k, v) in puts {
            self.put(k, v)?;
        }
        for k in removes {
            self.remove(k)?;
        }
        Ok(())
    }
}

/// Sessions in memory, lost with the process: for tests and for running
/// without persistence.
#[derive(Debug, Default)]
pub struct MemorySessions {
    map: Mutex<BTreeMap<String, Vec<u8>>>,
}

impl MemorySessions {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn map(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Vec<u8>>> {
        self.map.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl SessionStore for MemorySessions {
    fn put(&self, key: &str, value: &[u8]) -> Result<(), Error> {
        self.map().insert(key.to_owned(), value.to_vec());
        Ok(())
    }

    fn remove(&self, key: &str) -> Result<bool, Error> {
        Ok(self.map().remove(key).is_some())
    }

    fn list(&self) -> Result<Vec<(String, Vec<u8>)>, Error> {
        Ok(self
            .map()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_sessions_put_replace_remove_list() {
        let s = MemorySessions::new();
        assert_eq!(s.list().unwrap(), vec![]);
        s.put("b", b"2").unwrap();
        s.put("a", b"1").unwrap();
        s.put("b", b"22").unwrap();
        assert_eq!(
            s.list().unwrap(),
            vec![("a".into(), b"1".to_vec()), ("b".into(), b"22".to_vec())]
        );
        assert!(s.remove("a").unwrap());
        assert!(!s.remove("a").unwrap());
        assert_eq!(s.list().unwrap(), vec![("b".into(), b"22".to_vec())]);
    }

    #[test]
    fn memory_sessions_batch_puts_then_removes() {
        let s = MemorySessions::new();
        s.put("old", b"0").unwrap();
        s.apply_batch(
            &[("a", b"1"), ("b", b"2"), ("a", b"11")],
            &["b", "old", "none"],
        )
        .unwrap();
        assert_eq!(s.list().unwrap(), vec![("a".into(), b"11".to_vec())]);
    }
}
