//! Duplicate requests (RFC 2865 section 3, RFC 5080 section 2.2.2): a
//! request resent with the same client address, identifier and Request
//! Authenticator is answered with the reply already sent, never run
//! twice; one still being run is dropped (its reply will reach the NAS).
//! Entries live `ttl` after they were answered (time passed in).

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::Duration;

use chrono::{DateTime, Utc};

/// What identifies a request.
pub type Key = (SocketAddr, u8, [u8; 16]);

/// A cached request.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Entry {
    /// Being run.
    InFlight,
    /// Answered with these bytes.
    Done(Vec<u8>),
}

/// What to do with a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seen {
    /// A new request: run it (it is now in flight).
    New,
    /// A duplicate of one being run: drop it.
    InFlight,
    /// A duplicate of one answered: send these bytes again.
    Answered(Vec<u8>),
}

/// The cache.
#[derive(Debug)]
pub struct Dedup {
    ttl: Duration,
    max: usize,
    entries: HashMap<Key, (Entry, DateTime<Utc>)>,
    /// Keys in the order they were added, for expiry.
    order: VecDeque<(DateTime<Utc>, Key)>,
}

impl Dedup {
    /// A cache keeping answers `ttl`, at most `max` requests.
    #[must_use]
    pub fn new(ttl: Duration, max: usize) -> Dedup {
        Dedup {
            ttl,
            max: max.max(1),
            entries: HashMap::new(),
            order: VecDeque::new(),
        }
    }

    /// Looks `key` up at `now`, recording it as in flight when new.
    pub fn check(&mut self, key: Key, now: DateTime<Utc>) -> Seen {
        self.expire(now);
        if let Some((e, _)) = self.entries.get(&key) {
            return match e {
                Entry::InFlight => Seen::InFlight,
                Entry::Done(b) => Seen::Answered(b.clone()),
            };
        }
        while self.entries.len() >= self.max {
            let Some((_, old)) = self.order.pop_front() else {
                break;
            };
            self.entries.remove(&old);
        }
        self.entries.insert(key, (Entry::InFlight, now));
        self.order.push_back((now, key));
        Seen::New
    }

    /// Records the answer to `key`.
    pub fn answered(&mut self, key: Key, reply: Vec<u8>, now: DateTime<Utc>) {
        if let Some(e) = self.entries.get_mut(&key) {
            *e = (Entry::Done(reply), now);
            self.order.push_back((now, key));
        }
    }

    /// Forgets `key` (a request dropped without an answer may come again).
    pub fn forget(&mut self, key: &Key) {
        self.entries.remove(key);
    }

    /// How many requests are remembered.
    #[must_use]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether none is.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn expire(&mut self, now: DateTime<Utc>) {
        let ttl = chrono::Duration::from_std(self.ttl).unwrap_or(chrono::Duration::MAX);
        while let Some((at, key)) = self.order.front().copied() {
            if now.signed_duration_since(at) < ttl {
                break;
            }
            self.order.pop_front();
            // Only when this is the entry's latest stamp (an answer
            // re-stamps it).
            if self.entries.get(&key).is_some_and(|(_, t)| *t == at) {
                self.entries.remove(&key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicates_are_answered_from_the_cache_until_expiry() {
        let mut d = Dedup::new(Duration::from_secs(30), 100);
        let t0 = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let k: Key = ("127.0.0.1:5000".parse().unwrap(), 7, [1; 16]);
        assert_eq!(d.check(k, t0), Seen::New);
        assert_eq!(d.check(k, t0), Seen::InFlight);
        d.answered(k, vec![2, 7], t0);
        assert_eq!(
            d.check(k, t0 + chrono::Duration::seconds(29)),
            Seen::Answered(vec![2, 7])
        );
        let other: Key = (k.0, 7, [2; 16]);
        assert_eq!(d.check(other, t0), Seen::New, "another authenticator");
        assert_eq!(d.check(k, t0 + chrono::Duration::seconds(31)), Seen::New);
    }

    #[test]
    fn bounded() {
        let mut d = Dedup::new(Duration::from_secs(30), 2);
        let t0 = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        for i in 0..5u8 {
            let _ = d.check(("127.0.0.1:1".parse().unwrap(), i, [0; 16]), t0);
        }
        assert_eq!(d.len(), 2);
    }
}
