//! Capture inside `accurate serve`: the HEP listeners and the live tap,
//! started as `sniff` starts them (one mpsc of packet batches, the shutdown
//! watch), and the dialog task that follows every call in live time.
//!
//! **Live time.** The dialog task owns the [`DialogMachine`] (configured as
//! `replay` configures it: `[dialog]` with `[mapping]`) and hands it each
//! packet with `now` = the wall-clock time the batch was received, never
//! the packet's own stamp. That is how the machine knows it is live (see
//! its clock rule): a stamp more than `max-clock-jump-secs` from the
//! receive time takes the receive time (`clock_stamp_corrected`), so a
//! capture agent whose clock is days ahead cannot move the stream clock
//! and end other agents' calls early. Timers fire with no packets: the
//! task sleeps until [`DialogMachine::poll_timeout`] (at most
//! [`MAX_SLEEP`]) and calls [`DialogMachine::handle_timeout`] with the
//! wall clock, so a call whose BYE never comes ends by its rule (Timer C,
//! session timer, `max-duration-secs`).
//!
//! **Events.** Every [`DialogEvent`] the machine emits goes, in order, to
//! the bounded `mpsc::Sender<Event>` given to [`start`]; when it is
//! full the dialog task waits (each wait counted as `event_waits`). An
//! Attempt, Answer or Update goes with the call's [`DialogSnapshot`] (taken here:
//! only this task owns the machine), which the session driver saves so a
//! restart can give it back to [`start`] ([`DialogMachine::restore`]
//! before any packet). [`feed_sessions`] is the consumer: it hands each
//! event to the session driver.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use ::capture::io::{HepBind, HepListener, LiveConfig, LiveReport, PcapSource, run_live_shared};
use ::capture::{CaptureError, SharedStats, SipPacket, Stats, Timestamp};
use anyhow::Context;
use sip_fsm::{DialogEvent, DialogMachine, DialogSnapshot};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::config::Config;
use crate::exit::Failure;

/// Packet batches queued between the sources and the dialog task.
const PACKET_QUEUE: usize = 1024;
/// A dialog event, with the call's snapshot on Attempt, Answer and Update.
pub(crate) type Event = (DialogEvent, Option<DialogSnapshot>);

/// Dialog events queued for their consumer.
pub(crate) const EVENT_QUEUE: usize = 4096;
/// The longest the dialog task sleeps without looking at the clock: the
/// machine asks to be ticked at least every `max-clock-jump-secs`, and a
/// wall clock that is stepped is noticed within this.
pub(crate) const MAX_SLEEP: Duration = Duration::from_secs(1);

/// The capture options of `accurate serve` (the same as `sniff`'s).
#[derive(Debug, Default, clap::Args)]
pub(crate) struct CaptureArgs {
    /// Capture live on this interface (needs root or CAP_NET_RAW) and
    /// follow its calls [default: `[live] interface`].
    #[arg(long, short = 'i', value_name = "IFACE")]
    interface: Option<String>,
    /// BPF filter for the live capture, e.g. 'udp port 5060' [default:
    /// `[live] filter`].
    #[arg(long, short = 'f', value_name = "BPF")]
    filter: Option<String>,
    /// Listen for HEP and follow its calls: udp:IP:PORT or tcp:IP:PORT;
    /// repeat for several [default: `[hep] listen`].
    #[arg(long = "hep", value_name = "PROTO:IP:PORT")]
    hep: Vec<HepBind>,
}

impl CaptureArgs {
    /// Fills in the config's sources when the command line names none
    /// (as `sniff` does; a `--filter` alone replaces `[live] filter`).
    ///
    /// # Errors
    /// A bad `[hep] listen` entry, or `--filter` without a live tap.
    pub(crate) fn or_config(mut self, cfg: &Config) -> anyhow::Result<Self> {
        if self.interface.is_none() && self.hep.is_empty() {
            for l in &cfg.hep.listen {
                self.hep.push(l.parse()?);
            }
            if let Some(live) = &cfg.live {
                self.interface = Some(live.interface.clone());
                if self.filter.is_none() {
                    self.filter.clone_from(&live.filter);
                }
            }
        }
        anyhow::ensure!(
            self.filter.is_none() || self.interface.is_some(),
            "--filter is for the live tap: give --interface too (or [live] in the config)"
        );
        Ok(self)
    }

    /// Whether any source is asked for.
    pub(crate) fn any(&self) -> bool {
        self.interface.is_some() || !self.hep.is_empty()
    }
}

