//! Properties: random interleavings (within the reorder window) and
//! duplications (retransmissions, hop copies) of valid flows never change
//! the events; a restart at any time, the live calls carried over as
//! snapshots, never changes the records.

mod support;

use std::collections::BTreeMap;

use capture::SipPacket;
use proptest::prelude::*;
use sip_fsm::{CallRecord, DialogEvent};
use support::*;

/// One valid call flow of a given kind, starting at `t0` ms: (ms, message).
fn flow(kind: u8, id: usize, t0: i64) -> Vec<(i64, String)> {
    let f = Flow::new(&format!("call-{id}"));
    let c = Dir::Caller;
    let se = "Session-Expires: 120;refresher=uac\r\n";
    let m: Vec<(i64, String)> = match kind % 8 {
        0 => vec![
            (0, f.invite(1, "i1")),
            (300, f.r(180, 1, Some("tt"), "i1")),
            (2000, f.r(200, 1, Some("tt"), "i1")),
            (2010, f.req("ACK", c, 1, Some("tt"), "a1", "")),
            (9000, f.req("BYE", Dir::Callee, 1, Some("tt"), "y1", "")),
            (
                9030,
                f.resp(200, "BYE", Dir::Callee, 1, Some("tt"), "y1", ""),
            ),
        ],
        1 => vec![
            (0, f.invite(1, "i1")),
            (400, f.r(486, 1, Some("tt"), "i1")),
            (410, f.req("ACK", c, 1, Some("tt"), "i1", "")),
        ],
        2 => vec![
            (0, f.invite(1, "i1")),
            (300, f.r(180, 1, Some("tt"), "i1")),
            (3000, f.req("CANCEL", c, 1, None, "i1", "")),
            (3020, f.resp(200, "CANCEL", c, 1, None, "i1", "")),
            (3030, f.r(487, 1, Some("tt"), "i1")),
            (3040, f.req("ACK", c, 1, Some("tt"), "i1", "")),
        ],
        3 => vec![
            (0, f.invite(1, "i1")),
            (60, f.r(407, 1, Some("px"), "i1")),
            (70, f.req("ACK", c, 1, Some("px"), "i1", "")),
            (500, f.invite(2, "i2")),
            (900, f.r(183, 2, Some("tt"), "i2")),
            (4000, f.r(200, 2, Some("tt"), "i2")),
            (4010, f.req("ACK", c, 2, Some("tt"), "a2", "")),
            (20000, f.req("BYE", c, 3, Some("tt"), "y3", "")),
            (20040, f.resp(481, "BYE", c, 3, Some("tt"), "y3", "")),
        ],
        4 => vec![
            (0, f.invite(1, "i1")),
            (300, f.r(180, 1, Some("A"), "i1")),
            (350, f.r(180, 1, Some("B"), "i1")),
            (2000, f.r(200, 1, Some("B"), "i1")),
            (2100, f.r(200, 1, Some("A"), "i1")),
            (2110, f.req("BYE", c, 2, Some("A"), "ya", "")),
            (7000, f.req("BYE", c, 3, Some("B"), "yb", "")),
        ],
        5 => vec![
            (0, f.req("INVITE", c, 1, None, "i1", se)),
            (1000, f.resp(200, "INVITE", c, 1, Some("tt"), "i1", se)),
            (1010, f.req("ACK", c, 1, Some("tt"), "a1", "")),
            (60000, f.req("INVITE", Dir::Callee, 1, Some("tt"), "r1", se)),
            (
                60050,
                f.resp(200, "INVITE", Dir::Callee, 1, Some("tt"), "r1", se),
            ),
            (120000, f.req("UPDATE", c, 2, Some("tt"), "u1", se)),
            (120040, f.resp(200, "UPDATE", c, 2, Some("tt"), "u1", se)),
            (150000, f.req("BYE", c, 3, Some("tt"), "y1", "")),
        ],
        6 => vec![
            (0, f.invite(1, "i1")),
            (300, f.r(180, 1, Some("tt"), "i1")),
            (5000, f.req("CANCEL", c, 1, None, "i1", "")),
            (5001, f.r(200, 1, Some("tt"), "i1")),
            (5002, f.resp(200, "CANCEL", c, 1, None, "i1", "")),
            (5010, f.req("ACK", c, 1, Some("tt"), "a1", "")),
            (8000, f.req("BYE", c, 2, Some("tt"), "y1", "")),
        ],
        _ => vec![
            (0, f.req("INVITE", c, 1, None, "i1", se)),
            (700, f.resp(200, "INVITE", c, 1, Some("tt"), "i1", se)),
            (710, f.req("ACK", c, 1, Some("tt"), "a1", "")),
        ],
    };
    m.into_iter().map(|(at, s)| (t0 + at, s)).collect()
}

fn by_call(events: &[DialogEvent]) -> BTreeMap<String, Vec<String>> {
    let mut m: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for e in events {
        m.entry(e.call().call_id().to_string())
            .or_default()
            .push(summary(e));
    }
    m
}

