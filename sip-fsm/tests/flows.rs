//! Scripted call flows: every dialog case the machine must bill (answered,
//! rejected, cancelled, forked, retried, refreshed, ...), each asserting the
//! exact events.

mod support;

use sip_fsm::{DialogEvent, EndReason, Party, ScanError};
use support::*;

fn basic(f: &Flow) -> Vec<capture::SipPacket> {
    vec![
        pkt(0, &f.invite(1, "b1")),
        pkt(20, &f.r(100, 1, None, "b1")),
        pkt(500, &f.r(180, 1, Some("tt1"), "b1")),
        pkt(3000, &f.r(200, 1, Some("tt1"), "b1")),
        pkt(3010, &f.req("ACK", Dir::Caller, 1, Some("tt1"), "b2", "")),
        pkt(
            63000,
            &f.req(
                "BYE",
                Dir::Caller,
                2,
                Some("tt1"),
                "b3",
                "Reason: Q.850;cause=16;text=\"Normal call clearing\"\r\n",
            ),
        ),
        pkt(
            63020,
            &f.resp(200, "BYE", Dir::Caller, 2, Some("tt1"), "b3", ""),
        ),
    ]
}

const BASIC: [&str; 3] = [
    "attempt c1 setup=0",
    "answer c1 at=3000 tag=tt1 pdd=500 se=None",
    "end c1 bye code=200 answer=3000 end=63000 dur=60000 pdd=500 ring=2500 by=Caller cause=16",
];

#[test]
fn basic_call_carries_every_cdr_field() {
    let f = Flow::new("c1");
    let (events, stats) = run(cfg(), &basic(&f));
    assert_eq!(summaries(&events), BASIC);
    let DialogEvent::End(r) = &events[2] else {
        panic!("no end")
    };
    let c = &r.call;
    assert_eq!(&*c.call_id(), "c1");
    assert_eq!(&*c.capture_point, "edge");
    assert_eq!(c.src.to_string(), "10.0.0.1:5060");
    assert_eq!(c.from_user.as_deref(), Some("1001"));
    assert_eq!(c.from_tag.as_deref(), Some("ft1"));
    assert_eq!(c.to_user.as_deref(), Some("1002"));
    assert_eq!(c.ruri_user.as_deref(), Some("1002"));
    assert_eq!(
        (&*c.charging.tenant, &*c.charging.category),
        ("cgrates.org", "call")
    );
    assert_eq!(
        (
            &*c.charging.account,
            &*c.charging.subject,
            &*c.charging.destination
        ),
        ("1001", "1001", "1002")
    );
    assert_eq!(&*c.charging.request_type, "*rated");
    assert_eq!(&*r.phrase, "OK");
    let reason = r.reason.as_ref().unwrap();
    assert_eq!(
        (&*reason.protocol, reason.text.as_deref()),
        ("Q.850", Some("Normal call clearing"))
    );
    assert_eq!(
        (stats.attempts, stats.answers, stats.ends, stats.failures),
        (1, 1, 1, 0)
    );
}

#[test]
fn bye_from_callee_ends_with_callee() {
    let f = Flow::new("c1");
    let mut p = basic(&f);
    p[5] = pkt(63000, &f.req("BYE", Dir::Callee, 7, Some("tt1"), "b9", ""));
    p[6] = pkt(
        63020,
        &f.resp(200, "BYE", Dir::Callee, 7, Some("tt1"), "b9", ""),
    );
    let (events, _) = run(cfg(), &p);
    assert_eq!(
        summaries(&events)[2],
        "end c1 bye code=200 answer=3000 end=63000 dur=60000 pdd=500 ring=2500 by=Callee cause=-"
    );
}

#[test]
fn retransmissions_change_nothing() {
    let f = Flow::new("c1");
    let b = basic(&f);
    let mut p = Vec::new();
    for (i, x) in b.iter().enumerate() {
        p.push(x.clone());
        // Every message retransmitted (RFC 3261 17.1.1.2: T1 = 500 ms), the
        // 200 OK three times as the UAS does until the ACK.
        let n = if i == 3 { 3 } else { 1 };
        for k in 1..=n {
            let mut r = x.clone();
            r.ts = t(ms(x.ts) + if i == 3 { 5 * k } else { 1 });
            p.push(r);
        }
    }
    p.sort_by_key(|x| x.ts);
    let (events, stats) = run(cfg(), &p);
    assert_eq!(summaries(&events), BASIC);
    assert!(stats.retransmissions >= 5, "{stats:?}");
}

