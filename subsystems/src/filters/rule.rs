//! One filter rule: its type, element and values, compiled once (paths,
//! regular expressions, `*rsr` filters) and evaluated per event as
//! CGRateS master's `FilterRule.Pass` does.

use std::borrow::Cow;
use std::net::IpAddr;

use regex::Regex;

use super::FilterCtx;
use super::path::{Path, RsrFilter};
use super::value::{Typed, compare, equal, time_of};
use crate::Error;
use crate::event::DataProvider;

/// A rule type (without its `*not` negation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Kind {
    /// `*string`: equal to one of the values.
    String,
    /// `*prefix`: starts with one of the values.
    Prefix,
    /// `*suffix`: ends with one of the values.
    Suffix,
    /// `*contains`: contains one of the values.
    Contains,
    /// `*empty`: absent or empty.
    Empty,
    /// `*exists`: present.
    Exists,
    /// `*gt`: greater than one of the values (numbers, durations, times).
    Gt,
    /// `*gte`: greater than or equal.
    Gte,
    /// `*lt`: less than.
    Lt,
    /// `*lte`: less than or equal.
    Lte,
    /// `*eq`: equal by type (`60s` equals `60000000000`).
    Eq,
    /// `*destinations`: the number matches a prefix of one of the
    /// destination IDs.
    Destinations,
    /// `*timings`: the time is inside one of the timings.
    Timings,
    /// `*rsr`: CGRateS RSR filters on the element's value.
    Rsr,
    /// `*regex`: matches one of the regular expressions.
    Regex,
    /// `*ai`: the time is inside the activation interval
    /// `start|end` (either may be empty).
    Ai,
    /// `*ipnet`: the IP address is inside one of the CIDR networks.
    IpNet,
}

const NAMES: &[(&str, Kind)] = &[
    ("string", Kind::String),
    ("prefix", Kind::Prefix),
    ("suffix", Kind::Suffix),
    ("contains", Kind::Contains),
    ("empty", Kind::Empty),
    ("exists", Kind::Exists),
    ("gt", Kind::Gt),
    ("gte", Kind::Gte),
    ("lt", Kind::Lt),
    ("lte", Kind::Lte),
    ("eq", Kind::Eq),
    ("destinations", Kind::Destinations),
    ("timings", Kind::Timings),
    ("rsr", Kind::Rsr),
    ("regex", Kind::Regex),
    ("ai", Kind::Ai),
    ("ipnet", Kind::IpNet),
];

impl Kind {
    /// The rule type named `s` and whether it is negated (`*notstring`).
    #[must_use]
    pub fn parse(s: &str) -> Option<(Kind, bool)> {
        let (negated, base) = match s.strip_prefix("*not") {
            Some(rest) => (true, rest),
            None => (false, s.strip_prefix('*')?),
        };
        NAMES
            .iter()
            .find(|(n, _)| *n == base)
            .map(|(_, k)| (*k, negated))
    }

    /// The CGRateS name (`*string`), negated when `negated`.
    #[must_use]
    pub fn name(self, negated: bool) -> String {
        let base = NAMES
            .iter()
            .find(|(_, k)| *k == self)
            .map_or("", |(n, _)| *n);
        if negated {
            format!("*not{base}")
        } else {
            format!("*{base}")
        }
    }

    fn needs_values(self) -> bool {
        !matches!(self, Kind::Empty | Kind::Exists)
    }
}

/// The compiled values of a rule.
#[derive(Debug, Clone)]
enum Compiled {
    Paths(Vec<Path>),
    Regexes(Vec<Regex>),
    Rsr(Vec<RsrFilter>),
    /// v0.10's `*rsr` with no element: each value is a path with its
    /// filters in parentheses (`~*req.Account(~^10&!1001)`); all must
    /// pass.
    RsrV010(Vec<(Path, Vec<RsrFilter>)>),
    /// `*ai`: start (maybe absent) and end (maybe absent).
    Interval(Option<Path>, Option<Path>, bool),
    None,
}

