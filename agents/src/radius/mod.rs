//! RADIUS (RFC 2865, 2866, 5176) as CGRateS's RadiusAgent serves it,
//! sans-IO: datagrams, the sender's address and `now` in; SessionSv1
//! calls, replies and Disconnect-Requests out.
//!
//! - [`packet`]: the wire format; [`dict`]: FreeRADIUS dictionaries;
//!   [`auth`]: authenticators, PAP, CHAP, Digest; [`dedup`]: duplicate
//!   requests; [`dynauth`]: Disconnect-Requests and their retries;
//!   [`client`]: NAS ranges and secrets; [`request`]: the templates' view
//!   of a request and the default processors.
//! - [`RadiusAgent::handle`] checks a request (client, authenticators,
//!   duplicates) and turns it into a [`Job`]: the session calls its
//!   request processors' flags name, their arguments built by the field
//!   templates ([`crate::template`]). The server runs the calls and hands
//!   their answers to [`RadiusAgent::finish`], which builds, signs and
//!   caches the reply (and checks the password an Access-Request
//!   carries against `*vars.UserPassword`, which a reply field fills from
//!   AttributeS).

pub mod auth;
pub mod client;
pub mod dedup;
pub mod dict;
pub mod dynauth;
pub mod packet;
pub mod request;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use subsystems::FilterCtx;

use self::auth::{MESSAGE_AUTHENTICATOR, MessageAuth};
use self::client::Client;
use self::dedup::{Dedup, Seen};
use self::dict::Dictionary;
use self::dynauth::DynAuth;
use self::packet::{Attr, Code, Packet};
use self::request::{Credentials, ReqKind, View};
use crate::Error;
use crate::template::{Built, Processor, ReplyProvider, run_fields, select};

/// Reply-Message (RFC 2865 section 5.18).
const REPLY_MESSAGE: u8 = 18;
/// Proxy-State (RFC 2865 section 5.33).
const PROXY_STATE: u8 = 33;
/// Acct-Session-Id, User-Name: what a Disconnect-Request names.
const ACCT_SESSION_ID: u8 = 44;
const USER_NAME: u8 = 1;

/// The agent's settings.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    /// The tenant of the events (a `*cgreq.Tenant` field overrides it).
    pub tenant: String,
    /// The NASes allowed.
    pub clients: Vec<Client>,
    /// The request processors, in order.
    pub processors: Vec<Processor>,
    /// Attribute names and types.
    pub dict: Arc<Dictionary>,
    /// How long answered requests are remembered for duplicates.
    pub dedup_ttl: Duration,
    /// A prefix for the CGREvents' IDs.
    pub id_prefix: String,
    /// Disconnect-Request: seconds between tries, and how many.
    pub dynauth_timeout: Duration,
    /// Disconnect-Request tries.
    pub dynauth_tries: u32,
}

/// Why a datagram got no answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DropReason {
    /// Not a RADIUS packet.
    Malformed,
    /// From an address no client range holds.
    UnknownClient,
    /// A code the port does not serve.
    UnexpectedCode,
    /// A wrong Request Authenticator (a wrong secret).
    BadAuthenticator,
    /// A wrong Message-Authenticator (a wrong secret).
    BadMessageAuthenticator,
    /// An Access-Request without Message-Authenticator from a client that
    /// requires one.
    MissingMessageAuthenticator,
    /// A duplicate of a request still being answered.
    DuplicateInFlight,
}

impl DropReason {
    /// A name for counters and logs.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            DropReason::Malformed => "malformed",
            DropReason::UnknownClient => "unknown_client",
            DropReason::UnexpectedCode => "unexpected_code",
            DropReason::BadAuthenticator => "bad_authenticator",
            DropReason::BadMessageAuthenticator => "bad_message_authenticator",
            DropReason::MissingMessageAuthenticator => "missing_message_authenticator",
            DropReason::DuplicateInFlight => "duplicate_in_flight",
        }
    }
}

/// One session call.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    /// `SessionSv1.AuthorizeEvent`, ...
    pub method: &'static str,
    /// Its arguments.
    pub args: Value,
}

/// What one processor built.
#[derive(Debug, Clone)]
struct Step {
    processor: usize,
    built: Built,
    /// Its calls' indexes in [`Job::calls`].
    calls: std::ops::Range<usize>,
}

