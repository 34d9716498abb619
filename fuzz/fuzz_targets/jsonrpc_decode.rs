//! The JSON-RPC stream decoder and request reader never panic on any
//! bytes, however the bytes are cut into reads, and every request read
//! round-trips: encode it, decode it again, same request.
//!
//! The first byte picks the read size (1 to 256 bytes per feed).
#![no_main]

use jsonrpc::{StreamDecoder, encode_request, parse_request};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&cut, data)) = data.split_first() else {
        return;
    };
    let chunk = usize::from(cut) + 1;
    let mut d = StreamDecoder::new(64 * 1024);
    let mut seen = Vec::new();
    'outer: for piece in data.chunks(chunk) {
        d.feed(piece);
        loop {
            match d.next_value() {
                Ok(Some(v)) => seen.push(v),
                Ok(None) => break,
                Err(_) => break 'outer,
            }
        }
    }
    for v in seen {
        let Ok(req) = parse_request(v) else { continue };
        let bytes = encode_request(&req);
        let mut again = StreamDecoder::new(usize::MAX);
        again.feed(&bytes);
        let v = again
            .next_value()
            .expect("an encoded request is valid JSON")
            .expect("an encoded request is complete");
        let back = parse_request(v).expect("an encoded request reads back");
        assert_eq!(back, req);
    }
});
