//! The v0.10 APIerSv1 profile setters, removers and the getters not
//! answered elsewhere: `Set`/`Remove` of attribute, charger, resource,
//! threshold, stat queue and route (v0.10: supplier) profiles,
//! `GetResourceProfile`, `GetThresholdProfile`, `GetStatQueueProfile`,
//! `GetRouteProfile` / `GetSupplierProfile`.
//!
//! A set profile (v0.10's JSON, the profile embedded or under its type's
//! name) is loaded by its subsystem's CSV loader ([`rows`]) and put in
//! the profiles in force, replacing the one with its tenant and ID. The
//! changes are saved in the store (blob [`BLOB`]: per kind the profiles
//! set, as JSON, and the IDs removed), so a restart has them
//! ([`restore_locked`]); a tariff-plan load ([`rebase`]) forgets the API-set
//! profiles whose IDs the plan defines and every removal, as the filters
//! API does ([`super::filters`], whose lock these edits share).

mod json;
pub(crate) mod rows;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use anyhow::Context;
use jsonrpc::RpcError;
use serde_json::{Value, json};
use subsystems::Profiles;

use self::rows::Kind;
use crate::serve::methods::{State, mandatory_missing, object, str_field};

/// The methods answered here.
pub(crate) const METHODS: &[&str] = &[
    "APIerSv1.SetAttributeProfile",
    "APIerSv1.RemoveAttributeProfile",
    "APIerSv1.SetChargerProfile",
    "APIerSv1.RemoveChargerProfile",
    "APIerSv1.SetResourceProfile",
    "APIerSv1.GetResourceProfile",
    "APIerSv1.RemoveResourceProfile",
    "APIerSv1.SetThresholdProfile",
    "APIerSv1.GetThresholdProfile",
    "APIerSv1.RemoveThresholdProfile",
    "APIerSv1.SetStatQueueProfile",
    "APIerSv1.GetStatQueueProfile",
    "APIerSv1.RemoveStatQueueProfile",
    "APIerSv1.SetRouteProfile",
    "APIerSv1.GetRouteProfile",
    "APIerSv1.RemoveRouteProfile",
    "APIerSv1.SetSupplierProfile",
    "APIerSv1.GetSupplierProfile",
    "APIerSv1.RemoveSupplierProfile",
    "APIerSv1.GetResourceProfileIDs",
    "APIerSv1.GetThresholdProfileIDs",
    "APIerSv1.GetStatQueueProfileIDs",
    "APIerSv1.GetRouteProfileIDs",
    "APIerSv1.GetSupplierProfileIDs",
];

/// The store blob holding the API's profile changes.
pub(crate) const BLOB: &str = "subsystems.api-profiles";

/// CGRateS's default tenant, used when a call names none.
const DEFAULT_TENANT: &str = "cgrates.org";

/// Runs one of [`METHODS`] (off the async workers: writes reach the
/// store).
pub(crate) async fn call(
    state: &Arc<State>,
    method: &str,
    params: &Value,
) -> Result<String, RpcError> {
    let st = Arc::clone(state);
    let (m, p) = (method.to_owned(), params.clone());
    tokio::task::spawn_blocking(move || {
        let name = m.strip_prefix("APIerSv1.").unwrap_or(&m);
        let (verb, kind) = parse_method(name).ok_or_else(|| super::unknown_method(&m))?;
        match verb {
            "Set" => set(&st, kind, &p),
            "Remove" => remove(&st, kind, &p),
            _ if name.ends_with("IDs") => get_ids(&st, kind, &p),
            _ => get(&st, kind, &p, name.contains("Supplier")),
        }
    })
    .await
    .unwrap_or_else(|e| Err(RpcError::server(format!("SERVER_ERROR: {e}"))))
}

/// `SetXProfile` -> ("Set", X).
fn parse_method(name: &str) -> Option<(&'static str, Kind)> {
    let (verb, rest) = ["Set", "Get", "Remove"]
        .into_iter()
        .find_map(|v| name.strip_prefix(v).map(|r| (v, r)))?;
    let kind = match rest.strip_suffix("IDs").unwrap_or(rest) {
        "AttributeProfile" => Kind::Attribute,
        "ChargerProfile" => Kind::Charger,
        "ResourceProfile" => Kind::Resource,
        "ThresholdProfile" => Kind::Threshold,
        "StatQueueProfile" => Kind::Stat,
        "RouteProfile" | "SupplierProfile" => Kind::Route,
        _ => return None,
    };
    Some((verb, kind))
}

fn server(e: impl std::fmt::Display) -> RpcError {
    RpcError::server(format!("SERVER_ERROR: {e}"))
}

fn tenant_or_default(t: &str) -> String {
    if t.is_empty() { DEFAULT_TENANT } else { t }.to_owned()
}

