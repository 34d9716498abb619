//! What the dialog machine emits.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use capture::Timestamp;
use smol_str::SmolStr;

/// The charging fields of a call, as CGRateS names them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Charging {
    /// Tenant.
    pub tenant: Arc<str>,
    /// Category (`call` by default).
    pub category: Arc<str>,
    /// Account (who pays).
    pub account: SmolStr,
    /// Subject (rating subject).
    pub subject: SmolStr,
    /// Destination (the dialled number).
    pub destination: SmolStr,
    /// Request type (`*rated` by default).
    pub request_type: Arc<str>,
}

/// What is known about a call from its first INVITE; fixed for the call's
/// life and shared (`Arc`) by all its events.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallInfo {
    /// The Call-ID's bytes as they were on the wire (shared with the
    /// machine's key, so a call holds its Call-ID once; see
    /// [`CallInfo::call_id`] for the text). A call is its Call-ID plus the
    /// caller's From tag.
    pub call_id_bytes: Arc<[u8]>,
    /// What the machine appends to the Call-ID to make this call's
    /// OriginID (`;from-tag`, or `;from-tag;N`) when an earlier call used
    /// the same Call-ID; `None` for a Call-ID's first call. See
    /// [`CallInfo::origin_id_bytes`].
    pub origin_suffix: Option<Box<[u8]>>,
    /// Where the first INVITE copy was seen
    /// ([`capture::SipPacket::capture_point`]): a HEP agent's capture id or
    /// node, else the receiving address. Used by the mapping rules; not
    /// CGRateS' OriginHost, which is the first INVITE's destination IP.
    /// Shared (`Arc`) by the calls seen at one point.
    pub capture_point: Arc<str>,
    /// Source address of the first INVITE copy.
    pub src: SocketAddr,
    /// Destination address of the first INVITE copy.
    pub dst: SocketAddr,
    /// When the first INVITE was seen (RFC 3261 13.2.1). After a 401/407
    /// or 3xx the retried INVITE keeps the call, and this stays the first
    /// INVITE's time: the caller has been waiting since then.
    pub setup_time: Timestamp,
    /// From user.
    pub from_user: Option<SmolStr>,
    /// From tag of the caller.
    pub from_tag: Option<SmolStr>,
    /// To user.
    pub to_user: Option<SmolStr>,
    /// Request-URI user of the first INVITE.
    pub ruri_user: Option<SmolStr>,
    /// P-Asserted-Identity user.
    pub pai_user: Option<SmolStr>,
    /// Diversion user.
    pub diversion_user: Option<SmolStr>,
    /// The charging fields from the mapping config.
    pub charging: Charging,
}

impl CallInfo {
    /// The Call-ID as text ([`escape_id`]: borrowed and unchanged when it
    /// is UTF-8).
    pub fn call_id(&self) -> std::borrow::Cow<'_, str> {
        match std::str::from_utf8(&self.call_id_bytes) {
            Ok(s) => std::borrow::Cow::Borrowed(s),
            Err(_) => std::borrow::Cow::Owned(escape_id(&self.call_id_bytes)),
        }
    }

    /// The call's OriginID as raw bytes: the Call-ID, then
    /// [`CallInfo::origin_suffix`] when an earlier call (remembered by the
    /// machine) used the same Call-ID. Unique per call in one stream; the
    /// CGRID hashes these bytes.
    pub fn origin_id_bytes(&self) -> Vec<u8> {
        let mut v = self.call_id_bytes.to_vec();
        if let Some(s) = &self.origin_suffix {
            v.extend_from_slice(s);
        }
        v
    }

    /// The call's OriginID as text: [`escape_id`] of
    /// [`CallInfo::origin_id_bytes`] (the bytes themselves when UTF-8).
    pub fn origin_id(&self) -> String {
        escape_id(&self.origin_id_bytes())
    }
}

/// An identifier's bytes as text, reversibly: UTF-8 input is returned
/// unchanged; otherwise every byte that is not part of valid UTF-8, and
/// every `%`, is written `%XX` (uppercase hex), so two different byte
/// strings never give the same text ([`unescape_id`] undoes it).
pub fn escape_id(b: &[u8]) -> String {
    if let Ok(s) = std::str::from_utf8(b) {
        return s.to_owned();
    }
    let mut out = String::with_capacity(b.len() + 8);
    for chunk in b.utf8_chunks() {
        for c in chunk.valid().chars() {
            if c == '%' {
                out.push_str("%25");
            } else {
                out.push(c);
            }
        }
        for x in chunk.invalid() {
            out.push_str(&format!("%{x:02X}"));
        }
    }
    out
}

