//! The HEP decoder as it was before the fast path, kept as a test oracle:
//! the differential tests (`tests/hep_diff.rs`) check that
//! [`capture::hep::decode_sip`] and friends return exactly what this
//! returns. It sees the crate from outside: v1/v2 go to the crate's own
//! parser through the `__internal-fuzz` feature, the HEPv3 wire constants
//! are restated here from the HEP3 specification.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::ops::Range;

use bytes::Bytes;
use capture::frame::fuzzing::looks_like_sip;
use capture::hep::fuzzing::parse_v12;
use capture::hep::{HepConfig, HepError, HepPacket, HepVersion, PROTO_TYPE_SIP, inflate};
use capture::{DropReason, SipPacket, Source, Timestamp};

/// The HEPv3 magic.
const MAGIC: &[u8; 4] = b"HEP3";
/// Bytes of the packet header (magic + length) and of a chunk header.
const HEADER_LEN: usize = 6;

/// Generic chunk type ids (vendor 0).
mod chunk {
    pub const IP_FAMILY: u16 = 0x0001;
    pub const IP_PROTO: u16 = 0x0002;
    pub const SRC_IPV4: u16 = 0x0003;
    pub const DST_IPV4: u16 = 0x0004;
    pub const SRC_IPV6: u16 = 0x0005;
    pub const DST_IPV6: u16 = 0x0006;
    pub const SRC_PORT: u16 = 0x0007;
    pub const DST_PORT: u16 = 0x0008;
    pub const TS_SECS: u16 = 0x0009;
    pub const TS_MICROS: u16 = 0x000a;
    pub const PROTO_TYPE: u16 = 0x000b;
    pub const CAPTURE_ID: u16 = 0x000c;
    pub const KEEP_ALIVE: u16 = 0x000d;
    pub const AUTH_KEY: u16 = 0x000e;
    pub const PAYLOAD: u16 = 0x000f;
    pub const COMPRESSED: u16 = 0x0010;
    pub const CORRELATION_ID: u16 = 0x0011;
    pub const VLAN: u16 = 0x0012;
    pub const NODE_NAME: u16 = 0x0013;
    pub const SRC_MAC: u16 = 0x0014;
    pub const DST_MAC: u16 = 0x0015;
    pub const ETH_TYPE: u16 = 0x0016;
    pub const TCP_FLAGS: u16 = 0x0017;
    pub const IP_TOS: u16 = 0x0018;
}

/// Compares two keys (the decoder's constant-time comparison; timing does
/// not matter to an oracle, the result does).
fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The timestamp from seconds and microseconds chunks, else `fallback`.
fn resolve_ts(secs: Option<u32>, micros: Option<u32>, fallback: Timestamp) -> Timestamp {
    match secs {
        Some(s) => Timestamp::from_secs_micros(i64::from(s), micros.unwrap_or(0)),
        None => fallback,
    }
}

/// Decodes one HEP packet of any version into offsets into `buf`.
fn parse(buf: &[u8], fallback_ts: Timestamp) -> Result<HepPacket<Range<usize>>, HepError> {
    match buf.first() {
        None => Err(HepError::Truncated { need: 1, have: 0 }),
        Some(b'H') => parse_v3(buf, fallback_ts),
        Some(1) | Some(2) => parse_v12(buf, fallback_ts),
        Some(&b) => Err(HepError::BadMagic(b)),
    }
}

/// The bytes of a range the decoder produced (always in bounds).
fn slice(buf: &[u8], r: Range<usize>) -> &[u8] {
    buf.get(r).unwrap_or_default()
}

/// Decodes one HEP packet (v1, v2 or v3), copying its byte fields.
///
/// `fallback_ts` (normally the receive time) becomes [`HepPacket::ts`] when
/// the packet carries no timestamp, as in HEPv1.
pub fn decode(buf: &[u8], fallback_ts: Timestamp) -> Result<HepPacket, HepError> {
    Ok(parse(buf, fallback_ts)?.map_bytes(|r| Bytes::copy_from_slice(slice(buf, r))))
}

