//! Splitting a byte stream into JSON values, as Go's `encoding/json`
//! Decoder does for `net/rpc/jsonrpc`: values follow each other with or
//! without whitespace between them, and one value may arrive over many
//! reads.
//!
//! A small structural scanner (depth, inside a string, after a backslash)
//! finds where each top-level object or array ends; its state is kept
//! between reads, so every byte is scanned once however the stream is cut.
//! Only a complete value is handed to serde_json.

use serde_json::Value;

/// Why a stream cannot go on. After any of these the connection is closed:
/// the decoder no longer knows where the next request starts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StreamError {
    /// A top-level value is not an object or array (Go's codec cannot
    /// read it as a request either).
    #[error("not JSON-RPC: expected '{{' or '[' at byte {offset}, found {found:#04x}")]
    NotJson {
        /// Offset in the stream.
        offset: u64,
        /// The byte found.
        found: u8,
    },
    /// A value is not valid JSON (a syntax error inside its braces).
    #[error("malformed JSON: {0}")]
    Malformed(String),
    /// One value grew past the decoder's limit before it ended.
    #[error("request larger than {limit} bytes")]
    TooLarge {
        /// The limit.
        limit: usize,
    },
}

/// Incremental splitter of a stream of JSON values.
#[derive(Debug)]
pub struct StreamDecoder {
    buf: Vec<u8>,
    /// Bytes of `buf` already handed out (dropped on the next feed).
    consumed: usize,
    /// Next byte of `buf` to scan.
    pos: usize,
    /// Start of the value being scanned (within `buf`), if one started.
    start: Option<usize>,
    depth: u32,
    in_string: bool,
    escaped: bool,
    /// Bytes of the stream dropped before `buf[0]` (for error offsets).
    base: u64,
    limit: usize,
    failed: Option<StreamError>,
}

/// Deepest nesting scanned; serde_json refuses deeper values anyway (its
/// recursion limit is 128), this only keeps the counter small.
const MAX_DEPTH: u32 = 1 << 16;

impl StreamDecoder {
    /// A decoder refusing any single value longer than `limit` bytes.
    #[must_use]
    pub fn new(limit: usize) -> Self {
        StreamDecoder {
            buf: Vec::new(),
            consumed: 0,
            pos: 0,
            start: None,
            depth: 0,
            in_string: false,
            escaped: false,
            base: 0,
            limit,
            failed: None,
        }
    }

    /// Appends bytes read from the stream.
    pub fn feed(&mut self, bytes: &[u8]) {
        if self.failed.is_some() {
            return;
        }
        if self.consumed > 0 {
            // Handed-out values are dropped once per read, not once per
            // value: many small requests in one read cost one move.
            self.buf.drain(..self.consumed);
            self.base += self.consumed as u64;
            self.pos -= self.consumed;
            self.start = self.start.map(|s| s - self.consumed);
            self.consumed = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// Bytes held (a value in progress, values not yet taken).
    #[must_use]
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.consumed
    }

    /// The next complete value, `Ok(None)` when more bytes are needed.
    ///
    /// # Errors
    /// A [`StreamError`]; the same error again on every later call.
    pub fn next_value(&mut self) -> Result<Option<Value>, StreamError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        match self.scan() {
            Ok(Some((from, to))) => {
                self.consumed = to;
                let slice = self.buf.get(from..to).unwrap_or_default();
                match serde_json::from_slice::<Value>(slice) {
                    Ok(v) => Ok(Some(v)),
                    Err(e) => Err(self.fail(StreamError::Malformed(e.to_string()))),
                }
            }
            Ok(None) => {
                let held = self.start.map_or(0, |s| self.buf.len() - s);
                if held > self.limit {
                    return Err(self.fail(StreamError::TooLarge { limit: self.limit }));
                }
                if self.start.is_none() {
                    // Only whitespace waits: nothing to keep.
                    self.consumed = self.pos;
                }
                Ok(None)
            }
            Err(e) => Err(self.fail(e)),
        }
    }

    fn fail(&mut self, e: StreamError) -> StreamError {
        self.failed = Some(e.clone());
        self.buf = Vec::new();
        self.consumed = 0;
        self.pos = 0;
        self.start = None;
        e
    }

