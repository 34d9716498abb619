//! Which profiles a run has to look at: by tenant and context, and within
//! those by the value of a `*string` inline filter (a profile with
//! `*string:~*req.Account:1001` can only match an event whose Account is
//! 1001), as CGRateS's filter indexes do. The index only leaves out
//! profiles whose filters would fail; the filters are still checked.

use std::sync::Arc;

use rustc_hash::FxHashMap;

use super::AttributeProfile;
use crate::event::DataProvider;

/// The profiles of one tenant and context.
#[derive(Debug, Clone, Default)]
struct Bucket {
    /// Positions of profiles without a `*string` inline filter.
    unindexed: Vec<usize>,
    /// Element (`~*req.Account`) -> value -> positions.
    by_value: FxHashMap<String, FxHashMap<String, Vec<usize>>>,
}

/// Tenant -> context -> bucket.
#[derive(Debug, Clone, Default)]
pub(super) struct Index {
    buckets: FxHashMap<String, FxHashMap<String, Bucket>>,
}

/// The first `*string` inline filter of `p` (`*string:element:v1|v2`):
/// (element, values).
fn string_filter(p: &AttributeProfile) -> Option<(String, Vec<String>)> {
    p.filter_ids.iter().find_map(|id| {
        let mut parts = id.strip_prefix("*string:")?.splitn(2, ':');
        let (element, values) = (parts.next()?, parts.next()?);
        if element.is_empty() || values.is_empty() {
            return None;
        }
        Some((
            element.to_owned(),
            values.split('|').map(str::to_owned).collect(),
        ))
    })
}

impl Index {
    /// The index of `profiles` (positions in that slice).
    pub(super) fn build(profiles: &[Arc<AttributeProfile>]) -> Index {
        let mut ix = Index::default();
        for (pos, p) in profiles.iter().enumerate() {
            let filter = string_filter(p);
            for ctx in &p.contexts {
                let bucket = ix
                    .buckets
                    .entry(p.tenant.clone())
                    .or_default()
                    .entry(ctx.clone())
                    .or_default();
                match &filter {
                    None => bucket.unindexed.push(pos),
                    Some((element, values)) => {
                        let by = bucket.by_value.entry(element.clone()).or_default();
                        for v in values {
                            let list = by.entry(v.clone()).or_default();
                            if list.last() != Some(&pos) {
                                list.push(pos);
                            }
                        }
                    }
                }
            }
        }
        ix
    }

    /// Positions of the profiles of `tenant` and `context` that `ev` may
    /// match, in load order.
    pub(super) fn candidates(
        &self,
        tenant: &str,
        context: &str,
        ev: &dyn DataProvider,
    ) -> Vec<usize> {
        let Some(bucket) = self.buckets.get(tenant).and_then(|b| b.get(context)) else {
            return Vec::new();
        };
        let mut out = bucket.unindexed.clone();
        for (element, values) in &bucket.by_value {
            if let Some(v) = ev.field(element)
                && let Some(list) = values.get(v.as_ref())
            {
                out.extend_from_slice(list);
            }
        }
        out.sort_unstable();
        out.dedup();
        out
    }
}
