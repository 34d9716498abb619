//! Loader tests: layouts, references, and errors that point at file, line
//! and column.

use std::path::Path;

use chrono::TimeZone;

use super::*;
use crate::{SharedTariffPlan, TariffStore};

fn opts() -> LoadOptions {
    LoadOptions {
        loaded_at: Utc.with_ymd_and_hms(2024, 1, 1, 9, 30, 0).unwrap(),
    }
}

fn load(files: &[(&str, &str)]) -> Result<(TariffPlan, LoadReport), Error> {
    let v: Vec<(&Path, &str)> = files.iter().map(|(n, t)| (Path::new(*n), *t)).collect();
    TariffPlan::from_csv(&v, &opts())
}

const DST: (&str, &str) = ("Destinations.csv", "#Id,Prefix\nDST_1002,1002\nDST_FS,10\n");
const RT: (&str, &str) = (
    "Rates.csv",
    "RT_20CNT,0.4,0.2,60s,60s,0s\nRT_20CNT,,0.1,1m,1s,1m\n",
);
const DR: (&str, &str) = (
    "DestinationRates.csv",
    "DR_1002,DST_1002,RT_20CNT,*up,4,0,\n",
);
const RP: (&str, &str) = ("RatingPlans.csv", "RP_1001,DR_1002,*any,10\n");

/// The error's (file name, line, column).
fn at(e: &Error) -> (String, usize, usize) {
    match e {
        Error::Load {
            file, line, column, ..
        } => (file.display().to_string(), *line, *column),
        other => panic!("not a load error: {other}"),
    }
}

#[test]
fn loads_current_layout_and_counts() {
    let rpf = (
        "RatingProfiles.csv",
        "cgrates.org,call,1001,2014-01-14T00:00:00Z,RP_1001,\n",
    );
    let (plan, report) = load(&[DST, RT, DR, RP, rpf, ("Attributes.csv", "x")]).unwrap();
    assert_eq!(report.destinations, 2);
    assert_eq!(report.prefixes, 2);
    assert_eq!(report.rating_plans, 1);
    assert_eq!(report.rating_profiles, 1);
    assert_eq!(report.loaded_files.len(), 5);
    assert_eq!(
        report.unhandled_files,
        vec![std::path::PathBuf::from("Attributes.csv")]
    );
    let rates = &plan.plans[0].intervals[0].rates;
    // Empty ConnectFee on the second row is 0; the group's fee is the first row's.
    assert_eq!(rates.connect_fee.to_string(), "0.4");
    assert_eq!(rates.slots[1].gis, 60_000_000_000);
}

#[test]
fn loads_old_layout_with_direction_and_skips_inbound_with_a_warning() {
    let rpf = (
        "RatingProfiles.csv",
        "#Direction,Tenant,Category,Subject,ActivationTime,RatingPlanId,RatesFallbackSubject,CdrStatQueueIds\n\
         *out,cgrates.org,call,1001,2014-01-14T00:00:00Z,RP_1001,,\n\
         *in,cgrates.org,call,1001,2014-01-14T00:00:00Z,RP_1001,,\n",
    );
    let (plan, report) = load(&[DST, RT, DR, RP, rpf]).unwrap();
    assert!(plan.profile("cgrates.org", "call", "1001").is_some());
    assert_eq!(report.rating_profiles, 1);
    assert_eq!(report.warnings.len(), 1);
    assert!(
        report.warnings[0].contains("RatingProfiles.csv:3"),
        "{:?}",
        report.warnings
    );
}

#[test]
fn bad_duration_names_file_line_column() {
    let rt = (
        "Rates.csv",
        "#Id,ConnectFee,Rate,RateUnit,RateIncrement,GroupIntervalStart\nRT,0,0.1,60s,6o,0\n",
    );
    let e = load(&[DST, rt]).unwrap_err();
    assert_eq!(at(&e), ("Rates.csv".into(), 2, 5));
    assert!(e.to_string().contains("RateIncrement"), "{e}");
}

