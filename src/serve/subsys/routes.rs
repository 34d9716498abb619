//! `RouteSv1` (CGRateS master) and `SupplierSv1` (v0.10): the routes of
//! the profiles matching an event, sorted by their strategy
//! ([`subsystems::routes`]); costs come from the tariff plan in force,
//! stat metrics and resource usages from the StatS and ResourceS hooks.

use std::collections::BTreeMap;
use std::str::FromStr;
use std::sync::Arc;

use chrono::Utc;
use jsonrpc::RpcError;
use rust_decimal::Decimal;
use serde_json::{Map, Value};
use subsystems::routes::{
    GetRoutesOpts, MaxCostOpt, Route, RouteCost, RouteData, SortedRoutes, sort,
};
use subsystems::{Event, FilterCtx};

use crate::serve::methods::{State, mandatory_missing, object};

/// Runs `method` if this service has it (`None`: no such method).
pub(super) async fn call(
    state: &Arc<State>,
    method: &str,
    params: &Value,
) -> Option<Result<String, RpcError>> {
    let r = match method {
        "RouteSv1.Ping" | "SupplierSv1.Ping" => Ok("\"Pong\"".to_owned()),
        "RouteSv1.GetRoutes" => get_routes(state, params, false).map(|v| v.to_string()),
        "SupplierSv1.GetSuppliers" => get_routes(state, params, true).map(|v| v.to_string()),
        "RouteSv1.GetRoutesList" => routes_list(state, params),
        "RouteSv1.GetRouteProfilesForEvent" => profiles_for_event(state, params, false),
        "SupplierSv1.GetSupplierProfilesForEvent" => profiles_for_event(state, params, true),
        _ => return None,
    };
    Some(r)
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
    let opts = options(&Map::new(), ev, suppliers)?;
    let list = sort_for(state, ev, &opts)?;
    Ok(answer(&list, suppliers))
}

/// CGRateS's error text for a subsystems error.
fn rpc_error(e: &subsystems::Error) -> RpcError {
    match e {
        subsystems::Error::NotFound => RpcError::server("NOT_FOUND"),
        other => RpcError::server(format!("SERVER_ERROR: {other}")),
    }
}

/// The costs, metrics and usages the sorting asks for.
struct Live<'a> {
    state: &'a State,
    plan: &'a rating::TariffPlan,
}

impl RouteData for Live<'_> {
    fn cost(&self, ev: &Event, route: &Route) -> Result<Option<RouteCost>, subsystems::Error> {
        let now = Utc::now();
        let mut max_usage = |id: &str, cd: &rating::CallDescriptor<'_>| {
            let acc = self.state.accounts.get(cd.tenant, id).ok()??;
            rating::max_usage(&acc, cd, self.plan, self.state.mode, now).ok()
        };
        sort::cost_for_event(
            self.plan,
            ev,
            (&route.account_ids, &route.rating_plan_ids),
            self.state.mode,
            &mut max_usage,
        )
    }

    fn event_cost(&self, ev: &Event) -> Result<Decimal, subsystems::Error> {
        sort::event_cost(self.plan, ev, self.state.mode)
    }

    fn stat_metrics(&self, tenant: &str, id: &str) -> Option<BTreeMap<String, f64>> {
        super::stats::float_metrics(self.state, tenant, id)
    }

    fn resource_usage(&self, tenant: &str, id: &str) -> Option<f64> {
        super::resources::usage(self.state, tenant, id).map(|(used, _)| used)
    }
}

fn sort_for(
    state: &State,
    ev: &Event,
    opts: &GetRoutesOpts,
) -> Result<Vec<SortedRoutes>, RpcError> {
    let profiles = state.profiles.current();
    let plan = rating::TariffStore::current(&state.plan);
    let ctx = FilterCtx {
        filters: &profiles.filters,
        plan: Some(&plan),
        now: Utc::now(),
    };
    let matching = profiles
        .routes
        .matching(&ctx, ev)
        .map_err(|e| rpc_error(&e))?;
    let live = Live { state, plan: &plan };
    subsystems::routes::sorted_routes(&matching, &ctx, ev, &live, opts).map_err(|e| rpc_error(&e))
}

fn answer(list: &[SortedRoutes], suppliers: bool) -> Value {
    if suppliers {
        // v0.10 answers the one best profile.
        list.first().map_or(Value::Null, |sr| sr.to_json(true))
    } else {
        Value::Array(list.iter().map(|sr| sr.to_json(false)).collect())
    }
}

/// The CGREvent of the arguments, checked as CGRateS does (`ID` and
/// `Event` are mandatory).
fn event_arg(params: &Value, ty: &str) -> Result<(Map<String, Value>, Event), RpcError> {
    let m = object(params, ty)?;
    if m.get("ID")
        .and_then(Value::as_str)
        .is_none_or(str::is_empty)
    {
        return Err(mandatory_missing(&["ID"]));
    }
    if !m.get("Event").is_some_and(Value::is_object) {
        return Err(mandatory_missing(&["Event"]));
    }
    let ev = Event::from_cgr_event(params);
    Ok((m, ev))
}

