//! Export and import templates, sans-IO: a list of fields, each a value
//! read from a record (a stored [`crate::Cdr`] for exporters, a CSV row
//! for importers) and formatted (time layout, cost rounding, fixed width
//! padding and truncation), in the spirit of CGRateS's `cdre` / `ees` /
//! `ers` field templates.
//!
//! A field's `value` is read by its `type`:
//! - `*variable` (the default): one path, `~*req.Account`, `~Account` or
//!   `Account` (for a CDR: its CGRateS field names, `ExtraFields` keys
//!   too; for a CSV row: `~*req.2`, the third column). An empty `value`
//!   takes the field's `path`. A path may end in a conversion:
//!   `{*duration_seconds}`, `{*duration_nanoseconds}`, `{*duration}`;
//! - `*constant`: `value` itself;
//! - `*composed`: `value` split on `;`, each item a path when it starts
//!   with `~`, otherwise text, concatenated;
//! - `*filler`: `value` (spaces by default) to the field's `width`.
//!
//! Times are written with `layout` (Go's layouts, RFC 3339 by default, see
//! [`layout`]), durations as Go prints them (`1m30s`), costs with
//! `rounding_decimals` decimals when set (half away from zero; a CDR
//! without a cost is `-1`, as CGRateS stores it). With a `width` the text
//! is padded (`padding`: `right` (default), `left`, `zeroleft`,
//! `zeroright`) or cut (`strip`: `right` (default: the end is cut),
//! `left`, `xright` / `xleft`: cut and marked with an `x`).

pub mod layout;
mod source;

use std::time::Duration;

use capture::Timestamp;
use chrono::{DateTime, Utc};
use rust_decimal::{Decimal, RoundingStrategy};
use serde::Deserialize;

pub use source::{CdrSource, RowSource, cdr_event_fields};

/// One field of a template as configured.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct FieldSpec {
    /// The field's name: the CSV header, the JSON key (default: from
    /// `path`, else from the value's path).
    #[serde(default)]
    pub tag: String,
    /// Export: where the value comes from when `value` is empty
    /// (`~*req.Account`, `CGRID`); `*exp.X` / `*cgreq.X` name the output.
    /// Import: the event field set (`Account` or `*cgreq.Account`).
    #[serde(default)]
    pub path: String,
    /// `*variable` (default), `*constant`, `*composed`, `*filler`.
    #[serde(default, rename = "type")]
    pub kind: String,
    /// What is written; see the module documentation.
    #[serde(default)]
    pub value: String,
    /// Fixed width in characters (0: as long as it is).
    #[serde(default)]
    pub width: usize,
    /// `right` (default), `left`, `zeroleft` or `zeroright`: where (and
    /// with what) a short value is padded.
    #[serde(default)]
    pub padding: String,
    /// `right` (default), `left`, `xright` or `xleft`: which end of a long
    /// value is cut (`x...`: the cut marked with an `x`).
    #[serde(default)]
    pub strip: String,
    /// Decimals of a cost (none: as stored).
    #[serde(default, alias = "rounding_decimals")]
    pub rounding_decimals: Option<u32>,
    /// Time layout (Go's, or strftime with `%`).
    #[serde(default)]
    pub layout: String,
    /// An empty value is an error (the record is refused).
    #[serde(default)]
    pub mandatory: bool,
}

/// A value read from a record, before formatting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Val {
    /// Text as it is.
    Text(String),
    /// A time (UTC).
    Time(Timestamp),
    /// A duration.
    Duration(Duration),
    /// Money or another exact number.
    Decimal(Decimal),
}

/// What a template reads values from. `path` comes without its `~`.
pub trait Source {
    /// The value at `path`; `None` when the record has none.
    fn get(&self, path: &str) -> Option<Val>;
}

