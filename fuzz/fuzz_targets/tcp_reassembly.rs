//! One TCP stream made of SIP messages, keep-alives and garbage, sent as
//! random segments (any order, overlaps, duplicates, holes). Round trip:
//! the messages that come out, concatenated and sent again in one segment
//! to a fresh decoder, must come out unchanged.
#![no_main]

use capture::frame::fuzzing::{looks_like_sip, tcp_ipv4_frame};
use capture::frame::{DecoderConfig, FrameDecoder, LinkType};
use capture::{SipPacket, Source, Timestamp};
use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;

const ISN: u32 = 0xffff_ff00; // wraps within the first 256 bytes

fn stream(u: &mut Unstructured<'_>) -> Result<Vec<u8>> {
    let mut s = Vec::new();
    for _ in 0..u.int_in_range(0..=8)? {
        match u.int_in_range(0..=3)? {
            0 | 1 => {
                let body: &[u8] = u.arbitrary()?;
                let l = if u.arbitrary()? {
                    "l"
                } else {
                    "Content-Length"
                };
                s.extend_from_slice(
                    format!(
                        "MESSAGE sip:a@b SIP/2.0\r\nCall-ID: x\r\n{l}: {}\r\n\r\n",
                        body.len()
                    )
                    .as_bytes(),
                );
                s.extend_from_slice(body);
            }
            2 => s.extend_from_slice(b"\r\n\r\n"),
            _ => {
                let junk: &[u8] = u.arbitrary()?;
                s.extend_from_slice(junk);
            }
        }
    }
    Ok(s)
}

fn run(cfg: &DecoderConfig, segs: &[(u32, bool, bool, &[u8])]) -> (Vec<SipPacket>, FrameDecoder) {
    let mut d = FrameDecoder::new(cfg.clone());
    let mut out = Vec::new();
    let t = Timestamp::from_secs_nanos(1_700_000_000, 0);
    for (seq, syn, fin, data) in segs {
        let f = tcp_ipv4_frame(40000, 5060, *seq, *syn, *fin, data);
        d.handle_frame(LinkType::RawIp, t, &f, f.len(), Source::Pcap, &mut out);
    }
    d.finish(&mut out);
    (out, d)
}

fn check(data: &[u8]) -> Result<()> {
    let mut u = Unstructured::new(data);
    let s = stream(&mut u)?;
    let cfg = DecoderConfig {
        max_tcp_stream_bytes: u.int_in_range(64..=4096)?,
        max_sip_message: u.int_in_range(32..=2048)?,
        ..DecoderConfig::default()
    };
    let mut segs: Vec<(u32, bool, bool, &[u8])> = vec![(ISN, true, false, &[])];
    while !u.is_empty() && segs.len() < 64 {
        let start = usize::from(u.arbitrary::<u16>()?) % (s.len() + 1);
        let len = usize::from(u.arbitrary::<u8>()?);
        let end = (start + len).min(s.len());
        let seq = ISN.wrapping_add(1).wrapping_add(start as u32);
        segs.push((seq, false, false, &s[start..end]));
    }
    let (first, d) = run(&cfg, &segs);
    assert_eq!(d.stats().sip, first.len() as u64);
    for p in &first {
        assert!(looks_like_sip(&p.payload));
        assert!(p.payload.len() <= cfg.max_sip_message);
    }
    let again: Vec<u8> = first
        .iter()
        .flat_map(|p| p.payload.iter().copied())
        .collect();
    let (second, d2) = run(
        &cfg,
        &[
            (ISN, true, false, &[]),
            (ISN.wrapping_add(1), false, true, &again),
        ],
    );
    let a: Vec<_> = first.iter().map(|p| &p.payload).collect();
    let b: Vec<_> = second.iter().map(|p| &p.payload).collect();
    assert_eq!(a, b);
    assert_eq!(d2.stats().total_drops(), 0);
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    let _ = check(data);
});
