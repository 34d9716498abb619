//! AccuRate sessions: the session manager, CDRs and stats.
//!
//! Passive dialog events and active agent events meet here and become the
//! same session operations.
//!
//! - [`cdr`]: CGRateS-shaped call detail records from the dialog machine's
//!   [`sip_fsm::CallRecord`]s.
//! - [`order`]: releases finished calls in end-time order.
//! - [`manager`]: the session manager (authorize, initiate, update,
//!   terminate, CDRs, prepaid debit loops, disconnects, TTL, snapshots).
//! - [`cdrstore`]: the [`CdrStore`] trait stored CDRs are written and
//!   queried through, and CGRateS's CDR filter.
//! - [`export`]: export and import field templates (CGRateS's `cdre`
//!   / `ers` fields): a CDR or a CSV row to formatted fields.
//! - [`sessionstore`]: the durable store of live sessions
//!   ([`SessionStore`]), so that a restart resumes them.
#![forbid(unsafe_code)]

pub mod cdr;
pub mod cdrstore;
mod error;
pub mod export;
pub mod manager;
pub mod order;
pub mod sessionstore;

pub use manager::{
    Action, Charging, Counters, Disconnect, EndIntent, Owner, Reply, RequestType, SessionConfig,
    SessionEvent, SessionKey, SessionManager, SessionSnapshot, event_cdr,
};

pub use cdr::{Cdr, CdrOptions, cgrid, cgrid_bytes};
pub use cdrstore::{BoxFuture, CdrFilter, CdrStore, CostUpdate, ListField};
pub use error::Error;
pub use order::EndTimeOrder;
pub use sessionstore::{MemorySessions, SessionStore};
