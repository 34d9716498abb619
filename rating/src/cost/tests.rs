//! Unit tests for the cost rules. Each expectation is worked out by hand
//! in the comment above it.

use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};

use super::*;
use crate::{LoadOptions, RoundingMethod, parse_duration};

fn load_time() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap()
}

fn plan(files: &[(&str, &str)]) -> TariffPlan {
    let v: Vec<(&Path, &str)> = files.iter().map(|(n, t)| (Path::new(*n), *t)).collect();
    TariffPlan::from_csv(
        &v,
        &LoadOptions {
            loaded_at: load_time(),
        },
    )
    .unwrap()
    .0
}

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn cd<'a>(subject: &'a str, dest: &'a str, start: &str, usage: &str) -> CallDescriptor<'a> {
    CallDescriptor::new(subject, dest, t(start), parse_duration(usage).unwrap())
}

fn cost_of(p: &TariffPlan, c: &CallDescriptor<'_>, mode: RoundingMode) -> String {
    p.cost(c, mode).unwrap().cost.to_string()
}

fn exact(p: &TariffPlan, subject: &str, dest: &str, start: &str, usage: &str) -> String {
    cost_of(p, &cd(subject, dest, start, usage), RoundingMode::Exact)
}

fn cgr(p: &TariffPlan, subject: &str, dest: &str, start: &str, usage: &str) -> String {
    cost_of(p, &cd(subject, dest, start, usage), RoundingMode::Cgrates)
}

// 2024-05-13 is a Monday.
const MON_10: &str = "2024-05-13T10:00:00Z";

/// tutorial's RT_20CNT and RT_40CNT for 1001 -> 1002 / 1003.
fn tutorial_like() -> TariffPlan {
    plan(&[
        (
            "Destinations.csv",
            "#Id,Prefix\nDST_1002,1002\nDST_1003,1003\nDST_FS,10\n",
        ),
        (
            "Rates.csv",
            "#Id,ConnectFee,Rate,RateUnit,RateIncrement,GroupIntervalStart\n\
             RT_20CNT,0.4,0.2,60s,60s,0s\nRT_20CNT,0,0.1,60s,1s,60s\n\
             RT_40CNT,0.8,0.4,60s,30s,0s\nRT_40CNT,0,0.2,60s,10s,60s\n\
             RT_1CNT,0,0.01,60s,60s,0s\n",
        ),
        (
            "DestinationRates.csv",
            "DR_1002,DST_1002,RT_20CNT,*up,4,0,\nDR_1003,DST_1003,RT_40CNT,*up,4,0,\nDR_FS,DST_FS,RT_1CNT,*up,4,0,\n",
        ),
        (
            "RatingPlans.csv",
            "RP_1001,DR_1002,*any,10\nRP_1001,DR_1003,*any,10\nRP_1001,DR_FS,*any,10\n",
        ),
        (
            "RatingProfiles.csv",
            "cgrates.org,call,1001,2014-01-14T00:00:00Z,RP_1001,\n",
        ),
    ])
}

#[test]
fn connect_fee_group_interval_start_and_increments() {
    let p = tutorial_like();
    // RT_20CNT, 90 s: connect fee 0.4 + first minute (one 60 s increment at
    // 0.2/min) 0.2 + 30 one-second increments at 0.1/min (0.05) = 0.65.
    let cc = p
        .cost(&cd("1001", "1002", MON_10, "90s"), RoundingMode::Exact)
        .unwrap();
    assert_eq!(cc.cost.to_string(), "0.65");
    assert_eq!(cc.connect_fee.to_string(), "0.4");
    assert_eq!(cc.timespans.len(), 2);
    assert_eq!(cc.timespans[0].increments, 1);
    assert_eq!(cc.timespans[0].rate_increment, Duration::from_secs(60));
    assert_eq!(cc.timespans[1].increments, 30);
    assert_eq!(
        cc.timespans[1].group_interval_start,
        Duration::from_secs(60)
    );
    assert_eq!(cc.timespans[1].call_offset, Duration::from_secs(60));
    // 30 s: rounded up to the one 60 s increment: 0.4 + 0.2 = 0.6, 60 s rated.
    let cc = p
        .cost(&cd("1001", "1002", MON_10, "30s"), RoundingMode::Exact)
        .unwrap();
    assert_eq!(cc.cost.to_string(), "0.6");
    assert_eq!(cc.rated_usage, Duration::from_secs(60));
    // RT_40CNT, 1 s: one 30 s increment at 0.4/min = 0.2, plus 0.8 = 1.
    assert_eq!(exact(&p, "1001", "1003", MON_10, "1s"), "1");
    // 35 s: two 30 s increments = 0.4, plus 0.8 = 1.2.
    assert_eq!(exact(&p, "1001", "1003", MON_10, "35s"), "1.2");
    // 65 s: 0.4 + one 10 s increment at 0.2/min (0.0333...) + 0.8
    // = 1.2333... -> *up 4 -> 1.2334.
    assert_eq!(exact(&p, "1001", "1003", MON_10, "65s"), "1.2334");
}

