//! RouteS (SupplierS in CGRateS v0.10): route profiles from Routes.csv
//! (and v0.10's Suppliers.csv, the same columns under `Supplier*` names),
//! the profiles matching an event, and their routes sorted by one of
//! CGRateS's strategies ([`sort`]).
//!
//! Columns: `Tenant,ID,FilterIDs,ActivationInterval,Sorting,
//! SortingParameters,RouteID,RouteFilterIDs,RouteAccountIDs,
//! RouteRatingPlanIDs,RouteResourceIDs,RouteStatIDs,RouteWeight,
//! RouteBlocker,RouteParameters,Weight`. Rows with the same Tenant and ID
//! make one profile; rows with the same RouteID and RouteFilterIDs make
//! one route (their lists add up).

use std::path::Path;

use chrono::{DateTime, Utc};
use rustc_hash::FxHashMap;
use serde_json::{Map, Value};

use crate::activation::ActivationInterval;
use crate::{Error, Event, FilterCtx};

pub mod sort;

pub use sort::{
    GetRoutesOpts, MaxCostOpt, RouteCost, RouteData, SortedRoute, SortedRoutes, sorted_routes,
};

/// A sorting strategy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Sorting {
    /// `*weight`: by route weight, highest first.
    Weight,
    /// `*lc` (v0.10 also `*least_cost`): by cost, lowest first.
    LeastCost,
    /// `*hc` (`*highest_cost`): by cost, highest first.
    HighestCost,
    /// `*qos`: by the stat metrics named in SortingParameters.
    Qos,
    /// `*reas`: by resource usage, lowest first.
    ResourceAscending,
    /// `*reds`: by resource usage, highest first.
    ResourceDescending,
    /// `*load`: by load (stat metrics) over the route's ratio, lowest first.
    Load,
}

impl Sorting {
    /// The strategy CGRateS names `s`.
    #[must_use]
    pub fn parse(s: &str) -> Option<Sorting> {
        Some(match s {
            "*weight" => Sorting::Weight,
            "*lc" | "*least_cost" => Sorting::LeastCost,
            "*hc" | "*highest_cost" => Sorting::HighestCost,
            "*qos" => Sorting::Qos,
            "*reas" => Sorting::ResourceAscending,
            "*reds" => Sorting::ResourceDescending,
            "*load" => Sorting::Load,
            _ => return None,
        })
    }
}

/// One route of a profile.
#[derive(Debug, Clone, PartialEq)]
pub struct Route {
    /// RouteID.
    pub id: String,
    /// RouteFilterIDs: the route is left out when they fail.
    pub filter_ids: Vec<String>,
    /// RouteAccountIDs.
    pub account_ids: Vec<String>,
    /// RouteRatingPlanIDs: the first that rates the event gives the cost.
    pub rating_plan_ids: Vec<String>,
    /// RouteResourceIDs.
    pub resource_ids: Vec<String>,
    /// RouteStatIDs (`StatID` or, for `*load`, `StatID:MetricID`).
    pub stat_ids: Vec<String>,
    /// RouteWeight (CGRateS's float64).
    pub weight: f64,
    /// RouteBlocker: no route after this one (in sorted order).
    pub blocker: bool,
    /// RouteParameters, passed through.
    pub parameters: String,
}

/// A route profile.
#[derive(Debug, Clone, PartialEq)]
pub struct RouteProfile {
    /// Tenant.
    pub tenant: String,
    /// ID.
    pub id: String,
    /// FilterIDs the event must pass.
    pub filter_ids: Vec<String>,
    /// When it is in force.
    pub activation: ActivationInterval,
    /// Sorting, as written (`*lc`, `*least_cost`...).
    pub sorting: String,
    /// The parsed sorting.
    pub strategy: Sorting,
    /// SortingParameters (`*acd;*asr` for `*qos`, `route:ratio` for
    /// `*load`).
    pub sorting_parameters: Vec<String>,
    /// The routes, in file order.
    pub routes: Vec<Route>,
    /// Weight: of several matching profiles the heaviest wins.
    pub weight: f64,
}

