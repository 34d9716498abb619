//! Kamailio's evapi module, spoken as CGRateS's KamailioAgent speaks it.
//!
//! AccuRate connects to Kamailio (evapi is a server); both ways carry
//! netstrings ([`netstring`]) of JSON. Kamailio sends the events its
//! script relays (`CGR_AUTH_REQUEST`, `CGR_CALL_START`, `CGR_CALL_END`,
//! `CGR_PROCESS_CDR`, `CGR_PROCESS_MESSAGE`, `CGR_DLG_LIST_REPLY`; read by
//! [`message`]); AccuRate answers with the replies of [`reply`] and asks
//! for disconnects and dialog lists.
//!
//! [`EvapiAgent`] is the sans-IO core of one connection: bytes in
//! ([`EvapiAgent::handle_bytes`]) become [`Operation`]s for the server to
//! run; answers ([`EvapiAgent::reply`]), disconnects and dialog list
//! requests become bytes out ([`EvapiAgent::poll_transmit`]).
//! [`Backoff`] is the reconnect schedule.

pub mod message;
pub mod netstring;
pub(crate) mod ops;
pub mod reply;

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::Value;

pub use message::{Flags, KamEvent, Parsed, parse_event};
pub use ops::{DialogHash, Operation, ReplyTo};
pub use reply::{ActiveDialog, KamReply};

use crate::Error;
use ops::{Defaults, Kind};
pub(crate) use ops::{Kind as SwitchKind, switches};

/// The reason CGRateS gives Kamailio for a disconnect it asks for.
pub const INSUFFICIENT_CREDIT: &str = "INSUFFICIENT_CREDIT";
/// The error CGRateS answers for a missing mandatory field.
pub const MANDATORY_IE_MISSING: &str = "MANDATORY_IE_MISSING";
/// The reason for a disconnect after a failed session start.
pub const SERVER_ERROR: &str = "SERVER_ERROR";

/// One connection's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentConfig {
    /// `OriginHost` of events that do not carry one: the connection's
    /// alias, else Kamailio's address.
    pub origin_host: String,
    /// The tenant of events without `Tenant`.
    pub tenant: String,
    /// The `RequestType` of events without one (`*rated` as CGRateS's
    /// `default_request_type`).
    pub request_type: String,
    /// Whether every `CGR_CALL_END` writes a CDR (CGRateS's `create_cdr`);
    /// otherwise only those flagged `*cdrs`.
    pub create_cdr: bool,
    /// The largest netstring accepted.
    pub max_frame: usize,
    /// The prefix of the CGREvent IDs this connection makes.
    pub id_prefix: String,
}

impl Default for AgentConfig {
    fn default() -> Self {
        AgentConfig {
            origin_host: String::new(),
            tenant: "cgrates.org".into(),
            request_type: "*rated".into(),
            create_cdr: false,
            max_frame: netstring::DEFAULT_MAX_LEN,
            id_prefix: "evapi".into(),
        }
    }
}

/// Counters of one connection.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AgentStats {
    /// Messages read.
    pub messages: u64,
    /// Messages recovered by the lenient JSON reading.
    pub repaired: u64,
    /// Messages refused (not JSON, unknown event, missing fields...).
    pub rejected: u64,
    /// `*none` requests ignored, as CGRateS ignores them.
    pub ignored: u64,
}

/// The sans-IO core of one evapi connection.
#[derive(Debug, Clone)]
pub struct EvapiAgent {
    cfg: AgentConfig,
    decoder: netstring::Decoder,
    out: VecDeque<Vec<u8>>,
    dialogs: HashMap<String, DialogHash>,
    seq: u64,
    stats: AgentStats,
}

impl EvapiAgent {
    /// A connection's core.
    pub fn new(cfg: AgentConfig) -> Self {
        EvapiAgent {
            decoder: netstring::Decoder::new(cfg.max_frame),
            cfg,
            out: VecDeque::new(),
            dialogs: HashMap::new(),
            seq: 0,
            stats: AgentStats::default(),
        }
    }

    /// The settings.
    pub fn config(&self) -> &AgentConfig {
        &self.cfg
    }

    /// The counters.
    pub fn stats(&self) -> AgentStats {
        self.stats
    }

    /// A new connection to the same Kamailio: the partial frame and the
    /// unsent bytes of the old one are dropped; the dialogs are kept
    /// (Kamailio still has them).
    pub fn reconnected(&mut self) {
        self.decoder.clear();
        self.out.clear();
    }

