//! The scanner as it was before the single-pass rewrite, kept as a test
//! oracle: the differential tests (`tests/scan_diff.rs`) check that
//! [`sip_fsm::scan`] returns exactly what this returns, on the corpus and
//! on generated input.
#![allow(clippy::unwrap_used)]

use memchr::memchr;

use sip_fsm::ScanError;
use sip_fsm::scan::{
    CSeq, Method, NameAddr, Reason, Refresher, Scheme, SessionExpires, SipMessage, StartLine, Uri,
};

/// Scans one SIP message. Never panics; malformed input gives the reason.
/// Which billing header a header name is.
#[derive(Clone, Copy)]
enum Name {
    CallId,
    CSeq,
    From,
    To,
    Via,
    Contact,
    Pai,
    Diversion,
    HistoryInfo,
    Reason,
    SessionExpires,
    ContentLength,
    MaxForwards,
}

/// Matches a header name (RFC 3261 7.3.3 compact forms, case-insensitive).
fn classify(name: &[u8]) -> Option<Name> {
    let eq = |s: &[u8]| name.eq_ignore_ascii_case(s);
    Some(match name.len() {
        1 => match name.first()?.to_ascii_lowercase() {
            b'i' => Name::CallId,
            b'f' => Name::From,
            b't' => Name::To,
            b'v' => Name::Via,
            b'm' => Name::Contact,
            b'l' => Name::ContentLength,
            b'x' => Name::SessionExpires,
            _ => return None,
        },
        2 if eq(b"to") => Name::To,
        3 if eq(b"via") => Name::Via,
        4 if eq(b"cseq") => Name::CSeq,
        4 if eq(b"from") => Name::From,
        6 if eq(b"reason") => Name::Reason,
        7 if eq(b"call-id") => Name::CallId,
        7 if eq(b"contact") => Name::Contact,
        9 if eq(b"diversion") => Name::Diversion,
        12 if eq(b"history-info") => Name::HistoryInfo,
        12 if eq(b"max-forwards") => Name::MaxForwards,
        14 if eq(b"content-length") => Name::ContentLength,
        15 if eq(b"session-expires") => Name::SessionExpires,
        19 if eq(b"p-asserted-identity") => Name::Pai,
        _ => return None,
    })
}

pub fn scan(input: &[u8]) -> Result<SipMessage<'_>, ScanError> {
    // RFC 3261 7.5: ignore CRLFs before the start line.
    let skip = input
        .iter()
        .position(|c| !matches!(c, b'\r' | b'\n' | b' ' | b'\t'))
        .ok_or(ScanError::Empty)?;
    let input = input.get(skip..).unwrap_or_default();
    let (first, mut pos) = next_line(input, 0);
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
    let mut body_at = input.len();

    while pos < input.len() {
        let line_start = pos;
        let (line, mut next) = next_line(input, pos);
        if line.is_empty() {
            body_at = next;
            break;
        }
        // Folded continuation lines belong to this header (RFC 3261 7.3.1).
        let mut line_end = line_start + line.len();
        while matches!(input.get(next), Some(b' ' | b'\t')) {
            let (cont, after) = next_line(input, next);
            line_end = next + cont.len();
            next = after;
        }
        pos = next;
        let whole = input.get(line_start..line_end).unwrap_or_default();
        // Names are short: a plain scan beats memchr's setup here.
        let colon = whole
            .iter()
            .position(|&c| c == b':')
            .ok_or(ScanError::BadHeader)?;
        let name = trim(whole.get(..colon).unwrap_or_default());
        if name.is_empty() || !name.iter().all(|&c| is_token(c)) {
            return Err(ScanError::BadHeader);
        }
        // Headers billing does not need are skipped before their value is
        // looked at.
        let Some(kind) = classify(name) else { continue };
        let value = trim(whole.get(colon + 1..).unwrap_or_default());
        match kind {
            Name::CallId => {
                if call_id.is_none() {
                    call_id = Some(value)
                }
            }
            Name::CSeq => {
                if cseq.is_none() {
                    cseq = Some(parse_cseq(value)?)
                }
            }
            Name::From => set_first(&mut from, value),
            Name::To => set_first(&mut to, value),
            Name::Via => {
                if via.is_none() {
                    via = Some(value)
                }
            }
            Name::Contact => set_first(&mut contact, value),
            Name::Pai => set_first(&mut pai, value),
            Name::Diversion => set_first(&mut diversion, value),
            Name::HistoryInfo => {
                if history_info.is_none() {
                    history_info = Some(value)
                }
            }
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
    let from = name_addr_parse(from.ok_or(ScanError::MissingFrom)?);
    let to = name_addr_parse(to.ok_or(ScanError::MissingTo)?);
    let via_branch = via.and_then(|v| {
        // The top via-parm ends at the first comma (RFC 3261 20.42).
        let top = until(v, b',');
        let params = memchr(b';', top).and_then(|i| top.get(i + 1..))?;
        param(params, b"branch").and_then(non_empty)
    });
    let rest = input.get(body_at..).unwrap_or_default();
    let body = match content_length {
        Some(n) => rest.get(..n as usize).unwrap_or(rest),
        None => rest,
    };
    Ok(SipMessage {
        start,
        call_id,
        cseq,
        from,
        to,
        via_branch,
        contact: contact.map(name_addr_parse),
        pai: pai.map(name_addr_parse),
        diversion: diversion.map(name_addr_parse),
        history_info,
        reason,
        session_expires,
        content_length,
        bad_content_length,
        max_forwards,
        body,
    })
}

fn set_first<'a>(slot: &mut Option<&'a [u8]>, value: &'a [u8]) {
    if slot.is_none() {
        *slot = Some(value);
    }
}

