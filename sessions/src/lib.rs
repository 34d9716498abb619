//! AccuRate sessions: the session manager, CDRs and stats.
//!
//! Passive dialog events and active agent events meet here and become the
//! same session operations.
#![forbid(unsafe_code)]
