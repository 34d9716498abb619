use std::time::Duration;

use etherparse::{LinuxSllPacketType, PacketBuilder, VlanId};

use super::*;
use crate::frame::testutil::*;

fn decode(link: LinkType, frame: &[u8]) -> (Vec<SipPacket>, Stats) {
    decode_with(DecoderConfig::default(), link, frame)
}

fn decode_with(cfg: DecoderConfig, link: LinkType, frame: &[u8]) -> (Vec<SipPacket>, Stats) {
    let mut d = FrameDecoder::new(cfg);
    let mut out = Vec::new();
    d.handle_frame(link, ts(0), frame, frame.len(), Source::Pcap, &mut out);
    (out, d.stats().clone())
}

const INVITE: &[u8] = b"INVITE sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/UDP a\r\n\r\n";

fn assert_one_v4(out: &[SipPacket], stats: &Stats) {
    assert_eq!(out.len(), 1, "{stats:?}");
    let p = &out[0];
    assert_eq!(p.payload, INVITE);
    assert_eq!(p.src, "10.0.0.1:5060".parse().expect("addr"));
    assert_eq!(p.dst, "10.0.0.2:5060".parse().expect("addr"));
    assert_eq!(p.transport, Transport::Udp);
    assert_eq!(p.source, Source::Pcap);
    assert_eq!(p.ts, ts(0));
    assert_eq!(stats.sip, 1);
    assert_eq!(stats.packets, 1);
    assert_eq!(stats.total_drops(), 0);
}

#[test]
fn every_link_type_yields_the_message() {
    let ip = udp_ipv4(INVITE);
    let mut sll = Vec::new();
    PacketBuilder::linux_sll(LinuxSllPacketType::HOST, 6, [1, 2, 3, 4, 5, 6, 0, 0])
        .ipv4(A4, B4, 64)
        .udp(5060, 5060)
        .write(&mut sll, INVITE)
        .expect("builds");
    let null = [&[2u8, 0, 0, 0][..], &ip].concat();
    let lo = [&[0u8, 0, 0, 2][..], &ip].concat();
    let cases: Vec<(LinkType, Vec<u8>)> = vec![
        (LinkType::Ethernet, eth_udp(INVITE)),
        (LinkType::LinuxSll, sll),
        (LinkType::LinuxSll2, sll2_frame(0x0800, &ip)),
        (LinkType::RawIp, ip.clone()),
        (LinkType::Ipv4, ip.clone()),
        (LinkType::Null, null),
        (LinkType::Loop, lo),
    ];
    for (link, frame) in cases {
        let (out, stats) = decode(link, &frame);
        assert_one_v4(&out, &stats);
        assert_eq!(stats.bytes, frame.len() as u64, "{link:?}");
        assert_eq!(out[0].vlan, None);
    }
}

#[test]
fn ipv6_addresses() {
    for link in [LinkType::RawIp, LinkType::Ipv6] {
        let (out, _) = decode(link, &udp_ipv6(INVITE));
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].src, "[2001:db8::1]:5060".parse().expect("addr"));
        assert_eq!(out[0].dst, "[2001:db8::2]:5060".parse().expect("addr"));
    }
}

#[test]
fn vlan_and_qinq_record_the_outer_id() {
    let mut single = Vec::new();
    PacketBuilder::ethernet2([1; 6], [2; 6])
        .single_vlan(VlanId::try_new(42).expect("vlan"))
        .ipv4(A4, B4, 64)
        .udp(5060, 5060)
        .write(&mut single, INVITE)
        .expect("builds");
    let (out, _) = decode(LinkType::Ethernet, &single);
    assert_eq!(out[0].vlan, Some(42));
    let mut double = Vec::new();
    PacketBuilder::ethernet2([1; 6], [2; 6])
        .double_vlan(
            VlanId::try_new(100).expect("vlan"),
            VlanId::try_new(7).expect("vlan"),
        )
        .ipv4(A4, B4, 64)
        .udp(5060, 5060)
        .write(&mut double, INVITE)
        .expect("builds");
    let (out, stats) = decode(LinkType::Ethernet, &double);
    assert_one_v4(&out, &stats);
    assert_eq!(out[0].vlan, Some(100));
}

#[test]
fn udp_non_sip_is_counted() {
    for payload in [
        &b"\r\n\r\n"[..],
        b"\r\n",
        b"",
        b"\0\0\0\0",
        b"HTTP/1.1 200 OK\r\n",
    ] {
        let (out, stats) = decode(LinkType::RawIp, &udp_ipv4(payload));
        assert!(out.is_empty());
        assert_eq!(stats.drops(DropReason::NotSip), 1);
    }
}

