//! Kamailio events turned into the session operations the server runs,
//! with the arguments of the SessionSv1 method CGRateS's KamailioAgent
//! calls (v0.10 shapes: a CGREvent plus boolean switches).

use serde_json::{Map, Value};

use super::message::{Flags, KamEvent, parse_time};
use super::reply::ActiveDialog;
use crate::Error;

/// Event fields that are the agent's, not the call's (CGRateS's
/// `kamReservedEventFields`).
const RESERVED: &[&str] = &["event", "tr_index", "tr_label", "cgr_flags", "reply_route"];

/// Where an answer goes back: the route Kamailio runs and the suspended
/// transaction it resumes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplyTo {
    /// The reply's `Event`: the request's `reply_route`, else the default.
    pub event: String,
    /// `tr_index`, echoed as `TransactionIndex`.
    pub tr_index: String,
    /// `tr_label`, echoed as `TransactionLabel`.
    pub tr_label: String,
}

impl ReplyTo {
    pub(super) fn of(ev: &KamEvent, default_event: &str) -> ReplyTo {
        let get = |k: &str| ev.get(k).cloned().unwrap_or_default();
        ReplyTo {
            event: ev
                .get("reply_route")
                .cloned()
                .unwrap_or_else(|| default_event.to_string()),
            tr_index: get("tr_index"),
            tr_label: get("tr_label"),
        }
    }
}

/// Kamailio's dialog hash (`$dlg(h_entry)`, `$dlg(h_id)`): what
/// `dlg.end_dlg` needs to end the call.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DialogHash {
    /// `h_entry`.
    pub entry: String,
    /// `h_id`.
    pub id: String,
}

/// One thing Kamailio asked for, for the server to run.
#[derive(Debug, Clone, PartialEq)]
pub enum Operation {
    /// `CGR_AUTH_REQUEST`: run `SessionSv1.AuthorizeEvent` with `args`,
    /// then answer with [`super::EvapiAgent::reply`].
    Authorize {
        /// Where the answer goes.
        reply_to: ReplyTo,
        /// The `V1AuthorizeArgs`.
        args: Value,
    },
    /// `CGR_CALL_START`: run `SessionSv1.InitiateSession`; on failure
    /// disconnect the dialog (`SERVER_ERROR`).
    Initiate {
        /// The dialog, for a later disconnect.
        dialog: DialogHash,
        /// The session's `OriginID`.
        origin_id: String,
        /// The `V1InitSessionArgs`.
        args: Value,
    },
    /// `CGR_CALL_END`: run `SessionSv1.TerminateSession`, then
    /// `SessionSv1.ProcessCDR` with the same event when `process_cdr`.
    Terminate {
        /// The session's `OriginID`.
        origin_id: String,
        /// The `V1TerminateSessionArgs`.
        args: Value,
        /// Whether a CDR is written too (`*cdrs` flag or `create_cdr`).
        process_cdr: bool,
    },
    /// `CGR_PROCESS_CDR`: run `SessionSv1.ProcessCDR`, then answer.
    ProcessCdr {
        /// Where the answer goes.
        reply_to: ReplyTo,
        /// The CGREvent.
        args: Value,
    },
    /// `CGR_PROCESS_MESSAGE`: run `SessionSv1.ProcessMessage` (v0.10
    /// `V1ProcessMessageArgs`), then answer.
    ProcessMessage {
        /// Where the answer goes.
        reply_to: ReplyTo,
        /// The `V1ProcessMessageArgs`.
        args: Value,
    },
    /// `CGR_DLG_LIST_REPLY`: the dialogs Kamailio still has; sessions of
    /// this agent not among them are over.
    DlgList {
        /// The dialogs.
        dialogs: Vec<ActiveDialog>,
    },
}