/// The route profiles of one tariff plan.
#[derive(Debug, Clone, Default)]
pub struct RouteProfiles {
    /// Profiles in load order.
    profiles: Vec<RouteProfile>,
    /// (tenant, ID) -> index in `profiles`.
    index: FxHashMap<(String, String), usize>,
    /// Per profile: (RouteID, RouteFilterIDs text) -> index in its routes.
    route_keys: Vec<FxHashMap<(String, String), usize>>,
}

use crate::columns::list;

/// A number column; `None` when empty (not given).
fn parse_f64(s: &str) -> Result<Option<f64>, String> {
    if s.trim().is_empty() {
        return Ok(None);
    }
    crate::columns::parse_f64(s).map(Some)
}

/// A boolean column; `None` when empty (not given).
fn parse_bool(s: &str) -> Result<Option<bool>, String> {
    if s.trim().is_empty() {
        return Ok(None);
    }
    crate::columns::parse_bool(s).map(Some)
}

impl RouteProfiles {
    /// Loads Routes.csv or Suppliers.csv.
    ///
    /// # Errors
    /// [`Error::Load`] naming the line and column.
    pub fn load(records: &rating::csv::Records, file: &Path) -> Result<RouteProfiles, Error> {
        let mut set = RouteProfiles::default();
        for r in records.iter() {
            let err = |column: usize, why: String| Error::Load {
                file: file.to_owned(),
                line: r.line,
                column,
                why,
            };
            let (tenant, id) = (r.field(0), r.field(1));
            if tenant.is_empty() || id.is_empty() {
                return Err(err(0, "Tenant and ID are required".into()));
            }
            let activation = ActivationInterval::parse(r.field(3)).map_err(|e| err(4, e))?;
            let sorting = r.field(4);
            let strategy =
                if sorting.is_empty() {
                    None
                } else {
                    Some(Sorting::parse(sorting).ok_or_else(|| {
                        err(5, format!("unsupported sorting strategy: {sorting}"))
                    })?)
                };
            let route_weight = parse_f64(r.field(12)).map_err(|e| err(13, e))?;
            let blocker = parse_bool(r.field(13)).map_err(|e| err(14, e))?;
            let weight = parse_f64(r.field(15)).map_err(|e| err(16, e))?;
            let key = (tenant.to_owned(), id.to_owned());
            let pi = match set.index.get(&key) {
                Some(&i) => i,
                None => {
                    set.profiles.push(RouteProfile {
                        tenant: key.0.clone(),
                        id: key.1.clone(),
                        filter_ids: Vec::new(),
                        activation: ActivationInterval::default(),
                        sorting: String::new(),
                        strategy: Sorting::Weight,
                        sorting_parameters: Vec::new(),
                        routes: Vec::new(),
                        weight: 0.0,
                    });
                    set.route_keys.push(FxHashMap::default());
                    set.index.insert(key, set.profiles.len() - 1);
                    set.profiles.len() - 1
                }
            };
            let (Some(p), Some(keys)) = (set.profiles.get_mut(pi), set.route_keys.get_mut(pi))
            else {
                return Err(err(0, "internal: profile index".into()));
            };
            p.filter_ids.extend(list(r.field(2)));
            if activation != ActivationInterval::default() {
                p.activation = activation;
            }
            if let Some(s) = strategy {
                sorting.clone_into(&mut p.sorting);
                p.strategy = s;
            }
            p.sorting_parameters.extend(list(r.field(5)));
            if let Some(w) = weight {
                p.weight = w;
            }
            let route_id = r.field(6);
            if route_id.is_empty() {
                continue;
            }
            let rkey = (route_id.to_owned(), r.field(7).to_owned());
            let ri = match keys.get(&rkey) {
                Some(&i) => i,
                None => {
                    p.routes.push(Route {
                        id: route_id.to_owned(),
                        filter_ids: Vec::new(),
                        account_ids: Vec::new(),
                        rating_plan_ids: Vec::new(),
                        resource_ids: Vec::new(),
                        stat_ids: Vec::new(),
                        weight: 0.0,
                        blocker: false,
                        parameters: String::new(),
                    });
                    keys.insert(rkey, p.routes.len() - 1);
                    p.routes.len() - 1
                }
            };
            let Some(route) = p.routes.get_mut(ri) else {
                return Err(err(0, "internal: route index".into()));
            };
            route.filter_ids.extend(list(r.field(7)));
            route.account_ids.extend(list(r.field(8)));
            route.rating_plan_ids.extend(list(r.field(9)));
            route.resource_ids.extend(list(r.field(10)));
            route.stat_ids.extend(list(r.field(11)));
            if let Some(w) = route_weight {
                route.weight = w;
            }
            if let Some(b) = blocker {
                route.blocker = b;
            }
            if !r.field(14).is_empty() {
                r.field(14).clone_into(&mut route.parameters);
            }
        }
        for p in &mut set.profiles {
            if p.sorting.is_empty() {
                "*weight".clone_into(&mut p.sorting);
            }
            if p.strategy == Sorting::Load {
                // `route:ratio` pairs must read now, not at the first call.
                for sp in &p.sorting_parameters {
                    let ok = sp
                        .split_once(':')
                        .is_some_and(|(_, r)| r.trim().parse::<i64>().is_ok());
                    if !ok {
                        return Err(Error::Load {
                            file: file.to_owned(),
                            line: 0,
                            column: 6,
                            why: format!(
                                "profile {}: *load SortingParameters want route:ratio, not {sp:?}",
                                p.id
                            ),
                        });
                    }
                }
            }
        }
        Ok(set)
    }

