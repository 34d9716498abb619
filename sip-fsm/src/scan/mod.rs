//! A zero-copy SIP scanner: the start line and the headers billing needs.
//!
//! [`scan`] walks the message once with `memchr`, borrowing every value
//! from the input; nothing is allocated. It follows RFC 3261 section 7
//! leniently where billing loses nothing by it:
//! - CRLFs before the start line are skipped (section 7.5); lines may end
//!   in CRLF or a bare LF.
//! - Header names are case-insensitive and compact forms are understood
//!   (section 7.3.3: `i`, `f`, `t`, `v`, `l`, `m`; RFC 4028 `x`).
//! - Folded lines (a line starting with SP or HTAB continues the previous
//!   header, section 7.3.1) are part of the value; value parsers treat the
//!   CRLF inside as whitespace.
//! - Of a repeated header the first occurrence is kept; of Via, the top
//!   value's branch (section 8.1.1.7).
//! - Only Call-ID, CSeq, From and To are required (the headers that identify
//!   a dialog and a transaction, section 8.1.1); a bad optional header is
//!   treated as absent rather than losing the call. A Content-Length that
//!   is not a number is flagged ([`SipMessage::bad_content_length`]) and
//!   the body runs to the end of the input.

mod addr;
mod names;
mod prescan;

use memchr::{memchr, memchr2};

pub(crate) use addr::tag_of;
pub use addr::{NameAddr, Scheme, Uri, param, trim, unquote};
use addr::{elem_param, non_empty, scheme_len, until_byte};
use names::{Name, classify, known_name};
pub use prescan::Prescan;
pub(crate) use prescan::Tagged;

use crate::error::ScanError;

/// A SIP method (RFC 3261 section 7.1: methods are case-sensitive).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method<'a> {
    /// INVITE.
    Invite,
    /// ACK.
    Ack,
    /// BYE.
    Bye,
    /// CANCEL.
    Cancel,
    /// UPDATE (RFC 3311).
    Update,
    /// PRACK (RFC 3262).
    Prack,
    /// OPTIONS.
    Options,
    /// REGISTER.
    Register,
    /// INFO (RFC 6086).
    Info,
    /// Any other method, as written.
    Other(&'a [u8]),
}

impl<'a> Method<'a> {
    /// Parses a method token.
    pub fn parse(token: &'a [u8]) -> Self {
        match token {
            b"INVITE" => Method::Invite,
            b"ACK" => Method::Ack,
            b"BYE" => Method::Bye,
            b"CANCEL" => Method::Cancel,
            b"UPDATE" => Method::Update,
            b"PRACK" => Method::Prack,
            b"OPTIONS" => Method::Options,
            b"REGISTER" => Method::Register,
            b"INFO" => Method::Info,
            other => Method::Other(other),
        }
    }

    /// The method name as bytes.
    pub fn as_bytes(&self) -> &'a [u8] {
        match self {
            Method::Invite => b"INVITE",
            Method::Ack => b"ACK",
            Method::Bye => b"BYE",
            Method::Cancel => b"CANCEL",
            Method::Update => b"UPDATE",
            Method::Prack => b"PRACK",
            Method::Options => b"OPTIONS",
            Method::Register => b"REGISTER",
            Method::Info => b"INFO",
            Method::Other(m) => m,
        }
    }
}

/// The first line of a message (RFC 3261 sections 7.1 and 7.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StartLine<'a> {
    /// A Request-Line.
    Request {
        /// The method.
        method: Method<'a>,
        /// The Request-URI.
        uri: Uri<'a>,
    },
    /// A Status-Line.
    Response {
        /// The Status-Code, 100..=699.
        code: u16,
        /// The Reason-Phrase (may be empty).
        reason: &'a [u8],
    },
}

/// The CSeq header (RFC 3261 section 20.16).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CSeq<'a> {
    /// The sequence number.
    pub seq: u32,
    /// The method of the transaction.
    pub method: Method<'a>,
}

/// The Reason header (RFC 3326): protocol, cause and text. When the first
/// Reason header lists several values, the Q.850 one is preferred, as it
/// carries the ISUP cause operators bill and report on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reason<'a> {
    /// The protocol (`Q.850`, `SIP`...).
    pub protocol: &'a [u8],
    /// The `cause` parameter, if numeric.
    pub cause: Option<u16>,
    /// The `text` parameter without quotes, if any.
    pub text: Option<&'a [u8]>,
}

/// Who refreshes the session (RFC 4028 section 4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refresher {
    /// `refresher=uac`.
    Uac,
    /// `refresher=uas`.
    Uas,
}

