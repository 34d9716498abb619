//! RADIUS packets (RFC 2865 section 3): code, identifier, length,
//! authenticator and attributes, Vendor-Specific ones (type 26) included.
//!
//! Attributes are kept as raw `(type, value)` pairs so that decoding and
//! encoding round-trip byte for byte; [`Attr::vendor`] reads a
//! Vendor-Specific value in RFC 2865's recommended format (vendor id,
//! then vendor type, length, value sub-attributes).

use crate::Error;

/// The smallest packet: the 20-byte header.
pub const HEADER_LEN: usize = 20;
/// The largest packet (RFC 2865 section 3).
pub const MAX_LEN: usize = 4096;
/// Vendor-Specific (RFC 2865 section 5.26).
pub const VENDOR_SPECIFIC: u8 = 26;

/// A packet's code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Code {
    /// 1 (RFC 2865).
    AccessRequest,
    /// 2.
    AccessAccept,
    /// 3.
    AccessReject,
    /// 4 (RFC 2866).
    AccountingRequest,
    /// 5.
    AccountingResponse,
    /// 11.
    AccessChallenge,
    /// 40 (RFC 5176).
    DisconnectRequest,
    /// 41.
    DisconnectAck,
    /// 42.
    DisconnectNak,
    /// 43.
    CoaRequest,
    /// 44.
    CoaAck,
    /// 45.
    CoaNak,
    /// Any other code, kept as is.
    Other(u8),
}

impl Code {
    /// The code's number.
    #[must_use]
    pub fn number(self) -> u8 {
        match self {
            Code::AccessRequest => 1,
            Code::AccessAccept => 2,
            Code::AccessReject => 3,
            Code::AccountingRequest => 4,
            Code::AccountingResponse => 5,
            Code::AccessChallenge => 11,
            Code::DisconnectRequest => 40,
            Code::DisconnectAck => 41,
            Code::DisconnectNak => 42,
            Code::CoaRequest => 43,
            Code::CoaAck => 44,
            Code::CoaNak => 45,
            Code::Other(n) => n,
        }
    }

    /// The code of number `n`.
    #[must_use]
    pub fn from_number(n: u8) -> Code {
        match n {
            1 => Code::AccessRequest,
            2 => Code::AccessAccept,
            3 => Code::AccessReject,
            4 => Code::AccountingRequest,
            5 => Code::AccountingResponse,
            11 => Code::AccessChallenge,
            40 => Code::DisconnectRequest,
            41 => Code::DisconnectAck,
            42 => Code::DisconnectNak,
            43 => Code::CoaRequest,
            44 => Code::CoaAck,
            45 => Code::CoaNak,
            n => Code::Other(n),
        }
    }
}

/// One attribute: its type and raw value (at most 253 bytes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attr {
    /// The attribute type (26 for Vendor-Specific).
    pub typ: u8,
    /// The value as sent.
    pub value: Vec<u8>,
}

/// One sub-attribute of a Vendor-Specific attribute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VendorAttr<'a> {
    /// The vendor's SMI number.
    pub vendor: u32,
    /// The vendor's attribute type.
    pub typ: u8,
    /// The value.
    pub value: &'a [u8],
}

impl Attr {
    /// A standard attribute.
    #[must_use]
    pub fn new(typ: u8, value: impl Into<Vec<u8>>) -> Attr {
        Attr {
            typ,
            value: value.into(),
        }
    }

    /// A Vendor-Specific attribute holding one sub-attribute; `None` when
    /// the value is longer than one attribute holds.
    #[must_use]
    pub fn vendor_specific(vendor: u32, typ: u8, value: &[u8]) -> Option<Attr> {
        let sub_len = u8::try_from(value.len() + 2).ok()?;
        if value.len() + 8 > 255 {
            return None;
        }
        let mut v = Vec::with_capacity(value.len() + 6);
        v.extend_from_slice(&vendor.to_be_bytes());
        v.push(typ);
        v.push(sub_len);
        v.extend_from_slice(value);
        Some(Attr::new(VENDOR_SPECIFIC, v))
    }

    /// The sub-attributes of a Vendor-Specific attribute in the
    /// recommended format; `None` for another attribute or a value in
    /// another format.
    #[must_use]
    pub fn vendor(&self) -> Option<Vec<VendorAttr<'_>>> {
        if self.typ != VENDOR_SPECIFIC {
            return None;
        }
        let (id, mut rest) = self.value.split_first_chunk::<4>()?;
        let vendor = u32::from_be_bytes(*id);
        let mut out = Vec::new();
        while !rest.is_empty() {
            let [typ, len, ..] = *rest else { return None };
            let len = usize::from(len);
            if len < 2 || len > rest.len() {
                return None;
            }
            out.push(VendorAttr {
                vendor,
                typ,
                value: rest.get(2..len)?,
            });
            rest = rest.get(len..)?;
        }
        Some(out)
    }
}

/// A RADIUS packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet {
    /// The code.
    pub code: Code,
    /// The identifier that matches a reply to its request.
    pub identifier: u8,
    /// The Request or Response Authenticator.
    pub authenticator: [u8; 16],
    /// The attributes in order.
    pub attributes: Vec<Attr>,
}

