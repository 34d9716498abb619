//! Where the session manager's CDRs go: one trait, so the shards do not
//! know the CDR store; [`WriterSink`] hands them to the batching
//! [`CdrWriter`].

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use sessions::Cdr;

use crate::serve::cdrs::CdrWriter;

/// Called once a submitted CDR is durable (`true`) or could not be stored
/// (`false`).
pub(crate) type Durable = Box<dyn FnOnce(bool) + Send>;

/// Takes the CDRs the session manager writes.
pub(crate) trait CdrSink: Send + Sync {
    /// Queues `cdr`; `durable` runs once it is stored or failed (on any
    /// thread; it may block briefly).
    fn submit(&self, cdr: Cdr, durable: Durable);
}

/// The CDR writer as a sink: each CDR is queued from the runtime and its
/// `durable` runs (on a blocking thread) once the batch holding it is
/// committed; a CDR already stored (same CGRID and RunID) is durable too.
#[derive(Debug)]
pub(crate) struct WriterSink {
    writer: CdrWriter,
    rt: tokio::runtime::Handle,
    inflight: Arc<AtomicUsize>,
}

impl WriterSink {
    /// A sink over `writer`, its waits spawned on `rt`.
    pub(crate) fn new(writer: CdrWriter, rt: tokio::runtime::Handle) -> Self {
        WriterSink {
            writer,
            rt,
            inflight: Arc::default(),
        }
    }

    /// Waits (at most `limit`) until every submitted CDR's `durable` has
    /// run: at shutdown, after the writer flushed, so the sessions of
    /// stored CDRs are forgotten before the process ends.
    pub(crate) async fn drain(&self, limit: Duration) {
        let end = Instant::now() + limit;
        while self.inflight.load(Ordering::Acquire) > 0 && Instant::now() < end {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

impl CdrSink for WriterSink {
    fn submit(&self, cdr: Cdr, durable: Durable) {
        let w = self.writer.clone();
        let inflight = Arc::clone(&self.inflight);
        inflight.fetch_add(1, Ordering::AcqRel);
        self.rt.spawn(async move {
            let (cgrid, run_id) = (cdr.cgrid.clone(), cdr.run_id.clone());
            let ok = match w.submit_wait(cdr).await {
                Ok(_) => true,
                Err(e) => {
                    tracing::warn!(cgrid = %cgrid, run_id = %run_id, error = %e, "CDR not stored");
                    false
                }
            };
            let _ = tokio::task::spawn_blocking(move || durable(ok)).await;
            inflight.fetch_sub(1, Ordering::AcqRel);
        });
    }
}
