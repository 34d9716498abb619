//! The cost of a call: call descriptor in, cost breakdown out.
//!
//! The call (from its start, for its usage) is cut into timespans wherever
//! the price may change: at an activation time, at midnight, where another
//! timing takes over (peak/off-peak), and where a rate's
//! GroupIntervalStart begins. Each timespan's usage is rounded up to whole
//! RateIncrements; when that runs past the next cut, the next timespan
//! starts where the rounded one ends, as in CGRateS. `*data` and `*sms`
//! usage counts units, not time: their timing is the one in force at the
//! start, and only GroupIntervalStart cuts them.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use rust_decimal::Decimal;

use crate::Error;
use crate::call::{CallDescriptor, Tor};
use crate::exact::ExactAmount;
use crate::money::{CGRATES_STEP, Money, Rounding, RoundingMode};
use crate::plan::{
    IntervalHead, MaxCost, MaxCostStrategy, RateInterval, RateSlot, RatingPlan, Run, TariffPlan,
};
use crate::resolve::{ANY, DestinationMatch, RatingSlice, match_destination, resolve};
use crate::timing::{DateParts, NS_PER_DAY};

mod span;

pub use span::TimeSpan;
use span::{MatchedPrefix, SpanRef};

/// The cost of a call and how it was reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallCost {
    /// The final cost, rounded.
    pub cost: Money,
    /// The cost before the final rounding (after MaxCost), to 28 digits.
    pub unrounded_cost: Money,
    /// The same, as an exact fraction: in `exact` mode, the costs of a
    /// call's pieces add up to the whole call's exactly.
    pub unrounded: ExactAmount,
    /// Connect fee charged (zero for a piece with a non-zero offset).
    pub connect_fee: Money,
    /// Usage asked for.
    pub usage: Duration,
    /// Usage rated: whole increments, at least `usage`.
    pub rated_usage: Duration,
    /// The rounding mode used.
    pub mode: RoundingMode,
    /// The rounding applied at the end (from the span with the most
    /// decimals); `None` when nothing was rounded.
    pub rounding: Option<Rounding>,
    /// `*free` MaxCost capped the cost.
    pub max_cost_applied: bool,
    /// `*disconnect` MaxCost: the usage after which the cost would pass
    /// MaxCost, when the call is longer than that.
    pub max_cost_disconnect_at: Option<Duration>,
    /// The spans, in time order.
    pub timespans: Vec<TimeSpan>,
}

fn overflow(what: &'static str) -> Error {
    Error::Overflow { what }
}

fn nanos(d: Duration, what: &'static str) -> Result<u64, Error> {
    u64::try_from(d.as_nanos()).map_err(|_| overflow(what))
}

fn add_ns(t: DateTime<Utc>, ns: u64) -> Result<DateTime<Utc>, Error> {
    let delta = TimeDelta::nanoseconds(i64::try_from(ns).map_err(|_| overflow("time"))?);
    t.checked_add_signed(delta).ok_or_else(|| overflow("time"))
}

fn ns_between(a: DateTime<Utc>, b: DateTime<Utc>) -> u64 {
    (b - a)
        .num_nanoseconds()
        .map_or(u64::MAX, |n| u64::try_from(n).unwrap_or(0))
}

/// Which of a run's rate intervals (bit `i` for `heads[i]`) have a timing
/// whose date matches `parts`' day; `None` for a run of more than 64.
/// Worked out once per destination and day, so that picking the interval
/// in force for each span of that day checks only the time of day.
fn on_day(ivs: Run<'_>, parts: &DateParts) -> Option<u64> {
    if ivs.heads.len() > 64 {
        return None;
    }
    Some(
        ivs.heads
            .iter()
            .enumerate()
            .filter(|(_, h)| h.timing.date_matches(parts))
            .fold(0, |m, (i, _)| m | 1 << i),
    )
}

/// The rate interval in force: active timing, highest weight, then the
/// timing that started last, then the lower price, then the first loaded.
/// `on_day`: [`on_day`] of the same run and day.
fn winner(ivs: Run<'_>, parts: &DateParts, group_start: u64, on_day: Option<u64>) -> Option<usize> {
    let mut best: Option<(usize, &IntervalHead, u64)> = None;
    for (i, h) in ivs.heads.iter().enumerate() {
        let active = match on_day {
            Some(mask) => mask >> i & 1 == 1 && h.timing.covers_tod(parts),
            None => h.timing.is_active(parts),
        };
        if !active {
            continue;
        }
        let since = h.timing.since_start(parts);
        let better = match best {
            None => true,
            Some((bi, b, b_since)) => {
                h.weight_rank > b.weight_rank
                    || (h.weight_rank == b.weight_rank
                        && (since < b_since
                            || (since == b_since
                                && price(ivs.full.get(i), group_start)
                                    < price(ivs.full.get(bi), group_start))))
            }
        };
        if better {
            best = Some((i, h, since));
        }
    }
    best.map(|(i, _, _)| i)
}

