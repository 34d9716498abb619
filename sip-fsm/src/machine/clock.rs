//! The stream clock guard: one packet with a wild timestamp never moves
//! the machine's clock.
//!
//! Every deadline fires on the clock the packets drive, so a single packet
//! stamped in 2106 (HEP seconds `0xffffffff`) would end every answered
//! call at its maximum duration and reap every unanswered one, and one
//! stamped in 1970 would give its call nonsense times. Two rules:
//!
//! 1. **Receive time.** When `now` is not the packet's own time, it is the
//!    caller's receive time (live HEP and taps), an independent clock, and
//!    trusted: a packet whose timestamp is more than `max-clock-jump-secs`
//!    from it takes `now` as its time (`clock_stamp_corrected`).
//! 2. **Agreement.** When `now` is the packet's own time (replay), there is
//!    no second clock, and quiet gaps in a capture are normal. A packet
//!    more than `max-clock-jump-secs` from the stream clock (or the first
//!    packet of the stream) is held back, and the packets after it decide:
//!    - one near it (within the bound) confirms it: both are processed and
//!      the clock follows (`clock_jumps_confirmed`);
//!    - one near the old clock refutes it (a capture is in time order, so
//!      a packet cannot be followed by one from long before it): it is
//!      dropped (`clock_jump_future` / `clock_jump_past`);
//!    - one further ahead still (a second gap) leaves time moving forward
//!      through it: it is processed and the new packet is held in turn.
//!
//!    `handle_timeout(now)` is the caller's own clock and is trusted: held
//!    packets near `now`, or ahead of the stream clock once `now` has
//!    reached them (the end of a replay), are processed; the others are
//!    dropped. Before any clock exists they are all released (nothing
//!    contradicts them).
//!
//! A held packet is processed only if it is at most `horizon` (the
//! longest an answered call lasts without packets, `max-duration-secs`)
//! past the stream clock: no call can be waiting for a packet later than
//! that, so a stamp in 2106 is dropped even as the last packet of a file.

use std::time::Duration;

use capture::{SipPacket, Timestamp};

use super::Stats;
use crate::scan::Prescan;

/// A packet the guard holds or releases: its `now`, the packet, and its
/// payload's scan when it came with one.
pub(super) type Held = (Timestamp, SipPacket, Option<Prescan>);

/// Whether `a` and `b` are at most `bound` apart.
pub(super) fn near(a: Timestamp, b: Timestamp, bound: Duration) -> bool {
    let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
    hi.since(lo) <= bound
}

/// The held packets and the rule's bound.
pub(super) struct Guard {
    pub jump: Duration,
    /// How far past the stream clock a held packet may be and still be
    /// processed once nothing refutes it.
    horizon: Duration,
    /// Packets waiting for agreement, with their `now`; all within `jump`
    /// of the first. Never more than one: a second agreeing packet
    /// releases both.
    held: Vec<Held>,
}

/// What to do with a packet.
pub(super) enum Verdict {
    /// Process the held packets released (first, each with its `now`;
    /// usually none, and then nothing is allocated), then this one with
    /// this time (its own, or the receive time that replaced it).
    Accept(Vec<Held>, Timestamp),
    /// Held back; nothing to process yet.
    Held,
    /// This packet is held back, and earlier held packets are released:
    /// process them (each with its `now`).
    Release(Vec<Held>),
}

impl Guard {
    pub fn new(jump: Duration, horizon: Duration) -> Self {
        Guard {
            jump,
            horizon: horizon.max(jump),
            held: Vec::new(),
        }
    }

    /// The earliest held packet's `now`, for `poll_timeout`.
    pub fn held_since(&self) -> Option<Timestamp> {
        self.held.first().map(|(t, _, _)| *t)
    }

    /// Applies both rules to a packet handed in with `now` (and its
    /// payload's scan, if any, kept with it if it is held); `clock` is the
    /// machine's clock (`None` before the first accepted packet).
    pub fn check(
        &mut self,
        pkt: &SipPacket,
        pre: Option<&Prescan>,
        now: Timestamp,
        clock: Option<Timestamp>,
        stats: &mut Stats,
    ) -> Verdict {
        if pkt.ts != now {
            let mut ts = pkt.ts;
            if !near(ts, now, self.jump) {
                stats.clock_stamp_corrected += 1;
                ts = now;
            }
            let held = self.tick(now, clock, stats);
            return Verdict::Accept(held, ts);
        }
        if clock.is_some_and(|c| near(now, c, self.jump)) {
            self.drop_held(clock, now, stats);
            return Verdict::Accept(Vec::new(), pkt.ts);
        }
        if self.held_since().is_some_and(|h| near(now, h, self.jump)) {
            if clock.is_some() {
                stats.clock_jumps_confirmed += 1;
            }
            return Verdict::Accept(std::mem::take(&mut self.held), pkt.ts);
        }
        // Further ahead than the held packet: time went forward through
        // it (two gaps in a row), so it stands if it is ahead of a clock
        // and within the horizon; this packet waits in turn.
        let released = match (clock, self.held_since()) {
            (Some(c), Some(h)) if h > c && now > h => self.release_ahead(c, stats),
            _ => {
                self.drop_held(clock, now, stats);
                Vec::new()
            }
        };
        self.held.push((now, pkt.clone(), pre.cloned()));
        if released.is_empty() {
            Verdict::Held
        } else {
            Verdict::Release(released)
        }
    }

    /// Releases the held packets (all ahead of the clock `c`) that are
    /// within the horizon, counted as confirmed; drops the others.
    fn release_ahead(&mut self, c: Timestamp, stats: &mut Stats) -> Vec<Held> {
        let horizon = c.saturating_add(self.horizon);
        if self.held.iter().all(|(t, _, _)| *t <= horizon) {
            stats.clock_jumps_confirmed += 1;
            std::mem::take(&mut self.held)
        } else {
            self.drop_held(Some(c), c, stats);
            Vec::new()
        }
    }

    /// The caller's clock reads `now`: held packets near it are released,
    /// the others dropped; with no clock yet they are all released.
    pub fn tick(
        &mut self,
        now: Timestamp,
        clock: Option<Timestamp>,
        stats: &mut Stats,
    ) -> Vec<Held> {
        let Some(h) = self.held_since() else {
            return Vec::new();
        };
        let Some(c) = clock else {
            return std::mem::take(&mut self.held);
        };
        if near(h, now, self.jump) {
            return std::mem::take(&mut self.held);
        }
        // A time before the held packets is no verdict yet (live callers
        // tick often).
        if now < h {
            return Vec::new();
        }
        // The caller's clock has reached packets held ahead of the stream
        // (nothing came after them: the end of a replay); packets held
        // behind it were never confirmed.
        if h > c {
            return self.release_ahead(c, stats);
        }
        self.drop_held(clock, now, stats);
        Vec::new()
    }

    /// Drops the held packets, counted by direction against the clock (or
    /// against `now` when there is none yet).
    fn drop_held(&mut self, clock: Option<Timestamp>, now: Timestamp, stats: &mut Stats) {
        let reference = clock.unwrap_or(now);
        for (t, _, _) in self.held.drain(..) {
            if t > reference {
                stats.clock_jump_future += 1;
            } else {
                stats.clock_jump_past += 1;
            }
        }
    }
}
