//! AccuRate active agents: Kamailio evapi, FreeSWITCH ESL, Asterisk ARI,
//! OpenSIPS datagram, Diameter (Gy) and RADIUS.
//!
//! Each agent is a sans-IO protocol core (bytes and `now` in, operations
//! and bytes out) driven by a small I/O loop in the binary.
//!
//! - [`evapi`]: Kamailio's evapi module as CGRateS's KamailioAgent speaks it.
//! - [`osips`]: OpenSIPS's event_datagram and mi_datagram modules.
//! - [`ari`]: Asterisk's REST Interface as CGRateS's AsteriskAgent speaks it.
//! - [`esl`]: FreeSWITCH's inbound event socket as CGRateS's FreeSWITCHAgent speaks it.
//! - [`radius`]: RADIUS authentication, accounting and Disconnect-Requests.
//! - [`diameter`]: Diameter credit control (Gy) as CGRateS's DiameterAgent speaks it.
//! - [`template`]: request processors (filters, flags, request and reply
//!   field templates) shared by the Diameter and RADIUS agents.
#![forbid(unsafe_code)]

pub mod ari;
pub mod diameter;
mod error;
pub mod esl;
pub mod evapi;
pub mod osips;
pub mod radius;
pub mod template;

pub use error::Error;