#[test]
fn oversize_udp_is_counted() {
    let cfg = DecoderConfig {
        max_sip_message: 20,
        ..DecoderConfig::default()
    };
    let (out, stats) = decode_with(cfg, LinkType::RawIp, &udp_ipv4(INVITE));
    assert!(out.is_empty());
    assert_eq!(stats.drops(DropReason::Oversize), 1);
}

#[test]
fn not_ip_and_not_udp_tcp() {
    // ARP over Ethernet.
    let mut arp = vec![0xff; 6];
    arp.extend_from_slice(&[1; 6]);
    arp.extend_from_slice(&[0x08, 0x06]);
    arp.extend_from_slice(&[0, 1, 8, 0, 6, 4, 0, 1]);
    arp.extend_from_slice(&[0; 20]);
    let (_, stats) = decode(LinkType::Ethernet, &arp);
    assert_eq!(stats.drops(DropReason::NotIp), 1);
    // An unknown ether type.
    let mut other = arp.clone();
    other[12] = 0x88;
    other[13] = 0xcc;
    let (_, stats) = decode(LinkType::Ethernet, &other);
    assert_eq!(stats.drops(DropReason::NotIp), 1);
    // ICMP echo.
    let mut icmp = Vec::new();
    PacketBuilder::ipv4(A4, B4, 64)
        .icmpv4_echo_request(1, 1)
        .write(&mut icmp, b"ping")
        .expect("builds");
    let (_, stats) = decode(LinkType::RawIp, &icmp);
    assert_eq!(stats.drops(DropReason::NotUdpTcp), 1);
    // An unknown IP protocol (ESP).
    let mut gre = udp_ipv4(b"xxxxxxxx");
    gre[9] = 50;
    let (_, stats) = decode(LinkType::RawIp, &gre);
    assert_eq!(stats.drops(DropReason::NotUdpTcp), 1);
}

#[test]
fn truncated_and_bad_headers() {
    let frame = eth_udp(INVITE);
    let mut d = FrameDecoder::new(DecoderConfig::default());
    let mut out = Vec::new();
    // Snap length cut into the UDP payload.
    d.handle_frame(
        LinkType::Ethernet,
        ts(0),
        &frame[..60],
        frame.len(),
        Source::Live,
        &mut out,
    );
    // Cut inside the Ethernet header.
    d.handle_frame(
        LinkType::Ethernet,
        ts(0),
        &frame[..10],
        frame.len(),
        Source::Live,
        &mut out,
    );
    assert!(out.is_empty());
    assert_eq!(d.stats().drops(DropReason::Truncated), 2);
    // UDP length larger than the IP packet.
    let mut bad = udp_ipv4(INVITE);
    bad[24] = 0xff;
    d.handle_frame(
        LinkType::RawIp,
        ts(0),
        &bad,
        bad.len(),
        Source::Live,
        &mut out,
    );
    // IPv4 header length below 20.
    let mut bad = udp_ipv4(INVITE);
    bad[0] = 0x43;
    d.handle_frame(
        LinkType::RawIp,
        ts(0),
        &bad,
        bad.len(),
        Source::Live,
        &mut out,
    );
    assert_eq!(d.stats().drops(DropReason::BadHeader), 2);
    assert_eq!(d.stats().packets, 4);
    assert!(out.is_empty());
}

#[test]
fn ethernet_padding_is_not_truncation() {
    let mut frame = eth_udp(b"SIP/2.0 200 OK\r\n\r\n");
    frame.extend_from_slice(&[0; 8]); // padding, and a cut FCS
    let mut d = FrameDecoder::new(DecoderConfig::default());
    let mut out = Vec::new();
    d.handle_frame(
        LinkType::Ethernet,
        ts(0),
        &frame,
        frame.len() + 4,
        Source::Live,
        &mut out,
    );
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].payload, &b"SIP/2.0 200 OK\r\n\r\n"[..]);
}

fn big_invite() -> Vec<u8> {
    let mut m = b"INVITE sip:bob@example.com SIP/2.0\r\nContent-Length: 3000\r\n\r\n".to_vec();
    m.extend((0..3000).map(|i| b'a' + (i % 26) as u8));
    m
}

fn feed(d: &mut FrameDecoder, frames: &[Vec<u8>], at: Timestamp) -> Vec<SipPacket> {
    let mut out = Vec::new();
    for f in frames {
        d.handle_frame(LinkType::RawIp, at, f, f.len(), Source::Pcap, &mut out);
    }
    out
}