/// A request to run: its calls, in order, then [`RadiusAgent::finish`].
#[derive(Debug, Clone)]
pub struct Job {
    /// The session calls.
    pub calls: Vec<Call>,
    /// The request's kind.
    pub kind: ReqKind,
    key: dedup::Key,
    packet: Packet,
    from: SocketAddr,
    secret: Vec<u8>,
    vars: Map<String, Value>,
    steps: Vec<Step>,
    credentials: Credentials,
    had_message_auth: bool,
}

impl Job {
    /// Where the request came from (the reply goes there).
    #[must_use]
    pub fn from(&self) -> SocketAddr {
        self.from
    }
}

/// What [`RadiusAgent::handle`] makes of a datagram.
#[derive(Debug)]
pub enum Handled {
    /// No answer.
    Drop(DropReason),
    /// Send these bytes back (a duplicate's cached reply).
    Reply(Vec<u8>),
    /// Run the calls, then [`RadiusAgent::finish`].
    Run(Box<Job>),
}

/// Counters, for metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counters {
    /// Datagrams received.
    pub received: u64,
    /// Dropped, by reason.
    pub dropped: HashMap<&'static str, u64>,
    /// Duplicates answered from the cache.
    pub duplicates: u64,
    /// Access-Accepts sent.
    pub accepts: u64,
    /// Access-Rejects sent.
    pub rejects: u64,
    /// Accounting-Responses sent.
    pub accounting: u64,
    /// Requests whose templates failed (answered with a reject, or
    /// dropped for accounting).
    pub template_errors: u64,
    /// Disconnect-Requests queued.
    pub disconnects: u64,
    /// Disconnect-ACKs.
    pub disconnect_acks: u64,
    /// Disconnect-NAKs.
    pub disconnect_naks: u64,
    /// Disconnects without an answer.
    pub disconnect_timeouts: u64,
}

/// What a session started here needs for its Disconnect-Request.
#[derive(Debug, Clone)]
struct Started {
    nas: SocketAddr,
    secret: Vec<u8>,
    attrs: Vec<Attr>,
}

/// The RADIUS agent of one auth/acct listener pair.
#[derive(Debug)]
pub struct RadiusAgent {
    cfg: AgentConfig,
    dedup: Dedup,
    dynauth: DynAuth,
    /// Sessions started here, by CGRID.
    started: HashMap<String, Started>,
    /// The Acct-Session-Time last seen per (NAS, Acct-Session-Id): an
    /// Interim-Update's LastUsed is the difference.
    session_time: HashMap<(IpAddr, String), u64>,
    counters: Counters,
    seq: u64,
}

impl RadiusAgent {
    /// An agent.
    #[must_use]
    pub fn new(cfg: AgentConfig) -> RadiusAgent {
        RadiusAgent {
            dedup: Dedup::new(cfg.dedup_ttl, 65_536),
            dynauth: DynAuth::new(cfg.dynauth_timeout, cfg.dynauth_tries),
            cfg,
            started: HashMap::new(),
            session_time: HashMap::new(),
            counters: Counters::default(),
            seq: 0,
        }
    }

    /// The counters so far.
    #[must_use]
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// The settings.
    #[must_use]
    pub fn config(&self) -> &AgentConfig {
        &self.cfg
    }

    fn dropped(&mut self, r: DropReason) -> Handled {
        *self.counters.dropped.entry(r.name()).or_default() += 1;
        Handled::Drop(r)
    }

