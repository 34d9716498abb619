//! Which balances a call may use: type, time (expiry, timings), category,
//! destination.
//!
//! The destination rule follows CGRateS's `getAlldBalancesForPrefix`: the
//! number's prefixes are tried longest first; at the first prefix whose
//! destinations the balance names (or, for a balance that only excludes,
//! the first prefix with any destination) the balance is used if none of
//! the destinations found there is excluded. The prefix length it matched
//! at (its precision) orders the balances before their weight.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::Balance;
use crate::call::CallDescriptor;
use crate::plan::TariffPlan;
use crate::timing::DateParts;

impl TariffPlan {
    /// Whether the timing `id` (from Timings.csv, or `*any`) covers `at`;
    /// `None` for an unknown ID.
    #[must_use]
    pub fn timing_active(&self, id: &str, at: DateTime<Utc>) -> Option<bool> {
        if id == "*any" {
            return Some(true);
        }
        let t = self.timings.get(id)?;
        Some(t.is_active(&DateParts::new(at)))
    }

    /// The destination IDs whose prefixes match `number`, longest prefix
    /// first, with the length of the prefix matched.
    #[must_use]
    pub fn destination_ids_for(&self, number: &str) -> Vec<(usize, Arc<str>)> {
        let m = self.trie.matches(number.as_bytes());
        let mut out = Vec::new();
        for (len, node) in m.deepest_first() {
            for &d in self.trie.dests(node) {
                if let Some(id) = self.dest_ids.get(d as usize) {
                    out.push((len, id.clone()));
                }
            }
        }
        out
    }
}

/// A balance a call may use: its index in the account's list of its type
/// and the prefix length it matched at (0: not restricted to
/// destinations).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Useful {
    pub index: usize,
    pub precision: usize,
}

/// Whether `b` pays for the call's destination; `Some(precision)` if so.
pub(crate) fn destination_precision(b: &Balance, dests: &[(usize, Arc<str>)]) -> Option<usize> {
    if b.destination_ids.is_empty() {
        return Some(0);
    }
    let all_exclude = b.destination_ids.values().all(|inc| !inc);
    let mut i = 0;
    while i < dests.len() {
        let len = dests.get(i).map_or(0, |d| d.0);
        let at_len = dests.iter().skip(i).take_while(|d| d.0 == len);
        let (mut found, mut all_include, mut n) = (false, true, 0);
        for (_, id) in at_len {
            n += 1;
            if let Some(&inc) = b.destination_ids.get(&**id) {
                found = true;
                all_include &= inc;
            }
        }
        if found || all_exclude {
            return all_include.then_some(len);
        }
        i += n.max(1);
    }
    None
}

/// Whether one of the balance's timings covers `at` (no timings: always,
/// as CGRateS's `Balance.IsActiveAt`); an ID the plan does not know never
/// does.
pub(crate) fn timings_active(b: &Balance, plan: &TariffPlan, at: DateTime<Utc>) -> bool {
    b.timing_ids.is_empty()
        || b.timing_ids
            .iter()
            .any(|id| plan.timing_active(id, at) == Some(true))
}

/// Whether `b` pays for `category` (no categories: all).
pub(crate) fn category_matches(b: &Balance, category: &str) -> bool {
    if b.categories.is_empty() {
        return true;
    }
    match b.categories.get(category) {
        Some(&inc) => inc,
        // Only exclusions listed: every other category is in.
        None => b.categories.values().all(|inc| !inc),
    }
}

/// The balances of type `t` the call may use at `at`, in the order they
/// are debited: longest destination prefix first, then higher weight,
/// then load order.
pub(crate) fn useful_balances(
    list: &[Balance],
    cd: &CallDescriptor<'_>,
    plan: &TariffPlan,
    dests: &[(usize, Arc<str>)],
    at: DateTime<Utc>,
) -> Vec<Useful> {
    let mut out: Vec<Useful> = list
        .iter()
        .enumerate()
        .filter(|(_, b)| {
            b.usable_at(at) && category_matches(b, cd.category) && timings_active(b, plan, at)
        })
        .filter_map(|(index, b)| {
            destination_precision(b, dests).map(|precision| Useful { index, precision })
        })
        .collect();
    out.sort_by(|a, b| {
        let wa = list.get(a.index).map(|x| x.weight);
        let wb = list.get(b.index).map(|x| x.weight);
        b.precision.cmp(&a.precision).then(wb.cmp(&wa))
    });
    out
}
