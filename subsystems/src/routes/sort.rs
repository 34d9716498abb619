//! Sorting a profile's routes for an event, as CGRateS's RouteS does:
//! each route gets its sorting data (weight; cost from its rating plans;
//! stat metrics; resource usage), its filters are checked against the
//! event with that data as `~*vars`, and the routes passing are sorted by
//! the profile's strategy, ties by weight. A blocker route ends the list.
//!
//! Sans-IO: costs, metrics and usages come through [`RouteData`].

use std::borrow::Cow;
use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use rating::{CallDescriptor, RoundingMode, TariffPlan};
use rust_decimal::Decimal;
use serde_json::{Map, Value};

use super::{Route, RouteProfile, Sorting, json_f64};
use crate::{Error, Event, FilterCtx};

/// The cost of an event on one route.
#[derive(Debug, Clone, PartialEq)]
pub struct RouteCost {
    /// The cost.
    pub cost: Decimal,
    /// More sorting data to show (`RatingPlanID`, ...).
    pub data: Map<String, Value>,
}

/// Where the sorting gets what it does not compute itself.
pub trait RouteData {
    /// The event's cost on `route` (its AccountIDs, RatingPlanIDs);
    /// `Ok(None)` when nothing prices it (the route is left out).
    ///
    /// # Errors
    /// A cost that cannot be computed (a missing mandatory field...).
    fn cost(&self, ev: &Event, route: &Route) -> Result<Option<RouteCost>, Error>;
    /// The event's own cost (for the `*event_cost` MaxCost).
    ///
    /// # Errors
    /// The event cannot be rated.
    fn event_cost(&self, ev: &Event) -> Result<Decimal, Error>;
    /// Stat queue `id`'s metrics as numbers (`None`: no such queue).
    fn stat_metrics(&self, tenant: &str, id: &str) -> Option<BTreeMap<String, f64>>;
    /// Resource `id`'s units in use (`None`: no such resource).
    fn resource_usage(&self, tenant: &str, id: &str) -> Option<f64>;
}

/// The route cost limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MaxCostOpt {
    /// Routes costing more are left out (zero: no limit, as CGRateS).
    Value(Decimal),
    /// `*event_cost`: the event's own cost is the limit.
    EventCost,
}

/// `GetRoutes` options (master's `APIOpts`, v0.10's arguments).
#[derive(Debug, Clone, PartialEq)]
pub struct GetRoutesOpts {
    /// `*ignoreErrors` / `IgnoreErrors`: a route whose data fails is left
    /// out instead of failing the call.
    pub ignore_errors: bool,
    /// `*maxCost` / `MaxCost`.
    pub max_cost: Option<MaxCostOpt>,
    /// `*limit` / `Limit`: at most so many routes, over all profiles.
    pub limit: Option<usize>,
    /// `*offset` / `Offset`: skip so many routes first.
    pub offset: Option<usize>,
    /// `*profileCount`: at most so many profiles (`None`: all).
    pub profile_count: Option<usize>,
    /// The `*load` ratio of a route SortingParameters do not name.
    pub default_ratio: f64,
}

impl Default for GetRoutesOpts {
    fn default() -> Self {
        GetRoutesOpts {
            ignore_errors: false,
            max_cost: None,
            limit: None,
            offset: None,
            profile_count: Some(1),
            default_ratio: 1.0,
        }
    }
}

/// One route in the answer.
#[derive(Debug, Clone, PartialEq)]
pub struct SortedRoute {
    /// RouteID.
    pub route_id: String,
    /// RouteParameters.
    pub parameters: String,
    /// SortingData as answered (`Weight`, `Cost`, `RatingPlanID`, metrics,
    /// `ResourceUsage`, `Load`, `Ratio`).
    pub sorting_data: Map<String, Value>,
    weight: f64,
    cost: Decimal,
    metrics: BTreeMap<String, f64>,
    resource_usage: f64,
    load: f64,
    ratio: f64,
    blocker: bool,
}

