//! A session shard's thread: its manager, the loop over its commands and
//! deadlines, and how it carries out the manager's actions.

use super::*;

/// One shard: its manager and what it needs to carry out actions.
pub(super) struct Shard<'a> {
    pub(super) index: usize,
    pub(super) mgr: SessionManager,
    /// The `d:` keys saved for this shard's calls (only those are removed
    /// at a call's end: an unanswered call costs no store write).
    pub(super) saved_dialogs: HashSet<String>,
    /// Keys to remove once their CDR is committed.
    pub(super) forgets: Forgets<'a>,
    /// Store writes not yet durable (flushed before any other durable
    /// effect).
    pub(super) writes: StoreWrites<'a>,
    /// Runs once the next CDR written is durable (an API reply that
    /// waits for it).
    pub(super) after_cdr: Option<forgets::Then>,
    /// The round's CDRs, with the keys their commit removes and what
    /// waits for them: handed to the sink together by
    /// [`Shard::submit_cdrs`], after one flush of the round's store
    /// writes (instead of one flush per CDR).
    pub(super) cdrs: Vec<(Box<sessions::Cdr>, Vec<String>, Option<forgets::Then>)>,
    pub(super) shared: &'a Shared,
}

pub(super) fn run_shard(
    index: usize,
    mgr: SessionManager,
    saved_dialogs: HashSet<String>,
    ends: Vec<EndIntent>,
    shared: &Shared,
    rx: &Receiver<Cmd>,
) {
    std::thread::scope(|scope| {
        let sh = Shard {
            index,
            mgr,
            saved_dialogs,
            forgets: Forgets::start(scope, index, shared.store.as_ref(), &shared.counters),
            after_cdr: None,
            cdrs: Vec::new(),
            writes: StoreWrites::new(shared.store.as_ref(), &shared.counters),
            shared,
        };
        shard_loop(sh, ends, rx);
        // The shard (and its sender) dropped: the forget thread ends after
        // what is queued, and the scope waits for it.
    });
}

