//! `accurate cost` refuses a plan with a negative connect fee unless the
//! config's `[rating] allow-negative-rates` allows it.
#![allow(missing_docs, clippy::unwrap_used)]

use std::path::PathBuf;
use std::process::{Command, Output};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs `accurate cost` on the plan, with the config `(name, text)`.
fn cost(config: Option<(&str, &str)>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_accurate"));
    if let Some((name, text)) = config {
        let file = std::env::temp_dir().join(format!(
            "accurate-negative-rates-{name}-{}.toml",
            std::process::id()
        ));
        std::fs::write(&file, text).unwrap();
        cmd.arg("--config").arg(file);
    }
    cmd.arg("cost")
        .arg("--tariffplan")
        .arg(root().join("tests/data/tariffplans/negative_rate"))
        .args(["--subject", "1001", "--destination", "1002"])
        .args(["--answer-time", "2024-05-13T10:00:00Z", "--usage", "60s"])
        .args(["--format", "json"])
        .output()
        .unwrap()
}

#[test]
fn negative_connect_fee_is_refused_by_default_naming_file_line_column() {
    let out = cost(None);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("Rates.csv:3:2"), "{stderr}");
    assert!(stderr.contains("allow-negative-rates"), "{stderr}");
    let out = cost(Some(("refuse", "[rating]\nallow-negative-rates = false\n")));
    assert!(!out.status.success());
}

#[test]
fn negative_connect_fee_loads_when_the_config_allows_it() {
    let out = cost(Some(("allow", "[rating]\nallow-negative-rates = true\n")));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    // -0.5 connect fee + one minute at 0.2.
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.starts_with("{\"Cost\":-0.3,"), "{text}");
}
