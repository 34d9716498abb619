//! Capture-layer benchmarks: HEPv3 decode per packet, and frames-to-SIP
//! throughput, in memory and from a pcap file (read by `capture`'s file reader), on a capture
//! made by the project's generator (`benches/gen`). A counting global
//! allocator also reports the heap allocations per frame of the frame
//! decoder in the steady state.
//!
//! `cargo bench --bench capture`
#![allow(missing_docs, clippy::unwrap_used, clippy::cast_possible_truncation)]

#[path = "gen/mod.rs"]
mod generator;

use std::alloc::System;
use std::hint::black_box;
use std::net::{Ipv4Addr, SocketAddrV4};

use bytes::Bytes;
use capture::Timestamp;
use capture::frame::DecoderConfig;
use capture::hep::{HepConfig, decode_sip, decode_sip_bytes};
use capture::io::{PcapSource, ReadStatus};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

use generator::INVITE;

fn hep_decode(c: &mut Criterion) {
    let pkt = generator::hep3(
        SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 1), 5061),
        SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 2), 5060),
        1_790_000_000_123_456_000,
        INVITE.as_bytes(),
    );
    let cfg = HepConfig::default();
    let fallback = Timestamp::EPOCH;
    let mut g = c.benchmark_group("hep3_decode");
    g.throughput(Throughput::Elements(1));
    g.bench_function("decode_ref (borrows)", |b| {
        b.iter(|| capture::hep::decode_ref(black_box(&pkt), fallback).unwrap())
    });
    g.bench_function("decode", |b| {
        b.iter(|| capture::hep::decode(black_box(&pkt), fallback).unwrap())
    });
    g.bench_function("decode_sip (copies payload)", |b| {
        b.iter(|| decode_sip(black_box(&pkt), fallback, &cfg).unwrap())
    });
    let shared = Bytes::from(pkt.clone());
    g.bench_function("decode_sip_bytes (zero-copy)", |b| {
        b.iter(|| decode_sip_bytes(black_box(shared.clone()), fallback, &cfg).unwrap())
    });
    g.finish();
}

fn frames(calls: usize, hep: bool) -> Vec<generator::Frame> {
    let cfg = generator::GenConfig {
        calls,
        hep_copies: hep,
        ..generator::GenConfig::default()
    };
    let mut v = Vec::new();
    generator::generate(&cfg, |f| v.push(f));
    v
}

/// Heap allocations per frame of a frame decoder in the steady state: the
/// frames go through once to warm up, then again counted, the packets of
/// each pass dropped before the next as a consumer would.
fn allocations_per_frame(fr: &[generator::Frame]) -> (f64, usize) {
    use capture::frame::{FrameDecoder, LinkType};
    let mut d = FrameDecoder::new(DecoderConfig::default());
    let mut out = Vec::with_capacity(fr.len());
    let mut pass = |out: &mut Vec<capture::SipPacket>| {
        out.clear();
        for f in fr {
            d.handle_frame(
                LinkType::Ethernet,
                Timestamp::from_nanos(f.ts_ns),
                &f.data,
                f.data.len(),
                capture::Source::Pcap,
                out,
            );
        }
    };
    pass(&mut out);
    let region = Region::new(GLOBAL);
    pass(&mut out);
    let n = region.change().allocations;
    (n as f64 / fr.len() as f64, out.len())
}

fn frame_decode(c: &mut Criterion) {
    for (name, hep) in [("sip", false), ("sip+hep copies", true)] {
        let fr = frames(2000, hep);
        let (allocs, packets) = allocations_per_frame(&fr);
        println!(
            "frames_to_sip/{name}: {allocs:.3} heap allocations per frame in the steady state ({} frames, {packets} SIP packets)",
            fr.len()
        );
        let bytes: u64 = fr.iter().map(|f| f.data.len() as u64).sum();
        let mut g = c.benchmark_group(format!("frames_to_sip/{name}"));
        g.throughput(Throughput::Elements(fr.len() as u64));
        g.bench_function("frames", |b| {
            b.iter(|| {
                let out = generator::decode_frames(&fr);
                assert_eq!(out.len(), fr.len());
                out
            })
        });
        g.throughput(Throughput::Bytes(bytes));
        g.bench_function("bytes", |b| b.iter(|| generator::decode_frames(&fr)));
        g.finish();
    }
}

fn pcap_file(c: &mut Criterion) {
    let path = std::env::temp_dir().join(format!("accurate-bench-{}.pcap", std::process::id()));
    let cfg = generator::GenConfig {
        calls: 20_000,
        hep_copies: false,
        ..generator::GenConfig::default()
    };
    let (frames, _) = generator::write_pcap(&path, &cfg).unwrap();
    let size = std::fs::metadata(&path).unwrap().len();
    let mut g = c.benchmark_group("pcap_file_to_sip");
    g.sample_size(10);
    g.throughput(Throughput::Elements(frames));
    g.bench_function("frames", |b| b.iter(|| read_all(&path, frames)));
    g.throughput(Throughput::Bytes(size));
    g.bench_function("file bytes", |b| b.iter(|| read_all(&path, frames)));
    g.finish();
    let _ = std::fs::remove_file(&path);
}

fn read_all(path: &std::path::Path, expect: u64) -> u64 {
    let mut src = PcapSource::open_file(path, DecoderConfig::default()).unwrap();
    let mut out = Vec::with_capacity(4096);
    let mut n = 0u64;
    loop {
        out.clear();
        let st = src.read_batch(4096, &mut out).unwrap();
        n += out.len() as u64;
        if st == ReadStatus::End {
            break;
        }
    }
    assert_eq!(n, expect);
    n
}

criterion_group!(benches, hep_decode, frame_decode, pcap_file);
criterion_main!(benches);
