//! `accurate cost` end to end on the `office` test plan
//! (`tests/data/tariffplans/office`: CGRateS's tutorial rate figures).

use std::path::PathBuf;
use std::process::{Command, Output};

fn office() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/tariffplans/office")
}

/// Runs `accurate cost` on the office plan with `args`.
fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_accurate"))
        .arg("cost")
        .arg("--tariffplan")
        .arg(office())
        .args(["--answer-time", "2024-05-13T10:00:00Z"])
        .args(args)
        .output()
        .expect("run accurate")
}

/// 1001 calling 1002, with `extra` arguments.
fn cost(extra: &[&str]) -> Output {
    let mut args = vec!["--subject", "1001", "--destination", "1002"];
    args.extend_from_slice(extra);
    run(&args)
}

fn stdout_ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).expect("utf-8")
}

#[test]
fn json_prints_the_exact_cost_and_usage_in_nanoseconds() {
    // R_STANDARD, 90 s: 0.4 + 0.2 + 30 s at 0.1/min = 0.65.
    let out = cost(&["--usage", "1m30s", "--format", "json"]);
    let text = stdout_ok(&out);
    assert!(
        text.starts_with("{\"Cost\":0.65,\"Usage\":90000000000,"),
        "{text}"
    );
    let v: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
    assert_eq!(v["Timespans"].as_array().map(Vec::len), Some(2));
    // The plan's Chargers.csv is reported as not used; its Actions.csv
    // loads (the account side of the plan).
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("Actions.csv"), "{stderr}");
    assert!(stderr.contains("Chargers.csv"), "{stderr}");
}

#[test]
fn cgrates_rounding_and_table_output() {
    // CGRateS rounds each 1 s increment to 0.00167: 0.6501.
    let text = stdout_ok(&cost(&["--usage", "90s", "--rounding", "cgrates"]));
    assert!(text.starts_with("Cost         0.6501"), "{text}");
    assert!(text.contains("RPL_OFFICE"), "{text}");
}

/// Regression: `--usage 120000000000` was refused for *voice; CGRateS
/// reads a bare number as nanoseconds, so it is 120 s.
#[test]
fn usage_bare_number_is_nanoseconds_for_voice() {
    let bare = stdout_ok(&cost(&["--usage", "120000000000", "--format", "json"]));
    // R_STANDARD, 120 s: 0.4 + 0.2 + 60 s at 0.1/min = 0.7.
    assert!(
        bare.starts_with("{\"Cost\":0.7,\"Usage\":120000000000,"),
        "{bare}"
    );
    let go_style = stdout_ok(&cost(&["--usage", "2m", "--format", "json"]));
    assert_eq!(bare, go_style);
}

/// Regression: `--destination` was required; CGRateS takes `*any` when it
/// is left out, which the plan's `*any` destination rates price.
#[test]
fn destination_left_out_is_any() {
    // *sms: R_MESSAGE on the *any destination, 0.01 a message, 5 = 0.05.
    let out = run(&[
        "--subject",
        "1001",
        "--category",
        "sms",
        "--tor",
        "*sms",
        "--usage",
        "5",
        "--format",
        "json",
    ]);
    let text = stdout_ok(&out);
    assert!(text.starts_with("{\"Cost\":0.05,\"Usage\":5,"), "{text}");
    // A voice call without a destination: RPL_OFFICE has no *any rate.
    let out = run(&["--subject", "1001", "--usage", "60s"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("UNAUTHORIZED_DESTINATION"), "{stderr}");
}

#[test]
fn unratable_call_fails_with_the_reason() {
    let out = cost(&["--tenant", "nobody.org", "--usage", "60s"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("RATING_PLAN_NOT_FOUND"));
}
