//! `replay` on two threads: the caller's, which reads, decodes and scans
//! batches of packets and orders and writes the CDRs that come back, and
//! the dialog thread, with batches going through bounded channels and
//! coming back to be reused, so the steady state allocates no batch.
//!
//! Same output as one thread: the dialog thread hands on each packet's
//! finished calls and the clock after it ([`Step`]s) in order, and the
//! writing half replays them into the same [`Release`] the one-thread
//! pipeline uses (a clock step is left out only when neither the clock
//! moved nor a call finished, when releasing again would give nothing).
//!
//! The reading half also scans SIP payloads ([`Prescan`], beside the
//! batch of packets), so the dialog thread only slices the values out of
//! those: 2 to 5 packets in 5 ([`share`]), more while batches wait for the
//! dialog thread, fewer while it waits for them (docs/perf-issue10-replay.md).
//!
//! Until session 9 reading and writing were two threads of their own,
//! three threads on two cores taking turns; now the dialog thread, the
//! busiest, keeps a core (`read_and_write` waits for it only when it holds
//! all the batches it can).
//!
//! Shutdown: the writing half stopping (an output error) drops its
//! channels, so the dialog thread's next send or receive fails and it
//! stops. A read error drops the packet channel without an end marker:
//! the dialog thread then stops without ending the open calls, as the
//! one-thread loop returns at once, and the CDRs released so far are
//! written before the error is returned.

use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{
    Receiver, Sender, SyncSender, TryRecvError, TrySendError, channel, sync_channel,
};

use capture::{SipPacket, Timestamp};
use indicatif::ProgressBar;
use sip_fsm::{CallRecord, Prescan};

use super::CdrOut;
use super::merge::{BATCH, Merge};
use super::pipeline::{Dialogs, Release, Step};
use crate::exit::Failure;

/// Batches in flight in each channel.
const DEPTH: usize = 4;

/// A batch of packets and the scans of their payloads, index for index
/// (`None`: left for the dialog thread to scan).
#[derive(Default)]
struct Batch {
    packets: Vec<SipPacket>,
    scans: Vec<Option<Prescan>>,
}

/// Whether the reader scans the packet at `i` in its batch, when it scans
/// `share` packets in 5.
fn prescanned(i: usize, share: usize) -> bool {
    i % 5 < share
}

/// How many packets in 5 the reader scans, given how many batches wait
/// for the dialog thread: more while the dialog thread is behind (the
/// reader would only wait on a full channel), fewer while it waits for
/// packets. Any share gives the same output (`sip-fsm/tests/prescan.rs`).
fn share(queued: usize) -> usize {
    match queued {
        0 => 2,
        1 => 3,
        2 => 4,
        _ => 5,
    }
}

enum Packets {
    Batch(Batch),
    /// Everything was read.
    End,
}

enum Steps {
    Batch(Vec<Step>),
    /// The open calls have ended; every record has been sent.
    End,
}

/// Runs the replay of `merge` through `dialogs`, `release` and `out`;
/// returns the dialog half (for its counters) once everything is written.
pub(crate) fn run<W: Write>(
    merge: &mut Merge,
    dialogs: Dialogs,
    release: &mut Release,
    out: &mut CdrOut<W>,
    progress: Option<&ProgressBar>,
    total: u64,
) -> anyhow::Result<Dialogs> {
    let queued = AtomicUsize::new(0);
    std::thread::scope(|s| {
        let (pkt_tx, pkt_rx) = sync_channel::<Packets>(DEPTH);
        let (pkt_back_tx, pkt_back_rx) = channel::<Batch>();
        let (step_tx, step_rx) = sync_channel::<Steps>(DEPTH);
        let (step_back_tx, step_back_rx) = channel::<Vec<Step>>();
        let q = &queued;
        let follower = std::thread::Builder::new()
            .name("replay-dialogs".into())
            .spawn_scoped(s, move || {
                follow(dialogs, &pkt_rx, &pkt_back_tx, q, &step_tx, &step_back_rx)
            })?;
        let mut reader = Reader {
            merge,
            tx: Some(pkt_tx),
            back: pkt_back_rx,
            queued: q,
            progress,
            total,
        };
        let mut writer = Writer {
            back: step_back_tx,
            written: Vec::new(),
            release,
            out,
        };
        let done = read_and_write(&mut reader, &step_rx, &mut writer);
        // The dialog thread stops at its next send or receive if it is
        // not done.
        drop(step_rx);
        drop(reader.tx.take());
        let dialogs = follower
            .join()
            .map_err(|_| anyhow::anyhow!("the replay dialog thread panicked"))?;
        match done {
            Done::Written => Ok(dialogs),
            Done::Output(e) => Err(Failure::Output(e).into()),
            Done::ReadError(e) => Err(e),
            Done::Stopped => Err(anyhow::anyhow!("replay: the dialog thread stopped early")),
        }
    })
}

