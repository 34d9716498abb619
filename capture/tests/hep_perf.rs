//! Instruction-count harness for the HEPv3 decoder, for callgrind:
//!
//! ```text
//! HEP_PERF_ITERS=100000 valgrind --tool=callgrind \
//!   --toggle-collect='*hep_perf::decode_loop*' \
//!   <capture's hep_perf test binary, release> --ignored
//! ```
//! then instructions / iterations is the cost of one `decode_sip_bytes`
//! of a typical SIP INVITE (the packet of `benches/capture.rs`);
//! `--toggle-collect='*hep_perf::decode_copy_loop*'` gives `decode_sip`'s,
//! `--toggle-collect='*hep_perf::hep_decode_loop*'` that of `hep::decode`
//! (a `HepPacket`, byte fields copied), `*hep_perf::decode_ref_loop*` that
//! of `hep::decode_ref` (byte fields borrowed).
#![allow(clippy::unwrap_used)]

mod support;

use std::hint::black_box;

use bytes::Bytes;
use capture::Timestamp;
use capture::hep::{HepConfig, decode_sip, decode_sip_bytes};

use support::invite_hep3;

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

#[inline(never)]
fn hep_decode_loop(buf: &[u8], n: usize) -> usize {
    let mut ok = 0;
    for _ in 0..n {
        let p = capture::hep::decode(black_box(buf), Timestamp::EPOCH);
        ok += usize::from(black_box(p).is_ok());
    }
    ok
}

#[inline(never)]
fn decode_ref_loop(buf: &[u8], n: usize) -> usize {
    let mut ok = 0;
    for _ in 0..n {
        let p = capture::hep::decode_ref(black_box(buf), Timestamp::EPOCH);
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
    assert_eq!(hep_decode_loop(&buf, n), n);
    assert_eq!(decode_ref_loop(&buf, n), n);
}
