//! The crate's one error type.
//!
//! Load errors name the file, line and column and say what was expected, so
//! an operator can fix a tariff plan without reading our source. Rating
//! errors say why a call cannot be rated; a CDR engine turns them into
//! `Cost: -1` plus the reason, as CGRateS does.

use std::path::PathBuf;

use chrono::{DateTime, Utc};

/// Everything that can go wrong loading a tariff plan or rating a call.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A value in a tariff plan file is not what the format allows.
    #[error("{}:{line}:{column}: expected {expected}, found {found:?}", file.display())]
    Load {
        /// The CSV file.
        file: PathBuf,
        /// 1-based line number.
        line: usize,
        /// 1-based column (field) number.
        column: usize,
        /// What the column should hold.
        expected: String,
        /// What it held.
        found: String,
    },
    /// A tariff plan file or folder could not be read.
    #[error("reading {}: {source}", path.display())]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The folder holds none of the tariff plan files we load.
    #[error("{}: no tariff plan files (Destinations.csv, Rates.csv, ...) found", dir.display())]
    EmptyPlan {
        /// The folder.
        dir: PathBuf,
    },
    /// A `*.csv` in the plan folder is not a readable file: a folder, a
    /// link to nothing, or one we have no permission to read.
    #[error("{}: not a readable file: {reason}", path.display())]
    UnreadableFile {
        /// The entry.
        path: PathBuf,
        /// Why it cannot be read.
        reason: String,
    },
    /// The files loaded, but define no rating profile: the plan could
    /// rate no call (RatingProfiles.csv missing, empty, or `*in` only).
    #[error(
        "{}: no rating profile loaded (file missing, empty, or only *in rows): the plan cannot rate any call",
        path.display()
    )]
    NoRatingProfiles {
        /// RatingProfiles.csv (where it is or would be).
        path: PathBuf,
    },
    /// A duration or usage string is not in CGRateS's format.
    #[error("invalid duration {input:?}: expected {expected}")]
    Duration {
        /// The text given.
        input: String,
        /// What the format allows.
        expected: &'static str,
    },
    /// A value given to the rating API (not from a file) is out of range.
    #[error("invalid {what}: {value:?}")]
    InvalidInput {
        /// Which input.
        what: &'static str,
        /// The value given.
        value: String,
    },
    /// No rating profile for the subject, nor for `*any`.
    #[error("RATING_PLAN_NOT_FOUND: no rating profile for {tenant}:{category}:{subject} at {at}")]
    RatingPlanNotFound {
        /// Tenant of the call.
        tenant: String,
        /// Category of the call.
        category: String,
        /// Subject (or account) of the call.
        subject: String,
        /// The moment no profile was active.
        at: DateTime<Utc>,
    },
    /// A rating profile exists but none of its plans (nor the fallback
    /// subjects') prices the destination.
    #[error("UNAUTHORIZED_DESTINATION: {destination} not rated for {tenant}:{category}:{subject}")]
    UnauthorizedDestination {
        /// Tenant of the call.
        tenant: String,
        /// Category of the call.
        category: String,
        /// Subject of the call.
        subject: String,
        /// The destination number.
        destination: String,
    },
    /// The destination is priced, but no timing of its rating plan covers
    /// this moment of the call.
    #[error(
        "NO_RATE_INTERVAL: no timing of rating plan {rating_plan} covers {destination} at {at}"
    )]
    NoRateInterval {
        /// The rating plan in force.
        rating_plan: String,
        /// The destination number.
        destination: String,
        /// The uncovered moment.
        at: DateTime<Utc>,
    },
    /// Fallback subjects point at each other more deeply than allowed.
    #[error("MAX_RECURSION_DEPTH: fallback subjects nest deeper than {depth} from {subject}")]
    FallbackDepth {
        /// The subject where the chain started.
        subject: String,
        /// The limit.
        depth: usize,
    },
    /// The cost or usage does not fit in the number types.
    #[error("arithmetic overflow rating {what}")]
    Overflow {
        /// What overflowed.
        what: &'static str,
    },
    /// The account's balances cannot pay the call and it may not go
    /// negative; nothing was debited.
    #[error("INSUFFICIENT_CREDIT: account {account} lacks {missing}")]
    InsufficientCredit {
        /// `tenant:account`.
        account: String,
        /// The money (or, for unit-only charges, the value) still unpaid.
        missing: rust_decimal::Decimal,
    },
    /// No such account.
    #[error("ACCOUNT_NOT_FOUND: {account}")]
    AccountNotFound {
        /// `tenant:account`.
        account: String,
    },
    /// The account is disabled: it cannot be debited.
    #[error("ACCOUNT_DISABLED: {account}")]
    AccountDisabled {
        /// `tenant:account`.
        account: String,
    },
    /// An account store failed (a backend error, as text).
    #[error("account store: {0}")]
    Store(String),
}

impl Error {
    /// A short machine-readable reason, as CGRateS puts it in a CDR's
    /// ExtraFields when it cannot rate a call.
    #[must_use]
    pub fn reason(&self) -> &'static str {
        match self {
            Error::RatingPlanNotFound { .. } => "RATING_PLAN_NOT_FOUND",
            Error::UnauthorizedDestination { .. } => "UNAUTHORIZED_DESTINATION",
            Error::NoRateInterval { .. } => "NO_RATE_INTERVAL",
            Error::FallbackDepth { .. } => "MAX_RECURSION_DEPTH",
            Error::Overflow { .. } => "OVERFLOW",
            Error::InsufficientCredit { .. } => "INSUFFICIENT_CREDIT",
            Error::AccountNotFound { .. } => "ACCOUNT_NOT_FOUND",
            Error::AccountDisabled { .. } => "ACCOUNT_DISABLED",
            Error::Store(_) => "STORE",
            Error::Duration { .. } | Error::InvalidInput { .. } => "INVALID_INPUT",
            Error::Load { .. }
            | Error::Io { .. }
            | Error::EmptyPlan { .. }
            | Error::UnreadableFile { .. }
            | Error::NoRatingProfiles { .. } => "TARIFF_PLAN",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn load_error_names_file_line_column_and_expectation() {
        let e = Error::Load {
            file: PathBuf::from("plan/Rates.csv"),
            line: 3,
            column: 4,
            expected: "a duration like 60s".into(),
            found: "6o".into(),
        };
        assert_eq!(
            e.to_string(),
            "plan/Rates.csv:3:4: expected a duration like 60s, found \"6o\""
        );
        assert_eq!(e.reason(), "TARIFF_PLAN");
    }
}
