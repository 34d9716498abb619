//! [`EmbeddedAccounts`]: accounts in memory, every change journaled and
//! `fsync`ed before it is acknowledged, in a data directory:
//!
//! - `LOCK`: `flock`ed while a process has the directory open.
//! - `snapshot`: every account and meta value, as records; replaced
//!   atomically (write `snapshot.tmp`, fsync, rename, fsync the directory).
//! - `journal`: the changes since the snapshot, one record each.
//!
//! A record's payload is a kind byte and its body: `P` + a JSON array of
//! accounts (their new state; one record per `update_many`, so a shared
//! debit is replayed whole or not at all), `D` + JSON `[tenant, id]`, `M` +
//! name length (`u32` LE) + name + value, `m` + name (meta removed), `S`
//! and `s` the same for live sessions ([`sessions::SessionStore`]).
//! Replaying the journal over the snapshot it was compacted into gives the
//! same state (each record is a whole new state), so a crash between the
//! snapshot's rename and the journal's truncation loses nothing.

use std::collections::{BTreeMap, HashMap};
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use nix::fcntl::{Flock, FlockArg};
use rating::{Account, AccountStore};

use crate::journal::{self, Journal};
use crate::{Error, MetaStore};

/// The lock file's name in the data directory.
pub(crate) const LOCK_FILE: &str = "LOCK";
const SNAPSHOT: &str = "snapshot";
const SNAPSHOT_TMP: &str = "snapshot.tmp";
const JOURNAL: &str = "journal";

/// Tuning of [`EmbeddedAccounts`].
#[derive(Debug, Clone, Copy)]
pub struct EmbeddedOptions {
    /// Compact (write a snapshot, empty the journal) once the journal
    /// grows past this many bytes.
    pub compact_after_bytes: u64,
}

impl Default for EmbeddedOptions {
    fn default() -> Self {
        EmbeddedOptions {
            compact_after_bytes: 64 << 20,
        }
    }
}

/// What opening the data directory found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recovery {
    /// Records read from the snapshot.
    pub snapshot_records: usize,
    /// Records replayed from the journal.
    pub journal_records: usize,
    /// Bytes of a torn journal tail cut off (a change that crashed before
    /// it was acknowledged).
    pub torn_bytes: u64,
    /// Why the tail was torn.
    pub torn_reason: Option<String>,
}

type Key = (String, String);

#[derive(Debug)]
struct Slot {
    account: Account,
    /// Removed from the map: an update that found the slot before must
    /// not write it back.
    removed: bool,
    /// The journal record holding this state; readers wait until it is
    /// durable so that nothing unacknowledged is ever shown.
    lsn: u64,
}

type SlotRef = Arc<Mutex<Slot>>;

/// The embedded account store (see the module documentation).
pub struct EmbeddedAccounts {
    dir: PathBuf,
    opts: EmbeddedOptions,
    accounts: RwLock<HashMap<Key, SlotRef>>,
    meta: RwLock<BTreeMap<String, Vec<u8>>>,
    /// Live sessions ([`sessions::SessionStore`]).
    sessions: RwLock<BTreeMap<String, Vec<u8>>>,
    /// Writers hold it shared; compaction holds it exclusively, so that the
    /// snapshot and the journal it replaces agree.
    checkpoint: RwLock<()>,
    compacting: AtomicBool,
    journal: Journal,
    recovery: Recovery,
    /// Held while open; released by the kernel even on `kill -9`.
    _lock: Flock<File>,
}

impl std::fmt::Debug for EmbeddedAccounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedAccounts")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_owned(),
        source,
    }
}

fn lock_slot(s: &SlotRef) -> std::sync::MutexGuard<'_, Slot> {
    s.lock().unwrap_or_else(PoisonError::into_inner)
}

fn not_found(tenant: &str, id: &str) -> rating::Error {
    rating::Error::AccountNotFound {
        account: format!("{tenant}:{id}"),
    }
}

/// A change, as journaled.
enum Op {
    Put(Vec<Account>),
    Del(String, String),
    Meta(String, Vec<u8>),
    MetaDel(String),
    Session(String, Vec<u8>),
    SessionDel(String),
}

impl Op {
    fn encode(&self) -> Result<Vec<u8>, Error> {
        Ok(match self {
            Op::Put(accts) => [b"P".as_slice(), &to_json(accts)?].concat(),
            Op::Del(t, a) => [b"D".as_slice(), &to_json(&[t, a])?].concat(),
            Op::Meta(name, value) => named(b'M', name, value)?,
            Op::MetaDel(name) => [b"m".as_slice(), name.as_bytes()].concat(),
            Op::Session(key, value) => named(b'S', key, value)?,
            Op::SessionDel(key) => [b"s".as_slice(), key.as_bytes()].concat(),
        })
    }

