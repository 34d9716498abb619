//! HEP (Homer Encapsulation Protocol) v1, v2 and v3: decode, encode, and
//! stream framing for HEP over TCP.
//!
//! Sans-IO: bytes and a fallback receive time in, [`HepPacket`] or
//! [`SipPacket`] out. Nothing here reads the clock or touches a socket.
//!
//! - [`decode`] / [`decode_bytes`] read any version into a [`HepPacket`];
//!   `decode_bytes` slices the payload out of the input without copying,
//!   and [`decode_ref`] borrows every byte field (no allocation at all).
//! - [`decode_sip`] / [`decode_sip_bytes`] are the whole ingest pipeline for
//!   one HEP datagram or TCP frame: decode, auth key, SIP-only, inflate,
//!   size limit, conversion to [`SipPacket`]. Failures are [`DropReason`]s.
//! - [`encode_v3`] writes every chunk the decoder reads (tests, replay to a
//!   collector); [`encode_v1v2`] writes Kamailio's v1/v2 layout (tests).
//! - [`HepStreamFramer`] splits a HEPv3-over-TCP byte stream into packets.
//!
//! Wire formats: HEPv3 per the sipcapture HEP3 specification (a `HEP3`
//! magic, a 16-bit total length, then vendor/type/length chunks, all network
//! byte order). HEPv1/v2 as Kamailio's siptrace writes them: a fixed
//! header, the addresses, in v2 a little-endian time header, then the SIP
//! message (layout in `v12.rs`).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::ops::Range;

use bytes::Bytes;

use crate::{DropReason, SipPacket, Source, Timestamp, Transport};

mod compress;
mod encode;
mod error;
mod framer;
mod v12;
mod v3;

#[cfg(feature = "__internal-fuzz")]
pub mod fuzzing;

pub use compress::{compress_payload, inflate};
pub use encode::{encode_v1v2, encode_v3, try_encode_v3};
pub use error::HepError;
pub use framer::HepStreamFramer;

/// HEP protocol type (chunk 0x000b) of a SIP payload.
pub const PROTO_TYPE_SIP: u8 = 1;

/// Linux `AF_INET`, the HEP address family of IPv4.
pub const AF_INET: u8 = 2;
/// Linux `AF_INET6`, the HEP address family of IPv6.
pub const AF_INET6: u8 = 10;

/// Kamailio's stand-in IP protocol (`IPPROTO_IDP`, 22) for SIP over TLS, WS
/// and WSS: its siptrace cannot tell them apart on the HEP wire.
pub const IPPROTO_KAMAILIO_TLS_WS: u8 = 22;

/// Settings of [`decode_sip`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HepConfig {
    /// When set, packets whose auth key chunk (0x000e) is missing or
    /// different are dropped as [`DropReason::WrongAuthKey`]. HEPv1/v2 carry
    /// no key, so they are all dropped when a key is configured.
    pub auth_key: Option<Vec<u8>>,
    /// Largest SIP payload accepted, in bytes (default 65535), also the cap
    /// on inflating a compressed payload. Larger payloads count as
    /// [`DropReason::Oversize`].
    pub max_payload: usize,
}

impl Default for HepConfig {
    fn default() -> Self {
        HepConfig {
            auth_key: None,
            max_payload: 65535,
        }
    }
}

/// Which HEP version a packet was encoded with.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum HepVersion {
    /// HEPv1: fixed header, no timestamp.
    V1,
    /// HEPv2: v1 plus a timestamp and a 16-bit capture id.
    V2,
    /// HEPv3: chunks.
    #[default]
    V3,
}

