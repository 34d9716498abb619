//! Bounded IP fragment reassembly (IPv4 and IPv6).
//!
//! `etherparse`'s `IpDefragPool` keeps every unfinished datagram forever, so
//! this keeps its own map of `IpDefragBuf`s (which do the byte work) and adds
//! the policy: a cap on bytes held over all datagrams, a timeout from the
//! first fragment, and RFC 5722's rule that overlapping fragments void the
//! whole datagram (exact duplicates are ignored, as Linux does).

use std::collections::{BTreeMap, HashMap};

use etherparse::defrag::{IpDefragBuf, IpFragId};
use etherparse::{IpFragOffset, IpNumber};

use crate::{DropReason, Stats, Timestamp};

/// Bookkeeping bytes charged per datagram on top of its data, so that many
/// tiny datagrams cannot exceed the byte limit unnoticed.
const DATAGRAM_OVERHEAD: usize = 256;
/// Fragments one datagram may have. A 64 KiB datagram over a 1280-byte MTU
/// needs 52; many more is an attack on the overlap check.
const MAX_FRAGMENTS: usize = 128;

/// One fragment, as read from its IP header.
#[derive(Debug)]
pub(crate) struct Fragment<'a> {
    /// Which datagram it belongs to.
    pub id: IpFragId,
    /// Offset in the datagram's payload.
    pub offset: IpFragOffset,
    /// More fragments follow (MF flag).
    pub more: bool,
    /// The fragment's payload.
    pub payload: &'a [u8],
}

/// A datagram being put together.
#[derive(Debug)]
struct Pending {
    buf: IpDefragBuf,
    /// Byte ranges of the fragments received, as sent (not merged), to tell
    /// duplicates from overlaps.
    ranges: Vec<(u16, u16)>,
    /// Bytes charged against the limit.
    cost: usize,
    /// Its entry in [`Defragmenter::timers`].
    timer: (Timestamp, u64),
}

/// A reassembled datagram's payload.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Reassembled {
    /// The protocol of the payload (UDP, TCP...).
    pub ip_number: IpNumber,
    /// The transport header and payload.
    pub payload: Vec<u8>,
}

/// Reassembles fragmented IP datagrams within a byte limit and a timeout.
#[derive(Debug)]
pub(crate) struct Defragmenter {
    pending: HashMap<IpFragId, Pending>,
    /// Deadlines, earliest first; the `u64` makes keys unique.
    timers: BTreeMap<(Timestamp, u64), IpFragId>,
    next_timer: u64,
    held: usize,
    max_bytes: usize,
    timeout: std::time::Duration,
}

impl Defragmenter {
    pub(crate) fn new(max_bytes: usize, timeout: std::time::Duration) -> Self {
        Defragmenter {
            pending: HashMap::new(),
            timers: BTreeMap::new(),
            next_timer: 0,
            held: 0,
            max_bytes,
            timeout,
        }
    }

    /// Bytes held now, overhead included.
    pub(crate) fn held(&self) -> usize {
        self.held
    }

    /// Adds a fragment seen at `ts`. Returns the datagram's payload once
    /// complete. Refusals and bad fragments are counted in `stats`. `room`
    /// is what the global reassembly budget leaves for IP fragments: a
    /// datagram that would pass it is dropped as `ReassemblyBudget`.
    pub(crate) fn add(
        &mut self,
        frag: Fragment<'_>,
        ts: Timestamp,
        room: usize,
        stats: &mut Stats,
    ) -> Option<Reassembled> {
        let start = frag.offset.byte_offset();
        let end = u16::try_from(frag.payload.len())
            .ok()
            .and_then(|l| start.checked_add(l));
        let Some(end) = end else {
            // Beyond the 65535-byte maximum datagram.
            self.discard(&frag.id);
            stats.drop(DropReason::BadFragment);
            return None;
        };
        if !self.pending.contains_key(&frag.id) {
            let timer = (ts.saturating_add(self.timeout), self.next_timer);
            self.next_timer += 1;
            self.timers.insert(timer, frag.id.clone());
            let ip_number = frag.id.payload_ip_number;
            self.pending.insert(
                frag.id.clone(),
                Pending {
                    buf: IpDefragBuf::new(ip_number, Vec::new(), Vec::new()),
                    ranges: Vec::new(),
                    cost: DATAGRAM_OVERHEAD,
                    timer,
                },
            );
            self.held += DATAGRAM_OVERHEAD;
        }
        let Some(p) = self.pending.get_mut(&frag.id) else {
            return None; // inserted just above
        };
        if p.ranges.contains(&(start, end)) {
            return None; // an exact duplicate (a retransmission)
        }
        if p.ranges.iter().any(|&(s, e)| start < e && s < end) {
            // RFC 5722: overlapping fragments void the datagram.
            self.discard(&frag.id);
            stats.drop(DropReason::BadFragment);
            return None;
        }
        let grow = usize::from(end).saturating_sub(p.buf.data().len());
        if p.ranges.len() >= MAX_FRAGMENTS || self.held + grow > self.max_bytes {
            self.discard(&frag.id);
            stats.drop(DropReason::ReassemblyLimit);
            return None;
        }
        if self.held + grow > room {
            self.discard(&frag.id);
            stats.drop(DropReason::ReassemblyBudget);
            return None;
        }
        if p.buf.add(frag.offset, frag.more, frag.payload).is_err() {
            // Unaligned middle fragment, or an end that contradicts an
            // earlier last fragment.
            self.discard(&frag.id);
            stats.drop(DropReason::BadFragment);
            return None;
        }
        p.ranges.push((start, end));
        let cost = DATAGRAM_OVERHEAD + p.buf.data().len();
        self.held = self.held - p.cost + cost;
        p.cost = cost;
        if !p.buf.is_complete() {
            return None;
        }
        let p = self.remove(&frag.id)?;
        let ip_number = p.buf.ip_number();
        let (payload, _) = p.buf.take_bufs();
        Some(Reassembled { ip_number, payload })
    }

