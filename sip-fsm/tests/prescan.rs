//! `handle_scanned` (the payload scanned ahead of time, as `replay` does on
//! its reading thread) gives exactly the events and counters of `handle`
//! on the same packet streams: valid flows, malformed and mutated
//! payloads, reordered and duplicated packets, wild timestamps and gaps
//! (the clock guard holding, confirming and dropping packets), receive
//! times apart from the packet times, and deadlines passing between
//! packets.
#![allow(clippy::unwrap_used)]

mod support;

use capture::{SipPacket, Timestamp};
use proptest::prelude::*;
use sip_fsm::{Config, DialogEvent, DialogMachine, Prescan, ScanError, Stats};
use support::*;

/// 2106-02-07T06:28:15Z, HEP's largest seconds value.
const Y2106: Timestamp = Timestamp::from_nanos(0xffff_ffff_i64 * 1_000_000_000);
/// 1970-01-01T00:00:01Z.
const Y1970: Timestamp = Timestamp::from_nanos(1_000_000_000);

/// What to hand the machine, in order.
#[derive(Clone, Debug)]
enum Input {
    /// A packet and the `now` it is handed in with.
    Packet(SipPacket, Timestamp),
    /// `handle_timeout(now)`.
    Tick(Timestamp),
}

/// Feeds `inputs` through `handle`, or through `handle_scanned` with each
/// payload's [`Prescan`]; then the end of time. Events and counters.
fn run(cfg: &Config, inputs: &[Input], prescan: bool) -> (Vec<DialogEvent>, Stats) {
    let mut m = DialogMachine::new(cfg.clone()).unwrap();
    let mut events = Vec::new();
    for i in inputs {
        match i {
            Input::Packet(p, now) if prescan => {
                m.handle_scanned(p, &Prescan::scan(&p.payload), *now)
            }
            Input::Packet(p, now) => m.handle(p, *now),
            Input::Tick(now) => m.handle_timeout(*now),
        }
        events.extend(std::iter::from_fn(|| m.poll_event()));
    }
    m.handle_timeout(Timestamp::from_nanos(i64::MAX));
    events.extend(std::iter::from_fn(|| m.poll_event()));
    (events, m.stats().clone())
}

/// One message of call `call` (few calls, so their messages meet).
fn message(call: u8, kind: u8, cseq: u32, tag: u8) -> String {
    let f = Flow::new(&format!("c{call}"));
    let to_tag = ["t1", "t2"][usize::from(tag % 2)];
    let se = "Session-Expires: 90;refresher=uac\r\n";
    let reason = "Reason: Q.850;cause=16;text=\"Normal\"\r\n";
    match kind % 12 {
        0 => f.invite(cseq, "i1"),
        1 => f.req("INVITE", Dir::Caller, cseq, None, "i1", se),
        2 => f.r(180, cseq, Some(to_tag), "i1"),
        3 => f.r(200, cseq, Some(to_tag), "i1"),
        4 => f.resp(200, "INVITE", Dir::Caller, cseq, Some(to_tag), "i1", se),
        5 => f.r(486, cseq, Some(to_tag), "i1"),
        6 => f.req("ACK", Dir::Caller, cseq, Some(to_tag), "a1", ""),
        7 => f.req("BYE", Dir::Caller, cseq + 1, Some(to_tag), "y1", reason),
        8 => f.req("BYE", Dir::Callee, cseq, Some(to_tag), "y2", ""),
        9 => f.req("CANCEL", Dir::Caller, cseq, None, "i1", ""),
        10 => f.req("UPDATE", Dir::Caller, cseq + 1, Some(to_tag), "u1", se),
        _ => f.req("MESSAGE", Dir::Caller, cseq, Some(to_tag), "m1", ""),
    }
}

/// `msg` damaged by `how` at `at` (a fraction of its length, /256).
fn mutate(msg: String, how: u8, at: u8, byte: u8) -> Vec<u8> {
    let mut b = msg.into_bytes();
    let i = b.len() * usize::from(at) / 256;
    match how % 10 {
        // Cut short.
        0 => b.truncate(i),
        // One byte replaced.
        1 => b[i] = byte,
        // One byte removed.
        2 => {
            b.remove(i);
        }
        // Blank lines before the start line.
        3 => b.splice(0..0, b"\r\n\r\n".iter().copied()).for_each(drop),
        // A Content-Length that is not a number.
        4 => {
            let s = String::from_utf8(b).unwrap();
            b = s
                .replace("Content-Length: 0", "Content-Length: zero")
                .into_bytes();
        }
        // Whitespace only (a keep-alive).
        5 => b = b"\r\n\r\n".to_vec(),
        _ => {}
    }
    b
}

