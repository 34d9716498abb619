//! CGRateS's ActivationInterval column: `START` or `START;END` (RFC 3339
//! or `2006-01-02 15:04:05`, UTC), empty for always active.

use chrono::{DateTime, NaiveDateTime, Utc};

/// When a profile or filter is in force; both ends optional.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ActivationInterval {
    /// Active from (inclusive).
    pub activation: Option<DateTime<Utc>>,
    /// Active until (exclusive).
    pub expiry: Option<DateTime<Utc>>,
}

impl ActivationInterval {
    /// Parses the column; `Err` holds what did not parse.
    ///
    /// # Errors
    /// A part that is neither empty nor a time.
    pub fn parse(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if s.is_empty() {
            return Ok(Self::default());
        }
        let mut parts = s.splitn(2, ';');
        let first = parts.next().unwrap_or("");
        let second = parts.next().unwrap_or("");
        Ok(Self {
            activation: parse_time(first)?,
            expiry: parse_time(second)?,
        })
    }

    /// Whether `now` is inside the interval.
    #[must_use]
    pub fn is_active_at(&self, now: DateTime<Utc>) -> bool {
        self.activation.is_none_or(|a| now >= a) && self.expiry.is_none_or(|e| now < e)
    }
}

/// A time as CGRateS's tariff-plan columns write it; `None` for "".
///
/// # Errors
/// Text that is not a time.
pub fn parse_time(s: &str) -> Result<Option<DateTime<Utc>>, String> {
    let s = s.trim();
    if s.is_empty() || s == "*never" {
        return Ok(None);
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(Some(t.with_timezone(&Utc)));
    }
    for layout in ["%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, layout) {
            return Ok(Some(t.and_utc()));
        }
    }
    Err(format!("not a time: {s:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_ends_and_checks_them() {
        let ai = ActivationInterval::parse("2014-07-29T15:00:00Z;2015-01-01 00:00:00").unwrap();
        let t = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
        assert!(!ai.is_active_at(t("2014-07-29T14:59:59Z")));
        assert!(ai.is_active_at(t("2014-07-29T15:00:00Z")));
        assert!(!ai.is_active_at(t("2015-01-01T00:00:00Z")));
        assert!(
            ActivationInterval::parse("")
                .unwrap()
                .is_active_at(t("1999-01-01T00:00:00Z"))
        );
        assert!(ActivationInterval::parse("yesterday").is_err());
    }
}
