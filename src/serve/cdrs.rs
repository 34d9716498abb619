//! Stored CDRs in `accurate serve`: the CDR database (`[cdrs] db`,
//! `--cdr-db`; SQLite `cdrs.sqlite` in the data directory by default), the
//! batching writer task every CDR goes through, and the CDR query methods
//! (`CDRsV1.GetCDRs`, `CDRsV1.GetCDRsCount`, `APIerSv2.GetCDRs`,
//! `APIerSv2.CountCDRs`).
//!
//! The writer: [`CdrWriter::submit`] queues a CDR on a bounded channel
//! (waiting, and counting it, when the queue is full); the task collects
//! up to `batch-size` CDRs or whatever came within `flush-interval-ms` of
//! the first, and stores them with one [`CdrStore::insert`] (one
//! transaction). A store that cannot be reached is retried with a backoff
//! while the queue fills and submitters wait; a batch the database
//! refuses is retried one CDR at a time, so one bad CDR never takes the
//! others with it. On shutdown the task stores everything queued before it
//! returns, unless the database does not answer within the shutdown's
//! grace ([`WriterTask::give_up_on`]): then what is left is answered "not
//! stored" and the task ends. [`CdrWriter::submit_wait`] returns once its
//! CDR is committed.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use jsonrpc::{RpcError, code};
use serde::Serialize;
use serde_json::Value;
use serde_json::value::RawValue;
use sessions::{Cdr, CdrFilter, CdrStore};

use super::methods::{State, object};
use crate::config::CdrsSection;

mod writer;

pub(crate) use writer::{CdrWriter, WriterTask};

/// The CDR methods, dispatched by [`call`].
pub(crate) const METHODS: &[&str] = &[
    "CDRsV1.GetCDRs",
    "CDRsV1.GetCDRsCount",
    "APIerSv2.GetCDRs",
    "APIerSv2.CountCDRs",
];

/// The file of the default CDR database, in the data directory.
pub(crate) const DEFAULT_SQLITE_FILE: &str = "cdrs.sqlite";

/// The CDR database and its writer, as the server holds them.
pub(crate) struct Cdrs {
    /// The database.
    pub store: Arc<dyn CdrStore>,
    /// The one way CDRs are written.
    pub writer: CdrWriter,
}

impl Cdrs {
    /// Opens the database at `url` (migrating it) and makes the writer;
    /// the caller spawns [`WriterTask::run`].
    ///
    /// # Errors
    /// The database cannot be opened.
    pub(crate) async fn open(
        url: &str,
        cfg: &CdrsSection,
    ) -> anyhow::Result<(Cdrs, WriterTask, String)> {
        let db = storage::SqlCdrs::open(url).await?;
        let describe = db.describe().to_owned();
        let store: Arc<dyn CdrStore> = Arc::new(db);
        let (writer, task) = CdrWriter::new(
            Arc::clone(&store),
            cfg.batch_size,
            Duration::from_millis(cfg.flush_interval_ms),
        );
        Ok((Cdrs { store, writer }, task, describe))
    }

    /// No CDR database (`accurate load`, which writes none): every query
    /// and write fails.
    pub(crate) fn unavailable() -> Cdrs {
        let store: Arc<dyn CdrStore> = Arc::new(NoCdrs);
        let (writer, _task) = CdrWriter::new(Arc::clone(&store), 1, Duration::from_millis(1));
        Cdrs { store, writer }
    }
}

/// The database URL: `--cdr-db`, else `[cdrs] db`, else SQLite
/// `cdrs.sqlite` in `data_dir` (created if missing).
pub(crate) fn db_url(
    flag: Option<&str>,
    cfg: &CdrsSection,
    data_dir: &Path,
) -> anyhow::Result<String> {
    if let Some(u) = flag.or(cfg.db.as_deref()) {
        crate::config::check_cdr_db(u).map_err(|e| anyhow::anyhow!("--cdr-db: {e}"))?;
        return Ok(u.to_owned());
    }
    std::fs::create_dir_all(data_dir).map_err(|source| crate::exit::Failure::Input {
        what: "data directory",
        path: data_dir.to_path_buf(),
        source,
    })?;
    Ok(format!(
        "sqlite://{}?mode=rwc",
        data_dir.join(DEFAULT_SQLITE_FILE).display()
    ))
}

/// A CDR store for commands that have none.
struct NoCdrs;

impl NoCdrs {
    fn err() -> sessions::Error {
        sessions::Error::CdrStore("no CDR database in this command".to_owned())
    }
}

