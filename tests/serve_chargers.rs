//! ChargerS and derived charging in `accurate serve`
//! (`tests/data/tariffplans/chargers/`): every call becomes the customer's
//! `*default` run (0.01 a second to `49`), the supplier's run (an
//! attribute profile makes `supplier1` pay 0.005 a second) and a `*raw`
//! run nobody pays (Cost -1): three CDRs of one CGRID, two accounts
//! debited. Over the API on SQLite and PostgreSQL, and for a passive call
//! fed as HEP.
#![allow(missing_docs, clippy::unwrap_used)]

use std::path::PathBuf;
use std::str::FromStr;
use std::time::SystemTime;

use capture::Timestamp;
use capture::hep::decode;
use rust_decimal::Decimal;
use serde_json::{Value, json};

mod common;
mod serve_common;

use serve_common::{
    PgSchema, Server, credit, dec, err, hep_udp_addr, metric, restamp_hep, rpc as call, send_udp,
    wait_until,
};

fn plan_dir() -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/tariffplans/chargers")
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

fn cost(c: &Value) -> Decimal {
    Decimal::from_str(&c["Cost"].to_string()).unwrap()
}

/// A flattened CGREvent with `flags` set.
fn ev(flags: Value, origin: &str, rt: &str, usage: &str) -> Value {
    let mut a = flags;
    a["Tenant"] = json!("cgrates.org");
    a["ID"] = json!(format!("ev-{origin}"));
    a["Event"] = json!({
        "OriginID": origin, "OriginHost": "10.0.0.1", "Account": "1001",
        "Destination": "4930123", "RequestType": rt, "Usage": usage,
    });
    a
}

const S: u64 = 1_000_000_000;

