//! The substitution types of an attribute (its Type column) and what each
//! computes from the value and the event.

use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use rust_decimal::{Decimal, RoundingStrategy};

use super::value::{EvalError, Template, format_decimal};
use crate::event::DataProvider;

/// CGRateS's `rounding_decimals` default, used by `*value_exponent`.
const ROUNDING_DECIMALS: u32 = 5;

/// A substitution type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Kind {
    /// `*constant`: the value as written.
    Constant,
    /// `*variable` (also an empty Type): the value with its paths read.
    Variable,
    /// `*composed`: like `*variable`, appended to the field's current text.
    Composed,
    /// `*usage_difference`: two times (`end;start`) to a duration (`1m30s`).
    UsageDifference,
    /// `*sum`: the parts added (numbers, or durations when the first part
    /// is one).
    Sum,
    /// `*difference`: the first part minus the others.
    Difference,
    /// `*multiply`: the parts multiplied.
    Multiply,
    /// `*divide`: the first part divided by the others.
    Divide,
    /// `*value_exponent`: `value;exp` to value * 10^exp.
    ValueExponent,
    /// `*unix_timestamp`: a time to seconds since 1970.
    UnixTimestamp,
    /// `*date_time`: a time to RFC 3339 (UTC).
    DateTime,
    /// `*prefix`: the value put before the field's current text.
    Prefix,
    /// `*suffix`: the value put after the field's current text.
    Suffix,
    /// `*none`: sets the field empty (as CGRateS does: no value).
    None,
}

const NAMES: &[(&str, Kind)] = &[
    ("*constant", Kind::Constant),
    ("*variable", Kind::Variable),
    ("*composed", Kind::Composed),
    ("*usage_difference", Kind::UsageDifference),
    ("*sum", Kind::Sum),
    ("*difference", Kind::Difference),
    ("*multiply", Kind::Multiply),
    ("*divide", Kind::Divide),
    ("*value_exponent", Kind::ValueExponent),
    ("*unix_timestamp", Kind::UnixTimestamp),
    ("*date_time", Kind::DateTime),
    ("*prefix", Kind::Prefix),
    ("*suffix", Kind::Suffix),
    ("*none", Kind::None),
];

impl Kind {
    /// The type named `s` (empty: `*variable`).
    #[must_use]
    pub fn parse(s: &str) -> Option<Kind> {
        if s.is_empty() {
            return Some(Kind::Variable);
        }
        NAMES.iter().find(|(n, _)| *n == s).map(|(_, k)| *k)
    }

    /// Its CGRateS name.
    #[must_use]
    pub fn name(self) -> &'static str {
        NAMES
            .iter()
            .find(|(_, k)| *k == self)
            .map_or("*variable", |(n, _)| n)
    }

    /// How many value parts the type needs, if fixed.
    #[must_use]
    pub fn arity(self) -> Option<usize> {
        match self {
            Kind::UsageDifference | Kind::ValueExponent => Some(2),
            _ => None,
        }
    }
}

