//! `accurate serve` over its stores, end to end: the real binary on port
//! 0, each server with its own temporary `--data-dir`. Restart and
//! `kill -9` on the embedded store; two servers sharing one Redis (the
//! real one on 127.0.0.1:6379, or `ACCURATE_TEST_REDIS`, under a fresh
//! key prefix each, deleted at the end); a locked data directory.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::str::FromStr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rust_decimal::Decimal;
use serde_json::{Value, json};

const ACCURATE: &str = env!("CARGO_BIN_EXE_accurate");
/// A bound on waiting for the server, not a speed test.
const WAIT: Duration = Duration::from_secs(60);

fn plan_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/tariffplans/serve_accounts")
}

fn unique(tag: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("accurate-storage-{tag}-{}-{nanos}", std::process::id())
}

/// A temporary folder, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        TempDir(std::env::temp_dir().join(unique(tag)))
    }
    fn arg(&self) -> &str {
        self.0.to_str().unwrap()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A running `accurate serve`, killed when dropped.
struct Server {
    child: Child,
    tcp: String,
    http: String,
    lines: Vec<String>,
    stderr: mpsc::Receiver<String>,
}

impl Server {
    /// Starts `accurate [--config FILE] serve ARGS` on port 0.
    fn start(config: Option<&Path>, args: &[&str]) -> Server {
        let mut cmd = Command::new(ACCURATE);
        if let Some(c) = config {
            cmd.arg("--config").arg(c);
        }
        cmd.args([
            "serve",
            "--rpc-tcp",
            "127.0.0.1:0",
            "--rpc-http",
            "127.0.0.1:0",
        ]);
        let mut child = cmd
            .args(args)
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
            lines: Vec::new(),
            stderr: rx,
        };
        let deadline = Instant::now() + WAIT;
        while s.tcp.is_empty() || s.http.is_empty() {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = s
                .stderr
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("serve did not start: {:?}", s.lines));
            if let Some(a) = line.strip_prefix("listening on rpc-tcp:") {
                s.tcp = a.to_owned();
            }
            if let Some(a) = line.strip_prefix("listening on rpc-http:") {
                s.http = a.to_owned();
            }
            s.lines.push(line);
        }
        s
    }

    /// Sends `sig` and waits for the exit; its code (None when killed).
    fn stop(&mut self, sig: &str) -> Option<i32> {
        let kill = Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(kill.success());
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                return st.code();
            }
            assert!(Instant::now() < deadline, "serve did not stop on {sig}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// A Go-style call over HTTP: the result, or the error as `ERR:...`.
    fn call(&self, method: &str, params: Value) -> Value {
        let body = json!({"method": method, "params": [params], "id": 1}).to_string();
        let mut c = TcpStream::connect(&self.http).unwrap();
        c.set_read_timeout(Some(WAIT)).unwrap();
        let req = format!(
            "POST /jsonrpc HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            self.http,
            body.len()
        );
        c.write_all(req.as_bytes()).unwrap();
        let mut text = String::new();
        c.read_to_string(&mut text).unwrap();
        let body = text.split_once("\r\n\r\n").unwrap().1;
        let reply: Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body:?}"));
        outcome(&reply)
    }

    fn account(&self, id: &str) -> Value {
        self.call(
            "APIerSv2.GetAccount",
            json!({"Tenant": "acme.test", "Account": id}),
        )
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A reply's result, or its error as a string prefixed `ERR:`.
fn outcome(reply: &Value) -> Value {
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

/// One JSON-RPC TCP connection (Go's net/rpc/jsonrpc stream).
struct Tcp {
    conn: TcpStream,
    decoder: jsonrpc::StreamDecoder,
    id: u64,
}

impl Tcp {
    fn connect(addr: &str) -> Tcp {
        let conn = TcpStream::connect(addr).unwrap();
        conn.set_read_timeout(Some(WAIT)).unwrap();
        conn.set_nodelay(true).unwrap();
        Tcp {
            conn,
            decoder: jsonrpc::StreamDecoder::new(1 << 20),
            id: 0,
        }
    }

    /// The reply to one call; None when the connection broke first.
    fn call(&mut self, method: &str, params: Value) -> Option<Value> {
        self.id += 1;
        let req = json!({"method": method, "params": [params], "id": self.id});
        self.conn.write_all(req.to_string().as_bytes()).ok()?;
        let mut buf = [0u8; 4096];
        loop {
            if let Some(v) = self.decoder.next_value().ok()? {
                assert_eq!(v["id"], json!(self.id), "{v}");
                return Some(outcome(&v));
            }
            let n = self.conn.read(&mut buf).unwrap_or(0);
            if n == 0 {
                return None;
            }
            self.decoder.feed(&buf[..n]);
        }
    }
}

fn usage(account: &str, dest: &str, usage: &str) -> Value {
    json!({"Tenant": "acme.test", "Account": account, "Destination": dest, "Usage": usage})
}

/// The sum of an account's monetary balances, exactly.
fn money(acc: &Value) -> Decimal {
    acc["BalanceMap"]["*monetary"]
        .as_array()
        .unwrap_or_else(|| panic!("no monetary balances: {acc}"))
        .iter()
        .map(|b| Decimal::from_str(&b["Value"].to_string()).unwrap())
        .sum()
}

fn get_cost() -> Value {
    json!({"Tenant": "acme.test", "Category": "call", "Subject": "1001",
           "Destination": "1002", "AnswerTime": "2024-05-13T10:00:00Z", "Usage": "90s"})
}

#[test]
fn a_restart_restores_accounts_balances_plan_and_schedule_without_rerunning_asap() {
    let data = TempDir::new("restart");
    let plan = plan_dir();
    let mut s = Server::start(
        None,
        &[
            "--data-dir",
            data.arg(),
            "--tariffplan",
            plan.to_str().unwrap(),
        ],
    );
    // The *asap welcome ran once: 10.00 of credit.
    assert_eq!(money(&s.account("1001")), Decimal::from(10));
    assert_eq!(
        s.call("APIerSv1.DebitUsage", usage("1001", "1002", "500s")),
        json!("OK")
    );
    let before_1001 = s.account("1001");
    let before_1002 = s.account("1002");
    assert_eq!(money(&before_1001), Decimal::from(5));
    let cost = s.call("APIerSv1.GetCost", get_cost());
    assert!(cost["Cost"].is_number(), "{cost}");
    // An account with the plan attached by the API, not by AccountActions.
    let set = json!({"Tenant": "acme.test", "Account": "2001", "ActionPlanIDs": ["AP_NEW"]});
    assert_eq!(s.call("APIerSv2.SetAccount", set), json!("OK"));
    let before_2001 = s.account("2001");
    assert_eq!(money(&before_2001), Decimal::from(10));
    assert_eq!(s.stop("-TERM"), Some(0));

    let s = Server::start(None, &["--data-dir", data.arg()]);
    assert!(
        s.lines
            .iter()
            .any(|l| l.contains("restored the saved tariff plan")),
        "{:?}",
        s.lines
    );
    // Same accounts and balances: the *asap top-up did not run again
    // (it would make 15.00), the triggers' state is kept.
    assert_eq!(s.account("1001"), before_1001);
    assert_eq!(s.account("1002"), before_1002);
    assert_eq!(s.account("2001"), before_2001);
    let all = s.call("APIerSv2.GetAccounts", json!({"Tenant": "acme.test"}));
    assert_eq!(all.as_array().map(Vec::len), Some(3), "{all}");
    // The plan is back: same price, and the accounts still rate.
    assert_eq!(s.call("APIerSv1.GetCost", get_cost()), cost);
    assert_eq!(
        s.call("APIerSv1.GetMaxUsage", usage("1001", "1002", "30m")),
        json!(500_000_000_000u64)
    );
    // The schedule is back (the monthly row still has its accounts).
    let ap = s.call("APIerSv1.GetActionPlan", json!({"ID": "AP_NEW"}));
    assert_eq!(ap[0]["AccountIDs"]["acme.test:1001"], json!(true), "{ap}");
    assert_eq!(ap[0]["AccountIDs"]["acme.test:2001"], json!(true), "{ap}");
    assert_eq!(
        s.call("APIerSv1.DebitUsage", usage("1001", "1002", "100s")),
        json!("OK")
    );
    assert_eq!(money(&s.account("1001")), Decimal::from(4));
}

#[test]
fn kill_9_during_debits_loses_no_acknowledged_debit_and_applies_none_twice() {
    let data = TempDir::new("kill9");
    let plan = plan_dir();
    let mut s = Server::start(
        None,
        &[
            "--data-dir",
            data.arg(),
            "--tariffplan",
            plan.to_str().unwrap(),
        ],
    );
    // 1002 may go negative: every debit of 1 s (0.01) succeeds.
    let initial = money(&s.account("1002"));
    let acked = Arc::new(AtomicUsize::new(0));
    let (done_tx, done_rx) = mpsc::channel();
    let tcp = s.tcp.clone();
    let counter = Arc::clone(&acked);
    std::thread::spawn(move || {
        let mut c = Tcp::connect(&tcp);
        // Until the kill breaks the connection: the last call is the one
        // in flight, maybe applied, never acknowledged.
        while let Some(r) = c.call("APIerSv1.DebitUsage", usage("1002", "1002", "1s")) {
            assert_eq!(r, json!("OK"));
            counter.fetch_add(1, Ordering::SeqCst);
        }
        let _ = done_tx.send(());
    });
    // Kill once a good number of debits were acknowledged.
    let deadline = Instant::now() + WAIT;
    while acked.load(Ordering::SeqCst) < 40 {
        assert!(Instant::now() < deadline, "no debits acknowledged");
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(s.stop("-KILL"), None);
    done_rx.recv_timeout(WAIT).unwrap();
    let acked = acked.load(Ordering::SeqCst);

    let s = Server::start(None, &["--data-dir", data.arg()]);
    let after = money(&s.account("1002"));
    let cent = Decimal::from_str("0.01").unwrap();
    let applied = (initial - after) / cent;
    let acked_d = Decimal::from(acked);
    assert!(
        applied == acked_d || applied == acked_d + Decimal::ONE,
        "{acked} acknowledged, {applied} applied"
    );
}

#[test]
fn a_second_server_on_a_locked_data_dir_exits_69() {
    let data = TempDir::new("locked");
    let _first = Server::start(None, &["--data-dir", data.arg()]);
    let out = Command::new(ACCURATE)
        .args([
            "serve",
            "--rpc-tcp",
            "127.0.0.1:0",
            "--rpc-http",
            "127.0.0.1:0",
        ])
        .args(["--data-dir", data.arg()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(69), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("in use by another process"), "{err}");
}

fn redis_url() -> String {
    std::env::var("ACCURATE_TEST_REDIS").unwrap_or_else(|_| "redis://127.0.0.1:6379/0".into())
}

/// A Redis key prefix of its own and a config file using it; the keys
/// are deleted when dropped.
struct RedisPrefix {
    prefix: String,
    config: PathBuf,
}

impl RedisPrefix {
    fn new(tag: &str) -> RedisPrefix {
        let prefix = format!("{}:", unique(tag));
        let config = std::env::temp_dir().join(format!("{}.toml", unique(tag)));
        std::fs::write(
            &config,
            format!(
                "[storage]\nredis = \"{}\"\nredis-prefix = \"{prefix}\"\n",
                redis_url()
            ),
        )
        .unwrap();
        RedisPrefix { prefix, config }
    }
}

impl Drop for RedisPrefix {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.config);
        let _ = Command::new("redis-cli")
            .args(["-u", &redis_url(), "EVAL"])
            .arg("for _,k in ipairs(redis.call('KEYS', ARGV[1])) do redis.call('DEL', k) end")
            .args(["0", &format!("{}*", self.prefix)])
            .output();
    }
}

/// Two servers on one Redis prefix debit one account from many parallel
/// calls: each debit is all or nothing, the balance never goes below
/// zero, and successes + INSUFFICIENT_CREDIT = calls.
#[test]
fn two_servers_sharing_redis_debit_one_account_exactly() {
    let r = RedisPrefix::new("two");
    let plan = plan_dir();
    let (d1, d2) = (TempDir::new("r1"), TempDir::new("r2"));
    let a = Server::start(
        Some(&r.config),
        &[
            "--data-dir",
            d1.arg(),
            "--tariffplan",
            plan.to_str().unwrap(),
        ],
    );
    // The second server takes the plan the first saved in Redis.
    let b = Server::start(Some(&r.config), &["--data-dir", d2.arg()]);
    assert!(
        b.lines
            .iter()
            .any(|l| l.contains("restored the saved tariff plan")),
        "{:?}",
        b.lines
    );
    // A fresh account without triggers, 1.00 of credit: 100 debits of
    // 0.01.
    let set = json!({"Tenant": "acme.test", "Account": "pool"});
    assert_eq!(a.call("APIerSv1.SetAccount", set), json!("OK"));
    let add = json!({"Tenant": "acme.test", "Account": "pool", "BalanceType": "*monetary",
                     "Value": 1, "Balance": {"ID": "credit"}});
    assert_eq!(b.call("APIerSv1.AddBalance", add), json!("OK"));
    assert_eq!(money(&a.account("pool")), Decimal::ONE);

    const THREADS: usize = 6;
    const PER_THREAD: usize = 25;
    let ok = Arc::new(AtomicUsize::new(0));
    let refused = Arc::new(AtomicUsize::new(0));
    let mut handles = Vec::new();
    for i in 0..THREADS {
        let addr = if i % 2 == 0 {
            a.tcp.clone()
        } else {
            b.tcp.clone()
        };
        let (ok, refused) = (Arc::clone(&ok), Arc::clone(&refused));
        handles.push(std::thread::spawn(move || {
            let mut c = Tcp::connect(&addr);
            for _ in 0..PER_THREAD {
                let r = c
                    .call("APIerSv1.DebitUsage", usage("pool", "1002", "1s"))
                    .expect("a reply");
                if r == json!("OK") {
                    ok.fetch_add(1, Ordering::SeqCst);
                } else {
                    assert_eq!(r, json!("ERR:SERVER_ERROR: INSUFFICIENT_CREDIT"));
                    refused.fetch_add(1, Ordering::SeqCst);
                }
            }
        }));
    }
    for h in handles {
        h.join().unwrap();
    }
    let (ok, refused) = (ok.load(Ordering::SeqCst), refused.load(Ordering::SeqCst));
    assert_eq!(ok + refused, THREADS * PER_THREAD);
    assert_eq!(ok, 100, "{refused} refused");
    for s in [&a, &b] {
        let left = money(&s.account("pool"));
        assert_eq!(left, Decimal::ONE - Decimal::from(ok) / Decimal::from(100));
        assert!(left >= Decimal::ZERO);
    }
}

/// `accurate load DIR --data-dir D` loads into a stopped server's store:
/// the next `accurate serve` on D has the plan and the accounts, with the
/// `*asap` actions run once. While a server holds D, the load is refused.
#[test]
fn load_into_a_stopped_servers_data_dir() {
    let data = TempDir::new("offline");
    let plan = plan_dir();
    let load = || {
        Command::new(ACCURATE)
            .args(["load", plan.to_str().unwrap(), "--data-dir", data.arg()])
            .output()
            .unwrap()
    };
    let out = load();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("2 accounts"), "{stdout}");
    let s = Server::start(None, &["--data-dir", data.arg()]);
    assert_eq!(money(&s.account("1001")), Decimal::from(10));
    let cost = s.call("APIerSv1.GetCost", get_cost());
    assert!(cost["Cost"].is_number(), "{cost}");
    let out = load();
    assert_eq!(out.status.code(), Some(69), "{out:?}");
}

/// The shared-group membership is rebuilt from the stored balances: after
/// a restart (with or without `--tariffplan`) a debit of 1001 still draws
/// on 3001's balance in the group.
#[test]
fn a_restart_rebuilds_shared_group_membership() {
    restart_with_shared_groups(false);
    restart_with_shared_groups(true);
}

fn restart_with_shared_groups(reload: bool) {
    let plan = TempDir::new("sgplan");
    std::fs::create_dir_all(&plan.0).unwrap();
    for e in std::fs::read_dir(plan_dir()).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), plan.0.join(e.file_name())).unwrap();
    }
    std::fs::write(
        plan.0.join("SharedGroups.csv"),
        "#ID,Account,Strategy,RatingSubject\nSG_FAMILY,*any,*lowest,\n",
    )
    .unwrap();
    let mut actions = std::fs::read_to_string(plan.0.join("Actions.csv")).unwrap();
    actions
        .push_str("ACT_FAMILY,*topup,,,family,*monetary,,*any,,SG_FAMILY,*unlimited,,5,30,,,10\n");
    std::fs::write(plan.0.join("Actions.csv"), actions).unwrap();
    let data = TempDir::new("sg");
    let mut s = Server::start(
        None,
        &["--data-dir", data.arg(), "--tariffplan", plan.arg()],
    );
    let r = s.call(
        "APIerSv1.ExecuteAction",
        json!({"Tenant": "acme.test", "Account": "1001", "ActionsId": "ACT_FAMILY"}),
    );
    assert_eq!(r, json!("OK"));
    // 3001 is not in AccountActions: a reload does not touch it; its
    // tenant is in no plan row either (the rebuild must list every
    // tenant of the store).
    let add = json!({"Tenant": "other.test", "Account": "3001", "BalanceType": "*monetary", "Value": 5,
                     "Balance": {"ID": "family", "Weight": 30, "SharedGroups": "SG_FAMILY"}});
    assert_eq!(s.call("APIerSv1.AddBalance", add), json!("OK"));
    assert_eq!(s.stop("-TERM"), Some(0));

    let s = if reload {
        Server::start(
            None,
            &["--data-dir", data.arg(), "--tariffplan", plan.arg()],
        )
    } else {
        Server::start(None, &["--data-dir", data.arg()])
    };
    // A reload runs the *asap welcome (10.00 of credit) again.
    let welcome = if reload {
        Decimal::from(10)
    } else {
        Decimal::ZERO
    };
    // 12 minutes cost 7.20: 1001's family 5 and 2.20 of 3001's (without
    // the membership, 1001's own credit would pay the 2.20).
    assert_eq!(
        s.call("APIerSv1.DebitUsage", usage("1001", "1002", "12m")),
        json!("OK")
    );
    let a3 = s.call(
        "APIerSv2.GetAccount",
        json!({"Tenant": "other.test", "Account": "3001"}),
    );
    let a1 = s.account("1001");
    assert_eq!(money(&a1), Decimal::from(10) + welcome, "{a1}");
    assert_eq!(money(&a3), Decimal::from_str("2.8").unwrap(), "{a3}");
}

