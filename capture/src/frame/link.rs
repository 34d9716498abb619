//! Link layers: which header a captured frame starts with, and slicing it
//! down to IP with `etherparse`.
//!
//! `etherparse` reads Ethernet II (with VLAN and QinQ tags), Linux SLL and
//! bare IP. The two headers it lacks are read here: Linux SLL2
//! (`LINKTYPE_LINUX_SLL2`, 20 bytes) and BSD loopback (`LINKTYPE_NULL` with a
//! 4-byte address family in the capturing host's byte order,
//! `LINKTYPE_LOOP` with the same in network order).

use etherparse::err::packet::SliceError;
use etherparse::{EtherType, LenSource, LinkExtSlice, SlicedPacket};

use crate::DropReason;

/// The link-layer header type of a capture (pcap's `LINKTYPE_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LinkType {
    /// `LINKTYPE_ETHERNET` (1): Ethernet II, possibly VLAN/QinQ tagged.
    Ethernet,
    /// `LINKTYPE_LINUX_SLL` (113): Linux "cooked" capture v1 (`-i any`).
    LinuxSll,
    /// `LINKTYPE_LINUX_SLL2` (276): Linux "cooked" capture v2.
    LinuxSll2,
    /// `LINKTYPE_RAW` (101; also `DLT_RAW` 12 and 14): bare IPv4 or IPv6.
    RawIp,
    /// `LINKTYPE_IPV4` (228): bare IPv4.
    Ipv4,
    /// `LINKTYPE_IPV6` (229): bare IPv6.
    Ipv6,
    /// `LINKTYPE_NULL` (0): BSD loopback, family in host byte order.
    Null,
    /// `LINKTYPE_LOOP` (108): OpenBSD loopback, family in network order.
    Loop,
}

impl LinkType {
    /// The link type for a pcap/pcapng `LINKTYPE_` number, or `None` if we
    /// do not decode it.
    pub fn from_linktype(dlt: u32) -> Option<LinkType> {
        Some(match dlt {
            0 => LinkType::Null,
            1 => LinkType::Ethernet,
            // 12 and 14 are the platform DLT_RAW values some writers leave
            // in files instead of LINKTYPE_RAW.
            12 | 14 | 101 => LinkType::RawIp,
            108 => LinkType::Loop,
            113 => LinkType::LinuxSll,
            228 => LinkType::Ipv4,
            229 => LinkType::Ipv6,
            276 => LinkType::LinuxSll2,
            _ => return None,
        })
    }
}

/// Length of the Linux SLL2 header.
const SLL2_LEN: usize = 20;
/// Length of the BSD loopback header.
const LOOPBACK_LEN: usize = 4;

/// Address families found in BSD loopback headers. IPv4 is 2 everywhere;
/// IPv6 differs per OS (Linux 10, Windows 23, NetBSD/OpenBSD 24, FreeBSD 28,
/// Darwin 30), see libpcap's `pcap-common.c`.
fn loopback_family_is_ip(family: u32) -> bool {
    matches!(family, 2 | 10 | 23 | 24 | 28 | 30)
}

/// Slices a frame of link type `link` down to the transport layer.
pub(crate) fn slice(link: LinkType, frame: &[u8]) -> Result<SlicedPacket<'_>, DropReason> {
    let sliced = match link {
        LinkType::Ethernet => SlicedPacket::from_ethernet(frame),
        LinkType::LinuxSll => SlicedPacket::from_linux_sll(frame),
        LinkType::LinuxSll2 => {
            let (Some(proto), Some(rest)) = (frame.get(..2), frame.get(SLL2_LEN..)) else {
                return Err(DropReason::Truncated);
            };
            // Protocol type, big endian, as in an Ethernet header. Values
            // below 0x0600 are Linux's non-standard types (802.2, CAN...).
            let proto = u16::from_be_bytes([proto[0], proto[1]]);
            SlicedPacket::from_ether_type(EtherType(proto), rest)
        }
        LinkType::RawIp | LinkType::Ipv4 | LinkType::Ipv6 => {
            if frame.is_empty() {
                return Err(DropReason::Truncated);
            }
            SlicedPacket::from_ip(frame)
        }
        LinkType::Null | LinkType::Loop => {
            let (Some(h), Some(rest)) = (frame.get(..LOOPBACK_LEN), frame.get(LOOPBACK_LEN..))
            else {
                return Err(DropReason::Truncated);
            };
            let h = [h[0], h[1], h[2], h[3]];
            let family = if link == LinkType::Loop {
                u32::from_be_bytes(h)
            } else {
                // Host order of the capturing machine, which we do not know:
                // families are small, so a value with high bytes set was
                // written big endian (libpcap does the same).
                let le = u32::from_le_bytes(h);
                if le & 0xffff_0000 != 0 {
                    u32::from_be_bytes(h)
                } else {
                    le
                }
            };
            if !loopback_family_is_ip(family) {
                return Err(DropReason::NotIp);
            }
            if rest.is_empty() {
                return Err(DropReason::Truncated);
            }
            SlicedPacket::from_ip(rest)
        }
    };
    sliced.map_err(|e| slice_error_reason(&e))
}

