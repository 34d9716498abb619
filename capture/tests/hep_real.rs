//! Real packets from Kamailio 5.6.3 siptrace (`trace_mode=1`,
//! `hep_capture_id=2001`), one sipp call UAC 127.0.0.1:5061 -> Kamailio
//! 127.0.0.1:5060 -> UAS 127.0.0.1:5062, captured with tcpdump on `lo`
//! (see `tests/data/hep/README.md`). The capture's own timestamps of the
//! three datagrams are noted per test; the HEP time is taken just before
//! sending, so it must be within a few milliseconds before them.

#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;

use capture::hep::{AF_INET, HepConfig, HepVersion, PROTO_TYPE_SIP, decode, decode_sip, encode_v3};
use capture::{SipPacket, Timestamp, Transport};

macro_rules! fixture {
    ($name:literal) => {
        include_bytes!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../tests/data/hep/",
            $name
        ))
    };
}

const V1: [&[u8]; 3] = [
    fixture!("kamailio-v1-1.hep"),
    fixture!("kamailio-v1-2.hep"),
    fixture!("kamailio-v1-3.hep"),
];
const V2: [&[u8]; 3] = [
    fixture!("kamailio-v2-1.hep"),
    fixture!("kamailio-v2-2.hep"),
    fixture!("kamailio-v2-3.hep"),
];
const V3: [&[u8]; 3] = [
    fixture!("kamailio-v3-1.hep"),
    fixture!("kamailio-v3-2.hep"),
    fixture!("kamailio-v3-3.hep"),
];

/// (src port, dst port, payload start) of the three packets of each run:
/// the INVITE received from the UAC, the 100 Kamailio answers it with, and
/// the INVITE relayed to the UAS.
const FLOW: [(u16, u16, &str); 3] = [
    (5061, 5060, "INVITE sip:1000@127.0.0.1:5060 SIP/2.0\r\n"),
    (5060, 5061, "SIP/2.0 100 trying"),
    (5060, 5062, "INVITE sip:1000@127.0.0.1:5062 SIP/2.0\r\n"),
];

fn check_flow(pkts: [&[u8]; 3], fallback: Timestamp) -> Vec<SipPacket> {
    let mut out = Vec::new();
    for (buf, (sp, dp, start)) in pkts.into_iter().zip(FLOW) {
        let s = decode_sip(buf, fallback, &HepConfig::default()).unwrap();
        assert_eq!(s.src, SocketAddr::from(([127, 0, 0, 1], sp)));
        assert_eq!(s.dst, SocketAddr::from(([127, 0, 0, 1], dp)));
        assert_eq!(s.transport, Transport::Udp);
        assert!(
            s.payload.starts_with(start.as_bytes()),
            "{:?}",
            &s.payload[..40]
        );
        assert!(s.payload.ends_with(b"\r\n"));
        let p = decode(buf, fallback).unwrap();
        assert_eq!(p.ip_family, Some(AF_INET));
        assert_eq!(p.ip_proto, Some(17));
        out.push(s);
    }
    out
}

/// Whether `hep` is at most 5 ms before the capture time `pcap`.
fn close_before(hep: Timestamp, pcap: Timestamp) {
    let lag = pcap.since(hep);
    assert!(
        hep <= pcap && lag.as_millis() < 5,
        "hep {hep:?} pcap {pcap:?}"
    );
}

#[test]
fn kamailio_v1() {
    let fallback = Timestamp::from_secs_micros(1_795_436_807, 500_000);
    for s in check_flow(V1, fallback) {
        assert_eq!(s.ts, fallback, "v1 has no time; the receive time is used");
        assert_eq!(s.capture_id, None);
    }
    assert_eq!(decode(V1[0], fallback).unwrap().version, HepVersion::V1);
}

#[test]
fn kamailio_v2_little_endian_time() {
    let pcap = [
        Timestamp::from_secs_micros(1_795_436_818, 836_715),
        Timestamp::from_secs_micros(1_795_436_818, 837_624),
        Timestamp::from_secs_micros(1_795_436_818, 838_007),
    ];
    let sips = check_flow(V2, Timestamp::EPOCH);
    for (s, t) in sips.iter().zip(pcap) {
        close_before(s.ts, t);
        assert_eq!(s.capture_id, Some(2001));
    }
    assert_eq!(
        decode(V2[0], Timestamp::EPOCH).unwrap().version,
        HepVersion::V2
    );
}

#[test]
fn kamailio_v3() {
    let pcap = [
        Timestamp::from_secs_micros(1_795_436_795, 572_103),
        Timestamp::from_secs_micros(1_795_436_795, 573_199),
        Timestamp::from_secs_micros(1_795_436_795, 573_485),
    ];
    let sips = check_flow(V3, Timestamp::EPOCH);
    for (s, t) in sips.iter().zip(pcap) {
        close_before(s.ts, t);
        assert_eq!(s.capture_id, Some(2001));
        assert_eq!(s.node, None);
        assert_eq!(
            s.correlation_id, None,
            "trace_mode packets carry no correlation id"
        );
    }
    let p = decode(V3[0], Timestamp::EPOCH).unwrap();
    assert_eq!(p.version, HepVersion::V3);
    assert_eq!(p.proto_type, Some(PROTO_TYPE_SIP));
}

#[test]
fn kamailio_v3_reencodes_to_the_same_bytes() {
    // Kamailio writes the chunks in the order encode_v3 does.
    for buf in V3 {
        let p = decode(buf, Timestamp::EPOCH).unwrap();
        assert_eq!(encode_v3(&p), buf);
    }
}

#[test]
fn same_message_in_every_version() {
    // The first packet of each run is the UAC's INVITE, in three encodings.
    let [a, b, c] = [V1[0], V2[0], V3[0]]
        .map(|buf| decode_sip(buf, Timestamp::EPOCH, &HepConfig::default()).unwrap());
    assert_eq!((a.src, a.dst), (b.src, b.dst));
    assert_eq!((b.src, b.dst), (c.src, c.dst));
}
