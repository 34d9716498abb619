//! Awkward but real SIP: each flow is one that used to bill wrongly (a call
//! billed to max-duration, a lost final response), asserting the exact
//! events now.

mod support;

use sip_fsm::{Config, DialogEvent, EndReason, Party};
use support::*;

/// INVITE, 180 and 200 OK with To-tag `tt`, and the ACK.
fn answered(f: &Flow) -> Vec<capture::SipPacket> {
    vec![
        pkt(0, &f.invite(1, "b1")),
        pkt(500, &f.r(180, 1, Some("tt"), "b1")),
        pkt(3000, &f.r(200, 1, Some("tt"), "b1")),
        pkt(3010, &f.req("ACK", Dir::Caller, 1, Some("tt"), "b2", "")),
    ]
}

fn end_record(events: &[DialogEvent]) -> &sip_fsm::CallRecord {
    let ends: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            DialogEvent::End(r) | DialogEvent::Failed(r) => Some(r),
            _ => None,
        })
        .collect();
    assert_eq!(ends.len(), 1, "one CDR: {:?}", summaries(events));
    ends[0]
}

// --- A BYE seen before the 200 OK -------------------------------------

/// The 200 OK was sent before the BYE, but the capture clocks disagree:
/// the 200 carries a later timestamp than the BYE.
#[test]
fn bye_before_200_skewed_clocks_ends_at_the_bye_not_max_duration() {
    let f = Flow::new("skew");
    let p = vec![
        pkt(0, &f.invite(1, "b1")),
        pkt(500, &f.r(180, 1, Some("tt"), "b1")),
        pkt(60000, &f.req("BYE", Dir::Caller, 2, Some("tt"), "b3", "")),
        pkt(60300, &f.r(200, 1, Some("tt"), "b1")),
        pkt(60310, &f.req("ACK", Dir::Caller, 1, Some("tt"), "b2", "")),
        pkt(
            60320,
            &f.resp(200, "BYE", Dir::Caller, 2, Some("tt"), "b3", ""),
        ),
    ];
    let (events, stats) = run(cfg(), &p);
    assert_eq!(
        summaries(&events),
        [
            "attempt skew setup=0",
            "answer skew at=60000 tag=tt pdd=500 se=None",
            "end skew bye code=200 answer=60000 end=60000 dur=0 pdd=500 ring=59500 by=Caller cause=-",
        ]
    );
    assert_eq!((stats.answers, stats.ends, stats.max_duration), (1, 1, 0));
}

/// The 200 OK has an earlier timestamp than the BYE but reaches the
/// collector after it, beyond the reorder window: the true usage is known.
/// Every packet is received by 51 s, within `max-clock-jump-secs` of its
/// stamp, so the receive-time clock rule keeps the stamps.
#[test]
fn bye_before_200_reordered_beyond_the_window_bills_the_real_usage() {
    let f = Flow::new("late");
    let mut late_200 = pkt(3000, &f.r(200, 1, Some("tt"), "b1"));
    late_200.ts = t(3000);
    let p = vec![
        pkt(0, &f.invite(1, "b1")),
        pkt(500, &f.r(180, 1, Some("tt"), "b1")),
        pkt(50000, &f.req("BYE", Dir::Caller, 2, Some("tt"), "b3", "")),
        // Fed at 51000 (run() uses the packet time as `now`, never going
        // back), so it is processed after the BYE.
        pkt(51000, &f.req("OPTIONS", Dir::Caller, 9, None, "o", "")),
        late_200,
    ];
    let mut m = sip_fsm::DialogMachine::new(cfg()).unwrap();
    let mut events = Vec::new();
    for x in &p {
        m.handle(x, t(51000).max(x.ts));
        while let Some(e) = m.poll_event() {
            events.push(e);
        }
    }
    m.handle_timeout(capture::Timestamp::from_nanos(i64::MAX));
    while let Some(e) = m.poll_event() {
        events.push(e);
    }
    assert_eq!(
        summaries(&events),
        [
            "attempt late setup=0",
            "answer late at=3000 tag=tt pdd=500 se=None",
            "end late bye code=200 answer=3000 end=50000 dur=47000 pdd=500 ring=2500 by=Caller cause=-",
        ]
    );
    assert_eq!(m.stats().late, 1);
}

