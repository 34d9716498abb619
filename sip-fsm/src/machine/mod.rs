//! The sans-IO dialog machine (STYLE.md section 2, in the quinn style).
//!
//! `handle(packet, now)` and `handle_timeout(now)` in; `poll_event()` and
//! `poll_timeout()` out. Time only ever comes from packet timestamps and
//! the `now` arguments, so a replay gives the same events however fast it
//! runs.
//!
//! # Ordering
//! Packets first enter a reorder buffer and are released in timestamp
//! order once `now` passes `ts + reorder-window`; dialog deadlines fire on
//! the same released clock (`now - reorder-window`), so a BYE a little
//! before a session expiry is never overtaken by the expiry. Copies of one
//! message from several capture points are thus processed earliest first,
//! which is where every time in an event comes from. For replay pass the
//! packet time as `now`, and at the end call `handle_timeout` with a time
//! past the last deadline (e.g. `Timestamp::from_nanos(i64::MAX)`).
//!
//! # Calls
//! One call per Call-ID (a proxy keeps the Call-ID across hops, so A-leg
//! and B-leg copies are one call). See [`dialog`] for the transitions.

mod dialog;
mod stats;

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use capture::{SipPacket, Timestamp};
use serde::Deserialize;

use crate::error::Error;
use crate::event::{CallInfo, DialogEvent};
use crate::mapping::{MapInput, Mapper, MappingConfig};
use crate::scan::{Method, NameAddr, RawMessage, StartLine, scan_raw, tag_of};
use dialog::{Ctx, Dialog, Msg, Timing, lossy};
pub use stats::Stats;

/// Dialog machine settings (embed in the binary's TOML config).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct Config {
    /// How long packets wait to be put in timestamp order, milliseconds.
    /// Packets later than this are still processed, out of order, and
    /// counted as `late`.
    pub reorder_window_ms: u64,
    /// An unanswered INVITE with no final response is reaped this long
    /// after it was sent, as a proxy's Timer C would (RFC 3261 16.6 step
    /// 11 asks for more than 3 minutes). Provisional responses do not
    /// extend it here, so the end time does not depend on copies.
    pub invite_timeout_secs: u64,
    /// After a 3xx, 401, 407 or 422, how long the attempt is remembered
    /// waiting for the retried INVITE (same Call-ID and From-tag, higher
    /// CSeq) before it counts as failed with that response. Default 120 s:
    /// a stack retries at once, but a person typing credentials after a
    /// 401/407 takes 30-60 s, and the retry's final response is the call's.
    /// Keep it at most `invite-timeout-secs` so the default CDR order
    /// window (which covers the longer of the two) stays as it is.
    pub retry_wait_secs: u64,
    /// How long a finished call is kept to recognise late repeats
    /// (retransmitted BYE, 200 copies). Default 32 s (64*T1, Timer J).
    pub linger_secs: u64,
    /// An answered call with no BYE and no session timer ends this long
    /// after its answer (marked `max-duration`).
    pub max_duration_secs: u64,
    /// Most live calls; INVITEs beyond it are dropped and counted.
    pub max_dialogs: usize,
    /// From SIP to charging fields.
    pub mapping: MappingConfig,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            reorder_window_ms: 200,
            invite_timeout_secs: 300,
            retry_wait_secs: 120,
            linger_secs: 32,
            max_duration_secs: 4 * 3600,
            max_dialogs: 1_000_000,
            mapping: MappingConfig::default(),
        }
    }
}

/// A packet waiting in the reorder buffer (equal timestamps keep their
/// arrival order).
struct Pending {
    ts: Timestamp,
    pkt: SipPacket,
}

/// Follows every call seen in a stream of SIP packets and emits
/// [`DialogEvent`]s.
pub struct DialogMachine {
    timing: Timing,
    window: Duration,
    max_dialogs: usize,
    mapper: Mapper,
    now: Timestamp,
    released: Timestamp,
    /// Sorted by (timestamp, arrival); packets mostly arrive in order, so
    /// inserting is a push at the back.
    pending: VecDeque<Pending>,
    dialogs: HashMap<Arc<[u8]>, Dialog>,
    timers: BTreeSet<(Timestamp, Arc<[u8]>)>,
    events: VecDeque<DialogEvent>,
    stats: Stats,
}

