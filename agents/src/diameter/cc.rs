//! Credit-Control-Requests (RFC 4006, 3GPP Gy) turned into SessionSv1
//! calls and their replies into Credit-Control-Answers, through the
//! request processors of [`crate::template`]: the CCR is a
//! [`DataProvider`] (`*req.AVP-Name`, `*req.Grouped.Child`, CGRateS's
//! selector `*req.Subscription-Id.Subscription-Id-Data[~Subscription-Id-Type(0)]`,
//! and `*vars.*cmd`, `*vars.OriginHost`, ...), the processors pick the
//! session methods by their flags, and `*rep.` fields become AVPs of the
//! answer (`*rep.Multiple-Services-Credit-Control.Granted-Service-Unit.CC-Time`).

use std::borrow::Cow;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use subsystems::{DataProvider, FilterCtx};

use super::avp::{Avp, AvpType, from_text, render};
use super::defaults::default_processors;
use super::dict::Dictionary;
use super::message::Message;
use super::{code, result};
use crate::Error;
use crate::template::{Built, Processor, ProcessorCfg, ReplyProvider, run_fields, select};

/// Error-Message (RFC 6733 §7.3).
const ERROR_MESSAGE: u32 = 281;

/// The credit-control side of one `[[agents.diameter]]`.
#[derive(Debug, Clone, Default)]
pub struct CcConfig {
    /// The tenant of the events.
    pub tenant: String,
    /// The request processors; empty: the defaults
    /// ([`super::defaults::default_processors`]).
    pub processors: Vec<ProcessorCfg>,
    /// Validity-Time sent with granted units (`*vars.ValidityTime`).
    pub validity_time: Option<u32>,
}

/// One SessionSv1 call of a request.
#[derive(Debug, Clone, PartialEq)]
pub struct CcCall {
    /// The method.
    pub method: &'static str,
    /// Its arguments.
    pub args: Value,
    /// Run only when the first call granted the usage asked for (the
    /// one-shot debit after an EVENT's authorization).
    pub after_grant: bool,
}

/// A CCR being served: the calls to run, then [`CcAgent::answer`].
#[derive(Debug, Clone)]
pub struct CcRequest {
    /// The request.
    pub request: Message,
    /// Its Session-Id.
    pub session_id: String,
    /// Its CC-Request-Type (1 INITIAL, 2 UPDATE, 3 TERMINATION, 4 EVENT).
    pub request_type: u32,
    /// The calls, in order.
    pub calls: Vec<CcCall>,
    /// What the request fields built.
    pub built: Built,
    /// The agent's variables (`*vars.`).
    pub vars: Vec<(String, String)>,
    processors: Vec<usize>,
}

impl CcRequest {
    /// The usage this request reports as used (`LastUsed`), in
    /// nanoseconds (or units).
    #[must_use]
    pub fn reported_ns(&self) -> u128 {
        self.built
            .cgreq
            .get("LastUsed")
            .and_then(usage_ns)
            .unwrap_or(0)
    }

    /// RFC 4006 reports the units used since the previous report, and a
    /// session's end is its total: a TERMINATION with `LastUsed` and no
    /// `Usage` gets `Usage` = `before` (what the earlier requests of the
    /// session reported) + its `LastUsed`, in its event and its calls.
    pub fn settle_total(&mut self, before_ns: u128) {
        if self.request_type != 3 || self.built.cgreq.contains_key("Usage") {
            return;
        }
        if !self.built.cgreq.contains_key("LastUsed") {
            return;
        }
        let total = Value::String(format!("{}", before_ns + self.reported_ns()));
        self.built.cgreq.insert("Usage".into(), total.clone());
        for c in &mut self.calls {
            if let Some(Value::Object(ev)) = c.args.get_mut("Event") {
                ev.insert("Usage".into(), total.clone());
            }
        }
    }
}

/// The CCR as `*req.` and `*vars.` paths.
pub struct CcrView<'a> {
    /// The message.
    pub msg: &'a Message,
    /// The dictionary naming its AVPs.
    pub dict: &'a Dictionary,
    /// `*vars.NAME` values.
    pub vars: &'a [(String, String)],
}

