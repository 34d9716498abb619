//! SIP message recognition and framing on stream transports.
//!
//! A datagram holds one message, so for UDP it is enough to recognise the
//! start line ([`is_sip_message`]). On TCP the byte stream is cut into
//! messages by the empty line that ends the headers plus the body length
//! from Content-Length, which RFC 3261 section 18.3 makes mandatory on
//! stream transports. [`SipFramer`] does that, skipping CRLF keep-alives
//! (RFC 5626 section 3.5.1) between messages and resynchronising on the next
//! start line after garbage, a missing Content-Length or a gap.

use bytes::Bytes;
use memchr::{memchr, memchr_iter, memmem, memrchr};

use crate::{DropReason, Stats};

/// Longest start line we believe (method, Request-URI and version). Real
/// ones are a few hundred bytes; this bounds what resynchronisation keeps.
const MAX_START_LINE: usize = 8192;
/// Longest method token we accept.
const MAX_METHOD: usize = 32;
/// The protocol version in every start line (RFC 3261 section 7).
const VERSION: &[u8] = b"SIP/2.0";

/// What the front of a buffer looks like as a SIP start line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LineCheck {
    /// A request or status line; the value is its length including the
    /// line end.
    Sip(usize),
    /// Cannot be the start of a SIP message.
    NotSip,
    /// A plausible start so far, but the line has not ended yet.
    Incomplete,
}

/// `token` characters of RFC 3261 section 25.1 (methods are tokens), as a
/// table: one load a byte.
const TOKEN: [bool; 256] = {
    let mut t = [false; 256];
    let mut c: u8 = 0;
    loop {
        t[c as usize] = c.is_ascii_alphanumeric()
            || matches!(
                c,
                b'-' | b'.' | b'!' | b'%' | b'*' | b'_' | b'+' | b'`' | b'\'' | b'~'
            );
        if c == u8::MAX {
            break t;
        }
        c += 1;
    }
};

/// Whether `b` is an RFC 3261 `token` character (section 25.1).
#[inline]
pub fn is_token(b: u8) -> bool {
    TOKEN[usize::from(b)]
}

/// Compares `buf` against the start of `pat` (ASCII case-insensitive):
/// `Some(true)` if `buf` holds all of `pat`, `Some(false)` if it holds a
/// matching prefix only, `None` on a mismatch.
fn prefix_match(buf: &[u8], pat: &[u8]) -> Option<bool> {
    let n = buf.len().min(pat.len());
    if buf[..n].eq_ignore_ascii_case(&pat[..n]) {
        Some(n == pat.len())
    } else {
        None
    }
}

/// The line end at `buf[i..]`: `Sip(i + len)` for CRLF or LF.
fn line_end_at(buf: &[u8], i: usize) -> LineCheck {
    match (buf.get(i), buf.get(i + 1)) {
        (Some(b'\n'), _) => LineCheck::Sip(i + 1),
        (Some(b'\r'), Some(b'\n')) => LineCheck::Sip(i + 2),
        (Some(b'\r'), None) | (None, _) => LineCheck::Incomplete,
        _ => LineCheck::NotSip,
    }
}

/// Checks whether `buf` starts with a SIP start line: a Request-Line
/// `Method SP Request-URI SP SIP/2.0 CRLF` or a Status-Line
/// `SIP/2.0 SP 3DIGIT SP Reason-Phrase CRLF` (RFC 3261 sections 7.1, 7.2).
/// A bare LF is accepted as a line end, as most stacks do.
pub(crate) fn check_start_line(buf: &[u8]) -> LineCheck {
    let r = if buf.len() >= 4 && buf[..4].eq_ignore_ascii_case(b"SIP/") {
        check_status_line(buf)
    } else {
        check_request_line(buf)
    };
    match r {
        LineCheck::Incomplete if buf.len() > MAX_START_LINE => LineCheck::NotSip,
        LineCheck::Sip(n) if n > MAX_START_LINE + 2 => LineCheck::NotSip,
        r => r,
    }
}

