//! SIP over WebSocket (RFC 7118) on a captured TCP stream: the HTTP
//! Upgrade handshake (RFC 6455 section 4) that names the `sip`
//! subprotocol, then WebSocket frames (section 5), each complete text or
//! binary message holding one SIP message (RFC 7118 section 5.2).
//!
//! Sans-IO and bounded: frames are taken off the stream's buffer as they
//! complete, a message larger than the SIP limit is skipped (its frames
//! are not buffered), and a malformed frame ends decoding of the stream.
//! Compressed messages (permessage-deflate, RSV1) cannot be read without
//! the connection's history and count as `BadWebsocket`. Only connections
//! whose start (SYN, then the handshake) was captured are recognised: one
//! joined later is framed as plain SIP over TCP, and a gap in a WebSocket
//! stream ends its decoding (frames cannot be found again).

use bytes::{Buf, BytesMut};
use memchr::memmem;

use crate::{DropReason, Stats};

/// Longest handshake (request or response head) we wait for.
const MAX_HANDSHAKE: usize = 8192;
/// Largest control frame payload (RFC 6455 section 5.5).
const MAX_CONTROL: u64 = 125;

/// Whether the first bytes of a stream may be an HTTP handshake (a request
/// or a response), so the stream should wait for [`handshake`].
pub(crate) fn may_be_handshake(data: &[u8]) -> bool {
    [&b"GET "[..], b"HTTP/1.1 "].iter().any(|p| {
        let n = data.len().min(p.len());
        data[..n] == p[..n]
    })
}

/// What the front of a stream shows as a WebSocket handshake.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Handshake {
    /// The head has not ended yet.
    NeedMore,
    /// An upgrade to WebSocket with the `sip` subprotocol; frames start
    /// after this many bytes.
    Sip(usize),
    /// Not an upgrade to SIP over WebSocket (plain HTTP, another
    /// subprotocol, a refused upgrade).
    No,
}

/// Reads an HTTP request or response head at the front of `buf`: a
/// request must ask `Upgrade: websocket` and offer `sip` in
/// `Sec-WebSocket-Protocol` (RFC 7118 section 4.1); a response must be
/// `101` and select `sip`.
pub(crate) fn handshake(buf: &[u8]) -> Handshake {
    let Some(end) = memmem::find(buf, b"\r\n\r\n") else {
        return if buf.len() > MAX_HANDSHAKE || !may_be_handshake(buf) {
            Handshake::No
        } else {
            Handshake::NeedMore
        };
    };
    if end > MAX_HANDSHAKE {
        return Handshake::No;
    }
    let mut lines = buf[..end].split(|b| *b == b'\n');
    let first = lines.next().unwrap_or_default();
    let request = first.starts_with(b"GET ");
    if !request && !first.starts_with(b"HTTP/1.1 101") {
        return Handshake::No;
    }
    let (mut upgrade, mut sip) = (!request, false);
    for line in lines {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let Some(colon) = line.iter().position(|b| *b == b':') else {
            continue;
        };
        let (name, value) = (line[..colon].trim_ascii(), &line[colon + 1..]);
        if name.eq_ignore_ascii_case(b"upgrade") {
            upgrade |= value.trim_ascii().eq_ignore_ascii_case(b"websocket");
        } else if name.eq_ignore_ascii_case(b"sec-websocket-protocol") {
            sip |= value
                .split(|b| *b == b',')
                .any(|t| t.trim_ascii().eq_ignore_ascii_case(b"sip"));
        }
    }
    if upgrade && sip {
        Handshake::Sip(end + 4)
    } else {
        Handshake::No
    }
}

/// Where a [`WsDecoder`] is between frames.
#[derive(Debug, Default)]
enum Phase {
    /// At a frame header.
    #[default]
    Header,
    /// Skipping `remaining` payload bytes of a frame whose message is
    /// dropped; `fin` if it ends the message.
    Skip { remaining: u64, fin: bool },
}