impl Operation {
    /// The SessionSv1 method the operation runs first (`None` for
    /// [`Operation::DlgList`], which the server matches against its
    /// sessions).
    pub fn method(&self) -> Option<&'static str> {
        Some(match self {
            Operation::Authorize { .. } => "SessionSv1.AuthorizeEvent",
            Operation::Initiate { .. } => "SessionSv1.InitiateSession",
            Operation::Terminate { .. } => "SessionSv1.TerminateSession",
            Operation::ProcessCdr { .. } => "SessionSv1.ProcessCDR",
            Operation::ProcessMessage { .. } => "SessionSv1.ProcessMessage",
            Operation::DlgList { .. } => return None,
        })
    }
}

/// Which SessionSv1 call the switches are for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Authorize,
    Initiate,
    Terminate,
    Message,
}

/// The v0.10 switches `cgr_flags` sets for `kind` (CGRateS's `ParseFlags`);
/// without `cgr_flags`, CGRateS's defaults (`GetMaxUsage`,
/// `InitSession`, `TerminateSession`; nothing for a message).
pub(crate) fn switches(kind: Kind, flags: Option<&Flags>, args: &mut Map<String, Value>) {
    let Some(flags) = flags else {
        match kind {
            Kind::Authorize => args.insert("GetMaxUsage".into(), true.into()),
            Kind::Initiate => args.insert("InitSession".into(), true.into()),
            Kind::Terminate => args.insert("TerminateSession".into(), true.into()),
            Kind::Message => None,
        };
        return;
    };
    let accounts = match kind {
        Kind::Authorize => "GetMaxUsage",
        Kind::Initiate => "InitSession",
        Kind::Terminate => "TerminateSession",
        Kind::Message => "Debit",
    };
    let resources = match kind {
        Kind::Authorize => "AuthorizeResources",
        Kind::Initiate | Kind::Message => "AllocateResources",
        Kind::Terminate => "ReleaseResources",
    };
    for (name, ids) in &flags.list {
        let ids_value = || Value::from(ids.clone());
        match name.as_str() {
            "*accounts" => {
                args.insert(accounts.into(), true.into());
            }
            "*resources" => {
                args.insert(resources.into(), true.into());
            }
            "*suppliers" | "*routes" if matches!(kind, Kind::Authorize | Kind::Message) => {
                args.insert("GetSuppliers".into(), true.into());
            }
            "*suppliers_ignore_errors" | "*routes_ignore_errors" => {
                args.insert("SuppliersIgnoreErrors".into(), true.into());
            }
            "*suppliers_event_cost" | "*routes_event_cost" => {
                args.insert("SuppliersEventCost".into(), true.into());
            }
            "*suppliers_maxcost" | "*routes_maxcost" => {
                args.insert("SuppliersMaxCost".into(), ids.join(";").into());
            }
            "*attributes" if kind != Kind::Terminate => {
                args.insert("GetAttributes".into(), true.into());
                if !ids.is_empty() {
                    args.insert("AttributeIDs".into(), ids_value());
                }
            }
            "*thresholds" => {
                args.insert("ProcessThresholds".into(), true.into());
                if !ids.is_empty() {
                    args.insert("ThresholdIDs".into(), ids_value());
                }
            }
            "*stats" => {
                args.insert("ProcessStats".into(), true.into());
                if !ids.is_empty() {
                    args.insert("StatIDs".into(), ids_value());
                }
            }
            _ => {}
        }
    }
}

