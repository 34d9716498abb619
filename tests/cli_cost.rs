//! `accurate cost` end to end on CGRateS's tutorial tariff plan.

use std::path::PathBuf;
use std::process::Command;

fn tutorial() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/tariffplans/tutorial")
}

fn cost(extra: &[&str]) -> std::process::Output {
    let dir = tutorial();
    assert!(
        dir.is_dir(),
        "{} is missing: shared/ must sit beside the checkout",
        dir.display()
    );
    Command::new(env!("CARGO_BIN_EXE_accurate"))
        .arg("cost")
        .arg("--tariffplan")
        .arg(&dir)
        .args([
            "--subject",
            "1001",
            "--destination",
            "1002",
            "--answer-time",
            "2024-05-13T10:00:00Z",
        ])
        .args(extra)
        .output()
        .expect("run accurate")
}

#[test]
fn json_prints_the_exact_cost_and_usage_in_nanoseconds() {
    // RT_20CNT, 90 s: 0.4 + 0.2 + 30 s at 0.1/min = 0.65.
    let out = cost(&["--usage", "1m30s", "--format", "json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).expect("utf-8");
    assert!(
        text.starts_with("{\"Cost\":0.65,\"Usage\":90000000000,"),
        "{text}"
    );
    let v: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
    assert_eq!(v["Timespans"].as_array().map(Vec::len), Some(2));
    // The tutorial's Actions.csv etc. are reported as not used.
    assert!(String::from_utf8_lossy(&out.stderr).contains("Actions.csv"));
}

#[test]
fn cgrates_rounding_and_table_output() {
    // CGRateS rounds each 1 s increment to 0.00167: 0.6501.
    let out = cost(&["--usage", "90s", "--rounding", "cgrates"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("Cost         0.6501"), "{text}");
    assert!(text.contains("RP_1001"), "{text}");
}

#[test]
fn unratable_call_fails_with_the_reason() {
    let out = Command::new(env!("CARGO_BIN_EXE_accurate"))
        .arg("cost")
        .arg("--tariffplan")
        .arg(tutorial())
        .args([
            "--tenant",
            "nobody.org",
            "--subject",
            "1001",
            "--destination",
            "1002",
        ])
        .args(["--answer-time", "2024-05-13T10:00:00Z", "--usage", "60s"])
        .output()
        .expect("run accurate");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("RATING_PLAN_NOT_FOUND"));
}
