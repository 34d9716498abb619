//! Loading a folder of CGRateS tariff plan CSVs.
//!
//! We load Destinations, Timings, Rates, DestinationRates, RatingPlans and
//! RatingProfiles (current layout, and the older one with a Direction
//! column first), and the account side: SharedGroups, Actions,
//! ActionPlans, ActionTriggers and AccountActions (`crate::actions`).
//! Other CSV files are listed in the [`LoadReport`], never silently
//! skipped. Any error refuses the whole plan.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use rust_decimal::Decimal;

use crate::Error;
use crate::actions::parse::ACCOUNT_FILES;
use crate::csv::{self, Record, Records};
use crate::duration::parse_duration;
use crate::exact::ExactAmount;
use crate::money::{MAX_ROUNDING_DECIMALS, Money, Rounding, RoundingMethod};
use crate::plan::{
    Activation, DestRuns, MaxCost, MaxCostStrategy, PlanNames, Profile, RateGroup, RateInterval,
    RateSlot, RatingPlan, SpanNames, TariffPlan,
};
use crate::prefix::FastMap;
use crate::timing::Timing;

/// The files we load, in dependency order: the rating files, then the
/// account side ([`crate::TariffPlan::account_data`]).
pub const HANDLED_FILES: [&str; 11] = [
    "Destinations.csv",
    "Timings.csv",
    "Rates.csv",
    "DestinationRates.csv",
    "RatingPlans.csv",
    "RatingProfiles.csv",
    ACCOUNT_FILES[0],
    ACCOUNT_FILES[1],
    ACCOUNT_FILES[2],
    ACCOUNT_FILES[3],
    ACCOUNT_FILES[4],
];

/// Settings for loading a plan.
#[derive(Debug, Clone, Copy)]
pub struct LoadOptions {
    /// The time of loading: `*asap` (in Timings and activation times) and
    /// the built-in `*daily`, `*weekly`, ... timings are anchored here, as
    /// CGRateS anchors them at the moment it loads. The rating core has no
    /// clock, so the caller passes it.
    pub loaded_at: DateTime<Utc>,
}

/// What a load found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoadReport {
    /// Files loaded.
    pub loaded_files: Vec<PathBuf>,
    /// CSV files in the folder that this version does not handle
    /// (Attributes, Chargers, ...): reported, not used.
    pub unhandled_files: Vec<PathBuf>,
    /// Rows accepted but not used, with the reason (e.g. `*in` direction).
    pub warnings: Vec<String>,
    /// Destinations loaded.
    pub destinations: usize,
    /// (prefix, destination) pairs loaded.
    pub prefixes: usize,
    /// Rating plans loaded.
    pub rating_plans: usize,
    /// Rating profiles loaded.
    pub rating_profiles: usize,
}

/// What the loader accepts beyond its defaults (all off by default).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LoadPolicy {
    /// Accept a negative Rate or ConnectFee (a credit). Off by default: a
    /// minus sign in a price is far more often a typo than a credit, and
    /// it would make calls pay the caller.
    pub allow_negative_rates: bool,
}

impl TariffPlan {
    /// Loads every handled file in `dir` with the default [`LoadPolicy`].
    ///
    /// # Errors
    /// As [`TariffPlan::load_dir_with`].
    pub fn load_dir(dir: &Path, options: &LoadOptions) -> Result<(TariffPlan, LoadReport), Error> {
        Self::load_dir_with(dir, options, &LoadPolicy::default())
    }

