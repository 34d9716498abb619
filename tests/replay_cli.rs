//! `accurate replay` as a command: output formats, `--since`, the summary on
//! stderr, end-of-input rules, config sections, exit codes.
//!
//! Uses the recorded captures in `captures/` (see tests/peers/README.md);
//! `replay_captures.rs` checks the CDRs themselves against tshark.
#![allow(missing_docs, clippy::unwrap_used)]

mod common;

use std::path::PathBuf;
use std::process::{Command, Output};

use common::{ACCURATE, Scratch, rfc3339_ns, root};
use serde_json::Value;

fn capture(name: &str) -> PathBuf {
    root().join("captures").join(name)
}

fn run(args: &[&str]) -> Output {
    Command::new(ACCURATE).args(args).output().unwrap()
}

fn ok(args: &[&str]) -> (String, String) {
    let out = run(args);
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(out.status.success(), "{args:?}: {stderr}");
    (String::from_utf8(out.stdout).unwrap(), stderr)
}

fn json_lines(stdout: &str) -> Vec<Value> {
    stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn counter(stderr: &str, name: &str) -> String {
    let prefix = format!("replay: {name}: ");
    stderr
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no {name} line in {stderr}"))
        .to_owned()
}

/// Splits one CSV line (RFC 4180 quoting, no line breaks inside fields).
fn csv_fields(line: &str) -> Vec<String> {
    let mut out = vec![String::new()];
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                chars.next();
                out.last_mut().unwrap().push('"');
            }
            ('"', _) => quoted = !quoted,
            (',', false) => out.push(String::new()),
            (c, _) => out.last_mut().unwrap().push(c),
        }
    }
    out
}

const TWO_CALLS: &str = "answered-caller-bye.pcap";
const RAW: &str = "not port 9060";

#[test]
fn json_is_one_cgrates_object_per_line() {
    let (out, _) = ok(&[
        "replay",
        "--format",
        "json",
        capture(TWO_CALLS).to_str().unwrap(),
    ]);
    let cdrs = json_lines(&out);
    assert_eq!(cdrs.len(), 2);
    for c in &cdrs {
        for k in [
            "CGRID",
            "RunID",
            "OriginID",
            "OriginHost",
            "Source",
            "ToR",
            "RequestType",
            "Tenant",
            "Category",
            "Account",
            "Subject",
            "Destination",
            "SetupTime",
            "AnswerTime",
            "Usage",
            "Cost",
            "DisconnectCause",
            "ExtraFields",
        ] {
            assert!(c.get(k).is_some(), "no {k} in {c}");
        }
        assert_eq!(c["CGRID"].as_str().unwrap().len(), 40);
        assert!(c["Usage"].is_u64());
    }
}

#[test]
fn csv_has_the_cgrates_header_and_extra_fields_as_one_json_column() {
    let (out, _) = ok(&[
        "replay",
        "--format",
        "csv",
        capture(TWO_CALLS).to_str().unwrap(),
    ]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[0],
        "CGRID,RunID,OriginID,OriginHost,Source,ToR,RequestType,Tenant,Category,Account,\
         Subject,Destination,SetupTime,AnswerTime,Usage,Cost,DisconnectCause,ExtraFields"
    );
    assert_eq!(lines.len(), 3);
    let (json, _) = ok(&[
        "replay",
        "--format",
        "json",
        capture(TWO_CALLS).to_str().unwrap(),
    ]);
    for (line, j) in lines[1..].iter().zip(json_lines(&json)) {
        let f = csv_fields(line);
        assert_eq!(f.len(), 18, "{line}");
        assert_eq!(f[0], j["CGRID"].as_str().unwrap());
        assert_eq!(f[2], j["OriginID"].as_str().unwrap());
        assert_eq!(f[14], j["Usage"].to_string());
        assert_eq!(f[15], "", "Cost is empty until rated");
        let extra: Value = serde_json::from_str(&f[17]).unwrap();
        assert_eq!(extra, j["ExtraFields"]);
    }
}

