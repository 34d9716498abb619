//! `[[agents.opensips]]` against an OpenSIPS written here: its
//! `mi_datagram` socket (answers `200 OK`, records the commands) and its
//! `event_datagram` events, shaped as OpenSIPS 1.11's acc module sends
//! them (the E_ACC_EVENT / E_ACC_MISSED_EVENT samples in CGRateS's
//! `sessionmanager/osipssm.go`, the E_ACC_CDR one in its
//! `osipsevent.go`; the grammar in OpenSIPS's event_datagram docs).
#![allow(clippy::unwrap_used, dead_code)]

use std::net::UdpSocket;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

mod serve_common;

use serve_common::{Server, credit, dec, rpc, wait_until};

fn plan_dir() -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/tariffplans/sessions")
        .to_str()
        .unwrap()
        .to_owned()
}

fn epoch() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// The fake OpenSIPS: its MI socket and the commands it got.
struct OpenSips {
    mi_addr: String,
    commands: Arc<Mutex<Vec<String>>>,
    events: UdpSocket,
    /// Where AccuRate listens for events.
    agent: String,
}

impl OpenSips {
    fn start() -> OpenSips {
        OpenSips::start_failing(0)
    }

    /// An OpenSIPS whose MI refuses its first `refuse` commands.
    fn start_failing(refuse: usize) -> OpenSips {
        let mi = UdpSocket::bind("127.0.0.1:0").unwrap();
        let mi_addr = mi.local_addr().unwrap().to_string();
        let commands = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&commands);
        std::thread::spawn(move || {
            let mut buf = [0u8; 65_535];
            while let Ok((n, from)) = mi.recv_from(&mut buf) {
                let mut seen = seen.lock().unwrap();
                seen.push(String::from_utf8_lossy(&buf[..n]).into_owned());
                let answer: &[u8] = if seen.len() <= refuse {
                    b"500 Server Internal Error\n\n"
                } else {
                    b"200 OK\n\n"
                };
                mi.send_to(answer, from).unwrap();
            }
        });
        // a free port for AccuRate's event socket
        let agent = UdpSocket::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .to_string();
        OpenSips {
            mi_addr,
            commands,
            events: UdpSocket::bind("127.0.0.1:0").unwrap(),
            agent,
        }
    }

    fn config(&self, expire: u64) -> String {
        format!(
            "[api]\nrpc-tcp = \"127.0.0.1:0\"\nrpc-http = \"127.0.0.1:0\"\n\
             [[agents.opensips]]\nlisten = \"{}\"\nmi = \"{}\"\nsubscribe-expire-secs = {expire}\n",
            self.agent, self.mi_addr
        )
    }

    fn send(&self, datagram: &str) {
        self.events
            .send_to(datagram.as_bytes(), &self.agent)
            .unwrap();
    }

    fn commands(&self) -> Vec<String> {
        self.commands.lock().unwrap().clone()
    }

    fn subscriptions(&self) -> Vec<String> {
        self.commands()
            .into_iter()
            .filter(|c| c.starts_with(":event_subscribe:"))
            .collect()
    }

    fn wait_command(&self, what: &str, cmd: &str) {
        wait_until(what, || self.commands().iter().any(|c| c == cmd));
    }
}

/// An E_ACC_EVENT of an INVITE answered at `t` (the dialog `dialog_id`
/// added by the tutorial's `evi_extra`).
fn invite(callid: &str, account: &str, reqtype: &str, dialog: &str, t: u64) -> String {
    format!(
        "E_ACC_EVENT\nmethod::INVITE\nfrom_tag::87d02470\nto_tag::a671a98\ncallid::{callid}\n\
         sip_code::200\nsip_reason::OK\ntime::{t}\ncgr_reqtype::{reqtype}\ncgr_account::{account}\n\
         cgr_subject::{account}\ncgr_destination::4930555002\noriginalUri::sip:4930555002@10.0.0.7\n\
         duration::\ndialog_id::{dialog}\n"
    )
}

