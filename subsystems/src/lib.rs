//! AccuRate's CGRateS subsystems, loaded from the tariff-plan folder and
//! shared by the API, the session manager and the passive path:
//!
//! - [`filters`]: one filter engine (Filters.csv and inline
//!   `*string:~*req.Account:1001`) every other subsystem asks.
//! - [`attributes`]: AttributeS, event field substitutions by context.
//! - [`chargers`]: ChargerS, one charging run per matching charger.
//! - [`routes`]: RouteS (SupplierS in v0.10), sorted routes for an event.
//! - [`resources`]: ResourceS, concurrent-usage limits.
//! - [`thresholds`]: ThresholdS, hit counters that fire actions.
//! - [`stats`]: StatS, metric queues (ASR, ACD, ...).
//!
//! Everything here is sans-IO: events, profiles and the time are passed
//! in, decisions and actions come out; the server stores and sends.
#![forbid(unsafe_code)]

pub mod activation;
pub mod attributes;
pub mod chargers;
mod columns;
mod error;
pub mod event;
pub mod filters;
pub mod load;
pub mod resources;
pub mod routes;
pub mod stats;
pub mod thresholds;

pub use activation::ActivationInterval;
pub use error::Error;
pub use event::{DataProvider, Event};
pub use filters::{FilterCtx, FilterSet};
pub use load::{HANDLED_FILES, Profiles, SharedProfiles};
