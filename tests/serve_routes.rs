//! RouteS over `accurate serve`'s API: the `routes` plan (three suppliers
//! on three rating plans; Routes.csv and v0.10's Suppliers.csv), sorted by
//! weight, least and highest cost (their real costs), with route filters,
//! a blocker, MaxCost, profile count, limit and offset.
#![allow(clippy::unwrap_used, dead_code)]

use std::path::PathBuf;

use serde_json::{Value, json};

mod serve_common;

use serve_common::*;

fn plan_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/tariffplans/routes")
}

fn start() -> Server {
    let dir = plan_dir();
    Server::start(&["--tariffplan", dir.to_str().unwrap()])
}

fn event(account: &str, destination: &str, usage: Option<&str>, opts: Value) -> Value {
    let mut ev = json!({
        "Account": account,
        "Destination": destination,
        "SetupTime": "2024-03-01T10:00:00Z",
    });
    if let Some(u) = usage {
        ev["Usage"] = json!(u);
    }
    json!({"Tenant": "cgrates.org", "ID": "ev1", "Event": ev, "APIOpts": opts})
}

/// (ProfileID, [RouteID]) per profile of a `RouteSv1.GetRoutes` answer.
fn order(v: &Value) -> Vec<(String, Vec<String>)> {
    v.as_array()
        .unwrap_or_else(|| panic!("not a list: {v}"))
        .iter()
        .map(|p| {
            let ids = p["Routes"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["RouteID"].as_str().unwrap().to_owned())
                .collect();
            (p["ProfileID"].as_str().unwrap().to_owned(), ids)
        })
        .collect()
}

fn one(profile: &str, ids: &[&str]) -> Vec<(String, Vec<String>)> {
    vec![(
        profile.to_owned(),
        ids.iter().map(|s| (*s).to_owned()).collect(),
    )]
}

#[test]
fn least_and_highest_cost_by_the_real_costs() {
    let s = start();
    // A minute (no Usage): alpha 0.60, beta 0.10 + 0.30, gamma 1.20.
    let r = rpc(
        &s,
        "RouteSv1.GetRoutes",
        event("1001", "4930", None, json!({})),
    );
    assert_eq!(order(&r), one("ROUTE_LC", &["beta", "alpha", "gamma"]));
    assert_eq!(r[0]["Sorting"], "*lc");
    let beta = &r[0]["Routes"][0];
    assert_eq!(beta["RouteParameters"], "gw-beta");
    assert_eq!(dec(&beta["SortingData"]["Cost"].to_string()), dec("0.4"));
    assert_eq!(beta["SortingData"]["RatingPlanID"], "RP_BETA");
    assert_eq!(beta["SortingData"]["Weight"], 20);
    // Ten seconds: alpha 0.10, beta 0.15, gamma 0.20.
    let r = rpc(
        &s,
        "RouteSv1.GetRoutes",
        event("1001", "4930", Some("10s"), json!({})),
    );
    assert_eq!(order(&r), one("ROUTE_LC", &["alpha", "beta", "gamma"]));
    let r = rpc(
        &s,
        "RouteSv1.GetRoutes",
        event("1002", "4930", None, json!({})),
    );
    assert_eq!(order(&r), one("ROUTE_HC", &["gamma", "alpha", "beta"]));
    assert_eq!(
        dec(&r[0]["Routes"][0]["SortingData"]["Cost"].to_string()),
        dec("1.2")
    );
    // Only gamma's plan prices the UK: the others have no cost, left out.
    let r = rpc(
        &s,
        "RouteSv1.GetRoutes",
        event("1001", "4420", None, json!({})),
    );
    assert_eq!(order(&r), one("ROUTE_LC", &["gamma"]));
    // MaxCost leaves out the dearer routes.
    let r = rpc(
        &s,
        "RouteSv1.GetRoutes",
        event("1001", "4930", None, json!({"*maxCost": "0.6"})),
    );
    assert_eq!(order(&r), one("ROUTE_LC", &["beta", "alpha"]));
    // *event_cost: the event's own cost (RP_ALPHA, 0.60) is the limit.
    let r = rpc(
        &s,
        "RouteSv1.GetRoutes",
        event("1001", "4930", None, json!({"*maxCost": "*event_cost"})),
    );
    assert_eq!(order(&r), one("ROUTE_LC", &["beta", "alpha"]));
    // Costing needs the SetupTime.
    let e = rpc(
        &s,
        "RouteSv1.GetRoutes",
        json!({"ID": "x", "Event": {"Account": "1001", "Destination": "4930"}}),
    );
    assert_eq!(err(&e), "SERVER_ERROR: MANDATORY_IE_MISSING: [SetupTime]");
    let list = rpc(
        &s,
        "RouteSv1.GetRoutesList",
        event("1001", "4930", None, json!({})),
    );
    assert_eq!(
        list,
        json!(["beta:gw-beta", "alpha:gw-alpha", "gamma:gw-gamma"])
    );
}

