//! HEP listeners: UDP (draining the socket per wake-up, optionally several
//! `SO_REUSEPORT` sockets) and TCP (one task per connection, framed on the
//! HEPv3 length field; bounded in connections, idle time and bytes held,
//! with accept backing off when descriptors run out).
//!
//! Each is one `select!` loop over its socket and a shutdown signal; the
//! decoding is [`crate::hep::decode_sip_bytes`] over UDP (the datagrams are
//! slices of shared receive blocks, see `udp_batch`, so a packet is neither
//! allocated nor copied) and [`crate::hep::decode_sip`] over TCP, the
//! framing [`crate::hep::HepStreamFramer`]. SIP packets leave in batches
//! over an mpsc channel.

use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use std::os::fd::AsRawFd;

use socket2::{Domain, Protocol, Socket, Type};
use tokio::io::AsyncReadExt;
use tokio::io::Interest;
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

use super::limits::{Backoff, Warn, WarnLimiter, is_exhaustion};
use super::udp_batch::{MMSG, UdpBatch};
use crate::ByteBudget;
use crate::hep::{self, HepConfig, HepStreamFramer};
use crate::{CaptureError, DropReason, SharedStats, SipPacket, Stats, StatsPublisher, Timestamp};

/// Transport of a HEP listener.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HepProto {
    /// One HEP packet per datagram.
    Udp,
    /// A stream of HEPv3 packets, back to back.
    Tcp,
}

/// Where to listen for HEP: `udp:IP:PORT` or `tcp:IP:PORT`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HepBind {
    /// UDP or TCP.
    pub proto: HepProto,
    /// Address and port.
    pub addr: SocketAddr,
}

impl FromStr for HepBind {
    type Err = CaptureError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || CaptureError::BadListen(s.to_string());
        let (proto, rest) = s.split_once(':').ok_or_else(bad)?;
        let proto = match proto.to_ascii_lowercase().as_str() {
            "udp" => HepProto::Udp,
            "tcp" => HepProto::Tcp,
            _ => return Err(bad()),
        };
        let addr = rest.parse().map_err(|_| bad())?;
        Ok(HepBind { proto, addr })
    }
}

impl fmt::Display for HepBind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = match self.proto {
            HepProto::Udp => "udp",
            HepProto::Tcp => "tcp",
        };
        write!(f, "{p}:{}", self.addr)
    }
}

/// Settings shared by the HEP listeners.
#[derive(Clone, Debug)]
pub struct ListenerConfig {
    /// Auth key and payload limits.
    pub hep: HepConfig,
    /// Socket receive buffer (SO_RCVBUF) in bytes; the kernel may cap it.
    pub recv_buffer: usize,
    /// UDP sockets bound to the same address with SO_REUSEPORT, each with
    /// its own task, so the kernel spreads load over cores.
    pub udp_sockets: usize,
    /// Largest HEP frame accepted over TCP.
    pub max_frame: usize,
    /// Most SIP packets sent in one batch over the channel.
    pub batch: usize,
    /// TCP connections open at once; more are accepted and closed at once
    /// (counted as `hep_conn_limit`).
    pub tcp_max_connections: usize,
    /// A TCP connection that sends nothing for this long is closed
    /// (counted as `hep_idle_timeout`).
    pub tcp_idle_timeout: Duration,
    /// The reassembly byte budget the partial frames of all TCP
    /// connections are charged to; the connection whose growth takes the
    /// total past it is closed (counted as `reassembly_budget`). Clones
    /// share the budget: give every listener and every frame decoder
    /// ([`crate::DecoderConfig::budget`]) the same one to bound everything
    /// a process holds.
    pub budget: ByteBudget,
    /// Running totals for a server to read while the listener runs
    /// (every socket task and TCP connection adds to it as it goes); the
    /// counters [`HepListener::run`] returns are the same either way.
    pub shared_stats: Option<SharedStats>,
}

impl Default for ListenerConfig {
    fn default() -> Self {
        ListenerConfig {
            hep: HepConfig::default(),
            recv_buffer: 8 << 20,
            udp_sockets: 1,
            max_frame: 65535,
            batch: 256,
            tcp_max_connections: 1024,
            tcp_idle_timeout: Duration::from_secs(300),
            budget: ByteBudget::new(256 * 1024 * 1024),
            shared_stats: None,
        }
    }
}