    /// Loads every handled file in `dir`.
    ///
    /// # Errors
    /// [`Error::Io`] if the folder cannot be read,
    /// [`Error::UnreadableFile`] if a `*.csv` in it is not a readable file
    /// (a folder, a dangling link, no permission), [`Error::EmptyPlan`] if
    /// no handled file is there, [`Error::NoRatingProfiles`] if the files
    /// define nothing to rate with, [`Error::Load`] naming file, line and
    /// column for any bad value or reference.
    pub fn load_dir_with(
        dir: &Path,
        options: &LoadOptions,
        policy: &LoadPolicy,
    ) -> Result<(TariffPlan, LoadReport), Error> {
        let io = |source| Error::Io {
            path: dir.to_owned(),
            source,
        };
        let mut paths = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(io)? {
            let path = entry.map_err(io)?.path();
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().to_ascii_lowercase());
            if name.is_some_and(|n| n.ends_with(".csv")) {
                paths.push(path);
            }
        }
        paths.sort();
        let mut texts = Vec::new();
        let mut unhandled = Vec::new();
        for path in paths {
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            let handled = HANDLED_FILES.contains(&name);
            // Every *.csv must be readable, handled or not: a dangling
            // link or a folder where a file was meant is a broken deploy.
            let bytes = read_plan_file(&path, handled)?;
            if handled {
                texts.push((path, bytes));
            } else {
                unhandled.push(path);
            }
        }
        if texts.is_empty() {
            return Err(Error::EmptyPlan {
                dir: dir.to_owned(),
            });
        }
        let files: Vec<(&Path, &[u8])> = texts
            .iter()
            .map(|(p, t)| (p.as_path(), t.as_slice()))
            .collect();
        let (plan, mut report) = TariffPlan::from_csv_with(&files, options, policy)?;
        report.unhandled_files = unhandled;
        Ok((plan, report))
    }

    /// Builds a plan from file contents with the default [`LoadPolicy`].
    ///
    /// # Errors
    /// As [`TariffPlan::from_csv_with`].
    pub fn from_csv<T: AsRef<[u8]>>(
        files: &[(&Path, T)],
        options: &LoadOptions,
    ) -> Result<(TariffPlan, LoadReport), Error> {
        Self::from_csv_with(files, options, &LoadPolicy::default())
    }

    /// Builds a plan from file contents: `(path, text)` pairs (text as
    /// `&str` or bytes) whose file names are among [`HANDLED_FILES`]
    /// (others are reported unhandled).
    ///
    /// # Errors
    /// [`Error::Load`] naming file, line and column (text that is not
    /// UTF-8 included); [`Error::NoRatingProfiles`] if no rating profile
    /// was loaded, so the plan could rate nothing.
    pub fn from_csv_with<T: AsRef<[u8]>>(
        files: &[(&Path, T)],
        options: &LoadOptions,
        policy: &LoadPolicy,
    ) -> Result<(TariffPlan, LoadReport), Error> {
        let mut report = LoadReport::default();
        let mut by_name: [Option<(&Path, Records)>; 11] = Default::default();
        for (path, text) in files {
            let path: &Path = path;
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            let Some(slot) = HANDLED_FILES.iter().position(|h| *h == name) else {
                report.unhandled_files.push(path.to_owned());
                continue;
            };
            let records = csv::parse(path, text.as_ref())?;
            report.loaded_files.push(path.to_owned());
            by_name[slot] = Some((path, records));
        }
        let mut b = Builder::new(options.loaded_at, *policy);
        let [dst, tim, rat, drs, rpl, rpf, sgs, acts, aps, atrs, accts] = by_name;
        if let Some((p, r)) = &dst {
            b.destinations(p, r)?;
        }
        if let Some((p, r)) = &tim {
            b.timings(p, r)?;
        }
        if let Some((p, r)) = &rat {
            b.rates(p, r)?;
        }
        if let Some((p, r)) = &drs {
            b.destination_rates(p, r)?;
        }
        if let Some((p, r)) = &rpl {
            b.rating_plans(p, r)?;
        }
        if let Some((p, r)) = &rpf {
            b.rating_profiles(p, r, &mut report)?;
        }
        let account = crate::actions::parse::load(
            &[sgs, acts, aps, atrs, accts],
            &b.timings,
            options.loaded_at,
        )?;
        let mut plan = b.plan;
        let mut names = b.names;
        let loaded = std::mem::take(&mut names.spans);
        for (p, rows) in plan.plans.iter_mut().zip(b.pending) {
            p.set_intervals(rows, &loaded, &mut names.spans);
        }
        crate::plan::share_runs(&mut plan.plans);
        plan.names = Arc::new(names);
        plan.account = account;
        plan.timings = b.timings;
        if plan.rating_profile_count() == 0 {
            // Name RatingProfiles.csv, where the rows are missing.
            let path = match (&rpf, files.first()) {
                (Some((p, _)), _) => p.to_path_buf(),
                (None, Some((p, _))) => p.with_file_name("RatingProfiles.csv"),
                (None, None) => PathBuf::from("RatingProfiles.csv"),
            };
            return Err(Error::NoRatingProfiles { path });
        }
        plan.trie.freeze();
        report.destinations = plan.destination_count();
        report.prefixes = plan.prefix_count();
        report.rating_plans = plan.rating_plan_count();
        report.rating_profiles = plan.rating_profile_count();
        Ok((plan, report))
    }
}

