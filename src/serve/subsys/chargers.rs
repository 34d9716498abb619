//! `ChargerSv1` (`ProcessEvent`, `GetChargersForEvent`, `Ping`) and the
//! APIerSv1 charger profile getters, over the plan's
//! [`subsystems::chargers::ChargerProfiles`]; and [`runs`], the charging
//! runs the session integration derives for an event.

use std::sync::Arc;

use chrono::Utc;
use jsonrpc::RpcError;
use rating::TariffStore as _;
use serde_json::{Value, json};
use subsystems::chargers::ChargerRun;
use subsystems::{Event, FilterCtx};

use crate::serve::methods::{State, mandatory_missing, object};

/// The APIerSv1 methods answered here.
pub(crate) const APIER_METHODS: &[&str] = &[
    "APIerSv1.GetChargerProfile",
    "APIerSv1.GetChargerProfileIDs",
];

/// A subsystem error as CGRateS's ChargerS answers it: `NOT_FOUND` as
/// it is, anything else `SERVER_ERROR: ...`.
pub(crate) fn rpc_error(e: &subsystems::Error) -> RpcError {
    match e {
        subsystems::Error::NotFound => RpcError::server("NOT_FOUND"),
        e => RpcError::server(format!("SERVER_ERROR: {e}")),
    }
}

/// The charging runs of `ev` at `now`: one per matching charger, in
/// order, with its attributes applied.
///
/// # Errors
/// [`subsystems::Error::NotFound`] when no charger matches; filter and
/// attribute errors.
pub(crate) fn runs(
    state: &State,
    ev: &Event,
    now: chrono::DateTime<Utc>,
) -> Result<Vec<ChargerRun>, subsystems::Error> {
    let profiles = state.profiles.current();
    let plan = state.plan.current();
    let ctx = FilterCtx {
        filters: &profiles.filters,
        plan: Some(&plan),
        now,
    };
    profiles.chargers.process(&ctx, &profiles.attributes, ev)
}

/// Whether the plan in force has any charger (derived charging on).
pub(crate) fn enabled(state: &State) -> bool {
    !state.profiles.current().chargers.is_empty()
}

/// The flattened CGREvent argument (`Event` required, as CGRateS).
fn cgr_event(params: &Value) -> Result<Event, RpcError> {
    let m = object(params, "utils.CGREventWithArgDispatcher")?;
    match m.get("Event") {
        Some(Value::Object(_)) => Ok(Event::from_cgr_event(&Value::Object(m))),
        _ => Err(mandatory_missing(&["Event"])),
    }
}

/// Runs `method` if this service has it (`None`: no such method).
pub(super) async fn call(
    state: &Arc<State>,
    method: &str,
    params: &Value,
) -> Option<Result<String, RpcError>> {
    let r = match method {
        "ChargerSv1.Ping" => Ok(json!("Pong")),
        "ChargerSv1.ProcessEvent" => cgr_event(params).and_then(|ev| {
            let runs = runs(state, &ev, Utc::now()).map_err(|e| rpc_error(&e))?;
            Ok(Value::Array(runs.iter().map(ChargerRun::to_json).collect()))
        }),
        "ChargerSv1.GetChargersForEvent" => cgr_event(params).and_then(|ev| {
            let profiles = state.profiles.current();
            let plan = state.plan.current();
            let ctx = FilterCtx {
                filters: &profiles.filters,
                plan: Some(&plan),
                now: Utc::now(),
            };
            let list = profiles
                .chargers
                .matching(&ctx, &ev)
                .map_err(|e| rpc_error(&e))?;
            Ok(Value::Array(list.iter().map(|p| p.to_json()).collect()))
        }),
        "APIerSv1.GetChargerProfile" => get_profile(state, params),
        "APIerSv1.GetChargerProfileIDs" => get_ids(state, params),
        _ => return None,
    };
    Some(r.map(|v| v.to_string()))
}

fn tenant_of(m: &serde_json::Map<String, Value>) -> String {
    match m.get("Tenant").and_then(Value::as_str) {
        Some(t) if !t.is_empty() => t.to_owned(),
        _ => "cgrates.org".to_owned(),
    }
}

/// `APIerSv1.GetChargerProfile` (`utils.TenantID`).
fn get_profile(state: &State, params: &Value) -> Result<Value, RpcError> {
    let m = object(params, "utils.TenantID")?;
    let id = m.get("ID").and_then(Value::as_str).unwrap_or_default();
    if id.is_empty() {
        return Err(mandatory_missing(&["ID"]));
    }
    let profiles = state.profiles.current();
    profiles
        .chargers
        .get(&tenant_of(&m), id)
        .map(subsystems::chargers::ChargerProfile::to_json)
        .ok_or_else(|| RpcError::server("NOT_FOUND"))
}

/// `APIerSv1.GetChargerProfileIDs` (`utils.TenantArgWithPaginator`:
/// `Limit`, `Offset`).
fn get_ids(state: &State, params: &Value) -> Result<Value, RpcError> {
    let m = object(params, "utils.TenantArgWithPaginator")?;
    let mut ids = state.profiles.current().chargers.ids(&tenant_of(&m));
    let num = |k: &str| {
        m.get(k)
            .and_then(Value::as_u64)
            .and_then(|n| usize::try_from(n).ok())
    };
    if let Some(off) = num("Offset") {
        ids.drain(..off.min(ids.len()));
    }
    if let Some(lim) = num("Limit").filter(|l| *l > 0) {
        ids.truncate(lim);
    }
    if ids.is_empty() {
        return Err(RpcError::server("NOT_FOUND"));
    }
    Ok(json!(ids))
}
