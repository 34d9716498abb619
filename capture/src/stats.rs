//! Named counters for everything the capture layer reads and drops.
//!
//! Every input that does not become a [`crate::SipPacket`] is counted under
//! exactly one [`DropReason`]; `accurate sniff` prints them all by name.

use std::fmt;

macro_rules! drop_reasons {
    ($( $(#[$doc:meta])* $variant:ident => $name:literal, )*) => {
        /// Why an input (frame, datagram, HEP packet, stream bytes, connection)
        /// was dropped.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum DropReason {
            $( $(#[$doc])* $variant, )*
        }

        impl DropReason {
            /// Every reason, in a stable order (the order counters print in).
            pub const ALL: &'static [DropReason] = &[$(DropReason::$variant,)*];

            /// The counter's name: snake_case, stable, used in logs and metrics.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $( DropReason::$variant => $name, )*
                }
            }
        }
    };
}

drop_reasons! {
    /// A payload that is not a SIP message: UDP, TCP, SCTP or WebSocket
    /// data, or a HEP packet carrying something else (RTCP, logs, QoS
    /// reports, keep-alives: any HEPv3 protocol type but 1).
    NotSip => "not_sip",
    /// A link-layer frame that carries neither IPv4 nor IPv6.
    NotIp => "not_ip",
    /// An IP packet that carries neither UDP nor TCP.
    NotUdpTcp => "not_udp_tcp",
    /// A capture link type we do not decode.
    UnsupportedLinkType => "unsupported_link_type",
    /// Shorter than its headers say (snap length, cut datagram, short header).
    Truncated => "truncated",
    /// A malformed link, IP, UDP or TCP header.
    BadHeader => "bad_header",
    /// A malformed HEP packet (bad magic, length or chunk).
    BadHep => "bad_hep",
    /// A HEP packet whose auth key did not match the configured one.
    WrongAuthKey => "wrong_auth_key",
    /// A HEP compressed payload that did not inflate.
    BadCompression => "bad_compression",
    /// IP fragments or partial TCP data that waited longer than allowed.
    ReassemblyTimeout => "reassembly_timeout",
    /// Reassembly state refused because a configured memory limit was reached
    /// (IP fragment bytes, TCP streams, bytes per TCP stream).
    ReassemblyLimit => "reassembly_limit",
    /// A TCP stream, IP datagram or HEP-over-TCP connection dropped because
    /// the global reassembly byte budget (`max-total-bytes`) ran out.
    ReassemblyBudget => "reassembly_budget",
    /// Overlapping or inconsistent IP fragments.
    BadFragment => "bad_fragment",
    /// TCP stream bytes skipped because a segment was never seen.
    TcpGap => "tcp_gap",
    /// A SIP message over the configured maximum size.
    Oversize => "oversize",
    /// A SIP message over TCP with a missing or unusable Content-Length:
    /// its headers are still passed on, and what follows them up to the
    /// next start line (its body, if any) is skipped.
    BadContentLength => "bad_content_length",
    /// A HEP-over-TCP stream with an impossible length field (connection closed).
    BadHepFrame => "bad_hep_frame",
    /// A malformed or unsupported GRE or ERSPAN header.
    BadGre => "bad_gre",
    /// A malformed VXLAN header (UDP port 4789).
    BadVxlan => "bad_vxlan",
    /// Tunnels nested deeper than the decoder follows.
    EncapTooDeep => "encap_too_deep",
    /// A malformed SCTP packet or chunk.
    BadSctp => "bad_sctp",
    /// A piece of a fragmented SCTP user message (not reassembled).
    SctpFragment => "sctp_fragment",
    /// A malformed WebSocket frame on a SIP-over-WebSocket stream (the
    /// stream is ignored from there on).
    BadWebsocket => "bad_websocket",
    /// A HEP TCP connection refused because `tcp-max-connections` were open.
    HepConnLimit => "hep_conn_limit",
    /// A HEP TCP connection closed after `tcp-idle-timeout-secs` without data.
    HepIdleTimeout => "hep_idle_timeout",
}

impl fmt::Display for DropReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Counters of one ingest path (or the sum of several).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Frames, datagrams or HEP packets read.
    pub packets: u64,
    /// Bytes read.
    pub bytes: u64,
    /// SIP messages produced.
    pub sip: u64,
    /// Bytes received and thrown away unread as packets: partial frames of
    /// HEP-over-TCP connections closed for a bad frame, idleness or the
    /// byte budget, and frames that did not decode.
    pub discarded_bytes: u64,
    drops: Vec<u64>,
}

impl Stats {
    /// Count one drop.
    pub fn drop(&mut self, reason: DropReason) {
        self.drop_n(reason, 1);
    }