/// One rule of a filter.
#[derive(Debug, Clone)]
pub struct Rule {
    /// The type.
    pub kind: Kind,
    /// `*not...`.
    pub negated: bool,
    /// The path read (`~*req.Account`) or a constant.
    pub element: String,
    /// The values compared with (constants or `~` paths).
    pub values: Vec<String>,
    path: Path,
    compiled: Compiled,
}

impl PartialEq for Rule {
    fn eq(&self, o: &Rule) -> bool {
        self.kind == o.kind
            && self.negated == o.negated
            && self.element == o.element
            && self.values == o.values
    }
}

impl Eq for Rule {}

impl Rule {
    /// A rule of type `ty` (`*string`, `*notprefix`...) on `element`,
    /// compiled.
    ///
    /// # Errors
    /// [`Error::Filter`]: an unknown type, a missing element or values, a
    /// value or element that does not compile.
    pub fn new(ty: &str, element: &str, values: Vec<String>) -> Result<Rule, Error> {
        let bad = |why: String| Error::Filter(why);
        let (kind, negated) =
            Kind::parse(ty).ok_or_else(|| bad(format!("Unsupported filter Type: {ty}")))?;
        if kind == Kind::Rsr && element.is_empty() && !values.is_empty() {
            let parsed = values
                .iter()
                .map(|v| rsr_v010(v).map_err(bad))
                .collect::<Result<_, _>>()?;
            return Ok(Rule {
                kind,
                negated,
                element: String::new(),
                values,
                path: Path::constant(""),
                compiled: Compiled::RsrV010(parsed),
            });
        }
        let Some(path) = Path::compile(element).map_err(bad)? else {
            return Err(bad(format!("Element is mandatory for Type: {ty}")));
        };
        if values.is_empty() && kind.needs_values() {
            return Err(bad(format!("Values is mandatory for Type: {ty}")));
        }
        let compiled = match kind {
            Kind::Empty | Kind::Exists => Compiled::None,
            Kind::Regex => Compiled::Regexes(
                values
                    .iter()
                    .map(|v| Regex::new(v).map_err(|e| bad(format!("{e} in filter value {v:?}"))))
                    .collect::<Result<_, _>>()?,
            ),
            Kind::Rsr => Compiled::Rsr(
                values
                    .iter()
                    .map(|v| RsrFilter::compile(v).map_err(bad))
                    .collect::<Result<_, _>>()?,
            ),
            Kind::Ai => {
                let p = |v: Option<&String>| match v {
                    Some(v) => Path::compile(v).map_err(bad),
                    None => Ok(None),
                };
                if values.len() > 2 {
                    return Err(bad(format!(
                        "*ai takes a start and an end, got {} values",
                        values.len()
                    )));
                }
                Compiled::Interval(p(values.first())?, p(values.get(1))?, values.len() == 2)
            }
            _ => Compiled::Paths(
                values
                    .iter()
                    .filter_map(|v| Path::compile(v).transpose())
                    .collect::<Result<_, _>>()
                    .map_err(bad)?,
            ),
        };
        Ok(Rule {
            kind,
            negated,
            element: element.to_owned(),
            values,
            path,
            compiled,
        })
    }

    /// Parses an inline rule `*type:element:v1|v2` (values may be absent
    /// for `*exists`/`*empty`; v0.10's `;` separates values when there is
    /// no `|`).
    ///
    /// # Errors
    /// [`Error::Filter`] for a malformed rule.
    pub fn parse_inline(s: &str) -> Result<Rule, Error> {
        let bad = || Error::Filter(format!("inline parse error for string: <{s}>"));
        let (ty, rest) = s.split_once(':').ok_or_else(bad)?;
        let end = element_end(rest).ok_or_else(bad)?;
        let (element, values) = (&rest[..end], &rest[end + 1..]);
        let (kind, _) = Kind::parse(ty)
            .ok_or_else(|| Error::Filter(format!("Unsupported filter Type: {ty}")))?;
        let values = if values.is_empty() {
            Vec::new()
        } else if values.contains('|')
            || kind == Kind::Regex
            || (kind == Kind::Rsr && !element.is_empty())
        {
            split_values(values, '|')
        } else {
            split_values(values, ';')
        };
        Rule::new(ty, element, values)
    }

