//! The balance methods of `accurate serve` (APIerSv1 AddBalance,
//! SetBalance, RemoveBalances): the API argument becomes one action,
//! run on the account like any other (triggers included).

use std::str::FromStr;
use std::sync::Arc;

use chrono::Utc;
use jsonrpc::{RpcError, code};
use rating::{Account, ActionDef, ActionType, ExpiryTime};
use rust_decimal::Decimal;
use serde_json::{Map, Value};

use super::accounts::{rpc_error, run_defs, tenant_account};
use super::methods::{State, mandatory_missing, object, str_field};

/// A JSON number or string as an exact decimal.
fn decimal(v: &Value, what: &str) -> Result<Decimal, RpcError> {
    let s = match v {
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.clone(),
        _ => {
            return Err(RpcError::new(
                code::INVALID_PARAMS,
                format!("{what}: expected a number"),
            ));
        }
    };
    Decimal::from_str(&s)
        .or_else(|_| Decimal::from_scientific(&s))
        .map_err(|_| RpcError::new(code::INVALID_PARAMS, format!("{what}: invalid number {s}")))
}

/// An action built from an API balance argument (`BalanceType`, `Value`,
/// `Balance: {ID, Weight, DestinationIDs, ExpiryTime, RatingSubject,
/// Categories, SharedGroups, TimingIDs, Blocker, Disabled}`).
fn balance_action(
    m: &Map<String, Value>,
    action: ActionType,
    ty: &str,
) -> Result<ActionDef, RpcError> {
    let bt = str_field(m, "BalanceType", ty)?;
    if bt.is_empty() {
        return Err(mandatory_missing(&["BalanceType"]));
    }
    if bt.parse::<rating::BalanceType>().is_err() {
        return Err(RpcError::server(format!(
            "SERVER_ERROR: unsupported BalanceType {bt}"
        )));
    }
    let units = match m.get("Value") {
        None | Some(Value::Null) => None,
        Some(v) => Some(decimal(v, "Value")?),
    };
    let empty = Map::new();
    let b = m
        .get("Balance")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let s = |k: &str| b.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
    let list = |k: &str| id_list(b.get(k));
    let expiry = ExpiryTime::parse(&s("ExpiryTime")).ok_or_else(|| {
        RpcError::new(
            code::INVALID_PARAMS,
            format!("Unsupported time format: {}", s("ExpiryTime")),
        )
    })?;
    let weight = match b.get("Weight") {
        None | Some(Value::Null) => None,
        Some(v) => Some(decimal(v, "Balance.Weight")?),
    };
    Ok(ActionDef {
        id: Arc::from("*api"),
        action,
        extra_parameters: Arc::from(""),
        filters: Box::default(),
        balance_id: Arc::from(s("ID").as_str()),
        balance_type: Arc::from(bt),
        directions: Box::default(),
        categories: list("Categories"),
        destination_ids: list("DestinationIDs"),
        rating_subject: Arc::from(s("RatingSubject").as_str()),
        shared_groups: list("SharedGroups"),
        expiry,
        timing_ids: list("TimingIDs"),
        units,
        balance_weight: weight,
        balance_blocker: b.get("Blocker").and_then(Value::as_bool),
        balance_disabled: b.get("Disabled").and_then(Value::as_bool),
        weight: Decimal::ZERO,
    })
}

