//! When `*balance_expired` triggers are due: the server keeps, for each
//! account with such a trigger armed, the next expiry of a balance it
//! watches (`rating::next_balance_expiry`, recomputed after every change
//! of the account), and the scheduler task wakes at the earliest one to
//! check that account's triggers. A balance that expires while nobody
//! touches the account fires its trigger at its ExpiryTime, as CGRateS's
//! scheduler-driven check does, not at the account's next change.

use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, Utc};

use super::methods::State;

/// Account key (`tenant`, `account`).
type Key = (String, String);

/// The next expiry of each account that has one, and the same ordered by
/// time.
#[derive(Debug, Default)]
pub(crate) struct Expiries {
    by_key: HashMap<Key, DateTime<Utc>>,
    queue: BTreeSet<(DateTime<Utc>, Key)>,
}

impl Expiries {
    /// Records the account's next expiry (`None`: nothing to wait for).
    pub(crate) fn set(&mut self, tenant: &str, id: &str, at: Option<DateTime<Utc>>) {
        let key = (tenant.to_owned(), id.to_owned());
        if let Some(old) = self.by_key.remove(&key) {
            self.queue.remove(&(old, key.clone()));
        }
        if let Some(at) = at {
            self.by_key.insert(key.clone(), at);
            self.queue.insert((at, key));
        }
    }

    /// The earliest expiry, if any.
    pub(crate) fn next(&self) -> Option<DateTime<Utc>> {
        self.queue.first().map(|(at, _)| *at)
    }

    /// Takes out the accounts whose expiry is at or before `now`.
    pub(crate) fn take_due(&mut self, now: DateTime<Utc>) -> Vec<Key> {
        let mut out = Vec::new();
        while let Some((at, _)) = self.queue.first() {
            if *at > now {
                break;
            }
            if let Some((_, key)) = self.queue.pop_first() {
                self.by_key.remove(&key);
                out.push(key);
            }
        }
        out
    }

    /// Forgets everything (a rebuild follows).
    pub(crate) fn clear(&mut self) {
        self.by_key.clear();
        self.queue.clear();
    }
}

fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Records an account's next expiry and wakes the scheduler when it comes
/// before the time it sleeps to.
pub(crate) fn track(state: &State, tenant: &str, id: &str, at: Option<DateTime<Utc>>) {
    let mut e = lock(&state.expiries);
    let before = e.next();
    e.set(tenant, id, at);
    let earlier = match (e.next(), before) {
        (Some(n), Some(b)) => n < b,
        (Some(_), None) => true,
        _ => false,
    };
    drop(e);
    if earlier {
        state.wake.notify_one();
    }
}

/// Checks the triggers of the accounts whose watched balance expired by
/// `now` (the check recomputes their next expiry).
pub(crate) fn run_expired(state: &State, now: DateTime<Utc>) {
    let due = lock(&state.expiries).take_due(now);
    for (tenant, id) in due {
        match super::accounts::check_account(state, &tenant, &id, now) {
            Ok(()) | Err(rating::Error::AccountNotFound { .. }) => {}
            Err(e) => super::say(&format!(
                "serve: *balance_expired check of {tenant}:{id}: {e}"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn expiries_come_out_in_time_order_and_replace_per_account() {
        let mut e = Expiries::default();
        e.set("a", "1", Some(t("2030-01-02T00:00:00Z")));
        e.set("a", "2", Some(t("2030-01-01T00:00:00Z")));
        e.set("a", "1", Some(t("2030-01-03T00:00:00Z")));
        assert_eq!(e.next(), Some(t("2030-01-01T00:00:00Z")));
        assert_eq!(
            e.take_due(t("2030-01-02T12:00:00Z")),
            vec![("a".to_owned(), "2".to_owned())]
        );
        assert_eq!(e.next(), Some(t("2030-01-03T00:00:00Z")));
        e.set("a", "1", None);
        assert_eq!(e.next(), None);
    }
}