/// A BYE before any response at all (the 180 was never captured) and a
/// callee's BYE crossing its own 200 OK.
#[test]
fn bye_before_any_response_and_callee_bye_crossing_the_200() {
    let f = Flow::new("cross");
    let p = vec![
        pkt(0, &f.invite(1, "b1")),
        pkt(30000, &f.req("BYE", Dir::Caller, 2, Some("tt"), "b3", "")),
        pkt(30100, &f.r(200, 1, Some("tt"), "b1")),
    ];
    let (events, _) = run(cfg(), &p);
    assert_eq!(
        summaries(&events)[2],
        "end cross bye code=200 answer=30000 end=30000 dur=0 pdd=30000 ring=- by=Caller cause=-"
    );

    let p = vec![
        pkt(0, &f.invite(1, "b1")),
        pkt(2000, &f.req("BYE", Dir::Callee, 1, Some("tt"), "c1", "")),
        pkt(2001, &f.r(200, 1, Some("tt"), "b1")),
    ];
    let (events, _) = run(cfg(), &p);
    assert_eq!(
        summaries(&events)[2],
        "end cross bye code=200 answer=2000 end=2000 dur=0 pdd=2000 ring=- by=Callee cause=-"
    );
}

/// A BYE on one early dialog does not end a call another fork answers.
#[test]
fn early_bye_on_one_fork_does_not_end_the_call_answered_by_another() {
    let f = Flow::new("fk");
    let p = vec![
        pkt(0, &f.invite(1, "b1")),
        pkt(100, &f.r(183, 1, Some("A"), "b1")),
        pkt(150, &f.r(180, 1, Some("B"), "b1")),
        pkt(900, &f.req("BYE", Dir::Caller, 2, Some("A"), "b2", "")),
        pkt(2000, &f.r(200, 1, Some("B"), "b1")),
        pkt(9000, &f.req("BYE", Dir::Caller, 3, Some("B"), "b3", "")),
    ];
    let (events, stats) = run(cfg(), &p);
    assert_eq!(
        summaries(&events),
        [
            "attempt fk setup=0",
            "answer fk at=2000 tag=B pdd=100 se=None",
            "end fk bye code=200 answer=2000 end=9000 dur=7000 pdd=100 ring=1900 by=Caller cause=-",
        ]
    );
    assert_eq!(stats.stray_byes, 1);
}

// --- A broken Content-Length ------------------------------------------

fn bad_length(msg: &str, value: &str) -> String {
    msg.replace("Content-Length: 0", &format!("Content-Length: {value}"))
}

#[test]
fn bye_with_unparseable_content_length_ends_its_call() {
    for value in ["abc", "-1", "", "99999999999", "1 0"] {
        let f = Flow::new("cl");
        let mut p = answered(&f);
        p.push(pkt(
            33000,
            &bad_length(&f.req("BYE", Dir::Caller, 2, Some("tt"), "b3", ""), value),
        ));
        let (events, stats) = run(cfg(), &p);
        assert_eq!(
            summaries(&events)[2],
            "end cl bye code=200 answer=3000 end=33000 dur=30000 pdd=500 ring=2500 by=Caller cause=-",
            "{value:?}"
        );
        assert_eq!(stats.malformed_total(), 0, "{value:?}");
        assert_eq!(stats.malformed_content_length_tolerated, 1, "{value:?}");
    }
}