#[test]
fn bad_numbers_and_enums_name_their_column() {
    let dr = |row: &str| ("DestinationRates.csv", row.to_owned());
    let cases = [
        ("DR,DST_1002,RT_20CNT,*ceil,4,0,", 4),
        ("DR,DST_1002,RT_20CNT,*up,four,0,", 5),
        ("DR,DST_1002,RT_20CNT,*up,4,x,", 6),
        ("DR,DST_1002,RT_20CNT,*up,4,1,*drop", 7),
        ("DR,DST_NONE,RT_20CNT,*up,4,0,", 2),
        ("DR,DST_1002,RT_NONE,*up,4,0,", 3),
        ("DR,DST_1002", 3),
    ];
    for (row, col) in cases {
        let (name, text) = dr(row);
        let e = load(&[DST, RT, (name, &text)]).unwrap_err();
        assert_eq!(
            at(&e),
            ("DestinationRates.csv".into(), 1, col),
            "{row}: {e}"
        );
    }
    let rt = ("Rates.csv", "RT,0,zero,60s,1s,0\n");
    assert_eq!(at(&load(&[rt]).unwrap_err()), ("Rates.csv".into(), 1, 3));
    let rt = ("Rates.csv", "RT,0,1,60s,1s,0\nRT,0,2,60s,1s,0s\n");
    assert_eq!(at(&load(&[rt]).unwrap_err()), ("Rates.csv".into(), 2, 6));
}

#[test]
fn unknown_references_say_what_was_expected() {
    let rp = ("RatingPlans.csv", "RP,DR_1002,NOT_A_TIMING,10\n");
    let e = load(&[DST, RT, DR, rp]).unwrap_err();
    assert_eq!(at(&e), ("RatingPlans.csv".into(), 1, 3));
    assert!(
        e.to_string().contains("a timing ID defined in Timings.csv"),
        "{e}"
    );
    let rp = ("RatingPlans.csv", "RP,DR_NONE,*any,10\n");
    assert_eq!(
        at(&load(&[DST, RT, DR, rp]).unwrap_err()),
        ("RatingPlans.csv".into(), 1, 2)
    );
    let rp = ("RatingPlans.csv", "RP,DR_1002,*any,heavy\n");
    assert_eq!(
        at(&load(&[DST, RT, DR, rp]).unwrap_err()),
        ("RatingPlans.csv".into(), 1, 4)
    );
    let rpf = (
        "RatingProfiles.csv",
        "cgrates.org,call,1001,2014-01-14T00:00:00Z,RP_NONE,\n",
    );
    assert_eq!(
        at(&load(&[DST, RT, DR, RP, rpf]).unwrap_err()),
        ("RatingProfiles.csv".into(), 1, 5)
    );
    let rpf = (
        "RatingProfiles.csv",
        "cgrates.org,call,1001,yesterday,RP_1001,\n",
    );
    assert_eq!(
        at(&load(&[DST, RT, DR, RP, rpf]).unwrap_err()),
        ("RatingProfiles.csv".into(), 1, 4)
    );
    // Old layout: the same mistake is one column to the right.
    let rpf = (
        "RatingProfiles.csv",
        "*out,cgrates.org,call,1001,yesterday,RP_1001,,\n",
    );
    assert_eq!(
        at(&load(&[DST, RT, DR, RP, rpf]).unwrap_err()),
        ("RatingProfiles.csv".into(), 1, 5)
    );
}

