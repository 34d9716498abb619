//! FilterS: one engine every subsystem asks whether an event passes a
//! list of filter IDs. An ID is either a Filters.csv profile (rows with the
//! same Tenant and ID are one filter: all its rules must pass) or an
//! inline rule `*type:element:value1|value2`.
//!
//! A rule passes when the element (a path such as `~*req.Account`, or a
//! constant) holds a value matching any of the values; `*notX` negates
//! `*X`. Values may themselves be paths (`~*req.Other`). A filter outside
//! its activation interval is skipped; a list whose filters are all
//! inactive does not pass (CGRateS's `FilterS.Pass`).
//!
//! Rules compile once: Filters.csv rules at load, inline rules on first
//! use (kept in a cache shared by the clones of a [`FilterSet`]).

mod path;
mod rule;
pub mod value;

#[cfg(test)]
mod tests;

use std::path::Path;
use std::sync::{Arc, RwLock};

use chrono::{DateTime, Utc};
use rating::TariffPlan;
use rustc_hash::FxHashMap;
use serde_json::{Map, Value};

use crate::Error;
use crate::activation::ActivationInterval;
use crate::event::DataProvider;

pub use rule::{Kind, Rule};

/// How many distinct inline rules the cache keeps; more are compiled per
/// use (an API caller cannot grow memory without bound).
const INLINE_CACHE_MAX: usize = 8192;

/// A filter profile: all rules must pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    /// Tenant.
    pub tenant: String,
    /// ID.
    pub id: String,
    /// Rules, in file order.
    pub rules: Vec<Rule>,
    /// When it is in force.
    pub activation: ActivationInterval,
}

impl Filter {
    /// CGRateS's JSON form of a filter: `Tenant`, `ID`, `Rules`
    /// (`Type`, `Element`, `Values`), `ActivationInterval`.
    #[must_use]
    pub fn to_json(&self) -> Value {
        let rules = self
            .rules
            .iter()
            .map(|r| {
                let mut m = Map::new();
                m.insert("Type".into(), Value::String(r.type_name()));
                m.insert("Element".into(), Value::String(r.element.clone()));
                m.insert(
                    "Values".into(),
                    Value::Array(r.values.iter().cloned().map(Value::String).collect()),
                );
                Value::Object(m)
            })
            .collect();
        let mut m = Map::new();
        m.insert("Tenant".into(), Value::String(self.tenant.clone()));
        m.insert("ID".into(), Value::String(self.id.clone()));
        m.insert("Rules".into(), Value::Array(rules));
        m.insert("ActivationInterval".into(), self.activation.to_json());
        Value::Object(m)
    }

    /// Reads the JSON form (v0.9's `FieldName` is accepted for
    /// `Element`); `default_tenant` when `Tenant` is absent or empty.
    ///
    /// # Errors
    /// [`Error::Invalid`] for a missing ID or a malformed field,
    /// [`Error::Filter`] for a rule that does not compile.
    pub fn from_json(v: &Value, default_tenant: &str) -> Result<Filter, Error> {
        let text = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("");
        let id = text("ID");
        if id.is_empty() {
            return Err(Error::Invalid("MANDATORY_IE_MISSING: [ID]".into()));
        }
        if id.starts_with('*') {
            // It would read as an inline rule wherever it is used.
            return Err(Error::Filter(format!(
                "a filter ID cannot start with '*': {id:?}"
            )));
        }
        let tenant = match text("Tenant") {
            "" => default_tenant,
            t => t,
        };
        let mut rules = Vec::new();
        match v.get("Rules") {
            None | Some(Value::Null) => {}
            Some(Value::Array(rs)) => {
                for r in rs {
                    let s = |k: &str| r.get(k).and_then(Value::as_str).unwrap_or("");
                    let element = match s("Element") {
                        "" => s("FieldName"),
                        e => e,
                    };
                    let values = match r.get("Values") {
                        None | Some(Value::Null) => Vec::new(),
                        Some(Value::Array(vs)) => vs
                            .iter()
                            .map(|x| {
                                x.as_str().map(str::to_owned).ok_or_else(|| {
                                    Error::Invalid(format!("a value of Rules is not text: {x}"))
                                })
                            })
                            .collect::<Result<_, _>>()?,
                        Some(other) => {
                            return Err(Error::Invalid(format!("Values is not a list: {other}")));
                        }
                    };
                    rules.push(Rule::new(s("Type"), element, values)?);
                }
            }
            Some(other) => return Err(Error::Invalid(format!("Rules is not a list: {other}"))),
        }
        let activation =
            ActivationInterval::from_json(v.get("ActivationInterval").unwrap_or(&Value::Null))
                .map_err(Error::Invalid)?;
        Ok(Filter {
            tenant: tenant.to_owned(),
            id: id.to_owned(),
            rules,
            activation,
        })
    }

