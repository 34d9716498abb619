//! Passive calls through the CGRateS subsystems
//! (`tests/data/tariffplans/passive_subsystems/`): a call captured on the
//! wire (HEP of a real capture) becomes its customer, supplier and raw
//! CDRs with the right costs, moves the stat queues, and, as a passive
//! call cannot be refused, goes over its resource limit counted and
//! flagged. On SQLite and on PostgreSQL.
#![allow(missing_docs, clippy::unwrap_used, clippy::cast_precision_loss)]

use std::path::PathBuf;
use std::str::FromStr;
use std::time::SystemTime;

use rust_decimal::Decimal;
use serde_json::{Value, json};

mod common;
mod serve_common;

use serve_common::{
    PgSchema, Server, credit, dec, hep_udp_addr, metric, restamp_hep, rpc, send_udp, wait_until,
};

const CONFIG: &str = "[api]\nrpc-tcp = \"127.0.0.1:0\"\nrpc-http = \"127.0.0.1:0\"\n\
                      [mapping]\nrequest-type = \"*postpaid\"\n";

/// The call's OriginID in the capture.
const ORIGIN: &str = "1-13708@127.0.0.1";

fn plan_dir() -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/tariffplans/passive_subsystems")
        .to_str()
        .unwrap()
        .to_owned()
}

fn cost(c: &Value) -> Decimal {
    Decimal::from_str(&c["Cost"].to_string()).unwrap()
}

fn metrics(s: &Server, id: &str) -> Value {
    rpc(
        s,
        "StatSv1.GetQueueStringMetrics",
        json!({"Tenant": "cgrates.org", "ID": id}),
    )
}

fn scenario(extra: &[&str]) {
    let plan = plan_dir();
    let mut args = vec!["--hep", "udp:127.0.0.1:0", "--tariffplan", plan.as_str()];
    args.extend_from_slice(extra);
    let s = Server::start_with(&args, Some(CONFIG));
    let hep = common::wire_hep(&common::root().join("captures/early-media-183.pcap"));
    let hep: Vec<Vec<u8>> = hep.into_iter().map(|h| h.bytes).collect();
    send_udp(&hep_udp_addr(&s), &restamp_hep(&hep, SystemTime::now()));

    let mut got = Vec::new();
    wait_until("the call's three CDRs", || {
        got = rpc(&s, "CDRsV1.GetCDRs", json!({"OriginIDs": [ORIGIN]}))
            .as_array()
            .cloned()
            .unwrap_or_default();
        got.len() == 3
    });
    got.sort_by_key(|c| c["RunID"].as_str().unwrap().to_owned());
    let runs: Vec<(&str, &str)> = got
        .iter()
        .map(|c| (c["RunID"].as_str().unwrap(), c["Account"].as_str().unwrap()))
        .collect();
    assert_eq!(
        runs,
        [
            ("*default", "4971112345"),
            ("*raw", "4971112345"),
            ("supplier", "supplier1")
        ]
    );
    let customer = cost(&got[0]);
    assert!(customer > Decimal::ZERO, "{got:?}");
    assert_eq!(cost(&got[1]), dec("-1"));
    assert_eq!(
        cost(&got[2]),
        customer / dec("2"),
        "the supplier's half rate"
    );
    wait_until("the debits", || {
        credit(&s, "4971112345") == dec("10") - customer
            && credit(&s, "supplier1") == dec("10") - customer / dec("2")
    });

    // Over the limit: allocated anyway, counted, and every run flagged.
    for c in &got {
        assert_eq!(c["ExtraFields"]["ResourceLimitExceeded"], "true", "{c}");
    }
    assert_eq!(
        metric(
            &s,
            "accurate_sessions_total{name=\"resource_limit_exceeded\"}"
        ),
        1
    );
    assert_eq!(metric(&s, "accurate_resources_passive_over_limit_total"), 1);

    // Every stored CDR fed StatS: three runs in one queue, the customer's
    // in the other; the usage is the capture's.
    let usage_ns = got[0]["Usage"].as_i64().unwrap();
    assert!(usage_ns > 0, "{got:?}");
    wait_until("the stat queues", || {
        metrics(&s, "STATS_ALL")["*ddc"] == json!("1")
            && metrics(&s, "STATS_CUSTOMER")["*tcc"] != json!("N/A")
    });
    let all = metrics(&s, "STATS_ALL");
    assert_eq!(all["*asr"], "100%", "{all}");
    // The raw run's Cost -1 (not rated) adds nothing, as in CGRateS.
    let tcc_all = customer + customer / dec("2");
    assert_eq!(dec(all["*tcc"].as_str().unwrap()), tcc_all, "{all}");
    let mine = metrics(&s, "STATS_CUSTOMER");
    assert_eq!(dec(mine["*tcc"].as_str().unwrap()), customer, "{mine}");
    let floats = rpc(
        &s,
        "StatSv1.GetQueueFloatMetrics",
        json!({"Tenant": "cgrates.org", "ID": "STATS_CUSTOMER"}),
    );
    assert_eq!(floats["*acd"].as_f64(), Some(usage_ns as f64), "{floats}");
}

#[test]
fn a_captured_call_through_the_subsystems_on_sqlite() {
    scenario(&[]);
}

#[test]
fn a_captured_call_through_the_subsystems_on_postgres() {
    let pgs = PgSchema::new("serve_passive_subsystems");
    let url = pgs.url.clone();
    scenario(&["--cdr-db", &url]);
    pgs.drop_schema();
}
