//! The traffic harness of the end-to-end test (`tests/serve_e2e.rs`):
//! Kamailio with siptrace sending HEP to a receiver the test names, a few
//! hundred sipp calls of every kind the captures cover, tcpdump on loopback
//! as the oracle, and `accurate replay` of that capture for the expected
//! CDRs.
//!
//! ```text
//! sipp UAC x8 (callers 1001-1003) -> Kamailio :SIP -> sipp UAS x8 (:UAS_BASE + the
//!                                     |              dialled number's last digit)
//!                                     `-> siptrace HEPv3, UDP or TCP -> receiver :HEP
//! tcpdump -i lo: the SIP ports and the HEP port -> wire.pcap
//! ```
//!
//! Everything binds free loopback ports picked at start (no namespace: the
//! test itself talks to `accurate serve`'s JSON-RPC), and each run has its
//! own scratch folder, so the runs go in parallel with each other and with
//! the other tests. Kamailio is `tests/peers/kamailio.cfg` with
//! `SIP_PORT`, `UAS_PORT_BASE`, `AUTH_RE` and `HEP_URI` given by `-A`; the
//! UAC scenarios are `tests/peers/e2e/sipp/` (the fixtures' UAC scenarios
//! with the caller from `tests/peers/e2e/callers.csv`), the UAS ones those
//! of the fixtures.
#![allow(dead_code, clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::net::{TcpListener, UdpSocket};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rust_decimal::Decimal;
use serde_json::Value;

use crate::common::{
    ACCURATE, Proc, Scratch, kamailio_modules, root, stop_tcpdump, tcpdump, wait_until, which,
};

/// Calls per scenario (8 scenarios).
pub const CALLS: usize = 36;
/// New calls per second per scenario: 8 x 4 = 32 calls/s in all.
pub const RATE: usize = 4;
/// How far a usage seen through HEP may be from the wire's: Kamailio stamps
/// a HEP copy when it handles the message, 0.01-1 ms after the wire, up to
/// 14 ms on a busy machine and 50-51 ms (two calls of 288) in one CI run
/// with every real-peer suite at once on 2 cores (tests/peers/README.md).
pub const USAGE_TOLERANCE_NS: i64 = 250_000_000;
/// The tariff plan of the test (accounts 1001-1003, postpaid).
pub const TARIFFPLAN: &str = "tests/data/tariffplans/e2e";
/// The accounts sipp calls from, in turn (`tests/peers/e2e/callers.csv`).
pub const ACCOUNTS: [&str; 3] = ["1001", "1002", "1003"];
/// What each account holds before the first call (ACT_CREDIT).
pub const INITIAL_BALANCE: &str = "100";

/// One kind of call: a UAC and a UAS scenario, the number dialled (its last
/// digit picks the UAS, `UAS_PORT_BASE` in kamailio.cfg), the call lengths
/// given to sipp, and what the call must look like in its CDR.
#[derive(Debug, Clone, Copy)]
pub struct Scenario {
    pub name: &'static str,
    /// In tests/peers/e2e/sipp/.
    pub uac: &'static str,
    /// In tests/peers/sipp/.
    pub uas: &'static str,
    /// Number dialled; its last digit is the UAS's port offset.
    pub number: &'static str,
    /// sipp `-d` of the UAC and of the UAS (ms).
    pub uac_ms: u64,
    pub uas_ms: u64,
    /// DisconnectCause of every call.
    pub cause: &'static str,
    /// Billable time sipp is told to make (ms), None if not answered; the
    /// wire adds a few ms of transactions.
    pub talk_ms: Option<u64>,
    /// The cost worked out by hand from tests/data/tariffplans/e2e for that
    /// time rounded up to the second (`4930`: 0.05 + 0.01 a second, `4917`:
    /// 0.018 a second).
    pub cost: &'static str,
}