#[test]
fn cost_on_a_named_rating_plan_ignores_the_subject_profiles() {
    let p = tutorial_like();
    // A subject without a rating profile, priced by RP_1001 itself: 0.65.
    let c = cd("nobody", "1002", MON_10, "90s");
    assert!(p.cost(&c, RoundingMode::Exact).is_err());
    let cc = p
        .cost_on_rating_plan("RP_1001", &c, RoundingMode::Exact)
        .unwrap();
    assert_eq!(cc.cost.to_string(), "0.65");
    assert_eq!(cc.timespans[0].rating_plan(), "RP_1001");
    assert!(matches!(
        p.cost_on_rating_plan("RP_NOPE", &c, RoundingMode::Exact),
        Err(Error::RatingPlanNotFound { .. })
    ));
    let far = cd("nobody", "4930", MON_10, "90s");
    assert!(matches!(
        p.cost_on_rating_plan("RP_1001", &far, RoundingMode::Exact),
        Err(Error::UnauthorizedDestination { .. })
    ));
}

#[test]
fn rate_unit_scales_the_price() {
    // RT_1CNT: 0.01 per 60 s unit, 60 s increments; 2 min -> 0.02.
    let p = tutorial_like();
    assert_eq!(exact(&p, "1001", "1099", MON_10, "2m"), "0.02");
    // 61 s -> two increments -> 0.02; 60 s -> 0.01.
    assert_eq!(exact(&p, "1001", "1099", MON_10, "61s"), "0.02");
    assert_eq!(exact(&p, "1001", "1099", MON_10, "60s"), "0.01");
}

#[test]
fn cgrates_mode_rounds_each_increment_to_five_decimals() {
    let p = tutorial_like();
    // Second span: 30 s at 0.1/min = 0.05; per increment 0.05/30 =
    // 0.0016666... -> 0.00167 (*middle, 5 decimals); 30 x 0.00167 = 0.0501.
    // 0.4 + 0.2 + 0.0501 = 0.6501 (exact mode: 0.65).
    assert_eq!(cgr(&p, "1001", "1002", MON_10, "90s"), "0.6501");
    assert_eq!(exact(&p, "1001", "1002", MON_10, "90s"), "0.65");
    // 61 s: 0.6 + 0.0016666... exact -> *up 4 -> 0.6017; cgrates 0.60167 -> 0.6017.
    assert_eq!(cgr(&p, "1001", "1002", MON_10, "61s"), "0.6017");
    assert_eq!(exact(&p, "1001", "1002", MON_10, "61s"), "0.6017");
}

#[test]
fn connect_fee_once_per_call_and_not_on_later_pieces() {
    let p = tutorial_like();
    // Whole 90 s call: 0.65. Pieces [0,60) and [60,90): 0.4 + 0.2, then
    // 30 s at the second rate group (offset 60 s) with no connect fee: 0.05.
    let first = cd("1001", "1002", MON_10, "60s");
    let mut second = cd("1001", "1002", "2024-05-13T10:01:00Z", "30s");
    second.offset = Duration::from_secs(60);
    let a = p.cost(&first, RoundingMode::Exact).unwrap();
    let b = p.cost(&second, RoundingMode::Exact).unwrap();
    assert_eq!(a.cost.to_string(), "0.6");
    assert_eq!(b.cost.to_string(), "0.05");
    assert_eq!(b.connect_fee, Money::ZERO);
    assert_eq!(b.timespans[0].group_interval_start, Duration::from_secs(60));
}

#[test]
fn zero_usage_costs_nothing_but_must_be_ratable() {
    let p = tutorial_like();
    let cc = p
        .cost(&cd("1001", "1002", MON_10, "0"), RoundingMode::Exact)
        .unwrap();
    assert_eq!(cc.cost, Money::ZERO);
    assert!(cc.timespans.is_empty());
    let e = p
        .cost(&cd("1001", "999", MON_10, "0"), RoundingMode::Exact)
        .unwrap_err();
    assert_eq!(e.reason(), "UNAUTHORIZED_DESTINATION");
}

