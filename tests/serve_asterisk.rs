//! `accurate serve` with `[[agents.asterisk]]` against an Asterisk written
//! here from ARI's documented wire protocol: one TCP listener serving the
//! events WebSocket (`GET /ari/events?app=...&api_key=...` upgraded) and
//! the REST calls (recorded, answered 204). The events are the shapes
//! Asterisk sends for `Stasis(cgrates_auth,...)` calls.
#![allow(clippy::unwrap_used, clippy::result_large_err, dead_code)]

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures_util::{SinkExt as _, StreamExt as _};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};

mod serve_common;

use serve_common::{Server, credit, dec, rpc, wait_until};

fn plan_dir() -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/tariffplans/ari")
        .to_str()
        .unwrap()
        .to_owned()
}

/// One REST call Asterisk got.
#[derive(Debug, Clone)]
struct Rest {
    method: String,
    /// The path and query, as sent.
    target: String,
    auth: String,
}

#[derive(Default)]
struct Shared {
    rest: Mutex<Vec<Rest>>,
    /// The open WebSocket's event sender.
    ws: Mutex<Option<mpsc::UnboundedSender<Message>>>,
    /// The events WebSocket requests (path and query).
    upgrades: Mutex<Vec<String>>,
    connections: AtomicUsize,
    /// REST calls whose target holds this are answered 500.
    fail: Mutex<Option<String>>,
}

/// The fake Asterisk: its own runtime, serving until dropped.
struct Asterisk {
    addr: String,
    shared: Arc<Shared>,
    _rt: tokio::runtime::Runtime,
}

impl Asterisk {
    fn start() -> Asterisk {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let listener = rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let shared = Arc::new(Shared::default());
        let sh = Arc::clone(&shared);
        rt.spawn(async move {
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                tokio::spawn(connection(stream, Arc::clone(&sh)));
            }
        });
        Asterisk {
            addr,
            shared,
            _rt: rt,
        }
    }

    /// Sends an event on the open WebSocket (waiting for one).
    fn event(&self, ev: Value) {
        wait_until("the events WebSocket", || {
            self.shared.ws.lock().unwrap().is_some()
        });
        let tx = self.shared.ws.lock().unwrap().clone().unwrap();
        tx.send(Message::text(ev.to_string())).unwrap();
    }

    /// Drops the open WebSocket (Asterisk restarts).
    fn drop_ws(&self) {
        self.shared.ws.lock().unwrap().take();
    }

    fn rest(&self) -> Vec<Rest> {
        self.shared.rest.lock().unwrap().clone()
    }

    /// The REST calls about `channel`, as `METHOD target`.
    fn calls_of(&self, channel: &str) -> Vec<String> {
        self.rest()
            .iter()
            .filter(|r| r.target.contains(channel))
            .map(|r| format!("{} {}", r.method, r.target))
            .collect()
    }

    /// Waits until the calls about `channel` end with `last`.
    fn wait_for(&self, channel: &str, last: &str) -> Vec<String> {
        let mut calls = Vec::new();
        wait_until(last, || {
            calls = self.calls_of(channel);
            calls.last().is_some_and(|l| l == last)
        });
        calls
    }
}

