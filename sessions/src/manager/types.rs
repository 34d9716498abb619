//! The session manager's data: keys, snapshots, actions, replies,
//! counters and configuration.

use std::fmt;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Deserializer, Serialize};

use super::{Owner, RequestType, SessionEvent};
use crate::Error;
use crate::cdr::Cdr;

/// A session: one charging run of one call.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct SessionKey {
    /// `sha1(OriginID + OriginHost)` ([`crate::cgrid`]).
    pub cgrid: String,
    /// The charging run (`*default`).
    pub run_id: String,
}

impl SessionKey {
    /// The key of the session's records in the account
    /// ([`rating::session_id`]).
    pub fn session_id(&self) -> String {
        rating::session_id(&self.cgrid, &self.run_id)
    }
}

impl fmt::Display for SessionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.cgrid, self.run_id)
    }
}

/// Asks whoever owns a call to end it; the agents implement it.
pub trait Disconnect {
    /// Ends the call of `session`, for `reason` (`INSUFFICIENT_CREDIT`...).
    ///
    /// # Errors
    /// [`Error::Disconnect`] when the owner cannot be reached.
    fn disconnect(&self, session: &SessionKey, reason: &str) -> Result<(), Error>;
}

/// The end of a passive call as it will be charged and recorded, made
/// durable before the charge ([`super::SessionManager::end_intent`]); a
/// restart finishes what a crash cut short with
/// [`super::SessionManager::handle_end_intent`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndIntent {
    /// The session.
    pub key: SessionKey,
    /// The call as an event (answer time and usage set).
    pub event: SessionEvent,
    /// Its CDR, not yet charged.
    pub cdr: Cdr,
}

/// An active session as it is persisted (JSON): everything needed to
/// resume it after a restart. It is also the manager's state of the
/// session, and what `GetActiveSessions` lists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionSnapshot {
    /// The session.
    pub key: SessionKey,
    /// The call's event (fields as last updated, owner included).
    pub event: SessionEvent,
    /// How it is charged.
    pub request_type: RequestType,
    /// When the call was answered: pieces are rated from here.
    pub answer_time: DateTime<Utc>,
    /// When the session was initiated.
    pub started: DateTime<Utc>,
    /// When the last event about it came (the TTL counts from here).
    pub last_update: DateTime<Utc>,
    /// Usage known so far (the sum of the LastUsed reports).
    pub total_usage: Duration,
    /// The last LastUsed report.
    pub last_usage: Duration,
    /// Usage reserved from the answer on (`*prepaid`).
    pub reserved: Duration,
    /// The sequence number of the next reservation.
    pub next_seq: u32,
    /// This call's debit interval (zero: one reservation of the whole
    /// MaxUsage).
    pub debit_interval: Duration,
    /// The usage granted at initiate (the MaxUsage reply).
    pub max_usage: Duration,
    /// A reservation got less than it asked for: the balance ran short.
    #[serde(default)]
    pub credit_short: bool,
    /// Set once a disconnect was asked for, with its reason: no more
    /// reservations are made.
    pub disconnect: Option<String>,
}

impl SessionSnapshot {
    /// When the usage reserved so far runs out.
    pub fn reserved_until(&self) -> DateTime<Utc> {
        plus(self.answer_time, self.reserved)
    }

    /// Who owns the call.
    pub fn owner(&self) -> &Owner {
        &self.event.owner
    }

    /// The session as CGRateS v0.10's `ExternalSession` (a
    /// `GetActiveSessions` item): event fields, times RFC 3339 (Go's zero
    /// time when unknown), `Source` as `SessionS_` + the event's
    /// `EventName`, `Usage` (known so far), `DurationIndex` (reserved so
    /// far) and `DebitInterval` in nanoseconds, `LoopIndex` the debits
    /// made, the rate fields 0, plus AccuRate's `Owner`.
    pub fn to_active_json(&self) -> serde_json::Value {
        let e = &self.event;
        let ns = |d: Duration| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        let time = |t: Option<DateTime<Utc>>| {
            t.map_or_else(|| GO_ZERO_TIME.to_owned(), crate::cdr::go_time)
        };
        serde_json::json!({
            "CGRID": self.key.cgrid,
            "RunID": self.key.run_id,
            "ToR": e.tor,
            "OriginID": e.origin_id,
            "OriginHost": e.origin_host,
            "Source": format!(
                "SessionS_{}",
                e.extra_fields.get("EventName").map_or("", String::as_str)
            ),
            "RequestType": e.request_type,
            "Tenant": e.tenant,
            "Category": e.category,
            "Account": e.account,
            "Subject": e.subject,
            "Destination": e.destination,
            "SetupTime": time(e.setup_time),
            "AnswerTime": time(Some(self.answer_time)),
            "Usage": ns(self.total_usage),
            "ExtraFields": e.extra_fields,
            "NodeID": "",
            "LoopIndex": self.next_seq,
            "DurationIndex": ns(self.reserved),
            "MaxRate": 0,
            "MaxRateUnit": 0,
            "MaxCostSoFar": 0,
            "DebitInterval": ns(self.debit_interval),
            "NextAutoDebit": GO_ZERO_TIME,
            "Owner": e.owner.to_string(),
        })
    }
}

