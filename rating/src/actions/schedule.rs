//! When an ActionPlan row runs: its timing as a schedule.
//!
//! CGRateS anchors the built-in timings at the moment it loads the plan
//! (`*monthly` runs on the load day of each month at the load time of
//! day, `*hourly` at the load minute and second of each hour, ...);
//! `*asap`, and a Timings.csv row whose Time is `*asap`, run once, at
//! load. A plan loaded for rating (anchored at the epoch, for replay
//! determinism) re-anchors its ActionPlan timings with
//! [`ActionTiming::anchored_at`] when the server schedules them.
//! Everything is UTC, as the rest of the crate.

use std::sync::Arc;

use chrono::{DateTime, Datelike, NaiveDate, TimeDelta, Timelike, Utc};

use crate::timing::{Timing, first_of_next_month};

/// The built-in ActionPlan timings.
pub(crate) const BUILTIN_TIMINGS: &str = "*asap, *every_minute, *hourly, *daily, *weekly, *monthly, *monthly_estimated, *month_end, *yearly";

/// An ActionPlan row's TimingId and when it runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionTiming {
    id: Arc<str>,
    kind: Kind,
    anchor: Anchor,
}

/// How the timing depends on the moment it is anchored at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Anchor {
    /// A built-in timing (`*asap`, `*monthly`, ...): runs relative to it.
    Builtin,
    /// A Timings.csv row whose Time is `*asap`: once, at it.
    TimingAsap,
    /// A Timings.csv row: fixed dates, whatever the anchor.
    Fixed,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    /// Once, at this moment.
    Once(DateTime<Utc>),
    /// Each minute at this second.
    EveryMinute { second: u32 },
    /// Each hour at this minute and second.
    Hourly { minute: u32, second: u32 },
    /// Each month on this day, or the month's last day when it is
    /// shorter, at this time of day (nanoseconds).
    MonthlyEstimated { day: u32, tod_ns: u64 },
    /// On the dates a timing matches, at its start time.
    Calendar(Arc<Timing>),
}

impl ActionTiming {
    /// A built-in timing anchored at `loaded_at`, or `None` if `id` is not
    /// one of [`BUILTIN_TIMINGS`].
    pub(crate) fn builtin(id: &str, loaded_at: DateTime<Utc>) -> Option<ActionTiming> {
        let kind = match id {
            "*asap" | "*now" => Kind::Once(loaded_at),
            "*every_minute" => Kind::EveryMinute {
                second: loaded_at.second(),
            },
            "*hourly" => Kind::Hourly {
                minute: loaded_at.minute(),
                second: loaded_at.second(),
            },
            "*monthly_estimated" => Kind::MonthlyEstimated {
                day: loaded_at.day(),
                tod_ns: u64::from(loaded_at.num_seconds_from_midnight()) * 1_000_000_000,
            },
            "*daily" | "*weekly" | "*monthly" | "*month_end" | "*yearly" => {
                Kind::Calendar(Arc::new(Timing::builtin(id, loaded_at)?))
            }
            _ => return None,
        };
        Some(ActionTiming {
            id: Arc::from(id),
            kind,
            anchor: Anchor::Builtin,
        })
    }

    /// The schedule of a Timings.csv row; a row whose Time is `*asap`
    /// runs once, at `loaded_at`.
    pub(crate) fn from_timing(timing: Arc<Timing>, loaded_at: DateTime<Utc>) -> ActionTiming {
        let id = timing.id_arc().clone();
        let (kind, anchor) = if timing.is_asap() {
            (Kind::Once(loaded_at), Anchor::TimingAsap)
        } else {
            (Kind::Calendar(timing), Anchor::Fixed)
        };
        ActionTiming { id, kind, anchor }
    }

