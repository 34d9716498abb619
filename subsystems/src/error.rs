//! The crate's one error type.

use std::path::PathBuf;

/// What can go wrong loading profiles or processing an event.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A CSV file of the tariff-plan folder does not read.
    #[error(transparent)]
    Csv(#[from] rating::Error),
    /// A line of a subsystem's CSV file is wrong: file, 1-based line and
    /// column (field number), and why.
    #[error("{}:{line}: column {column}: {why}", file.display())]
    Load {
        /// The file.
        file: PathBuf,
        /// 1-based line.
        line: usize,
        /// 1-based field number (0: the whole line).
        column: usize,
        /// What is wrong.
        why: String,
    },
    /// A filter (by ID or inline) that does not parse, or an ID no
    /// Filters.csv row defines (CGRateS's `NOT_FOUND:FLTR_X`).
    #[error("{0}")]
    Filter(String),
    /// An argument of an API call is missing or wrong
    /// (`MANDATORY_IE_MISSING: [Tenant ID]` style text).
    #[error("{0}")]
    Invalid(String),
    /// No profile matched or the named item does not exist (CGRateS's
    /// `NOT_FOUND`).
    #[error("NOT_FOUND")]
    NotFound,
}
