//! The `accurate serve` harness shared by the serve tests: the real binary
//! on port 0 with its own temporary data dir, its `listening on` lines, TCP
//! and HTTP JSON-RPC calls, signals; and what several of them read
//! (results, balances, `/metrics`) or send (HEP over UDP).
#![allow(dead_code, clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use capture::Timestamp;
use capture::hep::{decode, encode_v3};
use rust_decimal::Decimal;
use serde_json::{Value, json};

/// The binary under test.
pub const ACCURATE: &str = env!("CARGO_BIN_EXE_accurate");
/// A bound on waiting for the server, not a speed test.
pub const WAIT: Duration = Duration::from_secs(30);

/// A running `accurate serve`, killed when dropped.
pub struct Server {
    pub child: Child,
    pub tcp: String,
    pub http: String,
    pub stderr: mpsc::Receiver<String>,
    pub seen: Vec<String>,
    /// The temporary `--data-dir` given when the test names none, removed
    /// on drop (no test writes `./accurate-data` or fights over its lock).
    pub data: Option<PathBuf>,
}

impl Server {
    pub fn start(extra: &[&str]) -> Server {
        Self::start_with(extra, None)
    }

    pub fn start_with(extra: &[&str], config: Option<&str>) -> Server {
        let mut cmd = Command::new(ACCURATE);
        if let Some(text) = config {
            static N: AtomicUsize = AtomicUsize::new(0);
            let path = std::env::temp_dir().join(format!(
                "accurate-serve-{}-{}.toml",
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed)
            ));
            std::fs::write(&path, text).unwrap();
            cmd.arg("--config").arg(path);
        }
        cmd.arg("serve");
        if config.is_none() {
            cmd.args(["--rpc-tcp", "127.0.0.1:0", "--rpc-http", "127.0.0.1:0"]);
        }
        let data = (!extra.contains(&"--data-dir")).then(temp_data_dir);
        if let Some(d) = &data {
            cmd.arg("--data-dir").arg(d);
        }
        let mut child = cmd
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, rx) = mpsc::channel();
        let err = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut s = Server {
            child,
            tcp: String::new(),
            http: String::new(),
            stderr: rx,
            seen: Vec::new(),
            data,
        };
        let deadline = Instant::now() + WAIT;
        while s.tcp.is_empty() || s.http.is_empty() {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = s
                .stderr
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("serve did not start: {:?}", s.seen));
            if let Some(a) = line.strip_prefix("listening on rpc-tcp:") {
                s.tcp = a.to_owned();
            }
            if let Some(a) = line.strip_prefix("listening on rpc-http:") {
                s.http = a.to_owned();
            }
            s.seen.push(line);
        }
        s
    }

    pub fn connect(&self) -> TcpStream {
        let c = TcpStream::connect(&self.tcp).unwrap();
        c.set_read_timeout(Some(WAIT)).unwrap();
        c.set_nodelay(true).unwrap();
        c
    }

    pub fn signal(&mut self, sig: &str) -> (ExitStatus, Vec<String>) {
        let kill = Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(kill.success());
        let deadline = Instant::now() + WAIT;
        let status = loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                break st;
            }
            assert!(Instant::now() < deadline, "serve did not stop on {sig}");
            std::thread::sleep(Duration::from_millis(20));
        };
        let mut lines = std::mem::take(&mut self.seen);
        lines.extend(self.stderr.try_iter());
        (status, lines)
    }

    /// One request over HTTP; the status and the body as JSON (null when
    /// empty).
    pub fn http(&self, method: &str, path: &str, body: &str, headers: &[&str]) -> (u16, Value) {
        let mut c = TcpStream::connect(&self.http).unwrap();
        c.set_read_timeout(Some(WAIT)).unwrap();
        let mut req = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
            self.http,
            body.len()
        );
        for h in headers {
            req.push_str(h);
            req.push_str("\r\n");
        }
        req.push_str("\r\n");
        req.push_str(body);
        c.write_all(req.as_bytes()).unwrap();
        let mut text = String::new();
        c.read_to_string(&mut text).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        let status: u16 = head.split(' ').nth(1).unwrap().parse().unwrap();
        let body = if body.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body:?}"))
        };
        (status, body)
    }

    /// A Go-style call over HTTP: the reply object.
    pub fn http_call(&self, method: &str, params: Value) -> Value {
        let body = json!({"method": method, "params": [params], "id": 1}).to_string();
        let (status, reply) = self.http("POST", "/jsonrpc", &body, &[]);
        assert_eq!(status, 200, "{reply}");
        reply
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(d) = &self.data {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}

/// A fresh folder name for a server's `--data-dir`.
pub fn temp_data_dir() -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    std::env::temp_dir().join(format!(
        "accurate-serve-data-{}-{}-{}",
        env!("CARGO_CRATE_NAME"),
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ))
}

/// Reads JSON values off a TCP connection.
pub struct Replies {
    pub conn: TcpStream,
    pub decoder: jsonrpc::StreamDecoder,
}

impl Replies {
    pub fn new(conn: TcpStream) -> Self {
        Replies {
            conn,
            decoder: jsonrpc::StreamDecoder::new(1 << 20),
        }
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.conn.write_all(bytes).unwrap();
    }