/// [`decode`] without copying: the byte fields are slices of `buf`.
pub fn decode_bytes(buf: Bytes, fallback_ts: Timestamp) -> Result<HepPacket, HepError> {
    Ok(parse(&buf, fallback_ts)?.map_bytes(|r| buf.slice(r)))
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
    let raw = parse(buf, fallback_ts).map_err(|e| e.drop_reason())?;
    to_sip(raw, buf, cfg, |r| Bytes::copy_from_slice(slice(buf, r)))
}

/// [`decode_sip`] without copying: the payload, correlation id and node name
/// are slices of `buf`.
pub fn decode_sip_bytes(
    buf: Bytes,
    fallback_ts: Timestamp,
    cfg: &HepConfig,
) -> Result<SipPacket, DropReason> {
    let raw = parse(&buf, fallback_ts).map_err(|e| e.drop_reason())?;
    to_sip(raw, &buf, cfg, |r| buf.slice(r))
}

/// Checks a decoded packet against `cfg` and makes it a [`SipPacket`].
/// Cheap checks come first so dropped packets cost no copy.
fn to_sip(
    raw: HepPacket<Range<usize>>,
    buf: &[u8],
    cfg: &HepConfig,
    mut bytes: impl FnMut(Range<usize>) -> Bytes,
) -> Result<SipPacket, DropReason> {
    if let Some(want) = &cfg.auth_key {
        let got = raw.auth_key.clone().map(|r| slice(buf, r));
        if !got.is_some_and(|g| ct_eq(g, want)) {
            return Err(DropReason::WrongAuthKey);
        }
    }
    // v1/v2 carry nothing but SIP; v3 says so in chunk 0x000b.
    if raw.version == HepVersion::V3 && raw.proto_type != Some(PROTO_TYPE_SIP) {
        return Err(DropReason::NotSip);
    }
    let (src, dst) = raw.socket_addrs().ok_or(DropReason::BadHep)?;
    let payload = match (&raw.payload, &raw.compressed_payload) {
        (Some(r), _) if r.len() > cfg.max_payload => return Err(DropReason::Oversize),
        (Some(r), _) => bytes(r.clone()),
        (None, Some(r)) => Bytes::from(
            inflate(slice(buf, r.clone()), cfg.max_payload).map_err(|e| e.drop_reason())?,
        ),
        (None, None) => return Err(DropReason::NotSip),
    };
    // Whatever the protocol type says, only a SIP message is one
    // (HEPv1/v2 have no type; agents label things wrongly).
    if !looks_like_sip(&payload) {
        return Err(DropReason::NotSip);
    }
    Ok(SipPacket {
        ts: raw.ts,
        src,
        dst,
        transport: raw.transport(),
        source: Source::Hep,
        capture_id: raw.capture_id,
        node: raw
            .node_name
            .clone()
            .map(|r| String::from_utf8_lossy(slice(buf, r)).into_owned()),
        correlation_id: raw.correlation_id.clone().map(&mut bytes),
        vlan: raw.vlan,
        payload,
    })
}

/// Reads a big-endian u16 at `at`.
fn be16(buf: &[u8], at: usize) -> Option<u16> {
    let b = buf.get(at..at.checked_add(2)?)?;
    Some(u16::from_be_bytes([*b.first()?, *b.get(1)?]))
}

/// The data of a fixed-size chunk, or an error naming the size mismatch.
fn fixed<const N: usize>(ty: u16, data: &[u8]) -> Result<[u8; N], HepError> {
    <[u8; N]>::try_from(data).map_err(|_| HepError::BadChunkSize {
        chunk_type: ty,
        len: data.len(),
        expected: N,
    })
}

