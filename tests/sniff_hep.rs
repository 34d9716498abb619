//! `accurate sniff --hep`: the HEP listeners end to end, over real loopback
//! sockets: UDP and TCP at once, TCP framing across writes, bad packets
//! counted, the auth key enforced, SIGTERM ending the run with counters.
#![allow(missing_docs, clippy::unwrap_used)]

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream, UdpSocket};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use capture::Timestamp;
use capture::hep::{HepPacket, HepVersion, encode_v3};

const BIN: &str = env!("CARGO_BIN_EXE_accurate");

fn sip(call_id: &str) -> String {
    format!(
        "INVITE sip:1002@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK-{call_id}\r\n\
         From: <sip:1001@127.0.0.1>;tag=abc\r\nTo: <sip:1002@127.0.0.1>\r\nCall-ID: {call_id}\r\n\
         CSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"
    )
}

fn hep(call_id: &str, secs: u32, micros: u32, key: Option<&str>) -> Vec<u8> {
    encode_v3(&HepPacket {
        version: HepVersion::V3,
        ts: Timestamp::from_secs_micros(i64::from(secs), micros),
        ip_family: Some(2),
        ip_proto: Some(17),
        src_ipv4: Some(Ipv4Addr::new(192, 0, 2, 1)),
        dst_ipv4: Some(Ipv4Addr::new(192, 0, 2, 2)),
        src_port: Some(5061),
        dst_port: Some(5060),
        ts_secs: Some(secs),
        ts_micros: Some(micros),
        proto_type: Some(1),
        capture_id: Some(2001),
        auth_key: key.map(|k| Bytes::copy_from_slice(k.as_bytes())),
        payload: Some(Bytes::from(sip(call_id))),
        node_name: Some(Bytes::from_static(b"edge-1")),
        ..HepPacket::default()
    })
}

/// A running `accurate sniff`, its stderr in a file; killed on drop.
struct Sniff {
    child: Child,
    stderr: PathBuf,
    bound: Vec<SocketAddr>,
}

impl Drop for Sniff {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.stderr);
    }
}

