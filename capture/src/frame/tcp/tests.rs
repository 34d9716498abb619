use std::time::Duration;

use proptest::prelude::*;

use super::*;
use crate::frame::testutil::*;
use crate::frame::{FrameDecoder, LinkType};

const ISN: u32 = 1000;

struct Run {
    d: FrameDecoder,
    out: Vec<SipPacket>,
}

impl Run {
    fn new(cfg: DecoderConfig) -> Self {
        Run {
            d: FrameDecoder::new(cfg),
            out: Vec::new(),
        }
    }

    fn default() -> Self {
        Run::new(DecoderConfig::default())
    }

    fn frame(&mut self, f: &[u8], at: Timestamp) {
        self.d
            .handle_frame(LinkType::RawIp, at, f, f.len(), Source::Pcap, &mut self.out);
    }

    /// A segment of 10.0.0.1:40000 -> 10.0.0.2:5060 whose data starts
    /// at stream offset `off` (the SYN is at ISN, data at ISN + 1).
    fn seg(&mut self, off: u32, f: Flags, data: &[u8], at: Timestamp) {
        let seq = if f.syn {
            ISN.wrapping_add(off)
        } else {
            ISN.wrapping_add(1).wrapping_add(off)
        };
        self.frame(&tcp_ipv4(40000, 5060, seq, f, data), at);
    }

    fn syn(&mut self) {
        self.seg(0, SYN, b"", ts(0));
    }

    fn payloads(&self) -> Vec<Vec<u8>> {
        self.out.iter().map(|p| p.payload.to_vec()).collect()
    }

    fn stats(&self) -> &Stats {
        self.d.stats()
    }
}

fn msgs(n: usize) -> Vec<Vec<u8>> {
    (0..n).map(|i| sip(i, &"x".repeat(i * 7))).collect()
}

#[test]
fn several_messages_in_one_segment_with_keepalives() {
    let m = msgs(3);
    let mut r = Run::default();
    r.syn();
    let data = [&b"\r\n\r\n"[..], &m[0], b"\r\n", &m[1], &m[2], b"\r\n\r\n"].concat();
    r.seg(0, NONE, &data, ts(1));
    assert_eq!(r.payloads(), m);
    let p = &r.out[0];
    assert_eq!(p.src, "10.0.0.1:40000".parse().expect("addr"));
    assert_eq!(p.dst, "10.0.0.2:5060".parse().expect("addr"));
    assert_eq!(p.transport, Transport::Tcp);
    assert_eq!(p.source, Source::Pcap);
    assert_eq!(p.ts, ts(1));
    assert_eq!(r.stats().sip, 3);
    assert_eq!(r.stats().total_drops(), 0);
}

#[test]
fn keepalive_only_segments_produce_nothing() {
    let mut r = Run::default();
    r.syn();
    r.seg(0, NONE, b"\r\n\r\n", ts(1));
    r.seg(4, NONE, b"\r\n", ts(2));
    assert!(r.out.is_empty());
    assert_eq!(r.stats().total_drops(), 0);
    let m = sip(1, "abc");
    r.seg(6, NONE, &m, ts(3));
    assert_eq!(r.payloads(), vec![m]);
}

#[test]
fn one_message_split_at_every_byte() {
    let m = sip(1, "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\n");
    for cut in 1..m.len() {
        let mut r = Run::default();
        r.syn();
        r.seg(0, NONE, &m[..cut], ts(1));
        assert!(r.out.is_empty(), "cut {cut}");
        r.seg(cut as u32, NONE, &m[cut..], ts(2));
        assert_eq!(r.payloads(), vec![m.clone()], "cut {cut}");
        assert_eq!(r.out[0].ts, ts(1), "timestamp of the first byte");
        assert_eq!(r.stats().total_drops(), 0);
    }
}

#[test]
fn byte_by_byte_stream() {
    let m = msgs(3);
    let data = m.concat();
    let mut r = Run::default();
    r.syn();
    for (i, b) in data.iter().enumerate() {
        r.seg(i as u32, NONE, &[*b], ts(i as i64));
    }
    assert_eq!(r.payloads(), m);
    assert_eq!(r.out[1].ts, ts(m[0].len() as i64));
}

