//! [`FrameDecoder`]: captured frames in, SIP packets and counters out.

use std::net::{IpAddr, SocketAddr};

use etherparse::defrag::{IpFragId, IpFragVersionSpecId};
use etherparse::{
    IpNumber, Ipv6ExtensionSlice, NetSlice, SlicedPacket, TcpSlice, TransportSlice, UdpSlice,
};

use super::arena::Arena;
use super::defrag::{Defragmenter, Fragment};
use super::encap::{self, Inner};
use super::sctp::{self, Chunk};
use super::tcp::{Segment, Sink, StreamKey, TcpTable};
use super::{DecoderConfig, LinkType, hep_glue, link, sipframe};
use crate::{ByteBudget, Charge, DropReason, SipPacket, Source, Stats, Timestamp, Transport};

/// Decodes captured frames into [`SipPacket`]s.
///
/// Sans-IO and single-threaded: feed it frames in capture order with
/// [`FrameDecoder::handle_frame`], call [`FrameDecoder::handle_timeout`] when
/// [`FrameDecoder::poll_timeout`] says, and [`FrameDecoder::finish`] at the
/// end of the input. Every frame is counted in [`FrameDecoder::stats`], and
/// every frame that yields nothing is counted under a [`DropReason`]
/// (fragments and TCP segments absorbed into a reassembly excepted).
#[derive(Debug)]
pub struct FrameDecoder {
    cfg: DecoderConfig,
    stats: Stats,
    defrag: Defragmenter,
    tcp: TcpTable,
    /// What `defrag` and `tcp` hold, as charged to the (maybe shared) byte
    /// budget. Brought up to date only where the holdings can change
    /// (fragments, TCP segments, timers), and without an atomic operation
    /// when they did not: UDP frames never touch it.
    charge: Charge,
    /// Packets released by a timeout, handed out with the next call that
    /// takes an output vector.
    ready: Vec<SipPacket>,
    /// Where the payloads of datagrams (UDP, SCTP, HEP in UDP) are copied:
    /// no allocation per packet.
    arena: Arena,
}

/// Tunnels followed inside one another at most (a mirrored frame in
/// ERSPAN in GRE in IP in VXLAN is 2; more is an attack on the decoder).
const MAX_ENCAP_DEPTH: u8 = 4;
/// The IANA VXLAN port (RFC 7348 section 5).
const VXLAN_PORT: u16 = 4789;

/// The parts of a frame the transport layer needs.
#[derive(Clone, Copy)]
struct Meta {
    src: IpAddr,
    dst: IpAddr,
    vlan: Option<u16>,
    ts: Timestamp,
    source: Source,
    /// Tunnels this packet was found inside.
    depth: u8,
}

/// What a frame's (or tunnel's) outside tells about the packet inside.
#[derive(Clone, Copy)]
struct Outer {
    ts: Timestamp,
    source: Source,
    /// The tunnel's VLAN tag, used when the inner frame has none.
    vlan: Option<u16>,
    /// The capture cut the frame short (snap length).
    cut: bool,
    depth: u8,
}

impl FrameDecoder {
    /// A decoder with the given limits, charging what it holds to
    /// `cfg.budget` (or to a budget of `cfg.max_total_bytes` of its own).
    pub fn new(cfg: DecoderConfig) -> Self {
        let charge = match &cfg.budget {
            Some(b) => b.account(),
            None => ByteBudget::new(cfg.max_total_bytes).account(),
        };
        FrameDecoder {
            defrag: Defragmenter::new(cfg.max_ip_fragment_bytes, cfg.ip_fragment_timeout),
            charge,
            cfg,
            stats: Stats::default(),
            tcp: TcpTable::default(),
            ready: Vec::new(),
            arena: Arena::default(),
        }
    }

    /// The settings this decoder runs with.
    pub fn config(&self) -> &DecoderConfig {
        &self.cfg
    }

    /// Counters of everything decoded and dropped so far.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Decodes one captured frame of link type `link`, seen at `ts`, and
    /// appends the SIP messages it completes to `out`. `orig_len` is the
    /// frame's length on the wire (pcap header), `frame.len()` the captured
    /// length; a cut is noticed where the IP or UDP length fields promise
    /// more than was captured.
    pub fn handle_frame(
        &mut self,
        link: LinkType,
        ts: Timestamp,
        frame: &[u8],
        orig_len: usize,
        source: Source,
        out: &mut Vec<SipPacket>,
    ) {
        out.append(&mut self.ready);
        self.stats.packets += 1;
        self.stats.bytes += frame.len() as u64;
        let sliced = match link::slice(link, frame) {
            Ok(s) => s,
            Err(reason) => {
                self.stats.drop(reason);
                return;
            }
        };
        let outer = Outer {
            ts,
            source,
            vlan: None,
            cut: orig_len > frame.len(),
            depth: 0,
        };
        self.sliced(&sliced, frame, outer, out);
    }