#[test]
fn in_dialog_messages_with_a_broken_length_keep_their_meaning() {
    // A CANCEL with a bad Content-Length still cancels.
    let f = Flow::new("cx");
    let p = vec![
        pkt(0, &f.invite(1, "b1")),
        pkt(400, &f.r(180, 1, Some("tt"), "b1")),
        pkt(
            5000,
            &bad_length(&f.req("CANCEL", Dir::Caller, 1, None, "b1", ""), "x"),
        ),
    ];
    let (events, _) = run(cfg(), &p);
    assert_eq!(
        summaries(&events)[1],
        "failed cx cancel code=487 answer=- end=5000 dur=0 pdd=400 ring=4600 by=- cause=-"
    );

    // A re-INVITE's 200 OK with SDP and a broken length is still a refresh.
    let f = Flow::new("ri");
    let mut p = answered(&f);
    let sdp = "v=0\r\no=- 1 2 IN IP4 10.0.0.1\r\ns=-\r\n";
    let ok = f
        .resp(200, "INVITE", Dir::Caller, 2, Some("tt"), "r1", "")
        .replace(
            "Content-Length: 0\r\n\r\n",
            &format!("Content-Length: 3O\r\n\r\n{sdp}"),
        );
    p.extend([
        pkt(
            10000,
            &f.req("INVITE", Dir::Caller, 2, Some("tt"), "r1", ""),
        ),
        pkt(10050, &ok),
        pkt(20000, &f.req("BYE", Dir::Caller, 3, Some("tt"), "b3", "")),
    ]);
    let (events, stats) = run(cfg(), &p);
    assert_eq!(
        summaries(&events)[2],
        "update ri at=10050 ReInvite by=Caller se=None"
    );
    assert_eq!(stats.malformed_content_length_tolerated, 1);
}

// --- Session timers ---------------------------------------------------

/// Five hours with Session-Expires 1800 refreshed every 15 minutes:
/// max-duration (4 h) is for calls without a session timer.
#[test]
fn refreshed_session_outlives_max_duration_until_its_bye() {
    let f = Flow::new("long");
    let se = "Session-Expires: 1800;refresher=uac\r\n";
    let mut p = vec![
        pkt(0, &f.req("INVITE", Dir::Caller, 1, None, "b1", se)),
        pkt(
            1000,
            &f.resp(200, "INVITE", Dir::Caller, 1, Some("tt"), "b1", se),
        ),
        pkt(1010, &f.req("ACK", Dir::Caller, 1, Some("tt"), "b2", "")),
    ];
    let mut cseq = 2;
    let mut at = 1000 + 900_000;
    while at < 5 * 3_600_000 {
        p.push(pkt(
            at,
            &f.req("UPDATE", Dir::Caller, cseq, Some("tt"), "u", se),
        ));
        p.push(pkt(
            at + 40,
            &f.resp(200, "UPDATE", Dir::Caller, cseq, Some("tt"), "u", se),
        ));
        cseq += 1;
        at += 900_000;
    }
    let mut with_bye = p.clone();
    with_bye.push(pkt(
        5 * 3_600_000 + 1000,
        &f.req("BYE", Dir::Caller, cseq, Some("tt"), "b3", ""),
    ));
    let (events, stats) = run(cfg(), &with_bye);
    let r = end_record(&events);
    assert_eq!(
        (r.end_reason, r.duration.as_secs(), stats.max_duration),
        (EndReason::Bye, 5 * 3600, 0)
    );

    // Without the BYE it ends at the last refresh plus the interval.
    let (events, stats) = run(cfg(), &p);
    let r = end_record(&events);
    let last = 1000 + 19 * 900_000 + 40;
    assert_eq!(
        (r.end_reason, ms(r.end_time), stats.session_expired),
        (EndReason::SessionExpired, last + 1_800_000, 1)
    );
}

/// A call that never negotiated a session timer still ends at
/// max-duration; a refresh that turns the timer off brings it back.
#[test]
fn max_duration_applies_only_without_a_session_timer() {
    let f = Flow::new("off");
    let se = "Session-Expires: 1800\r\n";
    let mut c = cfg();
    c.max_duration_secs = 3600;
    let p = vec![
        pkt(0, &f.req("INVITE", Dir::Caller, 1, None, "b1", se)),
        pkt(
            1000,
            &f.resp(200, "INVITE", Dir::Caller, 1, Some("tt"), "b1", se),
        ),
        pkt(
            1_500_000,
            &f.req("UPDATE", Dir::Caller, 2, Some("tt"), "u", se),
        ),
        // No Session-Expires in the 2xx: the timer is off (RFC 4028 7.4).
        pkt(
            1_500_040,
            &f.resp(200, "UPDATE", Dir::Caller, 2, Some("tt"), "u", ""),
        ),
    ];
    let (events, stats) = run(c, &p);
    let r = end_record(&events);
    assert_eq!(
        (r.end_reason, ms(r.end_time), stats.max_duration),
        (EndReason::MaxDuration, 3_601_000, 1)
    );
}

