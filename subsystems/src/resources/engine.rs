//! The resources' usages and the allocation rules, with the time passed
//! in.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::{ResourceProfile, ResourceProfiles, UsageTtl};
use crate::{Event, FilterCtx};

/// One usage counted by a resource.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResourceUsage {
    /// Tenant.
    pub tenant: String,
    /// The usage ID (a call's ID).
    pub id: String,
    /// When it stops counting (`None`: never).
    pub expiry: Option<DateTime<Utc>>,
    /// Units held.
    pub units: f64,
}

/// A resource: its usages.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Resource {
    /// Tenant.
    pub tenant: String,
    /// ID (its profile's).
    pub id: String,
    /// Usages by ID.
    pub usages: BTreeMap<String, ResourceUsage>,
    /// IDs of the usages that expire, in allocation order.
    pub ttl_idx: Vec<String>,
}

/// Go's zero time, CGRateS's "no expiry".
fn zero_time() -> String {
    Utc.with_ymd_and_hms(1, 1, 1, 0, 0, 0)
        .single()
        .map_or_else(|| "0001-01-01T00:00:00Z".to_owned(), |t| t.to_rfc3339())
}

impl Resource {
    /// The units in use.
    #[must_use]
    pub fn total(&self) -> f64 {
        self.usages.values().map(|u| u.units).sum()
    }

    /// Drops the usages expired at `now`; whether any was.
    pub fn remove_expired(&mut self, now: DateTime<Utc>) -> bool {
        let before = self.usages.len();
        self.usages.retain(|_, u| u.expiry.is_none_or(|e| e > now));
        let usages = &self.usages;
        self.ttl_idx.retain(|id| usages.contains_key(id));
        before != self.usages.len()
    }

    fn clear(&mut self, usage_id: &str) -> bool {
        if self.usages.remove(usage_id).is_none() {
            return false;
        }
        self.ttl_idx.retain(|id| id != usage_id);
        true
    }

    fn record(&mut self, u: ResourceUsage) {
        if u.expiry.is_some() {
            self.ttl_idx.push(u.id.clone());
        }
        self.usages.insert(u.id.clone(), u);
    }

    /// CGRateS's `Resource` JSON: `Tenant`, `ID`, `Usages` (each with
    /// `Tenant`, `ID`, `ExpiryTime`, `Units`), `TTLIdx`.
    #[must_use]
    pub fn to_json(&self) -> Value {
        let usages: Map<String, Value> = self
            .usages
            .iter()
            .map(|(k, u)| {
                (
                    k.clone(),
                    json!({
                        "Tenant": u.tenant,
                        "ID": u.id,
                        "ExpiryTime": u.expiry.map_or_else(zero_time, |t| t.to_rfc3339()),
                        "Units": u.units,
                    }),
                )
            })
            .collect();
        json!({
            "Tenant": self.tenant,
            "ID": self.id,
            "Usages": usages,
            "TTLIdx": self.ttl_idx,
        })
    }
}

/// What an authorization, allocation or release asks.
#[derive(Debug, Clone, PartialEq)]
pub struct UsageRequest {
    /// The usage ID (`UsageID`, `*rsUsageID`).
    pub usage_id: String,
    /// Units (`Units`, `*rsUnits`).
    pub units: f64,
    /// The request's TTL, replacing the profiles' (`UsageTTL`,
    /// `*rsUsageTTL`).
    pub ttl: Option<UsageTtl>,
}

/// Why a resource request failed, as CGRateS spells it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ResourceError {
    /// No resource matches the event.
    #[error("NOT_FOUND")]
    NotFound,
    /// An allocation that no matching resource has room for.
    #[error("RESOURCE_UNAVAILABLE")]
    Unavailable,
    /// An authorization that no matching resource has room for.
    #[error("RESOURCE_UNAUTHORIZED")]
    Unauthorized,
    /// A release of a usage a resource does not hold.
    #[error("cannot find usage record with id: {0}")]
    UsageNotFound(String),
    /// A filter that cannot be evaluated.
    #[error("{0}")]
    Filter(String),
}

