//! Heap allocations per packet in the steady state, and memory per live
//! dialog. `cargo bench -p sip-fsm --bench dialog_memory` (release build).
//!
//! 1. Steady state: the `dialogs` bench traffic (`DIALOGS_CALLS`, default
//!    40,000 calls, 20,000 live at once); allocations are counted (a
//!    counting global allocator) over the second half of the packets,
//!    once the machine has grown to its working size, and reported per
//!    packet and per call started in that half.
//! 2. Memory per live dialog: `MEMORY_INVITES` (default 100,000) INVITEs
//!    1 ms apart that are never answered nor timed out; the peak RSS
//!    growth (`VmHWM` after, with the peak reset by `clear_refs`, minus
//!    `VmRSS` before) and the bytes still allocated, per live dialog.
//!
//! Run alone: RSS figures include whatever the process holds.
#![allow(clippy::unwrap_used)] // bench code: a failure should stop it

mod common;

use std::alloc::System;

use capture::{SipPacket, Source, Timestamp, Transport};
use common::traffic;
use sip_fsm::{Config, DialogMachine};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A `/proc/self/status` figure in KiB (`VmRSS`, `VmHWM`).
fn status_kib(key: &str) -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn steady_state(calls: u64) {
    let pkts = traffic(calls, 20_000);
    let half = pkts.len() / 2;
    let mut m = DialogMachine::new(Config::default()).unwrap();
    let mut events = 0u64;
    for p in &pkts[..half] {
        m.handle(p, p.ts);
        while m.poll_event().is_some() {
            events += 1;
        }
    }
    let started = m.stats().attempts;
    let region = Region::new(GLOBAL);
    for p in &pkts[half..] {
        m.handle(p, p.ts);
        while m.poll_event().is_some() {
            events += 1;
        }
    }
    let s = region.change();
    let started = m.stats().attempts - started;
    let n = (pkts.len() - half) as f64;
    println!(
        "steady state: {} packets, {started} calls started, {events} events so far",
        pkts.len() - half
    );
    println!(
        "  allocations: {} ({:.3} per packet, {:.2} per call started); reallocations: {}; bytes allocated per packet: {:.0}",
        s.allocations,
        s.allocations as f64 / n,
        s.allocations as f64 / started.max(1) as f64,
        s.reallocations,
        s.bytes_allocated as f64 / n,
    );
}

fn invite(i: u64, buf: &mut String) -> SipPacket {
    use std::fmt::Write as _;
    buf.clear();
    let _ = write!(
        buf,
        "INVITE sip:4930{i:07}@sip.carrier.example SIP/2.0\r\n\
Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-inv-{i}-0;rport\r\nMax-Forwards: 70\r\n\
From: \"Office {i}\" <sip:4940{i:07}@pbx.customer.example>;tag=3f6b9c1a{i}\r\n\
To: <sip:4930{i:07}@sip.carrier.example>\r\n\
Call-ID: {i:016x}-NjZlMDQ5ZWJhNTk1ZjE0YjQ0MmM0ODk3@192.0.2.10\r\nCSeq: 1 INVITE\r\n\
Contact: <sip:4940{i:07}@192.0.2.10:5060>\r\nUser-Agent: Bench UA 1.0\r\n\
Content-Type: application/sdp\r\nContent-Length: 0\r\n\r\n"
    );
    SipPacket {
        ts: Timestamp::from_nanos(1_700_000_000_000_000_000 + (i as i64) * 1_000_000),
        src: "192.0.2.10:5060".parse().unwrap(),
        dst: "192.0.2.20:5060".parse().unwrap(),
        transport: Transport::Udp,
        source: Source::Pcap,
        capture_id: None,
        node: None,
        correlation_id: None,
        vlan: None,
        payload: bytes::Bytes::copy_from_slice(buf.as_bytes()),
    }
}

fn memory_per_dialog(invites: u64) {
    let mut m = DialogMachine::new(Config::default()).unwrap();
    let mut buf = String::with_capacity(1024);
    let rss_before = status_kib("VmRSS");
    // Resets VmHWM to the current RSS (Linux 4.0+).
    let reset = std::fs::write("/proc/self/clear_refs", "5").is_ok();
    let region = Region::new(GLOBAL);
    let mut last = Timestamp::from_nanos(0);
    for i in 0..invites {
        let p = invite(i, &mut buf);
        m.handle(&p, p.ts);
        last = p.ts;
        while m.poll_event().is_some() {}
    }
    // Past the reorder window, before any INVITE timeout.
    m.handle_timeout(last.saturating_add(std::time::Duration::from_secs(1)));
    while m.poll_event().is_some() {}
    let s = region.change();
    let hwm = status_kib("VmHWM");
    let rss = status_kib("VmRSS");
    let live = m.live_dialogs().max(1) as u64;
    let held = s.bytes_allocated.saturating_sub(s.bytes_deallocated) as u64;
    println!(
        "memory: {} live dialogs (of {invites} INVITEs); RSS {rss_before} -> {rss} KiB, peak {hwm} KiB{}",
        m.live_dialogs(),
        if reset {
            ""
        } else {
            " (peak not reset: includes earlier use)"
        }
    );
    println!(
        "  peak RSS growth per dialog: {} bytes; RSS growth per dialog: {} bytes; heap bytes held per dialog: {} (dialog_memory(): {})",
        hwm.saturating_sub(rss_before) * 1024 / live,
        rss.saturating_sub(rss_before) * 1024 / live,
        held / live,
        m.dialog_memory() as u64 / live,
    );
    drop(m);
}

fn main() {
    // Memory first, on a fresh process, so nothing freed earlier is reused.
    memory_per_dialog(env("MEMORY_INVITES", 100_000));
    steady_state(env("DIALOGS_CALLS", 40_000));
}
