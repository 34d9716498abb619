//! [`RedisAccounts`]: accounts shared by several AccuRate processes.
//!
//! Keys (under a configurable prefix): `{prefix}acct:{tenant}:{id}` holds
//! the account's JSON (the CGRateS shape of `rating`'s serde impls, exact
//! decimals as strings), `{prefix}idx:{tenant}` the set of the tenant's
//! account IDs (for `list`), `{prefix}tenants` the set of tenants that
//! ever held an account (for `tenants`, which leaves out those whose ID
//! set is empty now), `{prefix}meta:{name}` the [`MetaStore`] values, the hash `{prefix}sessions` the live sessions
//! ([`sessions::SessionStore`]: field = session key, value = its bytes). How durable
//! a write is depends on the server's persistence (`appendonly yes` with
//! `appendfsync always` for nothing lost on a crash of Redis itself).
//!
//! Every read-modify-write is a compare-and-set ([`cas`]): the update runs
//! in this process on the accounts as last seen in Redis (cached per key,
//! under an in-process lock per key), then a Lua script writes the result
//! only if the keys still hold the JSON it started from, and otherwise
//! answers their new state, on which the update runs again. An account is
//! never written from a stale read, whichever process wrote it. Chosen over
//! a lock key (`SET NX PX` + compare-and-delete) because nothing can be left
//! locked by a process that dies, and no lease can expire under a slow
//! writer; over `WATCH`/`MULTI`/`EXEC` because it takes one round trip, not
//! three. The price is that the update closure may run more than once
//! under contention (the trait's `FnMut` allows it).

mod cas;

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use rating::{Account, AccountStore};
use redis::{Commands, Connection};

use crate::{Error, MetaStore};

/// Attempts of one transaction before giving up with
/// [`Error::Contention`]: each conflict means another writer succeeded,
/// so this bounds only pathological starvation.
const MAX_ATTEMPTS: u32 = 10_000;

/// Accounts in Redis (see the module documentation).
pub struct RedisAccounts {
    client: redis::Client,
    url: String,
    prefix: String,
    /// Idle connections; a call takes one (or opens one) and gives it back
    /// unless a command on it failed.
    pool: Mutex<Vec<Connection>>,
    /// The SHA1 of [`cas::CAS_SCRIPT`], as `SCRIPT LOAD` answered it.
    cas_sha: String,
    /// Per account key: the in-process lock and the last state seen.
    slots: cas::Slots,
}

impl std::fmt::Debug for RedisAccounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisAccounts")
            .field("url", &self.url)
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

enum Failure {
    /// The update (or a missing account) refused: the connection is clean.
    Refused(rating::Error),
    /// Redis failed: the connection is dropped.
    Backend(Error),
}

impl From<redis::RedisError> for Failure {
    fn from(e: redis::RedisError) -> Self {
        Failure::Backend(Error::Redis(e))
    }
}

impl From<Failure> for rating::Error {
    fn from(f: Failure) -> Self {
        match f {
            Failure::Refused(e) => e,
            Failure::Backend(e) => e.into(),
        }
    }
}

impl From<Failure> for Error {
    fn from(f: Failure) -> Self {
        match f {
            Failure::Refused(e) => Error::Failed(e.to_string()),
            Failure::Backend(e) => e,
        }
    }
}

fn parse(key: &str, json: &str) -> Result<Account, Failure> {
    serde_json::from_str(json).map_err(|source| {
        Failure::Backend(Error::Json {
            key: key.to_owned(),
            source,
        })
    })
}

fn to_json(a: &Account) -> Result<String, Failure> {
    serde_json::to_string(a).map_err(|source| {
        Failure::Backend(Error::Json {
            key: a.key(),
            source,
        })
    })
}

fn not_found(tenant: &str, id: &str) -> Failure {
    Failure::Refused(rating::Error::AccountNotFound {
        account: format!("{tenant}:{id}"),
    })
}