/// Reads a `*.csv` of a plan folder (or, when `read` is false, only checks
/// that it is a regular file that can be opened).
fn read_plan_file(path: &Path, read: bool) -> Result<Vec<u8>, Error> {
    use std::io::Read as _;
    let unreadable = |reason: String| Error::UnreadableFile {
        path: path.to_owned(),
        reason,
    };
    // metadata() follows links, so a dangling one fails here.
    let meta = std::fs::metadata(path).map_err(|e| {
        unreadable(if e.kind() == std::io::ErrorKind::NotFound {
            "a link to nothing".to_owned()
        } else {
            e.to_string()
        })
    })?;
    if !meta.is_file() {
        let what = if meta.is_dir() {
            "a folder, not a file"
        } else {
            "not a regular file"
        };
        return Err(unreadable(what.to_owned()));
    }
    let mut file = std::fs::File::open(path).map_err(|e| unreadable(e.to_string()))?;
    let mut bytes = Vec::new();
    if read {
        file.read_to_end(&mut bytes)
            .map_err(|e| unreadable(e.to_string()))?;
    }
    Ok(bytes)
}

/// Where a destination rate applies.
#[derive(Debug, Clone, Copy)]
enum DestRef {
    Any,
    Dest(u32),
}

#[derive(Debug, Clone)]
struct DrRow {
    dest: DestRef,
    rates: Arc<RateGroup>,
    inc_costs: Arc<[Option<(ExactAmount, Decimal)>]>,
    rounding: Rounding,
    max_cost: Option<MaxCost>,
}

/// A rate ID and its rows with their connect fees.
type RateRows = (Arc<str>, Vec<(RateSlot, Money)>);

struct Builder {
    loaded_at: DateTime<Utc>,
    policy: LoadPolicy,
    plan: TariffPlan,
    dest_index: FastMap<Box<str>, u32>,
    timings: FastMap<Box<str>, Arc<Timing>>,
    /// Each Rates ID with its slots' increment costs (one allocation per
    /// ID, shared by every rate interval using it).
    rates: FastMap<Box<str>, RatesEntry>,
    drs: FastMap<Box<str>, (Arc<str>, Vec<DrRow>)>,
    plan_index: FastMap<Box<str>, u32>,
    /// Per rating plan, its rate intervals in load order with their
    /// destinations (`None`: `*any`), grouped when loading ends.
    pending: Vec<Vec<(Option<u32>, u32, RateInterval)>>,
    /// The names timespans will carry.
    names: PlanNames,
}

type RatesEntry = (Arc<RateGroup>, Arc<[Option<(ExactAmount, Decimal)>]>);

/// An error at `path`, `line`, `column` (1-based).
pub(crate) fn load_err(
    path: &Path,
    line: usize,
    column: usize,
    expected: &str,
    found: &str,
) -> Error {
    Error::Load {
        file: path.to_owned(),
        line,
        column,
        expected: expected.to_owned(),
        found: found.to_owned(),
    }
}

/// Checks the number of fields, pointing at the first missing or extra one.
pub(crate) fn check_width(
    path: &Path,
    r: Record<'_>,
    min: usize,
    max: usize,
    layout: &str,
) -> Result<(), Error> {
    let n = r.len();
    if n < min {
        return Err(load_err(
            path,
            r.line,
            n + 1,
            &format!("{min} columns ({layout})"),
            "",
        ));
    }
    if n > max {
        return Err(load_err(
            path,
            r.line,
            max + 1,
            &format!("at most {max} columns ({layout})"),
            r.field(max),
        ));
    }
    Ok(())
}

/// A non-empty ID in column `col` (0-based).
pub(crate) fn id_field<'a>(
    path: &Path,
    r: Record<'a>,
    col: usize,
    what: &str,
) -> Result<&'a str, Error> {
    let v = r.field(col);
    if v.is_empty() {
        return Err(load_err(path, r.line, col + 1, what, v));
    }
    Ok(v)
}

fn duration_ns(path: &Path, r: Record<'_>, col: usize, what: &str) -> Result<u64, Error> {
    let v = r.field(col);
    parse_duration(v)
        .ok()
        .and_then(|d| u64::try_from(d.as_nanos()).ok())
        .ok_or_else(|| {
            load_err(
                path,
                r.line,
                col + 1,
                &format!("{what}: a duration like 60s, 1m30s or 0, or a number of units"),
                v,
            )
        })
}

