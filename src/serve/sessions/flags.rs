//! The subsystems a SessionSv1 call's flags ask for, in CGRateS v0.10's
//! shapes: AttributeS before anything (context: the event's `*context`
//! option, else `*sessions`; the event it
//! returns is the one charged), then the call's ChargerS runs, ResourceS,
//! RouteS/SupplierS, ThresholdS and StatS through the hooks of
//! `serve::subsys`. A subsystem whose file the plan does not have answers
//! CGRateS's "not connected" errors, as before AccuRate ran it.

use std::sync::atomic::{AtomicU64, Ordering};

use chrono::Utc;
use jsonrpc::RpcError;
use serde_json::{Map, Value, json};
use sessions::SessionEvent;
use sha1::{Digest, Sha1};
use subsystems::Event;

use super::derive::{self, CONTEXT_SESSIONS, DeriveError};
use crate::serve::methods::State;
use crate::serve::subsys::{resources, routes, stats, thresholds};

/// A session call's event after AttributeS, and its runs.
pub(crate) struct Prepared {
    /// The event the other subsystems see (after AttributeS).
    pub event: Event,
    /// The `Attributes` reply (`AttrSProcessEventReply`) or null.
    pub attributes: Value,
    /// The charging runs (one when the plan has no chargers).
    pub runs: Vec<SessionEvent>,
}

/// CGRateS's error for a subsystem whose connection is not configured.
pub(crate) fn not_connected(service: &str) -> RpcError {
    RpcError::server(format!("NOT_CONNECTED: {service}"))
}

/// `GetAttributes` / `*attributes` without AttributeS: CGRateS wraps the
/// connection error.
pub(crate) fn attributes_not_connected() -> RpcError {
    RpcError::server("ATTRIBUTES_ERROR:NOT_CONNECTED: AttributeS")
}

/// A string list argument (`AttributeIDs`, `ThresholdIDs`, `StatIDs`);
/// `None` when absent or null.
pub(crate) fn ids(m: &Map<String, Value>, key: &str) -> Result<Option<Vec<String>>, RpcError> {
    match m.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => serde_json::from_value(v.clone()).map(Some).map_err(|_| {
            RpcError::new(
                jsonrpc::code::INVALID_PARAMS,
                format!(
                    "json: cannot unmarshal {} into Go struct field .{key} of type []string",
                    jsonrpc::kind(v)
                ),
            )
        }),
    }
}

/// The event of `m`, through AttributeS when `attrs` (with only
/// `attr_ids` when given), then split into its ChargerS runs. Without
/// attributes asked and without chargers it is today's one event.
///
/// # Errors
/// `ATTRIBUTES_ERROR:...`, `CHARGERS_ERROR:...`, the event's own errors.
pub(crate) fn prepare(
    state: &State,
    m: &Map<String, Value>,
    base: SessionEvent,
    attrs: bool,
    attr_ids: Option<Vec<String>>,
) -> Result<Prepared, RpcError> {
    let mut event = Event::from_cgr_event(&Value::Object(m.clone()));
    let mut attributes = Value::Null;
    if !attrs && !super::super::subsys::chargers::enabled(state) {
        return Ok(Prepared {
            event,
            attributes,
            runs: vec![base],
        });
    }
    let now = Utc::now();
    if attrs {
        if !state.profiles.current().has("Attributes.csv") {
            return Err(attributes_not_connected());
        }
        match derive::attributes(
            state,
            event.clone(),
            attr_context(&event),
            attr_ids.unwrap_or_default(),
            now,
        ) {
            Ok(r) => {
                attributes = r.to_json();
                event = r.event;
            }
            Err(subsystems::Error::NotFound) => {}
            Err(e) => return Err(RpcError::server(format!("ATTRIBUTES_ERROR:{e}"))),
        }
    }
    let owner = super::super::sessionsapi::current_owner();
    let runs = derive::runs(state, &event, &owner, now).map_err(|e| match e {
        DeriveError::Subsys(e) => RpcError::server(format!("CHARGERS_ERROR:{e}")),
        DeriveError::Session(e) => super::super::sessionsapi::session_error(&e),
    })?;
    Ok(Prepared {
        event,
        attributes,
        runs,
    })
}