fn scenario(s: &Server) {
    // The service and the profiles.
    assert_eq!(call(s, "ChargerSv1.Ping", json!({})), json!("Pong"));
    let ids = call(
        s,
        "APIerSv1.GetChargerProfileIDs",
        json!({"Tenant": "cgrates.org"}),
    );
    assert_eq!(ids, json!(["CRG_CUSTOMER", "CRG_RAW", "CRG_SUPPLIER"]));
    let p = call(
        s,
        "APIerSv1.GetChargerProfile",
        json!({"Tenant": "cgrates.org", "ID": "CRG_SUPPLIER"}),
    );
    assert_eq!(p["RunID"], "supplier", "{p}");
    assert_eq!(p["AttributeIDs"], json!(["ATTR_SUPPLIER"]));
    assert_eq!(p["FilterIDs"], json!(["*prefix:~*req.Destination:49"]));
    let r = call(s, "APIerSv1.GetChargerProfile", json!({"ID": "NOPE"}));
    assert_eq!(err(&r), "NOT_FOUND");
    let e = json!({"Tenant": "cgrates.org", "ID": "x",
                   "Event": {"Account": "1001", "Destination": "4930", "RequestType": "*prepaid"}});
    let got = call(s, "ChargerSv1.GetChargersForEvent", e.clone());
    let ids: Vec<&str> = got
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["ID"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["CRG_CUSTOMER", "CRG_SUPPLIER", "CRG_RAW"]);
    let runs = call(s, "ChargerSv1.ProcessEvent", e);
    let runs = runs.as_array().unwrap();
    assert_eq!(runs.len(), 3, "{runs:?}");
    assert_eq!(runs[1]["ChargerSProfile"], "CRG_SUPPLIER");
    assert_eq!(runs[1]["AttributeSProfiles"], json!(["ATTR_SUPPLIER"]));
    assert_eq!(runs[1]["CGREvent"]["Event"]["Subject"], "supplier1");
    assert_eq!(runs[1]["CGREvent"]["Event"]["RunID"], "supplier");
    assert_eq!(runs[1]["AlteredFields"][0], "*req.RunID");
    assert_eq!(runs[2]["CGREvent"]["Event"]["RequestType"], "*none");
    let other = json!({"Tenant": "other.org", "Event": {"Account": "1"}});
    assert_eq!(err(&call(s, "ChargerSv1.ProcessEvent", other)), "NOT_FOUND");
    assert_eq!(
        err(&call(
            s,
            "ChargerSv1.ProcessEvent",
            json!({"Tenant": "cgrates.org"})
        )),
        "MANDATORY_IE_MISSING: [Event]"
    );

    // GetAttributes: the event AttributeS (`*sessions`) changed is the
    // one charged, in every run; without it the alias has no account.
    let mut a = ev(
        json!({"GetAttributes": true, "GetMaxUsage": true}),
        "c0",
        "*prepaid",
        "2000s",
    );
    a["Event"]["Account"] = json!("alias1001");
    let r = call(s, "SessionSv1.AuthorizeEvent", a.clone());
    assert_eq!(
        r["Attributes"]["MatchedProfiles"],
        json!(["ATTR_ALIAS"]),
        "{r}"
    );
    assert_eq!(r["Attributes"]["AlteredFields"], json!(["*req.Account"]));
    assert_eq!(r["Attributes"]["CGREvent"]["Event"]["Account"], "1001");
    assert_eq!(r["MaxUsage"], json!(1000 * S), "{r}");
    a["GetAttributes"] = json!(false);
    let r = call(s, "SessionSv1.AuthorizeEvent", a);
    assert!(err(&r).starts_with("RALS_ERROR:"), "{r}");
    // Resources, routes: no Resources.csv/Routes.csv in this plan.
    let r = call(
        s,
        "SessionSv1.AuthorizeEvent",
        ev(json!({"AuthorizeResources": true}), "c0", "*prepaid", "1s"),
    );
    assert_eq!(err(&r), "NOT_CONNECTED: ResourceS");

    // Authorize: 10.00 pays the customer 1000 s; the supplier's run is
    // postpaid and the raw one not charged: the least is the customer's.
    let r = call(
        s,
        "SessionSv1.AuthorizeEvent",
        ev(json!({"GetMaxUsage": true}), "c1", "*prepaid", "2000s"),
    );
    assert_eq!(r["MaxUsage"], json!(1000 * S), "{r}");

    // A prepaid call: three sessions, one per run.
    let r = call(
        s,
        "SessionSv1.InitiateSession",
        ev(json!({"InitSession": true}), "c1", "*prepaid", "60s"),
    );
    assert_eq!(r["MaxUsage"], json!(60 * S), "{r}");
    let active = call(s, "SessionSv1.GetActiveSessions", json!({}));
    let mut runs: Vec<&str> = active
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["RunID"].as_str().unwrap())
        .collect();
    runs.sort_unstable();
    assert_eq!(runs, ["*default", "*raw", "supplier"]);
    // Reserved from the customer only (the supplier pays at the end).
    assert_eq!(credit(s, "1001"), dec("9.40"));
    assert_eq!(credit(s, "supplier1"), dec("10"));
    let r = call(
        s,
        "SessionSv1.TerminateSession",
        ev(json!({"TerminateSession": true}), "c1", "*prepaid", "45s"),
    );
    assert_eq!(r, json!("OK"));
    // Answered once every run's CDR is stored.
    let c = cdrs(s, "c1", 3);
    let runs: Vec<&str> = c.iter().map(|c| c["RunID"].as_str().unwrap()).collect();
    assert_eq!(runs, ["*default", "*raw", "supplier"]);
    assert!(c.iter().all(|x| x["CGRID"] == c[0]["CGRID"]), "{c:?}");
    assert_eq!(cost(&c[0]), dec("0.45"));
    assert_eq!(c[0]["Account"], "1001");
    assert_eq!(c[1]["RequestType"], "*none");
    assert_eq!(cost(&c[1]), dec("-1"));
    assert_eq!(c[2]["Account"], "supplier1");
    assert_eq!(c[2]["Subject"], "supplier1");
    assert_eq!(c[2]["RequestType"], "*postpaid");
    assert_eq!(cost(&c[2]), dec("0.225"));
    assert!(c.iter().all(|x| x["ExtraFields"].get("RunID").is_none()));
    assert_eq!(credit(s, "1001"), dec("9.55"));
    assert_eq!(credit(s, "supplier1"), dec("9.775"));
    // A repeated terminate debits nothing more and stores nothing new.
    let r = call(
        s,
        "SessionSv1.TerminateSession",
        ev(json!({"TerminateSession": true}), "c1", "*prepaid", "45s"),
    );
    assert_eq!(r, json!("OK"));
    assert_eq!(credit(s, "1001"), dec("9.55"));
    assert_eq!(credit(s, "supplier1"), dec("9.775"));
    cdrs(s, "c1", 3);

    // A finished call through the CDR server: its runs too.
    let mut cdr = ev(json!({}), "c2", "*postpaid", "10s")["Event"].clone();
    cdr["Tenant"] = json!("cgrates.org");
    cdr["AnswerTime"] = json!("2026-01-07T17:00:00Z");
    assert_eq!(call(s, "CDRsV1.ProcessCDR", cdr), json!("OK"));
    let c = cdrs(s, "c2", 3);
    assert_eq!(cost(&c[0]), dec("0.10"));
    assert_eq!(cost(&c[1]), dec("-1"));
    assert_eq!(cost(&c[2]), dec("0.05"));
    assert_eq!(credit(s, "1001"), dec("9.45"));
    assert_eq!(credit(s, "supplier1"), dec("9.725"));

    // CDRsV1.ProcessEvent's *chargers flag: accepted, the same runs.
    let mut a = ev(
        json!({"Flags": ["*chargers", "*rals"]}),
        "c3",
        "*postpaid",
        "20s",
    );
    a["Event"]["AnswerTime"] = json!("2026-01-07T17:00:00Z");
    assert_eq!(call(s, "CDRsV1.ProcessEvent", a), json!("OK"));
    let c = cdrs(s, "c3", 3);
    assert_eq!(cost(&c[0]), dec("0.20"));
    assert_eq!(cost(&c[2]), dec("0.10"));

    // SessionSv1.ProcessEvent: *attributes then *rals:*initiate, the
    // alias's runs started as 1001's.
    let mut a = ev(
        json!({"Flags": ["*attributes", "*rals:*initiate"]}),
        "c4",
        "*prepaid",
        "30s",
    );
    a["Event"]["Account"] = json!("alias1001");
    let r = call(s, "SessionSv1.ProcessEvent", a);
    assert_eq!(r["MaxUsage"], json!(30 * S), "{r}");
    assert_eq!(r["Attributes"]["MatchedProfiles"], json!(["ATTR_ALIAS"]));
    assert_eq!(credit(s, "1001"), dec("8.95"));
    let n = call(s, "SessionSv1.GetActiveSessionsCount", json!({}));
    assert_eq!(n, json!(3));
}