fn rounding_plan() -> TariffPlan {
    // 0.00005 per second: 1 s costs exactly a midpoint at 4 decimals.
    // 0.1 per minute, 7 s: 0.011666...
    plan(&[
        ("Destinations.csv", "UP,1\nDOWN,2\nMID,3\nMID2,4\n"),
        (
            "Rates.csv",
            "RT_HALF,0,0.00005,1s,1s,0\nRT_10,0,0.1,60s,1s,0\n",
        ),
        (
            "DestinationRates.csv",
            "DR,UP,RT_10,*up,4,,\nDR,DOWN,RT_10,*down,4,,\nDR,MID,RT_10,*middle,4,,\nDR,MID2,RT_HALF,*middle,4,,\n\
             DRD,MID2,RT_HALF,*down,4,,\n",
        ),
        ("RatingPlans.csv", "RP,DR,*any,10\nRPD,DRD,*any,10\n"),
        (
            "RatingProfiles.csv",
            "cgrates.org,call,a,2014-01-01T00:00:00Z,RP,\ncgrates.org,call,d,2014-01-01T00:00:00Z,RPD,\n",
        ),
    ])
}

#[test]
fn rounding_methods_and_decimals() {
    let p = rounding_plan();
    // 7 s at 0.1/min = 0.0116666...: *up -> 0.0117, *down -> 0.0116,
    // *middle -> 0.0117.
    assert_eq!(exact(&p, "a", "1", MON_10, "7s"), "0.0117");
    assert_eq!(exact(&p, "a", "2", MON_10, "7s"), "0.0116");
    assert_eq!(exact(&p, "a", "3", MON_10, "7s"), "0.0117");
    // 1 s at 0.00005/s = 0.00005: *middle 4 -> 0.0001; *down 4 -> 0.
    assert_eq!(exact(&p, "a", "4", MON_10, "1s"), "0.0001");
    assert_eq!(exact(&p, "d", "4", MON_10, "1s"), "0");
    let cc = p
        .cost(&cd("a", "1", MON_10, "7s"), RoundingMode::Exact)
        .unwrap();
    assert_eq!(
        cc.unrounded_cost.amount().round_dp(6).to_string(),
        "0.011667"
    );
    assert_eq!(
        cc.rounding.map(|r| (r.method(), r.decimals())),
        Some((RoundingMethod::Up, 4))
    );
}

fn timings_plan() -> TariffPlan {
    // Peak 0.60/min, off-peak 0.06/min, per second; Christmas 2024 free at
    // weight 20.
    plan(&[
        ("Destinations.csv", "DST_10,10\n"),
        (
            "Timings.csv",
            "#ID,Years,Months,MonthDays,WeekDays,Time\n\
             PEAK,*any,*any,*any,1;2;3;4;5,08:00:00\n\
             OFFPEAK_MORNING,*any,*any,*any,1;2;3;4;5,00:00:00\n\
             OFFPEAK_EVENING,*any,*any,*any,1;2;3;4;5,19:00:00\n\
             OFFPEAK_WEEKEND,*any,*any,*any,6;7,00:00:00\n\
             XMAS_2024,2024,12,25,*any,00:00:00\n",
        ),
        (
            "Rates.csv",
            "RT_PEAK,0,0.6,60s,1s,0\nRT_OFF,0,0.06,60s,1s,0\nRT_FREE,0,0,60s,1s,0\n",
        ),
        (
            "DestinationRates.csv",
            "DR_PEAK,DST_10,RT_PEAK,*up,4,,\nDR_OFF,DST_10,RT_OFF,*up,4,,\nDR_FREE,DST_10,RT_FREE,*up,4,,\n",
        ),
        (
            "RatingPlans.csv",
            "RP,DR_PEAK,PEAK,10\nRP,DR_OFF,OFFPEAK_MORNING,10\nRP,DR_OFF,OFFPEAK_EVENING,10\n\
             RP,DR_OFF,OFFPEAK_WEEKEND,10\nRP,DR_FREE,XMAS_2024,20\nANY,DR_PEAK,*any,10\n",
        ),
        (
            "RatingProfiles.csv",
            "cgrates.org,call,1001,2014-01-01T00:00:00Z,RP,\ncgrates.org,call,any,2014-01-01T00:00:00Z,ANY,\n",
        ),
    ])
}

