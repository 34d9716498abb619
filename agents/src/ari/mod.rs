//! Asterisk's REST Interface (ARI), spoken as CGRateS's AsteriskAgent
//! speaks it.
//!
//! AccuRate opens Asterisk's events WebSocket
//! (`/ari/events?app=cgrates_auth&api_key=USER:PASSWORD`); the dialplan
//! sends calls into the Stasis application with their CGRateS variables
//! as arguments (`Stasis(cgrates_auth,cgr_reqtype=*prepaid,
//! cgr_flags=*accounts+*attributes)`) or as channel variables. The events
//! ([`event`]) become [`Operation`]s for the server to run:
//! `StasisStart` authorizes, `ChannelStateChange` to `Up` initiates,
//! `ChannelDestroyed` terminates (and writes the CDR). The answers become
//! REST requests ([`AriRequest`], data: method, path, query) the server
//! sends: the max usage set as `CGRMaxSessionTime` (milliseconds) then
//! `continue`, or the channel hung up.
//!
//! [`AriAgent`] is the sans-IO core of one Asterisk.

pub mod event;

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

pub use event::{AriEvent, Channel, parse_event};

use crate::Error;
use crate::evapi::Flags;
use crate::evapi::ops::{Kind, switches};

/// The Stasis application CGRateS registers.
pub const APP: &str = "cgrates_auth";
/// The channel variable the max usage is set in (milliseconds).
pub const MAX_SESSION_TIME: &str = "CGRMaxSessionTime";
/// The prefix of the channel variables the sorted suppliers go in
/// (`CGRSupplier1`, `CGRSupplier2`...).
pub const SUPPLIER_VAR: &str = "CGRSupplier";
/// The channel variable of the resource allocation message.
pub const RESOURCE_ALLOCATION: &str = "CGRResourceAllocation";
/// The hangup reason CGRateS gives (`DELETE /ari/channels/ID?reason=`).
pub const HANGUP_REASON: &str = "congestion";
/// The `Source` of the events.
pub const SOURCE: &str = "AsteriskAgent";

/// Stasis variables that are the call's primary fields.
const PRIMARY: &[(&str, &str)] = &[
    ("cgr_reqtype", "RequestType"),
    ("cgr_tenant", "Tenant"),
    ("cgr_category", "Category"),
    ("cgr_subject", "Subject"),
    ("cgr_account", "Account"),
    ("cgr_destination", "Destination"),
    ("cgr_supplier", "Supplier"),
    ("cgr_pdd", "PDD"),
];

/// Variables that drive the agent, not copied into the event.
const CONTROL: &[&str] = &["cgr_flags", "cgr_subsystems"];

/// One Asterisk's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AriConfig {
    /// `OriginHost` of the events: the alias, else Asterisk's host.
    pub origin_host: String,
    /// The tenant of calls without `cgr_tenant`.
    pub tenant: String,
    /// The `RequestType` of calls without `cgr_reqtype`.
    pub request_type: String,
    /// Whether every ended call writes a CDR (CGRateS's `create_cdr`);
    /// otherwise only those flagged `*cdrs`.
    pub create_cdr: bool,
    /// The Stasis application (for the channel subscriptions).
    pub app: String,
    /// The max usage set for an unlimited authorization (`MaxUsage` -1),
    /// in milliseconds (CGRateS's `max_call_duration`, 3h).
    pub max_call_duration_ms: i64,
    /// The prefix of the CGREvent IDs.
    pub id_prefix: String,
}

impl Default for AriConfig {
    fn default() -> Self {
        AriConfig {
            origin_host: String::new(),
            tenant: "cgrates.org".into(),
            request_type: "*rated".into(),
            create_cdr: false,
            app: APP.into(),
            max_call_duration_ms: 3 * 3600 * 1000,
            id_prefix: "ari".into(),
        }
    }
}

/// An HTTP method of ARI's REST interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// `GET`.
    Get,
    /// `POST`.
    Post,
    /// `DELETE`.
    Delete,
}

impl Method {
    /// The method's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Delete => "DELETE",
        }
    }
}

/// A REST request to Asterisk, as data: the server sends it (path
/// segments and query values unescaped: the sender escapes them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AriRequest {
    /// The method.
    pub method: Method,
    /// The path's segments after `/ari/` (`["channels", ID, "continue"]`).
    pub segments: Vec<String>,
    /// The query parameters.
    pub query: Vec<(String, String)>,
}

