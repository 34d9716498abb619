//! `[[exporters]]` over `accurate serve`, end to end: a CSV exporter
//! (filtered, rotated every 2 CDRs) and a fixed-width one write each
//! stored CDR once, and not again after a restart, on SQLite and on
//! PostgreSQL; HTTP JSON exporters against a small HTTP/1.1 server of the
//! test's own: one that fails the first attempts then accepts, one whose
//! server is down (the post is parked in the failed-posts folder, then
//! replayed once the server is up). Calls under the `export` plan: 0.01 a
//! second to `49`.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

mod serve_common;

use serve_common::{PgSchema, Server, metric, rpc, temp_data_dir, wait_until};

const S: u64 = 1_000_000_000;

fn plan_dir() -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/tariffplans/export")
        .to_str()
        .unwrap()
        .to_owned()
}

fn process_cdr(s: &Server, origin: &str, account: &str, secs: u64) {
    let r = rpc(
        s,
        "CDRsV1.ProcessCDR",
        json!({"OriginID": origin, "OriginHost": "10.7.7.7", "RequestType": "*postpaid",
               "Tenant": "cgrates.org", "Account": account, "Destination": "4930555002",
               "SetupTime": "2026-01-02T10:00:00Z", "AnswerTime": "2026-01-02T10:00:05Z",
               "Usage": secs * S}),
    );
    assert_eq!(r, json!("OK"), "{origin}");
}

const API: &str = "[api]\nrpc-tcp = \"127.0.0.1:0\"\nrpc-http = \"127.0.0.1:0\"\n";

fn files_config(dir: &Path) -> String {
    format!(
        r#"{API}
[[exporters]]
id = "csv1"
type = "csv"
path = "{csv}"
filters = ["FLTR_NOT_1004"]
rotate-count = 2
interval-secs = 1
fields = [
  {{tag = "CGRID", value = "~*req.CGRID"}},
  {{tag = "OriginID", path = "OriginID"}},
  {{tag = "Account", value = "~*req.Account"}},
  {{tag = "AnswerTime", value = "~*req.AnswerTime", layout = "2006-01-02 15:04:05"}},
  {{tag = "Usage", value = "~*req.Usage{{*duration_seconds}}"}},
  {{tag = "Cost", value = "~*req.Cost", rounding-decimals = 4}},
]

[[exporters]]
id = "fw1"
type = "fixed_width"
path = "{fwv}"
interval-secs = 1
fields = [
  {{value = "~*req.OriginID", width = 4}},
  {{value = "~*req.Account", width = 6}},
  {{value = "~*req.Destination", width = 6, strip = "left"}},
  {{value = "~*req.AnswerTime", layout = "20060102150405", width = 14}},
  {{value = "~*req.Usage{{*duration_seconds}}", width = 5, padding = "left"}},
  {{value = "~*req.Cost", width = 8, padding = "zeroleft", rounding-decimals = 2}},
  {{type = "*filler", width = 2}},
  {{type = "*constant", value = "X"}},
]
"#,
        csv = dir.join("csv").display(),
        fwv = dir.join("fwv").display(),
    )
}

/// Completed files (name -> lines) of a folder with extension `ext`.
fn files(dir: &Path, ext: &str) -> BTreeMap<String, Vec<String>> {
    let mut out = BTreeMap::new();
    let Ok(list) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in list.flatten() {
        let name = e.file_name().into_string().unwrap();
        if name.ends_with(&format!(".{ext}")) {
            let text = std::fs::read_to_string(e.path()).unwrap();
            out.insert(name, text.lines().map(str::to_owned).collect());
        }
    }
    out
}

fn tmp_files(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .map(|l| {
            l.flatten()
                .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
                .count()
        })
        .unwrap_or(0)
}

fn fw_lines(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = files(&dir.join("fwv"), "fwv")
        .into_values()
        .flatten()
        .collect();
    v.sort();
    v
}

/// The CSV data rows of the exporter's files (the leftover test file
/// aside): (OriginID, whole row).
fn csv_rows(dir: &Path) -> Vec<(String, String)> {
    let mut rows = Vec::new();
    for (name, lines) in files(&dir.join("csv"), "csv") {
        if name == LEFT {
            continue;
        }
        assert_eq!(
            lines[0], "CGRID,OriginID,Account,AnswerTime,Usage,Cost",
            "{name}"
        );
        for l in &lines[1..] {
            rows.push((l.split(',').nth(1).unwrap().to_owned(), l.clone()));
        }
    }
    rows.sort();
    rows
}

/// A file of csv1 left by a crash.
const LEFT: &str = "csv1_20260102030405000000000_7.csv";

fn fw_line(origin: &str, usage: &str, cost: &str) -> String {
    format!("{origin:<4}1001  55500220260102100005{usage:>5}{cost}  X")
}

