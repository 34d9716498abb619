//! CGRateS v0.10's `SessionSv1` over the session driver
//! ([`super::sessions`]): arguments are the flattened CGREvent
//! (`{"InitSession":true,"Tenant":..,"ID":..,"Event":{..},"APIOpts":{..}}`),
//! usages in replies are integer nanoseconds.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use jsonrpc::{RpcError, code};
use serde_json::{Map, Value, json};
use sessions::{Owner, Reply, SessionEvent, SessionKey, SessionSnapshot};

use super::methods::{State, mandatory_missing, object};
use super::sessions::Op;
use super::sessions::flags::{Asked, Prepared, ResOp, ids, late, prepare, resources_op, routes_op};

mod message;

/// The methods answered here.
pub(crate) const METHODS: &[&str] = &[
    "SessionSv1.AuthorizeEvent",
    "SessionSv1.InitiateSession",
    "SessionSv1.UpdateSession",
    "SessionSv1.TerminateSession",
    "SessionSv1.ProcessCDR",
    "SessionSv1.ProcessEvent",
    "SessionSv1.ProcessMessage",
    "SessionSv1.GetActiveSessions",
    "SessionSv1.GetActiveSessionsCount",
    "SessionSv1.ForceDisconnect",
    "CDRsV1.ProcessCDR",
    "CDRsV1.ProcessExternalCDR",
    "CDRsV1.ProcessEvent",
];

/// The reason a `ForceDisconnect` gives the owner.
const FORCED: &str = "FORCED_DISCONNECT";

