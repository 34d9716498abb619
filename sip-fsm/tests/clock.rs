//! The clock rule (issue 7): one packet with a wild timestamp (HEP seconds
//! `0xffffffff`, 2106, or 1970) never moves the dialog clock: answered
//! calls still end at their BYE and later INVITEs still work.
#![allow(missing_docs, clippy::unwrap_used)]

mod support;

use capture::Timestamp;
use sip_fsm::{DialogEvent, DialogMachine};
use support::*;

/// 2106-02-07T06:28:15Z, HEP's largest seconds value.
const Y2106: Timestamp = Timestamp::from_nanos(0xffff_ffff_i64 * 1_000_000_000);
/// 1970-01-01T00:00:01Z.
const Y1970: Timestamp = Timestamp::from_nanos(1_000_000_000);

/// Call `a` answered at 3 s with BYE at 63 s; a stray packet stamped `bad`
/// at 30 s; call `b` starting at 90 s, answered, BYE at 150 s.
fn traffic(bad: Timestamp, what: &str) -> Vec<capture::SipPacket> {
    let a = Flow::new("a");
    let b = Flow::new("b");
    let mut wild = pkt(30_000, what);
    wild.ts = bad;
    vec![
        pkt(0, &a.invite(1, "a1")),
        pkt(3000, &a.r(200, 1, Some("ta"), "a1")),
        wild,
        pkt(63_000, &a.req("BYE", Dir::Caller, 2, Some("ta"), "a3", "")),
        pkt(90_000, &b.invite(1, "b1")),
        pkt(92_000, &b.r(200, 1, Some("tb"), "b1")),
        pkt(150_000, &b.req("BYE", Dir::Caller, 2, Some("tb"), "b3", "")),
    ]
}

const EXPECTED: [&str; 6] = [
    "attempt a setup=0",
    "answer a at=3000 tag=ta pdd=3000 se=None",
    "end a bye code=200 answer=3000 end=63000 dur=60000 pdd=3000 ring=- by=Caller cause=-",
    "attempt b setup=90000",
    "answer b at=92000 tag=tb pdd=2000 se=None",
    "end b bye code=200 answer=92000 end=150000 dur=58000 pdd=2000 ring=- by=Caller cause=-",
];

fn options() -> String {
    "OPTIONS sip:x@h SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=o1\r\nFrom: <sip:k@h>;tag=k\r\n\
     To: <sip:x@h>\r\nCall-ID: keepalive\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
        .into()
}

#[test]
fn one_packet_stamped_2106_does_not_end_every_call() {
    let (events, stats) = run(cfg(), &traffic(Y2106, &options()));
    assert_eq!(summaries(&events), EXPECTED);
    assert_eq!((stats.clock_jump_future, stats.max_duration), (1, 0));
}

#[test]
fn one_invite_stamped_2106_is_dropped_not_billed() {
    let (events, stats) = run(cfg(), &traffic(Y2106, &Flow::new("z").invite(1, "z1")));
    assert_eq!(summaries(&events), EXPECTED);
    assert_eq!(stats.clock_jump_future, 1);
}

#[test]
fn one_bye_stamped_1970_does_not_end_the_call() {
    let a = Flow::new("a");
    let bye = a.req("BYE", Dir::Caller, 2, Some("ta"), "early", "");
    let (events, stats) = run(cfg(), &traffic(Y1970, &bye));
    assert_eq!(summaries(&events), EXPECTED);
    assert_eq!(stats.clock_jump_past, 1);
}

#[test]
fn a_lone_wild_first_packet_does_not_poison_the_stream() {
    for bad in [Y2106, Y1970] {
        let mut p = traffic(bad, &options());
        let wild = p.remove(2);
        p.insert(0, wild);
        let (events, stats) = run(cfg(), &p);
        assert_eq!(summaries(&events), EXPECTED, "{bad:?}");
        assert_eq!(stats.clock_jump_future + stats.clock_jump_past, 1);
    }
}

#[test]
fn a_real_gap_in_a_capture_moves_the_clock_once_two_packets_agree() {
    // Answered, two hours of silence, then the BYE and its 200.
    let a = Flow::new("a");
    let p = vec![
        pkt(0, &a.invite(1, "a1")),
        pkt(3000, &a.r(200, 1, Some("ta"), "a1")),
        pkt(
            7_203_000,
            &a.req("BYE", Dir::Caller, 2, Some("ta"), "a3", ""),
        ),
        pkt(
            7_203_010,
            &a.resp(200, "BYE", Dir::Caller, 2, Some("ta"), "a3", ""),
        ),
    ];
    let (events, stats) = run(cfg(), &p);
    assert_eq!(
        summaries(&events).last().unwrap(),
        "end a bye code=200 answer=3000 end=7203000 dur=7200000 pdd=3000 ring=- by=Caller cause=-"
    );
    assert_eq!(stats.clock_jumps_confirmed, 1);
    assert_eq!(stats.clock_jump_future + stats.clock_jump_past, 0);
}

