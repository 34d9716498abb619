//! AttributeS over `accurate serve`'s API: the `attributes` plan
//! (passwords for `simpleauth`, request types for `*sessions`, numbers to
//! E.164, the usage of a CDR, a tenant alias) through
//! `AttributeSv1.ProcessEvent` / `GetAttributeForEvent` and the APIer's
//! profile reads, in v0.10's argument and reply shapes.
#![allow(clippy::unwrap_used, dead_code)]

use std::path::PathBuf;

use serde_json::{Value, json};

mod serve_common;

use serve_common::*;

fn plan_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/tariffplans/attributes")
}

fn start() -> Server {
    let dir = plan_dir();
    Server::start(&["--tariffplan", dir.to_str().unwrap()])
}

fn process(s: &Server, args: Value) -> Value {
    rpc(s, "AttributeSv1.ProcessEvent", args)
}

#[test]
fn simpleauth_passwords_by_context() {
    let s = start();
    assert_eq!(rpc(&s, "AttributeSv1.Ping", json!({})), "Pong");
    // v0.10: Context at the top level
    let r = process(
        &s,
        json!({"Tenant": "acme.test", "ID": "auth1", "Context": "simpleauth",
                "Event": {"Account": "1001", "Password": "*attributes"}}),
    );
    assert_eq!(r["MatchedProfiles"], json!(["AUTH_1001"]));
    assert_eq!(r["AlteredFields"], json!(["*req.Password"]));
    assert_eq!(r["CGREvent"]["Tenant"], "acme.test");
    assert_eq!(r["CGREvent"]["ID"], "auth1");
    assert_eq!(r["CGREvent"]["Event"]["Password"], "pw-1001");
    assert_eq!(r["CGREvent"]["Event"]["Account"], "1001");
    // APIOpts *context, the account's filter from Filters.csv
    let r = process(
        &s,
        json!({"Tenant": "acme.test", "APIOpts": {"*context": "simpleauth"},
                "Event": {"Account": "1002"}}),
    );
    assert_eq!(r["MatchedProfiles"], json!(["AUTH_1002"]));
    assert_eq!(r["CGREvent"]["Event"]["Password"], "pw-1002");
    // no profile: NOT_FOUND; one asked for and not filled: mandatory
    let unknown = json!({"Tenant": "acme.test", "Context": "simpleauth",
                          "Event": {"Account": "1003"}});
    assert_eq!(err(&process(&s, unknown)), "NOT_FOUND");
    let asked = json!({"Tenant": "acme.test", "Context": "simpleauth",
                        "Event": {"Account": "1003", "Password": "*attributes"}});
    assert_eq!(err(&process(&s, asked)), "MANDATORY_IE_MISSING: [Password]");
    // the password profile is not one of *sessions'
    let r = process(
        &s,
        json!({"Tenant": "acme.test", "Context": "*sessions", "Event": {"Account": "1001"}}),
    );
    assert_eq!(r["MatchedProfiles"], json!(["REQTYPE_1001"]));
    assert!(r["CGREvent"]["Event"].get("Password").is_none());
    assert_eq!(
        err(&process(&s, json!({"Tenant": "acme.test"}))),
        "MANDATORY_IE_MISSING: [Event]"
    );
}

