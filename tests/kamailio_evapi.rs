//! Real peer: Kamailio with `examples/kamailio/kamailio-accurate.cfg`,
//! passive and active on one proxy, in front of `accurate serve`:
//!
//! ```text
//! sipp UAC -> Kamailio :sip -> sipp UAS
//!               |-- siptrace HEPv3 --------> accurate serve --hep udp:...
//!               `-- evapi (AccuRate connects) <- accurate serve --kamailio-evapi ...
//! ```
//!
//! First a sipp REGISTER of 1001 with digest auth: Kamailio checks the
//! credentials against the password AccuRate's AttributeS gives
//! (`simpleauth`), the right one gets 200, a wrong one 403.
//!
//! AccuRate's passive side has `[mapping] request-type = "*none"`: it keeps
//! an uncharged CDR of every call it saw; the evapi side charges. Five calls,
//! one after the other, on free loopback ports:
//!
//! - 1001 (10.00 at 0.01/s): authorized with MaxUsage 1000 (what the
//!   account pays), answered, ended by the caller after 1.5 s; its CDR
//!   stored once, charged once.
//! - 1003 (0.03: 3 s): authorized with MaxUsage 3, cut by AccuRate when the
//!   money runs out (`CGR_SESSION_DISCONNECT` -> `dlg.end_dlg`: BYE to both
//!   sides, before Kamailio's own backstop at MaxUsage + 5 s); its CDR says
//!   why, the balance is 0.
//! - 1001 again, cut from the API after a second:
//!   `SessionSv1.ForceDisconnect` of the agent's session reaches Kamailio
//!   as `CGR_SESSION_DISCONNECT` (`FORCED_DISCONNECT`); charged for what
//!   was used.
//! - 1001 once more, 5 s, and AccuRate restarted (SIGTERM, same data dir)
//!   while it is up: the agent reconnects, the session is resumed, the
//!   call's end is charged once.
//! - 1001 again, and Kamailio restarted while it is up: its dialogs are
//!   gone, the session sync at the agent's reconnect ends the session with
//!   its CDR; the caller's BYE later charges nothing more.
//!
//! Needs the Debian packages `kamailio`, `kamailio-extra-modules` (evapi),
//! `kamailio-json-modules` (json) and `sip-tester` (sipp): without Kamailio
//! the test says so and passes (unless `ACCURATE_REQUIRE_PEERS` is set, as
//! in CI); another one missing fails it.
//! About 18 s.
#![allow(missing_docs, clippy::unwrap_used)]

mod common;
mod serve_common;

use std::net::{TcpListener, UdpSocket};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Proc, Scratch, kamailio_modules, require, root, which};
use rust_decimal::Decimal;
use serde_json::{Value, json};
use serve_common::{Server, credit, dec, rpc, wait_until};

/// A loopback port free for UDP and TCP, not handed out before.
fn free_port(taken: &mut Vec<u16>) -> u16 {
    loop {
        let p = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        if !taken.contains(&p) && UdpSocket::bind(("127.0.0.1", p)).is_ok() {
            taken.push(p);
            return p;
        }
    }
}

/// The CDRs of `account` written by `source`.
fn cdrs(s: &Server, account: &str, source: &str) -> Vec<Value> {
    let r = rpc(
        s,
        "CDRsV1.GetCDRs",
        json!({"Accounts": [account], "Sources": [source]}),
    );
    r.as_array().cloned().unwrap_or_default()
}

fn usage_ns(cdr: &Value) -> u64 {
    cdr["Usage"].as_u64().unwrap_or_else(|| panic!("{cdr}"))
}

fn cost(cdr: &Value) -> Decimal {
    cdr["Cost"].to_string().parse().unwrap()
}

struct Peers {
    sipp: std::path::PathBuf,
    dir: Scratch,
    sip: u16,
    uas: u16,
    uac: u16,
    ctl: [u16; 2],
}

/// A call under way.
struct Call {
    uas: Proc,
    uac: Proc,
    t0: Instant,
    uas_log: String,
    uac_log: String,
}

