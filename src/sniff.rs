//! `accurate sniff`: one line per SIP message AccuRate sees.

use std::io::{self, BufWriter};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use capture::io::{HepBind, HepListener, LiveConfig, PcapSource, ReadStatus};
use capture::{SipPacket, Stats};
use tokio::sync::{mpsc, watch};

use crate::config::Config;
use crate::output::{PacketFormat, PacketPrinter, print_stats};

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
    #[arg(long, value_name = "SECONDS")]
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
    let printer = PacketPrinter::new(BufWriter::new(io::stdout().lock()), args.format);
    if live {
        sniff_live(args, &cfg, printer)
    } else {
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
    'files: for path in &args.files {
        let mut src =
            PcapSource::open_file_filtered(path, args.filter.as_deref(), cfg.decoder_config())?;
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
                printer.print(p)?;
                printed += 1;
            }
            if status == ReadStatus::End {
                break;
            }
        }
        total.merge(&src.stats());
    }
    printer.flush()?;
    print_stats("sniff", &total, &[]);
    Ok(())
}

fn sniff_live(
    args: SniffArgs,
    cfg: &Config,
    mut printer: PacketPrinter<impl io::Write>,
) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the tokio runtime")?;
    rt.block_on(async move {
        let (tx, mut rx) = mpsc::channel::<Vec<SipPacket>>(1024);
        let (stop_tx, stop_rx) = watch::channel(false);
        let mut listeners = Vec::new();
        // One settings value for all listeners: they share its byte budget.
        let lcfg = cfg.listener_config();
        for b in &args.hep {
            let l = HepListener::bind(*b, &lcfg)
                .await
                .with_context(|| format!("cannot listen on {b}"))?;
            eprintln!("listening on {}", l.bound());
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
            let src = PcapSource::open_live(&lc, cfg.decoder_config())?;
            eprintln!("capturing on {iface}");
            live_task = Some(tokio::spawn(capture::io::run_live(
                src,
                256,
                tx.clone(),
                stop_rx.clone(),
            )));
        }
        drop(tx);

        let deadline = args
            .duration
            .map(|s| tokio::time::Instant::now() + Duration::from_secs(s));
        let mut printed = 0u64;
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .context("cannot install a SIGTERM handler")?;
        'main: loop {
            let batch = tokio::select! {
                b = rx.recv() => match b { Some(b) => b, None => break },
                _ = tokio::signal::ctrl_c() => break,
                _ = term.recv() => break,
                _ = sleep_until(deadline) => break,
            };
            for p in &batch {
                printer.print(p)?;
                printed += 1;
                if args.count.is_some_and(|c| printed >= c) {
                    break 'main;
                }
            }
            if rx.is_empty() {
                printer.flush()?;
            }
        }
        printer.flush()?;
        let _ = stop_tx.send(true);
        let mut total = Stats::default();
        for l in listeners {
            if let Ok(s) = l.await {
                total.merge(&s);
            }
        }
        let mut extra = Vec::new();
        if let Some(t) = live_task {
            match t.await {
                Ok(Ok(r)) => {
                    total.merge(&r.stats);
                    extra.push(("kernel_drops", u64::from(r.kernel_drops)));
                }
                Ok(Err(e)) => return Err(e).context("live capture failed"),
                Err(e) => return Err(e).context("live capture task failed"),
            }
        }
        print_stats("sniff", &total, &extra);
        Ok(())
    })
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}
