//! StatS's metrics: what each reads from an event, what it keeps, and
//! how it answers, as CGRateS's `engine/statmetrics.go` does.
//!
//! Every metric keeps running totals ([`MetricState`]); each event a
//! queue holds remembers what it added ([`Sample`]), so expiring it takes
//! exactly that back out. Costs and sums are [`Decimal`]; durations whole
//! nanoseconds. A metric with fewer than MinItems events (or none)
//! answers N/A: `"N/A"` as text, -1 as a number.

use std::collections::BTreeMap;

use rust_decimal::prelude::ToPrimitive;
use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::event::DataProvider;

/// CGRateS's text for a metric without enough events.
pub const NOT_AVAILABLE: &str = "N/A";

/// CGRateS's default `general.rounding_decimals`, which StatS rounds
/// every value to.
pub const ROUNDING_DECIMALS: u32 = 5;

/// Where `*sum`, `*average` and `*distinct` read their value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Operand {
    /// A path (`~*req.Usage`, kept without the `~`).
    Path(String),
    /// A constant (`*sum#1` counts events).
    Const(Decimal),
}

/// A metric type with its parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetricKind {
    /// `*asr`: answered calls, percent.
    Asr,
    /// `*acd`: average `Usage`.
    Acd,
    /// `*tcd`: total `Usage`.
    Tcd,
    /// `*acc`: average `Cost`.
    Acc,
    /// `*tcc`: total `Cost`.
    Tcc,
    /// `*pdd`: average `PDD`.
    Pdd,
    /// `*ddc`: distinct `Destination`s.
    Ddc,
    /// `*sum#FIELD`.
    Sum(Operand),
    /// `*average#FIELD`.
    Average(Operand),
    /// `*distinct#FIELD` (a path).
    Distinct(String),
}

impl MetricKind {
    /// Parses a metric ID (`*asr`, `*sum#~*req.Usage`). v0.10's older
    /// `*sum#Usage` (a bare field name) reads `~*req.Usage`; a number is a
    /// constant.
    ///
    /// # Errors
    /// An unknown type or a missing or bad parameter.
    pub fn parse(id: &str) -> Result<MetricKind, String> {
        let (ty, param) = match id.split_once('#') {
            Some((t, p)) => (t, Some(p)),
            None => (id, None),
        };
        let simple = |k: MetricKind| match param {
            None => Ok(k),
            Some(_) => Err(format!("metric {id:?} takes no parameter")),
        };
        let needed = || {
            param
                .filter(|p| !p.is_empty())
                .ok_or_else(|| format!("metric {id:?} needs a field: {ty}#~*req.Field"))
        };
        match ty {
            "*asr" => simple(MetricKind::Asr),
            "*acd" => simple(MetricKind::Acd),
            "*tcd" => simple(MetricKind::Tcd),
            "*acc" => simple(MetricKind::Acc),
            "*tcc" => simple(MetricKind::Tcc),
            "*pdd" => simple(MetricKind::Pdd),
            "*ddc" => simple(MetricKind::Ddc),
            "*sum" => Ok(MetricKind::Sum(operand(needed()?))),
            "*average" => Ok(MetricKind::Average(operand(needed()?))),
            "*distinct" => match operand(needed()?) {
                Operand::Path(p) => Ok(MetricKind::Distinct(p)),
                Operand::Const(_) => Err(format!("metric {id:?} needs a field, not a number")),
            },
            _ => Err(format!("unsupported metric type <{ty}>")),
        }
    }
}

fn operand(p: &str) -> Operand {
    if let Some(path) = p.strip_prefix('~') {
        return Operand::Path(path.to_owned());
    }
    if let Ok(d) = p.parse::<Decimal>() {
        return Operand::Const(d);
    }
    Operand::Path(format!("*req.{p}"))
}

/// What one event added to one metric.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Sample {
    /// `*asr`: answered or not.
    Answered(bool),
    /// Durations: nanoseconds.
    Nanos(i64),
    /// Costs and sums.
    Amount(Decimal),
    /// `*ddc`, `*distinct`: the value.
    Text(String),
}

/// A metric's running totals over the events its queue holds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetricState {
    /// Events counted.
    pub count: u64,
    /// `*asr`: of those, answered.
    pub answered: u64,
    /// Durations: the sum, nanoseconds.
    pub nanos: i128,
    /// Costs and sums: the sum.
    pub amount: Decimal,
    /// `*ddc`, `*distinct`: how many events hold each value.
    pub values: BTreeMap<String, u64>,
}

