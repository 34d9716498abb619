//! Stored CDRs: the [`CdrStore`] trait the session side writes through and
//! the CDR APIs read through, and [`CdrFilter`], CGRateS v0.10's
//! `RPCCDRsFilter` (the argument of `CDRsV1.GetCDRs`).
//!
//! The trait is async without naming a runtime: each method returns a
//! boxed future ([`BoxFuture`]). The implementations (SQLite and
//! PostgreSQL through sqlx) live in the `storage` crate.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::str::FromStr;
use std::time::Duration;

use capture::Timestamp;
use chrono::{DateTime, NaiveDateTime};
use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;

use crate::Error;
use crate::cdr::Cdr;

/// A boxed, sendable future: what [`CdrStore`]'s methods return.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Where CDRs are kept. One row per (CGRID, RunID): storing the same call
/// twice (two proxies' HEP copies, a repeated ProcessCDR) keeps the first.
pub trait CdrStore: Send + Sync {
    /// Stores `cdrs` in one transaction: all of them or none. Element `i`
    /// of the answer is `true` when `cdrs[i]` is a new row, `false` when
    /// its (CGRID, RunID) was already stored (or came earlier in `cdrs`):
    /// that row is left as it is.
    fn insert<'a>(&'a self, cdrs: &'a [Cdr]) -> BoxFuture<'a, Result<Vec<bool>, Error>>;

    /// The stored CDRs matching `filter`, in the order they were stored,
    /// after `filter.offset`, at most `filter.limit`.
    fn get<'a>(&'a self, filter: &'a CdrFilter) -> BoxFuture<'a, Result<Vec<Cdr>, Error>>;

    /// How many stored CDRs match `filter` (its limit and offset are not
    /// applied).
    fn count<'a>(&'a self, filter: &'a CdrFilter) -> BoxFuture<'a, Result<u64, Error>>;

    /// Sets the cost of the CDR (CGRID, RunID), for re-rating: `Cost`,
    /// `CostSource`, and `update.extra_fields` merged into its
    /// `ExtraFields` (a key given replaces the stored one). `Ok(false)`
    /// when no such CDR is stored.
    fn update_cost<'a>(
        &'a self,
        cgrid: &'a str,
        run_id: &'a str,
        update: &'a CostUpdate,
    ) -> BoxFuture<'a, Result<bool, Error>>;

    /// Stores `cdr` in place of the stored CDR with its (CGRID, RunID),
    /// every field replaced (`CDRsV1.ProcessEvent` with `*rerate`, as
    /// CGRateS's `SetCDR` with `allowUpdate`); stores it as a new row when
    /// there is none. The row keeps its place in the storage order.
    fn replace<'a>(&'a self, cdr: &'a Cdr) -> BoxFuture<'a, Result<(), Error>>;
}

/// What [`CdrStore::update_cost`] writes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CostUpdate {
    /// The new `Cost` (`None`: not rated).
    pub cost: Option<Decimal>,
    /// The new `CostSource` (`*cdrs` after a re-rate, as CGRateS writes).
    pub cost_source: String,
    /// `ExtraFields` keys to set (the others are kept).
    pub extra_fields: BTreeMap<String, String>,
}

