//! The end of a call: the final charge and the CDR; the dialog machine's
//! events; the timers' work.

use std::collections::BTreeMap;
use std::time::Duration;

use capture::Timestamp;
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use sip_fsm::DialogEvent;

use super::charge::Piece;
use super::types::plus;
use super::{
    Action, Charging, EXTRA_DISCONNECT_REQUESTED, EXTRA_TTL_EXPIRED, EndIntent, REASON_DEBIT_ERROR,
    REASON_INSUFFICIENT_CREDIT, REASON_MAX_CALL_DURATION, REASON_MAX_USAGE, Reply, RequestType,
    SessionEvent, SessionKey, SessionManager, SessionSnapshot,
};
use crate::Error;
use crate::cdr::{Cdr, CdrOptions};

/// `ExtraFields` key CGRateS events carry the disconnect cause in.
const DISCONNECT_CAUSE: &str = "DisconnectCause";
/// The least a prepaid session's reservation grows by when it runs out.
const MIN_RESERVE_STEP: Duration = Duration::from_secs(1);

fn ts(t: DateTime<Utc>) -> Timestamp {
    Timestamp::from_secs_nanos(t.timestamp(), t.timestamp_subsec_nanos())
}

impl SessionManager {
    /// Feeds an event of the dialog machine (a passive call, owned by
    /// nobody): Attempt authorizes, Answer initiates, Update is a
    /// keep-alive (no usage), End terminates with the call's usage and
    /// writes its CDR ([`Cdr::from_record`]), Failed writes the attempt's
    /// CDR (Cost 0, nothing debited). The request type is the call's
    /// mapping's.
    ///
    /// # Errors
    /// As the operation it maps to; the CDR of an ended call is written
    /// whatever the error.
    pub fn handle_dialog(
        &mut self,
        ev: &DialogEvent,
        now: DateTime<Utc>,
        ch: &Charging<'_>,
    ) -> Result<Reply, Error> {
        let call = ev.call();
        let key = SessionEvent::key_of_call(call);
        let mut sev = SessionEvent::from_call(call).with_defaults();
        match ev {
            DialogEvent::Attempt { .. } => {
                let r = self.authorize(&sev, &key, now, ch);
                match &r {
                    Ok(_) => self.counters.authorized += 1,
                    Err(_) => self.counters.unauthorized += 1,
                }
                r.map(|m| Reply {
                    max_usage: Some(m),
                    ..Reply::default()
                })
            }
            DialogEvent::Answer { answer_time, .. } => {
                sev.answer_time =
                    DateTime::from_timestamp(answer_time.secs(), answer_time.subsec_nanos());
                self.initiate(key, sev, now, ch)
            }
            DialogEvent::Update { .. } => {
                if let Some(s) = self.sessions.get_mut(&key) {
                    s.last_update = now;
                    self.counters.updated += 1;
                }
                Ok(Reply::default())
            }
            DialogEvent::End(_) | DialogEvent::Failed(_) => match self.end_intent(ev) {
                Some(intent) => self.handle_end_intent(intent, now, ch),
                None => Ok(Reply::default()),
            },
        }
    }

    /// The event of a passive call as its dialog event shows it (the
    /// mapping's charging fields, CGRateS's defaults; the answer time from
    /// Answer, End and Failed, the usage from End): what AttributeS and
    /// ChargerS derive the call's runs from.
    pub fn call_event(&self, ev: &DialogEvent) -> SessionEvent {
        if let Some(intent) = self.end_intent(ev) {
            return intent.event;
        }
        let mut sev = SessionEvent::from_call(ev.call()).with_defaults();
        if let DialogEvent::Answer { answer_time, .. } = ev {
            sev.answer_time =
                DateTime::from_timestamp(answer_time.secs(), answer_time.subsec_nanos());
        }
        sev
    }

    /// [`SessionManager::handle_dialog`] for a call ChargerS split into
    /// `runs` (each [`SessionManager::call_event`] as its charger and
    /// attributes made it, its `run_id` set): Attempt authorizes every
    /// run, Answer initiates each, Update keeps each alive. End and Failed
    /// go through [`SessionManager::end_intents`] instead.
    ///
    /// # Errors
    /// The first run's error (every run is still handled).
    pub fn handle_dialog_runs(
        &mut self,
        ev: &DialogEvent,
        runs: &[SessionEvent],
        now: DateTime<Utc>,
        ch: &Charging<'_>,
    ) -> Result<Reply, Error> {
        let call = ev.call();
        let mut out: Option<Result<Reply, Error>> = None;
        for run in runs {
            let key = run.key_of_call_run(call);
            let r = match ev {
                DialogEvent::Attempt { .. } => {
                    let r = self.authorize(run, &key, now, ch);
                    match &r {
                        Ok(_) => self.counters.authorized += 1,
                        Err(_) => self.counters.unauthorized += 1,
                    }
                    r.map(|m| Reply {
                        max_usage: Some(m),
                        ..Reply::default()
                    })
                }
                DialogEvent::Answer { .. } => self.initiate(key, run.clone(), now, ch),
                DialogEvent::Update { .. } => {
                    if let Some(s) = self.sessions.get_mut(&key) {
                        s.last_update = now;
                        self.counters.updated += 1;
                    }
                    Ok(Reply::default())
                }
                DialogEvent::End(_) | DialogEvent::Failed(_) => Ok(Reply::default()),
            };
            // The first error, else the first reply.
            if matches!((&out, &r), (None, _) | (Some(Ok(_)), Err(_))) {
                out = Some(r);
            }
        }
        out.unwrap_or_else(|| Ok(Reply::default()))
    }

