//! The thresholds' event queue and its worker thread, and the account
//! store wrapper that feeds it: every account update that changes a
//! balance's value (a debit, a top-up, an action) or the account's flags
//! queues CGRateS's `AccountUpdate` event and one `BalanceUpdate` per
//! changed balance. Queuing never blocks: a full queue drops the event
//! (counted), so threshold processing can neither delay nor fail a debit.
//! Actions run by thresholds change accounts too; the events they cause
//! carry a depth, and past [`MAX_DEPTH`] they are dropped (counted).

use std::cell::Cell;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex, OnceLock, PoisonError, Weak};
use std::time::Duration;

use chrono::Utc;
use rating::{Account, AccountStore, Error};
use rust_decimal::Decimal;
use serde_json::{Map, Value, json};
use subsystems::Event;

use crate::serve::methods::State;

/// Events waiting for the worker at most.
const QUEUE: usize = 16_384;
/// Threshold actions causing account events causing actions...: the
/// chain stops here.
pub(super) const MAX_DEPTH: u8 = 3;

thread_local! {
    /// How deep in threshold-run actions this thread is.
    static DEPTH: Cell<u8> = const { Cell::new(0) };
}

/// Runs `f` one level deeper (the actions of a threshold).
pub(super) fn deeper<T>(f: impl FnOnce() -> T) -> T {
    let d = DEPTH.with(Cell::get);
    DEPTH.with(|c| c.set(d.saturating_add(1)));
    let out = f();
    DEPTH.with(|c| c.set(d));
    out
}

/// This thread's depth.
pub(super) fn depth() -> u8 {
    DEPTH.with(Cell::get)
}

/// Runs `f` at depth `d`.
pub(super) fn at_depth<T>(d: u8, f: impl FnOnce() -> T) -> T {
    let before = DEPTH.with(Cell::get);
    DEPTH.with(|c| c.set(d));
    let out = f();
    DEPTH.with(|c| c.set(before));
    out
}

/// One queued event.
pub(super) struct Item {
    pub ev: Event,
    pub ids: Option<Vec<String>>,
    pub depth: u8,
}

/// The queue, its counters, and the receiver until the worker takes it.
pub(crate) struct Feed {
    tx: SyncSender<Item>,
    rx: Mutex<Option<Receiver<Item>>>,
    /// The state, once started: without thresholds in its profiles,
    /// account updates are not even looked at.
    state: OnceLock<Weak<State>>,
    /// Events queued.
    pub queued: AtomicU64,
    /// Events dropped: the queue was full.
    pub dropped_full: AtomicU64,
    /// Events dropped: too deep a chain of actions.
    pub dropped_depth: AtomicU64,
}

impl Default for Feed {
    fn default() -> Self {
        let (tx, rx) = sync_channel(QUEUE);
        Feed {
            tx,
            rx: Mutex::new(Some(rx)),
            state: OnceLock::new(),
            queued: AtomicU64::new(0),
            dropped_full: AtomicU64::new(0),
            dropped_depth: AtomicU64::new(0),
        }
    }
}

