//! `accurate replay` on every recorded capture in `captures/` (Kamailio +
//! sipp: both SIP hops plus Kamailio's HEP copies on port 9060), against
//! `<capture>.expect.json`, which `tests/peers/expect.py` computed from
//! tshark alone.
//!
//! Each capture is replayed three ways:
//! * raw SIP only (`--filter 'not port 9060'`): exactly one CDR per Call-ID,
//!   and SetupTime, AnswerTime, the end time, the final code and Usage equal
//!   the tshark figures to the nanosecond;
//! * HEP copies only (`--filter 'port 9060'`): the same CDRs (CGRID, parties,
//!   codes, end reason), with times within the bound below;
//! * both at once (no filter): exactly the raw-SIP CDRs, because every
//!   message's earliest copy is the raw one and the dialog machine takes
//!   each time from the earliest copy.
//!
//! The HEP bound: Kamailio stamps a HEP copy when it handles the message,
//! after the kernel captured the frame (for a message it sends, after
//! sending), so a HEP time is a little later than the wire time of the same
//! message (10 µs to 1 ms here, more on a busy machine). The bound is
//! computed per capture from the expect file: the largest gap between a
//! HEP copy's time and the wire time of the same message (Call-ID and start
//! line, nearest earlier frame). Every CDR time is the earliest copy of some
//! message, so a HEP-view time is never more than that gap away from the
//! raw-view time, and Usage (end - answer) is off by at most that too.
//! HEPv1 carries no timestamp: its copies get the time the HEP frame was
//! captured, which the capture layer uses as the fallback; the `hepv1` test
//! checks that SetupTime is exactly that frame time.
#![allow(missing_docs, clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::process::Command;

use common::{ACCURATE, rfc3339_ns, root};
use serde_json::Value;

common::per_capture!(check);

#[test]
fn every_capture_has_a_test() {
    let mut seen = 0;
    for e in std::fs::read_dir(root().join("captures")).unwrap() {
        let name = e.unwrap().file_name().into_string().unwrap();
        if name.ends_with(".pcap") || name.ends_with(".pcapng") {
            seen += 1;
            assert!(
                ALL.contains(&name.as_str()),
                "captures/{name} has no test in tests/replay_captures.rs"
            );
        }
    }
    assert_eq!(seen, ALL.len());
}

/// Runs `accurate replay --format json` and returns the CDRs by Call-ID,
/// failing on a second CDR for one Call-ID; also returns stderr.
fn replay(file: &str, filter: Option<&str>) -> (BTreeMap<String, Value>, String) {
    let mut cmd = Command::new(ACCURATE);
    cmd.args(["replay", "--format", "json"]);
    if let Some(f) = filter {
        cmd.args(["--filter", f]);
    }
    let out = cmd
        .arg(root().join("captures").join(file))
        .output()
        .unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(out.status.success(), "{file} {filter:?}: {stderr}");
    let mut cdrs = BTreeMap::new();
    for line in String::from_utf8(out.stdout).unwrap().lines() {
        let v: Value = serde_json::from_str(line).unwrap();
        let id = v["OriginID"].as_str().unwrap().to_owned();
        assert!(
            cdrs.insert(id.clone(), v).is_none(),
            "{file} {filter:?}: two CDRs for {id}"
        );
    }
    (cdrs, stderr)
}

fn ns(v: &Value) -> Option<i128> {
    v.as_str().map(rfc3339_ns)
}

fn end_ns(cdr: &Value) -> i128 {
    rfc3339_ns(cdr["ExtraFields"]["EndTime"].as_str().unwrap())
}

/// The summary line `replay: NAME: VALUE`.
fn counter(stderr: &str, name: &str) -> String {
    let prefix = format!("replay: {name}: ");
    stderr
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no {name} line in {stderr}"))
        .to_owned()
}

/// The largest gap between a HEP copy's time and the wire time of the
/// same message (see the module doc).
fn hep_bound(expect: &Value) -> i128 {
    let raw = expect["messages"].as_array().unwrap();
    let mut bound = 0;
    for h in expect["hep_messages"].as_array().unwrap() {
        let t = h["ts_ns"]
            .as_i64()
            .or_else(|| h["frame_ts_ns"].as_i64())
            .unwrap();
        let gap = raw
            .iter()
            .filter(|m| m["call_id"] == h["call_id"] && m["start_line"] == h["start_line"])
            .map(|m| i128::from(t) - i128::from(m["ts_ns"].as_i64().unwrap()))
            .filter(|g| *g >= 0)
            .min()
            .unwrap_or_else(|| panic!("HEP copy before any wire copy: {h}"));
        bound = bound.max(gap);
    }
    bound
}

