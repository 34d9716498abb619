//! Calls carried across a restart: machine 1 follows a call up to some
//! point, its live calls are snapshotted (and sent through JSON, as the
//! session manager stores them), a new machine restores them and sees
//! the rest. Every record must equal the one of a single machine that
//! saw everything.
#![allow(clippy::unwrap_used)] // test code: a failure should stop it

mod support;

use std::path::Path;

use capture::{SipPacket, Timestamp};
use sip_fsm::{CallRecord, Config, DialogEvent, DialogMachine, DialogSnapshot, SnapshotState};
use support::*;

/// The packets of a recorded capture in `tests/data/sip/` (see corpus.rs).
fn recorded(name: &str) -> Vec<SipPacket> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/data/sip")
        .join(name);
    let index = std::fs::read_to_string(dir.join("index.txt")).unwrap();
    index
        .lines()
        .map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let payload = std::fs::read_to_string(dir.join(f[0])).unwrap();
            let us: i64 = f[1].parse().unwrap();
            let mut p = pkt(0, &payload);
            p.ts = Timestamp::from_nanos(t(0).as_nanos() + us * 1_000);
            p.src = f[2].parse().unwrap();
            p.dst = f[3].parse().unwrap();
            p.node = None;
            p
        })
        .collect()
}

fn records(events: &[DialogEvent]) -> Vec<CallRecord> {
    events.iter().filter_map(|e| e.record().cloned()).collect()
}

fn drain(m: &mut DialogMachine, out: &mut Vec<DialogEvent>) {
    while let Some(e) = m.poll_event() {
        out.push(e);
    }
}

/// Machine 1 sees the packets before `split_ms` and lets the clock reach
/// `split_ms` (so that the reorder window has released them), then "dies";
/// machine 2 restores machine 1's live calls (through JSON) and sees the
/// rest. The records of both, and the snapshots taken.
fn across_restart(
    cfg: Config,
    pkts: &[SipPacket],
    split_ms: i64,
) -> (Vec<CallRecord>, Vec<DialogSnapshot>) {
    let split = t(split_ms);
    let mut events = Vec::new();
    let mut m1 = DialogMachine::new(cfg.clone()).unwrap();
    let (before, after): (Vec<&SipPacket>, Vec<&SipPacket>) =
        pkts.iter().partition(|p| p.ts < split);
    for p in before {
        m1.handle(p, p.ts);
        drain(&mut m1, &mut events);
    }
    m1.handle_timeout(split);
    drain(&mut m1, &mut events);
    let json = serde_json::to_string(&m1.snapshots()).unwrap();
    drop(m1);
    let snaps: Vec<DialogSnapshot> = serde_json::from_str(&json).unwrap();
    let mut m2 = DialogMachine::new(cfg).unwrap();
    for s in &snaps {
        let info = m2.restore(s).unwrap();
        assert_eq!(m2.snapshot_call(&info).as_ref(), Some(s));
    }
    for p in after {
        m2.handle(p, p.ts);
        drain(&mut m2, &mut events);
    }
    m2.handle_timeout(Timestamp::from_nanos(i64::MAX));
    drain(&mut m2, &mut events);
    assert_eq!(m2.live_dialogs(), 0, "every dialog reaped");
    (records(&events), snaps)
}

fn phases(snaps: &[DialogSnapshot]) -> Vec<&'static str> {
    snaps
        .iter()
        .map(|s| match s.state {
            SnapshotState::Attempt { .. } => "attempt",
            SnapshotState::Retrying { .. } => "retrying",
            SnapshotState::Answered { .. } => "answered",
        })
        .collect()
}

#[test]
fn answered_calls_restored_end_at_their_bye_with_the_same_records() {
    // Between the last answer and the first BYE of each capture (and for
    // the re-INVITE, before and after it).
    for (name, split) in [
        ("answered-caller-bye", 1_500),
        ("answered-callee-bye", 1_500),
        ("reinvite", 1_000),
        ("reinvite", 2_000),
    ] {
        let pkts = recorded(name);
        let (all, _) = run(cfg(), &pkts);
        let expected = records(&all);
        assert!(!expected.is_empty());
        let (got, snaps) = across_restart(cfg(), &pkts, split);
        assert!(phases(&snaps).iter().all(|p| *p == "answered"), "{name}");
        assert_eq!(got, expected, "{name}");
        for r in &got {
            assert_eq!(r.end_reason, sip_fsm::EndReason::Bye, "{name}");
        }
    }
}