impl DataProvider for CcrView<'_> {
    fn field(&self, path: &str) -> Option<Cow<'_, str>> {
        if let Some(name) = path.strip_prefix("*vars.") {
            return self
                .vars
                .iter()
                .rev()
                .find(|(n, _)| n == name)
                .map(|(_, v)| Cow::Borrowed(v.as_str()));
        }
        let rest = path.strip_prefix("*req.")?;
        lookup(self.dict, &self.msg.avps, rest).map(Cow::Owned)
    }
}

/// `A.B.C` or `A.B.C[~X(v)]` (the group holding C must have a child X
/// whose value is v) over `avps`.
#[must_use]
pub fn lookup(dict: &Dictionary, avps: &[Avp], path: &str) -> Option<String> {
    let (path, selector) = match path.strip_suffix(']').and_then(|p| p.split_once('[')) {
        Some((p, sel)) => {
            let sel = sel.strip_prefix('~').unwrap_or(sel);
            let (name, value) = sel.strip_suffix(')')?.split_once('(')?;
            (p, Some((name, value)))
        }
        None => (path, None),
    };
    let segs: Vec<&str> = path.split('.').collect();
    find(dict, avps, &segs, selector, 0)
}

fn find(
    dict: &Dictionary,
    avps: &[Avp],
    segs: &[&str],
    sel: Option<(&str, &str)>,
    depth: usize,
) -> Option<String> {
    let (first, rest) = segs.split_first()?;
    let def = dict.by_name(first)?;
    if depth > super::avp::MAX_DEPTH {
        return None;
    }
    for a in avps
        .iter()
        .filter(|a| a.code == def.code && a.vendor == def.vendor)
    {
        if rest.is_empty() {
            return if def.ty == AvpType::Grouped {
                Some(String::new())
            } else {
                render(def.ty, &a.data)
            };
        }
        let Ok(children) = a.children() else {
            continue;
        };
        if rest.len() == 1
            && let Some((name, want)) = sel
            && lookup(dict, &children, name).as_deref() != Some(want)
        {
            continue;
        }
        if let Some(v) = find(dict, &children, rest, sel, depth + 1) {
            return Some(v);
        }
    }
    None
}

/// A duration as the session fields write it (`300s`, `1500ms`, or integer
/// nanoseconds) in nanoseconds.
fn usage_ns(v: &Value) -> Option<u128> {
    let s = match v {
        Value::String(s) => s.trim().to_owned(),
        Value::Number(n) => n.to_string(),
        _ => return None,
    };
    if let Some(ms) = s.strip_suffix("ms") {
        return ms.parse::<u128>().ok().map(|m| m * 1_000_000);
    }
    if let Some(secs) = s.strip_suffix('s') {
        return secs.parse::<u128>().ok().map(|x| x * 1_000_000_000);
    }
    s.parse::<u128>().ok()
}

/// Runs CCRs through the request processors and answers them.
#[derive(Debug)]
pub struct CcAgent {
    dict: Arc<Dictionary>,
    processors: Vec<Processor>,
    cfg: CcConfig,
    origin_host: String,
    origin_realm: String,
}

impl CcAgent {
    /// An agent answering as `origin_host` / `origin_realm`.
    ///
    /// # Errors
    /// A processor that does not compile.
    pub fn new(
        cfg: CcConfig,
        dict: Arc<Dictionary>,
        origin_host: &str,
        origin_realm: &str,
    ) -> Result<CcAgent, Error> {
        let cfgs = if cfg.processors.is_empty() {
            default_processors()
        } else {
            cfg.processors.clone()
        };
        let processors = cfgs
            .iter()
            .map(Processor::compile)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(CcAgent {
            dict,
            processors,
            cfg,
            origin_host: origin_host.to_owned(),
            origin_realm: origin_realm.to_owned(),
        })
    }

    /// The tenant.
    #[must_use]
    pub fn tenant(&self) -> &str {
        &self.cfg.tenant
    }

