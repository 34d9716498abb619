//! The live tap's task: poll the non-blocking libpcap handle's fd with
//! tokio, drain it on each wake-up, and run reassembly timeouts by the wall
//! clock once a second so an idle interface still releases what it holds.

use std::os::fd::{AsRawFd, RawFd};
use std::time::Duration;

use tokio::io::Interest;
use tokio::io::unix::AsyncFd;
use tokio::sync::{mpsc, watch};

use super::hep_listener::{now, shut};
use super::pcap_source::{PcapSource, ReadStatus};
use crate::{CaptureError, SharedStats, SipPacket, Stats, StatsPublisher};

/// Borrowed view of the capture fd, for readiness only; the fd stays owned
/// (and open) by the `PcapSource` that lives as long as this does.
struct Fd(RawFd);

impl AsRawFd for Fd {
    fn as_raw_fd(&self) -> RawFd {
        self.0
    }
}

/// What a live tap saw when it stopped.
#[derive(Clone, Debug, Default)]
pub struct LiveReport {
    /// Decoder counters.
    pub stats: Stats,
    /// Frames the kernel dropped before libpcap could read them.
    pub kernel_drops: u32,
}

/// Reads a live source until `shutdown`, sending SIP packets in batches.
pub async fn run_live(
    src: PcapSource,
    batch: usize,
    tx: mpsc::Sender<Vec<SipPacket>>,
    shutdown: watch::Receiver<bool>,
) -> Result<LiveReport, CaptureError> {
    run_live_shared(src, batch, tx, shutdown, None).await
}

/// [`run_live`], adding the decoder's counters to `shared` once a second
/// and at the end, for a server to read while it runs.
pub async fn run_live_shared(
    mut src: PcapSource,
    batch: usize,
    tx: mpsc::Sender<Vec<SipPacket>>,
    mut shutdown: watch::Receiver<bool>,
    shared: Option<SharedStats>,
) -> Result<LiveReport, CaptureError> {
    let mut publisher = StatsPublisher::new(shared);
    let r = live_loop(&mut src, batch, &tx, &mut shutdown, &mut publisher).await;
    publisher.publish(&src.stats());
    r
}

async fn live_loop(
    src: &mut PcapSource,
    batch: usize,
    tx: &mpsc::Sender<Vec<SipPacket>>,
    shutdown: &mut watch::Receiver<bool>,
    publisher: &mut StatsPublisher,
) -> Result<LiveReport, CaptureError> {
    let fd = src.live_fd().ok_or_else(|| CaptureError::Pcap {
        what: "run_live".into(),
        reason: "not a live source".into(),
    })?;
    // `with_interest` is deprecated in favour of an `unsafe` constructor
    // (the crate forbids unsafe). Its soundness condition holds here: `afd`
    // lives in this function and `src` (borrowed) outlives it, so `afd` is
    // dropped (deregistered) before `src` closes the fd, on every path.
    #[allow(deprecated)]
    let afd = AsyncFd::with_interest(Fd(fd), Interest::READABLE)?;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let mut out = Vec::new();
        tokio::select! {
            biased;
            _ = shut(shutdown) => break,
            r = afd.readable() => {
                let mut guard = r?;
                match drain(batch, &mut out, |o| src.read_batch(batch, o))? {
                    Drained::Idle => guard.clear_ready(),
                    // Still readable: the next turn of the loop comes
                    // straight back here, after checking for shutdown.
                    Drained::More => {}
                    Drained::End => return Ok(report(src)),
                }
            }
            _ = tick.tick() => {
                src.handle_timeout(now(), &mut out);
                publisher.publish(&src.stats());
            }
        }
        if !out.is_empty() {
            // A consumer that stops taking batches must not keep the tap
            // from seeing shutdown.
            tokio::select! {
                biased;
                _ = shut(shutdown) => break,
                r = tx.send(out) => if r.is_err() { break },
            }
        }
    }
    let mut out = Vec::new();
    src.finish(&mut out);
    if !out.is_empty() {
        let _ = tx.try_send(out);
    }
    Ok(report(src))
}

/// Reads per wake-up, at most, in `read_batch` calls: under sustained
/// traffic that never yields a SIP message (or never leaves the fd idle),
/// the task still returns to its `select!` to see shutdown and the tick.
const ROUNDS_PER_WAKEUP: usize = 8;

/// How one wake-up's reading ended.
#[derive(Debug, PartialEq, Eq)]
enum Drained {
    /// Nothing more to read now: wait for readiness again.
    Idle,
    /// A batch is full or the round budget is spent; frames may be waiting.
    More,
    /// The source ended.
    End,
}

/// Reads until `out` holds a batch, the source is idle, or
/// [`ROUNDS_PER_WAKEUP`] reads were made.
fn drain(
    batch: usize,
    out: &mut Vec<SipPacket>,
    mut read: impl FnMut(&mut Vec<SipPacket>) -> Result<ReadStatus, CaptureError>,
) -> Result<Drained, CaptureError> {
    for _ in 0..ROUNDS_PER_WAKEUP {
        match read(out)? {
            ReadStatus::Full if out.len() < batch => {}
            ReadStatus::Full => return Ok(Drained::More),
            ReadStatus::Idle => return Ok(Drained::Idle),
            ReadStatus::End | ReadStatus::CutShort => return Ok(Drained::End),
        }
    }
    Ok(Drained::More)
}

fn report(src: &mut PcapSource) -> LiveReport {
    LiveReport {
        kernel_drops: src.kernel_drops().unwrap_or(0),
        stats: src.stats(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Regression: a tap under sustained traffic that is never SIP (every
    /// read fills its frame budget, nothing comes out) read forever in one
    /// wake-up and never looked at shutdown again.
    #[test]
    fn sustained_non_sip_traffic_still_yields() {
        let mut calls = 0u32;
        let mut out = Vec::new();
        let r = drain(256, &mut out, |_| {
            calls += 1;
            assert!(calls < 10_000, "drain never returned to the select loop");
            Ok(ReadStatus::Full)
        });
        assert_eq!(r.unwrap(), Drained::More);
        assert!(out.is_empty());
        assert_eq!(calls as usize, ROUNDS_PER_WAKEUP);
    }

    #[test]
    fn idle_and_end_stop_the_wakeup() {
        let mut out = Vec::new();
        assert_eq!(
            drain(4, &mut out, |_| Ok(ReadStatus::Idle)).unwrap(),
            Drained::Idle
        );
        assert_eq!(
            drain(4, &mut out, |_| Ok(ReadStatus::CutShort)).unwrap(),
            Drained::End
        );
    }
}
