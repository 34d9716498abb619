//! `accurate send-hep`: replays capture files to a HEP collector, one HEPv3
//! packet per SIP message, as Kamailio's `siptrace` would have sent them.
//!
//! The files are read as `replay` reads them (several files merged by
//! packet time, raw SIP and HEP copies alike) and every SIP message goes out
//! with its original addresses, transport, capture id, node name and
//! correlation id. Timing and stamps come from [`Plan`], the Call-ID rewrite
//! of `--copies` from [`rewrite_call_id`]: both pure, so the pacing and the
//! rewrite are tested without a socket or a clock; the loop in [`run`] only
//! sleeps until each packet's due time and writes to the socket.
//!
//! - **Pace** (default): the capture's own gaps, so a 30 s call takes 30 s.
//!   `--rate PPS` sends at a fixed rate, `--as-fast` as fast as the socket
//!   takes them (load tests).
//! - **Stamps**: the capture's times, unless `--now`: then each packet is
//!   stamped with the time it is sent (at the capture's pace that is the
//!   capture's times shifted so its first packet is now, the gaps kept to
//!   the nanosecond), so a live server takes them as current rather than
//!   correcting them by its clock rule.
//! - **Copies**: `--copies N` sends each message N times, copy k with
//!   `-kK` appended to its Call-ID (that header only, the rest of the SIP
//!   bytes unchanged), so a capture of c calls becomes N x c calls.

use std::collections::HashSet;
use std::io::{self, BufWriter, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use capture::hep::{
    AF_INET, AF_INET6, HepPacket, HepVersion, IPPROTO_KAMAILIO_TLS_WS, PROTO_TYPE_SIP,
    try_encode_v3,
};
use capture::io::{HepBind, HepProto};
use capture::{SipPacket, Timestamp, Transport};

use crate::config::Config;
use crate::exit::Failure;
use crate::replay::merge::Merge;

/// Arguments of `accurate send-hep`.
#[derive(Debug, clap::Args)]
pub(crate) struct SendHepArgs {
    /// pcap or pcapng files, merged by packet time as `replay` reads them.
    #[arg(value_name = "FILE", required = true)]
    files: Vec<PathBuf>,
    /// The HEP collector: udp:IP:PORT (one packet per datagram) or
    /// tcp:IP:PORT (HEPv3 packets back to back on one connection).
    #[arg(long, value_name = "PROTO:IP:PORT", value_parser = parse_target)]
    to: HepBind,
    /// BPF filter applied to the files, e.g. 'not port 9060' (raw SIP only)
    /// or 'port 9060' (the HEP copies only).
    #[arg(long, short = 'f', value_name = "BPF")]
    filter: Option<String>,
    /// Send this many packets per second instead of the capture's pace.
    #[arg(long, value_name = "PPS", conflicts_with = "as_fast",
          value_parser = clap::value_parser!(u32).range(1..))]
    rate: Option<u32>,
    /// Send as fast as the socket takes them instead of the capture's pace.
    #[arg(long)]
    as_fast: bool,
    /// Stamp each packet with the time it is sent (the capture's times
    /// shifted to now at its own pace), so a live server takes them as
    /// current.
    #[arg(long)]
    now: bool,
    /// Send each call N times, copy K with `-kK` appended to its Call-ID.
    #[arg(long, value_name = "N", default_value_t = 1,
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    copies: u32,
    /// HEP capture id (chunk 0x000c) of every packet [default: the
    /// packet's own, from a HEP copy in the capture; none for raw SIP].
    #[arg(long, value_name = "ID")]
    capture_id: Option<u32>,
}

/// How packets are spaced in time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Pace {
    /// The capture's own gaps.
    Capture,
    /// A fixed number of packets per second.
    Rate(u32),
    /// No waiting.
    AsFast,
}