/// The scenarios of the captures, one UAS each. Call lengths keep clear of
/// whole seconds, so a few ms of HEP delay never changes a 1 s increment.
pub const SCENARIOS: [Scenario; 8] = [
    Scenario {
        name: "answered-caller-bye",
        uac: "answered-caller-bye-uac.xml",
        uas: "answered-uas.xml",
        number: "49305550001",
        uac_ms: 1500,
        uas_ms: 0,
        cause: "200",
        talk_ms: Some(1500),
        cost: "0.07",
    },
    Scenario {
        name: "answered-callee-bye",
        uac: "answered-callee-bye-uac.xml",
        uas: "answered-callee-bye-uas.xml",
        number: "49171000002",
        uac_ms: 0,
        uas_ms: 2500,
        cause: "200",
        talk_ms: Some(2500),
        cost: "0.054",
    },
    Scenario {
        name: "busy-486",
        uac: "busy-486-uac.xml",
        uas: "busy-486-uas.xml",
        number: "49305550003",
        uac_ms: 0,
        uas_ms: 0,
        cause: "486",
        talk_ms: None,
        cost: "0",
    },
    Scenario {
        name: "cancel-ringing",
        uac: "cancel-ringing-uac.xml",
        uas: "cancel-ringing-uas.xml",
        number: "49171000004",
        uac_ms: 1000,
        uas_ms: 0,
        cause: "487",
        talk_ms: None,
        cost: "0",
    },
    Scenario {
        name: "notfound-404",
        uac: "notfound-404-uac.xml",
        uas: "notfound-404-uas.xml",
        number: "49305550005",
        uac_ms: 0,
        uas_ms: 0,
        cause: "404",
        talk_ms: None,
        cost: "0",
    },
    Scenario {
        name: "reinvite",
        uac: "reinvite-uac.xml",
        uas: "reinvite-uas.xml",
        number: "49171000006",
        uac_ms: 700,
        uas_ms: 0,
        cause: "200",
        // two pauses of -d, the re-INVITE between them
        talk_ms: Some(1400),
        cost: "0.036",
    },
    Scenario {
        name: "early-media-183",
        uac: "early-media-183-uac.xml",
        uas: "early-media-183-uas.xml",
        number: "49305550007",
        uac_ms: 1500,
        uas_ms: 0,
        cause: "200",
        talk_ms: Some(1500),
        cost: "0.07",
    },
    Scenario {
        // Kamailio challenges numbers ending in 8 (AUTH_RE)
        name: "auth-407",
        uac: "auth-407-uac.xml",
        uas: "answered-uas.xml",
        number: "49305550008",
        uac_ms: 1200,
        uas_ms: 0,
        cause: "200",
        talk_ms: Some(1200),
        cost: "0.07",
    },
];

/// The peers a run needs.
pub struct Tools {
    pub kamailio: PathBuf,
    pub sipp: PathBuf,
    pub tcpdump: PathBuf,
}

/// The peers, or None (and a line saying why the test is skipped) when one
/// is missing or tcpdump cannot capture (not root). With
/// `ACCURATE_REQUIRE_PEERS=1` (CI) a missing peer fails the test instead.
pub fn tools(test: &str) -> Option<Tools> {
    let mut missing = Vec::new();
    let mut find = |bin: &str, package: &str| {
        let p = which(bin);
        if p.is_none() {
            missing.push(format!("`{bin}` (Debian package `{package}`)"));
        }
        p.unwrap_or_default()
    };
    let t = Tools {
        kamailio: find("kamailio", "kamailio"),
        sipp: find("sipp", "sip-tester"),
        tcpdump: find("tcpdump", "tcpdump"),
    };
    // tcpdump on lo needs root (CAP_NET_RAW alone is not detected here)
    let root_user = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    if !root_user {
        missing.push("root (tcpdump on lo)".into());
    }
    if missing.is_empty() {
        return Some(t);
    }
    let needs = format!(
        "needs {} (scripts/setup.sh installs the peers)",
        missing.join(", ")
    );
    assert!(
        std::env::var_os("ACCURATE_REQUIRE_PEERS").is_none(),
        "{test}: {needs}; ACCURATE_REQUIRE_PEERS is set, so it is not skipped"
    );
    eprintln!("{test}: skipped, {needs}");
    None
}

