//! The one error type of the `sessions` crate.

/// Everything that can go wrong in `sessions`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
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
}