impl Peers {
    /// One call from `account` to 4930555002: the UAS answers after 300 ms
    /// and waits for a BYE; the UAC runs `uac` (of tests/peers/e2e/sipp/)
    /// with `extra` arguments. Returns how long the UAC took. `uas_bye`:
    /// the UAS must get its BYE (else it is only waited for a moment).
    fn call(&self, tag: &str, account: &str, uac: &str, extra: &[&str], uas_bye: bool) -> Duration {
        let c = self.start(tag, account, uac, extra);
        self.finish(c, uas_bye)
    }

    /// A REGISTER of `account` with digest `password` (sipp's `-au`/`-ap`):
    /// whether sipp got its 200, and its log.
    fn register(&self, tag: &str, account: &str, password: &str) -> (bool, String) {
        let users = self.dir.file(&format!("{tag}-users.csv"));
        std::fs::write(&users, format!("SEQUENTIAL\n{account};\n")).unwrap();
        let log = format!("{tag}-register.log");
        let mut uac = Proc::spawn(
            "sipp REGISTER",
            Command::new(&self.sipp)
                .arg("-sf")
                .arg(root().join("tests/peers/kamevapi/register-auth-uac.xml"))
                .arg(format!("127.0.0.1:{}", self.sip))
                .args(["-i", "127.0.0.1", "-p", &self.uac.to_string()])
                .args(["-cp", &self.ctl[1].to_string()])
                .args(["-au", account, "-ap", password, "-m", "1"])
                .arg("-inf")
                .arg(&users)
                .args(["-nostdin", "-timeout", "10", "-timeout_error"])
                .stdin(Stdio::null())
                .stdout(self.dir.log(&log))
                .stderr(Stdio::null()),
        );
        let st = uac
            .wait_timeout(Duration::from_secs(20))
            .unwrap_or_else(|| panic!("sipp REGISTER did not finish:\n{}", self.dir.read(&log)));
        (st.success(), self.dir.read(&log))
    }

    /// The first half of [`Peers::call`]: both sipp started.
    fn start(&self, tag: &str, account: &str, uac: &str, extra: &[&str]) -> Call {
        let peers = root().join("tests/peers");
        let callers = self.dir.file(&format!("{tag}-callers.csv"));
        std::fs::write(&callers, format!("SEQUENTIAL\n{account};\n")).unwrap();
        let uas_log = format!("{tag}-uas.log");
        let uac_log = format!("{tag}-uac.log");
        quiet_uas_port(self.uas);
        let uas = Proc::spawn(
            "sipp UAS",
            Command::new(&self.sipp)
                .arg("-sf")
                .arg(peers.join("sipp/answered-uas.xml"))
                .args(["-i", "127.0.0.1", "-p", &self.uas.to_string(), "-m", "1"])
                .args(["-cp", &self.ctl[0].to_string()])
                .args(["-nostdin", "-timeout", "20", "-timeout_error"])
                .stdin(Stdio::null())
                .stdout(self.dir.log(&uas_log))
                .stderr(Stdio::null()),
        );
        let uas_port = self.uas;
        wait_until("sipp UAS to listen", || {
            UdpSocket::bind(("127.0.0.1", uas_port)).is_err()
        });
        let t0 = Instant::now();
        let uac = Proc::spawn(
            "sipp UAC",
            Command::new(&self.sipp)
                .arg("-sf")
                .arg(peers.join("e2e/sipp").join(uac))
                .arg(format!("127.0.0.1:{}", self.sip))
                .args(["-i", "127.0.0.1", "-p", &self.uac.to_string()])
                .args(["-cp", &self.ctl[1].to_string()])
                .args(["-s", "4930555002", "-m", "1"])
                .arg("-inf")
                .arg(&callers)
                .args(extra)
                .args(["-nostdin", "-timeout", "20", "-timeout_error"])
                .stdin(Stdio::null())
                .stdout(self.dir.log(&uac_log))
                .stderr(Stdio::null()),
        );
        Call {
            uas,
            uac,
            t0,
            uas_log,
            uac_log,
        }
    }