#[test]
fn timing_errors_point_at_the_timing_column() {
    let tm = (
        "Timings.csv",
        "#ID,Years,Months,MonthDays,WeekDays,Time\nPEAK,*any,*any,*any,1;2;9,08:00:00\n",
    );
    assert_eq!(at(&load(&[tm]).unwrap_err()), ("Timings.csv".into(), 2, 5));
    let tm = ("Timings.csv", "PEAK,*any,*any,*any,*any,8am\n");
    assert_eq!(at(&load(&[tm]).unwrap_err()), ("Timings.csv".into(), 1, 6));
    let tm = (
        "Timings.csv",
        "PEAK,*any,*any,*any,*any,08:00:00\nPEAK,*any,*any,*any,*any,09:00:00\n",
    );
    assert_eq!(at(&load(&[tm]).unwrap_err()), ("Timings.csv".into(), 2, 1));
}

#[test]
fn asap_and_builtin_timings_and_activation_times() {
    let tm = ("Timings.csv", "NOW,*any,*any,*any,*any,*asap\n");
    let rp = (
        "RatingPlans.csv",
        "RP,DR_1002,NOW,10\nRP2,DR_1002,*daily,10\n",
    );
    let rpf = (
        "RatingProfiles.csv",
        "cgrates.org,call,a,*asap,RP,\ncgrates.org,call,b,1389657600,RP,\ncgrates.org,call,c,2014-01-14 00:00:00,RP2,\n",
    );
    let (plan, _) = load(&[DST, tm, RT, DR, rp, rpf]).unwrap();
    let a = plan.profile("cgrates.org", "call", "a").unwrap();
    assert_eq!(a.activations[0].at, opts().loaded_at);
    let b = plan.profile("cgrates.org", "call", "b").unwrap();
    assert_eq!(
        b.activations[0].at,
        Utc.with_ymd_and_hms(2014, 1, 14, 0, 0, 0).unwrap()
    );
    let c = plan.profile("cgrates.org", "call", "c").unwrap();
    assert_eq!(c.activations[0].at, b.activations[0].at);
}

#[test]
fn unclosed_quote_is_reported_at_its_line() {
    let dst = ("Destinations.csv", "A,1\n\"B,2\n");
    assert_eq!(
        at(&load(&[dst]).unwrap_err()),
        ("Destinations.csv".into(), 2, 1)
    );
}