// --- 481 or 408 to a re-INVITE or UPDATE ------------------------------

#[test]
fn in_dialog_481_or_408_ends_the_dialog() {
    for method in ["INVITE", "UPDATE"] {
        for code in [481, 408] {
            for dir in [Dir::Caller, Dir::Callee] {
                let f = Flow::new("gone");
                let mut p = answered(&f);
                p.extend([
                    pkt(10000, &f.req(method, dir, 5, Some("tt"), "r1", "")),
                    pkt(10050, &f.resp(code, method, dir, 5, Some("tt"), "r1", "")),
                    // A retransmission of the response changes nothing.
                    pkt(10550, &f.resp(code, method, dir, 5, Some("tt"), "r1", "")),
                ]);
                let (events, _) = run(cfg(), &p);
                let by = match dir {
                    Dir::Caller => Party::Caller,
                    Dir::Callee => Party::Callee,
                };
                assert_eq!(
                    summaries(&events)[2],
                    format!(
                        "end gone dialog-lost code=200 answer=3000 end=10050 dur=7050 pdd=500 ring=2500 by={by:?} cause=-"
                    ),
                    "{method} {code} {dir:?}"
                );
                let r = end_record(&events);
                assert_eq!(r.end_reason, EndReason::DialogLost);
            }
        }
    }
}

#[test]
fn other_in_dialog_failures_do_not_end_the_call() {
    for (method, code) in [("INVITE", 488), ("UPDATE", 491), ("INVITE", 500)] {
        let f = Flow::new("keep");
        let mut p = answered(&f);
        p.extend([
            pkt(10000, &f.req(method, Dir::Caller, 2, Some("tt"), "r1", "")),
            pkt(
                10050,
                &f.resp(code, method, Dir::Caller, 2, Some("tt"), "r1", ""),
            ),
            pkt(20000, &f.req("BYE", Dir::Caller, 3, Some("tt"), "b3", "")),
        ]);
        let (events, _) = run(cfg(), &p);
        assert_eq!(
            summaries(&events)[2],
            "end keep bye code=200 answer=3000 end=20000 dur=17000 pdd=500 ring=2500 by=Caller cause=-",
            "{method} {code}"
        );
    }
}

// --- A middle box that changes the To-tag between hops ----------------

/// Hop A is caller to SBC (seen at "edge"), hop B is SBC to callee (seen
/// at "core"): same Call-ID and From-tag, To-tag t1 on hop A and t2 on hop
/// B, 100rel (PRACK) and an UPDATE on both early dialogs. The callee's 2xx
/// names t2; the caller's names t1, and the ACKs and BYEs on both hops name
/// t1.
fn b2bua(f: &Flow) -> Vec<capture::SipPacket> {
    let rel = "Require: 100rel\r\nRSeq: 1\r\n";
    let rack = "RAck: 1 1 INVITE\r\n";
    let a = |at: i64, m: String| pkt_at(at, "edge", &m);
    let b = |at: i64, m: String| pkt_at(at, "core", &m);
    vec![
        a(0, f.invite(1, "a-inv")),
        b(
            5,
            f.invite(1, "b-inv")
                .replace("Max-Forwards: 70", "Max-Forwards: 69"),
        ),
        b(
            400,
            f.resp(180, "INVITE", Dir::Caller, 1, Some("t2"), "b-inv", rel),
        ),
        a(
            405,
            f.resp(180, "INVITE", Dir::Caller, 1, Some("t1"), "a-inv", rel),
        ),
        a(
            420,
            f.req("PRACK", Dir::Caller, 2, Some("t1"), "a-pr", rack),
        ),
        b(
            425,
            f.req("PRACK", Dir::Caller, 2, Some("t2"), "b-pr", rack),
        ),
        b(
            430,
            f.resp(200, "PRACK", Dir::Caller, 2, Some("t2"), "b-pr", ""),
        ),
        a(
            435,
            f.resp(200, "PRACK", Dir::Caller, 2, Some("t1"), "a-pr", ""),
        ),
        a(
            1000,
            f.req("UPDATE", Dir::Caller, 3, Some("t1"), "a-up", ""),
        ),
        b(
            1005,
            f.req("UPDATE", Dir::Caller, 3, Some("t2"), "b-up", ""),
        ),
        b(
            1040,
            f.resp(200, "UPDATE", Dir::Caller, 3, Some("t2"), "b-up", ""),
        ),
        a(
            1045,
            f.resp(200, "UPDATE", Dir::Caller, 3, Some("t1"), "a-up", ""),
        ),
        b(
            5000,
            f.resp(200, "INVITE", Dir::Caller, 1, Some("t2"), "b-inv", ""),
        ),
        a(
            5005,
            f.resp(200, "INVITE", Dir::Caller, 1, Some("t1"), "a-inv", ""),
        ),
        a(5010, f.req("ACK", Dir::Caller, 1, Some("t1"), "a-ack", "")),
        b(5015, f.req("ACK", Dir::Caller, 1, Some("t1"), "b-ack", "")),
    ]
}