/// Runs one API-built action on an account, created if missing when
/// `create`.
fn api_action(state: &State, params: &Value, method: Method) -> Result<String, RpcError> {
    let (go_type, ty, action) = match method {
        Method::Add => ("v1.AttrAddBalance", "AttrAddBalance", ActionType::Topup),
        Method::Set => (
            "utils.AttrSetBalance",
            "AttrSetBalance",
            ActionType::SetBalance,
        ),
        Method::Remove => (
            "utils.AttrSetBalance",
            "AttrSetBalance",
            ActionType::RemoveBalance,
        ),
    };
    let m = object(params, go_type)?;
    // CGRateS's MissingStructFields: a zero Value is missing too.
    let mut missing = Vec::new();
    if str_field(&m, "Account", ty)?.is_empty() {
        missing.push("Account");
    }
    if str_field(&m, "BalanceType", ty)?.is_empty() {
        missing.push("BalanceType");
    }
    if method == Method::Add
        && m.get("Value")
            .map_or(Ok(Decimal::ZERO), |v| match v {
                Value::Null => Ok(Decimal::ZERO),
                v => decimal(v, "Value"),
            })?
            .is_zero()
    {
        missing.push("Value");
    }
    if !missing.is_empty() {
        return Err(mandatory_missing(&missing));
    }
    let (t, a) = tenant_account(&m, ty)?;
    let mut def = balance_action(&m, action, ty)?;
    if action == ActionType::Topup && m.get("Overwrite").and_then(Value::as_bool) == Some(true) {
        def.action = ActionType::TopupReset;
    }
    let existing = state.accounts.get(&t, &a).map_err(|e| rpc_error(&e))?;
    let uuid = m
        .get("Balance")
        .and_then(|b| b.get("Uuid"))
        .and_then(Value::as_str)
        .unwrap_or("");
    if method == Method::Set && def.balance_id.is_empty() {
        // The balance by its Uuid, else CGRateS's error.
        let id = existing.as_ref().and_then(|acc| {
            acc.balances
                .values()
                .flatten()
                .find(|b| !uuid.is_empty() && b.uuid == uuid)
                .map(|b| b.id.clone())
        });
        match id {
            Some(id) if !id.is_empty() => def.balance_id = Arc::from(id.as_str()),
            _ => return Err(mandatory_missing(&["BalanceID", "or", "BalanceUUID"])),
        }
    }
    if existing.is_none() {
        if method == Method::Remove {
            return Err(RpcError::server("NOT_FOUND"));
        }
        state
            .accounts
            .set(Account::new(&t, &a))
            .map_err(|e| rpc_error(&e))?;
    }
    run_defs(state, &t, &a, &[def], Utc::now(), 0).map_err(|e| rpc_error(&e))?;
    Ok("\"OK\"".to_owned())
}

/// Which balance method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Method {
    /// AddBalance: mandatory Account, BalanceType and a non-zero Value;
    /// creates the account.
    Add,
    /// SetBalance: mandatory Account, BalanceType and Balance.ID (or the
    /// Uuid of an existing balance); creates the account.
    Set,
    /// RemoveBalances: mandatory Account and BalanceType; `NOT_FOUND` for
    /// an unknown account.
    Remove,
}

/// `APIerSv1.AddBalance`: a `*topup` (`*topup_reset` with Overwrite).
pub(crate) fn add_balance(state: &State, params: &Value) -> Result<String, RpcError> {
    api_action(state, params, Method::Add)
}

/// `APIerSv1.SetBalance`: a `*set_balance`.
pub(crate) fn set_balance(state: &State, params: &Value) -> Result<String, RpcError> {
    api_action(state, params, Method::Set)
}

/// `APIerSv1.RemoveBalances`: a `*remove_balance`.
pub(crate) fn remove_balances(state: &State, params: &Value) -> Result<String, RpcError> {
    api_action(state, params, Method::Remove)
}

/// A list field of a balance argument: CGRateS's `;`-separated string
/// (`"DST_1;!DST_2"`) or a JSON array of strings, as clients send both.
fn id_list(v: Option<&Value>) -> rating::IdList {
    match v {
        Some(Value::String(t)) => t
            .split(';')
            .map(str::trim)
            .filter(|x| !x.is_empty())
            .map(Arc::from)
            .collect(),
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(Value::as_str)
            .map(str::trim)
            .filter(|x| !x.is_empty())
            .map(Arc::from)
            .collect(),
        _ => rating::IdList::default(),
    }
}

#[cfg(test)]
mod id_list_tests {
    use super::*;

    #[test]
    fn list_fields_take_strings_and_arrays() {
        let want: Vec<&str> = vec!["DST_1", "!DST_2"];
        let got =
            |v: Value| -> Vec<String> { id_list(Some(&v)).iter().map(|x| x.to_string()).collect() };
        assert_eq!(got(serde_json::json!("DST_1;!DST_2")), want);
        assert_eq!(got(serde_json::json!(["DST_1", "!DST_2"])), want);
        assert!(got(serde_json::json!(null)).is_empty());
    }
}
