//! A loaded tariff plan: the data the rating engine reads.
//!
//! Built once by the loader (`load/`), then immutable: share it behind an
//! [`Arc`] and rate from as many threads as you like.

use std::sync::{Arc, RwLock};

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;

use crate::exact::ExactAmount;
use crate::money::{Money, Rounding};
use crate::prefix::{FastMap, PrefixTrie};
use crate::timing::Timing;

/// One row of a rate group: from `gis` into the call, `rate` per `unit`,
/// charged in whole `increment`s.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RateSlot {
    /// GroupIntervalStart, nanoseconds (units) into the call.
    pub gis: u64,
    /// Price per rate unit.
    pub rate: Money,
    /// RateUnit in nanoseconds (units); never 0 (0 in a file means 1s,
    /// as in CGRateS).
    pub unit: u64,
    /// RateIncrement in nanoseconds (units); never 0 (0 means 1s).
    pub increment: u64,
}

/// The rows of Rates.csv sharing one ID.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RateGroup {
    /// The Rates ID. Runs of rate intervals shared by destinations (see
    /// [`share_runs`]) keep one of the groups with the same prices, so a
    /// span takes its Rates ID from its names, not from here.
    pub id: Arc<str>,
    /// The ConnectFee of the row with the lowest GroupIntervalStart.
    pub connect_fee: Money,
    /// The same as an exact fraction, made once at load (`None` if it
    /// does not convert; the cost then reports it).
    pub connect_fee_exact: Option<ExactAmount>,
    /// Sorted by `gis`.
    pub slots: Box<[RateSlot]>,
}

impl RateGroup {
    /// The slot in force at `offset` into the call.
    pub fn slot_at(&self, offset: u64) -> Option<&RateSlot> {
        self.slots.iter().rev().find(|s| s.gis <= offset)
    }

    /// The index of the slot in force at `offset` into the call.
    pub fn slot_index_at(&self, offset: u64) -> Option<usize> {
        self.slots.iter().rposition(|s| s.gis <= offset)
    }

    /// Each slot's increment cost, exactly and as a decimal.
    pub fn inc_costs(&self) -> Arc<[Option<(ExactAmount, Decimal)>]> {
        self.slots
            .iter()
            .map(|s| {
                let inc = ExactAmount::ratio(s.rate.amount(), s.increment, s.unit)?;
                Some((inc, inc.to_decimal()?))
            })
            .collect()
    }

    /// The next GroupIntervalStart after `offset`.
    pub fn next_gis_after(&self, offset: u64) -> Option<u64> {
        self.slots.iter().map(|s| s.gis).find(|&g| g > offset)
    }
}

/// What happens when a call's cost reaches MaxCost.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MaxCostStrategy {
    /// `*free`: the rest of the call is free; the cost stops at MaxCost.
    Free,
    /// `*disconnect`: the call should be cut when its cost would pass
    /// MaxCost (a prepaid session's limit); a finished call's cost is not
    /// changed, as in CGRateS.
    Disconnect,
}

impl MaxCostStrategy {
    /// `*free` or `*disconnect`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            MaxCostStrategy::Free => "*free",
            MaxCostStrategy::Disconnect => "*disconnect",
        }
    }
}

/// A DestinationRates MaxCost with its strategy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MaxCost {
    /// The cap.
    pub amount: Money,
    /// What reaching it does.
    pub strategy: MaxCostStrategy,
}

/// A RatingPlans row expanded for one destination: when (timing, weight),
/// at what price (rates), rounded how, capped how.
#[derive(Debug, Clone)]
pub(crate) struct RateInterval {
    pub timing: Arc<Timing>,
    pub weight: Decimal,
    pub rates: Arc<RateGroup>,
    pub rounding: Rounding,
    pub max_cost: Option<MaxCost>,
    /// Per slot of `rates`: one increment's exact cost and its decimal,
    /// worked out once at load (`None` where that overflows; the cost
    /// then reports it). One allocation per Rates ID, shared.
    pub inc_costs: Arc<[Option<(ExactAmount, Decimal)>]>,
}

/// The names of a timespan that do not depend on the call: the rating
/// plan, destination, DestinationRates, timing and Rates IDs of the rate
/// interval that priced it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SpanNames {
    /// The RatingPlans ID.
    pub rating_plan: Arc<str>,
    /// The destination ID (`*any` for the plan's catch-all).
    pub destination_id: Arc<str>,
    /// The DestinationRates ID.
    pub destination_rate: Arc<str>,
    /// The timing ID.
    pub timing: Arc<str>,
    /// The Rates ID.
    pub rate_id: Arc<str>,
}