    fn decode(p: &[u8]) -> Result<Op, String> {
        let (&kind, body) = p.split_first().ok_or("empty record")?;
        let name = |b: &[u8]| String::from_utf8(b.to_vec()).map_err(|e| e.to_string());
        match kind {
            b'P' => serde_json::from_slice(body)
                .map(Op::Put)
                .map_err(|e| e.to_string()),
            b'D' => serde_json::from_slice::<(String, String)>(body)
                .map(|(t, a)| Op::Del(t, a))
                .map_err(|e| e.to_string()),
            b'M' | b'S' => {
                let n: [u8; 4] = body
                    .get(..4)
                    .and_then(|b| b.try_into().ok())
                    .ok_or("short named record")?;
                let n = u32::from_le_bytes(n) as usize;
                let nm = name(body.get(4..4 + n).ok_or("short record name")?)?;
                let value = body[4 + n..].to_vec();
                Ok(if kind == b'M' {
                    Op::Meta(nm, value)
                } else {
                    Op::Session(nm, value)
                })
            }
            b'm' => Ok(Op::MetaDel(name(body)?)),
            b's' => Ok(Op::SessionDel(name(body)?)),
            k => Err(format!("unknown record kind {k:#04x}")),
        }
    }
}

/// `kind`, name length (`u32` LE), name, value.
fn named(kind: u8, name: &str, value: &[u8]) -> Result<Vec<u8>, Error> {
    let n = u32::try_from(name.len()).map_err(|_| Error::Failed("name too long".into()))?;
    Ok([&[kind][..], &n.to_le_bytes(), name.as_bytes(), value].concat())
}

fn to_json<T: serde::Serialize + ?Sized>(v: &T) -> Result<Vec<u8>, Error> {
    serde_json::to_vec(v).map_err(|source| Error::Json {
        key: "journal record".into(),
        source,
    })
}

#[derive(Default)]
struct State {
    accounts: HashMap<Key, Account>,
    meta: BTreeMap<String, Vec<u8>>,
    sessions: BTreeMap<String, Vec<u8>>,
}

impl State {
    fn apply(&mut self, op: Op) {
        match op {
            Op::Put(accts) => {
                for a in accts {
                    self.accounts.insert((a.tenant.clone(), a.id.clone()), a);
                }
            }
            Op::Del(t, a) => {
                self.accounts.remove(&(t, a));
            }
            Op::Meta(n, v) => {
                self.meta.insert(n, v);
            }
            Op::MetaDel(n) => {
                self.meta.remove(&n);
            }
            Op::Session(k, v) => {
                self.sessions.insert(k, v);
            }
            Op::SessionDel(k) => {
                self.sessions.remove(&k);
            }
        }
    }
}

