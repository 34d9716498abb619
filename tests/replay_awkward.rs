//! `accurate replay` on recorded captures made awkward on purpose: the same
//! calls must bill the same.
#![allow(missing_docs, clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::process::Command;

use common::{ACCURATE, Scratch, root};
use serde_json::Value;

/// CDRs by Call-ID and the stderr summary of `accurate replay --format json`.
fn replay(file: &std::path::Path, filter: &str) -> (BTreeMap<String, Value>, String) {
    let out = Command::new(ACCURATE)
        .args(["replay", "--format", "json", "--filter", filter])
        .arg(file)
        .output()
        .unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(out.status.success(), "{stderr}");
    let mut cdrs = BTreeMap::new();
    for line in String::from_utf8(out.stdout).unwrap().lines() {
        let v: Value = serde_json::from_str(line).unwrap();
        let id = v["OriginID"].as_str().unwrap().to_owned();
        assert!(cdrs.insert(id, v).is_none(), "two CDRs for one call");
    }
    (cdrs, stderr)
}

fn counter(stderr: &str, name: &str) -> u64 {
    let prefix = format!("replay: {name}: ");
    stderr
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no {name} line in {stderr}"))
        .parse()
        .unwrap()
}

/// Replaces `Content-Length: 0` by `Content-Length: O` (same length, so TCP
/// sequence numbers stay right) in every BYE of a capture.
fn break_bye_lengths(pcap: &[u8]) -> (Vec<u8>, usize) {
    let mut out = pcap.to_vec();
    let mut n = 0;
    let mut at = 0;
    while let Some(p) = find(&out[at..], b"BYE sip:") {
        let start = at + p;
        let end = find(&out[start..], b"\r\n\r\n").map_or(out.len(), |e| start + e);
        if let Some(cl) = find(&out[start..end], b"Content-Length: 0") {
            out[start + cl + b"Content-Length: ".len()] = b'O';
            n += 1;
        }
        at = start + 1;
    }
    (out, n)
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Regression: a BYE with an unparseable Content-Length was dropped (over
/// TCP by the framer, in HEP by the scanner), and its call billed to
/// max-duration. Now the calls bill exactly as with well-formed BYEs.
#[test]
fn bye_with_broken_content_length_over_tcp_and_hep_bills_the_same() {
    let original = root().join("captures").join("sip-tcp.pcap");
    let (broken, n) = break_bye_lengths(&std::fs::read(&original).unwrap());
    // Two calls, each BYE on two hops as raw TCP and as two HEP copies.
    assert_eq!(n, 8);
    let scratch = Scratch::new("broken-bye-length");
    let path = scratch.file("sip-tcp-broken-bye.pcap");
    std::fs::write(&path, broken).unwrap();

    for (filter, framed, tolerated) in [("not port 9060", 4, 4), ("port 9060", 0, 4)] {
        let (want, _) = replay(&original, filter);
        let (got, stderr) = replay(&path, filter);
        assert_eq!(want.len(), 2, "{filter}");
        for (id, w) in &want {
            let g = &got[id];
            for k in ["AnswerTime", "Usage", "DisconnectCause"] {
                assert_eq!(g[k], w[k], "{filter} {id} {k}");
            }
            for k in ["EndReason", "EndTime", "EndedBy"] {
                assert_eq!(
                    g["ExtraFields"][k], w["ExtraFields"][k],
                    "{filter} {id} {k}"
                );
            }
            assert_eq!(g["ExtraFields"]["EndReason"], "bye", "{filter} {id}");
        }
        assert_eq!(
            counter(&stderr, "drop.bad_content_length"),
            framed,
            "{filter}"
        );
        assert_eq!(
            counter(&stderr, "dialog.malformed_content_length_tolerated"),
            tolerated,
            "{filter}"
        );
        assert_eq!(counter(&stderr, "dialog.malformed"), 0, "{filter}");
    }
}