/// Redis that cannot be reached at start: a clear error, exit 69.
#[test]
fn unreachable_redis_exits_69() {
    let config = std::env::temp_dir().join(format!("{}.toml", unique("noredis")));
    // Port 1: nothing listens there.
    std::fs::write(&config, "[storage]\nredis = \"redis://127.0.0.1:1/0\"\n").unwrap();
    let data = TempDir::new("noredis");
    let out = Command::new(ACCURATE)
        .arg("--config")
        .arg(&config)
        .args([
            "serve",
            "--rpc-tcp",
            "127.0.0.1:0",
            "--rpc-http",
            "127.0.0.1:0",
        ])
        .args(["--data-dir", data.arg()])
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&config);
    assert_eq!(out.status.code(), Some(69), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot reach Redis at redis://127.0.0.1:1/0"),
        "{err}"
    );
}

/// Two servers sharing Redis schedule the same recurring ActionPlan run:
/// one of them runs it, the other says so and skips it; the top-up is
/// applied once.
#[test]
fn two_servers_sharing_redis_run_a_scheduled_action_once() {
    let r = RedisPrefix::new("sched");
    let plan = TempDir::new("schedplan");
    std::fs::create_dir_all(&plan.0).unwrap();
    for e in std::fs::read_dir(plan_dir()).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), plan.0.join(e.file_name())).unwrap();
    }
    // Daily at a moment a few seconds away (both servers must be up).
    let at = chrono::Utc::now() + chrono::TimeDelta::seconds(8);
    std::fs::write(
        plan.0.join("Timings.csv"),
        format!("TM_SOON,*any,*any,*any,*any,{}\n", at.format("%H:%M:%S")),
    )
    .unwrap();
    let mut plans = std::fs::read_to_string(plan.0.join("ActionPlans.csv")).unwrap();
    plans.push_str("AP_SOON,ACT_LOW,TM_SOON,10\n");
    std::fs::write(plan.0.join("ActionPlans.csv"), plans).unwrap();
    let mut accts = std::fs::read_to_string(plan.0.join("AccountActions.csv")).unwrap();
    accts.push_str("acme.test,3001,AP_SOON,,,\n");
    std::fs::write(plan.0.join("AccountActions.csv"), accts).unwrap();
    let (d1, d2) = (TempDir::new("s1"), TempDir::new("s2"));
    let a = Server::start(
        Some(&r.config),
        &["--data-dir", d1.arg(), "--tariffplan", plan.arg()],
    );
    let b = Server::start(Some(&r.config), &["--data-dir", d2.arg()]);
    assert!(
        b.lines
            .iter()
            .any(|l| l.contains("restored the saved tariff plan")),
        "{:?}",
        b.lines
    );
    // Wait for the server that lost the claim to say so.
    let deadline = Instant::now() + WAIT;
    let skipped = loop {
        let line = a
            .stderr
            .try_recv()
            .ok()
            .or_else(|| b.stderr.try_recv().ok());
        match line {
            Some(l) if l.contains("run by another server") => break l,
            Some(_) => {}
            None => {
                assert!(Instant::now() < deadline, "no server skipped the run");
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    };
    assert!(skipped.contains("AP_SOON"), "{skipped}");
    // The winner may still be applying it: wait for the top-up.
    loop {
        let acc = a.account("3001");
        let bonus: Vec<Value> = acc["BalanceMap"]["*monetary"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|b| b["ID"] == json!("bonus"))
            .cloned()
            .collect();
        if let [one] = bonus.as_slice() {
            assert_eq!(one["Value"], json!(1), "{acc}");
            break;
        }
        assert!(bonus.is_empty(), "{acc}");
        assert!(Instant::now() < deadline, "the plan did not run: {acc}");
        std::thread::sleep(Duration::from_millis(100));
    }
}