/// The bytes [`escape_id`] was given. Text that is not an escape (no `%`,
/// or not the output of [`escape_id`]) comes back as its own bytes.
pub fn unescape_id(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    // Valid UTF-8 went out unchanged, so only escaped text decodes.
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    let mut escaped = false;
    while i < b.len() {
        let hex = b
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (b[i], hex) {
            (b'%', Some(x)) => {
                out.push(x);
                escaped = true;
                i += 3;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    // Escaped text always decodes to invalid UTF-8; anything else was
    // never escaped.
    if escaped && std::str::from_utf8(&out).is_err() {
        out
    } else {
        b.to_vec()
    }
}

/// Which side of the call did something.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Party {
    /// The side that sent the initial INVITE.
    Caller,
    /// The side that answered it.
    Callee,
}

/// The in-dialog request behind an [`DialogEvent::Update`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum UpdateMethod {
    /// A re-INVITE (RFC 3261 section 14).
    ReInvite,
    /// An UPDATE (RFC 3311).
    Update,
}

/// Why a call ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EndReason {
    /// A BYE from either side (RFC 3261 15.1.1: the session ends when the
    /// BYE is sent, whatever its response).
    Bye,
    /// The caller cancelled (CANCEL, or BYE on an early dialog).
    Cancel,
    /// A final non-2xx response.
    Rejected,
    /// No final response arrived in time (Timer C, RFC 3261 16.6 step 11).
    Timeout,
    /// No BYE and no refresh: ended at last refresh + Session-Expires
    /// (RFC 4028 section 10).
    SessionExpired,
    /// No BYE and no session timer: ended at answer + the configured
    /// maximum duration.
    MaxDuration,
    /// A re-INVITE or UPDATE was answered 481 (Call/Transaction Does Not
    /// Exist) or 408 (Request Timeout): the peer no longer has the dialog,
    /// and the request's sender ends it at that response (RFC 3261
    /// 12.2.1.2).
    DialogLost,
    /// Unanswered, and given up when `max-dialogs` calls were tracked and a
    /// new INVITE came: the attempt is reported (code 408, as if Timer C
    /// had fired) at the time it was given up.
    Evicted,
}

impl EndReason {
    /// Label for CDRs and metrics.
    pub const fn as_str(self) -> &'static str {
        match self {
            EndReason::Bye => "bye",
            EndReason::Cancel => "cancel",
            EndReason::Rejected => "rejected",
            EndReason::Timeout => "timeout",
            EndReason::SessionExpired => "session-expired",
            EndReason::MaxDuration => "max-duration",
            EndReason::DialogLost => "dialog-lost",
            EndReason::Evicted => "evicted",
        }
    }
}

/// A Reason header (RFC 3326), owned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReasonInfo {
    /// Protocol (`Q.850`, `SIP`).
    pub protocol: SmolStr,
    /// Cause code.
    pub cause: Option<u16>,
    /// Text.
    pub text: Option<SmolStr>,
}

/// Everything a CDR needs about a finished call attempt: what
/// [`DialogEvent::End`] and [`DialogEvent::Failed`] carry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallRecord {
    /// The call.
    pub call: Arc<CallInfo>,
    /// When the first 2xx to the initial INVITE was seen; `None` if
    /// unanswered.
    pub answer_time: Option<Timestamp>,
    /// When the call ended: the BYE, the final response, the CANCEL's final
    /// response, or the computed expiry.
    pub end_time: Timestamp,
    /// Billable duration: `end_time - answer_time`, zero if unanswered.
    pub duration: Duration,
    /// Why it ended.
    pub end_reason: EndReason,
    /// The final response code to the INVITE: 200 for answered calls,
    /// 408 when none came (as a proxy's Timer C would answer), 487 when a
    /// cancelled call saw no final response.
    pub code: u16,
    /// The reason phrase of that response (empty when synthesised).
    pub phrase: SmolStr,
    /// The Reason header of the BYE, CANCEL or final response.
    pub reason: Option<ReasonInfo>,
    /// Post-dial delay: first INVITE to the first 180/183, or to the final
    /// response when there was no ringing.
    pub pdd: Option<Duration>,
    /// Ring time: first 180/183 to the answer or final response.
    pub ring_time: Option<Duration>,
    /// Who hung up (BYE sender); `None` otherwise.
    pub ended_by: Option<Party>,
}

/// An output of the dialog machine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DialogEvent {
    /// An initial INVITE was seen: authorize the call.
    Attempt {
        /// The call.
        call: Arc<CallInfo>,
    },
    /// The first 2xx to the initial INVITE.
    Answer {
        /// The call.
        call: Arc<CallInfo>,
        /// The 2xx's timestamp (never the ACK's).
        answer_time: Timestamp,
        /// The To tag of the answering fork.
        to_tag: Option<SmolStr>,
        /// Post-dial delay (see [`CallRecord::pdd`]).
        pdd: Option<Duration>,
        /// The negotiated session interval, seconds (RFC 4028).
        session_expires: Option<u32>,
    },
    /// A successful re-INVITE or UPDATE (a 2xx to it), from either side.
    Update {
        /// The call.
        call: Arc<CallInfo>,
        /// The 2xx's timestamp.
        at: Timestamp,
        /// re-INVITE or UPDATE.
        method: UpdateMethod,
        /// Who sent the request.
        by: Party,
        /// The session interval now in force, seconds (RFC 4028).
        session_expires: Option<u32>,
    },
    /// An answered call ended.
    End(CallRecord),
    /// A call attempt ended without an answer.
    Failed(CallRecord),
}

impl DialogEvent {
    /// The call this event is about.
    pub fn call(&self) -> &Arc<CallInfo> {
        match self {
            DialogEvent::Attempt { call }
            | DialogEvent::Answer { call, .. }
            | DialogEvent::Update { call, .. }
            | DialogEvent::End(CallRecord { call, .. })
            | DialogEvent::Failed(CallRecord { call, .. }) => call,
        }
    }

    /// The record of a finished call (End or Failed).
    pub fn record(&self) -> Option<&CallRecord> {
        match self {
            DialogEvent::End(r) | DialogEvent::Failed(r) => Some(r),
            _ => None,
        }
    }
}
