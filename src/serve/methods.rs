//! The JSON-RPC methods `accurate serve` answers, by name, with CGRateS's
//! argument and reply shapes and error spellings.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use jsonrpc::{RpcError, code};
use rating::{CallDescriptor, RoundingMode, SharedTariffPlan, TariffStore, Tor};
use serde_json::{Map, Value};

use super::{accounts, actionapi, balances, cdrs};

/// What every connection shares: the plan in force and the counters.
pub(crate) struct State {
    /// The tariff plan in force, swapped whole by a load.
    pub plan: SharedTariffPlan,
    /// `--rounding`.
    pub mode: RoundingMode,
    /// `[rating]` of the config.
    pub policy: rating::LoadPolicy,
    /// `[api] auth-token`.
    pub auth_token: Option<String>,
    /// `[api] node-id` (the host name by default).
    pub node_id: String,
    /// When the server started.
    pub started: DateTime<Utc>,
    started_at: Instant,
    /// Counters, printed on shutdown.
    pub counters: Counters,
    /// The accounts (`[storage]`: embedded or Redis).
    pub accounts: Arc<dyn rating::AccountStore>,
    /// The server's other state in the same store (the loaded plan).
    pub meta: Arc<dyn storage::MetaStore + Send + Sync>,
    /// The ActionPlan runs to come.
    pub schedule: std::sync::Mutex<rating::Schedule>,
    /// Redis when the accounts are shared with other servers.
    pub shared: Option<Arc<storage::RedisAccounts>>,
    /// Serializes this process's changes of the attached-plans blob.
    pub attached: std::sync::Mutex<()>,
    /// Wakes the scheduler task when the schedule changes.
    pub wake: tokio::sync::Notify,
    /// Shared group ID -> the accounts (`tenant:account`) holding a balance
    /// in it (CGRateS's `MemberIds`), kept up to date by every change.
    pub members:
        std::sync::Mutex<std::collections::BTreeMap<String, std::collections::BTreeSet<String>>>,
    /// When each account's `*balance_expired` triggers are next due.
    pub expiries: std::sync::Mutex<super::expiry::Expiries>,
    /// Capture and dialog counters (`accurate serve --hep/--interface`).
    pub capture: Arc<super::capture::Metrics>,
    /// `APIerSv1.DebitUsage` calls and the session manager's charging
    /// operations, and their latency.
    pub debits: std::sync::Mutex<Debits>,
    /// Where live sessions are saved (the accounts' backend).
    pub session_store: Arc<dyn sessions::SessionStore>,
    /// The session manager's shards, once started.
    pub sessions: std::sync::OnceLock<Arc<super::sessions::Sessions>>,
    /// The stored CDRs (`[cdrs] db`: SQLite or PostgreSQL), for queries.
    pub cdrs: Arc<dyn sessions::CdrStore>,
    /// Where CDRs are written: batched, through the writer task.
    pub cdr_writer: cdrs::CdrWriter,
    /// The CGRateS subsystems' profiles (Filters.csv, Attributes.csv, ...)
    /// of the plan in force, swapped whole by a load.
    pub profiles: subsystems::SharedProfiles,
    /// StatS's queues and CDR feed.
    pub stats: super::subsys::stats::Stats,
    /// ResourceS: the resources' usages (`subsys/resources`).
    pub resources: super::subsys::resources::ResourceService,
    /// ThresholdS: the hits and the event queue (`subsys/thresholds`).
    pub thresholds: super::subsys::thresholds::ThresholdService,
    /// The exporters' and importers' counters (`/metrics`).
    pub export: Arc<super::export::Metrics>,
}

/// Debits: `APIerSv1.DebitUsage` calls and the session manager's charging
/// operations (each atomic account update of a reservation or a settle):
/// how many, how many failed, and their latency (microseconds) as a
/// histogram.
#[derive(Debug)]
pub(crate) struct Debits {
    /// Calls answered.
    pub count: u64,
    /// Of those, answered with an error.
    pub errors: u64,
    /// Sum of the latencies, microseconds.
    pub sum_us: u64,
    /// Latencies, microseconds (1 us to 1 hour, 3 significant digits;
    /// `None` only if the histogram could not be made).
    pub latency_us: Option<hdrhistogram::Histogram<u64>>,
}

impl Default for Debits {
    fn default() -> Self {
        Debits {
            count: 0,
            errors: 0,
            sum_us: 0,
            latency_us: hdrhistogram::Histogram::new_with_bounds(1, 3_600_000_000, 3).ok(),
        }
    }
}

