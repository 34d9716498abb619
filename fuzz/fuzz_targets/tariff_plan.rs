//! The CGRateS tariff-plan loader and the cost engine never panic on any
//! CSV bytes (negative prices allowed), and durations round-trip: parse,
//! format, parse again.
//!
//! The input is split on 0xFF into the six rating files, in order
//! (Destinations, Timings, Rates, DestinationRates, RatingPlans,
//! RatingProfiles), a part naming a destination, then the five
//! account-side files (SharedGroups, Actions, ActionPlans, ActionTriggers,
//! AccountActions).
#![no_main]

use std::path::Path;
use std::time::Duration;

use chrono::{TimeZone, Utc};
use libfuzzer_sys::fuzz_target;
use rating::{
    CallDescriptor, HANDLED_FILES, LoadOptions, LoadPolicy, RoundingMode, TariffPlan,
    format_duration, parse_duration,
};

fuzz_target!(|data: &[u8]| {
    // The files go in as bytes, so text that is not UTF-8 is tried too.
    let raw: Vec<&[u8]> = data.split(|&b| b == 0xFF).collect();
    let parts: Vec<String> = raw
        .iter()
        .map(|p| String::from_utf8_lossy(p).into_owned())
        .collect();

    // Durations: whatever parses formats back to the same duration.
    for p in &parts {
        if let Ok(d) = parse_duration(p) {
            let text = format_duration(d);
            assert_eq!(parse_duration(&text).ok(), Some(d), "{p:?} -> {text:?}");
        }
    }

    // Part 6 names the destination: the account-side files follow it.
    let (rating_names, account_names) = HANDLED_FILES.split_at(6);
    let files: Vec<(&Path, &[u8])> = rating_names
        .iter()
        .zip(&raw)
        .chain(account_names.iter().zip(raw.iter().skip(7)))
        .map(|(name, bytes)| (Path::new(*name), *bytes))
        .collect();
    let loaded_at = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).single();
    let Some(loaded_at) = loaded_at else { return };
    // Negative prices allowed: credits must not break the cost engine.
    let policy = LoadPolicy {
        allow_negative_rates: true,
    };
    let Ok((plan, _report)) =
        TariffPlan::from_csv_with(&files, &LoadOptions { loaded_at }, &policy)
    else {
        return;
    };
    let dest = parts.get(6).map(|s| s.trim()).unwrap_or("1002");
    let start = Utc.with_ymd_and_hms(2026, 3, 29, 0, 59, 0).single();
    let Some(start) = start else { return };
    for usage in [0u64, 1, 61, 3600 * 3] {
        let cd = CallDescriptor::new("1001", dest, start, Duration::from_secs(usage));
        for mode in [RoundingMode::Exact, RoundingMode::Cgrates] {
            // Errors (no profile, unknown destination...) are answers too.
            let _ = plan.cost(&cd, mode);
        }
    }
});
