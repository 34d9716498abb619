//! ThresholdSv1 over `accurate serve` with the `resthr` plan: MinHits,
//! MinSleep and MaxHits deciding when `*topup` actions run on the event's
//! account, a debit reaching a threshold through the accounts' feed, and
//! the hits kept across a restart.
#![allow(clippy::unwrap_used, dead_code)]

use std::path::PathBuf;

use rust_decimal::Decimal;
use serde_json::{Value, json};

mod serve_common;

use serve_common::*;

fn plan_dir() -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/tariffplans/resthr")
        .display()
        .to_string()
}

/// A `Manual` event of `account` (v0.10's flattened ArgsProcessEvent).
fn manual(account: &str) -> Value {
    json!({
        "Tenant": "cgrates.org",
        "ID": format!("manual-{account}"),
        "Event": {"EventType": "Manual", "Account": account},
    })
}

/// The value of the account's `*monetary` balance `id` (0 when absent).
fn balance(s: &Server, account: &str, id: &str) -> Decimal {
    let a = rpc(
        s,
        "APIerSv2.GetAccount",
        json!({"Tenant": "cgrates.org", "Account": account}),
    );
    a["BalanceMap"]["*monetary"]
        .as_array()
        .unwrap_or_else(|| panic!("{a}"))
        .iter()
        .find(|b| b["ID"] == json!(id))
        .map_or(Decimal::ZERO, |b| b["Value"].to_string().parse().unwrap())
}

fn hits(s: &Server, id: &str) -> Value {
    rpc(
        s,
        "ThresholdSv1.GetThreshold",
        json!({"Tenant": "cgrates.org", "ID": id}),
    )["Hits"]
        .clone()
}

#[test]
fn min_hits_min_sleep_max_hits_debits_and_restart() {
    let data = temp_data_dir();
    let dir = data.display().to_string();
    let plan = plan_dir();
    let s = Server::start(&["--data-dir", &dir, "--tariffplan", &plan]);
    assert_eq!(rpc(&s, "ThresholdSv1.Ping", json!({})), json!("Pong"));
    let ids = rpc(
        &s,
        "ThresholdSv1.GetThresholdIDs",
        json!({"Tenant": "cgrates.org"}),
    );
    assert_eq!(
        ids,
        json!([
            "THD_ASYNC",
            "THD_DEBIT",
            "THD_MAX",
            "THD_MIN",
            "THD_RES",
            "THD_SLEEP"
        ])
    );

    // MinHits 3: the bonus only from the third event on.
    for n in 1..=2 {
        assert_eq!(
            rpc(&s, "ThresholdSv1.ProcessEvent", manual("1001")),
            json!(["THD_MIN"])
        );
        assert_eq!(balance(&s, "1001", "bonus"), Decimal::ZERO, "event {n}");
    }
    assert_eq!(
        rpc(&s, "ThresholdSv1.ProcessEvent", manual("1001")),
        json!(["THD_MIN"])
    );
    assert_eq!(balance(&s, "1001", "bonus"), dec("1"));
    assert_eq!(hits(&s, "THD_MIN"), json!(3));
    let th = rpc(&s, "ThresholdSv1.GetThreshold", json!({"ID": "THD_MIN"}));
    assert_eq!(th["Tenant"], json!("cgrates.org"), "{th}");

    // MinSleep 1h: the first event tops up, the next ones only count.
    for _ in 0..3 {
        assert_eq!(
            rpc(&s, "ThresholdSv1.ProcessEvent", manual("1004")),
            json!(["THD_SLEEP"])
        );
    }
    assert_eq!(balance(&s, "1004", "bonus"), dec("1"));
    assert_eq!(hits(&s, "THD_SLEEP"), json!(3));
    // ResetThreshold wakes it.
    assert_eq!(
        rpc(
            &s,
            "ThresholdSv1.ResetThreshold",
            json!({"ID": "THD_SLEEP"})
        ),
        json!("OK")
    );
    rpc(&s, "ThresholdSv1.ProcessEvent", manual("1004"));
    assert_eq!(balance(&s, "1004", "bonus"), dec("2"));

    // MaxHits 2: two bonuses, then no longer counted (an empty reply).
    for _ in 0..2 {
        assert_eq!(
            rpc(&s, "ThresholdSv1.ProcessEvent", manual("1003")),
            json!(["THD_MAX"])
        );
    }
    assert_eq!(
        rpc(&s, "ThresholdSv1.ProcessEvent", manual("1003")),
        json!([])
    );
    assert_eq!(balance(&s, "1003", "bonus"), dec("2"));
    assert_eq!(hits(&s, "THD_MAX"), json!(2));

    // Async: the actions run after the reply.
    let mut later = manual("1003");
    later["Event"]["EventType"] = json!("Later");
    assert_eq!(
        rpc(&s, "ThresholdSv1.ProcessEvent", later),
        json!(["THD_ASYNC"])
    );
    wait_until("the async gift", || balance(&s, "1003", "gift") == dec("5"));

    // No match, only some IDs, the thresholds of an event.
    assert_eq!(
        err(&rpc(&s, "ThresholdSv1.ProcessEvent", manual("9999"))),
        "NOT_FOUND"
    );
    let mut only = manual("1001");
    only["ThresholdIDs"] = json!(["THD_SLEEP"]);
    assert_eq!(
        err(&rpc(&s, "ThresholdSv1.ProcessEvent", only)),
        "NOT_FOUND"
    );
    let list = rpc(&s, "ThresholdSv1.GetThresholdsForEvent", manual("1001"));
    assert_eq!(list[0]["ID"], json!("THD_MIN"), "{list}");
    assert_eq!(list[0]["Hits"], json!(3), "{list}");
    assert_eq!(
        err(&rpc(&s, "ThresholdSv1.ProcessEvent", json!({"Event": {}}))),
        "MANDATORY_IE_MISSING: [ID]"
    );

    // Fed by accounts: 1002's welcome top-up was THD_DEBIT's first hit;
    // its first debit is the second, which runs the gift.
    wait_until("the welcome top-up reaches THD_DEBIT", || {
        hits(&s, "THD_DEBIT") == json!(1)
    });
    assert_eq!(balance(&s, "1002", "gift"), Decimal::ZERO);
    let debit =
        json!({"Tenant": "cgrates.org", "Account": "1002", "Destination": "4930", "Usage": "100s"});
    assert_eq!(rpc(&s, "APIerSv1.DebitUsage", debit), json!("OK"));
    wait_until("the debit runs the gift", || {
        balance(&s, "1002", "gift") == dec("5")
    });
    assert_eq!(balance(&s, "1002", "credit"), dec("9"));
    assert_eq!(hits(&s, "THD_DEBIT"), json!(2));
    assert!(metric(&s, "accurate_thresholds_fired_total") >= 7);
    assert!(metric(&s, "accurate_thresholds_events_queued_total") >= 3);

    // The hits survive a restart (killed: each is saved before the reply).
    drop(s);
    let s = Server::start(&["--data-dir", &dir]);
    assert_eq!(hits(&s, "THD_MIN"), json!(3));
    assert_eq!(hits(&s, "THD_MAX"), json!(2));
    assert_eq!(
        rpc(&s, "ThresholdSv1.ProcessEvent", manual("1003")),
        json!([])
    );
    drop(s);
    let _ = std::fs::remove_dir_all(&data);
}