/// Which stored CDRs a query wants: CGRateS v0.10's `RPCCDRsFilter`.
///
/// Every list selects CDRs whose field is one of its values (empty: no
/// condition); every `not_` list leaves out CDRs whose field is one of
/// its values. Intervals include their start and exclude their end, as
/// CGRateS's do. A CDR that was not answered has no answer time and
/// matches no answer-time bound; one that was not rated has no cost and
/// matches no cost bound.
///
/// Deserialises from CGRateS's JSON argument: field names as CGRateS
/// writes them (`CGRIDs`, `SetupTimeStart`, `MinUsage`...), times as
/// RFC 3339, `2006-01-02 15:04:05` (UTC) or unix seconds, usages as
/// integer nanoseconds, a Go duration (`1m30s`) or a digit string, costs
/// as exact JSON numbers or decimal strings, either at the top level
/// (`MinCost`) or in `ExtraArgs` as CGRateS v0.10 sends them; `Limit` and
/// `Offset` at the top level (Go's embedded `Paginator`). Unknown fields
/// (`Tenant`, `APIOpts`, `ArgDispatcher`...) are ignored, as Go does.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(try_from = "RawFilter")]
pub struct CdrFilter {
    /// `CGRIDs`.
    pub cgrids: Vec<String>,
    /// `NotCGRIDs`.
    pub not_cgrids: Vec<String>,
    /// `RunIDs`.
    pub run_ids: Vec<String>,
    /// `NotRunIDs`.
    pub not_run_ids: Vec<String>,
    /// `OriginIDs`.
    pub origin_ids: Vec<String>,
    /// `NotOriginIDs`.
    pub not_origin_ids: Vec<String>,
    /// `OriginHosts`.
    pub origin_hosts: Vec<String>,
    /// `NotOriginHosts`.
    pub not_origin_hosts: Vec<String>,
    /// `Sources`.
    pub sources: Vec<String>,
    /// `NotSources`.
    pub not_sources: Vec<String>,
    /// `ToRs`.
    pub tors: Vec<String>,
    /// `NotToRs`.
    pub not_tors: Vec<String>,
    /// `RequestTypes`.
    pub request_types: Vec<String>,
    /// `NotRequestTypes`.
    pub not_request_types: Vec<String>,
    /// `Tenants`.
    pub tenants: Vec<String>,
    /// `NotTenants`.
    pub not_tenants: Vec<String>,
    /// `Categories`.
    pub categories: Vec<String>,
    /// `NotCategories`.
    pub not_categories: Vec<String>,
    /// `Accounts`.
    pub accounts: Vec<String>,
    /// `NotAccounts`.
    pub not_accounts: Vec<String>,
    /// `Subjects`.
    pub subjects: Vec<String>,
    /// `NotSubjects`.
    pub not_subjects: Vec<String>,
    /// `DestinationPrefixes`: the destination starts with one of them.
    pub destination_prefixes: Vec<String>,
    /// `NotDestinationPrefixes`: the destination starts with none of them.
    pub not_destination_prefixes: Vec<String>,
    /// `SetupTimeStart`: setup time at or after.
    pub setup_time_start: Option<Timestamp>,
    /// `SetupTimeEnd`: setup time before.
    pub setup_time_end: Option<Timestamp>,
    /// `AnswerTimeStart`: answer time at or after.
    pub answer_time_start: Option<Timestamp>,
    /// `AnswerTimeEnd`: answer time before.
    pub answer_time_end: Option<Timestamp>,
    /// `MinUsage`: usage at least.
    pub min_usage: Option<Duration>,
    /// `MaxUsage`: usage under.
    pub max_usage: Option<Duration>,
    /// `MinCost`: cost at least (compared exactly).
    pub min_cost: Option<Decimal>,
    /// `MaxCost`: cost under (compared exactly).
    pub max_cost: Option<Decimal>,
    /// `Limit`: at most this many CDRs.
    pub limit: Option<u64>,
    /// `Offset`: skip this many first.
    pub offset: Option<u64>,
}

impl CdrFilter {
    /// The string-list conditions: (the CDR field, the values, whether
    /// they are excluded: a `Not...` list). An empty list is no condition.
    /// Destination prefixes are not among them.
    pub fn lists(&self) -> [(ListField, &[String], bool); 22] {
        use ListField as F;
        [
            (F::Cgrid, &self.cgrids, false),
            (F::Cgrid, &self.not_cgrids, true),
            (F::RunId, &self.run_ids, false),
            (F::RunId, &self.not_run_ids, true),
            (F::OriginId, &self.origin_ids, false),
            (F::OriginId, &self.not_origin_ids, true),
            (F::OriginHost, &self.origin_hosts, false),
            (F::OriginHost, &self.not_origin_hosts, true),
            (F::Source, &self.sources, false),
            (F::Source, &self.not_sources, true),
            (F::Tor, &self.tors, false),
            (F::Tor, &self.not_tors, true),
            (F::RequestType, &self.request_types, false),
            (F::RequestType, &self.not_request_types, true),
            (F::Tenant, &self.tenants, false),
            (F::Tenant, &self.not_tenants, true),
            (F::Category, &self.categories, false),
            (F::Category, &self.not_categories, true),
            (F::Account, &self.accounts, false),
            (F::Account, &self.not_accounts, true),
            (F::Subject, &self.subjects, false),
            (F::Subject, &self.not_subjects, true),
        ]
    }

