//! `accurate replay`: one CDR per call attempt from capture files.
//!
//! Capture files are read in order as one stream: frames become
//! [`SipPacket`]s (raw SIP and HEP copies alike), the dialog machine follows
//! the calls with the packet time as its clock, and every finished attempt
//! becomes a CGRateS-shaped [`Cdr`], written in end-time order.
//!
//! Time: the dialog machine is sans-IO; `now` is the timestamp of the packet
//! just read (its own timers fire inside `handle` once `now` passes them).
//! At the end of the input the clock is moved to the end of time, so every
//! call still open ends by its own rule: an unanswered one as `timeout`
//! (408) at `invite-timeout`, an answered one as `session-expired` at its
//! last refresh plus Session-Expires, or else as `max-duration` at its answer
//! plus `max-duration-secs` (the rule is in `ExtraFields.EndReason`).
//!
//! Order: most records come out of the machine at about their end time, but
//! some later (see [`EndTimeOrder`]); they wait in a min-heap until the clock
//! is past their end time plus a window that covers the latest case, so the
//! output is in end-time order. The input is thus replayed the same way
//! whenever and however fast it runs.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::io::{self, BufWriter, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use capture::io::{PcapSource, ReadStatus};
use capture::{SipPacket, Stats, Timestamp};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use sessions::cdr::rfc3339;
use sessions::{Cdr, CdrOptions, EndTimeOrder};
use sip_fsm::{DialogEvent, DialogMachine, ScanError};

use crate::config::Config;
use crate::output::print_stats;

/// Frames read per batch.
const BATCH: usize = 4096;
/// Below this total file size no progress bar is drawn.
const PROGRESS_MIN_BYTES: u64 = 16 << 20;

/// How `replay` prints CDRs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum CdrFormat {
    /// A readable table.
    Table,
    /// One JSON object per line, CGRateS field names.
    Json,
    /// CSV with a header line of CGRateS field names; `ExtraFields` is one
    /// column holding a JSON object.
    Csv,
}

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
    #[arg(long, value_name = "RFC3339", value_parser = parse_time)]
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
}

/// `--rounding` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Rounding {
    /// Exact decimals, rounded once with the plan's method and decimals.
    Exact,
    /// CGRateS's own rounding (5 decimals per increment).
    Cgrates,
}

fn parse_time(s: &str) -> Result<Timestamp, String> {
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|t| Timestamp::from_secs_nanos(t.timestamp(), t.timestamp_subsec_nanos()))
        .map_err(|e| format!("expected an RFC 3339 time like 2026-11-23T12:54:00Z: {e}"))
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
    let out = CdrWriter::new(BufWriter::new(io::stdout().lock()), args.format);
    let mut replay = Replay::new(machine, window, args.since, CdrOptions::default(), out);
    replay.rater = rater;

    let sizes: Vec<u64> = args
        .files
        .iter()
        .map(|p| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0))
        .collect();
    let total: u64 = sizes.iter().sum();
    let progress = (!args.no_progress && io::stderr().is_terminal() && total >= PROGRESS_MIN_BYTES)
        .then(|| progress_bar(total));

    // Several files are merged by packet time, as mergecap would, so the
    // result does not depend on the order they are named in (and captures
    // taken at several points at once interleave correctly).
    let mut merge = Merge::open(&args.files, args.filter.as_deref(), &cfg)?;
    while let Some(p) = merge.next_packet()? {
        replay.packet(&p)?;
        if let Some(pb) = &progress
            && merge.read % 4096 == 0
        {
            pb.set_position(merge.bytes_read().min(total));
        }
    }
    let capture = merge.stats();
    let summary = replay.finish()?;
    if let Some(pb) = progress {
        pb.finish_and_clear();
    }
    summary.print(&capture);
    Ok(())
}

/// A k-way merge of capture files by packet timestamp.
struct Merge {
    files: Vec<MergeFile>,
    /// The next packet of each file that still has one: (time, file).
    heads: BinaryHeap<Reverse<(Timestamp, usize)>>,
    /// Packets handed out so far.
    read: u64,
}

struct MergeFile {
    path: PathBuf,
    src: PcapSource,
    queue: VecDeque<SipPacket>,
    ended: bool,
}

impl MergeFile {
    /// Makes sure the queue holds a packet unless the file is finished.
    fn fill(&mut self) -> anyhow::Result<()> {
        let mut batch = Vec::with_capacity(BATCH);
        while self.queue.is_empty() && !self.ended {
            batch.clear();
            let status = self
                .src
                .read_batch(BATCH, &mut batch)
                .with_context(|| format!("reading {}", self.path.display()))?;
            self.ended = status == ReadStatus::End;
            self.queue.extend(batch.drain(..));
        }
        Ok(())
    }
}