impl DialogMachine {
    /// A machine with this config; fails on a bad regex or CIDR block.
    pub fn new(cfg: Config) -> Result<Self, Error> {
        Ok(DialogMachine {
            timing: Timing {
                invite_timeout: Duration::from_secs(cfg.invite_timeout_secs),
                retry_wait: Duration::from_secs(cfg.retry_wait_secs),
                linger: Duration::from_secs(cfg.linger_secs),
                max_duration: Duration::from_secs(cfg.max_duration_secs),
            },
            window: Duration::from_millis(cfg.reorder_window_ms),
            max_dialogs: cfg.max_dialogs,
            mapper: Mapper::new(&cfg.mapping)?,
            now: Timestamp::from_nanos(i64::MIN),
            released: Timestamp::from_nanos(i64::MIN),
            pending: VecDeque::new(),
            dialogs: HashMap::new(),
            timers: BTreeSet::new(),
            events: VecDeque::new(),
            stats: Stats::default(),
        })
    }

    /// Takes in one packet seen at `pkt.ts`; `now` is the current time
    /// (the packet time when replaying). Never fails: bad input is counted.
    pub fn handle(&mut self, pkt: &SipPacket, now: Timestamp) {
        self.stats.packets += 1;
        let p = Pending {
            ts: pkt.ts,
            pkt: pkt.clone(),
        };
        if self.pending.back().is_none_or(|b| b.ts <= p.ts) {
            self.pending.push_back(p);
        } else {
            let at = self.pending.partition_point(|q| q.ts <= p.ts);
            self.pending.insert(at, p);
        }
        self.advance(now);
    }