#[test]
fn retransmissions_are_deduplicated() {
    let m = msgs(3);
    let data = m.concat();
    let mut r = Run::default();
    r.syn();
    let (a, b) = (m[0].len(), m[0].len() + m[1].len());
    r.seg(0, NONE, &data[..b], ts(1));
    r.seg(0, NONE, &data[..b], ts(2)); // exact copy
    r.seg(a as u32, NONE, &data[a..], ts(3)); // overlaps the first
    r.seg(0, NONE, &data, ts(4)); // everything again
    assert_eq!(r.payloads(), m);
    assert_eq!(r.stats().total_drops(), 0);
}

#[test]
fn out_of_order_segments_are_reordered() {
    let m = msgs(3);
    let data = m.concat();
    let third = data.len() / 3;
    let mut r = Run::default();
    r.syn();
    r.seg((2 * third) as u32, NONE, &data[2 * third..], ts(1));
    r.seg(third as u32, NONE, &data[third..2 * third], ts(2));
    assert!(r.out.is_empty());
    r.seg(0, NONE, &data[..third], ts(3));
    assert_eq!(r.payloads(), m);
    assert_eq!(r.out[0].ts, ts(3));
    assert_eq!(r.stats().total_drops(), 0);
}

#[test]
fn sequence_numbers_wrap() {
    let m = msgs(4);
    let data = m.concat();
    let mut r = Run::default();
    let isn = u32::MAX - 40;
    let send = |r: &mut Run, off: usize, f: Flags, d: &[u8]| {
        let seq = isn.wrapping_add(1).wrapping_add(off as u32);
        let seq = if f.syn { isn } else { seq };
        r.frame(&tcp_ipv4(40000, 5060, seq, f, d), ts(1));
    };
    send(&mut r, 0, SYN, b"");
    for (i, chunk) in data.chunks(30).enumerate().rev() {
        send(&mut r, i * 30, NONE, chunk);
    }
    assert_eq!(r.payloads(), m);
}

/// Messages 0..3; the segment holding the start of message 1 is lost.
fn lossy_stream(r: &mut Run) -> Vec<Vec<u8>> {
    let m = msgs(3);
    let (a, b) = (m[0].len(), m[0].len() + m[1].len());
    r.syn();
    r.seg(0, NONE, &m[0], ts(1));
    // m[1][..10] lost.
    r.seg(
        (a + 10) as u32,
        NONE,
        &[&m[1][10..], &m[2][..]].concat(),
        ts(2),
    );
    let _ = b;
    m
}

#[test]
fn gap_times_out_then_resyncs() {
    let mut r = Run::default();
    let m = lossy_stream(&mut r);
    assert_eq!(r.payloads(), vec![m[0].clone()]);
    assert_eq!(r.d.poll_timeout(), Some(ts(7)));
    r.d.handle_timeout(ts(6));
    assert_eq!(r.stats().drops(DropReason::TcpGap), 0);
    r.d.handle_timeout(ts(7));
    assert_eq!(r.stats().drops(DropReason::TcpGap), 1);
    let mut out = Vec::new();
    r.d.poll_packets(&mut out);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].payload, m[2]);
    assert_eq!(out[0].ts, ts(2));
}

#[test]
fn gap_is_skipped_when_later_traffic_is_past_the_deadline() {
    let mut r = Run::default();
    let m = lossy_stream(&mut r);
    let end = m.concat().len();
    let m3 = sip(3, "later");
    r.seg(end as u32, NONE, &m3, ts(60));
    assert_eq!(r.payloads(), vec![m[0].clone(), m[2].clone(), m3]);
    assert_eq!(r.stats().drops(DropReason::TcpGap), 1);
}

#[test]
fn gap_is_skipped_when_the_buffer_is_full() {
    let cfg = DecoderConfig {
        max_tcp_stream_bytes: 600,
        ..DecoderConfig::default()
    };
    let mut r = Run::new(cfg);
    r.syn();
    let m: Vec<Vec<u8>> = (0..6).map(|i| sip(i, "body")).collect();
    let data = m.concat();
    // The first 10 bytes are lost; the rest arrives in 50-byte pieces.
    for (i, chunk) in data[10..].chunks(50).enumerate() {
        r.seg((10 + i * 50) as u32, NONE, chunk, ts(1));
    }
    assert!(r.stats().drops(DropReason::TcpGap) >= 1);
    // Everything after the first message made it.
    assert_eq!(r.payloads(), m[1..].to_vec());
}