/// How Kamailio sends HEP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HepTransport {
    Udp,
    Tcp,
}

/// Loopback ports of one run.
#[derive(Debug, Clone)]
pub struct Ports {
    /// Kamailio, UDP and TCP.
    pub sip: u16,
    /// The HEP receiver (UDP or TCP).
    pub hep: u16,
    /// UAS of scenario k listens on `uas_base + k` (k = 1..=8).
    pub uas_base: u16,
    /// One per scenario.
    pub uac: Vec<u16>,
}

/// Ports handed out in this process (two runs in parallel never share one).
static TAKEN: Mutex<Vec<u16>> = Mutex::new(Vec::new());

impl Ports {
    /// Free ports, checked by binding them (UDP and TCP) and letting go.
    pub fn pick() -> Ports {
        let mut taken = TAKEN.lock().unwrap_or_else(|e| e.into_inner());
        let one = |taken: &mut Vec<u16>| loop {
            let p = TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            if !taken.contains(&p) && free(p) {
                taken.push(p);
                return p;
            }
        };
        let sip = one(&mut taken);
        let hep = one(&mut taken);
        let uac = (0..SCENARIOS.len()).map(|_| one(&mut taken)).collect();
        // eight consecutive ports after uas_base
        let uas_base = loop {
            let b = one(&mut taken);
            if b < 65000 && (1..=8).all(|k| !taken.contains(&(b + k)) && free(b + k)) {
                taken.extend((1..=8).map(|k| b + k));
                break b;
            }
        };
        Ports {
            sip,
            hep,
            uas_base,
            uac,
        }
    }

    /// Every SIP port of the run (Kamailio, UACs, UASes).
    pub fn sip_ports(&self) -> Vec<u16> {
        let mut v = vec![self.sip];
        v.extend(&self.uac);
        v.extend((1..=8).map(|k| self.uas_base + k));
        v
    }
}

/// Whether nothing is bound to this loopback port, UDP or TCP.
fn free(port: u16) -> bool {
    UdpSocket::bind(("127.0.0.1", port)).is_ok() && TcpListener::bind(("127.0.0.1", port)).is_ok()
}

/// Whether something is bound to this loopback UDP port.
pub fn udp_bound(port: u16) -> bool {
    UdpSocket::bind(("127.0.0.1", port)).is_err()
}

/// One more free loopback port (UDP and TCP), kept from the other runs of
/// this process for as long as it lasts.
pub fn free_port() -> u16 {
    let mut taken = TAKEN.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        let p = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        if !taken.contains(&p) && free(p) {
            taken.push(p);
            return p;
        }
    }
}

/// One end-to-end run: scratch folder, ports, the config, tcpdump, then
/// Kamailio and the calls.
pub struct Run {
    pub tools: Tools,
    pub ports: Ports,
    pub hep: HepTransport,
    /// The config of serve/replay: tests/peers/e2e/accurate.toml plus the
    /// HEP port in `[capture] hep-ports` (so replay decodes the HEP copies
    /// in the capture).
    pub config: PathBuf,
    pub pcap: PathBuf,
    /// Calls per scenario `start_calls` makes ([`CALLS`] unless changed).
    pub calls: usize,
    tcpdump: Option<Proc>,
    kamailio: Option<Proc>,
    // dropped last: the processes above write into it
    pub dir: Scratch,
}

impl Run {
    /// Picks the ports, writes the config and starts tcpdump.
    pub fn start(tag: &str, tools: Tools, hep: HepTransport) -> Run {
        Self::start_on(tag, tools, hep, None)
    }

