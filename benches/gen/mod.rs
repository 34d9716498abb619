//! A generator of realistic SIP captures for benchmarks: many overlapping
//! calls (INVITE, 100, 180, 200, ACK, BYE, 200) between a caller, a proxy
//! and a callee, as Ethernet/IPv4/UDP frames, optionally with a HEPv3 copy
//! of every message to port 9060 as Kamailio's siptrace sends it.
//!
//! Deterministic: the same arguments always give the same bytes.
#![allow(dead_code, clippy::cast_possible_truncation)]

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};

/// One generated frame: timestamp (ns since epoch) and Ethernet bytes.
pub struct Frame {
    /// Capture time, nanoseconds since the epoch.
    pub ts_ns: i64,
    /// The whole Ethernet frame.
    pub data: Vec<u8>,
}

/// What to generate.
#[derive(Clone, Debug)]
pub struct GenConfig {
    /// Number of calls.
    pub calls: usize,
    /// Calls started per second.
    pub cps: u64,
    /// Seconds from answer to BYE.
    pub hold_secs: u64,
    /// Also emit a HEPv3 copy of every SIP message to 10.0.0.9:9060.
    pub hep_copies: bool,
    /// Time of the first INVITE, seconds since the epoch.
    pub start_secs: i64,
}

impl Default for GenConfig {
    fn default() -> Self {
        GenConfig {
            calls: 1000,
            cps: 100,
            hold_secs: 30,
            hep_copies: false,
            start_secs: 1_790_000_000,
        }
    }
}

const CALLER: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 1), 5061);
const PROXY: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 2), 5060);

struct Msg {
    ts_ns: i64,
    src: SocketAddrV4,
    dst: SocketAddrV4,
    text: String,
}

fn call_messages(n: usize, t0: i64, hold_ns: i64) -> Vec<Msg> {
    let cid = format!("{n:08x}-4f2a-bench@10.0.0.1");
    let ftag = format!("{:x}", n.wrapping_mul(2_654_435_761));
    let ttag = format!("{:x}", n.wrapping_mul(40_503));
    let caller = format!("10{:06}", n % 1_000_000);
    let callee = format!("4420{:07}", (n * 7919) % 10_000_000);
    let branch = format!("z9hG4bK{n:x}a");
    let bye_branch = format!("z9hG4bK{n:x}b");
    let sdp = "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0 8 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\n";
    let req = |method: &str, cseq: u32, branch: &str, to_tag: bool, body: &str| {
        let tt = if to_tag {
            format!(";tag={ttag}")
        } else {
            String::new()
        };
        let ctype = if body.is_empty() {
            ""
        } else {
            "Content-Type: application/sdp\r\n"
        };
        format!(
            "{method} sip:{callee}@10.0.0.2:5060 SIP/2.0\r\n\
             Via: SIP/2.0/UDP 10.0.0.1:5061;branch={branch}\r\n\
             Max-Forwards: 70\r\n\
             From: \"{caller}\" <sip:{caller}@10.0.0.1:5061>;tag={ftag}\r\n\
             To: <sip:{callee}@10.0.0.2:5060>{tt}\r\n\
             Call-ID: {cid}\r\n\
             CSeq: {cseq} {method}\r\n\
             Contact: <sip:{caller}@10.0.0.1:5061>\r\n\
             User-Agent: accurate-bench\r\n\
             {ctype}Content-Length: {}\r\n\r\n{body}",
            body.len()
        )
    };
    let resp = |code: &str, cseq: u32, method: &str, branch: &str, to_tag: bool, body: &str| {
        let tt = if to_tag {
            format!(";tag={ttag}")
        } else {
            String::new()
        };
        let ctype = if body.is_empty() {
            ""
        } else {
            "Content-Type: application/sdp\r\n"
        };
        format!(
            "SIP/2.0 {code}\r\n\
             Via: SIP/2.0/UDP 10.0.0.1:5061;branch={branch};received=10.0.0.1\r\n\
             From: \"{caller}\" <sip:{caller}@10.0.0.1:5061>;tag={ftag}\r\n\
             To: <sip:{callee}@10.0.0.2:5060>{tt}\r\n\
             Call-ID: {cid}\r\n\
             CSeq: {cseq} {method}\r\n\
             Contact: <sip:{callee}@10.0.0.3:5060>\r\n\
             {ctype}Content-Length: {}\r\n\r\n{body}",
            body.len()
        )
    };
    let ms = 1_000_000i64;
    vec![
        Msg {
            ts_ns: t0,
            src: CALLER,
            dst: PROXY,
            text: req("INVITE", 1, &branch, false, sdp),
        },
        Msg {
            ts_ns: t0 + 2 * ms,
            src: PROXY,
            dst: CALLER,
            text: resp("100 Trying", 1, "INVITE", &branch, false, ""),
        },
        Msg {
            ts_ns: t0 + 80 * ms,
            src: PROXY,
            dst: CALLER,
            text: resp("180 Ringing", 1, "INVITE", &branch, true, ""),
        },
        Msg {
            ts_ns: t0 + 3000 * ms,
            src: PROXY,
            dst: CALLER,
            text: resp("200 OK", 1, "INVITE", &branch, true, sdp),
        },
        Msg {
            ts_ns: t0 + 3010 * ms,
            src: CALLER,
            dst: PROXY,
            text: req("ACK", 1, &format!("{branch}k"), true, ""),
        },
        Msg {
            ts_ns: t0 + 3000 * ms + hold_ns,
            src: CALLER,
            dst: PROXY,
            text: req("BYE", 2, &bye_branch, true, ""),
        },
        Msg {
            ts_ns: t0 + 3005 * ms + hold_ns,
            src: PROXY,
            dst: CALLER,
            text: resp("200 OK", 2, "BYE", &bye_branch, true, ""),
        },
    ]
}