const B2BUA_END: &str =
    "end sbc bye code=200 answer=5000 end=165000 dur=160000 pdd=400 ring=4600 by=Caller cause=-";

#[test]
fn b2bua_to_tag_change_bye_on_the_acknowledged_dialog_ends_the_call() {
    let f = Flow::new("sbc");
    let bye = f.req("BYE", Dir::Caller, 4, Some("t1"), "a-bye", "");
    // The BYE on both hops, on hop A only, on hop B only.
    for hops in [&["edge", "core"][..], &["edge"], &["core"]] {
        let mut p = b2bua(&f);
        for (i, node) in hops.iter().enumerate() {
            p.push(pkt_at(165000 + 5 * i as i64, node, &bye));
        }
        let (events, stats) = run(cfg(), &p);
        assert_eq!(
            summaries(&events),
            [
                "attempt sbc setup=0",
                "answer sbc at=5000 tag=t2 pdd=400 se=None",
                B2BUA_END,
            ],
            "{hops:?}"
        );
        assert_eq!((stats.max_duration, stats.stray_byes), (0, 0), "{hops:?}");
    }
}

/// Only hop B's 2xx is captured (hop A's is lost): the caller's ACK still
/// tells which dialog it took.
#[test]
fn b2bua_to_tag_change_without_the_callers_2xx_the_ack_decides() {
    let f = Flow::new("sbc");
    let mut p = b2bua(&f);
    p.retain(|x| !(x.payload.starts_with(b"SIP/2.0 200 OK") && ms(x.ts) == 5005));
    p.push(pkt(
        165000,
        &f.req("BYE", Dir::Callee, 9, Some("t1"), "c-bye", ""),
    ));
    let (events, _) = run(cfg(), &p);
    assert_eq!(
        summaries(&events)[2],
        "end sbc bye code=200 answer=5000 end=165000 dur=160000 pdd=400 ring=4600 by=Callee cause=-"
    );
}

/// The BYE on the acknowledged dialog seen before that dialog's 2xx and
/// ACK (clock skew between the two capture points).
#[test]
fn b2bua_to_tag_change_with_the_bye_before_the_callers_2xx() {
    let f = Flow::new("sbc");
    let mut p = b2bua(&f);
    let bye = f.req("BYE", Dir::Caller, 4, Some("t1"), "a-bye", "");
    // Hop B's 2xx at 5000, then the BYE at 5002, then hop A's 2xx and ACK.
    p.push(pkt_at(5002, "edge", &bye));
    p.sort_by_key(|x| x.ts);
    let (events, _) = run(cfg(), &p);
    assert_eq!(
        summaries(&events)[2],
        "end sbc bye code=200 answer=5000 end=5002 dur=2 pdd=400 ring=4600 by=Caller cause=-"
    );
}