#[test]
fn hop_copies_count_once_with_first_copy_times() {
    let f = Flow::new("c1");
    let mut p = Vec::new();
    for x in basic(&f) {
        let payload = std::str::from_utf8(&x.payload).unwrap().to_owned();
        let mut copy = pkt_at(ms(x.ts) + 2, "core", &hop_copy(&payload));
        copy.src = "10.0.0.2:5060".parse().unwrap();
        p.push(x);
        p.push(copy);
    }
    // The core copies arrive first at the collector, out of order.
    p.swap(0, 1);
    p.swap(6, 7);
    let (events, stats) = run(cfg(), &p);
    assert_eq!(summaries(&events), BASIC);
    assert_eq!(&*events[0].call().capture_point, "edge");
    // INVITE, 180, 200 and BYE copies (100, ACK and the BYE 200 are ignored).
    assert_eq!(stats.hop_copies, 4, "{stats:?}");
}

#[test]
fn forking_first_2xx_wins_and_the_losing_fork_bye_is_stray() {
    let f = Flow::new("fork");
    let p = vec![
        pkt(0, &f.invite(1, "b1")),
        pkt(100, &f.r(180, 1, Some("A"), "b1")),
        pkt(150, &f.r(183, 1, Some("B"), "b1")),
        pkt(2000, &f.r(200, 1, Some("B"), "b1")),
        pkt(2050, &f.r(200, 1, Some("A"), "b1")),
        pkt(2060, &f.req("ACK", Dir::Caller, 1, Some("A"), "a1", "")),
        pkt(2070, &f.req("BYE", Dir::Caller, 2, Some("A"), "a2", "")),
        pkt(9000, &f.req("BYE", Dir::Callee, 1, Some("B"), "bb", "")),
    ];
    let (events, stats) = run(cfg(), &p);
    assert_eq!(
        summaries(&events),
        [
            "attempt fork setup=0",
            "answer fork at=2000 tag=B pdd=100 se=None",
            "end fork bye code=200 answer=2000 end=9000 dur=7000 pdd=100 ring=1900 by=Callee cause=-",
        ]
    );
    assert_eq!((stats.extra_fork_answers, stats.stray_byes), (1, 1));
}

#[test]
fn parallel_fork_branch_failure_then_2xx_is_answered() {
    let f = Flow::new("pf");
    let p = vec![
        pkt(0, &f.invite(1, "up")),
        pkt(5, &f.invite(1, "down1")),
        pkt(6, &f.invite(1, "down2")),
        pkt(300, &f.r(486, 1, Some("X"), "down1")),
        pkt(1000, &f.r(200, 1, Some("Y"), "down2")),
        pkt(1002, &f.r(200, 1, Some("Y"), "up")),
        pkt(5000, &f.req("BYE", Dir::Caller, 2, Some("Y"), "bye", "")),
    ];
    let (events, stats) = run(cfg(), &p);
    assert_eq!(
        summaries(&events),
        [
            "attempt pf setup=0",
            "answer pf at=1000 tag=Y pdd=1000 se=None",
            "end pf bye code=200 answer=1000 end=5000 dur=4000 pdd=1000 ring=- by=Caller cause=-",
        ]
    );
    assert_eq!(stats.branch_finals, 1);
}

#[test]
fn branch_failure_alone_fails_at_its_own_time_after_the_timeout() {
    let f = Flow::new("bf");
    let p = vec![
        pkt(0, &f.invite(1, "up")),
        pkt(5, &f.invite(1, "down1")),
        pkt(300, &f.r(480, 1, Some("X"), "down1")),
    ];
    let (events, _) = run(cfg(), &p);
    assert_eq!(
        summaries(&events),
        [
            "attempt bf setup=0",
            "failed bf rejected code=480 answer=- end=300 dur=0 pdd=300 ring=- by=- cause=-"
        ]
    );
}

