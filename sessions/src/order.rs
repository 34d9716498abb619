//! Putting finished calls in end-time order.
//!
//! The dialog machine emits most records at about their end time, but some
//! late: a failed attempt that waited for a retried INVITE after a 407 is
//! only known to have failed `retry-wait` later, and one whose final
//! response came on a downstream branch only `invite-timeout` later; both
//! carry the earlier end time. [`EndTimeOrder`] holds records in a min-heap
//! by end time and releases one once `now` is past its end time plus a
//! window; with a window at least as long as the longest such delay the
//! output is exactly in end-time order.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;
use std::time::Duration;

use capture::Timestamp;
use sip_fsm::CallRecord;

/// A min-heap of call records by end time (ties in arrival order).
#[derive(Debug)]
pub struct EndTimeOrder {
    window: Duration,
    seq: u64,
    heap: BinaryHeap<Reverse<Entry>>,
}

#[derive(Debug)]
struct Entry {
    end: Timestamp,
    seq: u64,
    rec: CallRecord,
}

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        (self.end, self.seq) == (other.end, other.seq)
    }
}
impl Eq for Entry {}
impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Entry {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.end, self.seq).cmp(&(other.end, other.seq))
    }
}

impl EndTimeOrder {
    /// Records are held until `now` passes their end time plus `window`.
    pub fn new(window: Duration) -> Self {
        EndTimeOrder {
            window,
            seq: 0,
            heap: BinaryHeap::new(),
        }
    }

    /// The window for a dialog machine config: the longest time between a
    /// record's end time and the moment the machine can emit it (its
    /// reorder window plus the longer of `invite-timeout` and
    /// `retry-wait`).
    pub fn window_for(cfg: &sip_fsm::Config) -> Duration {
        Duration::from_millis(cfg.reorder_window_ms)
            + Duration::from_secs(cfg.invite_timeout_secs.max(cfg.retry_wait_secs))
    }

    /// Takes a record in.
    pub fn push(&mut self, rec: CallRecord) {
        self.seq += 1;
        self.heap.push(Reverse(Entry {
            end: rec.end_time,
            seq: self.seq,
            rec,
        }));
    }

    /// The earliest record, if `now` is past its end time plus the window.
    pub fn pop_ready(&mut self, now: Timestamp) -> Option<CallRecord> {
        let Reverse(first) = self.heap.peek()?;
        if first.end.saturating_add(self.window) > now {
            return None;
        }
        self.heap.pop().map(|Reverse(e)| e.rec)
    }

    /// The earliest record, whatever the time (at the end of input).
    pub fn pop(&mut self) -> Option<CallRecord> {
        self.heap.pop().map(|Reverse(e)| e.rec)
    }

    /// Records held.
    pub fn len(&self) -> usize {
        self.heap.len()
    }

    /// Whether no record is held.
    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cdr::tests::{T0, record};

    fn ends(o: &mut EndTimeOrder, now: i64) -> Vec<i64> {
        std::iter::from_fn(|| o.pop_ready(Timestamp::from_nanos(T0 + now)))
            .map(|r| r.end_time.as_nanos() - T0)
            .collect()
    }

    #[test]
    fn releases_in_end_order_after_the_window() {
        let mut o = EndTimeOrder::new(Duration::from_nanos(100));
        o.push(record(500, true));
        o.push(record(300, false));
        assert!(ends(&mut o, 399).is_empty());
        assert_eq!(ends(&mut o, 400), [300]);
        // A late record with an earlier end time still comes out first.
        o.push(record(450, true));
        assert_eq!(ends(&mut o, 1_000), [450, 500]);
        assert!(o.is_empty());
    }

    #[test]
    fn ties_keep_arrival_order_and_pop_flushes() {
        let mut o = EndTimeOrder::new(Duration::from_secs(3600));
        let mut a = record(10, true);
        a.code = 201;
        o.push(a);
        o.push(record(10, false));
        assert_eq!(o.len(), 2);
        assert!(o.pop_ready(Timestamp::from_nanos(T0 + 11)).is_none());
        assert_eq!(o.pop().map(|r| r.code), Some(201));
        assert!(o.pop().is_some());
        assert!(o.pop().is_none());
    }

    #[test]
    fn default_window_covers_the_latest_emission() {
        let cfg = sip_fsm::Config::default();
        assert_eq!(
            EndTimeOrder::window_for(&cfg),
            Duration::from_millis(200) + Duration::from_secs(300)
        );
    }
}