    /// Adds the profiles of a second file (Routes.csv and Suppliers.csv);
    /// a profile of `other` with a tenant and ID already here replaces it.
    pub fn merge(&mut self, other: RouteProfiles) {
        for (p, keys) in other.profiles.into_iter().zip(other.route_keys) {
            let key = (p.tenant.clone(), p.id.clone());
            if let Some(&i) = self.index.get(&key)
                && let (Some(slot), Some(kslot)) =
                    (self.profiles.get_mut(i), self.route_keys.get_mut(i))
            {
                *slot = p;
                *kslot = keys;
                continue;
            }
            self.profiles.push(p);
            self.route_keys.push(keys);
            self.index.insert(key, self.profiles.len() - 1);
        }
    }

    /// The IDs of `tenant`'s profiles, sorted.
    #[must_use]
    pub fn ids(&self, tenant: &str) -> Vec<String> {
        let mut v: Vec<String> = self
            .profiles
            .iter()
            .filter(|p| p.tenant == tenant)
            .map(|p| p.id.clone())
            .collect();
        v.sort();
        v
    }

    /// Removes the profile `id` of `tenant`; the profile removed, if any.
    pub fn remove(&mut self, tenant: &str, id: &str) -> Option<RouteProfile> {
        let i = self.index.remove(&(tenant.to_owned(), id.to_owned()))?;
        if i >= self.profiles.len() {
            return None;
        }
        let p = self.profiles.remove(i);
        if i < self.route_keys.len() {
            self.route_keys.remove(i);
        }
        for slot in self.index.values_mut() {
            if *slot > i {
                *slot -= 1;
            }
        }
        Some(p)
    }

    /// The profile `id` of `tenant`.
    #[must_use]
    pub fn get(&self, tenant: &str, id: &str) -> Option<&RouteProfile> {
        let i = *self.index.get(&(tenant.to_owned(), id.to_owned()))?;
        self.profiles.get(i)
    }