fn check(file: &str) {
    let stem = file.rsplit_once('.').unwrap().0;
    let path = root().join("captures").join(format!("{stem}.expect.json"));
    let expect: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let calls = expect["calls"].as_array().unwrap();

    // Raw SIP: exact.
    let (raw, stderr) = replay(file, Some("not port 9060"));
    assert_eq!(raw.len(), calls.len(), "{file}: {raw:#?}");
    assert_eq!(counter(&stderr, "calls"), calls.len().to_string());
    for name in [
        "dialog.orphan_requests",
        "dialog.orphan_responses",
        "dialog.malformed",
        "dialog.late",
        "dropped",
    ] {
        assert_eq!(counter(&stderr, name), "0", "{file}: {name}\n{stderr}");
    }
    for c in calls {
        let id = c["call_id"].as_str().unwrap();
        let cdr = raw
            .get(id)
            .unwrap_or_else(|| panic!("{file}: no CDR for {id}"));
        let code = c["final_code"].as_u64().unwrap();
        assert_eq!(cdr["ExtraFields"]["SIPCode"], code.to_string(), "{file}");
        assert_eq!(cdr["DisconnectCause"], code.to_string(), "{file}");
        assert_eq!(
            ns(&cdr["SetupTime"]),
            c["setup_ns"].as_i64().map(i128::from),
            "{file}"
        );
        assert_eq!(cdr["Usage"], c["duration_ns"], "{file}: Usage");
        assert_eq!(cdr["Cost"], Value::Null);
        assert_eq!(cdr["ToR"], "*voice");
        assert_eq!(cdr["RunID"], "*default");
        assert_eq!(cdr["Account"], "4971112345");
        assert_eq!(cdr["OriginHost"], "127.0.0.1");
        if c["answered"].as_bool().unwrap() {
            assert_eq!(
                ns(&cdr["AnswerTime"]),
                c["answer_ns"].as_i64().map(i128::from),
                "{file}"
            );
            assert_eq!(end_ns(cdr), i128::from(c["end_ns"].as_i64().unwrap()));
            assert_eq!(cdr["ExtraFields"]["EndReason"], "bye", "{file}");
        } else {
            assert_eq!(cdr["AnswerTime"], Value::Null, "{file}");
            // Unanswered: ends at the first copy of the final response.
            let first_final = expect["messages"]
                .as_array()
                .unwrap()
                .iter()
                .find(|m| {
                    m["call_id"] == id
                        && m["start_line"]
                            .as_str()
                            .unwrap()
                            .starts_with(&format!("SIP/2.0 {code} "))
                })
                .unwrap();
            assert_eq!(
                end_ns(cdr),
                i128::from(first_final["ts_ns"].as_i64().unwrap()),
                "{file}"
            );
            let why = if code == 487 { "cancel" } else { "rejected" };
            assert_eq!(cdr["ExtraFields"]["EndReason"], why, "{file}");
        }
    }

    // Both at once: the raw CDRs, field for field.
    let (both, _) = replay(file, None);
    assert_eq!(both, raw, "{file}: raw+HEP differs from raw");

    // HEP only: the same calls, times within the bound.
    let bound = hep_bound(&expect);
    assert!(
        bound < 20_000_000,
        "{file}: HEP is {bound} ns behind the wire"
    );
    let (hep, _) = replay(file, Some("port 9060"));
    assert_eq!(
        hep.keys().collect::<Vec<_>>(),
        raw.keys().collect::<Vec<_>>(),
        "{file}"
    );
    for (id, r) in &raw {
        let h = &hep[id];
        for k in [
            "CGRID",
            "OriginHost",
            "Source",
            "Account",
            "Subject",
            "Destination",
            "Tenant",
            "Category",
            "RequestType",
            "DisconnectCause",
        ] {
            assert_eq!(h[k], r[k], "{file} {id}: {k}");
        }
        for k in ["EndReason", "SIPCode", "EndedBy"] {
            assert_eq!(h["ExtraFields"][k], r["ExtraFields"][k], "{file} {id}: {k}");
        }
        let close = |a: Option<i128>, b: Option<i128>, what: &str| match (a, b) {
            (Some(a), Some(b)) => assert!(
                (a - b).abs() <= bound,
                "{file} {id}: {what} HEP {a} raw {b}, bound {bound}"
            ),
            (a, b) => assert_eq!(a, b, "{file} {id}: {what}"),
        };
        close(ns(&h["SetupTime"]), ns(&r["SetupTime"]), "SetupTime");
        close(ns(&h["AnswerTime"]), ns(&r["AnswerTime"]), "AnswerTime");
        close(Some(end_ns(h)), Some(end_ns(r)), "end");
        close(
            h["Usage"].as_i64().map(i128::from),
            r["Usage"].as_i64().map(i128::from),
            "Usage",
        );
    }
    if file == "hepv1.pcap" {
        // No HEP timestamp: the first HEP INVITE copy's frame time.
        let first = &expect["hep_messages"][0];
        assert!(first["ts_ns"].is_null());
        assert!(first["start_line"].as_str().unwrap().starts_with("INVITE"));
        let (_, cdr) = hep.iter().next().unwrap();
        assert_eq!(
            ns(&cdr["SetupTime"]),
            first["frame_ts_ns"].as_i64().map(i128::from)
        );
    }
}