/// The Session-Expires header (RFC 4028 section 4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SessionExpires {
    /// The session interval in seconds.
    pub delta_secs: u32,
    /// The refresher parameter, if any.
    pub refresher: Option<Refresher>,
}

/// A scanned SIP message: every field borrows from the input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SipMessage<'a> {
    /// The start line.
    pub start: StartLine<'a>,
    /// Call-ID (`i`), trimmed.
    pub call_id: &'a [u8],
    /// CSeq.
    pub cseq: CSeq<'a>,
    /// From (`f`).
    pub from: NameAddr<'a>,
    /// To (`t`).
    pub to: NameAddr<'a>,
    /// The `branch` parameter of the top Via (`v`).
    pub via_branch: Option<&'a [u8]>,
    /// The first Contact (`m`).
    pub contact: Option<NameAddr<'a>>,
    /// The first P-Asserted-Identity (RFC 3325).
    pub pai: Option<NameAddr<'a>>,
    /// The first Diversion (RFC 5806).
    pub diversion: Option<NameAddr<'a>>,
    /// The first History-Info header value, raw (RFC 7044).
    pub history_info: Option<&'a [u8]>,
    /// The first Reason header (RFC 3326).
    pub reason: Option<Reason<'a>>,
    /// Session-Expires (`x`, RFC 4028).
    pub session_expires: Option<SessionExpires>,
    /// Content-Length (`l`); `None` when absent or not a number.
    pub content_length: Option<u32>,
    /// The first Content-Length is there but not a number (RFC 3261
    /// 20.14). The message is kept, its body taken as everything after the
    /// blank line: a datagram (or HEP payload) holds exactly one message,
    /// and on a stream the framer has already cut it, so a broken length
    /// must not cost an in-dialog request (a BYE) its meaning.
    pub bad_content_length: bool,
    /// Max-Forwards.
    pub max_forwards: Option<u32>,
    /// The body: `Content-Length` bytes after the blank line, or everything
    /// after it when the length is absent or larger than what is there.
    pub body: &'a [u8],
}

impl<'a> SipMessage<'a> {
    /// The method of a request, `None` for a response.
    pub fn method(&self) -> Option<Method<'a>> {
        match self.start {
            StartLine::Request { method, .. } => Some(method),
            StartLine::Response { .. } => None,
        }
    }

    /// The status code of a response, `None` for a request.
    pub fn status(&self) -> Option<u16> {
        match self.start {
            StartLine::Response { code, .. } => Some(code),
            StartLine::Request { .. } => None,
        }
    }
}

/// Scans one SIP message. Never panics; malformed input gives the reason.
pub fn scan(input: &[u8]) -> Result<SipMessage<'_>, ScanError> {
    scan_raw(input)?.parse()
}

/// A start line whose Request-URI is still raw: [`scan_raw`] checks only
/// that it has a scheme (what [`Uri::parse`] requires), and the dialog
/// machine parses it only when a call starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RawStart<'a> {
    /// A Request-Line.
    Request {
        /// The method.
        method: Method<'a>,
        /// The Request-URI, trimmed, with a scheme.
        uri: &'a [u8],
    },
    /// A Status-Line.
    Response {
        /// The Status-Code, 100..=699.
        code: u16,
        /// The Reason-Phrase (may be empty).
        reason: &'a [u8],
    },
}

/// A scanned message whose name-addr headers (From, To, Contact,
/// P-Asserted-Identity, Diversion) are still raw values: parsing them never
/// fails, so [`scan_raw`] rejects exactly what [`scan`] rejects, and the
/// dialog machine parses only the ones it reads; the same for the
/// Request-URI ([`RawStart`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct RawMessage<'a> {
    pub start: RawStart<'a>,
    pub call_id: &'a [u8],
    pub cseq: CSeq<'a>,
    pub from: &'a [u8],
    pub to: &'a [u8],
    pub via_branch: Option<&'a [u8]>,
    pub contact: Option<&'a [u8]>,
    pub pai: Option<&'a [u8]>,
    pub diversion: Option<&'a [u8]>,
    pub history_info: Option<&'a [u8]>,
    pub reason: Option<Reason<'a>>,
    pub session_expires: Option<SessionExpires>,
    pub content_length: Option<u32>,
    pub bad_content_length: bool,
    pub max_forwards: Option<u32>,
    pub body: &'a [u8],
}

