use super::*;
use crate::diameter::message::FLAG_P;

fn peer(now: Instant) -> Peer {
    let cfg = PeerConfig {
        origin_host: "accurate.test".into(),
        origin_realm: "test".into(),
        watchdog: Duration::from_secs(5),
        ..PeerConfig::default()
    };
    Peer::new(cfg, Arc::new(Dictionary::builtin().unwrap()), now)
}

fn cer(hop: u32) -> Message {
    let mut m = Message::request(code::CAPABILITIES_EXCHANGE, 0, false, hop, hop + 100);
    m.push(Avp::text(code::ORIGIN_HOST, "client.test"));
    m.push(Avp::text(code::ORIGIN_REALM, "test"));
    m.push(Avp::address(
        code::HOST_IP_ADDRESS,
        IpAddr::from([10, 0, 0, 1]),
    ));
    m.push(Avp::u32(code::VENDOR_ID, 0));
    m.push(Avp::u32(
        code::AUTH_APPLICATION_ID,
        code::APP_CREDIT_CONTROL,
    ));
    m
}

/// The messages the peer queued.
fn sent(p: &mut Peer) -> Vec<Message> {
    let mut out = Vec::new();
    while let Some(b) = p.poll_transmit() {
        match decode(&b, 1 << 20) {
            Ok(Decoded::Message { msg, .. }) => out.push(msg),
            other => panic!("{other:?}"),
        }
    }
    out
}

fn result_code(m: &Message) -> u32 {
    m.find(code::RESULT_CODE, None)
        .and_then(Avp::as_u32)
        .unwrap()
}

fn open(now: Instant) -> Peer {
    let mut p = peer(now);
    let ev = p.handle_bytes(&cer(1).encode(), now);
    assert_eq!(
        ev,
        vec![Event::Opened {
            host: "client.test".into(),
            realm: "test".into()
        }]
    );
    let cea = sent(&mut p).remove(0);
    assert_eq!(result_code(&cea), result::SUCCESS);
    p
}

#[test]
fn cer_gets_a_cea_with_the_ids_and_the_identity() {
    let now = Instant::now();
    let mut p = peer(now);
    // byte by byte: framing waits for the whole message
    let bytes = cer(7).encode();
    let mut events = Vec::new();
    for b in &bytes {
        events.extend(p.handle_bytes(std::slice::from_ref(b), now));
    }
    assert!(matches!(&events[..], [Event::Opened { .. }]));
    let cea = sent(&mut p).remove(0);
    assert!(!cea.is_request());
    assert_eq!((cea.hop_by_hop, cea.end_to_end), (7, 107));
    assert_eq!(result_code(&cea), 2001);
    let text = |c| cea.find(c, None).and_then(Avp::as_str).unwrap().to_owned();
    assert_eq!(text(code::ORIGIN_HOST), "accurate.test");
    assert_eq!(text(code::ORIGIN_REALM), "test");
    assert_eq!(text(code::PRODUCT_NAME), "AccuRate");
    assert!(cea.find(code::HOST_IP_ADDRESS, None).is_some());
    assert!(cea.find(code::VENDOR_ID, None).is_some());
    assert_eq!(
        cea.find(code::AUTH_APPLICATION_ID, None)
            .and_then(Avp::as_u32),
        Some(4)
    );
    assert_eq!(p.remote(), Some(("client.test", "test")));
}

#[test]
fn a_cer_without_credit_control_is_refused() {
    let now = Instant::now();
    let mut p = peer(now);
    let mut m = cer(1);
    m.avps.retain(|a| a.code != code::AUTH_APPLICATION_ID);
    m.push(Avp::u32(code::AUTH_APPLICATION_ID, 16_777_238));
    let ev = p.handle_bytes(&m.encode(), now);
    assert!(ev.contains(&Event::Closed(CloseReason::NoCapabilities)));
    assert_eq!(result_code(&sent(&mut p)[0]), result::NO_COMMON_APPLICATION);
    assert!(p.is_closed());
}

