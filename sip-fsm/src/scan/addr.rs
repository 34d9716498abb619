//! URIs, name-addr values and generic parameters (RFC 3261 sections 19.1,
//! 20.10, 25.1), all borrowed from the message.

use memchr::memchr;

/// A URI scheme billing cares about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheme {
    /// `sip:` (RFC 3261 section 19.1).
    Sip,
    /// `sips:` (RFC 3261 section 19.1).
    Sips,
    /// `tel:` (RFC 3966).
    Tel,
    /// Any other scheme (`urn:`, `http:`...): no user part is taken.
    Other,
}

/// A URI, borrowed: the raw text and the parts billing needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Uri<'a> {
    /// The whole URI as written.
    pub raw: &'a [u8],
    /// Its scheme.
    pub scheme: Scheme,
    /// The user part: for `sip:`/`sips:` what precedes `@` (without a
    /// password), for `tel:` the number. `None` when there is none.
    pub user: Option<&'a [u8]>,
    /// The host (for `tel:`, empty).
    pub host: &'a [u8],
}

impl<'a> Uri<'a> {
    /// Parses a URI. `None` when there is no `scheme:` prefix.
    pub fn parse(raw: &'a [u8]) -> Option<Self> {
        let raw = trim(raw);
        let colon = scheme_len(raw)?;
        let (scheme_b, rest) = (raw.get(..colon)?, raw.get(colon + 1..)?);
        let scheme = match scheme_b.len() {
            3 if scheme_b.eq_ignore_ascii_case(b"sip") => Scheme::Sip,
            4 if scheme_b.eq_ignore_ascii_case(b"sips") => Scheme::Sips,
            3 if scheme_b.eq_ignore_ascii_case(b"tel") => Scheme::Tel,
            _ => Scheme::Other,
        };
        let (user, host) = match scheme {
            Scheme::Sip | Scheme::Sips => {
                // RFC 3261 19.1.1: headers start at '?'; userinfo ends at
                // '@'; the password after ':'.
                let mut at = None;
                let mut end = rest.len();
                for (i, &c) in rest.iter().enumerate() {
                    match c {
                        b'?' => {
                            end = i;
                            break;
                        }
                        b'@' if at.is_none() => at = Some(i),
                        _ => {}
                    }
                }
                let body = rest.get(..end).unwrap_or(rest);
                match at {
                    Some(at) => {
                        let userinfo = body.get(..at).unwrap_or_default();
                        let user = until_byte(userinfo, b':');
                        let hostport = body.get(at + 1..).unwrap_or_default();
                        (non_empty(user), host_of(hostport))
                    }
                    None => (None, host_of(body)),
                }
            }
            // RFC 3966: the number runs to the first parameter.
            Scheme::Tel => (non_empty(until_byte(rest, b';')), &rest[..0]),
            Scheme::Other => (None, &rest[..0]),
        };
        Some(Uri {
            raw,
            scheme,
            user,
            host,
        })
    }
}

/// Where the colon after the scheme of trimmed URI `raw` is, `None` when
/// there is none: exactly when [`Uri::parse`] gives `None`. The scheme runs
/// to the first colon and must be non-empty
/// `ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )` (lenient on the first
/// character, as before).
pub(crate) fn scheme_len(raw: &[u8]) -> Option<usize> {
    let colon = raw
        .iter()
        .position(|&c| !(c.is_ascii_alphanumeric() || matches!(c, b'+' | b'-' | b'.')))?;
    if colon == 0 || raw.get(colon) != Some(&b':') {
        return None;
    }
    Some(colon)
}

/// A From, To, Contact, P-Asserted-Identity or Diversion value:
/// `[display-name] <URI> *(;param)` or `addr-spec *(;param)`
/// (RFC 3261 section 20.10). Only the first value of a list is taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NameAddr<'a> {
    /// The display name, without quotes, if any.
    pub display: Option<&'a [u8]>,
    /// The URI; `None` when it does not parse (the header is kept anyway).
    pub uri: Option<Uri<'a>>,
    /// The header parameters after the URI (`;tag=...;...`), without the
    /// leading `;`.
    pub params: &'a [u8],
}