/// The line starting at `pos` (without CRLF or LF) and where the next starts.
fn next_line(input: &[u8], pos: usize) -> (&[u8], usize) {
    let rest = input.get(pos..).unwrap_or_default();
    match memchr(b'\n', rest) {
        Some(nl) => {
            let line = rest.get(..nl).unwrap_or_default();
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            (line, pos + nl + 1)
        }
        None => (rest.strip_suffix(b"\r").unwrap_or(rest), input.len()),
    }
}

fn start_line(line: &[u8]) -> Result<StartLine<'_>, ScanError> {
    let sp = memchr(b' ', line).ok_or(ScanError::BadStartLine)?;
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
        let code_b = until(rest, b' ');
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
        return Ok(StartLine::Response { code, reason });
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
    let uri = uri_parse(uri_b).ok_or(ScanError::BadRequestUri)?;
    Ok(StartLine::Request {
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

/// RFC 3261 25.1 `token` characters.
fn is_token(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&c)
}

pub fn uri_parse(raw: &[u8]) -> Option<Uri<'_>> {
    let raw = trim(raw);
    let colon = memchr(b':', raw)?;
    let (scheme_b, rest) = (raw.get(..colon)?, raw.get(colon + 1..)?);
    if scheme_b.is_empty()
        || !scheme_b
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || b"+-.".contains(c))
    {
        return None;
    }
    let scheme = if scheme_b.eq_ignore_ascii_case(b"sip") {
        Scheme::Sip
    } else if scheme_b.eq_ignore_ascii_case(b"sips") {
        Scheme::Sips
    } else if scheme_b.eq_ignore_ascii_case(b"tel") {
        Scheme::Tel
    } else {
        Scheme::Other
    };
    let (user, host) = match scheme {
        Scheme::Sip | Scheme::Sips => {
            // RFC 3261 19.1.1: userinfo ends at '@'; the password after ':'.
            let end = rest.iter().position(|&c| c == b'?').unwrap_or(rest.len());
            let body = rest.get(..end).unwrap_or(rest);
            match memchr(b'@', body) {
                Some(at) => {
                    let userinfo = body.get(..at).unwrap_or_default();
                    let user = userinfo.split(|&c| c == b':').next().unwrap_or_default();
                    let hostport = body.get(at + 1..).unwrap_or_default();
                    (non_empty(user), host_of(hostport))
                }
                None => (None, host_of(body)),
            }
        }
        // RFC 3966: the number runs to the first parameter.
        Scheme::Tel => (non_empty(until(rest, b';')), &rest[..0]),
        Scheme::Other => (None, &rest[..0]),
    };
    Some(Uri {
        raw,
        scheme,
        user,
        host,
    })
}