/// One decoded HEP packet: every generic chunk the decoder knows, each
/// `None` when absent.
///
/// `B` is the type of the byte-string fields. Users see `HepPacket` (with
/// [`Bytes`]); the decoder itself first produces `HepPacket<&[u8]>`
/// ([`decode_ref`]), slices of the input, so it can check and drop packets
/// before copying anything. HEPv3 chunk numbers are given per field; aliases used by
/// heplify are noted ("node id", "node password", "node name").
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HepPacket<B = Bytes> {
    /// The version the packet was encoded with.
    pub version: HepVersion,
    /// When the message was captured: the timestamp chunks if present (and
    /// HEPv2's time header), else the fallback time passed to the decoder.
    pub ts: Timestamp,
    /// 0x0001 IP protocol family (2 = IPv4, 10 = IPv6 on Linux senders).
    pub ip_family: Option<u8>,
    /// 0x0002 IP protocol id (17 UDP, 6 TCP, 132 SCTP, 22 Kamailio TLS/WS).
    pub ip_proto: Option<u8>,
    /// 0x0003 IPv4 source address.
    pub src_ipv4: Option<Ipv4Addr>,
    /// 0x0004 IPv4 destination address.
    pub dst_ipv4: Option<Ipv4Addr>,
    /// 0x0005 IPv6 source address.
    pub src_ipv6: Option<Ipv6Addr>,
    /// 0x0006 IPv6 destination address.
    pub dst_ipv6: Option<Ipv6Addr>,
    /// 0x0007 source port.
    pub src_port: Option<u16>,
    /// 0x0008 destination port.
    pub dst_port: Option<u16>,
    /// 0x0009 timestamp, seconds since the Unix epoch.
    pub ts_secs: Option<u32>,
    /// 0x000a timestamp, microseconds past `ts_secs`.
    pub ts_micros: Option<u32>,
    /// 0x000b protocol type of the payload (1 = SIP, 5 = RTCP, 100 = log…).
    pub proto_type: Option<u8>,
    /// 0x000c capture agent id ("node id").
    pub capture_id: Option<u32>,
    /// 0x000d keep-alive timer, seconds.
    pub keep_alive: Option<u16>,
    /// 0x000e authentication key ("node password").
    pub auth_key: Option<B>,
    /// 0x000f captured payload.
    pub payload: Option<B>,
    /// 0x0010 compressed payload, as on the wire (zlib, gzip or raw
    /// deflate; see [`inflate`]).
    pub compressed_payload: Option<B>,
    /// 0x0011 correlation id.
    pub correlation_id: Option<B>,
    /// 0x0012 VLAN id.
    pub vlan: Option<u16>,
    /// 0x0013 group id, which heplify and heplify-server use as the node
    /// name.
    pub node_name: Option<B>,
    /// 0x0014 source MAC address.
    pub src_mac: Option<[u8; 6]>,
    /// 0x0015 destination MAC address.
    pub dst_mac: Option<[u8; 6]>,
    /// 0x0016 Ethernet type.
    pub eth_type: Option<u16>,
    /// 0x0017 TCP flags.
    pub tcp_flags: Option<u8>,
    /// 0x0018 IP TOS.
    pub ip_tos: Option<u8>,
}

impl<B> HepPacket<B> {
    /// The same packet with every byte-string field converted by `f`.
    pub fn map_bytes<C>(self, mut f: impl FnMut(B) -> C) -> HepPacket<C> {
        HepPacket {
            version: self.version,
            ts: self.ts,
            ip_family: self.ip_family,
            ip_proto: self.ip_proto,
            src_ipv4: self.src_ipv4,
            dst_ipv4: self.dst_ipv4,
            src_ipv6: self.src_ipv6,
            dst_ipv6: self.dst_ipv6,
            src_port: self.src_port,
            dst_port: self.dst_port,
            ts_secs: self.ts_secs,
            ts_micros: self.ts_micros,
            proto_type: self.proto_type,
            capture_id: self.capture_id,
            keep_alive: self.keep_alive,
            auth_key: self.auth_key.map(&mut f),
            payload: self.payload.map(&mut f),
            compressed_payload: self.compressed_payload.map(&mut f),
            correlation_id: self.correlation_id.map(&mut f),
            vlan: self.vlan,
            node_name: self.node_name.map(&mut f),
            src_mac: self.src_mac,
            dst_mac: self.dst_mac,
            eth_type: self.eth_type,
            tcp_flags: self.tcp_flags,
            ip_tos: self.ip_tos,
        }
    }

