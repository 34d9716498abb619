//! Properties of the ESL readers on arbitrary input (the fuzz target's
//! checks, run as tests).

use proptest::prelude::*;

use super::frame::{Decoded, Decoder, Frame, decode};
use super::{AgentConfig, EslAgent, event};

/// `frame` as FreeSWITCH writes it: headers, an empty line, the body
/// with its `Content-Length`.
fn wire(f: &Frame) -> Vec<u8> {
    let mut out = Vec::new();
    for (k, v) in &f.headers {
        out.extend_from_slice(format!("{k}: {v}\n").as_bytes());
    }
    if !f.body.is_empty() {
        out.extend_from_slice(format!("Content-Length: {}\n", f.body.len()).as_bytes());
    }
    out.push(b'\n');
    out.extend_from_slice(&f.body);
    out
}

fn frames() -> impl Strategy<Value = Vec<Frame>> {
    let header = ("[A-Z][A-Za-z-]{0,12}", "[ -~]{0,20}")
        .prop_filter("no Content-Length of its own", |(k, _)| {
            k != "Content-Length"
        })
        .prop_map(|(k, v)| (k, v.trim_start().to_string()));
    let frame = (
        prop::collection::vec(header, 1..5),
        prop::collection::vec(any::<u8>(), 0..40),
    )
        .prop_map(|(headers, body)| Frame { headers, body });
    prop::collection::vec(frame, 0..5)
}

proptest! {
    #[test]
    fn frames_round_trip_in_any_pieces(fs in frames(), cut in 0usize..800) {
        let bytes: Vec<u8> = fs.iter().flat_map(wire).collect();
        let cut = cut.min(bytes.len());
        let mut d = Decoder::new(1 << 12);
        let mut got = Vec::new();
        for part in [&bytes[..cut], &bytes[cut..]] {
            d.push(part);
            while let Some(mut f) = d.next_frame().unwrap() {
                f.headers.retain(|(k, _)| k != "Content-Length");
                got.push(f);
            }
        }
        prop_assert_eq!(got, fs);
    }

    #[test]
    fn any_bytes_decode_or_fail_without_panic(data in prop::collection::vec(any::<u8>(), 0..160)) {
        if let Ok(Decoded::Frame { consumed, .. }) = decode(&data, 1 << 10) {
            prop_assert!(consumed <= data.len());
        }
        let _ = event::parse_plain(&data);
        let _ = event::parse_json(&data);
    }

    #[test]
    fn any_event_text_is_acted_on_or_ignored(text in "[A-Za-z_:% \n-]{0,120}") {
        let mut a = EslAgent::new(AgentConfig::default());
        let f = format!("Content-Length: {}\nContent-Type: text/event-plain\n\n{text}", text.len());
        let _ = a.handle_bytes(f.as_bytes()).unwrap();
        while let Some(out) = a.poll_transmit() {
            prop_assert!(out.ends_with(b"\n\n"));
        }
    }
}
