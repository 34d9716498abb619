//! FreeSWITCH's inbound event socket (`mod_event_socket`), spoken as
//! CGRateS's FreeSWITCHAgent speaks it.
//!
//! AccuRate connects to FreeSWITCH (the socket is a server), answers its
//! `auth/request` with `auth PASSWORD`, subscribes to `CHANNEL_PARK`,
//! `CHANNEL_ANSWER`, `CHANNEL_HANGUP_COMPLETE` (and `CUSTOM` events) of
//! inbound legs (`filter Call-Direction inbound`, as CGRateS) and
//! turns them into [`Operation`]s for the server: authorize on park (then
//! `uuid_setvar` the max usage and `cgr_notify`, and `uuid_transfer` the
//! call on), initiate on answer (`sched_hangup` for prepaid), terminate
//! and write the CDR on hangup. The session manager's disconnects become
//! `uuid_kill`.
//!
//! [`EslAgent`] is the sans-IO core of one connection: bytes in
//! ([`EslAgent::handle_bytes`]), commands out ([`EslAgent::poll_transmit`]).

pub mod event;
pub mod frame;
#[cfg(test)]
mod tests;

#[cfg(test)]
mod props;

use std::collections::{HashSet, VecDeque};

use serde_json::{Map, Value};

pub use event::FsEvent;
pub use frame::{Decoded, Decoder, Frame};

use crate::Error;
use crate::evapi::{Flags, SwitchKind, switches};

/// `cgr_notify` of an authorized call.
pub const AUTH_OK: &str = "+AUTH_OK";
/// `cgr_notify` of a call refused for want of credit.
pub const INSUFFICIENT_FUNDS: &str = "-INSUFFICIENT_FUNDS";
/// `cgr_notify` of a call lacking a mandatory field.
pub const MISSING_PARAMETER: &str = "-MISSING_PARAMETER";
/// The hangup cause of a disconnect AccuRate asks for.
pub const MANAGER_REQUEST: &str = "MANAGER_REQUEST";

/// Only the inbound (A) legs' events, as CGRateS filters them: a bridged
/// call is billed once.
pub const FILTER: &str = "filter Call-Direction inbound";

/// The events subscribed to.
pub const EVENTS: &str = "CHANNEL_PARK CHANNEL_ANSWER CHANNEL_HANGUP_COMPLETE CUSTOM";

/// One connection's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentConfig {
    /// The event socket password (FreeSWITCH's default is `ClueCon`).
    pub password: String,
    /// `OriginHost` of the calls: the connection's alias, else its address.
    pub origin_host: String,
    /// The tenant of calls without `cgr_tenant`.
    pub tenant: String,
    /// The request type of calls without `cgr_reqtype`.
    pub request_type: String,
    /// The category of calls without `cgr_category`.
    pub category: String,
    /// Authorize on `CHANNEL_PARK` (CGRateS's `subscribe_park`).
    pub subscribe_park: bool,
    /// Write a CDR for every hangup (CGRateS's `create_cdr`); otherwise
    /// only for calls flagged `*cdrs`.
    pub create_cdr: bool,
    /// Subscribe with `event json` instead of `event plain`.
    pub json: bool,
    /// The largest frame accepted.
    pub max_frame: usize,
    /// The prefix of the CGREvent IDs this connection makes.
    pub id_prefix: String,
}

impl Default for AgentConfig {
    fn default() -> Self {
        AgentConfig {
            password: "ClueCon".into(),
            origin_host: String::new(),
            tenant: "cgrates.org".into(),
            request_type: "*rated".into(),
            category: "call".into(),
            subscribe_park: true,
            create_cdr: false,
            json: false,
            max_frame: frame::DEFAULT_MAX_LEN,
            id_prefix: "esl".into(),
        }
    }
}

