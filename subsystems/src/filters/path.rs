//! CGRateS's RSRParser for a rule's element and values: a constant text,
//! or a dynamic path `~*req.Account` optionally followed by
//! search-and-replace rules (`~*req.Account:s/^10(\d+)$/$1/`) and data
//! converters (`~*req.Usage{*duration_seconds}`); and CGRateS's
//! RSRFilter, the values of a `*rsr` rule (`~regex`, `^prefix`,
//! `suffix$`, `^exact$`, `^$`, `>=N`, `<N`, `!negated`, else "contains").

use std::borrow::Cow;

use regex::Regex;
use serde_json::Value;

use super::value::{Typed, compare, go_duration};
use crate::event::DataProvider;

/// A data converter applied to a path's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Converter {
    /// `*duration_seconds`: a duration (Go or nanoseconds) as seconds.
    DurationSeconds,
    /// `*duration_nanoseconds`: a duration as nanoseconds.
    DurationNanoseconds,
    /// `*len`: the length of the text.
    Len,
}

/// A compiled element or value.
#[derive(Debug, Clone)]
pub(crate) struct Path {
    /// The path without `~` (dynamic), or the constant text.
    text: String,
    dynamic: bool,
    replaces: Vec<(Regex, String)>,
    converters: Vec<Converter>,
}

impl Path {
    /// Compiles `rule`; `Ok(None)` for "".
    pub(crate) fn compile(rule: &str) -> Result<Option<Path>, String> {
        if rule.is_empty() {
            return Ok(None);
        }
        let mut body = rule;
        let mut converters = Vec::new();
        if let Some(at) = body.find("{*") {
            let Some(inner) = body[at + 1..].strip_suffix('}') else {
                return Err(format!("invalid converter terminator in rule: <{rule}>"));
            };
            for c in inner.split('&') {
                converters.push(match c {
                    "*duration_seconds" => Converter::DurationSeconds,
                    "*duration_nanoseconds" => Converter::DurationNanoseconds,
                    "*len" => Converter::Len,
                    other => return Err(format!("unsupported converter <{other}> in <{rule}>")),
                });
            }
            body = &body[..at];
        }
        if !body.starts_with('~') || body.len() == 1 {
            return Ok(Some(Path {
                text: body.to_owned(),
                dynamic: false,
                replaces: Vec::new(),
                converters,
            }));
        }
        if body.contains('<') {
            return Err(format!(
                "dynamic <...> parts are not supported in rule: <{rule}>"
            ));
        }
        let mut parts = body.split(":s/");
        let path = parts.next().unwrap_or_default();
        let mut replaces = Vec::new();
        for r in parts {
            let bad = || format!("invalid search&replace rule: <{rule}>");
            let inner = r.strip_suffix('/').ok_or_else(bad)?;
            let (re, tmpl) = inner.rsplit_once('/').ok_or_else(bad)?;
            if re.is_empty() {
                return Err(bad());
            }
            let re = Regex::new(re).map_err(|e| format!("{e} in rule: <{rule}>"))?;
            replaces.push((re, tmpl.to_owned()));
        }
        Ok(Some(Path {
            text: path[1..].to_owned(),
            dynamic: true,
            replaces,
            converters,
        }))
    }

    /// The constant `text`.
    pub(crate) fn constant(text: &str) -> Path {
        Path {
            text: text.to_owned(),
            dynamic: false,
            replaces: Vec::new(),
            converters: Vec::new(),
        }
    }

    /// The value as text: `Ok(None)` when the path leads nowhere.
    ///
    /// # Errors
    /// A converter that cannot convert the value.
    pub(crate) fn eval<'a>(
        &'a self,
        dp: &'a dyn DataProvider,
    ) -> Result<Option<Cow<'a, str>>, String> {
        let mut v = if self.dynamic {
            match dp.field(&self.text) {
                Some(v) => v,
                None => return Ok(None),
            }
        } else {
            Cow::Borrowed(self.text.as_str())
        };
        for (re, tmpl) in &self.replaces {
            if let Some(caps) = re.captures(&v) {
                let mut out = String::new();
                caps.expand(tmpl, &mut out);
                v = Cow::Owned(out);
            }
        }
        for c in &self.converters {
            v = Cow::Owned(convert(*c, &v)?);
        }
        Ok(Some(v))
    }

    /// Whether the path exists (constants always do).
    pub(crate) fn exists(&self, dp: &dyn DataProvider) -> bool {
        !self.dynamic || dp.field(&self.text).is_some()
    }

    /// Whether the path is absent or holds an empty value ("", null, [],
    /// {}); numbers and booleans are not empty.
    pub(crate) fn is_empty(&self, dp: &dyn DataProvider) -> bool {
        if !self.dynamic {
            return self.text.is_empty();
        }
        if let Some(v) = dp.value(&self.text) {
            return match v {
                Value::Null => true,
                Value::String(s) => s.is_empty(),
                Value::Array(a) => a.is_empty(),
                Value::Object(o) => o.is_empty(),
                Value::Bool(_) | Value::Number(_) => false,
            };
        }
        dp.field(&self.text).is_none_or(|s| s.is_empty())
    }
}

fn convert(c: Converter, v: &str) -> Result<String, String> {
    let nanos = || {
        v.parse::<i64>()
            .ok()
            .or_else(|| go_duration(v))
            .ok_or_else(|| format!("cannot convert <{v}> to a duration"))
    };
    Ok(match c {
        Converter::DurationNanoseconds => nanos()?.to_string(),
        Converter::DurationSeconds => rust_decimal::Decimal::new(nanos()?, 9)
            .normalize()
            .to_string(),
        Converter::Len => v.len().to_string(),
    })
}