    /// Decodes a frame sliced down from its link layer (or from a tunnel
    /// header: `frame` is then the inner packet).
    fn sliced(
        &mut self,
        sliced: &SlicedPacket<'_>,
        frame: &[u8],
        o: Outer,
        out: &mut Vec<SipPacket>,
    ) {
        let (src, dst, ip) = match &sliced.net {
            Some(NetSlice::Ipv4(v)) => (
                IpAddr::V4(v.header().source_addr()),
                IpAddr::V4(v.header().destination_addr()),
                v.payload(),
            ),
            Some(NetSlice::Ipv6(v)) => (
                IpAddr::V6(v.header().source_addr()),
                IpAddr::V6(v.header().destination_addr()),
                v.payload(),
            ),
            Some(NetSlice::Arp(_)) | None => {
                self.stats.drop(DropReason::NotIp);
                return;
            }
        };
        let meta = Meta {
            src,
            dst,
            // The mirrored frame's own tag, else the tunnel's.
            vlan: link::outer_vlan(sliced).or(o.vlan),
            ts: o.ts,
            source: o.source,
            depth: o.depth,
        };
        if sliced.is_ip_payload_fragmented() {
            self.fragment(sliced, meta, out);
            return;
        }
        match &sliced.transport {
            Some(TransportSlice::Udp(u)) => {
                if o.cut && udp_cut(u, frame) {
                    self.stats.drop(DropReason::Truncated);
                    return;
                }
                self.udp(
                    meta,
                    u.source_port(),
                    u.destination_port(),
                    u.payload(),
                    out,
                );
            }
            Some(TransportSlice::Tcp(t)) => self.tcp(meta, t, out),
            _ => self.ip_payload(meta, ip.ip_number, ip.payload, out),
        }
    }

    /// An IP payload that is neither UDP nor TCP: a tunnel, SCTP, or
    /// something we do not decode.
    fn ip_payload(&mut self, m: Meta, proto: IpNumber, p: &[u8], out: &mut Vec<SipPacket>) {
        match proto {
            IpNumber::IPV4 | IpNumber::IPV6 => self.inner(m, Inner::Ip(p), out),
            IpNumber::GRE => match encap::gre(p) {
                Ok(inner) => self.inner(m, inner, out),
                Err(reason) => self.stats.drop(reason),
            },
            IpNumber::SCTP => self.sctp(m, p, out),
            _ => self.stats.drop(DropReason::NotUdpTcp),
        }
    }

    /// Decodes the packet inside a tunnel.
    fn inner(&mut self, m: Meta, inner: Inner<'_>, out: &mut Vec<SipPacket>) {
        if m.depth >= MAX_ENCAP_DEPTH {
            self.stats.drop(DropReason::EncapTooDeep);
            return;
        }
        let (sliced, frame) = match inner {
            Inner::Ip([]) => {
                self.stats.drop(DropReason::Truncated);
                return;
            }
            Inner::Ip(b) => (SlicedPacket::from_ip(b), b),
            Inner::Ethernet(b) => (SlicedPacket::from_ethernet(b), b),
        };
        let sliced = match sliced {
            Ok(s) => s,
            Err(e) => {
                self.stats.drop(link::slice_error_reason(&e));
                return;
            }
        };
        let o = Outer {
            ts: m.ts,
            source: m.source,
            vlan: m.vlan,
            // Whether the capture cut the inner packet is for its own
            // length fields to tell.
            cut: false,
            depth: m.depth + 1,
        };
        self.sliced(&sliced, frame, o, out);
    }

    /// SIP over SCTP: one message per unfragmented DATA chunk.
    fn sctp(&mut self, m: Meta, p: &[u8], out: &mut Vec<SipPacket>) {
        let pkt = match sctp::parse(p) {
            Ok(pkt) => pkt,
            Err(reason) => {
                self.stats.drop(reason);
                return;
            }
        };
        if pkt.bad {
            self.stats.drop(DropReason::BadSctp);
        } else if pkt.chunks.is_empty() {
            // INIT, SACK, HEARTBEAT...: nothing for us.
            self.stats.drop(DropReason::NotSip);
        }
        for chunk in pkt.chunks {
            match chunk {
                Chunk::Fragment => self.stats.drop(DropReason::SctpFragment),
                Chunk::Message(data) => {
                    self.datagram(m, (pkt.src_port, pkt.dst_port), Transport::Sctp, data, out)
                }
            }
        }
    }

