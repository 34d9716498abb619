#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]
//! `TariffPlan::cost` throughput on one core, measured: a plain timed loop
//! over the generated 100,000-prefix plan (`tests/support/big_plan.rs`),
//! printing costs per second.
//!
//! ```text
//! cargo bench -p rating --bench cost
//! COST_BENCH_SECS=5 cargo bench -p rating --bench cost -- short_call
//! ```
//!
//! One thread rates calls back to back for `COST_BENCH_SECS` seconds (2 by
//! default) per case, the number called changing every call (stepping
//! through the 10,000 destinations, so the trie walk and the destination's
//! rate intervals come from memory, not from the last call's cache lines).
//! Two figures per case: by wall time, and by the thread's own CPU time
//! (`/proc/thread-self/schedstat`), which leaves out the time other
//! processes had the core; on a loaded machine the CPU-time figure is the
//! one to read. The run is cut in rounds of 0.25 s; the last two columns
//! are the best round's CPU time per cost and costs per second (other
//! processes also evict the plan from the shared caches, and the best
//! round is the least disturbed one). The case `short_call/exact/one_number` calls the same
//! number every time, to show how much memory costs; `short_call/exact/own_prices`
//! rates the same calls on a plan where every destination has prices of its
//! own (the main plan sells its 10,000 destinations at 100 price groups, and
//! destinations sold alike share their rate intervals).

use std::hint::black_box;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use rating::{CallDescriptor, RoundingMode};

#[path = "../tests/support/big_plan.rs"]
mod big_plan;

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

/// This thread's CPU time so far (Linux), or `None` elsewhere.
fn thread_cpu() -> Option<Duration> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns: u64 = s.split_whitespace().next()?.parse().ok()?;
    Some(Duration::from_nanos(ns))
}

fn main() {
    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let secs: f64 = std::env::var("COST_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2.0);
    let (dir, numbers) = big_plan::generate();
    let plan = big_plan::load(&dir);
    let _ = std::fs::remove_dir_all(&dir);
    // The same destinations and numbers, each destination with prices of
    // its own: no two share a run of rate intervals, so the working set is
    // the whole plan's.
    let (dir, _) = big_plan::generate_with(big_plan::DESTINATIONS);
    let own_prices = big_plan::load(&dir);
    let _ = std::fs::remove_dir_all(&dir);
    // Monday 10:00, 1m30s: two spans (first minute, then per second).
    let short = (at("2024-05-13T10:00:00Z"), Duration::from_secs(90));
    // Monday 11:55 for 8h10m: five spans.
    let long = (
        at("2024-05-13T11:55:00Z"),
        Duration::from_secs(8 * 3600 + 600),
    );
    let cases = [
        ("short_call/exact", &plan, short, RoundingMode::Exact, true),
        (
            "short_call/cgrates",
            &plan,
            short,
            RoundingMode::Cgrates,
            true,
        ),
        (
            "multi_edge_call/exact",
            &plan,
            long,
            RoundingMode::Exact,
            true,
        ),
        (
            "multi_edge_call/cgrates",
            &plan,
            long,
            RoundingMode::Cgrates,
            true,
        ),
        (
            "short_call/exact/one_number",
            &plan,
            short,
            RoundingMode::Exact,
            false,
        ),
        (
            "short_call/exact/own_prices",
            &own_prices,
            short,
            RoundingMode::Exact,
            true,
        ),
    ];
    println!(
        "{:<30} {:>12} {:>14} {:>12} {:>14} {:>10} {:>12}",
        "case", "ns/cost wall", "costs/s wall", "ns/cost cpu", "costs/s cpu", "best ns", "best /s"
    );
    for (name, plan, (start, usage), mode, vary) in cases {
        if !filter.is_empty() && !filter.iter().any(|f| name.contains(f.as_str())) {
            continue;
        }
        let mut i = 0_usize;
        let mut rate = |n: usize| {
            for _ in 0..n {
                if vary {
                    i = (i + 7919) % numbers.len();
                }
                let cd = CallDescriptor::new("1001", &numbers[i], start, usage);
                black_box(plan.cost(black_box(&cd), mode).expect("ratable"));
            }
        };
        rate(20_000); // warm-up
        // Rounds of 0.25 s: the total, and the best round (the one other
        // processes disturbed least).
        let (mut calls, mut wall, mut cpu) = (0_u64, 0.0_f64, 0.0_f64);
        let mut best = f64::INFINITY;
        while wall < secs {
            let (t0, c0) = (Instant::now(), thread_cpu());
            let mut n = 0_u64;
            while t0.elapsed().as_secs_f64() < 0.25 {
                rate(2_000);
                n += 2_000;
            }
            let w = t0.elapsed().as_secs_f64();
            let c = match (c0, thread_cpu()) {
                (Some(a), Some(b)) => (b - a).as_secs_f64(),
                _ => w,
            };
            best = best.min(c * 1e9 / n as f64);
            (calls, wall, cpu) = (calls + n, wall + w, cpu + c);
        }
        let n = calls as f64;
        println!(
            "{name:<30} {:>12.0} {:>14.0} {:>12.0} {:>14.0} {:>10.0} {:>12.0}",
            wall * 1e9 / n,
            n / wall,
            cpu * 1e9 / n,
            n / cpu,
            best,
            1e9 / best
        );
    }
}
