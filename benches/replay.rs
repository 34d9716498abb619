//! Replay throughput: SIP packets through the dialog machine to CDRs, on one
//! core, in memory and from a pcap file; memory per live dialog.
//!
//! `cargo bench --bench replay` (release profile). Own harness: each stage
//! runs a fixed workload a few times and prints the best rate, like
//! `sip-fsm/benches/dialogs.rs`. Traffic comes from the project's generator
//! (`benches/gen`): overlapping calls INVITE, 100, 180, 200, ACK, BYE, 200
//! between a caller and a proxy. `REPLAY_BENCH_CALLS` sets the call count
//! (default 200000).
//!
//! Stages:
//! * `dialogs`: scan + dialog machine on decoded packets (the packets are
//!   decoded from frames before the clock starts);
//! * `dialogs+cdr`: the same plus end-time ordering, building each CDR and
//!   writing it as a JSON line (to a sink), which is what `accurate replay`
//!   does after the capture layer;
//! * `file`: all of it from a pcap file on disk through libpcap and the
//!   frame decoder, as `accurate replay --format json FILE > /dev/null`.
#![allow(missing_docs, clippy::unwrap_used, clippy::cast_possible_truncation)]

#[path = "gen/mod.rs"]
mod generator;

use std::hint::black_box;
use std::io::Write;
use std::time::{Duration, Instant};

use capture::frame::DecoderConfig;
use capture::io::{PcapSource, ReadStatus};
use capture::{SipPacket, Timestamp};
use sessions::{Cdr, CdrOptions, EndTimeOrder};
use sip_fsm::{Config, DialogEvent, DialogMachine};

const RUNS: usize = 3;

fn gen_config(calls: usize) -> generator::GenConfig {
    generator::GenConfig {
        calls,
        cps: 200,
        ..generator::GenConfig::default()
    }
}

fn decoded(calls: usize) -> Vec<SipPacket> {
    let mut frames = Vec::new();
    generator::generate(&gen_config(calls), |f| frames.push(f));
    let out = generator::decode_frames(&frames);
    assert_eq!(out.len(), frames.len());
    out
}

/// What the pipeline after the capture layer keeps and counts.
struct Pipeline {
    machine: DialogMachine,
    order: EndTimeOrder,
    opts: CdrOptions,
    cdrs: bool,
    out: std::io::Sink,
    written: u64,
    peak_live: usize,
    peak_bytes: usize,
}

impl Pipeline {
    fn new(cdrs: bool) -> Self {
        let cfg = Config::default();
        Pipeline {
            order: EndTimeOrder::new(EndTimeOrder::window_for(&cfg)),
            machine: DialogMachine::new(cfg).unwrap(),
            opts: CdrOptions::default(),
            cdrs,
            out: std::io::sink(),
            written: 0,
            peak_live: 0,
            peak_bytes: 0,
        }
    }

    fn packet(&mut self, p: &SipPacket) {
        self.machine.handle(p, p.ts);
        self.drain();
        if self.cdrs {
            while let Some(r) = self.order.pop_ready(p.ts) {
                self.write(&r);
            }
        }
    }

    fn drain(&mut self) {
        while let Some(ev) = self.machine.poll_event() {
            if let DialogEvent::End(r) | DialogEvent::Failed(r) = ev {
                if self.cdrs {
                    self.order.push(r);
                } else {
                    self.written += 1;
                }
            }
        }
    }

    fn write(&mut self, r: &sip_fsm::CallRecord) {
        let cdr = Cdr::from_record(r, &self.opts);
        serde_json::to_writer(&mut self.out, &cdr).unwrap();
        self.out.write_all(b"\n").unwrap();
        self.written += 1;
    }

    fn sample_memory(&mut self) {
        let live = self.machine.live_dialogs();
        if live > self.peak_live {
            self.peak_live = live;
            self.peak_bytes = self.machine.dialog_memory();
        }
    }

    fn finish(mut self) -> Self {
        self.machine.handle_timeout(Timestamp::from_nanos(i64::MAX));
        self.drain();
        while let Some(r) = self.order.pop() {
            self.write(&r);
        }
        self
    }
}