    /// The same timing anchored at `at` instead of the plan's load moment:
    /// a built-in timing runs relative to `at` (`*monthly` on `at`'s day
    /// of the month at its time of day, `*asap` at `at`), as CGRateS
    /// anchors the ActionPlan timings when it loads or attaches the plan;
    /// a Timings.csv row keeps its dates.
    #[must_use]
    pub fn anchored_at(&self, at: DateTime<Utc>) -> ActionTiming {
        match self.anchor {
            Anchor::Builtin => ActionTiming::builtin(&self.id, at).unwrap_or_else(|| self.clone()),
            Anchor::TimingAsap => ActionTiming {
                kind: Kind::Once(at),
                ..self.clone()
            },
            Anchor::Fixed => self.clone(),
        }
    }

    /// The TimingId.
    #[must_use]
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Whether it runs only once (`*asap`).
    #[must_use]
    pub fn is_once(&self) -> bool {
        matches!(self.kind, Kind::Once(_))
    }

    /// The first run at or after `from`, `None` if there is none (a
    /// one-time timing already past, a date that never comes).
    #[must_use]
    pub fn first_run(&self, from: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match &self.kind {
            Kind::Once(at) => (*at >= from).then_some(*at),
            Kind::EveryMinute { second } => {
                let base = from.with_nanosecond(0)?.with_second(*second)?;
                next_from(base, from, TimeDelta::minutes(1))
            }
            Kind::Hourly { minute, second } => {
                let base = from
                    .with_nanosecond(0)?
                    .with_second(*second)?
                    .with_minute(*minute)?;
                next_from(base, from, TimeDelta::hours(1))
            }
            Kind::MonthlyEstimated { day, tod_ns } => {
                let mut month = NaiveDate::from_ymd_opt(from.year(), from.month(), 1)?;
                // This month's run or, when it is past, next month's.
                for _ in 0..2 {
                    let last = first_of_next_month(month)?.pred_opt()?.day();
                    let date = month.with_day((*day).min(last))?;
                    let at = date.and_hms_opt(0, 0, 0)?.and_utc()
                        + TimeDelta::nanoseconds(i64::try_from(*tod_ns).ok()?);
                    if at >= from {
                        return Some(at);
                    }
                    month = first_of_next_month(month)?;
                }
                None
            }
            Kind::Calendar(t) => t.next_start_at_or_after(from),
        }
    }

    /// The next run strictly after `after` (the previous run, or now).
    #[must_use]
    pub fn next_run(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.first_run(after.checked_add_signed(TimeDelta::nanoseconds(1))?)
    }
}

/// `base`, or `base` plus one `step`, whichever is the first at or after
/// `from` (`base` is within one step before or after `from`).
fn next_from(base: DateTime<Utc>, from: DateTime<Utc>, step: TimeDelta) -> Option<DateTime<Utc>> {
    if base >= from {
        Some(base)
    } else {
        base.checked_add_signed(step)
    }
}

/// `t` plus `months` calendar months as Go's `AddDate` counts them: a day
/// the target month lacks runs over into the next (31 January + 1 month =
/// 3 March, or 2 March in a leap year), as CGRateS's `*monthly` expiry.
pub(crate) fn add_months_overflowing(t: DateTime<Utc>, months: u32) -> Option<DateTime<Utc>> {
    let total = i64::from(t.month0()) + i64::from(months);
    let year = t.year().checked_add(i32::try_from(total / 12).ok()?)?;
    let month = u32::try_from(total % 12).ok()? + 1;
    let first = NaiveDate::from_ymd_opt(year, month, 1)?;
    let date = first.checked_add_days(chrono::Days::new(u64::from(t.day() - 1)))?;
    Some(date.and_time(t.time()).and_utc())
}

/// 23:59:59 on the last day of `t`'s month, as CGRateS's
/// `GetEndOfMonth` (the next month's start less one second).
pub(crate) fn month_end(t: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let next = first_of_next_month(t.date_naive())?;
    Some(next.and_hms_opt(0, 0, 0)?.and_utc() - TimeDelta::seconds(1))
}
