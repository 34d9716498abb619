//! OpenSIPS over `event_datagram` and `mi_datagram`, as CGRateS's OpenSIPS
//! session manager (v0.9 `sessionmanager/osipssm.go`) speaks it.
//!
//! The agent subscribes (MI `event_subscribe`, see [`mi::Subscription`])
//! to `E_ACC_CDR`, `E_ACC_EVENT` and `E_ACC_MISSED_EVENT`; OpenSIPS sends
//! each event as one UDP datagram ([`datagram::parse`]). An
//! `E_ACC_EVENT` of an `INVITE` starts a session (the dialog remembered
//! for a disconnect), one of a `BYE` ends it (usage = BYE time less the
//! answer time) and writes its CDR; `E_ACC_CDR` and `E_ACC_MISSED_EVENT`
//! are CDRs. A disconnect is the MI command `dlg_end_dlg h_entry h_id`,
//! queued here ([`OsipsAgent::poll_transmit`]) for the MI socket.
//!
//! Sans-IO: datagrams and `now` in, [`Operation`]s and MI commands out.

pub mod datagram;
pub mod mi;
pub mod ops;
#[cfg(test)]
mod tests;

use std::collections::{HashMap, VecDeque};

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::Value;

pub use datagram::OsipsEvent;
pub use ops::DialogHash;

use crate::Error;

/// The reason of a disconnect after a call start the sessions refused.
pub const SERVER_ERROR: &str = "SERVER_ERROR";
/// The reason of a disconnect of a call start missing fields.
pub const MANDATORY_IE_MISSING: &str = "MANDATORY_IE_MISSING";

/// One OpenSIPS's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentConfig {
    /// `OriginHost` of the sessions and CDRs (the alias, else OpenSIPS's
    /// MI address).
    pub origin_host: String,
    /// The tenant of events without `cgr_tenant`.
    pub tenant: String,
    /// The request type of events without `cgr_reqtype` (`*rated`, as
    /// CGRateS's `default_request_type`).
    pub request_type: String,
    /// Whether a `BYE` writes the call's CDR (CGRateS's `create_cdr`).
    pub create_cdr: bool,
    /// The most calls remembered between their INVITE and BYE.
    pub max_calls: usize,
    /// The prefix of the CGREvent IDs.
    pub id_prefix: String,
}

impl Default for AgentConfig {
    fn default() -> Self {
        AgentConfig {
            origin_host: String::new(),
            tenant: "cgrates.org".into(),
            request_type: "*rated".into(),
            create_cdr: true,
            max_calls: 100_000,
            id_prefix: "opensips".into(),
        }
    }
}

/// One thing OpenSIPS said, for the server to run.
#[derive(Debug, Clone, PartialEq)]
pub enum Operation {
    /// `E_ACC_EVENT` of an `INVITE`: `SessionSv1.InitiateSession`; on
    /// failure disconnect the dialog ([`OsipsAgent::disconnect_dialog`]).
    Initiate {
        /// The dialog, for a later disconnect.
        dialog: DialogHash,
        /// The session's `OriginID` (the Call-ID).
        origin_id: String,
        /// The `V1InitSessionArgs`.
        args: Value,
    },
    /// `E_ACC_EVENT` of a `BYE`: `SessionSv1.TerminateSession`, then
    /// `SessionSv1.ProcessCDR` with the same event when `process_cdr`.
    Terminate {
        /// The session's `OriginID`.
        origin_id: String,
        /// The `V1TerminateSessionArgs`.
        args: Value,
        /// Whether the CDR is written too.
        process_cdr: bool,
    },
    /// `E_ACC_CDR` or `E_ACC_MISSED_EVENT`: `SessionSv1.ProcessCDR`.
    ProcessCdr {
        /// The CGREvent.
        args: Value,
    },
    /// `E_OPENSIPS_START`: OpenSIPS restarted, subscribe again now.
    Resubscribe,
}

impl Operation {
    /// The SessionSv1 method the operation runs first.
    pub fn method(&self) -> Option<&'static str> {
        Some(match self {
            Operation::Initiate { .. } => "SessionSv1.InitiateSession",
            Operation::Terminate { .. } => "SessionSv1.TerminateSession",
            Operation::ProcessCdr { .. } => "SessionSv1.ProcessCDR",
            Operation::Resubscribe => return None,
        })
    }
}

/// A started call, until its BYE.
#[derive(Debug, Clone)]
struct Call {
    dialog: DialogHash,
    start: OsipsEvent,
    answer: DateTime<Utc>,
}

/// Counters of one OpenSIPS.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AgentStats {
    /// Datagrams read.
    pub events: u64,
    /// Datagrams refused.
    pub rejected: u64,
    /// Events ignored (`*none`, other methods, unknown calls).
    pub ignored: u64,
}

