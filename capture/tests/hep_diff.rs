//! Differential tests: the chunk walker and the direct SIP path give
//! exactly what the previous decoder (`tests/reference/hep.rs`) gave, for
//! every byte string: valid packets, every truncation and single-byte
//! change of them, and arbitrary bytes.
#![allow(clippy::unwrap_used)]

mod support;
/// The test oracles.
mod reference {
    pub mod hep;
}

use bytes::Bytes;
use capture::Timestamp;
use capture::hep::{
    AF_INET6, HepConfig, HepVersion, compress_payload, decode, decode_bytes, decode_sip,
    decode_sip_bytes, encode_v1v2, encode_v3,
};
use proptest::prelude::*;

use support::{invite_hep3, sip_packet};

fn configs() -> [HepConfig; 3] {
    [
        HepConfig::default(),
        HepConfig {
            auth_key: Some(b"k3y".to_vec()),
            ..HepConfig::default()
        },
        HepConfig {
            max_payload: 40,
            ..HepConfig::default()
        },
    ]
}

/// Every decode entry point agrees with the reference on `buf`.
fn agree(buf: &[u8]) {
    let fallback = Timestamp::from_secs_micros(7, 8);
    assert_eq!(decode(buf, fallback), reference::hep::decode(buf, fallback));
    let shared = Bytes::copy_from_slice(buf);
    assert_eq!(
        decode_bytes(shared.clone(), fallback),
        reference::hep::decode_bytes(shared.clone(), fallback)
    );
    for cfg in &configs() {
        let want = reference::hep::decode_sip(buf, fallback, cfg);
        assert_eq!(decode_sip(buf, fallback, cfg), want, "{buf:?}");
        assert_eq!(
            decode_sip_bytes(shared.clone(), fallback, cfg),
            reference::hep::decode_sip_bytes(shared.clone(), fallback, cfg)
        );
        assert_eq!(decode_sip_bytes(shared.clone(), fallback, cfg), want);
    }
}

/// A packet with many kinds of chunk, including the ones only
/// `HepPacket` keeps, a vendor chunk and an unknown generic one.
fn rich_packet() -> Vec<u8> {
    let mut p = sip_packet();
    p.keep_alive = Some(30);
    p.auth_key = Some(Bytes::from_static(b"k3y"));
    p.correlation_id = Some(Bytes::from_static(b"corr"));
    p.vlan = Some(7);
    p.node_name = Some(Bytes::from_static(b"edge-\xff"));
    p.src_mac = Some([1, 2, 3, 4, 5, 6]);
    p.dst_mac = Some([6, 5, 4, 3, 2, 1]);
    p.eth_type = Some(0x0800);
    p.tcp_flags = Some(0x18);
    p.ip_tos = Some(0xb8);
    let mut v = encode_v3(&p);
    // A vendor chunk and an unknown generic chunk, then fix the length.
    v.extend_from_slice(&[0, 9, 0, 1, 0, 7, 0xaa]);
    v.extend_from_slice(&[0, 0, 0, 0x40, 0, 8, 1, 2]);
    let n = u16::try_from(v.len()).unwrap().to_be_bytes();
    v[4..6].copy_from_slice(&n);
    v
}

fn samples() -> Vec<Vec<u8>> {
    let mut ipv6 = sip_packet();
    ipv6.ip_family = Some(AF_INET6);
    ipv6.src_ipv6 = Some("2001:db8::1".parse().unwrap());
    ipv6.dst_ipv6 = Some("2001:db8::2".parse().unwrap());
    let mut compressed = sip_packet();
    let body = compressed.payload.take().unwrap();
    compressed.compressed_payload = Some(Bytes::from(compress_payload(&body).unwrap()));
    let mut v1 = sip_packet();
    v1.version = HepVersion::V1;
    let mut v2 = sip_packet();
    v2.version = HepVersion::V2;
    vec![
        invite_hep3(),
        rich_packet(),
        encode_v3(&ipv6),
        encode_v3(&compressed),
        encode_v1v2(&v1).unwrap(),
        encode_v1v2(&v2).unwrap(),
    ]
}

#[test]
fn valid_packets_decode_as_before() {
    for s in samples() {
        agree(&s);
    }
}

#[test]
fn truncations_and_byte_changes_decode_as_before() {
    for s in samples() {
        for n in 0..=s.len() {
            agree(&s[..n]);
        }
        for i in 0..s.len() {
            for b in [0u8, 1, 2, 5, 6, 10, 0x10, 0x18, 0x40, 0xff] {
                let mut m = s.clone();
                m[i] = b;
                agree(&m);
                m[i] = s[i] ^ 1;
                agree(&m);
            }
        }
    }
}

/// A HEPv3 packet from arbitrary chunks `(vendor, type, data)`, lengths
/// written correctly or, with `bad_len`, as given.
fn chunked(chunks: &[(u16, u16, Vec<u8>, Option<u16>)]) -> Vec<u8> {
    let mut v = b"HEP3\0\0".to_vec();
    for (vendor, ty, data, bad_len) in chunks {
        v.extend_from_slice(&vendor.to_be_bytes());
        v.extend_from_slice(&ty.to_be_bytes());
        let len = bad_len.unwrap_or(u16::try_from(data.len() + 6).unwrap_or(u16::MAX));
        v.extend_from_slice(&len.to_be_bytes());
        v.extend_from_slice(data);
    }
    let n = u16::try_from(v.len()).unwrap_or(u16::MAX).to_be_bytes();
    v[4..6].copy_from_slice(&n);
    v
}

proptest! {
    #[test]
    fn arbitrary_chunks_decode_as_before(
        chunks in prop::collection::vec(
            (
                prop::sample::select(vec![0u16, 0, 0, 0, 1, 0x1234]),
                0u16..30,
                prop::collection::vec(any::<u8>(), 0..20),
                prop::option::weighted(0.05, any::<u16>()),
            ),
            0..16,
        ),
    ) {
        agree(&chunked(&chunks));
    }

    #[test]
    fn arbitrary_bytes_decode_as_before(
        head in prop::sample::select(vec![&b"HEP3"[..], b"\x01", b"\x02", b"H", b""]),
        tail in prop::collection::vec(any::<u8>(), 0..80),
    ) {
        let mut b = head.to_vec();
        b.extend_from_slice(&tail);
        agree(&b);
    }
}
