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

    let start = Instant::now();
    let mut ok = 0;
    for p in &pkts {
        ok += usize::from(scan(black_box(&p.payload)).is_ok());
    }
    let el = start.elapsed();
    assert_eq!(ok, pkts.len());
    println!(
        "scan only:        {:>10.0} packets/s",
        pkts.len() as f64 / el.as_secs_f64()
    );

    let mut m = DialogMachine::new(Config::default()).unwrap();
    let mut events = 0u64;
    let mut peak = (0usize, 0usize);
    let start = Instant::now();
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
    println!(
        "scan + dialogs:   {:>10.0} packets/s ({events} events)",
        pkts.len() as f64 / el.as_secs_f64()
    );
    assert_eq!(events, calls * 3);
    println!(
        "live dialogs at peak: {}, {} bytes each (state + strings)",
        peak.0,
        peak.1 / peak.0.max(1)
    );
}
