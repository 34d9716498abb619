//! `StatSv1`: CGRateS's StatS over the queues in [`State::stats`]
//! (`subsystems::stats`), fed by the API and by every stored CDR
//! ([`feed`]), the Stored queues saved in the meta store.
//!
//! Methods: `Ping`, `ProcessEvent` (the IDs of the queues that took the
//! event), `GetStatQueuesForEvent`, `GetQueueStringMetrics`,
//! `GetQueueFloatMetrics`, `GetQueueIDs`, `GetStatQueue`.

pub(crate) mod feed;

use std::collections::BTreeMap;
use std::sync::Arc;

use jsonrpc::RpcError;
use serde_json::{Map, Value, json};
use subsystems::stats::{MetricValue, Processed, StatService};

use crate::serve::methods::{State, mandatory_missing, object};

pub(crate) use feed::{flush, start};

/// CGRateS's default tenant.
const DEFAULT_TENANT: &str = "cgrates.org";

/// Runs `method` if this service has it (`None`: no such method).
pub(super) async fn call(
    state: &Arc<State>,
    method: &str,
    params: &Value,
) -> Option<Result<String, RpcError>> {
    let r = match method {
        "StatSv1.Ping" => Ok("\"Pong\"".to_owned()),
        "StatSv1.ProcessEvent" => {
            let st = Arc::clone(state);
            let params = params.clone();
            // ThresholdS may run actions (account writes): off the workers.
            tokio::task::spawn_blocking(move || api_process(&st, &params))
                .await
                .unwrap_or_else(|e| Err(RpcError::server(format!("SERVER_ERROR: {e}"))))
        }
        "StatSv1.GetStatQueuesForEvent" => for_event(state, params),
        "StatSv1.GetQueueStringMetrics" => queue_metrics(state, params, |v| json!(v.text())),
        "StatSv1.GetQueueFloatMetrics" => queue_metrics(state, params, |v| json!(v.float())),
        "StatSv1.GetQueueIDs" => queue_ids(state, params),
        "StatSv1.GetStatQueue" => get_queue(state, params),
        _ => return None,
    };
    Some(r)
}

/// StatS's runtime state, in [`State::stats`]: the queues and the feed
/// of stored CDRs (once started).
#[derive(Debug, Default)]
pub(crate) struct Stats {
    service: std::sync::Mutex<StatService>,
    feed: std::sync::OnceLock<std::sync::mpsc::SyncSender<feed::Feed>>,
}

fn service(state: &State) -> std::sync::MutexGuard<'_, StatService> {
    state
        .stats
        .service
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn to_json(v: &impl serde::Serialize) -> Result<String, RpcError> {
    serde_json::to_string(v).map_err(|e| RpcError::server(format!("SERVER_ERROR: {e}")))
}

fn rpc_error(e: &subsystems::Error) -> RpcError {
    match e {
        subsystems::Error::NotFound => RpcError::server("NOT_FOUND"),
        other => RpcError::server(other.to_string()),
    }
}

/// `StatsArgsProcessEvent`: the CGREvent, checked as CGRateS does, and
/// `StatIDs`.
fn event_args(params: &Value) -> Result<(subsystems::Event, Option<Vec<String>>), RpcError> {
    let m = object(params, "engine.StatsArgsProcessEvent")?;
    let id_missing = m
        .get("ID")
        .and_then(Value::as_str)
        .is_none_or(str::is_empty);
    if id_missing {
        return Err(mandatory_missing(&["ID"]));
    }
    if !matches!(m.get("Event"), Some(Value::Object(_))) {
        return Err(mandatory_missing(&["Event"]));
    }
    let ids = match m.get("StatIDs") {
        None | Some(Value::Null) => None,
        Some(Value::Array(a)) => Some(
            a.iter()
                .map(|v| v.as_str().map(str::to_owned))
                .collect::<Option<Vec<String>>>()
                .ok_or_else(|| bad_type("StatIDs", "[]string"))?,
        ),
        Some(_) => return Err(bad_type("StatIDs", "[]string")),
    };
    Ok((subsystems::Event::from_cgr_event(&Value::Object(m)), ids))
}

fn bad_type(field: &str, ty: &str) -> RpcError {
    RpcError::new(
        jsonrpc::code::INVALID_PARAMS,
        format!("json: cannot unmarshal {field} into Go struct field of type {ty}"),
    )
}

/// Passes `ev` to StatS and each changed queue's `StatUpdate` to
/// ThresholdS. CGRateS's `processEvent`.
pub(crate) fn process(
    state: &State,
    ev: &subsystems::Event,
    ids: Option<&[String]>,
) -> Result<Processed, subsystems::Error> {
    let profiles = state.profiles.current();
    let plan = rating::TariffStore::current(&state.plan);
    let out = service(state).process_event(&profiles, Some(&plan), ev, ids, chrono::Utc::now())?;
    for q in &out.queues {
        for e in &q.errors {
            tracing::warn!(queue = %q.id, event = %ev.id, error = %e, "StatS: metric did not take the event");
        }
        let Some(th_ids) = &q.threshold_ids else {
            continue;
        };
        let th_ev = q.threshold_event(ev);
        let th_ids = (!th_ids.is_empty()).then_some(th_ids.as_slice());
        if let Err(e) = super::thresholds::process_event(state, &th_ev, th_ids)
            && e.message != "NOT_FOUND"
        {
            tracing::warn!(queue = %q.id, error = %e.message, "StatS: ThresholdS refused the StatUpdate");
        }
    }
    Ok(out)
}

