//! Timings: when a rate applies.
//!
//! A timing matches a moment by year, month, day of month, day of week and
//! time of day (from its start time, up to an optional end time). Timings
//! are evaluated in UTC: the rating core has no clock and no time zone, so
//! a tariff's 08:00:00 is 08:00 UTC (CGRateS uses the server's local zone).

use std::sync::Arc;

use chrono::{DateTime, Datelike, NaiveDate, Timelike, Utc};

const NS_PER_SEC: u64 = 1_000_000_000;
/// Nanoseconds in a (UTC) day.
pub(crate) const NS_PER_DAY: u64 = 86_400 * NS_PER_SEC;

/// When a rate applies: a Timings.csv row or a built-in timing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timing {
    id: Arc<str>,
    /// Empty: any year.
    years: Box<[i32]>,
    /// Bit m for month m (1..=12); 0: any month.
    months: u16,
    /// Bit d for day d (1..=31); 0 and no `last_day`: any day.
    month_days: u32,
    /// Matches the last day of each month (`-1`, as `*month_end` uses).
    last_day: bool,
    /// Bit 0 Monday .. bit 6 Sunday; 0: any day of week.
    week_days: u8,
    /// Start time of day, nanoseconds after midnight.
    start_ns: u64,
    /// End time of day (exclusive), if any.
    end_ns: Option<u64>,
    /// The Time column said `*asap`: as an ActionPlan timing, CGRateS runs
    /// such a timing once, at load.
    asap: bool,
}

/// The calendar facts of a moment that timings look at.
#[derive(Debug, Clone, Copy)]
pub(crate) struct DateParts {
    year: i32,
    month: u32,
    day: u32,
    days_in_month: u32,
    weekday_bit: u8,
    /// Nanoseconds after midnight.
    pub tod_ns: u64,
}

impl DateParts {
    pub fn new(t: DateTime<Utc>) -> Self {
        let date = t.date_naive();
        let tod_ns = u64::from(t.num_seconds_from_midnight()) * NS_PER_SEC
            + u64::from(t.nanosecond().min(999_999_999));
        DateParts {
            year: date.year(),
            month: date.month(),
            day: date.day(),
            days_in_month: days_in_month(date),
            weekday_bit: 1 << date.weekday().num_days_from_monday(),
            tod_ns,
        }
    }

    /// (year, month, day): which calendar day this is.
    pub fn day_key(&self) -> (i32, u32, u32) {
        (self.year, self.month, self.day)
    }

    /// The same day at another time of day.
    pub fn at_tod(self, tod_ns: u64) -> Self {
        DateParts { tod_ns, ..self }
    }
}