/// CPU time of this thread (user + system), from /proc: on a shared
/// machine it is what the work cost, whatever else ran. Clock ticks of
/// 10 ms, fine for runs of a second or more.
fn thread_cpu() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").ok()?;
    // Fields after the command name (which is in parentheses).
    let rest = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_millis(ticks * 10))
}

/// Runs `f` RUNS times; the fastest run's wall time, its CPU time, result.
fn best<T>(mut f: impl FnMut() -> T) -> (Duration, Duration, T) {
    let mut best: Option<(Duration, Duration, T)> = None;
    for _ in 0..RUNS {
        let cpu0 = thread_cpu();
        let start = Instant::now();
        let v = black_box(f());
        let el = start.elapsed();
        let cpu = match (cpu0, thread_cpu()) {
            (Some(a), Some(b)) => b.saturating_sub(a),
            _ => el,
        };
        if best.as_ref().is_none_or(|(b, _, _)| el < *b) {
            best = Some((el, cpu, v));
        }
    }
    best.unwrap()
}

fn rate(n: u64, d: Duration) -> String {
    format!("{:>10.0}", n as f64 / d.as_secs_f64().max(1e-9))
}

fn in_memory(calls: usize) {
    let pkts = decoded(calls);
    let n = pkts.len() as u64;
    let bytes: usize = pkts.iter().map(|p| p.payload.len()).sum();
    println!(
        "{n} SIP packets, {calls} calls, {} bytes/packet on average",
        bytes / pkts.len()
    );
    for (name, cdrs) in [("dialogs", false), ("dialogs+cdr", true)] {
        let (el, cpu, p) = best(|| {
            let mut p = Pipeline::new(cdrs);
            for (i, pkt) in pkts.iter().enumerate() {
                p.packet(pkt);
                if i % 65_536 == 0 {
                    p.sample_memory();
                }
            }
            p.finish()
        });
        assert_eq!(p.written, calls as u64);
        println!(
            "{name:<12} {} packets/s {} calls/s  (wall {:.3} s; per CPU second: {} packets/s)",
            rate(n, el),
            rate(calls as u64, el),
            el.as_secs_f64(),
            rate(n, cpu)
        );
        if !cdrs {
            println!(
                "live dialogs at peak: {}, {} bytes each (state + strings, map overhead excluded)",
                p.peak_live,
                p.peak_bytes / p.peak_live.max(1)
            );
        }
    }
}

fn from_file(calls: usize) {
    let path = std::env::temp_dir().join(format!("accurate-replay-{}.pcap", std::process::id()));
    let (frames, sip) = generator::write_pcap(&path, &gen_config(calls)).unwrap();
    let size = std::fs::metadata(&path).unwrap().len();
    let (el, cpu, written) = best(|| {
        let mut src = PcapSource::open_file(&path, DecoderConfig::default()).unwrap();
        let mut p = Pipeline::new(true);
        let mut batch = Vec::with_capacity(4096);
        loop {
            batch.clear();
            let st = src.read_batch(4096, &mut batch).unwrap();
            for pkt in &batch {
                p.packet(pkt);
            }
            if st == ReadStatus::End {
                break;
            }
        }
        p.finish().written
    });
    assert_eq!(written, calls as u64);
    println!(
        "{:<12} {} packets/s {} calls/s  (wall {:.3} s; per CPU second: {} packets/s; {:.1} MB/s; {frames} frames)",
        "file",
        rate(sip, el),
        rate(calls as u64, el),
        el.as_secs_f64(),
        rate(sip, cpu),
        size as f64 / el.as_secs_f64() / 1e6,
    );
    let _ = std::fs::remove_file(&path);
}

fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` runs it small.
    let quick = !std::env::args().any(|a| a == "--bench");
    let calls = std::env::var("REPLAY_BENCH_CALLS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(if quick { 2_000 } else { 200_000 });
    in_memory(calls);
    from_file(calls);
    if let Some(kib) = peak_rss_kib() {
        println!(
            "peak RSS of this process: {} MiB (packets held in memory included)",
            kib / 1024
        );
    }
}