/// Go's zero `time.Time` as JSON: what CGRateS shows for a time not set.
const GO_ZERO_TIME: &str = "0001-01-01T00:00:00Z";

pub(crate) fn plus(t: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    TimeDelta::from_std(d)
        .ok()
        .and_then(|d| t.checked_add_signed(d))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// What the session manager wants done; see
/// [`super::SessionManager::poll_action`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Store this CDR (CGRID + RunID unique: a copy may come twice).
    WriteCdr(Box<Cdr>),
    /// End the call: through its owner's [`Disconnect`]; for
    /// [`Owner::Passive`] nobody can, so log it (the CDR is flagged and
    /// the call billed for what it used).
    Disconnect {
        /// The session.
        key: SessionKey,
        /// Who owns the call.
        owner: Owner,
        /// Why (`INSUFFICIENT_CREDIT`, `MAX_CALL_DURATION`...).
        reason: String,
    },
    /// Persist this active session (replacing its previous snapshot).
    Save(Box<SessionSnapshot>),
    /// The session ended and its CDR was emitted: drop its snapshot.
    Forget(SessionKey),
}

/// The answer to an operation.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Reply {
    /// The usage the call may go on for (authorize, initiate, update).
    pub max_usage: Option<Duration>,
    /// The call's cost (terminate, process_cdr); `None` when not priced.
    pub cost: Option<Decimal>,
    /// Nothing was done now: the session existed already, or the call
    /// was charged before (the recorded cost is returned).
    pub replayed: bool,
}

/// Named counters, all monotonic but `active`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counters {
    /// Sessions in progress.
    pub active: u64,
    /// Authorizations answered.
    pub authorized: u64,
    /// Authorizations refused (no credit, errors).
    pub unauthorized: u64,
    /// Sessions started.
    pub initiated: u64,
    /// Updates handled.
    pub updated: u64,
    /// Sessions ended.
    pub terminated: u64,
    /// CDRs emitted.
    pub cdrs: u64,
    /// CDRs of failed attempts.
    pub failed_attempts: u64,
    /// Reservations made.
    pub reservations: u64,
    /// Disconnects asked for.
    pub disconnects: u64,
    /// Disconnects of passive calls (nobody to ask: logged and flagged).
    pub disconnect_passive: u64,
    /// Debits, reservations or pricing that failed.
    pub debit_errors: u64,
    /// Sessions ended by the TTL.
    pub ttl_expired: u64,
    /// Events repeated (a session initiated twice, a call charged before).
    pub duplicates: u64,
    /// Terminates of sessions not active (charged as a finished call).
    pub terminate_unknown: u64,
}

impl Counters {
    /// The counters by name (`sessions.active`, ...).
    pub fn named(&self) -> [(&'static str, u64); 15] {
        [
            ("sessions.active", self.active),
            ("sessions.authorized", self.authorized),
            ("sessions.unauthorized", self.unauthorized),
            ("sessions.initiated", self.initiated),
            ("sessions.updated", self.updated),
            ("sessions.terminated", self.terminated),
            ("sessions.cdrs", self.cdrs),
            ("sessions.failed_attempts", self.failed_attempts),
            ("sessions.reservations", self.reservations),
            ("sessions.disconnects", self.disconnects),
            ("sessions.disconnect_passive", self.disconnect_passive),
            ("sessions.debit_errors", self.debit_errors),
            ("sessions.ttl_expired", self.ttl_expired),
            ("sessions.duplicates", self.duplicates),
            ("sessions.terminate_unknown", self.terminate_unknown),
        ]
    }
}

/// `[sessions]` of the config (kebab-case keys, CGRateS durations).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct SessionConfig {
    /// Prepaid calls reserve this much at a time; 0: the whole MaxUsage at
    /// initiate (CGRateS's default).
    #[serde(deserialize_with = "de_duration")]
    pub debit_interval: Duration,
    /// The longest a call may be authorized for (CGRateS: 3h).
    #[serde(deserialize_with = "de_duration")]
    pub max_call_duration: Duration,
    /// Active (API/agent) sessions without an update for this long are
    /// terminated; 0: never.
    #[serde(deserialize_with = "de_duration")]
    pub session_ttl: Duration,
    /// Usage added to what is known when the TTL ends a session.
    #[serde(deserialize_with = "de_opt_duration")]
    pub ttl_usage: Option<Duration>,
    /// How long accounts remember a charged session (duplicate
    /// protection).
    #[serde(deserialize_with = "de_duration")]
    pub keep_charged_marks: Duration,
    /// The CDRs' `Source` when the event gives none.
    pub cdr_source: String,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            debit_interval: Duration::ZERO,
            max_call_duration: Duration::from_secs(3 * 3600),
            session_ttl: Duration::ZERO,
            ttl_usage: None,
            keep_charged_marks: rating::DEFAULT_KEEP_MARKS,
            cdr_source: "accurate".to_owned(),
        }
    }
}

fn de_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let s = String::deserialize(d)?;
    rating::parse_duration(&s).map_err(serde::de::Error::custom)
}

fn de_opt_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    de_duration(d).map(Some)
}