fn price(ri: Option<&RateInterval>, group_start: u64) -> Option<Money> {
    ri?.rates.slot_at(group_start).map(|s| s.rate)
}

impl TariffPlan {
    /// Rates a call.
    ///
    /// # Errors
    /// [`Error::RatingPlanNotFound`], [`Error::UnauthorizedDestination`],
    /// [`Error::NoRateInterval`] when the call cannot be rated;
    /// [`Error::Overflow`] for absurd usages.
    pub fn cost(&self, cd: &CallDescriptor<'_>, mode: RoundingMode) -> Result<CallCost, Error> {
        self.cost_in(cd, mode, None)
    }

    /// Rates a call with the rating plan `rating_plan_id` in force from
    /// the call's start, whatever the subject's rating profile says (as
    /// CGRateS's `Responder.GetCostOnRatingPlans` does with a temporary
    /// profile, for the routes' least-cost sorting).
    ///
    /// # Errors
    /// [`Error::RatingPlanNotFound`] when there is no such plan,
    /// [`Error::UnauthorizedDestination`] when it does not price the
    /// destination, else as [`TariffPlan::cost`].
    pub fn cost_on_rating_plan(
        &self,
        rating_plan_id: &str,
        cd: &CallDescriptor<'_>,
        mode: RoundingMode,
    ) -> Result<CallCost, Error> {
        let plan = self
            .plans
            .iter()
            .find(|p| &*p.id == rating_plan_id)
            .ok_or_else(|| Error::RatingPlanNotFound {
                tenant: cd.tenant.to_owned(),
                category: cd.category.to_owned(),
                subject: rating_plan_id.to_owned(),
                at: cd.start,
            })?;
        self.cost_in(cd, mode, Some(plan))
    }