/// Dialog event kinds, in the order [`Metrics::events`] counts them.
pub(crate) const EVENT_KINDS: [&str; 5] = ["attempt", "answer", "update", "end", "failed"];

fn event_kind(ev: &DialogEvent) -> usize {
    match ev {
        DialogEvent::Attempt { .. } => 0,
        DialogEvent::Answer { .. } => 1,
        DialogEvent::Update { .. } => 2,
        DialogEvent::End(_) => 3,
        DialogEvent::Failed(_) => 4,
    }
}

/// What capture and the dialog task report while they run (read by
/// `GET /metrics`).
#[derive(Debug, Default)]
pub(crate) struct Metrics {
    /// Whether capture runs at all (the capture metrics are shown only
    /// then).
    pub enabled: AtomicBool,
    /// Every listener's and the live tap's counters, added as they go.
    pub stats: SharedStats,
    /// Calls the machine tracks now (lingering ones included).
    pub live_dialogs: AtomicU64,
    /// Dialog events sent, by [`EVENT_KINDS`].
    pub events: [AtomicU64; 5],
    /// Times the dialog task found the event channel full and waited.
    pub event_waits: AtomicU64,
    /// CDRs made from End/Failed events (counted by [`feed_sessions`]).
    pub cdrs: AtomicU64,
    /// The dialog machine's counters as of its last step.
    pub dialog: Mutex<sip_fsm::Stats>,
}

/// The running capture tasks.
pub(crate) struct Capture {
    listeners: Vec<JoinHandle<Stats>>,
    live: Option<(String, JoinHandle<Result<LiveReport, CaptureError>>)>,
    dialog: JoinHandle<()>,
}

/// Binds the HEP listeners and opens the live tap (printing `listening on
/// udp:IP:PORT` / `capturing on IF` on stderr for each), then starts them
/// and the dialog task, which sends every event to `events`. The calls of
/// `restore` (saved before a restart) are tracked again first. Everything
/// stops when `stop` turns true.
///
/// # Errors
/// A listener cannot bind, the interface cannot be opened, a bad
/// `[dialog]`/`[mapping]`.
pub(crate) async fn start(
    args: &CaptureArgs,
    cfg: &Config,
    metrics: Arc<Metrics>,
    events: mpsc::Sender<Event>,
    stop: &watch::Receiver<bool>,
    restore: &[DialogSnapshot],
) -> anyhow::Result<Capture> {
    let mut machine =
        DialogMachine::new(cfg.dialog_config()).context("cannot set up the dialog machine")?;
    let mut restored = 0;
    for snap in restore {
        match machine.restore(snap) {
            Ok(_) => restored += 1,
            Err(e) => tracing::warn!(error = %e, "cannot restore a saved call"),
        }
    }
    if restored > 0 {
        super::say(&format!("restored {restored} calls in progress"));
    }
    let (tx, rx) = mpsc::channel::<Vec<SipPacket>>(PACKET_QUEUE);
    let mut lcfg = cfg.listener_config();
    lcfg.shared_stats = Some(metrics.stats.clone());
    let mut listeners = Vec::new();
    for b in &args.hep {
        let l = HepListener::bind(*b, &lcfg)
            .await
            .map_err(|e| Failure::Bind(b.to_string(), e))?;
        super::say(&format!("listening on {}", l.bound()));
        listeners.push(tokio::spawn(l.run(lcfg.clone(), tx.clone(), stop.clone())));
    }
    let mut live = None;
    if let Some(iface) = &args.interface {
        let mut lc = LiveConfig {
            interface: iface.clone(),
            filter: args.filter.clone(),
            ..LiveConfig::default()
        };
        if let Some(l) = &cfg.live {
            lc.snaplen = l.snaplen;
            lc.promisc = l.promisc;
        }
        let src = PcapSource::open_live(&lc, cfg.decoder_config())
            .map_err(|e| Failure::Live(iface.clone(), e))?;
        super::say(&format!("capturing on {iface}"));
        let task = tokio::spawn(run_live_shared(
            src,
            256,
            tx.clone(),
            stop.clone(),
            Some(metrics.stats.clone()),
        ));
        live = Some((iface.clone(), task));
    }
    drop(tx);
    metrics.enabled.store(true, Ordering::Relaxed);
    let dialog = tokio::spawn(dialog_task(
        machine,
        rx,
        events,
        metrics,
        stop.clone(),
        wall_clock,
    ));
    Ok(Capture {
        listeners,
        live,
        dialog,
    })
}