    /// Sender and receiver addresses, picked by the address family: IPv4
    /// chunks for family 2, IPv6 chunks for the IPv6 families, else
    /// whichever pair is complete (IPv4 first). Missing ports read as 0.
    pub fn socket_addrs(&self) -> Option<(SocketAddr, SocketAddr)> {
        pick_addrs(
            self.ip_family,
            (self.src_ipv4, self.dst_ipv4),
            (self.src_ipv6, self.dst_ipv6),
            (self.src_port, self.dst_port),
        )
    }

    /// The SIP transport named by the IP protocol id. Kamailio writes 22
    /// (`IPPROTO_IDP`) for TLS, WS and WSS alike; we call that TLS, the
    /// common case. Missing or unknown ids read as UDP, the usual HEP case,
    /// rather than losing a billable message over a label.
    pub fn transport(&self) -> Transport {
        transport_of(self.ip_proto)
    }
}

/// [`HepPacket::socket_addrs`] of these fields.
#[inline]
fn pick_addrs(
    family: Option<u8>,
    (src4, dst4): (Option<Ipv4Addr>, Option<Ipv4Addr>),
    (src6, dst6): (Option<Ipv6Addr>, Option<Ipv6Addr>),
    (sport, dport): (Option<u16>, Option<u16>),
) -> Option<(SocketAddr, SocketAddr)> {
    let v4 = match (src4, dst4) {
        (Some(s), Some(d)) => Some((IpAddr::V4(s), IpAddr::V4(d))),
        _ => None,
    };
    let v6 = match (src6, dst6) {
        (Some(s), Some(d)) => Some((IpAddr::V6(s), IpAddr::V6(d))),
        _ => None,
    };
    let (s, d) = match family {
        Some(AF_INET) => v4,
        Some(f) if is_af_inet6(f) => v6,
        _ => v4.or(v6),
    }?;
    Some((
        SocketAddr::new(s, sport.unwrap_or(0)),
        SocketAddr::new(d, dport.unwrap_or(0)),
    ))
}

/// [`HepPacket::transport`] of this IP protocol id.
#[inline]
fn transport_of(ip_proto: Option<u8>) -> Transport {
    match ip_proto {
        Some(6) => Transport::Tcp,
        Some(132) => Transport::Sctp,
        Some(IPPROTO_KAMAILIO_TLS_WS) => Transport::Tls,
        _ => Transport::Udp,
    }
}

/// Whether `f` is an `AF_INET6` value of some OS (Linux 10, Windows 23,
/// OpenBSD/NetBSD 24, FreeBSD 28, macOS 30): HEP carries the sender's value.
pub(crate) const fn is_af_inet6(f: u8) -> bool {
    matches!(f, 10 | 23 | 24 | 28 | 30)
}

/// The timestamp from seconds and microseconds chunks, else `fallback`.
pub(crate) fn resolve_ts(secs: Option<u32>, micros: Option<u32>, fallback: Timestamp) -> Timestamp {
    match secs {
        Some(s) => Timestamp::from_secs_micros(i64::from(s), micros.unwrap_or(0)),
        None => fallback,
    }
}

/// Decodes one HEP packet of any version, byte fields borrowed from `buf`.
#[inline]
fn parse(buf: &[u8], fallback_ts: Timestamp) -> Result<HepPacket<&[u8]>, HepError> {
    match buf.first() {
        None => Err(HepError::Truncated { need: 1, have: 0 }),
        Some(b'H') => v3::parse(buf, fallback_ts),
        Some(1) | Some(2) => parse_v12(buf, fallback_ts),
        Some(&b) => Err(HepError::BadMagic(b)),
    }
}

/// [`v12::parse`] with its offsets made slices; out of line, so the HEPv3
/// path does not share its copying of the packet.
#[inline(never)]
fn parse_v12(buf: &[u8], fallback_ts: Timestamp) -> Result<HepPacket<&[u8]>, HepError> {
    Ok(v12::parse(buf, fallback_ts)?.map_bytes(|r| slice(buf, r)))
}