/// The AttributeS context of a session call: the event's `*context`
/// option when set (an agent's `cgr_context`, e.g. Kamailio's
/// `simpleauth`), else `*sessions`, as CGRateS's SessionS.
fn attr_context(event: &Event) -> &str {
    match event.opts.get("*context") {
        Some(Value::String(c)) if !c.is_empty() => c,
        _ => CONTEXT_SESSIONS,
    }
}

/// What ResourceS is asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ResOp {
    /// `AuthorizeResources`.
    Authorize,
    /// `AllocateResources`.
    Allocate,
    /// `ReleaseResources`.
    Release,
}

/// ResourceS for a session (units 1, the usage ID its OriginID, as
/// v0.10): the allocation message (authorize, allocate), or null.
///
/// # Errors
/// `NOT_CONNECTED: ResourceS` without Resources.csv; `RESOURCES_ERROR:...`.
pub(crate) fn resources_op(state: &State, p: &Prepared, op: ResOp) -> Result<Value, RpcError> {
    if !state.profiles.current().has("Resources.csv") {
        return Err(not_connected("ResourceS"));
    }
    let usage_id = usage_id(&p.event, op)?;
    let wrap = |e: RpcError| RpcError::server(format!("RESOURCES_ERROR:{}", e.message));
    Ok(match op {
        ResOp::Authorize => {
            json!(resources::authorize(state, &p.event, &usage_id, 1.0).map_err(wrap)?)
        }
        ResOp::Allocate => {
            json!(resources::allocate(state, &p.event, &usage_id, 1.0).map_err(wrap)?)
        }
        ResOp::Release => {
            resources::release(state, &p.event, &usage_id).map_err(wrap)?;
            Value::Null
        }
    })
}

/// The resource usage ID of a session call: its OriginID. An
/// authorization without one gets a fresh ID (CGRateS's
/// `UUIDSha1Prefix()`: Kamailio's tutorial CGR_AUTH_REQUEST has no
/// OriginID); allocating and releasing need it (`MANDATORY_IE_MISSING`).
fn usage_id(event: &Event, op: ResOp) -> Result<String, RpcError> {
    let id = event.text("OriginID").into_owned();
    if !id.is_empty() {
        return Ok(id);
    }
    if op != ResOp::Authorize {
        return Err(crate::serve::methods::mandatory_missing(&["OriginID"]));
    }
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let seq = SEQ.fetch_add(1, Ordering::Relaxed);
    let now = Utc::now().timestamp_nanos_opt().unwrap_or_default();
    let digest = Sha1::digest(format!("{now}:{}:{seq}", std::process::id()));
    let mut hex: String = digest.iter().take(4).map(|b| format!("{b:02x}")).collect();
    hex.truncate(7);
    Ok(hex)
}

/// v0.10's route arguments of a session call and the options CGRateS
/// master reads them from.
const ROUTE_ARGS: &[(&str, &str)] = &[
    ("SuppliersMaxCost", "*routesMaxCost"),
    ("RoutesMaxCost", "*routesMaxCost"),
    ("SuppliersIgnoreErrors", "*routesIgnoreErrors"),
    ("RoutesIgnoreErrors", "*routesIgnoreErrors"),
    ("Limit", "*routesLimit"),
    ("Offset", "*routesOffset"),
];

/// RouteS (`suppliers`: v0.10's SupplierS shape) for the event; the
/// call's `SuppliersMaxCost`, `SuppliersIgnoreErrors`, `Limit` and
/// `Offset` (v0.10) go to RouteS as master's options.
///
/// # Errors
/// `NOT_CONNECTED` without Routes.csv/Suppliers.csv;
/// `ROUTES_ERROR:...` / `SUPPLIERS_ERROR:...`.
pub(crate) fn routes_op(
    state: &State,
    p: &Prepared,
    m: &Map<String, Value>,
    suppliers: bool,
) -> Result<Value, RpcError> {
    let profiles = state.profiles.current();
    let name = if suppliers { "SupplierS" } else { "RouteS" };
    if !profiles.has("Routes.csv") && !profiles.has("Suppliers.csv") {
        return Err(not_connected(name));
    }
    let mut ev = p.event.clone();
    for (arg, opt) in ROUTE_ARGS {
        match m.get(*arg) {
            None | Some(Value::Null) => {}
            Some(Value::String(s)) if s.is_empty() => {}
            Some(v) => {
                ev.opts.insert((*opt).to_owned(), v.clone());
            }
        }
    }
    routes::sorted_routes(state, &ev, suppliers).map_err(|e| {
        let what = if suppliers { "SUPPLIERS" } else { "ROUTES" };
        RpcError::server(format!("{what}_ERROR:{}", e.message))
    })
}

