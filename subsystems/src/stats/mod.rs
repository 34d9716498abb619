//! StatS (Stats.csv): stat queues that aggregate metrics (ASR, ACD, TCC,
//! ...) over the last events matching their filters, as CGRateS's
//! `engine/stats.go` and `engine/libstats.go`.
//!
//! - [`StatProfiles`]: the Stats.csv profiles of a plan.
//! - [`metrics`]: each metric's reading, totals and text.
//! - [`queue`]: one queue's events and totals.
//! - [`service`]: the queues of the profiles in force and event
//!   processing ([`StatService`]).

pub mod metrics;
pub mod queue;
pub mod service;

use std::collections::BTreeMap;
use std::path::Path;

use rust_decimal::Decimal;

use crate::Error;
use crate::activation::ActivationInterval;
pub use metrics::{MetricKind, MetricValue};
pub use queue::StatQueue;
pub use service::{Processed, QueueUpdate, StatService};

/// One metric of a profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricSpec {
    /// The ID as written (`*asr`, `*sum#~*req.Usage`): the key of the
    /// metrics' replies.
    pub id: String,
    /// What it computes.
    pub kind: MetricKind,
    /// Filters an event must pass for this metric to count it
    /// (MetricFilterIDs).
    pub filter_ids: Vec<String>,
}

/// A Stats.csv profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatProfile {
    /// Tenant.
    pub tenant: String,
    /// ID (the queue's ID too).
    pub id: String,
    /// Filters an event must pass.
    pub filter_ids: Vec<String>,
    /// When it is in force.
    pub activation: ActivationInterval,
    /// Events kept (0 or less: no limit).
    pub queue_length: i64,
    /// How long an event is kept (`None`: until pushed out).
    pub ttl_nanos: Option<i64>,
    /// Events below which every metric answers N/A.
    pub min_items: u64,
    /// The metrics, in file order.
    pub metrics: Vec<MetricSpec>,
    /// Whether the queue survives a restart.
    pub stored: bool,
    /// Whether queues of lower weight stop here.
    pub blocker: bool,
    /// Order of matching queues (highest first).
    pub weight: Decimal,
    /// Thresholds told of each change (empty: those matching; `*none`:
    /// none).
    pub threshold_ids: Vec<String>,
}

impl StatProfile {
    /// Whether the queue keeps its events one by one (to drop them by
    /// length or age); without either limit only totals are kept.
    #[must_use]
    pub fn keeps_items(&self) -> bool {
        self.queue_length > 0 || self.ttl_nanos.is_some()
    }
}

/// The Stats.csv profiles of one tariff plan, by tenant and ID.
#[derive(Debug, Clone, Default)]
pub struct StatProfiles {
    by_id: BTreeMap<(String, String), StatProfile>,
}

impl StatProfiles {
    /// Loads Stats.csv: `Tenant,ID,FilterIDs,ActivationInterval,
    /// QueueLength,TTL,MinItems,Metrics,MetricFilterIDs,Stored,Blocker,
    /// Weight,ThresholdIDs` (v0.10 and master). Lines with the same
    /// tenant and ID add to one profile: lists are joined, a non-empty
    /// field replaces the one before, each line's MetricFilterIDs apply to
    /// that line's metrics.
    ///
    /// # Errors
    /// [`Error::Load`] naming the line and column.
    pub fn load(records: &rating::csv::Records, file: &Path) -> Result<StatProfiles, Error> {
        let mut out = StatProfiles::default();
        for r in records.iter() {
            let err = |column: usize, why: String| Error::Load {
                file: file.to_owned(),
                line: r.line,
                column,
                why,
            };
            let (tenant, id) = (r.field(0), r.field(1));
            if tenant.is_empty() || id.is_empty() {
                return Err(err(1, "Tenant and ID are required".into()));
            }
            let p = out
                .by_id
                .entry((tenant.to_owned(), id.to_owned()))
                .or_insert_with(|| StatProfile {
                    tenant: tenant.to_owned(),
                    id: id.to_owned(),
                    filter_ids: Vec::new(),
                    activation: ActivationInterval::default(),
                    queue_length: 0,
                    ttl_nanos: None,
                    min_items: 0,
                    metrics: Vec::new(),
                    stored: false,
                    blocker: false,
                    weight: Decimal::ZERO,
                    threshold_ids: Vec::new(),
                });
            push_list(&mut p.filter_ids, r.field(2));
            if !r.field(3).is_empty() {
                p.activation = ActivationInterval::parse(r.field(3)).map_err(|e| err(4, e))?;
            }
            if !r.field(4).is_empty() {
                p.queue_length = r
                    .field(4)
                    .parse()
                    .map_err(|_| err(5, format!("QueueLength {:?} is not a number", r.field(4))))?;
            }
            if !r.field(5).is_empty() {
                let ttl = metrics::parse_go_duration(r.field(5)).map_err(|e| err(6, e))?;
                p.ttl_nanos = (ttl > 0).then_some(ttl);
            }
            if !r.field(6).is_empty() {
                let n: i64 = r
                    .field(6)
                    .parse()
                    .map_err(|_| err(7, format!("MinItems {:?} is not a number", r.field(6))))?;
                p.min_items = u64::try_from(n).unwrap_or(0);
            }
            let mut metric_filters = Vec::new();
            push_list(&mut metric_filters, r.field(8));
            for mid in r
                .field(7)
                .split(';')
                .map(str::trim)
                .filter(|s| !s.is_empty())
            {
                let kind = MetricKind::parse(mid).map_err(|e| err(8, e))?;
                if let Some(m) = p.metrics.iter_mut().find(|m| m.id == mid) {
                    m.filter_ids.extend(metric_filters.iter().cloned());
                } else {
                    p.metrics.push(MetricSpec {
                        id: mid.to_owned(),
                        kind,
                        filter_ids: metric_filters.clone(),
                    });
                }
            }
            if !r.field(9).is_empty() {
                p.stored = bool_field(r.field(9)).ok_or_else(|| err(10, bad_bool(r.field(9))))?;
            }
            if !r.field(10).is_empty() {
                p.blocker =
                    bool_field(r.field(10)).ok_or_else(|| err(11, bad_bool(r.field(10))))?;
            }
            if !r.field(11).is_empty() {
                p.weight = r
                    .field(11)
                    .parse()
                    .map_err(|_| err(12, format!("Weight {:?} is not a number", r.field(11))))?;
            }
            push_list(&mut p.threshold_ids, r.field(12));
        }
        Ok(out)
    }

