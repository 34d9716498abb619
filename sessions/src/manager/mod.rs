//! The session manager: one state machine for every call being charged,
//! whoever reports it (the dialog machine for passive calls, the JSON-RPC
//! API, later the agents).
//!
//! Sans-IO: each `handle_*` takes the event, the current time and the
//! [`Charging`] context, changes the accounts through the store (each
//! change one atomic, idempotent update: see `rating`'s
//! `reserve_session`/`settle_session`) and returns a [`Reply`]; what must
//! be done outside (store a CDR, disconnect a call, persist or forget a
//! session) comes out of [`SessionManager::poll_action`], and the next
//! deadline (a prepaid reservation running out, a session TTL) out of
//! [`SessionManager::poll_timeout`], to be given back through
//! [`SessionManager::handle_timeout`].
//!
//! Request types, as CGRateS: `*prepaid` reserves at initiate (the whole
//! MaxUsage, or one debit interval at a time) and settles at terminate,
//! giving back what was not used; `*pseudoprepaid` authorizes on the
//! balance and debits at the end; `*postpaid` debits at the end, below zero
//! if need be (the call happened); `*rated` prices only; `*none` does
//! nothing. Terminate's Usage is the call's total; update's LastUsed the
//! part since the previous update.

mod charge;
mod event;
mod finish;
mod ops;
mod types;

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::time::Duration;

use chrono::{DateTime, Utc};

pub use charge::Charging;
pub use event::{OPT_DEBIT_INTERVAL, Owner, RequestType, SessionEvent};
pub use finish::event_cdr;
pub use types::{
    Action, Counters, Disconnect, EndIntent, Reply, SessionConfig, SessionKey, SessionSnapshot,
};

use crate::Error;

/// `ExtraFields` key of a CDR whose call was asked to disconnect (its
/// value is the reason); a passive call goes on and is billed in full.
pub const EXTRA_DISCONNECT_REQUESTED: &str = "DisconnectRequested";
/// `ExtraFields` key set (`true`) on the CDR of a session the TTL ended.
pub const EXTRA_TTL_EXPIRED: &str = "SessionTTLExpired";

/// Disconnect reason: the balance cannot pay more usage.
pub const REASON_INSUFFICIENT_CREDIT: &str = "INSUFFICIENT_CREDIT";
/// Disconnect reason: the call reached `max-call-duration`.
pub const REASON_MAX_CALL_DURATION: &str = "MAX_CALL_DURATION";
/// Disconnect reason: the usage granted ran out and no more could be
/// granted, for another reason than money or the duration cap (another
/// copy of the call settled it).
pub const REASON_MAX_USAGE: &str = "MAX_USAGE_REACHED";
/// Disconnect reason: a reservation failed (store or rating error).
pub const REASON_DEBIT_ERROR: &str = "DEBIT_ERROR";

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Timer {
    /// The usage reserved so far runs out: reserve more or disconnect.
    ReserveEnd,
    /// No update for `session-ttl`: terminate.
    Ttl,
}

/// The session manager. See the module documentation.
#[derive(Debug)]
pub struct SessionManager {
    config: SessionConfig,
    sessions: HashMap<SessionKey, SessionSnapshot>,
    timers: BTreeSet<(DateTime<Utc>, SessionKey, Timer)>,
    armed: HashMap<SessionKey, Vec<(DateTime<Utc>, Timer)>>,
    actions: VecDeque<Action>,
    counters: Counters,
}

impl SessionManager {
    /// A manager without sessions.
    pub fn new(config: SessionConfig) -> Self {
        SessionManager {
            config,
            sessions: HashMap::new(),
            timers: BTreeSet::new(),
            armed: HashMap::new(),
            actions: VecDeque::new(),
            counters: Counters::default(),
        }
    }

    /// The configuration in force.
    pub fn config(&self) -> &SessionConfig {
        &self.config
    }

    /// The counters.
    pub fn counters(&self) -> Counters {
        Counters {
            active: self.sessions.len() as u64,
            ..self.counters
        }
    }

    /// The active sessions, sorted by key (`GetActiveSessions`).
    pub fn active_sessions(&self) -> Vec<&SessionSnapshot> {
        let mut v: Vec<&SessionSnapshot> = self.sessions.values().collect();
        v.sort_by(|a, b| a.key.cmp(&b.key));
        v
    }

    /// How many sessions are active (`GetActiveSessionsCount`).
    pub fn active_count(&self) -> usize {
        self.sessions.len()
    }

    /// One active session.
    pub fn session(&self, key: &SessionKey) -> Option<&SessionSnapshot> {
        self.sessions.get(key)
    }

    /// The next thing the manager wants done.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// When [`SessionManager::handle_timeout`] must next be called.
    pub fn poll_timeout(&self) -> Option<DateTime<Utc>> {
        self.timers.first().map(|t| t.0)
    }

    /// Fires every deadline up to `now`: a prepaid session whose reserved
    /// usage ran out reserves the next debit interval or, when none can be
    /// paid, is disconnected ([`Action::Disconnect`]); an active session
    /// past its TTL is terminated with the usage known (plus `ttl-usage`)
    /// and its CDR written. Failures are counted (`debit_errors`), never
    /// returned: a timer has nobody to answer.
    pub fn handle_timeout(&mut self, now: DateTime<Utc>, ch: &Charging<'_>) {
        while let Some((at, key, timer)) = self.timers.first().cloned() {
            if at > now {
                break;
            }
            self.timers.remove(&(at, key.clone(), timer));
            if let Some(list) = self.armed.get_mut(&key) {
                list.retain(|t| *t != (at, timer));
            }
            match timer {
                Timer::ReserveEnd => self.reserve_end(&key, at, now, ch),
                Timer::Ttl => self.ttl_end(&key, at, ch),
            }
        }
    }

