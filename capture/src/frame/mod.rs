//! The capture-frame path: link layer, VLAN, IPv4/IPv6, IP fragment
//! reassembly, UDP, TCP stream reassembly, and HEP found inside captures.
//!
//! Sans-IO: [`FrameDecoder`] takes raw captured frames (bytes, link type,
//! capture timestamp) as libpcap hands them over and produces
//! [`crate::SipPacket`]s plus drop counters. It never reads the clock; the
//! caller drives timers with [`FrameDecoder::handle_timeout`] at the deadline
//! [`FrameDecoder::poll_timeout`] names (capture time when replaying a file).
//!
//! Header parsing (Ethernet, VLAN/QinQ, Linux SLL, IPv4/IPv6 and their
//! extension headers, UDP, TCP) is `etherparse`'s. Written here is only what
//! it lacks: the Linux SLL2 and BSD loopback headers (`link`), a bounded
//! IP reassembly policy around its `IpDefragBuf` (`defrag`), TCP stream
//! reassembly (`tcp`) and SIP message framing on streams (`sipframe`), the
//! tunnels port mirrors use (`encap`: IP-in-IP, GRE, ERSPAN, VXLAN), SIP
//! over SCTP (`sctp`) and SIP over WebSocket on TCP streams (`websocket`).
//!
//! Memory is bounded per kind (fragment bytes, streams, bytes per stream)
//! and by one budget over all of it ([`crate::ByteBudget`], which several
//! decoders and the HEP listeners can share); hitting a bound is a counted
//! [`crate::DropReason`].

use std::time::Duration;

mod arena;
mod decoder;
mod defrag;
mod encap;
#[cfg(test)]
mod encap_tests;
mod hep_glue;
mod link;
mod sctp;
mod sipframe;
mod tcp;
#[cfg(test)]
mod testutil;
mod websocket;

#[cfg(feature = "__internal-fuzz")]
pub mod fuzzing;

pub use decoder::FrameDecoder;
pub use link::LinkType;
pub(crate) use sipframe::is_sip_message;
pub use sipframe::is_token as is_sip_token;

/// Limits and settings of a [`FrameDecoder`].
#[derive(Clone, Debug)]
pub struct DecoderConfig {
    /// UDP or TCP traffic to or from these ports is HEP, not SIP
    /// (default `[9060]`).
    pub hep_ports: Vec<u16>,
    /// How HEP found inside the capture is decoded (auth key etc.).
    pub hep: crate::hep::HepConfig,
    /// Largest SIP message accepted, in bytes (default 65535). Larger UDP
    /// payloads and TCP messages count as `Oversize`.
    pub max_sip_message: usize,
    /// How long the fragments of one IP datagram may wait for the rest
    /// (default 30 s, as Linux's `ipfrag_time`).
    pub ip_fragment_timeout: Duration,
    /// Total bytes held for IP reassembly over all datagrams (default 16 MiB).
    pub max_ip_fragment_bytes: usize,
    /// TCP streams (one per direction of a connection) tracked at once
    /// (default 65536).
    pub max_tcp_streams: usize,
    /// Bytes buffered per TCP stream: unframed in-order data plus
    /// out-of-order segments (default 256 KiB).
    pub max_tcp_stream_bytes: usize,
    /// A TCP stream with no segment for this long is forgotten
    /// (default 300 s).
    pub tcp_idle_timeout: Duration,
    /// How long out-of-order TCP data may wait for a missing segment before
    /// the hole is skipped as a `TcpGap` (default 5 s). Captures lose
    /// segments that the endpoints never retransmit, so without this a
    /// quiet connection would hold its later messages until it goes idle.
    pub tcp_gap_timeout: Duration,
    /// The byte budget for everything reassembly holds: IP fragments and
    /// all TCP streams together (default 256 MiB). A stream or datagram
    /// that would take the total past it is dropped as `ReassemblyBudget`.
    /// Used when `budget` is `None`.
    pub max_total_bytes: usize,
    /// A budget shared with other holders (other decoders, the HEP
    /// listeners' TCP framers), so that one limit bounds them all; its
    /// limit replaces `max_total_bytes`. `None` (the default): a budget of
    /// `max_total_bytes` of the decoder's own. Clones of a config share
    /// the budget.
    pub budget: Option<crate::ByteBudget>,
}

impl Default for DecoderConfig {
    fn default() -> Self {
        DecoderConfig {
            hep_ports: vec![9060],
            hep: crate::hep::HepConfig::default(),
            max_sip_message: 65535,
            ip_fragment_timeout: Duration::from_secs(30),
            max_ip_fragment_bytes: 16 * 1024 * 1024,
            max_tcp_streams: 65536,
            max_tcp_stream_bytes: 256 * 1024,
            tcp_idle_timeout: Duration::from_secs(300),
            tcp_gap_timeout: Duration::from_secs(5),
            max_total_bytes: 256 * 1024 * 1024,
            budget: None,
        }
    }
}
