//! FilterS: one engine every subsystem asks whether an event passes a
//! list of filter IDs. An ID is either a Filters.csv profile (rows with the
//! same Tenant and ID are one filter: all its rules must pass) or an
//! inline rule `*type:element:value1|value2`.
//!
//! A rule passes when the element (a path such as `~*req.Account`) holds
//! a value matching any of the values; `*notX` negates `*X`. A filter
//! outside its activation interval does not pass.

use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use rating::TariffPlan;
use rustc_hash::FxHashMap;

use crate::Error;
use crate::activation::ActivationInterval;
use crate::event::DataProvider;

/// A rule type (without its `*not` negation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Kind {
    /// `*string`: equal to one of the values.
    String,
    /// `*prefix`: starts with one of the values.
    Prefix,
    /// `*suffix`: ends with one of the values.
    Suffix,
    /// `*empty`: absent or empty.
    Empty,
    /// `*exists`: present.
    Exists,
}

impl Kind {
    /// The rule type named `s` and whether it is negated (`*notstring`).
    #[must_use]
    pub fn parse(s: &str) -> Option<(Kind, bool)> {
        let (negated, base) = match s.strip_prefix("*not") {
            Some(rest) => (true, rest),
            None => (false, s.strip_prefix('*')?),
        };
        let kind = match base {
            "string" => Kind::String,
            "prefix" => Kind::Prefix,
            "suffix" => Kind::Suffix,
            "empty" => Kind::Empty,
            "exists" => Kind::Exists,
            _ => return None,
        };
        Some((kind, negated))
    }
}

/// One rule of a filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// The type.
    pub kind: Kind,
    /// `*not...`.
    pub negated: bool,
    /// The path read (`~*req.Account`).
    pub element: String,
    /// The values compared with.
    pub values: Vec<String>,
}

impl Rule {
    /// Parses an inline rule `*type:element:v1|v2` (values may be absent
    /// for `*exists`/`*empty`).
    ///
    /// # Errors
    /// [`Error::Filter`] for an unknown type or a missing element.
    pub fn parse_inline(s: &str) -> Result<Rule, Error> {
        let mut parts = s.splitn(3, ':');
        let ty = parts.next().unwrap_or("");
        let element = parts.next().unwrap_or("");
        let values = parts.next().unwrap_or("");
        let (kind, negated) = Kind::parse(ty)
            .ok_or_else(|| Error::Filter(format!("unknown filter type in {s:?}")))?;
        if element.is_empty() {
            return Err(Error::Filter(format!("no element in filter {s:?}")));
        }
        Ok(Rule {
            kind,
            negated,
            element: element.to_owned(),
            values: split_values(values, '|'),
        })
    }

    /// Whether `ev` passes this rule.
    ///
    /// # Errors
    /// A rule that cannot be evaluated.
    pub fn pass(&self, ev: &dyn DataProvider, _ctx: &FilterCtx<'_>) -> Result<bool, Error> {
        let got = ev.field(&self.element);
        let matched = match self.kind {
            Kind::Exists => got.is_some(),
            Kind::Empty => got.as_deref().is_none_or(str::is_empty),
            Kind::String => got.is_some_and(|g| self.values.iter().any(|v| *v == *g)),
            Kind::Prefix => {
                got.is_some_and(|g| self.values.iter().any(|v| g.starts_with(v.as_str())))
            }
            Kind::Suffix => {
                got.is_some_and(|g| self.values.iter().any(|v| g.ends_with(v.as_str())))
            }
        };
        Ok(matched != self.negated)
    }
}

fn split_values(s: &str, sep: char) -> Vec<String> {
    if s.is_empty() {
        return Vec::new();
    }
    s.split(sep).map(str::to_owned).collect()
}

/// A Filters.csv profile: all rules must pass.
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

/// The filters of a tariff plan, by tenant and ID.
#[derive(Debug, Clone, Default)]
pub struct FilterSet {
    by_id: FxHashMap<(String, String), Arc<Filter>>,
}