impl Capture {
    /// Waits for every task after shutdown was signalled: the capture
    /// counters and extra named counters (the kernel's drops).
    pub(crate) async fn join(self) -> (Stats, Vec<(&'static str, u64)>) {
        let mut total = Stats::default();
        for l in self.listeners {
            if let Ok(s) = l.await {
                total.merge(&s);
            }
        }
        let mut extra = Vec::new();
        if let Some((iface, t)) = self.live {
            match t.await {
                Ok(Ok(r)) => {
                    total.merge(&r.stats);
                    extra.push(("kernel_drops", u64::from(r.kernel_drops)));
                }
                Ok(Err(e)) => tracing::warn!(interface = %iface, error = %e, "live capture failed"),
                Err(e) => tracing::warn!(error = %e, "live capture task failed"),
            }
        }
        let _ = self.dialog.await;
        (total, extra)
    }
}

/// The wall clock as a packet timestamp (the receive time).
pub(crate) fn wall_clock() -> Timestamp {
    let d = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    Timestamp::from_secs_nanos(
        i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        d.subsec_nanos(),
    )
}

/// How long to sleep until the machine's next deadline `next` when the
/// wall clock reads `now`: at most [`MAX_SLEEP`].
fn sleep_for(next: Option<Timestamp>, now: Timestamp) -> Duration {
    match next {
        Some(t) if t <= now => Duration::ZERO,
        Some(t) => t.since(now).min(MAX_SLEEP),
        None => MAX_SLEEP,
    }
}

/// Waits for `stop` to turn true (or its sender to go).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    while !*stop.borrow_and_update() {
        if stop.changed().await.is_err() {
            return;
        }
    }
}

/// The dialog task: owns the machine, feeds it every batch with the
/// receive time (`clock()`), ticks it by the clock when no packet comes,
/// and sends every event to `events` in order (waiting when the channel
/// is full). Ends on `stop`, when every source has ended, or when the
/// consumer is gone. Calls still open at the end get no event.
pub(crate) async fn dialog_task(
    mut machine: DialogMachine,
    mut packets: mpsc::Receiver<Vec<SipPacket>>,
    events: mpsc::Sender<Event>,
    metrics: Arc<Metrics>,
    mut stop: watch::Receiver<bool>,
    clock: fn() -> Timestamp,
) {
    loop {
        let wait = sleep_for(machine.poll_timeout(), clock());
        tokio::select! {
            biased;
            () = stopped(&mut stop) => break,
            batch = packets.recv() => match batch {
                Some(batch) => {
                    // Live: `now` is the receive time, so the machine
                    // trusts it over the packets' stamps (its clock rule).
                    let now = clock();
                    for p in &batch {
                        machine.handle(p, now);
                    }
                }
                None => {
                    tracing::warn!("every capture source has ended: calls are no longer followed");
                    break;
                }
            },
            () = tokio::time::sleep(wait) => machine.handle_timeout(clock()),
        }
        if !send_events(&mut machine, &events, &metrics, &mut stop).await {
            break;
        }
        publish(&machine, &metrics);
    }
    publish(&machine, &metrics);
}

/// Sends every pending event; false when the consumer is gone or
/// shutdown came while waiting for room.
async fn send_events(
    machine: &mut DialogMachine,
    events: &mpsc::Sender<Event>,
    metrics: &Metrics,
    stop: &mut watch::Receiver<bool>,
) -> bool {
    while let Some(ev) = machine.poll_event() {
        let kind = event_kind(&ev);
        // Right after the event, while the machine still has the call.
        let snap = match &ev {
            DialogEvent::Attempt { call }
            | DialogEvent::Answer { call, .. }
            | DialogEvent::Update { call, .. } => machine.snapshot_call(call),
            _ => None,
        };
        let sent = match events.try_send((ev, snap)) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Closed(_)) => false,
            Err(mpsc::error::TrySendError::Full(ev)) => {
                metrics.event_waits.fetch_add(1, Ordering::Relaxed);
                tokio::select! {
                    biased;
                    () = stopped(stop) => return false,
                    r = events.send(ev) => r.is_ok(),
                }
            }
        };
        if !sent {
            return false;
        }
        if let Some(c) = metrics.events.get(kind) {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }
    true
}

fn publish(machine: &DialogMachine, metrics: &Metrics) {
    metrics
        .live_dialogs
        .store(machine.live_dialogs() as u64, Ordering::Relaxed);
    if let Ok(mut d) = metrics.dialog.lock() {
        d.clone_from(machine.stats());
    }
}

