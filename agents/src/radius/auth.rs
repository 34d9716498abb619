//! RADIUS authenticators and user authentication: the Request
//! Authenticator of Accounting and Disconnect/CoA requests (RFC 2866
//! section 3, RFC 5176 section 2.3), the Response Authenticator (RFC 2865
//! section 3), Message-Authenticator (HMAC-MD5, RFC 3579 section 3.2),
//! PAP's User-Password hiding (RFC 2865 section 5.2), CHAP (RFC 1994 over
//! RFC 2865 section 5.3) and SIP Digest (RFC 5090 over RFC 2617).

use hmac::{Hmac, Mac};
use md5::{Digest, Md5};

use super::packet::HEADER_LEN;

/// Message-Authenticator's attribute type.
pub const MESSAGE_AUTHENTICATOR: u8 = 80;

fn md5(parts: &[&[u8]]) -> [u8; 16] {
    let mut h = Md5::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

/// Equality without an early exit.
pub(crate) fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The packet's bytes up to its length field (padding cut off).
fn packet(bytes: &[u8]) -> Option<&[u8]> {
    let len = usize::from(u16::from_be_bytes([*bytes.get(2)?, *bytes.get(3)?]));
    bytes.get(..len).filter(|p| p.len() >= HEADER_LEN)
}

/// MD5 over the packet with `auth` in place of its authenticator, then
/// the secret.
fn digest_with(bytes: &[u8], auth: &[u8; 16], secret: &[u8]) -> [u8; 16] {
    let head = bytes.get(..4).unwrap_or_default();
    let attrs = bytes.get(HEADER_LEN..).unwrap_or_default();
    md5(&[head, auth, attrs, secret])
}

/// Whether the Request Authenticator of an Accounting-Request,
/// Disconnect-Request or CoA-Request is MD5(code, id, length, 16 zero
/// bytes, attributes, secret).
#[must_use]
pub fn request_authenticator_ok(bytes: &[u8], secret: &[u8]) -> bool {
    let Some(p) = packet(bytes) else { return false };
    same(&digest_with(p, &[0; 16], secret), &p[4..HEADER_LEN])
}

/// Sets the Request Authenticator of an encoded Accounting, Disconnect
/// or CoA request (after its Message-Authenticator, if any, is set).
pub fn sign_request(bytes: &mut [u8], secret: &[u8]) {
    if bytes.len() < HEADER_LEN {
        return;
    }
    let a = digest_with(bytes, &[0; 16], secret);
    bytes[4..HEADER_LEN].copy_from_slice(&a);
}

/// Sets the Response Authenticator of an encoded reply to the request
/// whose authenticator is `request_auth` (after its
/// Message-Authenticator, if any, is set).
pub fn sign_response(bytes: &mut [u8], request_auth: &[u8; 16], secret: &[u8]) {
    if bytes.len() < HEADER_LEN {
        return;
    }
    let a = digest_with(bytes, request_auth, secret);
    bytes[4..HEADER_LEN].copy_from_slice(&a);
}

/// Whether a reply's Response Authenticator is right for the request
/// that had `request_auth`.
#[must_use]
pub fn response_authenticator_ok(bytes: &[u8], request_auth: &[u8; 16], secret: &[u8]) -> bool {
    let Some(p) = packet(bytes) else { return false };
    same(&digest_with(p, request_auth, secret), &p[4..HEADER_LEN])
}

/// Where the value of the first Message-Authenticator is, in bytes.
fn message_authenticator_at(p: &[u8]) -> Option<usize> {
    let mut i = HEADER_LEN;
    while i + 2 <= p.len() {
        let (typ, len) = (p[i], usize::from(p[i + 1]));
        if len < 2 {
            return None;
        }
        if typ == MESSAGE_AUTHENTICATOR {
            return (len == 18 && i + 18 <= p.len()).then_some(i + 2);
        }
        i += len;
    }
    None
}

fn hmac(parts: &[&[u8]], secret: &[u8]) -> [u8; 16] {
    // HMAC takes keys of any length.
    let Ok(mut m) = Hmac::<Md5>::new_from_slice(secret) else {
        return [0; 16];
    };
    for p in parts {
        m.update(p);
    }
    m.finalize().into_bytes().into()
}

/// HMAC-MD5 over the packet with the Message-Authenticator's value
/// zeroed and `auth` (if given) as the authenticator.
fn message_hmac(p: &[u8], at: usize, auth: Option<&[u8; 16]>, secret: &[u8]) -> [u8; 16] {
    let head = p.get(..4).unwrap_or_default();
    let own = p.get(4..HEADER_LEN).unwrap_or_default();
    let a: &[u8] = auth.map_or(own, |a| a.as_slice());
    let before = p.get(HEADER_LEN..at).unwrap_or_default();
    let after = p.get(at + 16..).unwrap_or_default();
    hmac(&[head, a, before, &[0; 16], after], secret)
}

/// What a packet's Message-Authenticator says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageAuth {
    /// The packet has none.
    Absent,
    /// It is right.
    Valid,
    /// It is wrong (or malformed): the packet must be dropped.
    Invalid,
}

