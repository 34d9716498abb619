//! `SessionSv1` and `CDRsV1` argument and reply shapes against CGRateS
//! v0.10: the arguments are the JSON a Go client marshals (every field of
//! `V1AuthorizeArgs`, `V1InitSessionArgs`... with the embedded
//! `CGREvent`, `Paginator` and `ArgDispatcher`), the replies are checked
//! field by field (names, integer nanoseconds, nulls), and a subsystem
//! AccuRate does not run gives CGRateS's error for a subsystem that is not
//! connected.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::path::PathBuf;

use serde_json::{Value, json};

mod serve_common;

use serve_common::{Server, err, rpc as call, wait_until};

const S: u64 = 1_000_000_000;

fn server() -> Server {
    let plan = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/tariffplans/sessions");
    Server::start(&["--tariffplan", plan.to_str().unwrap()])
}

fn keys(v: &Value) -> BTreeSet<&str> {
    v.as_object()
        .unwrap_or_else(|| panic!("not an object: {v}"))
        .keys()
        .map(String::as_str)
        .collect()
}

fn set<'a>(k: &[&'a str]) -> BTreeSet<&'a str> {
    k.iter().copied().collect()
}

/// Now as Go marshals a `time.Time` (whole seconds here): the calls are
/// live, their reservations run from the answer time.
fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// The event of CGRateS's own `sessions_it_test` (v0.10) as Go marshals
/// it (times RFC 3339, `Usage` a `time.Duration`), on this plan's
/// destinations, answered now.
fn go_event(origin: &str, request_type: &str) -> Value {
    let t = now();
    json!({
        "Tenant": "cgrates.org", "Category": "call", "ToR": "*voice",
        "OriginID": origin, "RequestType": request_type, "Account": "1001",
        "Subject": "1001", "Destination": "4930555002",
        "SetupTime": t, "AnswerTime": t, "Usage": 60 * S
    })
}

/// The embedded `CGREvent`, `Paginator` and `ArgDispatcher` fields.
fn embedded(args: &mut Value, id: &str, event: Value) {
    let m = args.as_object_mut().unwrap();
    for (k, v) in [
        ("Tenant", json!("cgrates.org")),
        ("ID", json!(id)),
        ("Time", Value::Null),
        ("Event", event),
        ("APIKey", Value::Null),
        ("RouteID", Value::Null),
    ] {
        m.insert(k.into(), v);
    }
}

/// `V1AuthorizeArgs` as a v0.10 Go client sends it.
fn authorize_args(get_max_usage: bool, extra: Value) -> Value {
    let mut a = json!({
        "GetAttributes": false, "AuthorizeResources": false, "GetMaxUsage": get_max_usage,
        "ProcessThresholds": false, "ProcessStats": false, "GetSuppliers": false,
        "ForceDuration": false, "SuppliersMaxCost": "", "SuppliersIgnoreErrors": false,
        "AttributeIDs": null, "ThresholdIDs": null, "StatIDs": null,
        "Limit": null, "Offset": null, "SearchTerm": ""
    });
    embedded(
        &mut a,
        "TestSSv1ItAuth",
        go_event("TestSSv1It1", "*prepaid"),
    );
    a.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    a
}

/// `V1InitSessionArgs` as a v0.10 Go client sends it.
fn init_args(origin: &str, extra: Value) -> Value {
    let mut a = json!({
        "GetAttributes": false, "AllocateResources": false, "InitSession": true,
        "ForceDuration": false, "ProcessThresholds": false, "ProcessStats": false,
        "AttributeIDs": null, "ThresholdIDs": null, "StatIDs": null
    });
    embedded(&mut a, "TestSSv1ItInit", go_event(origin, "*prepaid"));
    a.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    a
}

/// `V1TerminateSessionArgs` as a v0.10 Go client sends it.
fn terminate_args(origin: &str, extra: Value) -> Value {
    let mut a = json!({
        "TerminateSession": true, "ForceDuration": false, "ReleaseResources": false,
        "ProcessThresholds": false, "ProcessStats": false,
        "ThresholdIDs": null, "StatIDs": null
    });
    embedded(&mut a, "TestSSv1ItTerminate", go_event(origin, "*prepaid"));
    a.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    a
}

fn count(s: &Server, filter: Value) -> u64 {
    call(s, "SessionSv1.GetActiveSessionsCount", filter)
        .as_u64()
        .unwrap()
}