    /// A datagram from `from` on the auth (`acct` false) or accounting
    /// port.
    ///
    /// # Errors
    /// [`Error::Template`] / [`Error::MandatoryMissing`]: the processors
    /// cannot build the request's event (for an Access-Request the
    /// caller answers [`RadiusAgent::reject`]).
    pub fn handle(
        &mut self,
        from: SocketAddr,
        bytes: &[u8],
        acct: bool,
        filters: &FilterCtx<'_>,
        now: DateTime<Utc>,
    ) -> Result<Handled, Error> {
        self.counters.received += 1;
        let Ok(packet) = Packet::decode(bytes) else {
            return Ok(self.dropped(DropReason::Malformed));
        };
        let Some(client) = client::find(&self.cfg.clients, from.ip()).cloned() else {
            return Ok(self.dropped(DropReason::UnknownClient));
        };
        let kind = match (ReqKind::of(&packet), acct) {
            (Some(ReqKind::Auth), false) => ReqKind::Auth,
            (Some(k), true) if k != ReqKind::Auth => k,
            _ => return Ok(self.dropped(DropReason::UnexpectedCode)),
        };
        let secret = client.secret.as_slice();
        if acct && !auth::request_authenticator_ok(bytes, secret) {
            return Ok(self.dropped(DropReason::BadAuthenticator));
        }
        // Accounting requests compute it over the zeroed authenticator
        // (RFC 5176 section 3.3's rule, as FreeRADIUS does).
        let ma_auth = acct.then_some(&[0u8; 16]);
        let had_message_auth = match auth::check_message_authenticator(bytes, ma_auth, secret) {
            MessageAuth::Invalid => return Ok(self.dropped(DropReason::BadMessageAuthenticator)),
            MessageAuth::Absent if !acct && client.require_message_authenticator => {
                return Ok(self.dropped(DropReason::MissingMessageAuthenticator));
            }
            MessageAuth::Absent => false,
            MessageAuth::Valid => true,
        };
        let key = (from, packet.identifier, packet.authenticator);
        match self.dedup.check(key, now) {
            Seen::New => {}
            Seen::InFlight => return Ok(self.dropped(DropReason::DuplicateInFlight)),
            Seen::Answered(b) => {
                self.counters.duplicates += 1;
                return Ok(Handled::Reply(b));
            }
        }
        let credentials = if acct {
            Credentials::None
        } else {
            request::credentials(&packet, secret)
        };
        let vars = self.vars(&packet, kind, from);
        match self.build(
            key,
            packet,
            kind,
            from,
            client.secret.clone(),
            vars,
            credentials,
            had_message_auth,
            filters,
            now,
        ) {
            Ok(job) => Ok(Handled::Run(Box::new(job))),
            Err(e) => {
                self.counters.template_errors += 1;
                if acct {
                    // The NAS resends; a fixed configuration answers then.
                    self.dedup.forget(&key);
                }
                Err(e)
            }
        }
    }

    /// `*vars`: the request kind, the NAS's address, and for an
    /// Interim-Update the session time since the last one (`LastUsed`).
    fn vars(&mut self, p: &Packet, kind: ReqKind, from: SocketAddr) -> Map<String, Value> {
        let mut vars = Map::new();
        vars.insert("*radReqType".into(), kind.name().into());
        vars.insert("RadReqType".into(), kind.name().into());
        vars.insert("RemoteHost".into(), from.to_string().into());
        vars.insert("RemoteIP".into(), from.ip().to_string().into());
        let sid = p
            .attr(ACCT_SESSION_ID)
            .map(|v| String::from_utf8_lossy(v).into_owned());
        let time = p
            .attr(46)
            .and_then(|v| v.first_chunk::<4>())
            .map(|b| u64::from(u32::from_be_bytes(*b)));
        if let Some(sid) = sid {
            let k = (from.ip(), sid);
            match kind {
                ReqKind::AcctStart => {
                    self.session_time.insert(k, 0);
                }
                ReqKind::AcctUpdate => {
                    let now = time.unwrap_or(0);
                    let before = self.session_time.insert(k, now).unwrap_or(0);
                    vars.insert(
                        "LastUsed".into(),
                        format!("{}s", now.saturating_sub(before)).into(),
                    );
                }
                ReqKind::AcctStop => {
                    self.session_time.remove(&k);
                }
                _ => {}
            }
        }
        vars
    }

    #[allow(clippy::too_many_arguments)]
    fn build(
        &mut self,
        key: dedup::Key,
        packet: Packet,
        kind: ReqKind,
        from: SocketAddr,
        secret: Vec<u8>,
        vars: Map<String, Value>,
        credentials: Credentials,
        had_message_auth: bool,
        filters: &FilterCtx<'_>,
        now: DateTime<Utc>,
    ) -> Result<Job, Error> {
        let tenant = self.cfg.tenant.clone();
        let view = View {
            packet: &packet,
            dict: &self.cfg.dict,
            vars: &vars,
        };
        let chosen: Vec<usize> = select(&self.cfg.processors, &view, filters, &tenant)?
            .into_iter()
            .filter_map(|p| self.cfg.processors.iter().position(|q| std::ptr::eq(p, q)))
            .collect();
        let mut calls = Vec::new();
        let mut steps = Vec::new();
        for i in chosen {
            let Some(p) = self.cfg.processors.get(i) else {
                continue;
            };
            let mut built = Built {
                vars: vars.clone(),
                ..Built::default()
            };
            run_fields(&p.request_fields, &view, filters, &tenant, now, &mut built)?;
            if p.has_flag("*extra_vsas") {
                self.add_vsas(&packet, &mut built);
            }
            self.seq += 1;
            let id = format!("{}:{}", self.cfg.id_prefix, self.seq);
            let first = calls.len();
            calls.extend(ops::calls(p, &built, &tenant, &id));
            steps.push(Step {
                processor: i,
                built,
                calls: first..calls.len(),
            });
        }
        Ok(Job {
            calls,
            kind,
            key,
            packet,
            from,
            secret,
            vars,
            steps,
            credentials,
            had_message_auth,
        })
    }