impl CdrStore for NoCdrs {
    fn insert<'a>(
        &'a self,
        _: &'a [Cdr],
    ) -> sessions::BoxFuture<'a, Result<Vec<bool>, sessions::Error>> {
        Box::pin(async { Err(Self::err()) })
    }
    fn get<'a>(
        &'a self,
        _: &'a CdrFilter,
    ) -> sessions::BoxFuture<'a, Result<Vec<Cdr>, sessions::Error>> {
        Box::pin(async { Err(Self::err()) })
    }
    fn count<'a>(
        &'a self,
        _: &'a CdrFilter,
    ) -> sessions::BoxFuture<'a, Result<u64, sessions::Error>> {
        Box::pin(async { Err(Self::err()) })
    }
    fn update_cost<'a>(
        &'a self,
        _: &'a str,
        _: &'a str,
        _: &'a sessions::CostUpdate,
    ) -> sessions::BoxFuture<'a, Result<bool, sessions::Error>> {
        Box::pin(async { Err(Self::err()) })
    }
    fn replace<'a>(&'a self, _: &'a Cdr) -> sessions::BoxFuture<'a, Result<(), sessions::Error>> {
        Box::pin(async { Err(Self::err()) })
    }
}

/// Runs one of [`METHODS`].
pub(crate) async fn call(state: &State, method: &str, params: &Value) -> Result<String, RpcError> {
    let filter = parse_filter(params)?;
    let server = |e: sessions::Error| RpcError::server(format!("SERVER_ERROR: {e}"));
    match method {
        "CDRsV1.GetCDRsCount" | "APIerSv2.CountCDRs" => {
            Ok(state.cdrs.count(&filter).await.map_err(server)?.to_string())
        }
        "CDRsV1.GetCDRs" => {
            let cdrs = state.cdrs.get(&filter).await.map_err(server)?;
            if cdrs.is_empty() {
                // v0.10's CDRsV1 wraps the store's NOT_FOUND.
                return Err(RpcError::server("SERVER_ERROR: NOT_FOUND"));
            }
            let out: Vec<V1Cdr<'_>> = cdrs.iter().map(V1Cdr::new).collect();
            serde_json::to_string(&out).map_err(|e| RpcError::server(format!("SERVER_ERROR: {e}")))
        }
        "APIerSv2.GetCDRs" => {
            let cdrs = state.cdrs.get(&filter).await.map_err(server)?;
            if cdrs.is_empty() {
                return Err(RpcError::server("NOT_FOUND"));
            }
            let out: Vec<ExternalCdr<'_>> = cdrs.iter().map(ExternalCdr::new).collect();
            serde_json::to_string(&out).map_err(|e| RpcError::server(format!("SERVER_ERROR: {e}")))
        }
        _ => Err(RpcError::new(
            code::METHOD_NOT_FOUND,
            format!("rpc: can't find method {method}"),
        )),
    }
}

/// The filter argument: CGRateS's `RPCCDRsFilter` with its wrappers'
/// fields (`Tenant`, `APIOpts`, `ArgDispatcher`) beside it. A value of
/// the wrong JSON type is Go's decoding error; a time, usage or cost that
/// does not parse is a `SERVER_ERROR`, as CGRateS's `AsCDRsFilter` reports
/// it.
pub(crate) fn parse_filter(params: &Value) -> Result<CdrFilter, RpcError> {
    let m = object(params, "utils.RPCCDRsFilterWithArgDispatcher")?;
    // Through text: exact costs (`MinCost`) keep their digits.
    serde_json::from_str::<CdrFilter>(&Value::Object(m).to_string()).map_err(|e| {
        let msg = e.to_string();
        if msg.starts_with("invalid CDR filter") {
            RpcError::server(format!("SERVER_ERROR: {msg}"))
        } else {
            RpcError::new(code::INVALID_PARAMS, format!("json: {msg}"))
        }
    })
}

/// A cost as a JSON number; -1, CGRateS's "not rated", when there is none.
fn cost_token(c: &Cdr) -> Box<RawValue> {
    let text = c.cost.map_or_else(|| "-1".to_owned(), rating::json_number);
    // A decimal's digits are always a JSON number (else: null).
    RawValue::from_string(text).unwrap_or_default()
}

/// `ExtraFields` with `DisconnectCause` in it, where CGRateS keeps it.
fn extra_fields(c: &Cdr) -> BTreeMap<&str, &str> {
    let mut m: BTreeMap<&str, &str> = c
        .extra_fields
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    if !c.disconnect_cause.is_empty() {
        m.entry("DisconnectCause").or_insert(&c.disconnect_cause);
    }
    m
}

/// `ExtraInfo`: why the CDR could not be rated (CGRateS keeps the rating
/// error there; AccuRate also has it in `ExtraFields.RatingError`).
fn extra_info(c: &Cdr) -> &str {
    c.extra_fields
        .get(sessions::cdr::extra::RATING_ERROR)
        .map_or("", String::as_str)
}