    /// Count `n` drops of one reason.
    pub fn drop_n(&mut self, reason: DropReason, n: u64) {
        if self.drops.is_empty() {
            self.drops = vec![0; DropReason::ALL.len()];
        }
        let i = DropReason::ALL
            .iter()
            .position(|r| *r == reason)
            // ALL lists every variant, so the position always exists.
            .unwrap_or(0);
        self.drops[i] += n;
    }

    /// How many were dropped for `reason`.
    pub fn drops(&self, reason: DropReason) -> u64 {
        DropReason::ALL
            .iter()
            .position(|r| *r == reason)
            .and_then(|i| self.drops.get(i).copied())
            .unwrap_or(0)
    }

    /// Total drops over every reason.
    pub fn total_drops(&self) -> u64 {
        self.drops.iter().sum()
    }

    /// Every reason with its count, zero counts included.
    pub fn drop_counts(&self) -> impl Iterator<Item = (DropReason, u64)> + '_ {
        DropReason::ALL.iter().map(|r| (*r, self.drops(*r)))
    }

    /// What these counters gained since `earlier` (an older copy of the
    /// same counters); a counter that went down gives 0.
    pub fn since(&self, earlier: &Stats) -> Stats {
        let mut d = Stats {
            packets: self.packets.saturating_sub(earlier.packets),
            bytes: self.bytes.saturating_sub(earlier.bytes),
            sip: self.sip.saturating_sub(earlier.sip),
            discarded_bytes: self.discarded_bytes.saturating_sub(earlier.discarded_bytes),
            drops: Vec::new(),
        };
        for (r, n) in self.drop_counts() {
            let n = n.saturating_sub(earlier.drops(r));
            if n > 0 {
                d.drop_n(r, n);
            }
        }
        d
    }

    /// Adds another set of counters to this one.
    pub fn merge(&mut self, other: &Stats) {
        self.packets += other.packets;
        self.bytes += other.bytes;
        self.sip += other.sip;
        self.discarded_bytes += other.discarded_bytes;
        for (r, n) in other.drop_counts() {
            if n > 0 {
                self.drop_n(r, n);
            }
        }
    }
}

/// Counters several tasks add to while they run, so a server can read
/// the running totals (each task still returns its own [`Stats`] at the
/// end). Clones share the counters. A task publishes what it gained since
/// its last publication with [`StatsPublisher`].
#[derive(Clone, Debug, Default)]
pub struct SharedStats(std::sync::Arc<std::sync::Mutex<Stats>>);

impl SharedStats {
    /// Adds counters.
    pub fn add(&self, s: &Stats) {
        if let Ok(mut t) = self.0.lock() {
            t.merge(s);
        }
    }

    /// The totals so far.
    pub fn snapshot(&self) -> Stats {
        self.0.lock().map(|t| t.clone()).unwrap_or_default()
    }
}

/// One task's link to a [`SharedStats`]: remembers what was published.
#[derive(Debug, Default)]
pub struct StatsPublisher {
    to: Option<SharedStats>,
    last: Stats,
}

impl StatsPublisher {
    /// Publishes to `to` (nothing when `None`).
    pub fn new(to: Option<SharedStats>) -> Self {
        StatsPublisher {
            to,
            last: Stats::default(),
        }
    }

    /// Adds what `now` (this task's running counters) gained since the
    /// last call.
    pub fn publish(&mut self, now: &Stats) {
        if let Some(to) = &self.to {
            to.add(&now.since(&self.last));
            self.last.clone_from(now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_by_reason_and_merges() {
        let mut a = Stats::default();
        a.drop(DropReason::BadHep);
        a.drop(DropReason::BadHep);
        a.drop(DropReason::WrongAuthKey);
        let mut b = Stats {
            packets: 3,
            ..Stats::default()
        };
        b.drop(DropReason::BadHep);
        b.merge(&a);
        assert_eq!(b.drops(DropReason::BadHep), 3);
        assert_eq!(b.drops(DropReason::WrongAuthKey), 1);
        assert_eq!(b.drops(DropReason::NotSip), 0);
        assert_eq!(b.total_drops(), 4);
        assert_eq!(b.packets, 3);
    }

    #[test]
    fn publisher_adds_only_what_is_new() {
        let shared = SharedStats::default();
        let mut p = StatsPublisher::new(Some(shared.clone()));
        let mut s = Stats {
            packets: 2,
            ..Stats::default()
        };
        s.drop(DropReason::BadHep);
        p.publish(&s);
        p.publish(&s);
        s.packets = 5;
        s.drop(DropReason::BadHep);
        s.drop(DropReason::NotSip);
        p.publish(&s);
        let t = shared.snapshot();
        assert_eq!(t.packets, 5);
        assert_eq!(t.drops(DropReason::BadHep), 2);
        assert_eq!(t.drops(DropReason::NotSip), 1);
        assert_eq!(t, s);
    }

    #[test]
    fn names_are_unique() {
        let mut names: Vec<_> = DropReason::ALL.iter().map(|r| r.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), DropReason::ALL.len());
    }
}