impl<'a> NameAddr<'a> {
    /// Parses the first name-addr of a header value. Never fails: a value
    /// that cannot be understood gives a `NameAddr` with no URI.
    pub fn parse(value: &'a [u8]) -> Self {
        let p = split_name_addr(value);
        NameAddr {
            display: p.display,
            uri: p.uri.and_then(Uri::parse),
            params: p.params,
        }
    }

    /// The user part of the URI, if any.
    pub fn user(&self) -> Option<&'a [u8]> {
        self.uri.and_then(|u| u.user)
    }

    /// The `tag` parameter (RFC 3261 section 19.3), if any.
    pub fn tag(&self) -> Option<&'a [u8]> {
        param(self.params, b"tag").and_then(non_empty)
    }
}

/// A name-addr value cut into its parts, the URI not yet parsed.
struct Parts<'a> {
    display: Option<&'a [u8]>,
    /// `None` for an unterminated quoted display name: no URI at all.
    uri: Option<&'a [u8]>,
    params: &'a [u8],
}

/// Skips a leading quoted display name (quoted-string with backslash
/// escapes, RFC 3261 25.1) of trimmed value `v`: the display name (if
/// any, and non-empty) and what follows the closing quote. `None` when the
/// quote is never closed.
fn skip_quoted(v: &[u8]) -> Option<(Option<&[u8]>, &[u8])> {
    if v.first() != Some(&b'"') {
        return Some((None, v));
    }
    let mut i = 1;
    while let Some(&c) = v.get(i) {
        match c {
            b'\\' => i += 2,
            b'"' => {
                let display = non_empty(v.get(1..i).unwrap_or_default());
                return Some((display, v.get(i + 1..).unwrap_or_default()));
            }
            _ => i += 1,
        }
    }
    None
}

/// Cuts the first name-addr of a header value into display name, URI text
/// and header parameters (RFC 3261 20.10).
fn split_name_addr(value: &[u8]) -> Parts<'_> {
    let v = trim(value);
    let Some((mut display, rest)) = skip_quoted(v) else {
        return Parts {
            display: None,
            uri: None,
            params: &v[..0],
        };
    };
    match rest.iter().position(|&c| c == b'<') {
        Some(lt) => {
            if display.is_none() {
                display = non_empty(trim(rest.get(..lt).unwrap_or_default()));
            }
            let after = rest.get(lt + 1..).unwrap_or_default();
            // The URI is the long part of the value: `memchr` pays.
            let gt = memchr(b'>', after).unwrap_or(after.len());
            let tail = after.get(gt + 1..).unwrap_or_default();
            Parts {
                display,
                uri: Some(after.get(..gt).unwrap_or_default()),
                params: header_params(tail),
            }
        }
        None => {
            // addr-spec form: parameters after the URI belong to the
            // header (RFC 3261 20.10), and a comma ends the value.
            let first = until_byte(rest, b',');
            let semi = first.iter().position(|&c| c == b';').unwrap_or(first.len());
            let params = first.get(semi + 1..).unwrap_or_default();
            Parts {
                display,
                uri: Some(first.get(..semi).unwrap_or_default()),
                params: trim(params),
            }
        }
    }
}

/// The `tag` parameter of a From or To value: what
/// `NameAddr::parse(value).tag()` gives, without parsing the URI or
/// cutting the parameters out first (the dialog machine takes this path
/// twice a packet).
pub(crate) fn tag_of(value: &[u8]) -> Option<&[u8]> {
    let (_, rest) = skip_quoted(trim(value))?;
    let Some(lt) = rest.iter().position(|&c| c == b'<') else {
        return token_param(split_name_addr(value).params, b"tag").and_then(non_empty);
    };
    let after = rest.get(lt + 1..).unwrap_or_default();
    // No `>`: no parameters.
    let gt = memchr(b'>', after)?;
    let tail = after.get(gt + 1..).unwrap_or_default();
    // `header_params`: the first list element, trimmed, must start with `;`.
    let semi = tail.iter().position(|c| !is_ws(*c))?;
    if tail.get(semi) != Some(&b';') {
        return None;
    }
    elem_param(tail.get(semi + 1..)?, b"tag").and_then(non_empty)
}

