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
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use jsonrpc::{RpcError, code};
use serde::Serialize;
use serde_json::Value;
use serde_json::value::RawValue;
use sessions::{Cdr, CdrFilter, CdrStore};
use tokio::sync::{mpsc, oneshot, watch};

use super::methods::{State, object};
use crate::config::CdrsSection;

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

/// The writer's counters (printed on shutdown).
#[derive(Debug, Default)]
pub(crate) struct WriterStats {
    /// CDRs queued.
    pub submitted: AtomicU64,
    /// Stored as new rows.
    pub stored: AtomicU64,
    /// Already stored (same CGRID and RunID): left as they were.
    pub duplicates: AtomicU64,
    /// Refused by the database, or given up on at shutdown with the
    /// database unreachable after [`ATTEMPTS_AT_SHUTDOWN`] tries: not
    /// stored.
    pub failed: AtomicU64,
    /// Given up on at shutdown: the database could not be reached within
    /// the shutdown's grace ([`WriterTask::give_up_on`]). Not stored; a
    /// call the session manager followed keeps its saved session or end,
    /// finished at the next start.
    pub abandoned: AtomicU64,
    /// Submitters that found the queue full and waited.
    pub queue_full: AtomicU64,
    /// Batches stored.
    pub batches: AtomicU64,
    /// Inserts retried after a database error.
    pub retries: AtomicU64,
}

impl WriterStats {
    /// CDRs queued and not yet stored or failed.
    pub(crate) fn pending(&self) -> u64 {
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        g(&self.submitted).saturating_sub(
            g(&self.stored) + g(&self.duplicates) + g(&self.failed) + g(&self.abandoned),
        )
    }

    /// Name and value of each counter.
    pub(crate) fn all(&self) -> [(&'static str, u64); 9] {
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        [
            ("cdrs_submitted", g(&self.submitted)),
            ("cdrs_stored", g(&self.stored)),
            ("cdrs_duplicate", g(&self.duplicates)),
            ("cdrs_failed", g(&self.failed)),
            ("cdrs_abandoned", g(&self.abandoned)),
            ("cdrs_pending", self.pending()),
            ("cdrs_queue_full", g(&self.queue_full)),
            ("cdr_batches", g(&self.batches)),
            ("cdr_insert_retries", g(&self.retries)),
        ]
    }
}

/// One queued CDR, with whoever waits for it to be durable.
struct Job {
    cdr: Cdr,
    done: Option<oneshot::Sender<Result<bool, sessions::Error>>>,
}

/// The handle CDRs are written through (cheap to clone).
// Written through by the session manager and `CDRsV1.ProcessCDR`, which
// come next; until then only the tests submit.
#[allow(dead_code)]
#[derive(Clone)]
pub(crate) struct CdrWriter {
    tx: mpsc::Sender<Job>,
    stats: Arc<WriterStats>,
}

impl std::fmt::Debug for CdrWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CdrWriter")
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

/// The writer is shut down: the CDR was not queued.
#[allow(dead_code)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the CDR writer is shut down")]
pub(crate) struct WriterClosed;

#[allow(dead_code)]
impl CdrWriter {
    /// A writer of batches of up to `batch_size` CDRs, each stored at most
    /// `flush_interval` after its first CDR came; the queue holds four
    /// batches.
    pub(crate) fn new(
        store: Arc<dyn CdrStore>,
        batch_size: usize,
        flush_interval: Duration,
    ) -> (CdrWriter, WriterTask) {
        let batch_size = batch_size.max(1);
        let (tx, rx) = mpsc::channel(batch_size.saturating_mul(4));
        let stats = Arc::new(WriterStats::default());
        let task = WriterTask {
            rx,
            store,
            batch_size,
            flush_interval,
            stats: Arc::clone(&stats),
            give_up: None,
            abandoning: false,
        };
        (CdrWriter { tx, stats }, task)
    }

    /// Queues `cdr`, waiting while the queue is full (counted as
    /// `cdrs_queue_full`).
    ///
    /// # Errors
    /// [`WriterClosed`] once the server is shutting down.
    pub(crate) async fn submit(&self, cdr: Cdr) -> Result<(), WriterClosed> {
        self.send(Job { cdr, done: None }).await
    }