#[test]
fn missing_content_length_keeps_the_headers() {
    let bad = b"INVITE sip:b SIP/2.0\r\nCall-ID: x\r\n\r\n".to_vec();
    let good = sip(2, "ok");
    let mut r = Run::default();
    r.syn();
    r.seg(0, NONE, &[&bad[..], &good].concat(), ts(1));
    assert_eq!(r.payloads(), vec![bad, good]);
    assert_eq!(r.stats().drops(DropReason::BadContentLength), 1);
}

#[test]
fn oversize_message_is_skipped() {
    let cfg = DecoderConfig {
        max_sip_message: 200,
        ..DecoderConfig::default()
    };
    let big = sip(1, &"y".repeat(300));
    let good = sip(2, "ok");
    let mut r = Run::new(cfg);
    r.syn();
    let data = [&big[..], &good].concat();
    for (i, c) in data.chunks(64).enumerate() {
        r.seg((i * 64) as u32, NONE, c, ts(1));
    }
    assert_eq!(r.payloads(), vec![good]);
    assert_eq!(r.stats().drops(DropReason::Oversize), 1);
}

#[test]
fn non_sip_stream_counts_not_sip_once() {
    let mut r = Run::default();
    r.syn();
    r.seg(0, NONE, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", ts(1));
    r.seg(27, NONE, &[0x16; 500], ts(1));
    assert!(r.out.is_empty());
    assert_eq!(r.stats().drops(DropReason::NotSip), 1);
}

#[test]
fn joining_mid_stream_skips_to_a_message_start() {
    let m = msgs(2);
    let mut r = Run::default();
    // No SYN seen: the capture began inside message 0.
    r.seg(0, NONE, &[&m[0][20..], &m[1][..]].concat(), ts(1));
    assert_eq!(r.payloads(), vec![m[1].clone()]);
    assert_eq!(r.stats().total_drops(), 0);
}

#[test]
fn unknown_non_sip_connections_get_no_stream() {
    let mut r = Run::default();
    r.seg(0, NONE, &[0x17, 0x03, 0x03, 0, 20], ts(1));
    assert_eq!(r.d.tcp_streams(), 0);
    assert_eq!(r.stats().drops(DropReason::NotSip), 1);
    // The tail of a message: no stream until a start line shows up.
    let m = msgs(2);
    r.seg(100, NONE, &m[0][m[0].len() - 10..], ts(1));
    assert_eq!(r.d.tcp_streams(), 0);
    r.seg(100 + 10, NONE, &m[1], ts(1));
    assert_eq!(r.payloads(), vec![m[1].clone()]);
}

#[test]
fn fin_closes_and_counts_a_cut_message() {
    let m = sip(1, "body");
    let mut r = Run::default();
    r.syn();
    r.seg(0, FIN, &m, ts(1));
    assert_eq!(r.payloads(), vec![m.clone()]);
    assert_eq!(r.d.tcp_streams(), 0);
    assert_eq!(r.stats().total_drops(), 0);

    let mut r = Run::default();
    r.syn();
    r.seg(0, NONE, &m[..10], ts(1));
    r.seg(10, FIN, b"", ts(1));
    assert_eq!(r.d.tcp_streams(), 0);
    assert_eq!(r.stats().drops(DropReason::Truncated), 1);
}

#[test]
fn fin_waits_for_out_of_order_data() {
    let m = sip(1, "body");
    let mut r = Run::default();
    r.syn();
    r.seg(10, FIN, &m[10..], ts(1));
    assert_eq!(r.d.tcp_streams(), 1);
    r.seg(0, NONE, &m[..10], ts(1));
    assert_eq!(r.payloads(), vec![m]);
    assert_eq!(r.d.tcp_streams(), 0);
}

#[test]
fn rst_closes_both_directions() {
    let m = sip(1, "body");
    let mut r = Run::default();
    r.syn();
    r.seg(0, NONE, &m[..10], ts(1));
    // The other direction: 10.0.0.2:5060 -> 10.0.0.1:40000.
    let back = tcp_ipv4_addrs(B4, A4, 5060, 40000, 77, SYN, b"");
    r.frame(&back, ts(1));
    assert_eq!(r.d.tcp_streams(), 2);
    let rst = tcp_ipv4_addrs(B4, A4, 5060, 40000, 78, RST, b"");
    r.frame(&rst, ts(2));
    assert_eq!(r.d.tcp_streams(), 0);
    assert_eq!(r.stats().drops(DropReason::Truncated), 1);
}

#[test]
fn new_syn_replaces_the_connection() {
    let m = sip(1, "body");
    let mut r = Run::default();
    r.syn();
    r.seg(0, NONE, &m[..10], ts(1));
    r.syn(); // a retransmitted SYN changes nothing
    r.seg(10, NONE, &m[10..], ts(1));
    assert_eq!(r.payloads(), vec![m.clone()]);
    // Port reuse: a new ISN starts a new stream.
    r.frame(&tcp_ipv4(40000, 5060, 5, SYN, b""), ts(2));
    r.frame(&tcp_ipv4(40000, 5060, 6, NONE, &m), ts(2));
    assert_eq!(r.out.len(), 2);
    assert_eq!(r.stats().total_drops(), 0);
}

#[test]
fn idle_streams_expire() {
    let mut r = Run::default();
    r.syn();
    r.seg(0, NONE, b"INVITE sip:x SIP/2.0\r\n", ts(1));
    assert_eq!(
        r.d.poll_timeout(),
        Some(ts(0).saturating_add(Duration::from_secs(300)))
    );
    r.d.handle_timeout(ts(300));
    assert_eq!(r.d.tcp_streams(), 1, "rescheduled from the last segment");
    assert_eq!(r.d.poll_timeout(), Some(ts(301)));
    r.d.handle_timeout(ts(301));
    assert_eq!(r.d.tcp_streams(), 0);
    assert_eq!(r.stats().drops(DropReason::ReassemblyTimeout), 1);
    assert_eq!(r.d.poll_timeout(), None);
}

#[test]
fn finish_delivers_behind_holes_and_counts_partials() {
    let mut r = Run::default();
    let m = lossy_stream(&mut r);
    // Another stream with half a message.
    r.frame(&tcp_ipv4(40001, 5060, 1, SYN, b""), ts(1));
    r.frame(&tcp_ipv4(40001, 5060, 2, NONE, &m[0][..20]), ts(1));
    let mut out = Vec::new();
    r.d.finish(&mut out);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].payload, m[2]);
    assert_eq!(r.stats().drops(DropReason::TcpGap), 1);
    assert_eq!(r.stats().drops(DropReason::ReassemblyTimeout), 1);
    assert_eq!(r.d.tcp_streams(), 0);
    assert_eq!(r.d.poll_timeout(), None);
}

