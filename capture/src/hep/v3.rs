//! HEPv3 decoding: a `HEP3` magic, a 16-bit total length (header included),
//! then chunks of `vendor id (u16), type id (u16), length (u16, header
//! included), data`, all in network byte order.
//!
//! Generic chunks (vendor 0) that we know are decoded, with their fixed sizes
//! enforced; vendor chunks and unknown generic chunks are skipped by length.
//! When a chunk repeats, the last one wins.
//!
//! One pass over the chunks, each dispatched on its `(vendor, type)` pair in
//! one `match`; byte fields are borrowed from the input, so decoding
//! allocates nothing.

use std::net::{Ipv4Addr, Ipv6Addr};

use super::{HepError, HepPacket, HepVersion, resolve_ts};
use crate::Timestamp;

/// The HEPv3 magic.
pub(crate) const MAGIC: &[u8; 4] = b"HEP3";
/// Bytes of the packet header (magic + length) and of a chunk header.
pub(crate) const HEADER_LEN: usize = 6;

/// Generic chunk type ids (vendor 0).
pub(crate) mod chunk {
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

/// Reads a big-endian u16 at `at`.
pub(crate) fn be16(buf: &[u8], at: usize) -> Option<u16> {
    let b = buf.get(at..at.checked_add(2)?)?;
    Some(u16::from_be_bytes([*b.first()?, *b.get(1)?]))
}

/// The error of a fixed-size chunk carrying `len` data bytes instead of
/// `expected`. Out of line: the decoding loop only branches to it.
#[cold]
#[inline(never)]
fn bad_size(chunk_type: u16, len: usize, expected: usize) -> HepError {
    HepError::BadChunkSize {
        chunk_type,
        len,
        expected,
    }
}

/// The error of a chunk whose length is below its header or runs past the
/// packet end (`len` 0 when the header itself is cut).
#[cold]
#[inline(never)]
fn bad_chunk_length(offset: usize, len: usize) -> HepError {
    HepError::BadChunkLength { offset, len }
}

/// Checks the HEPv3 framing (the length field must equal the buffer
/// length: one datagram or one framed TCP packet is exactly one HEP
/// packet), then decodes every chunk; byte fields borrow from `buf`.
#[inline]
pub(crate) fn parse(buf: &[u8], fallback_ts: Timestamp) -> Result<HepPacket<&[u8]>, HepError> {
    let mut p = HepPacket::<&[u8]> {
        version: HepVersion::V3,
        ..HepPacket::default()
    };
    walk(buf, &mut p)?;
    p.ts = resolve_ts(p.ts_secs, p.ts_micros, fallback_ts);
    Ok(p)
}

/// [`parse`] into `p`, which starts empty: the fields are written where
/// the caller keeps the packet rather than gathered at the end.
fn walk<'a>(buf: &'a [u8], p: &mut HepPacket<&'a [u8]>) -> Result<(), HepError> {
    let have = buf.len();
    let Some((head, chunks)) = buf.split_first_chunk::<HEADER_LEN>() else {
        return Err(match buf.get(..MAGIC.len()) {
            Some(m) if m != MAGIC => HepError::BadMagic(b'H'),
            _ => HepError::Truncated {
                need: HEADER_LEN,
                have,
            },
        });
    };
    let [m0, m1, m2, m3, l0, l1] = *head;
    if [m0, m1, m2, m3] != *MAGIC {
        return Err(HepError::BadMagic(b'H'));
    }
    let total = usize::from(u16::from_be_bytes([l0, l1]));
    if total > have {
        return Err(HepError::Truncated { need: total, have });
    }
    if total < HEADER_LEN || total < have {
        return Err(HepError::BadLength { len: total, have });
    }
    // From here on `total == have`: the chunks run to the end of `buf`.
    let mut rest = chunks;
    while !rest.is_empty() {
        let offset = have - rest.len();
        let Some((&[v0, v1, t0, t1, c0, c1], _)) = rest.split_first_chunk::<HEADER_LEN>() else {
            return Err(bad_chunk_length(offset, 0));
        };
        let len = usize::from(u16::from_be_bytes([c0, c1]));
        // `get` is `None` both for a length below the header and for one
        // running past the packet end.
        let Some(data) = rest.get(HEADER_LEN..len) else {
            return Err(bad_chunk_length(offset, len));
        };
        // `len <= rest.len()` was just checked.
        rest = rest.get(len..).unwrap_or_default();
        // Vendor chunks are skipped, as are unknown generic ones (the last
        // arm below).
        if v0 | v1 != 0 {
            continue;
        }
        let ty = u16::from_be_bytes([t0, t1]);
        /// The data of a fixed-size chunk as an array, or the size error.
        macro_rules! fixed {
            ($n:literal) => {
                match <[u8; $n]>::try_from(data) {
                    Ok(a) => a,
                    Err(_) => return Err(bad_size(ty, data.len(), $n)),
                }
            };
        }
        match ty {
            chunk::IP_FAMILY => p.ip_family = Some(u8::from_be_bytes(fixed!(1))),
            chunk::IP_PROTO => p.ip_proto = Some(u8::from_be_bytes(fixed!(1))),
            chunk::SRC_IPV4 => p.src_ipv4 = Some(Ipv4Addr::from(fixed!(4))),
            chunk::DST_IPV4 => p.dst_ipv4 = Some(Ipv4Addr::from(fixed!(4))),
            chunk::SRC_IPV6 => p.src_ipv6 = Some(Ipv6Addr::from(fixed!(16))),
            chunk::DST_IPV6 => p.dst_ipv6 = Some(Ipv6Addr::from(fixed!(16))),
            chunk::SRC_PORT => p.src_port = Some(u16::from_be_bytes(fixed!(2))),
            chunk::DST_PORT => p.dst_port = Some(u16::from_be_bytes(fixed!(2))),
            chunk::TS_SECS => p.ts_secs = Some(u32::from_be_bytes(fixed!(4))),
            chunk::TS_MICROS => p.ts_micros = Some(u32::from_be_bytes(fixed!(4))),
            chunk::PROTO_TYPE => p.proto_type = Some(u8::from_be_bytes(fixed!(1))),
            chunk::CAPTURE_ID => p.capture_id = Some(u32::from_be_bytes(fixed!(4))),
            chunk::KEEP_ALIVE => p.keep_alive = Some(u16::from_be_bytes(fixed!(2))),
            chunk::AUTH_KEY => p.auth_key = Some(data),
            chunk::PAYLOAD => p.payload = Some(data),
            chunk::COMPRESSED => p.compressed_payload = Some(data),
            chunk::CORRELATION_ID => p.correlation_id = Some(data),
            chunk::VLAN => p.vlan = Some(u16::from_be_bytes(fixed!(2))),
            chunk::NODE_NAME => p.node_name = Some(data),
            chunk::SRC_MAC => p.src_mac = Some(fixed!(6)),
            chunk::DST_MAC => p.dst_mac = Some(fixed!(6)),
            chunk::ETH_TYPE => p.eth_type = Some(u16::from_be_bytes(fixed!(2))),
            chunk::TCP_FLAGS => p.tcp_flags = Some(u8::from_be_bytes(fixed!(1))),
            chunk::IP_TOS => p.ip_tos = Some(u8::from_be_bytes(fixed!(1))),
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::hep::{HepPacket, decode};

    /// A HEPv3 packet made of the given raw chunks `(vendor, type, data)`.
    fn packet(chunks: &[(u16, u16, &[u8])]) -> Vec<u8> {
        let mut v = MAGIC.to_vec();
        v.extend_from_slice(&[0, 0]);
        for (vendor, ty, data) in chunks {
            v.extend_from_slice(&vendor.to_be_bytes());
            v.extend_from_slice(&ty.to_be_bytes());
            v.extend_from_slice(&u16::try_from(data.len() + 6).unwrap().to_be_bytes());
            v.extend_from_slice(data);
        }
        let n = u16::try_from(v.len()).unwrap().to_be_bytes();
        v[4..6].copy_from_slice(&n);
        v
    }

    fn one(ty: u16, data: &[u8]) -> HepPacket {
        decode(&packet(&[(0, ty, data)]), Timestamp::EPOCH).unwrap()
    }

    #[test]
    fn chunk_ip_family() {
        assert_eq!(one(chunk::IP_FAMILY, &[10]).ip_family, Some(10));
    }

    #[test]
    fn chunk_ip_proto() {
        assert_eq!(one(chunk::IP_PROTO, &[17]).ip_proto, Some(17));
    }

    #[test]
    fn chunk_ipv4_addresses() {
        assert_eq!(
            one(chunk::SRC_IPV4, &[192, 0, 2, 1]).src_ipv4,
            Some(Ipv4Addr::new(192, 0, 2, 1))
        );
        assert_eq!(
            one(chunk::DST_IPV4, &[192, 0, 2, 2]).dst_ipv4,
            Some(Ipv4Addr::new(192, 0, 2, 2))
        );
    }

    #[test]
    fn chunk_ipv6_addresses() {
        let a: Ipv6Addr = "2001:db8::5".parse().unwrap();
        assert_eq!(one(chunk::SRC_IPV6, &a.octets()).src_ipv6, Some(a));
        assert_eq!(one(chunk::DST_IPV6, &a.octets()).dst_ipv6, Some(a));
    }

    #[test]
    fn chunk_ports() {
        assert_eq!(one(chunk::SRC_PORT, &[0x13, 0xc4]).src_port, Some(5060));
        assert_eq!(one(chunk::DST_PORT, &[0x13, 0xc5]).dst_port, Some(5061));
    }

    #[test]
    fn chunk_timestamp() {
        let p = decode(
            &packet(&[
                (0, chunk::TS_SECS, &1_700_000_000u32.to_be_bytes()),
                (0, chunk::TS_MICROS, &123_456u32.to_be_bytes()),
            ]),
            Timestamp::EPOCH,
        )
        .unwrap();
        assert_eq!(p.ts_secs, Some(1_700_000_000));
        assert_eq!(p.ts_micros, Some(123_456));
        assert_eq!(p.ts, Timestamp::from_secs_micros(1_700_000_000, 123_456));
    }

    #[test]
    fn no_timestamp_uses_fallback() {
        let fallback = Timestamp::from_secs_micros(42, 7);
        let p = decode(&packet(&[(0, chunk::IP_PROTO, &[6])]), fallback).unwrap();
        assert_eq!(p.ts, fallback);
        assert_eq!(p.ts_secs, None);
    }

    #[test]
    fn chunk_proto_type() {
        assert_eq!(one(chunk::PROTO_TYPE, &[1]).proto_type, Some(1));
    }

    #[test]
    fn chunk_capture_id() {
        assert_eq!(
            one(chunk::CAPTURE_ID, &2001u32.to_be_bytes()).capture_id,
            Some(2001)
        );
    }

    #[test]
    fn chunk_keep_alive() {
        assert_eq!(one(chunk::KEEP_ALIVE, &[0, 30]).keep_alive, Some(30));
    }

    #[test]
    fn chunk_auth_key() {
        assert_eq!(
            one(chunk::AUTH_KEY, b"myHep").auth_key,
            Some(Bytes::from_static(b"myHep"))
        );
    }

    #[test]
    fn chunk_payload() {
        assert_eq!(
            one(chunk::PAYLOAD, b"BYE x").payload,
            Some(Bytes::from_static(b"BYE x"))
        );
    }

    #[test]
    fn chunk_compressed_payload() {
        let p = one(chunk::COMPRESSED, b"\x78\x9c");
        assert_eq!(p.compressed_payload, Some(Bytes::from_static(b"\x78\x9c")));
        assert_eq!(p.payload, None);
    }

    #[test]
    fn chunk_correlation_id() {
        assert_eq!(
            one(chunk::CORRELATION_ID, b"abc@h").correlation_id,
            Some(Bytes::from_static(b"abc@h"))
        );
    }

    #[test]
    fn chunk_vlan() {
        assert_eq!(one(chunk::VLAN, &[0x0f, 0xff]).vlan, Some(4095));
    }

    #[test]
    fn chunk_node_name() {
        assert_eq!(
            one(chunk::NODE_NAME, b"sbc-1").node_name,
            Some(Bytes::from_static(b"sbc-1"))
        );
    }

    #[test]
    fn chunk_macs() {
        let m = [0x02, 0, 0, 0, 0, 1];
        assert_eq!(one(chunk::SRC_MAC, &m).src_mac, Some(m));
        assert_eq!(one(chunk::DST_MAC, &m).dst_mac, Some(m));
    }

    #[test]
    fn chunk_eth_type_tcp_flags_tos() {
        assert_eq!(one(chunk::ETH_TYPE, &[0x86, 0xdd]).eth_type, Some(0x86dd));
        assert_eq!(one(chunk::TCP_FLAGS, &[0x18]).tcp_flags, Some(0x18));
        assert_eq!(one(chunk::IP_TOS, &[0xb8]).ip_tos, Some(0xb8));
    }

    #[test]
    fn vendor_and_unknown_chunks_are_skipped() {
        let p = decode(
            &packet(&[
                (0x0008, chunk::PAYLOAD, b"vendor payload"),
                (0, 0x0099, b"unknown"),
                (0x0002, chunk::SRC_PORT, b"odd size is fine for vendors"),
                (0, chunk::PAYLOAD, b"real"),
                (0, 0x0020, b""),
            ]),
            Timestamp::EPOCH,
        )
        .unwrap();
        assert_eq!(p.payload, Some(Bytes::from_static(b"real")));
        assert_eq!(p.src_port, None);
    }

    #[test]
    fn last_repeated_chunk_wins() {
        let p = decode(
            &packet(&[(0, chunk::SRC_PORT, &[0, 1]), (0, chunk::SRC_PORT, &[0, 2])]),
            Timestamp::EPOCH,
        )
        .unwrap();
        assert_eq!(p.src_port, Some(2));
    }

    #[test]
    fn empty_packet_is_fine() {
        assert_eq!(
            decode(&packet(&[]), Timestamp::EPOCH).unwrap(),
            HepPacket::default()
        );
    }

    #[test]
    fn wrong_fixed_sizes_are_errors() {
        let cases: [(u16, usize); 17] = [
            (chunk::IP_FAMILY, 1),
            (chunk::IP_PROTO, 1),
            (chunk::SRC_IPV4, 4),
            (chunk::DST_IPV4, 4),
            (chunk::SRC_IPV6, 16),
            (chunk::DST_IPV6, 16),
            (chunk::SRC_PORT, 2),
            (chunk::DST_PORT, 2),
            (chunk::TS_SECS, 4),
            (chunk::TS_MICROS, 4),
            (chunk::PROTO_TYPE, 1),
            (chunk::CAPTURE_ID, 4),
            (chunk::KEEP_ALIVE, 2),
            (chunk::VLAN, 2),
            (chunk::SRC_MAC, 6),
            (chunk::ETH_TYPE, 2),
            (chunk::IP_TOS, 1),
        ];
        for (ty, expected) in cases {
            for len in [0, expected + 1] {
                let data = vec![0u8; len];
                assert_eq!(
                    decode(&packet(&[(0, ty, &data)]), Timestamp::EPOCH),
                    Err(HepError::BadChunkSize {
                        chunk_type: ty,
                        len,
                        expected
                    }),
                    "chunk {ty:#x} len {len}"
                );
            }
        }
    }

    #[test]
    fn bad_magic() {
        assert_eq!(
            decode(b"HEP2\x00\x06", Timestamp::EPOCH),
            Err(HepError::BadMagic(b'H'))
        );
    }

    #[test]
    fn short_header_is_truncated() {
        assert!(matches!(
            decode(b"HEP", Timestamp::EPOCH),
            Err(HepError::Truncated { .. })
        ));
        assert!(matches!(
            decode(b"HEP3\x00", Timestamp::EPOCH),
            Err(HepError::Truncated { .. })
        ));
    }

    #[test]
    fn total_length_checks() {
        let mut v = packet(&[(0, chunk::IP_PROTO, &[17])]);
        // Longer than the buffer: truncated.
        v[5] += 1;
        assert_eq!(
            decode(&v, Timestamp::EPOCH),
            Err(HepError::Truncated {
                need: v.len() + 1,
                have: v.len()
            })
        );
        // Shorter than the buffer: trailing bytes.
        v[5] -= 2;
        assert!(matches!(
            decode(&v, Timestamp::EPOCH),
            Err(HepError::BadLength { .. })
        ));
        // Below the header size.
        assert!(matches!(
            decode(b"HEP3\x00\x05", Timestamp::EPOCH),
            Err(HepError::BadLength { .. })
        ));
    }

    #[test]
    fn chunk_length_below_six_is_an_error() {
        let mut v = packet(&[(0, chunk::IP_PROTO, &[17])]);
        v[11] = 5;
        assert_eq!(
            decode(&v, Timestamp::EPOCH),
            Err(HepError::BadChunkLength { offset: 6, len: 5 })
        );
        v[11] = 0;
        assert_eq!(
            decode(&v, Timestamp::EPOCH),
            Err(HepError::BadChunkLength { offset: 6, len: 0 })
        );
    }

    #[test]
    fn chunk_past_packet_end_is_an_error() {
        let mut v = packet(&[(0, chunk::PAYLOAD, b"abc")]);
        v[11] = 10;
        assert_eq!(
            decode(&v, Timestamp::EPOCH),
            Err(HepError::BadChunkLength { offset: 6, len: 10 })
        );
    }

    #[test]
    fn cut_chunk_header_is_an_error() {
        let mut v = packet(&[(0, chunk::IP_PROTO, &[17])]);
        v.extend_from_slice(&[0, 0, 0]);
        let n = u16::try_from(v.len()).unwrap().to_be_bytes();
        v[4..6].copy_from_slice(&n);
        assert_eq!(
            decode(&v, Timestamp::EPOCH),
            Err(HepError::BadChunkLength { offset: 13, len: 0 })
        );
    }
}
