//! Call identity: a call is its Call-ID plus the caller's From tag
//! (issue 7). Reusing a Call-ID with another From tag is a second call,
//! billed on its own with its own OriginID; Call-IDs that are not UTF-8
//! keep their bytes.
#![allow(missing_docs, clippy::unwrap_used)]

mod support;

use bytes::Bytes;
use sip_fsm::{DialogEvent, Party, escape_id, unescape_id};
use support::*;

/// The basic call of `f` (tag `tt1`), answered at 3 s, BYE at 63 s.
fn call(f: &Flow, at: i64) -> Vec<capture::SipPacket> {
    vec![
        pkt(at, &f.invite(1, &format!("{}-b1", f.from_tag))),
        pkt(
            at + 500,
            &f.r(180, 1, Some("tt1"), &format!("{}-b1", f.from_tag)),
        ),
        pkt(
            at + 3000,
            &f.r(200, 1, Some("tt1"), &format!("{}-b1", f.from_tag)),
        ),
        pkt(
            at + 63000,
            &f.req(
                "BYE",
                Dir::Caller,
                2,
                Some("tt1"),
                &format!("{}-b3", f.from_tag),
                "",
            ),
        ),
    ]
}

fn tagged(call_id: &str, tag: &str) -> Flow {
    Flow {
        from_tag: tag.into(),
        ..Flow::new(call_id)
    }
}

fn records(events: &[DialogEvent]) -> Vec<&sip_fsm::CallRecord> {
    events.iter().filter_map(DialogEvent::record).collect()
}

#[test]
fn call_id_reuse_with_a_new_from_tag_while_the_first_lingers_is_a_second_call() {
    let a = tagged("same", "ft1");
    let b = tagged("same", "ft2");
    let mut p = call(&a, 0);
    // The first call ended at 63 s and lingers 32 s; the second starts
    // within the linger with CSeq 1 (was taken as a hop copy: no CDR).
    p.extend(call(&b, 70_000));
    let (events, stats) = run(cfg(), &p);
    let recs = records(&events);
    assert_eq!(recs.len(), 2, "{:?}", summaries(&events));
    assert_eq!(ms(recs[1].call.setup_time), 70_000);
    assert_eq!(ms(recs[1].end_time), 133_000);
    assert_eq!(recs[1].call.from_tag.as_deref(), Some("ft2"));
    assert_eq!(recs[0].call.origin_id(), "same");
    assert_eq!(recs[1].call.origin_id(), "same;ft2");
    assert_eq!((stats.hop_copies, stats.reused_call_ids), (0, 1));
}

#[test]
fn call_id_reuse_with_a_new_from_tag_during_a_challenge_is_not_the_retry() {
    let a = tagged("ch", "ft1");
    let b = tagged("ch", "ft2");
    let p = vec![
        pkt(0, &a.invite(1, "a1")),
        pkt(10, &a.r(407, 1, Some("x"), "a1")),
        // Another caller on the same Call-ID (was taken as a's retry).
        pkt(20, &b.invite(2, "b1")),
        pkt(30, &b.r(486, 2, Some("y"), "b1")),
    ];
    let (events, stats) = run(cfg(), &p);
    assert_eq!(stats.retried_invites, 0);
    let recs = records(&events);
    assert_eq!(recs.len(), 2, "{:?}", summaries(&events));
    let by_tag = |t: &str| {
        recs.iter()
            .find(|r| r.call.from_tag.as_deref() == Some(t))
            .unwrap()
    };
    assert_eq!(by_tag("ft2").code, 486);
    assert_eq!(ms(by_tag("ft2").call.setup_time), 20);
    // a's challenge had no retry: it fails at the challenge.
    assert_eq!((by_tag("ft1").code, ms(by_tag("ft1").end_time)), (407, 10));
}

#[test]
fn call_id_reuse_after_the_linger_gets_its_own_origin_id() {
    let a = tagged("late", "ft1");
    let b = tagged("late", "ft2");
    let c = tagged("late", "ft2");
    let mut p = call(&a, 0);
    p.extend(call(&b, 3_600_000));
    // The same Call-ID and From tag once more, long after: a third call.
    p.extend(call(&c, 7_200_000));
    let (events, _) = run(cfg(), &p);
    let ids: Vec<String> = records(&events)
        .iter()
        .map(|r| r.call.origin_id())
        .collect();
    assert_eq!(ids, ["late", "late;ft2", "late;ft2;3"]);
}

#[test]
fn memory_off_keeps_origin_id_the_call_id() {
    let mut c = cfg();
    c.call_id_memory_secs = 0;
    let mut p = call(&tagged("m", "ft1"), 0);
    p.extend(call(&tagged("m", "ft2"), 3_600_000));
    let (events, _) = run(c, &p);
    let ids: Vec<String> = records(&events)
        .iter()
        .map(|r| r.call.origin_id())
        .collect();
    assert_eq!(ids, ["m", "m"]);
}

