//! HEPv3 over TCP: the stream is HEP packets back to back, each starting
//! with `HEP3` and its 16-bit total length. Check-then-parse: a frame is
//! handed out only once all its bytes are buffered, and a stream whose next
//! frame header is impossible is dead (there is no way to resynchronise
//! safely), so every later call returns the same error.

use bytes::{Bytes, BytesMut};

use super::HepError;
use super::v3::{HEADER_LEN, MAGIC, be16};

/// Splits a HEPv3-over-TCP byte stream into packets.
#[derive(Debug)]
pub struct HepStreamFramer {
    buf: BytesMut,
    max_frame: usize,
    failed: Option<HepError>,
}

impl HepStreamFramer {
    /// A framer accepting frames of up to `max_frame` bytes (clamped to
    /// 6..=65535, the range HEPv3's length field can express).
    pub fn new(max_frame: usize) -> Self {
        HepStreamFramer {
            buf: BytesMut::new(),
            max_frame: max_frame.clamp(HEADER_LEN, usize::from(u16::MAX)),
            failed: None,
        }
    }

    /// Appends bytes read from the connection. Ignored once the stream has
    /// failed.
    pub fn push(&mut self, bytes: &[u8]) {
        if self.failed.is_none() {
            self.buf.extend_from_slice(bytes);
        }
    }

    /// Gives back a large buffer once it is empty: one big frame should
    /// not leave a connection holding its capacity while idle.
    pub fn shrink(&mut self) {
        if self.buf.is_empty() && self.buf.capacity() > 4096 {
            self.buf = BytesMut::new();
        }
    }

    /// Memory the framer holds for partial frames (its buffer's capacity,
    /// which a frame header reserves for the whole frame).
    pub fn capacity(&self) -> usize {
        self.buf.capacity()
    }

    /// Bytes buffered but not yet handed out as frames.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Ok(Some(frame)) per complete HEP packet (several per push possible, one packet across pushes possible);
    /// Ok(None) when more bytes are needed; Err when the stream is unusable (bad magic, length < 6 or > max):
    /// the caller closes the connection and counts DropReason::BadHepFrame.
    ///
    /// Frames are slices of one shared buffer: pass them to
    /// [`super::decode_sip_bytes`] to decode without copying.
    pub fn next_frame(&mut self) -> Result<Option<Bytes>, HepError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        let have = self.buf.len();
        // Check the magic as soon as its first byte arrives, so a non-HEP
        // client is cut off without waiting for six bytes.
        let seen = have.min(MAGIC.len());
        if self.buf.get(..seen) != MAGIC.get(..seen) {
            return Err(self.fail(HepError::BadFrameMagic));
        }
        let Some(len) = be16(&self.buf, 4).map(usize::from) else {
            return Ok(None);
        };
        if len < HEADER_LEN || len > self.max_frame {
            return Err(self.fail(HepError::BadFrameLength {
                len,
                max: self.max_frame,
            }));
        }
        if have < len {
            self.buf.reserve(len - have);
            return Ok(None);
        }
        Ok(Some(self.buf.split_to(len).freeze()))
    }

    fn fail(&mut self, e: HepError) -> HepError {
        self.buf = BytesMut::new();
        self.failed = Some(e.clone());
        e
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hep::{HepConfig, HepPacket, decode_sip_bytes, encode_v3};
    use crate::{DropReason, Timestamp};

    fn frame(n: u8) -> Vec<u8> {
        let p = HepPacket {
            proto_type: Some(1),
            src_ipv4: Some([10, 0, 0, n].into()),
            dst_ipv4: Some([10, 0, 0, 1].into()),
            payload: Some(bytes::Bytes::from(format!(
                "MESSAGE sip:{n}@x SIP/2.0\r\n\r\n"
            ))),
            ..HepPacket::default()
        };
        encode_v3(&p)
    }

    fn drain(f: &mut HepStreamFramer) -> Vec<Bytes> {
        let mut out = Vec::new();
        while let Some(b) = f.next_frame().unwrap() {
            out.push(b);
        }
        out
    }

    #[test]
    fn several_packets_in_one_push() {
        let mut f = HepStreamFramer::new(65535);
        let stream: Vec<u8> = (1..=3).flat_map(frame).collect();
        f.push(&stream);
        let frames = drain(&mut f);
        assert_eq!(frames.len(), 3);
        for (i, fr) in frames.iter().enumerate() {
            assert_eq!(fr[..], frame(u8::try_from(i + 1).unwrap())[..]);
            let s = decode_sip_bytes(fr.clone(), Timestamp::EPOCH, &HepConfig::default()).unwrap();
            assert_eq!(s.src.ip().to_string(), format!("10.0.0.{}", i + 1));
        }
        assert_eq!(f.buffered(), 0);
    }

    #[test]
    fn one_packet_split_at_every_byte_boundary() {
        let two: Vec<u8> = frame(1).into_iter().chain(frame(2)).collect();
        for cut in 0..=two.len() {
            let mut f = HepStreamFramer::new(65535);
            f.push(&two[..cut]);
            let mut frames = drain(&mut f);
            f.push(&two[cut..]);
            frames.extend(drain(&mut f));
            assert_eq!(frames.len(), 2, "cut at {cut}");
            assert_eq!(frames[0][..], frame(1)[..]);
            assert_eq!(frames[1][..], frame(2)[..]);
        }
    }

    #[test]
    fn byte_by_byte() {
        let one = frame(7);
        let mut f = HepStreamFramer::new(65535);
        let mut frames = Vec::new();
        for b in &one {
            f.push(std::slice::from_ref(b));
            frames.extend(drain(&mut f));
        }
        assert_eq!(frames.len(), 1);
        assert_eq!(frames[0][..], one[..]);
    }

    #[test]
    fn bad_length_closes() {
        for (bytes, want) in [
            (
                &b"HEP3\x00\x05"[..],
                HepError::BadFrameLength { len: 5, max: 65535 },
            ),
            (
                &b"HEP3\x00\x00"[..],
                HepError::BadFrameLength { len: 0, max: 65535 },
            ),
        ] {
            let mut f = HepStreamFramer::new(65535);
            f.push(bytes);
            assert_eq!(f.next_frame(), Err(want.clone()));
            assert_eq!(want.drop_reason(), DropReason::BadHepFrame);
            // Dead for good, even if good bytes follow.
            f.push(&frame(1));
            assert_eq!(f.next_frame(), Err(want));
        }
    }

    #[test]
    fn over_max_closes() {
        let mut f = HepStreamFramer::new(100);
        f.push(b"HEP3\x00\x65");
        assert_eq!(
            f.next_frame(),
            Err(HepError::BadFrameLength { len: 101, max: 100 })
        );
        let mut f = HepStreamFramer::new(101);
        f.push(b"HEP3\x00\x65");
        assert_eq!(f.next_frame(), Ok(None));
    }

    #[test]
    fn bad_magic_closes_early() {
        let mut f = HepStreamFramer::new(65535);
        f.push(b"G");
        assert_eq!(f.next_frame(), Err(HepError::BadFrameMagic));
        let mut f = HepStreamFramer::new(65535);
        f.push(&frame(1));
        f.push(b"HEX");
        assert!(f.next_frame().unwrap().is_some());
        assert_eq!(f.next_frame(), Err(HepError::BadFrameMagic));
    }

    #[test]
    fn partial_header_waits() {
        let mut f = HepStreamFramer::new(65535);
        assert_eq!(f.next_frame(), Ok(None));
        f.push(b"HEP3\x00");
        assert_eq!(f.next_frame(), Ok(None));
    }
}
