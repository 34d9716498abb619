//! Any bytes as a pcap or pcapng capture file: the reader (pcap-parser and
//! our handling of headers, interfaces, timestamps and damaged records)
//! must not panic or loop, and every frame it hands over goes through the
//! frame decoder. The repository's captures seed it.
#![no_main]

use capture::frame::fuzzing::read_capture_file;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (frames, _whole) = read_capture_file(data);
    // A record takes at least 12 bytes (a pcapng block), so no more frames
    // than that can come out of the input.
    assert!(frames <= data.len() / 12);
});