/// Every name a timespan of this plan can carry, made at load. A span
/// holds one handle to the whole table (one reference count, touched by
/// every call, so always in cache) and indexes into it, instead of a
/// handle per name (each a reference count on its own line).
#[derive(Debug, Default)]
pub(crate) struct PlanNames {
    /// Per rate interval of each destination, a run for each (from
    /// `RunAt::names`, in the order of the run's intervals).
    pub spans: Vec<SpanNames>,
    /// The subjects a span is priced for: every rating profile's subject
    /// (`Profile::subject_idx`) and every rating plan's ID (`RatingPlan::
    /// id_idx`, the subject of `TariffPlan::cost_on_rating_plan`).
    pub subjects: Vec<Arc<str>>,
}

impl PlanNames {
    /// Adds a subject; its index.
    pub(crate) fn add_subject(&mut self, s: Arc<str>) -> u32 {
        self.subjects.push(s);
        u32::try_from(self.subjects.len() - 1).unwrap_or(u32::MAX)
    }
}

/// What picking a rate interval reads of it (16 bytes, so a
/// destination's candidates take a cache line or two): its timing and the
/// rank of its weight among the plan's weights (equal weights, equal
/// ranks; compared instead of the decimals).
#[derive(Debug, Clone)]
pub(crate) struct IntervalHead {
    pub timing: Arc<Timing>,
    pub weight_rank: u32,
}

/// A destination's rate intervals: their heads and the intervals, side
/// by side in load order, and where their names start.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Run<'p> {
    pub heads: &'p [IntervalHead],
    pub full: &'p [RateInterval],
    /// The names of `full[i]` are `PlanNames::spans[names + i]`.
    pub names: u32,
}

impl Run<'_> {
    /// No interval.
    pub fn is_empty(&self) -> bool {
        self.heads.is_empty()
    }
}

/// A RatingPlans ID: its rate intervals, grouped by destination.
///
/// The intervals of one destination sit side by side (in load order), so
/// rating a call reads one run of memory for them, not a list of indexes
/// into scattered rows; their heads (`heads[i]` for `intervals[i]`) are
/// what picking one reads. Destinations whose intervals are alike (the
/// same timings, weights, rates, rounding and MaxCost: in a real plan,
/// every destination sold at the same price list) share one run, which
/// stays in cache; only their names (`RunAt::names`) are their own.
#[derive(Debug, Clone)]
pub(crate) struct RatingPlan {
    pub id: Arc<str>,
    /// `id` among the plan's [`PlanNames::subjects`].
    pub id_idx: u32,
    /// Grouped by destination, the `*any` destination's run included.
    pub intervals: Vec<RateInterval>,
    /// One per interval.
    pub heads: Vec<IntervalHead>,
    /// Destination index -> where its run is.
    pub by_dest: DestRuns,
    /// Where the `*any` destination's run is; length 0: none.
    pub any: RunAt,
}

/// Where a destination's rate intervals are in its rating plan: `len` of
/// them from `start` in `intervals` (and `heads`), their names from
/// `names` in the plan's [`PlanNames::spans`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct RunAt {
    pub start: u32,
    pub len: u32,
    pub names: u32,
}

impl RatingPlan {
    fn run(&self, at: RunAt) -> Run<'_> {
        let r = at.start as usize..(at.start as usize).saturating_add(at.len as usize);
        match (self.heads.get(r.clone()), self.intervals.get(r)) {
            (Some(heads), Some(full)) => Run {
                heads,
                full,
                names: at.names,
            },
            _ => Run {
                heads: &[],
                full: &[],
                names: 0,
            },
        }
    }

    /// The rate intervals for destination `d`, if the plan prices it.
    pub fn dest_intervals(&self, d: u32) -> Option<Run<'_>> {
        self.by_dest.get(d).map(|r| self.run(r))
    }

    /// The rate intervals of the `*any` destination (empty: none).
    pub fn any_intervals(&self) -> Run<'_> {
        self.run(self.any)
    }

    /// Lays out the rate intervals (in load order, with their destination,
    /// `None` for `*any`, and their names, an index into `loaded`) grouped
    /// by destination: destinations in the order they first appear, each
    /// one's intervals in load order, their names copied to `spans` in
    /// the same order. The heads, and the sharing of runs, come after,
    /// from [`share_runs`].
    pub(crate) fn set_intervals(
        &mut self,
        rows: Vec<(Option<u32>, u32, RateInterval)>,
        loaded: &[SpanNames],
        spans: &mut Vec<SpanNames>,
    ) {
        let mut groups: FastMap<Option<u32>, Vec<RateInterval>> = FastMap::default();
        let mut names: FastMap<Option<u32>, Vec<u32>> = FastMap::default();
        let mut order = Vec::new();
        for (dest, n, ri) in rows {
            groups
                .entry(dest)
                .or_insert_with(|| {
                    order.push(dest);
                    Vec::new()
                })
                .push(ri);
            names.entry(dest).or_default().push(n);
        }
        self.intervals = Vec::with_capacity(groups.values().map(Vec::len).sum());
        self.heads = Vec::new();
        let mut by_dest = Vec::new();
        self.any = RunAt::default();
        for dest in order {
            let Some(run) = groups.remove(&dest) else {
                continue;
            };
            // The loader refuses more than 2^32 intervals in a plan.
            let start = u32::try_from(self.intervals.len()).unwrap_or(u32::MAX);
            let range = RunAt {
                start,
                len: u32::try_from(run.len()).unwrap_or(0),
                // Fewer than 2^32 rate intervals in all (the loader
                // refuses more).
                names: u32::try_from(spans.len()).unwrap_or(u32::MAX),
            };
            spans.extend(
                names
                    .get(&dest)
                    .into_iter()
                    .flatten()
                    .filter_map(|&n| loaded.get(n as usize).cloned()),
            );
            self.intervals.extend(run);
            match dest {
                Some(d) => by_dest.push((d, range)),
                None => self.any = range,
            }
        }
        self.by_dest = DestRuns::new(by_dest);
    }
}

