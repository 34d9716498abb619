//! `ResourceSv1`: AuthorizeResources, AllocateResources, ReleaseResources,
//! GetResource, GetResourceWithConfig, GetResourcesForEvent, Ping; and
//! the hooks the sessions call (authorize, allocate, release, a passive
//! call's forced allocation, a resource's usage for the routes).
//!
//! The usages live in [`ResourceService`] (a field of the server's
//! state); those of `Stored` profiles are saved in the store on every
//! change and restored at the first use after a start. After an
//! allocation or a release each resource's ThresholdIDs (all matching
//! thresholds when empty, none for `*none`) get a `ResourceUpdate` event,
//! queued to the thresholds' worker so it never delays or fails the
//! allocation.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use jsonrpc::{RpcError, code};
use rating::TariffStore;
use serde_json::{Map, Value, json};
use subsystems::Event;
use subsystems::resources::{
    ResourceEngine, ResourceError, ResourceProfile, UsageRequest, UsageTtl,
};

use crate::serve::methods::{State, mandatory_missing, object, str_field};

pub(crate) mod kept;

/// The meta blob the Stored resources are saved in.
const BLOB: &str = "serve.resources";

/// The resources' usages and counters, in the server's state.
pub(crate) struct ResourceService {
    kept: kept::Kept<ResourceEngine>,
    /// Passive calls allocated over a limit.
    pub over_limit: AtomicU64,
}

impl Default for ResourceService {
    fn default() -> Self {
        ResourceService {
            kept: kept::Kept::new(BLOB),
            over_limit: AtomicU64::new(0),
        }
    }
}

impl std::fmt::Debug for ResourceService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResourceService").finish_non_exhaustive()
    }
}

fn rpc_err(e: &ResourceError) -> RpcError {
    RpcError::server(e.to_string())
}

/// Runs `f` with the engine, the profiles' filter context at `now`, and
/// says whether a Stored resource changed.
fn with<T>(
    state: &State,
    now: DateTime<Utc>,
    f: impl FnOnce(
        &mut ResourceEngine,
        &subsystems::resources::ResourceProfiles,
        &subsystems::FilterCtx<'_>,
    ) -> (T, bool),
) -> T {
    let plan = state.plan.current();
    state.resources.kept.run(state, |eng, profiles| {
        let ctx = subsystems::FilterCtx {
            filters: &profiles.filters,
            plan: Some(&plan),
            now,
        };
        f(eng, &profiles.resources, &ctx)
    })
}

/// A change of the resources: the thresholds' events to send.
type Updates = Vec<(Arc<ResourceProfile>, f64)>;

fn updates(eng: &ResourceEngine, ps: &[Arc<ResourceProfile>]) -> Updates {
    ps.iter()
        .map(|p| (Arc::clone(p), eng.used(&p.tenant, &p.id)))
        .collect()
}

/// Sends each changed resource's `ResourceUpdate` to its thresholds.
fn tell_thresholds(state: &State, ev: &Event, changed: Updates) {
    for (p, used) in changed {
        if p.threshold_ids.len() == 1 && p.threshold_ids[0] == "*none" {
            continue;
        }
        let ids = (!p.threshold_ids.is_empty()).then(|| p.threshold_ids.clone());
        let mut opts = ev.opts.clone();
        opts.insert("*eventType".into(), json!("ResourceUpdate"));
        let mut fields = Map::new();
        fields.insert("EventType".into(), json!("ResourceUpdate"));
        fields.insert("ResourceID".into(), json!(p.id));
        fields.insert("Usage".into(), json!(used));
        let thd = Event {
            tenant: p.tenant.clone(),
            id: format!("ResourceUpdate:{}:{}", p.id, ev.id),
            time: Some(Utc::now()),
            fields,
            opts,
            vars: Map::new(),
        };
        super::thresholds::enqueue(state, thd, ids);
    }
}

