//! FilterS's API (`APIerSv1.GetFilter`, `SetFilter`, `RemoveFilter`,
//! `GetFilterIDs`) on a served plan with a Filters.csv, and what a restart
//! keeps: the API's changes survive a restart without `--tariffplan`; a
//! restart (or a load) with the folder brings the folder's filters back
//! and keeps the API-set filters it does not define.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

use serde_json::{Value, json};

mod serve_common;

use serve_common::*;

fn plan_dir() -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/tariffplans/filters")
        .to_str()
        .unwrap()
        .to_owned()
}

fn ids(s: &Server, params: Value) -> Value {
    rpc(s, "APIerSv1.GetFilterIDs", params)
}

fn get(s: &Server, id: &str) -> Value {
    rpc(
        s,
        "APIerSv1.GetFilter",
        json!({"Tenant": "cgrates.org", "ID": id}),
    )
}

fn stop(mut s: Server) {
    let (status, _) = s.signal("-TERM");
    assert!(status.success(), "{status:?}");
}

#[test]
fn set_get_ids_remove_and_a_restart_keeps_the_api_filters() {
    let data = temp_data_dir();
    let data_arg = data.to_str().unwrap().to_owned();
    let plan = plan_dir();
    let s = Server::start(&["--tariffplan", &plan, "--data-dir", &data_arg]);

    // The folder's filters, in CGRateS's v0.10 JSON shape.
    assert_eq!(
        ids(&s, json!({"Tenant": "cgrates.org"})),
        json!(["FLTR_PLAN", "FLTR_SHARED"])
    );
    assert_eq!(
        ids(&s, json!({"Tenant": "other.org"})),
        json!(["FLTR_OTHER"])
    );
    assert_eq!(err(&ids(&s, json!({"Tenant": "nobody.org"}))), "NOT_FOUND");
    assert_eq!(
        get(&s, "FLTR_PLAN"),
        json!({
            "Tenant": "cgrates.org",
            "ID": "FLTR_PLAN",
            "Rules": [
                {"Type": "*string", "Element": "~*req.Account", "Values": ["1001", "1002"]},
                {"Type": "*destinations", "Element": "~*req.Destination", "Values": ["DST_DE_MOB"]}
            ],
            "ActivationInterval": {
                "ActivationTime": "2020-01-01T00:00:00Z",
                "ExpiryTime": "0001-01-01T00:00:00Z"
            }
        })
    );
    assert_eq!(get(&s, "FLTR_SHARED")["ActivationInterval"], Value::Null);
    assert_eq!(err(&get(&s, "FLTR_NOPE")), "NOT_FOUND");
    let missing = rpc(&s, "APIerSv1.GetFilter", json!({"Tenant": "cgrates.org"}));
    assert_eq!(err(&missing), "MANDATORY_IE_MISSING: [ID]");
    // The old `ApierV1` name answers too.
    assert_eq!(
        rpc(&s, "ApierV1.GetFilter", json!({"ID": "FLTR_SHARED"}))["ID"],
        "FLTR_SHARED"
    );

    // Set a new filter and override one of the folder's.
    let api = json!({
        "Tenant": "cgrates.org",
        "ID": "FLTR_API",
        "Rules": [
            {"Type": "*notprefix", "Element": "~*req.Destination", "Values": ["33", "34"]},
            {"Type": "*exists", "Element": "~*opts.*context", "Values": []}
        ],
        "ActivationInterval": {
            "ActivationTime": "2021-01-01T00:00:00Z",
            "ExpiryTime": "2031-01-01T00:00:00Z"
        }
    });
    assert_eq!(rpc(&s, "APIerSv1.SetFilter", api.clone()), json!("OK"));
    assert_eq!(get(&s, "FLTR_API"), api);
    let shared = json!({
        "Tenant": "cgrates.org",
        "ID": "FLTR_SHARED",
        "Rules": [{"Type": "*lt", "Element": "~*req.Usage", "Values": ["1h"]}],
        "ActivationInterval": null
    });
    assert_eq!(rpc(&s, "APIerSv1.SetFilter", shared.clone()), json!("OK"));
    assert_eq!(get(&s, "FLTR_SHARED"), shared);
    // Bad filters are refused and change nothing.
    let bad = rpc(
        &s,
        "APIerSv1.SetFilter",
        json!({"ID": "FLTR_BAD", "Rules": [{"Type": "*strung", "Element": "~*req.A", "Values": ["1"]}]}),
    );
    assert!(
        err(&bad).contains("Unsupported filter Type: *strung"),
        "{bad}"
    );
    let bad = rpc(
        &s,
        "APIerSv1.SetFilter",
        json!({"ID": "FLTR_BAD", "Rules": [{"Type": "*regex", "Element": "~*req.A", "Values": ["("]}]}),
    );
    assert!(err(&bad).starts_with("SERVER_ERROR"), "{bad}");
    let bad = rpc(&s, "APIerSv1.SetFilter", json!({"Tenant": "cgrates.org"}));
    assert_eq!(err(&bad), "MANDATORY_IE_MISSING: [ID]");
    assert_eq!(err(&get(&s, "FLTR_BAD")), "NOT_FOUND");

    // Remove one of the folder's.
    let rm = json!({"Tenant": "cgrates.org", "ID": "FLTR_PLAN"});
    assert_eq!(rpc(&s, "APIerSv1.RemoveFilter", rm.clone()), json!("OK"));
    assert_eq!(err(&rpc(&s, "APIerSv1.RemoveFilter", rm)), "NOT_FOUND");
    assert_eq!(err(&get(&s, "FLTR_PLAN")), "NOT_FOUND");

    assert_eq!(
        ids(&s, json!({"Tenant": "cgrates.org"})),
        json!(["FLTR_API", "FLTR_SHARED"])
    );
    assert_eq!(
        ids(
            &s,
            json!({"Tenant": "cgrates.org", "Limit": 1, "Offset": 1})
        ),
        json!(["FLTR_SHARED"])
    );
    assert_eq!(
        ids(&s, json!({"Tenant": "cgrates.org", "Limit": 1})),
        json!(["FLTR_API"])
    );
    stop(s);

    // A restart from the store alone has the API's changes.
    let s = Server::start(&["--data-dir", &data_arg]);
    assert_eq!(
        ids(&s, json!({"Tenant": "cgrates.org"})),
        json!(["FLTR_API", "FLTR_SHARED"])
    );
    assert_eq!(get(&s, "FLTR_API"), api);
    assert_eq!(get(&s, "FLTR_SHARED"), shared);
    assert_eq!(
        ids(&s, json!({"Tenant": "other.org"})),
        json!(["FLTR_OTHER"])
    );
    stop(s);

    // A restart with the folder: its filters win, FLTR_API stays.
    let s = Server::start(&["--tariffplan", &plan, "--data-dir", &data_arg]);
    assert_eq!(
        ids(&s, json!({"Tenant": "cgrates.org"})),
        json!(["FLTR_API", "FLTR_PLAN", "FLTR_SHARED"])
    );
    assert_eq!(get(&s, "FLTR_API"), api);
    assert_eq!(get(&s, "FLTR_SHARED")["Rules"][0]["Type"], "*gte");
    // And so does a load of the folder over an API change.
    assert_eq!(rpc(&s, "APIerSv1.SetFilter", shared.clone()), json!("OK"));
    let load = rpc(
        &s,
        "APIerSv1.LoadTariffPlanFromFolder",
        json!({"FolderPath": plan}),
    );
    assert_eq!(load, json!("OK"));
    assert_eq!(get(&s, "FLTR_SHARED")["Rules"][0]["Type"], "*gte");
    assert_eq!(get(&s, "FLTR_API"), api);
    stop(s);
    let _ = std::fs::remove_dir_all(&data);
}

#[test]
fn a_server_without_a_plan_keeps_api_filters_too() {
    let data = temp_data_dir();
    let data_arg = data.to_str().unwrap().to_owned();
    let s = Server::start(&["--data-dir", &data_arg]);
    assert_eq!(err(&ids(&s, json!({}))), "NOT_FOUND");
    let f = json!({
        "ID": "FLTR_ONLY",
        "Rules": [{"Type": "*string", "Element": "~*req.Account", "Values": ["1001"]}]
    });
    assert_eq!(rpc(&s, "APIerSv1.SetFilter", f), json!("OK"));
    // The default tenant.
    assert_eq!(ids(&s, json!({})), json!(["FLTR_ONLY"]));
    stop(s);
    let s = Server::start(&["--data-dir", &data_arg]);
    assert_eq!(get(&s, "FLTR_ONLY")["Tenant"], "cgrates.org");
    stop(s);
    let _ = std::fs::remove_dir_all(&data);
}
