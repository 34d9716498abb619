//! Where `accurate serve` keeps accounts and its own state (`[storage]`):
//! the embedded store in the data directory by default, Redis when
//! configured. Besides accounts the store keeps, as named blobs: the
//! loaded tariff plan's CSV files (so a restart without `--tariffplan`
//! rates and schedules as before).
//!
//! A restart restores: the accounts (the store), the plan (its blob), the
//! ActionPlan schedule (rebuilt from the plan's AccountActions; the
//! one-time `*asap` runs already ran at load, so they are dropped, not
//! run again), the shared-group membership (from the balances) and the
//! `*balance_expired` wake-ups.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

use anyhow::Context;
use chrono::{DateTime, Utc};
use rating::TariffStore;
use storage::MetaStore;

use super::methods::State;
use crate::config::StorageSection;
use crate::exit::Failure;

/// The meta blob holding the loaded plan: a JSON map file name -> text.
pub(crate) const PLAN_BLOB: &str = "serve.tariffplan";
/// The meta blob of ActionPlans attached by `SetAccount` (not in the
/// plan's AccountActions): a JSON list of `[tenant, account, plan]`.
pub(crate) const ATTACHED_BLOB: &str = "serve.attached-plans";

/// The opened store: accounts and the named blobs, one backend.
#[derive(Clone)]
pub(crate) struct Store {
    /// The accounts.
    pub accounts: Arc<dyn rating::AccountStore>,
    /// The server's other state.
    pub meta: Arc<dyn MetaStore + Send + Sync>,
    /// The Redis store when the accounts are shared with other
    /// processes (scheduled runs are claimed there).
    pub shared: Option<Arc<storage::RedisAccounts>>,
    /// Live sessions, so a restart resumes them (same backend).
    pub sessions: Arc<dyn sessions::SessionStore>,
    /// What it is, for the start line.
    pub describe: String,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe)
    }
}

impl Store {
    /// Opens the configured store: Redis when `[storage] redis` is set,
    /// else the embedded one in `data_dir` (created on first start).
    ///
    /// # Errors
    /// [`Failure::Storage`]: the directory is locked by another process,
    /// Redis is unreachable, a file cannot be read or is damaged.
    pub(crate) fn open(cfg: &StorageSection, data_dir: &Path) -> anyhow::Result<Store> {
        if let Some(url) = &cfg.redis {
            let r = storage::RedisAccounts::open(url, &cfg.redis_prefix)
                .map_err(|e| Failure::Storage(Box::new(e)))?;
            let r = Arc::new(r);
            return Ok(Store {
                accounts: r.clone(),
                meta: r.clone(),
                sessions: r.clone(),
                shared: Some(r),
                describe: format!("redis {url} prefix {}", cfg.redis_prefix),
            });
        }
        let e =
            storage::EmbeddedAccounts::open(data_dir).map_err(|e| Failure::Storage(Box::new(e)))?;
        let e = Arc::new(e);
        Ok(Store {
            accounts: e.clone(),
            meta: e.clone(),
            sessions: e,
            shared: None,
            describe: format!("embedded {}", data_dir.display()),
        })
    }

    /// A store in memory only (unit tests).
    #[cfg(test)]
    pub(crate) fn memory() -> Store {
        Store {
            accounts: Arc::new(rating::MemoryAccounts::default()),
            meta: Arc::new(MemoryMeta::default()),
            sessions: Arc::new(sessions::MemorySessions::new()),
            shared: None,
            describe: "memory".to_owned(),
        }
    }
}

/// Named blobs in memory (unit tests).
#[cfg(test)]
#[derive(Debug, Default)]
pub(crate) struct MemoryMeta(Mutex<BTreeMap<String, Vec<u8>>>);

