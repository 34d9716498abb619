//! `ThresholdSv1`: ProcessEvent, GetThresholdsForEvent, GetThreshold,
//! GetThresholdIDs, ResetThreshold, Ping; and [`process_event`], which
//! the other subsystems call.
//!
//! The hits live in [`ThresholdService`] (a field of the server's state),
//! saved in the store on every change and restored at the first use
//! after a start. A threshold that fires runs its ActionIDs through the
//! accounts' action machinery on the event's account. Account changes and
//! resource changes reach the thresholds through a queue and a worker
//! thread (`feed.rs`), never delaying the debit or allocation that caused
//! them.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{DateTime, Utc};
use jsonrpc::{RpcError, code};
use rating::TariffStore;
use serde_json::{Value, json};
use subsystems::Event;
use subsystems::thresholds::{Fired, ThresholdEngine};

use super::resources::kept::Kept;
use crate::serve::methods::{State, mandatory_missing, object, str_field};

mod feed;

/// The meta blob the thresholds' hits are saved in.
const BLOB: &str = "serve.thresholds";

/// The thresholds' hits, their event queue and counters, in the server's
/// state.
pub(crate) struct ThresholdService {
    kept: Kept<ThresholdEngine>,
    feed: Arc<feed::Feed>,
    /// Thresholds fired (their actions run).
    pub fired: AtomicU64,
}

impl Default for ThresholdService {
    fn default() -> Self {
        ThresholdService {
            kept: Kept::new(BLOB),
            feed: Arc::default(),
            fired: AtomicU64::new(0),
        }
    }
}

impl std::fmt::Debug for ThresholdService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ThresholdService").finish_non_exhaustive()
    }
}

impl ThresholdService {
    /// `accounts` with its updates fed to the thresholds (as
    /// `AccountUpdate` and `BalanceUpdate` events).
    pub(crate) fn wrap(
        &self,
        accounts: Arc<dyn rating::AccountStore>,
    ) -> Arc<dyn rating::AccountStore> {
        Arc::new(feed::FeedAccounts::new(accounts, Arc::clone(&self.feed)))
    }

    /// The counters for `/metrics`: name, help, value.
    pub(crate) fn counters(&self) -> [(&'static str, &'static str, u64); 4] {
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        [
            (
                "accurate_thresholds_fired_total",
                "Thresholds that fired (their actions run).",
                g(&self.fired),
            ),
            (
                "accurate_thresholds_events_queued_total",
                "Account and resource events queued for the thresholds.",
                g(&self.feed.queued),
            ),
            (
                "accurate_thresholds_events_dropped_full_total",
                "Events for the thresholds dropped: the queue was full.",
                g(&self.feed.dropped_full),
            ),
            (
                "accurate_thresholds_events_dropped_depth_total",
                "Account events of threshold actions dropped: too deep a chain.",
                g(&self.feed.dropped_depth),
            ),
        ]
    }
}

/// Starts the thresholds' worker (the queue fills until then).
pub(crate) fn start(state: &Arc<State>) {
    state.thresholds.feed.start(state);
}

/// Queues `ev` for the thresholds (only `ids` when given): processed by
/// the worker, never waited for.
pub(crate) fn enqueue(state: &State, ev: Event, ids: Option<Vec<String>>) {
    state.thresholds.feed.push(ev, ids);
}

fn with<T>(
    state: &State,
    now: DateTime<Utc>,
    f: impl FnOnce(
        &mut ThresholdEngine,
        &subsystems::thresholds::ThresholdProfiles,
        &subsystems::FilterCtx<'_>,
    ) -> (T, bool),
) -> T {
    let plan = state.plan.current();
    state.thresholds.kept.run(state, |eng, profiles| {
        let ctx = subsystems::FilterCtx {
            filters: &profiles.filters,
            plan: Some(&plan),
            now,
        };
        f(eng, &profiles.thresholds, &ctx)
    })
}

fn rpc_err(e: &subsystems::Error) -> RpcError {
    RpcError::server(e.to_string())
}

/// Runs a fired threshold's actions on its account. Without one, only
/// `*log` runs (it logs the event, as CGRateS); the others are skipped
/// (logged).
fn run_fired(state: &State, f: &Fired, ev: &Event, now: DateTime<Utc>) {
    state.thresholds.fired.fetch_add(1, Ordering::Relaxed);
    let plan = state.plan.current();
    let data = plan.account_data();
    let Some(account) = &f.account else {
        for aid in &f.action_ids {
            let Some(acts) = data.actions.get(aid.as_str()) else {
                crate::serve::say(&format!(
                    "serve: threshold {}: no actions {aid}",
                    f.threshold_id
                ));
                continue;
            };
            for a in acts {
                if a.action == rating::ActionType::Log {
                    crate::serve::say(&format!("action *log: {}", ev.to_cgr_event()));
                } else {
                    crate::serve::say(&format!(
                        "serve: threshold {}: the event names no account, {} of {aid} not run",
                        f.threshold_id,
                        a.action.as_str()
                    ));
                }
            }
        }
        return;
    };
    for aid in &f.action_ids {
        let r = feed::deeper(|| {
            crate::serve::accounts::run_actions(state, data, &f.tenant, account, aid, now, 0)
        });
        if let Err(e) = r {
            crate::serve::say(&format!(
                "serve: threshold {} actions {aid} on {}:{account}: {e}",
                f.threshold_id, f.tenant
            ));
        }
    }
}

