//! `accurate serve --kamailio-evapi` against a Kamailio evapi written
//! here (a TCP listener speaking netstrings): the messages are the shapes
//! CGRateS's tutorial script sends, the answers read as its routes read
//! them; the agent reconnects when Kamailio drops it.
#![allow(clippy::unwrap_used, dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use agents::evapi::netstring::{Decoded, decode, encode};
use serde_json::{Value, json};

mod serve_common;

use serve_common::{Server, credit, dec, err, rpc, wait_until};

fn plan_dir() -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/tariffplans/sessions")
        .to_str()
        .unwrap()
        .to_owned()
}

/// The fake Kamailio's side of one evapi connection.
struct Evapi {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Evapi {
    /// Waits for AccuRate to connect.
    fn accept(l: &TcpListener) -> Evapi {
        l.set_nonblocking(true).unwrap();
        let end = Instant::now() + Duration::from_secs(30);
        loop {
            match l.accept() {
                Ok((stream, _)) => {
                    stream.set_nonblocking(false).unwrap();
                    stream
                        .set_read_timeout(Some(Duration::from_secs(30)))
                        .unwrap();
                    return Evapi {
                        stream,
                        buf: Vec::new(),
                    };
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    assert!(Instant::now() < end, "AccuRate did not connect");
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(e) => panic!("{e}"),
            }
        }
    }

    fn send(&mut self, json: &str) {
        self.stream.write_all(&encode(json.as_bytes())).unwrap();
    }

    /// The next message AccuRate sends.
    fn recv(&mut self) -> Value {
        loop {
            if let Decoded::Frame { payload, consumed } = decode(&self.buf, 1 << 20).unwrap() {
                let v = serde_json::from_slice(payload).unwrap();
                self.buf.drain(..consumed);
                return v;
            }
            let mut chunk = [0u8; 4096];
            let n = self.stream.read(&mut chunk).unwrap();
            assert!(n > 0, "AccuRate closed the evapi connection");
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}

fn epoch() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// CGRATES_SESSIONAUTH_REQUEST as the tutorial writes it (no `OriginID`:
/// an authorization needs none, as in CGRateS), `cgr_flags` reduced to
/// what this server answers without profiles.
fn auth(tr_index: u32) -> String {
    format!(
        "{{\"event\":\"CGR_AUTH_REQUEST\",\n\t\t\"tr_index\":\"{tr_index}\",\n\t\t\"tr_label\":\"77\",\n\t\t\"cgr_flags\":\"*accounts\",\n\t\t\"reply_route\":\"CGR_SESSIONAUTH_REPLY\",\n\t\t\"RequestType\":\"*prepaid\",\n\t\t\"Account\":\"1001\",\n\t\t\"Destination\":\"4930555002\",\n\t\t\"Usage\":\"120\",\n\t\t\"SetupTime\":\"{}\"}}",
        epoch()
    )
}

/// The tutorial's CGR_DLG_LIST_REPLY around a `dlg.list` result of these
/// (Call-ID, From tag) dialogs.
fn dlg_list_reply(dialogs: &[(&str, &str)]) -> String {
    let result: Vec<Value> = dialogs
        .iter()
        .map(|(ci, tag)| json!({"h_entry": 9, "h_id": 2, "call-id": ci, "caller": {"tag": tag}, "variables": []}))
        .collect();
    format!(
        "{{\"event\":\"CGR_DLG_LIST_REPLY\",\n\t\t\t\"jsonrpl_body\":{}}}",
        json!({"jsonrpc": "2.0", "result": result, "id": 1})
    )
}

#[test]
fn tutorial_messages_over_evapi_and_a_reconnect() {
    let kam = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = kam.local_addr().unwrap().to_string();
    let s = Server::start(&["--tariffplan", &plan_dir(), "--kamailio-evapi", &addr]);
    let mut k = Evapi::accept(&kam);
    // The session sync asks for the dialogs at once.
    assert_eq!(k.recv(), json!({"Event": "CGR_DLG_LIST"}));
    k.send(&dlg_list_reply(&[]));

    // Authorization: the reply route, the transaction echoed, every key,
    // MaxUsage in whole seconds.
    k.send(&auth(2112));
    let r = k.recv();
    assert_eq!(r["Event"], "CGR_SESSIONAUTH_REPLY", "{r}");
    assert_eq!(r["TransactionIndex"], "2112");
    assert_eq!(r["TransactionLabel"], "77");
    assert_eq!(r["MaxUsage"], json!(120), "{r}");
    assert_eq!(r["Error"], "");
    for key in [
        "Attributes",
        "ResourceAllocation",
        "Suppliers",
        "Routes",
        "Thresholds",
        "StatQueues",
    ] {
        assert_eq!(r[key], "", "{key} in {r}");
    }

    // A call: started, then ended by v0.10's CALL_END (stray quote and all).
    let t0 = epoch();
    k.send(&format!(
        "{{\"event\":\"CGR_CALL_START\",\n\t\t\"h_entry\":\"3287\",\n\t\t\"h_id\":\"27845\",\n\t\t\"cgr_flags\":\"*accounts\",\n\t\t\"OriginID\":\"evc1@10.0.0.1;ft1\",\n\t\t\"RequestType\":\"*prepaid\",\n\t\t\"Tenant\":\"cgrates.org\",\n\t\t\"Account\":\"1001\",\n\t\t\"Destination\":\"4930555002\",\n\t\t\"SetupTime\":\"{t0}\",\n\t\t\"AnswerTime\":\"{t0}\"}}"
    ));
    wait_until("the session started", || {
        rpc(&s, "SessionSv1.GetActiveSessionsCount", json!({})) == json!(1)
    });
    k.send(&format!(
        "{{\"event\":\"CGR_CALL_END\",\n\t\t\"cgr_flags\":\"*accounts\",\n\t\t\"OriginID\":\"evc1@10.0.0.1;ft1\",\n\t\t\"RequestType\":\"*prepaid\",\n\t\t\"Tenant\":\"cgrates.org\",\n\t\t\"Account\":\"1001\", \n\t\t\"Destination\":\"4930555002\",\n\t\t\"AnswerTime\":\"{t0}\",\n\t\t\"PaypalAccount\":\"\",\n\t\t\"SetupTime\":\"{t0}\",\n\t\t\"Usage\":\"50\",\n\t\t\"Supplier\":\"\"\"}}"
    ));
    let mut cdrs = Vec::new();
    wait_until("the call's CDR", || {
        let r = rpc(
            &s,
            "CDRsV1.GetCDRs",
            json!({"OriginIDs": ["evc1@10.0.0.1;ft1"]}),
        );
        cdrs = r.as_array().cloned().unwrap_or_default();
        !cdrs.is_empty()
    });
    assert_eq!(cdrs.len(), 1, "{cdrs:?}");
    assert_eq!(cdrs[0]["Usage"], json!(50_000_000_000_u64), "{cdrs:?}");
    assert_eq!(cdrs[0]["OriginHost"], addr.as_str());
    assert_eq!(cdrs[0]["Source"], "KamailioAgent");
    assert_eq!(
        rpc(&s, "SessionSv1.GetActiveSessionsCount", json!({})),
        json!(0)
    );
    // 50 s at the plan's 0.01/s
    assert_eq!(credit(&s, "1001"), dec("9.50"));

    // Session sync: a call Kamailio no longer lists is ended, its CDR
    // written; one it lists stays.
    // (a prepaid start without Usage reserves all 1001 can pay)
    let start = |origin: &str, h_id: &str, account: &str| {
        format!(
            "{{\"event\":\"CGR_CALL_START\",\"h_entry\":\"9\",\"h_id\":\"{h_id}\",\
             \"cgr_flags\":\"*accounts\",\"OriginID\":\"{origin}\",\"RequestType\":\"*prepaid\",\
             \"Account\":\"{account}\",\"Destination\":\"4930555002\",\"AnswerTime\":\"{}\"}}",
            epoch()
        )
    };
    k.send(&start("evc2@10.0.0.1;ft2", "1", "1001"));
    k.send(&start("evc3@10.0.0.1;ft3", "2", "1004"));
    wait_until("two sessions", || {
        rpc(&s, "SessionSv1.GetActiveSessionsCount", json!({})) == json!(2)
    });
    // A start the session manager refuses (1001 has nothing left) is
    // disconnected at once.
    k.send(&start("evc4@10.0.0.1;ft4", "4", "1001"));
    assert_eq!(
        k.recv(),
        json!({"Event": "CGR_SESSION_DISCONNECT", "HashEntry": "9", "HashId": "4", "Reason": "SERVER_ERROR"})
    );
    k.send(&dlg_list_reply(&[("evc3@10.0.0.1", "ft3")]));
    wait_until("the lost call ended", || {
        rpc(&s, "SessionSv1.GetActiveSessionsCount", json!({})) == json!(1)
    });
    let left = rpc(&s, "SessionSv1.GetActiveSessions", json!({}));
    assert_eq!(left[0]["OriginID"], "evc3@10.0.0.1;ft3", "{left}");
    wait_until("the lost call's CDR", || {
        let r = rpc(
            &s,
            "CDRsV1.GetCDRs",
            json!({"OriginIDs": ["evc2@10.0.0.1;ft2"]}),
        );
        r.as_array().is_some_and(|a| a.len() == 1)
    });

    // A refused request is answered at once, the stream goes on.
    k.send(r#"{"event":"CGR_AUTH_REQUEST","tr_index":"","tr_label":"1"}"#);
    let r = k.recv();
    assert_eq!(r["Event"], "CGR_AUTH_REPLY");
    assert_eq!(r["Error"], "MANDATORY_IE_MISSING");

    // Kamailio restarts: the agent comes back and answers again.
    drop(k);
    let mut k = Evapi::accept(&kam);
    assert_eq!(k.recv(), json!({"Event": "CGR_DLG_LIST"}));
    k.send(&auth(9));
    let r = k.recv();
    assert_eq!(r["TransactionIndex"], "9", "{r}");
    assert_eq!(r["MaxUsage"], json!(120), "{r}");
}

#[test]
fn config_section_alias_process_cdr_and_a_late_kamailio() {
    // Kamailio is not up when AccuRate starts: it keeps trying.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let config = format!(
        "[api]\nrpc-tcp = \"127.0.0.1:0\"\nrpc-http = \"127.0.0.1:0\"\n\
         [[agents.kamailio]]\nevapi = \"{addr}\"\nalias = \"kam-a\"\n"
    );
    let s = Server::start_with(&["--tariffplan", &plan_dir()], Some(&config));
    std::thread::sleep(Duration::from_millis(300));
    let kam = TcpListener::bind(&addr).unwrap();
    let mut k = Evapi::accept(&kam);
    assert_eq!(k.recv(), json!({"Event": "CGR_DLG_LIST"}));

    // CGR_PROCESS_CDR: answered under its own name, the CDR stored with
    // the connection's alias as OriginHost.
    k.send(&format!(
        "{{\"event\":\"CGR_PROCESS_CDR\",\"tr_index\":\"5\",\"tr_label\":\"6\",\
         \"OriginID\":\"pcdr1\",\"RequestType\":\"*postpaid\",\"Account\":\"1004\",\
         \"Destination\":\"4930555002\",\"AnswerTime\":\"{}\",\"Usage\":\"30\"}}",
        epoch()
    ));
    let r = k.recv();
    assert_eq!(r["Event"], "CGR_PROCESS_CDR", "{r}");
    assert_eq!(r["TransactionIndex"], "5");
    assert_eq!(r["Error"], "", "{r}");
    let mut cdrs = Vec::new();
    wait_until("the processed CDR", || {
        let r = rpc(&s, "CDRsV1.GetCDRs", json!({"OriginIDs": ["pcdr1"]}));
        cdrs = r.as_array().cloned().unwrap_or_default();
        !cdrs.is_empty()
    });
    assert_eq!(cdrs[0]["OriginHost"], "kam-a", "{cdrs:?}");
    assert_eq!(cdrs[0]["Usage"], json!(30_000_000_000_u64), "{cdrs:?}");
    // 30 s at 0.01/s
    assert_eq!(credit(&s, "1004"), dec("9.70"));
}

#[test]
fn process_message_over_evapi_and_the_api() {
    let kam = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = kam.local_addr().unwrap().to_string();
    let s = Server::start(&["--tariffplan", &plan_dir(), "--kamailio-evapi", &addr]);
    let mut k = Evapi::accept(&kam);
    assert_eq!(k.recv(), json!({"Event": "CGR_DLG_LIST"}));
    k.send(&dlg_list_reply(&[]));

    // CGR_PROCESS_MESSAGE with *accounts: SessionSv1.ProcessMessage's
    // Debit, answered with the usage charged (whole seconds).
    let msg = |tr: u32, origin: &str| {
        format!(
            "{{\"event\":\"CGR_PROCESS_MESSAGE\",\"tr_index\":\"{tr}\",\"tr_label\":\"8\",\
             \"reply_route\":\"CGR_PROCESS_MESSAGE_REPLY\",\"cgr_flags\":\"*accounts\",\
             \"OriginID\":\"{origin}\",\"RequestType\":\"*prepaid\",\"Account\":\"1004\",\
             \"Destination\":\"4930555002\",\"AnswerTime\":\"{}\",\"Usage\":\"20\"}}",
            epoch()
        )
    };
    k.send(&msg(1, "msg1"));
    let r = k.recv();
    assert_eq!(r["Event"], "CGR_PROCESS_MESSAGE_REPLY", "{r}");
    assert_eq!(r["TransactionIndex"], "1");
    assert_eq!(r["Error"], "", "{r}");
    assert_eq!(r["MaxUsage"], json!(20), "{r}");
    // 20 s at 0.01/s, stored as one CDR
    assert_eq!(credit(&s, "1004"), dec("9.80"));
    let cdrs = rpc(&s, "CDRsV1.GetCDRs", json!({"OriginIDs": ["msg1"]}));
    assert_eq!(cdrs.as_array().map(Vec::len), Some(1), "{cdrs}");
    assert_eq!(cdrs[0]["Usage"], json!(20_000_000_000_u64), "{cdrs}");
    // The same message again is charged once.
    k.send(&msg(2, "msg1"));
    assert_eq!(k.recv()["MaxUsage"], json!(20));
    assert_eq!(credit(&s, "1004"), dec("9.80"));

    // Through the API, v0.10's V1ProcessMessageArgs: a *prepaid message
    // gets at most what the account pays (1003 has 0.30: 30 s) ...
    let args = |origin: &str, usage: &str| {
        json!({"Debit": true, "Tenant": "cgrates.org", "ID": "m",
               "Event": {"OriginID": origin, "RequestType": "*prepaid", "Account": "1003",
                         "Destination": "4930555002", "SetupTime": "2024-05-01T12:00:00Z",
                         "Usage": usage}})
    };
    let r = rpc(&s, "SessionSv1.ProcessMessage", args("api1", "45s"));
    assert_eq!(r["MaxUsage"], json!(30_000_000_000_u64), "{r}");
    assert_eq!(r["ResourceAllocation"], Value::Null);
    assert_eq!(credit(&s, "1003"), dec("0"));
    // ... and nothing once it is empty.
    let v = rpc(&s, "SessionSv1.ProcessMessage", args("api2", "5s"));
    assert!(err(&v).contains("INSUFFICIENT_CREDIT"), "{v}");
    // No Debit: nothing charged, MaxUsage 0.
    let r = rpc(
        &s,
        "SessionSv1.ProcessMessage",
        json!({"Event": {"OriginID": "api3", "Account": "1004", "Destination": "4930555002"}}),
    );
    assert_eq!(r["MaxUsage"], json!(0), "{r}");
    assert_eq!(credit(&s, "1004"), dec("9.80"));
    // No CGREvent at all: CGRateS's error.
    let v = rpc(&s, "SessionSv1.ProcessMessage", json!({"Debit": true}));
    assert!(err(&v).contains("MANDATORY_IE_MISSING"), "{v}");
}