    /// The calls `ccr` (from the peer at `remote`) asks for, or the answer
    /// to send at once (no processor, a mandatory field missing: 5005).
    ///
    /// # Errors
    /// The answer to send instead.
    pub fn request(
        &self,
        ccr: Message,
        remote: &str,
        filters: &FilterCtx<'_>,
        now: DateTime<Utc>,
    ) -> Result<CcRequest, Box<Message>> {
        let session_id = ccr
            .find(code::SESSION_ID, None)
            .and_then(Avp::as_str)
            .unwrap_or_default()
            .to_owned();
        let request_type = ccr
            .find(code::CC_REQUEST_TYPE, None)
            .and_then(Avp::as_u32)
            .unwrap_or(0);
        let mut vars = vec![
            ("*cmd".to_owned(), "CCR".to_owned()),
            ("*app".to_owned(), "Credit Control".to_owned()),
            ("*appid".to_owned(), ccr.app_id.to_string()),
            ("OriginHost".to_owned(), self.origin_host.clone()),
            ("OriginRealm".to_owned(), self.origin_realm.clone()),
            ("RemoteHost".to_owned(), remote.to_owned()),
            (
                "Now".to_owned(),
                now.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
            ),
        ];
        if let Some(v) = self.cfg.validity_time {
            vars.push(("ValidityTime".to_owned(), v.to_string()));
        }
        let tenant = self.cfg.tenant.as_str();
        let fail = |ccr: &Message, rc: u32, why: &str| {
            let mut a = self.base_answer(ccr, rc);
            a.push(Avp::new(
                ERROR_MESSAGE,
                None,
                false,
                why.as_bytes().to_vec(),
            ));
            Box::new(a)
        };
        let view = CcrView {
            msg: &ccr,
            dict: &self.dict,
            vars: &vars,
        };
        let chosen = match select(&self.processors, &view, filters, tenant) {
            Ok(c) if !c.is_empty() => c,
            Ok(_) => return Err(fail(&ccr, result::UNABLE_TO_COMPLY, "no request processor")),
            Err(e) => return Err(fail(&ccr, result::UNABLE_TO_COMPLY, &e.to_string())),
        };
        let mut built = Built::default();
        let mut calls = Vec::new();
        let mut idx = Vec::new();
        for p in chosen {
            if let Err(e) = run_fields(&p.request_fields, &view, filters, tenant, now, &mut built) {
                let rc = match e {
                    Error::MandatoryMissing(_) => result::MISSING_AVP,
                    _ => result::UNABLE_TO_COMPLY,
                };
                return Err(fail(&ccr, rc, &e.to_string()));
            }
            idx.push(
                self.processors
                    .iter()
                    .position(|q| std::ptr::eq(q, p))
                    .unwrap_or_default(),
            );
            calls.extend(calls_for(p, &built, tenant, &session_id));
        }
        Ok(CcRequest {
            request: ccr,
            session_id,
            request_type,
            calls,
            built,
            vars,
            processors: idx,
        })
    }

    /// Whether call `i` of `req` runs, given the replies so far.
    #[must_use]
    pub fn should_run(req: &CcRequest, i: usize, replies: &[Result<Value, String>]) -> bool {
        let Some(call) = req.calls.get(i) else {
            return false;
        };
        if replies.iter().any(Result::is_err) {
            return false;
        }
        !call.after_grant || granted(req, replies.first()).0
    }

