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
mod tests {
    use std::time::Duration;

    use etherparse::{LinuxSllPacketType, PacketBuilder, VlanId};

    use super::*;
    use crate::frame::testutil::*;

    fn decode(link: LinkType, frame: &[u8]) -> (Vec<SipPacket>, Stats) {
        decode_with(DecoderConfig::default(), link, frame)
    }

    fn decode_with(cfg: DecoderConfig, link: LinkType, frame: &[u8]) -> (Vec<SipPacket>, Stats) {
        let mut d = FrameDecoder::new(cfg);
        let mut out = Vec::new();
        d.handle_frame(link, ts(0), frame, frame.len(), Source::Pcap, &mut out);
        (out, d.stats().clone())
    }

    const INVITE: &[u8] = b"INVITE sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/UDP a\r\n\r\n";

    fn assert_one_v4(out: &[SipPacket], stats: &Stats) {
        assert_eq!(out.len(), 1, "{stats:?}");
        let p = &out[0];
        assert_eq!(p.payload, INVITE);
        assert_eq!(p.src, "10.0.0.1:5060".parse().expect("addr"));
        assert_eq!(p.dst, "10.0.0.2:5060".parse().expect("addr"));
        assert_eq!(p.transport, Transport::Udp);
        assert_eq!(p.source, Source::Pcap);
        assert_eq!(p.ts, ts(0));
        assert_eq!(stats.sip, 1);
        assert_eq!(stats.packets, 1);
        assert_eq!(stats.total_drops(), 0);
    }

    #[test]
    fn every_link_type_yields_the_message() {
        let ip = udp_ipv4(INVITE);
        let mut sll = Vec::new();
        PacketBuilder::linux_sll(LinuxSllPacketType::HOST, 6, [1, 2, 3, 4, 5, 6, 0, 0])
            .ipv4(A4, B4, 64)
            .udp(5060, 5060)
            .write(&mut sll, INVITE)
            .expect("builds");
        let null = [&[2u8, 0, 0, 0][..], &ip].concat();
        let lo = [&[0u8, 0, 0, 2][..], &ip].concat();
        let cases: Vec<(LinkType, Vec<u8>)> = vec![
            (LinkType::Ethernet, eth_udp(INVITE)),
            (LinkType::LinuxSll, sll),
            (LinkType::LinuxSll2, sll2_frame(0x0800, &ip)),
            (LinkType::RawIp, ip.clone()),
            (LinkType::Ipv4, ip.clone()),
            (LinkType::Null, null),
            (LinkType::Loop, lo),
        ];
        for (link, frame) in cases {
            let (out, stats) = decode(link, &frame);
            assert_one_v4(&out, &stats);
            assert_eq!(stats.bytes, frame.len() as u64, "{link:?}");
            assert_eq!(out[0].vlan, None);
        }
    }

    #[test]
    fn ipv6_addresses() {
        for link in [LinkType::RawIp, LinkType::Ipv6] {
            let (out, _) = decode(link, &udp_ipv6(INVITE));
            assert_eq!(out.len(), 1);
            assert_eq!(out[0].src, "[2001:db8::1]:5060".parse().expect("addr"));
            assert_eq!(out[0].dst, "[2001:db8::2]:5060".parse().expect("addr"));
        }
    }

    #[test]
    fn vlan_and_qinq_record_the_outer_id() {
        let mut single = Vec::new();
        PacketBuilder::ethernet2([1; 6], [2; 6])
            .single_vlan(VlanId::try_new(42).expect("vlan"))
            .ipv4(A4, B4, 64)
            .udp(5060, 5060)
            .write(&mut single, INVITE)
            .expect("builds");
        let (out, _) = decode(LinkType::Ethernet, &single);
        assert_eq!(out[0].vlan, Some(42));
        let mut double = Vec::new();
        PacketBuilder::ethernet2([1; 6], [2; 6])
            .double_vlan(
                VlanId::try_new(100).expect("vlan"),
                VlanId::try_new(7).expect("vlan"),
            )
            .ipv4(A4, B4, 64)
            .udp(5060, 5060)
            .write(&mut double, INVITE)
            .expect("builds");
        let (out, stats) = decode(LinkType::Ethernet, &double);
        assert_one_v4(&out, &stats);
        assert_eq!(out[0].vlan, Some(100));
    }

    #[test]
    fn udp_non_sip_is_counted() {
        for payload in [
            &b"\r\n\r\n"[..],
            b"\r\n",
            b"",
            b"\0\0\0\0",
            b"HTTP/1.1 200 OK\r\n",
        ] {
            let (out, stats) = decode(LinkType::RawIp, &udp_ipv4(payload));
            assert!(out.is_empty());
            assert_eq!(stats.drops(DropReason::NotSip), 1);
        }
    }

