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