#[test]
fn authorize_event_reply_and_subsystem_errors() {
    let s = server();
    let r = call(
        &s,
        "SessionSv1.AuthorizeEvent",
        authorize_args(true, json!({})),
    );
    assert_eq!(
        keys(&r),
        set(&[
            "Attributes",
            "ResourceAllocation",
            "MaxUsage",
            "Suppliers",
            "ThresholdIDs",
            "StatQueueIDs"
        ]),
        "{r}"
    );
    assert_eq!(r["MaxUsage"], json!(60 * S), "{r}");
    for k in [
        "Attributes",
        "ResourceAllocation",
        "Suppliers",
        "ThresholdIDs",
        "StatQueueIDs",
    ] {
        assert!(r[k].is_null(), "{k}: {r}");
    }
    // Without GetMaxUsage nothing can run here, and the thresholds and
    // stats flags alone are no subsystem, as in CGRateS.
    let r = call(
        &s,
        "SessionSv1.AuthorizeEvent",
        authorize_args(
            false,
            json!({"ProcessThresholds": true, "ProcessStats": true}),
        ),
    );
    assert_eq!(err(&r), "MANDATORY_IE_MISSING: [subsystems]");
    for (flag, want) in [
        (
            "GetAttributes",
            "ATTRIBUTES_ERROR:NOT_CONNECTED: AttributeS",
        ),
        ("AuthorizeResources", "NOT_CONNECTED: ResourceS"),
        ("GetSuppliers", "NOT_CONNECTED: SupplierS"),
        ("ProcessThresholds", "PARTIALLY_EXECUTED"),
        ("ProcessStats", "PARTIALLY_EXECUTED"),
    ] {
        let r = call(
            &s,
            "SessionSv1.AuthorizeEvent",
            authorize_args(true, json!({ flag: true })),
        );
        assert_eq!(err(&r), want, "{flag}");
    }
    let r = call(
        &s,
        "SessionSv1.AuthorizeEvent",
        json!({"GetMaxUsage": true}),
    );
    assert_eq!(err(&r), "MANDATORY_IE_MISSING: [CGREvent]");
}

#[test]
fn initiate_update_terminate_replies_and_subsystem_errors() {
    let s = server();
    let r = call(&s, "SessionSv1.InitiateSession", init_args("i1", json!({})));
    assert_eq!(
        keys(&r),
        set(&[
            "Attributes",
            "ResourceAllocation",
            "MaxUsage",
            "ThresholdIDs",
            "StatQueueIDs"
        ]),
        "{r}"
    );
    assert_eq!(r["MaxUsage"], json!(60 * S), "{r}");
    assert!(r["Attributes"].is_null() && r["ResourceAllocation"].is_null());

    // V1UpdateSessionArgs with LastUsed and the next Usage.
    let mut u = json!({"GetAttributes": false, "UpdateSession": true,
                       "ForceDuration": false, "AttributeIDs": null});
    let mut ev = go_event("i1", "*prepaid");
    ev["LastUsed"] = json!(60 * S);
    ev["Usage"] = json!(120 * S);
    embedded(&mut u, "TestSSv1ItUpdate", ev);
    let r = call(&s, "SessionSv1.UpdateSession", u.clone());
    assert_eq!(keys(&r), set(&["Attributes", "MaxUsage"]), "{r}");
    assert!(r["MaxUsage"].is_u64(), "{r}");
    assert!(r["Attributes"].is_null());
    u["UpdateSession"] = json!(false);
    u["GetAttributes"] = json!(true);
    assert_eq!(
        err(&call(&s, "SessionSv1.UpdateSession", u)),
        "ATTRIBUTES_ERROR:NOT_CONNECTED: AttributeS"
    );

    // Resources are checked before the session starts: none is started.
    let r = call(
        &s,
        "SessionSv1.InitiateSession",
        init_args("i2", json!({"AllocateResources": true})),
    );
    assert_eq!(err(&r), "NOT_CONNECTED: ResourceS");
    assert_eq!(count(&s, json!({})), 1);
    // Thresholds run after it: the session is started, and CGRateS
    // answers PARTIALLY_EXECUTED.
    let r = call(
        &s,
        "SessionSv1.InitiateSession",
        init_args("i3", json!({"ProcessThresholds": true})),
    );
    assert_eq!(err(&r), "PARTIALLY_EXECUTED");
    assert_eq!(count(&s, json!({})), 2);
    let r = call(
        &s,
        "SessionSv1.InitiateSession",
        init_args("i4", json!({"InitSession": false})),
    );
    assert_eq!(err(&r), "MANDATORY_IE_MISSING: [subsystems]");

    // Terminate: the session ends, then ReleaseResources fails.
    let r = call(
        &s,
        "SessionSv1.TerminateSession",
        terminate_args("i3", json!({"ReleaseResources": true})),
    );
    assert_eq!(err(&r), "NOT_CONNECTED: ResourceS");
    assert_eq!(count(&s, json!({})), 1);
    let r = call(
        &s,
        "SessionSv1.TerminateSession",
        terminate_args("i1", json!({})),
    );
    assert_eq!(r, json!("OK"));
    assert_eq!(count(&s, json!({})), 0);
    let r = call(
        &s,
        "SessionSv1.TerminateSession",
        terminate_args("", json!({})),
    );
    assert_eq!(err(&r), "MANDATORY_IE_MISSING: [OriginID]");
    let r = call(
        &s,
        "SessionSv1.TerminateSession",
        terminate_args(
            "i1",
            json!({"TerminateSession": false, "ProcessStats": true}),
        ),
    );
    assert_eq!(err(&r), "MANDATORY_IE_MISSING: [subsystems]");
}

