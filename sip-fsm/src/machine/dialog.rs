//! One call: its state and how each SIP message moves it.
//!
//! Transitions are idempotent: a repeat of a message (retransmission or a
//! copy from another hop, which differ only in Via and Max-Forwards) finds
//! the state already moved and changes nothing, so times always come from
//! the first copy. Message identity is the CSeq number and method, the
//! status code and the tags, never Via or Max-Forwards.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use capture::Timestamp;

use super::Stats;
use crate::event::{CallInfo, CallRecord, DialogEvent, EndReason, Party, ReasonInfo, UpdateMethod};
use crate::scan::{CSeq, Method, Reason, SessionExpires, StartLine};

/// The configured durations the dialogs use.
#[derive(Clone, Copy, Debug)]
pub(super) struct Timing {
    pub invite_timeout: Duration,
    pub retry_wait: Duration,
    pub linger: Duration,
    pub max_duration: Duration,
}

/// What a dialog writes to while handling input.
pub(super) struct Ctx<'a> {
    pub events: &'a mut VecDeque<DialogEvent>,
    pub stats: &'a mut Stats,
    pub timing: &'a Timing,
}

/// What the dialogs read of a message: the scanned fields, with the From
/// and To tags taken out once (the URIs are never parsed per packet).
#[derive(Clone, Copy, Debug)]
pub(super) struct Msg<'a> {
    pub start: StartLine<'a>,
    pub cseq: CSeq<'a>,
    pub via_branch: Option<&'a [u8]>,
    pub from_tag: Option<&'a [u8]>,
    pub to_tag: Option<&'a [u8]>,
    pub reason: Option<Reason<'a>>,
    pub session_expires: Option<SessionExpires>,
}

/// A final response kept for later (boxed: most calls never need one).
#[derive(Debug)]
struct Final {
    code: u16,
    phrase: Box<str>,
    at: Timestamp,
    reason: Option<ReasonInfo>,
}

/// A CANCEL (or early BYE) waiting for the INVITE's final response.
#[derive(Debug)]
struct Cancel {
    at: Timestamp,
    reason: Option<ReasonInfo>,
}

/// The call's state; each variant carries only what is valid in it.
#[derive(Debug)]
enum State {
    /// INVITE sent, no definitive final response yet.
    Early {
        /// First 180..189 seen.
        ringing: Option<Timestamp>,
        /// A CANCEL seen; the INVITE's final response decides (a 2xx wins).
        cancel: Option<Box<Cancel>>,
        /// A final non-2xx seen on a downstream branch: the proxy may still
        /// try another branch, so it only counts if nothing better comes.
        candidate: Option<Box<Final>>,
    },
    /// A 3xx, 401, 407 or 422 ended the INVITE transaction; the UAC may
    /// send a new INVITE with the same Call-ID and a higher CSeq (RFC 3261
    /// 8.1.3.4, 22.2; RFC 4028 6), which continues the same call.
    Retrying {
        ringing: Option<Timestamp>,
        last: Box<Final>,
    },
    /// Answered: the first 2xx to the initial INVITE.
    Confirmed {
        answer: Timestamp,
        code: u16,
        phrase: Box<str>,
        ringing: Option<Timestamp>,
        /// Hash of the To tag of the answering fork.
        to_tag: u64,
        /// Highest refreshed CSeq from the caller (its CSeq space).
        caller_cseq: u32,
        /// Highest refreshed CSeq from the callee (its own CSeq space,
        /// RFC 3261 12.2.1.1).
        callee_cseq: Option<u32>,
        /// When the session was last refreshed (the 2xx, RFC 4028 10).
        last_refresh: Timestamp,
        /// Session interval in force, seconds.
        session_expires: Option<u32>,
    },
    /// Finished; kept for a while so late repeats are recognised.
    Done { answered: bool },
}

/// What a message did to the dialog.
enum Outcome {
    /// It moved the state.
    Progress,
    /// It repeats a message already processed.
    Repeat,
    /// It does not concern billing.
    Ignored,
}

/// One call, keyed by Call-ID and the caller's From tag (`super::key`).
#[derive(Debug)]
pub(super) struct Dialog {
    pub key: Arc<[u8]>,
    pub deadline: Timestamp,
    info: Arc<CallInfo>,
    caller_tag: u64,
    invite_cseq: u32,
    /// Top Via branch of the first copy of the current initial INVITE: the
    /// final response on it is the one the caller gets.
    main_branch: u64,
    /// Top Via branch of the last message, to tell retransmissions from
    /// hop copies (a statistic only).
    last_branch: u64,
    state: State,
}