impl Debits {
    /// Records one debit (`APIerSv1.DebitUsage`, or a session shard's
    /// charging operation).
    pub(crate) fn record(&mut self, took: Duration, ok: bool) {
        let us = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        self.count += 1;
        if !ok {
            self.errors += 1;
        }
        self.sum_us = self.sum_us.saturating_add(us);
        if let Some(h) = &mut self.latency_us {
            h.saturating_record(us.max(1));
        }
    }
}

impl std::fmt::Debug for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("State")
            .field("mode", &self.mode)
            .field("node_id", &self.node_id)
            .field("counters", &self.counters)
            .finish_non_exhaustive()
    }
}

/// Named counters of the server.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    /// Requests answered (with a result or an error).
    pub requests: AtomicU64,
    /// Of those, answered with an error.
    pub errors: AtomicU64,
    /// TCP connections accepted.
    pub tcp_connections: AtomicU64,
    /// TCP connections refused at `[api] max-connections`.
    pub tcp_conn_limit: AtomicU64,
    /// TCP connections closed on bytes that are not JSON-RPC.
    pub tcp_malformed: AtomicU64,
    /// TCP connections closed after `[api] idle-timeout-secs` of silence.
    pub tcp_idle_timeout: AtomicU64,
    /// HTTP requests refused before dispatch (method, path, size, auth).
    pub http_refused: AtomicU64,
    /// Requests and errors by method (canonical name; `unknown` for
    /// methods the server does not have, `invalid` for requests refused
    /// before dispatch: not JSON-RPC, not authenticated).
    pub by_method: std::sync::Mutex<std::collections::BTreeMap<String, (u64, u64)>>,
}

impl Counters {
    /// Counts one request of `method` (and its error).
    pub(crate) fn count(&self, method: &str, error: bool) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        if error {
            self.errors.fetch_add(1, Ordering::Relaxed);
        }
        if let Ok(mut m) = self.by_method.lock() {
            let e = match m.get_mut(method) {
                Some(e) => e,
                None => m.entry(method.to_owned()).or_default(),
            };
            e.0 += 1;
            e.1 += u64::from(error);
        }
    }

    /// Name and value of each counter.
    pub(crate) fn all(&self) -> [(&'static str, u64); 7] {
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        [
            ("rpc_requests", g(&self.requests)),
            ("rpc_errors", g(&self.errors)),
            ("tcp_connections", g(&self.tcp_connections)),
            ("tcp_conn_limit", g(&self.tcp_conn_limit)),
            ("tcp_malformed", g(&self.tcp_malformed)),
            ("tcp_idle_timeout", g(&self.tcp_idle_timeout)),
            ("http_refused", g(&self.http_refused)),
        ]
    }
}

impl State {
    pub(crate) fn new(
        plan: SharedTariffPlan,
        mode: RoundingMode,
        policy: rating::LoadPolicy,
        auth_token: Option<String>,
        node_id: String,
        store: super::store::Store,
        cdrs: cdrs::Cdrs,
    ) -> Self {
        // Every account update goes through the thresholds' feed.
        let thresholds = super::subsys::thresholds::ThresholdService::default();
        let accounts = thresholds.wrap(store.accounts);
        State {
            plan,
            mode,
            policy,
            auth_token,
            node_id,
            started: Utc::now(),
            started_at: Instant::now(),
            counters: Counters::default(),
            accounts,
            meta: store.meta,
            session_store: store.sessions,
            sessions: std::sync::OnceLock::new(),
            shared: store.shared,
            schedule: std::sync::Mutex::new(rating::Schedule::default()),
            attached: std::sync::Mutex::new(()),
            wake: tokio::sync::Notify::new(),
            members: std::sync::Mutex::default(),
            capture: Arc::default(),
            debits: std::sync::Mutex::default(),
            expiries: std::sync::Mutex::default(),
            cdrs: cdrs.store,
            cdr_writer: cdrs.writer,
            profiles: subsystems::SharedProfiles::default(),
            stats: super::subsys::stats::Stats::default(),
            resources: super::subsys::resources::ResourceService::default(),
            thresholds,
            export: Arc::default(),
        }
    }

    /// Whether `token` is the configured one (compared in constant time).
    pub(crate) fn token_ok(&self, token: &str) -> bool {
        match &self.auth_token {
            None => true,
            Some(t) => {
                let (a, b) = (t.as_bytes(), token.as_bytes());
                a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
            }
        }
    }
}