    /// Every vendor attribute the dictionary names, into the event under
    /// that name (several of one name joined with `;`), unless a field
    /// wrote it.
    fn add_vsas(&self, p: &Packet, built: &mut Built) {
        let mut found: Vec<(String, String)> = Vec::new();
        for v in p.attributes.iter().filter_map(Attr::vendor).flatten() {
            if let Some(def) = self.cfg.dict.by_code(v.vendor, v.typ) {
                let text = self.cfg.dict.text(def, v.value);
                match found.iter_mut().find(|(n, _)| *n == def.name) {
                    Some((_, t)) => {
                        t.push(';');
                        t.push_str(&text);
                    }
                    None => found.push((def.name.clone(), text)),
                }
            }
        }
        for (name, text) in found {
            built.cgreq.entry(name).or_insert(Value::String(text));
        }
    }

    /// The calls' answers (in [`Job::calls`] order) in; the reply to send
    /// out (cached for duplicates). Sessions started are remembered for
    /// their disconnects, ended ones forgotten.
    pub fn finish(
        &mut self,
        job: Job,
        answers: &[Result<Value, String>],
        filters: &FilterCtx<'_>,
        now: DateTime<Utc>,
    ) -> Vec<u8> {
        let tenant = self.cfg.tenant.clone();
        let mut rep: Vec<(String, String)> = Vec::new();
        let mut error: Option<String> = None;
        let mut password: Option<String> = None;
        let mut method_flags: Vec<String> = Vec::new();
        let mut keep: Vec<&Step> = Vec::new();
        let view = View {
            packet: &job.packet,
            dict: &self.cfg.dict,
            vars: &job.vars,
        };
        for step in &job.steps {
            let Some(p) = self.cfg.processors.get(step.processor) else {
                continue;
            };
            let first = answers.get(step.calls.clone()).and_then(|a| a.first());
            let (reply, err) = match first {
                Some(Ok(v)) => (v.clone(), None),
                Some(Err(e)) => (Value::Null, Some(e.as_str())),
                None => (Value::Null, None),
            };
            if let Some(e) = answers
                .get(step.calls.clone())
                .into_iter()
                .flatten()
                .find_map(|a| a.as_ref().err())
            {
                error.get_or_insert_with(|| e.clone());
            }
            let rp = ReplyProvider {
                req: &view,
                reply: &reply,
                error: err,
            };
            let mut built = step.built.clone();
            if let Err(e) = run_fields(&p.reply_fields, &rp, filters, &tenant, now, &mut built) {
                error.get_or_insert_with(|| e.to_string());
            }
            if let Some(pw) = built.get(crate::template::Target::Vars, "UserPassword") {
                password = Some(pw.to_owned());
            }
            method_flags.extend(
                p.flags
                    .iter()
                    .filter(|f| matches!(f.as_str(), "*radauth" | "*pap" | "*chap" | "*digest"))
                    .cloned(),
            );
            rep.extend(built.rep);
            if error.is_none() {
                keep.push(step);
            }
        }
        for step in keep {
            self.remember(&job, &step.built, step.processor);
        }
        let code = match job.kind {
            ReqKind::Auth => {
                if error.is_none() {
                    if let Err(e) =
                        check_password(&job.credentials, password.as_deref(), &method_flags)
                    {
                        error = Some(e);
                    }
                }
                if error.is_some() {
                    Code::AccessReject
                } else {
                    Code::AccessAccept
                }
            }
            _ => Code::AccountingResponse,
        };
        if let Some(e) = &error {
            tracing::info!(nas = %job.from, kind = job.kind.name(), error = %e, "RADIUS request refused");
        }
        let mut attrs = Vec::new();
        if code == Code::AccessReject {
            let mut msg = error.unwrap_or_default();
            msg.truncate(253);
            attrs.push(Attr::new(REPLY_MESSAGE, msg.into_bytes()));
        } else if code == Code::AccessAccept {
            attrs.extend(self.reply_attrs(&rep));
        }
        match code {
            Code::AccessAccept => self.counters.accepts += 1,
            Code::AccessReject => self.counters.rejects += 1,
            _ => self.counters.accounting += 1,
        }
        let bytes = self.sign(code, &job, attrs);
        self.dedup.answered(job.key, bytes.clone(), now);
        bytes
    }

