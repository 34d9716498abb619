//! The HEP codec as the frame path uses it: `crate::hep::decode_sip_with`
//! (copying into the decoder's arena) for HEP datagrams, `decode_sip` for
//! HEP frames, `crate::hep::HepStreamFramer` for HEP over TCP.
//!
//! TCP frames are decoded with the copying `decode_sip`, not
//! `decode_sip_bytes`: a frame shares the framer's buffer, and a packet
//! kept downstream should not pin that whole buffer.

pub(crate) use crate::hep::{HepStreamFramer, decode_sip, decode_sip_with};