/// The sans-IO schedule: when each packet is due and how it is stamped,
/// from the packet's capture time, its place in the stream and the time
/// sending started.
#[derive(Clone, Debug)]
pub(crate) struct Plan {
    pace: Pace,
    now: bool,
    /// The wall-clock time sending started.
    start: Timestamp,
    /// The capture time of the first packet (set by the first one).
    first: Option<Timestamp>,
}

impl Plan {
    /// A plan that starts at wall-clock `start`; `now` is `--now`.
    pub(crate) fn new(pace: Pace, now: bool, start: Timestamp) -> Self {
        Plan {
            pace,
            now,
            start,
            first: None,
        }
    }

    /// How long after the start the `i`th packet sent (from 0, copies
    /// counted), captured at `ts`, is due. A packet stamped before the
    /// first (a capture slightly out of order) is due at once.
    pub(crate) fn due(&mut self, i: u64, ts: Timestamp) -> Duration {
        let first = *self.first.get_or_insert(ts);
        match self.pace {
            Pace::Capture => ts.since(first),
            Pace::Rate(pps) => {
                let nanos = u128::from(i) * 1_000_000_000 / u128::from(pps.max(1));
                Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
            }
            Pace::AsFast => Duration::ZERO,
        }
    }

    /// The stamp of a packet captured at `ts`, due at `due` (from
    /// [`Plan::due`]) and actually sent at wall-clock `sent`.
    ///
    /// Without `--now`, its capture time. With it, the time it is sent: at
    /// the capture's pace the planned time (start + the packet's offset in
    /// the capture, so the gaps are kept exactly, even for a packet
    /// captured before the first), at a fixed rate the planned time too,
    /// as fast as possible the wall clock.
    pub(crate) fn stamp(&self, ts: Timestamp, due: Duration, sent: Timestamp) -> Timestamp {
        if !self.now {
            return ts;
        }
        match self.pace {
            Pace::Capture => {
                let first = self.first.unwrap_or(ts);
                let offset = ts.as_nanos().saturating_sub(first.as_nanos());
                Timestamp::from_nanos(self.start.as_nanos().saturating_add(offset))
            }
            Pace::Rate(_) => self.start.saturating_add(due),
            Pace::AsFast => sent,
        }
    }
}

/// `payload` with `suffix` appended to the value of its Call-ID header
/// (`Call-ID` or the compact `i`, any case, in the header section only);
/// `None` when it has none. Every other byte is kept, so Content-Length
/// and the body stay right.
pub(crate) fn rewrite_call_id(payload: &[u8], suffix: &[u8]) -> Option<Vec<u8>> {
    let at = call_id_value(payload)?.end;
    let mut out = Vec::with_capacity(payload.len() + suffix.len());
    out.extend_from_slice(payload.get(..at)?);
    out.extend_from_slice(suffix);
    out.extend_from_slice(payload.get(at..)?);
    Some(out)
}

/// Where the Call-ID value is in a SIP message: the first `Call-ID:` or
/// `i:` header line of the header section (RFC 3261 section 7.3.1: any
/// case, whitespace before the colon), without surrounding whitespace.
pub(crate) fn call_id_value(msg: &[u8]) -> Option<std::ops::Range<usize>> {
    let mut pos = 0;
    let mut first = true;
    while pos < msg.len() {
        let rest = msg.get(pos..)?;
        let line_len = rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len());
        let line = rest.get(..line_len)?;
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            return None; // end of the headers
        }
        if !first {
            if let Some(r) = header_value(line, pos) {
                return Some(r);
            }
        }
        first = false;
        pos += line_len + 1;
    }
    None
}

/// The value range (offset by `base`) when `line` is a Call-ID header.
fn header_value(line: &[u8], base: usize) -> Option<std::ops::Range<usize>> {
    let colon = line.iter().position(|&b| b == b':')?;
    let name = line.get(..colon)?.trim_ascii_end();
    if !(name.eq_ignore_ascii_case(b"call-id") || name.eq_ignore_ascii_case(b"i")) {
        return None;
    }
    let value = line.get(colon + 1..)?;
    let lead = value.len() - value.trim_ascii_start().len();
    let trimmed = value.trim_ascii();
    if trimmed.is_empty() {
        return None;
    }
    let start = base + colon + 1 + lead;
    Some(start..start + trimmed.len())
}

