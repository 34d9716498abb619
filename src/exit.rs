//! Exit codes, after sysexits(3), so scripts can tell failures apart; and
//! the one place an error becomes a message and a code.
//!
//! | code | when |
//! |---|---|
//! | 0 | done (also when stdout is a pipe closed by its reader) |
//! | 1 | any other failure |
//! | 2 | bad command line (clap's own code) |
//! | 65 | bad input data: a capture file that is not one, or cut short; a bad tariff plan; a damaged data directory |
//! | 66 | an input file or folder missing or unreadable |
//! | 69 | a listen address in use or not on this host; a HEP collector that refuses or cannot be reached (`send-hep`); a live interface that cannot be captured on; the data directory locked by another process; Redis unreachable |
//! | 71 | any other failure to listen |
//! | 74 | the output cannot be written (full disk, I/O error); the data directory cannot be read or written |
//! | 75 | `serve` stopped with CDRs not stored (the CDR database could not be reached): the calls' saved sessions and ends are kept and finished at the next start |
//! | 77 | not allowed: live capture without CAP_NET_RAW, a privileged port |
//! | 78 | the configuration is invalid |

use std::io;
use std::path::PathBuf;

use crate::config::ConfigError;

/// Generic failure.
pub(crate) const FAILURE: u8 = 1;
/// Input data was bad (EX_DATAERR).
pub(crate) const DATA: u8 = 65;
/// An input file did not exist or was not readable (EX_NOINPUT).
pub(crate) const NO_INPUT: u8 = 66;
/// A service is unavailable, e.g. its address is in use (EX_UNAVAILABLE).
pub(crate) const UNAVAILABLE: u8 = 69;
/// An operating system error (EX_OSERR).
pub(crate) const OS_ERR: u8 = 71;
/// An error writing the output (EX_IOERR).
pub(crate) const IO_ERR: u8 = 74;
/// Work left to finish later, e.g. CDRs not stored at shutdown
/// (EX_TEMPFAIL).
pub(crate) const TEMP_FAIL: u8 = 75;
/// Not allowed, e.g. capturing without CAP_NET_RAW (EX_NOPERM).
pub(crate) const PERMISSION: u8 = 77;
/// The configuration is invalid (EX_CONFIG).
pub(crate) const CONFIG: u8 = 78;

