//! Time layouts of export templates: Go's reference-time layouts
//! (`2006-01-02T15:04:05Z07:00`, what CGRateS's `layout` takes), or a
//! strftime pattern when the layout holds a `%`.

use std::fmt::Write as _;

use chrono::{DateTime, Utc};

/// Go's layout tokens and their strftime equivalents, longest first where
/// one token starts another.
const TOKENS: &[(&str, &str)] = &[
    ("January", "%B"),
    ("Monday", "%A"),
    ("Z07:00", "Z07:00"),
    ("-07:00", "%:z"),
    ("Z0700", "Z0700"),
    ("-0700", "%z"),
    ("2006", "%Y"),
    ("Jan", "%b"),
    ("Mon", "%a"),
    ("MST", "UTC"),
    ("01", "%m"),
    ("02", "%d"),
    ("_2", "%e"),
    ("06", "%y"),
    ("15", "%H"),
    ("03", "%I"),
    ("04", "%M"),
    ("05", "%S"),
    ("PM", "%p"),
    ("pm", "%P"),
    ("1", "%-m"),
    ("2", "%-d"),
    ("3", "%-I"),
    ("4", "%-M"),
    ("5", "%-S"),
];

/// A layout ready to format times (UTC).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// The strftime pattern; `Z07:00` / `Z0700` are Go's "Z for UTC"
    /// zones, written as `Z` since every exported time is UTC.
    pattern: String,
}

/// Go's `time.RFC3339`, CGRateS's default layout.
pub const RFC3339: &str = "2006-01-02T15:04:05Z07:00";

impl Layout {
    /// Parses a Go layout, or a strftime pattern when `layout` holds `%`
    /// (and is a valid one).
    /// An empty layout is [`RFC3339`]. Characters that are no Go token are
    /// copied as they are.
    #[must_use]
    pub fn new(layout: &str) -> Layout {
        let layout = if layout.is_empty() { RFC3339 } else { layout };
        let strftime_ok = || {
            !chrono::format::StrftimeItems::new(layout)
                .any(|i| matches!(i, chrono::format::Item::Error))
        };
        if layout.contains('%') && strftime_ok() {
            return Layout {
                pattern: layout.to_owned(),
            };
        }
        let mut pattern = String::with_capacity(layout.len() * 2);
        let mut rest = layout;
        'outer: while !rest.is_empty() {
            // Fractional seconds: `.000` (fixed) or `.999` (trailing zeros
            // cut), any number of digits.
            if let Some(frac) = rest.strip_prefix(['.', ',']) {
                let n0 = frac.bytes().take_while(|b| *b == b'0').count();
                let n9 = frac.bytes().take_while(|b| *b == b'9').count();
                if n0 > 0 || n9 > 0 {
                    let (n, cut) = if n0 > 0 { (n0, false) } else { (n9, true) };
                    let n = n.min(9);
                    let _ = write!(pattern, "\u{1}{}{n}", if cut { 'c' } else { 'f' });
                    rest = &frac[n0.max(n9)..];
                    continue;
                }
            }
            for (go, strf) in TOKENS {
                if let Some(r) = rest.strip_prefix(go) {
                    pattern.push_str(strf);
                    rest = r;
                    continue 'outer;
                }
            }
            let Some(c) = rest.chars().next() else { break };
            if c == '%' {
                pattern.push_str("%%");
            } else {
                pattern.push(c);
            }
            rest = &rest[c.len_utf8()..];
        }
        Layout { pattern }
    }

    /// `t` in this layout.
    #[must_use]
    pub fn format(&self, t: DateTime<Utc>) -> String {
        let mut out = String::new();
        let mut rest = self.pattern.as_str();
        // Go-only pieces (fractions, `Z07:00`) are done here, the rest by
        // chrono.
        while !rest.is_empty() {
            let next = [rest.find('\u{1}'), rest.find("Z07:00"), rest.find("Z0700")]
                .into_iter()
                .flatten()
                .min();
            let Some(i) = next else {
                let _ = write!(out, "{}", t.format(rest));
                break;
            };
            let _ = write!(out, "{}", t.format(&rest[..i]));
            rest = &rest[i..];
            if let Some(r) = rest.strip_prefix("Z07:00") {
                out.push('Z');
                rest = r;
            } else if let Some(r) = rest.strip_prefix("Z0700") {
                out.push('Z');
                rest = r;
            } else {
                let b = rest.as_bytes();
                let cut = b.get(1) == Some(&b'c');
                let n = usize::from(b.get(2).copied().unwrap_or(b'9').saturating_sub(b'0'));
                rest = rest.get(3..).unwrap_or("");
                let digits = format!("{:09}", t.timestamp_subsec_nanos());
                let mut frac = &digits[..n.min(9)];
                if cut {
                    frac = frac.trim_end_matches('0');
                }
                if !frac.is_empty() {
                    out.push('.');
                    out.push_str(frac);
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t() -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000, 120_000_000).unwrap_or_default()
    }

    #[test]
    fn go_layouts() {
        let cases = [
            ("", "2023-11-14T22:13:20Z"),
            (RFC3339, "2023-11-14T22:13:20Z"),
            ("2006-01-02 15:04:05", "2023-11-14 22:13:20"),
            ("20060102150405", "20231114221320"),
            ("2006-01-02T15:04:05.000Z07:00", "2023-11-14T22:13:20.120Z"),
            (
                "2006-01-02T15:04:05.999999999Z07:00",
                "2023-11-14T22:13:20.12Z",
            ),
            ("02/01/06 03:04PM", "14/11/23 10:13PM"),
            ("Mon Jan _2 15:04:05 2006", "Tue Nov 14 22:13:20 2023"),
            ("2006-01-02T15:04:05-07:00", "2023-11-14T22:13:20+00:00"),
            ("%Y%m%d", "20231114"),
            // Not strftime: a Go layout, where `1` is the month, as Go does.
            ("100%", "1100%"),
        ];
        for (layout, want) in cases {
            assert_eq!(Layout::new(layout).format(t()), want, "{layout:?}");
        }
    }

    #[test]
    fn whole_seconds_cut_the_optional_fraction() {
        let whole = DateTime::from_timestamp(1_700_000_000, 0).unwrap_or_default();
        assert_eq!(
            Layout::new("15:04:05.999").format(whole),
            "22:13:20",
            "no dot when nothing is left"
        );
        assert_eq!(Layout::new("15:04:05.000").format(whole), "22:13:20.000");
    }
}
