//! CGRateS's typed comparisons (`utils.StringToInterface`, `GreaterThan`,
//! `EqualTo`): both sides are read from text as an integer, a boolean, a
//! float, a time or a Go duration (in that order), and compared by the
//! type both sides share. Integers and durations (nanoseconds) compare
//! as integers; an integer and a float as floats; times as times. Other
//! pairs are incomparable, which CGRateS reports as an error.

use std::cmp::Ordering;

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};

use crate::activation::parse_time;

/// A value as CGRateS types it for a comparison.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Typed<'a> {
    /// A whole number, or a duration in nanoseconds.
    Int(i64),
    /// A decimal number.
    Float(f64),
    /// `true`, `false`, `t`, `F`...
    Bool(bool),
    /// A time.
    Time(DateTime<Utc>),
    /// Anything else.
    Str(&'a str),
}

impl<'a> Typed<'a> {
    /// Types `s` the way CGRateS's `StringToInterface` does; `*now` is
    /// `now`.
    #[must_use]
    pub fn parse(s: &'a str, now: DateTime<Utc>) -> Typed<'a> {
        if let Ok(i) = s.parse::<i64>() {
            return Typed::Int(i);
        }
        if let Some(b) = go_bool(s) {
            return Typed::Bool(b);
        }
        if let Some(f) = go_float(s) {
            return Typed::Float(f);
        }
        if let Some(t) = time_of(s, now) {
            return Typed::Time(t);
        }
        if let Some(d) = go_duration(s) {
            return Typed::Int(d);
        }
        Typed::Str(s)
    }

    fn describe(&self) -> String {
        match self {
            Typed::Int(i) => i.to_string(),
            Typed::Float(f) => f.to_string(),
            Typed::Bool(b) => b.to_string(),
            Typed::Time(t) => t.to_rfc3339(),
            Typed::Str(s) => (*s).to_owned(),
        }
    }
}

/// How `a` compares with `b`, or why they do not compare
/// (`incomparable: <a> with <b>`, `unsupported comparison type`).
///
/// # Errors
/// The two sides have no common ordered type.
pub fn compare(a: Typed<'_>, b: Typed<'_>) -> Result<Ordering, String> {
    #[allow(clippy::cast_precision_loss)] // CGRateS compares float64 here
    let as_float = |i: i64| i as f64;
    let ord = match (a, b) {
        (Typed::Int(x), Typed::Int(y)) => Some(x.cmp(&y)),
        (Typed::Float(x), Typed::Float(y)) => x.partial_cmp(&y),
        (Typed::Int(x), Typed::Float(y)) => as_float(x).partial_cmp(&y),
        (Typed::Float(x), Typed::Int(y)) => x.partial_cmp(&as_float(y)),
        (Typed::Time(x), Typed::Time(y)) => Some(x.cmp(&y)),
        (Typed::Bool(_), Typed::Bool(_)) => {
            return Err("unsupported comparison type: bool".to_owned());
        }
        (Typed::Str(_), Typed::Str(_)) => {
            return Err("unsupported comparison type: string".to_owned());
        }
        _ => {
            return Err(format!(
                "incomparable: <{}> with <{}>",
                a.describe(),
                b.describe()
            ));
        }
    };
    // NaN compares with nothing: neither greater nor equal.
    Ok(ord.unwrap_or(Ordering::Less))
}

/// Whether `a` equals `b` by CGRateS's `EqualTo` (strings compare too).
///
/// # Errors
/// The two sides have no common type.
pub fn equal(a: Typed<'_>, b: Typed<'_>) -> Result<bool, String> {
    match (a, b) {
        (Typed::Str(x), Typed::Str(y)) => Ok(x == y),
        (Typed::Bool(_), Typed::Bool(_)) => Err("unsupported comparison type: bool".to_owned()),
        _ => compare(a, b).map(|o| o == Ordering::Equal),
    }
}

/// Go's `strconv.ParseBool`.
fn go_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// Go's `strconv.ParseFloat` for the forms CGRateS meets (decimal and
/// exponent forms, `inf`, `NaN`).
fn go_float(s: &str) -> Option<f64> {
    let body = s.strip_prefix(['+', '-']).unwrap_or(s);
    let special = matches!(
        body.to_ascii_lowercase().as_str(),
        "inf" | "infinity" | "nan"
    );
    let numeric = !body.is_empty()
        && body
            .bytes()
            .all(|c| c.is_ascii_digit() || matches!(c, b'.' | b'e' | b'E' | b'+' | b'-'))
        && body
            .bytes()
            .next()
            .is_some_and(|c| c.is_ascii_digit() || c == b'.');
    if special || numeric {
        s.parse::<f64>().ok()
    } else {
        None
    }
}

/// A time in one of the layouts CGRateS detects (RFC 3339,
/// `2006-01-02 15:04:05`, `20060102150405`, `2006-01-02`), or `*now`.
#[must_use]
pub fn time_of(s: &str, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let s = s.trim();
    if s == "*now" {
        return Some(now);
    }
    if s.is_empty() || s == "*never" {
        return None;
    }
    if let Ok(Some(t)) = parse_time(s) {
        return Some(t);
    }
    if s.len() == 14 && s.bytes().all(|c| c.is_ascii_digit()) {
        return NaiveDateTime::parse_from_str(s, "%Y%m%d%H%M%S")
            .ok()
            .map(|t| t.and_utc());
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc())
}

/// Go's `time.ParseDuration` (`1h30m`, `60s`, `1.5m`, `-100ms`, `0`), in
/// nanoseconds; `None` for anything else or an overflow.
#[must_use]
pub fn go_duration(s: &str) -> Option<i64> {
    let (neg, mut rest) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if rest == "0" {
        return Some(0);
    }
    if rest.is_empty() {
        return None;
    }
    let mut total: i128 = 0;
    while !rest.is_empty() {
        let int_end = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        let (int_part, after) = rest.split_at(int_end);
        let (frac_part, after) = match after.strip_prefix('.') {
            Some(a) => {
                let end = a.find(|c: char| !c.is_ascii_digit()).unwrap_or(a.len());
                a.split_at(end)
            }
            None => ("", after),
        };
        if int_part.is_empty() && frac_part.is_empty() {
            return None;
        }
        let unit_end = after
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after.len());
        let (unit, next) = after.split_at(unit_end);
        let scale: i128 = match unit {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => return None,
        };
        let whole: i128 = if int_part.is_empty() {
            0
        } else {
            int_part.parse().ok()?
        };
        total = total.checked_add(whole.checked_mul(scale)?)?;
        // The fraction, truncated to whole nanoseconds as Go does.
        let mut frac_scale = scale;
        for d in frac_part.bytes() {
            frac_scale /= 10;
            if frac_scale == 0 {
                break;
            }
            total = total.checked_add(i128::from(d - b'0') * frac_scale)?;
        }
        if total > i128::from(i64::MAX) {
            return None;
        }
        rest = next;
    }
    let total = if neg { -total } else { total };
    i64::try_from(total).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2024-05-13T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn types_like_string_to_interface() {
        let n = now();
        assert_eq!(Typed::parse("42", n), Typed::Int(42));
        assert_eq!(Typed::parse("true", n), Typed::Bool(true));
        assert_eq!(Typed::parse("1.5", n), Typed::Float(1.5));
        assert_eq!(Typed::parse("60s", n), Typed::Int(60_000_000_000));
        assert_eq!(Typed::parse("1m30.5s", n), Typed::Int(90_500_000_000));
        assert_eq!(Typed::parse("*now", n), Typed::Time(n));
        assert!(matches!(
            Typed::parse("2024-05-13T10:00:00Z", n),
            Typed::Time(_)
        ));
        assert!(matches!(
            Typed::parse("2024-05-13 10:00:00", n),
            Typed::Time(_)
        ));
        assert_eq!(Typed::parse("abc", n), Typed::Str("abc"));
        assert_eq!(Typed::parse("1e", n), Typed::Str("1e"));
        assert_eq!(Typed::parse("s", n), Typed::Str("s"));
    }