    /// Whether `ev` passes every rule (the activation interval is not
    /// checked here).
    ///
    /// # Errors
    /// A rule that cannot be evaluated.
    pub fn pass_rules(&self, ev: &dyn DataProvider, ctx: &FilterCtx<'_>) -> Result<bool, Error> {
        for rule in &self.rules {
            if !rule.pass(ev, ctx)? {
                return Ok(false);
            }
        }
        Ok(true)
    }
}

/// The filters of a tariff plan (and those set through the API), by
/// tenant and ID, with the cache of compiled inline rules.
#[derive(Debug, Clone, Default)]
pub struct FilterSet {
    by_tenant: FxHashMap<String, FxHashMap<String, Arc<Filter>>>,
    inline: Arc<RwLock<FxHashMap<String, Arc<Filter>>>>,
}

impl FilterSet {
    /// Loads Filters.csv (`Tenant,ID,Type,Element,Values,ActivationInterval`;
    /// values separated by `;`). A row with no Type and no Element only
    /// sets the activation interval.
    ///
    /// # Errors
    /// [`Error::Load`] naming the line and column.
    pub fn load(records: &rating::csv::Records, file: &Path) -> Result<FilterSet, Error> {
        let mut set = FilterSet::default();
        for r in records.iter() {
            let err = |column: usize, why: String| Error::Load {
                file: file.to_owned(),
                line: r.line,
                column,
                why,
            };
            let (tenant, id) = (r.field(0).trim(), r.field(1).trim());
            if tenant.is_empty() || id.is_empty() {
                return Err(err(0, "Tenant and ID are required".into()));
            }
            if id.starts_with('*') {
                return Err(err(2, format!("a filter ID cannot start with '*': {id:?}")));
            }
            let (ty, element) = (r.field(2).trim(), r.field(3).trim());
            let rule = if ty.is_empty() && element.is_empty() {
                None
            } else {
                let values = rule::split_values(r.field(4).trim(), ';');
                let column = if Kind::parse(ty).is_none() {
                    3
                } else if element.is_empty() {
                    4
                } else {
                    5
                };
                Some(Rule::new(ty, element, values).map_err(|e| err(column, e.to_string()))?)
            };
            let activation =
                ActivationInterval::parse(r.field(5)).map_err(|e| err(6, e.clone()))?;
            let f = set
                .by_tenant
                .entry(tenant.to_owned())
                .or_default()
                .entry(id.to_owned())
                .or_insert_with(|| {
                    Arc::new(Filter {
                        tenant: tenant.to_owned(),
                        id: id.to_owned(),
                        rules: Vec::new(),
                        activation: ActivationInterval::default(),
                    })
                });
            let f = Arc::make_mut(f);
            f.rules.extend(rule);
            if !activation.is_always() {
                f.activation = activation;
            }
        }
        Ok(set)
    }

    /// The filter `id` of `tenant`.
    #[must_use]
    pub fn get(&self, tenant: &str, id: &str) -> Option<&Arc<Filter>> {
        self.by_tenant.get(tenant)?.get(id)
    }

    /// Adds or replaces a filter.
    pub fn insert(&mut self, f: Filter) {
        self.by_tenant
            .entry(f.tenant.clone())
            .or_default()
            .insert(f.id.clone(), Arc::new(f));
    }

