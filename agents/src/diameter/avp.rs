//! Diameter AVPs (RFC 6733 §4): the header (code, flags V/M/P, vendor id),
//! the data padded to 4 bytes, grouped AVPs, and the data types of §4.2 and
//! §4.3 read as text (for the request templates) and written from text
//! (for the reply templates).

use std::net::IpAddr;

use crate::Error;

/// The AVP flag `V`: a Vendor-ID field follows the length.
pub const FLAG_V: u8 = 0x80;
/// The AVP flag `M`: the receiver must understand the AVP.
pub const FLAG_M: u8 = 0x40;
/// The AVP flag `P`: end-to-end security (reserved in RFC 6733).
pub const FLAG_P: u8 = 0x20;

/// Grouped AVPs nest at most this deep (a bound for the decoder).
pub const MAX_DEPTH: usize = 16;

/// One AVP: its header and its data (the padding removed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Avp {
    /// The AVP code.
    pub code: u32,
    /// The flags byte (`V`, `M`, `P`; `V` follows `vendor`).
    pub flags: u8,
    /// The Vendor-ID (flag `V`).
    pub vendor: Option<u32>,
    /// The data.
    pub data: Vec<u8>,
}

/// The data types of RFC 6733 §4.2-4.3.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AvpType {
    /// Bytes.
    OctetString,
    /// A signed 32-bit integer.
    Integer32,
    /// A signed 64-bit integer.
    Integer64,
    /// An unsigned 32-bit integer.
    Unsigned32,
    /// An unsigned 64-bit integer.
    Unsigned64,
    /// An IEEE 754 single (a protocol value; never money).
    Float32,
    /// An IEEE 754 double (a protocol value; never money).
    Float64,
    /// AVPs.
    Grouped,
    /// An address family and an address.
    Address,
    /// Seconds since 1900-01-01 UTC (NTP era 0).
    Time,
    /// UTF-8 text.
    Utf8String,
    /// A host's FQDN.
    DiameterIdentity,
    /// An `aaa://` URI.
    DiameterUri,
    /// An Integer32 with named values.
    Enumerated,
}

impl AvpType {
    /// The type named as the dictionaries write it (`Unsigned32`,
    /// `UTF8String`, ...).
    #[must_use]
    pub fn parse(s: &str) -> Option<AvpType> {
        Some(match s {
            "OctetString" => AvpType::OctetString,
            "Integer32" => AvpType::Integer32,
            "Integer64" => AvpType::Integer64,
            "Unsigned32" => AvpType::Unsigned32,
            "Unsigned64" => AvpType::Unsigned64,
            "Float32" => AvpType::Float32,
            "Float64" => AvpType::Float64,
            "Grouped" => AvpType::Grouped,
            "Address" => AvpType::Address,
            "Time" => AvpType::Time,
            "UTF8String" => AvpType::Utf8String,
            "DiameterIdentity" => AvpType::DiameterIdentity,
            "DiameterURI" => AvpType::DiameterUri,
            "Enumerated" => AvpType::Enumerated,
            _ => return None,
        })
    }
}

/// Seconds between 1900-01-01 (Diameter's `Time`) and 1970-01-01.
pub const NTP_UNIX_OFFSET: i64 = 2_208_988_800;

fn be32(b: &[u8]) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(..4)?.try_into().ok()?))
}

/// The AVP's length on the wire without padding, `None` when it does not
/// fit the 24-bit length field.
fn header_len(vendor: Option<u32>) -> usize {
    if vendor.is_some() { 12 } else { 8 }
}

impl Avp {
    /// An AVP with data `data`; `M` set when `mandatory`.
    #[must_use]
    pub fn new(code: u32, vendor: Option<u32>, mandatory: bool, data: Vec<u8>) -> Avp {
        let mut flags = if mandatory { FLAG_M } else { 0 };
        if vendor.is_some() {
            flags |= FLAG_V;
        }
        Avp {
            code,
            flags,
            vendor,
            data,
        }
    }

    /// An Unsigned32 (or Enumerated) AVP of the base protocol (`M` set).
    #[must_use]
    pub fn u32(code: u32, v: u32) -> Avp {
        Avp::new(code, None, true, v.to_be_bytes().to_vec())
    }

    /// A UTF8String or DiameterIdentity AVP of the base protocol (`M` set).
    #[must_use]
    pub fn text(code: u32, v: &str) -> Avp {
        Avp::new(code, None, true, v.as_bytes().to_vec())
    }

