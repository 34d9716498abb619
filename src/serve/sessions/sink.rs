//! Where the session manager's CDRs go: one trait, so the CDR store's
//! batching writer plugs in at one place.

use sessions::Cdr;

/// Called once a submitted CDR is durable (`true`) or could not be stored
/// (`false`).
pub(crate) type Durable = Box<dyn FnOnce(bool) + Send>;

/// Takes the CDRs the session manager writes.
pub(crate) trait CdrSink: Send + Sync {
    /// Queues `cdr`; `durable` runs once it is stored or failed (on any
    /// thread; it may block briefly).
    fn submit(&self, cdr: Cdr, durable: Durable);
}

/// The sink used while no CDR store is configured: each CDR is logged
/// (`debug`) and is "durable" at once.
#[derive(Debug, Default)]
pub(crate) struct LogSink;

impl CdrSink for LogSink {
    fn submit(&self, cdr: Cdr, durable: Durable) {
        tracing::debug!(cgrid = %cdr.cgrid, run_id = %cdr.run_id, cost = ?cdr.cost, "CDR");
        durable(true);
    }
}