fn udp_frame(src: SocketAddrV4, dst: SocketAddrV4, payload: &[u8]) -> Vec<u8> {
    let builder = etherparse::PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
        .ipv4(src.ip().octets(), dst.ip().octets(), 64)
        .udp(src.port(), dst.port());
    let mut v = Vec::with_capacity(builder.size(payload.len()));
    // Writing into a Vec cannot fail; payloads here are far below 64 KiB.
    builder.write(&mut v, payload).expect("frame fits");
    v
}

/// A HEPv3 packet (as Kamailio siptrace sends it) carrying one SIP message.
pub fn hep3(src: SocketAddrV4, dst: SocketAddrV4, ts_ns: i64, payload: &[u8]) -> Vec<u8> {
    let ts = capture::Timestamp::from_nanos(ts_ns);
    capture::hep::encode_v3(&capture::hep::HepPacket {
        version: capture::hep::HepVersion::V3,
        ts,
        ip_family: Some(2),
        ip_proto: Some(17),
        src_ipv4: Some(*src.ip()),
        dst_ipv4: Some(*dst.ip()),
        src_port: Some(src.port()),
        dst_port: Some(dst.port()),
        ts_secs: Some(ts.secs() as u32),
        ts_micros: Some(ts.subsec_micros()),
        proto_type: Some(1),
        capture_id: Some(2001),
        payload: Some(bytes::Bytes::copy_from_slice(payload)),
        ..capture::hep::HepPacket::default()
    })
}

