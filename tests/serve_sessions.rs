//! Sessions over `accurate serve`, end to end: the real binary with the
//! `sessions` plan, `SessionSv1` over HTTP on the embedded store and on
//! Redis (a key prefix of its own), the session TTL, restarts in the
//! middle of a session (SIGTERM and `kill -9`), and a passive call from
//! HEP charged by its `[mapping]` request type.
#![allow(clippy::unwrap_used, dead_code)]

use std::path::PathBuf;
use std::process::Command;
use std::str::FromStr;
use std::time::{Duration, SystemTime};

use capture::Timestamp;
use capture::hep::decode;
use rust_decimal::Decimal;
use serde_json::{Value, json};

mod common;
mod serve_common;

use serve_common::{
    Server, credit, dec, err, hep_udp_addr as hep_addr, metric, restamp_hep as restamp,
    rpc as call, send_udp, temp_data_dir, wait_until,
};

fn plan_dir() -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/tariffplans/sessions")
        .to_str()
        .unwrap()
        .to_owned()
}

/// The account's `*voice` balance `minutes`, in seconds.
fn minutes(s: &Server, account: &str) -> Decimal {
    let a = call(
        s,
        "APIerSv2.GetAccount",
        json!({"Tenant": "cgrates.org", "Account": account}),
    );
    let b = a["BalanceMap"]["*voice"]
        .as_array()
        .unwrap_or_else(|| panic!("{a}"))
        .iter()
        .find(|b| b["ID"] == "minutes")
        .unwrap()
        .clone();
    Decimal::from_str(&b["Value"].to_string()).unwrap() / Decimal::from(1_000_000_000u64)
}

/// The stored CDRs of these OriginIDs (waiting for the writer's batch).
fn cdrs(s: &Server, origin: &str, want: usize) -> Vec<Value> {
    let mut got = Vec::new();
    wait_until("the stored CDRs", || {
        let r = call(s, "CDRsV1.GetCDRs", json!({"OriginIDs": [origin]}));
        got = r.as_array().cloned().unwrap_or_default();
        got.len() >= want
    });
    assert_eq!(got.len(), want, "{got:?}");
    got
}

fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// A flattened CGREvent with `flag` set.
fn ev(flag: &str, account: &str, origin: &str, rt: &str, extra: Value) -> Value {
    let mut event = json!({
        "OriginID": origin, "OriginHost": "10.9.9.9", "RequestType": rt,
        "Account": account, "Destination": "4930555002", "AnswerTime": now_rfc3339(),
    });
    if let (Some(e), Some(x)) = (event.as_object_mut(), extra.as_object()) {
        e.extend(x.clone());
    }
    let mut args = json!({"Tenant": "cgrates.org", "ID": format!("ev-{origin}"), "Event": event});
    if !flag.is_empty() {
        args[flag] = json!(true);
    }
    args
}

const S: u64 = 1_000_000_000;

fn count(s: &Server) -> u64 {
    call(s, "SessionSv1.GetActiveSessionsCount", json!({}))
        .as_u64()
        .unwrap()
}