impl AriRequest {
    fn new(method: Method, segments: &[&str], query: &[(&str, &str)]) -> Self {
        AriRequest {
            method,
            segments: segments.iter().map(|s| s.to_string()).collect(),
            query: query
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    /// `POST /ari/channels/ID/variable?variable=NAME&value=VALUE`.
    pub fn setvar(channel: &str, name: &str, value: &str) -> Self {
        Self::new(
            Method::Post,
            &["channels", channel, "variable"],
            &[("variable", name), ("value", value)],
        )
    }

    /// `POST /ari/channels/ID/continue`: the channel leaves Stasis.
    pub fn continue_dialplan(channel: &str) -> Self {
        Self::new(Method::Post, &["channels", channel, "continue"], &[])
    }

    /// `DELETE /ari/channels/ID?reason=congestion`.
    pub fn hangup(channel: &str) -> Self {
        Self::new(
            Method::Delete,
            &["channels", channel],
            &[("reason", HANGUP_REASON)],
        )
    }

    /// `POST /ari/applications/APP/subscription?eventSource=channel:ID`:
    /// the channel's events keep coming after it leaves Stasis.
    pub fn subscribe(app: &str, channel: &str) -> Self {
        let source = format!("channel:{channel}");
        Self::new(
            Method::Post,
            &["applications", app, "subscription"],
            &[("eventSource", &source)],
        )
    }

    /// `GET /ari/channels`: the channels Asterisk has (session sync).
    pub fn channels() -> Self {
        Self::new(Method::Get, &["channels"], &[])
    }

    /// Whether this request hangs a channel up.
    pub fn is_hangup(&self) -> bool {
        self.method == Method::Delete
    }
}

/// One thing Asterisk's events ask for, for the server to run.
#[derive(Debug, Clone, PartialEq)]
pub enum Operation {
    /// `StasisStart`: send `subscribe` (on failure hang up), run
    /// `SessionSv1.AuthorizeEvent` with `args`, then send what
    /// [`AriAgent::authorized`] answers.
    Authorize {
        /// The channel.
        channel: String,
        /// The channel subscription, sent first.
        subscribe: AriRequest,
        /// The `V1AuthorizeArgs`.
        args: Value,
    },
    /// `ChannelStateChange` to `Up`: run `SessionSv1.InitiateSession`,
    /// then send what [`AriAgent::initiated`] answers.
    Initiate {
        /// The channel.
        channel: String,
        /// The `V1InitSessionArgs`.
        args: Value,
    },
    /// `ChannelDestroyed`: run `SessionSv1.TerminateSession` (when the
    /// call was answered), then `SessionSv1.ProcessCDR` with `cdr`.
    Terminate {
        /// The channel.
        channel: String,
        /// The `V1TerminateSessionArgs`; `None` for a call never answered.
        args: Option<Value>,
        /// The CGREvent of the CDR, when one is written.
        cdr: Option<Value>,
    },
}

impl Operation {
    /// The channel the operation is about.
    pub fn channel(&self) -> &str {
        match self {
            Operation::Authorize { channel, .. }
            | Operation::Initiate { channel, .. }
            | Operation::Terminate { channel, .. } => channel,
        }
    }
}

/// Counters of one Asterisk.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AgentStats {
    /// Events read.
    pub events: u64,
    /// Events refused (not JSON, no channel, bad time...).
    pub rejected: u64,
    /// Events of no concern (other types, channels not ours).
    pub ignored: u64,
}

/// A call in Stasis or after: its CGREvent as built at `StasisStart`.
#[derive(Debug, Clone)]
struct Call {
    tenant: String,
    id: String,
    time: String,
    event: Map<String, Value>,
    opts: Map<String, Value>,
    flags: Option<Flags>,
    answer: Option<DateTime<Utc>>,
}

impl Call {
    fn cgr_event(&self) -> Map<String, Value> {
        let mut out = Map::new();
        out.insert("Tenant".into(), self.tenant.clone().into());
        out.insert("ID".into(), self.id.clone().into());
        out.insert("Time".into(), self.time.clone().into());
        out.insert("Event".into(), Value::Object(self.event.clone()));
        out.insert("APIOpts".into(), Value::Object(self.opts.clone()));
        out
    }

    fn args(&self, kind: Kind) -> Value {
        let mut args = self.cgr_event();
        switches(kind, self.flags.as_ref(), &mut args);
        Value::Object(args)
    }