fn bad_opt(name: &str, v: &Value) -> RpcError {
    RpcError::new(
        jsonrpc::code::INVALID_PARAMS,
        format!("invalid {name}: {v}"),
    )
}

/// A count option (a JSON number or its text).
fn count(name: &str, v: Option<&Value>) -> Result<Option<usize>, RpcError> {
    let Some(v) = v.filter(|v| !v.is_null()) else {
        return Ok(None);
    };
    let n = match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse::<u64>().ok(),
        _ => None,
    };
    n.and_then(|n| usize::try_from(n).ok())
        .map(Some)
        .ok_or_else(|| bad_opt(name, v))
}

fn flag(name: &str, v: Option<&Value>) -> Result<bool, RpcError> {
    match v {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(Value::String(s)) if s.eq_ignore_ascii_case("true") => Ok(true),
        Some(Value::String(s)) if s.eq_ignore_ascii_case("false") || s.is_empty() => Ok(false),
        Some(other) => Err(bad_opt(name, other)),
    }
}

fn max_cost(v: Option<&Value>) -> Result<Option<MaxCostOpt>, RpcError> {
    let text = match v {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(s)) => s.trim().to_owned(),
        Some(Value::Number(n)) => n.to_string(),
        Some(other) => return Err(bad_opt("MaxCost", other)),
    };
    match text.as_str() {
        "" => Ok(None),
        "*event_cost" | "*eventCost" => Ok(Some(MaxCostOpt::EventCost)),
        t => Decimal::from_str(t)
            .or_else(|_| Decimal::from_scientific(t))
            .map(|d| Some(MaxCostOpt::Value(d)))
            .map_err(|_| bad_opt("MaxCost", &Value::String(t.to_owned()))),
    }
}

/// The options: master's `APIOpts` (`*limit`, `*offset`, `*maxCost`,
/// `*ignoreErrors`, `*profileCount`) over the top-level arguments of
/// v0.10 (`Limit`, `Offset`, `MaxCost`, `IgnoreErrors`).
fn options(
    top: &Map<String, Value>,
    ev: &Event,
    suppliers: bool,
) -> Result<GetRoutesOpts, RpcError> {
    let pick = |opt: &str, arg: &str| ev.opts.get(opt).or_else(|| top.get(arg));
    let mut o = GetRoutesOpts {
        ignore_errors: flag("*ignoreErrors", pick("*ignoreErrors", "IgnoreErrors"))?,
        max_cost: max_cost(pick("*maxCost", "MaxCost"))?,
        limit: count("*limit", pick("*limit", "Limit"))?,
        offset: count("*offset", pick("*offset", "Offset"))?,
        ..GetRoutesOpts::default()
    };
    if !suppliers && let Some(n) = count("*profileCount", ev.opts.get("*profileCount"))? {
        o.profile_count = Some(n);
    }
    Ok(o)
}

fn get_routes(state: &State, params: &Value, suppliers: bool) -> Result<Value, RpcError> {
    let ty = if suppliers {
        "engine.ArgsGetSuppliers"
    } else {
        "utils.CGREvent"
    };
    let (top, ev) = event_arg(params, ty)?;
    let opts = options(&top, &ev, suppliers)?;
    let list = sort_for(state, &ev, &opts)?;
    Ok(answer(&list, suppliers))
}

/// `RouteSv1.GetRoutesList`: `RouteID` or `RouteID:RouteParameters` of
/// every route, once each.
fn routes_list(state: &State, params: &Value) -> Result<String, RpcError> {
    let (top, ev) = event_arg(params, "utils.CGREvent")?;
    let opts = options(&top, &ev, false)?;
    let list = sort_for(state, &ev, &opts)?;
    let mut seen = std::collections::BTreeSet::new();
    let out: Vec<Value> = list
        .iter()
        .flat_map(SortedRoutes::with_params)
        .filter(|r| seen.insert(r.clone()))
        .map(Value::String)
        .collect();
    Ok(Value::Array(out).to_string())
}

fn profiles_for_event(state: &State, params: &Value, suppliers: bool) -> Result<String, RpcError> {
    let (_, ev) = event_arg(params, "utils.CGREvent")?;
    let profiles = state.profiles.current();
    let plan = rating::TariffStore::current(&state.plan);
    let ctx = FilterCtx {
        filters: &profiles.filters,
        plan: Some(&plan),
        now: Utc::now(),
    };
    let matching = profiles
        .routes
        .matching(&ctx, &ev)
        .map_err(|e| rpc_error(&e))?;
    let out: Vec<Value> = matching.iter().map(|p| p.to_json(suppliers)).collect();
    Ok(Value::Array(out).to_string())
}
