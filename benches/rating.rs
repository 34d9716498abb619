#![allow(missing_docs, clippy::unwrap_used)]
//! Rating throughput and load time on a generated plan with 100,000
//! destination prefixes.
//!
//! `cargo bench --bench rating`. Criterion prints time per call; costs per
//! second per core is its inverse (also shown as elements/s).

use std::hint::black_box;
use std::time::Duration;

use chrono::{DateTime, Utc};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rating::{CallDescriptor, RoundingMode};

#[path = "../rating/tests/support/big_plan.rs"]
mod big_plan;

use big_plan::{DESTINATIONS, PREFIXES_PER_DESTINATION, generate, load};

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn benches(c: &mut Criterion) {
    let (dir, numbers) = generate();
    let plan = load(&dir);
    assert_eq!(plan.prefix_count(), DESTINATIONS * PREFIXES_PER_DESTINATION);

    let mut g = c.benchmark_group("load");
    g.sample_size(10).measurement_time(Duration::from_secs(20));
    g.bench_function("100k_prefixes", |b| b.iter(|| black_box(load(&dir))));
    g.finish();

    let mut g = c.benchmark_group("cost");
    g.throughput(Throughput::Elements(1));
    // Monday 10:00, 1m30s: two spans (first minute, then per second).
    let short = at("2024-05-13T10:00:00Z");
    // Monday 11:55 for 8h10m: spans at 12:00, 14:00 and 19:00, plus the
    // first-minute group: five spans.
    let long = at("2024-05-13T11:55:00Z");
    for (name, start, usage) in [
        ("short_call", short, Duration::from_secs(90)),
        ("multi_edge_call", long, Duration::from_secs(8 * 3600 + 600)),
    ] {
        for mode in [RoundingMode::Exact, RoundingMode::Cgrates] {
            let mut i = 0usize;
            g.bench_function(format!("{name}/{}", mode.as_str()), |b| {
                b.iter(|| {
                    i = (i + 7919) % numbers.len();
                    let cd = CallDescriptor::new("1001", &numbers[i], start, usage);
                    black_box(plan.cost(&cd, mode).expect("ratable"))
                })
            });
        }
    }
    g.finish();
    let spans = plan
        .cost(
            &CallDescriptor::new(
                "1001",
                &numbers[0],
                long,
                Duration::from_secs(8 * 3600 + 600),
            ),
            RoundingMode::Exact,
        )
        .expect("ratable")
        .timespans
        .len();
    assert_eq!(spans, 5);
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(rating_benches, benches);
criterion_main!(rating_benches);
