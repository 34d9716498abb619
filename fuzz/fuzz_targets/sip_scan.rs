//! The SIP scanner never panics, every slice it returns lies inside the
//! input, it is deterministic, a `Prescan` of the input slices back to the
//! same scan, and the dialog machine swallows anything, giving the same
//! events and counters whether it scans the input or is handed a
//! `Prescan`.
#![no_main]

use capture::{SipPacket, Source, Timestamp, Transport};
use libfuzzer_sys::fuzz_target;
use sip_fsm::scan::{Method, NameAddr, StartLine, Uri, scan};
use sip_fsm::{Config, DialogMachine, Prescan};

fn inside(input: &[u8], s: &[u8]) {
    let (a, b) = (
        input.as_ptr() as usize,
        input.as_ptr() as usize + input.len(),
    );
    let (x, y) = (s.as_ptr() as usize, s.as_ptr() as usize + s.len());
    assert!(
        s.is_empty() || (a <= x && y <= b),
        "slice outside the input"
    );
}

fn uri(input: &[u8], u: &Uri<'_>) {
    inside(input, u.raw);
    inside(input, u.host);
    if let Some(user) = u.user {
        inside(input, user);
    }
}

fn name_addr(input: &[u8], n: &NameAddr<'_>) {
    inside(input, n.params);
    if let Some(d) = n.display {
        inside(input, d);
    }
    if let Some(u) = &n.uri {
        uri(input, u);
    }
    if let Some(t) = n.tag() {
        inside(input, t);
    }
}

fuzz_target!(|data: &[u8]| {
    assert!(
        sip_fsm::scan::fuzzing::prescan_round_trips(data),
        "a Prescan slices back to the scan"
    );
    let first = scan(data);
    assert_eq!(first, scan(data), "scan is deterministic");
    if let Ok(m) = first {
        match m.start {
            StartLine::Request { method, uri: u } => {
                // Known methods are interned (static names); only an
                // extension method borrows from the input.
                if let Method::Other(name) = method {
                    inside(data, name);
                }
                uri(data, &u);
            }
            StartLine::Response { code, reason } => {
                assert!((100..=699).contains(&code));
                inside(data, reason);
            }
        }
        assert!(!m.call_id.is_empty());
        inside(data, m.call_id);
        inside(data, m.body);
        name_addr(data, &m.from);
        name_addr(data, &m.to);
        for n in [m.contact, m.pai, m.diversion].iter().flatten() {
            name_addr(data, n);
        }
        for s in [m.via_branch, m.history_info].into_iter().flatten() {
            inside(data, s);
        }
        if let Some(r) = m.reason {
            inside(data, r.protocol);
        }
    }

    // The machine: the message, a copy from another point, then all timers.
    let pkt = SipPacket {
        ts: Timestamp::from_secs_micros(1_700_000_000, 0),
        src: ([192, 0, 2, 1], 5060).into(),
        dst: ([192, 0, 2, 2], 5060).into(),
        transport: Transport::Udp,
        source: Source::Pcap,
        capture_id: None,
        node: None,
        correlation_id: None,
        vlan: None,
        payload: data.to_vec().into(),
    };
    let mut copy = pkt.clone();
    copy.ts = pkt.ts.saturating_add(std::time::Duration::from_millis(1));
    copy.capture_id = Some(2);
    let run = |prescan: bool| {
        let mut machine = DialogMachine::new(Config::default()).expect("default config");
        for p in [&pkt, &copy] {
            if prescan {
                machine.handle_scanned(p, &Prescan::scan(&p.payload), p.ts);
            } else {
                machine.handle(p, p.ts);
            }
        }
        machine.handle_timeout(Timestamp::from_nanos(i64::MAX));
        let events: Vec<_> = std::iter::from_fn(|| machine.poll_event()).collect();
        assert_eq!(machine.live_dialogs(), 0);
        assert_eq!(machine.stats().packets, 2);
        (events, machine.stats().clone())
    };
    assert_eq!(run(false), run(true), "handle and handle_scanned agree");
});
