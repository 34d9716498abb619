//! HEP over UDP ingest on loopback: the highest send rate the listener takes
//! with no loss, what it takes at full blast, and the listener's capacity
//! as packets per CPU-second of its own thread.
//!
//! A sender thread paces prebuilt HEPv3 packets (a real SIP INVITE inside)
//! at a fixed rate to a `HepListener`; a consumer thread counts the SIP
//! packets that come out of the channel. Rates step up until packets are
//! lost.
//!
//! On a 2-core machine the sender, not the listener, sets the rate, so the
//! listener's capacity is shown by its own CPU time: the listener runs alone
//! on the runtime's one worker thread (the consumer is a plain thread), and
//! that thread's CPU time (user + system, from the kernel's per-thread
//! `schedstat`) over the packets it received gives packets per listener
//! CPU-second. Paced below its capacity the listener wakes for a few
//! datagrams at a time, so that figure includes a wake-up per few packets;
//! a last phase ("backlog") shows the listener saturated: the worker is held
//! (blocked, using no CPU) while the sender queues a burst that fits the
//! socket buffer, then let go to drain it, round after round.
//!
//! `cargo bench --bench hep_ingest` (env `HEP_INGEST_PACKETS`, default
//! 400000 per step; `HEP_INGEST_SOCKETS`, default 1).
#![allow(missing_docs, clippy::unwrap_used, clippy::cast_possible_truncation)]

#[path = "gen/mod.rs"]
mod generator;

use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use capture::io::{HepBind, HepListener, HepProto, ListenerConfig};
use tokio::sync::{mpsc, watch};

use generator::INVITE;

struct Step {
    rate: u64,
    sent: u64,
    received: u64,
    secs: f64,
    /// CPU time of the listener's thread during the step, nanoseconds.
    listener_cpu_ns: u64,
}

/// The kernel's thread id of the calling thread (Linux), from the
/// `/proc/thread-self` link (`PID/task/TID`).
fn own_tid() -> u64 {
    let link = std::fs::read_link("/proc/thread-self").unwrap();
    link.file_name().unwrap().to_str().unwrap().parse().unwrap()
}

/// CPU time (user + system) a thread of this process has used so far, in
/// nanoseconds: the first field of its `schedstat`.
fn thread_cpu_ns(tid: u64) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/self/task/{tid}/schedstat")).unwrap();
    s.split_whitespace().next().unwrap().parse().unwrap()
}

fn run_step(
    rt: &tokio::runtime::Runtime,
    worker: u64,
    rate: u64,
    packets: u64,
    sockets: usize,
) -> Step {
    let cfg = ListenerConfig {
        udp_sockets: sockets,
        recv_buffer: 32 << 20,
        ..ListenerConfig::default()
    };
    let bind = HepBind {
        proto: HepProto::Udp,
        addr: "127.0.0.1:0".parse().unwrap(),
    };
    let listener = rt.block_on(HepListener::bind(bind, &cfg)).unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, mut rx) = mpsc::channel::<Vec<capture::SipPacket>>(4096);
    let (stop_tx, stop_rx) = watch::channel(false);
    // The consumer is a plain thread, so the runtime's one worker runs
    // the listener alone.
    let counter = std::thread::spawn(move || {
        let mut n = 0u64;
        while let Some(b) = rx.blocking_recv() {
            n += b.len() as u64;
        }
        n
    });
    let cpu_before = thread_cpu_ns(worker);
    let task = rt.spawn(listener.run(cfg, tx, stop_rx));

    let pkt = generator::hep3(
        SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 1), 5061),
        SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 2), 5060),
        1_790_000_000_000_000_000,
        INVITE.as_bytes(),
    );
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.connect(addr).unwrap();
    let fd = sock.as_raw_fd();
    let started = Instant::now();
    // Pace in 1 ms slots: send this slot's quota, then wait for the next.
    let per_ms = (rate / 1000).max(1);
    let mut sent = 0u64;
    let mut slot = 0u64;
    while sent < packets {
        let mut quota = per_ms.min(packets - sent);
        while quota > 0 {
            let n = send_many(fd, &pkt, quota.min(64) as usize);
            sent += n as u64;
            quota -= n as u64;
            if n == 0 {
                break;
            }
        }
        slot += 1;
        let due = Duration::from_millis(slot);
        let el = started.elapsed();
        if el < due {
            std::thread::sleep(due - el);
        }
    }
    let secs = started.elapsed().as_secs_f64();
    std::thread::sleep(Duration::from_millis(300));
    stop_tx.send(true).unwrap();
    let stats = rt.block_on(task).unwrap();
    let listener_cpu_ns = thread_cpu_ns(worker) - cpu_before;
    let received = counter.join().unwrap();
    assert_eq!(stats.sip, received);
    Step {
        rate,
        sent,
        received,
        secs,
        listener_cpu_ns,
    }
}

