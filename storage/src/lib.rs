//! AccuRate storage: implementations of the store traits defined by
//! `rating` and `sessions` (embedded file, SQLite, Redis, PostgreSQL).
//!
//! Nothing depends on this crate but the `accurate` binary.
#![forbid(unsafe_code)]
