//! The CGRateS subsystems' JSON-RPC services (`AttributeSv1`,
//! `ChargerSv1`, `RouteSv1`/`SupplierSv1`, `ResourceSv1`, `ThresholdSv1`,
//! `StatSv1`) over the profiles in [`super::methods::State::profiles`].
//! One file per service; each lists the methods it answers.

use std::sync::Arc;

use jsonrpc::RpcError;
use serde_json::Value;

use super::methods::State;

pub(crate) mod attributes;
pub(crate) mod chargers;
pub(crate) mod filters;
pub(crate) mod profiles_api;
pub(crate) mod resources;
pub(crate) mod routes;
pub(crate) mod stats;
pub(crate) mod thresholds;

/// The services answered here.
pub(crate) const SERVICES: &[&str] = &[
    "AttributeSv1",
    "ChargerSv1",
    "RouteSv1",
    "SupplierSv1",
    "ResourceSv1",
    "ThresholdSv1",
    "StatSv1",
];

/// Whether `method` belongs to one of these services.
pub(crate) fn handles(method: &str) -> bool {
    chargers::APIER_METHODS.contains(&method)
        || method
            .split_once('.')
            .is_some_and(|(service, _)| SERVICES.contains(&service))
}

/// Runs one of these services' methods.
pub(crate) async fn call(
    state: &Arc<State>,
    method: &str,
    params: &Value,
) -> Result<String, RpcError> {
    let (service, _) = method.split_once('.').unwrap_or((method, ""));
    let r = match service {
        "AttributeSv1" => attributes::call(state, method, params).await,
        "ChargerSv1" => chargers::call(state, method, params).await,
        _ if chargers::APIER_METHODS.contains(&method) => {
            chargers::call(state, method, params).await
        }
        "RouteSv1" | "SupplierSv1" => routes::call(state, method, params).await,
        "ResourceSv1" => resources::call(state, method, params).await,
        "ThresholdSv1" => thresholds::call(state, method, params).await,
        "StatSv1" => stats::call(state, method, params).await,
        _ => None,
    };
    r.unwrap_or_else(|| Err(unknown_method(method)))
}

/// Go's `net/rpc` answer to an unknown method of a known service.
pub(crate) fn unknown_method(method: &str) -> RpcError {
    RpcError::new(
        jsonrpc::code::METHOD_NOT_FOUND,
        format!("rpc: can't find method {method}"),
    )
}