    /// Queues `cdr` and returns once the batch holding it is committed:
    /// `true` when it is a new row, `false` when its (CGRID, RunID) was
    /// already stored.
    ///
    /// # Errors
    /// The database refused it, or the server shut down before it could
    /// be stored.
    pub(crate) async fn submit_wait(&self, cdr: Cdr) -> Result<bool, sessions::Error> {
        let closed = || sessions::Error::CdrStore(WriterClosed.to_string());
        let (tx, rx) = oneshot::channel();
        self.send(Job {
            cdr,
            done: Some(tx),
        })
        .await
        .map_err(|_| closed())?;
        rx.await.unwrap_or_else(|_| Err(closed()))
    }

    /// Queues `cdr` from a thread that may block (a session shard),
    /// waiting there while the queue is full (counted as
    /// `cdrs_queue_full`; `on_full` runs before that wait): the receiver
    /// answers once the batch holding it is committed, as
    /// [`CdrWriter::submit_wait`]. Never call it from an async task
    /// (tokio's blocking send refuses to run there).
    ///
    /// # Errors
    /// [`WriterClosed`] once the server is shutting down.
    pub(crate) fn submit_blocking(
        &self,
        cdr: Cdr,
        on_full: impl FnOnce(),
    ) -> Result<oneshot::Receiver<Result<bool, sessions::Error>>, WriterClosed> {
        let (tx, rx) = oneshot::channel();
        let job = Job {
            cdr,
            done: Some(tx),
        };
        match self.tx.try_send(job) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(job)) => {
                self.stats.queue_full.fetch_add(1, Ordering::Relaxed);
                on_full();
                self.tx.blocking_send(job).map_err(|_| WriterClosed)?;
            }
            Err(mpsc::error::TrySendError::Closed(_)) => return Err(WriterClosed),
        }
        self.stats.submitted.fetch_add(1, Ordering::Relaxed);
        Ok(rx)
    }

    /// The counters.
    pub(crate) fn stats(&self) -> &WriterStats {
        &self.stats
    }

    async fn send(&self, job: Job) -> Result<(), WriterClosed> {
        match self.tx.try_send(job) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(job)) => {
                self.stats.queue_full.fetch_add(1, Ordering::Relaxed);
                self.tx.send(job).await.map_err(|_| WriterClosed)?;
            }
            Err(mpsc::error::TrySendError::Closed(_)) => return Err(WriterClosed),
        }
        self.stats.submitted.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

/// The task that stores queued CDRs: [`WriterTask::run`].
pub(crate) struct WriterTask {
    rx: mpsc::Receiver<Job>,
    store: Arc<dyn CdrStore>,
    batch_size: usize,
    flush_interval: Duration,
    stats: Arc<WriterStats>,
    /// Once true (the shutdown's grace is over), an insert that does not
    /// succeed is not retried: see [`WriterTask::give_up_on`].
    give_up: Option<watch::Receiver<bool>>,
    /// Given up: what is queued is answered "not stored".
    abandoning: bool,
}

/// Inserts tried with the database unreachable once shutting down, before
/// the CDRs left are given up on.
const ATTEMPTS_AT_SHUTDOWN: u32 = 5;
/// How long the last insert may take once the shutdown's grace is over.
const LAST_TRY: Duration = Duration::from_secs(1);

/// Returns once `give_up` says true; never when its sender is gone
/// without saying it.
async fn fired(give_up: &mut watch::Receiver<bool>) {
    while !*give_up.borrow_and_update() {
        if give_up.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// Returns once `stop` says true (or its sender is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    while !*stop.borrow_and_update() {
        if stop.changed().await.is_err() {
            return;
        }
    }
}

