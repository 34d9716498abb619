//! Real peer: Kamailio's siptrace sends HEP to `accurate sniff --hep`.
//!
//! Each test runs in its own network namespace (so the fixed ports of
//! `tests/peers/kamailio.cfg` clash with nothing): `accurate sniff --hep ...
//! --format json`, tcpdump on lo, Kamailio (stateful proxy, siptrace
//! `trace_mode=1`: every SIP message it receives or sends mirrored as HEP)
//! and a sipp UAC/UAS pair making a few calls through it:
//!
//! ```text
//! sipp UAC 127.0.0.1:5061 -> Kamailio 127.0.0.1:5060 -> sipp UAS 127.0.0.1:5062
//!                            `-> HEP (v1, v2 or v3; UDP or TCP) -> accurate 127.0.0.1:9060
//! ```
//!
//! Checks: every HEP packet Kamailio sent (as tcpdump saw them on port 9060)
//! comes out of sniff, in the order sent, and stands for one SIP message
//! tcpdump saw on the wire (same addresses, ports, start line, Call-ID) with
//! a timestamp within [`HEP_TS_TOLERANCE_NS`] of the wire's (HEPv1 has no
//! timestamp, sniff uses the receive time: checked within a second): 13 per
//! call. Kamailio sends the HEP copy of a message it forwards only after
//! sending it, sometimes after the copy of the reply, so the order of the
//! HEP copies is not the wire order; that is why the order is checked against
//! the HEP packets, not the SIP ones. sniff must then exit 0 with its counters
//! on stderr, stopped by `--count` (v3/UDP), SIGTERM (v3/TCP, v1) or SIGINT
//! (v2).
//!
//! Needs root (network namespaces) and the Debian packages `kamailio`,
//! `sip-tester` (sipp), `tcpdump`, `tshark`, `iproute2`: a missing one fails
//! the test with the package's name. About 5 s per test; the four run in
//! parallel.
#![allow(missing_docs, clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::process::Stdio;
use std::time::Duration;

use common::{
    ACCURATE, HEP_PORT, Netns, Proc, Scratch, contains, kamailio_modules, parse_sniff, require,
    root, tcpdump, wait_until, wire_hep, wire_sip_udp,
};

/// Calls per test.
const CALLS: usize = 3;
/// SIP messages on the wire (and HEP copies) per call of the scenario:
/// INVITE x2, 100, 180 x2, 200 x2, ACK x2, BYE x2, 200 (BYE) x2.
const PER_CALL: usize = 13;
/// How far a HEP timestamp may be from the time tcpdump saw the message.
/// Kamailio stamps a copy when it mirrors it, some 0.01-1 ms after the
/// wire (observed; up to 14 ms with both cores busy compiling, 50 ms in a
/// CI run with every real-peer suite at once).
const HEP_TS_TOLERANCE_NS: i128 = 250_000_000;
/// For HEPv1 (no timestamp: receive time).
const RECV_TS_TOLERANCE_NS: i128 = 1_000_000_000;
/// Kamailio's `hep_capture_id` in tests/peers/kamailio.cfg.
const CAPTURE_ID: u64 = 2001;

#[derive(Clone, Copy, Debug)]
enum HepTransport {
    Udp,
    Tcp,
}