fn check_status_line(buf: &[u8]) -> LineCheck {
    const HEAD: &[u8] = b"SIP/2.0 ";
    match prefix_match(buf, HEAD) {
        None => return LineCheck::NotSip,
        Some(false) => return LineCheck::Incomplete,
        Some(true) => {}
    }
    let code = &buf[HEAD.len()..];
    for (i, lo) in [b'1', b'0', b'0'].into_iter().enumerate() {
        let hi = if i == 0 { b'6' } else { b'9' };
        match code.get(i) {
            None => return LineCheck::Incomplete,
            Some(d) if (lo..=hi).contains(d) => {}
            Some(_) => return LineCheck::NotSip,
        }
    }
    let after = HEAD.len() + 3;
    match buf.get(after) {
        None => LineCheck::Incomplete,
        Some(b' ') => match memchr(b'\n', &buf[after..]) {
            Some(p) => LineCheck::Sip(after + p + 1),
            None => LineCheck::Incomplete,
        },
        Some(_) => line_end_at(buf, after),
    }
}

fn check_request_line(buf: &[u8]) -> LineCheck {
    let method = buf.iter().take_while(|b| is_token(**b)).count();
    if method > MAX_METHOD {
        return LineCheck::NotSip;
    }
    match buf.get(method) {
        None => return LineCheck::Incomplete,
        Some(b' ') if method > 0 => {}
        Some(_) => return LineCheck::NotSip,
    }
    let uri_start = method + 1;
    // The Request-URI runs to the first space, with no control byte or
    // DEL before it (a byte at a time this was the costliest part of the
    // check: the search is memchr's and the check has no early exit, so
    // it runs on whole vectors).
    let rest = &buf[uri_start..];
    let space = memchr(b' ', rest);
    let uri = &rest[..space.unwrap_or(rest.len())];
    let bad = uri
        .iter()
        .fold(false, |bad, b| bad | (*b < b' ') | (*b == 0x7f));
    match space {
        _ if bad => return LineCheck::NotSip,
        None => return LineCheck::Incomplete,
        Some(0) => return LineCheck::NotSip,
        Some(_) => {}
    }
    let uri = uri.len();
    let ver = uri_start + uri + 1;
    match prefix_match(&buf[ver..], VERSION) {
        None => LineCheck::NotSip,
        Some(false) => LineCheck::Incomplete,
        Some(true) => line_end_at(buf, ver + VERSION.len()),
    }
}

/// Whether a datagram payload is a SIP message (starts with a complete SIP
/// start line). Keep-alives (CRLF, STUN, zero bytes) are not.
pub fn is_sip_message(payload: &[u8]) -> bool {
    matches!(check_start_line(payload), LineCheck::Sip(_))
}

/// Where a SIP message's headers end: the index just past the empty line,
/// searching from `from` (a resume point from an earlier, shorter buffer).
/// `Err(resume)` if the headers have not ended yet.
fn header_end(buf: &[u8], from: usize) -> Result<usize, usize> {
    for i in memchr_iter(b'\n', buf.get(from..).unwrap_or_default()) {
        let i = from + i;
        match (buf.get(i + 1), buf.get(i + 2)) {
            (Some(b'\n'), _) => return Ok(i + 2),
            (Some(b'\r'), Some(b'\n')) => return Ok(i + 3),
            (None, _) | (Some(b'\r'), None) => return Err(i),
            _ => {}
        }
    }
    Err(buf.len().saturating_sub(2).max(from))
}

