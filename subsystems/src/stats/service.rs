//! The stat queues of the profiles in force and what StatS does with an
//! event (CGRateS's `StatService`): find the matching queues (filters,
//! activation, weight, blocker), add the event to each, and say what
//! changed so the caller can tell ThresholdS.
//!
//! A load keeps the queue of every profile that still exists with the
//! same metrics; a new or changed profile starts empty.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use rating::TariffPlan;
use serde_json::{Map, Value};

use super::queue::StatQueue;
use super::{MetricValue, StatProfile};
use crate::event::Event;
use crate::filters::FilterCtx;
use crate::load::Profiles;
use crate::{DataProvider, Error};

/// One queue an event went into.
#[derive(Debug, Clone, PartialEq)]
pub struct QueueUpdate {
    /// Tenant.
    pub tenant: String,
    /// Queue ID.
    pub id: String,
    /// The thresholds to tell (empty: every matching one); `None`: none
    /// (`*none`).
    pub threshold_ids: Option<Vec<String>>,
    /// The metrics after the event.
    pub metrics: BTreeMap<String, MetricValue>,
    /// The metrics that could not read the event (`metric: why`).
    pub errors: Vec<String>,
}

impl QueueUpdate {
    /// The `StatUpdate` event CGRateS sends ThresholdS: `EventType`,
    /// `StatID` and each metric's value; the original options plus
    /// `*eventType`.
    #[must_use]
    pub fn threshold_event(&self, source: &Event) -> Event {
        let mut fields = Map::new();
        fields.insert("EventType".into(), Value::from("StatUpdate"));
        fields.insert("StatID".into(), Value::from(self.id.clone()));
        for (k, v) in &self.metrics {
            fields.insert(k.clone(), v.json());
        }
        let mut opts = source.opts.clone();
        opts.insert("*eventType".into(), Value::from("StatUpdate"));
        Event {
            tenant: self.tenant.clone(),
            id: format!("{}:{}", self.id, source.id),
            time: source.time,
            fields,
            opts,
            vars: Map::new(),
        }
    }
}

/// What processing an event did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Processed {
    /// The queues that took it, in processing order.
    pub queues: Vec<QueueUpdate>,
}

impl Processed {
    /// The queues' IDs (`StatSv1.ProcessEvent`'s reply).
    #[must_use]
    pub fn ids(&self) -> Vec<String> {
        self.queues.iter().map(|q| q.id.clone()).collect()
    }

    /// Whether a metric could not read the event (CGRateS answers
    /// `PARTIALLY_EXECUTED`).
    #[must_use]
    pub fn partial(&self) -> bool {
        self.queues.iter().any(|q| !q.errors.is_empty())
    }
}

/// The queues of the profiles in force.
#[derive(Debug, Default)]
pub struct StatService {
    queues: BTreeMap<(String, String), StatQueue>,
    synced: Option<Arc<Profiles>>,
    dirty: bool,
}

impl StatService {
    /// Makes the queues those of `profiles` (when they are not already):
    /// kept where the profile still has the same metrics, new and empty
    /// otherwise, dropped without a profile.
    pub fn sync(&mut self, profiles: &Arc<Profiles>) {
        if self
            .synced
            .as_ref()
            .is_some_and(|s| Arc::ptr_eq(s, profiles))
        {
            return;
        }
        let mut old = std::mem::take(&mut self.queues);
        for p in profiles.stats.iter() {
            let key = (p.tenant.clone(), p.id.clone());
            let q = match old.remove(&key) {
                Some(q) if q.fits(p) => q,
                _ => StatQueue::new(p),
            };
            self.queues.insert(key, q);
        }
        self.synced = Some(Arc::clone(profiles));
        self.dirty = true;
    }

    /// Puts saved queues back (before the next [`StatService::sync`],
    /// which keeps those that still fit their profile).
    pub fn restore(&mut self, queues: Vec<StatQueue>) {
        for q in queues {
            self.queues.insert((q.tenant.clone(), q.id.clone()), q);
        }
        self.synced = None;
    }

    /// The queues of Stored profiles, to save.
    #[must_use]
    pub fn stored(&self) -> Vec<&StatQueue> {
        let Some(p) = &self.synced else {
            return Vec::new();
        };
        self.queues
            .values()
            .filter(|q| p.stats.get(&q.tenant, &q.id).is_some_and(|p| p.stored))
            .collect()
    }

    /// Whether queues changed since the last call.
    pub fn take_dirty(&mut self) -> bool {
        std::mem::take(&mut self.dirty)
    }

    /// Marks the queues changed (a save that failed, to retry).
    pub fn mark_dirty(&mut self) {
        self.dirty = true;
    }

