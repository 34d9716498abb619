//! Instruction-count harness for the HEPv3 decoder, for callgrind:
//!
//! ```text
//! HEP_PERF_ITERS=100000 valgrind --tool=callgrind \
//!   --toggle-collect='*perf_tests::decode_loop*' \
//!   <capture lib test binary, release> hep::perf_tests --ignored
//! ```
//! then instructions / iterations is the cost of one `decode_sip_bytes`
//! of a typical SIP INVITE (the packet of `benches/capture.rs`).
#![allow(clippy::unwrap_used)]

use std::hint::black_box;
use std::net::Ipv4Addr;

use bytes::Bytes;

use super::*;

const INVITE: &[u8] = b"INVITE sip:442071234567@10.0.0.2:5060 SIP/2.0\r\n\
Via: SIP/2.0/UDP 10.0.0.1:5061;branch=z9hG4bK776asdhds\r\n\
Max-Forwards: 70\r\n\
From: \"1001\" <sip:1001@10.0.0.1:5061>;tag=1928301774\r\n\
To: <sip:442071234567@10.0.0.2:5060>\r\n\
Call-ID: a84b4c76e66710@10.0.0.1\r\n\
CSeq: 314159 INVITE\r\n\
Contact: <sip:1001@10.0.0.1:5061>\r\n\
Content-Type: application/sdp\r\n\
Content-Length: 0\r\n\r\n";

/// The benchmark's packet: what `benches/gen` `hep3` encodes.
pub(crate) fn invite_hep3() -> Vec<u8> {
    let ts = Timestamp::from_nanos(1_790_000_000_123_456_000);
    encode_v3(&HepPacket {
        version: HepVersion::V3,
        ts,
        ip_family: Some(AF_INET),
        ip_proto: Some(17),
        src_ipv4: Some(Ipv4Addr::new(10, 0, 0, 1)),
        dst_ipv4: Some(Ipv4Addr::new(10, 0, 0, 2)),
        src_port: Some(5061),
        dst_port: Some(5060),
        ts_secs: Some(u32::try_from(ts.secs()).unwrap()),
        ts_micros: Some(ts.subsec_micros()),
        proto_type: Some(PROTO_TYPE_SIP),
        capture_id: Some(2001),
        payload: Some(Bytes::from_static(INVITE)),
        ..HepPacket::default()
    })
}

#[inline(never)]
fn decode_loop(buf: &Bytes, cfg: &HepConfig, n: usize) -> usize {
    let mut ok = 0;
    for _ in 0..n {
        let p = decode_sip_bytes(black_box(buf.clone()), Timestamp::EPOCH, cfg);
        ok += usize::from(black_box(p).is_ok());
    }
    ok
}

#[inline(never)]
fn decode_copy_loop(buf: &[u8], cfg: &HepConfig, n: usize) -> usize {
    let mut ok = 0;
    for _ in 0..n {
        let p = decode_sip(black_box(buf), Timestamp::EPOCH, cfg);
        ok += usize::from(black_box(p).is_ok());
    }
    ok
}

#[test]
#[ignore = "a harness for callgrind, not a test"]
fn decode_sip_instructions() {
    let n = std::env::var("HEP_PERF_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let buf = Bytes::from(invite_hep3());
    let cfg = HepConfig::default();
    assert_eq!(decode_loop(&buf, &cfg, n), n);
    assert_eq!(decode_copy_loop(&buf, &cfg, n), n);
}
