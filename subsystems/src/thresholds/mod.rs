//! ThresholdS (Thresholds.csv): hit counters that fire actions. Each
//! event a threshold matches is one hit; its ActionIDs run once the hits
//! reach MinHits, not again before MinSleep has passed, and the threshold
//! stops counting after MaxHits, as CGRateS's `engine/thresholds.go`
//! (master's rules).
//!
//! [`ThresholdProfiles`] is the plan's configuration; [`ThresholdEngine`]
//! (in `engine.rs`) holds the hits and says which actions to run; the
//! caller runs them. The time is passed in.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::Error;
use crate::activation::ActivationInterval;
use crate::columns::{list, parse_bool, parse_f64};

mod engine;

pub use engine::{Fired, Processed, Threshold, ThresholdEngine, event_account};

/// One Thresholds.csv profile.
#[derive(Debug, Clone, PartialEq)]
pub struct ThresholdProfile {
    /// Tenant.
    pub tenant: String,
    /// ID (also the threshold's ID).
    pub id: String,
    /// Filters the event must pass.
    pub filter_ids: Vec<String>,
    /// When the profile is in force (checked against the event's Time).
    pub activation: ActivationInterval,
    /// Hits after which the threshold stops counting; `-1`: never.
    pub max_hits: i64,
    /// Hits needed before the actions run.
    pub min_hits: i64,
    /// The least time between two runs of the actions.
    pub min_sleep: Duration,
    /// No threshold of lower weight is considered after this one.
    pub blocker: bool,
    /// Higher first.
    pub weight: f64,
    /// The Actions.csv IDs run when it fires.
    pub action_ids: Vec<String>,
    /// Run the actions without waiting for them.
    pub async_exec: bool,
    /// Exporter IDs (master's EeIDs; read, not used).
    pub ee_ids: Vec<String>,
}

impl ThresholdProfile {
    /// Whether the threshold stopped counting at `hits` (MaxHits reached).
    #[must_use]
    pub fn exhausted(&self, hits: i64) -> bool {
        self.max_hits >= 0 && hits >= self.max_hits
    }
}

/// The threshold profiles of one tariff plan, by tenant and ID.
#[derive(Debug, Clone, Default)]
pub struct ThresholdProfiles {
    by_id: BTreeMap<(String, String), Arc<ThresholdProfile>>,
}

fn parse_int(s: &str) -> Result<i64, String> {
    let s = s.trim();
    if s.is_empty() {
        return Ok(0);
    }
    s.parse::<i64>()
        .map_err(|_| format!("not a whole number: {s:?}"))
}

impl ThresholdProfiles {
    /// Loads Thresholds.csv (`#Tenant,ID,FilterIDs,ActivationInterval,
    /// MaxHits,MinHits,MinSleep,Blocker,Weight,ActionIDs,Async[,EeIDs]`).
    /// Lines with the same Tenant and ID are one profile: their FilterIDs
    /// and ActionIDs add up, the other columns given last win.
    ///
    /// # Errors
    /// [`Error::Load`] naming the line and column.
    pub fn load(records: &rating::csv::Records, file: &Path) -> Result<ThresholdProfiles, Error> {
        let mut set = ThresholdProfiles::default();
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
            let key = (tenant.to_owned(), id.to_owned());
            let first = !set.by_id.contains_key(&key);
            let p = Arc::make_mut(set.by_id.entry(key).or_insert_with(|| {
                Arc::new(ThresholdProfile {
                    tenant: tenant.to_owned(),
                    id: id.to_owned(),
                    filter_ids: Vec::new(),
                    activation: ActivationInterval::default(),
                    max_hits: 0,
                    min_hits: 0,
                    min_sleep: Duration::ZERO,
                    blocker: false,
                    weight: 0.0,
                    action_ids: Vec::new(),
                    async_exec: false,
                    ee_ids: Vec::new(),
                })
            }));
            p.filter_ids.extend(list(r.field(2)));
            if !r.field(3).is_empty() {
                p.activation = ActivationInterval::parse(r.field(3)).map_err(|e| err(4, e))?;
            }
            if first || !r.field(4).is_empty() {
                p.max_hits = parse_int(r.field(4)).map_err(|e| err(5, e))?;
            }
            if first || !r.field(5).is_empty() {
                p.min_hits = parse_int(r.field(5)).map_err(|e| err(6, e))?;
            }
            if first || !r.field(6).is_empty() {
                p.min_sleep =
                    rating::parse_duration(r.field(6)).map_err(|e| err(7, e.to_string()))?;
            }
            if first || !r.field(7).is_empty() {
                p.blocker = parse_bool(r.field(7)).map_err(|e| err(8, e))?;
            }
            if first || !r.field(8).is_empty() {
                p.weight = parse_f64(r.field(8)).map_err(|e| err(9, e))?;
            }
            p.action_ids
                .extend(list(r.field(9)).into_iter().filter(|a| a != "*none"));
            if first || !r.field(10).is_empty() {
                p.async_exec = parse_bool(r.field(10)).map_err(|e| err(11, e))?;
            }
            p.ee_ids.extend(list(r.field(11)));
        }
        Ok(set)
    }

    /// The profile `id` of `tenant`.
    #[must_use]
    pub fn get(&self, tenant: &str, id: &str) -> Option<&Arc<ThresholdProfile>> {
        self.by_id.get(&(tenant.to_owned(), id.to_owned()))
    }

    /// Adds or replaces a profile.
    pub fn insert(&mut self, p: ThresholdProfile) {
        self.by_id
            .insert((p.tenant.clone(), p.id.clone()), Arc::new(p));
    }

    /// Removes the profile `id` of `tenant`; the profile removed, if any.
    pub fn remove(&mut self, tenant: &str, id: &str) -> Option<Arc<ThresholdProfile>> {
        self.by_id.remove(&(tenant.to_owned(), id.to_owned()))
    }

    /// Every profile, by tenant and ID.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<ThresholdProfile>> {
        self.by_id.values()
    }

    /// How many profiles there are.
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

#[cfg(test)]
mod tests;
