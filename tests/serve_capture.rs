//! `accurate serve` with capture: HEP over UDP and TCP from the
//! repository's real captures, calls followed in live time (a call without
//! a BYE ends by `max-duration-secs` with no more packets, an agent with a
//! skewed clock cannot end other agents' calls), and `GET /metrics` (with
//! and without the bearer token).
#![allow(missing_docs, clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpStream, UdpSocket};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use capture::Timestamp;
use capture::hep::{decode, encode_v3};

mod common;
mod serve_common;

use serve_common::{Server, WAIT, send_udp};

/// The HEP packets of one call in a capture of the repository.
fn call_hep(capture: &str) -> Vec<Vec<u8>> {
    let hep = common::wire_hep(&common::root().join("captures").join(capture));
    assert!(!hep.is_empty(), "{capture}: no HEP");
    hep.into_iter().map(|h| h.bytes).collect()
}

/// The SIP payload of a HEP packet.
fn payload(hep: &[u8]) -> Bytes {
    decode(hep, Timestamp::from_nanos(0))
        .unwrap()
        .payload
        .unwrap()
}

fn call_id(hep: &[u8]) -> String {
    let p = payload(hep);
    let text = String::from_utf8_lossy(&p);
    text.lines()
        .find_map(|l| l.strip_prefix("Call-ID: "))
        .unwrap()
        .trim()
        .to_owned()
}

/// The packets before the first BYE: the call set up and answered, never
/// hung up.
fn without_bye(hep: Vec<Vec<u8>>) -> Vec<Vec<u8>> {
    let bye = hep
        .iter()
        .position(|h| payload(h).starts_with(b"BYE "))
        .unwrap();
    let mut hep = hep;
    hep.truncate(bye);
    hep
}

/// `hep` re-stamped `start`, `start + 1 ms`, ... and given capture id `id`.
fn restamp(hep: &[Vec<u8>], start: SystemTime, id: u32) -> Vec<Vec<u8>> {
    hep.iter()
        .enumerate()
        .map(|(i, h)| {
            let t = start + Duration::from_millis(i as u64);
            let d = t.duration_since(SystemTime::UNIX_EPOCH).unwrap();
            let mut p = decode(h, Timestamp::from_nanos(0)).unwrap();
            let (secs, micros) = (u32::try_from(d.as_secs()).unwrap(), d.subsec_micros());
            p.ts = Timestamp::from_secs_micros(i64::from(secs), micros);
            p.ts_secs = Some(secs);
            p.ts_micros = Some(micros);
            p.capture_id = Some(id);
            encode_v3(&p)
        })
        .collect()
}

/// The `listening on PROTO:ADDR` line's address.
fn hep_addr(s: &Server, proto: &str) -> String {
    let prefix = format!("listening on {proto}:");
    s.seen
        .iter()
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no {prefix} line: {:?}", s.seen))
        .to_owned()
}

/// `GET /metrics`: the status and the body.
fn get_metrics(s: &Server, token: Option<&str>) -> (u16, String) {
    let mut c = TcpStream::connect(&s.http).unwrap();
    c.set_read_timeout(Some(WAIT)).unwrap();
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    write!(
        c,
        "GET /metrics HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n{auth}\r\n",
        s.http
    )
    .unwrap();
    let mut text = String::new();
    c.read_to_string(&mut text).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    if status == 200 {
        assert!(
            head.to_ascii_lowercase()
                .contains("content-type: text/plain; version=0.0.4"),
            "{head}"
        );
    }
    (status, body.to_owned())
}

/// Samples by `name{labels}`, checking the page's shape on the way: every
/// sample's metric has a `# TYPE` line before it.
fn samples(page: &str) -> BTreeMap<String, String> {
    let mut typed = std::collections::BTreeSet::new();
    let mut out = BTreeMap::new();
    for l in page.lines() {
        if let Some(rest) = l.strip_prefix("# TYPE ") {
            typed.insert(rest.split(' ').next().unwrap().to_owned());
            continue;
        }
        if l.starts_with('#') || l.is_empty() {
            continue;
        }
        let (key, v) = l.rsplit_once(' ').unwrap();
        let name = key.split('{').next().unwrap();
        let base = ["_sum", "_count"]
            .iter()
            .find_map(|s| name.strip_suffix(s))
            .filter(|b| typed.contains(*b))
            .unwrap_or(name);
        assert!(typed.contains(base), "{name} has no # TYPE line");
        assert!(name.starts_with("accurate_"), "{name}");
        out.insert(key.to_owned(), v.to_owned());
    }
    out
}

fn metric(s: &Server, key: &str) -> u64 {
    let (status, page) = get_metrics(s, None);
    assert_eq!(status, 200, "{page}");
    samples(&page)
        .get(key)
        .unwrap_or_else(|| panic!("no {key} in\n{page}"))
        .parse()
        .unwrap()
}