/// A pause before retrying a lost transaction, growing with the attempts
/// and spread so that the losers do not collide again in step.
fn backoff(attempt: u32) {
    if attempt < 4 {
        std::thread::yield_now();
        return;
    }
    use std::hash::{BuildHasher, RandomState};
    let spread = RandomState::new().hash_one(attempt) % 1000;
    let cap = 50u64 << attempt.min(6);
    std::thread::sleep(Duration::from_micros(spread % cap));
}

impl RedisAccounts {
    /// Connects to `url` (`redis://127.0.0.1:6379/0`); every key is put
    /// under `prefix` (e.g. `accurate:`).
    ///
    /// # Errors
    /// [`Error::RedisConnect`] when Redis cannot be reached.
    pub fn open(url: &str, prefix: &str) -> Result<Self, Error> {
        let connect = |source| Error::RedisConnect {
            url: url.to_owned(),
            source,
        };
        let client = redis::Client::open(url).map_err(connect)?;
        let mut con = client
            .get_connection_with_timeout(Duration::from_secs(5))
            .map_err(connect)?;
        redis::cmd("PING").exec(&mut con).map_err(connect)?;
        let cas_sha = Self::script_load(&mut con)?;
        Ok(RedisAccounts {
            client,
            url: url.to_owned(),
            prefix: prefix.to_owned(),
            pool: Mutex::new(vec![con]),
            cas_sha,
            slots: cas::Slots::default(),
        })
    }

    /// Loads [`cas::CAS_SCRIPT`] into Redis's script cache; its SHA1.
    fn script_load(con: &mut Connection) -> Result<String, Error> {
        Ok(redis::cmd("SCRIPT")
            .arg("LOAD")
            .arg(cas::CAS_SCRIPT)
            .query(con)?)
    }

    fn cas_sha(&self) -> &str {
        &self.cas_sha
    }

    /// Loads the script again (Redis restarted, or `SCRIPT FLUSH`): the
    /// same text, so the same SHA1.
    fn load_script(con: &mut Connection) -> Result<(), Failure> {
        Self::script_load(con).map_err(Failure::Backend)?;
        Ok(())
    }

    /// The key prefix.
    #[must_use]
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    fn acct_key(&self, tenant: &str, id: &str) -> String {
        format!("{}acct:{tenant}:{id}", self.prefix)
    }

    fn idx_key(&self, tenant: &str) -> String {
        format!("{}idx:{tenant}", self.prefix)
    }

    fn sessions_key(&self) -> String {
        format!("{}sessions", self.prefix)
    }

    fn tenants_key(&self) -> String {
        format!("{}tenants", self.prefix)
    }

    fn meta_key(&self, name: &str) -> String {
        format!("{}meta:{name}", self.prefix)
    }

    /// Sets the named value unless it exists (`SET NX`), expiring after
    /// `ttl`; whether this call set it. Of several processes claiming one
    /// name, exactly one gets `true`: the servers sharing Redis use it so
    /// that one of them, not each, runs a scheduled ActionPlan run.
    ///
    /// # Errors
    /// A Redis error.
    pub fn claim_meta(&self, name: &str, value: &[u8], ttl: Duration) -> Result<bool, Error> {
        let key = self.meta_key(name);
        let ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
        Ok(self.with(|con| {
            let set: Option<String> = redis::cmd("SET")
                .arg(&key)
                .arg(value)
                .arg("NX")
                .arg("PX")
                .arg(ms)
                .query(con)?;
            Ok(set.is_some())
        })?)
    }

    /// Runs `f` on a pooled connection.
    fn with<T>(&self, f: impl FnOnce(&mut Connection) -> Result<T, Failure>) -> Result<T, Failure> {
        let pooled = self
            .pool
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        let mut con = match pooled {
            Some(c) => c,
            None => self.client.get_connection().map_err(|source| {
                Failure::Backend(Error::RedisConnect {
                    url: self.url.clone(),
                    source,
                })
            })?,
        };
        let r = f(&mut con);
        if !matches!(r, Err(Failure::Backend(_))) {
            self.pool
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(con);
        }
        r
    }

