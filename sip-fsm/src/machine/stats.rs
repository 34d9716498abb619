//! Named counters of the dialog machine.

use crate::error::ScanError;

/// Counters a [`crate::DialogMachine`] keeps; read them with
/// [`crate::DialogMachine::stats`]. Every packet that changes nothing is
/// counted under a name saying why.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Packets handed to [`crate::DialogMachine::handle`].
    pub packets: u64,
    /// Packets the scanner rejected, by [`ScanError::index`].
    pub malformed: [u64; ScanError::COUNT],
    /// Messages whose Content-Length is not a number, scanned with the
    /// body taken as the rest of the packet (a datagram or a HEP payload
    /// holds one message) instead of being dropped.
    pub malformed_content_length_tolerated: u64,
    /// Packets processed after a packet with a later timestamp (they came
    /// later than the reorder window allows).
    pub late: u64,
    /// Repeats of a message already processed, on the same Via branch as
    /// the call's previous message (a retransmission, RFC 3261 17).
    pub retransmissions: u64,
    /// Repeats of a message already processed, on another Via branch (the
    /// same message seen at another hop or capture point).
    pub hop_copies: u64,
    /// In-dialog requests (ACK, BYE, CANCEL, re-INVITE, UPDATE) for no
    /// known call.
    pub orphan_requests: u64,
    /// Responses to INVITE, BYE, CANCEL or UPDATE for no known call.
    pub orphan_responses: u64,
    /// Traffic that is not about calls (REGISTER, OPTIONS, SUBSCRIBE...).
    pub non_call: u64,
    /// BYEs whose tags do not match the answered dialog (a losing fork).
    pub stray_byes: u64,
    /// 2xx responses from a second fork after the call was answered.
    pub extra_fork_answers: u64,
    /// Final non-2xx responses on a downstream branch (a proxy may still
    /// try another branch), kept as a fallback.
    pub branch_finals: u64,
    /// New INVITEs on a call after 401/407/3xx/422 (same call continues).
    pub retried_invites: u64,
    /// Initial INVITEs with the Call-ID and From tag of a call that is
    /// answered or already finished (not a new call: ignored).
    pub call_id_reuse: u64,
    /// New calls on a Call-ID an earlier call used (within
    /// `call-id-memory-secs`): billed on their own, with OriginID
    /// `Call-ID;from-tag`.
    pub reused_call_ids: u64,
    /// 2xx to the initial INVITE after the call had already failed.
    pub late_answers: u64,
    /// Unanswered calls reaped with no final response (Timer C).
    pub reaped: u64,
    /// Answered calls ended by Session-Expires without a BYE.
    pub session_expired: u64,
    /// Answered calls ended by the maximum duration without a BYE.
    pub max_duration: u64,
    /// New calls refused because `max-dialogs` calls were tracked and all
    /// of them were answered.
    pub dialogs_dropped: u64,
    /// Finished calls still lingering, forgotten early to make room for a
    /// new call (`max-dialogs`).
    pub dialogs_evicted_lingering: u64,
    /// Unanswered calls given up to make room for a new call
    /// (`max-dialogs`); each is reported failed with reason `evicted`.
    pub dialogs_evicted_unanswered: u64,
    /// Packets whose timestamp was more than `max-clock-jump-secs` from
    /// the receive time they were handed with: they take the receive time.
    pub clock_stamp_corrected: u64,
    /// Packets more than `max-clock-jump-secs` ahead of the stream clock
    /// that no other packet agreed with: dropped.
    pub clock_jump_future: u64,
    /// Packets more than `max-clock-jump-secs` behind the stream clock that
    /// no other packet agreed with: dropped.
    pub clock_jump_past: u64,
    /// Times the stream clock jumped by more than `max-clock-jump-secs`
    /// because two packets agreed on the new time (a gap in a capture).
    pub clock_jumps_confirmed: u64,
    /// Attempt events emitted.
    pub attempts: u64,
    /// Answer events emitted.
    pub answers: u64,
    /// Update events emitted.
    pub updates: u64,
    /// End events emitted.
    pub ends: u64,
    /// Failed events emitted.
    pub failures: u64,
}

impl Stats {
    /// Malformed packets rejected for `reason`.
    pub fn malformed(&self, reason: ScanError) -> u64 {
        self.malformed.get(reason.index()).copied().unwrap_or(0)
    }

    /// Malformed packets of every reason.
    pub fn malformed_total(&self) -> u64 {
        self.malformed.iter().sum()
    }

    pub(crate) fn count_malformed(&mut self, reason: ScanError) {
        if let Some(c) = self.malformed.get_mut(reason.index()) {
            *c += 1;
        }
    }
}
