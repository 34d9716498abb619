use serde_json::json;

use super::*;
use crate::cdr::CdrOptions;
use crate::cdr::tests::record;

fn filter(v: Value) -> Result<CdrFilter, String> {
    // Through text, as the server reads a request, and from a Value.
    let a = serde_json::from_str::<CdrFilter>(&v.to_string()).map_err(|e| e.to_string());
    let b = serde_json::from_value::<CdrFilter>(v).map_err(|e| e.to_string());
    // (Error positions are only known from text.)
    assert_eq!(a.is_ok(), b.is_ok());
    assert_eq!(a.as_ref().ok(), b.as_ref().ok());
    b
}

#[test]
fn cgrates_argument_shape() {
    let f = filter(json!({
        "Tenant": "cgrates.org",
        "APIOpts": {},
        "CGRIDs": ["a", "b"],
        "NotRunIDs": ["*raw"],
        "DestinationPrefixes": ["49"],
        "SetupTimeStart": "2026-11-23T12:00:00Z",
        "SetupTimeEnd": "1795440000",
        "AnswerTimeStart": "2026-11-23 12:00:00.5",
        "AnswerTimeEnd": 1_795_440_000,
        "MinUsage": "1m30s",
        "MaxUsage": 120_000_000_000u64,
        "ExtraArgs": {"MinCost": 0.1, "MaxCost": "2.000000000000000000001"},
        "Limit": 10,
        "Offset": 5
    }))
    .unwrap();
    assert_eq!(f.cgrids, ["a", "b"]);
    assert_eq!(f.not_run_ids, ["*raw"]);
    assert_eq!(f.destination_prefixes, ["49"]);
    assert_eq!(
        f.setup_time_start,
        Some(Timestamp::from_secs_nanos(1_795_435_200, 0))
    );
    assert_eq!(
        f.setup_time_end,
        Some(Timestamp::from_secs_nanos(1_795_440_000, 0))
    );
    assert_eq!(
        f.answer_time_start,
        Some(Timestamp::from_secs_nanos(1_795_435_200, 500_000_000))
    );
    assert_eq!(f.answer_time_end, f.setup_time_end);
    assert_eq!(f.min_usage, Some(Duration::from_secs(90)));
    assert_eq!(f.max_usage, Some(Duration::from_secs(120)));
    assert_eq!(f.min_cost, Some(Decimal::from_str("0.1").unwrap()));
    assert_eq!(
        f.max_cost,
        Some(Decimal::from_str("2.000000000000000000001").unwrap())
    );
    assert_eq!((f.limit, f.offset), (Some(10), Some(5)));
    // Top-level MinCost wins over ExtraArgs; empty strings are no bound.
    let f = filter(json!({"MinCost": "0.3", "ExtraArgs": {"MinCost": 1}, "MinUsage": "", "SetupTimeStart": ""})).unwrap();
    assert_eq!(f.min_cost, Some(Decimal::from_str("0.3").unwrap()));
    assert_eq!((f.min_usage, f.setup_time_start), (None, None));
    assert_eq!(filter(json!({})).unwrap(), CdrFilter::default());
}

#[test]
fn bad_arguments_are_errors_naming_the_field() {
    for (v, field) in [
        (json!({"SetupTimeStart": "yesterday"}), "SetupTimeStart"),
        (json!({"MinUsage": "soon"}), "MinUsage"),
        (json!({"MaxUsage": -1}), "MaxUsage"),
        (json!({"MinCost": "cheap"}), "MinCost"),
        (json!({"ExtraArgs": {"MaxCost": [1]}}), "MaxCost"),
        (json!({"Limit": -1}), "Limit"),
        (json!({"CGRIDs": "abc"}), "sequence"),
    ] {
        let e = filter(v.clone()).unwrap_err();
        assert!(e.contains(field), "{v}: {e}");
    }
}

#[test]
fn matches_is_the_filter_meaning() {
    let mut cdr = Cdr::from_record(&record(5_000_000_000, true), &CdrOptions::default());
    cdr.cost = Some(Decimal::from_str("0.5").unwrap());
    let ok = |v: Value, cdr: &Cdr| filter(v).unwrap().matches(cdr);
    let yes = |v: Value| ok(v, &cdr);
    assert!(yes(json!({})));
    assert!(yes(
        json!({"Accounts": ["4971112345"], "DestinationPrefixes": ["49", "1"]})
    ));
    assert!(!yes(json!({"NotAccounts": ["4971112345"]})));
    assert!(!yes(json!({"NotDestinationPrefixes": ["4930"]})));
    assert!(yes(json!({"MinCost": 0.5, "MaxCost": "0.5000000001"})));
    assert!(!yes(json!({"MaxCost": 0.5})));
    assert!(yes(json!({"MinUsage": "4s", "MaxUsage": "5s"})));
    assert!(!yes(json!({"MaxUsage": 4_999_999_000u64})));
    cdr.cost = None;
    assert!(!ok(json!({"MinCost": 0}), &cdr));
    cdr.answer_time = None;
    assert!(!ok(json!({"AnswerTimeStart": "0"}), &cdr));
}

#[test]
fn cdr_json_round_trip() {
    let mut cdr = Cdr::from_record(&record(61_000_000_123, true), &CdrOptions::default());
    cdr.cost = Some(Decimal::from_str("0.1234567890123456789012345").unwrap());
    cdr.cost_source = "*sessions".into();
    let text = serde_json::to_string(&cdr).unwrap();
    assert!(text.contains("\"CostSource\":\"*sessions\",\"Cost\":0.1234567890123456789012345"));
    let back: Cdr = serde_json::from_str(&text).unwrap();
    assert_eq!(back, cdr);
    let unanswered = Cdr::from_record(&record(3_000_000_000, false), &CdrOptions::default());
    let text = serde_json::to_string(&unanswered).unwrap();
    assert!(!text.contains("CostSource"), "{text}");
    assert_eq!(serde_json::from_str::<Cdr>(&text).unwrap(), unanswered);
    // Usage as a Go duration, Cost as a string.
    let v =
        json!({"CGRID": "x", "SetupTime": "2026-11-23T12:54:18Z", "Usage": "1m", "Cost": "0.10"});
    let c: Cdr = serde_json::from_value(v).unwrap();
    assert_eq!(c.usage, Duration::from_secs(60));
    assert_eq!(c.cost, Some(Decimal::from_str("0.10").unwrap()));
    assert!(serde_json::from_value::<Cdr>(json!({"SetupTime": "noon"})).is_err());
    // Beyond i64 nanoseconds (found by the session_args fuzz target: it was
    // clamped and read back as another time).
    let far = json!({"CGRID": "x", "SetupTime": "2026-11-23T12:54:18Z", "AnswerTime": "1013-11-29T10:00:01Z"});
    assert!(serde_json::from_value::<Cdr>(far).is_err());
}
