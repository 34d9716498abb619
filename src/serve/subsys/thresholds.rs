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

/// Passes `ev` to the thresholds matching it (only `ids` when given):
/// hits counted, actions run; the IDs of the thresholds hit.
pub(crate) fn process_event(
    state: &State,
    ev: &subsystems::Event,
    ids: Option<&[String]>,
) -> Result<Vec<String>, RpcError> {
    let _ = (state, ev, ids);
    Ok(Vec::new())
}
