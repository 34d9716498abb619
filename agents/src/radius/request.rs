//! A request as the field templates read it (`~*req.User-Name`,
//! `~*vars.*radReqType`), the credentials it carries, and the default
//! request processors.

use std::borrow::Cow;

use serde_json::{Map, Value};
use subsystems::DataProvider;

use super::auth::DigestParams;
use super::dict::Dictionary;
use super::packet::{Code, Packet};
use crate::template::{FieldCfg, ProcessorCfg};

/// Acct-Status-Type.
const ACCT_STATUS_TYPE: u8 = 40;
/// User-Password and CHAP-Password: never shown to the templates.
const SECRET_ATTRS: [u8; 2] = [2, 3];

/// What a request asks for (`*vars.*radReqType`, as CGRateS names it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReqKind {
    /// Access-Request: `*radAuth`.
    Auth,
    /// Accounting Start: `*radAcctStart`.
    AcctStart,
    /// Accounting Interim-Update: `*radAcctUpdate`.
    AcctUpdate,
    /// Accounting Stop: `*radAcctStop`.
    AcctStop,
    /// Any other Accounting-Request (Accounting-On/Off): `*radAcctEvent`.
    AcctOther,
}

impl ReqKind {
    /// The kind of `p`; `None` for a code the agent does not serve.
    #[must_use]
    pub fn of(p: &Packet) -> Option<ReqKind> {
        match p.code {
            Code::AccessRequest => Some(ReqKind::Auth),
            Code::AccountingRequest => Some(match p.attr(ACCT_STATUS_TYPE) {
                Some([0, 0, 0, 1]) => ReqKind::AcctStart,
                Some([0, 0, 0, 2]) => ReqKind::AcctStop,
                Some([0, 0, 0, 3]) => ReqKind::AcctUpdate,
                _ => ReqKind::AcctOther,
            }),
            _ => None,
        }
    }

    /// The `*vars.*radReqType` value.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            ReqKind::Auth => "*radAuth",
            ReqKind::AcctStart => "*radAcctStart",
            ReqKind::AcctUpdate => "*radAcctUpdate",
            ReqKind::AcctStop => "*radAcctStop",
            ReqKind::AcctOther => "*radAcctEvent",
        }
    }
}

/// A request for the templates: `*req.NAME` is the first attribute of
/// that dictionary name (vendor ones too) as text; `*vars.NAME` what the
/// agent knows besides.
pub struct View<'a> {
    /// The request.
    pub packet: &'a Packet,
    /// Names and types.
    pub dict: &'a Dictionary,
    /// `*vars`.
    pub vars: &'a Map<String, Value>,
}

impl DataProvider for View<'_> {
    fn field(&self, path: &str) -> Option<Cow<'_, str>> {
        if let Some(name) = path.strip_prefix("*req.") {
            let def = self.dict.by_name(name)?;
            let raw = if def.vendor == 0 {
                if SECRET_ATTRS.contains(&def.code) {
                    return None;
                }
                self.packet.attr(def.code)?
            } else {
                self.packet.vendor_attr(def.vendor, def.code)?
            };
            return Some(Cow::Owned(self.dict.text(def, raw)));
        }
        let name = path.strip_prefix("*vars.")?;
        self.vars.get(name).map(subsystems::event::value_text)
    }
}

/// The credentials of an Access-Request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credentials {
    /// None given.
    None,
    /// PAP: the password, decrypted.
    Pap(Vec<u8>),
    /// CHAP: CHAP-Password and the challenge.
    Chap {
        /// Ident and response.
        password: Vec<u8>,
        /// CHAP-Challenge or the Request Authenticator.
        challenge: Vec<u8>,
    },
    /// SIP Digest (RFC 5090).
    Digest(Box<DigestParams>),
    /// A User-Password that does not decrypt.
    Malformed,
}

impl Credentials {
    /// The flag naming the method (`*pap`, `*chap`, `*digest`).
    #[must_use]
    pub fn flag(&self) -> &'static str {
        match self {
            Credentials::None => "",
            Credentials::Pap(_) | Credentials::Malformed => "*pap",
            Credentials::Chap { .. } => "*chap",
            Credentials::Digest(_) => "*digest",
        }
    }

    /// Whether they prove `password`.
    #[must_use]
    pub fn check(&self, password: &[u8]) -> bool {
        match self {
            Credentials::None | Credentials::Malformed => false,
            Credentials::Pap(p) => super::auth::same(p, password),
            Credentials::Chap {
                password: cp,
                challenge,
            } => super::auth::chap_ok(cp, password, challenge),
            Credentials::Digest(d) => super::auth::digest_ok(d, password),
        }
    }
}