#[test]
fn ipv4_fragments_in_any_order_and_duplicated() {
    let msg = big_invite();
    let frags = ipv4_fragments(7, &udp_datagram_v4(&msg), 1480);
    assert_eq!(frags.len(), 3);
    for order in [[0, 0, 1, 2], [2, 1, 1, 0], [1, 1, 2, 0], [2, 0, 2, 1]] {
        let mut d = FrameDecoder::new(DecoderConfig::default());
        let frames: Vec<_> = order.iter().map(|i| frags[*i].clone()).collect();
        let out = feed(&mut d, &frames, ts(1));
        assert_eq!(out.len(), 1, "{order:?}");
        assert_eq!(out[0].payload, msg);
        assert_eq!(out[0].transport, Transport::Udp);
        assert_eq!(out[0].src, "10.0.0.1:5060".parse().expect("addr"));
        assert_eq!(d.stats().total_drops(), 0, "{order:?} {:?}", d.stats());
        assert_eq!(d.pending_datagrams(), 0);
        assert_eq!(d.poll_timeout(), None);
    }
}

#[test]
fn ipv6_fragments_reassemble() {
    let msg = big_invite();
    let frags = ipv6_fragments(99, &udp_datagram_v6(&msg), 1232);
    let mut d = FrameDecoder::new(DecoderConfig::default());
    let rev: Vec<_> = frags.iter().rev().cloned().collect();
    let out = feed(&mut d, &rev, ts(1));
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].payload, msg);
    assert_eq!(out[0].dst, "[2001:db8::2]:5060".parse().expect("addr"));
}

#[test]
fn fragments_time_out() {
    let frags = ipv4_fragments(7, &udp_datagram_v4(&big_invite()), 1480);
    let mut d = FrameDecoder::new(DecoderConfig::default());
    let out = feed(&mut d, &frags[..2], ts(0));
    assert!(out.is_empty());
    assert_eq!(d.poll_timeout(), Some(ts(30)));
    d.handle_timeout(ts(29));
    assert_eq!(d.stats().drops(DropReason::ReassemblyTimeout), 0);
    d.handle_timeout(ts(30));
    assert_eq!(d.stats().drops(DropReason::ReassemblyTimeout), 1);
    assert_eq!(d.poll_timeout(), None);
    // The last fragment alone cannot complete it any more.
    let out = feed(&mut d, &frags[2..], ts(31));
    assert!(out.is_empty());
    let mut out = Vec::new();
    d.finish(&mut out);
    assert_eq!(d.stats().drops(DropReason::ReassemblyTimeout), 2);
}

#[test]
fn fragments_over_the_limit_are_refused() {
    let cfg = DecoderConfig {
        max_ip_fragment_bytes: 2000,
        ..DecoderConfig::default()
    };
    let frags = ipv4_fragments(7, &udp_datagram_v4(&big_invite()), 1480);
    let mut d = FrameDecoder::new(cfg);
    let out = feed(&mut d, &frags, ts(0));
    assert!(out.is_empty());
    // The second fragment does not fit, which voids the datagram; the
    // third, starting a new one at offset 2960, does not fit either.
    assert_eq!(d.stats().drops(DropReason::ReassemblyLimit), 2);
    assert_eq!(d.pending_datagrams(), 0);
}

#[test]
fn overlapping_fragments_are_bad() {
    let dg = udp_datagram_v4(&big_invite());
    let a = ipv4_fragments(7, &dg, 1480);
    let b = ipv4_fragments(7, &dg[8..], 1480); // same id, shifted offsets
    let mut d = FrameDecoder::new(DecoderConfig::default());
    let mut shifted = b[0].clone();
    shifted[6] = 0x20; // MF, offset 0 -> 8 bytes in
    shifted[7] = 0x01;
    let out = feed(&mut d, &[a[0].clone(), shifted], ts(0));
    assert!(out.is_empty());
    assert_eq!(d.stats().drops(DropReason::BadFragment), 1);
}

#[test]
fn reassembled_garbage_is_counted() {
    // A fragmented datagram whose payload is not SIP.
    let dg = udp_datagram_v4(&[b'x'; 3000]);
    let mut d = FrameDecoder::new(DecoderConfig::default());
    let out = feed(&mut d, &ipv4_fragments(1, &dg, 1480), ts(0));
    assert!(out.is_empty());
    assert_eq!(d.stats().drops(DropReason::NotSip), 1);
    // A reassembled UDP header whose length exceeds the datagram.
    let mut dg = udp_datagram_v4(&[b'x'; 3000]);
    dg[4] = 0xff;
    dg[5] = 0xff;
    let out = feed(&mut d, &ipv4_fragments(2, &dg, 1480), ts(0));
    assert!(out.is_empty());
    assert_eq!(d.stats().drops(DropReason::BadHeader), 1);
}