    /// As [`Run::start`], with Kamailio's HEP going to `hep_port` when
    /// given (a receiver kept from an earlier run) instead of a fresh port.
    pub fn start_on(tag: &str, tools: Tools, hep: HepTransport, hep_port: Option<u16>) -> Run {
        let dir = Scratch::new(&format!("e2e-{tag}"));
        let mut ports = Ports::pick();
        if let Some(p) = hep_port {
            ports.hep = p;
        }
        let base = std::fs::read_to_string(root().join("tests/peers/e2e/accurate.toml")).unwrap();
        let config = dir.file("accurate.toml");
        std::fs::write(
            &config,
            format!("{base}\n[capture]\nhep-ports = [{}]\n", ports.hep),
        )
        .unwrap();
        let pcap = dir.file("wire.pcap");
        let filter = ports
            .sip_ports()
            .iter()
            .chain([&ports.hep])
            .map(|p| format!("port {p}"))
            .collect::<Vec<_>>()
            .join(" or ");
        let tcpdump = tcpdump(
            Command::new(&tools.tcpdump),
            &pcap,
            &format!("(udp or tcp) and ({filter})"),
            &dir,
        );
        Run {
            tools,
            ports,
            hep,
            config,
            pcap,
            calls: CALLS,
            tcpdump: Some(tcpdump),
            kamailio: None,
            dir,
        }
    }

    /// The HEP receiver's address in `--hep` form (`udp:127.0.0.1:P`).
    pub fn hep_listen(&self) -> String {
        let proto = match self.hep {
            HepTransport::Udp => "udp",
            HepTransport::Tcp => "tcp",
        };
        format!("{proto}:127.0.0.1:{}", self.ports.hep)
    }

    /// Starts Kamailio (its HEP goes to the receiver, which should be up)
    /// and waits until it listens.
    pub fn start_kamailio(&mut self) {
        let rundir = self.dir.file("kamailio-run");
        std::fs::create_dir_all(&rundir).unwrap();
        let uri = match self.hep {
            HepTransport::Udp => format!("sip:127.0.0.1:{}", self.ports.hep),
            HepTransport::Tcp => format!("sip:127.0.0.1:{};transport=tcp", self.ports.hep),
        };
        let mut cmd = Command::new(&self.tools.kamailio);
        cmd.arg("-f")
            .arg(root().join("tests/peers/kamailio.cfg"))
            .arg("-L")
            .arg(kamailio_modules())
            .arg("-Y")
            .arg(&rundir)
            .args(["-DD", "-E"])
            .args(["-A", &format!("SIP_PORT={}", self.ports.sip)])
            .args(["-A", &format!("UAS_PORT_BASE={}", self.ports.uas_base)])
            .args(["-A", "AUTH_RE=\"8$\""])
            .args(["-A", "HEP_VERSION=3"])
            .args(["-A", &format!("HEP_URI=\"{uri}\"")])
            .arg("-A")
            .arg(format!("CTL_SOCK=\"unix:{}/ctl\"", rundir.display()));
        if self.hep == HepTransport::Tcp {
            cmd.args(["-A", "WITH_HEP_TCP"]);
        }
        let kam = Proc::spawn(
            "kamailio",
            cmd.stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(self.dir.log("kamailio.log")),
        );
        self.kamailio = Some(kam);
        let sip = self.ports.sip;
        wait_until(
            Duration::from_secs(20),
            "kamailio to listen",
            || udp_bound(sip),
            || self.dir.read("kamailio.log"),
        );
    }

