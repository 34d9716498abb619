//! Accounts over `accurate serve`'s API, end to end: the real binary on
//! port 0 with the `serve_accounts` plan (accounts, action plans,
//! triggers), spoken to over JSON-RPC on TCP and HTTP, and `accurate load`.
#![allow(clippy::unwrap_used, dead_code)]

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::Command;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

mod serve_common;

use serve_common::*;

fn plan_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/tariffplans/serve_accounts")
}

/// One transport: TCP (one connection) or HTTP.
enum Client<'a> {
    Tcp(Replies, u64),
    Http(&'a Server),
}

impl Client<'_> {
    /// The reply's result, or its error as a string prefixed `ERR:`.
    fn call(&mut self, method: &str, params: Value) -> Value {
        let reply = match self {
            Client::Tcp(r, id) => {
                *id += 1;
                r.call(method, params, *id)
            }
            Client::Http(s) => s.http_call(method, params),
        };
        if reply["error"].is_null() {
            reply["result"].clone()
        } else {
            let e = &reply["error"];
            let msg = e.as_str().map_or_else(
                || e["message"].as_str().unwrap_or("").to_owned(),
                str::to_owned,
            );
            Value::String(format!("ERR:{msg}"))
        }
    }

    fn account(&mut self, id: &str) -> Value {
        self.call(
            "APIerSv2.GetAccount",
            json!({"Tenant": "acme.test", "Account": id}),
        )
    }
}

/// The balance with this ID in the account's BalanceMap.
fn balance<'v>(acc: &'v Value, ty: &str, id: &str) -> Option<&'v Value> {
    acc["BalanceMap"][ty]
        .as_array()?
        .iter()
        .find(|b| b["ID"] == json!(id))
}

fn value(acc: &Value, ty: &str, id: &str) -> Value {
    balance(acc, ty, id).map_or(Value::Null, |b| b["Value"].clone())
}

fn usage(account: &str, dest: &str, usage: Value) -> Value {
    json!({"Tenant": "acme.test", "Account": account, "Destination": dest, "Usage": usage})
}

