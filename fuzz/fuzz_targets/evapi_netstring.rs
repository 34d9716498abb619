//! The evapi netstring framing never panics: whatever decodes re-encodes
//! to the same bytes and decodes again to the same payload; a stream
//! decoder fed the input in two pieces finds the same frames as one fed
//! it whole.
#![no_main]

use agents::evapi::netstring::{Decoded, Decoder, decode, encode};
use libfuzzer_sys::fuzz_target;

const MAX: usize = 1 << 16;

fn frames(d: &mut Decoder) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    while let Ok(Some(f)) = d.next_frame() {
        out.push(f);
    }
    out
}

fuzz_target!(|data: &[u8]| {
    if let Ok(Decoded::Frame { payload, consumed }) = decode(data, MAX) {
        assert!(consumed <= data.len());
        let again = encode(payload);
        assert_eq!(&data[..consumed], &again[..], "canonical lengths only");
        match decode(&again, MAX) {
            Ok(Decoded::Frame {
                payload: p2,
                consumed: c2,
            }) => {
                assert_eq!(p2, payload);
                assert_eq!(c2, again.len());
            }
            other => panic!("re-encoded frame does not decode: {other:?}"),
        }
    }
    let mut whole = Decoder::new(MAX);
    whole.push(data);
    let a = frames(&mut whole);
    let cut = data.first().map_or(0, |b| usize::from(*b)).min(data.len());
    let mut split = Decoder::new(MAX);
    split.push(&data[..cut]);
    let mut b = frames(&mut split);
    split.push(&data[cut..]);
    b.extend(frames(&mut split));
    assert_eq!(a, b);
});
