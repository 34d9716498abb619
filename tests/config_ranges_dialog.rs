//! `accurate config check` refuses out-of-range `[dialog]` and `[mapping]`
//! values, naming the key with its line and column (issue 7): values that
//! would overflow a timestamp used to pass and silently drop CDRs.
#![allow(missing_docs, clippy::unwrap_used)]

mod common;

use std::process::Command;

use common::{ACCURATE, Scratch};

/// Runs `config check` on `text`; returns (exit code, stderr).
fn check(scratch: &Scratch, text: &str) -> (i32, String) {
    let path = scratch.file("accurate.toml");
    std::fs::write(&path, text).unwrap();
    let out = Command::new(ACCURATE)
        .args(["config", "check"])
        .arg(&path)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[test]
fn out_of_range_dialog_and_mapping_values_are_config_errors_with_line_and_column() {
    let s = Scratch::new("config-ranges-dialog");
    for (text, key, line, column) in [
        (
            "[dialog]\nmax-duration-secs = 9999999999\n",
            "max-duration-secs",
            2,
            21,
        ),
        (
            "[dialog]\nlinger-secs = 5\ninvite-timeout-secs = 18446744073709551615\n",
            "invite-timeout-secs",
            3,
            23,
        ),
        (
            "[dialog]\nreorder-window-ms = 9999999999999\n",
            "reorder-window-ms",
            2,
            21,
        ),
        ("[dialog]\nmax-dialogs = 0\n", "max-dialogs", 2, 15),
        (
            "[dialog]\nmax-clock-jump-secs = 0\n",
            "max-clock-jump-secs",
            2,
            23,
        ),
        (
            "[dialog]\nretry-wait-secs = 86401\n",
            "retry-wait-secs",
            2,
            19,
        ),
        (
            "[mapping]\ntenant = \"t\"\nrequest-type = \"*bogus\"\n",
            "request type",
            3,
            16,
        ),
        (
            "[mapping.request-types]\n\"1001\" = \"*prepaid\"\n\"1002\" = \"*nope\"\n",
            "request type",
            3,
            10,
        ),
    ] {
        let (code, err) = check(&s, text);
        assert_eq!(code, 78, "{text}: {err}");
        assert!(err.contains(key), "{text}: {err}");
        let at = format!("line {line}, column {column}");
        assert!(err.contains(&at), "{text}: want {at} in {err}");
    }
}

#[test]
fn in_range_dialog_values_and_every_request_type_pass() {
    let s = Scratch::new("config-ranges-dialog-ok");
    for rt in ["*prepaid", "*postpaid", "*pseudoprepaid", "*rated", "*none"] {
        let text = format!(
            "[dialog]\nmax-duration-secs = 31622400\nmax-dialogs = 1\nreorder-window-ms = 0\n\
             [mapping]\nrequest-type = \"{rt}\"\n[mapping.request-types]\n\"1001\" = \"{rt}\"\n"
        );
        let (code, err) = check(&s, &text);
        assert_eq!(code, 0, "{text}: {err}");
    }
}
