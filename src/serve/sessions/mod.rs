//! The session driver of `accurate serve`: the sans-IO
//! [`sessions::SessionManager`] run on `[sessions] shards` threads.
//!
//! Each shard is one std thread owning one manager, fed by one bounded
//! channel of [`Cmd`]s (API operations with a oneshot reply, dialog events
//! of passive calls, listings, shutdown). A call always goes to the same
//! shard (by a hash of its CGRID), so its events are handled in order and
//! by one manager. The loop waits for a command at most until the
//! manager's next deadline ([`sessions::SessionManager::poll_timeout`]),
//! then fires the deadlines due and carries out the manager's actions:
//!
//! - `WriteCdr`: to the [`CdrSink`], on the shard's thread, which waits
//!   there while the CDR writer's queue is full (a slow CDR database):
//!   the shard's callers wait in turn, nothing piles up in memory. The
//!   CDRs of a round are handed over together at its end, after one flush
//!   of the round's store writes (not one flush per CDR);
//! - `Save`: the session's JSON into the [`sessions::SessionStore`] (key
//!   `s:CGRID:RUNID`), buffered with the shard's other store writes
//!   ([`writes`]) and made durable in one batch before any account
//!   update, CDR or reply that follows it, and at the end of each round
//!   of commands (up to [`ROUND`] queued ones);
//! - `Forget`: that key removed, but only once the CDR emitted just before
//!   it is durable (the sink says so: the shard keeps a bounded queue of
//!   pending forgets, [`forgets::MAX_PENDING`], resolved in order as the
//!   writer commits; when it is full the shard waits for the oldest, and
//!   at shutdown for all of them, at most [`STOP_WAIT`]; the removes run
//!   on the shard's own forget thread, so their fsyncs overlap the
//!   shard's saves), so a `kill -9` in between leaves the session in
//!   the store: restored at the next start, its end replays
//!   harmlessly (the charge is idempotent by the account's marks, the CDR
//!   by CGRID + RunID);
//! - `Disconnect`: a passive call is logged and counted (its CDR is
//!   flagged by the manager); other owners are asked through the
//!   [`Disconnect`] registered for them, an unknown owner is logged and
//!   counted.
//!
//! Passive calls also keep their dialog: on Answer and Update the dialog
//! task's [`DialogSnapshot`] is saved (key `d:CGRID`) and restored into
//! the new dialog machine at start, so a BYE after a restart ends the
//! call; it is removed with the session once the call's CDR is durable.

mod config;
pub(crate) mod derive;
pub(crate) mod flags;
mod force;
mod forgets;
mod runs;
mod shard;
mod sink;
mod timed;
mod writes;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TryRecvError, TrySendError};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use chrono::Utc;
use rating::TariffStore as _;
use sessions::{
    Action, Charging, Counters, Disconnect, EndIntent, Owner, Reply, SessionEvent, SessionKey,
    SessionManager, SessionSnapshot, SessionStore,
};
use sip_fsm::{DialogEvent, DialogSnapshot};
use tokio::sync::oneshot;

pub(crate) use config::SessionsSection;
pub(crate) use force::Forced;
use forgets::Forgets;
use shard::{Shard, forget, run_shard};
pub(crate) use sink::{CdrSink, Pending, WriterSink};
use writes::StoreWrites;

use super::methods::State;

/// Commands queued per shard.
const SHARD_QUEUE: usize = 4096;
/// The longest a shard waits without looking at the clock.
const MAX_WAIT: Duration = Duration::from_secs(1);
/// How often a shard with forgets pending looks for commits.
const REAP_EVERY: Duration = Duration::from_millis(10);
/// Commands a shard handles in one round (their store writes made durable
/// together) before it looks at its deadlines and commits again.
const ROUND: usize = 64;
/// The longest a stopping shard waits for its CDRs to be committed.
const STOP_WAIT: Duration = Duration::from_secs(10);
/// Key prefix of a saved session.
const SESSION_PREFIX: &str = "s:";
/// Key prefix of a saved dialog (passive calls).
const DIALOG_PREFIX: &str = "d:";
/// Key prefix of a passive call's end made durable before its charge.
const END_PREFIX: &str = "e:";