#[cfg(test)]
impl MetaStore for MemoryMeta {
    fn put_meta(&self, name: &str, value: &[u8]) -> Result<(), storage::Error> {
        lock(&self.0).insert(name.to_owned(), value.to_vec());
        Ok(())
    }
    fn get_meta(&self, name: &str) -> Result<Option<Vec<u8>>, storage::Error> {
        Ok(lock(&self.0).get(name).cloned())
    }
    fn remove_meta(&self, name: &str) -> Result<bool, storage::Error> {
        Ok(lock(&self.0).remove(name).is_some())
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The handled CSV files of a plan folder, name -> text.
fn plan_files(dir: &Path) -> anyhow::Result<BTreeMap<String, String>> {
    let mut files = BTreeMap::new();
    for name in rating::HANDLED_FILES
        .iter()
        .chain(subsystems::HANDLED_FILES)
    {
        let path = dir.join(name);
        match std::fs::read(&path) {
            Ok(bytes) => {
                // The plan loaded, so its files are UTF-8; lossy only if
                // a file changed since.
                files.insert(
                    (*name).to_owned(),
                    String::from_utf8_lossy(&bytes).into_owned(),
                );
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(e).with_context(|| format!("reading {}", path.display()));
            }
        }
    }
    Ok(files)
}

/// Loads a plan folder, makes it the plan in force and saves its files in
/// the store (so a restart without `--tariffplan` has it). Returns the
/// load report.
///
/// # Errors
/// A bad plan, an unreadable folder, a store error.
pub(crate) fn load_plan_dir(state: &State, dir: &Path) -> anyhow::Result<rating::LoadReport> {
    let (plan, report) = crate::cost::load_tariff_plan(dir, &state.policy)?;
    let profiles = subsystems::Profiles::load_dir(dir)?;
    let files = plan_files(dir)?;
    let blob = serde_json::to_vec(&files).context("encoding the plan")?;
    state
        .meta
        .put_meta(PLAN_BLOB, &blob)
        .context("saving the tariff plan in the store")?;
    state.plan.replace(plan);
    super::subsys::filters::put_in_force(state, profiles)?;
    Ok(report)
}

/// The plan saved by the last load, if any.
///
/// # Errors
/// A store error, or a saved plan that no longer loads.
pub(crate) fn saved_plan(
    meta: &dyn MetaStore,
    policy: &rating::LoadPolicy,
) -> anyhow::Result<Option<(rating::TariffPlan, subsystems::Profiles)>> {
    let Some(blob) = meta
        .get_meta(PLAN_BLOB)
        .context("reading the saved tariff plan")?
    else {
        return Ok(None);
    };
    let files: BTreeMap<String, String> =
        serde_json::from_slice(&blob).context("the saved tariff plan is damaged")?;
    let pairs: Vec<(&Path, &str)> = files
        .iter()
        .map(|(n, t)| (Path::new(n.as_str()), t.as_str()))
        .collect();
    let options = rating::LoadOptions {
        loaded_at: crate::cost::OFFLINE_LOADED_AT,
    };
    let (plan, _) = rating::TariffPlan::from_csv_with(&pairs, &options, policy)
        .context("loading the saved tariff plan")?;
    let profiles =
        subsystems::Profiles::from_files(&pairs).context("loading the saved subsystem profiles")?;
    Ok(Some((plan, profiles)))
}

/// How long a claim of a scheduled run is kept (longer than any two
/// servers' clocks and wake-ups differ).
const CLAIM_TTL: std::time::Duration = std::time::Duration::from_secs(2 * 24 * 3600);

/// Whether this server runs a due ActionPlan run. With accounts shared in
/// Redis every server schedules the same recurring runs, at the same
/// moments: the first to claim a run (`SET NX`) runs it, the others skip
/// it. One-time (`*asap`) rows belong to the load that ran them.
pub(crate) fn claim_run(state: &State, data: &rating::AccountPlanData, d: &rating::DueRun) -> bool {
    let Some(redis) = &state.shared else {
        return true;
    };
    let recurring = data.action_plans.get(&*d.plan_id).is_some_and(|rows| {
        rows.iter()
            .any(|r| r.actions_id == d.actions_id && !r.timing.is_once())
    });
    if !recurring {
        return true;
    }
    let name = format!(
        "run:{}:{}:{}:{}:{}",
        d.tenant,
        d.account,
        d.plan_id,
        d.actions_id,
        d.at.timestamp()
    );
    match redis.claim_meta(&name, state.node_id.as_bytes(), CLAIM_TTL) {
        Ok(true) => true,
        Ok(false) => {
            super::say(&format!(
                "serve: action plan {} ({}) on {}:{} at {}: run by another server",
                d.plan_id, d.actions_id, d.tenant, d.account, d.at
            ));
            false
        }
        Err(e) => {
            // Not run rather than maybe run twice.
            super::say(&format!(
                "serve: action plan {} ({}) on {}:{}: not run, cannot claim it: {e}",
                d.plan_id, d.actions_id, d.tenant, d.account
            ));
            false
        }
    }
}

/// The meta blob of the moment the plan in force was loaded (RFC 3339):
/// its ActionPlan timings are anchored there, before and after a restart.
pub(crate) const LOADED_AT_BLOB: &str = "serve.plan-loaded-at";

/// `(tenant, account, plan, attached at)`; a row saved before the attach
/// time was kept has none.
type Attached = Vec<(String, String, String, Option<DateTime<Utc>>)>;

fn attached(meta: &dyn MetaStore) -> Result<Attached, storage::Error> {
    let rows: Vec<Vec<String>> = meta
        .get_meta(ATTACHED_BLOB)?
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    Ok(rows
        .into_iter()
        .filter_map(|r| {
            let mut it = r.into_iter();
            let (t, a, p) = (it.next()?, it.next()?, it.next()?);
            let at = it
                .next()
                .and_then(|s| DateTime::parse_from_rfc3339(&s).ok())
                .map(|d| d.with_timezone(&Utc));
            Some((t, a, p, at))
        })
        .collect())
}

fn save_attached(meta: &dyn MetaStore, list: &Attached) -> Result<(), storage::Error> {
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|(t, a, p, at)| {
            let mut r = vec![t.clone(), a.clone(), p.clone()];
            r.extend(at.map(|x| x.to_rfc3339()));
            r
        })
        .collect();
    // Serializing lists of strings cannot fail.
    let blob = serde_json::to_vec(&rows).unwrap_or_default();
    meta.put_meta(ATTACHED_BLOB, &blob)
}

/// Saves the moment the plan in force was loaded (its ActionPlans'
/// anchor).
///
/// # Errors
/// A store error.
pub(crate) fn save_loaded_at(state: &State, at: DateTime<Utc>) -> Result<(), storage::Error> {
    state
        .meta
        .put_meta(LOADED_AT_BLOB, at.to_rfc3339().as_bytes())
}

/// The saved load moment; the epoch when none was saved (a store from
/// before it was kept: its timings were anchored there).
fn loaded_at(meta: &dyn MetaStore) -> Result<DateTime<Utc>, storage::Error> {
    Ok(meta
        .get_meta(LOADED_AT_BLOB)?
        .and_then(|b| DateTime::parse_from_rfc3339(&String::from_utf8_lossy(&b)).ok())
        .map_or(DateTime::UNIX_EPOCH, |d| d.with_timezone(&Utc)))
}

/// Records ActionPlans attached to an account by `SetAccount` at `at`, so
/// a restart schedules them again with the same anchor (a plan attached
/// again keeps its first one).
///
/// # Errors
/// A store error.
pub(crate) fn attach_plans(
    state: &State,
    tenant: &str,
    account: &str,
    plans: &[String],
    at: DateTime<Utc>,
) -> Result<(), storage::Error> {
    // One read-modify-write at a time in this process.
    let _g = lock(&state.attached);
    let mut list = attached(state.meta.as_ref())?;
    for p in plans {
        if !list
            .iter()
            .any(|(t, a, x, _)| t == tenant && a == account && x == p)
        {
            list.push((tenant.to_owned(), account.to_owned(), p.clone(), Some(at)));
        }
    }
    save_attached(state.meta.as_ref(), &list)
}

/// Forgets the ActionPlans attached to a removed account.
///
/// # Errors
/// A store error.
pub(crate) fn detach_account(
    state: &State,
    tenant: &str,
    account: &str,
) -> Result<(), storage::Error> {
    let _g = lock(&state.attached);
    let mut list = attached(state.meta.as_ref())?;
    let before = list.len();
    list.retain(|(t, a, _, _)| !(t == tenant && a == account));
    if list.len() == before {
        return Ok(());
    }
    save_attached(state.meta.as_ref(), &list)
}

/// After a restart: the schedule from the restored plan's AccountActions
/// and the ActionPlans `SetAccount` attached, without the one-time (`*asap`) runs, which ran when the plan was
/// loaded; and the shared-group membership from the stored balances.
/// Returns the number of accounts seen.
///
/// # Errors
/// A store error.
pub(crate) fn restore(state: &State, now: DateTime<Utc>) -> Result<usize, rating::Error> {
    let plan = state.plan.current();
    let data = plan.account_data();
    // Anchored where they were before the restart: a recurring run keeps
    // its day and time (a missed one is not caught up, as CGRateS).
    let anchor = loaded_at(state.meta.as_ref())?;
    let mut schedule = rating::Schedule::from_plan(data, anchor, now);
    for (t, a, p, at) in attached(state.meta.as_ref())? {
        schedule.add(data, &t, &a, &p, at.unwrap_or(anchor), now);
    }
    // Due at `now` are exactly the one-time rows (recurring ones start
    // after `now`): they ran at load.
    drop(schedule.due(now));
    *lock(&state.schedule) = schedule;
    let n = rebuild_index(state)?;
    state.wake.notify_one();
    Ok(n)
}

/// What the server derives from the stored accounts, rebuilt after a
/// load or a restart: the shared-group membership (from the balances of
/// every tenant's accounts) and when each account's `*balance_expired`
/// triggers are due (an expiry passed while the server was stopped is due
/// at once). Returns the number of accounts seen.
///
/// # Errors
/// A store error.
pub(crate) fn rebuild_index(state: &State) -> Result<usize, rating::Error> {
    let plan = state.plan.current();
    let triggers = &plan.account_data().triggers;
    let mut members: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut expiries = Vec::new();
    let mut n = 0;
    for t in state.accounts.tenants()? {
        for a in state.accounts.list(&t)? {
            n += 1;
            for b in a.balances.values().flatten() {
                for g in &b.shared_groups {
                    members
                        .entry(g.clone())
                        .or_default()
                        .insert(format!("{}:{}", a.tenant, a.id));
                }
            }
            if let Some(at) = rating::next_balance_expiry(&a, triggers, DateTime::<Utc>::MIN_UTC) {
                expiries.push((a.tenant.clone(), a.id.clone(), at));
            }
        }
    }
    *lock(&state.members) = members;
    let mut e = lock(&state.expiries);
    e.clear();
    for (t, a, at) in expiries {
        e.set(&t, &a, Some(at));
    }
    drop(e);
    state.wake.notify_one();
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    /// A server's state on `store` with a plan whose account 1 has a
    /// `*monthly` ActionPlan, loaded as the server loads plans (anchored
    /// at the epoch for rating).
    fn state(store: &Store) -> State {
        let files: [(&Path, &str); 8] = [
            (Path::new("Destinations.csv"), "DST_A,1\n"),
            (Path::new("Rates.csv"), "RT_A,0,0.1,60s,60s,0s\n"),
            (
                Path::new("DestinationRates.csv"),
                "DR_A,DST_A,RT_A,*up,4,0,\n",
            ),
            (Path::new("RatingPlans.csv"), "RP_A,DR_A,*any,10\n"),
            (
                Path::new("RatingProfiles.csv"),
                "t.test,call,*any,2024-01-01T00:00:00Z,RP_A,\n",
            ),
            (
                Path::new("Actions.csv"),
                "FEE,*debit,,,main,*monetary,,*any,,,*unlimited,,1,10,,,10\n",
            ),
            (Path::new("ActionPlans.csv"), "AP,FEE,*monthly,10\n"),
            (Path::new("AccountActions.csv"), "t.test,1,AP,,,\n"),
        ];
        let options = rating::LoadOptions {
            loaded_at: crate::cost::OFFLINE_LOADED_AT,
        };
        let (plan, _) =
            rating::TariffPlan::from_csv_with(&files, &options, &rating::LoadPolicy::default())
                .unwrap();
        State::new(
            rating::SharedTariffPlan::new(plan),
            rating::RoundingMode::Exact,
            rating::LoadPolicy::default(),
            None,
            "n".into(),
            store.clone(),
            super::super::cdrs::Cdrs::unavailable(),
        )
    }

    fn next(state: &State) -> Option<DateTime<Utc>> {
        lock(&state.schedule).next_wakeup()
    }

    /// ActionPlans are anchored at the load (CGRateS), and a restart keeps
    /// that anchor: it neither catches up a run missed while stopped nor
    /// skips the next one; a plan attached by SetAccount keeps the attach
    /// moment as its anchor.
    #[test]
    fn a_restart_keeps_the_action_plan_anchor_and_skips_missed_runs() {
        let store = Store::memory();
        let first = state(&store);
        let loaded = t("2025-01-15T10:20:30Z");
        super::super::accounts::load_accounts(&first, loaded).unwrap();
        assert_eq!(next(&first), Some(t("2025-02-15T10:20:30Z")));
        // Stopped over the February run: March's is next.
        let after = state(&store);
        restore(&after, t("2025-02-16T00:00:00Z")).unwrap();
        assert_eq!(next(&after), Some(t("2025-03-15T10:20:30Z")));
        // Back just before it: February's still comes.
        let before = state(&store);
        restore(&before, t("2025-02-15T10:20:29Z")).unwrap();
        assert_eq!(next(&before), Some(t("2025-02-15T10:20:30Z")));
        // An account attached on the 20th runs on the 20th.
        let s = state(&store);
        store.accounts.remove("t.test", "1").unwrap();
        detach_account(&s, "t.test", "1").unwrap();
        attach_plans(&s, "t.test", "2", &["AP".into()], t("2025-01-20T08:00:00Z")).unwrap();
        restore(&s, t("2025-02-16T00:00:00Z")).unwrap();
        let mut sched = lock(&s.schedule).clone();
        let runs = sched.due(t("2025-03-31T00:00:00Z"));
        let for_2: Vec<_> = runs
            .iter()
            .filter(|r| &*r.account == "2")
            .map(|r| r.at)
            .collect();
        assert_eq!(for_2, [t("2025-02-20T08:00:00Z")]);
    }
}
