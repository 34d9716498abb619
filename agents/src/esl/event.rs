//! FreeSWITCH events (`text/event-plain`, `text/event-json`) and the
//! CGREvent CGRateS's FreeSWITCH agent makes of them (`fsevent.go`, v0.10:
//! the `variable_cgr_*` channel variables first, then the channel's own
//! headers).

use std::collections::HashMap;

use percent_encoding::percent_decode_str;
use serde_json::{Map, Value};

use super::frame::parse_headers;
use crate::Error;

/// One event: header name to (decoded) value; a body, if any, is `_body`.
pub type FsEvent = HashMap<String, String>;

/// `Unique-ID`: the channel, the session's `OriginID`.
pub const UUID: &str = "Unique-ID";
/// `Event-Name`.
pub const NAME: &str = "Event-Name";
/// The dialed number the call goes on to after the park.
pub const CALL_DEST_NR: &str = "Caller-Destination-Number";
/// `variable_sip_req_user`: the destination when the number is missing.
pub const SIP_REQ_USER: &str = "variable_sip_req_user";

/// Reads a `text/event-plain` body: URL-encoded `Key: Value` lines, then,
/// when they hold `Content-Length`, a body kept as `_body`.
///
/// # Errors
/// [`Error::EslEvent`] when the lines are not headers.
pub fn parse_plain(body: &[u8]) -> Result<FsEvent, Error> {
    let (head, rest) = match find(body, b"\n\n") {
        Some(i) => (body.get(..i).unwrap_or_default(), body.get(i + 2..)),
        None => (body, None),
    };
    let headers = parse_headers(head).map_err(|e| Error::EslEvent(e.to_string()))?;
    let mut ev = FsEvent::new();
    for (k, v) in headers {
        let v = percent_decode_str(&v).decode_utf8_lossy().into_owned();
        ev.insert(k, v);
    }
    if let (Some(len), Some(rest)) = (ev.get("Content-Length"), rest) {
        let len: usize = len
            .trim()
            .parse()
            .map_err(|_| Error::EslEvent("Content-Length is not a number".into()))?;
        let b = rest.get(..len).unwrap_or(rest);
        ev.insert("_body".into(), String::from_utf8_lossy(b).into_owned());
    }
    Ok(ev)
}

/// Reads a `text/event-json` body: an object of strings (numbers and
/// booleans kept as their text).
///
/// # Errors
/// [`Error::EslEvent`] when it is not a JSON object.
pub fn parse_json(body: &[u8]) -> Result<FsEvent, Error> {
    let v: Value = serde_json::from_slice(body).map_err(|e| Error::EslEvent(e.to_string()))?;
    let Value::Object(m) = v else {
        return Err(Error::EslEvent("not a JSON object".into()));
    };
    Ok(m.into_iter()
        .map(|(k, v)| {
            let s = match v {
                Value::String(s) => s,
                other => other.to_string(),
            };
            (k, s)
        })
        .collect())
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// The first non-empty value of `keys`.
pub fn first<'a>(ev: &'a FsEvent, keys: &[&str]) -> Option<&'a str> {
    keys.iter()
        .filter_map(|k| ev.get(*k))
        .map(String::as_str)
        .find(|v| !v.is_empty())
}

/// What the agent knows that the event does not say.
#[derive(Debug, Clone)]
pub struct Defaults<'a> {
    /// The connection's alias or address.
    pub origin_host: &'a str,
    /// The default tenant.
    pub tenant: &'a str,
    /// The default request type.
    pub request_type: &'a str,
    /// The default category.
    pub category: &'a str,
    /// The CGREvent's `ID`.
    pub id: String,
}

/// The request type: `variable_cgr_reqtype`, else `*none` for a channel
/// FreeSWITCH writes no CDR for or an inline dialplan, else the default.
pub fn request_type(ev: &FsEvent, default: &str) -> String {
    if let Some(t) = first(ev, &["variable_cgr_reqtype"]) {
        return t.to_string();
    }
    if ev.get("variable_process_cdr").is_some_and(|v| v == "false")
        || ev.get("Caller-Dialplan").is_some_and(|v| v == "inline")
    {
        return "*none".into();
    }
    default.to_string()
}

/// The number the call continues to after the park.
pub fn call_dest_nr(ev: &FsEvent) -> &str {
    first(ev, &[CALL_DEST_NR, SIP_REQ_USER]).unwrap_or_default()
}

