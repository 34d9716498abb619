//! No heap allocation per packet in the steady state (issue 10): once the
//! machine has grown to its working size, packets that start no call and
//! end none (retransmissions, copies from other hops, ACKs, traffic that
//! is not about calls) are processed without allocating. Calls allocate
//! when they start (their info and strings) and when their events carry
//! strings, not per packet: the call info and its Call-ID, the short
//! strings being held inline.
//!
//! A counting global allocator sees every allocation of the process: this
//! file holds one test so that no other test runs beside it.
#![allow(missing_docs, clippy::unwrap_used)]

mod support;

use std::alloc::System;

use capture::{SipPacket, Timestamp};
use sip_fsm::DialogMachine;
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};
use support::*;

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

const CALLS: usize = 200;

fn flow(i: usize) -> Flow {
    Flow::new(&format!("steady-{i}@10.0.0.1"))
}

/// One round of repeats for every call, 1 ms apart from `at`: copies of
/// the 180 and the 200 from another hop, a 200 retransmission, the ACK
/// and a copy of it, an OPTIONS and a response to no known call.
fn repeats(at: i64) -> Vec<SipPacket> {
    let mut out = Vec::new();
    let mut t = at;
    let mut push = |payload: String| {
        out.push(pkt(t, &payload));
        t += 1;
    };
    for i in 0..CALLS {
        let f = flow(i);
        push(hop_copy(&f.r(180, 1, Some("tt"), "b1")));
        push(hop_copy(&f.r(200, 1, Some("tt"), "b1")));
        push(f.r(200, 1, Some("tt"), "b1"));
        let ack = f.req("ACK", Dir::Caller, 1, Some("tt"), "ack1", "");
        push(hop_copy(&ack));
        push(ack);
        push(Flow::new("probe").req("OPTIONS", Dir::Caller, 7, None, "o1", ""));
        push(Flow::new("gone").resp(200, "BYE", Dir::Caller, 2, Some("x"), "g1", ""));
    }
    out
}

fn feed(m: &mut DialogMachine, pkts: &[SipPacket]) -> usize {
    let mut events = 0;
    for p in pkts {
        m.handle(p, p.ts);
        while m.poll_event().is_some() {
            events += 1;
        }
    }
    events
}

/// Feeds `round`, then lets every deadline pass: the events and what was
/// allocated meanwhile.
fn measured(m: &mut DialogMachine, round: &[SipPacket]) -> (usize, stats_alloc::Stats) {
    let end = round.last().unwrap().ts;
    let region = Region::new(GLOBAL);
    let events = feed(m, round);
    m.handle_timeout(end.saturating_add(std::time::Duration::from_secs(1)));
    (events, region.change())
}

#[test]
fn repeats_and_non_call_packets_allocate_nothing_in_the_steady_state() {
    let mut m = DialogMachine::new(cfg()).unwrap();
    // Answered calls.
    let mut setup = Vec::new();
    for i in 0..CALLS {
        let f = flow(i);
        let at = i as i64;
        setup.push(pkt(at, &f.invite(1, "b1")));
        setup.push(pkt(at + 1, &f.r(180, 1, Some("tt"), "b1")));
        setup.push(pkt(at + 2, &f.r(200, 1, Some("tt"), "b1")));
    }
    setup.sort_by_key(|p| p.ts);
    let mut events = feed(&mut m, &setup);
    // A first round grows the reorder buffer and its spare entries.
    let warm = repeats(10_000);
    events += feed(&mut m, &warm);
    assert_eq!(events, 2 * CALLS, "attempt and answer of every call");
    let round = repeats(20_000);
    let (events, changed) = measured(&mut m, &round);
    assert_eq!(events, 0);
    let stats = m.stats();
    assert!(
        stats.hop_copies > 0 && stats.retransmissions > 0,
        "{stats:?}"
    );
    assert!(
        stats.non_call > 0 && stats.orphan_responses > 0,
        "{stats:?}"
    );
    assert_eq!(m.live_dialogs(), CALLS);
    assert_eq!(
        (changed.allocations, changed.reallocations),
        (0, 0),
        "{} packets processed with allocations: {changed:?}",
        round.len()
    );
    assert!(m.poll_timeout() > Some(Timestamp::from_nanos(0)));

    // Payloads carved out of one shared block, as the frame decoder's
    // arena makes them: the reorder buffer takes a handle, not a copy, and
    // still allocates nothing.
    let mut round = repeats(40_000);
    let block = bytes::Bytes::from(
        round
            .iter()
            .flat_map(|p| p.payload.to_vec())
            .collect::<Vec<u8>>(),
    );
    let mut at = 0;
    for p in &mut round {
        let n = p.payload.len();
        p.payload = block.slice(at..at + n);
        at += n;
    }
    assert!(round.iter().all(|p| !p.payload.is_unique()));
    let (events, changed) = measured(&mut m, &round);
    assert_eq!(events, 0);
    assert_eq!(
        (changed.allocations, changed.reallocations),
        (0, 0),
        "{} packets with shared payloads processed with allocations: {changed:?}",
        round.len()
    );

    // Calls starting: the call info and the Call-ID are allocated, the
    // short strings (users, tags, numbers, the phrase) are held inline.
    // The allowance above 2 a call is for the maps and queues that grow
    // with twice the calls live.
    let mut starts = Vec::new();
    for i in 0..2 * CALLS {
        let f = Flow::new(&format!("new-{i}@10.0.0.1"));
        let at = 50_000 + 3 * i as i64;
        starts.push(pkt(at, &f.invite(1, "b1")));
        starts.push(pkt(at + 1, &f.r(180, 1, Some("tt"), "b1")));
        starts.push(pkt(at + 2, &f.r(200, 1, Some("tt"), "b1")));
    }
    let region = Region::new(GLOBAL);
    let mut events = feed(&mut m, &starts);
    // Past the reorder window: the last packets held are processed too.
    let end = starts.last().unwrap().ts;
    m.handle_timeout(end.saturating_add(std::time::Duration::from_secs(1)));
    while m.poll_event().is_some() {
        events += 1;
    }
    let changed = region.change();
    assert_eq!(events, 4 * CALLS, "attempt and answer of every new call");
    assert!(
        changed.allocations <= 5 * CALLS,
        "{} calls started with {} allocations: {changed:?}",
        2 * CALLS,
        changed.allocations
    );
}
