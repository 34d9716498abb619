use super::*;

use bytes::Bytes;
use capture::{Source, Transport};

fn pkt(ms: i64, payload: &str) -> SipPacket {
    SipPacket {
        ts: Timestamp::from_nanos(ms * 1_000_000),
        src: "192.0.2.10:5060".parse().unwrap(),
        dst: "192.0.2.20:5060".parse().unwrap(),
        transport: Transport::Udp,
        source: Source::Pcap,
        capture_id: None,
        node: None,
        correlation_id: None,
        vlan: None,
        payload: Bytes::from(payload.to_owned()),
    }
}

/// A typical INVITE as a softphone behind Kamailio sends it.
const INVITE: &str = "INVITE sip:+4930123456789@sip.carrier.example:5060 SIP/2.0\r\n\
Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-524287-1---5b5c1b5b7d5e6f2a;rport\r\n\
Max-Forwards: 70\r\n\
Contact: <sip:+4940987654@192.0.2.10:5060>\r\n\
To: <sip:+4930123456789@sip.carrier.example>\r\n\
From: \"Office\" <sip:+4940987654@pbx.customer.example>;tag=3f6b9c1a\r\n\
Call-ID: NjZlMDQ5ZWJhNTk1ZjE0YjQ0MmM0ODk3YjAzZDBhZmE@192.0.2.10\r\n\
CSeq: 1 INVITE\r\n\
P-Asserted-Identity: <sip:+4940987654@pbx.customer.example>\r\n\
Session-Expires: 1800\r\n\
Content-Length: 0\r\n\r\n";

#[test]
fn memory_per_live_dialog_is_under_one_kib() {
    let mut m = DialogMachine::new(Config::default()).unwrap();
    m.handle(&pkt(0, INVITE), Timestamp::from_nanos(1_000_000_000));
    assert_eq!(m.live_dialogs(), 1);
    let per = m.dialog_memory();
    // State, heap strings, the shared call info, plus a generous allowance
    // for the map entry (key, hash slot), the timer and eviction-order
    // entries and the remembered Call-ID (map entry and queue entry).
    let overhead = 2 * std::mem::size_of::<(key::Key, usize)>()
        + std::mem::size_of::<(Timestamp, key::Key)>()
        + std::mem::size_of::<(u64, key::Key)>()
        + 2 * std::mem::size_of::<(u64, [u64; 5])>()
        + 64;
    assert!(per + overhead < 1024, "{per} + {overhead} bytes per dialog");
    assert!(
        std::mem::size_of::<Dialog>() < 256,
        "{}",
        std::mem::size_of::<Dialog>()
    );
}

#[test]
fn config_defaults_and_unknown_keys() {
    let c: Config = toml::from_str("").unwrap();
    assert_eq!(c, Config::default());
    let c: Config = toml::from_str("reorder-window-ms = 50\n[mapping]\ntenant = \"t\"").unwrap();
    assert_eq!((c.reorder_window_ms, &*c.mapping.tenant), (50, "t"));
    for bad in [
        "reorder-window = 5",
        "[mapping]\ntenantt = \"x\"",
        "max_dialogs = 3",
    ] {
        assert!(toml::from_str::<Config>(bad).is_err(), "{bad}");
    }
}

#[test]
fn bad_mapping_config_is_an_error() {
    let mut c = Config::default();
    c.mapping.rules.push(crate::AddressRule {
        address: Some("10.0.0.0/99".into()),
        ..Default::default()
    });
    assert!(matches!(DialogMachine::new(c), Err(Error::Cidr(_))));
}

#[test]
fn zero_window_releases_at_once_and_late_packets_are_counted() {
    let cfg = Config {
        reorder_window_ms: 0,
        ..Config::default()
    };
    let mut m = DialogMachine::new(cfg).unwrap();
    // Live style: `now` is a receive time, so the first packet needs no
    // second one to agree with it (the clock rule, `clock.rs`).
    m.handle(&pkt(10, INVITE), Timestamp::from_nanos(10_000_001));
    assert!(matches!(m.poll_event(), Some(DialogEvent::Attempt { .. })));
    let earlier = INVITE.replace("Call-ID: N", "Call-ID: other-N");
    m.handle(&pkt(5, &earlier), Timestamp::from_nanos(10_000_000));
    assert_eq!(m.stats().late, 1);
    assert!(matches!(m.poll_event(), Some(DialogEvent::Attempt { .. })));
}

#[test]
fn capture_point_without_hep_is_the_receiving_address() {
    let mut m = DialogMachine::new(Config::default()).unwrap();
    m.handle(&pkt(0, INVITE), Timestamp::from_nanos(1_000_000_000));
    let Some(DialogEvent::Attempt { call }) = m.poll_event() else {
        panic!()
    };
    assert_eq!(&*call.capture_point, "192.0.2.20:5060");
    assert_eq!(call.ruri_user.as_deref(), Some("+4930123456789"));
    assert_eq!(&*call.charging.account, "+4940987654");
}
