//! CGRateS v0.10's `SessionSv1` over the session driver
//! ([`super::sessions`]): arguments are the flattened CGREvent
//! (`{"InitSession":true,"Tenant":..,"ID":..,"Event":{..},"APIOpts":{..}}`),
//! usages in replies are integer nanoseconds.

use std::sync::Arc;
use std::time::Duration;

use jsonrpc::{RpcError, code};
use serde_json::{Map, Value, json};
use sessions::{Owner, Reply, SessionEvent, SessionKey, SessionSnapshot};

use super::methods::{State, mandatory_missing, object};
use super::sessions::Op;

/// The methods answered here.
pub(crate) const METHODS: &[&str] = &[
    "SessionSv1.AuthorizeEvent",
    "SessionSv1.InitiateSession",
    "SessionSv1.UpdateSession",
    "SessionSv1.TerminateSession",
    "SessionSv1.ProcessCDR",
    "SessionSv1.ProcessEvent",
    "SessionSv1.GetActiveSessions",
    "SessionSv1.GetActiveSessionsCount",
    "SessionSv1.ForceDisconnect",
    "CDRsV1.ProcessCDR",
    "CDRsV1.ProcessEvent",
];

/// The reason a `ForceDisconnect` gives the owner.
const FORCED: &str = "FORCED_DISCONNECT";