    /// The CCA for `req` given the replies of the calls that ran.
    pub fn answer(
        &self,
        req: &CcRequest,
        replies: &[Result<Value, String>],
        filters: &FilterCtx<'_>,
        now: DateTime<Utc>,
    ) -> (Message, Vec<String>) {
        let mut problems = Vec::new();
        let first = replies.first();
        let error = replies
            .iter()
            .find_map(|r| r.as_ref().err())
            .map(String::as_str);
        let (ok, final_unit) = granted(req, first);
        let rc = match error {
            Some(e) if e.contains("ACCOUNT_NOT_FOUND") => result::USER_UNKNOWN,
            Some(e) if e.contains("INSUFFICIENT_CREDIT") || e.contains("MAX_USAGE_EXCEEDED") => {
                result::CREDIT_LIMIT_REACHED
            }
            Some(_) if matches!(req.request_type, 1 | 4) => result::AUTHORIZATION_REJECTED,
            Some(_) => result::UNABLE_TO_COMPLY,
            None if !ok => result::CREDIT_LIMIT_REACHED,
            None => result::SUCCESS,
        };
        let mut vars = req.vars.clone();
        vars.push(("Result-Code".into(), rc.to_string()));
        vars.push(("FinalUnit".into(), final_unit.to_string()));
        let view = CcrView {
            msg: &req.request,
            dict: &self.dict,
            vars: &vars,
        };
        let reply = first
            .and_then(|r| r.as_ref().ok())
            .cloned()
            .unwrap_or(Value::Null);
        let rp = ReplyProvider {
            req: &view,
            reply: &reply,
            error,
        };
        let mut built = req.built.clone();
        built.rep.clear();
        for &i in &req.processors {
            let Some(p) = self.processors.get(i) else {
                continue;
            };
            if let Err(e) = run_fields(
                &p.reply_fields,
                &rp,
                filters,
                &self.cfg.tenant,
                now,
                &mut built,
            ) {
                problems.push(e.to_string());
            }
        }
        let rc = built
            .get(crate::template::Target::Rep, "Result-Code")
            .and_then(|v| v.parse().ok())
            .unwrap_or(rc);
        let mut cca = self.base_answer(&req.request, rc);
        cca.push(Avp::u32(
            code::AUTH_APPLICATION_ID,
            code::APP_CREDIT_CONTROL,
        ));
        for c in [code::CC_REQUEST_TYPE, code::CC_REQUEST_NUMBER] {
            if let Some(a) = req.request.find(c, None) {
                cca.push(a.clone());
            }
        }
        let rep: Vec<(String, String)> = built
            .rep
            .into_iter()
            .filter(|(n, _)| n != "Result-Code")
            .collect();
        cca.avps.extend(build_avps(&self.dict, &rep, &mut problems));
        (cca, problems)
    }

    /// An answer with Session-Id, Result-Code, Origin-Host, Origin-Realm.
    fn base_answer(&self, req: &Message, rc: u32) -> Message {
        let mut a = req.answer();
        if let Some(s) = req.find(code::SESSION_ID, None) {
            a.push(s.clone());
        }
        a.push(Avp::u32(code::RESULT_CODE, rc));
        a.push(Avp::text(code::ORIGIN_HOST, &self.origin_host));
        a.push(Avp::text(code::ORIGIN_REALM, &self.origin_realm));
        a
    }
}

/// Whether the first reply grants what was asked (no `Usage` asked: any
/// reply grants), and whether the grant is the last (less than asked).
fn granted(req: &CcRequest, first: Option<&Result<Value, String>>) -> (bool, bool) {
    let asked = req.built.cgreq.get("Usage").and_then(usage_ns).unwrap_or(0);
    let Some(Ok(reply)) = first else {
        return (false, false);
    };
    let max = reply.get("MaxUsage").and_then(usage_ns);
    match (req.request_type, max) {
        // TERMINATION grants nothing; a reply without MaxUsage neither.
        (3, _) | (_, None) => (true, false),
        (_, Some(_)) if asked == 0 => (true, false),
        (4, Some(m)) => (m >= asked, false),
        (_, Some(0)) => (false, false),
        (_, Some(m)) => (true, m < asked),
    }
}