#[test]
fn two_callers_on_one_call_id_each_end_at_their_own_bye_from_either_side() {
    let a = tagged("two", "ft1");
    let b = tagged("two", "ft2");
    let p = vec![
        pkt(0, &a.invite(1, "a1")),
        pkt(5, &b.invite(1, "b1")),
        pkt(1000, &a.r(200, 1, Some("ta"), "a1")),
        pkt(1005, &b.r(200, 1, Some("tb"), "b1")),
        // b's callee hangs up: From is the callee's tag, To carries ft2.
        pkt(5000, &b.req("BYE", Dir::Callee, 1, Some("tb"), "cb", "")),
        pkt(
            5010,
            &b.resp(200, "BYE", Dir::Callee, 1, Some("tb"), "cb", ""),
        ),
        pkt(9000, &a.req("BYE", Dir::Caller, 2, Some("ta"), "a3", "")),
    ];
    let (events, stats) = run(cfg(), &p);
    let recs = records(&events);
    assert_eq!(recs.len(), 2, "{:?}", summaries(&events));
    assert_eq!(recs[0].call.from_tag.as_deref(), Some("ft2"));
    assert_eq!(
        (ms(recs[0].end_time), recs[0].ended_by),
        (5000, Some(Party::Callee))
    );
    assert_eq!(recs[1].call.from_tag.as_deref(), Some("ft1"));
    assert_eq!(
        (ms(recs[1].end_time), recs[1].ended_by),
        (9000, Some(Party::Caller))
    );
    assert_eq!(stats.stray_byes, 0);
}

#[test]
fn caller_without_a_from_tag_still_makes_one_call() {
    let f = Flow::new("notag");
    let strip = |m: String| m.replace(";tag=ft1", "");
    let p = vec![
        pkt(0, &strip(f.invite(1, "b1"))),
        pkt(10, &strip(f.invite(1, "b1"))),
        pkt(500, &strip(f.r(180, 1, Some("tt1"), "b1"))),
        pkt(3000, &strip(f.r(200, 1, Some("tt1"), "b1"))),
        pkt(
            3010,
            &strip(f.req("ACK", Dir::Caller, 1, Some("tt1"), "b2", "")),
        ),
        // The callee hangs up: From has the callee's tag, To none.
        pkt(
            63000,
            &strip(f.req("BYE", Dir::Callee, 1, Some("tt1"), "b3", "")),
        ),
    ];
    let (events, stats) = run(cfg(), &p);
    assert_eq!(
        summaries(&events),
        [
            "attempt notag setup=0",
            "answer notag at=3000 tag=tt1 pdd=500 se=None",
            "end notag bye code=200 answer=3000 end=63000 dur=60000 pdd=500 ring=2500 by=Callee cause=-"
        ]
    );
    assert_eq!(stats.retransmissions, 1);
}

#[test]
fn caller_without_a_from_tag_hanging_up_itself() {
    let f = Flow::new("notag2");
    let strip = |m: String| m.replace(";tag=ft1", "");
    let p = vec![
        pkt(0, &strip(f.invite(1, "b1"))),
        pkt(3000, &strip(f.r(200, 1, Some("tt1"), "b1"))),
        pkt(
            9000,
            &strip(f.req("BYE", Dir::Caller, 2, Some("tt1"), "b3", "")),
        ),
    ];
    let (events, _) = run(cfg(), &p);
    let recs = records(&events);
    assert_eq!(recs.len(), 1);
    assert_eq!(
        (ms(recs[0].end_time), recs[0].ended_by),
        (9000, Some(Party::Caller))
    );
}

/// A packet whose Call-ID is the given bytes.
fn raw_call(at: i64, msg: &str, call_id: &[u8]) -> capture::SipPacket {
    let mut p = pkt(at, msg);
    let text = msg.as_bytes();
    let pos = text
        .windows(b"CALLID".len())
        .position(|w| w == b"CALLID")
        .unwrap();
    let mut v = text[..pos].to_vec();
    v.extend_from_slice(call_id);
    v.extend_from_slice(&text[pos + b"CALLID".len()..]);
    p.payload = Bytes::from(v);
    p
}

#[test]
fn call_ids_that_are_not_utf8_keep_their_bytes() {
    let f = Flow::new("CALLID");
    // Two Call-IDs that the old lossy conversion made one string.
    let x: &[u8] = b"ab\xff@h";
    let y: &[u8] = b"ab\xfe@h";
    let mut p = Vec::new();
    for (id, at) in [(x, 0), (y, 10)] {
        p.push(raw_call(at, &f.invite(1, "b1"), id));
        p.push(raw_call(at + 1000, &f.r(200, 1, Some("tt1"), "b1"), id));
        p.push(raw_call(
            at + 5000,
            &f.req("BYE", Dir::Caller, 2, Some("tt1"), "b3", ""),
            id,
        ));
    }
    let (events, _) = run(cfg(), &p);
    let recs = records(&events);
    assert_eq!(recs.len(), 2, "{:?}", summaries(&events));
    assert_eq!(&*recs[0].call.call_id_bytes, x);
    assert_eq!(&*recs[1].call.call_id_bytes, y);
    assert_eq!(recs[0].call.origin_id(), "ab%FF@h");
    assert_eq!(recs[1].call.origin_id(), "ab%FE@h");
    assert_eq!(recs[0].call.origin_id_bytes(), x);
    assert_eq!(unescape_id(&recs[0].call.origin_id()), x);
}

#[test]
fn escape_is_reversible_and_leaves_utf8_alone() {
    for s in ["plain@host", "50%off@host", "ünïcode@host", ""] {
        assert_eq!(escape_id(s.as_bytes()), s);
        assert_eq!(unescape_id(s), s.as_bytes());
    }
    for b in [
        &b"\xff"[..],
        b"%\xff%",
        b"a\xc3",
        b"\xc3\xa9\xff%41",
        b"\x80\x80",
    ] {
        let e = escape_id(b);
        assert!(e.is_ascii() || std::str::from_utf8(b).is_err(), "{e}");
        assert_eq!(unescape_id(&e), b, "{e}");
    }
}
