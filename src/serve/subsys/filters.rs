//! FilterS's v0.10 API: `APIerSv1.GetFilter`, `SetFilter`, `RemoveFilter`
//! and `GetFilterIDs` over the filters in force
//! ([`State::profiles`](crate::serve::methods::State)).
//!
//! Filters set or removed through the API change the profiles in force
//! and are saved in the store (the [`API_FILTERS_BLOB`] blob: the filters
//! set and the IDs removed), so a restart has them: [`restore`] applies
//! them after the saved plan is put in force. A tariff-plan load
//! ([`put_in_force`]) overwrites API-set filters the folder defines, as
//! CGRateS's loader overwrites them in its DataDB, and keeps the others.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use anyhow::Context;
use jsonrpc::RpcError;
use serde_json::{Map, Value, json};
use subsystems::Profiles;
use subsystems::filters::Filter;

use crate::serve::methods::{State, mandatory_missing, object, str_field};

/// The methods answered here.
pub(crate) const METHODS: &[&str] = &[
    "APIerSv1.GetFilter",
    "APIerSv1.SetFilter",
    "APIerSv1.RemoveFilter",
    "APIerSv1.GetFilterIDs",
];

/// The store blob holding the API's filter changes.
pub(crate) const API_FILTERS_BLOB: &str = "subsystems.api-filters";

/// CGRateS's default tenant, used when a call names none.
const DEFAULT_TENANT: &str = "cgrates.org";

/// Serializes the read-modify-write of the profiles and the blob.
static EDIT: Mutex<()> = Mutex::new(());