#[test]
fn peak_off_peak_edge_splits_the_call() {
    let p = timings_plan();
    // Monday 07:59 for 2 min: 60 s off-peak (0.06) + 60 s peak (0.6) = 0.66.
    let cc = p
        .cost(
            &cd("1001", "10", "2024-05-13T07:59:00Z", "2m"),
            RoundingMode::Exact,
        )
        .unwrap();
    assert_eq!(cc.cost.to_string(), "0.66");
    let ids: Vec<&str> = cc.timespans.iter().map(|s| s.timing()).collect();
    assert_eq!(ids, ["OFFPEAK_MORNING", "PEAK"]);
    assert_eq!(cc.timespans[1].start, t("2024-05-13T08:00:00Z"));
    // Monday 18:59:30 for 60 s: 30 s peak (0.3) + 30 s evening (0.03) = 0.33.
    assert_eq!(
        exact(&p, "1001", "10", "2024-05-13T18:59:30Z", "60s"),
        "0.33"
    );
}

#[test]
fn start_time_and_days_of_week_select_the_rate() {
    let p = timings_plan();
    // Monday 07:00: off-peak morning, 60 s = 0.06. Monday 10:00: peak 0.6.
    assert_eq!(
        exact(&p, "1001", "10", "2024-05-13T07:00:00Z", "60s"),
        "0.06"
    );
    assert_eq!(exact(&p, "1001", "10", MON_10, "60s"), "0.6");
    // Saturday 10:00: weekend, 0.06.
    assert_eq!(
        exact(&p, "1001", "10", "2024-05-18T10:00:00Z", "60s"),
        "0.06"
    );
    // Monday 20:00: the evening timing started last (19:00) and wins over
    // peak (08:00): 0.06.
    assert_eq!(
        exact(&p, "1001", "10", "2024-05-13T20:00:00Z", "60s"),
        "0.06"
    );
}

#[test]
fn higher_weight_wins_and_years_months_month_days_must_match() {
    let p = timings_plan();
    // 2024-12-25 is a Wednesday: XMAS_2024 (weight 20) beats PEAK (10): free.
    assert_eq!(exact(&p, "1001", "10", "2024-12-25T10:00:00Z", "60s"), "0");
    // Other year, month, day: peak 0.6.
    assert_eq!(
        exact(&p, "1001", "10", "2025-12-25T10:00:00Z", "60s"),
        "0.6"
    );
    assert_eq!(
        exact(&p, "1001", "10", "2024-11-25T10:00:00Z", "60s"),
        "0.6"
    );
    assert_eq!(
        exact(&p, "1001", "10", "2024-12-24T10:00:00Z", "60s"),
        "0.6"
    );
}

#[test]
fn midnight_splits_the_call() {
    let p = timings_plan();
    // Friday 23:59:30 + 60 s: 30 s evening (0.03) + 30 s Saturday (0.03).
    let cc = p
        .cost(
            &cd("1001", "10", "2024-05-17T23:59:30Z", "60s"),
            RoundingMode::Exact,
        )
        .unwrap();
    assert_eq!(cc.cost.to_string(), "0.06");
    let ids: Vec<&str> = cc.timespans.iter().map(|s| s.timing()).collect();
    assert_eq!(ids, ["OFFPEAK_EVENING", "OFFPEAK_WEEKEND"]);
    // Same rate on both sides: still two spans, cut at midnight.
    let cc = p
        .cost(
            &cd("any", "10", "2024-05-17T23:59:30Z", "60s"),
            RoundingMode::Exact,
        )
        .unwrap();
    assert_eq!(cc.timespans.len(), 2);
    assert_eq!(cc.timespans[1].start, t("2024-05-18T00:00:00Z"));
    assert_eq!(cc.cost.to_string(), "0.6");
}

#[test]
fn uncovered_moment_is_no_rate_interval() {
    let p = plan(&[
        ("Destinations.csv", "D,1\n"),
        ("Timings.csv", "DAY,*any,*any,*any,*any,08:00:00;18:00:00\n"),
        ("Rates.csv", "R,0,1,60s,1s,0\n"),
        ("DestinationRates.csv", "DR,D,R,*up,4,,\n"),
        ("RatingPlans.csv", "RP,DR,DAY,10\n"),
        (
            "RatingProfiles.csv",
            "cgrates.org,call,s,2014-01-01T00:00:00Z,RP,\n",
        ),
    ]);
    assert_eq!(exact(&p, "s", "1", MON_10, "60s"), "1");
    let e = p
        .cost(
            &cd("s", "1", "2024-05-13T07:00:00Z", "60s"),
            RoundingMode::Exact,
        )
        .unwrap_err();
    assert_eq!(e.reason(), "NO_RATE_INTERVAL");
    // 17:59 for 2 min runs past the end time 18:00.
    let e = p
        .cost(
            &cd("s", "1", "2024-05-13T17:59:00Z", "2m"),
            RoundingMode::Exact,
        )
        .unwrap_err();
    assert!(matches!(e, Error::NoRateInterval { at, .. } if at == t("2024-05-13T18:00:00Z")));
}