    /// Starts every UAS, waits until they listen, then starts every UAC:
    /// the calls run while the caller does what it wants (kill a server).
    /// Each sipp gets a free control port (`-cp`): by default sipp takes
    /// the first free one of 8888 and the next 59, and with other sipp
    /// runs on the machine a UAS found none and quit at once.
    pub fn start_calls(&self) -> Calls {
        let peers = root().join("tests/peers");
        let calls = self.calls.to_string();
        let mut uas = Vec::new();
        for (i, s) in SCENARIOS.iter().enumerate() {
            let k = u16::try_from(i + 1).unwrap();
            assert!(s.number.ends_with(&k.to_string()), "{s:?}");
            let port = self.ports.uas_base + k;
            let log = format!("uas-{}.log", s.name);
            // Its control port (-cp) is a free port picked here, which
            // another process may take first: sipp then exits at once, and
            // is started again on another one.
            let mut tries = 0;
            let p = loop {
                tries += 1;
                let mut p = Proc::spawn(
                    &format!("sipp UAS {}", s.name),
                    Command::new(&self.tools.sipp)
                        .arg("-sf")
                        .arg(peers.join("sipp").join(s.uas))
                        .args(["-i", "127.0.0.1", "-p", &port.to_string()])
                        .args(["-m", &calls, "-d", &s.uas_ms.to_string()])
                        .args(["-cp", &free_port().to_string()])
                        .args(["-nostdin", "-timeout", "60", "-timeout_error"])
                        .stdin(Stdio::null())
                        .stdout(self.dir.log(&log))
                        .stderr(Stdio::null()),
                );
                let mut exited = false;
                wait_until(
                    Duration::from_secs(30),
                    &format!("sipp UAS {} on udp {port}", s.name),
                    || {
                        exited = p.try_wait().is_some();
                        exited || udp_bound(port)
                    },
                    || self.dir.read(&log),
                );
                if !exited || tries == 3 {
                    assert!(
                        !exited,
                        "sipp UAS {} exited at start:\n{}",
                        s.name,
                        self.dir.read(&log)
                    );
                    break p;
                }
            };
            uas.push(p);
        }
        let started = Instant::now();
        let limit = (RATE * 4).to_string();
        let mut uac = Vec::new();
        for (s, port) in SCENARIOS.iter().zip(&self.ports.uac) {
            uac.push(Proc::spawn(
                &format!("sipp UAC {}", s.name),
                Command::new(&self.tools.sipp)
                    .arg("-sf")
                    .arg(peers.join("e2e/sipp").join(s.uac))
                    .arg(format!("127.0.0.1:{}", self.ports.sip))
                    .args(["-i", "127.0.0.1", "-p", &port.to_string()])
                    .arg("-inf")
                    .arg(peers.join("e2e/callers.csv"))
                    .args(["-s", s.number, "-m", &calls, "-l", &limit])
                    .args(["-r", &RATE.to_string(), "-d", &s.uac_ms.to_string()])
                    .args(["-cp", &free_port().to_string()])
                    .args(["-nostdin", "-timeout", "60", "-timeout_error"])
                    .stdin(Stdio::null())
                    .stdout(self.dir.log(&format!("uac-{}.log", s.name)))
                    .stderr(Stdio::null()),
            ));
        }
        Calls { uac, uas, started }
    }

    /// Waits for the calls to end (every sipp must succeed), then lets the
    /// last HEP copies go out and stops Kamailio. Returns how long the
    /// calls took.
    pub fn finish_calls(&mut self, calls: Calls) -> Duration {
        let took = self.wait_calls(calls);
        std::thread::sleep(Duration::from_millis(500));
        if let Some(mut k) = self.kamailio.take() {
            k.stop("TERM", Duration::from_secs(10));
        }
        took
    }

    /// Waits for the calls to end (every sipp must succeed); Kamailio goes
    /// on. Returns how long the calls took.
    pub fn wait_calls(&self, mut calls: Calls) -> Duration {
        let deadline = Duration::from_secs(90);
        for (who, dir) in [(&mut calls.uac, "uac"), (&mut calls.uas, "uas")] {
            for (p, s) in who.iter_mut().zip(SCENARIOS) {
                let log = format!("{dir}-{}.log", s.name);
                let st = p
                    .wait_timeout(deadline.saturating_sub(calls.started.elapsed()))
                    .unwrap_or_else(|| {
                        panic!("{} did not finish:\n{}", p.name, tail(&self.dir, &log))
                    });
                assert!(
                    st.success(),
                    "{} failed ({st}):\n{}\nkamailio:\n{}",
                    p.name,
                    tail(&self.dir, &log),
                    tail(&self.dir, "kamailio.log")
                );
            }
        }
        calls.started.elapsed()
    }

