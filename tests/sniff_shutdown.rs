//! `accurate sniff` stops on SIGTERM even when nobody reads its stdout and
//! its channels are full: the printing thread may be stuck in a write, the
//! main loop is not.
#![allow(missing_docs, clippy::unwrap_used)]

mod common;

use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use capture::Timestamp;
use capture::hep::{HepPacket, HepVersion, encode_v3};
use common::{ACCURATE, Scratch};

fn hep(i: u32) -> Vec<u8> {
    let sip = format!(
        "OPTIONS sip:probe@192.0.2.2 SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK{i}\r\n\
         From: <sip:a@192.0.2.1>;tag=1\r\nTo: <sip:probe@192.0.2.2>\r\nCall-ID: flood-{i}-{}\r\n\
         CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n",
        "x".repeat(400)
    );
    encode_v3(&HepPacket {
        version: HepVersion::V3,
        ts: Timestamp::from_secs_micros(1_700_000_000, 0),
        ip_family: Some(2),
        ip_proto: Some(17),
        src_ipv4: Some(Ipv4Addr::new(192, 0, 2, 1)),
        dst_ipv4: Some(Ipv4Addr::new(192, 0, 2, 2)),
        src_port: Some(5060),
        dst_port: Some(5060),
        ts_secs: Some(1_700_000_000),
        ts_micros: Some(0),
        proto_type: Some(1),
        payload: Some(Bytes::from(sip)),
        ..HepPacket::default()
    })
}

/// Regression: with stdout a pipe nobody read, the main loop blocked in a
/// write and never saw SIGTERM; the process had to be killed.
#[test]
fn sigterm_stops_sniff_with_stdout_blocked_and_the_channel_full() {
    let scratch = Scratch::new("sniff-shutdown");
    let mut child = Command::new(ACCURATE)
        .args(["sniff", "--hep", "udp:127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(scratch.log("stderr"))
        .spawn()
        .unwrap();
    // Held, never read: the pipe fills and every write blocks.
    let _stdout = child.stdout.take();
    let deadline = Instant::now() + Duration::from_secs(20);
    let addr: SocketAddr = loop {
        let text = scratch.read("stderr");
        if let Some(a) = text
            .lines()
            .find_map(|l| l.strip_prefix("listening on udp:"))
        {
            break a.parse().unwrap();
        }
        assert!(child.try_wait().unwrap().is_none(), "sniff exited: {text}");
        assert!(Instant::now() < deadline, "sniff did not bind: {text}");
        std::thread::sleep(Duration::from_millis(20));
    };
    // Far more than the pipe, the printing queue and the channel hold:
    // 60,000 messages of ~600 bytes.
    let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
    for i in 0..60_000 {
        let _ = tx.send_to(&hep(i), addr);
        if i % 500 == 0 {
            // Let the listener keep up so the channel fills rather than
            // the socket buffer overflowing.
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    // A bound on hanging, not a speed test.
    let limit = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if Instant::now() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "sniff did not stop within 10 s of SIGTERM: {}",
                scratch.read("stderr")
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let stderr = scratch.read("stderr");
    // The counters are printed; output it could not write is an I/O error
    // (74), said once.
    assert!(stderr.contains("sniff: packets:"), "{stderr}");
    assert_eq!(status.code(), Some(74), "{stderr}");
    assert_eq!(stderr.matches("error").count(), 1, "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// A supervisor may send SIGTERM as soon as it reads the first `listening
/// on` line: the handlers are in place by then, so sniff stops cleanly
/// (exit 0, counters printed) instead of dying by the signal.
#[test]
fn sigterm_right_after_the_first_listening_line_exits_0() {
    use std::io::{BufRead, BufReader};
    let mut args = vec!["sniff".to_owned()];
    for _ in 0..16 {
        args.extend(["--hep".to_owned(), "tcp:127.0.0.1:0".to_owned()]);
    }
    let mut child = Command::new(ACCURATE)
        .args(&args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    while err.read_line(&mut line).unwrap() > 0 && !line.contains("listening on") {
        line.clear();
    }
    assert!(line.contains("listening on"), "no listening line");
    // At once, not through a `kill` process: the window is short.
    let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap());
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut err, &mut rest).unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0), "{status:?}: {rest}");
    assert!(rest.contains("sniff: packets:"), "{rest}");
}
