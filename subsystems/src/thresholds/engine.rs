//! The thresholds' hits and the firing rules, with the time passed in.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{ThresholdProfile, ThresholdProfiles};
use crate::{DataProvider, Error, Event, FilterCtx};

/// A threshold: its hits and until when it sleeps.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Threshold {
    /// Tenant.
    pub tenant: String,
    /// ID (its profile's).
    pub id: String,
    /// Events counted.
    pub hits: i64,
    /// The actions do not run again before this.
    pub snooze: Option<DateTime<Utc>>,
}

impl Threshold {
    /// CGRateS's `Threshold` JSON: `Tenant`, `ID`, `Hits`, `Snooze`.
    #[must_use]
    pub fn to_json(&self) -> Value {
        let snooze = self.snooze.map_or_else(
            || {
                Utc.with_ymd_and_hms(1, 1, 1, 0, 0, 0)
                    .single()
                    .map_or_else(|| "0001-01-01T00:00:00Z".to_owned(), |t| t.to_rfc3339())
            },
            |t| t.to_rfc3339(),
        );
        json!({"Tenant": self.tenant, "ID": self.id, "Hits": self.hits, "Snooze": snooze})
    }
}

/// Actions a threshold fired, for the caller to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fired {
    /// Tenant.
    pub tenant: String,
    /// The threshold.
    pub threshold_id: String,
    /// Its ActionIDs, in order.
    pub action_ids: Vec<String>,
    /// The account they run on: `*accountID` of the options, else the
    /// event's `Account` (an `AccountUpdate` event's `ID` without one).
    pub account: Option<String>,
    /// Run without waiting.
    pub async_exec: bool,
}

/// What [`ThresholdEngine::process`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Processed {
    /// The thresholds that counted the event (CGRateS's reply).
    pub hit: Vec<String>,
    /// The actions to run.
    pub fired: Vec<Fired>,
}

/// The hits of every threshold.
#[derive(Debug, Clone, Default)]
pub struct ThresholdEngine {
    thresholds: BTreeMap<(String, String), Threshold>,
}

/// The account an event's actions run on: `*accountID` of the options,
/// else the `Account` field, else an `AccountUpdate` event's `ID`.
#[must_use]
pub fn event_account(ev: &Event) -> Option<String> {
    let pick = |p: &str| {
        ev.field(p)
            .filter(|s| !s.is_empty())
            .map(|s| s.into_owned())
    };
    pick("*opts.*accountID")
        .or_else(|| pick("*req.Account"))
        .or_else(|| {
            let update = |p: &str| ev.field(p).is_some_and(|s| s == "AccountUpdate");
            if update("*opts.*eventType") || update("*req.EventType") {
                pick("*req.ID")
            } else {
                None
            }
        })
}

impl ThresholdEngine {
    /// The profiles matching `ev` (only `ids` when given), highest weight
    /// first (ties by ID), cut after the first blocker.
    ///
    /// # Errors
    /// [`Error::NotFound`] when none matches, a filter error.
    pub fn matching(
        &self,
        profiles: &ThresholdProfiles,
        ctx: &FilterCtx<'_>,
        ev: &Event,
        ids: Option<&[String]>,
    ) -> Result<Vec<Arc<ThresholdProfile>>, Error> {
        let mut out = Vec::new();
        let candidates: Vec<&Arc<ThresholdProfile>> = match ids {
            Some(ids) if !ids.is_empty() => ids
                .iter()
                .filter_map(|id| profiles.get(&ev.tenant, id))
                .collect(),
            _ => profiles.iter().filter(|p| p.tenant == ev.tenant).collect(),
        };
        for p in candidates {
            if ev.time.is_some_and(|t| !p.activation.is_active_at(t)) {
                continue;
            }
            if !ctx.pass(&p.tenant, &p.filter_ids, ev)? {
                continue;
            }
            if !out.iter().any(|o: &Arc<ThresholdProfile>| o.id == p.id) {
                out.push(Arc::clone(p));
            }
        }
        if out.is_empty() {
            return Err(Error::NotFound);
        }
        out.sort_by(|a, b| b.weight.total_cmp(&a.weight).then_with(|| a.id.cmp(&b.id)));
        if let Some(i) = out.iter().position(|p| p.blocker) {
            out.truncate(i + 1);
        }
        Ok(out)
    }

