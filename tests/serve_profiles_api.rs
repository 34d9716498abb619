//! The v0.10 APIerSv1 profile setters and removers (attributes, chargers,
//! resources, thresholds, stat queues, routes / v0.10's suppliers) and the getters they pair with:
//! a set profile is used at once, a restart keeps the API's changes, and
//! a restart with the folder (a plan load) brings back the IDs the folder
//! defines while keeping the API-set ones it does not.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

use serde_json::{Value, json};

mod serve_common;

use serve_common::*;

fn plan_dir() -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/tariffplans/profiles_api")
        .to_str()
        .unwrap()
        .to_owned()
}

fn stop(mut s: Server) {
    let (status, _) = s.signal("-TERM");
    assert!(status.success(), "{status:?}");
}

/// One kind: its method names' stem and a profile `API_1` to set.
struct Kind {
    stem: &'static str,
    api: Value,
    /// A field of the profile and the value `api` gives it.
    check: (&'static str, Value),
}

fn kinds() -> Vec<Kind> {
    vec![
        Kind {
            stem: "AttributeProfile",
            api: json!({"Tenant": "cgrates.org", "ID": "API_1", "Contexts": ["*any"],
                "FilterIDs": ["*string:~*req.Account:1003"],
                "Attributes": [
                    {"FilterIDs": [], "Path": "*req.Category", "Type": "*constant",
                     "Value": [{"Rules": "api_1"}]},
                    {"Path": "*req.Subject", "Type": "*constant", "Value": "subj_api"}],
                "Blocker": false, "Weight": 30}),
            check: ("Contexts", json!(["*any"])),
        },
        Kind {
            stem: "ChargerProfile",
            api: json!({"Tenant": "cgrates.org", "ID": "API_1",
                "FilterIDs": ["*string:~*req.Account:1003"],
                "RunID": "api_run", "AttributeIDs": ["*none"], "Weight": 30}),
            check: ("RunID", json!("api_run")),
        },
        Kind {
            stem: "ResourceProfile",
            api: json!({"Tenant": "cgrates.org", "ID": "API_1",
                "FilterIDs": ["*string:~*req.Account:1003"], "UsageTTL": 60_000_000_000_i64,
                "Limit": 1, "AllocationMessage": "API_ONE", "Blocker": false,
                "Stored": false, "Weight": 30, "ThresholdIDs": ["*none"]}),
            check: ("UsageTTL", json!(60_000_000_000_i64)),
        },
        Kind {
            stem: "ThresholdProfile",
            api: json!({"Tenant": "cgrates.org", "ID": "API_1",
                "FilterIDs": ["*string:~*req.Account:1003"], "MaxHits": -1, "MinHits": 1,
                "MinSleep": 1_000_000_000, "Blocker": false, "Weight": 30,
                "ActionIDs": [], "Async": false}),
            check: ("MinSleep", json!(1_000_000_000)),
        },
        Kind {
            stem: "StatQueueProfile",
            api: json!({"Tenant": "cgrates.org", "ID": "API_1",
                "FilterIDs": ["*string:~*req.Account:1003"], "QueueLength": 5, "TTL": 0,
                "MinItems": 0, "Metrics": [{"MetricID": "*tcd", "FilterIDs": []},
                    {"MetricID": "*acd", "FilterIDs": ["*gt:~*req.Usage:0"]}],
                "Stored": false, "Blocker": false, "Weight": 30, "ThresholdIDs": ["*none"]}),
            check: ("QueueLength", json!(5)),
        },
        Kind {
            stem: "RouteProfile",
            api: json!({"Tenant": "cgrates.org", "ID": "API_1",
                "FilterIDs": ["*string:~*req.Account:1003"], "Sorting": "*weight",
                "SortingParameters": [], "Routes": [
                    {"ID": "r1", "FilterIDs": [], "Weight": 10, "Blocker": false},
                    {"ID": "r2", "Weight": 20, "RouteParameters": "gw2"}],
                "Weight": 30}),
            check: ("Sorting", json!("*weight")),
        },
    ]
}

fn get(s: &Server, stem: &str, id: &str) -> Value {
    rpc(
        s,
        &format!("APIerSv1.Get{stem}"),
        json!({"Tenant": "cgrates.org", "ID": id}),
    )
}

/// The profile's Weight as a number (the subsystems keep it as f64 or
/// decimal).
fn weight(v: &Value) -> f64 {
    v["Weight"]
        .as_f64()
        .unwrap_or_else(|| panic!("no Weight in {v}"))
}

#[test]
fn set_get_remove_restart_and_plan_load() {
    let data = temp_data_dir();
    let data_arg = data.to_str().unwrap().to_owned();
    let plan = plan_dir();
    let s = Server::start(&["--tariffplan", &plan, "--data-dir", &data_arg]);

    for k in kinds() {
        let set = format!("APIerSv1.Set{}", k.stem);
        let remove = format!("APIerSv1.Remove{}", k.stem);
        assert_eq!(weight(&get(&s, k.stem, "PLAN_A")), 10.0, "{}", k.stem);
        assert_eq!(err(&get(&s, k.stem, "API_1")), "NOT_FOUND", "{}", k.stem);
        // A new profile, read back in v0.10's shape.
        assert_eq!(rpc(&s, &set, k.api.clone()), json!("OK"), "{}", k.stem);
        let got = get(&s, k.stem, "API_1");
        assert_eq!(got["ID"], "API_1", "{}: {got}", k.stem);
        assert_eq!(got["FilterIDs"], json!(["*string:~*req.Account:1003"]));
        assert_eq!(got[k.check.0], k.check.1, "{}: {got}", k.stem);
        assert_eq!(weight(&got), 30.0);
        // A plan profile replaced (nested under the type's name, as a
        // v0.10 client may send it), another removed.
        let mut a = k.api.clone();
        a["ID"] = json!("PLAN_A");
        a["Weight"] = json!(99);
        a["FilterIDs"] = json!(["*string:~*req.Account:1001"]);
        assert_eq!(
            rpc(&s, &set, json!({ k.stem: a, "Cache": "*reload" })),
            json!("OK")
        );
        assert_eq!(weight(&get(&s, k.stem, "PLAN_A")), 99.0, "{}", k.stem);
        let b = json!({"Tenant": "cgrates.org", "ID": "PLAN_B"});
        assert_eq!(rpc(&s, &remove, b.clone()), json!("OK"));
        assert_eq!(err(&get(&s, k.stem, "PLAN_B")), "NOT_FOUND");
        assert_eq!(err(&rpc(&s, &remove, b)), "NOT_FOUND");
        // Bad input: a clear error, nothing changed.
        assert_eq!(
            err(&rpc(&s, &set, json!({"Tenant": "cgrates.org"}))),
            "MANDATORY_IE_MISSING: [ID]"
        );
        let mut bad = k.api.clone();
        bad["ID"] = json!("API_BAD");
        bad["Weight"] = json!("heavy");
        let e = err(&rpc(&s, &set, bad));
        assert!(e.starts_with("SERVER_ERROR:"), "{}: {e}", k.stem);
        assert!(e.contains("heavy"), "{}: {e}", k.stem);
        assert_eq!(err(&get(&s, k.stem, "API_BAD")), "NOT_FOUND");
    }

    // The IDs, sorted, paginated.
    for stem in [
        "ResourceProfile",
        "ThresholdProfile",
        "StatQueueProfile",
        "RouteProfile",
        "SupplierProfile",
    ] {
        let m = format!("APIerSv1.Get{stem}IDs");
        assert_eq!(
            rpc(&s, &m, json!({"Tenant": "cgrates.org"})),
            json!(["API_1", "PLAN_A"]),
            "{stem}"
        );
        assert_eq!(
            rpc(
                &s,
                &m,
                json!({"Tenant": "cgrates.org", "Limit": 1, "Offset": 1})
            ),
            json!(["PLAN_A"]),
            "{stem}"
        );
        assert_eq!(
            err(&rpc(&s, &m, json!({"Tenant": "nobody.org"}))),
            "NOT_FOUND"
        );
    }

    // The set profiles are in force.
    let ev = json!({"Tenant": "cgrates.org", "ID": "e1", "Context": "*sessions",
        "Event": {"Account": "1003", "Destination": "4930"}});
    let r = rpc(&s, "AttributeSv1.ProcessEvent", ev.clone());
    assert_eq!(r["MatchedProfiles"], json!(["API_1"]), "{r}");
    assert_eq!(r["CGREvent"]["Event"]["Category"], "api_1");
    assert_eq!(r["CGREvent"]["Event"]["Subject"], "subj_api");
    let runs = rpc(&s, "ChargerSv1.ProcessEvent", ev.clone());
    let ids: Vec<&str> = runs
        .as_array()
        .unwrap_or_else(|| panic!("{runs}"))
        .iter()
        .map(|r| r["ChargerSProfile"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["API_1"], "{runs}");
    let usage = |id: &str| {
        json!({"Tenant": "cgrates.org", "ID": id, "UsageID": id, "Units": 1,
            "Event": {"Account": "1003"}})
    };
    assert_eq!(
        rpc(&s, "ResourceSv1.AllocateResources", usage("u1")),
        json!("API_ONE")
    );
    assert_eq!(
        err(&rpc(&s, "ResourceSv1.AuthorizeResources", usage("u2"))),
        "RESOURCE_UNAUTHORIZED"
    );
    let r = rpc(&s, "ThresholdSv1.ProcessEvent", ev.clone());
    assert_eq!(r, json!(["API_1"]));
    let r = rpc(&s, "RouteSv1.GetRoutes", ev.clone());
    let routes: Vec<&str> = r[0]["Routes"]
        .as_array()
        .unwrap_or_else(|| panic!("{r}"))
        .iter()
        .map(|x| x["RouteID"].as_str().unwrap())
        .collect();
    assert_eq!(routes, ["r2", "r1"], "{r}");
    // v0.10's supplier names, the same profiles.
    let sup = json!({"Tenant": "cgrates.org", "ID": "API_SUP", "Sorting": "*weight",
        "Suppliers": [{"ID": "s1", "Weight": 5, "SupplierParameters": "gw"}], "Weight": 5});
    assert_eq!(rpc(&s, "APIerSv1.SetSupplierProfile", sup), json!("OK"));
    let got = get(&s, "SupplierProfile", "API_SUP");
    assert_eq!(got["Suppliers"][0]["SupplierParameters"], "gw", "{got}");
    assert_eq!(get(&s, "RouteProfile", "API_SUP")["Routes"][0]["ID"], "s1");
    assert_eq!(
        rpc(
            &s,
            "APIerSv1.RemoveSupplierProfile",
            json!({"ID": "API_SUP"})
        ),
        json!("OK")
    );
    assert_eq!(err(&get(&s, "RouteProfile", "API_SUP")), "NOT_FOUND");
    stop(s);

    // A restart from the store alone keeps the API's changes.
    let s = Server::start(&["--data-dir", &data_arg]);
    for k in kinds() {
        let got = get(&s, k.stem, "API_1");
        assert_eq!(got[k.check.0], k.check.1, "{}: {got}", k.stem);
        assert_eq!(weight(&get(&s, k.stem, "PLAN_A")), 99.0, "{}", k.stem);
        assert_eq!(err(&get(&s, k.stem, "PLAN_B")), "NOT_FOUND", "{}", k.stem);
    }
    stop(s);

    // A restart with the folder: the folder's IDs come back as it defines
    // them, API_1 (which it does not define) stays.
    let s = Server::start(&["--tariffplan", &plan, "--data-dir", &data_arg]);
    for k in kinds() {
        assert_eq!(weight(&get(&s, k.stem, "PLAN_A")), 10.0, "{}", k.stem);
        assert_eq!(weight(&get(&s, k.stem, "PLAN_B")), 10.0, "{}", k.stem);
        let got = get(&s, k.stem, "API_1");
        assert_eq!(got[k.check.0], k.check.1, "{}: {got}", k.stem);
    }
    // And that stays so over one more restart from the store.
    stop(s);
    let s = Server::start(&["--data-dir", &data_arg]);
    for k in kinds() {
        assert_eq!(weight(&get(&s, k.stem, "PLAN_A")), 10.0, "{}", k.stem);
        assert_eq!(weight(&get(&s, k.stem, "PLAN_B")), 10.0, "{}", k.stem);
        assert_eq!(get(&s, k.stem, "API_1")["ID"], "API_1", "{}", k.stem);
    }
    stop(s);
}