/// Authorizes `req` (a dry run).
fn do_authorize(state: &State, ev: &Event, req: &UsageRequest) -> Result<String, ResourceError> {
    let now = Utc::now();
    with(state, now, |eng, ps, ctx| {
        (eng.authorize(ps, ctx, ev, req, now), false)
    })
}

/// Allocates `req` (forced: even over the limits); the message and
/// whether it went over.
fn do_allocate(
    state: &State,
    ev: &Event,
    req: &UsageRequest,
    force: bool,
) -> Result<(String, bool), ResourceError> {
    let now = Utc::now();
    let r = with(state, now, |eng, ps, ctx| {
        match eng.allocate(ps, ctx, ev, req, now, force) {
            Ok(a) => {
                let stored = a.resources.iter().any(|p| p.stored);
                let up = updates(eng, &a.resources);
                (Ok((a.message, a.over_limit, up)), stored)
            }
            Err(e) => (Err(e), false),
        }
    });
    let (message, over, up) = r?;
    tell_thresholds(state, ev, up);
    Ok((message, over))
}

/// Releases `req`'s usage.
fn do_release(state: &State, ev: &Event, req: &UsageRequest) -> Result<(), ResourceError> {
    let now = Utc::now();
    let r = with(state, now, |eng, ps, ctx| {
        match eng.release(ps, ctx, ev, req, now) {
            Ok(matched) => {
                let stored = matched.iter().any(|p| p.stored);
                (Ok(updates(eng, &matched)), stored)
            }
            Err(e) => {
                let partial = matches!(e, ResourceError::UsageNotFound(_));
                (Err(e), partial)
            }
        }
    });
    tell_thresholds(state, ev, r?);
    Ok(())
}

/// A number given as a JSON number or numeric text.
fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// A TTL given as nanoseconds or duration text: 0 or negative never
/// expires (CGRateS), otherwise after it.
fn ttl(v: &Value) -> Result<Option<UsageTtl>, RpcError> {
    let bad = |what: String| RpcError::new(code::INVALID_PARAMS, what);
    match v {
        Value::Null => Ok(None),
        Value::Number(n) => match n.as_i64() {
            Some(ns) if ns > 0 => Ok(Some(UsageTtl::After(Duration::from_nanos(
                ns.unsigned_abs(),
            )))),
            Some(_) => Ok(Some(UsageTtl::Never)),
            None => Err(bad(format!(
                "invalid UsageTTL {n}: whole nanoseconds expected"
            ))),
        },
        Value::String(s) => {
            let s = s.trim();
            if s.starts_with('-') {
                return Ok(Some(UsageTtl::Never));
            }
            let d = rating::parse_duration(s).map_err(|e| bad(e.to_string()))?;
            Ok(Some(if d.is_zero() {
                UsageTtl::Never
            } else {
                UsageTtl::After(d)
            }))
        }
        other => Err(bad(format!(
            "json: cannot unmarshal {} into Go struct field ArgRSv1ResourceUsage.UsageTTL of type time.Duration",
            jsonrpc::kind(other)
        ))),
    }
}