/// Content-Length of a header block (start line excluded), matching the
/// header name case-insensitively, compact form `l` included (RFC 3261
/// sections 7.3.1, 20.14). `None` if missing, malformed, or given twice
/// with different values.
pub(crate) fn content_length(headers: &[u8]) -> Option<usize> {
    let mut found: Option<usize> = None;
    for line in headers.split(|b| *b == b'\n') {
        let Some(colon) = memchr(b':', line) else {
            continue;
        };
        if line.first().is_some_and(|b| *b == b' ' || *b == b'\t') {
            continue; // continuation of the previous header
        }
        let name = line[..colon].trim_ascii_end();
        if !(name.eq_ignore_ascii_case(b"content-length") || name.eq_ignore_ascii_case(b"l")) {
            continue;
        }
        let value = line[colon + 1..].trim_ascii();
        if value.is_empty() || value.len() > 9 || !value.iter().all(u8::is_ascii_digit) {
            return None;
        }
        let n = value
            .iter()
            .fold(0usize, |n, d| n * 10 + usize::from(d - b'0'));
        match found {
            Some(prev) if prev != n => return None,
            _ => found = Some(n),
        }
    }
    found
}

/// Where a SIP start line begins in `buf`, for resynchronisation.
#[derive(Debug, PartialEq, Eq)]
enum Scan {
    /// A complete start line begins here.
    Found(usize),
    /// A line that may become a start line begins here; wait for more.
    Wait(usize),
    /// No start line; this many bytes can go. `bool`: whether the byte
    /// after them begins a line.
    Discard(usize, bool),
}

/// The methods of RFC 3261 and its extensions (RFC 3262, 3265, 3311, 3428,
/// 3515, 3903, 6086). Where a line start is uncertain (after a gap, or a
/// body that did not end in CRLF), only these are looked for inside it.
const METHODS: [&[u8]; 14] = [
    b"INVITE ",
    b"ACK ",
    b"BYE ",
    b"CANCEL ",
    b"OPTIONS ",
    b"REGISTER ",
    b"PRACK ",
    b"SUBSCRIBE ",
    b"NOTIFY ",
    b"PUBLISH ",
    b"INFO ",
    b"REFER ",
    b"MESSAGE ",
    b"UPDATE ",
];

/// Whether `line` starts with one of [`METHODS`].
fn known_method(line: &[u8]) -> bool {
    METHODS.iter().any(|m| line.starts_with(m))
}

/// A check of a line that may continue past the buffer: a line still
/// incomplete after [`MAX_START_LINE`] bytes is no start line. Keeps a
/// resynchronising framer from waiting on (and holding) an endless line.
fn bounded(c: LineCheck, len: usize) -> LineCheck {
    match c {
        LineCheck::Incomplete if len > MAX_START_LINE => LineCheck::NotSip,
        c => c,
    }
}

/// Longest entry of [`METHODS`].
const LONGEST_METHOD: usize = 10;

/// The leftmost request line inside `buf[from..to]` that starts with a
/// known method, as a [`Scan`].
fn known_request_within(buf: &[u8], from: usize, to: usize) -> Option<Scan> {
    let mut best: Option<(usize, LineCheck)> = None;
    for m in METHODS {
        let hay = buf.get(from..to).unwrap_or_default();
        for p in memmem::find_iter(hay, m) {
            let p = from + p;
            if best.as_ref().is_some_and(|(b, _)| *b <= p) {
                break;
            }
            match bounded(check_request_line(&buf[p..]), buf.len() - p) {
                LineCheck::NotSip => {}
                c => {
                    best = Some((p, c));
                    break;
                }
            }
        }
    }
    best.map(|(p, c)| match c {
        LineCheck::Sip(_) => Scan::Found(p),
        _ => Scan::Wait(p),
    })
}