#[test]
fn an_attempt_restored_is_answered_then_ends_like_the_original() {
    // Call 1 answered at 307 ms; call 2's INVITE at 499 ms, its 200 at
    // 807 ms: at 750 ms one call is answered, the other an attempt.
    let pkts = recorded("answered-caller-bye");
    let (all, _) = run(cfg(), &pkts);
    let (got, snaps) = across_restart(cfg(), &pkts, 750);
    assert_eq!(phases(&snaps), ["answered", "attempt"]);
    assert_eq!(got, records(&all));
    assert_eq!(got.len(), 2);
}

#[test]
fn an_attempt_restored_fails_on_its_486() {
    let pkts = recorded("busy-486");
    let (all, _) = run(cfg(), &pkts);
    let (got, snaps) = across_restart(cfg(), &pkts, 300);
    assert_eq!(phases(&snaps), ["attempt"]);
    assert_eq!(got, records(&all));
    assert_eq!(got.len(), 1);
    assert!(matches!(all.last(), Some(DialogEvent::Failed(_))));
    assert_eq!(got[0].code, 486);
    assert_eq!(got[0].end_reason, sip_fsm::EndReason::Rejected);
}

#[test]
fn a_restored_cancelled_attempt_ends_cancelled() {
    let pkts = recorded("cancel-ringing");
    let (all, _) = run(cfg(), &pkts);
    let expected = records(&all);
    assert_eq!(expected.len(), 1);
    assert_eq!(expected[0].end_reason, sip_fsm::EndReason::Cancel);
    // Restart while it rings, before the CANCEL.
    let ringing = pkts
        .iter()
        .find(|p| p.payload.starts_with(b"SIP/2.0 180"))
        .unwrap()
        .ts;
    let cancel = pkts
        .iter()
        .find(|p| p.payload.starts_with(b"CANCEL"))
        .unwrap()
        .ts;
    let split = ms(ringing) + (ms(cancel) - ms(ringing)) / 2;
    assert!(
        split - 200 > ms(ringing),
        "the reorder window released the 180"
    );
    let (got, snaps) = across_restart(cfg(), &pkts, split);
    assert!(matches!(
        snaps[0].state,
        SnapshotState::Attempt { ringing: Some(_) }
    ));
    assert_eq!(got, expected);
}

/// A call answered (with `extra` headers in its 2xx) and never hung up.
fn answered_forever(extra: &str) -> Vec<SipPacket> {
    let f = Flow::new("forever");
    vec![
        pkt(0, &f.invite(1, "b1")),
        pkt(100, &f.r(180, 1, Some("tt"), "b1")),
        pkt(
            2_000,
            &f.resp(200, "INVITE", Dir::Caller, 1, Some("tt"), "b1", extra),
        ),
        pkt(2_010, &f.req("ACK", Dir::Caller, 1, Some("tt"), "b2", "")),
    ]
}

#[test]
fn a_restored_call_still_ends_at_max_duration() {
    let cfg = Config {
        max_duration_secs: 60,
        ..cfg()
    };
    let pkts = answered_forever("");
    let (all, _) = run(cfg.clone(), &pkts);
    let (got, _) = across_restart(cfg, &pkts, 5_000);
    assert_eq!(got, records(&all));
    assert_eq!(got[0].end_reason, sip_fsm::EndReason::MaxDuration);
    assert_eq!(ms(got[0].end_time), 62_000);
}

#[test]
fn a_restored_call_still_ends_at_its_session_expiry() {
    let pkts = answered_forever("Session-Expires: 90;refresher=uac\r\n");
    let (all, _) = run(cfg(), &pkts);
    let (got, _) = across_restart(cfg(), &pkts, 5_000);
    assert_eq!(got, records(&all));
    assert_eq!(got[0].end_reason, sip_fsm::EndReason::SessionExpired);
    assert_eq!(ms(got[0].end_time), 92_000);
}