#[test]
fn definitive_failure_keeps_the_time_of_its_first_copy() {
    let f = Flow::new("df");
    let p = vec![
        pkt(0, &f.invite(1, "up")),
        pkt(5, &f.invite(1, "down1")),
        pkt(300, &f.r(486, 1, Some("X"), "down1")),
        pkt(302, &f.r(486, 1, Some("X"), "up")),
        pkt(303, &f.req("ACK", Dir::Caller, 1, Some("X"), "up", "")),
    ];
    let (events, _) = run(cfg(), &p);
    assert_eq!(
        summaries(&events)[1],
        "failed df rejected code=486 answer=- end=300 dur=0 pdd=300 ring=- by=- cause=-"
    );
}

#[test]
fn cancel_racing_200_the_2xx_wins() {
    let f = Flow::new("race");
    let p = vec![
        pkt(0, &f.invite(1, "b1")),
        pkt(400, &f.r(180, 1, Some("tt"), "b1")),
        pkt(5000, &f.req("CANCEL", Dir::Caller, 1, None, "b1", "")),
        pkt(5001, &f.r(200, 1, Some("tt"), "b1")),
        pkt(5002, &f.resp(200, "CANCEL", Dir::Caller, 1, None, "b1", "")),
        pkt(5003, &f.req("ACK", Dir::Caller, 1, Some("tt"), "b2", "")),
        pkt(5004, &f.req("BYE", Dir::Caller, 2, Some("tt"), "b3", "")),
        pkt(
            5010,
            &f.resp(200, "BYE", Dir::Caller, 2, Some("tt"), "b3", ""),
        ),
    ];
    let (events, _) = run(cfg(), &p);
    assert_eq!(
        summaries(&events),
        [
            "attempt race setup=0",
            "answer race at=5001 tag=tt pdd=400 se=None",
            "end race bye code=200 answer=5001 end=5004 dur=3 pdd=400 ring=4601 by=Caller cause=-",
        ]
    );
}

#[test]
fn cancel_then_487_fails_as_cancel() {
    let f = Flow::new("cx");
    let p = vec![
        pkt(0, &f.invite(1, "b1")),
        pkt(400, &f.r(180, 1, Some("tt"), "b1")),
        pkt(
            5000,
            &f.req(
                "CANCEL",
                Dir::Caller,
                1,
                None,
                "b1",
                "Reason: Q.850;cause=31\r\n",
            ),
        ),
        pkt(5001, &f.resp(200, "CANCEL", Dir::Caller, 1, None, "b1", "")),
        pkt(5002, &f.r(487, 1, Some("tt"), "b1")),
        pkt(5003, &f.req("ACK", Dir::Caller, 1, Some("tt"), "b1", "")),
    ];
    let (events, _) = run(cfg(), &p);
    assert_eq!(
        summaries(&events),
        [
            "attempt cx setup=0",
            "failed cx cancel code=487 answer=- end=5002 dur=0 pdd=400 ring=4602 by=- cause=31"
        ]
    );
}

#[test]
fn cancel_without_final_response_fails_at_the_cancel() {
    let f = Flow::new("cn");
    let p = vec![
        pkt(0, &f.invite(1, "b1")),
        pkt(900, &f.req("CANCEL", Dir::Caller, 1, None, "b1", "")),
    ];
    let (events, _) = run(cfg(), &p);
    assert_eq!(
        summaries(&events)[1],
        "failed cn cancel code=487 answer=- end=900 dur=0 pdd=900 ring=- by=- cause=-"
    );
}

#[test]
fn early_bye_cancels() {
    let f = Flow::new("eb");
    let p = vec![
        pkt(0, &f.invite(1, "b1")),
        pkt(100, &f.r(183, 1, Some("tt"), "b1")),
        pkt(900, &f.req("BYE", Dir::Caller, 2, Some("tt"), "b2", "")),
        pkt(950, &f.r(487, 1, Some("tt"), "b1")),
    ];
    let (events, _) = run(cfg(), &p);
    assert_eq!(
        summaries(&events)[1],
        "failed eb cancel code=487 answer=- end=950 dur=0 pdd=100 ring=850 by=- cause=-"
    );
}

