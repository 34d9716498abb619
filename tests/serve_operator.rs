//! Issue 11's "done when": an operator's CGRateS tariff folder with every
//! subsystem file (`examples/operator/`) loads into `accurate serve` and
//! behaves as in CGRateS. One authorization answers attributes (numbers
//! normalised, request type per account), max usage, the resource
//! allocation and the routes sorted by their carriers' real costs; a
//! customer's third concurrent call is refused; a call becomes a customer
//! CDR, a carrier CDR and a raw CDR of one CGRID, each charged on its own
//! account; StatS and ThresholdS move; the CDRs leave as CSV files and as
//! HTTP JSON posts. Then a restart keeps the Stored resources and queues.
#![allow(missing_docs, clippy::unwrap_used)]

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, Mutex};

use rust_decimal::Decimal;
use serde_json::{Value, json};

mod serve_common;

use serve_common::{Server, credit, dec, err, metric, rpc, temp_data_dir, wait_until};

fn plan_dir() -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("examples/operator")
        .to_str()
        .unwrap()
        .to_owned()
}

/// A minimal HTTP/1.1 endpoint answering 200 and keeping the JSON bodies.
fn http_sink(listener: TcpListener) -> Arc<Mutex<Vec<Value>>> {
    let bodies = Arc::new(Mutex::new(Vec::new()));
    let kept = Arc::clone(&bodies);
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut c) = conn else { continue };
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            loop {
                let n = c.read(&mut chunk).unwrap_or(0);
                if n == 0 {
                    break;
                }
                buf.extend_from_slice(&chunk[..n]);
                let text = String::from_utf8_lossy(&buf).into_owned();
                let Some(end) = text.find("\r\n\r\n") else {
                    continue;
                };
                let len: usize = text[..end]
                    .lines()
                    .find_map(|l| {
                        let (k, v) = l.split_once(':')?;
                        k.eq_ignore_ascii_case("content-length")
                            .then(|| v.trim().parse().ok())?
                    })
                    .unwrap_or(0);
                if buf.len() >= end + 4 + len {
                    let body = &buf[end + 4..end + 4 + len];
                    kept.lock()
                        .unwrap()
                        .push(serde_json::from_slice(body).unwrap());
                    let _ = write!(
                        c,
                        "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                    );
                    break;
                }
            }
        }
    });
    bodies
}

fn config(dir: &Path, url: &str) -> String {
    format!(
        r#"[api]
rpc-tcp = "127.0.0.1:0"
rpc-http = "127.0.0.1:0"

[[exporters]]
id = "billing_csv"
type = "csv"
path = "{csv}"
interval-secs = 1
filters = ["*string:~*req.RunID:*default"]
fields = [
  {{tag = "OriginID", value = "~*req.OriginID"}},
  {{tag = "RunID", value = "~*req.RunID"}},
  {{tag = "Account", value = "~*req.Account"}},
  {{tag = "Destination", value = "~*req.Destination"}},
  {{tag = "Usage", value = "~*req.Usage{{*duration_seconds}}"}},
  {{tag = "Cost", value = "~*req.Cost", rounding-decimals = 4}},
]

[[exporters]]
id = "billing_http"
type = "http_json"
url = "{url}"
interval-secs = 1
attempts = 3
failed-posts-dir = "{failed}"
"#,
        csv = dir.join("csv").display(),
        failed = dir.join("failed").display(),
    )
}

/// A flattened CGREvent of call `origin` from 1001 to `+4930123`, with
/// `flags` set, answered a second ago. Not a fixed date: a session's debits
/// run from its AnswerTime, so a call answered hours ago is charged for
/// those hours as soon as it is initiated (the test failed the day its
/// fixed date went by).
fn call_event(flags: Value, origin: &str, usage: &str) -> Value {
    use chrono::{SecondsFormat, TimeDelta, Utc};
    let answer = Utc::now() - TimeDelta::seconds(1);
    let setup = answer - TimeDelta::seconds(5);
    let mut a = flags;
    a["Tenant"] = json!("cgrates.org");
    a["ID"] = json!(format!("ev-{origin}"));
    a["Event"] = json!({
        "OriginID": origin, "OriginHost": "10.0.0.1", "Account": "1001",
        "Destination": "+4930123",
        "SetupTime": setup.to_rfc3339_opts(SecondsFormat::Secs, true),
        "AnswerTime": answer.to_rfc3339_opts(SecondsFormat::Secs, true),
        "Usage": usage,
    });
    a
}

