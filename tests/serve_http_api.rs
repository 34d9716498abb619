//! The plain HTTP endpoints of `accurate serve` (`POST /v1/authorize`,
//! `POST /v1/cdrs`) on the `aaa` plan: answers compared with what the
//! same calls give over JSON-RPC, balances and stored CDRs afterwards,
//! Canyan's field names, bad bodies and methods refused with the right
//! status, and the calls counted in `/metrics`.
#![allow(clippy::unwrap_used, dead_code)]

use std::path::PathBuf;

use serde_json::{Value, json};

mod common;
mod serve_common;

use serve_common::{Server, credit, dec, metric, rpc, wait_until};

fn plan() -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/tariffplans/aaa")
        .to_str()
        .unwrap()
        .to_owned()
}

fn post(s: &Server, path: &str, body: &Value) -> (u16, Value) {
    s.http("POST", path, &body.to_string(), &[])
}

fn stored(s: &Server, origin: &str) -> Vec<Value> {
    let mut got = Vec::new();
    wait_until("the stored CDR", || {
        let r = rpc(s, "CDRsV1.GetCDRs", json!({"OriginIDs": [origin]}));
        got = r.as_array().cloned().unwrap_or_default();
        !got.is_empty()
    });
    got
}

#[test]
fn authorize_answers_max_usage_and_attributes_as_the_session_api_does() {
    let s = Server::start(&["--tariffplan", &plan()]);
    wait_until("the accounts", || credit(&s, "1001") == dec("10"));

    let ev = json!({"Tenant": "cgrates.org", "Account": "1001", "Destination": "4930123",
        "OriginID": "h1", "Usage": "1h"});
    let (status, got) = post(&s, "/v1/authorize", &ev);
    assert_eq!(status, 200, "{got}");
    // The same over JSON-RPC.
    let want = rpc(
        &s,
        "SessionSv1.AuthorizeEvent",
        json!({"GetMaxUsage": true, "GetAttributes": true, "Tenant": "cgrates.org",
            "ID": "x", "Event": ev}),
    );
    assert_eq!(got["MaxUsage"], want["MaxUsage"], "{want}");
    // 10.00 at 0.01 a second: 1000 s.
    assert_eq!(got["MaxUsage"], 1_000_000_000_000_i64);
    assert_eq!(got["MaxUsageSeconds"], "1000");
    assert_eq!(got["max_available_units"], "1000");
    assert_eq!(got["Authorized"], true);
    assert_eq!(got["authorized"], true);
    assert_eq!(got["Attributes"]["RequestType"], "*prepaid", "{got}");
    assert_eq!(got["Attributes"], want["Attributes"]["CGREvent"]["Event"]);
    assert_eq!(got["AlteredFields"], want["Attributes"]["AlteredFields"]);

    // Canyan's names: transaction_tag, account_tag, destination.
    let (status, c) = post(
        &s,
        "/v1/authorize",
        &json!({"tenant": "cgrates.org", "transaction_tag": "c1", "account_tag": "1003",
            "destination": "4930123", "RequestType": "*prepaid", "Usage": "1h"}),
    );
    assert_eq!(status, 200, "{c}");
    // 0.03 at 0.01 a second: 3 s.
    assert_eq!(c["MaxUsage"], 3_000_000_000_i64);

    // An unknown account is not authorized, with the reason.
    let (status, u) = post(
        &s,
        "/v1/authorize",
        &json!({"Tenant": "cgrates.org", "Account": "9999", "Destination": "4930123",
            "OriginID": "h9", "RequestType": "*prepaid"}),
    );
    assert_eq!(status, 403, "{u}");
    assert_eq!(u["Authorized"], false);
    assert!(u["Error"].as_str().unwrap().contains("NOT_FOUND"), "{u}");
    assert_eq!(u["unauthorized_reason"], u["Error"]);

    // Bad bodies and methods.
    let (status, _) = s.http("POST", "/v1/authorize", "{not json", &[]);
    assert_eq!(status, 400);
    let (status, b) = post(&s, "/v1/authorize", &json!([1, 2]));
    assert_eq!(status, 400, "{b}");
    let (status, _) = s.http("GET", "/v1/authorize", "", &[]);
    assert_eq!(status, 405);

    // Counted by path: four calls answered, two of them refused (the
    // unknown account, the array); the unparsable body never got there.
    assert_eq!(
        metric(&s, "accurate_rpc_requests_total{method=\"/v1/authorize\"}"),
        4
    );
    assert_eq!(
        metric(&s, "accurate_rpc_errors_total{method=\"/v1/authorize\"}"),
        2
    );
    // An authorization debits nothing.
    assert_eq!(credit(&s, "1001"), dec("10"));
    assert_eq!(credit(&s, "1003"), dec("0.03"));
}