    /// Removes a filter; the removed one, if it was there.
    pub fn remove(&mut self, tenant: &str, id: &str) -> Option<Arc<Filter>> {
        let m = self.by_tenant.get_mut(tenant)?;
        let f = m.remove(id);
        if m.is_empty() {
            self.by_tenant.remove(tenant);
        }
        f
    }

    /// The IDs of `tenant`'s filters, sorted.
    #[must_use]
    pub fn ids(&self, tenant: &str) -> Vec<String> {
        let mut ids: Vec<String> = self
            .by_tenant
            .get(tenant)
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default();
        ids.sort_unstable();
        ids
    }

    /// Every filter, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<Filter>> {
        self.by_tenant.values().flat_map(|m| m.values())
    }

    /// How many filters there are.
    #[must_use]
    pub fn len(&self) -> usize {
        self.by_tenant.values().map(FxHashMap::len).sum()
    }

    /// Whether there are none.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.by_tenant.is_empty()
    }

    /// The compiled inline rule `rule` (`*string:~*req.Account:1001`),
    /// from the cache when it was compiled before.
    ///
    /// # Errors
    /// [`Error::Filter`] for a rule that does not parse.
    pub fn inline(&self, rule: &str) -> Result<Arc<Filter>, Error> {
        if let Ok(cache) = self.inline.read()
            && let Some(f) = cache.get(rule)
        {
            return Ok(Arc::clone(f));
        }
        let f = Arc::new(Filter {
            tenant: String::new(),
            id: rule.to_owned(),
            rules: vec![Rule::parse_inline(rule)?],
            activation: ActivationInterval::default(),
        });
        if let Ok(mut cache) = self.inline.write()
            && cache.len() < INLINE_CACHE_MAX
        {
            cache.insert(rule.to_owned(), Arc::clone(&f));
        }
        Ok(f)
    }

    /// Checks (and compiles into the cache) the inline rules among
    /// `ids`, as CGRateS checks a profile's inline filters when it loads;
    /// IDs of filter profiles are not looked up (they may be set later).
    ///
    /// # Errors
    /// The first inline rule that does not parse.
    pub fn check_inline(&self, ids: &[String]) -> Result<(), Error> {
        for id in ids.iter().filter(|id| id.starts_with('*')) {
            self.inline(id)?;
        }
        Ok(())
    }
}

/// What a filter check needs besides the event: the filters, the tariff
/// plan (`*destinations`, `*timings`) and the time.
#[derive(Clone, Copy)]
pub struct FilterCtx<'a> {
    /// The plan's filters.
    pub filters: &'a FilterSet,
    /// The tariff plan in force, if any.
    pub plan: Option<&'a TariffPlan>,
    /// Now.
    pub now: DateTime<Utc>,
}

impl FilterCtx<'_> {
    /// Whether `ev` passes every filter in `ids` (an empty list passes).
    /// Each ID is an inline rule when it starts with `*`, otherwise a
    /// filter of `tenant`. Filters outside their activation interval are
    /// skipped; when every filter is skipped the event does not pass.
    ///
    /// # Errors
    /// [`Error::Filter`]: an unknown ID (`NOT_FOUND:ID`), a bad inline
    /// rule, a rule that cannot be evaluated.
    pub fn pass(&self, tenant: &str, ids: &[String], ev: &dyn DataProvider) -> Result<bool, Error> {
        // CGRateS: at least one filter must be in force, and all those in
        // force must pass.
        let mut pass = false;
        let mut any = false;
        for id in ids {
            if id.is_empty() {
                continue;
            }
            any = true;
            let inline;
            let f = if id.starts_with('*') {
                inline = self.filters.inline(id)?;
                &inline
            } else {
                self.filters
                    .get(tenant, id)
                    .ok_or_else(|| Error::Filter(format!("NOT_FOUND:{id}")))?
            };
            if !f.activation.is_active_at(self.now) {
                continue;
            }
            if !f.pass_rules(ev, self)? {
                return Ok(false);
            }
            pass = true;
        }
        Ok(pass || !any)
    }
}
