//! `replay` on three threads: reading and frame decoding, dialogs, and
//! ordering + CDR writing (the caller's thread), with batches going
//! through bounded channels and coming back to be reused, so the steady
//! state allocates no batch.
//!
//! Same output as one thread: the dialog thread hands on each packet's
//! finished calls and the clock after it ([`Step`]s) in order, and the
//! writer replays them into the same [`Release`] the one-thread pipeline
//! uses (a clock step is left out only when neither the clock moved nor a
//! call finished, when releasing again would give nothing).
//!
//! The reading thread also scans SIP payloads ([`Prescan`], beside the
//! batch of packets), so the dialog thread only slices the values out of
//! those: 2 to 5 packets in 5 ([`share`]), more while batches wait for the
//! dialog thread, fewer while it waits for them. A fixed 3 in 5 about
//! evens out the two threads' instructions on generated traffic
//! (callgrind of the 20,000-call capture: scanning them all moved the
//! limit to the reader, 818M instructions against the dialog thread's
//! 408M), but the third thread (the writer) and the machine decide which
//! is behind; following the queue gave a 7% lower median wall time on
//! 200,000 calls (docs/perf-issue10-replay.md).
//!
//! Shutdown: the writer stopping (an output error) drops its channel, so
//! the dialog thread's next send fails and it stops, which stops the
//! reader the same way. A read error stops the reader without an end
//! marker: the dialog thread then stops without ending the open calls, as
//! the one-thread loop returns at once, and the CDRs released so far are
//! written before the error is returned.

use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, Sender, SyncSender, channel, sync_channel};

use capture::{SipPacket, Timestamp};
use indicatif::ProgressBar;
use sip_fsm::Prescan;

use super::CdrOut;
use super::merge::Merge;
use super::pipeline::{Dialogs, Release, Step};
use crate::exit::Failure;

/// Frames read per batch (and the one-thread loop's batch).
pub(crate) const BATCH: usize = 4096;

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
        let reader = std::thread::Builder::new()
            .name("replay-read".into())
            .spawn_scoped(s, move || {
                read(merge, &pkt_tx, &pkt_back_rx, q, progress, total)
            })?;
        let follower = std::thread::Builder::new()
            .name("replay-dialogs".into())
            .spawn_scoped(s, move || {
                follow(dialogs, &pkt_rx, &pkt_back_tx, q, &step_tx, &step_back_rx)
            })?;
        let written = write(&step_rx, &step_back_tx, release, out);
        // The other threads stop at their next send if they are not done.
        drop(step_rx);
        let dialogs = follower
            .join()
            .map_err(|_| anyhow::anyhow!("the replay dialog thread panicked"))?;
        let read = reader
            .join()
            .map_err(|_| anyhow::anyhow!("the replay reading thread panicked"))?;
        match written {
            Err(e) => Err(Failure::Output(e).into()),
            Ok(true) => Ok(dialogs),
            Ok(false) => match read {
                Err(e) => Err(e),
                Ok(()) => Err(anyhow::anyhow!("replay: the dialog thread stopped early")),
            },
        }
    })
}

/// The reading thread: batches of packets in time order, each with its
/// payloads' scans, then `End`. Batches come back full, and are emptied
/// here (so a packet is freed on the thread that made it, off the busiest
/// thread).
fn read(
    merge: &mut Merge,
    tx: &SyncSender<Packets>,
    back: &Receiver<Batch>,
    queued: &AtomicUsize,
    progress: Option<&ProgressBar>,
    total: u64,
) -> anyhow::Result<()> {
    loop {
        let mut batch = back.try_recv().unwrap_or_else(|_| Batch {
            packets: Vec::with_capacity(BATCH),
            scans: Vec::with_capacity(BATCH),
        });
        batch.packets.clear();
        batch.scans.clear();
        merge.next_batch(&mut batch.packets)?;
        let share = share(queued.load(Ordering::Relaxed));
        batch.scans.extend(
            batch
                .packets
                .iter()
                .enumerate()
                .map(|(i, p)| prescanned(i, share).then(|| Prescan::scan(&p.payload))),
        );
        if let Some(pb) = progress {
            pb.set_position(merge.bytes_read().min(total));
        }
        let done = merge.done();
        if !batch.packets.is_empty() {
            queued.fetch_add(1, Ordering::Relaxed);
            if tx.send(Packets::Batch(batch)).is_err() {
                return Ok(());
            }
        }
        if done {
            let _ = tx.send(Packets::End);
            return Ok(());
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

/// The writer (the caller's thread): steps into `release`, CDRs out.
/// `Ok(true)` once the end was seen and every record written; `Ok(false)`
/// when the dialog thread stopped before the end (a read error).
fn write<W: Write>(
    rx: &Receiver<Steps>,
    back: &Sender<Vec<Step>>,
    release: &mut Release,
    out: &mut CdrOut<W>,
) -> std::io::Result<bool> {
    let mut emit = |rec: &sip_fsm::CallRecord| out.record(rec);
    while let Ok(msg) = rx.recv() {
        match msg {
            Steps::Batch(mut steps) => {
                for step in steps.drain(..) {
                    match step {
                        Step::Record(r) => release.push(r),
                        Step::Clock(now) => release.release(now, &mut emit)?,
                    }
                }
                let _ = back.send(steps);
            }
            Steps::End => {
                release.finish(&mut emit)?;
                return Ok(true);
            }
        }
    }
    Ok(false)
}
