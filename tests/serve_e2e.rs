//! End to end with the real peers (issue 9, "Tests, with the real thing"):
//! Kamailio's siptrace sends HEPv3, over UDP and in a second run over TCP,
//! for a few hundred sipp calls of every kind the captures cover (answered
//! with either side hanging up, busy, cancel, not found, re-INVITE, early
//! media, 407 then retry) at 32 calls/s from the postpaid accounts
//! 1001-1003; tcpdump on loopback is the oracle, and `accurate replay` of
//! its capture with `tests/data/tariffplans/e2e` gives the expected CDRs
//! (harness in `tests/e2e_common/`).
//!
//! - `harness_hep_udp`, `harness_hep_tcp` (run today): the harness itself.
//!   The oracle shows exactly the calls sipp was told to make (count, cause,
//!   caller, billable time per scenario); `accurate sniff --hep` receives
//!   every HEP packet Kamailio sent; and the HEP stream, replayed, gives the
//!   same calls as the wire: same CGRIDs, fields and costs, usages within
//!   250 ms (Kamailio's HEP stamps lag the wire when it is busy).
//! - `serve_capture_*`: `accurate serve --hep` in place of
//!   sniff receives every HEP copy and follows every call to its end, by its
//!   `GET /metrics` counters.
//! - `serve_hep_*`, `serve_kill9_restart`:
//!   `accurate serve --hep` in place of sniff; afterwards every call has
//!   exactly one `*default` CDR from `CDRsV1.GetCDRs` that matches the
//!   oracle, and each account is debited by exactly the sum of its CDRs.
//!   With the CDRs in SQLite (the default) and in PostgreSQL, and once with
//!   a `kill -9` of serve in the middle of the traffic.
//!
//! Needs root (tcpdump) and kamailio, sipp, tcpdump; without them each test
//! says it is skipped and passes, unless `ACCURATE_REQUIRE_PEERS` is set.
//! Own ports and scratch folder per run: the runs go in parallel.
#![allow(missing_docs, clippy::unwrap_used)]

mod common;
mod e2e_common;
mod serve_common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rust_decimal::Decimal;
use serde_json::{Value, json};

use common::{ACCURATE, Proc, parse_sniff, root};
use e2e_common::{
    ACCOUNTS, CALLS, Cdr, HepTransport, INITIAL_BALANCE, RATE, Replay, Run, SCENARIOS, TARIFFPLAN,
    assert_same_calls, check_oracle, cost_per_account, tools, wait_for_line,
};
use serve_common::Server;

/// How long the server may take to store the last CDR after the last call.
const CDR_WAIT: Duration = Duration::from_secs(30);
/// A call that ended this close before the `kill -9` need not be stored:
/// its end waits out the dialog reorder window (200 ms) and the CDR
/// batch, not acknowledged to anyone yet. After the restart, 200 ms of
/// timestamp noise.
const KILL_MARGIN_NS: i64 = 1_000_000_000;

#[test]
fn harness_hep_udp() {
    harness("harness-udp", HepTransport::Udp);
}

#[test]
fn harness_hep_tcp() {
    harness("harness-tcp", HepTransport::Tcp);
}

#[test]
fn serve_capture_udp() {
    serve_capture("capture-udp", HepTransport::Udp);
}

#[test]
fn serve_capture_tcp() {
    serve_capture("capture-tcp", HepTransport::Tcp);
}

#[test]
fn serve_hep_udp_sqlite() {
    serve("serve-udp", HepTransport::Udp, None);
}

#[test]
fn serve_hep_tcp_sqlite() {
    serve("serve-tcp", HepTransport::Tcp, None);
}

#[test]
fn serve_hep_udp_postgres() {
    let db = PgDatabase::create("udp");
    serve("serve-pg", HepTransport::Udp, Some(&db.url));
}

#[test]
fn serve_kill9_restart() {
    kill9("serve-kill9", HepTransport::Udp);
}

