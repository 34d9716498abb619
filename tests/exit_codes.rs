//! Exit codes after sysexits(3), through the binary (the table is in
//! `src/exit.rs`), and each error said once.
#![allow(missing_docs, clippy::unwrap_used)]

mod common;

use std::net::{TcpListener, UdpSocket};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use common::{ACCURATE, Scratch, root};

fn run(args: &[&str]) -> Output {
    Command::new(ACCURATE).args(args).output().unwrap()
}

fn capture(name: &str) -> String {
    root()
        .join("captures")
        .join(name)
        .to_str()
        .unwrap()
        .to_owned()
}

/// Asserts the code, that stderr holds one `error:` line containing
/// `needle`, and no panic.
fn assert_exit(out: &Output, code: i32, needle: &str) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(code), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    let errors: Vec<&str> = stderr.lines().filter(|l| l.contains("error")).collect();
    assert_eq!(errors.len(), 1, "{stderr}");
    assert!(errors[0].starts_with("accurate: error: "), "{stderr}");
    assert!(stderr.contains(needle), "{needle:?} in {stderr}");
    stderr
}

/// The OS's text for an error appears once, not once per wrapping layer.
fn said_once(stderr: &str, text: &str) {
    assert_eq!(stderr.matches(text).count(), 1, "{text:?} in {stderr}");
}

fn euid_is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|v| v.split_whitespace().nth(1))
        == Some("0")
}

/// `accurate ARGS` as an unprivileged user: directly when we are one, via
/// setpriv(1) as `nobody` when we run as root (so permissions are checked).
fn run_unprivileged(args: &[&str]) -> Output {
    if euid_is_root() {
        let setpriv = common::require("setpriv", "util-linux");
        Command::new(setpriv)
            .args(["--reuid=65534", "--regid=65534", "--clear-groups", ACCURATE])
            .args(args)
            .output()
            .unwrap()
    } else {
        run(args)
    }
}

/// Regression: a missing capture file exited 65 (bad data) with libpcap's
/// message; it is a missing input (66) with the OS's, said once.
#[test]
fn missing_capture_file_exits_66() {
    for cmd in ["replay", "sniff"] {
        let out = run(&[cmd, "/nonexistent/x.pcap"]);
        let stderr = assert_exit(&out, 66, "/nonexistent/x.pcap");
        said_once(&stderr, "No such file or directory");
        assert!(out.stdout.is_empty());
    }
}

#[test]
fn folder_or_unreadable_capture_exits_66() {
    let scratch = Scratch::new("exit-unreadable");
    let out = run(&["replay", scratch.path.to_str().unwrap()]);
    assert_exit(&out, 66, "is a directory");
    let f = scratch.file("secret.pcap");
    std::fs::copy(capture("busy-486.pcap"), &f).unwrap();
    std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o000)).unwrap();
    let out = run_unprivileged(&["replay", f.to_str().unwrap()]);
    let stderr = assert_exit(&out, 66, "secret.pcap");
    said_once(&stderr, "Permission denied");
}

#[test]
fn capture_that_is_not_one_exits_65() {
    let scratch = Scratch::new("exit-garbage");
    let f = scratch.file("text.pcap");
    std::fs::write(&f, "not a capture\n").unwrap();
    for cmd in ["replay", "sniff"] {
        assert_exit(&run(&[cmd, f.to_str().unwrap()]), 65, "text.pcap");
    }
}

#[test]
fn tariff_plan_missing_66_bad_65() {
    let busy = capture("busy-486.pcap");
    let out = run(&["replay", "--tariffplan", "/nonexistent/plan", &busy]);
    let stderr = assert_exit(&out, 66, "/nonexistent/plan");
    // Regression: the OS error was printed twice.
    said_once(&stderr, "No such file or directory");
    assert!(out.stdout.is_empty());

    let scratch = Scratch::new("exit-plan");
    let src = root().join("tests/data/tariffplans/direction");
    for entry in std::fs::read_dir(&src).unwrap() {
        let p = entry.unwrap().path();
        std::fs::copy(&p, scratch.file(p.file_name().unwrap().to_str().unwrap())).unwrap();
    }
    std::fs::write(
        scratch.file("Rates.csv"),
        "#Id,ConnectFee,Rate,RateUnit,RateIncrement,GroupIntervalStart\nRT_X,zero,0.1,60s,1s,0s\n",
    )
    .unwrap();
    let plan = scratch.path.to_str().unwrap();
    let out = run(&["replay", "--tariffplan", plan, &busy]);
    assert_exit(&out, 65, "Rates.csv");
    let out = run(&[
        "cost",
        "--tariffplan",
        plan,
        "--subject",
        "1001",
        "--destination",
        "1002",
        "--answer-time",
        "2024-05-13T10:00:00Z",
        "--usage",
        "60s",
    ]);
    assert_exit(&out, 65, "Rates.csv");
}

#[test]
fn config_missing_66_invalid_78() {
    let out = run(&["config", "check", "/nonexistent/a.toml"]);
    let stderr = assert_exit(&out, 66, "/nonexistent/a.toml");
    said_once(&stderr, "No such file or directory");
    let out = run(&[
        "--config",
        "/nonexistent/a.toml",
        "replay",
        &capture("busy-486.pcap"),
    ]);
    assert_exit(&out, 66, "/nonexistent/a.toml");
    let scratch = Scratch::new("exit-config");
    let f = scratch.file("bad.toml");
    std::fs::write(&f, "[capture]\nnonsense = 1\n").unwrap();
    assert_exit(
        &run(&["config", "check", f.to_str().unwrap()]),
        78,
        "nonsense",
    );
}

