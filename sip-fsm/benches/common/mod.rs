//! The bench traffic: concurrent calls through a proxy, each message seen
//! on both legs (as with Kamailio siptrace): INVITE, 100, 180, 200, ACK,
//! BYE, 200, i.e. 14 packets per call, with realistic header sets.
#![allow(dead_code, clippy::unwrap_used)] // shared by the bench binaries

use capture::{SipPacket, Source, Timestamp, Transport};

/// One message of call `call` on leg `leg` (0 or 1).
pub fn msg(first: &str, call: u64, cseq: &str, to_tag: bool, branch: &str, leg: u8) -> String {
    let to_tag = if to_tag { ";tag=as5b2c0e71" } else { "" };
    format!(
        "{first}\r\nVia: SIP/2.0/UDP 192.0.2.{leg}:5060;branch=z9hG4bK-{branch}-{call}-{leg};rport\r\n\
Max-Forwards: {}\r\nFrom: \"Office {call}\" <sip:4940{call:07}@pbx.customer.example>;tag=3f6b9c1a{call}\r\n\
To: <sip:4930{call:07}@sip.carrier.example>{to_tag}\r\nCall-ID: {call:016x}-NjZlMDQ5ZWJhNTk1ZjE0YjQ0MmM0ODk3@192.0.2.10\r\n\
CSeq: {cseq}\r\nContact: <sip:4940{call:07}@192.0.2.10:5060>\r\nUser-Agent: Bench UA 1.0\r\n\
Allow: INVITE, ACK, CANCEL, OPTIONS, BYE, REFER, NOTIFY, UPDATE\r\nSupported: replaces, timer\r\n\
Content-Type: application/sdp\r\nContent-Length: 0\r\n\r\n",
        70 - leg
    )
}

/// `calls` calls starting 1 ms apart, each lasting `concurrent` ms (so
/// that many are live at once), every message on both legs, in time order.
pub fn traffic(calls: u64, concurrent: u64) -> Vec<SipPacket> {
    let mut out = Vec::new();
    let ruri = |c: u64| format!("INVITE sip:4930{c:07}@sip.carrier.example SIP/2.0");
    for c in 0..calls {
        // Calls start 1 ms apart; each lasts `concurrent` ms, so that many
        // are live at once.
        let t0 = (c as i64) * 1_000_000;
        let steps: [(i64, String); 7] = [
            (0, msg(&ruri(c), c, "1 INVITE", false, "inv", 0)),
            (1, msg("SIP/2.0 100 Trying", c, "1 INVITE", false, "inv", 0)),
            (
                100,
                msg("SIP/2.0 180 Ringing", c, "1 INVITE", true, "inv", 0),
            ),
            (400, msg("SIP/2.0 200 OK", c, "1 INVITE", true, "inv", 0)),
            (
                401,
                msg(
                    "ACK sip:4930@192.0.2.20 SIP/2.0",
                    c,
                    "1 ACK",
                    true,
                    "ack",
                    0,
                ),
            ),
            (
                concurrent as i64,
                msg(
                    "BYE sip:4930@192.0.2.20 SIP/2.0",
                    c,
                    "2 BYE",
                    true,
                    "bye",
                    0,
                ),
            ),
            (
                concurrent as i64 + 1,
                msg("SIP/2.0 200 OK", c, "2 BYE", true, "bye", 0),
            ),
        ];
        for (dt, m) in steps {
            for leg in 0..2u8 {
                let text = if leg == 0 {
                    m.clone()
                } else {
                    m.replace("-0;rport", "-1;rport")
                        .replace("Max-Forwards: 70", "Max-Forwards: 69")
                };
                out.push(SipPacket {
                    ts: Timestamp::from_nanos(
                        1_700_000_000_000_000_000 + t0 + dt * 1_000_000 + i64::from(leg) * 100_000,
                    ),
                    src: "192.0.2.10:5060".parse().unwrap(),
                    dst: "192.0.2.20:5060".parse().unwrap(),
                    transport: Transport::Udp,
                    source: Source::Pcap,
                    capture_id: None,
                    node: None,
                    correlation_id: None,
                    vlan: None,
                    payload: text.into_bytes().into(),
                });
            }
        }
    }
    out.sort_by_key(|p| p.ts);
    out
}