/// How [`read_and_write`] ended.
enum Done {
    /// The end was seen and every record written.
    Written,
    /// Writing the output failed.
    Output(std::io::Error),
    /// Reading failed: what was released before it was written.
    ReadError(anyhow::Error),
    /// The dialog thread stopped before the end.
    Stopped,
}

/// The reading half of the caller's thread.
struct Reader<'a> {
    merge: &'a mut Merge,
    /// Dropped on a read error, which stops the dialog thread without an
    /// end marker (the open calls are not ended, as the one-thread loop
    /// returns at once).
    tx: Option<SyncSender<Packets>>,
    back: Receiver<Batch>,
    queued: &'a AtomicUsize,
    progress: Option<&'a ProgressBar>,
    total: u64,
}

impl Reader<'_> {
    /// The next batch of packets in time order, with its payloads' scans
    /// (`End` after the last). Batches come back full and are emptied
    /// here, so a packet is freed on the thread that made it, off the
    /// busiest thread.
    fn next(&mut self) -> anyhow::Result<Packets> {
        let mut batch = self.back.try_recv().unwrap_or_else(|_| Batch {
            packets: Vec::with_capacity(BATCH),
            scans: Vec::with_capacity(BATCH),
        });
        batch.packets.clear();
        batch.scans.clear();
        while batch.packets.is_empty() && !self.merge.done() {
            self.merge.next_batch(&mut batch.packets)?;
        }
        if let Some(pb) = self.progress {
            pb.set_position(self.merge.bytes_read().min(self.total));
        }
        if batch.packets.is_empty() {
            return Ok(Packets::End);
        }
        let share = share(self.queued.load(Ordering::Relaxed));
        batch.scans.extend(
            batch
                .packets
                .iter()
                .enumerate()
                .map(|(i, p)| prescanned(i, share).then(|| Prescan::scan(&p.payload))),
        );
        self.queued.fetch_add(1, Ordering::Relaxed);
        Ok(Packets::Batch(batch))
    }
}

/// The writing half of the caller's thread.
struct Writer<'a, W: Write> {
    back: Sender<Vec<Step>>,
    /// Records written since the last batch went back (see
    /// [`Writer::handle`]).
    written: Vec<CallRecord>,
    release: &'a mut Release,
    out: &'a mut CdrOut<W>,
}

impl<W: Write> Writer<'_, W> {
    /// Replays the dialog thread's steps into `release`, CDRs out; `true`
    /// once the end was seen and every record written.
    fn handle(&mut self, msg: Steps) -> std::io::Result<bool> {
        let out = &mut *self.out;
        match msg {
            Steps::Batch(mut steps) => {
                let written = &mut self.written;
                let mut emit = |rec: CallRecord| -> std::io::Result<()> {
                    out.record(&rec)?;
                    written.push(rec);
                    Ok(())
                };
                for step in steps.drain(..) {
                    match step {
                        Step::Record(r) => self.release.push(r),
                        Step::Clock(now) => self.release.release(now, &mut emit)?,
                    }
                }
                // Written records go back with the batch, to be freed on
                // the thread that allocated them (glibc's arenas make a
                // free on another thread slow).
                steps.extend(self.written.drain(..).map(Step::Record));
                let _ = self.back.send(steps);
                Ok(false)
            }
            // Nothing goes back at the end: the records are freed as they
            // are written (keeping them all would only raise the peak).
            Steps::End => {
                self.release.finish(&mut |rec| out.record(&rec))?;
                Ok(true)
            }
        }
    }
}