impl Feed {
    /// Queues `ev` for the thresholds (only `ids` when given), at this
    /// thread's depth.
    pub(super) fn push(&self, ev: Event, ids: Option<Vec<String>>) {
        let depth = DEPTH.with(Cell::get);
        if depth >= MAX_DEPTH {
            self.dropped_depth.fetch_add(1, Ordering::Relaxed);
            return;
        }
        match self.tx.try_send(Item { ev, ids, depth }) {
            Ok(()) => {
                self.queued.fetch_add(1, Ordering::Relaxed);
            }
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.dropped_full.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// The state, once the worker started (for work that outlives a call).
    pub(super) fn state(&self) -> Option<Arc<State>> {
        self.state.get().and_then(Weak::upgrade)
    }

    /// Starts the worker (once): it processes the queued events with the
    /// state while the state lives.
    pub(super) fn start(&self, state: &Arc<State>) {
        let Some(rx) = self
            .rx
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        else {
            return;
        };
        let weak: Weak<State> = Arc::downgrade(state);
        let _ = self.state.set(weak.clone());
        let spawned = std::thread::Builder::new()
            .name("thresholds".into())
            .spawn(move || worker(&rx, &weak));
        if let Err(e) = spawned {
            crate::serve::say(&format!("serve: cannot start the thresholds' worker: {e}"));
        }
    }
}

fn worker(rx: &Receiver<Item>, state: &Weak<State>) {
    loop {
        let next = rx.recv_timeout(Duration::from_secs(1));
        let Some(st) = state.upgrade() else { return };
        match next {
            Ok(item) => {
                at_depth(item.depth, || {
                    // NOT_FOUND (no threshold matches) is the usual answer.
                    let _ = super::process_event(&st, &item.ev, item.ids.as_deref());
                });
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => return,
        }
    }
}

/// A balance as the thresholds see it: type, ID, value, expiry.
type SeenBalance = (String, String, Decimal, Option<chrono::DateTime<Utc>>);

/// What the thresholds see of an account: flags and balance values.
#[derive(PartialEq)]
struct Seen {
    allow_negative: bool,
    disabled: bool,
    balances: BTreeMap<String, SeenBalance>,
}

fn seen(a: &Account) -> Seen {
    let balances = a
        .balances
        .iter()
        .flat_map(|(t, list)| {
            list.iter().map(move |b| {
                (
                    b.uuid.clone(),
                    (t.as_str().to_owned(), b.id.clone(), b.value, b.expiration),
                )
            })
        })
        .collect();
    Seen {
        allow_negative: a.allow_negative,
        disabled: a.disabled,
        balances,
    }
}

fn event(tenant: &str, kind: &str, fields: Map<String, Value>) -> Event {
    let mut opts = Map::new();
    opts.insert("*eventType".into(), json!(kind));
    Event {
        tenant: tenant.to_owned(),
        id: format!(
            "{kind}:{}",
            Utc::now().timestamp_nanos_opt().unwrap_or_default()
        ),
        time: Some(Utc::now()),
        fields,
        opts,
        vars: Map::new(),
    }
}

/// The events of one account change: `AccountUpdate`, then one
/// `BalanceUpdate` per balance whose value changed (or that is new).
fn events(a: &Account, before: &Seen, after: &Seen) -> Vec<Event> {
    if before == after {
        return Vec::new();
    }
    let mut out = Vec::new();
    let mut f = Map::new();
    f.insert("EventType".into(), json!("AccountUpdate"));
    f.insert("EventSource".into(), json!("AccountS"));
    f.insert("Account".into(), json!(a.id));
    f.insert("AllowNegative".into(), json!(a.allow_negative));
    f.insert("Disabled".into(), json!(a.disabled));
    out.push(event(&a.tenant, "AccountUpdate", f));
    for (uuid, (ty, id, value, expiry)) in &after.balances {
        if before.balances.get(uuid).is_some_and(|b| b.2 == *value) {
            continue;
        }
        let mut f = Map::new();
        f.insert("EventType".into(), json!("BalanceUpdate"));
        f.insert("EventSource".into(), json!("AccountS"));
        f.insert("Account".into(), json!(a.id));
        f.insert("BalanceID".into(), json!(id));
        f.insert("BalanceType".into(), json!(ty));
        // The exact decimal as text: a balance is never a float here.
        f.insert("Units".into(), json!(rating::json_number(*value)));
        if let Some(e) = expiry {
            f.insert("ExpiryTime".into(), json!(e.to_rfc3339()));
        }
        out.push(event(&a.tenant, "BalanceUpdate", f));
    }
    out
}

/// An [`AccountStore`] that queues the thresholds' account events after
/// each update that succeeded.
pub(crate) struct FeedAccounts {
    inner: Arc<dyn AccountStore>,
    feed: Arc<Feed>,
}

impl FeedAccounts {
    /// `inner`, feeding `feed`.
    pub(crate) fn new(inner: Arc<dyn AccountStore>, feed: Arc<Feed>) -> Self {
        FeedAccounts { inner, feed }
    }

    /// Whether the profiles in force have thresholds (true until the
    /// worker started).
    fn active(&self) -> bool {
        match self.feed.state.get().map(Weak::upgrade) {
            Some(Some(st)) => !st.profiles.current().thresholds.is_empty(),
            Some(None) => false,
            None => true,
        }
    }

    fn send(&self, evs: Vec<Event>) {
        for ev in evs {
            self.feed.push(ev, None);
        }
    }
}

impl AccountStore for FeedAccounts {
    fn get(&self, tenant: &str, id: &str) -> Result<Option<Account>, Error> {
        self.inner.get(tenant, id)
    }

    fn set(&self, account: Account) -> Result<(), Error> {
        self.inner.set(account)
    }

    fn remove(&self, tenant: &str, id: &str) -> Result<bool, Error> {
        self.inner.remove(tenant, id)
    }

    fn list(&self, tenant: &str) -> Result<Vec<Account>, Error> {
        self.inner.list(tenant)
    }

    fn tenants(&self) -> Result<Vec<String>, Error> {
        self.inner.tenants()
    }

    fn update(
        &self,
        tenant: &str,
        id: &str,
        f: &mut dyn FnMut(&mut Account) -> Result<(), Error>,
    ) -> Result<(), Error> {
        if !self.active() {
            return self.inner.update(tenant, id, f);
        }
        // The closure may run again (a compare-and-set retry): the last
        // run's events are the ones of the update made.
        let mut evs = Vec::new();
        self.inner.update(tenant, id, &mut |a| {
            let before = seen(a);
            f(a)?;
            evs = events(a, &before, &seen(a));
            Ok(())
        })?;
        self.send(evs);
        Ok(())
    }

    fn update_many(
        &self,
        keys: &[(String, String)],
        f: &mut dyn FnMut(&mut [Account]) -> Result<(), Error>,
    ) -> Result<(), Error> {
        if !self.active() {
            return self.inner.update_many(keys, f);
        }
        let mut evs = Vec::new();
        self.inner.update_many(keys, &mut |accs| {
            let before: Vec<Seen> = accs.iter().map(seen).collect();
            f(accs)?;
            evs = accs
                .iter()
                .zip(&before)
                .flat_map(|(a, b)| events(a, b, &seen(a)))
                .collect();
            Ok(())
        })?;
        self.send(evs);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use rating::{AccountStoreExt, Balance, BalanceType, MemoryAccounts};

    use super::*;

    #[test]
    fn a_debit_queues_the_account_and_the_balance_events() {
        let inner = Arc::new(MemoryAccounts::new());
        let mut acc = Account::new("t", "1001");
        acc.add_balance(
            BalanceType::Monetary,
            Balance {
                id: "main".into(),
                value: Decimal::new(1000, 2),
                ..Balance::default()
            },
        );
        inner.set(acc).unwrap();
        let feed = Arc::new(Feed::default());
        let store = FeedAccounts::new(inner, Arc::clone(&feed));
        let rx = feed.rx.lock().unwrap().take().unwrap();
        // Nothing changed: nothing queued.
        store.update_with("t", "1001", |_| Ok(())).unwrap();
        assert!(rx.try_recv().is_err());
        store
            .update_with("t", "1001", |a| {
                let b = &mut a.balances.get_mut(&BalanceType::Monetary).unwrap()[0];
                b.value -= Decimal::new(25, 2);
                Ok(())
            })
            .unwrap();
        let a = rx.try_recv().unwrap();
        assert_eq!(a.ev.text("EventType"), "AccountUpdate");
        assert_eq!(a.ev.text("Account"), "1001");
        let b = rx.try_recv().unwrap();
        assert_eq!(b.ev.text("EventType"), "BalanceUpdate");
        assert_eq!(b.ev.text("BalanceID"), "main");
        assert_eq!(b.ev.text("Units"), "9.75");
        assert_eq!(b.ev.tenant, "t");
        assert!(rx.try_recv().is_err());
        // A refused update queues nothing.
        assert!(
            store
                .update_with("t", "1001", |a| {
                    a.disabled = true;
                    Err::<(), _>(Error::Store("no".into()))
                })
                .is_err()
        );
        assert!(rx.try_recv().is_err());
        // Deep in threshold actions: dropped and counted.
        at_depth(MAX_DEPTH, || {
            store
                .update_with("t", "1001", |a| {
                    a.disabled = true;
                    Ok(())
                })
                .unwrap();
        });
        assert!(rx.try_recv().is_err());
        assert_eq!(feed.dropped_depth.load(Ordering::Relaxed), 1);
    }
}
