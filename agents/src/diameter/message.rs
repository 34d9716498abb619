//! Diameter messages (RFC 6733 §3): the 20-byte header (version, length,
//! flags R/P/E/T, command code, Application-ID, Hop-by-Hop and End-to-End
//! identifiers) and the AVPs; stream framing that tells an incomplete
//! message from a malformed one.

use super::avp::{Avp, decode_avps};
use crate::Error;

/// The command flag `R`: a request.
pub const FLAG_R: u8 = 0x80;
/// The command flag `P`: proxiable.
pub const FLAG_P: u8 = 0x40;
/// The command flag `E`: an answer carrying a protocol error.
pub const FLAG_E: u8 = 0x20;
/// The command flag `T`: possibly a retransmission.
pub const FLAG_T: u8 = 0x10;

/// The header's size.
pub const HEADER_LEN: usize = 20;

/// One Diameter message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The command flags (`R`, `P`, `E`, `T`).
    pub flags: u8,
    /// The command code (272 Credit-Control, 257 Capabilities-Exchange, ...).
    pub code: u32,
    /// The Application-ID (0 base, 4 credit control).
    pub app_id: u32,
    /// The Hop-by-Hop identifier.
    pub hop_by_hop: u32,
    /// The End-to-End identifier.
    pub end_to_end: u32,
    /// The AVPs, in order.
    pub avps: Vec<Avp>,
}

/// What [`decode`] found at the front of a byte stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decoded {
    /// Not a whole message yet: read more.
    Incomplete,
    /// A message and the bytes it took.
    Message {
        /// The message.
        msg: Message,
        /// Its length.
        consumed: usize,
    },
}

/// How a framed message is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Malformed {
    /// The header is wrong (version, length): the stream cannot be
    /// resynchronised and the connection must close.
    Header(Error),
    /// The header frames the message but its AVPs do not decode: the
    /// message can be answered (5014), the stream goes on.
    Avps {
        /// The message's header with no AVPs.
        header: Message,
        /// The bytes it took.
        consumed: usize,
        /// What is wrong.
        error: Error,
    },
}

fn be32(b: &[u8], at: usize) -> u32 {
    b.get(at..at + 4)
        .and_then(|s| <[u8; 4]>::try_from(s).ok())
        .map_or(0, u32::from_be_bytes)
}

/// Decodes the message at the front of `buf`; `max` bounds the length a
/// header may announce.
///
/// # Errors
/// [`Malformed`]: see its variants.
pub fn decode(buf: &[u8], max: usize) -> Result<Decoded, Malformed> {
    if buf.len() < 4 {
        return Ok(Decoded::Incomplete);
    }
    let word = be32(buf, 0);
    let version = word >> 24;
    let len = (word & 0x00ff_ffff) as usize;
    if version != 1 {
        return Err(Malformed::Header(Error::DiameterMessage(format!(
            "version {version}, not 1"
        ))));
    }
    if len < HEADER_LEN || len % 4 != 0 || len > max {
        return Err(Malformed::Header(Error::DiameterMessage(format!(
            "message length {len} (a multiple of 4 from {HEADER_LEN} to {max})"
        ))));
    }
    let Some(whole) = buf.get(..len) else {
        return Ok(Decoded::Incomplete);
    };
    let cmd = be32(whole, 4);
    let header = Message {
        flags: (cmd >> 24) as u8,
        code: cmd & 0x00ff_ffff,
        app_id: be32(whole, 8),
        hop_by_hop: be32(whole, 12),
        end_to_end: be32(whole, 16),
        avps: Vec::new(),
    };
    match decode_avps(whole.get(HEADER_LEN..).unwrap_or_default(), 0) {
        Ok(avps) => Ok(Decoded::Message {
            msg: Message { avps, ..header },
            consumed: len,
        }),
        Err(error) => Err(Malformed::Avps {
            header,
            consumed: len,
            error,
        }),
    }
}

impl Message {
    /// A request (flag `R`, and `P` for the proxiable commands).
    #[must_use]
    pub fn request(code: u32, app_id: u32, proxiable: bool, hop: u32, e2e: u32) -> Message {
        Message {
            flags: FLAG_R | if proxiable { FLAG_P } else { 0 },
            code,
            app_id,
            hop_by_hop: hop,
            end_to_end: e2e,
            avps: Vec::new(),
        }
    }

