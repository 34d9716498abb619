//! The capture crate's error type.

/// Errors of the capture layer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CaptureError {
    /// An I/O error from a socket, file or capture handle.
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
    /// libpcap refused or failed.
    #[error("{what}: {reason}")]
    Pcap {
        /// What we were doing.
        what: String,
        /// What libpcap said.
        reason: String,
    },
    /// Not allowed to capture (needs root or CAP_NET_RAW).
    #[error("permission denied: {0} (capturing needs root or CAP_NET_RAW)")]
    Permission(String),
    /// A listen address that does not parse.
    #[error("bad listen address {0:?}: expected udp:IP:PORT or tcp:IP:PORT")]
    BadListen(String),
    /// A HEP packet or HEP-over-TCP stream that could not be decoded.
    #[error(transparent)]
    Hep(#[from] crate::hep::HepError),
}
