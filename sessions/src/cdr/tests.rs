use std::sync::Arc;

use sip_fsm::Charging;

use super::*;

pub(crate) const T0: i64 = 1_795_438_458_516_552_000;

fn info() -> Arc<CallInfo> {
    Arc::new(CallInfo {
        call_id_bytes: Arc::from(&b"1-13033@127.0.0.1"[..]),
        origin_suffix: None,
        capture_point: "2001".into(),
        src: "127.0.0.1:5061".parse().unwrap(),
        dst: "127.0.0.1:5060".parse().unwrap(),
        setup_time: Timestamp::from_nanos(T0),
        from_user: Some("4971112345".into()),
        from_tag: Some("1".into()),
        to_user: Some("4930555006".into()),
        ruri_user: Some("4930555006".into()),
        pai_user: None,
        diversion_user: None,
        charging: Charging {
            tenant: "cgrates.org".into(),
            category: "call".into(),
            account: "4971112345".into(),
            subject: "4971112345".into(),
            destination: "4930555006".into(),
            request_type: "*rated".into(),
        },
    })
}

/// A record ending `end` ns after setup; answered 1 µs after setup.
pub(crate) fn record(end: i64, answered: bool) -> CallRecord {
    let answer = Timestamp::from_nanos(T0 + 1_000);
    let end_time = Timestamp::from_nanos(T0 + end);
    CallRecord {
        call: info(),
        answer_time: answered.then_some(answer),
        end_time,
        duration: if answered {
            end_time.since(answer)
        } else {
            Duration::ZERO
        },
        end_reason: if answered {
            EndReason::Bye
        } else {
            EndReason::Rejected
        },
        code: if answered { 200 } else { 486 },
        phrase: if answered {
            "OK".into()
        } else {
            "Busy Here".into()
        },
        reason: None,
        pdd: Some(Duration::from_micros(1_204)),
        ring_time: None,
        ended_by: answered.then_some(Party::Caller),
    }
}

#[test]
fn cgrid_is_sha1_of_origin_id_then_host() {
    // sha1("abc"), split anywhere, is the same: no separator.
    assert_eq!(cgrid("ab", "c"), "a9993e364706816aba3e25717850c26c9cd0d89d");
    assert_eq!(cgrid("", "abc"), cgrid("abc", ""));
    // python3: hashlib.sha1(b'1-13033@127.0.0.1' + b'127.0.0.1').hexdigest()
    assert_eq!(
        cgrid("1-13033@127.0.0.1", "127.0.0.1"),
        "1b9389d1f276c61665e5542f9fcebb7846933918"
    );
}

#[test]
fn answered_call_serialises_with_cgrates_names() {
    let cdr = Cdr::from_record(&record(2_012_000_000, true), &CdrOptions::default());
    assert_eq!(cdr.origin_host, "127.0.0.1");
    assert_eq!(cdr.cgrid, "1b9389d1f276c61665e5542f9fcebb7846933918");
    let v: serde_json::Value = serde_json::to_value(&cdr).unwrap();
    assert_eq!(v["RunID"], "*default");
    assert_eq!(v["OriginID"], "1-13033@127.0.0.1");
    assert_eq!(v["ToR"], "*voice");
    assert_eq!(v["RequestType"], "*rated");
    assert_eq!(v["Account"], "4971112345");
    assert_eq!(v["Destination"], "4930555006");
    assert_eq!(v["SetupTime"], "2026-11-23T12:54:18.516552Z");
    assert_eq!(v["AnswerTime"], "2026-11-23T12:54:18.516553Z");
    assert_eq!(v["Usage"], 2_011_999_000u64);
    assert_eq!(v["Cost"], serde_json::Value::Null);
    assert_eq!(v["DisconnectCause"], "200");
    let x = &v["ExtraFields"];
    assert_eq!(x["EndReason"], "bye");
    assert_eq!(x["EndedBy"], "caller");
    assert_eq!(x["PDD"], "1.204ms");
    assert_eq!(x["SIPCode"], "200");
    assert_eq!(x["EndTime"], "2026-11-23T12:54:20.528552Z");
    assert!(x.get("RingTime").is_none());
    // The end time is not a field of its own.
    assert!(v.get("end_time").is_none() && v.get("EndTime").is_none());
}