/// The sans-IO core of one OpenSIPS.
#[derive(Debug, Clone)]
pub struct OsipsAgent {
    cfg: AgentConfig,
    calls: HashMap<String, Call>,
    out: VecDeque<Vec<u8>>,
    seq: u64,
    stats: AgentStats,
}

impl OsipsAgent {
    /// An OpenSIPS's core.
    pub fn new(cfg: AgentConfig) -> Self {
        OsipsAgent {
            cfg,
            calls: HashMap::new(),
            out: VecDeque::new(),
            seq: 0,
            stats: AgentStats::default(),
        }
    }

    /// Its settings.
    pub fn config(&self) -> &AgentConfig {
        &self.cfg
    }

    /// Its counters.
    pub fn stats(&self) -> AgentStats {
        self.stats
    }

    /// Reads one datagram: the operation it asks for, `Ok(None)` when
    /// there is nothing to do.
    ///
    /// # Errors
    /// A malformed datagram, an unknown event, missing fields (a call
    /// start missing them is disconnected as CGRateS does), bad times.
    pub fn handle_datagram(
        &mut self,
        data: &[u8],
        now: DateTime<Utc>,
    ) -> Result<Option<Operation>, Error> {
        self.stats.events += 1;
        let out = datagram::parse(data).and_then(|ev| self.event(ev, now));
        if out.is_err() {
            self.stats.rejected += 1;
        }
        out
    }

    fn event(&mut self, ev: OsipsEvent, now: DateTime<Utc>) -> Result<Option<Operation>, Error> {
        if ev.name == "E_OPENSIPS_START" {
            return Ok(Some(Operation::Resubscribe));
        }
        if !matches!(
            ev.name.as_str(),
            "E_ACC_EVENT" | "E_ACC_CDR" | "E_ACC_MISSED_EVENT"
        ) {
            return Err(Error::UnknownEvent(ev.name));
        }
        let method = ev.get("method").unwrap_or_default().to_ascii_uppercase();
        let is_bye = ev.name == "E_ACC_EVENT" && method == "BYE";
        // A BYE carries no cgr_* fields: the start's request type counts.
        if !is_bye && ops::request_type(&ev, &self.cfg.request_type) == "*none" {
            self.stats.ignored += 1;
            return Ok(None);
        }
        match (ev.name.as_str(), method.as_str()) {
            ("E_ACC_EVENT", "INVITE") => self.call_start(ev, now),
            ("E_ACC_EVENT", "BYE") => self.call_end(&ev, now),
            ("E_ACC_EVENT", _) => {
                self.stats.ignored += 1;
                Ok(None)
            }
            ("E_ACC_CDR", _) => {
                if ev.non_empty("callid").is_none() {
                    return Err(Error::MandatoryMissing("callid".into()));
                }
                let answer = cdr_answer(&ev)?;
                let args = ops::cgr_event(&ev, answer, &self.defaults(now))?;
                Ok(Some(Operation::ProcessCdr {
                    args: Value::Object(args),
                }))
            }
            _ => {
                // E_ACC_MISSED_EVENT: a call that failed, no usage.
                if ev.non_empty("callid").is_none() {
                    return Err(Error::MandatoryMissing("callid".into()));
                }
                let mut args = ops::cgr_event(&ev, None, &self.defaults(now))?;
                if let Some(Value::Object(e)) = args.get_mut("Event") {
                    e.insert("Usage".into(), "0s".into());
                }
                Ok(Some(Operation::ProcessCdr {
                    args: Value::Object(args),
                }))
            }
        }
    }

    /// An INVITE's accounting: CGRateS requires `callid`, the account,
    /// the destination and the dialog.
    fn call_start(
        &mut self,
        ev: OsipsEvent,
        now: DateTime<Utc>,
    ) -> Result<Option<Operation>, Error> {
        let dialog = DialogHash::of(&ev);
        let mut lacking = Vec::new();
        for (k, v) in [
            ("callid", ev.non_empty("callid")),
            ("cgr_account", ev.non_empty("cgr_account")),
            ("cgr_destination", ev.non_empty("cgr_destination")),
            ("dialog_id", dialog.as_ref().map(|_| "")),
        ] {
            if v.is_none() {
                lacking.push(k);
            }
        }
        let Some(dialog) = dialog.filter(|_| lacking.is_empty()) else {
            if let Some(d) = DialogHash::of(&ev) {
                self.disconnect_dialog(&d, MANDATORY_IE_MISSING);
            }
            return Err(Error::MandatoryMissing(lacking.join(" ")));
        };
        let answer = match ev.non_empty("cgr_answertime").or(ev.non_empty("time")) {
            Some(t) => ops::parse_time("AnswerTime", t)?,
            None => now,
        };
        let origin_id = ev.get("callid").unwrap_or_default().to_owned();
        let mut args = ops::cgr_event(&ev, Some(answer), &self.defaults(now))?;
        args.insert("InitSession".into(), true.into());
        if self.calls.len() >= self.cfg.max_calls && !self.calls.contains_key(&origin_id) {
            return Err(Error::Datagram(format!(
                "more than {} calls in progress",
                self.cfg.max_calls
            )));
        }
        self.calls.insert(
            origin_id.clone(),
            Call {
                dialog: dialog.clone(),
                start: ev,
                answer,
            },
        );
        Ok(Some(Operation::Initiate {
            dialog,
            origin_id,
            args: Value::Object(args),
        }))
    }