#[test]
fn derived_charging_over_the_api_on_sqlite() {
    let s = Server::start(&["--tariffplan", &plan_dir()]);
    scenario(&s);
}

#[test]
fn derived_charging_over_the_api_on_postgres() {
    let pgs = PgSchema::new("serve_chargers");
    let url = pgs.url.clone();
    let s = Server::start(&["--tariffplan", &plan_dir(), "--cdr-db", &url]);
    scenario(&s);
    drop(s);
    pgs.drop_schema();
}

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

const CONFIG: &str = "[api]\nrpc-tcp = \"127.0.0.1:0\"\nrpc-http = \"127.0.0.1:0\"\n\
                      [mapping]\nrequest-type = \"*postpaid\"\n";

/// A passive call (HEP of a real capture, `[mapping]` postpaid): its
/// mapped event goes through AttributeS and ChargerS like an API call's:
/// the caller's CDR, the supplier's and the raw one, each charged by its
/// own request type, the two accounts debited once.
#[test]
fn derived_charging_of_a_passive_call() {
    let s = Server::start_with(
        &["--hep", "udp:127.0.0.1:0", "--tariffplan", &plan_dir()],
        Some(CONFIG),
    );
    let udp = hep_udp_addr(&s);
    let hep = call_hep("early-media-183.pcap");
    let bye = hep.iter().position(|h| is_bye(h)).unwrap();
    let hep = restamp_hep(&hep, SystemTime::now());
    send_udp(&udp, &hep[..bye]);
    // Answered: one session per run.
    wait_until("the answer", || {
        call(&s, "SessionSv1.GetActiveSessionsCount", json!({})) == json!(3)
    });
    send_udp(&udp, &hep[bye..]);
    let c = cdrs(&s, "1-13708@127.0.0.1", 3);
    let runs: Vec<&str> = c.iter().map(|c| c["RunID"].as_str().unwrap()).collect();
    assert_eq!(runs, ["*default", "*raw", "supplier"]);
    assert!(c.iter().all(|x| x["CGRID"] == c[0]["CGRID"]), "{c:?}");
    assert_eq!(c[0]["Account"], "4971112345");
    assert_eq!(c[0]["RequestType"], "*postpaid");
    assert_eq!(c[1]["RequestType"], "*none");
    assert_eq!(cost(&c[1]), dec("-1"));
    assert_eq!(c[2]["Account"], "supplier1");
    assert_eq!(c[2]["Subject"], "supplier1");
    // AttributeS (`*sessions`) ran before ChargerS: every run has its tag.
    assert!(
        c.iter()
            .all(|x| x["ExtraFields"]["Tag"] == "seen-on-the-wire"),
        "{c:?}"
    );
    // The same usage, the supplier's rate half the customer's.
    assert_eq!(c[0]["Usage"], c[2]["Usage"]);
    let customer = cost(&c[0]);
    assert!(customer > Decimal::ZERO, "{c:?}");
    assert_eq!(cost(&c[2]), customer / dec("2"));
    wait_until("the debits", || {
        credit(&s, "4971112345") == dec("10") - customer
            && credit(&s, "supplier1") == dec("10") - customer / dec("2")
    });
    assert_eq!(metric(&s, "accurate_cdrs_total"), 1);
    assert_eq!(metric(&s, "accurate_cdr_writer_total{name=\"stored\"}"), 3);
    assert_eq!(
        call(&s, "SessionSv1.GetActiveSessionsCount", json!({})),
        json!(0)
    );
}