#[test]
fn a_finished_call_handed_in_is_charged_and_stored_once() {
    let s = Server::start(&["--tariffplan", &plan()]);
    wait_until("the accounts", || credit(&s, "1001") == dec("10"));
    let call = json!({"Tenant": "cgrates.org", "OriginID": "h2", "OriginHost": "sbc1",
        "Account": "1001", "Destination": "4930123", "RequestType": "*postpaid",
        "SetupTime": "2026-11-30T10:00:00Z", "AnswerTime": "2026-11-30T10:00:02Z",
        "Usage": "60s"});
    let (status, r) = post(&s, "/v1/cdrs", &call);
    assert_eq!(status, 200, "{r}");
    assert_eq!(r["ok"], true);
    let cdrs = stored(&s, "h2");
    assert_eq!(cdrs.len(), 1, "{cdrs:?}");
    assert_eq!(cdrs[0]["Cost"], 0.6, "{:?}", cdrs[0]);
    assert_eq!(cdrs[0]["Usage"], 60_000_000_000_i64);
    assert_eq!(credit(&s, "1001"), dec("9.4"));

    // Handed in again (a retry): stored and charged once.
    let (status, r) = post(&s, "/v1/cdrs", &call);
    assert_eq!(status, 200, "{r}");
    assert_eq!(stored(&s, "h2").len(), 1);
    assert_eq!(credit(&s, "1001"), dec("9.4"));

    // Canyan's names, and a CGREvent with its Event object.
    let (status, r) = post(
        &s,
        "/v1/cdrs",
        &json!({"Tenant": "cgrates.org", "ID": "e1", "Event": {"transaction_tag": "h3",
            "account_tag": "1001", "destination": "4930123", "RequestType": "*postpaid",
            "AnswerTime": "2026-11-30T10:05:00Z", "Usage": "10s"}}),
    );
    assert_eq!(status, 200, "{r}");
    let cdrs = stored(&s, "h3");
    assert_eq!(cdrs[0]["Account"], "1001");
    assert_eq!(credit(&s, "1001"), dec("9.3"));

    // A call with a usage and no AnswerTime was answered: charged for its
    // 30 s (0.30), not stored as unanswered.
    let (status, r) = post(
        &s,
        "/v1/cdrs",
        &json!({"Tenant": "cgrates.org", "OriginID": "h5", "Account": "1001",
            "Destination": "4930123", "RequestType": "*postpaid", "Usage": "30s"}),
    );
    assert_eq!(status, 200, "{r}");
    let cdrs = stored(&s, "h5");
    assert_eq!(cdrs[0]["Usage"], 30_000_000_000_i64, "{:?}", cdrs[0]);
    assert_eq!(credit(&s, "1001"), dec("9.0"));

    // A call without an account is refused, not stored.
    let (status, r) = post(
        &s,
        "/v1/cdrs",
        &json!({"Tenant": "cgrates.org", "OriginID": "h4", "Destination": "4930123",
            "Usage": "10s"}),
    );
    assert_eq!(status, 400, "{r}");
    assert_eq!(r["ok"], false);
    assert_eq!(r["Error"], "MANDATORY_IE_MISSING: [Account]");
    assert_eq!(
        rpc(&s, "CDRsV1.GetCDRsCount", json!({"OriginIDs": ["h4"]})),
        0
    );
    assert_eq!(
        metric(&s, "accurate_rpc_requests_total{method=\"/v1/cdrs\"}"),
        5
    );
}
