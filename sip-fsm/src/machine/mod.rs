//! The sans-IO dialog machine, in the style of quinn-proto: input methods,
//! output queues, time passed in.
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
//! A call is its Call-ID plus the caller's From tag (see [`key`]): a proxy
//! keeps both across hops, so A-leg and B-leg copies are one call, and so
//! does a retried INVITE after a challenge; a new INVITE reusing a Call-ID
//! with another From tag is a second call. See [`dialog`] for the
//! transitions.
//!
//! # Clock
//! One packet with a wild timestamp never moves the clock: see [`clock`].
//!
//! # Bounds
//! At most `max-dialogs` calls are tracked. A new INVITE beyond it first
//! displaces the oldest lingering (finished) call, then the oldest
//! unanswered one (reported failed, reason `evicted`); answered calls are
//! never displaced, and when every tracked call is answered the INVITE is
//! dropped. Each case is counted.

mod clock;
mod config;
mod dialog;
mod key;
mod pending;
mod stats;
mod timers;

use std::cmp::Ordering;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use capture::{SipPacket, Timestamp};
use rustc_hash::FxHashMap;

use crate::error::Error;
use crate::event::{CallInfo, DialogEvent};
use crate::mapping::{MapInput, Mapper};
use crate::scan::{Method, NameAddr, Prescan, RawMessage, RawStart, Tagged, Uri};
use crate::snapshot::DialogSnapshot;
use clock::{Guard, Verdict};
pub use config::Config;
use dialog::{Ctx, Dialog, Msg, Timing, hash, lossy};
use key::{Key, KeyRef, Remembered};
use pending::{Pending, PointText, Reorder};
pub use stats::Stats;
use timers::Heap;

/// Follows every call seen in a stream of SIP packets and emits
/// [`DialogEvent`]s.
pub struct DialogMachine {
    timing: Timing,
    window: Duration,
    max_dialogs: usize,
    mapper: Mapper,
    /// The stream clock: the latest `now` accepted; `None` before the
    /// first packet is accepted.
    now: Option<Timestamp>,
    released: Timestamp,
    guard: Guard,
    /// Packets waiting, by (timestamp, arrival).
    pending: Reorder,
    point_text: PointText,
    /// The tracked calls, by slot number (`None`: a free slot, listed in
    /// `free`); the map finds a call's slot by its key.
    slots: Vec<Option<Slot>>,
    free: Vec<u32>,
    dialogs: FxHashMap<Key, u32>,
    /// Every call's deadline; equal deadlines fire in key order.
    timers: Heap<Timestamp>,
    /// The calls that may give way to a new one, first to go first:
    /// lingering (finished) calls by start order, then unanswered ones by
    /// start order ([`evict_rank`]). Answered calls are not in it.
    evictable: Heap<u64>,
    /// Calls started so far (the start order).
    started: u64,
    remembered: Remembered,
    events: VecDeque<DialogEvent>,
    stats: Stats,
}

/// A tracked call and its start order (its key is the Call-ID and the
/// caller's tag hash the dialog holds).
struct Slot {
    d: Dialog,
    seq: u64,
}

/// Where a dialog stands, for the eviction order (lingering calls give way
/// before unanswered ones).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Phase {
    Done,
    Unanswered,
    Answered,
}

/// A call's place in the eviction order: its phase (lingering first) above
/// its start order (`seq` counts calls: far below 2**62).
fn evict_rank(phase: Phase, seq: u64) -> u64 {
    let top = match phase {
        Phase::Done => 0,
        _ => 1,
    };
    (top << 62) | (seq & ((1 << 62) - 1))
}

impl Slot {
    fn phase(&self) -> Phase {
        if self.d.is_done() {
            Phase::Done
        } else if self.d.is_confirmed() {
            Phase::Answered
        } else {
            Phase::Unanswered
        }
    }
}

