//! Live calls as plain values, to carry them across a restart.
//!
//! [`DialogMachine::snapshot_call`](crate::DialogMachine::snapshot_call)
//! (or [`DialogMachine::snapshots`](crate::DialogMachine::snapshots)) turns
//! a tracked call into a [`DialogSnapshot`]; the caller stores it (it is
//! `serde`-ready: text, integers and addresses only) and, after a restart,
//! hands it to [`DialogMachine::restore`](crate::DialogMachine::restore) of
//! a new machine. The restored call then ends as it would have without the
//! restart: a BYE from either side, a CANCEL or final response to an
//! attempt, the session timer or `max-duration`, with the same
//! [`CallRecord`](crate::CallRecord) (and so the same CGRID).
//!
//! What a snapshot leaves out, because it only matters for a few hundred
//! milliseconds around an event: a CANCEL or BYE seen on an attempt that
//! has no final response yet (the 487 that follows still ends it as
//! cancelled), a final response seen on a downstream branch only, the
//! Reason header of a 3xx/401/407 awaiting its retry, and a BYE on
//! another fork's dialog while the caller's fork was unknown.

use std::net::SocketAddr;
use std::sync::Arc;

use capture::Timestamp;
use serde::{Deserialize, Serialize};
use smol_str::SmolStr;

use crate::event::{CallInfo, Charging, escape_id, unescape_id};

/// One live call, as [`DialogMachine::restore`](crate::DialogMachine::restore)
/// needs it.
///
/// Tags and Via branches are kept as the machine's 64-bit digests of
/// their bytes (it never keeps the text): [`DialogSnapshot::digest_check`]
/// lets a machine refuse a snapshot whose digests it would compute
/// differently.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DialogSnapshot {
    /// What was known from the first INVITE.
    pub call: CallSnapshot,
    /// Digest of the caller's From tag (of the empty tag when it had none):
    /// with the Call-ID, the call's key.
    pub caller_tag: u64,
    /// CSeq number of the current initial INVITE (its responses and
    /// CANCEL carry it; a higher one from the caller is a refresh).
    pub invite_cseq: u32,
    /// When the current initial INVITE was first seen (PDD is measured
    /// from it).
    #[serde(with = "nanos")]
    pub invite_at: Timestamp,
    /// Digest of the top Via branch of the first copy of that INVITE: a
    /// final response on it is the one the caller gets.
    pub main_branch: u64,
    /// Where the call stands.
    pub state: SnapshotState,
    /// The digest of a fixed text under the machine that took the
    /// snapshot; a machine computing another refuses it.
    pub digest_check: u64,
}

/// Where a snapshotted call stands.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "phase", rename_all = "kebab-case")]
pub enum SnapshotState {
    /// INVITE sent, no final response yet.
    Attempt {
        /// First 180..189 for the current INVITE.
        #[serde(with = "opt_nanos")]
        ringing: Option<Timestamp>,
    },
    /// A 3xx, 401, 407 or 422 ended the INVITE transaction; a retried
    /// INVITE (higher CSeq) may follow, else the call fails with it.
    Retrying {
        /// First 180..189 before it.
        #[serde(with = "opt_nanos")]
        ringing: Option<Timestamp>,
        /// The response's code.
        code: u16,
        /// Its reason phrase.
        phrase: String,
        /// When it was seen.
        #[serde(with = "nanos")]
        at: Timestamp,
        /// Digest of its To tag.
        to_tag: u64,
    },
    /// Answered, not ended.
    Answered {
        /// The first 2xx's time.
        #[serde(with = "nanos")]
        answer_time: Timestamp,
        /// Its code.
        code: u16,
        /// Its reason phrase.
        phrase: String,
        /// First 180..189 before the answer.
        #[serde(with = "opt_nanos")]
        ringing: Option<Timestamp>,
        /// Digest of the To tag of the call's dialog (the answering fork).
        to_tag: u64,
        /// Whether the caller is known to hold that dialog.
        pinned: bool,
        /// Digest of the To tag of a branch that failed after the answer
        /// (0 when none).
        declined: u64,
        /// Highest CSeq of the caller's in-dialog refreshes.
        caller_cseq: u32,
        /// Highest CSeq of the callee's in-dialog refreshes.
        callee_cseq: Option<u32>,
        /// When the session was last refreshed (the answer at first).
        #[serde(with = "nanos")]
        last_refresh: Timestamp,
        /// Session interval in force, seconds (RFC 4028).
        session_expires: Option<u32>,
    },
}