fn ns(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// A session error as CGRateS words it: charging failures wrapped as
/// `RALS_ERROR:...`, missing fields `MANDATORY_IE_MISSING: [...]`.
fn session_error(e: &sessions::Error) -> RpcError {
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

/// Whether any of CGRateS's subsystem flags is set; `MANDATORY_IE_MISSING:
/// [subsystems]` when none is (as CGRateS answers).
fn any_flag(m: &Map<String, Value>, flags: &[&str]) -> Result<(), RpcError> {
    for f in flags {
        if flag(m, f)? {
            return Ok(());
        }
    }
    Err(mandatory_missing(&["subsystems"]))
}

fn event(m: &Map<String, Value>) -> Result<SessionEvent, RpcError> {
    SessionEvent::from_cgr_event(m, Owner::Api).map_err(|e| session_error(&e))
}

async fn run(state: &State, op: Op, ev: SessionEvent) -> Result<Reply, RpcError> {
    let s = state
        .sessions
        .get()
        .ok_or_else(|| RpcError::server("SERVER_ERROR: the session manager is not running"))?;
    s.call(op, ev).await.map_err(|e| session_error(&e))
}

fn max_usage_json(r: &Reply) -> Value {
    r.max_usage.map_or(Value::Null, |d| ns(d).into())
}

/// Runs one of [`METHODS`].
pub(crate) async fn call(
    state: &Arc<State>,
    method: &str,
    params: &Value,
) -> Result<String, RpcError> {
    let m = object(params, "sessions.V1Args")?;
    let out = match method {
        "SessionSv1.AuthorizeEvent" => {
            any_flag(
                &m,
                &[
                    "GetMaxUsage",
                    "GetAttributes",
                    "AuthorizeResources",
                    "GetSuppliers",
                    "ProcessThresholds",
                    "ProcessStats",
                ],
            )?;
            let max = if flag(&m, "GetMaxUsage")? {
                max_usage_json(&run(state, Op::Authorize, event(&m)?).await?)
            } else {
                Value::Null
            };
            json!({"Attributes": null, "ResourceAllocation": null, "MaxUsage": max,
                   "Suppliers": null, "ThresholdIDs": null, "StatQueueIDs": null})
        }
        "SessionSv1.InitiateSession" => {
            any_flag(
                &m,
                &[
                    "InitSession",
                    "GetAttributes",
                    "AllocateResources",
                    "ProcessThresholds",
                    "ProcessStats",
                ],
            )?;
            let max = if flag(&m, "InitSession")? {
                max_usage_json(&run(state, Op::Initiate, event(&m)?).await?)
            } else {
                Value::Null
            };
            json!({"Attributes": null, "ResourceAllocation": null, "MaxUsage": max,
                   "ThresholdIDs": null, "StatQueueIDs": null})
        }
        "SessionSv1.UpdateSession" => {
            any_flag(&m, &["UpdateSession", "GetAttributes"])?;
            let max = if flag(&m, "UpdateSession")? {
                max_usage_json(&update(state, event(&m)?).await?)
            } else {
                Value::Null
            };
            json!({"Attributes": null, "MaxUsage": max})
        }
        "SessionSv1.TerminateSession" => {
            any_flag(
                &m,
                &[
                    "TerminateSession",
                    "ReleaseResources",
                    "ProcessThresholds",
                    "ProcessStats",
                ],
            )?;
            if flag(&m, "TerminateSession")? {
                run(state, Op::Terminate, event(&m)?).await?;
            }
            json!("OK")
        }
        "SessionSv1.ProcessCDR" => {
            run(state, Op::ProcessCdr, event(&m)?).await?;
            json!("OK")
        }
        "SessionSv1.ProcessEvent" => process_event(state, &m).await?,
        "CDRsV1.ProcessCDR" => {
            // The CDR's fields are the event's.
            let mut args = Map::new();
            args.insert(
                "Tenant".into(),
                m.get("Tenant").cloned().unwrap_or(Value::Null),
            );
            args.insert("Event".into(), Value::Object(m.clone()));
            run(state, Op::ProcessCdr, event(&args)?).await?;
            json!("OK")
        }
        "CDRsV1.ProcessEvent" => {
            cdrs_flags(&m)?;
            run(state, Op::ProcessCdr, event(&m)?).await?;
            json!("OK")
        }
        "SessionSv1.GetActiveSessions" => {
            let list = filtered(state, &m).await?;
            if list.is_empty() {
                return Err(RpcError::server("NOT_FOUND"));
            }
            Value::Array(list.iter().map(SessionSnapshot::to_active_json).collect())
        }
        "SessionSv1.GetActiveSessionsCount" => filtered(state, &m).await?.len().into(),
        "SessionSv1.ForceDisconnect" => {
            let keys: Vec<SessionKey> = filtered(state, &m)
                .await?
                .into_iter()
                .map(|s| s.key)
                .collect();
            if keys.is_empty() {
                return Err(RpcError::server("NOT_FOUND"));
            }
            let s = state.sessions.get().ok_or_else(|| {
                RpcError::server("SERVER_ERROR: the session manager is not running")
            })?;
            let n = s
                .force_disconnect(keys, FORCED)
                .await
                .map_err(|e| session_error(&e))?;
            if n == 0 {
                return Err(RpcError::server("NOT_FOUND"));
            }
            json!("OK")
        }
        _ => return Err(RpcError::new(code::METHOD_NOT_FOUND, method.to_owned())),
    };
    Ok(out.to_string())
}

/// An update of a session that is not active starts it, as CGRateS does.
async fn update(state: &State, ev: SessionEvent) -> Result<Reply, RpcError> {
    let s = state
        .sessions
        .get()
        .ok_or_else(|| RpcError::server("SERVER_ERROR: the session manager is not running"))?;
    match s.call(Op::Update, ev.clone()).await {
        Err(sessions::Error::SessionNotFound(_)) => run(state, Op::Initiate, ev).await,
        r => r.map_err(|e| session_error(&e)),
    }
}

/// `SessionSv1.ProcessEvent`: `Flags` choose what runs: `*rals:*authorize`,
/// `*rals:*initiate`, `*rals:*update`, `*rals:*terminate` (or the same
/// with `*accounts`), and `*cdrs` (the CDR: charged and written, unless a
/// terminate wrote it already).
async fn process_event(state: &State, m: &Map<String, Value>) -> Result<Value, RpcError> {
    let flags: Vec<String> = match m.get("Flags") {
        None | Some(Value::Null) => Vec::new(),
        Some(v) => serde_json::from_value(v.clone()).map_err(|_| {
            RpcError::new(
                code::INVALID_PARAMS,
                format!(
                    "json: cannot unmarshal {} into Go struct field V1ProcessEventArgs.Flags of type []string",
                    jsonrpc::kind(v)
                ),
            )
        })?,
    };
    let has = |sub: &str| {
        flags.iter().any(|f| {
            f.split_once(':').is_some_and(|(s, rest)| {
                matches!(s, "*rals" | "*accounts") && rest.split(';').any(|x| x == sub)
            })
        })
    };
    let cdrs = flags.iter().any(|f| f == "*cdrs");
    let ev = event(m)?;
    let mut reply = Reply::default();
    let mut ran = false;
    for (sub, op) in [
        ("*authorize", Op::Authorize),
        ("*initiate", Op::Initiate),
        ("*update", Op::Update),
        ("*terminate", Op::Terminate),
    ] {
        if has(sub) {
            ran = true;
            reply = if op == Op::Update {
                update(state, ev.clone()).await?
            } else {
                run(state, op, ev.clone()).await?
            };
        }
    }
    if cdrs && !has("*terminate") {
        ran = true;
        run(state, Op::ProcessCdr, ev).await?;
    }
    if !ran {
        return Err(mandatory_missing(&["subsystems"]));
    }
    Ok(
        json!({"MaxUsage": reply.max_usage.map_or(0, ns), "ResourceAllocation": null,
              "Attributes": null, "Suppliers": null, "ThresholdIDs": null,
              "StatQueueIDs": null, "Cost": reply.cost.map(|c| c.to_string())}),
    )
}

/// `CDRsV1.ProcessEvent`'s flags: `*rals` (charge by the request type)
/// and `*store` are on by default, as a CGRateS with RALs and CDR storage
/// configured has them; turning either off, and `*rerate` (a call is
/// charged once: re-rating goes through `CDRsV1.RateCDRs`), are refused
/// rather than ignored.
fn cdrs_flags(m: &Map<String, Value>) -> Result<(), RpcError> {
    let flags: Vec<String> = match m.get("Flags") {
        None | Some(Value::Null) => Vec::new(),
        Some(v) => serde_json::from_value(v.clone()).map_err(|_| {
            RpcError::new(
                code::INVALID_PARAMS,
                format!(
                    "json: cannot unmarshal {} into Go struct field ArgV1ProcessEvent.Flags of type []string",
                    jsonrpc::kind(v)
                ),
            )
        })?,
    };
    for f in &flags {
        let (name, arg) = f.split_once(':').unwrap_or((f.as_str(), "true"));
        let on = !matches!(arg, "false" | "0");
        let supported = match name {
            "*rals" | "*store" => on,
            "*chargers" | "*attributes" | "*stats" | "*thresholds" | "*export" => !on,
            _ => false,
        };
        if !supported {
            return Err(RpcError::server(format!(
                "SERVER_ERROR: flag {f} is not supported (supported: *rals and *store, on)"
            )));
        }
    }
    Ok(())
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
/// `Limit`) selects.
async fn filtered(state: &State, m: &Map<String, Value>) -> Result<Vec<SessionSnapshot>, RpcError> {
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
        Some(v) => Some(
            v.as_u64()
                .ok_or_else(|| RpcError::new(code::INVALID_PARAMS, format!("invalid Limit {v}")))?,
        ),
    };
    let s = state
        .sessions
        .get()
        .ok_or_else(|| RpcError::server("SERVER_ERROR: the session manager is not running"))?;
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
        if limit.is_some_and(|l| out.len() as u64 >= l) {
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
