//! `APIerSv1.GetActionPlan` and `APIerSv1.GetActionTriggers`: the plan's
//! ActionPlans and ActionTriggers in CGRateS's reply shapes, decimals as
//! exact JSON numbers.

use jsonrpc::RpcError;
use rating::{ActionTriggerDef, ExpiryTime, IdList, TariffStore, json_number};
use serde_json::Value;

use super::methods::{State, object, str_field};

fn q(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".to_owned())
}

fn time(t: Option<chrono::DateTime<chrono::Utc>>) -> String {
    q(&t.map_or_else(
        || "0001-01-01T00:00:00Z".to_owned(),
        |t| t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
    ))
}

/// CGRateS's `StringMap` of a list (`!ID` false), `null` when empty.
fn string_map(ids: &IdList) -> String {
    let set = rating::parse_filter_set(&ids.join(";"));
    if set.is_empty() {
        return "null".to_owned();
    }
    let items: Vec<String> = set.iter().map(|(k, v)| format!("{}:{v}", q(k))).collect();
    format!("{{{}}}", items.join(","))
}

/// `APIerSv1.GetActionPlan`: `{"ID"}` (empty: all) -> `[{Id, AccountIDs,
/// ActionTimings: [{Uuid, Timing: {Timing: {ID}}, ActionsID, ExtraData,
/// Weight}]}]`; `NOT_FOUND` for an unknown ID.
pub(crate) fn get_action_plan(state: &State, params: &Value) -> Result<String, RpcError> {
    let m = object(params, "v1.AttrGetActionPlan")?;
    let id = str_field(&m, "ID", "AttrGetActionPlan")?;
    let plan = state.plan.current();
    let data = plan.account_data();
    let ids: Vec<&str> = if id.is_empty() {
        data.action_plans.keys().map(|k| &**k).collect()
    } else if data.action_plans.contains_key(id) {
        vec![id]
    } else {
        return Err(RpcError::server("NOT_FOUND"));
    };
    let sched = state
        .schedule
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    let mut plans = Vec::new();
    for pid in ids {
        let rows = data.action_plans.get(pid).map_or(&[][..], Vec::as_slice);
        // Accounts named by AccountActions, and those still scheduled
        // (SetAccount adds to these).
        let mut accts: Vec<String> = data
            .account_actions
            .values()
            .filter(|aa| aa.action_plan_id.split(';').any(|p| p == pid))
            .map(|aa| format!("{}:{}", aa.tenant, aa.account))
            .filter(|k| {
                k.split_once(':')
                    .is_some_and(|(t, a)| state.accounts.get(t, a).ok().flatten().is_some())
            })
            .collect();
        accts.extend(sched.accounts_of(pid));
        accts.sort();
        accts.dedup();
        let acct_map: Vec<String> = accts.iter().map(|k| format!("{}:true", q(k))).collect();
        let timings: Vec<String> = rows
            .iter()
            .enumerate()
            .map(|(i, r)| {
                format!(
                    "{{\"Uuid\":{},\"Timing\":{{\"Timing\":{{\"ID\":{}}},\"Weight\":0}},\"ActionsID\":{},\"ExtraData\":null,\"Weight\":{}}}",
                    q(&format!("{pid}#{i}")),
                    q(r.timing.id()),
                    q(&r.actions_id),
                    json_number(r.weight)
                )
            })
            .collect();
        plans.push(format!(
            "{{\"Id\":{},\"AccountIDs\":{{{}}},\"ActionTimings\":[{}]}}",
            q(pid),
            acct_map.join(","),
            timings.join(",")
        ));
    }
    Ok(format!("[{}]", plans.join(",")))
}

