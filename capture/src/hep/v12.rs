//! HEPv1 and HEPv2, as Kamailio's siptrace (`siptrace_hep.c`, structs in
//! `sipcapture/hep.h`) writes them. Kamailio's default `hep_version` is 1.
//!
//! ```text
//! 0       version (1 or 2)
//! 1       header length: 8 + address block (16 for IPv4, 40 for IPv6)
//! 2       address family (2 = AF_INET, 10 = AF_INET6 on Linux)
//! 3       IP protocol (17, 6, 132; 22 for TLS/WS/WSS)
//! 4..6    source port, network order
//! 6..8    destination port, network order
//! 8..     source address, destination address (4 + 4 or 16 + 16 bytes)
//! v2 only, the C struct `hep_timehdr` copied as is (12 bytes on x86):
//! +0..4   tv_sec,  little-endian (Kamailio writes `to_le(tv_sec)`)
//! +4..8   tv_usec, little-endian
//! +8..10  capture id, host order (little-endian on x86)
//! +10..12 struct padding (zero: Kamailio clears the buffer)
//! then the SIP message to the end of the datagram.
//! ```
//!
//! There is no length field for the payload: one datagram, one packet.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::ops::Range;

use super::{AF_INET, HepError, HepPacket, HepVersion, is_af_inet6, resolve_ts};
use crate::Timestamp;

/// Bytes of the fixed v1/v2 header before the addresses.
pub(crate) const BASE_LEN: usize = 8;
/// Bytes of the v2 time header as Kamailio sends it (10 bytes of fields
/// padded to the 4-byte alignment of its struct).
pub(crate) const TIME_LEN: usize = 12;

/// Bytes of the address block for an address family.
fn addr_len(family: u8) -> Result<usize, HepError> {
    match family {
        AF_INET => Ok(8),
        f if is_af_inet6(f) => Ok(32),
        f => Err(HepError::BadFamily(f)),
    }
}

fn le32(b: &[u8], at: usize) -> Option<u32> {
    let s = b.get(at..at + 4)?;
    Some(u32::from_le_bytes(s.try_into().ok()?))
}