/// The HEPv3 packet that carries `pkt`, stamped `stamp`, with `payload`
/// (the message, or its rewritten copy). `None` when the stamp cannot be
/// written in HEP's 32-bit seconds (before 1970 or after 2106).
pub(crate) fn hep_packet(
    pkt: &SipPacket,
    payload: Bytes,
    stamp: Timestamp,
    capture_id: Option<u32>,
    auth_key: Option<&[u8]>,
) -> Option<HepPacket> {
    let secs = u32::try_from(stamp.secs()).ok()?;
    let (src, dst) = same_family(pkt.src.ip(), pkt.dst.ip());
    let (family, src4, dst4, src6, dst6) = match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => (AF_INET, Some(s), Some(d), None, None),
        (s, d) => (AF_INET6, None, None, Some(v6(s)), Some(v6(d))),
    };
    Some(HepPacket {
        version: HepVersion::V3,
        ts: stamp,
        ip_family: Some(family),
        ip_proto: Some(ip_proto(pkt.transport)),
        src_ipv4: src4,
        dst_ipv4: dst4,
        src_ipv6: src6,
        dst_ipv6: dst6,
        src_port: Some(pkt.src.port()),
        dst_port: Some(pkt.dst.port()),
        ts_secs: Some(secs),
        ts_micros: Some(stamp.subsec_micros()),
        proto_type: Some(PROTO_TYPE_SIP),
        capture_id: capture_id.or(pkt.capture_id),
        auth_key: auth_key.map(Bytes::copy_from_slice),
        payload: Some(payload),
        correlation_id: pkt.correlation_id.clone(),
        vlan: pkt.vlan,
        node_name: pkt.node.as_ref().map(|n| Bytes::from(n.clone())),
        ..HepPacket::default()
    })
}

/// Both addresses in one family: IPv4 when both are, else both IPv6.
fn same_family(a: IpAddr, b: IpAddr) -> (IpAddr, IpAddr) {
    match (a, b) {
        (IpAddr::V4(_), IpAddr::V4(_)) => (a, b),
        _ => (IpAddr::V6(v6(a)), IpAddr::V6(v6(b))),
    }
}

fn v6(a: IpAddr) -> Ipv6Addr {
    match a {
        IpAddr::V4(v4) => v4.to_ipv6_mapped(),
        IpAddr::V6(v6) => v6,
    }
}

/// The HEP IP protocol id of a transport (Kamailio's 22 for TLS and
/// WebSockets, which its siptrace cannot tell apart).
fn ip_proto(t: Transport) -> u8 {
    match t {
        Transport::Udp => 17,
        Transport::Tcp => 6,
        Transport::Sctp => 132,
        Transport::Tls | Transport::Ws | Transport::Wss => IPPROTO_KAMAILIO_TLS_WS,
    }
}

/// The wall clock as a packet timestamp.
fn wall_clock() -> Timestamp {
    let d = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    Timestamp::from_secs_nanos(
        i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        d.subsec_nanos(),
    )
}

fn parse_target(s: &str) -> Result<HepBind, String> {
    s.parse()
        .map_err(|_| format!("{s:?} is not udp:IP:PORT or tcp:IP:PORT"))
}

/// Totals printed at the end.
#[derive(Debug, Default)]
struct Totals {
    packets: u64,
    bytes: u64,
    /// Distinct Call-IDs in the capture (each sent `copies` times).
    call_ids: HashSet<Bytes>,
    /// Messages that could not be sent: no HEP stamp for their time, or
    /// too large for HEPv3.
    skipped: u64,
}

/// The socket the packets go out on.
enum Out {
    Udp(UdpSocket),
    Tcp(BufWriter<TcpStream>),
}

