//! Issue 7: when `accurate sniff --hep tcp:...` runs out of file
//! descriptors, accept backs off instead of spinning (it used to burn a
//! core and write ~65 MB/s of identical warnings), the warning is
//! rate-limited, and the listener serves again once descriptors free up.
//!
//! The descriptor limit is lowered for the child only (`ulimit -n` in
//! `sh`), then more connections are opened than it allows.
#![allow(missing_docs, clippy::unwrap_used)]

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use capture::hep::{HepPacket, encode_v3};

const BIN: &str = env!("CARGO_BIN_EXE_accurate");

struct Sniff {
    child: Child,
    stderr: PathBuf,
}

impl Drop for Sniff {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.stderr);
    }
}

fn frame() -> Vec<u8> {
    encode_v3(&HepPacket {
        ip_family: Some(2),
        ip_proto: Some(17),
        src_ipv4: Some(Ipv4Addr::new(192, 0, 2, 1)),
        dst_ipv4: Some(Ipv4Addr::new(192, 0, 2, 2)),
        src_port: Some(5060),
        dst_port: Some(5060),
        proto_type: Some(1),
        payload: Some(Bytes::from_static(
            b"OPTIONS sip:a@example.com SIP/2.0\r\nContent-Length: 0\r\n\r\n",
        )),
        ..HepPacket::default()
    })
}

fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !f() {
        assert!(Instant::now() < deadline, "never: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn accept_backs_off_when_descriptors_run_out() {
    let stderr = std::env::temp_dir().join(format!("accurate-emfile-{}.err", std::process::id()));
    let child = Command::new("sh")
        .args([
            "-c",
            "ulimit -n 40 && exec \"$0\" sniff --format json --hep tcp:127.0.0.1:0",
            BIN,
        ])
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&stderr).unwrap())
        .spawn()
        .unwrap();
    let mut s = Sniff { child, stderr };
    // A watchdog: blocking reads below end if the child hangs.
    let pid = s.child.id().to_string();
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(90));
        let _ = Command::new("kill").args(["-KILL", &pid]).status();
    });
    let read_err = |s: &Sniff| std::fs::read_to_string(&s.stderr).unwrap_or_default();
    let mut addr: Option<SocketAddr> = None;
    wait_for("sniff listening", || {
        addr = read_err(&s)
            .lines()
            .find_map(|l| l.strip_prefix("listening on tcp:"))
            .map(|a| a.parse().unwrap());
        addr.is_some()
    });
    let addr = addr.unwrap();
    // Far more connections than descriptors; the kernel queues the rest.
    let conns: Vec<TcpStream> = (0..100)
        .map(|_| TcpStream::connect(addr).unwrap())
        .collect();
    wait_for("accept to fail", || read_err(&s).contains("accept failed"));
    // Let it sit out of descriptors for a while.
    std::thread::sleep(Duration::from_secs(2));
    let err = read_err(&s);
    let warnings = err.lines().filter(|l| l.contains("accept failed")).count();
    assert!(
        warnings <= 2,
        "{warnings} accept warnings in 2 s ({} bytes of stderr)",
        err.len()
    );
    // Descriptors free up: the backlog drains and new clients are served.
    drop(conns);
    let mut c = TcpStream::connect(addr).unwrap();
    c.write_all(&frame()).unwrap();
    let mut out = s.child.stdout.take().unwrap();
    let mut line = Vec::new();
    let mut b = [0u8; 1];
    while !line.ends_with(b"\n") {
        assert_eq!(out.read(&mut b).unwrap(), 1, "sniff printed nothing");
        line.push(b[0]);
    }
    assert!(String::from_utf8_lossy(&line).contains("OPTIONS"));
    drop(c);
    let _ = Command::new("kill")
        .args(["-TERM", &s.child.id().to_string()])
        .status();
    assert!(s.child.wait().unwrap().success());
}
