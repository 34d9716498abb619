//! `accurate replay --tariffplan` prices every call of the real captures in
//! `captures/` with the shipped example plan (`examples/tariffplan`), and
//! gives the same CDRs whatever order the files are named in.
#![allow(missing_docs, clippy::unwrap_used)]

use std::path::PathBuf;
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn capture_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(root().join("captures"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "pcap" || e == "pcapng"))
        .collect();
    files.sort();
    assert!(files.len() >= 13, "captures missing: {files:?}");
    files
}

fn replay(files: &[PathBuf]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_accurate"))
        .arg("replay")
        .arg("--config")
        .arg(root().join("examples/captures.toml"))
        .arg("--tariffplan")
        .arg(root().join("examples/tariffplan"))
        .args(["--format", "json", "--no-progress"])
        .args(files)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn every_capture_call_is_priced_by_the_example_plan() {
    let cdrs: Vec<serde_json::Value> = replay(&capture_files())
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // 13 captures, two of them with two calls.
    assert_eq!(cdrs.len(), 15, "{cdrs:?}");
    let mut answered = 0;
    for c in &cdrs {
        let usage = c["Usage"].as_i64().unwrap();
        let cost = c["Cost"].to_string();
        assert!(
            c["Destination"].as_str().unwrap().starts_with("4930555"),
            "{c}"
        );
        if usage > 0 {
            answered += 1;
            // Every answered call lasts 1-2.1 s, inside the first rate
            // group (GroupIntervalStart 0: 0.02 per 60 s, increment 60 s):
            // one whole minute, 0.02, plus the connect fee 0.05 = 0.07.
            assert!(usage < 60_000_000_000, "{c}");
            assert_eq!(cost, "0.07", "{c}");
        } else {
            // Busy, cancelled, not found: nothing to pay.
            assert_eq!(cost, "0", "{c}");
        }
    }
    assert_eq!(answered, 12);
}

/// Regression: files named out of time order were replayed one after the
/// other, so time ran backwards between them and a call (the 407 capture,
/// read after a later one) came out as rejected. Files are now merged by
/// packet time: any order of names gives the same CDRs.
#[test]
fn file_order_does_not_matter() {
    let mut files = capture_files();
    let forward = replay(&files);
    files.reverse();
    assert_eq!(forward, replay(&files));
    files.swap(0, 5);
    assert_eq!(forward, replay(&files));
}