/// The caller's thread: reads and scans batches for the dialog thread and
/// writes what comes back, taking finished calls whenever they are there
/// and waiting for them only when the dialog thread has all the batches
/// it can hold. With two cores this keeps one for the dialog thread, the
/// busiest (three threads on two cores took turns on them).
fn read_and_write<W: Write>(
    reader: &mut Reader<'_>,
    steps: &Receiver<Steps>,
    writer: &mut Writer<'_, W>,
) -> Done {
    let mut held: Option<Packets> = None;
    let mut read_all = false;
    let mut read_error = None;
    loop {
        if held.is_none() && !read_all {
            match reader.next() {
                Ok(p) => {
                    read_all = matches!(p, Packets::End);
                    held = Some(p);
                }
                Err(e) => {
                    read_error = Some(e);
                    read_all = true;
                    drop(reader.tx.take());
                }
            }
        }
        let full = match (held.take(), &reader.tx) {
            (Some(p), Some(tx)) => match tx.try_send(p) {
                Ok(()) => false,
                Err(TrySendError::Full(p)) => {
                    held = Some(p);
                    true
                }
                // The dialog thread is gone: what it sent is still read.
                Err(TrySendError::Disconnected(_)) => {
                    read_all = true;
                    false
                }
            },
            _ => false,
        };
        // Wait for the dialog thread when it has all it can hold, or when
        // everything was read.
        let msg = if full || (read_all && held.is_none()) {
            steps.recv().ok()
        } else {
            match steps.try_recv() {
                Ok(m) => Some(m),
                Err(TryRecvError::Empty) => continue,
                Err(TryRecvError::Disconnected) => None,
            }
        };
        let Some(msg) = msg else {
            return match read_error {
                Some(e) => Done::ReadError(e),
                None => Done::Stopped,
            };
        };
        match writer.handle(msg) {
            Ok(true) => return Done::Written,
            Ok(false) => {}
            Err(e) => return Done::Output(e),
        }
    }
}

/// The dialog thread: packets in, [`Step`]s out, batch for batch.
fn follow(
    mut dialogs: Dialogs,
    rx: &Receiver<Packets>,
    pkt_back: &Sender<Batch>,
    queued: &AtomicUsize,
    tx: &SyncSender<Steps>,
    step_back: &Receiver<Vec<Step>>,
) -> Dialogs {
    let mut last: Option<Timestamp> = None;
    while let Ok(msg) = rx.recv() {
        let mut steps = step_back.try_recv().unwrap_or_default();
        steps.clear();
        match msg {
            Packets::Batch(batch) => {
                queued.fetch_sub(1, Ordering::Relaxed);
                for (p, scan) in batch.packets.iter().zip(&batch.scans) {
                    let before = steps.len();
                    let mut rec = |r| steps.push(Step::Record(r));
                    let now = match scan {
                        Some(scan) => dialogs.packet_scanned(p, scan, &mut rec),
                        None => dialogs.packet(p, &mut rec),
                    };
                    if steps.len() > before || last != Some(now) {
                        steps.push(Step::Clock(now));
                        last = Some(now);
                    }
                }
                // The reader may have stopped: then the batch is dropped here.
                let _ = pkt_back.send(batch);
                if tx.send(Steps::Batch(steps)).is_err() {
                    break;
                }
            }
            Packets::End => {
                dialogs.finish(&mut |r| steps.push(Step::Record(r)));
                if tx.send(Steps::Batch(steps)).is_ok() {
                    let _ = tx.send(Steps::End);
                }
                break;
            }
        }
    }
    dialogs
}
