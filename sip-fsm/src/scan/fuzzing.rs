//! Internals for the crate's differential tests (`tests/scan_diff.rs`) and
//! fuzz targets, behind the private `__internal-fuzz` feature. Not a
//! public API.

/// The raw From and To values `scan_raw` finds, or `None` where it
/// rejects the message.
pub fn raw_from_to(input: &[u8]) -> Option<(&[u8], &[u8])> {
    super::scan_raw(input).ok().map(|raw| (raw.from, raw.to))
}

/// The `tag` parameter of a From or To value without parsing the URI: the
/// dialog machine's shortcut for `NameAddr::parse(value).tag()`.
pub fn tag_of(value: &[u8]) -> Option<&[u8]> {
    super::tag_of(value)
}

/// Whether [`Prescan`](super::Prescan) round-trips on `input`: the scan
/// sliced back out of it equals `scan_raw` with the From and To tags
/// (without scanning again), and a rejected input keeps its reason.
pub fn prescan_round_trips(input: &[u8]) -> bool {
    super::prescan::round_trips(input)
}