fn money(
    path: &Path,
    r: Record<'_>,
    col: usize,
    what: &str,
    empty_is_zero: bool,
) -> Result<Money, Error> {
    let v = r.field(col);
    if v.is_empty() && empty_is_zero {
        return Ok(Money::ZERO);
    }
    Money::parse(v).ok_or_else(|| {
        load_err(
            path,
            r.line,
            col + 1,
            &format!("{what}: a decimal number like 0.2"),
            v,
        )
    })
}

/// Parses an ActivationTime: RFC 3339, `YYYY-MM-DD[ T]HH:MM:SS` (UTC),
/// `YYYY-MM-DD`, Unix seconds, or `*asap` (the load time).
pub(crate) fn parse_time(s: &str, loaded_at: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let s = s.trim();
    if s == "*asap" || s == "*now" {
        return Some(loaded_at);
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    for layout in ["%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, layout) {
            return Some(t.and_utc());
        }
    }
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return d.and_hms_opt(0, 0, 0).map(|t| t.and_utc());
    }
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        return s
            .parse::<i64>()
            .ok()
            .and_then(|n| DateTime::from_timestamp(n, 0));
    }
    None
}

impl Builder {
    fn new(loaded_at: DateTime<Utc>, policy: LoadPolicy) -> Self {
        Builder {
            loaded_at,
            policy,
            plan: TariffPlan::default(),
            dest_index: FastMap::default(),
            timings: FastMap::default(),
            rates: FastMap::default(),
            drs: FastMap::default(),
            plan_index: FastMap::default(),
            pending: Vec::new(),
            names: PlanNames::default(),
        }
    }

    /// Destinations.csv: `ID,Prefix`.
    fn destinations(&mut self, path: &Path, recs: &Records) -> Result<(), Error> {
        for r in recs.iter() {
            check_width(path, r, 2, 2, "ID,Prefix")?;
            let id = id_field(path, r, 0, "a destination ID")?;
            let prefix = id_field(path, r, 1, "a prefix")?;
            let idx = match self.dest_index.get(id) {
                Some(&i) => i,
                None => {
                    let i = u32::try_from(self.plan.dest_ids.len()).map_err(|_| {
                        load_err(path, r.line, 1, "fewer than 2^32 destinations", id)
                    })?;
                    self.plan.dest_ids.push(Arc::from(id));
                    self.dest_index.insert(id.into(), i);
                    i
                }
            };
            self.plan.trie.insert(prefix.as_bytes(), idx);
        }
        Ok(())
    }

    /// Timings.csv: `ID,Years,Months,MonthDays,WeekDays,Time`.
    fn timings(&mut self, path: &Path, recs: &Records) -> Result<(), Error> {
        for r in recs.iter() {
            check_width(path, r, 6, 6, "ID,Years,Months,MonthDays,WeekDays,Time")?;
            let id = id_field(path, r, 0, "a timing ID")?;
            let cols = [r.field(1), r.field(2), r.field(3), r.field(4), r.field(5)];
            let t = Timing::parse(id, cols, self.loaded_at)
                .map_err(|e| load_err(path, r.line, e.field + 2, e.expected, cols[e.field]))?;
            if self.timings.insert(id.into(), Arc::new(t)).is_some() {
                return Err(load_err(
                    path,
                    r.line,
                    1,
                    "a timing ID not defined earlier",
                    id,
                ));
            }
        }
        Ok(())
    }