impl FilterSet {
    /// Loads Filters.csv (`Tenant,ID,Type,Element,Values,ActivationInterval`;
    /// values separated by `;`).
    ///
    /// # Errors
    /// [`Error::Load`] naming the line.
    pub fn load(records: &rating::csv::Records, file: &Path) -> Result<FilterSet, Error> {
        let mut set = FilterSet::default();
        for r in records.iter() {
            let err = |column: usize, why: String| Error::Load {
                file: file.to_owned(),
                line: r.line,
                column,
                why,
            };
            let key = (r.field(0).to_owned(), r.field(1).to_owned());
            if key.0.is_empty() || key.1.is_empty() {
                return Err(err(0, "Tenant and ID are required".into()));
            }
            let (kind, negated) = Kind::parse(r.field(2))
                .ok_or_else(|| err(3, format!("unknown filter type {:?}", r.field(2))))?;
            let rule = Rule {
                kind,
                negated,
                element: r.field(3).to_owned(),
                values: split_values(r.field(4), ';'),
            };
            let activation = ActivationInterval::parse(r.field(5)).map_err(|e| err(6, e))?;
            let f = set.by_id.entry(key.clone()).or_insert_with(|| {
                Arc::new(Filter {
                    tenant: key.0.clone(),
                    id: key.1.clone(),
                    rules: Vec::new(),
                    activation: ActivationInterval::default(),
                })
            });
            let f = Arc::make_mut(f);
            f.rules.push(rule);
            if activation != ActivationInterval::default() {
                f.activation = activation;
            }
        }
        Ok(set)
    }

    /// The filter `id` of `tenant`.
    #[must_use]
    pub fn get(&self, tenant: &str, id: &str) -> Option<&Arc<Filter>> {
        self.by_id.get(&(tenant.to_owned(), id.to_owned()))
    }

    /// Adds or replaces a filter.
    pub fn insert(&mut self, f: Filter) {
        self.by_id
            .insert((f.tenant.clone(), f.id.clone()), Arc::new(f));
    }

    /// How many filters there are.
    #[must_use]
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    /// Whether there are none.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
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
    /// filter of `tenant`.
    ///
    /// # Errors
    /// [`Error::Filter`]: an unknown ID (`NOT_FOUND:ID`) or a bad inline
    /// rule.
    pub fn pass(&self, tenant: &str, ids: &[String], ev: &dyn DataProvider) -> Result<bool, Error> {
        for id in ids {
            if id.is_empty() {
                continue;
            }
            if id.starts_with('*') {
                if !Rule::parse_inline(id)?.pass(ev, self)? {
                    return Ok(false);
                }
                continue;
            }
            let f = self
                .filters
                .get(tenant, id)
                .ok_or_else(|| Error::Filter(format!("NOT_FOUND:{id}")))?;
            if !f.activation.is_active_at(self.now) {
                return Ok(false);
            }
            for rule in &f.rules {
                if !rule.pass(ev, self)? {
                    return Ok(false);
                }
            }
        }
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Event;
    use serde_json::json;

    #[test]
    fn inline_and_profile_filters() {
        let csv = b"#Tenant,ID,Type,Element,Values,ActivationInterval\n\
            cgrates.org,FLTR_1,*string,~*req.Account,1001;1002,2014-07-29T15:00:00Z\n\
            cgrates.org,FLTR_1,*prefix,~*req.Destination,10,\n";
        let path = Path::new("Filters.csv");
        let recs = rating::csv::parse(path, csv).unwrap();
        let set = FilterSet::load(&recs, path).unwrap();
        let ctx = FilterCtx {
            filters: &set,
            plan: None,
            now: Utc::now(),
        };
        let ev =
            Event::from_cgr_event(&json!({"Event": {"Account": "1002", "Destination": "1003"}}));
        assert!(ctx.pass("cgrates.org", &["FLTR_1".into()], &ev).unwrap());
        assert!(
            ctx.pass(
                "cgrates.org",
                &["*string:~*req.Account:1001|1002".into()],
                &ev
            )
            .unwrap()
        );
        assert!(
            !ctx.pass(
                "cgrates.org",
                &["*notstring:~*req.Account:1002".into()],
                &ev
            )
            .unwrap()
        );
        assert!(ctx.pass("cgrates.org", &["FLTR_NOPE".into()], &ev).is_err());
    }
}