impl WriterTask {
    /// Bounds the shutdown: once `give_up` says true, an insert in
    /// progress is cancelled, a failed one is not retried, and everything
    /// queued is answered "not stored" (counted `cdrs_abandoned`) and no
    /// more is taken, so the session shards waiting on the writer go on
    /// and stop, their calls' saved sessions and ends kept for the next
    /// start. A database that answers keeps storing until then.
    pub(crate) fn give_up_on(mut self, give_up: watch::Receiver<bool>) -> Self {
        self.give_up = Some(give_up);
        self
    }

    /// Stores batches until `stop`, then stores everything still queued
    /// and returns.
    pub(crate) async fn run(mut self, mut stop: watch::Receiver<bool>) {
        let mut stopping = false;
        loop {
            if self.abandoning {
                self.abandon_queued();
                break;
            }
            let first = if stopping {
                self.rx.recv().await
            } else {
                tokio::select! {
                    j = self.rx.recv() => j,
                    () = stopped(&mut stop) => {
                        stopping = true;
                        // No more submissions; what is queued still comes.
                        self.rx.close();
                        continue;
                    }
                }
            };
            let Some(first) = first else { break };
            let mut batch = vec![first];
            let deadline = tokio::time::Instant::now() + self.flush_interval;
            while batch.len() < self.batch_size {
                match self.rx.try_recv() {
                    Ok(j) => {
                        batch.push(j);
                        continue;
                    }
                    Err(mpsc::error::TryRecvError::Disconnected) => break,
                    Err(mpsc::error::TryRecvError::Empty) if stopping => break,
                    Err(mpsc::error::TryRecvError::Empty) => {}
                }
                tokio::select! {
                    j = self.rx.recv() => match j {
                        Some(j) => batch.push(j),
                        None => break,
                    },
                    () = tokio::time::sleep_until(deadline) => break,
                    () = stopped(&mut stop) => {
                        stopping = true;
                        self.rx.close();
                    }
                }
            }
            self.flush(batch, stopping).await;
        }
    }

    /// No more CDRs taken; those queued answered "not stored".
    fn abandon_queued(&mut self) {
        self.rx.close();
        let mut jobs = Vec::new();
        while let Ok(j) = self.rx.try_recv() {
            jobs.push(j);
        }
        let (cdrs, dones): (Vec<Cdr>, Vec<_>) = jobs.into_iter().map(|j| (j.cdr, j.done)).unzip();
        self.abandon(&cdrs, dones);
    }

    fn abandon(
        &self,
        cdrs: &[Cdr],
        dones: Vec<Option<oneshot::Sender<Result<bool, sessions::Error>>>>,
    ) {
        let n = u64::try_from(cdrs.len()).unwrap_or(u64::MAX);
        self.stats.abandoned.fetch_add(n, Ordering::Relaxed);
        for c in cdrs {
            tracing::error!(cgrid = %c.cgrid, run_id = %c.run_id, origin_id = %c.origin_id,
                "CDR not stored: the CDR database cannot be reached and the server is stopping");
        }
        for d in dones.into_iter().flatten() {
            let _ = d.send(Err(sessions::Error::CdrStore(
                "not stored: the server stopped with the CDR database unreachable".to_owned(),
            )));
        }
    }

    /// Whether the shutdown's grace is over.
    fn given_up(&self) -> bool {
        self.give_up.as_ref().is_some_and(|g| *g.borrow())
    }

    async fn flush(&mut self, batch: Vec<Job>, stopping: bool) {
        if self.abandoning {
            let (cdrs, dones): (Vec<Cdr>, Vec<_>) =
                batch.into_iter().map(|j| (j.cdr, j.done)).unzip();
            self.abandon(&cdrs, dones);
            return;
        }
        let (cdrs, dones): (Vec<Cdr>, Vec<_>) = batch.into_iter().map(|j| (j.cdr, j.done)).unzip();
        let r = self.insert(&cdrs, stopping).await;
        if self.abandoning {
            self.abandon(&cdrs, dones);
            return;
        }
        match r {
            Err(sessions::Error::CdrRejected(e)) if cdrs.len() > 1 => {
                tracing::warn!(error = %e, cdrs = cdrs.len(), "CDR batch refused, storing its CDRs one by one");
                for (cdr, done) in cdrs.chunks(1).zip(dones) {
                    let r = self.insert(cdr, stopping).await;
                    if self.abandoning {
                        self.abandon(cdr, vec![done]);
                    } else {
                        self.answer(cdr, r, vec![done]);
                    }
                }
            }
            r => self.answer(&cdrs, r, dones),
        }
    }