impl Packet {
    /// Reads a packet. Bytes after the header's length are padding and
    /// ignored (RFC 2865 section 3).
    ///
    /// # Errors
    /// [`Error::Radius`] for a packet shorter than its header or its
    /// length, a length outside 20..=4096 or an attribute whose length
    /// runs past the packet or is below 2.
    pub fn decode(bytes: &[u8]) -> Result<Packet, Error> {
        let bad = |m: &str| Error::Radius(m.to_owned());
        let Some(head) = bytes.first_chunk::<HEADER_LEN>() else {
            return Err(bad("shorter than the 20-byte header"));
        };
        let len = usize::from(u16::from_be_bytes([head[2], head[3]]));
        if !(HEADER_LEN..=MAX_LEN).contains(&len) {
            return Err(bad("length outside 20..4096"));
        }
        let body = bytes
            .get(HEADER_LEN..len)
            .ok_or_else(|| bad("shorter than its length field"))?;
        let mut authenticator = [0u8; 16];
        authenticator.copy_from_slice(&head[4..HEADER_LEN]);
        let mut attributes = Vec::new();
        let mut rest = body;
        while !rest.is_empty() {
            let [typ, alen, ..] = *rest else {
                return Err(bad("truncated attribute header"));
            };
            let alen = usize::from(alen);
            if alen < 2 {
                return Err(bad("attribute length below 2"));
            }
            let value = rest
                .get(2..alen)
                .ok_or_else(|| bad("attribute runs past the packet"))?;
            attributes.push(Attr::new(typ, value));
            rest = rest.get(alen..).unwrap_or_default();
        }
        Ok(Packet {
            code: Code::from_number(head[0]),
            identifier: head[1],
            authenticator,
            attributes,
        })
    }

    /// The packet's bytes, its length field set.
    ///
    /// # Errors
    /// [`Error::Radius`] for an attribute value over 253 bytes or a packet
    /// over 4096 bytes.
    pub fn encode(&self) -> Result<Vec<u8>, Error> {
        let mut out = Vec::with_capacity(64);
        out.push(self.code.number());
        out.push(self.identifier);
        out.extend_from_slice(&[0, 0]);
        out.extend_from_slice(&self.authenticator);
        for a in &self.attributes {
            let len = u8::try_from(a.value.len() + 2)
                .map_err(|_| Error::Radius(format!("attribute {} over 253 bytes", a.typ)))?;
            out.push(a.typ);
            out.push(len);
            out.extend_from_slice(&a.value);
        }
        let len = u16::try_from(out.len())
            .ok()
            .filter(|l| usize::from(*l) <= MAX_LEN)
            .ok_or_else(|| Error::Radius("packet over 4096 bytes".into()))?;
        out[2..4].copy_from_slice(&len.to_be_bytes());
        Ok(out)
    }

    /// The first attribute of type `typ`.
    #[must_use]
    pub fn attr(&self, typ: u8) -> Option<&[u8]> {
        self.attributes
            .iter()
            .find(|a| a.typ == typ)
            .map(|a| a.value.as_slice())
    }

    /// The first vendor sub-attribute `(vendor, typ)`.
    #[must_use]
    pub fn vendor_attr(&self, vendor: u32, typ: u8) -> Option<&[u8]> {
        self.attributes
            .iter()
            .filter_map(Attr::vendor)
            .flatten()
            .find(|v| v.vendor == vendor && v.typ == typ)
            .map(|v| v.value)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn decodes_a_known_packet_and_its_vsa() {
        let mut p = Packet {
            code: Code::AccountingRequest,
            identifier: 7,
            authenticator: [1; 16],
            attributes: vec![Attr::new(1, b"1001".to_vec())],
        };
        p.attributes
            .push(Attr::vendor_specific(9, 1, b"h323-call-origin=answer").unwrap());
        let bytes = p.encode().unwrap();
        assert_eq!(bytes[0], 4);
        assert_eq!(
            usize::from(u16::from_be_bytes([bytes[2], bytes[3]])),
            bytes.len()
        );
        let mut padded = bytes.clone();
        padded.extend_from_slice(&[0, 0, 0]);
        let back = Packet::decode(&padded).unwrap();
        assert_eq!(back, p);
        assert_eq!(
            back.vendor_attr(9, 1),
            Some(&b"h323-call-origin=answer"[..])
        );
        assert_eq!(back.attr(1), Some(&b"1001"[..]));
    }

    #[test]
    fn refuses_bad_lengths() {
        assert!(Packet::decode(&[1, 2, 0]).is_err());
        let mut p = vec![1, 2, 0, 19];
        p.extend_from_slice(&[0; 16]);
        assert!(Packet::decode(&p).is_err());
        let mut p = vec![1, 2, 0, 23];
        p.extend_from_slice(&[0; 16]);
        p.extend_from_slice(&[1, 5, b'a']);
        assert!(Packet::decode(&p).is_err(), "attribute past the end");
        let mut p = vec![1, 2, 0, 22];
        p.extend_from_slice(&[0; 16]);
        p.extend_from_slice(&[1, 1]);
        assert!(Packet::decode(&p).is_err(), "attribute length 1");
    }

    proptest! {
        #[test]
        fn encode_then_decode_round_trips(
            code in any::<u8>(),
            identifier in any::<u8>(),
            authenticator in any::<[u8; 16]>(),
            attrs in proptest::collection::vec((any::<u8>(), proptest::collection::vec(any::<u8>(), 0..40)), 0..20),
        ) {
            let p = Packet {
                code: Code::from_number(code),
                identifier,
                authenticator,
                attributes: attrs.into_iter().map(|(t, v)| Attr::new(t, v)).collect(),
            };
            let bytes = p.encode().unwrap();
            prop_assert_eq!(Packet::decode(&bytes).unwrap(), p);
        }

        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            if let Ok(p) = Packet::decode(&bytes) {
                let again = Packet::decode(&p.encode().unwrap()).unwrap();
                prop_assert_eq!(again, p);
            }
        }
    }
}
