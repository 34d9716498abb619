//! `accurate replay`: one CDR per call attempt from capture files.
//!
//! Capture files are read in order as one stream: frames become
//! [`SipPacket`](capture::SipPacket)s (raw SIP and HEP copies alike), the dialog machine follows
//! the calls with the packet time as its clock, and every finished attempt
//! becomes a CGRateS-shaped [`Cdr`](sessions::Cdr), written in end-time order.
//!
//! Time: the dialog machine is sans-IO; `now` is the timestamp of the packet
//! just read (its own timers fire inside `handle` once `now` passes them).
//! At the end of the input the clock is moved to the end of time, so every
//! call still open ends by its own rule: an unanswered one as `timeout`
//! (408) at `invite-timeout`, an answered one as `session-expired` at its
//! last refresh plus Session-Expires, or else as `max-duration` at its answer
//! plus `max-duration-secs` (the rule is in `ExtraFields.EndReason`). The
//! input is thus replayed the same way whenever and however fast it runs.
//!
//! Threads: with `--threads 2` (the default on a machine with two cores
//! or more) the main thread reads and decodes the files and orders, rates
//! and writes the CDRs, and a second thread follows the dialogs; batches
//! of packets and of finished calls go between them through bounded
//! channels and come back to be reused. Each stage sees the same inputs in
//! the same order as on one thread, so the output is the same byte for
//! byte (`tests/replay_threads.rs`).
//!
//! Modules: [`merge`] (files as one timeline), [`pipeline`] (packets to
//! ordered CDRs, in two halves; reusable by a live caller), [`threads`],
//! [`rater`], [`summary`]; the CDR writers are in [`crate::output`].

pub(crate) mod merge;
mod pipeline;
mod rater;
pub(crate) mod summary;
mod threads;

use std::io::{self, BufWriter, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use capture::Timestamp;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use sessions::{CdrOptions, EndTimeOrder};
use sip_fsm::{CallRecord, DialogMachine};

use merge::Merge;
use pipeline::{Dialogs, Pipeline, Release};
use rater::Rater;
use summary::Summary;

use crate::args::{Rounding, parse_timestamp};
use crate::config::Config;
use crate::exit::Failure;
use crate::output::{CdrFormat, CdrWriter};

/// Below this total file size no progress bar is drawn.
const PROGRESS_MIN_BYTES: u64 = 16 << 20;

/// Arguments of `accurate replay`.
#[derive(Debug, clap::Args)]
pub(crate) struct ReplayArgs {
    /// pcap or pcapng files, read in order as one stream.
    #[arg(value_name = "FILE", required = true)]
    files: Vec<PathBuf>,
    /// BPF filter applied to the files, e.g. 'not port 9060' (raw SIP only)
    /// or 'port 9060' (the HEP copies only).
    #[arg(long, short = 'f', value_name = "BPF")]
    filter: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = CdrFormat::Table)]
    format: CdrFormat,
    /// Only print CDRs of calls that ended at or after this time (RFC 3339,
    /// e.g. 2026-11-23T12:54:00Z); earlier traffic is still followed.
    #[arg(long, value_name = "RFC3339", value_parser = parse_timestamp)]
    since: Option<Timestamp>,
    /// Seconds a finished call waits to be put in end-time order. The
    /// default (reorder window + the longer of invite-timeout and
    /// retry-wait) gives exact order; a shorter one prints sooner.
    #[arg(long, value_name = "SECONDS")]
    order_window: Option<u64>,
    /// Never draw the progress bar (it is drawn only when stderr is a
    /// terminal and the files are large).
    #[arg(long)]
    no_progress: bool,
    /// Rate answered calls against this CGRateS tariff plan folder and fill
    /// `Cost` (-1 and `ExtraFields.RatingError` when a call cannot be rated;
    /// 0 for unanswered calls).
    #[arg(long, value_name = "DIR")]
    tariffplan: Option<PathBuf>,
    /// With --tariffplan: exact (round once at the end) or cgrates
    /// (reproduce CGRateS's rounding to the digit).
    #[arg(long, value_enum, default_value_t = Rounding::Exact)]
    rounding: Rounding,
    /// 1: read, follow dialogs and write on one thread. 2 or more: read,
    /// decode, order and write CDRs on one thread, follow dialogs on a
    /// second (same output). Default: 2 when the machine has two cores or
    /// more, else 1.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    threads: Option<u32>,
}

