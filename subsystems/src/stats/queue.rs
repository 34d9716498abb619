//! One stat queue: the events it holds (oldest first) and its metrics'
//! totals, as CGRateS's `StatQueue` (`remExpired`, `remOnQueueLength`,
//! `addStatEvent`).

use std::collections::{BTreeMap, VecDeque};

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use super::StatProfile;
use super::metrics::{self, MetricState, MetricValue, Sample};
use crate::event::DataProvider;
use crate::filters::FilterCtx;

/// One event a queue holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueItem {
    /// The event's ID.
    pub event_id: String,
    /// When it leaves the queue (`None`: only pushed out by length).
    pub expiry: Option<DateTime<Utc>>,
    /// What it added to each metric (same order as the metrics; `None`:
    /// that metric did not take it).
    pub samples: Vec<Option<Sample>>,
}

/// A stat queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatQueue {
    /// Tenant.
    pub tenant: String,
    /// ID (the profile's).
    pub id: String,
    /// The metric IDs its totals belong to, in order.
    pub metric_ids: Vec<String>,
    /// Whether events are kept one by one ([`StatProfile::keeps_items`]).
    pub keeps_items: bool,
    /// The events, oldest first.
    pub items: VecDeque<QueueItem>,
    /// Each metric's totals.
    pub states: Vec<MetricState>,
}

/// A metric that could not read an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricError {
    /// The metric ID.
    pub metric: String,
    /// Why (`NOT_FOUND:Usage`).
    pub why: String,
}

impl StatQueue {
    /// An empty queue for `p`.
    #[must_use]
    pub fn new(p: &StatProfile) -> StatQueue {
        StatQueue {
            tenant: p.tenant.clone(),
            id: p.id.clone(),
            metric_ids: p.metrics.iter().map(|m| m.id.clone()).collect(),
            keeps_items: p.keeps_items(),
            items: VecDeque::new(),
            states: vec![MetricState::default(); p.metrics.len()],
        }
    }

    /// Whether this queue's totals still mean what `p`'s metrics compute.
    #[must_use]
    pub fn fits(&self, p: &StatProfile) -> bool {
        self.keeps_items == p.keeps_items()
            && self.states.len() == p.metrics.len()
            && self.metric_ids.iter().eq(p.metrics.iter().map(|m| &m.id))
    }

    fn pop_front(&mut self) {
        if let Some(item) = self.items.pop_front() {
            for (st, s) in self.states.iter_mut().zip(&item.samples) {
                if let Some(s) = s {
                    st.remove(s);
                }
            }
        }
    }

    /// Drops the events whose time is up; whether any was.
    pub fn expire(&mut self, now: DateTime<Utc>) -> bool {
        let mut any = false;
        while self
            .items
            .front()
            .is_some_and(|i| i.expiry.is_some_and(|e| e <= now))
        {
            self.pop_front();
            any = true;
        }
        any
    }

    /// Adds `ev` (after dropping expired events and making room): each
    /// metric whose filters pass counts it. The metrics that could not
    /// read it are returned; the others counted it.
    ///
    /// # Errors
    /// A metric filter that cannot be evaluated.
    pub fn process(
        &mut self,
        p: &StatProfile,
        ctx: &FilterCtx<'_>,
        event_id: &str,
        ev: &dyn DataProvider,
    ) -> Result<Vec<MetricError>, crate::Error> {
        self.expire(ctx.now);
        if p.queue_length > 0 {
            let max = usize::try_from(p.queue_length).unwrap_or(usize::MAX);
            while self.items.len() >= max {
                self.pop_front();
            }
        }
        let mut samples = Vec::with_capacity(p.metrics.len());
        let mut errors = Vec::new();
        for m in &p.metrics {
            if !ctx.pass(&p.tenant, &m.filter_ids, ev)? {
                samples.push(None);
                continue;
            }
            match metrics::sample(&m.kind, ev) {
                Ok(s) => samples.push(Some(s)),
                Err(why) => {
                    errors.push(MetricError {
                        metric: m.id.clone(),
                        why,
                    });
                    samples.push(None);
                }
            }
        }
        for (st, s) in self.states.iter_mut().zip(&samples) {
            if let Some(s) = s {
                st.add(s);
            }
        }
        if self.keeps_items {
            let expiry = p
                .ttl_nanos
                .and_then(|ns| ctx.now.checked_add_signed(Duration::nanoseconds(ns)));
            self.items.push_back(QueueItem {
                event_id: event_id.to_owned(),
                expiry,
                samples,
            });
        }
        Ok(errors)
    }

    /// Each metric's value (metric ID -> value), with `p`'s MinItems.
    #[must_use]
    pub fn values(&self, p: &StatProfile) -> BTreeMap<String, MetricValue> {
        p.metrics
            .iter()
            .zip(&self.states)
            .map(|(m, st)| (m.id.clone(), metrics::value(&m.kind, st, p.min_items)))
            .collect()
    }
}