    /// [`SessionManager::end_intent`] for a call ChargerS split into
    /// `runs`: one end per run, its CDR the call's with the run's RunID
    /// and charging fields (Tenant, Account, Subject, Destination,
    /// Category, ToR, RequestType as the run's attributes left them, its
    /// other fields added to `ExtraFields`). Empty for the events that do
    /// not end a call.
    pub fn end_intents(&self, ev: &DialogEvent, runs: &[SessionEvent]) -> Vec<EndIntent> {
        let Some(base) = self.end_intent(ev) else {
            return Vec::new();
        };
        let call = ev.call();
        runs.iter()
            .map(|run| {
                let key = run.key_of_call_run(call);
                let mut cdr = base.cdr.clone();
                cdr.run_id.clone_from(&key.run_id);
                cdr.tenant.clone_from(&run.tenant);
                cdr.account.clone_from(&run.account);
                cdr.subject.clone_from(&run.subject);
                cdr.destination.clone_from(&run.destination);
                cdr.category.clone_from(&run.category);
                cdr.tor.clone_from(&run.tor);
                cdr.request_type.clone_from(&run.request_type);
                for (k, v) in &run.extra_fields {
                    cdr.extra_fields
                        .entry(k.clone())
                        .or_insert_with(|| v.clone());
                }
                let mut event = run.clone();
                event.answer_time = base.event.answer_time;
                event.usage = base.event.usage;
                EndIntent { key, event, cdr }
            })
            .collect()
    }

    /// What the end of a passive call (End or Failed; `None` for the other
    /// events) will be charged and recorded as, before anything is
    /// charged: the driver makes it durable first, so a crash between the
    /// charge and the CDR's commit is finished at the next start by
    /// [`SessionManager::handle_end_intent`] (the charge replays from the
    /// account's marks, the CDR insert is idempotent).
    pub fn end_intent(&self, ev: &DialogEvent) -> Option<EndIntent> {
        let rec = ev.record()?;
        let call = ev.call();
        let key = SessionEvent::key_of_call(call);
        let mut event = SessionEvent::from_call(call).with_defaults();
        let opts = CdrOptions {
            run_id: key.run_id.clone(),
            source: self.config.cdr_source.clone(),
            origin_host: None,
        };
        let cdr = Cdr::from_record(rec, &opts);
        event.answer_time = rec
            .answer_time
            .and_then(|a| DateTime::from_timestamp(a.secs(), a.subsec_nanos()));
        event.usage = Some(cdr.usage);
        Some(EndIntent { key, event, cdr })
    }

    /// Ends a passive call from its [`EndIntent`]: terminates its active
    /// session (settling its reservations) or, with none, charges it as a
    /// finished call; writes its CDR either way.
    ///
    /// # Errors
    /// As [`SessionManager::handle_terminate`]; the CDR is written
    /// whatever the error.
    pub fn handle_end_intent(
        &mut self,
        intent: EndIntent,
        now: DateTime<Utc>,
        ch: &Charging<'_>,
    ) -> Result<Reply, Error> {
        let EndIntent {
            key,
            event,
            mut cdr,
        } = intent;
        if let Some(s) = self.sessions.remove(&key) {
            self.unarm(&key);
            // What the session learnt (a resource limit flag...) goes
            // into its CDR.
            for (k, v) in &s.event.extra_fields {
                cdr.extra_fields
                    .entry(k.clone())
                    .or_insert_with(|| v.clone());
            }
            let usage = cdr.usage;
            return self.finish(&s, usage, cdr, now, ch);
        }
        self.finished_call(&event, &key, Some(cdr), now, ch)
    }