/// The E_ACC_EVENT of the BYE at `t`: no cgr_* values, as OpenSIPS logs it.
fn bye(callid: &str, dialog: &str, t: u64) -> String {
    format!(
        "E_ACC_EVENT\nmethod::BYE\nfrom_tag::a671a98\nto_tag::87d02470\ncallid::{callid}\n\
         sip_code::200\nsip_reason::OK\ntime::{t}\ncgr_reqtype::\ncgr_account::\ncgr_subject::\n\
         cgr_destination::\noriginalUri::sip:1002@10.0.0.1:5060;transport=udp\nduration::\n\
         dialog_id::{dialog}\n"
    )
}

fn cdrs_of(s: &Server, origin: &str) -> Vec<Value> {
    rpc(s, "CDRsV1.GetCDRs", json!({"OriginIDs": [origin]}))
        .as_array()
        .cloned()
        .unwrap_or_default()
}

#[test]
fn subscription_call_start_end_cdrs_and_renewal() {
    let o = OpenSips::start();
    let s = Server::start_with(&["--tariffplan", &plan_dir()], Some(&o.config(2)));
    wait_until("the subscriptions", || o.subscriptions().len() >= 3);
    let subs = o.subscriptions();
    for (cmd, ev) in subs
        .iter()
        .zip(["E_ACC_CDR", "E_ACC_EVENT", "E_ACC_MISSED_EVENT"])
    {
        assert_eq!(
            cmd,
            &format!(":event_subscribe:\n{ev}\nudp:{}\n2\n", o.agent)
        );
    }

    // A call: INVITE then BYE 50 s later.
    let t0 = epoch();
    o.send(&invite(
        "osc1@10.0.0.1",
        "1001",
        "*prepaid",
        "3401:1472",
        t0,
    ));
    wait_until("the session started", || {
        rpc(&s, "SessionSv1.GetActiveSessionsCount", json!({})) == json!(1)
    });
    let active = rpc(&s, "SessionSv1.GetActiveSessions", json!({}));
    assert_eq!(active[0]["OriginID"], "osc1@10.0.0.1", "{active}");
    o.send(&bye("osc1@10.0.0.1", "3401:1472", t0 + 50));
    let mut cdrs = Vec::new();
    wait_until("the call's CDR", || {
        cdrs = cdrs_of(&s, "osc1@10.0.0.1");
        !cdrs.is_empty()
    });
    assert_eq!(cdrs.len(), 1, "{cdrs:?}");
    assert_eq!(cdrs[0]["Usage"], json!(50_000_000_000_u64), "{cdrs:?}");
    assert_eq!(cdrs[0]["Source"], "OSIPS_E_ACC_EVENT");
    assert_eq!(cdrs[0]["OriginHost"], "127.0.0.1");
    assert_eq!(cdrs[0]["Account"], "1001");
    assert_eq!(
        rpc(&s, "SessionSv1.GetActiveSessionsCount", json!({})),
        json!(0)
    );
    // 50 s at 0.01/s
    assert_eq!(credit(&s, "1001"), dec("9.50"));

    // E_ACC_CDR: a postpaid CDR of 30 s.
    o.send(&format!(
        "E_ACC_CDR\nto_tag::5ec6e925\ncgr_account::1004\nsetuptime::1\ncreated::{}\nmethod::INVITE\n\
         callid::oscdr1\nsip_reason::OK\ntime::{}\ncgr_reqtype::*postpaid\n\
         cgr_destination::4930555002\ncgr_subject::1004\nsip_code::200\nduration::30\nfrom_tag::a57\n",
        t0 - 1,
        t0
    ));
    wait_until("the E_ACC_CDR's CDR", || {
        cdrs = cdrs_of(&s, "oscdr1");
        !cdrs.is_empty()
    });
    assert_eq!(cdrs[0]["Usage"], json!(30_000_000_000_u64), "{cdrs:?}");
    assert_eq!(cdrs[0]["Source"], "OSIPS_E_ACC_CDR");
    wait_until("the postpaid debit", || credit(&s, "1004") == dec("9.70"));

    // E_ACC_MISSED_EVENT: a failed call's CDR, nothing charged.
    o.send(&format!(
        "E_ACC_MISSED_EVENT\nmethod::INVITE\nfrom_tag::1d5efcc1\nto_tag::\ncallid::osmiss1\n\
         sip_code::404\nsip_reason::Not Found\ntime::{t0}\ncgr_reqtype::*postpaid\n\
         cgr_account::1004\ncgr_subject::1004\ncgr_destination::4930555002\nduration::\n"
    ));
    wait_until("the missed call's CDR", || {
        cdrs = cdrs_of(&s, "osmiss1");
        !cdrs.is_empty()
    });
    assert_eq!(cdrs[0]["Usage"], json!(0), "{cdrs:?}");
    assert_eq!(cdrs[0]["ExtraFields"]["DisconnectCause"], "404", "{cdrs:?}");
    assert_eq!(credit(&s, "1004"), dec("9.70"));

    // Malformed datagrams are dropped; the agent goes on.
    o.send("");
    o.send("bad name\nk::v\n");
    o.send("E_ACC_EVENT\nmethod::INVITE\ncallid::x\n");

    // Renewal: the 2 s subscriptions are sent again before they expire.
    let start = Instant::now();
    wait_until("the renewal", || o.subscriptions().len() >= 6);
    assert!(start.elapsed() < Duration::from_secs(5));

    // OpenSIPS restarts: subscribed again at once.
    let before = o.subscriptions().len();
    o.send("E_OPENSIPS_START\n");
    wait_until("the re-subscription", || {
        o.subscriptions().len() >= before + 3
    });
}