/// ThresholdS and StatS after the rest, as v0.10: the IDs hit (null when
/// not asked or none), and whether one failed (a subsystem the plan does
/// not have fails: the reply becomes `PARTIALLY_EXECUTED`).
pub(crate) struct Late {
    /// `ThresholdIDs`.
    pub thresholds: Value,
    /// `StatQueueIDs`.
    pub stats: Value,
    /// One failed.
    pub failed: bool,
}

/// Whether a subsystem is asked, and for which IDs only (`None`: all).
pub(crate) type Asked = Option<Option<Vec<String>>>;

/// Runs ThresholdS (`th`: asked, with only those IDs when given) and
/// StatS (`st`) on the event.
pub(crate) fn late(state: &State, ev: &Event, th: Asked, st: Asked) -> Late {
    let profiles = state.profiles.current();
    let mut out = Late {
        thresholds: Value::Null,
        stats: Value::Null,
        failed: false,
    };
    let list = |r: Result<Vec<String>, RpcError>, failed: &mut bool| match r {
        Ok(v) if v.is_empty() => Value::Null,
        Ok(v) => json!(v),
        Err(e) if e.message == "NOT_FOUND" => Value::Null,
        Err(_) => {
            *failed = true;
            Value::Null
        }
    };
    if let Some(ids) = th {
        if profiles.has("Thresholds.csv") {
            out.thresholds = list(
                thresholds::process_event(state, ev, ids.as_deref()),
                &mut out.failed,
            );
        } else {
            out.failed = true;
        }
    }
    if let Some(ids) = st {
        if profiles.has("Stats.csv") {
            out.stats = list(
                stats::process_event(state, ev, ids.as_deref()),
                &mut out.failed,
            );
        } else {
            out.failed = true;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use subsystems::Event;

    use super::{ResOp, attr_context, usage_id};

    #[test]
    fn attribute_context_from_the_events_options() {
        // what the Kamailio agent sends for a simpleauth CGR_AUTH_REQUEST
        let ev = Event::from_cgr_event(&json!({"Tenant": "cgrates.org",
            "Event": {"Account": "1001"}, "GetAttributes": true,
            "APIOpts": {"*context": "simpleauth"}}));
        assert_eq!(attr_context(&ev), "simpleauth");
        let ev = Event::from_cgr_event(&json!({"Event": {"Account": "1001"},
            "APIOpts": {"*context": ""}}));
        assert_eq!(attr_context(&ev), "*sessions");
        let ev = Event::from_cgr_event(&json!({"Event": {"Account": "1001"}}));
        assert_eq!(attr_context(&ev), "*sessions");
    }

    #[test]
    fn resource_usage_id_without_origin_id() {
        // Kamailio's tutorial CGR_AUTH_REQUEST (flags *resources...): no OriginID
        let ev = Event::from_cgr_event(&json!({"Tenant": "cgrates.org",
            "Event": {"Account": "1001", "Destination": "1002",
                "SetupTime": "1700000000"}, "AuthorizeResources": true}));
        let a = usage_id(&ev, ResOp::Authorize).unwrap();
        let b = usage_id(&ev, ResOp::Authorize).unwrap();
        assert_eq!(a.len(), 7);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()), "{a}");
        assert_ne!(a, b);
        for op in [ResOp::Allocate, ResOp::Release] {
            let e = usage_id(&ev, op).unwrap_err();
            assert!(e.message.contains("MANDATORY_IE_MISSING"), "{}", e.message);
        }
        let ev = Event::from_cgr_event(&json!({"Event": {"OriginID": "abc;12"}}));
        assert_eq!(usage_id(&ev, ResOp::Allocate).unwrap(), "abc;12");
    }
}