    /// Charges a call with no active session (ProcessCDR, a terminate of a
    /// session not active, a passive call seen ending only) and writes its
    /// CDR. Unanswered: Cost 0 (none for `*none`), nothing debited.
    pub(super) fn finished_call(
        &mut self,
        ev: &SessionEvent,
        key: &SessionKey,
        cdr: Option<Cdr>,
        now: DateTime<Utc>,
        ch: &Charging<'_>,
    ) -> Result<Reply, Error> {
        let usage = ev.usage.unwrap_or(Duration::ZERO);
        let mut cdr = cdr.unwrap_or_else(|| self.cdr_of_event(ev, key, ev.answer_time, usage, now));
        let rt = match ev.request_type() {
            Ok(rt) => rt,
            Err(e) => {
                cdr.set_rating_error(&e.to_string());
                self.write_cdr(cdr);
                return Err(e);
            }
        };
        // An unanswered attempt needs no account: nothing is charged.
        let Some(answer) = ev.answer_time else {
            self.counters.failed_attempts += 1;
            cdr.cost = match rt {
                RequestType::None if ev.derived() => Some(Decimal::NEGATIVE_ONE),
                RequestType::None => None,
                _ => Some(Decimal::ZERO),
            };
            self.write_cdr(cdr);
            return Ok(Reply {
                cost: cdr_cost(rt),
                ..Reply::default()
            });
        };
        if let Err(e) = ev.check_mandatory(rt) {
            cdr.set_rating_error(&e.to_string());
            self.write_cdr(cdr);
            return Err(e);
        }
        let s = SessionSnapshot {
            key: key.clone(),
            event: ev.clone(),
            request_type: rt,
            answer_time: answer,
            started: now,
            last_update: now,
            total_usage: usage,
            last_usage: Duration::ZERO,
            reserved: Duration::ZERO,
            next_seq: 0,
            debit_interval: Duration::ZERO,
            max_usage: usage,
            credit_short: false,
            disconnect: None,
        };
        // Counted as a session that started and ended now.
        self.finish(&s, usage, cdr, now, ch)
    }

    /// The final charge of a session by its request type, and its CDR.
    pub(super) fn finish(
        &mut self,
        s: &SessionSnapshot,
        usage: Duration,
        mut cdr: Cdr,
        now: DateTime<Utc>,
        ch: &Charging<'_>,
    ) -> Result<Reply, Error> {
        let piece = Piece {
            answer: s.answer_time,
            offset: Duration::ZERO,
            usage,
        };
        let charged: Result<(Option<Decimal>, bool), Error> = match s.request_type {
            RequestType::None => Ok((None, false)),
            RequestType::Rated if usage.is_zero() => Ok((Some(Decimal::ZERO), false)),
            RequestType::Rated => ch.price(&s.event, piece).map(|c| (Some(c), false)),
            RequestType::Prepaid | RequestType::PseudoPrepaid | RequestType::Postpaid => ch
                .settle(&s.event, &s.key, piece, now, self.config.keep_charged_marks)
                .map(|st| (Some(st.charge.cost), st.replayed)),
        };
        if let Some(r) = &s.disconnect {
            cdr.extra_fields
                .insert(EXTRA_DISCONNECT_REQUESTED.to_owned(), r.clone());
        }
        self.counters.terminated += 1;
        let out = match charged {
            Ok((cost, replayed)) => {
                if replayed {
                    self.counters.duplicates += 1;
                }
                cdr.cost = cost;
                if cost.is_none() {
                    cdr.cost_source.clear();
                    if s.event.derived() {
                        // A ChargerS run not priced (`*none`): -1, as CGRateS.
                        cdr.cost = Some(Decimal::NEGATIVE_ONE);
                    }
                } else if cdr.cost_source.is_empty() {
                    // As CGRateS marks a CDR its session charged.
                    "*sessions".clone_into(&mut cdr.cost_source);
                }
                Ok(Reply {
                    max_usage: None,
                    cost,
                    replayed,
                })
            }
            Err(e) => {
                self.counters.debit_errors += 1;
                cdr.set_rating_error(&e.to_string());
                cdr.cost_source.clear();
                Err(e)
            }
        };
        self.write_cdr(cdr);
        self.actions.push_back(Action::Forget(s.key.clone()));
        out
    }

    fn write_cdr(&mut self, cdr: Cdr) {
        self.counters.cdrs += 1;
        self.actions.push_back(Action::WriteCdr(Box::new(cdr)));
    }

    /// The CDR of an API event.
    pub(super) fn cdr_of_event(
        &self,
        ev: &SessionEvent,
        key: &SessionKey,
        answer: Option<DateTime<Utc>>,
        usage: Duration,
        now: DateTime<Utc>,
    ) -> Cdr {
        cdr_of(ev, key, answer, usage, now, &self.config.cdr_source)
    }

