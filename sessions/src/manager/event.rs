//! What a session operation is given: [`SessionEvent`], from CGRateS's
//! flattened CGREvent JSON or from the dialog machine.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use chrono::{DateTime, NaiveDateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sip_fsm::CallInfo;

use super::SessionKey;
use crate::Error;
use crate::cdr::{DEFAULT_RUN_ID, TOR_VOICE, cgrid, cgrid_bytes, origin_host};

/// The option key of a per-call debit interval in `APIOpts`/`Opts`.
pub const OPT_DEBIT_INTERVAL: &str = "*sessionsDebitInterval";

/// CGRateS v0.10's event field with a per-call debit interval.
pub const FIELD_DEBIT_INTERVAL: &str = "CGRDebitInterval";

/// Who owns a call: who can end it when its money runs out.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum Owner {
    /// Seen on the wire (HEP, a tap): nobody can disconnect it.
    Passive,
    /// A JSON-RPC client (SessionSv1).
    #[default]
    Api,
    /// An agent (evapi, ESL, ARI...), by its id.
    Agent(String),
}

impl fmt::Display for Owner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Owner::Passive => f.write_str("*passive"),
            Owner::Api => f.write_str("*api"),
            Owner::Agent(id) => f.write_str(id),
        }
    }
}

/// How a call is charged (CGRateS's `RequestType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum RequestType {
    /// `*none` or empty: not charged, not priced.
    None,
    /// `*prepaid`: reserved before it is used, settled at the end.
    Prepaid,
    /// `*pseudoprepaid`: authorized on the balance, debited at the end.
    PseudoPrepaid,
    /// `*postpaid`: debited at the end, may go below zero.
    Postpaid,
    /// `*rated`: priced only.
    Rated,
}

impl RequestType {
    /// Parses `*prepaid`, `*pseudoprepaid`, `*postpaid`, `*rated`, `*none`
    /// or empty.
    ///
    /// # Errors
    /// [`Error::InvalidField`] for anything else.
    pub fn parse(s: &str) -> Result<Self, Error> {
        Ok(match s.trim() {
            "" | "*none" => RequestType::None,
            "*prepaid" => RequestType::Prepaid,
            "*pseudoprepaid" => RequestType::PseudoPrepaid,
            "*postpaid" => RequestType::Postpaid,
            "*rated" => RequestType::Rated,
            other => {
                return Err(Error::InvalidField {
                    field: "RequestType".into(),
                    value: other.into(),
                    why: "expected *prepaid, *pseudoprepaid, *postpaid, *rated or *none",
                });
            }
        })
    }

    /// The CGRateS spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            RequestType::None => "*none",
            RequestType::Prepaid => "*prepaid",
            RequestType::PseudoPrepaid => "*pseudoprepaid",
            RequestType::Postpaid => "*postpaid",
            RequestType::Rated => "*rated",
        }
    }

    /// Whether the account's balances are debited.
    pub fn debits(self) -> bool {
        matches!(
            self,
            RequestType::Prepaid | RequestType::PseudoPrepaid | RequestType::Postpaid
        )
    }
}

/// One session event with CGRateS's event fields.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SessionEvent {
    /// The CGREvent's `ID`.
    pub id: String,
    /// Tenant (`cgrates.org` when not given).
    pub tenant: String,
    /// Account that pays.
    pub account: String,
    /// Rating subject; the account when empty.
    pub subject: String,
    /// Dialled number.
    pub destination: String,
    /// Category (`call` when not given).
    pub category: String,
    /// Type of record (`*voice` when not given).
    pub tor: String,
    /// `*prepaid`, `*postpaid`... (see [`RequestType`]).
    pub request_type: String,
    /// The call's id at its origin.
    pub origin_id: String,
    /// Where the call was handled.
    pub origin_host: String,
    /// What sent the event.
    pub source: String,
    /// When the call was set up.
    pub setup_time: Option<DateTime<Utc>>,
    /// When it was answered.
    pub answer_time: Option<DateTime<Utc>>,
    /// Usage: the requested usage for authorize/initiate/update, the total
    /// for terminate and a CDR.
    pub usage: Option<Duration>,
    /// On update: the usage since the last update.
    pub last_used: Option<Duration>,
    /// `*sessionsDebitInterval` of `APIOpts`: this call's debit interval.
    pub debit_interval: Option<Duration>,
    /// Every other event field, as text.
    pub extra_fields: BTreeMap<String, String>,
    /// Who owns the call.
    pub owner: Owner,
    /// The charging run ChargerS derived this event for (its session is
    /// `(CGRID, run)`); `None` without ChargerS: the one `*default` run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
}

