//! The HEP codec as the frame path uses it: `crate::hep::decode_sip` for
//! HEP datagrams and `crate::hep::HepStreamFramer` for HEP over TCP.
//!
//! PLACEHOLDER until `capture/src/hep/` exports them: HEP found in captures
//! is counted as `BadHep` and nothing else.

use bytes::Bytes;

use crate::{DropReason, SipPacket, Timestamp};

/// How HEP packets are decoded (stand-in for `crate::hep::HepConfig`).
#[derive(Clone, Debug, Default)]
pub struct HepConfig {}

/// Decodes one HEP packet carrying SIP.
pub(crate) fn decode_sip(
    _buf: &[u8],
    _fallback_ts: Timestamp,
    _cfg: &HepConfig,
) -> Result<SipPacket, DropReason> {
    Err(DropReason::BadHep)
}

/// Splits a HEP-over-TCP byte stream into packets.
#[derive(Debug)]
pub(crate) struct HepStreamFramer {}

/// A HEP stream that cannot be framed any more.
#[derive(Debug)]
pub(crate) struct HepError;

impl HepStreamFramer {
    pub(crate) fn new(_max_frame: usize) -> Self {
        HepStreamFramer {}
    }

    pub(crate) fn push(&mut self, _data: &[u8]) {}

    pub(crate) fn next_frame(&mut self) -> Result<Option<Bytes>, HepError> {
        Err(HepError)
    }
}
