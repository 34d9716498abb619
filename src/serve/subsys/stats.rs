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

/// Passes `ev` to the stat queues matching it (only `ids` when given);
/// the IDs of the queues that took it.
pub(crate) fn process_event(
    state: &State,
    ev: &subsystems::Event,
    ids: Option<&[String]>,
) -> Result<Vec<String>, RpcError> {
    let _ = (state, ev, ids);
    Ok(Vec::new())
}

/// Queue `id`'s metrics as numbers (metric ID -> value; a metric without
/// enough items is absent), for the routes' `*qos` sorting.
pub(crate) fn float_metrics(
    state: &State,
    tenant: &str,
    id: &str,
) -> Option<std::collections::BTreeMap<String, f64>> {
    let _ = (state, tenant, id);
    None
}