    /// Drops every datagram whose time ran out by `now`, counting each as a
    /// `ReassemblyTimeout`.
    pub(crate) fn expire(&mut self, now: Timestamp, stats: &mut Stats) {
        while let Some(entry) = self.timers.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let id = entry.remove();
            if let Some(p) = self.pending.remove(&id) {
                self.held -= p.cost;
                stats.drop(DropReason::ReassemblyTimeout);
            }
        }
    }

    /// The earliest deadline, if any datagram is pending.
    pub(crate) fn next_deadline(&self) -> Option<Timestamp> {
        self.timers.first_key_value().map(|(k, _)| k.0)
    }

    /// How many datagrams are unfinished.
    pub(crate) fn pending(&self) -> usize {
        self.pending.len()
    }

    fn remove(&mut self, id: &IpFragId) -> Option<Pending> {
        let p = self.pending.remove(id)?;
        self.timers.remove(&p.timer);
        self.held -= p.cost;
        Some(p)
    }

    fn discard(&mut self, id: &IpFragId) {
        let _ = self.remove(id);
    }
}

#[cfg(test)]
#[allow(clippy::cast_possible_truncation)] // test sizes are small
mod tests {
    use std::time::Duration;

    use etherparse::defrag::IpFragVersionSpecId;

    use super::*;

    fn id(n: u16) -> IpFragId {
        IpFragId {
            vlan_ids: Default::default(),
            ip: IpFragVersionSpecId::Ipv4 {
                source: [1, 1, 1, 1],
                destination: [2, 2, 2, 2],
                identification: n,
            },
            payload_ip_number: IpNumber::UDP,
            channel_id: (),
        }
    }