    /// The second half of [`Peers::call`]: both sipp done.
    fn finish(&self, c: Call, uas_bye: bool) -> Duration {
        let Call {
            mut uas,
            mut uac,
            t0,
            uas_log,
            uac_log,
        } = c;
        let st = uac
            .wait_timeout(Duration::from_secs(30))
            .unwrap_or_else(|| panic!("sipp UAC did not finish:\n{}", self.dir.read(&uac_log)));
        let took = t0.elapsed();
        assert!(
            st.success(),
            "sipp UAC failed ({st}):\n{}\nkamailio:\n{}",
            self.dir.read(&uac_log),
            self.dir.read("kamailio.log")
        );
        if !uas_bye {
            // Kamailio 5.6's dlg.end_dlg sends the second BYE only if the
            // first one's 200 has not ended the dialog yet: on a busy
            // machine the callee may get none (a Kamailio race; the caller
            // is cut, the call is over for billing).
            if uas.wait_timeout(Duration::from_secs(2)).is_none() {
                eprintln!("kamailio_evapi: the callee got no BYE from Kamailio (dlg_bye_all race)");
            }
            return took;
        }
        let st = uas
            .wait_timeout(Duration::from_secs(30))
            .unwrap_or_else(|| panic!("sipp UAS did not finish:\n{}", self.dir.read(&uas_log)));
        assert!(
            st.success(),
            "sipp UAS failed ({st}):\n{}",
            self.dir.read(&uas_log)
        );
        took
    }
}

