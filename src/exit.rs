//! Exit codes, after sysexits(3), so scripts can tell failures apart.

use crate::config::ConfigError;

/// Generic failure.
pub(crate) const FAILURE: u8 = 1;
/// Input data was bad (EX_DATAERR).
pub(crate) const DATA: u8 = 65;
/// Not allowed, e.g. capturing without CAP_NET_RAW (EX_NOPERM).
pub(crate) const PERMISSION: u8 = 77;
/// The configuration is invalid (EX_CONFIG).
pub(crate) const CONFIG: u8 = 78;

/// The exit code for an error.
pub(crate) fn code_for(e: &anyhow::Error) -> u8 {
    for cause in e.chain() {
        if cause.downcast_ref::<ConfigError>().is_some() {
            return CONFIG;
        }
        if let Some(c) = cause.downcast_ref::<capture::CaptureError>() {
            return match c {
                capture::CaptureError::Permission(_) => PERMISSION,
                capture::CaptureError::Pcap { .. } => DATA,
                _ => FAILURE,
            };
        }
    }
    FAILURE
}

/// Whether the error is a write to a closed pipe.
pub(crate) fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
