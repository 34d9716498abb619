//! Tunnels that mirror ports and cloud traffic mirroring wrap captured
//! frames in: IP-in-IP (RFC 2003, RFC 2473), GRE (RFC 2784, RFC 2890) with
//! IP, transparent Ethernet bridging (also NVGRE, RFC 7637) or ERSPAN
//! inside, and VXLAN (RFC 7348). Each function reads one tunnel header
//! and says what follows it; the decoder slices the inner packet again, up
//! to a bounded nesting depth.
//!
//! ERSPAN has no RFC; the layouts are those of
//! draft-foschiano-erspan-03 (types I, II and III), as Wireshark and
//! Homer's capture agent read them.

use crate::DropReason;

/// What a tunnel header is followed by.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Inner<'a> {
    /// An IPv4 or IPv6 packet.
    Ip(&'a [u8]),
    /// An Ethernet II frame (possibly VLAN tagged).
    Ethernet(&'a [u8]),
}

/// GRE protocol type of IPv4.
const ETH_IPV4: u16 = 0x0800;
/// GRE protocol type of IPv6.
const ETH_IPV6: u16 = 0x86DD;
/// Transparent Ethernet bridging (also NVGRE).
const ETH_BRIDGING: u16 = 0x6558;
/// ERSPAN types I and II.
const ETH_ERSPAN_2: u16 = 0x88BE;
/// ERSPAN type III.
const ETH_ERSPAN_3: u16 = 0x22EB;

/// Length of a VXLAN header.
const VXLAN_LEN: usize = 8;
/// The VXLAN "I" flag: a valid VNI follows (RFC 7348 section 5).
const VXLAN_I: u8 = 0x08;

/// Reads a GRE header (RFC 2784 with RFC 2890's key and sequence number).
/// Malformed or unsupported headers (a version other than 0, such as
/// PPTP's enhanced GRE; RFC 1701 source routing) are `BadGre`; a GRE
/// payload that is neither IP nor Ethernet is `NotIp`.
pub(crate) fn gre(p: &[u8]) -> Result<Inner<'_>, DropReason> {
    let (Some(&flags), Some(&ver), Some(proto)) = (p.first(), p.get(1), p.get(2..4)) else {
        return Err(DropReason::Truncated);
    };
    let checksum = flags & 0x80 != 0;
    let routing = flags & 0x40 != 0;
    let key = flags & 0x20 != 0;
    let seq = flags & 0x10 != 0;
    if routing || ver & 0x07 != 0 {
        return Err(DropReason::BadGre);
    }
    let len = 4 + 4 * (usize::from(checksum) + usize::from(key) + usize::from(seq));
    let rest = p.get(len..).ok_or(DropReason::Truncated)?;
    match u16::from_be_bytes([proto[0], proto[1]]) {
        ETH_IPV4 | ETH_IPV6 => Ok(Inner::Ip(rest)),
        ETH_BRIDGING => Ok(Inner::Ethernet(rest)),
        // ERSPAN type I has no sequence number and no header of its own.
        ETH_ERSPAN_2 if !seq => Ok(Inner::Ethernet(rest)),
        ETH_ERSPAN_2 => erspan2(rest),
        ETH_ERSPAN_3 => erspan3(rest),
        _ => Err(DropReason::NotIp),
    }
}

/// ERSPAN type II: 8 bytes, version 1, then the mirrored Ethernet frame.
fn erspan2(p: &[u8]) -> Result<Inner<'_>, DropReason> {
    let ver = p.first().ok_or(DropReason::Truncated)? >> 4;
    if ver != 1 {
        return Err(DropReason::BadGre);
    }
    p.get(8..).map(Inner::Ethernet).ok_or(DropReason::Truncated)
}

/// ERSPAN type III: 12 bytes, version 2, an optional 8-byte
/// platform-specific subheader (flag O), then the mirrored frame, Ethernet
/// or IP by the frame type field.
fn erspan3(p: &[u8]) -> Result<Inner<'_>, DropReason> {
    let (Some(&b0), Some(&b10), Some(&b11)) = (p.first(), p.get(10), p.get(11)) else {
        return Err(DropReason::Truncated);
    };
    if b0 >> 4 != 2 {
        return Err(DropReason::BadGre);
    }
    // Byte 10: P(1) FT(5) HW ID high bits; byte 11: HW ID low, D, Gra, O.
    let frame_type = (b10 >> 2) & 0x1f;
    let len = if b11 & 0x01 != 0 { 20 } else { 12 };
    let rest = p.get(len..).ok_or(DropReason::Truncated)?;
    match frame_type {
        0 => Ok(Inner::Ethernet(rest)),
        2 => Ok(Inner::Ip(rest)),
        _ => Err(DropReason::NotIp),
    }
}