/// `V1ProcessEventArgs`: `Flags` plus the embedded CGREvent.
fn process_args(flags: Value, origin: &str) -> Value {
    let mut a = json!({"Flags": flags, "Limit": null, "Offset": null, "SearchTerm": ""});
    embedded(
        &mut a,
        "TestSSv1ItProcessEvent",
        go_event(origin, "*postpaid"),
    );
    a
}

#[test]
fn process_event_reply_flags_and_subsystem_errors() {
    let s = server();
    let r = call(
        &s,
        "SessionSv1.ProcessEvent",
        process_args(json!(["*rals:*initiate"]), "pe1"),
    );
    assert_eq!(
        keys(&r),
        set(&[
            "MaxUsage",
            "ResourceAllocation",
            "Attributes",
            "Suppliers",
            "ThresholdIDs",
            "StatQueueIDs"
        ]),
        "{r}"
    );
    assert_eq!(r["MaxUsage"], json!(60 * S), "{r}");
    assert_eq!(count(&s, json!({})), 1);
    // Only the first of *authorize, *initiate, *update, *terminate runs.
    let r = call(
        &s,
        "SessionSv1.ProcessEvent",
        process_args(json!(["*rals:*initiate;*terminate"]), "pe2"),
    );
    assert_eq!(r["MaxUsage"], json!(60 * S), "{r}");
    assert_eq!(count(&s, json!({})), 2);
    let r = call(
        &s,
        "SessionSv1.ProcessEvent",
        process_args(json!(["*rals:*terminate"]), "pe2"),
    );
    assert_eq!(r["MaxUsage"], json!(0), "{r}");
    assert_eq!(count(&s, json!({})), 1);
    // No flag: nothing runs, no error.
    let r = call(
        &s,
        "SessionSv1.ProcessEvent",
        process_args(json!([]), "pe3"),
    );
    assert_eq!(r["MaxUsage"], json!(0), "{r}");
    for (flags, want) in [
        (
            json!(["*attributes"]),
            "ATTRIBUTES_ERROR:NOT_CONNECTED: AttributeS",
        ),
        (json!(["*resources:*authorize"]), "NOT_CONNECTED: ResourceS"),
        (json!(["*suppliers"]), "NOT_CONNECTED: SupplierS"),
        (json!(["*stats"]), "PARTIALLY_EXECUTED"),
        (json!(["*thresholds:TH1"]), "PARTIALLY_EXECUTED"),
    ] {
        let r = call(&s, "SessionSv1.ProcessEvent", process_args(flags, "pe4"));
        assert_eq!(err(&r), want);
    }
    assert_eq!(count(&s, json!({})), 1);
}

