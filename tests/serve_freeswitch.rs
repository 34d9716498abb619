//! `accurate serve --freeswitch-esl` against a FreeSWITCH event socket
//! written here (a TCP listener speaking ESL as the mod_event_socket
//! documentation describes it: `auth/request`, `command/reply`,
//! `api/response`, `text/event-plain` events with URL-encoded values).
//! It sends a call's CHANNEL_PARK / CHANNEL_ANSWER /
//! CHANNEL_HANGUP_COMPLETE and records the api commands AccuRate sends.
#![allow(clippy::unwrap_used, dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::json;

mod serve_common;

use serve_common::{Server, credit, dec, rpc, wait_until};

fn plan_dir() -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/tariffplans/sessions")
        .to_str()
        .unwrap()
        .to_owned()
}

/// The fake FreeSWITCH's side of one event socket connection.
struct Esl {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Esl {
    /// Waits for AccuRate to connect and asks it to authenticate.
    fn accept(l: &TcpListener) -> Esl {
        l.set_nonblocking(true).unwrap();
        let end = Instant::now() + Duration::from_secs(30);
        loop {
            match l.accept() {
                Ok((stream, _)) => {
                    stream.set_nonblocking(false).unwrap();
                    stream
                        .set_read_timeout(Some(Duration::from_secs(30)))
                        .unwrap();
                    let mut e = Esl {
                        stream,
                        buf: Vec::new(),
                    };
                    e.send(b"Content-Type: auth/request\n\n");
                    return e;
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    assert!(Instant::now() < end, "AccuRate did not connect");
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(e) => panic!("{e}"),
            }
        }
    }

    /// Accepts, checks the password and the subscription, answers the
    /// session sync's `show channels` with no channel.
    fn login(l: &TcpListener, password: &str) -> Esl {
        Esl::login_with(l, password, &[])
    }

    /// As [`Esl::login`], `show channels` listing `channels`.
    fn login_with(l: &TcpListener, password: &str, channels: &[&str]) -> Esl {
        let mut e = Esl::accept(l);
        assert_eq!(e.recv_raw(), format!("auth {password}"));
        e.reply("+OK accepted");
        let sub = e.recv_raw();
        assert!(sub.starts_with("event plain "), "{sub}");
        for ev in ["CHANNEL_PARK", "CHANNEL_ANSWER", "CHANNEL_HANGUP_COMPLETE"] {
            assert!(sub.contains(ev), "{sub}");
        }
        e.reply("+OK event listener enabled plain");
        // CGRateS bills the inbound legs only
        assert_eq!(e.recv_raw(), "filter Call-Direction inbound");
        e.reply("+OK filter added. [Call-Direction]=[inbound]");
        assert_eq!(e.recv_raw(), "api show channels");
        // `show channels` as FreeSWITCH prints it (fsapi show.c: a CSV
        // header, a row per channel, `N total.`)
        let mut body = String::from(
            "uuid,direction,created,created_epoch,name,state,cid_name,cid_num,ip_addr,dest,application,application_data,dialplan,context,read_codec,read_rate,read_bit_rate,write_codec,write_rate,write_bit_rate,secure,hostname,presence_id,presence_data,accountcode,callstate\n",
        );
        for c in channels {
            body.push_str(&format!(
                "{c},inbound,2024-05-01 12:00:00,1714564800,sofia/internal/1001@10.0.0.5,CS_EXECUTE,Extension 1001,1001,10.0.0.9,4930555002,,,XML,default,PCMU,8000,64000,PCMU,8000,64000,,fs1,,,,ACTIVE\n"
            ));
        }
        body.push_str(&format!("\n{} total.\n", channels.len()));
        e.send(
            format!(
                "Content-Type: api/response\nContent-Length: {}\n\n{body}",
                body.len()
            )
            .as_bytes(),
        );
        e
    }

    /// AccuRate closes the socket (a reset counts; a timeout does not).
    fn assert_closed(&mut self) {
        let mut rest = [0u8; 16];
        match self.stream.read(&mut rest) {
            Ok(n) => assert_eq!(n, 0, "AccuRate sent more instead of closing"),
            Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset, "{e}"),
        }
    }

    fn send(&mut self, b: &[u8]) {
        self.stream.write_all(b).unwrap();
    }

    fn reply(&mut self, text: &str) {
        self.send(format!("Content-Type: command/reply\nReply-Text: {text}\n\n").as_bytes());
    }