/// The fields that must not be empty for `event` (CGRateS's
/// `MissingParameter`), the missing ones listed.
pub(super) fn missing(event: &str, ev: &KamEvent) -> Vec<&'static str> {
    let need: &[&'static str] = match event {
        "CGR_AUTH_REQUEST" => &["tr_index", "tr_label"],
        "CGR_CALL_START" => &[
            "h_entry",
            "h_id",
            "OriginID",
            "AnswerTime",
            "Account",
            "Destination",
        ],
        "CGR_CALL_END" => &["OriginID", "AnswerTime", "Account", "Destination"],
        "CGR_PROCESS_MESSAGE" if ev.contains_key("cgr_flags") => &[
            "tr_index",
            "tr_label",
            "OriginID",
            "AnswerTime",
            "Account",
            "Destination",
        ],
        "CGR_PROCESS_MESSAGE" => &["tr_index", "tr_label"],
        "CGR_PROCESS_CDR" => &["tr_index", "tr_label", "OriginID"],
        _ => &[],
    };
    need.iter()
        .copied()
        .filter(|k| ev.get(*k).is_none_or(|v| v.is_empty()))
        .collect()
}

/// What the agent knows that the event does not say.
pub(super) struct Defaults<'a> {
    pub origin_host: &'a str,
    pub tenant: &'a str,
    pub request_type: &'a str,
    pub id: String,
    /// RFC 3339 of `now`, for events without their own time.
    pub now: String,
}

/// The CGREvent of `ev` (CGRateS's `AsCGREvent`): every field but the
/// reserved ones in `Event` (`Usage` marked as seconds; `*`-prefixed
/// fields moved to `APIOpts`), `Source`, `OriginHost` and `RequestType`
/// defaulted, `Time` from `time_field` (`None`: now).
///
/// # Errors
/// [`Error::Time`] when the time field does not parse.
pub(super) fn cgr_event(
    ev: &KamEvent,
    time_field: Option<&'static str>,
    d: &Defaults<'_>,
) -> Result<Map<String, Value>, Error> {
    let mut event = Map::new();
    let mut opts = Map::new();
    for (k, v) in ev {
        if RESERVED.contains(&k.as_str()) {
            continue;
        }
        if k.starts_with('*') {
            opts.insert(k.clone(), v.clone().into());
            continue;
        }
        let v = if k == "Usage"
            && !v.is_empty()
            && v.bytes().all(|b| b.is_ascii_digit() || b == b'.')
        {
            format!("{v}s")
        } else {
            v.clone()
        };
        event.insert(k.clone(), v.into());
    }
    if let Some(ctx) = ev.get("cgr_context").filter(|c| !c.is_empty()) {
        opts.entry("*context").or_insert_with(|| ctx.clone().into());
    }
    if ev.get("OriginHost").is_none_or(|h| h.is_empty()) && !d.origin_host.is_empty() {
        event.insert("OriginHost".into(), d.origin_host.into());
    }
    event
        .entry("Source")
        .or_insert_with(|| "KamailioAgent".into());
    event
        .entry("RequestType")
        .or_insert_with(|| d.request_type.into());
    let time = match time_field {
        Some(f) => parse_time(f, ev.get(f).map_or("", String::as_str))?,
        None => Some(d.now.clone()),
    };
    let tenant = ev
        .get("Tenant")
        .filter(|t| !t.is_empty())
        .map_or(d.tenant, String::as_str);
    let mut out = Map::new();
    out.insert("Tenant".into(), tenant.into());
    out.insert("ID".into(), d.id.clone().into());
    out.insert("Time".into(), time.map_or(Value::Null, Value::from));
    out.insert("Event".into(), Value::Object(event));
    out.insert("APIOpts".into(), Value::Object(opts));
    Ok(out)
}

/// The `OriginID` of an event: the field, else (older configurations)
/// `callid;from_tag` or `callid`.
pub(super) fn origin_id(ev: &KamEvent) -> String {
    if let Some(id) = ev.get("OriginID").filter(|s| !s.is_empty()) {
        return id.clone();
    }
    match (ev.get("callid"), ev.get("from_tag")) {
        (Some(c), Some(t)) if !c.is_empty() && !t.is_empty() => format!("{c};{t}"),
        (Some(c), _) => c.clone(),
        _ => String::new(),
    }
}

/// A JSON object as a [`Value`].
pub(super) fn obj(m: Map<String, Value>) -> Value {
    Value::Object(m)
}