fn api_process(state: &State, params: &Value) -> Result<String, RpcError> {
    let (ev, ids) = event_args(params)?;
    let out = process(state, &ev, ids.as_deref()).map_err(|e| rpc_error(&e))?;
    if out.partial() {
        return Err(RpcError::server("PARTIALLY_EXECUTED"));
    }
    to_json(&out.ids())
}

fn for_event(state: &State, params: &Value) -> Result<String, RpcError> {
    let (ev, ids) = event_args(params)?;
    let profiles = state.profiles.current();
    let plan = rating::TariffStore::current(&state.plan);
    let matched = StatService::matching(
        &profiles,
        Some(&plan),
        &ev,
        ids.as_deref(),
        chrono::Utc::now(),
    )
    .map_err(|e| rpc_error(&e))?;
    let ids: Vec<&str> = matched.iter().map(|p| p.id.as_str()).collect();
    to_json(&ids)
}

/// `utils.TenantID`: the tenant (the default when empty) and the ID
/// (mandatory).
fn tenant_id(params: &Value) -> Result<(String, String), RpcError> {
    let m = object(params, "utils.TenantID")?;
    let text = |k: &str| m.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
    let id = text("ID");
    if id.is_empty() {
        return Err(mandatory_missing(&["ID"]));
    }
    let mut tenant = text("Tenant");
    if tenant.is_empty() {
        DEFAULT_TENANT.clone_into(&mut tenant);
    }
    Ok((tenant, id))
}

fn queue_metrics(
    state: &State,
    params: &Value,
    render: impl Fn(&MetricValue) -> Value,
) -> Result<String, RpcError> {
    let (tenant, id) = tenant_id(params)?;
    let profiles = state.profiles.current();
    let metrics = service(state)
        .metrics(&profiles, &tenant, &id, chrono::Utc::now())
        .ok_or_else(|| RpcError::server("NOT_FOUND"))?;
    let out: Map<String, Value> = metrics
        .iter()
        .map(|(k, v)| (k.clone(), render(v)))
        .collect();
    to_json(&out)
}

fn queue_ids(state: &State, params: &Value) -> Result<String, RpcError> {
    // v0.10 passes the tenant as a string; later ones `{"Tenant": ...}`.
    let tenant = match params {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => object(other, "utils.TenantWithAPIOpts")?
            .get("Tenant")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned(),
    };
    let tenant = if tenant.is_empty() {
        DEFAULT_TENANT.to_owned()
    } else {
        tenant
    };
    let profiles = state.profiles.current();
    // v0.10 answers the keys it finds: none is an empty list.
    to_json(&service(state).queue_ids(&profiles, &tenant))
}

fn get_queue(state: &State, params: &Value) -> Result<String, RpcError> {
    let (tenant, id) = tenant_id(params)?;
    let profiles = state.profiles.current();
    let mut svc = service(state);
    let (q, p) = svc
        .queue(&profiles, &tenant, &id, chrono::Utc::now())
        .ok_or_else(|| RpcError::server("NOT_FOUND"))?;
    let items: Vec<Value> = q
        .items
        .iter()
        .map(|i| {
            json!({
                "EventID": i.event_id,
                "ExpiryTime": i.expiry.map(sessions::cdr::go_time),
            })
        })
        .collect();
    let metrics: BTreeMap<String, String> = q
        .values(p)
        .iter()
        .map(|(k, v)| (k.clone(), v.text()))
        .collect();
    to_json(&json!({
        "Tenant": q.tenant,
        "ID": q.id,
        "SQItems": items,
        "SQMetrics": metrics,
    }))
}

/// Queue `id`'s metrics as numbers (metric ID -> value; a metric without
/// enough items is absent), for the routes' `*qos` sorting.
pub(crate) fn float_metrics(
    state: &State,
    tenant: &str,
    id: &str,
) -> Option<std::collections::BTreeMap<String, f64>> {
    let profiles = state.profiles.current();
    let metrics = service(state).metrics(&profiles, tenant, id, chrono::Utc::now())?;
    Some(
        metrics
            .iter()
            .filter(|(_, v)| v.is_available())
            .map(|(k, v)| (k.clone(), v.float()))
            .collect(),
    )
}

/// Passes `ev` to the stat queues matching it (only `ids` when given);
/// the IDs of the queues that took it.
pub(crate) fn process_event(
    state: &State,
    ev: &subsystems::Event,
    ids: Option<&[String]>,
) -> Result<Vec<String>, RpcError> {
    match process(state, ev, ids) {
        Ok(out) => Ok(out.ids()),
        Err(e) => Err(rpc_error(&e)),
    }
}

/// Every queue's available metrics as numbers (tenant, queue, metric,
/// value), for `/metrics`.
pub(crate) fn gauges(state: &State) -> Vec<(String, String, String, f64)> {
    let profiles = state.profiles.current();
    let all = service(state).all_metrics(&profiles, chrono::Utc::now());
    let mut out = Vec::new();
    for (tenant, queue, metrics) in all {
        for (m, v) in metrics {
            if v.is_available() {
                out.push((tenant.clone(), queue.clone(), m, v.float()));
            }
        }
    }
    out
}