/// A session operation of the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    /// `AuthorizeEvent`.
    Authorize,
    /// `InitiateSession`.
    Initiate,
    /// `UpdateSession`.
    Update,
    /// `TerminateSession`.
    Terminate,
    /// `ProcessCDR`.
    ProcessCdr,
}

type Answer<T> = oneshot::Sender<T>;

/// What a shard is asked to do.
enum Cmd {
    Api {
        op: Op,
        /// The call's runs (one: no ChargerS), all of one CGRID.
        evs: Vec<SessionEvent>,
        reply: Answer<Result<Reply, sessions::Error>>,
    },
    Dialog {
        ev: Box<DialogEvent>,
        snap: Option<Box<DialogSnapshot>>,
    },
    List(Answer<Vec<SessionSnapshot>>),
    Force {
        keys: Vec<SessionKey>,
        reason: String,
        reply: Answer<Forced>,
    },
    Stop,
}

/// Counters of the driver itself (the managers' are per shard).
#[derive(Debug, Default)]
pub(crate) struct DriverCounters {
    /// Disconnects of passive calls (logged: nobody can end them).
    pub passive_disconnects: AtomicU64,
    /// Disconnects sent to an owner's [`Disconnect`].
    pub disconnects_sent: AtomicU64,
    /// Disconnects that found no owner registered, or failed.
    pub disconnects_failed: AtomicU64,
    /// Session store writes that failed.
    pub store_errors: AtomicU64,
    /// Batches of session store writes made durable together (shards'
    /// flushes and forget threads' removes).
    pub store_batches: AtomicU64,
    /// Session store writes (puts and removes) in those batches.
    pub store_writes: AtomicU64,
    /// Sessions restored at start.
    pub restored: AtomicU64,
    /// Dialog events handled.
    pub dialog_events: AtomicU64,
    /// CDRs a shard submitted after waiting for room in the CDR writer's
    /// queue (the CDR database is slower than the calls).
    pub cdr_queue_waits: AtomicU64,
    /// Times a shard waited on its forgets: for a CDR commit because
    /// [`forgets::MAX_PENDING`] sessions were waiting for theirs, or for
    /// room in its forget thread's queue.
    pub forget_waits: AtomicU64,
    /// Sessions (or dialogs) whose CDR could not be stored (refused, or
    /// the writer shut down): they stay saved.
    pub cdrs_unstored: AtomicU64,
    /// Passive calls allocated over a resource limit (their CDRs flagged
    /// `ResourceLimitExceeded`).
    pub resource_limit_exceeded: AtomicU64,
}

/// `ExtraFields` flag of a passive call allocated over a resource limit.
pub(crate) const EXTRA_RESOURCE_LIMIT: &str = "ResourceLimitExceeded";

/// The owners a disconnect can be sent to, by [`Owner`]'s text.
pub(crate) type Registry = Mutex<HashMap<String, Arc<dyn Disconnect + Send + Sync>>>;

/// What the shards share.
struct Shared {
    state: Arc<State>,
    store: Arc<dyn SessionStore>,
    sink: Arc<dyn CdrSink>,
    counters: Arc<DriverCounters>,
    owners: Arc<Registry>,
    published: Arc<Mutex<Vec<Counters>>>,
}

/// The running shards.
pub(crate) struct Sessions {
    shards: Vec<SyncSender<Cmd>>,
    threads: Mutex<Vec<std::thread::JoinHandle<()>>>,
    /// The driver's counters.
    pub counters: Arc<DriverCounters>,
    /// Who can be asked to end a call: the agents register here when
    /// they come (an owner missing is logged and counted).
    #[allow(dead_code)]
    pub owners: Arc<Registry>,
    published: Arc<Mutex<Vec<Counters>>>,
    keep_marks: Duration,
    cdr_source: String,
}

