//! A call's ChargerS runs on its shard: an API operation's replies
//! combined over the runs, a passive call's dialog events handled per run,
//! and its resources (allocated at the answer, released at the end).

use std::sync::atomic::Ordering;

use chrono::{DateTime, Utc};
use sessions::{Reply, SessionEvent, SessionKey};
use sip_fsm::DialogEvent;

use super::{EXTRA_RESOURCE_LIMIT, Op, Shard, derive, end_key};

/// Two runs' replies as one: the least MaxUsage of the runs that are
/// priced (`unpriced`: the new one is a ChargerS `*none` run), the first
/// error.
fn combine(
    a: Result<Reply, sessions::Error>,
    b: Result<Reply, sessions::Error>,
    unpriced: bool,
) -> Result<Reply, sessions::Error> {
    let (mut a, b) = match (a, b) {
        (Err(e), _) | (Ok(_), Err(e)) => return Err(e),
        (Ok(a), Ok(b)) => (a, b),
    };
    if !unpriced {
        a.max_usage = match (a.max_usage, b.max_usage) {
            (Some(x), Some(y)) => Some(x.min(y)),
            (x, y) => x.or(y),
        };
        a.cost = a.cost.or(b.cost);
    }
    a.replayed &= b.replayed;
    Ok(a)
}