async fn connection(stream: tokio::net::TcpStream, sh: Arc<Shared>) {
    let mut head = [0u8; 4096];
    let n = loop {
        let n = stream.peek(&mut head).await.unwrap_or(0);
        if n == 0 || head[..n].windows(4).any(|w| w == b"\r\n\r\n") {
            break n;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    let text = String::from_utf8_lossy(&head[..n]).to_lowercase();
    if text.contains("upgrade: websocket") {
        websocket(stream, sh).await;
    } else {
        rest(stream, sh).await;
    }
}

async fn websocket(stream: tokio::net::TcpStream, sh: Arc<Shared>) {
    let sh2 = Arc::clone(&sh);
    let callback = move |req: &Request, resp: Response| {
        sh2.upgrades.lock().unwrap().push(req.uri().to_string());
        Ok(resp)
    };
    let Ok(mut ws) = tokio_tungstenite::accept_hdr_async(stream, callback).await else {
        return;
    };
    sh.connections.fetch_add(1, Ordering::SeqCst);
    let (tx, mut rx) = mpsc::unbounded_channel();
    *sh.ws.lock().unwrap() = Some(tx);
    loop {
        tokio::select! {
            m = rx.recv() => match m {
                Some(m) => {
                    if ws.send(m).await.is_err() {
                        return;
                    }
                }
                None => return,
            },
            m = ws.next() => if !matches!(m, Some(Ok(_))) {
                return;
            },
        }
    }
}

async fn rest(mut stream: tokio::net::TcpStream, sh: Arc<Shared>) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut chunk).await.unwrap_or(0);
        if n == 0 {
            return;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let text = String::from_utf8_lossy(&buf).to_string();
    let mut lines = text.split("\r\n");
    let mut first = lines.next().unwrap_or("").split(' ');
    let method = first.next().unwrap_or("").to_string();
    let target = first.next().unwrap_or("").to_string();
    let auth = lines
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.eq_ignore_ascii_case("authorization"))
        .map(|(_, v)| v.trim().to_string())
        .unwrap_or_default();
    // Asterisk's channel list: none (every call ended meanwhile)
    let fail = sh
        .fail
        .lock()
        .unwrap()
        .as_ref()
        .is_some_and(|f| target.contains(f.as_str()));
    let answer: &[u8] = if fail {
        b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    } else if method == "GET" && target == "/ari/channels" {
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n[]"
    } else {
        b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    };
    sh.rest.lock().unwrap().push(Rest {
        method,
        target,
        auth,
    });
    let _ = stream.write_all(answer).await;
}

/// An ARI time, as Asterisk writes it.
fn ari_time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3f%z").to_string()
}

fn channel(id: &str, caller: &str, state: &str) -> Value {
    json!({
        "id": id,
        "name": format!("PJSIP/{caller}-00000001"),
        "state": state,
        "caller": {"name": "", "number": caller},
        "connected": {"name": "", "number": ""},
        "accountcode": "",
        "dialplan": {"context": "internal", "exten": "4930555002", "priority": 2,
                     "app_name": "Stasis", "app_data": "cgrates_auth,cgr_reqtype=*prepaid"},
        "creationtime": ari_time(Utc::now()),
        "language": "en"
    })
}

fn stasis_start(id: &str, caller: &str) -> Value {
    stasis_start_with(id, caller, "*accounts")
}

fn stasis_start_with(id: &str, caller: &str, flags: &str) -> Value {
    json!({
        "type": "StasisStart",
        "timestamp": ari_time(Utc::now()),
        "args": ["cgr_reqtype=*prepaid", format!("cgr_flags={flags}")],
        "channel": channel(id, caller, "Ring"),
        "asterisk_id": "08:00:27:18:d8:cf",
        "application": "cgrates_auth"
    })
}

fn answered(id: &str, caller: &str, at: DateTime<Utc>) -> Value {
    json!({
        "type": "ChannelStateChange",
        "timestamp": ari_time(at),
        "channel": channel(id, caller, "Up"),
        "asterisk_id": "08:00:27:18:d8:cf",
        "application": "cgrates_auth"
    })
}

fn destroyed(id: &str, caller: &str, at: DateTime<Utc>) -> Value {
    json!({
        "type": "ChannelDestroyed",
        "timestamp": ari_time(at),
        "cause": 16,
        "cause_txt": "Normal Clearing",
        "channel": channel(id, caller, "Up"),
        "asterisk_id": "08:00:27:18:d8:cf",
        "application": "cgrates_auth"
    })
}

fn cdrs_of(s: &Server, origin: &str) -> Vec<Value> {
    let mut cdrs = Vec::new();
    wait_until("the CDR", || {
        let r = rpc(s, "CDRsV1.GetCDRs", json!({"OriginIDs": [origin]}));
        cdrs = r.as_array().cloned().unwrap_or_default();
        !cdrs.is_empty()
    });
    cdrs
}

