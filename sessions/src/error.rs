//! The one error type of the `sessions` crate.

/// Everything that can go wrong in `sessions`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The CDR store failed (connection lost, disk full, a constraint): the
    /// backend's own message.
    #[error("CDR store: {0}")]
    CdrStore(String),
    /// A CDR filter argument cannot be used (a bad time, usage or cost).
    #[error("invalid CDR filter: {field}: {reason}")]
    CdrFilter {
        /// The filter field, with CGRateS's name (`SetupTimeStart`).
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
}