impl<'a> RawMessage<'a> {
    /// The [`SipMessage`]: the Request-URI and the name-addr values
    /// parsed. The error (a Request-URI without a scheme) never happens
    /// for a message [`scan_raw`] gave.
    pub(crate) fn parse(self) -> Result<SipMessage<'a>, ScanError> {
        let start = match self.start {
            RawStart::Request { method, uri } => StartLine::Request {
                method,
                uri: Uri::parse(uri).ok_or(ScanError::BadRequestUri)?,
            },
            RawStart::Response { code, reason } => StartLine::Response { code, reason },
        };
        Ok(SipMessage {
            start,
            call_id: self.call_id,
            cseq: self.cseq,
            from: NameAddr::parse(self.from),
            to: NameAddr::parse(self.to),
            via_branch: self.via_branch,
            contact: self.contact.map(NameAddr::parse),
            pai: self.pai.map(NameAddr::parse),
            diversion: self.diversion.map(NameAddr::parse),
            history_info: self.history_info,
            reason: self.reason,
            session_expires: self.session_expires,
            content_length: self.content_length,
            bad_content_length: self.bad_content_length,
            max_forwards: self.max_forwards,
            body: self.body,
        })
    }
}

/// [`scan`] without parsing the name-addr values.
///
/// One pass over the header block: `memchr` finds each line end, and one
/// loop over the start of the line skips the name (checking it is a
/// token) and finds the colon; values of headers billing does not need
/// are never looked at.
pub(crate) fn scan_raw(input: &[u8]) -> Result<RawMessage<'_>, ScanError> {
    // RFC 3261 7.5: ignore CRLFs before the start line.
    let skip = input
        .iter()
        .position(|c| !matches!(c, b'\r' | b'\n' | b' ' | b'\t'))
        .ok_or(ScanError::Empty)?;
    let input = input.get(skip..).unwrap_or_default();
    let lf = LineFeed::new();
    let (first, mut rest) = split_line(&lf, input);
    let start = start_line(first)?;

    let mut call_id = None;
    let mut cseq = None;
    let mut from = None;
    let mut to = None;
    let mut via = None;
    let mut contact = None;
    let mut pai = None;
    let mut diversion = None;
    let mut history_info = None;
    let mut reason = None;
    let mut session_expires = None;
    let mut content_length = None;
    let mut bad_content_length = false;
    let mut max_forwards = None;
    // What follows the blank line; nothing when there is none.
    let mut after_blank: &[u8] = &[];

    while !rest.is_empty() {
        let (line, mut next) = split_line(&lf, rest);
        if line.is_empty() {
            after_blank = next;
            break;
        }
        // Folded continuation lines belong to this header (RFC 3261 7.3.1).
        let mut whole = line;
        while let Some(b' ' | b'\t') = next.first() {
            let (cont, after) = split_line(&lf, next);
            // From the header's start to the end of `cont`.
            whole = rest
                .get(..rest.len() - next.len() + cont.len())
                .unwrap_or(rest);
            next = after;
        }
        rest = next;
        let (kind, value_at) = match known_name(whole) {
            Some(k) => k,
            None => {
                let (name, value_at) = header_name(whole).ok_or(ScanError::BadHeader)?;
                // Headers billing does not need are skipped before their
                // value is looked at.
                let Some(kind) = classify(name) else { continue };
                (kind, value_at)
            }
        };
        let value = trim(whole.get(value_at..).unwrap_or_default());
        match kind {
            Name::CallId => set_first(&mut call_id, value),
            Name::CSeq => {
                if cseq.is_none() {
                    cseq = Some(parse_cseq(value)?)
                }
            }
            Name::From => set_first(&mut from, value),
            Name::To => set_first(&mut to, value),
            Name::Via => set_first(&mut via, value),
            Name::Contact => set_first(&mut contact, value),
            Name::Pai => set_first(&mut pai, value),
            Name::Diversion => set_first(&mut diversion, value),
            Name::HistoryInfo => set_first(&mut history_info, value),
            Name::Reason => {
                if reason.is_none() {
                    reason = parse_reason(value)
                }
            }
            Name::SessionExpires => {
                if session_expires.is_none() {
                    session_expires = parse_session_expires(value)
                }
            }
            Name::ContentLength => {
                if content_length.is_none() && !bad_content_length {
                    content_length = parse_u32(value);
                    bad_content_length = content_length.is_none();
                }
            }
            Name::MaxForwards => {
                if max_forwards.is_none() {
                    max_forwards = parse_u32(value)
                }
            }
        }
    }

    let call_id = call_id
        .and_then(non_empty)
        .ok_or(ScanError::MissingCallId)?;
    let cseq = cseq.ok_or(ScanError::MissingCSeq)?;
    let from = from.ok_or(ScanError::MissingFrom)?;
    let to = to.ok_or(ScanError::MissingTo)?;
    let via_branch = via.and_then(|v| {
        // The top via-parm ends at the first comma (RFC 3261 20.42): its
        // parameters start at a `;` before it.
        let semi = memchr2(b';', b',', v)?;
        if v.get(semi) != Some(&b';') {
            return None;
        }
        elem_param(v.get(semi + 1..)?, b"branch").and_then(non_empty)
    });
    let body = match content_length {
        Some(n) => after_blank.get(..n as usize).unwrap_or(after_blank),
        None => after_blank,
    };
    Ok(RawMessage {
        start,
        call_id,
        cseq,
        from,
        to,
        via_branch,
        contact,
        pai,
        diversion,
        history_info,
        reason,
        session_expires,
        content_length,
        bad_content_length,
        max_forwards,
        body,
    })
}