/// Finds the first SIP start line in `buf`. Every start line holds
/// "SIP/2.0", so only the lines around its occurrences are checked. A line
/// that follows a LF (or offset 0 if `at_line_start`) may start with any
/// method token; elsewhere (the unknown first line after a gap, or the tail
/// of a body without a final CRLF) only a status line or a known method is
/// believed, found anywhere in the line.
///
/// Linear in `buf.len()`: the line start is carried forward between
/// occurrences, a line's own check is made once, and each stretch of a line
/// is searched for methods once.
fn find_start_line(buf: &[u8], at_line_start: bool) -> Scan {
    let finder = memmem::Finder::new(VERSION);
    let mut from = 0;
    // Start of the line holding the previous occurrence, and how far that
    // line was searched for known methods.
    let mut ls = 0;
    let mut searched = 0;
    let mut whole: Option<(usize, LineCheck)> = None;
    while let Some(rel) = finder.find(&buf[from..]) {
        let i = from + rel;
        if let Some(p) = memrchr(b'\n', &buf[from.max(ls)..i]) {
            ls = from.max(ls) + p + 1;
            searched = ls;
        }
        let certain = ls > 0 || at_line_start;
        if certain && i == ls {
            match check_start_line(&buf[ls..]) {
                LineCheck::Sip(_) => return Scan::Found(ls),
                LineCheck::Incomplete => return Scan::Wait(ls),
                LineCheck::NotSip => {}
            }
        } else if !certain {
            match bounded(check_status_line(&buf[i..]), buf.len() - i) {
                LineCheck::Sip(_) => return Scan::Found(i),
                LineCheck::Incomplete => return Scan::Wait(i),
                LineCheck::NotSip => {}
            }
        }
        if i > ls {
            let line = match whole {
                Some((at, c)) if at == ls => c,
                _ => {
                    let c = if certain {
                        check_start_line(&buf[ls..])
                    } else {
                        LineCheck::NotSip
                    };
                    whole = Some((ls, c));
                    c
                }
            };
            if certain && known_method(&buf[ls..]) {
                match line {
                    LineCheck::Sip(_) => return Scan::Found(ls),
                    LineCheck::Incomplete => return Scan::Wait(ls),
                    LineCheck::NotSip => {}
                }
            }
            // Methods straddling the end of the stretch searched before are
            // found by starting a method's length back.
            let lo = searched.saturating_sub(LONGEST_METHOD).max(ls);
            if let Some(scan) = known_request_within(buf, lo, i) {
                return scan;
            }
            searched = i;
            // An extension method at a real line start.
            match line {
                LineCheck::Sip(_) => return Scan::Found(ls),
                LineCheck::Incomplete => return Scan::Wait(ls),
                LineCheck::NotSip => {}
            }
        }
        from = i + 1;
    }
    // Keep the last, unfinished line: "SIP/2.0" may still arrive in it.
    match memrchr(b'\n', buf) {
        Some(p) if buf.len() - (p + 1) <= MAX_START_LINE => Scan::Discard(p + 1, true),
        None if at_line_start && buf.len() <= MAX_START_LINE => Scan::Discard(0, true),
        _ => Scan::Discard(buf.len().saturating_sub(MAX_START_LINE), false),
    }
}

/// Framing state at the front of the unframed stream bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// A message (or keep-alive) starts here. `line`: the start line's
    /// length once it was seen whole, else 0. `scanned`: how far the search
    /// for the start line's end (then the header end) has got, so no byte
    /// is searched twice however the stream is cut.
    Start { line: usize, scanned: usize },
    /// Looking for the next start line; `at_line_start` tells whether the
    /// first buffered byte begins a line. `checked`: the buffer length at
    /// the last search that found nothing to act on, and how far the bytes
    /// since were looked at for a line end; the next search waits for one
    /// (or [`MAX_START_LINE`] more bytes).
    Resync {
        at_line_start: bool,
        checked: Option<(usize, usize)>,
    },
    /// The headers are complete; the message is `total` bytes long.
    Body { total: usize },
    /// Throwing away the rest of an oversized message.
    Skip { remaining: usize },
}

/// What one call to [`SipFramer::next`] found.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Framed {
    /// Bytes dropped from the front before `message` (keep-alives, garbage,
    /// oversized or unframeable messages).
    pub skipped: usize,
    /// The next complete message, taken off the buffer after `skipped`.
    pub message: Option<Bytes>,
}

/// Cuts SIP messages off the front of a stream's in-order bytes.
#[derive(Clone, Debug)]
pub(crate) struct SipFramer {
    state: State,
    /// Bytes examined so far (searches and checks), to show framing stays
    /// linear in the bytes received.
    work: u64,
}

impl SipFramer {
    /// A framer at a known message boundary (the stream's first byte after
    /// its SYN).
    pub(crate) fn at_boundary() -> Self {
        SipFramer {
            state: State::Start {
                line: 0,
                scanned: 0,
            },
            work: 0,
        }
    }

