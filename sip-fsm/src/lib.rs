//! AccuRate SIP scanning and the sans-IO dialog state machine.
//!
//! [`capture::SipPacket`]s and their timestamps in, dialog events out.
#![forbid(unsafe_code)]
