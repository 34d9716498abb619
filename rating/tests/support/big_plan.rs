//! The generated plan with 100,000 destination prefixes used by
//! `benches/rating.rs` and by `tests/perf_probe.rs` (instruction counts
//! under callgrind). One copy, included by path from both.

use std::path::{Path, PathBuf};

use chrono::{TimeZone, Utc};
use rating::{LoadOptions, TariffPlan};

/// Destinations in the plan.
pub const DESTINATIONS: usize = 10_000;
/// Prefixes per destination.
pub const PREFIXES_PER_DESTINATION: usize = 10;

/// The prefix `j` of destination `i`: country-like codes of 6 to 8 digits.
pub fn prefix(i: usize, j: usize) -> String {
    format!("{}{:04}{}", 30 + i % 60, i / 60 * 7 % 10_000, j)
}

/// Price groups of [`generate`]: destination `i` is sold at group
/// `i % 100`'s prices.
pub const PRICE_GROUPS: usize = 100;

/// Writes the plan; returns its folder and some numbers to call.
pub fn generate() -> (PathBuf, Vec<String>) {
    generate_with(PRICE_GROUPS)
}

/// Writes the plan with destination `i` sold at group `i % price_groups`'s
/// prices (`DESTINATIONS` gives every destination prices of its own, so
/// no two share a run of rate intervals); returns its folder and some
/// numbers to call.
pub fn generate_with(price_groups: usize) -> (PathBuf, Vec<String>) {
    let dir = std::env::temp_dir().join(format!(
        "accurate-rating-bench-{}-{price_groups}",
        std::process::id()
    ));
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
            i % price_groups
        ));
        drs.push_str(&format!(
            "DR_OFF_{i},DST_{i},RT_OFF_{},*up,4,,\n",
            i % price_groups
        ));
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
    for r in 0..price_groups {
        // Up to 100 groups: the prices the benches were first measured
        // with; beyond, four digits so that every group's differ.
        let (peak, off) = if price_groups <= 100 {
            (format!("0.{r:02}9"), format!("0.0{r:02}5"))
        } else {
            (format!("0.{r:04}9"), format!("0.0{r:04}5"))
        };
        rates.push_str(&format!(
            "RT_PEAK_{r},0.05,{peak},60s,60s,0s\nRT_PEAK_{r},0,{peak},60s,1s,60s\n"
        ));
        rates.push_str(&format!("RT_OFF_{r},0.05,{off},60s,1s,0s\n"));
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

pub fn load(dir: &Path) -> TariffPlan {
    let opts = LoadOptions {
        loaded_at: Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap(),
    };
    TariffPlan::load_dir(dir, &opts)
        .expect("load generated plan")
        .0
}
