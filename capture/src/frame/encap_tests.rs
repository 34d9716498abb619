//! Issue 7: SIP inside the encapsulations and transports port mirrors
//! carry (IP-in-IP, GRE, ERSPAN, VXLAN, SCTP, WebSocket) is found, and
//! each failure is a named counter. Also writes the fixture captures in
//! `tests/data/frames/` (see [`fixture_captures_are_up_to_date`]).
#![allow(clippy::cast_possible_truncation)] // test sizes are small

use super::testutil::*;
use super::websocket::tests::{SWITCHED, UPGRADE, ws_frame};
use super::{DecoderConfig, FrameDecoder, LinkType};
use crate::{DropReason, SipPacket, Source, Stats, Transport};

const INVITE: &[u8] = b"INVITE sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/UDP a\r\n\r\n";

fn decode(link: LinkType, frames: &[Vec<u8>]) -> (Vec<SipPacket>, Stats) {
    let mut d = FrameDecoder::new(DecoderConfig::default());
    let mut out = Vec::new();
    for (i, f) in frames.iter().enumerate() {
        d.handle_frame(link, ts(i as i64), f, f.len(), Source::Pcap, &mut out);
    }
    d.finish(&mut out);
    (out, d.stats().clone())
}

/// One INVITE from 10.0.0.1:5060 to 10.0.0.2:5060, nothing dropped.
fn assert_invite(out: &[SipPacket], stats: &Stats, what: &str) {
    assert_eq!(out.len(), 1, "{what}: {stats:?}");
    assert_eq!(out[0].payload, INVITE, "{what}");
    assert_eq!(out[0].src, "10.0.0.1:5060".parse().expect("addr"), "{what}");
    assert_eq!(out[0].dst, "10.0.0.2:5060".parse().expect("addr"), "{what}");
    assert_eq!(stats.total_drops(), 0, "{what}: {stats:?}");
    assert_eq!(stats.sip, 1, "{what}");
}

#[test]
fn ip_in_ip() {
    let cases = [
        ("4in4", ipv4_wrap(4, &udp_ipv4(INVITE))),
        ("4in6", ipv6_wrap(4, &udp_ipv4(INVITE))),
        (
            "4in4 in Ethernet",
            eth_wrap(&ipv4_wrap(4, &udp_ipv4(INVITE))),
        ),
    ];
    for (what, frame) in cases {
        let link = if what.contains("Ethernet") {
            LinkType::Ethernet
        } else {
            LinkType::RawIp
        };
        let (out, stats) = decode(link, &[frame]);
        assert_invite(&out, &stats, what);
    }
    let (out, _) = decode(LinkType::RawIp, &[ipv4_wrap(41, &udp_ipv6(INVITE))]);
    assert_eq!(out[0].src, "[2001:db8::1]:5060".parse().expect("addr"));
}

#[test]
fn gre_and_erspan() {
    let ip = udp_ipv4(INVITE);
    let eth = eth_udp(INVITE);
    let cases = [
        ("GRE", gre(0, 0x0800, &ip)),
        ("GRE key+seq+csum", gre(0xb0, 0x0800, &ip)),
        ("GRE IPv6", gre(0x20, 0x86dd, &udp_ipv6(INVITE))),
        ("GRE bridging", gre(0x20, 0x6558, &eth)),
        ("ERSPAN I", gre(0, 0x88be, &eth)),
        ("ERSPAN II", erspan2(&eth)),
        ("ERSPAN III", erspan3(&eth)),
    ];
    for (what, g) in cases {
        let (out, stats) = decode(LinkType::Ethernet, &[eth_wrap(&ipv4_wrap(47, &g))]);
        if what == "GRE IPv6" {
            assert_eq!(out.len(), 1, "{what}: {stats:?}");
            continue;
        }
        assert_invite(&out, &stats, what);
    }
    // A VLAN tag on the mirrored frame is the packet's.
    let mut tagged = Vec::new();
    etherparse::PacketBuilder::ethernet2([1; 6], [2; 6])
        .single_vlan(etherparse::VlanId::try_new(42).expect("vlan"))
        .ipv4(A4, B4, 64)
        .udp(5060, 5060)
        .write(&mut tagged, INVITE)
        .expect("builds");
    let (out, _) = decode(LinkType::RawIp, &[ipv4_wrap(47, &erspan2(&tagged))]);
    assert_eq!(out[0].vlan, Some(42));
}