impl Merge {
    fn open(paths: &[PathBuf], filter: Option<&str>, cfg: &Config) -> anyhow::Result<Self> {
        let mut m = Merge {
            files: Vec::with_capacity(paths.len()),
            heads: BinaryHeap::new(),
            read: 0,
        };
        for (i, path) in paths.iter().enumerate() {
            let src = PcapSource::open_file_filtered(path, filter, cfg.decoder_config())?;
            let mut f = MergeFile {
                path: path.clone(),
                src,
                queue: VecDeque::new(),
                ended: false,
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
    fn next_packet(&mut self) -> anyhow::Result<Option<SipPacket>> {
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

    fn bytes_read(&self) -> u64 {
        self.files.iter().map(|f| f.src.bytes_read()).sum()
    }

    fn stats(&self) -> Stats {
        let mut s = Stats::default();
        for f in &self.files {
            s.merge(&f.src.stats());
        }
        s
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

/// The pipeline after the capture layer: dialogs, ordering, output.
struct Replay<W: Write> {
    machine: DialogMachine,
    order: EndTimeOrder,
    since: Option<Timestamp>,
    opts: CdrOptions,
    out: CdrWriter<W>,
    now: Timestamp,
    summary: Summary,
    rater: Option<Rater>,
}

impl<W: Write> Replay<W> {
    fn new(
        machine: DialogMachine,
        window: Duration,
        since: Option<Timestamp>,
        opts: CdrOptions,
        out: CdrWriter<W>,
    ) -> Self {
        Replay {
            machine,
            order: EndTimeOrder::new(window),
            since,
            opts,
            out,
            now: Timestamp::from_nanos(i64::MIN),
            summary: Summary::default(),
            rater: None,
        }
    }

    /// One packet; its timestamp is the clock.
    fn packet(&mut self, p: &SipPacket) -> io::Result<()> {
        self.now = self.now.max(p.ts);
        self.machine.handle(p, self.now);
        self.drain()?;
        while let Some(rec) = self.order.pop_ready(self.now) {
            self.emit(&rec)?;
        }
        Ok(())
    }

    /// End of input: every open call ends by its rule, every held record
    /// is written.
    fn finish(mut self) -> io::Result<Summary> {
        self.machine.handle_timeout(Timestamp::from_nanos(i64::MAX));
        self.drain()?;
        while let Some(rec) = self.order.pop() {
            self.emit(&rec)?;
        }
        self.out.flush()?;
        self.summary.dialog = self.machine.stats().clone();
        Ok(self.summary)
    }

    fn drain(&mut self) -> io::Result<()> {
        while let Some(ev) = self.machine.poll_event() {
            match ev {
                DialogEvent::End(rec) | DialogEvent::Failed(rec) => self.order.push(rec),
                DialogEvent::Attempt { .. }
                | DialogEvent::Answer { .. }
                | DialogEvent::Update { .. } => {}
            }
        }
        Ok(())
    }

    fn emit(&mut self, rec: &sip_fsm::CallRecord) -> io::Result<()> {
        if self.since.is_some_and(|s| rec.end_time < s) {
            self.summary.before_since += 1;
            return Ok(());
        }
        let mut cdr = Cdr::from_record(rec, &self.opts);
        if let Some(r) = &self.rater {
            r.rate(&mut cdr);
        }
        self.summary.add(&cdr);
        self.out.write(&cdr)
    }
}

/// A loaded tariff plan and the rounding to rate with.
struct Rater {
    plan: rating::TariffPlan,
    mode: rating::RoundingMode,
}

impl Rater {
    fn load(dir: &Path, rounding: Rounding, policy: &rating::LoadPolicy) -> anyhow::Result<Self> {
        // `*asap` timings anchor at load time; the epoch rather than the
        // wall clock keeps a replay the same whenever it runs, and makes
        // `*asap` rates apply to every past call in a capture.
        let opts = rating::LoadOptions {
            loaded_at: chrono::DateTime::UNIX_EPOCH,
        };
        let (plan, report) = rating::TariffPlan::load_dir_with(dir, &opts, policy)
            .with_context(|| format!("loading tariff plan {}", dir.display()))?;
        for w in &report.warnings {
            eprintln!("replay: tariff plan warning: {w}");
        }
        let mode = match rounding {
            Rounding::Exact => rating::RoundingMode::Exact,
            Rounding::Cgrates => rating::RoundingMode::Cgrates,
        };
        Ok(Rater { plan, mode })
    }

    /// Fills `Cost`: the plan's cost of the answered part, 0 for an
    /// unanswered call (nothing to rate), -1 and the reason when the plan
    /// cannot rate it (as CGRateS marks a CDR it failed to rate).
    fn rate(&self, cdr: &mut Cdr) {
        let Some(answer) = cdr.answer_time else {
            cdr.cost = Some(rating::Money::ZERO.amount());
            return;
        };
        let Some(start) = chrono::DateTime::from_timestamp(answer.secs(), answer.subsec_nanos())
        else {
            cdr.set_rating_error("answer time out of range");
            return;
        };
        let mut cd = rating::CallDescriptor::new(&cdr.subject, &cdr.destination, start, cdr.usage);
        cd.tenant = &cdr.tenant;
        cd.category = &cdr.category;
        cd.account = &cdr.account;
        match self.plan.cost(&cd, self.mode) {
            Ok(cc) => cdr.cost = Some(cc.cost.amount().normalize()),
            Err(e) => cdr.set_rating_error(&e.to_string()),
        }
    }
}

/// Totals over the CDRs written.
#[derive(Default)]
struct Summary {
    calls: u64,
    answered: u64,
    usage_ns: u128,
    before_since: u64,
    dialog: sip_fsm::Stats,
}

impl Summary {
    fn add(&mut self, cdr: &Cdr) {
        self.calls += 1;
        if cdr.answered() {
            self.answered += 1;
            self.usage_ns += cdr.usage.as_nanos();
        }
    }

    /// Prints the totals, then the capture counters and the dialog
    /// machine's, one `replay: NAME: VALUE` line each. Integer arithmetic:
    /// the figures do not depend on float rounding.
    fn print(&self, capture: &Stats) {
        let mut e = io::stderr().lock();
        let _ = writeln!(e, "replay: calls: {}", self.calls);
        let _ = writeln!(e, "replay: answered: {}", self.answered);
        // ASR: answered / calls, percent with two decimals.
        let asr = (u128::from(self.answered) * 10_000)
            .checked_div(u128::from(self.calls))
            .unwrap_or(0);
        let _ = writeln!(e, "replay: asr: {}.{:02}%", asr / 100, asr % 100);
        // ACD: mean usage of answered calls, seconds with three decimals.
        let acd_ms = (self.usage_ns / 1_000_000)
            .checked_div(u128::from(self.answered))
            .unwrap_or(0);
        let _ = writeln!(e, "replay: acd: {}.{:03} s", acd_ms / 1000, acd_ms % 1000);
        let total_ms = self.usage_ns / 1_000_000;
        let _ = writeln!(
            e,
            "replay: minutes: {}.{:03}",
            total_ms / 60_000,
            (total_ms % 60_000) / 60
        );
        let _ = writeln!(e, "replay: before_since: {}", self.before_since);
        drop(e);
        let named = dialog_counters(&self.dialog);
        let extra: Vec<(&str, u64)> = named.iter().map(|(k, v)| (k.as_str(), *v)).collect();
        print_stats("replay", capture, &extra);
    }
}

/// The dialog machine's counters by name, `dialog.` first.
fn dialog_counters(s: &sip_fsm::Stats) -> Vec<(String, u64)> {
    let mut v: Vec<(String, u64)> = [
        ("packets", s.packets),
        ("attempts", s.attempts),
        ("answers", s.answers),
        ("updates", s.updates),
        ("ends", s.ends),
        ("failures", s.failures),
        ("late", s.late),
        ("retransmissions", s.retransmissions),
        ("hop_copies", s.hop_copies),
        ("orphan_requests", s.orphan_requests),
        ("orphan_responses", s.orphan_responses),
        ("non_call", s.non_call),
        ("stray_byes", s.stray_byes),
        ("extra_fork_answers", s.extra_fork_answers),
        ("branch_finals", s.branch_finals),
        ("retried_invites", s.retried_invites),
        ("call_id_reuse", s.call_id_reuse),
        ("late_answers", s.late_answers),
        ("reaped", s.reaped),
        ("session_expired", s.session_expired),
        ("max_duration", s.max_duration),
        ("dialogs_dropped", s.dialogs_dropped),
        ("malformed", s.malformed_total()),
    ]
    .into_iter()
    .map(|(k, n)| (format!("dialog.{k}"), n))
    .collect();
    for r in ScanError::ALL {
        v.push((format!("dialog.malformed.{}", r.as_str()), s.malformed(r)));
    }
    v
}

/// The CGRateS field names, in the order `csv` writes them.
const CSV_HEADER: &str = "CGRID,RunID,OriginID,OriginHost,Source,ToR,RequestType,Tenant,\
Category,Account,Subject,Destination,SetupTime,AnswerTime,Usage,Cost,DisconnectCause,ExtraFields";

/// Writes CDRs in one format.
struct CdrWriter<W: Write> {
    out: W,
    format: CdrFormat,
    header_done: bool,
}

impl<W: Write> CdrWriter<W> {
    fn new(out: W, format: CdrFormat) -> Self {
        CdrWriter {
            out,
            format,
            header_done: false,
        }
    }

    fn write(&mut self, c: &Cdr) -> io::Result<()> {
        match self.format {
            CdrFormat::Json => {
                serde_json::to_writer(&mut self.out, c)?;
                self.out.write_all(b"\n")
            }
            CdrFormat::Csv => self.csv(c),
            CdrFormat::Table => self.table(c),
        }
    }

    fn csv(&mut self, c: &Cdr) -> io::Result<()> {
        if !self.header_done {
            self.header_done = true;
            writeln!(self.out, "{CSV_HEADER}")?;
        }
        let extra = serde_json::to_string(&c.extra_fields)?;
        let fields: [&str; 18] = [
            &c.cgrid,
            &c.run_id,
            &c.origin_id,
            &c.origin_host,
            &c.source,
            &c.tor,
            &c.request_type,
            &c.tenant,
            &c.category,
            &c.account,
            &c.subject,
            &c.destination,
            &rfc3339(c.setup_time),
            &c.answer_time.map(rfc3339).unwrap_or_default(),
            &c.usage_nanos().to_string(),
            &c.cost.map(|d| d.to_string()).unwrap_or_default(),
            &c.disconnect_cause,
            &extra,
        ];
        for (i, f) in fields.iter().enumerate() {
            if i > 0 {
                self.out.write_all(b",")?;
            }
            write_csv_field(&mut self.out, f)?;
        }
        self.out.write_all(b"\n")
    }

    fn table(&mut self, c: &Cdr) -> io::Result<()> {
        if !self.header_done {
            self.header_done = true;
            writeln!(
                self.out,
                "{:<27} {:>12} {:<15} {:<10} {:<14} {:<14} {:<9} {:>10} CALL-ID",
                "SETUP (UTC)", "USAGE (s)", "END", "CAUSE", "ACCOUNT", "DESTINATION", "PDD", "COST"
            )?;
        }
        let ns = c.usage_nanos();
        let usage = format!("{}.{:06}", ns / 1_000_000_000, (ns % 1_000_000_000) / 1_000);
        let x = |k: &str| c.extra_fields.get(k).map_or("-", String::as_str);
        writeln!(
            self.out,
            "{:<27} {:>12} {:<15} {:<10} {:<14} {:<14} {:<9} {:>10} {}",
            rfc3339(c.setup_time),
            usage,
            x(sessions::cdr::extra::END_REASON),
            x(sessions::cdr::extra::SIP_CODE),
            c.account,
            c.destination,
            x(sessions::cdr::extra::PDD),
            c.cost.map_or_else(|| "-".to_owned(), |d| d.to_string()),
            c.origin_id
        )
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// RFC 4180: quote a field holding a comma, quote or line break, doubling
/// its quotes.
fn write_csv_field(out: &mut impl Write, f: &str) -> io::Result<()> {
    if f.contains([',', '"', '\n', '\r']) {
        out.write_all(b"\"")?;
        out.write_all(f.replace('"', "\"\"").as_bytes())?;
        out.write_all(b"\"")
    } else {
        out.write_all(f.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_only_when_needed() {
        let mut v = Vec::new();
        write_csv_field(&mut v, "plain").unwrap();
        v.push(b'|');
        write_csv_field(&mut v, "{\"a\":\"b,c\"}").unwrap();
        assert_eq!(
            String::from_utf8(v).unwrap(),
            "plain|\"{\"\"a\"\":\"\"b,c\"\"}\""
        );
    }

    #[test]
    fn since_parses_rfc3339_with_offsets() {
        let t = parse_time("2026-11-23T13:54:18.5+01:00").unwrap();
        assert_eq!(t.as_nanos(), 1_795_438_458_500_000_000);
        assert!(parse_time("yesterday").is_err());
    }

    #[test]
    fn every_dialog_counter_has_a_unique_name() {
        let mut names: Vec<String> = dialog_counters(&sip_fsm::Stats::default())
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        let n = names.len();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), n);
        assert!(n > 30, "{n}");
    }
}