/// One `sendmmsg(2)` of `n` copies of `pkt` on a connected socket; returns
/// how many the kernel took.
fn send_many(fd: std::os::fd::RawFd, pkt: &[u8], n: usize) -> usize {
    use nix::sys::socket::{MsgFlags, MultiHeaders, SockaddrStorage, sendmmsg};
    let mut headers = MultiHeaders::<SockaddrStorage>::preallocate(n, None);
    let iovs: Vec<[std::io::IoSlice<'_>; 1]> =
        (0..n).map(|_| [std::io::IoSlice::new(pkt)]).collect();
    let addrs: Vec<Option<SockaddrStorage>> = vec![None; n];
    match sendmmsg(fd, &mut headers, &iovs, addrs, [], MsgFlags::empty()) {
        Ok(r) => r.count(),
        Err(_) => 0,
    }
}

/// Saturated listener: `rounds` times, hold the worker, queue `burst`
/// packets in the socket, release the worker and wait until they are all
/// out of the channel. Returns (packets received, packets lost, listener
/// CPU nanoseconds).
fn run_backlog(
    rt: &tokio::runtime::Runtime,
    worker: u64,
    rounds: u64,
    burst: u64,
) -> (u64, u64, u64) {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};
    let cfg = ListenerConfig {
        recv_buffer: 32 << 20,
        ..ListenerConfig::default()
    };
    let bind = HepBind {
        proto: HepProto::Udp,
        addr: "127.0.0.1:0".parse().unwrap(),
    };
    let listener = rt.block_on(HepListener::bind(bind, &cfg)).unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, mut rx) = mpsc::channel::<Vec<capture::SipPacket>>(4096);
    let (stop_tx, stop_rx) = watch::channel(false);
    let got = Arc::new(AtomicU64::new(0));
    let seen = got.clone();
    let counter = std::thread::spawn(move || {
        while let Some(b) = rx.blocking_recv() {
            seen.fetch_add(b.len() as u64, Ordering::Release);
        }
    });
    let pkt = generator::hep3(
        SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 1), 5061),
        SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 2), 5060),
        1_790_000_000_000_000_000,
        INVITE.as_bytes(),
    );
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.connect(addr).unwrap();
    let fd = sock.as_raw_fd();
    let task = rt.spawn(listener.run(cfg, tx, stop_rx));
    std::thread::sleep(Duration::from_millis(50));
    let (mut sent, mut cpu) = (0u64, 0u64);
    for _ in 0..rounds {
        // Hold the worker: a task that blocks it until released.
        let (held_tx, held_rx) = std::sync::mpsc::channel::<()>();
        let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
        rt.spawn(async move {
            held_tx.send(()).unwrap();
            let _ = release_rx.recv();
        });
        held_rx.recv().unwrap();
        let mut left = burst;
        while left > 0 {
            let n = send_many(fd, &pkt, left.min(64) as usize) as u64;
            assert!(n > 0, "send failed");
            left -= n;
        }
        sent += burst;
        let before = thread_cpu_ns(worker);
        release_tx.send(()).unwrap();
        let started = Instant::now();
        while got.load(Ordering::Acquire) < sent && started.elapsed() < Duration::from_secs(2) {
            std::thread::sleep(Duration::from_micros(200));
        }
        cpu += thread_cpu_ns(worker) - before;
        // Packets lost to a full socket buffer never arrive: count what did.
        sent = sent.min(got.load(Ordering::Acquire)).max(sent - burst);
    }
    stop_tx.send(true).unwrap();
    let stats = rt.block_on(task).unwrap();
    counter.join().unwrap();
    let received = got.load(Ordering::Acquire);
    assert_eq!(stats.sip, received);
    (received, rounds * burst - received, cpu)
}

fn main() {
    // `cargo test --benches` runs benches with no arguments in test mode;
    // `cargo bench` passes --bench.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let packets: u64 = std::env::var("HEP_INGEST_PACKETS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(400_000);
    let sockets: usize = std::env::var("HEP_INGEST_SOCKETS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let worker = rt.block_on(rt.spawn(async { own_tid() })).unwrap();
    println!(
        "hep_ingest: {packets} HEPv3 packets per step, {sockets} socket(s), 1 runtime worker + 1 sender thread"
    );
    let mut best_lossless = 0.0f64;
    let (mut all_received, mut all_cpu_ns) = (0u64, 0u64);
    for rate in [
        50_000u64,
        100_000,
        200_000,
        300_000,
        400_000,
        500_000,
        700_000,
        1_000_000,
        2_000_000,
        u64::MAX / 2,
    ] {
        let s = run_step(&rt, worker, rate, packets, sockets);
        let achieved = s.sent as f64 / s.secs;
        let loss = s.sent - s.received;
        let label = if rate > 10_000_000 {
            "max".to_string()
        } else {
            format!("{}", s.rate)
        };
        let cpu_per_pkt = s.listener_cpu_ns as f64 / s.received.max(1) as f64;
        println!(
            "hep_ingest: target {label:>8} pps: sent {} at {:.0} pps, received {}, lost {} ({:.3}%); listener CPU {:.0} ns/packet ({:.0} packets per CPU-second)",
            s.sent,
            achieved,
            s.received,
            loss,
            100.0 * loss as f64 / s.sent as f64,
            cpu_per_pkt,
            1e9 / cpu_per_pkt,
        );
        all_received += s.received;
        all_cpu_ns += s.listener_cpu_ns;
        if loss == 0 {
            best_lossless = best_lossless.max(achieved);
        }
    }
    println!("hep_ingest: highest lossless rate {best_lossless:.0} pps");
    let burst: u64 = std::env::var("HEP_INGEST_BURST")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1500);
    let rounds = (packets / burst).max(1);
    let (received, lost, cpu_ns) = run_backlog(&rt, worker, rounds, burst);
    let per_pkt = cpu_ns as f64 / received.max(1) as f64;
    println!(
        "hep_ingest: backlog ({rounds} bursts of {burst} queued while the listener is held): received {received}, lost {lost}; listener CPU {per_pkt:.0} ns/packet, capacity {:.0} packets per listener CPU-second",
        1e9 / per_pkt
    );
    let per_pkt = all_cpu_ns as f64 / all_received.max(1) as f64;
    println!(
        "hep_ingest: listener thread CPU over all steps: {per_pkt:.0} ns/packet, capacity {:.0} packets per listener CPU-second",
        1e9 / per_pkt
    );
}
