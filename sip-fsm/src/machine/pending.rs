//! The reorder buffer: packets waiting to be processed in timestamp order.
//!
//! A packet is not cloned in (the capture node name is a `String`, which
//! would allocate): what the machine reads of it (time, addresses, capture
//! point, payload) goes into an entry whose buffers are reused. The payload
//! is shared, not copied, when the packet's [`Bytes`] is already shared
//! (the frame decoder carves payloads out of shared blocks): taking it is a
//! reference count. A payload that is the only handle on its bytes (built
//! from a `Vec`, as TCP reassembly and tests do) would allocate on its
//! first clone, so it is copied into the entry's own buffer instead.
//! Entries processed go back to a spare list, their payload handle dropped
//! (so a spare entry does not keep a decoder block alive), and are refilled
//! by later packets: once the buffer has grown to the traffic's working
//! size a packet costs no allocation.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use capture::{SipPacket, Timestamp};

use crate::scan::Prescan;

/// A packet waiting in the reorder buffer.
#[derive(Debug)]
pub(super) struct Pending {
    pub ts: Timestamp,
    pub src: SocketAddr,
    pub dst: SocketAddr,
    capture_id: Option<u32>,
    /// The HEP node name, when `has_node`; the buffer is kept when not.
    node: String,
    has_node: bool,
    /// The packet's payload, shared with the packet (when `!owned`).
    shared: Bytes,
    /// A copy of the payload (when `owned`); the buffer is kept when not.
    own: Vec<u8>,
    owned: bool,
    /// The payload's scan when it came with the packet
    /// ([`DialogMachine::handle_scanned`](super::DialogMachine::handle_scanned)).
    pub pre: Option<Prescan>,
}

impl Pending {
    fn new(pkt: &SipPacket, ts: Timestamp, pre: Option<&Prescan>) -> Self {
        let mut p = Pending {
            ts,
            src: pkt.src,
            dst: pkt.dst,
            capture_id: None,
            node: String::new(),
            has_node: false,
            shared: Bytes::new(),
            own: Vec::new(),
            owned: false,
            pre: None,
        };
        p.fill(pkt, ts, pre);
        p
    }

    /// Copies `pkt` (and its scan, if any) in, taken at `ts`, reusing the
    /// buffers.
    fn fill(&mut self, pkt: &SipPacket, ts: Timestamp, pre: Option<&Prescan>) {
        self.ts = ts;
        self.pre = pre.cloned();
        self.src = pkt.src;
        self.dst = pkt.dst;
        self.capture_id = pkt.capture_id;
        self.node.clear();
        self.has_node = pkt.node.is_some();
        if let Some(n) = &pkt.node {
            self.node.push_str(n);
        }
        self.owned = pkt.payload.is_unique();
        if self.owned {
            self.shared = Bytes::new();
            self.own.clear();
            let n = pkt.payload.len();
            if self.own.capacity() < n {
                // Rounded up, so that the spare entries soon all fit the
                // traffic's packets and stop growing.
                self.own.reserve_exact(n.next_power_of_two());
            }
            self.own.extend_from_slice(&pkt.payload);
        } else {
            self.shared = pkt.payload.clone();
        }
    }

    /// The packet's payload.
    pub fn payload(&self) -> &[u8] {
        if self.owned { &self.own } else { &self.shared }
    }

    /// [`SipPacket::capture_point`] of the packet copied in, shared with
    /// the previous call's when it is the same point (`last`): calls keep
    /// one copy per point, and an address is not formatted for each.
    pub fn capture_point(&self, last: &mut PointText) -> Arc<str> {
        let same = match (&last.point, self.has_node, self.capture_id) {
            (Some(Point::Node), true, _) => *last.text == *self.node,
            (Some(Point::Id(id)), false, Some(c)) => *id == c,
            (Some(Point::Addr(a)), false, None) => *a == self.dst,
            _ => false,
        };
        if !same {
            let (point, text) = match (self.has_node, self.capture_id) {
                (true, _) => (Point::Node, self.node.as_str().into()),
                (false, Some(id)) => (Point::Id(id), id.to_string().into()),
                (false, None) => (Point::Addr(self.dst), self.dst.to_string().into()),
            };
            *last = PointText {
                point: Some(point),
                text,
            };
        }
        last.text.clone()
    }
}

/// The last capture point and its text.
#[derive(Debug, Default)]
pub(super) struct PointText {
    point: Option<Point>,
    text: Arc<str>,
}

/// Where a capture point's text came from.
#[derive(Debug, PartialEq, Eq)]
enum Point {
    Node,
    Id(u32),
    Addr(SocketAddr),
}

/// Packets sorted by (timestamp, arrival), and the spare entries.
///
/// The entries stay where they are in `entries` (a few hundred bytes each,
/// with the scan); the queue and the spare list hold their indexes, so a
/// packet going through is copied in once and never moved.
#[derive(Debug, Default)]
pub(super) struct Reorder {
    entries: Vec<Pending>,
    /// (time, entry) in processing order. Packets mostly arrive in order,
    /// so inserting is a push at the back.
    queue: VecDeque<(Timestamp, usize)>,
    spare: Vec<usize>,
}

impl Reorder {
    /// Adds `pkt` taken at `ts`, with its payload's scan if it was scanned
    /// already (equal timestamps keep their arrival order).
    pub fn push(&mut self, pkt: &SipPacket, ts: Timestamp, pre: Option<&Prescan>) {
        let i = match self.spare.pop() {
            // The spare list holds only indexes of `entries`.
            Some(i) if i < self.entries.len() => {
                self.entries[i].fill(pkt, ts, pre);
                i
            }
            _ => {
                self.entries.push(Pending::new(pkt, ts, pre));
                self.entries.len() - 1
            }
        };
        if self.queue.back().is_none_or(|(b, _)| *b <= ts) {
            self.queue.push_back((ts, i));
        } else {
            let at = self.queue.partition_point(|(q, _)| *q <= ts);
            self.queue.insert(at, (ts, i));
        }
    }

    /// The earliest packet's time.
    pub fn front(&self) -> Option<Timestamp> {
        self.queue.front().map(|(t, _)| *t)
    }

    /// The earliest packet; [`Reorder::drop_front`] then lets it go.
    pub fn front_entry(&self) -> Option<&Pending> {
        let (_, i) = self.queue.front()?;
        self.entries.get(*i)
    }

    /// Lets the earliest packet go: its entry is kept for a later packet,
    /// without the payload.
    pub fn drop_front(&mut self) {
        if let Some((_, i)) = self.queue.pop_front() {
            if let Some(p) = self.entries.get_mut(i) {
                p.shared = Bytes::new();
            }
            self.spare.push(i);
        }
    }
}