    fn wants_cdr(&self, create_cdr: bool) -> bool {
        create_cdr || self.flags.as_ref().is_some_and(|f| f.has("*cdrs"))
    }
}

/// The sans-IO core of one Asterisk connection.
#[derive(Debug, Clone)]
pub struct AriAgent {
    cfg: AriConfig,
    calls: HashMap<String, Call>,
    seq: u64,
    stats: AgentStats,
}

impl AriAgent {
    /// An Asterisk's core.
    pub fn new(cfg: AriConfig) -> Self {
        AriAgent {
            cfg,
            calls: HashMap::new(),
            seq: 0,
            stats: AgentStats::default(),
        }
    }

    /// The settings.
    pub fn config(&self) -> &AriConfig {
        &self.cfg
    }

    /// The counters.
    pub fn stats(&self) -> AgentStats {
        self.stats
    }

    /// Whether `channel` is a call of this agent.
    pub fn has_call(&self, channel: &str) -> bool {
        self.calls.contains_key(channel)
    }

    /// The calls this agent follows.
    pub fn channels(&self) -> Vec<String> {
        self.calls.keys().cloned().collect()
    }

    /// Reads one WebSocket text message. `Ok(None)`: nothing to do.
    ///
    /// # Errors
    /// The message is refused (not an ARI event, no channel id, a time
    /// that does not parse).
    pub fn handle_message(
        &mut self,
        data: &[u8],
        now: DateTime<Utc>,
    ) -> Result<Option<Operation>, Error> {
        self.stats.events += 1;
        let out = parse_event(data).and_then(|ev| self.event(&ev, now));
        match &out {
            Err(_) => self.stats.rejected += 1,
            Ok(None) => self.stats.ignored += 1,
            Ok(Some(_)) => {}
        }
        out
    }

    fn event(&mut self, ev: &AriEvent, now: DateTime<Utc>) -> Result<Option<Operation>, Error> {
        let channel = ev.channel.as_ref().map(|c| c.id.as_str()).unwrap_or("");
        let relevant = match ev.kind.as_str() {
            "StasisStart" => ev.application.is_empty() || ev.application == self.cfg.app,
            "ChannelStateChange" | "ChannelDestroyed" => self.calls.contains_key(channel),
            _ => false,
        };
        if !relevant {
            return Ok(None);
        }
        if channel.is_empty() {
            return Err(Error::MandatoryMissing("channel.id".into()));
        }
        let at = |field| {
            if ev.timestamp.is_empty() {
                Ok(now)
            } else {
                event::parse_time(field, &ev.timestamp)
            }
        };
        match ev.kind.as_str() {
            "StasisStart" => {
                let call = self.new_call(ev, at("timestamp")?)?;
                let args = call.args(Kind::Authorize);
                self.calls.insert(channel.to_string(), call);
                Ok(Some(Operation::Authorize {
                    channel: channel.to_string(),
                    subscribe: AriRequest::subscribe(&self.cfg.app, channel),
                    args,
                }))
            }
            "ChannelStateChange" => {
                let state = ev.channel.as_ref().map(|c| c.state.as_str());
                let t = at("timestamp")?;
                let Some(call) = self.calls.get_mut(channel) else {
                    return Ok(None);
                };
                if state != Some("Up") || call.answer.is_some() {
                    return Ok(None);
                }
                call.answer = Some(t);
                call.event
                    .insert("EventName".into(), "SMA_SESSION_START".into());
                call.event
                    .insert("AnswerTime".into(), event::rfc3339(t).into());
                Ok(Some(Operation::Initiate {
                    channel: channel.to_string(),
                    args: call.args(Kind::Initiate),
                }))
            }
            _ => {
                let t = at("timestamp")?;
                let Some(mut call) = self.calls.remove(channel) else {
                    return Ok(None);
                };
                call.event
                    .insert("EventName".into(), "SMA_SESSION_TERMINATE".into());
                call.event
                    .insert("DisconnectCause".into(), ev.cause_txt.clone().into());
                let usage = match call.answer {
                    Some(a) => {
                        let ns = (t - a).num_nanoseconds().unwrap_or(0).max(0);
                        format!("{ns}ns")
                    }
                    None => "0s".into(),
                };
                call.event.insert("Usage".into(), usage.into());
                let args = call.answer.map(|_| call.args(Kind::Terminate));
                let cdr = call
                    .wants_cdr(self.cfg.create_cdr)
                    .then(|| Value::Object(call.cgr_event()));
                Ok(Some(Operation::Terminate {
                    channel: channel.to_string(),
                    args,
                    cdr,
                }))
            }
        }
    }