    /// The next command AccuRate sends, without its blank line.
    fn recv_raw(&mut self) -> String {
        loop {
            if let Some(i) = self.buf.windows(2).position(|w| w == b"\n\n") {
                let cmd = String::from_utf8(self.buf[..i].to_vec()).unwrap();
                self.buf.drain(..i + 2);
                return cmd;
            }
            let mut chunk = [0u8; 4096];
            let n = self.stream.read(&mut chunk).unwrap();
            assert!(n > 0, "AccuRate closed the event socket");
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// The next api command, answered `+OK` as FreeSWITCH answers.
    fn api(&mut self) -> String {
        let c = self.recv_raw();
        let cmd = c
            .strip_prefix("api ")
            .unwrap_or_else(|| panic!("not api: {c}"));
        let body = "+OK\n";
        self.send(
            format!(
                "Content-Type: api/response\nContent-Length: {}\n\n{body}",
                body.len()
            )
            .as_bytes(),
        );
        cmd.to_string()
    }

    fn apis(&mut self, n: usize) -> Vec<String> {
        (0..n).map(|_| self.api()).collect()
    }

    /// Sends a channel event.
    fn event(&mut self, name: &str, uuid: &str, account: &str, extra: &[(&str, String)]) {
        let b = event_bytes(name, uuid, account, extra);
        self.send(&b);
    }
}

/// A channel event (values URL-encoded as FreeSWITCH writes them).
fn event_bytes(name: &str, uuid: &str, account: &str, extra: &[(&str, String)]) -> Vec<u8> {
    let now_us = (epoch() * 1_000_000).to_string();
    let mut h: Vec<(&str, String)> = vec![
        ("Event-Name", name.into()),
        ("Core-UUID", "6a2b1c3d-0000-4000-8000-000000000001".into()),
        ("FreeSWITCH-IPv4", "10.0.0.5".into()),
        ("Unique-ID", uuid.into()),
        ("Call-Direction", "inbound".into()),
        ("Caller-Username", account.into()),
        ("Caller-Caller-ID-Name", format!("Extension {account}")),
        ("Caller-Destination-Number", "4930555002".into()),
        ("Caller-Channel-Created-Time", now_us.clone()),
        ("variable_sip_call_id", format!("{uuid}@10.0.0.9")),
        ("variable_cgr_reqtype", "*prepaid".into()),
        ("variable_cgr_flags", "*accounts".into()),
    ];
    if name != "CHANNEL_PARK" {
        h.push(("Caller-Channel-Answered-Time", now_us));
    }
    h.extend(extra.iter().cloned());
    let mut body = String::new();
    for (k, v) in h {
        let enc = v
            .replace('%', "%25")
            .replace(' ', "%20")
            .replace('*', "%2A")
            .replace(';', "%3B");
        body.push_str(&format!("{k}: {enc}\n"));
    }
    body.push('\n');
    format!(
        "Content-Length: {}\nContent-Type: text/event-plain\n\n{body}",
        body.len()
    )
    .into_bytes()
}

fn epoch() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn hangup(billsec: u32) -> Vec<(&'static str, String)> {
    vec![
        ("variable_answer_epoch", epoch().to_string()),
        ("variable_billsec", billsec.to_string()),
        ("Hangup-Cause", "NORMAL_CLEARING".into()),
    ]
}

#[test]
fn a_call_authorized_answered_hung_up_and_a_reconnect() {
    let fs = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = fs.local_addr().unwrap().to_string();
    let s = Server::start(&["--tariffplan", &plan_dir(), "--freeswitch-esl", &addr]);
    let mut f = Esl::login(&fs, "ClueCon");

    // Park: 10.00 at 0.01/s authorizes 1000 s.
    f.event("CHANNEL_PARK", "u-1", "1001", &[]);
    assert_eq!(
        f.apis(4),
        [
            "uuid_setvar u-1 cgr_max_usage 1000",
            "uuid_setvar u-1 execute_on_answer sched_hangup +1000 alloted_timeout",
            "uuid_setvar u-1 cgr_notify +AUTH_OK",
            "uuid_transfer u-1 4930555002",
        ]
    );
    // Answer: the session starts, prepaid: hung up at its max usage.
    f.event("CHANNEL_ANSWER", "u-1", "1001", &[]);
    assert_eq!(f.api(), format!("uuid_setvar u-1 cgr_originhost {addr}"));
    assert_eq!(f.api(), "sched_hangup +1000 u-1 alloted_timeout");
    assert_eq!(
        rpc(&s, "SessionSv1.GetActiveSessionsCount", json!({})),
        json!(1)
    );
    // Hangup after 50 s, flagged for a CDR.
    let mut h = hangup(50);
    h.push(("variable_cgr_flags", "*accounts;*cdrs".into()));
    f.event("CHANNEL_HANGUP_COMPLETE", "u-1", "1001", &h);
    let mut cdrs = Vec::new();
    wait_until("the call's CDR", || {
        let r = rpc(&s, "CDRsV1.GetCDRs", json!({"OriginIDs": ["u-1"]}));
        cdrs = r.as_array().cloned().unwrap_or_default();
        !cdrs.is_empty()
    });
    assert_eq!(cdrs.len(), 1, "{cdrs:?}");
    assert_eq!(cdrs[0]["Usage"], json!(50_000_000_000_u64), "{cdrs:?}");
    assert_eq!(cdrs[0]["OriginHost"], addr.as_str());
    assert_eq!(cdrs[0]["Account"], "1001");
    assert_eq!(cdrs[0]["Destination"], "4930555002");
    assert_eq!(
        rpc(&s, "SessionSv1.GetActiveSessionsCount", json!({})),
        json!(0)
    );
    assert_eq!(credit(&s, "1001"), dec("9.50"));

    // The session manager disconnects a call (ForceDisconnect).
    f.event("CHANNEL_ANSWER", "u-2", "1001", &[]);
    assert_eq!(f.api(), format!("uuid_setvar u-2 cgr_originhost {addr}"));
    assert!(f.api().starts_with("sched_hangup +"));
    let r = rpc(
        &s,
        "SessionSv1.ForceDisconnect",
        json!({"Filters": ["*string:~*req.OriginID:u-2"]}),
    );
    assert_eq!(r, json!("OK"), "{r}");
    let cmds = f.apis(2);
    assert!(
        cmds[0].starts_with("uuid_setvar u-2 cgr_notify "),
        "{cmds:?}"
    );
    assert_eq!(cmds[1], "uuid_kill u-2 MANAGER_REQUEST");

    // Two calls up when FreeSWITCH restarts; after it only u-5 is listed:
    // the session of u-4 ends by the sync, its CDR written.
    // (a prepaid answer without Usage reserves all its account can pay:
    // two accounts)
    for (u, account) in [("u-4", "1004"), ("u-5", "4971112345")] {
        f.event("CHANNEL_ANSWER", u, account, &[]);
        f.apis(2);
    }
    wait_until("two sessions", || {
        rpc(&s, "SessionSv1.GetActiveSessionsCount", json!({})) == json!(2)
    });
    drop(f);
    let mut f = Esl::login_with(&fs, "ClueCon", &["u-5"]);
    wait_until("the lost call ended", || {
        rpc(&s, "SessionSv1.GetActiveSessionsCount", json!({})) == json!(1)
    });
    let left = rpc(&s, "SessionSv1.GetActiveSessions", json!({}));
    assert_eq!(left[0]["OriginID"], "u-5", "{left}");
    wait_until("the lost call's CDR", || {
        let r = rpc(&s, "CDRsV1.GetCDRs", json!({"OriginIDs": ["u-4"]}));
        r.as_array().is_some_and(|a| a.len() == 1)
    });
    // ... and goes on.
    f.event("CHANNEL_PARK", "u-3", "1004", &[]);
    let cmds = f.apis(4);
    // 1004's reservation came back but for the second(s) u-4 used
    let secs: u32 = cmds[0]
        .strip_prefix("uuid_setvar u-3 cgr_max_usage ")
        .unwrap_or_else(|| panic!("{cmds:?}"))
        .parse()
        .unwrap();
    assert!((990..=1000).contains(&secs), "{cmds:?}");
    assert_eq!(cmds[2], "uuid_setvar u-3 cgr_notify +AUTH_OK");
    assert_eq!(cmds[3], "uuid_transfer u-3 4930555002");
}

#[test]
fn little_credit_gets_sched_hangup_then_a_refusal() {
    let fs = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = fs.local_addr().unwrap().to_string();
    let config = format!(
        "[api]\nrpc-tcp = \"127.0.0.1:0\"\nrpc-http = \"127.0.0.1:0\"\n\
         [[agents.freeswitch]]\naddress = \"{addr}\"\npassword = \"s3cret\"\n\
         alias = \"fs-a\"\ncreate-cdr = true\n"
    );
    let s = Server::start_with(&["--tariffplan", &plan_dir()], Some(&config));
    let mut f = Esl::login(&fs, "s3cret");

    // 1003 has 0.30: 30 s.
    f.event("CHANNEL_PARK", "p-1", "1003", &[]);
    let cmds = f.apis(4);
    assert_eq!(cmds[0], "uuid_setvar p-1 cgr_max_usage 30", "{cmds:?}");
    assert_eq!(cmds[2], "uuid_setvar p-1 cgr_notify +AUTH_OK");
    f.event("CHANNEL_ANSWER", "p-1", "1003", &[]);
    assert_eq!(f.api(), "uuid_setvar p-1 cgr_originhost fs-a");
    assert_eq!(f.api(), "sched_hangup +30 p-1 alloted_timeout");
    // FreeSWITCH hangs up at 30 s; create-cdr writes the CDR.
    f.event("CHANNEL_HANGUP_COMPLETE", "p-1", "1003", &hangup(30));
    wait_until("the CDR", || {
        let r = rpc(&s, "CDRsV1.GetCDRs", json!({"OriginIDs": ["p-1"]}));
        r.as_array().is_some_and(|a| a.len() == 1)
    });
    let cdr = &rpc(&s, "CDRsV1.GetCDRs", json!({"OriginIDs": ["p-1"]}))[0];
    assert_eq!(cdr["OriginHost"], "fs-a", "{cdr}");
    assert_eq!(credit(&s, "1003"), dec("0"));

    // Nothing left: the next call is refused.
    f.event("CHANNEL_PARK", "p-2", "1003", &[]);
    assert_eq!(
        f.apis(2),
        [
            "uuid_setvar p-2 cgr_notify -INSUFFICIENT_FUNDS",
            "uuid_transfer p-2 4930555002"
        ]
    );
    // Answered anyway (the dialplan let it through): the start is
    // refused, the channel killed.
    f.event("CHANNEL_ANSWER", "p-2", "1003", &[]);
    assert_eq!(f.api(), "uuid_setvar p-2 cgr_originhost fs-a");
    let cmds = f.apis(2);
    assert!(
        cmds[0].starts_with("uuid_setvar p-2 cgr_notify "),
        "{cmds:?}"
    );
    assert_eq!(cmds[1], "uuid_kill p-2 MANAGER_REQUEST");
    assert_eq!(
        rpc(&s, "SessionSv1.GetActiveSessionsCount", json!({})),
        json!(0)
    );
    // An account the plan does not have: the error is the notification.
    f.event("CHANNEL_PARK", "p-3", "7777", &[]);
    let cmds = f.apis(2);
    assert!(
        cmds[0].starts_with("uuid_setvar p-3 cgr_notify "),
        "{cmds:?}"
    );
    assert_ne!(cmds[0], "uuid_setvar p-3 cgr_notify +AUTH_OK");
    assert_eq!(cmds[1], "uuid_transfer p-3 4930555002");
}

#[test]
fn a_wrong_password_is_retried_and_partial_frames_are_read() {
    let fs = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = fs.local_addr().unwrap().to_string();
    let s = Server::start(&["--tariffplan", &plan_dir(), "--freeswitch-esl", &addr]);
    // FreeSWITCH refuses the password: AccuRate drops the socket and
    // comes back.
    let mut f = Esl::accept(&fs);
    assert_eq!(f.recv_raw(), "auth ClueCon");
    f.reply("-ERR invalid");
    f.assert_closed();
    let mut f = Esl::login(&fs, "ClueCon");
    // An event written a few bytes at a time.
    let bytes = event_bytes("CHANNEL_PARK", "w-1", "1004", &[]);
    for chunk in bytes.chunks(5) {
        f.send(chunk);
        std::thread::sleep(Duration::from_millis(1));
    }
    let cmds = f.apis(4);
    assert_eq!(cmds[0], "uuid_setvar w-1 cgr_max_usage 1000", "{cmds:?}");
    // Bytes that are not ESL: AccuRate drops the socket and comes back.
    f.send(b"this is not a header block\n\n");
    f.assert_closed();
    let mut f = Esl::login(&fs, "ClueCon");
    f.event("CHANNEL_PARK", "w-2", "1004", &[]);
    assert_eq!(f.apis(4)[3], "uuid_transfer w-2 4930555002");
    drop(s);
}