/// What the next frame or frames gave.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum WsEvent {
    /// A complete text or binary message.
    Message(Vec<u8>),
    /// More bytes are needed.
    NeedMore,
    /// A close frame: the stream is done.
    Closed,
    /// A malformed frame (counted as `BadWebsocket`): the stream cannot be
    /// followed any more.
    Bad,
}

/// Reassembles WebSocket messages from a stream's bytes (RFC 6455
/// section 5): unmasks client frames, joins continuation frames, skips
/// control frames.
#[derive(Debug, Default)]
pub(crate) struct WsDecoder {
    phase: Phase,
    /// The data of the message being assembled.
    msg: Vec<u8>,
    /// A message is in progress (its first frame had no FIN).
    in_msg: bool,
    /// The message in progress is over the size limit and being skipped.
    dropping: bool,
}

impl WsDecoder {
    /// Bytes buffered for the message in progress.
    pub(crate) fn held(&self) -> usize {
        self.msg.capacity()
    }

    /// Whether a message was started and not finished.
    pub(crate) fn holds_partial(&self) -> bool {
        self.in_msg
    }

    /// Takes frames off the front of `buf` until a message completes, the
    /// stream ends or more bytes are needed. Messages over `max` bytes are
    /// skipped and counted as `Oversize`.
    pub(crate) fn next(&mut self, buf: &mut BytesMut, max: usize, stats: &mut Stats) -> WsEvent {
        loop {
            if let Phase::Skip { remaining, fin } = self.phase {
                let n = usize::try_from(remaining)
                    .unwrap_or(usize::MAX)
                    .min(buf.len());
                buf.advance(n);
                let remaining = remaining - n as u64;
                if remaining > 0 {
                    self.phase = Phase::Skip { remaining, fin };
                    return WsEvent::NeedMore;
                }
                self.phase = Phase::Header;
                if fin && self.dropping {
                    self.dropping = false;
                    self.in_msg = false;
                }
                continue;
            }
            let Some(h) = header(buf) else {
                return WsEvent::NeedMore;
            };
            let h = match h {
                Ok(h) => h,
                Err(()) => return WsEvent::Bad,
            };
            let control = h.opcode >= 8;
            if control {
                if !h.fin || h.len > MAX_CONTROL {
                    return WsEvent::Bad;
                }
                if h.opcode == 8 {
                    return WsEvent::Closed;
                }
                if !matches!(h.opcode, 9 | 10) {
                    return WsEvent::Bad;
                }
            } else {
                match (h.opcode, self.in_msg) {
                    (0, true) | (1 | 2, false) => {}
                    _ => return WsEvent::Bad,
                }
                let total = (self.msg.len() as u64).saturating_add(h.len);
                if !self.dropping && total > max as u64 {
                    stats.drop(DropReason::Oversize);
                    self.dropping = true;
                    self.in_msg = true;
                    self.msg = Vec::new();
                }
            }
            if control || self.dropping {
                // Pings, pongs and the frames of a dropped message are not
                // buffered: skip their payload as it comes.
                buf.advance(h.head);
                self.phase = Phase::Skip {
                    remaining: h.len,
                    fin: h.fin && !control,
                };
                continue;
            }
            // Data frames are at most `max` bytes here, so waiting for the
            // whole frame is bounded.
            let len = usize::try_from(h.len).unwrap_or(usize::MAX);
            let Some(payload) = buf.get(h.head..h.head.saturating_add(len)) else {
                return WsEvent::NeedMore;
            };
            // Only a whole frame changes the state, so a frame's header
            // can be read again while its payload is still arriving.
            self.in_msg = true;
            let at = self.msg.len();
            self.msg.extend_from_slice(payload);
            if let Some(key) = h.mask {
                for (i, b) in self.msg[at..].iter_mut().enumerate() {
                    *b ^= key[i % 4];
                }
            }
            buf.advance(h.head + len);
            if h.fin {
                self.in_msg = false;
                return WsEvent::Message(std::mem::take(&mut self.msg));
            }
        }
    }
}