    /// Stops tcpdump (after the receiver is done) and checks it lost
    /// nothing.
    pub fn stop_capture(&mut self) {
        if let Some(mut t) = self.tcpdump.take() {
            stop_tcpdump(&mut t, Duration::from_secs(10));
        }
        let log = self.dir.read("tcpdump.log");
        let dropped = log
            .lines()
            .find(|l| l.contains("dropped by kernel"))
            .and_then(|l| l.split_whitespace().next())
            .and_then(|n| n.parse::<u64>().ok());
        assert_eq!(
            dropped,
            Some(0),
            "tcpdump lost packets (the oracle is incomplete):\n{log}"
        );
    }

    /// The expected CDRs: `accurate replay` of the SIP traffic tcpdump saw
    /// (the HEP port left out), rated with the test's tariff plan.
    pub fn oracle(&self) -> Replay {
        self.replay(&format!("not port {}", self.ports.hep))
    }

    /// The CDRs of the HEP stream Kamailio sent, as tcpdump saw it on the
    /// HEP port (replay decodes HEP inside a capture).
    pub fn hep_view(&self) -> Replay {
        self.replay(&format!("port {}", self.ports.hep))
    }

    fn replay(&self, filter: &str) -> Replay {
        let out = Command::new(ACCURATE)
            .arg("replay")
            .arg("-c")
            .arg(&self.config)
            .args(["--format", "json", "--tariffplan"])
            .arg(root().join(TARIFFPLAN))
            .args(["-f", filter])
            .arg(&self.pcap)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(
            out.status.success(),
            "replay -f {filter:?} failed: {stderr}"
        );
        let cdrs = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| Cdr::parse(&serde_json::from_str(l).unwrap()))
            .collect();
        let counter = |name: &str| {
            stderr
                .lines()
                .find_map(|l| l.strip_prefix(&format!("replay: {name}: ")))
                .and_then(|n| n.trim().parse::<u64>().ok())
                .unwrap_or_else(|| panic!("no `{name}` in replay's summary:\n{stderr}"))
        };
        Replay {
            sip_messages: counter("sip_messages"),
            cdrs,
            stderr,
        }
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        if let Some(mut k) = self.kamailio.take() {
            k.stop("TERM", Duration::from_secs(5));
        }
        if let Some(mut t) = self.tcpdump.take() {
            t.stop("INT", Duration::from_secs(5));
        }
        // release the ports for later runs of this process
        let mut taken = TAKEN.lock().unwrap_or_else(|e| e.into_inner());
        let mine: HashSet<u16> = self
            .ports
            .sip_ports()
            .into_iter()
            .chain([self.ports.hep, self.ports.uas_base])
            .collect();
        taken.retain(|p| !mine.contains(p));
    }
}

/// The sipp processes of a run.
pub struct Calls {
    pub uac: Vec<Proc>,
    pub uas: Vec<Proc>,
    pub started: Instant,
}

/// What `accurate replay` made of the capture.
pub struct Replay {
    pub cdrs: Vec<Cdr>,
    /// SIP messages it read (HEP copies in the HEP view).
    pub sip_messages: u64,
    pub stderr: String,
}

