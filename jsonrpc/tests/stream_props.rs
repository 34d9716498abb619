//! What the `jsonrpc_decode` fuzz target checks, as property tests run
//! with every `cargo test`: any bytes cut into any reads never panic, the
//! cut never changes what is decoded, and every request read round-trips.
#![allow(clippy::unwrap_used)]

use jsonrpc::{StreamDecoder, encode_request, parse_request};
use proptest::prelude::*;
use serde_json::Value;

/// Everything decoded from `data` fed `chunk` bytes at a time, and whether
/// the stream failed.
fn decode(data: &[u8], chunk: usize) -> (Vec<Value>, bool) {
    let mut d = StreamDecoder::new(4096);
    let mut out = Vec::new();
    for piece in data.chunks(chunk.max(1)) {
        d.feed(piece);
        loop {
            match d.next_value() {
                Ok(Some(v)) => out.push(v),
                Ok(None) => break,
                Err(_) => return (out, true),
            }
        }
    }
    (out, false)
}

fn request_text() -> impl Strategy<Value = String> {
    let method = "[A-Za-z]{1,8}\\.[A-Za-z]{1,8}";
    let string = "[ -~]{0,12}";
    (method, string, any::<u32>(), any::<bool>(), "[ \n]{0,2}").prop_map(|(m, s, id, v2, ws)| {
        let mut obj = serde_json::json!({
            "method": m,
            "params": [{"Subject": s, "Usage": "1m30s", "n": id}],
            "id": id,
        });
        if v2 {
            obj["jsonrpc"] = Value::from("2.0");
        }
        format!("{obj}{ws}")
    })
}

proptest! {
    #[test]
    fn any_bytes_any_cut_never_panic(data in proptest::collection::vec(any::<u8>(), 0..512), chunk in 1usize..64) {
        let _ = decode(&data, chunk);
    }

    #[test]
    fn requests_decode_alike_however_cut_and_round_trip(
        reqs in proptest::collection::vec(request_text(), 1..6),
        chunk in 1usize..40,
    ) {
        let stream = reqs.concat();
        let (whole, failed) = decode(stream.as_bytes(), stream.len());
        prop_assert!(!failed);
        prop_assert_eq!(whole.len(), reqs.len());
        let (cut, failed) = decode(stream.as_bytes(), chunk);
        prop_assert!(!failed);
        prop_assert_eq!(&cut, &whole);
        for v in whole {
            let req = parse_request(v).unwrap();
            let (again, _) = decode(&encode_request(&req), 3);
            prop_assert_eq!(parse_request(again[0].clone()).unwrap(), req);
        }
    }
}

/// Found by the fuzz target: a number too large for u64 is parsed as a
/// float, and without correctly rounded parsing (serde_json's
/// `float_roundtrip`) encoding and decoding it again gave another value.
#[test]
fn a_huge_number_round_trips() {
    let text =
        br#"{"method":"APIerSv1.GetCost","params":[{"Usage":12200000000120000000000}],"id":null}"#;
    let (values, _) = decode(text, text.len());
    let req = jsonrpc::parse_request(values[0].clone()).unwrap();
    let again = jsonrpc::encode_request(&req);
    let (values2, _) = decode(&again, again.len());
    assert_eq!(jsonrpc::parse_request(values2[0].clone()).unwrap(), req);
}
