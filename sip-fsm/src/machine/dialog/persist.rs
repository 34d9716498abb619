//! A dialog to and from a [`DialogSnapshot`].

use std::sync::Arc;

use super::{Dialog, Final, State, Timing, hash};
use crate::event::CallInfo;
use crate::snapshot::{DialogSnapshot, SnapshotState};

/// The text whose digest a snapshot carries, so that a machine hashing
/// differently (another build) refuses the snapshot instead of never
/// matching its BYE.
const DIGEST_PROBE: &[u8] = b"accurate sip-fsm tag digest";

/// The digest of [`DIGEST_PROBE`] under this build.
pub fn digest_check() -> u64 {
    hash(DIGEST_PROBE)
}

impl Dialog {
    /// The call as a snapshot; `None` once it has ended.
    pub fn snapshot(&self) -> Option<DialogSnapshot> {
        let state = match &self.state {
            State::Early { ringing, .. } => SnapshotState::Attempt { ringing: *ringing },
            State::Retrying { ringing, last } => SnapshotState::Retrying {
                ringing: *ringing,
                code: last.code,
                phrase: last.phrase.to_string(),
                at: last.at,
                to_tag: last.tag,
            },
            State::Confirmed {
                answer,
                code,
                phrase,
                ringing,
                to_tag,
                pinned,
                declined,
                caller_cseq,
                callee_cseq,
                last_refresh,
                session_expires,
                ..
            } => SnapshotState::Answered {
                answer_time: *answer,
                code: *code,
                phrase: phrase.to_string(),
                ringing: *ringing,
                to_tag: *to_tag,
                pinned: *pinned,
                declined: *declined,
                caller_cseq: *caller_cseq,
                callee_cseq: *callee_cseq,
                last_refresh: *last_refresh,
                session_expires: *session_expires,
            },
            State::Done { .. } => return None,
        };
        Some(DialogSnapshot {
            call: self.info.as_ref().into(),
            caller_tag: self.caller_tag,
            invite_cseq: self.invite_cseq,
            invite_at: self.invite_at,
            main_branch: self.main_branch,
            state,
            digest_check: digest_check(),
        })
    }

    /// The call of a snapshot, with its deadline: the attempt's INVITE
    /// timeout, the wait for a retried INVITE, or the answered call's session expiry or `max-duration`
    /// (either may have passed during the restart: it then fires at once,
    /// at the time it was due).
    pub fn restore(snap: &DialogSnapshot, timing: &Timing) -> Dialog {
        let info = Arc::new(snap.call.to_info());
        let state = match &snap.state {
            SnapshotState::Attempt { ringing } => State::Early {
                ringing: *ringing,
                cancel: None,
                candidate: None,
                bye: None,
            },
            SnapshotState::Retrying {
                ringing,
                code,
                phrase,
                at,
                to_tag,
            } => State::Retrying {
                ringing: *ringing,
                last: Box::new(Final {
                    code: *code,
                    phrase: phrase.as_str().into(),
                    at: *at,
                    reason: None,
                    tag: *to_tag,
                }),
            },
            SnapshotState::Answered {
                answer_time,
                code,
                phrase,
                ringing,
                to_tag,
                pinned,
                declined,
                caller_cseq,
                callee_cseq,
                last_refresh,
                session_expires,
            } => State::Confirmed {
                answer: *answer_time,
                code: *code,
                phrase: phrase.as_str().into(),
                ringing: *ringing,
                to_tag: *to_tag,
                pinned: *pinned,
                declined: *declined,
                pending_bye: None,
                caller_cseq: *caller_cseq,
                callee_cseq: *callee_cseq,
                last_refresh: *last_refresh,
                session_expires: *session_expires,
            },
        };
        let deadline = match &snap.state {
            SnapshotState::Retrying { at, .. } => at.saturating_add(timing.retry_wait),
            _ => snap.invite_at.saturating_add(timing.invite_timeout),
        };
        let mut d = Dialog {
            deadline,
            info,
            caller_tag: snap.caller_tag,
            invite_cseq: snap.invite_cseq,
            invite_at: snap.invite_at,
            main_branch: snap.main_branch,
            last_branch: snap.main_branch,
            state,
        };
        d.deadline = d.confirmed_deadline(timing);
        d
    }

    /// The shared call info.
    pub fn info(&self) -> &Arc<CallInfo> {
        &self.info
    }
}