/// The method that authenticates a TCP connection: `{"Token": "..."}`.
pub(crate) const AUTH_METHOD: &str = "AuthSv1.Auth";
/// CGRateS's spelling of a refused caller.
pub(crate) const UNAUTHORIZED: &str = "UNAUTHORIZED";

/// Runs one method: the result as JSON text, or the error to answer.
/// CGRateS v0.10 still registers its APIer services under their older
/// names (`ApierV1`, `ApierV2`), and many existing clients call those:
/// they are the same methods.
fn canonical_method(method: &str) -> std::borrow::Cow<'_, str> {
    for (old, new) in [("ApierV1.", "APIerSv1."), ("ApierV2.", "APIerSv2.")] {
        if let Some(rest) = method.strip_prefix(old) {
            return std::borrow::Cow::Owned(format!("{new}{rest}"));
        }
    }
    std::borrow::Cow::Borrowed(method)
}

pub(crate) async fn dispatch(
    state: &Arc<State>,
    method: &str,
    params: Value,
) -> Result<String, RpcError> {
    let canonical = canonical_method(method);
    let method = canonical.as_ref();
    let started = Instant::now();
    // Unknown names are counted under one label, so callers cannot grow
    // the per-method map without bound.
    let mut known = true;
    let r = match method {
        "CoreSv1.Ping" => Ok("\"Pong\"".to_owned()),
        "CoreSv1.Status" => Ok(status(state)),
        "APIerSv1.LoadTariffPlanFromFolder" => load_folder(state, params).await,
        "APIerSv1.GetCost" => get_cost(state, &params),
        // Already checked by the transport; a second call is harmless.
        AUTH_METHOD => Ok("\"OK\"".to_owned()),
        m if super::sessionsapi::METHODS.contains(&m) => {
            super::sessionsapi::call(state, m, &params).await
        }
        m if cdrs::METHODS.contains(&m) => cdrs::call(state, m, &params).await,
        m if super::subsys::handles(m) => super::subsys::call(state, m, &params).await,
        m if super::subsys::attributes::APIER_METHODS.contains(&m) => {
            super::subsys::attributes::call(state, m, &params)
                .await
                .unwrap_or_else(|| Err(unknown(m)))
        }
        m if super::subsys::filters::METHODS.contains(&m) => {
            super::subsys::filters::call(state, m, &params).await
        }
        m if super::subsys::profiles_api::METHODS.contains(&m) => {
            super::subsys::profiles_api::call(state, m, &params).await
        }
        super::cdrs_rate::METHOD => super::cdrs_rate::rate_cdrs(state, &params).await,
        m if STORE_METHODS.contains(&m) => {
            // Store calls block (an fsync, a Redis round trip): off the
            // async workers, so one slow write stalls no other connection.
            let st = Arc::clone(state);
            let m = method.to_owned();
            tokio::task::spawn_blocking(move || store_method(&st, &m, &params))
                .await
                .unwrap_or_else(|e| Err(RpcError::server(format!("SERVER_ERROR: {e}"))))
        }
        _ => {
            known = false;
            Err(unknown(method))
        }
    };
    if method == "APIerSv1.DebitUsage"
        && let Ok(mut d) = state.debits.lock()
    {
        d.record(started.elapsed(), r.is_ok());
    }
    state
        .counters
        .count(if known { method } else { "unknown" }, r.is_err());
    r
}

/// The methods that read or write the account store.
const STORE_METHODS: &[&str] = &[
    "APIerSv1.GetAccount",
    "APIerSv2.GetAccount",
    "APIerSv2.GetAccounts",
    "APIerSv1.SetAccount",
    "APIerSv2.SetAccount",
    "APIerSv1.RemoveAccount",
    "APIerSv1.AddBalance",
    "APIerSv1.SetBalance",
    "APIerSv1.RemoveBalances",
    "APIerSv1.DebitUsage",
    "APIerSv1.GetMaxUsage",
    "APIerSv1.ExecuteAction",
    "APIerSv1.GetActionPlan",
    "APIerSv1.GetActionTriggers",
];

