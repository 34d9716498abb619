//! Shared groups: balances several accounts draw from.
//!
//! As CGRateS's `getAlldBalancesForPrefix`: a usable balance of the debited
//! account that belongs to shared groups stands for the usable balances of
//! each group in every member account (the debited one included), sorted
//! by the group's strategy for the debited account. The groups come from a
//! [`SharedGroups`] lookup (SharedGroups.csv, loaded elsewhere).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::matching::useful_balances;
use super::{Account, BalanceType};
pub use crate::actions::SharingStrategy;
use crate::call::CallDescriptor;
use crate::plan::TariffPlan;

/// A shared group: who shares, and in which order each member draws.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SharedGroup {
    /// The group ID.
    pub id: String,
    /// Strategy by member `tenant:account`, or `*any` for every member.
    pub strategies: BTreeMap<String, SharingStrategy>,
    /// Member accounts (`tenant:account`).
    pub members: BTreeSet<String>,
}

impl SharedGroup {
    /// The strategy for `account` (`tenant:account`): its own, else
    /// `*any`'s, else `*highest`.
    #[must_use]
    pub fn strategy_for(&self, account: &str) -> SharingStrategy {
        self.strategies
            .get(account)
            .or_else(|| self.strategies.get("*any"))
            .copied()
            .unwrap_or_default()
    }
}

/// Where debits find shared groups.
pub trait SharedGroups {
    /// The group, if it exists.
    fn shared_group(&self, id: &str) -> Option<SharedGroup>;
}

impl SharedGroups for BTreeMap<String, SharedGroup> {
    fn shared_group(&self, id: &str) -> Option<SharedGroup> {
        self.get(id).cloned()
    }
}

/// A balance during a debit: the account (index into the accounts given)
/// and its index in that account's list of its type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Slot {
    pub acct: usize,
    pub index: usize,
}

/// The balances of type `t` a call may use, in debit order, shared groups
/// expanded when `groups` is given.
pub(crate) fn walk_order(
    accts: &[Account],
    t: BalanceType,
    cd: &CallDescriptor<'_>,
    plan: &TariffPlan,
    dests: &[(usize, Arc<str>)],
    at: DateTime<Utc>,
    groups: Option<&dyn SharedGroups>,
) -> Vec<Slot> {
    let Some(me) = accts.first() else {
        return Vec::new();
    };
    let own = useful_balances(me.balances_of(t), cd, plan, dests, at);
    let Some(groups) = groups else {
        return own
            .into_iter()
            .map(|u| Slot {
                acct: 0,
                index: u.index,
            })
            .collect();
    };
    let my_key = me.key();
    let mut out = Vec::new();
    for u in own {
        let Some(b) = me.balances_of(t).get(u.index) else {
            continue;
        };
        if b.shared_groups.is_empty() {
            out.push(Slot {
                acct: 0,
                index: u.index,
            });
            continue;
        }
        for sg in &b.shared_groups {
            let Some(group) = groups.shared_group(sg) else {
                continue;
            };
            let mut shared: Vec<(Slot, rust_decimal::Decimal)> = Vec::new();
            for (ai, a) in accts.iter().enumerate() {
                if ai != 0 && !group.members.contains(&a.key()) {
                    continue;
                }
                let list = a.balances_of(t);
                for m in useful_balances(list, cd, plan, dests, at) {
                    if let Some(mb) = list.get(m.index).filter(|mb| mb.shared_groups.contains(sg)) {
                        shared.push((
                            Slot {
                                acct: ai,
                                index: m.index,
                            },
                            mb.value,
                        ));
                    }
                }
            }
            let strategy = group.strategy_for(&my_key);
            match strategy {
                SharingStrategy::Lowest | SharingStrategy::MineLowest => {
                    shared.sort_by_key(|s| s.1);
                }
                SharingStrategy::Highest | SharingStrategy::MineHighest => {
                    shared.sort_by_key(|s| std::cmp::Reverse(s.1));
                }
                // No random numbers in rating: member order, as collected.
                SharingStrategy::Random | SharingStrategy::MineRandom => {}
            }
            if strategy.mine_first() {
                // My balance first, the order of the others kept.
                if let Some(i) = shared.iter().position(|(s, _)| {
                    *s == Slot {
                        acct: 0,
                        index: u.index,
                    }
                }) {
                    let mine = shared.remove(i);
                    shared.insert(0, mine);
                }
            }
            out.extend(shared.into_iter().map(|(s, _)| s));
        }
    }
    out
}

/// The other accounts (`tenant:account`) a debit of `account` for this
/// call may draw from: the members of the shared groups of its usable
/// monetary and unit balances. Load and lock them with the account, then
/// call [`super::debit_shared`].
#[must_use]
pub fn shared_members(
    account: &Account,
    cd: &CallDescriptor<'_>,
    plan: &TariffPlan,
    groups: &dyn SharedGroups,
) -> BTreeSet<String> {
    let dests = plan.destination_ids_for(cd.destination);
    let me = account.key();
    let mut out = BTreeSet::new();
    for t in [BalanceType::Monetary, BalanceType::for_tor(cd.tor)] {
        let list = account.balances_of(t);
        for u in useful_balances(list, cd, plan, &dests, cd.start) {
            let Some(b) = list.get(u.index) else {
                continue;
            };
            for sg in &b.shared_groups {
                if let Some(g) = groups.shared_group(sg) {
                    out.extend(g.members.into_iter().filter(|m| *m != me));
                }
            }
        }
    }
    out
}
