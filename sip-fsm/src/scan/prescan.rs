//! A scan done ahead of time, on another thread: [`Prescan`].
//!
//! [`scan_raw`](super::scan_raw) borrows every value from the payload, so
//! its result cannot travel apart from it. A [`Prescan`] holds the same
//! result as offsets into the payload (and the From and To tags the dialog
//! machine looks calls up by), owned, `Send` and without allocation; the
//! dialog machine turns it back into the borrowed scan over the same bytes
//! by slicing, without looking at them again.

use super::{CSeq, Method, RawMessage, RawStart, Reason, SessionExpires, scan_raw, tag_of};
use crate::error::ScanError;

/// A SIP payload scanned ahead of time, for
/// [`DialogMachine::handle_scanned`](crate::DialogMachine::handle_scanned):
/// made by [`Prescan::scan`] (on any thread) from the packet's payload,
/// and handed in with that same packet. It holds positions in the payload,
/// or why the payload is malformed; nothing is allocated.
#[derive(Clone, Debug)]
pub struct Prescan {
    /// The length of the payload scanned: a payload of another length is
    /// scanned again rather than sliced.
    len: usize,
    found: Found,
}

// Not boxed: a prescan is made for every packet, without allocating.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug)]
enum Found {
    /// Scanned: where each value is.
    Message(Spans),
    /// Malformed: counted as such when the packet is processed.
    Rejected(ScanError),
    /// A value the offsets cannot express (a payload over 4 GiB): the
    /// machine scans the payload itself.
    Rescan,
}

/// Where a value is in the payload: `len` bytes from `at`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Span {
    at: u32,
    len: u32,
}

/// A method: a known one, or the token as written.
#[derive(Clone, Copy, Debug)]
enum MethodAt {
    Known(Method<'static>),
    Other(Span),
}

#[derive(Clone, Copy, Debug)]
enum StartAt {
    Request { method: MethodAt, uri: Span },
    Response { code: u16, reason: Span },
}

#[derive(Clone, Copy, Debug)]
struct ReasonAt {
    protocol: Span,
    cause: Option<u16>,
    text: Option<Span>,
}

/// [`RawMessage`] as positions, and the From and To tags.
#[derive(Clone, Copy, Debug)]
struct Spans {
    start: StartAt,
    call_id: Span,
    cseq_seq: u32,
    cseq_method: MethodAt,
    from: Span,
    to: Span,
    from_tag: Option<Span>,
    to_tag: Option<Span>,
    via_branch: Option<Span>,
    contact: Option<Span>,
    pai: Option<Span>,
    diversion: Option<Span>,
    history_info: Option<Span>,
    reason: Option<ReasonAt>,
    session_expires: Option<SessionExpires>,
    content_length: Option<u32>,
    bad_content_length: bool,
    max_forwards: Option<u32>,
    body: Span,
}

/// A scanned message with the From and To tags
/// ([`tag_of`](super::tag_of) of each).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Tagged<'a> {
    pub raw: RawMessage<'a>,
    pub from_tag: Option<&'a [u8]>,
    pub to_tag: Option<&'a [u8]>,
}

impl<'a> Tagged<'a> {
    /// Scans `payload` now.
    pub(crate) fn scan(payload: &'a [u8]) -> Result<Self, ScanError> {
        let raw = scan_raw(payload)?;
        Ok(Tagged {
            raw,
            from_tag: tag_of(raw.from),
            to_tag: tag_of(raw.to),
        })
    }
}

impl Prescan {
    /// Scans `payload` (the scanner the dialog machine runs, with the From
    /// and To tags). Malformed input is kept as its reason, to be counted
    /// when the packet is processed.
    pub fn scan(payload: &[u8]) -> Self {
        let found = match Tagged::scan(payload) {
            Ok(t) => Spans::of(payload, &t).map_or(Found::Rescan, Found::Message),
            Err(e) => Found::Rejected(e),
        };
        Prescan {
            len: payload.len(),
            found,
        }
    }

    /// Why the payload is malformed, if it is.
    pub fn error(&self) -> Option<ScanError> {
        match self.found {
            Found::Rejected(e) => Some(e),
            Found::Message(_) | Found::Rescan => None,
        }
    }

    /// The scan of `payload`, which must be the payload this was made
    /// from: the values sliced out of it, or, when it is not (its length
    /// differs, a position is outside it), `payload` scanned again.
    pub(crate) fn tagged<'a>(&self, payload: &'a [u8]) -> Result<Tagged<'a>, ScanError> {
        if self.len != payload.len() {
            return Tagged::scan(payload);
        }
        match &self.found {
            Found::Message(s) => match s.rebuild(payload) {
                Some(t) => Ok(t),
                None => Tagged::scan(payload),
            },
            Found::Rejected(e) => Err(*e),
            Found::Rescan => Tagged::scan(payload),
        }
    }
}

