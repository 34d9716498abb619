//! RatingPlans.csv and RatingProfiles.csv: the last two files of a plan,
//! read once destinations, timings, rates and destination rates are in.

use super::*;

impl Builder {
    /// RatingPlans.csv: `ID,DestinationRatesID,TimingID,Weight`.
    pub(super) fn rating_plans(&mut self, path: &Path, recs: &Records) -> Result<(), Error> {
        let any: Arc<str> = Arc::from(crate::resolve::ANY);
        // A built-in timing made once for all the rows naming it (the same
        // every time: anchored at the load time), so that destinations
        // rated alike share their interval heads.
        let mut builtins: FastMap<Box<str>, Arc<Timing>> = FastMap::default();
        for r in recs.iter() {
            check_width(path, r, 4, 4, "ID,DestinationRatesID,TimingID,Weight")?;
            let id = id_field(path, r, 0, "a rating plan ID")?;
            let dr_id = r.field(1);
            let (dr_name, rows) = self.drs.get(dr_id).cloned().ok_or_else(|| {
                load_err(
                    path,
                    r.line,
                    2,
                    "a destination rate ID defined in DestinationRates.csv",
                    dr_id,
                )
            })?;
            let timing_id = r.field(2);
            let timing = match (self.timings.get(timing_id), builtins.get(timing_id)) {
                (Some(t), _) | (None, Some(t)) => t.clone(),
                (None, None) => {
                    let t = Arc::new(Timing::builtin(timing_id, self.loaded_at).ok_or_else(|| {
                        load_err(
                            path,
                            r.line,
                            3,
                            "a timing ID defined in Timings.csv, or *any, *asap, *daily, *weekly, *monthly, *month_end, *yearly",
                            timing_id,
                        )
                    })?);
                    builtins.insert(timing_id.into(), t.clone());
                    t
                }
            };
            let weight_s = r.field(3);
            let weight = if weight_s.is_empty() {
                Decimal::ZERO
            } else {
                Money::parse(weight_s).map(Money::amount).ok_or_else(|| {
                    load_err(path, r.line, 4, "a Weight: a number like 10", weight_s)
                })?
            };
            let plan_idx = match self.plan_index.get(id) {
                Some(&i) => i,
                None => {
                    let i = u32::try_from(self.plan.plans.len()).map_err(|_| {
                        load_err(path, r.line, 1, "fewer than 2^32 rating plans", id)
                    })?;
                    let id_arc: Arc<str> = Arc::from(id);
                    self.plan.plans.push(RatingPlan {
                        id_idx: self.names.add_subject(id_arc.clone()),
                        id: id_arc,
                        intervals: Vec::new(),
                        heads: Vec::new(),
                        by_dest: DestRuns::default(),
                        any: Default::default(),
                    });
                    self.pending.push(Vec::new());
                    self.plan_index.insert(id.into(), i);
                    i
                }
            };
            let (Some(pending), Some(plan_id)) = (
                self.pending.get_mut(plan_idx as usize),
                self.plan.plans.get(plan_idx as usize).map(|p| p.id.clone()),
            ) else {
                return Err(load_err(path, r.line, 1, "a rating plan", id));
            };
            for row in rows {
                if u32::try_from(pending.len()).is_err() {
                    return Err(load_err(
                        path,
                        r.line,
                        1,
                        "fewer than 2^32 rate intervals",
                        id,
                    ));
                }
                let (dest, destination_id) = match row.dest {
                    DestRef::Any => (None, any.clone()),
                    DestRef::Dest(d) => (
                        Some(d),
                        self.plan
                            .dest_ids
                            .get(d as usize)
                            .cloned()
                            .unwrap_or_else(|| Arc::from("")),
                    ),
                };
                let names = u32::try_from(self.names.spans.len())
                    .map_err(|_| load_err(path, r.line, 1, "fewer than 2^32 rate intervals", id))?;
                self.names.spans.push(SpanNames {
                    rating_plan: plan_id.clone(),
                    destination_id,
                    destination_rate: dr_name.clone(),
                    timing: timing.id_arc().clone(),
                    rate_id: row.rates.id.clone(),
                });
                pending.push((
                    dest,
                    names,
                    RateInterval {
                        timing: timing.clone(),
                        weight,
                        rates: row.rates.clone(),
                        rounding: row.rounding,
                        max_cost: row.max_cost,
                        inc_costs: row.inc_costs.clone(),
                    },
                ));
            }
        }
        Ok(())
    }

    /// RatingProfiles.csv: `Tenant,Category,Subject,ActivationTime,
    /// RatingPlanID,FallbackSubject`, or the older layout with `Direction`
    /// first and `CdrStatQueueIds` last.
    pub(super) fn rating_profiles(
        &mut self,
        path: &Path,
        recs: &Records,
        report: &mut LoadReport,
    ) -> Result<(), Error> {
        for r in recs.iter() {
            let first = r.field(0);
            let old = first == "*out" || first == "*in";
            let base = usize::from(old);
            if old {
                check_width(
                    path,
                    r,
                    6,
                    8,
                    "Direction,Tenant,Category,Subject,ActivationTime,RatingPlanId,RatesFallbackSubject,CdrStatQueueIds",
                )?;
                if first == "*in" {
                    report.warnings.push(format!(
                        "{}:{}: *in rating profile ignored: only outbound (*out) calls are rated",
                        path.display(),
                        r.line
                    ));
                    continue;
                }
            } else {
                check_width(
                    path,
                    r,
                    5,
                    6,
                    "Tenant,Category,Subject,ActivationTime,RatingPlanID,FallbackSubject",
                )?;
            }
            let tenant = id_field(path, r, base, "a tenant")?;
            let category = id_field(path, r, base + 1, "a category")?;
            let subject = id_field(path, r, base + 2, "a subject or *any")?;
            let at_s = r.field(base + 3);
            let at = parse_time(at_s, self.loaded_at).ok_or_else(|| {
                load_err(
                    path,
                    r.line,
                    base + 4,
                    "an ActivationTime like 2014-01-14T00:00:00Z",
                    at_s,
                )
            })?;
            let rp_id = r.field(base + 4);
            let plan = *self.plan_index.get(rp_id).ok_or_else(|| {
                load_err(
                    path,
                    r.line,
                    base + 5,
                    "a rating plan ID defined in RatingPlans.csv",
                    rp_id,
                )
            })?;
            let fallback: Box<[Arc<str>]> = r
                .field(base + 5)
                .split(';')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(Arc::from)
                .collect();
            let names = &mut self.names;
            let subjects = self
                .plan
                .profiles
                .entry(tenant.into())
                .or_default()
                .entry(category.into())
                .or_default();
            let profile = subjects.entry(subject.into()).or_insert_with(|| {
                self.plan.profile_count += 1;
                Profile {
                    subject_idx: names.add_subject(Arc::from(subject)),
                    activations: Vec::new(),
                }
            });
            profile.activations.push(Activation { at, plan, fallback });
            // Stable: of two rows with the same time, the later one wins.
            profile.activations.sort_by_key(|a| a.at);
        }
        Ok(())
    }
}
