//! One Diameter peer connection (RFC 6733 §5): the capabilities exchange
//! (CER/CEA), watchdogs both ways (DWR/DWA), the disconnect (DPR/DPA),
//! answers to what this agent does not take (unknown commands, unknown
//! mandatory AVPs, requests before the CER) and Abort-Session-Requests
//! out. Sans-IO: bytes and `now` in, [`Event`]s and bytes out.

use std::collections::VecDeque;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::avp::{Avp, AvpType};
use super::dict::Dictionary;
use super::message::{Decoded, FLAG_E, FLAG_R, Malformed, Message, decode};
use super::{code, result};

/// What this agent says about itself.
#[derive(Debug, Clone)]
pub struct PeerConfig {
    /// Origin-Host.
    pub origin_host: String,
    /// Origin-Realm.
    pub origin_realm: String,
    /// Host-IP-Address.
    pub host_ip: IpAddr,
    /// Vendor-Id.
    pub vendor_id: u32,
    /// Product-Name.
    pub product_name: String,
    /// A DWR goes out after this long without a message from the peer;
    /// the connection closes when the DWR is not answered in as long.
    pub watchdog: Duration,
    /// The largest message accepted.
    pub max_message: usize,
    /// The first Hop-by-Hop and End-to-End identifiers (seedable).
    pub id_seed: u32,
}

impl Default for PeerConfig {
    fn default() -> Self {
        PeerConfig {
            origin_host: "accurate.localdomain".into(),
            origin_realm: "localdomain".into(),
            host_ip: IpAddr::from([127, 0, 0, 1]),
            vendor_id: 0,
            product_name: "AccuRate".into(),
            watchdog: Duration::from_secs(30),
            max_message: 1 << 20,
            id_seed: 1,
        }
    }
}

/// Why a message was refused (for counters).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BadReason {
    /// The header does not frame a message (the connection closes).
    Framing,
    /// The AVPs do not decode (answered 5014).
    Avps,
    /// An unknown AVP with `M` (answered 5001).
    UnknownMandatory,
    /// A request before the capabilities exchange (answered 3010).
    BeforeCer,
    /// A command this agent does not serve (answered 3001).
    UnsupportedCommand,
    /// An application this agent does not serve (answered 3007 / 5010).
    UnsupportedApplication,
}

/// Why the connection ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CloseReason {
    /// The peer sent a DPR (answered).
    PeerDisconnect,
    /// A DWR went unanswered.
    WatchdogTimeout,
    /// Bytes that are not Diameter.
    Malformed(String),
    /// No CER, or a CER refused.
    NoCapabilities,
    /// This agent sent a DPR.
    LocalDisconnect,
}

/// What a peer's bytes mean to the agent.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// The CER was accepted.
    Opened {
        /// The peer's Origin-Host.
        host: String,
        /// The peer's Origin-Realm.
        realm: String,
    },
    /// A Credit-Control-Request, for the credit-control layer to answer
    /// through [`Peer::send`].
    CreditControl(Message),
    /// An answer to a request this agent sent (ASA, RAA).
    Answer(Message),
    /// A message refused (already answered where one can be).
    Bad(BadReason),
    /// The connection is over: flush [`Peer::poll_transmit`], then close.
    Closed(CloseReason),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    WaitCer { since: Instant },
    Open { host: String, realm: String },
    Closed,
}

/// One peer connection.
#[derive(Debug)]
pub struct Peer {
    cfg: PeerConfig,
    dict: Arc<Dictionary>,
    state: State,
    buf: Vec<u8>,
    out: VecDeque<Vec<u8>>,
    last_rx: Instant,
    dwr_sent: Option<Instant>,
    next_id: u32,
}

impl Peer {
    /// A connection accepted at `now`, waiting for its CER.
    #[must_use]
    pub fn new(cfg: PeerConfig, dict: Arc<Dictionary>, now: Instant) -> Peer {
        let next_id = cfg.id_seed;
        Peer {
            cfg,
            dict,
            state: State::WaitCer { since: now },
            buf: Vec::new(),
            out: VecDeque::new(),
            last_rx: now,
            dwr_sent: None,
            next_id,
        }
    }

    /// The configuration.
    #[must_use]
    pub fn config(&self) -> &PeerConfig {
        &self.cfg
    }

    /// The peer's Origin-Host and Origin-Realm once the CER is in.
    #[must_use]
    pub fn remote(&self) -> Option<(&str, &str)> {
        match &self.state {
            State::Open { host, realm } => Some((host, realm)),
            _ => None,
        }
    }

    /// Whether the connection is over (flush, then close).
    #[must_use]
    pub fn is_closed(&self) -> bool {
        self.state == State::Closed
    }

