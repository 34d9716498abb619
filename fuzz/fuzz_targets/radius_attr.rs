//! Any datagram a NAS could send is read without panicking: the packet
//! decoder (decode, encode, decode again gives the same packet), the
//! Vendor-Specific sub-attributes, every attribute's text through the
//! dictionary and back, the credentials (PAP, CHAP, Digest), the
//! authenticator checks, and the same bytes read as a dictionary file.
#![no_main]

use agents::radius::auth;
use agents::radius::dict::Dictionary;
use agents::radius::packet::{Attr, Packet};
use agents::radius::request;
use libfuzzer_sys::fuzz_target;

static DICT: std::sync::OnceLock<Dictionary> = std::sync::OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let dict = DICT.get_or_init(Dictionary::builtin);
    if let Ok(p) = Packet::decode(data) {
        let bytes = p.encode().expect("a decoded packet encodes");
        assert_eq!(Packet::decode(&bytes).expect("re-decodes"), p);
        for a in &p.attributes {
            if let Some(subs) = a.vendor() {
                for v in subs {
                    if let Some(def) = dict.by_code(v.vendor, v.typ) {
                        let text = dict.text(def, v.value);
                        let _ = dict.encode(def, &text);
                    }
                    let again = Attr::vendor_specific(v.vendor, v.typ, v.value);
                    assert!(again.is_some() || v.value.len() > 247);
                }
            } else if let Some(def) = dict.by_code(0, a.typ) {
                let text = dict.text(def, &a.value);
                let _ = dict.encode(def, &text);
            }
        }
        let c = request::credentials(&p, b"secret");
        let _ = c.check(b"password");
        let _ = request::ReqKind::of(&p);
    }
    let _ = auth::request_authenticator_ok(data, b"secret");
    let _ = auth::check_message_authenticator(data, None, b"secret");
    let _ = auth::decrypt_password(data, b"secret", &[0; 16]);
    let mut d = Dictionary::default();
    let _ = d.parse_text("fuzz", &String::from_utf8_lossy(data));
});