/// A bound HEP listener, ready to [`HepListener::run`].
pub struct HepListener {
    bind: HepBind,
    inner: Inner,
}

enum Inner {
    Udp(Vec<UdpSocket>),
    Tcp(TcpListener),
}

/// Receive time, for HEPv1 packets that carry no timestamp. The I/O layer
/// is the one place that reads the clock.
pub(crate) fn now() -> Timestamp {
    let d = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    Timestamp::from_secs_nanos(
        i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        d.subsec_nanos(),
    )
}

impl HepListener {
    /// Binds the socket(s). Port 0 picks a free port: see
    /// [`HepListener::local_addr`].
    pub async fn bind(bind: HepBind, cfg: &ListenerConfig) -> Result<Self, CaptureError> {
        let inner = match bind.proto {
            HepProto::Udp => {
                let n = cfg.udp_sockets.max(1);
                let mut socks = Vec::with_capacity(n);
                let first = udp_socket(bind.addr, cfg.recv_buffer, n > 1)?;
                // With port 0 the others must join the port the first got.
                let addr = first.local_addr()?;
                socks.push(first);
                for _ in 1..n {
                    socks.push(udp_socket(addr, cfg.recv_buffer, true)?);
                }
                Inner::Udp(socks)
            }
            HepProto::Tcp => Inner::Tcp(TcpListener::bind(bind.addr).await?),
        };
        Ok(HepListener { bind, inner })
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> Result<SocketAddr, CaptureError> {
        Ok(match &self.inner {
            Inner::Udp(s) => match s.first() {
                Some(s) => s.local_addr()?,
                None => self.bind.addr,
            },
            Inner::Tcp(l) => l.local_addr()?,
        })
    }

    /// What this listener was asked to bind, with the port actually bound.
    pub fn bound(&self) -> HepBind {
        HepBind {
            proto: self.bind.proto,
            addr: self.local_addr().unwrap_or(self.bind.addr),
        }
    }

    /// Receives until `shutdown` turns true (or its sender is dropped) or
    /// the receiver of `tx` is gone; returns the counters.
    pub async fn run(
        self,
        cfg: ListenerConfig,
        tx: mpsc::Sender<Vec<SipPacket>>,
        shutdown: watch::Receiver<bool>,
    ) -> Stats {
        match self.inner {
            Inner::Udp(socks) => {
                let mut set = JoinSet::new();
                for s in socks {
                    set.spawn(run_udp(s, cfg.clone(), tx.clone(), shutdown.clone()));
                }
                let mut stats = Stats::default();
                while let Some(r) = set.join_next().await {
                    if let Ok(s) = r {
                        stats.merge(&s);
                    }
                }
                stats
            }
            Inner::Tcp(l) => run_tcp(l, cfg, tx, shutdown).await,
        }
    }
}

fn udp_socket(
    addr: SocketAddr,
    recv_buffer: usize,
    reuse_port: bool,
) -> Result<UdpSocket, CaptureError> {
    let s = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if reuse_port {
        s.set_reuse_port(true)?;
    }
    // Best effort: the kernel caps it at net.core.rmem_max.
    let _ = s.set_recv_buffer_size(recv_buffer);
    s.set_nonblocking(true)?;
    s.bind(&addr.into())?;
    Ok(UdpSocket::from_std(s.into())?)
}

/// Waits for `shutdown` to become true; never returns if its sender lives
/// on without signalling, returns at once if the sender is gone.
pub(crate) async fn shut(shutdown: &mut watch::Receiver<bool>) {
    while !*shutdown.borrow_and_update() {
        if shutdown.changed().await.is_err() {
            return;
        }
    }
}

async fn run_udp(
    sock: UdpSocket,
    cfg: ListenerConfig,
    tx: mpsc::Sender<Vec<SipPacket>>,
    mut shutdown: watch::Receiver<bool>,
) -> Stats {
    let mut stats = Stats::default();
    let mut publisher = StatsPublisher::new(cfg.shared_stats.clone());
    let mut bufs = UdpBatch::new();
    let mut dgrams = Vec::with_capacity(MMSG);
    let mut batch = Vec::with_capacity(cfg.batch);
    loop {
        tokio::select! {
            biased;
            _ = shut(&mut shutdown) => break,
            r = sock.readable() => {
                if let Err(e) = r {
                    tracing::warn!(error = %e, "HEP UDP socket failed");
                    break;
                }
                // Drain what the socket holds, up to one batch, per wake-up,
                // MMSG datagrams per system call.
                let ts = now();
                while batch.len() < cfg.batch {
                    let got = sock.try_io(Interest::READABLE, || {
                        bufs.recv(sock.as_raw_fd(), &mut dgrams)
                    });
                    match got {
                        Ok(n) => {
                            for d in dgrams.drain(..) {
                                stats.packets += 1;
                                stats.bytes += d.len() as u64;
                                match hep::decode_sip_bytes(d, ts, &cfg.hep) {
                                    Ok(p) => {
                                        stats.sip += 1;
                                        batch.push(p);
                                    }
                                    Err(reason) => stats.drop(reason),
                                }
                            }
                            if n < MMSG {
                                break;
                            }
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                        Err(e) => {
                            tracing::debug!(error = %e, "HEP UDP receive error");
                            break;
                        }
                    }
                }
                publisher.publish(&stats);
                if !batch.is_empty() {
                    let full = std::mem::replace(&mut batch, Vec::with_capacity(cfg.batch));
                    if tx.send(full).await.is_err() {
                        break;
                    }
                }
            }
        }
    }
    stats
}

/// One warning per kind per this long; the rest are counted.
const WARN_EVERY: Duration = Duration::from_secs(10);

/// Logs a rate-limited warning.
fn warn(limiter: &Mutex<WarnLimiter>, kind: Warn, what: &str, detail: &dyn fmt::Display) {
    let allowed = limiter
        .lock()
        .map(|mut l| l.allow(kind, Instant::now()))
        .unwrap_or(None);
    if let Some(suppressed) = allowed {
        tracing::warn!(%detail, suppressed, "{what}");
    }
}

async fn run_tcp(
    listener: TcpListener,
    cfg: ListenerConfig,
    tx: mpsc::Sender<Vec<SipPacket>>,
    mut shutdown: watch::Receiver<bool>,
) -> Stats {
    let mut stats = Stats::default();
    let mut conns = JoinSet::new();
    let limiter = Arc::new(Mutex::new(WarnLimiter::new(WARN_EVERY)));
    let mut backoff = Backoff::default();
    loop {
        tokio::select! {
            biased;
            _ = shut(&mut shutdown) => break,
            Some(r) = conns.join_next(), if !conns.is_empty() => {
                if let Ok(s) = r {
                    stats.merge(&s);
                }
            }
            r = listener.accept() => match r {
                Ok((stream, peer)) => {
                    backoff.reset();
                    if conns.len() >= cfg.tcp_max_connections {
                        // Accept and close: leaving it in the backlog would
                        // make the kernel retry it forever.
                        stats.drop(DropReason::HepConnLimit);
                        if let Some(shared) = &cfg.shared_stats {
                            let mut one = Stats::default();
                            one.drop(DropReason::HepConnLimit);
                            shared.add(&one);
                        }
                        warn(&limiter, Warn::ConnLimit, "HEP TCP connection refused: connection limit", &peer);
                        drop(stream);
                        continue;
                    }
                    tracing::debug!(%peer, "HEP TCP connection");
                    conns.spawn(run_tcp_conn(
                        stream,
                        peer,
                        cfg.clone(),
                        tx.clone(),
                        shutdown.clone(),
                        limiter.clone(),
                    ));
                }
                Err(e) if is_exhaustion(&e) => {
                    // Out of descriptors: accept fails at once until one
                    // frees, so wait instead of spinning.
                    let wait = backoff.fail();
                    warn(&limiter, Warn::Accept, "HEP TCP accept failed; backing off", &e);
                    tokio::select! {
                        biased;
                        _ = shut(&mut shutdown) => break,
                        () = tokio::time::sleep(wait) => {}
                    }
                }
                Err(e) => warn(&limiter, Warn::Accept, "HEP TCP accept failed", &e),
            },
        }
    }
    while let Some(r) = conns.join_next().await {
        if let Ok(s) = r {
            stats.merge(&s);
        }
    }
    stats
}

/// Why a HEP TCP connection ends.
enum End {
    /// The peer closed, or shutdown.
    Done,
    /// Nothing received for the idle timeout.
    Idle,
    /// The listener's byte budget ran out.
    Budget,
    /// An impossible frame header.
    BadFrame(hep::HepError),
}

async fn run_tcp_conn(
    mut stream: TcpStream,
    peer: SocketAddr,
    cfg: ListenerConfig,
    tx: mpsc::Sender<Vec<SipPacket>>,
    mut shutdown: watch::Receiver<bool>,
    limiter: Arc<Mutex<WarnLimiter>>,
) -> Stats {
    let mut stats = Stats::default();
    let mut publisher = StatsPublisher::new(cfg.shared_stats.clone());
    let mut framer = HepStreamFramer::new(cfg.max_frame);
    // Gives the partial frame's bytes back to the budget however the task
    // ends (also when it is cancelled).
    let mut charge = cfg.budget.account();
    let mut buf = vec![0u8; 65536];
    let end = 'conn: loop {
        let n = tokio::select! {
            biased;
            _ = shut(&mut shutdown) => break End::Done,
            r = tokio::time::timeout(cfg.tcp_idle_timeout, stream.read(&mut buf)) => match r {
                Err(_) => break End::Idle,
                Ok(Ok(0)) => break End::Done,
                Ok(Ok(n)) => n,
                Ok(Err(e)) => {
                    tracing::debug!(%peer, error = %e, "HEP TCP read failed");
                    break End::Done;
                }
            },
        };
        stats.bytes += n as u64;
        framer.push(buf.get(..n).unwrap_or_default());
        let ts = now();
        let mut batch = Vec::new();
        loop {
            let held = framer.buffered();
            match framer.next_frame() {
                Ok(Some(frame)) => {
                    stats.packets += 1;
                    // Copied out, so a packet kept downstream does not pin
                    // the framer's buffer.
                    match hep::decode_sip(&frame, ts, &cfg.hep) {
                        Ok(p) => {
                            stats.sip += 1;
                            batch.push(p);
                        }
                        Err(reason) => {
                            stats.drop(reason);
                            stats.discarded_bytes += frame.len() as u64;
                        }
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    // The framer let go of what it held.
                    stats.discarded_bytes += held as u64;
                    if !batch.is_empty() {
                        let _ = tx.send(batch).await;
                    }
                    break 'conn End::BadFrame(e);
                }
            }
        }
        publisher.publish(&stats);
        framer.shrink();
        if !charge.set(framer.capacity()) {
            if !batch.is_empty() {
                let _ = tx.send(batch).await;
            }
            break End::Budget;
        }
        if !batch.is_empty() && tx.send(batch).await.is_err() {
            break End::Done;
        }
    };
    stats.discarded_bytes += framer.buffered() as u64;
    match end {
        End::Done => {}
        End::Idle => stats.drop(DropReason::HepIdleTimeout),
        End::Budget => {
            stats.drop(DropReason::ReassemblyBudget);
            warn(
                &limiter,
                Warn::Budget,
                "closing HEP TCP connection: reassembly byte budget exhausted",
                &peer,
            );
        }
        End::BadFrame(e) => {
            stats.drop(DropReason::BadHepFrame);
            let detail = format!("{peer}: {e}");
            warn(
                &limiter,
                Warn::BadFrame,
                "closing HEP TCP connection: bad frame",
                &detail,
            );
        }
    }
    // The framer, its buffer and the read buffer go with the task; the
    // charge gives the bytes back to the budget.
    drop(framer);
    drop(charge);
    publisher.publish(&stats);
    stats
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_listen_specs() {
        let b: HepBind = "udp:127.0.0.1:9060".parse().unwrap();
        assert_eq!(b.proto, HepProto::Udp);
        assert_eq!(b.addr, "127.0.0.1:9060".parse().unwrap());
        let b: HepBind = "TCP:[::1]:9061".parse().unwrap();
        assert_eq!(b.proto, HepProto::Tcp);
        assert_eq!(b.to_string(), "tcp:[::1]:9061");
        for bad in [
            "127.0.0.1:9060",
            "sctp:127.0.0.1:1",
            "udp:nohost",
            "udp:1.2.3.4",
        ] {
            assert!(bad.parse::<HepBind>().is_err(), "{bad}");
        }
    }
}