/// The parameters after `>` up to the end of the first list element.
fn header_params(tail: &[u8]) -> &[u8] {
    // Short (`;tag=...`): a plain loop beats `memchr`'s setup.
    let first = until_byte(tail, b',');
    let t = trim(first);
    match t.first() {
        Some(b';') => trim(t.get(1..).unwrap_or_default()),
        _ => &t[..0],
    }
}

/// The value of parameter `name` (case-insensitive) in a `;`-separated
/// parameter list, without quotes. A flag parameter gives an empty value.
pub fn param<'a>(params: &'a [u8], name: &[u8]) -> Option<&'a [u8]> {
    let mut rest = params;
    loop {
        let semi = rest.iter().position(|&c| c == b';');
        let p = trim(match semi {
            Some(i) => rest.get(..i)?,
            None => rest,
        });
        let (k, v) = match p.iter().position(|&c| c == b'=') {
            Some(eq) => (trim(p.get(..eq)?), trim(p.get(eq + 1..)?)),
            None => (p, &p[..0]),
        };
        if k.eq_ignore_ascii_case(name) {
            return Some(unquote(v));
        }
        rest = rest.get(semi? + 1..)?;
    }
}

/// [`param`] for a `name` of token characters (no `;`, `=`, quote or
/// whitespace), in one pass: each parameter is compared where it starts,
/// and only the one found is cut out and trimmed. Same result as `param`
/// (the scanner's Via branch and the dialogs' tags take this path on every
/// packet).
pub(crate) fn token_param<'a>(params: &'a [u8], name: &[u8]) -> Option<&'a [u8]> {
    let ws = |c: &u8| matches!(c, b' ' | b'\t' | b'\r' | b'\n');
    let mut i = 0;
    loop {
        while params.get(i).is_some_and(ws) {
            i += 1;
        }
        let end = i + name.len();
        if params
            .get(i..end)
            .is_some_and(|k| k.eq_ignore_ascii_case(name))
        {
            let mut j = end;
            while params.get(j).is_some_and(ws) {
                j += 1;
            }
            match params.get(j) {
                // A flag parameter: an empty value.
                None | Some(b';') => return params.get(j..j),
                Some(b'=') => {
                    let v = params.get(j + 1..).unwrap_or_default();
                    let v = v.get(..until_byte(v, b';').len()).unwrap_or(v);
                    return Some(unquote(trim(v)));
                }
                // A longer name ("tagx"), or text after it: not this one.
                Some(_) => {}
            }
        }
        let rest = params.get(i..)?;
        let semi = rest.iter().position(|&c| c == b';')?;
        i += semi + 1;
    }
}

/// [`token_param`] over the first element of a comma-separated list, for a
/// `name` of lower-case letters:
/// `token_param(until(params, b','), name)` in one pass, the value found
/// four bytes at a time. The Via branch and the From/To tags take this
/// path on every packet.
pub(crate) fn elem_param<'a>(params: &'a [u8], name: &[u8]) -> Option<&'a [u8]> {
    // Slices cut down as the parameters are passed, no index arithmetic.
    let mut rest = params;
    loop {
        rest = trim_start(rest);
        // A comma inside the name's length never matches: `name` is letters.
        if let Some((k, after)) = rest.split_at_checked(name.len()) {
            if eq_letters(k, name) {
                let after = trim_start(after);
                match after {
                    // A flag parameter: an empty value.
                    [] | [b';' | b',', ..] => return after.get(..0),
                    [b'=', v @ ..] => return Some(param_value(v)),
                    // A longer name ("tagx"), or text after it: not this one.
                    _ => {}
                }
            }
        }
        // The next parameter, unless the element ends first.
        match rest.split_at_checked(value_len(rest)) {
            Some((_, [b';', next @ ..])) => rest = next,
            _ => return None,
        }
    }
}