/// Prepaid with refunds on money and on units, LastUsed, postpaid,
/// listing, ForceDisconnect and bad arguments.
fn scenario(s: &Server) {
    // Authorize: what 10.00 pays, capped at the Usage asked.
    let r = call(
        s,
        "SessionSv1.AuthorizeEvent",
        ev(
            "GetMaxUsage",
            "1001",
            "a1",
            "*prepaid",
            json!({"Usage": "5m"}),
        ),
    );
    assert_eq!(r["MaxUsage"], json!(300 * S), "{r}");
    assert_eq!(credit(s, "1001"), dec("10"));
    let r = call(
        s,
        "SessionSv1.AuthorizeEvent",
        ev("", "1001", "a1", "*prepaid", json!({})),
    );
    assert_eq!(err(&r), "MANDATORY_IE_MISSING: [subsystems]");

    // Prepaid on money: 2 minutes reserved, 50 s used, the rest refunded.
    let r = call(
        s,
        "SessionSv1.InitiateSession",
        ev(
            "InitSession",
            "1001",
            "p1",
            "*prepaid",
            json!({"Usage": "2m"}),
        ),
    );
    assert_eq!(r["MaxUsage"], json!(120 * S), "{r}");
    assert_eq!(credit(s, "1001"), dec("8.80"));
    assert_eq!(count(s), 1);
    let r = call(
        s,
        "SessionSv1.TerminateSession",
        ev(
            "TerminateSession",
            "1001",
            "p1",
            "*prepaid",
            json!({"Usage": "50s"}),
        ),
    );
    assert_eq!(r, json!("OK"));
    assert_eq!(credit(s, "1001"), dec("9.50"));
    assert_eq!(count(s), 0);
    let c = cdrs(s, "p1", 1);
    assert_eq!(c[0]["Usage"], json!(50 * S), "{c:?}");
    assert_eq!(c[0]["RequestType"], "*prepaid");
    assert_eq!(c[0]["CostSource"], "*sessions", "{c:?}");
    // A repeated terminate charges nothing more.
    let r = call(
        s,
        "SessionSv1.TerminateSession",
        ev(
            "TerminateSession",
            "1001",
            "p1",
            "*prepaid",
            json!({"Usage": "50s"}),
        ),
    );
    assert_eq!(r, json!("OK"));
    assert_eq!(credit(s, "1001"), dec("9.50"));

    // Prepaid on units first: 120 s of minutes then 0.60 of money for 3
    // minutes; 90 s used gives back 30 s of minutes and all the money.
    let r = call(
        s,
        "SessionSv1.InitiateSession",
        ev(
            "InitSession",
            "1002",
            "u1",
            "*prepaid",
            json!({"Usage": "3m"}),
        ),
    );
    assert_eq!(r["MaxUsage"], json!(180 * S), "{r}");
    assert_eq!(minutes(s, "1002"), dec("0"));
    assert_eq!(credit(s, "1002"), dec("0.40"));
    call(
        s,
        "SessionSv1.TerminateSession",
        ev(
            "TerminateSession",
            "1002",
            "u1",
            "*prepaid",
            json!({"Usage": "90s"}),
        ),
    );
    assert_eq!(minutes(s, "1002"), dec("30"));
    assert_eq!(credit(s, "1002"), dec("1"));

    // Update with LastUsed: 40 s used, a minute more asked for.
    let r = call(
        s,
        "SessionSv1.InitiateSession",
        ev(
            "InitSession",
            "1004",
            "l1",
            "*prepaid",
            json!({"Usage": "1m"}),
        ),
    );
    assert_eq!(r["MaxUsage"], json!(60 * S), "{r}");
    let r = call(
        s,
        "SessionSv1.UpdateSession",
        ev(
            "UpdateSession",
            "1004",
            "l1",
            "*prepaid",
            json!({"Usage": "1m", "LastUsed": "40s"}),
        ),
    );
    assert_eq!(r["MaxUsage"], json!(60 * S), "{r}");
    assert_eq!(credit(s, "1004"), dec("9.00"));

    // Listing: the active session with CGRateS's fields.
    let list = call(s, "SessionSv1.GetActiveSessions", json!({}));
    let list = list.as_array().unwrap_or_else(|| panic!("{list}"));
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["Account"], "1004");
    assert_eq!(list[0]["OriginID"], "l1");
    assert_eq!(list[0]["Usage"], json!(40 * S));
    let none = call(
        s,
        "SessionSv1.GetActiveSessions",
        json!({"Filters": ["*string:~*req.Account:1001"]}),
    );
    assert_eq!(err(&none), "NOT_FOUND");
    let one = call(
        s,
        "SessionSv1.GetActiveSessionsCount",
        json!({"Filters": ["*string:~*req.Account:1004"]}),
    );
    assert_eq!(one, json!(1));
    let bad = call(
        s,
        "SessionSv1.GetActiveSessions",
        json!({"Filters": ["*gte:~Usage:1"]}),
    );
    assert!(err(&bad).contains("unsupported filter"), "{bad}");

    // ForceDisconnect ends the session at once, as CGRateS's
    // forceSTerminate: the owner asked (an API session: nobody to tell,
    // counted), settled for the usage so far (the 40 s reported: 0.40,
    // the rest of the reservation given back) and its CDR stored, flagged,
    // before the reply.
    let r = call(
        s,
        "SessionSv1.ForceDisconnect",
        json!({"Filters": ["*string:~*req.OriginID:l1"]}),
    );
    assert_eq!(r, json!("OK"));
    assert_eq!(count(s), 0);
    assert_eq!(credit(s, "1004"), dec("9.60"));
    let r = call(s, "CDRsV1.GetCDRs", json!({"OriginIDs": ["l1"]}));
    let c = r.as_array().unwrap_or_else(|| panic!("{r}"));
    assert_eq!(c.len(), 1, "{c:?}");
    assert_eq!(c[0]["Usage"], json!(40 * S), "{c:?}");
    assert_eq!(
        Decimal::from_str(&c[0]["Cost"].to_string()).unwrap(),
        dec("0.4")
    );
    assert_eq!(
        c[0]["ExtraFields"]["DisconnectRequested"], "FORCED_DISCONNECT",
        "{c:?}"
    );
    let r = call(
        s,
        "SessionSv1.ForceDisconnect",
        json!({"Filters": ["*string:~*req.OriginID:l1"]}),
    );
    assert_eq!(err(&r), "NOT_FOUND");
    // Its owner's terminate, late: the charge is not made again, the CDR
    // not written twice.
    let r = call(
        s,
        "SessionSv1.TerminateSession",
        ev(
            "TerminateSession",
            "1004",
            "l1",
            "*prepaid",
            json!({"Usage": "65s"}),
        ),
    );
    assert_eq!(r, json!("OK"));
    assert_eq!(credit(s, "1004"), dec("9.60"));
    assert_eq!(cdrs(s, "l1", 1)[0]["Usage"], json!(40 * S));
    assert_eq!(
        err(&call(s, "SessionSv1.GetActiveSessions", json!({}))),
        "NOT_FOUND"
    );

    // Postpaid through ProcessCDR, twice: charged once.
    for _ in 0..2 {
        let r = call(
            s,
            "SessionSv1.ProcessCDR",
            ev("", "1001", "pp1", "*postpaid", json!({"Usage": "10s"})),
        );
        assert_eq!(r, json!("OK"));
    }
    assert_eq!(credit(s, "1001"), dec("9.40"));
    let c = cdrs(s, "pp1", 1);
    assert_eq!(
        Decimal::from_str(&c[0]["Cost"].to_string()).unwrap(),
        dec("0.1")
    );
    // Postpaid through initiate/terminate, and ProcessEvent's flags.
    let r = call(
        s,
        "SessionSv1.ProcessEvent",
        json!({"Flags": ["*rals:*initiate"], "Tenant": "cgrates.org",
               "Event": {"OriginID": "pe1", "RequestType": "*postpaid", "Account": "1001",
                         "Destination": "4930555002", "AnswerTime": now_rfc3339(), "Usage": "1m"}}),
    );
    assert_eq!(r["MaxUsage"], json!(60 * S), "{r}");
    assert_eq!(credit(s, "1001"), dec("9.40"));
    call(
        s,
        "SessionSv1.ProcessEvent",
        json!({"Flags": ["*rals:*terminate"], "Tenant": "cgrates.org",
               "Event": {"OriginID": "pe1", "RequestType": "*postpaid", "Account": "1001",
                         "Destination": "4930555002", "Usage": "20s"}}),
    );
    assert_eq!(credit(s, "1001"), dec("9.20"));

    // Not enough credit: 0.30 pays 30 s of the minute asked.
    let r = call(
        s,
        "SessionSv1.InitiateSession",
        ev(
            "InitSession",
            "1003",
            "low1",
            "*prepaid",
            json!({"Usage": "1m"}),
        ),
    );
    assert_eq!(r["MaxUsage"], json!(30 * S), "{r}");
    let r = call(
        s,
        "SessionSv1.AuthorizeEvent",
        ev(
            "GetMaxUsage",
            "1003",
            "low2",
            "*prepaid",
            json!({"Usage": "1m"}),
        ),
    );
    // CGRateS's GetMaxSessionTime answers 0, not an error.
    assert_eq!(r["MaxUsage"], json!(0), "{r}");
    call(
        s,
        "SessionSv1.TerminateSession",
        ev(
            "TerminateSession",
            "1003",
            "low1",
            "*prepaid",
            json!({"Usage": "30s"}),
        ),
    );
    assert_eq!(credit(s, "1003"), dec("0"));

    // Bad arguments get clear errors.
    let r = call(s, "SessionSv1.InitiateSession", json!("x"));
    assert!(err(&r).starts_with("json: cannot unmarshal string"), "{r}");
    let r = call(
        s,
        "SessionSv1.InitiateSession",
        ev("InitSession", "1001", "b1", "*bogus", json!({})),
    );
    assert!(err(&r).contains("RequestType"), "{r}");
    let r = call(
        s,
        "SessionSv1.InitiateSession",
        ev("InitSession", "", "b2", "*prepaid", json!({})),
    );
    assert_eq!(err(&r), "MANDATORY_IE_MISSING: [Account]");
    let r = call(
        s,
        "SessionSv1.InitiateSession",
        ev(
            "InitSession",
            "1001",
            "b3",
            "*prepaid",
            json!({"Usage": "soon"}),
        ),
    );
    assert!(err(&r).contains("Usage"), "{r}");
    let r = call(
        s,
        "SessionSv1.InitiateSession",
        ev("InitSession", "nobody", "b4", "*prepaid", json!({})),
    );
    assert!(err(&r).starts_with("RALS_ERROR:"), "{r}");
    let r = call(s, "SessionSv1.Nope", json!({}));
    assert_eq!(err(&r), "rpc: can't find method SessionSv1.Nope");
    assert_eq!(count(s), 0);
}