fn scenario(c: &mut Client<'_>) {
    // The plan's accounts, as loaded (the *asap welcome ran).
    let acc = c.account("1001");
    assert_eq!(acc["ID"], json!("acme.test:1001"), "{acc}");
    assert_eq!(value(&acc, "*monetary", "credit"), json!(10));
    assert_eq!(
        value(&acc, "*voice", "old_minutes"),
        json!(60_000_000_000u64)
    );
    assert_eq!(acc["ActionTriggers"][0]["ID"], json!("TRG_STD"));
    assert_eq!(acc["AllowNegative"], json!(false));
    // 1002's *balance_expired trigger removed its expired minutes at load.
    let acc2 = c.account("1002");
    assert_eq!(acc2["AllowNegative"], json!(true), "{acc2}");
    assert!(balance(&acc2, "*voice", "old_minutes").is_none(), "{acc2}");
    assert_eq!(value(&acc2, "*monetary", "credit"), json!(10));
    let all = c.call("APIerSv2.GetAccounts", json!({"Tenant": "acme.test"}));
    assert_eq!(all.as_array().map(Vec::len), Some(2), "{all}");

    // Max usage: 10.00 at 0.01/s is 1000 s; the expired minutes count for
    // nothing. All three usage forms.
    for u in [
        json!("30m"),
        json!("1800000000000"),
        json!(1_800_000_000_000u64),
    ] {
        let max = c.call("APIerSv1.GetMaxUsage", usage("1001", "1002", u));
        assert_eq!(max, json!(1_000_000_000_000u64));
    }

    // Debits: 500 s leaves 5; 350 s leaves 1.5, below the 2 of the
    // *min_balance trigger, which tops up a bonus of 1.
    assert_eq!(
        c.call("APIerSv1.DebitUsage", usage("1001", "1002", json!("500s"))),
        json!("OK")
    );
    let acc = c.account("1001");
    assert_eq!(value(&acc, "*monetary", "credit"), json!(5));
    assert!(balance(&acc, "*monetary", "bonus").is_none());
    assert_eq!(
        c.call("APIerSv1.DebitUsage", usage("1001", "1002", json!("5m50s"))),
        json!("OK")
    );
    let acc = c.account("1001");
    assert_eq!(value(&acc, "*monetary", "credit"), json!(1.5), "{acc}");
    assert_eq!(value(&acc, "*monetary", "bonus"), json!(1), "{acc}");
    // GetAccount shows the trigger rows with this account's state.
    let low = &acc["ActionTriggers"][0];
    assert_eq!(low["ID"], json!("TRG_STD"), "{acc}");
    assert_eq!(low["UniqueID"], json!("low_credit"));
    assert_eq!(low["ThresholdValue"], json!(2));
    assert_eq!(low["Executed"], json!(true));
    assert_ne!(low["LastExecutionTime"], json!("0001-01-01T00:00:00Z"));
    assert_eq!(acc["ActionTriggers"][1]["Executed"], json!(false));
    // Fired once: another debit does not top up again.
    assert_eq!(
        c.call("APIerSv1.DebitUsage", usage("1001", "1002", json!("10s"))),
        json!("OK")
    );
    let acc = c.account("1001");
    let total = |a: &Value| {
        a["BalanceMap"]["*monetary"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b["Value"].to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(total(&acc), ["1.4", "1"], "{acc}");
    // 10 minutes cost 6.00: more than 2.40.
    let r = c.call("APIerSv1.DebitUsage", usage("1001", "1002", json!("10m")));
    assert_eq!(r, json!("ERR:SERVER_ERROR: INSUFFICIENT_CREDIT"));
    assert_eq!(total(&c.account("1001")), ["1.4", "1"]);

    // AddBalance to 201.4: the *max_balance trigger allows negative.
    let r = c.call(
        "APIerSv1.AddBalance",
        json!({"Tenant": "acme.test", "Account": "1001", "BalanceType": "*monetary", "Value": 200, "Balance": {"ID": "credit"}}),
    );
    assert_eq!(r, json!("OK"));
    let acc = c.account("1001");
    assert_eq!(value(&acc, "*monetary", "credit"), json!(201.4));
    assert_eq!(acc["AllowNegative"], json!(true), "{acc}");
    // SetBalance: exact value and a new weight and expiry.
    let r = c.call(
        "APIerSv1.SetBalance",
        json!({"Tenant": "acme.test", "Account": "1001", "BalanceType": "*monetary", "Value": "3.0001",
               "Balance": {"ID": "credit", "Weight": 30, "ExpiryTime": "2099-01-01T00:00:00Z"}}),
    );
    assert_eq!(r, json!("OK"));
    let acc = c.account("1001");
    let credit = balance(&acc, "*monetary", "credit").unwrap();
    assert_eq!(credit["Value"], json!(3.0001));
    assert_eq!(credit["Weight"], json!(30));
    assert_eq!(credit["ExpirationDate"], json!("2099-01-01T00:00:00Z"));
    // RemoveBalances takes the bonus away.
    let r = c.call(
        "APIerSv1.RemoveBalances",
        json!({"Tenant": "acme.test", "Account": "1001", "BalanceType": "*monetary", "Balance": {"ID": "bonus"}}),
    );
    assert_eq!(r, json!("OK"));
    assert!(balance(&c.account("1001"), "*monetary", "bonus").is_none());
    // ExecuteAction runs the monthly bundle now.
    let r = c.call(
        "APIerSv1.ExecuteAction",
        json!({"Tenant": "acme.test", "Account": "1001", "ActionsId": "ACT_MONTHLY"}),
    );
    assert_eq!(r, json!("OK"));
    assert_eq!(value(&c.account("1001"), "*sms", "sms_bundle"), json!(100));
    // 1002 may go negative.
    assert_eq!(
        c.call("APIerSv1.DebitUsage", usage("1002", "07700", json!("20m"))),
        json!("OK")
    );
    // The credit pays 10.00, the *default balance goes to -2.00.
    let acc2 = c.account("1002");
    assert_eq!(value(&acc2, "*monetary", "credit"), json!(0), "{acc2}");
    assert_eq!(value(&acc2, "*monetary", "*default"), json!(-2), "{acc2}");

    // The plan's definitions.
    let ap = c.call("APIerSv1.GetActionPlan", json!({"ID": "AP_NEW"}));
    assert_eq!(ap[0]["Id"], json!("AP_NEW"), "{ap}");
    assert_eq!(ap[0]["AccountIDs"]["acme.test:1001"], json!(true), "{ap}");
    assert_eq!(ap[0]["ActionTimings"].as_array().map(Vec::len), Some(2));
    assert_eq!(
        ap[0]["ActionTimings"][1]["Timing"]["Timing"]["ID"],
        json!("*monthly")
    );
    let tr = c.call(
        "APIerSv1.GetActionTriggers",
        json!({"GroupIDs": ["TRG_STD"]}),
    );
    assert_eq!(tr.as_array().map(Vec::len), Some(2), "{tr}");
    assert_eq!(tr[0]["ThresholdType"], json!("*min_balance"));
    assert_eq!(tr[0]["ThresholdValue"], json!(2));
    assert_eq!(tr[0]["Balance"]["ID"], json!("credit"));

    // SetAccount creates an account, runs the plan's *asap row, sets the
    // options; RemoveAccount removes it.
    let r = c.call(
        "APIerSv2.SetAccount",
        json!({"Tenant": "acme.test", "Account": "2001", "ActionPlanIDs": ["AP_NEW"],
               "ActionTriggerIDs": ["TRG_STD"], "ExtraOptions": {"Disabled": true}}),
    );
    assert_eq!(r, json!("OK"));
    let acc = c.account("2001");
    assert_eq!(value(&acc, "*monetary", "credit"), json!(10), "{acc}");
    assert_eq!(acc["Disabled"], json!(true));
    let r = c.call("APIerSv1.DebitUsage", usage("2001", "1002", json!("1s")));
    assert_eq!(r, json!("ERR:SERVER_ERROR: ACCOUNT_DISABLED"));
    let ap = c.call("APIerSv1.GetActionPlan", json!({"ID": "AP_NEW"}));
    assert_eq!(ap[0]["AccountIDs"]["acme.test:2001"], json!(true), "{ap}");
    assert_eq!(
        c.call(
            "APIerSv1.RemoveAccount",
            json!({"Tenant": "acme.test", "Account": "2001"})
        ),
        json!("OK")
    );

    // Errors as CGRateS spells them (more in `errors_are_spelled_as_cgrates_spells_them`).
    assert_eq!(c.account("2001"), json!("ERR:NOT_FOUND"));
    assert_eq!(
        c.call("APIerSv1.DebitUsage", usage("nobody", "1002", json!("1s"))),
        json!("ERR:SERVER_ERROR: NOT_FOUND")
    );
    assert_eq!(
        c.call("APIerSv1.DebitUsage", json!({"Tenant": "acme.test"})),
        json!("ERR:MANDATORY_IE_MISSING: [Account Destination Usage]")
    );
}

#[test]
fn accounts_scenario_over_tcp() {
    let dir = plan_dir();
    let s = Server::start(&["--tariffplan", dir.to_str().unwrap()]);
    let mut c = Client::Tcp(Replies::new(s.connect()), 0);
    scenario(&mut c);
}

#[test]
fn accounts_scenario_over_http() {
    let dir = plan_dir();
    let s = Server::start(&["--tariffplan", dir.to_str().unwrap()]);
    let mut c = Client::Http(&s);
    scenario(&mut c);
}

/// Deletes a Redis key prefix's keys when dropped.
struct RedisKeys(String);

impl Drop for RedisKeys {
    fn drop(&mut self) {
        let _ = Command::new("redis-cli")
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

/// The same scenario with the accounts in Redis (`[storage] redis`),
/// under a key prefix of its own, over TCP and then HTTP.
#[test]
fn accounts_scenario_on_redis() {
    for http in [false, true] {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let keys = RedisKeys(format!("accurate-test-{}-{nanos}:", std::process::id()));
        let config = format!(
            "[api]\nrpc-tcp = \"127.0.0.1:0\"\nrpc-http = \"127.0.0.1:0\"\n[storage]\nredis = \"{}\"\nredis-prefix = \"{}\"\n",
            redis_url(),
            keys.0
        );
        let dir = plan_dir();
        let s = Server::start_with(&["--tariffplan", dir.to_str().unwrap()], Some(&config));
        assert!(
            s.seen.iter().any(|l| l.starts_with("store: redis")),
            "{:?}",
            s.seen
        );
        let mut c = if http {
            Client::Http(&s)
        } else {
            Client::Tcp(Replies::new(s.connect()), 0)
        };
        scenario(&mut c);
    }
}

#[test]
fn accurate_load_loads_a_plan_into_a_running_server() {
    let s = Server::start(&[]);
    let mut c = Client::Http(&s);
    assert_eq!(c.account("1001"), json!("ERR:NOT_FOUND"));
    let out = Command::new(ACCURATE)
        .args(["load", plan_dir().to_str().unwrap(), "--server"])
        .arg(format!("http://{}/jsonrpc", s.http))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("2 accounts"), "{stdout}");
    assert_eq!(value(&c.account("1001"), "*monetary", "credit"), json!(10));
}

/// The `accounts` plan uses every action and trigger type: loading it
/// through the API creates its five accounts and runs the `*asap` rows.
#[test]
fn load_folder_with_every_action_type_creates_the_accounts() {
    let s = Server::start(&[]);
    let mut c = Client::Tcp(Replies::new(s.connect()), 0);
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/tariffplans/accounts");
    let r = c.call(
        "APIerSv1.LoadTariffPlanFromFolder",
        json!({"FolderPath": dir.to_str().unwrap()}),
    );
    assert_eq!(r, json!("OK"));
    let all = c.call("APIerSv2.GetAccounts", json!({"Tenant": "acme.test"}));
    let ids: Vec<&str> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["ID"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [
            "acme.test:ann",
            "acme.test:ben",
            "acme.test:cat",
            "acme.test:dan",
            "acme.test:eve"
        ]
    );
    let ann = c.account("ann");
    assert_eq!(value(&ann, "*monetary", "credit"), json!(12.5), "{ann}");
    assert_eq!(
        value(&ann, "*voice", "mobile_minutes"),
        json!(1_800_000_000_000u64)
    );
    let cat = c.account("cat");
    assert_eq!(cat["Disabled"], json!(true));
    let ben = c.account("ben");
    assert_eq!(ben["AllowNegative"], json!(true));
    let tr = c.call("APIerSv1.GetActionTriggers", json!({}));
    assert_eq!(tr.as_array().map(Vec::len), Some(7), "{tr}");
    let limited = c.call(
        "APIerSv2.GetAccounts",
        json!({"Tenant": "acme.test", "Offset": 1, "Limit": 2}),
    );
    assert_eq!(limited.as_array().map(Vec::len), Some(2));
}

/// The scheduler task runs a timed ActionPlan row when it comes due: a
/// Timings.csv row a few seconds ahead, for an account of a copy of the
/// plan.
#[test]
fn the_scheduler_runs_a_timed_action_plan() {
    let dir = plan_copy("sched");
    let at = chrono::Utc::now() + chrono::TimeDelta::seconds(3);
    std::fs::write(
        dir.join("Timings.csv"),
        format!("TM_SOON,*any,*any,*any,*any,{}\n", at.format("%H:%M:%S")),
    )
    .unwrap();
    let mut plans = std::fs::read_to_string(dir.join("ActionPlans.csv")).unwrap();
    plans.push_str("AP_SOON,ACT_LOW,TM_SOON,10\n");
    std::fs::write(dir.join("ActionPlans.csv"), plans).unwrap();
    let mut accts = std::fs::read_to_string(dir.join("AccountActions.csv")).unwrap();
    accts.push_str("acme.test,3001,AP_SOON,,,\n");
    std::fs::write(dir.join("AccountActions.csv"), accts).unwrap();

    let s = Server::start(&["--tariffplan", dir.to_str().unwrap()]);
    let mut c = Client::Http(&s);
    assert!(balance(&c.account("3001"), "*monetary", "bonus").is_none());
    let deadline = Instant::now() + WAIT;
    loop {
        let acc = c.account("3001");
        if let Some(b) = balance(&acc, "*monetary", "bonus") {
            assert_eq!(b["Value"], json!(1));
            break;
        }
        assert!(Instant::now() < deadline, "the plan did not run: {acc}");
        std::thread::sleep(Duration::from_millis(200));
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// A copy of the serve_accounts plan in a fresh temporary folder.
fn plan_copy(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("accurate-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    for e in std::fs::read_dir(plan_dir()).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), dir.join(e.file_name())).unwrap();
    }
    dir
}

/// `*http_post` posts the account's JSON to the URL in ExtraParameters.
#[test]
fn http_post_action_posts_the_account() {
    let hook = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", hook.local_addr().unwrap());
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let (mut conn, _) = hook.accept().unwrap();
        conn.set_read_timeout(Some(WAIT)).unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        // Until the body's last byte (the account JSON ends with `}`).
        while !got.ends_with(b"}") {
            let n = conn.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
        }
        let _ = conn.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
        tx.send(String::from_utf8_lossy(&got).into_owned()).unwrap();
    });
    let dir = plan_copy("post");
    let mut actions = std::fs::read_to_string(dir.join("Actions.csv")).unwrap();
    actions.push_str(&format!("ACT_POST,*http_post,{url},,,,,,,,,,,,,,10\n"));
    std::fs::write(dir.join("Actions.csv"), actions).unwrap();
    let s = Server::start(&["--tariffplan", dir.to_str().unwrap()]);
    let mut c = Client::Http(&s);
    let r = c.call(
        "APIerSv1.ExecuteAction",
        json!({"Tenant": "acme.test", "Account": "1001", "ActionsId": "ACT_POST"}),
    );
    assert_eq!(r, json!("OK"));
    let req = rx.recv_timeout(WAIT).expect("no POST arrived");
    assert!(req.starts_with("POST /hook HTTP/1.1\r\n"), "{req}");
    let body = req.split_once("\r\n\r\n").unwrap().1;
    let acc: Value = serde_json::from_str(body).unwrap();
    assert_eq!(acc["ID"], json!("acme.test:1001"));
    assert_eq!(value(&acc, "*monetary", "credit"), json!(10));
    let _ = std::fs::remove_dir_all(&dir);
}

/// DebitUsage draws on shared groups: a balance in SG_FAMILY stands for
/// the group's balances in every member account (`*lowest` first).
#[test]
fn debit_usage_draws_on_a_shared_group() {
    let dir = plan_copy("shared");
    std::fs::write(
        dir.join("SharedGroups.csv"),
        "#ID,Account,Strategy,RatingSubject\nSG_FAMILY,*any,*lowest,\n",
    )
    .unwrap();
    let mut actions = std::fs::read_to_string(dir.join("Actions.csv")).unwrap();
    actions
        .push_str("ACT_FAMILY,*topup,,,family,*monetary,,*any,,SG_FAMILY,*unlimited,,5,30,,,10\n");
    std::fs::write(dir.join("Actions.csv"), actions).unwrap();
    let s = Server::start(&["--tariffplan", dir.to_str().unwrap()]);
    let mut c = Client::Tcp(Replies::new(s.connect()), 0);
    for a in ["1001", "1002"] {
        let r = c.call(
            "APIerSv1.ExecuteAction",
            json!({"Tenant": "acme.test", "Account": a, "ActionsId": "ACT_FAMILY"}),
        );
        assert_eq!(r, json!("OK"));
    }
    // GetMaxUsage counts the group as the debit does: 1001's family 5,
    // 1002's family 5 and 1001's credit 10 pay 2000 s at 0.01/s (1500 s
    // without 1002's family).
    assert_eq!(
        c.call("APIerSv1.GetMaxUsage", usage("1001", "1002", json!("1h"))),
        json!(2_000_000_000_000u64)
    );
    // 12 minutes cost 7.20: 1001's family 5 and 2.20 of 1002's; the
    // credit (weight 10) is not touched.
    assert_eq!(
        c.call("APIerSv1.DebitUsage", usage("1001", "1002", json!("12m"))),
        json!("OK")
    );
    let a1 = c.account("1001");
    let a2 = c.account("1002");
    assert_eq!(value(&a1, "*monetary", "credit"), json!(10), "{a1}");
    let fam = |a: &Value| value(a, "*monetary", "family").to_string();
    let mut left = [fam(&a1), fam(&a2)];
    left.sort();
    assert_eq!(left, ["0", "2.8"], "{a1} {a2}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A `*balance_expired` trigger fires when the balance expires, with no
/// change of the account to notice it: the scheduler task wakes at the
/// expiry (here the trigger's ACT_CLEAN removes the expired balance).
#[test]
fn balance_expired_trigger_fires_at_the_expiry_time() {
    let dir = plan_dir();
    let s = Server::start(&["--tariffplan", dir.to_str().unwrap()]);
    let mut c = Client::Http(&s);
    let r = c.call(
        "APIerSv1.SetAccount",
        json!({"Tenant": "acme.test", "Account": "4001", "ActionTriggerIDs": ["TRG_EXP"]}),
    );
    assert_eq!(r, json!("OK"));
    let r = c.call(
        "APIerSv1.AddBalance",
        json!({"Tenant": "acme.test", "Account": "4001", "BalanceType": "*voice",
               "Value": 60_000_000_000u64, "Balance": {"ID": "old_minutes", "ExpiryTime": "+2s"}}),
    );
    assert_eq!(r, json!("OK"));
    assert!(balance(&c.account("4001"), "*voice", "old_minutes").is_some());
    let deadline = Instant::now() + WAIT;
    loop {
        // GetAccount only reads: it cannot be what fires the trigger.
        let acc = c.account("4001");
        if balance(&acc, "*voice", "old_minutes").is_none() {
            assert_eq!(acc["ActionTriggers"][0]["Executed"], json!(true), "{acc}");
            break;
        }
        assert!(Instant::now() < deadline, "the trigger did not fire: {acc}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Every error the account methods answer, spelled as CGRateS v0.10
/// spells it (`utils/errors.go`, `apier/v1`): mandatory fields in
/// CGRateS's order, the data DB's `NOT_FOUND` (raw, or wrapped in
/// `SERVER_ERROR:` where the CGRateS method wraps it), `ACCOUNT_DISABLED`.
#[test]
fn errors_are_spelled_as_cgrates_spells_them() {
    let dir = plan_dir();
    let s = Server::start(&["--tariffplan", dir.to_str().unwrap()]);
    let mut c = Client::Http(&s);
    let r = c.call(
        "APIerSv1.SetAccount",
        json!({"Tenant": "acme.test", "Account": "off", "ExtraOptions": {"Disabled": true}}),
    );
    assert_eq!(r, json!("OK"));
    let acme = |more: Value| {
        let mut m = json!({"Tenant": "acme.test"});
        for (k, v) in more.as_object().unwrap() {
            m[k] = v.clone();
        }
        m
    };
    let table: Vec<(&str, Value, &str)> = vec![
        // GetAccount asks for nothing: no Account is `tenant:`, not found.
        (
            "APIerSv2.GetAccount",
            acme(json!({"Account": "nobody"})),
            "NOT_FOUND",
        ),
        ("APIerSv1.GetAccount", acme(json!({})), "NOT_FOUND"),
        // SetAccount: the Account, then the plans and trigger sets looked
        // up (their NOT_FOUND wrapped as a server error).
        (
            "APIerSv1.SetAccount",
            acme(json!({})),
            "MANDATORY_IE_MISSING: [Account]",
        ),
        (
            "APIerSv2.SetAccount",
            acme(json!({"Account": "x", "ActionPlanIDs": ["AP_NONE"]})),
            "SERVER_ERROR: NOT_FOUND",
        ),
        (
            "APIerSv2.SetAccount",
            acme(json!({"Account": "x", "ActionTriggerIDs": ["TRG_NONE"]})),
            "SERVER_ERROR: NOT_FOUND",
        ),
        (
            "APIerSv1.RemoveAccount",
            acme(json!({})),
            "MANDATORY_IE_MISSING: [Account]",
        ),
        // AddBalance: a zero Value is a missing one.
        (
            "APIerSv1.AddBalance",
            acme(json!({})),
            "MANDATORY_IE_MISSING: [Account BalanceType Value]",
        ),
        (
            "APIerSv1.AddBalance",
            acme(json!({"Account": "1001", "BalanceType": "*monetary", "Value": 0})),
            "MANDATORY_IE_MISSING: [Value]",
        ),
        (
            "APIerSv1.SetBalance",
            acme(json!({"Value": 1})),
            "MANDATORY_IE_MISSING: [Account BalanceType]",
        ),
        (
            "APIerSv1.SetBalance",
            acme(json!({"Account": "1001", "BalanceType": "*monetary", "Value": 1})),
            "MANDATORY_IE_MISSING: [BalanceID or BalanceUUID]",
        ),
        (
            "APIerSv1.RemoveBalances",
            acme(json!({"Account": "1001"})),
            "MANDATORY_IE_MISSING: [BalanceType]",
        ),
        (
            "APIerSv1.RemoveBalances",
            acme(
                json!({"Account": "nobody", "BalanceType": "*monetary", "Balance": {"ID": "credit"}}),
            ),
            "NOT_FOUND",
        ),
        // ExecuteAction looks the actions up; an unknown account is
        // created (below), not an error.
        (
            "APIerSv1.ExecuteAction",
            acme(json!({"Account": "1001"})),
            "NOT_FOUND",
        ),
        (
            "APIerSv1.ExecuteAction",
            acme(json!({"Account": "1001", "ActionsId": "ACT_NONE"})),
            "NOT_FOUND",
        ),
        // DebitUsage wraps every debit error; GetMaxUsage does not.
        (
            "APIerSv1.DebitUsage",
            acme(json!({"Account": "1001"})),
            "MANDATORY_IE_MISSING: [Destination Usage]",
        ),
        (
            "APIerSv1.DebitUsage",
            usage("nobody", "1002", json!("1s")),
            "SERVER_ERROR: NOT_FOUND",
        ),
        (
            "APIerSv1.DebitUsage",
            usage("off", "1002", json!("1s")),
            "SERVER_ERROR: ACCOUNT_DISABLED",
        ),
        (
            "APIerSv1.DebitUsage",
            usage("1001", "1002", json!("100h")),
            "SERVER_ERROR: INSUFFICIENT_CREDIT",
        ),
        (
            "APIerSv1.GetMaxUsage",
            usage("nobody", "1002", json!("1s")),
            "NOT_FOUND",
        ),
        (
            "APIerSv1.GetMaxUsage",
            acme(json!({"Destination": "1002"})),
            "NOT_FOUND",
        ),
        (
            "APIerSv1.GetMaxUsage",
            usage("off", "1002", json!("1s")),
            "ACCOUNT_DISABLED",
        ),
        (
            "APIerSv1.GetActionPlan",
            json!({"ID": "AP_NONE"}),
            "NOT_FOUND",
        ),
    ];
    for (method, params, want) in table {
        let got = c.call(method, params.clone());
        assert_eq!(got, json!(format!("ERR:{want}")), "{method} {params}");
    }
    // What CGRateS answers OK: removing an account that is not there,
    // ExecuteAction on a new account (created).
    let r = c.call("APIerSv1.RemoveAccount", acme(json!({"Account": "nobody"})));
    assert_eq!(r, json!("OK"));
    let r = c.call(
        "APIerSv1.ExecuteAction",
        acme(json!({"Account": "fresh", "ActionsId": "ACT_LOW"})),
    );
    assert_eq!(r, json!("OK"));
    assert_eq!(value(&c.account("fresh"), "*monetary", "bonus"), json!(1));
    // SetBalance by the Uuid of an existing balance.
    let uuid = balance(&c.account("fresh"), "*monetary", "bonus").unwrap()["Uuid"].clone();
    let r = c.call(
        "APIerSv1.SetBalance",
        acme(json!({"Account": "fresh", "BalanceType": "*monetary", "Value": 7, "Balance": {"Uuid": uuid}})),
    );
    assert_eq!(r, json!("OK"));
    assert_eq!(value(&c.account("fresh"), "*monetary", "bonus"), json!(7));
}

/// ExecuteAction creates a missing account, and keeps it only when the
/// actions succeed (CGRateS saves the new account after a successful run).
#[test]
fn execute_action_keeps_a_new_account_only_when_the_actions_succeed() {
    let dir = plan_copy("exec");
    let mut actions = std::fs::read_to_string(dir.join("Actions.csv")).unwrap();
    actions.push_str("ACT_BAD,*cgr_rpc,,,,,,,,,,,,,,,10\n");
    std::fs::write(dir.join("Actions.csv"), actions).unwrap();
    let s = Server::start(&["--tariffplan", dir.to_str().unwrap()]);
    let mut c = Client::Http(&s);
    let r = c.call(
        "APIerSv1.ExecuteAction",
        json!({"Tenant": "acme.test", "Account": "ghost", "ActionsId": "ACT_BAD"}),
    );
    assert!(r.as_str().is_some_and(|e| e.starts_with("ERR:")), "{r}");
    assert_eq!(c.account("ghost"), json!("ERR:NOT_FOUND"));
    let _ = std::fs::remove_dir_all(&dir);
}