    /// Whether `cdr` matches every condition (limit and offset aside): the
    /// meaning every [`CdrStore`] implements in its query language.
    pub fn matches(&self, cdr: &Cdr) -> bool {
        let lists_ok = self.lists().iter().all(|(f, vals, not)| {
            vals.is_empty() || vals.iter().any(|v| v == f.value(cdr)) != *not
        });
        let dest = &cdr.destination;
        let prefix_ok = (self.destination_prefixes.is_empty()
            || self
                .destination_prefixes
                .iter()
                .any(|p| dest.starts_with(p.as_str())))
            && !self
                .not_destination_prefixes
                .iter()
                .any(|p| dest.starts_with(p.as_str()));
        let within = |v: Option<Timestamp>, lo: Option<Timestamp>, hi: Option<Timestamp>| {
            (lo.is_none() && hi.is_none())
                || v.is_some_and(|v| lo.is_none_or(|lo| v >= lo) && hi.is_none_or(|hi| v < hi))
        };
        let usage_ok = self.min_usage.is_none_or(|m| cdr.usage >= m)
            && self.max_usage.is_none_or(|m| cdr.usage < m);
        let cost_ok = (self.min_cost.is_none() && self.max_cost.is_none())
            || cdr.cost.is_some_and(|c| {
                self.min_cost.is_none_or(|m| c >= m) && self.max_cost.is_none_or(|m| c < m)
            });
        lists_ok
            && prefix_ok
            && within(
                Some(cdr.setup_time),
                self.setup_time_start,
                self.setup_time_end,
            )
            && within(
                cdr.answer_time,
                self.answer_time_start,
                self.answer_time_end,
            )
            && usage_ok
            && cost_ok
    }
}

/// A string field of a CDR that [`CdrFilter`] lists select on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ListField {
    /// `CGRID`.
    Cgrid,
    /// `RunID`.
    RunId,
    /// `OriginID`.
    OriginId,
    /// `OriginHost`.
    OriginHost,
    /// `Source`.
    Source,
    /// `ToR`.
    Tor,
    /// `RequestType`.
    RequestType,
    /// `Tenant`.
    Tenant,
    /// `Category`.
    Category,
    /// `Account`.
    Account,
    /// `Subject`.
    Subject,
}

impl ListField {
    /// The field's value in `cdr`.
    pub fn value(self, cdr: &Cdr) -> &str {
        match self {
            ListField::Cgrid => &cdr.cgrid,
            ListField::RunId => &cdr.run_id,
            ListField::OriginId => &cdr.origin_id,
            ListField::OriginHost => &cdr.origin_host,
            ListField::Source => &cdr.source,
            ListField::Tor => &cdr.tor,
            ListField::RequestType => &cdr.request_type,
            ListField::Tenant => &cdr.tenant,
            ListField::Category => &cdr.category,
            ListField::Account => &cdr.account,
            ListField::Subject => &cdr.subject,
        }
    }
}