#[test]
fn stream_limit_refuses_new_streams() {
    let cfg = DecoderConfig {
        max_tcp_streams: 1,
        ..DecoderConfig::default()
    };
    let m = sip(1, "x");
    let mut r = Run::new(cfg);
    r.syn();
    r.frame(&tcp_ipv4(40001, 5060, 1, SYN, b""), ts(1));
    r.frame(&tcp_ipv4(40001, 5060, 2, NONE, &m), ts(1));
    assert_eq!(r.stats().drops(DropReason::ReassemblyLimit), 2);
    assert!(r.out.is_empty());
    r.seg(0, NONE, &m, ts(1));
    assert_eq!(r.out.len(), 1);
}

#[test]
fn one_bogus_far_segment_does_not_derail_the_stream() {
    let m = msgs(2);
    let mut r = Run::default();
    r.syn();
    r.seg(0, NONE, &m[0], ts(1));
    r.seg(50_000_000, NONE, b"garbage", ts(1));
    r.seg(m[0].len() as u32, NONE, &m[1], ts(1));
    assert_eq!(r.payloads(), m);
    assert_eq!(r.stats().total_drops(), 0);
}

#[test]
fn a_confirmed_jump_resyncs() {
    let m = msgs(3);
    let mut r = Run::default();
    r.syn();
    r.seg(0, NONE, &m[0], ts(1));
    let far = 10_000_000u32;
    r.seg(far, NONE, &m[1], ts(2));
    r.seg(far + m[1].len() as u32, NONE, &m[2], ts(3));
    assert_eq!(r.payloads(), m);
    assert_eq!(r.stats().drops(DropReason::TcpGap), 1);
}

