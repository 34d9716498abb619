//! A shard's pending forgets: the saved keys of sessions (and passive
//! calls' dialogs) to remove once their CDR is committed. Bounded
//! ([`MAX_PENDING`]: then the shard waits for the oldest commit), resolved
//! in order (the CDR writer commits in the order it is given), and
//! removed on the shard's own forget thread, so the store's fsyncs of the
//! removes overlap the shard's saves; the thread removes whatever is
//! queued in one batch ([`SessionStore::apply_batch`]).

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{SyncSender, TrySendError};
use std::thread::Scope;
use std::time::Instant;

use sessions::SessionStore;

use super::{DriverCounters, Pending, forget};

/// What runs once a tracked CDR is committed (`true`) or failed
/// (`false`): an API reply that waits for its CDR.
pub(crate) type Then = Box<dyn FnOnce(bool) + Send>;

/// Sessions whose CDR is not committed yet, per shard: past this the
/// shard waits for the oldest commit before it goes on.
pub(crate) const MAX_PENDING: usize = 1024;
/// Batches of keys queued for a shard's forget thread.
const QUEUE: usize = 256;

/// One shard's pending forgets (see the module documentation).
pub(super) struct Forgets<'a> {
    index: usize,
    pending: VecDeque<(Pending, Vec<String>, Option<Then>)>,
    /// The forget thread; `None`: removed inline.
    tx: Option<SyncSender<Vec<String>>>,
    store: &'a dyn SessionStore,
    counters: &'a DriverCounters,
}

impl<'a> Forgets<'a> {
    /// Starts shard `index`'s forget thread in `scope`; it ends once this
    /// is dropped, after what is queued.
    pub(super) fn start<'scope>(
        scope: &'scope Scope<'scope, '_>,
        index: usize,
        store: &'a dyn SessionStore,
        counters: &'a DriverCounters,
    ) -> Self
    where
        'a: 'scope,
    {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<String>>(QUEUE);
        let thread = std::thread::Builder::new()
            .name(format!("forgets-{index}"))
            .spawn_scoped(scope, move || {
                // Everything queued meanwhile goes in the same batch.
                while let Ok(mut keys) = rx.recv() {
                    while let Ok(more) = rx.try_recv() {
                        keys.extend(more);
                    }
                    forget(store, counters, &keys);
                }
            });
        if let Err(e) = &thread {
            tracing::warn!(shard = index, error = %e, "no forget thread: the shard removes its keys itself");
        }
        Forgets {
            index,
            pending: VecDeque::new(),
            tx: thread.is_ok().then_some(tx),
            store,
            counters,
        }
    }

    /// Whether no CDR is awaited.
    pub(super) fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// Remembers `keys` to remove once `pending` is durable; with
    /// [`MAX_PENDING`] already waiting, waits for the oldest first.
    pub(super) fn track(&mut self, pending: Pending, keys: Vec<String>, then: Option<Then>) {
        self.reap();
        if self.pending.len() >= MAX_PENDING
            && let Some((oldest, keys, then)) = self.pending.pop_front()
        {
            self.counters.forget_waits.fetch_add(1, Ordering::Relaxed);
            let durable = oldest.wait(None).unwrap_or(false);
            self.forget_if(durable, keys);
            run(then, durable);
        }
        self.pending.push_back((pending, keys, then));
    }

    /// Removes the keys of the CDRs committed since the last look.
    pub(super) fn reap(&mut self) {
        let mut ready = Vec::new();
        while let Some(durable) = self.pending.front_mut().and_then(|(p, _, _)| p.poll()) {
            if let Some((_, keys, then)) = self.pending.pop_front() {
                if durable {
                    ready.extend(keys);
                } else {
                    self.forget_if(false, keys);
                }
                run(then, durable);
            }
        }
        if !ready.is_empty() {
            self.forget_if(true, ready);
        }
    }

    /// At shutdown: waits (until `until`) for every CDR pending and
    /// removes its keys; the ones still unknown stay saved (restored at
    /// the next start, where their end replays harmlessly).
    pub(super) fn finish(&mut self, until: Instant) {
        while let Some((p, keys, then)) = self.pending.pop_front() {
            match p.wait(Some(until)) {
                Some(durable) => {
                    self.forget_if(durable, keys);
                    run(then, durable);
                }
                None => {
                    tracing::warn!(
                        shard = self.index,
                        left = self.pending.len() + 1,
                        "CDRs not committed at shutdown: their sessions stay saved"
                    );
                    self.pending.clear();
                }
            }
        }
    }

    /// Hands `keys` to the forget thread when their CDR is durable
    /// (waiting, counted, while its queue is full); else counts the CDR
    /// not stored (its session stays saved).
    fn forget_if(&self, durable: bool, keys: Vec<String>) {
        let c = self.counters;
        if !durable {
            c.cdrs_unstored.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let keys = match &self.tx {
            Some(tx) => match tx.try_send(keys) {
                Ok(()) => return,
                Err(TrySendError::Full(keys)) => {
                    c.forget_waits.fetch_add(1, Ordering::Relaxed);
                    match tx.send(keys) {
                        Ok(()) => return,
                        Err(e) => e.0,
                    }
                }
                Err(TrySendError::Disconnected(keys)) => keys,
            },
            None => keys,
        };
        forget(self.store, c, &keys);
    }
}

/// Runs a tracked CDR's `then`, if any.
fn run(then: Option<Then>, durable: bool) {
    if let Some(f) = then {
        f(durable);
    }
}