    /// Runs the timers due by `now` (capture time when replaying): IP
    /// datagrams whose fragments waited too long, TCP holes given up, idle
    /// streams closed. Messages this releases come out of the next
    /// [`FrameDecoder::handle_frame`], [`FrameDecoder::poll_packets`] or
    /// [`FrameDecoder::finish`].
    pub fn handle_timeout(&mut self, now: Timestamp) {
        self.defrag.expire(now, &mut self.stats);
        let mut sink = Sink {
            cfg: &self.cfg,
            stats: &mut self.stats,
            out: &mut self.ready,
        };
        self.tcp.expire(now, &mut sink);
        // Holdings only shrink here.
        self.recharge();
    }

    /// When [`FrameDecoder::handle_timeout`] should next be called, if
    /// anything is waiting. May be early, never late.
    pub fn poll_timeout(&self) -> Option<Timestamp> {
        match (self.defrag.next_deadline(), self.tcp.next_deadline()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Appends the messages a timeout released (if any) to `out`.
    pub fn poll_packets(&mut self, out: &mut Vec<SipPacket>) {
        out.append(&mut self.ready);
    }

    /// End of input: delivers what the TCP streams still hold behind holes
    /// (counting each hole as `TcpGap`), and counts unfinished IP datagrams
    /// and partial TCP messages as `ReassemblyTimeout`. The decoder is
    /// empty afterwards and can take new input.
    pub fn finish(&mut self, out: &mut Vec<SipPacket>) {
        out.append(&mut self.ready);
        self.defrag
            .expire(Timestamp::from_nanos(i64::MAX), &mut self.stats);
        let mut sink = Sink {
            cfg: &self.cfg,
            stats: &mut self.stats,
            out,
        };
        self.tcp.finish(&mut sink);
        self.recharge();
    }

    /// Number of TCP streams (connection directions) tracked now.
    pub fn tcp_streams(&self) -> usize {
        self.tcp.len()
    }

    /// Bytes reassembly holds now (IP fragments and TCP streams), what
    /// this decoder charges to its byte budget.
    pub fn held_bytes(&self) -> usize {
        self.tcp.held() + self.defrag.held()
    }

    /// The byte budget this decoder charges (shared with other holders
    /// when [`DecoderConfig::budget`] was given).
    pub fn budget(&self) -> &ByteBudget {
        self.charge.budget()
    }

    /// Charges the budget what is held now; false if that growth took the
    /// budget's total past its limit. No atomic operation when nothing
    /// changed.
    fn recharge(&mut self) -> bool {
        self.charge.set(self.held_bytes())
    }

    /// Number of IP datagrams waiting for fragments now.
    pub fn pending_datagrams(&self) -> usize {
        self.defrag.pending()
    }

    fn is_hep_port(&self, a: u16, b: u16) -> bool {
        self.cfg.hep_ports.iter().any(|p| *p == a || *p == b)
    }

    fn udp(&mut self, m: Meta, sport: u16, dport: u16, payload: &[u8], out: &mut Vec<SipPacket>) {
        // RFC 7348 section 5: VXLAN is known by its destination port.
        if dport == VXLAN_PORT {
            match encap::vxlan(payload) {
                Ok(eth) => self.inner(m, Inner::Ethernet(eth), out),
                Err(reason) => self.stats.drop(reason),
            }
            return;
        }
        if self.is_hep_port(sport, dport) {
            let arena = &mut self.arena;
            match hep_glue::decode_sip_with(payload, m.ts, &self.cfg.hep, |d| arena.copy(d)) {
                Ok(p) => {
                    self.stats.sip += 1;
                    out.push(p);
                }
                Err(reason) => self.stats.drop(reason),
            }
            return;
        }
        self.datagram(m, (sport, dport), Transport::Udp, payload, out);
    }

    /// One SIP message per datagram (UDP, SCTP user message).
    fn datagram(
        &mut self,
        m: Meta,
        (sport, dport): (u16, u16),
        transport: Transport,
        payload: &[u8],
        out: &mut Vec<SipPacket>,
    ) {
        if payload.len() > self.cfg.max_sip_message {
            self.stats.drop(DropReason::Oversize);
            return;
        }
        if !sipframe::is_sip_message(payload) {
            self.stats.drop(DropReason::NotSip);
            return;
        }
        self.stats.sip += 1;
        out.push(SipPacket {
            ts: m.ts,
            src: SocketAddr::new(m.src, sport),
            dst: SocketAddr::new(m.dst, dport),
            transport,
            source: m.source,
            capture_id: None,
            node: None,
            correlation_id: None,
            vlan: m.vlan,
            payload: self.arena.copy(payload),
        });
    }

    fn tcp(&mut self, m: Meta, t: &TcpSlice<'_>, out: &mut Vec<SipPacket>) {
        let (sport, dport) = (t.source_port(), t.destination_port());
        let key = StreamKey {
            src: SocketAddr::new(m.src, sport),
            dst: SocketAddr::new(m.dst, dport),
            vlan: m.vlan,
        };
        let seg = Segment {
            key,
            seq: t.sequence_number(),
            syn: t.syn(),
            fin: t.fin(),
            rst: t.rst(),
            payload: t.payload(),
            ts: m.ts,
            source: m.source,
            hep: self.is_hep_port(sport, dport),
        };
        let mut sink = Sink {
            cfg: &self.cfg,
            stats: &mut self.stats,
            out,
        };
        self.tcp.segment(seg, &mut sink);
        // The byte budget: the stream whose growth took the total (of
        // every holder sharing the budget) past it goes.
        if !self.recharge() {
            self.tcp.evict(&key, &mut self.stats);
            self.recharge();
        }
    }

    fn fragment(&mut self, sliced: &SlicedPacket<'_>, m: Meta, out: &mut Vec<SipPacket>) {
        let Some(frag) = fragment_of(sliced) else {
            self.stats.drop(DropReason::BadHeader);
            return;
        };
        // What the budget leaves for IP fragments: its limit less what
        // everything else holds (other holders and our TCP streams; the
        // charge is up to date, so our fragments are the rest of it).
        let budget = self.charge.budget();
        let others = budget.used().saturating_sub(self.defrag.held());
        let room = budget.limit().saturating_sub(others);
        let whole = self.defrag.add(frag, m.ts, room, &mut self.stats);
        // add() refused what would pass `room` itself (counted as
        // `ReassemblyBudget`); this only records what it holds now.
        self.recharge();
        let Some(whole) = whole else {
            return;
        };
        match whole.ip_number {
            IpNumber::UDP => match UdpSlice::from_slice(&whole.payload) {
                Ok(u) => self.udp(m, u.source_port(), u.destination_port(), u.payload(), out),
                Err(_) => self.stats.drop(DropReason::BadHeader),
            },
            IpNumber::TCP => match TcpSlice::from_slice(&whole.payload) {
                Ok(t) => self.tcp(m, &t, out),
                Err(_) => self.stats.drop(DropReason::BadHeader),
            },
            other => self.ip_payload(m, other, &whole.payload, out),
        }
    }
}

/// Whether the captured frame ends inside the UDP datagram: the IP layer
/// already checked its own length, so this only catches a UDP length of 0
/// ("use the IP length") on a frame cut short.
fn udp_cut(u: &UdpSlice<'_>, frame: &[u8]) -> bool {
    u.length() == 0 && frame.as_ptr_range().end == u.slice().as_ptr_range().end
}

/// The reassembly key and position of a fragmented IP packet.
fn fragment_of<'a>(sliced: &SlicedPacket<'a>) -> Option<Fragment<'a>> {
    match &sliced.net {
        Some(NetSlice::Ipv4(v)) => {
            let h = v.header();
            Some(Fragment {
                id: IpFragId {
                    vlan_ids: sliced.vlan_ids(),
                    ip: IpFragVersionSpecId::Ipv4 {
                        source: h.source(),
                        destination: h.destination(),
                        identification: h.identification(),
                    },
                    payload_ip_number: v.payload().ip_number,
                    channel_id: (),
                },
                offset: h.fragments_offset(),
                more: h.more_fragments(),
                payload: v.payload().payload,
            })
        }
        Some(NetSlice::Ipv6(v)) => {
            let frag = v.extensions().clone().into_iter().find_map(|e| match e {
                Ipv6ExtensionSlice::Fragment(f) => Some(f),
                _ => None,
            })?;
            Some(Fragment {
                id: IpFragId {
                    vlan_ids: sliced.vlan_ids(),
                    ip: IpFragVersionSpecId::Ipv6 {
                        source: v.header().source(),
                        destination: v.header().destination(),
                        identification: frag.identification(),
                    },
                    payload_ip_number: v.payload().ip_number,
                    channel_id: (),
                },
                offset: frag.fragment_offset(),
                more: frag.more_fragments(),
                payload: v.payload().payload,
            })
        }
        Some(NetSlice::Arp(_)) | None => None,
    }
}

#[cfg(test)]
#[allow(clippy::cast_possible_truncation)] // test sizes are small
mod tests;
