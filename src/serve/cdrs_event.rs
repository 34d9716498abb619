//! `CDRsV1.ProcessEvent` (`ArgV1ProcessEvent`: a flattened CGREvent with
//! `Flags`), as CGRateS v0.10's `CDRServer.V1ProcessEvent` reads its
//! flags (`FlagsWithParams.GetBool`: `*name` or `*name:true` is on, any
//! other value off):
//!
//! - by default (`*rals` and `*store` on: AccuRate always rates and
//!   stores, where CGRateS's default for `*rals` is off) the event is
//!   charged by its request type and stored, once however often it comes
//!   (the session driver's ProcessCDR);
//! - `*rerate` (which turns `*rals` on, as in CGRateS): a CDR already
//!   stored for the event's (CGRID, RunID) is rated again from the event
//!   (its Usage, times and fields as they come now): the account gives
//!   back what its charge mark says it paid for the call and pays the new
//!   cost in one atomic update ([`super::cdrs_rate`]'s re-rate), then the
//!   stored CDR is replaced by the new one (`CostSource` `*cdrs`, as
//!   CGRateS's rater marks it). With no CDR stored it is rated and stored
//!   as a new one (CGRateS answers `PARTIALLY_EXECUTED` there: its lookup
//!   of the previous CDR fails);
//! - `*rals:false` (without `*rerate`): stored as it came, with its `Cost`
//!   (none, read as -1, when it has none) and `CostSource`, and nothing is
//!   charged.
//!
//! A duplicate without `*rerate` is answered `OK` and the stored CDR kept
//! (CGRateS answers `EXISTS`): a client retrying after a lost reply is
//! not told it failed, as for `CDRsV1.ProcessCDR`.
//!
//! Before that, as CGRateS's `V1ProcessEvent`: `*attributes` (off by
//! default) passes the event through AttributeS with the context `*cdrs`
//! (no profile matching leaves it as it is; no Attributes.csv or an
//! AttributeS error is `PARTIALLY_EXECUTED`, nothing stored), then
//! `*chargers` (on by default when the plan has chargers) splits it into
//! its charger runs, each rated, re-rated or stored as above; with
//! `*chargers:false` the event as given is its one run (its `RunID`, or
//! `*default`). After the runs: `*thresholds` passes each run's event to
//! ThresholdS; StatS gets every stored CDR from the CDR writer already
//! (`*stats`, on by default, adds nothing then), `*stats:false` keeps
//! this call's CDRs out of StatS, and `*stats` with `*store:false`
//! passes each run's event to StatS itself. `*store:false` needs
//! `*rals:false`: AccuRate does not charge a CDR it does not store (the
//! stored CDR is what keeps a retry from charging twice).

use std::collections::HashSet;
use std::str::FromStr;
use std::sync::{Arc, Mutex};

use chrono::Utc;
use jsonrpc::RpcError;
use rating::TariffStore as _;
use rust_decimal::Decimal;
use serde_json::{Map, Value, json};
use sessions::{CdrFilter, RequestType, SessionEvent};
use subsystems::Event;

use super::methods::State;
use super::sessions::Op;
use super::sessions::derive::{self, DeriveError};
use super::sessionsapi::{
    cdr_event, current_owner, driver, flag_params, flags_of, partially_executed, session_error,
};

/// `CostSource` of a CDR the CDR server rated.
const COST_SOURCE: &str = "*cdrs";

/// AttributeS's context for the CDR server.
const CONTEXT_CDRS: &str = "*cdrs";

/// What the flags ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Flags {
    /// AttributeS (context `*cdrs`) first.
    attributes: bool,
    /// Split into the charger runs.
    chargers: bool,
    /// Rate (and charge) each run.
    rals: bool,
    /// Re-rate a CDR already stored and replace it.
    rerate: bool,
    /// Store each run's CDR.
    store: bool,
    /// ThresholdS for each run.
    thresholds: bool,
    /// StatS for each run (`None`: as the writer's feed does).
    stats: Option<bool>,
}

/// The CDRs (CGRID, RunID) the stats feed is to skip (`*stats:false`).
static NO_STATS: Mutex<Option<HashSet<(String, String)>>> = Mutex::new(None);

/// Whether the stats feed is to skip the CDR `cgrid`/`run_id` (a
/// `CDRsV1.ProcessEvent` with `*stats:false` is storing it).
pub(crate) fn skip_stats(cgrid: &str, run_id: &str) -> bool {
    let g = NO_STATS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    g.as_ref()
        .is_some_and(|s| s.contains(&(cgrid.to_owned(), run_id.to_owned())))
}

fn no_stats(keys: &[(String, String)], on: bool) {
    let mut g = NO_STATS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let set = g.get_or_insert_with(HashSet::new);
    for k in keys {
        if on {
            set.insert(k.clone());
        } else {
            set.remove(k);
        }
    }
}

