//! The crate's error type.

/// Errors of the `sessions` crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A store (sessions, CDRs) failed; the backend's message.
    #[error("store: {0}")]
    Store(String),
}
