//! Frame builders for the frame path's tests (etherparse's `PacketBuilder`).

use etherparse::{
    IpFragOffset, IpNumber, Ipv4Header, Ipv6FragmentHeader, Ipv6Header, PacketBuilder, TcpHeader,
};

use crate::Timestamp;

pub(crate) const A4: [u8; 4] = [10, 0, 0, 1];
pub(crate) const B4: [u8; 4] = [10, 0, 0, 2];
pub(crate) const A6: [u8; 16] = [0x20, 0x01, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
pub(crate) const B6: [u8; 16] = [0x20, 0x01, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];

pub(crate) fn ts(secs: i64) -> Timestamp {
    Timestamp::from_secs_nanos(1_700_000_000 + secs, 0)
}

/// A SIP request with a body and Content-Length.
pub(crate) fn sip(n: usize, body: &str) -> Vec<u8> {
    format!(
        "MESSAGE sip:bob@example.com SIP/2.0\r\nCall-ID: c{n}\r\nCSeq: {n} MESSAGE\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Raw IPv4 + UDP 10.0.0.1:5060 -> 10.0.0.2:5060.
pub(crate) fn udp_ipv4(payload: &[u8]) -> Vec<u8> {
    udp_ipv4_ports(5060, 5060, payload)
}

pub(crate) fn udp_ipv4_ports(sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    PacketBuilder::ipv4(A4, B4, 64)
        .udp(sport, dport)
        .write(&mut v, payload)
        .expect("builds");
    v
}

/// Raw IPv6 + UDP [2001:db8::1]:5060 -> [2001:db8::2]:5060.
pub(crate) fn udp_ipv6(payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    PacketBuilder::ipv6(A6, B6, 64)
        .udp(5060, 5060)
        .write(&mut v, payload)
        .expect("builds");
    v
}

/// Ethernet + UDP over IPv4.
pub(crate) fn eth_udp(payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    PacketBuilder::ethernet2([1; 6], [2; 6])
        .ipv4(A4, B4, 64)
        .udp(5060, 5060)
        .write(&mut v, payload)
        .expect("builds");
    v
}

/// A Linux SLL2 header with protocol `proto` in front of `inner`.
pub(crate) fn sll2_frame(proto: u16, inner: &[u8]) -> Vec<u8> {
    let mut v = proto.to_be_bytes().to_vec();
    v.extend_from_slice(&[0, 0]); // reserved
    v.extend_from_slice(&2u32.to_be_bytes()); // interface index
    v.extend_from_slice(&1u16.to_be_bytes()); // ARPHRD_ETHER
    v.push(0); // packet type: to us
    v.push(6); // address length
    v.extend_from_slice(&[1, 2, 3, 4, 5, 6, 0, 0]);
    v.extend_from_slice(inner);
    v
}

/// TCP flags for [`tcp_ipv4`].
#[derive(Clone, Copy, Default)]
pub(crate) struct Flags {
    pub syn: bool,
    pub fin: bool,
    pub rst: bool,
}

pub(crate) const NONE: Flags = Flags {
    syn: false,
    fin: false,
    rst: false,
};
pub(crate) const SYN: Flags = Flags {
    syn: true,
    fin: false,
    rst: false,
};
pub(crate) const FIN: Flags = Flags {
    syn: false,
    fin: true,
    rst: false,
};
pub(crate) const RST: Flags = Flags {
    syn: false,
    fin: false,
    rst: true,
};

/// Raw IPv4 + TCP 10.0.0.1:sport -> 10.0.0.2:dport.
pub(crate) fn tcp_ipv4(sport: u16, dport: u16, seq: u32, f: Flags, payload: &[u8]) -> Vec<u8> {
    tcp_ipv4_addrs(A4, B4, sport, dport, seq, f, payload)
}

pub(crate) fn tcp_ipv4_addrs(
    src: [u8; 4],
    dst: [u8; 4],
    sport: u16,
    dport: u16,
    seq: u32,
    f: Flags,
    payload: &[u8],
) -> Vec<u8> {
    let mut h = TcpHeader::new(sport, dport, seq, 65535);
    h.syn = f.syn;
    h.fin = f.fin;
    h.rst = f.rst;
    h.ack = !f.syn;
    let mut v = Vec::new();
    PacketBuilder::ipv4(src, dst, 64)
        .tcp_header(h)
        .write(&mut v, payload)
        .expect("builds");
    v
}

/// Splits a whole UDP datagram (header included) into raw IPv4 fragments
/// of `size` bytes of payload each (a multiple of 8).
pub(crate) fn ipv4_fragments(id: u16, datagram: &[u8], size: usize) -> Vec<Vec<u8>> {
    datagram
        .chunks(size)
        .enumerate()
        .map(|(i, chunk)| {
            let off = i * size;
            let mut h = Ipv4Header::new(
                u16::try_from(chunk.len()).expect("small"),
                64,
                IpNumber::UDP,
                A4,
                B4,
            )
            .expect("valid");
            h.identification = id;
            h.more_fragments = off + chunk.len() < datagram.len();
            h.fragment_offset =
                IpFragOffset::try_new(u16::try_from(off / 8).expect("small")).expect("valid");
            h.header_checksum = h.calc_header_checksum();
            let mut v = h.to_bytes().to_vec();
            v.extend_from_slice(chunk);
            v
        })
        .collect()
}

/// Splits a whole UDP datagram into raw IPv6 fragments.
pub(crate) fn ipv6_fragments(id: u32, datagram: &[u8], size: usize) -> Vec<Vec<u8>> {
    datagram
        .chunks(size)
        .enumerate()
        .map(|(i, chunk)| {
            let off = i * size;
            let h = Ipv6Header {
                traffic_class: 0,
                flow_label: Default::default(),
                payload_length: u16::try_from(chunk.len() + 8).expect("small"),
                next_header: IpNumber::IPV6_FRAGMENTATION_HEADER,
                hop_limit: 64,
                source: A6,
                destination: B6,
            };
            let f = Ipv6FragmentHeader::new(
                IpNumber::UDP,
                IpFragOffset::try_new(u16::try_from(off / 8).expect("small")).expect("valid"),
                off + chunk.len() < datagram.len(),
                id,
            );
            let mut v = h.to_bytes().to_vec();
            v.extend_from_slice(&f.to_bytes());
            v.extend_from_slice(chunk);
            v
        })
        .collect()
}

/// The UDP datagram (header and payload) inside a raw IPv4 packet.
pub(crate) fn udp_datagram_v4(payload: &[u8]) -> Vec<u8> {
    udp_ipv4(payload)[20..].to_vec()
}

/// The UDP datagram inside a raw IPv6 packet.
pub(crate) fn udp_datagram_v6(payload: &[u8]) -> Vec<u8> {
    udp_ipv6(payload)[40..].to_vec()
}

/// A HEPv3 packet carrying `sip` from 192.0.2.1:5060 to 192.0.2.2:5080,
/// captured at `secs` past [`ts`]'s base.
pub(crate) fn hep3(sip: &[u8], secs: u32) -> Vec<u8> {
    let p = crate::hep::HepPacket {
        ip_family: Some(crate::hep::AF_INET),
        ip_proto: Some(17),
        src_ipv4: Some([192, 0, 2, 1].into()),
        dst_ipv4: Some([192, 0, 2, 2].into()),
        src_port: Some(5060),
        dst_port: Some(5080),
        ts_secs: Some(1_700_000_000 + secs),
        ts_micros: Some(0),
        proto_type: Some(crate::hep::PROTO_TYPE_SIP),
        capture_id: Some(7),
        payload: Some(bytes::Bytes::copy_from_slice(sip)),
        ..crate::hep::HepPacket::default()
    };
    crate::hep::encode_v3(&p)
}

/// Outer addresses of the tunnels built here.
pub(crate) const T1: [u8; 4] = [192, 168, 0, 1];
pub(crate) const T2: [u8; 4] = [192, 168, 0, 2];

/// A raw IPv4 packet 192.168.0.1 -> 192.168.0.2 of protocol `proto`.
pub(crate) fn ipv4_wrap(proto: u8, payload: &[u8]) -> Vec<u8> {
    let mut h = Ipv4Header::new(
        u16::try_from(payload.len()).expect("small"),
        64,
        IpNumber(proto),
        T1,
        T2,
    )
    .expect("valid");
    h.header_checksum = h.calc_header_checksum();
    let mut v = h.to_bytes().to_vec();
    v.extend_from_slice(payload);
    v
}

/// A raw IPv6 packet [2001:db8::1] -> [2001:db8::2] with next header `next`.
pub(crate) fn ipv6_wrap(next: u8, payload: &[u8]) -> Vec<u8> {
    let h = Ipv6Header {
        traffic_class: 0,
        flow_label: Default::default(),
        payload_length: u16::try_from(payload.len()).expect("small"),
        next_header: IpNumber(next),
        hop_limit: 64,
        source: A6,
        destination: B6,
    };
    let mut v = h.to_bytes().to_vec();
    v.extend_from_slice(payload);
    v
}

/// Ethernet II around an IP packet (IPv4 or IPv6 by its version nibble).
pub(crate) fn eth_wrap(ip: &[u8]) -> Vec<u8> {
    let mut v = vec![0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1];
    let ty: u16 = if ip.first().is_some_and(|b| b >> 4 == 6) {
        0x86dd
    } else {
        0x0800
    };
    v.extend_from_slice(&ty.to_be_bytes());
    v.extend_from_slice(ip);
    v
}

/// A GRE header with `flags` (C 0x80, K 0x20, S 0x10) and protocol type
/// `proto`, then `inner`.
pub(crate) fn gre(flags: u8, proto: u16, inner: &[u8]) -> Vec<u8> {
    let mut v = vec![flags, 0];
    v.extend_from_slice(&proto.to_be_bytes());
    if flags & 0x80 != 0 {
        v.extend_from_slice(&[0, 0, 0, 0]); // checksum, reserved
    }
    if flags & 0x20 != 0 {
        v.extend_from_slice(&7u32.to_be_bytes()); // key
    }
    if flags & 0x10 != 0 {
        v.extend_from_slice(&1u32.to_be_bytes()); // sequence number
    }
    v.extend_from_slice(inner);
    v
}

/// GRE (sequence number set) + ERSPAN type II, session 1, around an
/// Ethernet frame.
pub(crate) fn erspan2(eth: &[u8]) -> Vec<u8> {
    let mut h = vec![0x10, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00];
    h.extend_from_slice(eth);
    gre(0x10, 0x88be, &h)
}

/// GRE + ERSPAN type III (with the platform-specific subheader) around an
/// Ethernet frame.
pub(crate) fn erspan3(eth: &[u8]) -> Vec<u8> {
    let mut h = vec![0x20, 0x00, 0x00, 0x01, 0, 0, 0, 42, 0, 0, 0, 0x01];
    h.extend_from_slice(&[0; 8]); // platform-specific subheader
    h.extend_from_slice(eth);
    gre(0x10, 0x22eb, &h)
}

/// Outer IPv4 + UDP to port 4789 + VXLAN (VNI 42) around an Ethernet frame.
pub(crate) fn vxlan(eth: &[u8]) -> Vec<u8> {
    let mut payload = vec![0x08, 0, 0, 0, 0, 0, 42, 0];
    payload.extend_from_slice(eth);
    let mut v = Vec::new();
    PacketBuilder::ipv4(T1, T2, 64)
        .udp(49152, 4789)
        .write(&mut v, &payload)
        .expect("builds");
    v
}

/// An SCTP DATA chunk with `flags` (B 0x02, E 0x01), PPID 0.
pub(crate) fn sctp_data(flags: u8, payload: &[u8]) -> Vec<u8> {
    let len = u16::try_from(16 + payload.len()).expect("small");
    let mut c = vec![0, flags];
    c.extend_from_slice(&len.to_be_bytes());
    c.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0]);
    c.extend_from_slice(payload);
    while c.len() % 4 != 0 {
        c.push(0);
    }
    c
}

/// CRC32c (Castagnoli), as SCTP's checksum (RFC 9260 appendix A).
fn crc32c(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0x82f6_3b78
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// A raw IPv4 SCTP packet 10.0.0.1:5060 -> 10.0.0.2:5060 with `chunks`,
/// with a correct checksum (the decoder does not check it; Wireshark does).
pub(crate) fn sctp_ipv4(chunks: &[Vec<u8>]) -> Vec<u8> {
    let mut p = vec![0x13, 0xc4, 0x13, 0xc4, 0, 0, 0, 1, 0, 0, 0, 0];
    for c in chunks {
        p.extend_from_slice(c);
    }
    let sum = crc32c(&p);
    p[8..12].copy_from_slice(&sum.to_le_bytes());
    let mut h = Ipv4Header::new(
        u16::try_from(p.len()).expect("small"),
        64,
        IpNumber::SCTP,
        A4,
        B4,
    )
    .expect("valid");
    h.header_checksum = h.calc_header_checksum();
    let mut v = h.to_bytes().to_vec();
    v.extend_from_slice(&p);
    v
}