impl Out {
    fn connect(to: HepBind) -> io::Result<Out> {
        match to.proto {
            HepProto::Udp => {
                let any: IpAddr = if to.addr.is_ipv4() {
                    Ipv4Addr::UNSPECIFIED.into()
                } else {
                    Ipv6Addr::UNSPECIFIED.into()
                };
                let s = UdpSocket::bind(SocketAddr::new(any, 0))?;
                s.connect(to.addr)?;
                Ok(Out::Udp(s))
            }
            HepProto::Tcp => {
                let s = TcpStream::connect(to.addr)?;
                s.set_nodelay(true)?;
                Ok(Out::Tcp(BufWriter::with_capacity(64 << 10, s)))
            }
        }
    }

    fn send(&mut self, wire: &[u8]) -> io::Result<()> {
        match self {
            Out::Udp(s) => match s.send(wire) {
                Ok(_) => Ok(()),
                // An ICMP "port unreachable" for an earlier datagram is
                // reported on this send, which did not go: try once more
                // (UDP promises nothing more; a collector that is down
                // fails the second try too).
                Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => s.send(wire).map(drop),
                Err(e) => Err(e),
            },
            Out::Tcp(w) => w.write_all(wire),
        }
    }

    /// Pushes what is buffered (before a wait, and at the end).
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Out::Udp(_) => Ok(()),
            Out::Tcp(w) => w.flush(),
        }
    }
}

/// Runs `accurate send-hep`.
pub(crate) fn run(args: SendHepArgs, config: Option<&Path>) -> anyhow::Result<()> {
    let cfg = Config::load_or_default(config)?;
    let auth_key = cfg.hep_config().auth_key;
    let mut merge = Merge::open(&args.files, args.filter.as_deref(), &cfg)?;
    let mut out = Out::connect(args.to)
        .map_err(|e| Failure::Peer(format!("cannot connect to {}", args.to), e))?;
    let pace = match (args.rate, args.as_fast) {
        (Some(pps), _) => Pace::Rate(pps),
        (None, true) => Pace::AsFast,
        (None, false) => Pace::Capture,
    };
    let started = Instant::now();
    let mut plan = Plan::new(pace, args.now, wall_clock());
    let mut totals = Totals::default();
    let suffixes: Vec<Vec<u8>> = (1..=args.copies)
        .map(|k| format!("-k{k}").into_bytes())
        .collect();
    let send_err = |e| Failure::Peer(format!("cannot send to {}", args.to), e);
    let mut i = 0u64;
    while let Some(pkt) = merge.next_packet()? {
        let cid = call_id_value(&pkt.payload).and_then(|r| pkt.payload.get(r));
        if let Some(c) = cid {
            if !totals.call_ids.contains(c) {
                totals.call_ids.insert(Bytes::copy_from_slice(c));
            }
        }
        for k in 0..args.copies {
            let due = plan.due(i, pkt.ts);
            i += 1;
            let wait = due.saturating_sub(started.elapsed());
            if !wait.is_zero() {
                out.flush().map_err(send_err)?;
                std::thread::sleep(wait);
            }
            let payload = match suffixes.get(k as usize) {
                Some(sfx) if args.copies > 1 => rewrite_call_id(&pkt.payload, sfx)
                    .map_or_else(|| pkt.payload.clone(), Bytes::from),
                _ => pkt.payload.clone(),
            };
            let sent = if pace == Pace::AsFast && args.now {
                wall_clock()
            } else {
                Timestamp::EPOCH
            };
            let stamp = plan.stamp(pkt.ts, due, sent);
            let wire = hep_packet(&pkt, payload, stamp, args.capture_id, auth_key.as_deref())
                .and_then(|h| try_encode_v3(&h).ok());
            let Some(wire) = wire else {
                totals.skipped += 1;
                continue;
            };
            out.send(&wire).map_err(send_err)?;
            totals.packets += 1;
            totals.bytes += wire.len() as u64;
        }
    }
    out.flush().map_err(send_err)?;
    let elapsed = started.elapsed();
    if let Some(cut) = merge.cut_short() {
        print_totals(&totals, args.copies, elapsed);
        return Err(cut.into());
    }
    print_totals(&totals, args.copies, elapsed);
    Ok(())
}

