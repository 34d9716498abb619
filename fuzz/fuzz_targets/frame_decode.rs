//! Any bytes as a captured frame of any link type: the decoder must not
//! panic, must count every frame, and every SIP message it produces from the
//! wire must start with a SIP start line.
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

fuzz_target!(|data: &[u8]| {
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