#[test]
fn active_sessions_are_external_sessions_and_limit_is_cgrates_limit() {
    let s = server();
    for o in ["a1", "a2"] {
        let mut a = init_args(o, json!({}));
        a["Event"]
            .as_object_mut()
            .unwrap()
            .remove("SetupTime")
            .unwrap();
        a["Event"]["EventName"] = json!("TEST_EVENT");
        let r = call(&s, "SessionSv1.InitiateSession", a);
        assert!(r["MaxUsage"].is_u64(), "{r}");
    }
    let list = call(
        &s,
        "SessionSv1.GetActiveSessions",
        json!({"Limit": null, "Filters": null, "Tenant": "", "APIKey": null, "RouteID": null}),
    );
    let list = list.as_array().unwrap_or_else(|| panic!("{list}"));
    assert_eq!(list.len(), 2);
    let a = &list[0];
    for k in [
        "CGRID",
        "RunID",
        "ToR",
        "OriginID",
        "OriginHost",
        "Source",
        "RequestType",
        "Tenant",
        "Category",
        "Account",
        "Subject",
        "Destination",
        "SetupTime",
        "AnswerTime",
        "Usage",
        "ExtraFields",
        "NodeID",
        "LoopIndex",
        "DurationIndex",
        "MaxRate",
        "MaxRateUnit",
        "MaxCostSoFar",
        "DebitInterval",
        "NextAutoDebit",
    ] {
        assert!(a.get(k).is_some(), "{k} missing: {a}");
    }
    assert_eq!(a["SetupTime"], "0001-01-01T00:00:00Z", "{a}");
    assert_eq!(a["AnswerTime"], list[1]["AnswerTime"], "{a}");
    assert!(a["AnswerTime"].as_str().unwrap().ends_with('Z'), "{a}");
    assert_eq!(a["Source"], "SessionS_TEST_EVENT", "{a}");
    assert_eq!(a["RunID"], "*default");
    assert!(a["Usage"].is_u64() && a["DebitInterval"].is_u64(), "{a}");
    assert_eq!(a["ExtraFields"]["EventName"], "TEST_EVENT", "{a}");
    // Limit: 0 or below is no limit; the count ignores it.
    for (limit, want) in [(0, 2), (-1, 2), (1, 1)] {
        let l = call(&s, "SessionSv1.GetActiveSessions", json!({"Limit": limit}));
        assert_eq!(l.as_array().unwrap().len(), want, "Limit {limit}");
    }
    assert_eq!(count(&s, json!({"Limit": 1})), 2);
    let r = call(
        &s,
        "SessionSv1.ForceDisconnect",
        json!({"Filters": ["*string:~*req.OriginID:a1"]}),
    );
    assert_eq!(r, json!("OK"));
}

fn stored(s: &Server, origin: &str) -> Vec<Value> {
    let mut got = Vec::new();
    wait_until("the stored CDR", || {
        let r = call(s, "CDRsV1.GetCDRs", json!({"OriginIDs": [origin]}));
        got = r.as_array().cloned().unwrap_or_default();
        !got.is_empty()
    });
    got
}

