//! `accurate serve` under JSON-RPC load over loopback TCP: requests per
//! second and latency (p50, p99, p99.9, max, from an hdrhistogram) for
//! `APIerSv1.GetCost` and `APIerSv1.DebitUsage`, with the embedded store
//! (a debit is answered after the journal's fsync) and with Redis.
//!
//! The bench starts the release `accurate serve` itself on port 0 with a
//! temporary data dir and a plan written here (accounts `b0`..`b63`, each
//! topped up with 1,000,000,000 so no debit runs dry), then drives N TCP
//! connections, one blocking client thread each, on the same machine as the
//! server. Each connection keeps `depth` requests in flight (depth 1: one
//! request, wait for its reply; depth > 1: pipelined) and sends a fixed
//! count, stopping early after `RPC_LOAD_SECS` seconds. A request's
//! latency runs from the write that carries it to the read that brings its
//! reply, so with pipelining it includes the wait behind the requests ahead.
//!
//! `cargo bench --bench rpc_load` (env `RPC_LOAD_GETCOST`, requests per
//! run, default 200000; `RPC_LOAD_DEBITS`, default 40000; `RPC_LOAD_SECS`,
//! default 20; `RPC_LOAD_REDIS`, default `redis://127.0.0.1:6379/0`, or
//! `off` to skip Redis). Redis runs use a random key prefix whose keys are
//! deleted at the end.
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::cast_possible_truncation,
    clippy::cast_precision_loss
)]

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

const ACCURATE: &str = env!("CARGO_BIN_EXE_accurate");
/// Accounts in the plan, one per connection at most.
const ACCOUNTS: usize = 64;
/// (connections, requests in flight per connection).
const SHAPES: &[(usize, usize)] = &[(1, 1), (4, 1), (16, 1), (64, 1), (4, 16), (16, 16)];

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A unique-enough tag for temp paths and the Redis prefix.
fn tag() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{}-{nanos}", std::process::id())
}

/// The plan: 0.01/s to 1002, accounts b0..b63 with a large balance.
fn write_plan(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    let files: &[(&str, String)] = &[
        ("Destinations.csv", "#Id,Prefix\nDST_1002,1002\n".into()),
        (
            "Rates.csv",
            "#Id,ConnectFee,Rate,RateUnit,RateIncrement,GroupIntervalStart\nR_CENT,0,0.01,1s,1s,0s\n"
                .into(),
        ),
        (
            "DestinationRates.csv",
            "#Id,DestinationId,RatesTag,RoundingMethod,RoundingDecimals,MaxCost,MaxCostStrategy\nDR_1002,DST_1002,R_CENT,*up,4,0,\n"
                .into(),
        ),
        (
            "RatingPlans.csv",
            "#Id,DestinationRatesId,TimingTag,Weight\nRP_STD,DR_1002,*any,10\n".into(),
        ),
        (
            "RatingProfiles.csv",
            "#Tenant,Category,Subject,ActivationTime,RatingPlanId,RatesFallbackSubject\nbench.test,call,*any,2020-01-01T00:00:00Z,RP_STD,\n"
                .into(),
        ),
        (
            "Actions.csv",
            "#ActionsId,Action,ExtraParameters,Filter,BalanceId,BalanceType,Categories,DestinationIds,RatingSubject,SharedGroup,ExpiryTime,TimingIds,Units,BalanceWeight,BalanceBlocker,BalanceDisabled,Weight\nACT_BIG,*topup,,,credit,*monetary,,*any,,,*unlimited,,1000000000,10,false,false,20\n"
                .into(),
        ),
        (
            "ActionPlans.csv",
            "#ID,ActionsID,TimingID,Weight\nAP_BIG,ACT_BIG,*asap,20\n".into(),
        ),
        (
            "AccountActions.csv",
            std::iter::once(
                "#Tenant,Account,ActionPlanID,ActionTriggersID,AllowNegative,Disabled\n".to_owned(),
            )
            .chain((0..ACCOUNTS).map(|i| format!("bench.test,b{i},AP_BIG,,false,false\n")))
            .collect(),
        ),
    ];
    for (name, text) in files {
        std::fs::write(dir.join(name), text).unwrap();
    }
}