    /// The type as CGRateS writes it (`*notstring`).
    #[must_use]
    pub fn type_name(&self) -> String {
        self.kind.name(self.negated)
    }

    /// Whether `ev` passes this rule.
    ///
    /// # Errors
    /// As CGRateS: values that do not compare (`*gt` on text), an element
    /// that is not a time (`*ai`, `*timings`), a converter that fails.
    pub fn pass(&self, ev: &dyn DataProvider, ctx: &FilterCtx<'_>) -> Result<bool, Error> {
        Ok(self.matches(ev, ctx).map_err(Error::Filter)? != self.negated)
    }

    fn matches(&self, ev: &dyn DataProvider, ctx: &FilterCtx<'_>) -> Result<bool, String> {
        match self.kind {
            Kind::Exists => return Ok(self.path.exists(ev)),
            Kind::Empty => return Ok(self.path.is_empty(ev)),
            _ => {}
        }
        if let Compiled::RsrV010(parsers) = &self.compiled {
            for (p, filters) in parsers {
                let Some(v) = p.eval(ev)? else {
                    return Ok(false);
                };
                if !filters.iter().all(|f| f.pass(&v)) {
                    return Ok(false);
                }
            }
            return Ok(true);
        }
        let got = self.path.eval(ev)?;
        match &self.compiled {
            Compiled::Rsr(fs) => {
                let Some(got) = got else {
                    let rules: String = fs.iter().map(RsrFilter::rule).collect();
                    return Ok(rules == "^$");
                };
                Ok(fs.is_empty() || fs.iter().any(|f| f.pass(&got)))
            }
            Compiled::Regexes(res) => Ok(got.is_some_and(|g| res.iter().any(|r| r.is_match(&g)))),
            Compiled::Interval(start, end, two) => {
                let Some(got) = got else { return Ok(false) };
                let t = time_or_err(&got, ctx)?;
                let at = |p: &Path| -> Result<_, String> {
                    let v = p.eval(ev)?.ok_or_else(|| "NOT_FOUND".to_owned())?;
                    time_or_err(&v, ctx)
                };
                let after_start = match start {
                    Some(p) => at(p)? < t,
                    None => true,
                };
                let before_end = match (two, end) {
                    (true, Some(p)) => t < at(p)?,
                    _ => true,
                };
                Ok(after_start && before_end)
            }
            Compiled::Paths(vals) => {
                let Some(got) = got else { return Ok(false) };
                self.match_values(&got, vals, ev, ctx)
            }
            Compiled::None | Compiled::RsrV010(_) => Ok(false),
        }
    }

    fn match_values(
        &self,
        got: &str,
        vals: &[Path],
        ev: &dyn DataProvider,
        ctx: &FilterCtx<'_>,
    ) -> Result<bool, String> {
        let values = vals.iter().filter_map(|p| p.eval(ev).ok().flatten());
        match self.kind {
            Kind::String => Ok(values.into_iter().any(|v| v == got)),
            Kind::Prefix => Ok(values.into_iter().any(|v| got.starts_with(&*v))),
            Kind::Suffix => Ok(values.into_iter().any(|v| got.ends_with(&*v))),
            Kind::Contains => Ok(values.into_iter().any(|v| got.contains(&*v))),
            Kind::Gt | Kind::Gte | Kind::Lt | Kind::Lte => {
                let a = Typed::parse(got, ctx.now);
                let or_equal = matches!(self.kind, Kind::Gte | Kind::Lt);
                for v in values {
                    let o = compare(a, Typed::parse(&v, ctx.now))?;
                    let gte = o == std::cmp::Ordering::Greater
                        || (or_equal && o == std::cmp::Ordering::Equal);
                    if gte == matches!(self.kind, Kind::Gt | Kind::Gte) {
                        return Ok(true);
                    }
                }
                Ok(false)
            }
            Kind::Eq => {
                let a = Typed::parse(got, ctx.now);
                for v in values {
                    if equal(a, Typed::parse(&v, ctx.now))? {
                        return Ok(true);
                    }
                }
                Ok(false)
            }
            Kind::Destinations => {
                let Some(plan) = ctx.plan else {
                    return Ok(false);
                };
                let ids = plan.destination_ids_for(got);
                let wanted: Vec<Cow<'_, str>> = values.collect();
                Ok(ids.iter().any(|(_, id)| wanted.iter().any(|w| **w == **id)))
            }
            Kind::Timings => {
                let t = time_or_err(got, ctx)?;
                let Some(plan) = ctx.plan else {
                    return Ok(false);
                };
                Ok(values
                    .into_iter()
                    .any(|id| plan.timing_active(&id, t) == Some(true)))
            }
            Kind::IpNet => {
                let Ok(ip) = got.trim().parse::<IpAddr>() else {
                    return Ok(false);
                };
                Ok(values.into_iter().any(|net| in_cidr(ip, &net)))
            }
            _ => Ok(false),
        }
    }
}

