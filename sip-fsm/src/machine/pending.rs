//! The reorder buffer: packets waiting to be processed in timestamp order.
//!
//! A packet is not cloned in (a `Bytes` clone of a payload built from a
//! `Vec` allocates, and the capture node name is a `String`): what the
//! machine reads of it (time, addresses, capture point, payload) is copied
//! into an entry whose buffers are reused. Entries processed go back to a
//! spare list and are refilled by later packets, so once the buffer has
//! grown to the traffic's working size a packet costs a copy of its bytes
//! and no allocation.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;

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
    pub payload: Vec<u8>,
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
            payload: Vec::new(),
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
        self.payload.clear();
        let n = pkt.payload.len();
        if self.payload.capacity() < n {
            // Rounded up, so that the spare entries soon all fit the
            // traffic's packets and stop growing.
            self.payload.reserve_exact(n.next_power_of_two());
        }
        self.payload.extend_from_slice(&pkt.payload);
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
#[derive(Debug, Default)]
pub(super) struct Reorder {
    /// Packets mostly arrive in order, so inserting is a push at the back.
    queue: VecDeque<Pending>,
    spare: Vec<Pending>,
}

impl Reorder {
    /// Adds a copy of `pkt` taken at `ts`, with its payload's scan if it
    /// was scanned already (equal timestamps keep their arrival order).
    pub fn push(&mut self, pkt: &SipPacket, ts: Timestamp, pre: Option<&Prescan>) {
        let p = match self.spare.pop() {
            Some(mut p) => {
                p.fill(pkt, ts, pre);
                p
            }
            None => Pending::new(pkt, ts, pre),
        };
        if self.queue.back().is_none_or(|b| b.ts <= ts) {
            self.queue.push_back(p);
        } else {
            let at = self.queue.partition_point(|q| q.ts <= ts);
            self.queue.insert(at, p);
        }
    }

    /// The earliest packet's time.
    pub fn front(&self) -> Option<Timestamp> {
        self.queue.front().map(|p| p.ts)
    }

    /// Takes the earliest packet; hand it back with [`Reorder::recycle`].
    pub fn pop(&mut self) -> Option<Pending> {
        self.queue.pop_front()
    }

    /// Keeps a processed entry's buffers for a later packet.
    pub fn recycle(&mut self, p: Pending) {
        self.spare.push(p);
    }
}
