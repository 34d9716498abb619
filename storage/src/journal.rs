//! The embedded store's files: framed, checksummed records and the
//! append-only journal with group commit.
//!
//! A record is `len: u32 LE`, `crc32(payload): u32 LE`, `payload`. A crash
//! while appending leaves at most the last record torn (short or with a
//! wrong checksum); [`parse`] stops there, and since a record is
//! acknowledged only after the `fsync` that covers it, what follows the
//! first bad record was never acknowledged.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, PoisonError};

use crate::Error;

/// Bytes before a record's payload.
const HEADER: usize = 8;
/// A larger length is garbage, not a record (guards the allocation).
const MAX_RECORD: usize = 1 << 30;

/// Appends one framed record to `out`.
pub(crate) fn frame(payload: &[u8], out: &mut Vec<u8>) -> Result<(), Error> {
    let len = u32::try_from(payload.len())
        .ok()
        .filter(|&l| (l as usize) <= MAX_RECORD)
        .ok_or_else(|| Error::Failed(format!("record of {} bytes is too large", payload.len())))?;
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
    out.extend_from_slice(payload);
    Ok(())
}

/// The records of `buf` up to the first torn or damaged one.
pub(crate) struct Parsed<'a> {
    /// `(offset, payload)` of each whole record.
    pub records: Vec<(u64, &'a [u8])>,
    /// Bytes covered by whole records.
    pub valid_len: u64,
    /// Why parsing stopped before the end, if it did.
    pub torn: Option<String>,
}

/// Splits `buf` into records.
pub(crate) fn parse(buf: &[u8]) -> Parsed<'_> {
    let mut records = Vec::new();
    let mut pos = 0usize;
    let torn = loop {
        let rest = &buf[pos..];
        if rest.is_empty() {
            break None;
        }
        let (Some(len), Some(crc)) = (word(rest, 0), word(rest, 4)) else {
            break Some(format!("{} header bytes of {HEADER}", rest.len()));
        };
        let len = len as usize;
        if len > MAX_RECORD {
            break Some(format!("length {len} is not a record"));
        }
        let Some(payload) = rest.get(HEADER..HEADER + len) else {
            break Some(format!("{} of {len} payload bytes", rest.len() - HEADER));
        };
        if crc32fast::hash(payload) != crc {
            break Some("checksum mismatch".into());
        }
        records.push((pos as u64, payload));
        pos += HEADER + len;
    };
    Parsed {
        records,
        valid_len: pos as u64,
        torn,
    }
}

fn word(b: &[u8], at: usize) -> Option<u32> {
    let w: [u8; 4] = b.get(at..at + 4)?.try_into().ok()?;
    Some(u32::from_le_bytes(w))
}

/// `fsync`s a directory so that a file created or renamed in it survives
/// a crash.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), Error> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|source| Error::Io {
            path: dir.to_owned(),
            source,
        })
}

struct Writer {
    file: File,
    /// The file's length: where the next record starts.
    len: u64,
    /// Sequence number of the last record written.
    lsn: u64,
}

struct SyncState {
    /// Every record up to this sequence number is on disk.
    durable: u64,
    /// A thread is in `sync_data` for the group.
    syncing: bool,
    /// Set once a write or sync failed: nothing is acknowledged any more.
    failed: Option<String>,
}

/// The append-only journal. [`Journal::append`] writes a record to the
/// page cache and returns its sequence number; [`Journal::wait`] returns
/// once an `fsync` covers it. Writers that wait together share one
/// `fsync` (group commit): the first becomes the leader and syncs
/// everything written so far while the others wait on the condvar.
pub(crate) struct Journal {
    path: PathBuf,
    writer: Mutex<Writer>,
    /// A second handle for `sync_data`, so that appends go on while the
    /// leader syncs.
    sync_file: File,
    /// Sequence number of the last record fully written.
    written: AtomicU64,
    /// `fsync`s done since opening.
    syncs: AtomicU64,
    sync: Mutex<SyncState>,
    synced: Condvar,
}

impl Journal {
    /// Opens (creating) the journal, whose first `valid_len` bytes are
    /// whole records: a torn tail beyond them is cut off and the cut made
    /// durable before anything is appended after it.
    pub(crate) fn open(path: &Path, valid_len: u64) -> Result<Journal, Error> {
        let io = |source| Error::Io {
            path: path.to_owned(),
            source,
        };
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(io)?;
        if file.metadata().map_err(io)?.len() != valid_len {
            file.set_len(valid_len).map_err(io)?;
            file.sync_all().map_err(io)?;
        }
        let sync_file = file.try_clone().map_err(io)?;
        Ok(Journal {
            path: path.to_owned(),
            writer: Mutex::new(Writer {
                file,
                len: valid_len,
                lsn: 0,
            }),
            sync_file,
            written: AtomicU64::new(0),
            syncs: AtomicU64::new(0),
            sync: Mutex::new(SyncState {
                durable: 0,
                syncing: false,
                failed: None,
            }),
            synced: Condvar::new(),
        })
    }

