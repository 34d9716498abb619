//! The normalised packet every ingest path produces.

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;

/// A point in time: nanoseconds since the Unix epoch, UTC.
///
/// Every core takes time as an argument; this is the type it comes in.
/// Packet timestamps come from the capture (pcap header, HEP timestamp
/// chunk), never from the local clock.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

impl Timestamp {
    /// The Unix epoch.
    pub const EPOCH: Timestamp = Timestamp(0);

    /// From nanoseconds since the epoch.
    pub const fn from_nanos(nanos: i64) -> Self {
        Timestamp(nanos)
    }

    /// From whole seconds and microseconds, as pcap and HEP carry them.
    /// Saturates instead of overflowing on absurd values.
    pub const fn from_secs_micros(secs: i64, micros: u32) -> Self {
        Timestamp(
            secs.saturating_mul(1_000_000_000)
                .saturating_add(micros as i64 * 1_000),
        )
    }

    /// From whole seconds and nanoseconds.
    pub const fn from_secs_nanos(secs: i64, nanos: u32) -> Self {
        Timestamp(
            secs.saturating_mul(1_000_000_000)
                .saturating_add(nanos as i64),
        )
    }

    /// Nanoseconds since the epoch.
    pub const fn as_nanos(self) -> i64 {
        self.0
    }

    /// Whole seconds since the epoch (floor).
    pub const fn secs(self) -> i64 {
        self.0.div_euclid(1_000_000_000)
    }

    /// Nanoseconds past [`Timestamp::secs`].
    #[allow(clippy::cast_possible_truncation)]
    pub const fn subsec_nanos(self) -> u32 {
        // rem_euclid of a positive divisor is in 0..1e9, which fits u32.
        self.0.rem_euclid(1_000_000_000) as u32
    }

    /// Microseconds past [`Timestamp::secs`].
    pub const fn subsec_micros(self) -> u32 {
        self.subsec_nanos() / 1_000
    }

    /// This time plus `d`, saturating.
    pub fn saturating_add(self, d: Duration) -> Self {
        let n = i64::try_from(d.as_nanos()).unwrap_or(i64::MAX);
        Timestamp(self.0.saturating_add(n))
    }

    /// This time minus `d`, saturating.
    pub fn saturating_sub(self, d: Duration) -> Self {
        let n = i64::try_from(d.as_nanos()).unwrap_or(i64::MAX);
        Timestamp(self.0.saturating_sub(n))
    }

    /// How long after `earlier` this is; zero if it is not later.
    pub fn since(self, earlier: Timestamp) -> Duration {
        let d = self.0.saturating_sub(earlier.0);
        Duration::from_nanos(u64::try_from(d).unwrap_or(0))
    }
}

/// How the SIP message travelled between `src` and `dst`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Transport {
    /// SIP over UDP.
    Udp,
    /// SIP over TCP.
    Tcp,
    /// SIP over TLS (only HEP can tell us; on the wire it is opaque).
    Tls,
    /// SIP over SCTP.
    Sctp,
    /// SIP over WebSocket.
    Ws,
    /// SIP over secure WebSocket.
    Wss,
}

impl Transport {
    /// Lower-case name, as printed and as in JSON.
    pub const fn as_str(self) -> &'static str {
        match self {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
            Transport::Tls => "tls",
            Transport::Sctp => "sctp",
            Transport::Ws => "ws",
            Transport::Wss => "wss",
        }
    }
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which ingest path produced a packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Source {
    /// Read from a pcap or pcapng file.
    Pcap,
    /// Read from a live interface through libpcap.
    Live,
    /// Received (or found in a capture) as HEP.
    Hep,
}

impl Source {
    /// Lower-case name, as printed and as in JSON.
    pub const fn as_str(self) -> &'static str {
        match self {
            Source::Pcap => "pcap",
            Source::Live => "live",
            Source::Hep => "hep",
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One SIP message, however it reached us.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SipPacket {
    /// When the message was seen (capture time, or the HEP timestamp).
    pub ts: Timestamp,
    /// Sender address.
    pub src: SocketAddr,
    /// Receiver address.
    pub dst: SocketAddr,
    /// Transport the SIP message used.
    pub transport: Transport,
    /// Ingest path.
    pub source: Source,
    /// HEP capture agent id, when HEP gave one.
    pub capture_id: Option<u32>,
    /// HEP capture node name, when HEP gave one.
    pub node: Option<String>,
    /// HEP correlation id, when HEP gave one.
    pub correlation_id: Option<Bytes>,
    /// Outer VLAN id, when the frame had one.
    pub vlan: Option<u16>,
    /// The whole SIP message: start line, headers and body.
    pub payload: Bytes,
}

impl SipPacket {
    /// A capture point name for this packet: the HEP node or capture id if
    /// any, else the receiving address. Used to tell copies of one message
    /// seen at several points apart.
    pub fn capture_point(&self) -> String {
        match (&self.node, self.capture_id) {
            (Some(n), _) => n.clone(),
            (None, Some(id)) => id.to_string(),
            (None, None) => self.dst.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamp_parts_round_trip() {
        let t = Timestamp::from_secs_micros(1_700_000_000, 123_456);
        assert_eq!(t.secs(), 1_700_000_000);
        assert_eq!(t.subsec_micros(), 123_456);
        assert_eq!(t.subsec_nanos(), 123_456_000);
        assert_eq!(t.as_nanos(), 1_700_000_000_123_456_000);
    }

    #[test]
    fn timestamp_before_epoch_floors() {
        let t = Timestamp::from_nanos(-1);
        assert_eq!(t.secs(), -1);
        assert_eq!(t.subsec_nanos(), 999_999_999);
    }

    #[test]
    fn since_is_zero_when_not_later() {
        let a = Timestamp::from_nanos(10);
        let b = Timestamp::from_nanos(5);
        assert_eq!(b.since(a), Duration::ZERO);
        assert_eq!(a.since(b), Duration::from_nanos(5));
    }

    #[test]
    fn saturating_add_does_not_overflow() {
        let t = Timestamp::from_nanos(i64::MAX - 1);
        assert_eq!(
            t.saturating_add(Duration::from_secs(5)).as_nanos(),
            i64::MAX
        );
    }
}
