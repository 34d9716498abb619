//! AccuRate sessions: the session manager, CDRs and stats.
//!
//! Passive dialog events and active agent events meet here and become the
//! same session operations.
//!
//! - [`cdr`]: CGRateS-shaped call detail records from the dialog machine's
//!   [`sip_fsm::CallRecord`]s.
//! - [`order`]: releases finished calls in end-time order.
//! - [`sessionstore`]: the durable store of live sessions
//!   ([`SessionStore`]), so that a restart resumes them.
#![forbid(unsafe_code)]

pub mod cdr;
mod error;
pub mod order;
pub mod sessionstore;

pub use cdr::{Cdr, CdrOptions, cgrid, cgrid_bytes};
pub use error::Error;
pub use order::EndTimeOrder;
pub use sessionstore::{MemorySessions, SessionStore};
