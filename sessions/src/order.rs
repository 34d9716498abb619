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

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Duration;

use capture::Timestamp;
use sip_fsm::CallRecord;

/// A min-heap of call records by end time (ties in arrival order).
///
/// The heap holds small keys (end time, arrival number, slot) and the
/// records wait in slots beside it: a record is moved in once and out once,
/// not at every level the heap sifts it through (with the default 300 s
/// window tens of thousands of records are held, and moving whole records
/// was most of the cost).
#[derive(Debug)]
pub struct EndTimeOrder {
    window: Duration,
    seq: u64,
    heap: BinaryHeap<Reverse<Key>>,
    slots: Vec<Option<CallRecord>>,
    /// Slots whose record was released, to be filled again.
    free: Vec<usize>,
}

/// Ordered by end time, then arrival (`seq` is unique, so `slot` never
/// decides).
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Key {
    end: Timestamp,
    seq: u64,
    slot: usize,
}

impl EndTimeOrder {
    /// Records are held until `now` passes their end time plus `window`.
    pub fn new(window: Duration) -> Self {
        EndTimeOrder {
            window,
            seq: 0,
            heap: BinaryHeap::new(),
            slots: Vec::new(),
            free: Vec::new(),
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
        let end = rec.end_time;
        let slot = match self.free.pop() {
            Some(i) => {
                self.slots[i] = Some(rec);
                i
            }
            None => {
                self.slots.push(Some(rec));
                self.slots.len() - 1
            }
        };
        self.heap.push(Reverse(Key {
            end,
            seq: self.seq,
            slot,
        }));
    }

    /// The earliest record, if `now` is past its end time plus the window.
    pub fn pop_ready(&mut self, now: Timestamp) -> Option<CallRecord> {
        let Reverse(first) = self.heap.peek()?;
        if first.end.saturating_add(self.window) > now {
            return None;
        }
        self.pop()
    }

    /// The earliest record, whatever the time (at the end of input).
    pub fn pop(&mut self) -> Option<CallRecord> {
        let Reverse(k) = self.heap.pop()?;
        let rec = self.slots.get_mut(k.slot).and_then(Option::take);
        if self.heap.is_empty() {
            // Nothing held: the slots start over.
            self.slots.clear();
            self.free.clear();
        } else {
            self.free.push(k.slot);
        }
        rec
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

    proptest::proptest! {
        /// Whatever the order of pushes and releases, records come out as a
        /// stable sort by end time would give them, and each exactly once.
        #[test]
        fn releases_as_a_stable_sort(
            steps in proptest::collection::vec((0i64..50, 0i64..60, proptest::bool::ANY), 1..300),
        ) {
            let mut o = EndTimeOrder::new(Duration::from_nanos(10));
            // The reference: what is held, as (end, arrival) in arrival order.
            let mut held: Vec<(i64, u16)> = Vec::new();
            let mut out = Vec::new();
            let mut want = Vec::new();
            for (n, (end, now, flush)) in steps.into_iter().enumerate() {
                let id = u16::try_from(n).unwrap();
                let mut r = record(end, true);
                r.code = id;
                o.push(r);
                held.push((end, id));
                if flush {
                    out.extend(std::iter::from_fn(|| o.pop()).map(|r| r.code));
                    held.sort_by_key(|h| h.0);
                    want.extend(held.drain(..).map(|h| h.1));
                } else {
                    let now = Timestamp::from_nanos(T0 + now);
                    out.extend(std::iter::from_fn(|| o.pop_ready(now)).map(|r| r.code));
                    held.sort_by_key(|h| h.0);
                    let due = held.iter().take_while(|h| T0 + h.0 + 10 <= now.as_nanos()).count();
                    want.extend(held.drain(..due).map(|h| h.1));
                }
                proptest::prop_assert_eq!(o.len(), held.len());
            }
            out.extend(std::iter::from_fn(|| o.pop()).map(|r| r.code));
            want.extend(held.into_iter().map(|h| h.1));
            proptest::prop_assert_eq!(out, want);
            proptest::prop_assert!(o.is_empty());
        }
    }
}