    /// Lets time pass: releases buffered packets and fires deadlines up to
    /// `now - reorder-window`.
    pub fn handle_timeout(&mut self, now: Timestamp) {
        self.advance(now);
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<DialogEvent> {
        self.events.pop_front()
    }

    /// When [`DialogMachine::handle_timeout`] should next be called.
    pub fn poll_timeout(&self) -> Option<Timestamp> {
        let packet = self.pending.front().map(|p| p.ts);
        let timer = self.timers.first().map(|(t, _)| *t);
        let next = match (packet, timer) {
            (Some(a), Some(b)) => a.min(b),
            (a, b) => a.or(b)?,
        };
        Some(next.saturating_add(self.window))
    }

    /// The counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Calls currently tracked (including finished ones still lingering).
    pub fn live_dialogs(&self) -> usize {
        self.dialogs.len()
    }

    /// Heap and inline bytes used by the tracked calls, an estimate for
    /// the memory budget (map overhead excluded).
    pub fn dialog_memory(&self) -> usize {
        self.dialogs
            .values()
            .map(|d| std::mem::size_of::<Dialog>() + d.heap_size())
            .sum()
    }

    fn advance(&mut self, now: Timestamp) {
        self.now = self.now.max(now);
        let horizon = self.now.saturating_sub(self.window);
        loop {
            let packet = self.pending.front().map(|p| p.ts).filter(|t| *t <= horizon);
            let timer = self
                .timers
                .first()
                .map(|(t, _)| *t)
                .filter(|t| *t <= horizon);
            // On a tie the packet goes first: a BYE at the deadline wins.
            let packet_first = match (packet, timer) {
                (None, None) => break,
                (Some(p), Some(t)) => p <= t,
                (p, _) => p.is_some(),
            };
            if packet_first {
                if let Some(p) = self.pending.pop_front() {
                    self.process(&p);
                }
            } else if let Some((t, key)) = self.timers.pop_first() {
                self.fire(t, key);
            }
        }
    }

    fn ctx(&mut self) -> (Ctx<'_>, &mut HashMap<Arc<[u8]>, Dialog>) {
        (
            Ctx {
                events: &mut self.events,
                stats: &mut self.stats,
                timing: &self.timing,
            },
            &mut self.dialogs,
        )
    }

    fn fire(&mut self, at: Timestamp, key: Arc<[u8]>) {
        let (mut ctx, dialogs) = self.ctx();
        let Some(d) = dialogs.get_mut(&key) else {
            return;
        };
        if d.is_done() {
            dialogs.remove(&key);
            return;
        }
        d.on_timeout(at, &mut ctx);
        let deadline = d.deadline;
        self.timers.insert((deadline, key));
    }

    fn process(&mut self, p: &Pending) {
        if p.ts < self.released {
            self.stats.late += 1;
        }
        self.released = self.released.max(p.ts);
        let raw = match scan_raw(&p.pkt.payload) {
            Ok(m) => m,
            Err(e) => {
                self.stats.count_malformed(e);
                return;
            }
        };
        if raw.bad_content_length {
            self.stats.malformed_content_length_tolerated += 1;
        }
        let msg = Msg {
            start: raw.start,
            cseq: raw.cseq,
            via_branch: raw.via_branch,
            from_tag: tag_of(raw.from),
            to_tag: tag_of(raw.to),
            reason: raw.reason,
            session_expires: raw.session_expires,
        };
        let (mut ctx, dialogs) = self.ctx();
        if let Some(d) = dialogs.get_mut(raw.call_id) {
            let before = d.deadline;
            d.on_message(&msg, p.ts, &mut ctx);
            if d.deadline != before {
                let key = d.key.clone();
                let after = d.deadline;
                self.timers.remove(&(before, key.clone()));
                self.timers.insert((after, key));
            }
            return;
        }
        match msg.start {
            StartLine::Request {
                method: Method::Invite,
                uri,
            } if msg.to_tag.is_none() => {
                if self.dialogs.len() >= self.max_dialogs {
                    self.stats.dialogs_dropped += 1;
                    return;
                }
                self.start(&raw, &msg, uri.user, &p.pkt);
            }
            StartLine::Request {
                method: Method::Invite | Method::Ack | Method::Bye | Method::Cancel | Method::Update,
                ..
            } => self.stats.orphan_requests += 1,
            StartLine::Request { .. } => self.stats.non_call += 1,
            StartLine::Response { .. } => match msg.cseq.method {
                Method::Invite | Method::Bye | Method::Cancel | Method::Update => {
                    self.stats.orphan_responses += 1
                }
                _ => self.stats.non_call += 1,
            },
        }
    }

    /// A new call. Only here are the name-addr values parsed for their
    /// users; every other packet reads just the tags.
    fn start(
        &mut self,
        raw: &RawMessage<'_>,
        msg: &Msg<'_>,
        ruri_user: Option<&[u8]>,
        pkt: &SipPacket,
    ) {
        let user = |v: &[u8]| NameAddr::parse(v).user().map(lossy);
        let origin_host = pkt.capture_point();
        let from_user = user(raw.from);
        let to_user = user(raw.to);
        let ruri_user = ruri_user.map(lossy);
        let pai_user = raw.pai.and_then(user);
        let diversion_user = raw.diversion.and_then(user);
        let charging = self.mapper.map(&MapInput {
            from_user: from_user.as_deref(),
            pai_user: pai_user.as_deref(),
            ruri_user: ruri_user.as_deref(),
            to_user: to_user.as_deref(),
            diversion_user: diversion_user.as_deref(),
            capture_point: &origin_host,
            src: Some(pkt.src),
            dst: Some(pkt.dst),
        });
        let info = Arc::new(CallInfo {
            call_id: lossy(raw.call_id),
            origin_host: origin_host.into_boxed_str(),
            src: pkt.src,
            dst: pkt.dst,
            setup_time: pkt.ts,
            from_user,
            from_tag: msg.from_tag.map(lossy),
            to_user,
            ruri_user,
            pai_user,
            diversion_user,
            charging,
        });
        let key: Arc<[u8]> = Arc::from(raw.call_id);
        let (mut ctx, _) = self.ctx();
        let d = Dialog::start(key.clone(), info, msg, &mut ctx);
        self.timers.insert((d.deadline, key.clone()));
        self.dialogs.insert(key, d);
    }
}

#[cfg(test)]
mod tests;
