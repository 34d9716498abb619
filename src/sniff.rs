//! `accurate sniff`: one line per SIP message AccuRate sees.
//!
//! Live sources run as tokio tasks feeding one channel; the printing runs on
//! a thread of its own, so a stdout nobody reads (a stuck pipe) can block
//! only that thread: the main loop still sees SIGINT/SIGTERM, `--duration`
//! and `--count`, stops the sources and prints the counters.

use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;
use capture::io::{HepBind, HepListener, LiveConfig, PcapSource, ReadStatus, run_live};
use capture::{SipPacket, Stats};
use tokio::sync::{mpsc, oneshot, watch};

use crate::config::Config;
use crate::exit::Failure;
use crate::input::{cut_short, open_capture};
use crate::output::{PacketFormat, PacketPrinter, print_stats};

/// The longest `--duration`: about 100 years, far inside what the clock
/// can add without overflowing.
const MAX_DURATION_SECS: u64 = 100 * 366 * 24 * 3600;
/// Batches queued for the printing thread.
const PRINT_QUEUE: usize = 4;
/// After a stop request, how long the printing thread may take to write
/// what it holds before `sniff` gives up on a stdout nobody reads.
const PRINT_GRACE: Duration = Duration::from_secs(3);

/// Arguments of `accurate sniff`.
#[derive(Debug, clap::Args)]
pub(crate) struct SniffArgs {
    /// pcap or pcapng files to read, in order.
    #[arg(value_name = "FILE")]
    files: Vec<PathBuf>,
    /// Capture live on this interface (needs root or CAP_NET_RAW).
    #[arg(long, short = 'i', value_name = "IFACE")]
    interface: Option<String>,
    /// BPF filter for the live capture or the files, e.g. 'udp port 5060'
    /// ('not port 9060' leaves out the HEP copies in a capture).
    #[arg(long, short = 'f', value_name = "BPF")]
    filter: Option<String>,
    /// Listen for HEP: udp:IP:PORT or tcp:IP:PORT; repeat for several.
    #[arg(long = "hep", value_name = "PROTO:IP:PORT")]
    hep: Vec<HepBind>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = PacketFormat::Table)]
    format: PacketFormat,
    /// Stop after this many SIP messages.
    #[arg(long, value_name = "N")]
    count: Option<u64>,
    /// Stop after this many seconds (live and HEP sources).
    #[arg(long, value_name = "SECONDS",
          value_parser = clap::value_parser!(u64).range(0..=MAX_DURATION_SECS))]
    duration: Option<u64>,
}

/// Runs `accurate sniff`.
pub(crate) fn run(mut args: SniffArgs, config: Option<&Path>) -> anyhow::Result<()> {
    let cfg = Config::load_or_default(config)?;
    if args.files.is_empty() && args.interface.is_none() && args.hep.is_empty() {
        // No source on the command line: the config's sources.
        for l in &cfg.hep.listen {
            args.hep.push(l.parse()?);
        }
        if let Some(live) = &cfg.live {
            args.interface = Some(live.interface.clone());
            args.filter.clone_from(&live.filter);
        }
    }
    let live = args.interface.is_some() || !args.hep.is_empty();
    anyhow::ensure!(
        live || !args.files.is_empty(),
        "nothing to sniff: give capture files, --interface or --hep (or [hep] listen / [live] in the config)"
    );
    anyhow::ensure!(
        !live || args.files.is_empty(),
        "capture files cannot be combined with --interface or --hep"
    );
    if live {
        sniff_live(args, &cfg)
    } else {
        let printer = PacketPrinter::new(BufWriter::new(io::stdout().lock()), args.format);
        sniff_files(&args, &cfg, printer)
    }
}

fn sniff_files(
    args: &SniffArgs,
    cfg: &Config,
    mut printer: PacketPrinter<impl io::Write>,
) -> anyhow::Result<()> {
    let mut total = Stats::default();
    let mut printed = 0u64;
    let mut out = Vec::with_capacity(1024);
    let mut cut = None;
    'files: for path in &args.files {
        let mut src = open_capture(path, args.filter.as_deref(), cfg.decoder_config())?;
        loop {
            out.clear();
            let status = src
                .read_batch(1024, &mut out)
                .with_context(|| format!("reading {}", path.display()))?;
            for p in &out {
                if args.count.is_some_and(|c| printed >= c) {
                    total.merge(&src.stats());
                    break 'files;
                }
                printer.print(p).map_err(Failure::Output)?;
                printed += 1;
            }
            match status {
                ReadStatus::Full | ReadStatus::Idle => {}
                ReadStatus::End => break,
                // Everything before the cut is printed; the next files
                // too; the cut is reported at the end (exit 65).
                ReadStatus::CutShort => {
                    cut = cut.or_else(|| Some(cut_short(path, src.cut_short())));
                    break;
                }
            }
        }
        total.merge(&src.stats());
    }
    printer.flush().map_err(Failure::Output)?;
    print_stats("sniff", &total, &[]);
    match cut {
        Some(c) => Err(c.into()),
        None => Ok(()),
    }
}

/// Why the live main loop stopped.
enum Stop {
    /// SIGINT, SIGTERM or `--duration`: stop printing now.
    Asked,
    /// Every source ended: print what is queued.
    SourcesEnded,
    /// The printing thread ended (`--count` reached, or stdout failed).
    Printer(io::Result<()>),
}