impl MetricState {
    /// Counts `s`.
    pub fn add(&mut self, s: &Sample) {
        self.count += 1;
        match s {
            Sample::Answered(a) => self.answered += u64::from(*a),
            Sample::Nanos(n) => self.nanos += i128::from(*n),
            Sample::Amount(d) => self.amount += *d,
            Sample::Text(t) => *self.values.entry(t.clone()).or_default() += 1,
        }
    }

    /// Takes `s` back out (it was added before).
    pub fn remove(&mut self, s: &Sample) {
        self.count = self.count.saturating_sub(1);
        match s {
            Sample::Answered(a) => self.answered = self.answered.saturating_sub(u64::from(*a)),
            Sample::Nanos(n) => self.nanos -= i128::from(*n),
            Sample::Amount(d) => self.amount -= *d,
            Sample::Text(t) => {
                if let Some(n) = self.values.get_mut(t) {
                    *n = n.saturating_sub(1);
                    if *n == 0 {
                        self.values.remove(t);
                    }
                }
            }
        }
    }
}

/// A metric's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricValue {
    /// Fewer events than MinItems, or none.
    NotAvailable,
    /// `*asr`: percent.
    Percent(Decimal),
    /// Durations: nanoseconds.
    Duration(i64),
    /// Costs, sums, averages, counts.
    Number(Decimal),
}

impl MetricValue {
    /// As CGRateS's `GetStringValue`: `66.66667%`, `1m30s`, `1.5`, `N/A`.
    #[must_use]
    pub fn text(&self) -> String {
        match self {
            MetricValue::NotAvailable => NOT_AVAILABLE.to_owned(),
            MetricValue::Percent(d) => format!("{}%", d.normalize()),
            MetricValue::Duration(ns) => go_duration(*ns),
            MetricValue::Number(d) => d.normalize().to_string(),
        }
    }

    /// As CGRateS's `GetFloat64Value`: durations in nanoseconds, N/A -1.
    #[must_use]
    pub fn float(&self) -> f64 {
        match self {
            MetricValue::NotAvailable => -1.0,
            MetricValue::Percent(d) | MetricValue::Number(d) => d.to_f64().unwrap_or(-1.0),
            #[allow(clippy::cast_precision_loss)] // what CGRateS answers
            MetricValue::Duration(ns) => *ns as f64,
        }
    }

    /// As CGRateS's `GetValue` in a `StatUpdate` event: numbers, durations
    /// as nanoseconds, N/A -1.
    #[must_use]
    pub fn json(&self) -> Value {
        match self {
            MetricValue::NotAvailable => Value::from(-1),
            MetricValue::Duration(ns) => Value::from(*ns),
            _ => serde_json::Number::from_f64(self.float()).map_or(Value::Null, Value::Number),
        }
    }

    /// Whether there is a value.
    #[must_use]
    pub fn is_available(&self) -> bool {
        !matches!(self, MetricValue::NotAvailable)
    }
}

fn round(d: Decimal) -> Decimal {
    d.round_dp_with_strategy(ROUNDING_DECIMALS, RoundingStrategy::MidpointAwayFromZero)
}

/// Go's `Duration.Round(10^(9-decimals))`: half away from zero.
fn round_nanos(ns: i128) -> i64 {
    let m: i128 = 10_i128.pow(9 - ROUNDING_DECIMALS.min(9));
    let r = ns % m;
    let out = if ns >= 0 {
        if r + r < m { ns - r } else { ns + m - r }
    } else if -r - r < m {
        ns - r
    } else {
        ns - m - r
    };
    i64::try_from(out).unwrap_or(if out < 0 { i64::MIN } else { i64::MAX })
}