/// The sorted routes of one profile.
#[derive(Debug, Clone, PartialEq)]
pub struct SortedRoutes {
    /// The profile's ID.
    pub profile_id: String,
    /// Its Sorting, as written.
    pub sorting: String,
    /// The routes, best first.
    pub routes: Vec<SortedRoute>,
}

impl SortedRoutes {
    /// Master's `SortedRoutes` JSON (`ProfileID`, `Sorting`, `Routes`) or,
    /// with `suppliers`, v0.10's `SortedSuppliers` (`Count`,
    /// `SortedSuppliers`, `SupplierID`, `SupplierParameters`).
    #[must_use]
    pub fn to_json(&self, suppliers: bool) -> Value {
        let (id_key, par_key) = if suppliers {
            ("SupplierID", "SupplierParameters")
        } else {
            ("RouteID", "RouteParameters")
        };
        let routes: Vec<Value> = self
            .routes
            .iter()
            .map(|r| {
                let mut m = Map::new();
                m.insert(id_key.into(), r.route_id.clone().into());
                m.insert(par_key.into(), r.parameters.clone().into());
                let mut sd = r.sorting_data.clone();
                if suppliers {
                    sd.remove("Blocker");
                }
                m.insert("SortingData".into(), Value::Object(sd));
                Value::Object(m)
            })
            .collect();
        let mut m = Map::new();
        m.insert("ProfileID".into(), self.profile_id.clone().into());
        m.insert("Sorting".into(), self.sorting.clone().into());
        if suppliers {
            m.insert("Count".into(), routes.len().into());
            m.insert("SortedSuppliers".into(), Value::Array(routes));
        } else {
            m.insert("Routes".into(), Value::Array(routes));
        }
        Value::Object(m)
    }

    /// `RouteID` or `RouteID:RouteParameters` per route
    /// (`RouteSv1.GetRoutesList`).
    #[must_use]
    pub fn with_params(&self) -> Vec<String> {
        self.routes
            .iter()
            .map(|r| {
                if r.parameters.is_empty() {
                    r.route_id.clone()
                } else {
                    format!("{}:{}", r.route_id, r.parameters)
                }
            })
            .collect()
    }
}

fn mandatory(what: &str) -> Error {
    Error::Invalid(format!("MANDATORY_IE_MISSING: [{what}]"))
}

/// The routes of `profiles` (heaviest first, as
/// [`super::RouteProfiles::matching`] gives them) sorted for `ev`: one
/// [`SortedRoutes`] per profile with routes left, up to
/// `opts.profile_count` profiles; `offset` and `limit` count routes over
/// all of them.
///
/// # Errors
/// [`Error::NotFound`] when no route is left; a route data or filter
/// error (unless `ignore_errors`); a missing mandatory route field for
/// the strategy (`RatingPlanIDs` for `*lc`).
pub fn sorted_routes(
    profiles: &[&RouteProfile],
    ctx: &FilterCtx<'_>,
    ev: &Event,
    data: &dyn RouteData,
    opts: &GetRoutesOpts,
) -> Result<Vec<SortedRoutes>, Error> {
    let mut ev = ev.clone();
    if !ev.fields.contains_key("Usage") {
        // CGRateS rates a minute when the event has no usage.
        ev.fields
            .insert("Usage".into(), Value::from(60_000_000_000_u64));
    }
    let max_cost = match opts.max_cost {
        None => None,
        Some(MaxCostOpt::Value(v)) => Some(v).filter(|v| !v.is_zero()),
        Some(MaxCostOpt::EventCost) => Some(data.event_cost(&ev)?),
    };
    let mut skip = opts.offset.unwrap_or(0);
    let mut left = opts.limit;
    let mut out = Vec::new();
    for p in profiles {
        if opts.profile_count.is_some_and(|n| out.len() >= n) || left == Some(0) {
            break;
        }
        let mut sr = sort_profile(p, ctx, &ev, data, opts, max_cost)?;
        if sr.routes.is_empty() {
            continue;
        }
        if skip >= sr.routes.len() {
            skip -= sr.routes.len();
            continue;
        }
        sr.routes.drain(..skip);
        skip = 0;
        if let Some(n) = left.as_mut() {
            sr.routes.truncate(*n);
            *n -= sr.routes.len();
        }
        out.push(sr);
    }
    if out.is_empty() {
        return Err(Error::NotFound);
    }
    Ok(out)
}

