//! HEP encoders: HEPv3 with every chunk the decoder reads (tests, replaying
//! captures to a collector), and Kamailio's HEPv1/v2 layout (tests).

use super::v3::{HEADER_LEN, MAGIC, chunk};
use super::v12::{BASE_LEN, TIME_LEN};
use super::{AF_INET, AF_INET6, HepError, HepPacket, HepVersion, is_af_inet6};

/// Encodes `p` as HEPv3: each field that is `Some` becomes one chunk, in
/// chunk-number order except the payloads, which go last. `version` and `ts`
/// are not written (`ts` comes from the timestamp chunks on decode).
///
/// Returns an empty vector if the packet does not fit HEPv3's 16-bit length
/// (over 65535 bytes); [`try_encode_v3`] says so as an error.
pub fn encode_v3(p: &HepPacket) -> Vec<u8> {
    try_encode_v3(p).unwrap_or_default()
}

/// [`encode_v3`], with [`HepError::TooLarge`] when the packet does not fit.
pub fn try_encode_v3(p: &HepPacket) -> Result<Vec<u8>, HepError> {
    let mut w = Writer(Vec::with_capacity(
        128 + p.payload.as_ref().map_or(0, |b| b.len()),
    ));
    w.0.extend_from_slice(MAGIC);
    w.0.extend_from_slice(&[0, 0]);
    w.opt(chunk::IP_FAMILY, p.ip_family.map(|v| [v]));
    w.opt(chunk::IP_PROTO, p.ip_proto.map(|v| [v]));
    w.opt(chunk::SRC_IPV4, p.src_ipv4.map(|a| a.octets()));
    w.opt(chunk::DST_IPV4, p.dst_ipv4.map(|a| a.octets()));
    w.opt(chunk::SRC_IPV6, p.src_ipv6.map(|a| a.octets()));
    w.opt(chunk::DST_IPV6, p.dst_ipv6.map(|a| a.octets()));
    w.opt(chunk::SRC_PORT, p.src_port.map(u16::to_be_bytes));
    w.opt(chunk::DST_PORT, p.dst_port.map(u16::to_be_bytes));
    w.opt(chunk::TS_SECS, p.ts_secs.map(u32::to_be_bytes));
    w.opt(chunk::TS_MICROS, p.ts_micros.map(u32::to_be_bytes));
    w.opt(chunk::PROTO_TYPE, p.proto_type.map(|v| [v]));
    w.opt(chunk::CAPTURE_ID, p.capture_id.map(u32::to_be_bytes));
    w.opt(chunk::KEEP_ALIVE, p.keep_alive.map(u16::to_be_bytes));
    w.opt(chunk::AUTH_KEY, p.auth_key.as_ref());
    w.opt(chunk::CORRELATION_ID, p.correlation_id.as_ref());
    w.opt(chunk::VLAN, p.vlan.map(u16::to_be_bytes));
    w.opt(chunk::NODE_NAME, p.node_name.as_ref());
    w.opt(chunk::SRC_MAC, p.src_mac);
    w.opt(chunk::DST_MAC, p.dst_mac);
    w.opt(chunk::ETH_TYPE, p.eth_type.map(u16::to_be_bytes));
    w.opt(chunk::TCP_FLAGS, p.tcp_flags.map(|v| [v]));
    w.opt(chunk::IP_TOS, p.ip_tos.map(|v| [v]));
    w.opt(chunk::PAYLOAD, p.payload.as_ref());
    w.opt(chunk::COMPRESSED, p.compressed_payload.as_ref());
    let mut v = w.0;
    let total = u16::try_from(v.len()).map_err(|_| HepError::TooLarge(v.len()))?;
    if let Some(len) = v.get_mut(4..HEADER_LEN) {
        len.copy_from_slice(&total.to_be_bytes());
    }
    Ok(v)
}

/// Appends chunks; lengths are checked once, on the whole packet.
struct Writer(Vec<u8>);

impl Writer {
    fn opt(&mut self, ty: u16, data: Option<impl AsRef<[u8]>>) {
        let Some(data) = data else { return };
        let data = data.as_ref();
        // An oversize chunk makes the whole packet oversize, which
        // try_encode_v3 reports; the saturated length is never sent.
        let len = u16::try_from(HEADER_LEN + data.len()).unwrap_or(u16::MAX);
        self.0.extend_from_slice(&0u16.to_be_bytes());
        self.0.extend_from_slice(&ty.to_be_bytes());
        self.0.extend_from_slice(&len.to_be_bytes());
        self.0.extend_from_slice(data);
    }
}