/// The JSON shape of [`CdrFilter`], before its values are checked.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RawFilter {
    #[serde(rename = "CGRIDs", default)]
    cgrids: Option<Vec<String>>,
    #[serde(rename = "NotCGRIDs", default)]
    not_cgrids: Option<Vec<String>>,
    #[serde(rename = "RunIDs", default)]
    run_ids: Option<Vec<String>>,
    #[serde(rename = "NotRunIDs", default)]
    not_run_ids: Option<Vec<String>>,
    #[serde(rename = "OriginIDs", default)]
    origin_ids: Option<Vec<String>>,
    #[serde(rename = "NotOriginIDs", default)]
    not_origin_ids: Option<Vec<String>>,
    #[serde(default)]
    origin_hosts: Option<Vec<String>>,
    #[serde(default)]
    not_origin_hosts: Option<Vec<String>>,
    #[serde(default)]
    sources: Option<Vec<String>>,
    #[serde(default)]
    not_sources: Option<Vec<String>>,
    #[serde(rename = "ToRs", default)]
    tors: Option<Vec<String>>,
    #[serde(rename = "NotToRs", default)]
    not_tors: Option<Vec<String>>,
    #[serde(default)]
    request_types: Option<Vec<String>>,
    #[serde(default)]
    not_request_types: Option<Vec<String>>,
    #[serde(default)]
    tenants: Option<Vec<String>>,
    #[serde(default)]
    not_tenants: Option<Vec<String>>,
    #[serde(default)]
    categories: Option<Vec<String>>,
    #[serde(default)]
    not_categories: Option<Vec<String>>,
    #[serde(default)]
    accounts: Option<Vec<String>>,
    #[serde(default)]
    not_accounts: Option<Vec<String>>,
    #[serde(default)]
    subjects: Option<Vec<String>>,
    #[serde(default)]
    not_subjects: Option<Vec<String>>,
    #[serde(default)]
    destination_prefixes: Option<Vec<String>>,
    #[serde(default)]
    not_destination_prefixes: Option<Vec<String>>,
    #[serde(default)]
    setup_time_start: Option<Value>,
    #[serde(default)]
    setup_time_end: Option<Value>,
    #[serde(default)]
    answer_time_start: Option<Value>,
    #[serde(default)]
    answer_time_end: Option<Value>,
    #[serde(default)]
    min_usage: Option<Value>,
    #[serde(default)]
    max_usage: Option<Value>,
    #[serde(default)]
    min_cost: Option<Box<RawValue>>,
    #[serde(default)]
    max_cost: Option<Box<RawValue>>,
    #[serde(default)]
    extra_args: Option<BTreeMap<String, Box<RawValue>>>,
    #[serde(default)]
    limit: Option<i64>,
    #[serde(default)]
    offset: Option<i64>,
}

impl TryFrom<RawFilter> for CdrFilter {
    type Error = Error;

    fn try_from(r: RawFilter) -> Result<Self, Error> {
        let time = |field: &'static str, v: Option<Value>| -> Result<Option<Timestamp>, Error> {
            v.map_or(Ok(None), |v| {
                parse_filter_time(&v).map_err(|reason| Error::CdrFilter { field, reason })
            })
        };
        let usage = |field: &'static str, v: Option<Value>| -> Result<Option<Duration>, Error> {
            v.map_or(Ok(None), |v| {
                parse_filter_usage(&v).map_err(|reason| Error::CdrFilter { field, reason })
            })
        };
        let mut extra = r.extra_args.unwrap_or_default();
        let cost =
            |field: &'static str, top: Option<Box<RawValue>>, extra: Option<Box<RawValue>>| {
                match top.or(extra) {
                    None => Ok(None),
                    Some(raw) => parse_exact_number(raw.get())
                        .map_err(|reason| Error::CdrFilter { field, reason }),
                }
            };
        let count = |field: &'static str, v: Option<i64>| -> Result<Option<u64>, Error> {
            v.map(|n| {
                u64::try_from(n).map_err(|_| Error::CdrFilter {
                    field,
                    reason: format!("{n} is negative"),
                })
            })
            .transpose()
        };
        Ok(CdrFilter {
            cgrids: r.cgrids.unwrap_or_default(),
            not_cgrids: r.not_cgrids.unwrap_or_default(),
            run_ids: r.run_ids.unwrap_or_default(),
            not_run_ids: r.not_run_ids.unwrap_or_default(),
            origin_ids: r.origin_ids.unwrap_or_default(),
            not_origin_ids: r.not_origin_ids.unwrap_or_default(),
            origin_hosts: r.origin_hosts.unwrap_or_default(),
            not_origin_hosts: r.not_origin_hosts.unwrap_or_default(),
            sources: r.sources.unwrap_or_default(),
            not_sources: r.not_sources.unwrap_or_default(),
            tors: r.tors.unwrap_or_default(),
            not_tors: r.not_tors.unwrap_or_default(),
            request_types: r.request_types.unwrap_or_default(),
            not_request_types: r.not_request_types.unwrap_or_default(),
            tenants: r.tenants.unwrap_or_default(),
            not_tenants: r.not_tenants.unwrap_or_default(),
            categories: r.categories.unwrap_or_default(),
            not_categories: r.not_categories.unwrap_or_default(),
            accounts: r.accounts.unwrap_or_default(),
            not_accounts: r.not_accounts.unwrap_or_default(),
            subjects: r.subjects.unwrap_or_default(),
            not_subjects: r.not_subjects.unwrap_or_default(),
            destination_prefixes: r.destination_prefixes.unwrap_or_default(),
            not_destination_prefixes: r.not_destination_prefixes.unwrap_or_default(),
            setup_time_start: time("SetupTimeStart", r.setup_time_start)?,
            setup_time_end: time("SetupTimeEnd", r.setup_time_end)?,
            answer_time_start: time("AnswerTimeStart", r.answer_time_start)?,
            answer_time_end: time("AnswerTimeEnd", r.answer_time_end)?,
            min_usage: usage("MinUsage", r.min_usage)?,
            max_usage: usage("MaxUsage", r.max_usage)?,
            min_cost: cost("MinCost", r.min_cost, extra.remove("MinCost"))?,
            max_cost: cost("MaxCost", r.max_cost, extra.remove("MaxCost"))?,
            limit: count("Limit", r.limit)?,
            offset: count("Offset", r.offset)?,
        })
    }
}