/// The SessionSv1 calls a processor's flags ask for.
fn calls_for(p: &Processor, built: &Built, tenant: &str, session_id: &str) -> Vec<CcCall> {
    let accounts = p.has_flag("*accounts");
    let mut extra = Map::new();
    if p.has_flag("*attributes") {
        extra.insert("GetAttributes".into(), true.into());
        let ids = p.flag_ids("*attributes");
        if !ids.is_empty() {
            extra.insert("AttributeIDs".into(), ids.into());
        }
    }
    if p.has_flag("*thresholds") {
        extra.insert("ProcessThresholds".into(), true.into());
    }
    if p.has_flag("*stats") {
        extra.insert("ProcessStats".into(), true.into());
    }
    let id = format!("diameter:{session_id}");
    let mk = |switch: &str, extra: &Map<String, Value>| {
        let mut e = extra.clone();
        if accounts {
            e.insert(switch.into(), true.into());
        }
        built.cgr_event(tenant, &id, e)
    };
    let mut out = Vec::new();
    let cdr = || CcCall {
        method: "SessionSv1.ProcessCDR",
        args: built.cgr_event(tenant, &id, Map::new()),
        after_grant: true,
    };
    if p.has_flag("*authorize") || p.has_flag("*auth") {
        out.push(CcCall {
            method: "SessionSv1.AuthorizeEvent",
            args: mk("GetMaxUsage", &extra),
            after_grant: false,
        });
    }
    if p.has_flag("*initiate") {
        out.push(CcCall {
            method: "SessionSv1.InitiateSession",
            args: mk("InitSession", &extra),
            after_grant: false,
        });
    }
    if p.has_flag("*update") {
        out.push(CcCall {
            method: "SessionSv1.UpdateSession",
            args: mk("UpdateSession", &extra),
            after_grant: false,
        });
    }
    if p.has_flag("*terminate") {
        out.push(CcCall {
            method: "SessionSv1.TerminateSession",
            args: mk("TerminateSession", &extra),
            after_grant: false,
        });
        if p.has_flag("*cdrs") {
            out.push(cdr());
        }
    }
    if p.has_flag("*message") {
        // SessionSv1.ProcessMessage: the debit in one call (no CDR).
        out.push(CcCall {
            method: "SessionSv1.ProcessMessage",
            args: mk("Debit", &extra),
            after_grant: false,
        });
        if p.has_flag("*cdrs") {
            out.push(cdr());
        }
    }
    if p.has_flag("*event") {
        // One-shot charging: the authorization, then the CDR, which
        // debits a *prepaid event.
        out.push(CcCall {
            method: "SessionSv1.AuthorizeEvent",
            args: mk("GetMaxUsage", &extra),
            after_grant: false,
        });
        out.push(cdr());
    }
    out
}

/// Turns `*rep` fields (`A.B.C` = value) into AVPs: the groups along a
/// path are created once and filled in order. Unknown names and values
/// that do not fit their type are reported in `problems`.
#[must_use]
pub fn build_avps(
    dict: &Dictionary,
    rep: &[(String, String)],
    problems: &mut Vec<String>,
) -> Vec<Avp> {
    #[derive(Default)]
    struct Node {
        name: String,
        value: Option<String>,
        children: Vec<Node>,
    }
    fn insert(nodes: &mut Vec<Node>, segs: &[&str], value: &str) {
        let Some((first, rest)) = segs.split_first() else {
            return;
        };
        if rest.is_empty() {
            nodes.push(Node {
                name: (*first).to_owned(),
                value: Some(value.to_owned()),
                children: Vec::new(),
            });
            return;
        }
        let pos = nodes
            .iter()
            .rposition(|n| n.name == *first && n.value.is_none());
        let i = pos.unwrap_or_else(|| {
            nodes.push(Node {
                name: (*first).to_owned(),
                ..Node::default()
            });
            nodes.len() - 1
        });
        if let Some(n) = nodes.get_mut(i) {
            insert(&mut n.children, rest, value);
        }
    }
    fn emit(dict: &Dictionary, nodes: &[Node], problems: &mut Vec<String>) -> Vec<Avp> {
        let mut out = Vec::new();
        for n in nodes {
            let Some(def) = dict.by_name(&n.name) else {
                problems.push(format!("unknown AVP {:?}", n.name));
                continue;
            };
            match &n.value {
                None => {
                    let children = emit(dict, &n.children, problems);
                    out.push(Avp::grouped(def.code, def.vendor, def.mandatory, &children));
                }
                Some(v) => match from_text(def.ty, v) {
                    Ok(data) => out.push(Avp::new(def.code, def.vendor, def.mandatory, data)),
                    Err(e) => problems.push(format!("{}: {e}", n.name)),
                },
            }
        }
        out
    }
    let mut roots = Vec::new();
    for (name, value) in rep {
        let segs: Vec<&str> = name.split('.').collect();
        insert(&mut roots, &segs, value);
    }
    emit(dict, &roots, problems)
}

#[cfg(test)]
#[path = "cc_tests.rs"]
mod tests;