fn ns(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// A session error as CGRateS words it: charging failures wrapped as
/// `RALS_ERROR:...`, missing fields `MANDATORY_IE_MISSING: [...]`.
pub(super) fn session_error(e: &sessions::Error) -> RpcError {
    match e {
        sessions::Error::Rating(r) => RpcError::server(format!(
            "RALS_ERROR:{}",
            super::accounts::rpc_error(r).message
        )),
        sessions::Error::MandatoryMissing(f) => mandatory_missing(f),
        sessions::Error::InvalidField { .. } => RpcError::new(code::INVALID_PARAMS, e.to_string()),
        sessions::Error::SessionNotFound(_) => RpcError::server("SESSION_NOT_FOUND"),
        e => RpcError::server(format!("SERVER_ERROR: {e}")),
    }
}

fn flag(m: &Map<String, Value>, key: &str) -> Result<bool, RpcError> {
    match m.get(key) {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(other) => Err(RpcError::new(
            code::INVALID_PARAMS,
            format!(
                "json: cannot unmarshal {} into Go struct field .{key} of type bool",
                jsonrpc::kind(other)
            ),
        )),
    }
}

/// `MANDATORY_IE_MISSING: [subsystems]` unless one of the flags that
/// make CGRateS do something is set (the thresholds/stats flags alone do
/// not count, as in CGRateS).
fn any_flag(m: &Map<String, Value>, flags: &[&str]) -> Result<(), RpcError> {
    for f in flags {
        if flag(m, f)? {
            return Ok(());
        }
    }
    Err(mandatory_missing(&["subsystems"]))
}

/// The embedded `*utils.CGREvent` of the arguments: Go leaves it nil when
/// none of its fields came, and CGRateS answers `MANDATORY_IE_MISSING:
/// [CGREvent]`.
pub(super) fn need_cgr_event(m: &Map<String, Value>) -> Result<(), RpcError> {
    if ["Tenant", "ID", "Time", "Event"]
        .iter()
        .any(|k| m.contains_key(*k))
    {
        Ok(())
    } else {
        Err(mandatory_missing(&["CGREvent"]))
    }
}

/// What CGRateS answers once the rest ran when ThresholdS or StatS (not
/// connected) was asked for.
pub(super) fn partially_executed() -> RpcError {
    RpcError::server("PARTIALLY_EXECUTED")
}

/// The session driver (set once the server started it).
pub(super) fn driver(state: &State) -> Result<&super::sessions::Sessions, RpcError> {
    state
        .sessions
        .get()
        .map(|s| &**s)
        .ok_or_else(|| RpcError::server("SERVER_ERROR: the session manager is not running"))
}

tokio::task_local! {
    /// Who the sessions a [`call_as`] creates belong to (an agent, so that
    /// the session manager's disconnects reach it).
    static OWNER: Owner;
}

/// The owner of the sessions the running call creates: the agent of a
/// [`call_as`], else the JSON-RPC client (`Owner::Api`).
pub(crate) fn current_owner() -> Owner {
    OWNER.try_with(Clone::clone).unwrap_or(Owner::Api)
}

/// [`call`] on behalf of `owner` (an agent): the sessions it creates are
/// the agent's, and a disconnect of one of them (money run out,
/// `ForceDisconnect`, TTL) is sent to that agent's registered
/// [`sessions::Disconnect`].
pub(crate) async fn call_as(
    state: &Arc<State>,
    method: &str,
    params: &Value,
    owner: Owner,
) -> Result<String, RpcError> {
    OWNER.scope(owner, call(state, method, params)).await
}

fn event(m: &Map<String, Value>) -> Result<SessionEvent, RpcError> {
    SessionEvent::from_cgr_event(m, current_owner()).map_err(|e| session_error(&e))
}

async fn run(state: &State, op: Op, evs: Vec<SessionEvent>) -> Result<Reply, RpcError> {
    let s = driver(state)?;
    s.call_runs(op, evs).await.map_err(|e| session_error(&e))
}

/// The usage an authorization allows, in nanoseconds (the least over the
/// call's charged runs): 0 for an account that can pay nothing, as
/// CGRateS's `GetMaxSessionTime` answers (no error).
async fn authorize_ns(state: &State, evs: Vec<SessionEvent>) -> Result<u64, RpcError> {
    let s = driver(state)?;
    match s.call_runs(Op::Authorize, evs).await {
        Ok(r) => Ok(max_usage_ns(&r)),
        Err(sessions::Error::Rating(rating::Error::InsufficientCredit { .. })) => Ok(0),
        Err(e) => Err(session_error(&e)),
    }
}

/// A finished call through CGRateS's CDR server (`CDRsV1.ProcessCDR`,
/// `CDRsV1.ProcessEvent`, and `SessionSv1.ProcessCDR` / `*cdrs` of a call
/// no session charged): a missing `RequestType` is v0.10's default
/// `*rated`, and a call that cannot be rated is stored with cost -1 and
/// the error in `ExtraInfo`, answered `OK` as CGRateS does.
pub(super) async fn process_cdr(state: &State, m: &Map<String, Value>) -> Result<(), RpcError> {
    let ev = cdr_event(m)?;
    let mut args = m.clone();
    if let (Some(Value::Object(e)), false) = (args.get_mut("Event"), ev.request_type.is_empty()) {
        e.insert("RequestType".into(), json!(ev.request_type));
    }
    let runs = prepare(state, &args, ev, false, None)?.runs;
    let s = driver(state)?;
    match s.call_runs(Op::ProcessCdr, runs).await {
        Ok(_)
        | Err(
            sessions::Error::Rating(_)
            | sessions::Error::MandatoryMissing(_)
            | sessions::Error::InvalidField { .. },
        ) => Ok(()),
        Err(e) => Err(session_error(&e)),
    }
}

/// The event of a finished call the CDR server is given: a missing
/// `RequestType` is v0.10's default `*rated`.
pub(super) fn cdr_event(m: &Map<String, Value>) -> Result<SessionEvent, RpcError> {
    let mut m = m.clone();
    if let Some(Value::Object(ev)) = m.get_mut("Event") {
        let rt = ev.entry("RequestType").or_insert(Value::Null);
        if rt.is_null() || rt.as_str() == Some("") {
            *rt = json!("*rated");
        }
    }
    event(&m)
}

/// `MaxUsage` as CGRateS's replies have it: a `time.Duration`, integer
/// nanoseconds, 0 when not asked for.
fn max_usage_ns(r: &Reply) -> u64 {
    r.max_usage.map_or(0, ns)
}

/// Runs one of [`METHODS`].
pub(crate) async fn call(
    state: &Arc<State>,
    method: &str,
    params: &Value,
) -> Result<String, RpcError> {
    let m = object(params, "sessions.V1Args")?;
    let out = match method {
        "SessionSv1.AuthorizeEvent" => authorize(state, &m).await?,
        "SessionSv1.InitiateSession" => initiate(state, &m).await?,
        "SessionSv1.UpdateSession" => {
            need_cgr_event(&m)?;
            any_flag(&m, &["GetAttributes", "UpdateSession"])?;
            let p = prepared(state, &m, "GetAttributes")?;
            let mut max = 0;
            if flag(&m, "UpdateSession")? {
                max = max_usage_ns(&update(state, p.runs).await?);
            }
            json!({"Attributes": p.attributes, "MaxUsage": max})
        }
        "SessionSv1.TerminateSession" => terminate(state, &m).await?,
        "SessionSv1.ProcessCDR" => {
            // CGRateS marks where the CDR came from when the event does not.
            let mut m = m;
            if let Some(Value::Object(ev)) = m.get_mut("Event") {
                ev.entry("Source").or_insert_with(|| json!("*sessions"));
            }
            process_cdr(state, &m).await?;
            json!("OK")
        }
        "SessionSv1.ProcessEvent" => process_event(state, &m).await?,
        "SessionSv1.ProcessMessage" => message::process_message(state, &m).await?,
        // v0.10's ExternalCDR is the CDR with its times and usage as text,
        // which the event reads anyway.
        "CDRsV1.ProcessCDR" | "CDRsV1.ProcessExternalCDR" => {
            process_cdr(state, &cdr_as_event(&m)?).await?;
            json!("OK")
        }
        "CDRsV1.ProcessEvent" => super::cdrs_event::process_event(state, &m).await?,
        "SessionSv1.GetActiveSessions" => {
            let list = filtered(state, &m, true).await?;
            if list.is_empty() {
                return Err(RpcError::server("NOT_FOUND"));
            }
            Value::Array(list.iter().map(SessionSnapshot::to_active_json).collect())
        }
        "SessionSv1.GetActiveSessionsCount" => filtered(state, &m, false).await?.len().into(),
        "SessionSv1.ForceDisconnect" => {
            let keys: Vec<SessionKey> = filtered(state, &m, true)
                .await?
                .into_iter()
                .map(|s| s.key)
                .collect();
            if keys.is_empty() {
                return Err(RpcError::server("NOT_FOUND"));
            }
            let s = driver(state)?;
            // Each session ended at once and its CDR stored (a session
            // that ended in between is skipped), as v0.10's
            // forceSTerminate; a settle that failed makes the reply (not
            // an error) PARTIALLY_EXECUTED, as CGRateS answers.
            let forced = s
                .force_disconnect(keys, FORCED)
                .await
                .map_err(|e| session_error(&e))?;
            if forced.failed > 0 {
                json!("PARTIALLY_EXECUTED")
            } else {
                json!("OK")
            }
        }
        _ => return Err(RpcError::new(code::METHOD_NOT_FOUND, method.to_owned())),
    };
    Ok(out.to_string())
}

/// The call's event through AttributeS when the flag `attr_flag` is on
/// (`AttributeIDs` honoured), split into its runs.
fn prepared(state: &State, m: &Map<String, Value>, attr_flag: &str) -> Result<Prepared, RpcError> {
    let attrs = flag(m, attr_flag)?;
    prepare(state, m, event(m)?, attrs, ids(m, "AttributeIDs")?)
}

/// `ThresholdIDs`/`StatIDs` when `ProcessThresholds`/`ProcessStats`.
fn late_args(m: &Map<String, Value>) -> Result<(Asked, Asked), RpcError> {
    let th = if flag(m, "ProcessThresholds")? {
        Some(ids(m, "ThresholdIDs")?)
    } else {
        None
    };
    let st = if flag(m, "ProcessStats")? {
        Some(ids(m, "StatIDs")?)
    } else {
        None
    };
    Ok((th, st))
}

/// `SessionSv1.AuthorizeEvent`: `V1AuthorizeArgs` in, `V1AuthorizeReply`
/// out, the subsystems in CGRateS's order (attributes, max usage over
/// the charged runs, resources, suppliers/routes, thresholds, stats).
async fn authorize(state: &State, m: &Map<String, Value>) -> Result<Value, RpcError> {
    need_cgr_event(m)?;
    any_flag(
        m,
        &[
            "GetAttributes",
            "AuthorizeResources",
            "GetMaxUsage",
            "GetSuppliers",
            "GetRoutes",
        ],
    )?;
    let p = prepared(state, m, "GetAttributes")?;
    let mut max = 0;
    if flag(m, "GetMaxUsage")? {
        max = authorize_ns(state, p.runs.clone()).await?;
    }
    let mut alloc = Value::Null;
    if flag(m, "AuthorizeResources")? {
        alloc = resources_op(state, &p, ResOp::Authorize)?;
    }
    let mut reply = json!({"Attributes": p.attributes, "ResourceAllocation": alloc,
        "MaxUsage": max, "Suppliers": null, "ThresholdIDs": null, "StatQueueIDs": null});
    if flag(m, "GetSuppliers")? {
        reply["Suppliers"] = routes_op(state, &p, m, true)?;
    }
    if flag(m, "GetRoutes")? {
        reply["Routes"] = routes_op(state, &p, m, false)?;
    }
    let (th, st) = late_args(m)?;
    let l = late(state, &p.event, th, st);
    if l.failed {
        return Err(partially_executed());
    }
    reply["ThresholdIDs"] = l.thresholds;
    reply["StatQueueIDs"] = l.stats;
    Ok(reply)
}

/// `SessionSv1.InitiateSession`: `V1InitSessionArgs` in,
/// `V1InitSessionReply` out (resources allocated before the session
/// starts).
async fn initiate(state: &State, m: &Map<String, Value>) -> Result<Value, RpcError> {
    need_cgr_event(m)?;
    any_flag(m, &["GetAttributes", "AllocateResources", "InitSession"])?;
    let p = prepared(state, m, "GetAttributes")?;
    let mut alloc = Value::Null;
    if flag(m, "AllocateResources")? {
        alloc = resources_op(state, &p, ResOp::Allocate)?;
    }
    let mut max = 0;
    if flag(m, "InitSession")? {
        max = max_usage_ns(&run(state, Op::Initiate, p.runs.clone()).await?);
    }
    let (th, st) = late_args(m)?;
    let l = late(state, &p.event, th, st);
    if l.failed {
        return Err(partially_executed());
    }
    Ok(
        json!({"Attributes": p.attributes, "ResourceAllocation": alloc, "MaxUsage": max,
               "ThresholdIDs": l.thresholds, "StatQueueIDs": l.stats}),
    )
}

/// `SessionSv1.TerminateSession`: `V1TerminateSessionArgs` in, `OK` out
/// (every run ended and its CDR stored, then resources released).
async fn terminate(state: &State, m: &Map<String, Value>) -> Result<Value, RpcError> {
    need_cgr_event(m)?;
    any_flag(m, &["TerminateSession", "ReleaseResources"])?;
    let p = prepared(state, m, "GetAttributes")?;
    if flag(m, "TerminateSession")? {
        if p.runs.first().is_none_or(|e| e.origin_id.is_empty()) {
            return Err(mandatory_missing(&["OriginID"]));
        }
        run(state, Op::Terminate, p.runs.clone()).await?;
    }
    if flag(m, "ReleaseResources")? {
        resources_op(state, &p, ResOp::Release)?;
    }
    let (th, st) = late_args(m)?;
    if late(state, &p.event, th, st).failed {
        return Err(partially_executed());
    }
    Ok(json!("OK"))
}

/// An update of a session that is not active starts it, as CGRateS does.
async fn update(state: &State, evs: Vec<SessionEvent>) -> Result<Reply, RpcError> {
    let s = driver(state)?;
    match s.call_runs(Op::Update, evs.clone()).await {
        Err(sessions::Error::SessionNotFound(_)) => run(state, Op::Initiate, evs).await,
        r => r.map_err(|e| session_error(&e)),
    }
}

/// A `Flags` argument: `[]string`, Go's decoding error otherwise.
pub(super) fn flags_of(m: &Map<String, Value>, go_type: &str) -> Result<Vec<String>, RpcError> {
    match m.get("Flags") {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(v) => serde_json::from_value(v.clone()).map_err(|_| {
            RpcError::new(
                code::INVALID_PARAMS,
                format!(
                    "json: cannot unmarshal {} into Go struct field {go_type}.Flags of type []string",
                    jsonrpc::kind(v)
                ),
            )
        }),
    }
}

/// CGRateS's `FlagsWithParams`: `*name` or `*name:p1;p2`, the last
/// occurrence of a name winning.
pub(super) fn flag_params(flags: &[String]) -> BTreeMap<&str, Vec<&str>> {
    let mut out = BTreeMap::new();
    for f in flags {
        let (name, params) = match f.split_once(':') {
            Some((n, p)) => (n, p.split(';').collect()),
            None => (f.as_str(), Vec::new()),
        };
        out.insert(name, params);
    }
    out
}

/// `SessionSv1.ProcessEvent` (`V1ProcessEventArgs`): `Flags` choose what
/// runs, in CGRateS's order: `*attributes`, `*resources`, `*rals` with
/// one of `*authorize`, `*initiate`, `*update`, `*terminate` (the first
/// of these given; `*accounts` is read as `*rals` too), `*suppliers`,
/// `*thresholds`, `*stats`, `*cdrs` (the CDR: charged and written, unless
/// a terminate wrote it already). No flag runs nothing.
async fn process_event(state: &State, m: &Map<String, Value>) -> Result<Value, RpcError> {
    need_cgr_event(m)?;
    let flags = flags_of(m, "V1ProcessEventArgs")?;
    let fl = flag_params(&flags);
    let attr_ids = fl
        .get("*attributes")
        .filter(|p| !p.is_empty())
        .map(|p| p.iter().map(|s| (*s).to_owned()).collect());
    let p = prepare(
        state,
        m,
        event(m)?,
        fl.contains_key("*attributes"),
        attr_ids,
    )?;
    let mut alloc = Value::Null;
    if let Some(params) = fl.get("*resources") {
        let op = if params.contains(&"*release") {
            ResOp::Release
        } else if params.contains(&"*allocate") {
            ResOp::Allocate
        } else {
            ResOp::Authorize
        };
        alloc = resources_op(state, &p, op)?;
    }
    let rals: Vec<&str> = ["*rals", "*accounts"]
        .iter()
        .filter_map(|k| fl.get(k))
        .flatten()
        .map(|p| p.split(':').next().unwrap_or(p))
        .collect();
    let mut max = 0;
    let mut terminated = false;
    if let Some(op) = ["*authorize", "*initiate", "*update", "*terminate"]
        .into_iter()
        .find(|s| rals.contains(s))
    {
        match op {
            "*authorize" => max = authorize_ns(state, p.runs.clone()).await?,
            "*initiate" => max = max_usage_ns(&run(state, Op::Initiate, p.runs.clone()).await?),
            "*update" => max = max_usage_ns(&update(state, p.runs.clone()).await?),
            _ => {
                run(state, Op::Terminate, p.runs.clone()).await?;
                terminated = true;
            }
        }
    }
    let mut suppliers = Value::Null;
    let mut routes = None;
    if fl.contains_key("*suppliers") {
        suppliers = routes_op(state, &p, m, true)?;
    }
    if fl.contains_key("*routes") {
        routes = Some(routes_op(state, &p, m, false)?);
    }
    let param_ids = |k: &str| {
        fl.get(k)
            .map(|p| (!p.is_empty()).then(|| p.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>()))
    };
    let l = late(
        state,
        &p.event,
        param_ids("*thresholds"),
        param_ids("*stats"),
    );
    if fl.contains_key("*cdrs") && !terminated {
        if fl.contains_key("*attributes") {
            // The event AttributeS changed, in its runs.
            let s = driver(state)?;
            match s.call_runs(Op::ProcessCdr, p.runs.clone()).await {
                Ok(_)
                | Err(
                    sessions::Error::Rating(_)
                    | sessions::Error::MandatoryMissing(_)
                    | sessions::Error::InvalidField { .. },
                ) => {}
                Err(e) => return Err(session_error(&e)),
            }
        } else {
            process_cdr(state, m).await?;
        }
    }
    if l.failed {
        return Err(partially_executed());
    }
    let mut reply = json!({"MaxUsage": max, "ResourceAllocation": alloc, "Attributes": p.attributes,
        "Suppliers": suppliers, "ThresholdIDs": l.thresholds, "StatQueueIDs": l.stats});
    if let Some(r) = routes {
        reply["Routes"] = r;
    }
    Ok(reply)
}

/// The `engine.CDR` fields of `CDRsV1.ProcessCDR` that are not event
/// fields (`ExtraFields` is spread into the event instead).
const CDR_ONLY: &[&str] = &[
    "CGRID",
    "RunID",
    "OrderID",
    "ExtraFields",
    "ExtraInfo",
    "Partial",
    "PreRated",
    "CostSource",
    "Cost",
    "CostDetails",
    "ArgDispatcher",
];

/// `CDRsV1.ProcessCDR`'s `engine.CDR` as a flattened CGREvent: its
/// fields, with `ExtraFields` spread among them as CGRateS's
/// `CDR.AsCGREvent` does. A pre-rated CDR (its cost given) is refused:
/// AccuRate prices every CDR itself.
fn cdr_as_event(m: &Map<String, Value>) -> Result<Map<String, Value>, RpcError> {
    if flag(m, "PreRated")? {
        return Err(RpcError::server(
            "SERVER_ERROR: PreRated CDRs are not supported: AccuRate rates every CDR",
        ));
    }
    let mut ev: Map<String, Value> = m
        .iter()
        .filter(|(k, _)| !CDR_ONLY.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    match m.get("ExtraFields") {
        None | Some(Value::Null) => {}
        Some(Value::Object(x)) => {
            for (k, v) in x {
                ev.entry(k.clone()).or_insert_with(|| v.clone());
            }
        }
        Some(v) => {
            return Err(RpcError::new(
                code::INVALID_PARAMS,
                format!(
                    "json: cannot unmarshal {} into Go struct field CDR.ExtraFields of type map[string]string",
                    jsonrpc::kind(v)
                ),
            ));
        }
    }
    let mut args = Map::new();
    args.insert(
        "Tenant".into(),
        m.get("Tenant").cloned().unwrap_or(Value::Null),
    );
    args.insert("Event".into(), Value::Object(ev));
    Ok(args)
}

/// One `Filters` rule of a `utils.SessionFilter`: `*string` or `*prefix`
/// on a field of the active session (`~Account`, `~*req.Account`),
/// values separated by `;` (or `|`).
struct Rule {
    prefix: bool,
    field: String,
    values: Vec<String>,
}

fn parse_rule(s: &str) -> Result<Rule, RpcError> {
    let bad = || {
        RpcError::new(
            code::INVALID_PARAMS,
            format!(
                "unsupported filter {s:?}: expected *string:~Field:value or *prefix:~Field:value"
            ),
        )
    };
    let mut parts = s.splitn(3, ':');
    let (Some(kind), Some(path), Some(values)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(bad());
    };
    let prefix = match kind {
        "*string" => false,
        "*prefix" => true,
        _ => return Err(bad()),
    };
    let path = path.trim_start_matches('~');
    let field = path.strip_prefix("*req.").unwrap_or(path).to_owned();
    Ok(Rule {
        prefix,
        field,
        values: values.split([';', '|']).map(str::to_owned).collect(),
    })
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        v => v.to_string(),
    }
}

/// The active sessions a `utils.SessionFilter` (`Tenant`, `Filters`,
/// `Limit`) selects. `Limit` (when `limited`: CGRateS's count ignores it)
/// keeps the first ones; 0 or below is no limit, as in CGRateS.
async fn filtered(
    state: &State,
    m: &Map<String, Value>,
    limited: bool,
) -> Result<Vec<SessionSnapshot>, RpcError> {
    let not_strings = |v: &Value| {
        RpcError::new(
            code::INVALID_PARAMS,
            format!(
                "json: cannot unmarshal {} into Go struct field SessionFilter.Filters of type []string",
                jsonrpc::kind(v)
            ),
        )
    };
    let mut rules = Vec::new();
    match m.get("Filters") {
        None | Some(Value::Null) => {}
        Some(Value::Array(a)) => {
            for v in a {
                rules.push(parse_rule(v.as_str().ok_or_else(|| not_strings(v))?)?);
            }
        }
        Some(v) => return Err(not_strings(v)),
    }
    let tenant = m.get("Tenant").map(text).unwrap_or_default();
    let limit = match m.get("Limit") {
        None | Some(Value::Null) => None,
        Some(v) => Some(v.as_i64().ok_or_else(|| {
            RpcError::new(
                code::INVALID_PARAMS,
                format!(
                    "json: cannot unmarshal {} into Go struct field SessionFilter.Limit of type int",
                    jsonrpc::kind(v)
                ),
            )
        })?),
    };
    let limit = limit
        .filter(|l| limited && *l > 0)
        .and_then(|l| usize::try_from(l).ok());
    let s = driver(state)?;
    let all = s.active().await.map_err(|e| session_error(&e))?;
    let mut out = Vec::new();
    for snap in all {
        let j = snap.to_active_json();
        if !tenant.is_empty() && j["Tenant"] != tenant.as_str() {
            continue;
        }
        let ok = rules.iter().all(|r| {
            let v = j.get(&r.field).map(text).unwrap_or_default();
            r.values.iter().any(|want| {
                if r.prefix {
                    v.starts_with(want.as_str())
                } else {
                    v == *want
                }
            })
        });
        if ok {
            out.push(snap);
        }
        if limit.is_some_and(|l| out.len() >= l) {
            break;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_rules() {
        let r = parse_rule("*string:~*req.Account:1001;1002").unwrap();
        assert_eq!(r.field, "Account");
        assert_eq!(r.values, ["1001", "1002"]);
        assert!(!r.prefix);
        let r = parse_rule("*prefix:~Destination:49").unwrap();
        assert!(r.prefix);
        assert_eq!(r.field, "Destination");
        assert!(parse_rule("*gte:~Usage:1").is_err());
        assert!(parse_rule("Account").is_err());
    }
}