impl EmbeddedAccounts {
    /// Opens (creating) the data directory with default options.
    ///
    /// # Errors
    /// [`Error::Locked`] when another process has it open, [`Error::Io`],
    /// or [`Error::Corrupt`] for a damaged snapshot or journal record that
    /// is not a torn tail.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self, Error> {
        Self::open_with(dir, EmbeddedOptions::default())
    }

    /// Opens (creating) the data directory: loads the snapshot, replays
    /// the journal and cuts off a torn last record.
    ///
    /// # Errors
    /// As [`EmbeddedAccounts::open`].
    pub fn open_with(dir: impl AsRef<Path>, opts: EmbeddedOptions) -> Result<Self, Error> {
        let dir = dir.as_ref().to_owned();
        let created = !dir.exists();
        fs::create_dir_all(&dir).map_err(io(&dir))?;
        if created {
            // The new directory's entry must survive a crash too.
            if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
                journal::sync_dir(parent)?;
            }
        }
        let lock_path = dir.join(LOCK_FILE);
        let lock_file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(io(&lock_path))?;
        let lock = match Flock::lock(lock_file, FlockArg::LockExclusiveNonblock) {
            Ok(l) => l,
            Err((_, nix::errno::Errno::EWOULDBLOCK)) => return Err(Error::Locked { dir }),
            Err((_, e)) => {
                return Err(Error::Io {
                    path: lock_path,
                    source: e.into(),
                });
            }
        };
        // A compaction that crashed before its rename: the old snapshot
        // and the journal are still whole.
        let tmp = dir.join(SNAPSHOT_TMP);
        if tmp.exists() {
            fs::remove_file(&tmp).map_err(io(&tmp))?;
        }
        let mut state = State::default();
        let mut recovery = Recovery::default();
        let snap = dir.join(SNAPSHOT);
        if snap.exists() {
            let buf = fs::read(&snap).map_err(io(&snap))?;
            let parsed = journal::parse(&buf);
            if let Some(reason) = parsed.torn {
                // The snapshot was synced before it was renamed into place:
                // damage here is not a crash artefact.
                return Err(Error::Corrupt {
                    path: snap,
                    offset: parsed.valid_len,
                    reason,
                });
            }
            recovery.snapshot_records = parsed.records.len();
            replay(&snap, &parsed.records, &mut state)?;
        }
        let jpath = dir.join(JOURNAL);
        let buf = match fs::read(&jpath) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(io(&jpath)(e)),
        };
        let parsed = journal::parse(&buf);
        recovery.journal_records = parsed.records.len();
        recovery.torn_bytes = buf.len() as u64 - parsed.valid_len;
        recovery.torn_reason = parsed.torn.clone();
        replay(&jpath, &parsed.records, &mut state)?;
        let journal = Journal::open(&jpath, parsed.valid_len)?;
        journal::sync_dir(&dir)?;
        let accounts = state
            .accounts
            .into_iter()
            .map(|(k, account)| {
                let slot = Slot {
                    account,
                    removed: false,
                    lsn: 0,
                };
                (k, Arc::new(Mutex::new(slot)))
            })
            .collect();
        Ok(EmbeddedAccounts {
            dir,
            opts,
            accounts: RwLock::new(accounts),
            meta: RwLock::new(state.meta),
            sessions: RwLock::new(state.sessions),
            checkpoint: RwLock::new(()),
            compacting: AtomicBool::new(false),
            journal,
            recovery,
            _lock: lock,
        })
    }

    /// What opening found (records replayed, torn tail cut off).
    #[must_use]
    pub fn recovery(&self) -> &Recovery {
        &self.recovery
    }

    /// How many `fsync`s of the journal this store made since it was
    /// opened (writers waiting together share one).
    #[must_use]
    pub fn journal_syncs(&self) -> u64 {
        self.journal.syncs()
    }

    /// The data directory.
    #[must_use]
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn slot(&self, tenant: &str, id: &str) -> Option<SlotRef> {
        self.accounts
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&(tenant.to_owned(), id.to_owned()))
            .cloned()
    }

    /// Writes a snapshot of everything and empties the journal. Writers
    /// wait meanwhile; readers do not.
    ///
    /// # Errors
    /// [`Error::Io`] writing the snapshot (the journal is then kept and
    /// nothing is lost), [`Error::Failed`] when the journal could not be
    /// emptied durably.
    pub fn compact(&self) -> Result<(), Error> {
        let _excl = self
            .checkpoint
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        let mut buf = Vec::new();
        {
            let map = self.accounts.read().unwrap_or_else(PoisonError::into_inner);
            let mut keys: Vec<&Key> = map.keys().collect();
            keys.sort();
            for k in keys {
                if let Some(s) = map.get(k) {
                    let a = lock_slot(s).account.clone();
                    journal::frame(&Op::Put(vec![a]).encode()?, &mut buf)?;
                }
            }
        }
        for (n, v) in self
            .meta
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
        {
            journal::frame(&Op::Meta(n.clone(), v.clone()).encode()?, &mut buf)?;
        }
        for (k, v) in self
            .sessions
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
        {
            journal::frame(&Op::Session(k.clone(), v.clone()).encode()?, &mut buf)?;
        }
        let tmp = self.dir.join(SNAPSHOT_TMP);
        let snap = self.dir.join(SNAPSHOT);
        let written = File::create(&tmp)
            .and_then(|mut f| {
                f.write_all(&buf)?;
                f.sync_all()
            })
            .and_then(|()| fs::rename(&tmp, &snap));
        if let Err(e) = written {
            let _ = fs::remove_file(&tmp);
            return Err(io(&tmp)(e));
        }
        journal::sync_dir(&self.dir)?;
        self.journal.reset()
    }

    fn maybe_compact(&self) {
        if self.journal.len() > self.opts.compact_after_bytes
            && !self.compacting.swap(true, Ordering::AcqRel)
        {
            // A failed compaction keeps the journal: nothing is lost, and
            // the next write tries again.
            let _ = self.compact();
            self.compacting.store(false, Ordering::Release);
        }
    }

    /// Journals `op` and applies it (under the caller's locks); the
    /// caller then waits for the returned sequence number.
    fn log(&self, op: &Op) -> Result<u64, Error> {
        self.journal.append(&op.encode()?)
    }

    fn durable(&self, lsn: u64) -> Result<(), rating::Error> {
        self.journal.wait(lsn).map_err(Into::into)
    }
}