#[test]
fn ack_to_a_non_2xx_is_not_an_answer() {
    let f = Flow::new("busy");
    let p = vec![
        pkt(0, &f.invite(1, "b1")),
        pkt(
            700,
            &f.resp(
                486,
                "INVITE",
                Dir::Caller,
                1,
                Some("tt"),
                "b1",
                "Reason: Q.850;cause=17\r\n",
            ),
        ),
        pkt(710, &f.req("ACK", Dir::Caller, 1, Some("tt"), "b1", "")),
    ];
    let (events, _) = run(cfg(), &p);
    assert_eq!(
        summaries(&events),
        [
            "attempt busy setup=0",
            "failed busy rejected code=486 answer=- end=700 dur=0 pdd=700 ring=- by=- cause=17"
        ]
    );
    let DialogEvent::Failed(r) = &events[1] else {
        panic!()
    };
    assert_eq!(&*r.phrase, "Busy Here");
}

#[test]
fn redirect_then_new_invite_is_one_call_with_the_first_destination() {
    let f = Flow::new("rd");
    let mut invite2 = f.invite(2, "b4");
    invite2 = invite2.replacen("INVITE sip:1002@", "INVITE sip:2002@", 1);
    let p = vec![
        pkt(0, &f.invite(1, "b1")),
        pkt(
            100,
            &f.resp(
                302,
                "INVITE",
                Dir::Caller,
                1,
                Some("x"),
                "b1",
                "Contact: <sip:2002@c.example>\r\n",
            ),
        ),
        pkt(110, &f.req("ACK", Dir::Caller, 1, Some("x"), "b1", "")),
        pkt(200, &invite2),
        pkt(600, &f.r(180, 2, Some("tt"), "b4")),
        pkt(1200, &f.r(200, 2, Some("tt"), "b4")),
        pkt(1210, &f.req("ACK", Dir::Caller, 2, Some("tt"), "b5", "")),
        pkt(4200, &f.req("BYE", Dir::Caller, 3, Some("tt"), "b6", "")),
    ];
    let (events, stats) = run(cfg(), &p);
    assert_eq!(
        summaries(&events),
        [
            "attempt rd setup=0",
            // PDD from the new INVITE (200), the one answered.
            "answer rd at=1200 tag=tt pdd=400 se=None",
            "end rd bye code=200 answer=1200 end=4200 dur=3000 pdd=400 ring=600 by=Caller cause=-",
        ]
    );
    assert_eq!(&*events[2].call().charging.destination, "1002");
    assert_eq!(stats.retried_invites, 1);
}

#[test]
fn challenge_then_new_invite_is_one_attempt_from_the_first_invite() {
    for code in [401, 407] {
        let f = Flow::new("auth");
        let p = vec![
            pkt(0, &f.invite(1, "b1")),
            pkt(50, &f.r(code, 1, Some("px"), "b1")),
            pkt(60, &f.req("ACK", Dir::Caller, 1, Some("px"), "b1", "")),
            pkt(80, &f.invite(2, "b2")),
            // A late retransmission of the challenge changes nothing.
            pkt(90, &f.r(code, 1, Some("px"), "b1")),
            pkt(500, &f.r(180, 2, Some("tt"), "b2")),
            pkt(1500, &f.r(200, 2, Some("tt"), "b2")),
            pkt(11500, &f.req("BYE", Dir::Callee, 1, Some("tt"), "b3", "")),
        ];
        let (events, stats) = run(cfg(), &p);
        assert_eq!(
            summaries(&events),
            [
                "attempt auth setup=0",
                // PDD from the retried INVITE (80), the one answered.
                "answer auth at=1500 tag=tt pdd=420 se=None",
                "end auth bye code=200 answer=1500 end=11500 dur=10000 pdd=420 ring=1000 by=Callee cause=-",
            ],
            "{code}"
        );
        assert_eq!((stats.attempts, stats.retried_invites), (1, 1));
    }
}