impl Span {
    /// Where `part` (a slice of `whole`, or empty) is in `whole`.
    fn of(whole: &[u8], part: &[u8]) -> Option<Span> {
        if part.is_empty() {
            return Some(Span::default());
        }
        let at = (part.as_ptr() as usize).checked_sub(whole.as_ptr() as usize)?;
        if at.checked_add(part.len())? > whole.len() {
            return None;
        }
        Some(Span {
            at: u32::try_from(at).ok()?,
            len: u32::try_from(part.len()).ok()?,
        })
    }

    fn opt(whole: &[u8], part: Option<&[u8]>) -> Option<Option<Span>> {
        match part {
            Some(p) => Span::of(whole, p).map(Some),
            None => Some(None),
        }
    }

    #[inline]
    fn get(self, whole: &[u8]) -> Option<&[u8]> {
        let at = self.at as usize;
        whole.get(at..at + self.len as usize)
    }

    #[inline]
    fn get_opt(span: Option<Span>, whole: &[u8]) -> Option<Option<&[u8]>> {
        match span {
            Some(s) => s.get(whole).map(Some),
            None => Some(None),
        }
    }
}

impl MethodAt {
    fn of(whole: &[u8], m: Method<'_>) -> Option<MethodAt> {
        Some(MethodAt::Known(match m {
            Method::Invite => Method::Invite,
            Method::Ack => Method::Ack,
            Method::Bye => Method::Bye,
            Method::Cancel => Method::Cancel,
            Method::Update => Method::Update,
            Method::Prack => Method::Prack,
            Method::Options => Method::Options,
            Method::Register => Method::Register,
            Method::Info => Method::Info,
            Method::Other(t) => return Span::of(whole, t).map(MethodAt::Other),
        }))
    }

    #[inline]
    fn get(self, whole: &[u8]) -> Option<Method<'_>> {
        match self {
            MethodAt::Known(m) => Some(m),
            MethodAt::Other(s) => s.get(whole).map(Method::Other),
        }
    }
}

impl Spans {
    /// `t`, a scan of `p`, as positions in `p`; `None` when a value is not
    /// in `p` or beyond what `u32` counts.
    fn of(p: &[u8], t: &Tagged<'_>) -> Option<Spans> {
        let r = &t.raw;
        let start = match r.start {
            RawStart::Request { method, uri } => StartAt::Request {
                method: MethodAt::of(p, method)?,
                uri: Span::of(p, uri)?,
            },
            RawStart::Response { code, reason } => StartAt::Response {
                code,
                reason: Span::of(p, reason)?,
            },
        };
        let reason = match r.reason {
            Some(x) => Some(ReasonAt {
                protocol: Span::of(p, x.protocol)?,
                cause: x.cause,
                text: Span::opt(p, x.text)?,
            }),
            None => None,
        };
        Some(Spans {
            start,
            call_id: Span::of(p, r.call_id)?,
            cseq_seq: r.cseq.seq,
            cseq_method: MethodAt::of(p, r.cseq.method)?,
            from: Span::of(p, r.from)?,
            to: Span::of(p, r.to)?,
            from_tag: Span::opt(p, t.from_tag)?,
            to_tag: Span::opt(p, t.to_tag)?,
            via_branch: Span::opt(p, r.via_branch)?,
            contact: Span::opt(p, r.contact)?,
            pai: Span::opt(p, r.pai)?,
            diversion: Span::opt(p, r.diversion)?,
            history_info: Span::opt(p, r.history_info)?,
            reason,
            session_expires: r.session_expires,
            content_length: r.content_length,
            bad_content_length: r.bad_content_length,
            max_forwards: r.max_forwards,
            body: Span::of(p, r.body)?,
        })
    }

    /// The scan these positions describe, sliced out of `p`.
    fn rebuild<'a>(&self, p: &'a [u8]) -> Option<Tagged<'a>> {
        let start = match self.start {
            StartAt::Request { method, uri } => RawStart::Request {
                method: method.get(p)?,
                uri: uri.get(p)?,
            },
            StartAt::Response { code, reason } => RawStart::Response {
                code,
                reason: reason.get(p)?,
            },
        };
        let reason = match self.reason {
            Some(x) => Some(Reason {
                protocol: x.protocol.get(p)?,
                cause: x.cause,
                text: Span::get_opt(x.text, p)?,
            }),
            None => None,
        };
        Some(Tagged {
            raw: RawMessage {
                start,
                call_id: self.call_id.get(p)?,
                cseq: CSeq {
                    seq: self.cseq_seq,
                    method: self.cseq_method.get(p)?,
                },
                from: self.from.get(p)?,
                to: self.to.get(p)?,
                via_branch: Span::get_opt(self.via_branch, p)?,
                contact: Span::get_opt(self.contact, p)?,
                pai: Span::get_opt(self.pai, p)?,
                diversion: Span::get_opt(self.diversion, p)?,
                history_info: Span::get_opt(self.history_info, p)?,
                reason,
                session_expires: self.session_expires,
                content_length: self.content_length,
                bad_content_length: self.bad_content_length,
                max_forwards: self.max_forwards,
                body: self.body.get(p)?,
            },
            from_tag: Span::get_opt(self.from_tag, p)?,
            to_tag: Span::get_opt(self.to_tag, p)?,
        })
    }
}