    /// Asks the owner to end the call (`SessionSv1.ForceDisconnect`): an
    /// [`Action::Disconnect`] (for a passive call: to log; it cannot be
    /// ended). The session stays until its terminate brings the real usage
    /// (or its TTL ends it); no more usage is reserved for it.
    ///
    /// # Errors
    /// [`Error::SessionNotFound`].
    pub fn force_disconnect(
        &mut self,
        key: &SessionKey,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<(), Error> {
        let Some(s) = self.sessions.get_mut(key) else {
            return Err(Error::SessionNotFound(key.clone()));
        };
        s.last_update = now;
        self.request_disconnect(key, reason);
        Ok(())
    }

    /// Ends a session at once (`SessionSv1.ForceDisconnect`, as CGRateS
    /// v0.10's `forceSTerminate`): the owner is asked to end the call (an
    /// [`Action::Disconnect`]; a passive call's is logged and counted), the
    /// session is settled for the usage so far (the usage its owner
    /// reported, or the time since it started if that is more, at most
    /// `max-call-duration`) and its CDR written, flagged
    /// `DisconnectRequested`. A later terminate, ProcessCDR or a passive
    /// call's BYE finds the session charged: the charge replays from the
    /// account's mark and the CDR insert keeps the first, so the call has
    /// one CDR and one debit.
    ///
    /// # Errors
    /// [`Error::SessionNotFound`]; rating and store errors of the settle
    /// (the CDR is written anyway, with the error).
    pub fn force_terminate(
        &mut self,
        key: &SessionKey,
        reason: &str,
        now: DateTime<Utc>,
        ch: &Charging<'_>,
    ) -> Result<Reply, Error> {
        if !self.sessions.contains_key(key) {
            return Err(Error::SessionNotFound(key.clone()));
        }
        self.request_disconnect(key, reason);
        let Some(s) = self.sessions.remove(key) else {
            return Err(Error::SessionNotFound(key.clone()));
        };
        self.unarm(key);
        let elapsed = (now - s.started).to_std().unwrap_or(Duration::ZERO);
        let usage = s
            .total_usage
            .max(elapsed)
            .min(self.config.max_call_duration);
        let cdr = self.cdr_of_event(&s.event, key, Some(s.answer_time), usage, now);
        self.finish(&s, usage, cdr, now, ch)
    }

    /// Sets an `ExtraFields` entry of an active session's event (saved
    /// with it, and written into its CDR: a passive call over a resource
    /// limit...). `false` when the session is not active.
    pub fn set_extra(&mut self, key: &SessionKey, name: &str, value: &str) -> bool {
        let Some(s) = self.sessions.get_mut(key) else {
            return false;
        };
        s.event
            .extra_fields
            .insert(name.to_owned(), value.to_owned());
        self.save(key);
        true
    }

    /// Resumes sessions persisted before a restart (their
    /// [`Action::Save`]s): timers re-armed, so a debit loop goes on where
    /// it was; a deadline already past fires at the next
    /// [`SessionManager::handle_timeout`]. Nothing is charged twice: a
    /// reservation the snapshot missed is found in the account and not
    /// taken again. The TTL of an active session counts again from `now`
    /// (the downtime was ours, not its owner's silence). Sessions already
    /// active are kept. Returns how many were restored.
    pub fn restore(
        &mut self,
        snapshots: impl IntoIterator<Item = SessionSnapshot>,
        now: DateTime<Utc>,
    ) -> usize {
        let mut n = 0;
        for mut s in snapshots {
            if self.sessions.contains_key(&s.key) {
                continue;
            }
            s.last_update = s.last_update.max(now);
            let key = s.key.clone();
            self.sessions.insert(key.clone(), s);
            self.rearm(&key);
            n += 1;
        }
        n
    }

    // --- helpers shared by the operations ---------------------------------

    /// Records the disconnect request and emits it (counted; a passive
    /// call's separately).
    fn request_disconnect(&mut self, key: &SessionKey, reason: &str) {
        let Some(s) = self.sessions.get_mut(key) else {
            return;
        };
        s.disconnect = Some(reason.to_owned());
        let owner = s.event.owner.clone();
        self.counters.disconnects += 1;
        if owner == Owner::Passive {
            self.counters.disconnect_passive += 1;
        }
        self.actions.push_back(Action::Disconnect {
            key: key.clone(),
            owner,
            reason: reason.to_owned(),
        });
        self.save(key);
        self.rearm(key);
    }

    fn save(&mut self, key: &SessionKey) {
        if let Some(s) = self.sessions.get(key) {
            self.actions.push_back(Action::Save(Box::new(s.clone())));
        }
    }

    fn unarm(&mut self, key: &SessionKey) {
        for (at, t) in self.armed.remove(key).unwrap_or_default() {
            self.timers.remove(&(at, key.clone(), t));
        }
    }

    /// Sets the session's timers from its state.
    fn rearm(&mut self, key: &SessionKey) {
        self.unarm(key);
        let Some(s) = self.sessions.get(key) else {
            return;
        };
        let mut list = Vec::with_capacity(2);
        if s.request_type == RequestType::Prepaid && s.disconnect.is_none() {
            list.push((s.reserved_until(), Timer::ReserveEnd));
        }
        if s.event.owner != Owner::Passive && !self.config.session_ttl.is_zero() {
            list.push((
                types::plus(s.last_update, self.config.session_ttl),
                Timer::Ttl,
            ));
        }
        for (at, t) in &list {
            self.timers.insert((*at, key.clone(), *t));
        }
        self.armed.insert(key.clone(), list);
    }
}
