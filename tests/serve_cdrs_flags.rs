//! `CDRsV1.ProcessEvent`'s flags (`tests/data/tariffplans/cdrs_flags/`:
//! the chargers plan — customer, supplier and raw runs — with an
//! AttributeS profile of the `*cdrs` context, a threshold and a stat
//! queue of 1001's customer runs): `*attributes`, `*chargers:false`,
//! `*rerate` and `*rals:false` over every run, `*store:false`,
//! `*thresholds`, `*stats` and `*stats:false`; `CDRsV1.ProcessExternalCDR`.
//! On SQLite and PostgreSQL.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::str::FromStr;

use rust_decimal::Decimal;
use serde_json::{Value, json};

mod serve_common;

use serve_common::{PgSchema, Server, credit, dec, err, rpc as call, wait_until};

fn plan_dir() -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/tariffplans/cdrs_flags")
        .to_str()
        .unwrap()
        .to_owned()
}

/// The stored CDRs of `origin`, by RunID, once `want` are there.
fn cdrs(s: &Server, origin: &str, want: usize) -> Vec<Value> {
    let mut got = Vec::new();
    wait_until("the stored CDRs", || {
        let r = call(s, "CDRsV1.GetCDRs", json!({"OriginIDs": [origin]}));
        got = r.as_array().cloned().unwrap_or_default();
        got.len() >= want
    });
    assert_eq!(got.len(), want, "{got:?}");
    got.sort_by_key(|c| c["RunID"].as_str().unwrap().to_owned());
    got
}

fn none_stored(s: &Server, origin: &str) {
    let r = call(s, "CDRsV1.GetCDRs", json!({"OriginIDs": [origin]}));
    assert_eq!(err(&r), "SERVER_ERROR: NOT_FOUND", "{r}");
}

fn cost(c: &Value) -> Decimal {
    Decimal::from_str(&c["Cost"].to_string()).unwrap()
}

/// An answered call of `account` to Germany, `secs` long, with `flags`.
fn ev(flags: Value, origin: &str, account: &str, secs: u64) -> Value {
    json!({"Flags": flags, "Tenant": "cgrates.org", "ID": format!("ev-{origin}"),
        "Event": {"OriginID": origin, "OriginHost": "10.0.0.1", "Account": account,
            "Destination": "4930123", "RequestType": "*postpaid",
            "AnswerTime": "2026-01-07T17:00:00Z", "Usage": format!("{secs}s")}})
}

fn process(s: &Server, args: Value) -> Value {
    call(s, "CDRsV1.ProcessEvent", args)
}

/// ST_1001's total duration, in seconds.
fn tcd(s: &Server) -> f64 {
    let m = call(
        s,
        "StatSv1.GetQueueFloatMetrics",
        json!({"Tenant": "cgrates.org", "ID": "ST_1001"}),
    );
    m["*tcd"].as_f64().unwrap_or(0.0) / 1e9
}

fn hits(s: &Server) -> Value {
    call(
        s,
        "ThresholdSv1.GetThreshold",
        json!({"Tenant": "cgrates.org", "ID": "THD_1001"}),
    )["Hits"]
        .clone()
}

