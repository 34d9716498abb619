//! What to rate: the call descriptor and its type of record.
//!
//! Its own module because both the resolver (which plan applies) and the
//! cost engine (what it costs) read it; neither owns it.

use std::time::Duration;

use chrono::{DateTime, Utc};

/// Type of record: what the usage measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Tor {
    /// `*voice`: usage is time.
    #[default]
    Voice,
    /// `*data`: usage counts units (bytes), one nanosecond each.
    Data,
    /// `*sms`: usage counts messages, one nanosecond each.
    Sms,
}

impl Tor {
    /// `*voice`, `*data` or `*sms`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Tor::Voice => "*voice",
            Tor::Data => "*data",
            Tor::Sms => "*sms",
        }
    }
}

impl std::str::FromStr for Tor {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        match s {
            "*voice" => Ok(Tor::Voice),
            "*data" => Ok(Tor::Data),
            "*sms" => Ok(Tor::Sms),
            _ => Err(()),
        }
    }
}

/// What to rate. Borrowed strings: building one costs nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallDescriptor<'a> {
    /// Tenant (`cgrates.org` by default).
    pub tenant: &'a str,
    /// Category (`call` by default).
    pub category: &'a str,
    /// Rating subject; when empty, the account is used.
    pub subject: &'a str,
    /// Account (not used for pricing, only as the subject's default).
    pub account: &'a str,
    /// Destination number.
    pub destination: &'a str,
    /// What the usage measures.
    pub tor: Tor,
    /// When the call was answered (or this piece starts).
    pub start: DateTime<Utc>,
    /// Usage to rate (for `*data`/`*sms`, units as nanoseconds).
    pub usage: Duration,
    /// How much of the call was rated before this piece (a prepaid debit
    /// loop rates a call in pieces). Selects the rate group by
    /// GroupIntervalStart; the connect fee is charged only when it is zero.
    pub offset: Duration,
}

impl<'a> CallDescriptor<'a> {
    /// A whole `*voice` call of tenant `cgrates.org`, category `call`.
    #[must_use]
    pub fn new(
        subject: &'a str,
        destination: &'a str,
        start: DateTime<Utc>,
        usage: Duration,
    ) -> Self {
        CallDescriptor {
            tenant: "cgrates.org",
            category: "call",
            subject,
            account: subject,
            destination,
            tor: Tor::Voice,
            start,
            usage,
            offset: Duration::ZERO,
        }
    }
}