#[test]
fn challenge_without_retry_fails_at_the_challenge() {
    let f = Flow::new("ch");
    let p = vec![
        pkt(0, &f.invite(1, "b1")),
        pkt(50, &f.r(407, 1, Some("px"), "b1")),
    ];
    let (events, _) = run(cfg(), &p);
    assert_eq!(
        summaries(&events)[1],
        "failed ch rejected code=407 answer=- end=50 dur=0 pdd=50 ring=- by=- cause=-"
    );
}

#[test]
fn reinvite_and_update_from_either_side_are_updates() {
    let f = Flow::new("c1");
    let mut p = basic(&f);
    p.truncate(5);
    p.extend([
        pkt(
            10000,
            &f.req("INVITE", Dir::Callee, 1, Some("tt1"), "r1", ""),
        ),
        pkt(
            10050,
            &f.resp(200, "INVITE", Dir::Callee, 1, Some("tt1"), "r1", ""),
        ),
        pkt(10060, &f.req("ACK", Dir::Callee, 1, Some("tt1"), "r2", "")),
        pkt(
            20000,
            &f.req("INVITE", Dir::Caller, 2, Some("tt1"), "r3", ""),
        ),
        pkt(
            20050,
            &f.resp(200, "INVITE", Dir::Caller, 2, Some("tt1"), "r3", ""),
        ),
        pkt(
            20051,
            &f.resp(200, "INVITE", Dir::Caller, 2, Some("tt1"), "r3", ""),
        ),
        pkt(
            30000,
            &f.req("UPDATE", Dir::Caller, 3, Some("tt1"), "r4", ""),
        ),
        pkt(
            30040,
            &f.resp(491, "UPDATE", Dir::Caller, 3, Some("tt1"), "r4", ""),
        ),
        pkt(
            31000,
            &f.req("UPDATE", Dir::Callee, 2, Some("tt1"), "r5", ""),
        ),
        pkt(
            31040,
            &f.resp(200, "UPDATE", Dir::Callee, 2, Some("tt1"), "r5", ""),
        ),
        pkt(40000, &f.req("BYE", Dir::Caller, 4, Some("tt1"), "r6", "")),
    ]);
    let (events, stats) = run(cfg(), &p);
    assert_eq!(
        summaries(&events),
        [
            "attempt c1 setup=0",
            "answer c1 at=3000 tag=tt1 pdd=500 se=None",
            "update c1 at=10050 ReInvite by=Callee se=None",
            "update c1 at=20050 ReInvite by=Caller se=None",
            "update c1 at=31040 Update by=Callee se=None",
            "end c1 bye code=200 answer=3000 end=40000 dur=37000 pdd=500 ring=2500 by=Caller cause=-",
        ]
    );
    assert_eq!(stats.answers, 1);
    // Parties keep their direction.
    assert_eq!(events[5].call().from_user.as_deref(), Some("1001"));
}

#[test]
fn bye_answered_481_still_ends_at_the_bye() {
    let f = Flow::new("c1");
    let mut p = basic(&f);
    p[6] = pkt(
        63020,
        &f.resp(481, "BYE", Dir::Caller, 2, Some("tt1"), "b3", ""),
    );
    let (events, _) = run(cfg(), &p);
    assert_eq!(summaries(&events), BASIC);
}

#[test]
fn session_timer_without_bye_ends_at_last_refresh_plus_interval() {
    let f = Flow::new("st");
    let se = "Session-Expires: 90;refresher=uac\r\n";
    let p = vec![
        pkt(0, &f.req("INVITE", Dir::Caller, 1, None, "b1", se)),
        pkt(
            1000,
            &f.resp(200, "INVITE", Dir::Caller, 1, Some("tt"), "b1", se),
        ),
        pkt(
            45000,
            &f.req("UPDATE", Dir::Caller, 2, Some("tt"), "b2", se),
        ),
        pkt(
            45100,
            &f.resp(
                200,
                "UPDATE",
                Dir::Caller,
                2,
                Some("tt"),
                "b2",
                "Session-Expires: 120;refresher=uac\r\n",
            ),
        ),
    ];
    let (events, stats) = run(cfg(), &p);
    assert_eq!(
        summaries(&events),
        [
            "attempt st setup=0",
            "answer st at=1000 tag=tt pdd=1000 se=Some(90)",
            "update st at=45100 Update by=Caller se=Some(120)",
            "end st session-expired code=200 answer=1000 end=165100 dur=164100 pdd=1000 ring=- by=- cause=-",
        ]
    );
    assert_eq!(stats.session_expired, 1);
}