/// Runs one of [`STORE_METHODS`] (blocking).
fn store_method(state: &State, method: &str, params: &Value) -> Result<String, RpcError> {
    match method {
        "APIerSv1.GetAccount" | "APIerSv2.GetAccount" => accounts::get_account(state, params),
        "APIerSv2.GetAccounts" => accounts::get_accounts(state, params),
        "APIerSv1.SetAccount" | "APIerSv2.SetAccount" => accounts::set_account(state, params),
        "APIerSv1.RemoveAccount" => accounts::remove_account(state, params),
        "APIerSv1.AddBalance" => balances::add_balance(state, params),
        "APIerSv1.SetBalance" => balances::set_balance(state, params),
        "APIerSv1.RemoveBalances" => balances::remove_balances(state, params),
        "APIerSv1.DebitUsage" => accounts::debit_usage(state, params),
        "APIerSv1.GetMaxUsage" => accounts::get_max_usage(state, params),
        "APIerSv1.ExecuteAction" => accounts::execute_action(state, params),
        "APIerSv1.GetActionPlan" => actionapi::get_action_plan(state, params),
        "APIerSv1.GetActionTriggers" => actionapi::get_action_triggers(state, params),
        _ => Err(unknown(method)),
    }
}

/// Go's `net/rpc` answer to an unknown service or method.
fn unknown(method: &str) -> RpcError {
    const SERVICES: [&str; 6] = [
        "CoreSv1",
        "APIerSv1",
        "APIerSv2",
        "AuthSv1",
        "SessionSv1",
        "CDRsV1",
    ];
    let service = method.rsplit_once('.').map_or(method, |(s, _)| s);
    let what = if SERVICES.contains(&service) {
        "method"
    } else {
        "service"
    };
    RpcError::new(
        code::METHOD_NOT_FOUND,
        format!("rpc: can't find {what} {method}"),
    )
}

pub(super) fn mandatory_missing(fields: &[&str]) -> RpcError {
    RpcError::new(
        code::INVALID_PARAMS,
        format!("MANDATORY_IE_MISSING: [{}]", fields.join(" ")),
    )
}

/// The argument as an object, as Go would decode it into `type_name`
/// (null and an empty array's nothing decode to the zero value).
pub(super) fn object(params: &Value, type_name: &str) -> Result<Map<String, Value>, RpcError> {
    match params {
        Value::Object(m) => Ok(m.clone()),
        Value::Null => Ok(Map::new()),
        other => Err(RpcError::new(
            code::INVALID_PARAMS,
            format!(
                "json: cannot unmarshal {} into Go value of type {type_name}",
                jsonrpc::kind(other)
            ),
        )),
    }
}

/// A string field (absent or null: empty).
pub(super) fn str_field<'a>(
    m: &'a Map<String, Value>,
    key: &str,
    ty: &str,
) -> Result<&'a str, RpcError> {
    match m.get(key) {
        None | Some(Value::Null) => Ok(""),
        Some(Value::String(s)) => Ok(s),
        Some(other) => Err(RpcError::new(
            code::INVALID_PARAMS,
            format!(
                "json: cannot unmarshal {} into Go struct field {ty}.{key} of type string",
                jsonrpc::kind(other)
            ),
        )),
    }
}

fn status(state: &State) -> String {
    let uptime = state.started_at.elapsed();
    let threads = std::fs::read_dir("/proc/self/task").map_or(0, Iterator::count);
    let mut m = Map::new();
    m.insert("node_id".into(), state.node_id.clone().into());
    m.insert("version".into(), env!("CARGO_PKG_VERSION").into());
    m.insert(
        "running_since".into(),
        state
            .started
            .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
            .into(),
    );
    m.insert(
        "uptime".into(),
        rating::format_duration(Duration::from_secs(uptime.as_secs())).into(),
    );
    m.insert("uptime_seconds".into(), uptime.as_secs().into());
    // CGRateS reports goroutines and Go heap; the nearest here are the
    // process's threads and resident memory.
    m.insert("goroutines".into(), threads.into());
    if let Some(rss) = resident_bytes() {
        m.insert("memory_used".into(), format!("{:.2}MiB", mib(rss)).into());
    }
    let plan = state.plan.current();
    m.insert("rating_profiles".into(), plan.rating_profile_count().into());
    m.insert("destinations".into(), plan.destination_count().into());
    for (k, v) in state.counters.all() {
        m.insert(k.into(), v.into());
    }
    Value::Object(m).to_string()
}

/// Resident set size from /proc (Linux), in bytes.
fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

#[allow(clippy::cast_precision_loss)]
fn mib(bytes: u64) -> f64 {
    // Display only: a memory figure, not money.
    bytes as f64 / 1_048_576.0
}

