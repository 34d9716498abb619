//! Call detail records in the shape CGRateS stores them.
//!
//! One [`Cdr`] per call attempt, built from the [`CallRecord`] the dialog
//! machine emits when a call ends or fails. Field names are CGRateS' own
//! (`CGRID`, `OriginID`, `SetupTime`, `Usage`...), so a CDR serialised here
//! reads like one from `CDRsV1.GetCDRs`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use capture::Timestamp;
use chrono::{DateTime, SecondsFormat, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize, Serializer};
use sha1::{Digest, Sha1};
use sip_fsm::{CallInfo, CallRecord, EndReason, Party, ReasonInfo};

/// CGRateS' run id for the default charging run.
pub const DEFAULT_RUN_ID: &str = "*default";

/// Type of record for calls.
pub const TOR_VOICE: &str = "*voice";

/// `ExtraFields` keys this module fills.
pub mod extra {
    /// Why the call ended: `bye`, `cancel`, `rejected`, `timeout`,
    /// `session-expired`, `max-duration` or `dialog-lost`
    /// ([`sip_fsm::EndReason::as_str`]).
    pub const END_REASON: &str = "EndReason";
    /// When the call ended (RFC 3339); for answered calls also
    /// `AnswerTime + Usage`.
    pub const END_TIME: &str = "EndTime";
    /// Post-dial delay, Go duration syntax (`1.204ms`, `2.5s`).
    pub const PDD: &str = "PDD";
    /// First 180/183 to the answer or final response, Go duration syntax.
    pub const RING_TIME: &str = "RingTime";
    /// Who sent the BYE: `caller` or `callee`.
    pub const ENDED_BY: &str = "EndedBy";
    /// The final response code to the INVITE (also in `DisconnectCause`
    /// unless a BYE's Reason header is there).
    pub const SIP_CODE: &str = "SIPCode";
    /// The reason phrase of that response, when there was one.
    pub const SIP_PHRASE: &str = "SIPPhrase";
    /// The Reason header (RFC 3326) of the BYE, CANCEL or final response.
    pub const REASON: &str = "Reason";
    /// Why the call could not be rated (then `Cost` is -1).
    pub const RATING_ERROR: &str = "RatingError";
}

/// How CDRs are labelled where the call itself does not say.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CdrOptions {
    /// `RunID`; [`DEFAULT_RUN_ID`] by default.
    pub run_id: String,
    /// `Source`: what produced the CDR (`accurate` by default). Not the
    /// ingest path: the same call seen as raw SIP or as HEP must give the
    /// same CDR.
    pub source: String,
    /// `OriginHost` for every CDR; `None` derives it from each call
    /// ([`origin_host`]).
    pub origin_host: Option<String>,
}

impl Default for CdrOptions {
    fn default() -> Self {
        CdrOptions {
            run_id: DEFAULT_RUN_ID.to_owned(),
            source: "accurate".to_owned(),
            origin_host: None,
        }
    }
}

/// One call detail record, with CGRateS' field names.
///
/// Times serialise as RFC 3339 UTC with fractional seconds (microseconds,
/// or nanoseconds when the capture has them), `Usage` as integer
/// nanoseconds, `Cost` as an exact JSON number (or `null`).
///
/// Deserialises from the same JSON (and reads `Usage` also as a Go
/// duration, `Cost` also as a decimal string); `end_time` comes back from
/// `ExtraFields.EndTime`, else the answer time plus usage, else the setup
/// time.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "wire::CdrWire")]
pub struct Cdr {
    /// `sha1(OriginID + OriginHost)` in hex, as CGRateS computes it
    /// (`utils.Sha1`); see [`cgrid`].
    #[serde(rename = "CGRID")]
    pub cgrid: String,
    /// The charging run (`*default`).
    #[serde(rename = "RunID")]
    pub run_id: String,
    /// The call's OriginID ([`sip_fsm::CallInfo::origin_id`]): the
    /// Call-ID, with `;from-tag` appended for a later call reusing a
    /// Call-ID; bytes that are not UTF-8 are `%XX`-escaped
    /// ([`sip_fsm::escape_id`]).
    #[serde(rename = "OriginID")]
    pub origin_id: String,
    /// Where the call was seen; see [`origin_host`].
    #[serde(rename = "OriginHost")]
    pub origin_host: String,
    /// What produced the CDR.
    #[serde(rename = "Source")]
    pub source: String,
    /// Type of record (`*voice`).
    #[serde(rename = "ToR")]
    pub tor: String,
    /// `*rated`, `*postpaid`, `*prepaid`... from the mapping config.
    #[serde(rename = "RequestType")]
    pub request_type: String,
    /// Tenant.
    #[serde(rename = "Tenant")]
    pub tenant: String,
    /// Category.
    #[serde(rename = "Category")]
    pub category: String,
    /// Account that pays.
    #[serde(rename = "Account")]
    pub account: String,
    /// Rating subject.
    #[serde(rename = "Subject")]
    pub subject: String,
    /// Dialled number.
    #[serde(rename = "Destination")]
    pub destination: String,
    /// The first INVITE.
    #[serde(rename = "SetupTime", serialize_with = "ser_time")]
    pub setup_time: Timestamp,
    /// The first 2xx to the INVITE; `None` (`null`) when not answered.
    #[serde(rename = "AnswerTime", serialize_with = "ser_opt_time")]
    pub answer_time: Option<Timestamp>,
    /// Billable duration, nanoseconds; 0 when not answered.
    #[serde(rename = "Usage", serialize_with = "ser_nanos")]
    pub usage: Duration,
    /// Who set `Cost` (CGRateS's `CostSource`: `*sessions`, `*cdrs`...);
    /// empty, and then not serialised, when nobody did.
    #[serde(rename = "CostSource", skip_serializing_if = "String::is_empty")]
    pub cost_source: String,
    /// The call's cost; `None` when not rated, -1 when rating failed.
    #[serde(rename = "Cost", serialize_with = "ser_cost")]
    pub cost: Option<Decimal>,
    /// The final SIP code of the call, or the BYE's Reason header.
    #[serde(rename = "DisconnectCause")]
    pub disconnect_cause: String,
    /// Everything else; keys in [`extra`].
    #[serde(rename = "ExtraFields")]
    pub extra_fields: BTreeMap<String, String>,
    /// When the call ended (not a CGRateS field of its own: it is also in
    /// `ExtraFields` as `EndTime`). CDRs are written in this order.
    #[serde(skip)]
    pub end_time: Timestamp,
}

