//! Plain HTTP calls for switches that can only make an HTTP request (as
//! Canyan's rating agent offers them): `POST /v1/authorize` with a JSON
//! event answers the usage the account may use and the attributes, and
//! `POST /v1/cdrs` hands a finished call in to be charged and stored.
//!
//! The body is one JSON object: either a CGREvent (`Tenant`, `ID`,
//! `Event`, `APIOpts`) or the event's fields themselves (`Account`,
//! `Destination`, `OriginID`, ...). Canyan's field names are read too:
//! `transaction_tag` (OriginID), `account_tag` (Account), `destination`,
//! `source` (kept as `Source`), `tenant`. Both endpoints run what the
//! JSON-RPC API runs (`SessionSv1.AuthorizeEvent` with `GetMaxUsage` and,
//! when AttributeS is loaded, `GetAttributes`; `SessionSv1.ProcessCDR`), so
//! an HTTP call is charged and stored exactly as the same call over
//! JSON-RPC.
//!
//! Status codes: `200` authorized / stored; `403` not authorized (no
//! credit, unknown account, refused by a subsystem), with the reason;
//! `400` a body that is not a JSON object or lacks a mandatory field (a
//! call handed in needs its `OriginID` and `Account`). A call handed in
//! with a Usage but no AnswerTime was answered at its SetupTime, else its
//! Usage before it was handed in.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use hyper::StatusCode;
use rust_decimal::Decimal;
use serde_json::{Map, Value, json};

use super::methods::State;

/// The authorization path.
pub(crate) const AUTHORIZE_PATH: &str = "/v1/authorize";
/// The finished-call path.
pub(crate) const CDRS_PATH: &str = "/v1/cdrs";

/// Canyan's names and the CGRateS field each one fills (when the CGRateS
/// name is not given).
const ALIASES: &[(&str, &str)] = &[
    ("transaction_tag", "OriginID"),
    ("account_tag", "Account"),
    ("destination", "Destination"),
    ("source", "Source"),
    ("tenant", "Tenant"),
];

/// The flattened CGREvent arguments for `body`, or why it cannot be one.
fn cgr_args(body: &Value) -> Result<Map<String, Value>, String> {
    let Value::Object(obj) = body else {
        return Err("the body must be a JSON object (an event)".into());
    };
    let mut args = Map::new();
    let mut event = match obj.get("Event") {
        Some(Value::Object(ev)) => {
            for (k, v) in obj {
                if k != "Event" {
                    args.insert(k.clone(), v.clone());
                }
            }
            ev.clone()
        }
        Some(_) => return Err("Event must be a JSON object".into()),
        None => obj.clone(),
    };
    for (alias, field) in ALIASES {
        if let Some(v) = event.remove(*alias)
            && !event.contains_key(*field)
        {
            event.insert((*field).to_owned(), v);
        }
    }
    if let Some(t) = event.get("Tenant").cloned()
        && !args.contains_key("Tenant")
    {
        args.insert("Tenant".into(), t);
    }
    if !args.contains_key("ID") {
        let id = event
            .get("OriginID")
            .and_then(Value::as_str)
            .map_or_else(|| "http".to_owned(), |o| format!("http-{o}"));
        args.insert("ID".into(), id.into());
    }
    args.insert("Event".into(), Value::Object(event));
    Ok(args)
}

fn mandatory(msg: &str) -> bool {
    msg.starts_with("MANDATORY_IE_MISSING")
}

/// `POST /v1/authorize`: `(status, reply)`.
pub(crate) async fn authorize(state: &Arc<State>, body: &Value) -> (StatusCode, Value) {
    let mut args = match cgr_args(body) {
        Ok(a) => a,
        Err(e) => return (StatusCode::BAD_REQUEST, refusal(&e)),
    };
    args.insert("GetMaxUsage".into(), true.into());
    if state.profiles.current().has("Attributes.csv") {
        args.insert("GetAttributes".into(), true.into());
    }
    let reply = super::sessionsapi::call_as(
        state,
        "SessionSv1.AuthorizeEvent",
        &Value::Object(args),
        sessions::Owner::Api,
    )
    .await;
    let reply = match reply {
        Ok(text) => match serde_json::from_str::<Value>(&text) {
            Ok(v) => v,
            Err(e) => return (StatusCode::INTERNAL_SERVER_ERROR, refusal(&e.to_string())),
        },
        Err(e) if mandatory(&e.message) => return (StatusCode::BAD_REQUEST, refusal(&e.message)),
        Err(e) => return (StatusCode::FORBIDDEN, refusal(&e.message)),
    };
    let max_ns = reply.get("MaxUsage").and_then(Value::as_i64).unwrap_or(0);
    let seconds = Decimal::from(max_ns) / Decimal::from(1_000_000_000_i64);
    let seconds = seconds.normalize();
    let attributes = reply
        .pointer("/Attributes/CGREvent/Event")
        .cloned()
        .unwrap_or(Value::Null);
    let altered = reply
        .pointer("/Attributes/AlteredFields")
        .cloned()
        .unwrap_or(Value::Null);
    let authorized = max_ns != 0;
    let mut out = json!({
        "Authorized": authorized,
        "MaxUsage": max_ns,
        "MaxUsageSeconds": seconds,
        "Attributes": attributes,
        "AlteredFields": altered,
        "authorized": authorized,
        "max_available_units": seconds,
    });
    if !authorized {
        out["Error"] = "INSUFFICIENT_CREDIT".into();
        out["unauthorized_reason"] = "INSUFFICIENT_CREDIT".into();
        return (StatusCode::FORBIDDEN, out);
    }
    (StatusCode::OK, out)
}