/// Checks the Message-Authenticator of a request (`request_auth` None:
/// over its own authenticator; for Accounting and Disconnect requests
/// RFC 5176 section 3.3 computes it over 16 zero bytes) or a reply
/// (`request_auth`: the request's authenticator).
#[must_use]
pub fn check_message_authenticator(
    bytes: &[u8],
    request_auth: Option<&[u8; 16]>,
    secret: &[u8],
) -> MessageAuth {
    let Some(p) = packet(bytes) else {
        return MessageAuth::Invalid;
    };
    let present = super::packet::Packet::decode(p)
        .map(|d| d.attr(MESSAGE_AUTHENTICATOR).is_some())
        .unwrap_or(false);
    if !present {
        return MessageAuth::Absent;
    }
    let Some(at) = message_authenticator_at(p) else {
        return MessageAuth::Invalid;
    };
    let want = message_hmac(p, at, request_auth, secret);
    if same(&want, &p[at..at + 16]) {
        MessageAuth::Valid
    } else {
        MessageAuth::Invalid
    }
}

/// Fills the (zeroed) Message-Authenticator of an encoded packet;
/// `request_auth` as in [`check_message_authenticator`].
pub fn set_message_authenticator(bytes: &mut [u8], request_auth: Option<&[u8; 16]>, secret: &[u8]) {
    let Some(at) = message_authenticator_at(bytes) else {
        return;
    };
    let m = message_hmac(bytes, at, request_auth, secret);
    bytes[at..at + 16].copy_from_slice(&m);
}

/// PAP: the password hidden in a User-Password value (RFC 2865 section
/// 5.2), its NUL padding removed; `None` for a value that is not a
/// multiple of 16 bytes in 16..=128.
#[must_use]
pub fn decrypt_password(hidden: &[u8], secret: &[u8], request_auth: &[u8; 16]) -> Option<Vec<u8>> {
    if hidden.is_empty() || hidden.len() % 16 != 0 || hidden.len() > 128 {
        return None;
    }
    let mut out = Vec::with_capacity(hidden.len());
    let mut prev: &[u8] = request_auth;
    for c in hidden.chunks(16) {
        let b = md5(&[secret, prev]);
        out.extend(c.iter().zip(b).map(|(x, y)| x ^ y));
        prev = c;
    }
    while out.last() == Some(&0) {
        out.pop();
    }
    Some(out)
}

/// PAP the other way (a NAS's side; for tests and tools).
#[must_use]
pub fn encrypt_password(password: &[u8], secret: &[u8], request_auth: &[u8; 16]) -> Vec<u8> {
    let mut p = password.to_vec();
    let padded = p.len().div_ceil(16).max(1) * 16;
    p.resize(padded, 0);
    let mut out: Vec<u8> = Vec::with_capacity(p.len());
    for (i, c) in p.chunks(16).enumerate() {
        let prev: &[u8] = if i == 0 {
            request_auth
        } else {
            out.get((i - 1) * 16..i * 16).unwrap_or_default()
        };
        let b = md5(&[secret, prev]);
        let block: Vec<u8> = c.iter().zip(b).map(|(x, y)| x ^ y).collect();
        out.extend(block);
    }
    out
}

/// CHAP: whether `chap_password` (CHAP ident, then the 16-byte response)
/// is MD5(ident, password, challenge); the challenge is CHAP-Challenge,
/// else the Request Authenticator (RFC 2865 section 2.2).
#[must_use]
pub fn chap_ok(chap_password: &[u8], password: &[u8], challenge: &[u8]) -> bool {
    let [ident, response @ ..] = chap_password else {
        return false;
    };
    response.len() == 16 && same(&md5(&[&[*ident], password, challenge]), response)
}

/// The RFC 5090 Digest attributes of one request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DigestParams {
    /// Digest-Response: 32 hex digits.
    pub response: String,
    /// Digest-Realm.
    pub realm: String,
    /// Digest-Nonce.
    pub nonce: String,
    /// Digest-Method (`INVITE`).
    pub method: String,
    /// Digest-URI.
    pub uri: String,
    /// Digest-Qop (`auth`, or empty).
    pub qop: String,
    /// Digest-Algorithm (`MD5` or empty; `MD5-sess`).
    pub algorithm: String,
    /// Digest-CNonce.
    pub cnonce: String,
    /// Digest-Nonce-Count.
    pub nonce_count: String,
    /// Digest-Username.
    pub username: String,
}

fn hex32(d: [u8; 16]) -> String {
    super::dict::hex(&d).split_off(2)
}

/// Digest: whether the response is right for `password` (RFC 2617
/// section 3.2.2.1; `auth-int` is refused).
#[must_use]
pub fn digest_ok(p: &DigestParams, password: &[u8]) -> bool {
    !p.qop.eq_ignore_ascii_case("auth-int")
        && same(
            digest_response(p, password).as_bytes(),
            p.response.to_ascii_lowercase().as_bytes(),
        )
}

