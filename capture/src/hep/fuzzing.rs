//! Internals for the fuzz targets in `fuzz/` and the crate's differential
//! tests (`tests/hep_diff.rs`), behind the private `__internal-fuzz`
//! feature. Not a public API.

use std::ops::Range;

use super::{HepError, HepPacket};
use crate::Timestamp;

/// The HEPv1/v2 parser, byte fields as offsets into `buf`: the reference
/// decoder of the differential tests hands v1/v2 packets to it.
pub fn parse_v12(buf: &[u8], fallback_ts: Timestamp) -> Result<HepPacket<Range<usize>>, HepError> {
    super::v12::parse(buf, fallback_ts)
}