    /// A framer that first has to find a start line (a stream joined in
    /// the middle, or after a gap).
    pub(crate) fn resync() -> Self {
        SipFramer {
            state: State::Resync {
                at_line_start: false,
                checked: None,
            },
            work: 0,
        }
    }

    /// Bytes examined so far by searches and checks (a test hook: framing
    /// must stay linear in the bytes received).
    #[cfg(test)]
    pub(crate) fn work(&self) -> u64 {
        self.work
    }

    /// Whether bytes are held that were meant to become a message: a
    /// started message, as opposed to keep-alives, garbage being skipped or
    /// nothing at all.
    pub(crate) fn holds_partial(&self, buf: &[u8]) -> bool {
        matches!(self.state, State::Start { .. } | State::Body { .. })
            && buf.iter().any(|b| *b != b'\r' && *b != b'\n')
    }

    /// Takes the next message off `buf`, dropping what precedes it, and
    /// counts the drops in `stats`. `message` is `None` when more bytes are
    /// needed; `skipped` bytes were removed from `buf` either way.
    pub(crate) fn next(
        &mut self,
        buf: &mut bytes::BytesMut,
        max_message: usize,
        stats: &mut Stats,
    ) -> Framed {
        let mut skipped = 0;
        loop {
            match self.step(buf, max_message, stats) {
                Step::Skip(0) => {}
                Step::Skip(n) => {
                    let n = n.min(buf.len());
                    let _ = buf.split_to(n);
                    skipped += n;
                }
                Step::Message(n) => {
                    let n = n.min(buf.len());
                    let message = Bytes::copy_from_slice(&buf[..n]);
                    let _ = buf.split_to(n);
                    return Framed {
                        skipped,
                        message: Some(message),
                    };
                }
                Step::NeedMore => {
                    return Framed {
                        skipped,
                        message: None,
                    };
                }
            }
        }
    }

    /// One framing step. Every `Skip(0)` changes the state towards one that
    /// consumes or waits, so the loop in [`SipFramer::next`] ends.
    fn step(&mut self, buf: &[u8], max_message: usize, stats: &mut Stats) -> Step {
        match self.state {
            State::Skip { remaining } => {
                if buf.is_empty() {
                    return Step::NeedMore;
                }
                let n = remaining.min(buf.len());
                self.state = if n == remaining {
                    State::Start {
                        line: 0,
                        scanned: 0,
                    }
                } else {
                    State::Skip {
                        remaining: remaining - n,
                    }
                };
                Step::Skip(n)
            }
            State::Resync {
                at_line_start,
                checked,
            } => {
                // Nothing can be found before a line ends (a start line is
                // only believed whole); search again only when one did, or
                // when enough bytes came to make discarding worth it.
                if let Some((searched, seen)) = checked {
                    let fresh = buf.get(seen..).unwrap_or_default();
                    self.work += fresh.len() as u64;
                    if memchr(b'\n', fresh).is_none() && buf.len() < searched + MAX_START_LINE {
                        self.state = State::Resync {
                            at_line_start,
                            checked: Some((searched, buf.len())),
                        };
                        return Step::NeedMore;
                    }
                }
                self.work += buf.len() as u64;
                match find_start_line(buf, at_line_start) {
                    Scan::Found(p) => {
                        self.state = State::Start {
                            line: 0,
                            scanned: 0,
                        };
                        Step::Skip(p)
                    }
                    Scan::Wait(0) | Scan::Discard(0, _) => {
                        self.state = State::Resync {
                            at_line_start,
                            checked: Some((buf.len(), buf.len())),
                        };
                        Step::NeedMore
                    }
                    Scan::Wait(p) => {
                        self.state = State::Resync {
                            at_line_start: true,
                            checked: None,
                        };
                        Step::Skip(p)
                    }
                    Scan::Discard(p, at_line_start) => {
                        self.state = State::Resync {
                            at_line_start,
                            checked: None,
                        };
                        Step::Skip(p)
                    }
                }
            }
            State::Body { total } => {
                if buf.len() < total {
                    return Step::NeedMore;
                }
                self.state = State::Start {
                    line: 0,
                    scanned: 0,
                };
                Step::Message(total)
            }
            State::Start { line, scanned } => {
                self.step_start(buf, line, scanned, max_message, stats)
            }
        }
    }