/// `{"Tenant","ID"}`, the ID required.
fn tenant_id(params: &Value, ty: &str) -> Result<(String, String), RpcError> {
    let m = object(params, ty)?;
    let id = str_field(&m, "ID", ty)?;
    if id.is_empty() {
        return Err(mandatory_missing(&["ID"]));
    }
    Ok((
        tenant_or_default(str_field(&m, "Tenant", ty)?),
        id.to_owned(),
    ))
}

fn set(state: &State, kind: Kind, params: &Value) -> Result<String, RpcError> {
    let m = object(params, "engine.ProfileWithCache")?;
    // v0.10 embeds the profile (`AttributeProfileWithCache`...); a nested
    // object under the type's name is read too.
    let nested = ["AttributeProfile", "ChargerProfile", "ResourceProfile"]
        .into_iter()
        .chain(["ThresholdProfile", "StatQueueProfile", "RouteProfile"])
        .chain(["SupplierProfile", "Profile"])
        .find_map(|k| m.get(k).filter(|v| v.is_object()));
    let mut v = match nested {
        Some(v) => v.clone(),
        None => Value::Object(m),
    };
    let id = v.get("ID").and_then(Value::as_str).unwrap_or("").to_owned();
    if id.is_empty() {
        return Err(mandatory_missing(&["ID"]));
    }
    let tenant = tenant_or_default(v.get("Tenant").and_then(Value::as_str).unwrap_or(""));
    if let Some(o) = v.as_object_mut() {
        o.insert("Tenant".into(), Value::String(tenant.clone()));
        o.remove("Cache");
    }
    edit(state, |saved, profiles| {
        kind.insert(profiles, &v, &tenant, &id).map_err(server)?;
        let part = saved.entry(kind.key()).or_default();
        part.removed.remove(&(tenant.clone(), id.clone()));
        part.set.insert((tenant.clone(), id.clone()), v.clone());
        Ok(())
    })
}

fn remove(state: &State, kind: Kind, params: &Value) -> Result<String, RpcError> {
    let (tenant, id) = tenant_id(params, "utils.TenantIDWithCache")?;
    edit(state, |saved, profiles| {
        if !kind.remove(profiles, &tenant, &id) {
            return Err(RpcError::server("NOT_FOUND"));
        }
        let part = saved.entry(kind.key()).or_default();
        part.set.remove(&(tenant.clone(), id.clone()));
        part.removed.insert((tenant.clone(), id.clone()));
        Ok(())
    })
}

/// A getter; `suppliers`: v0.10's `GetSupplierProfile` shape.
fn get(state: &State, kind: Kind, params: &Value, suppliers: bool) -> Result<String, RpcError> {
    let (tenant, id) = tenant_id(params, "utils.TenantID")?;
    let profiles = state.profiles.current();
    let v = match kind {
        Kind::Resource => profiles
            .resources
            .get(&tenant, &id)
            .map(|p| super::resources::profile_json(p)),
        Kind::Threshold => profiles
            .thresholds
            .get(&tenant, &id)
            .map(|p| json::threshold(p)),
        Kind::Stat => profiles.stats.get(&tenant, &id).map(json::stat),
        Kind::Attribute => profiles.attributes.get(&tenant, &id).map(|p| p.to_json()),
        Kind::Charger => profiles.chargers.get(&tenant, &id).map(|p| p.to_json()),
        Kind::Route => profiles
            .routes
            .get(&tenant, &id)
            .map(|p| p.to_json(suppliers)),
    };
    v.map(|v| v.to_string())
        .ok_or_else(|| RpcError::server("NOT_FOUND"))
}

/// `Get...ProfileIDs` (`utils.TenantArgWithPaginator`: `Tenant`,
/// `Limit`, `Offset`): the IDs, sorted; `NOT_FOUND` when none.
fn get_ids(state: &State, kind: Kind, params: &Value) -> Result<String, RpcError> {
    const TY: &str = "utils.TenantArgWithPaginator";
    let m = object(params, TY)?;
    let tenant = tenant_or_default(str_field(&m, "Tenant", TY)?);
    let int = |k: &str| -> Result<Option<usize>, RpcError> {
        match m.get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => v
                .as_u64()
                .map(|n| Some(usize::try_from(n).unwrap_or(usize::MAX)))
                .ok_or_else(|| {
                    RpcError::new(
                        jsonrpc::code::INVALID_PARAMS,
                        format!(
                            "json: cannot unmarshal {} into Go struct field {TY}.{k} of type int",
                            jsonrpc::kind(v)
                        ),
                    )
                }),
        }
    };
    let (limit, offset) = (int("Limit")?, int("Offset")?.unwrap_or(0));
    let ids: Vec<String> = kind
        .ids(&state.profiles.current(), &tenant)
        .into_iter()
        .skip(offset)
        .take(limit.filter(|l| *l > 0).unwrap_or(usize::MAX))
        .collect();
    if ids.is_empty() {
        return Err(RpcError::server("NOT_FOUND"));
    }
    Ok(json!(ids).to_string())
}