#[test]
fn prepaid_calls_through_kamailio_evapi_and_siptrace() {
    let Some(kamailio) = which("kamailio") else {
        assert!(
            std::env::var_os("ACCURATE_REQUIRE_PEERS").is_none(),
            "kamailio_evapi: `kamailio` is not installed and ACCURATE_REQUIRE_PEERS is set"
        );
        eprintln!(
            "kamailio_evapi: SKIPPED: `kamailio` is not installed (Debian packages `kamailio`, \
             `kamailio-extra-modules`, `kamailio-json-modules`; scripts/setup.sh installs them)"
        );
        return;
    };
    let sipp = require("sipp", "sip-tester");
    let modules = kamailio_modules();
    for (module, package) in [
        ("evapi.so", "kamailio-extra-modules"),
        ("json.so", "kamailio-json-modules"),
    ] {
        assert!(
            modules.join(module).is_file(),
            "Kamailio's {module} is missing: install the Debian package `{package}`"
        );
    }
    let mut taken = Vec::new();
    let sip = free_port(&mut taken);
    let hep = free_port(&mut taken);
    let evapi = free_port(&mut taken);
    let peers = Peers {
        sipp,
        dir: Scratch::new("kamevapi"),
        sip,
        uas: free_port(&mut taken),
        uac: free_port(&mut taken),
        ctl: [free_port(&mut taken), free_port(&mut taken)],
    };
    let dir = &peers.dir;

    let plan = root().join("tests/data/tariffplans/kamevapi");
    let config = "[api]\nrpc-tcp = \"127.0.0.1:0\"\nrpc-http = \"127.0.0.1:0\"\n\
                  [mapping]\nrequest-type = \"*none\"\n";
    let data = dir.file("accurate-data");
    let hep_bind = format!("udp:127.0.0.1:{hep}");
    let evapi_addr = format!("127.0.0.1:{evapi}");
    let serve_args = |plan: Option<&str>| {
        let mut a = vec!["--data-dir", data.to_str().unwrap()];
        a.extend(["--hep", &hep_bind, "--kamailio-evapi", &evapi_addr]);
        if let Some(p) = plan {
            a.extend(["--tariffplan", p]);
        }
        Server::start_with(&a, Some(config))
    };
    let mut s = serve_args(Some(plan.to_str().unwrap()));

    let rundir = dir.file("run");
    std::fs::create_dir_all(&rundir).unwrap();
    let start_kamailio = |log: &str| {
        Proc::spawn(
            "kamailio",
            Command::new(&kamailio)
                .arg("-f")
                .arg(root().join("examples/kamailio/kamailio-accurate.cfg"))
                .arg("-L")
                .arg(&modules)
                .arg("-Y")
                .arg(&rundir)
                .args(["-DD", "-E"])
                .args(["-A", &format!("SIP_PORT={sip}")])
                .args(["-A", &format!("UAS_HOSTPORT=\"127.0.0.1:{}\"", peers.uas)])
                .args(["-A", &format!("HEP_URI=\"sip:127.0.0.1:{hep}\"")])
                .args(["-A", &format!("EVAPI_BIND=\"127.0.0.1:{evapi}\"")])
                .arg("-A")
                .arg(format!("CTL_SOCK=\"unix:{}/ctl\"", rundir.display()))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(dir.log(log)),
        )
    };
    let mut kam = start_kamailio("kamailio.log");
    // AccuRate connects to evapi (it keeps retrying until Kamailio is up).
    wait_until("AccuRate's evapi connection in kamailio.log", || {
        dir.read("kamailio.log")
            .contains("accurate: evapi connection")
    });

    // ---- REGISTER with digest auth: Kamailio asks AccuRate for 1001's
    // password (CGR_AUTH_REQUEST, simpleauth context, *attributes) and
    // checks the credentials with it (pv_auth_check).
    let (ok, out) = peers.register("r1", "1001", "reg-1001-pw");
    assert!(
        ok,
        "REGISTER with the right password:\n{out}\nkamailio:\n{}",
        dir.read("kamailio.log")
    );
    assert!(
        dir.read("kamailio.log")
            .contains("REGISTER 1001 authenticated")
    );
    let (ok, _) = peers.register("r2", "1001", "wrong-pw");
    assert!(!ok, "REGISTER with a wrong password was accepted");
    assert!(
        dir.read("kamailio.log")
            .contains("REGISTER 1001 refused: wrong credentials"),
        "{}",
        dir.read("kamailio.log")
    );

    // ---- 1001: an ordinary prepaid call, ended by the caller.
    peers.call(
        "c1",
        "1001",
        "answered-caller-bye-uac.xml",
        &["-d", "1500"],
        true,
    );
    let log = dir.read("kamailio.log");
    assert!(
        log.contains("authorized MaxUsage=1000"),
        "no MaxUsage=1000 (10.00 at 0.01/s):\n{log}"
    );
    wait_until("1001's CDRs (evapi and HEP)", || {
        !cdrs(&s, "1001", "KamailioAgent").is_empty() && !cdrs(&s, "1001", "accurate").is_empty()
    });
    let active = cdrs(&s, "1001", "KamailioAgent");
    assert_eq!(active.len(), 1, "{active:?}");
    let c = &active[0];
    assert_eq!(c["RequestType"], "*prepaid", "{c}");
    assert_eq!(c["Destination"], "4930555002", "{c}");
    assert!(
        c["OriginID"].as_str().unwrap().contains(';'),
        "OriginID is Call-ID;From-tag: {c}"
    );
    // Kamailio reports whole seconds ($TS): 1.5 s of talk is 1 or 2.
    let usage = usage_ns(c);
    assert!(
        [1_000_000_000, 2_000_000_000].contains(&usage),
        "usage {usage}: {c}"
    );
    let charged = cost(c);
    assert_eq!(
        charged,
        Decimal::from(usage / 1_000_000_000) * dec("0.01"),
        "{c}"
    );
    assert_eq!(credit(&s, "1001"), dec("10") - charged);
    // The passive record of the same call: seen through HEP, not charged.
    let passive = cdrs(&s, "1001", "accurate");
    assert_eq!(passive.len(), 1, "{passive:?}");
    assert_eq!(passive[0]["RequestType"], "*none", "{}", passive[0]);
    let call_id = c["OriginID"].as_str().unwrap().split(';').next().unwrap();
    assert_eq!(passive[0]["OriginID"], call_id, "{}", passive[0]);
    let heard = usage_ns(&passive[0]);
    assert!(
        (1_400_000_000..2_500_000_000).contains(&heard),
        "HEP usage {heard}: {}",
        passive[0]
    );

    // ---- 1003: 3 s of money; the caller waits, AccuRate cuts the call.
    let took = peers.call("c2", "1003", "answered-callee-bye-uac.xml", &[], false);
    let log = dir.read("kamailio.log");
    assert!(log.contains("authorized MaxUsage=3\n"), "{log}");
    assert!(
        log.contains("CGR_SESSION_DISCONNECT") && log.contains("INSUFFICIENT_CREDIT"),
        "no disconnect from AccuRate:\n{log}"
    );
    // 300 ms of ringing + 3 s; Kamailio's own timeout would be 5 s later.
    assert!(
        took < Duration::from_millis(6_500),
        "the call lasted {took:?}: not cut when its money ran out"
    );
    wait_until("1003's CDR", || {
        !cdrs(&s, "1003", "KamailioAgent").is_empty()
    });
    let active = cdrs(&s, "1003", "KamailioAgent");
    assert_eq!(active.len(), 1, "{active:?}");
    let c = &active[0];
    assert_eq!(
        c["ExtraFields"]["DisconnectRequested"], "INSUFFICIENT_CREDIT",
        "{c}"
    );
    let usage = usage_ns(c);
    assert!(
        (3_000_000_000..=4_000_000_000).contains(&usage),
        "usage {usage}: {c}"
    );
    assert_eq!(credit(&s, "1003"), Decimal::ZERO);
    assert!(cost(c) >= dec("0.03"), "{c}");
    // (the passive side ends its session when the last BYE's HEP copy
    // comes)
    wait_until("no session left", || {
        rpc(&s, "SessionSv1.GetActiveSessionsCount", json!({})) == json!(0)
    });
    // ---- 1001 again, cut from the API: SessionSv1.ForceDisconnect of
    // the agent's session reaches Kamailio as CGR_SESSION_DISCONNECT.
    let before = credit(&s, "1001");
    let call = peers.start("c3", "1001", "answered-callee-bye-uac.xml", &[]);
    let agent_session = json!({"Filters": ["*string:~*req.Account:1001",
        format!("*string:~*req.OriginHost:127.0.0.1:{evapi}")]});
    wait_until("the agent's session of the third call", || {
        rpc(
            &s,
            "SessionSv1.GetActiveSessionsCount",
            agent_session.clone(),
        ) == json!(1)
    });
    std::thread::sleep(Duration::from_millis(1_000));
    assert_eq!(
        rpc(&s, "SessionSv1.ForceDisconnect", agent_session.clone()),
        json!("OK")
    );
    let took = peers.finish(call, false);
    assert!(took < Duration::from_secs(5), "the call lasted {took:?}");
    let log = dir.read("kamailio.log");
    assert!(log.contains("FORCED_DISCONNECT"), "{log}");
    wait_until("the forced call's CDR", || {
        cdrs(&s, "1001", "KamailioAgent").len() == 2
    });
    let forced = cdrs(&s, "1001", "KamailioAgent");
    let c = forced
        .iter()
        .find(|c| c["ExtraFields"]["DisconnectRequested"] == "FORCED_DISCONNECT")
        .unwrap_or_else(|| panic!("{forced:?}"));
    let usage = usage_ns(c);
    assert!(
        (1_000_000_000..3_000_000_000).contains(&usage),
        "usage {usage}: {c}"
    );
    assert_eq!(credit(&s, "1001"), before - cost(c), "{c}");
    let charged = dec("10") - credit(&s, "1001");

    // ---- AccuRate restarted during a call (same data dir, the plan from
    // its store): the agent reconnects, Kamailio still lists the dialog,
    // the session goes on and the call is charged once when it ends.
    let seen: Vec<Value> = cdrs(&s, "1001", "KamailioAgent");
    let call = peers.start("c4", "1001", "answered-caller-bye-uac.xml", &["-d", "5000"]);
    wait_until("the agent's session of the fourth call", || {
        rpc(
            &s,
            "SessionSv1.GetActiveSessionsCount",
            agent_session.clone(),
        ) == json!(1)
    });
    let (st, _) = s.signal("-TERM");
    assert!(st.success(), "accurate serve exited with {st}");
    drop(s);
    let s = serve_args(None);
    wait_until("the agent back on evapi", || {
        dir.read("kamailio.log")
            .matches("accurate: evapi connection")
            .count()
            == 2
    });
    assert_eq!(
        rpc(
            &s,
            "SessionSv1.GetActiveSessionsCount",
            agent_session.clone()
        ),
        json!(1),
        "the session did not survive the restart"
    );
    peers.finish(call, true);
    wait_until("the fourth call's CDR", || {
        cdrs(&s, "1001", "KamailioAgent").len() == 3
    });
    let all = cdrs(&s, "1001", "KamailioAgent");
    let c = all
        .iter()
        .find(|c| !seen.iter().any(|o| o["OriginID"] == c["OriginID"]))
        .unwrap();
    let usage = usage_ns(c);
    assert!(
        [5_000_000_000, 6_000_000_000].contains(&usage),
        "usage {usage}: {c}"
    );
    assert_eq!(
        cost(c),
        Decimal::from(usage / 1_000_000_000) * dec("0.01"),
        "{c}"
    );
    let charged = charged + cost(c);

    // ---- Kamailio restarted during a call: its dialogs are gone, so the
    // session sync at the agent's reconnect (CGR_DLG_LIST) ends the session
    // there and then, its CDR written; the caller's later BYE (relayed by
    // the new Kamailio, which knows no dialog) charges nothing more.
    let seen: Vec<Value> = cdrs(&s, "1001", "KamailioAgent");
    let before = credit(&s, "1001");
    let call = peers.start("c5", "1001", "answered-caller-bye-uac.xml", &["-d", "4000"]);
    wait_until("the agent's session of the fifth call", || {
        rpc(
            &s,
            "SessionSv1.GetActiveSessionsCount",
            agent_session.clone(),
        ) == json!(1)
    });
    kam.stop("TERM", Duration::from_secs(10));
    kam = start_kamailio("kamailio2.log");
    wait_until("the agent on the new Kamailio", || {
        dir.read("kamailio2.log")
            .contains("accurate: evapi connection")
    });
    wait_until("the lost dialog's session ended by the sync", || {
        rpc(
            &s,
            "SessionSv1.GetActiveSessionsCount",
            agent_session.clone(),
        ) == json!(0)
    });
    peers.finish(call, true);
    wait_until("the fifth call's CDR", || {
        cdrs(&s, "1001", "KamailioAgent").len() == seen.len() + 1
    });
    let all = cdrs(&s, "1001", "KamailioAgent");
    let c = all
        .iter()
        .find(|c| !seen.iter().any(|o| o["OriginID"] == c["OriginID"]))
        .unwrap();
    let usage = usage_ns(c);
    assert!((1..4_000_000_000).contains(&usage), "usage {usage}: {c}");
    assert_eq!(credit(&s, "1001"), before - cost(c), "{c}");
    let charged = charged + cost(c);
    drop(kam);

    // Charged once: nothing moves afterwards.
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(credit(&s, "1001"), dec("10") - charged);
    assert_eq!(cdrs(&s, "1001", "KamailioAgent").len(), 4);
    assert_eq!(cdrs(&s, "1003", "KamailioAgent").len(), 1);
}