#[test]
fn bad_gre_and_erspan_are_counted() {
    let eth = eth_udp(INVITE);
    let mut routing = gre(0, 0x0800, &udp_ipv4(INVITE));
    routing[0] = 0x40;
    let mut erspan_v = erspan2(&eth);
    erspan_v[8] = 0x70; // ERSPAN version 7
    for (frame, reason) in [
        (ipv4_wrap(47, &routing), DropReason::BadGre),
        (ipv4_wrap(47, &erspan_v), DropReason::BadGre),
        (ipv4_wrap(47, &gre(0, 0x8847, b"mpls")), DropReason::NotIp),
        (ipv4_wrap(47, &[0x00, 0x00]), DropReason::Truncated),
        (ipv4_wrap(47, &gre(0, 0x0800, b"")), DropReason::Truncated),
        (
            ipv4_wrap(47, &gre(0, 0x0800, &[0x75; 30])),
            DropReason::BadHeader,
        ),
    ] {
        let (out, stats) = decode(LinkType::RawIp, &[frame]);
        assert!(out.is_empty());
        assert_eq!(stats.drops(reason), 1, "{reason}: {stats:?}");
        assert_eq!(stats.total_drops(), 1, "{stats:?}");
    }
}

#[test]
fn vxlan() {
    let (out, stats) = decode(LinkType::RawIp, &[super::testutil::vxlan(&eth_udp(INVITE))]);
    assert_invite(&out, &stats, "VXLAN");
    // SIP over TCP inside VXLAN: streams are keyed by the inner addresses.
    let m = sip(1, "hello");
    let frames = [
        super::testutil::vxlan(&eth_wrap(&tcp_ipv4(40000, 5060, 1, SYN, b""))),
        super::testutil::vxlan(&eth_wrap(&tcp_ipv4(40000, 5060, 2, NONE, &m[..30]))),
        super::testutil::vxlan(&eth_wrap(&tcp_ipv4(40000, 5060, 32, NONE, &m[30..]))),
    ];
    let (out, stats) = decode(LinkType::Ethernet, &frames.map(|f| eth_wrap(&f)));
    assert_eq!(out.len(), 1, "{stats:?}");
    assert_eq!(out[0].payload, m);
    assert_eq!(out[0].transport, Transport::Tcp);
    assert_eq!(out[0].src, "10.0.0.1:40000".parse().expect("addr"));
    // The I flag missing, or a cut header.
    let mut bad = super::testutil::vxlan(&eth_udp(INVITE));
    bad[28] = 0;
    let mut short = Vec::new();
    etherparse::PacketBuilder::ipv4(T1, T2, 64)
        .udp(1, 4789)
        .write(&mut short, &[0x08, 0, 0])
        .expect("builds");
    for f in [bad, short] {
        let (out, stats) = decode(LinkType::RawIp, &[f]);
        assert!(out.is_empty());
        assert_eq!(stats.drops(DropReason::BadVxlan), 1);
    }
}