/// One input: (call, kind, cseq, tag, (mutation, where, byte), step ms,
/// (jitter ms, time mode), tick?).
type Item = (u8, u8, u32, u8, (u8, u8, u8), i64, (i64, u8), bool);

fn item() -> impl Strategy<Value = Item> {
    (
        0u8..4,
        any::<u8>(),
        1u32..4,
        any::<u8>(),
        (0u8..30, any::<u8>(), any::<u8>()),
        prop_oneof![4 => 0i64..3000, 1 => Just(120_000i64), 1 => 200_000i64..20_000_000],
        (0i64..400, 0u8..20),
        prop::bool::weighted(0.1),
    )
}

/// The inputs an item list stands for.
fn inputs(items: &[Item]) -> Vec<Input> {
    let mut out = Vec::new();
    let mut arrival = 0;
    for &(call, kind, cseq, tag, (how, at, byte), step, (jitter, mode), tick) in items {
        arrival += step;
        let payload = mutate(message(call, kind, cseq, tag), how, at, byte);
        let mut p = pkt(arrival - jitter, "");
        p.payload = payload.into();
        let now = match mode {
            // A wild stamp, replayed: the guard holds it.
            0 => {
                p.ts = Y2106;
                p.ts
            }
            1 => {
                p.ts = Y1970;
                p.ts
            }
            // Live: the receive time, later than the stamp.
            2 | 3 => t(arrival),
            // Live with a stamp far off: the receive time replaces it.
            4 => {
                p.ts = Y2106;
                t(arrival)
            }
            // A copy from another capture point a moment later.
            5 => {
                let mut copy = p.clone();
                copy.node = Some("core".into());
                copy.ts = copy.ts.saturating_add(std::time::Duration::from_millis(1));
                out.push(Input::Packet(p, t(arrival - jitter)));
                p = copy;
                p.ts
            }
            // Replay: the packet's own time (reordered by the jitter).
            _ => p.ts,
        };
        out.push(Input::Packet(p, now));
        if tick {
            out.push(Input::Tick(t(arrival + 1000)));
        }
    }
    out
}

fn config(window_ms: u64, max_dialogs: usize) -> Config {
    Config {
        reorder_window_ms: window_ms,
        max_dialogs,
        ..cfg()
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn handle_scanned_gives_what_handle_gives(
        items in prop::collection::vec(item(), 1..60),
        window in prop_oneof![Just(0u64), Just(200), Just(500)],
        max_dialogs in prop_oneof![Just(1usize), Just(2), Just(1000)],
    ) {
        let cfg = config(window, max_dialogs);
        let inputs = inputs(&items);
        let direct = run(&cfg, &inputs, false);
        let scanned = run(&cfg, &inputs, true);
        prop_assert_eq!(&scanned.1, &direct.1);
        prop_assert_eq!(scanned.0, direct.0);
    }
}

/// The generated streams reach what the property is about: calls billed,
/// malformed payloads counted, packets late past the window, the clock
/// guard holding, confirming and dropping, receive times correcting
/// stamps, calls evicted. Over a fixed seed's worth of streams.
#[test]
fn the_streams_cover_every_case() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let strategy = prop::collection::vec(item(), 1..60);
    let mut total = Stats::default();
    let mut ends = 0;
    for _ in 0..300 {
        let items = strategy.new_tree(&mut runner).unwrap().current();
        let (events, s) = run(&config(200, 2), &inputs(&items), true);
        ends += events
            .iter()
            .filter(|e| matches!(e, DialogEvent::End(_)))
            .count();
        total.late += s.late;
        total.clock_jumps_confirmed += s.clock_jumps_confirmed;
        total.clock_jump_future += s.clock_jump_future;
        total.clock_jump_past += s.clock_jump_past;
        total.clock_stamp_corrected += s.clock_stamp_corrected;
        total.malformed_content_length_tolerated += s.malformed_content_length_tolerated;
        total.dialogs_evicted_unanswered += s.dialogs_evicted_unanswered;
        for (sum, n) in total.malformed.iter_mut().zip(s.malformed) {
            *sum += n;
        }
    }
    assert!(ends > 0, "no call billed");
    assert!(total.late > 0, "no late packet");
    assert!(total.clock_jumps_confirmed > 0, "no clock jump confirmed");
    assert!(total.clock_jump_future > 0, "no future stamp dropped");
    assert!(total.clock_jump_past > 0, "no past stamp dropped");
    assert!(total.clock_stamp_corrected > 0, "no stamp corrected");
    assert!(total.malformed_content_length_tolerated > 0);
    assert!(total.dialogs_evicted_unanswered > 0, "no call evicted");
    for e in [
        ScanError::Empty,
        ScanError::BadStartLine,
        ScanError::MissingCallId,
    ] {
        assert!(total.malformed(e) > 0, "no payload malformed as {e:?}");
    }
}
