//! `accurate sniff FILE --format json` against tshark, for every recorded
//! capture in `captures/` (made by `tests/peers/record-captures.sh` with
//! Kamailio and sipp: both SIP hops plus Kamailio's HEP copies on port 9060).
//!
//! For each capture:
//! * the raw SIP messages sniff reports (`source == "pcap"`) are as many as
//!   tshark's SIP dissector finds outside the HEP port, and the HEP copies
//!   (`source == "hep"`) as many as the HEP packets sent to port 9060 (UDP
//!   datagrams; TCP streams cut at the HEPv3 length field);
//! * message by message, in capture order, they are the ones listed in
//!   `<capture>.expect.json` (written from tshark by tests/peers/expect.py):
//!   time to the microsecond, addresses and ports, transport, start line,
//!   Call-ID; for HEP copies also the capture id, and the time from the HEP
//!   header (the frame's time for HEPv1, which has none).
//!
//! Needs `tshark` (Debian package `tshark`); fails naming it when missing.
#![allow(missing_docs, clippy::unwrap_used)]

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::{
    ACCURATE, Proc, Scratch, SniffLine, parse_sniff, require, root, tshark_sip_count, wire_hep,
};
use serde_json::Value;

common::per_capture!(check);

#[test]
fn every_capture_has_a_test_and_an_expect_file() {
    let dir = root().join("captures");
    let mut seen = 0;
    for e in std::fs::read_dir(&dir).unwrap() {
        let name = e.unwrap().file_name().into_string().unwrap();
        if name.ends_with(".pcap") || name.ends_with(".pcapng") {
            seen += 1;
            assert!(
                ALL.contains(&name.as_str()),
                "captures/{name} has no test in tests/sniff_vs_tshark.rs"
            );
            let stem = name.rsplit_once('.').unwrap().0;
            assert!(
                dir.join(format!("{stem}.expect.json")).is_file(),
                "captures/{name} has no {stem}.expect.json"
            );
        }
    }
    assert_eq!(
        seen,
        ALL.len(),
        "captures listed here but missing in captures/"
    );
}

fn check(file: &str) {
    require("tshark", "tshark");
    let path = root().join("captures").join(file);
    let stem = file.rsplit_once('.').unwrap().0;
    let expect: Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("captures").join(format!("{stem}.expect.json")))
            .unwrap(),
    )
    .unwrap();

    // sniff, bounded in time
    let dir = Scratch::new(&format!("tshark-{stem}"));
    let mut cmd = Command::new(ACCURATE);
    cmd.arg("sniff")
        .arg(&path)
        .args(["--format", "json"])
        .stdin(Stdio::null())
        .stdout(dir.log("out"))
        .stderr(dir.log("err"));
    let mut sniff = Proc::spawn("accurate sniff", &mut cmd);
    let st = sniff
        .wait_timeout(Duration::from_secs(60))
        .unwrap_or_else(|| panic!("accurate sniff {file} did not finish in 60 s"));
    assert!(
        st.success(),
        "accurate sniff {file}: {st}\n{}",
        dir.read("err")
    );
    let got = parse_sniff(&dir.read("out"));
    let (raw, hep): (Vec<SniffLine>, Vec<SniffLine>) =
        got.into_iter().partition(|l| l.source == "pcap");
    assert!(
        hep.iter().all(|l| l.source == "hep"),
        "{file}: sources other than pcap and hep: {:?}",
        hep.iter().map(|l| &l.source).collect::<Vec<_>>()
    );

    // counts against tshark, now
    let tshark_sip = tshark_sip_count(&path);
    assert_eq!(
        raw.len(),
        tshark_sip,
        "{file}: sniff found {} raw SIP messages, tshark {tshark_sip}",
        raw.len()
    );
    let tshark_hep = wire_hep(&path).len();
    assert_eq!(
        hep.len(),
        tshark_hep,
        "{file}: sniff found {} HEP copies, {tshark_hep} HEP packets go to port 9060",
        hep.len()
    );
    assert_eq!(
        expect["sip_messages"].as_u64().unwrap(),
        tshark_sip as u64,
        "{stem}.expect.json is stale (re-run tests/peers/record-captures.sh)"
    );

    // message by message against the expect file
    let want = expect["messages"].as_array().unwrap();
    assert_eq!(raw.len(), want.len(), "{file}: raw SIP messages");
    for (i, (g, w)) in raw.iter().zip(want).enumerate() {
        let ctx = format!("{file}: raw SIP message {i}: sniff {}\nexpected {w}", g.raw);
        assert_eq!(g.ts_ns, i128::from(w["ts_ns"].as_i64().unwrap()), "{ctx}");
        assert_eq!(g.src, w["src"].as_str().unwrap(), "{ctx}");
        assert_eq!(g.dst, w["dst"].as_str().unwrap(), "{ctx}");
        assert_eq!(g.transport, w["transport"].as_str().unwrap(), "{ctx}");
        assert_eq!(g.first_line, w["start_line"].as_str().unwrap(), "{ctx}");
        assert_eq!(g.call_id.as_deref(), w["call_id"].as_str(), "{ctx}");
        assert!(g.raw["capture_id"].is_null(), "{ctx}");
    }
    let want = expect["hep_messages"].as_array().unwrap();
    assert_eq!(hep.len(), want.len(), "{file}: HEP copies");
    for (i, (g, w)) in hep.iter().zip(want).enumerate() {
        let ctx = format!("{file}: HEP copy {i}: sniff {}\nexpected {w}", g.raw);
        // HEPv1 carries no time: the time the packet was captured
        let ts = if w["ts_ns"].is_null() {
            &w["frame_ts_ns"]
        } else {
            &w["ts_ns"]
        };
        assert_eq!(g.ts_ns, i128::from(ts.as_i64().unwrap()), "{ctx}");
        assert_eq!(g.src, w["src"].as_str().unwrap(), "{ctx}");
        assert_eq!(g.dst, w["dst"].as_str().unwrap(), "{ctx}");
        assert_eq!(g.transport, w["transport"].as_str().unwrap(), "{ctx}");
        assert_eq!(g.first_line, w["start_line"].as_str().unwrap(), "{ctx}");
        assert_eq!(g.call_id.as_deref(), w["call_id"].as_str(), "{ctx}");
        assert_eq!(g.raw["capture_id"], w["capture_id"], "{ctx}");
    }
}