/// A v0.10 `*rsr` value: a path, then its RSR filters in parentheses,
/// joined with `&` (`~*req.Account(~^10&!1001)`).
fn rsr_v010(v: &str) -> Result<(Path, Vec<RsrFilter>), String> {
    let (path, filters) = match v.strip_suffix(')') {
        Some(body) => {
            let start = body
                .rfind('(')
                .filter(|&i| i > 0)
                .ok_or_else(|| format!("invalid RSRFilter start rule in string: <{v}>"))?;
            let filters = body[start + 1..]
                .split('&')
                .map(RsrFilter::compile)
                .collect::<Result<_, _>>()?;
            (&body[..start], filters)
        }
        None => (v, Vec::new()),
    };
    let path = Path::compile(path)?.ok_or_else(|| format!("empty RSR rule: <{v}>"))?;
    Ok((path, filters))
}

fn time_or_err(s: &str, ctx: &FilterCtx<'_>) -> Result<chrono::DateTime<chrono::Utc>, String> {
    if s.len() == 10
        && s.bytes().all(|c| c.is_ascii_digit())
        && let Ok(secs) = s.parse::<i64>()
        && let Some(t) = chrono::DateTime::from_timestamp(secs, 0)
    {
        return Ok(t);
    }
    time_of(s, ctx.now).ok_or_else(|| format!("Unsupported time format: <{s}>"))
}

/// Whether `ip` is inside the CIDR network `net` (`10.0.0.0/8`).
fn in_cidr(ip: IpAddr, net: &str) -> bool {
    let Some((addr, bits)) = net.trim().split_once('/') else {
        return false;
    };
    let (Ok(base), Ok(bits)) = (addr.parse::<IpAddr>(), bits.parse::<u32>()) else {
        return false;
    };
    match (ip, base) {
        (IpAddr::V4(a), IpAddr::V4(b)) if bits <= 32 => {
            let mask = u32::MAX.checked_shl(32 - bits).unwrap_or(0);
            u32::from(a) & mask == u32::from(b) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(b)) if bits <= 128 => {
            let mask = u128::MAX.checked_shl(128 - bits).unwrap_or(0);
            u128::from(a) & mask == u128::from(b) & mask
        }
        _ => false,
    }
}

/// Where the element of an inline rule's `element:values` ends: at the
/// first `:` outside `[...]`, extended over search-and-replace rules
/// (`~*req.A:s/re/tmpl/`) that follow the path.
fn element_end(rest: &str) -> Option<usize> {
    let mut depth = 0usize;
    let mut end = None;
    for (i, c) in rest.char_indices() {
        match c {
            '[' => depth += 1,
            ']' => depth = depth.saturating_sub(1),
            ':' if depth == 0 => {
                end = Some(i);
                break;
            }
            _ => {}
        }
    }
    let mut end = end?;
    while rest[end..].starts_with(":s/") {
        let from = end + 3;
        // The rule ends at a `/` followed by `:` with a `/` (between the
        // expression and the template) before it.
        let close = rest[from..]
            .match_indices("/:")
            .map(|(j, _)| from + j)
            .find(|&j| rest[from..j].contains('/'))?;
        end = close + 1;
    }
    Some(end)
}

/// Splits the values of a rule on `sep`.
pub(crate) fn split_values(s: &str, sep: char) -> Vec<String> {
    if s.is_empty() {
        return Vec::new();
    }
    s.split(sep).map(str::to_owned).collect()
}