/// A running `accurate serve`, killed (and its files removed) on drop.
struct Server {
    child: Child,
    tcp: String,
    dir: PathBuf,
    redis_prefix: Option<(String, String)>,
}

impl Server {
    fn start(redis: Option<&str>) -> Server {
        let dir = std::env::temp_dir().join(format!("accurate-rpc-load-{}", tag()));
        let plan = dir.join("plan");
        write_plan(&plan);
        let mut cmd = Command::new(ACCURATE);
        let redis_prefix = redis.map(|url| (url.to_owned(), format!("accurate-bench-{}:", tag())));
        if let Some((url, prefix)) = &redis_prefix {
            let config = dir.join("accurate.toml");
            std::fs::write(
                &config,
                format!(
                    "[api]\nrpc-tcp = \"127.0.0.1:0\"\n[storage]\nredis = \"{url}\"\nredis-prefix = \"{prefix}\"\n"
                ),
            )
            .unwrap();
            cmd.arg("--config").arg(config).arg("serve");
        } else {
            cmd.args(["serve", "--rpc-tcp", "127.0.0.1:0"]);
        }
        let mut child = cmd
            .arg("--data-dir")
            .arg(dir.join("data"))
            .arg("--tariffplan")
            .arg(&plan)
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
        let mut server = Server {
            child,
            tcp: String::new(),
            dir,
            redis_prefix,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut seen = Vec::new();
        while server.tcp.is_empty() {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = rx
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("serve did not start: {seen:?}"));
            if let Some(a) = line.strip_prefix("listening on rpc-tcp:") {
                server.tcp = a.to_owned();
            }
            seen.push(line);
        }
        // Keep draining stderr so the server never blocks on it.
        std::thread::spawn(move || while rx.recv().is_ok() {});
        server
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
        if let Some((url, prefix)) = &self.redis_prefix {
            let _ = Command::new("redis-cli")
                .args(["-u", url, "EVAL"])
                .arg("for _,k in ipairs(redis.call('KEYS', ARGV[1])) do redis.call('DEL', k) end")
                .args(["0", &format!("{prefix}*")])
                .output();
        }
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Op {
    GetCost,
    Debit,
}

fn request(op: Op, account: usize, id: u64) -> String {
    match op {
        Op::GetCost => format!(
            "{{\"method\":\"APIerSv1.GetCost\",\"params\":[{{\"Tenant\":\"bench.test\",\"Category\":\"call\",\"Subject\":\"b{account}\",\"AnswerTime\":\"2024-05-13T10:00:00Z\",\"Destination\":\"1002\",\"Usage\":\"90s\"}}],\"id\":{id}}}\n"
        ),
        Op::Debit => format!(
            "{{\"method\":\"APIerSv1.DebitUsage\",\"params\":[{{\"Tenant\":\"bench.test\",\"Account\":\"b{account}\",\"Destination\":\"1002\",\"Usage\":\"1s\"}}],\"id\":{id}}}\n"
        ),
    }
}

struct ConnResult {
    hist: Histogram<u64>,
    done: u64,
    errors: u64,
    first_error: Option<String>,
}

/// One connection: `count` requests, `depth` in flight, until `until`.
fn drive(
    addr: &str,
    op: Op,
    account: usize,
    count: u64,
    depth: usize,
    until: Instant,
) -> ConnResult {
    let mut conn = TcpStream::connect(addr).unwrap();
    conn.set_nodelay(true).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).unwrap();
    let mut sent_at: VecDeque<Instant> = VecDeque::with_capacity(depth);
    let (mut sent, mut done, mut errors) = (0u64, 0u64, 0u64);
    let mut first_error = None;
    let mut out = String::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut pending: Vec<u8> = Vec::new();
    loop {
        // Top the window up (unless out of count or time) in one write.
        out.clear();
        let stop = Instant::now() >= until;
        let mut added = 0;
        while !stop && sent < count && sent_at.len() + added < depth {
            out.push_str(&request(op, account, sent));
            sent += 1;
            added += 1;
        }
        if added > 0 {
            // Stamped at the write, not while formatting.
            let now = Instant::now();
            sent_at.extend(std::iter::repeat_n(now, added));
            conn.write_all(out.as_bytes()).unwrap();
        }
        if sent_at.is_empty() {
            break;
        }
        let n = conn.read(&mut buf).expect("reply (30 s read timeout)");
        assert!(n > 0, "server closed the connection");
        let now = Instant::now();
        pending.extend_from_slice(&buf[..n]);
        let mut start = 0;
        while let Some(pos) = pending[start..].iter().position(|&b| b == b'\n') {
            let line = &pending[start..start + pos];
            start += pos + 1;
            let t = sent_at.pop_front().expect("a reply for a request sent");
            hist.saturating_record(now.duration_since(t).as_nanos() as u64);
            done += 1;
            // The server writes `"error":null` on success.
            if !line.windows(13).any(|w| w == b"\"error\":null}") {
                errors += 1;
                if first_error.is_none() {
                    first_error = Some(String::from_utf8_lossy(line).into_owned());
                }
            }
        }
        pending.drain(..start);
    }
    ConnResult {
        hist,
        done,
        errors,
        first_error,
    }
}

fn run(server: &Server, label: &str, op: Op, total: u64, conns: usize, depth: usize, secs: u64) {
    let per = total / conns as u64;
    let until = Instant::now() + Duration::from_secs(secs);
    let started = Instant::now();
    let handles: Vec<_> = (0..conns)
        .map(|i| {
            let addr = server.tcp.clone();
            std::thread::spawn(move || drive(&addr, op, i % ACCOUNTS, per, depth, until))
        })
        .collect();
    let results: Vec<ConnResult> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let secs = started.elapsed().as_secs_f64();
    let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).unwrap();
    let (mut done, mut errors) = (0, 0);
    let mut first_error = None;
    for r in results {
        hist.add(&r.hist).unwrap();
        done += r.done;
        errors += r.errors;
        first_error = first_error.or(r.first_error);
    }
    let us = |q: f64| hist.value_at_quantile(q) as f64 / 1000.0;
    println!(
        "{label:<22} conns {conns:>2} depth {depth:>2}  {done:>7} req {:>9.0} req/s  p50 {:>8.1} us  p99 {:>8.1} us  p99.9 {:>8.1} us  max {:>8.1} us{}",
        done as f64 / secs,
        us(0.5),
        us(0.99),
        us(0.999),
        hist.max() as f64 / 1000.0,
        if errors > 0 {
            format!("  ERRORS {errors}: {}", first_error.unwrap_or_default())
        } else {
            String::new()
        },
    );
}

