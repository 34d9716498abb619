//! Header names: which billing header a line is. [`known_name`] reads
//! the usual lines (a billing header's name at the start, the colon right
//! after); [`classify`] names a token the general path found.

/// Which billing header a header name is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Name {
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
/// The length and the first byte pick the one candidate, so an unknown
/// name costs at most one comparison. `name` is a token (checked before).
pub(super) fn classify(name: &[u8]) -> Option<Name> {
    let first = name.first()? | 0x20;
    let is = |lower: &[u8]| eq_lower(name, lower);
    Some(match (name.len(), first) {
        (1, b'i') => Name::CallId,
        (1, b'f') => Name::From,
        (1, b't') => Name::To,
        (1, b'v') => Name::Via,
        (1, b'm') => Name::Contact,
        (1, b'l') => Name::ContentLength,
        (1, b'x') => Name::SessionExpires,
        (2, b't') if is(b"to") => Name::To,
        (3, b'v') if is(b"via") => Name::Via,
        (4, b'c') if is(b"cseq") => Name::CSeq,
        (4, b'f') if is(b"from") => Name::From,
        (6, b'r') if is(b"reason") => Name::Reason,
        (7, b'c') if is(b"call-id") => Name::CallId,
        (7, b'c') if is(b"contact") => Name::Contact,
        (9, b'd') if is(b"diversion") => Name::Diversion,
        (12, b'h') if is(b"history-info") => Name::HistoryInfo,
        (12, b'm') if is(b"max-forwards") => Name::MaxForwards,
        (14, b'c') if is(b"content-length") => Name::ContentLength,
        (15, b's') if is(b"session-expires") => Name::SessionExpires,
        (19, b'p') if is(b"p-asserted-identity") => Name::Pai,
        _ => return None,
    })
}

/// The usual line of a billing header: its name (any case, long or
/// compact form) starts the line and the colon follows it at once. Gives
/// what [`super::header_name`] then [`classify`] would, without their byte by
/// byte token check: the names are tokens. `None` for any other line
/// (another header, whitespace before the colon, a bad name), which the
/// general path then reads.
#[inline]
pub(super) fn known_name(line: &[u8]) -> Option<(Name, usize)> {
    let colon = |n: usize| line.get(n) == Some(&b':');
    let is = |lower: &[u8]| {
        colon(lower.len()) && line.get(..lower.len()).is_some_and(|p| eq_name(p, lower))
    };
    let (name, len) = match line.first()? | 0x20 {
        b'i' if colon(1) => (Name::CallId, 1),
        b'f' if colon(1) => (Name::From, 1),
        b'f' if is(b"from") => (Name::From, 4),
        b't' if colon(1) => (Name::To, 1),
        b't' if is(b"to") => (Name::To, 2),
        b'v' if colon(1) => (Name::Via, 1),
        b'v' if is(b"via") => (Name::Via, 3),
        b'm' if colon(1) => (Name::Contact, 1),
        b'm' if is(b"max-forwards") => (Name::MaxForwards, 12),
        b'l' if colon(1) => (Name::ContentLength, 1),
        b'x' if colon(1) => (Name::SessionExpires, 1),
        b'c' if is(b"cseq") => (Name::CSeq, 4),
        b'c' if is(b"call-id") => (Name::CallId, 7),
        b'c' if is(b"contact") => (Name::Contact, 7),
        b'c' if is(b"content-length") => (Name::ContentLength, 14),
        b'r' if is(b"reason") => (Name::Reason, 6),
        b'd' if is(b"diversion") => (Name::Diversion, 9),
        b'h' if is(b"history-info") => (Name::HistoryInfo, 12),
        b's' if is(b"session-expires") => (Name::SessionExpires, 15),
        b'p' if is(b"p-asserted-identity") => (Name::Pai, 19),
        _ => return None,
    };
    Some((name, len + 1))
}

/// Whether `name` spells `lower` (lower-case letters and `-`) in any case:
/// a letter matches itself in either case, `-` only `-`. Unlike
/// [`eq_lower`] it needs no token check first (`c | 0x20` is `-` for CR
/// as well).
#[inline]
fn eq_name(name: &[u8], lower: &[u8]) -> bool {
    name.len() == lower.len()
        && name
            .iter()
            .zip(lower)
            .all(|(&a, &b)| if b == b'-' { a == b'-' } else { a | 0x20 == b })
}

/// Whether token `name` equals `lower` (lower-case letters and `-`)
/// ignoring case. For token characters `c | 0x20` is the lower-case
/// letter exactly when `c` is that letter in either case, and `-` stays
/// `-`; no other token character maps onto a letter or `-`.
fn eq_lower(name: &[u8], lower: &[u8]) -> bool {
    name.len() == lower.len() && name.iter().zip(lower).all(|(&a, &b)| a | 0x20 == b)
}