/// One kind's API changes.
#[derive(Default)]
struct Part {
    /// The profiles set, as their JSON, by (tenant, ID).
    set: BTreeMap<(String, String), Value>,
    /// The (tenant, ID)s removed.
    removed: BTreeSet<(String, String)>,
}

/// Every kind's API changes, by [`Kind::key`].
type Saved = BTreeMap<&'static str, Part>;

fn read(state: &State) -> anyhow::Result<Saved> {
    let mut saved = Saved::new();
    let Some(blob) = state
        .meta
        .get_meta(BLOB)
        .context("reading the API-set profiles")?
    else {
        return Ok(saved);
    };
    let v: Value =
        serde_json::from_slice(&blob).context("the saved API-set profiles are damaged")?;
    for kind in Kind::ALL {
        let Some(p) = v.get(kind.key()) else { continue };
        let mut part = Part::default();
        let key = |x: &Value| {
            let s = |k: &str| x.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
            (s("Tenant"), s("ID"))
        };
        for x in p.get("Set").and_then(Value::as_array).into_iter().flatten() {
            part.set.insert(key(x), x.clone());
        }
        for x in p
            .get("Removed")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            part.removed.insert(key(x));
        }
        saved.insert(kind.key(), part);
    }
    Ok(saved)
}

fn write(state: &State, saved: &Saved) -> anyhow::Result<()> {
    let mut out = serde_json::Map::new();
    for (k, part) in saved {
        let removed: Vec<Value> = part
            .removed
            .iter()
            .map(|(t, id)| json!({"Tenant": t, "ID": id}))
            .collect();
        out.insert(
            (*k).to_owned(),
            json!({"Set": part.set.values().collect::<Vec<_>>(), "Removed": removed}),
        );
    }
    state
        .meta
        .put_meta(BLOB, Value::Object(out).to_string().as_bytes())
        .context("saving the API-set profiles")
}

/// Applies `saved` to `profiles`: removals, then the profiles set (one
/// that no longer loads is skipped with a warning).
fn apply(saved: &Saved, profiles: &mut Profiles) {
    for kind in Kind::ALL {
        let Some(part) = saved.get(kind.key()) else {
            continue;
        };
        for (t, id) in &part.removed {
            kind.remove(profiles, t, id);
        }
        for ((t, id), v) in &part.set {
            if let Err(e) = kind.insert(profiles, v, t, id) {
                tracing::warn!(kind = kind.key(), tenant = %t, id = %id, error = %e,
                    "an API-set profile no longer loads: skipped");
            }
        }
    }
}

/// Changes the saved API profiles and the profiles in force together.
fn edit(
    state: &State,
    change: impl FnOnce(&mut Saved, &mut Profiles) -> Result<(), RpcError>,
) -> Result<String, RpcError> {
    let _guard = super::filters::lock();
    let mut saved = read(state).map_err(|e| server(format!("{e:#}")))?;
    let mut profiles = (*state.profiles.current()).clone();
    change(&mut saved, &mut profiles)?;
    write(state, &saved).map_err(|e| server(format!("{e:#}")))?;
    state.profiles.replace(profiles);
    Ok("\"OK\"".to_owned())
}

/// Applies the saved API profile changes to the profiles in force (at
/// start, after the saved plan); call with the filters' lock held.
///
/// # Errors
/// A store error or a damaged blob.
pub(crate) fn restore_locked(state: &State) -> anyhow::Result<()> {
    let saved = read(state)?;
    if saved
        .values()
        .all(|p| p.set.is_empty() && p.removed.is_empty())
    {
        return Ok(());
    }
    let mut profiles = (*state.profiles.current()).clone();
    apply(&saved, &mut profiles);
    state.profiles.replace(profiles);
    Ok(())
}

/// A freshly loaded plan's `profiles` before they are put in force: the
/// API-set profiles the plan also defines give way to the plan's, the
/// others are kept; removals are forgotten (the plan is the new base).
/// Call with the filters' lock held.
///
/// # Errors
/// A store error or a damaged blob.
pub(crate) fn rebase(state: &State, profiles: &mut Profiles) -> anyhow::Result<()> {
    let mut saved = read(state)?;
    if saved.is_empty() {
        return Ok(());
    }
    for kind in Kind::ALL {
        if let Some(part) = saved.get_mut(kind.key()) {
            part.removed.clear();
            part.set.retain(|(t, id), _| !kind.has(profiles, t, id));
        }
    }
    write(state, &saved)?;
    apply(&saved, profiles);
    Ok(())
}
