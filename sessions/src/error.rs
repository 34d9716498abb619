//! The crate's one error type.

use crate::manager::SessionKey;

/// What can go wrong handling a session event.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Rating or account failure (insufficient credit, no such account, no
    /// rating plan, a store error...), spelled as CGRateS spells it.
    #[error(transparent)]
    Rating(#[from] rating::Error),
    /// Fields the operation needs are missing, as CGRateS's
    /// `MANDATORY_IE_MISSING: [Account Destination]`.
    #[error("MANDATORY_IE_MISSING: [{}]", .0.join(" "))]
    MandatoryMissing(Vec<&'static str>),
    /// A field of the event does not parse.
    #[error("invalid {field}: {value:?}: {why}")]
    InvalidField {
        /// The field (`Usage`, `AnswerTime`, `RequestType`...).
        field: String,
        /// What it held.
        value: String,
        /// What was expected.
        why: &'static str,
    },
    /// No active session with this key (CGRateS's `SESSION_NOT_FOUND`).
    #[error("SESSION_NOT_FOUND")]
    SessionNotFound(SessionKey),
    /// A [`crate::Disconnect`] implementation could not reach the owner.
    #[error("disconnect failed: {0}")]
    Disconnect(String),
    /// The CDR store could not do it now (connection lost, timeout, disk
    /// full): the backend's own message. Trying again later may succeed.
    #[error("CDR store: {0}")]
    CdrStore(String),
    /// The database refused the statement itself (a value it cannot hold,
    /// a constraint): trying the same CDRs again gives the same answer.
    #[error("CDR store refused: {0}")]
    CdrRejected(String),
    /// A CDR filter argument cannot be used (a bad time, usage or cost).
    #[error("invalid CDR filter: {field}: {reason}")]
    CdrFilter {
        /// The filter field, with CGRateS's name (`SetupTimeStart`).
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// A store (sessions, CDRs) failed; the backend's message.
    #[error("store: {0}")]
    Store(String),
}