    #[test]
    fn go_durations() {
        for (s, want) in [
            ("0", Some(0)),
            ("1h", Some(3_600_000_000_000)),
            ("-100ms", Some(-100_000_000)),
            ("1.5m", Some(90_000_000_000)),
            ("2us", Some(2_000)),
            ("1h2m3s4ms", Some(3_723_004_000_000)),
            (".5s", Some(500_000_000)),
            ("10", None),
            ("1x", None),
            ("", None),
            ("-", None),
            ("99999999999h", None),
        ] {
            assert_eq!(go_duration(s), want, "{s}");
        }
    }

    #[test]
    fn compares_by_the_shared_type() {
        let n = now();
        let c = |a: &str, b: &str| compare(Typed::parse(a, n), Typed::parse(b, n));
        assert_eq!(c("60s", "60000000000"), Ok(Ordering::Equal));
        assert_eq!(c("61", "60.5"), Ok(Ordering::Greater));
        assert_eq!(c("1m", "59s"), Ok(Ordering::Greater));
        assert_eq!(
            c("2024-05-13T10:00:00Z", "2024-05-13 09:00:00"),
            Ok(Ordering::Greater)
        );
        assert!(c("abc", "abd").is_err());
        assert!(c("10", "2024-05-13T10:00:00Z").is_err());
        assert!(c("true", "false").is_err());
        assert_eq!(equal(Typed::parse("a", n), Typed::parse("a", n)), Ok(true));
        assert_eq!(
            equal(Typed::parse("1", n), Typed::parse("1.0", n)),
            Ok(true)
        );
        assert!(equal(Typed::parse("a", n), Typed::parse("1", n)).is_err());
    }
}