pub fn name_addr_parse(value: &[u8]) -> NameAddr<'_> {
    let v = trim(value);
    let mut display = None;
    let mut rest = v;
    if v.first() == Some(&b'"') {
        // quoted-string with backslash escapes (RFC 3261 25.1).
        let mut i = 1;
        let mut close = None;
        while let Some(&c) = v.get(i) {
            match c {
                b'\\' => i += 2,
                b'"' => {
                    close = Some(i);
                    break;
                }
                _ => i += 1,
            }
        }
        match close {
            Some(c) => {
                display = non_empty(v.get(1..c).unwrap_or_default());
                rest = v.get(c + 1..).unwrap_or_default();
            }
            None => {
                return NameAddr {
                    display: None,
                    uri: None,
                    params: &v[..0],
                };
            }
        }
    }
    match memchr(b'<', rest) {
        Some(lt) => {
            if display.is_none() {
                display = non_empty(trim(rest.get(..lt).unwrap_or_default()));
            }
            let after = rest.get(lt + 1..).unwrap_or_default();
            let gt = memchr(b'>', after).unwrap_or(after.len());
            let uri = Uri::parse(after.get(..gt).unwrap_or_default());
            let tail = after.get(gt + 1..).unwrap_or_default();
            NameAddr {
                display,
                uri,
                params: header_params(tail),
            }
        }
        None => {
            // addr-spec form: parameters after the URI belong to the
            // header (RFC 3261 20.10), and a comma ends the value.
            let first = until(rest, b',');
            let semi = memchr(b';', first).unwrap_or(first.len());
            let uri = Uri::parse(first.get(..semi).unwrap_or_default());
            let params = first.get(semi + 1..).unwrap_or_default();
            NameAddr {
                display,
                uri,
                params: trim(params),
            }
        }
    }
}

/// The parameters after `>` up to the end of the first list element.
fn header_params(tail: &[u8]) -> &[u8] {
    let first = until(tail, b',');
    let t = trim(first);
    match t.first() {
        Some(b';') => trim(t.get(1..).unwrap_or_default()),
        _ => &t[..0],
    }
}

/// The value of parameter `name` (case-insensitive) in a `;`-separated
/// parameter list, without quotes. A flag parameter gives an empty value.
fn param<'a>(params: &'a [u8], name: &[u8]) -> Option<&'a [u8]> {
    for p in params.split(|&c| c == b';') {
        let p = trim(p);
        let (k, v) = match memchr(b'=', p) {
            Some(eq) => (trim(p.get(..eq)?), trim(p.get(eq + 1..)?)),
            None => (p, &p[..0]),
        };
        if k.eq_ignore_ascii_case(name) {
            return Some(unquote(v));
        }
    }
    None
}

/// Strips one pair of surrounding double quotes.
fn unquote(v: &[u8]) -> &[u8] {
    match v {
        [b'"', inner @ .., b'"'] => inner,
        _ => v,
    }
}

/// The host of `host[:port][;params]`, IPv6 references kept in brackets.
fn host_of(hostport: &[u8]) -> &[u8] {
    let end = hostport
        .iter()
        .position(|&c| c == b';' || c == b'?')
        .unwrap_or(hostport.len());
    let hp = hostport.get(..end).unwrap_or(hostport);
    if hp.first() == Some(&b'[') {
        return match memchr(b']', hp) {
            Some(close) => hp.get(..=close).unwrap_or(hp),
            None => hp,
        };
    }
    until(hp, b':')
}

/// Everything before the first `c`.
fn until(s: &[u8], c: u8) -> &[u8] {
    match memchr(c, s) {
        Some(i) => s.get(..i).unwrap_or(s),
        None => s,
    }
}

/// `None` for an empty slice.
fn non_empty(s: &[u8]) -> Option<&[u8]> {
    (!s.is_empty()).then_some(s)
}

/// Trims SP, HTAB, CR and LF (folded lines leave CRLF inside a value).
fn trim(s: &[u8]) -> &[u8] {
    let ws = |c: &u8| matches!(c, b' ' | b'\t' | b'\r' | b'\n');
    let start = s.iter().position(|c| !ws(c)).unwrap_or(s.len());
    let end = s.iter().rposition(|c| !ws(c)).map_or(start, |e| e + 1);
    s.get(start..end).unwrap_or_default()
}