impl Dialog {
    /// A new call from its first INVITE; emits the Attempt event.
    pub fn start(key: Arc<[u8]>, info: Arc<CallInfo>, msg: &Msg<'_>, ctx: &mut Ctx<'_>) -> Self {
        let branch = hash(msg.via_branch.unwrap_or_default());
        let at = info.setup_time;
        ctx.stats.attempts += 1;
        ctx.events
            .push_back(DialogEvent::Attempt { call: info.clone() });
        Dialog {
            key,
            deadline: at.saturating_add(ctx.timing.invite_timeout),
            caller_tag: hash(msg.from_tag.unwrap_or_default()),
            info,
            invite_cseq: msg.cseq.seq,
            main_branch: branch,
            last_branch: branch,
            state: State::Early {
                ringing: None,
                cancel: None,
                candidate: None,
            },
        }
    }

    /// Whether the dialog is finished and only lingering.
    pub fn is_done(&self) -> bool {
        matches!(self.state, State::Done { .. })
    }

    /// Whether the call was answered and has not finished.
    pub fn is_confirmed(&self) -> bool {
        matches!(self.state, State::Confirmed { .. })
    }

    /// Gives the unanswered call up to make room (`max-dialogs`): reported
    /// as failed at `now` with code 408, reason `evicted`. The machine
    /// removes the dialog right after.
    pub fn evict(&mut self, now: Timestamp, ctx: &mut Ctx<'_>) {
        let ringing = match &self.state {
            State::Early { ringing, .. } | State::Retrying { ringing, .. } => *ringing,
            State::Confirmed { .. } | State::Done { .. } => return,
        };
        self.fail(
            408,
            "".into(),
            now,
            None,
            EndReason::Evicted,
            ringing,
            now,
            ctx,
        );
    }

    /// Applies one message seen at `ts`.
    pub fn on_message(&mut self, msg: &Msg<'_>, ts: Timestamp, ctx: &mut Ctx<'_>) {
        let branch = hash(msg.via_branch.unwrap_or_default());
        let outcome = match msg.start {
            StartLine::Request { method, .. } => self.on_request(method, msg, ts, branch, ctx),
            StartLine::Response { code, reason } => {
                self.on_response(code, reason, msg, ts, branch, ctx)
            }
        };
        if let Outcome::Repeat = outcome {
            if branch == self.last_branch {
                ctx.stats.retransmissions += 1;
            } else {
                ctx.stats.hop_copies += 1;
            }
        }
        self.last_branch = branch;
    }

    fn on_request(
        &mut self,
        method: Method<'_>,
        msg: &Msg<'_>,
        ts: Timestamp,
        branch: u64,
        ctx: &mut Ctx<'_>,
    ) -> Outcome {
        match method {
            Method::Invite if msg.to_tag.is_none() => self.on_initial_invite(msg, ts, branch, ctx),
            Method::Cancel => {
                if msg.cseq.seq != self.invite_cseq {
                    return Outcome::Ignored;
                }
                self.on_cancel(msg, ts)
            }
            Method::Bye => self.on_bye(msg, ts, ctx),
            // re-INVITE and UPDATE take effect on their 2xx (RFC 3261 14,
            // RFC 3311 5); ACK is never an answer, whatever it acknowledges.
            _ => Outcome::Ignored,
        }
    }

    fn on_initial_invite(
        &mut self,
        msg: &Msg<'_>,
        ts: Timestamp,
        branch: u64,
        ctx: &mut Ctx<'_>,
    ) -> Outcome {
        let seq = msg.cseq.seq;
        if seq <= self.invite_cseq {
            return Outcome::Repeat;
        }
        match &self.state {
            State::Early { ringing, .. } | State::Retrying { ringing, .. } => {
                // The retry after a challenge or redirect: same call, setup
                // time stays the first INVITE's.
                let ringing = *ringing;
                self.invite_cseq = seq;
                self.main_branch = branch;
                self.state = State::Early {
                    ringing,
                    cancel: None,
                    candidate: None,
                };
                self.deadline = ts.saturating_add(ctx.timing.invite_timeout);
                ctx.stats.retried_invites += 1;
                Outcome::Progress
            }
            State::Confirmed { .. } | State::Done { .. } => {
                ctx.stats.call_id_reuse += 1;
                Outcome::Ignored
            }
        }
    }

