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

/// Reads `data` as a pcap or pcapng file to its end or to its first
/// damaged record, decoding every frame of a known link type; the frames
/// read and whether the file ended whole.
#[cfg(feature = "files")]
pub fn read_capture_file(data: &[u8]) -> (usize, bool) {
    use crate::pcapfile::{FileReader, Step};
    let Ok(mut r) = FileReader::new(std::io::Cursor::new(data.to_vec())) else {
        return (0, false);
    };
    let mut dec = super::FrameDecoder::new(super::DecoderConfig::default());
    let mut out = Vec::new();
    let mut frames = 0;
    loop {
        let step = r.next(|f| {
            frames += 1;
            if let Some(link) = super::LinkType::from_linktype(f.link) {
                let orig = usize::try_from(f.orig_len).unwrap_or(usize::MAX);
                dec.handle_frame(link, f.ts, f.data, orig, crate::Source::Pcap, &mut out);
            }
        });
        out.clear();
        match step {
            Step::Frame | Step::Other => {}
            Step::End => return (frames, true),
            Step::Damaged { .. } => return (frames, false),
        }
    }
}