fn sniff_live(args: SniffArgs, cfg: &Config) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the tokio runtime")?;
    rt.block_on(async move {
        let (tx, mut rx) = mpsc::channel::<Vec<SipPacket>>(1024);
        let (stop_tx, stop_rx) = watch::channel(false);
        // Handlers first: a supervisor may send SIGTERM as soon as it reads
        // a `listening on` line, and the default action would kill us
        // without the counters.
        let mut int = signal(tokio::signal::unix::SignalKind::interrupt())?;
        let mut term = signal(tokio::signal::unix::SignalKind::terminate())?;
        let mut listeners = Vec::new();
        // Every listener and the live tap's decoder charge the config's one
        // reassembly byte budget (`Config::byte_budget`).
        let lcfg = cfg.listener_config();
        for b in &args.hep {
            let l = HepListener::bind(*b, &lcfg)
                .await
                .map_err(|e| Failure::Bind(b.to_string(), e))?;
            say(&format!("listening on {}", l.bound()));
            listeners.push(tokio::spawn(l.run(
                lcfg.clone(),
                tx.clone(),
                stop_rx.clone(),
            )));
        }
        let mut live_task = None;
        if let Some(iface) = &args.interface {
            let mut lc = LiveConfig {
                interface: iface.clone(),
                filter: args.filter.clone(),
                ..LiveConfig::default()
            };
            if let Some(live) = &cfg.live {
                lc.snaplen = live.snaplen;
                lc.promisc = live.promisc;
            }
            let src = PcapSource::open_live(&lc, cfg.decoder_config())
                .map_err(|e| Failure::Live(iface.clone(), e))?;
            say(&format!("capturing on {iface}"));
            live_task = Some(tokio::spawn(run_live(
                src,
                256,
                tx.clone(),
                stop_rx.clone(),
            )));
        }
        drop(tx);

        let deadline = args
            .duration
            .and_then(|s| tokio::time::Instant::now().checked_add(Duration::from_secs(s)));

        let (print_tx, print_rx) = mpsc::channel::<Vec<SipPacket>>(PRINT_QUEUE);
        let halt = Arc::new(AtomicBool::new(false));
        let (done_tx, mut done_rx) = oneshot::channel();
        {
            let (format, count, halt) = (args.format, args.count, Arc::clone(&halt));
            std::thread::Builder::new()
                .name("sniff-print".into())
                .spawn(move || {
                    let _ = done_tx.send(print_batches(print_rx, format, count, &halt));
                })
                .context("cannot start the printing thread")?;
        }

        let stop = loop {
            tokio::select! {
                biased;
                _ = int.recv() => break Stop::Asked,
                _ = term.recv() => break Stop::Asked,
                _ = sleep_until(deadline) => break Stop::Asked,
                r = &mut done_rx => break Stop::Printer(r.unwrap_or(Ok(()))),
                more = forward(&mut rx, &print_tx) => if !more { break Stop::SourcesEnded },
            }
        };

        // Stop the sources; closing the channel also frees any of them
        // waiting for room in it.
        let _ = stop_tx.send(true);
        rx.close();
        drop(print_tx);
        let mut total = Stats::default();
        for l in listeners {
            if let Ok(s) = l.await {
                total.merge(&s);
            }
        }
        let mut extra = Vec::new();
        let mut failed = None;
        if let Some(t) = live_task {
            match t.await {
                Ok(Ok(r)) => {
                    total.merge(&r.stats);
                    extra.push(("kernel_drops", u64::from(r.kernel_drops)));
                }
                Ok(Err(e)) => {
                    let iface = args.interface.clone().unwrap_or_default();
                    failed = Some(Failure::Live(iface, e).into());
                }
                Err(e) => failed = Some(anyhow::Error::new(e).context("live capture task failed")),
            }
        }

        let printed = match stop {
            Stop::Printer(r) => r,
            Stop::SourcesEnded => done_rx.await.unwrap_or(Ok(())),
            Stop::Asked => {
                halt.store(true, Ordering::Relaxed);
                match tokio::time::timeout(PRINT_GRACE, done_rx).await {
                    Ok(r) => r.unwrap_or(Ok(())),
                    // The thread is stuck in a write nobody reads; it is
                    // left behind and ends with the process.
                    Err(_) => Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "stdout is not being read; stopped without writing everything",
                    )),
                }
            }
        };
        print_stats("sniff", &total, &extra);
        if let Some(e) = failed {
            return Err(e);
        }
        printed.map_err(Failure::Output)?;
        Ok(())
    })
}

/// Moves one batch from the sources to the printing thread; false once
/// either side is gone.
async fn forward(
    rx: &mut mpsc::Receiver<Vec<SipPacket>>,
    print: &mpsc::Sender<Vec<SipPacket>>,
) -> bool {
    match rx.recv().await {
        Some(b) => print.send(b).await.is_ok(),
        None => false,
    }
}

/// The printing thread: prints batches until the channel closes, `count`
/// messages are printed, or `halt` is set (checked before each message).
fn print_batches(
    mut rx: mpsc::Receiver<Vec<SipPacket>>,
    format: PacketFormat,
    count: Option<u64>,
    halt: &AtomicBool,
) -> io::Result<()> {
    let mut printer = PacketPrinter::new(BufWriter::new(io::stdout().lock()), format);
    let mut printed = 0u64;
    while let Some(batch) = rx.blocking_recv() {
        for p in &batch {
            if halt.load(Ordering::Relaxed) || count.is_some_and(|c| printed >= c) {
                return printer.flush();
            }
            printer.print(p)?;
            printed += 1;
        }
        if count.is_some_and(|c| printed >= c) {
            return printer.flush();
        }
        if rx.is_empty() {
            printer.flush()?;
        }
    }
    printer.flush()
}

fn signal(kind: tokio::signal::unix::SignalKind) -> anyhow::Result<tokio::signal::unix::Signal> {
    tokio::signal::unix::signal(kind).context("cannot install a signal handler")
}

/// A line on stderr; never panics (unlike `eprintln!`).
fn say(line: &str) {
    let _ = writeln!(io::stderr(), "{line}");
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}
