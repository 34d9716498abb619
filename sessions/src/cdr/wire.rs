//! Reading a [`Cdr`] back from its JSON.

use std::collections::BTreeMap;
use std::time::Duration;

use capture::Timestamp;
use chrono::DateTime;
use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;

use super::{Cdr, extra};

/// [`Cdr`]'s JSON as written, before its values are checked.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct CdrWire {
    #[serde(rename = "CGRID", default)]
    cgrid: String,
    #[serde(rename = "RunID", default)]
    run_id: String,
    #[serde(rename = "OriginID", default)]
    origin_id: String,
    #[serde(default)]
    origin_host: String,
    #[serde(default)]
    source: String,
    #[serde(rename = "ToR", default)]
    tor: String,
    #[serde(default)]
    request_type: String,
    #[serde(default)]
    tenant: String,
    #[serde(default)]
    category: String,
    #[serde(default)]
    account: String,
    #[serde(default)]
    subject: String,
    #[serde(default)]
    destination: String,
    setup_time: String,
    #[serde(default)]
    answer_time: Option<String>,
    #[serde(default)]
    usage: Option<Value>,
    #[serde(default)]
    cost_source: String,
    #[serde(default)]
    cost: Option<Box<RawValue>>,
    #[serde(default)]
    disconnect_cause: String,
    #[serde(default)]
    extra_fields: BTreeMap<String, String>,
}

impl TryFrom<CdrWire> for Cdr {
    type Error = String;

    fn try_from(w: CdrWire) -> Result<Self, String> {
        let setup_time = parse_time(&w.setup_time).map_err(|e| format!("SetupTime: {e}"))?;
        let answer_time = match w.answer_time.as_deref() {
            None | Some("") => None,
            Some(t) => Some(parse_time(t).map_err(|e| format!("AnswerTime: {e}"))?),
        };
        let usage = match &w.usage {
            None | Some(Value::Null) => Duration::ZERO,
            Some(Value::Number(n)) => n
                .as_u64()
                .map(Duration::from_nanos)
                .ok_or_else(|| format!("Usage: {n} is not whole nanoseconds"))?,
            Some(Value::String(s)) => {
                rating::parse_duration(s).map_err(|e| format!("Usage: {e}"))?
            }
            Some(other) => return Err(format!("Usage: expected nanoseconds, got {other}")),
        };
        let cost: Option<Decimal> = match &w.cost {
            None => None,
            Some(raw) => {
                crate::cdrstore::parse_exact_number(raw.get()).map_err(|e| format!("Cost: {e}"))?
            }
        };
        let end_time = match w.extra_fields.get(extra::END_TIME) {
            Some(t) => parse_time(t).map_err(|e| format!("ExtraFields.EndTime: {e}"))?,
            None => answer_time.map_or(setup_time, |a| a.saturating_add(usage)),
        };
        Ok(Cdr {
            cgrid: w.cgrid,
            run_id: w.run_id,
            origin_id: w.origin_id,
            origin_host: w.origin_host,
            source: w.source,
            tor: w.tor,
            request_type: w.request_type,
            tenant: w.tenant,
            category: w.category,
            account: w.account,
            subject: w.subject,
            destination: w.destination,
            setup_time,
            answer_time,
            usage,
            cost_source: w.cost_source,
            cost,
            disconnect_cause: w.disconnect_cause,
            extra_fields: w.extra_fields,
            end_time,
        })
    }
}

/// A time as [`super::rfc3339`] writes it: RFC 3339, or `@NANOSns` beyond
/// chrono's range.
pub(crate) fn parse_time(s: &str) -> Result<Timestamp, String> {
    if let Some(ns) = s.strip_prefix('@').and_then(|r| r.strip_suffix("ns")) {
        return ns
            .parse::<i64>()
            .map(Timestamp::from_nanos)
            .map_err(|_| format!("{s:?} is not a time"));
    }
    let t = DateTime::parse_from_rfc3339(s).map_err(|e| format!("{s:?}: {e}"))?;
    // A CDR time is nanoseconds since 1970 in an i64 (years 1677 to 2262):
    // refused beyond, never clamped (it would not read back the same).
    t.timestamp_nanos_opt()
        .map(Timestamp::from_nanos)
        .ok_or_else(|| format!("{s:?} is out of range (years 1677 to 2262)"))
}
