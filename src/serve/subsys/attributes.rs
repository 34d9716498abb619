//! `AttributeSv1` (`Ping`, `ProcessEvent`, `GetAttributeForEvent`) and
//! the APIer's read methods for attribute profiles
//! (`APIerSv1.GetAttributeProfile`, `APIerSv1.GetAttributeProfileIDs`),
//! over the profiles loaded with the tariff plan.

use std::sync::Arc;

use chrono::Utc;
use jsonrpc::{RpcError, code};
use serde_json::{Map, Value};
use subsystems::attributes::{AttrArgs, AttrReply};

use crate::serve::methods::{State, mandatory_missing, object, str_field};

/// The APIer methods answered here.
pub(crate) const APIER_METHODS: &[&str] = &[
    "APIerSv1.GetAttributeProfile",
    "APIerSv1.GetAttributeProfileIDs",
];

/// Runs `method` if this service has it (`None`: no such method).
pub(crate) async fn call(
    state: &Arc<State>,
    method: &str,
    params: &Value,
) -> Option<Result<String, RpcError>> {
    let r = match method {
        "AttributeSv1.Ping" => Ok("\"Pong\"".to_owned()),
        "AttributeSv1.ProcessEvent" => process_event(state, params),
        "AttributeSv1.GetAttributeForEvent" => attribute_for_event(state, params),
        "APIerSv1.GetAttributeProfile" => get_profile(state, params),
        "APIerSv1.GetAttributeProfileIDs" => get_profile_ids(state, params),
        _ => return None,
    };
    Some(r)
}

/// CGRateS's answer for a subsystem error.
pub(crate) fn rpc_error(e: &subsystems::Error) -> RpcError {
    match e {
        subsystems::Error::NotFound => RpcError::server("NOT_FOUND"),
        subsystems::Error::Invalid(m) if m.starts_with("MANDATORY_IE_MISSING") => {
            RpcError::new(code::INVALID_PARAMS, m.clone())
        }
        subsystems::Error::Invalid(m) => RpcError::server(m.clone()),
        other => RpcError::server(format!("SERVER_ERROR: {other}")),
    }
}

/// Runs AttributeS on `ev` with the profiles in force now: for the other
/// subsystems (ChargerS, SessionS, CDRs) that call it in process.
pub(crate) fn process(
    state: &State,
    ev: subsystems::Event,
    args: &AttrArgs,
) -> Result<AttrReply, RpcError> {
    let profiles = state.profiles.current();
    let plan = rating::TariffStore::current(&state.plan);
    let ctx = subsystems::FilterCtx {
        filters: &profiles.filters,
        plan: Some(&plan),
        now: Utc::now(),
    };
    profiles
        .attributes
        .process(&ctx, ev, args)
        .map_err(|e| rpc_error(&e))
}

/// The arguments of `ProcessEvent` and `GetAttributeForEvent`: v0.10's
/// top-level `Context`, `AttributeIDs`, `ProcessRuns`, else
/// `APIOpts.*context`, `*attributeIDs`, `*processRuns`.
fn attr_args(m: &Map<String, Value>, ev: &subsystems::Event) -> Result<AttrArgs, RpcError> {
    let bad = |what: &str, v: &Value| {
        RpcError::new(
            code::INVALID_PARAMS,
            format!(
                "json: cannot unmarshal {} into Go struct field AttrArgsProcessEvent.{what}",
                jsonrpc::kind(v)
            ),
        )
    };
    let mut args = AttrArgs {
        context: str_field(m, "Context", "AttrArgsProcessEvent")?.to_owned(),
        profile_ids: Vec::new(),
        process_runs: 0,
    };
    if args.context.is_empty()
        && let Some(Value::String(c)) = ev.opts.get("*context")
    {
        args.context.clone_from(c);
    }
    let ids = match m.get("AttributeIDs") {
        None | Some(Value::Null) => ev.opts.get("*attributeIDs"),
        some => some,
    };
    match ids {
        None | Some(Value::Null) => {}
        Some(Value::Array(a)) => {
            for v in a {
                let s = v.as_str().ok_or_else(|| bad("AttributeIDs", v))?;
                args.profile_ids.push(s.to_owned());
            }
        }
        Some(Value::String(s)) => {
            args.profile_ids = s
                .split(';')
                .filter(|x| !x.is_empty())
                .map(str::to_owned)
                .collect();
        }
        Some(other) => return Err(bad("AttributeIDs", other)),
    }
    let runs = match m.get("ProcessRuns") {
        None | Some(Value::Null) => ev.opts.get("*processRuns"),
        some => some,
    };
    args.process_runs = match runs {
        None | Some(Value::Null) => 1,
        Some(Value::Number(n)) => n
            .as_u64()
            .and_then(|n| usize::try_from(n).ok())
            .ok_or_else(|| bad("ProcessRuns", &Value::Number(n.clone())))?,
        Some(Value::String(s)) => s
            .trim()
            .parse()
            .map_err(|_| bad("ProcessRuns", &Value::String(s.clone())))?,
        Some(other) => return Err(bad("ProcessRuns", other)),
    };
    if args.process_runs == 0 {
        args.process_runs = 1;
    }
    Ok(args)
}