/// The CDR fields the test compares, from replay's JSON or a CGRateS CDR
/// (`CDRsV1.GetCDRs`): DisconnectCause at the top (replay) or in
/// ExtraFields (CGRateS).
#[derive(Debug, Clone)]
pub struct Cdr {
    pub cgrid: String,
    pub run_id: String,
    pub origin_id: String,
    pub request_type: String,
    pub tenant: String,
    pub account: String,
    pub destination: String,
    pub cause: String,
    pub answered: bool,
    pub usage_ns: i64,
    /// None when not rated (null, or -1 as CGRateS writes it).
    pub cost: Option<Decimal>,
    pub raw: Value,
}

impl Cdr {
    pub fn parse(v: &Value) -> Cdr {
        let s = |k: &str| {
            v[k].as_str()
                .unwrap_or_else(|| panic!("CDR without string {k}: {v}"))
                .to_owned()
        };
        let cause = v["DisconnectCause"]
            .as_str()
            .or_else(|| v["ExtraFields"]["DisconnectCause"].as_str())
            .unwrap_or_else(|| panic!("CDR without DisconnectCause: {v}"))
            .to_owned();
        let answered = match &v["AnswerTime"] {
            Value::Null => false,
            Value::String(t) => !t.starts_with("0001-01-01"),
            other => panic!("AnswerTime {other} in {v}"),
        };
        let cost = match &v["Cost"] {
            Value::Null => None,
            Value::Number(n) => {
                let d: Decimal = n.to_string().parse().unwrap();
                (d != Decimal::NEGATIVE_ONE).then_some(d)
            }
            other => panic!("Cost {other} in {v}"),
        };
        Cdr {
            cgrid: s("CGRID"),
            run_id: s("RunID"),
            origin_id: s("OriginID"),
            request_type: s("RequestType"),
            tenant: s("Tenant"),
            account: s("Account"),
            destination: s("Destination"),
            cause,
            answered,
            usage_ns: v["Usage"]
                .as_i64()
                .unwrap_or_else(|| panic!("Usage not in ns: {v}")),
            cost,
            raw: v.clone(),
        }
    }
}

/// Checks the oracle against what sipp was told to do (independently of
/// AccuRate's CDR code): every call of every scenario once, its cause, its
/// caller in turn, its billable time and the cost worked out by hand.
/// Returns the number of calls.
pub fn check_oracle(oracle: &[Cdr]) -> usize {
    check_oracle_calls(oracle, CALLS)
}

/// [`check_oracle`] for runs of `calls` calls per scenario.
pub fn check_oracle_calls(oracle: &[Cdr], calls: usize) -> usize {
    let mut problems = Vec::new();
    let mut by_number: BTreeMap<&str, Vec<&Cdr>> = BTreeMap::new();
    for c in oracle {
        by_number.entry(c.destination.as_str()).or_default().push(c);
    }
    let cgrids: BTreeSet<&str> = oracle.iter().map(|c| c.cgrid.as_str()).collect();
    if cgrids.len() != oracle.len() {
        problems.push(format!("{} CDRs for {} CGRIDs", oracle.len(), cgrids.len()));
    }
    for s in SCENARIOS {
        let got = by_number.remove(s.number).unwrap_or_default();
        if got.len() != calls {
            problems.push(format!(
                "{}: {} calls, sipp made {calls}",
                s.name,
                got.len()
            ));
        }
        for a in ACCOUNTS {
            let n = got.iter().filter(|c| c.account == a).count();
            if n.abs_diff(calls / ACCOUNTS.len()) > 1 {
                problems.push(format!("{}: {n} calls from {a}", s.name));
            }
        }
        for c in got {
            if c.cause != s.cause || c.answered != s.talk_ms.is_some() || c.run_id != "*default" {
                problems.push(format!("{}: {}", s.name, c.raw));
            }
            if c.request_type != "*postpaid" {
                problems.push(format!("{}: not postpaid: {}", s.name, c.raw));
            }
            let talk = i64::try_from(s.talk_ms.unwrap_or(0)).unwrap() * 1_000_000;
            // sipp's pauses are as long as asked, give or take its timer's
            // grain against the capture's clock (64 us short was seen); a
            // busy machine adds transaction time, not enough to reach the
            // next second (the hand-worked cost)
            if c.usage_ns < talk - 10_000_000 || c.usage_ns > talk + 450_000_000 {
                problems.push(format!("{}: usage {} ns: {}", s.name, c.usage_ns, c.raw));
            }
            if c.cost.unwrap_or_default() != s.cost.parse::<Decimal>().unwrap() {
                problems.push(format!("{}: cost is not {}: {}", s.name, s.cost, c.raw));
            }
        }
    }
    for (n, cs) in by_number {
        problems.push(format!("{} calls to unknown number {n}", cs.len()));
    }
    assert!(
        problems.is_empty(),
        "the tcpdump oracle does not show the calls sipp made:\n{}",
        problems.join("\n")
    );
    oracle.len()
}