fn shard_loop(mut sh: Shard<'_>, ends: Vec<EndIntent>, rx: &Receiver<Cmd>) {
    // Calls whose end was saved but whose CDR may not have been stored:
    // finished now (charged once: the account's marks replay a charge
    // already made; the CDR insert is idempotent).
    for e in ends {
        let done = sh.end_call(e, Utc::now());
        sh.apply(done);
    }
    sh.submit_cdrs();
    sh.publish();
    loop {
        let mut wait = sh.mgr.poll_timeout().map_or(MAX_WAIT, |t| {
            (t - Utc::now())
                .to_std()
                .unwrap_or(Duration::ZERO)
                .min(MAX_WAIT)
        });
        if !sh.forgets.is_empty() {
            wait = wait.min(REAP_EVERY);
        }
        let mut stop = false;
        match rx.recv_timeout(wait) {
            Ok(Cmd::Stop) | Err(RecvTimeoutError::Disconnected) => stop = true,
            Ok(cmd) => {
                let done = sh.handle(cmd);
                sh.apply(done);
                // What else is queued, in the same round: its store
                // writes share the flush below.
                for _ in 1..ROUND {
                    match rx.try_recv() {
                        Ok(Cmd::Stop) | Err(TryRecvError::Disconnected) => {
                            stop = true;
                            break;
                        }
                        Ok(cmd) => {
                            let done = sh.handle(cmd);
                            sh.apply(done);
                        }
                        Err(TryRecvError::Empty) => break,
                    }
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
        }
        let now = Utc::now();
        if sh.mgr.poll_timeout().is_some_and(|t| t <= now) {
            sh.with_charging(|mgr, ch| mgr.handle_timeout(now, ch));
        }
        sh.apply(Vec::new());
        sh.submit_cdrs();
        sh.writes.flush();
        sh.forgets.reap();
        sh.publish();
        if stop {
            break;
        }
    }
    // The CDR writer still runs: the sessions of the CDRs written are
    // forgotten once those are committed.
    sh.forgets.finish(Instant::now() + STOP_WAIT);
    sh.publish();
}

impl Shard<'_> {
    pub(super) fn publish(&self) {
        if let Some(slot) = lock(&self.shared.published).get_mut(self.index) {
            *slot = self.mgr.counters();
        }
    }

    /// Runs `f` with the charging context of now: the plan in force, the
    /// rounding, the accounts and the shared groups' members.
    pub(super) fn with_charging<T>(
        &mut self,
        f: impl FnOnce(&mut SessionManager, &Charging<'_>) -> T,
    ) -> T {
        let state = &self.shared.state;
        let plan = state.plan.current();
        let groups = super::super::accounts::plan_groups(state, &plan);
        // Each charging operation's time goes to /metrics with the debits.
        // An account update waits for the store writes before it.
        let writes = &self.writes;
        let flush = || writes.flush();
        let accounts = timed::TimedAccounts {
            inner: state.accounts.as_ref(),
            debits: &state.debits,
            before_write: &flush,
        };
        let ch = Charging {
            accounts: &accounts,
            plan: &plan,
            rounding: state.mode,
            groups: &groups,
        };
        f(&mut self.mgr, &ch)
    }

    /// Ends a passive call from its saved end; the keys to remove once its
    /// CDR is durable (the end, and the dialog when one was saved).
    pub(super) fn end_call(
        &mut self,
        intent: EndIntent,
        now: chrono::DateTime<Utc>,
    ) -> Vec<String> {
        let mut done = vec![end_key(&intent.key)];
        let d = dialog_key(&intent.key.cgrid);
        if self.saved_dialogs.remove(&d) {
            done.push(d);
        }
        let cgrid = intent.key.cgrid.clone();
        let r = self.with_charging(|mgr, ch| mgr.handle_end_intent(intent, now, ch));
        if let Err(e) = r {
            tracing::debug!(cgrid = %cgrid, error = %e, "passive call");
        }
        done
    }

    /// Runs one command; for the end of a passive call, the keys to remove
    /// once its CDR is durable.
    pub(super) fn handle(&mut self, cmd: Cmd) -> Vec<String> {
        let now = Utc::now();
        match cmd {
            Cmd::Api { op, evs, reply } => {
                let r = self.api_runs(op, &evs, now);
                // The reply waits for the actions (a Save durable first);
                // an operation that ends a call also for its CDR to be
                // stored, so an acknowledged end is never lost.
                if matches!(op, Op::Terminate | Op::ProcessCdr) {
                    self.after_cdr = Some(Box::new(move |_| {
                        let _ = reply.send(r);
                    }));
                    self.apply(Vec::new());
                    self.writes.flush();
                    if let Some(f) = self.after_cdr.take() {
                        f(true);
                    }
                } else {
                    self.apply(Vec::new());
                    self.writes.flush();
                    let _ = reply.send(r);
                }
                Vec::new()
            }
            Cmd::Dialog { ev, snap } => {
                self.shared
                    .counters
                    .dialog_events
                    .fetch_add(1, Ordering::Relaxed);
                let cgrid = SessionEvent::key_of_call(ev.call()).cgrid;
                if let Some(snap) = snap {
                    let k = dialog_key(&cgrid);
                    self.put(&k, &*snap);
                    self.saved_dialogs.insert(k);
                }
                // Without attributes, chargers or resources a passive call
                // is the one `*default` run its mapping made.
                let base = derive::passive_subsystems(&self.shared.state)
                    .then(|| self.mgr.call_event(&ev));
                if let Some(base) = &base
                    && let Some(done) = self.dialog_runs(&ev, base, now)
                {
                    return done;
                }
                if let Some(intent) = self.mgr.end_intent(&ev) {
                    // Durable before the charge: a crash before the CDR is
                    // stored is finished at the next start.
                    self.put(&end_key(&intent.key), &intent);
                    return self.end_call(intent, now);
                }
                let r = self.with_charging(|mgr, ch| mgr.handle_dialog(&ev, now, ch));
                if let Err(e) = r {
                    tracing::debug!(cgrid = %cgrid, error = %e, "passive call");
                }
                Vec::new()
            }
            Cmd::List(reply) => {
                let list = self.mgr.active_sessions().into_iter().cloned().collect();
                let _ = reply.send(list);
                Vec::new()
            }
            Cmd::Force {
                keys,
                reason,
                reply,
            } => {
                self.force(&keys, &reason, reply, now);
                Vec::new()
            }
            Cmd::Stop => Vec::new(),
        }
    }

    /// Saves `value` at the next flush of the shard's store writes.
    pub(super) fn put(&self, key: &str, value: &impl serde::Serialize) {
        let r = serde_json::to_vec(value).map(|v| self.writes.put(key.to_owned(), v));
        if let Err(e) = r {
            self.shared
                .counters
                .store_errors
                .fetch_add(1, Ordering::Relaxed);
            tracing::warn!(key, error = %e, "cannot save a session");
        }
    }

    /// Carries out the manager's actions (see the module documentation).
    pub(super) fn apply(&mut self, mut done: Vec<String>) {
        let mut actions = Vec::new();
        while let Some(a) = self.mgr.poll_action() {
            actions.push(a);
        }
        // An API reply waiting for its CDRs rides with the last one.
        let last_cdr = actions
            .iter()
            .rposition(|a| matches!(a, Action::WriteCdr(_)));
        let mut it = actions.into_iter().enumerate().peekable();
        while let Some((i, a)) = it.next() {
            match a {
                Action::WriteCdr(cdr) => {
                    let mut keys = Vec::new();
                    if let Some((_, Action::Forget(k))) = it.peek()
                        && k.cgrid == cdr.cgrid
                        && k.run_id == cdr.run_id
                    {
                        keys.push(session_key(k));
                        it.next();
                    }
                    // The run's end key goes with its CDR, the call's
                    // dialog key with its first CDR (the other runs' ends
                    // stay saved until theirs are stored).
                    let mine_end = end_key(&SessionKey {
                        cgrid: cdr.cgrid.clone(),
                        run_id: cdr.run_id.clone(),
                    });
                    let (mine, rest): (Vec<String>, Vec<String>) = done
                        .into_iter()
                        .partition(|d| *d == dialog_key(&cdr.cgrid) || *d == mine_end);
                    done = rest;
                    keys.extend(mine);
                    let then = if Some(i) == last_cdr {
                        self.after_cdr.take()
                    } else {
                        None
                    };
                    // Submitted with the round's other CDRs, after the
                    // flush that makes what the call saved durable.
                    self.cdrs.push((cdr, keys, then));
                }
                Action::Forget(k) => self.writes.remove(session_key(&k)),
                Action::Save(s) => self.put(&session_key(&s.key), &*s),
                Action::Disconnect { key, owner, reason } => {
                    self.disconnect(&key, &owner, &reason);
                }
            }
        }
        for k in done {
            self.writes.remove(k);
        }
    }

    /// Hands the round's CDRs to the sink, in the order they were
    /// written, after one flush: whatever their calls saved is durable
    /// before any of them (whose commit removes it).
    pub(super) fn submit_cdrs(&mut self) {
        if self.cdrs.is_empty() {
            return;
        }
        self.writes.flush();
        for (cdr, keys, then) in std::mem::take(&mut self.cdrs) {
            let pending = self
                .shared
                .sink
                .submit(*cdr, &self.shared.counters.cdr_queue_waits);
            if !keys.is_empty() || then.is_some() {
                self.forgets.track(pending, keys, then);
            }
        }
    }

    pub(super) fn disconnect(&self, key: &SessionKey, owner: &Owner, reason: &str) {
        let c = &self.shared.counters;
        if *owner == Owner::Passive {
            c.passive_disconnects.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(session = %key, reason, "passive call should be disconnected, but nobody can end it: logged and counted");
            return;
        }
        let who = owner.to_string();
        let target = lock(&self.shared.owners).get(&who).cloned();
        match target.map(|t| t.disconnect(key, reason)) {
            Some(Ok(())) => {
                c.disconnects_sent.fetch_add(1, Ordering::Relaxed);
            }
            Some(Err(e)) => {
                c.disconnects_failed.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(session = %key, owner = %who, reason, error = %e, "disconnect failed");
            }
            None => {
                c.disconnects_failed.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(session = %key, owner = %who, reason, "disconnect asked, but nobody can end this call");
            }
        }
    }
}

/// Removes saved keys (a session or dialog whose CDR is durable).
/// Removes `keys` from the store, in one batch.
pub(super) fn forget(store: &dyn SessionStore, counters: &DriverCounters, keys: &[String]) {
    if keys.is_empty() {
        return;
    }
    let removes: Vec<&str> = keys.iter().map(String::as_str).collect();
    counters.store_batches.fetch_add(1, Ordering::Relaxed);
    counters
        .store_writes
        .fetch_add(keys.len() as u64, Ordering::Relaxed);
    if let Err(e) = store.apply_batch(&[], &removes) {
        counters.store_errors.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(keys = keys.len(), error = %e, "cannot forget sessions");
    }
}
