//! Any bytes as a captured frame of any link type: the decoder must not
//! panic, must count every frame, and every SIP message it produces from the
//! wire must start with a SIP start line. Input that starts like a classic
//! pcap file is also read as one, its records decoded in order, so the
//! fixture captures in `tests/data/frames/` seed whole flows (a TCP stream
//! upgraded to WebSocket, tunnels).
#![no_main]

use capture::frame::fuzzing::looks_like_sip;
use capture::frame::{DecoderConfig, FrameDecoder, LinkType};
use capture::{Source, Timestamp};
use libfuzzer_sys::fuzz_target;

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

/// The records of a little-endian classic pcap file (link type, frames).
fn pcap_records(data: &[u8]) -> Option<(u32, Vec<&[u8]>)> {
    let le = |b: &[u8]| Some(u32::from_le_bytes(b.try_into().ok()?));
    if data.get(..4)? != [0xd4, 0xc3, 0xb2, 0xa1] {
        return None;
    }
    let link = le(data.get(20..24)?)?;
    let mut rest = data.get(24..)?;
    let mut frames = Vec::new();
    while let Some(h) = rest.get(..16) {
        let len = usize::try_from(le(&h[8..12])?).ok()?;
        let frame = rest.get(16..16usize.checked_add(len)?)?;
        frames.push(frame);
        rest = &rest[16 + len..];
    }
    Some((link, frames))
}

fuzz_target!(|data: &[u8]| {
    if let Some((dlt, frames)) = pcap_records(data)
        && let Some(link) = LinkType::from_linktype(dlt)
    {
        let mut d = FrameDecoder::new(DecoderConfig::default());
        let mut out = Vec::new();
        let t0 = Timestamp::from_secs_nanos(1_700_000_000, 0);
        for f in &frames {
            d.handle_frame(link, t0, f, f.len(), Source::Pcap, &mut out);
        }
        d.finish(&mut out);
        assert_eq!(d.stats().packets, frames.len() as u64);
        assert_eq!(d.stats().sip, out.len() as u64);
        assert_eq!(d.held_bytes(), 0);
        for p in &out {
            if p.source != Source::Hep {
                assert!(looks_like_sip(&p.payload), "{:?}", p.payload);
            }
        }
    }
    let Some((&first, frame)) = data.split_first() else {
        return;
    };
    let link = LINKS[usize::from(first) % LINKS.len()];
    let mut d = FrameDecoder::new(DecoderConfig::default());
    let mut out = Vec::new();
    let t0 = Timestamp::from_secs_nanos(1_700_000_000, 0);
    // Twice: the second copy exercises duplicate fragments and
    // retransmitted segments.
    d.handle_frame(link, t0, frame, frame.len(), Source::Pcap, &mut out);
    d.handle_frame(link, t0, frame, frame.len() + 1, Source::Pcap, &mut out);
    if let Some(t) = d.poll_timeout() {
        d.handle_timeout(t);
    }
    d.poll_packets(&mut out);
    d.finish(&mut out);
    assert_eq!(d.stats().packets, 2);
    assert_eq!(d.stats().sip, out.len() as u64);
    for p in &out {
        if p.source != Source::Hep {
            assert!(looks_like_sip(&p.payload), "{:?}", p.payload);
        }
    }
});