#[test]
fn live_a_stamp_far_from_the_receive_time_takes_the_receive_time() {
    let a = Flow::new("a");
    let mut m = DialogMachine::new(cfg()).unwrap();
    let recv = |ms: i64| t(ms).saturating_add(std::time::Duration::from_micros(1));
    m.handle(&pkt(0, &a.invite(1, "a1")), recv(0));
    m.handle(&pkt(3000, &a.r(200, 1, Some("ta"), "a1")), recv(3000));
    // A HEP agent's clock says 2106; it arrived at 60 s.
    let mut bye = pkt(60_000, &a.req("BYE", Dir::Caller, 2, Some("ta"), "a3", ""));
    bye.ts = Y2106;
    m.handle(&bye, recv(60_000));
    m.handle_timeout(recv(61_000));
    let mut events = Vec::new();
    while let Some(e) = m.poll_event() {
        events.push(e);
    }
    let Some(DialogEvent::End(r)) = events.last() else {
        panic!("{:?}", summaries(&events))
    };
    assert_eq!(ms(r.end_time), 60_000);
    assert_eq!(m.stats().clock_stamp_corrected, 1);
    assert!(m.clock().unwrap() < t(62_000));
}

#[test]
fn replay_clock_never_leaps_on_one_packet() {
    let mut m = DialogMachine::new(cfg()).unwrap();
    for p in traffic(Y2106, &options()) {
        m.handle(&p, p.ts);
        assert!(m.clock().unwrap_or(t(0)) < t(200_000), "{:?}", m.clock());
    }
}

/// Quiet gaps are normal in a capture: a BYE alone, ten minutes after the
/// answer and with nothing after it (its 200 not captured), still ends
/// its call at the end of the replay.
#[test]
fn a_lone_bye_after_a_quiet_gap_ends_its_call() {
    let a = Flow::new("a");
    let p = vec![
        pkt(0, &a.invite(1, "a1")),
        pkt(3000, &a.r(200, 1, Some("ta"), "a1")),
        pkt(600_000, &a.req("BYE", Dir::Caller, 2, Some("ta"), "a3", "")),
    ];
    let (events, stats) = run(cfg(), &p);
    assert_eq!(
        summaries(&events),
        [
            "attempt a setup=0",
            "answer a at=3000 tag=ta pdd=3000 se=None",
            "end a bye code=200 answer=3000 end=600000 dur=597000 pdd=3000 ring=- by=Caller cause=-",
        ]
    );
    assert_eq!((stats.clock_jump_future, stats.max_duration), (0, 0));
}

/// Two gaps in a row: a lone BYE after a quiet gap, then the next call
/// after another. Time moved forward through the BYE, so it stands.
#[test]
fn lone_packets_after_successive_gaps_are_all_processed() {
    let a = Flow::new("a");
    let b = Flow::new("b");
    let p = vec![
        pkt(0, &a.invite(1, "a1")),
        pkt(3000, &a.r(200, 1, Some("ta"), "a1")),
        pkt(300_000, &a.req("BYE", Dir::Caller, 2, Some("ta"), "a3", "")),
        pkt(700_000, &b.invite(1, "b1")),
        pkt(702_000, &b.r(200, 1, Some("tb"), "b1")),
        pkt(760_000, &b.req("BYE", Dir::Callee, 1, Some("tb"), "b3", "")),
        pkt(
            760_010,
            &b.resp(200, "BYE", Dir::Callee, 1, Some("tb"), "b3", ""),
        ),
    ];
    let (events, stats) = run(cfg(), &p);
    let s = summaries(&events);
    assert_eq!(
        s[2],
        "end a bye code=200 answer=3000 end=300000 dur=297000 pdd=3000 ring=- by=Caller cause=-"
    );
    assert_eq!(s[3], "attempt b setup=700000");
    assert_eq!(s.len(), 6, "{s:?}");
    assert_eq!(stats.clock_jump_future + stats.clock_jump_past, 0);
}

/// A wild stamp as the very last packet is still dropped: nothing can be
/// waiting for a packet further than `max-duration-secs` ahead.
#[test]
fn a_2106_stamp_as_the_last_packet_is_dropped() {
    let mut p = traffic(
        Y2106,
        &Flow::new("a").req("BYE", Dir::Caller, 2, Some("ta"), "x", ""),
    );
    let wild = p.remove(2);
    p.push(wild);
    let (events, stats) = run(cfg(), &p);
    assert_eq!(summaries(&events), EXPECTED);
    assert_eq!(stats.clock_jump_future, 1);
}