    /// Bytes to write, oldest first.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.out.pop_front()
    }

    /// When [`Peer::handle_timeout`] wants to run next.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        match &self.state {
            State::WaitCer { since } => Some(*since + self.cfg.watchdog),
            State::Open { .. } => Some(
                self.dwr_sent
                    .map_or(self.last_rx + self.cfg.watchdog, |t| t + self.cfg.watchdog),
            ),
            State::Closed => None,
        }
    }

    /// Runs the watchdog: a DWR after `watchdog` of silence, the end when
    /// it goes unanswered, the end when no CER came.
    pub fn handle_timeout(&mut self, now: Instant) -> Vec<Event> {
        match self.state {
            State::WaitCer { since } if now >= since + self.cfg.watchdog => {
                self.state = State::Closed;
                vec![Event::Closed(CloseReason::NoCapabilities)]
            }
            State::Open { .. } => match self.dwr_sent {
                Some(t) if now >= t + self.cfg.watchdog => {
                    self.state = State::Closed;
                    vec![Event::Closed(CloseReason::WatchdogTimeout)]
                }
                None if now >= self.last_rx + self.cfg.watchdog => {
                    let mut dwr = self.request(code::DEVICE_WATCHDOG, 0, false);
                    self.identity(&mut dwr);
                    self.send(&dwr);
                    self.dwr_sent = Some(now);
                    Vec::new()
                }
                _ => Vec::new(),
            },
            _ => Vec::new(),
        }
    }

    /// Queues `msg` for the peer.
    pub fn send(&mut self, msg: &Message) {
        self.out.push_back(msg.encode());
    }

    /// Queues an Abort-Session-Request for `session_id` (RFC 4006 §5.6,
    /// RFC 6733 §8.5); `false` when the peer is not open.
    pub fn abort_session(&mut self, session_id: &str) -> bool {
        let Some((host, realm)) = self.remote().map(|(h, r)| (h.to_owned(), r.to_owned())) else {
            return false;
        };
        let mut asr = self.request(code::ABORT_SESSION, code::APP_CREDIT_CONTROL, true);
        asr.push(Avp::text(code::SESSION_ID, session_id));
        self.identity(&mut asr);
        asr.push(Avp::text(code::DESTINATION_REALM, &realm));
        asr.push(Avp::text(code::DESTINATION_HOST, &host));
        asr.push(Avp::u32(
            code::AUTH_APPLICATION_ID,
            code::APP_CREDIT_CONTROL,
        ));
        self.send(&asr);
        true
    }

    /// Queues a DPR (the agent is stopping) and ends the connection.
    pub fn disconnect(&mut self) -> Vec<Event> {
        if self.remote().is_none() {
            self.state = State::Closed;
            return vec![Event::Closed(CloseReason::LocalDisconnect)];
        }
        let mut dpr = self.request(code::DISCONNECT_PEER, 0, false);
        self.identity(&mut dpr);
        dpr.push(Avp::u32(code::DISCONNECT_CAUSE, 0)); // REBOOTING
        self.send(&dpr);
        self.state = State::Closed;
        vec![Event::Closed(CloseReason::LocalDisconnect)]
    }

    /// Feeds bytes read at `now`.
    pub fn handle_bytes(&mut self, data: &[u8], now: Instant) -> Vec<Event> {
        let mut events = Vec::new();
        if self.is_closed() {
            return events;
        }
        self.buf.extend_from_slice(data);
        self.last_rx = now;
        loop {
            match decode(&self.buf, self.cfg.max_message) {
                Ok(Decoded::Incomplete) => break,
                Ok(Decoded::Message { msg, consumed }) => {
                    self.buf.drain(..consumed);
                    self.handle_message(msg, &mut events);
                }
                Err(Malformed::Avps {
                    header, consumed, ..
                }) => {
                    self.buf.drain(..consumed);
                    events.push(Event::Bad(BadReason::Avps));
                    if header.is_request() {
                        let a = self.answer(&header, result::INVALID_AVP_LENGTH);
                        self.send(&a);
                    }
                }
                Err(Malformed::Header(e)) => {
                    self.buf.clear();
                    self.state = State::Closed;
                    events.push(Event::Bad(BadReason::Framing));
                    events.push(Event::Closed(CloseReason::Malformed(e.to_string())));
                }
            }
            if self.is_closed() {
                break;
            }
        }
        events
    }

    fn handle_message(&mut self, msg: Message, events: &mut Vec<Event>) {
        if !msg.is_request() {
            if msg.code == code::DEVICE_WATCHDOG {
                self.dwr_sent = None;
            } else if msg.code == code::DISCONNECT_PEER {
                self.state = State::Closed;
                events.push(Event::Closed(CloseReason::LocalDisconnect));
            } else if matches!(self.state, State::Open { .. }) {
                events.push(Event::Answer(msg));
            }
            return;
        }
        // Any message from the peer proves it alive.
        self.dwr_sent = None;
        if msg.code == code::CAPABILITIES_EXCHANGE {
            self.capabilities(&msg, events);
            return;
        }
        if !matches!(self.state, State::Open { .. }) {
            let mut a = self.answer(&msg, result::UNKNOWN_PEER);
            a.flags |= FLAG_E;
            self.send(&a);
            self.state = State::Closed;
            events.push(Event::Bad(BadReason::BeforeCer));
            events.push(Event::Closed(CloseReason::NoCapabilities));
            return;
        }
        if let Some(failed) = self.unknown_mandatory(&msg.avps, 0) {
            let mut a = self.answer(&msg, result::AVP_UNSUPPORTED);
            a.push(Avp::grouped(code::FAILED_AVP, None, true, &[failed]));
            self.send(&a);
            events.push(Event::Bad(BadReason::UnknownMandatory));
            return;
        }
        match msg.code {
            code::DEVICE_WATCHDOG => {
                let a = self.answer(&msg, result::SUCCESS);
                self.send(&a);
            }
            code::DISCONNECT_PEER => {
                let a = self.answer(&msg, result::SUCCESS);
                self.send(&a);
                self.state = State::Closed;
                events.push(Event::Closed(CloseReason::PeerDisconnect));
            }
            code::CREDIT_CONTROL if msg.app_id == code::APP_CREDIT_CONTROL => {
                events.push(Event::CreditControl(msg));
            }
            code::CREDIT_CONTROL => {
                let mut a = self.answer(&msg, result::APPLICATION_UNSUPPORTED);
                a.flags |= FLAG_E;
                self.send(&a);
                events.push(Event::Bad(BadReason::UnsupportedApplication));
            }
            _ => {
                let mut a = self.answer(&msg, result::COMMAND_UNSUPPORTED);
                a.flags |= FLAG_E;
                self.send(&a);
                events.push(Event::Bad(BadReason::UnsupportedCommand));
            }
        }
    }

    fn capabilities(&mut self, cer: &Message, events: &mut Vec<Event>) {
        let text = |c: u32| cer.find(c, None).and_then(Avp::as_str).map(str::to_owned);
        let (Some(host), Some(realm)) = (text(code::ORIGIN_HOST), text(code::ORIGIN_REALM)) else {
            let a = self.answer(cer, result::MISSING_AVP);
            self.send(&a);
            self.state = State::Closed;
            events.push(Event::Closed(CloseReason::NoCapabilities));
            return;
        };
        let serves = |a: &Avp| {
            a.as_u32()
                .is_some_and(|id| id == code::APP_CREDIT_CONTROL || id == code::APP_RELAY)
        };
        let common = cer.avps.iter().any(|a| {
            (a.code == code::AUTH_APPLICATION_ID && a.vendor.is_none() && serves(a))
                || (a.code == code::VENDOR_SPECIFIC_APPLICATION_ID
                    && a.children().is_ok_and(|cs| {
                        cs.iter()
                            .any(|c| c.code == code::AUTH_APPLICATION_ID && serves(c))
                    }))
        });
        let mut cea = self.answer(
            cer,
            if common {
                result::SUCCESS
            } else {
                result::NO_COMMON_APPLICATION
            },
        );
        cea.push(Avp::address(code::HOST_IP_ADDRESS, self.cfg.host_ip));
        cea.push(Avp::u32(code::VENDOR_ID, self.cfg.vendor_id));
        cea.push(Avp::new(
            code::PRODUCT_NAME,
            None,
            false,
            self.cfg.product_name.as_bytes().to_vec(),
        ));
        cea.push(Avp::u32(
            code::AUTH_APPLICATION_ID,
            code::APP_CREDIT_CONTROL,
        ));
        self.send(&cea);
        if common {
            self.state = State::Open {
                host: host.clone(),
                realm: realm.clone(),
            };
            events.push(Event::Opened { host, realm });
        } else {
            self.state = State::Closed;
            events.push(Event::Bad(BadReason::UnsupportedApplication));
            events.push(Event::Closed(CloseReason::NoCapabilities));
        }
    }

    /// The first AVP (at any depth of a known Grouped AVP) that has `M`
    /// and that the dictionary does not know.
    fn unknown_mandatory(&self, avps: &[Avp], depth: usize) -> Option<Avp> {
        for a in avps {
            match self.dict.avp(a.code, a.vendor) {
                None if a.mandatory() => return Some(a.clone()),
                Some(d) if d.ty == AvpType::Grouped && depth < super::avp::MAX_DEPTH => {
                    if let Ok(children) = a.children()
                        && let Some(f) = self.unknown_mandatory(&children, depth + 1)
                    {
                        return Some(f);
                    }
                }
                _ => {}
            }
        }
        None
    }

    /// An answer to `req` with `result_code`: Session-Id (when the request
    /// has one) first, then Result-Code, Origin-Host and Origin-Realm.
    #[must_use]
    pub fn answer(&self, req: &Message, result_code: u32) -> Message {
        let mut a = req.answer();
        if let Some(s) = req.find(code::SESSION_ID, None) {
            a.push(s.clone());
        }
        a.push(Avp::u32(code::RESULT_CODE, result_code));
        self.identity(&mut a);
        a
    }

    fn identity(&self, m: &mut Message) {
        m.push(Avp::text(code::ORIGIN_HOST, &self.cfg.origin_host));
        m.push(Avp::text(code::ORIGIN_REALM, &self.cfg.origin_realm));
    }

    fn request(&mut self, command: u32, app: u32, proxiable: bool) -> Message {
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1);
        let m = Message::request(command, app, proxiable, id, id.rotate_left(12));
        debug_assert!(m.flags & FLAG_R != 0);
        m
    }
}

#[cfg(test)]
#[path = "peer_tests.rs"]
mod tests;
