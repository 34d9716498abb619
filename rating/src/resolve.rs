//! Which rating plan and destination rates apply to a call, and when.
//!
//! As CGRateS does: the rating profile of tenant, category and subject
//! (falling back to subject `*any` when the subject has none); within it
//! the last activation at or before the call's start, switching at each
//! later activation the call crosses; within each plan the destination by
//! longest prefix (the plan's `*any` destination when no prefix matches);
//! when a plan does not price the destination, the activation's fallback
//! subjects, up to three deep.

use chrono::{DateTime, Utc};
use smallvec::SmallVec;

use crate::Error;
use crate::call::CallDescriptor;
use crate::plan::{IntervalHead, RatingPlan, Run, SubjectMap, TariffPlan};
use crate::timing::DateParts;

/// CGRateS's RECURSION_MAX_DEPTH for fallback subjects.
const MAX_FALLBACK_DEPTH: usize = 3;

/// The subject CGRateS falls back to when a subject has no profile.
pub(crate) const ANY: &str = "*any";

/// The rating slices of a call, in time order: almost always one (a
/// second when the call crosses an activation), kept inline so that
/// rating a call does not allocate for them.
pub(crate) type Slices<'p> = SmallVec<[RatingSlice<'p>; 2]>;

/// From `from` (until the next slice), rate with `intervals` of `plan`.
#[derive(Debug)]
pub(crate) struct RatingSlice<'p> {
    pub from: DateTime<Utc>,
    pub plan: &'p RatingPlan,
    /// The subject, among the plan's `PlanNames::subjects`.
    pub subject: u32,
    /// The destination at `from`.
    pub destination: DestinationMatch<'p>,
}

/// The destination a plan prices a number as.
#[derive(Debug, Clone, Copy)]
pub(crate) struct DestinationMatch<'p> {
    /// The destination's index, `None` for the plan's `*any`.
    pub dest: Option<u32>,
    /// The length of the prefix of the number that matched.
    pub prefix_len: usize,
    /// The plan's rate intervals for that destination.
    pub intervals: Run<'p>,
}

enum Fail {
    NotFound,
    Unauthorized,
    Hard(Error),
}

impl From<Error> for Fail {
    fn from(e: Error) -> Self {
        Fail::Hard(e)
    }
}

/// What every step of resolving a call looks at.
struct Ctx<'p, 'c> {
    tp: &'p TariffPlan,
    cd: &'c CallDescriptor<'c>,
    /// The profiles of the call's tenant and category, looked up once.
    subjects: Option<&'p SubjectMap>,
    /// Calendar facts of the call's start.
    start_parts: &'c DateParts,
}

/// The rating slices covering `[from, to)` for the call; `from_parts` are
/// the calendar facts of `from`.
pub(crate) fn resolve<'p>(
    tp: &'p TariffPlan,
    cd: &CallDescriptor<'_>,
    subject: &str,
    (from, from_parts): (DateTime<Utc>, &DateParts),
    to: DateTime<Utc>,
) -> Result<Slices<'p>, Error> {
    let mut out = Slices::new();
    let ctx = Ctx {
        tp,
        cd,
        subjects: tp.subjects(cd.tenant, cd.category),
        start_parts: from_parts,
    };
    let mut result = subject_slices(&ctx, subject, from, to, 1, &mut out);
    if matches!(result, Err(Fail::NotFound)) && subject != ANY {
        out.clear();
        result = subject_slices(&ctx, ANY, from, to, 1, &mut out);
    }
    match result {
        Ok(()) => Ok(out),
        Err(Fail::Hard(e)) => Err(e),
        Err(Fail::NotFound) => Err(Error::RatingPlanNotFound {
            tenant: cd.tenant.to_owned(),
            category: cd.category.to_owned(),
            subject: subject.to_owned(),
            at: from,
        }),
        Err(Fail::Unauthorized) => Err(Error::UnauthorizedDestination {
            tenant: cd.tenant.to_owned(),
            category: cd.category.to_owned(),
            subject: subject.to_owned(),
            destination: cd.destination.to_owned(),
        }),
    }
}