#[test]
fn no_bye_no_timer_ends_at_max_duration() {
    let f = Flow::new("md");
    let mut c = cfg();
    c.max_duration_secs = 3600;
    let p = vec![
        pkt(0, &f.invite(1, "b1")),
        pkt(1000, &f.r(200, 1, Some("tt"), "b1")),
    ];
    let (events, stats) = run(c, &p);
    assert_eq!(
        summaries(&events)[2],
        "end md max-duration code=200 answer=1000 end=3601000 dur=3600000 pdd=1000 ring=- by=- cause=-"
    );
    let DialogEvent::End(r) = &events[2] else {
        panic!()
    };
    assert_eq!(r.end_reason, EndReason::MaxDuration);
    assert_eq!(stats.max_duration, 1);
}

#[test]
fn bye_just_before_expiry_but_late_wins_within_the_window() {
    let f = Flow::new("lw");
    let se = "Session-Expires: 90\r\n";
    let p = vec![
        pkt(0, &f.invite(1, "b1")),
        pkt(
            1000,
            &f.resp(200, "INVITE", Dir::Caller, 1, Some("tt"), "b1", se),
        ),
        // Seen after a packet of another call past the expiry.
        pkt(91100, &Flow::new("other").invite(1, "o1")),
        pkt(90900, &f.req("BYE", Dir::Caller, 2, Some("tt"), "b2", "")),
    ];
    let (events, _) = run(cfg(), &p);
    assert_eq!(
        summaries(&events)[2],
        "end lw bye code=200 answer=1000 end=90900 dur=89900 pdd=1000 ring=- by=Caller cause=-"
    );
}

#[test]
fn packets_out_of_order_within_the_window() {
    let f = Flow::new("c1");
    let mut p = basic(&f);
    p.swap(2, 3); // 200 seen before 180
    p.swap(0, 1); // 100 before INVITE
    p.swap(5, 6); // 200 BYE before BYE
    let (events, stats) = run(cfg(), &p);
    assert_eq!(summaries(&events), BASIC);
    assert_eq!((stats.late, stats.orphan_responses), (0, 0));
}

#[test]
fn unanswered_invite_is_reaped_with_a_counter() {
    let f = Flow::new("rp");
    let p = vec![
        pkt(0, &f.invite(1, "b1")),
        pkt(300, &f.r(180, 1, Some("tt"), "b1")),
    ];
    let (events, stats) = run(cfg(), &p);
    assert_eq!(
        summaries(&events),
        [
            "attempt rp setup=0",
            "failed rp timeout code=408 answer=- end=300000 dur=0 pdd=300 ring=299700 by=- cause=-"
        ]
    );
    assert_eq!(stats.reaped, 1);
}

#[test]
fn orphans_and_non_call_traffic_are_counted_not_billed() {
    let f = Flow::new("orph");
    let reg = "REGISTER sip:biloxi.example SIP/2.0\r\nCall-ID: reg\r\nCSeq: 1 REGISTER\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:a@b>\r\n\r\n";
    let p = vec![
        pkt(0, &f.req("BYE", Dir::Caller, 2, Some("tt"), "b1", "")),
        pkt(1, &f.resp(200, "BYE", Dir::Caller, 2, Some("tt"), "b1", "")),
        pkt(2, &f.req("INVITE", Dir::Caller, 3, Some("tt"), "b2", "")),
        pkt(3, reg),
        pkt(4, "garbage\r\n"),
        pkt(5, "\r\n\r\n"),
    ];
    let (events, stats) = run(cfg(), &p);
    assert!(events.is_empty());
    assert_eq!(
        (
            stats.orphan_requests,
            stats.orphan_responses,
            stats.non_call
        ),
        (2, 1, 1)
    );
    assert_eq!(stats.malformed(ScanError::BadStartLine), 1);
    assert_eq!(stats.malformed(ScanError::Empty), 1);
    assert_eq!(stats.malformed_total(), 2);
}

