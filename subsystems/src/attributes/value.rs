//! An attribute's Value column: CGRateS's RSR parsers. The text is split
//! on `;` (`&` in inline profiles) into parts; a part is a constant, or a
//! path read from the event (`~*req.Destination`) optionally followed by
//! search-and-replace rules (`:s/^0049(\d+)/+49$1/`, applied in turn; a
//! rule whose regex does not match leaves the text as it is, one that
//! matches yields its template expanded) and converters
//! (`{*duration_seconds&*round:2}`).

use std::borrow::Cow;

use regex::Regex;
use rust_decimal::{Decimal, RoundingStrategy};

use crate::event::DataProvider;

/// Why a value could not be computed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EvalError {
    /// A path the event does not hold (CGRateS answers NOT_FOUND).
    NotFound(String),
    /// Anything else (CGRateS's SERVER_ERROR).
    Other(String),
}

/// One search-and-replace rule (`s/search/replace/`).
#[derive(Debug, Clone)]
pub struct Replace {
    /// The regex searched for.
    pub search: Regex,
    /// The template the match expands (`$1`, `${name}`).
    pub replace: String,
}

/// A converter applied after the rules (`{*duration_seconds}`).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Converter {
    /// `*duration_seconds`: a duration as (fractional) seconds.
    DurationSeconds,
    /// `*duration_nanoseconds`: a duration as nanoseconds.
    DurationNanoseconds,
    /// `*duration`: a duration as Go prints one (`1m30s`).
    Duration,
    /// `*round:N`: a number rounded half away from zero to N decimals.
    Round(u32),
    /// `*multiply:X`.
    Multiply(Decimal),
    /// `*divide:X`.
    Divide(Decimal),
}

impl Converter {
    fn parse(s: &str) -> Result<Converter, String> {
        let (name, arg) = s.split_once(':').unwrap_or((s, ""));
        let num = |a: &str| {
            a.parse::<Decimal>()
                .map_err(|_| format!("converter {s}: {a:?} is not a number"))
        };
        Ok(match name {
            "*duration_seconds" => Converter::DurationSeconds,
            "*duration_nanoseconds" => Converter::DurationNanoseconds,
            "*duration" => Converter::Duration,
            "*round" => {
                let digits = if arg.is_empty() {
                    0
                } else {
                    arg.split(':')
                        .next()
                        .unwrap_or("")
                        .parse::<u32>()
                        .map_err(|_| format!("converter {s}: bad decimals"))?
                };
                Converter::Round(digits)
            }
            "*multiply" => Converter::Multiply(num(arg)?),
            "*divide" => {
                let d = num(arg)?;
                if d.is_zero() {
                    return Err(format!("converter {s}: division by zero"));
                }
                Converter::Divide(d)
            }
            _ => return Err(format!("unsupported converter {s:?}")),
        })
    }

    fn apply(&self, v: &str) -> Result<String, String> {
        let dec = || {
            v.trim()
                .parse::<Decimal>()
                .map_err(|_| format!("not a number: {v:?}"))
        };
        let dur = || rating::parse_duration(v).map_err(|e| e.to_string());
        Ok(match self {
            Converter::DurationSeconds => {
                let ns = Decimal::from(u64::try_from(dur()?.as_nanos()).unwrap_or(u64::MAX));
                format_decimal(ns / Decimal::from(1_000_000_000_u64))
            }
            Converter::DurationNanoseconds => dur()?.as_nanos().to_string(),
            Converter::Duration => rating::format_duration(dur()?),
            Converter::Round(n) => format_decimal(
                dec()?.round_dp_with_strategy(*n, RoundingStrategy::MidpointAwayFromZero),
            ),
            Converter::Multiply(x) => format_decimal(
                dec()?
                    .checked_mul(*x)
                    .ok_or_else(|| format!("overflow multiplying {v}"))?,
            ),
            Converter::Divide(x) => format_decimal(
                dec()?
                    .checked_div(*x)
                    .ok_or_else(|| format!("overflow dividing {v}"))?,
            ),
        })
    }
}

/// A number as CGRateS prints it (`strconv.FormatFloat(f, 'f', -1)`):
/// no trailing zeros.
#[must_use]
pub fn format_decimal(d: Decimal) -> String {
    d.normalize().to_string()
}

/// One part of a value.
#[derive(Debug, Clone)]
pub enum Part {
    /// Text used as it is.
    Const(String),
    /// A path read from the event, then rules and converters.
    Dynamic {
        /// The path without `~` (`*req.Account`).
        path: String,
        /// Search-and-replace rules, in order.
        rules: Vec<Replace>,
        /// Converters, in order.
        converters: Vec<Converter>,
    },
}

/// A parsed value: its text as written and its parts.
#[derive(Debug, Clone)]
pub struct Template {
    /// The text as written (the API shows it).
    pub raw: String,
    /// The parts' texts as written.
    pub raw_parts: Vec<String>,
    /// The parts.
    pub parts: Vec<Part>,
}

impl PartialEq for Template {
    fn eq(&self, other: &Self) -> bool {
        self.raw == other.raw
    }
}

impl Template {
    /// Parses `raw`, its parts separated by `sep`.
    ///
    /// # Errors
    /// A rule or converter that does not parse.
    pub fn parse(raw: &str, sep: char) -> Result<Template, String> {
        let raw_parts: Vec<String> = if raw.is_empty() {
            Vec::new()
        } else {
            raw.split(sep).map(str::to_owned).collect()
        };
        let parts = raw_parts
            .iter()
            .map(|p| parse_part(p))
            .collect::<Result<_, _>>()?;
        Ok(Template {
            raw: raw.to_owned(),
            raw_parts,
            parts,
        })
    }