fn cost(c: &Value) -> Decimal {
    Decimal::from_str(&c["Cost"].to_string()).unwrap()
}

/// The CSV rows the billing exporter wrote (header lines left out).
fn csv_rows(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir.join("csv")) else {
        return Vec::new();
    };
    let mut rows = Vec::new();
    for e in entries.flatten() {
        let p = e.path();
        if p.extension().and_then(|x| x.to_str()) != Some("csv") {
            continue;
        }
        let text = std::fs::read_to_string(&p).unwrap();
        rows.extend(
            text.lines()
                .filter(|l| !l.starts_with("OriginID,"))
                .map(str::to_owned),
        );
    }
    rows.sort();
    rows
}

#[test]
fn an_operators_folder_behaves_as_in_cgrates() {
    let dir = temp_data_dir();
    std::fs::create_dir_all(&dir).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/cdrs", listener.local_addr().unwrap());
    let posted = http_sink(listener);
    let plan = plan_dir();
    let data = dir.join("data");
    let args = [
        "--tariffplan",
        plan.as_str(),
        "--data-dir",
        data.to_str().unwrap(),
    ];
    let cfg = config(&dir, &url);
    let mut s = Server::start_with(&args, Some(&cfg));
    assert_eq!(credit(&s, "1001"), dec("10"));

    // Kamailio's simpleauth: the password from the `simpleauth` context.
    let r = rpc(
        &s,
        "AttributeSv1.ProcessEvent",
        json!({"Context": "simpleauth", "Tenant": "cgrates.org", "ID": "auth",
               "Event": {"Account": "1001"}}),
    );
    assert_eq!(r["CGREvent"]["Event"]["Password"], "s3cret", "{r}");

    // One authorization answers everything a switch needs.
    let flags = json!({"GetAttributes": true, "GetMaxUsage": true,
                       "AuthorizeResources": true, "GetRoutes": true});
    let r = rpc(
        &s,
        "SessionSv1.AuthorizeEvent",
        call_event(flags, "c1", "60s"),
    );
    assert_eq!(
        r["Attributes"]["MatchedProfiles"],
        json!(["ATTR_CUSTOMERS"]),
        "{r}"
    );
    let ev = &r["Attributes"]["CGREvent"]["Event"];
    assert_eq!(
        (ev["Destination"].as_str(), ev["RequestType"].as_str()),
        (Some("4930123"), Some("*prepaid"))
    );
    assert_eq!(r["MaxUsage"], json!(60_000_000_000_u64), "{r}");
    assert_eq!(r["ResourceAllocation"], "CALL_ALLOWED");
    let routes: Vec<(&str, f64)> = r["Routes"][0]["Routes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| {
            (
                x["RouteID"].as_str().unwrap(),
                x["SortingData"]["Cost"].as_f64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        routes,
        [("carrier_b", 0.18), ("carrier_a", 0.3), ("carrier_c", 0.42)],
        "least cost first, by each carrier's rating plan"
    );

    // Two calls at once are allowed, the third is refused.
    let init = json!({"GetAttributes": true, "InitSession": true, "AllocateResources": true});
    for c in ["c1", "c2"] {
        let r = rpc(
            &s,
            "SessionSv1.InitiateSession",
            call_event(init.clone(), c, "60s"),
        );
        assert_eq!(r["ResourceAllocation"], "CALL_ALLOWED", "{r}");
    }
    let r = rpc(
        &s,
        "SessionSv1.InitiateSession",
        call_event(init, "c3", "60s"),
    );
    assert_eq!(err(&r), "RESOURCES_ERROR:RESOURCE_UNAVAILABLE", "{r}");
    let r = rpc(
        &s,
        "ResourceSv1.GetResource",
        json!({"Tenant": "cgrates.org", "ID": "RES_CALLS"}),
    );
    assert_eq!(r["Usages"].as_object().unwrap().len(), 2, "{r}");

    // Each call ends as three CDRs of one CGRID: the customer pays the
    // retail price, carrier B's cost goes on its account, raw is unrated.
    let end = json!({"GetAttributes": true, "TerminateSession": true, "ReleaseResources": true});
    for (c, usage) in [("c1", "60s"), ("c2", "30s")] {
        assert_eq!(
            rpc(
                &s,
                "SessionSv1.TerminateSession",
                call_event(end.clone(), c, usage)
            ),
            json!("OK")
        );
    }
    let mut cdrs = rpc(&s, "CDRsV1.GetCDRs", json!({"OriginIDs": ["c1"]}))
        .as_array()
        .unwrap()
        .clone();
    cdrs.sort_by_key(|c| c["RunID"].as_str().unwrap().to_owned());
    let runs: Vec<(&str, &str, &str, Decimal)> = cdrs
        .iter()
        .map(|c| {
            (
                c["RunID"].as_str().unwrap(),
                c["Account"].as_str().unwrap(),
                c["RequestType"].as_str().unwrap(),
                cost(c),
            )
        })
        .collect();
    assert_eq!(
        runs,
        [
            ("*default", "1001", "*prepaid", dec("0.6")),
            ("*raw", "1001", "*none", dec("-1")),
            ("carrier", "carrier_b", "*postpaid", dec("0.18")),
        ]
    );
    assert!(cdrs.iter().all(|c| c["CGRID"] == cdrs[0]["CGRID"]));
    assert!(cdrs.iter().all(|c| c["Destination"] == "4930123"));
    assert_eq!(credit(&s, "1001"), dec("9.1"), "0.60 + 0.30");
    assert_eq!(credit(&s, "carrier_b"), dec("-0.27"), "0.18 + 0.09");

    // StatS saw the customers' runs; its update reached ThresholdS.
    let m = rpc(
        &s,
        "StatSv1.GetQueueStringMetrics",
        json!({"Tenant": "cgrates.org", "ID": "STATS_CUSTOMERS"}),
    );
    assert_eq!(
        m,
        json!({"*asr": "100%", "*acd": "45s", "*tcc": "0.9", "*tcd": "1m30s"})
    );
    let t = rpc(
        &s,
        "ThresholdSv1.GetThreshold",
        json!({"Tenant": "cgrates.org", "ID": "THD_SPEND"}),
    );
    assert_eq!(t["Hits"], json!(2), "{t}");
    assert_eq!(
        metric(
            &s,
            "accurate_stat_metric{tenant=\"cgrates.org\",queue=\"STATS_CUSTOMERS\",metric=\"*asr\"}"
        ),
        100
    );

    // Exported once each: the customer runs to CSV, every run over HTTP.
    wait_until("the CSV rows", || csv_rows(&dir).len() == 2);
    assert_eq!(
        csv_rows(&dir),
        [
            "c1,*default,1001,4930123,60,0.6000",
            "c2,*default,1001,4930123,30,0.3000"
        ]
    );
    wait_until("six HTTP posts", || posted.lock().unwrap().len() == 6);

    // A restart keeps the Stored resource (empty again) and queue; a third
    // call brings the threshold to its MinHits.
    let (status, lines) = s.signal("-TERM");
    assert!(status.success(), "{lines:?}");
    let s = Server::start_with(&args, Some(&cfg));
    let m = rpc(
        &s,
        "StatSv1.GetQueueStringMetrics",
        json!({"Tenant": "cgrates.org", "ID": "STATS_CUSTOMERS"}),
    );
    assert_eq!(m["*tcc"], "0.9", "{m}");
    let nested = json!({"Flags": ["*chargers"], "CGREvent": call_event(json!({}), "c4", "10s")});
    assert_eq!(
        err(&rpc(&s, "CDRsV1.ProcessEvent", nested)),
        "MANDATORY_IE_MISSING: [CGREvent]",
        "v0.10 embeds the CGREvent"
    );
    let r = rpc(
        &s,
        "CDRsV1.ProcessEvent",
        call_event(json!({"Flags": ["*attributes", "*chargers"]}), "c4", "10s"),
    );
    assert_eq!(r, json!("OK"), "{r}");
    wait_until("the third call in the queue", || {
        rpc(
            &s,
            "ThresholdSv1.GetThreshold",
            json!({"Tenant": "cgrates.org", "ID": "THD_SPEND"}),
        )["Hits"]
            == json!(3)
    });
    let c4 = rpc(&s, "CDRsV1.GetCDRs", json!({"OriginIDs": ["c4"]}));
    assert_eq!(c4.as_array().map(Vec::len), Some(3), "{c4}");
    wait_until("the HTTP posts of c4", || posted.lock().unwrap().len() == 9);
    assert_eq!(posted.lock().unwrap().len(), 9, "nothing exported twice");
}