impl std::fmt::Debug for Sessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sessions")
            .field("shards", &self.shards.len())
            .finish_non_exhaustive()
    }
}

/// The session manager stopped (shutdown): the command was not run.
fn stopped() -> sessions::Error {
    sessions::Error::Store("the session manager is shutting down".to_owned())
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// FNV-1a of the CGRID: which shard a call belongs to.
fn shard_of(cgrid: &str, n: usize) -> usize {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in cgrid.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    usize::try_from(h % n.max(1) as u64).unwrap_or(0)
}

/// The store key of a session.
fn session_key(k: &SessionKey) -> String {
    format!("{SESSION_PREFIX}{}:{}", k.cgrid, k.run_id)
}

/// The store key of a passive call's end ([`sessions::EndIntent`]).
fn end_key(k: &SessionKey) -> String {
    format!("{END_PREFIX}{}:{}", k.cgrid, k.run_id)
}

/// The store key of a passive call's dialog.
fn dialog_key(cgrid: &str) -> String {
    format!("{DIALOG_PREFIX}{cgrid}")
}

impl Sessions {
    /// Reads the saved sessions and dialogs from `store` and starts the
    /// shards with the sessions restored. Returns the driver and the saved
    /// dialogs, to restore into the dialog machine before packets flow.
    pub(crate) fn start(
        state: Arc<State>,
        section: &SessionsSection,
        store: Arc<dyn SessionStore>,
        sink: Arc<dyn CdrSink>,
    ) -> anyhow::Result<(Arc<Sessions>, Vec<DialogSnapshot>)> {
        let n = section.shards.max(1);
        let saved = store
            .list()
            .map_err(|e| anyhow::anyhow!("reading the saved sessions: {e}"))?;
        let mut by_shard: Vec<Vec<SessionSnapshot>> = (0..n).map(|_| Vec::new()).collect();
        let mut ends: Vec<Vec<EndIntent>> = (0..n).map(|_| Vec::new()).collect();
        let mut dialogs = Vec::new();
        let mut dialog_keys: Vec<HashSet<String>> = (0..n).map(|_| HashSet::new()).collect();
        for (k, v) in saved {
            if k.starts_with(SESSION_PREFIX) {
                match serde_json::from_slice::<SessionSnapshot>(&v) {
                    Ok(s) => {
                        let i = shard_of(&s.key.cgrid, n);
                        if let Some(list) = by_shard.get_mut(i) {
                            list.push(s);
                        }
                    }
                    Err(e) => tracing::warn!(key = %k, error = %e, "unreadable saved session"),
                }
            } else if k.starts_with(END_PREFIX) {
                match serde_json::from_slice::<EndIntent>(&v) {
                    Ok(e) => {
                        let i = shard_of(&e.key.cgrid, n);
                        if let Some(list) = ends.get_mut(i) {
                            list.push(e);
                        }
                    }
                    Err(e) => tracing::warn!(key = %k, error = %e, "unreadable saved call end"),
                }
            } else if k.starts_with(DIALOG_PREFIX) {
                match serde_json::from_slice::<DialogSnapshot>(&v) {
                    Ok(d) => {
                        let cgrid = SessionEvent::key_of_call(&d.call.to_info()).cgrid;
                        if let Some(set) = dialog_keys.get_mut(shard_of(&cgrid, n)) {
                            set.insert(k.clone());
                        }
                        dialogs.push(d);
                    }
                    Err(e) => tracing::warn!(key = %k, error = %e, "unreadable saved dialog"),
                }
            }
        }
        // A call whose end was saved has ended: its dialog is not followed
        // again (its key goes with the end's CDR).
        let ended: HashSet<&str> = ends
            .iter()
            .flatten()
            .map(|e| e.key.cgrid.as_str())
            .collect();
        dialogs.retain(|d: &DialogSnapshot| {
            !ended.contains(SessionEvent::key_of_call(&d.call.to_info()).cgrid.as_str())
        });
        let counters = Arc::new(DriverCounters::default());
        let owners: Arc<Registry> = Arc::default();
        let published = Arc::new(Mutex::new(vec![Counters::default(); n]));
        let mut shards = Vec::with_capacity(n);
        let mut threads = Vec::with_capacity(n);
        let now = Utc::now();
        for (i, ((restore, saved_dialogs), ends)) in
            by_shard.into_iter().zip(dialog_keys).zip(ends).enumerate()
        {
            let (tx, rx) = std::sync::mpsc::sync_channel(SHARD_QUEUE);
            let mut mgr = SessionManager::new(section.config.clone());
            let got = mgr.restore(restore, now);
            counters.restored.fetch_add(got as u64, Ordering::Relaxed);
            let shared = Shared {
                state: Arc::clone(&state),
                store: Arc::clone(&store),
                sink: Arc::clone(&sink),
                counters: Arc::clone(&counters),
                owners: Arc::clone(&owners),
                published: Arc::clone(&published),
            };
            let t = std::thread::Builder::new()
                .name(format!("sessions-{i}"))
                .spawn(move || run_shard(i, mgr, saved_dialogs, ends, &shared, &rx))
                .map_err(|e| anyhow::anyhow!("cannot start a session thread: {e}"))?;
            shards.push(tx);
            threads.push(t);
        }
        Ok((
            Arc::new(Sessions {
                shards,
                threads: Mutex::new(threads),
                counters,
                owners,
                published,
                keep_marks: section.config.keep_charged_marks,
                cdr_source: section.config.cdr_source.clone(),
            }),
            dialogs,
        ))
    }

    /// `[sessions] keep-charged-marks`: how long the accounts keep the
    /// charged marks of ended sessions (the re-rate prunes by it too).
    pub(crate) fn keep_marks(&self) -> Duration {
        self.keep_marks
    }

    /// `[sessions] cdr-source`: the `Source` of CDRs whose event names
    /// none.
    pub(crate) fn cdr_source(&self) -> &str {
        &self.cdr_source
    }

    /// How many sessions were restored at start.
    pub(crate) fn restored(&self) -> u64 {
        self.counters.restored.load(Ordering::Relaxed)
    }

    /// The managers' counters summed over the shards (as of each shard's
    /// last step), then the driver's (`sessions.passive_disconnects`...).
    pub(crate) fn all_counters(&self) -> Vec<(&'static str, u64)> {
        let all = lock(&self.published).clone();
        let mut sum: Vec<(&'static str, u64)> = Counters::default().named().to_vec();
        for c in &all {
            for (slot, (_, v)) in sum.iter_mut().zip(c.named()) {
                slot.1 += v;
            }
        }
        let d = &self.counters;
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        sum.extend([
            ("sessions.passive_disconnects", g(&d.passive_disconnects)),
            ("sessions.disconnects_sent", g(&d.disconnects_sent)),
            ("sessions.disconnects_failed", g(&d.disconnects_failed)),
            ("sessions.store_errors", g(&d.store_errors)),
            ("sessions.store_batches", g(&d.store_batches)),
            ("sessions.store_writes", g(&d.store_writes)),
            ("sessions.restored", g(&d.restored)),
            ("sessions.dialog_events", g(&d.dialog_events)),
            ("sessions.cdr_queue_waits", g(&d.cdr_queue_waits)),
            ("sessions.forget_waits", g(&d.forget_waits)),
            ("sessions.cdrs_unstored", g(&d.cdrs_unstored)),
            (
                "sessions.resource_limit_exceeded",
                g(&d.resource_limit_exceeded),
            ),
        ]);
        sum
    }

    /// Queues `cmd` on shard `i`, waiting (off the async workers) when the
    /// queue is full.
    async fn send(&self, i: usize, cmd: Cmd) -> Result<(), sessions::Error> {
        let tx = self.shards.get(i).ok_or_else(stopped)?;
        match tx.try_send(cmd) {
            Ok(()) => Ok(()),
            Err(TrySendError::Disconnected(_)) => Err(stopped()),
            Err(TrySendError::Full(cmd)) => {
                let tx = tx.clone();
                tokio::task::spawn_blocking(move || tx.send(cmd).map_err(|_| stopped()))
                    .await
                    .map_err(|_| stopped())?
            }
        }
    }

    /// Runs one API operation on every run of a call (ChargerS's, all of
    /// one CGRID), on the call's shard, in order: the reply's MaxUsage is
    /// the least of the runs that are charged or priced (not `*none`),
    /// the first error is the answer (every run is still handled). An
    /// operation that ends the call is answered once all its CDRs are
    /// stored.
    pub(crate) async fn call_runs(
        &self,
        op: Op,
        evs: Vec<SessionEvent>,
    ) -> Result<Reply, sessions::Error> {
        let Some(first) = evs.first() else {
            return Ok(Reply::default());
        };
        let i = shard_of(&first.key().cgrid, self.shards.len());
        let (tx, rx) = oneshot::channel();
        self.send(i, Cmd::Api { op, evs, reply: tx }).await?;
        rx.await.map_err(|_| stopped())?
    }

    /// Hands a passive call's dialog event (with the dialog's snapshot on
    /// Answer and Update) to its shard, waiting while the shard is busy.
    /// Blocking: call it from a thread that may block.
    pub(crate) fn dialog_blocking(
        &self,
        ev: DialogEvent,
        snap: Option<DialogSnapshot>,
    ) -> Result<(), sessions::Error> {
        let cgrid = SessionEvent::key_of_call(ev.call()).cgrid;
        let i = shard_of(&cgrid, self.shards.len());
        let tx = self.shards.get(i).ok_or_else(stopped)?;
        tx.send(Cmd::Dialog {
            ev: Box::new(ev),
            snap: snap.map(Box::new),
        })
        .map_err(|_| stopped())
    }

    /// Every active session, sorted by key.
    pub(crate) async fn active(&self) -> Result<Vec<SessionSnapshot>, sessions::Error> {
        let mut all = Vec::new();
        for i in 0..self.shards.len() {
            let (tx, rx) = oneshot::channel();
            self.send(i, Cmd::List(tx)).await?;
            all.extend(rx.await.map_err(|_| stopped())?);
        }
        all.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(all)
    }

    /// Ends the sessions of `keys` at once (their owners asked to end the
    /// calls, each settled for its usage so far and its CDR written:
    /// [`SessionManager::force_terminate`]); answers once their CDRs are
    /// stored, with how many were found and how many failed.
    pub(crate) async fn force_disconnect(
        &self,
        keys: Vec<SessionKey>,
        reason: &str,
    ) -> Result<Forced, sessions::Error> {
        let n = self.shards.len();
        let mut per: Vec<Vec<SessionKey>> = (0..n).map(|_| Vec::new()).collect();
        for k in keys {
            if let Some(v) = per.get_mut(shard_of(&k.cgrid, n)) {
                v.push(k);
            }
        }
        let mut all = Forced::default();
        for (i, keys) in per.into_iter().enumerate() {
            if keys.is_empty() {
                continue;
            }
            let (tx, rx) = oneshot::channel();
            self.send(
                i,
                Cmd::Force {
                    keys,
                    reason: reason.to_owned(),
                    reply: tx,
                },
            )
            .await?;
            let f = rx.await.map_err(|_| stopped())?;
            all.found += f.found;
            all.failed += f.failed;
        }
        Ok(all)
    }

    /// Stops every shard after the commands already queued and waits for
    /// them (blocking). Active sessions stay in the store for the next
    /// start.
    pub(crate) fn stop_blocking(&self) {
        for tx in &self.shards {
            let _ = tx.send(Cmd::Stop);
        }
        let threads = std::mem::take(&mut *lock(&self.threads));
        for t in threads {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests;