#[test]
fn prepaid_call_cut_with_dlg_end_dlg_when_the_money_runs_out() {
    let o = OpenSips::start();
    let s = Server::start_with(&["--tariffplan", &plan_dir()], Some(&o.config(3600)));
    wait_until("the subscriptions", || o.subscriptions().len() >= 3);
    // 0.02 left: 2 s of call.
    let r = rpc(
        &s,
        "APIerSv1.SetBalance",
        json!({"Tenant": "cgrates.org", "Account": "1003", "BalanceType": "*monetary",
               "Value": "0.02", "Balance": {"ID": "credit"}}),
    );
    assert_eq!(r, json!("OK"));
    let t0 = epoch();
    o.send(&invite(
        "ospre1@10.0.0.1",
        "1003",
        "*prepaid",
        "77:4242",
        t0,
    ));
    o.wait_command("the dialog ended", ":dlg_end_dlg:\n77\n4242\n\n");
    // OpenSIPS ends the call: its BYE.
    o.send(&bye("ospre1@10.0.0.1", "77:4242", t0 + 2));
    let mut cdrs = Vec::new();
    wait_until("the cut call's CDR", || {
        cdrs = cdrs_of(&s, "ospre1@10.0.0.1");
        !cdrs.is_empty()
    });
    assert_eq!(cdrs[0]["Usage"], json!(2_000_000_000_u64), "{cdrs:?}");
    assert_eq!(credit(&s, "1003"), dec("0"));

    // A start the sessions refuse (nothing left) is ended at once.
    o.send(&invite(
        "ospre2@10.0.0.1",
        "1003",
        "*prepaid",
        "78:1",
        epoch(),
    ));
    o.wait_command("the refused dialog ended", ":dlg_end_dlg:\n78\n1\n\n");
    assert_eq!(
        rpc(&s, "SessionSv1.GetActiveSessionsCount", json!({})),
        json!(0)
    );
}

#[test]
fn a_refused_subscription_is_retried() {
    let o = OpenSips::start_failing(1);
    let _s = Server::start_with(&["--tariffplan", &plan_dir()], Some(&o.config(3600)));
    // the first round stops at the refused command, the retry sends all
    wait_until("the retried subscriptions", || o.subscriptions().len() >= 4);
    let subs = o.subscriptions();
    assert_eq!(subs[0], subs[1], "the refused E_ACC_CDR is sent again");
    assert!(subs[3].starts_with(":event_subscribe:\nE_ACC_MISSED_EVENT\n"));
}