/// Passes `ev` to the thresholds matching it (only `ids` when given):
/// hits counted, actions run; the IDs of the thresholds hit.
pub(crate) fn process_event(
    state: &State,
    ev: &subsystems::Event,
    ids: Option<&[String]>,
) -> Result<Vec<String>, RpcError> {
    let now = Utc::now();
    let out = with(state, now, |eng, ps, ctx| {
        match eng.process(ps, ctx, ev, ids, now) {
            Ok(p) => {
                let changed = !p.hit.is_empty();
                (Ok(p), changed)
            }
            Err(e) => (Err(e), false),
        }
    })
    .map_err(|e| rpc_err(&e))?;
    // Outside the engine's lock: the actions change accounts, whose
    // events come back to the thresholds through the queue.
    for f in out.fired {
        match state.thresholds.feed.state().filter(|_| f.async_exec) {
            // Async: not waited for (on its own thread, one level deeper
            // like the others).
            Some(st) => {
                let depth = feed::depth();
                let ev = ev.clone();
                let spawned = std::thread::Builder::new()
                    .name("threshold-actions".into())
                    .spawn(move || feed::at_depth(depth, || run_fired(&st, &f, &ev, now)));
                if let Err(e) = spawned {
                    crate::serve::say(&format!("serve: threshold actions not run: {e}"));
                }
            }
            None => run_fired(state, &f, ev, now),
        }
    }
    Ok(out.hit)
}

/// v0.10's `ArgsProcessEvent` (`ThresholdIDs` and a flattened CGREvent)
/// or master's CGREvent with `*thdProfileIDs`.
fn event_args(params: &Value) -> Result<(Event, Option<Vec<String>>), RpcError> {
    const TY: &str = "ArgsProcessEvent";
    let m = object(params, "engine.ArgsProcessEvent")?;
    let mut missing = Vec::new();
    if str_field(&m, "ID", TY)?.is_empty() {
        missing.push("ID");
    }
    if !matches!(m.get("Event"), Some(Value::Object(_))) {
        missing.push("Event");
    }
    if !missing.is_empty() {
        return Err(mandatory_missing(&missing));
    }
    let ev = Event::from_cgr_event(params);
    let list = |v: &Value| -> Result<Vec<String>, RpcError> {
        match v {
            Value::Null => Ok(Vec::new()),
            Value::Array(a) => a
                .iter()
                .map(|x| {
                    x.as_str().map(str::to_owned).ok_or_else(|| {
                        RpcError::new(code::INVALID_PARAMS, "ThresholdIDs: strings expected")
                    })
                })
                .collect(),
            Value::String(s) => Ok(s
                .split(';')
                .filter(|x| !x.is_empty())
                .map(str::to_owned)
                .collect()),
            _ => Err(RpcError::new(
                code::INVALID_PARAMS,
                "ThresholdIDs: a list of strings expected",
            )),
        }
    };
    let mut ids = match m.get("ThresholdIDs") {
        Some(v) => list(v)?,
        None => Vec::new(),
    };
    if ids.is_empty()
        && let Some(v) = ev.opts.get("*thdProfileIDs")
    {
        ids = list(v)?;
    }
    Ok((ev, (!ids.is_empty()).then_some(ids)))
}

fn tenant_id(params: &Value) -> Result<(String, String), RpcError> {
    const TY: &str = "TenantID";
    let m = object(params, "utils.TenantID")?;
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

fn call_sync(state: &State, method: &str, params: &Value) -> Option<Result<String, RpcError>> {
    let now = Utc::now();
    let r = match method {
        "ThresholdSv1.Ping" => Ok("\"Pong\"".to_owned()),
        "ThresholdSv1.ProcessEvent" => event_args(params).and_then(|(ev, ids)| {
            process_event(state, &ev, ids.as_deref()).map(|hit| json!(hit).to_string())
        }),
        "ThresholdSv1.GetThresholdsForEvent" => event_args(params).and_then(|(ev, ids)| {
            with(state, now, |eng, ps, ctx| {
                let r = eng.matching(ps, ctx, &ev, ids.as_deref()).map(|m| {
                    let list: Vec<Value> = m
                        .iter()
                        .filter_map(|p| eng.get(ps, &p.tenant, &p.id))
                        .map(|t| t.to_json())
                        .collect();
                    Value::Array(list).to_string()
                });
                (r.map_err(|e| rpc_err(&e)), false)
            })
        }),
        "ThresholdSv1.GetThreshold" => tenant_id(params).and_then(|(tenant, id)| {
            with(state, now, |eng, ps, _| {
                let r = eng
                    .get(ps, &tenant, &id)
                    .map(|t| t.to_json().to_string())
                    .ok_or_else(|| RpcError::server("NOT_FOUND"));
                (r, false)
            })
        }),
        "ThresholdSv1.ResetThreshold" => tenant_id(params).and_then(|(tenant, id)| {
            with(state, now, |eng, ps, _| {
                if eng.reset(ps, &tenant, &id) {
                    (Ok("\"OK\"".to_owned()), true)
                } else {
                    (Err(RpcError::server("NOT_FOUND")), false)
                }
            })
        }),
        "ThresholdSv1.GetThresholdIDs" => {
            object(params, "utils.TenantArgWithPaginator").and_then(|m| {
                let tenant = match str_field(&m, "Tenant", "TenantArgWithPaginator")? {
                    "" => crate::serve::accounts::DEFAULT_TENANT,
                    t => t,
                }
                .to_owned();
                Ok(with(state, now, |eng, ps, _| {
                    (json!(eng.ids(ps, &tenant)).to_string(), false)
                }))
            })
        }
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
    if !method.starts_with("ThresholdSv1.") {
        return None;
    }
    // Hits are saved and actions change accounts: off the async workers.
    let (st, m, p) = (Arc::clone(state), method.to_owned(), params.clone());
    match tokio::task::spawn_blocking(move || call_sync(&st, &m, &p)).await {
        Ok(r) => r,
        Err(e) => Some(Err(RpcError::server(format!("SERVER_ERROR: {e}")))),
    }
}
