//! The event socket's framing (FreeSWITCH `mod_event_socket`): a block of
//! `Key: Value` header lines ended by an empty line, then, when the block
//! has `Content-Length`, that many bytes of body.
//!
//! Decoding checks that a whole frame is buffered before it parses it:
//! an unfinished frame is [`Decoded::Incomplete`], which is not an error;
//! bytes that can never become a frame (a header line without `:`, a
//! `Content-Length` that is not a number, more than the maximum) are an
//! [`Error`] and the connection must be dropped.

use std::collections::VecDeque;

use crate::Error;

/// The largest frame (headers and body) accepted by default: an event
/// with all its channel variables is a few kilobytes, `show channels` of
/// a busy switch a few megabytes.
pub const DEFAULT_MAX_LEN: usize = 8 << 20;

/// One ESL frame.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Frame {
    /// The header lines in order, values as sent (not URL-decoded).
    pub headers: Vec<(String, String)>,
    /// The body (`Content-Length` bytes), empty without one.
    pub body: Vec<u8>,
}

impl Frame {
    /// The first header named `name` (case-sensitive, as FreeSWITCH
    /// writes them).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// `Content-Type`, empty when missing.
    pub fn content_type(&self) -> &str {
        self.header("Content-Type").unwrap_or_default()
    }

    /// The body as text (lossy).
    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// What [`decode`] found at the start of a buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decoded {
    /// A whole frame and how many bytes it took.
    Frame {
        /// The frame.
        frame: Frame,
        /// Bytes of the buffer it used.
        consumed: usize,
    },
    /// The frame is not complete yet: read more bytes.
    Incomplete,
}

/// Decodes the frame at the start of `buf` (empty lines before it are
/// skipped), refusing frames larger than `max`.
///
/// # Errors
/// [`Error::EslFrame`] for bytes that are not a header block,
/// [`Error::EslTooLong`] when the header block or the announced body
/// exceeds `max`.
pub fn decode(buf: &[u8], max: usize) -> Result<Decoded, Error> {
    let skip = buf
        .iter()
        .position(|b| *b != b'\n' && *b != b'\r')
        .unwrap_or(buf.len());
    let rest = buf.get(skip..).unwrap_or_default();
    let Some(end) = header_end(rest) else {
        if rest.len() > max {
            return Err(Error::EslTooLong {
                len: rest.len(),
                max,
            });
        }
        return Ok(Decoded::Incomplete);
    };
    if end.block > max {
        return Err(Error::EslTooLong {
            len: end.block,
            max,
        });
    }
    let block = rest.get(..end.block).unwrap_or_default();
    let headers = parse_headers(block)?;
    let mut frame = Frame {
        headers,
        body: Vec::new(),
    };
    let len = match frame.header("Content-Length") {
        None => 0,
        Some(l) => l
            .trim()
            .parse::<usize>()
            .map_err(|_| Error::EslFrame("Content-Length is not a number"))?,
    };
    let total = end.after.checked_add(len).ok_or(Error::EslTooLong {
        len: usize::MAX,
        max,
    })?;
    if len > max || total > max.saturating_add(end.after) {
        return Err(Error::EslTooLong { len, max });
    }
    let Some(body) = rest.get(end.after..total) else {
        return Ok(Decoded::Incomplete);
    };
    frame.body = body.to_vec();
    Ok(Decoded::Frame {
        frame,
        consumed: skip + total,
    })
}

/// Where a header block ends: its length without the terminator, and
/// where the body starts.
struct BlockEnd {
    block: usize,
    after: usize,
}

/// The end of the header block (`\n\n`, or `\r\n\r\n`).
fn header_end(buf: &[u8]) -> Option<BlockEnd> {
    let mut i = 0;
    while let Some(off) = buf
        .get(i..)
        .and_then(|b| b.iter().position(|c| *c == b'\n'))
    {
        let nl = i + off;
        match buf.get(nl + 1) {
            Some(b'\n') => {
                return Some(BlockEnd {
                    block: nl,
                    after: nl + 2,
                });
            }
            Some(b'\r') if buf.get(nl + 2) == Some(&b'\n') => {
                return Some(BlockEnd {
                    block: nl,
                    after: nl + 3,
                });
            }
            _ => i = nl + 1,
        }
    }
    None
}

/// `Key: Value` lines (a `\r` before the newline is dropped).
///
/// # Errors
/// [`Error::EslFrame`] for a line without `:`, an empty name or bytes
/// that are not UTF-8.
pub fn parse_headers(block: &[u8]) -> Result<Vec<(String, String)>, Error> {
    let text = std::str::from_utf8(block).map_err(|_| Error::EslFrame("header is not UTF-8"))?;
    let mut out = Vec::new();
    for line in text.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.is_empty() {
            continue;
        }
        let (k, v) = line
            .split_once(':')
            .ok_or(Error::EslFrame("header line without ':'"))?;
        if k.is_empty() || k.contains(' ') {
            return Err(Error::EslFrame("bad header name"));
        }
        out.push((k.to_string(), v.strip_prefix(' ').unwrap_or(v).to_string()));
    }
    Ok(out)
}