/// What a route's data lookups leave: the route, or nothing (left out).
type Populated = Result<Option<SortedRoute>, Error>;

fn sort_profile(
    p: &RouteProfile,
    ctx: &FilterCtx<'_>,
    ev: &Event,
    data: &dyn RouteData,
    opts: &GetRoutesOpts,
    max_cost: Option<Decimal>,
) -> Result<SortedRoutes, Error> {
    let mut routes: Vec<SortedRoute> = Vec::with_capacity(p.routes.len());
    for route in &p.routes {
        match p.strategy {
            Sorting::LeastCost | Sorting::HighestCost
                if route.rating_plan_ids.is_empty() && route.account_ids.is_empty() =>
            {
                return Err(mandatory("RatingPlanIDs"));
            }
            Sorting::ResourceAscending | Sorting::ResourceDescending
                if route.resource_ids.is_empty() =>
            {
                return Err(mandatory("ResourceIDs"));
            }
            Sorting::Load if route.stat_ids.is_empty() => return Err(mandatory("StatIDs")),
            _ => {}
        }
        let populated = populate(p, route, ev, data, opts, max_cost);
        let sr = match populated {
            Ok(Some(sr)) => sr,
            Ok(None) => continue,
            Err(_) if opts.ignore_errors => continue,
            Err(e) => return Err(e),
        };
        let mut with_vars = ev.clone();
        with_vars.vars.clone_from(&sr.sorting_data);
        if !ctx.pass(&ev.tenant, &route.filter_ids, &with_vars)? {
            continue;
        }
        // Of routes sharing an ID, the heavier stays.
        match routes.iter_mut().find(|r| r.route_id == sr.route_id) {
            Some(prev) if prev.weight < sr.weight => *prev = sr,
            Some(_) => {}
            None => routes.push(sr),
        }
    }
    sort_by_strategy(&mut routes, p.strategy, &p.sorting_parameters);
    if let Some(i) = routes.iter().position(|r| r.blocker) {
        routes.truncate(i + 1);
    }
    Ok(SortedRoutes {
        profile_id: p.id.clone(),
        sorting: p.sorting.clone(),
        routes,
    })
}

fn populate(
    p: &RouteProfile,
    route: &Route,
    ev: &Event,
    data: &dyn RouteData,
    opts: &GetRoutesOpts,
    max_cost: Option<Decimal>,
) -> Populated {
    let mut sd = Map::new();
    sd.insert("Weight".into(), json_f64(route.weight));
    let mut sr = SortedRoute {
        route_id: route.id.clone(),
        parameters: route.parameters.clone(),
        sorting_data: Map::new(),
        weight: route.weight,
        cost: Decimal::ZERO,
        metrics: BTreeMap::new(),
        resource_usage: 0.0,
        load: 0.0,
        ratio: 0.0,
        blocker: route.blocker,
    };
    if !route.account_ids.is_empty() || !route.rating_plan_ids.is_empty() {
        let Some(c) = data.cost(ev, route)? else {
            return Ok(None);
        };
        if max_cost.is_some_and(|m| c.cost > m) {
            return Ok(None);
        }
        sr.cost = c.cost;
        sd.extend(c.data);
        sd.insert("Cost".into(), decimal_json(c.cost));
    }
    if !route.stat_ids.is_empty() {
        if p.strategy == Sorting::Load {
            sr.load = load(&ev.tenant, &route.stat_ids, data)?;
            sd.insert("Load".into(), json_f64(sr.load));
        } else {
            sr.metrics = averaged_metrics(&ev.tenant, &route.stat_ids, data);
            for (k, v) in &sr.metrics {
                sd.insert(k.clone(), json_f64(*v));
            }
            for param in &p.sorting_parameters {
                if !sr.metrics.contains_key(param) {
                    // CGRateS: a missing metric sorts last.
                    let v = if param == "*pdd" { f64::MAX } else { -1.0 };
                    sr.metrics.insert(param.clone(), v);
                    sd.insert(param.clone(), json_f64(v));
                }
            }
        }
    }
    if !route.resource_ids.is_empty() {
        sr.resource_usage = route
            .resource_ids
            .iter()
            .filter_map(|id| data.resource_usage(&ev.tenant, id))
            .sum();
        sd.insert("ResourceUsage".into(), json_f64(sr.resource_usage));
    }
    if p.strategy == Sorting::Load {
        sr.ratio = ratio(&p.sorting_parameters, &route.id).unwrap_or(opts.default_ratio);
        sd.insert("Ratio".into(), json_f64(sr.ratio));
    }
    if route.blocker {
        sd.insert("Blocker".into(), Value::Bool(true));
    }
    sr.sorting_data = sd;
    Ok(Some(sr))
}