/// The text `kind` substitutes at `path` of `ev` (before `*composed`
/// appends it to the current value).
///
/// # Errors
/// A path the event lacks ([`EvalError::NotFound`]) or a value that does
/// not compute.
pub fn evaluate(
    kind: Kind,
    value: &Template,
    path: &str,
    ev: &dyn DataProvider,
    now: DateTime<Utc>,
) -> Result<String, EvalError> {
    let other = EvalError::Other;
    let fixed = |n: usize| -> Result<Vec<String>, EvalError> {
        if value.parts.len() != n {
            return Err(other(format!(
                "invalid arguments <{}> to {}",
                value.raw,
                kind.name()
            )));
        }
        value.render_each(ev)
    };
    Ok(match kind {
        Kind::None => String::new(),
        Kind::Constant => value.constant(),
        Kind::Variable | Kind::Composed => value.render(ev)?,
        Kind::UsageDifference => {
            let v = fixed(2)?;
            let (end, start) = (time_of(&v[0], now)?, time_of(&v[1], now)?);
            let d = end - start;
            let ns = d
                .num_nanoseconds()
                .ok_or_else(|| other("overflow".into()))?;
            let text = rating::format_duration(Duration::from_nanos(ns.unsigned_abs()));
            if ns < 0 { format!("-{text}") } else { text }
        }
        Kind::Sum | Kind::Difference | Kind::Multiply | Kind::Divide => {
            arithmetic(kind, &value.render_each(ev)?).map_err(other)?
        }
        Kind::ValueExponent => {
            let v = fixed(2)?;
            let val: Decimal = v[0]
                .trim()
                .parse()
                .map_err(|_| other(format!("invalid value <{}> to *value_exponent", v[0])))?;
            let exp: i32 = v[1]
                .trim()
                .parse()
                .map_err(|_| other(format!("invalid exponent <{}>", v[1])))?;
            let ten = Decimal::TEN;
            let mut out = val;
            for _ in 0..exp.unsigned_abs() {
                out = if exp > 0 {
                    out.checked_mul(ten)
                } else {
                    out.checked_div(ten)
                }
                .ok_or_else(|| other("overflow in *value_exponent".into()))?;
            }
            format_decimal(
                out.round_dp_with_strategy(
                    ROUNDING_DECIMALS,
                    RoundingStrategy::MidpointAwayFromZero,
                ),
            )
        }
        Kind::UnixTimestamp => time_of(&value.render(ev)?, now)?.timestamp().to_string(),
        Kind::DateTime => {
            time_of(&value.render(ev)?, now)?.to_rfc3339_opts(SecondsFormat::AutoSi, true)
        }
        Kind::Prefix | Kind::Suffix => {
            let cur = ev
                .field(path)
                .ok_or_else(|| EvalError::NotFound(path.to_owned()))?
                .into_owned();
            let v = value.render(ev)?;
            if kind == Kind::Prefix {
                v + &cur
            } else {
                cur + &v
            }
        }
    })
}

/// A time as CGRateS's `ParseTimeDetectLayout` reads it: RFC 3339,
/// `2006-01-02 15:04:05`, unix seconds, `*now`.
fn time_of(s: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, EvalError> {
    let s = s.trim();
    if s == "*now" {
        return Ok(now);
    }
    if !s.is_empty()
        && s.bytes().all(|b| b.is_ascii_digit())
        && let Ok(secs) = s.parse::<i64>()
        && let Some(t) = DateTime::from_timestamp(secs, 0)
    {
        return Ok(t);
    }
    match crate::activation::parse_time(s) {
        Ok(Some(t)) => Ok(t),
        _ => Err(EvalError::Other(format!("cannot parse {s:?} as a time"))),
    }
}

/// A Go duration with a unit (`1m30s`, not a bare number).
fn as_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    if s.is_empty() || s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    rating::parse_duration(s).ok()
}