/// Waits until `key` reads `want` (a bound on waiting, not a speed test).
fn wait_metric(s: &Server, key: &str, want: u64) {
    let end = Instant::now() + WAIT;
    loop {
        let got = metric(s, key);
        if got == want {
            return;
        }
        assert!(Instant::now() < end, "{key} is {got}, waited for {want}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn hep_udp_and_tcp_real_calls_end_with_a_cdr_each() {
    let mut s = Server::start(&["--hep", "udp:127.0.0.1:0", "--hep", "tcp:127.0.0.1:0"]);
    let udp = hep_addr(&s, "udp");
    let tcp = hep_addr(&s, "tcp");
    assert!(!udp.ends_with(":0") && !tcp.ends_with(":0"), "{:?}", s.seen);
    wait_metric(&s, "accurate_capture_packets_total", 0);
    wait_metric(&s, "accurate_cdrs_total", 0);

    // One answered call, its HEP copies over UDP as Kamailio sent them.
    let call = call_hep("answered-callee-bye.pcap");
    send_udp(&udp, &call);
    let n = call.len() as u64;
    wait_metric(&s, "accurate_cdrs_total", 1);
    assert_eq!(metric(&s, "accurate_capture_packets_total"), n);
    assert_eq!(metric(&s, "accurate_capture_sip_messages_total"), n);
    assert_eq!(
        metric(&s, "accurate_dialog_events_total{kind=\"attempt\"}"),
        1
    );
    assert_eq!(
        metric(&s, "accurate_dialog_events_total{kind=\"answer\"}"),
        1
    );
    assert_eq!(metric(&s, "accurate_dialog_events_total{kind=\"end\"}"), 1);
    assert_eq!(
        metric(&s, "accurate_dialog_events_total{kind=\"failed\"}"),
        0
    );

    // Another over TCP, in one write (the listener frames it).
    let call2 = call_hep("hep-tcp.pcap");
    let mut c = TcpStream::connect(&tcp).unwrap();
    c.write_all(&call2.concat()).unwrap();
    wait_metric(&s, "accurate_cdrs_total", 2);
    assert_eq!(
        metric(&s, "accurate_capture_packets_total"),
        n + call2.len() as u64
    );
    assert_eq!(metric(&s, "accurate_dialog_events_total{kind=\"end\"}"), 2);
    // A bad datagram is counted under its reason.
    send_udp(&udp, &[b"not HEP at all".to_vec()]);
    wait_metric(&s, "accurate_capture_drops_total{reason=\"bad_hep\"}", 1);
    drop(c);

    let (status, lines) = s.signal("-TERM");
    assert!(status.success(), "{lines:?}");
    let total = n + call2.len() as u64 + 1;
    assert!(
        lines.contains(&format!("serve: packets: {total}")),
        "{lines:?}"
    );
}

#[test]
fn answered_call_without_bye_ends_by_max_duration_with_no_more_packets() {
    // The listener from the config's [hep] listen this time.
    let config = "[api]\nrpc-tcp = \"127.0.0.1:0\"\nrpc-http = \"127.0.0.1:0\"\n\
                  [hep]\nlisten = [\"udp:127.0.0.1:0\"]\n\
                  [dialog]\nmax-duration-secs = 2\n";
    let s = Server::start_with(&[], Some(config));
    let udp = hep_addr(&s, "udp");
    let call = without_bye(call_hep("answered-callee-bye.pcap"));
    let sent = Instant::now();
    send_udp(&udp, &call);
    wait_metric(&s, "accurate_dialog_events_total{kind=\"answer\"}", 1);
    assert_eq!(metric(&s, "accurate_cdrs_total"), 0);
    assert_eq!(metric(&s, "accurate_live_dialogs"), 1);
    // No packet after this: only the dialog task's clock ends the call.
    wait_metric(&s, "accurate_cdrs_total", 1);
    assert!(
        sent.elapsed() >= Duration::from_secs(2),
        "ended after {:?}, before max-duration-secs",
        sent.elapsed()
    );
    assert_eq!(metric(&s, "accurate_dialog_events_total{kind=\"end\"}"), 1);
    assert_eq!(
        metric(&s, "accurate_dialog_counter_total{name=\"max_duration\"}"),
        1
    );
    assert_eq!(
        metric(&s, "accurate_capture_packets_total"),
        call.len() as u64
    );
}

/// Agent 1 stamps its packets right; agent 2's clock is two days ahead.
/// Agent 2's packets take their receive time, so its call is followed
/// normally and the stream clock stays where it is: agent 1's answered call
/// (max-duration 1 hour) stays up.
#[test]
fn skewed_agent_clock_cannot_end_other_agents_calls() {
    let config = "[api]\nrpc-tcp = \"127.0.0.1:0\"\nrpc-http = \"127.0.0.1:0\"\n\
                  [hep]\nlisten = [\"udp:127.0.0.1:0\"]\n\
                  [dialog]\nmax-duration-secs = 3600\n";
    let s = Server::start_with(&[], Some(config));
    let udp = hep_addr(&s, "udp");
    let good = without_bye(call_hep("answered-callee-bye.pcap"));
    let skewed = call_hep("hep-tcp.pcap");
    assert_ne!(call_id(&good[0]), call_id(&skewed[0]));
    let now = SystemTime::now();
    send_udp(&udp, &restamp(&good, now, 1));
    wait_metric(&s, "accurate_dialog_events_total{kind=\"answer\"}", 1);
    let ahead = now + Duration::from_secs(2 * 24 * 3600);
    let skewed = restamp(&skewed, ahead, 2);
    send_udp(&udp, &skewed);
    // Agent 2's call ends by its BYE...
    wait_metric(&s, "accurate_dialog_events_total{kind=\"end\"}", 1);
    wait_metric(&s, "accurate_cdrs_total", 1);
    // ... and a few ticks later agent 1's call is still up.
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(metric(&s, "accurate_cdrs_total"), 1);
    assert_eq!(
        metric(&s, "accurate_dialog_counter_total{name=\"max_duration\"}"),
        0
    );
    assert_eq!(
        metric(
            &s,
            "accurate_dialog_counter_total{name=\"clock_stamp_corrected\"}"
        ),
        skewed.len() as u64
    );
    assert_eq!(
        metric(
            &s,
            "accurate_dialog_counter_total{name=\"clock_jump_future\"}"
        ),
        0
    );
}

#[test]
fn metrics_count_rpc_by_method_and_need_the_token_when_one_is_set() {
    // No token: open; no capture: no capture metrics.
    let s = Server::start(&[]);
    s.http_call("CoreSv1.Ping", serde_json::Value::Null);
    s.http_call("CoreSv1.Ping", serde_json::Value::Null);
    s.http_call("NoSuch.Method", serde_json::Value::Null);
    s.http_call("APIerSv1.DebitUsage", serde_json::json!({"Usage": 1}));
    let (status, page) = get_metrics(&s, None);
    assert_eq!(status, 200, "{page}");
    let m = samples(&page);
    assert_eq!(
        m["accurate_rpc_requests_total{method=\"CoreSv1.Ping\"}"],
        "2"
    );
    assert_eq!(m["accurate_rpc_errors_total{method=\"CoreSv1.Ping\"}"], "0");
    assert_eq!(m["accurate_rpc_requests_total{method=\"unknown\"}"], "1");
    assert_eq!(m["accurate_rpc_errors_total{method=\"unknown\"}"], "1");
    assert_eq!(m["accurate_debits_total"], "1");
    assert_eq!(m["accurate_debit_errors_total"], "1");
    assert_eq!(m["accurate_debit_latency_seconds_count"], "1");
    assert!(m.contains_key("accurate_debit_latency_seconds{quantile=\"0.99\"}"));
    assert!(
        !page.contains("accurate_capture_"),
        "capture metrics without capture:\n{page}"
    );
    let (status, _) = s.http("POST", "/metrics", "", &[]);
    assert_eq!(status, 405);

    let config = "[api]\nrpc-tcp = \"127.0.0.1:0\"\nrpc-http = \"127.0.0.1:0\"\n\
                  auth-token = \"s3cret\"\n";
    let s = Server::start_with(&[], Some(config));
    assert_eq!(get_metrics(&s, None).0, 401);
    assert_eq!(get_metrics(&s, Some("wrong")).0, 401);
    let (status, page) = get_metrics(&s, Some("s3cret"));
    assert_eq!(status, 200, "{page}");
    // The two refusals are counted.
    assert_eq!(samples(&page)["accurate_rpc_http_refused_total"], "2");
}

/// `--interface lo --filter`: the live tap feeds the same dialog task.
/// Needs root or CAP_NET_RAW, as CI has.
#[test]
fn live_tap_on_loopback_follows_a_call() {
    // A port of our own, so the filter sees only what this test sends.
    let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = rx.local_addr().unwrap().port();
    let filter = format!("udp dst port {port}");
    let s = Server::start(&["--interface", "lo", "--filter", &filter]);
    assert!(
        s.seen.iter().any(|l| l == "capturing on lo"),
        "live capture needs root or CAP_NET_RAW: {:?}",
        s.seen
    );
    std::thread::sleep(Duration::from_millis(200));
    // The call's SIP messages themselves, as a SPAN port would show them.
    let call = call_hep("answered-callee-bye.pcap");
    let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
    tx.send_to(b"\r\n\r\n", ("127.0.0.1", port)).unwrap();
    for h in &call {
        tx.send_to(&payload(h), ("127.0.0.1", port)).unwrap();
        std::thread::sleep(Duration::from_millis(2));
    }
    wait_metric(&s, "accurate_cdrs_total", 1);
    assert_eq!(metric(&s, "accurate_dialog_events_total{kind=\"end\"}"), 1);
    // The tap's counters are published once a second.
    wait_metric(&s, "accurate_capture_sip_messages_total", call.len() as u64);
    wait_metric(&s, "accurate_capture_drops_total{reason=\"not_sip\"}", 1);
}

#[test]
fn filter_without_a_live_tap_is_refused() {
    let dir = serve_common::temp_data_dir();
    let out = std::process::Command::new(serve_common::ACCURATE)
        .args([
            "serve",
            "--rpc-tcp",
            "127.0.0.1:0",
            "--rpc-http",
            "127.0.0.1:0",
        ])
        .arg("--data-dir")
        .arg(&dir)
        .args(["--filter", "udp port 5060"])
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--filter is for the live tap"), "{err}");
}