fn files_scenario(db_args: &[&str]) {
    let dir = temp_data_dir();
    std::fs::create_dir_all(&dir).unwrap();
    let data = dir.join("data");
    let config = files_config(&dir);
    let plan = plan_dir();
    let mut args = vec!["--tariffplan", &plan, "--data-dir", data.to_str().unwrap()];
    args.extend_from_slice(db_args);
    let mut s = Server::start_with(&args, Some(&config));
    process_cdr(&s, "c1", "1001", 60);
    process_cdr(&s, "c2", "1004", 30);
    process_cdr(&s, "c3", "1001", 90);
    // CSV: c2 filtered out; c1 and c3 fill a file (rotate-count 2).
    wait_until("the CSV file", || csv_rows(&dir).len() == 2);
    wait_until("three fixed-width lines", || fw_lines(&dir).len() == 3);
    let rows = csv_rows(&dir);
    let cgrid = rpc(&s, "CDRsV1.GetCDRs", json!({"OriginIDs": ["c1"]}))[0]["CGRID"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        rows[0].1,
        format!("{cgrid},c1,1001,2026-01-02 10:00:05,60,0.6000")
    );
    assert_eq!(rows[1].0, "c3");
    assert!(rows[1].1.ends_with(",90,0.9000"), "{rows:?}");
    assert_eq!(tmp_files(&dir.join("csv")), 0, "rotated at 2 rows");
    let fw = fw_lines(&dir);
    assert_eq!(fw[0], fw_line("c1", "60", "00000.60"));
    assert_eq!(fw[1].get(..10), Some("c2  1004  "), "no filter: {fw:?}");
    assert_eq!(fw[2], fw_line("c3", "90", "00000.90"));
    let m = |name: &str| {
        metric(
            &s,
            &format!("accurate_export_total{{id=\"csv1\",name=\"{name}\"}}"),
        )
    };
    assert_eq!((m("exported"), m("filtered")), (2, 1));

    // A file of csv1 left half-written by a crash is completed at start.
    let (status, lines) = s.signal("-TERM");
    assert!(status.success(), "{lines:?}");
    std::fs::write(dir.join(format!("csv/{LEFT}.tmp")), "x\n").unwrap();
    let s = Server::start_with(&args, Some(&config));
    assert!(dir.join("csv").join(LEFT).exists());
    process_cdr(&s, "c4", "1001", 30);
    wait_until("c4's fixed-width line", || fw_lines(&dir).len() == 4);
    // c4 waits in csv1's open file (one row of two) until the stop.
    wait_until("csv1's open file", || tmp_files(&dir.join("csv")) == 1);
    let mut s = s;
    let (status, lines) = s.signal("-TERM");
    assert!(status.success(), "{lines:?}");
    assert_eq!(tmp_files(&dir.join("csv")), 0, "completed at the stop");
    let rows = csv_rows(&dir);
    let origins: Vec<&str> = rows.iter().map(|r| r.0.as_str()).collect();
    assert_eq!(origins, ["c1", "c3", "c4"], "each once: {rows:?}");
    let fw = fw_lines(&dir);
    assert_eq!(fw.len(), 4, "each once: {fw:?}");
    assert_eq!(fw[3], fw_line("c4", "30", "00000.30"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn files_export_each_cdr_once_on_sqlite() {
    files_scenario(&[]);
}

#[test]
fn files_export_each_cdr_once_on_postgres() {
    let pgs = PgSchema::new("serve_export");
    let url = pgs.url.clone();
    files_scenario(&["--cdr-db", &url]);
    pgs.drop_schema();
}

/// A minimal HTTP/1.1 server: answers 500 to the first `fail_first`
/// requests, then 200, and keeps the bodies it accepted.
fn http_server(listener: TcpListener, fail_first: usize) -> Arc<Mutex<Vec<Value>>> {
    let bodies = Arc::new(Mutex::new(Vec::new()));
    let kept = Arc::clone(&bodies);
    std::thread::spawn(move || {
        let mut seen = 0;
        for conn in listener.incoming() {
            let Ok(mut c) = conn else { continue };
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            let body = loop {
                let n = c.read(&mut chunk).unwrap_or(0);
                if n == 0 {
                    break None;
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
                    break Some(buf[end + 4..end + 4 + len].to_vec());
                }
            };
            let Some(body) = body else { continue };
            seen += 1;
            let status = if seen <= fail_first {
                "500 Internal Server Error"
            } else {
                kept.lock()
                    .unwrap()
                    .push(serde_json::from_slice(&body).unwrap());
                "200 OK"
            };
            let _ = write!(
                c,
                "HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
        }
    });
    bodies
}

#[test]
fn http_json_retries_then_parks_and_replays() {
    let dir = temp_data_dir();
    let failed = dir.join("failed");
    let up = TcpListener::bind("127.0.0.1:0").unwrap();
    let up_port = up.local_addr().unwrap().port();
    let accepted = http_server(up, 2);
    // A port nobody listens on (until later).
    let down_port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = format!(
        r#"{API}
[[exporters]]
id = "h1"
type = "http_json"
url = "http://127.0.0.1:{up_port}/cdrs"
attempts = 3
interval-secs = 1

[[exporters]]
id = "h2"
type = "http_json"
url = "http://127.0.0.1:{down_port}/cdrs"
attempts = 2
interval-secs = 1
failed-posts-dir = "{failed}"
failed-posts-interval-secs = 1
fields = [
  {{tag = "Account", value = "~*req.Account"}},
  {{tag = "Cost", value = "~*req.Cost", rounding-decimals = 2}},
]
"#,
        failed = failed.display()
    );
    let plan = plan_dir();
    let s = Server::start_with(&["--tariffplan", &plan], Some(&config));
    process_cdr(&s, "c1", "1001", 60);
    let m = |id: &str, name: &str| {
        metric(
            &s,
            &format!("accurate_export_total{{id=\"{id}\",name=\"{name}\"}}"),
        )
    };
    // h1: two 500s, then delivered on the third attempt.
    wait_until("h1's POST", || accepted.lock().unwrap().len() == 1);
    let body = accepted.lock().unwrap()[0].clone();
    assert_eq!(body["OriginID"], "c1", "{body}");
    assert_eq!(body["Account"], "1001");
    assert_eq!(body["Cost"], json!(0.6), "{body}");
    assert_eq!(m("h1", "post_errors"), 2);
    assert_eq!(m("h1", "exported"), 1);
    // h2: its server is down: parked after two attempts.
    let parked = || {
        std::fs::read_dir(&failed)
            .map(|l| {
                l.flatten()
                    .filter(|e| e.file_name().to_string_lossy().ends_with(".json"))
                    .count()
            })
            .unwrap_or(0)
    };
    wait_until("h2's parked post", || parked() == 1);
    assert_eq!(m("h2", "parked"), 1);
    assert_eq!(m("h2", "post_errors"), 2);
    // The server comes up: the parked post is replayed, then removed.
    let replayed = http_server(TcpListener::bind(("127.0.0.1", down_port)).unwrap(), 0);
    wait_until("h2's replay", || replayed.lock().unwrap().len() == 1);
    assert_eq!(
        replayed.lock().unwrap()[0],
        json!({"Account": "1001", "Cost": "0.60"})
    );
    wait_until("the parked file removed", || parked() == 0);
    assert_eq!(m("h2", "replayed"), 1);
    // Exported once: later polls post nothing more.
    std::thread::sleep(std::time::Duration::from_millis(2_500));
    assert_eq!(accepted.lock().unwrap().len(), 1);
    assert_eq!(replayed.lock().unwrap().len(), 1);
    drop(s);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Bad `[[exporters]]` / `[[importers]]` tables are configuration errors
/// (exit 78) naming what is wrong, found when the file is read.
#[test]
fn bad_tables_are_config_errors() {
    let dir = temp_data_dir();
    std::fs::create_dir_all(&dir).unwrap();
    let cases = [
        (
            "[[exporters]]\nid = \"a\"\ntype = \"csv\"\n",
            "path (a folder) is required",
        ),
        (
            "[[exporters]]\nid = \"a\"\ntype = \"http_json\"\n",
            "url is required",
        ),
        (
            "[[exporters]]\nid = \"a\"\ntype = \"csv\"\npath = \"x\"\n\
             fields = [{value = \"~*req.Cost\", type = \"*nope\"}]\n",
            "unknown type \"*nope\"",
        ),
        (
            "[[exporters]]\nid = \"a\"\ntype = \"csv\"\npath = \"x\"\n\
             [[exporters]]\nid = \"a\"\ntype = \"csv\"\npath = \"y\"\n",
            "used twice",
        ),
        (
            "[[exporters]]\nid = \"a\"\ntype = \"xml\"\n",
            "unknown variant",
        ),
        (
            "[[importers]]\nid = \"i\"\ntype = \"csv\"\ndir = \"a\"\nprocessed-dir = \"b\"\n\
             field-sep = \";;\"\nfields = []\n",
            "field-sep",
        ),
    ];
    for (i, (text, want)) in cases.iter().enumerate() {
        let f = dir.join(format!("bad{i}.toml"));
        std::fs::write(&f, text).unwrap();
        let out = std::process::Command::new(serve_common::ACCURATE)
            .args(["config", "check", f.to_str().unwrap()])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(78), "{text}: {stderr}");
        assert!(stderr.contains(want), "{text}: {stderr}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