/// Failures the binary names itself, where the bare cause would not say
/// which exit code fits (an `io::Error` may come from an input file, the
/// output or a socket).
#[derive(Debug, thiserror::Error)]
pub(crate) enum Failure {
    /// An input file or folder cannot be opened (66).
    #[error("cannot read {what} {}", path.display())]
    Input {
        /// `capture file`, `config file`...
        what: &'static str,
        /// As the user named it.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// Writing stdout failed (74; a closed pipe ends quietly with 0).
    #[error("cannot write the output")]
    Output(#[source] io::Error),
    /// Input data that is not what it should be (65), e.g. a capture file
    /// cut short; everything before the damage was used.
    #[error("{0}")]
    Data(String),
    /// A listener cannot be bound (69, 77 or 71 by the OS error).
    #[error("cannot listen on {0}")]
    Bind(String, #[source] capture::CaptureError),
    /// A peer we send to (`send-hep`'s collector) cannot be connected to
    /// or written to (69: refused, reset, unreachable; else 71). The text
    /// says which and where.
    #[error("{0}")]
    Peer(String, #[source] io::Error),
    /// A live capture cannot be opened or read (77 without the right to
    /// capture, else 69: no such interface, interface down...).
    #[error("live capture on {0}")]
    Live(String, #[source] capture::CaptureError),
    /// The account store cannot be opened: 69 when the data directory is
    /// locked by another process or Redis is unreachable, 65 when it is
    /// damaged, 74 when its files cannot be read or written.
    #[error("cannot open the store")]
    Storage(#[source] Box<storage::Error>),
    /// Stopped with work left for the next start (75): CDRs the database
    /// did not take at shutdown.
    #[error("{0}")]
    Unfinished(String),
}

/// The exit code for an error: the first cause in the chain that has one.
pub(crate) fn code_for(e: &anyhow::Error) -> u8 {
    for cause in e.chain() {
        if cause.downcast_ref::<ConfigError>().is_some() {
            return CONFIG;
        }
        if let Some(f) = cause.downcast_ref::<Failure>() {
            return match f {
                Failure::Input { .. } => NO_INPUT,
                Failure::Output(_) => IO_ERR,
                Failure::Data(_) => DATA,
                Failure::Unfinished(_) => TEMP_FAIL,
                Failure::Bind(_, c) => bind_code(c),
                Failure::Peer(_, e) => peer_code(e),
                Failure::Live(_, capture::CaptureError::Permission(_)) => PERMISSION,
                Failure::Live(..) => UNAVAILABLE,
                Failure::Storage(e) => match **e {
                    storage::Error::Locked { .. } | storage::Error::RedisConnect { .. } => {
                        UNAVAILABLE
                    }
                    storage::Error::Corrupt { .. } | storage::Error::Json { .. } => DATA,
                    storage::Error::Io { .. } => IO_ERR,
                    _ => FAILURE,
                },
            };
        }
        if let Some(c) = cause.downcast_ref::<capture::CaptureError>() {
            return match c {
                capture::CaptureError::Permission(_) => PERMISSION,
                capture::CaptureError::Pcap { .. } => DATA,
                _ => FAILURE,
            };
        }
        if let Some(r) = cause.downcast_ref::<rating::Error>() {
            return match r {
                rating::Error::Io { source, .. }
                    if matches!(
                        source.kind(),
                        io::ErrorKind::NotFound | io::ErrorKind::PermissionDenied
                    ) =>
                {
                    NO_INPUT
                }
                _ => DATA,
            };
        }
    }
    FAILURE
}

fn bind_code(c: &capture::CaptureError) -> u8 {
    match c {
        capture::CaptureError::Io(e) => match e.kind() {
            io::ErrorKind::AddrInUse | io::ErrorKind::AddrNotAvailable => UNAVAILABLE,
            io::ErrorKind::PermissionDenied => PERMISSION,
            _ => OS_ERR,
        },
        capture::CaptureError::Permission(_) => PERMISSION,
        _ => OS_ERR,
    }
}

fn peer_code(e: &io::Error) -> u8 {
    match e.kind() {
        io::ErrorKind::ConnectionRefused
        | io::ErrorKind::ConnectionReset
        | io::ErrorKind::ConnectionAborted
        | io::ErrorKind::BrokenPipe
        | io::ErrorKind::NotConnected
        | io::ErrorKind::HostUnreachable
        | io::ErrorKind::NetworkUnreachable
        | io::ErrorKind::AddrNotAvailable
        | io::ErrorKind::TimedOut => UNAVAILABLE,
        io::ErrorKind::PermissionDenied => PERMISSION,
        _ => OS_ERR,
    }
}

/// Whether the error is a write to a closed pipe.
pub(crate) fn is_broken_pipe(e: &anyhow::Error) -> bool {
    // A collector that closed its end is a failure, not a reader leaving.
    let peer = e
        .chain()
        .any(|c| matches!(c.downcast_ref::<Failure>(), Some(Failure::Peer(..))));
    !peer
        && e.chain().any(|c| {
            c.downcast_ref::<io::Error>()
                .is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe)
        })
}

/// The error and its causes on one line, `: `-separated, each said once:
/// a cause whose text its parent already ends with (as `reading X: No such
/// file` over `No such file`) is not repeated.
pub(crate) fn message(e: &anyhow::Error) -> String {
    let mut msg = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if text.is_empty() || msg.ends_with(&text) {
            continue;
        }
        if !msg.is_empty() {
            msg.push_str(": ");
        }
        msg.push_str(&text);
    }
    msg
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;

    #[test]
    fn os_errors_are_said_once() {
        let io = io::Error::from(io::ErrorKind::NotFound);
        let text = io.to_string();
        let e = anyhow::Error::new(rating::Error::Io {
            path: "/x".into(),
            source: io,
        })
        .context("loading tariff plan /x");
        let m = message(&e);
        assert_eq!(m.matches(&text).count(), 1, "{m}");
        assert!(m.starts_with("loading tariff plan /x: reading /x"), "{m}");
        assert_eq!(code_for(&e), NO_INPUT);
    }

    #[test]
    fn bind_errors_by_kind() {
        let bind = |k: io::ErrorKind| {
            let e = anyhow::Error::new(Failure::Bind(
                "udp:127.0.0.1:1".into(),
                capture::CaptureError::Io(io::Error::from(k)),
            ));
            code_for(&e)
        };
        assert_eq!(bind(io::ErrorKind::AddrInUse), UNAVAILABLE);
        assert_eq!(bind(io::ErrorKind::PermissionDenied), PERMISSION);
        assert_eq!(bind(io::ErrorKind::InvalidInput), OS_ERR);
    }

    #[test]
    fn store_errors_by_kind() {
        let code = |e: storage::Error| code_for(&Failure::Storage(Box::new(e)).into());
        assert_eq!(
            code(storage::Error::Locked { dir: "/d".into() }),
            UNAVAILABLE
        );
        let corrupt = storage::Error::Corrupt {
            path: "/d/j".into(),
            offset: 0,
            reason: "x".into(),
        };
        assert_eq!(code(corrupt), DATA);
        assert_eq!(code(storage::Error::Failed("x".into())), FAILURE);
    }

    #[test]
    fn peer_errors_by_kind_and_never_a_quiet_pipe() {
        let peer = |k: io::ErrorKind| {
            anyhow::Error::new(Failure::Peer("cannot send to x".into(), io::Error::from(k)))
        };
        assert_eq!(
            code_for(&peer(io::ErrorKind::ConnectionRefused)),
            UNAVAILABLE
        );
        assert_eq!(code_for(&peer(io::ErrorKind::ConnectionReset)), UNAVAILABLE);
        assert_eq!(code_for(&peer(io::ErrorKind::InvalidInput)), OS_ERR);
        // A collector that closed its end fails; a closed stdout does not.
        let pipe = peer(io::ErrorKind::BrokenPipe);
        assert!(!is_broken_pipe(&pipe));
        assert_eq!(code_for(&pipe), UNAVAILABLE);
        let out = anyhow::Error::new(Failure::Output(io::Error::from(io::ErrorKind::BrokenPipe)));
        assert!(is_broken_pipe(&out));
    }

    #[test]
    fn first_tagged_cause_wins() {
        let e = anyhow::Error::new(Failure::Output(io::Error::from(io::ErrorKind::StorageFull)))
            .context("writing CDRs");
        assert_eq!(code_for(&e), IO_ERR);
        let e: anyhow::Error = Err::<(), _>(io::Error::other("x"))
            .context("plain")
            .unwrap_err();
        assert_eq!(code_for(&e), FAILURE);
    }
}
