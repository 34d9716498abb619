#![allow(missing_docs, clippy::unwrap_used)]
//! Rating throughput and load time on a generated plan with 100,000
//! destination prefixes.
//!
//! `cargo bench --bench rating`. Criterion prints time per call; costs per
//! second per core is its inverse (also shown as elements/s).

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rating::{CallDescriptor, LoadOptions, RoundingMode, TariffPlan};

const DESTINATIONS: usize = 10_000;
const PREFIXES_PER_DESTINATION: usize = 10;

/// The prefix `j` of destination `i`: country-like codes of 6 to 8 digits.
fn prefix(i: usize, j: usize) -> String {
    format!("{}{:04}{}", 30 + i % 60, i / 60 * 7 % 10_000, j)
}

/// Writes the plan; returns its folder and some numbers to call.
fn generate() -> (PathBuf, Vec<String>) {
    let dir = std::env::temp_dir().join(format!("accurate-rating-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let mut dst = String::from("#Id,Prefix\n");
    let mut drs = String::from(
        "#Id,DestinationId,RatesTag,RoundingMethod,RoundingDecimals,MaxCost,MaxCostStrategy\n",
    );
    let mut rpl = String::from("#Id,DestinationRatesId,TimingTag,Weight\n");
    let mut numbers = Vec::new();
    for i in 0..DESTINATIONS {
        for j in 0..PREFIXES_PER_DESTINATION {
            dst.push_str(&format!("DST_{i},{}\n", prefix(i, j)));
        }
        numbers.push(format!(
            "{}1234567",
            prefix(i, i % PREFIXES_PER_DESTINATION)
        ));
        drs.push_str(&format!(
            "DR_PEAK_{i},DST_{i},RT_PEAK_{},*up,4,,\n",
            i % 100
        ));
        drs.push_str(&format!("DR_OFF_{i},DST_{i},RT_OFF_{},*up,4,,\n", i % 100));
        for (dr, timing) in [
            ("PEAK", "PEAK"),
            ("OFF", "MORNING"),
            ("PEAK", "LUNCH_END"),
            ("OFF", "LUNCH"),
            ("OFF", "EVENING"),
            ("OFF", "WEEKEND"),
        ] {
            rpl.push_str(&format!("RP_BIG,DR_{dr}_{i},{timing},10\n"));
        }
    }
    let mut rates = String::from("#Id,ConnectFee,Rate,RateUnit,RateIncrement,GroupIntervalStart\n");
    for r in 0..100 {
        rates.push_str(&format!(
            "RT_PEAK_{r},0.05,0.{:02}9,60s,60s,0s\nRT_PEAK_{r},0,0.{:02}9,60s,1s,60s\n",
            r, r
        ));
        rates.push_str(&format!("RT_OFF_{r},0.05,0.0{:02}5,60s,1s,0s\n", r));
    }
    let timings = "#ID,Years,Months,MonthDays,WeekDays,Time\n\
        MORNING,*any,*any,*any,1;2;3;4;5,00:00:00\n\
        PEAK,*any,*any,*any,1;2;3;4;5,08:00:00\n\
        LUNCH,*any,*any,*any,1;2;3;4;5,12:00:00\n\
        LUNCH_END,*any,*any,*any,1;2;3;4;5,14:00:00\n\
        EVENING,*any,*any,*any,1;2;3;4;5,19:00:00\n\
        WEEKEND,*any,*any,*any,6;7,00:00:00\n";
    let profiles = "#Tenant,Category,Subject,ActivationTime,RatingPlanID,FallbackSubject\n\
        cgrates.org,call,*any,2014-01-01T00:00:00Z,RP_BIG,\n";
    for (name, text) in [
        ("Destinations.csv", dst.as_str()),
        ("Timings.csv", timings),
        ("Rates.csv", rates.as_str()),
        ("DestinationRates.csv", drs.as_str()),
        ("RatingPlans.csv", rpl.as_str()),
        ("RatingProfiles.csv", profiles),
    ] {
        std::fs::write(dir.join(name), text).expect("write plan");
    }
    (dir, numbers)
}

fn load(dir: &Path) -> TariffPlan {
    let opts = LoadOptions {
        loaded_at: Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap(),
    };
    TariffPlan::load_dir(dir, &opts)
        .expect("load generated plan")
        .0
}

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