/// A filter time: `null` or `""` (no bound), RFC 3339, `2006-01-02
/// 15:04:05` or `2006-01-02T15:04:05` (UTC, optional fraction), or unix
/// seconds (a number or a digit string).
fn parse_filter_time(v: &Value) -> Result<Option<Timestamp>, String> {
    let secs = |n: i64| Ok(Some(Timestamp::from_secs_nanos(n, 0)));
    match v {
        Value::Null => Ok(None),
        Value::Number(n) => n
            .as_i64()
            .map_or_else(|| Err(format!("{n} is not whole unix seconds")), secs),
        Value::String(s) => {
            let s = s.trim();
            if s.is_empty() {
                return Ok(None);
            }
            if s.bytes().all(|b| b.is_ascii_digit()) {
                return s
                    .parse::<i64>()
                    .map_or_else(|_| Err(format!("{s:?} is out of range")), secs);
            }
            let t = DateTime::parse_from_rfc3339(s)
                .map(|t| t.to_utc())
                .or_else(|_| NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f").map(|t| t.and_utc()))
                .or_else(|_| NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f").map(|t| t.and_utc()))
                .map_err(|_| format!("unsupported time format {s:?} (RFC 3339, 2006-01-02 15:04:05 or unix seconds)"))?;
            Ok(Some(Timestamp::from_secs_nanos(
                t.timestamp(),
                t.timestamp_subsec_nanos(),
            )))
        }
        other => Err(format!("expected a time string, got {other}")),
    }
}

/// A filter usage: `null` or `""` (no bound), integer nanoseconds, a Go
/// duration or a digit string (nanoseconds).
fn parse_filter_usage(v: &Value) -> Result<Option<Duration>, String> {
    match v {
        Value::Null => Ok(None),
        Value::Number(n) => n
            .as_u64()
            .map(|n| Some(Duration::from_nanos(n)))
            .ok_or_else(|| format!("{n} is not whole nanoseconds, not negative")),
        Value::String(s) if s.trim().is_empty() => Ok(None),
        Value::String(s) => rating::parse_duration(s)
            .map(Some)
            .map_err(|e| e.to_string()),
        other => Err(format!("expected a duration, got {other}")),
    }
}

/// An exact decimal from a JSON token: a number (`0.1`, `1e-3`), a string
/// holding one, or `null` (none).
pub(crate) fn parse_exact_number(token: &str) -> Result<Option<Decimal>, String> {
    let t = token.trim();
    if t == "null" {
        return Ok(None);
    }
    let text = match serde_json::from_str::<Value>(t) {
        Ok(Value::String(s)) => s,
        Ok(Value::Number(_)) => t.to_owned(),
        _ => return Err(format!("{t} is not a number")),
    };
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    Decimal::from_str(text)
        .or_else(|_| Decimal::from_scientific(text))
        .map(Some)
        .map_err(|e| format!("{text:?} is not a decimal number: {e}"))
}

#[cfg(test)]
mod tests;