/// A trigger row as CGRateS's `engine.ActionTrigger`, with an account's
/// state of it (`Executed`, `LastExecutionTime`).
pub(crate) fn trigger_json(t: &ActionTriggerDef, run: rating::TriggerRun) -> String {
    let expiry = match t.balance_expiry {
        ExpiryTime::At(at) => time(Some(at)),
        _ => "null".to_owned(),
    };
    let opt_num = |d: Option<rust_decimal::Decimal>| d.map_or("null".to_owned(), json_number);
    let opt_bool = |b: Option<bool>| b.map_or("null".to_owned(), |b| b.to_string());
    let balance = format!(
        "{{\"Uuid\":null,\"ID\":{},\"Type\":{},\"Value\":null,\"ExpirationDate\":{expiry},\"Weight\":{},\"DestinationIDs\":{},\"RatingSubject\":{},\"Categories\":{},\"SharedGroups\":{},\"TimingIDs\":{},\"Timings\":null,\"Disabled\":{},\"Factor\":null,\"Blocker\":{}}}",
        if t.balance_id.is_empty() {
            "null".to_owned()
        } else {
            q(&t.balance_id)
        },
        q(&t.balance_type),
        opt_num(t.balance_weight),
        string_map(&t.balance_destination_ids),
        if t.balance_rating_subject.is_empty() {
            "null".to_owned()
        } else {
            q(&t.balance_rating_subject)
        },
        string_map(&t.balance_categories),
        string_map(&t.balance_shared_groups),
        string_map(&t.balance_timing_ids),
        opt_bool(t.balance_disabled),
        opt_bool(t.balance_blocker),
    );
    format!(
        "{{\"ID\":{},\"UniqueID\":{},\"ThresholdType\":{},\"ThresholdValue\":{},\"Recurrent\":{},\"MinSleep\":{},\"ExpirationDate\":{},\"ActivationDate\":{},\"Balance\":{balance},\"Weight\":{},\"ActionsID\":{},\"MinQueuedItems\":{},\"Executed\":{},\"LastExecutionTime\":{}}}",
        q(&t.id),
        q(&t.unique_id),
        q(t.threshold_type.as_str()),
        json_number(t.threshold_value),
        t.recurrent,
        t.min_sleep.as_nanos(),
        time(t.expiry_time),
        time(t.activation_time),
        json_number(t.weight),
        q(&t.actions_id),
        t.stats_min_queued_items.unwrap_or(0),
        run.executed,
        time(run.last_run),
    )
}

/// `APIerSv1.GetActionTriggers`: `{"GroupIDs": [...]}` (empty: all) ->
/// the trigger rows (definitions: `Executed` is per account); `NOT_FOUND`
/// when none.
pub(crate) fn get_action_triggers(state: &State, params: &Value) -> Result<String, RpcError> {
    let m = object(params, "v1.AttrGetActionTriggers")?;
    let groups: Vec<String> = m
        .get("GroupIDs")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    let plan = state.plan.current();
    let data = plan.account_data();
    let mut out = Vec::new();
    for (id, rows) in &data.triggers {
        if groups.is_empty() || groups.iter().any(|g| g == &**id) {
            out.extend(
                rows.iter()
                    .map(|t| trigger_json(t, rating::TriggerRun::default())),
            );
        }
    }
    if out.is_empty() {
        return Err(RpcError::server("NOT_FOUND"));
    }
    Ok(format!("[{}]", out.join(",")))
}

/// The account as CGRateS's JSON, its `ActionTriggers` the full trigger
/// rows of its sets with the account's state of each.
pub(crate) fn account_json(state: &State, acc: &rating::Account) -> String {
    let json = acc.to_json();
    let plan = state.plan.current();
    let defs = &plan.account_data().triggers;
    let mut rows = Vec::new();
    for set in &acc.action_triggers {
        for (i, d) in defs.get(set.as_str()).into_iter().flatten().enumerate() {
            let run = acc
                .trigger_runs
                .get(&rating::trigger_key(d, i))
                .copied()
                .unwrap_or_default();
            rows.push(trigger_json(d, run));
        }
    }
    // The keys are written unescaped and string values escape their
    // quotes, so these two markers occur once each.
    const FROM: &str = ",\"ActionTriggers\":";
    const TO: &str = ",\"AllowNegative\":";
    match (json.find(FROM), json.rfind(TO)) {
        (Some(a), Some(b)) if a < b && !rows.is_empty() => {
            format!("{}{FROM}[{}]{}", &json[..a], rows.join(","), &json[b..])
        }
        _ => json,
    }
}
