//! `accurate serve` end to end: the real binary on port 0, spoken to over
//! JSON-RPC on TCP (Go's net/rpc/jsonrpc stream) and HTTP (`POST
//! /jsonrpc`), and through `accurate console`.
#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::net::Shutdown;
use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::Duration;

use serde_json::{Value, json};

mod serve_common;

use serve_common::*;

fn office() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/tariffplans/office")
}

fn get_cost_args(usage: Value) -> Value {
    json!({
        "Tenant": "cgrates.org",
        "Category": "call",
        "Subject": "1001",
        "AnswerTime": "2024-05-13T10:00:00Z",
        "Destination": "1002",
        "Usage": usage,
    })
}

/// What `accurate cost` says the same call costs (the independent path).
fn cli_cost(usage: &str) -> Value {
    let out = Command::new(ACCURATE)
        .arg("cost")
        .arg("--tariffplan")
        .arg(office())
        .args(["--answer-time", "2024-05-13T10:00:00Z", "--subject", "1001"])
        .args([
            "--destination",
            "1002",
            "--usage",
            usage,
            "--format",
            "json",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    v["Cost"].clone()
}

fn console(server: &str, token: Option<&str>, args: &[&str]) -> Output {
    let mut cmd = Command::new(ACCURATE);
    cmd.args(["console", "--server", server]);
    if let Some(t) = token {
        cmd.args(["--token", t]);
    }
    cmd.env_remove("ACCURATE_TOKEN")
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn status_and_ping_over_tcp_and_http() {
    let srv = Server::start(&[]);
    let mut tcp = Replies::new(srv.connect());
    let r = tcp.call("CoreSv1.Ping", json!({}), 1);
    assert_eq!(r, json!({"id": 1, "result": "Pong", "error": null}));
    let r = tcp.call("CoreSv1.Status", json!({}), 2);
    assert!(r["error"].is_null(), "{r}");
    for key in [
        "node_id",
        "version",
        "running_since",
        "uptime_seconds",
        "goroutines",
    ] {
        assert!(!r["result"][key].is_null(), "{key} missing: {r}");
    }
    assert_eq!(r["result"]["version"], env!("CARGO_PKG_VERSION"));
    let r = srv.http_call("CoreSv1.Ping", json!({}));
    assert_eq!(r, json!({"id": 1, "result": "Pong", "error": null}));
    let r = srv.http_call("CoreSv1.Status", json!({}));
    assert!(r["result"]["node_id"].is_string(), "{r}");
}

#[test]
fn load_folder_then_get_cost_matches_accurate_cost() {
    let srv = Server::start(&["--rounding", "exact"]);
    let mut tcp = Replies::new(srv.connect());
    // No plan yet: CGRateS wraps the rating error.
    let r = tcp.call("APIerSv1.GetCost", get_cost_args(json!("90s")), 1);
    assert_eq!(r["error"], "SERVER_ERROR: RATING_PLAN_NOT_FOUND", "{r}");
    let folder = office().display().to_string();
    // A dry run loads (and checks) but puts nothing in force.
    let r = tcp.call(
        "APIerSv1.LoadTariffPlanFromFolder",
        json!({"FolderPath": folder, "DryRun": true}),
        3,
    );
    assert_eq!(r["result"], "OK", "{r}");
    let r = tcp.call("APIerSv1.GetCost", get_cost_args(json!("90s")), 4);
    assert_eq!(r["error"], "SERVER_ERROR: RATING_PLAN_NOT_FOUND", "{r}");
    let r = tcp.call(
        "APIerSv1.LoadTariffPlanFromFolder",
        json!({"FolderPath": folder}),
        2,
    );
    assert_eq!(r, json!({"id": 2, "result": "OK", "error": null}));
    let expected = cli_cost("90s");
    // 0.4 connect fee + 0.2 first minute + 30 s at 0.1/min.
    assert_eq!(expected, json!(0.65));
    // The older service name that CGRateS v0.10 still registers.
    let r = tcp.call("ApierV1.GetCost", get_cost_args(json!("90s")), 5);
    assert_eq!(r["result"]["Cost"], expected, "{r}");
    for (i, usage) in [
        json!("90s"),
        json!("1m30s"),
        json!(90_000_000_000u64),
        json!("90000000000"),
    ]
    .into_iter()
    .enumerate()
    {
        let r = tcp.call(
            "APIerSv1.GetCost",
            get_cost_args(usage.clone()),
            10 + i as u64,
        );
        assert!(r["error"].is_null(), "{usage}: {r}");
        let ec = &r["result"];
        assert_eq!(ec["Cost"], expected, "{usage}: {r}");
        assert_eq!(ec["Usage"], json!(90_000_000_000u64));
        assert_eq!(ec["StartTime"], "2024-05-13T10:00:00Z");
        assert_eq!(ec["CGRID"], "");
        assert_eq!(ec["RunID"], "");
        assert!(
            ec["Charges"].as_array().is_some_and(|c| !c.is_empty()),
            "{r}"
        );
    }
    // Over HTTP too, and with APIOpts (later releases) or Opts (v0.10).
    let mut args = get_cost_args(json!("90s"));
    args["APIOpts"] = json!({"*context": "x"});
    args["Opts"] = json!({});
    let r = srv.http_call("APIerSv1.GetCost", args);
    assert_eq!(r["result"]["Cost"], expected, "{r}");
    // The exact digits of a longer call, as `accurate cost` has them.
    let r = srv.http_call("APIerSv1.GetCost", get_cost_args(json!("2m17s")));
    assert_eq!(r["result"]["Cost"], cli_cost("2m17s"), "{r}");
}

#[test]
fn tariffplan_flag_loads_at_start_and_a_failed_load_keeps_the_plan() {
    let srv = Server::start(&["--tariffplan", office().to_str().unwrap()]);
    let r = srv.http_call("APIerSv1.GetCost", get_cost_args(json!("90s")));
    assert_eq!(r["result"]["Cost"], json!(0.65), "{r}");
    // A bad folder is refused and the plan in force stays.
    let r = srv.http_call(
        "APIerSv1.LoadTariffPlanFromFolder",
        json!({"FolderPath": "/nonexistent/accurate/plan"}),
    );
    assert_eq!(r["error"], "INVALID_PATH", "{r}");
    let empty = std::env::temp_dir().join(format!("accurate-empty-plan-{}", std::process::id()));
    std::fs::create_dir_all(&empty).unwrap();
    let r = srv.http_call(
        "APIerSv1.LoadTariffPlanFromFolder",
        json!({"FolderPath": empty.display().to_string()}),
    );
    let e = r["error"].as_str().unwrap();
    assert!(e.starts_with("SERVER_ERROR: "), "{r}");
    let r = srv.http_call("APIerSv1.GetCost", get_cost_args(json!("90s")));
    assert_eq!(r["result"]["Cost"], json!(0.65), "{r}");
}

#[test]
fn two_requests_in_one_write_and_one_split_across_writes() {
    let srv = Server::start(&[]);
    let mut tcp = Replies::new(srv.connect());
    tcp.send(
        br#"{"method":"CoreSv1.Ping","params":[{}],"id":1}{"method":"CoreSv1.Ping","params":[{}],"id":2}"#,
    );
    assert_eq!(tcp.next().unwrap()["id"], 1);
    assert_eq!(tcp.next().unwrap()["id"], 2);
    let req = br#"{"method":"CoreSv1.Ping","params":[{"x":"}{"}],"id":3}"#;
    for chunk in req.chunks(7) {
        tcp.send(chunk);
        tcp.conn.flush().unwrap();
        std::thread::sleep(Duration::from_millis(5));
    }
    let r = tcp.next().unwrap();
    assert_eq!(r, json!({"id": 3, "result": "Pong", "error": null}));
}

#[test]
fn jsonrpc_2_requests_are_answered_in_2_form() {
    let srv = Server::start(&[]);
    let mut tcp = Replies::new(srv.connect());
    // A notification (no id) gets no reply: the next reply is id "b"'s.
    tcp.send(br#"{"jsonrpc":"2.0","method":"CoreSv1.Ping","params":{}}"#);
    tcp.send(br#"{"jsonrpc":"2.0","method":"CoreSv1.Ping","params":{},"id":"b"}"#);
    let r = tcp.next().unwrap();
    assert_eq!(r, json!({"jsonrpc": "2.0", "id": "b", "result": "Pong"}));
    tcp.send(br#"{"jsonrpc":"2.0","method":"CoreSv1.Nope","id":7}"#);
    let r = tcp.next().unwrap();
    assert_eq!(r["error"]["code"], -32601, "{r}");
    assert_eq!(r["error"]["message"], "rpc: can't find method CoreSv1.Nope");
    let (status, r) = srv.http(
        "POST",
        "/jsonrpc",
        r#"{"jsonrpc":"2.0","method":"APIerSv1.GetCost","params":{"Usage":"1s"},"id":8}"#,
        &[],
    );
    assert_eq!(status, 200);
    assert_eq!(
        r["error"]["message"], "MANDATORY_IE_MISSING: [Subject]",
        "{r}"
    );
    assert_eq!(r["jsonrpc"], "2.0");
}

#[test]
fn unknown_methods_and_malformed_params_get_error_replies() {
    let srv = Server::start(&[]);
    let mut tcp = Replies::new(srv.connect());
    let r = tcp.call("NoSuchSv1.Thing", json!({}), 1);
    assert_eq!(r["error"], "rpc: can't find service NoSuchSv1.Thing");
    assert!(r["result"].is_null());
    let r = tcp.call("APIerSv1.LoadTariffPlanFromFolder", json!({}), 2);
    assert_eq!(r["error"], "MANDATORY_IE_MISSING: [FolderPath]");
    let r = tcp.call("APIerSv1.GetCost", json!({"Usage": "90s"}), 3);
    assert_eq!(r["error"], "MANDATORY_IE_MISSING: [Subject]");
    let r = tcp.call("APIerSv1.GetCost", json!("not an object"), 4);
    assert!(
        r["error"]
            .as_str()
            .unwrap()
            .contains("cannot unmarshal string"),
        "{r}"
    );
    let r = tcp.call("APIerSv1.GetCost", json!({"Subject": 1001}), 5);
    assert!(r["error"].as_str().unwrap().contains("Subject"), "{r}");
    let r = tcp.call("APIerSv1.GetCost", get_cost_args(json!("soon")), 6);
    assert!(r["error"].as_str().unwrap().contains("soon"), "{r}");
    // Go's codec: params missing.
    tcp.send(br#"{"method":"CoreSv1.Ping","id":9}"#);
    let r = tcp.next().unwrap();
    assert_eq!(r["error"], "jsonrpc: request body missing params");
    // The connection still serves.
    assert_eq!(tcp.call("CoreSv1.Ping", json!({}), 10)["result"], "Pong");
}

#[test]
fn garbage_closes_only_its_own_connection() {
    let srv = Server::start(&[]);
    let mut good = Replies::new(srv.connect());
    assert_eq!(good.call("CoreSv1.Ping", json!({}), 1)["result"], "Pong");
    let mut bad = Replies::new(srv.connect());
    bad.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(bad.next(), None, "the garbage connection is closed");
    // A syntax error inside braces also closes (as Go's decoder does).
    let mut bad2 = Replies::new(srv.connect());
    bad2.send(br#"{"method":"CoreSv1.Ping","params":[{}],"id":tru}"#);
    assert_eq!(bad2.next(), None);
    assert_eq!(good.call("CoreSv1.Ping", json!({}), 2)["result"], "Pong");
    let mut fresh = Replies::new(srv.connect());
    assert_eq!(fresh.call("CoreSv1.Ping", json!({}), 3)["result"], "Pong");
    let _ = bad.conn.shutdown(Shutdown::Both);
    let r = srv.http_call("CoreSv1.Status", json!({}));
    assert_eq!(r["result"]["tcp_malformed"], 2, "{r}");
}

#[test]
fn http_refuses_other_paths_methods_and_non_json() {
    let srv = Server::start(&[]);
    let (status, _) = srv.http("POST", "/other", "{}", &[]);
    assert_eq!(status, 404);
    let (status, _) = srv.http("GET", "/jsonrpc", "", &[]);
    assert_eq!(status, 405);
    let (status, r) = srv.http("POST", "/jsonrpc", "not json", &[]);
    assert_eq!(status, 400);
    assert!(r["error"].as_str().unwrap().contains("parse error"), "{r}");
    // A notification over HTTP: no content.
    let (status, r) = srv.http(
        "POST",
        "/jsonrpc",
        r#"{"jsonrpc":"2.0","method":"CoreSv1.Ping"}"#,
        &[],
    );
    assert_eq!((status, r), (204, Value::Null));
}

#[test]
fn auth_token_is_required_when_configured() {
    let config =
        "[api]\nrpc-tcp = \"127.0.0.1:0\"\nrpc-http = \"127.0.0.1:0\"\nauth-token = \"s3cret\"\n";
    let srv = Server::start_with(&[], Some(config));
    // HTTP: bearer token.
    let body = r#"{"method":"CoreSv1.Ping","params":[{}],"id":1}"#;
    let (status, _) = srv.http("POST", "/jsonrpc", body, &[]);
    assert_eq!(status, 401);
    let (status, _) = srv.http("POST", "/jsonrpc", body, &["Authorization: Bearer wrong"]);
    assert_eq!(status, 401);
    let (status, r) = srv.http("POST", "/jsonrpc", body, &["Authorization: Bearer s3cret"]);
    assert_eq!((status, &r["result"]), (200, &json!("Pong")), "{r}");
    // TCP: a first AuthSv1.Auth call.
    let mut tcp = Replies::new(srv.connect());
    assert_eq!(
        tcp.call("CoreSv1.Ping", json!({}), 1)["error"],
        "UNAUTHORIZED"
    );
    let r = tcp.call("AuthSv1.Auth", json!({"Token": "nope"}), 2);
    assert_eq!(r["error"], "UNAUTHORIZED");
    let r = tcp.call("AuthSv1.Auth", json!({"Token": "s3cret"}), 3);
    assert_eq!(r["result"], "OK", "{r}");
    assert_eq!(tcp.call("CoreSv1.Ping", json!({}), 4)["result"], "Pong");
    // The console gives the token both ways.
    for server in [
        format!("tcp://{}", srv.tcp),
        format!("http://{}/jsonrpc", srv.http),
    ] {
        let out = console(&server, Some("s3cret"), &["CoreSv1.Ping"]);
        assert!(out.status.success(), "{server}: {out:?}");
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "\"Pong\"");
        let out = console(&server, None, &["CoreSv1.Ping"]);
        assert!(!out.status.success(), "{server}: {out:?}");
    }
}

#[test]
fn no_auth_without_a_token() {
    let srv = Server::start(&[]);
    let (status, r) = srv.http(
        "POST",
        "/jsonrpc",
        r#"{"method":"CoreSv1.Ping","params":[{}],"id":1}"#,
        &["Authorization: Bearer anything"],
    );
    assert_eq!((status, &r["result"]), (200, &json!("Pong")));
}

#[test]
fn console_prints_the_result_and_fails_on_an_error_reply() {
    let srv = Server::start(&["--tariffplan", office().to_str().unwrap()]);
    let args = get_cost_args(json!("90s")).to_string();
    for server in [
        format!("tcp://{}", srv.tcp),
        format!("http://{}/jsonrpc", srv.http),
    ] {
        let out = console(&server, None, &["APIerSv1.GetCost", &args]);
        assert!(out.status.success(), "{server}: {out:?}");
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(text.contains("\n  \"Cost\": 0.65,"), "pretty JSON: {text}");
        let out = console(&server, None, &["CoreSv1.Nope", "{}"]);
        assert_eq!(out.status.code(), Some(1), "{server}: {out:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("rpc: can't find method CoreSv1.Nope"), "{err}");
        assert!(out.stdout.is_empty());
    }
    let out = console("ftp://x", None, &["CoreSv1.Ping"]);
    assert!(!out.status.success());
}

#[test]
fn sigterm_and_sigint_stop_cleanly() {
    for sig in ["-TERM", "-INT"] {
        let mut srv = Server::start(&[]);
        let mut tcp = Replies::new(srv.connect());
        assert_eq!(tcp.call("CoreSv1.Ping", json!({}), 1)["result"], "Pong");
        let (status, lines) = srv.signal(sig);
        assert_eq!(status.code(), Some(0), "{sig}: {lines:?}");
        assert!(
            lines.iter().any(|l| l == "serve: rpc_requests: 1"),
            "{lines:?}"
        );
    }
}

#[test]
fn an_address_in_use_exits_69() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let data = temp_data_dir();
    let out = Command::new(ACCURATE)
        .args(["serve", "--rpc-tcp", &addr, "--rpc-http", "127.0.0.1:0"])
        .arg("--data-dir")
        .arg(&data)
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&data);
    assert_eq!(out.status.code(), Some(69), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("rpc-tcp:{addr}")), "{err}");
}

#[test]
fn data_dir_is_created() {
    let dir = std::env::temp_dir().join(format!("accurate-data-{}/a/b", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut srv = Server::start(&["--data-dir", dir.to_str().unwrap()]);
    assert!(dir.is_dir());
    assert_eq!(srv.signal("-TERM").0.code(), Some(0));
    let _ = std::fs::remove_dir_all(dir.parent().unwrap().parent().unwrap());
}

/// Regression: the signal handlers were installed after the `listening
/// on` lines, so a SIGTERM sent as soon as they were read killed the
/// server (no exit code, no counters).
#[test]
fn sigterm_right_after_the_listening_lines_exits_0() {
    for _ in 0..3 {
        let mut srv = Server::start(&[]);
        let (status, lines) = srv.signal("-TERM");
        assert_eq!(status.code(), Some(0), "{lines:?}");
    }
}

#[test]
fn connections_past_the_limit_are_closed_and_counted() {
    let config =
        "[api]\nrpc-tcp = \"127.0.0.1:0\"\nrpc-http = \"127.0.0.1:0\"\nmax-connections = 1\n";
    let srv = Server::start_with(&[], Some(config));
    let mut first = Replies::new(srv.connect());
    assert_eq!(first.call("CoreSv1.Ping", json!({}), 1)["result"], "Pong");
    let mut second = Replies::new(srv.connect());
    // The server may have closed it already: a failed write is fine.
    let _ = second
        .conn
        .write_all(br#"{"method":"CoreSv1.Ping","params":[{}],"id":2}"#);
    assert_eq!(
        second.next(),
        None,
        "the connection past the limit is closed"
    );
    assert_eq!(first.call("CoreSv1.Ping", json!({}), 3)["result"], "Pong");
    let r = srv.http_call("CoreSv1.Status", json!({}));
    assert_eq!(r["result"]["tcp_conn_limit"], 1, "{r}");
}

#[test]
fn a_silent_connection_is_closed_after_the_idle_timeout() {
    let config =
        "[api]\nrpc-tcp = \"127.0.0.1:0\"\nrpc-http = \"127.0.0.1:0\"\nidle-timeout-secs = 1\n";
    let srv = Server::start_with(&[], Some(config));
    let mut quiet = Replies::new(srv.connect());
    // Half a request, then nothing.
    quiet.send(br#"{"method":"CoreSv1.Ping","#);
    assert_eq!(quiet.next(), None, "closed once idle");
    let r = srv.http_call("CoreSv1.Status", json!({}));
    assert_eq!(r["result"]["tcp_idle_timeout"], 1, "{r}");
}