#[test]
fn sessions_scenario_on_the_embedded_store() {
    let s = Server::start(&["--tariffplan", &plan_dir()]);
    scenario(&s);
}

/// The real Redis on 127.0.0.1:6379, or `ACCURATE_TEST_REDIS`.
fn redis_url() -> String {
    std::env::var("ACCURATE_TEST_REDIS").unwrap_or_else(|_| "redis://127.0.0.1:6379/0".into())
}

/// Deletes the test's Redis keys when dropped.
struct RedisKeys(String);

impl Drop for RedisKeys {
    fn drop(&mut self) {
        let _ = Command::new("redis-cli")
            .args(["-u", &redis_url(), "EVAL"])
            .arg("for _,k in ipairs(redis.call('KEYS', ARGV[1])) do redis.call('DEL', k) end")
            .args(["0", &format!("{}*", self.0)])
            .output();
    }
}

fn redis_config(extra: &str) -> (RedisKeys, String) {
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let keys = RedisKeys(format!("accurate-sessions-{}-{nanos}:", std::process::id()));
    let config = format!(
        "[api]\nrpc-tcp = \"127.0.0.1:0\"\nrpc-http = \"127.0.0.1:0\"\n[storage]\nredis = \"{}\"\nredis-prefix = \"{}\"\n{extra}",
        redis_url(),
        keys.0
    );
    (keys, config)
}