    /// Deletes every key under the prefix (tests, and `accurate` tools
    /// that reset a store); how many.
    ///
    /// # Errors
    /// A Redis error.
    pub fn clear(&self) -> Result<usize, Error> {
        let pattern = format!("{}*", self.prefix);
        Ok(self.with(|con| {
            // SCAN, not KEYS: it does not block a shared Redis.
            let keys = con
                .scan_match::<_, String>(&pattern)?
                .collect::<Result<Vec<String>, _>>()?;
            if !keys.is_empty() {
                redis::cmd("DEL").arg(&keys).exec(con)?;
            }
            Ok(keys.len())
        })?)
    }
}

impl AccountStore for RedisAccounts {
    fn get(&self, tenant: &str, id: &str) -> Result<Option<Account>, rating::Error> {
        let key = self.acct_key(tenant, id);
        Ok(self.with(|con| {
            let raw: Option<String> = redis::cmd("GET").arg(&key).query(con)?;
            raw.map(|j| parse(&key, &j)).transpose()
        })?)
    }

    fn set(&self, account: Account) -> Result<(), rating::Error> {
        let key = self.acct_key(&account.tenant, &account.id);
        let idx = self.idx_key(&account.tenant);
        let json = to_json(&account)?;
        Ok(self.with(|con| {
            redis::pipe()
                .atomic()
                .set(&key, &json)
                .ignore()
                .sadd(&idx, &account.id)
                .ignore()
                .sadd(self.tenants_key(), &account.tenant)
                .ignore()
                .exec(con)?;
            Ok(())
        })?)
    }

    fn remove(&self, tenant: &str, id: &str) -> Result<bool, rating::Error> {
        let key = self.acct_key(tenant, id);
        let idx = self.idx_key(tenant);
        Ok(self.with(|con| {
            let (n,): (u32,) = redis::pipe()
                .atomic()
                .del(&key)
                .srem(&idx, id)
                .ignore()
                .query(con)?;
            Ok(n > 0)
        })?)
    }

    fn list(&self, tenant: &str) -> Result<Vec<Account>, rating::Error> {
        let idx = self.idx_key(tenant);
        Ok(self.with(|con| {
            let mut ids: Vec<String> = redis::cmd("SMEMBERS").arg(&idx).query(con)?;
            ids.sort();
            if ids.is_empty() {
                return Ok(Vec::new());
            }
            let keys: Vec<String> = ids.iter().map(|i| self.acct_key(tenant, i)).collect();
            let raw: Vec<Option<String>> = redis::cmd("MGET").arg(&keys).query(con)?;
            // An ID whose account is gone was removed meanwhile.
            keys.iter()
                .zip(raw)
                .filter_map(|(k, r)| r.map(|j| parse(k, &j)))
                .collect()
        })?)
    }

    fn tenants(&self) -> Result<Vec<String>, rating::Error> {
        Ok(self.with(|con| {
            let mut all: Vec<String> = redis::cmd("SMEMBERS").arg(self.tenants_key()).query(con)?;
            all.sort();
            if all.is_empty() {
                return Ok(all);
            }
            // A tenant whose accounts were all removed stays in the set
            // (removing it would race with a concurrent `set`): skip it.
            let mut pipe = redis::pipe();
            for t in &all {
                pipe.scard(self.idx_key(t));
            }
            let counts: Vec<u64> = pipe.query(con)?;
            Ok(all
                .into_iter()
                .zip(counts)
                .filter(|(_, n)| *n > 0)
                .map(|(t, _)| t)
                .collect())
        })?)
    }

    fn update(
        &self,
        tenant: &str,
        id: &str,
        f: &mut dyn FnMut(&mut Account) -> Result<(), rating::Error>,
    ) -> Result<(), rating::Error> {
        Ok(self.transact(&[(tenant, id)], &mut |mut accts| {
            for a in &mut accts {
                f(a)?;
            }
            Ok(accts)
        })?)
    }

