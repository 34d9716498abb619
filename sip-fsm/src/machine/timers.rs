//! The dialog deadlines: one queue of (deadline, key), earliest first.
//!
//! The owner of each key keeps its current deadline (a dialog stores it),
//! so the queue needs no second map: moving or cancelling a timer names
//! the deadline it was set for. Generic over the key so the other
//! hand-made timer queues of the workspace (capture reassembly, CDR
//! ordering) can move onto one structure.

use std::collections::BTreeSet;

use capture::Timestamp;

/// Deadlines by time; equal deadlines fire in key order (deterministic).
#[derive(Debug)]
pub(super) struct Timers<K: Ord> {
    queue: BTreeSet<(Timestamp, K)>,
}

impl<K: Ord + Clone> Timers<K> {
    pub fn new() -> Self {
        Timers {
            queue: BTreeSet::new(),
        }
    }

    /// Sets `key` to fire at `at`.
    pub fn set(&mut self, key: K, at: Timestamp) {
        self.queue.insert((at, key));
    }

    /// Moves `key`'s timer from `from` to `to` (sets it at `to` even if
    /// none was set: a key with no timer would never be reaped).
    pub fn reset(&mut self, key: &K, from: Timestamp, to: Timestamp) {
        if from != to {
            self.queue.remove(&(from, key.clone()));
            self.queue.insert((to, key.clone()));
        }
    }

    /// Cancels `key`'s timer set for `at`.
    pub fn cancel(&mut self, key: K, at: Timestamp) {
        self.queue.remove(&(at, key));
    }

    /// The earliest deadline.
    pub fn next(&self) -> Option<Timestamp> {
        self.queue.first().map(|(t, _)| *t)
    }

    /// Takes the earliest timer if it is due at `horizon`.
    pub fn pop_due(&mut self, horizon: Timestamp) -> Option<(Timestamp, K)> {
        if self.next()? <= horizon {
            self.queue.pop_first()
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: i64) -> Timestamp {
        Timestamp::from_nanos(s * 1_000_000_000)
    }

    #[test]
    fn earliest_first_reset_and_cancel() {
        let mut q = Timers::new();
        q.set("b", t(5));
        q.set("a", t(5));
        q.set("c", t(9));
        q.reset(&"c", t(9), t(1));
        q.cancel("b", t(5));
        assert_eq!(q.next(), Some(t(1)));
        assert_eq!(q.pop_due(t(0)), None);
        assert_eq!(q.pop_due(t(10)), Some((t(1), "c")));
        assert_eq!(q.pop_due(t(10)), Some((t(5), "a")));
        assert_eq!(q.pop_due(t(10)), None);
    }
}