/// A passive call's runs survive a restart between its answer and its
/// BYE: the three sessions are restored (each its own `s:` key with its
/// run), the BYE after the restart ends them all, each charged once.
#[test]
fn passive_runs_survive_a_restart() {
    let data = serve_common::temp_data_dir();
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
        Server::start_with(&args, Some(CONFIG))
    };
    let s = start(true);
    let hep = call_hep("early-media-183.pcap");
    let bye = hep.iter().position(|h| is_bye(h)).unwrap();
    let hep = restamp_hep(&hep, SystemTime::now());
    send_udp(&hep_udp_addr(&s), &hep[..bye]);
    let count = |s: &Server| call(s, "SessionSv1.GetActiveSessionsCount", json!({}));
    wait_until("the answer", || count(&s) == json!(3));
    let mut s = s;
    s.signal("-TERM");
    drop(s);
    let s = start(false);
    for line in ["restored 3 active sessions", "restored 1 calls in progress"] {
        assert!(s.seen.iter().any(|l| l == line), "{:?}", s.seen);
    }
    assert_eq!(count(&s), json!(3));
    send_udp(&hep_udp_addr(&s), &hep[bye..]);
    let c = cdrs(&s, "1-13708@127.0.0.1", 3);
    wait_until("the end", || count(&s) == json!(0));
    let customer = cost(&c[0]);
    assert!(customer > Decimal::ZERO, "{c:?}");
    assert_eq!(cost(&c[1]), dec("-1"));
    assert_eq!(cost(&c[2]), customer / dec("2"));
    assert_eq!(credit(&s, "4971112345"), dec("10") - customer);
    assert_eq!(credit(&s, "supplier1"), dec("10") - customer / dec("2"));
    drop(s);
    let _ = std::fs::remove_dir_all(&data);
}

/// A TCP relay to `to` the test can cut (the CDR database going away).
struct Relay {
    port: u16,
    closed: std::sync::Arc<std::sync::atomic::AtomicBool>,
    conns: std::sync::Arc<std::sync::Mutex<Vec<std::net::TcpStream>>>,
}

impl Relay {
    fn start(to: &str) -> Relay {
        use std::sync::atomic::Ordering;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let relay = Relay {
            port,
            closed: std::sync::Arc::default(),
            conns: std::sync::Arc::default(),
        };
        let (c, k, to) = (
            std::sync::Arc::clone(&relay.closed),
            std::sync::Arc::clone(&relay.conns),
            to.to_owned(),
        );
        std::thread::spawn(move || {
            while !c.load(Ordering::SeqCst) {
                let Ok((a, _)) = listener.accept() else {
                    std::thread::sleep(std::time::Duration::from_millis(5));
                    continue;
                };
                a.set_nonblocking(false).unwrap();
                let b = std::net::TcpStream::connect(&to).unwrap();
                k.lock()
                    .unwrap()
                    .extend([a.try_clone().unwrap(), b.try_clone().unwrap()]);
                pump(a.try_clone().unwrap(), b.try_clone().unwrap());
                pump(b, a);
            }
        });
        relay
    }