/// A template field that cannot be used, or a record it refuses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct TemplateError(pub String);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Conv {
    None,
    Seconds,
    Nanos,
    GoDuration,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Item {
    Text(String),
    Path(String, Conv),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pad {
    Right,
    Left,
    ZeroLeft,
    ZeroRight,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Strip {
    /// The end is cut.
    Right,
    /// The start is cut.
    Left,
    /// The end is cut and the last character kept is an `x`.
    XRight,
    /// The start is cut and the first character kept is an `x`.
    XLeft,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Field {
    name: String,
    items: Vec<Item>,
    width: usize,
    pad: Pad,
    strip: Strip,
    rounding: Option<u32>,
    layout: layout::Layout,
    mandatory: bool,
}

/// A checked template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    fields: Vec<Field>,
}

/// A path with its `~`, `*req.` (or `*cgreq.`, `*exp.`, `*cdr.`) prefix
/// removed.
fn bare(path: &str) -> &str {
    let p = path.trim().trim_start_matches('~');
    ["*req.", "*cgreq.", "*exp.", "*cdr.", "*hdr.", "*trl."]
        .iter()
        .find_map(|pre| p.strip_prefix(pre))
        .unwrap_or(p)
}

fn path_item(raw: &str, what: &str) -> Result<Item, TemplateError> {
    let raw = raw.trim().trim_start_matches('~');
    let (path, conv) = match raw.split_once('{') {
        None => (raw, Conv::None),
        Some((p, c)) => {
            let conv = match c.strip_suffix('}') {
                Some("*duration_seconds") => Conv::Seconds,
                Some("*duration_nanoseconds") => Conv::Nanos,
                Some("*duration") => Conv::GoDuration,
                _ => {
                    return Err(TemplateError(format!(
                        "{what}: unknown conversion {{{c} (known: *duration_seconds, *duration_nanoseconds, *duration)"
                    )));
                }
            };
            (p, conv)
        }
    };
    if path.is_empty() {
        return Err(TemplateError(format!("{what}: empty path")));
    }
    Ok(Item::Path(path.to_owned(), conv))
}

impl Field {
    fn new(i: usize, s: &FieldSpec) -> Result<Field, TemplateError> {
        let what = format!(
            "field {} ({})",
            i + 1,
            if s.tag.is_empty() { &s.path } else { &s.tag }
        );
        let items = match s.kind.as_str() {
            "" | "*variable" | "*cdrfield" => {
                let v = if s.value.is_empty() {
                    &s.path
                } else {
                    &s.value
                };
                vec![path_item(v, &what)?]
            }
            "*constant" => vec![Item::Text(s.value.clone())],
            "*filler" => {
                if s.width == 0 {
                    return Err(TemplateError(format!("{what}: *filler needs a width")));
                }
                vec![Item::Text(s.value.clone())]
            }
            "*composed" => s
                .value
                .split(';')
                .map(|p| {
                    if p.starts_with('~') {
                        path_item(p, &what)
                    } else {
                        Ok(Item::Text(p.to_owned()))
                    }
                })
                .collect::<Result<_, _>>()?,
            other => {
                return Err(TemplateError(format!(
                    "{what}: unknown type {other:?} (known: *variable, *constant, *composed, *filler)"
                )));
            }
        };
        let pad = match s.padding.as_str() {
            "" | "right" => Pad::Right,
            "left" => Pad::Left,
            "zeroleft" => Pad::ZeroLeft,
            "zeroright" => Pad::ZeroRight,
            other => {
                return Err(TemplateError(format!(
                    "{what}: unknown padding {other:?} (right, left, zeroleft, zeroright)"
                )));
            }
        };
        let strip = match s.strip.as_str() {
            "" | "right" => Strip::Right,
            "left" => Strip::Left,
            "xright" => Strip::XRight,
            "xleft" => Strip::XLeft,
            other => {
                return Err(TemplateError(format!(
                    "{what}: unknown strip {other:?} (right, left, xright, xleft)"
                )));
            }
        };
        let name = if !s.tag.is_empty() {
            s.tag.clone()
        } else if !s.path.is_empty() {
            bare(&s.path).to_owned()
        } else {
            match items.first() {
                Some(Item::Path(p, _)) => bare(p).to_owned(),
                _ => String::new(),
            }
        };
        Ok(Field {
            name,
            items,
            width: s.width,
            pad,
            strip,
            rounding: s.rounding_decimals,
            layout: layout::Layout::new(&s.layout),
            mandatory: s.mandatory,
        })
    }

    fn text(&self, v: Val, conv: Conv) -> String {
        match (v, conv) {
            (Val::Duration(d), Conv::Seconds) => {
                let ns = Decimal::from(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
                (ns / Decimal::from(1_000_000_000u64))
                    .normalize()
                    .to_string()
            }
            (Val::Duration(d), Conv::Nanos) => d.as_nanos().to_string(),
            (Val::Duration(d), _) => rating::format_duration(d),
            (Val::Text(t), Conv::Seconds | Conv::Nanos) => match rating::parse_duration(&t) {
                Ok(d) => self.text(Val::Duration(d), conv),
                Err(_) => t,
            },
            (Val::Text(t), _) => t,
            (Val::Time(ts), _) => {
                match DateTime::<Utc>::from_timestamp(ts.secs(), ts.subsec_nanos()) {
                    Some(t) => self.layout.format(t),
                    None => crate::cdr::rfc3339(ts),
                }
            }
            (Val::Decimal(d), _) => match self.rounding {
                Some(n) => {
                    let mut r = d.round_dp_with_strategy(n, RoundingStrategy::MidpointAwayFromZero);
                    r.rescale(n);
                    r.to_string()
                }
                None => d.to_string(),
            },
        }
    }

    fn render(&self, src: &dyn Source) -> Result<String, TemplateError> {
        let mut out = String::new();
        for item in &self.items {
            match item {
                Item::Text(t) => out.push_str(t),
                Item::Path(p, conv) => {
                    if let Some(v) = src.get(bare(p)) {
                        out.push_str(&self.text(v, *conv));
                    }
                }
            }
        }
        if self.mandatory && out.is_empty() {
            return Err(TemplateError(format!(
                "field {:?} is mandatory and empty",
                self.name
            )));
        }
        Ok(fit(&out, self.width, self.pad, self.strip))
    }
}

/// `s` to exactly `width` characters (0: unchanged): padded with spaces
/// (zeros for `ZeroLeft`) or cut.
fn fit(s: &str, width: usize, pad: Pad, strip: Strip) -> String {
    if width == 0 {
        return s.to_owned();
    }
    let n = s.chars().count();
    if n > width {
        return match strip {
            Strip::Right => s.chars().take(width).collect(),
            Strip::Left => s.chars().skip(n - width).collect(),
            Strip::XRight => {
                let mut t: String = s.chars().take(width - 1).collect();
                t.push('x');
                t
            }
            Strip::XLeft => {
                let mut t = String::from("x");
                t.extend(s.chars().skip(n - width + 1));
                t
            }
        };
    }
    let fill = width - n;
    match pad {
        Pad::Right => format!("{s}{}", " ".repeat(fill)),
        Pad::Left => format!("{}{s}", " ".repeat(fill)),
        Pad::ZeroLeft => format!("{}{s}", "0".repeat(fill)),
        Pad::ZeroRight => format!("{s}{}", "0".repeat(fill)),
    }
}

impl Template {
    /// Checks every field.
    ///
    /// # Errors
    /// An unknown type, padding, strip or conversion; a `*variable` field
    /// without a path; a `*filler` without a width.
    pub fn new(specs: &[FieldSpec]) -> Result<Template, TemplateError> {
        let fields = specs
            .iter()
            .enumerate()
            .map(|(i, s)| Field::new(i, s))
            .collect::<Result<_, _>>()?;
        Ok(Template { fields })
    }

    /// Whether the template has no field.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// The fields' names (a CSV header).
    #[must_use]
    pub fn names(&self) -> Vec<String> {
        self.fields.iter().map(|f| f.name.clone()).collect()
    }

    /// Each field's text, in order.
    ///
    /// # Errors
    /// A mandatory field is empty.
    pub fn render(&self, src: &dyn Source) -> Result<Vec<String>, TemplateError> {
        self.fields.iter().map(|f| f.render(src)).collect()
    }

    /// Each field's name and text; an empty text is left out.
    ///
    /// # Errors
    /// A mandatory field is empty.
    pub fn render_named(&self, src: &dyn Source) -> Result<Vec<(String, String)>, TemplateError> {
        let mut out = Vec::with_capacity(self.fields.len());
        for f in &self.fields {
            let v = f.render(src)?;
            if !v.is_empty() {
                out.push((f.name.clone(), v));
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests;