    /// A Grouped AVP of `children`.
    #[must_use]
    pub fn grouped(code: u32, vendor: Option<u32>, mandatory: bool, children: &[Avp]) -> Avp {
        let mut data = Vec::new();
        for c in children {
            c.encode(&mut data);
        }
        Avp::new(code, vendor, mandatory, data)
    }

    /// An Address AVP.
    #[must_use]
    pub fn address(code: u32, ip: IpAddr) -> Avp {
        let mut data = Vec::with_capacity(18);
        match ip {
            IpAddr::V4(a) => {
                data.extend_from_slice(&1u16.to_be_bytes());
                data.extend_from_slice(&a.octets());
            }
            IpAddr::V6(a) => {
                data.extend_from_slice(&2u16.to_be_bytes());
                data.extend_from_slice(&a.octets());
            }
        }
        Avp::new(code, None, true, data)
    }

    /// Whether `M` is set.
    #[must_use]
    pub fn mandatory(&self) -> bool {
        self.flags & FLAG_M != 0
    }

    /// The data as an Unsigned32 / Integer32 / Enumerated.
    #[must_use]
    pub fn as_u32(&self) -> Option<u32> {
        if self.data.len() != 4 {
            return None;
        }
        be32(&self.data)
    }

    /// The data as UTF-8 text.
    #[must_use]
    pub fn as_str(&self) -> Option<&str> {
        std::str::from_utf8(&self.data).ok()
    }

    /// The AVPs inside a Grouped AVP.
    ///
    /// # Errors
    /// [`Error::DiameterAvp`]: the data is not a sequence of AVPs.
    pub fn children(&self) -> Result<Vec<Avp>, Error> {
        decode_avps(&self.data, 1)
    }

    /// The bytes this AVP takes on the wire, padding included.
    #[must_use]
    pub fn wire_len(&self) -> usize {
        (header_len(self.vendor) + self.data.len()).div_ceil(4) * 4
    }

    /// Appends the AVP (padded to 4 bytes) to `out`. A length that does
    /// not fit 24 bits is cut at the field's maximum (the encoder is only
    /// given AVPs this crate builds, far below 16 MiB).
    pub fn encode(&self, out: &mut Vec<u8>) {
        let len = header_len(self.vendor) + self.data.len();
        let len24 = u32::try_from(len).unwrap_or(u32::MAX).min(0x00ff_ffff);
        out.extend_from_slice(&self.code.to_be_bytes());
        let flags = if self.vendor.is_some() {
            self.flags | FLAG_V
        } else {
            self.flags & !FLAG_V
        };
        out.push(flags);
        out.extend_from_slice(&len24.to_be_bytes()[1..]);
        if let Some(v) = self.vendor {
            out.extend_from_slice(&v.to_be_bytes());
        }
        out.extend_from_slice(&self.data);
        out.resize(out.len() + (4 - len % 4) % 4, 0);
    }
}

/// Decodes a sequence of AVPs (a message body or a Grouped AVP's data).
/// `depth` counts the Grouped levels above.
///
/// # Errors
/// [`Error::DiameterAvp`]: a length shorter than the header, past the
/// end, or nesting deeper than [`MAX_DEPTH`].
pub fn decode_avps(mut buf: &[u8], depth: usize) -> Result<Vec<Avp>, Error> {
    if depth > MAX_DEPTH {
        return Err(Error::DiameterAvp("grouped AVPs nested too deep".into()));
    }
    let mut out = Vec::new();
    while !buf.is_empty() {
        let (avp, used) = decode_one(buf)?;
        out.push(avp);
        buf = buf.get(used..).unwrap_or_default();
    }
    Ok(out)
}

