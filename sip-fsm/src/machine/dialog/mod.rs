//! One call: its state and how each SIP message moves it.
//!
//! Transitions are idempotent: a repeat of a message (retransmission or a
//! copy from another hop, which differ only in Via and Max-Forwards) finds
//! the state already moved and changes nothing, so times always come from
//! the first copy. Message identity is the CSeq number and method, the
//! status code and the tags, never Via or Max-Forwards.
//!
//! The transitions are split by what moves them: [`invite`] (the initial
//! INVITE, its retries and responses, the caller's ACK), [`bye`] (BYE and
//! CANCEL, also when seen before the 2xx), [`refresh`] (re-INVITE and
//! UPDATE responses, deadlines).
//!
//! # Which dialog is the call's
//! The first 2xx names the dialog (its To-tag). That 2xx may have been
//! seen on a downstream hop whose To-tag a middle box (an SBC or B2BUA in
//! front of several early dialogs) rewrites towards the caller; until the
//! caller is known to hold the dialog (a 2xx on the hop of the first
//! INVITE copy, or the caller's ACK to the 2xx), a 2xx on the caller's hop
//! or the caller's ACK naming another To-tag moves the call to that
//! dialog: it is the one the caller will BYE.

mod bye;
mod invite;
mod persist;
mod refresh;

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use capture::Timestamp;
use smol_str::SmolStr;

use super::Stats;
use crate::event::{CallInfo, CallRecord, DialogEvent, EndReason, Party, ReasonInfo};
use crate::scan::{CSeq, Method, RawStart, Reason, SessionExpires};
pub(super) use persist::digest_check;

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
    pub start: RawStart<'a>,
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
    phrase: SmolStr,
    at: Timestamp,
    reason: Option<ReasonInfo>,
    /// Hash of its To-tag: the ACK to it is hop-by-hop, never the caller's
    /// choice of dialog.
    tag: u64,
}

/// A CANCEL waiting for the INVITE's final response.
#[derive(Debug)]
struct Cancel {
    at: Timestamp,
    reason: Option<ReasonInfo>,
}

/// A BYE seen on a dialog before that dialog's 2xx: on an early dialog
/// (RFC 3261 15), or crossing the 2xx, or captured before it on a skewed
/// clock. If the 2xx for that dialog comes, the call was answered and
/// ended at this BYE.
#[derive(Debug)]
struct EarlyBye {
    at: Timestamp,
    /// Hash of the dialog's remote tag (the To-tag of the 2xx it matches).
    tag: u64,
    by: Party,
    reason: Option<ReasonInfo>,
}

