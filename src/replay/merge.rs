//! Several capture files read as one timeline: a k-way merge by packet
//! time, as mergecap would do, so the result does not depend on the order
//! the files are named in (and captures taken at several points at once
//! interleave correctly).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::path::PathBuf;

use anyhow::Context;
use capture::io::{PcapSource, ReadStatus};
use capture::{SipPacket, Stats, Timestamp};

use crate::config::Config;
use crate::exit::Failure;
use crate::input::{cut_short, open_capture};

/// Frames read per batch: small enough that a batch's packets and
/// payloads (about 320 KiB) are still in cache when the dialog thread
/// takes them (4,096 took 12% more CPU; docs/perf-issue10-replay.md).
pub(crate) const BATCH: usize = 512;

/// A k-way merge of capture files by packet timestamp.
pub(crate) struct Merge {
    files: Vec<MergeFile>,
    /// The next packet of each file that still has one: (time, file).
    heads: BinaryHeap<Reverse<(Timestamp, usize)>>,
    /// Packets handed out so far.
    pub(crate) read: u64,
}

struct MergeFile {
    path: PathBuf,
    src: PcapSource,
    queue: VecDeque<SipPacket>,
    /// Reused for each read.
    batch: Vec<SipPacket>,
    ended: bool,
    /// Set when the file ended at a cut rather than at its end.
    cut: bool,
}

impl MergeFile {
    /// Makes sure the queue holds a packet unless the file is finished.
    fn fill(&mut self) -> anyhow::Result<()> {
        while self.queue.is_empty() && !self.ended {
            self.batch.clear();
            let mut batch = std::mem::take(&mut self.batch);
            let read = self.read(&mut batch);
            self.queue.extend(batch.drain(..));
            self.batch = batch;
            read?;
        }
        Ok(())
    }

    /// Reads up to [`BATCH`] frames, appending the packets they complete.
    fn read(&mut self, out: &mut Vec<SipPacket>) -> anyhow::Result<()> {
        let status = self
            .src
            .read_batch(BATCH, out)
            .with_context(|| format!("reading {}", self.path.display()))?;
        self.ended = matches!(status, ReadStatus::End | ReadStatus::CutShort);
        self.cut |= status == ReadStatus::CutShort;
        Ok(())
    }
}

impl Merge {
    /// Opens every file (with the BPF filter, if any) and reads the first
    /// packet of each.
    pub(crate) fn open(
        paths: &[PathBuf],
        filter: Option<&str>,
        cfg: &Config,
    ) -> anyhow::Result<Self> {
        let mut m = Merge {
            files: Vec::with_capacity(paths.len()),
            heads: BinaryHeap::new(),
            read: 0,
        };
        for (i, path) in paths.iter().enumerate() {
            // The files are read side by side: their decoders charge the
            // config's one reassembly byte budget, not one each.
            let src = open_capture(path, filter, cfg.decoder_config())?;
            let mut f = MergeFile {
                path: path.clone(),
                src,
                queue: VecDeque::new(),
                batch: Vec::new(),
                ended: false,
                cut: false,
            };
            f.fill()?;
            if let Some(p) = f.queue.front() {
                m.heads.push(Reverse((p.ts, i)));
            }
            m.files.push(f);
        }
        Ok(m)
    }

    /// The earliest packet over all files; ties go to the file named first.
    pub(crate) fn next_packet(&mut self) -> anyhow::Result<Option<SipPacket>> {
        let Some(Reverse((_, i))) = self.heads.pop() else {
            return Ok(None);
        };
        let Some(f) = self.files.get_mut(i) else {
            return Ok(None);
        };
        let p = f.queue.pop_front();
        f.fill()?;
        if let Some(next) = f.queue.front() {
            self.heads.push(Reverse((next.ts, i)));
        }
        self.read += 1;
        Ok(p)
    }

    /// The next packets in time order, appended to `out` (about a
    /// [`BATCH`] of frames' worth; maybe none while more are to come): as
    /// many [`Merge::next_packet`] calls, but one file's packets go
    /// straight from its reader to `out`. Not to be mixed with
    /// `next_packet`. Everything has been read once [`Merge::done`].
    pub(crate) fn next_batch(&mut self, out: &mut Vec<SipPacket>) -> anyhow::Result<()> {
        let before = out.len();
        if let [f] = self.files.as_mut_slice() {
            self.heads.clear();
            out.extend(f.queue.drain(..));
            if !f.ended {
                f.read(out)?;
            }
        } else {
            while out.len() - before < BATCH {
                match self.next_packet()? {
                    Some(p) => out.push(p),
                    None => break,
                }
            }
            self.read -= (out.len() - before) as u64;
        }
        self.read += (out.len() - before) as u64;
        Ok(())
    }

    /// Whether every file has been read to its end (or its cut).
    pub(crate) fn done(&self) -> bool {
        match self.files.as_slice() {
            [f] => f.ended && f.queue.is_empty(),
            _ => self.heads.is_empty(),
        }
    }

    /// Bytes of the files consumed so far (for the progress bar).
    pub(crate) fn bytes_read(&self) -> u64 {
        self.files.iter().map(|f| f.src.bytes_read()).sum()
    }

    /// The first file that was cut short (its frames up to the cut were
    /// used; the other files were read to their end).
    pub(crate) fn cut_short(&self) -> Option<Failure> {
        self.files
            .iter()
            .find(|f| f.cut)
            .map(|f| cut_short(&f.path, f.src.cut_short()))
    }

    /// The capture counters of every file together.
    pub(crate) fn stats(&self) -> Stats {
        let mut s = Stats::default();
        for f in &self.files {
            s.merge(&f.src.stats());
        }
        s
    }
}
