//! `max-dialogs` bounds memory, and INVITEs that never finish cannot crowd
//! out answered calls (issue 7).
#![allow(missing_docs, clippy::unwrap_used)]

mod support;

use sip_fsm::{DialogEvent, DialogMachine, EndReason};
use support::*;

fn answered(id: &str, at: i64) -> Vec<capture::SipPacket> {
    let f = Flow::new(id);
    vec![
        pkt(at, &f.invite(1, "x")),
        pkt(at + 1, &f.r(200, 1, Some("tt"), "x")),
    ]
}

fn bye(id: &str, at: i64) -> capture::SipPacket {
    pkt(
        at,
        &Flow::new(id).req("BYE", Dir::Caller, 2, Some("tt"), "y", ""),
    )
}

#[test]
fn unanswered_invites_give_way_to_new_calls_and_answered_calls_stay() {
    let mut c = cfg();
    c.max_dialogs = 2;
    let mut p = answered("a", 0);
    p.push(pkt(10, &Flow::new("u1").invite(1, "x")));
    // Full: u1 (unanswered) gives way to b, which is then answered.
    p.extend(answered("b", 20));
    // Full of answered calls: c is dropped.
    p.push(pkt(30, &Flow::new("c").invite(1, "x")));
    p.push(bye("a", 40_000));
    p.push(bye("b", 50_000));
    let (events, stats) = run(c, &p);
    assert_eq!(
        summaries(&events),
        [
            "attempt a setup=0",
            "answer a at=1 tag=tt pdd=1 se=None",
            "attempt u1 setup=10",
            "failed u1 evicted code=408 answer=- end=20 dur=0 pdd=10 ring=- by=- cause=-",
            "attempt b setup=20",
            "answer b at=21 tag=tt pdd=1 se=None",
            "end a bye code=200 answer=1 end=40000 dur=39999 pdd=1 ring=- by=Caller cause=-",
            "end b bye code=200 answer=21 end=50000 dur=49979 pdd=1 ring=- by=Caller cause=-",
        ]
    );
    assert_eq!(
        (stats.dialogs_evicted_unanswered, stats.dialogs_dropped),
        (1, 1)
    );
    let evicted = events
        .iter()
        .filter_map(DialogEvent::record)
        .find(|r| r.end_reason == EndReason::Evicted)
        .unwrap();
    assert_eq!(&*evicted.call.call_id(), "u1");
}

#[test]
fn a_flood_of_unanswered_invites_never_crowds_out_an_answered_call() {
    let mut c = cfg();
    c.max_dialogs = 3;
    let mut p = answered("keep", 0);
    for i in 0..50 {
        p.push(pkt(10 + i, &Flow::new(&format!("flood{i}")).invite(1, "x")));
    }
    p.push(bye("keep", 60_000));
    let (events, stats) = run(c, &p);
    let end = events
        .iter()
        .filter_map(DialogEvent::record)
        .find(|r| &*r.call.call_id() == "keep")
        .unwrap();
    assert_eq!((end.end_reason, ms(end.end_time)), (EndReason::Bye, 60_000));
    assert_eq!(stats.dialogs_evicted_unanswered, 48);
    assert_eq!(stats.dialogs_dropped, 0);
}

#[test]
fn lingering_calls_give_way_before_unanswered_ones() {
    let mut c = cfg();
    c.max_dialogs = 2;
    let mut p = answered("done", 0);
    p.push(bye("done", 1000));
    p.push(pkt(2000, &Flow::new("wait").invite(1, "x")));
    // "done" lingers (32 s): it gives way, "wait" stays.
    p.push(pkt(3000, &Flow::new("new").invite(1, "x")));
    let (events, stats) = run(c, &p);
    assert_eq!(
        (
            stats.dialogs_evicted_lingering,
            stats.dialogs_evicted_unanswered
        ),
        (1, 0)
    );
    let failed: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            DialogEvent::Failed(r) => Some((r.call.call_id().to_string(), r.end_reason)),
            _ => None,
        })
        .collect();
    assert_eq!(
        failed,
        [
            ("wait".to_string(), EndReason::Timeout),
            ("new".to_string(), EndReason::Timeout)
        ]
    );
}

#[test]
fn tracked_calls_and_remembered_call_ids_stay_within_max_dialogs() {
    let mut c = cfg();
    c.max_dialogs = 10;
    let mut m = DialogMachine::new(c).unwrap();
    for i in 0..500_i64 {
        let f = Flow::new(&format!("call{i}"));
        // Every third call is answered and never ends.
        let mut batch = vec![pkt(i * 10, &f.invite(1, "x"))];
        if i % 3 == 0 {
            batch.push(pkt(i * 10 + 1, &f.r(200, 1, Some("tt"), "x")));
        }
        for p in batch {
            m.handle(&p, p.ts);
            while m.poll_event().is_some() {}
            assert!(m.live_dialogs() <= 10, "{}", m.live_dialogs());
            assert!(m.remembered_call_ids() <= 10);
        }
    }
    let s = m.stats();
    assert_eq!(m.live_dialogs(), 10);
    assert!(
        s.dialogs_dropped > 0 && s.dialogs_evicted_unanswered > 0,
        "{s:?}"
    );
    // Memory is per tracked call, so bounded too.
    assert!(m.dialog_memory() < 10 * 1024, "{}", m.dialog_memory());
}

#[test]
fn configs_built_in_code_are_range_checked_too() {
    let mut c = cfg();
    c.max_dialogs = 0;
    let e = DialogMachine::new(c).err().unwrap();
    assert!(e.to_string().contains("max-dialogs"), "{e}");
    let mut c = cfg();
    c.max_duration_secs = 9_999_999_999;
    let e = DialogMachine::new(c).err().unwrap();
    assert!(e.to_string().contains("max-duration-secs"), "{e}");
    let mut c = cfg();
    c.mapping.request_type = "*bogus".into();
    let e = DialogMachine::new(c).err().unwrap();
    assert!(e.to_string().contains("*bogus"), "{e}");
}
