//! Issue 7: the HEP TCP listener's bounds on hostile input, over real
//! loopback sockets: a connection limit, an idle timeout, one byte budget
//! for partial frames given back when connections close, and the bytes
//! thrown away counted. No timing is asserted beyond "it closes".
#![allow(missing_docs, clippy::unwrap_used)]

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use bytes::Bytes;
use capture::hep::{HepPacket, encode_v3};
use capture::io::{ByteBudget, HepBind, HepListener, HepProto, ListenerConfig};
use capture::{
    DecoderConfig, DropReason, FrameDecoder, LinkType, SipPacket, Source, Stats, Timestamp,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

fn frame(n: u32) -> Vec<u8> {
    encode_v3(&HepPacket {
        ip_family: Some(2),
        ip_proto: Some(17),
        src_ipv4: Some(Ipv4Addr::new(192, 0, 2, 1)),
        dst_ipv4: Some(Ipv4Addr::new(192, 0, 2, 2)),
        src_port: Some(5060),
        dst_port: Some(5060),
        proto_type: Some(1),
        payload: Some(Bytes::from(format!(
            "OPTIONS sip:{n}@example.com SIP/2.0\r\nContent-Length: 0\r\n\r\n"
        ))),
        ..HepPacket::default()
    })
}

struct Running {
    addr: SocketAddr,
    rx: mpsc::Receiver<Vec<SipPacket>>,
    stop: watch::Sender<bool>,
    task: JoinHandle<Stats>,
}

async fn start(cfg: ListenerConfig) -> Running {
    let bind = HepBind {
        proto: HepProto::Tcp,
        addr: "127.0.0.1:0".parse().unwrap(),
    };
    let l = HepListener::bind(bind, &cfg).await.unwrap();
    let addr = l.local_addr().unwrap();
    let (tx, rx) = mpsc::channel(64);
    let (stop, stop_rx) = watch::channel(false);
    let task = tokio::spawn(l.run(cfg, tx, stop_rx));
    Running {
        addr,
        rx,
        stop,
        task,
    }
}

impl Running {
    async fn stop(self) -> Stats {
        self.stop.send(true).unwrap();
        self.task.await.unwrap()
    }

    async fn next_packet(&mut self) -> SipPacket {
        let batch = tokio::time::timeout(Duration::from_secs(20), self.rx.recv())
            .await
            .expect("a packet")
            .expect("listener alive");
        batch.into_iter().next().unwrap()
    }
}

/// Reads until the server closes the connection (EOF or reset).
async fn closed(c: &mut TcpStream) {
    let mut b = [0u8; 16];
    let r = tokio::time::timeout(Duration::from_secs(20), c.read(&mut b))
        .await
        .expect("the server closes the connection");
    assert!(matches!(r, Ok(0) | Err(_)), "{r:?}");
}

async fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    for _ in 0..2000 {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("never: {what}");
}

#[tokio::test]
async fn connections_over_the_limit_are_refused_and_counted() {
    let mut r = start(ListenerConfig {
        tcp_max_connections: 2,
        ..ListenerConfig::default()
    })
    .await;
    let mut kept = Vec::new();
    for n in 0..2 {
        let mut c = TcpStream::connect(r.addr).await.unwrap();
        c.write_all(&frame(n)).await.unwrap();
        // Accepted (and counted as open) before the next one connects.
        r.next_packet().await;
        kept.push(c);
    }
    for _ in 0..3 {
        let mut c = TcpStream::connect(r.addr).await.unwrap();
        closed(&mut c).await;
    }
    // The two open ones still work.
    kept[0].write_all(&frame(7)).await.unwrap();
    assert!(r.next_packet().await.payload.starts_with(b"OPTIONS sip:7@"));
    drop(kept);
    let stats = r.stop().await;
    assert_eq!(stats.drops(DropReason::HepConnLimit), 3, "{stats:?}");
    assert_eq!(stats.sip, 3);
}

#[tokio::test]
async fn idle_connections_are_closed_and_their_bytes_counted() {
    let r = start(ListenerConfig {
        tcp_idle_timeout: Duration::from_millis(200),
        ..ListenerConfig::default()
    })
    .await;
    let mut c = TcpStream::connect(r.addr).await.unwrap();
    c.write_all(&frame(1)[..10]).await.unwrap();
    closed(&mut c).await;
    let stats = r.stop().await;
    assert_eq!(stats.drops(DropReason::HepIdleTimeout), 1, "{stats:?}");
    assert_eq!(stats.discarded_bytes, 10);
}

#[tokio::test]
async fn bad_frames_count_the_bytes_thrown_away() {
    let r = start(ListenerConfig::default()).await;
    let mut c = TcpStream::connect(r.addr).await.unwrap();
    let mut bad = frame(1);
    bad[4] = 0;
    bad[5] = 2; // length 2: impossible
    c.write_all(&bad).await.unwrap();
    closed(&mut c).await;
    let stats = r.stop().await;
    assert_eq!(stats.drops(DropReason::BadHepFrame), 1, "{stats:?}");
    assert_eq!(stats.discarded_bytes, bad.len() as u64);
}

#[tokio::test]
async fn one_budget_for_all_partial_frames_given_back_on_close() {
    let budget = ByteBudget::new(210_000);
    let mut r = start(ListenerConfig {
        budget: budget.clone(),
        ..ListenerConfig::default()
    })
    .await;
    // Partial frames that announce 60000 bytes each: the framer reserves
    // room for them, which is what the budget counts.
    let mut head = b"HEP3".to_vec();
    head.extend_from_slice(&60000u16.to_be_bytes());
    head.extend_from_slice(&[0; 94]);
    let mut conns = Vec::new();
    for _ in 0..3 {
        let mut c = TcpStream::connect(r.addr).await.unwrap();
        c.write_all(&head).await.unwrap();
        conns.push(c);
    }
    eventually("three partial frames charged", || budget.used() >= 180_000).await;
    // The fourth passes the budget: that connection goes.
    let mut c = TcpStream::connect(r.addr).await.unwrap();
    c.write_all(&head).await.unwrap();
    closed(&mut c).await;
    assert!(budget.used() <= budget.limit(), "{}", budget.used());
    // Memory held by partial frames comes back when connections close.
    drop(conns);
    eventually("every byte given back", || budget.used() == 0).await;
    // And the listener still serves.
    let mut c = TcpStream::connect(r.addr).await.unwrap();
    c.write_all(&frame(9)).await.unwrap();
    r.next_packet().await;
    drop(c);
    let stats = r.stop().await;
    assert_eq!(stats.drops(DropReason::ReassemblyBudget), 1, "{stats:?}");
    assert_eq!(stats.discarded_bytes, 4 * head.len() as u64);
}

/// A raw IPv4 TCP segment 10.0.0.1:40000 -> 10.0.0.2:5060.
fn tcp_segment(seq: u32, syn: bool, payload: &[u8]) -> Vec<u8> {
    let mut h = etherparse::TcpHeader::new(40000, 5060, seq, 65535);
    h.syn = syn;
    h.ack = !syn;
    let mut v = Vec::new();
    etherparse::PacketBuilder::ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
        .tcp_header(h)
        .write(&mut v, payload)
        .unwrap();
    v
}

/// Issue 7: the HEP listeners and the frame decoders (live tap, capture
/// files) are charged to one budget, not one each: with a decoder holding
/// half of it, a HEP connection's partial frame that would fit a budget of
/// its own passes the shared one, and that connection goes.
#[tokio::test]
async fn hep_connections_and_frame_decoders_share_one_budget() {
    let budget = ByteBudget::new(100_000);
    let mut d = FrameDecoder::new(DecoderConfig {
        budget: Some(budget.clone()),
        ..DecoderConfig::default()
    });
    // A stream holding 50000 bytes behind a lost segment.
    let mut out = Vec::new();
    let t = Timestamp::from_nanos(0);
    for f in [
        tcp_segment(1, true, b""),
        tcp_segment(100, false, &[b'x'; 50_000]),
    ] {
        d.handle_frame(LinkType::RawIp, t, &f, f.len(), Source::Live, &mut out);
    }
    assert!(d.held_bytes() >= 50_000, "{}", d.held_bytes());
    assert_eq!(budget.used(), d.held_bytes());
    let r = start(ListenerConfig {
        budget: budget.clone(),
        ..ListenerConfig::default()
    })
    .await;
    // A partial frame announcing 60000 bytes.
    let mut head = b"HEP3".to_vec();
    head.extend_from_slice(&60000u16.to_be_bytes());
    head.extend_from_slice(&[0; 94]);
    let mut c = TcpStream::connect(r.addr).await.unwrap();
    c.write_all(&head).await.unwrap();
    closed(&mut c).await;
    let stats = r.stop().await;
    assert_eq!(stats.drops(DropReason::ReassemblyBudget), 1, "{stats:?}");
    // The decoder, which did not grow, keeps its stream.
    assert_eq!(d.tcp_streams(), 1);
    assert_eq!(budget.used(), d.held_bytes());
    d.finish(&mut out);
    assert_eq!(budget.used(), 0);
}