/// The harness with `accurate sniff` as the HEP receiver.
fn harness(tag: &str, hep: HepTransport) {
    let Some(tools) = tools(tag) else { return };
    let t0 = Instant::now();
    let mut run = Run::start(tag, tools, hep);
    let listen = run.hep_listen();
    let mut sniff = Proc::spawn(
        "accurate sniff",
        Command::new(ACCURATE)
            .args(["sniff", "--hep", &listen, "--format", "json"])
            .args(["--duration", "120"])
            .stdin(Stdio::null())
            .stdout(run.dir.log("sniff.out"))
            .stderr(run.dir.log("sniff.err")),
    );
    wait_for_line(&run.dir, "sniff.err", &format!("listening on {listen}"));
    run.start_kamailio();
    let calls = run.start_calls();
    let took = run.finish_calls(calls);
    // the last copies: until sniff's output stops growing
    wait_stable(Duration::from_secs(10), || {
        run.dir.read("sniff.out").lines().count()
    });
    let st = sniff
        .stop("TERM", Duration::from_secs(15))
        .unwrap_or_else(|| panic!("sniff did not exit on SIGTERM"));
    assert!(st.success(), "sniff: {st}\n{}", run.dir.read("sniff.err"));
    run.stop_capture();
    let traffic = t0.elapsed();

    let oracle = run.oracle();
    let n = check_oracle(&oracle.cdrs);
    let heps = run.hep_view();
    assert_same_calls("the HEP stream vs the wire", &oracle.cdrs, &heps.cdrs);

    // sniff printed every HEP copy on the wire, and they are of the calls
    let lines = parse_sniff(&run.dir.read("sniff.out"));
    assert_eq!(
        lines.len() as u64,
        heps.sip_messages,
        "sniff printed {} messages, Kamailio sent {} HEP copies (tcpdump)",
        lines.len(),
        heps.sip_messages
    );
    assert!(lines.iter().all(|l| l.source == "hep"));
    let sniffed: BTreeSet<String> = lines.iter().filter_map(|l| l.call_id.clone()).collect();
    let calls: BTreeSet<String> = oracle.cdrs.iter().map(|c| c.origin_id.clone()).collect();
    assert_eq!(
        sniffed, calls,
        "Call-IDs sniff saw vs the calls on the wire"
    );
    eprintln!(
        "{tag}: {n} calls ({} scenarios x {CALLS} at {} calls/s) in {:.1} s, {} SIP messages \
         on the wire, {} HEP copies; traffic and capture {:.1} s, checks {:.1} s",
        SCENARIOS.len(),
        SCENARIOS.len() * RATE,
        took.as_secs_f64(),
        oracle.sip_messages,
        heps.sip_messages,
        traffic.as_secs_f64(),
        (t0.elapsed() - traffic).as_secs_f64()
    );
}

/// `accurate serve --hep` (capture only, before the session manager): it
/// receives every HEP copy and follows every call to its end, as its
/// `GET /metrics` counters say.
fn serve_capture(tag: &str, hep: HepTransport) {
    let Some(ServeRun {
        server,
        run,
        oracle,
        n,
        ..
    }) = serve_traffic(tag, hep, None)
    else {
        return;
    };
    let heps = run.hep_view();
    let answered = oracle.cdrs.iter().filter(|c| c.answered).count();
    let want = [
        ("accurate_capture_sip_messages_total", heps.sip_messages),
        ("accurate_cdrs_total", n as u64),
        (
            "accurate_dialog_events_total{kind=\"answer\"}",
            answered as u64,
        ),
        (
            "accurate_dialog_events_total{kind=\"end\"}",
            answered as u64,
        ),
        (
            "accurate_dialog_events_total{kind=\"failed\"}",
            (n - answered) as u64,
        ),
    ];
    let deadline = Instant::now() + CDR_WAIT;
    loop {
        let m = metrics(&server);
        let got: Vec<Option<u64>> = want.iter().map(|(k, _)| m.get(*k).copied()).collect();
        if want.iter().zip(&got).all(|((_, w), g)| Some(*w) == *g) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "serve's /metrics {got:?}, expected {want:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// `GET /metrics`: the whole-number samples by name (with labels).
fn metrics(server: &Server) -> BTreeMap<String, u64> {
    use std::io::{Read, Write};
    let mut c = std::net::TcpStream::connect(&server.http).unwrap();
    write!(
        c,
        "GET /metrics HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
        server.http
    )
    .unwrap();
    let mut text = String::new();
    c.read_to_string(&mut text).unwrap();
    assert!(text.starts_with("HTTP/1.1 200"), "GET /metrics: {text}");
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (k, v) = l.rsplit_once(' ')?;
            Some((k.to_owned(), v.parse().ok()?))
        })
        .collect()
}