/// How sniff is told to stop (each way of the contract in one test).
#[derive(Clone, Copy, Debug)]
enum Stop {
    /// `--count` = the messages expected: sniff stops by itself.
    Count,
    /// A signal after the calls (`TERM` or `INT`).
    Signal(&'static str),
}

#[test]
fn hep_v3_over_udp() {
    run("v3udp", 3, HepTransport::Udp, Stop::Count);
}

#[test]
fn hep_v3_over_tcp() {
    run("v3tcp", 3, HepTransport::Tcp, Stop::Signal("TERM"));
}

#[test]
fn hep_v2_over_udp() {
    run("v2udp", 2, HepTransport::Udp, Stop::Signal("INT"));
}

#[test]
fn hep_v1_over_udp() {
    run("v1udp", 1, HepTransport::Udp, Stop::Signal("TERM"));
}

fn run(tag: &str, hep_version: u8, hep_transport: HepTransport, stop: Stop) {
    let kamailio = require("kamailio", "kamailio");
    let sipp = require("sipp", "sip-tester");
    let tcpdump_bin = require("tcpdump", "tcpdump");
    require("tshark", "tshark");
    let modules = kamailio_modules();
    let peers = root().join("tests/peers");

    // Dropped last: everything below runs inside it.
    let ns = Netns::new(tag);
    let dir = Scratch::new(tag);
    let rundir = dir.file("run");
    std::fs::create_dir_all(&rundir).unwrap();
    let pcap = dir.file("wire.pcap");

    let hep = match hep_transport {
        HepTransport::Udp => format!("udp:127.0.0.1:{HEP_PORT}"),
        HepTransport::Tcp => format!("tcp:127.0.0.1:{HEP_PORT}"),
    };
    let expected = CALLS * PER_CALL;
    let mut sniff_cmd = ns.command(ACCURATE);
    sniff_cmd
        .args(["sniff", "--hep", &hep, "--format", "json"])
        // a bound in case nothing stops it
        .args(["--duration", "120"])
        .stdout(dir.log("sniff.out"))
        .stderr(dir.log("sniff.err"));
    if let Stop::Count = stop {
        sniff_cmd.args(["--count", &expected.to_string()]);
    }
    let mut sniff = Proc::spawn("accurate sniff", &mut sniff_cmd);
    wait_until(
        Duration::from_secs(20),
        &format!("`listening on {hep}` from accurate sniff"),
        || {
            dir.read("sniff.err")
                .contains(&format!("listening on {hep}"))
        },
        || format!("sniff stderr:\n{}", dir.read("sniff.err")),
    );

    let mut dump = tcpdump(
        ns.command(&tcpdump_bin),
        &pcap,
        &format!("(udp or tcp) and (port 5060 or port 5061 or port 5062 or port {HEP_PORT})"),
        &dir,
    );

    let mut kam_cmd = ns.command(&kamailio);
    kam_cmd
        .arg("-f")
        .arg(peers.join("kamailio.cfg"))
        .arg("-L")
        .arg(&modules)
        .arg("-Y")
        .arg(&rundir)
        .args(["-DD", "-E", "-A"])
        .arg(format!("CTL_SOCK=\"unix:{}/ctl\"", rundir.display()))
        .arg("-A")
        .arg(format!("HEP_VERSION={hep_version}"));
    if let HepTransport::Tcp = hep_transport {
        kam_cmd.args(["-A", "WITH_HEP_TCP"]);
    }
    let mut kam = Proc::spawn(
        "kamailio",
        kam_cmd
            .stdout(Stdio::null())
            .stderr(dir.log("kamailio.log")),
    );
    wait_until(
        Duration::from_secs(20),
        "kamailio to listen on udp 5060",
        || ns.bound("udp", 5060),
        || dir.read("kamailio.log"),
    );

    let calls = CALLS.to_string();
    let mut uas = Proc::spawn(
        "sipp UAS",
        ns.command(&sipp)
            .arg("-sf")
            .arg(peers.join("sipp/answered-uas.xml"))
            .args(["-i", "127.0.0.1", "-p", "5062", "-m", &calls])
            .args(["-nostdin", "-timeout", "30", "-timeout_error"])
            .stdout(dir.log("uas.log"))
            .stderr(Stdio::null()),
    );
    wait_until(
        Duration::from_secs(20),
        "sipp UAS to listen on udp 5062",
        || ns.bound("udp", 5062),
        || dir.read("uas.log"),
    );
    let mut uac = Proc::spawn(
        "sipp UAC",
        ns.command(&sipp)
            .arg("-sf")
            .arg(peers.join("sipp/answered-caller-bye-uac.xml"))
            .args(["127.0.0.1:5060", "-i", "127.0.0.1", "-p", "5061"])
            .args(["-s", "4930555100", "-m", &calls, "-l", &calls, "-r", "10"])
            .args(["-d", "500", "-nostdin", "-timeout", "30", "-timeout_error"])
            .stdout(dir.log("uac.log"))
            .stderr(Stdio::null()),
    );
    let st = uac
        .wait_timeout(Duration::from_secs(45))
        .unwrap_or_else(|| panic!("sipp UAC did not finish:\n{}", dir.read("uac.log")));
    assert!(
        st.success(),
        "sipp UAC failed ({st}):\n{}\nkamailio:\n{}",
        dir.read("uac.log"),
        dir.read("kamailio.log")
    );
    let st = uas
        .wait_timeout(Duration::from_secs(45))
        .unwrap_or_else(|| panic!("sipp UAS did not finish:\n{}", dir.read("uas.log")));
    assert!(
        st.success(),
        "sipp UAS failed ({st}):\n{}",
        dir.read("uas.log")
    );

    let st = match stop {
        Stop::Count => sniff
            .wait_timeout(Duration::from_secs(15))
            .unwrap_or_else(|| {
                panic!(
                    "accurate sniff did not stop by itself after --count {expected}; it printed {} \
                 lines",
                    dir.read("sniff.out").lines().count()
                )
            }),
        Stop::Signal(sig) => {
            // Let the last HEP copies arrive (no failure here: the checks
            // below say what is missing).
            for _ in 0..100 {
                if dir.read("sniff.out").lines().count() >= expected {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            sniff
                .stop(sig, Duration::from_secs(15))
                .unwrap_or_else(|| panic!("accurate sniff did not exit on SIG{sig}"))
        }
    };
    let err = dir.read("sniff.err");
    assert!(st.success(), "accurate sniff exited with {st}:\n{err}");
    kam.stop("TERM", Duration::from_secs(10));
    common::stop_tcpdump(&mut dump, Duration::from_secs(10));

    // ---------------------------------------------------------- checks
    let wire = wire_sip_udp(&pcap);
    let heps = wire_hep(&pcap);
    let got = parse_sniff(&dir.read("sniff.out"));
    let show = |v: &[common::SniffLine]| {
        v.iter()
            .map(|l| l.raw.to_string())
            .collect::<Vec<_>>()
            .join("\n")
    };
    // The peers did what they should (else the test setup is broken).
    assert_eq!(
        wire.len(),
        expected,
        "tcpdump saw {} SIP messages, expected {expected} ({CALLS} calls x {PER_CALL})",
        wire.len()
    );
    assert_eq!(
        heps.len(),
        expected,
        "tcpdump saw {} HEP packets to port {HEP_PORT}, expected {expected}",
        heps.len()
    );
    for h in &heps {
        let v = if h.bytes.starts_with(b"HEP3") {
            3
        } else {
            h.bytes[0]
        };
        assert_eq!(v, hep_version, "Kamailio sent a HEPv{v} packet");
    }

    // Everything arrived, in the order Kamailio sent it.
    assert_eq!(
        got.len(),
        heps.len(),
        "sniff printed {} messages for {} HEP packets:\n{}",
        got.len(),
        heps.len(),
        show(&got)
    );
    for (i, (g, h)) in got.iter().zip(&heps).enumerate() {
        assert_eq!(g.source, "hep", "line {i}: {}", g.raw);
        assert_eq!(g.transport, "udp", "line {i}: SIP went over UDP: {}", g.raw);
        let cid = g
            .call_id
            .as_deref()
            .unwrap_or_else(|| panic!("line {i} without call_id: {}", g.raw));
        assert!(
            contains(&h.bytes, g.first_line.as_bytes()) && contains(&h.bytes, cid.as_bytes()),
            "line {i} is not the HEP packet #{i} Kamailio sent (out of order?): {}\npacket: {}",
            g.raw,
            String::from_utf8_lossy(&h.bytes)
        );
        let want_cid = if hep_version == 1 {
            serde_json::Value::Null
        } else {
            CAPTURE_ID.into()
        };
        assert_eq!(g.raw["capture_id"], want_cid, "line {i}: {}", g.raw);
    }

    // Each one is a SIP message seen on the wire: addresses, ports, start
    // line, Call-ID, time.
    let mut used = vec![false; wire.len()];
    let mut per_call: BTreeMap<String, usize> = BTreeMap::new();
    for (i, g) in got.iter().enumerate() {
        let cid = g.call_id.clone().unwrap();
        let j = (0..wire.len())
            .find(|&j| {
                !used[j]
                    && wire[j].src == g.src
                    && wire[j].dst == g.dst
                    && wire[j].start_line == g.first_line
                    && wire[j].call_id == cid
            })
            .unwrap_or_else(|| {
                panic!(
                    "line {i} matches no SIP message on the wire (src, dst, start line, \
                     Call-ID): {}\nwire: {:#?}",
                    g.raw, wire
                )
            });
        used[j] = true;
        let diff = g.ts_ns - wire[j].ts_ns;
        if hep_version == 1 {
            assert!(
                diff.abs() <= RECV_TS_TOLERANCE_NS,
                "line {i}: HEPv1 receive time {} ns away from the wire: {}",
                diff,
                g.raw
            );
        } else {
            assert!(
                (-2_000_000..=HEP_TS_TOLERANCE_NS).contains(&diff),
                "line {i}: HEP timestamp {diff} ns away from the wire time: {}",
                g.raw
            );
        }
        *per_call.entry(cid).or_default() += 1;
    }
    assert_eq!(per_call.len(), CALLS, "Call-IDs: {per_call:?}");
    assert!(
        per_call.values().all(|&n| n == PER_CALL),
        "messages per call: {per_call:?}"
    );

    // Counters on stderr at the end.
    let lower = err.to_lowercase();
    assert!(lower.contains("packets"), "no packet counter:\n{err}");
    assert!(
        err.lines().any(|l| l.to_lowercase().contains("sip")
            && l.split(|c: char| !c.is_ascii_digit())
                .any(|w| w == expected.to_string())),
        "no SIP message counter saying {expected}:\n{err}"
    );
    assert!(lower.contains("drop"), "no drop counters:\n{err}");
}