/// `APIerSv1.LoadTariffPlanFromFolder`: `{"FolderPath", "DryRun"}` ->
/// `"OK"`. The folder is loaded off the runtime's threads and put in force
/// whole; a plan that fails to load leaves the previous one in force.
async fn load_folder(state: &Arc<State>, params: Value) -> Result<String, RpcError> {
    let m = object(&params, "utils.AttrLoadTpFromFolder")?;
    let folder = str_field(&m, "FolderPath", "AttrLoadTpFromFolder")?;
    if folder.is_empty() {
        return Err(mandatory_missing(&["FolderPath"]));
    }
    let dry_run = m.get("DryRun").and_then(Value::as_bool).unwrap_or(false);
    let dir = PathBuf::from(folder);
    match std::fs::metadata(&dir) {
        Ok(md) if md.is_dir() => {}
        Ok(_) => return Err(RpcError::server("INVALID_PATH")),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(RpcError::server("INVALID_PATH"));
        }
        Err(e) => return Err(RpcError::server(format!("SERVER_ERROR: {e}"))),
    }
    let st = Arc::clone(state);
    let loaded = tokio::task::spawn_blocking(move || {
        if dry_run {
            crate::cost::load_tariff_plan(&dir, &st.policy)?;
            subsystems::Profiles::load_dir(&dir)?;
        } else {
            super::store::load_plan_dir(&st, &dir)?;
            accounts::load_accounts(&st, Utc::now())
                .map_err(|e| anyhow::anyhow!("loading accounts: {e}"))?;
        }
        anyhow::Ok(())
    })
    .await;
    match loaded {
        Ok(Ok(())) => Ok("\"OK\"".to_owned()),
        Ok(Err(e)) => Err(RpcError::server(format!(
            "SERVER_ERROR: {}",
            crate::exit::message(&e)
        ))),
        Err(e) => Err(RpcError::server(format!("SERVER_ERROR: {e}"))),
    }
}

/// `APIerSv1.GetCost`: Tenant, Category, Subject, AnswerTime,
/// Destination, Usage (and ToR, Opts/APIOpts accepted) -> an EventCost.
fn get_cost(state: &State, params: &Value) -> Result<String, RpcError> {
    const TY: &str = "AttrGetCost";
    let m = object(params, "v1.AttrGetCost")?;
    let subject = str_field(&m, "Subject", TY)?;
    if subject.is_empty() {
        return Err(mandatory_missing(&["Subject"]));
    }
    let tenant = non_empty(str_field(&m, "Tenant", TY)?, "cgrates.org");
    let category = non_empty(str_field(&m, "Category", TY)?, "call");
    let destination = non_empty(str_field(&m, "Destination", TY)?, "*any");
    for opts in ["Opts", "APIOpts"] {
        if let Some(v) = m.get(opts)
            && !v.is_object()
            && !v.is_null()
        {
            return Err(RpcError::new(
                code::INVALID_PARAMS,
                format!(
                    "json: cannot unmarshal {} into Go struct field {TY}.{opts} of type map[string]interface {{}}",
                    jsonrpc::kind(v)
                ),
            ));
        }
    }
    let tor = match str_field(&m, "ToR", TY)? {
        "" => Tor::Voice,
        t => t
            .parse()
            .map_err(|()| RpcError::server(format!("SERVER_ERROR: unsupported ToR {t}")))?,
    };
    let usage = parse_usage(m.get("Usage"))?;
    let answer = parse_answer_time(str_field(&m, "AnswerTime", TY)?, Utc::now())
        .map_err(|e| RpcError::new(code::INVALID_PARAMS, e))?;
    let plan = state.plan.current();
    let mut cd = CallDescriptor::new(subject, destination, answer, usage);
    cd.tenant = tenant;
    cd.category = category;
    cd.tor = tor;
    // CGRateS wraps the rating error: SERVER_ERROR: RATING_PLAN_NOT_FOUND.
    let cc = plan
        .cost(&cd, state.mode)
        .map_err(|e| RpcError::server(format!("SERVER_ERROR: {}", e.reason())))?;
    Ok(super::eventcost::event_cost(&cc, answer))
}

fn non_empty<'a>(s: &'a str, default: &'a str) -> &'a str {
    if s.is_empty() { default } else { s }
}