    #[test]
    fn oversize_udp_is_counted() {
        let cfg = DecoderConfig {
            max_sip_message: 20,
            ..DecoderConfig::default()
        };
        let (out, stats) = decode_with(cfg, LinkType::RawIp, &udp_ipv4(INVITE));
        assert!(out.is_empty());
        assert_eq!(stats.drops(DropReason::Oversize), 1);
    }

    #[test]
    fn not_ip_and_not_udp_tcp() {
        // ARP over Ethernet.
        let mut arp = vec![0xff; 6];
        arp.extend_from_slice(&[1; 6]);
        arp.extend_from_slice(&[0x08, 0x06]);
        arp.extend_from_slice(&[0, 1, 8, 0, 6, 4, 0, 1]);
        arp.extend_from_slice(&[0; 20]);
        let (_, stats) = decode(LinkType::Ethernet, &arp);
        assert_eq!(stats.drops(DropReason::NotIp), 1);
        // An unknown ether type.
        let mut other = arp.clone();
        other[12] = 0x88;
        other[13] = 0xcc;
        let (_, stats) = decode(LinkType::Ethernet, &other);
        assert_eq!(stats.drops(DropReason::NotIp), 1);
        // ICMP echo.
        let mut icmp = Vec::new();
        PacketBuilder::ipv4(A4, B4, 64)
            .icmpv4_echo_request(1, 1)
            .write(&mut icmp, b"ping")
            .expect("builds");
        let (_, stats) = decode(LinkType::RawIp, &icmp);
        assert_eq!(stats.drops(DropReason::NotUdpTcp), 1);
        // An unknown IP protocol (ESP).
        let mut gre = udp_ipv4(b"xxxxxxxx");
        gre[9] = 50;
        let (_, stats) = decode(LinkType::RawIp, &gre);
        assert_eq!(stats.drops(DropReason::NotUdpTcp), 1);
    }

    #[test]
    fn truncated_and_bad_headers() {
        let frame = eth_udp(INVITE);
        let mut d = FrameDecoder::new(DecoderConfig::default());
        let mut out = Vec::new();
        // Snap length cut into the UDP payload.
        d.handle_frame(
            LinkType::Ethernet,
            ts(0),
            &frame[..60],
            frame.len(),
            Source::Live,
            &mut out,
        );
        // Cut inside the Ethernet header.
        d.handle_frame(
            LinkType::Ethernet,
            ts(0),
            &frame[..10],
            frame.len(),
            Source::Live,
            &mut out,
        );
        assert!(out.is_empty());
        assert_eq!(d.stats().drops(DropReason::Truncated), 2);
        // UDP length larger than the IP packet.
        let mut bad = udp_ipv4(INVITE);
        bad[24] = 0xff;
        d.handle_frame(
            LinkType::RawIp,
            ts(0),
            &bad,
            bad.len(),
            Source::Live,
            &mut out,
        );
        // IPv4 header length below 20.
        let mut bad = udp_ipv4(INVITE);
        bad[0] = 0x43;
        d.handle_frame(
            LinkType::RawIp,
            ts(0),
            &bad,
            bad.len(),
            Source::Live,
            &mut out,
        );
        assert_eq!(d.stats().drops(DropReason::BadHeader), 2);
        assert_eq!(d.stats().packets, 4);
        assert!(out.is_empty());
    }