/// Takes the lock every API edit of the profiles in force holds.
pub(crate) fn lock() -> std::sync::MutexGuard<'static, ()> {
    EDIT.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Runs one of [`METHODS`] (off the async workers: writes reach the
/// store).
pub(crate) async fn call(
    state: &Arc<State>,
    method: &str,
    params: &Value,
) -> Result<String, RpcError> {
    let st = Arc::clone(state);
    let (m, p) = (method.to_owned(), params.clone());
    tokio::task::spawn_blocking(move || match m.as_str() {
        "APIerSv1.GetFilter" => get_filter(&st, &p),
        "APIerSv1.SetFilter" => set_filter(&st, &p),
        "APIerSv1.RemoveFilter" => remove_filter(&st, &p),
        "APIerSv1.GetFilterIDs" => get_filter_ids(&st, &p),
        _ => Err(super::unknown_method(&m)),
    })
    .await
    .unwrap_or_else(|e| Err(RpcError::server(format!("SERVER_ERROR: {e}"))))
}

fn not_found() -> RpcError {
    RpcError::server("NOT_FOUND")
}

fn server_error(e: &anyhow::Error) -> RpcError {
    RpcError::server(format!("SERVER_ERROR: {e:#}"))
}

/// `{"Tenant", "ID"}` with the ID required and the tenant defaulted.
fn tenant_id(params: &Value, ty: &str) -> Result<(String, String), RpcError> {
    let m = object(params, ty)?;
    let id = str_field(&m, "ID", ty)?;
    if id.is_empty() {
        return Err(mandatory_missing(&["ID"]));
    }
    let tenant = match str_field(&m, "Tenant", ty)? {
        "" => DEFAULT_TENANT,
        t => t,
    };
    Ok((tenant.to_owned(), id.to_owned()))
}

fn get_filter(state: &State, params: &Value) -> Result<String, RpcError> {
    let (tenant, id) = tenant_id(params, "utils.TenantID")?;
    let profiles = state.profiles.current();
    let f = profiles.filters.get(&tenant, &id).ok_or_else(not_found)?;
    Ok(f.to_json().to_string())
}

fn get_filter_ids(state: &State, params: &Value) -> Result<String, RpcError> {
    const TY: &str = "utils.TenantArgWithPaginator";
    let m = object(params, TY)?;
    let tenant = match str_field(&m, "Tenant", TY)? {
        "" => DEFAULT_TENANT,
        t => t,
    };
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
    let ids = state.profiles.current().filters.ids(tenant);
    if ids.is_empty() {
        return Err(not_found());
    }
    let page: Vec<&String> = ids
        .iter()
        .skip(offset)
        .take(limit.unwrap_or(usize::MAX))
        .collect();
    Ok(json!(page).to_string())
}

fn set_filter(state: &State, params: &Value) -> Result<String, RpcError> {
    let m = object(params, "engine.FilterWithCache")?;
    // v0.10 embeds the filter; a nested `Filter` object is read too.
    let v = match m.get("Filter") {
        Some(f @ Value::Object(_)) => f.clone(),
        _ => Value::Object(m),
    };
    if v.get("ID")
        .and_then(Value::as_str)
        .is_none_or(str::is_empty)
    {
        return Err(mandatory_missing(&["ID"]));
    }
    let f = Filter::from_json(&v, DEFAULT_TENANT)
        .map_err(|e| RpcError::server(format!("SERVER_ERROR: {e}")))?;
    edit(state, |saved, profiles| {
        let key = (f.tenant.clone(), f.id.clone());
        saved.removed.remove(&key);
        saved.set.retain(|s| (&s.tenant, &s.id) != (&key.0, &key.1));
        saved.set.push(f.clone());
        profiles.filters.insert(f);
        Ok(())
    })
}

fn remove_filter(state: &State, params: &Value) -> Result<String, RpcError> {
    let (tenant, id) = tenant_id(params, "utils.TenantIDWithCache")?;
    edit(state, |saved, profiles| {
        if profiles.filters.remove(&tenant, &id).is_none() {
            return Err(not_found());
        }
        saved.set.retain(|s| (&s.tenant, &s.id) != (&tenant, &id));
        saved.removed.insert((tenant.clone(), id.clone()));
        Ok(())
    })
}

/// Changes the saved API filters and the profiles in force together.
fn edit(
    state: &State,
    change: impl FnOnce(&mut Saved, &mut Profiles) -> Result<(), RpcError>,
) -> Result<String, RpcError> {
    let _guard = EDIT
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut saved = Saved::read(state).map_err(|e| server_error(&e))?;
    let mut profiles = (*state.profiles.current()).clone();
    change(&mut saved, &mut profiles)?;
    saved.write(state).map_err(|e| server_error(&e))?;
    state.profiles.replace(profiles);
    Ok("\"OK\"".to_owned())
}

/// The filter changes made through the API.
#[derive(Default)]
struct Saved {
    set: Vec<Filter>,
    removed: BTreeSet<(String, String)>,
}

impl Saved {
    fn read(state: &State) -> anyhow::Result<Saved> {
        let Some(blob) = state
            .meta
            .get_meta(API_FILTERS_BLOB)
            .context("reading the API-set filters")?
        else {
            return Ok(Saved::default());
        };
        let v: Value =
            serde_json::from_slice(&blob).context("the saved API-set filters are damaged")?;
        let mut saved = Saved::default();
        for f in v.get("Set").and_then(Value::as_array).into_iter().flatten() {
            saved.set.push(
                Filter::from_json(f, DEFAULT_TENANT)
                    .with_context(|| format!("a saved API-set filter no longer loads: {f}"))?,
            );
        }
        for r in v
            .get("Removed")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let s = |k: &str| r.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
            saved.removed.insert((s("Tenant"), s("ID")));
        }
        Ok(saved)
    }

    fn write(&self, state: &State) -> anyhow::Result<()> {
        let removed: Vec<Value> = self
            .removed
            .iter()
            .map(|(t, id)| {
                let mut m = Map::new();
                m.insert("Tenant".into(), Value::String(t.clone()));
                m.insert("ID".into(), Value::String(id.clone()));
                Value::Object(m)
            })
            .collect();
        let v = json!({
            "Set": self.set.iter().map(Filter::to_json).collect::<Vec<_>>(),
            "Removed": removed,
        });
        state
            .meta
            .put_meta(API_FILTERS_BLOB, v.to_string().as_bytes())
            .context("saving the API-set filters")
    }

    fn is_empty(&self) -> bool {
        self.set.is_empty() && self.removed.is_empty()
    }

    fn apply(&self, profiles: &mut Profiles) {
        for (t, id) in &self.removed {
            profiles.filters.remove(t, id);
        }
        for f in &self.set {
            profiles.filters.insert(f.clone());
        }
    }
}

/// Applies the saved API filter changes to the profiles in force (at
/// start, after the saved plan); how many changes there were.
///
/// # Errors
/// A store error or a damaged blob.
pub(crate) fn restore(state: &State) -> anyhow::Result<usize> {
    let _guard = EDIT
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    super::profiles_api::restore_locked(state)?;
    let saved = Saved::read(state)?;
    if saved.is_empty() {
        return Ok(0);
    }
    let mut profiles = (*state.profiles.current()).clone();
    saved.apply(&mut profiles);
    state.profiles.replace(profiles);
    Ok(saved.set.len() + saved.removed.len())
}

/// Puts a freshly loaded plan's `profiles` in force: API-set filters the
/// plan also defines give way to the plan's, the others are kept; removals
/// are forgotten (the plan is the new base).
///
/// # Errors
/// A store error or a damaged blob.
pub(crate) fn put_in_force(state: &State, mut profiles: Profiles) -> anyhow::Result<()> {
    let _guard = EDIT
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut saved = Saved::read(state)?;
    if !saved.is_empty() {
        saved.removed.clear();
        saved
            .set
            .retain(|f| profiles.filters.get(&f.tenant, &f.id).is_none());
        saved.write(state)?;
        saved.apply(&mut profiles);
    }
    super::profiles_api::rebase(state, &mut profiles)?;
    state.profiles.replace(profiles);
    Ok(())
}