/// Each metric averaged over the queues that have it.
fn averaged_metrics(tenant: &str, ids: &[String], data: &dyn RouteData) -> BTreeMap<String, f64> {
    let mut sums: BTreeMap<String, (f64, u32)> = BTreeMap::new();
    for id in ids {
        for (k, v) in data.stat_metrics(tenant, id).unwrap_or_default() {
            let e = sums.entry(k).or_insert((0.0, 0));
            e.0 += v;
            e.1 += 1;
        }
    }
    sums.into_iter()
        .map(|(k, (s, n))| (k, s / f64::from(n.max(1))))
        .collect()
}

/// `*load`: the sum of the queues' metrics (`StatID:MetricID`: that one
/// metric, which must exist).
fn load(tenant: &str, ids: &[String], data: &dyn RouteData) -> Result<f64, Error> {
    let mut total = 0.0;
    for id in ids {
        let (queue, metric) = match id.split_once(':') {
            Some((q, m)) => (q, Some(m)),
            None => (id.as_str(), None),
        };
        let metrics = data.stat_metrics(tenant, queue).unwrap_or_default();
        match metric {
            Some(m) => {
                total += metrics.get(m).copied().ok_or_else(|| {
                    Error::Invalid(format!("NOT_FOUND: metric {m} for statID: {queue}"))
                })?;
            }
            None => total += metrics.values().sum::<f64>(),
        }
    }
    Ok(total)
}

/// The ratio SortingParameters give `route` (`route:ratio`, else
/// `*default:ratio`).
fn ratio(params: &[String], route: &str) -> Option<f64> {
    let find = |name: &str| {
        params.iter().find_map(|p| {
            let (r, v) = p.split_once(':')?;
            (r == name).then(|| v.trim().parse::<i64>().ok()).flatten()
        })
    };
    #[allow(clippy::cast_precision_loss)]
    find(route).or_else(|| find("*default")).map(|r| r as f64)
}

fn fcmp(a: f64, b: f64) -> Ordering {
    a.partial_cmp(&b).unwrap_or(Ordering::Equal)
}

/// Sorts stably: the strategy's order, then the heavier route, then the
/// profile's order (CGRateS breaks weight ties at random).
fn sort_by_strategy(routes: &mut [SortedRoute], strategy: Sorting, params: &[String]) {
    let by_weight = |a: &SortedRoute, b: &SortedRoute| fcmp(b.weight, a.weight);
    match strategy {
        Sorting::Weight => routes.sort_by(by_weight),
        Sorting::LeastCost => routes.sort_by(|a, b| a.cost.cmp(&b.cost).then(by_weight(a, b))),
        Sorting::HighestCost => routes.sort_by(|a, b| b.cost.cmp(&a.cost).then(by_weight(a, b))),
        Sorting::ResourceAscending => {
            routes.sort_by(|a, b| fcmp(a.resource_usage, b.resource_usage).then(by_weight(a, b)))
        }
        Sorting::ResourceDescending => {
            routes.sort_by(|a, b| fcmp(b.resource_usage, a.resource_usage).then(by_weight(a, b)))
        }
        Sorting::Load => {
            routes.sort_by(|a, b| fcmp(per_ratio(a), per_ratio(b)).then(by_weight(a, b)))
        }
        Sorting::Qos => routes.sort_by(|a, b| {
            for param in params {
                let get = |r: &SortedRoute| r.metrics.get(param).copied().unwrap_or(0.0);
                let (x, y) = (get(a), get(b));
                let o = if param == "*pdd" {
                    fcmp(x, y)
                } else {
                    fcmp(y, x)
                };
                if o != Ordering::Equal {
                    return o;
                }
            }
            by_weight(a, b)
        }),
    }
}