#[test]
fn requests_before_the_cer_get_3010_and_the_connection_closes() {
    let now = Instant::now();
    let mut p = peer(now);
    let mut ccr = Message::request(code::CREDIT_CONTROL, 4, true, 3, 4);
    ccr.push(Avp::text(code::SESSION_ID, "s"));
    let ev = p.handle_bytes(&ccr.encode(), now);
    assert_eq!(
        ev,
        vec![
            Event::Bad(BadReason::BeforeCer),
            Event::Closed(CloseReason::NoCapabilities)
        ]
    );
    let a = sent(&mut p).remove(0);
    assert_eq!(result_code(&a), result::UNKNOWN_PEER);
    assert_eq!(a.flags & FLAG_E, FLAG_E);
    assert_eq!(a.flags & FLAG_P, FLAG_P);
    assert!(p.is_closed());
}

#[test]
fn watchdogs_both_ways() {
    let t0 = Instant::now();
    let mut p = open(t0);
    // theirs: answered
    let dwr = Message::request(code::DEVICE_WATCHDOG, 0, false, 9, 10);
    assert!(p.handle_bytes(&dwr.encode(), t0).is_empty());
    let dwa = sent(&mut p).remove(0);
    assert_eq!(
        (dwa.code, dwa.hop_by_hop, result_code(&dwa)),
        (280, 9, 2001)
    );
    // ours: after 5 s of silence, then the end 5 s later without a DWA
    assert_eq!(p.poll_timeout(), Some(t0 + Duration::from_secs(5)));
    assert!(p.handle_timeout(t0 + Duration::from_secs(4)).is_empty());
    assert!(sent(&mut p).is_empty());
    assert!(p.handle_timeout(t0 + Duration::from_secs(5)).is_empty());
    let ours = sent(&mut p).remove(0);
    assert!(ours.is_request());
    assert_eq!(ours.code, code::DEVICE_WATCHDOG);
    // answered: the timer restarts from the answer
    let mut answer = ours.answer();
    answer.push(Avp::u32(code::RESULT_CODE, 2001));
    let t1 = t0 + Duration::from_secs(6);
    assert!(p.handle_bytes(&answer.encode(), t1).is_empty());
    assert_eq!(p.poll_timeout(), Some(t1 + Duration::from_secs(5)));
    assert!(p.handle_timeout(t1 + Duration::from_secs(5)).is_empty());
    assert_eq!(sent(&mut p).len(), 1);
    // unanswered: closed
    assert_eq!(
        p.handle_timeout(t1 + Duration::from_secs(10)),
        vec![Event::Closed(CloseReason::WatchdogTimeout)]
    );
    assert!(p.is_closed());
}

#[test]
fn unknown_mandatory_avps_get_5001_with_the_failed_avp() {
    let now = Instant::now();
    let mut p = open(now);
    let mut ccr = Message::request(code::CREDIT_CONTROL, 4, true, 3, 4);
    ccr.push(Avp::text(code::SESSION_ID, "s1"));
    // unknown but not mandatory: ignored
    ccr.push(Avp::new(7777, Some(1), false, vec![1]));
    let unknown = Avp::new(7778, Some(1), true, vec![1, 2, 3, 4]);
    // inside a known Grouped AVP
    ccr.push(Avp::grouped(
        456,
        None,
        true,
        std::slice::from_ref(&unknown),
    ));
    let ev = p.handle_bytes(&ccr.encode(), now);
    assert_eq!(ev, vec![Event::Bad(BadReason::UnknownMandatory)]);
    let a = sent(&mut p).remove(0);
    assert_eq!(result_code(&a), result::AVP_UNSUPPORTED);
    assert_eq!(a.flags & FLAG_E, 0);
    assert_eq!(
        a.find(code::SESSION_ID, None).and_then(Avp::as_str),
        Some("s1")
    );
    let failed = a.find(code::FAILED_AVP, None).unwrap().children().unwrap();
    assert_eq!(failed, vec![unknown]);
    // the unknown optional one alone passes
    let mut ok = Message::request(code::CREDIT_CONTROL, 4, true, 5, 6);
    ok.push(Avp::new(7777, Some(1), false, vec![1]));
    assert!(matches!(
        &p.handle_bytes(&ok.encode(), now)[..],
        [Event::CreditControl(_)]
    ));
}

