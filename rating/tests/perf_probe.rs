//! Instruction-count probes for `valgrind --tool=callgrind` (ignored by
//! default): rate a fixed number of calls on the generated 100,000-prefix
//! plan, so that (Ir with N calls - Ir with 0 calls) / N is the cost of one
//! call, whatever the load on the machine.
//!
//! ```text
//! cargo test --release -p rating --test perf_probe --no-run
//! PROBE=short_call/exact PROBE_N=20000 valgrind --tool=callgrind \
//!     target/release/deps/perf_probe-* --ignored --exact probe
//! ```
//!
//! `PROBE` is `short_call/exact`, `short_call/cgrates`,
//! `multi_edge_call/exact`, `multi_edge_call/cgrates` or `load` (`PROBE_N`
//! loads of the plan).
#![allow(clippy::unwrap_used, clippy::expect_used)] // a probe: panics on purpose

use std::hint::black_box;
use std::time::Duration;

use chrono::{DateTime, Utc};
use rating::{CallDescriptor, RoundingMode};

mod support {
    pub mod big_plan;
}

use support::big_plan;

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

#[test]
#[ignore = "a probe for callgrind: PROBE=... PROBE_N=..."]
fn probe() {
    let what = std::env::var("PROBE").unwrap_or_else(|_| "short_call/exact".into());
    let n: usize = std::env::var("PROBE_N")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1000);
    let (dir, numbers) = big_plan::generate();
    let plan = big_plan::load(&dir);
    if what == "load" {
        let t0 = std::time::Instant::now();
        for _ in 0..n {
            black_box(big_plan::load(&dir));
        }
        println!(
            "load: {} ms per load",
            t0.elapsed().as_millis() / n.max(1) as u128
        );
        let _ = std::fs::remove_dir_all(&dir);
        return;
    }
    let _ = std::fs::remove_dir_all(&dir);
    let (kind, mode) = what.split_once('/').expect("kind/mode");
    let mode: RoundingMode = mode.parse().expect("exact or cgrates");
    let (start, usage) = match kind {
        "short_call" => (at("2024-05-13T10:00:00Z"), Duration::from_secs(90)),
        "multi_edge_call" => (
            at("2024-05-13T11:55:00Z"),
            Duration::from_secs(8 * 3600 + 600),
        ),
        _ => panic!("unknown probe {what}"),
    };
    let mut i = 0_usize;
    let t0 = std::time::Instant::now();
    for _ in 0..n {
        i = (i + 7919) % numbers.len();
        let cd = CallDescriptor::new("1001", &numbers[i], start, usage);
        black_box(plan.cost(&cd, mode).expect("ratable"));
    }
    // Wall time too (meaningless under valgrind; run with --nocapture).
    let per = t0.elapsed().as_nanos() / n.max(1) as u128;
    println!("{what}: {per} ns per cost over {n} calls");
}