/// A parameter value: up to the next `;` or `,`, trimmed, without quotes.
/// Most are tokens, done in one pass: nothing to trim and no quote.
#[inline]
fn param_value(v: &[u8]) -> &[u8] {
    let n = plain_len(v);
    match v.split_at_checked(n) {
        Some((plain, [] | [b';' | b',', ..])) => plain,
        _ => unquote(trim(v.get(..value_len(v)).unwrap_or(v))),
    }
}

/// `s` without leading whitespace ([`is_ws`]).
#[inline]
fn trim_start(mut s: &[u8]) -> &[u8] {
    while let [c, rest @ ..] = s {
        if !is_ws(*c) {
            break;
        }
        s = rest;
    }
    s
}

/// `k.eq_ignore_ascii_case(lower)` for `lower` of lower-case ASCII
/// letters: `c | 0x20` is such a letter exactly when `c` is that letter in
/// either case, so one OR per byte does.
#[inline]
fn eq_letters(k: &[u8], lower: &[u8]) -> bool {
    debug_assert!(lower.iter().all(u8::is_ascii_lowercase));
    k.len() == lower.len() && k.iter().zip(lower).all(|(&a, &b)| a | 0x20 == b)
}

/// How many bytes at the start of `s` come before the first `;` or `,`,
/// four at a time.
#[inline]
fn value_len(s: &[u8]) -> usize {
    let mut n = 0;
    while let Some(&[a, b, c, d]) = s.get(n..n + 4) {
        if PARAM_END[usize::from(a)]
            | PARAM_END[usize::from(b)]
            | PARAM_END[usize::from(c)]
            | PARAM_END[usize::from(d)]
        {
            break;
        }
        n += 4;
    }
    while s.get(n).is_some_and(|&c| !PARAM_END[usize::from(c)]) {
        n += 1;
    }
    n
}

/// How many bytes at the start of `s` come before the first `;`, `,`,
/// whitespace or double quote: a value that ends there at a `;`, a `,` or
/// the end needs no trimming and no unquoting. [`value_len`]'s loop over
/// another table on purpose: one function taking the table for both made
/// the compiler inline less into `scan_raw` (a replay of 20,000 calls,
/// `--threads 1`: 1,101.1M -> 1,122.1M instructions).
#[inline]
fn plain_len(s: &[u8]) -> usize {
    let mut n = 0;
    while let Some(&[a, b, c, d]) = s.get(n..n + 4) {
        if PLAIN_END[usize::from(a)]
            | PLAIN_END[usize::from(b)]
            | PLAIN_END[usize::from(c)]
            | PLAIN_END[usize::from(d)]
        {
            break;
        }
        n += 4;
    }
    while s.get(n).is_some_and(|&c| !PLAIN_END[usize::from(c)]) {
        n += 1;
    }
    n
}

/// [`PARAM_END`], whitespace and `"`.
static PLAIN_END: [bool; 256] = byte_set(b";, \t\r\n\"");

/// `;` and `,` as a table: one load per byte.
static PARAM_END: [bool; 256] = byte_set(b";,");

/// A table of the bytes in `set`.
const fn byte_set(set: &[u8]) -> [bool; 256] {
    let mut t = [false; 256];
    let mut i = 0;
    while i < set.len() {
        t[set[i] as usize] = true;
        i += 1;
    }
    t
}

/// Whitespace as [`trim`] counts it: SP, HTAB, CR, LF.
#[inline]
fn is_ws(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\r' | b'\n')
}

/// Strips one pair of surrounding double quotes.
pub fn unquote(v: &[u8]) -> &[u8] {
    match v {
        [b'"', inner @ .., b'"'] => inner,
        _ => v,
    }
}