fn scenario(s: &Server) {
    // Default flags: the three runs, StatS fed by the stored CDRs, no
    // ThresholdS.
    assert_eq!(process(s, ev(json!(["*rals"]), "c1", "1001", 10)), "OK");
    let c = cdrs(s, "c1", 3);
    assert_eq!(
        c.iter().map(cost).collect::<Vec<_>>(),
        [dec("0.10"), dec("-1"), dec("0.05")]
    );
    assert_eq!(credit(s, "1001"), dec("9.90"));
    assert_eq!(credit(s, "supplier1"), dec("9.95"));
    wait_until("StatS has c1", || tcd(s) == 10.0);

    // *thresholds: each run to ThresholdS (the customer's run hits).
    assert_eq!(
        process(s, ev(json!(["*rals", "*thresholds"]), "c2", "1001", 20)),
        "OK"
    );
    cdrs(s, "c2", 3);
    assert_eq!(hits(s), json!(1));
    wait_until("StatS has c2", || tcd(s) == 30.0);

    // *stats:false: stored and charged, kept out of StatS.
    assert_eq!(
        process(s, ev(json!(["*stats:false"]), "c3", "1001", 30)),
        "OK"
    );
    cdrs(s, "c3", 3);
    assert_eq!(credit(s, "1001"), dec("9.40"));

    // *attributes: AttributeS (*cdrs) before the chargers: alias1001's
    // call is 1001's, its supplier run supplier1's.
    assert_eq!(
        process(s, ev(json!(["*attributes"]), "c4", "alias1001", 10)),
        "OK"
    );
    let c = cdrs(s, "c4", 3);
    assert_eq!(c[0]["Account"], "1001", "{c:?}");
    assert_eq!(cost(&c[0]), dec("0.10"));
    assert_eq!(credit(s, "1001"), dec("9.30"));
    assert_eq!(credit(s, "supplier1"), dec("9.65"));

    // *chargers:false: the event as given, its one *default run.
    assert_eq!(
        process(s, ev(json!(["*chargers:false"]), "c5", "1001", 10)),
        "OK"
    );
    let c = cdrs(s, "c5", 1);
    assert_eq!(c[0]["RunID"], "*default");
    assert_eq!(credit(s, "1001"), dec("9.20"));
    assert_eq!(credit(s, "supplier1"), dec("9.65"));
    // ... with its own RunID and *rals:false: stored as it came.
    let mut a = ev(json!(["*chargers:false", "*rals:false"]), "c6", "1001", 10);
    a["Event"]["RunID"] = json!("custom");
    a["Event"]["Cost"] = json!(1.5);
    assert_eq!(process(s, a), "OK");
    let c = cdrs(s, "c6", 1);
    assert_eq!(c[0]["RunID"], "custom", "{c:?}");
    assert_eq!(cost(&c[0]), dec("1.5"));
    assert_eq!(credit(s, "1001"), dec("9.20"));

    // *rerate: every run of c1 rated again at 20s, the difference paid.
    assert_eq!(process(s, ev(json!(["*rerate"]), "c1", "1001", 20)), "OK");
    let c = cdrs(s, "c1", 3);
    assert_eq!(
        c.iter().map(cost).collect::<Vec<_>>(),
        [dec("0.20"), dec("-1"), dec("0.10")]
    );
    assert_eq!(credit(s, "1001"), dec("9.10"));
    assert_eq!(credit(s, "supplier1"), dec("9.60"));

    // *rals:false over the charger runs: each stored with the given cost,
    // nothing charged.
    let mut a = ev(json!(["*rals:false"]), "c7", "1001", 10);
    a["Event"]["Cost"] = json!(2);
    assert_eq!(process(s, a), "OK");
    let c = cdrs(s, "c7", 3);
    assert!(c.iter().all(|c| cost(c) == dec("2")), "{c:?}");
    assert_eq!(credit(s, "1001"), dec("9.10"));
    assert_eq!(credit(s, "supplier1"), dec("9.60"));

    // *store:false needs *rals:false; then only StatS and ThresholdS.
    let r = process(s, ev(json!(["*store:false"]), "c8", "1001", 20));
    assert!(err(&r).contains("*store:false"), "{r}");
    let flags = json!(["*store:false", "*rals:false", "*stats", "*thresholds"]);
    assert_eq!(process(s, ev(flags, "c8", "1001", 20)), "OK");
    none_stored(s, "c8");
    assert_eq!(hits(s), json!(2));
    assert_eq!(credit(s, "1001"), dec("9.10"));
    // StatS: c1 10 + c2 20 (c3 kept out) + c4 10 + c5 10 + c6 10 + c7 10
    // (the rerate stores no new CDR) + c8 20.
    wait_until("StatS", || tcd(s) == 90.0);
    assert_eq!(tcd(s), 90.0);

    // CDRsV1.ProcessExternalCDR (v0.10): the CDR with its times as text,
    // split into its runs as CDRsV1.ProcessCDR.
    let x = json!({"CGRID": "", "RunID": "", "OriginHost": "10.0.0.1", "Source": "ext",
        "OriginID": "c9", "ToR": "*voice", "RequestType": "*postpaid",
        "Tenant": "cgrates.org", "Category": "call", "Account": "1001", "Subject": "1001",
        "Destination": "4930123", "SetupTime": "2026-01-07T16:59:58Z",
        "AnswerTime": "2026-01-07T17:00:00Z", "Usage": "10s", "ExtraFields": {"Tag": "ext"},
        "CostSource": "", "Cost": -1, "CostDetails": "", "ExtraInfo": "", "PreRated": false});
    assert_eq!(call(s, "CDRsV1.ProcessExternalCDR", x), "OK");
    let c = cdrs(s, "c9", 3);
    assert_eq!(cost(&c[0]), dec("0.10"));
    assert_eq!(c[0]["ExtraFields"]["Tag"], "ext", "{c:?}");
    assert_eq!(c[0]["Source"], "ext", "{c:?}");
    assert_eq!(credit(s, "1001"), dec("9.00"));
}

#[test]
fn cdrs_process_event_flags_on_sqlite() {
    let s = Server::start(&["--tariffplan", &plan_dir()]);
    scenario(&s);
}

#[test]
fn cdrs_process_event_flags_on_postgres() {
    let pgs = PgSchema::new("serve_cdrs_flags");
    let url = pgs.url.clone();
    let s = Server::start(&["--tariffplan", &plan_dir(), "--cdr-db", &url]);
    scenario(&s);
    drop(s);
    pgs.drop_schema();
}