fn replay(path: &Path, records: &[(u64, &[u8])], state: &mut State) -> Result<(), Error> {
    for (offset, p) in records {
        let op = Op::decode(p).map_err(|reason| Error::Corrupt {
            path: path.to_owned(),
            offset: *offset,
            reason,
        })?;
        state.apply(op);
    }
    Ok(())
}

impl AccountStore for EmbeddedAccounts {
    fn get(&self, tenant: &str, id: &str) -> Result<Option<Account>, rating::Error> {
        let Some(slot) = self.slot(tenant, id) else {
            return Ok(None);
        };
        let (a, lsn) = {
            let s = lock_slot(&slot);
            (s.account.clone(), s.lsn)
        };
        self.durable(lsn)?;
        Ok(Some(a))
    }

    fn set(&self, account: Account) -> Result<(), rating::Error> {
        let lsn = {
            let _w = self
                .checkpoint
                .read()
                .unwrap_or_else(PoisonError::into_inner);
            let key = (account.tenant.clone(), account.id.clone());
            let mut map = self
                .accounts
                .write()
                .unwrap_or_else(PoisonError::into_inner);
            let lsn = self.log(&Op::Put(vec![account.clone()]))?;
            match map.get(&key) {
                Some(slot) => {
                    let mut s = lock_slot(slot);
                    s.account = account;
                    s.lsn = lsn;
                }
                None => {
                    let slot = Slot {
                        account,
                        removed: false,
                        lsn,
                    };
                    map.insert(key, Arc::new(Mutex::new(slot)));
                }
            }
            lsn
        };
        self.durable(lsn)?;
        self.maybe_compact();
        Ok(())
    }

    fn remove(&self, tenant: &str, id: &str) -> Result<bool, rating::Error> {
        let lsn = {
            let _w = self
                .checkpoint
                .read()
                .unwrap_or_else(PoisonError::into_inner);
            let key = (tenant.to_owned(), id.to_owned());
            let mut map = self
                .accounts
                .write()
                .unwrap_or_else(PoisonError::into_inner);
            let Some(slot) = map.get(&key).cloned() else {
                return Ok(false);
            };
            // Waits for an update in progress, which then finds `removed`.
            let mut s = lock_slot(&slot);
            let lsn = self.log(&Op::Del(key.0.clone(), key.1.clone()))?;
            s.removed = true;
            map.remove(&key);
            lsn
        };
        self.durable(lsn)?;
        self.maybe_compact();
        Ok(true)
    }

    fn list(&self, tenant: &str) -> Result<Vec<Account>, rating::Error> {
        let slots: Vec<SlotRef> = self
            .accounts
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .filter(|((t, _), _)| t == tenant)
            .map(|(_, s)| Arc::clone(s))
            .collect();
        let mut lsn = 0;
        let mut out: Vec<Account> = slots
            .iter()
            .map(|s| {
                let s = lock_slot(s);
                lsn = lsn.max(s.lsn);
                s.account.clone()
            })
            .collect();
        self.durable(lsn)?;
        out.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(out)
    }

    fn tenants(&self) -> Result<Vec<String>, rating::Error> {
        let set: std::collections::BTreeSet<String> = self
            .accounts
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .keys()
            .map(|(t, _)| t.clone())
            .collect();
        Ok(set.into_iter().collect())
    }

    fn update(
        &self,
        tenant: &str,
        id: &str,
        f: &mut dyn FnMut(&mut Account) -> Result<(), rating::Error>,
    ) -> Result<(), rating::Error> {
        let slot = self.slot(tenant, id).ok_or_else(|| not_found(tenant, id))?;
        self.update_slot(&slot, tenant, id, f)
    }