#[test]
fn weight_filters_blocker_profiles_limit_offset() {
    let s = start();
    // gamma 30, then beta 20, a blocker: alpha is cut; uk_only's filter fails.
    let r = rpc(
        &s,
        "RouteSv1.GetRoutes",
        event("1003", "4930", None, json!({})),
    );
    assert_eq!(order(&r), one("ROUTE_WEIGHT", &["gamma", "beta"]));
    assert_eq!(r[0]["Routes"][1]["SortingData"]["Blocker"], true);
    assert_eq!(r[0]["Routes"][0]["SortingData"], json!({"Weight": 30}));
    let r = rpc(
        &s,
        "RouteSv1.GetRoutes",
        event("1003", "4420", None, json!({})),
    );
    assert_eq!(
        order(&r),
        one("ROUTE_WEIGHT", &["uk_only", "gamma", "beta"])
    );
    // Both matching profiles, the heavier first.
    let r = rpc(
        &s,
        "RouteSv1.GetRoutes",
        event("1003", "4930", None, json!({"*profileCount": 2})),
    );
    assert_eq!(
        order(&r),
        vec![
            (
                "ROUTE_WEIGHT".to_owned(),
                vec!["gamma".into(), "beta".into()]
            ),
            ("ROUTE_BACKUP".to_owned(), vec!["delta".into()]),
        ]
    );
    let r = rpc(
        &s,
        "RouteSv1.GetRoutes",
        event(
            "1003",
            "4930",
            None,
            json!({"*profileCount": 2, "*offset": 1, "*limit": 2}),
        ),
    );
    assert_eq!(
        order(&r),
        vec![
            ("ROUTE_WEIGHT".to_owned(), vec!["beta".into()]),
            ("ROUTE_BACKUP".to_owned(), vec!["delta".into()]),
        ]
    );
    let r = rpc(
        &s,
        "RouteSv1.GetRoutes",
        event("1003", "4930", None, json!({"*limit": 1})),
    );
    assert_eq!(order(&r), one("ROUTE_WEIGHT", &["gamma"]));
    let profiles = rpc(
        &s,
        "RouteSv1.GetRouteProfilesForEvent",
        event("1003", "4930", None, json!({})),
    );
    assert_eq!(profiles[0]["ID"], "ROUTE_WEIGHT");
    assert_eq!(profiles[1]["ID"], "ROUTE_BACKUP");
    assert_eq!(
        profiles[0]["Routes"][3]["FilterIDs"],
        json!(["FLTR_DST_UK"])
    );
    // No profile for the account; bad arguments.
    let e = rpc(
        &s,
        "RouteSv1.GetRoutes",
        event("9999", "4930", None, json!({})),
    );
    assert_eq!(err(&e), "NOT_FOUND");
    let e = rpc(
        &s,
        "RouteSv1.GetRoutes",
        json!({"Event": {"Account": "1003"}}),
    );
    assert_eq!(err(&e), "MANDATORY_IE_MISSING: [ID]");
    let e = rpc(
        &s,
        "RouteSv1.GetRoutes",
        event("1003", "4930", None, json!({"*limit": "many"})),
    );
    assert!(err(&e).contains("*limit"), "{e}");
    assert_eq!(rpc(&s, "RouteSv1.Ping", json!({})), json!("Pong"));
    let e = rpc(&s, "RouteSv1.Nope", json!({}));
    assert_eq!(err(&e), "rpc: can't find method RouteSv1.Nope");
}

#[test]
fn v010_supplier_shapes() {
    let s = start();
    let args = json!({
        "Tenant": "cgrates.org",
        "ID": "ev2",
        "Event": {
            "Account": "1004",
            "Destination": "4930",
            "SetupTime": "2024-03-01T10:00:00Z",
            "Usage": "60s"
        },
        "Limit": 2
    });
    let r = rpc(&s, "SupplierSv1.GetSuppliers", args.clone());
    assert_eq!(r["ProfileID"], "SPL_LC");
    assert_eq!(r["Sorting"], "*least_cost");
    assert_eq!(r["Count"], 2);
    let spl = r["SortedSuppliers"].as_array().unwrap();
    assert_eq!(spl[0]["SupplierID"], "beta");
    assert_eq!(spl[1]["SupplierID"], "alpha");
    assert_eq!(spl[0]["SupplierParameters"], "");
    assert_eq!(dec(&spl[1]["SortingData"]["Cost"].to_string()), dec("0.6"));
    let mut capped = args.clone();
    capped["MaxCost"] = json!("0.5");
    capped["Offset"] = json!(0);
    let r = rpc(&s, "SupplierSv1.GetSuppliers", capped);
    assert_eq!(r["Count"], 1);
    let p = rpc(&s, "SupplierSv1.GetSupplierProfilesForEvent", args);
    assert_eq!(p[0]["Suppliers"][2]["ID"], "gamma");
    assert_eq!(p[0]["Suppliers"][2]["RatingPlanIDs"], json!(["RP_GAMMA"]));
    assert_eq!(rpc(&s, "SupplierSv1.Ping", json!({})), json!("Pong"));
}

#[test]
fn account_balances_then_rating_plans() {
    let s = start();
    // delta's account pays 20 s from its minutes, RP_GAMMA the other 40 s
    // (0.80); alpha costs 0.60 a minute.
    let r = rpc(
        &s,
        "RouteSv1.GetRoutes",
        event("1005", "4930", None, json!({})),
    );
    assert_eq!(order(&r), one("ROUTE_ACCOUNT", &["alpha", "delta"]));
    let delta = &r[0]["Routes"][1]["SortingData"];
    assert_eq!(dec(&delta["Cost"].to_string()), dec("0.8"));
    assert_eq!(delta["Account"], "carrier_delta");
    assert_eq!(delta["MaxUsage"], 20_000_000_000_u64);
    assert_eq!(delta["RatingPlanID"], "RP_GAMMA");
    // 20 s: the account pays all of it, nothing to pay on the plan.
    let r = rpc(
        &s,
        "RouteSv1.GetRoutes",
        event("1005", "4930", Some("20s"), json!({})),
    );
    assert_eq!(order(&r), one("ROUTE_ACCOUNT", &["delta", "alpha"]));
    assert_eq!(r[0]["Routes"][0]["SortingData"]["Cost"], 0);
}
