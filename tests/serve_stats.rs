//! StatS over `accurate serve`, end to end with the `stats` plan:
//! `StatSv1` events from the API (matching, blocker, MinItems, metric
//! filters, CGRateS's text and float forms, errors), CDRs from
//! `SessionSv1.ProcessCDR` moving the metrics of their queues, the queues
//! on `/metrics`, and a restart keeping the Stored queue only.
#![allow(clippy::unwrap_used, dead_code)]

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::PathBuf;

use serde_json::{Value, json};

mod common;
mod serve_common;

use serve_common::{Server, err, rpc as call, temp_data_dir, wait_until};

fn plan_dir() -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/tariffplans/stats")
        .to_str()
        .unwrap()
        .to_owned()
}

fn strings(s: &Server, id: &str) -> Value {
    call(
        s,
        "StatSv1.GetQueueStringMetrics",
        json!({"Tenant": "cgrates.org", "ID": id}),
    )
}

/// An API event of the `STATS_API` queue (`Source` `api-test`).
fn api_event(id: &str, account: &str, answered: bool, usage: &str, pdd: Option<&str>) -> Value {
    let mut ev = json!({
        "Source": "api-test", "Account": account, "Destination": "4930",
        "AnswerTime": if answered { "2024-05-01T10:00:00Z" } else { "" },
        "Usage": usage, "Score": 5 + id.len(),
    });
    if let Some(p) = pdd {
        ev["PDD"] = json!(p);
    }
    json!({"Tenant": "cgrates.org", "ID": id, "Event": ev})
}