    fn check(&self) -> Result<(), Error> {
        match &self
            .sync
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .failed
        {
            Some(why) => Err(Error::Failed(why.clone())),
            None => Ok(()),
        }
    }

    fn fail(&self, why: String) -> Error {
        let mut s = self.sync.lock().unwrap_or_else(PoisonError::into_inner);
        s.failed.get_or_insert(why.clone());
        self.synced.notify_all();
        Error::Failed(why)
    }

    /// Writes one record (not yet durable); its sequence number.
    pub(crate) fn append(&self, payload: &[u8]) -> Result<u64, Error> {
        self.append_many(std::slice::from_ref(&payload))
    }

    /// Writes `payloads` as consecutive records with one `write` (not yet
    /// durable); the sequence number of the last. A crash may tear the
    /// write anywhere: [`parse`] keeps the whole records before the tear,
    /// none of them acknowledged before the `fsync` that covers them all.
    pub(crate) fn append_many<P: AsRef<[u8]>>(&self, payloads: &[P]) -> Result<u64, Error> {
        self.check()?;
        let size = payloads.iter().map(|p| p.as_ref().len() + HEADER).sum();
        let mut buf = Vec::with_capacity(size);
        for p in payloads {
            frame(p.as_ref(), &mut buf)?;
        }
        let mut w = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        if let Err(e) = w.file.write_all(&buf) {
            // Cut a partial record off, or a later record would sit behind
            // garbage that replay stops at.
            let len = w.len;
            return Err(match w.file.set_len(len) {
                Ok(()) => Error::Io {
                    path: self.path.clone(),
                    source: e,
                },
                Err(e2) => self.fail(format!("{}: {e}; truncating: {e2}", self.path.display())),
            });
        }
        w.len += buf.len() as u64;
        w.lsn += payloads.len() as u64;
        self.written.store(w.lsn, Ordering::Release);
        Ok(w.lsn)
    }

    /// Returns once record `lsn` (and every one before it) is on disk.
    pub(crate) fn wait(&self, lsn: u64) -> Result<(), Error> {
        let mut s = self.sync.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            if let Some(why) = &s.failed {
                return Err(Error::Failed(why.clone()));
            }
            if s.durable >= lsn {
                return Ok(());
            }
            if s.syncing {
                s = self.synced.wait(s).unwrap_or_else(PoisonError::into_inner);
                continue;
            }
            // Lead a group: everything fully written now is covered by
            // this sync (fsync covers all data written before it starts).
            s.syncing = true;
            drop(s);
            let target = self.written.load(Ordering::Acquire);
            let r = self.sync_file.sync_data();
            self.syncs.fetch_add(1, Ordering::Relaxed);
            s = self.sync.lock().unwrap_or_else(PoisonError::into_inner);
            s.syncing = false;
            match r {
                Ok(()) => s.durable = s.durable.max(target),
                // After a failed fsync the page cache may hold data the disk
                // does not, and a retry may report success: stop here.
                Err(e) => {
                    s.failed
                        .get_or_insert(format!("{}: fsync: {e}", self.path.display()));
                }
            }
            self.synced.notify_all();
        }
    }

    /// `fsync`s of the journal since opening.
    pub(crate) fn syncs(&self) -> u64 {
        self.syncs.load(Ordering::Relaxed)
    }

    /// Bytes in the journal.
    pub(crate) fn len(&self) -> u64 {
        self.writer
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len
    }

    /// Empties the journal once a snapshot holds everything in it; the
    /// caller excludes appends. Every record so far counts as durable.
    pub(crate) fn reset(&self) -> Result<(), Error> {
        self.check()?;
        let mut w = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        if let Err(e) = w.file.set_len(0).and_then(|()| w.file.sync_all()) {
            return Err(self.fail(format!("{}: truncating: {e}", self.path.display())));
        }
        w.len = 0;
        let mut s = self.sync.lock().unwrap_or_else(PoisonError::into_inner);
        s.durable = s.durable.max(w.lsn);
        self.synced.notify_all();
        Ok(())
    }
}

impl Journal {
    /// Sequence number of the last record written (durable or not).
    pub(crate) fn written(&self) -> u64 {
        self.written.load(Ordering::Acquire)
    }
}
