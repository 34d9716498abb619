//! Where the session manager's CDRs go: one trait, so the shards do not
//! know the CDR store; [`WriterSink`] hands them to the batching
//! [`CdrWriter`].
//!
//! Back-pressure: a shard submits on its own thread and waits there while
//! the writer's bounded queue is full (a slow or unreachable CDR
//! database), so the shard stops taking commands and its callers wait in
//! turn, instead of CDRs piling up in memory. Nothing waits on the async
//! workers.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use sessions::Cdr;
use tokio::sync::oneshot;

use crate::serve::cdrs::CdrWriter;

/// Takes the CDRs the session manager writes.
pub(crate) trait CdrSink: Send + Sync {
    /// Queues `cdr`, blocking the calling thread while the queue is full
    /// (call it from a thread that may block, never an async task); adds
    /// one to `waits` before such a wait. The answer resolves once the
    /// CDR is durable, or could not be stored.
    fn submit(&self, cdr: Cdr, waits: &AtomicU64) -> Pending;
}

/// A submitted CDR, until it is durable (`true`) or could not be stored
/// (`false`).
#[derive(Debug)]
pub(crate) struct Pending(Option<oneshot::Receiver<Result<bool, sessions::Error>>>);

/// How often a wait with a deadline looks again.
const POLL: Duration = Duration::from_millis(5);

impl Pending {
    /// Resolved already: stored (`true`) or not (`false`).
    pub(crate) fn done(ok: bool) -> Pending {
        let (tx, rx) = oneshot::channel();
        let _ = tx.send(if ok {
            Ok(true)
        } else {
            Err(sessions::Error::CdrStore("not stored".to_owned()))
        });
        Pending(Some(rx))
    }

    /// Resolved by whoever holds `tx` (its drop: not stored).
    pub(crate) fn new(rx: oneshot::Receiver<Result<bool, sessions::Error>>) -> Pending {
        Pending(Some(rx))
    }

    /// The outcome if it is known, without waiting.
    pub(crate) fn poll(&mut self) -> Option<bool> {
        let rx = self.0.as_mut()?;
        let out = match rx.try_recv() {
            Ok(r) => r.is_ok(),
            Err(oneshot::error::TryRecvError::Empty) => return None,
            Err(oneshot::error::TryRecvError::Closed) => false,
        };
        self.0 = None;
        Some(out)
    }

    /// Waits for the outcome (blocking the thread), at most until `until`
    /// when given (`None` then, if still unknown).
    pub(crate) fn wait(mut self, until: Option<Instant>) -> Option<bool> {
        match until {
            None => {
                let rx = self.0.take()?;
                Some(matches!(rx.blocking_recv(), Ok(Ok(_))))
            }
            Some(end) => loop {
                if let Some(r) = self.poll() {
                    return Some(r);
                }
                if Instant::now() >= end {
                    return None;
                }
                std::thread::sleep(POLL);
            },
        }
    }
}

/// The CDR writer as a sink: each CDR is queued on the writer's bounded
/// channel from the shard's thread (waiting there while it is full), and
/// resolves once the batch holding it is committed; a CDR already stored
/// (same CGRID and RunID) is durable too.
#[derive(Debug)]
pub(crate) struct WriterSink {
    writer: CdrWriter,
}

impl WriterSink {
    /// A sink over `writer`.
    pub(crate) fn new(writer: CdrWriter) -> Self {
        WriterSink { writer }
    }
}

impl CdrSink for WriterSink {
    fn submit(&self, cdr: Cdr, waits: &AtomicU64) -> Pending {
        let (cgrid, run_id) = (cdr.cgrid.clone(), cdr.run_id.clone());
        let full = || {
            waits.fetch_add(1, Ordering::Relaxed);
        };
        match self.writer.submit_blocking(cdr, full) {
            Ok(rx) => Pending::new(rx),
            Err(e) => {
                tracing::warn!(cgrid = %cgrid, run_id = %run_id, error = %e, "CDR not stored");
                Pending::done(false)
            }
        }
    }
}