    fn on_cancel(&mut self, msg: &Msg<'_>, ts: Timestamp) -> Outcome {
        match &mut self.state {
            State::Early { cancel, .. } => {
                if cancel.is_some() {
                    return Outcome::Repeat;
                }
                *cancel = Some(Box::new(Cancel {
                    at: ts,
                    reason: msg.reason.as_ref().map(reason_info),
                }));
                Outcome::Progress
            }
            State::Done { .. } => Outcome::Repeat,
            // Lost the race to a 2xx (RFC 3261 9.1: a 2xx wins), or too late.
            State::Retrying { .. } | State::Confirmed { .. } => Outcome::Ignored,
        }
    }

    fn on_bye(&mut self, msg: &Msg<'_>, ts: Timestamp, ctx: &mut Ctx<'_>) -> Outcome {
        match &self.state {
            State::Confirmed {
                answer,
                code,
                phrase,
                ringing,
                to_tag,
                ..
            } => {
                let from = hash(msg.from_tag.unwrap_or_default());
                let to = hash(msg.to_tag.unwrap_or_default());
                let by = if from == self.caller_tag && to == *to_tag {
                    Party::Caller
                } else if from == *to_tag && to == self.caller_tag {
                    Party::Callee
                } else {
                    ctx.stats.stray_byes += 1;
                    return Outcome::Ignored;
                };
                // RFC 3261 15.1.1: the session ends when the BYE is sent,
                // whatever the response (a 481 included).
                let rec = CallRecord {
                    call: self.info.clone(),
                    answer_time: Some(*answer),
                    end_time: ts,
                    duration: ts.since(*answer),
                    end_reason: EndReason::Bye,
                    code: *code,
                    phrase: phrase.clone(),
                    reason: msg.reason.as_ref().map(reason_info),
                    pdd: Some(pdd(self.info.setup_time, *ringing, *answer)),
                    ring_time: ringing.map(|r| answer.since(r)),
                    ended_by: Some(by),
                };
                self.end(rec, ts, ctx);
                Outcome::Progress
            }
            // A BYE on an early dialog (RFC 3261 15) cancels the attempt.
            State::Early { .. } => self.on_cancel(msg, ts),
            State::Done { .. } => Outcome::Repeat,
            State::Retrying { .. } => Outcome::Ignored,
        }
    }

    fn on_response(
        &mut self,
        code: u16,
        phrase: &[u8],
        msg: &Msg<'_>,
        ts: Timestamp,
        branch: u64,
        ctx: &mut Ctx<'_>,
    ) -> Outcome {
        let from = hash(msg.from_tag.unwrap_or_default());
        match msg.cseq.method {
            Method::Invite if from == self.caller_tag && msg.cseq.seq == self.invite_cseq => {
                self.on_invite_response(code, phrase, msg, ts, branch, ctx)
            }
            // A response to an earlier, superseded INVITE of this call.
            Method::Invite if from == self.caller_tag && msg.cseq.seq < self.invite_cseq => {
                Outcome::Repeat
            }
            Method::Invite => {
                self.on_refresh_response(UpdateMethod::ReInvite, code, from, msg, ts, ctx)
            }
            Method::Update => {
                self.on_refresh_response(UpdateMethod::Update, code, from, msg, ts, ctx)
            }
            // Responses to BYE (481 too), CANCEL, PRACK, INFO change nothing.
            _ => Outcome::Ignored,
        }
    }

    fn on_invite_response(
        &mut self,
        code: u16,
        phrase: &[u8],
        msg: &Msg<'_>,
        ts: Timestamp,
        branch: u64,
        ctx: &mut Ctx<'_>,
    ) -> Outcome {
        match code {
            // 100 Trying is hop-by-hop (RFC 3261 16.7 step 5).
            100 => Outcome::Ignored,
            101..=199 => match &mut self.state {
                State::Early { ringing, .. } if (180..=189).contains(&code) => {
                    if ringing.is_some() {
                        return Outcome::Repeat;
                    }
                    *ringing = Some(ts);
                    Outcome::Progress
                }
                _ => Outcome::Ignored,
            },
            200..=299 => self.on_invite_2xx(code, phrase, msg, ts, ctx),
            _ => self.on_invite_failure(code, phrase, msg, ts, branch, ctx),
        }
    }

