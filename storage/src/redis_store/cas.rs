//! The read-modify-write path of [`RedisAccounts`]: an in-process lock and
//! cache per account key, and a compare-and-set Lua script.
//!
//! An update locks the keys' slots (sorted, so two updates never wait on
//! each other in a cycle), runs the update on the accounts as this process
//! last saw them in Redis, then runs [`CAS_SCRIPT`]: it writes the new
//! JSON only if every key still holds, byte for byte, the JSON the update
//! started from, and otherwise answers what the keys hold now, on which the
//! update runs again. With a warm cache and no other writer an update is
//! one round trip; a key this process has not seen yet, or that another
//! process changed, costs one more (the `MGET`, or the script's answer).
//!
//! Comparing the whole JSON (not a version number) keeps the key layout
//! and stays safe alongside any other writer of the keys: whatever changed
//! an account since it was read, its JSON differs, and the update is run
//! on the new state. The same JSON back again (A, B, then A) is the same
//! account, so an update computed from it is still right.
//!
//! A refusal (the update's error) computed from the cache is checked the
//! same way (the script with nothing to write), so it is never answered
//! from a state that Redis no longer holds.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use rating::Account;
use redis::{Connection, ErrorKind, RedisError, Value};

use super::{Failure, MAX_ATTEMPTS, RedisAccounts, backoff, not_found, parse, to_json};
use crate::Error;

/// KEYS: the accounts; ARGV: the JSON each is expected to hold, then the
/// JSON to write to each (empty: leave it). Answers 1 when written, else
/// the JSON every key holds now (nil for a key that does not exist).
pub(super) const CAS_SCRIPT: &str = r"
local n = #KEYS
for i = 1, n do
  if redis.call('GET', KEYS[i]) ~= ARGV[i] then
    local now = {}
    for j = 1, n do now[j] = redis.call('GET', KEYS[j]) end
    return now
  end
end
for i = 1, n do
  local v = ARGV[n + i]
  if v ~= '' then redis.call('SET', KEYS[i], v) end
end
return 1
";

/// Slots kept before the idle ones are dropped (each holds an account and
/// its JSON, a few KiB at most).
const MAX_SLOTS: usize = 10_000;

/// An account as this process last saw it in Redis: the stored JSON and
/// the account it stands for.
struct Known {
    json: String,
    account: Account,
}

/// One account key's lock, and what is known of it.
#[derive(Default)]
pub(super) struct Slot {
    known: Option<Known>,
}

/// The slots by Redis key.
#[derive(Default)]
pub(super) struct Slots(Mutex<HashMap<String, Arc<Mutex<Slot>>>>);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Slots {
    fn get(&self, key: &str) -> Arc<Mutex<Slot>> {
        let mut all = lock(&self.0);
        if let Some(s) = all.get(key) {
            return Arc::clone(s);
        }
        if all.len() >= MAX_SLOTS {
            // Only the map holds an idle slot: dropping it loses a cached
            // account, never a lock someone waits on.
            all.retain(|_, s| Arc::strong_count(s) > 1);
        }
        let s = Arc::new(Mutex::new(Slot::default()));
        all.insert(key.to_owned(), Arc::clone(&s));
        s
    }
}

/// What the script answered.
enum Cas {
    Written,
    /// What each key holds now.
    Conflict(Vec<Option<String>>),
}

fn unexpected(what: &'static str, v: &Value) -> Failure {
    Failure::Backend(Error::Redis(RedisError::from((
        ErrorKind::UnexpectedReturnType,
        what,
        format!("{v:?}"),
    ))))
}

fn cas_reply(v: &Value, n: usize) -> Result<Cas, Failure> {
    match v {
        Value::Int(1) => Ok(Cas::Written),
        Value::Array(now) if now.len() == n => now
            .iter()
            .map(|x| match x {
                Value::Nil => Ok(None),
                Value::BulkString(b) => String::from_utf8(b.clone())
                    .map(Some)
                    .map_err(|_| unexpected("account JSON is not UTF-8", x)),
                x => Err(unexpected("compare-and-set answer", x)),
            })
            .collect::<Result<_, _>>()
            .map(Cas::Conflict),
        v => Err(unexpected("compare-and-set answer", v)),
    }
}