/// Runs `CDRsV1.ProcessEvent`.
pub(crate) async fn process_event(
    state: &Arc<State>,
    m: &Map<String, Value>,
) -> Result<Value, RpcError> {
    // v0.10 embeds the CGREvent (flattened): arguments with none of its
    // fields (e.g. nested under "CGREvent") are refused, not stored empty.
    super::sessionsapi::need_cgr_event(m)?;
    let f = flags(state, m)?;
    let runs = runs(state, m, f)?;
    let keys: Vec<(String, String)> = runs
        .iter()
        .map(|r| {
            let k = r.key();
            (k.cgrid, k.run_id)
        })
        .collect();
    let skip = f.stats == Some(false) && f.store;
    if skip {
        no_stats(&keys, true);
    }
    let r = store_runs(state, f, &runs).await;
    if skip {
        no_stats(&keys, false);
    }
    r?;
    // ThresholdS, StatS: without their file CGRateS has no connection.
    let profiles = state.profiles.current();
    let mut partial = (f.thresholds && !profiles.has("Thresholds.csv"))
        || (f.stats == Some(true) && !profiles.has("Stats.csv"));
    for run in &runs {
        let ev = derive::to_event(run);
        if f.thresholds {
            partial |= !hook_ok(super::subsys::thresholds::process_event(state, &ev, None));
        }
        if f.stats == Some(true) && !f.store {
            partial |= !hook_ok(super::subsys::stats::process_event(state, &ev, None));
        }
    }
    if partial {
        return Err(partially_executed());
    }
    Ok(json!("OK"))
}

/// A ThresholdS/StatS answer as CGRateS's CDR server takes it: nothing
/// matching is fine.
fn hook_ok(r: Result<Vec<String>, RpcError>) -> bool {
    match r {
        Ok(_) => true,
        Err(e) => e.message.ends_with("NOT_FOUND"),
    }
}

/// Rates, re-rates or stores each run as the flags say.
async fn store_runs(state: &Arc<State>, f: Flags, runs: &[SessionEvent]) -> Result<(), RpcError> {
    if !f.store {
        return Ok(());
    }
    if f.rerate {
        for run in runs {
            rerate(state, run.clone()).await?;
        }
    } else if f.rals {
        charge(state, runs.to_vec()).await?;
    } else {
        for run in runs {
            store_unrated(state, run.clone()).await?;
        }
    }
    Ok(())
}