    /// The profiles of the queues matching `ev` (only `ids` when given),
    /// highest weight first, cut after the first blocker.
    ///
    /// # Errors
    /// [`Error::NotFound`] when none matches; a filter that cannot be
    /// evaluated.
    pub fn matching<'p>(
        profiles: &'p Profiles,
        plan: Option<&TariffPlan>,
        ev: &Event,
        ids: Option<&[String]>,
        now: DateTime<Utc>,
    ) -> Result<Vec<&'p StatProfile>, Error> {
        let ctx = FilterCtx {
            filters: &profiles.filters,
            plan,
            now,
        };
        let at = ev.time.unwrap_or(now);
        let candidates: Vec<&StatProfile> = match ids {
            Some(ids) if !ids.is_empty() => ids
                .iter()
                .filter_map(|id| profiles.stats.get(&ev.tenant, id))
                .collect(),
            _ => profiles.stats.of_tenant(&ev.tenant).collect(),
        };
        let mut out = Vec::new();
        for p in candidates {
            if !p.activation.is_active_at(at) {
                continue;
            }
            if ctx.pass(&ev.tenant, &p.filter_ids, ev as &dyn DataProvider)? {
                out.push(p);
            }
        }
        if out.is_empty() {
            return Err(Error::NotFound);
        }
        out.sort_by(|a, b| b.weight.cmp(&a.weight).then_with(|| a.id.cmp(&b.id)));
        if let Some(i) = out.iter().position(|p| p.blocker) {
            out.truncate(i + 1);
        }
        Ok(out)
    }

    /// Adds `ev` to every matching queue (only `ids` when given).
    ///
    /// # Errors
    /// [`Error::NotFound`] when no queue matches; a filter that cannot be
    /// evaluated.
    pub fn process_event(
        &mut self,
        profiles: &Arc<Profiles>,
        plan: Option<&TariffPlan>,
        ev: &Event,
        ids: Option<&[String]>,
        now: DateTime<Utc>,
    ) -> Result<Processed, Error> {
        self.sync(profiles);
        let matched = Self::matching(profiles, plan, ev, ids, now)?;
        let ctx = FilterCtx {
            filters: &profiles.filters,
            plan,
            now,
        };
        let mut out = Processed::default();
        for p in matched {
            let q = self
                .queues
                .entry((p.tenant.clone(), p.id.clone()))
                .or_insert_with(|| StatQueue::new(p));
            let errors = q.process(p, &ctx, &ev.id, ev)?;
            if p.stored {
                self.dirty = true;
            }
            let threshold_ids = match p.threshold_ids.as_slice() {
                [only] if only == "*none" => None,
                ids => Some(ids.to_vec()),
            };
            out.queues.push(QueueUpdate {
                tenant: p.tenant.clone(),
                id: p.id.clone(),
                threshold_ids,
                metrics: q.values(p),
                errors: errors
                    .into_iter()
                    .map(|e| format!("{}: {}", e.metric, e.why))
                    .collect(),
            });
        }
        Ok(out)
    }

    /// Queue `id`'s metrics now (expired events dropped first); `None`
    /// for no such queue.
    pub fn metrics(
        &mut self,
        profiles: &Arc<Profiles>,
        tenant: &str,
        id: &str,
        now: DateTime<Utc>,
    ) -> Option<BTreeMap<String, MetricValue>> {
        let (q, p) = self.queue(profiles, tenant, id, now)?;
        Some(q.values(p))
    }

    /// Queue `id` and its profile, expired events dropped.
    pub fn queue<'a>(
        &'a mut self,
        profiles: &'a Arc<Profiles>,
        tenant: &str,
        id: &str,
        now: DateTime<Utc>,
    ) -> Option<(&'a StatQueue, &'a StatProfile)> {
        self.sync(profiles);
        let p = profiles.stats.get(tenant, id)?;
        let q = self.queues.get_mut(&(tenant.to_owned(), id.to_owned()))?;
        if q.expire(now) && p.stored {
            self.dirty = true;
        }
        Some((q, p))
    }

    /// The IDs of `tenant`'s queues, sorted.
    pub fn queue_ids(&mut self, profiles: &Arc<Profiles>, tenant: &str) -> Vec<String> {
        self.sync(profiles);
        self.queues
            .keys()
            .filter(|(t, _)| t == tenant)
            .map(|(_, id)| id.clone())
            .collect()
    }

    /// Every queue's metrics (tenant, ID, values), for `/metrics`.
    pub fn all_metrics(
        &mut self,
        profiles: &Arc<Profiles>,
        now: DateTime<Utc>,
    ) -> Vec<(String, String, BTreeMap<String, MetricValue>)> {
        self.sync(profiles);
        let keys: Vec<(String, String)> = self.queues.keys().cloned().collect();
        keys.into_iter()
            .filter_map(|(t, id)| {
                let m = self.metrics(profiles, &t, &id, now)?;
                Some((t, id, m))
            })
            .collect()
    }
}

#[cfg(test)]
#[path = "service_tests.rs"]
mod tests;