/// One thing FreeSWITCH's events ask for, for the server to run.
#[derive(Debug, Clone, PartialEq)]
pub enum Operation {
    /// `CHANNEL_PARK`: run `SessionSv1.AuthorizeEvent`, then hand the
    /// reply to [`EslAgent::authorized`].
    Authorize {
        /// The channel.
        uuid: String,
        /// The number the call continues to.
        dest_nr: String,
        /// The `V1AuthorizeArgs`.
        args: Value,
    },
    /// `CHANNEL_ANSWER`: run `SessionSv1.InitiateSession`, then hand the
    /// reply to [`EslAgent::initiated`].
    Initiate {
        /// The channel.
        uuid: String,
        /// Whether the call is prepaid (a `sched_hangup` at its max usage).
        prepaid: bool,
        /// The `V1InitSessionArgs`.
        args: Value,
    },
    /// `CHANNEL_HANGUP_COMPLETE`: run `SessionSv1.TerminateSession` when
    /// the call was answered, then `SessionSv1.ProcessCDR` when
    /// `process_cdr`.
    Terminate {
        /// The channel.
        uuid: String,
        /// Whether the call was answered (else nothing to terminate).
        answered: bool,
        /// Whether a CDR is written.
        process_cdr: bool,
        /// The `V1TerminateSessionArgs` (also the CDR's CGREvent).
        args: Value,
    },
    /// The reply to `show channels`: the channels FreeSWITCH has; the
    /// sessions of this connection not among them are over.
    Channels {
        /// Their UUIDs.
        uuids: Vec<String>,
    },
}

/// What a command sent waits for.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Pending {
    Auth,
    Subscribe,
    Filter,
    Command(String),
    Channels,
}

/// Counters of one connection.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AgentStats {
    /// Events read.
    pub events: u64,
    /// Events not acted on (other names, `*none`, malformed).
    pub ignored: u64,
    /// Commands FreeSWITCH refused.
    pub refused: u64,
}

/// The sans-IO core of one event socket connection.
#[derive(Debug, Clone)]
pub struct EslAgent {
    cfg: AgentConfig,
    decoder: Decoder,
    /// Login commands (auth, subscription): sent at once.
    out: VecDeque<Vec<u8>>,
    /// Call commands: sent once logged in.
    held: VecDeque<(String, Vec<u8>)>,
    pending: VecDeque<Pending>,
    ready: bool,
    answered: HashSet<String>,
    seq: u64,
    stats: AgentStats,
}