/// `accurate serve --hep` receives the calls; its CDRs and debits must be
/// the oracle's.
fn serve(tag: &str, hep: HepTransport, cdr_db: Option<&str>) {
    let Some(ServeRun {
        server,
        run,
        data,
        oracle,
        n,
    }) = serve_traffic(tag, hep, cdr_db)
    else {
        return;
    };

    let got = wait_cdrs(&server, n);
    assert_same_calls("accurate serve's CDRs vs the wire", &oracle.cdrs, &got);
    check_debits(&server, &got);
    // and all of it survives a clean stop and a start
    let mut server = server;
    let (st, lines) = server.signal("-TERM");
    assert!(st.success(), "serve on SIGTERM: {st}\n{}", lines.join("\n"));
    let server = start_serve(&run, &data, cdr_db, false);
    let again = cdrs(&server);
    assert_same_calls("the CDRs after a restart", &oracle.cdrs, &again);
    check_debits(&server, &again);
}

/// A run with `accurate serve --hep` as the receiver, after the calls.
struct ServeRun {
    // dropped first: it lives in the run's folder
    server: Server,
    run: Run,
    data: PathBuf,
    oracle: Replay,
    /// Calls on the wire.
    n: usize,
}

/// Starts serve (with the test's plan) and the peers, makes the calls and
/// reads the oracle; None when the peers are missing.
fn serve_traffic(tag: &str, hep: HepTransport, cdr_db: Option<&str>) -> Option<ServeRun> {
    let mut run = Run::start(tag, tools(tag)?, hep);
    let data = run.dir.file("data");
    let server = start_serve(&run, &data, cdr_db, true);
    run.start_kamailio();
    let calls = run.start_calls();
    run.finish_calls(calls);
    run.stop_capture();
    let oracle = run.oracle();
    let n = check_oracle(&oracle.cdrs);
    Some(ServeRun {
        server,
        run,
        data,
        oracle,
        n,
    })
}