    fn cost_in(
        &self,
        cd: &CallDescriptor<'_>,
        mode: RoundingMode,
        only: Option<&RatingPlan>,
    ) -> Result<CallCost, Error> {
        let subject = if cd.subject.is_empty() {
            cd.account
        } else {
            cd.subject
        };
        let usage = nanos(cd.usage, "usage")?;
        let offset = nanos(cd.offset, "offset")?;
        let voice = cd.tor == Tor::Voice;
        let window_end = add_ns(cd.start, if voice { usage.max(1) } else { 1 })?;
        // Calendar facts of the call's start; later moments on the same
        // day only move the time of day (a UTC day is always NS_PER_DAY;
        // a leap-second start takes the slow path).
        let start_parts = DateParts::new(cd.start);
        let slices = match only {
            None => resolve(self, cd, subject, (cd.start, &start_parts), window_end)?,
            Some(plan) => smallvec::smallvec![RatingSlice {
                from: cd.start,
                plan,
                subject: plan.id_idx,
                destination: match_destination(self, plan, cd.destination, &start_parts)
                    .ok_or_else(|| Error::UnauthorizedDestination {
                        tenant: cd.tenant.to_owned(),
                        category: cd.category.to_owned(),
                        subject: subject.to_owned(),
                        destination: cd.destination.to_owned(),
                    })?,
            }],
        };
        // Most calls have one or two spans.
        let mut spans = Vec::with_capacity(2);
        let same_day_ok = cd.start.timestamp_subsec_nanos() < 1_000_000_000;
        let mut p = 0_u64;
        let mut si = 0_usize;
        let mut connect_fee = (Money::ZERO, Some(ExactAmount::ZERO));
        let mut picked: Option<Picked<'_>> = None;
        let mut next_t: Option<DateTime<Utc>> = None;
        while p < usage {
            // The last span's end is this one's start (`start + p`); worked
            // out again only where `p` would not convert.
            let t = match next_t {
                Some(end) if i64::try_from(p).is_ok() => end,
                _ => add_ns(cd.start, p)?,
            };
            if voice {
                while slices.get(si + 1).is_some_and(|s| s.from <= t) {
                    si += 1;
                }
            }
            let Some(slice) = slices.get(si) else {
                return Err(overflow("rating slices"));
            };
            let parts = match start_parts.tod_ns.checked_add(p) {
                _ if !voice => start_parts,
                Some(tod) if same_day_ok && tod < NS_PER_DAY => start_parts.at_tod(tod),
                _ => DateParts::new(t),
            };
            let gs = offset.checked_add(p).ok_or_else(|| overflow("offset"))?;
            let no_interval = || Error::NoRateInterval {
                rating_plan: slice.plan.id.to_string(),
                destination: cd.destination.to_owned(),
                at: t,
            };
            // On a new day or a new activation, pick the destination again:
            // of several sharing the prefix, the one with rates in force
            // that day wins (tutorial2's New Year destination).
            let day = parts.day_key();
            if picked
                .as_ref()
                .is_none_or(|pk| pk.slice != si || pk.day != day)
            {
                let destination = (voice && p > 0)
                    .then(|| match_destination(self, slice.plan, cd.destination, &parts))
                    .flatten()
                    .unwrap_or(slice.destination);
                picked = Some(Picked {
                    slice: si,
                    day,
                    destination,
                    on_day: on_day(destination.intervals, &parts),
                });
            }
            let Some(Picked {
                destination:
                    DestinationMatch {
                        dest,
                        prefix_len,
                        intervals,
                    },
                on_day,
                ..
            }) = picked
            else {
                return Err(overflow("destination"));
            };
            let ri_idx = winner(intervals, &parts, gs, on_day).ok_or_else(no_interval)?;
            let ri = intervals.full.get(ri_idx).ok_or_else(no_interval)?;
            let slot_idx = ri.rates.slot_index_at(gs).ok_or_else(no_interval)?;
            let slot = ri.rates.slots.get(slot_idx).ok_or_else(no_interval)?;
            let inc_cost = ri.inc_costs.get(slot_idx).copied().flatten();
            let seg_end = if voice {
                // The usage, or the next activation, whichever comes first.
                let limit = slices.get(si + 1).map_or(usage, |next| {
                    usage.min(p.saturating_add(ns_between(t, next.from)))
                });
                VoiceSpan {
                    intervals,
                    on_day,
                    winner: ri_idx,
                    parts: &parts,
                    p,
                    group_start: gs,
                    offset,
                }
                .end(limit)
            } else {
                usage
            };
            let seg_end = match ri.rates.next_gis_after(gs) {
                Some(g) => seg_end.min(p.saturating_add(g - gs)),
                None => seg_end,
            };
            let n = (seg_end - p).div_ceil(slot.increment);
            let billed = n
                .checked_mul(slot.increment)
                .ok_or_else(|| overflow("usage"))?;
            if spans.is_empty() && offset == 0 {
                // Once per call: the first span's rate, on the first piece.
                connect_fee = (ri.rates.connect_fee, ri.rates.connect_fee_exact);
            }
            let (inc_cost, ts_cost, exact) = span_cost(slot, inc_cost, n, billed, mode)?;
            let end = add_ns(t, billed)?;
            next_t = Some(end);
            spans.push(TimeSpan {
                start: t,
                end,
                call_offset: Duration::from_nanos(gs),
                usage: Duration::from_nanos(billed),
                names: SpanRef {
                    table: self.names.clone(),
                    interval: intervals
                        .names
                        .saturating_add(u32::try_from(ri_idx).unwrap_or(u32::MAX)),
                    subject: slice.subject,
                },
                prefix: match dest {
                    Some(_) => MatchedPrefix::of_number(cd.destination, prefix_len),
                    None => MatchedPrefix::new(ANY),
                },
                weight: ri.weight,
                rate: slot.rate,
                rate_unit: Duration::from_nanos(slot.unit),
                rate_increment: Duration::from_nanos(slot.increment),
                group_interval_start: Duration::from_nanos(slot.gis),
                increments: n,
                increment_cost: Money::new(inc_cost),
                cost: Money::new(ts_cost),
                rounding: ri.rounding,
                max_cost: ri.max_cost,
                exact,
            });
            p = p.checked_add(billed).ok_or_else(|| overflow("usage"))?;
        }
        totals(cd.usage, Duration::from_nanos(p), connect_fee, spans, mode)
    }
}

/// The destination picked for a rating slice on one calendar day.
struct Picked<'p> {
    /// Index of the rating slice.
    slice: usize,
    /// (year, month, day) it was picked for.
    day: (i32, u32, u32),
    /// What was picked.
    destination: DestinationMatch<'p>,
    /// [`on_day`] of its rate intervals that day.
    on_day: Option<u64>,
}

