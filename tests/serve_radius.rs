//! `accurate serve` with `[[agents.radius]]` against real RADIUS clients:
//! FreeRADIUS's `radclient` (freeradius-utils) and a NAS written with
//! `pyrad` (`tests/peers/radius/nas.py`, which also answers the
//! Disconnect-Requests on its dynamic authorization port). Access-Requests
//! with PAP, CHAP and SIP Digest (RFC 5090 and draft-sterman), the
//! accounting sequence, duplicates, wrong secrets, and disconnects by
//! `ForceDisconnect` and by money running out. Balances and CDRs are
//! compared with the same call made through the SessionSv1 API.
//!
//! A missing peer skips the test with a message naming the package, unless
//! `ACCURATE_REQUIRE_PEERS` is set (then it fails).
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;

use agents::radius::auth::{DigestParams, digest_response};
use serde_json::{Value, json};

mod serve_common;

use serve_common::{Server, WAIT, credit, dec, metric, rpc, wait_until};

const SECRET: &str = "CGRateS.org";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn plan_dir() -> String {
    root()
        .join("tests/data/tariffplans/radius")
        .to_str()
        .unwrap()
        .to_owned()
}

/// Whether `cmd` runs; if not, the test is skipped (or fails under
/// ACCURATE_REQUIRE_PEERS) with `package` named.
fn have(cmd: &[&str], package: &str) -> bool {
    let ok = Command::new(cmd[0])
        .args(&cmd[1..])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        assert!(
            std::env::var_os("ACCURATE_REQUIRE_PEERS").is_none(),
            "serve_radius: {package} is missing and ACCURATE_REQUIRE_PEERS is set"
        );
        eprintln!("serve_radius: skipped, {package} is not installed");
    }
    ok
}

fn config(dynauth_port: u16) -> String {
    format!(
        "[api]\nrpc-tcp = \"127.0.0.1:0\"\nrpc-http = \"127.0.0.1:0\"\n\
         [[agents.radius]]\nauth = \"127.0.0.1:0\"\nacct = \"127.0.0.1:0\"\n\
         [[agents.radius.clients]]\naddress = \"127.0.0.0/8\"\nsecret = \"{SECRET}\"\n\
         dynauth-port = {dynauth_port}\n"
    )
}

fn listener(s: &Server, what: &str) -> String {
    let prefix = format!("listening on {what}:");
    s.seen
        .iter()
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no {what} line: {:?}", s.seen))
        .to_owned()
}

/// One `radclient` run: the attribute lines of the reply, and its code.
fn radclient(server: &str, kind: &str, secret: &str, attrs: &str) -> (String, Vec<String>) {
    let mut child = Command::new("radclient")
        .args(["-x", "-r", "1", "-t", "2", server, kind, secret])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(attrs.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    let mut code = String::from("none");
    let mut lines = Vec::new();
    let mut in_reply = false;
    for l in text.lines() {
        if let Some(rest) = l.strip_prefix("Received ") {
            code = rest.split(' ').next().unwrap_or_default().to_owned();
            in_reply = true;
        } else if l.starts_with('\t') && in_reply {
            lines.push(l.trim().to_owned());
        } else {
            in_reply = false;
        }
    }
    (code, lines)
}

fn nas_dict() -> String {
    root()
        .join("agents/dict/radius/dictionary")
        .to_str()
        .unwrap()
        .to_owned()
}

fn nas_script() -> String {
    root()
        .join("tests/peers/radius/nas.py")
        .to_str()
        .unwrap()
        .to_owned()
}

/// pyrad sends `spec`; one JSON value per reply (`{"timeout": true}` for
/// none).
fn pyrad(server: &str, secret: &str, spec: &Value, timeout: &str) -> Vec<Value> {
    let out = Command::new("python3")
        .args([
            &nas_script(),
            &nas_dict(),
            "send",
            server,
            secret,
            &spec.to_string(),
        ])
        .env("NAS_TIMEOUT", timeout)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The pyrad NAS's dynamic authorization side, killed when dropped.
struct Nas {
    child: Child,
    port: u16,
    lines: mpsc::Receiver<Value>,
}

impl Nas {
    fn start() -> Nas {
        let mut child = Command::new("python3")
            .args([&nas_script(), &nas_dict(), "dynauth", SECRET])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut first = String::new();
        out.read_line(&mut first).unwrap();
        let port = first
            .trim()
            .strip_prefix("listening ")
            .unwrap_or_else(|| panic!("{first:?}"))
            .parse()
            .unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for l in out.lines().map_while(Result::ok) {
                if tx.send(serde_json::from_str(&l).unwrap()).is_err() {
                    break;
                }
            }
        });
        Nas {
            child,
            port,
            lines: rx,
        }
    }

    fn disconnect_request(&self) -> Value {
        self.lines
            .recv_timeout(WAIT)
            .expect("a Disconnect-Request at the NAS")
    }
}

