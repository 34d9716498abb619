//! Throughput of scan + dialog machine on one core, and memory per live
//! dialog. `cargo bench -p sip-fsm --bench dialogs` (release build).
//!
//! Traffic (`common`): concurrent calls through a proxy, each message seen
//! on both legs (as with Kamailio siptrace): INVITE, 100, 180, 200, ACK,
//! BYE, 200, i.e. 14 packets per call, with realistic header sets.
//!
//! `DIALOGS_CALLS=N` runs N calls instead of 100,000 (e.g. a short run
//! under `valgrind --tool=callgrind` to count instructions per packet).
#![allow(clippy::unwrap_used)] // test and bench code: a failure should stop it

use std::hint::black_box;
use std::time::Instant;

mod common;

use capture::Timestamp;
use common::traffic;
use sip_fsm::{Config, DialogMachine, scan};

/// CPU time of this (single-threaded) process in nanoseconds, from
/// `/proc/self/schedstat`: on a loaded machine a rate per CPU second
/// moves far less than one per wall second.
fn cpu_ns() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/schedstat").ok()?;
    s.split_whitespace().next()?.parse().ok()
}

/// `n` per second of `wall`, and per CPU second if known.
fn rates(n: usize, wall: std::time::Duration, cpu: Option<u64>) -> String {
    let per_cpu = cpu
        .filter(|c| *c > 0)
        .map(|c| format!(", {:.0} per CPU second", n as f64 * 1e9 / c as f64))
        .unwrap_or_default();
    format!("{:>10.0} packets/s{per_cpu}", n as f64 / wall.as_secs_f64())
}

fn main() {
    let calls = std::env::var("DIALOGS_CALLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let pkts = traffic(calls, 20_000);
    let bytes: usize = pkts.iter().map(|p| p.payload.len()).sum();
    println!(
        "{} packets, {} calls, avg {} bytes",
        pkts.len(),
        calls,
        bytes / pkts.len()
    );

    let (start, cpu) = (Instant::now(), cpu_ns());
    let mut ok = 0;
    for p in &pkts {
        ok += usize::from(scan(black_box(&p.payload)).is_ok());
    }
    let el = start.elapsed();
    let cpu = cpu_ns().zip(cpu).map(|(b, a)| b.saturating_sub(a));
    assert_eq!(ok, pkts.len());
    println!("scan only:      {}", rates(pkts.len(), el, cpu));

    let mut m = DialogMachine::new(Config::default()).unwrap();
    let mut events = 0u64;
    let mut peak = (0usize, 0usize);
    let (start, cpu) = (Instant::now(), cpu_ns());
    for (i, p) in pkts.iter().enumerate() {
        m.handle(p, p.ts);
        while m.poll_event().is_some() {
            events += 1;
        }
        if i % 100_000 == 0 && m.live_dialogs() > peak.0 {
            peak = (m.live_dialogs(), m.dialog_memory());
        }
    }
    m.handle_timeout(Timestamp::from_nanos(i64::MAX));
    while m.poll_event().is_some() {
        events += 1;
    }
    let el = start.elapsed();
    let cpu = cpu_ns().zip(cpu).map(|(b, a)| b.saturating_sub(a));
    println!(
        "scan + dialogs: {} ({events} events)",
        rates(pkts.len(), el, cpu)
    );
    assert_eq!(events, calls * 3);
    println!(
        "live dialogs at peak: {}, {} bytes each (state + strings)",
        peak.0,
        peak.1 / peak.0.max(1)
    );
}