/// The name of a header line and where its value starts (after the
/// colon), or `None` when the line has no colon or the text before the
/// first colon is not one token between optional whitespace.
#[inline]
fn header_name(line: &[u8]) -> Option<(&[u8], usize)> {
    // Usual case: the name starts the line and the colon follows it.
    let n = token_len(line);
    if n > 0 && line.get(n) == Some(&b':') {
        return Some((line.get(..n)?, n + 1));
    }
    let mut i = 0;
    while line.get(i).is_some_and(|&c| is_ws(c)) {
        i += 1;
    }
    let name_start = i;
    while line.get(i).is_some_and(|&c| is_token(c)) {
        i += 1;
    }
    let name_end = i;
    while line.get(i).is_some_and(|&c| is_ws(c)) {
        i += 1;
    }
    if name_end == name_start || line.get(i) != Some(&b':') {
        return None;
    }
    Some((line.get(name_start..name_end)?, i + 1))
}

fn set_first<'a>(slot: &mut Option<&'a [u8]>, value: &'a [u8]) {
    if slot.is_none() {
        *slot = Some(value);
    }
}

/// Finds line feeds. On x86-64 with AVX2 it holds `memchr`'s AVX2
/// searcher, made once per message and called directly: the `memchr`
/// function would pick the searcher again (an indirect call and a wrapper)
/// on every line, about 20 instructions of a search that is itself only a
/// few dozen for a header line.
#[derive(Clone, Copy)]
struct LineFeed {
    #[cfg(target_arch = "x86_64")]
    avx2: Option<memchr::arch::x86_64::avx2::memchr::One>,
}

impl LineFeed {
    #[inline]
    fn new() -> Self {
        LineFeed {
            #[cfg(target_arch = "x86_64")]
            avx2: memchr::arch::x86_64::avx2::memchr::One::new(b'\n'),
        }
    }

    /// Where the first LF in `hay` is.
    #[inline]
    fn find(&self, hay: &[u8]) -> Option<usize> {
        #[cfg(target_arch = "x86_64")]
        if let Some(one) = &self.avx2 {
            return one.find(hay);
        }
        memchr(b'\n', hay)
    }
}

/// The first line of `s` (without CRLF or LF) and what follows it.
#[inline(always)]
fn split_line<'a>(lf: &LineFeed, s: &'a [u8]) -> (&'a [u8], &'a [u8]) {
    let (line, rest) = match lf.find(s).and_then(|nl| s.split_at_checked(nl)) {
        Some((line, from_lf)) => (line, from_lf.get(1..).unwrap_or_default()),
        None => (s, &[][..]),
    };
    (line.strip_suffix(b"\r").unwrap_or(line), rest)
}