/// A FreeSWITCH microsecond epoch (`Caller-Channel-Created-Time`) as
/// RFC 3339 seconds (CGRateS drops the microseconds); `None` for `0` or
/// missing.
fn fs_time(ev: &FsEvent, key: &str) -> Option<String> {
    let v = ev.get(key)?.trim();
    if v.is_empty() || v == "0" {
        return None;
    }
    let us: i64 = v.parse().ok()?;
    let t = chrono::DateTime::from_timestamp(us.div_euclid(1_000_000), 0)?;
    Some(t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
}

/// The CGREvent of `ev` (CGRateS's `AsCGREvent`): `ToR`, `OriginID`,
/// `OriginHost`, `Source`, `RequestType`, `Tenant`, `Category`, `Account`,
/// `Subject`, `Destination`, `SetupTime`, `AnswerTime`, `Usage`, `PDD`,
/// `Route`, `DisconnectCause`; `Time` is the setup time.
pub fn cgr_event(ev: &FsEvent, d: &Defaults<'_>) -> Map<String, Value> {
    let mut e = Map::new();
    let mut put = |k: &str, v: &str| {
        e.insert(k.into(), v.into());
    };
    put("ToR", "*voice");
    put("OriginID", ev.get(UUID).map_or("", String::as_str));
    put(
        "OriginHost",
        first(ev, &["variable_cgr_originhost"]).unwrap_or(d.origin_host),
    );
    let name = ev.get(NAME).map_or("", String::as_str);
    put("Source", &format!("FS_{name}"));
    put("RequestType", &request_type(ev, d.request_type));
    let tenant = first(ev, &["variable_cgr_tenant"]).unwrap_or(d.tenant);
    put("Tenant", tenant);
    put(
        "Category",
        first(ev, &["variable_cgr_category"]).unwrap_or(d.category),
    );
    let account = first(ev, &["variable_cgr_account", "Caller-Username"]).unwrap_or_default();
    put("Account", account);
    put(
        "Subject",
        first(ev, &["variable_cgr_subject"]).unwrap_or(account),
    );
    put(
        "Destination",
        first(
            ev,
            &["variable_cgr_destination", CALL_DEST_NR, SIP_REQ_USER],
        )
        .unwrap_or_default(),
    );
    let setup = fs_time(ev, "Caller-Channel-Created-Time");
    if let Some(t) = &setup {
        put("SetupTime", t);
    }
    if let Some(t) = fs_time(ev, "Caller-Channel-Answered-Time") {
        put("AnswerTime", &t);
    }
    if let Some(s) = first(ev, &["variable_billsec"]) {
        put("Usage", &format!("{s}s"));
    }
    if let Some(ms) = first(
        ev,
        &["variable_progress_mediamsec", "variable_progressmsec"],
    ) {
        put("PDD", &format!("{ms}ms"));
    }
    if let Some(r) = first(ev, &["variable_cgr_route", "variable_cgr_supplier"]) {
        put("Route", r);
    }
    if let Some(c) = first(ev, &["variable_cgr_disconnect_cause", "Hangup-Cause"]) {
        put("DisconnectCause", c);
    }
    let mut out = Map::new();
    out.insert("Tenant".into(), tenant.into());
    out.insert("ID".into(), d.id.clone().into());
    out.insert("Time".into(), setup.map_or(Value::Null, Value::from));
    out.insert("Event".into(), Value::Object(e));
    out.insert("APIOpts".into(), Value::Object(Map::new()));
    out
}

/// The fields CGRateS requires of a call (`MissingParameter`), the first
/// missing one.
pub fn missing(ev: &FsEvent) -> Option<&'static str> {
    if first(ev, &["variable_cgr_account", "Caller-Username"]).is_none() {
        return Some("Account");
    }
    if first(
        ev,
        &["variable_cgr_destination", CALL_DEST_NR, SIP_REQ_USER],
    )
    .is_none()
    {
        return Some("Destination");
    }
    if first(ev, &[UUID]).is_none() {
        return Some("OriginID");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_values_are_url_decoded_and_a_body_is_kept() {
        let body = b"Event-Name: BACKGROUND_JOB\nJob-UUID: 7f4d\nCaller-Caller-ID-Name: Extension%201000\nContent-Length: 13\n\n+OK 7f4d-aa\n\n";
        let ev = parse_plain(body).unwrap();
        assert_eq!(ev["Caller-Caller-ID-Name"], "Extension 1000");
        assert_eq!(ev["_body"], "+OK 7f4d-aa\n\n");
        assert!(parse_plain(b"garbage line\n").is_err());
    }

    #[test]
    fn json_strings_and_numbers() {
        let ev = parse_json(br#"{"Event-Name":"CHANNEL_ANSWER","Unique-ID":"u1","x":5}"#).unwrap();
        assert_eq!(ev["Unique-ID"], "u1");
        assert_eq!(ev["x"], "5");
        assert!(parse_json(b"[1]").is_err());
        assert!(parse_json(b"{").is_err());
    }

    #[test]
    fn cgr_variables_first_then_the_channel() {
        let mut ev = FsEvent::new();
        for (k, v) in [
            ("Event-Name", "CHANNEL_HANGUP_COMPLETE"),
            ("Unique-ID", "u1"),
            ("Caller-Username", "1001"),
            ("Caller-Destination-Number", "1002"),
            ("variable_cgr_destination", "4930555002"),
            ("variable_cgr_reqtype", "*prepaid"),
            ("Caller-Channel-Created-Time", "1714564800123456"),
            ("Caller-Channel-Answered-Time", "1714564803000000"),
            ("variable_billsec", "50"),
            ("Hangup-Cause", "NORMAL_CLEARING"),
        ] {
            ev.insert(k.into(), v.into());
        }
        let d = Defaults {
            origin_host: "fs1",
            tenant: "cgrates.org",
            request_type: "*rated",
            category: "call",
            id: "esl-1".into(),
        };
        let a = cgr_event(&ev, &d);
        let e = &a["Event"];
        assert_eq!(e["Account"], "1001");
        assert_eq!(e["Subject"], "1001");
        assert_eq!(e["Destination"], "4930555002");
        assert_eq!(e["RequestType"], "*prepaid");
        assert_eq!(e["OriginHost"], "fs1");
        assert_eq!(e["Source"], "FS_CHANNEL_HANGUP_COMPLETE");
        assert_eq!(e["SetupTime"], "2024-05-01T12:00:00Z");
        assert_eq!(e["AnswerTime"], "2024-05-01T12:00:03Z");
        assert_eq!(e["Usage"], "50s");
        assert_eq!(e["DisconnectCause"], "NORMAL_CLEARING");
        assert_eq!(a["Time"], "2024-05-01T12:00:00Z");
        assert_eq!(missing(&ev), None);
        ev.remove("Caller-Username");
        assert_eq!(missing(&ev), Some("Account"));
        ev.insert("variable_process_cdr".into(), "false".into());
        ev.remove("variable_cgr_reqtype");
        assert_eq!(request_type(&ev, "*rated"), "*none");
    }
}
