//! Helpers shared by the real-peer tests (`kamailio_hep.rs`,
//! `sniff_vs_tshark.rs`): required tools, a private network namespace per
//! test, child processes that die with the test (also on panic), bounded
//! waits, and tshark/pcap readers that know nothing about AccuRate.
//!
//! A missing tool fails the test with the Debian package to install; nothing
//! is skipped.
#![allow(dead_code, clippy::unwrap_used)]

use std::fs::File;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The binary under test.
pub const ACCURATE: &str = env!("CARGO_BIN_EXE_accurate");

/// The port HEP goes to, in the captures and in the live tests.
pub const HEP_PORT: u16 = 9060;

/// The package root (where `captures/` and `tests/peers/` are).
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Path of `bin` (PATH, then the sbin directories), or a panic naming the
/// Debian package that provides it.
pub fn require(bin: &str, package: &str) -> PathBuf {
    which(bin).unwrap_or_else(|| {
        panic!(
            "`{bin}` is not installed: this real-peer test needs the Debian package `{package}` \
             (apt-get install {package})"
        )
    })
}

/// Path of `bin` (PATH, then the sbin directories), if installed.
pub fn which(bin: &str) -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    dirs.extend(
        [
            "/usr/local/sbin",
            "/usr/local/bin",
            "/usr/sbin",
            "/usr/bin",
            "/sbin",
            "/bin",
        ]
        .iter()
        .map(PathBuf::from),
    );
    dirs.into_iter().map(|d| d.join(bin)).find(|p| {
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    })
}

/// Kamailio's module directory (siptrace.so and friends).
pub fn kamailio_modules() -> PathBuf {
    for d in [
        "/usr/lib/x86_64-linux-gnu/kamailio/modules",
        "/usr/lib/aarch64-linux-gnu/kamailio/modules",
        "/usr/lib/kamailio/modules",
        "/usr/local/lib64/kamailio/modules",
        "/usr/local/lib/kamailio/modules",
    ] {
        if PathBuf::from(d).join("siptrace.so").is_file() {
            return d.into();
        }
    }
    let out = std::process::Command::new("dpkg")
        .args(["-L", "kamailio"])
        .output();
    if let Ok(out) = out {
        for l in String::from_utf8_lossy(&out.stdout).lines() {
            if l.ends_with("/siptrace.so") {
                return PathBuf::from(l).parent().unwrap().to_path_buf();
            }
        }
    }
    panic!("siptrace.so not found: install the Debian package `kamailio`");
}

/// A scratch directory for one test: logs, captures, Kamailio's runtime dir.
/// Removed when the test passes, kept (and its path printed) when it fails.
pub struct Scratch {
    pub path: PathBuf,
}