/// Feeds packets at their arrival times (ms), in arrival order.
fn run_arrivals(mut arrivals: Vec<(i64, SipPacket)>) -> Vec<DialogEvent> {
    arrivals.sort_by_key(|(a, _)| *a);
    let mut m = sip_fsm::DialogMachine::new(cfg()).expect("config");
    let mut out = Vec::new();
    for (a, p) in &arrivals {
        m.handle(p, t(*a));
        out.extend(std::iter::from_fn(|| m.poll_event()));
    }
    m.handle_timeout(capture::Timestamp::from_nanos(i64::MAX));
    out.extend(std::iter::from_fn(|| m.poll_event()));
    out
}

/// Feeds the packets seen before `split` ms to one machine, lets it
/// release them, snapshots its live calls and restores them into a second
/// machine, which sees the rest; the records of both.
fn run_with_restart(arrivals: &[(i64, SipPacket)], split: i64) -> Vec<CallRecord> {
    let window = cfg().reorder_window_ms as i64;
    let mut m = sip_fsm::DialogMachine::new(cfg()).expect("config");
    let mut out = Vec::new();
    for (a, p) in arrivals.iter().filter(|(a, _)| *a < split) {
        m.handle(p, t(*a));
        out.extend(std::iter::from_fn(|| m.poll_event()));
    }
    m.handle_timeout(t(split + window));
    out.extend(std::iter::from_fn(|| m.poll_event()));
    let snaps = m.snapshots();
    let mut m = sip_fsm::DialogMachine::new(cfg()).expect("config");
    for s in &snaps {
        m.restore(s).expect("restore");
    }
    for (a, p) in arrivals.iter().filter(|(a, _)| *a >= split) {
        m.handle(p, t(*a));
        out.extend(std::iter::from_fn(|| m.poll_event()));
    }
    m.handle_timeout(capture::Timestamp::from_nanos(i64::MAX));
    out.extend(std::iter::from_fn(|| m.poll_event()));
    records(&out)
}

/// The records, in a fixed order.
fn records(events: &[DialogEvent]) -> Vec<CallRecord> {
    let mut r: Vec<CallRecord> = events.iter().filter_map(|e| e.record().cloned()).collect();
    r.sort_by_key(|r| r.call.call_id().into_owned());
    r
}

/// (kind, start offset ms) per call; per message: (copies, hop?, delay, jitter).
type Scenario = (Vec<(u8, i64)>, Vec<(u8, bool, i64, i64)>);

fn scenario() -> impl Strategy<Value = Scenario> {
    (
        prop::collection::vec((0u8..8, 0i64..30_000), 1..5),
        prop::collection::vec((0u8..3, any::<bool>(), 1i64..600, 0i64..200), 64),
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn interleavings_and_duplicates_never_change_the_events((calls, noise) in scenario()) {
        let mut msgs = Vec::new();
        for (id, (kind, t0)) in calls.iter().enumerate() {
            msgs.extend(flow(*kind, id, *t0));
        }
        let clean: Vec<(i64, SipPacket)> = msgs.iter().map(|(at, s)| (*at, pkt(*at, s))).collect();
        let baseline = by_call(&run_arrivals(clean));
        // Every call produced its attempt and a final event.
        prop_assert_eq!(baseline.len(), calls.len());

        let mut noisy = Vec::new();
        for (i, (at, s)) in msgs.iter().enumerate() {
            let (copies, hop, delay, jitter) = noise[i % noise.len()];
            noisy.push((at + jitter, pkt(*at, s)));
            for k in 0..i64::from(copies) {
                // A retransmission repeats the bytes later; a hop copy is
                // seen a moment later at another capture point with another
                // Via branch and Max-Forwards.
                let (cat, text, node) = if hop {
                    (at + 1 + k, hop_copy(s), "core")
                } else {
                    (at + delay * (k + 1), s.clone(), "edge")
                };
                noisy.push((cat + (jitter / 2), pkt_at(cat, node, &text)));
            }
        }
        let events = run_arrivals(noisy);
        prop_assert_eq!(by_call(&events), baseline);
    }

    #[test]
    fn a_restart_at_any_time_never_changes_the_records(
        calls in prop::collection::vec((0u8..8, 0i64..30_000), 1..5),
        split in 0i64..200_000,
    ) {
        let mut msgs = Vec::new();
        for (id, (kind, t0)) in calls.iter().enumerate() {
            msgs.extend(flow(*kind, id, *t0));
        }
        let mut arrivals: Vec<(i64, SipPacket)> =
            msgs.iter().map(|(at, s)| (*at, pkt(*at, s))).collect();
        arrivals.sort_by_key(|(a, _)| *a);
        let baseline = records(&run_arrivals(arrivals.clone()));
        prop_assert_eq!(run_with_restart(&arrivals, split), baseline);
    }
}