#[test]
fn usage_errors_exit_2() {
    for args in [
        &["replay", "--no-such-flag", "x.pcap"][..],
        &["sniff", "--hep", "udp:127.0.0.1:0", "--count", "-1"],
        &["replay", "--order-window", "-5", "x.pcap"],
        &["replay", "--since", "yesterday", "x.pcap"],
    ] {
        let out = run(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(!String::from_utf8_lossy(&out.stderr).contains("panicked"));
    }
}

/// Regression: a huge --duration was taken (and could overflow the
/// clock); it is refused up front.
#[test]
fn huge_duration_is_a_usage_error_not_a_panic() {
    let mut child = Command::new(ACCURATE)
        .args([
            "sniff",
            "--hep",
            "udp:127.0.0.1:0",
            "--duration",
            "99999999999999999",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Before the fix it listened (forever): a bound, not a speed test.
    let limit = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("sniff accepted --duration 99999999999999999 and ran");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--duration"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// A huge --order-window only holds every CDR to the end: same CDRs.
#[test]
fn huge_order_window_is_fine() {
    let f = capture("answered-caller-bye.pcap");
    let a = run(&["replay", "--format", "json", &f]);
    let b = run(&[
        "replay",
        "--format",
        "json",
        "--order-window",
        "18446744073709551615",
        &f,
    ]);
    assert!(b.status.success(), "{}", String::from_utf8_lossy(&b.stderr));
    assert_eq!(a.stdout, b.stdout);
}

#[test]
fn listen_address_in_use_exits_69() {
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    let tcp = TcpListener::bind("127.0.0.1:0").unwrap();
    for spec in [
        format!("udp:{}", udp.local_addr().unwrap()),
        format!("tcp:{}", tcp.local_addr().unwrap()),
    ] {
        let out = run(&["sniff", "--hep", &spec, "--duration", "5"]);
        let stderr = assert_exit(&out, 69, &spec);
        said_once(&stderr, "in use");
    }
}

#[test]
fn privileged_port_exits_77() {
    let out = run_unprivileged(&["sniff", "--hep", "tcp:127.0.0.1:1", "--duration", "5"]);
    let stderr = assert_exit(&out, 77, "tcp:127.0.0.1:1");
    said_once(&stderr, "Permission denied");
}

/// Regression: `println!` panicked on a full disk; now one error, 74.
#[test]
fn full_disk_exits_74_with_one_message() {
    let cfg = root().join("accurate.toml");
    let busy = capture("busy-486.pcap");
    let plan = root().join("tests/data/tariffplans/direction");
    for args in [
        &["config", "check", cfg.to_str().unwrap()][..],
        &[
            "cost",
            "--tariffplan",
            plan.to_str().unwrap(),
            "--subject",
            "1001",
            "--destination",
            "+4930123",
            "--answer-time",
            "2024-05-13T10:00:00Z",
            "--usage",
            "60s",
        ],
        &["replay", &busy],
        &["replay", "--format", "csv", &busy],
        &["sniff", &busy],
    ] {
        let out = Command::new(ACCURATE)
            .args(args)
            .stdout(std::fs::File::create("/dev/full").unwrap())
            .output()
            .unwrap();
        let stderr = assert_exit(&out, 74, "cannot write the output");
        said_once(&stderr, "No space left on device");
    }
}

/// A reader that goes away (`| head`) ends the run quietly with 0, as for
/// most Unix filters; never a panic.
#[test]
fn closed_pipe_exits_0_quietly() {
    let all: Vec<String> = std::fs::read_dir(root().join("captures"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x != "json"))
        .map(|p| p.to_str().unwrap().to_owned())
        .collect();
    let cfg = root().join("accurate.toml");
    let mut runs: Vec<Vec<&str>> = vec![vec!["config", "check", cfg.to_str().unwrap()]];
    // More than a pipe holds, so the write fails whenever the reader left.
    let mut sniff = vec!["sniff", "--format", "json"];
    let mut replay = vec!["replay", "--format", "json"];
    for _ in 0..4 {
        sniff.extend(all.iter().map(String::as_str));
    }
    replay.extend(all.iter().map(String::as_str));
    runs.push(sniff);
    runs.push(replay);
    for args in runs {
        let mut child = Command::new(ACCURATE)
            .args(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert!(!stderr.contains("error"), "{args:?}: {stderr}");
        assert_eq!(out.status.code(), Some(0), "{args:?}: {stderr}");
    }
}

#[test]
fn nothing_to_sniff_is_a_failure_naming_the_options() {
    let out = run(&["sniff"]);
    assert_exit(&out, 1, "nothing to sniff");
    assert!(Path::new(ACCURATE).exists());
}

/// Regression: a missing interface exited 65 (bad data).
#[test]
fn live_capture_no_such_interface_69_no_permission_77() {
    let out = run(&["sniff", "--interface", "nosuchif0", "--duration", "5"]);
    assert_exit(&out, 69, "nosuchif0");
    let out = run_unprivileged(&["sniff", "--interface", "lo", "--duration", "5"]);
    assert_exit(&out, 77, "CAP_NET_RAW");
}