/// Generates the frames, in timestamp order, calling `sink` for each.
/// Returns (frames, SIP messages).
pub fn generate(cfg: &GenConfig, mut sink: impl FnMut(Frame)) -> (u64, u64) {
    let gap = 1_000_000_000 / cfg.cps.max(1) as i64;
    let hold = cfg.hold_secs as i64 * 1_000_000_000;
    let start = cfg.start_secs * 1_000_000_000;
    // Calls overlap for `span` ns; emit in blocks whose events are sorted,
    // keeping only a block's worth of calls in memory.
    let span = 3_005_000_000 + hold;
    let block = ((span / gap) as usize + 1).max(1000);
    let hep_dst = SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 9), 9060);
    let mut pending: Vec<Msg> = Vec::new();
    let (mut frames, mut sip) = (0u64, 0u64);
    let mut next_call = 0usize;
    while next_call < cfg.calls || !pending.is_empty() {
        let until = (next_call + block).min(cfg.calls);
        for n in next_call..until {
            pending.extend(call_messages(n, start + n as i64 * gap, hold));
        }
        next_call = until;
        pending.sort_by_key(|m| m.ts_ns);
        // Everything before the next block's first INVITE is final.
        let horizon = if next_call < cfg.calls {
            start + next_call as i64 * gap
        } else {
            i64::MAX
        };
        let cut = pending.partition_point(|m| m.ts_ns < horizon);
        for m in pending.drain(..cut) {
            sink(Frame {
                ts_ns: m.ts_ns,
                data: udp_frame(m.src, m.dst, m.text.as_bytes()),
            });
            frames += 1;
            sip += 1;
            if cfg.hep_copies {
                let h = hep3(m.src, m.dst, m.ts_ns, m.text.as_bytes());
                let agent = SocketAddrV4::new(*m.dst.ip(), 33000);
                sink(Frame {
                    ts_ns: m.ts_ns,
                    data: udp_frame(agent, hep_dst, &h),
                });
                frames += 1;
            }
        }
    }
    (frames, sip)
}

/// Writes a pcap file (Ethernet, nanosecond timestamps) with libpcap.
pub fn write_pcap(path: &std::path::Path, cfg: &GenConfig) -> Result<(u64, u64), pcap::Error> {
    let dead = pcap::Capture::dead_with_precision(pcap::Linktype::ETHERNET, pcap::Precision::Nano)?;
    let mut save = dead.savefile(path)?;
    let counts = generate(cfg, |f| {
        let header = pcap::PacketHeader {
            ts: libc_timeval(f.ts_ns),
            caplen: f.data.len() as u32,
            len: f.data.len() as u32,
        };
        save.write(&pcap::Packet::new(&header, &f.data));
    });
    save.flush()?;
    Ok(counts)
}

fn libc_timeval(ts_ns: i64) -> libc::timeval {
    // Nanosecond-precision savefiles keep nanoseconds in tv_usec.
    libc::timeval {
        tv_sec: ts_ns / 1_000_000_000,
        tv_usec: ts_ns % 1_000_000_000,
    }
}

/// The address of the generated caller, for tests.
pub fn caller() -> SocketAddr {
    SocketAddr::V4(CALLER)
}

/// A typical SIP INVITE (no body), for per-packet benchmarks.
pub const INVITE: &str = "INVITE sip:442071234567@10.0.0.2:5060 SIP/2.0\r\n\
Via: SIP/2.0/UDP 10.0.0.1:5061;branch=z9hG4bK776asdhds\r\n\
Max-Forwards: 70\r\n\
From: \"1001\" <sip:1001@10.0.0.1:5061>;tag=1928301774\r\n\
To: <sip:442071234567@10.0.0.2:5060>\r\n\
Call-ID: a84b4c76e66710@10.0.0.1\r\n\
CSeq: 314159 INVITE\r\n\
Contact: <sip:1001@10.0.0.1:5061>\r\n\
Content-Length: 0\r\n\r\n";

/// Decodes generated Ethernet frames into SIP packets with a fresh
/// `FrameDecoder`, as a pcap replay would.
pub fn decode_frames(frames: &[Frame]) -> Vec<capture::SipPacket> {
    use capture::frame::{DecoderConfig, FrameDecoder, LinkType};
    let mut d = FrameDecoder::new(DecoderConfig::default());
    let mut out = Vec::with_capacity(frames.len());
    for f in frames {
        d.handle_frame(
            LinkType::Ethernet,
            capture::Timestamp::from_nanos(f.ts_ns),
            &f.data,
            f.data.len(),
            capture::Source::Pcap,
            &mut out,
        );
    }
    out
}
