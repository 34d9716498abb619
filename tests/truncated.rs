//! A capture file cut short (tcpdump still writing it, rotated, copied too
//! early): `replay` and `sniff` use every whole packet before the cut,
//! print every CDR and the summary, name the file and the byte offset of the
//! broken record, and exit 65.
//!
//! The cut copies are written to a scratch directory, never committed.
#![allow(missing_docs, clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{ACCURATE, Scratch, root};
use serde_json::Value;

fn run(args: &[&str]) -> Output {
    Command::new(ACCURATE).args(args).output().unwrap()
}

/// Byte offset where the last record of a pcap or pcapng file starts
/// (little-endian files, as the fixtures are).
fn last_record_start(data: &[u8]) -> usize {
    let u32_at = |at: usize| u32::from_le_bytes(data[at..at + 4].try_into().unwrap()) as usize;
    let (mut pos, mut last) = (0, 0);
    if data[..4] == [0x0a, 0x0d, 0x0d, 0x0a] {
        while pos < data.len() {
            last = pos;
            pos += u32_at(pos + 4);
        }
    } else {
        pos = 24;
        while pos < data.len() {
            last = pos;
            pos += 16 + u32_at(pos + 8);
        }
    }
    assert_eq!(pos, data.len(), "fixture is whole");
    last
}

fn json_lines(stdout: &[u8]) -> Vec<Value> {
    String::from_utf8_lossy(stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

struct Cut {
    whole: PathBuf,
    /// Ends exactly before the last record: a whole, shorter capture.
    boundary: PathBuf,
    /// Ends in the middle of the last record.
    cut: PathBuf,
    last_start: usize,
}

fn cut(scratch: &Scratch, name: &str) -> Cut {
    let whole = root().join("captures").join(name);
    let data = std::fs::read(&whole).unwrap();
    let last_start = last_record_start(&data);
    let boundary = scratch.file(&format!("boundary-{name}"));
    std::fs::write(&boundary, &data[..last_start]).unwrap();
    let cut = scratch.file(&format!("cut-{name}"));
    std::fs::write(&cut, &data[..(last_start + data.len()) / 2]).unwrap();
    Cut {
        whole,
        boundary,
        cut,
        last_start,
    }
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

const FIXTURES: [&str; 2] = ["answered-caller-bye.pcap", "answered-pcapng.pcapng"];

/// Regression: the last batch (here: the whole file), every pending CDR
/// and the summary were lost when the file ended inside a record.
#[test]
fn replay_of_a_cut_file_prints_every_cdr_and_the_summary_then_exits_65() {
    let scratch = Scratch::new("truncated-replay");
    for name in FIXTURES {
        let c = cut(&scratch, name);
        let whole = run(&["replay", "--format", "json", s(&c.whole)]);
        assert!(whole.status.success());
        let boundary = run(&["replay", "--format", "json", s(&c.boundary)]);
        assert!(boundary.status.success());
        let out = run(&["replay", "--format", "json", s(&c.cut)]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(65), "{name}: {stderr}");
        // Exactly what the capture without the broken record gives.
        let got = json_lines(&out.stdout);
        assert!(!got.is_empty(), "{name}");
        assert_eq!(got, json_lines(&boundary.stdout), "{name}");
        // And the whole capture's CDRs, but for the call the last packet
        // belonged to (it may end differently without it).
        let sniffed = run(&["sniff", "--format", "json", s(&c.whole)]);
        let last: Value = json_lines(&sniffed.stdout).pop().unwrap();
        let last_call = last["call_id"].as_str().unwrap();
        let others = |v: Vec<Value>| -> Vec<Value> {
            v.into_iter()
                .filter(|c| c["OriginID"] != last_call)
                .collect()
        };
        assert_eq!(
            others(got.clone()),
            others(json_lines(&whole.stdout)),
            "{name}"
        );
        // The summary, then one error naming the file and the offset.
        assert!(
            stderr.contains(&format!("replay: calls: {}", got.len())),
            "{stderr}"
        );
        assert!(stderr.contains("replay: dialog.ends:"), "{stderr}");
        let err: Vec<&str> = stderr.lines().filter(|l| l.contains("error")).collect();
        assert_eq!(err.len(), 1, "{stderr}");
        assert!(err[0].contains(s(&c.cut)), "{stderr}");
        assert!(
            err[0].contains(&format!("byte offset {}", c.last_start)),
            "{stderr}"
        );
        assert!(
            stderr.trim_end().ends_with(err[0]),
            "error after the summary: {stderr}"
        );
    }
}

#[test]
fn a_cut_file_among_several_ends_only_itself() {
    let scratch = Scratch::new("truncated-merge");
    let c = cut(&scratch, FIXTURES[0]);
    let other = root().join("captures/busy-486.pcap");
    let out = run(&["replay", "--format", "json", s(&c.cut), s(&other)]);
    assert_eq!(out.status.code(), Some(65));
    let want = run(&["replay", "--format", "json", s(&c.boundary), s(&other)]);
    assert!(want.status.success());
    assert_eq!(json_lines(&out.stdout), json_lines(&want.stdout));
}

#[test]
fn sniff_of_a_cut_file_prints_every_whole_message_then_exits_65() {
    let scratch = Scratch::new("truncated-sniff");
    for name in FIXTURES {
        let c = cut(&scratch, name);
        let whole = run(&["sniff", "--format", "json", s(&c.whole)]);
        let out = run(&["sniff", "--format", "json", s(&c.cut)]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(65), "{name}: {stderr}");
        let all = json_lines(&whole.stdout);
        let got = json_lines(&out.stdout);
        assert_eq!(got[..], all[..all.len() - 1], "{name}");
        assert!(stderr.contains("sniff: packets:"), "{stderr}");
        assert!(
            stderr.contains(&format!("byte offset {}", c.last_start)),
            "{stderr}"
        );
    }
}
