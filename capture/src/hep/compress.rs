//! The compressed payload chunk (0x0010).
//!
//! The HEP3 specification says only "gzip/inflate"; captagent compresses
//! with zlib's `compress()` (zlib stream), others use gzip. We tell the
//! formats apart by their headers (gzip `1f 8b`, zlib CMF/FLG check) and read
//! anything else as raw deflate. Inflating stops at a hard cap, so a small
//! packet cannot expand into gigabytes (zip bomb).

use std::io::Read;

use flate2::Compression;
use flate2::read::{DeflateDecoder, GzDecoder, ZlibDecoder};

use super::HepError;

/// Inflates a compressed HEP payload (zlib, gzip or raw deflate) to at most
/// `max` bytes.
///
/// Errors: [`HepError::BadCompression`] for data that does not inflate,
/// [`HepError::InflateLimit`] when the result would exceed `max`.
pub fn inflate(data: &[u8], max: usize) -> Result<Vec<u8>, HepError> {
    let limit = u64::try_from(max).unwrap_or(u64::MAX).saturating_add(1);
    let mut out = Vec::with_capacity(max.min(data.len().saturating_mul(4)));
    let read = match data {
        [0x1f, 0x8b, ..] => GzDecoder::new(data).take(limit).read_to_end(&mut out),
        [cmf, flg, ..] if is_zlib_header(*cmf, *flg) => {
            ZlibDecoder::new(data).take(limit).read_to_end(&mut out)
        }
        _ => DeflateDecoder::new(data).take(limit).read_to_end(&mut out),
    };
    read.map_err(|_| HepError::BadCompression)?;
    if out.len() > max {
        return Err(HepError::InflateLimit(max));
    }
    Ok(out)
}

/// RFC 1950 §2.2: method 8 (deflate), window ≤ 32 KiB, and the check bits
/// make `CMF * 256 + FLG` a multiple of 31.
fn is_zlib_header(cmf: u8, flg: u8) -> bool {
    cmf & 0x0f == 8 && cmf >> 4 <= 7 && (u16::from(cmf) * 256 + u16::from(flg)) % 31 == 0
}

/// Compresses a payload as a zlib stream, as captagent does, for the
/// compressed payload chunk.
pub fn compress_payload(data: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    flate2::bufread::ZlibEncoder::new(data, Compression::default()).read_to_end(&mut out)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    const SIP: &[u8] = b"BYE sip:a@b SIP/2.0\r\nCall-ID: x\r\nContent-Length: 0\r\n\r\n";

    #[test]
    fn zlib_round_trip() {
        let z = compress_payload(SIP).unwrap();
        assert!(is_zlib_header(z[0], z[1]));
        assert_eq!(inflate(&z, 1000).unwrap(), SIP);
    }

    #[test]
    fn gzip_is_inflated() {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), Compression::fast());
        e.write_all(SIP).unwrap();
        let gz = e.finish().unwrap();
        assert_eq!(inflate(&gz, 1000).unwrap(), SIP);
    }

    #[test]
    fn raw_deflate_is_inflated() {
        let mut e = flate2::write::DeflateEncoder::new(Vec::new(), Compression::fast());
        e.write_all(SIP).unwrap();
        let d = e.finish().unwrap();
        assert_eq!(inflate(&d, 1000).unwrap(), SIP);
    }

    #[test]
    fn exactly_at_the_cap_is_fine_one_over_is_not() {
        let z = compress_payload(SIP).unwrap();
        assert_eq!(inflate(&z, SIP.len()).unwrap(), SIP);
        assert_eq!(
            inflate(&z, SIP.len() - 1),
            Err(HepError::InflateLimit(SIP.len() - 1))
        );
    }

    #[test]
    fn zip_bomb_stops_at_the_cap() {
        let bomb = compress_payload(&vec![0u8; 50 << 20]).unwrap();
        assert!(bomb.len() < 100_000);
        assert_eq!(inflate(&bomb, 65_535), Err(HepError::InflateLimit(65_535)));
    }

    #[test]
    fn garbage_is_bad_compression() {
        assert_eq!(
            inflate(b"\x78\x9c\xff\xff\xff", 1000),
            Err(HepError::BadCompression)
        );
        assert_eq!(inflate(b"\x1f\x8bxx", 1000), Err(HepError::BadCompression));
        let z = compress_payload(SIP).unwrap();
        assert_eq!(
            inflate(&z[..z.len() / 2], 1000),
            Err(HepError::BadCompression)
        );
    }
}