#[test]
fn reused_call_id_after_the_call_is_not_a_second_call() {
    let f = Flow::new("c1");
    let mut p = basic(&f);
    p.push(pkt(64000, &f.invite(5, "again")));
    let (events, stats) = run(cfg(), &p);
    assert_eq!(summaries(&events), BASIC);
    assert_eq!(stats.call_id_reuse, 1);
}

#[test]
fn dialog_limit_drops_new_calls() {
    let mut c = cfg();
    c.max_dialogs = 1;
    // Only answered calls make a new INVITE be dropped (unanswered ones
    // give way: tests/identity.rs).
    let p = vec![
        pkt(0, &Flow::new("a").invite(1, "x")),
        pkt(1, &Flow::new("a").r(200, 1, Some("tt"), "x")),
        pkt(2, &Flow::new("b").invite(1, "y")),
    ];
    let (events, stats) = run(c, &p);
    assert_eq!(summaries(&events)[0], "attempt a setup=0");
    assert_eq!(events.len(), 3);
    assert_eq!(stats.dialogs_dropped, 1);
}

#[test]
fn poll_timeout_follows_the_window_and_deadlines() {
    let f = Flow::new("pt");
    let mut m = sip_fsm::DialogMachine::new(cfg()).unwrap();
    assert_eq!(m.poll_timeout(), None);
    m.handle(&pkt(0, &f.invite(1, "b1")), t(0));
    assert_eq!(m.poll_timeout(), Some(t(200)));
    assert!(m.poll_event().is_none());
    m.handle_timeout(t(200));
    assert!(matches!(m.poll_event(), Some(DialogEvent::Attempt { .. })));
    // Timer C (300 s) plus the window.
    assert_eq!(m.poll_timeout(), Some(t(300_200)));
    m.handle_timeout(t(300_199));
    assert!(m.poll_event().is_none());
    m.handle_timeout(t(300_200));
    let Some(DialogEvent::Failed(r)) = m.poll_event() else {
        panic!("no failure")
    };
    assert_eq!(
        (r.end_reason, r.ended_by),
        (EndReason::Timeout, None::<Party>)
    );
    // Then the linger (32 s) until the dialog is dropped.
    assert_eq!(m.live_dialogs(), 1);
    assert_eq!(m.poll_timeout(), Some(t(332_200)));
    m.handle_timeout(t(332_200));
    assert_eq!((m.live_dialogs(), m.poll_timeout()), (0, None));
}

#[test]
fn mapping_and_capture_point_from_the_first_invite_copy() {
    let f = Flow::new("mp");
    let mut c = cfg();
    c.mapping = toml::from_str(
        r#"
        [account]
        from = ["pai-user"]
        normalize = [{ strip-prefix = "+49" }, { add-prefix = "0" }]
        [destination]
        from = ["diversion-user", "ruri-user"]
        [[rules]]
        capture-point = "edge"
        tenant = "edge.example"
        "#,
    )
    .unwrap();
    let inv = f.req(
        "INVITE",
        Dir::Caller,
        1,
        None,
        "b1",
        "P-Asserted-Identity: <tel:+4930123>\r\nDiversion: <sip:5555@x>;reason=no-answer\r\n",
    );
    let p = vec![
        pkt(0, &inv),
        pkt_at(1, "core", &hop_copy(&inv)),
        pkt(10, &f.r(486, 1, Some("t"), "b1")),
    ];
    let (events, _) = run(c, &p);
    let call = events[0].call();
    assert_eq!(call.pai_user.as_deref(), Some("+4930123"));
    assert_eq!(call.diversion_user.as_deref(), Some("5555"));
    let ch = &call.charging;
    assert_eq!(
        (&*ch.account, &*ch.subject, &*ch.destination, &*ch.tenant),
        ("030123", "1001", "5555", "edge.example")
    );
}