#[test]
fn other_commands_applications_and_bad_bytes() {
    let now = Instant::now();
    let mut p = open(now);
    let str_ = Message::request(275, 4, true, 1, 1);
    assert_eq!(
        p.handle_bytes(&str_.encode(), now),
        vec![Event::Bad(BadReason::UnsupportedCommand)]
    );
    assert_eq!(result_code(&sent(&mut p)[0]), result::COMMAND_UNSUPPORTED);
    let other_app = Message::request(code::CREDIT_CONTROL, 16_777_238, true, 1, 1);
    assert_eq!(
        p.handle_bytes(&other_app.encode(), now),
        vec![Event::Bad(BadReason::UnsupportedApplication)]
    );
    assert_eq!(
        result_code(&sent(&mut p)[0]),
        result::APPLICATION_UNSUPPORTED
    );
    // AVPs that do not decode: 5014, the connection goes on
    let mut bad = Message::request(code::CREDIT_CONTROL, 4, true, 1, 1).encode();
    bad.extend_from_slice(&[0, 0, 1, 7, 0x40, 0, 0, 99]);
    bad[3] = 28;
    assert_eq!(p.handle_bytes(&bad, now), vec![Event::Bad(BadReason::Avps)]);
    assert_eq!(result_code(&sent(&mut p)[0]), result::INVALID_AVP_LENGTH);
    assert!(!p.is_closed());
    // not Diameter: closed
    let ev = p.handle_bytes(b"GET / HTTP/1.1\r\n\r\n", now);
    assert_eq!(ev[0], Event::Bad(BadReason::Framing));
    assert!(p.is_closed());
}

#[test]
fn abort_session_and_disconnect() {
    let now = Instant::now();
    let mut p = peer(now);
    assert!(!p.abort_session("s1"));
    let mut p = open(now);
    assert!(p.abort_session("s1"));
    let asr = sent(&mut p).remove(0);
    assert_eq!((asr.code, asr.app_id, asr.is_request()), (274, 4, true));
    let text = |c| asr.find(c, None).and_then(Avp::as_str).unwrap().to_owned();
    assert_eq!(text(code::SESSION_ID), "s1");
    assert_eq!(text(code::DESTINATION_HOST), "client.test");
    assert_eq!(text(code::DESTINATION_REALM), "test");
    // the ASA comes back as an event
    let mut asa = asr.answer();
    asa.push(Avp::u32(code::RESULT_CODE, 2001));
    assert!(matches!(
        &p.handle_bytes(&asa.encode(), now)[..],
        [Event::Answer(_)]
    ));
    // their DPR
    let dpr = Message::request(code::DISCONNECT_PEER, 0, false, 5, 5);
    assert_eq!(
        p.handle_bytes(&dpr.encode(), now),
        vec![Event::Closed(CloseReason::PeerDisconnect)]
    );
    assert_eq!(result_code(&sent(&mut p)[0]), 2001);
    // ours
    let mut p = open(now);
    assert_eq!(
        p.disconnect(),
        vec![Event::Closed(CloseReason::LocalDisconnect)]
    );
    assert_eq!(sent(&mut p)[0].code, code::DISCONNECT_PEER);
}

proptest::proptest! {
    /// Whatever follows the CER, the peer never panics and everything it
    /// queues is a well-formed answer (or one of its own requests).
    #[test]
    fn any_bytes_after_the_cer(chunks in proptest::collection::vec(
        proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64), 0..6)) {
        let now = Instant::now();
        let mut p = open(now);
        for c in &chunks {
            let _ = p.handle_bytes(c, now);
        }
        let _ = p.handle_timeout(now + Duration::from_secs(60));
        while let Some(b) = p.poll_transmit() {
            let decoded = matches!(decode(&b, 1 << 20), Ok(Decoded::Message { .. }));
            proptest::prop_assert!(decoded);
        }
    }

    /// A valid CCR cut anywhere still comes out whole, once.
    #[test]
    fn a_ccr_in_pieces(cuts in proptest::collection::vec(0usize..200, 0..5)) {
        let now = Instant::now();
        let mut p = open(now);
        let mut ccr = Message::request(code::CREDIT_CONTROL, 4, true, 3, 4);
        ccr.push(Avp::text(code::SESSION_ID, "s;1"));
        ccr.push(Avp::u32(code::CC_REQUEST_TYPE, 1));
        let bytes = ccr.encode();
        let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c % bytes.len()).collect();
        cuts.sort_unstable();
        let mut events = Vec::new();
        let mut at = 0;
        for c in cuts.into_iter().chain([bytes.len()]) {
            events.extend(p.handle_bytes(&bytes[at..c.max(at)], now));
            at = c.max(at);
        }
        proptest::prop_assert_eq!(events, vec![Event::CreditControl(ccr)]);
    }
}
