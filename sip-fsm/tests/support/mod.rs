//! A small SIP message builder and a driver for the dialog machine.
#![allow(dead_code)]

use std::net::SocketAddr;

use bytes::Bytes;
use capture::{SipPacket, Source, Timestamp, Transport};
use sip_fsm::{Config, DialogEvent, DialogMachine, Stats};

/// Base time of every flow: 2023-11-14T22:13:20Z.
pub const BASE_MS: i64 = 1_700_000_000_000;

/// Milliseconds after [`BASE_MS`].
pub fn t(ms: i64) -> Timestamp {
    Timestamp::from_nanos((BASE_MS + ms) * 1_000_000)
}

/// Milliseconds after [`BASE_MS`] of a timestamp.
pub fn ms(ts: Timestamp) -> i64 {
    ts.as_nanos() / 1_000_000 - BASE_MS
}

/// Who sends a request (responses keep the request's From/To).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dir {
    Caller,
    Callee,
}

/// One call's identity: Call-ID, tags, users.
#[derive(Clone, Debug)]
pub struct Flow {
    pub call_id: String,
    pub from_tag: String,
    pub caller: String,
    pub callee: String,
}

impl Flow {
    pub fn new(call_id: &str) -> Self {
        Flow {
            call_id: call_id.into(),
            from_tag: "ft1".into(),
            caller: "1001".into(),
            callee: "1002".into(),
        }
    }

    fn headers(&self, dir: Dir, to_tag: Option<&str>) -> (String, String) {
        let a = format!(
            "\"Alice\" <sip:{}@atlanta.example>;tag={}",
            self.caller, self.from_tag
        );
        let b = |tag: Option<&str>| match tag {
            Some(tag) => format!("<sip:{}@biloxi.example>;tag={tag}", self.callee),
            None => format!("<sip:{}@biloxi.example>", self.callee),
        };
        match dir {
            Dir::Caller => (a, b(to_tag)),
            // A callee-originated request: From is the callee (with its tag).
            Dir::Callee => (
                b(to_tag),
                format!(
                    "<sip:{}@atlanta.example>;tag={}",
                    self.caller, self.from_tag
                ),
            ),
        }
    }

    /// A request. `to_tag` is the callee's tag (None for the initial INVITE).
    #[allow(clippy::too_many_arguments)]
    pub fn req(
        &self,
        method: &str,
        dir: Dir,
        cseq: u32,
        to_tag: Option<&str>,
        branch: &str,
        extra: &str,
    ) -> String {
        let (from, to) = self.headers(dir, to_tag);
        format!(
            "{method} sip:{}@biloxi.example SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1:5060;branch={branch}\r\nMax-Forwards: 70\r\nFrom: {from}\r\nTo: {to}\r\nCall-ID: {}\r\nCSeq: {cseq} {method}\r\nContact: <sip:{}@10.0.0.1>\r\n{extra}Content-Length: 0\r\n\r\n",
            self.callee, self.call_id, self.caller
        )
    }

    /// A response to a request sent in direction `dir`.
    #[allow(clippy::too_many_arguments)]
    pub fn resp(
        &self,
        code: u16,
        method: &str,
        dir: Dir,
        cseq: u32,
        to_tag: Option<&str>,
        branch: &str,
        extra: &str,
    ) -> String {
        let (from, to) = self.headers(dir, to_tag);
        let phrase = match code {
            180 => "Ringing",
            183 => "Session Progress",
            200 => "OK",
            302 => "Moved Temporarily",
            401 => "Unauthorized",
            407 => "Proxy Authentication Required",
            481 => "Call/Transaction Does Not Exist",
            486 => "Busy Here",
            487 => "Request Terminated",
            _ => "Whatever",
        };
        format!(
            "SIP/2.0 {code} {phrase}\r\nVia: SIP/2.0/UDP 10.0.0.1:5060;branch={branch}\r\nFrom: {from}\r\nTo: {to}\r\nCall-ID: {}\r\nCSeq: {cseq} {method}\r\n{extra}Content-Length: 0\r\n\r\n",
            self.call_id
        )
    }