/// The event fields with a field of their own in [`SessionEvent`].
const KNOWN: &[&str] = &[
    "Tenant",
    "Account",
    "Subject",
    "Destination",
    "Category",
    "ToR",
    "RequestType",
    "OriginID",
    "OriginHost",
    "Source",
    "SetupTime",
    "AnswerTime",
    "Usage",
    "LastUsed",
];

impl SessionEvent {
    /// From CGRateS's flattened CGREvent: `{"Tenant":..,"ID":..,
    /// "Event":{...},"APIOpts":{...}}` (`Opts` is read too). The debit
    /// interval is `*sessionsDebitInterval` of the options, else v0.10's
    /// `CGRDebitInterval` event field (kept among the extra fields, as
    /// CGRateS keeps it in the event). Usage and
    /// LastUsed are integer nanoseconds, Go durations (`1m30s`) or digit
    /// strings (nanoseconds); times RFC 3339, `2006-01-02 15:04:05` (UTC)
    /// or Unix seconds. Other keys of the CGREvent (`InitSession`...) are
    /// the caller's.
    ///
    /// # Errors
    /// [`Error::InvalidField`] for a field that does not parse.
    pub fn from_cgr_event(args: &Map<String, Value>, owner: Owner) -> Result<Self, Error> {
        let empty = Map::new();
        let ev = match args.get("Event") {
            Some(Value::Object(m)) => m,
            None | Some(Value::Null) => &empty,
            Some(_) => return Err(invalid("Event", "not an object", "an object")),
        };
        let text = |k: &str| ev.get(k).map(value_text).unwrap_or_default();
        let tenant = match text("Tenant") {
            t if !t.is_empty() => t,
            _ => args.get("Tenant").map(value_text).unwrap_or_default(),
        };
        let opts = [args.get("APIOpts"), args.get("Opts")]
            .into_iter()
            .flatten()
            .find_map(Value::as_object);
        let debit_interval = match opts.and_then(|o| o.get(OPT_DEBIT_INTERVAL)) {
            Some(v) => Some(duration(OPT_DEBIT_INTERVAL, v)?),
            None => ev
                .get(FIELD_DEBIT_INTERVAL)
                .map(|v| duration(FIELD_DEBIT_INTERVAL, v))
                .transpose()?,
        };
        let extra_fields = ev
            .iter()
            .filter(|(k, _)| !KNOWN.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), value_text(v)))
            .collect();
        Ok(SessionEvent {
            id: args.get("ID").map(value_text).unwrap_or_default(),
            tenant,
            account: text("Account"),
            subject: text("Subject"),
            destination: text("Destination"),
            category: text("Category"),
            tor: text("ToR"),
            request_type: text("RequestType"),
            origin_id: text("OriginID"),
            origin_host: text("OriginHost"),
            source: text("Source"),
            setup_time: ev
                .get("SetupTime")
                .map(|v| time("SetupTime", v))
                .transpose()?
                .flatten(),
            answer_time: ev
                .get("AnswerTime")
                .map(|v| time("AnswerTime", v))
                .transpose()?
                .flatten(),
            usage: ev.get("Usage").map(|v| duration("Usage", v)).transpose()?,
            last_used: ev
                .get("LastUsed")
                .map(|v| duration("LastUsed", v))
                .transpose()?,
            debit_interval,
            extra_fields,
            owner,
            run_id: None,
        })
    }

    /// A passive call's event from the dialog machine: charging fields from
    /// the call's mapping, OriginID/OriginHost as its CDR has them, setup
    /// time from the first INVITE.
    pub fn from_call(call: &CallInfo) -> Self {
        let c = &call.charging;
        let setup = call.setup_time;
        SessionEvent {
            id: call.origin_id(),
            tenant: c.tenant.to_string(),
            account: c.account.to_string(),
            subject: c.subject.to_string(),
            destination: c.destination.to_string(),
            category: c.category.to_string(),
            tor: TOR_VOICE.to_owned(),
            request_type: c.request_type.to_string(),
            origin_id: call.origin_id(),
            origin_host: origin_host(call),
            source: String::new(),
            setup_time: DateTime::from_timestamp(setup.secs(), setup.subsec_nanos()),
            owner: Owner::Passive,
            ..SessionEvent::default()
        }
    }

    /// The session this event belongs to: `cgrid(OriginID, OriginHost)` and
    /// the `*default` run. For a passive call use [`SessionEvent::key_of_call`]
    /// (the CGRID hashes the Call-ID's raw bytes).
    pub fn key(&self) -> SessionKey {
        SessionKey {
            cgrid: cgrid(&self.origin_id, &self.origin_host),
            run_id: self.run().to_owned(),
        }
    }

    /// The charging run: ChargerS's, else `*default`.
    pub fn run(&self) -> &str {
        self.run_id.as_deref().unwrap_or(DEFAULT_RUN_ID)
    }

    /// Whether this is a run ChargerS derived (its unpriced CDRs carry
    /// Cost -1, as CGRateS's).
    pub fn derived(&self) -> bool {
        self.run_id.is_some()
    }

    /// The session of a passive call: the CGRID of its CDR.
    pub fn key_of_call(call: &CallInfo) -> SessionKey {
        SessionKey {
            cgrid: cgrid_bytes(&call.origin_id_bytes(), &origin_host(call)),
            run_id: DEFAULT_RUN_ID.to_owned(),
        }
    }

    /// The session of one run of a passive call: the call's CGRID, this
    /// event's run.
    pub fn key_of_call_run(&self, call: &CallInfo) -> SessionKey {
        SessionKey {
            run_id: self.run().to_owned(),
            ..SessionEvent::key_of_call(call)
        }
    }

    /// The request type.
    ///
    /// # Errors
    /// [`Error::InvalidField`] for an unknown one.
    pub fn request_type(&self) -> Result<RequestType, Error> {
        RequestType::parse(&self.request_type)
    }

    /// Fills CGRateS's defaults: tenant `cgrates.org`, category `call`, ToR
    /// `*voice`, subject = account.
    pub fn with_defaults(mut self) -> Self {
        if self.tenant.is_empty() {
            "cgrates.org".clone_into(&mut self.tenant);
        }
        if self.category.is_empty() {
            "call".clone_into(&mut self.category);
        }
        if self.tor.is_empty() {
            TOR_VOICE.clone_into(&mut self.tor);
        }
        if self.subject.is_empty() {
            self.subject.clone_from(&self.account);
        }
        self
    }

    /// The fields a session operation needs: OriginID always, Account and
    /// Destination when the call is charged or priced.
    ///
    /// # Errors
    /// [`Error::MandatoryMissing`] naming them.
    pub fn check_mandatory(&self, rt: RequestType) -> Result<(), Error> {
        self.check_fields(rt, true)
    }

    /// The fields an authorization needs: as
    /// [`SessionEvent::check_mandatory`] but no `OriginID` (CGRateS's
    /// `AuthorizeEvent`/`GetMaxUsage` prices the event without a session,
    /// and CGRateS's Kamailio tutorial authorizes without one).
    ///
    /// # Errors
    /// [`Error::MandatoryMissing`] naming them.
    pub fn check_authorize(&self, rt: RequestType) -> Result<(), Error> {
        self.check_fields(rt, false)
    }

    fn check_fields(&self, rt: RequestType, origin_id: bool) -> Result<(), Error> {
        let mut missing = Vec::new();
        if origin_id && self.origin_id.is_empty() {
            missing.push("OriginID");
        }
        if rt != RequestType::None {
            if self.account.is_empty() {
                missing.push("Account");
            }
            if self.destination.is_empty() {
                missing.push("Destination");
            }
        }
        if missing.is_empty() {
            Ok(())
        } else {
            Err(Error::MandatoryMissing(missing))
        }
    }
}

