//! `accurate send-hep` end to end: shipped captures sent to `accurate sniff
//! --hep` over loopback UDP and TCP. Every SIP message must arrive with its
//! Call-ID, start line, addresses and time (tshark is the oracle for the raw
//! SIP of the capture); `--now` shifts every stamp by one offset; `--copies`
//! multiplies the Call-IDs.
#![allow(missing_docs, clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use common::{ACCURATE, SniffLine, parse_sniff, root, wire_sip_udp};

/// A running `accurate sniff --hep PROTO:127.0.0.1:0 --count N`.
struct Sniff {
    child: Child,
    stderr: PathBuf,
    to: String,
}

impl Drop for Sniff {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.stderr);
    }
}

fn sniff(name: &str, proto: &str, count: usize) -> Sniff {
    let stderr = std::env::temp_dir().join(format!(
        "accurate-send-hep-{name}-{}.err",
        std::process::id()
    ));
    let child = Command::new(ACCURATE)
        .args(["sniff", "--format", "json", "--duration", "60"])
        .args(["--hep", &format!("{proto}:127.0.0.1:0")])
        .args(["--count", &count.to_string()])
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&stderr).unwrap())
        .spawn()
        .unwrap();
    let mut s = Sniff {
        child,
        stderr,
        to: String::new(),
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let text = std::fs::read_to_string(&s.stderr).unwrap_or_default();
        if let Some(b) = text.lines().find_map(|l| l.strip_prefix("listening on ")) {
            s.to = b.trim().to_string();
            return s;
        }
        assert!(Instant::now() < deadline, "sniff did not bind: {text}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits for sniff to stop at its count; its lines.
fn received(mut s: Sniff) -> Vec<SniffLine> {
    let mut out = String::new();
    s.child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    let code = s.child.wait().unwrap();
    let err = std::fs::read_to_string(&s.stderr).unwrap();
    assert!(code.success(), "sniff exited with {code}: {err}");
    parse_sniff(&out)
}

/// Runs send-hep; its stderr.
fn send(files: &[&Path], to: &str, extra: &[&str]) -> String {
    let out = Command::new(ACCURATE)
        .arg("send-hep")
        .args(files)
        .args(["--to", to])
        .args(extra)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "send-hep failed: {err}");
    err
}

/// The lines `accurate sniff FILE` prints for the capture itself.
fn in_file(file: &Path) -> Vec<SniffLine> {
    let out = Command::new(ACCURATE)
        .args(["sniff", "--format", "json"])
        .arg(file)
        .output()
        .unwrap();
    assert!(out.status.success());
    parse_sniff(&String::from_utf8(out.stdout).unwrap())
}

fn capture(name: &str) -> PathBuf {
    root().join("captures").join(name)
}

/// What must survive the trip, time aside.
type Key = (String, String, String, String, Option<String>, Option<u64>);

fn key(l: &SniffLine) -> Key {
    (
        l.src.clone(),
        l.dst.clone(),
        l.transport.clone(),
        l.first_line.clone(),
        l.call_id.clone(),
        l.raw["capture_id"].as_u64(),
    )
}

fn sorted_with_time(lines: &[SniffLine], shift: i128) -> Vec<(i128, Key)> {
    let mut v: Vec<_> = lines.iter().map(|l| (l.ts_ns + shift, key(l))).collect();
    v.sort();
    v
}

fn counter(stderr: &str, name: &str) -> u64 {
    let key = format!("send-hep: {name}: ");
    stderr
        .lines()
        .find_map(|l| l.strip_prefix(&key))
        .unwrap_or_else(|| panic!("no {name} in {stderr}"))
        .trim()
        .parse()
        .unwrap()
}

/// Every message of the capture (raw SIP and its HEP copies) arrives once,
/// with the same addresses, start line, Call-ID, capture id and time; the
/// raw SIP ones are exactly what tshark reads from the file.
#[test]
fn udp_delivers_every_message_with_its_time() {
    let file = capture("answered-caller-bye.pcap");
    let want = in_file(&file);
    let s = sniff("udp", "udp", want.len());
    let err = send(&[&file], &s.to, &[]);
    let got = received(s);
    assert_eq!(sorted_with_time(&got, 0), sorted_with_time(&want, 0));
    assert!(got.iter().all(|l| l.source == "hep"));
    assert_eq!(counter(&err, "packets"), want.len() as u64);
    assert_eq!(counter(&err, "calls"), 2);
    // The independent oracle: tshark's raw SIP over UDP (the HEP copies
    // carry capture id 2001, the raw messages none).
    let mut wire: Vec<_> = wire_sip_udp(&file)
        .into_iter()
        .map(|w| (w.ts_ns, w.src, w.dst, w.start_line, w.call_id))
        .collect();
    wire.sort();
    let mut raw: Vec<_> = got
        .iter()
        .filter(|l| l.raw["capture_id"].is_null())
        .map(|l| {
            let first = l.first_line.clone();
            (
                l.ts_ns,
                l.src.clone(),
                l.dst.clone(),
                first,
                l.call_id.clone().unwrap(),
            )
        })
        .collect();
    raw.sort();
    assert!(!wire.is_empty());
    assert_eq!(raw, wire);
}

/// `--now`: every stamp moves by the same offset, which puts the first
/// message at the time of sending.
#[test]
fn now_shifts_every_stamp_by_one_offset() {
    let file = capture("busy-486.pcap");
    let want = in_file(&file);
    let s = sniff("now", "udp", want.len());
    let before = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i128;
    send(&[&file], &s.to, &["--now"]);
    let got = received(s);
    let first = |v: &[SniffLine]| v.iter().map(|l| l.ts_ns).min().unwrap();
    // HEP carries microseconds: the offset is whole microseconds when the
    // capture's times are.
    let shift = first(&got) - first(&want);
    assert!(
        first(&got) >= before - 1_000 && first(&got) < before + 30_000_000_000,
        "first stamp {} not near the send time {before}",
        first(&got)
    );
    assert_eq!(sorted_with_time(&got, 0), sorted_with_time(&want, shift));
}

/// `--copies 3`: each Call-ID three times over, suffixed `-k1`..`-k3`, and
/// nothing else changed but the three extra bytes per message.
#[test]
fn copies_multiply_the_call_ids() {
    let file = capture("busy-486.pcap");
    let want = in_file(&file);
    let s = sniff("copies", "udp", want.len() * 3);
    let err = send(&[&file], &s.to, &["--copies", "3", "--as-fast"]);
    let got = received(s);
    let orig: BTreeSet<String> = want.iter().filter_map(|l| l.call_id.clone()).collect();
    let ids: BTreeSet<String> = got.iter().filter_map(|l| l.call_id.clone()).collect();
    let expect: BTreeSet<String> = orig
        .iter()
        .flat_map(|c| (1..=3).map(move |k| format!("{c}-k{k}")))
        .collect();
    assert_eq!(ids, expect);
    assert_eq!(counter(&err, "calls"), 3 * orig.len() as u64);
    // Per copy, the same messages as the capture, each 3 bytes longer.
    for k in 1..=3 {
        let sfx = format!("-k{k}");
        let mut copy: Vec<_> = got
            .iter()
            .filter(|l| l.call_id.as_deref().unwrap().ends_with(&sfx))
            .map(|l| {
                let cid = l
                    .call_id
                    .clone()
                    .unwrap()
                    .strip_suffix(&sfx)
                    .unwrap()
                    .to_owned();
                (
                    l.ts_ns,
                    l.first_line.clone(),
                    cid,
                    l.raw["len"].as_u64().unwrap(),
                )
            })
            .collect();
        copy.sort();
        let mut orig: Vec<_> = want
            .iter()
            .map(|l| {
                let cid = l.call_id.clone().unwrap();
                (
                    l.ts_ns,
                    l.first_line.clone(),
                    cid,
                    l.raw["len"].as_u64().unwrap() + 3,
                )
            })
            .collect();
        orig.sort();
        assert_eq!(copy, orig, "copy {k}");
    }
}

/// HEP over TCP, two files merged by time, at a fixed rate.
#[test]
fn tcp_delivers_two_files() {
    let a = capture("busy-486.pcap");
    let b = capture("notfound-404.pcap");
    let mut want = in_file(&a);
    want.extend(in_file(&b));
    let s = sniff("tcp", "tcp", want.len());
    let err = send(&[&a, &b], &s.to, &["--rate", "200"]);
    let got = received(s);
    assert_eq!(sorted_with_time(&got, 0), sorted_with_time(&want, 0));
    assert_eq!(counter(&err, "calls"), 2);
}

/// Failures: a missing file (66), a bad --to (2), a collector that refuses
/// the connection (69), each with a message.
#[test]
fn errors_have_their_codes() {
    let run = |args: &[&str]| {
        let out = Command::new(ACCURATE)
            .arg("send-hep")
            .args(args)
            .output()
            .unwrap();
        (
            out.status.code().unwrap(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let file = capture("busy-486.pcap");
    let file = file.to_str().unwrap();
    let (code, err) = run(&["no-such.pcap", "--to", "udp:127.0.0.1:9"]);
    assert_eq!(code, 66, "{err}");
    assert!(err.contains("no-such.pcap"), "{err}");
    let (code, err) = run(&[file, "--to", "sctp:127.0.0.1:9"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("udp:IP:PORT or tcp:IP:PORT"), "{err}");
    // A port nobody listens on: bind one, note it, close it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let to = format!("tcp:127.0.0.1:{port}");
    let (code, err) = run(&[file, "--to", &to]);
    assert_eq!(code, 69, "{err}");
    assert!(err.contains(&format!("cannot connect to {to}")), "{err}");
}
