//! AccuRate rating core: CGRateS tariff plans and exact decimal costs.
//!
//! Pure logic: no I/O, no clock, no floats.
#![forbid(unsafe_code)]
#![deny(clippy::float_arithmetic)]