#[test]
fn sessions_scenario_on_redis() {
    let (_keys, config) = redis_config("");
    let s = Server::start_with(&["--tariffplan", &plan_dir()], Some(&config));
    assert!(s.seen.iter().any(|l| l.starts_with("store: redis")));
    scenario(&s);
}

/// An API session that stops getting updates ends after `session-ttl`
/// with the usage known plus `ttl-usage`, and its reservation settles.
#[test]
fn a_silent_session_ends_by_its_ttl() {
    let config = format!("{API}[sessions]\nsession-ttl = \"1s\"\nttl-usage = \"5s\"\nshards = 2\n");
    let s = Server::start_with(&["--tariffplan", &plan_dir()], Some(&config));
    let r = call(
        &s,
        "SessionSv1.InitiateSession",
        ev(
            "InitSession",
            "1001",
            "ttl1",
            "*prepaid",
            json!({"Usage": "1m"}),
        ),
    );
    assert_eq!(r["MaxUsage"], json!(60 * S), "{r}");
    assert_eq!(credit(&s, "1001"), dec("9.40"));
    wait_until("the TTL", || count(&s) == 0);
    assert_eq!(credit(&s, "1001"), dec("9.95"));
}

/// A server stopped in the middle of a prepaid session (SIGTERM, then
/// `kill -9`) has it active again after the restart, and its terminate
/// charges once.
fn restart_mid_session(sig: &str, redis: bool) {
    let (_keys, config) = if redis {
        redis_config("")
    } else {
        (RedisKeys(String::from("unused-")), API.to_owned())
    };
    let data = temp_data_dir();
    let start = |plan: bool| {
        let mut args = vec!["--data-dir".to_owned(), data.to_str().unwrap().to_owned()];
        if plan {
            args.extend(["--tariffplan".to_owned(), plan_dir()]);
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        Server::start_with(&args, Some(&config))
    };
    let mut s = start(true);
    call(
        &s,
        "SessionSv1.InitiateSession",
        ev(
            "InitSession",
            "1001",
            "rs1",
            "*prepaid",
            json!({"Usage": "2m"}),
        ),
    );
    assert_eq!(credit(&s, "1001"), dec("8.80"));
    s.signal(sig);
    drop(s);
    let s = start(false);
    assert!(
        s.seen.iter().any(|l| l == "restored 1 active sessions"),
        "{:?}",
        s.seen
    );
    assert_eq!(count(&s), 1);
    assert_eq!(credit(&s, "1001"), dec("8.80"));
    for _ in 0..2 {
        call(
            &s,
            "SessionSv1.TerminateSession",
            ev(
                "TerminateSession",
                "1001",
                "rs1",
                "*prepaid",
                json!({"Usage": "30s"}),
            ),
        );
        assert_eq!(credit(&s, "1001"), dec("9.70"));
    }
    assert_eq!(count(&s), 0);
    cdrs(&s, "rs1", 1);
    drop(s);
    // Forgotten for good: the next start restores nothing.
    let s = start(false);
    assert_eq!(count(&s), 0);
    drop(s);
    let _ = std::fs::remove_dir_all(&data);
}

#[test]
fn sigterm_in_the_middle_of_a_session() {
    restart_mid_session("-TERM", false);
}

#[test]
fn kill_9_in_the_middle_of_a_session() {
    restart_mid_session("-KILL", false);
}

#[test]
fn kill_9_in_the_middle_of_a_session_on_redis() {
    restart_mid_session("-KILL", true);
}

// --- passive calls ---------------------------------------------------------

/// The HEP packets of one call in a capture of the repository.
fn call_hep(capture: &str) -> Vec<Vec<u8>> {
    let hep = common::wire_hep(&common::root().join("captures").join(capture));
    assert!(!hep.is_empty(), "{capture}: no HEP");
    hep.into_iter().map(|h| h.bytes).collect()
}

fn is_bye(hep: &[u8]) -> bool {
    let p = decode(hep, Timestamp::from_nanos(0)).unwrap();
    p.payload.is_some_and(|b| b.starts_with(b"BYE "))
}

const API: &str = "[api]\nrpc-tcp = \"127.0.0.1:0\"\nrpc-http = \"127.0.0.1:0\"\n";
const PASSIVE: &str = "[mapping]\nrequest-type = \"*postpaid\"\n";

/// A call seen over HEP is charged to its caller by the mapping's request
/// type (postpaid: debited at the end) and gets its CDR; a restart between
/// its answer and its BYE carries it over (dialog and session) and the
/// BYE after the restart ends it, charged once.
#[test]
fn passive_call_over_hep_is_charged_and_survives_a_restart() {
    let data = temp_data_dir();
    let start = |plan: bool| {
        let mut args = vec![
            "--hep".to_owned(),
            "udp:127.0.0.1:0".to_owned(),
            "--data-dir".to_owned(),
            data.to_str().unwrap().to_owned(),
        ];
        if plan {
            args.extend(["--tariffplan".to_owned(), plan_dir()]);
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        Server::start_with(&args, Some(&format!("{API}{PASSIVE}")))
    };
    let s = start(true);
    let udp = hep_addr(&s);
    let call = restamp(&call_hep("answered-callee-bye.pcap"), SystemTime::now());
    send_udp(&udp, &call);
    wait_until("the CDR", || metric(&s, "accurate_cdrs_total") == 1);
    // Re-stamped 1 ms apart, the call talks a few ms: one second, 0.01.
    wait_until("the debit", || credit(&s, "4971112345") == dec("9.99"));
    let first = cdrs(&s, "1-11514@127.0.0.1", 1);
    assert_eq!(first[0]["RequestType"], "*postpaid", "{first:?}");
    assert_eq!(
        Decimal::from_str(&first[0]["Cost"].to_string()).unwrap(),
        dec("0.01")
    );
    // The CDR writer's counters on /metrics.
    assert_eq!(metric(&s, "accurate_cdr_writer_total{name=\"stored\"}"), 1);
    assert_eq!(metric(&s, "accurate_cdrs_pending"), 0);

    // Another call, with a restart between its answer and its BYE.
    let second = call_hep("early-media-183.pcap");
    let bye = second.iter().position(|h| is_bye(h)).unwrap();
    let second = restamp(&second, SystemTime::now());
    send_udp(&udp, &second[..bye]);
    wait_until("the answer", || count(&s) == 1);
    let mut s = s;
    s.signal("-TERM");
    drop(s);
    let s = start(false);
    assert!(
        s.seen.iter().any(|l| l == "restored 1 calls in progress"),
        "{:?}",
        s.seen
    );
    assert_eq!(count(&s), 1);
    let udp = hep_addr(&s);
    send_udp(&udp, &second[bye..]);
    wait_until("the end", || count(&s) == 0);
    wait_until("its CDR", || metric(&s, "accurate_cdrs_total") == 1);
    // Its talk spans the restart: seconds, each 0.01, charged once.
    let after = credit(&s, "4971112345");
    assert!(after < dec("9.99"), "{after}");
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(credit(&s, "4971112345"), after);
    let c = cdrs(&s, "1-13708@127.0.0.1", 1);
    assert_eq!(
        Decimal::from_str(&c[0]["Cost"].to_string()).unwrap(),
        dec("9.99") - after
    );
    drop(s);
    let _ = std::fs::remove_dir_all(&data);
}

/// `SessionSv1.ForceDisconnect` of a passive call (nobody can end it: the
/// request is logged and counted) ends its session at once: settled for
/// the time since its answer and its CDR stored, flagged. The BYE seen
/// later makes no second CDR and no second debit.
#[test]
fn force_disconnect_of_a_passive_call_gives_one_cdr_and_one_debit() {
    let s = Server::start_with(
        &["--hep", "udp:127.0.0.1:0", "--tariffplan", &plan_dir()],
        Some(&format!("{API}{PASSIVE}")),
    );
    let udp = hep_addr(&s);
    let hep = call_hep("early-media-183.pcap");
    let bye = hep.iter().position(|h| is_bye(h)).unwrap();
    let hep = restamp(&hep, SystemTime::now());
    send_udp(&udp, &hep[..bye]);
    wait_until("the answer", || count(&s) == 1);
    let r = call_json(
        &s,
        "SessionSv1.ForceDisconnect",
        json!({"Filters": ["*string:~*req.OriginID:1-13708@127.0.0.1"]}),
    );
    assert_eq!(r, json!("OK"));
    assert_eq!(count(&s), 0);
    // Stored before the reply.
    let r = call(
        &s,
        "CDRsV1.GetCDRs",
        json!({"OriginIDs": ["1-13708@127.0.0.1"]}),
    );
    let c = r.as_array().unwrap_or_else(|| panic!("{r}")).clone();
    assert_eq!(c.len(), 1, "{c:?}");
    assert_eq!(c[0]["RequestType"], "*postpaid");
    assert_eq!(
        c[0]["ExtraFields"]["DisconnectRequested"], "FORCED_DISCONNECT",
        "{c:?}"
    );
    let cost = Decimal::from_str(&c[0]["Cost"].to_string()).unwrap();
    assert!(cost > Decimal::ZERO, "{c:?}");
    assert_eq!(credit(&s, "4971112345"), dec("10") - cost);
    assert_eq!(
        metric(&s, "accurate_sessions_total{name=\"disconnect_passive\"}"),
        1
    );
    // The BYE: the call ends in the dialog machine, its charge replays
    // from the account's mark and its CDR is a duplicate, not stored.
    send_udp(&udp, &hep[bye..]);
    wait_until("the BYE's end", || {
        metric(&s, "accurate_cdr_writer_total{name=\"duplicate\"}") == 1
    });
    assert_eq!(metric(&s, "accurate_cdrs_total"), 1);
    assert_eq!(
        metric(&s, "accurate_sessions_total{name=\"duplicates\"}"),
        1
    );
    assert_eq!(credit(&s, "4971112345"), dec("10") - cost);
    assert_eq!(cdrs(&s, "1-13708@127.0.0.1", 1)[0]["Cost"], c[0]["Cost"]);
    assert_eq!(metric(&s, "accurate_cdr_writer_total{name=\"stored\"}"), 1);
}

/// The JSON-RPC reply's result (the error must be null).
fn call_json(s: &Server, method: &str, params: Value) -> Value {
    let reply = s.http_call(method, params);
    assert!(reply["error"].is_null(), "{reply}");
    reply["result"].clone()
}

/// `*cdrlog` writes a CDR per balance change of its action list, as
/// CGRateS does (RunID the action, Source `*cdrlog`, ToR the balance
/// type, Cost the units), with the template's fields.
#[test]
fn cdrlog_action_stores_a_cdr() {
    let s = Server::start(&["--tariffplan", &plan_dir()]);
    let r = call(
        &s,
        "APIerSv1.ExecuteAction",
        json!({"Tenant": "cgrates.org", "Account": "1004", "ActionsId": "ACT_REPORT"}),
    );
    assert_eq!(r, json!("OK"));
    assert_eq!(credit(&s, "1004"), dec("15"));
    let mut got = Vec::new();
    wait_until("the *cdrlog CDR", || {
        let r = call(&s, "CDRsV1.GetCDRs", json!({"Sources": ["*cdrlog"]}));
        got = r.as_array().cloned().unwrap_or_default();
        !got.is_empty()
    });
    assert_eq!(got.len(), 1, "{got:?}");
    let c = &got[0];
    assert_eq!(c["RunID"], "*topup", "{c}");
    assert_eq!(c["ToR"], "*monetary");
    assert_eq!(c["RequestType"], "*none");
    assert_eq!(c["Account"], "1004");
    assert_eq!(c["Category"], "topup");
    assert_eq!(Decimal::from_str(&c["Cost"].to_string()).unwrap(), dec("5"));
}

/// `CDRsV1.ProcessCDR` (a CDR's fields) and `CDRsV1.ProcessEvent` (a
/// CGREvent with flags) charge by the request type and store the CDR,
/// once however often they come.
#[test]
fn cdrs_process_cdr_and_event() {
    let s = Server::start(&["--tariffplan", &plan_dir()]);
    for _ in 0..2 {
        let r = call(
            &s,
            "CDRsV1.ProcessCDR",
            json!({"OriginID": "c1", "OriginHost": "10.1.1.1", "RequestType": "*postpaid",
                   "Tenant": "cgrates.org", "Account": "1001", "Destination": "4930555002",
                   "SetupTime": "2026-01-02T10:00:00Z", "AnswerTime": "2026-01-02T10:00:05Z",
                   "Usage": 30 * S}),
        );
        assert_eq!(r, json!("OK"));
    }
    assert_eq!(credit(&s, "1001"), dec("9.70"));
    let c = cdrs(&s, "c1", 1);
    assert_eq!(c[0]["Usage"], json!(30 * S));
    let r = call(
        &s,
        "CDRsV1.ProcessEvent",
        json!({"Flags": ["*rals", "*store"], "Tenant": "cgrates.org",
               "Event": {"OriginID": "e1", "RequestType": "*rated", "Account": "1001",
                         "Destination": "4930555002", "AnswerTime": "2026-01-02T10:00:05Z",
                         "Usage": "1m"}}),
    );
    assert_eq!(r, json!("OK"));
    let c = cdrs(&s, "e1", 1);
    assert_eq!(
        Decimal::from_str(&c[0]["Cost"].to_string()).unwrap(),
        dec("0.6")
    );
    assert_eq!(credit(&s, "1001"), dec("9.70"));
    let r = call(
        &s,
        "CDRsV1.ProcessEvent",
        json!({"Flags": ["*refund"], "Event": {"OriginID": "e2"}}),
    );
    assert!(err(&r).contains("*refund"), "{r}");
}

/// `CDRsV1.ProcessEvent` with `*rerate` rates a stored CDR again from the
/// event as it comes now (here a corrected Usage): the account is given
/// back what it paid and pays the new cost, once however often the
/// re-rate comes, and the stored CDR is replaced; `*rals:false` stores the
/// CDR with the cost it came with and charges nothing.
#[test]
fn cdrs_process_event_rerate_and_rals_off() {
    let s = Server::start(&["--tariffplan", &plan_dir()]);
    let fields = |origin: &str, rt: &str, usage: u64| {
        json!({"OriginID": origin, "OriginHost": "10.1.1.1", "RequestType": rt,
               "Tenant": "cgrates.org", "Account": "1001", "Destination": "4930555002",
               "SetupTime": "2026-01-02T10:00:00Z", "AnswerTime": "2026-01-02T10:00:05Z",
               "Usage": usage * S, "DisconnectCause": "16"})
    };
    let event =
        |flags: Value, ev: Value| json!({"Flags": flags, "Tenant": "cgrates.org", "Event": ev});
    let cost = |c: &Value| Decimal::from_str(&c["Cost"].to_string()).unwrap();
    let r = call(&s, "CDRsV1.ProcessCDR", fields("r1", "*postpaid", 30));
    assert_eq!(r, json!("OK"));
    assert_eq!(credit(&s, "1001"), dec("9.70"));
    let before = cdrs(&s, "r1", 1);
    assert_eq!(before[0]["CostSource"], "*cdrs");

    // The call really lasted 90 s: 0.30 back, 0.90 paid; twice: once.
    for _ in 0..2 {
        let r = call(
            &s,
            "CDRsV1.ProcessEvent",
            event(json!(["*rerate"]), fields("r1", "*postpaid", 90)),
        );
        assert_eq!(r, json!("OK"));
        assert_eq!(credit(&s, "1001"), dec("9.10"));
        let c = cdrs(&s, "r1", 1);
        assert_eq!(c[0]["CGRID"], before[0]["CGRID"]);
        assert_eq!(c[0]["Usage"], json!(90 * S), "{c:?}");
        assert_eq!(cost(&c[0]), dec("0.9"));
        assert_eq!(c[0]["CostSource"], "*cdrs");
    }
    // Without *rerate a stored CDR is kept as it is, nothing charged.
    let r = call(
        &s,
        "CDRsV1.ProcessEvent",
        event(json!(["*rals", "*store"]), fields("r1", "*postpaid", 10)),
    );
    assert_eq!(r, json!("OK"));
    assert_eq!(cdrs(&s, "r1", 1)[0]["Usage"], json!(90 * S));
    assert_eq!(credit(&s, "1001"), dec("9.10"));

    // A *rated CDR re-rated: its price only.
    let r = call(
        &s,
        "CDRsV1.ProcessEvent",
        event(json!(["*rals"]), fields("r2", "*rated", 60)),
    );
    assert_eq!(r, json!("OK"));
    assert_eq!(cost(&cdrs(&s, "r2", 1)[0]), dec("0.6"));
    let r = call(
        &s,
        "CDRsV1.ProcessEvent",
        event(json!(["*rerate:true"]), fields("r2", "*rated", 120)),
    );
    assert_eq!(r, json!("OK"));
    assert_eq!(cost(&cdrs(&s, "r2", 1)[0]), dec("1.2"));
    assert_eq!(credit(&s, "1001"), dec("9.10"));
    // *rerate of a CDR not stored yet rates and stores it.
    let r = call(
        &s,
        "CDRsV1.ProcessEvent",
        event(json!(["*rerate"]), fields("r3", "*postpaid", 10)),
    );
    assert_eq!(r, json!("OK"));
    assert_eq!(cost(&cdrs(&s, "r3", 1)[0]), dec("0.1"));
    assert_eq!(credit(&s, "1001"), dec("9.00"));

    // *rals:false: stored with the cost it came with, or none (-1).
    let mut given = fields("u1", "*postpaid", 60);
    given["Cost"] = json!(0.42);
    given["CostSource"] = json!("*billing");
    let r = call(
        &s,
        "CDRsV1.ProcessEvent",
        event(json!(["*rals:false"]), given),
    );
    assert_eq!(r, json!("OK"));
    let c = cdrs(&s, "u1", 1);
    assert_eq!(cost(&c[0]), dec("0.42"));
    assert_eq!(c[0]["CostSource"], "*billing");
    assert!(c[0]["ExtraFields"].get("Cost").is_none(), "{c:?}");
    let r = call(
        &s,
        "CDRsV1.ProcessEvent",
        event(
            json!(["*rals:false", "*store"]),
            fields("u2", "*postpaid", 60),
        ),
    );
    assert_eq!(r, json!("OK"));
    let c = cdrs(&s, "u2", 1);
    assert_eq!(c[0]["Cost"], json!(-1), "{c:?}");
    assert_eq!(c[0]["Usage"], json!(60 * S));
    assert_eq!(credit(&s, "1001"), dec("9.00"));
    // *rerate turns *rals on again.
    let r = call(
        &s,
        "CDRsV1.ProcessEvent",
        event(
            json!(["*rals:false", "*rerate"]),
            fields("u2", "*postpaid", 60),
        ),
    );
    assert_eq!(r, json!("OK"));
    assert_eq!(cost(&cdrs(&s, "u2", 1)[0]), dec("0.6"));
    assert_eq!(credit(&s, "1001"), dec("8.40"));
}