/// One AVP off the front of `buf` and the bytes it took (with padding;
/// the last AVP's padding may be missing).
fn decode_one(buf: &[u8]) -> Result<(Avp, usize), Error> {
    let bad = |what: &str| Error::DiameterAvp(what.to_owned());
    let code = be32(buf).ok_or_else(|| bad("truncated AVP header"))?;
    let word = be32(buf.get(4..).unwrap_or_default()).ok_or_else(|| bad("truncated AVP header"))?;
    let flags = (word >> 24) as u8;
    let len = (word & 0x00ff_ffff) as usize;
    let vendor = if flags & FLAG_V != 0 {
        Some(be32(buf.get(8..).unwrap_or_default()).ok_or_else(|| bad("truncated Vendor-ID"))?)
    } else {
        None
    };
    let hl = header_len(vendor);
    if len < hl {
        return Err(Error::DiameterAvp(format!(
            "AVP {code}: length {len} shorter than its header"
        )));
    }
    let data = buf
        .get(hl..len)
        .ok_or_else(|| Error::DiameterAvp(format!("AVP {code}: length {len} past the end")))?
        .to_vec();
    let used = len.div_ceil(4) * 4;
    Ok((
        Avp {
            code,
            flags,
            vendor,
            data,
        },
        used.min(buf.len()),
    ))
}

/// The data of an AVP of type `ty` as text: numbers in decimal, an
/// Address as its IP, a Time as RFC 3339 UTC, text as it is, bytes as
/// text when UTF-8 (else hex with `0x`). `None`: the data does not fit
/// the type (or a Grouped AVP).
#[must_use]
pub fn render(ty: AvpType, data: &[u8]) -> Option<String> {
    let fixed = |n: usize| (data.len() == n).then_some(data);
    Some(match ty {
        AvpType::Integer32 | AvpType::Enumerated => {
            i32::from_be_bytes(fixed(4)?.try_into().ok()?).to_string()
        }
        AvpType::Unsigned32 => u32::from_be_bytes(fixed(4)?.try_into().ok()?).to_string(),
        AvpType::Integer64 => i64::from_be_bytes(fixed(8)?.try_into().ok()?).to_string(),
        AvpType::Unsigned64 => u64::from_be_bytes(fixed(8)?.try_into().ok()?).to_string(),
        AvpType::Float32 => f32::from_be_bytes(fixed(4)?.try_into().ok()?).to_string(),
        AvpType::Float64 => f64::from_be_bytes(fixed(8)?.try_into().ok()?).to_string(),
        AvpType::Time => {
            let ntp = i64::from(u32::from_be_bytes(fixed(4)?.try_into().ok()?));
            chrono::DateTime::from_timestamp(ntp - NTP_UNIX_OFFSET, 0)?
                .format("%Y-%m-%dT%H:%M:%SZ")
                .to_string()
        }
        AvpType::Address => {
            let family = u16::from_be_bytes(data.get(..2)?.try_into().ok()?);
            let rest = data.get(2..)?;
            match (family, rest.len()) {
                (1, 4) => IpAddr::from(<[u8; 4]>::try_from(rest).ok()?).to_string(),
                (2, 16) => IpAddr::from(<[u8; 16]>::try_from(rest).ok()?).to_string(),
                _ => return None,
            }
        }
        AvpType::Grouped => return None,
        AvpType::Utf8String | AvpType::DiameterIdentity | AvpType::DiameterUri => {
            std::str::from_utf8(data).ok()?.to_owned()
        }
        AvpType::OctetString => match std::str::from_utf8(data) {
            Ok(s) => s.to_owned(),
            Err(_) => {
                let mut s = String::from("0x");
                for b in data {
                    s.push_str(&format!("{b:02x}"));
                }
                s
            }
        },
    })
}

