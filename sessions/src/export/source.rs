//! What templates read: a stored CDR by its CGRateS field names, a CSV
//! row by column number.

use rust_decimal::Decimal;
use serde_json::{Map, Value};

use super::{Source, Val};
use crate::Cdr;

/// A CDR's fields: `CGRID`, `RunID`, `OriginID`, `OriginHost`, `Source`,
/// `ToR`, `RequestType`, `Tenant`, `Category`, `Account`, `Subject`,
/// `Destination`, `SetupTime`, `AnswerTime`, `Usage`, `Cost` (-1 when not
/// rated), `CostSource`, `DisconnectCause`, `EndTime`, else an
/// `ExtraFields` key (`ExtraFields.X` too).
#[derive(Debug, Clone, Copy)]
pub struct CdrSource<'a>(pub &'a Cdr);

impl Source for CdrSource<'_> {
    fn get(&self, path: &str) -> Option<Val> {
        let c = self.0;
        let text = |s: &str| Some(Val::Text(s.to_owned()));
        match path {
            "CGRID" => text(&c.cgrid),
            "RunID" => text(&c.run_id),
            "OriginID" => text(&c.origin_id),
            "OriginHost" => text(&c.origin_host),
            "Source" => text(&c.source),
            "ToR" => text(&c.tor),
            "RequestType" => text(&c.request_type),
            "Tenant" => text(&c.tenant),
            "Category" => text(&c.category),
            "Account" => text(&c.account),
            "Subject" => text(&c.subject),
            "Destination" => text(&c.destination),
            "SetupTime" => Some(Val::Time(c.setup_time)),
            "AnswerTime" => c.answer_time.map(Val::Time),
            "EndTime" => Some(Val::Time(c.end_time)),
            "Usage" => Some(Val::Duration(c.usage)),
            "Cost" => Some(Val::Decimal(c.cost.unwrap_or(Decimal::NEGATIVE_ONE))),
            "CostSource" => text(&c.cost_source),
            "DisconnectCause" => text(&c.disconnect_cause),
            other => {
                let key = other.strip_prefix("ExtraFields.").unwrap_or(other);
                c.extra_fields.get(key).map(|v| Val::Text(v.clone()))
            }
        }
    }
}

/// A CSV row: `*req.N` (or `N`) is column N, counted from 0.
#[derive(Debug, Clone, Copy)]
pub struct RowSource<'a>(pub &'a [String]);

impl Source for RowSource<'_> {
    fn get(&self, path: &str) -> Option<Val> {
        let i: usize = path.parse().ok()?;
        self.0.get(i).map(|v| Val::Text(v.clone()))
    }
}

/// A CDR as a CGREvent's `Event` (what export filters read as `~*req.X`):
/// its fields as [`CdrSource`] names them, as text (times RFC 3339,
/// `Usage` as Go prints it, `Cost` as exact decimal text), and the
/// `ExtraFields` keys beside them.
#[must_use]
pub fn cdr_event_fields(c: &Cdr) -> Map<String, Value> {
    let mut m = Map::new();
    for (k, v) in &c.extra_fields {
        m.insert(k.clone(), Value::String(v.clone()));
    }
    let src = CdrSource(c);
    for name in [
        "CGRID",
        "RunID",
        "OriginID",
        "OriginHost",
        "Source",
        "ToR",
        "RequestType",
        "Tenant",
        "Category",
        "Account",
        "Subject",
        "Destination",
        "SetupTime",
        "AnswerTime",
        "EndTime",
        "Usage",
        "Cost",
        "CostSource",
        "DisconnectCause",
    ] {
        let v = match src.get(name) {
            None => Value::Null,
            Some(Val::Text(t)) => Value::String(t),
            Some(Val::Time(t)) => Value::String(crate::cdr::rfc3339(t)),
            Some(Val::Duration(d)) => Value::String(rating::format_duration(d)),
            Some(Val::Decimal(d)) => Value::String(d.to_string()),
        };
        m.insert(name.to_owned(), v);
    }
    m
}