#[test]
fn a_bad_plan_is_refused_whole_and_the_previous_stays() {
    let dir = std::env::temp_dir().join(format!("rating-load-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let write = |name: &str, text: &str| std::fs::write(dir.join(name), text).unwrap();
    write("Destinations.csv", DST.1);
    write("Rates.csv", RT.1);
    write("DestinationRates.csv", DR.1);
    write("RatingPlans.csv", RP.1);
    write(
        "RatingProfiles.csv",
        "cgrates.org,call,1001,2014-01-14T00:00:00Z,RP_1001,\n",
    );
    write("Attributes.csv", "#x\n");
    write("README.md", "not a plan");
    let shared = SharedTariffPlan::default();
    let report = shared.reload_dir(&dir, &opts()).unwrap();
    assert_eq!(report.unhandled_files, vec![dir.join("Attributes.csv")]);
    assert_eq!(shared.current().rating_profile_count(), 1);
    // Break one file: the reload fails, naming it, and the old plan stays.
    write(
        "RatingPlans.csv",
        "RP_1001,DR_1002,*any,10\nRP_1001,DR_MISSING,*any,10\n",
    );
    let e = shared.reload_dir(&dir, &opts()).unwrap_err();
    assert_eq!(
        at(&e),
        (dir.join("RatingPlans.csv").display().to_string(), 2, 2)
    );
    assert_eq!(shared.current().rating_profile_count(), 1);
    let empty = dir.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    assert!(matches!(
        TariffPlan::load_dir(&empty, &opts()),
        Err(Error::EmptyPlan { .. })
    ));
    assert!(matches!(
        TariffPlan::load_dir(&dir.join("missing"), &opts()),
        Err(Error::Io { .. })
    ));
    std::fs::remove_dir_all(&dir).unwrap();
}

const RPF: (&str, &str) = (
    "RatingProfiles.csv",
    "cgrates.org,call,1001,2014-01-14T00:00:00Z,RP_1001,\n",
);

/// A fresh folder under the system temp dir, named after the test.
fn temp_plan_dir(test: &str, files: &[(&str, &[u8])]) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("rating-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    for (name, bytes) in files {
        std::fs::write(dir.join(name), bytes).unwrap();
    }
    dir
}

fn good_plan_files() -> Vec<(&'static str, &'static [u8])> {
    [DST, RT, DR, RP, RPF]
        .iter()
        .map(|(n, t)| (*n, t.as_bytes()))
        .collect()
}

#[test]
fn timing_hour_9999999_is_a_load_error_not_a_panic_or_wrap() {
    for time in [
        "9999999:00:00",
        "5124095576030431:00:00",
        "00:00:00;9999999:00:00",
        "18446744073709551615:00:00",
    ] {
        let text =
            format!("#ID,Years,Months,MonthDays,WeekDays,Time\nT,*any,*any,*any,*any,{time}\n");
        let e = load(&[("Timings.csv", &text)]).unwrap_err();
        assert_eq!(at(&e), ("Timings.csv".into(), 2, 6), "{time}: {e}");
    }
    for (cols, col) in [
        ("9999999999,*any,*any,*any", 2),
        ("*any,9999999,*any,*any", 3),
        ("*any,*any,4294967297,*any", 4),
        ("*any,*any,32,*any", 4),
        ("*any,*any,*any,-9999999", 5),
    ] {
        let text = format!("T,{cols},00:00:00\n");
        let e = load(&[("Timings.csv", &text)]).unwrap_err();
        assert_eq!(at(&e), ("Timings.csv".into(), 1, col), "{cols}: {e}");
    }
}

#[test]
fn huge_numbers_in_numeric_columns_are_errors_or_rate_without_panic() {
    // Too big for the number types: load errors at the column.
    let rt = ("Rates.csv", "RT,0,1,18446744073709551616,1s,0\n");
    assert_eq!(at(&load(&[rt]).unwrap_err()), ("Rates.csv".into(), 1, 4));
    let rt = ("Rates.csv", "RT,0,1,60s,9999999999999h,0\n");
    assert_eq!(at(&load(&[rt]).unwrap_err()), ("Rates.csv".into(), 1, 5));
    for rate in [
        "1e99999999999",
        "1e-99999999999",
        "79228162514264337593543950336",
    ] {
        let text = format!("RT,0,{rate},60s,1s,0\n");
        let e = load(&[("Rates.csv", &text)]).unwrap_err();
        assert_eq!(at(&e), ("Rates.csv".into(), 1, 3), "{rate}: {e}");
    }
    let dr = (
        "DestinationRates.csv",
        "DR,DST_1002,RT_20CNT,*up,4294967296,0,\n",
    );
    assert_eq!(
        at(&load(&[DST, RT, dr]).unwrap_err()),
        ("DestinationRates.csv".into(), 1, 5)
    );
    let rp = ("RatingPlans.csv", "RP,DR_1002,*any,1e99999999999\n");
    assert_eq!(
        at(&load(&[DST, RT, DR, rp]).unwrap_err()),
        ("RatingPlans.csv".into(), 1, 4)
    );
    // The largest values that fit load, and rating with them answers
    // (a cost or an error) without panicking.
    let rt = (
        "Rates.csv",
        "RT_20CNT,79228162514264337593543950335,79228162514264337593543950335,18446744073709551615,18446744073709551615,0\n\
         RT_20CNT,0,0.0000000000000000000000000001,1,1,18446744073709551615\n",
    );
    let rp = (
        "RatingPlans.csv",
        "RP_1001,DR_1002,*any,79228162514264337593543950335\n",
    );
    let (plan, _) = load(&[DST, rt, DR, rp, RPF]).unwrap();
    let start = Utc.with_ymd_and_hms(2024, 5, 13, 10, 0, 0).unwrap();
    for secs in [0, 1, 61, u64::from(u32::MAX)] {
        let cd =
            crate::CallDescriptor::new("1001", "1002", start, std::time::Duration::from_secs(secs));
        for mode in [crate::RoundingMode::Exact, crate::RoundingMode::Cgrates] {
            let _ = plan.cost(&cd, mode);
        }
    }
}

#[test]
fn cr_only_line_ends_load() {
    let cr = |t: &str| t.replace('\n', "\r");
    let files: Vec<(&str, String)> = [DST, RT, DR, RP, RPF]
        .iter()
        .map(|(n, t)| (*n, cr(&format!("# header\n\n{t}"))))
        .collect();
    let v: Vec<(&str, &str)> = files.iter().map(|(n, t)| (*n, t.as_str())).collect();
    let (_, report) = load(&v).unwrap();
    assert_eq!(report.destinations, 2);
    assert_eq!(report.rating_profiles, 1);
    // Positions count CR-only lines too.
    let rt = ("Rates.csv", "#h\rRT,0,1,60s,1s,0\rRT,0,1,60s,6o,1m\r");
    assert_eq!(at(&load(&[rt]).unwrap_err()), ("Rates.csv".into(), 3, 5));
}

#[test]
fn invalid_utf8_names_file_line_and_column() {
    let mut files = good_plan_files();
    files[0] = (
        "Destinations.csv",
        b"#Id,Prefix\nDST_1002,1002\nDST_\xe9,10\n",
    );
    let dir = temp_plan_dir("invalid-utf8", &files);
    let e = TariffPlan::load_dir(&dir, &opts()).unwrap_err();
    assert_eq!(
        at(&e),
        (dir.join("Destinations.csv").display().to_string(), 3, 1),
        "{e}"
    );
    assert!(e.to_string().contains("UTF-8"), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn plan_that_loads_no_rating_profile_is_refused() {
    // No RatingProfiles.csv at all.
    let e = load(&[DST, RT, DR, RP]).unwrap_err();
    assert!(
        matches!(&e, Error::NoRatingProfiles { path } if path.ends_with("RatingProfiles.csv")),
        "{e}"
    );
    // Every handled file present, but holding only comments.
    let headers: Vec<(&str, &[u8])> = HANDLED_FILES
        .iter()
        .map(|n| (*n, &b"#only,a,header\n"[..]))
        .collect();
    let dir = temp_plan_dir("no-profiles", &headers);
    let e = TariffPlan::load_dir(&dir, &opts()).unwrap_err();
    assert!(
        matches!(&e, Error::NoRatingProfiles { path } if *path == dir.join("RatingProfiles.csv")),
        "{e}"
    );
    // Only *in profiles: nothing to rate outbound calls with.
    let rpf = (
        "RatingProfiles.csv",
        "*in,cgrates.org,call,1001,2014-01-14T00:00:00Z,RP_1001,,\n",
    );
    assert!(matches!(
        load(&[DST, RT, DR, RP, rpf]),
        Err(Error::NoRatingProfiles { .. })
    ));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn csv_that_is_a_folder_or_a_dangling_link_is_reported() {
    let dir = temp_plan_dir("csv-folder", &good_plan_files());
    // A folder where a handled file was meant...
    std::fs::remove_file(dir.join("Rates.csv")).unwrap();
    std::fs::create_dir(dir.join("Rates.csv")).unwrap();
    let e = TariffPlan::load_dir(&dir, &opts()).unwrap_err();
    assert!(
        matches!(&e, Error::UnreadableFile { path, .. } if *path == dir.join("Rates.csv")),
        "{e}"
    );
    assert!(e.to_string().contains("folder"), "{e}");
    std::fs::remove_dir(dir.join("Rates.csv")).unwrap();
    std::fs::write(dir.join("Rates.csv"), RT.1).unwrap();
    assert!(TariffPlan::load_dir(&dir, &opts()).is_ok());
    // ...and a link to nothing, even for a file we do not handle.
    #[cfg(unix)]
    {
        std::os::unix::fs::symlink(dir.join("gone.txt"), dir.join("Actions.csv")).unwrap();
        let e = TariffPlan::load_dir(&dir, &opts()).unwrap_err();
        assert!(
            matches!(&e, Error::UnreadableFile { path, .. } if *path == dir.join("Actions.csv")),
            "{e}"
        );
        // A link to a real file is read through.
        std::fs::remove_file(dir.join("Actions.csv")).unwrap();
        std::fs::rename(dir.join("RatingPlans.csv"), dir.join("rp.txt")).unwrap();
        std::os::unix::fs::symlink(dir.join("rp.txt"), dir.join("RatingPlans.csv")).unwrap();
        let (_, report) = TariffPlan::load_dir(&dir, &opts()).unwrap();
        assert_eq!(report.rating_plans, 1);
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[cfg(unix)]
#[test]
fn csv_without_read_permission_is_reported() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = temp_plan_dir("csv-no-permission", &good_plan_files());
    let path = dir.join("Rates.csv");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o000)).unwrap();
    // root reads anyway: then there is nothing to check.
    if std::fs::File::open(&path).is_err() {
        let e = TariffPlan::load_dir(&dir, &opts()).unwrap_err();
        assert!(
            matches!(&e, Error::UnreadableFile { path: p, .. } if *p == path),
            "{e}"
        );
    }
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn negative_rate_or_connect_fee_is_refused_unless_allowed() {
    // 90 s: connect fee + first minute at 0.2 + 30 s at the second rate.
    for (rates, col, cost_90s) in [
        (
            "RT_20CNT,-0.4,0.2,60s,60s,0s\nRT_20CNT,0,0.1,60s,1s,60s\n",
            2,
            "-0.15",
        ),
        (
            "RT_20CNT,0.4,0.2,60s,60s,0s\nRT_20CNT,0,-0.1,60s,1s,60s\n",
            3,
            "0.55",
        ),
    ] {
        let rt = ("Rates.csv", rates);
        let e = load(&[DST, rt, DR, RP, RPF]).unwrap_err();
        let line = if col == 2 { 1 } else { 2 };
        assert_eq!(at(&e), ("Rates.csv".into(), line, col), "{rates}: {e}");
        assert!(e.to_string().contains("allow-negative-rates"), "{e}");
        let files: Vec<(&Path, &str)> = [DST, rt, DR, RP, RPF]
            .iter()
            .map(|(n, t)| (Path::new(*n), *t))
            .collect();
        let policy = LoadPolicy {
            allow_negative_rates: true,
        };
        let (plan, _) = TariffPlan::from_csv_with(&files, &opts(), &policy).unwrap();
        // The same through a folder and a shared plan's reload.
        let on_disk: Vec<(&str, &[u8])> = [DST, rt, DR, RP, RPF]
            .iter()
            .map(|(n, t)| (*n, t.as_bytes()))
            .collect();
        let dir = temp_plan_dir(&format!("negative-{col}"), &on_disk);
        let shared = SharedTariffPlan::default();
        assert!(shared.reload_dir(&dir, &opts()).is_err());
        assert_eq!(
            shared
                .reload_dir_with(&dir, &opts(), &policy)
                .unwrap()
                .rating_profiles,
            1
        );
        std::fs::remove_dir_all(&dir).unwrap();
        let cd = crate::CallDescriptor::new(
            "1001",
            "1002",
            Utc.with_ymd_and_hms(2024, 5, 13, 10, 0, 0).unwrap(),
            std::time::Duration::from_secs(90),
        );
        let cost = plan.cost(&cd, crate::RoundingMode::Exact).unwrap().cost;
        assert_eq!(cost.to_string(), cost_90s);
    }
}

#[test]
fn destinations_sold_alike_share_one_run_and_keep_their_names() {
    let (plan, _) = load(&[
        ("Destinations.csv", "#Id,Prefix\nA,1\nB,2\nC,3\nD,4\nE,5\n"),
        (
            "Timings.csv",
            "#ID,Years,Months,MonthDays,WeekDays,Time\nPEAK,*any,*any,*any,1;2;3;4;5,08:00:00\n",
        ),
        (
            "Rates.csv",
            "RT_1,0,0.1,60s,60s,0s\nRT_2,0,0.2,60s,60s,0s\nRT_3,0,0.1,1m,60s,0s\n",
        ),
        (
            "DestinationRates.csv",
            "DR_A,A,RT_1,*up,4,0,\nDR_B,B,RT_1,*up,4,0,\nDR_C,C,RT_2,*up,4,0,\n\
             DR_D,D,RT_1,*up,4,0,\nDR_E,E,RT_3,*up,4,0,\n",
        ),
        (
            "RatingPlans.csv",
            "RP,DR_A,*any,10\nRP,DR_A,PEAK,20\nRP,DR_B,*any,10\nRP,DR_B,PEAK,20\n\
             RP,DR_C,*any,10\nRP,DR_C,PEAK,20\nRP,DR_D,*any,10\nRP,DR_D,PEAK,30\n\
             RP,DR_E,*any,10\nRP,DR_E,PEAK,20\n",
        ),
        (
            "RatingProfiles.csv",
            "cgrates.org,call,*any,2024-01-01T00:00:00Z,RP,\n",
        ),
    ])
    .unwrap();
    let rp = &plan.plans[0];
    let at = |d: u32| rp.by_dest.get(d).unwrap();
    // A and B: the same timings, weights and rates (*any the same
    // built-in timing for both): one run, names of their own.
    assert_eq!(at(0).start, at(1).start);
    assert_ne!(at(0).names, at(1).names);
    // E: another Rates ID with A's prices: A's run, its own names.
    assert_eq!(at(0).start, at(4).start);
    assert_ne!(at(0).names, at(4).names);
    // C: other rates; D: PEAK weighs more. Runs of their own.
    assert_ne!(at(0).start, at(2).start);
    assert_ne!(at(0).start, at(3).start);
    assert_eq!(rp.intervals.len(), 6);
    for d in 0..5 {
        let run = rp.dest_intervals(d).unwrap();
        assert_eq!(run.heads.len(), 2);
        assert_eq!(run.heads.len(), run.full.len());
        for (h, ri) in run.heads.iter().zip(run.full) {
            assert!(Arc::ptr_eq(&h.timing, &ri.timing));
        }
    }
    let rank = |d: u32, i: usize| rp.dest_intervals(d).unwrap().heads[i].weight_rank;
    assert!(rank(3, 1) > rank(0, 1));
    assert!(rank(0, 0) < rank(0, 1));
    // Each destination's spans carry its own names.
    let start = Utc.with_ymd_and_hms(2024, 5, 13, 10, 0, 0).unwrap();
    for (number, dest, dr, rate) in [
        ("100", "A", "DR_A", "RT_1"),
        ("200", "B", "DR_B", "RT_1"),
        ("300", "C", "DR_C", "RT_2"),
        ("400", "D", "DR_D", "RT_1"),
        ("500", "E", "DR_E", "RT_3"),
    ] {
        let cd =
            crate::CallDescriptor::new("1001", number, start, std::time::Duration::from_secs(60));
        let cc = plan.cost(&cd, crate::RoundingMode::Exact).unwrap();
        let ts = &cc.timespans[0];
        assert_eq!(
            (ts.destination_id(), ts.destination_rate(), ts.rate_id()),
            (dest, dr, rate)
        );
        assert_eq!((ts.timing(), ts.rating_plan()), ("PEAK", "RP"));
        assert_eq!(
            (ts.matched_prefix(), ts.matched_subject()),
            (&number[..1], "*any")
        );
    }
}