/// Answers, on the callee's port, what Kamailio still sends there for an
/// earlier call (a BYE retransmitted after that call's sipp UAS had gone,
/// see `finish`), until the port is quiet: otherwise the next call's UAS
/// takes it for its INVITE's place and fails.
fn quiet_uas_port(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(6);
    let sock = loop {
        match UdpSocket::bind(("127.0.0.1", port)) {
            Ok(s) => break s,
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
            Err(e) => panic!("the callee's port {port} stays taken: {e}"),
        }
    };
    sock.set_read_timeout(Some(Duration::from_millis(700)))
        .unwrap();
    let mut buf = [0u8; 65535];
    while Instant::now() < deadline {
        let Ok((n, from)) = sock.recv_from(&mut buf) else {
            return;
        };
        let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
        if !msg.starts_with("BYE ") {
            continue;
        }
        let mut reply = String::from("SIP/2.0 200 OK\r\n");
        for line in msg.lines() {
            let name = line
                .split(':')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase();
            if ["via", "v", "from", "f", "to", "t", "call-id", "i", "cseq"].contains(&name.as_str())
            {
                reply.push_str(line.trim_end());
                reply.push_str("\r\n");
            }
        }
        reply.push_str("Content-Length: 0\r\n\r\n");
        let _ = sock.send_to(reply.as_bytes(), from);
    }
}
