//! Helpers for the fuzz targets in `fuzz/`, behind the private
//! `__internal-fuzz` feature. Not a public API.

use etherparse::{PacketBuilder, TcpHeader};

/// Whether `payload` starts with a complete SIP start line, the check every
/// SIP message the frame path produces passes.
pub fn looks_like_sip(payload: &[u8]) -> bool {
    super::sipframe::is_sip_message(payload)
}

/// A raw IPv4 TCP packet 10.0.0.1:`sport` -> 10.0.0.2:`dport` (for
/// [`super::LinkType::RawIp`]). Empty if `payload` is too large to build.
pub fn tcp_ipv4_frame(
    sport: u16,
    dport: u16,
    seq: u32,
    syn: bool,
    fin: bool,
    payload: &[u8],
) -> Vec<u8> {
    let mut h = TcpHeader::new(sport, dport, seq, 65535);
    h.syn = syn;
    h.fin = fin;
    h.ack = !syn;
    let mut v = Vec::new();
    if PacketBuilder::ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
        .tcp_header(h)
        .write(&mut v, payload)
        .is_err()
    {
        v.clear();
    }
    v
}
