//! CGRID and OriginID per call (issue 7): a Call-ID reused by a later call
//! and Call-IDs that are not UTF-8 never make two calls share a CGRID.
#![allow(missing_docs, clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use capture::Timestamp;
use sessions::{Cdr, CdrOptions, cgrid};
use sip_fsm::{CallInfo, CallRecord, Charging, EndReason};

fn record(call_id: &[u8], suffix: Option<&[u8]>) -> CallRecord {
    let info = CallInfo {
        call_id_bytes: Arc::from(call_id),
        origin_suffix: suffix.map(Box::from),
        capture_point: "edge".into(),
        src: "10.0.0.1:5060".parse().unwrap(),
        dst: "10.0.0.2:5060".parse().unwrap(),
        setup_time: Timestamp::from_nanos(1_700_000_000_000_000_000),
        from_user: None,
        from_tag: None,
        to_user: None,
        ruri_user: None,
        pai_user: None,
        diversion_user: None,
        charging: Charging {
            tenant: "cgrates.org".into(),
            category: "call".into(),
            account: "1001".into(),
            subject: "1001".into(),
            destination: "1002".into(),
            request_type: "*rated".into(),
        },
    };
    CallRecord {
        call: Arc::new(info),
        answer_time: None,
        end_time: Timestamp::from_nanos(1_700_000_001_000_000_000),
        duration: Duration::ZERO,
        end_reason: EndReason::Rejected,
        code: 486,
        phrase: "Busy Here".into(),
        reason: None,
        pdd: None,
        ring_time: None,
        ended_by: None,
    }
}

fn cdr(r: &CallRecord) -> Cdr {
    Cdr::from_record(r, &CdrOptions::default())
}

#[test]
fn first_call_keeps_the_cgrates_cgrid_of_its_call_id() {
    let c = cdr(&record(b"abc@h", None));
    assert_eq!(c.origin_id, "abc@h");
    assert_eq!(c.cgrid, cgrid("abc@h", "10.0.0.2"));
}

#[test]
fn a_later_call_reusing_the_call_id_has_its_own_origin_id_and_cgrid() {
    let first = cdr(&record(b"abc@h", None));
    let second = cdr(&record(b"abc@h", Some(b";ft2")));
    assert_eq!(second.origin_id, "abc@h;ft2");
    assert_ne!(first.cgrid, second.cgrid);
    assert_eq!(second.cgrid, cgrid("abc@h;ft2", "10.0.0.2"));
}

#[test]
fn call_ids_that_are_not_utf8_never_share_a_cgrid() {
    let x = cdr(&record(b"ab\xff@h", None));
    let y = cdr(&record(b"ab\xfe@h", None));
    assert_eq!(
        (x.origin_id.as_str(), y.origin_id.as_str()),
        ("ab%FF@h", "ab%FE@h")
    );
    assert_ne!(x.cgrid, y.cgrid);
    // Hashed over the wire bytes, not the escaped text.
    assert_ne!(x.cgrid, cgrid("ab%FF@h", "10.0.0.2"));
    assert_eq!(x.cgrid, sessions::cgrid_bytes(b"ab\xff@h", "10.0.0.2"));
    // Nor the lossy text both used to become.
    assert_ne!(x.cgrid, cgrid("ab\u{fffd}@h", "10.0.0.2"));
}