/// Destination index -> where its run of rate intervals is.
///
/// A plan that prices most of the destinations keeps the runs in a table
/// indexed by destination: the lookup on every call reads one 12-byte slot
/// (one cache line) instead of a hash table's control bytes and bucket.
/// A plan pricing few of many destinations keeps a map, so that many such
/// plans do not take a table as long as the destination list each.
#[derive(Debug, Clone)]
pub(crate) enum DestRuns {
    /// Indexed by destination; a length of 0 marks a destination the plan
    /// does not price (a run is never empty).
    Dense(Box<[RunAt]>),
    /// The destinations the plan prices.
    Sparse(FastMap<u32, RunAt>),
}

impl Default for DestRuns {
    fn default() -> Self {
        DestRuns::Sparse(FastMap::default())
    }
}

impl DestRuns {
    /// The table when it is at most four times as long as the runs
    /// listed, else the map.
    fn new(runs: Vec<(u32, RunAt)>) -> Self {
        let slots = runs.iter().map(|&(d, _)| d as usize + 1).max().unwrap_or(0);
        if slots <= runs.len().saturating_mul(4) {
            let mut table = vec![RunAt::default(); slots].into_boxed_slice();
            for (d, range) in runs {
                if let Some(slot) = table.get_mut(d as usize) {
                    *slot = range;
                }
            }
            DestRuns::Dense(table)
        } else {
            DestRuns::Sparse(runs.into_iter().collect())
        }
    }

    /// The run of destination `d`, if the plan prices it.
    pub fn get(&self, d: u32) -> Option<RunAt> {
        match self {
            DestRuns::Dense(t) => t.get(d as usize).copied().filter(|r| r.len > 0),
            DestRuns::Sparse(m) => m.get(&d).copied(),
        }
    }

    /// Every run (a dense table's unused slots too).
    fn runs_mut(&mut self) -> Box<dyn Iterator<Item = &mut RunAt> + '_> {
        match self {
            DestRuns::Dense(t) => Box::new(t.iter_mut()),
            DestRuns::Sparse(m) => Box::new(m.values_mut()),
        }
    }
}

/// What makes two rate intervals alike (their names aside): the same
/// timing (the same `Arc`), the same prices (the place of their rate
/// group's [`Prices`] among the plans'), and the same weight, rounding
/// and MaxCost, digit for digit.
type Alike = (
    *const Timing,
    u32,
    (i128, u32),
    Rounding,
    Option<((i128, u32), MaxCostStrategy)>,
);

/// A decimal's digits and scale: equal only when written alike.
fn digits(d: Decimal) -> (i128, u32) {
    (d.mantissa(), d.scale())
}

fn alike(ri: &RateInterval, prices: &FastMap<*const RateGroup, u32>) -> Alike {
    (
        Arc::as_ptr(&ri.timing),
        prices
            .get(&Arc::as_ptr(&ri.rates))
            .copied()
            .unwrap_or(u32::MAX),
        digits(ri.weight),
        ri.rounding,
        ri.max_cost.map(|m| (digits(m.amount.amount()), m.strategy)),
    )
}