fn subscribe(id: &str) -> String {
    format!("POST /ari/applications/cgrates_auth/subscription?eventSource=channel%3A{id}")
}

fn hangup(id: &str) -> String {
    format!("DELETE /ari/channels/{id}?reason=congestion")
}

#[test]
fn calls_authorized_answered_refused_cut_off_and_a_reconnect() {
    let ast = Asterisk::start();
    let config = format!(
        "[api]\nrpc-tcp = \"127.0.0.1:0\"\nrpc-http = \"127.0.0.1:0\"\n\
         [[agents.asterisk]]\nurl = \"http://{}\"\nuser = \"cgrates\"\npassword = \"s3cr3t\"\n\
         create-cdr = true\n",
        ast.addr
    );
    let s = Server::start_with(&["--tariffplan", &plan_dir()], Some(&config));
    wait_until("the WebSocket", || {
        ast.shared.connections.load(Ordering::SeqCst) == 1
    });
    assert_eq!(
        ast.shared.upgrades.lock().unwrap()[0],
        "/ari/events?app=cgrates_auth&api_key=cgrates:s3cr3t"
    );

    // A call authorized: subscribed, its max usage set (ms), continued.
    let id = "1714564800.11";
    ast.event(stasis_start(id, "1001"));
    let calls = ast.wait_for(id, &format!("POST /ari/channels/{id}/continue"));
    assert_eq!(
        calls,
        vec![
            subscribe(id),
            // 10.00 at 0.01/s: 1000 s
            format!("POST /ari/channels/{id}/variable?variable=CGRMaxSessionTime&value=1000000"),
            format!("POST /ari/channels/{id}/continue"),
        ]
    );
    // basic auth: cgrates:s3cr3t
    assert!(
        ast.rest()
            .iter()
            .all(|r| r.auth == "Basic Y2dyYXRlczpzM2NyM3Q="),
        "{:?}",
        ast.rest()
    );
    // answered: the session starts; destroyed 50 s later: terminated,
    // charged, its CDR written.
    let t0 = Utc::now();
    ast.event(answered(id, "1001", t0));
    wait_until("the session", || {
        rpc(&s, "SessionSv1.GetActiveSessionsCount", json!({})) == json!(1)
    });
    ast.event(destroyed(id, "1001", t0 + chrono::Duration::seconds(50)));
    let cdrs = cdrs_of(&s, id);
    assert_eq!(cdrs.len(), 1, "{cdrs:?}");
    assert_eq!(cdrs[0]["Usage"], json!(50_000_000_000_u64), "{cdrs:?}");
    assert_eq!(cdrs[0]["Source"], "AsteriskAgent");
    assert_eq!(cdrs[0]["OriginHost"], "127.0.0.1");
    assert_eq!(cdrs[0]["Account"], "1001");
    assert_eq!(cdrs[0]["Destination"], "4930555002");
    wait_until("the session ended", || {
        rpc(&s, "SessionSv1.GetActiveSessionsCount", json!({})) == json!(0)
    });
    assert_eq!(credit(&s, "1001"), dec("9.50"));

    // A call that cannot pay anything: hung up, never continued.
    let refused = "1714564800.12";
    ast.event(stasis_start(refused, "1003"));
    let calls = ast.wait_for(refused, &hangup(refused));
    assert_eq!(calls, vec![subscribe(refused), hangup(refused)]);

    // A prepaid call that runs out of money (0.02: 2 s) is hung up by the
    // session manager; its end is charged.
    let short = "1714564800.13";
    ast.event(stasis_start(short, "1002"));
    ast.wait_for(short, &format!("POST /ari/channels/{short}/continue"));
    assert!(
        ast.calls_of(short).contains(&format!(
            "POST /ari/channels/{short}/variable?variable=CGRMaxSessionTime&value=2000"
        )),
        "{:?}",
        ast.calls_of(short)
    );
    let t1 = Utc::now();
    ast.event(answered(short, "1002", t1));
    ast.wait_for(short, &hangup(short));
    ast.event(destroyed(short, "1002", t1 + chrono::Duration::seconds(2)));
    let cdrs = cdrs_of(&s, short);
    assert_eq!(cdrs[0]["Usage"], json!(2_000_000_000_u64), "{cdrs:?}");
    assert_eq!(credit(&s, "1002"), dec("0"));

    // Asterisk restarts in the middle of a call: the agent reconnects,
    // finds the channel gone (session sync) and ends its session.
    let lost = "1714564800.15";
    ast.event(stasis_start(lost, "1001"));
    ast.wait_for(lost, &format!("POST /ari/channels/{lost}/continue"));
    ast.event(answered(lost, "1001", Utc::now()));
    wait_until("the session", || {
        rpc(&s, "SessionSv1.GetActiveSessionsCount", json!({})) == json!(1)
    });
    ast.drop_ws();
    wait_until("the reconnect", || {
        ast.shared.connections.load(Ordering::SeqCst) == 2
    });
    assert!(
        ast.rest()
            .iter()
            .any(|r| r.method == "GET" && r.target == "/ari/channels")
    );
    wait_until("the lost call ended", || {
        rpc(&s, "SessionSv1.GetActiveSessionsCount", json!({})) == json!(0)
    });
    assert_eq!(cdrs_of(&s, lost).len(), 1);
    let again = "1714564800.14";
    ast.event(stasis_start(again, "1001"));
    let calls = ast.wait_for(again, &format!("POST /ari/channels/{again}/continue"));
    assert_eq!(calls.len(), 3, "{calls:?}");
}

