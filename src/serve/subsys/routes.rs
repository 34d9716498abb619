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

/// The sorted routes for `ev`, as `RouteSv1.GetRoutes` answers them
/// (`suppliers`: v0.10's `SupplierSv1.GetSuppliers` shape, `Suppliers` /
/// `SupplierID` names), for the session authorization's `GetRoutes` /
/// `GetSuppliers` flags.
pub(crate) fn sorted_routes(
    state: &State,
    ev: &subsystems::Event,
    suppliers: bool,
) -> Result<Value, RpcError> {
    let _ = (state, ev, suppliers);
    Ok(Value::Null)
}