    /// Reads `data` from Kamailio. Each whole message becomes an
    /// [`Operation`] or, when refused, an [`Error`]; some are answered at
    /// once (a missing field, a `CGR_PROCESS_MESSAGE` ping) through
    /// [`EvapiAgent::poll_transmit`].
    ///
    /// # Errors
    /// A framing error: the stream cannot continue, reconnect.
    pub fn handle_bytes(
        &mut self,
        data: &[u8],
        now: DateTime<Utc>,
    ) -> Result<Vec<Result<Operation, Error>>, Error> {
        self.decoder.push(data);
        let mut out = Vec::new();
        while let Some(frame) = self.decoder.next_frame()? {
            self.stats.messages += 1;
            match self.message(&frame, now) {
                Ok(Some(op)) => out.push(Ok(op)),
                Ok(None) => {}
                Err(e) => {
                    self.stats.rejected += 1;
                    out.push(Err(e));
                }
            }
        }
        Ok(out)
    }

    fn message(&mut self, frame: &[u8], now: DateTime<Utc>) -> Result<Option<Operation>, Error> {
        let (ev, how) = parse_event(frame)?;
        if how == Parsed::Repaired {
            self.stats.repaired += 1;
        }
        let name = ev
            .get("event")
            .or_else(|| ev.get("Event"))
            .cloned()
            .unwrap_or_default();
        if name.starts_with("CGR_DLG_LIST") {
            let dialogs = reply::parse_dlg_list(frame, &self.cfg.origin_host)?;
            return Ok(Some(Operation::DlgList { dialogs }));
        }
        let none = ev.get("RequestType").is_some_and(|t| t == "*none");
        let lacking = ops::missing(&name, &ev);
        let flags = ev.get("cgr_flags").map(|f| Flags::parse(f));
        let mandatory = || Error::MandatoryMissing(lacking.join(" "));
        match name.as_str() {
            "CGR_AUTH_REQUEST" | "CGR_PROCESS_MESSAGE" | "CGR_PROCESS_CDR" => {
                let auth = name == "CGR_AUTH_REQUEST";
                if auth && none {
                    self.stats.ignored += 1;
                    return Ok(None);
                }
                let reply_to = ReplyTo::of(&ev, if auth { "CGR_AUTH_REPLY" } else { &name });
                if !lacking.is_empty() {
                    self.reply(&reply_to, Err(MANDATORY_IE_MISSING));
                    return Err(mandatory());
                }
                let (kind, time) = match name.as_str() {
                    "CGR_AUTH_REQUEST" => (Some(Kind::Authorize), Some("SetupTime")),
                    "CGR_PROCESS_MESSAGE" => (Some(Kind::Message), Some("AnswerTime")),
                    _ => (None, None),
                };
                if kind == Some(Kind::Message) && flags.is_none() {
                    // no flags: a ping, answered empty
                    self.reply(&reply_to, Ok(&Value::Null));
                    return Ok(None);
                }
                let mut args = match ops::cgr_event(&ev, time, &self.defaults(now)) {
                    Ok(a) => a,
                    Err(e) => {
                        self.reply(&reply_to, Err(&e.to_string()));
                        return Err(e);
                    }
                };
                let args = match kind {
                    Some(k) => {
                        ops::switches(k, flags.as_ref(), &mut args);
                        ops::obj(args)
                    }
                    None => ops::obj(args),
                };
                Ok(Some(match kind {
                    Some(Kind::Authorize) => Operation::Authorize { reply_to, args },
                    Some(_) => Operation::ProcessMessage { reply_to, args },
                    None => Operation::ProcessCdr { reply_to, args },
                }))
            }
            "CGR_CALL_START" => {
                if none {
                    self.stats.ignored += 1;
                    return Ok(None);
                }
                let dialog = DialogHash {
                    entry: ev.get("h_entry").cloned().unwrap_or_default(),
                    id: ev.get("h_id").cloned().unwrap_or_default(),
                };
                let mut ev = ev;
                let origin_id = ops::origin_id(&ev);
                ev.insert("OriginID".into(), origin_id.clone());
                let lacking = ops::missing(&name, &ev);
                if !lacking.is_empty() {
                    if !dialog.entry.is_empty() && !dialog.id.is_empty() {
                        self.disconnect_dialog(&dialog, MANDATORY_IE_MISSING);
                    }
                    return Err(Error::MandatoryMissing(lacking.join(" ")));
                }
                let mut args = ops::cgr_event(&ev, Some("AnswerTime"), &self.defaults(now))?;
                ops::switches(Kind::Initiate, flags.as_ref(), &mut args);
                self.dialogs.insert(origin_id.clone(), dialog.clone());
                Ok(Some(Operation::Initiate {
                    dialog,
                    origin_id,
                    args: ops::obj(args),
                }))
            }
            "CGR_CALL_END" => {
                if none {
                    self.stats.ignored += 1;
                    return Ok(None);
                }
                let mut ev = ev;
                let origin_id = ops::origin_id(&ev);
                ev.insert("OriginID".into(), origin_id.clone());
                let lacking = ops::missing(&name, &ev);
                if !lacking.is_empty() {
                    return Err(Error::MandatoryMissing(lacking.join(" ")));
                }
                let mut args = ops::cgr_event(&ev, Some("AnswerTime"), &self.defaults(now))?;
                ops::switches(Kind::Terminate, flags.as_ref(), &mut args);
                self.dialogs.remove(&origin_id);
                let process_cdr =
                    self.cfg.create_cdr || flags.as_ref().is_some_and(|f| f.has("*cdrs"));
                Ok(Some(Operation::Terminate {
                    origin_id,
                    args: ops::obj(args),
                    process_cdr,
                }))
            }
            other => Err(Error::UnknownEvent(other.to_string())),
        }
    }

