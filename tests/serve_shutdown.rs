//! SIGTERM of `accurate serve` while its CDR database cannot be reached:
//! the server ends within a few seconds (it does not wait out the pool's
//! connection timeout once per retry), says what it left, exits 75
//! (EX_TEMPFAIL), and the call whose CDR it could not store gets it at
//! the next start, charged once.
//!
//! The database is PostgreSQL (a schema of its own) reached through a TCP
//! relay the test runs; the test closes the relay (its listener and every
//! connection), so the server's connections break and new ones are
//! refused, as when the database host goes away.
#![allow(clippy::unwrap_used)]

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use rust_decimal::Decimal;
use serde_json::{Value, json};

mod common;
mod serve_common;

use serve_common::{
    PgSchema, Server, credit, hep_udp_addr, metric, restamp_hep, rpc, send_udp, temp_data_dir,
    wait_until,
};

/// The longest a stop may take here: the grace the server gives an
/// unreachable database (3 s), one last short try, and the exit, with
/// room for a loaded machine; before the fix it took over a minute.
const STOP_LIMIT: Duration = Duration::from_secs(20);

fn plan_dir() -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/tariffplans/sessions")
        .to_str()
        .unwrap()
        .to_owned()
}

/// The HEP packets of one call in a capture of the repository.
fn call_hep(capture: &str) -> Vec<Vec<u8>> {
    let hep = common::wire_hep(&common::root().join("captures").join(capture));
    assert!(!hep.is_empty(), "{capture}: no HEP");
    hep.into_iter().map(|h| h.bytes).collect()
}

/// A TCP relay from a port of its own to `to`, until [`Relay::close`].
struct Relay {
    port: u16,
    closed: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<TcpStream>>>,
}

impl Relay {
    fn start(to: &str) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let closed = Arc::new(AtomicBool::new(false));
        let conns: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let (c, k, to) = (Arc::clone(&closed), Arc::clone(&conns), to.to_owned());
        std::thread::spawn(move || {
            // The listener goes with this thread: connections are refused.
            while !c.load(Ordering::SeqCst) {
                let Ok((a, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(5));
                    continue;
                };
                a.set_nonblocking(false).unwrap();
                let b = TcpStream::connect(&to).unwrap();
                let mut all = k.lock().unwrap();
                all.extend([a.try_clone().unwrap(), b.try_clone().unwrap()]);
                pump(a.try_clone().unwrap(), b.try_clone().unwrap());
                pump(b, a);
            }
        });
        Relay {
            port,
            closed,
            conns,
        }
    }

    /// No more connections; the open ones cut.
    fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        std::thread::sleep(Duration::from_millis(50));
        for c in self.conns.lock().unwrap().drain(..) {
            let _ = c.shutdown(Shutdown::Both);
        }
    }
}

fn pump(mut from: TcpStream, mut to: TcpStream) {
    std::thread::spawn(move || {
        let mut buf = [0u8; 16 * 1024];
        loop {
            match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if to.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            }
        }
        let _ = to.shutdown(Shutdown::Both);
    });
}

fn cdrs(s: &Server) -> Vec<Value> {
    rpc(s, "CDRsV1.GetCDRs", json!({}))
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn cost(c: &Value) -> Decimal {
    c["Cost"].to_string().parse().unwrap()
}

const CONFIG: &str = "[api]\nrpc-tcp = \"127.0.0.1:0\"\nrpc-http = \"127.0.0.1:0\"\n\
                      [cdrs]\nbatch-size = 1\nflush-interval-ms = 1\n\
                      [mapping]\nrequest-type = \"*postpaid\"\n";

#[test]
fn sigterm_with_the_cdr_database_unreachable_ends_soon_and_loses_no_cdr() {
    let pgs = PgSchema::new("serve_shutdown");
    let pg = &pgs.base;
    let db_host = pg
        .split_once('@')
        .and_then(|(_, rest)| rest.split_once('/'))
        .map(|(host, _)| host.to_owned())
        .unwrap();
    let relay = Relay::start(&db_host);
    let direct = pgs.url.clone();
    let relayed = direct.replace(&db_host, &format!("127.0.0.1:{}", relay.port));
    let data = temp_data_dir();
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
        Some(CONFIG),
    );
    let udp = hep_udp_addr(&s);
    // A first call, stored while the database answers.
    send_udp(
        &udp,
        &restamp_hep(&call_hep("answered-callee-bye.pcap"), SystemTime::now()),
    );
    wait_until("the first CDR", || cdrs(&s).len() == 1);

    // The database goes away; a second call ends: charged, its CDR queued
    // and retried.
    relay.close();
    send_udp(
        &udp,
        &restamp_hep(&call_hep("early-media-183.pcap"), SystemTime::now()),
    );
    wait_until("the second CDR submitted", || {
        metric(&s, "accurate_cdr_writer_total{name=\"submitted\"}") == 2
    });
    let charged = credit(&s, "4971112345");

    let started = Instant::now();
    let (status, lines) = stop(&mut s);
    let took = started.elapsed();
    assert!(took < STOP_LIMIT, "SIGTERM took {took:?}: {lines:?}");
    assert_eq!(status.code(), Some(75), "{lines:?}");
    for want in [
        "serve: cdrs_stored: 1",
        "serve: cdrs_abandoned: 1",
        "serve: sessions.cdrs_unstored: 1",
    ] {
        assert!(lines.iter().any(|l| l == want), "{want}: {lines:?}");
    }
    assert!(
        lines
            .iter()
            .any(|l| l.contains("CDRs not stored") && l.contains("next start")),
        "{lines:?}"
    );
    drop(s);

    // The database back (directly): the call's saved end is finished at
    // the start, its charge replayed from the account's mark (no second
    // debit) and its CDR stored.
    let s = Server::start_with(&["--cdr-db", &direct, "--data-dir", data_arg], Some(CONFIG));
    wait_until("the second CDR", || cdrs(&s).len() == 2);
    let all = cdrs(&s);
    assert!(
        all.iter().any(|c| c["OriginID"] == "1-13708@127.0.0.1"),
        "{all:?}"
    );
    assert_eq!(credit(&s, "4971112345"), charged);
    let total: Decimal = all.iter().map(cost).sum();
    assert_eq!(Decimal::from(10) - total, charged, "{all:?}");
    drop(s);
    let _ = std::fs::remove_dir_all(&data);
    pgs.drop_schema();
}

/// SIGTERM, then the exit status and stderr, waiting at most
/// [`STOP_LIMIT`] (then the server is killed and the test fails).
fn stop(s: &mut Server) -> (std::process::ExitStatus, Vec<String>) {
    let pid = s.child.id().to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let end = Instant::now() + STOP_LIMIT;
    let status = loop {
        if let Some(st) = s.child.try_wait().unwrap() {
            break st;
        }
        if Instant::now() > end {
            let _ = s.child.kill();
            let lines: Vec<String> = s.stderr.try_iter().collect();
            panic!("serve did not stop within {STOP_LIMIT:?} of SIGTERM: {lines:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut lines = std::mem::take(&mut s.seen);
    // The reader thread may still be taking the last lines.
    std::thread::sleep(Duration::from_millis(100));
    lines.extend(s.stderr.try_iter());
    (status, lines)
}