/// The credentials in `p`, read with the client's `secret`.
#[must_use]
pub fn credentials(p: &Packet, secret: &[u8]) -> Credentials {
    let text = |t: u8| {
        p.attr(t)
            .map(|v| String::from_utf8_lossy(v).into_owned())
            .unwrap_or_default()
    };
    if let Some(hidden) = p.attr(2) {
        return super::auth::decrypt_password(hidden, secret, &p.authenticator)
            .map_or(Credentials::Malformed, Credentials::Pap);
    }
    if let Some(cp) = p.attr(3) {
        return Credentials::Chap {
            password: cp.to_vec(),
            challenge: p.attr(60).unwrap_or(&p.authenticator).to_vec(),
        };
    }
    if p.attr(103).is_some() {
        let username = match text(115) {
            u if u.is_empty() => text(1),
            u => u,
        };
        return Credentials::Digest(Box::new(DigestParams {
            response: text(103),
            realm: text(104),
            nonce: text(105),
            method: text(108),
            uri: text(109),
            qop: text(110),
            algorithm: text(111),
            cnonce: text(113),
            nonce_count: text(114),
            username,
        }));
    }
    if let Some(resp) = p.attr(206) {
        return Credentials::Digest(Box::new(sterman(p, resp)));
    }
    Credentials::None
}

/// Digest as draft-sterman-aaa-sip (what FreeRADIUS 3's `radclient` and
/// Kamailio's `auth_radius` send): Digest-Response (206) and
/// Digest-Attributes (207), each holding one sub-attribute (1 realm, 2
/// nonce, 3 method, 4 URI, 5 qop, 6 algorithm, 8 cnonce, 9 nonce count,
/// 10 user name).
fn sterman(p: &Packet, response: &[u8]) -> DigestParams {
    let mut d = DigestParams {
        response: String::from_utf8_lossy(response).into_owned(),
        ..DigestParams::default()
    };
    for a in p.attributes.iter().filter(|a| a.typ == 207) {
        let [typ, len, rest @ ..] = a.value.as_slice() else {
            continue;
        };
        let Some(v) = rest.get(..usize::from(*len).saturating_sub(2)) else {
            continue;
        };
        let v = String::from_utf8_lossy(v).into_owned();
        match typ {
            1 => d.realm = v,
            2 => d.nonce = v,
            3 => d.method = v,
            4 => d.uri = v,
            5 => d.qop = v,
            6 => d.algorithm = v,
            8 => d.cnonce = v,
            9 => d.nonce_count = v,
            10 => d.username = v,
            _ => {}
        }
    }
    if d.username.is_empty() {
        d.username = p
            .attr(1)
            .map(|v| String::from_utf8_lossy(v).into_owned())
            .unwrap_or_default();
    }
    d
}

fn field(path: &str, kind: &str, value: &str, mandatory: bool) -> FieldCfg {
    FieldCfg {
        path: path.into(),
        kind: kind.into(),
        value: value.into(),
        mandatory,
        ..FieldCfg::default()
    }
}

/// The fields every default processor writes: Account = Subject =
/// User-Name, Destination = Called-Station-Id, OriginID =
/// Acct-Session-Id, OriginHost = the NAS's address.
fn common(origin_mandatory: bool) -> Vec<FieldCfg> {
    vec![
        field("*cgreq.ToR", "*constant", "*voice", false),
        field("*cgreq.Category", "*constant", "call", false),
        field("*cgreq.RequestType", "*constant", "*prepaid", false),
        field(
            "*cgreq.OriginID",
            "*variable",
            "~*req.Acct-Session-Id",
            origin_mandatory,
        ),
        field("*cgreq.OriginHost", "*variable", "~*vars.RemoteIP", false),
        field("*cgreq.Account", "*variable", "~*req.User-Name", true),
        field("*cgreq.Subject", "*variable", "~*req.User-Name", false),
        field(
            "*cgreq.Destination",
            "*variable",
            "~*req.Called-Station-Id",
            true,
        ),
        field(
            "*cgreq.Calling-Station-Id",
            "*variable",
            "~*req.Calling-Station-Id",
            false,
        ),
        field("*cgreq.Source", "*constant", "RadiusAgent", false),
    ]
}

fn kind_filter(k: ReqKind) -> Vec<String> {
    vec![format!("*string:~*vars.*radReqType:{}", k.name())]
}