#[test]
fn nesting_is_bounded() {
    let wrap = |n: usize| {
        let mut p = udp_ipv4(INVITE);
        for _ in 0..n {
            p = ipv4_wrap(4, &p);
        }
        p
    };
    let (out, stats) = decode(LinkType::RawIp, &[wrap(4)]);
    assert_invite(&out, &stats, "4 tunnels");
    let (out, stats) = decode(LinkType::RawIp, &[wrap(5)]);
    assert!(out.is_empty());
    assert_eq!(stats.drops(DropReason::EncapTooDeep), 1);
    // GRE in VXLAN in GRE...: the depth counts every kind.
    let mut p = eth_udp(INVITE);
    for _ in 0..3 {
        p = eth_wrap(&super::testutil::vxlan(&p));
        p = eth_wrap(&ipv4_wrap(47, &gre(0, 0x6558, &p)));
    }
    let (out, stats) = decode(LinkType::Ethernet, &[p]);
    assert!(out.is_empty());
    assert_eq!(stats.drops(DropReason::EncapTooDeep), 1);
}

#[test]
fn sctp() {
    let (out, stats) = decode(LinkType::RawIp, &[sctp_ipv4(&[sctp_data(0x03, INVITE)])]);
    assert_invite(&out, &stats, "SCTP");
    assert_eq!(out[0].transport, Transport::Sctp);
    // Bundled with a SACK and a second message.
    let sack = vec![3, 0, 0, 16, 0, 0, 0, 1, 0, 0, 0xff, 0xff, 0, 0, 0, 0];
    let ok = b"SIP/2.0 200 OK\r\nl: 0\r\n\r\n";
    let (out, stats) = decode(
        LinkType::RawIp,
        &[sctp_ipv4(&[
            sack.clone(),
            sctp_data(0x03, INVITE),
            sctp_data(0x07, ok),
        ])],
    );
    assert_eq!(out.len(), 2);
    assert_eq!(out[1].payload, &ok[..]);
    assert_eq!(stats.total_drops(), 0);
    // Failures, each under its own name.
    let mut bad_len = sctp_data(0x03, INVITE);
    bad_len[3] = 0xff;
    for (frame, reason) in [
        (
            sctp_ipv4(&[sctp_data(0x02, INVITE)]),
            DropReason::SctpFragment,
        ),
        (
            sctp_ipv4(&[sctp_data(0x00, INVITE)]),
            DropReason::SctpFragment,
        ),
        (sctp_ipv4(&[sack]), DropReason::NotSip),
        (
            sctp_ipv4(&[sctp_data(0x03, b"\x80\x00rtp")]),
            DropReason::NotSip,
        ),
        (sctp_ipv4(&[bad_len]), DropReason::BadSctp),
        (ipv4_wrap(132, &[0; 8]), DropReason::BadSctp),
    ] {
        let (out, stats) = decode(LinkType::RawIp, &[frame]);
        assert!(out.is_empty());
        assert_eq!(stats.drops(reason), 1, "{reason}: {stats:?}");
        assert_eq!(stats.total_drops(), 1, "{reason}: {stats:?}");
    }
}

/// A SIP-over-WebSocket connection: handshake both ways, then a masked
/// INVITE from the client (split over segments) and an unmasked 200 OK.
pub(crate) fn websocket_frames(ok: &[u8]) -> Vec<Vec<u8>> {
    let invite = ws_frame(true, 1, Some([9, 8, 7, 6]), INVITE);
    let reply = ws_frame(true, 1, None, ok);
    let (c, s) = (40000u16, 8080u16);
    let (mut cseq, mut sseq) = (100u32, 500u32);
    let mut frames = vec![
        tcp_ipv4_addrs(A4, B4, c, s, cseq, SYN, b""),
        tcp_ipv4_addrs(B4, A4, s, c, sseq, SYN, b""),
    ];
    cseq += 1;
    sseq += 1;
    let mut send = |frames: &mut Vec<Vec<u8>>, from_client: bool, data: &[u8]| {
        if from_client {
            frames.push(tcp_ipv4_addrs(A4, B4, c, s, cseq, NONE, data));
            cseq += data.len() as u32;
        } else {
            frames.push(tcp_ipv4_addrs(B4, A4, s, c, sseq, NONE, data));
            sseq += data.len() as u32;
        }
    };
    send(&mut frames, true, &UPGRADE[..20]);
    send(&mut frames, true, &UPGRADE[20..]);
    send(&mut frames, false, SWITCHED);
    send(&mut frames, true, &invite[..9]);
    send(&mut frames, true, &invite[9..]);
    send(&mut frames, false, &reply);
    send(
        &mut frames,
        true,
        &ws_frame(true, 8, Some([1, 1, 1, 1]), &[3, 232]),
    );
    frames
}

