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

#[derive(Clone, Debug)]
enum Found {
    /// Scanned: where each value is.
    Message(Spans),
    /// Malformed: counted as such when the packet is processed.
    Rejected(ScanError),
    /// A payload longer than the positions count ([`MAX_LEN`]): the
    /// machine scans it itself.
    Rescan,
}

/// The longest payload a [`Prescan`] holds positions for: 16-bit
/// positions keep it small (it is copied with the packet into the
/// reorder buffer), and a UDP datagram is shorter anyway.
const MAX_LEN: usize = u16::MAX as usize - 1;

/// Where a value is in the payload: `len` bytes from `at`; [`Span::NONE`]
/// for an absent value (no real span is: `at + len <= MAX_LEN`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Span {
    at: u16,
    len: u16,
}

/// A method: one of [`KNOWN`] by index, else (`OTHER`) the token at a
/// span.
const KNOWN: [Method<'static>; 9] = [
    Method::Invite,
    Method::Ack,
    Method::Bye,
    Method::Cancel,
    Method::Update,
    Method::Prack,
    Method::Options,
    Method::Register,
    Method::Info,
];
const OTHER: u8 = 9;
const _: () = assert!(KNOWN.len() == OTHER as usize);

/// [`Tagged`] as positions.
#[derive(Clone, Copy, Debug)]
struct Spans {
    /// The status code of a response; 0 for a request.
    code: u16,
    /// The Request-URI of a request, the Reason-Phrase of a response.
    start: Span,
    /// The request's method ([`KNOWN`] index or [`OTHER`]) and where an
    /// other method is.
    method: u8,
    method_at: Span,
    call_id: Span,
    cseq_seq: u32,
    cseq_method: u8,
    cseq_method_at: Span,
    from: Span,
    to: Span,
    from_tag: Span,
    to_tag: Span,
    via_branch: Span,
    contact: Span,
    pai: Span,
    diversion: Span,
    history_info: Span,
    /// The Reason header's protocol; [`Span::NONE`] without a Reason.
    reason_protocol: Span,
    reason_cause: Option<u16>,
    reason_text: Span,
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
        let found = if payload.len() > MAX_LEN {
            Found::Rescan
        } else {
            match Tagged::scan(payload) {
                Ok(t) => Spans::of(payload, &t).map_or(Found::Rescan, Found::Message),
                Err(e) => Found::Rejected(e),
            }
        };
        Prescan {
            len: payload.len(),
            found,
        }
    }

    /// Why the payload is malformed, if it was found to be (a payload
    /// over 64 KiB is left for the machine to scan).
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
    const NONE: Span = Span {
        at: u16::MAX,
        len: u16::MAX,
    };

    /// Where `part` (a slice of `whole`, or empty) is in `whole`
    /// (`whole` is at most [`MAX_LEN`] long).
    #[inline]
    fn of(whole: &[u8], part: &[u8]) -> Option<Span> {
        if part.is_empty() {
            return Some(Span::default());
        }
        let at = (part.as_ptr() as usize).wrapping_sub(whole.as_ptr() as usize);
        let limit = whole.len().min(MAX_LEN);
        if at > limit || part.len() > limit - at {
            return None;
        }
        // Both are at most `MAX_LEN`, below `u16::MAX`.
        #[allow(clippy::cast_possible_truncation)]
        Some(Span {
            at: at as u16,
            len: part.len() as u16,
        })
    }

    #[inline]
    fn opt(whole: &[u8], part: Option<&[u8]>) -> Option<Span> {
        match part {
            Some(p) => Span::of(whole, p),
            None => Some(Span::NONE),
        }
    }

    #[inline]
    fn get(self, whole: &[u8]) -> Option<&[u8]> {
        let at = usize::from(self.at);
        whole.get(at..at + usize::from(self.len))
    }

    /// The value, `Some(None)` when absent, `None` when outside `whole`.
    #[inline]
    fn get_opt(self, whole: &[u8]) -> Option<Option<&[u8]>> {
        if self == Span::NONE {
            Some(None)
        } else {
            self.get(whole).map(Some)
        }
    }
}

/// A method as ([`KNOWN`] index or [`OTHER`], where an other one is).
fn method_of(whole: &[u8], m: Method<'_>) -> Option<(u8, Span)> {
    match m {
        Method::Other(t) => Some((OTHER, Span::of(whole, t)?)),
        known => {
            let i = KNOWN.iter().position(|k| *k == known)?;
            Some((u8::try_from(i).ok()?, Span::default()))
        }
    }
}