/// The bytes of a range the decoder produced (always in bounds).
fn slice(buf: &[u8], r: Range<usize>) -> &[u8] {
    buf.get(r).unwrap_or_default()
}

/// Decodes one HEP packet (v1, v2 or v3) without copying anything: the
/// byte fields borrow from `buf`.
///
/// `fallback_ts` (normally the receive time) becomes [`HepPacket::ts`] when
/// the packet carries no timestamp, as in HEPv1.
pub fn decode_ref(buf: &[u8], fallback_ts: Timestamp) -> Result<HepPacket<&[u8]>, HepError> {
    parse(buf, fallback_ts)
}

/// Decodes one HEP packet (v1, v2 or v3), copying its byte fields.
///
/// `fallback_ts` (normally the receive time) becomes [`HepPacket::ts`] when
/// the packet carries no timestamp, as in HEPv1.
pub fn decode(buf: &[u8], fallback_ts: Timestamp) -> Result<HepPacket, HepError> {
    Ok(parse(buf, fallback_ts)?.map_bytes(Bytes::copy_from_slice))
}

/// [`decode`] without copying: the byte fields are slices of `buf`.
pub fn decode_bytes(buf: Bytes, fallback_ts: Timestamp) -> Result<HepPacket, HepError> {
    Ok(parse(&buf, fallback_ts)?.map_bytes(|s| buf.slice_ref(s)))
}

/// Full pipeline for one HEP datagram/frame: decode, auth check, inflate,
/// require a SIP payload (protocol type 1), convert to SipPacket
/// (source = Source::Hep).
///
/// Copies the SIP payload out of `buf` (one allocation for a typical packet);
/// callers holding [`Bytes`] should use [`decode_sip_bytes`].
pub fn decode_sip(
    buf: &[u8],
    fallback_ts: Timestamp,
    cfg: &HepConfig,
) -> Result<SipPacket, DropReason> {
    decode_sip_with(buf, fallback_ts, cfg, Bytes::copy_from_slice)
}

/// [`decode_sip`] with the copies of the payload and correlation id made
/// by `copy` (the frame decoder copies into its arena).
pub(crate) fn decode_sip_with(
    buf: &[u8],
    fallback_ts: Timestamp,
    cfg: &HepConfig,
    copy: impl FnMut(&[u8]) -> Bytes,
) -> Result<SipPacket, DropReason> {
    let raw = parse(buf, fallback_ts).map_err(|e| e.drop_reason())?;
    to_sip(raw, cfg, copy)
}

/// [`decode_sip`] without copying: the payload and correlation id are
/// slices of `buf` (a reference count, no allocation).
pub fn decode_sip_bytes(
    buf: Bytes,
    fallback_ts: Timestamp,
    cfg: &HepConfig,
) -> Result<SipPacket, DropReason> {
    let raw = parse(&buf, fallback_ts).map_err(|e| e.drop_reason())?;
    to_sip(raw, cfg, |s| buf.slice_ref(s))
}

