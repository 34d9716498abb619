//! CGRateS's ActivationInterval column: `START` or `START;END` (RFC 3339
//! or `2006-01-02 15:04:05`, UTC), empty for always active.

use chrono::{DateTime, NaiveDateTime, Utc};
use serde_json::{Map, Value};

/// How Go writes a zero `time.Time` (an unset end of an interval).
const GO_ZERO_TIME: &str = "0001-01-01T00:00:00Z";

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

    /// Whether `now` is inside the interval: after the activation time
    /// and before the expiry time (CGRateS's `IsActiveAtTime`, both ends
    /// strict).
    #[must_use]
    pub fn is_active_at(&self, now: DateTime<Utc>) -> bool {
        self.activation.is_none_or(|a| a < now) && self.expiry.is_none_or(|e| now < e)
    }

    /// Whether neither end is set.
    #[must_use]
    pub fn is_always(&self) -> bool {
        self.activation.is_none() && self.expiry.is_none()
    }

    /// CGRateS's JSON form, `{"ActivationTime", "ExpiryTime"}` (an unset
    /// end as Go's zero time); `null` when neither end is set.
    #[must_use]
    pub fn to_json(&self) -> Value {
        if self.is_always() {
            return Value::Null;
        }
        let t = |t: Option<DateTime<Utc>>| {
            Value::String(t.map_or_else(
                || GO_ZERO_TIME.to_owned(),
                |t| t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
            ))
        };
        let mut m = Map::new();
        m.insert("ActivationTime".into(), t(self.activation));
        m.insert("ExpiryTime".into(), t(self.expiry));
        Value::Object(m)
    }

    /// Reads the JSON form (`null`, absent ends and Go's zero time are
    /// unset).
    ///
    /// # Errors
    /// A time that does not parse, or a value that is not an object.
    pub fn from_json(v: &Value) -> Result<Self, String> {
        let m = match v {
            Value::Null => return Ok(Self::default()),
            Value::Object(m) => m,
            _ => return Err("ActivationInterval is not an object".to_owned()),
        };
        let t = |k: &str| match m.get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if s == GO_ZERO_TIME || s.starts_with("0001-01-01") => Ok(None),
            Some(Value::String(s)) => parse_time(s),
            Some(other) => Err(format!("{k} is not a time: {other}")),
        };
        Ok(Self {
            activation: t("ActivationTime")?,
            expiry: t("ExpiryTime")?,
        })
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
        assert!(!ai.is_active_at(t("2014-07-29T15:00:00Z")));
        assert!(ai.is_active_at(t("2014-07-29T15:00:01Z")));
        assert!(!ai.is_active_at(t("2015-01-01T00:00:00Z")));
        assert!(
            ActivationInterval::parse("")
                .unwrap()
                .is_active_at(t("1999-01-01T00:00:00Z"))
        );
        assert!(ActivationInterval::parse("yesterday").is_err());
        let j = ai.to_json();
        assert_eq!(j["ActivationTime"], "2014-07-29T15:00:00Z");
        assert_eq!(ActivationInterval::from_json(&j).unwrap(), ai);
        let open = ActivationInterval::parse(";2015-01-01T00:00:00Z").unwrap();
        assert_eq!(open.to_json()["ActivationTime"], GO_ZERO_TIME);
        assert_eq!(
            ActivationInterval::from_json(&open.to_json()).unwrap(),
            open
        );
        assert_eq!(ActivationInterval::default().to_json(), Value::Null);
        assert!(ActivationInterval::from_json(&serde_json::json!({"ExpiryTime": 5})).is_err());
    }
}