#[test]
fn failed_attempt_has_zero_usage_null_answer_and_its_code() {
    let mut rec = record(500_000_000, false);
    // Even if a record carried a duration, an unanswered call bills 0.
    rec.duration = Duration::from_secs(3);
    let cdr = Cdr::from_record(&rec, &CdrOptions::default());
    assert!(!cdr.answered());
    assert_eq!(cdr.usage_nanos(), 0);
    let v: serde_json::Value = serde_json::to_value(&cdr).unwrap();
    assert_eq!(v["AnswerTime"], serde_json::Value::Null);
    assert_eq!(v["Usage"], 0);
    assert_eq!(v["DisconnectCause"], "486");
    assert_eq!(v["ExtraFields"]["EndReason"], "rejected");
    assert_eq!(v["ExtraFields"]["SIPPhrase"], "Busy Here");
}

#[test]
fn bye_reason_becomes_the_disconnect_cause() {
    let mut rec = record(2_000_000_000, true);
    rec.reason = Some(ReasonInfo {
        protocol: "Q.850".into(),
        cause: Some(16),
        text: Some("Normal call clearing".into()),
    });
    let cdr = Cdr::from_record(&rec, &CdrOptions::default());
    assert_eq!(
        cdr.disconnect_cause,
        "Q.850;cause=16;text=\"Normal call clearing\""
    );
    // A Reason on a rejection is kept in ExtraFields; the cause is the code.
    let mut rec = record(1_000, false);
    rec.reason = Some(ReasonInfo {
        protocol: "SIP".into(),
        cause: Some(600),
        text: None,
    });
    let cdr = Cdr::from_record(&rec, &CdrOptions::default());
    assert_eq!(cdr.disconnect_cause, "486");
    assert_eq!(cdr.extra_fields["Reason"], "SIP;cause=600");
}

#[test]
fn configured_origin_host_and_source_are_used() {
    let opts = CdrOptions {
        origin_host: Some("sbc-1".into()),
        source: "test".into(),
        ..CdrOptions::default()
    };
    let cdr = Cdr::from_record(&record(10, true), &opts);
    assert_eq!(cdr.origin_host, "sbc-1");
    assert_eq!(cdr.source, "test");
    assert_eq!(cdr.cgrid, cgrid("1-13033@127.0.0.1", "sbc-1"));
}

#[test]
fn cost_is_an_exact_json_number() {
    let mut cdr = Cdr::from_record(&record(10, true), &CdrOptions::default());
    cdr.cost = Some("0.1000000000000000000000000001".parse().unwrap());
    let text = serde_json::to_string(&cdr).unwrap();
    assert!(
        text.contains("\"Cost\":0.1000000000000000000000000001,"),
        "{text}"
    );
    cdr.set_rating_error("no rating profile");
    let text = serde_json::to_string(&cdr).unwrap();
    assert!(text.contains("\"Cost\":-1,"), "{text}");
    assert_eq!(cdr.extra_fields["RatingError"], "no rating profile");
}

#[test]
fn times_keep_nanoseconds_when_there_are_any() {
    assert_eq!(
        rfc3339(Timestamp::from_nanos(1_700_000_000_000_000_000)),
        "2023-11-14T22:13:20.000000Z"
    );
    assert_eq!(
        rfc3339(Timestamp::from_nanos(1_700_000_000_123_456_789)),
        "2023-11-14T22:13:20.123456789Z"
    );
    assert!(rfc3339(Timestamp::from_nanos(i64::MAX)).starts_with("2262-"));
}

#[test]
fn go_time_is_go_json_time() {
    use chrono::TimeZone;
    let t = chrono::Utc
        .with_ymd_and_hms(2026, 11, 23, 12, 54, 18)
        .unwrap();
    assert_eq!(super::go_time(t), "2026-11-23T12:54:18Z");
    let half = t + chrono::TimeDelta::milliseconds(500);
    assert_eq!(super::go_time(half), "2026-11-23T12:54:18.5Z");
    let ns = t + chrono::TimeDelta::nanoseconds(516_552_001);
    assert_eq!(super::go_time(ns), "2026-11-23T12:54:18.516552001Z");
}