    // Shorthands for the common caller-side messages.
    pub fn invite(&self, cseq: u32, branch: &str) -> String {
        self.req("INVITE", Dir::Caller, cseq, None, branch, "")
    }
    pub fn r(&self, code: u16, cseq: u32, to_tag: Option<&str>, branch: &str) -> String {
        self.resp(code, "INVITE", Dir::Caller, cseq, to_tag, branch, "")
    }
}

/// Rewrites a message as a copy seen at another hop: a new top Via branch
/// and a lower Max-Forwards (what a proxy such as Kamailio changes).
pub fn hop_copy(msg: &str) -> String {
    msg.replacen(";branch=", ";branch=hop2-", 1)
        .replace("Max-Forwards: 70", "Max-Forwards: 69")
}

/// A packet seen at `ms` at capture point `node`.
pub fn pkt_at(at: i64, node: &str, payload: &str) -> SipPacket {
    let addr = |s: &str| s.parse::<SocketAddr>().expect("addr");
    SipPacket {
        ts: t(at),
        src: addr("10.0.0.1:5060"),
        dst: addr("10.0.0.2:5060"),
        transport: Transport::Udp,
        source: Source::Hep,
        capture_id: None,
        node: Some(node.into()),
        correlation_id: None,
        vlan: None,
        payload: Bytes::from(payload.to_owned()),
    }
}

/// A packet seen at `ms` at capture point `edge`.
pub fn pkt(at: i64, payload: &str) -> SipPacket {
    pkt_at(at, "edge", payload)
}

/// Feeds packets in the given order with `now` = each packet's time (never
/// going back), then lets every deadline pass.
pub fn run(cfg: Config, pkts: &[SipPacket]) -> (Vec<DialogEvent>, Stats) {
    let mut m = DialogMachine::new(cfg).expect("config");
    let mut events = Vec::new();
    for p in pkts {
        m.handle(p, p.ts);
        while let Some(e) = m.poll_event() {
            events.push(e);
        }
    }
    m.handle_timeout(Timestamp::from_nanos(i64::MAX));
    while let Some(e) = m.poll_event() {
        events.push(e);
    }
    assert_eq!(m.poll_timeout(), None, "all deadlines passed");
    assert_eq!(m.live_dialogs(), 0, "every dialog reaped");
    (events, m.stats().clone())
}

fn d(x: Option<std::time::Duration>) -> String {
    x.map_or("-".into(), |d| d.as_millis().to_string())
}

/// A one-line summary of an event with every time as ms after [`BASE_MS`].
pub fn summary(e: &DialogEvent) -> String {
    match e {
        DialogEvent::Attempt { call } => {
            format!("attempt {} setup={}", call.call_id(), ms(call.setup_time))
        }
        DialogEvent::Answer {
            call,
            answer_time,
            to_tag,
            pdd,
            session_expires,
        } => format!(
            "answer {} at={} tag={} pdd={} se={:?}",
            call.call_id(),
            ms(*answer_time),
            to_tag.as_deref().unwrap_or("-"),
            d(*pdd),
            session_expires
        ),
        DialogEvent::Update {
            call,
            at,
            method,
            by,
            session_expires,
        } => {
            format!(
                "update {} at={} {method:?} by={by:?} se={session_expires:?}",
                call.call_id(),
                ms(*at)
            )
        }
        DialogEvent::End(r) | DialogEvent::Failed(r) => format!(
            "{} {} {} code={} answer={} end={} dur={} pdd={} ring={} by={} cause={}",
            if matches!(e, DialogEvent::End(_)) {
                "end"
            } else {
                "failed"
            },
            r.call.call_id(),
            r.end_reason.as_str(),
            r.code,
            r.answer_time.map_or("-".into(), |a| ms(a).to_string()),
            ms(r.end_time),
            r.duration.as_millis(),
            d(r.pdd),
            d(r.ring_time),
            r.ended_by.map_or("-".into(), |p| format!("{p:?}")),
            r.reason
                .as_ref()
                .and_then(|r| r.cause)
                .map_or("-".into(), |c| c.to_string()),
        ),
    }
}

pub fn summaries(events: &[DialogEvent]) -> Vec<String> {
    events.iter().map(summary).collect()
}

/// Config with no reorder delay unless a test asks for one.
pub fn cfg() -> Config {
    Config::default()
}