    /// The profile `id` of `tenant`.
    #[must_use]
    pub fn get(&self, tenant: &str, id: &str) -> Option<&StatProfile> {
        self.by_id.get(&(tenant.to_owned(), id.to_owned()))
    }

    /// Every profile, by tenant then ID.
    pub fn iter(&self) -> impl Iterator<Item = &StatProfile> {
        self.by_id.values()
    }

    /// The profiles of `tenant`, by ID.
    pub fn of_tenant(&self, tenant: &str) -> impl Iterator<Item = &StatProfile> {
        let tenant = tenant.to_owned();
        self.by_id
            .range((tenant.clone(), String::new())..)
            .take_while(move |((t, _), _)| *t == tenant)
            .map(|(_, p)| p)
    }

    /// Adds or replaces a profile.
    pub fn insert(&mut self, p: StatProfile) {
        self.by_id.insert((p.tenant.clone(), p.id.clone()), p);
    }

    /// Removes the profile `id` of `tenant`; the profile removed, if any.
    pub fn remove(&mut self, tenant: &str, id: &str) -> Option<StatProfile> {
        self.by_id.remove(&(tenant.to_owned(), id.to_owned()))
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

fn push_list(to: &mut Vec<String>, field: &str) {
    for s in field.split(';').map(str::trim).filter(|s| !s.is_empty()) {
        if !to.iter().any(|x| x == s) {
            to.push(s.to_owned());
        }
    }
}

fn bool_field(s: &str) -> Option<bool> {
    match s.to_ascii_lowercase().as_str() {
        "true" | "1" => Some(true),
        "false" | "0" => Some(false),
        _ => None,
    }
}

fn bad_bool(s: &str) -> String {
    format!("{s:?} is neither true nor false")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(csv: &str) -> Result<StatProfiles, Error> {
        let path = Path::new("Stats.csv");
        let recs = rating::csv::parse(path, csv.as_bytes())?;
        StatProfiles::load(&recs, path)
    }

    #[test]
    fn lines_of_one_profile_add_up() {
        let p = load(
            "#Tenant[0],Id[1],FilterIDs[2],ActivationInterval[3],QueueLength[4],TTL[5],MinItems[6],Metrics[7],MetricFilterIDs[8],Stored[9],Blocker[10],Weight[11],ThresholdIDs[12]\n\
             cgrates.org,Q1,FLTR_A,2014-07-29T15:00:00Z,100,3s,2,,,true,false,20,*none\n\
             cgrates.org,Q1,,,,,,*asr;*acc;*tcd,,,,,\n\
             cgrates.org,Q1,,,,,,*sum#~*req.Usage;*average#~*req.Usage,,,,,\n\
             cgrates.org,Q1,,,,,,*pdd,*exists:~*req.PDD:,,,,\n\
             cgrates.org,Q2,,,-1,-1,0,*tcc,,false,true,10,TH1;TH2\n",
        )
        .unwrap();
        let q1 = p.get("cgrates.org", "Q1").unwrap();
        assert_eq!(q1.queue_length, 100);
        assert_eq!(q1.ttl_nanos, Some(3_000_000_000));
        assert_eq!(q1.min_items, 2);
        assert!(q1.stored && !q1.blocker);
        assert_eq!(q1.weight, Decimal::from(20));
        assert_eq!(q1.threshold_ids, vec!["*none"]);
        let ids: Vec<&str> = q1.metrics.iter().map(|m| m.id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "*asr",
                "*acc",
                "*tcd",
                "*sum#~*req.Usage",
                "*average#~*req.Usage",
                "*pdd"
            ]
        );
        assert_eq!(q1.metrics[5].filter_ids, vec!["*exists:~*req.PDD:"]);
        assert!(q1.metrics[0].filter_ids.is_empty());
        let q2 = p.get("cgrates.org", "Q2").unwrap();
        assert_eq!((q2.queue_length, q2.ttl_nanos), (-1, None));
        assert!(!q2.keeps_items() && q1.keeps_items());
        assert_eq!(p.of_tenant("cgrates.org").count(), 2);
        assert_eq!(p.of_tenant("other").count(), 0);
    }

    #[test]
    fn bad_lines_name_line_and_column() {
        let e = load("cgrates.org,Q1,,,100,3s,2,*median,,,,,\n").unwrap_err();
        assert!(e.to_string().contains(":1: column 8"), "{e}");
        assert!(e.to_string().contains("*median"), "{e}");
        let e = load("\ncgrates.org,Q1,,,ten,,,,,,,,\n").unwrap_err();
        assert!(e.to_string().contains(":2: column 5"), "{e}");
        let e = load("cgrates.org,Q1,,,,soon,,,,,,,\n").unwrap_err();
        assert!(e.to_string().contains("column 6"), "{e}");
        let e = load("cgrates.org,Q1,,,,,,,,maybe,,,\n").unwrap_err();
        assert!(e.to_string().contains("column 10"), "{e}");
    }
}