    /// Scans on from `pos`; the byte range of the next complete value.
    fn scan(&mut self) -> Result<Option<(usize, usize)>, StreamError> {
        while let Some(&b) = self.buf.get(self.pos) {
            let at = self.pos;
            self.pos += 1;
            let Some(start) = self.start else {
                match b {
                    b' ' | b'\t' | b'\r' | b'\n' => continue,
                    b'{' | b'[' => {
                        self.start = Some(at);
                        self.depth = 1;
                        continue;
                    }
                    _ => {
                        return Err(StreamError::NotJson {
                            offset: self.base + at as u64,
                            found: b,
                        });
                    }
                }
            };
            if at - start > self.limit {
                return Err(StreamError::TooLarge { limit: self.limit });
            }
            if self.in_string {
                if self.escaped {
                    self.escaped = false;
                } else if b == b'\\' {
                    self.escaped = true;
                } else if b == b'"' {
                    self.in_string = false;
                }
                continue;
            }
            match b {
                b'"' => self.in_string = true,
                b'{' | b'[' => {
                    self.depth += 1;
                    if self.depth > MAX_DEPTH {
                        return Err(StreamError::Malformed("nested too deeply".into()));
                    }
                }
                b'}' | b']' => {
                    self.depth -= 1;
                    if self.depth == 0 {
                        self.start = None;
                        return Ok(Some((start, self.pos)));
                    }
                }
                _ => {}
            }
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn all(d: &mut StreamDecoder) -> Vec<Value> {
        let mut out = Vec::new();
        while let Some(v) = d.next_value().unwrap() {
            out.push(v);
        }
        out
    }

    #[test]
    fn concatenated_values_without_delimiter() {
        let mut d = StreamDecoder::new(1024);
        d.feed(br#"{"a":1}{"b":"}"}[1,2]  {"c":{}}"#);
        let v = all(&mut d);
        assert_eq!(v.len(), 4);
        assert_eq!(v[1]["b"], "}");
        assert_eq!(d.buffered(), 0);
    }

    #[test]
    fn value_split_at_every_byte() {
        let text = br#" {"method":"A.B","params":[{"x":"a\"}b"}],"id":7}"#;
        let mut d = StreamDecoder::new(1024);
        let mut got = Vec::new();
        for b in text {
            d.feed(std::slice::from_ref(b));
            got.extend(all(&mut d));
        }
        assert_eq!(got.len(), 1);
        assert_eq!(got[0]["params"][0]["x"], "a\"}b");
    }

    #[test]
    fn garbage_is_not_json_and_stays_failed() {
        let mut d = StreamDecoder::new(1024);
        d.feed(b"{\"a\":1}\nGET / HTTP/1.1\r\n");
        assert!(d.next_value().unwrap().is_some());
        let e = d.next_value().unwrap_err();
        assert!(
            matches!(
                e,
                StreamError::NotJson {
                    offset: 8,
                    found: b'G'
                }
            ),
            "{e}"
        );
        d.feed(b"{}");
        assert_eq!(d.next_value().unwrap_err(), e);
    }

    #[test]
    fn syntax_error_inside_braces_is_malformed() {
        let mut d = StreamDecoder::new(1024);
        d.feed(b"{\"a\":tru}");
        assert!(matches!(d.next_value(), Err(StreamError::Malformed(_))));
    }

    #[test]
    fn a_value_past_the_limit_is_refused_before_it_ends() {
        let mut d = StreamDecoder::new(16);
        d.feed(b"{\"a\":\"");
        assert_eq!(d.next_value().unwrap(), None);
        d.feed(&[b'x'; 32]);
        assert_eq!(d.next_value(), Err(StreamError::TooLarge { limit: 16 }));
    }

    #[test]
    fn whitespace_only_holds_nothing() {
        let mut d = StreamDecoder::new(16);
        for _ in 0..100 {
            d.feed(b"  \n ");
            assert_eq!(d.next_value().unwrap(), None);
        }
        d.feed(b"");
        assert_eq!(d.buffered(), 0);
    }
}