fn subject_slices<'p>(
    ctx: &Ctx<'p, '_>,
    subject: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    depth: usize,
    out: &mut Slices<'p>,
) -> Result<(), Fail> {
    if depth > MAX_FALLBACK_DEPTH {
        return Err(Fail::Hard(Error::FallbackDepth {
            subject: ctx.cd.subject.to_owned(),
            depth: MAX_FALLBACK_DEPTH,
        }));
    }
    let (tp, cd) = (ctx.tp, ctx.cd);
    let profile = ctx
        .subjects
        .and_then(|s| s.get(subject))
        .ok_or(Fail::NotFound)?;
    let acts = &profile.activations;
    let first = acts.iter().rposition(|a| a.at <= from);
    let start_idx = match first {
        Some(i) => i,
        None => {
            // The call starts before the subject's first activation: CGRateS
            // rates that part with the `*any` subject.
            let gap_end = acts.first().map_or(to, |a| a.at.min(to));
            if subject == ANY {
                return Err(Fail::NotFound);
            }
            subject_slices(ctx, ANY, from, gap_end, depth + 1, out)?;
            if gap_end >= to {
                return Ok(());
            }
            0
        }
    };
    for (k, act) in acts.iter().enumerate().skip(start_idx) {
        if k > start_idx && act.at >= to {
            break;
        }
        let seg_from = if act.at > from { act.at } else { from };
        let seg_to = acts.get(k + 1).map_or(to, |n| n.at.min(to));
        let Some(plan) = tp.plans.get(act.plan as usize) else {
            return Err(Fail::NotFound);
        };
        let parts = if seg_from == from && from == cd.start {
            *ctx.start_parts
        } else {
            DateParts::new(seg_from)
        };
        if let Some(destination) = match_destination(tp, plan, cd.destination, &parts) {
            out.push(RatingSlice {
                from: seg_from,
                plan,
                subject: profile.subject_idx,
                destination,
            });
            continue;
        }
        let mut covered = false;
        for fb in act.fallback.iter() {
            let mark = out.len();
            match subject_slices(ctx, fb, seg_from, seg_to, depth + 1, out) {
                Ok(()) => {
                    covered = true;
                    break;
                }
                Err(Fail::NotFound | Fail::Unauthorized) => out.truncate(mark),
                Err(hard) => return Err(hard),
            }
        }
        if !covered {
            return Err(Fail::Unauthorized);
        }
    }
    Ok(())
}

/// The destination of `number` priced by `plan`: the longest matching
/// prefix that the plan prices; when several destinations share it, the
/// one whose rates are in force at `parts` with the highest weight (then
/// the highest weight overall, then the first loaded). The plan's `*any`
/// destination when no prefix matches.
pub(crate) fn match_destination<'p>(
    tp: &TariffPlan,
    plan: &'p RatingPlan,
    number: &str,
    parts: &DateParts,
) -> Option<DestinationMatch<'p>> {
    if !number.is_empty() && number != ANY {
        let matches = tp.trie.matches(number.as_bytes());
        for (len, node) in matches.deepest_first() {
            let dests = tp.trie.dests(node);
            if let [d] = dests {
                // One destination with this prefix (the usual case): no
                // contest to score.
                if let Some(ivs) = plan.dest_intervals(*d) {
                    return Some(DestinationMatch {
                        dest: Some(*d),
                        prefix_len: len,
                        intervals: ivs,
                    });
                }
                continue;
            }
            let mut best: Option<((bool, i64), u32, Run<'p>)> = None;
            for &d in dests {
                let Some(ivs) = plan.dest_intervals(d) else {
                    continue;
                };
                let score = destination_score(ivs.heads, parts);
                if best.as_ref().is_none_or(|(s, _, _)| score > *s) {
                    best = Some((score, d, ivs));
                }
            }
            if let Some((_, d, ivs)) = best {
                return Some(DestinationMatch {
                    dest: Some(d),
                    prefix_len: len,
                    intervals: ivs,
                });
            }
        }
    }
    let any = plan.any_intervals();
    if any.is_empty() {
        None
    } else {
        Some(DestinationMatch {
            dest: None,
            prefix_len: 0,
            intervals: any,
        })
    }
}

/// (has a rate in force at `parts`, rank of the best weight among those
/// in force, or among all when none is; -1 for no interval).
fn destination_score(ivs: &[IntervalHead], parts: &DateParts) -> (bool, i64) {
    let mut active: Option<u32> = None;
    let mut all: Option<u32> = None;
    for ri in ivs {
        let w = ri.weight_rank;
        all = Some(all.map_or(w, |a| a.max(w)));
        if ri.timing.is_active(parts) {
            active = Some(active.map_or(w, |a| a.max(w)));
        }
    }
    match active {
        Some(w) => (true, i64::from(w)),
        None => (false, all.map_or(-1, i64::from)),
    }
}