impl Cdr {
    /// The CDR of a finished call attempt.
    pub fn from_record(rec: &CallRecord, opts: &CdrOptions) -> Cdr {
        let call = &rec.call;
        let origin_id_bytes = call.origin_id_bytes();
        let origin_id = sip_fsm::escape_id(&origin_id_bytes);
        let origin_host = opts
            .origin_host
            .clone()
            .unwrap_or_else(|| origin_host(call));
        let c = &call.charging;
        let mut extra_fields = BTreeMap::new();
        let mut put = |k: &str, v: String| {
            extra_fields.insert(k.to_owned(), v);
        };
        put(extra::END_REASON, rec.end_reason.as_str().to_owned());
        put(extra::END_TIME, rfc3339(rec.end_time));
        put(extra::SIP_CODE, rec.code.to_string());
        if !rec.phrase.is_empty() {
            put(extra::SIP_PHRASE, rec.phrase.to_string());
        }
        if let Some(d) = rec.pdd {
            put(extra::PDD, rating::format_duration(d));
        }
        if let Some(d) = rec.ring_time {
            put(extra::RING_TIME, rating::format_duration(d));
        }
        if let Some(p) = rec.ended_by {
            let who = match p {
                Party::Caller => "caller",
                Party::Callee => "callee",
            };
            put(extra::ENDED_BY, who.to_owned());
        }
        let reason = rec.reason.as_ref().map(reason_header);
        if let Some(r) = &reason {
            put(extra::REASON, r.clone());
        }
        let disconnect_cause = match reason {
            Some(r) if rec.end_reason == EndReason::Bye => r,
            _ => rec.code.to_string(),
        };
        Cdr {
            // Over the real bytes: two Call-IDs that are not UTF-8 never
            // share a CGRID, and for UTF-8 ones this is `cgrid(OriginID, ..)`.
            cgrid: cgrid_bytes(&origin_id_bytes, &origin_host),
            run_id: opts.run_id.clone(),
            origin_id,
            origin_host,
            source: opts.source.clone(),
            tor: TOR_VOICE.to_owned(),
            request_type: c.request_type.to_string(),
            tenant: c.tenant.to_string(),
            category: c.category.to_string(),
            account: c.account.to_string(),
            subject: c.subject.to_string(),
            destination: c.destination.to_string(),
            setup_time: call.setup_time,
            answer_time: rec.answer_time,
            usage: if rec.answer_time.is_some() {
                rec.duration
            } else {
                Duration::ZERO
            },
            cost_source: String::new(),
            cost: None,
            disconnect_cause,
            extra_fields,
            end_time: rec.end_time,
        }
    }

    /// Whether the call was answered.
    pub fn answered(&self) -> bool {
        self.answer_time.is_some()
    }

    /// `Usage` in nanoseconds, as serialised.
    pub fn usage_nanos(&self) -> u64 {
        u64::try_from(self.usage.as_nanos()).unwrap_or(u64::MAX)
    }

