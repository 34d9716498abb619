//! Back-pressure from the CDR database to the sessions, end to end: the
//! real binary on PostgreSQL (a schema of its own) with a CDR queue of 4
//! (`batch-size = 1`) and one session shard. The test locks the CDR table
//! from its own transaction, so inserts wait: the shard waits for room in
//! the writer's queue (counted in `/metrics`), the calls behind it wait
//! for their answer, and nothing grows; once the lock goes, every call is
//! answered, every CDR stored once and the account debited exactly, and
//! each call's charge is one debit in `/metrics`.
#![allow(clippy::unwrap_used)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::{Duration, Instant};

use rust_decimal::Decimal;
use serde_json::{Value, json};

mod serve_common;

use serve_common::{PgSchema, Server, WAIT, temp_data_dir};

const CALLS: usize = 20;

fn plan_dir() -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/tariffplans/sessions")
        .to_str()
        .unwrap()
        .to_owned()
}

/// One POST to `addr`, with no timeout of its own beyond [`WAIT`] x 4
/// (the call may be held while the database is locked).
fn post(addr: &str, path: &str, body: &str) -> String {
    let mut c = TcpStream::connect(addr).unwrap();
    c.set_read_timeout(Some(WAIT * 4)).unwrap();
    let method = if body.is_empty() { "GET" } else { "POST" };
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    c.write_all(req.as_bytes()).unwrap();
    let mut text = String::new();
    c.read_to_string(&mut text).unwrap();
    text.split_once("\r\n\r\n").unwrap().1.to_owned()
}

fn rpc(addr: &str, method: &str, params: Value) -> Value {
    let body = json!({"method": method, "params": [params], "id": 1}).to_string();
    serde_json::from_str(&post(addr, "/jsonrpc", &body)).unwrap()
}

/// The value of one sample line of `/metrics` (0 when absent).
fn metric(addr: &str, line: &str) -> u64 {
    post(addr, "/metrics", "")
        .lines()
        .find_map(|l| l.strip_prefix(line)?.trim().parse().ok())
        .unwrap_or(0)
}

fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let end = Instant::now() + WAIT;
    while !f() {
        assert!(Instant::now() < end, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn credit(addr: &str, account: &str) -> Decimal {
    let a = rpc(
        addr,
        "APIerSv2.GetAccount",
        json!({"Tenant": "cgrates.org", "Account": account}),
    );
    a["result"]["BalanceMap"]["*monetary"]
        .as_array()
        .unwrap_or_else(|| panic!("{a}"))
        .iter()
        .map(|b| Decimal::from_str(&b["Value"].to_string()).unwrap())
        .sum()
}

#[test]
fn a_blocked_cdr_database_makes_the_sessions_wait_and_loses_nothing() {
    let pgs = PgSchema::new("serve_backpressure");
    let (rt, admin, schema) = (&pgs.rt, &pgs.admin, &pgs.schema);
    let url = pgs.url.clone();
    let config = "[api]\nrpc-tcp = \"127.0.0.1:0\"\nrpc-http = \"127.0.0.1:0\"\n\
                  [cdrs]\nbatch-size = 1\nflush-interval-ms = 1\n\
                  [sessions]\nshards = 1\n";
    let data = temp_data_dir();
    let data_arg = data.to_str().unwrap();
    let mut s = Server::start_with(
        &[
            "--tariffplan",
            &plan_dir(),
            "--cdr-db",
            &url,
            "--data-dir",
            data_arg,
        ],
        Some(config),
    );
    let http = s.http.clone();
    // A prepaid session, saved until its CDR is stored: 60 s reserved
    // (0.60 of 1004's 10.00) from its answer, now.
    let answer = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let session = |flag: &str, usage: &str| {
        json!({flag: true, "Tenant": "cgrates.org", "ID": "bs",
               "Event": {"OriginID": "bs", "OriginHost": "10.8.8.8", "RequestType": "*prepaid",
                         "Account": "1004", "Destination": "4930555002",
                         "AnswerTime": answer, "Usage": usage}})
    };
    let r = rpc(
        &http,
        "SessionSv1.InitiateSession",
        session("InitSession", "1m"),
    );
    assert_eq!(r["result"]["MaxUsage"], json!(60_000_000_000u64), "{r}");

    // Inserts wait behind this lock; reads (GetCDRsCount) do not.
    let mut lock = rt.block_on(admin.begin()).unwrap();
    rt.block_on(
        sqlx::query(&format!("LOCK TABLE {schema}.cdrs IN EXCLUSIVE MODE")).execute(&mut *lock),
    )
    .unwrap();

    // The session ends after 10 s (0.10), and 20 postpaid calls of 10 s
    // to 49 at 0.01 a second: 0.10 each. Each request in its own thread:
    // an end is answered only once its CDR is stored, so they all wait.
    let addr = http.clone();
    let end = session("TerminateSession", "10s");
    let mut callers = vec![std::thread::spawn(move || {
        let r = rpc(&addr, "SessionSv1.TerminateSession", end);
        assert_eq!(r["result"], json!("OK"), "{r}");
    })];
    // The terminate first (its reservation is what must be forgotten).
    wait_until("the terminate's CDR submitted", || {
        metric(&http, "accurate_cdr_writer_total{name=\"submitted\"}") >= 1
    });
    for i in 0..CALLS {
        let addr = http.clone();
        callers.push(std::thread::spawn(move || {
            let r = rpc(
                &addr,
                "CDRsV1.ProcessCDR",
                json!({"OriginID": format!("bp{i}"), "OriginHost": "10.8.8.8",
                       "RequestType": "*postpaid", "Tenant": "cgrates.org", "Account": "1001",
                       "Destination": "4930555002", "SetupTime": "2026-01-02T10:00:00Z",
                       "AnswerTime": "2026-01-02T10:00:05Z", "Usage": 10_000_000_000u64}),
            );
            assert_eq!(r["result"], json!("OK"), "{r}");
        }));
    }
    wait_until("the shard to wait for the CDR queue", || {
        metric(&http, "accurate_sessions_total{name=\"cdr_queue_waits\"}") >= 1
    });
    // The writer holds one CDR, its queue four, the shard the sixth: no
    // call is answered while the table is locked.
    std::thread::sleep(Duration::from_millis(300));
    assert!(callers.iter().all(|c| !c.is_finished()));
    assert_eq!(
        metric(&http, "accurate_cdr_writer_total{name=\"submitted\"}"),
        5
    );
    assert_eq!(
        metric(&http, "accurate_cdr_writer_total{name=\"queue_full\"}"),
        1
    );
    let n = rpc(&http, "CDRsV1.GetCDRsCount", json!({}));
    assert_eq!(n["result"], json!(0), "{n}");

    rt.block_on(lock.rollback()).unwrap();
    for c in callers {
        c.join().unwrap();
    }
    wait_until("every CDR stored", || {
        rpc(&http, "CDRsV1.GetCDRsCount", json!({}))["result"] == json!(CALLS + 1)
    });
    assert_eq!(credit(&http, "1001"), Decimal::from_str("8.00").unwrap());
    assert_eq!(credit(&http, "1004"), Decimal::from_str("9.90").unwrap());
    // Each charge is one debit in /metrics (reads are not): the session's
    // reservation and settle, and each call's settle.
    let debits = CALLS as u64 + 2;
    assert_eq!(metric(&http, "accurate_debits_total"), debits);
    assert_eq!(metric(&http, "accurate_debit_errors_total"), 0);
    assert_eq!(
        metric(&http, "accurate_debit_latency_seconds_count"),
        debits
    );
    let (status, lines) = s.signal("-TERM");
    assert!(status.success(), "{lines:?}");
    for want in [
        "serve: cdrs_stored: 21",
        "serve: cdrs_failed: 0",
        "serve: sessions.cdrs_unstored: 0",
        "serve: sessions.store_errors: 0",
    ] {
        assert!(lines.iter().any(|l| l == want), "{want}: {lines:?}");
    }
    // The session was forgotten once its CDR was stored: nothing to
    // restore.
    let s = Server::start_with(&["--cdr-db", &url, "--data-dir", data_arg], Some(config));
    assert!(
        !s.seen
            .iter()
            .any(|l| l.contains("restored") && l.contains("active sessions")),
        "{:?}",
        s.seen
    );
    let n = rpc(&s.http, "SessionSv1.GetActiveSessionsCount", json!({}));
    assert_eq!(n["result"], json!(0), "{n}");
    drop(s);
    let _ = std::fs::remove_dir_all(&data);
    pgs.drop_schema();
}
