//! What AccuRate sends Kamailio: the replies its script reads with
//! `json_get_field` (every key present, since Kamailio keeps a variable's
//! old value when a key is missing), the disconnect request, the dialog
//! list request; and the dialog list reply Kamailio relays back.

use serde::Serialize;
use serde_json::{Map, Value};

use crate::Error;

/// CGRateS's `CGR_SESSION_DISCONNECT`, sent to end a dialog.
pub const SESSION_DISCONNECT: &str = "CGR_SESSION_DISCONNECT";
/// The dialog list request and the event name of its reply's prefix.
pub const DLG_LIST: &str = "CGR_DLG_LIST";

/// The answer to `CGR_AUTH_REQUEST`, `CGR_PROCESS_MESSAGE` and
/// `CGR_PROCESS_CDR` (CGRateS's `KamReply`), keys in CGRateS's order.
///
/// `Suppliers` is v0.10's name, `Routes` master's: both carry the same
/// list so either tutorial script finds it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct KamReply {
    /// The route Kamailio runs: the request's `reply_route`, else
    /// `CGR_AUTH_REPLY` (or the request's event name).
    pub event: String,
    /// The request's `tr_index`, echoed.
    pub transaction_index: String,
    /// The request's `tr_label`, echoed.
    pub transaction_label: String,
    /// The altered attributes as `Field:Value,Field:Value`.
    pub attributes: String,
    /// The resource allocation message.
    pub resource_allocation: String,
    /// The usage allowed, whole seconds; 0 refuses the call.
    pub max_usage: i64,
    /// The routes (suppliers) chosen, `ID[:params]` comma separated.
    pub suppliers: String,
    /// The same as [`KamReply::suppliers`], under master's key.
    pub routes: String,
    /// The thresholds hit, comma separated.
    pub thresholds: String,
    /// The stat queues fed, comma separated.
    pub stat_queues: String,
    /// The error, empty on success.
    pub error: String,
}

impl KamReply {
    /// The reply's JSON text.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Fills the reply from a SessionSv1 reply object (`AuthorizeEvent`,
    /// `ProcessMessage`/`ProcessEvent`), as CGRateS's `AsKamAuthReply`:
    /// `Attributes` from the attribute reply's altered fields, `MaxUsage`
    /// from nanoseconds rounded to the nearest second (half away from
    /// zero), `ResourceAllocation`, the suppliers' or routes' IDs,
    /// `ThresholdIDs` and `StatQueueIDs` joined with `,`.
    pub fn fill_from(&mut self, reply: &Value) {
        self.attributes = reply
            .get("Attributes")
            .map(attributes_digest)
            .unwrap_or_default();
        self.resource_allocation = reply
            .get("ResourceAllocation")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        self.max_usage = reply.get("MaxUsage").map(max_usage_secs).unwrap_or(0);
        let routes = ["Suppliers", "Routes", "RouteProfiles"]
            .iter()
            .find_map(|k| reply.get(*k).filter(|v| !v.is_null()))
            .map(routes_digest)
            .unwrap_or_default();
        self.suppliers.clone_from(&routes);
        self.routes = routes;
        self.thresholds = join_ids(reply.get("ThresholdIDs"));
        self.stat_queues = join_ids(reply.get("StatQueueIDs"));
    }
}

/// A max usage in nanoseconds (a number, or a duration string such as
/// `"1m30s"`) as whole seconds, rounded half away from zero.
pub fn max_usage_secs(v: &Value) -> i64 {
    let ns: i128 = match v {
        Value::Number(n) => n
            .as_i64()
            .map(i128::from)
            .or_else(|| n.as_u64().map(i128::from))
            .unwrap_or(0),
        Value::String(s) => go_duration_ns(s).unwrap_or(0),
        _ => 0,
    };
    let secs = if ns >= 0 {
        (ns + 500_000_000) / 1_000_000_000
    } else {
        (ns - 500_000_000) / 1_000_000_000
    };
    i64::try_from(secs).unwrap_or(if secs > 0 { i64::MAX } else { i64::MIN })
}

/// A Go duration string (`1h2m3.5s`, `150ms`) in nanoseconds.
fn go_duration_ns(s: &str) -> Option<i128> {
    let (neg, mut rest) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s),
    };
    if rest == "0" {
        return Some(0);
    }
    let mut total: f64 = 0.0;
    while !rest.is_empty() {
        let num_len = rest.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
        let n: f64 = rest.get(..num_len)?.parse().ok()?;
        rest = rest.get(num_len..)?;
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match rest.get(..unit_len)? {
            "ns" => 1.0,
            "us" | "µs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        total += n * scale;
        rest = rest.get(unit_len..)?;
    }
    #[allow(clippy::cast_possible_truncation)]
    let ns = total.round() as i128;
    Some(if neg { -ns } else { ns })
}

