//! Pricing CDRs against a CGRateS tariff plan (`replay --tariffplan`).

use std::path::Path;

use sessions::Cdr;

use crate::args::Rounding;

/// A loaded tariff plan and the rounding to rate with.
pub(crate) struct Rater {
    plan: rating::TariffPlan,
    mode: rating::RoundingMode,
}

impl Rater {
    /// Loads the plan in `dir`; warnings go to stderr.
    pub(crate) fn load(
        dir: &Path,
        rounding: Rounding,
        policy: &rating::LoadPolicy,
    ) -> anyhow::Result<Self> {
        // Loaded as `accurate cost` loads it, so both price a call alike
        // (`*asap` anchored at the same moment).
        let (plan, report) = crate::cost::load_tariff_plan(dir, policy)?;
        for w in &report.warnings {
            eprintln!("replay: tariff plan warning: {w}");
        }
        Ok(Rater {
            plan,
            mode: rounding.into(),
        })
    }

    /// Fills `Cost`: the plan's cost of the answered part, 0 for an
    /// unanswered call (nothing to rate), -1 and the reason when the plan
    /// cannot rate it (as CGRateS marks a CDR it failed to rate).
    pub(crate) fn rate(&self, cdr: &mut Cdr) {
        let Some(answer) = cdr.answer_time else {
            cdr.cost = Some(rating::Money::ZERO.amount());
            return;
        };
        let Some(start) = chrono::DateTime::from_timestamp(answer.secs(), answer.subsec_nanos())
        else {
            cdr.set_rating_error("answer time out of range");
            return;
        };
        let mut cd = rating::CallDescriptor::new(&cdr.subject, &cdr.destination, start, cdr.usage);
        cd.tenant = &cdr.tenant;
        cd.category = &cdr.category;
        cd.account = &cdr.account;
        match self.plan.cost(&cd, self.mode) {
            Ok(cc) => cdr.cost = Some(cc.cost.amount().normalize()),
            Err(e) => cdr.set_rating_error(&e.to_string()),
        }
    }
}