/// The host of `host[:port][;params]`, IPv6 references kept in brackets.
fn host_of(hostport: &[u8]) -> &[u8] {
    if hostport.first() == Some(&b'[') {
        let end = hostport
            .iter()
            .position(|&c| c == b';' || c == b'?')
            .unwrap_or(hostport.len());
        let hp = hostport.get(..end).unwrap_or(hostport);
        return match memchr(b']', hp) {
            Some(close) => hp.get(..=close).unwrap_or(hp),
            None => hp,
        };
    }
    // The host ends at the port, the parameters or the headers.
    let end = hostport
        .iter()
        .position(|&c| matches!(c, b':' | b';' | b'?'))
        .unwrap_or(hostport.len());
    hostport.get(..end).unwrap_or(hostport)
}

/// Everything before the first `c`, by a plain loop: the slices here are
/// short, where `memchr`'s setup costs more than the search.
pub(crate) fn until_byte(s: &[u8], c: u8) -> &[u8] {
    match s.iter().position(|&b| b == c) {
        Some(i) => s.get(..i).unwrap_or(s),
        None => s,
    }
}

/// `None` for an empty slice.
pub fn non_empty(s: &[u8]) -> Option<&[u8]> {
    (!s.is_empty()).then_some(s)
}

/// Trims SP, HTAB, CR and LF (folded lines leave CRLF inside a value).
#[inline]
pub fn trim(mut s: &[u8]) -> &[u8] {
    // Slice patterns: no index arithmetic left to check.
    while let [c, rest @ ..] = s {
        if !is_ws(*c) {
            break;
        }
        s = rest;
    }
    while let [rest @ .., c] = s {
        if !is_ws(*c) {
            break;
        }
        s = rest;
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sip_uri_with_password_port_and_params() {
        let u = Uri::parse(b"sip:alice:secret@atlanta.com:5060;transport=tcp?subject=x").unwrap();
        assert_eq!(u.scheme, Scheme::Sip);
        assert_eq!(u.user, Some(&b"alice"[..]));
        assert_eq!(u.host, b"atlanta.com");
    }

    #[test]
    fn uri_without_user_and_ipv6_host() {
        let u = Uri::parse(b"SIPS:[2001:db8::1]:5061").unwrap();
        assert_eq!(u.scheme, Scheme::Sips);
        assert_eq!(u.user, None);
        assert_eq!(u.host, b"[2001:db8::1]");
    }

    #[test]
    fn tel_uri_user_is_the_number() {
        let u = Uri::parse(b"tel:+15551234;phone-context=example.com").unwrap();
        assert_eq!(u.scheme, Scheme::Tel);
        assert_eq!(u.user, Some(&b"+15551234"[..]));
    }

    #[test]
    fn no_scheme_is_none() {
        assert!(Uri::parse(b"alice@example.com").is_none());
        assert!(Uri::parse(b":x").is_none());
    }

    #[test]
    fn quoted_display_name_with_escapes_and_angle_brackets() {
        let n = NameAddr::parse(br#" "Bob \"<the>\" B" <sip:bob@biloxi.com>;tag=a6c85cf ; x=1"#);
        assert_eq!(n.display, Some(&br#"Bob \"<the>\" B"#[..]));
        assert_eq!(n.user(), Some(&b"bob"[..]));
        assert_eq!(n.tag(), Some(&b"a6c85cf"[..]));
    }

    #[test]
    fn addr_spec_params_belong_to_the_header() {
        let n = NameAddr::parse(b"sip:carol@chicago.com;TAG=88,sip:x@y");
        assert_eq!(n.user(), Some(&b"carol"[..]));
        assert_eq!(n.tag(), Some(&b"88"[..]));
    }

    #[test]
    fn token_display_name() {
        let n = NameAddr::parse(b"Anonymous <sip:c8oqz84zk7z@privacy.org>;tag=hyh8");
        assert_eq!(n.display, Some(&b"Anonymous"[..]));
        assert_eq!(n.tag(), Some(&b"hyh8"[..]));
    }

    #[test]
    fn unterminated_quote_gives_no_uri() {
        let n = NameAddr::parse(br#""Bob <sip:bob@x>"#);
        assert!(n.uri.is_none());
        assert!(n.tag().is_none());
    }

    #[test]
    fn param_lookup_is_case_insensitive_and_unquotes() {
        assert_eq!(
            param(b"cause=16 ; TEXT=\"Normal\"", b"text"),
            Some(&b"Normal"[..])
        );
        assert_eq!(param(b"lr;x", b"lr"), Some(&b""[..]));
        assert_eq!(param(b"lr", b"tag"), None);
    }

    #[test]
    fn token_param_is_param_on_every_short_list() {
        // Every list of up to 6 bytes over an alphabet of the characters
        // that matter, for a one- and a three-letter name.
        const ALPHABET: &[u8] = b"tAg=; \"x";
        let mut list = Vec::new();
        for len in 0..=6u32 {
            for n in 0..ALPHABET.len().pow(len) {
                list.clear();
                let mut n = n;
                for _ in 0..len {
                    list.push(ALPHABET[n % ALPHABET.len()]);
                    n /= ALPHABET.len();
                }
                for name in [&b"tag"[..], b"x"] {
                    assert_eq!(token_param(&list, name), param(&list, name), "{list:?}");
                }
            }
        }
        let via = b"branch=z9hG4bK-1 ; rport;received=\"10.0.0.1\"";
        for name in [&b"branch"[..], b"rport", b"received", b"ttl"] {
            assert_eq!(token_param(via, name), param(via, name));
        }
    }

    /// Every list of up to `max` bytes over `alphabet`.
    fn lists(alphabet: &[u8], max: u32) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        for len in 0..=max {
            for n in 0..alphabet.len().pow(len) {
                let mut n = n;
                let mut list = Vec::new();
                for _ in 0..len {
                    list.push(alphabet[n % alphabet.len()]);
                    n /= alphabet.len();
                }
                out.push(list);
            }
        }
        out
    }

    #[test]
    fn elem_param_is_token_param_on_the_first_element() {
        for list in lists(b"tAg=; \",x", 6) {
            for name in [&b"tag"[..], b"x"] {
                let cut = list.split(|&c| c == b',').next().unwrap_or_default();
                assert_eq!(elem_param(&list, name), token_param(cut, name), "{list:?}");
            }
        }
        // Every kind of whitespace, around and inside values.
        for list in lists(b"tag=;\t\r\n\"", 5) {
            let cut = list.split(|&c| c == b',').next().unwrap_or_default();
            assert_eq!(
                elem_param(&list, b"tag"),
                token_param(cut, b"tag"),
                "{list:?}"
            );
        }
        let via = b"branch=z9hG4bK-1 ; rport;received=\"10.0.0.1\" , x;branch=2";
        for name in [&b"branch"[..], b"rport", b"received", b"ttl", b"x"] {
            let cut = via.split(|&c| c == b',').next().unwrap_or_default();
            assert_eq!(elem_param(via, name), token_param(cut, name));
        }
    }

    #[test]
    fn tag_of_is_the_parsed_tag() {
        let mut values = Vec::new();
        for tail in lists(b"tag=;, \"", 5) {
            for head in [
                &b""[..],
                b"<sip:a@b>",
                b"\"A\\\" <x>\" <sip:a@b;tag=u>",
                b"B <sip:a@b",
                b"sip:a@b",
                b"\"open <sip:a@b>",
                b" <sip:a@b> ",
            ] {
                values.push([head, &tail[..]].concat());
                values.push([head, b";", &tail[..]].concat());
            }
        }
        for v in values {
            assert_eq!(tag_of(&v), NameAddr::parse(&v).tag(), "{v:?}");
        }
    }

    #[test]
    fn trim_handles_folding_and_all_whitespace() {
        assert_eq!(trim(b"\r\n\t abc \r\n "), b"abc");
        assert_eq!(trim(b" \r\n"), b"");
    }
}