/// The event of the arguments; `Event` is mandatory.
fn event_of(m: &Map<String, Value>) -> Result<subsystems::Event, RpcError> {
    match m.get("Event") {
        Some(Value::Object(_)) => {}
        None | Some(Value::Null) => return Err(mandatory_missing(&["Event"])),
        Some(other) => {
            return Err(RpcError::new(
                code::INVALID_PARAMS,
                format!(
                    "json: cannot unmarshal {} into Go struct field CGREvent.Event of type map[string]interface {{}}",
                    jsonrpc::kind(other)
                ),
            ));
        }
    }
    Ok(subsystems::Event::from_cgr_event(&Value::Object(m.clone())))
}

fn process_event(state: &State, params: &Value) -> Result<String, RpcError> {
    let m = object(params, "engine.AttrArgsProcessEvent")?;
    let ev = event_of(&m)?;
    let args = attr_args(&m, &ev)?;
    let reply = process(state, ev, &args)?;
    Ok(reply.to_json().to_string())
}

fn attribute_for_event(state: &State, params: &Value) -> Result<String, RpcError> {
    let m = object(params, "engine.AttrArgsProcessEvent")?;
    let ev = event_of(&m)?;
    let args = attr_args(&m, &ev)?;
    let profiles = state.profiles.current();
    let plan = rating::TariffStore::current(&state.plan);
    let ctx = subsystems::FilterCtx {
        filters: &profiles.filters,
        plan: Some(&plan),
        now: Utc::now(),
    };
    match profiles.attributes.profile_for_event(&ctx, &ev, &args) {
        Ok(p) => Ok(p.to_json().to_string()),
        Err(subsystems::Error::NotFound) => Err(RpcError::server("NOT_FOUND")),
        Err(e) => Err(RpcError::server(format!("SERVER_ERROR: {e}"))),
    }
}

fn tenant_of(m: &Map<String, Value>, ty: &str) -> Result<String, RpcError> {
    let t = str_field(m, "Tenant", ty)?;
    Ok(if t.is_empty() { "cgrates.org" } else { t }.to_owned())
}

fn get_profile(state: &State, params: &Value) -> Result<String, RpcError> {
    let m = object(params, "utils.TenantID")?;
    let tenant = tenant_of(&m, "TenantID")?;
    let id = str_field(&m, "ID", "TenantID")?;
    if id.is_empty() {
        return Err(mandatory_missing(&["ID"]));
    }
    let profiles = state.profiles.current();
    let p = profiles
        .attributes
        .get(&tenant, id)
        .ok_or_else(|| RpcError::server("NOT_FOUND"))?;
    Ok(p.to_json().to_string())
}

fn get_profile_ids(state: &State, params: &Value) -> Result<String, RpcError> {
    let m = object(params, "utils.PaginatorWithTenant")?;
    let tenant = tenant_of(&m, "PaginatorWithTenant")?;
    let profiles = state.profiles.current();
    let ids = profiles.attributes.ids(&tenant);
    let num = |k: &str| match m.get(k) {
        Some(Value::Number(n)) => n.as_u64().and_then(|n| usize::try_from(n).ok()),
        _ => None,
    };
    let offset = num("Offset").unwrap_or(0);
    let page: Vec<String> = match num("Limit") {
        Some(limit) => ids.into_iter().skip(offset).take(limit).collect(),
        None => ids.into_iter().skip(offset).collect(),
    };
    if page.is_empty() {
        return Err(RpcError::server("NOT_FOUND"));
    }
    Ok(Value::from(page).to_string())
}
