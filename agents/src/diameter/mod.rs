//! A Diameter credit-control (Gy) agent, as CGRateS's DiameterAgent: a
//! sans-IO core the server's I/O loop (`src/serve/diameter.rs`) drives.
//!
//! - [`avp`], [`message`]: the wire format (RFC 6733 §3-4).
//! - [`dict`]: AVP names, codes, types and enumerations loaded from files
//!   (`agents/dict/diameter/`).
//! - [`peer`]: one connection's base protocol (CER/CEA, DWR/DWA, DPR/DPA,
//!   5001 for unknown mandatory AVPs, ASR out).
//! - [`cc`]: Credit-Control-Requests turned into SessionSv1 calls by the
//!   request processors ([`crate::template`]) and their replies into
//!   Credit-Control-Answers.

pub mod avp;
pub mod cc;
pub mod defaults;
pub mod dict;
pub mod message;
pub mod peer;

pub use avp::{Avp, AvpType};
pub use cc::{CcAgent, CcCall, CcConfig, CcRequest};
pub use dict::Dictionary;
pub use message::Message;
pub use peer::{BadReason, CloseReason, Event, Peer, PeerConfig};

/// Command codes, application ids and AVP codes the core uses by number.
pub mod code {
    /// Capabilities-Exchange (CER/CEA).
    pub const CAPABILITIES_EXCHANGE: u32 = 257;
    /// Re-Auth (RAR/RAA).
    pub const RE_AUTH: u32 = 258;
    /// Credit-Control (CCR/CCA).
    pub const CREDIT_CONTROL: u32 = 272;
    /// Abort-Session (ASR/ASA).
    pub const ABORT_SESSION: u32 = 274;
    /// Device-Watchdog (DWR/DWA).
    pub const DEVICE_WATCHDOG: u32 = 280;
    /// Disconnect-Peer (DPR/DPA).
    pub const DISCONNECT_PEER: u32 = 282;
    /// The credit-control application.
    pub const APP_CREDIT_CONTROL: u32 = 4;
    /// The relay application (every application).
    pub const APP_RELAY: u32 = 0xffff_ffff;

    /// Host-IP-Address.
    pub const HOST_IP_ADDRESS: u32 = 257;
    /// Auth-Application-Id.
    pub const AUTH_APPLICATION_ID: u32 = 258;
    /// Vendor-Specific-Application-Id.
    pub const VENDOR_SPECIFIC_APPLICATION_ID: u32 = 260;
    /// Session-Id.
    pub const SESSION_ID: u32 = 263;
    /// Origin-Host.
    pub const ORIGIN_HOST: u32 = 264;
    /// Vendor-Id.
    pub const VENDOR_ID: u32 = 266;
    /// Result-Code.
    pub const RESULT_CODE: u32 = 268;
    /// Product-Name.
    pub const PRODUCT_NAME: u32 = 269;
    /// Disconnect-Cause.
    pub const DISCONNECT_CAUSE: u32 = 273;
    /// Failed-AVP.
    pub const FAILED_AVP: u32 = 279;
    /// Destination-Realm.
    pub const DESTINATION_REALM: u32 = 283;
    /// Destination-Host.
    pub const DESTINATION_HOST: u32 = 293;
    /// Origin-Realm.
    pub const ORIGIN_REALM: u32 = 296;
    /// CC-Request-Number.
    pub const CC_REQUEST_NUMBER: u32 = 415;
    /// CC-Request-Type.
    pub const CC_REQUEST_TYPE: u32 = 416;
}

/// Result-Code values (RFC 6733 §7.1, RFC 4006 §9).
pub mod result {
    /// DIAMETER_SUCCESS.
    pub const SUCCESS: u32 = 2001;
    /// DIAMETER_COMMAND_UNSUPPORTED.
    pub const COMMAND_UNSUPPORTED: u32 = 3001;
    /// DIAMETER_APPLICATION_UNSUPPORTED.
    pub const APPLICATION_UNSUPPORTED: u32 = 3007;
    /// DIAMETER_UNKNOWN_PEER.
    pub const UNKNOWN_PEER: u32 = 3010;
    /// DIAMETER_CREDIT_LIMIT_REACHED.
    pub const CREDIT_LIMIT_REACHED: u32 = 4012;
    /// DIAMETER_AVP_UNSUPPORTED.
    pub const AVP_UNSUPPORTED: u32 = 5001;
    /// DIAMETER_AUTHORIZATION_REJECTED.
    pub const AUTHORIZATION_REJECTED: u32 = 5003;
    /// DIAMETER_MISSING_AVP.
    pub const MISSING_AVP: u32 = 5005;
    /// DIAMETER_UNABLE_TO_COMPLY.
    pub const UNABLE_TO_COMPLY: u32 = 5012;
    /// DIAMETER_INVALID_AVP_LENGTH.
    pub const INVALID_AVP_LENGTH: u32 = 5014;
    /// DIAMETER_NO_COMMON_APPLICATION.
    pub const NO_COMMON_APPLICATION: u32 = 5010;
    /// DIAMETER_USER_UNKNOWN.
    pub const USER_UNKNOWN: u32 = 5030;
}
