//! SIP over SCTP (RFC 4168): the SCTP common header and the DATA chunks
//! of one packet (RFC 9260 sections 3.1 and 3.3.1; I-DATA of RFC 8260).
//!
//! SIP maps one message to one SCTP user message, so an unfragmented DATA
//! chunk (B and E flags both set) carries exactly one SIP message. Chunks
//! of a fragmented user message are counted as `SctpFragment` rather than
//! reassembled: SIP stacks keep messages under the path MTU. The payload
//! protocol identifier is not checked (RFC 4168 leaves it 0, and some
//! stacks use their own); the payload itself must be SIP. The CRC32c
//! checksum is not verified either: captures taken on the sending host
//! see it before checksum offload fills it in.

use crate::DropReason;

/// Length of the SCTP common header.
const COMMON_LEN: usize = 12;
/// Chunk type of DATA.
const DATA: u8 = 0;
/// Chunk type of I-DATA (RFC 8260).
const I_DATA: u8 = 64;
/// DATA/I-DATA flag: first fragment of a user message.
const FLAG_B: u8 = 0x02;
/// DATA/I-DATA flag: last fragment of a user message.
const FLAG_E: u8 = 0x01;

/// One chunk of interest in an SCTP packet.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Chunk<'a> {
    /// A whole user message.
    Message(&'a [u8]),
    /// A piece of a fragmented user message.
    Fragment,
}

/// An SCTP packet's ports and the user data it carries.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Packet<'a> {
    pub src_port: u16,
    pub dst_port: u16,
    /// DATA and I-DATA chunks, in packet order. Control chunks are skipped.
    pub chunks: Vec<Chunk<'a>>,
    /// A malformed chunk ended the walk early (`BadSctp`); the chunks
    /// before it are still in `chunks`.
    pub bad: bool,
}

/// Reads one SCTP packet. `Err` if even the common header is missing.
pub(crate) fn parse(p: &[u8]) -> Result<Packet<'_>, DropReason> {
    let (Some(ports), Some(mut rest)) = (p.get(..4), p.get(COMMON_LEN..)) else {
        return Err(DropReason::BadSctp);
    };
    let mut pkt = Packet {
        src_port: u16::from_be_bytes([ports[0], ports[1]]),
        dst_port: u16::from_be_bytes([ports[2], ports[3]]),
        chunks: Vec::new(),
        bad: false,
    };
    // Each chunk is at least 4 bytes, so this walk ends.
    while !rest.is_empty() {
        let Some(h) = rest.get(..4) else {
            pkt.bad = true;
            break;
        };
        let (ty, flags) = (h[0], h[1]);
        let len = usize::from(u16::from_be_bytes([h[2], h[3]]));
        let Some(chunk) = rest.get(..len).filter(|_| len >= 4) else {
            pkt.bad = true;
            break;
        };
        let data_at = match ty {
            DATA => Some(16),
            I_DATA => Some(20),
            _ => None,
        };
        if let Some(at) = data_at {
            let Some(data) = chunk.get(at..) else {
                pkt.bad = true;
                break;
            };
            pkt.chunks
                .push(if flags & (FLAG_B | FLAG_E) == FLAG_B | FLAG_E {
                    Chunk::Message(data)
                } else {
                    Chunk::Fragment
                });
        }
        // Chunks are padded to 4 bytes; the last one's padding may be cut.
        let padded = len.div_ceil(4) * 4;
        rest = rest.get(padded..).unwrap_or_default();
    }
    Ok(pkt)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data_chunk(flags: u8, payload: &[u8]) -> Vec<u8> {
        let len = u16::try_from(16 + payload.len()).expect("small");
        let mut c = vec![DATA, flags];
        c.extend_from_slice(&len.to_be_bytes());
        c.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0]);
        c.extend_from_slice(payload);
        while c.len() % 4 != 0 {
            c.push(0);
        }
        c
    }

    fn packet(chunks: &[Vec<u8>]) -> Vec<u8> {
        let mut p = vec![0x13, 0xc4, 0x13, 0xc5, 0, 0, 0, 1, 0, 0, 0, 0];
        for c in chunks {
            p.extend_from_slice(c);
        }
        p
    }

    #[test]
    fn data_chunks_and_control_chunks() {
        let sack = vec![3, 0, 0, 16, 0, 0, 0, 1, 0, 0, 0xff, 0xff, 0, 0, 0, 0];
        let p = packet(&[
            sack,
            data_chunk(0x03, b"one"),
            data_chunk(0x02, b"first half"),
            data_chunk(0x07, b"unordered"),
        ]);
        let got = parse(&p).expect("parses");
        assert_eq!((got.src_port, got.dst_port), (5060, 5061));
        assert_eq!(
            got.chunks,
            vec![
                Chunk::Message(b"one"),
                Chunk::Fragment,
                Chunk::Message(b"unordered")
            ]
        );
        assert!(!got.bad);
    }

    #[test]
    fn malformed_chunks() {
        assert_eq!(parse(&[0; 11]), Err(DropReason::BadSctp));
        let good = data_chunk(0x03, b"ok");
        for bad in [
            vec![0, 3, 0, 2],             // length below 4
            vec![0, 3, 0, 40, 1, 2],      // longer than the packet
            vec![0, 3, 0, 8, 0, 0, 0, 0], // DATA shorter than its header
            vec![1, 2],                   // a cut chunk header
        ] {
            let p = packet(&[good.clone(), bad.clone()]);
            let got = parse(&p).expect("parses");
            assert!(got.bad, "{bad:?}");
            assert_eq!(got.chunks, vec![Chunk::Message(b"ok")]);
        }
        // An empty packet (only the common header) is fine.
        assert!(parse(&packet(&[])).expect("parses").chunks.is_empty());
    }
}
