//! `CDRsV1.RateCDRs` over `accurate serve`, end to end: calls charged
//! under the `sessions` plan (0.01 a second to `49`), then the `rerate`
//! plan (0.02 a second) loaded and the stored CDRs re-rated: each CDR's
//! cost and each account's balance move by exactly the difference, once;
//! on the default SQLite CDR database and on PostgreSQL (a schema of its
//! own). Expected figures are worked out by hand in the comments.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::str::FromStr;

use rust_decimal::Decimal;
use serde_json::{Value, json};

mod serve_common;

use serve_common::{PgSchema, Server, dec, rpc as call, wait_until};

const S: u64 = 1_000_000_000;

fn plan_dir(name: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/tariffplans")
        .join(name)
        .to_str()
        .unwrap()
        .to_owned()
}

fn balance(s: &Server, account: &str, kind: &str) -> Decimal {
    let a = call(
        s,
        "APIerSv2.GetAccount",
        json!({"Tenant": "cgrates.org", "Account": account}),
    );
    a["BalanceMap"][kind]
        .as_array()
        .map(|l| {
            l.iter()
                .map(|b| Decimal::from_str(&b["Value"].to_string()).unwrap())
                .sum()
        })
        .unwrap_or_default()
}

fn credit(s: &Server, account: &str) -> Decimal {
    balance(s, account, "*monetary")
}