fn per_ratio(r: &SortedRoute) -> f64 {
    if r.ratio == 0.0 {
        0.0
    } else {
        r.load / r.ratio
    }
}

/// A decimal as a JSON number.
#[must_use]
pub fn decimal_json(d: Decimal) -> Value {
    serde_json::from_str(&rating::json_number(d)).unwrap_or(Value::Null)
}

/// What the event asks to rate: account, subject, destination, setup
/// time, usage (a minute when absent), tenant and category.
struct Rated<'e> {
    account: Cow<'e, str>,
    subject: Cow<'e, str>,
    destination: Cow<'e, str>,
    category: Cow<'e, str>,
    start: DateTime<Utc>,
    usage: Duration,
}

fn field_time(ev: &Event, name: &str) -> Result<Option<DateTime<Utc>>, Error> {
    let Some(v) = ev.fields.get(name) else {
        return Ok(None);
    };
    let s = crate::event::value_text(v);
    let s = s.trim();
    if s.is_empty() {
        return Ok(None);
    }
    if s.bytes().all(|b| b.is_ascii_digit())
        && let Some(t) = s
            .parse::<i64>()
            .ok()
            .and_then(|n| DateTime::from_timestamp(n, 0))
    {
        return Ok(Some(t));
    }
    crate::activation::parse_time(s).map_err(|e| Error::Invalid(format!("{name}: {e}")))
}

fn rated(ev: &Event) -> Result<Rated<'_>, Error> {
    let account = ev.text("Account");
    let destination = ev.text("Destination");
    let start = match field_time(ev, "SetupTime")? {
        Some(t) => Some(t),
        None => field_time(ev, "AnswerTime")?,
    };
    let mut missing = Vec::new();
    if account.is_empty() {
        missing.push("Account");
    }
    if destination.is_empty() {
        missing.push("Destination");
    }
    if start.is_none() {
        missing.push("SetupTime");
    }
    let Some(start) = start.filter(|_| missing.is_empty()) else {
        return Err(mandatory(&missing.join(" ")));
    };
    let usage = match ev.fields.get("Usage") {
        None | Some(Value::Null) => Duration::from_secs(60),
        Some(Value::Number(n)) => n
            .as_u64()
            .map(Duration::from_nanos)
            .ok_or_else(|| Error::Invalid(format!("Usage: not a duration: {n}")))?,
        Some(v) => rating::parse_duration(&crate::event::value_text(v))
            .map_err(|e| Error::Invalid(format!("Usage: {e}")))?,
    };
    let subject = ev.text("Subject");
    let subject = if subject.is_empty() {
        account.clone()
    } else {
        subject
    };
    let category = ev.text("Category");
    let category = if category.is_empty() {
        Cow::Borrowed("call")
    } else {
        category
    };
    Ok(Rated {
        account,
        subject,
        destination,
        category,
        start,
        usage,
    })
}

/// CGRateS's `GetCostOnRatingPlans`: the event's cost with the first of
/// `rating_plan_ids` that prices it (from the event's SetupTime for its
/// Usage), with `RatingPlanID` as extra sorting data; `None` when none
/// does.
///
/// # Errors
/// A missing Account, Destination or SetupTime, a bad Usage, or a
/// rating error other than "not priced".
pub fn cost_on_rating_plans(
    plan: &TariffPlan,
    ev: &Event,
    rating_plan_ids: &[String],
    mode: RoundingMode,
) -> Result<Option<RouteCost>, Error> {
    let r = rated(ev)?;
    let mut cd = CallDescriptor::new(&r.subject, &r.destination, r.start, r.usage);
    cd.tenant = &ev.tenant;
    cd.account = &r.account;
    cd.category = &r.category;
    for id in rating_plan_ids {
        match plan.cost_on_rating_plan(id, &cd, mode) {
            Ok(cc) => {
                let mut data = Map::new();
                data.insert("RatingPlanID".into(), id.clone().into());
                return Ok(Some(RouteCost {
                    cost: cc.cost.amount(),
                    data,
                }));
            }
            Err(
                rating::Error::RatingPlanNotFound { .. }
                | rating::Error::UnauthorizedDestination { .. }
                | rating::Error::NoRateInterval { .. },
            ) => {}
            Err(e) => return Err(Error::Invalid(e.to_string())),
        }
    }
    Ok(None)
}

