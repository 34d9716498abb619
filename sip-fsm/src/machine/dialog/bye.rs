//! BYE and CANCEL.

use capture::Timestamp;

use super::{Cancel, Ctx, Dialog, EarlyBye, Msg, Outcome, State, hash, reason_info};
use crate::event::{EndReason, Party};

impl Dialog {
    pub(super) fn on_cancel(&mut self, msg: &Msg<'_>, ts: Timestamp) -> Outcome {
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

    pub(super) fn on_bye(&mut self, msg: &Msg<'_>, ts: Timestamp, ctx: &mut Ctx<'_>) -> Outcome {
        let from = hash(msg.from_tag.unwrap_or_default());
        let to = hash(msg.to_tag.unwrap_or_default());
        // The BYE's dialog: the remote tag is the To-tag of a caller's BYE
        // and the From-tag of a callee's.
        let early = |caller_tag: u64| {
            let (tag, by) = if from == caller_tag {
                (to, Party::Caller)
            } else if to == caller_tag {
                (from, Party::Callee)
            } else {
                return None;
            };
            Some(Box::new(EarlyBye {
                at: ts,
                tag,
                by,
                reason: msg.reason.as_ref().map(reason_info),
            }))
        };
        let caller_tag = self.caller_tag;
        if let State::Confirmed { to_tag, .. } = &self.state {
            if let Some(by) = self.party(from, to, *to_tag) {
                // RFC 3261 15.1.1: the session ends when the BYE is sent,
                // whatever the response (a 481 included).
                let reason = msg.reason.as_ref().map(reason_info);
                self.end_answered(ts, EndReason::Bye, reason, Some(by), ts, ctx);
                return Outcome::Progress;
            }
        }
        match &mut self.state {
            State::Confirmed {
                pinned,
                pending_bye,
                ..
            } => {
                // Another dialog, while the caller's is not known yet (a
                // middle box's To-tag on the hop the 2xx came from): keep
                // it until the caller's 2xx or ACK says which is the call's.
                // Those follow the first 2xx within 64*T1 (the UAS resends
                // its 2xx until ACKed, RFC 3261 13.3.1.4), so a record
                // ended by it is emitted well inside the CDR order window.
                if !*pinned {
                    match (early(caller_tag), pending_bye.as_deref()) {
                        (Some(b), None) => {
                            *pending_bye = Some(b);
                            return Outcome::Progress;
                        }
                        (Some(b), Some(p)) if b.tag == p.tag => return Outcome::Repeat,
                        _ => {}
                    }
                }
                ctx.stats.stray_byes += 1;
                Outcome::Ignored
            }
            // A BYE before the 2xx: on an early dialog (RFC 3261 15), which
            // cancels the attempt unless that dialog's 2xx comes (then the
            // call was answered and ended at this BYE).
            State::Early { bye, .. } => {
                if bye.is_some() {
                    return Outcome::Repeat;
                }
                match early(caller_tag) {
                    Some(b) => {
                        *bye = Some(b);
                        Outcome::Progress
                    }
                    None => {
                        ctx.stats.stray_byes += 1;
                        Outcome::Ignored
                    }
                }
            }
            State::Done { .. } => Outcome::Repeat,
            State::Retrying { .. } => Outcome::Ignored,
        }
    }
}