    fn on_invite_2xx(
        &mut self,
        code: u16,
        phrase: &[u8],
        msg: &Msg<'_>,
        ts: Timestamp,
        ctx: &mut Ctx<'_>,
    ) -> Outcome {
        let tag = hash(msg.to_tag.unwrap_or_default());
        let se = msg.session_expires.map(|s| s.delta_secs);
        let ringing = match &mut self.state {
            // A 2xx wins over a pending CANCEL or a branch failure, and
            // over a challenge whose retry never came (RFC 3261 9.1, 16.7).
            State::Early { ringing, .. } | State::Retrying { ringing, .. } => *ringing,
            State::Confirmed {
                to_tag,
                session_expires,
                ..
            } => {
                if *to_tag != tag {
                    ctx.stats.extra_fork_answers += 1;
                    return Outcome::Ignored;
                }
                // A copy from a hop that added Session-Expires (RFC 4028 8).
                if session_expires.is_none() && se.is_some() {
                    *session_expires = se;
                    self.deadline = self.confirmed_deadline(ctx.timing);
                }
                return Outcome::Repeat;
            }
            State::Done { answered } => {
                if !*answered {
                    ctx.stats.late_answers += 1;
                    return Outcome::Ignored;
                }
                return Outcome::Repeat;
            }
        };
        self.state = State::Confirmed {
            answer: ts,
            code,
            phrase: lossy(phrase),
            ringing,
            to_tag: tag,
            caller_cseq: self.invite_cseq,
            callee_cseq: None,
            last_refresh: ts,
            session_expires: se,
        };
        self.deadline = self.confirmed_deadline(ctx.timing);
        ctx.stats.answers += 1;
        ctx.events.push_back(DialogEvent::Answer {
            call: self.info.clone(),
            answer_time: ts,
            to_tag: msg.to_tag.map(lossy),
            pdd: Some(pdd(self.info.setup_time, ringing, ts)),
            session_expires: se,
        });
        Outcome::Progress
    }

    fn on_invite_failure(
        &mut self,
        code: u16,
        phrase: &[u8],
        msg: &Msg<'_>,
        ts: Timestamp,
        branch: u64,
        ctx: &mut Ctx<'_>,
    ) -> Outcome {
        let State::Early {
            ringing,
            cancel,
            candidate,
        } = &mut self.state
        else {
            return match self.state {
                State::Confirmed { .. } => Outcome::Ignored,
                _ => Outcome::Repeat,
            };
        };
        let fin = Final {
            code,
            phrase: lossy(phrase),
            at: ts,
            reason: msg.reason.as_ref().map(reason_info),
        };
        // Only the response on the branch of the first INVITE copy reaches
        // the caller; one on a downstream branch may be followed by another
        // branch (serial or parallel forking, RFC 3261 16.7 step 6).
        if msg.via_branch.is_some() && branch != self.main_branch {
            if candidate.is_some() {
                return Outcome::Repeat;
            }
            *candidate = Some(Box::new(fin));
            ctx.stats.branch_finals += 1;
            return Outcome::Progress;
        }
        // Keep the time of the first copy of this same response.
        let at = match candidate.as_deref() {
            Some(c) if c.code == code => c.at.min(ts),
            _ => ts,
        };
        let fin = Final { at, ..fin };
        if cancel.is_none() && retryable(code) {
            let ringing = *ringing;
            self.deadline = ts.saturating_add(ctx.timing.retry_wait);
            self.state = State::Retrying {
                ringing,
                last: Box::new(fin),
            };
            return Outcome::Progress;
        }
        let (ringing, cancel) = (*ringing, cancel.take());
        let reason = if cancel.is_some() || code == 487 {
            EndReason::Cancel
        } else {
            EndReason::Rejected
        };
        let hdr = fin.reason.or_else(|| cancel.and_then(|c| c.reason));
        self.fail(fin.code, fin.phrase, fin.at, hdr, reason, ringing, ts, ctx);
        Outcome::Progress
    }

