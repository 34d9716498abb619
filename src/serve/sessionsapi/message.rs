//! `SessionSv1.ProcessMessage` (CGRateS v0.10's `BiRPCv1ProcessMessage`):
//! one event charged in one go (an SMS, a `*message` ToR...), with the
//! subsystems in v0.10's order: attributes, resources, suppliers, the
//! debit, thresholds, stats.

use jsonrpc::RpcError;
use serde_json::{Map, Value, json};
use sessions::{RequestType, SessionEvent};

use super::super::methods::State;
use super::super::sessions::Op;
use super::super::sessions::flags::{ResOp, resources_op, routes_op};
use super::{driver, flag, late, late_args, max_usage_ns, need_cgr_event, ns, partially_executed};
use super::{prepared, session_error};

/// `V1ProcessMessageArgs` in, `V1ProcessMessageReply` out (`MaxUsage` in
/// nanoseconds, 0 when `Debit` was not asked).
pub(super) async fn process_message(
    state: &State,
    m: &Map<String, Value>,
) -> Result<Value, RpcError> {
    need_cgr_event(m)?;
    let p = prepared(state, m, "GetAttributes")?;
    let mut alloc = Value::Null;
    if flag(m, "AllocateResources")? {
        alloc = resources_op(state, &p, ResOp::Allocate)?;
    }
    let mut suppliers = Value::Null;
    if flag(m, "GetSuppliers")? {
        suppliers = routes_op(state, &p, m, true)?;
    }
    let mut max = 0;
    if flag(m, "Debit")? {
        max = debit(state, p.runs.clone()).await?;
    }
    let (th, st) = late_args(m)?;
    let l = late(state, &p.event, th, st);
    if l.failed {
        return Err(partially_executed());
    }
    Ok(
        json!({"MaxUsage": max, "ResourceAllocation": alloc, "Attributes": p.attributes,
        "Suppliers": suppliers, "ThresholdIDs": l.thresholds, "StatQueueIDs": l.stats}),
    )
}

/// v0.10's `chargeEvent`: the usage the event may have (its `Usage`, by
/// default `max-call-duration`; for `*prepaid`/`*pseudoprepaid` at most
/// what the account can pay, refused when it can pay nothing), then the
/// event charged at once as a finished call of that usage (`*postpaid`/
/// `*rated`: its own `Usage`) and stored as a CDR. Charged once however
/// often the same event (`OriginID`, `OriginHost`, run) comes.
async fn debit(state: &State, mut runs: Vec<SessionEvent>) -> Result<u64, RpcError> {
    let s = driver(state)?;
    let allowed = s
        .call_runs(Op::Authorize, runs.clone())
        .await
        .map_err(|e| session_error(&e))?;
    let Some(max) = allowed.max_usage else {
        return Ok(max_usage_ns(&allowed));
    };
    let now = chrono::Utc::now();
    for ev in &mut runs {
        // A message happens when it is sent: answered at its setup time.
        if ev.answer_time.is_none() {
            ev.answer_time = Some(ev.setup_time.unwrap_or(now));
        }
        let prepaid = matches!(
            ev.request_type(),
            Ok(RequestType::Prepaid | RequestType::PseudoPrepaid)
        );
        if prepaid || ev.usage.is_none() {
            ev.usage = Some(ev.usage.map_or(max, |u| u.min(max)));
        }
    }
    s.call_runs(Op::ProcessCdr, runs)
        .await
        .map_err(|e| session_error(&e))?;
    Ok(ns(max))
}