impl Scratch {
    pub fn new(tag: &str) -> Scratch {
        let path =
            std::env::temp_dir().join(format!("accurate-peers-{}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        Scratch { path }
    }

    pub fn file(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// A file to send a child's output to.
    pub fn log(&self, name: &str) -> Stdio {
        Stdio::from(File::create(self.file(name)).unwrap())
    }

    pub fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.file(name)).unwrap_or_default()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("test files kept in {}", self.path.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

/// A private network namespace with its loopback up: fixed ports inside it
/// never clash with other tests or with anything on the host. Deleted on drop
/// (declare it before the processes that run in it, so it is dropped after).
pub struct Netns {
    pub name: String,
    ip: PathBuf,
}

impl Netns {
    pub fn new(tag: &str) -> Netns {
        let ip = require("ip", "iproute2");
        let name = format!("acc-{}-{tag}", std::process::id());
        let _ = Command::new(&ip)
            .args(["netns", "del", &name])
            .stderr(Stdio::null())
            .status();
        let out = Command::new(&ip)
            .args(["netns", "add", &name])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "cannot create network namespace {name} (the real-peer tests need root or \
             CAP_SYS_ADMIN): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let ns = Netns { name, ip };
        let st = ns
            .command(&ns.ip)
            .args(["link", "set", "lo", "up"])
            .status()
            .unwrap();
        assert!(st.success(), "cannot bring lo up in {}", ns.name);
        ns
    }

    /// `program` run inside the namespace (`ip netns exec` execs it, so the
    /// child's pid is the program's).
    pub fn command(&self, program: impl AsRef<Path>) -> Command {
        let mut c = Command::new(&self.ip);
        c.args(["netns", "exec", &self.name]).arg(program.as_ref());
        c.stdin(Stdio::null());
        c
    }

    /// Whether something listens on `proto` ("udp" or "tcp") port `port`.
    pub fn bound(&self, proto: &str, port: u16) -> bool {
        let flag = if proto == "tcp" { "-Hlnt" } else { "-Hlnu" };
        let Ok(out) = self
            .command(require("ss", "iproute2"))
            .args([flag, &format!("sport = :{port}")])
            .output()
        else {
            return false;
        };
        !out.stdout.is_empty()
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // Whatever still runs in this private namespace was started by this
        // test (a Kamailio worker whose parent was killed, say): kill it by
        // pid, or the namespace outlives its name.
        if let Ok(out) = Command::new(&self.ip)
            .args(["netns", "pids", &self.name])
            .output()
        {
            for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                let _ = Command::new("kill")
                    .args(["-s", "KILL", pid])
                    .stderr(Stdio::null())
                    .status();
            }
        }
        let _ = Command::new(&self.ip)
            .args(["netns", "del", &self.name])
            .status();
    }
}

/// A child process that is stopped (TERM, then KILL) when dropped, also when
/// the test panics.
pub struct Proc {
    pub name: String,
    child: Child,
    done: Option<ExitStatus>,
}

impl Proc {
    pub fn spawn(name: &str, cmd: &mut Command) -> Proc {
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        Proc {
            name: name.to_string(),
            child,
            done: None,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends a signal by name (`TERM`, `INT`, `KILL`) to this process only.
    pub fn signal(&self, sig: &str) {
        if self.done.is_none() {
            let _ = Command::new(require("kill", "procps"))
                .args(["-s", sig, &self.pid().to_string()])
                .stderr(Stdio::null())
                .status();
        }
    }

    /// Exit status if it has exited.
    pub fn try_wait(&mut self) -> Option<ExitStatus> {
        if self.done.is_none() {
            self.done = self.child.try_wait().unwrap();
        }
        self.done
    }

    /// Waits at most `limit` for the process to exit.
    pub fn wait_timeout(&mut self, limit: Duration) -> Option<ExitStatus> {
        let end = Instant::now() + limit;
        loop {
            if let Some(st) = self.try_wait() {
                return Some(st);
            }
            if Instant::now() >= end {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Signals, then waits at most `limit`; KILLs it if it is still there
    /// (and then returns None).
    pub fn stop(&mut self, sig: &str, limit: Duration) -> Option<ExitStatus> {
        self.signal(sig);
        let st = self.wait_timeout(limit);
        if st.is_none() {
            let _ = self.child.kill();
            self.done = Some(self.child.wait().unwrap());
        }
        st
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if self.try_wait().is_none() {
            self.stop("TERM", Duration::from_secs(3));
        }
    }
}

/// How long tcpdump may hold packets the kernel has captured before it sees
/// them: libpcap's ring hands a block over when it is full or when tcpdump's
/// 1 s timeout has passed once or twice since its first packet.
pub const TCPDUMP_BLOCK_WAIT: Duration = Duration::from_millis(2500);

/// Starts `cmd` (tcpdump, maybe through `ip netns exec`) capturing `filter`
/// on lo into `pcap` and waits until it listens; its stderr goes to
/// `tcpdump.log` in `dir`. Stop it with [`stop_tcpdump`].
///
/// No `--immediate-mode`: with it, libpcap uses a TPACKET_V2 ring of one
/// frame per packet, each frame as large as lo's 64 KiB MTU, so 16 MiB held
/// only about 250 packets and a busy two-core machine dropped some (seen in
/// CI). Without it, the TPACKET_V3 ring packs packets into blocks and the
/// same 16 MiB holds thousands; the price is [`TCPDUMP_BLOCK_WAIT`].
pub fn tcpdump(mut cmd: Command, pcap: &Path, filter: &str, dir: &Scratch) -> Proc {
    let p = Proc::spawn(
        "tcpdump",
        cmd.args(["-i", "lo", "-n", "-U", "-Z", "root"])
            .args(["-s", "0", "-B", "16384", "-w"])
            .arg(pcap)
            .arg(filter)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(dir.log("tcpdump.log")),
    );
    wait_until(
        Duration::from_secs(20),
        "tcpdump to start",
        || dir.read("tcpdump.log").contains("listening on"),
        || dir.read("tcpdump.log"),
    );
    p
}

/// Stops a [`tcpdump`] once the last packet the test made has reached it:
/// waits out [`TCPDUMP_BLOCK_WAIT`] (the ring's last block), then SIGINT,
/// which makes tcpdump write what it holds and its counters.
pub fn stop_tcpdump(p: &mut Proc, limit: Duration) {
    std::thread::sleep(TCPDUMP_BLOCK_WAIT);
    p.stop("INT", limit);
}

/// Polls `cond` every 20 ms for at most `limit`; panics with `what` (and the
/// extra context `ctx` returns) on timeout.
pub fn wait_until(
    limit: Duration,
    what: &str,
    mut cond: impl FnMut() -> bool,
    ctx: impl Fn() -> String,
) {
    let end = Instant::now() + limit;
    while !cond() {
        assert!(
            Instant::now() < end,
            "timed out after {limit:?} waiting for {what}\n{}",
            ctx()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Runs tshark, which must succeed; returns stdout.
pub fn tshark(args: &[&str]) -> String {
    let out = Command::new(require("tshark", "tshark"))
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "tshark {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// `1700000000.123456000` (tshark's frame.time_epoch) -> ns since the epoch.
pub fn epoch_ns(s: &str) -> i128 {
    let (sec, frac) = s.trim().split_once('.').unwrap_or((s.trim(), ""));
    let frac = format!("{frac:0<9}");
    i128::from(sec.parse::<i64>().unwrap()) * 1_000_000_000 + frac[..9].parse::<i128>().unwrap()
}

/// sniff's `ts` (RFC 3339) -> ns since the epoch.
pub fn rfc3339_ns(s: &str) -> i128 {
    let t = chrono::DateTime::parse_from_rfc3339(s)
        .unwrap_or_else(|e| panic!("ts {s:?} is not RFC 3339: {e}"));
    i128::from(t.timestamp()) * 1_000_000_000 + i128::from(t.timestamp_subsec_nanos())
}

/// The display filter for raw SIP in our captures: SIP not on the HEP port.
pub const RAW_SIP: &str = "sip && !(udp.port==9060) && !(tcp.port==9060)";

/// One SIP message as tshark sees it on the wire.
#[derive(Debug, Clone)]
pub struct WireSip {
    pub ts_ns: i128,
    pub src: String,
    pub dst: String,
    pub call_id: String,
    pub start_line: String,
}

/// Raw SIP messages over UDP in a capture (HEP port excluded), one per frame,
/// in capture order.
pub fn wire_sip_udp(pcap: &Path) -> Vec<WireSip> {
    let out = tshark(&[
        "-r",
        pcap.to_str().unwrap(),
        "-Y",
        &format!("{RAW_SIP} && udp"),
        "-T",
        "fields",
        "-E",
        "separator=/t",
        "-e",
        "frame.time_epoch",
        "-e",
        "ip.src",
        "-e",
        "udp.srcport",
        "-e",
        "ip.dst",
        "-e",
        "udp.dstport",
        "-e",
        "sip.Call-ID",
        "-e",
        "sip.Request-Line",
        "-e",
        "sip.Status-Line",
    ]);
    out.lines()
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            assert_eq!(f.len(), 8, "unexpected tshark line {l:?}");
            WireSip {
                ts_ns: epoch_ns(f[0]),
                src: format!("{}:{}", f[1], f[2]),
                dst: format!("{}:{}", f[3], f[4]),
                call_id: f[5].to_string(),
                start_line: if f[6].is_empty() { f[7] } else { f[6] }.to_string(),
            }
        })
        .collect()
}

/// Number of SIP messages tshark's SIP dissector finds outside the HEP port
/// (one per CSeq header, so several messages in one TCP segment count apart).
pub fn tshark_sip_count(pcap: &Path) -> usize {
    let out = tshark(&[
        "-r",
        pcap.to_str().unwrap(),
        "-Y",
        RAW_SIP,
        "-T",
        "fields",
        "-E",
        "occurrence=a",
        "-E",
        "aggregator=|",
        "-e",
        "sip.CSeq",
    ]);
    out.lines().map(|l| l.split('|').count()).sum()
}

/// One HEP packet sent to the HEP port, in the order it was sent.
#[derive(Debug, Clone)]
pub struct WireHep {
    /// Time of the frame that carried it (the last one for TCP).
    pub frame_ns: i128,
    pub bytes: Vec<u8>,
}

/// HEP packets in a capture: UDP datagrams to the HEP port, and the TCP
/// streams to it cut into HEPv3 packets by their length field (tshark has no
/// HEP dissector, so this is all it can tell).
pub fn wire_hep(pcap: &Path) -> Vec<WireHep> {
    let mut hep = Vec::new();
    let udp = tshark(&[
        "-r",
        pcap.to_str().unwrap(),
        "-Y",
        &format!("udp.dstport=={HEP_PORT}"),
        "-T",
        "fields",
        "-e",
        "frame.time_epoch",
        "-e",
        "udp.payload",
    ]);
    for l in udp.lines() {
        let (ts, payload) = l.split_once('\t').unwrap();
        hep.push(WireHep {
            frame_ns: epoch_ns(ts),
            bytes: unhex(payload),
        });
    }
    let tcp = tshark(&[
        "-r",
        pcap.to_str().unwrap(),
        "-o",
        "tcp.desegment_tcp_streams:FALSE",
        "-Y",
        &format!("tcp.dstport=={HEP_PORT} && tcp.len>0"),
        "-T",
        "fields",
        "-e",
        "frame.time_epoch",
        "-e",
        "tcp.stream",
        "-e",
        "tcp.payload",
    ]);
    let mut streams: std::collections::BTreeMap<String, Vec<u8>> = Default::default();
    for l in tcp.lines() {
        let f: Vec<&str> = l.split('\t').collect();
        let buf = streams.entry(f[1].to_string()).or_default();
        buf.extend(unhex(f[2]));
        loop {
            if buf.len() < 6 {
                break;
            }
            assert_eq!(&buf[..4], b"HEP3", "TCP stream {} is not HEPv3", f[1]);
            let n = usize::from(u16::from_be_bytes([buf[4], buf[5]]));
            assert!(n >= 6, "bad HEPv3 length {n}");
            if buf.len() < n {
                break;
            }
            hep.push(WireHep {
                frame_ns: epoch_ns(f[0]),
                bytes: buf.drain(..n).collect(),
            });
        }
    }
    for (s, rest) in &streams {
        assert!(
            rest.is_empty(),
            "TCP stream {s}: {} trailing bytes",
            rest.len()
        );
    }
    hep
}

fn unhex(s: &str) -> Vec<u8> {
    let s: String = s.chars().filter(|c| *c != ':').collect();
    (0..s.len() / 2)
        .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap())
        .collect()
}

/// Whether `needle` occurs in `hay`.
pub fn contains(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}

/// One line of `accurate sniff --format json`.
#[derive(Debug, Clone)]
pub struct SniffLine {
    pub raw: Value,
    pub ts_ns: i128,
    pub src: String,
    pub dst: String,
    pub transport: String,
    pub source: String,
    pub first_line: String,
    pub call_id: Option<String>,
}

/// Parses sniff's JSON output, checking every line has the contract's keys.
pub fn parse_sniff(stdout: &str) -> Vec<SniffLine> {
    stdout
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let v: Value =
                serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l:?}: {e}"));
            for k in [
                "ts",
                "src",
                "dst",
                "transport",
                "source",
                "capture_id",
                "node",
                "first_line",
                "call_id",
            ] {
                assert!(v.get(k).is_some(), "sniff line without {k:?}: {l}");
            }
            let s = |k: &str| {
                v[k].as_str()
                    .unwrap_or_else(|| panic!("{k} is not a string: {l}"))
                    .to_string()
            };
            assert!(
                v["capture_id"].is_null() || v["capture_id"].is_u64(),
                "capture_id must be a number or null: {l}"
            );
            assert!(
                v["node"].is_null() || v["node"].is_string(),
                "node must be a string or null: {l}"
            );
            SniffLine {
                ts_ns: rfc3339_ns(&s("ts")),
                src: s("src"),
                dst: s("dst"),
                transport: s("transport"),
                source: s("source"),
                first_line: s("first_line"),
                call_id: v["call_id"].as_str().map(str::to_string),
                raw: v,
            }
        })
        .collect()
}

/// One `#[test]` per capture in `captures/`, each calling `$check(file)`,
/// and `ALL`, the list of them (so a test can check none is missing). The
/// one list of captures every per-capture suite runs over.
#[allow(unused_macros)]
macro_rules! per_capture {
    ($check:ident) => {
        $crate::common::per_capture!(@tests $check;
            answered_caller_bye => "answered-caller-bye.pcap",
            answered_callee_bye => "answered-callee-bye.pcap",
            busy_486 => "busy-486.pcap",
            cancel_ringing => "cancel-ringing.pcap",
            notfound_404 => "notfound-404.pcap",
            reinvite => "reinvite.pcap",
            early_media_183 => "early-media-183.pcap",
            auth_407 => "auth-407.pcap",
            sip_over_tcp => "sip-tcp.pcap",
            hep_over_tcp => "hep-tcp.pcap",
            hep_v2 => "hepv2.pcap",
            hep_v1 => "hepv1.pcap",
            answered_pcapng => "answered-pcapng.pcapng",
        );
    };
    (@tests $check:ident; $($test:ident => $file:literal,)*) => {
        $(
            #[test]
            fn $test() {
                $check($file);
            }
        )*
        /// Every capture that has a test.
        const ALL: &[&str] = &[$($file),*];
    };
}
#[allow(unused_imports)]
pub(crate) use per_capture;