#[test]
fn hep_in_udp_is_decoded() {
    let frame = udp_ipv4_ports(40000, 9060, &hep3(INVITE, 5));
    let (out, stats) = decode(LinkType::RawIp, &frame);
    assert_eq!(out.len(), 1, "{stats:?}");
    let p = &out[0];
    assert_eq!(p.source, Source::Hep);
    assert_eq!(p.payload, INVITE);
    assert_eq!(p.src, "192.0.2.1:5060".parse().expect("addr"));
    assert_eq!(p.capture_id, Some(7));
    assert_eq!(p.ts, ts(5), "the HEP timestamp, not the frame's");
    assert_eq!(stats.sip, 1);
    // Either port may be the HEP one.
    let frame = udp_ipv4_ports(9060, 40000, &hep3(INVITE, 5));
    assert_eq!(decode(LinkType::RawIp, &frame).0.len(), 1);
}

#[test]
fn hep_port_traffic_is_not_sip() {
    // Plain SIP to the HEP port is bad HEP, not SIP.
    let frame = udp_ipv4_ports(40000, 9060, INVITE);
    let (out, stats) = decode(LinkType::RawIp, &frame);
    assert!(out.is_empty());
    assert_eq!(stats.drops(DropReason::BadHep), 1);
    let cfg = DecoderConfig {
        hep_ports: vec![],
        ..DecoderConfig::default()
    };
    let (out, _) = decode_with(cfg, LinkType::RawIp, &frame);
    assert_eq!(out.len(), 1);
    // A HEP auth key mismatch is the HEP decoder's drop reason.
    let cfg = DecoderConfig {
        hep: crate::hep::HepConfig {
            auth_key: Some(b"k".to_vec()),
            ..crate::hep::HepConfig::default()
        },
        ..DecoderConfig::default()
    };
    let frame = udp_ipv4_ports(40000, 9060, &hep3(INVITE, 5));
    let (out, stats) = decode_with(cfg, LinkType::RawIp, &frame);
    assert!(out.is_empty());
    assert_eq!(stats.drops(DropReason::WrongAuthKey), 1);
}

/// The seed frames in `tests/data/frames` (also the fuzz corpus): a
/// first byte picking the link type, then the frame.
#[test]
fn fixture_frames() {
    const LINKS: [LinkType; 8] = [
        LinkType::Ethernet,
        LinkType::LinuxSll,
        LinkType::LinuxSll2,
        LinkType::RawIp,
        LinkType::Ipv4,
        LinkType::Ipv6,
        LinkType::Null,
        LinkType::Loop,
    ];
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/data/frames/");
    for (file, messages, vlan) in [
        ("udp_invite_rawip.bin", 1, None),
        ("udp_invite_ethernet_vlan.bin", 1, Some(42)),
        ("udp_invite_null.bin", 1, None),
        ("tcp_two_messages_rawip.bin", 2, None),
        ("ipv4_first_fragment_rawip.bin", 0, None),
    ] {
        let data = std::fs::read(format!("{dir}{file}")).expect("fixture");
        let (link, frame) = data.split_first().expect("not empty");
        let (out, stats) = decode(LINKS[usize::from(*link)], frame);
        assert_eq!(out.len(), messages, "{file}: {stats:?}");
        assert_eq!(stats.total_drops(), 0, "{file}");
        assert!(out.iter().all(|p| p.vlan == vlan), "{file}");
    }
}

/// `cargo test --release -p capture throughput -- --ignored --nocapture`
#[test]
#[ignore = "a benchmark; run in release"]
fn throughput() {
    let frame = eth_udp(INVITE);
    let mut d = FrameDecoder::new(DecoderConfig::default());
    let mut out = Vec::with_capacity(1024);
    let n = 5_000_000u64;
    let start = std::time::Instant::now();
    for i in 0..n {
        d.handle_frame(
            LinkType::Ethernet,
            ts(0),
            &frame,
            frame.len(),
            Source::Live,
            &mut out,
        );
        if i % 1024 == 0 {
            out.clear();
        }
    }
    let secs = start.elapsed().as_secs_f64();
    println!("{:.2} M frames/s", n as f64 / secs / 1e6);
    assert_eq!(d.stats().sip, n);
}

#[test]
fn timeouts_are_relative_to_capture_time() {
    let cfg = DecoderConfig {
        ip_fragment_timeout: Duration::from_secs(1),
        ..DecoderConfig::default()
    };
    let frags = ipv4_fragments(7, &udp_datagram_v4(&big_invite()), 1480);
    let mut d = FrameDecoder::new(cfg);
    feed(&mut d, &frags[..1], ts(100));
    assert_eq!(d.poll_timeout(), Some(ts(101)));
}