/// See [`super::fuzzing::prescan_round_trips`].
#[cfg(any(test, feature = "__internal-fuzz"))]
pub(crate) fn round_trips(input: &[u8]) -> bool {
    let pre = Prescan::scan(input);
    match (Tagged::scan(input), &pre.found) {
        (Ok(direct), Found::Message(spans)) => {
            spans.rebuild(input) == Some(direct) && pre.tagged(input) == Ok(direct)
        }
        (Err(e), Found::Rejected(r)) => e == *r && pre.tagged(input).err() == Some(e),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The scan of `p`, straight and through a [`Prescan`], as text to
    /// compare.
    fn both(p: &[u8]) -> (String, String) {
        let show = |t: Result<Tagged<'_>, ScanError>| match t {
            Ok(t) => format!("{:?} {:?} {:?}", t.raw, t.from_tag, t.to_tag),
            Err(e) => format!("{e:?}"),
        };
        (show(Tagged::scan(p)), show(Prescan::scan(p).tagged(p)))
    }

    #[test]
    fn a_prescan_gives_the_same_scan() {
        let msgs: [&[u8]; 6] = [
            b"INVITE sip:1002@b SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9\r\n\
              From: \"A\" <sip:1001@a>;tag=ft\r\nTo: <sip:1002@b>\r\nCall-ID: c1\r\n\
              CSeq: 1 INVITE\r\nContact: <sip:1001@h>\r\nP-Asserted-Identity: <sip:9@a>\r\n\
              Diversion: <sip:7@a>\r\nHistory-Info: <sip:x@a>;index=1\r\n\
              Reason: Q.850;cause=16;text=\"Normal\"\r\nSession-Expires: 90;refresher=uac\r\n\
              Max-Forwards: 70\r\nContent-Length: 4\r\n\r\nbodyMORE",
            b"\r\nSIP/2.0 486 Busy Here\r\nf: <sip:a@b>;tag=x\r\nt: <sip:c@d>;tag=y\r\n\
              i: c2\r\nCSeq: 7 FOO\r\nl: nope\r\n\r\n",
            b"SIP/2.0 200 \r\nFrom: a\r\nTo: b\r\nCall-ID: c\r\nCSeq: 1 BYE\r\n",
            b"FOO sip:x SIP/2.0\r\nFrom: a\r\nTo: b\r\nCall-ID: c\r\nCSeq: 1 FOO\r\n\r\n",
            b"INVITE sip:x SIP/2.0\r\nFrom: a\r\nTo: b\r\nCSeq: 1 INVITE\r\n\r\n",
            b"  \r\n",
        ];
        for m in msgs {
            assert!(round_trips(m), "{}", String::from_utf8_lossy(m));
            let (direct, pre) = both(m);
            assert_eq!(direct, pre, "{}", String::from_utf8_lossy(m));
        }
        // Each case above scans as intended.
        let t = Prescan::scan(msgs[0]).tagged(msgs[0]).map(|t| {
            (
                t.raw.via_branch,
                t.from_tag,
                t.raw.body,
                t.raw.reason.map(|r| r.cause),
            )
        });
        assert_eq!(
            t,
            Ok((
                Some(&b"z9"[..]),
                Some(&b"ft"[..]),
                &b"body"[..],
                Some(Some(16))
            ))
        );
        assert_eq!(
            Prescan::scan(msgs[4]).error(),
            Some(ScanError::MissingCallId)
        );
        assert_eq!(Prescan::scan(msgs[5]).error(), Some(ScanError::Empty));
    }

    #[test]
    fn another_payload_is_scanned_again() {
        let a: &[u8] =
            b"BYE sip:x SIP/2.0\r\nFrom: a;tag=1\r\nTo: b\r\nCall-ID: c\r\nCSeq: 2 BYE\r\n\r\n";
        let b: &[u8] =
            b"BYE sip:y SIP/2.0\r\nFrom: a;tag=2\r\nTo: b\r\nCall-ID: d\r\nCSeq: 3 BYE\r\n\r\n\r\n";
        let pre = Prescan::scan(a);
        let t = pre.tagged(b).map(|t| (t.raw.call_id, t.from_tag));
        assert_eq!(t, Ok((&b"d"[..], Some(&b"2"[..]))));
    }
}