    fn defaults(&mut self, now: DateTime<Utc>) -> Defaults<'_> {
        self.seq += 1;
        Defaults {
            origin_host: &self.cfg.origin_host,
            tenant: &self.cfg.tenant,
            request_type: &self.cfg.request_type,
            id: format!("{}-{}", self.cfg.id_prefix, self.seq),
            now: now.to_rfc3339_opts(SecondsFormat::AutoSi, true),
        }
    }

    /// Queues the answer to a request: `Ok(reply)` fills it from a
    /// SessionSv1 reply object (`Null` for an empty answer), `Err(text)`
    /// sends the error. Every key is present either way.
    pub fn reply(&mut self, to: &ReplyTo, outcome: Result<&Value, &str>) {
        let mut r = KamReply {
            event: to.event.clone(),
            transaction_index: to.tr_index.clone(),
            transaction_label: to.tr_label.clone(),
            ..KamReply::default()
        };
        match outcome {
            Ok(v) => r.fill_from(v),
            Err(e) => r.error = e.to_string(),
        }
        self.send(&r.to_json());
    }

    /// Queues `CGR_SESSION_DISCONNECT` for the dialog started as
    /// `origin_id`; `false` when this connection did not start it.
    pub fn disconnect(&mut self, origin_id: &str, reason: &str) -> bool {
        match self.dialogs.get(origin_id).cloned() {
            Some(d) => {
                self.disconnect_dialog(&d, reason);
                true
            }
            None => false,
        }
    }

    /// Queues `CGR_SESSION_DISCONNECT` for `dialog`.
    pub fn disconnect_dialog(&mut self, dialog: &DialogHash, reason: &str) {
        self.send(&reply::disconnect_json(&dialog.entry, &dialog.id, reason));
    }

    /// The dialog hash of the call started as `origin_id`.
    pub fn dialog(&self, origin_id: &str) -> Option<&DialogHash> {
        self.dialogs.get(origin_id)
    }

    /// Forgets a dialog (its session ended without `CGR_CALL_END`).
    pub fn forget(&mut self, origin_id: &str) -> Option<DialogHash> {
        self.dialogs.remove(origin_id)
    }

    /// Queues `CGR_DLG_LIST`: Kamailio answers with `CGR_DLG_LIST_REPLY`.
    pub fn request_dlg_list(&mut self) {
        self.send(&reply::dlg_list_json());
    }

    fn send(&mut self, json: &str) {
        self.out.push_back(netstring::encode(json.as_bytes()));
    }

    /// The next bytes to write to Kamailio.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.out.pop_front()
    }
}

/// The reconnect schedule: waits growing as the Fibonacci sequence times
/// `base` (CGRateS's `FibDuration`), capped at `max`, back to `base` after
/// a connection that worked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backoff {
    base: Duration,
    max: Duration,
    fib: (u32, u32),
}

impl Backoff {
    /// A schedule starting at `base`, never waiting more than `max`.
    pub fn new(base: Duration, max: Duration) -> Self {
        Backoff {
            base,
            max,
            fib: (1, 1),
        }
    }

    /// The wait before the next attempt (and advances the schedule).
    pub fn next_delay(&mut self) -> Duration {
        let d = self.base.saturating_mul(self.fib.0).min(self.max);
        if d < self.max {
            self.fib = (self.fib.1, self.fib.0.saturating_add(self.fib.1));
        }
        d
    }

    /// When to try again after a failure at `now`.
    pub fn next_attempt(&mut self, now: Instant) -> Instant {
        now + self.next_delay()
    }

    /// A connection succeeded: the next failure waits `base` again.
    pub fn reset(&mut self) {
        self.fib = (1, 1);
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod props;