fn arithmetic(kind: Kind, vals: &[String]) -> Result<String, String> {
    let Some(first) = vals.first() else {
        return Err(format!("no values to {}", kind.name()));
    };
    if let Some(d0) = as_duration(first) {
        let mut acc = i128::try_from(d0.as_nanos()).map_err(|e| e.to_string())?;
        for v in &vals[1..] {
            let d = rating::parse_duration(v).map_err(|e| e.to_string())?;
            let n = i128::try_from(d.as_nanos()).map_err(|e| e.to_string())?;
            acc = match kind {
                Kind::Sum => acc.checked_add(n),
                Kind::Difference => acc.checked_sub(n),
                Kind::Multiply => acc.checked_mul(n),
                _ => acc.checked_div(n),
            }
            .ok_or_else(|| format!("overflow or division by zero in {}", kind.name()))?;
        }
        let text = rating::format_duration(Duration::from_nanos(
            u64::try_from(acc.unsigned_abs()).map_err(|e| e.to_string())?,
        ));
        return Ok(if acc < 0 { format!("-{text}") } else { text });
    }
    let num = |s: &String| {
        s.trim()
            .parse::<Decimal>()
            .map_err(|_| format!("cannot use {s:?} in {}", kind.name()))
    };
    let mut acc = num(first)?;
    for v in &vals[1..] {
        let n = num(v)?;
        acc = match kind {
            Kind::Sum => acc.checked_add(n),
            Kind::Difference => acc.checked_sub(n),
            Kind::Multiply => acc.checked_mul(n),
            _ => acc.checked_div(n),
        }
        .ok_or_else(|| format!("overflow or division by zero in {}", kind.name()))?;
    }
    Ok(format_decimal(acc))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Event;
    use serde_json::json;

    fn run(kind: &str, value: &str, path: &str) -> Result<String, EvalError> {
        let ev = Event::from_cgr_event(&json!({"Event": {
            "AnswerTime": "2024-01-01T10:00:00Z", "EndTime": "2024-01-01 10:01:30",
            "A": "10", "B": 2.5, "U1": "1m", "U2": "30s", "Num": "1.2345678",
            "Exp": "3", "Dest": "1234"}}));
        let now = DateTime::parse_from_rfc3339("2024-01-01T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        evaluate(
            Kind::parse(kind).unwrap(),
            &Template::parse(value, ';').unwrap(),
            path,
            &ev,
            now,
        )
    }

    #[test]
    fn every_type() {
        assert_eq!(run("*constant", "CGRateS.org", "").unwrap(), "CGRateS.org");
        assert_eq!(run("*constant", "~*req.A", "").unwrap(), "");
        assert_eq!(run("", "~*req.A", "").unwrap(), "10");
        assert_eq!(run("*variable", "x;~*req.A", "").unwrap(), "x10");
        assert_eq!(run("*composed", "~*req.A", "").unwrap(), "10");
        assert_eq!(
            run("*usage_difference", "~*req.EndTime;~*req.AnswerTime", "").unwrap(),
            "1m30s"
        );
        assert_eq!(
            run("*usage_difference", "~*req.AnswerTime;~*req.EndTime", "").unwrap(),
            "-1m30s"
        );
        assert!(run("*usage_difference", "~*req.A", "").is_err());
        assert!(run("*usage_difference", "x;~*req.EndTime", "").is_err());
        assert_eq!(run("*sum", "~*req.A;~*req.B;1", "").unwrap(), "13.5");
        assert_eq!(run("*sum", "~*req.U1;~*req.U2", "").unwrap(), "1m30s");
        assert_eq!(run("*difference", "~*req.A;~*req.B", "").unwrap(), "7.5");
        assert_eq!(run("*difference", "~*req.U2;~*req.U1", "").unwrap(), "-30s");
        assert_eq!(run("*multiply", "~*req.A;~*req.B", "").unwrap(), "25");
        assert_eq!(run("*divide", "~*req.A;4", "").unwrap(), "2.5");
        assert!(run("*divide", "~*req.A;0", "").is_err());
        assert!(run("*sum", "~*req.A;abc", "").is_err());
        assert_eq!(
            run("*value_exponent", "~*req.Num;~*req.Exp", "").unwrap(),
            "1234.5678"
        );
        assert_eq!(
            run("*value_exponent", "~*req.Num;-1", "").unwrap(),
            "0.12346"
        );
        assert!(run("*value_exponent", "x;1", "").is_err());
        assert_eq!(
            run("*unix_timestamp", "~*req.AnswerTime", "").unwrap(),
            "1704103200"
        );
        assert_eq!(
            run("*date_time", "~*req.EndTime", "").unwrap(),
            "2024-01-01T10:01:30Z"
        );
        assert_eq!(run("*unix_timestamp", "*now", "").unwrap(), "1704110400");
        assert_eq!(run("*prefix", "+", "*req.Dest").unwrap(), "+1234");
        assert_eq!(run("*suffix", "#", "*req.Dest").unwrap(), "1234#");
        assert!(matches!(
            run("*prefix", "+", "*req.Nope"),
            Err(EvalError::NotFound(_))
        ));
        assert_eq!(run("*none", "", "").unwrap(), "");
        assert_eq!(Kind::parse("*bogus"), None);
        assert_eq!(Kind::Sum.name(), "*sum");
    }
}