/// v0.10's `ArgRSv1ResourceUsage` (a flattened CGREvent with `UsageID`,
/// `Units`, `UsageTTL`) or master's CGREvent with `*rsUsageID`,
/// `*rsUnits`, `*rsUsageTTL` options. Units default to 1.
fn usage_args(params: &Value) -> Result<(Event, UsageRequest), RpcError> {
    const TY: &str = "ArgRSv1ResourceUsage";
    let m = object(params, &format!("utils.{TY}"))?;
    let ev = Event::from_cgr_event(params);
    let mut missing = Vec::new();
    if str_field(&m, "ID", TY)?.is_empty() {
        missing.push("ID");
    }
    if !matches!(m.get("Event"), Some(Value::Object(_))) {
        missing.push("Event");
    }
    let usage_id = match str_field(&m, "UsageID", TY)? {
        "" => ev
            .opts
            .get("*rsUsageID")
            .map(|v| subsystems::event::value_text(v).into_owned())
            .unwrap_or_default(),
        s => s.to_owned(),
    };
    if usage_id.is_empty() {
        missing.push("UsageID");
    }
    if !missing.is_empty() {
        return Err(mandatory_missing(&missing));
    }
    let units = match m.get("Units").filter(|v| !v.is_null()) {
        Some(v) => number(v),
        None => ev.opts.get("*rsUnits").map_or(Some(1.0), number),
    }
    .filter(|u| u.is_finite())
    .ok_or_else(|| RpcError::new(code::INVALID_PARAMS, "invalid Units: a number expected"))?;
    let ttl = match m.get("UsageTTL").filter(|v| !v.is_null()) {
        Some(v) => ttl(v)?,
        None => ev.opts.get("*rsUsageTTL").map_or(Ok(None), ttl)?,
    };
    Ok((
        ev,
        UsageRequest {
            usage_id,
            units,
            ttl,
        },
    ))
}

fn tenant_id(params: &Value) -> Result<(String, String), RpcError> {
    const TY: &str = "TenantID";
    let m = object(params, "utils.TenantIDWithAPIOpts")?;
    let id = str_field(&m, "ID", TY)?;
    if id.is_empty() {
        return Err(mandatory_missing(&["ID"]));
    }
    let tenant = match str_field(&m, "Tenant", TY)? {
        "" => crate::serve::accounts::DEFAULT_TENANT,
        t => t,
    };
    Ok((tenant.to_owned(), id.to_owned()))
}

/// CGRateS's `ResourceProfile` JSON.
pub(crate) fn profile_json(p: &ResourceProfile) -> Value {
    let ttl: i64 = match p.usage_ttl {
        UsageTtl::Never => -1,
        UsageTtl::NotRecorded => 0,
        UsageTtl::After(d) => i64::try_from(d.as_nanos()).unwrap_or(i64::MAX),
    };
    json!({
        "Tenant": p.tenant,
        "ID": p.id,
        "FilterIDs": p.filter_ids,
        "UsageTTL": ttl,
        "Limit": p.limit,
        "AllocationMessage": p.allocation_message,
        "Blocker": p.blocker,
        "Stored": p.stored,
        "Weight": p.weight,
        "ThresholdIDs": p.threshold_ids,
    })
}

fn json_text(v: &Value) -> String {
    v.to_string()
}

fn call_sync(state: &State, method: &str, params: &Value) -> Option<Result<String, RpcError>> {
    let r = match method {
        "ResourceSv1.Ping" => Ok("\"Pong\"".to_owned()),
        "ResourceSv1.AuthorizeResources" => usage_args(params).and_then(|(ev, req)| {
            do_authorize(state, &ev, &req)
                .map(|m| json_text(&json!(m)))
                .map_err(|e| rpc_err(&e))
        }),
        "ResourceSv1.AllocateResources" => usage_args(params).and_then(|(ev, req)| {
            do_allocate(state, &ev, &req, false)
                .map(|(m, _)| json_text(&json!(m)))
                .map_err(|e| rpc_err(&e))
        }),
        "ResourceSv1.ReleaseResources" => usage_args(params).and_then(|(ev, req)| {
            do_release(state, &ev, &req)
                .map(|()| "\"OK\"".to_owned())
                .map_err(|e| rpc_err(&e))
        }),
        "ResourceSv1.GetResourcesForEvent" => {
            let ev = Event::from_cgr_event(params);
            let now = Utc::now();
            with(state, now, |eng, ps, ctx| {
                let r = eng.matching(ps, ctx, &ev, now).map(|m| {
                    let mut list = Vec::new();
                    for p in &m {
                        if let Some(r) = eng.resource(ps, &p.tenant, &p.id, now) {
                            list.push(r.to_json());
                        }
                    }
                    json_text(&Value::Array(list))
                });
                (r.map_err(|e| rpc_err(&e)), false)
            })
        }
        "ResourceSv1.GetResource" | "ResourceSv1.GetResourceWithConfig" => tenant_id(params)
            .and_then(|(tenant, id)| {
                let now = Utc::now();
                with(state, now, |eng, ps, _| {
                    let r = eng.resource(ps, &tenant, &id, now).map(|r| {
                        let mut v = r.to_json();
                        if method.ends_with("WithConfig")
                            && let (Some(p), Some(m)) = (ps.get(&tenant, &id), v.as_object_mut())
                        {
                            m.insert("Config".into(), profile_json(p));
                        }
                        json_text(&v)
                    });
                    (r.ok_or_else(|| RpcError::server("NOT_FOUND")), false)
                })
            }),
        _ => return None,
    };
    Some(r)
}

