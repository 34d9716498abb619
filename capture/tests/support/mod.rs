//! Packets shared by the HEP integration tests.
#![allow(clippy::unwrap_used, dead_code)] // each test binary uses part of it

use std::net::Ipv4Addr;

use bytes::Bytes;
use capture::Timestamp;
use capture::hep::{AF_INET, HepPacket, HepVersion, PROTO_TYPE_SIP, encode_v3};

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
pub fn invite_hep3() -> Vec<u8> {
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

/// A HEPv3 SIP packet with the usual chunks (the one `hep`'s unit tests
/// build as `sip_packet`).
pub fn sip_packet() -> HepPacket {
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
