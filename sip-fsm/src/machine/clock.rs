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
//!    no second clock: a packet more than `max-clock-jump-secs` from the
//!    stream clock (or the first packet of the stream) is held
//!    back until a second packet agrees with it (within the same bound):
//!    then both are processed and the clock follows (a real gap in a
//!    capture, `clock_jumps_confirmed`). If the next packet agrees with the
//!    old clock instead, the held packet is dropped and counted
//!    (`clock_jump_future` / `clock_jump_past`). `handle_timeout(now)` is
//!    the caller's own clock and is trusted: it releases held packets within
//!    the bound of `now` and drops the others; before any clock exists it
//!    releases them (nothing contradicts them).

use std::time::Duration;

use capture::{SipPacket, Timestamp};

use super::Stats;

/// Whether `a` and `b` are at most `bound` apart.
pub(super) fn near(a: Timestamp, b: Timestamp, bound: Duration) -> bool {
    let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
    hi.since(lo) <= bound
}

/// The held packets and the rule's bound.
pub(super) struct Guard {
    pub jump: Duration,
    /// Packets waiting for agreement, with their `now`; all within `jump`
    /// of the first. Never more than one: a second agreeing packet
    /// releases both.
    held: Vec<(Timestamp, SipPacket)>,
}

/// What to do with a packet.
pub(super) enum Verdict {
    /// Process the held packets released (first, each with its `now`;
    /// usually none, and then nothing is allocated), then this one with
    /// this time (its own, or the receive time that replaced it).
    Accept(Vec<(Timestamp, SipPacket)>, Timestamp),
    /// Held back; nothing to process yet.
    Held,
}

impl Guard {
    pub fn new(jump: Duration) -> Self {
        Guard {
            jump,
            held: Vec::new(),
        }
    }

    /// The earliest held packet's `now`, for `poll_timeout`.
    pub fn held_since(&self) -> Option<Timestamp> {
        self.held.first().map(|(t, _)| *t)
    }

    /// Applies both rules to a packet handed in with `now`; `clock` is the
    /// machine's clock (`None` before the first accepted packet).
    pub fn check(
        &mut self,
        pkt: &SipPacket,
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
        self.drop_held(clock, now, stats);
        self.held.push((now, pkt.clone()));
        Verdict::Held
    }

    /// The caller's clock reads `now`: held packets near it are released,
    /// the others dropped; with no clock yet they are all released.
    pub fn tick(
        &mut self,
        now: Timestamp,
        clock: Option<Timestamp>,
        stats: &mut Stats,
    ) -> Vec<(Timestamp, SipPacket)> {
        let Some(h) = self.held_since() else {
            return Vec::new();
        };
        if clock.is_none() || near(h, now, self.jump) {
            return std::mem::take(&mut self.held);
        }
        // A time before the held packets is no verdict yet (live callers
        // tick often); one past them means no packet came to agree.
        if now < h {
            return Vec::new();
        }
        self.drop_held(clock, now, stats);
        Vec::new()
    }

    /// Drops the held packets, counted by direction against the clock (or
    /// against `now` when there is none yet).
    fn drop_held(&mut self, clock: Option<Timestamp>, now: Timestamp, stats: &mut Stats) {
        let reference = clock.unwrap_or(now);
        for (t, _) in self.held.drain(..) {
            if t > reference {
                stats.clock_jump_future += 1;
            } else {
                stats.clock_jump_past += 1;
            }
        }
    }
}