    /// The answer's header: the same command, application and
    /// identifiers, `R` and `T` cleared, `P` kept.
    #[must_use]
    pub fn answer(&self) -> Message {
        Message {
            flags: self.flags & FLAG_P,
            code: self.code,
            app_id: self.app_id,
            hop_by_hop: self.hop_by_hop,
            end_to_end: self.end_to_end,
            avps: Vec::new(),
        }
    }

    /// Whether this is a request.
    #[must_use]
    pub fn is_request(&self) -> bool {
        self.flags & FLAG_R != 0
    }

    /// The first top-level AVP `code` of vendor `vendor`.
    #[must_use]
    pub fn find(&self, code: u32, vendor: Option<u32>) -> Option<&Avp> {
        self.avps
            .iter()
            .find(|a| a.code == code && a.vendor == vendor)
    }

    /// Appends an AVP.
    pub fn push(&mut self, avp: Avp) {
        self.avps.push(avp);
    }

    /// The message on the wire.
    #[must_use]
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER_LEN + 64);
        out.extend_from_slice(&[1, 0, 0, 0]);
        out.extend_from_slice(
            &((u32::from(self.flags) << 24) | (self.code & 0x00ff_ffff)).to_be_bytes(),
        );
        out.extend_from_slice(&self.app_id.to_be_bytes());
        out.extend_from_slice(&self.hop_by_hop.to_be_bytes());
        out.extend_from_slice(&self.end_to_end.to_be_bytes());
        for a in &self.avps {
            a.encode(&mut out);
        }
        let len = u32::try_from(out.len())
            .unwrap_or(u32::MAX)
            .min(0x00ff_ffff);
        if let Some(l) = out.get_mut(1..4) {
            l.copy_from_slice(&len.to_be_bytes()[1..]);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn framing_waits_for_the_whole_message() {
        let mut m = Message::request(272, 4, true, 7, 9);
        m.push(Avp::text(263, "s;1"));
        let bytes = m.encode();
        assert_eq!(bytes.len() % 4, 0);
        for cut in 0..bytes.len() {
            assert_eq!(
                decode(&bytes[..cut], 1 << 16),
                Ok(Decoded::Incomplete),
                "{cut}"
            );
        }
        let Ok(Decoded::Message { msg, consumed }) = decode(&bytes, 1 << 16) else {
            panic!()
        };
        assert_eq!((msg, consumed), (m.clone(), bytes.len()));
        let a = m.answer();
        assert_eq!((a.flags, a.hop_by_hop, a.end_to_end), (FLAG_P, 7, 9));
    }

    #[test]
    fn bad_headers_and_bad_avps() {
        assert!(matches!(
            decode(&[2, 0, 0, 20], 1024),
            Err(Malformed::Header(_))
        ));
        assert!(matches!(
            decode(&[1, 0, 0, 12], 1024),
            Err(Malformed::Header(_))
        ));
        assert!(matches!(
            decode(&[1, 0, 8, 0], 1024),
            Err(Malformed::Header(_))
        ));
        let mut m = Message::request(272, 4, true, 1, 2).encode();
        m.extend_from_slice(&[0, 0, 1, 7, 0x40, 0, 0, 2]);
        m[3] = 28;
        assert!(matches!(
            decode(&m, 1024),
            Err(Malformed::Avps { consumed: 28, .. })
        ));
    }

    proptest! {
        #[test]
        fn round_trip(code in 0u32..0x00ff_ffff, flags in any::<u8>(), app in any::<u32>(),
                      hop in any::<u32>(), e2e in any::<u32>(),
                      datas in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..20), 0..6)) {
            let m = Message {
                flags, code, app_id: app, hop_by_hop: hop, end_to_end: e2e,
                avps: datas.into_iter().enumerate()
                    .map(|(i, d)| Avp::new(u32::try_from(i).unwrap(), None, i % 2 == 0, d)).collect(),
            };
            let bytes = m.encode();
            prop_assert_eq!(decode(&bytes, 1 << 20), Ok(Decoded::Message { msg: m, consumed: bytes.len() }));
        }

        #[test]
        fn never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..80)) {
            let _ = decode(&bytes, 1 << 20);
        }
    }
}