    /// How many profiles there are.
    #[must_use]
    pub fn len(&self) -> usize {
        self.profiles.len()
    }

    /// Whether there are none.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.profiles.is_empty()
    }

    /// The profiles of the event's tenant in force at the event's time
    /// (`now` without one) whose filters it passes, heaviest first (load
    /// order among equals).
    ///
    /// # Errors
    /// [`Error::NotFound`] when none matches; a filter error.
    pub fn matching(&self, ctx: &FilterCtx<'_>, ev: &Event) -> Result<Vec<&RouteProfile>, Error> {
        let at = ev.time.unwrap_or(ctx.now);
        let mut out = Vec::new();
        for p in &self.profiles {
            if p.tenant != ev.tenant || !p.activation.is_active_at(at) {
                continue;
            }
            if ctx.pass(&ev.tenant, &p.filter_ids, ev)? {
                out.push(p);
            }
        }
        if out.is_empty() {
            return Err(Error::NotFound);
        }
        out.sort_by(|a, b| b.weight.total_cmp(&a.weight));
        Ok(out)
    }
}

/// A float as Go's JSON writes it: whole values without a fraction.
#[must_use]
pub fn json_f64(f: f64) -> Value {
    #[allow(clippy::cast_possible_truncation)]
    if f.fract() == 0.0 && f.abs() < 1e15 {
        // Display only: whole and in range, so exact.
        return Value::from(f as i64);
    }
    serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)
}

fn interval_json(ai: &ActivationInterval) -> Value {
    if *ai == ActivationInterval::default() {
        return Value::Null;
    }
    let t = |x: Option<DateTime<Utc>>| {
        x.map_or_else(
            || "0001-01-01T00:00:00Z".to_owned(),
            |t| t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
        )
    };
    let mut m = Map::new();
    m.insert("ActivationTime".into(), t(ai.activation).into());
    m.insert("ExpiryTime".into(), t(ai.expiry).into());
    Value::Object(m)
}

impl RouteProfile {
    /// The profile as CGRateS answers it: master's `RouteProfile`
    /// (`Routes`, `RouteParameters`) or, with `suppliers`, v0.10's
    /// `SupplierProfile` (`Suppliers`, `SupplierParameters`).
    #[must_use]
    pub fn to_json(&self, suppliers: bool) -> Value {
        let routes: Vec<Value> = self
            .routes
            .iter()
            .map(|r| {
                let mut m = Map::new();
                m.insert("ID".into(), r.id.clone().into());
                m.insert("FilterIDs".into(), r.filter_ids.clone().into());
                m.insert("AccountIDs".into(), r.account_ids.clone().into());
                m.insert("RatingPlanIDs".into(), r.rating_plan_ids.clone().into());
                m.insert("ResourceIDs".into(), r.resource_ids.clone().into());
                m.insert("StatIDs".into(), r.stat_ids.clone().into());
                m.insert("Weight".into(), json_f64(r.weight));
                m.insert("Blocker".into(), r.blocker.into());
                let k = if suppliers {
                    "SupplierParameters"
                } else {
                    "RouteParameters"
                };
                m.insert(k.into(), r.parameters.clone().into());
                Value::Object(m)
            })
            .collect();
        let mut m = Map::new();
        m.insert("Tenant".into(), self.tenant.clone().into());
        m.insert("ID".into(), self.id.clone().into());
        m.insert("FilterIDs".into(), self.filter_ids.clone().into());
        m.insert("ActivationInterval".into(), interval_json(&self.activation));
        m.insert("Sorting".into(), self.sorting.clone().into());
        m.insert(
            "SortingParameters".into(),
            self.sorting_parameters.clone().into(),
        );
        let k = if suppliers { "Suppliers" } else { "Routes" };
        m.insert(k.into(), Value::Array(routes));
        m.insert("Weight".into(), json_f64(self.weight));
        Value::Object(m)
    }
}

#[cfg(test)]
mod tests;