/// A proxy's hop-by-hop ACK to a branch's 486 carries that branch's
/// To-tag; it is not the caller choosing a dialog (RFC 3261 17.1.1.3).
#[test]
fn ack_to_a_branch_failure_does_not_move_the_call() {
    let f = Flow::new("pf");
    // The 486 before the 2xx, and after it.
    for late_486 in [false, true] {
        let fail_at = if late_486 { 1001 } else { 300 };
        let mut p = vec![
            pkt(0, &f.invite(1, "up")),
            pkt(5, &f.invite(1, "down1")),
            pkt(6, &f.invite(1, "down2")),
            pkt(fail_at, &f.r(486, 1, Some("X"), "down1")),
            pkt(1000, &f.r(200, 1, Some("Y"), "down2")),
            pkt(1002, &f.req("ACK", Dir::Caller, 1, Some("X"), "down1", "")),
            pkt(1003, &f.r(200, 1, Some("Y"), "up")),
            pkt(1010, &f.req("ACK", Dir::Caller, 1, Some("Y"), "ack", "")),
            pkt(5000, &f.req("BYE", Dir::Caller, 2, Some("Y"), "bye", "")),
        ];
        p.sort_by_key(|x| x.ts);
        let (events, stats) = run(cfg(), &p);
        assert_eq!(
            summaries(&events)[2],
            "end pf bye code=200 answer=1000 end=5000 dur=4000 pdd=1000 ring=- by=Caller cause=-",
            "late 486: {late_486}"
        );
        assert_eq!(stats.stray_byes, 0);
    }
}

// --- Credentials typed by a person ------------------------------------

#[test]
fn retry_after_407_typed_by_hand_gets_the_final_cause_and_its_own_pdd() {
    let f = Flow::new("typed");
    let p = vec![
        pkt(0, &f.invite(1, "b1")),
        pkt(50, &f.r(407, 1, Some("px"), "b1")),
        pkt(60, &f.req("ACK", Dir::Caller, 1, Some("px"), "b1", "")),
        pkt(45050, &f.invite(2, "b2")),
        pkt(
            45300,
            &f.resp(
                403,
                "INVITE",
                Dir::Caller,
                2,
                Some("px"),
                "b2",
                "Reason: SIP;cause=403;text=\"Bad password\"\r\n",
            ),
        ),
        pkt(45310, &f.req("ACK", Dir::Caller, 2, Some("px"), "b2", "")),
    ];
    let (events, stats) = run(cfg(), &p);
    assert_eq!(
        summaries(&events),
        [
            "attempt typed setup=0",
            "failed typed rejected code=403 answer=- end=45300 dur=0 pdd=250 ring=- by=- cause=403",
        ]
    );
    assert_eq!(
        (stats.attempts, stats.retried_invites, stats.call_id_reuse),
        (1, 1, 0)
    );
    // SetupTime stays the first INVITE's: the caller has waited since then.
    assert_eq!(ms(events[1].call().setup_time), 0);
}

#[test]
fn retry_after_401_a_minute_later_answered_pdd_from_the_retry() {
    let f = Flow::new("typed");
    let p = vec![
        pkt(0, &f.invite(1, "b1")),
        pkt(50, &f.r(401, 1, Some("px"), "b1")),
        pkt(60050, &f.invite(2, "b2")),
        pkt(61050, &f.r(180, 2, Some("tt"), "b2")),
        pkt(64050, &f.r(200, 2, Some("tt"), "b2")),
        pkt(94050, &f.req("BYE", Dir::Caller, 3, Some("tt"), "b3", "")),
    ];
    let (events, _) = run(cfg(), &p);
    assert_eq!(
        summaries(&events),
        [
            "attempt typed setup=0",
            "answer typed at=64050 tag=tt pdd=1000 se=None",
            "end typed bye code=200 answer=64050 end=94050 dur=30000 pdd=1000 ring=3000 by=Caller cause=-",
        ]
    );
}

/// Nobody types: the challenge is the cause once the retry wait is over,
/// and the wait is covered by the default CDR order window.
#[test]
fn retry_wait_covers_a_person_and_stays_within_the_order_window() {
    let c = Config::default();
    assert!(c.retry_wait_secs >= 90, "{}", c.retry_wait_secs);
    assert!(c.retry_wait_secs <= c.invite_timeout_secs);
    let f = Flow::new("gave-up");
    let p = vec![
        pkt(0, &f.invite(1, "b1")),
        pkt(50, &f.r(407, 1, Some("px"), "b1")),
    ];
    let (events, _) = run(c, &p);
    assert_eq!(
        summaries(&events)[1],
        "failed gave-up rejected code=407 answer=- end=50 dur=0 pdd=50 ring=- by=- cause=-"
    );
}
