//! [`FrameDecoder`]: captured frames in, SIP packets and counters out.

use std::net::{IpAddr, SocketAddr};

use bytes::Bytes;
use etherparse::defrag::{IpFragId, IpFragVersionSpecId};
use etherparse::{
    IpNumber, Ipv6ExtensionSlice, NetSlice, SlicedPacket, TcpSlice, TransportSlice, UdpSlice,
};

use super::defrag::{Defragmenter, Fragment};
use super::tcp::{Segment, Sink, StreamKey, TcpTable};
use super::{DecoderConfig, LinkType, hep_glue, link, sipframe};
use crate::{DropReason, SipPacket, Source, Stats, Timestamp, Transport};

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
    /// Packets released by a timeout, handed out with the next call that
    /// takes an output vector.
    ready: Vec<SipPacket>,
}

/// The parts of a frame the transport layer needs.
#[derive(Clone, Copy)]
struct Meta {
    src: IpAddr,
    dst: IpAddr,
    vlan: Option<u16>,
    ts: Timestamp,
    source: Source,
}

impl FrameDecoder {
    /// A decoder with the given limits.
    pub fn new(cfg: DecoderConfig) -> Self {
        FrameDecoder {
            defrag: Defragmenter::new(cfg.max_ip_fragment_bytes, cfg.ip_fragment_timeout),
            cfg,
            stats: Stats::default(),
            tcp: TcpTable::default(),
            ready: Vec::new(),
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
        let (src, dst) = match &sliced.net {
            Some(NetSlice::Ipv4(v)) => (
                IpAddr::V4(v.header().source_addr()),
                IpAddr::V4(v.header().destination_addr()),
            ),
            Some(NetSlice::Ipv6(v)) => (
                IpAddr::V6(v.header().source_addr()),
                IpAddr::V6(v.header().destination_addr()),
            ),
            Some(NetSlice::Arp(_)) | None => {
                self.stats.drop(DropReason::NotIp);
                return;
            }
        };
        let meta = Meta {
            src,
            dst,
            vlan: link::outer_vlan(&sliced),
            ts,
            source,
        };
        if sliced.is_ip_payload_fragmented() {
            self.fragment(&sliced, meta, out);
            return;
        }
        match &sliced.transport {
            Some(TransportSlice::Udp(u)) => {
                if orig_len > frame.len() && udp_cut(u, frame) {
                    self.stats.drop(DropReason::Truncated);
                    return;
                }
                self.udp(meta, u.source_port(), u.destination_port(), u.payload(), out);
            }
            Some(TransportSlice::Tcp(t)) => self.tcp(meta, t, out),
            _ => self.stats.drop(DropReason::NotUdpTcp),
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
    }

    /// Number of TCP streams (connection directions) tracked now.
    pub fn tcp_streams(&self) -> usize {
        self.tcp.len()
    }

    /// Number of IP datagrams waiting for fragments now.
    pub fn pending_datagrams(&self) -> usize {
        self.defrag.pending()
    }

    fn is_hep_port(&self, a: u16, b: u16) -> bool {
        self.cfg.hep_ports.iter().any(|p| *p == a || *p == b)
    }

    fn udp(&mut self, m: Meta, sport: u16, dport: u16, payload: &[u8], out: &mut Vec<SipPacket>) {
        if self.is_hep_port(sport, dport) {
            match hep_glue::decode_sip(payload, m.ts, &self.cfg.hep) {
                Ok(p) => {
                    self.stats.sip += 1;
                    out.push(p);
                }
                Err(reason) => self.stats.drop(reason),
            }
            return;
        }
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
            transport: Transport::Udp,
            source: m.source,
            capture_id: None,
            node: None,
            correlation_id: None,
            vlan: m.vlan,
            payload: Bytes::copy_from_slice(payload),
        });
    }

    fn tcp(&mut self, m: Meta, t: &TcpSlice<'_>, out: &mut Vec<SipPacket>) {
        let (sport, dport) = (t.source_port(), t.destination_port());
        let seg = Segment {
            key: StreamKey {
                src: SocketAddr::new(m.src, sport),
                dst: SocketAddr::new(m.dst, dport),
                vlan: m.vlan,
            },
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
    }

    fn fragment(&mut self, sliced: &SlicedPacket<'_>, m: Meta, out: &mut Vec<SipPacket>) {
        let Some(frag) = fragment_of(sliced) else {
            self.stats.drop(DropReason::BadHeader);
            return;
        };
        let Some(whole) = self.defrag.add(frag, m.ts, &mut self.stats) else {
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
            _ => self.stats.drop(DropReason::NotUdpTcp),
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
