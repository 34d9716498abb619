//! OpenSIPS accounting events turned into SessionSv1 arguments, with the
//! fields CGRateS's `OsipsEvent` reads (`cgr_*`, `callid`, `created`,
//! `time`, `duration`, `sip_code`, `dialog_id`...).

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Value};

use super::datagram::OsipsEvent;
use crate::Error;

/// Arguments CGRateS reads into CDR fields (or its own): not copied as
/// extra fields (CGRateS's `GetExtraFields` primary list).
const PRIMARY: &[&str] = &[
    "to_tag",
    "setuptime",
    "created",
    "method",
    "callid",
    "sip_reason",
    "time",
    "sip_code",
    "duration",
    "from_tag",
    "dialog_id",
    "h_entry",
    "h_id",
    "cgr_tenant",
    "cgr_category",
    "cgr_reqtype",
    "cgr_account",
    "cgr_subject",
    "cgr_destination",
    "cgr_supplier",
    "cgr_pdd",
    "cgr_answertime",
];

/// OpenSIPS's dialog hash, what `dlg_end_dlg` needs.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DialogHash {
    /// `h_entry`.
    pub entry: String,
    /// `h_id`.
    pub id: String,
}

impl DialogHash {
    /// The dialog of an event: `dialog_id` as `h_entry:h_id`, else the
    /// `h_entry` and `h_id` arguments; both must be numbers.
    pub fn of(ev: &OsipsEvent) -> Option<DialogHash> {
        let (entry, id) = match ev.non_empty("dialog_id") {
            Some(d) => d.split_once(':')?,
            None => (ev.non_empty("h_entry")?, ev.non_empty("h_id")?),
        };
        let num = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        (num(entry) && num(id)).then(|| DialogHash {
            entry: entry.to_owned(),
            id: id.to_owned(),
        })
    }
}

/// A time argument: epoch seconds (with a fraction or not) or RFC 3339.
///
/// # Errors
/// [`Error::Time`] when it is neither.
pub fn parse_time(field: &'static str, value: &str) -> Result<DateTime<Utc>, Error> {
    let v = value.trim();
    let bad = || Error::Time {
        field,
        value: value.to_owned(),
    };
    if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        let (secs, frac) = v.split_once('.').unwrap_or((v, ""));
        let secs: i64 = secs.parse().map_err(|_| bad())?;
        let nanos: u32 = if frac.is_empty() {
            0
        } else {
            let digits: String = frac.chars().chain(std::iter::repeat('0')).take(9).collect();
            digits.parse().map_err(|_| bad())?
        };
        return DateTime::from_timestamp(secs, nanos).ok_or_else(bad);
    }
    DateTime::parse_from_rfc3339(v)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| bad())
}

/// A whole-seconds (or fractional) duration argument as a CGRateS
/// duration text (`"7s"`); `None` when empty.
///
/// # Errors
/// [`Error::Datagram`] when it is not a number of seconds.
pub fn seconds(field: &str, value: Option<&str>) -> Result<Option<String>, Error> {
    let Some(v) = value.map(str::trim).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    let ok = v.bytes().all(|b| b.is_ascii_digit() || b == b'.') && v.parse::<f64>().is_ok();
    if !ok {
        return Err(Error::Datagram(format!("{field} {v:?} is not seconds")));
    }
    Ok(Some(format!("{v}s")))
}

/// RFC 3339 text of a time.
pub fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// What the agent knows that the event does not say.
pub struct Defaults<'a> {
    /// `OriginHost`.
    pub origin_host: &'a str,
    /// The tenant of events without `cgr_tenant`.
    pub tenant: &'a str,
    /// The request type of events without `cgr_reqtype`.
    pub request_type: &'a str,
    /// The CGREvent's ID.
    pub id: String,
    /// When the event was read.
    pub now: DateTime<Utc>,
}

/// The request type of an event (`cgr_reqtype`, else the default).
pub fn request_type<'a>(ev: &'a OsipsEvent, d: &'a str) -> &'a str {
    ev.non_empty("cgr_reqtype").unwrap_or(d)
}

/// The CGREvent of `ev` as CGRateS's `OsipsEvent.AsCDR` reads it:
/// `OriginID` = `callid`, `Source` = `OSIPS_` + the event name, the
/// `cgr_*` fields, `SetupTime` from `created` (else `time`),
/// `AnswerTime` from `cgr_answertime` (else `answer`), `Usage` from
/// `duration`, `DisconnectCause` from `sip_code`, the other arguments as
/// extra fields.
///
/// # Errors
/// [`Error::Time`] or [`Error::Datagram`] when a time or duration does
/// not parse.
pub fn cgr_event(
    ev: &OsipsEvent,
    answer: Option<DateTime<Utc>>,
    d: &Defaults<'_>,
) -> Result<Map<String, Value>, Error> {
    let mut e = Map::new();
    for (k, v) in &ev.args {
        if !k.is_empty() && !PRIMARY.contains(&k.as_str()) && !e.contains_key(k) {
            e.insert(k.clone(), v.clone().into());
        }
    }
    let mut set = |k: &str, v: &str| {
        e.insert(k.into(), v.into());
    };
    set("ToR", "*voice");
    set("OriginID", ev.get("callid").unwrap_or_default());
    set("OriginHost", d.origin_host);
    set("Source", &format!("OSIPS_{}", ev.name));
    set("RequestType", request_type(ev, d.request_type));
    let tenant = ev.non_empty("cgr_tenant").unwrap_or(d.tenant);
    set("Tenant", tenant);
    set("Category", ev.non_empty("cgr_category").unwrap_or("call"));
    let account = ev.non_empty("cgr_account").unwrap_or_default();
    set("Account", account);
    set("Subject", ev.non_empty("cgr_subject").unwrap_or(account));
    set(
        "Destination",
        ev.non_empty("cgr_destination").unwrap_or_default(),
    );
    if let Some(s) = ev.non_empty("cgr_supplier") {
        set("Supplier", s);
    }
    if let Some(c) = ev.non_empty("sip_code") {
        set("DisconnectCause", c);
    }
    if let Some(p) = seconds("cgr_pdd", ev.get("cgr_pdd"))? {
        set("PDD", &p);
    }
    if let Some(u) = seconds("duration", ev.get("duration"))? {
        set("Usage", &u);
    }
    let setup = match ev.non_empty("created").or(ev.non_empty("time")) {
        Some(t) => Some(parse_time("SetupTime", t)?),
        None => None,
    };
    if let Some(t) = setup {
        set("SetupTime", &rfc3339(t));
    }
    let answer = match ev.non_empty("cgr_answertime") {
        Some(t) => Some(parse_time("AnswerTime", t)?),
        None => answer,
    };
    if let Some(t) = answer {
        set("AnswerTime", &rfc3339(t));
    }
    let mut out = Map::new();
    out.insert("Tenant".into(), tenant.into());
    out.insert("ID".into(), d.id.clone().into());
    out.insert("Time".into(), rfc3339(d.now).into());
    out.insert("Event".into(), Value::Object(e));
    out.insert("APIOpts".into(), Value::Object(Map::new()));
    Ok(out)
}
