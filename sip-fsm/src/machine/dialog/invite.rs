//! The initial INVITE, its retries and responses, and the caller's ACK.

use capture::Timestamp;

use super::{Ctx, Dialog, Final, Msg, Outcome, State, hash, lossy, pdd, reason_info};
use crate::event::{DialogEvent, EndReason, UpdateMethod};
use crate::scan::Method;

impl Dialog {
    pub(super) fn on_initial_invite(
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
            State::Early { .. } | State::Retrying { .. } => {
                // The retry after a challenge or redirect: same call, setup
                // time stays the first INVITE's. It may come a minute
                // later (a person typing credentials) as long as the
                // attempt is remembered (`retry-wait-secs`). PDD and ring
                // time are this INVITE's own: its progress, not the
                // earlier transaction's, is what the caller waits for.
                self.invite_cseq = seq;
                self.invite_at = ts;
                self.main_branch = branch;
                self.state = State::Early {
                    ringing: None,
                    cancel: None,
                    candidate: None,
                    bye: None,
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

    pub(super) fn on_response(
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
            200..=299 => self.on_invite_2xx(code, phrase, msg, ts, branch, ctx),
            _ => self.on_invite_failure(code, phrase, msg, ts, branch, ctx),
        }
    }

    /// Whether a response on `branch` is on the caller's hop (the branch of
    /// the first INVITE copy); one without a Via branch counts as such.
    fn on_callers_hop(&self, msg: &Msg<'_>, branch: u64) -> bool {
        msg.via_branch.is_none() || branch == self.main_branch
    }

    fn on_invite_2xx(
        &mut self,
        code: u16,
        phrase: &[u8],
        msg: &Msg<'_>,
        ts: Timestamp,
        branch: u64,
        ctx: &mut Ctx<'_>,
    ) -> Outcome {
        let tag = hash(msg.to_tag.unwrap_or_default());
        let se = msg.session_expires.map(|s| s.delta_secs);
        let callers_hop = self.on_callers_hop(msg, branch);
        let (ringing, bye, declined) = match &mut self.state {
            // A 2xx wins over a pending CANCEL or a branch failure, and
            // over a challenge whose retry never came (RFC 3261 9.1, 16.7).
            State::Early {
                ringing,
                bye,
                candidate,
                ..
            } => (
                *ringing,
                bye.take(),
                candidate.as_ref().map_or(0, |c| c.tag),
            ),
            State::Retrying { ringing, .. } => (*ringing, None, 0),
            State::Confirmed {
                to_tag,
                pinned,
                session_expires,
                ..
            } => {
                if *to_tag != tag {
                    if !*pinned && callers_hop {
                        // The caller's hop names another dialog than the
                        // 2xx seen first (a middle box rewrote the To-tag).
                        return self.repin(tag, ts, ctx);
                    }
                    ctx.stats.extra_fork_answers += 1;
                    return Outcome::Ignored;
                }
                *pinned |= callers_hop;
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
        // A BYE on this dialog was seen before its 2xx: the 2xx crossed it,
        // came in later than the reorder window allows, or was stamped by a
        // clock behind the BYE's. The BYE ends the call either way (RFC
        // 3261 15.1.1) and the 2xx must not revive it. If the 2xx is the
        // earlier packet (processed late), the usage is exact; if it carries
        // the later time, the 2xx was still sent before the BYE, so the
        // answer is taken at the BYE: usage zero, the honest bound, never
        // max-duration.
        let (answer, ended, other) = match bye {
            Some(b) if b.tag == tag => (ts.min(b.at), Some(b), None),
            other => (ts, None, other),
        };
        // A BYE on another early dialog: stray once the caller is known to
        // hold this one; otherwise kept in case it names the caller's.
        let pending_bye = match other {
            Some(b) if !callers_hop => Some(b),
            Some(_) => {
                ctx.stats.stray_byes += 1;
                None
            }
            None => None,
        };
        self.state = State::Confirmed {
            answer,
            code,
            phrase: lossy(phrase),
            ringing,
            to_tag: tag,
            pinned: callers_hop,
            declined,
            pending_bye,
            caller_cseq: self.invite_cseq,
            callee_cseq: None,
            last_refresh: answer,
            session_expires: se,
        };
        self.deadline = self.confirmed_deadline(ctx.timing);
        ctx.stats.answers += 1;
        ctx.events.push_back(DialogEvent::Answer {
            call: self.info.clone(),
            answer_time: answer,
            to_tag: msg.to_tag.map(lossy),
            pdd: Some(pdd(self.invite_at, ringing, answer)),
            session_expires: se,
        });
        if let Some(b) = ended {
            self.end_answered(b.at, EndReason::Bye, b.reason, Some(b.by), ts, ctx);
        }
        Outcome::Progress
    }

    /// The caller's ACK for the initial INVITE. The ACK to a 2xx is the
    /// caller's own (RFC 3261 13.2.2.4): its To-tag is the dialog the
    /// caller took. The ACK to a non-2xx is hop-by-hop, on the INVITE's
    /// branch (17.1.1.3), and tells nothing.
    pub(super) fn on_ack(
        &mut self,
        msg: &Msg<'_>,
        ts: Timestamp,
        branch: u64,
        ctx: &mut Ctx<'_>,
    ) -> Outcome {
        let from = hash(msg.from_tag.unwrap_or_default());
        if from != self.caller_tag || msg.cseq.seq != self.invite_cseq || branch == self.main_branch
        {
            return Outcome::Ignored;
        }
        let tag = hash(msg.to_tag.unwrap_or_default());
        let State::Confirmed {
            to_tag,
            pinned,
            declined,
            ..
        } = &mut self.state
        else {
            return Outcome::Ignored;
        };
        if tag == *to_tag {
            *pinned = true;
            Outcome::Ignored
        } else if !*pinned && tag != *declined {
            self.repin(tag, ts, ctx)
        } else {
            Outcome::Ignored
        }
    }

    /// The caller holds dialog `tag`, not the one the first 2xx named:
    /// from now on the call is on it. A BYE on it seen earlier ends the
    /// call.
    fn repin(&mut self, tag: u64, ts: Timestamp, ctx: &mut Ctx<'_>) -> Outcome {
        let State::Confirmed {
            to_tag,
            pinned,
            callee_cseq,
            pending_bye,
            ..
        } = &mut self.state
        else {
            return Outcome::Ignored;
        };
        *to_tag = tag;
        *pinned = true;
        // The callee's CSeq space is per dialog (RFC 3261 12.2.1.1).
        *callee_cseq = None;
        if let Some(b) = pending_bye.take_if(|b| b.tag == tag) {
            self.end_answered(b.at, EndReason::Bye, b.reason, Some(b.by), ts, ctx);
        }
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
        let tag = hash(msg.to_tag.unwrap_or_default());
        let callers_hop = self.on_callers_hop(msg, branch);
        let State::Early {
            ringing,
            cancel,
            candidate,
            bye,
        } = &mut self.state
        else {
            return match &mut self.state {
                State::Confirmed { declined, .. } => {
                    // A branch that failed after another answered.
                    *declined = tag;
                    Outcome::Ignored
                }
                _ => Outcome::Repeat,
            };
        };
        let fin = Final {
            code,
            phrase: lossy(phrase),
            at: ts,
            reason: msg.reason.as_ref().map(reason_info),
            tag,
        };
        // Only the response on the branch of the first INVITE copy reaches
        // the caller; one on a downstream branch may be followed by another
        // branch (serial or parallel forking, RFC 3261 16.7 step 6).
        if !callers_hop {
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
        let cancelled = cancel.is_some() || bye.is_some();
        if !cancelled && retryable(code) {
            let ringing = *ringing;
            self.deadline = ts.saturating_add(ctx.timing.retry_wait);
            self.state = State::Retrying {
                ringing,
                last: Box::new(fin),
            };
            return Outcome::Progress;
        }
        let (ringing, cancel, bye) = (*ringing, cancel.take(), bye.take());
        let reason = if cancelled || code == 487 {
            EndReason::Cancel
        } else {
            EndReason::Rejected
        };
        let hdr = fin
            .reason
            .or_else(|| cancel.and_then(|c| c.reason))
            .or_else(|| bye.and_then(|b| b.reason));
        self.fail(fin.code, fin.phrase, fin.at, hdr, reason, ringing, ts, ctx);
        Outcome::Progress
    }
}

/// Codes after which the UAC may retry on the same Call-ID: 3xx (RFC 3261
/// 8.1.3.4), 401/407 (22.2), 422 Session Interval Too Small (RFC 4028 6).
fn retryable(code: u16) -> bool {
    (300..=399).contains(&code) || matches!(code, 401 | 407 | 422)
}
