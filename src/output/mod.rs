//! Everything the binary prints: SIP packets (`sniff`), CDRs (`replay`),
//! and the counters on stderr.

mod cdr;
mod packet;

use std::io::{self, Write};

use capture::{Stats, Timestamp};
use chrono::{DateTime, SecondsFormat, Utc};

pub(crate) use cdr::{CdrFormat, CdrWriter};
pub(crate) use packet::{PacketFormat, PacketPrinter};

/// RFC 3339, UTC, microseconds: `2026-11-23T12:00:00.123456Z`.
pub(crate) fn rfc3339_micros(ts: Timestamp) -> String {
    match DateTime::<Utc>::from_timestamp(ts.secs(), ts.subsec_nanos()) {
        Some(t) => t.to_rfc3339_opts(SecondsFormat::Micros, true),
        None => format!("@{}ns", ts.as_nanos()),
    }
}

/// Prints counters to stderr: every drop reason by name, zeros included,
/// so scripts can rely on the lines being there.
pub(crate) fn print_stats(label: &str, stats: &Stats, extra: &[(&str, u64)]) {
    let mut e = io::stderr().lock();
    let _ = writeln!(e, "{label}: packets: {}", stats.packets);
    let _ = writeln!(e, "{label}: bytes: {}", stats.bytes);
    let _ = writeln!(e, "{label}: sip_messages: {}", stats.sip);
    let _ = writeln!(e, "{label}: dropped: {}", stats.total_drops());
    for (reason, n) in stats.drop_counts() {
        let _ = writeln!(e, "{label}: drop.{reason}: {n}");
    }
    for (k, v) in extra {
        let _ = writeln!(e, "{label}: {k}: {v}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_microseconds_utc() {
        let t = Timestamp::from_secs_nanos(1_700_000_000, 123_456_789);
        assert_eq!(rfc3339_micros(t), "2023-11-14T22:13:20.123456Z");
    }
}