/// A frame header (RFC 6455 section 5.2).
#[derive(Debug)]
struct Header {
    fin: bool,
    opcode: u8,
    mask: Option<[u8; 4]>,
    /// Payload length.
    len: u64,
    /// Header length.
    head: usize,
}

/// The frame header at the front of `buf`: `None` if incomplete, `Err` if
/// malformed (reserved bits or opcodes, a 64-bit length with its top bit
/// set).
fn header(buf: &[u8]) -> Option<Result<Header, ()>> {
    let (&b0, &b1) = (buf.first()?, buf.get(1)?);
    if b0 & 0x70 != 0 || matches!(b0 & 0x0f, 3..=7 | 11..=15) {
        return Some(Err(()));
    }
    let (len, mut head) = match b1 & 0x7f {
        126 => {
            let b = buf.get(2..4)?;
            (u64::from(u16::from_be_bytes([b[0], b[1]])), 4)
        }
        127 => {
            let b: [u8; 8] = buf.get(2..10)?.try_into().ok()?;
            let len = u64::from_be_bytes(b);
            if len >> 63 != 0 {
                return Some(Err(()));
            }
            (len, 10)
        }
        n => (u64::from(n), 2),
    };
    let mask = if b1 & 0x80 != 0 {
        let k: [u8; 4] = buf.get(head..head + 4)?.try_into().ok()?;
        head += 4;
        Some(k)
    } else {
        None
    };
    Some(Ok(Header {
        fin: b0 & 0x80 != 0,
        opcode: b0 & 0x0f,
        mask,
        len,
        head,
    }))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A WebSocket frame; `mask` as a client sends.
    pub(crate) fn ws_frame(fin: bool, opcode: u8, mask: Option<[u8; 4]>, data: &[u8]) -> Vec<u8> {
        let mut f = vec![u8::from(fin) << 7 | opcode];
        let m = if mask.is_some() { 0x80 } else { 0 };
        match data.len() {
            n @ 0..=125 => f.push(m | u8::try_from(n).expect("small")),
            n @ 126..=65535 => {
                f.push(m | 126);
                f.extend_from_slice(&u16::try_from(n).expect("fits").to_be_bytes());
            }
            n => {
                f.push(m | 127);
                f.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        match mask {
            Some(k) => {
                f.extend_from_slice(&k);
                f.extend(data.iter().enumerate().map(|(i, b)| b ^ k[i % 4]));
            }
            None => f.extend_from_slice(data),
        }
        f
    }

    pub(crate) const UPGRADE: &[u8] = b"GET /ws HTTP/1.1\r\nHost: sip.example.com\r\n\
        Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
        Sec-WebSocket-Protocol: sip\r\nSec-WebSocket-Version: 13\r\n\r\n";
    pub(crate) const SWITCHED: &[u8] =
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\
        Connection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\
        Sec-WebSocket-Protocol: sip\r\n\r\n";

    #[test]
    fn handshakes() {
        assert_eq!(handshake(UPGRADE), Handshake::Sip(UPGRADE.len()));
        assert_eq!(handshake(SWITCHED), Handshake::Sip(SWITCHED.len()));
        assert_eq!(handshake(&UPGRADE[..40]), Handshake::NeedMore);
        let other = String::from_utf8_lossy(UPGRADE).replace("Protocol: sip", "Protocol: xmpp");
        assert_eq!(handshake(other.as_bytes()), Handshake::No);
        let offered = String::from_utf8_lossy(UPGRADE).replace("Protocol: sip", "Protocol: x, SIP");
        assert!(matches!(handshake(offered.as_bytes()), Handshake::Sip(_)));
        assert_eq!(
            handshake(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
            Handshake::No
        );
        assert_eq!(
            handshake(b"HTTP/1.1 400 Bad\r\nSec-WebSocket-Protocol: sip\r\n\r\n"),
            Handshake::No
        );
        assert_eq!(handshake(b"POST / HTTP/1.1\r\n"), Handshake::No);
        assert_eq!(handshake(&[b'G'; 100]), Handshake::No);
        assert!(may_be_handshake(b"GE"));
        assert!(!may_be_handshake(b"INVITE "));
    }

    fn run(input: &[u8], max: usize) -> (Vec<WsEvent>, Stats) {
        let mut d = WsDecoder::default();
        let mut stats = Stats::default();
        let mut buf = BytesMut::new();
        let mut got = Vec::new();
        for b in input {
            buf.extend_from_slice(std::slice::from_ref(b));
            loop {
                match d.next(&mut buf, max, &mut stats) {
                    WsEvent::NeedMore => break,
                    e => got.push(e),
                }
                if matches!(got.last(), Some(WsEvent::Closed | WsEvent::Bad)) {
                    return (got, stats);
                }
            }
        }
        (got, stats)
    }

    #[test]
    fn frames_masked_fragmented_and_controls() {
        let k = Some([1, 2, 3, 4]);
        let msg = b"OPTIONS sip:a SIP/2.0\r\nl: 0\r\n\r\n";
        let big = vec![b'b'; 300];
        let input = [
            ws_frame(true, 1, k, msg),
            ws_frame(true, 9, k, b"ping"),
            ws_frame(false, 2, None, &msg[..5]),
            ws_frame(true, 10, None, b""),
            ws_frame(false, 0, k, &msg[5..20]),
            ws_frame(true, 0, None, &msg[20..]),
            ws_frame(true, 1, None, &big),
            ws_frame(true, 8, k, &[3, 232]),
        ]
        .concat();
        let (got, stats) = run(&input, 65535);
        assert_eq!(
            got,
            vec![
                WsEvent::Message(msg.to_vec()),
                WsEvent::Message(msg.to_vec()),
                WsEvent::Message(big),
                WsEvent::Closed
            ]
        );
        assert_eq!(stats.total_drops(), 0);
    }

    #[test]
    fn oversize_messages_are_skipped_unbuffered() {
        let input = [
            ws_frame(false, 1, None, &[b'x'; 200]),
            ws_frame(true, 0, None, &[b'x'; 200]),
            ws_frame(true, 1, None, b"after"),
        ]
        .concat();
        let (got, stats) = run(&input, 300);
        assert_eq!(got, vec![WsEvent::Message(b"after".to_vec())]);
        assert_eq!(stats.drops(DropReason::Oversize), 1);
        // A huge declared length is skipped as it comes, never buffered.
        let mut d = WsDecoder::default();
        let mut buf = BytesMut::from(&[0x82u8, 127, 0, 0, 0, 1, 0, 0, 0, 0][..]);
        buf.extend_from_slice(&[0; 1000]);
        let mut stats = Stats::default();
        assert_eq!(d.next(&mut buf, 65535, &mut stats), WsEvent::NeedMore);
        assert!(buf.is_empty());
        assert!(d.held() < 1000);
    }

    #[test]
    fn malformed_frames() {
        for bad in [
            ws_frame(true, 0, None, b"continuation first"),
            ws_frame(true, 3, None, b"reserved opcode"),
            vec![0xc1, 0], // RSV1: compressed
            ws_frame(false, 9, None, b"fragmented ping"),
            ws_frame(true, 9, None, &[0; 126]),
            [
                ws_frame(false, 1, None, b"a"),
                ws_frame(true, 1, None, b"b"),
            ]
            .concat(),
            vec![0x82, 127, 0x80, 0, 0, 0, 0, 0, 0, 0],
        ] {
            let (got, _) = run(&bad, 65535);
            assert_eq!(got.last(), Some(&WsEvent::Bad), "{bad:?}");
        }
    }
}
