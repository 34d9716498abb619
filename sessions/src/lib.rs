//! AccuRate sessions: the session manager, CDRs and stats.
//!
//! Passive dialog events and active agent events meet here and become the
//! same session operations.
//!
//! - [`cdr`]: CGRateS-shaped call detail records from the dialog machine's
//!   [`sip_fsm::CallRecord`]s.
//! - [`order`]: releases finished calls in end-time order.
#![forbid(unsafe_code)]

pub mod cdr;
pub mod order;

pub use cdr::{Cdr, CdrOptions, cgrid, cgrid_bytes};
pub use order::EndTimeOrder;