fn print_totals(t: &Totals, copies: u32, elapsed: Duration) {
    let mut e = io::stderr().lock();
    let calls = t.call_ids.len() as u64 * u64::from(copies);
    let ms = elapsed.as_millis();
    let _ = writeln!(e, "send-hep: packets: {}", t.packets);
    let _ = writeln!(e, "send-hep: bytes: {}", t.bytes);
    let _ = writeln!(e, "send-hep: calls: {calls}");
    let _ = writeln!(e, "send-hep: skipped: {}", t.skipped);
    let _ = writeln!(e, "send-hep: seconds: {}.{:03}", ms / 1000, ms % 1000);
}

#[cfg(test)]
mod tests {
    use super::*;

    const MSG: &[u8] = b"INVITE sip:1002@h SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\n\
        call-id :  abc@h  \r\nCSeq: 1 INVITE\r\nContent-Length: 20\r\n\r\nCall-ID: body@h\r\n\r\n";

    fn t(secs: i64, nanos: u32) -> Timestamp {
        Timestamp::from_secs_nanos(secs, nanos)
    }

    #[test]
    fn rewrite_touches_the_call_id_value_only() {
        let out = rewrite_call_id(MSG, b"-k2").unwrap();
        let want = String::from_utf8_lossy(MSG).replacen("abc@h", "abc@h-k2", 1);
        assert_eq!(String::from_utf8(out).unwrap(), want);
        // The body's Call-ID line is left alone.
        assert!(want.ends_with("\r\n\r\nCall-ID: body@h\r\n\r\n"));
    }

    #[test]
    fn rewrite_compact_form_and_bare_lf() {
        let m = b"BYE sip:x SIP/2.0\nVia: v\ni:xyz\nCSeq: 2 BYE\n\n";
        let out = rewrite_call_id(m, b"-k1").unwrap();
        assert_eq!(out, b"BYE sip:x SIP/2.0\nVia: v\ni:xyz-k1\nCSeq: 2 BYE\n\n");
    }

    #[test]
    fn no_call_id_no_rewrite() {
        // Only in the body, or in the start line, or empty: not a header.
        assert_eq!(
            rewrite_call_id(b"OPTIONS sip:x SIP/2.0\r\n\r\nCall-ID: b\r\n", b"-k1"),
            None
        );
        assert_eq!(
            rewrite_call_id(b"Call-ID: a\r\nVia: v\r\n\r\n", b"-k1"),
            None
        );
        assert_eq!(
            rewrite_call_id(b"SIP/2.0 200 OK\r\nCall-ID:   \r\n\r\n", b"-k1"),
            None
        );
        assert_eq!(rewrite_call_id(b"", b"-k1"), None);
        // Callid is another header.
        assert_eq!(
            rewrite_call_id(b"SIP/2.0 200 OK\r\nCallid: a\r\n\r\n", b"-k1"),
            None
        );
    }

    #[test]
    fn capture_pace_keeps_the_gaps() {
        let mut p = Plan::new(Pace::Capture, false, t(5_000, 0));
        assert_eq!(p.due(0, t(100, 500)), Duration::ZERO);
        assert_eq!(p.due(1, t(100, 700)), Duration::from_nanos(200));
        assert_eq!(p.due(2, t(130, 500)), Duration::from_secs(30));
        // Out of order in the capture: due at once.
        assert_eq!(p.due(3, t(99, 0)), Duration::ZERO);
        // Without --now the stamps are the capture's.
        assert_eq!(
            p.stamp(t(130, 500), Duration::from_secs(30), t(9, 0)),
            t(130, 500)
        );
    }