    #[test]
    fn ethernet_padding_is_not_truncation() {
        let mut frame = eth_udp(b"SIP/2.0 200 OK\r\n\r\n");
        frame.extend_from_slice(&[0; 8]); // padding, and a cut FCS
        let mut d = FrameDecoder::new(DecoderConfig::default());
        let mut out = Vec::new();
        d.handle_frame(
            LinkType::Ethernet,
            ts(0),
            &frame,
            frame.len() + 4,
            Source::Live,
            &mut out,
        );
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].payload, &b"SIP/2.0 200 OK\r\n\r\n"[..]);
    }

    fn big_invite() -> Vec<u8> {
        let mut m = b"INVITE sip:bob@example.com SIP/2.0\r\nContent-Length: 3000\r\n\r\n".to_vec();
        m.extend((0..3000).map(|i| b'a' + (i % 26) as u8));
        m
    }

    fn feed(d: &mut FrameDecoder, frames: &[Vec<u8>], at: Timestamp) -> Vec<SipPacket> {
        let mut out = Vec::new();
        for f in frames {
            d.handle_frame(LinkType::RawIp, at, f, f.len(), Source::Pcap, &mut out);
        }
        out
    }

    #[test]
    fn ipv4_fragments_in_any_order_and_duplicated() {
        let msg = big_invite();
        let frags = ipv4_fragments(7, &udp_datagram_v4(&msg), 1480);
        assert_eq!(frags.len(), 3);
        for order in [[0, 0, 1, 2], [2, 1, 1, 0], [1, 1, 2, 0], [2, 0, 2, 1]] {
            let mut d = FrameDecoder::new(DecoderConfig::default());
            let frames: Vec<_> = order.iter().map(|i| frags[*i].clone()).collect();
            let out = feed(&mut d, &frames, ts(1));
            assert_eq!(out.len(), 1, "{order:?}");
            assert_eq!(out[0].payload, msg);
            assert_eq!(out[0].transport, Transport::Udp);
            assert_eq!(out[0].src, "10.0.0.1:5060".parse().expect("addr"));
            assert_eq!(d.stats().total_drops(), 0, "{order:?} {:?}", d.stats());
            assert_eq!(d.pending_datagrams(), 0);
            assert_eq!(d.poll_timeout(), None);
        }
    }

    #[test]
    fn ipv6_fragments_reassemble() {
        let msg = big_invite();
        let frags = ipv6_fragments(99, &udp_datagram_v6(&msg), 1232);
        let mut d = FrameDecoder::new(DecoderConfig::default());
        let rev: Vec<_> = frags.iter().rev().cloned().collect();
        let out = feed(&mut d, &rev, ts(1));
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].payload, msg);
        assert_eq!(out[0].dst, "[2001:db8::2]:5060".parse().expect("addr"));
    }

    #[test]
    fn fragments_time_out() {
        let frags = ipv4_fragments(7, &udp_datagram_v4(&big_invite()), 1480);
        let mut d = FrameDecoder::new(DecoderConfig::default());
        let out = feed(&mut d, &frags[..2], ts(0));
        assert!(out.is_empty());
        assert_eq!(d.poll_timeout(), Some(ts(30)));
        d.handle_timeout(ts(29));
        assert_eq!(d.stats().drops(DropReason::ReassemblyTimeout), 0);
        d.handle_timeout(ts(30));
        assert_eq!(d.stats().drops(DropReason::ReassemblyTimeout), 1);
        assert_eq!(d.poll_timeout(), None);
        // The last fragment alone cannot complete it any more.
        let out = feed(&mut d, &frags[2..], ts(31));
        assert!(out.is_empty());
        let mut out = Vec::new();
        d.finish(&mut out);
        assert_eq!(d.stats().drops(DropReason::ReassemblyTimeout), 2);
    }

    #[test]
    fn fragments_over_the_limit_are_refused() {
        let cfg = DecoderConfig {
            max_ip_fragment_bytes: 2000,
            ..DecoderConfig::default()
        };
        let frags = ipv4_fragments(7, &udp_datagram_v4(&big_invite()), 1480);
        let mut d = FrameDecoder::new(cfg);
        let out = feed(&mut d, &frags, ts(0));
        assert!(out.is_empty());
        // The second fragment does not fit, which voids the datagram; the
        // third, starting a new one at offset 2960, does not fit either.
        assert_eq!(d.stats().drops(DropReason::ReassemblyLimit), 2);
        assert_eq!(d.pending_datagrams(), 0);
    }

    #[test]
    fn overlapping_fragments_are_bad() {
        let dg = udp_datagram_v4(&big_invite());
        let a = ipv4_fragments(7, &dg, 1480);
        let b = ipv4_fragments(7, &dg[8..], 1480); // same id, shifted offsets
        let mut d = FrameDecoder::new(DecoderConfig::default());
        let mut shifted = b[0].clone();
        shifted[6] = 0x20; // MF, offset 0 -> 8 bytes in
        shifted[7] = 0x01;
        let out = feed(&mut d, &[a[0].clone(), shifted], ts(0));
        assert!(out.is_empty());
        assert_eq!(d.stats().drops(DropReason::BadFragment), 1);
    }

    #[test]
    fn reassembled_garbage_is_counted() {
        // A fragmented datagram whose payload is not SIP.
        let dg = udp_datagram_v4(&[b'x'; 3000]);
        let mut d = FrameDecoder::new(DecoderConfig::default());
        let out = feed(&mut d, &ipv4_fragments(1, &dg, 1480), ts(0));
        assert!(out.is_empty());
        assert_eq!(d.stats().drops(DropReason::NotSip), 1);
        // A reassembled UDP header whose length exceeds the datagram.
        let mut dg = udp_datagram_v4(&[b'x'; 3000]);
        dg[4] = 0xff;
        dg[5] = 0xff;
        let out = feed(&mut d, &ipv4_fragments(2, &dg, 1480), ts(0));
        assert!(out.is_empty());
        assert_eq!(d.stats().drops(DropReason::BadHeader), 1);
    }

    #[test]
    fn hep_in_udp_is_decoded() {
        let frame = udp_ipv4_ports(40000, 9060, &hep3(INVITE, 5));
        let (out, stats) = decode(LinkType::RawIp, &frame);
        assert_eq!(out.len(), 1, "{stats:?}");
        let p = &out[0];
        assert_eq!(p.source, Source::Hep);
        assert_eq!(p.payload, INVITE);
        assert_eq!(p.src, "192.0.2.1:5060".parse().expect("addr"));
        assert_eq!(p.capture_id, Some(7));
        assert_eq!(p.ts, ts(5), "the HEP timestamp, not the frame's");
        assert_eq!(stats.sip, 1);
        // Either port may be the HEP one.
        let frame = udp_ipv4_ports(9060, 40000, &hep3(INVITE, 5));
        assert_eq!(decode(LinkType::RawIp, &frame).0.len(), 1);
    }

    #[test]
    fn hep_port_traffic_is_not_sip() {
        // Plain SIP to the HEP port is bad HEP, not SIP.
        let frame = udp_ipv4_ports(40000, 9060, INVITE);
        let (out, stats) = decode(LinkType::RawIp, &frame);
        assert!(out.is_empty());
        assert_eq!(stats.drops(DropReason::BadHep), 1);
        let cfg = DecoderConfig {
            hep_ports: vec![],
            ..DecoderConfig::default()
        };
        let (out, _) = decode_with(cfg, LinkType::RawIp, &frame);
        assert_eq!(out.len(), 1);
        // A HEP auth key mismatch is the HEP decoder's drop reason.
        let cfg = DecoderConfig {
            hep: crate::hep::HepConfig {
                auth_key: Some(b"k".to_vec()),
                ..crate::hep::HepConfig::default()
            },
            ..DecoderConfig::default()
        };
        let frame = udp_ipv4_ports(40000, 9060, &hep3(INVITE, 5));
        let (out, stats) = decode_with(cfg, LinkType::RawIp, &frame);
        assert!(out.is_empty());
        assert_eq!(stats.drops(DropReason::WrongAuthKey), 1);
    }

    /// The seed frames in `tests/data/frames` (also the fuzz corpus): a
    /// first byte picking the link type, then the frame.
    #[test]
    fn fixture_frames() {
        const LINKS: [LinkType; 8] = [
            LinkType::Ethernet,
            LinkType::LinuxSll,
            LinkType::LinuxSll2,
            LinkType::RawIp,
            LinkType::Ipv4,
            LinkType::Ipv6,
            LinkType::Null,
            LinkType::Loop,
        ];
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/data/frames/");
        for (file, messages, vlan) in [
            ("udp_invite_rawip.bin", 1, None),
            ("udp_invite_ethernet_vlan.bin", 1, Some(42)),
            ("udp_invite_null.bin", 1, None),
            ("tcp_two_messages_rawip.bin", 2, None),
            ("ipv4_first_fragment_rawip.bin", 0, None),
        ] {
            let data = std::fs::read(format!("{dir}{file}")).expect("fixture");
            let (link, frame) = data.split_first().expect("not empty");
            let (out, stats) = decode(LINKS[usize::from(*link)], frame);
            assert_eq!(out.len(), messages, "{file}: {stats:?}");
            assert_eq!(stats.total_drops(), 0, "{file}");
            assert!(out.iter().all(|p| p.vlan == vlan), "{file}");
        }
    }

    /// `cargo test --release -p capture throughput -- --ignored --nocapture`
    #[test]
    #[ignore = "a benchmark; run in release"]
    fn throughput() {
        let frame = eth_udp(INVITE);
        let mut d = FrameDecoder::new(DecoderConfig::default());
        let mut out = Vec::with_capacity(1024);
        let n = 5_000_000u64;
        let start = std::time::Instant::now();
        for i in 0..n {
            d.handle_frame(
                LinkType::Ethernet,
                ts(0),
                &frame,
                frame.len(),
                Source::Live,
                &mut out,
            );
            if i % 1024 == 0 {
                out.clear();
            }
        }
        let secs = start.elapsed().as_secs_f64();
        println!("{:.2} M frames/s", n as f64 / secs / 1e6);
        assert_eq!(d.stats().sip, n);
    }

    #[test]
    fn timeouts_are_relative_to_capture_time() {
        let cfg = DecoderConfig {
            ip_fragment_timeout: Duration::from_secs(1),
            ..DecoderConfig::default()
        };
        let frags = ipv4_fragments(7, &udp_datagram_v4(&big_invite()), 1480);
        let mut d = FrameDecoder::new(cfg);
        feed(&mut d, &frags[..1], ts(100));
        assert_eq!(d.poll_timeout(), Some(ts(101)));
    }
}