impl EslAgent {
    /// A connection's core.
    pub fn new(cfg: AgentConfig) -> Self {
        EslAgent {
            decoder: Decoder::new(cfg.max_frame),
            cfg,
            out: VecDeque::new(),
            held: VecDeque::new(),
            pending: VecDeque::new(),
            ready: false,
            answered: HashSet::new(),
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

    /// Logged in and subscribed.
    pub fn is_ready(&self) -> bool {
        self.ready
    }

    /// A new connection: the partial frame, the login and the replies
    /// awaited are dropped; call commands not sent yet (a disconnect) and
    /// the answered calls are kept (FreeSWITCH still has them).
    pub fn reconnected(&mut self) {
        self.decoder.clear();
        self.out.clear();
        self.pending.clear();
        self.ready = false;
    }

    /// Reads `data` from FreeSWITCH. Each event acted on becomes an
    /// [`Operation`]; a refused command or an unreadable event an
    /// [`Error`] in the list (the stream goes on).
    ///
    /// # Errors
    /// A framing error, a refused password or a disconnect notice: the
    /// connection must be dropped.
    pub fn handle_bytes(&mut self, data: &[u8]) -> Result<Vec<Result<Operation, Error>>, Error> {
        self.decoder.push(data);
        let mut out = Vec::new();
        while let Some(f) = self.decoder.next_frame()? {
            match f.content_type() {
                "auth/request" => {
                    let auth = format!("auth {}", self.cfg.password);
                    self.login(&auth, Pending::Auth);
                }
                "command/reply" | "api/response" => {
                    let text = match f.header("Reply-Text") {
                        Some(t) if f.body.is_empty() => t.to_string(),
                        _ => f.body_text(),
                    };
                    if let Some(r) = self.reply(text.trim())? {
                        out.push(r);
                    }
                }
                "text/event-plain" | "text/event-json" => {
                    self.stats.events += 1;
                    let ev = if f.content_type() == "text/event-json" {
                        event::parse_json(&f.body)
                    } else {
                        event::parse_plain(&f.body)
                    };
                    match ev.map(|ev| self.event(&ev)) {
                        Ok(Some(op)) => out.push(Ok(op)),
                        Ok(None) => self.stats.ignored += 1,
                        Err(e) => {
                            self.stats.ignored += 1;
                            out.push(Err(e));
                        }
                    }
                }
                "text/disconnect-notice" => {
                    return Err(Error::EslDisconnect(f.body_text().trim().to_string()));
                }
                _ => self.stats.ignored += 1,
            }
        }
        Ok(out)
    }

    /// A reply to the oldest command awaiting one.
    fn reply(&mut self, text: &str) -> Result<Option<Result<Operation, Error>>, Error> {
        let ok = !text.starts_with("-ERR");
        match self.pending.pop_front() {
            Some(Pending::Auth) if ok => {
                let how = if self.cfg.json { "json" } else { "plain" };
                self.login(&format!("event {how} {EVENTS}"), Pending::Subscribe);
                Ok(None)
            }
            Some(Pending::Auth) => Err(Error::EslAuth(text.to_string())),
            Some(Pending::Subscribe) if ok => {
                self.login(FILTER, Pending::Filter);
                Ok(None)
            }
            Some(Pending::Filter) => {
                self.ready = true;
                while let Some((cmd, bytes)) = self.held.pop_front() {
                    self.out.push_back(bytes);
                    let what = if cmd == SHOW_CHANNELS {
                        Pending::Channels
                    } else {
                        Pending::Command(cmd)
                    };
                    self.pending.push_back(what);
                }
                Ok((!ok).then(|| {
                    Err(Error::EslCommand {
                        command: FILTER.into(),
                        reply: text.to_string(),
                    })
                }))
            }
            Some(Pending::Subscribe) => Err(Error::EslCommand {
                command: "event".into(),
                reply: text.to_string(),
            }),
            Some(Pending::Command(command)) if !ok => {
                self.stats.refused += 1;
                Ok(Some(Err(Error::EslCommand {
                    command,
                    reply: text.to_string(),
                })))
            }
            Some(Pending::Channels) => Ok(Some(
                parse_channels(text)
                    .map(|uuids| Operation::Channels { uuids })
                    .ok_or_else(|| Error::EslCommand {
                        command: "api show channels".into(),
                        reply: text.chars().take(200).collect(),
                    }),
            )),
            _ => Ok(None),
        }
    }

    fn login(&mut self, cmd: &str, what: Pending) {
        self.out.push_back(frame::command(cmd));
        self.pending.push_back(what);
    }

    /// Queues `api CMD` (held until logged in).
    pub fn api(&mut self, cmd: &str) {
        let line = format!("api {cmd}");
        let bytes = frame::command(&line);
        if self.ready {
            self.out.push_back(bytes);
            self.pending.push_back(Pending::Command(line));
        } else {
            self.held.push_back((line, bytes));
        }
    }

    /// Queues `api show channels` (session sync): its reply becomes
    /// [`Operation::Channels`]. At most one is waiting at a time.
    pub fn request_channels(&mut self) {
        let waiting = self.pending.contains(&Pending::Channels)
            || self.held.iter().any(|(c, _)| c == SHOW_CHANNELS);
        if waiting {
            return;
        }
        let bytes = frame::command(SHOW_CHANNELS);
        if self.ready {
            self.out.push_back(bytes);
            self.pending.push_back(Pending::Channels);
        } else {
            self.held.push_back((SHOW_CHANNELS.into(), bytes));
        }
    }

    /// Queues `bgapi CMD` with `job_uuid` (its result comes back as a
    /// `BACKGROUND_JOB` event).
    pub fn bgapi(&mut self, cmd: &str, job_uuid: &str) {
        let line = format!("bgapi {cmd}");
        let bytes = frame::command(&format!("{line}\nJob-UUID: {job_uuid}"));
        if self.ready {
            self.out.push_back(bytes);
            self.pending.push_back(Pending::Command(line));
        } else {
            self.held.push_back((line, bytes));
        }
    }

    fn setvar(&mut self, uuid: &str, name: &str, value: &str) {
        self.api(&format!("uuid_setvar {uuid} {name} {value}"));
    }

    /// The next bytes to write to FreeSWITCH.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.out.pop_front()
    }

    fn event(&mut self, ev: &FsEvent) -> Option<Operation> {
        let name = ev.get(event::NAME).map_or("", String::as_str);
        let uuid = ev.get(event::UUID).cloned().unwrap_or_default();
        if uuid.is_empty()
            || !matches!(
                name,
                "CHANNEL_PARK" | "CHANNEL_ANSWER" | "CHANNEL_HANGUP_COMPLETE"
            )
        {
            return None;
        }
        if ev.get("Call-Direction").is_some_and(|d| d != "inbound") {
            return None;
        }
        if event::request_type(ev, &self.cfg.request_type) == "*none" {
            return None;
        }
        let flags = event::first(ev, &["variable_cgr_flags"]).map(Flags::parse);
        let missing = event::missing(ev);
        match name {
            "CHANNEL_PARK" => {
                if !self.cfg.subscribe_park
                    || ev
                        .get("variable_cgr_ignorepark")
                        .is_some_and(|v| v == "true")
                {
                    return None;
                }
                let dest_nr = event::call_dest_nr(ev).to_string();
                if missing.is_some() {
                    self.unpark(&uuid, &dest_nr, MISSING_PARAMETER);
                    return None;
                }
                let mut args = self.args(ev);
                switches(SwitchKind::Authorize, flags.as_ref(), &mut args);
                Some(Operation::Authorize {
                    uuid,
                    dest_nr,
                    args: Value::Object(args),
                })
            }
            "CHANNEL_ANSWER" => {
                let host = self.cfg.origin_host.clone();
                self.setvar(&uuid, "cgr_originhost", &host);
                if let Some(m) = missing {
                    self.disconnect_channel(&uuid, &format!("MANDATORY_IE_MISSING: [{m}]"));
                    return None;
                }
                let mut args = self.args(ev);
                switches(SwitchKind::Initiate, flags.as_ref(), &mut args);
                let prepaid = args["Event"]["RequestType"] == "*prepaid";
                self.answered.insert(uuid.clone());
                Some(Operation::Initiate {
                    uuid,
                    prepaid,
                    args: Value::Object(args),
                })
            }
            _ => {
                self.answered.remove(&uuid);
                let answered = ev.get("variable_answer_epoch").is_none_or(|e| e != "0");
                let mut args = self.args(ev);
                switches(SwitchKind::Terminate, flags.as_ref(), &mut args);
                let process_cdr =
                    self.cfg.create_cdr || flags.as_ref().is_some_and(|f| f.has("*cdrs"));
                Some(Operation::Terminate {
                    uuid,
                    answered,
                    process_cdr,
                    args: Value::Object(args),
                })
            }
        }
    }

    fn args(&mut self, ev: &FsEvent) -> Map<String, Value> {
        self.seq += 1;
        let d = event::Defaults {
            origin_host: &self.cfg.origin_host,
            tenant: &self.cfg.tenant,
            request_type: &self.cfg.request_type,
            category: &self.cfg.category,
            id: format!("{}-{}", self.cfg.id_prefix, self.seq),
        };
        event::cgr_event(ev, &d)
    }

    /// `cgr_notify` then `uuid_transfer` to the dialed number: the
    /// dialplan reads `cgr_notify` to let the call on or refuse it.
    fn unpark(&mut self, uuid: &str, dest_nr: &str, notify: &str) {
        self.setvar(uuid, "cgr_notify", notify);
        self.api(&format!("uuid_transfer {uuid} {dest_nr}"));
    }

    /// Answers a park with the `SessionSv1.AuthorizeEvent` reply (or its
    /// error): the altered attribute fields, `cgr_max_usage` (whole
    /// seconds) and a `sched_hangup` on answer, the resource allocation
    /// and routes as channel variables, `cgr_notify` (`+AUTH_OK`,
    /// `-INSUFFICIENT_FUNDS` for a zero max usage, or the error), then
    /// `uuid_transfer`.
    pub fn authorized(
        &mut self,
        uuid: &str,
        dest_nr: &str,
        get_max_usage: bool,
        outcome: Result<&Value, &str>,
    ) {
        let reply = match outcome {
            Ok(r) => r,
            Err(e) => return self.unpark(uuid, dest_nr, e),
        };
        if let Some(attrs) = reply.get("Attributes") {
            for (name, value) in altered(attrs) {
                self.setvar(uuid, &name, &value);
            }
        }
        if get_max_usage {
            let secs = reply
                .get("MaxUsage")
                .map_or(0, crate::evapi::reply::max_usage_secs);
            if secs <= 0 {
                return self.unpark(uuid, dest_nr, INSUFFICIENT_FUNDS);
            }
            self.setvar(uuid, "cgr_max_usage", &secs.to_string());
            self.setvar(
                uuid,
                "execute_on_answer",
                &format!("sched_hangup +{secs} alloted_timeout"),
            );
        }
        if let Some(r) = reply
            .get("ResourceAllocation")
            .and_then(Value::as_str)
            .filter(|r| !r.is_empty())
        {
            self.setvar(uuid, "cgr_resource_allocation", r);
        }
        let routes = ["Routes", "Suppliers", "RouteProfiles"]
            .iter()
            .find_map(|k| reply.get(*k).filter(|v| !v.is_null()))
            .map(crate::evapi::reply::routes_digest)
            .unwrap_or_default();
        if !routes.is_empty() {
            // FreeSWITCH's array syntax, as CGRateS's `SliceAsFsArray`
            let ids: Vec<&str> = routes.split(',').collect();
            let array = format!("ARRAY::{}|:{}", ids.len(), ids.join("|:"));
            self.setvar(uuid, "cgr_routes", &array);
        }
        self.unpark(uuid, dest_nr, AUTH_OK);
    }

    /// Answers an answer with the `SessionSv1.InitiateSession` reply: an
    /// error disconnects the call; a prepaid call gets `sched_hangup` at
    /// its max usage.
    pub fn initiated(&mut self, uuid: &str, prepaid: bool, outcome: Result<&Value, &str>) {
        match outcome {
            Err(e) => self.disconnect_channel(uuid, e),
            Ok(reply) if prepaid => {
                let secs = reply
                    .get("MaxUsage")
                    .map_or(0, crate::evapi::reply::max_usage_secs);
                if secs > 0 {
                    self.api(&format!("sched_hangup +{secs} {uuid} alloted_timeout"));
                }
            }
            Ok(_) => {}
        }
    }

    /// Queues the disconnect of a call answered on this connection:
    /// `cgr_notify` the reason, then `uuid_kill` (`MANAGER_REQUEST`);
    /// `false` when this connection does not have the call.
    pub fn disconnect(&mut self, uuid: &str, reason: &str) -> bool {
        if !self.answered.contains(uuid) {
            return false;
        }
        self.disconnect_channel(uuid, reason);
        true
    }

    fn disconnect_channel(&mut self, uuid: &str, reason: &str) {
        self.setvar(uuid, "cgr_notify", reason);
        self.api(&format!("uuid_kill {uuid} {MANAGER_REQUEST}"));
    }

    /// Forgets a call (its session ended without a hangup event).
    pub fn forget(&mut self, uuid: &str) -> bool {
        self.answered.remove(uuid)
    }
}

/// The command of the session sync.
const SHOW_CHANNELS: &str = "api show channels";

/// The UUIDs of a `show channels` reply: a CSV header naming a `uuid`
/// column, one row per channel, then `N total.`; `None` when it is not
/// that.
pub fn parse_channels(text: &str) -> Option<Vec<String>> {
    let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
    let header = lines.next()?;
    if header.ends_with("total.") {
        return header.starts_with("0 ").then(Vec::new);
    }
    let col = header.split(',').position(|c| c == "uuid")?;
    let mut uuids = Vec::new();
    for l in lines {
        if l.ends_with(" total.") {
            return Some(uuids);
        }
        if let Some(u) = l.split(',').nth(col).filter(|u| !u.is_empty()) {
            uuids.push(u.to_string());
        }
    }
    None
}

/// The attribute reply's altered fields with their new values
/// (`AlteredFields` names, `*req.` dropped, values from its CGREvent).
fn altered(attrs: &Value) -> Vec<(String, String)> {
    let Some(event) = attrs
        .get("CGREvent")
        .and_then(|e| e.get("Event"))
        .and_then(Value::as_object)
    else {
        return Vec::new();
    };
    let mut names: Vec<&str> = Vec::new();
    for f in attrs
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
    let mut out: Vec<(String, String)> = Vec::new();
    for n in names {
        let n = n.strip_prefix("*req.").unwrap_or(n);
        if out.iter().any(|(k, _)| k == n) {
            continue;
        }
        if let Some(v) = event.get(n) {
            let v = match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            out.push((n.to_string(), v));
        }
    }
    out
}