/// The drop reason for an `etherparse` slicing error: data missing from the
/// captured bytes is truncation; any other inconsistency is a bad header.
pub(crate) fn slice_error_reason(e: &SliceError) -> DropReason {
    match e {
        SliceError::Len(l) if l.len_source == LenSource::Slice => DropReason::Truncated,
        _ => DropReason::BadHeader,
    }
}

/// The outermost VLAN id of a sliced frame, if it had a VLAN tag.
pub(crate) fn outer_vlan(sliced: &SlicedPacket<'_>) -> Option<u16> {
    sliced.link_exts.iter().find_map(|e| match e {
        LinkExtSlice::Vlan(v) => Some(v.vlan_identifier().value()),
        LinkExtSlice::Macsec(_) => None,
    })
}

#[cfg(test)]
#[allow(clippy::cast_possible_truncation)] // test sizes are small
mod tests {
    use etherparse::{NetSlice, TransportSlice};

    use super::*;
    use crate::frame::testutil::{sll2_frame, udp_ipv4};

    #[test]
    fn linktype_numbers() {
        for (n, l) in [
            (0, LinkType::Null),
            (1, LinkType::Ethernet),
            (12, LinkType::RawIp),
            (14, LinkType::RawIp),
            (101, LinkType::RawIp),
            (108, LinkType::Loop),
            (113, LinkType::LinuxSll),
            (228, LinkType::Ipv4),
            (229, LinkType::Ipv6),
            (276, LinkType::LinuxSll2),
        ] {
            assert_eq!(LinkType::from_linktype(n), Some(l), "{n}");
        }
        assert_eq!(LinkType::from_linktype(105), None);
    }

    fn udp_port(s: &SlicedPacket<'_>) -> Option<u16> {
        match &s.transport {
            Some(TransportSlice::Udp(u)) => Some(u.destination_port()),
            _ => None,
        }
    }

    #[test]
    fn sll2_header_is_skipped() {
        let ip = udp_ipv4(b"x");
        let f = sll2_frame(0x0800, &ip);
        let s = slice(LinkType::LinuxSll2, &f).expect("slices");
        assert_eq!(udp_port(&s), Some(5060));
        assert!(matches!(
            slice(LinkType::LinuxSll2, &f[..19]),
            Err(DropReason::Truncated)
        ));
        // ARP in SLL2: sliced, but no IP.
        let arp = sll2_frame(0x0806, &[0; 28]);
        let s = slice(LinkType::LinuxSll2, &arp).expect("slices");
        assert!(!matches!(
            s.net,
            Some(NetSlice::Ipv4(_) | NetSlice::Ipv6(_))
        ));
    }

    #[test]
    fn null_family_in_either_byte_order() {
        let ip = udp_ipv4(b"x");
        for hdr in [[2u8, 0, 0, 0], [0, 0, 0, 2], [30, 0, 0, 0], [0, 0, 0, 24]] {
            let mut f = hdr.to_vec();
            f.extend_from_slice(&ip);
            let s = slice(LinkType::Null, &f).expect("slices");
            assert_eq!(udp_port(&s), Some(5060), "{hdr:?}");
        }
        let mut f = vec![0, 0, 0, 7];
        f.extend_from_slice(&ip);
        assert!(matches!(slice(LinkType::Null, &f), Err(DropReason::NotIp)));
        assert!(matches!(
            slice(LinkType::Null, &[2, 0]),
            Err(DropReason::Truncated)
        ));
    }

    #[test]
    fn loop_family_is_network_order() {
        let ip = udp_ipv4(b"x");
        let mut f = vec![0, 0, 0, 2];
        f.extend_from_slice(&ip);
        assert_eq!(
            udp_port(&slice(LinkType::Loop, &f).expect("slices")),
            Some(5060)
        );
        // Little endian 2 read in network order is not a family we know.
        let mut f = vec![2, 0, 0, 0];
        f.extend_from_slice(&ip);
        assert!(matches!(slice(LinkType::Loop, &f), Err(DropReason::NotIp)));
    }

    #[test]
    fn raw_ip_errors_map_to_reasons() {
        let ip = udp_ipv4(b"hello");
        assert!(matches!(
            slice(LinkType::RawIp, &ip[..ip.len() - 1]),
            Err(DropReason::Truncated)
        ));
        assert!(matches!(
            slice(LinkType::RawIp, &[]),
            Err(DropReason::Truncated)
        ));
        let mut bad = ip.clone();
        bad[0] = 0x75; // version 7
        assert!(matches!(
            slice(LinkType::RawIp, &bad),
            Err(DropReason::BadHeader)
        ));
        let mut short_total = ip;
        short_total[2] = 0;
        short_total[3] = 10; // total length shorter than the header
        assert!(matches!(
            slice(LinkType::RawIp, &short_total),
            Err(DropReason::BadHeader)
        ));
    }
}