/// `POST /v1/cdrs`: `(status, reply)`.
pub(crate) async fn cdrs(state: &Arc<State>, body: &Value) -> (StatusCode, Value) {
    let args = match cgr_args(body) {
        Ok(a) => a,
        Err(e) => return (StatusCode::BAD_REQUEST, json!({"ok": false, "Error": e})),
    };
    // A call handed in must say whose it is and which it is (the second
    // time it is handed in, it is known by its OriginID).
    let missing: Vec<&str> = ["OriginID", "Account"]
        .into_iter()
        .filter(|f| {
            args["Event"]
                .get(*f)
                .and_then(Value::as_str)
                .is_none_or(str::is_empty)
        })
        .collect();
    if !missing.is_empty() {
        let e = format!("MANDATORY_IE_MISSING: [{}]", missing.join(" "));
        return (StatusCode::BAD_REQUEST, json!({"ok": false, "Error": e}));
    }
    let mut args = args;
    if let Some(Value::Object(ev)) = args.get_mut("Event") {
        answered_by_default(ev, Utc::now());
    }
    match super::sessionsapi::call_as(
        state,
        "SessionSv1.ProcessCDR",
        &Value::Object(args),
        sessions::Owner::Api,
    )
    .await
    {
        Ok(_) => (StatusCode::OK, json!({"ok": true, "Reply": "OK"})),
        Err(e) if mandatory(&e.message) => (
            StatusCode::BAD_REQUEST,
            json!({"ok": false, "Error": e.message}),
        ),
        Err(e) => (
            StatusCode::FORBIDDEN,
            json!({"ok": false, "Error": e.message}),
        ),
    }
}

/// A call handed in with a usage but no AnswerTime was answered (else the
/// session manager stores it as unanswered, usage 0): at its SetupTime, or
/// its usage before `now`.
fn answered_by_default(ev: &mut Map<String, Value>, now: DateTime<Utc>) {
    let set = |v: Option<&Value>| match v {
        None | Some(Value::Null) => false,
        Some(Value::String(s)) => !s.is_empty() && !s.starts_with("0001-01-01"),
        Some(Value::Number(n)) => n.as_i64() != Some(0),
        Some(_) => true,
    };
    if set(ev.get("AnswerTime")) {
        return;
    }
    let usage = match ev.get("Usage") {
        Some(Value::Number(n)) => n.as_u64().map(Duration::from_nanos),
        Some(Value::String(s)) => rating::parse_duration(s.trim()).ok(),
        _ => None,
    };
    let Some(usage) = usage.filter(|u| !u.is_zero()) else {
        return;
    };
    let at = match ev.get("SetupTime") {
        Some(v) if set(Some(v)) => v.clone(),
        _ => {
            let start = TimeDelta::from_std(usage)
                .ok()
                .and_then(|d| now.checked_sub_signed(d))
                .unwrap_or(now);
            Value::String(start.to_rfc3339_opts(SecondsFormat::Nanos, true))
        }
    };
    ev.insert("AnswerTime".into(), at);
}

fn refusal(reason: &str) -> Value {
    json!({
        "Authorized": false,
        "MaxUsage": 0,
        "Error": reason,
        "authorized": false,
        "max_available_units": 0,
        "unauthorized_reason": reason,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flat_events_and_canyan_names_become_cgr_events() {
        let a = cgr_args(&json!({"transaction_tag": "c1", "account_tag": "1001",
            "destination": "1002", "Tenant": "cgrates.org"}))
        .unwrap();
        assert_eq!(a["Event"]["OriginID"], "c1");
        assert_eq!(a["Event"]["Account"], "1001");
        assert_eq!(a["Event"]["Destination"], "1002");
        assert_eq!(a["Tenant"], "cgrates.org");
        assert_eq!(a["ID"], "http-c1");
        let b = cgr_args(&json!({"Tenant": "t", "ID": "x",
            "Event": {"Account": "1001", "account_tag": "other"}, "APIOpts": {"k": 1}}))
        .unwrap();
        assert_eq!(b["Event"]["Account"], "1001");
        assert_eq!(b["ID"], "x");
        assert_eq!(b["APIOpts"]["k"], 1);
        assert!(cgr_args(&json!([1])).is_err());
        assert!(cgr_args(&json!({"Event": "x"})).is_err());
    }

    #[test]
    fn a_call_with_usage_and_no_answer_time_was_answered() {
        let now = DateTime::parse_from_rfc3339("2026-11-30T10:01:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let mut ev = json!({"Usage": "60s"}).as_object().unwrap().clone();
        answered_by_default(&mut ev, now);
        assert_eq!(ev["AnswerTime"], "2026-11-30T10:00:00.000000000Z");
        let mut ev = json!({"Usage": 5_000_000_000_u64, "SetupTime": "2026-11-30T09:00:00Z"})
            .as_object()
            .unwrap()
            .clone();
        answered_by_default(&mut ev, now);
        assert_eq!(ev["AnswerTime"], "2026-11-30T09:00:00Z");
        let mut ev = json!({"Usage": "0s"}).as_object().unwrap().clone();
        answered_by_default(&mut ev, now);
        assert!(!ev.contains_key("AnswerTime"));
        let mut ev = json!({"Usage": "9s", "AnswerTime": "2026-11-30T08:00:00Z"})
            .as_object()
            .unwrap()
            .clone();
        answered_by_default(&mut ev, now);
        assert_eq!(ev["AnswerTime"], "2026-11-30T08:00:00Z");
    }
}