    #[allow(clippy::too_many_arguments)]
    fn on_refresh_response(
        &mut self,
        method: UpdateMethod,
        code: u16,
        from: u64,
        msg: &Msg<'_>,
        ts: Timestamp,
        ctx: &mut Ctx<'_>,
    ) -> Outcome {
        let caller_tag = self.caller_tag;
        let State::Confirmed {
            to_tag,
            caller_cseq,
            callee_cseq,
            last_refresh,
            session_expires,
            ..
        } = &mut self.state
        else {
            return Outcome::Ignored;
        };
        if !(200..=299).contains(&code) {
            return Outcome::Ignored;
        }
        let seq = msg.cseq.seq;
        let by = if from == caller_tag {
            if seq <= *caller_cseq {
                return Outcome::Repeat;
            }
            *caller_cseq = seq;
            Party::Caller
        } else if from == *to_tag {
            if callee_cseq.is_some_and(|c| seq <= c) {
                return Outcome::Repeat;
            }
            *callee_cseq = Some(seq);
            Party::Callee
        } else {
            return Outcome::Ignored;
        };
        // RFC 4028 10: a successful refresh restarts the session timer with
        // the interval in its 2xx; a 2xx without Session-Expires turns the
        // timer off (RFC 4028 7.4).
        *last_refresh = ts;
        *session_expires = msg.session_expires.map(|s| s.delta_secs);
        let se = *session_expires;
        self.deadline = self.confirmed_deadline(ctx.timing);
        ctx.stats.updates += 1;
        ctx.events.push_back(DialogEvent::Update {
            call: self.info.clone(),
            at: ts,
            method,
            by,
            session_expires: se,
        });
        Outcome::Progress
    }

    /// The deadline passed; `now` is the deadline itself.
    pub fn on_timeout(&mut self, now: Timestamp, ctx: &mut Ctx<'_>) {
        match &mut self.state {
            State::Early {
                ringing,
                cancel,
                candidate,
            } => {
                let ringing = *ringing;
                if let Some(c) = candidate.take() {
                    let reason = if cancel.is_some() || c.code == 487 {
                        EndReason::Cancel
                    } else {
                        EndReason::Rejected
                    };
                    self.fail(c.code, c.phrase, c.at, c.reason, reason, ringing, now, ctx);
                } else if let Some(c) = cancel.take() {
                    // Cancelled, but no final response seen: 487 is what
                    // the UAS must have sent (RFC 3261 9.2).
                    self.fail(
                        487,
                        "".into(),
                        c.at,
                        c.reason,
                        EndReason::Cancel,
                        ringing,
                        now,
                        ctx,
                    );
                } else {
                    ctx.stats.reaped += 1;
                    self.fail(
                        408,
                        "".into(),
                        now,
                        None,
                        EndReason::Timeout,
                        ringing,
                        now,
                        ctx,
                    );
                }
            }
            State::Retrying { ringing, last } => {
                let ringing = *ringing;
                let last = std::mem::replace(
                    last,
                    Box::new(Final {
                        code: 0,
                        phrase: "".into(),
                        at: now,
                        reason: None,
                    }),
                );
                self.fail(
                    last.code,
                    last.phrase,
                    last.at,
                    last.reason,
                    EndReason::Rejected,
                    ringing,
                    now,
                    ctx,
                );
            }
            State::Confirmed {
                answer,
                code,
                phrase,
                ringing,
                last_refresh,
                session_expires,
                ..
            } => {
                let max_end = answer.saturating_add(ctx.timing.max_duration);
                let (end, reason) = match session_expires {
                    Some(se) => {
                        let se_end =
                            last_refresh.saturating_add(Duration::from_secs(u64::from(*se)));
                        if se_end <= max_end {
                            (se_end, EndReason::SessionExpired)
                        } else {
                            (max_end, EndReason::MaxDuration)
                        }
                    }
                    None => (max_end, EndReason::MaxDuration),
                };
                match reason {
                    EndReason::SessionExpired => ctx.stats.session_expired += 1,
                    _ => ctx.stats.max_duration += 1,
                }
                let rec = CallRecord {
                    call: self.info.clone(),
                    answer_time: Some(*answer),
                    end_time: end,
                    duration: end.since(*answer),
                    end_reason: reason,
                    code: *code,
                    phrase: phrase.clone(),
                    reason: None,
                    pdd: Some(pdd(self.info.setup_time, *ringing, *answer)),
                    ring_time: ringing.map(|r| answer.since(r)),
                    ended_by: None,
                };
                self.end(rec, now, ctx);
            }
            // The linger is over; the machine removes the dialog.
            State::Done { .. } => {}
        }
    }