/// The call's state; each variant carries only what is valid in it.
#[derive(Debug)]
enum State {
    /// INVITE sent, no definitive final response yet.
    Early {
        /// First 180..189 seen for the current INVITE.
        ringing: Option<Timestamp>,
        /// A CANCEL seen; the INVITE's final response decides (a 2xx wins).
        cancel: Option<Box<Cancel>>,
        /// A final non-2xx seen on a downstream branch: the proxy may still
        /// try another branch, so it only counts if nothing better comes.
        candidate: Option<Box<Final>>,
        /// A BYE seen before any 2xx; a non-2xx final makes it a cancel.
        bye: Option<Box<EarlyBye>>,
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
        phrase: SmolStr,
        ringing: Option<Timestamp>,
        /// Hash of the To tag of the call's dialog.
        to_tag: u64,
        /// Whether the caller is known to hold `to_tag` (its 2xx seen on
        /// the caller's hop, or the caller's ACK to it); until then a 2xx
        /// on the caller's hop or the caller's ACK may name another dialog.
        pinned: bool,
        /// Hash of the To tag of a final non-2xx on another branch (its
        /// hop-by-hop ACK is not the caller's choice); 0 if none.
        declined: u64,
        /// A BYE on another dialog while not pinned: it ends the call if
        /// the caller turns out to hold that dialog.
        pending_bye: Option<Box<EarlyBye>>,
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
    pub deadline: Timestamp,
    info: Arc<CallInfo>,
    caller_tag: u64,
    invite_cseq: u32,
    /// When the first copy of the current initial INVITE was seen: PDD is
    /// measured from the INVITE that got the final answer (after a 401/407
    /// or 3xx, the retry), while the setup time stays the first INVITE's.
    invite_at: Timestamp,
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
    pub fn start(info: Arc<CallInfo>, msg: &Msg<'_>, ctx: &mut Ctx<'_>) -> Self {
        let branch = hash(msg.via_branch.unwrap_or_default());
        let at = info.setup_time;
        ctx.stats.attempts += 1;
        ctx.events
            .push_back(DialogEvent::Attempt { call: info.clone() });
        Dialog {
            deadline: at.saturating_add(ctx.timing.invite_timeout),
            caller_tag: hash(msg.from_tag.unwrap_or_default()),
            info,
            invite_cseq: msg.cseq.seq,
            invite_at: at,
            main_branch: branch,
            last_branch: branch,
            state: State::Early {
                ringing: None,
                cancel: None,
                candidate: None,
                bye: None,
            },
        }
    }

    /// The Call-ID's bytes (the call's info holds them).
    pub fn call_id(&self) -> &[u8] {
        &self.info.call_id_bytes
    }

    /// The hash of the caller's From tag: with the Call-ID, the call's key.
    pub fn caller_tag(&self) -> u64 {
        self.caller_tag
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
            RawStart::Request { method, .. } => self.on_request(method, msg, ts, branch, ctx),
            RawStart::Response { code, reason } => {
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
            // ACK is never an answer, whatever it acknowledges; the
            // caller's ACK to a 2xx only tells which dialog it took.
            Method::Ack => self.on_ack(msg, ts, branch, ctx),
            // re-INVITE and UPDATE take effect on their 2xx (RFC 3261 14,
            // RFC 3311 5).
            _ => Outcome::Ignored,
        }
    }

    /// Whether a message from/to these tags is on the caller's side of the
    /// dialog with remote tag `tag`: `Some(Caller)` for a request the
    /// caller sent, `Some(Callee)` for one the callee sent.
    fn party(&self, from: u64, to: u64, tag: u64) -> Option<Party> {
        if from == self.caller_tag && to == tag {
            Some(Party::Caller)
        } else if from == tag && to == self.caller_tag {
            Some(Party::Callee)
        } else {
            None
        }
    }

    /// The answered call ends at `end` (a BYE, an expiry, a lost dialog).
    #[allow(clippy::too_many_arguments)]
    fn end_answered(
        &mut self,
        end: Timestamp,
        end_reason: EndReason,
        reason: Option<ReasonInfo>,
        ended_by: Option<Party>,
        now: Timestamp,
        ctx: &mut Ctx<'_>,
    ) {
        let State::Confirmed {
            answer,
            code,
            phrase,
            ringing,
            pending_bye,
            ..
        } = &mut self.state
        else {
            return;
        };
        if pending_bye.take().is_some() {
            // A BYE on a dialog the caller never took: a losing fork's.
            ctx.stats.stray_byes += 1;
        }
        let rec = CallRecord {
            call: self.info.clone(),
            answer_time: Some(*answer),
            end_time: end,
            duration: end.since(*answer),
            end_reason,
            code: *code,
            phrase: std::mem::take(phrase),
            reason,
            pdd: Some(pdd(self.invite_at, *ringing, *answer)),
            ring_time: ringing.map(|r| answer.since(r)),
            ended_by,
        };
        self.end(rec, now, ctx);
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
        phrase: SmolStr,
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
            pdd: Some(pdd(self.invite_at, ringing, end)),
            ring_time: ringing.map(|r| end.since(r)),
            ended_by: None,
        }));
        self.state = State::Done { answered: false };
        self.deadline = now.saturating_add(ctx.timing.linger);
    }

    /// Bytes owned by this dialog on the heap (strings, boxes, the shared
    /// call info counted in full; not the capture point's text, one per
    /// point), for the memory budget.
    pub fn heap_size(&self) -> usize {
        let s = |b: &Option<SmolStr>| b.as_ref().map_or(0, text_heap);
        let i = &*self.info;
        let c = &i.charging;
        let info = std::mem::size_of::<CallInfo>()
            + 16 // Arc counters
            + i.origin_suffix.as_ref().map_or(0, |x| x.len())
            + s(&i.from_user)
            + s(&i.from_tag)
            + s(&i.to_user)
            + s(&i.ruri_user)
            + s(&i.pai_user)
            + s(&i.diversion_user)
            + text_heap(&c.account)
            + text_heap(&c.subject)
            + text_heap(&c.destination);
        let fin = |f: &Final| std::mem::size_of::<Final>() + text_heap(&f.phrase);
        let bye =
            |b: &Option<Box<EarlyBye>>| b.as_ref().map_or(0, |_| std::mem::size_of::<EarlyBye>());
        let state = match &self.state {
            State::Early {
                cancel,
                candidate,
                bye: early_bye,
                ..
            } => {
                cancel.as_ref().map_or(0, |_| std::mem::size_of::<Cancel>())
                    + candidate.as_deref().map_or(0, fin)
                    + bye(early_bye)
            }
            State::Retrying { last, .. } => fin(last),
            State::Confirmed {
                phrase,
                pending_bye,
                ..
            } => text_heap(phrase) + bye(pending_bye),
            State::Done { .. } => 0,
        };
        info + 16 + i.call_id_bytes.len() + state
    }
}

/// Post-dial delay: the INVITE to its first ringing, else to the final
/// response.
fn pdd(invite: Timestamp, ringing: Option<Timestamp>, fin: Timestamp) -> Duration {
    ringing.unwrap_or(fin).since(invite)
}

pub(super) fn reason_info(r: &Reason<'_>) -> ReasonInfo {
    ReasonInfo {
        protocol: lossy(r.protocol),
        cause: r.cause,
        text: r.text.map(lossy),
    }
}

/// Heap bytes of a text: none when it is held inline (up to 23 bytes), else
/// the string and its shared counters.
fn text_heap(s: &SmolStr) -> usize {
    if s.is_heap_allocated() {
        s.len() + 16
    } else {
        0
    }
}

pub(super) fn lossy(b: &[u8]) -> SmolStr {
    SmolStr::new(String::from_utf8_lossy(b))
}

/// A 64-bit hash (rustc's Fx): tags and branches are compared within one
/// call only, so it stands in for the string at a fraction of the memory.
pub(super) fn hash(b: &[u8]) -> u64 {
    use std::hash::Hasher as _;
    let mut h = rustc_hash::FxHasher::default();
    h.write(b);
    h.finish()
}
