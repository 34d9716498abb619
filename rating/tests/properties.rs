//! Property tests: cost grows with usage, and a call rated in two pieces
//! (split at an increment boundary, the second piece at its offset into
//! the call, as a prepaid debit loop does) costs what the whole call costs
//! in exact mode.
#![allow(clippy::unwrap_used)] // test helpers panic on purpose

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use proptest::prelude::*;
use rating::{CallCost, CallDescriptor, LoadOptions, RoundingMode, TariffPlan};

fn plan(name: &str) -> TariffPlan {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/data/tariffplans")
        .join(name);
    let opts = LoadOptions {
        loaded_at: Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap(),
    };
    TariffPlan::load_dir(&dir, &opts)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .0
}

fn peak_offpeak() -> &'static TariffPlan {
    static P: OnceLock<TariffPlan> = OnceLock::new();
    P.get_or_init(|| plan("peak_offpeak"))
}

fn increments() -> &'static TariffPlan {
    static P: OnceLock<TariffPlan> = OnceLock::new();
    P.get_or_init(|| plan("increments"))
}

/// (plan, subject, destination): day/cheap edges with R_DAY and
/// R_CENT_A_SECOND, New Year weights, and R_HALF_MINUTES's 30 s / 10 s
/// increments (fixtures in `tests/data/tariffplans/`).
fn cases() -> Vec<(&'static TariffPlan, &'static str, &'static str)> {
    vec![
        (peak_offpeak(), "1001", "1003"),
        (peak_offpeak(), "1001", "2012"),
        (peak_offpeak(), "1001", "1002"),
        (increments(), "RETAIL", "1001"),
        (increments(), "1001", "1002"),
    ]
}

fn start_at(secs: i64) -> DateTime<Utc> {
    // From Monday 2024-12-30 (New Year's Day inside the week), by the second.
    Utc.with_ymd_and_hms(2024, 12, 30, 0, 0, 0).unwrap() + TimeDelta::seconds(secs)
}

fn rate(
    p: &TariffPlan,
    subject: &str,
    dest: &str,
    start: DateTime<Utc>,
    usage: Duration,
    offset: Duration,
    mode: RoundingMode,
) -> CallCost {
    let mut cd = CallDescriptor::new(subject, dest, start, usage);
    cd.offset = offset;
    p.cost(&cd, mode)
        .unwrap_or_else(|e| panic!("{subject}->{dest} at {start} for {usage:?}: {e}"))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn cost_is_monotonic_in_usage(
        case in 0usize..5,
        start in 0i64..7 * 86_400,
        a_ms in 0u64..4 * 3_600_000,
        b_ms in 0u64..4 * 3_600_000,
    ) {
        let (p, subject, dest) = cases()[case];
        let (short, long) = (a_ms.min(b_ms), a_ms.max(b_ms));
        for mode in [RoundingMode::Exact, RoundingMode::Cgrates] {
            let c1 = rate(p, subject, dest, start_at(start), Duration::from_millis(short), Duration::ZERO, mode);
            let c2 = rate(p, subject, dest, start_at(start), Duration::from_millis(long), Duration::ZERO, mode);
            prop_assert!(c1.cost <= c2.cost, "{mode:?}: {short} ms costs {} > {long} ms costs {}", c1.cost, c2.cost);
            prop_assert!(c1.unrounded_cost <= c2.unrounded_cost);
        }
    }

    #[test]
    fn two_pieces_cost_the_whole_call(
        case in 0usize..5,
        start in 0i64..7 * 86_400,
        usage_ms in 1u64..3 * 3_600_000,
        pick in any::<prop::sample::Index>(),
    ) {
        let (p, subject, dest) = cases()[case];
        let usage = Duration::from_millis(usage_ms);
        let whole = rate(p, subject, dest, start_at(start), usage, Duration::ZERO, RoundingMode::Exact);
        // Increment boundaries strictly inside the call.
        let boundaries: Vec<Duration> = whole
            .timespans
            .iter()
            .flat_map(|ts| (1..=ts.increments.min(50)).map(move |j| ts.call_offset + ts.rate_increment * u32::try_from(j).unwrap()))
            .filter(|b| *b < usage)
            .collect();
        prop_assume!(!boundaries.is_empty());
        let split = *pick.get(&boundaries);
        let second_start = start_at(start) + TimeDelta::from_std(split).unwrap();
        let a = rate(p, subject, dest, start_at(start), split, Duration::ZERO, RoundingMode::Exact);
        let b = rate(p, subject, dest, second_start, usage - split, split, RoundingMode::Exact);
        // The whole call's span holding the split must still be in force
        // there (a span rounded up past a peak/off-peak edge keeps its
        // rate; a piece starting after the edge takes the new one).
        let holder = whole.timespans.iter().find(|ts| ts.call_offset <= split && split < ts.call_offset + ts.usage).unwrap();
        prop_assume!(b.timespans[0].destination_rate() == holder.destination_rate() && b.timespans[0].timing() == holder.timing());
        let sum = a.unrounded.checked_add(b.unrounded).unwrap();
        prop_assert_eq!(sum, whole.unrounded, "split at {:?}: {} + {}", split, a.to_json(), b.to_json());
        prop_assert_eq!(a.rated_usage + b.rated_usage, whole.rated_usage);
        // peak_offpeak's increments cost whole cents, so the rounded costs
        // add up too.
        if std::ptr::eq(p, peak_offpeak()) {
            prop_assert_eq!(a.cost.amount() + b.cost.amount(), whole.cost.amount());
        }
    }
}
