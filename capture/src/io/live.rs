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
use crate::{CaptureError, SipPacket, Stats};

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
    mut src: PcapSource,
    batch: usize,
    tx: mpsc::Sender<Vec<SipPacket>>,
    mut shutdown: watch::Receiver<bool>,
) -> Result<LiveReport, CaptureError> {
    let fd = src.live_fd().ok_or_else(|| CaptureError::Pcap {
        what: "run_live".into(),
        reason: "not a live source".into(),
    })?;
    // `with_interest` is deprecated in favour of an `unsafe` constructor
    // (the crate forbids unsafe). Its soundness condition holds here: `afd`
    // is declared after `src`, so it is dropped (deregistered) before `src`
    // closes the fd, on every return path.
    #[allow(deprecated)]
    let afd = AsyncFd::with_interest(Fd(fd), Interest::READABLE)?;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let mut out = Vec::new();
        tokio::select! {
            biased;
            _ = shut(&mut shutdown) => break,
            r = afd.readable() => {
                let mut guard = r?;
                loop {
                    match src.read_batch(batch, &mut out)? {
                        ReadStatus::Full if out.len() < batch => continue,
                        ReadStatus::Full => break,
                        ReadStatus::Idle => {
                            guard.clear_ready();
                            break;
                        }
                        ReadStatus::End => return Ok(report(&mut src)),
                    }
                }
            }
            _ = tick.tick() => src.handle_timeout(now(), &mut out),
        }
        if !out.is_empty() && tx.send(out).await.is_err() {
            break;
        }
    }
    let mut out = Vec::new();
    src.finish(&mut out);
    if !out.is_empty() {
        let _ = tx.send(out).await;
    }
    Ok(report(&mut src))
}

fn report(src: &mut PcapSource) -> LiveReport {
    LiveReport {
        kernel_drops: src.kernel_drops().unwrap_or(0),
        stats: src.stats(),
    }
}
