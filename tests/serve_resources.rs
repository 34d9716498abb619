//! ResourceSv1 over `accurate serve`: the `resthr` plan's RES_1001 (two
//! calls at once, Stored) and RES_TTL (one call, counted for a second),
//! in CGRateS v0.10's and master's argument shapes, across a restart.
#![allow(clippy::unwrap_used, dead_code)]

use std::path::PathBuf;

use serde_json::{Value, json};

mod serve_common;

use serve_common::*;

fn plan_dir() -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/tariffplans/resthr")
        .display()
        .to_string()
}

/// v0.10's `ArgRSv1ResourceUsage`: the CGREvent flattened with UsageID
/// and Units.
fn v010(account: &str, usage_id: &str) -> Value {
    json!({
        "Tenant": "cgrates.org",
        "ID": format!("ev-{usage_id}"),
        "Event": {"Account": account, "Destination": "4930"},
        "UsageID": usage_id,
        "Units": 1,
    })
}

/// Master's shape: the usage in APIOpts.
fn master(account: &str, usage_id: &str) -> Value {
    json!({
        "Tenant": "cgrates.org",
        "ID": format!("ev-{usage_id}"),
        "Event": {"Account": account},
        "APIOpts": {"*rsUsageID": usage_id, "*rsUnits": 1},
    })
}

fn usage_ids(s: &Server, id: &str) -> Vec<String> {
    let r = rpc(
        s,
        "ResourceSv1.GetResource",
        json!({"Tenant": "cgrates.org", "ID": id}),
    );
    let mut ids: Vec<String> = r["Usages"]
        .as_object()
        .unwrap_or_else(|| panic!("{r}"))
        .keys()
        .cloned()
        .collect();
    ids.sort();
    ids
}

#[test]
fn limit_release_ttl_and_restart() {
    let data = temp_data_dir();
    let dir = data.display().to_string();
    let plan = plan_dir();
    let s = Server::start(&["--data-dir", &dir, "--tariffplan", &plan]);
    assert_eq!(rpc(&s, "ResourceSv1.Ping", json!({})), json!("Pong"));
    // SessionS authorizing resources for an event without OriginID (what
    // CGRateS's Kamailio tutorial sends): a fresh usage ID, as CGRateS.
    let r = rpc(
        &s,
        "SessionSv1.AuthorizeEvent",
        json!({"AuthorizeResources": true, "Tenant": "cgrates.org",
               "Event": {"Account": "1001", "Destination": "4930"}}),
    );
    assert_eq!(r["ResourceAllocation"], json!("ONE_OF_TWO"), "{r}");
    // Limit 2: the first two are granted with the allocation message, the
    // third refused (authorized or allocated).
    assert_eq!(
        rpc(&s, "ResourceSv1.AuthorizeResources", v010("1001", "c1")),
        json!("ONE_OF_TWO")
    );
    assert_eq!(
        rpc(&s, "ResourceSv1.AllocateResources", v010("1001", "c1")),
        json!("ONE_OF_TWO")
    );
    assert_eq!(
        rpc(&s, "ResourceSv1.AllocateResources", master("1001", "c2")),
        json!("ONE_OF_TWO")
    );
    assert_eq!(
        err(&rpc(
            &s,
            "ResourceSv1.AuthorizeResources",
            v010("1001", "c3")
        )),
        "RESOURCE_UNAUTHORIZED"
    );
    assert_eq!(
        err(&rpc(
            &s,
            "ResourceSv1.AllocateResources",
            master("1001", "c3")
        )),
        "RESOURCE_UNAVAILABLE"
    );
    assert_eq!(usage_ids(&s, "RES_1001"), ["c1", "c2"]);
    // Releasing one frees room for the third.
    assert_eq!(
        rpc(&s, "ResourceSv1.ReleaseResources", v010("1001", "c1")),
        json!("OK")
    );
    assert_eq!(
        rpc(&s, "ResourceSv1.AllocateResources", v010("1001", "c3")),
        json!("ONE_OF_TWO")
    );
    assert_eq!(usage_ids(&s, "RES_1001"), ["c2", "c3"]);
    // Each change told THD_RES (through the thresholds' queue).
    wait_until("THD_RES counts the four changes", || {
        rpc(&s, "ThresholdSv1.GetThreshold", json!({"ID": "THD_RES"}))["Hits"] == json!(4)
    });
    // Its *log (the event names no account) logs the event.
    let mut logged = Vec::new();
    wait_until("THD_RES logs the events", || {
        logged.extend(s.stderr.try_iter());
        logged
            .iter()
            .filter(|l| l.starts_with("action *log:") && l.contains("\"ResourceID\":\"RES_1001\""))
            .count()
            == 4
    });
    // The resources of an event, and a profile's config.
    let list = rpc(
        &s,
        "ResourceSv1.GetResourcesForEvent",
        json!({"ID": "q", "Event": {"Account": "1001"}, "UsageID": "x"}),
    );
    assert_eq!(list[0]["ID"], json!("RES_1001"), "{list}");
    let wc = rpc(
        &s,
        "ResourceSv1.GetResourceWithConfig",
        json!({"Tenant": "cgrates.org", "ID": "RES_1001"}),
    );
    assert_eq!(wc["Config"]["Limit"], json!(2.0), "{wc}");
    assert_eq!(wc["Config"]["Stored"], json!(true), "{wc}");
    // Bad or missing arguments, unknown things.
    assert_eq!(
        err(&rpc(
            &s,
            "ResourceSv1.AllocateResources",
            json!({"Event": {"Account": "1001"}})
        )),
        "MANDATORY_IE_MISSING: [ID UsageID]"
    );
    assert_eq!(
        err(&rpc(
            &s,
            "ResourceSv1.AllocateResources",
            v010("9999", "c1")
        )),
        "NOT_FOUND"
    );
    assert_eq!(
        err(&rpc(&s, "ResourceSv1.GetResource", json!({"ID": "NOPE"}))),
        "NOT_FOUND"
    );
    let mut bad = v010("1001", "c9");
    bad["Units"] = json!("many");
    assert!(err(&rpc(&s, "ResourceSv1.AllocateResources", bad)).contains("Units"));

    // RES_TTL: one at a time, each usage counted for a second.
    assert_eq!(
        rpc(&s, "ResourceSv1.AllocateResources", v010("1002", "t1")),
        json!("RES_TTL")
    );
    assert_eq!(
        err(&rpc(
            &s,
            "ResourceSv1.AllocateResources",
            v010("1002", "t2")
        )),
        "RESOURCE_UNAVAILABLE"
    );
    wait_until("t1 expires", || {
        rpc(&s, "ResourceSv1.AuthorizeResources", v010("1002", "t2")) == json!("RES_TTL")
    });
    assert!(usage_ids(&s, "RES_TTL").is_empty());
    // A request's own TTL (v0.10: nanoseconds) replaces the profile's.
    let mut long = v010("1002", "t3");
    long["UsageTTL"] = json!(3_600_000_000_000_i64);
    assert_eq!(
        rpc(&s, "ResourceSv1.AllocateResources", long),
        json!("RES_TTL")
    );
    let r = rpc(&s, "ResourceSv1.GetResource", json!({"ID": "RES_TTL"}));
    assert!(
        r["Usages"]["t3"]["ExpiryTime"].as_str().unwrap() > "2000",
        "{r}"
    );
    assert_eq!(r["TTLIdx"], json!(["t3"]));

    // A restart (killed: every change is saved before its reply) keeps
    // the Stored usages, not the others.
    drop(s);
    let s = Server::start(&["--data-dir", &dir]);
    assert_eq!(usage_ids(&s, "RES_1001"), ["c2", "c3"]);
    assert!(usage_ids(&s, "RES_TTL").is_empty());
    assert_eq!(
        err(&rpc(
            &s,
            "ResourceSv1.AuthorizeResources",
            v010("1001", "c4")
        )),
        "RESOURCE_UNAUTHORIZED"
    );
    // Reloading the plan keeps the usages of the profiles that remain.
    assert_eq!(
        rpc(
            &s,
            "APIerSv1.LoadTariffPlanFromFolder",
            json!({"FolderPath": plan})
        ),
        json!("OK")
    );
    assert_eq!(usage_ids(&s, "RES_1001"), ["c2", "c3"]);
    drop(s);
    let _ = std::fs::remove_dir_all(&data);
}