#[test]
fn destination_longest_prefix_and_any() {
    let p = plan(&[
        ("Destinations.csv", "DST_FS,10\nDST_1002,1002\n"),
        (
            "Rates.csv",
            "R1,0,1,60s,60s,0\nR2,0,2,60s,60s,0\nR3,0,3,60s,60s,0\n",
        ),
        (
            "DestinationRates.csv",
            "DR_FS,DST_FS,R1,*up,4,,\nDR_1002,DST_1002,R2,*up,4,,\nDR_ANY,*any,R3,*up,4,,\n",
        ),
        (
            "RatingPlans.csv",
            "RP,DR_FS,*any,10\nRP,DR_1002,*any,10\nRP,DR_ANY,*any,10\nNOANY,DR_FS,*any,10\n",
        ),
        (
            "RatingProfiles.csv",
            "cgrates.org,call,s,2014-01-01T00:00:00Z,RP,\ncgrates.org,call,n,2014-01-01T00:00:00Z,NOANY,\n",
        ),
    ]);
    // 10029 matches 1002 (longest) -> 2; 1001 matches 10 -> 1; 555 -> *any -> 3.
    let cc = p
        .cost(&cd("s", "10029", MON_10, "60s"), RoundingMode::Exact)
        .unwrap();
    assert_eq!(cc.cost.to_string(), "2");
    assert_eq!(cc.timespans[0].matched_prefix(), "1002");
    assert_eq!(cc.timespans[0].destination_id(), "DST_1002");
    assert_eq!(exact(&p, "s", "1001", MON_10, "60s"), "1");
    assert_eq!(exact(&p, "s", "555", MON_10, "60s"), "3");
    // A plan with no *any rate refuses unknown destinations.
    let e = p
        .cost(&cd("n", "555", MON_10, "60s"), RoundingMode::Exact)
        .unwrap_err();
    assert_eq!(e.reason(), "UNAUTHORIZED_DESTINATION");
}

#[test]
fn destination_weights_when_several_share_the_prefix() {
    // tutorial2: DST_2030 (20;30, *any, weight 10) and DST_20 (20, NEW_YEAR,
    // weight 20). DST_2030 is loaded first.
    let p = plan(&[
        ("Destinations.csv", "DST_2030,20\nDST_2030,30\nDST_20,20\n"),
        ("Timings.csv", "NEW_YEAR,*any,1,1,*any,00:00:00\n"),
        ("Rates.csv", "R120,0,1.2,60s,60s,0\nR60,0,0.6,60s,60s,0\n"),
        (
            "DestinationRates.csv",
            "DR_2030,DST_2030,R120,*up,4,,\nDR_20,DST_20,R60,*up,4,,\n",
        ),
        (
            "RatingPlans.csv",
            "RP,DR_2030,*any,10\nRP,DR_20,NEW_YEAR,20\n",
        ),
        (
            "RatingProfiles.csv",
            "cgrates.org,call,*any,2014-01-01T00:00:00Z,RP,\n",
        ),
    ]);
    // New Year's day: DST_20's weight 20 wins -> 0.6 for a minute.
    let cc = p
        .cost(
            &cd("x", "2012", "2025-01-01T10:00:00Z", "60s"),
            RoundingMode::Exact,
        )
        .unwrap();
    assert_eq!(cc.cost.to_string(), "0.6");
    assert_eq!(cc.timespans[0].destination_id(), "DST_20");
    // Any other day DST_20 has no rate in force: DST_2030 -> 1.2.
    assert_eq!(exact(&p, "x", "2012", "2025-02-03T10:00:00Z", "60s"), "1.2");
    assert_eq!(exact(&p, "x", "3012", "2025-01-01T10:00:00Z", "60s"), "1.2");
    // Crossing midnight out of New Year's day: the destination is picked
    // again after midnight: 1 min DST_20 (0.6) + 1 min DST_2030 (1.2) = 1.8.
    let cc = p
        .cost(
            &cd("x", "2012", "2025-01-01T23:59:00Z", "2m"),
            RoundingMode::Exact,
        )
        .unwrap();
    assert_eq!(cc.cost.to_string(), "1.8");
    let ids: Vec<&str> = cc.timespans.iter().map(|s| s.destination_id()).collect();
    assert_eq!(ids, ["DST_20", "DST_2030"]);
}