fn invalid(field: &str, value: &str, why: &'static str) -> Error {
    Error::InvalidField {
        field: field.to_owned(),
        value: value.to_owned(),
        why,
    }
}

/// A JSON value as CGRateS reads it as a string: strings as they are,
/// numbers and booleans in their JSON spelling, null as empty.
fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

const DURATION_FORMS: &str = "integer nanoseconds, a Go duration (1m30s) or a digit string";

/// Integer nanoseconds, a Go duration or a digit string (nanoseconds).
fn duration(field: &str, v: &Value) -> Result<Duration, Error> {
    match v {
        Value::Number(n) => n
            .as_u64()
            .map(Duration::from_nanos)
            .ok_or_else(|| invalid(field, &n.to_string(), DURATION_FORMS)),
        Value::String(s) => {
            rating::parse_duration(s.trim()).map_err(|_| invalid(field, s, DURATION_FORMS))
        }
        other => Err(invalid(field, &other.to_string(), DURATION_FORMS)),
    }
}

const TIME_FORMS: &str = "RFC 3339, 2006-01-02 15:04:05 or Unix seconds";

/// RFC 3339, `2006-01-02 15:04:05` (UTC) or Unix seconds; empty, zero and
/// Go's zero time mean "not set".
fn time(field: &str, v: &Value) -> Result<Option<DateTime<Utc>>, Error> {
    let from_secs = |s: i64| {
        if s == 0 {
            Ok(None)
        } else {
            DateTime::from_timestamp(s, 0)
                .map(Some)
                .ok_or_else(|| invalid(field, &s.to_string(), TIME_FORMS))
        }
    };
    match v {
        Value::Null => Ok(None),
        Value::Number(n) => match n.as_i64() {
            Some(s) => from_secs(s),
            None => Err(invalid(field, &n.to_string(), TIME_FORMS)),
        },
        Value::String(s) => {
            let s = s.trim();
            if s.is_empty() || s.starts_with("0001-01-01") {
                return Ok(None);
            }
            if s.bytes().all(|b| b.is_ascii_digit()) {
                return match s.parse::<i64>() {
                    Ok(n) => from_secs(n),
                    Err(_) => Err(invalid(field, s, TIME_FORMS)),
                };
            }
            if let Ok(t) = DateTime::parse_from_rfc3339(s) {
                return Ok(Some(t.with_timezone(&Utc)));
            }
            NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f")
                .map(|t| Some(t.and_utc()))
                .map_err(|_| invalid(field, s, TIME_FORMS))
        }
        other => Err(invalid(field, &other.to_string(), TIME_FORMS)),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use chrono::TimeZone;
    use serde_json::json;

    use super::*;

    fn parse(v: Value) -> Result<SessionEvent, Error> {
        SessionEvent::from_cgr_event(v.as_object().unwrap(), Owner::Api)
    }

    #[test]
    fn flattened_cgr_event_with_api_opts() {
        let ev = parse(json!({
            "InitSession": true,
            "Tenant": "cgrates.org",
            "ID": "ev1",
            "Event": {
                "OriginID": "abc", "OriginHost": "10.0.0.1", "Account": "1001",
                "Destination": "1002", "RequestType": "*prepaid",
                "SetupTime": "2024-05-13T10:00:00Z", "AnswerTime": 1715594405,
                "Usage": "1m30s", "LastUsed": 5_000_000_000_u64, "Codec": "PCMA", "Port": 5060
            },
            "APIOpts": {"*sessionsDebitInterval": "10s"}
        }))
        .unwrap();
        assert_eq!(ev.tenant, "cgrates.org");
        assert_eq!(ev.id, "ev1");
        assert_eq!(ev.usage, Some(Duration::from_secs(90)));
        assert_eq!(ev.last_used, Some(Duration::from_secs(5)));
        assert_eq!(ev.debit_interval, Some(Duration::from_secs(10)));
        assert_eq!(
            ev.setup_time,
            Some(Utc.with_ymd_and_hms(2024, 5, 13, 10, 0, 0).unwrap())
        );
        assert_eq!(
            ev.answer_time,
            Some(Utc.with_ymd_and_hms(2024, 5, 13, 10, 0, 5).unwrap())
        );
        assert_eq!(ev.extra_fields["Codec"], "PCMA");
        assert_eq!(ev.extra_fields["Port"], "5060");
        assert_eq!(ev.request_type().unwrap(), RequestType::Prepaid);
        assert_eq!(ev.key().cgrid, cgrid("abc", "10.0.0.1"));
    }

    #[test]
    fn opts_digit_usage_and_space_separated_time() {
        let ev = parse(json!({
            "Event": {"OriginID": "x", "Usage": "120000000000",
                      "AnswerTime": "2024-05-13 10:00:05"},
            "Opts": {"*sessionsDebitInterval": 5_000_000_000_u64}
        }))
        .unwrap();
        assert_eq!(ev.usage, Some(Duration::from_secs(120)));
        assert_eq!(ev.debit_interval, Some(Duration::from_secs(5)));
        assert_eq!(
            ev.answer_time,
            Some(Utc.with_ymd_and_hms(2024, 5, 13, 10, 0, 5).unwrap())
        );
        let ev = ev.with_defaults();
        assert_eq!(
            (ev.tenant.as_str(), ev.category.as_str()),
            ("cgrates.org", "call")
        );
    }

    #[test]
    fn v0_10_debit_interval_event_field() {
        let ev = parse(json!({"Event": {"OriginID": "x", "CGRDebitInterval": "5s"}})).unwrap();
        assert_eq!(ev.debit_interval, Some(Duration::from_secs(5)));
        let ev = parse(json!({"Event": {"OriginID": "x", "CGRDebitInterval": "5s"},
                              "APIOpts": {"*sessionsDebitInterval": "7s"}}))
        .unwrap();
        assert_eq!(ev.debit_interval, Some(Duration::from_secs(7)));
        assert!(parse(json!({"Event": {"CGRDebitInterval": "soon"}})).is_err());
    }

    #[test]
    fn a_chargers_run_is_its_own_session_of_the_call() {
        let ev = parse(json!({"Event": {"OriginID": "x", "OriginHost": "h"}})).unwrap();
        assert_eq!(ev.key().run_id, "*default");
        assert!(!ev.derived());
        let mut run = ev.clone();
        run.run_id = Some("supplier".into());
        assert_eq!(run.key().run_id, "supplier");
        assert_eq!(run.key().cgrid, ev.key().cgrid);
        assert!(run.derived());
        // Saved before ChargerS (no run_id): still reads, as `*default`.
        let mut v = serde_json::to_value(&ev).unwrap();
        assert!(v.get("run_id").is_none(), "{v}");
        v.as_object_mut().unwrap().remove("run_id");
        let back: SessionEvent = serde_json::from_value(v).unwrap();
        assert_eq!(back, ev);
        let v = serde_json::to_value(&run).unwrap();
        let back: SessionEvent = serde_json::from_value(v).unwrap();
        assert_eq!(back.run(), "supplier");
    }

    #[test]
    fn bad_fields_are_errors_not_panics() {
        for bad in [
            json!({"Event": {"Usage": "soon"}}),
            json!({"Event": {"Usage": -5}}),
            json!({"Event": {"AnswerTime": "yesterday"}}),
            json!({"Event": {"AnswerTime": [1]}}),
            json!({"Event": 5}),
        ] {
            assert!(matches!(parse(bad), Err(Error::InvalidField { .. })));
        }
    }

    #[test]
    fn mandatory_fields_are_named_as_cgrates_does() {
        let ev = parse(json!({"Event": {"OriginID": "x"}})).unwrap();
        let e = ev.check_mandatory(RequestType::Postpaid).unwrap_err();
        assert_eq!(e.to_string(), "MANDATORY_IE_MISSING: [Account Destination]");
        assert!(ev.check_mandatory(RequestType::None).is_ok());
        // an authorization needs no OriginID, the charged fields still
        let ev = parse(json!({"Event": {"Account": "1001"}})).unwrap();
        assert!(ev.check_mandatory(RequestType::None).is_err());
        assert!(ev.check_authorize(RequestType::None).is_ok());
        let e = ev.check_authorize(RequestType::Prepaid).unwrap_err();
        assert_eq!(
            e.to_string(),
            Error::MandatoryMissing(vec!["Destination"]).to_string()
        );
        assert!(RequestType::parse("*prepay").is_err());
    }
}