    /// Rates.csv: `ID,ConnectFee,Rate,RateUnit,RateIncrement,GroupIntervalStart`.
    fn rates(&mut self, path: &Path, recs: &Records) -> Result<(), Error> {
        let mut groups: FastMap<Box<str>, RateRows> = FastMap::default();
        for r in recs.iter() {
            check_width(
                path,
                r,
                6,
                6,
                "ID,ConnectFee,Rate,RateUnit,RateIncrement,GroupIntervalStart",
            )?;
            let id = id_field(path, r, 0, "a rate ID")?;
            let connect_fee = money(path, r, 1, "ConnectFee", true)?;
            let rate = money(path, r, 2, "Rate", false)?;
            if !self.policy.allow_negative_rates {
                for (col, what, amount) in [(1, "ConnectFee", connect_fee), (2, "Rate", rate)] {
                    if amount < Money::ZERO {
                        return Err(load_err(
                            path,
                            r.line,
                            col + 1,
                            &format!(
                                "{what}: 0 or more (negative prices need the allow-negative-rates option)"
                            ),
                            r.field(col),
                        ));
                    }
                }
            }
            // CGRateS reads a 0 RateUnit or RateIncrement as one second.
            let unit = match duration_ns(path, r, 3, "RateUnit")? {
                0 => 1_000_000_000,
                u => u,
            };
            let increment = match duration_ns(path, r, 4, "RateIncrement")? {
                0 => 1_000_000_000,
                i => i,
            };
            let gis = duration_ns(path, r, 5, "GroupIntervalStart")?;
            let entry = groups
                .entry(id.into())
                .or_insert_with(|| (Arc::from(id), Vec::new()));
            if entry.1.iter().any(|(s, _)| s.gis == gis) {
                return Err(load_err(
                    path,
                    r.line,
                    6,
                    "a GroupIntervalStart not used by an earlier row of this rate",
                    r.field(5),
                ));
            }
            entry.1.push((
                RateSlot {
                    gis,
                    rate,
                    unit,
                    increment,
                },
                connect_fee,
            ));
        }
        for (key, (id, mut rows)) in groups {
            rows.sort_by_key(|(s, _)| s.gis);
            let connect_fee = rows.first().map_or(Money::ZERO, |(_, cf)| *cf);
            let slots = rows.into_iter().map(|(s, _)| s).collect();
            let group = RateGroup {
                id,
                connect_fee,
                connect_fee_exact: ExactAmount::from_decimal(connect_fee.amount()),
                slots,
            };
            let inc_costs = group.inc_costs();
            self.rates.insert(key, (Arc::new(group), inc_costs));
        }
        Ok(())
    }

    /// DestinationRates.csv: `ID,DestinationsID,RatesID,RoundingMethod,
    /// RoundingDecimals,MaxCost,MaxCostStrategy`.
    fn destination_rates(&mut self, path: &Path, recs: &Records) -> Result<(), Error> {
        const LAYOUT: &str =
            "ID,DestinationsID,RatesID,RoundingMethod,RoundingDecimals,MaxCost,MaxCostStrategy";
        for r in recs.iter() {
            check_width(path, r, 5, 7, LAYOUT)?;
            let id = id_field(path, r, 0, "a destination rate ID")?;
            let dest_id = id_field(path, r, 1, "a destination ID or *any")?;
            let dest = if dest_id == "*any" {
                DestRef::Any
            } else {
                DestRef::Dest(*self.dest_index.get(dest_id).ok_or_else(|| {
                    load_err(
                        path,
                        r.line,
                        2,
                        "*any or a destination ID defined in Destinations.csv",
                        dest_id,
                    )
                })?)
            };
            let rates_id = r.field(2);
            let (rates, inc_costs) = self.rates.get(rates_id).cloned().ok_or_else(|| {
                load_err(path, r.line, 3, "a rate ID defined in Rates.csv", rates_id)
            })?;
            let method: RoundingMethod = r.field(3).parse().map_err(|()| {
                load_err(
                    path,
                    r.line,
                    4,
                    "a RoundingMethod: *up, *down or *middle",
                    r.field(3),
                )
            })?;
            let decimals = r
                .field(4)
                .parse::<u32>()
                .ok()
                .filter(|d| *d <= MAX_ROUNDING_DECIMALS)
                .ok_or_else(|| {
                    load_err(
                        path,
                        r.line,
                        5,
                        "RoundingDecimals: a whole number from 0 to 18",
                        r.field(4),
                    )
                })?;
            let max_amount = money(path, r, 5, "MaxCost", true)?;
            let strategy = match r.field(6) {
                "" => None,
                "*free" => Some(MaxCostStrategy::Free),
                "*disconnect" => Some(MaxCostStrategy::Disconnect),
                other => {
                    return Err(load_err(
                        path,
                        r.line,
                        7,
                        "a MaxCostStrategy: *free, *disconnect or empty",
                        other,
                    ));
                }
            };
            // As in CGRateS, MaxCost needs both a positive amount and a strategy.
            let max_cost = strategy
                .filter(|_| max_amount > Money::ZERO)
                .map(|strategy| MaxCost {
                    amount: max_amount,
                    strategy,
                });
            let row = DrRow {
                dest,
                inc_costs,
                rates,
                rounding: Rounding::new(method, decimals),
                max_cost,
            };
            self.drs
                .entry(id.into())
                .or_insert_with(|| (Arc::from(id), Vec::new()))
                .1
                .push(row);
        }
        Ok(())
    }
}

mod plans;

#[cfg(test)]
mod tests;