#[test]
fn a_deadline_passed_during_the_restart_fires_at_its_own_time() {
    // Down for longer than max-duration: the call ends at answer + max
    // duration, not at the restart.
    let cfg = Config {
        max_duration_secs: 60,
        ..cfg()
    };
    let f = Flow::new("forever");
    let (got, _) = across_restart(
        cfg,
        &[
            pkt(0, &f.invite(1, "b1")),
            pkt(2_000, &f.r(200, 1, Some("tt"), "b1")),
            pkt(600_000, &f.req("BYE", Dir::Caller, 2, Some("tt"), "b3", "")),
        ],
        5_000,
    );
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].end_reason, sip_fsm::EndReason::MaxDuration);
    assert_eq!(ms(got[0].end_time), 62_000);
}

#[test]
fn ended_calls_have_no_snapshot_and_restore_refuses_duplicates_and_foreign_digests() {
    let f = Flow::new("once");
    let mut m = DialogMachine::new(cfg()).unwrap();
    for p in [
        pkt(0, &f.invite(1, "b1")),
        pkt(2_000, &f.r(200, 1, Some("tt"), "b1")),
    ] {
        m.handle(&p, p.ts);
    }
    m.handle_timeout(t(3_000));
    let Some(DialogEvent::Attempt { call }) = m.poll_event() else {
        panic!()
    };
    let snap = m.snapshot_call(&call).unwrap();
    assert!(matches!(snap.state, SnapshotState::Answered { .. }));
    assert_eq!(m.snapshots(), std::slice::from_ref(&snap));

    let mut m2 = DialogMachine::new(cfg()).unwrap();
    m2.restore(&snap).unwrap();
    let e = m2.restore(&snap).unwrap_err();
    assert!(e.to_string().contains("tracked"), "{e}");
    let mut foreign = snap.clone();
    foreign.digest_check ^= 1;
    let mut m3 = DialogMachine::new(cfg()).unwrap();
    let e = m3.restore(&foreign).unwrap_err();
    assert!(e.to_string().contains("another build"), "{e}");

    let bye = pkt(4_000, &f.req("BYE", Dir::Callee, 1, Some("tt"), "b9", ""));
    m.handle(&bye, bye.ts);
    m.handle_timeout(t(5_000));
    assert_eq!(m.snapshot_call(&call), None);
    assert!(m.snapshots().is_empty());
}

/// A packet whose text has `@CALLID@` and `@TAG@` replaced by raw bytes.
fn raw_pkt(at: i64, text: &str, call_id: &[u8], tag: &[u8]) -> SipPacket {
    let mut p = pkt(at, text);
    let mut b = text.as_bytes().to_vec();
    for (ph, with) in [(&b"@CALLID@"[..], call_id), (&b"@TAG@"[..], tag)] {
        while let Some(i) = b.windows(ph.len()).position(|w| w == ph) {
            b.splice(i..i + ph.len(), with.iter().copied());
        }
    }
    p.payload = b.into();
    p
}

#[test]
fn a_call_id_and_from_tag_that_are_not_utf8_survive_the_restart() {
    let call_id = b"odd-\xff\xfe-%41@host";
    let tag = b"t\xe9g";
    let mut f = Flow::new("@CALLID@");
    f.from_tag = "@TAG@".into();
    let pkts = vec![
        raw_pkt(0, &f.invite(1, "b1"), call_id, tag),
        raw_pkt(2_000, &f.r(200, 1, Some("tt"), "b1"), call_id, tag),
        raw_pkt(
            2_010,
            &f.req("ACK", Dir::Caller, 1, Some("tt"), "b2", ""),
            call_id,
            tag,
        ),
        raw_pkt(
            9_000,
            &f.req("BYE", Dir::Callee, 1, Some("tt"), "b3", ""),
            call_id,
            tag,
        ),
    ];
    let (all, _) = run(cfg(), &pkts);
    let expected = records(&all);
    assert_eq!(expected.len(), 1);
    assert_eq!(&*expected[0].call.call_id_bytes, call_id);
    let (got, snaps) = across_restart(cfg(), &pkts, 5_000);
    assert_eq!(phases(&snaps), ["answered"]);
    assert_eq!(snaps[0].call.to_info(), *expected[0].call);
    assert_eq!(got, expected);
}
