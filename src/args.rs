//! Command-line value types shared by several subcommands (one definition
//! each, so `cost` and `replay` spell their flags the same way).

use capture::Timestamp;
use chrono::{DateTime, Utc};

/// `--rounding` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Rounding {
    /// Exact decimals, rounded once with the plan's method and decimals.
    Exact,
    /// Reproduce CGRateS to the digit (5-decimal rounding per increment).
    Cgrates,
}

impl From<Rounding> for rating::RoundingMode {
    fn from(r: Rounding) -> Self {
        match r {
            Rounding::Exact => rating::RoundingMode::Exact,
            Rounding::Cgrates => rating::RoundingMode::Cgrates,
        }
    }
}

/// An RFC 3339 time with any offset, as UTC.
pub(crate) fn parse_time(s: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| format!("expected an RFC 3339 time like 2026-11-23T12:54:00Z: {e}"))
}

/// An RFC 3339 time as a capture [`Timestamp`].
pub(crate) fn parse_timestamp(s: &str) -> Result<Timestamp, String> {
    parse_time(s).map(|t| Timestamp::from_secs_nanos(t.timestamp(), t.timestamp_subsec_nanos()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_parse_rfc3339_with_offsets() {
        let t = parse_timestamp("2026-11-23T13:54:18.5+01:00").unwrap();
        assert_eq!(t.as_nanos(), 1_795_438_458_500_000_000);
        assert!(parse_timestamp("yesterday").is_err());
        let t = parse_time("2024-05-13T12:00:00+02:00").unwrap();
        assert_eq!(t.to_rfc3339(), "2024-05-13T10:00:00+00:00");
    }
}