#[test]
fn websocket() {
    let ok = b"SIP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n";
    let (out, stats) = decode(LinkType::RawIp, &websocket_frames(ok));
    assert_eq!(out.len(), 2, "{stats:?}");
    assert_eq!(out[0].payload, INVITE);
    assert_eq!(out[0].transport, Transport::Ws);
    assert_eq!(out[0].src, "10.0.0.1:40000".parse().expect("addr"));
    assert_eq!(out[0].ts, ts(5), "the segment holding the frame's start");
    assert_eq!(out[1].payload, &ok[..]);
    assert_eq!(out[1].src, "10.0.0.2:8080".parse().expect("addr"));
    assert_eq!(stats.total_drops(), 0, "{stats:?}");
}

#[test]
fn websocket_failures_are_counted() {
    let run = |client: &[u8]| {
        let frames = [
            tcp_ipv4(40000, 80, 1, SYN, b""),
            tcp_ipv4(40000, 80, 2, NONE, client),
        ];
        decode(LinkType::RawIp, &frames)
    };
    // Plain HTTP: not SIP, once, however long the connection.
    let (out, stats) = run(b"GET / HTTP/1.1\r\nHost: x\r\n\r\nINVITE sip:x SIP/2.0\r\n");
    assert!(out.is_empty());
    assert_eq!(stats.drops(DropReason::NotSip), 1, "{stats:?}");
    assert_eq!(stats.total_drops(), 1);
    // A bad frame (reserved opcode) after a good upgrade.
    let input = [UPGRADE, &[0x83, 0x00][..]].concat();
    let (_, stats) = run(&input);
    assert_eq!(stats.drops(DropReason::BadWebsocket), 1, "{stats:?}");
    // A message that is not SIP, then an oversized one.
    let input = [
        UPGRADE,
        &ws_frame(true, 1, Some([1, 2, 3, 4]), b"{\"json\":1}"),
        &ws_frame(true, 2, Some([1, 2, 3, 4]), &[b'x'; 70_000]),
    ]
    .concat();
    let frames: Vec<Vec<u8>> = std::iter::once(tcp_ipv4(40000, 80, 1, SYN, b""))
        .chain(
            input
                .chunks(1400)
                .enumerate()
                .map(|(i, c)| tcp_ipv4(40000, 80, 2 + (i * 1400) as u32, NONE, c)),
        )
        .collect();
    let (out, stats) = decode(LinkType::RawIp, &frames);
    assert!(out.is_empty());
    assert_eq!(stats.drops(DropReason::NotSip), 1, "{stats:?}");
    assert_eq!(stats.drops(DropReason::Oversize), 1, "{stats:?}");
}

/// HEP copies inside a capture that carry RTCP are `not_sip` (issue 7).
#[test]
fn hep_rtcp_in_a_capture_is_not_sip() {
    let p = crate::hep::HepPacket {
        ip_family: Some(crate::hep::AF_INET),
        src_ipv4: Some([192, 0, 2, 1].into()),
        dst_ipv4: Some([192, 0, 2, 2].into()),
        proto_type: Some(5),
        payload: Some(bytes::Bytes::from_static(b"\x80\xc8\x00\x06rtcp")),
        ..crate::hep::HepPacket::default()
    };
    let frame = udp_ipv4_ports(40000, 9060, &crate::hep::encode_v3(&p));
    let (out, stats) = decode(LinkType::RawIp, &[frame]);
    assert!(out.is_empty());
    assert_eq!(stats.drops(DropReason::NotSip), 1, "{stats:?}");
}