impl Drop for Nas {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn cdrs_of(s: &Server, origin: &str) -> Vec<Value> {
    rpc(s, "CDRsV1.GetCDRs", json!({"OriginIDs": [origin]}))
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn acct_attrs(session: &str, status: &str, time: Option<u32>) -> String {
    let mut a = format!(
        "User-Name = \"1001\", Called-Station-Id = \"4930555002\", Calling-Station-Id = \"1001\", \
         Acct-Session-Id = \"{session}\", Acct-Status-Type = {status}, \
         Cisco-AVPair = \"h323-ivr-out=accurate\", h323-gw-id = \"gw1\""
    );
    if let Some(t) = time {
        a.push_str(&format!(", Acct-Session-Time = {t}"));
    }
    a
}

#[test]
fn radclient_authorizes_and_charges_as_the_session_api_does() {
    if !have(&["radclient", "-v"], "radclient (freeradius-utils)") {
        return;
    }
    let s = Server::start_with(&["--tariffplan", &plan_dir()], Some(&config(3799)));
    let auth = listener(&s, "radius-auth");
    let acct = listener(&s, "radius-acct");
    let base = "User-Name = \"1001\", Called-Station-Id = \"4930555002\"";

    // PAP: 10.00 at 0.01 a second is 1000 s.
    let (code, attrs) = radclient(
        &auth,
        "auth",
        SECRET,
        &format!("{base}, User-Password = \"CGRateSPassword1\""),
    );
    assert_eq!(code, "Access-Accept", "{attrs:?}");
    assert!(
        attrs.contains(&"Session-Timeout = 1000".to_owned()),
        "{attrs:?}"
    );
    let (code, attrs) = radclient(
        &auth,
        "auth",
        SECRET,
        &format!("{base}, User-Password = \"nope\""),
    );
    assert_eq!(code, "Access-Reject");
    assert!(
        attrs.contains(&"Reply-Message = \"AUTHENTICATION_FAILED\"".to_owned()),
        "{attrs:?}"
    );

    // CHAP (radclient computes it from the cleartext), with a
    // Message-Authenticator.
    let (code, attrs) = radclient(
        &auth,
        "auth",
        SECRET,
        &format!("{base}, CHAP-Password = \"CGRateSPassword1\", Message-Authenticator = 0x00"),
    );
    assert_eq!(code, "Access-Accept", "{attrs:?}");
    let (code, _) = radclient(
        &auth,
        "auth",
        SECRET,
        &format!("{base}, CHAP-Password = \"other\""),
    );
    assert_eq!(code, "Access-Reject");

    // SIP Digest as radclient encodes it (draft-sterman: Digest-Response
    // and Digest-Attributes).
    let mut d = DigestParams {
        realm: "example.org".into(),
        nonce: "5c8a4e1f".into(),
        method: "INVITE".into(),
        uri: "sip:4930555002@example.org".into(),
        username: "1001".into(),
        ..DigestParams::default()
    };
    d.response = digest_response(&d, b"CGRateSPassword1");
    let digest = format!(
        "{base}, Digest-Response = \"{}\", Digest-Realm = \"{}\", Digest-Nonce = \"{}\", \
         Digest-Method = \"{}\", Digest-URI = \"{}\"",
        d.response, d.realm, d.nonce, d.method, d.uri
    );
    assert_eq!(radclient(&auth, "auth", SECRET, &digest).0, "Access-Accept");
    let wrong = digest.replace(&d.response, &digest_response(&d, b"guess"));
    assert_eq!(radclient(&auth, "auth", SECRET, &wrong).0, "Access-Reject");
    // 1003's 0.03: authorized for 3 s.
    let (code, attrs) = radclient(
        &auth,
        "auth",
        SECRET,
        "User-Name = \"1003\", Called-Station-Id = \"4930555002\", User-Password = \"CGRateSPassword3\"",
    );
    assert_eq!(code, "Access-Accept");
    assert!(
        attrs.contains(&"Session-Timeout = 3".to_owned()),
        "{attrs:?}"
    );

    // Start, two Interim-Updates, Stop: 62 s.
    for (status, time) in [
        ("Start", None),
        ("Interim-Update", Some(30)),
        ("Interim-Update", Some(50)),
        ("Stop", Some(62)),
    ] {
        let (code, _) = radclient(&acct, "acct", SECRET, &acct_attrs("rc-1", status, time));
        assert_eq!(code, "Accounting-Response", "{status}");
    }
    // The same call through the API, for 1002.
    let ev = |extra: Value| {
        let mut e = json!({"Tenant": "cgrates.org", "Account": "1002", "Subject": "1002",
            "Destination": "4930555002", "OriginID": "api-1", "OriginHost": "127.0.0.1",
            "RequestType": "*prepaid", "ToR": "*voice", "Category": "call"});
        for (k, v) in extra.as_object().unwrap() {
            e[k] = v.clone();
        }
        e
    };
    let call = |m: &str, sw: &str, extra: Value| {
        let r = rpc(
            &s,
            m,
            json!({"Tenant": "cgrates.org", "ID": "x", sw: true, "Event": ev(extra)}),
        );
        assert!(
            !r.as_str().is_some_and(|t| t.starts_with("ERR:")),
            "{m}: {r}"
        );
    };
    call("SessionSv1.InitiateSession", "InitSession", json!({}));
    call(
        "SessionSv1.UpdateSession",
        "UpdateSession",
        json!({"LastUsed": "30s"}),
    );
    call(
        "SessionSv1.UpdateSession",
        "UpdateSession",
        json!({"LastUsed": "20s"}),
    );
    call(
        "SessionSv1.TerminateSession",
        "TerminateSession",
        json!({"Usage": "62s"}),
    );
    let r = rpc(
        &s,
        "SessionSv1.ProcessCDR",
        json!({"Tenant": "cgrates.org", "ID": "x", "Event": ev(json!({"Usage": "62s"}))}),
    );
    assert_eq!(r, json!("OK"));

    assert_eq!(credit(&s, "1001"), dec("9.38"));
    assert_eq!(credit(&s, "1001"), credit(&s, "1002"));
    let mut rad = Vec::new();
    wait_until("the RADIUS call's CDR", || {
        rad = cdrs_of(&s, "rc-1");
        !rad.is_empty()
    });
    let mut api = Vec::new();
    wait_until("the API call's CDR", || {
        api = cdrs_of(&s, "api-1");
        !api.is_empty()
    });
    assert_eq!(rad.len(), 1, "{rad:?}");
    let (r, a) = (&rad[0], &api[0]);
    for k in [
        "Usage",
        "Cost",
        "RequestType",
        "ToR",
        "Destination",
        "Category",
        "Tenant",
    ] {
        assert_eq!(r[k], a[k], "{k}");
    }
    assert_eq!(r["Account"], "1001");
    assert_eq!(r["Source"], "RadiusAgent");
    let extra = &r["ExtraFields"];
    assert_eq!(extra["Calling-Station-Id"], "1001");
    assert_eq!(extra["Cisco-AVPair"], "h323-ivr-out=accurate");
    assert_eq!(extra["h323-gw-id"], "gw1");
    assert!(extra.get("UserPassword").is_none(), "{extra}");
    assert_eq!(
        metric(
            &s,
            &format!(
                "accurate_radius_packets_total{{agent=\"radius:{auth}\",kind=\"access_accept\"}}"
            )
        ),
        4
    );
}

#[test]
fn pyrad_duplicates_wrong_secrets_and_disconnects() {
    if !have(
        &["python3", "-c", "import pyrad"],
        "pyrad (pip install pyrad)",
    ) {
        return;
    }
    let nas = Nas::start();
    let s = Server::start_with(&["--tariffplan", &plan_dir()], Some(&config(nas.port)));
    let auth = listener(&s, "radius-auth");
    let acct = listener(&s, "radius-acct");
    let agent = format!("radius:{auth}");
    let m = |name: &str, label: &str, v: &str| {
        metric(&s, &format!("{name}{{agent=\"{agent}\",{label}=\"{v}\"}}"))
    };
    let call = |session: &str, account: &str, status: &str, time: Option<u32>, copies: u32| {
        let mut attrs = json!({"User-Name": account, "Called-Station-Id": "4930555002",
            "Acct-Session-Id": session, "Acct-Status-Type": status});
        if let Some(t) = time {
            attrs["Acct-Session-Time"] = json!(t);
        }
        pyrad(
            &acct,
            SECRET,
            &json!([{"code": "acct", "attrs": attrs, "copies": copies}]),
            "3",
        )
    };

    // RFC 5090 digest and PAP through pyrad, with Message-Authenticator.
    let mut d = DigestParams {
        realm: "example.org".into(),
        nonce: "n1".into(),
        method: "INVITE".into(),
        uri: "sip:4930555002@example.org".into(),
        username: "1001".into(),
        qop: "auth".into(),
        cnonce: "c1".into(),
        nonce_count: "00000001".into(),
        ..DigestParams::default()
    };
    d.response = digest_response(&d, b"CGRateSPassword1");
    let base = json!({"User-Name": "1001", "Called-Station-Id": "4930555002"});
    let mut dig = base.clone();
    for (k, v) in [
        ("Digest-Response", &d.response),
        ("Digest-Realm", &d.realm),
        ("Digest-Nonce", &d.nonce),
        ("Digest-Method", &d.method),
        ("Digest-URI", &d.uri),
        ("Digest-Qop", &d.qop),
        ("Digest-CNonce", &d.cnonce),
        ("Digest-Nonce-Count", &d.nonce_count),
    ] {
        dig[k] = json!(v);
    }
    let replies = pyrad(
        &auth,
        SECRET,
        &json!([
            {"code": "auth", "attrs": dig, "message_authenticator": true},
            {"code": "auth", "attrs": base, "password": "CGRateSPassword1", "message_authenticator": true, "copies": 2},
            {"code": "auth", "attrs": base, "password": "wrong"},
            {"code": "auth", "attrs": base, "chap": "CGRateSPassword1"},
        ]),
        "3",
    );
    let codes: Vec<&Value> = replies.iter().map(|r| &r["code"]).collect();
    assert_eq!(
        codes,
        [&json!(2), &json!(2), &json!(2), &json!(3), &json!(2)],
        "{replies:?}"
    );
    assert!(
        replies.iter().all(|r| r["verified"] == json!(true)),
        "{replies:?}"
    );
    assert_eq!(
        replies[1], replies[2],
        "the duplicate's answer is the cached one"
    );

    // Wrong secrets: dropped without an answer, and counted.
    let none = pyrad(
        &acct,
        "wrong",
        &json!([{"code": "acct", "attrs": {"User-Name": "1001", "Acct-Session-Id": "w", "Acct-Status-Type": "Start", "Called-Station-Id": "4930555002"}}]),
        "0.5",
    );
    assert_eq!(none, [json!({"timeout": true})]);
    let none = pyrad(
        &auth,
        "wrong",
        &json!([{"code": "auth", "attrs": base, "password": "CGRateSPassword1", "message_authenticator": true}]),
        "0.5",
    );
    assert_eq!(none, [json!({"timeout": true})]);
    assert_eq!(
        m(
            "accurate_radius_dropped_total",
            "reason",
            "bad_authenticator"
        ),
        1
    );
    assert_eq!(
        m(
            "accurate_radius_dropped_total",
            "reason",
            "bad_message_authenticator"
        ),
        1
    );

    // Duplicates: Start and Stop each sent twice, charged once.
    let before = credit(&s, "1001");
    let r = call("dup-1", "1001", "Start", None, 2);
    assert_eq!(r.len(), 2);
    assert_eq!(r[0], r[1]);
    assert_eq!(r[0]["code"], 5);
    let r = call("dup-1", "1001", "Stop", Some(10), 2);
    assert_eq!(r[0], r[1]);
    assert_eq!(credit(&s, "1001"), before - dec("0.10"));
    wait_until("the CDR", || !cdrs_of(&s, "dup-1").is_empty());
    assert_eq!(cdrs_of(&s, "dup-1").len(), 1);
    assert_eq!(
        m(
            "accurate_radius_packets_total",
            "kind",
            "duplicate_answered"
        ),
        3
    );

    // ForceDisconnect: a Disconnect-Request reaches the NAS, which ACKs.
    call("fd-1", "1001", "Start", None, 1);
    let r = rpc(
        &s,
        "SessionSv1.ForceDisconnect",
        json!({"Filters": ["*string:~*req.OriginID:fd-1"]}),
    );
    assert_eq!(r, json!("OK"), "{r}");
    let dr = nas.disconnect_request();
    assert_eq!(dr["code"], 40);
    assert_eq!(dr["verified"], true);
    assert_eq!(dr["attrs"]["Acct-Session-Id"], json!(["fd-1"]));
    assert_eq!(dr["attrs"]["User-Name"], json!(["1001"]));
    wait_until("the ACK counted", || {
        m("accurate_radius_disconnects_total", "kind", "ack") == 1
    });

    // 1003's 0.03 runs out: the session manager disconnects, the NAS
    // stops the call.
    call("low-1", "1003", "Start", None, 1);
    let dr = nas.disconnect_request();
    assert_eq!(dr["attrs"]["Acct-Session-Id"], json!(["low-1"]));
    call("low-1", "1003", "Stop", Some(3), 1);
    assert_eq!(credit(&s, "1003"), dec("0"));
}