    /// Counts the outcome and tells the waiters.
    fn answer(
        &self,
        cdrs: &[Cdr],
        r: Result<Vec<bool>, sessions::Error>,
        dones: Vec<Option<oneshot::Sender<Result<bool, sessions::Error>>>>,
    ) {
        match r {
            Ok(new) => {
                self.stats.batches.fetch_add(1, Ordering::Relaxed);
                for (is_new, done) in new.into_iter().zip(dones) {
                    let c = if is_new {
                        &self.stats.stored
                    } else {
                        &self.stats.duplicates
                    };
                    c.fetch_add(1, Ordering::Relaxed);
                    if let Some(d) = done {
                        let _ = d.send(Ok(is_new));
                    }
                }
            }
            Err(e) => {
                let n = u64::try_from(cdrs.len()).unwrap_or(u64::MAX);
                self.stats.failed.fetch_add(n, Ordering::Relaxed);
                for c in cdrs {
                    tracing::error!(cgrid = %c.cgrid, run_id = %c.run_id, origin_id = %c.origin_id, error = %e, "CDR not stored");
                }
                for d in dones.into_iter().flatten() {
                    let _ = d.send(Err(same_error(&e)));
                }
            }
        }
    }

    /// One insert, retried with a backoff while the database cannot be
    /// reached (at most [`ATTEMPTS_AT_SHUTDOWN`] times when stopping); a
    /// refusal is returned at once.
    /// Given up ([`WriterTask::give_up_on`]): `Err` with `abandoning`
    /// set.
    async fn insert(&mut self, cdrs: &[Cdr], stopping: bool) -> Result<Vec<bool>, sessions::Error> {
        let mut backoff = Duration::from_millis(100);
        let mut attempts = 0u32;
        let abandoned = || sessions::Error::CdrStore("given up at shutdown".to_owned());
        loop {
            if self.given_up() {
                // One last short try: a database that answers still takes
                // the CDRs; one that does not is given up on.
                return match tokio::time::timeout(LAST_TRY, self.store.insert(cdrs)).await {
                    Ok(Ok(r)) => Ok(r),
                    Ok(Err(e @ sessions::Error::CdrRejected(_))) => Err(e),
                    Ok(Err(_)) | Err(_) => {
                        self.abandoning = true;
                        Err(abandoned())
                    }
                };
            }
            let r = match self.give_up.clone() {
                None => self.store.insert(cdrs).await,
                Some(mut g) => tokio::select! {
                    r = self.store.insert(cdrs) => r,
                    // Cut short (a connection attempt may take the pool's
                    // whole acquire timeout): the last try above.
                    () = fired(&mut g) => continue,
                },
            };
            match r {
                Ok(r) => return Ok(r),
                Err(e @ sessions::Error::CdrRejected(_)) => return Err(e),
                Err(e) => {
                    attempts += 1;
                    if stopping && attempts >= ATTEMPTS_AT_SHUTDOWN {
                        return Err(e);
                    }
                    self.stats.retries.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(error = %e, cdrs = cdrs.len(), retry_in = ?backoff, "CDR insert failed, retrying");
                    match self.give_up.clone() {
                        None => tokio::time::sleep(backoff).await,
                        Some(mut g) => tokio::select! {
                            () = tokio::time::sleep(backoff) => {}
                            () = fired(&mut g) => {}
                        },
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
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

/// A copy of a CDR store error for each waiter (`sessions::Error` is not
/// `Clone`: some variants hold rating errors; the store's are strings).
fn same_error(e: &sessions::Error) -> sessions::Error {
    match e {
        sessions::Error::CdrRejected(m) => sessions::Error::CdrRejected(m.clone()),
        sessions::Error::CdrStore(m) => sessions::Error::CdrStore(m.clone()),
        other => sessions::Error::CdrStore(other.to_string()),
    }
}
