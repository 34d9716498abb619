//! ResourceS (Resources.csv): concurrent-usage limits. A resource counts
//! the units each usage (a call's ID) holds; an allocation is granted when
//! one matching resource still has room, and then recorded in every
//! matching resource, as CGRateS's `engine/resources.go`.
//!
//! [`ResourceProfiles`] is the plan's configuration; [`ResourceEngine`]
//! (in `engine.rs`) holds the usages and takes the time as an argument.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::Error;
use crate::activation::ActivationInterval;
use crate::columns::{list, parse_bool, parse_f64};

mod engine;

pub use engine::{
    Allocation, Resource, ResourceEngine, ResourceError, ResourceUsage, UsageRequest,
};

/// How long a usage is counted (the profile's `UsageTTL`, or the
/// request's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UsageTtl {
    /// Never expires (CGRateS's `-1`; AccuRate also reads an empty column
    /// so).
    Never,
    /// `0`: CGRateS records nothing (an authorization only).
    NotRecorded,
    /// Expires this long after its allocation.
    After(Duration),
}

impl UsageTtl {
    /// Parses the UsageTTL column: empty or negative (`-1`) never expires,
    /// `0` is not recorded, otherwise a duration (`30m`, `1h`, bare
    /// nanoseconds).
    ///
    /// # Errors
    /// Text that is not a duration.
    pub fn parse(s: &str) -> Result<UsageTtl, String> {
        let s = s.trim();
        if s.is_empty() {
            return Ok(UsageTtl::Never);
        }
        if let Some(rest) = s.strip_prefix('-') {
            rating::parse_duration(rest).map_err(|e| e.to_string())?;
            return Ok(UsageTtl::Never);
        }
        let d = rating::parse_duration(s).map_err(|e| e.to_string())?;
        Ok(UsageTtl::from_duration(d))
    }

    /// `0` as [`UsageTtl::NotRecorded`], else [`UsageTtl::After`].
    #[must_use]
    pub fn from_duration(d: Duration) -> UsageTtl {
        if d.is_zero() {
            UsageTtl::NotRecorded
        } else {
            UsageTtl::After(d)
        }
    }
}

/// One Resources.csv profile.
#[derive(Debug, Clone, PartialEq)]
pub struct ResourceProfile {
    /// Tenant.
    pub tenant: String,
    /// ID (also the resource's ID).
    pub id: String,
    /// Filters the event must pass.
    pub filter_ids: Vec<String>,
    /// When the profile is in force (checked against the event's Time).
    pub activation: ActivationInterval,
    /// How long a usage is counted.
    pub usage_ttl: UsageTtl,
    /// Units that may be in use at once; `-1`: no limit.
    pub limit: f64,
    /// Answered on a granted allocation (empty: the resource's ID).
    pub allocation_message: String,
    /// No resource of lower weight is considered after this one.
    pub blocker: bool,
    /// The usages survive a restart.
    pub stored: bool,
    /// Higher first.
    pub weight: f64,
    /// Thresholds told of each change (empty: every matching one;
    /// `*none`: none).
    pub threshold_ids: Vec<String>,
}

impl ResourceProfile {
    /// Whether `units` more fit when `used` are in use.
    #[must_use]
    pub fn has_room(&self, used: f64, units: f64) -> bool {
        self.limit == -1.0 || self.limit >= used + units
    }

    /// The allocation message: AllocationMessage, else the ID.
    #[must_use]
    pub fn message(&self) -> &str {
        if self.allocation_message.is_empty() {
            &self.id
        } else {
            &self.allocation_message
        }
    }
}

/// The resource profiles of one tariff plan, by tenant and ID.
#[derive(Debug, Clone, Default)]
pub struct ResourceProfiles {
    by_id: BTreeMap<(String, String), Arc<ResourceProfile>>,
}

impl ResourceProfiles {
    /// Loads Resources.csv (`#Tenant,ID,FilterIDs,ActivationInterval,
    /// UsageTTL,Limit,AllocationMessage,Blocker,Stored,Weight,ThresholdIDs`).
    /// Lines with the same Tenant and ID are one profile: their FilterIDs
    /// and ThresholdIDs add up, the other columns given last win.
    ///
    /// # Errors
    /// [`Error::Load`] naming the line and column.
    pub fn load(records: &rating::csv::Records, file: &Path) -> Result<ResourceProfiles, Error> {
        let mut set = ResourceProfiles::default();
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
                Arc::new(ResourceProfile {
                    tenant: tenant.to_owned(),
                    id: id.to_owned(),
                    filter_ids: Vec::new(),
                    activation: ActivationInterval::default(),
                    usage_ttl: UsageTtl::Never,
                    limit: 0.0,
                    allocation_message: String::new(),
                    blocker: false,
                    stored: false,
                    weight: 0.0,
                    threshold_ids: Vec::new(),
                })
            }));
            p.filter_ids.extend(list(r.field(2)));
            if !r.field(3).is_empty() {
                p.activation = ActivationInterval::parse(r.field(3)).map_err(|e| err(4, e))?;
            }
            if first || !r.field(4).is_empty() {
                p.usage_ttl = UsageTtl::parse(r.field(4)).map_err(|e| err(5, e))?;
            }
            if first || !r.field(5).is_empty() {
                p.limit = parse_f64(r.field(5)).map_err(|e| err(6, e))?;
            }
            if !r.field(6).is_empty() {
                r.field(6).clone_into(&mut p.allocation_message);
            }
            if first || !r.field(7).is_empty() {
                p.blocker = parse_bool(r.field(7)).map_err(|e| err(8, e))?;
            }
            if first || !r.field(8).is_empty() {
                p.stored = parse_bool(r.field(8)).map_err(|e| err(9, e))?;
            }
            if first || !r.field(9).is_empty() {
                p.weight = parse_f64(r.field(9)).map_err(|e| err(10, e))?;
            }
            p.threshold_ids.extend(list(r.field(10)));
        }
        Ok(set)
    }

    /// The profile `id` of `tenant`.
    #[must_use]
    pub fn get(&self, tenant: &str, id: &str) -> Option<&Arc<ResourceProfile>> {
        self.by_id.get(&(tenant.to_owned(), id.to_owned()))
    }

    /// Adds or replaces a profile.
    pub fn insert(&mut self, p: ResourceProfile) {
        self.by_id
            .insert((p.tenant.clone(), p.id.clone()), Arc::new(p));
    }

    /// Removes the profile `id` of `tenant`; the profile removed, if any.
    pub fn remove(&mut self, tenant: &str, id: &str) -> Option<Arc<ResourceProfile>> {
        self.by_id.remove(&(tenant.to_owned(), id.to_owned()))
    }

    /// Every profile, by tenant and ID.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<ResourceProfile>> {
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