    fn update_many(
        &self,
        keys: &[(String, String)],
        f: &mut dyn FnMut(&mut [Account]) -> Result<(), rating::Error>,
    ) -> Result<(), rating::Error> {
        let lsn = {
            let _w = self
                .checkpoint
                .read()
                .unwrap_or_else(PoisonError::into_inner);
            let mut sorted: Vec<&(String, String)> = keys.iter().collect();
            sorted.sort();
            sorted.dedup();
            let mut slots = Vec::with_capacity(sorted.len());
            for (t, a) in &sorted {
                slots.push(self.slot(t, a).ok_or_else(|| not_found(t, a))?);
            }
            // Sorted lock order: two update_many never wait in a cycle.
            let mut guards: Vec<_> = slots.iter().map(lock_slot).collect();
            if let Some(i) = guards.iter().position(|g| g.removed) {
                let (t, a) = sorted[i];
                return Err(not_found(t, a));
            }
            let pos = |k: &(String, String)| sorted.iter().position(|s| *s == k);
            let mut copies = Vec::with_capacity(keys.len());
            for k in keys {
                let g = pos(k)
                    .and_then(|i| guards.get(i))
                    .ok_or_else(|| rating::Error::Store("lost key".into()))?;
                copies.push(g.account.clone());
            }
            let seen = guards.iter().map(|g| g.lsn).max().unwrap_or(0);
            if let Err(e) = f(&mut copies) {
                drop(guards);
                self.durable(seen)?;
                return Err(e);
            }
            // A key given twice: its last copy wins.
            let mut new: Vec<Option<Account>> = vec![None; sorted.len()];
            for (k, c) in keys.iter().zip(copies) {
                if let Some(i) = pos(k) {
                    new[i] = Some(c);
                }
            }
            let changed: Vec<Account> = new
                .iter()
                .zip(&guards)
                .filter_map(|(n, g)| n.as_ref().filter(|n| **n != g.account).cloned())
                .collect();
            if changed.is_empty() {
                seen
            } else {
                let lsn = self.log(&Op::Put(changed))?;
                for (n, g) in new.into_iter().zip(guards.iter_mut()) {
                    if let Some(n) = n {
                        if n != g.account {
                            g.account = n;
                            g.lsn = lsn;
                        }
                    }
                }
                lsn
            }
        };
        self.durable(lsn)?;
        self.maybe_compact();
        Ok(())
    }
}

impl EmbeddedAccounts {
    /// [`AccountStore::update`] on a slot looked up before (which may have
    /// been removed since: then the account is not found).
    fn update_slot(
        &self,
        slot: &SlotRef,
        tenant: &str,
        id: &str,
        f: &mut dyn FnMut(&mut Account) -> Result<(), rating::Error>,
    ) -> Result<(), rating::Error> {
        let lsn = {
            let _w = self
                .checkpoint
                .read()
                .unwrap_or_else(PoisonError::into_inner);
            let mut s = lock_slot(slot);
            if s.removed {
                return Err(not_found(tenant, id));
            }
            let mut copy = s.account.clone();
            if let Err(e) = f(&mut copy) {
                // The refusal rests on this state: answer only once it is
                // durable.
                let lsn = s.lsn;
                drop(s);
                self.durable(lsn)?;
                return Err(e);
            }
            if copy == s.account {
                s.lsn
            } else {
                let lsn = self.log(&Op::Put(vec![copy.clone()]))?;
                s.account = copy;
                s.lsn = lsn;
                lsn
            }
        };
        // The lock is released before the fsync so that the next update of
        // the same account can join this group commit; it cannot be
        // acknowledged before this one (journal order).
        self.durable(lsn)?;
        self.maybe_compact();
        Ok(())
    }
}

impl MetaStore for EmbeddedAccounts {
    fn put_meta(&self, name: &str, value: &[u8]) -> Result<(), Error> {
        let lsn = {
            let _w = self
                .checkpoint
                .read()
                .unwrap_or_else(PoisonError::into_inner);
            let mut meta = self.meta.write().unwrap_or_else(PoisonError::into_inner);
            let lsn = self.log(&Op::Meta(name.to_owned(), value.to_vec()))?;
            meta.insert(name.to_owned(), value.to_vec());
            lsn
        };
        self.journal.wait(lsn)?;
        self.maybe_compact();
        Ok(())
    }

    fn get_meta(&self, name: &str) -> Result<Option<Vec<u8>>, Error> {
        let v = self
            .meta
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(name)
            .cloned();
        // Not tracked per name: wait for everything written so far.
        self.journal.wait(self.journal.written())?;
        Ok(v)
    }

    fn remove_meta(&self, name: &str) -> Result<bool, Error> {
        let lsn = {
            let _w = self
                .checkpoint
                .read()
                .unwrap_or_else(PoisonError::into_inner);
            let mut meta = self.meta.write().unwrap_or_else(PoisonError::into_inner);
            if !meta.contains_key(name) {
                return Ok(false);
            }
            let lsn = self.log(&Op::MetaDel(name.to_owned()))?;
            meta.remove(name);
            lsn
        };
        self.journal.wait(lsn)?;
        Ok(true)
    }
}

mod live;

#[cfg(test)]
mod tests;