    /// Marks the CDR as not ratable: `Cost` -1 and the reason in
    /// `ExtraFields` (`RatingError`), as CGRateS does.
    pub fn set_rating_error(&mut self, why: &str) {
        self.cost = Some(Decimal::NEGATIVE_ONE);
        self.extra_fields
            .insert(extra::RATING_ERROR.to_owned(), why.to_owned());
    }
}

/// CGRateS' CGRID: the hex SHA-1 of OriginID then OriginHost, concatenated
/// without a separator (`utils.Sha1(cdr.OriginID, cdr.OriginHost)`, which
/// writes each string into one hasher in turn).
pub fn cgrid(origin_id: &str, origin_host: &str) -> String {
    cgrid_bytes(origin_id.as_bytes(), origin_host)
}

/// [`cgrid`] over the OriginID's raw bytes (a Call-ID need not be UTF-8;
/// the hash is over what was on the wire, not its escaped text).
pub fn cgrid_bytes(origin_id: &[u8], origin_host: &str) -> String {
    let mut h = Sha1::new();
    h.update(origin_id);
    h.update(origin_host.as_bytes());
    hex::encode(h.finalize())
}

/// The default `OriginHost` of a call: the IP address the first INVITE was
/// sent to (the proxy or switch that handled it).
///
/// Not the capture point: a HEP copy names its agent (capture id or node)
/// where the raw frame has only addresses, and the CGRID, which hashes
/// OriginHost, must be the same whichever way the call was seen. A HEP copy
/// carries the message's own addresses, so this is the same for both.
pub fn origin_host(call: &CallInfo) -> String {
    call.dst.ip().to_string()
}

/// RFC 3339, UTC, with microseconds, or nanoseconds when the time has
/// sub-microsecond digits: `2026-11-23T12:54:18.516552Z`.
pub fn rfc3339(ts: Timestamp) -> String {
    let format = if ts.subsec_nanos() % 1_000 == 0 {
        SecondsFormat::Micros
    } else {
        SecondsFormat::Nanos
    };
    match DateTime::<Utc>::from_timestamp(ts.secs(), ts.subsec_nanos()) {
        Some(t) => t.to_rfc3339_opts(format, true),
        // Beyond chrono's range (year > 262143): cannot come from a capture
        // clock, but never panic on it.
        None => format!("@{}ns", ts.as_nanos()),
    }
}

/// A time as Go's `time.Time` marshals to JSON (`time.RFC3339Nano`, UTC):
/// the fraction of a second without its trailing zeros, none when whole
/// (`2026-11-23T12:54:18Z`, `2026-11-23T12:54:18.5Z`), as CGRateS's
/// replies show times.
pub fn go_time(t: DateTime<Utc>) -> String {
    let mut s = t.format("%Y-%m-%dT%H:%M:%S").to_string();
    let nanos = t.timestamp_subsec_nanos();
    if nanos != 0 {
        let frac = format!("{nanos:09}");
        s.push('.');
        s.push_str(frac.trim_end_matches('0'));
    }
    s.push('Z');
    s
}

/// [`go_time`] of a capture timestamp (`rfc3339` beyond chrono's range).
pub fn go_time_ts(ts: Timestamp) -> String {
    DateTime::<Utc>::from_timestamp(ts.secs(), ts.subsec_nanos())
        .map_or_else(|| rfc3339(ts), go_time)
}

/// A Reason header (RFC 3326 section 2) as it is written on the wire:
/// `Q.850;cause=16;text="Normal call clearing"`.
pub fn reason_header(r: &ReasonInfo) -> String {
    let mut s = r.protocol.to_string();
    if let Some(c) = r.cause {
        let _ = write!(s, ";cause={c}");
    }
    if let Some(t) = &r.text {
        let _ = write!(s, ";text=\"{t}\"");
    }
    s
}

fn ser_time<S: Serializer>(t: &Timestamp, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&rfc3339(*t))
}

fn ser_opt_time<S: Serializer>(t: &Option<Timestamp>, s: S) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => s.serialize_str(&rfc3339(*t)),
        None => s.serialize_none(),
    }
}

fn ser_nanos<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// Money is never a float: the decimal's exact digits go out as a JSON
/// number token (`serde_json`'s `RawValue`), so `0.1` stays `0.1`; the
/// digits come from rating's one JSON number writer.
fn ser_cost<S: Serializer>(c: &Option<Decimal>, s: S) -> Result<S::Ok, S::Error> {
    match c {
        None => s.serialize_none(),
        Some(d) => {
            let raw = serde_json::value::RawValue::from_string(rating::json_number(*d))
                .map_err(serde::ser::Error::custom)?;
            raw.serialize(s)
        }
    }
}

mod wire;

#[cfg(test)]
pub(crate) mod tests;