/// Decodes a HEPv1/v2 packet (first byte 1 or 2).
pub(crate) fn parse(
    buf: &[u8],
    fallback_ts: Timestamp,
) -> Result<HepPacket<Range<usize>>, HepError> {
    let have = buf.len();
    let Some(&[version, hdr_len, family, proto, sp0, sp1, dp0, dp1]) = buf.get(..BASE_LEN) else {
        return Err(HepError::Truncated {
            need: BASE_LEN,
            have,
        });
    };
    let version = match version {
        1 => HepVersion::V1,
        2 => HepVersion::V2,
        v => return Err(HepError::BadMagic(v)),
    };
    let alen = addr_len(family)?;
    if usize::from(hdr_len) != BASE_LEN + alen {
        return Err(HepError::BadHeaderLength(hdr_len));
    }
    let time_len = if version == HepVersion::V2 {
        TIME_LEN
    } else {
        0
    };
    let need = BASE_LEN + alen + time_len;
    let head = buf.get(..need).ok_or(HepError::Truncated { need, have })?;
    let addrs = head.get(BASE_LEN..BASE_LEN + alen).unwrap_or_default();

    let mut p = HepPacket::<Range<usize>> {
        version,
        ip_family: Some(family),
        ip_proto: Some(proto),
        src_port: Some(u16::from_be_bytes([sp0, sp1])),
        dst_port: Some(u16::from_be_bytes([dp0, dp1])),
        payload: Some(need..have),
        ..HepPacket::default()
    };
    if family == AF_INET {
        let (s, d) = addrs.split_at(4);
        p.src_ipv4 = <[u8; 4]>::try_from(s).ok().map(Ipv4Addr::from);
        p.dst_ipv4 = <[u8; 4]>::try_from(d).ok().map(Ipv4Addr::from);
    } else {
        let (s, d) = addrs.split_at(16);
        p.src_ipv6 = <[u8; 16]>::try_from(s).ok().map(Ipv6Addr::from);
        p.dst_ipv6 = <[u8; 16]>::try_from(d).ok().map(Ipv6Addr::from);
    }
    if version == HepVersion::V2 {
        let t = BASE_LEN + alen;
        p.ts_secs = le32(head, t);
        p.ts_micros = le32(head, t + 4);
        p.capture_id = head
            .get(t + 8..t + 10)
            .and_then(|b| <[u8; 2]>::try_from(b).ok())
            .map(|b| u32::from(u16::from_le_bytes(b)));
    }
    p.ts = resolve_ts(p.ts_secs, p.ts_micros, fallback_ts);
    Ok(p)
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::hep::{HepConfig, decode, decode_sip, encode_v1v2};
    use crate::{DropReason, Transport};

    const SIP: &[u8] = b"INVITE sip:1000@example.org SIP/2.0\r\n\r\n";

    fn v4(version: u8) -> Vec<u8> {
        let mut v = vec![
            version, 16, 2, 17, 0x13, 0xc5, 0x13, 0xc4, 127, 0, 0, 1, 10, 0, 0, 9,
        ];
        if version == 2 {
            v.extend_from_slice(&1_795_436_818u32.to_le_bytes());
            v.extend_from_slice(&836_632u32.to_le_bytes());
            v.extend_from_slice(&2001u16.to_le_bytes());
            v.extend_from_slice(&[0, 0]);
        }
        v.extend_from_slice(SIP);
        v
    }

    fn v6(version: u8) -> Vec<u8> {
        let mut v = vec![version, 40, 10, 6, 0x13, 0xc4, 0x16, 0x2e];
        v.extend_from_slice(&"2001:db8::1".parse::<Ipv6Addr>().unwrap().octets());
        v.extend_from_slice(&"2001:db8::2".parse::<Ipv6Addr>().unwrap().octets());
        if version == 2 {
            v.extend_from_slice(&1_700_000_000u32.to_le_bytes());
            v.extend_from_slice(&5u32.to_le_bytes());
            v.extend_from_slice(&7u16.to_le_bytes());
            v.extend_from_slice(&[0, 0]);
        }
        v.extend_from_slice(SIP);
        v
    }

    #[test]
    fn v1_ipv4_uses_fallback_time() {
        let fallback = Timestamp::from_secs_micros(1_000, 1);
        let p = decode(&v4(1), fallback).unwrap();
        assert_eq!(p.version, HepVersion::V1);
        assert_eq!(p.ts, fallback);
        assert_eq!(p.ts_secs, None);
        assert_eq!(p.capture_id, None);
        assert_eq!(p.ip_family, Some(2));
        assert_eq!(p.ip_proto, Some(17));
        assert_eq!(p.src_ipv4, Some(Ipv4Addr::new(127, 0, 0, 1)));
        assert_eq!(p.dst_ipv4, Some(Ipv4Addr::new(10, 0, 0, 9)));
        assert_eq!((p.src_port, p.dst_port), (Some(5061), Some(5060)));
        assert_eq!(p.payload, Some(Bytes::from_static(SIP)));
    }

    #[test]
    fn v2_ipv4_little_endian_time_and_capture_id() {
        let p = decode(&v4(2), Timestamp::EPOCH).unwrap();
        assert_eq!(p.version, HepVersion::V2);
        assert_eq!(p.ts_secs, Some(1_795_436_818));
        assert_eq!(p.ts_micros, Some(836_632));
        assert_eq!(p.ts, Timestamp::from_secs_micros(1_795_436_818, 836_632));
        assert_eq!(p.capture_id, Some(2001));
        assert_eq!(p.payload, Some(Bytes::from_static(SIP)));
    }

    #[test]
    fn v1_ipv6() {
        let p = decode(&v6(1), Timestamp::EPOCH).unwrap();
        assert_eq!(p.src_ipv6, Some("2001:db8::1".parse().unwrap()));
        assert_eq!(p.dst_ipv6, Some("2001:db8::2".parse().unwrap()));
        assert_eq!((p.src_port, p.dst_port), (Some(5060), Some(5678)));
        assert_eq!(p.payload, Some(Bytes::from_static(SIP)));
    }

    #[test]
    fn v2_ipv6() {
        let p = decode(&v6(2), Timestamp::EPOCH).unwrap();
        assert_eq!(p.ts, Timestamp::from_secs_micros(1_700_000_000, 5));
        assert_eq!(p.capture_id, Some(7));
        assert_eq!(p.payload, Some(Bytes::from_static(SIP)));
    }

    #[test]
    fn v1_v2_become_sip_packets() {
        let s = decode_sip(&v6(2), Timestamp::EPOCH, &HepConfig::default()).unwrap();
        assert_eq!(s.src, "[2001:db8::1]:5060".parse().unwrap());
        assert_eq!(s.transport, Transport::Tcp);
        assert_eq!(s.capture_id, Some(7));
        let s = decode_sip(&v4(1), Timestamp::from_nanos(9), &HepConfig::default()).unwrap();
        assert_eq!(s.ts, Timestamp::from_nanos(9));
        assert_eq!(s.payload, SIP);
    }

    #[test]
    fn v1_with_auth_key_configured_is_dropped() {
        let cfg = HepConfig {
            auth_key: Some(b"k".to_vec()),
            ..HepConfig::default()
        };
        assert_eq!(
            decode_sip(&v4(1), Timestamp::EPOCH, &cfg),
            Err(DropReason::WrongAuthKey)
        );
    }

    #[test]
    fn header_length_must_match_family() {
        let mut v = v4(1);
        v[1] = 40;
        assert_eq!(
            decode(&v, Timestamp::EPOCH),
            Err(HepError::BadHeaderLength(40))
        );
        let mut v = v6(2);
        v[1] = 16;
        assert_eq!(
            decode(&v, Timestamp::EPOCH),
            Err(HepError::BadHeaderLength(16))
        );
    }

    #[test]
    fn unknown_family_is_an_error() {
        let mut v = v4(1);
        v[2] = 7;
        assert_eq!(decode(&v, Timestamp::EPOCH), Err(HepError::BadFamily(7)));
    }

    #[test]
    fn truncated_headers() {
        let v = v4(2);
        for n in 1..28 {
            assert!(
                matches!(
                    decode(&v[..n], Timestamp::EPOCH),
                    Err(HepError::Truncated { .. })
                ),
                "cut at {n}"
            );
        }
        // Header complete, empty payload: decodes, but is not SIP.
        let p = decode(&v[..28], Timestamp::EPOCH).unwrap();
        assert_eq!(p.payload, Some(Bytes::new()));
        assert_eq!(
            decode_sip(&v[..28], Timestamp::EPOCH, &HepConfig::default()),
            Err(DropReason::NotSip)
        );
    }

    #[test]
    fn encoder_round_trips() {
        for buf in [v4(1), v4(2), v6(1), v6(2)] {
            let p = decode(&buf, Timestamp::from_nanos(5)).unwrap();
            assert_eq!(encode_v1v2(&p).as_deref(), Some(&buf[..]));
        }
    }
}