/// The runs of a finished call charged and stored by the session driver
/// (ProcessCDR): a call that cannot be rated is stored with cost -1, as
/// `CDRsV1.ProcessCDR`.
async fn charge(state: &State, runs: Vec<SessionEvent>) -> Result<(), RpcError> {
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

/// The event's runs: through AttributeS when asked, then its charger
/// runs, or the event as given as its one run.
fn runs(state: &State, m: &Map<String, Value>, f: Flags) -> Result<Vec<SessionEvent>, RpcError> {
    let mut base = cdr_event(m)?;
    let given_run = |extra: &mut std::collections::BTreeMap<String, String>| {
        extra.remove("RunID").filter(|r| !r.is_empty())
    };
    if !f.attributes && !f.chargers {
        base.run_id = given_run(&mut base.extra_fields);
        return Ok(vec![base]);
    }
    let mut args = m.clone();
    if let Some(Value::Object(e)) = args.get_mut("Event") {
        e.insert("RequestType".into(), json!(base.request_type));
    }
    let mut event = Event::from_cgr_event(&Value::Object(args));
    let now = Utc::now();
    if f.attributes {
        if !state.profiles.current().has("Attributes.csv") {
            return Err(partially_executed());
        }
        match derive::attributes(state, event.clone(), CONTEXT_CDRS, Vec::new(), now) {
            Ok(r) => event = r.event,
            Err(subsystems::Error::NotFound) => {}
            Err(e) => {
                tracing::warn!(error = %e, "CDRsV1.ProcessEvent: AttributeS failed");
                return Err(partially_executed());
            }
        }
    }
    let owner = current_owner();
    if f.chargers {
        return derive::runs(state, &event, &owner, now).map_err(|e| match e {
            DeriveError::Subsys(e) => {
                tracing::warn!(error = %e, "CDRsV1.ProcessEvent: ChargerS failed");
                partially_executed()
            }
            DeriveError::Session(e) => session_error(&e),
        });
    }
    let mut one = derive::from_event(&event, owner, None).map_err(|e| session_error(&e))?;
    one.run_id = given_run(&mut one.extra_fields);
    Ok(vec![one])
}

/// The flags. `*refund` alone is refused rather than ignored (a refund
/// without a re-rate is not done); `*export` is accepted (no online
/// exports). `*chargers` on without chargers in the plan, `*attributes`
/// on without Attributes.csv fail as CGRateS fails without those
/// connections (`PARTIALLY_EXECUTED`, nothing stored).
fn flags(state: &State, m: &Map<String, Value>) -> Result<Flags, RpcError> {
    let chargers = super::subsys::chargers::enabled(state);
    let list = flags_of(m, "ArgV1ProcessEvent")?;
    let mut f = Flags {
        attributes: false,
        chargers,
        rals: true,
        rerate: false,
        store: true,
        thresholds: false,
        stats: None,
    };
    for (name, params) in flag_params(&list) {
        let on = params.first().is_none_or(|p| *p == "true");
        match name {
            "*store" => f.store = on,
            "*rals" => f.rals = on,
            "*rerate" => f.rerate = on,
            "*export" => {}
            "*chargers" if on && !chargers => return Err(partially_executed()),
            "*chargers" => f.chargers = on,
            "*attributes" => f.attributes = on,
            "*thresholds" => f.thresholds = on,
            "*stats" => f.stats = Some(on),
            "*refund" if !on => {}
            _ => {
                return Err(RpcError::server(format!(
                    "SERVER_ERROR: flag {name} is not supported (supported: *attributes, *chargers, *rals, *rerate, *store, *stats, *thresholds, *export)"
                )));
            }
        }
    }
    if f.rerate {
        f.rals = true;
    }
    if !f.store && f.rals {
        return Err(RpcError::server(
            "SERVER_ERROR: *store:false needs *rals:false: AccuRate does not charge a CDR it does not store",
        ));
    }
    Ok(f)
}

fn server(e: impl std::fmt::Display) -> RpcError {
    RpcError::server(format!("SERVER_ERROR: {e}"))
}

/// Whether the request type moves money (what a re-rate refunds).
fn accountable(rt: &str) -> bool {
    matches!(
        RequestType::parse(rt),
        Ok(RequestType::Prepaid | RequestType::PseudoPrepaid | RequestType::Postpaid)
    )
}

/// `*rerate`: see the module documentation. A charge that cannot be
/// re-rated (the account is gone, no rate matches) moves nothing and
/// leaves the stored CDR as it was: the reply is the error. A `*rated`
/// one is stored with cost -1 and the error, as CGRateS stores it.
async fn rerate(state: &Arc<State>, run: SessionEvent) -> Result<(), RpcError> {
    let ev = run.clone().with_defaults();
    let rt = ev.request_type().map_err(|e| session_error(&e))?;
    let s = driver(state)?;
    let keep = s.keep_marks();
    let mut cdr = sessions::event_cdr(&ev, s.cdr_source(), Utc::now());
    let filter = CdrFilter {
        cgrids: vec![cdr.cgrid.clone()],
        run_ids: vec![cdr.run_id.clone()],
        ..CdrFilter::default()
    };
    let Some(old) = state.cdrs.get(&filter).await.map_err(server)?.pop() else {
        // Nothing stored to re-rate: rated and stored as a new CDR.
        return charge(state, vec![run]).await;
    };
    // What the account gives back when its charge mark is gone: the old
    // cost, if AccuRate charged the old CDR at all (not one stored with
    // `*rals:false`, or not rated: -1).
    let charged = accountable(&old.request_type)
        && matches!(old.cost_source.as_str(), "*sessions" | COST_SOURCE);
    cdr.cost = old.cost.filter(|c| charged && !c.is_sign_negative());
    let st = Arc::clone(state);
    let (mut cdr, r) = tokio::task::spawn_blocking(move || {
        let plan = st.plan.current();
        let r = super::cdrs_rate::rerate_one(&st, &plan, &cdr, keep, Utc::now());
        (cdr, r)
    })
    .await
    .map_err(server)?;
    match r {
        Ok(Some(cost)) => {
            cdr.cost = Some(cost);
            COST_SOURCE.clone_into(&mut cdr.cost_source);
        }
        // Not priced: `*none`, or not answered (Cost 0, as ProcessCDR).
        Ok(None) => {
            cdr.cost = (rt != RequestType::None).then_some(Decimal::ZERO);
            cdr.cost_source.clear();
        }
        Err(e) if accountable(&ev.request_type) => {
            tracing::warn!(cgrid = %cdr.cgrid, run_id = %cdr.run_id, error = %e, "CDR not re-rated");
            return Err(server(e));
        }
        Err(e) => {
            cdr.set_rating_error(&e);
            cdr.cost_source.clear();
        }
    }
    state.cdrs.replace(&cdr).await.map_err(server)?;
    tracing::info!(cgrid = %cdr.cgrid, run_id = %cdr.run_id, old = ?old.cost, new = ?cdr.cost,
        "CDRsV1.ProcessEvent *rerate: CDR replaced");
    Ok(())
}

/// `*rals:false`: the CDR as it came (its `Cost` and `CostSource`), stored
/// once, nothing charged.
async fn store_unrated(state: &Arc<State>, run: SessionEvent) -> Result<(), RpcError> {
    let ev = run.with_defaults();
    let s = driver(state)?;
    let mut cdr = sessions::event_cdr(&ev, s.cdr_source(), Utc::now());
    cdr.cost = match cdr.extra_fields.remove("Cost") {
        None => None,
        Some(t) if t.is_empty() => None,
        Some(t) => Some(
            Decimal::from_str(&t)
                .or_else(|_| Decimal::from_scientific(&t))
                .map_err(|_| {
                    RpcError::new(
                        jsonrpc::code::INVALID_PARAMS,
                        format!("invalid Cost {t:?}: expected a number"),
                    )
                })?,
        ),
    };
    cdr.cost_source = cdr.extra_fields.remove("CostSource").unwrap_or_default();
    state.cdr_writer.submit_wait(cdr).await.map_err(server)?;
    Ok(())
}