fn profiles_plan() -> TariffPlan {
    plan(&[
        ("Destinations.csv", "DST_1002,1002\nDST_FS,10\n"),
        (
            "Rates.csv",
            "R1,0,1,60s,60s,0\nR2,0,2,60s,60s,0\nR5,0,5,60s,60s,0\nR7,0,7,60s,60s,0\n",
        ),
        (
            "DestinationRates.csv",
            "DR1_1002,DST_1002,R1,*up,4,,\nDR2_1002,DST_1002,R2,*up,4,,\nDR5_FS,DST_FS,R5,*up,4,,\nDR7,DST_FS,R7,*up,4,,\n",
        ),
        (
            "RatingPlans.csv",
            "RP_OLD,DR1_1002,*any,10\nRP_NEW,DR2_1002,*any,10\nRP_ANY,DR5_FS,*any,10\nRP_PREMIUM,DR7,*any,10\n",
        ),
        (
            "RatingProfiles.csv",
            "#Tenant,Category,Subject,ActivationTime,RatingPlanID,FallbackSubject\n\
             cgrates.org,call,1001,2024-06-01T00:00:00Z,RP_NEW,*any\n\
             cgrates.org,call,1001,2020-01-01T00:00:00Z,RP_OLD,*any\n\
             cgrates.org,call,1002,2020-01-01T00:00:00Z,RP_OLD,\n\
             cgrates.org,call,1003,2024-06-01T00:00:00Z,RP_NEW,\n\
             cgrates.org,call,*any,2014-01-01T00:00:00Z,RP_ANY,\n\
             cgrates.org,premium,*any,2014-01-01T00:00:00Z,RP_PREMIUM,\n\
             other.org,call,*any,2014-01-01T00:00:00Z,RP_NEW,\n",
        ),
    ])
}

#[test]
fn profile_by_tenant_category_subject() {
    let p = profiles_plan();
    // 1001 -> 1002 in May 2024: RP_OLD, 1 per minute.
    assert_eq!(
        exact(&p, "1001", "1002", "2024-05-01T10:00:00Z", "60s"),
        "1"
    );
    // category premium, *any subject: RP_PREMIUM, 7.
    let mut c = cd("1001", "1099", "2024-05-01T10:00:00Z", "60s");
    c.category = "premium";
    assert_eq!(cost_of(&p, &c, RoundingMode::Exact), "7");
    // tenant other.org: RP_NEW, 2.
    let mut c = cd("1001", "1002", "2024-05-01T10:00:00Z", "60s");
    c.tenant = "other.org";
    assert_eq!(cost_of(&p, &c, RoundingMode::Exact), "2");
    // An unknown tenant has no profile at all.
    c.tenant = "nobody.org";
    assert_eq!(
        p.cost(&c, RoundingMode::Exact).unwrap_err().reason(),
        "RATING_PLAN_NOT_FOUND"
    );
}

#[test]
fn activation_times_last_before_start_and_switch_mid_call() {
    let p = profiles_plan();
    // July 2024: RP_NEW (2). At exactly the activation time: RP_NEW.
    assert_eq!(
        exact(&p, "1001", "1002", "2024-07-01T10:00:00Z", "60s"),
        "2"
    );
    assert_eq!(
        exact(&p, "1001", "1002", "2024-06-01T00:00:00Z", "60s"),
        "2"
    );
    // 23:59 on May 31 for 2 min: 1 min RP_OLD (1) + 1 min RP_NEW (2) = 3.
    let cc = p
        .cost(
            &cd("1001", "1002", "2024-05-31T23:59:00Z", "2m"),
            RoundingMode::Exact,
        )
        .unwrap();
    assert_eq!(cc.cost.to_string(), "3");
    let plans: Vec<&str> = cc.timespans.iter().map(|s| s.rating_plan()).collect();
    assert_eq!(plans, ["RP_OLD", "RP_NEW"]);
    // 1003 has nothing before June 2024: that part is rated by *any, whose
    // plan prices 1002 by its prefix 10 (DST_FS): 5.
    assert_eq!(
        exact(&p, "1003", "1002", "2024-05-01T10:00:00Z", "60s"),
        "5"
    );
    // *any does not price 2000 -> refused.
    let e = p
        .cost(
            &cd("1003", "2000", "2024-05-01T10:00:00Z", "60s"),
            RoundingMode::Exact,
        )
        .unwrap_err();
    assert_eq!(e.reason(), "UNAUTHORIZED_DESTINATION");
    // A call crossing 1003's first activation: 1 min *any (5) + 1 min
    // RP_NEW (2) = 7.
    assert_eq!(exact(&p, "1003", "1002", "2024-05-31T23:59:00Z", "2m"), "7");
}