/// The method [`method_of`] gave.
#[inline]
fn method_at(whole: &[u8], i: u8, at: Span) -> Option<Method<'_>> {
    match KNOWN.get(usize::from(i)) {
        Some(m) => Some(*m),
        None => at.get(whole).map(Method::Other),
    }
}

impl Spans {
    /// `t`, a scan of `p`, as positions in `p`; `None` when a value is not
    /// in `p` or `p` is longer than [`MAX_LEN`].
    fn of(p: &[u8], t: &Tagged<'_>) -> Option<Spans> {
        let r = &t.raw;
        let (code, start, (method, method_at)) = match r.start {
            RawStart::Request { method, uri } => (0, Span::of(p, uri)?, method_of(p, method)?),
            RawStart::Response { code, reason } => {
                (code, Span::of(p, reason)?, (OTHER, Span::default()))
            }
        };
        let (cseq_method, cseq_method_at) = method_of(p, r.cseq.method)?;
        let (reason_protocol, reason_cause, reason_text) = match r.reason {
            Some(x) => (Span::of(p, x.protocol)?, x.cause, Span::opt(p, x.text)?),
            None => (Span::NONE, None, Span::NONE),
        };
        Some(Spans {
            code,
            start,
            method,
            method_at,
            call_id: Span::of(p, r.call_id)?,
            cseq_seq: r.cseq.seq,
            cseq_method,
            cseq_method_at,
            from: Span::of(p, r.from)?,
            to: Span::of(p, r.to)?,
            from_tag: Span::opt(p, t.from_tag)?,
            to_tag: Span::opt(p, t.to_tag)?,
            via_branch: Span::opt(p, r.via_branch)?,
            contact: Span::opt(p, r.contact)?,
            pai: Span::opt(p, r.pai)?,
            diversion: Span::opt(p, r.diversion)?,
            history_info: Span::opt(p, r.history_info)?,
            reason_protocol,
            reason_cause,
            reason_text,
            session_expires: r.session_expires,
            content_length: r.content_length,
            bad_content_length: r.bad_content_length,
            max_forwards: r.max_forwards,
            body: Span::of(p, r.body)?,
        })
    }

    /// The scan these positions describe, sliced out of `p`.
    fn rebuild<'a>(&self, p: &'a [u8]) -> Option<Tagged<'a>> {
        let start = if self.code == 0 {
            RawStart::Request {
                method: method_at(p, self.method, self.method_at)?,
                uri: self.start.get(p)?,
            }
        } else {
            RawStart::Response {
                code: self.code,
                reason: self.start.get(p)?,
            }
        };
        let reason = match self.reason_protocol.get_opt(p)? {
            Some(protocol) => Some(Reason {
                protocol,
                cause: self.reason_cause,
                text: self.reason_text.get_opt(p)?,
            }),
            None => None,
        };
        Some(Tagged {
            raw: RawMessage {
                start,
                call_id: self.call_id.get(p)?,
                cseq: CSeq {
                    seq: self.cseq_seq,
                    method: method_at(p, self.cseq_method, self.cseq_method_at)?,
                },
                from: self.from.get(p)?,
                to: self.to.get(p)?,
                via_branch: self.via_branch.get_opt(p)?,
                contact: self.contact.get_opt(p)?,
                pai: self.pai.get_opt(p)?,
                diversion: self.diversion.get_opt(p)?,
                history_info: self.history_info.get_opt(p)?,
                reason,
                session_expires: self.session_expires,
                content_length: self.content_length,
                bad_content_length: self.bad_content_length,
                max_forwards: self.max_forwards,
                body: self.body.get(p)?,
            },
            from_tag: self.from_tag.get_opt(p)?,
            to_tag: self.to_tag.get_opt(p)?,
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
        (direct, Found::Rescan) => input.len() > MAX_LEN && pre.tagged(input) == direct,
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
    fn a_payload_over_64_kib_is_scanned_by_the_machine() {
        let head = "MESSAGE sip:x SIP/2.0\r\nFrom: a;tag=1\r\nTo: b\r\nCall-ID: c\r\n\
                    CSeq: 2 MESSAGE\r\n\r\n";
        for n in [MAX_LEN - head.len() - 1, MAX_LEN - head.len(), 70_000] {
            let m = format!("{head}{}", "x".repeat(n));
            assert!(round_trips(m.as_bytes()), "{n}");
            let body = Prescan::scan(m.as_bytes())
                .tagged(m.as_bytes())
                .map(|t| t.raw.body.len());
            assert_eq!(body, Ok(n));
        }
    }

    #[test]
    fn a_prescan_is_small() {
        // It is copied with each packet into the reorder buffer.
        assert!(std::mem::size_of::<Prescan>() <= 128);
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
