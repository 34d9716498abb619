//! Live sessions ([`sessions::SessionStore`]) in the embedded store: `S`
//! and `s` records in the same journal as the accounts.

use std::sync::{RwLockReadGuard, RwLockWriteGuard};

use super::*;

type SessionMap = BTreeMap<String, Vec<u8>>;

impl EmbeddedAccounts {
    /// The locks a session write holds while it journals and updates the
    /// map: the checkpoint's (shared, so a compaction waits) and the map's.
    fn sessions_for_write(&self) -> (RwLockReadGuard<'_, ()>, RwLockWriteGuard<'_, SessionMap>) {
        let checkpoint = self
            .checkpoint
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        let map = self
            .sessions
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        (checkpoint, map)
    }
}

impl sessions::SessionStore for EmbeddedAccounts {
    fn put(&self, key: &str, value: &[u8]) -> Result<(), sessions::Error> {
        let lsn = {
            let (_w, mut map) = self.sessions_for_write();
            let lsn = self.log(&Op::Session(key.to_owned(), value.to_vec()))?;
            map.insert(key.to_owned(), value.to_vec());
            lsn
        };
        // The map's lock is released before the fsync: puts of other
        // sessions share it (group commit).
        self.journal.wait(lsn)?;
        self.maybe_compact();
        Ok(())
    }

    fn remove(&self, key: &str) -> Result<bool, sessions::Error> {
        let lsn = {
            let (_w, mut map) = self.sessions_for_write();
            if !map.contains_key(key) {
                drop(map);
                // The absence may rest on a remove not yet durable.
                self.journal.wait(self.journal.written())?;
                return Ok(false);
            }
            let lsn = self.log(&Op::SessionDel(key.to_owned()))?;
            map.remove(key);
            lsn
        };
        self.journal.wait(lsn)?;
        self.maybe_compact();
        Ok(true)
    }

    fn apply_batch(&self, puts: &[(&str, &[u8])], removes: &[&str]) -> Result<(), sessions::Error> {
        if puts.is_empty() && removes.is_empty() {
            return Ok(());
        }
        let lsn = {
            let (_w, mut map) = self.sessions_for_write();
            // Every record of the batch in one write, then the map.
            let mut records = Vec::with_capacity(puts.len() + removes.len());
            for (k, v) in puts {
                records.push(named(b'S', k, v)?);
            }
            // An absent key is journaled nothing; the wait below covers a
            // remove of it not yet durable. (Puts come first: a key both
            // put and removed in one batch is removed, as one by one.)
            let put: std::collections::HashSet<&str> = if removes.is_empty() {
                std::collections::HashSet::new()
            } else {
                puts.iter().map(|(k, _)| *k).collect()
            };
            let gone: Vec<&str> = removes
                .iter()
                .copied()
                .filter(|k| map.contains_key(*k) || put.contains(k))
                .collect();
            for k in &gone {
                records.push([b"s".as_slice(), k.as_bytes()].concat());
            }
            if !records.is_empty() {
                self.journal.append_many(&records)?;
            }
            for (k, v) in puts {
                map.insert((*k).to_owned(), v.to_vec());
            }
            for k in gone {
                map.remove(k);
            }
            // Every record above, and anything written before: one fsync.
            self.journal.written()
        };
        self.journal.wait(lsn)?;
        self.maybe_compact();
        Ok(())
    }

    fn list(&self) -> Result<Vec<(String, Vec<u8>)>, sessions::Error> {
        let all: Vec<(String, Vec<u8>)> = self
            .sessions
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        // Not tracked per key: wait for everything written so far, so that
        // nothing unacknowledged is shown.
        self.journal.wait(self.journal.written())?;
        Ok(all)
    }
}