fn suite(server: &Server, store: &str) {
    let getcost = env_u64("RPC_LOAD_GETCOST", 200_000);
    let debits = env_u64("RPC_LOAD_DEBITS", 40_000);
    let secs = env_u64("RPC_LOAD_SECS", 20);
    // Warm up (connections, caches, the first journal writes).
    run(
        server,
        &format!("warmup {store}"),
        Op::GetCost,
        2_000,
        4,
        1,
        secs,
    );
    run(
        server,
        &format!("warmup {store}"),
        Op::Debit,
        400,
        4,
        1,
        secs,
    );
    for &(conns, depth) in SHAPES {
        run(
            server,
            &format!("GetCost {store}"),
            Op::GetCost,
            getcost,
            conns,
            depth,
            secs,
        );
    }
    for &(conns, depth) in SHAPES {
        run(
            server,
            &format!("DebitUsage {store}"),
            Op::Debit,
            debits,
            conns,
            depth,
            secs,
        );
    }
}

fn main() {
    // `cargo bench` passes `--bench`, which is ignored.
    println!(
        "rpc_load: client threads and server share this machine's {} cores",
        std::thread::available_parallelism().map_or(0, usize::from)
    );
    {
        let server = Server::start(None);
        suite(&server, "embedded");
    }
    let redis =
        std::env::var("RPC_LOAD_REDIS").unwrap_or_else(|_| "redis://127.0.0.1:6379/0".into());
    if redis != "off" {
        let server = Server::start(Some(&redis));
        suite(&server, "redis");
    }
}