/// The number of days in `date`'s month (proleptic Gregorian, as chrono).
fn days_in_month(date: NaiveDate) -> u32 {
    match date.month() {
        2 if date.leap_year() => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// The first day of the month after `day`'s.
pub(crate) fn first_of_next_month(day: NaiveDate) -> Option<NaiveDate> {
    if day.month() == 12 {
        NaiveDate::from_ymd_opt(day.year().checked_add(1)?, 1, 1)
    } else {
        NaiveDate::from_ymd_opt(day.year(), day.month() + 1, 1)
    }
}

/// Which column of a Timings row was wrong, and what it should hold.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct TimingFieldError {
    /// 0-based index among Years, Months, MonthDays, WeekDays, Time.
    pub field: usize,
    pub expected: &'static str,
}

impl Timing {
    /// Builds a timing from the five value columns of a Timings.csv row.
    /// `loaded_at` replaces `*asap` in the Time column, as CGRateS replaces
    /// it with the time of loading.
    pub(crate) fn parse(
        id: &str,
        [years, months, month_days, week_days, time]: [&str; 5],
        loaded_at: DateTime<Utc>,
    ) -> Result<Timing, TimingFieldError> {
        let fe = |field, expected| TimingFieldError { field, expected };
        let years = parse_list(years, i32::MIN, i32::MAX)
            .ok_or(fe(0, "*any or years separated by ; (2024;2025)"))?;
        let months =
            parse_list(months, 1, 12).ok_or(fe(1, "*any or months 1..12 separated by ;"))?;
        let days = parse_list(month_days, -1, 31)
            .filter(|d| !d.contains(&0))
            .ok_or(fe(
                2,
                "*any or month days 1..31 (or -1 for the last day) separated by ;",
            ))?;
        let wdays = parse_list(week_days, 0, 7).ok_or(fe(
            3,
            "*any or week days 1 (Monday)..7 (Sunday) separated by ;",
        ))?;
        let (start_ns, end_ns) = parse_time(time, loaded_at).ok_or(fe(
            4,
            "a start time HH:MM:SS (optionally ;HH:MM:SS end), or *asap",
        ))?;
        Ok(Timing {
            id: Arc::from(id),
            years: years.into_iter().collect(),
            months: months.iter().fold(0, |m, &x| m | (1 << x)),
            month_days: days
                .iter()
                .filter(|&&d| d > 0)
                .fold(0, |m, &d| m | (1 << d)),
            last_day: days.contains(&-1),
            // 0 and 7 both mean Sunday.
            week_days: wdays.iter().fold(0, |m, &d| m | (1 << ((d + 6) % 7))),
            start_ns,
            end_ns,
            asap: matches!(time.trim(), "*asap" | "*now"),
        })
    }

    /// The built-in timings CGRateS defines: `*any` (always), `*asap` (from
    /// the time of loading), `*daily`, `*weekly`, `*monthly`, `*month_end`,
    /// `*yearly` (each anchored at the time of loading).
    pub(crate) fn builtin(id: &str, loaded_at: DateTime<Utc>) -> Option<Timing> {
        let parts = DateParts::new(loaded_at);
        let now_tod = (parts.tod_ns / NS_PER_SEC) * NS_PER_SEC;
        let mut t = Timing {
            id: Arc::from(id),
            years: Box::new([]),
            months: 0,
            month_days: 0,
            last_day: false,
            week_days: 0,
            start_ns: 0,
            end_ns: None,
            asap: id == "*asap",
        };
        match id {
            "*any" => {}
            "*asap" | "*daily" => t.start_ns = now_tod,
            "*weekly" => {
                t.start_ns = now_tod;
                t.week_days = parts.weekday_bit;
            }
            "*monthly" => {
                t.start_ns = now_tod;
                t.month_days = 1 << parts.day;
            }
            "*month_end" => {
                t.start_ns = now_tod;
                t.last_day = true;
            }
            "*yearly" => {
                t.start_ns = now_tod;
                t.months = 1 << parts.month;
                t.month_days = 1 << parts.day;
            }
            _ => return None,
        }
        Some(t)
    }

    /// The timing's ID.
    #[must_use]
    pub fn id(&self) -> &str {
        &self.id
    }

    pub(crate) fn id_arc(&self) -> &Arc<str> {
        &self.id
    }

    /// Whether its Time was `*asap` (a run-once ActionPlan timing).
    pub(crate) fn is_asap(&self) -> bool {
        self.asap
    }

    /// The first moment at or after `from` at which this timing starts:
    /// its start time of day on a matching date. `None` when no date
    /// matches: past the last listed year, or (without years) within 400
    /// years, a whole cycle of the Gregorian calendar (a 30 February).
    pub(crate) fn next_start_at_or_after(&self, from: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let last_year = match self.years.iter().max() {
            Some(&y) => y,
            None => from.year().checked_add(400)?,
        };
        let mut day = from.date_naive();
        while day.year() <= last_year {
            let (y, m) = (day.year(), day.month());
            // Whole years and months that cannot match are skipped at once.
            if !self.years.is_empty() && !self.years.contains(&y) {
                day = NaiveDate::from_ymd_opt(y.checked_add(1)?, 1, 1)?;
                continue;
            }
            if self.months != 0 && self.months & (1 << m) == 0 {
                day = first_of_next_month(day)?;
                continue;
            }
            let at = day.and_hms_opt(0, 0, 0)?.and_utc()
                + chrono::TimeDelta::nanoseconds(i64::try_from(self.start_ns).ok()?);
            if self.date_matches(&DateParts::new(at)) && at >= from {
                return Some(at);
            }
            day = day.succ_opt()?;
        }
        None
    }

    /// Whether the date matches (years, months, month days, week days).
    pub(crate) fn date_matches(&self, p: &DateParts) -> bool {
        (self.years.is_empty() || self.years.contains(&p.year))
            && (self.months == 0 || self.months & (1 << p.month) != 0)
            && ((self.month_days == 0 && !self.last_day)
                || self.month_days & (1 << p.day) != 0
                || (self.last_day && p.day == p.days_in_month))
            && (self.week_days == 0 || self.week_days & p.weekday_bit != 0)
    }

    /// Whether the timing covers this moment.
    pub(crate) fn is_active(&self, p: &DateParts) -> bool {
        self.date_matches(p) && self.covers_tod(p)
    }

    /// Whether the timing covers this moment's time of day (its date
    /// aside).
    pub(crate) fn covers_tod(&self, p: &DateParts) -> bool {
        p.tod_ns >= self.start_ns && self.end_ns.is_none_or(|e| p.tod_ns < e)
    }

    /// How long ago, this day, the timing started (valid when active).
    /// CGRateS prefers, among equal weights, the timing that started last.
    pub(crate) fn since_start(&self, p: &DateParts) -> u64 {
        p.tod_ns.saturating_sub(self.start_ns)
    }

    /// The times of day after `tod_ns` where this timing switches on or off.
    pub(crate) fn next_edge_after(&self, tod_ns: u64) -> Option<u64> {
        let start = (self.start_ns > tod_ns).then_some(self.start_ns);
        let end = self.end_ns.filter(|&e| e > tod_ns && e < NS_PER_DAY);
        match (start, end) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

/// `*any` (or empty) is `Some(empty)`; otherwise numbers within range
/// separated by `;`.
fn parse_list(s: &str, min: i32, max: i32) -> Option<Vec<i32>> {
    let s = s.trim();
    if s.is_empty() || s == "*any" {
        return Some(Vec::new());
    }
    s.split(';')
        .map(|x| {
            x.trim()
                .parse::<i32>()
                .ok()
                .filter(|v| (min..=max).contains(v))
        })
        .collect()
}

fn parse_time(s: &str, loaded_at: DateTime<Utc>) -> Option<(u64, Option<u64>)> {
    let s = s.trim();
    if s == "*asap" || s == "*now" {
        let tod = u64::from(loaded_at.num_seconds_from_midnight()) * NS_PER_SEC;
        return Some((tod, None));
    }
    if s.is_empty() || s == "*any" {
        return Some((0, None));
    }
    let (start, end) = match s.split_once(';') {
        Some((a, b)) => (a, Some(b)),
        None => (s, None),
    };
    let start = parse_hms(start, false)?;
    let end = match end.map(str::trim) {
        None | Some("") => None,
        Some(e) => Some(parse_hms(e, true)?),
    };
    if end.is_some_and(|e| e <= start) {
        return None;
    }
    Some((start, end))
}

fn parse_hms(s: &str, allow_24: bool) -> Option<u64> {
    let mut it = s.trim().split(':');
    let h: u64 = it.next()?.parse().ok()?;
    let m: u64 = it.next()?.parse().ok()?;
    let sec: u64 = it.next().map_or(Some(0), |x| x.parse().ok())?;
    // Hours past 24 are refused before multiplying: a huge hour such as
    // 9999999 would otherwise overflow (and wrap to a valid-looking time).
    if it.next().is_some() || h > 24 || m > 59 || sec > 59 {
        return None;
    }
    let ns = ((h * 60 + m) * 60 + sec) * NS_PER_SEC;
    let limit = if allow_24 { NS_PER_DAY } else { NS_PER_DAY - 1 };
    (ns <= limit).then_some(ns)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_in_month_is_chronos() {
        // Against chrono's own calendar: every month of 1600..2401.
        for y in 1600..2401 {
            for m in 1..=12 {
                let first = NaiveDate::from_ymd_opt(y, m, 1).unwrap();
                let next = if m == 12 {
                    NaiveDate::from_ymd_opt(y + 1, 1, 1)
                } else {
                    NaiveDate::from_ymd_opt(y, m + 1, 1)
                }
                .unwrap();
                let want = u32::try_from((next - first).num_days()).unwrap();
                assert_eq!(days_in_month(first), want, "{y}-{m}");
            }
        }
    }
    use chrono::TimeZone;

    fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> DateParts {
        DateParts::new(Utc.with_ymd_and_hms(y, mo, d, h, mi, s).unwrap())
    }

    fn load() -> DateTime<Utc> {
        // A Wednesday, 2024-05-15 10:20:30 UTC.
        Utc.with_ymd_and_hms(2024, 5, 15, 10, 20, 30).unwrap()
    }

    fn timing(cols: [&str; 5]) -> Timing {
        Timing::parse("T", cols, load()).unwrap()
    }

    #[test]
    fn peak_weekdays_from_eight() {
        // tutorial2 PEAK: *any,*any,*any,1;2;3;4;5,08:00:00
        let peak = timing(["*any", "*any", "*any", "1;2;3;4;5", "08:00:00"]);
        // 2024-05-13 is a Monday.
        assert!(peak.is_active(&at(2024, 5, 13, 8, 0, 0)));
        assert!(peak.is_active(&at(2024, 5, 13, 23, 59, 59)));
        assert!(!peak.is_active(&at(2024, 5, 13, 7, 59, 59)));
        // Saturday 2024-05-18.
        assert!(!peak.is_active(&at(2024, 5, 18, 10, 0, 0)));
        // 10:00 on Monday: started 2 hours ago.
        assert_eq!(
            peak.since_start(&at(2024, 5, 13, 10, 0, 0)),
            2 * 3600 * NS_PER_SEC
        );
        assert_eq!(peak.next_edge_after(0), Some(8 * 3600 * NS_PER_SEC));
        assert_eq!(peak.next_edge_after(8 * 3600 * NS_PER_SEC), None);
    }

    #[test]
    fn weekend_days_six_and_seven_and_zero_is_sunday() {
        let we = timing(["*any", "*any", "*any", "6;7", "00:00:00"]);
        assert!(we.is_active(&at(2024, 5, 18, 0, 0, 0))); // Saturday
        assert!(we.is_active(&at(2024, 5, 19, 12, 0, 0))); // Sunday
        assert!(!we.is_active(&at(2024, 5, 17, 12, 0, 0))); // Friday
        let sun0 = timing(["*any", "*any", "*any", "0", "00:00:00"]);
        assert!(sun0.is_active(&at(2024, 5, 19, 12, 0, 0)));
    }

    #[test]
    fn years_months_month_days_and_end_time() {
        // NEW_YEAR: *any,1,1,*any,00:00:00
        let ny = timing(["*any", "1", "1", "*any", "00:00:00"]);
        assert!(ny.is_active(&at(2025, 1, 1, 13, 0, 0)));
        assert!(!ny.is_active(&at(2025, 1, 2, 13, 0, 0)));
        assert!(!ny.is_active(&at(2025, 2, 1, 13, 0, 0)));
        let y = timing(["2024;2026", "*any", "*any", "*any", "09:00:00;17:00:00"]);
        assert!(y.is_active(&at(2024, 3, 3, 9, 0, 0)));
        assert!(!y.is_active(&at(2025, 3, 3, 9, 0, 0)));
        assert!(!y.is_active(&at(2026, 3, 3, 17, 0, 0)), "end is exclusive");
        assert_eq!(
            y.next_edge_after(10 * 3600 * NS_PER_SEC),
            Some(17 * 3600 * NS_PER_SEC)
        );
        let last = timing(["*any", "*any", "-1", "*any", "00:00:00"]);
        assert!(last.is_active(&at(2024, 2, 29, 1, 0, 0)));
        assert!(!last.is_active(&at(2024, 2, 28, 1, 0, 0)));
    }

    #[test]
    fn bad_columns_name_the_field() {
        let e = Timing::parse("T", ["*any", "13", "*any", "*any", "00:00:00"], load()).unwrap_err();
        assert_eq!(e.field, 1);
        let e = Timing::parse("T", ["*any", "*any", "0", "*any", "00:00:00"], load()).unwrap_err();
        assert_eq!(e.field, 2);
        let e = Timing::parse("T", ["*any", "*any", "*any", "8", "00:00:00"], load()).unwrap_err();
        assert_eq!(e.field, 3);
        for bad in [
            "8am",
            "25:00:00",
            "08:60:00",
            "10:00:00;09:00:00",
            "24:00:01",
            "00:00:00;24:00:01",
        ] {
            let e = Timing::parse("T", ["*any", "*any", "*any", "*any", bad], load()).unwrap_err();
            assert_eq!(e.field, 4, "{bad}");
        }
    }

    #[test]
    fn builtins_anchor_at_load_time() {
        let any = Timing::builtin("*any", load()).unwrap();
        assert!(any.is_active(&at(1999, 1, 1, 0, 0, 0)));
        let asap = Timing::builtin("*asap", load()).unwrap();
        assert!(!asap.is_active(&at(2024, 5, 20, 10, 20, 29)));
        assert!(asap.is_active(&at(2024, 5, 20, 10, 20, 30)));
        let weekly = Timing::builtin("*weekly", load()).unwrap();
        assert!(weekly.is_active(&at(2024, 5, 22, 11, 0, 0))); // a Wednesday
        assert!(!weekly.is_active(&at(2024, 5, 23, 11, 0, 0)));
        let month_end = Timing::builtin("*month_end", load()).unwrap();
        assert!(month_end.is_active(&at(2024, 4, 30, 11, 0, 0)));
        assert!(Timing::builtin("*hourly", load()).is_none());
        let asap_col = timing(["*any", "*any", "*any", "*any", "*asap"]);
        assert_eq!(asap_col.start_ns, (10 * 3600 + 20 * 60 + 30) * NS_PER_SEC);
    }
}