    fn confirmed_deadline(&self, timing: &Timing) -> Timestamp {
        match &self.state {
            State::Confirmed {
                answer,
                last_refresh,
                session_expires,
                ..
            } => {
                let max_end = answer.saturating_add(timing.max_duration);
                match session_expires {
                    Some(se) => max_end
                        .min(last_refresh.saturating_add(Duration::from_secs(u64::from(*se)))),
                    None => max_end,
                }
            }
            _ => self.deadline,
        }
    }

    fn end(&mut self, rec: CallRecord, now: Timestamp, ctx: &mut Ctx<'_>) {
        ctx.stats.ends += 1;
        ctx.events.push_back(DialogEvent::End(rec));
        self.state = State::Done { answered: true };
        self.deadline = now.saturating_add(ctx.timing.linger);
    }

    #[allow(clippy::too_many_arguments)]
    fn fail(
        &mut self,
        code: u16,
        phrase: Box<str>,
        end: Timestamp,
        reason: Option<ReasonInfo>,
        end_reason: EndReason,
        ringing: Option<Timestamp>,
        now: Timestamp,
        ctx: &mut Ctx<'_>,
    ) {
        ctx.stats.failures += 1;
        ctx.events.push_back(DialogEvent::Failed(CallRecord {
            call: self.info.clone(),
            answer_time: None,
            end_time: end,
            duration: Duration::ZERO,
            end_reason,
            code,
            phrase,
            reason,
            pdd: Some(pdd(self.info.setup_time, ringing, end)),
            ring_time: ringing.map(|r| end.since(r)),
            ended_by: None,
        }));
        self.state = State::Done { answered: false };
        self.deadline = now.saturating_add(ctx.timing.linger);
    }

    /// Bytes owned by this dialog on the heap (strings, boxes, the shared
    /// call info counted in full), for the memory budget.
    pub fn heap_size(&self) -> usize {
        let s = |b: &Option<Box<str>>| b.as_ref().map_or(0, |b| b.len());
        let i = &*self.info;
        let c = &i.charging;
        let info = std::mem::size_of::<CallInfo>()
            + 16 // Arc counters
            + i.call_id.len()
            + i.origin_suffix.as_ref().map_or(0, |x| x.len())
            + i.capture_point.len()
            + s(&i.from_user)
            + s(&i.from_tag)
            + s(&i.to_user)
            + s(&i.ruri_user)
            + s(&i.pai_user)
            + s(&i.diversion_user)
            + c.account.len()
            + c.subject.len()
            + c.destination.len();
        let state = match &self.state {
            State::Early {
                cancel, candidate, ..
            } => {
                cancel.as_ref().map_or(0, |_| std::mem::size_of::<Cancel>())
                    + candidate
                        .as_ref()
                        .map_or(0, |f| std::mem::size_of::<Final>() + f.phrase.len())
            }
            State::Retrying { last, .. } => std::mem::size_of::<Final>() + last.phrase.len(),
            State::Confirmed { phrase, .. } => phrase.len(),
            State::Done { .. } => 0,
        };
        info + 16 + self.key.len() + state
    }
}

/// Codes after which the UAC may retry on the same Call-ID: 3xx (RFC 3261
/// 8.1.3.4), 401/407 (22.2), 422 Session Interval Too Small (RFC 4028 6).
fn retryable(code: u16) -> bool {
    (300..=399).contains(&code) || matches!(code, 401 | 407 | 422)
}

/// Post-dial delay: setup to first ringing, else to the final response.
fn pdd(setup: Timestamp, ringing: Option<Timestamp>, fin: Timestamp) -> Duration {
    ringing.unwrap_or(fin).since(setup)
}

pub(super) fn reason_info(r: &Reason<'_>) -> ReasonInfo {
    ReasonInfo {
        protocol: lossy(r.protocol),
        cause: r.cause,
        text: r.text.map(lossy),
    }
}

pub(super) fn lossy(b: &[u8]) -> Box<str> {
    String::from_utf8_lossy(b).into()
}

/// FNV-1a: tags and branches are compared within one call only, so a
/// 64-bit hash stands in for the string at a fraction of the memory.
pub(super) fn hash(b: &[u8]) -> u64 {
    b.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, &c| {
        (h ^ u64::from(c)).wrapping_mul(0x0100_0000_01b3)
    })
}
