//! The Diameter decoders never panic: a message that decodes re-encodes
//! and decodes again to the same message; a Grouped AVP's children
//! re-encode to the same children; every AVP type renders or refuses
//! (and what renders reads back); a peer fed the bytes after its CER
//! answers or refuses them, never panics.
#![no_main]

use std::sync::{Arc, OnceLock};
use std::time::Instant;

use agents::diameter::avp::{Avp, AvpType, decode_avps, from_text, render};
use agents::diameter::message::{Decoded, Malformed, Message, decode};
use agents::diameter::{Dictionary, Peer, PeerConfig, cc};
use libfuzzer_sys::fuzz_target;

const MAX: usize = 1 << 16;

const TYPES: [AvpType; 14] = [
    AvpType::OctetString,
    AvpType::Integer32,
    AvpType::Integer64,
    AvpType::Unsigned32,
    AvpType::Unsigned64,
    AvpType::Float32,
    AvpType::Float64,
    AvpType::Grouped,
    AvpType::Address,
    AvpType::Time,
    AvpType::Utf8String,
    AvpType::DiameterIdentity,
    AvpType::DiameterUri,
    AvpType::Enumerated,
];

fn dict() -> Arc<Dictionary> {
    static D: OnceLock<Arc<Dictionary>> = OnceLock::new();
    Arc::clone(D.get_or_init(|| Arc::new(Dictionary::builtin().unwrap())))
}

fn check_avps(avps: &[Avp], depth: usize) {
    for a in avps {
        for ty in TYPES {
            if let Some(text) = render(ty, &a.data) {
                // Floats and non-UTF-8 bytes render lossily; the rest read back.
                if !matches!(
                    ty,
                    AvpType::Float32 | AvpType::Float64 | AvpType::OctetString
                ) {
                    let back = from_text(ty, &text).unwrap();
                    assert_eq!(render(ty, &back).as_deref(), Some(text.as_str()), "{ty:?}");
                }
            }
        }
        if depth < 4
            && let Ok(children) = a.children()
        {
            let g = Avp::grouped(a.code, a.vendor, a.mandatory(), &children);
            assert_eq!(g.children().unwrap(), children);
            check_avps(&children, depth + 1);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    if let Ok(avps) = decode_avps(data, 0) {
        let mut out = Vec::new();
        for a in &avps {
            a.encode(&mut out);
        }
        assert_eq!(decode_avps(&out, 0).unwrap(), avps);
        check_avps(&avps, 0);
    }
    match decode(data, MAX) {
        Ok(Decoded::Message { msg, consumed }) => {
            assert!(consumed <= data.len());
            let again = msg.encode();
            match decode(&again, MAX) {
                Ok(Decoded::Message {
                    msg: m2,
                    consumed: c2,
                }) => {
                    assert_eq!(m2, msg);
                    assert_eq!(c2, again.len());
                }
                other => panic!("re-encoded message does not decode: {other:?}"),
            }
            let d = dict();
            for p in [
                "Session-Id",
                "Subscription-Id.Subscription-Id-Data[~Subscription-Id-Type(0)]",
                "Multiple-Services-Credit-Control.Requested-Service-Unit.CC-Time",
                "Service-Information.IMS-Information.Called-Party-Address",
            ] {
                let _ = cc::lookup(&d, &msg.avps, p);
            }
        }
        Ok(Decoded::Incomplete) | Err(Malformed::Header(_)) => {}
        Err(Malformed::Avps { consumed, .. }) => assert!(consumed <= data.len()),
    }
    // A peer after its CER.
    let now = Instant::now();
    let mut peer = Peer::new(PeerConfig::default(), dict(), now);
    let mut cer = Message::request(257, 0, false, 1, 1);
    cer.push(Avp::text(264, "fuzz.test"));
    cer.push(Avp::text(296, "test"));
    cer.push(Avp::u32(258, 4));
    let _ = peer.handle_bytes(&cer.encode(), now);
    let _ = peer.handle_bytes(data, now);
    while peer.poll_transmit().is_some() {}
});