/// The processors used when the configuration names none.
#[must_use]
pub fn default_processors() -> Vec<ProcessorCfg> {
    let flags = |f: &[&str]| f.iter().map(|s| (*s).to_owned()).collect();
    let auth = ProcessorCfg {
        id: "radius-auth".into(),
        filters: kind_filter(ReqKind::Auth),
        flags: flags(&["*authorize", "*accounts", "*attributes"]),
        request_fields: common(false),
        reply_fields: vec![
            field(
                "*vars.UserPassword",
                "*variable",
                "~*cgrep.Attributes.UserPassword",
                false,
            ),
            field(
                "*rep.Session-Timeout",
                "*variable",
                "~*cgrep.MaxUsage{*duration_seconds}",
                false,
            ),
        ],
        continue_: false,
    };
    let start = ProcessorCfg {
        id: "radius-acct-start".into(),
        filters: kind_filter(ReqKind::AcctStart),
        // No *attributes: what AttributeS adds (the password) would be
        // kept in the session and its CDR.
        flags: flags(&["*initiate", "*accounts", "*extra_vsas"]),
        request_fields: common(true),
        ..ProcessorCfg::default()
    };
    let mut upd_fields = common(true);
    upd_fields.push(field(
        "*cgreq.LastUsed",
        "*variable",
        "~*vars.LastUsed",
        false,
    ));
    let update = ProcessorCfg {
        id: "radius-acct-update".into(),
        filters: kind_filter(ReqKind::AcctUpdate),
        flags: flags(&["*update", "*accounts"]),
        request_fields: upd_fields,
        ..ProcessorCfg::default()
    };
    let mut stop_fields = common(true);
    stop_fields.push(field(
        "*cgreq.Usage",
        "*variable",
        "~*req.Acct-Session-Time;s",
        true,
    ));
    let stop = ProcessorCfg {
        id: "radius-acct-stop".into(),
        filters: kind_filter(ReqKind::AcctStop),
        flags: flags(&["*terminate", "*accounts", "*cdrs", "*extra_vsas"]),
        request_fields: stop_fields,
        ..ProcessorCfg::default()
    };
    vec![auth, start, update, stop]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::radius::packet::Attr;

    #[test]
    fn the_view_reads_names_vendors_and_hides_passwords() {
        let d = Dictionary::builtin();
        let p = Packet {
            code: Code::AccountingRequest,
            identifier: 1,
            authenticator: [0; 16],
            attributes: vec![
                Attr::new(1, b"1001".to_vec()),
                Attr::new(2, vec![1; 16]),
                Attr::new(40, vec![0, 0, 0, 3]),
                Attr::vendor_specific(9, 25, b"12:00:00.000 UTC Mon Jan 1 2024").unwrap(),
            ],
        };
        let mut vars = Map::new();
        vars.insert("*radReqType".into(), "*radAcctUpdate".into());
        let v = View {
            packet: &p,
            dict: &d,
            vars: &vars,
        };
        assert_eq!(v.field("*req.User-Name").as_deref(), Some("1001"));
        assert_eq!(
            v.field("*req.Acct-Status-Type").as_deref(),
            Some("Interim-Update")
        );
        assert_eq!(
            v.field("*req.h323-setup-time").as_deref(),
            Some("12:00:00.000 UTC Mon Jan 1 2024")
        );
        assert_eq!(v.field("*req.User-Password"), None);
        assert_eq!(
            v.field("*vars.*radReqType").as_deref(),
            Some("*radAcctUpdate")
        );
        assert_eq!(ReqKind::of(&p), Some(ReqKind::AcctUpdate));
    }
}

#[cfg(test)]
mod sterman_tests {
    use super::*;
    use crate::radius::packet::Attr;

    #[test]
    fn draft_sterman_digest_is_read_and_checked() {
        let mut d = DigestParams {
            realm: "r".into(),
            nonce: "n".into(),
            method: "INVITE".into(),
            uri: "sip:x".into(),
            username: "1001".into(),
            ..DigestParams::default()
        };
        d.response = crate::radius::auth::digest_response(&d, b"pw");
        let sub = |t: u8, v: &str| {
            let mut b = vec![t, u8::try_from(v.len() + 2).unwrap()];
            b.extend_from_slice(v.as_bytes());
            Attr::new(207, b)
        };
        let p = Packet {
            code: Code::AccessRequest,
            identifier: 1,
            authenticator: [0; 16],
            attributes: vec![
                Attr::new(1, b"1001".to_vec()),
                Attr::new(206, d.response.clone().into_bytes()),
                sub(1, "r"),
                sub(2, "n"),
                sub(3, "INVITE"),
                sub(4, "sip:x"),
            ],
        };
        let c = credentials(&p, b"s");
        assert_eq!(c, Credentials::Digest(Box::new(d)));
        assert!(c.check(b"pw"));
        assert!(!c.check(b"other"));
    }
}