/// Go's zero time, CGRateS's answer time of an unanswered call.
const GO_ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// CGRateS's `engine.CDR` as `CDRsV1.GetCDRs` returns it.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct V1Cdr<'a> {
    #[serde(rename = "CGRID")]
    cgrid: &'a str,
    #[serde(rename = "RunID")]
    run_id: &'a str,
    #[serde(rename = "OrderID")]
    order_id: i64,
    origin_host: &'a str,
    source: &'a str,
    #[serde(rename = "OriginID")]
    origin_id: &'a str,
    #[serde(rename = "ToR")]
    tor: &'a str,
    request_type: &'a str,
    tenant: &'a str,
    category: &'a str,
    account: &'a str,
    subject: &'a str,
    destination: &'a str,
    setup_time: String,
    answer_time: String,
    usage: u64,
    extra_fields: BTreeMap<&'a str, &'a str>,
    extra_info: &'a str,
    partial: bool,
    pre_rated: bool,
    cost_source: &'a str,
    cost: Box<RawValue>,
    cost_details: Option<()>,
}

impl<'a> V1Cdr<'a> {
    fn new(c: &'a Cdr) -> Self {
        V1Cdr {
            cgrid: &c.cgrid,
            run_id: &c.run_id,
            order_id: 0,
            origin_host: &c.origin_host,
            source: &c.source,
            origin_id: &c.origin_id,
            tor: &c.tor,
            request_type: &c.request_type,
            tenant: &c.tenant,
            category: &c.category,
            account: &c.account,
            subject: &c.subject,
            destination: &c.destination,
            setup_time: sessions::cdr::go_time_ts(c.setup_time),
            answer_time: c
                .answer_time
                .map_or_else(|| GO_ZERO_TIME.to_owned(), sessions::cdr::go_time_ts),
            usage: c.usage_nanos(),
            extra_fields: extra_fields(c),
            extra_info: extra_info(c),
            partial: false,
            pre_rated: false,
            cost_source: &c.cost_source,
            cost: cost_token(c),
            cost_details: None,
        }
    }
}

/// CGRateS's `engine.ExternalCDR` as `APIerSv2.GetCDRs` returns it: times
/// as RFC 3339 seconds, usage as a Go duration.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct ExternalCdr<'a> {
    #[serde(rename = "CGRID")]
    cgrid: &'a str,
    #[serde(rename = "RunID")]
    run_id: &'a str,
    #[serde(rename = "OrderID")]
    order_id: i64,
    origin_host: &'a str,
    source: &'a str,
    #[serde(rename = "OriginID")]
    origin_id: &'a str,
    #[serde(rename = "ToR")]
    tor: &'a str,
    request_type: &'a str,
    tenant: &'a str,
    category: &'a str,
    account: &'a str,
    subject: &'a str,
    destination: &'a str,
    setup_time: String,
    answer_time: String,
    usage: String,
    extra_fields: BTreeMap<&'a str, &'a str>,
    cost_source: &'a str,
    cost: Box<RawValue>,
    cost_details: &'a str,
    extra_info: &'a str,
    pre_rated: bool,
}

/// Go's `time.RFC3339`: whole seconds, UTC.
fn rfc3339_secs(t: capture::Timestamp) -> String {
    chrono::DateTime::from_timestamp(t.secs(), 0).map_or_else(
        || sessions::cdr::rfc3339(t),
        |d| d.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
    )
}

impl<'a> ExternalCdr<'a> {
    fn new(c: &'a Cdr) -> Self {
        ExternalCdr {
            cgrid: &c.cgrid,
            run_id: &c.run_id,
            order_id: 0,
            origin_host: &c.origin_host,
            source: &c.source,
            origin_id: &c.origin_id,
            tor: &c.tor,
            request_type: &c.request_type,
            tenant: &c.tenant,
            category: &c.category,
            account: &c.account,
            subject: &c.subject,
            destination: &c.destination,
            setup_time: rfc3339_secs(c.setup_time),
            answer_time: c
                .answer_time
                .map_or_else(|| GO_ZERO_TIME.to_owned(), rfc3339_secs),
            // Go's `Duration.String()` for *voice, else the nanoseconds.
            usage: if c.tor == sessions::cdr::TOR_VOICE {
                rating::format_duration(c.usage)
            } else {
                c.usage_nanos().to_string()
            },
            extra_fields: extra_fields(c),
            cost_source: &c.cost_source,
            cost: cost_token(c),
            // CGRateS marshals the CDR's nil cost details: "null".
            cost_details: "null",
            extra_info: extra_info(c),
            pre_rated: false,
        }
    }
}

#[cfg(test)]
mod tests;
