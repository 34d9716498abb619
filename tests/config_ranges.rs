//! `accurate config check` refuses values out of range in `[capture]`,
//! `[capture.reassembly]`, `[hep]` and `[live]`, naming the key with its
//! line and column (exit 78); values at the limits pass.
#![allow(missing_docs, clippy::unwrap_used)]

mod common;

use std::process::{Command, Output};

use common::{ACCURATE, Scratch};

fn check(scratch: &Scratch, name: &str, text: &str) -> Output {
    let f = scratch.file(name);
    std::fs::write(&f, text).unwrap();
    Command::new(ACCURATE)
        .args(["config", "check", f.to_str().unwrap()])
        .output()
        .unwrap()
}

/// Regression: these passed `config check` (and some made `sniff` try to
/// open 100,000 sockets or panic later; a `max-total-bytes` of 1000 left
/// no room for one SIP message over TCP or one HEP frame, and 0 connections
/// or a 0-second idle timeout closed every HEP connection at once).
#[test]
fn out_of_range_values_are_refused_with_key_line_and_column() {
    let scratch = Scratch::new("config-ranges");
    let cases: &[(&str, &str, &str)] = &[
        (
            "[hep]\nudp-sockets = 100000\n",
            "hep.udp-sockets",
            "line 2, column 15",
        ),
        (
            "[hep]\nudp-sockets = 0\n",
            "hep.udp-sockets",
            "line 2, column 15",
        ),
        (
            "[hep]\nrecv-buffer = 0\n",
            "hep.recv-buffer",
            "line 2, column 15",
        ),
        (
            "[hep]\nrecv-buffer = 4294967296\n",
            "hep.recv-buffer",
            "line 2, column 15",
        ),
        (
            "[hep]\ntcp-max-connections = 0\n",
            "hep.tcp-max-connections",
            "line 2, column 23",
        ),
        (
            "[hep]\ntcp-idle-timeout-secs = 0\n",
            "hep.tcp-idle-timeout-secs",
            "line 2, column 25",
        ),
        (
            "[hep]\nauth-key = \"\"\n",
            "hep.auth-key",
            "line 2, column 12",
        ),
        (
            "[hep]\nlisten = [\"udp:nowhere\"]\n",
            "hep.listen",
            "line 2, column 10",
        ),
        (
            "[capture]\nmax-sip-message = 0\n",
            "capture.max-sip-message",
            "line 2, column 19",
        ),
        (
            "[capture]\nhep-ports = [9060, 0]\n",
            "capture.hep-ports",
            "line 2, column 13",
        ),
        (
            "\n[capture.reassembly]\nmax-tcp-streams = 0\n",
            "capture.reassembly.max-tcp-streams",
            "line 3, column 19",
        ),
        (
            "[capture.reassembly]\nmax-tcp-stream-bytes = 0\n",
            "capture.reassembly.max-tcp-stream-bytes",
            "line 2, column 24",
        ),
        (
            "[capture.reassembly]\nmax-ip-fragment-bytes = 0\n",
            "capture.reassembly.max-ip-fragment-bytes",
            "line 2, column 25",
        ),
        (
            "[capture.reassembly]\nip-fragment-timeout-secs = 0\n",
            "capture.reassembly.ip-fragment-timeout-secs",
            "line 2, column 28",
        ),
        (
            "[capture.reassembly]\ntcp-idle-timeout-secs = 9223372036854775807\n",
            "capture.reassembly.tcp-idle-timeout-secs",
            "line 2, column 25",
        ),
        (
            "[capture.reassembly]\ntcp-gap-timeout-secs = 0\n",
            "capture.reassembly.tcp-gap-timeout-secs",
            "line 2, column 24",
        ),
        (
            "[capture.reassembly]\nmax-total-bytes = 1000\n",
            "capture.reassembly.max-total-bytes",
            "line 2, column 19",
        ),
        (
            "[live]\ninterface = \"lo\"\nsnaplen = 0\n",
            "live.snaplen",
            "line 3, column 11",
        ),
        (
            "[live]\ninterface = \"lo\"\nsnaplen = -1\n",
            "live.snaplen",
            "line 3, column 11",
        ),
        (
            "[live]\ninterface = \"\"\n",
            "live.interface",
            "line 2, column 13",
        ),
        (
            "[live]\ninterface = \"lo\"\nfilter = \"port nonsense(\"\n",
            "live.filter",
            "line 3, column 10",
        ),
    ];
    for (i, (text, key, at)) in cases.iter().enumerate() {
        let out = check(&scratch, &format!("c{i}.toml"), text);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(78), "{text}: {stderr}");
        assert!(stderr.contains(key), "{text}: want {key} in {stderr}");
        assert!(stderr.contains(at), "{text}: want {at} in {stderr}");
        assert!(out.stdout.is_empty());
    }
}

#[test]
fn values_at_the_limits_pass() {
    let scratch = Scratch::new("config-limits");
    let text = "[capture]\nhep-ports = [1, 65535]\nmax-sip-message = 512\n\
                [capture.reassembly]\nmax-tcp-streams = 1\nmax-tcp-stream-bytes = 1\n\
                max-ip-fragment-bytes = 1\nip-fragment-timeout-secs = 86400\n\
                tcp-idle-timeout-secs = 604800\ntcp-gap-timeout-secs = 1\n\
                max-total-bytes = 65536\n\
                [hep]\nudp-sockets = 1024\nrecv-buffer = 4096\nauth-key = \"k\"\n\
                tcp-max-connections = 1000000\ntcp-idle-timeout-secs = 604800\n\
                [live]\ninterface = \"any\"\nsnaplen = 262144\n";
    let out = check(&scratch, "limits.toml", text);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
