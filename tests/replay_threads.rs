//! `accurate replay --threads 2` (reader, dialog and writer threads) gives
//! the same bytes as `--threads 1`, on stdout and stderr, with the same
//! exit code: on every capture in `captures/` in each output format, on
//! several captures merged, with a tariff plan, and on a generated capture
//! of overlapping calls (raw SIP and HEP copies, with `--since` and a short
//! order window so that records are released while others are held).
#![allow(missing_docs, clippy::unwrap_used)]

mod common;

#[path = "../benches/gen/mod.rs"]
mod generator;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{ACCURATE, Scratch, root};

fn replay(threads: &str, args: &[&str], files: &[PathBuf]) -> Output {
    Command::new(ACCURATE)
        .args(["replay", "--no-progress", "--threads", threads])
        .args(args)
        .args(files)
        .output()
        .unwrap()
}

/// Runs both ways and compares; returns the one-thread run.
fn same(args: &[&str], files: &[PathBuf]) -> Output {
    let one = replay("1", args, files);
    let two = replay("2", args, files);
    let what = format!("{args:?} {files:?}");
    assert_eq!(one.status.code(), two.status.code(), "{what}");
    assert!(
        one.stdout == two.stdout,
        "{what}: stdout differs\n--- 1 thread\n{}\n--- 2 threads\n{}",
        String::from_utf8_lossy(&one.stdout),
        String::from_utf8_lossy(&two.stdout)
    );
    assert_eq!(
        String::from_utf8_lossy(&one.stderr),
        String::from_utf8_lossy(&two.stderr),
        "{what}"
    );
    one
}

fn captures() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(root().join("captures"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "pcap" || e == "pcapng"))
        .collect();
    v.sort();
    assert!(v.len() >= 10, "{v:?}");
    v
}

#[test]
fn every_capture_every_format() {
    for file in captures() {
        for format in ["json", "csv", "table"] {
            let out = same(&["--format", format], std::slice::from_ref(&file));
            assert!(out.status.success(), "{file:?}");
            assert!(!out.stdout.is_empty(), "{file:?} {format}");
        }
        same(
            &["--format", "json", "--filter", "not port 9060"],
            std::slice::from_ref(&file),
        );
    }
}

#[test]
fn merged_captures_and_a_tariff_plan() {
    let all = captures();
    let out = same(&["--format", "json"], &all);
    assert!(out.status.success());
    let plan = root().join("examples/tariffplan");
    let plan = plan.to_str().unwrap();
    same(&["--format", "json", "--tariffplan", plan], &all);
    same(&["--format", "csv", "--tariffplan", plan], &all[..3]);
}

fn generated(dir: &Scratch, name: &str, calls: usize, hep: bool) -> PathBuf {
    let path = dir.file(name);
    let cfg = generator::GenConfig {
        calls,
        cps: 200,
        hep_copies: hep,
        ..generator::GenConfig::default()
    };
    generator::write_pcap(Path::new(&path), &cfg).unwrap();
    path
}

#[test]
fn generated_capture() {
    let dir = Scratch::new("replay-threads");
    let raw = generated(&dir, "raw.pcap", 3_000, false);
    let out = same(&["--format", "json"], std::slice::from_ref(&raw));
    assert!(out.status.success());
    let lines = out.stdout.iter().filter(|&&b| b == b'\n').count();
    assert_eq!(lines, 3_000);
    let hep = generated(&dir, "hep.pcap", 1_000, true);
    same(&["--format", "json"], std::slice::from_ref(&hep));
    // Records released while later ones are still held, and some left out.
    let out = same(
        &["--format", "json", "--order-window", "1"],
        std::slice::from_ref(&raw),
    );
    let since = String::from_utf8_lossy(&out.stdout)
        .lines()
        .nth(1_500)
        .and_then(|l| {
            let v: serde_json::Value = serde_json::from_str(l).ok()?;
            v["ExtraFields"]["EndTime"].as_str().map(str::to_owned)
        })
        .unwrap();
    same(
        &["--format", "json", "--order-window", "1", "--since", &since],
        &[raw.clone(), hep],
    );
    let _ = std::fs::remove_dir_all(&dir.path);
}

#[test]
fn a_cut_file_ends_alike() {
    let dir = Scratch::new("replay-threads-cut");
    let raw = generated(&dir, "raw.pcap", 500, false);
    let bytes = std::fs::read(&raw).unwrap();
    let cut = dir.file("cut.pcap");
    std::fs::write(&cut, &bytes[..bytes.len() * 2 / 3]).unwrap();
    let out = same(&["--format", "json"], &[cut]);
    assert_eq!(out.status.code(), Some(65));
    let _ = std::fs::remove_dir_all(&dir.path);
}