/// A stream decoder: bytes in, whole frames out.
#[derive(Debug, Clone)]
pub struct Decoder {
    buf: VecDeque<u8>,
    max: usize,
}

impl Decoder {
    /// A decoder refusing frames larger than `max`.
    pub fn new(max: usize) -> Self {
        Decoder {
            buf: VecDeque::new(),
            max,
        }
    }

    /// Appends bytes read from the socket.
    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend(data);
    }

    /// Drops what is buffered (a new connection).
    pub fn clear(&mut self) {
        self.buf.clear();
    }

    /// The next whole frame, `None` until one is buffered.
    ///
    /// # Errors
    /// As [`decode`]: the stream cannot continue.
    pub fn next_frame(&mut self) -> Result<Option<Frame>, Error> {
        let data = self.buf.make_contiguous();
        match decode(data, self.max)? {
            Decoded::Frame { frame, consumed } => {
                self.buf.drain(..consumed);
                Ok(Some(frame))
            }
            Decoded::Incomplete => Ok(None),
        }
    }
}

/// A command as the socket takes it: the line(s) then an empty line.
pub fn command(text: &str) -> Vec<u8> {
    let mut s = text.trim_end_matches('\n').to_string();
    s.push_str("\n\n");
    s.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    // Shapes from the mod_event_socket documentation
    // (developer.signalwire.com/freeswitch, "mod_event_socket").
    const AUTH: &[u8] = b"Content-Type: auth/request\n\n";
    const ACCEPTED: &[u8] = b"Content-Type: command/reply\nReply-Text: +OK accepted\n\n";
    const API: &[u8] = b"Content-Type: api/response\nContent-Length: 3\n\n+OK";
    const BYE: &[u8] = b"Content-Type: text/disconnect-notice\nContent-Length: 67\n\nDisconnected, goodbye.\nSee you at ClueCon! http://www.cluecon.com/\n";

    fn one(buf: &[u8]) -> (Frame, usize) {
        match decode(buf, DEFAULT_MAX_LEN).unwrap() {
            Decoded::Frame { frame, consumed } => (frame, consumed),
            Decoded::Incomplete => panic!("incomplete"),
        }
    }

    #[test]
    fn header_only_and_bodied_frames() {
        let (f, n) = one(AUTH);
        assert_eq!(f.content_type(), "auth/request");
        assert_eq!(n, AUTH.len());
        let (f, _) = one(ACCEPTED);
        assert_eq!(f.header("Reply-Text"), Some("+OK accepted"));
        let (f, n) = one(API);
        assert_eq!(f.body, b"+OK");
        assert_eq!(n, API.len());
        let (f, n) = one(BYE);
        assert_eq!(f.content_type(), "text/disconnect-notice");
        assert_eq!(n, BYE.len());
        assert!(f.body_text().starts_with("Disconnected, goodbye."));
    }

    #[test]
    fn every_prefix_is_incomplete_not_an_error() {
        let mut all = Vec::new();
        all.extend_from_slice(API);
        for cut in 0..all.len() {
            assert_eq!(
                decode(&all[..cut], DEFAULT_MAX_LEN).unwrap(),
                Decoded::Incomplete,
                "{cut}"
            );
        }
    }

    #[test]
    fn stream_of_frames_in_pieces() {
        let mut stream = Vec::new();
        stream.extend_from_slice(AUTH);
        stream.extend_from_slice(ACCEPTED);
        stream.extend_from_slice(API);
        stream.extend_from_slice(BYE);
        let mut d = Decoder::new(DEFAULT_MAX_LEN);
        let mut got = Vec::new();
        for chunk in stream.chunks(7) {
            d.push(chunk);
            while let Some(f) = d.next_frame().unwrap() {
                got.push(f.content_type().to_string());
            }
        }
        assert_eq!(
            got,
            [
                "auth/request",
                "command/reply",
                "api/response",
                "text/disconnect-notice"
            ]
        );
    }

    #[test]
    fn malformed_and_too_long() {
        assert!(matches!(
            decode(b"no colon here\n\n", 100),
            Err(Error::EslFrame(_))
        ));
        assert!(matches!(
            decode(b"Content-Length: x\n\n", 100),
            Err(Error::EslFrame(_))
        ));
        assert!(matches!(
            decode(b"Content-Length: 1000\n\n", 100),
            Err(Error::EslTooLong { .. })
        ));
        assert!(matches!(
            decode(&[b'a'; 200], 100),
            Err(Error::EslTooLong { .. })
        ));
        assert!(matches!(
            decode(b"Content-Length: 99999999999999999999999\n\n", 100),
            Err(Error::EslFrame(_))
        ));
    }

    #[test]
    fn commands_end_with_an_empty_line() {
        assert_eq!(command("auth ClueCon"), b"auth ClueCon\n\n");
        assert_eq!(
            command("bgapi status\nJob-UUID: j1"),
            b"bgapi status\nJob-UUID: j1\n\n"
        );
    }
}