    /// The value with dynamic parts read from `dp`, parts joined.
    ///
    /// # Errors
    /// A path the event does not hold, a converter that fails.
    pub fn render(&self, dp: &dyn DataProvider) -> Result<String, EvalError> {
        let mut out = String::new();
        for p in &self.parts {
            out.push_str(&render_part(p, dp)?);
        }
        Ok(out)
    }

    /// Each part rendered on its own.
    ///
    /// # Errors
    /// As [`Template::render`].
    pub fn render_each(&self, dp: &dyn DataProvider) -> Result<Vec<String>, EvalError> {
        self.parts.iter().map(|p| render_part(p, dp)).collect()
    }

    /// The constant parts joined (dynamic parts read as empty): what
    /// `*constant` substitutes.
    #[must_use]
    pub fn constant(&self) -> String {
        self.parts
            .iter()
            .map(|p| match p {
                Part::Const(s) => s.as_str(),
                Part::Dynamic { .. } => "",
            })
            .collect()
    }
}

fn render_part(p: &Part, dp: &dyn DataProvider) -> Result<String, EvalError> {
    match p {
        Part::Const(s) => Ok(s.clone()),
        Part::Dynamic {
            path,
            rules,
            converters,
        } => {
            let got: Cow<'_, str> = dp
                .field(path)
                .ok_or_else(|| EvalError::NotFound(path.clone()))?;
            let mut v = got.into_owned();
            for r in rules {
                if let Some(caps) = r.search.captures(&v) {
                    let mut out = String::new();
                    caps.expand(&r.replace, &mut out);
                    v = out;
                }
            }
            for c in converters {
                v = c.apply(&v).map_err(EvalError::Other)?;
            }
            Ok(v)
        }
    }
}

fn parse_part(p: &str) -> Result<Part, String> {
    let Some(rest) = p.strip_prefix('~') else {
        return Ok(Part::Const(p.to_owned()));
    };
    let (rest, converters) = match rest.strip_suffix('}').and_then(|r| r.rsplit_once('{')) {
        Some((body, convs)) => (
            body,
            convs
                .split('&')
                .filter(|c| !c.is_empty())
                .map(Converter::parse)
                .collect::<Result<Vec<_>, _>>()?,
        ),
        None => (rest, Vec::new()),
    };
    let (path, mut rules_text) = match rest.find(":s/") {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    if path.is_empty() {
        return Err(format!("no path in {p:?}"));
    }
    // Older plans read event fields without the `*req.` prefix.
    let path = if path.starts_with('*') {
        path.to_owned()
    } else {
        format!("*req.{path}")
    };
    let mut rules = Vec::new();
    while let Some(r) = rules_text.strip_prefix(":s/") {
        let (search, after) =
            split_unescaped(r).ok_or_else(|| format!("unterminated rule in {p:?}"))?;
        let (replace, after) =
            split_unescaped(after).ok_or_else(|| format!("unterminated rule in {p:?}"))?;
        let search = Regex::new(&search).map_err(|e| format!("bad regex in {p:?}: {e}"))?;
        rules.push(Replace { search, replace });
        rules_text = after;
    }
    if !rules_text.is_empty() {
        return Err(format!("cannot read {rules_text:?} in {p:?}"));
    }
    Ok(Part::Dynamic {
        path,
        rules,
        converters,
    })
}

/// The text up to the first `/` not escaped by `\` (with `\/` read as
/// `/`), and what follows that slash.
fn split_unescaped(s: &str) -> Option<(String, &str)> {
    let mut out = String::new();
    let mut chars = s.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some((_, '/')) => out.push('/'),
                Some((_, other)) => {
                    out.push('\\');
                    out.push(other);
                }
                None => out.push('\\'),
            },
            '/' => return Some((out, &s[i + 1..])),
            other => out.push(other),
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Event;
    use serde_json::json;

    #[test]
    fn constants_paths_rules_and_converters() {
        let ev = Event::from_cgr_event(&json!({"Event": {
            "Destination": "00491234", "Usage": "1m30s", "Account": "1001"}}));
        let t = Template::parse("~*req.Destination:s/^0049(\\d+)$/+49${1}/", ';').unwrap();
        assert_eq!(t.render(&ev).unwrap(), "+491234");
        // no match: unchanged
        let t = Template::parse("~*req.Account:s/^0049(\\d+)$/+49$1/", ';').unwrap();
        assert_eq!(t.render(&ev).unwrap(), "1001");
        let t = Template::parse("~*req.Usage{*duration_seconds}", ';').unwrap();
        assert_eq!(t.render(&ev).unwrap(), "90");
        let t = Template::parse("~*req.Usage{*duration_seconds&*divide:60&*round:1}", ';').unwrap();
        assert_eq!(t.render(&ev).unwrap(), "1.5");
        let t = Template::parse("acc_;~Account", ';').unwrap();
        assert_eq!(t.render(&ev).unwrap(), "acc_1001");
        assert_eq!(t.constant(), "acc_");
        let t = Template::parse("~*req.Nope", ';').unwrap();
        assert_eq!(t.render(&ev), Err(EvalError::NotFound("*req.Nope".into())));
        let t = Template::parse("~*req.Account:s/a\\/b/x/", ';').unwrap();
        assert_eq!(t.render(&ev).unwrap(), "1001");
        assert!(Template::parse("~*req.A:s/(/x/", ';').is_err());
        assert!(Template::parse("~*req.A:s/x", ';').is_err());
        assert!(Template::parse("~*req.A{*bogus}", ';').is_err());
        assert!(Template::parse("~*req.A{*divide:0}", ';').is_err());
    }
}
