//! The batching CDR writer: [`CdrWriter`] (the handle CDRs are queued
//! through) and [`WriterTask`] (the task that stores them); see the parent
//! module's documentation.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use sessions::{Cdr, CdrStore};
use tokio::sync::{mpsc, oneshot, watch};

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
    on_stored: Arc<OnceLock<StoredHook>>,
}

/// Called by the writer task with each CDR it newly stored (StatS's
/// feed); it must not block.
pub(crate) type StoredHook = Box<dyn Fn(&Cdr) + Send + Sync>;

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
        let on_stored = Arc::new(OnceLock::new());
        let task = WriterTask {
            rx,
            store,
            batch_size,
            flush_interval,
            stats: Arc::clone(&stats),
            give_up: None,
            abandoning: false,
            on_stored: Arc::clone(&on_stored),
        };
        (
            CdrWriter {
                tx,
                stats,
                on_stored,
            },
            task,
        )
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

    /// Sets the hook each newly stored CDR is shown to (once; `false`
    /// when one is set already).
    pub(crate) fn on_stored(&self, hook: StoredHook) -> bool {
        self.on_stored.set(hook).is_ok()
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
    /// Shown each newly stored CDR ([`CdrWriter::on_stored`]).
    on_stored: Arc<OnceLock<StoredHook>>,
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
                let hook = self.on_stored.get();
                for ((is_new, done), cdr) in new.into_iter().zip(dones).zip(cdrs) {
                    if is_new && let Some(h) = hook {
                        h(cdr);
                    }
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

/// A copy of a CDR store error for each waiter (`sessions::Error` is not
/// `Clone`: some variants hold rating errors; the store's are strings).
fn same_error(e: &sessions::Error) -> sessions::Error {
    match e {
        sessions::Error::CdrRejected(m) => sessions::Error::CdrRejected(m.clone()),
        sessions::Error::CdrStore(m) => sessions::Error::CdrStore(m.clone()),
        other => sessions::Error::CdrStore(other.to_string()),
    }
}