    /// An Access-Reject for a job that could not be built (its error
    /// text as Reply-Message), cached for duplicates.
    pub fn reject(
        &mut self,
        from: SocketAddr,
        bytes: &[u8],
        why: &str,
        now: DateTime<Utc>,
    ) -> Option<Vec<u8>> {
        let packet = Packet::decode(bytes).ok()?;
        let client = client::find(&self.cfg.clients, from.ip())?.clone();
        let key = (from, packet.identifier, packet.authenticator);
        let had_message_auth = packet.attr(MESSAGE_AUTHENTICATOR).is_some();
        let job = Job {
            calls: Vec::new(),
            kind: ReqKind::Auth,
            key,
            packet,
            from,
            secret: client.secret,
            vars: Map::new(),
            steps: Vec::new(),
            credentials: Credentials::None,
            had_message_auth,
        };
        let mut msg = why.to_owned();
        msg.truncate(253);
        self.counters.rejects += 1;
        let out = self.sign(
            Code::AccessReject,
            &job,
            vec![Attr::new(REPLY_MESSAGE, msg.into_bytes())],
        );
        self.dedup.answered(key, out.clone(), now);
        Some(out)
    }

    /// `*rep.NAME` values as attributes (names the dictionary does not
    /// know, or values that do not fit, are logged and left out).
    fn reply_attrs(&self, rep: &[(String, String)]) -> Vec<Attr> {
        let mut out = Vec::new();
        for (name, text) in rep {
            let Some(def) = self.cfg.dict.by_name(name) else {
                tracing::warn!(attribute = %name, "reply field names no dictionary attribute");
                continue;
            };
            let value = match self.cfg.dict.encode(def, text) {
                Ok(v) => v,
                Err(e) => {
                    tracing::warn!(attribute = %name, error = %e, "reply field not sent");
                    continue;
                }
            };
            let a = if def.vendor == 0 {
                (value.len() <= 253).then(|| Attr::new(def.code, value))
            } else {
                Attr::vendor_specific(def.vendor, def.code, &value)
            };
            match a {
                Some(a) => out.push(a),
                None => tracing::warn!(attribute = %name, "reply value too long"),
            }
        }
        out
    }