    fn step_start(
        &mut self,
        buf: &[u8],
        line: usize,
        scanned: usize,
        max_message: usize,
        stats: &mut Stats,
    ) -> Step {
        let line = if line > 0 {
            line
        } else {
            // CRLF keep-alives between messages (RFC 5626 section 3.5.1).
            let ws = buf
                .iter()
                .take_while(|b| **b == b'\r' || **b == b'\n')
                .count();
            if ws > 0 {
                self.work += ws as u64;
                self.state = State::Start {
                    line: 0,
                    scanned: 0,
                };
                return Step::Skip(ws);
            }
            if buf.is_empty() {
                return Step::NeedMore;
            }
            // A start line can only be judged whole once its line ends:
            // until one does (within the longest believable line), only
            // the new bytes are searched.
            if scanned > 0 {
                let fresh = buf.get(scanned..).unwrap_or_default();
                self.work += fresh.len() as u64;
                if memchr(b'\n', fresh).is_none() && buf.len() <= MAX_START_LINE {
                    self.state = State::Start {
                        line: 0,
                        scanned: buf.len(),
                    };
                    return Step::NeedMore;
                }
            }
            let end = memchr(b'\n', buf).map_or(buf.len(), |p| p + 1);
            self.work += end as u64;
            match check_start_line(buf) {
                LineCheck::Sip(n) => n,
                LineCheck::Incomplete => {
                    self.state = State::Start {
                        line: 0,
                        scanned: buf.len(),
                    };
                    return Step::NeedMore;
                }
                LineCheck::NotSip => {
                    stats.drop(DropReason::NotSip);
                    let line_end = memchr(b'\n', buf);
                    self.state = State::Resync {
                        at_line_start: line_end.is_some(),
                        checked: None,
                    };
                    return Step::Skip(line_end.map_or(buf.len(), |p| p + 1));
                }
            }
        };
        let from = scanned.max(line.saturating_sub(1));
        self.work += buf.len().saturating_sub(from) as u64;
        let head = match header_end(buf, from) {
            Ok(end) => end,
            Err(resume) => {
                if buf.len() > max_message {
                    stats.drop(DropReason::Oversize);
                    self.state = State::Resync {
                        at_line_start: false,
                        checked: None,
                    };
                    return Step::Skip(buf.len());
                }
                self.state = State::Start {
                    line,
                    scanned: resume,
                };
                return Step::NeedMore;
            }
        };
        self.work += (head - line) as u64;
        let Some(body) = content_length(&buf[line..head]) else {
            // RFC 3261 section 18.3: without a usable Content-Length the end
            // of the message on a stream is unknown, but the end of its
            // headers is not. Pass the headers on (a BYE must still end its
            // call; billing reads no body), count the message, and skip
            // whatever body follows up to the next start line.
            stats.drop(DropReason::BadContentLength);
            self.state = State::Resync {
                at_line_start: true,
                checked: None,
            };
            return Step::Message(head);
        };
        let total = head.saturating_add(body);
        if total > max_message {
            stats.drop(DropReason::Oversize);
            self.state = State::Skip { remaining: total };
            return Step::Skip(0);
        }
        if buf.len() < total {
            self.state = State::Body { total };
            return Step::NeedMore;
        }
        self.state = State::Start {
            line: 0,
            scanned: 0,
        };
        Step::Message(total)
    }
}

/// One framing step's outcome, in bytes from the front of the buffer.
enum Step {
    Skip(usize),
    Message(usize),
    NeedMore,
}

#[cfg(test)]
#[allow(clippy::cast_possible_truncation)] // test sizes are small
mod tests;