#[test]
fn request_type_and_numbers_over_process_runs() {
    let s = start();
    let ev = |acc: &str, dst: &str, runs: Value| {
        json!({"Tenant": "acme.test", "Context": "*sessions", "ProcessRuns": runs,
                "Event": {"Account": acc, "Destination": dst}})
    };
    // one run: the heaviest profile only
    let r = process(&s, ev("1001", "0049301234", json!(1)));
    assert_eq!(r["MatchedProfiles"], json!(["REQTYPE_1001"]));
    assert_eq!(r["CGREvent"]["Event"]["Destination"], "0049301234");
    // two runs: then the numbers
    let r = process(&s, ev("1001", "0049301234", json!(2)));
    assert_eq!(r["MatchedProfiles"], json!(["REQTYPE_1001", "NUMBERS"]));
    assert_eq!(
        r["AlteredFields"],
        json!([
            "*req.RequestType",
            "*req.Destination",
            "*req.DestinationCountry"
        ])
    );
    let e = &r["CGREvent"]["Event"];
    assert_eq!(e["RequestType"], "*prepaid");
    assert_eq!(e["Destination"], "+49301234");
    assert_eq!(e["DestinationCountry"], "49");
    // national number, 1002 postpaid, runs from APIOpts
    let r = process(
        &s,
        json!({"Tenant": "acme.test", "APIOpts": {"*context": "*sessions", "*processRuns": 3},
                "Event": {"Account": "1002", "Destination": "030123"}}),
    );
    // the third run would pick REQTYPE_1002 again: CGRateS only skips the
    // profile just applied
    assert_eq!(
        r["MatchedProfiles"],
        json!(["REQTYPE_1002", "NUMBERS", "REQTYPE_1002"])
    );
    assert_eq!(r["CGREvent"]["Event"]["RequestType"], "*postpaid");
    assert_eq!(r["CGREvent"]["Event"]["Destination"], "+4930123");
    assert_eq!(r["CGREvent"]["APIOpts"]["*processRuns"], 3);
    // an account with no request type profile: numbers only
    let r = process(&s, ev("1009", "0033123", json!(2)));
    assert_eq!(r["MatchedProfiles"], json!(["NUMBERS"]));
    assert_eq!(r["CGREvent"]["Event"]["Destination"], "+33123");
}

#[test]
fn cdr_usage_tenant_alias_and_inline_profiles() {
    let s = start();
    let r = process(
        &s,
        json!({"Tenant": "acme.test", "Context": "*cdrs", "ProcessRuns": 2,
                "Event": {"Account": "1001", "Destination": "00441234",
                          "AnswerTime": "2024-03-01T10:00:00Z",
                          "EndTime": "2024-03-01T10:01:30Z"}}),
    );
    assert_eq!(r["MatchedProfiles"], json!(["CDR_USAGE", "NUMBERS"]));
    let e = &r["CGREvent"]["Event"];
    assert_eq!(e["Usage"], "1m30s");
    assert_eq!(e["Billed"], "1001-1m30s");
    assert_eq!(e["Destination"], "+441234");
    // another tenant's alias, then acme.test's profiles on the new tenant
    let r = process(
        &s,
        json!({"Tenant": "other.test", "Context": "*sessions", "ProcessRuns": 2,
                "Event": {"SubscriberId": "sub-1"}}),
    );
    assert_eq!(r["MatchedProfiles"], json!(["ALIAS", "REQTYPE_1001"]));
    assert_eq!(r["CGREvent"]["Tenant"], "acme.test");
    assert_eq!(r["CGREvent"]["Event"]["Account"], "1001");
    assert_eq!(r["CGREvent"]["Event"]["RequestType"], "*prepaid");
    // AttributeIDs: an inline profile as Chargers.csv writes one, any context
    let r = process(
        &s,
        json!({"Tenant": "acme.test", "Context": "*chargers",
                "AttributeIDs": ["*constant:*req.RequestType:*none"],
                "Event": {"Account": "1001", "RequestType": "*prepaid"}}),
    );
    assert_eq!(
        r["MatchedProfiles"],
        json!(["*constant:*req.RequestType:*none"])
    );
    assert_eq!(r["CGREvent"]["Event"]["RequestType"], "*none");
    // a named profile outside its context, its filters still apply
    let named = |acc: &str| {
        json!({"Tenant": "acme.test", "Context": "*chargers",
                "APIOpts": {"*attributeIDs": ["AUTH_1001"]}, "Event": {"Account": acc}})
    };
    assert_eq!(
        process(&s, named("1001"))["MatchedProfiles"],
        json!(["AUTH_1001"])
    );
    assert_eq!(err(&process(&s, named("1002"))), "NOT_FOUND");
}