/// Compares `got` (HEP view, or the server's CDRs) with the oracle: the
/// same calls (CGRID), each once, with the same OriginID, account,
/// destination, cause and request type, a usage within
/// [`USAGE_TOLERANCE_NS`] and the same cost (exactly, unless the two
/// usages are on either side of a whole second: the plan's increment; none
/// or 0 when not answered).
pub fn assert_same_calls(what: &str, oracle: &[Cdr], got: &[Cdr]) {
    let mut problems = Vec::new();
    let mut seen: BTreeMap<&str, Vec<&Cdr>> = BTreeMap::new();
    for c in got {
        seen.entry(c.cgrid.as_str()).or_default().push(c);
    }
    for want in oracle {
        let Some(cs) = seen.remove(want.cgrid.as_str()) else {
            problems.push(format!("missing: {}", want.raw));
            continue;
        };
        if cs.len() != 1 {
            problems.push(format!("{} CDRs for {}", cs.len(), want.raw));
        }
        let c = cs[0];
        let same = c.origin_id == want.origin_id
            && c.run_id == want.run_id
            && c.tenant == want.tenant
            && c.account == want.account
            && c.destination == want.destination
            && c.cause == want.cause
            && c.answered == want.answered
            && c.request_type == want.request_type;
        let du = (c.usage_ns - want.usage_ns).abs();
        let straddles = (c.usage_ns + 999_999_999) / 1_000_000_000
            != (want.usage_ns + 999_999_999) / 1_000_000_000;
        // an unanswered call costs nothing, written 0 or left unrated
        let same_cost = if want.answered {
            straddles || c.cost == want.cost
        } else {
            c.cost.unwrap_or_default().is_zero()
        };
        if !same || du > USAGE_TOLERANCE_NS || !same_cost {
            problems.push(format!(
                "differs (usage {du} ns apart):\n  want {}\n  got  {}",
                want.raw, c.raw
            ));
        }
    }
    for cs in seen.values() {
        for c in cs {
            problems.push(format!("not a call on the wire: {}", c.raw));
        }
    }
    assert!(
        problems.is_empty(),
        "{what}: {} problem(s) over {} expected calls:\n{}",
        problems.len(),
        oracle.len(),
        problems.join("\n")
    );
}

/// Sum of the costs per account.
pub fn cost_per_account(cdrs: &[Cdr]) -> BTreeMap<String, Decimal> {
    let mut m = BTreeMap::new();
    for c in cdrs {
        *m.entry(c.account.clone()).or_insert(Decimal::ZERO) += c.cost.unwrap_or(Decimal::ZERO);
    }
    m
}

/// The last lines of a log in the scratch folder.
pub fn tail(dir: &Scratch, name: &str) -> String {
    let text = dir.read(name);
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

/// Waits for a child to print a line on stderr (read from its log file).
pub fn wait_for_line(dir: &Scratch, log: &str, line: &str) {
    wait_until(
        Duration::from_secs(30),
        &format!("`{line}` in {log}"),
        || dir.read(log).lines().any(|l| l.contains(line)),
        || dir.read(log),
    );
}
