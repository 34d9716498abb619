//! (Skeleton: the helper that owns this service replaces it.)

use std::sync::Arc;

use jsonrpc::RpcError;
use serde_json::Value;

use crate::serve::methods::State;

/// Runs `method` if this service has it (`None`: no such method).
pub(super) async fn call(
    state: &Arc<State>,
    method: &str,
    params: &Value,
) -> Option<Result<String, RpcError>> {
    let _ = (state, method, params);
    None
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
    let _ = (state, ev, usage_id, units);
    Ok(String::new())
}

/// `ResourceSv1.AllocateResources` for a session (at initiate).
pub(crate) fn allocate(
    state: &State,
    ev: &subsystems::Event,
    usage_id: &str,
    units: f64,
) -> Result<String, RpcError> {
    let _ = (state, ev, usage_id, units);
    Ok(String::new())
}

/// `ResourceSv1.ReleaseResources` for a session (at terminate).
pub(crate) fn release(
    state: &State,
    ev: &subsystems::Event,
    usage_id: &str,
) -> Result<(), RpcError> {
    let _ = (state, ev, usage_id);
    Ok(())
}

/// A passive call's allocation: it cannot be refused, so it is made even
/// over the limit; `true` when a limit was exceeded (counted).
pub(crate) fn allocate_passive(state: &State, ev: &subsystems::Event, usage_id: &str) -> bool {
    let _ = (state, ev, usage_id);
    false
}

/// Resource `id`'s (units in use, limit), for the routes' `*reas` and
/// `*load` sortings.
pub(crate) fn usage(state: &State, tenant: &str, id: &str) -> Option<(f64, f64)> {
    let _ = (state, tenant, id);
    None
}