/// A granted allocation.
#[derive(Debug, Clone, PartialEq)]
pub struct Allocation {
    /// The allocation message (of the first resource with room).
    pub message: String,
    /// No matching resource had room (only a forced allocation is then
    /// granted).
    pub over_limit: bool,
    /// The resources the usage was recorded in, highest weight first.
    pub resources: Vec<Arc<ResourceProfile>>,
}

/// The usages of every resource.
#[derive(Debug, Clone, Default)]
pub struct ResourceEngine {
    resources: BTreeMap<(String, String), Resource>,
}

impl ResourceEngine {
    /// The profiles matching `ev`, highest weight first (ties by ID), cut
    /// after the first blocker; their resources' expired usages dropped.
    ///
    /// # Errors
    /// [`ResourceError::NotFound`] when none matches, a filter error.
    pub fn matching(
        &mut self,
        profiles: &ResourceProfiles,
        ctx: &FilterCtx<'_>,
        ev: &Event,
        now: DateTime<Utc>,
    ) -> Result<Vec<Arc<ResourceProfile>>, ResourceError> {
        let mut out = Vec::new();
        for p in profiles.iter().filter(|p| p.tenant == ev.tenant) {
            if ev.time.is_some_and(|t| !p.activation.is_active_at(t)) {
                continue;
            }
            if !ctx
                .pass(&p.tenant, &p.filter_ids, ev)
                .map_err(|e| ResourceError::Filter(e.to_string()))?
            {
                continue;
            }
            out.push(Arc::clone(p));
        }
        if out.is_empty() {
            return Err(ResourceError::NotFound);
        }
        out.sort_by(|a, b| b.weight.total_cmp(&a.weight).then_with(|| a.id.cmp(&b.id)));
        if let Some(i) = out.iter().position(|p| p.blocker) {
            out.truncate(i + 1);
        }
        for p in &out {
            self.entry(p).remove_expired(now);
        }
        Ok(out)
    }

    fn entry(&mut self, p: &ResourceProfile) -> &mut Resource {
        self.resources
            .entry((p.tenant.clone(), p.id.clone()))
            .or_insert_with(|| Resource {
                tenant: p.tenant.clone(),
                id: p.id.clone(),
                ..Resource::default()
            })
    }

    fn total(&self, p: &ResourceProfile) -> f64 {
        self.used(&p.tenant, &p.id)
    }

    /// The units resource `id` of `tenant` holds (expired usages count
    /// until the next operation on it drops them).
    #[must_use]
    pub fn used(&self, tenant: &str, id: &str) -> f64 {
        self.resources
            .get(&(tenant.to_owned(), id.to_owned()))
            .map_or(0.0, Resource::total)
    }

    /// `ResourceSv1.AuthorizeResources`: whether `req.units` more fit (a
    /// usage of the same ID still counts); the allocation message.
    ///
    /// # Errors
    /// [`ResourceError::Unauthorized`] when no matching resource has
    /// room, [`ResourceError::NotFound`], a filter error.
    pub fn authorize(
        &mut self,
        profiles: &ResourceProfiles,
        ctx: &FilterCtx<'_>,
        ev: &Event,
        req: &UsageRequest,
        now: DateTime<Utc>,
    ) -> Result<String, ResourceError> {
        let matched = self.matching(profiles, ctx, ev, now)?;
        matched
            .iter()
            .find(|p| p.has_room(self.total(p), req.units))
            .map(|p| p.message().to_owned())
            .ok_or(ResourceError::Unauthorized)
    }