#[test]
fn garbage_refused_a_failed_setvar_hangs_up_and_flagged_cdrs() {
    let ast = Asterisk::start();
    let config = format!(
        "[api]\nrpc-tcp = \"127.0.0.1:0\"\nrpc-http = \"127.0.0.1:0\"\n\
         [[agents.asterisk]]\nurl = \"http://{}\"\nuser = \"u\"\npassword = \"p\"\n\
         alias = \"ast-a\"\n",
        ast.addr
    );
    let s = Server::start_with(&["--tariffplan", &plan_dir()], Some(&config));
    // Malformed events are refused; the stream goes on.
    ast.event(json!("not an object"));
    let tx = {
        wait_until("the events WebSocket", || {
            ast.shared.ws.lock().unwrap().is_some()
        });
        ast.shared.ws.lock().unwrap().clone().unwrap()
    };
    tx.send(Message::text("{\"type\":\"StasisStart\","))
        .unwrap();
    tx.send(Message::binary(vec![0xff, 0x00])).unwrap();

    // Asterisk refuses the max usage variable: the channel is hung up,
    // never continued.
    *ast.shared.fail.lock().unwrap() = Some("CGRMaxSessionTime".into());
    let id = "1714564900.1";
    ast.event(stasis_start(id, "1001"));
    let calls = ast.wait_for(id, &hangup(id));
    assert_eq!(
        calls,
        vec![
            subscribe(id),
            format!("POST /ari/channels/{id}/variable?variable=CGRMaxSessionTime&value=1000000"),
            hangup(id),
        ]
    );
    *ast.shared.fail.lock().unwrap() = None;

    // Without create-cdr, a call flagged *cdrs writes its CDR, under the
    // alias.
    let id = "1714564900.2";
    ast.event(stasis_start_with(id, "1001", "*accounts+*cdrs"));
    ast.wait_for(id, &format!("POST /ari/channels/{id}/continue"));
    let t0 = Utc::now();
    ast.event(answered(id, "1001", t0));
    wait_until("the session", || {
        rpc(&s, "SessionSv1.GetActiveSessionsCount", json!({})) == json!(1)
    });
    ast.event(destroyed(id, "1001", t0 + chrono::Duration::seconds(30)));
    let cdrs = cdrs_of(&s, id);
    assert_eq!(cdrs[0]["OriginHost"], "ast-a", "{cdrs:?}");
    assert_eq!(cdrs[0]["Usage"], json!(30_000_000_000_u64), "{cdrs:?}");
    assert_eq!(credit(&s, "1001"), dec("9.70"));
}
