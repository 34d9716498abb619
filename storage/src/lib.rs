//! AccuRate storage: implementations of the store traits defined by
//! `rating` and `sessions`.
//!
//! - [`EmbeddedAccounts`]: the default, no server. Accounts live in memory
//!   and every change is appended to a checksummed journal in a data
//!   directory and `fsync`ed before it is acknowledged; a snapshot bounds
//!   the journal. Opaque named blobs ([`MetaStore`]) keep the server's
//!   other state (the loaded tariff plan, action plans) across restarts,
//!   and the live sessions ([`sessions::SessionStore`]) are journaled the
//!   same way.
//! - [`RedisAccounts`]: accounts shared by several AccuRate processes,
//!   every read-modify-write a compare-and-set Lua script; live
//!   sessions in one hash.
//!
//! - [`SqlCdrs`]: stored CDRs ([`sessions::CdrStore`]) in SQLite (a file,
//!   the default) or PostgreSQL, through sqlx.
//!
//! Nothing depends on this crate but the `accurate` binary.
#![forbid(unsafe_code)]

mod cdr;
mod embedded;
mod journal;
mod redis_store;

use std::path::PathBuf;

pub use cdr::{ExportOutcome, SqlCdrs};
pub use embedded::{EmbeddedAccounts, EmbeddedOptions, Recovery};
pub use redis_store::RedisAccounts;

/// Everything that can go wrong in a store.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file of the data directory could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// Another process has the data directory open.
    #[error("data directory {} is in use by another process (lock file {})", dir.display(), dir.join(embedded::LOCK_FILE).display())]
    Locked {
        /// The data directory.
        dir: PathBuf,
    },
    /// A snapshot record is damaged or of an unknown kind (a journal's torn
    /// tail is not an error: it was never acknowledged).
    #[error("{}: damaged record at byte {offset}: {reason}", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// Where the record starts.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// A write or `fsync` of the journal failed earlier: what is in memory
    /// may not be on disk, so the store refuses everything until it is
    /// reopened (which recovers what the disk holds).
    #[error("store unusable since an earlier write failed ({0}); restart to recover from disk")]
    Failed(String),
    /// Redis could not be reached.
    #[error("cannot reach Redis at {url}: {source} (is redis-server running?)")]
    RedisConnect {
        /// The URL tried.
        url: String,
        /// The cause.
        source: redis::RedisError,
    },
    /// A Redis command failed.
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    /// A transaction kept losing to concurrent writers.
    #[error("gave up after {attempts} conflicting attempts on {key}")]
    Contention {
        /// The (first) key.
        key: String,
        /// Attempts made.
        attempts: u32,
    },
    /// A stored account is not valid JSON of the account shape.
    #[error("stored account {key}: {source}")]
    Json {
        /// Where it was stored.
        key: String,
        /// The cause.
        source: serde_json::Error,
    },
    /// The CDR database could not be opened or migrated.
    #[error("CDR database: {what}: {source}")]
    Sql {
        /// What was being done (the URL without its password).
        what: String,
        /// The cause.
        source: sqlx::Error,
    },
}

impl From<Error> for sessions::Error {
    fn from(e: Error) -> Self {
        sessions::Error::Store(e.to_string())
    }
}

impl From<Error> for rating::Error {
    fn from(e: Error) -> Self {
        rating::Error::Store(e.to_string())
    }
}

/// Opaque named values kept next to the accounts: the server's state that
/// is not accounts (the loaded tariff plan's folder, action plan timers).
pub trait MetaStore {
    /// Stores `value` under `name`, durably (as an account change).
    ///
    /// # Errors
    /// A backend error.
    fn put_meta(&self, name: &str, value: &[u8]) -> Result<(), Error>;

    /// The value stored under `name`.
    ///
    /// # Errors
    /// A backend error.
    fn get_meta(&self, name: &str) -> Result<Option<Vec<u8>>, Error>;

    /// Removes `name`; whether it existed.
    ///
    /// # Errors
    /// A backend error.
    fn remove_meta(&self, name: &str) -> Result<bool, Error>;
}