/// What an account can pay of a call: the longest usage, at most the
/// call's (`None`: no such account, or it cannot be asked).
pub type AccountMaxUsage<'a> = dyn FnMut(&str, &CallDescriptor<'_>) -> Option<Duration> + 'a;

/// CGRateS's `costForEvent`: the first of `account_ids` whose balances
/// pay for some of the event (`Account`, `MaxUsage`, a `Cost` of 0);
/// the usage they do not cover (all of it without such an account) is
/// costed on `rating_plan_ids` from where the account's part ends.
/// `None` when neither gives anything.
///
/// # Errors
/// As [`cost_on_rating_plans`]; an account that does not cover the
/// usage on a route without rating plans.
pub fn cost_for_event(
    plan: &TariffPlan,
    ev: &Event,
    (account_ids, rating_plan_ids): (&[String], &[String]),
    mode: RoundingMode,
    max_usage: &mut AccountMaxUsage<'_>,
) -> Result<Option<RouteCost>, Error> {
    if account_ids.is_empty() {
        return cost_on_rating_plans(plan, ev, rating_plan_ids, mode);
    }
    let r = rated(ev)?;
    let mut out: Option<RouteCost> = None;
    let mut covered = Duration::ZERO;
    for id in account_ids {
        let mut cd = CallDescriptor::new(&r.subject, &r.destination, r.start, r.usage);
        cd.tenant = &ev.tenant;
        cd.account = id;
        cd.category = &r.category;
        let Some(max) = max_usage(id, &cd).filter(|m| !m.is_zero()) else {
            continue;
        };
        covered = max.min(r.usage);
        let mut data = Map::new();
        data.insert("Account".into(), id.clone().into());
        data.insert(
            "MaxUsage".into(),
            u64::try_from(max.as_nanos()).unwrap_or(u64::MAX).into(),
        );
        out = Some(RouteCost {
            cost: Decimal::ZERO,
            data,
        });
        break;
    }
    if covered >= r.usage {
        return Ok(out);
    }
    if out.is_some() && rating_plan_ids.is_empty() {
        return Err(Error::Invalid(
            "no rating plans defined for remaining usage".into(),
        ));
    }
    // The rest of the call, from where the account's part ends.
    let mut rest = ev.clone();
    let start = r.start + chrono::TimeDelta::from_std(covered).unwrap_or_default();
    rest.fields
        .insert("SetupTime".into(), start.to_rfc3339().into());
    rest.fields.insert(
        "Usage".into(),
        u64::try_from((r.usage - covered).as_nanos())
            .unwrap_or(u64::MAX)
            .into(),
    );
    let Some(rp) = cost_on_rating_plans(plan, &rest, rating_plan_ids, mode)? else {
        return Ok(out);
    };
    Ok(Some(match out {
        Some(mut acc) => {
            acc.cost = rp.cost;
            acc.data.extend(rp.data);
            acc
        }
        None => rp,
    }))
}

/// The event's own cost, by its subject's rating profile (`*event_cost`).
///
/// # Errors
/// A missing field or a rating error.
pub fn event_cost(plan: &TariffPlan, ev: &Event, mode: RoundingMode) -> Result<Decimal, Error> {
    let r = rated(ev)?;
    let mut cd = CallDescriptor::new(&r.subject, &r.destination, r.start, r.usage);
    cd.tenant = &ev.tenant;
    cd.account = &r.account;
    cd.category = &r.category;
    plan.cost(&cd, mode)
        .map(|cc| cc.cost.amount())
        .map_err(|e| Error::Invalid(e.reason().to_owned()))
}
