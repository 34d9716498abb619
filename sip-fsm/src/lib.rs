//! AccuRate SIP scanning and the sans-IO dialog state machine.
//!
//! [`capture::SipPacket`]s and their timestamps in, dialog events out:
//! - [`scan()`] is a zero-copy scanner for the start line and the headers
//!   billing needs.
//! - [`DialogMachine`] follows every call by Call-ID and the caller's From
//!   tag and emits
//!   [`DialogEvent`]s (attempt, answer, update, end, failed) that carry what
//!   a CDR needs, including the charging fields the [`MappingConfig`]
//!   derives from the SIP headers.
//! - [`DialogSnapshot`] carries a live call across a restart
//!   ([`DialogMachine::snapshot_call`], [`DialogMachine::restore`]).
//!
//! Nothing here reads a clock, spawns a task or touches a socket: time is
//! the packet timestamp and the `now` argument (see CONTRIBUTING.md).
#![forbid(unsafe_code)]

mod error;
mod event;
mod machine;
mod mapping;
pub mod scan;
mod snapshot;

pub use error::{Error, ScanError};
pub use event::{
    CallInfo, CallRecord, Charging, DialogEvent, EndReason, Party, ReasonInfo, UpdateMethod,
    escape_id, unescape_id,
};
pub use machine::{Config, DialogMachine, Stats};
pub use mapping::{AddressRule, FieldSource, MappingConfig, NormRule, REQUEST_TYPES};
pub use scan::{Prescan, SipMessage, scan};
/// The short text type of [`CallInfo`], [`Charging`] and [`CallRecord`]
/// fields: strings of up to 23 bytes (users, tags, numbers) are held
/// inline, without an allocation.
pub use smol_str::SmolStr;
pub use snapshot::{CallSnapshot, DialogSnapshot, SnapshotState};
