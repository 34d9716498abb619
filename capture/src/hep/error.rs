//! Why a HEP packet or a HEP-over-TCP stream could not be decoded.

use crate::DropReason;

/// A HEP packet (or stream) that could not be decoded.
///
/// Every variant maps to exactly one drop counter through
/// [`HepError::drop_reason`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HepError {
    /// Shorter than its headers say it must be.
    #[error("HEP packet truncated: need {need} bytes, have {have}")]
    Truncated {
        /// Bytes the headers call for.
        need: usize,
        /// Bytes present.
        have: usize,
    },
    /// Neither `HEP3` nor a HEPv1/v2 version byte.
    #[error("not a HEP packet (first byte {0:#04x})")]
    BadMagic(u8),
    /// The HEPv3 total length field is below the 6-byte header or leaves
    /// bytes over at the end of the datagram.
    #[error("HEPv3 length field {len} does not fit a {have}-byte packet")]
    BadLength {
        /// The length field.
        len: usize,
        /// Bytes present.
        have: usize,
    },
    /// A HEPv3 chunk length below 6 or running past the packet end.
    #[error("HEPv3 chunk at offset {offset} has impossible length {len}")]
    BadChunkLength {
        /// Offset of the chunk header in the packet.
        offset: usize,
        /// The chunk's length field (0 when the header itself is cut).
        len: usize,
    },
    /// A fixed-size generic chunk with the wrong amount of data.
    #[error("HEPv3 chunk {chunk_type:#06x} carries {len} bytes, expected {expected}")]
    BadChunkSize {
        /// The chunk type.
        chunk_type: u16,
        /// Data bytes present.
        len: usize,
        /// Data bytes the type calls for.
        expected: usize,
    },
    /// A HEPv1/v2 header length that does not match its address family.
    #[error("HEPv1/v2 header length {0} does not match its address family")]
    BadHeaderLength(u8),
    /// A HEPv1/v2 address family that is neither IPv4 nor IPv6.
    #[error("HEPv1/v2 unknown address family {0}")]
    BadFamily(u8),
    /// A HEP-over-TCP stream that does not start a frame with `HEP3`.
    #[error("HEP stream out of sync: frame does not start with HEP3")]
    BadFrameMagic,
    /// A HEP-over-TCP frame length below 6 or above the configured maximum.
    #[error("HEP frame length {len} outside 6..={max}")]
    BadFrameLength {
        /// The frame's length field.
        len: usize,
        /// The framer's maximum.
        max: usize,
    },
    /// The packet does not fit HEPv3's 16-bit length field (encoding only).
    #[error("HEPv3 packet would be {0} bytes, over 65535")]
    TooLarge(usize),
    /// The compressed payload is not valid zlib, gzip or deflate data.
    #[error("compressed payload does not inflate")]
    BadCompression,
    /// The compressed payload inflates past the limit (zip-bomb guard).
    #[error("compressed payload inflates to over {0} bytes")]
    InflateLimit(usize),
}

impl HepError {
    /// The drop counter this error is counted under.
    pub const fn drop_reason(&self) -> DropReason {
        match self {
            HepError::Truncated { .. } => DropReason::Truncated,
            HepError::BadMagic(_)
            | HepError::BadLength { .. }
            | HepError::BadChunkLength { .. }
            | HepError::BadChunkSize { .. }
            | HepError::BadHeaderLength(_)
            | HepError::BadFamily(_) => DropReason::BadHep,
            HepError::BadFrameMagic | HepError::BadFrameLength { .. } => DropReason::BadHepFrame,
            HepError::TooLarge(_) => DropReason::Oversize,
            HepError::BadCompression | HepError::InflateLimit(_) => DropReason::BadCompression,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_maps_to_its_counter() {
        let cases = [
            (
                HepError::Truncated { need: 6, have: 2 },
                DropReason::Truncated,
            ),
            (HepError::BadMagic(0x47), DropReason::BadHep),
            (HepError::BadLength { len: 3, have: 9 }, DropReason::BadHep),
            (
                HepError::BadChunkLength { offset: 6, len: 2 },
                DropReason::BadHep,
            ),
            (
                HepError::BadChunkSize {
                    chunk_type: 7,
                    len: 3,
                    expected: 2,
                },
                DropReason::BadHep,
            ),
            (HepError::BadHeaderLength(9), DropReason::BadHep),
            (HepError::BadFamily(99), DropReason::BadHep),
            (HepError::BadFrameMagic, DropReason::BadHepFrame),
            (
                HepError::BadFrameLength { len: 2, max: 9 },
                DropReason::BadHepFrame,
            ),
            (HepError::TooLarge(70_000), DropReason::Oversize),
            (HepError::BadCompression, DropReason::BadCompression),
            (HepError::InflateLimit(10), DropReason::BadCompression),
        ];
        for (e, r) in cases {
            assert_eq!(e.drop_reason(), r, "{e}");
        }
    }
}