/// `kill -9` of serve while the calls run, then a restart on the same data
/// dir and HEP port. Calls that ended before the kill, calls that started
/// after the restart, and calls in progress across it (INVITE and answer
/// before, BYE after: the persisted session ends with the BYE) must each
/// have exactly one CDR matching the oracle. A call with a message sent
/// while no server listened (the HEP copy is lost) may have a CDR or not,
/// never two; so may a call that ended within [`KILL_MARGIN_NS`] before the
/// kill. Each account is debited by exactly the sum of its stored
/// CDRs: no double debit.
fn kill9(tag: &str, hep: HepTransport) {
    let Some(tools) = tools(tag) else { return };
    let mut run = Run::start(tag, tools, hep);
    let data = run.dir.file("data");
    let mut server = start_serve(&run, &data, None, true);
    run.start_kamailio();
    let calls = run.start_calls();
    // about 40% into the calls being placed (CALLS / RATE seconds)
    std::thread::sleep(Duration::from_millis(
        u64::try_from(CALLS * 400 / RATE).unwrap(),
    ));
    let killed = now_ns();
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    drop(server);
    let server = start_serve(&run, &data, None, false);
    let back = now_ns();
    run.finish_calls(calls);
    run.stop_capture();
    let oracle = run.oracle();
    check_oracle(&oracle.cdrs);

    let gap = (killed - KILL_MARGIN_NS)..(back + 200_000_000);
    let (must, may): (Vec<Cdr>, Vec<Cdr>) = oracle.cdrs.iter().cloned().partition(|c| {
        let setup = time_ns(&c.raw["SetupTime"]);
        let answer = c.raw["AnswerTime"]
            .as_str()
            .map(|_| time_ns(&c.raw["AnswerTime"]));
        let end = time_ns(&c.raw["ExtraFields"]["EndTime"]);
        let before = end < gap.start;
        let after = setup > gap.end;
        // in progress across the gap with no message in it (a re-INVITE
        // mid-call may fall in it: those are left out)
        let across = setup < gap.start
            && answer.is_some_and(|a| a + 200_000_000 < gap.start)
            && end > gap.end
            && c.destination != "49171000006";
        before || after || across
    });
    assert!(
        must.len() * 3 > oracle.cdrs.len(),
        "the gap took most of the calls ({} of {} certain): restart too slow?",
        must.len(),
        oracle.cdrs.len()
    );
    let got = wait_cdrs(&server, must.len());
    let certain: BTreeSet<&str> = must.iter().map(|c| c.cgrid.as_str()).collect();
    let (mine, rest): (Vec<Cdr>, Vec<Cdr>) = got
        .iter()
        .cloned()
        .partition(|c| certain.contains(c.cgrid.as_str()));
    assert_same_calls("serve's CDRs across kill -9", &must, &mine);
    let uncertain: BTreeSet<&str> = may.iter().map(|c| c.cgrid.as_str()).collect();
    let mut per: BTreeMap<&str, usize> = BTreeMap::new();
    for c in &rest {
        assert!(
            uncertain.contains(c.cgrid.as_str()),
            "a CDR of no call on the wire: {}",
            c.raw
        );
        *per.entry(c.cgrid.as_str()).or_default() += 1;
    }
    assert!(per.values().all(|&n| n == 1), "calls stored twice: {per:?}");
    check_debits(&server, &got);
    eprintln!(
        "{tag}: {} calls, {} certain, {} in the gap of {} ms of which {} stored",
        oracle.cdrs.len(),
        must.len(),
        may.len(),
        (back - killed) / 1_000_000,
        rest.len()
    );
}

/// Starts `accurate serve --hep` (with the test's plan when `load`; a
/// restart must not load it again, or the `*asap` top-up would reset the
/// balances) and waits until it listens for HEP.
fn start_serve(run: &Run, data: &Path, cdr_db: Option<&str>, load: bool) -> Server {
    let config = std::fs::read_to_string(&run.config).unwrap();
    let listen = run.hep_listen();
    let data = data.to_str().unwrap().to_owned();
    let plan = root().join(TARIFFPLAN).to_str().unwrap().to_owned();
    let mut extra = vec!["--hep", &listen, "--data-dir", &data];
    if load {
        extra.extend(["--tariffplan", &plan]);
    }
    if let Some(db) = cdr_db {
        extra.extend(["--cdr-db", db]);
    }
    let mut server = Server::start_with(&extra, Some(&config));
    let want = format!("listening on {listen}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !server.seen.iter().any(|l| l.contains(&want)) {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = server
            .stderr
            .recv_timeout(left)
            .unwrap_or_else(|_| panic!("serve never printed `{want}`: {:?}", server.seen));
        server.seen.push(line);
    }
    server
}