    pub fn call(&mut self, method: &str, params: Value, id: u64) -> Value {
        let req = json!({"method": method, "params": [params], "id": id});
        self.send(req.to_string().as_bytes());
        let reply = self.next().expect("a reply");
        assert_eq!(reply["id"], json!(id), "{reply}");
        reply
    }

    /// The next reply, or None when the server closed the connection.
    pub fn next(&mut self) -> Option<Value> {
        let mut buf = [0u8; 4096];
        loop {
            if let Some(v) = self.decoder.next_value().unwrap() {
                return Some(v);
            }
            let n = self.conn.read(&mut buf).unwrap_or(0);
            if n == 0 {
                return None;
            }
            self.decoder.feed(&buf[..n]);
        }
    }
}

/// The result of a Go-style call over HTTP, or its error as `ERR:message`.
pub fn rpc(s: &Server, method: &str, params: Value) -> Value {
    let reply = s.http_call(method, params);
    if reply["error"].is_null() {
        reply["result"].clone()
    } else {
        let e = &reply["error"];
        let msg = e.as_str().map_or_else(
            || e["message"].as_str().unwrap_or("").to_owned(),
            str::to_owned,
        );
        Value::String(format!("ERR:{msg}"))
    }
}

/// The message of an error [`rpc`] returned (a panic for a result).
pub fn err(v: &Value) -> String {
    v.as_str()
        .and_then(|s| s.strip_prefix("ERR:"))
        .unwrap_or_else(|| panic!("expected an error, got {v}"))
        .to_owned()
}

/// A decimal from its text.
pub fn dec(s: &str) -> Decimal {
    s.parse().unwrap()
}

/// Waits (at most [`WAIT`]) until `f` holds.
pub fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let end = Instant::now() + WAIT;
    while !f() {
        assert!(Instant::now() < end, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The sum of the account's `*monetary` balances (tenant `cgrates.org`).
pub fn credit(s: &Server, account: &str) -> Decimal {
    let a = rpc(
        s,
        "APIerSv2.GetAccount",
        json!({"Tenant": "cgrates.org", "Account": account}),
    );
    a["BalanceMap"]["*monetary"]
        .as_array()
        .unwrap_or_else(|| panic!("{a}"))
        .iter()
        .map(|b| b["Value"].to_string().parse::<Decimal>().unwrap())
        .sum()
}

/// The value of the `/metrics` sample `name` (with its labels), 0 when
/// absent.
pub fn metric(s: &Server, name: &str) -> u64 {
    let mut c = TcpStream::connect(&s.http).unwrap();
    c.set_read_timeout(Some(WAIT)).unwrap();
    write!(
        c,
        "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    c.read_to_string(&mut text).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0)
}

/// The address of the server's `listening on udp:` HEP line.
pub fn hep_udp_addr(s: &Server) -> String {
    s.seen
        .iter()
        .find_map(|l| l.strip_prefix("listening on udp:"))
        .unwrap_or_else(|| panic!("no udp line: {:?}", s.seen))
        .to_owned()
}

/// HEP packets re-stamped `start`, `start + 1 ms`, ...
pub fn restamp_hep(hep: &[Vec<u8>], start: std::time::SystemTime) -> Vec<Vec<u8>> {
    hep.iter()
        .enumerate()
        .map(|(i, h)| {
            let t = start + Duration::from_millis(i as u64);
            let d = t.duration_since(std::time::SystemTime::UNIX_EPOCH).unwrap();
            let mut p = decode(h, Timestamp::from_nanos(0)).unwrap();
            let (secs, micros) = (u32::try_from(d.as_secs()).unwrap(), d.subsec_micros());
            p.ts = Timestamp::from_secs_micros(i64::from(secs), micros);
            p.ts_secs = Some(secs);
            p.ts_micros = Some(micros);
            encode_v3(&p)
        })
        .collect()
}

/// Sends `packets` over UDP to `to`, 2 ms apart.
pub fn send_udp(to: &str, packets: &[Vec<u8>]) {
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    for p in packets {
        sock.send_to(p, to).unwrap();
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// A fresh PostgreSQL schema for one test's CDRs (`ACCURATE_TEST_POSTGRES`,
/// default the local `test` database): `url` points `--cdr-db` at it,
/// `admin` and `rt` let the test look or meddle; dropped by `drop_schema`.
pub struct PgSchema {
    pub rt: tokio::runtime::Runtime,
    pub admin: sqlx::PgPool,
    /// The database's own URL.
    pub base: String,
    pub schema: String,
    /// `base` with the schema as its search path.
    pub url: String,
}

impl PgSchema {
    pub fn new(prefix: &str) -> PgSchema {
        let base = std::env::var("ACCURATE_TEST_POSTGRES")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let schema = format!("{prefix}_{}_{nanos}", std::process::id());
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let admin = rt.block_on(sqlx::PgPool::connect(&base)).unwrap();
        let url = format!("{base}?options=-c%20search_path%3D{schema}");
        let pg = PgSchema {
            rt,
            admin,
            base,
            schema,
            url,
        };
        pg.sql(&format!("CREATE SCHEMA {}", pg.schema));
        pg
    }

    /// Runs one statement as the admin; it must succeed.
    pub fn sql(&self, q: &str) {
        self.rt
            .block_on(sqlx::query(q).execute(&self.admin))
            .unwrap();
    }

    pub fn drop_schema(&self) {
        self.sql(&format!("DROP SCHEMA {} CASCADE", self.schema));
    }
}