    /// A prepaid session's reserved usage ran out at `at` with no update
    /// extending it: reserve the next piece (the debit interval, or with
    /// no loop the usage granted at initiate) or, when the balance cannot
    /// pay any of it, ask for the disconnect at this very moment.
    pub(super) fn reserve_end(
        &mut self,
        key: &SessionKey,
        at: DateTime<Utc>,
        now: DateTime<Utc>,
        ch: &Charging<'_>,
    ) {
        let Some(mut s) = self.sessions.remove(key) else {
            return;
        };
        // A reservation of a few nanoseconds (a tiny requested Usage or
        // debit interval) would run out again at once: each step is at
        // least MIN_RESERVE_STEP, and without a debit interval it also
        // covers the time the deadline is behind `now` (an AnswerTime in
        // the past), so the timer cannot fire forever.
        let chunk = if s.debit_interval.is_zero() {
            let behind = (now - at).to_std().unwrap_or(Duration::ZERO);
            self.wanted(&s.event).max(behind)
        } else {
            s.debit_interval
        }
        .max(MIN_RESERVE_STEP);
        let reason = match self.reserve_more(&mut s, chunk, at, ch) {
            Ok(got) if got.is_zero() => Some(self.exhausted_reason(&s)),
            Ok(_) => None,
            Err(_) => {
                self.counters.debit_errors += 1;
                Some(REASON_DEBIT_ERROR)
            }
        };
        self.sessions.insert(key.clone(), s);
        match reason {
            Some(r) => self.request_disconnect(key, r),
            None => {
                self.save(key);
                self.rearm(key);
            }
        }
    }

    fn exhausted_reason(&self, s: &SessionSnapshot) -> &'static str {
        if s.reserved >= self.config.max_call_duration {
            REASON_MAX_CALL_DURATION
        } else if s.credit_short {
            REASON_INSUFFICIENT_CREDIT
        } else {
            REASON_MAX_USAGE
        }
    }

    /// An active session got no update for `session-ttl`: terminated at
    /// `at` with the usage known plus `ttl-usage`.
    pub(super) fn ttl_end(&mut self, key: &SessionKey, at: DateTime<Utc>, ch: &Charging<'_>) {
        let Some(s) = self.sessions.remove(key) else {
            return;
        };
        self.unarm(key);
        self.counters.ttl_expired += 1;
        let usage = s
            .total_usage
            .saturating_add(self.config.ttl_usage.unwrap_or(Duration::ZERO));
        let mut cdr = self.cdr_of_event(&s.event, key, Some(s.answer_time), usage, at);
        cdr.extra_fields
            .insert(EXTRA_TTL_EXPIRED.to_owned(), "true".to_owned());
        // Counted in debit_errors when it fails; nobody to answer.
        let _ = self.finish(&s, usage, cdr, at, ch);
    }
}

fn cdr_cost(rt: RequestType) -> Option<Decimal> {
    (rt != RequestType::None).then_some(Decimal::ZERO)
}

/// The CDR of a finished call's event, not rated (no cost), as
/// `ProcessCDR` builds it: its session's key (CGRID of OriginID and
/// OriginHost, the `*default` run), the event's AnswerTime and Usage
/// (none for an unanswered call), `default_source` when the event names
/// no Source. Call it on an event [`SessionEvent::with_defaults`] filled.
pub fn event_cdr(ev: &SessionEvent, default_source: &str, now: DateTime<Utc>) -> Cdr {
    let usage = ev.usage.unwrap_or(Duration::ZERO);
    cdr_of(ev, &ev.key(), ev.answer_time, usage, now, default_source)
}

fn cdr_of(
    ev: &SessionEvent,
    key: &SessionKey,
    answer: Option<DateTime<Utc>>,
    usage: Duration,
    now: DateTime<Utc>,
    default_source: &str,
) -> Cdr {
    let setup = ev.setup_time.or(answer).unwrap_or(now);
    let end = answer.map_or(now, |a| plus(a, usage));
    let mut extra_fields: BTreeMap<String, String> = ev.extra_fields.clone();
    let disconnect_cause = extra_fields.remove(DISCONNECT_CAUSE).unwrap_or_default();
    Cdr {
        cgrid: key.cgrid.clone(),
        run_id: key.run_id.clone(),
        origin_id: ev.origin_id.clone(),
        origin_host: ev.origin_host.clone(),
        source: if ev.source.is_empty() {
            default_source.to_owned()
        } else {
            ev.source.clone()
        },
        tor: ev.tor.clone(),
        request_type: ev.request_type.clone(),
        tenant: ev.tenant.clone(),
        category: ev.category.clone(),
        account: ev.account.clone(),
        subject: ev.subject.clone(),
        destination: ev.destination.clone(),
        setup_time: ts(setup),
        answer_time: answer.map(ts),
        usage: if answer.is_some() {
            usage
        } else {
            Duration::ZERO
        },
        cost: None,
        cost_source: String::new(),
        disconnect_cause,
        extra_fields,
        end_time: ts(end),
    }
}