impl DialogMachine {
    /// A machine with this config; fails on a value out of range, a bad
    /// regex or CIDR block.
    pub fn new(cfg: Config) -> Result<Self, Error> {
        cfg.validate()?;
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
            now: None,
            released: Timestamp::from_nanos(i64::MIN),
            guard: Guard::new(
                Duration::from_secs(cfg.max_clock_jump_secs),
                Duration::from_secs(cfg.max_duration_secs),
            ),
            pending: Reorder::default(),
            point_text: PointText::default(),
            slots: Vec::new(),
            free: Vec::new(),
            dialogs: FxHashMap::default(),
            timers: Heap::new(),
            evictable: Heap::new(),
            started: 0,
            remembered: Remembered::new(
                Duration::from_secs(cfg.call_id_memory_secs),
                cfg.max_dialogs,
            ),
            events: VecDeque::new(),
            stats: Stats::default(),
        })
    }

    /// Takes in one packet seen at `pkt.ts`; `now` is the current time
    /// (the receive time live, the packet time when replaying). Never
    /// fails: bad input is counted. A packet far from the stream clock
    /// waits for a second one to agree (the clock rule: when `now` is the
    /// packet's own time, a packet more than `max-clock-jump-secs` from the
    /// stream clock is held until a second packet agrees with it, else
    /// dropped and counted; when `now` is a receive time, a stamp that far
    /// from it takes `now` instead).
    pub fn handle(&mut self, pkt: &SipPacket, now: Timestamp) {
        self.take(pkt, None, now);
    }

    /// [`DialogMachine::handle`] for a packet whose payload was scanned
    /// already, maybe on another thread: `scan` must be
    /// [`Prescan::scan`] of `pkt.payload`. Same events and counters as
    /// `handle` (a malformed payload is counted when the packet is
    /// processed, as there); the machine's thread does not scan it again.
    pub fn handle_scanned(&mut self, pkt: &SipPacket, scan: &Prescan, now: Timestamp) {
        self.take(pkt, Some(scan), now);
    }

    fn take(&mut self, pkt: &SipPacket, pre: Option<&Prescan>, now: Timestamp) {
        self.stats.packets += 1;
        match self.guard.check(pkt, pre, now, self.now, &mut self.stats) {
            Verdict::Held => {}
            Verdict::Release(held) => {
                for (at, p, pre) in held {
                    self.pending.push(&p, p.ts, pre.as_ref());
                    self.advance(at);
                }
            }
            Verdict::Accept(held, ts) => {
                for (at, p, pre) in held {
                    self.pending.push(&p, p.ts, pre.as_ref());
                    self.advance(at);
                }
                self.pending.push(pkt, ts, pre);
                self.advance(now);
            }
        }
    }

    /// Lets time pass: releases buffered packets and fires deadlines up to
    /// `now - reorder-window`. `now` is the caller's own clock and is
    /// trusted (live callers should call this at least every
    /// `max-clock-jump-secs`, and when [`DialogMachine::poll_timeout`]
    /// says).
    pub fn handle_timeout(&mut self, now: Timestamp) {
        let held = self.guard.tick(now, self.now, &mut self.stats);
        for (at, pkt, pre) in held {
            self.pending.push(&pkt, pkt.ts, pre.as_ref());
            self.advance(at);
        }
        self.advance(now);
    }

    /// The stream clock: the latest time accepted from packets or
    /// [`DialogMachine::handle_timeout`]; `None` before the first. Unlike
    /// the packets' own times it never leaps on one packet, so callers
    /// ordering output by time should use it.
    pub fn clock(&self) -> Option<Timestamp> {
        self.now
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<DialogEvent> {
        self.events.pop_front()
    }

    /// When [`DialogMachine::handle_timeout`] should next be called.
    pub fn poll_timeout(&self) -> Option<Timestamp> {
        let packet = self.pending.front();
        let timer = self.timers.peek().map(|(t, _)| t);
        // Held packets are decided by the caller's clock, as if pending.
        let held = self.guard.held_since();
        let next = [packet, timer, held].into_iter().flatten().min()?;
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
        self.live()
            .map(|s| std::mem::size_of::<Slot>() + s.d.heap_size())
            .sum()
    }

    /// The tracked calls, in slot order.
    fn live(&self) -> impl Iterator<Item = &Slot> {
        self.slots.iter().flatten()
    }

    /// The slot of the call keyed `key`.
    fn slot(&self, key: &dyn KeyRef) -> Option<(u32, &Slot)> {
        let &i = self.dialogs.get(key)?;
        Some((i, self.slots.get(i as usize)?.as_ref()?))
    }

    /// Call-IDs remembered for OriginIDs (bounded by `max-dialogs`).
    pub fn remembered_call_ids(&self) -> usize {
        self.remembered.len()
    }

    /// The live call `call` (as an event carried it) as a snapshot to
    /// keep across a restart; `None` once it has ended or is no longer
    /// tracked. Take it after polling the call's `Answer` (and `Update`)
    /// events: then the call is restored answered.
    pub fn snapshot_call(&self, call: &Arc<CallInfo>) -> Option<DialogSnapshot> {
        let tag = hash(call.from_tag.as_deref().unwrap_or_default().as_bytes());
        let same = |s: &&Slot| Arc::ptr_eq(s.d.info(), call);
        let slot = self
            .slot(&(&*call.call_id_bytes, tag))
            .map(|(_, s)| s)
            .filter(same)
            // A From tag that is not UTF-8: the text's digest differs.
            .or_else(|| self.live().find(same))?;
        slot.d.snapshot()
    }

    /// Every live (not ended) call as a snapshot, in the order they
    /// started.
    pub fn snapshots(&self) -> Vec<DialogSnapshot> {
        let mut live: Vec<&Slot> = self.live().collect();
        live.sort_by_key(|s| s.seq);
        live.iter().filter_map(|s| s.d.snapshot()).collect()
    }

    /// Tracks a call again from its snapshot (taken by another machine
    /// before a restart), before any of its later packets are handled:
    /// its BYE, CANCEL or final response then ends it, and its deadline
    /// (INVITE timeout, session expiry, `max-duration`) fires at the time
    /// it is due, at the next [`DialogMachine::handle_timeout`] if that
    /// time has passed. Emits no event; returns the call's info, which its
    /// later events carry.
    ///
    /// # Errors
    /// [`Error::Restore`] when a call with the same Call-ID and From tag is
    /// tracked already, or the snapshot's digests were computed by another
    /// build ([`DialogSnapshot::digest_check`]).
    pub fn restore(&mut self, snap: &DialogSnapshot) -> Result<Arc<CallInfo>, Error> {
        let refuse = |reason| Error::Restore {
            call_id: snap.call.call_id.clone(),
            reason,
        };
        if snap.digest_check != dialog::digest_check() {
            return Err(refuse("the snapshot's tag digests come from another build"));
        }
        let d = Dialog::restore(snap, &self.timing);
        let key = Key {
            call_id: d.info().call_id_bytes.clone(),
            tag: snap.caller_tag,
        };
        if self.dialogs.contains_key(&key) {
            return Err(refuse("a call with this Call-ID and From tag is tracked"));
        }
        let info = d.info().clone();
        // A later call reusing the Call-ID still gets its own OriginID.
        let from_tag = info.from_tag.as_deref().map(str::as_bytes);
        let _ = self
            .remembered
            .start(&info.call_id_bytes, from_tag, info.setup_time);
        self.started += 1;
        let seq = self.started;
        self.insert(key, Slot { d, seq });
        Ok(info)
    }

    /// Tracks a new call: a slot, its key, its deadline and (unless
    /// answered) its place in the eviction order.
    fn insert(&mut self, key: Key, slot: Slot) {
        let (deadline, seq, phase) = (slot.d.deadline, slot.seq, slot.phase());
        let i = match self.free.pop() {
            Some(i) => i,
            None => {
                let Ok(i) = u32::try_from(self.slots.len()) else {
                    // More than 4 billion calls tracked: beyond any
                    // `max-dialogs`; not tracked.
                    return;
                };
                self.slots.push(None);
                i
            }
        };
        if let Some(s) = self.slots.get_mut(i as usize) {
            *s = Some(slot);
        }
        self.dialogs.insert(key, i);
        self.set_timer(i, deadline);
        self.moved(i, seq, Phase::Answered, phase);
    }

    /// Stops tracking the call in slot `i`.
    fn remove(&mut self, i: u32) -> Option<Slot> {
        self.slots.get(i as usize)?.as_ref()?;
        // Out of the heaps first: the timer order reads the slots' keys.
        let slots = &self.slots;
        self.timers.remove(i, |a, b| timer_less(slots, a, b));
        self.evictable.remove(i, |a, b| a < b);
        let s = self.slots.get_mut(i as usize)?.take()?;
        self.dialogs
            .remove(&(s.d.call_id(), s.d.caller_tag()) as &dyn KeyRef);
        self.free.push(i);
        Some(s)
    }

    fn set_timer(&mut self, i: u32, at: Timestamp) {
        let slots = &self.slots;
        self.timers.set(i, at, |a, b| timer_less(slots, a, b));
    }

    fn advance(&mut self, now: Timestamp) {
        let now = self.now.map_or(now, |n| n.max(now));
        self.now = Some(now);
        let horizon = now.saturating_sub(self.window);
        loop {
            let packet = self.pending.front().filter(|t| *t <= horizon);
            let timer = self.timers.peek().filter(|(t, _)| *t <= horizon);
            // On a tie the packet goes first: a BYE at the deadline wins.
            let packet_first = match (packet, timer) {
                (None, None) => break,
                (Some(p), Some((t, _))) => p <= t,
                (p, _) => p.is_some(),
            };
            if packet_first {
                // Out of `self` while `process` reads the entry in place
                // (processing never touches the buffer).
                let pending = std::mem::take(&mut self.pending);
                if let Some(p) = pending.front_entry() {
                    self.process(p);
                }
                self.pending = pending;
                self.pending.drop_front();
            } else if let Some((t, i)) = timer {
                let slots = &self.slots;
                self.timers.pop(|a, b| timer_less(slots, a, b));
                self.fire(t, i);
            }
        }
    }

    fn ctx(&mut self) -> (Ctx<'_>, &mut Vec<Option<Slot>>) {
        (
            Ctx {
                events: &mut self.events,
                stats: &mut self.stats,
                timing: &self.timing,
            },
            &mut self.slots,
        )
    }

    /// The deadline of the call in slot `i` (its timer just taken) passed.
    fn fire(&mut self, at: Timestamp, i: u32) {
        let done = match self.slots.get(i as usize) {
            Some(Some(s)) => s.d.is_done(),
            _ => return,
        };
        if done {
            self.remove(i);
            return;
        }
        let (mut ctx, slots) = self.ctx();
        let Some(s) = slots.get_mut(i as usize).and_then(Option::as_mut) else {
            return;
        };
        let before = s.phase();
        s.d.on_timeout(at, &mut ctx);
        let (deadline, seq, after) = (s.d.deadline, s.seq, s.phase());
        self.moved(i, seq, before, after);
        self.set_timer(i, deadline);
    }

    /// Keeps the eviction order in step with a dialog's phase.
    fn moved(&mut self, i: u32, seq: u64, before: Phase, after: Phase) {
        if before == after {
            return;
        }
        match after {
            Phase::Answered => self.evictable.remove(i, |a, b| a < b),
            _ => self.evictable.set(i, evict_rank(after, seq), |a, b| a < b),
        }
    }

    /// The dialog a message belongs to: by Call-ID and the caller's tag,
    /// which is the From tag of the caller's requests and of every
    /// response to them, and the To tag of the callee's requests and their
    /// responses. A caller that sent no From tag is keyed by the empty tag,
    /// which a callee's request then carries in To as no tag.
    /// Returns the dialog's slot.
    fn find(&self, call_id: &[u8], msg: &Msg<'_>) -> Option<u32> {
        let get = |tag: u64| self.dialogs.get(&(call_id, tag) as &dyn KeyRef).copied();
        let from = hash(msg.from_tag.unwrap_or_default());
        if let Some(k) = get(from) {
            return Some(k);
        }
        // An initial INVITE names only its own caller.
        let initial = matches!(
            msg.start,
            RawStart::Request {
                method: Method::Invite,
                ..
            }
        ) && msg.to_tag.is_none();
        if initial {
            return None;
        }
        let to = hash(msg.to_tag.unwrap_or_default());
        if to != from { get(to) } else { None }
    }

    fn process(&mut self, p: &Pending) {
        if p.ts < self.released {
            self.stats.late += 1;
        }
        self.released = self.released.max(p.ts);
        let scanned = match &p.pre {
            Some(pre) => pre.tagged(p.payload()),
            None => Tagged::scan(p.payload()),
        };
        let (raw, from_tag, to_tag) = match scanned {
            Ok(t) => (t.raw, t.from_tag, t.to_tag),
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
            from_tag,
            to_tag,
            reason: raw.reason,
            session_expires: raw.session_expires,
        };
        if let Some(i) = self.find(raw.call_id, &msg) {
            let (mut ctx, slots) = self.ctx();
            let Some(s) = slots.get_mut(i as usize).and_then(Option::as_mut) else {
                return;
            };
            let (before, phase) = (s.d.deadline, s.phase());
            s.d.on_message(&msg, p.ts, &mut ctx);
            let (after, seq, now_phase) = (s.d.deadline, s.seq, s.phase());
            if after != before {
                self.set_timer(i, after);
            }
            self.moved(i, seq, phase, now_phase);
            return;
        }
        match msg.start {
            RawStart::Request {
                method: Method::Invite,
                uri,
            } if msg.to_tag.is_none() => {
                if self.dialogs.len() >= self.max_dialogs && !self.make_room(p.ts) {
                    self.stats.dialogs_dropped += 1;
                    return;
                }
                // The Request-URI is parsed only here, once per call
                // (`scan_raw` checked its scheme, so it parses).
                let ruri_user = Uri::parse(uri).and_then(|u| u.user);
                self.start(&raw, &msg, ruri_user, p);
            }
            RawStart::Request {
                method: Method::Invite | Method::Ack | Method::Bye | Method::Cancel | Method::Update,
                ..
            } => self.stats.orphan_requests += 1,
            RawStart::Request { .. } => self.stats.non_call += 1,
            RawStart::Response { .. } => match msg.cseq.method {
                Method::Invite | Method::Bye | Method::Cancel | Method::Update => {
                    self.stats.orphan_responses += 1
                }
                _ => self.stats.non_call += 1,
            },
        }
    }

    /// Frees one slot for a new call: the oldest lingering call, else the
    /// oldest unanswered one (reported failed at `now`). False when every
    /// tracked call is answered.
    fn make_room(&mut self, now: Timestamp) -> bool {
        let Some((_, i)) = self.evictable.peek() else {
            return false;
        };
        let Some(mut s) = self.remove(i) else {
            return false;
        };
        if s.phase() == Phase::Done {
            self.stats.dialogs_evicted_lingering += 1;
        } else {
            let (mut ctx, _) = self.ctx();
            s.d.evict(now, &mut ctx);
            self.stats.dialogs_evicted_unanswered += 1;
        }
        true
    }

    /// A new call. Only here are the name-addr values parsed for their
    /// users; every other packet reads just the tags.
    fn start(
        &mut self,
        raw: &RawMessage<'_>,
        msg: &Msg<'_>,
        ruri_user: Option<&[u8]>,
        pkt: &Pending,
    ) {
        let user = |v: &[u8]| NameAddr::parse(v).user().map(lossy);
        let capture_point = pkt.capture_point(&mut self.point_text);
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
            capture_point: &capture_point,
            src: Some(pkt.src),
            dst: Some(pkt.dst),
        });
        let origin_suffix = self.remembered.start(raw.call_id, msg.from_tag, pkt.ts);
        if origin_suffix.is_some() {
            self.stats.reused_call_ids += 1;
        }
        let call_id_bytes: Arc<[u8]> = Arc::from(raw.call_id);
        let info = Arc::new(CallInfo {
            call_id_bytes: call_id_bytes.clone(),
            origin_suffix,
            capture_point,
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
        let key = Key {
            call_id: call_id_bytes,
            tag: hash(msg.from_tag.unwrap_or_default()),
        };
        let (mut ctx, _) = self.ctx();
        let d = Dialog::start(info, msg, &mut ctx);
        self.started += 1;
        let seq = self.started;
        self.insert(key, Slot { d, seq });
    }
}

/// The timer order: by deadline, equal deadlines by the calls' keys
/// (Call-ID bytes, then the caller's tag hash), as a sorted set of
/// (deadline, key) would have it.
fn timer_less(slots: &[Option<Slot>], a: &(Timestamp, u32), b: &(Timestamp, u32)) -> bool {
    match a.0.cmp(&b.0) {
        Ordering::Less => true,
        Ordering::Greater => false,
        Ordering::Equal => {
            let key = |i: u32| {
                slots
                    .get(i as usize)
                    .and_then(Option::as_ref)
                    .map(|s| (s.d.call_id(), s.d.caller_tag()))
            };
            key(a.1) < key(b.1)
        }
    }
}

#[cfg(test)]
mod tests;
