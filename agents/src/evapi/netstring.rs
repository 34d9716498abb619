//! Netstrings (`<decimal length>:<bytes>,`), the framing Kamailio's evapi
//! module uses both ways (its `netstring_format` parameter, on by default).
//!
//! Decoding checks that a whole frame is buffered before it hands out the
//! payload: an unfinished frame is [`Decoded::Incomplete`], which is not an
//! error; bytes that can never become a netstring are an [`Error`] and the
//! connection must be dropped (there is no way to resynchronise).

use crate::Error;

/// The largest payload accepted by default: a `dlg.list` reply for many
/// dialogs is the largest message Kamailio sends.
pub const DEFAULT_MAX_LEN: usize = 16 << 20;

/// What [`decode`] found at the start of a buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decoded<'a> {
    /// A whole frame: its payload and how many bytes it took.
    Frame {
        /// The payload, without the length prefix and the trailing comma.
        payload: &'a [u8],
        /// Bytes of the buffer the frame used.
        consumed: usize,
    },
    /// The frame is not complete yet: read more bytes.
    Incomplete,
}

/// Decodes the netstring at the start of `buf`, refusing payloads longer
/// than `max`.
///
/// # Errors
/// [`Error::Netstring`] when `buf` cannot start a netstring (a non-digit
/// length, an empty length, a missing `,`), [`Error::TooLong`] when the
/// announced length exceeds `max` (known as soon as the digits say so).
pub fn decode(buf: &[u8], max: usize) -> Result<Decoded<'_>, Error> {
    let mut len: usize = 0;
    let mut digits = 0;
    for (i, &b) in buf.iter().enumerate() {
        match b {
            b'0'..=b'9' if digits == 1 && len == 0 => {
                return Err(Error::Netstring("length with a leading zero"));
            }
            b'0'..=b'9' => {
                len = len
                    .checked_mul(10)
                    .and_then(|l| l.checked_add(usize::from(b - b'0')))
                    .ok_or(Error::TooLong {
                        len: usize::MAX,
                        max,
                    })?;
                if len > max {
                    return Err(Error::TooLong { len, max });
                }
                digits += 1;
            }
            b':' if digits == 0 => return Err(Error::Netstring("empty length")),
            b':' => return frame(buf, i + 1, len),
            _ => return Err(Error::Netstring("length is not a decimal number")),
        }
    }
    Ok(Decoded::Incomplete)
}

/// The frame whose payload of `len` bytes starts at `start`.
fn frame(buf: &[u8], start: usize, len: usize) -> Result<Decoded<'_>, Error> {
    let Some(end) = start.checked_add(len) else {
        return Err(Error::Netstring("length overflows"));
    };
    match buf.get(end) {
        None => Ok(Decoded::Incomplete),
        Some(b',') => Ok(Decoded::Frame {
            payload: buf.get(start..end).unwrap_or_default(),
            consumed: end + 1,
        }),
        Some(_) => Err(Error::Netstring("payload not followed by ','")),
    }
}

/// `payload` as a netstring.
pub fn encode(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 12);
    encode_into(payload, &mut out);
    out
}

/// Appends `payload` as a netstring to `out`.
pub fn encode_into(payload: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(payload.len().to_string().as_bytes());
    out.push(b':');
    out.extend_from_slice(payload);
    out.push(b',');
}

/// A stream decoder: bytes in as they arrive, whole payloads out.
#[derive(Debug, Clone)]
pub struct Decoder {
    buf: Vec<u8>,
    max: usize,
}

impl Default for Decoder {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_LEN)
    }
}

impl Decoder {
    /// A decoder refusing payloads longer than `max` bytes.
    pub fn new(max: usize) -> Self {
        Decoder {
            buf: Vec::new(),
            max,
        }
    }

    /// Buffers `data`.
    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// The next whole payload, `None` until one is buffered.
    ///
    /// # Errors
    /// As [`decode`]; the stream is then unusable.
    pub fn next_frame(&mut self) -> Result<Option<Vec<u8>>, Error> {
        match decode(&self.buf, self.max)? {
            Decoded::Incomplete => Ok(None),
            Decoded::Frame { payload, consumed } => {
                let out = payload.to_vec();
                self.buf.drain(..consumed);
                Ok(Some(out))
            }
        }
    }

    /// Bytes buffered and not yet decoded.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Forgets what is buffered (a new connection).
    pub fn clear(&mut self) {
        self.buf.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_split_reads() {
        let wire = [encode(b"{\"a\":1}"), encode(b""), encode(b"x,y:z")].concat();
        // fed one byte at a time, the same three frames come out
        let mut d = Decoder::default();
        let mut got = Vec::new();
        for b in &wire {
            d.push(std::slice::from_ref(b));
            while let Some(f) = d.next_frame().unwrap() {
                got.push(f);
            }
        }
        assert_eq!(got, vec![b"{\"a\":1}".to_vec(), vec![], b"x,y:z".to_vec()]);
        assert_eq!(d.buffered(), 0);
    }

    #[test]
    fn incomplete_is_not_an_error() {
        assert_eq!(decode(b"", 10), Ok(Decoded::Incomplete));
        assert_eq!(decode(b"12", 100), Ok(Decoded::Incomplete));
        assert_eq!(decode(b"5:abc", 10), Ok(Decoded::Incomplete));
        assert_eq!(decode(b"5:abcde", 10), Ok(Decoded::Incomplete));
        assert_eq!(
            decode(b"3:abc,rest", 10),
            Ok(Decoded::Frame {
                payload: b"abc",
                consumed: 6
            })
        );
    }

    #[test]
    fn malformed_and_too_long() {
        assert!(matches!(decode(b":abc,", 10), Err(Error::Netstring(_))));
        assert!(matches!(decode(b"x:abc,", 10), Err(Error::Netstring(_))));
        assert!(matches!(decode(b"3:abcd", 10), Err(Error::Netstring(_))));
        assert!(matches!(decode(b" 3:abc,", 10), Err(Error::Netstring(_))));
        // one spelling per length, as Kamailio writes it
        assert!(matches!(decode(b"03:abc,", 10), Err(Error::Netstring(_))));
        assert_eq!(
            decode(b"0:,", 10),
            Ok(Decoded::Frame {
                payload: b"",
                consumed: 3
            })
        );
        // refused from the digits alone, without waiting for the payload
        assert_eq!(decode(b"11", 10), Err(Error::TooLong { len: 11, max: 10 }));
        assert!(matches!(
            decode(b"99999999999999999999999999", usize::MAX),
            Err(Error::TooLong { .. })
        ));
    }
}
