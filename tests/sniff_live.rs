//! `accurate sniff --interface lo`: a live libpcap tap with a BPF filter.
//! Needs root or CAP_NET_RAW, as CI has; without it the test fails saying so.
#![allow(missing_docs, clippy::unwrap_used)]

use std::io::Read;
use std::net::UdpSocket;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_accurate");

fn options(call_id: &str) -> String {
    format!(
        "OPTIONS sip:probe@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1;branch=z9hG4bK{call_id}\r\n\
         From: <sip:a@127.0.0.1>;tag=1\r\nTo: <sip:probe@127.0.0.1>\r\nCall-ID: {call_id}\r\n\
         CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
    )
}

#[test]
fn live_tap_on_loopback_with_a_filter() {
    // A port of our own, so the filter sees only what this test sends.
    let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = rx.local_addr().unwrap().port();
    let err_path = std::env::temp_dir().join(format!("accurate-live-{}.err", std::process::id()));
    let mut child = Command::new(BIN)
        .args([
            "sniff",
            "--format",
            "json",
            "--interface",
            "lo",
            "--count",
            "3",
            "--duration",
            "20",
        ])
        .args(["--filter", &format!("udp dst port {port}")])
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&err_path).unwrap())
        .spawn()
        .unwrap();
    // Wait until the tap is open.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let text = std::fs::read_to_string(&err_path).unwrap_or_default();
        if text.contains("capturing on lo") {
            break;
        }
        if let Some(st) = child.try_wait().unwrap() {
            panic!(
                "sniff exited ({st}) before capturing; live capture needs root or CAP_NET_RAW: {text}"
            );
        }
        assert!(Instant::now() < deadline, "tap did not open: {text}");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(200));
    let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
    // Noise the filter must drop before AccuRate sees it.
    let other = UdpSocket::bind("127.0.0.1:0").unwrap();
    tx.send_to(options("noise").as_bytes(), other.local_addr().unwrap())
        .unwrap();
    // Not SIP, but matching the filter: counted as not_sip.
    tx.send_to(b"\r\n\r\n", ("127.0.0.1", port)).unwrap();
    for i in 0..3 {
        tx.send_to(
            options(&format!("live-{i}")).as_bytes(),
            ("127.0.0.1", port),
        )
        .unwrap();
    }
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if Instant::now() > deadline + Duration::from_secs(10) {
            let _ = child.kill();
            panic!("sniff did not stop after --count 3");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut out = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    let err = std::fs::read_to_string(&err_path).unwrap();
    let _ = std::fs::remove_file(&err_path);
    assert!(status.success(), "{err}");
    let lines: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let ids: Vec<&str> = lines
        .iter()
        .map(|l| l["call_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["live-0", "live-1", "live-2"]);
    assert!(
        lines
            .iter()
            .all(|l| l["source"] == "live" && l["transport"] == "udp")
    );
    assert_eq!(lines[0]["dst"], format!("127.0.0.1:{port}"));
    assert!(err.contains("sniff: drop.not_sip: 1"), "{err}");
}