/// A voice span about to be priced: where it starts and the rate
/// interval that won there.
struct VoiceSpan<'a> {
    /// The rate intervals of the picked destination.
    intervals: Run<'a>,
    /// [`on_day`] of them on the span's day.
    on_day: Option<u64>,
    /// The one of them in force at the start.
    winner: usize,
    /// Calendar facts of the start.
    parts: &'a DateParts,
    /// Usage of this piece before the span, ns.
    p: u64,
    /// Where the span starts in the whole call (`offset + p`), ns.
    group_start: u64,
    /// The descriptor's offset into the whole call, ns.
    offset: u64,
}

impl VoiceSpan<'_> {
    /// Where the span ends: at `limit` (the usage or the next activation,
    /// as usage of this piece), midnight, or the next timing edge where
    /// another rate interval takes over.
    #[inline]
    fn end(&self, limit: u64) -> u64 {
        let (p, parts) = (self.p, self.parts);
        let end = limit.min(p.saturating_add(NS_PER_DAY - parts.tod_ns));
        let mut tod = parts.tod_ns;
        while let Some(edge) = self
            .intervals
            .heads
            .iter()
            .filter_map(|h| h.timing.next_edge_after(tod))
            .min()
        {
            let at = p.saturating_add(edge - parts.tod_ns);
            if at >= end {
                break;
            }
            let group_start = self.offset.saturating_add(at).max(self.group_start);
            let at_edge = parts.at_tod(edge);
            if winner(self.intervals, &at_edge, group_start, self.on_day) != Some(self.winner) {
                return at;
            }
            tod = edge;
        }
        end
    }
}

/// (cost of one increment, cost of the span, both as exact fractions).
#[inline]
fn span_cost(
    slot: &RateSlot,
    inc_cost: Option<(ExactAmount, Decimal)>,
    n: u64,
    billed: u64,
    mode: RoundingMode,
) -> Result<(Decimal, Decimal, (ExactAmount, ExactAmount)), Error> {
    let (rate, unit) = (slot.rate.amount(), slot.unit);
    let exact = |len: u64| ExactAmount::ratio(rate, len, unit).ok_or_else(|| overflow("cost"));
    let decimal = |x: ExactAmount| x.to_decimal().ok_or_else(|| overflow("cost"));
    // The span's exact cost, `rate x billed / unit`: `billed` is `n`
    // increments, so it is `n` times one increment's cost when that was
    // worked out at load (the same fraction, reduced the same way; taken
    // only where the direct product fits, so overflows stay errors alike).
    let span_exact = || match inc_cost {
        Some((inc, _)) if rate.mantissa().checked_mul(i128::from(billed)).is_some() => {
            inc.checked_mul_int(n).ok_or_else(|| overflow("cost"))
        }
        _ => exact(billed),
    };
    match mode {
        RoundingMode::Exact => {
            // One increment's cost was worked out at load.
            let (inc, inc_dec) = match inc_cost {
                Some(c) => c,
                None => {
                    let inc = exact(slot.increment)?;
                    (inc, decimal(inc)?)
                }
            };
            let span = span_exact()?;
            Ok((inc_dec, decimal(span)?, (span, inc)))
        }
        RoundingMode::Cgrates => {
            // CGRateS: span cost rounded to 5 decimals *middle, divided by
            // the number of increments and rounded again; the span costs
            // that increment cost times the number of increments.
            let span = CGRATES_STEP.apply_cgrates(decimal(span_exact()?)?);
            let inc = if n == 0 {
                Decimal::ZERO
            } else {
                let per = span
                    .checked_div(Decimal::from(n))
                    .ok_or_else(|| overflow("cost"))?;
                CGRATES_STEP.apply_cgrates(per)
            };
            let total = inc
                .checked_mul(Decimal::from(n))
                .ok_or_else(|| overflow("cost"))?;
            let as_exact =
                |d: Decimal| ExactAmount::from_decimal(d).ok_or_else(|| overflow("cost"));
            Ok((inc, total, (as_exact(total)?, as_exact(inc)?)))
        }
    }
}