/// A rate group's prices, its ID aside: the connect fee and each slot's
/// GroupIntervalStart, rate, unit and increment, digit for digit. Two
/// groups with the same prices price every call alike (the ID a span
/// shows comes from its names).
type Prices = ((i128, u32), Vec<(u64, (i128, u32), u64, u64)>);

fn prices(g: &RateGroup) -> Prices {
    (
        digits(g.connect_fee.amount()),
        g.slots
            .iter()
            .map(|s| (s.gis, digits(s.rate.amount()), s.unit, s.increment))
            .collect(),
    )
}

/// Lays out each plan's rate intervals again, one run for each distinct
/// list of alike intervals (destinations sold alike share it), with their
/// heads: `weight_rank` is the weight's place among all the distinct
/// weights of the plans, so that comparing ranks is comparing weights.
pub(crate) fn share_runs(plans: &mut [RatingPlan]) {
    let mut weights: Vec<Decimal> = plans
        .iter()
        .flat_map(|p| p.intervals.iter().map(|ri| ri.weight))
        .collect();
    weights.sort_unstable();
    weights.dedup();
    let rank = |w: Decimal| u32::try_from(weights.partition_point(|x| *x < w)).unwrap_or(u32::MAX);
    // Each rate group's place among the distinct prices.
    let mut distinct: FastMap<Prices, u32> = FastMap::default();
    let mut price_list: FastMap<*const RateGroup, u32> = FastMap::default();
    for ri in plans.iter().flat_map(|p| &p.intervals) {
        price_list.entry(Arc::as_ptr(&ri.rates)).or_insert_with(|| {
            let next = u32::try_from(distinct.len()).unwrap_or(u32::MAX);
            *distinct.entry(prices(&ri.rates)).or_insert(next)
        });
    }
    for p in plans.iter_mut() {
        let loaded = std::mem::take(&mut p.intervals);
        let RatingPlan {
            intervals,
            heads,
            by_dest,
            any,
            ..
        } = p;
        heads.clear();
        let mut lists: FastMap<Vec<Alike>, u32> = FastMap::default();
        for at in by_dest.runs_mut().chain(std::iter::once(any)) {
            let r = at.start as usize..(at.start as usize).saturating_add(at.len as usize);
            let run = loaded.get(r).unwrap_or(&[]);
            at.start = *lists
                .entry(run.iter().map(|ri| alike(ri, &price_list)).collect())
                .or_insert_with(|| {
                    // No more intervals than loaded: fewer than 2^32.
                    let start = u32::try_from(intervals.len()).unwrap_or(u32::MAX);
                    heads.extend(run.iter().map(|ri| IntervalHead {
                        timing: ri.timing.clone(),
                        weight_rank: rank(ri.weight),
                    }));
                    intervals.extend(run.iter().cloned());
                    start
                });
        }
    }
}

/// One RatingProfiles row: from `at`, rate with `plan`; when the plan does
/// not price the destination, try the `fallback` subjects.
#[derive(Debug, Clone)]
pub(crate) struct Activation {
    pub at: DateTime<Utc>,
    pub plan: u32,
    pub fallback: Box<[Arc<str>]>,
}

/// A rating profile: one tenant, category and subject, its activations
/// sorted by time.
#[derive(Debug, Clone)]
pub(crate) struct Profile {
    /// The subject, among the plan's [`PlanNames::subjects`].
    pub subject_idx: u32,
    pub activations: Vec<Activation>,
}

pub(crate) type SubjectMap = FastMap<Box<str>, Profile>;

/// A loaded, validated tariff plan. Immutable and `Send + Sync`: load it
/// once and share it behind an [`Arc`].
#[derive(Debug, Clone, Default)]
pub struct TariffPlan {
    pub(crate) dest_ids: Vec<Arc<str>>,
    pub(crate) trie: PrefixTrie,
    pub(crate) plans: Vec<RatingPlan>,
    /// tenant -> category -> subject -> profile.
    pub(crate) profiles: FastMap<Box<str>, FastMap<Box<str>, SubjectMap>>,
    pub(crate) profile_count: usize,
    /// Actions, ActionPlans, ActionTriggers, AccountActions, SharedGroups.
    pub(crate) account: crate::actions::AccountPlanData,
    /// Timings.csv by ID (balances name them in their TimingIDs).
    pub(crate) timings: FastMap<Box<str>, Arc<Timing>>,
    /// The names timespans carry.
    pub(crate) names: Arc<PlanNames>,
}

impl TariffPlan {
    /// Number of destinations.
    #[must_use]
    pub fn destination_count(&self) -> usize {
        self.dest_ids.len()
    }

    /// Number of (prefix, destination) pairs.
    #[must_use]
    pub fn prefix_count(&self) -> usize {
        self.trie.len()
    }