/// The data of an AVP of type `ty` written from `text` (the inverse of
/// [`render`]; numbers may carry a fraction, which is cut: a template's
/// `{*duration_seconds}` gives `12.5`).
///
/// # Errors
/// [`Error::DiameterAvp`]: text that is not a value of the type.
pub fn from_text(ty: AvpType, text: &str) -> Result<Vec<u8>, Error> {
    let bad = || Error::DiameterAvp(format!("{text:?} is not a {ty:?}"));
    let t = text.trim();
    let int = || -> Result<i128, Error> {
        let whole = t.split_once('.').map_or(t, |(w, _)| w);
        whole.parse::<i128>().map_err(|_| bad())
    };
    Ok(match ty {
        AvpType::Integer32 | AvpType::Enumerated => i32::try_from(int()?)
            .map_err(|_| bad())?
            .to_be_bytes()
            .to_vec(),
        AvpType::Unsigned32 => u32::try_from(int()?)
            .map_err(|_| bad())?
            .to_be_bytes()
            .to_vec(),
        AvpType::Integer64 => i64::try_from(int()?)
            .map_err(|_| bad())?
            .to_be_bytes()
            .to_vec(),
        AvpType::Unsigned64 => u64::try_from(int()?)
            .map_err(|_| bad())?
            .to_be_bytes()
            .to_vec(),
        AvpType::Float32 => t.parse::<f32>().map_err(|_| bad())?.to_be_bytes().to_vec(),
        AvpType::Float64 => t.parse::<f64>().map_err(|_| bad())?.to_be_bytes().to_vec(),
        AvpType::Time => {
            let secs = chrono::DateTime::parse_from_rfc3339(t)
                .map(|d| d.timestamp())
                .or_else(|_| t.parse::<i64>())
                .map_err(|_| bad())?;
            u32::try_from(secs + NTP_UNIX_OFFSET)
                .map_err(|_| bad())?
                .to_be_bytes()
                .to_vec()
        }
        AvpType::Address => {
            let ip: IpAddr = t.parse().map_err(|_| bad())?;
            Avp::address(0, ip).data
        }
        AvpType::Grouped => return Err(bad()),
        AvpType::OctetString
        | AvpType::Utf8String
        | AvpType::DiameterIdentity
        | AvpType::DiameterUri => text.as_bytes().to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_vendor_avp_with_padding() {
        let a = Avp::new(831, Some(10415), true, b"tel:+49301".to_vec());
        let mut out = Vec::new();
        a.encode(&mut out);
        assert_eq!(out.len(), 24); // 12 + 10, padded to 24
        assert_eq!(&out[..4], &831u32.to_be_bytes());
        assert_eq!(out[4], FLAG_V | FLAG_M);
        assert_eq!(&out[5..8], &[0, 0, 22]);
        assert_eq!(decode_avps(&out, 0).unwrap(), vec![a]);
    }

    #[test]
    fn bad_lengths_are_errors() {
        assert!(decode_avps(&[0, 0, 1, 7, 0x40, 0, 0, 4], 0).is_err());
        assert!(decode_avps(&[0, 0, 1, 7, 0x40, 0, 0, 40, 1, 2], 0).is_err());
        assert!(decode_avps(&[0, 0, 1], 0).is_err());
        // V set but no room for the vendor
        assert!(decode_avps(&[0, 0, 1, 7, 0xc0, 0, 0, 8], 0).is_err());
    }

    #[test]
    fn types_as_text_and_back() {
        for (ty, text) in [
            (AvpType::Unsigned32, "4294967295"),
            (AvpType::Integer32, "-5"),
            (AvpType::Unsigned64, "18446744073709551615"),
            (AvpType::Integer64, "-9"),
            (AvpType::Enumerated, "3"),
            (AvpType::Address, "10.0.0.1"),
            (AvpType::Address, "::1"),
            (AvpType::Time, "2024-05-01T12:00:00Z"),
            (AvpType::Utf8String, "sip:a@b"),
            (AvpType::Float64, "1.5"),
        ] {
            let data = from_text(ty, text).unwrap();
            assert_eq!(render(ty, &data).unwrap(), text, "{ty:?}");
        }
        assert_eq!(
            from_text(AvpType::Unsigned32, "12.9").unwrap(),
            12u32.to_be_bytes()
        );
        assert!(from_text(AvpType::Unsigned32, "-1").is_err());
        assert!(render(AvpType::Unsigned32, &[1, 2]).is_none());
        assert_eq!(render(AvpType::OctetString, &[0xff, 1]).unwrap(), "0xff01");
    }

    fn avp_strategy() -> impl Strategy<Value = Avp> {
        (
            any::<u32>(),
            any::<bool>(),
            proptest::option::of(any::<u32>()),
            proptest::collection::vec(any::<u8>(), 0..40),
        )
            .prop_map(|(code, m, vendor, data)| Avp::new(code, vendor, m, data))
    }

    proptest! {
        #[test]
        fn encode_then_decode_round_trips(avps in proptest::collection::vec(avp_strategy(), 0..8)) {
            let mut out = Vec::new();
            for a in &avps {
                a.encode(&mut out);
            }
            prop_assert_eq!(out.len() % 4, 0);
            prop_assert_eq!(decode_avps(&out, 0).unwrap(), avps);
        }

        #[test]
        fn grouped_round_trips(children in proptest::collection::vec(avp_strategy(), 0..5)) {
            let g = Avp::grouped(873, Some(10415), true, &children);
            prop_assert_eq!(g.children().unwrap(), children);
        }

        #[test]
        fn the_decoder_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = decode_avps(&bytes, 0);
        }
    }
}
