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

use std::str::FromStr;
use std::sync::Arc;

use chrono::Utc;
use jsonrpc::RpcError;
use rating::TariffStore as _;
use rust_decimal::Decimal;
use serde_json::{Map, Value, json};
use sessions::{CdrFilter, RequestType};

use super::methods::State;
use super::sessionsapi::{
    cdr_event, driver, flag_params, flags_of, partially_executed, process_cdr, session_error,
};

/// `CostSource` of a CDR the CDR server rated.
const COST_SOURCE: &str = "*cdrs";

/// What the flags ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Flags {
    /// Rate (and charge) the event.
    rals: bool,
    /// Re-rate a CDR already stored and replace it.
    rerate: bool,
    /// `*thresholds` or `*stats` on: stored, then `PARTIALLY_EXECUTED`.
    late: bool,
}

/// Runs `CDRsV1.ProcessEvent`.
pub(crate) async fn process_event(
    state: &Arc<State>,
    m: &Map<String, Value>,
) -> Result<Value, RpcError> {
    let f = flags(state, m)?;
    if f.rerate {
        rerate(state, m).await?;
    } else if f.rals {
        process_cdr(state, m).await?;
    } else {
        store_unrated(state, m).await?;
    }
    if f.late {
        return Err(partially_executed());
    }
    Ok(json!("OK"))
}

/// The flags. `*store` turned off and `*refund` alone are refused rather
/// than ignored (AccuRate always stores; a refund without a re-rate is not
/// done). `*attributes` and `*chargers` on fail as CGRateS fails without
/// those connections (`PARTIALLY_EXECUTED`, nothing stored), but
/// `*chargers` is accepted when the plan has chargers (the event is
/// charged as its runs); `*export` is accepted (no online exports).
fn flags(state: &State, m: &Map<String, Value>) -> Result<Flags, RpcError> {
    let chargers = super::subsys::chargers::enabled(state);
    let list = flags_of(m, "ArgV1ProcessEvent")?;
    let mut f = Flags {
        rals: true,
        rerate: false,
        late: false,
    };
    for (name, params) in flag_params(&list) {
        let on = params.first().is_none_or(|p| *p == "true");
        match name {
            "*store" if on => {}
            "*rals" => f.rals = on,
            "*rerate" => f.rerate = on,
            "*export" => {}
            "*chargers" if chargers => {}
            "*attributes" | "*chargers" if on => return Err(partially_executed()),
            "*thresholds" | "*stats" if on => f.late = true,
            "*attributes" | "*chargers" | "*thresholds" | "*stats" => {}
            "*refund" if !on => {}
            _ => {
                return Err(RpcError::server(format!(
                    "SERVER_ERROR: flag {name} is not supported (supported: *rals, *rerate, and *store on)"
                )));
            }
        }
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
async fn rerate(state: &Arc<State>, m: &Map<String, Value>) -> Result<(), RpcError> {
    let ev = cdr_event(m)?.with_defaults();
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
        return process_cdr(state, m).await;
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
async fn store_unrated(state: &Arc<State>, m: &Map<String, Value>) -> Result<(), RpcError> {
    let ev = cdr_event(m)?.with_defaults();
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