    /// Number of rating plans.
    #[must_use]
    pub fn rating_plan_count(&self) -> usize {
        self.plans.len()
    }

    /// Number of rating profiles (tenant, category, subject).
    #[must_use]
    pub fn rating_profile_count(&self) -> usize {
        self.profile_count
    }

    #[cfg(test)]
    pub(crate) fn profile(&self, tenant: &str, category: &str, subject: &str) -> Option<&Profile> {
        self.subjects(tenant, category)?.get(subject)
    }

    /// The rating profiles of a tenant and category, by subject.
    pub(crate) fn subjects(&self, tenant: &str, category: &str) -> Option<&SubjectMap> {
        self.profiles.get(tenant)?.get(category)
    }
}

/// Where the rating engine gets its tariff plan from. The binary decides
/// how plans are stored and reloaded; rating only asks for the current one.
pub trait TariffStore: Send + Sync {
    /// The plan in force now. Cheap: an [`Arc`] clone.
    fn current(&self) -> Arc<TariffPlan>;
}

/// A [`TariffStore`] holding one plan in memory, replaced whole on reload:
/// a plan that fails to load is refused and the previous one stays in
/// force.
#[derive(Debug, Default)]
pub struct SharedTariffPlan {
    inner: RwLock<Arc<TariffPlan>>,
}

impl SharedTariffPlan {
    /// Starts with `plan` in force.
    #[must_use]
    pub fn new(plan: TariffPlan) -> Self {
        SharedTariffPlan {
            inner: RwLock::new(Arc::new(plan)),
        }
    }

    /// Puts `plan` in force; calls being rated keep the plan they started
    /// with.
    pub fn replace(&self, plan: TariffPlan) {
        let mut guard = self
            .inner
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *guard = Arc::new(plan);
    }

    /// Loads the folder and, only if it loads without error, puts it in
    /// force.
    ///
    /// # Errors
    /// The load error; the previous plan stays in force.
    pub fn reload_dir(
        &self,
        dir: &std::path::Path,
        options: &crate::LoadOptions,
    ) -> Result<crate::LoadReport, crate::Error> {
        self.reload_dir_with(dir, options, &crate::LoadPolicy::default())
    }

    /// [`SharedTariffPlan::reload_dir`] with a [`crate::LoadPolicy`].
    ///
    /// # Errors
    /// The load error; the previous plan stays in force.
    pub fn reload_dir_with(
        &self,
        dir: &std::path::Path,
        options: &crate::LoadOptions,
        policy: &crate::LoadPolicy,
    ) -> Result<crate::LoadReport, crate::Error> {
        let (plan, report) = TariffPlan::load_dir_with(dir, options, policy)?;
        self.replace(plan);
        Ok(report)
    }
}

impl TariffStore for SharedTariffPlan {
    fn current(&self) -> Arc<TariffPlan> {
        self.inner
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slot(gis: u64, rate: i64) -> RateSlot {
        RateSlot {
            gis,
            rate: Money::new(Decimal::from(rate)),
            unit: 1,
            increment: 1,
        }
    }

    #[test]
    fn rate_group_picks_the_slot_by_group_interval_start() {
        let g = RateGroup {
            id: Arc::from("RT"),
            connect_fee: Money::ZERO,
            connect_fee_exact: Some(ExactAmount::ZERO),
            slots: vec![slot(0, 1), slot(60, 2)].into(),
        };
        assert_eq!(g.slot_at(0).map(|s| s.gis), Some(0));
        assert_eq!(g.slot_at(59).map(|s| s.gis), Some(0));
        assert_eq!(g.slot_at(60).map(|s| s.gis), Some(60));
        assert_eq!(g.next_gis_after(0), Some(60));
        assert_eq!(g.next_gis_after(60), None);
        let late = RateGroup {
            id: Arc::from("RT"),
            connect_fee: Money::ZERO,
            connect_fee_exact: Some(ExactAmount::ZERO),
            slots: vec![slot(60, 2)].into(),
        };
        assert!(late.slot_at(0).is_none());
    }

    #[test]
    fn shared_plan_is_send_sync_and_replaces_whole() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<TariffPlan>();
        assert_send_sync::<SharedTariffPlan>();
        let shared = SharedTariffPlan::default();
        let before = shared.current();
        assert_eq!(before.destination_count(), 0);
        let mut p = TariffPlan::default();
        p.dest_ids.push(Arc::from("D"));
        shared.replace(p);
        assert_eq!(shared.current().destination_count(), 1);
        assert_eq!(before.destination_count(), 0, "old Arc unchanged");
    }
}