/// The `/metrics` page.
fn metrics_page(s: &Server) -> String {
    let mut c = TcpStream::connect(&s.http).unwrap();
    write!(
        c,
        "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    c.read_to_string(&mut text).unwrap();
    text
}

fn cdr(origin: &str, usage: &str) -> Value {
    json!({"Tenant": "cgrates.org", "ID": format!("ev-{origin}"), "Event": {
        "OriginID": origin, "OriginHost": "10.9.9.9", "RequestType": "*postpaid",
        "Account": "1001", "Destination": "4930555002",
        "AnswerTime": chrono::Utc::now().to_rfc3339(), "Usage": usage,
    }})
}

#[test]
fn api_events_cdrs_metrics_page_and_restart() {
    let data = temp_data_dir();
    let start = |plan: bool| {
        let mut args = vec!["--data-dir".to_owned(), data.to_str().unwrap().to_owned()];
        if plan {
            args.extend(["--tariffplan".to_owned(), plan_dir()]);
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        Server::start(&args)
    };
    let mut s = start(true);
    assert_eq!(call(&s, "StatSv1.Ping", json!({})), json!("Pong"));
    let all = json!(["STATS_1001", "STATS_ALL", "STATS_API"]);
    assert_eq!(call(&s, "StatSv1.GetQueueIDs", json!("cgrates.org")), all);
    assert_eq!(
        call(&s, "StatSv1.GetQueueIDs", json!({"Tenant": "cgrates.org"})),
        all
    );
    assert_eq!(
        call(&s, "StatSv1.GetQueueIDs", json!("other.org")),
        json!([])
    );

    // API events: STATS_API (weight 30, blocker) takes them alone.
    let e1 = api_event("a", "api1", true, "60s", Some("2s"));
    assert_eq!(
        call(&s, "StatSv1.GetStatQueuesForEvent", e1.clone()),
        json!(["STATS_API"])
    );
    assert_eq!(call(&s, "StatSv1.ProcessEvent", e1), json!(["STATS_API"]));
    for e in [
        api_event("bb", "api2", true, "30s", Some("4s")),
        api_event("ccc", "api1", false, "0s", None),
    ] {
        assert_eq!(call(&s, "StatSv1.ProcessEvent", e), json!(["STATS_API"]));
    }
    assert_eq!(
        strings(&s, "STATS_API"),
        json!({"*asr": "66.66667%", "*acd": "30s", "*pdd": "3s",
               "*average#~*req.Score": "7", "*distinct#~*req.Account": "2"})
    );
    let floats = call(
        &s,
        "StatSv1.GetQueueFloatMetrics",
        json!({"Tenant": "cgrates.org", "ID": "STATS_API"}),
    );
    assert_eq!(floats["*acd"], json!(30e9));
    assert_eq!(floats["*asr"], json!(66.66667));
    // Errors as CGRateS words them.
    assert_eq!(
        err(&call(
            &s,
            "StatSv1.ProcessEvent",
            json!({"Event": {"Account": "1001"}})
        )),
        "MANDATORY_IE_MISSING: [ID]"
    );
    assert_eq!(
        err(&call(&s, "StatSv1.ProcessEvent", json!({"ID": "x"}))),
        "MANDATORY_IE_MISSING: [Event]"
    );
    assert_eq!(
        err(&call(
            &s,
            "StatSv1.ProcessEvent",
            json!({"Tenant": "other.org", "ID": "x", "Event": {"Account": "1001"}})
        )),
        "NOT_FOUND"
    );
    assert_eq!(err(&strings(&s, "NOPE")), "NOT_FOUND");
    // A metric that cannot read the event: PARTIALLY_EXECUTED (no Usage).
    let partial = json!({"Tenant": "cgrates.org", "ID": "p",
        "Event": {"Source": "api-test", "Account": "api3", "Score": 7}});
    assert_eq!(
        err(&call(&s, "StatSv1.ProcessEvent", partial)),
        "PARTIALLY_EXECUTED"
    );
    let q = call(
        &s,
        "StatSv1.GetStatQueue",
        json!({"Tenant": "cgrates.org", "ID": "STATS_API"}),
    );
    assert_eq!(q["SQItems"].as_array().unwrap().len(), 4, "{q}");
    assert_eq!(q["SQMetrics"]["*distinct#~*req.Account"], "3");
    // No queue named by StatIDs matches: NOT_FOUND.
    let mut named = api_event("d", "api1", true, "1s", None);
    named["StatIDs"] = json!(["STATS_1001"]);
    assert_eq!(err(&call(&s, "StatSv1.ProcessEvent", named)), "NOT_FOUND");

    // CDRs of 1001: both its queue and STATS_ALL move.
    assert_eq!(strings(&s, "STATS_1001")["*tcc"], "N/A");
    for (origin, usage) in [("c1", "10s"), ("c2", "20s")] {
        let r = call(&s, "SessionSv1.ProcessCDR", cdr(origin, usage));
        assert_eq!(r, json!("OK"));
    }
    wait_until("the CDRs in StatS", || {
        strings(&s, "STATS_1001")["*tcc"] == "0.3"
    });
    assert_eq!(
        strings(&s, "STATS_1001"),
        json!({"*asr": "100%", "*acd": "15s", "*tcd": "30s", "*acc": "0.15",
               "*tcc": "0.3", "*ddc": "1", "*sum#~*req.Usage": "30000000000"})
    );
    assert_eq!(
        strings(&s, "STATS_ALL"),
        json!({"*asr": "100%", "*tcc": "0.3"})
    );

    // /metrics: every queue's available metrics.
    let page = metrics_page(&s);
    for line in [
        r#"accurate_stat_metric{tenant="cgrates.org",queue="STATS_1001",metric="*tcc"} 0.3"#,
        r#"accurate_stat_metric{tenant="cgrates.org",queue="STATS_1001",metric="*acd"} 15000000000"#,
        r#"accurate_stat_metric{tenant="cgrates.org",queue="STATS_API",metric="*asr"} 50"#,
    ] {
        assert!(page.lines().any(|l| l == line), "{line} not in\n{page}");
    }

    // A restart (without --tariffplan: the saved plan): the Stored queue
    // keeps its metrics, the others start again.
    let (status, _) = s.signal("-TERM");
    assert!(status.success());
    drop(s);
    let s = start(false);
    assert_eq!(strings(&s, "STATS_1001")["*tcc"], "0.3");
    assert_eq!(strings(&s, "STATS_1001")["*acd"], "15s");
    assert_eq!(strings(&s, "STATS_API")["*asr"], "N/A");
    assert_eq!(strings(&s, "STATS_ALL")["*tcc"], "N/A");
    let _ = std::fs::remove_dir_all(&data);
}