impl Shard<'_> {
    /// One API operation over every run of a call, their replies
    /// combined ([`combine`]).
    pub(super) fn api_runs(
        &mut self,
        op: Op,
        evs: &[SessionEvent],
        now: DateTime<Utc>,
    ) -> Result<Reply, sessions::Error> {
        self.with_charging(|mgr, ch| {
            let mut all = evs.iter().map(|ev| {
                let r = match op {
                    Op::Authorize => mgr.handle_authorize(ev, now, ch),
                    Op::Initiate => mgr.handle_initiate(ev, now, ch),
                    Op::Update => mgr.handle_update(ev, now, ch),
                    Op::Terminate => mgr.handle_terminate(ev, now, ch),
                    Op::ProcessCdr => mgr.handle_process_cdr(ev, now, ch),
                };
                (ev.request_type.trim() == "*none" && ev.derived(), r)
            });
            let Some((_, mut out)) = all.next() else {
                return Ok(Reply::default());
            };
            for (unpriced, r) in all {
                out = combine(out, r, unpriced);
            }
            out
        })
    }

    /// A passive call's dialog event when the plan has attributes,
    /// chargers or resources (`base`: its event as the mapping made it).
    /// `Some`: handled as its runs (the keys to remove once its CDRs are
    /// durable); `None`: handle it as the one `*default` run.
    pub(super) fn dialog_runs(
        &mut self,
        ev: &DialogEvent,
        base: &SessionEvent,
        now: DateTime<Utc>,
    ) -> Option<Vec<String>> {
        if matches!(ev, DialogEvent::End(_) | DialogEvent::Failed(_)) {
            self.release_resources(base);
        }
        let Some(runs) = derive::passive_runs(&self.shared.state, base, now) else {
            if matches!(ev, DialogEvent::Answer { .. }) {
                // Handled by the caller as today's one run, then flagged.
                let r = self.with_charging(|mgr, ch| mgr.handle_dialog(ev, now, ch));
                if let Err(e) = r {
                    tracing::debug!(origin = %base.origin_id, error = %e, "passive call");
                }
                self.allocate_resources(base, vec![SessionEvent::key_of_call(ev.call())]);
                return Some(Vec::new());
            }
            return None;
        };
        let intents = self.mgr.end_intents(ev, &runs);
        if !intents.is_empty() {
            // Every run's end durable before any is charged.
            for intent in &intents {
                self.put(&end_key(&intent.key), intent);
            }
            let mut done = Vec::new();
            for intent in intents {
                done.extend(self.end_call(intent, now));
            }
            return Some(done);
        }
        let r = self.with_charging(|mgr, ch| mgr.handle_dialog_runs(ev, &runs, now, ch));
        if let Err(e) = r {
            tracing::debug!(origin = %base.origin_id, error = %e, "passive call");
        }
        if matches!(ev, DialogEvent::Answer { .. }) {
            let keys = runs.iter().map(|r| r.key_of_call_run(ev.call())).collect();
            self.allocate_resources(base, keys);
        }
        Some(Vec::new())
    }

    /// A passive call's resources at its answer: allocated even over a
    /// limit (the call goes on anyway); over one, its sessions (`keys`)
    /// are flagged [`EXTRA_RESOURCE_LIMIT`] (so are their CDRs) and it is
    /// counted.
    fn allocate_resources(&mut self, base: &SessionEvent, keys: Vec<SessionKey>) {
        let state = &self.shared.state;
        if !state.profiles.current().has("Resources.csv") {
            return;
        }
        let ev = derive::to_event(base);
        if !crate::serve::subsys::resources::allocate_passive(state, &ev, &base.origin_id) {
            return;
        }
        self.shared
            .counters
            .resource_limit_exceeded
            .fetch_add(1, Ordering::Relaxed);
        tracing::warn!(origin = %base.origin_id, "passive call over a resource limit: flagged");
        for k in keys {
            self.mgr.set_extra(&k, EXTRA_RESOURCE_LIMIT, "true");
        }
    }

    /// A passive call's resources released at its end.
    fn release_resources(&self, base: &SessionEvent) {
        let state = &self.shared.state;
        if !state.profiles.current().has("Resources.csv") {
            return;
        }
        let ev = derive::to_event(base);
        if let Err(e) = crate::serve::subsys::resources::release(state, &ev, &base.origin_id) {
            tracing::debug!(origin = %base.origin_id, error = %e.message, "passive call: resource release");
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use sessions::{Owner, SessionStore};

    use super::super::tests::{HoldSink, memory_state, wait_until};
    use super::super::{CdrSink, Op, Sessions, SessionsSection, lock};
    use super::*;

    fn runs(origin: &str) -> Vec<SessionEvent> {
        let args = serde_json::json!({"Event": {"OriginID": origin, "OriginHost": "h",
                                                "RequestType": "*none", "Usage": "10s"}});
        let ev = SessionEvent::from_cgr_event(args.as_object().unwrap(), Owner::Api).unwrap();
        ["*default", "*raw"]
            .iter()
            .map(|r| SessionEvent {
                run_id: Some((*r).to_owned()),
                ..ev.clone()
            })
            .collect()
    }

    /// A terminate of a call's runs is answered once every run's CDR is
    /// durable, not at the first; each run's saved session goes with its
    /// own CDR.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_terminate_of_runs_is_answered_once_all_their_cdrs_are_durable() {
        let state = memory_state();
        let store: Arc<dyn SessionStore> = Arc::new(sessions::MemorySessions::new());
        let sink = Arc::new(HoldSink::default());
        let (s, _) = Sessions::start(
            state,
            &SessionsSection::default(),
            Arc::clone(&store),
            Arc::clone(&sink) as Arc<dyn CdrSink>,
        )
        .unwrap();
        s.call_runs(Op::Initiate, runs("r1")).await.unwrap();
        let keys = || -> Vec<String> {
            let mut k: Vec<String> = store.list().unwrap().into_iter().map(|(k, _)| k).collect();
            k.sort();
            k
        };
        assert_eq!(keys().len(), 2);
        let mut term = std::pin::pin!(s.call_runs(Op::Terminate, runs("r1")));
        let early = tokio::time::timeout(Duration::from_millis(200), &mut term).await;
        assert!(early.is_err(), "answered before its CDRs are durable");
        let mut held = std::mem::take(&mut *lock(&sink.0));
        assert_eq!(held.len(), 2);
        let (last, last_done) = held.pop().unwrap();
        let (first, first_done) = held.pop().unwrap();
        assert_eq!(
            (first.run_id.as_str(), last.run_id.as_str()),
            ("*default", "*raw")
        );
        assert_eq!(first.cgrid, last.cgrid);
        // Runs ChargerS made that nobody prices: Cost -1.
        assert_eq!(first.cost, Some(rust_decimal::Decimal::NEGATIVE_ONE));
        first_done.send(Ok(true)).unwrap();
        let still = tokio::time::timeout(Duration::from_millis(200), &mut term).await;
        assert!(still.is_err(), "answered before its last CDR is durable");
        wait_until(|| keys().len() == 1);
        assert!(keys()[0].ends_with(":*raw"), "{:?}", keys());
        last_done.send(Ok(true)).unwrap();
        term.await.unwrap();
        wait_until(|| keys().is_empty());
        s.stop_blocking();
    }
}