/// Reads a VXLAN header (RFC 7348 section 5): the "I" flag must be set;
/// an Ethernet frame follows.
pub(crate) fn vxlan(p: &[u8]) -> Result<&[u8], DropReason> {
    let (Some(&flags), Some(rest)) = (p.first(), p.get(VXLAN_LEN..)) else {
        return Err(DropReason::BadVxlan);
    };
    if flags & VXLAN_I == 0 {
        return Err(DropReason::BadVxlan);
    }
    Ok(rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gre_header(flags: u8, proto: u16) -> Vec<u8> {
        let mut v = vec![flags, 0];
        v.extend_from_slice(&proto.to_be_bytes());
        let words = [0x80u8, 0x20, 0x10]
            .iter()
            .filter(|f| flags & **f != 0)
            .count();
        v.extend(std::iter::repeat_n(0xee, 4 * words));
        v
    }

    #[test]
    fn gre_optional_fields_are_skipped() {
        for flags in [0x00, 0x80, 0x20, 0x10, 0xb0] {
            let mut p = gre_header(flags, ETH_IPV4);
            p.extend_from_slice(b"IP");
            assert_eq!(gre(&p), Ok(Inner::Ip(b"IP")), "{flags:#x}");
        }
        let mut p = gre_header(0x20, ETH_BRIDGING);
        p.extend_from_slice(b"ETH");
        assert_eq!(gre(&p), Ok(Inner::Ethernet(b"ETH")));
    }

    #[test]
    fn gre_errors() {
        assert_eq!(gre(&[0, 0, 8]), Err(DropReason::Truncated));
        assert_eq!(gre(&gre_header(0x40, ETH_IPV4)), Err(DropReason::BadGre));
        let mut pptp = gre_header(0x30, 0x880b);
        pptp[1] = 1;
        assert_eq!(gre(&pptp), Err(DropReason::BadGre));
        assert_eq!(gre(&gre_header(0, 0x8847)), Err(DropReason::NotIp));
        let mut cut = gre_header(0xb0, ETH_IPV4);
        cut.truncate(10);
        assert_eq!(gre(&cut), Err(DropReason::Truncated));
    }

    #[test]
    fn erspan_types() {
        // Type I: no sequence number, no ERSPAN header.
        let mut p = gre_header(0, ETH_ERSPAN_2);
        p.extend_from_slice(b"ETH");
        assert_eq!(gre(&p), Ok(Inner::Ethernet(b"ETH")));
        // Type II.
        let mut p = gre_header(0x10, ETH_ERSPAN_2);
        p.extend_from_slice(&[0x10, 0, 0, 1, 0, 0, 0, 0]);
        p.extend_from_slice(b"ETH");
        assert_eq!(gre(&p), Ok(Inner::Ethernet(b"ETH")));
        p[8] = 0x20;
        assert_eq!(gre(&p), Err(DropReason::BadGre));
        // Type III, without and with the platform subheader, Ethernet and IP.
        let mut h3 = vec![0x20, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0];
        let mut p = gre_header(0x10, ETH_ERSPAN_3);
        p.extend_from_slice(&h3);
        p.extend_from_slice(b"ETH");
        assert_eq!(gre(&p), Ok(Inner::Ethernet(b"ETH")));
        h3[11] = 0x01;
        h3[10] = 2 << 2;
        let mut p = gre_header(0x10, ETH_ERSPAN_3);
        p.extend_from_slice(&h3);
        p.extend_from_slice(&[0; 8]);
        p.extend_from_slice(b"IP");
        assert_eq!(gre(&p), Ok(Inner::Ip(b"IP")));
        let mut p = gre_header(0x10, ETH_ERSPAN_3);
        p.extend_from_slice(&h3[..5]);
        assert_eq!(gre(&p), Err(DropReason::Truncated));
    }

    #[test]
    fn vxlan_header() {
        let mut p = vec![0x08, 0, 0, 0, 0, 0, 42, 0];
        p.extend_from_slice(b"ETH");
        assert_eq!(vxlan(&p), Ok(&b"ETH"[..]));
        p[0] = 0;
        assert_eq!(vxlan(&p), Err(DropReason::BadVxlan));
        assert_eq!(vxlan(&[0x08, 0, 0]), Err(DropReason::BadVxlan));
    }
}