/// OriginID -> (Cost, CostSource) of every stored CDR.
fn costs(s: &Server) -> Vec<(String, Decimal, String)> {
    let r = call(s, "CDRsV1.GetCDRs", json!({}));
    let mut out: Vec<(String, Decimal, String)> = r
        .as_array()
        .unwrap_or_else(|| panic!("{r}"))
        .iter()
        .map(|c| {
            (
                c["OriginID"].as_str().unwrap().to_owned(),
                Decimal::from_str(&c["Cost"].to_string()).unwrap(),
                c["CostSource"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    out.sort();
    out
}

fn cost_of(all: &[(String, Decimal, String)], origin: &str) -> (Decimal, String) {
    let (_, c, src) = all.iter().find(|(o, _, _)| o == origin).unwrap();
    (*c, src.clone())
}

fn process_cdr(s: &Server, origin: &str, account: &str, rt: &str, secs: u64) {
    let r = call(
        s,
        "CDRsV1.ProcessCDR",
        json!({"OriginID": origin, "OriginHost": "10.7.7.7", "RequestType": rt,
               "Tenant": "cgrates.org", "Account": account, "Destination": "4930555002",
               "SetupTime": "2026-01-02T10:00:00Z", "AnswerTime": "2026-01-02T10:00:05Z",
               "Usage": secs * S}),
    );
    assert_eq!(r, json!("OK"), "{origin}");
}

fn session_ev(flag: &str, origin: &str, usage: &str) -> Value {
    json!({flag: true, "Tenant": "cgrates.org", "ID": origin,
           "Event": {"OriginID": origin, "OriginHost": "10.7.7.7", "RequestType": "*prepaid",
                     "Account": "1002", "Destination": "4930555002",
                     "AnswerTime": "2026-01-02T10:00:05Z", "Usage": usage}})
}

fn scenario(s: &Server) {
    // Under the `sessions` plan (0.01 a second):
    // 1001 postpaid 60 s (0.60) and 90 s (0.90): 10.00 -> 8.50;
    // 1004 postpaid 30 s (0.30): 9.70; 1001 *rated 10 s: 0.10, no debit;
    // 1002 prepaid 150 s: its 120 s of minutes, then 30 s (0.30) of its
    // 1.00: 0.70 left.
    process_cdr(s, "c1", "1001", "*postpaid", 60);
    process_cdr(s, "c2", "1001", "*postpaid", 90);
    process_cdr(s, "c3", "1004", "*postpaid", 30);
    process_cdr(s, "c4", "1001", "*rated", 10);
    let r = call(
        s,
        "SessionSv1.InitiateSession",
        session_ev("InitSession", "p1", "2m"),
    );
    assert_eq!(r["MaxUsage"], json!(120 * S), "{r}");
    let r = call(
        s,
        "SessionSv1.TerminateSession",
        session_ev("TerminateSession", "p1", "150s"),
    );
    assert_eq!(r, json!("OK"));
    assert_eq!(credit(s, "1001"), dec("8.50"));
    assert_eq!(credit(s, "1004"), dec("9.70"));
    assert_eq!(credit(s, "1002"), dec("0.70"));
    assert_eq!(balance(s, "1002", "*voice"), dec("0"));
    wait_until("five stored CDRs", || {
        call(s, "CDRsV1.GetCDRsCount", json!({})) == json!(5)
    });
    let before = costs(s);
    assert_eq!(cost_of(&before, "c1"), (dec("0.6"), "*cdrs".into()));
    assert_eq!(cost_of(&before, "p1").0, dec("0.3"));

    // Nothing selected; a flag this server does not honour.
    let r = call(s, "CDRsV1.RateCDRs", json!({"Accounts": ["nobody"]}));
    assert_eq!(r, json!("ERR:NOT_FOUND"));
    let r = call(s, "CDRsV1.RateCDRs", json!({"Flags": ["*store:false"]}));
    assert!(
        r.as_str()
            .unwrap()
            .starts_with("ERR:SERVER_ERROR: flag *store:false"),
        "{r}"
    );

    // The tariff changes: 0.02 a second.
    let r = call(
        s,
        "APIerSv1.LoadTariffPlanFromFolder",
        json!({"FolderPath": plan_dir("rerate")}),
    );
    assert_eq!(r, json!("OK"));
    // Loading a plan with no accounts leaves them as they were.
    assert_eq!(credit(s, "1001"), dec("8.50"));

    // First only 1004's CDRs: 0.30 -> 0.60, 0.30 more.
    let r = call(
        s,
        "CDRsV1.RateCDRs",
        json!({"Accounts": ["1004"], "Flags": ["*rals", "*store:true"],
               "Tenant": "cgrates.org", "APIOpts": {}}),
    );
    assert_eq!(r, json!("OK"));
    assert_eq!(credit(s, "1004"), dec("9.40"));
    assert_eq!(credit(s, "1001"), dec("8.50"));
    let mid = costs(s);
    assert_eq!(cost_of(&mid, "c3"), (dec("0.6"), "*cdrs".into()));
    assert_eq!(cost_of(&mid, "c1"), (dec("0.6"), "*cdrs".into()));

    // Then all of them: 1001 pays 1.20 + 1.80 instead of 0.60 + 0.90
    // (7.00 left); the *rated CDR costs 0.20, no money moves; 1002 gets
    // its minutes and 0.30 back and pays 120 s of minutes and 0.60: 0.40.
    for _ in 0..2 {
        let r = call(s, "CDRsV1.RateCDRs", json!({}));
        assert_eq!(r, json!("OK"));
        assert_eq!(credit(s, "1001"), dec("7.00"));
        assert_eq!(credit(s, "1004"), dec("9.40"));
        assert_eq!(credit(s, "1002"), dec("0.40"));
        assert_eq!(balance(s, "1002", "*voice"), dec("0"));
        let after = costs(s);
        for (o, want) in [
            ("c1", "1.2"),
            ("c2", "1.8"),
            ("c3", "0.6"),
            ("c4", "0.2"),
            ("p1", "0.6"),
        ] {
            assert_eq!(cost_of(&after, o), (dec(want), "*cdrs".into()), "{o}");
        }
    }
    // A repeated ProcessCDR of a re-rated call charges nothing.
    process_cdr(s, "c1", "1001", "*postpaid", 60);
    assert_eq!(credit(s, "1001"), dec("7.00"));
}

#[test]
fn rate_cdrs_on_sqlite() {
    let s = Server::start(&["--tariffplan", &plan_dir("sessions")]);
    scenario(&s);
}

#[test]
fn rate_cdrs_on_postgres() {
    let pgs = PgSchema::new("serve_rerate");
    let url = pgs.url.clone();
    let s = Server::start(&["--tariffplan", &plan_dir("sessions"), "--cdr-db", &url]);
    scenario(&s);
    drop(s);
    pgs.drop_schema();
}

/// A re-rate cut off after the account changed and before the stored CDR
/// did (here PostgreSQL refuses the CDR's update, by a trigger) is run
/// again: the account, which remembers what it last paid, moves nothing
/// more, and the CDR gets its new cost.
#[test]
fn a_rerate_cut_off_before_the_cdr_update_charges_once_when_run_again() {
    let pgs = PgSchema::new("serve_rerate_cut");
    let schema = &pgs.schema;
    let sql = |q: String| pgs.sql(&q);
    let url = pgs.url.clone();
    let s = Server::start(&["--tariffplan", &plan_dir("sessions"), "--cdr-db", &url]);
    // 60 s at 0.01 a second: 0.60 of 10.00.
    process_cdr(&s, "k1", "1001", "*postpaid", 60);
    assert_eq!(credit(&s, "1001"), dec("9.40"));
    wait_until("the stored CDR", || {
        call(&s, "CDRsV1.GetCDRsCount", json!({})) == json!(1)
    });
    let r = call(
        &s,
        "APIerSv1.LoadTariffPlanFromFolder",
        json!({"FolderPath": plan_dir("rerate")}),
    );
    assert_eq!(r, json!("OK"));
    sql(format!(
        "CREATE FUNCTION {schema}.refuse() RETURNS trigger AS $$ \
         BEGIN RAISE EXCEPTION 'updates refused'; END $$ LANGUAGE plpgsql"
    ));
    sql(format!(
        "CREATE TRIGGER refuse BEFORE UPDATE ON {schema}.cdrs \
         FOR EACH ROW EXECUTE FUNCTION {schema}.refuse()"
    ));
    let r = call(&s, "CDRsV1.RateCDRs", json!({}));
    let e = r.as_str().unwrap();
    assert!(
        e.starts_with("ERR:SERVER_ERROR: 1 CDR(s) not re-rated"),
        "{e}"
    );
    // The account paid the new 1.20 instead of 0.60; the CDR is as it was.
    assert_eq!(credit(&s, "1001"), dec("8.80"));
    assert_eq!(cost_of(&costs(&s), "k1"), (dec("0.6"), "*cdrs".into()));
    sql(format!("DROP TRIGGER refuse ON {schema}.cdrs"));
    let r = call(&s, "CDRsV1.RateCDRs", json!({}));
    assert_eq!(r, json!("OK"));
    assert_eq!(credit(&s, "1001"), dec("8.80"));
    assert_eq!(cost_of(&costs(&s), "k1"), (dec("1.2"), "*cdrs".into()));
    drop(s);
    pgs.drop_schema();
}
