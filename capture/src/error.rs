//! The capture crate's error type.

/// Errors of the capture layer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CaptureError {
    /// An I/O error from a socket, file or capture handle.
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
}