    #[test]
    fn now_shifts_capture_times_exactly() {
        let start = t(1_800_000_000, 250);
        let mut p = Plan::new(Pace::Capture, true, start);
        let d0 = p.due(0, t(100, 500));
        assert_eq!(p.stamp(t(100, 500), d0, t(1, 0)), start);
        let d1 = p.due(1, t(130, 501));
        // The sending time does not matter at the capture's pace.
        assert_eq!(p.stamp(t(130, 501), d1, t(1, 0)), t(1_800_000_030, 251));
        // Before the first packet: shifted back as far.
        assert_eq!(
            p.stamp(t(99, 500), Duration::ZERO, t(1, 0)),
            t(1_799_999_999, 250)
        );
    }

    #[test]
    fn rate_spaces_packets_evenly() {
        let start = t(1_000, 0);
        let mut p = Plan::new(Pace::Rate(4), true, start);
        let ds: Vec<Duration> = (0..5).map(|i| p.due(i, t(7, 0))).collect();
        assert_eq!(ds, [0, 250, 500, 750, 1000].map(Duration::from_millis));
        assert_eq!(p.stamp(t(7, 0), ds[3], t(1, 0)), t(1_000, 750_000_000));
        let mut q = Plan::new(Pace::Rate(3), false, start);
        assert_eq!(q.due(1, t(7, 0)), Duration::from_nanos(333_333_333));
        assert_eq!(q.stamp(t(7, 0), Duration::ZERO, t(1, 0)), t(7, 0));
    }

    #[test]
    fn as_fast_never_waits_and_stamps_the_send_time() {
        let mut p = Plan::new(Pace::AsFast, true, t(1_000, 0));
        assert_eq!(p.due(0, t(7, 0)), Duration::ZERO);
        assert_eq!(p.due(9, t(900, 0)), Duration::ZERO);
        assert_eq!(p.stamp(t(900, 0), Duration::ZERO, t(1_001, 5)), t(1_001, 5));
    }

    fn pkt(src: &str, dst: &str, transport: Transport) -> SipPacket {
        SipPacket {
            ts: t(1, 0),
            src: src.parse().unwrap(),
            dst: dst.parse().unwrap(),
            transport,
            source: capture::Source::Pcap,
            capture_id: Some(7),
            node: Some("n1".into()),
            correlation_id: None,
            vlan: None,
            payload: Bytes::from_static(MSG),
        }
    }

    #[test]
    fn hep_packet_round_trips_through_the_decoder() {
        let p = pkt("10.0.0.1:5061", "10.0.0.2:5060", Transport::Tcp);
        let stamp = t(1_700_000_000, 123_456_789);
        let h = hep_packet(&p, p.payload.clone(), stamp, None, Some(b"k")).unwrap();
        let wire = try_encode_v3(&h).unwrap();
        let cfg = capture::HepConfig {
            auth_key: Some(b"k".to_vec()),
            ..capture::HepConfig::default()
        };
        let back = capture::hep::decode_sip(&wire, Timestamp::EPOCH, &cfg).unwrap();
        assert_eq!(back.src, p.src);
        assert_eq!(back.dst, p.dst);
        assert_eq!(back.transport, Transport::Tcp);
        assert_eq!(back.capture_id, Some(7));
        assert_eq!(back.node.as_deref(), Some("n1"));
        assert_eq!(back.payload, p.payload);
        // HEP carries microseconds.
        assert_eq!(back.ts, t(1_700_000_000, 123_456_000));
        // --capture-id wins; mixed families go out as IPv6.
        let p = pkt("10.0.0.1:5061", "[::1]:5060", Transport::Tls);
        let h = hep_packet(&p, p.payload.clone(), stamp, Some(9), None).unwrap();
        assert_eq!(h.capture_id, Some(9));
        assert_eq!(h.ip_family, Some(AF_INET6));
        assert_eq!(h.ip_proto, Some(IPPROTO_KAMAILIO_TLS_WS));
        // No HEP stamp before 1970.
        assert!(hep_packet(&p, p.payload.clone(), t(-1, 0), None, None).is_none());
    }
}