#[test]
fn vlan_separates_streams() {
    let m = sip(1, "x");
    let mut d = FrameDecoder::new(DecoderConfig::default());
    let mut out = Vec::new();
    for vlan in [10u16, 20] {
        let mut f = Vec::new();
        etherparse::PacketBuilder::ethernet2([1; 6], [2; 6])
            .single_vlan(etherparse::VlanId::try_new(vlan).expect("vlan"))
            .ipv4(A4, B4, 64)
            .tcp(40000, 5060, 1, 1000)
            .write(&mut f, &m[..40])
            .expect("builds");
        d.handle_frame(
            LinkType::Ethernet,
            ts(1),
            &f,
            f.len(),
            Source::Live,
            &mut out,
        );
    }
    assert_eq!(d.tcp_streams(), 2);
}

/// Issue 7: in-order data that never completes a message counts
/// against `max_tcp_stream_bytes` (it used to grow to
/// `max_sip_message`, or without end when resynchronising on
/// `INVITE SIP/2.0aaaa...`), and is dropped with a counter.
#[test]
fn in_order_data_without_a_message_end_is_capped() {
    let cfg = DecoderConfig {
        max_tcp_stream_bytes: 4096,
        ..DecoderConfig::default()
    };
    for (syn, head) in [
        (true, &b"INVITE sip:x SIP/2.0\r\nX-H: "[..]),
        (false, b"INVITE SIP/2.0"),
    ] {
        let mut r = Run::new(cfg.clone());
        if syn {
            r.syn();
        }
        let mut off = 0usize;
        let mut send = |r: &mut Run, d: &[u8]| {
            r.seg(off as u32, NONE, d, ts(1));
            off += d.len();
            assert!(r.d.held_bytes() <= 4096, "{}", r.d.held_bytes());
        };
        send(&mut r, head);
        for _ in 0..(1 << 20) / 512 {
            send(&mut r, &[b'a'; 512]);
        }
        assert!(
            r.stats().drops(DropReason::ReassemblyLimit) >= 1,
            "{head:?}"
        );
        assert_eq!(r.d.tcp_streams(), 1);
        // The stream goes on: a message after a line end is found.
        let m = sip(1, "ok");
        send(&mut r, b"\r\n");
        send(&mut r, &m);
        assert_eq!(r.payloads(), vec![m], "{head:?}");
    }
}

/// Issue 7: one byte budget over every stream and all IP fragments;
/// the stream (or datagram) that would pass it is dropped and counted.
#[test]
fn global_budget_bounds_all_streams_and_fragments() {
    let cfg = DecoderConfig {
        max_total_bytes: 10_000,
        ..DecoderConfig::default()
    };
    let mut r = Run::new(cfg);
    // Streams holding out-of-order data behind a lost first segment.
    for port in 0..10u16 {
        r.frame(&tcp_ipv4(41000 + port, 5060, 1, SYN, b""), ts(1));
        r.frame(
            &tcp_ipv4(41000 + port, 5060, 100, NONE, &[b'x'; 2000]),
            ts(1),
        );
        assert!(r.d.held_bytes() <= 10_000, "{}", r.d.held_bytes());
    }
    let evicted = r.stats().drops(DropReason::ReassemblyBudget);
    assert!(evicted >= 5, "{evicted}");
    assert_eq!(r.d.tcp_streams(), 10 - evicted as usize);
    // No room left for a fragmented datagram either.
    let before = r.stats().drops(DropReason::ReassemblyBudget);
    let dg = udp_datagram_v4(&[b'y'; 3000]);
    for f in ipv4_fragments(9, &dg, 1480) {
        r.frame(&f, ts(1));
    }
    assert!(r.stats().drops(DropReason::ReassemblyBudget) > before);
    assert!(r.d.held_bytes() <= 10_000);
    assert_eq!(r.d.pending_datagrams(), 0);
    // Closing streams gives their bytes back.
    let mut out = Vec::new();
    r.d.finish(&mut out);
    assert_eq!(r.d.held_bytes(), 0);
}