/// Encodes `p` in Kamailio's HEPv1 or HEPv2 layout, by `p.version`.
///
/// `None` when the packet cannot be expressed: version 3, no complete IPv4
/// or IPv6 address pair, or (v2) a capture id over 16 bits. Missing ports,
/// protocol, time and capture id are written as 0 (protocol as UDP).
pub fn encode_v1v2(p: &HepPacket) -> Option<Vec<u8>> {
    let v2 = match p.version {
        HepVersion::V1 => false,
        HepVersion::V2 => true,
        HepVersion::V3 => return None,
    };
    let v4 = p.src_ipv4.zip(p.dst_ipv4);
    let v6 = p.src_ipv6.zip(p.dst_ipv6);
    let use_v6 = match p.ip_family {
        Some(AF_INET) => false,
        Some(f) if is_af_inet6(f) => true,
        Some(_) => return None,
        None => v4.is_none(),
    };
    let (family, addrs) = if use_v6 {
        let (s, d) = v6?;
        let mut a = s.octets().to_vec();
        a.extend_from_slice(&d.octets());
        (p.ip_family.unwrap_or(AF_INET6), a)
    } else {
        let (s, d) = v4?;
        let mut a = s.octets().to_vec();
        a.extend_from_slice(&d.octets());
        (AF_INET, a)
    };
    let hdr_len = u8::try_from(BASE_LEN + addrs.len()).ok()?;
    let payload = p.payload.as_deref().unwrap_or_default();
    let mut v = Vec::with_capacity(usize::from(hdr_len) + TIME_LEN + payload.len());
    v.extend_from_slice(&[
        if v2 { 2 } else { 1 },
        hdr_len,
        family,
        p.ip_proto.unwrap_or(17),
    ]);
    v.extend_from_slice(&p.src_port.unwrap_or(0).to_be_bytes());
    v.extend_from_slice(&p.dst_port.unwrap_or(0).to_be_bytes());
    v.extend_from_slice(&addrs);
    if v2 {
        let capture_id = u16::try_from(p.capture_id.unwrap_or(0)).ok()?;
        v.extend_from_slice(&p.ts_secs.unwrap_or(0).to_le_bytes());
        v.extend_from_slice(&p.ts_micros.unwrap_or(0).to_le_bytes());
        v.extend_from_slice(&capture_id.to_le_bytes());
        v.extend_from_slice(&[0, 0]);
    }
    v.extend_from_slice(payload);
    Some(v)
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, Ipv6Addr};

    use bytes::Bytes;
    use proptest::prelude::*;

    use super::*;
    use crate::Timestamp;
    use crate::hep::{decode, resolve_ts};

    fn bytes_opt() -> impl Strategy<Value = Option<Bytes>> {
        proptest::option::of(proptest::collection::vec(any::<u8>(), 0..300).prop_map(Bytes::from))
    }

    prop_compose! {
        fn arb_packet()(
            a in (any::<Option<u8>>(), any::<Option<u8>>(), any::<Option<[u8; 4]>>(),
                  any::<Option<[u8; 4]>>(), any::<Option<[u8; 16]>>(), any::<Option<[u8; 16]>>(),
                  any::<Option<u16>>(), any::<Option<u16>>()),
            b in (any::<Option<u32>>(), any::<Option<u32>>(), any::<Option<u8>>(),
                  any::<Option<u32>>(), any::<Option<u16>>(), any::<Option<u16>>()),
            c in (bytes_opt(), bytes_opt(), bytes_opt(), bytes_opt(), bytes_opt()),
            d in (any::<Option<[u8; 6]>>(), any::<Option<[u8; 6]>>(), any::<Option<u16>>(),
                  any::<Option<u8>>(), any::<Option<u8>>()),
            fallback in any::<i64>(),
        ) -> (HepPacket, Timestamp) {
            let fallback = Timestamp::from_nanos(fallback);
            let p = HepPacket {
                version: HepVersion::V3,
                ts: resolve_ts(b.0, b.1, fallback),
                ip_family: a.0,
                ip_proto: a.1,
                src_ipv4: a.2.map(Ipv4Addr::from),
                dst_ipv4: a.3.map(Ipv4Addr::from),
                src_ipv6: a.4.map(Ipv6Addr::from),
                dst_ipv6: a.5.map(Ipv6Addr::from),
                src_port: a.6,
                dst_port: a.7,
                ts_secs: b.0,
                ts_micros: b.1,
                proto_type: b.2,
                capture_id: b.3,
                keep_alive: b.4,
                vlan: b.5,
                auth_key: c.0,
                payload: c.1,
                compressed_payload: c.2,
                correlation_id: c.3,
                node_name: c.4,
                src_mac: d.0,
                dst_mac: d.1,
                eth_type: d.2,
                tcp_flags: d.3,
                ip_tos: d.4,
            };
            (p, fallback)
        }
    }

    proptest! {
        #[test]
        fn v3_round_trip((p, fallback) in arb_packet()) {
            let wire = encode_v3(&p);
            prop_assert!(!wire.is_empty());
            prop_assert_eq!(decode(&wire, fallback).unwrap(), p);
        }
    }

    #[test]
    fn full_packet_is_byte_exact() {
        let p = HepPacket {
            ip_family: Some(2),
            proto_type: Some(1),
            payload: Some(Bytes::from_static(b"X")),
            ..HepPacket::default()
        };
        assert_eq!(
            encode_v3(&p),
            b"HEP3\x00\x1b\x00\x00\x00\x01\x00\x07\x02\x00\x00\x00\x0b\x00\x07\x01\x00\x00\x00\x0f\x00\x07X"
        );
    }

    #[test]
    fn too_large_is_refused() {
        let p = HepPacket {
            payload: Some(Bytes::from(vec![0u8; 65_530])),
            ..HepPacket::default()
        };
        assert_eq!(try_encode_v3(&p), Err(HepError::TooLarge(65_542)));
        assert!(encode_v3(&p).is_empty());
        let p = HepPacket {
            payload: Some(Bytes::from(vec![0u8; 65_523])),
            ..HepPacket::default()
        };
        assert_eq!(encode_v3(&p).len(), 65_535);
    }

    #[test]
    fn v1v2_refuses_what_it_cannot_express() {
        let mut p = HepPacket {
            version: HepVersion::V2,
            src_ipv4: Some(Ipv4Addr::LOCALHOST),
            dst_ipv4: Some(Ipv4Addr::LOCALHOST),
            capture_id: Some(70_000),
            ..HepPacket::default()
        };
        assert_eq!(encode_v1v2(&p), None);
        p.capture_id = Some(9);
        assert!(encode_v1v2(&p).is_some());
        p.dst_ipv4 = None;
        assert_eq!(encode_v1v2(&p), None);
        p.version = HepVersion::V3;
        assert_eq!(encode_v1v2(&p), None);
    }
}
