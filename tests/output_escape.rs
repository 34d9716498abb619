//! Table output escapes control characters that come off the wire: a
//! Call-ID holding `ESC[2J` must not clear the operator's terminal.
#![allow(missing_docs, clippy::unwrap_used)]

mod common;

use std::net::Ipv4Addr;
use std::process::{Command, Output};

use common::{ACCURATE, Scratch};
use etherparse::PacketBuilder;

const CALL_ID: &str = "evil\x1b[2J\x1b]0;pwned\x07\u{9b}31m@host";
const ESCAPED: &str = "evil\\x1b[2J\\x1b]0;pwned\\x07\\u{9b}31m@host";

fn sip(first: &str, cseq: &str, to_tag: &str) -> Vec<u8> {
    format!(
        "{first}\r\nVia: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK-esc\r\n\
         From: <sip:1001@192.0.2.1>;tag=a\r\nTo: <sip:1002@192.0.2.2>{to_tag}\r\n\
         Call-ID: {CALL_ID}\r\nCSeq: {cseq}\r\nContent-Length: 0\r\n\r\n"
    )
    .into_bytes()
}

/// A pcap of an INVITE answered 486 Busy, both with [`CALL_ID`].
fn write_pcap(path: &std::path::Path) {
    let a = Ipv4Addr::new(192, 0, 2, 1).octets();
    let b = Ipv4Addr::new(192, 0, 2, 2).octets();
    let mut file = Vec::new();
    for v in [0xa1b2_c3d4u32, 0x0002_0004, 0, 0, 65535, 1] {
        if v == 0x0002_0004 {
            file.extend(2u16.to_le_bytes());
            file.extend(4u16.to_le_bytes());
        } else {
            file.extend(v.to_le_bytes());
        }
    }
    let msgs = [
        (
            a,
            b,
            sip("INVITE sip:1002@192.0.2.2 SIP/2.0", "1 INVITE", ""),
        ),
        (b, a, sip("SIP/2.0 486 Busy Here", "1 INVITE", ";tag=b")),
    ];
    for (i, (src, dst, payload)) in msgs.into_iter().enumerate() {
        let mut frame = Vec::new();
        PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
            .ipv4(src, dst, 64)
            .udp(5060, 5060)
            .write(&mut frame, &payload)
            .unwrap();
        let len = u32::try_from(frame.len()).unwrap();
        file.extend(1_700_000_000u32.to_le_bytes());
        file.extend((u32::try_from(i).unwrap() * 1000).to_le_bytes());
        file.extend(len.to_le_bytes());
        file.extend(len.to_le_bytes());
        file.extend(frame);
    }
    std::fs::write(path, file).unwrap();
}

fn run(args: &[&str]) -> Output {
    let out = Command::new(ACCURATE).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn no_controls(text: &str) {
    let bad: Vec<char> = text
        .chars()
        .filter(|c| c.is_control() && *c != '\n')
        .collect();
    assert!(bad.is_empty(), "control characters {bad:?} in {text:?}");
}

/// Regression: the Call-ID went to the terminal raw.
#[test]
fn sniff_and_replay_tables_escape_wire_controls() {
    let scratch = Scratch::new("output-escape");
    let f = scratch.file("esc.pcap");
    write_pcap(&f);
    let f = f.to_str().unwrap();
    for args in [&["sniff", f][..], &["replay", f]] {
        let out = String::from_utf8(run(args).stdout).unwrap();
        no_controls(&out);
        assert!(out.contains(ESCAPED), "{args:?}: {out}");
    }
    // JSON keeps the value itself (serde escapes it).
    let out = String::from_utf8(run(&["replay", "--format", "json", f]).stdout).unwrap();
    let cdr: serde_json::Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
    assert_eq!(cdr["OriginID"], CALL_ID);
    no_controls(&out);
}