    /// A BYE's accounting: the call's start event completed with the
    /// usage (BYE `time` less the answer time) and the BYE's `sip_code`.
    fn call_end(
        &mut self,
        ev: &OsipsEvent,
        now: DateTime<Utc>,
    ) -> Result<Option<Operation>, Error> {
        let Some(origin_id) = ev.non_empty("callid").map(str::to_owned) else {
            return Err(Error::MandatoryMissing("callid".into()));
        };
        let end = match ev.non_empty("time") {
            Some(t) => ops::parse_time("time", t)?,
            None => return Err(Error::MandatoryMissing("time".into())),
        };
        let Some(call) = self.calls.remove(&origin_id) else {
            // not a call this agent started (CGRateS ignores it too)
            self.stats.ignored += 1;
            return Ok(None);
        };
        let usage = (end - call.answer).max(TimeDelta::zero());
        let mut start = call.start;
        start
            .args
            .retain(|(k, _)| !matches!(k.as_str(), "duration" | "sip_code" | "sip_reason"));
        start.args.push((
            "duration".into(),
            format!("{}.{:03}", usage.num_seconds(), usage.subsec_millis()),
        ));
        for k in ["sip_code", "sip_reason"] {
            if let Some(v) = ev.get(k) {
                start.args.push((k.into(), v.to_owned()));
            }
        }
        let mut args = ops::cgr_event(&start, Some(call.answer), &self.defaults(now))?;
        args.insert("TerminateSession".into(), true.into());
        Ok(Some(Operation::Terminate {
            origin_id,
            args: Value::Object(args),
            process_cdr: self.cfg.create_cdr,
        }))
    }

    fn defaults(&mut self, now: DateTime<Utc>) -> ops::Defaults<'_> {
        self.seq += 1;
        ops::Defaults {
            origin_host: &self.cfg.origin_host,
            tenant: &self.cfg.tenant,
            request_type: &self.cfg.request_type,
            id: format!("{}-{}", self.cfg.id_prefix, self.seq),
            now,
        }
    }

    /// Queues `dlg_end_dlg` for the call `origin_id` (CGRateS's
    /// `DisconnectSession`); false when the agent has no such call.
    pub fn disconnect(&mut self, origin_id: &str) -> bool {
        let Some(d) = self.calls.get(origin_id).map(|c| c.dialog.clone()) else {
            return false;
        };
        self.disconnect_dialog(&d, "");
        true
    }

    /// Queues `dlg_end_dlg` for a dialog (`reason` is only logged:
    /// `dlg_end_dlg` carries none).
    pub fn disconnect_dialog(&mut self, dialog: &DialogHash, _reason: &str) {
        if let Some(cmd) = mi::dlg_end_dlg(&dialog.entry, &dialog.id) {
            self.out.push_back(cmd);
        }
    }

    /// The dialog of a call in progress.
    pub fn dialog(&self, origin_id: &str) -> Option<&DialogHash> {
        self.calls.get(origin_id).map(|c| &c.dialog)
    }

    /// Forgets a call (its start was refused).
    pub fn forget(&mut self, origin_id: &str) -> Option<DialogHash> {
        self.calls.remove(origin_id).map(|c| c.dialog)
    }

    /// The next MI command to send.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.out.pop_front()
    }
}

/// The answer time of an `E_ACC_CDR`: `cgr_answertime` (read by
/// [`ops::cgr_event`]), else `time` (the accounting of the 200 OK),
/// else `created` plus `setuptime`.
fn cdr_answer(ev: &OsipsEvent) -> Result<Option<DateTime<Utc>>, Error> {
    if let Some(t) = ev.non_empty("time") {
        return ops::parse_time("time", t).map(Some);
    }
    let Some(created) = ev.non_empty("created") else {
        return Ok(None);
    };
    let created = ops::parse_time("created", created)?;
    let setup: i64 = ev
        .non_empty("setuptime")
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    Ok(Some(created + TimeDelta::seconds(setup.clamp(0, 86_400))))
}