/// Decodes a HEPv3 packet; byte fields are offsets into `buf`.
///
/// The length field must equal the buffer length: one datagram or one
/// framed TCP packet is exactly one HEP packet.
fn parse_v3(buf: &[u8], fallback_ts: Timestamp) -> Result<HepPacket<Range<usize>>, HepError> {
    let have = buf.len();
    let magic = buf.get(..MAGIC.len()).ok_or(HepError::Truncated {
        need: HEADER_LEN,
        have,
    })?;
    if magic != MAGIC {
        return Err(HepError::BadMagic(b'H'));
    }
    let total = usize::from(be16(buf, 4).ok_or(HepError::Truncated {
        need: HEADER_LEN,
        have,
    })?);
    if total > have {
        return Err(HepError::Truncated { need: total, have });
    }
    if total < HEADER_LEN || total < have {
        return Err(HepError::BadLength { len: total, have });
    }

    let mut p = HepPacket::<Range<usize>> {
        version: HepVersion::V3,
        ..HepPacket::default()
    };
    let mut off = HEADER_LEN;
    while off < total {
        let bad = |len| HepError::BadChunkLength { offset: off, len };
        let (vendor, ty, len) = match (be16(buf, off), be16(buf, off + 2), be16(buf, off + 4)) {
            (Some(v), Some(t), Some(l)) => (v, t, usize::from(l)),
            _ => return Err(bad(0)),
        };
        let end = off + len;
        if len < HEADER_LEN || end > total {
            return Err(bad(len));
        }
        let range = off + HEADER_LEN..end;
        let data = buf.get(range.clone()).ok_or(bad(len))?;
        if vendor == 0 {
            read_chunk(&mut p, ty, data, range)?;
        }
        off = end;
    }
    p.ts = resolve_ts(p.ts_secs, p.ts_micros, fallback_ts);
    Ok(p)
}

/// Stores one generic chunk in `p`.
fn read_chunk(
    p: &mut HepPacket<Range<usize>>,
    ty: u16,
    data: &[u8],
    range: Range<usize>,
) -> Result<(), HepError> {
    let u8_ = |d: &[u8]| fixed::<1>(ty, d).map(|[b]| b);
    let u16_ = |d: &[u8]| fixed::<2>(ty, d).map(u16::from_be_bytes);
    let u32_ = |d: &[u8]| fixed::<4>(ty, d).map(u32::from_be_bytes);
    match ty {
        chunk::IP_FAMILY => p.ip_family = Some(u8_(data)?),
        chunk::IP_PROTO => p.ip_proto = Some(u8_(data)?),
        chunk::SRC_IPV4 => p.src_ipv4 = Some(Ipv4Addr::from(fixed::<4>(ty, data)?)),
        chunk::DST_IPV4 => p.dst_ipv4 = Some(Ipv4Addr::from(fixed::<4>(ty, data)?)),
        chunk::SRC_IPV6 => p.src_ipv6 = Some(Ipv6Addr::from(fixed::<16>(ty, data)?)),
        chunk::DST_IPV6 => p.dst_ipv6 = Some(Ipv6Addr::from(fixed::<16>(ty, data)?)),
        chunk::SRC_PORT => p.src_port = Some(u16_(data)?),
        chunk::DST_PORT => p.dst_port = Some(u16_(data)?),
        chunk::TS_SECS => p.ts_secs = Some(u32_(data)?),
        chunk::TS_MICROS => p.ts_micros = Some(u32_(data)?),
        chunk::PROTO_TYPE => p.proto_type = Some(u8_(data)?),
        chunk::CAPTURE_ID => p.capture_id = Some(u32_(data)?),
        chunk::KEEP_ALIVE => p.keep_alive = Some(u16_(data)?),
        chunk::AUTH_KEY => p.auth_key = Some(range),
        chunk::PAYLOAD => p.payload = Some(range),
        chunk::COMPRESSED => p.compressed_payload = Some(range),
        chunk::CORRELATION_ID => p.correlation_id = Some(range),
        chunk::VLAN => p.vlan = Some(u16_(data)?),
        chunk::NODE_NAME => p.node_name = Some(range),
        chunk::SRC_MAC => p.src_mac = Some(fixed::<6>(ty, data)?),
        chunk::DST_MAC => p.dst_mac = Some(fixed::<6>(ty, data)?),
        chunk::ETH_TYPE => p.eth_type = Some(u16_(data)?),
        chunk::TCP_FLAGS => p.tcp_flags = Some(u8_(data)?),
        chunk::IP_TOS => p.ip_tos = Some(u8_(data)?),
        _ => {}
    }
    Ok(())
}