    /// `ThresholdSv1.ProcessEvent`: every matching threshold that still
    /// counts takes a hit; those past MinHits, awake and within MaxHits
    /// fire (and sleep MinSleep).
    ///
    /// # Errors
    /// [`Error::NotFound`] when none matches, a filter error.
    pub fn process(
        &mut self,
        profiles: &ThresholdProfiles,
        ctx: &FilterCtx<'_>,
        ev: &Event,
        ids: Option<&[String]>,
        now: DateTime<Utc>,
    ) -> Result<Processed, Error> {
        let matched = self.matching(profiles, ctx, ev, ids)?;
        let mut out = Processed::default();
        for p in matched {
            let t = self.entry(&p);
            if p.exhausted(t.hits) {
                continue;
            }
            out.hit.push(p.id.clone());
            t.hits += 1;
            let awake = t.snooze.is_none_or(|s| now > s);
            if awake && t.hits >= p.min_hits {
                t.snooze = chrono::Duration::from_std(p.min_sleep)
                    .ok()
                    .and_then(|d| now.checked_add_signed(d));
                if !p.action_ids.is_empty() {
                    out.fired.push(Fired {
                        tenant: p.tenant.clone(),
                        threshold_id: p.id.clone(),
                        action_ids: p.action_ids.clone(),
                        account: event_account(ev),
                        async_exec: p.async_exec,
                    });
                }
            }
        }
        Ok(out)
    }

    fn entry(&mut self, p: &ThresholdProfile) -> &mut Threshold {
        self.thresholds
            .entry((p.tenant.clone(), p.id.clone()))
            .or_insert_with(|| Threshold {
                tenant: p.tenant.clone(),
                id: p.id.clone(),
                ..Threshold::default()
            })
    }

    /// The threshold `id` of `tenant`, if its profile exists.
    #[must_use]
    pub fn get(&self, profiles: &ThresholdProfiles, tenant: &str, id: &str) -> Option<Threshold> {
        profiles.get(tenant, id)?;
        Some(
            self.thresholds
                .get(&(tenant.to_owned(), id.to_owned()))
                .cloned()
                .unwrap_or_else(|| Threshold {
                    tenant: tenant.to_owned(),
                    id: id.to_owned(),
                    ..Threshold::default()
                }),
        )
    }

    /// The IDs of `tenant`'s thresholds, sorted.
    #[must_use]
    pub fn ids(&self, profiles: &ThresholdProfiles, tenant: &str) -> Vec<String> {
        profiles
            .iter()
            .filter(|p| p.tenant == tenant)
            .map(|p| p.id.clone())
            .collect()
    }

    /// Zeroes a threshold's hits and wakes it (`ThresholdSv1.ResetThreshold`);
    /// whether its profile exists.
    pub fn reset(&mut self, profiles: &ThresholdProfiles, tenant: &str, id: &str) -> bool {
        if profiles.get(tenant, id).is_none() {
            return false;
        }
        self.thresholds.remove(&(tenant.to_owned(), id.to_owned()));
        true
    }

    /// Forgets the thresholds whose profile is gone.
    pub fn retain_profiles(&mut self, profiles: &ThresholdProfiles) {
        self.thresholds
            .retain(|(t, id), _| profiles.get(t, id).is_some());
    }

    /// Every threshold with hits (what survives a restart).
    #[must_use]
    pub fn snapshot(&self) -> Vec<Threshold> {
        self.thresholds.values().cloned().collect()
    }

    /// Puts back thresholds saved by [`ThresholdEngine::snapshot`].
    pub fn restore(&mut self, saved: Vec<Threshold>) {
        for t in saved {
            self.thresholds.insert((t.tenant.clone(), t.id.clone()), t);
        }
    }
}