fn start_line(line: &[u8]) -> Result<RawStart<'_>, ScanError> {
    // The method or `SIP/2.0`: a few bytes, where a plain loop beats
    // `memchr`'s setup.
    let sp = line
        .iter()
        .position(|&c| c == b' ')
        .ok_or(ScanError::BadStartLine)?;
    let first = line.get(..sp).unwrap_or_default();
    let rest = line.get(sp + 1..).unwrap_or_default();
    if first.len() > 4
        && first
            .get(..4)
            .is_some_and(|p| p.eq_ignore_ascii_case(b"SIP/"))
    {
        if !first.eq_ignore_ascii_case(b"SIP/2.0") {
            return Err(ScanError::BadVersion);
        }
        let code_b = until_byte(rest, b' ');
        let code = match code_b {
            [a, b, c] if code_b.iter().all(u8::is_ascii_digit) => {
                u16::from(a - b'0') * 100 + u16::from(b - b'0') * 10 + u16::from(c - b'0')
            }
            _ => return Err(ScanError::BadStatusCode),
        };
        if !(100..=699).contains(&code) {
            return Err(ScanError::BadStatusCode);
        }
        let reason = rest.get(code_b.len() + 1..).unwrap_or_default();
        return Ok(RawStart::Response { code, reason });
    }
    if first.is_empty() || !first.iter().all(|&c| is_token(c)) {
        return Err(ScanError::BadStartLine);
    }
    let sp2 = memchr(b' ', rest).ok_or(ScanError::BadStartLine)?;
    let uri_b = rest.get(..sp2).unwrap_or_default();
    let version = rest.get(sp2 + 1..).unwrap_or_default();
    if !version.eq_ignore_ascii_case(b"SIP/2.0") {
        return Err(
            if version.len() > 4
                && version
                    .get(..4)
                    .is_some_and(|p| p.eq_ignore_ascii_case(b"SIP/"))
            {
                ScanError::BadVersion
            } else {
                ScanError::BadStartLine
            },
        );
    }
    let uri = trim(uri_b);
    scheme_len(uri).ok_or(ScanError::BadRequestUri)?;
    Ok(RawStart::Request {
        method: Method::parse(first),
        uri,
    })
}

fn parse_cseq(value: &[u8]) -> Result<CSeq<'_>, ScanError> {
    let num_end = value
        .iter()
        .position(|c| !c.is_ascii_digit())
        .unwrap_or(value.len());
    let seq = parse_u32(value.get(..num_end).unwrap_or_default()).ok_or(ScanError::BadCSeq)?;
    let method = trim(value.get(num_end..).unwrap_or_default());
    if method.is_empty() || !method.iter().all(|&c| is_token(c)) {
        return Err(ScanError::BadCSeq);
    }
    Ok(CSeq {
        seq,
        method: Method::parse(method),
    })
}

fn parse_reason(value: &[u8]) -> Option<Reason<'_>> {
    let mut first = None;
    for v in value.split(|&c| c == b',') {
        let v = trim(v);
        let semi = memchr(b';', v).unwrap_or(v.len());
        let protocol = trim(v.get(..semi).unwrap_or_default());
        if protocol.is_empty() {
            continue;
        }
        let params = v.get(semi + 1..).unwrap_or_default();
        let r = Reason {
            protocol,
            cause: param(params, b"cause")
                .and_then(parse_u32)
                .and_then(|c| u16::try_from(c).ok()),
            text: param(params, b"text"),
        };
        if protocol.eq_ignore_ascii_case(b"Q.850") {
            return Some(r);
        }
        first.get_or_insert(r);
    }
    first
}

fn parse_session_expires(value: &[u8]) -> Option<SessionExpires> {
    let semi = memchr(b';', value).unwrap_or(value.len());
    let delta_secs = parse_u32(trim(value.get(..semi)?))?;
    let refresher = param(value.get(semi..)?, b"refresher").and_then(|r| {
        if r.eq_ignore_ascii_case(b"uac") {
            Some(Refresher::Uac)
        } else if r.eq_ignore_ascii_case(b"uas") {
            Some(Refresher::Uas)
        } else {
            None
        }
    });
    Some(SessionExpires {
        delta_secs,
        refresher,
    })
}

/// A decimal number that fits `u32` (CSeq numbers are below 2**31, RFC
/// 3261 section 8.1.1.5); anything else is `None`, never an overflow.
fn parse_u32(s: &[u8]) -> Option<u32> {
    let s = trim(s);
    if s.is_empty() || s.len() > 10 || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    s.iter().try_fold(0u32, |acc, &c| {
        acc.checked_mul(10)?.checked_add(u32::from(c - b'0'))
    })
}

/// How many bytes at the start of `s` are [`is_token`] characters. Four
/// at a time: header names are the scanner's only per-byte loop.
#[inline]
fn token_len(s: &[u8]) -> usize {
    let mut n = 0;
    while let Some(&[a, b, c, d]) = s.get(n..n + 4) {
        if !(is_token(a) & is_token(b) & is_token(c) & is_token(d)) {
            break;
        }
        n += 4;
    }
    while s.get(n).is_some_and(|&c| is_token(c)) {
        n += 1;
    }
    n
}

/// RFC 3261 25.1 `token` characters (the capture layer's table, which
/// checks methods when it frames SIP).
#[inline]
fn is_token(c: u8) -> bool {
    capture::frame::is_sip_token(c)
}

/// Whitespace as [`trim`] counts it: SP, HTAB, CR, LF.
#[inline]
fn is_ws(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\r' | b'\n')
}

#[cfg(feature = "__internal-fuzz")]
pub mod fuzzing;
#[cfg(test)]
mod tests;