/// CGRateS's `AttrSProcessEventReply.Digest`: each altered field (its
/// `*req.` prefix dropped) with its new value, `Field:Value` joined by `,`.
/// `AlteredFields` is a list of names (v0.10) or of
/// `{MatchedProfileID, Fields}` (master).
pub fn attributes_digest(v: &Value) -> String {
    let Some(event) = v
        .get("CGREvent")
        .and_then(|e| e.get("Event"))
        .and_then(Value::as_object)
    else {
        return String::new();
    };
    let mut names: Vec<&str> = Vec::new();
    for f in v
        .get("AlteredFields")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        match f {
            Value::String(s) => names.push(s),
            Value::Object(o) => names.extend(
                o.get("Fields")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str),
            ),
            _ => {}
        }
    }
    let mut out: Vec<String> = Vec::new();
    for name in names {
        let field = name.strip_prefix("*req.").unwrap_or(name);
        if out
            .iter()
            .any(|d| d.split_once(':').is_some_and(|(f, _)| f == field))
        {
            continue;
        }
        let value = event.get(field).map(text).unwrap_or_default();
        out.push(format!("{field}:{value}"));
    }
    out.join(",")
}

/// The routes of a SupplierS/RouteS reply as `ID[:params]` joined by `,`:
/// one sorted list (`{"SortedSuppliers":[...]}` / `{"Routes":[...]}`) or a
/// list of them.
pub fn routes_digest(v: &Value) -> String {
    let lists: Vec<&Value> = match v {
        Value::Array(a) => a.iter().collect(),
        other => vec![other],
    };
    let mut out = Vec::new();
    for l in lists {
        let entries = ["SortedSuppliers", "Routes", "SortedRoutes"]
            .iter()
            .find_map(|k| l.get(*k).and_then(Value::as_array));
        for e in entries.into_iter().flatten() {
            let id = ["SupplierID", "RouteID", "ID"]
                .iter()
                .find_map(|k| e.get(*k).and_then(Value::as_str))
                .unwrap_or_default();
            let params = ["SupplierParameters", "RouteParameters"]
                .iter()
                .find_map(|k| e.get(*k).and_then(Value::as_str))
                .unwrap_or_default();
            out.push(if params.is_empty() {
                id.to_string()
            } else {
                format!("{id}:{params}")
            });
        }
    }
    out.join(",")
}

fn join_ids(v: Option<&Value>) -> String {
    v.and_then(Value::as_array)
        .map(|a| a.iter().map(text).collect::<Vec<_>>().join(","))
        .unwrap_or_default()
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// `{"Event":"CGR_SESSION_DISCONNECT","HashEntry":..,"HashId":..,"Reason":..}`.
pub fn disconnect_json(hash_entry: &str, hash_id: &str, reason: &str) -> String {
    let mut m = Map::new();
    m.insert("Event".into(), SESSION_DISCONNECT.into());
    m.insert("HashEntry".into(), hash_entry.into());
    m.insert("HashId".into(), hash_id.into());
    m.insert("Reason".into(), reason.into());
    Value::Object(m).to_string()
}

/// `{"Event":"CGR_DLG_LIST"}`: asks Kamailio for its dialogs.
pub fn dlg_list_json() -> String {
    let mut m = Map::new();
    m.insert("Event".into(), DLG_LIST.into());
    Value::Object(m).to_string()
}

/// A dialog Kamailio still has, from its `dlg.list` reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActiveDialog {
    /// The session's `OriginID`: the dialog's `cgrOriginID` variable, else
    /// `call-id;from-tag`.
    pub origin_id: String,
    /// The dialog's `cgrOriginHost` variable, else the agent's origin host.
    pub origin_host: String,
}

/// Reads a `CGR_DLG_LIST_REPLY` (`{"event":..,"jsonrpl_body":{"result":[..]}}`;
/// keys matched case-insensitively, as Go's decoder does).
///
/// # Errors
/// [`Error::Json`] when the message is not JSON or has no result list.
pub fn parse_dlg_list(data: &[u8], origin_host: &str) -> Result<Vec<ActiveDialog>, Error> {
    let v: Value = serde_json::from_slice(data).map_err(|e| Error::Json(e.to_string()))?;
    let mut body = get_ci(&v, "jsonrpl_body").cloned().unwrap_or(Value::Null);
    // a body relayed as a JSON string
    if let Value::String(s) = &body {
        body = serde_json::from_str(s).map_err(|e| Error::Json(e.to_string()))?;
    }
    let result = match get_ci(&body, "result") {
        Some(Value::Array(a)) => a,
        Some(Value::Null) | None if get_ci(&body, "error").is_none() => return Ok(Vec::new()),
        _ => return Err(Error::Json("dlg.list reply without a result list".into())),
    };
    let mut out = Vec::with_capacity(result.len());
    for d in result {
        let call_id = get_ci(d, "call-id").map(text).unwrap_or_default();
        let tag = get_ci(d, "caller")
            .and_then(|c| get_ci(c, "tag"))
            .map(text)
            .unwrap_or_default();
        let mut dlg = ActiveDialog {
            origin_id: format!("{call_id};{tag}"),
            origin_host: origin_host.to_string(),
        };
        for var in get_ci(d, "variables")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(id) = get_ci(var, "cgrOriginID")
                .map(text)
                .filter(|s| !s.is_empty())
            {
                dlg.origin_id = id;
            }
            if let Some(h) = get_ci(var, "cgrOriginHost")
                .map(text)
                .filter(|s| !s.is_empty())
            {
                dlg.origin_host = h;
            }
        }
        out.push(dlg);
    }
    Ok(out)
}

/// `v[key]`, the exact key first, else any key equal ignoring ASCII case.
fn get_ci<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    let m = v.as_object()?;
    m.get(key).or_else(|| {
        m.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v)
    })
}

#[cfg(test)]
#[path = "reply_tests.rs"]
mod tests;