#[test]
fn fallback_subject_and_any_subject() {
    let p = profiles_plan();
    // 1001's plans do not price 1099; its fallback *any does: 5.
    let cc = p
        .cost(
            &cd("1001", "1099", "2024-05-01T10:00:00Z", "60s"),
            RoundingMode::Exact,
        )
        .unwrap();
    assert_eq!(cc.cost.to_string(), "5");
    assert_eq!(cc.timespans[0].matched_subject(), "*any");
    // 1002 has no fallback: refused, although *any would price it.
    let e = p
        .cost(
            &cd("1002", "1099", "2024-05-01T10:00:00Z", "60s"),
            RoundingMode::Exact,
        )
        .unwrap_err();
    assert_eq!(e.reason(), "UNAUTHORIZED_DESTINATION");
    // An unknown subject is rated with *any: 5.
    assert_eq!(
        exact(&p, "9999", "1099", "2024-05-01T10:00:00Z", "60s"),
        "5"
    );
    // An empty subject uses the account.
    let mut c = cd("", "1002", "2024-05-01T10:00:00Z", "60s");
    c.account = "1002";
    assert_eq!(cost_of(&p, &c, RoundingMode::Exact), "1");
}

#[test]
fn fallback_chains_stop_at_depth_three() {
    let p = plan(&[
        ("Destinations.csv", "D,1\nE,2\n"),
        ("Rates.csv", "R,0,1,60s,60s,0\n"),
        ("DestinationRates.csv", "DR,D,R,*up,4,,\n"),
        ("RatingPlans.csv", "RP,DR,*any,10\n"),
        (
            "RatingProfiles.csv",
            "cgrates.org,call,a,2014-01-01T00:00:00Z,RP,b\ncgrates.org,call,b,2014-01-01T00:00:00Z,RP,a\n",
        ),
    ]);
    assert_eq!(exact(&p, "a", "1", MON_10, "60s"), "1");
    let e = p
        .cost(&cd("a", "2", MON_10, "60s"), RoundingMode::Exact)
        .unwrap_err();
    assert_eq!(e.reason(), "MAX_RECURSION_DEPTH");
}

fn max_cost_plan() -> TariffPlan {
    plan(&[
        ("Destinations.csv", "FREE,1\nDISC,2\nSPLIT,3\n"),
        (
            "Rates.csv",
            "RT_1CNT_PER_SEC,0,0.01,1s,1s,0\nRT_SPLIT,0,0.6,60s,1s,0\nRT_SPLIT,0,0.6,60s,1s,60s\n",
        ),
        (
            "DestinationRates.csv",
            "DR,FREE,RT_1CNT_PER_SEC,*up,4,0.12,*free\nDR,DISC,RT_1CNT_PER_SEC,*up,4,0.12,*disconnect\n\
             DR,SPLIT,RT_SPLIT,*up,4,1,*free\n",
        ),
        ("RatingPlans.csv", "RP,DR,*any,10\n"),
        (
            "RatingProfiles.csv",
            "cgrates.org,call,s,2014-01-01T00:00:00Z,RP,\n",
        ),
    ])
}

#[test]
fn max_cost_free_caps_the_cost() {
    let p = max_cost_plan();
    // 60 s at 0.01/s = 0.6 > 0.12 -> 0.12.
    let cc = p
        .cost(&cd("s", "1", MON_10, "60s"), RoundingMode::Exact)
        .unwrap();
    assert_eq!(cc.cost.to_string(), "0.12");
    assert!(cc.max_cost_applied);
    // 10 s = 0.1 < 0.12: unchanged.
    let cc = p
        .cost(&cd("s", "1", MON_10, "10s"), RoundingMode::Exact)
        .unwrap();
    assert_eq!(cc.cost.to_string(), "0.1");
    assert!(!cc.max_cost_applied);
}