/// A classic pcap file (microsecond timestamps) of `frames`, one second
/// apart from 2023-11-14T22:13:20Z.
fn pcap_file(linktype: u32, frames: &[Vec<u8>]) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    v.extend_from_slice(&2u16.to_le_bytes());
    v.extend_from_slice(&4u16.to_le_bytes());
    v.extend_from_slice(&[0; 8]); // thiszone, sigfigs
    v.extend_from_slice(&65535u32.to_le_bytes());
    v.extend_from_slice(&linktype.to_le_bytes());
    for (i, f) in frames.iter().enumerate() {
        v.extend_from_slice(&(1_700_000_000 + i as u32).to_le_bytes());
        v.extend_from_slice(&0u32.to_le_bytes());
        v.extend_from_slice(&(f.len() as u32).to_le_bytes());
        v.extend_from_slice(&(f.len() as u32).to_le_bytes());
        v.extend_from_slice(f);
    }
    v
}

/// The fixture captures: (file, link type, frames, SIP messages in it).
pub(crate) fn fixtures() -> Vec<(&'static str, u32, Vec<Vec<u8>>, usize)> {
    let ip = udp_ipv4(INVITE);
    let eth = eth_udp(INVITE);
    let ok = b"SIP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n";
    vec![
        ("encap_ipip.pcap", 101, vec![ipv4_wrap(4, &ip)], 1),
        (
            "encap_gre.pcap",
            1,
            vec![eth_wrap(&ipv4_wrap(47, &gre(0x20, 0x0800, &ip)))],
            1,
        ),
        (
            "encap_erspan2.pcap",
            1,
            vec![eth_wrap(&ipv4_wrap(47, &erspan2(&eth)))],
            1,
        ),
        (
            "encap_erspan3.pcap",
            1,
            vec![eth_wrap(&ipv4_wrap(47, &erspan3(&eth)))],
            1,
        ),
        (
            "encap_vxlan.pcap",
            1,
            vec![eth_wrap(&super::testutil::vxlan(&eth))],
            1,
        ),
        (
            "sip_sctp.pcap",
            101,
            vec![sctp_ipv4(&[sctp_data(0x03, INVITE)])],
            1,
        ),
        ("sip_websocket.pcap", 101, websocket_frames(ok), 2),
    ]
}

/// The captures in `tests/data/frames/` are what [`fixtures`] builds, and
/// the seed frames next to them (link type byte + frame, the fuzz corpus)
/// too. `ACCURATE_WRITE_FIXTURES=1 cargo test -p capture fixture_captures`
/// rewrites them.
#[test]
fn fixture_captures_are_up_to_date() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/data/frames/");
    let write = std::env::var_os("ACCURATE_WRITE_FIXTURES").is_some();
    for (file, linktype, frames, messages) in fixtures() {
        let link = LinkType::from_linktype(linktype).expect("known");
        let (out, stats) = decode(link, &frames);
        assert_eq!(out.len(), messages, "{file}: {stats:?}");
        assert_eq!(stats.total_drops(), 0, "{file}: {stats:?}");
        let mut files = vec![(file.to_string(), pcap_file(linktype, &frames))];
        // A single frame is also a seed for the frame_decode fuzz target
        // as it is: its first byte picks the link type (0 Ethernet, 3 raw
        // IP). Flows (WebSocket) reach it as a whole pcap.
        let seed_link: u8 = if linktype == 1 { 0 } else { 3 };
        if let [f] = &frames[..] {
            let name = file.replace(".pcap", ".bin");
            files.push((name, [&[seed_link][..], f].concat()));
        }
        for (name, bytes) in files {
            let path = format!("{dir}{name}");
            if write {
                std::fs::write(&path, &bytes).expect("writes");
            } else {
                let have = std::fs::read(&path).unwrap_or_default();
                assert!(
                    have == bytes,
                    "{name} is stale: ACCURATE_WRITE_FIXTURES=1 cargo test -p capture fixture_captures"
                );
            }
        }
    }
}