#[test]
fn table_is_the_default() {
    let (out, _) = ok(&["replay", capture("busy-486.pcap").to_str().unwrap()]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert!(lines[0].starts_with("SETUP (UTC)"), "{out}");
    assert!(lines[1].contains("1-11757@127.0.0.1"), "{out}");
    assert!(lines[1].contains(" rejected "), "{out}");
    assert!(lines[1].contains(" 486 "), "{out}");
}

#[test]
fn files_are_one_stream_in_end_time_order_with_a_summary() {
    let files = [
        "answered-caller-bye.pcap",
        "answered-callee-bye.pcap",
        "busy-486.pcap",
    ];
    let mut args = vec!["replay", "--format", "json", "--filter", RAW];
    let paths: Vec<String> = files
        .iter()
        .map(|f| capture(f).to_str().unwrap().to_owned())
        .collect();
    args.extend(paths.iter().map(String::as_str));
    let (out, err) = ok(&args);
    let cdrs = json_lines(&out);
    assert_eq!(cdrs.len(), 4);
    let ends: Vec<i128> = cdrs
        .iter()
        .map(|c| rfc3339_ns(c["ExtraFields"]["EndTime"].as_str().unwrap()))
        .collect();
    assert!(ends.windows(2).all(|w| w[0] <= w[1]), "{ends:?}");
    assert_eq!(counter(&err, "calls"), "4");
    assert_eq!(counter(&err, "answered"), "3");
    assert_eq!(counter(&err, "asr"), "75.00%");
    // 2.007808 + 2.003904 + 1.504136 s over 3 answered calls.
    assert_eq!(counter(&err, "acd"), "1.838 s");
    // 5.515848 s = 0.091 minutes.
    assert_eq!(counter(&err, "minutes"), "0.091");
    assert_eq!(counter(&err, "sip_messages"), "48");
    assert_eq!(counter(&err, "drop.not_sip"), "0");
    assert_eq!(counter(&err, "dialog.attempts"), "4");
    assert_eq!(counter(&err, "dialog.malformed.bad_header"), "0");
    // Most messages are seen on both hops of the proxy.
    assert_ne!(counter(&err, "dialog.hop_copies"), "0");
}

#[test]
fn since_keeps_calls_that_ended_at_or_after_it() {
    let path = capture(TWO_CALLS);
    let path = path.to_str().unwrap();
    let (all, _) = ok(&["replay", "--format", "json", "--filter", RAW, path]);
    let all = json_lines(&all);
    let second_end = all[1]["ExtraFields"]["EndTime"].as_str().unwrap();
    let (out, err) = ok(&[
        "replay", "--format", "json", "--filter", RAW, "--since", second_end, path,
    ]);
    let cdrs = json_lines(&out);
    assert_eq!(cdrs, all[1..]);
    assert_eq!(counter(&err, "calls"), "1");
    assert_eq!(counter(&err, "before_since"), "1");
    let (out, _) = ok(&["replay", "--since", "2030-01-01T00:00:00+02:00", path]);
    assert_eq!(out, "");
    let bad = run(&["replay", "--since", "yesterday", path]);
    assert_eq!(bad.status.code(), Some(2));
}

#[test]
fn open_calls_end_by_their_rule_at_the_end_of_input() {
    let path = capture("answered-callee-bye.pcap");
    let path = path.to_str().unwrap();
    // No BYE ("BYE " at the start of the UDP payload): answered, never ended.
    let no_bye = "not port 9060 and not udp[8:4] = 0x42594520";
    let (out, _) = ok(&["replay", "--format", "json", "--filter", no_bye, path]);
    let c = &json_lines(&out)[0];
    assert_eq!(c["ExtraFields"]["EndReason"], "max-duration");
    assert_eq!(c["Usage"], 4 * 3600 * 1_000_000_000u64);
    let scratch = Scratch::new("replay-cli");
    let cfg = scratch.file("short.toml");
    std::fs::write(
        &cfg,
        "[dialog]\nmax-duration-secs = 60\ninvite-timeout-secs = 10\n",
    )
    .unwrap();
    let cfg = cfg.to_str().unwrap();
    let (out, _) = ok(&[
        "replay", "--config", cfg, "--format", "json", "--filter", no_bye, path,
    ]);
    assert_eq!(json_lines(&out)[0]["Usage"], 60_000_000_000u64);
    // Only INVITEs: no final response, reaped as a proxy's Timer C would.
    let invites = "not port 9060 and udp[8:4] = 0x494e5649";
    let (out, err) = ok(&[
        "replay", "--config", cfg, "--format", "json", "--filter", invites, path,
    ]);
    let c = &json_lines(&out)[0];
    assert_eq!(c["DisconnectCause"], "408");
    assert_eq!(c["ExtraFields"]["EndReason"], "timeout");
    assert_eq!(c["AnswerTime"], Value::Null);
    let setup = rfc3339_ns(c["SetupTime"].as_str().unwrap());
    let end = rfc3339_ns(c["ExtraFields"]["EndTime"].as_str().unwrap());
    assert_eq!(end - setup, 10_000_000_000);
    assert_eq!(counter(&err, "dialog.reaped"), "1");
}

#[test]
fn mapping_config_shapes_the_charging_fields() {
    let scratch = Scratch::new("replay-cli-map");
    let cfg = scratch.file("map.toml");
    std::fs::write(
        &cfg,
        "[mapping]\ntenant = \"acme\"\nrequest-type = \"*postpaid\"\n\
         [mapping.destination]\nnormalize = [{ add-prefix = \"+\" }]\n",
    )
    .unwrap();
    let (out, _) = ok(&[
        "replay",
        "--config",
        cfg.to_str().unwrap(),
        "--format",
        "json",
        capture("busy-486.pcap").to_str().unwrap(),
    ]);
    let c = &json_lines(&out)[0];
    assert_eq!(c["Tenant"], "acme");
    assert_eq!(c["RequestType"], "*postpaid");
    assert_eq!(c["Destination"], "+4930555003");
}

/// A missing file is a missing input (66, was 65 before exit codes were
/// sorted out); a file that is not a capture is bad data (65).
#[test]
fn missing_capture_exits_66_and_garbage_65() {
    let out = run(&["replay", "/nonexistent/x.pcap"]);
    assert_eq!(out.status.code(), Some(66));
    let scratch = Scratch::new("replay-cli-bad");
    let f = scratch.file("not-a-capture.pcap");
    std::fs::write(&f, "this is not a capture file\n").unwrap();
    let out = run(&["replay", f.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(65));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not-a-capture.pcap"));
    assert!(out.stdout.is_empty());
}

#[test]
fn bad_config_exits_78_naming_the_key() {
    let scratch = Scratch::new("replay-cli-cfg");
    for (name, text, key) in [
        (
            "unknown.toml",
            "[dialog]\nreorder-window = 5\n",
            "reorder-window",
        ),
        (
            "regex.toml",
            "[mapping.account]\nnormalize = [{ regex = { pattern = \"(\", replace = \"\" } }]\n",
            "mapping",
        ),
    ] {
        let f = scratch.file(name);
        std::fs::write(&f, text).unwrap();
        let out = run(&[
            "replay",
            "--config",
            f.to_str().unwrap(),
            capture("busy-486.pcap").to_str().unwrap(),
        ]);
        assert_eq!(out.status.code(), Some(78), "{name}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(key), "{name}: {err}");
    }
}

#[test]
fn tariffplan_fills_cost_exactly_or_minus_one() {
    let scratch = Scratch::new("replay-cli-tp");
    let tp = scratch.file("tp");
    std::fs::create_dir_all(&tp).unwrap();
    for (name, text) in [
        ("Destinations.csv", "#Id,Prefix\nDST_BERLIN,4930\n"),
        // 0.01 per minute, billed per second.
        (
            "Rates.csv",
            "#Id,ConnectFee,Rate,RateUnit,RateIncrement,GroupIntervalStart\nRT_1CNT,0,0.01,60s,1s,0s\n",
        ),
        (
            "DestinationRates.csv",
            "#Id,DestinationId,RatesTag,RoundingMethod,RoundingDecimals,MaxCost,MaxCostStrategy\nDR_BERLIN,DST_BERLIN,RT_1CNT,*up,4,0,\n",
        ),
        (
            "RatingPlans.csv",
            "#Id,DestinationRatesId,TimingTag,Weight\nRP_1,DR_BERLIN,*any,10\n",
        ),
        (
            "RatingProfiles.csv",
            "#Tenant,Category,Subject,ActivationTime,RatingPlanId,RatesFallbackSubject\ncgrates.org,call,*any,2014-01-14T00:00:00Z,RP_1,\n",
        ),
    ] {
        std::fs::write(tp.join(name), text).unwrap();
    }
    let tp = tp.to_str().unwrap();
    let two = capture(TWO_CALLS);
    let busy = capture("busy-486.pcap");
    let files = [two.to_str().unwrap(), busy.to_str().unwrap()];
    let (out, _) = ok(&[
        "replay",
        "--format",
        "json",
        "--tariffplan",
        tp,
        files[0],
        files[1],
    ]);
    // 2.0078 s and 2.0039 s: 3 increments of 1 s at 0.01/60 each, 0.0005
    // rounded up to 4 decimals; the busy call costs nothing. Written as
    // exact JSON numbers.
    let costs: Vec<&str> = out
        .lines()
        .map(|l| {
            l.split("\"Cost\":")
                .nth(1)
                .unwrap()
                .split(',')
                .next()
                .unwrap()
        })
        .collect();
    assert_eq!(costs, ["0.0005", "0.0005", "0"], "{out}");
    // A destination the plan does not know: Cost -1 and the reason.
    let cfg = scratch.file("nodest.toml");
    std::fs::write(
        &cfg,
        "[mapping.destination]\nnormalize = [{ add-prefix = \"99\" }]\n",
    )
    .unwrap();
    let (out, _) = ok(&[
        "replay",
        "--config",
        cfg.to_str().unwrap(),
        "--format",
        "json",
        "--tariffplan",
        tp,
        files[0],
    ]);
    for c in json_lines(&out) {
        assert_eq!(c["Cost"], -1, "{c}");
        assert!(!c["ExtraFields"]["RatingError"].as_str().unwrap().is_empty());
    }
    // A folder that is not a tariff plan is an error, not CDRs without cost.
    let out = run(&["replay", "--tariffplan", "/nonexistent", files[0]]);
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());
}