/// The value of `kind` from `st`, N/A below `min_items` events.
#[must_use]
pub fn value(kind: &MetricKind, st: &MetricState, min_items: u64) -> MetricValue {
    if st.count == 0 || st.count < min_items {
        return MetricValue::NotAvailable;
    }
    let count = Decimal::from(st.count);
    // Go divides durations by the count in whole nanoseconds, truncating.
    let avg_nanos = || round_nanos(st.nanos / i128::from(st.count));
    match kind {
        MetricKind::Asr => MetricValue::Percent(round(
            Decimal::from(st.answered) * Decimal::ONE_HUNDRED / count,
        )),
        MetricKind::Acd | MetricKind::Pdd => MetricValue::Duration(avg_nanos()),
        MetricKind::Tcd => MetricValue::Duration(round_nanos(st.nanos)),
        MetricKind::Acc | MetricKind::Average(_) => MetricValue::Number(round(st.amount / count)),
        MetricKind::Tcc | MetricKind::Sum(_) => MetricValue::Number(round(st.amount)),
        MetricKind::Ddc | MetricKind::Distinct(_) => {
            MetricValue::Number(Decimal::from(st.values.len()))
        }
    }
}

/// What `kind` reads from `ev`, or why it cannot (CGRateS's
/// `NOT_FOUND:Usage`, `NEGATIVE:Cost`, a value that does not parse).
///
/// # Errors
/// The text of the reason.
pub fn sample(kind: &MetricKind, ev: &dyn DataProvider) -> Result<Sample, String> {
    let required = |path: &str, name: &str| {
        ev.value(path)
            .filter(|v| !v.is_null())
            .ok_or_else(|| format!("NOT_FOUND:{name}"))
    };
    match kind {
        MetricKind::Asr => {
            let answered = match ev.value("*req.AnswerTime") {
                None | Some(Value::Null) => false,
                Some(v) => answered(v)?,
            };
            Ok(Sample::Answered(answered))
        }
        MetricKind::Acd | MetricKind::Tcd => {
            duration_nanos(required("*req.Usage", "Usage")?).map(Sample::Nanos)
        }
        MetricKind::Pdd => duration_nanos(required("*req.PDD", "PDD")?).map(Sample::Nanos),
        MetricKind::Acc | MetricKind::Tcc => {
            let cost = number(required("*req.Cost", "Cost")?)?;
            if cost.is_sign_negative() && !cost.is_zero() {
                return Err("NEGATIVE:Cost".to_owned());
            }
            Ok(Sample::Amount(cost))
        }
        MetricKind::Ddc => Ok(Sample::Text(text(required(
            "*req.Destination",
            "Destination",
        )?))),
        MetricKind::Sum(op) | MetricKind::Average(op) => match op {
            Operand::Const(d) => Ok(Sample::Amount(*d)),
            Operand::Path(p) => number(required(p, &format!("~{p}"))?).map(Sample::Amount),
        },
        MetricKind::Distinct(p) => {
            if !p.starts_with("*req.") {
                return Err(format!("invalid format for field <~{p}>"));
            }
            Ok(Sample::Text(text(required(p, &format!("~{p}"))?)))
        }
    }
}

fn text(v: &Value) -> String {
    crate::event::value_text(v).into_owned()
}

/// A number as CGRateS's `IfaceAsFloat64` reads one, exactly: JSON
/// numbers and numeric strings; also a Go duration string (as
/// nanoseconds, what a `time.Duration` field gives CGRateS).
fn number(v: &Value) -> Result<Decimal, String> {
    let s = match v {
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.trim().to_owned(),
        Value::Bool(_) | Value::Null | Value::Array(_) | Value::Object(_) => {
            return Err(format!("cannot convert field: {v} to float64"));
        }
    };
    if let Ok(d) = s.parse::<Decimal>() {
        return Ok(d);
    }
    if let Ok(d) = Decimal::from_scientific(&s) {
        return Ok(d);
    }
    if let Ok(ns) = parse_go_duration(&s) {
        return Ok(Decimal::from(ns));
    }
    Err(format!("strconv.ParseFloat: parsing {s:?}: invalid syntax"))
}

/// A duration as CGRateS's `IfaceAsDuration` reads one: a number of
/// nanoseconds, or a Go duration string (a bare number: nanoseconds).
fn duration_nanos(v: &Value) -> Result<i64, String> {
    match v {
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                Ok(i)
            } else {
                #[allow(clippy::cast_possible_truncation)] // Go's int64(float64)
                n.as_f64()
                    .map(|f| f as i64)
                    .ok_or_else(|| format!("cannot convert field: {n} to time.Duration"))
            }
        }
        Value::String(s) => parse_go_duration(s),
        other => Err(format!("cannot convert field: {other} to time.Duration")),
    }
}

