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

fn accurate(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_accurate"))
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Regression: `accurate cost` anchored `*asap` at the wall clock and
/// `replay --tariffplan` at the epoch, so a plan with an `*asap` activation
/// or timing priced the same call differently (or not at all). Both now
/// load through one function; each call of a capture, priced by replay,
/// costs the same with `accurate cost` given the CDR's fields.
#[test]
fn cost_and_replay_price_a_call_alike() {
    let plan = root().join("tests/data/tariffplans/asap");
    let plan = plan.to_str().unwrap();
    let capture = root().join("captures/answered-caller-bye.pcap");
    let capture = capture.to_str().unwrap();
    for rounding in ["exact", "cgrates"] {
        let cdrs = accurate(&[
            "replay",
            "--tariffplan",
            plan,
            "--rounding",
            rounding,
            "--format",
            "json",
            "--no-progress",
            capture,
        ]);
        let cdrs: Vec<serde_json::Value> = cdrs
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(cdrs.len(), 2, "{cdrs:?}");
        for c in &cdrs {
            let field = |k: &str| c[k].as_str().unwrap().to_owned();
            let usage = c["Usage"].as_u64().unwrap().to_string();
            // The `*asap` activation is in force and the `*asap` timing
            // (from 00:00 every day) picks R_BERLIN_PER_SECOND: 0.03 to
            // connect and 0.01 a second; the calls last 2.004-2.008 s.
            assert_eq!(c["Cost"].to_string(), "0.06", "{rounding}: {c}");
            let priced = accurate(&[
                "cost",
                "--tariffplan",
                plan,
                "--rounding",
                rounding,
                "--tenant",
                &field("Tenant"),
                "--category",
                &field("Category"),
                "--subject",
                &field("Subject"),
                "--destination",
                &field("Destination"),
                "--answer-time",
                &field("AnswerTime"),
                "--usage",
                &usage,
                "--format",
                "json",
            ]);
            let priced: serde_json::Value = serde_json::from_str(&priced).unwrap();
            assert_eq!(priced["Cost"], c["Cost"], "{rounding}: {c}");
            assert_eq!(priced["Usage"], c["Usage"], "{rounding}: {c}");
        }
    }
}