/// Checks a decoded packet against `cfg` and makes it a [`SipPacket`].
/// Cheap checks come first so dropped packets cost no copy.
#[inline]
fn to_sip(
    raw: HepPacket<&[u8]>,
    cfg: &HepConfig,
    mut bytes: impl FnMut(&[u8]) -> Bytes,
) -> Result<SipPacket, DropReason> {
    if let Some(want) = &cfg.auth_key {
        if !raw.auth_key.is_some_and(|g| ct_eq(g, want)) {
            return Err(DropReason::WrongAuthKey);
        }
    }
    // v1/v2 carry nothing but SIP; v3 says so in chunk 0x000b.
    if raw.version == HepVersion::V3 && raw.proto_type != Some(PROTO_TYPE_SIP) {
        return Err(DropReason::NotSip);
    }
    let (src, dst) = pick_addrs(
        raw.ip_family,
        (raw.src_ipv4, raw.dst_ipv4),
        (raw.src_ipv6, raw.dst_ipv6),
        (raw.src_port, raw.dst_port),
    )
    .ok_or(DropReason::BadHep)?;
    let payload = match (raw.payload, raw.compressed_payload) {
        (Some(r), _) if r.len() > cfg.max_payload => return Err(DropReason::Oversize),
        (Some([]), _) => return Err(DropReason::NotSip),
        (Some(r), _) => {
            // Only a SIP message is one, whatever the protocol type says
            // (HEPv1/v2 have no type; agents label things wrongly): checked
            // before the copy.
            if !crate::frame::is_sip_message(r) {
                return Err(DropReason::NotSip);
            }
            bytes(r)
        }
        (None, Some(r)) => {
            let p = Bytes::from(inflate(r, cfg.max_payload).map_err(|e| e.drop_reason())?);
            if !crate::frame::is_sip_message(&p) {
                return Err(DropReason::NotSip);
            }
            p
        }
        (None, None) => return Err(DropReason::NotSip),
    };
    Ok(SipPacket {
        ts: raw.ts,
        src,
        dst,
        transport: transport_of(raw.ip_proto),
        source: Source::Hep,
        capture_id: raw.capture_id,
        // The node name is the one owned copy: `SipPacket::node` is a
        // `String`, and most senders do not set it.
        node: raw
            .node_name
            .map(|r| String::from_utf8_lossy(r).into_owned()),
        correlation_id: raw.correlation_id.map(&mut bytes),
        vlan: raw.vlan,
        payload,
    })
}