    fn new_call(&mut self, ev: &AriEvent, t: DateTime<Utc>) -> Result<Call, Error> {
        let ch = ev.channel.clone().unwrap_or_default();
        let vars = event::call_vars(ev);
        let var = |k: &str| vars.get(k).filter(|v| !v.is_empty()).cloned();
        let mut event = Map::new();
        let mut opts = Map::new();
        event.insert("EventName".into(), "SMA_AUTHORIZATION".into());
        event.insert("OriginID".into(), ch.id.clone().into());
        event.insert("OriginHost".into(), self.cfg.origin_host.clone().into());
        event.insert("Source".into(), SOURCE.into());
        for (var_name, field) in PRIMARY {
            if let Some(v) = var(var_name) {
                event.insert((*field).into(), v.into());
            }
        }
        event
            .entry("RequestType")
            .or_insert_with(|| self.cfg.request_type.clone().into());
        event
            .entry("Account")
            .or_insert_with(|| ch.caller.number.clone().into());
        event
            .entry("Destination")
            .or_insert_with(|| ch.dialplan.exten.clone().into());
        let setup = if ch.creationtime.is_empty() {
            t
        } else {
            event::parse_time("creationtime", &ch.creationtime)?
        };
        event.insert("SetupTime".into(), event::rfc3339(setup).into());
        for (k, v) in &vars {
            let known = PRIMARY.iter().any(|(n, _)| n == k) || CONTROL.contains(&k.as_str());
            if known {
                continue;
            }
            if k.starts_with('*') {
                opts.insert(k.clone(), v.clone().into());
            } else {
                event.insert(k.clone(), v.clone().into());
            }
        }
        let flags = match (var("cgr_flags"), var("cgr_subsystems")) {
            // `+` as well: a comma ends a Stasis argument
            (Some(f), _) => Some(Flags::parse(&f.replace('+', ";"))),
            (None, Some(s)) => Some(subsystems(&s)),
            (None, None) => None,
        };
        self.seq += 1;
        Ok(Call {
            tenant: var("cgr_tenant").unwrap_or_else(|| self.cfg.tenant.clone()),
            id: format!("{}-{}", self.cfg.id_prefix, self.seq),
            time: event::rfc3339(t),
            event,
            opts,
            flags,
            answer: None,
        })
    }