/// CDRs out: rating (if any), the writer, the totals.
pub(crate) struct CdrOut<W: Write> {
    writer: CdrWriter<W>,
    opts: CdrOptions,
    rater: Option<Rater>,
    summary: Summary,
}

impl<W: Write> CdrOut<W> {
    /// Writes the CDR of one finished call.
    pub(crate) fn record(&mut self, rec: &CallRecord) -> io::Result<()> {
        match &self.rater {
            None => {
                self.summary.add_record(rec);
                self.writer.write_record(rec, &self.opts)
            }
            Some(r) => {
                let mut cdr = sessions::Cdr::from_record(rec, &self.opts);
                r.rate(&mut cdr);
                self.summary.add(&cdr);
                self.writer.write(&cdr)
            }
        }
    }
}

/// Runs `accurate replay`.
pub(crate) fn run(args: ReplayArgs, config: Option<&Path>) -> anyhow::Result<()> {
    let cfg = Config::load_or_default(config)?;
    let dialog = cfg.dialog_config();
    let window = args
        .order_window
        .map(Duration::from_secs)
        .unwrap_or_else(|| EndTimeOrder::window_for(&dialog));
    let machine = DialogMachine::new(dialog).context("cannot set up the dialog machine")?;
    let rater = args
        .tariffplan
        .as_deref()
        .map(|dir| Rater::load(dir, args.rounding, &cfg.load_policy()))
        .transpose()?;
    let mut out = CdrOut {
        writer: CdrWriter::new(BufWriter::new(io::stdout().lock()), args.format),
        opts: CdrOptions::default(),
        rater,
        summary: Summary::default(),
    };

    let sizes: Vec<u64> = args
        .files
        .iter()
        .map(|p| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0))
        .collect();
    let total: u64 = sizes.iter().sum();
    let progress = (!args.no_progress && io::stderr().is_terminal() && total >= PROGRESS_MIN_BYTES)
        .then(|| progress_bar(total));
    let threads = args.threads.unwrap_or_else(|| {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        if cores >= 2 { 2 } else { 1 }
    });

    // Several files are merged by packet time, as mergecap would, so the
    // result does not depend on the order they are named in (and captures
    // taken at several points at once interleave correctly).
    let mut merge = Merge::open(&args.files, args.filter.as_deref(), &cfg)?;
    let (dialog, before_since) = if threads > 1 {
        let mut release = Release::new(window);
        release.set_since(args.since);
        let dialogs = Dialogs::new(machine);
        let dialogs = threads::run(
            &mut merge,
            dialogs,
            &mut release,
            &mut out,
            progress.as_ref(),
            total,
        )?;
        (dialogs.stats().clone(), release.before_since())
    } else {
        let mut pipeline = Pipeline::new(machine, window, CdrOptions::default());
        pipeline.set_since(args.since);
        let mut write = |rec: &CallRecord| out.record(rec);
        let mut batch = Vec::with_capacity(merge::BATCH);
        loop {
            batch.clear();
            merge.next_batch(&mut batch)?;
            for p in &batch {
                pipeline
                    .packet_records(p, &mut write)
                    .map_err(Failure::Output)?;
            }
            if let Some(pb) = &progress {
                pb.set_position(merge.bytes_read().min(total));
            }
            if batch.is_empty() && merge.done() {
                break;
            }
        }
        // A file cut short ends like the others: the calls still open end
        // by their rule, every held CDR and the summary are printed, then
        // the cut is reported (exit 65).
        pipeline
            .finish_records(&mut write)
            .map_err(Failure::Output)?;
        (pipeline.dialog_stats().clone(), pipeline.before_since())
    };
    let capture = merge.stats();
    out.writer.flush().map_err(Failure::Output)?;
    let mut summary = out.summary;
    summary.before_since = before_since;
    summary.dialog = dialog;
    if let Some(pb) = progress {
        pb.finish_and_clear();
    }
    summary.print(&capture);
    match merge.cut_short() {
        Some(cut) => Err(cut.into()),
        None => Ok(()),
    }
}

fn progress_bar(total: u64) -> ProgressBar {
    let pb = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template(
        "{spinner} [{bar:40}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
    ) {
        pb.set_style(style.progress_chars("=> "));
    }
    pb
}