impl RedisAccounts {
    /// Runs [`CAS_SCRIPT`] (by its SHA1; loaded again if Redis lost it).
    fn cas(
        &self,
        con: &mut Connection,
        keys: &[String],
        expected: &[&str],
        new: &[Option<String>],
    ) -> Result<Cas, Failure> {
        let mut cmd = redis::cmd("EVALSHA");
        cmd.arg(self.cas_sha())
            .arg(keys.len())
            .arg(keys)
            .arg(expected);
        for n in new {
            cmd.arg(n.as_deref().unwrap_or(""));
        }
        let v: Value = match cmd.query(con) {
            Err(e) if e.code() == Some("NOSCRIPT") => {
                Self::load_script(con)?;
                // The command names the old SHA1, which is the new one:
                // the script's text has not changed.
                cmd.query(con)?
            }
            r => r?,
        };
        cas_reply(&v, keys.len())
    }

    /// The optimistic transaction over `keys` (sorted, distinct, all
    /// existing): `f` gets their accounts and returns the new states to
    /// write (or refuses). See the module documentation.
    pub(super) fn transact(
        &self,
        keys: &[(&str, &str)],
        f: &mut dyn FnMut(Vec<Account>) -> Result<Vec<Account>, rating::Error>,
    ) -> Result<(), Failure> {
        let rkeys: Vec<String> = keys.iter().map(|(t, a)| self.acct_key(t, a)).collect();
        let slots: Vec<_> = rkeys.iter().map(|k| self.slots.get(k)).collect();
        // In key order (the keys are sorted).
        let mut held: Vec<MutexGuard<'_, Slot>> = slots.iter().map(|s| lock(s)).collect();
        self.with(|con| {
            // Whether the known states were all read together just now: a
            // refusal on them needs no check, as with a plain read.
            let mut fresh = false;
            for attempt in 0..MAX_ATTEMPTS {
                if held.iter().any(|s| s.known.is_none()) {
                    let raw: Vec<Option<String>> = redis::cmd("MGET").arg(&rkeys).query(con)?;
                    learn(&mut held, &rkeys, keys, raw)?;
                    fresh = true;
                }
                // Every key is known here (`learn` succeeded).
                let before: Vec<&Known> = held.iter().filter_map(|s| s.known.as_ref()).collect();
                if before.len() != held.len() {
                    return Err(unexpected("account state", &Value::Nil));
                }
                let outcome = match f(before.iter().map(|k| k.account.clone()).collect()) {
                    Err(e) if fresh => return Err(Failure::Refused(e)),
                    o => o,
                };
                let new: Vec<Option<String>> = match &outcome {
                    Err(_) => vec![None; before.len()],
                    Ok(new) => {
                        let mut out = Vec::with_capacity(new.len());
                        for (n, b) in new.iter().zip(&before) {
                            out.push(if *n == b.account {
                                None
                            } else {
                                Some(to_json(n)?)
                            });
                        }
                        out
                    }
                };
                if fresh && outcome.is_ok() && new.iter().all(Option::is_none) {
                    return Ok(());
                }
                let expected: Vec<&str> = before.iter().map(|k| k.json.as_str()).collect();
                match self.cas(con, &rkeys, &expected, &new)? {
                    Cas::Written => {
                        let accounts = outcome.map_err(Failure::Refused)?;
                        for ((s, a), json) in held.iter_mut().zip(accounts).zip(new) {
                            if let Some(json) = json {
                                s.known = Some(Known { json, account: a });
                            }
                        }
                        return Ok(());
                    }
                    Cas::Conflict(now) => {
                        learn(&mut held, &rkeys, keys, now)?;
                        fresh = true;
                        backoff(attempt);
                    }
                }
            }
            Err(Failure::Backend(Error::Contention {
                key: rkeys.first().cloned().unwrap_or_default(),
                attempts: MAX_ATTEMPTS,
            }))
        })
    }
}

/// Records what the keys hold (`raw`, in key order); a key that does not
/// exist is [`rating::Error::AccountNotFound`].
fn learn(
    held: &mut [MutexGuard<'_, Slot>],
    rkeys: &[String],
    keys: &[(&str, &str)],
    raw: Vec<Option<String>>,
) -> Result<(), Failure> {
    let mut missing = None;
    for (((s, r), k), (t, a)) in held.iter_mut().zip(raw).zip(rkeys).zip(keys) {
        match r {
            None => {
                s.known = None;
                missing.get_or_insert((*t, *a));
            }
            Some(json) => {
                if s.known.as_ref().is_none_or(|k| k.json != json) {
                    let account = parse(k, &json)?;
                    s.known = Some(Known { json, account });
                }
            }
        }
    }
    match missing {
        Some((t, a)) => Err(not_found(t, a)),
        None => Ok(()),
    }
}