#[test]
fn profile_reads() {
    let s = start();
    let p = rpc(
        &s,
        "AttributeSv1.GetAttributeForEvent",
        json!({"Tenant": "acme.test", "Context": "simpleauth", "Event": {"Account": "1002"}}),
    );
    assert_eq!(p["ID"], "AUTH_1002");
    assert_eq!(p["FilterIDs"], json!(["FLTR_ACC_1002"]));
    let p = rpc(
        &s,
        "APIerSv1.GetAttributeProfile",
        json!({"Tenant": "acme.test", "ID": "NUMBERS"}),
    );
    assert_eq!(p["Contexts"], json!(["*sessions", "*cdrs"]));
    assert_eq!(p["Weight"], 10);
    assert_eq!(p["Blocker"], false);
    assert_eq!(p["ActivationInterval"], Value::Null);
    assert_eq!(p["Attributes"].as_array().unwrap().len(), 3);
    assert_eq!(
        p["Attributes"][0]["FilterIDs"],
        json!(["*prefix:~*req.Destination:00"])
    );
    assert_eq!(p["Attributes"][0]["Type"], "*variable");
    assert_eq!(
        p["Attributes"][0]["Value"],
        json!([{"Rules": "~*req.Destination:s/^00(\\d+)$/+${1}/", "AllFiltersMatch": true}])
    );
    let old_name = rpc(
        &s,
        "ApierV1.GetAttributeProfile",
        json!({"Tenant": "acme.test", "ID": "NUMBERS"}),
    );
    assert_eq!(old_name, p);
    assert_eq!(
        err(&rpc(
            &s,
            "APIerSv1.GetAttributeProfile",
            json!({"Tenant": "acme.test", "ID": "NOPE"})
        )),
        "NOT_FOUND"
    );
    let ids = rpc(
        &s,
        "APIerSv1.GetAttributeProfileIDs",
        json!({"Tenant": "other.test"}),
    );
    assert_eq!(ids, json!(["ALIAS"]));
    let ids = rpc(
        &s,
        "APIerSv1.GetAttributeProfileIDs",
        json!({"Tenant": "acme.test", "Limit": 2, "Offset": 1}),
    );
    assert_eq!(ids, json!(["AUTH_1002", "CDR_USAGE"]));
    assert_eq!(
        err(&rpc(
            &s,
            "APIerSv1.GetAttributeProfileIDs",
            json!({"Tenant": "none.test"})
        )),
        "NOT_FOUND"
    );
}

#[test]
fn a_bad_attributes_file_is_refused_with_its_line() {
    let s = start();
    let dir = temp_data_dir();
    std::fs::create_dir_all(&dir).unwrap();
    for f in std::fs::read_dir(plan_dir()).unwrap() {
        let f = f.unwrap().path();
        std::fs::copy(&f, dir.join(f.file_name().unwrap())).unwrap();
    }
    std::fs::write(
        dir.join("Attributes.csv"),
        "#Tenant,ID,Contexts,FilterIDs,ActivationInterval,AttributeFilterIDs,Path,Type,Value,Blocker,Weight\n\
         acme.test,OK,*any,,,,*req.A,*constant,1,false,10\n\
         acme.test,BAD,*any,,,,*req.A,*nonsense,1,false,10\n",
    )
    .unwrap();
    let e = err(&rpc(
        &s,
        "APIerSv1.LoadTariffPlanFromFolder",
        json!({"FolderPath": dir.to_str().unwrap()}),
    ));
    assert!(e.contains("Attributes.csv:3: column 8"), "{e}");
    // the plan in force is unchanged
    let r = process(
        &s,
        json!({"Tenant": "acme.test", "Context": "simpleauth", "Event": {"Account": "1001"}}),
    );
    assert_eq!(r["MatchedProfiles"], json!(["AUTH_1001"]));
    std::fs::remove_dir_all(&dir).ok();
}