    /// The reply's bytes, Message-Authenticator (when the request had
    /// one) and Response Authenticator set.
    fn sign(&self, code: Code, job: &Job, mut attrs: Vec<Attr>) -> Vec<u8> {
        // Access replies only: RFC 3579 section 3.2 (accounting replies
        // compute it differently among implementations; none needs it).
        if job.had_message_auth && matches!(code, Code::AccessAccept | Code::AccessReject) {
            attrs.insert(0, Attr::new(MESSAGE_AUTHENTICATOR, vec![0; 16]));
        }
        // Proxy-State is copied unmodified, in order (RFC 2865 section 5.33).
        attrs.extend(
            job.packet
                .attributes
                .iter()
                .filter(|a| a.typ == PROXY_STATE)
                .cloned(),
        );
        let p = Packet {
            code,
            identifier: job.packet.identifier,
            authenticator: job.packet.authenticator,
            attributes: attrs,
        };
        let mut bytes = match p.encode() {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(error = %e, "RADIUS reply too large: sent without attributes");
                let bare = Packet {
                    attributes: Vec::new(),
                    ..p
                };
                bare.encode().unwrap_or_default()
            }
        };
        let ra = job.packet.authenticator;
        auth::set_message_authenticator(&mut bytes, Some(&ra), &job.secret);
        auth::sign_response(&mut bytes, &ra, &job.secret);
        bytes
    }

    /// Keeps what a started session's Disconnect-Request needs; forgets
    /// an ended one.
    fn remember(&mut self, job: &Job, built: &Built, processor: usize) {
        let Some(p) = self.cfg.processors.get(processor) else {
            return;
        };
        let (initiate, terminate) = (p.has_flag("*initiate"), p.has_flag("*terminate"));
        let origin = built
            .get(crate::template::Target::CgrReq, "OriginID")
            .unwrap_or_default();
        let host = built
            .get(crate::template::Target::CgrReq, "OriginHost")
            .unwrap_or_default();
        if origin.is_empty() {
            return;
        }
        let cgrid = sessions::cgrid(origin, host);
        if initiate {
            let Some(c) = client::find(&self.cfg.clients, job.from.ip()) else {
                return;
            };
            let mut attrs = Vec::new();
            for t in [USER_NAME, ACCT_SESSION_ID] {
                if let Some(v) = job.packet.attr(t) {
                    attrs.push(Attr::new(t, v.to_vec()));
                }
            }
            self.started.insert(
                cgrid,
                Started {
                    nas: SocketAddr::new(job.from.ip(), c.dynauth_port),
                    secret: c.secret.clone(),
                    attrs,
                },
            );
        } else if terminate {
            self.started.remove(&cgrid);
        }
    }

    /// Queues a Disconnect-Request for the session `cgrid` started here;
    /// false when it was not.
    pub fn disconnect(&mut self, cgrid: &str, now: DateTime<Utc>) -> bool {
        let Some(s) = self.started.get(cgrid).cloned() else {
            return false;
        };
        match self
            .dynauth
            .disconnect(cgrid.to_owned(), s.nas, &s.secret, s.attrs, now)
        {
            Ok(()) => {
                self.counters.disconnects += 1;
                true
            }
            Err(e) => {
                tracing::warn!(error = %e, "Disconnect-Request not sent");
                false
            }
        }
    }

    /// A datagram on the dynamic authorization socket (a NAS's ACK/NAK).
    pub fn handle_dynauth_reply(&mut self, from: SocketAddr, bytes: &[u8]) {
        if let Err(e) = self.dynauth.handle_reply(from, bytes) {
            tracing::warn!(nas = %from, error = %e, "dynamic authorization answer dropped");
            *self.counters.dropped.entry("dynauth_reply").or_default() += 1;
        }
        self.drain_outcomes();
    }

    fn drain_outcomes(&mut self) {
        while let Some(o) = self.dynauth.poll_outcome() {
            match o {
                dynauth::Outcome::Acked { session } => {
                    tracing::info!(session, "Disconnect-ACK");
                    self.counters.disconnect_acks += 1;
                }
                dynauth::Outcome::Naked { session, cause } => {
                    tracing::warn!(session, ?cause, "Disconnect-NAK");
                    self.counters.disconnect_naks += 1;
                }
                dynauth::Outcome::TimedOut { session } => {
                    tracing::warn!(session, "Disconnect-Request unanswered");
                    self.counters.disconnect_timeouts += 1;
                }
            }
        }
    }

    /// Retries due at `now`.
    pub fn handle_timeout(&mut self, now: DateTime<Utc>) {
        self.dynauth.handle_timeout(now);
        self.drain_outcomes();
    }

    /// When [`RadiusAgent::handle_timeout`] is due.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<DateTime<Utc>> {
        self.dynauth.poll_timeout()
    }

    /// The next Disconnect-Request datagram to send.
    pub fn poll_transmit(&mut self) -> Option<(SocketAddr, Vec<u8>)> {
        self.dynauth.poll_transmit()
    }
}

/// Whether the credentials prove the password known (`*vars.UserPassword`).
/// A request without credentials passes unless a processor says
/// `*radauth`; one with credentials needs a password to check them by;
/// `*pap`/`*chap`/`*digest` flags, when given, limit the methods.
fn check_password(c: &Credentials, password: Option<&str>, flags: &[String]) -> Result<(), String> {
    let methods: Vec<&str> = flags
        .iter()
        .map(String::as_str)
        .filter(|f| *f != "*radauth")
        .collect();
    if matches!(c, Credentials::None) {
        return if flags.iter().any(|f| f == "*radauth") {
            Err("AUTHENTICATION_REQUIRED".into())
        } else {
            Ok(())
        };
    }
    if !methods.is_empty() && !methods.contains(&c.flag()) {
        return Err(format!("UNSUPPORTED_AUTH_METHOD {}", c.flag()));
    }
    let Some(pw) = password.filter(|p| !p.is_empty()) else {
        return Err("NO_PASSWORD_KNOWN".into());
    };
    if c.check(pw.as_bytes()) {
        Ok(())
    } else {
        Err("AUTHENTICATION_FAILED".into())
    }
}

mod ops;

#[cfg(test)]
mod tests;