/// One value of a `*rsr` rule (CGRateS's RSRFilter).
#[derive(Debug, Clone)]
pub(crate) struct RsrFilter {
    /// The rule without its `!`.
    rule: String,
    negative: bool,
    regex: Option<Regex>,
}

impl RsrFilter {
    pub(crate) fn compile(s: &str) -> Result<RsrFilter, String> {
        let (negative, rule) = match s.strip_prefix('!') {
            Some(r) => (true, r),
            None => (false, s),
        };
        let regex = match rule.strip_prefix('~') {
            Some(re) => Some(Regex::new(re).map_err(|e| format!("{e} in <{s}>"))?),
            None => None,
        };
        Ok(RsrFilter {
            rule: rule.to_owned(),
            negative,
            regex,
        })
    }

    /// The rule text (CGRateS's `FilterRule()`).
    pub(crate) fn rule(&self) -> &str {
        &self.rule
    }

    pub(crate) fn pass(&self, val: &str) -> bool {
        let r = self.rule.as_str();
        if r.is_empty() {
            return !self.negative;
        }
        if let Some(re) = &self.regex {
            return re.is_match(val) != self.negative;
        }
        if r == "^$" {
            return val.is_empty() != self.negative;
        }
        if let Some(p) = r.strip_prefix('^') {
            if let Some(exact) = p.strip_suffix('$') {
                return (val == exact) != self.negative;
            }
            return val.starts_with(p) != self.negative;
        }
        if let Some(s) = r.strip_suffix('$') {
            return val.ends_with(s) != self.negative;
        }
        // (value, rule-side, swapped, or-equal)
        let cmp = if r.len() > 2 && r.starts_with(">=") {
            Some((&r[2..], false, true))
        } else if r.len() > 2 && r.starts_with("<=") {
            Some((&r[2..], true, true))
        } else if let Some(x) = r.strip_prefix('>') {
            Some((x, false, false))
        } else {
            r.strip_prefix('<').map(|x| (x, true, false))
        };
        if let Some((other, swapped, or_equal)) = cmp {
            let epoch = chrono::DateTime::<chrono::Utc>::UNIX_EPOCH;
            let (a, b) = (Typed::parse(val, epoch), Typed::parse(other, epoch));
            let (a, b) = if swapped { (b, a) } else { (a, b) };
            return match compare(a, b) {
                Ok(o) => {
                    let gt = o == std::cmp::Ordering::Greater
                        || (or_equal && o == std::cmp::Ordering::Equal);
                    gt != self.negative
                }
                Err(_) => false,
            };
        }
        val.contains(r) != self.negative
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Event;
    use serde_json::json;

    #[test]
    fn paths_constants_replaces_and_converters() {
        let ev = Event::from_cgr_event(&json!({"Event": {"Account": "1001", "Usage": "90s"}}));
        let eval = |r: &str| {
            Path::compile(r)
                .unwrap()
                .unwrap()
                .eval(&ev)
                .unwrap()
                .map(Cow::into_owned)
        };
        assert_eq!(eval("~*req.Account").as_deref(), Some("1001"));
        assert_eq!(eval("*req.Account").as_deref(), Some("*req.Account"));
        assert_eq!(eval("~*req.Nope"), None);
        assert_eq!(
            eval(r"~*req.Account:s/^10(\d+)$/$1/").as_deref(),
            Some("01")
        );
        assert_eq!(
            eval(r"~*req.Account:s/^20(\d+)$/$1/").as_deref(),
            Some("1001")
        );
        assert_eq!(
            eval(r"~*req.Account:s/^1(\d+)$/${1}x/:s/^0(.*)$/+$1/").as_deref(),
            Some("+01x")
        );
        assert_eq!(
            eval("~*req.Usage{*duration_seconds}").as_deref(),
            Some("90")
        );
        assert_eq!(
            eval("~*req.Usage{*duration_nanoseconds}").as_deref(),
            Some("90000000000")
        );
        assert_eq!(eval("~*req.Account{*len}").as_deref(), Some("4"));
        assert!(Path::compile("~*req.A{*nope}").is_err());
        assert!(Path::compile("~*req.A{*len").is_err());
        assert!(Path::compile("~*req.A:s/(/x/").is_err());
        assert!(Path::compile("~*req.A:s/x").is_err());
        assert!(Path::compile("").unwrap().is_none());
    }

    #[test]
    fn rsr_filters() {
        for (rule, val, want) in [
            ("", "x", true),
            ("!", "x", false),
            ("~^10\\d+$", "1001", true),
            ("!~^10\\d+$", "1001", false),
            ("^$", "", true),
            ("^$", "a", false),
            ("^10", "1001", true),
            ("^1001$", "1001", true),
            ("^100$", "1001", false),
            ("01$", "1001", true),
            ("!01$", "1001", false),
            (">=10", "10", true),
            (">10", "10", false),
            ("<=10", "10", true),
            ("<10", "9", true),
            ("<10", "abc", false),
            ("00", "1001", true),
            ("02", "1001", false),
        ] {
            assert_eq!(
                RsrFilter::compile(rule).unwrap().pass(val),
                want,
                "{rule} on {val}"
            );
        }
        assert!(RsrFilter::compile("~(").is_err());
    }
}