#[test]
fn max_cost_disconnect_marks_where_to_cut_without_changing_cost() {
    let p = max_cost_plan();
    // 0.12 allows 12 one-second increments at 0.01.
    let cc = p
        .cost(&cd("s", "2", MON_10, "60s"), RoundingMode::Exact)
        .unwrap();
    assert_eq!(cc.cost.to_string(), "0.6");
    assert_eq!(cc.max_cost_disconnect_at, Some(Duration::from_secs(12)));
    let cc = p
        .cost(&cd("s", "2", MON_10, "12s"), RoundingMode::Exact)
        .unwrap();
    assert_eq!(cc.max_cost_disconnect_at, None);
}

#[test]
fn cgrates_mode_keeps_the_max_cost_so_far_quirk() {
    let p = max_cost_plan();
    // 90 s, spans 60 s (0.6) and 30 s (0.3), MaxCost 1 *free.
    // Exact: 0.9 < 1 -> 0.9. CGRateS adds the running totals 0.6 and 0.9
    // into MaxCostSoFar (1.5 >= 1) and charges 1.
    assert_eq!(exact(&p, "s", "3", MON_10, "90s"), "0.9");
    assert_eq!(cgr(&p, "s", "3", MON_10, "90s"), "1");
}

fn units_plan() -> TariffPlan {
    // tutorial2: RT_1024_1 (1 per 1024 units), RT_10C1 (0.1 per unit); and
    // a peak/off-peak pair to show *data ignores timing edges.
    plan(&[
        ("Destinations.csv", "DST_1002,1002\n"),
        (
            "Timings.csv",
            "PEAK,*any,*any,*any,*any,08:00:00\nOFF,*any,*any,*any,*any,00:00:00\n",
        ),
        (
            "Rates.csv",
            "RT_1024_1,0,1,1024,1024,0\nRT_10C1,0,0.1,1,1,0\nRT_PEAK,0,10,1,1,0\n",
        ),
        (
            "DestinationRates.csv",
            "DR_DATA,*any,RT_1024_1,*up,4,,\nDR_SMS,DST_1002,RT_10C1,*up,4,,\nDR_PEAK,*any,RT_PEAK,*up,4,,\n",
        ),
        (
            "RatingPlans.csv",
            "RP_DATA,DR_DATA,OFF,10\nRP_DATA,DR_PEAK,PEAK,10\nRP_SMS,DR_SMS,*any,10\n",
        ),
        (
            "RatingProfiles.csv",
            "cgrates.org,data,*any,2014-01-01T00:00:00Z,RP_DATA,\ncgrates.org,sms,*any,2014-01-01T00:00:00Z,RP_SMS,\n",
        ),
    ])
}

#[test]
fn data_and_sms_count_units() {
    let p = units_plan();
    // *data 2000 units: two 1024-unit increments at 1 each = 2.
    let mut c = cd("1001", "*any", "2024-05-13T07:00:00Z", "2000");
    c.tor = Tor::Data;
    c.category = "data";
    let cc = p.cost(&c, RoundingMode::Exact).unwrap();
    assert_eq!(cc.cost.to_string(), "2");
    assert_eq!(cc.rated_usage, Duration::from_nanos(2048));
    // A huge *data usage starting at 07:00 is not cut at 08:00 (units are
    // not time): one span at the off-peak rate. 3_600_000_000_000 units =
    // 3515625000 increments of 1024 -> 3515625000.
    c.usage = Duration::from_nanos(3_600_000_000_000);
    let cc = p.cost(&c, RoundingMode::Exact).unwrap();
    assert_eq!(cc.timespans.len(), 1);
    assert_eq!(cc.cost.to_string(), "3515625000");
    // *sms 3 units at 0.1 = 0.3.
    let mut c = cd("1001", "1002", MON_10, "3");
    c.tor = Tor::Sms;
    c.category = "sms";
    assert_eq!(cost_of(&p, &c, RoundingMode::Exact), "0.3");
    assert_eq!("*sms".parse::<Tor>(), Ok(Tor::Sms));
    assert_eq!(Tor::Data.as_str(), "*data");
}

#[test]
fn json_has_exact_cost_digits() {
    let p = tutorial_like();
    let cc = p
        .cost(&cd("1001", "1002", MON_10, "90s"), RoundingMode::Exact)
        .unwrap();
    let j = cc.to_json();
    assert!(
        j.starts_with("{\"Cost\":0.65,\"Usage\":90000000000,"),
        "{j}"
    );
    assert!(j.contains("\"RatingPlanID\":\"RP_1001\""));
    assert!(
        j.contains("\"IncrementCost\":0.0016666666666666666666666667"),
        "{j}"
    );
}