/// A Go duration (`1m30s`, `-2s`, a bare number of nanoseconds, ""
/// for zero) in nanoseconds.
///
/// # Errors
/// Text that is not a duration.
pub fn parse_go_duration(s: &str) -> Result<i64, String> {
    let s = s.trim();
    let (neg, body) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    let d = if let Ok(f) = body.parse::<f64>()
        && !body.bytes().all(|b| b.is_ascii_digit())
    {
        // "1.5": nanoseconds, truncated, as Go parses "1.5ns".
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        std::time::Duration::from_nanos(f as u64)
    } else {
        rating::parse_duration(body).map_err(|e| e.to_string())?
    };
    let ns = i64::try_from(d.as_nanos()).map_err(|_| format!("duration {s:?} out of range"))?;
    Ok(if neg { -ns } else { ns })
}

/// Go's `time.Duration.String()`: `1m30s`, `1h0m0s`, `1.5s`, `100ms`,
/// `0s`, `-2s`.
#[must_use]
pub fn go_duration(ns: i64) -> String {
    let abs = std::time::Duration::from_nanos(ns.unsigned_abs());
    let s = rating::format_duration(abs);
    if ns < 0 { format!("-{s}") } else { s }
}

/// Whether an `AnswerTime` value is a real time (not Go's zero time).
fn answered(v: &Value) -> Result<bool, String> {
    let s = match v {
        Value::String(s) => s.trim(),
        // A Unix time: a real one.
        Value::Number(_) => return Ok(true),
        other => return Err(format!("cannot convert field: {other} to time.Time")),
    };
    if s.is_empty() {
        return Ok(false);
    }
    if s.starts_with("0001-01-01") {
        return Ok(false);
    }
    if s.parse::<f64>().is_ok() || crate::activation::parse_time(s).is_ok() {
        return Ok(true);
    }
    Err(format!("unsupported time format: {s:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_metric_ids_both_spellings() {
        assert_eq!(MetricKind::parse("*asr"), Ok(MetricKind::Asr));
        assert_eq!(
            MetricKind::parse("*sum#~*req.Usage"),
            Ok(MetricKind::Sum(Operand::Path("*req.Usage".into())))
        );
        assert_eq!(
            MetricKind::parse("*sum#Usage"),
            Ok(MetricKind::Sum(Operand::Path("*req.Usage".into())))
        );
        assert_eq!(
            MetricKind::parse("*sum#1"),
            Ok(MetricKind::Sum(Operand::Const(Decimal::ONE)))
        );
        assert_eq!(
            MetricKind::parse("*distinct#~*req.Account"),
            Ok(MetricKind::Distinct("*req.Account".into()))
        );
        assert!(MetricKind::parse("*sum").is_err());
        assert!(MetricKind::parse("*asr#x").is_err());
        assert!(MetricKind::parse("*median").is_err());
    }

    #[test]
    fn go_duration_text_and_rounding() {
        assert_eq!(go_duration(90_000_000_000), "1m30s");
        assert_eq!(go_duration(3_600_000_000_000), "1h0m0s");
        assert_eq!(go_duration(0), "0s");
        assert_eq!(go_duration(-2_000_000_000), "-2s");
        // 5 decimals of a second: 10 µs steps, half away from zero.
        assert_eq!(round_nanos(1_000_005_000), 1_000_010_000);
        assert_eq!(round_nanos(1_000_004_999), 1_000_000_000);
        assert_eq!(round_nanos(-15_000), -20_000);
        assert_eq!(parse_go_duration("1m30s"), Ok(90_000_000_000));
        assert_eq!(parse_go_duration("-1s"), Ok(-1_000_000_000));
        assert_eq!(parse_go_duration("60000000000"), Ok(60_000_000_000));
        assert!(parse_go_duration("soon").is_err());
    }

    #[test]
    fn values_render_as_cgrates() {
        let mut st = MetricState::default();
        for a in [true, true, false] {
            st.add(&Sample::Answered(a));
        }
        assert_eq!(value(&MetricKind::Asr, &st, 0).text(), "66.66667%");
        assert_eq!(value(&MetricKind::Asr, &st, 4).text(), "N/A");
        assert_eq!(value(&MetricKind::Asr, &st, 4).float(), -1.0);
        st.remove(&Sample::Answered(false));
        assert_eq!(value(&MetricKind::Asr, &st, 0).text(), "100%");
        assert_eq!(
            value(&MetricKind::Asr, &MetricState::default(), 0).text(),
            "N/A"
        );
    }
}