    /// `ResourceSv1.AllocateResources`: a usage of the same ID is replaced;
    /// granted when one matching resource has room (or always when
    /// `force`, for a passive call that cannot be refused), then recorded
    /// in every matching resource with its TTL.
    ///
    /// # Errors
    /// [`ResourceError::Unavailable`] (not when `force`),
    /// [`ResourceError::NotFound`], a filter error.
    pub fn allocate(
        &mut self,
        profiles: &ResourceProfiles,
        ctx: &FilterCtx<'_>,
        ev: &Event,
        req: &UsageRequest,
        now: DateTime<Utc>,
        force: bool,
    ) -> Result<Allocation, ResourceError> {
        let matched = self.matching(profiles, ctx, ev, now)?;
        // What the resources would hold without this usage's old record.
        let without = |eng: &Self, p: &ResourceProfile| {
            let r = eng.resources.get(&(p.tenant.clone(), p.id.clone()));
            r.map_or(0.0, |r| {
                r.total() - r.usages.get(&req.usage_id).map_or(0.0, |u| u.units)
            })
        };
        let granted = matched
            .iter()
            .find(|p| p.has_room(without(self, p), req.units));
        let (message, over_limit) = match granted {
            Some(p) => (p.message().to_owned(), false),
            None if force => (matched[0].message().to_owned(), true),
            None => return Err(ResourceError::Unavailable),
        };
        for p in &matched {
            let r = self.entry(p);
            r.clear(&req.usage_id);
            let ttl = req.ttl.unwrap_or(p.usage_ttl);
            let expiry = match ttl {
                UsageTtl::NotRecorded => continue,
                UsageTtl::Never => None,
                UsageTtl::After(d) => chrono::Duration::from_std(d)
                    .ok()
                    .and_then(|d| now.checked_add_signed(d)),
            };
            r.record(ResourceUsage {
                tenant: ev.tenant.clone(),
                id: req.usage_id.clone(),
                expiry,
                units: req.units,
            });
        }
        Ok(Allocation {
            message,
            over_limit,
            resources: matched,
        })
    }

    /// `ResourceSv1.ReleaseResources`: the usage cleared from every
    /// matching resource; the resources.
    ///
    /// # Errors
    /// [`ResourceError::UsageNotFound`] when a resource that expires its
    /// usages does not hold it (CGRateS's rule),
    /// [`ResourceError::NotFound`], a filter error.
    pub fn release(
        &mut self,
        profiles: &ResourceProfiles,
        ctx: &FilterCtx<'_>,
        ev: &Event,
        req: &UsageRequest,
        now: DateTime<Utc>,
    ) -> Result<Vec<Arc<ResourceProfile>>, ResourceError> {
        let matched = self.matching(profiles, ctx, ev, now)?;
        let mut missing = false;
        for p in &matched {
            let cleared = self.entry(p).clear(&req.usage_id);
            let ttl = req.ttl.unwrap_or(p.usage_ttl);
            if !cleared && matches!(ttl, UsageTtl::After(_)) {
                missing = true;
            }
        }
        if missing {
            return Err(ResourceError::UsageNotFound(format!(
                "{}:{}",
                ev.tenant, req.usage_id
            )));
        }
        Ok(matched)
    }

    /// The resource `id` of `tenant` at `now`, if its profile exists.
    pub fn resource(
        &mut self,
        profiles: &ResourceProfiles,
        tenant: &str,
        id: &str,
        now: DateTime<Utc>,
    ) -> Option<&Resource> {
        let p = Arc::clone(profiles.get(tenant, id)?);
        let r = self.entry(&p);
        r.remove_expired(now);
        Some(r)
    }

    /// Resource `id`'s (units in use, limit) at `now`.
    pub fn usage(
        &mut self,
        profiles: &ResourceProfiles,
        tenant: &str,
        id: &str,
        now: DateTime<Utc>,
    ) -> Option<(f64, f64)> {
        let limit = profiles.get(tenant, id)?.limit;
        let used = self.resource(profiles, tenant, id, now)?.total();
        Some((used, limit))
    }

    /// Forgets the resources whose profile is gone.
    pub fn retain_profiles(&mut self, profiles: &ResourceProfiles) {
        self.resources
            .retain(|(t, id), _| profiles.get(t, id).is_some());
    }

    /// The resources of Stored profiles (what survives a restart).
    #[must_use]
    pub fn stored(&self, profiles: &ResourceProfiles) -> Vec<Resource> {
        self.resources
            .iter()
            .filter(|((t, id), _)| profiles.get(t, id).is_some_and(|p| p.stored))
            .map(|(_, r)| r.clone())
            .collect()
    }

    /// Puts back resources saved by [`ResourceEngine::stored`].
    pub fn restore(&mut self, saved: Vec<Resource>) {
        for r in saved {
            self.resources.insert((r.tenant.clone(), r.id.clone()), r);
        }
    }
}
