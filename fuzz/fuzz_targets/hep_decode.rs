//! HEP decoding never panics, HEPv3 encoding round-trips whatever decodes,
//! and the TCP framer agrees with the decoder.
#![no_main]

use capture::Timestamp;
use capture::hep::{self, HepConfig, HepStreamFramer, HepVersion};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let fallback = Timestamp::from_secs_micros(1_700_000_000, 1);
    let decoded = hep::decode(data, fallback);
    // The zero-copy path decodes the same.
    assert_eq!(decoded, hep::decode_bytes(data.to_vec().into(), fallback));
    let sip = hep::decode_sip(data, fallback, &HepConfig::default());
    assert_eq!(
        sip,
        hep::decode_sip_bytes(data.to_vec().into(), fallback, &HepConfig::default())
    );

    if let Ok(p) = decoded {
        // v1/v2 packets re-encode as v3; a v1/v2 datagram near 64 KiB may not
        // fit v3's larger headers, which try_encode_v3 reports.
        if let Ok(wire) = hep::try_encode_v3(&p) {
            let mut again = hep::decode(&wire, fallback).expect("encode_v3 output decodes");
            again.version = p.version;
            assert_eq!(again, p);
            if p.version == HepVersion::V3 {
                assert_eq!(
                    sip.is_ok(),
                    hep::decode_sip(&wire, fallback, &HepConfig::default()).is_ok()
                );
            }
        }
        if p.version != HepVersion::V3 {
            let wire = hep::encode_v1v2(&p).expect("decoded v1/v2 re-encodes");
            assert_eq!(hep::decode(&wire, fallback).as_ref(), Ok(&p));
        }
    }

    // The same bytes as a TCP stream, in two pushes.
    let mut framer = HepStreamFramer::new(65535);
    let (a, b) = data.split_at(data.len() / 2);
    let mut frames = Vec::new();
    for part in [a, b] {
        framer.push(part);
        while let Ok(Some(frame)) = framer.next_frame() {
            frames.push(frame);
        }
    }
    let taken: usize = frames.iter().map(|f| f.len()).sum();
    assert!(taken <= data.len());
    let mut off = 0;
    for f in &frames {
        assert_eq!(&data[off..off + f.len()], &f[..]);
        off += f.len();
        // Every frame is length-consistent, so it never decodes as truncated.
        assert!(!matches!(
            hep::decode(f, fallback),
            Err(hep::HepError::Truncated { .. })
        ));
    }
});