/// [`CallInfo`] as plain owned values. Byte strings (the Call-ID, the
/// OriginID suffix) are in [`escape_id`] form: the text itself when UTF-8.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallSnapshot {
    /// [`CallInfo::call_id_bytes`].
    pub call_id: String,
    /// [`CallInfo::origin_suffix`].
    pub origin_suffix: Option<String>,
    /// [`CallInfo::capture_point`].
    pub capture_point: String,
    /// [`CallInfo::src`].
    pub src: SocketAddr,
    /// [`CallInfo::dst`].
    pub dst: SocketAddr,
    /// [`CallInfo::setup_time`].
    #[serde(with = "nanos")]
    pub setup_time: Timestamp,
    /// [`CallInfo::from_user`].
    pub from_user: Option<String>,
    /// [`CallInfo::from_tag`].
    pub from_tag: Option<String>,
    /// [`CallInfo::to_user`].
    pub to_user: Option<String>,
    /// [`CallInfo::ruri_user`].
    pub ruri_user: Option<String>,
    /// [`CallInfo::pai_user`].
    pub pai_user: Option<String>,
    /// [`CallInfo::diversion_user`].
    pub diversion_user: Option<String>,
    /// [`Charging::tenant`].
    pub tenant: String,
    /// [`Charging::category`].
    pub category: String,
    /// [`Charging::account`].
    pub account: String,
    /// [`Charging::subject`].
    pub subject: String,
    /// [`Charging::destination`].
    pub destination: String,
    /// [`Charging::request_type`].
    pub request_type: String,
}

impl From<&CallInfo> for CallSnapshot {
    fn from(c: &CallInfo) -> Self {
        let s = |b: &Option<SmolStr>| b.as_deref().map(str::to_owned);
        let ch = &c.charging;
        CallSnapshot {
            call_id: escape_id(&c.call_id_bytes),
            origin_suffix: c.origin_suffix.as_deref().map(escape_id),
            capture_point: c.capture_point.to_string(),
            src: c.src,
            dst: c.dst,
            setup_time: c.setup_time,
            from_user: s(&c.from_user),
            from_tag: s(&c.from_tag),
            to_user: s(&c.to_user),
            ruri_user: s(&c.ruri_user),
            pai_user: s(&c.pai_user),
            diversion_user: s(&c.diversion_user),
            tenant: ch.tenant.to_string(),
            category: ch.category.to_string(),
            account: ch.account.to_string(),
            subject: ch.subject.to_string(),
            destination: ch.destination.to_string(),
            request_type: ch.request_type.to_string(),
        }
    }
}

impl CallSnapshot {
    /// The [`CallInfo`] again (equal to the one it was taken from).
    pub fn to_info(&self) -> CallInfo {
        let s = |b: &Option<String>| b.as_deref().map(SmolStr::new);
        CallInfo {
            call_id_bytes: Arc::from(unescape_id(&self.call_id)),
            origin_suffix: self
                .origin_suffix
                .as_deref()
                .map(|x| unescape_id(x).into_boxed_slice()),
            capture_point: self.capture_point.as_str().into(),
            src: self.src,
            dst: self.dst,
            setup_time: self.setup_time,
            from_user: s(&self.from_user),
            from_tag: s(&self.from_tag),
            to_user: s(&self.to_user),
            ruri_user: s(&self.ruri_user),
            pai_user: s(&self.pai_user),
            diversion_user: s(&self.diversion_user),
            charging: Charging {
                tenant: self.tenant.as_str().into(),
                category: self.category.as_str().into(),
                account: self.account.as_str().into(),
                subject: self.subject.as_str().into(),
                destination: self.destination.as_str().into(),
                request_type: self.request_type.as_str().into(),
            },
        }
    }
}

/// A [`Timestamp`] as its nanoseconds since the epoch.
mod nanos {
    use capture::Timestamp;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &Timestamp, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_i64(t.as_nanos())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Timestamp, D::Error> {
        i64::deserialize(d).map(Timestamp::from_nanos)
    }
}

/// An optional [`Timestamp`] as nanoseconds since the epoch, or null.
mod opt_nanos {
    use capture::Timestamp;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer>(t: &Option<Timestamp>, s: S) -> Result<S::Ok, S::Error> {
        t.map(Timestamp::as_nanos).serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Timestamp>, D::Error> {
        Option::<i64>::deserialize(d).map(|o| o.map(Timestamp::from_nanos))
    }
}