/// The consumer of the dialog events: each goes to the session driver
/// (its shard by CGRID), in order; End/Failed are counted as CDRs. Runs
/// on a thread that may block (the shards' queues push back); ends when
/// the dialog task is gone.
pub(crate) fn feed_sessions(
    mut events: mpsc::Receiver<Event>,
    sessions: Arc<super::sessions::Sessions>,
    metrics: Arc<Metrics>,
) {
    while let Some((ev, snap)) = events.blocking_recv() {
        let ends = ev.record().is_some();
        if let Err(e) = sessions.dialog_blocking(ev, snap) {
            tracing::warn!(error = %e, "dialog event dropped");
            continue;
        }
        if ends {
            metrics.cdrs.fetch_add(1, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ::capture::{Source, Transport};

    fn sip(ts: Timestamp, msg: &str) -> SipPacket {
        SipPacket {
            ts,
            src: "10.0.0.1:5060".parse().unwrap(),
            dst: "10.0.0.2:5060".parse().unwrap(),
            transport: Transport::Udp,
            source: Source::Hep,
            capture_id: None,
            node: None,
            correlation_id: None,
            vlan: None,
            payload: bytes::Bytes::from(msg.to_owned()),
        }
    }

    const HEADERS: &str = "Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK-1\r\n\
                           From: <sip:1001@10.0.0.1>;tag=a\r\n";

    fn busy_call(ts: Timestamp, n: u32) -> Vec<SipPacket> {
        let invite = format!(
            "INVITE sip:1002@10.0.0.2 SIP/2.0\r\n{HEADERS}To: <sip:1002@10.0.0.2>\r\n\
             Call-ID: busy-{n}\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"
        );
        let busy = format!(
            "SIP/2.0 486 Busy Here\r\n{HEADERS}To: <sip:1002@10.0.0.2>;tag=b\r\n\
             Call-ID: busy-{n}\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"
        );
        vec![
            sip(ts, &invite),
            sip(ts.saturating_add(Duration::from_millis(1)), &busy),
        ]
    }

    /// A full event channel makes the dialog task wait (counted), and the
    /// events still come out whole and in order; the Failed events need
    /// no packet after the 486 (the reorder window passes by the clock).
    #[tokio::test]
    async fn full_event_channel_waits_and_keeps_order() {
        let machine = DialogMachine::new(sip_fsm::Config::default()).unwrap();
        let (ptx, prx) = mpsc::channel(8);
        let (etx, mut erx) = mpsc::channel(1);
        let (_stop_tx, stop_rx) = watch::channel(false);
        let metrics = Arc::new(Metrics::default());
        let task = tokio::spawn(dialog_task(
            machine,
            prx,
            etx,
            Arc::clone(&metrics),
            stop_rx,
            wall_clock,
        ));
        let now = wall_clock();
        let mut batch = busy_call(now, 1);
        batch.extend(busy_call(now, 2));
        ptx.send(batch).await.unwrap();
        // Nobody reads yet: the task fills the channel and waits.
        let end = std::time::Instant::now() + Duration::from_secs(10);
        while metrics.event_waits.load(Ordering::Relaxed) == 0 {
            assert!(std::time::Instant::now() < end, "never waited");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let mut got = Vec::new();
        while got.len() < 4 {
            let ev = tokio::time::timeout(Duration::from_secs(10), erx.recv())
                .await
                .unwrap()
                .unwrap();
            got.push((event_kind(&ev.0), ev.0.call().call_id().into_owned()));
        }
        assert_eq!(
            got,
            [
                (0, "busy-1".to_owned()),
                (0, "busy-2".to_owned()),
                (4, "busy-1".to_owned()),
                (4, "busy-2".to_owned()),
            ]
        );
        assert_eq!(metrics.events[0].load(Ordering::Relaxed), 2);
        assert_eq!(metrics.events[4].load(Ordering::Relaxed), 2);
        // Every source gone: the task ends.
        drop(ptx);
        tokio::time::timeout(Duration::from_secs(10), task)
            .await
            .unwrap()
            .unwrap();
    }

    #[test]
    fn sleeps_until_the_deadline_at_most_a_second() {
        let now = Timestamp::from_secs_nanos(1_000, 0);
        assert_eq!(sleep_for(None, now), MAX_SLEEP);
        assert_eq!(
            sleep_for(Some(Timestamp::from_secs_nanos(999, 0)), now),
            Duration::ZERO
        );
        assert_eq!(
            sleep_for(Some(Timestamp::from_secs_nanos(1_000, 250_000_000)), now),
            Duration::from_millis(250)
        );
        assert_eq!(
            sleep_for(Some(Timestamp::from_secs_nanos(5_000, 0)), now),
            MAX_SLEEP
        );
    }
}
