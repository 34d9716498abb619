//! Properties of the evapi readers on arbitrary input (the fuzz targets'
//! checks, run as tests).

use chrono::DateTime;
use proptest::prelude::*;

use super::netstring::{Decoded, Decoder, decode, encode};
use super::{AgentConfig, EvapiAgent, message, reply};

proptest! {
    #[test]
    fn netstrings_round_trip_in_any_pieces(
        payloads in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..64), 0..8),
        cut in 0usize..600,
    ) {
        let wire: Vec<u8> = payloads.iter().flat_map(|p| encode(p)).collect();
        let cut = cut.min(wire.len());
        let mut d = Decoder::new(1 << 10);
        let mut got = Vec::new();
        for part in [&wire[..cut], &wire[cut..]] {
            d.push(part);
            while let Some(f) = d.next_frame().unwrap() {
                got.push(f);
            }
        }
        prop_assert_eq!(got, payloads);
    }

    #[test]
    fn any_bytes_decode_without_panic(data in prop::collection::vec(any::<u8>(), 0..128)) {
        if let Ok(Decoded::Frame { payload, consumed }) = decode(&data, 1 << 10) {
            prop_assert_eq!(&data[..consumed], &encode(payload)[..]);
        }
    }

    #[test]
    fn any_message_is_read_or_refused(text in "[{}\":,a-zA-Z0-9_ \\\\\t\n\\[\\]]{0,80}") {
        let _ = message::parse_event(text.as_bytes());
        let _ = reply::parse_dlg_list(text.as_bytes(), "h");
        let mut a = EvapiAgent::new(AgentConfig::default());
        let now = DateTime::from_timestamp(1_714_564_800, 0).unwrap();
        let _ = a.handle_bytes(&encode(text.as_bytes()), now).unwrap();
        while let Some(out) = a.poll_transmit() {
            let Ok(Decoded::Frame { payload, .. }) = decode(&out, usize::MAX) else {
                panic!("the agent queued a partial frame");
            };
            prop_assert!(serde_json::from_slice::<serde_json::Value>(payload).is_ok());
        }
    }

    #[test]
    fn flat_objects_of_strings_survive_stray_quotes(
        fields in prop::collection::btree_map("[A-Za-z]{1,8}", "[a-z0-9@;.]{0,8}", 1..6),
    ) {
        // each value written with one stray quote doubled at its end
        let body: Vec<String> = fields.iter().map(|(k, v)| format!("\"{k}\":\"{v}\"\"")).collect();
        let text = format!("{{{}}}", body.join(","));
        let (ev, _) = message::parse_event(text.as_bytes()).unwrap();
        prop_assert_eq!(ev, fields);
    }
}