/// A stream on `port` holding 2000 bytes of out-of-order data (the
/// segment before it lost).
fn hold_2000(r: &mut Run, port: u16) {
    r.frame(&tcp_ipv4(port, 5060, 1, SYN, b""), ts(1));
    r.frame(&tcp_ipv4(port, 5060, 100, NONE, &[b'x'; 2000]), ts(1));
}

/// Issue 7: one budget per process, not one per holder. Two frame
/// decoders and a HEP framer's account share a budget: once the others
/// hold most of it, a decoder's new stream (or datagram) is refused as
/// `ReassemblyBudget`, however little that decoder holds itself. (With
/// a budget each, every one of them could hold the whole limit.)
#[test]
fn decoders_and_hep_framers_share_one_budget() {
    let budget = crate::ByteBudget::new(10_000);
    let shared = DecoderConfig {
        budget: Some(budget.clone()),
        ..DecoderConfig::default()
    };
    // A HEP TCP connection holding a 7000-byte partial frame.
    let mut hep = budget.account();
    assert!(hep.set(7000));
    let mut a = Run::new(shared.clone());
    assert!(a.d.budget().same(&budget));
    hold_2000(&mut a, 41000);
    assert_eq!(a.d.tcp_streams(), 1, "{:?}", a.stats());
    assert_eq!(budget.used(), 7000 + a.d.held_bytes());
    // A second decoder (another capture file, the live tap): its
    // first stream passes the shared total and goes.
    let mut b = Run::new(shared);
    hold_2000(&mut b, 42000);
    assert_eq!(b.stats().drops(DropReason::ReassemblyBudget), 1);
    assert_eq!(b.d.tcp_streams(), 0);
    assert_eq!(b.d.held_bytes(), 0);
    // So is a fragmented datagram.
    let dg = udp_datagram_v4(&[b'y'; 3000]);
    for f in ipv4_fragments(9, &dg, 1480) {
        b.frame(&f, ts(1));
    }
    assert_eq!(
        b.stats().drops(DropReason::ReassemblyBudget),
        1 + 3,
        "each fragment"
    );
    assert_eq!(b.d.pending_datagrams(), 0);
    assert!(budget.used() <= budget.limit(), "{}", budget.used());
    // The holder that did not grow keeps what it has.
    assert_eq!(a.d.tcp_streams(), 1);
    assert!(hep.set(7000));
    // Once the HEP connection lets go, there is room again.
    drop(hep);
    hold_2000(&mut b, 42001);
    assert_eq!(b.d.tcp_streams(), 1, "{:?}", b.stats());
    assert_eq!(budget.used(), a.d.held_bytes() + b.d.held_bytes());
    // Closing streams, or dropping a decoder, gives the bytes back.
    let mut out = Vec::new();
    a.d.finish(&mut out);
    assert_eq!(budget.used(), b.d.held_bytes());
    drop(b);
    assert_eq!(budget.used(), 0);
}

fn hep_seg(r: &mut Run, seq: u32, f: Flags, data: &[u8]) {
    r.frame(&tcp_ipv4(40000, 9060, seq, f, data), ts(1));
}

#[test]
fn hep_over_tcp_split_and_batched() {
    let m = msgs(3);
    let stream: Vec<u8> = m
        .iter()
        .enumerate()
        .flat_map(|(i, x)| hep3(x, i as u32))
        .collect();
    for cut in [1, 5, 7, 40, stream.len() / 2, stream.len() - 1] {
        let mut r = Run::default();
        hep_seg(&mut r, 0, SYN, b"");
        hep_seg(&mut r, 1 + cut as u32, NONE, &stream[cut..]);
        hep_seg(&mut r, 1, NONE, &stream[..cut]);
        assert_eq!(r.payloads(), m, "cut {cut}");
        assert!(r.out.iter().all(|p| p.source == Source::Hep));
        assert_eq!(r.out[2].ts, ts(2));
        assert_eq!(r.stats().total_drops(), 0);
    }
}

#[test]
fn hep_over_tcp_resyncs_on_the_magic() {
    let m = msgs(2);
    let h0 = hep3(&m[0], 0);
    let stream = [&h0[..], &hep3(&m[1], 1)].concat();
    // Joined mid-stream: the first packet's tail comes first.
    let mut r = Run::default();
    hep_seg(&mut r, 50, NONE, &stream[10..]);
    assert_eq!(r.payloads(), vec![m[1].clone()]);
    assert_eq!(r.stats().total_drops(), 0);
}