    fn frag(n: u16, offset_bytes: u16, more: bool, payload: &[u8]) -> Fragment<'_> {
        Fragment {
            id: id(n),
            offset: IpFragOffset::try_new(offset_bytes / 8).expect("valid offset"),
            more,
            payload,
        }
    }

    fn pool() -> Defragmenter {
        Defragmenter::new(1 << 20, Duration::from_secs(30))
    }

    const T0: Timestamp = Timestamp::from_nanos(1_000_000_000);

    #[test]
    fn in_order_and_out_of_order() {
        let data: Vec<u8> = (0..24).collect();
        for order in [[0, 1, 2], [2, 0, 1], [1, 2, 0]] {
            let mut d = pool();
            let mut st = Stats::default();
            let mut got = None;
            for i in order {
                let s = i * 8;
                got = d.add(
                    frag(1, s as u16, i < 2, &data[s..s + 8]),
                    T0,
                    usize::MAX,
                    &mut st,
                );
            }
            assert_eq!(got.expect("complete").payload, data, "{order:?}");
            assert_eq!(d.pending(), 0);
            assert_eq!(d.held(), 0);
            assert_eq!(d.next_deadline(), None);
        }
    }

    #[test]
    fn duplicates_are_ignored() {
        let data: Vec<u8> = (0..16).collect();
        let mut d = pool();
        let mut st = Stats::default();
        assert_eq!(
            d.add(frag(1, 0, true, &data[..8]), T0, usize::MAX, &mut st),
            None
        );
        assert_eq!(
            d.add(frag(1, 0, true, &data[..8]), T0, usize::MAX, &mut st),
            None
        );
        let got = d.add(frag(1, 8, false, &data[8..]), T0, usize::MAX, &mut st);
        assert_eq!(got.expect("complete").payload, data);
        assert_eq!(st.total_drops(), 0);
    }

    #[test]
    fn overlap_voids_the_datagram() {
        let data = [7u8; 24];
        let mut d = pool();
        let mut st = Stats::default();
        assert_eq!(
            d.add(frag(1, 0, true, &data[..16]), T0, usize::MAX, &mut st),
            None
        );
        assert_eq!(
            d.add(frag(1, 8, false, &data[..16]), T0, usize::MAX, &mut st),
            None
        );
        assert_eq!(st.drops(DropReason::BadFragment), 1);
        assert_eq!(d.pending(), 0);
        assert_eq!(d.held(), 0);
    }

    #[test]
    fn inconsistent_fragments_are_bad() {
        let data = [7u8; 24];
        let mut d = pool();
        let mut st = Stats::default();
        // A middle fragment whose length is not a multiple of 8.
        assert_eq!(
            d.add(frag(1, 0, true, &data[..5]), T0, usize::MAX, &mut st),
            None
        );
        // Two different last fragments.
        assert_eq!(
            d.add(frag(2, 8, false, &data[..8]), T0, usize::MAX, &mut st),
            None
        );
        assert_eq!(
            d.add(frag(2, 24, false, &data[..8]), T0, usize::MAX, &mut st),
            None
        );
        // Past the maximum datagram size.
        let big = vec![0u8; 2000];
        assert_eq!(
            d.add(frag(3, 65528, true, &big), T0, usize::MAX, &mut st),
            None
        );
        assert_eq!(st.drops(DropReason::BadFragment), 3);
        assert_eq!(d.pending(), 0);
        assert_eq!(d.held(), 0);
    }

    #[test]
    fn timeout_expires_and_counts() {
        let data = [0u8; 8];
        let mut d = pool();
        let mut st = Stats::default();
        d.add(frag(1, 0, true, &data), T0, usize::MAX, &mut st);
        d.add(
            frag(2, 0, true, &data),
            T0.saturating_add(Duration::from_secs(10)),
            usize::MAX,
            &mut st,
        );
        assert_eq!(
            d.next_deadline(),
            Some(T0.saturating_add(Duration::from_secs(30)))
        );
        d.expire(T0.saturating_add(Duration::from_secs(29)), &mut st);
        assert_eq!(d.pending(), 2);
        d.expire(T0.saturating_add(Duration::from_secs(30)), &mut st);
        assert_eq!(d.pending(), 1);
        assert_eq!(st.drops(DropReason::ReassemblyTimeout), 1);
        // The late half of datagram 1 starts a new, incomplete datagram.
        assert_eq!(
            d.add(
                frag(1, 8, false, &data),
                T0.saturating_add(Duration::from_secs(31)),
                usize::MAX,
                &mut st
            ),
            None
        );
        d.expire(Timestamp::from_nanos(i64::MAX), &mut st);
        assert_eq!(st.drops(DropReason::ReassemblyTimeout), 3);
        assert_eq!(d.held(), 0);
    }

    #[test]
    fn byte_limit_refuses() {
        let mut d = Defragmenter::new(DATAGRAM_OVERHEAD * 2 + 1500, Duration::from_secs(30));
        let mut st = Stats::default();
        let data = vec![1u8; 1000];
        assert_eq!(
            d.add(frag(1, 0, true, &data[..1000]), T0, usize::MAX, &mut st),
            None
        );
        assert_eq!(
            d.add(frag(2, 0, true, &data[..1000]), T0, usize::MAX, &mut st),
            None
        );
        assert_eq!(st.drops(DropReason::ReassemblyLimit), 1);
        assert_eq!(d.pending(), 1);
        // A fragment far out needs the whole buffer up to its end.
        assert_eq!(
            d.add(frag(3, 60000, false, &data[..8]), T0, usize::MAX, &mut st),
            None
        );
        assert_eq!(st.drops(DropReason::ReassemblyLimit), 2);
        assert!(d.held() <= DATAGRAM_OVERHEAD * 2 + 1500);
    }

    #[test]
    fn too_many_fragments_refused() {
        let mut d = pool();
        let mut st = Stats::default();
        let data = [0u8; 8];
        for i in 0..=MAX_FRAGMENTS as u16 {
            d.add(frag(1, i * 16, true, &data), T0, usize::MAX, &mut st);
        }
        assert_eq!(st.drops(DropReason::ReassemblyLimit), 1);
    }
}