    fn close(&self) {
        self.closed.store(true, std::sync::atomic::Ordering::SeqCst);
        std::thread::sleep(std::time::Duration::from_millis(50));
        for c in self.conns.lock().unwrap().drain(..) {
            let _ = c.shutdown(std::net::Shutdown::Both);
        }
    }
}

fn pump(mut from: std::net::TcpStream, mut to: std::net::TcpStream) {
    use std::io::{Read, Write};
    std::thread::spawn(move || {
        let mut buf = [0u8; 16 * 1024];
        while let Ok(n) = from.read(&mut buf) {
            if n == 0 || to.write_all(&buf[..n]).is_err() {
                break;
            }
        }
        let _ = to.shutdown(std::net::Shutdown::Both);
    });
}

/// The CDR database goes away as a passive call with three runs ends:
/// every run is charged, none of their CDRs can be stored, the server
/// stops (exit 75) keeping each run's saved end; the next start finishes
/// each run from its own end: three CDRs, and no account debited twice.
#[test]
fn passive_runs_whose_cdrs_could_not_be_stored_are_finished_at_the_next_start() {
    const CDR_CONFIG: &str = "[api]\nrpc-tcp = \"127.0.0.1:0\"\nrpc-http = \"127.0.0.1:0\"\n\
                              [cdrs]\nbatch-size = 1\nflush-interval-ms = 1\n\
                              [mapping]\nrequest-type = \"*postpaid\"\n";
    let pgs = PgSchema::new("serve_chargers_cut");
    let db_host = pgs
        .base
        .split_once('@')
        .and_then(|(_, rest)| rest.split_once('/'))
        .map(|(host, _)| host.to_owned())
        .unwrap();
    let relay = Relay::start(&db_host);
    let direct = pgs.url.clone();
    let relayed = direct.replace(&db_host, &format!("127.0.0.1:{}", relay.port));
    let data = serve_common::temp_data_dir();
    let data_arg = data.to_str().unwrap();
    let mut s = Server::start_with(
        &[
            "--hep",
            "udp:127.0.0.1:0",
            "--tariffplan",
            &plan_dir(),
            "--cdr-db",
            &relayed,
            "--data-dir",
            data_arg,
        ],
        Some(CDR_CONFIG),
    );
    // The writer has its connection before the database goes away.
    wait_until("the CDR database", || {
        call(&s, "CDRsV1.GetCDRsCount", json!({})).is_number()
    });
    relay.close();
    let hep = restamp_hep(&call_hep("early-media-183.pcap"), SystemTime::now());
    send_udp(&hep_udp_addr(&s), &hep);
    wait_until("the three CDRs submitted", || {
        metric(&s, "accurate_cdr_writer_total{name=\"submitted\"}") == 3
    });
    let (customer, supplier) = (credit(&s, "4971112345"), credit(&s, "supplier1"));
    assert!(customer < dec("10") && supplier < dec("10"));
    let (status, lines) = s.signal("-TERM");
    assert_eq!(status.code(), Some(75), "{lines:?}");
    assert!(
        lines.iter().any(|l| l == "serve: cdrs_abandoned: 3"),
        "{lines:?}"
    );
    drop(s);

    let s = Server::start_with(
        &["--cdr-db", &direct, "--data-dir", data_arg],
        Some(CDR_CONFIG),
    );
    let c = cdrs(&s, "1-13708@127.0.0.1", 3);
    let runs: Vec<&str> = c.iter().map(|c| c["RunID"].as_str().unwrap()).collect();
    assert_eq!(runs, ["*default", "*raw", "supplier"]);
    assert_eq!(dec("10") - cost(&c[0]), customer);
    assert_eq!(dec("10") - cost(&c[2]), supplier);
    assert_eq!(cost(&c[1]), dec("-1"));
    assert_eq!(credit(&s, "4971112345"), customer);
    assert_eq!(credit(&s, "supplier1"), supplier);
    drop(s);
    let _ = std::fs::remove_dir_all(&data);
    pgs.drop_schema();
}