#[test]
fn cdrs_process_cdr_extra_fields_and_process_event_flags() {
    let s = server();
    // engine.CDR as a Go client marshals it.
    let cdr = json!({
        "CGRID": "", "RunID": "", "OrderID": 0, "OriginHost": "192.168.1.1",
        "Source": "test", "OriginID": "x1", "ToR": "*voice", "RequestType": "*rated",
        "Tenant": "cgrates.org", "Category": "call", "Account": "1001", "Subject": "1001",
        "Destination": "4930555002", "SetupTime": "2026-01-07T17:00:00Z",
        "AnswerTime": "2026-01-07T17:00:10Z", "Usage": 60 * S,
        "ExtraFields": {"Codec": "PCMA", "DisconnectCause": "NORMAL_CLEARING"},
        "ExtraInfo": "", "Partial": false, "PreRated": false, "CostSource": "",
        "Cost": -1, "CostDetails": null, "APIKey": null, "RouteID": null
    });
    assert_eq!(call(&s, "CDRsV1.ProcessCDR", cdr.clone()), json!("OK"));
    let c = &stored(&s, "x1")[0];
    // engine.CDR's fields, times as Go marshals a time.Time.
    for k in [
        "CGRID",
        "RunID",
        "OrderID",
        "OriginHost",
        "Source",
        "OriginID",
        "ToR",
        "RequestType",
        "Tenant",
        "Category",
        "Account",
        "Subject",
        "Destination",
        "SetupTime",
        "AnswerTime",
        "Usage",
        "ExtraFields",
        "ExtraInfo",
        "Partial",
        "PreRated",
        "CostSource",
        "Cost",
        "CostDetails",
    ] {
        assert!(c.get(k).is_some(), "{k} missing: {c}");
    }
    assert_eq!(c["SetupTime"], "2026-01-07T17:00:00Z", "{c}");
    assert_eq!(c["AnswerTime"], "2026-01-07T17:00:10Z", "{c}");
    assert_eq!(c["ExtraFields"]["Codec"], "PCMA", "{c}");
    assert!(c["ExtraFields"].get("ExtraFields").is_none(), "{c}");
    assert!(c["ExtraFields"].get("PreRated").is_none(), "{c}");
    assert_eq!(c["Source"], "test");
    assert_eq!(c["Usage"], json!(60 * S));
    // APIerSv2.GetCDRs: engine.ExternalCDR, times RFC 3339 seconds, a
    // *voice usage as Go's Duration.String(), nil cost details "null".
    let x = call(&s, "APIerSv2.GetCDRs", json!({"OriginIDs": ["x1"]}));
    let x = &x[0];
    assert_eq!(
        keys(x),
        set(&[
            "CGRID",
            "RunID",
            "OrderID",
            "OriginHost",
            "Source",
            "OriginID",
            "ToR",
            "RequestType",
            "Tenant",
            "Category",
            "Account",
            "Subject",
            "Destination",
            "SetupTime",
            "AnswerTime",
            "Usage",
            "ExtraFields",
            "CostSource",
            "Cost",
            "CostDetails",
            "ExtraInfo",
            "PreRated",
        ]),
        "{x}"
    );
    assert_eq!(x["Usage"], "1m0s", "{x}");
    assert_eq!(x["SetupTime"], "2026-01-07T17:00:00Z", "{x}");
    assert_eq!(x["CostDetails"], "null", "{x}");
    let mut pre = cdr;
    pre["OriginID"] = json!("x2");
    pre["PreRated"] = json!(true);
    assert!(err(&call(&s, "CDRsV1.ProcessCDR", pre)).contains("PreRated"));

    // ArgV1ProcessEvent: *thresholds asked for stores, then
    // PARTIALLY_EXECUTED; *attributes asked for stores nothing.
    let ev = |origin: &str, flags: Value| {
        let mut a = json!({"Flags": flags, "APIKey": null, "RouteID": null});
        embedded(&mut a, &format!("ev-{origin}"), go_event(origin, "*rated"));
        a
    };
    let r = call(
        &s,
        "CDRsV1.ProcessEvent",
        ev("x3", json!(["*rals", "*thresholds"])),
    );
    assert_eq!(err(&r), "PARTIALLY_EXECUTED");
    assert_eq!(stored(&s, "x3").len(), 1);
    let r = call(&s, "CDRsV1.ProcessEvent", ev("x4", json!(["*attributes"])));
    assert_eq!(err(&r), "PARTIALLY_EXECUTED");
    let r = call(
        &s,
        "CDRsV1.ProcessEvent",
        ev(
            "x5",
            json!(["*rals:true", "*store", "*export", "*attributes:false"]),
        ),
    );
    assert_eq!(r, json!("OK"));
    stored(&s, "x5");
    let r = call(&s, "CDRsV1.GetCDRs", json!({"OriginIDs": ["x4"]}));
    assert_eq!(err(&r), "SERVER_ERROR: NOT_FOUND");
    // GetBool: only "true" (or nothing) is on.
    let r = call(&s, "CDRsV1.ProcessEvent", ev("x6", json!(["*store:yes"])));
    assert!(err(&r).contains("*store"), "{r}");

    // The CDR server's defaults: no RequestType is *rated (priced, not
    // debited), its CostSource *cdrs; a call that cannot be rated is
    // stored with Cost -1 and the error in ExtraInfo, and answered OK.
    let mut a = ev("x8", json!(["*rals"]));
    a["Event"].as_object_mut().unwrap().remove("RequestType");
    assert_eq!(call(&s, "CDRsV1.ProcessEvent", a), json!("OK"));
    let c = &stored(&s, "x8")[0];
    assert_eq!(c["RequestType"], "*rated", "{c}");
    assert_eq!(c["Cost"], json!(0.6), "{c}");
    assert_eq!(c["CostSource"], "*cdrs", "{c}");
    let mut a = ev("x9", json!(["*rals"]));
    a["Event"]["Destination"] = json!("1002");
    assert_eq!(call(&s, "CDRsV1.ProcessEvent", a), json!("OK"));
    let c = &stored(&s, "x9")[0];
    assert_eq!(c["Cost"], json!(-1), "{c}");
    assert!(!c["ExtraInfo"].as_str().unwrap().is_empty(), "{c}");
    assert_eq!(c["CostSource"], "", "{c}");

    // SessionSv1.ProcessCDR marks its CDRs' Source when the event has none.
    let mut a = json!({"APIKey": null, "RouteID": null});
    let mut e = go_event("x7", "*rated");
    e.as_object_mut().unwrap().remove("Source");
    embedded(&mut a, "pcdr", e);
    assert_eq!(call(&s, "SessionSv1.ProcessCDR", a), json!("OK"));
    assert_eq!(stored(&s, "x7")[0]["Source"], "*sessions");
}
