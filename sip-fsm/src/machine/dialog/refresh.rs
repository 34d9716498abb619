//! Responses to re-INVITE and UPDATE, and the deadlines.

use std::time::Duration;

use capture::Timestamp;

use super::{Ctx, Dialog, Final, Msg, Outcome, State, Timing, hash};
use crate::event::{DialogEvent, EndReason, Party, UpdateMethod};

impl Dialog {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn on_refresh_response(
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
        // RFC 3261 12.2.1.2: a 481 or 408 to a request within the dialog
        // means the peer no longer has it; the UAC ends the dialog.
        let lost = matches!(code, 408 | 481);
        if !lost && !(200..=299).contains(&code) {
            return Outcome::Ignored;
        }
        let to = hash(msg.to_tag.unwrap_or_default());
        let seq = msg.cseq.seq;
        let by = if from == caller_tag {
            if seq <= *caller_cseq {
                return Outcome::Repeat;
            }
            if lost && to != *to_tag {
                return Outcome::Ignored;
            }
            *caller_cseq = seq;
            Party::Caller
        } else if from == *to_tag {
            if callee_cseq.is_some_and(|c| seq <= c) {
                return Outcome::Repeat;
            }
            if lost && to != caller_tag {
                return Outcome::Ignored;
            }
            *callee_cseq = Some(seq);
            Party::Callee
        } else {
            return Outcome::Ignored;
        };
        if lost {
            self.end_answered(ts, EndReason::DialogLost, None, Some(by), ts, ctx);
            return Outcome::Progress;
        }
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
                bye,
            } => {
                let ringing = *ringing;
                let cancelled = cancel.is_some() || bye.is_some();
                if let Some(c) = candidate.take() {
                    let reason = if cancelled || c.code == 487 {
                        EndReason::Cancel
                    } else {
                        EndReason::Rejected
                    };
                    self.fail(c.code, c.phrase, c.at, c.reason, reason, ringing, now, ctx);
                } else if cancelled {
                    // Cancelled (CANCEL, or BYE on an early dialog), but no
                    // final response seen: 487 is what the UAS must have
                    // sent (RFC 3261 9.2, 15.1.2).
                    let (at, reason) = match (cancel.take(), bye.take()) {
                        (Some(c), _) => (c.at, c.reason),
                        (None, Some(b)) => (b.at, b.reason),
                        (None, None) => (now, None),
                    };
                    self.fail(
                        487,
                        "".into(),
                        at,
                        reason,
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
                        tag: 0,
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
            State::Confirmed { .. } => {
                let (end, reason) = self.confirmed_end(ctx.timing);
                match reason {
                    EndReason::SessionExpired => ctx.stats.session_expired += 1,
                    _ => ctx.stats.max_duration += 1,
                }
                self.end_answered(end, reason, None, None, now, ctx);
            }
            // The linger is over; the machine removes the dialog.
            State::Done { .. } => {}
        }
    }

    /// When and why an answered call ends if no BYE comes.
    ///
    /// With a session timer, at the last refresh plus Session-Expires (RFC
    /// 4028 10): a call that keeps refreshing stays up however long it
    /// lasts, and `max-duration` does not cut it. An interval longer than
    /// `max-duration` counts as `max-duration`, so a bogus huge value
    /// cannot keep a call open for years.
    ///
    /// Without one, at the answer plus `max-duration`, but never before the
    /// last successful refresh seen (a refresh that turned the timer off
    /// proves the call was up then).
    fn confirmed_end(&self, timing: &Timing) -> (Timestamp, EndReason) {
        let State::Confirmed {
            answer,
            last_refresh,
            session_expires,
            ..
        } = &self.state
        else {
            return (self.deadline, EndReason::MaxDuration);
        };
        match session_expires {
            Some(se) => {
                let se = Duration::from_secs(u64::from(*se)).min(timing.max_duration);
                (last_refresh.saturating_add(se), EndReason::SessionExpired)
            }
            None => (
                answer
                    .saturating_add(timing.max_duration)
                    .max(*last_refresh),
                EndReason::MaxDuration,
            ),
        }
    }

    pub(super) fn confirmed_deadline(&self, timing: &Timing) -> Timestamp {
        match &self.state {
            State::Confirmed { .. } => self.confirmed_end(timing).0,
            _ => self.deadline,
        }
    }
}
