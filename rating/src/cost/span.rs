//! A timespan: one piece of a call at one price, and the names it carries.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;

use crate::exact::ExactAmount;
use crate::money::{Money, Rounding};
use crate::plan::{MaxCost, PlanNames, SpanNames};

/// One piece of a call at one price.
///
/// The IDs that name where the price came from (rating plan, destination,
/// DestinationRates, timing, Rates) are read through methods: a span
/// shares them with the rate interval that priced it (one reference count
/// per span instead of one per name), and keeps the matched prefix inline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimeSpan {
    /// Start of the span.
    pub start: DateTime<Utc>,
    /// End of the span (start plus the rated usage).
    pub end: DateTime<Utc>,
    /// Where the span starts, counted from the start of the call (the
    /// descriptor's offset plus the usage rated before it).
    pub call_offset: Duration,
    /// Rated usage: whole increments.
    pub usage: Duration,
    /// The subject and the names of the rate interval that priced the
    /// span.
    pub(crate) names: SpanRef,
    /// The prefix of the number that matched.
    pub(crate) prefix: MatchedPrefix,
    /// The RatingPlans weight.
    pub weight: Decimal,
    /// Price per rate unit.
    pub rate: Money,
    /// RateUnit.
    pub rate_unit: Duration,
    /// RateIncrement.
    pub rate_increment: Duration,
    /// GroupIntervalStart of the rate row used.
    pub group_interval_start: Duration,
    /// Number of increments.
    pub increments: u64,
    /// Cost of one increment (exact, or CGRateS-rounded in `cgrates` mode).
    pub increment_cost: Money,
    /// Cost of the span, before the call's final rounding.
    pub cost: Money,
    /// The destination rate's rounding.
    pub rounding: Rounding,
    /// The destination rate's MaxCost.
    pub max_cost: Option<MaxCost>,
    /// `cost` and `increment_cost` as exact fractions.
    pub(crate) exact: (ExactAmount, ExactAmount),
}

impl TimeSpan {
    /// The subject whose rating profile priced the span.
    #[must_use]
    pub fn matched_subject(&self) -> &str {
        self.names.subject()
    }

    /// The rating plan (RatingPlans ID).
    #[must_use]
    pub fn rating_plan(&self) -> &str {
        self.names.span().map_or("", |n| &n.rating_plan)
    }

    /// The destination ID (`*any` for the plan's catch-all).
    #[must_use]
    pub fn destination_id(&self) -> &str {
        self.names.span().map_or("", |n| &n.destination_id)
    }

    /// The prefix of the number that matched (`*any` for the plan's
    /// catch-all).
    #[must_use]
    pub fn matched_prefix(&self) -> &str {
        self.prefix.as_str()
    }

    /// The DestinationRates ID.
    #[must_use]
    pub fn destination_rate(&self) -> &str {
        self.names.span().map_or("", |n| &n.destination_rate)
    }

    /// The timing ID.
    #[must_use]
    pub fn timing(&self) -> &str {
        self.names.span().map_or("", |n| &n.timing)
    }

    /// The Rates ID.
    #[must_use]
    pub fn rate_id(&self) -> &str {
        self.names.span().map_or("", |n| &n.rate_id)
    }
}

/// A span's subject and rate interval names: a handle to the plan's table
/// of names and two places in it.
#[derive(Clone)]
pub(crate) struct SpanRef {
    pub table: Arc<PlanNames>,
    /// Index into `table.spans`.
    pub interval: u32,
    /// Index into `table.subjects`.
    pub subject: u32,
}

impl SpanRef {
    fn span(&self) -> Option<&SpanNames> {
        self.table.spans.get(self.interval as usize)
    }

    fn subject(&self) -> &str {
        self.table
            .subjects
            .get(self.subject as usize)
            .map_or("", |s| s)
    }
}

/// Equal when the names are (whichever plan's table they are in).
impl PartialEq for SpanRef {
    fn eq(&self, other: &Self) -> bool {
        self.subject() == other.subject() && self.span() == other.span()
    }
}

impl Eq for SpanRef {}

impl fmt::Debug for SpanRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SpanRef")
            .field("subject", &self.subject())
            .field("names", &self.span())
            .finish()
    }
}

/// Prefixes up to this many bytes are kept inside the span.
const INLINE: usize = 22;

/// The matched prefix of a span: inline when short (any phone prefix),
/// so that pricing a call allocates nothing for it; shared otherwise.
#[derive(Clone)]
pub(crate) enum MatchedPrefix {
    /// The first `len` bytes of `bytes` (the rest are zero).
    Inline { len: u8, bytes: [u8; INLINE] },
    /// A longer one.
    Heap(Arc<str>),
}

impl MatchedPrefix {
    /// The prefix `s`.
    pub fn new(s: &str) -> Self {
        match u8::try_from(s.len()) {
            Ok(len) if s.len() <= INLINE => {
                let mut bytes = [0_u8; INLINE];
                if let Some(head) = bytes.get_mut(..s.len()) {
                    head.copy_from_slice(s.as_bytes());
                }
                MatchedPrefix::Inline { len, bytes }
            }
            _ => MatchedPrefix::Heap(Arc::from(s)),
        }
    }

    /// The first `len` bytes of `number` (cut inside a character: those
    /// bytes with the broken character replaced).
    pub fn of_number(number: &str, len: usize) -> Self {
        match number.get(..len) {
            Some(p) => MatchedPrefix::new(p),
            None => {
                let bytes = number.as_bytes();
                let head = bytes.get(..len).unwrap_or(bytes);
                MatchedPrefix::new(&String::from_utf8_lossy(head))
            }
        }
    }

    /// The prefix.
    pub fn as_str(&self) -> &str {
        match self {
            MatchedPrefix::Inline { len, bytes } => {
                // Copied from a `&str` whole: always valid.
                let b = bytes.get(..usize::from(*len)).unwrap_or_default();
                std::str::from_utf8(b).unwrap_or_default()
            }
            MatchedPrefix::Heap(s) => s,
        }
    }
}

impl PartialEq for MatchedPrefix {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for MatchedPrefix {}

impl fmt::Debug for MatchedPrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matched_prefix_keeps_the_text_inline_or_not() {
        for s in [
            "",
            "4",
            "*any",
            "1234567890123456789012",
            "12345678901234567890123",
        ] {
            let p = MatchedPrefix::new(s);
            assert_eq!(p.as_str(), s);
            assert_eq!(matches!(p, MatchedPrefix::Inline { .. }), s.len() <= INLINE);
            assert_eq!(p, MatchedPrefix::Heap(Arc::from(s)));
        }
        assert_eq!(MatchedPrefix::of_number("4930123", 4).as_str(), "4930");
        assert_eq!(MatchedPrefix::of_number("é1", 1).as_str(), "\u{fffd}");
        assert_eq!(format!("{:?}", MatchedPrefix::new("49")), "\"49\"");
    }
}