/// Runs `method` if this service has it (`None`: no such method).
pub(super) async fn call(
    state: &Arc<State>,
    method: &str,
    params: &Value,
) -> Option<Result<String, RpcError>> {
    if !method.starts_with("ResourceSv1.") {
        return None;
    }
    // A Stored resource's change is written to the store, and thresholds
    // may be told: off the async workers.
    let (st, m, p) = (Arc::clone(state), method.to_owned(), params.clone());
    match tokio::task::spawn_blocking(move || call_sync(&st, &m, &p)).await {
        Ok(r) => r,
        Err(e) => Some(Err(RpcError::server(format!("SERVER_ERROR: {e}")))),
    }
}

fn request(usage_id: &str, units: f64) -> UsageRequest {
    UsageRequest {
        usage_id: usage_id.to_owned(),
        units,
        ttl: None,
    }
}

/// `ResourceSv1.AuthorizeResources` for a session: whether `units` more of
/// the resources matching `ev` may be used by `usage_id`; the allocation
/// message (the profile's AllocationMessage, else the resource ID) or
/// CGRateS's `RESOURCE_UNAUTHORIZED` / `RESOURCE_UNAVAILABLE` error.
pub(crate) fn authorize(
    state: &State,
    ev: &subsystems::Event,
    usage_id: &str,
    units: f64,
) -> Result<String, RpcError> {
    do_authorize(state, ev, &request(usage_id, units)).map_err(|e| rpc_err(&e))
}

/// `ResourceSv1.AllocateResources` for a session (at initiate).
pub(crate) fn allocate(
    state: &State,
    ev: &subsystems::Event,
    usage_id: &str,
    units: f64,
) -> Result<String, RpcError> {
    do_allocate(state, ev, &request(usage_id, units), false)
        .map(|(m, _)| m)
        .map_err(|e| rpc_err(&e))
}

/// `ResourceSv1.ReleaseResources` for a session (at terminate).
pub(crate) fn release(
    state: &State,
    ev: &subsystems::Event,
    usage_id: &str,
) -> Result<(), RpcError> {
    do_release(state, ev, &request(usage_id, 1.0)).map_err(|e| rpc_err(&e))
}

/// A passive call's allocation: it cannot be refused, so it is made even
/// over the limit; `true` when a limit was exceeded (counted).
pub(crate) fn allocate_passive(state: &State, ev: &subsystems::Event, usage_id: &str) -> bool {
    match do_allocate(state, ev, &request(usage_id, 1.0), true) {
        Ok((_, true)) => {
            state.resources.over_limit.fetch_add(1, Ordering::Relaxed);
            true
        }
        Ok((_, false)) | Err(_) => false,
    }
}

/// Resource `id`'s (units in use, limit), for the routes' `*reas` and
/// `*load` sortings.
pub(crate) fn usage(state: &State, tenant: &str, id: &str) -> Option<(f64, f64)> {
    let now = Utc::now();
    with(state, now, |eng, ps, _| {
        (eng.usage(ps, tenant, id, now), false)
    })
}

#[cfg(test)]
mod tests;
