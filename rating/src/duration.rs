//! Durations as CGRateS writes them.
//!
//! CGRateS parses tariff durations with `ParseDurationWithNanosecs`: an
//! empty field is zero, a bare integer counts nanoseconds (which is how
//! `*sms` and `*data` express units: `1` SMS, `1024` bytes), and anything
//! else is a Go duration (`60s`, `1m30s`, `1.5s`, `100ms`, `2h`).

use std::fmt::Write as _;
use std::time::Duration;

use crate::Error;

const EXPECTED: &str = "a duration like 60s, 1m30s, 1.5s or 0, or a bare number of units";

/// Parses a CGRateS duration. Negative durations are refused.
///
/// # Errors
/// [`Error::Duration`] when the text is not a duration.
pub fn parse_duration(input: &str) -> Result<Duration, Error> {
    let s = input.trim();
    let err = || Error::Duration {
        input: input.to_owned(),
        expected: EXPECTED,
    };
    if s.is_empty() {
        return Ok(Duration::ZERO);
    }
    if s.bytes().all(|b| b.is_ascii_digit()) {
        return s
            .parse::<u64>()
            .map(Duration::from_nanos)
            .map_err(|_| err());
    }
    let rest = s.strip_prefix('+').unwrap_or(s);
    if rest.is_empty() {
        return Err(err());
    }
    let mut total: u128 = 0;
    let mut rest = rest.as_bytes();
    while !rest.is_empty() {
        let int_len = rest.iter().take_while(|b| b.is_ascii_digit()).count();
        let int_part = &rest[..int_len];
        rest = &rest[int_len..];
        let mut frac_part: &[u8] = &[];
        if let Some((b'.', tail)) = rest.split_first() {
            let frac_len = tail.iter().take_while(|b| b.is_ascii_digit()).count();
            frac_part = &tail[..frac_len];
            rest = &tail[frac_len..];
        }
        if int_part.is_empty() && frac_part.is_empty() {
            return Err(err());
        }
        let unit_len = rest
            .iter()
            .take_while(|b| !b.is_ascii_digit() && **b != b'.')
            .count();
        let unit_ns: u128 = match &rest[..unit_len] {
            b"ns" => 1,
            // "us", micro sign and Greek mu, as Go accepts.
            b"us" | b"\xc2\xb5s" | b"\xce\xbcs" => 1_000,
            b"ms" => 1_000_000,
            b"s" => 1_000_000_000,
            b"m" => 60_000_000_000,
            b"h" => 3_600_000_000_000,
            _ => return Err(err()),
        };
        rest = &rest[unit_len..];
        let int_val = digits_value(int_part).ok_or_else(err)?;
        let mut part = int_val.checked_mul(unit_ns).ok_or_else(err)?;
        if !frac_part.is_empty() {
            // Go truncates the fraction to whole nanoseconds; so do we.
            let frac_part = &frac_part[..frac_part.len().min(30)];
            let frac_val = digits_value(frac_part).ok_or_else(err)?;
            let scale = 10_u128.checked_pow(u32::try_from(frac_part.len()).map_err(|_| err())?);
            let scale = scale.ok_or_else(err)?;
            part = part
                .checked_add(frac_val.checked_mul(unit_ns).ok_or_else(err)? / scale)
                .ok_or_else(err)?;
        }
        total = total.checked_add(part).ok_or_else(err)?;
    }
    u64::try_from(total)
        .map(Duration::from_nanos)
        .map_err(|_| err())
}

fn digits_value(digits: &[u8]) -> Option<u128> {
    digits.iter().try_fold(0_u128, |acc, b| {
        acc.checked_mul(10)?.checked_add(u128::from(b - b'0'))
    })
}

/// Formats a duration the way Go prints one: `1m30s`, `1h0m0s`, `1.5s`,
/// `500ms`, `0s`.
#[must_use]
pub fn format_duration(d: Duration) -> String {
    let ns = d.as_nanos();
    if ns == 0 {
        return "0s".to_owned();
    }
    let mut out = String::new();
    if ns < 1_000_000_000 {
        let (unit, div) = if ns < 1_000 {
            ("ns", 1)
        } else if ns < 1_000_000 {
            ("µs", 1_000)
        } else {
            ("ms", 1_000_000)
        };
        push_fraction(&mut out, ns, div);
        out.push_str(unit);
        return out;
    }
    let hours = ns / 3_600_000_000_000;
    let minutes = (ns / 60_000_000_000) % 60;
    let sec_ns = ns % 60_000_000_000;
    if hours > 0 {
        let _ = write!(out, "{hours}h{minutes}m");
    } else if minutes > 0 {
        let _ = write!(out, "{minutes}m");
    }
    push_fraction(&mut out, sec_ns, 1_000_000_000);
    out.push('s');
    out
}

fn push_fraction(out: &mut String, value: u128, div: u128) {
    let whole = value / div;
    let frac = value % div;
    let _ = write!(out, "{whole}");
    if frac != 0 {
        let width = div.to_string().len() - 1;
        let digits = format!("{frac:0width$}");
        out.push('.');
        out.push_str(digits.trim_end_matches('0'));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Duration {
        parse_duration(s).unwrap()
    }

    #[test]
    fn cgrates_forms() {
        assert_eq!(p("60s"), Duration::from_secs(60));
        assert_eq!(p("1m30s"), Duration::from_secs(90));
        assert_eq!(p("1m"), Duration::from_secs(60));
        assert_eq!(p("2h"), Duration::from_secs(7200));
        assert_eq!(p("1.5s"), Duration::from_millis(1500));
        assert_eq!(p("100ms"), Duration::from_millis(100));
        assert_eq!(p("10us"), Duration::from_micros(10));
        assert_eq!(p("10µs"), Duration::from_micros(10));
        assert_eq!(p("0s"), Duration::ZERO);
        assert_eq!(p("0"), Duration::ZERO);
        assert_eq!(p(""), Duration::ZERO);
        assert_eq!(p(" 30s "), Duration::from_secs(30));
    }

    #[test]
    fn bare_numbers_are_units_of_one_nanosecond() {
        // RT_SMS 1,1 and RT_1024_1 1024,1024: units, stored as nanoseconds.
        assert_eq!(p("1"), Duration::from_nanos(1));
        assert_eq!(p("1024"), Duration::from_nanos(1024));
    }

    #[test]
    fn refuses_garbage_and_negatives() {
        for bad in [
            "6o",
            "s",
            "1x",
            "-1s",
            "1.s2",
            ".",
            "+",
            "1h-2m",
            "99999999999999999999h",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn formats_like_go() {
        assert_eq!(format_duration(Duration::from_secs(90)), "1m30s");
        assert_eq!(format_duration(Duration::from_secs(3600)), "1h0m0s");
        assert_eq!(format_duration(Duration::from_millis(1500)), "1.5s");
        assert_eq!(format_duration(Duration::from_millis(500)), "500ms");
        assert_eq!(format_duration(Duration::ZERO), "0s");
        assert_eq!(format_duration(Duration::from_nanos(1024)), "1.024µs");
    }
}