#[test]
fn bad_hep_frame_kills_the_stream() {
    let m = sip(1, "x");
    let mut r = Run::default();
    hep_seg(&mut r, 0, SYN, b"");
    let mut bad = hep3(&m, 0);
    bad[4] = 0;
    bad[5] = 2; // length 2: impossible
    hep_seg(&mut r, 1, NONE, &bad);
    assert_eq!(r.stats().drops(DropReason::BadHepFrame), 1);
    // Later packets on the stream are ignored, not counted again.
    hep_seg(&mut r, 1 + bad.len() as u32, NONE, &hep3(&m, 1));
    assert!(r.out.is_empty());
    assert_eq!(r.stats().total_drops(), 1);
    // A new connection on the same ports starts afresh.
    hep_seg(&mut r, 5000, SYN, b"");
    hep_seg(&mut r, 5001, NONE, &hep3(&m, 1));
    assert_eq!(r.payloads(), vec![m]);
}

#[test]
fn hep_over_tcp_after_a_gap() {
    let m = msgs(3);
    let hs: Vec<Vec<u8>> = m
        .iter()
        .enumerate()
        .map(|(i, x)| hep3(x, i as u32))
        .collect();
    let stream = hs.concat();
    let mut r = Run::default();
    hep_seg(&mut r, 0, SYN, b"");
    hep_seg(&mut r, 1, NONE, &hs[0]);
    // The first 10 bytes of the second packet are lost.
    let at = hs[0].len() + 10;
    hep_seg(&mut r, 1 + at as u32, NONE, &stream[at..]);
    r.d.handle_timeout(ts(60));
    r.d.poll_packets(&mut r.out);
    assert_eq!(r.payloads(), vec![m[0].clone(), m[2].clone()]);
    assert_eq!(r.stats().drops(DropReason::TcpGap), 1);
}

/// Cuts `data` into segments at `cuts`, sends them with bounded
/// reordering and duplicates, and returns what came out.
fn shuffled_run(
    data: &[u8],
    cuts: &[usize],
    swaps: &[(usize, usize)],
    dups: &[(usize, usize)],
) -> Vec<Vec<u8>> {
    let mut bounds: Vec<usize> = cuts.iter().map(|c| c % data.len().max(1)).collect();
    bounds.push(0);
    bounds.push(data.len());
    bounds.sort_unstable();
    bounds.dedup();
    let mut segs: Vec<(usize, usize)> = bounds.windows(2).map(|w| (w[0], w[1])).collect();
    for (i, dist) in swaps {
        if segs.is_empty() {
            break;
        }
        let a = i % segs.len();
        let b = (a + dist % 4).min(segs.len() - 1);
        segs.swap(a, b);
    }
    for (at, len) in dups {
        let s = at % data.len().max(1);
        let e = (s + len % 300).min(data.len());
        let pos = (at / 7) % (segs.len() + 1);
        segs.insert(pos, (s, e));
    }
    let mut r = Run::default();
    r.syn();
    for (s, e) in segs {
        r.seg(s as u32, NONE, &data[s..e], ts(1));
    }
    r.payloads()
}

proptest! {
    #[test]
    fn random_segmentation_gives_the_same_messages(
        bodies in proptest::collection::vec("[a-z\r\n]{0,80}", 1..6),
        keepalive in proptest::collection::vec(any::<bool>(), 6),
        cuts in proptest::collection::vec(any::<usize>(), 0..20),
        swaps in proptest::collection::vec((any::<usize>(), any::<usize>()), 0..10),
        dups in proptest::collection::vec((any::<usize>(), any::<usize>()), 0..5),
    ) {
        let m: Vec<Vec<u8>> = bodies.iter().enumerate().map(|(i, b)| sip(i, b)).collect();
        let mut data = Vec::new();
        for (i, msg) in m.iter().enumerate() {
            if keepalive[i] {
                data.extend_from_slice(b"\r\n\r\n");
            }
            data.extend_from_slice(msg);
        }
        prop_assert_eq!(shuffled_run(&data, &cuts, &swaps, &dups), m);
    }
}