    fn update_many(
        &self,
        keys: &[(String, String)],
        f: &mut dyn FnMut(&mut [Account]) -> Result<(), rating::Error>,
    ) -> Result<(), rating::Error> {
        let mut sorted: Vec<(&str, &str)> =
            keys.iter().map(|(t, a)| (t.as_str(), a.as_str())).collect();
        sorted.sort_unstable();
        sorted.dedup();
        let pos = |t: &str, a: &str| sorted.iter().position(|s| *s == (t, a));
        Ok(self.transact(&sorted, &mut |accts| {
            let mut copies = Vec::with_capacity(keys.len());
            for (t, a) in keys {
                let i = pos(t, a).ok_or_else(|| rating::Error::Store("lost key".into()))?;
                copies.push(accts[i].clone());
            }
            f(&mut copies)?;
            // A key given twice: its last copy wins.
            let mut out = accts;
            for ((t, a), c) in keys.iter().zip(copies) {
                if let Some(i) = pos(t, a) {
                    out[i] = c;
                }
            }
            Ok(out)
        })?)
    }
}

impl MetaStore for RedisAccounts {
    fn put_meta(&self, name: &str, value: &[u8]) -> Result<(), Error> {
        let key = self.meta_key(name);
        Ok(self.with(|con| {
            redis::cmd("SET").arg(&key).arg(value).exec(con)?;
            Ok(())
        })?)
    }

    fn get_meta(&self, name: &str) -> Result<Option<Vec<u8>>, Error> {
        let key = self.meta_key(name);
        Ok(self.with(|con| Ok(redis::cmd("GET").arg(&key).query(con)?))?)
    }

    fn remove_meta(&self, name: &str) -> Result<bool, Error> {
        let key = self.meta_key(name);
        Ok(self.with(|con| {
            let n: u32 = redis::cmd("DEL").arg(&key).query(con)?;
            Ok(n > 0)
        })?)
    }
}

impl sessions::SessionStore for RedisAccounts {
    fn put(&self, key: &str, value: &[u8]) -> Result<(), sessions::Error> {
        let h = self.sessions_key();
        Ok(self
            .with(|con| {
                redis::cmd("HSET").arg(&h).arg(key).arg(value).exec(con)?;
                Ok(())
            })
            .map_err(Error::from)?)
    }

    fn remove(&self, key: &str) -> Result<bool, sessions::Error> {
        let h = self.sessions_key();
        Ok(self
            .with(|con| {
                let n: u32 = redis::cmd("HDEL").arg(&h).arg(key).query(con)?;
                Ok(n > 0)
            })
            .map_err(Error::from)?)
    }

    /// One `MULTI`/`EXEC` round trip: an `HSET` of the puts, an `HDEL` of
    /// the removes.
    fn apply_batch(&self, puts: &[(&str, &[u8])], removes: &[&str]) -> Result<(), sessions::Error> {
        if puts.is_empty() && removes.is_empty() {
            return Ok(());
        }
        let h = self.sessions_key();
        Ok(self
            .with(|con| {
                let mut pipe = redis::pipe();
                pipe.atomic();
                if !puts.is_empty() {
                    let set = pipe.cmd("HSET").arg(&h);
                    for (k, v) in puts {
                        set.arg(*k).arg(*v);
                    }
                    set.ignore();
                }
                if !removes.is_empty() {
                    pipe.cmd("HDEL").arg(&h).arg(removes).ignore();
                }
                pipe.exec(con)?;
                Ok(())
            })
            .map_err(Error::from)?)
    }

    fn list(&self) -> Result<Vec<(String, Vec<u8>)>, sessions::Error> {
        let h = self.sessions_key();
        let mut all = self
            .with(|con| {
                // HSCAN, not HGETALL: many sessions do not block a shared
                // Redis in one reply.
                let it = con.hscan::<_, (String, Vec<u8>)>(&h)?;
                Ok(it.collect::<Result<Vec<_>, _>>()?)
            })
            .map_err(Error::from)?;
        all.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        // HSCAN may return a field twice (the hash rehashed meanwhile).
        all.dedup_by(|a, b| a.0 == b.0);
        Ok(all)
    }
}
