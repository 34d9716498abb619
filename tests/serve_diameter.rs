//! `accurate serve` with `[[agents.diameter]]` against a real Gy client:
//! `tests/peers/diameter/gy_client.py` on python-diameter's codec
//! (`pip install python-diameter`; `scripts/setup.sh` installs it). CER,
//! DWR both ways, CCR INITIAL/UPDATE/TERMINATION/EVENT on the `aaa/`
//! tariff plan; granted units follow the balance, 4012 when the credit is
//! gone, 5030 for an unknown user, 5001 for an unknown mandatory AVP, an
//! ASR when the money runs out and on `ForceDisconnect`, 3010 before the
//! CER, and a peer that drops mid-session. Balances and CDRs equal those
//! of the same call made through the SessionSv1 API.
//!
//! Without python-diameter the test says it is skipped and passes, unless
//! `ACCURATE_REQUIRE_PEERS` is set.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use rust_decimal::Decimal;
use serde_json::{Value, json};

mod serve_common;

use serve_common::{Server, credit, dec, metric, rpc, wait_until};

fn repo(path: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join(path)
        .to_str()
        .unwrap()
        .to_owned()
}

/// Whether python-diameter is importable; skips (or fails under
/// `ACCURATE_REQUIRE_PEERS`) when not.
fn have_client() -> bool {
    let ok = Command::new("python3")
        .args(["-c", "import diameter.message"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        assert!(
            std::env::var_os("ACCURATE_REQUIRE_PEERS").is_none(),
            "serve_diameter: python-diameter is missing and ACCURATE_REQUIRE_PEERS is set"
        );
        eprintln!(
            "serve_diameter: SKIPPED: python3 with python-diameter is not installed \
             (pip install python-diameter; scripts/setup.sh installs it)"
        );
    }
    ok
}

/// One Gy client process (one Diameter connection at a time).
struct Gy {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Gy {
    fn start(addr: &str) -> Gy {
        let mut child = Command::new("python3")
            .arg(repo("tests/peers/diameter/gy_client.py"))
            .arg(addr)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        Gy {
            child,
            stdin,
            stdout,
        }
    }

    fn cmd(&mut self, c: Value) -> Value {
        writeln!(self.stdin, "{c}").unwrap();
        self.stdin.flush().unwrap();
        let mut line = String::new();
        self.stdout.read_line(&mut line).unwrap();
        let v: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line:?}"));
        assert!(v["error"].is_null(), "{c} -> {v}");
        v
    }

    /// Connection `conn` connects and exchanges capabilities.
    fn open(&mut self, conn: &str) {
        let g = self;
        g.cmd(json!({"op": "connect", "conn": conn}));
        let cea = g.cmd(json!({"op": "cer", "conn": conn}));
        assert_eq!(cea["result_code"], 2001, "{cea}");
        assert_eq!(cea["ids_echoed"], true);
        assert_eq!(cea["origin_host"], "accurate.test");
        assert_eq!(cea["auth_application_id"], json!([4]));
        assert_eq!(cea["product_name"], "AccuRate");
        assert!(
            cea["host_ip_address"]
                .as_str()
                .unwrap()
                .contains("127.0.0.1")
        );
    }

    /// A voice CCR of `account` to `+4930123` (written as a SIP URI).
    fn voice(&mut self, session: &str, typ: u32, n: u32, account: &str, extra: Value) -> Value {
        let mut c = json!({"op": "ccr", "session": session, "type": typ, "number": n,
                           "account": account, "called": "sip:+4930123@ims.test;user=phone"});
        for (k, v) in extra.as_object().unwrap() {
            c[k] = v.clone();
        }
        let a = self.cmd(c);
        assert_eq!(a["ids_echoed"], true, "{a}");
        assert_eq!(a["session_id"], session, "{a}");
        a
    }
}

impl Drop for Gy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const CONFIG: &str = r#"
[[agents.diameter]]
listen = "127.0.0.1:0"
origin-host = "accurate.test"
origin-realm = "test"
watchdog-secs = 1
validity-time-secs = 600
"#;

fn start() -> (Server, String) {
    let s = Server::start_with(
        &[
            "--rpc-tcp",
            "127.0.0.1:0",
            "--rpc-http",
            "127.0.0.1:0",
            "--tariffplan",
            &repo("tests/data/tariffplans/aaa"),
        ],
        Some(CONFIG),
    );
    let addr = s
        .seen
        .iter()
        .find_map(|l| l.strip_prefix("listening on diameter:"))
        .unwrap_or_else(|| panic!("no diameter listener: {:?}", s.seen))
        .to_owned();
    (s, addr)
}

/// The CDR of `origin` (its `*default` run).
fn cdr(s: &Server, origin: &str) -> Value {
    let r = rpc(s, "CDRsV1.GetCDRs", json!({"OriginIDs": [origin]}));
    let all = r.as_array().unwrap_or_else(|| panic!("{origin}: {r}"));
    assert_eq!(all.len(), 1, "{origin}: {r}");
    all[0].clone()
}

fn active(s: &Server, origin: &str) -> bool {
    let r = rpc(
        s,
        "SessionSv1.GetActiveSessions",
        json!({"Filters": [format!("*string:~*req.OriginID:{origin}")]}),
    );
    r.as_array().is_some_and(|a| !a.is_empty())
}

/// The event the default request processors build for a voice CCR.
fn api_event(origin: &str, account: &str, extra: Value) -> Value {
    let mut ev = json!({"ToR": "*voice", "OriginID": origin, "OriginHost": "gy-client.test",
        "RequestType": "*prepaid", "Category": "call", "Account": account, "Subject": account,
        "Destination": "+4930123"});
    for (k, v) in extra.as_object().unwrap() {
        ev[k] = v.clone();
    }
    ev
}

fn api(s: &Server, method: &str, switch: Option<&str>, ev: Value) -> Value {
    let mut args = json!({"Tenant": "cgrates.org", "ID": "api", "Event": ev});
    if let Some(sw) = switch {
        args[sw] = json!(true);
    }
    let r = rpc(s, method, args);
    assert!(
        !r.as_str().is_some_and(|t| t.starts_with("ERR")),
        "{method}: {r}"
    );
    r
}

/// The AnswerTime of the CDR of `gy-ORIGIN`.
fn c_answer(s: &Server, origin: &str) -> Value {
    cdr(s, &format!("gy-{origin}"))["AnswerTime"].clone()
}

fn same_cdr(a: &Value, b: &Value) {
    for k in [
        "Account",
        "Subject",
        "Destination",
        "ToR",
        "Usage",
        "Cost",
        "RequestType",
    ] {
        assert_eq!(a[k], b[k], "{k}: {a} vs {b}");
    }
}

#[test]
fn gy_client_charges_like_the_session_api() {
    if !have_client() {
        return;
    }
    let (s, addr) = start();
    let mut g = Gy::start(&addr);
    g.open("main");
    let dwa = g.cmd(json!({"op": "dwr"}));
    assert_eq!(
        (dwa["result_code"].clone(), dwa["ids_echoed"].clone()),
        (json!(2001), json!(true))
    );

    // A voice call: 300 s granted of 1000 s of credit, 120 s used then
    // 30 s more, then the same call through the API.
    let before = credit(&s, "1001");
    let a = g.voice("gy-1", 1, 0, "1001", json!({"time": 300}));
    assert_eq!(a["result_code"], 2001, "{a}");
    assert_eq!(
        (a["cc_request_type"].clone(), a["cc_request_number"].clone()),
        (json!(1), json!(0))
    );
    assert_eq!(a["gsu_cc_time"], 300, "{a}");
    assert!(a.get("final_unit_action").is_none(), "{a}");
    let a = g.voice("gy-1", 2, 1, "1001", json!({"time": 300, "used_time": 120}));
    assert_eq!(
        (a["result_code"].clone(), a["gsu_cc_time"].clone()),
        (json!(2001), json!(300)),
        "{a}"
    );
    assert_eq!(a["cc_request_number"], 1);
    let a = g.voice("gy-1", 3, 2, "1001", json!({"used_time": 30}));
    assert_eq!(a["result_code"], 2001, "{a}");
    assert!(a.get("gsu_cc_time").is_none(), "{a}");
    let gy_cost = before - credit(&s, "1001");

    let before = credit(&s, "1001");
    api(
        &s,
        "SessionSv1.InitiateSession",
        Some("InitSession"),
        api_event("api-1", "1001", json!({"Usage": "300s"})),
    );
    api(
        &s,
        "SessionSv1.UpdateSession",
        Some("UpdateSession"),
        api_event(
            "api-1",
            "1001",
            json!({"Usage": "300s", "LastUsed": "120s"}),
        ),
    );
    // RFC 4006 reports the usage since the last report; the session's
    // end is its total.
    let end = api_event("api-1", "1001", json!({"Usage": "150s"}));
    api(
        &s,
        "SessionSv1.TerminateSession",
        Some("TerminateSession"),
        end.clone(),
    );
    api(&s, "SessionSv1.ProcessCDR", None, end);
    assert_eq!(before - credit(&s, "1001"), gy_cost);
    assert_eq!(gy_cost, dec("1.5"));
    wait_until("both CDRs", || {
        let n = |o: &str| {
            rpc(&s, "CDRsV1.GetCDRs", json!({"OriginIDs": [o]}))
                .as_array()
                .map_or(0, Vec::len)
        };
        n("gy-1") == 1 && n("api-1") == 1
    });
    let (c1, c2) = (cdr(&s, "gy-1"), cdr(&s, "api-1"));
    same_cdr(&c1, &c2);
    assert_eq!(c1["Usage"], json!(150_000_000_000_u64), "{c1}");

    // One-shot charging (EVENT): an SMS and a data burst, then the same
    // through the API (authorization, then the CDR that debits).
    for (origin, units, tor, usage) in [
        ("sms", json!({"units": 1}), "*sms", "1"),
        (
            "burst",
            json!({"octets": 2_500_000_000_u64}),
            "*data",
            "2500000000",
        ),
    ] {
        let before = credit(&s, "1001");
        let a = g.voice(&format!("gy-{origin}"), 4, 0, "1001", units);
        assert_eq!(a["result_code"], 2001, "{a}");
        let gy_cost = before - credit(&s, "1001");
        let before = credit(&s, "1001");
        let ev = json!({"ToR": tor, "Usage": usage, "AnswerTime": c_answer(&s, origin)});
        let id = format!("api-{origin}");
        api(
            &s,
            "SessionSv1.AuthorizeEvent",
            Some("GetMaxUsage"),
            api_event(&id, "1001", ev.clone()),
        );
        api(
            &s,
            "SessionSv1.ProcessCDR",
            None,
            api_event(&id, "1001", ev),
        );
        assert_eq!(before - credit(&s, "1001"), gy_cost, "{origin}");
        let c = cdr(&s, &format!("gy-{origin}"));
        same_cdr(&c, &cdr(&s, &id));
        assert_eq!(c["ToR"], tor);
        if tor == "*data" {
            // 2.5 s worth of units at 0.01 a second, by the second: 0.03
            assert_eq!(gy_cost, dec("0.03"), "{c}");
            assert_eq!(a["gsu_cc_total_octets"], 2_500_000_000_u64, "{a}");
        } else {
            assert_eq!(a["gsu_cc_service_specific_units"], 1, "{a}");
        }
    }

    // Data in a Multiple-Services-Credit-Control: the Rating-Group and
    // the configured Validity-Time come back with the grant.
    let a = g.voice(
        "gy-data",
        1,
        0,
        "1001",
        json!({"mscc": true, "rating_group": 7, "octets": 2_000_000_000_u64}),
    );
    assert_eq!(a["result_code"], 2001, "{a}");
    assert_eq!(a["mscc_rating_group"], 7, "{a}");
    assert_eq!(a["mscc_validity_time"], 600, "{a}");
    assert_eq!(a["mscc_gsu_cc_total_octets"], 2_000_000_000_u64, "{a}");
    let a = g.voice(
        "gy-data",
        3,
        1,
        "1001",
        json!({"mscc": true, "rating_group": 7, "used_octets": 1_000_000_000_u64}),
    );
    assert_eq!(a["result_code"], 2001, "{a}");
    assert_eq!(cdr(&s, "gy-data")["ToR"], "*data");

    // 1003 has 3 s of credit: 3 s granted of 60 asked, marked final; the
    // money runs out and the session manager's disconnect is an ASR.
    let a = g.voice("gy-tiny", 1, 0, "1003", json!({"time": 60}));
    assert_eq!(
        (a["result_code"].clone(), a["gsu_cc_time"].clone()),
        (json!(2001), json!(3)),
        "{a}"
    );
    assert_eq!(a["final_unit_action"], 0, "{a}");
    let asr = g.cmd(json!({"op": "wait_asr", "seconds": 15}));
    assert_eq!(asr["session"], "gy-tiny", "{asr}");
    assert_eq!(asr["auth_application_id"], 4);
    assert_eq!(asr["destination_host"], "gy-client.test");
    let a = g.voice("gy-tiny", 3, 1, "1003", json!({"used_time": 3}));
    assert_eq!(a["result_code"], 2001, "{a}");
    assert_eq!(credit(&s, "1003"), Decimal::ZERO);
    // No credit left: 4012; nobody: 5030.
    let a = g.voice("gy-broke", 1, 0, "1003", json!({"time": 60}));
    assert_eq!(a["result_code"], 4012, "{a}");
    assert!(a.get("gsu_cc_time").is_none(), "{a}");
    let a = g.voice("gy-nobody", 1, 0, "9999", json!({"time": 60}));
    assert_eq!(a["result_code"], 5030, "{a}");
    // An unknown mandatory AVP: 5001 naming it.
    let a = g.voice("gy-m", 1, 0, "1001", json!({"time": 60, "unknown_m": true}));
    assert_eq!(a["result_code"], 5001, "{a}");
    assert_eq!(a["failed_avp_codes"], json!([4242]), "{a}");
    assert!(!active(&s, "gy-m"));

    // ForceDisconnect through JSON-RPC reaches the client as an ASR.
    let a = g.voice("gy-force", 1, 0, "1001", json!({"time": 300}));
    assert_eq!(a["result_code"], 2001, "{a}");
    let r = rpc(
        &s,
        "SessionSv1.ForceDisconnect",
        json!({"Filters": ["*string:~*req.OriginID:gy-force"]}),
    );
    assert_eq!(r, "OK");
    let asr = g.cmd(json!({"op": "wait_asr"}));
    assert_eq!(asr["session"], "gy-force", "{asr}");

    // Silence: AccuRate's watchdog sends a DWR, which the client answers.
    let w = g.cmd(json!({"op": "wait_dwr", "seconds": 5}));
    assert_eq!(w["answered_dwr"], true);

    // A second peer at once, which drops mid-session: its session stays
    // active (charged as reported) until the TTL or a ForceDisconnect ends it.
    g.open("second");
    let a = g.voice(
        "gy-drop",
        1,
        0,
        "1001",
        json!({"time": 300, "conn": "second"}),
    );
    assert_eq!(a["result_code"], 2001, "{a}");
    g.cmd(json!({"op": "drop", "conn": "second"}));
    let a = g.voice("gy-other", 4, 0, "1001", json!({"units": 1}));
    assert_eq!(a["result_code"], 2001, "the first peer still served: {a}");
    assert!(active(&s, "gy-drop"));
    rpc(
        &s,
        "SessionSv1.ForceDisconnect",
        json!({"Filters": ["*string:~*req.OriginID:gy-drop"]}),
    );
    wait_until("the dropped peer's session to end", || {
        !active(&s, "gy-drop")
    });

    // DPR: answered, then the connection closes.
    let a = g.cmd(json!({"op": "dpr"}));
    assert_eq!(a["result_code"], 2001, "{a}");
    assert_eq!(a["closed_after"], true, "{a}");

    // A CCR before any CER: 3010 with the E bit, and the connection closes.
    g.cmd(json!({"op": "connect", "conn": "early"}));
    let a = g.cmd(
        json!({"op": "raw_ccr_before_cer", "conn": "early", "session": "gy-early",
                         "type": 1, "account": "1001", "time": 10}),
    );
    assert_eq!(a["result_code"], 3010, "{a}");
    assert_eq!(a["error_bit"], true, "{a}");
    assert_eq!(a["closed_after"], true, "{a}");
    assert!(!active(&s, "gy-early"));

    // The counters: seven INITIALs reached credit control (the 5001 and
    // the 3010 ones were refused before), one 4012, two ASRs sent (the
    // dropped peer's could not be).
    assert_eq!(
        metric(&s, "accurate_diameter_ccr_total{type=\"initial\"}"),
        7
    );
    assert_eq!(
        metric(&s, "accurate_diameter_cca_total{result=\"4xxx\"}"),
        1
    );
    assert_eq!(
        metric(&s, "accurate_diameter_cca_total{result=\"5xxx\"}"),
        1
    );
    assert_eq!(metric(&s, "accurate_diameter_refused_total"), 2);
    assert_eq!(metric(&s, "accurate_diameter_asr_total"), 2);
}

/// Request processors and an extra dictionary from the configuration:
/// the IMSI is the account, an authorization only, and vendor 99999's
/// AVP 4242 is known (no 5001) and readable by the templates; a DPR to
/// the peer when the server stops.
#[test]
fn configured_processors_and_dictionaries() {
    if !have_client() {
        return;
    }
    let dir = serve_common::temp_data_dir();
    std::fs::create_dir_all(&dir).unwrap();
    let dict = dir.join("vendor.dict");
    std::fs::write(
        &dict,
        "vendor 99999 Test\navp 4242 99999 OctetString M Test-Tag\n",
    )
    .unwrap();
    let config = format!(
        r#"
[[agents.diameter]]
listen = "127.0.0.1:0"
origin-host = "accurate.test"
origin-realm = "test"
dictionaries = [{dict:?}]

[[agents.diameter.request-processors]]
id = "imsi_auth"
filters = ["*string:~*vars.*cmd:CCR", "*string:~*req.CC-Request-Type:1", "*string:~*req.Test-Tag:what"]
flags = ["*authorize", "*accounts"]
request_fields = [
  {{ path = "*cgreq.ToR", type = "*constant", value = "*voice" }},
  {{ path = "*cgreq.OriginID", type = "*variable", value = "~*req.Session-Id", mandatory = true }},
  {{ path = "*cgreq.RequestType", type = "*constant", value = "*prepaid" }},
  {{ path = "*cgreq.Category", type = "*constant", value = "call" }},
  {{ path = "*cgreq.Account", type = "*variable", value = "~*req.Subscription-Id.Subscription-Id-Data[~Subscription-Id-Type(1)]", mandatory = true }},
  {{ path = "*cgreq.Subject", type = "*variable", value = "~*cgreq.Account" }},
  {{ path = "*cgreq.Destination", type = "*constant", value = "+4930123" }},
  {{ path = "*cgreq.Usage", type = "*variable", value = "~*req.Requested-Service-Unit.CC-Time;s" }},
]
reply_fields = [
  {{ path = "*rep.Granted-Service-Unit.CC-Time", type = "*variable", value = "~*cgrep.MaxUsage{{*duration_seconds}}", filters = ["*string:~*vars.Result-Code:2001"] }},
]
"#,
        dict = dict.to_str().unwrap()
    );
    let mut s = Server::start_with(
        &[
            "--rpc-tcp",
            "127.0.0.1:0",
            "--rpc-http",
            "127.0.0.1:0",
            "--tariffplan",
            &repo("tests/data/tariffplans/aaa"),
        ],
        Some(&config),
    );
    let addr = s
        .seen
        .iter()
        .find_map(|l| l.strip_prefix("listening on diameter:"))
        .unwrap()
        .to_owned();
    let mut g = Gy::start(&addr);
    g.open("main");
    let before = credit(&s, "1001");
    let a = g.voice(
        "imsi-1",
        1,
        0,
        "4930555",
        json!({"imsi": "1001", "time": 60, "unknown_m": true}),
    );
    assert_eq!(
        (a["result_code"].clone(), a["gsu_cc_time"].clone()),
        (json!(2001), json!(60)),
        "{a}"
    );
    let a = g.voice(
        "imsi-3",
        1,
        0,
        "4930555",
        json!({"imsi": "1003", "time": 60, "unknown_m": true}),
    );
    assert_eq!(
        (a["result_code"].clone(), a["gsu_cc_time"].clone()),
        (json!(2001), json!(3)),
        "{a}"
    );
    // An authorization only: no session, nothing debited.
    assert!(!active(&s, "imsi-1"));
    assert_eq!(credit(&s, "1001"), before);
    // No processor takes a request without the tag: 5012.
    let a = g.voice(
        "imsi-x",
        1,
        0,
        "4930555",
        json!({"imsi": "1001", "time": 60}),
    );
    assert_eq!(a["result_code"], 5012, "{a}");
    // Stopping: each peer gets a DPR (REBOOTING).
    let (status, _) = s.signal("-TERM");
    assert!(status.success(), "{status}");
    let dpr = g.cmd(json!({"op": "wait_dpr"}));
    assert_eq!(dpr["disconnect_cause"], 0, "{dpr}");
    drop(g);
    let _ = std::fs::remove_dir_all(&dir);
}