/// The digest response a SIP UA computes for `password` (RFC 2617
/// section 3.2.2.1).
#[must_use]
pub fn digest_response(p: &DigestParams, password: &[u8]) -> String {
    let mut ha1 = hex32(md5(&[
        p.username.as_bytes(),
        b":",
        p.realm.as_bytes(),
        b":",
        password,
    ]));
    if p.algorithm.eq_ignore_ascii_case("MD5-sess") {
        ha1 = hex32(md5(&[
            ha1.as_bytes(),
            b":",
            p.nonce.as_bytes(),
            b":",
            p.cnonce.as_bytes(),
        ]));
    }
    let ha2 = hex32(md5(&[p.method.as_bytes(), b":", p.uri.as_bytes()]));
    if p.qop.is_empty() {
        hex32(md5(&[
            ha1.as_bytes(),
            b":",
            p.nonce.as_bytes(),
            b":",
            ha2.as_bytes(),
        ]))
    } else {
        hex32(md5(&[
            ha1.as_bytes(),
            b":",
            p.nonce.as_bytes(),
            b":",
            p.nonce_count.as_bytes(),
            b":",
            p.cnonce.as_bytes(),
            b":",
            p.qop.as_bytes(),
            b":",
            ha2.as_bytes(),
        ]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::radius::packet::{Attr, Code, Packet};

    #[test]
    fn rfc2617_example_digest() {
        // RFC 2617 section 3.5.
        let p = DigestParams {
            response: "6629fae49393a05397450978507c4ef1".into(),
            realm: "testrealm@host.com".into(),
            nonce: "dcd98b7102dd2f0e8b11d0f600bfb0c093".into(),
            method: "GET".into(),
            uri: "/dir/index.html".into(),
            qop: "auth".into(),
            cnonce: "0a4f113b".into(),
            nonce_count: "00000001".into(),
            username: "Mufasa".into(),
            ..DigestParams::default()
        };
        assert!(digest_ok(&p, b"Circle Of Life"));
        assert!(!digest_ok(&p, b"circle of life"));
        assert_eq!(digest_response(&p, b"Circle Of Life"), p.response);
    }

    #[test]
    fn pap_round_trips_and_a_wrong_secret_garbles() {
        let ra = [7u8; 16];
        for pw in [
            &b"x"[..],
            b"exactly16bytes!!",
            b"a password longer than sixteen bytes",
        ] {
            let h = encrypt_password(pw, b"s3cret", &ra);
            assert_eq!(h.len() % 16, 0);
            assert_eq!(decrypt_password(&h, b"s3cret", &ra).unwrap(), pw);
            assert_ne!(decrypt_password(&h, b"other", &ra).unwrap(), pw);
        }
        assert!(decrypt_password(&[1; 15], b"s", &ra).is_none());
    }

    #[test]
    fn chap() {
        let challenge = [3u8; 16];
        let mut cp = vec![9u8];
        cp.extend_from_slice(&md5(&[&[9], b"pw", &challenge]));
        assert!(chap_ok(&cp, b"pw", &challenge));
        assert!(!chap_ok(&cp, b"pw2", &challenge));
        assert!(!chap_ok(&cp[..10], b"pw", &challenge));
    }

    #[test]
    fn authenticators_and_message_authenticator() {
        let p = Packet {
            code: Code::AccountingRequest,
            identifier: 1,
            authenticator: [0; 16],
            attributes: vec![
                Attr::new(1, b"1001".to_vec()),
                Attr::new(MESSAGE_AUTHENTICATOR, vec![0; 16]),
            ],
        };
        let mut b = p.encode().unwrap();
        set_message_authenticator(&mut b, Some(&[0; 16]), b"k");
        sign_request(&mut b, b"k");
        assert!(request_authenticator_ok(&b, b"k"));
        assert!(!request_authenticator_ok(&b, b"x"));
        assert_eq!(
            check_message_authenticator(&b, Some(&[0; 16]), b"k"),
            MessageAuth::Valid
        );
        assert_eq!(
            check_message_authenticator(&b, Some(&[0; 16]), b"x"),
            MessageAuth::Invalid
        );
        let req_auth: [u8; 16] = b[4..20].try_into().unwrap();
        let mut reply = Packet {
            code: Code::AccountingResponse,
            identifier: 1,
            authenticator: req_auth,
            attributes: vec![Attr::new(MESSAGE_AUTHENTICATOR, vec![0; 16])],
        }
        .encode()
        .unwrap();
        set_message_authenticator(&mut reply, Some(&req_auth), b"k");
        sign_response(&mut reply, &req_auth, b"k");
        assert!(response_authenticator_ok(&reply, &req_auth, b"k"));
        assert!(!response_authenticator_ok(&reply, &[1; 16], b"k"));
        assert_eq!(
            check_message_authenticator(&reply, Some(&req_auth), b"k"),
            MessageAuth::Valid
        );
    }
}
