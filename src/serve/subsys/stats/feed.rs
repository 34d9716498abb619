//! Every stored CDR into StatS, and the Stored queues saved.
//!
//! The CDR writer shows each CDR it newly stored (every RunID, API and
//! passive calls alike; a duplicate is not shown twice) to a hook that
//! only queues a copy (`try_send`: never waits, a full queue drops the
//! CDR for StatS and counts it). One `stats-feed` thread takes them: the
//! CDR's fields are the event, as CGRateS's CDRs pass theirs to StatS.
//! The same thread saves the Stored queues (meta blob
//! [`BLOB`]) at most once a second when they changed, and on [`flush`]
//! at shutdown; [`start`] puts the saved queues back.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, sync_channel};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use serde_json::{Map, Value};
use sessions::Cdr;
use subsystems::stats::StatQueue;

use super::{DEFAULT_TENANT, process, service};
use crate::serve::methods::State;

/// The meta blob the Stored queues are saved in.
pub(crate) const BLOB: &str = "serve.stats";
/// CDRs waiting for StatS at most.
const QUEUE: usize = 65_536;
/// How often changed queues are saved at most.
const SAVE_EVERY: Duration = Duration::from_secs(1);
/// How long a shutdown waits for the feed to drain.
const FLUSH_WAIT: Duration = Duration::from_secs(5);

/// What the feed thread takes.
#[derive(Debug)]
pub(crate) enum Feed {
    /// A stored CDR.
    Cdr(Box<Cdr>),
    /// Save now, then answer.
    Flush(std::sync::mpsc::Sender<()>),
}

/// CDRs dropped because the feed was full.
static DROPPED: AtomicU64 = AtomicU64::new(0);

/// Restores the saved queues, then hooks the CDR writer and starts the
/// feed thread. Call once, after the plan is loaded and before CDRs are
/// written.
///
/// # Errors
/// The saved queues do not read; the thread does not start.
pub(crate) fn start(state: &Arc<State>) -> anyhow::Result<()> {
    if let Some(blob) = state
        .meta
        .get_meta(BLOB)
        .context("reading the saved stat queues")?
    {
        match serde_json::from_slice::<Vec<StatQueue>>(&blob) {
            Ok(queues) => service(state).restore(queues),
            Err(e) => {
                tracing::warn!(error = %e, "the saved stat queues are damaged: starting empty")
            }
        }
    }
    let (tx, rx) = sync_channel(QUEUE);
    if state.stats.feed.set(tx.clone()).is_err() {
        return Ok(());
    }
    let hook = move |cdr: &Cdr| {
        // `CDRsV1.ProcessEvent` with `*stats:false`.
        if crate::serve::cdrs_event::skip_stats(&cdr.cgrid, &cdr.run_id) {
            return;
        }
        if tx.try_send(Feed::Cdr(Box::new(cdr.clone()))).is_err()
            && DROPPED.fetch_add(1, Ordering::Relaxed) % 10_000 == 0
        {
            tracing::warn!("StatS is behind: stored CDRs skipped by StatS");
        }
    };
    state.cdr_writer.on_stored(Box::new(hook));
    let weak = Arc::downgrade(state);
    std::thread::Builder::new()
        .name("stats-feed".into())
        .spawn(move || run(&weak, &rx))
        .context("starting the StatS feed thread")?;
    Ok(())
}

/// Waits (blocking) until the CDRs queued so far went through StatS and
/// the queues are saved.
pub(crate) fn flush(state: &State) {
    let Some(tx) = state.stats.feed.get() else {
        return;
    };
    let (ack, done) = std::sync::mpsc::channel();
    if tx.send(Feed::Flush(ack)).is_ok() {
        let _ = done.recv_timeout(FLUSH_WAIT);
    }
}

fn run(state: &Weak<State>, rx: &Receiver<Feed>) {
    let mut saved_at = Instant::now();
    loop {
        let msg = rx.recv_timeout(SAVE_EVERY);
        let Some(st) = state.upgrade() else {
            return;
        };
        match msg {
            Ok(Feed::Cdr(cdr)) => {
                if st.profiles.current().stats.is_empty() {
                    continue;
                }
                let ev = cdr_event(&cdr);
                match process(&st, &ev, None) {
                    Ok(_) | Err(subsystems::Error::NotFound) => {}
                    Err(e) => {
                        tracing::warn!(cgrid = %cdr.cgrid, error = %e, "StatS: CDR not processed");
                    }
                }
                if saved_at.elapsed() >= SAVE_EVERY {
                    save(&st);
                    saved_at = Instant::now();
                }
            }
            Ok(Feed::Flush(ack)) => {
                save(&st);
                let _ = ack.send(());
            }
            Err(RecvTimeoutError::Timeout) => {
                save(&st);
                saved_at = Instant::now();
            }
            Err(RecvTimeoutError::Disconnected) => return,
        }
    }
}

/// Saves the Stored queues if anything changed.
fn save(state: &State) {
    let blob = {
        let mut svc = service(state);
        if !svc.take_dirty() {
            return;
        }
        serde_json::to_vec(&svc.stored())
    };
    let r = blob
        .map_err(anyhow::Error::from)
        .and_then(|b| state.meta.put_meta(BLOB, &b).map_err(anyhow::Error::from));
    if let Err(e) = r {
        tracing::warn!(error = %e, "StatS: the stored queues were not saved");
        service(state).mark_dirty();
    }
}

/// A CDR as the event StatS reads: its fields under CGRateS's names, the
/// extra fields beside them, `Cost` as its exact decimal text.
pub(crate) fn cdr_event(cdr: &Cdr) -> subsystems::Event {
    let mut fields: Map<String, Value> = serde_json::to_string(cdr)
        .ok()
        .and_then(|s| serde_json::from_str(&s).ok())
        .unwrap_or_default();
    if let Some(Value::Object(extra)) = fields.remove("ExtraFields") {
        for (k, v) in extra {
            fields.entry(k).or_insert(v);
        }
    }
    if let Some(c) = cdr.cost {
        fields.insert("Cost".into(), Value::String(c.to_string()));
    }
    subsystems::Event {
        tenant: if cdr.tenant.is_empty() {
            DEFAULT_TENANT.to_owned()
        } else {
            cdr.tenant.clone()
        },
        id: format!("{}:{}", cdr.cgrid, cdr.run_id),
        time: None,
        fields,
        opts: Map::new(),
        vars: Map::new(),
    }
}