/// CGRateS's usage forms: integer nanoseconds, a Go duration (`"1m30s"`)
/// or a digit string (nanoseconds).
pub(super) fn parse_usage(v: Option<&Value>) -> Result<Duration, RpcError> {
    let bad = |what: String| RpcError::new(code::INVALID_PARAMS, what);
    match v {
        None | Some(Value::Null) => Ok(Duration::ZERO),
        Some(Value::String(s)) => rating::parse_duration(s).map_err(|e| bad(e.to_string())),
        Some(Value::Number(n)) => n.as_u64().map(Duration::from_nanos).ok_or_else(|| {
            bad(format!(
                "invalid Usage {n}: expected whole nanoseconds, not negative"
            ))
        }),
        Some(other) => Err(bad(format!(
            "json: cannot unmarshal {} into Go struct field AttrGetCost.Usage of type string",
            jsonrpc::kind(other)
        ))),
    }
}

/// An answer time as CGRateS's `ParseTimeDetectLayout` reads it (UTC as
/// the default time zone): empty (the zero time), `*now`, `+DURATION`
/// from now, unix seconds, RFC 3339, or `2006-01-02 15:04:05` /
/// `2006-01-02T15:04:05` without a zone.
pub(super) fn parse_answer_time(s: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, String> {
    let s = s.trim();
    if s.is_empty() {
        // Go's zero time.
        return Utc
            .with_ymd_and_hms(1, 1, 1, 0, 0, 0)
            .single()
            .ok_or_else(|| "no zero time".to_owned());
    }
    if s == "*now" {
        return Ok(now);
    }
    if let Some(rest) = s.strip_prefix('+') {
        let d = rating::parse_duration(rest).map_err(|e| e.to_string())?;
        let d = chrono::TimeDelta::from_std(d).map_err(|e| e.to_string())?;
        return now
            .checked_add_signed(d)
            .ok_or_else(|| format!("AnswerTime {s:?} out of range"));
    }
    if s.bytes().all(|b| b.is_ascii_digit()) {
        let secs: i64 = s
            .parse()
            .map_err(|_| format!("AnswerTime {s:?} out of range"))?;
        return DateTime::from_timestamp(secs, 0)
            .ok_or_else(|| format!("AnswerTime {s:?} out of range"));
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    for layout in ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, layout) {
            return Ok(t.and_utc());
        }
    }
    Err(format!("Unsupported time format: {s}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn usage_forms() {
        let u = |v: Value| parse_usage(Some(&v));
        assert_eq!(u(json!("1m30s")).unwrap(), Duration::from_secs(90));
        assert_eq!(u(json!("120000000000")).unwrap(), Duration::from_secs(120));
        assert_eq!(
            u(json!(90_000_000_000u64)).unwrap(),
            Duration::from_secs(90)
        );
        assert!(u(json!(-1)).is_err());
        assert!(u(json!(1.5)).is_err());
        assert!(u(json!("soon")).is_err());
        assert!(u(json!([])).is_err());
    }

    #[test]
    fn answer_time_forms() {
        let now = Utc.with_ymd_and_hms(2024, 5, 13, 10, 0, 0).unwrap();
        let p = |s: &str| parse_answer_time(s, now).unwrap();
        assert_eq!(p("*now"), now);
        assert_eq!(p("2024-05-13T12:00:00+02:00"), now);
        assert_eq!(p("1715594400"), now);
        assert_eq!(p("2024-05-13 10:00:00"), now);
        assert_eq!(p("+1h").timestamp(), now.timestamp() + 3600);
        assert_eq!(p("").to_rfc3339(), "0001-01-01T00:00:00+00:00");
        assert!(parse_answer_time("yesterday", now).is_err());
    }

    #[test]
    fn unknown_service_and_method_as_go_says() {
        assert_eq!(
            unknown("Foo.Bar").message,
            "rpc: can't find service Foo.Bar"
        );
        assert_eq!(
            unknown("CoreSv1.Nope").message,
            "rpc: can't find method CoreSv1.Nope"
        );
    }

    #[test]
    fn token_compare() {
        let s = State::new(
            SharedTariffPlan::default(),
            RoundingMode::Exact,
            rating::LoadPolicy::default(),
            Some("secret".into()),
            "n".into(),
            super::super::store::Store::memory(),
            cdrs::Cdrs::unavailable(),
        );
        assert!(s.token_ok("secret"));
        assert!(!s.token_ok("secreT"));
        assert!(!s.token_ok("secret2"));
    }
}