fn start(name: &str, args: &[&str]) -> Sniff {
    let stderr =
        std::env::temp_dir().join(format!("accurate-test-{name}-{}.err", std::process::id()));
    let child = Command::new(BIN)
        .args(["sniff", "--format", "json"])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&stderr).unwrap())
        .spawn()
        .unwrap();
    // From here on the guard waits for the child, also when we panic.
    let mut s = Sniff {
        child,
        stderr,
        bound: Vec::new(),
    };
    let want = args.iter().filter(|a| **a == "--hep").count();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let text = std::fs::read_to_string(&s.stderr).unwrap_or_default();
        s.bound = text
            .lines()
            .filter_map(|l| l.strip_prefix("listening on "))
            .map(|b| b.split_once(':').unwrap().1.parse().unwrap())
            .collect();
        if s.bound.len() == want {
            return s;
        }
        assert!(Instant::now() < deadline, "sniff did not bind: {text}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Sends SIGTERM, waits, returns (stdout JSON lines, stderr).
fn finish(mut s: Sniff) -> (Vec<serde_json::Value>, String) {
    let status = Command::new("kill")
        .args(["-TERM", &s.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let mut out = String::new();
    s.child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    let code = s.child.wait().unwrap();
    assert!(code.success(), "sniff exited with {code}");
    let err = std::fs::read_to_string(&s.stderr).unwrap();
    let lines = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    (lines, err)
}

fn counter(stderr: &str, name: &str) -> u64 {
    let key = format!("sniff: {name}: ");
    stderr
        .lines()
        .find_map(|l| l.strip_prefix(&key))
        .unwrap_or_else(|| panic!("no counter {name} in {stderr}"))
        .trim()
        .parse()
        .unwrap()
}

/// Waits until `n` SIP lines could have been printed: the listener is
/// asynchronous, so give it a moment after the last send.
fn settle() {
    std::thread::sleep(Duration::from_millis(300));
}

#[test]
fn udp_and_tcp_at_once_with_framing_and_bad_packets() {
    let s = start(
        "both",
        &["--hep", "udp:127.0.0.1:0", "--hep", "tcp:127.0.0.1:0"],
    );
    let (udp_addr, tcp_addr) = (s.bound[0], s.bound[1]);

    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.send_to(&hep("u1", 1_790_000_000, 1, None), udp_addr)
        .unwrap();
    udp.send_to(b"GET / HTTP/1.1\r\n\r\n", udp_addr).unwrap();
    // A HEPv3 header whose length promises more than the datagram holds.
    udp.send_to(b"HEP3 this is not a HEP packet", udp_addr)
        .unwrap();
    udp.send_to(&hep("u2", 1_790_000_000, 2, None), udp_addr)
        .unwrap();

    let mut tcp = TcpStream::connect(tcp_addr).unwrap();
    // Two packets in one write, then one split across three writes.
    let mut two = hep("t1", 1_790_000_001, 10, None);
    two.extend(hep("t2", 1_790_000_001, 20, None));
    tcp.write_all(&two).unwrap();
    let split = hep("t3", 1_790_000_001, 30, None);
    for part in [&split[..3], &split[3..40], &split[40..]] {
        tcp.write_all(part).unwrap();
        tcp.flush().unwrap();
        std::thread::sleep(Duration::from_millis(30));
    }
    // A second connection with a garbage length: closed, counted, and the
    // listener keeps serving the first.
    let mut bad = TcpStream::connect(tcp_addr).unwrap();
    bad.write_all(b"HEP3\x00\x02xxxxxxxx").unwrap();
    settle();
    tcp.write_all(&hep("t4", 1_790_000_001, 40, None)).unwrap();
    settle();

    let (lines, err) = finish(s);
    let ids: Vec<&str> = lines
        .iter()
        .map(|l| l["call_id"].as_str().unwrap())
        .collect();
    let mut udp_ids: Vec<_> = ids.iter().filter(|i| i.starts_with('u')).collect();
    udp_ids.sort();
    assert_eq!(udp_ids, [&"u1", &"u2"]);
    let tcp_ids: Vec<_> = ids.iter().filter(|i| i.starts_with('t')).copied().collect();
    assert_eq!(tcp_ids, ["t1", "t2", "t3", "t4"], "TCP keeps order");
    let t3 = lines.iter().find(|l| l["call_id"] == "t3").unwrap();
    assert_eq!(t3["ts"], "2026-09-21T14:13:21.000030Z");
    assert_eq!(t3["src"], "192.0.2.1:5061");
    assert_eq!(t3["dst"], "192.0.2.2:5060");
    assert_eq!(t3["source"], "hep");
    assert_eq!(t3["transport"], "udp");
    assert_eq!(t3["capture_id"], 2001);
    assert_eq!(t3["node"], "edge-1");
    assert_eq!(t3["first_line"], "INVITE sip:1002@127.0.0.1:5060 SIP/2.0");
    assert_eq!(counter(&err, "sip_messages"), 6);
    assert_eq!(counter(&err, "drop.bad_hep"), 1, "{err}");
    assert_eq!(counter(&err, "drop.truncated"), 1, "{err}");
    assert_eq!(counter(&err, "drop.bad_hep_frame"), 1, "{err}");
}

#[test]
fn auth_key_is_enforced() {
    let dir = std::env::temp_dir().join(format!("accurate-auth-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = dir.join("a.toml");
    std::fs::write(&cfg, "[hep]\nauth-key = \"s3cret\"\n").unwrap();
    let s = start(
        "auth",
        &[
            "--config",
            cfg.to_str().unwrap(),
            "--hep",
            "udp:127.0.0.1:0",
        ],
    );
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.send_to(&hep("good", 1_790_000_000, 0, Some("s3cret")), s.bound[0])
        .unwrap();
    udp.send_to(&hep("wrong", 1_790_000_000, 0, Some("guess")), s.bound[0])
        .unwrap();
    udp.send_to(&hep("none", 1_790_000_000, 0, None), s.bound[0])
        .unwrap();
    settle();
    let (lines, err) = finish(s);
    let ids: Vec<&str> = lines
        .iter()
        .map(|l| l["call_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["good"]);
    assert_eq!(counter(&err, "drop.wrong_auth_key"), 2, "{err}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn count_stops_the_run() {
    let mut s = start("count", &["--hep", "udp:127.0.0.1:0", "--count", "2"]);
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    for i in 0..5 {
        udp.send_to(&hep(&format!("c{i}"), 1_790_000_000, i, None), s.bound[0])
            .unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(st) = s.child.try_wait().unwrap() {
            break st;
        }
        assert!(Instant::now() < deadline, "--count did not stop sniff");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success());
    let mut out = String::new();
    s.child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    assert_eq!(out.lines().count(), 2);
}