/// The call's cost from its spans; `connect_fee` with its exact fraction
/// (made at load).
#[inline]
fn totals(
    usage: Duration,
    rated: Duration,
    (connect_fee, connect_fee_exact): (Money, Option<ExactAmount>),
    spans: Vec<TimeSpan>,
    mode: RoundingMode,
) -> Result<CallCost, Error> {
    let of = || overflow("cost");
    let as_exact = |m: Money| ExactAmount::from_decimal(m.amount()).ok_or_else(of);
    let mut total = connect_fee_exact.ok_or_else(of)?;
    let mut capped = false;
    // CGRateS adds each running total into MaxCostSoFar (so it reaches
    // MaxCost early when a call has several spans); `cgrates` mode keeps it.
    let mut cg_so_far = ExactAmount::ZERO;
    // With no `*free` MaxCost no running total is looked at: the sum is
    // reduced once (when it fits 64 bits), not after each span.
    let free_cap = |ts: &TimeSpan| {
        ts.max_cost
            .is_some_and(|m| m.strategy == MaxCostStrategy::Free)
    };
    let summed = if spans.iter().any(free_cap) {
        None
    } else {
        ExactAmount::sum64(std::iter::once(total).chain(spans.iter().map(|ts| ts.exact.0)))
    };
    let steps = match summed {
        Some(sum) => {
            total = sum;
            &[][..]
        }
        None => &spans[..],
    };
    for ts in steps {
        total = total.checked_add(ts.exact.0).ok_or_else(of)?;
        if mode == RoundingMode::Cgrates {
            cg_so_far = cg_so_far.checked_add(total).ok_or_else(of)?;
        }
        let Some(MaxCost {
            amount,
            strategy: MaxCostStrategy::Free,
        }) = ts.max_cost
        else {
            continue;
        };
        let cap = as_exact(amount)?;
        let so_far = if mode == RoundingMode::Cgrates {
            cg_so_far
        } else {
            total
        };
        if so_far.partial_cmp(&cap).ok_or_else(of)?.is_ge() {
            total = cap;
            cg_so_far = cap;
            capped = true;
        }
    }
    let rounding = match mode {
        // The span with the most decimals (the first of equals).
        RoundingMode::Exact => spans
            .iter()
            .map(|s| s.rounding)
            .reduce(|a, b| if b.decimals() > a.decimals() { b } else { a }),
        // CGRateS's GetLongestRounding: only more than 0 decimals counts.
        RoundingMode::Cgrates => {
            spans
                .iter()
                .map(|s| s.rounding)
                .fold(None, |acc: Option<Rounding>, r| {
                    if r.decimals() > acc.map_or(0, Rounding::decimals) {
                        Some(r)
                    } else {
                        acc
                    }
                })
        }
    };
    let unrounded = total.to_decimal().ok_or_else(of)?;
    let cost = match (rounding, mode) {
        (Some(r), RoundingMode::Exact) => total.round(r).ok_or_else(of)?,
        (Some(r), RoundingMode::Cgrates) => r.apply_cgrates(unrounded),
        (None, _) => unrounded,
    };
    let max_cost_disconnect_at = disconnect_at(connect_fee, &spans);
    Ok(CallCost {
        cost: Money::new(cost),
        unrounded_cost: Money::new(unrounded),
        unrounded: total,
        connect_fee,
        usage,
        rated_usage: rated,
        mode,
        rounding,
        max_cost_applied: capped,
        max_cost_disconnect_at,
        timespans: spans,
    })
}

/// With `*disconnect`, the usage (whole increments) the call may last while
/// its cost stays at or under MaxCost, if shorter than the rated usage.
fn disconnect_at(connect_fee: Money, spans: &[TimeSpan]) -> Option<Duration> {
    let disconnects = |ts: &TimeSpan| {
        ts.max_cost
            .is_some_and(|m| m.strategy == MaxCostStrategy::Disconnect)
    };
    if !spans.iter().any(disconnects) {
        return None;
    }
    let mut so_far = ExactAmount::from_decimal(connect_fee.amount())?;
    let mut used = Duration::ZERO;
    for ts in spans {
        if let Some(MaxCost {
            amount,
            strategy: MaxCostStrategy::Disconnect,
        }) = ts.max_cost
        {
            let room = ExactAmount::from_decimal(amount.amount())?.checked_sub(so_far)?;
            if room < ExactAmount::ZERO {
                return Some(used);
            }
            // Increments that still fit; None (free increments) fits all.
            let fit = room
                .floor_div(ts.exact.1)
                .and_then(|k| u64::try_from(k).ok());
            if let Some(k) = fit.filter(|&k| k < ts.increments) {
                let fit_len = u32::try_from(k)
                    .ok()
                    .and_then(|k| ts.rate_increment.checked_mul(k))
                    .unwrap_or(ts.usage);
                return Some(used.saturating_add(fit_len));
            }
        }
        so_far = so_far.checked_add(ts.exact.0)?;
        used = used.saturating_add(ts.usage);
    }
    None
}

#[cfg(test)]
mod tests;