/// Polls `CDRsV1.GetCDRsCount` until at least `n` CDRs are stored and the
/// count holds for a second (a late extra one would show), then returns
/// `CDRsV1.GetCDRs`.
fn wait_cdrs(server: &Server, n: usize) -> Vec<Cdr> {
    let deadline = Instant::now() + CDR_WAIT;
    let mut last = (0, Instant::now());
    loop {
        let reply = server.http_call("CDRsV1.GetCDRsCount", json!({}));
        let count = reply["result"].as_u64().unwrap_or(0);
        if count != last.0 {
            last = (count, Instant::now());
        }
        if count >= n as u64 && last.1.elapsed() >= Duration::from_secs(1) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "serve stored {count} CDRs, expected {n}: {reply}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    cdrs(server)
}

/// Every stored CDR (`CDRsV1.GetCDRs`).
fn cdrs(server: &Server) -> Vec<Cdr> {
    let reply = server.http_call("CDRsV1.GetCDRs", json!({"Limit": 100_000}));
    let list = reply["result"]
        .as_array()
        .unwrap_or_else(|| panic!("CDRsV1.GetCDRs: {reply}"));
    list.iter().map(Cdr::parse).collect()
}

/// Each account was debited (its `*monetary` balances, `APIerSv2.GetAccount`)
/// by exactly the sum of the costs of its stored CDRs.
fn check_debits(server: &Server, cdrs: &[Cdr]) {
    let costs = cost_per_account(cdrs);
    let initial: Decimal = INITIAL_BALANCE.parse().unwrap();
    for a in ACCOUNTS {
        let reply = server.http_call(
            "APIerSv2.GetAccount",
            json!({"Tenant": "cgrates.org", "Account": a}),
        );
        let left: Decimal = reply["result"]["BalanceMap"]["*monetary"]
            .as_array()
            .unwrap_or_else(|| panic!("{a}: no *monetary balance: {reply}"))
            .iter()
            .map(|b| decimal(&b["Value"]))
            .sum();
        let want = costs.get(a).copied().unwrap_or(Decimal::ZERO);
        assert!(want > Decimal::ZERO, "{a} made no rated call");
        assert_eq!(
            initial - left,
            want,
            "{a}: debited {} for CDRs costing {want}: {reply}",
            initial - left
        );
    }
}

fn decimal(v: &Value) -> Decimal {
    match v {
        Value::Number(n) => n.to_string().parse().unwrap(),
        Value::String(s) => s.parse().unwrap(),
        other => panic!("not a number: {other}"),
    }
}

/// Calls `sample` every 100 ms until it returns the same value for 1 s (at
/// most `limit`).
fn wait_stable<T: PartialEq>(limit: Duration, mut sample: impl FnMut() -> T) {
    let end = Instant::now() + limit;
    let mut last = sample();
    let mut since = Instant::now();
    while Instant::now() < end && since.elapsed() < Duration::from_secs(1) {
        std::thread::sleep(Duration::from_millis(100));
        let v = sample();
        if v != last {
            last = v;
            since = Instant::now();
        }
    }
}

fn now_ns() -> i64 {
    i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos(),
    )
    .unwrap()
}

/// An RFC 3339 time of a CDR, in ns since the epoch.
fn time_ns(v: &Value) -> i64 {
    let s = v.as_str().unwrap_or_else(|| panic!("not a time: {v}"));
    chrono::DateTime::parse_from_rfc3339(s)
        .unwrap_or_else(|e| panic!("{s}: {e}"))
        .timestamp_nanos_opt()
        .unwrap()
}

/// A PostgreSQL database of its own (the real server on 127.0.0.1:5432),
/// dropped at the end.
struct PgDatabase {
    name: String,
    url: String,
}

impl PgDatabase {
    fn create(tag: &str) -> PgDatabase {
        let name = format!("accurate_e2e_{}_{tag}", std::process::id());
        psql(&format!("DROP DATABASE IF EXISTS {name}"));
        psql(&format!("CREATE DATABASE {name}"));
        PgDatabase {
            url: format!("postgres://postgres@127.0.0.1:5432/{name}"),
            name,
        }
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        psql(&format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        ));
    }
}

fn psql(sql: &str) {
    let st = Command::new("psql")
        .args([
            "-h",
            "127.0.0.1",
            "-U",
            "postgres",
            "-d",
            "test",
            "-qc",
            sql,
        ])
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(st.success(), "psql {sql:?} failed");
}