    /// What to send after `SessionSv1.AuthorizeEvent` for `channel`
    /// answered `outcome` (its reply object, or its error): the variables
    /// (altered attributes, `CGRMaxSessionTime`, the resource allocation,
    /// the suppliers) then `continue`; or a hangup (an error, a max usage
    /// of 0), the call forgotten.
    pub fn authorized(&mut self, channel: &str, outcome: Result<&Value, &str>) -> Vec<AriRequest> {
        let reply = match outcome {
            Ok(r) => r,
            Err(_) => return self.refuse(channel),
        };
        let mut out = Vec::new();
        let attrs = &reply["Attributes"];
        if let Some(altered) = attrs["AlteredFields"].as_array() {
            for f in altered.iter().filter_map(Value::as_str) {
                let name = f.strip_prefix("*req.").unwrap_or(f);
                let value = match &attrs["CGREvent"]["Event"][name] {
                    Value::Null => continue,
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                out.push(AriRequest::setvar(channel, name, &value));
            }
        }
        if let Some(ns) = usage_ns(&reply["MaxUsage"]) {
            let ms = match ns {
                0 => return self.refuse(channel),
                n if n < 0 => self.cfg.max_call_duration_ms,
                n => i64::try_from(n / 1_000_000).unwrap_or(i64::MAX),
            };
            out.push(AriRequest::setvar(
                channel,
                MAX_SESSION_TIME,
                &ms.to_string(),
            ));
        }
        if let Some(r) = reply["ResourceAllocation"].as_str() {
            out.push(AriRequest::setvar(channel, RESOURCE_ALLOCATION, r));
        }
        for (i, id) in supplier_ids(reply).iter().enumerate() {
            let name = format!("{SUPPLIER_VAR}{}", i + 1);
            out.push(AriRequest::setvar(channel, &name, id));
        }
        out.push(AriRequest::continue_dialplan(channel));
        out
    }

    /// What to send after `SessionSv1.InitiateSession` for `channel`
    /// answered `outcome`: a hangup on an error or a max usage of 0.
    pub fn initiated(&mut self, channel: &str, outcome: Result<&Value, &str>) -> Vec<AriRequest> {
        let refused = match outcome {
            Err(_) => true,
            Ok(r) => usage_ns(&r["MaxUsage"]) == Some(0),
        };
        if refused && self.calls.contains_key(channel) {
            vec![AriRequest::hangup(channel)]
        } else {
            Vec::new()
        }
    }

    /// A request for `channel` failed (a variable not set, the
    /// subscription refused): hang it up, as CGRateS does, and forget it.
    pub fn failed(&mut self, channel: &str) -> Vec<AriRequest> {
        self.refuse(channel)
    }

    fn refuse(&mut self, channel: &str) -> Vec<AriRequest> {
        self.calls.remove(channel);
        vec![AriRequest::hangup(channel)]
    }

    /// The session manager ends `channel`'s call (the money ran out, a
    /// forced disconnect): its hangup; `None` when it is not ours. The call
    /// stays known, so its `ChannelDestroyed` terminates the session.
    pub fn disconnect(&self, channel: &str) -> Option<AriRequest> {
        self.calls
            .contains_key(channel)
            .then(|| AriRequest::hangup(channel))
    }

    /// Session sync: `body` is Asterisk's answer to
    /// [`AriRequest::channels`] (a JSON list of channels); the calls it no
    /// longer has are forgotten and returned (their sessions are over).
    ///
    /// # Errors
    /// [`Error::Json`] when `body` is not a list of channels.
    pub fn sync(&mut self, body: &[u8]) -> Result<Vec<String>, Error> {
        let list: Vec<Channel> =
            serde_json::from_slice(body).map_err(|e| Error::Json(e.to_string()))?;
        let live: std::collections::HashSet<&str> = list.iter().map(|c| c.id.as_str()).collect();
        let lost: Vec<String> = self
            .calls
            .keys()
            .filter(|c| !live.contains(c.as_str()))
            .cloned()
            .collect();
        for c in &lost {
            self.calls.remove(c);
        }
        Ok(lost)
    }

    /// Forgets a call (Asterisk no longer has it).
    pub fn forget(&mut self, channel: &str) -> bool {
        self.calls.remove(channel).is_some()
    }
}

/// A max usage in nanoseconds: a number, or a Go duration string.
fn usage_ns(v: &Value) -> Option<i128> {
    match v {
        Value::Number(n) => n
            .as_i64()
            .map(i128::from)
            .or_else(|| n.as_u64().map(i128::from))
            .or_else(|| n.as_f64().and_then(|f| format!("{f:.0}").parse().ok())),
        Value::String(s) => {
            // whole seconds, as the evapi replies read them
            let secs = crate::evapi::reply::max_usage_secs(v);
            (!s.is_empty()).then_some(i128::from(secs) * 1_000_000_000)
        }
        _ => None,
    }
}

/// The sorted supplier (route) ids of an authorization reply: v0.10
/// `Suppliers.SortedSuppliers[].SupplierID`, master
/// `RouteProfiles[].Routes[].RouteID`.
fn supplier_ids(reply: &Value) -> Vec<String> {
    let mut ids = Vec::new();
    let mut push = |list: &Value, key: &str| {
        for s in list.as_array().into_iter().flatten() {
            if let Some(id) = s[key].as_str() {
                ids.push(id.to_string());
            }
        }
    };
    push(&reply["Suppliers"]["SortedSuppliers"], "SupplierID");
    for key in ["Routes", "RouteProfiles"] {
        match &reply[key] {
            Value::Array(profiles) => profiles.iter().for_each(|p| push(&p["Routes"], "RouteID")),
            obj @ Value::Object(_) => push(&obj["SortedRoutes"], "RouteID"),
            _ => {}
        }
    }
    ids
}

/// v0.10's `cgr_subsystems` (`*accounts*resources*attributes`, read by
/// substring) as flags.
fn subsystems(text: &str) -> Flags {
    const KNOWN: &[&str] = &[
        "*accounts",
        "*resources",
        "*suppliers",
        "*suppliers_ignore_errors",
        "*attributes",
        "*thresholds",
        "*stats",
        "*cdrs",
    ];
    Flags {
        list: KNOWN
            .iter()
            .filter(|k| text.contains(*k))
            .map(|k| (k.to_string(), Vec::new()))
            .collect(),
    }
}

#[cfg(test)]
mod tests;