/// Deletes the test's Redis keys when dropped.
struct RedisKeys(String);

impl Drop for RedisKeys {
    fn drop(&mut self) {
        let _ = std::process::Command::new("redis-cli")
            .args(["-u", &redis_url(), "EVAL"])
            .arg("for _,k in ipairs(redis.call('KEYS', ARGV[1])) do redis.call('DEL', k) end")
            .args(["0", &format!("{}*", self.0)])
            .output();
    }
}

/// The real Redis on 127.0.0.1:6379, or `ACCURATE_TEST_REDIS`.
fn redis_url() -> String {
    std::env::var("ACCURATE_TEST_REDIS").unwrap_or_else(|_| "redis://127.0.0.1:6379/0".into())
}

/// With the store in Redis (under a prefix of the test's own), Stored
/// usages and threshold hits survive a restart too.
#[test]
fn stored_usages_and_hits_survive_a_restart_on_redis() {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let keys = RedisKeys(format!("accurate-resthr-{}-{nanos}:", std::process::id()));
    let config = format!(
        "[api]\nrpc-tcp = \"127.0.0.1:0\"\nrpc-http = \"127.0.0.1:0\"\n[storage]\nredis = \"{}\"\nredis-prefix = \"{}\"\n",
        redis_url(),
        keys.0
    );
    let plan = plan_dir();
    let s = Server::start_with(&["--tariffplan", &plan], Some(&config));
    assert!(
        s.seen.iter().any(|l| l.starts_with("store: redis")),
        "{:?}",
        s.seen
    );
    assert_eq!(
        rpc(&s, "ResourceSv1.AllocateResources", v010("1001", "r1")),
        json!("ONE_OF_TWO")
    );
    let manual = json!({"ID": "m", "Event": {"EventType": "Manual", "Account": "1001"}});
    assert_eq!(
        rpc(&s, "ThresholdSv1.ProcessEvent", manual),
        json!(["THD_MIN"])
    );
    drop(s);
    let s = Server::start_with(&[], Some(&config));
    assert_eq!(usage_ids(&s, "RES_1001"), ["r1"]);
    let th = rpc(&s, "ThresholdSv1.GetThreshold", json!({"ID": "THD_MIN"}));
    assert_eq!(th["Hits"], json!(1), "{th}");
}