/// Compares two keys in time independent of where they differ, so the auth
/// key cannot be guessed byte by byte from response timing.
fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sip_packet() -> HepPacket {
        HepPacket {
            version: HepVersion::V3,
            ts: Timestamp::from_secs_micros(1_700_000_000, 250_000),
            ip_family: Some(AF_INET),
            ip_proto: Some(17),
            src_ipv4: Some(Ipv4Addr::new(10, 0, 0, 1)),
            dst_ipv4: Some(Ipv4Addr::new(10, 0, 0, 2)),
            src_port: Some(5060),
            dst_port: Some(5080),
            ts_secs: Some(1_700_000_000),
            ts_micros: Some(250_000),
            proto_type: Some(PROTO_TYPE_SIP),
            capture_id: Some(2001),
            payload: Some(Bytes::from_static(b"OPTIONS sip:a@b SIP/2.0\r\n\r\n")),
            ..HepPacket::default()
        }
    }

    fn sip(p: &HepPacket, cfg: &HepConfig) -> Result<SipPacket, DropReason> {
        decode_sip(&encode_v3(p), Timestamp::EPOCH, cfg)
    }

    #[test]
    fn decode_sip_converts_every_field() {
        let mut p = sip_packet();
        p.correlation_id = Some(Bytes::from_static(b"call-1"));
        p.node_name = Some(Bytes::from_static(b"edge-1"));
        p.vlan = Some(42);
        let s = sip(&p, &HepConfig::default()).unwrap();
        assert_eq!(s.ts, p.ts);
        assert_eq!(s.src, "10.0.0.1:5060".parse().unwrap());
        assert_eq!(s.dst, "10.0.0.2:5080".parse().unwrap());
        assert_eq!(s.transport, Transport::Udp);
        assert_eq!(s.source, Source::Hep);
        assert_eq!(s.capture_id, Some(2001));
        assert_eq!(s.node.as_deref(), Some("edge-1"));
        assert_eq!(s.correlation_id.as_deref(), Some(&b"call-1"[..]));
        assert_eq!(s.vlan, Some(42));
        assert_eq!(s.payload, p.payload.unwrap());
    }

    #[test]
    fn decode_sip_bytes_matches_decode_sip_and_shares_memory() {
        let buf = Bytes::from(encode_v3(&sip_packet()));
        let a = decode_sip(&buf, Timestamp::EPOCH, &HepConfig::default()).unwrap();
        let b = decode_sip_bytes(buf.clone(), Timestamp::EPOCH, &HepConfig::default()).unwrap();
        assert_eq!(a, b);
        let range = buf.as_ptr_range();
        assert!(range.contains(&b.payload.as_ptr()), "payload was copied");
    }

    #[test]
    fn decode_bytes_matches_decode() {
        let buf = Bytes::from(encode_v3(&sip_packet()));
        assert_eq!(
            decode(&buf, Timestamp::EPOCH).unwrap(),
            decode_bytes(buf.clone(), Timestamp::EPOCH).unwrap()
        );
    }

    #[test]
    fn ipv6_and_transports() {
        let mut p = sip_packet();
        p.ip_family = Some(AF_INET6);
        p.src_ipv4 = None;
        p.dst_ipv4 = None;
        p.src_ipv6 = Some("2001:db8::1".parse().unwrap());
        p.dst_ipv6 = Some("2001:db8::2".parse().unwrap());
        for (proto, t) in [
            (17, Transport::Udp),
            (6, Transport::Tcp),
            (132, Transport::Sctp),
            (22, Transport::Tls),
            (99, Transport::Udp),
        ] {
            p.ip_proto = Some(proto);
            let s = sip(&p, &HepConfig::default()).unwrap();
            assert_eq!(s.transport, t);
            assert_eq!(s.src, "[2001:db8::1]:5060".parse().unwrap());
        }
    }

    #[test]
    fn family_picks_the_address_pair() {
        let mut p = sip_packet();
        p.src_ipv6 = Some("2001:db8::1".parse().unwrap());
        p.dst_ipv6 = Some("2001:db8::2".parse().unwrap());
        assert!(p.socket_addrs().unwrap().0.is_ipv4());
        p.ip_family = Some(AF_INET6);
        assert!(p.socket_addrs().unwrap().0.is_ipv6());
        p.ip_family = None;
        assert!(p.socket_addrs().unwrap().0.is_ipv4());
    }

    #[test]
    fn wrong_or_missing_auth_key_is_dropped() {
        let cfg = HepConfig {
            auth_key: Some(b"secret".to_vec()),
            ..HepConfig::default()
        };
        let mut p = sip_packet();
        assert_eq!(sip(&p, &cfg), Err(DropReason::WrongAuthKey));
        p.auth_key = Some(Bytes::from_static(b"secreT"));
        assert_eq!(sip(&p, &cfg), Err(DropReason::WrongAuthKey));
        p.auth_key = Some(Bytes::from_static(b"secret!"));
        assert_eq!(sip(&p, &cfg), Err(DropReason::WrongAuthKey));
        p.auth_key = Some(Bytes::from_static(b"secret"));
        assert!(sip(&p, &cfg).is_ok());
        // Without a configured key any key is fine.
        assert!(sip(&p, &HepConfig::default()).is_ok());
    }

    /// Issue 7: HEP payloads that are not SIP are `not_sip`, the counter
    /// raw UDP non-SIP gets (there was a separate `hep_not_sip`, and a
    /// non-SIP payload labelled SIP, or sent as HEPv1/v2, was passed on).
    #[test]
    fn non_sip_payloads_are_not_sip() {
        let cfg = HepConfig::default();
        let mut p = sip_packet();
        // RTCP (type 5) with an RTCP sender report, a JSON QoS report (type
        // 34 in heplify) and a log line (type 100).
        for (ty, payload) in [
            (5, &b"\x80\xc8\x00\x06\x12\x34\x56\x78"[..]),
            (34, b"{\"CORRELATION_ID\":\"abc\",\"MOS\":4.3}"),
            (100, b"INVITE sip:bob@example.com SIP/2.0\r\n\r\n"),
        ] {
            p.proto_type = Some(ty);
            p.payload = Some(Bytes::from_static(payload));
            assert_eq!(sip(&p, &cfg), Err(DropReason::NotSip), "type {ty}");
        }
        p.proto_type = None;
        assert_eq!(sip(&p, &cfg), Err(DropReason::NotSip));
        // Labelled SIP but is not.
        let mut p = sip_packet();
        for payload in [&b"{\"json\":1}"[..], b"\r\n\r\n", b"SIP/2.0 200"] {
            p.payload = Some(Bytes::from_static(payload));
            assert_eq!(sip(&p, &cfg), Err(DropReason::NotSip), "{payload:?}");
        }
        p.payload = None;
        assert_eq!(sip(&p, &cfg), Err(DropReason::NotSip));
        p.payload = Some(Bytes::new());
        assert_eq!(sip(&p, &cfg), Err(DropReason::NotSip));
        // Compressed, inflating to something that is not SIP.
        p.compressed_payload = Some(Bytes::from(compress_payload(b"hello").unwrap()));
        p.payload = None;
        assert_eq!(sip(&p, &cfg), Err(DropReason::NotSip));
        // HEPv1 and v2 carry no type: the payload decides.
        let mut p = sip_packet();
        for version in [HepVersion::V1, HepVersion::V2] {
            p.version = version;
            p.payload = Some(Bytes::from_static(b"\x80\xc8\x00\x06rtcp"));
            let buf = encode_v1v2(&p).unwrap();
            assert_eq!(
                decode_sip(&buf, Timestamp::EPOCH, &cfg),
                Err(DropReason::NotSip),
                "{version:?}"
            );
            p.payload = Some(Bytes::from_static(b"OPTIONS sip:a@b SIP/2.0\r\n\r\n"));
            let buf = encode_v1v2(&p).unwrap();
            assert!(
                decode_sip(&buf, Timestamp::EPOCH, &cfg).is_ok(),
                "{version:?}"
            );
        }
    }

    #[test]
    fn missing_addresses_are_bad_hep() {
        let mut p = sip_packet();
        p.dst_ipv4 = None;
        assert_eq!(sip(&p, &HepConfig::default()), Err(DropReason::BadHep));
    }

    #[test]
    fn oversize_payload_is_dropped() {
        let cfg = HepConfig {
            max_payload: 10,
            ..HepConfig::default()
        };
        assert_eq!(sip(&sip_packet(), &cfg), Err(DropReason::Oversize));
    }

    #[test]
    fn compressed_payload_is_inflated() {
        let mut p = sip_packet();
        let body = p.payload.take().unwrap();
        p.compressed_payload = Some(Bytes::from(compress_payload(&body).unwrap()));
        let s = sip(&p, &HepConfig::default()).unwrap();
        assert_eq!(s.payload, body);
    }

    #[test]
    fn bad_or_bomb_compression_is_dropped() {
        let mut p = sip_packet();
        p.payload = None;
        p.compressed_payload = Some(Bytes::from_static(b"\x78\x9cnot deflate"));
        assert_eq!(
            sip(&p, &HepConfig::default()),
            Err(DropReason::BadCompression)
        );
        let bomb = compress_payload(&vec![b'A'; 1 << 20]).unwrap();
        p.compressed_payload = Some(Bytes::from(bomb));
        assert_eq!(
            sip(&p, &HepConfig::default()),
            Err(DropReason::BadCompression)
        );
    }

    #[test]
    fn malformed_input_maps_to_drop_reasons() {
        let cfg = HepConfig::default();
        assert_eq!(
            decode_sip(b"", Timestamp::EPOCH, &cfg),
            Err(DropReason::Truncated)
        );
        assert_eq!(
            decode_sip(b"GET / HTTP/1.1", Timestamp::EPOCH, &cfg),
            Err(DropReason::BadHep)
        );
        assert_eq!(
            decode_sip(b"HEP3\x00\x10", Timestamp::EPOCH, &cfg),
            Err(DropReason::Truncated)
        );
    }

    #[test]
    fn constant_time_compare() {
        assert!(ct_eq(b"abc", b"abc"));
        assert!(!ct_eq(b"abc", b"abd"));
        assert!(!ct_eq(b"abc", b"ab"));
        assert!(ct_eq(b"", b""));
    }
}
