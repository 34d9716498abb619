//! From SIP packets to CDRs: the dialog machine, end-time ordering, CDR
//! building and (optionally) rating, driven one packet at a time.
//!
//! Time: the dialog machine is sans-IO; the clock is whatever the caller
//! passes. `replay` passes packet timestamps ([`Pipeline::packet`]); a live
//! caller can also move the clock with [`Pipeline::advance`] while no
//! packet comes, so timers still fire. [`Pipeline::finish_records`] moves the clock
//! to the end of time: every call still open ends by its own rule.
//!
//! Order: most records come out of the machine at about their end time, but
//! some later (see [`EndTimeOrder`]); they wait in a min-heap until the clock
//! is past their end time plus a window that covers the latest case, so the
//! CDRs come out in end-time order.

use std::time::Duration;

use capture::{SipPacket, Timestamp};
use sessions::{Cdr, CdrOptions, EndTimeOrder};
use sip_fsm::{CallRecord, DialogEvent, DialogMachine, Prescan};

/// Packets in, CDRs (in end-time order) out: [`Dialogs`] then [`Release`],
/// on one thread. `replay --threads 2` runs the two halves on two threads,
/// passing what [`Dialogs`] gives ([`Step`]s) between them in order, so
/// the output is the same.
pub(crate) struct Pipeline {
    dialogs: Dialogs,
    release: Release,
    opts: CdrOptions,
}

/// The dialog half: packets in, finished calls and clock moves out.
pub(crate) struct Dialogs {
    machine: DialogMachine,
    now: Timestamp,
}

/// What the dialog half hands to the release half, in order.
pub(crate) enum Step {
    /// A finished call attempt.
    Record(CallRecord),
    /// The clock moved to this time: records due by then are released.
    Clock(Timestamp),
}

/// The release half: finished calls in, held until their end time plus
/// the window has passed, then out in end-time order (`--since` applied).
pub(crate) struct Release {
    order: EndTimeOrder,
    since: Option<Timestamp>,
    before_since: u64,
}

impl Dialogs {
    pub(crate) fn new(machine: DialogMachine) -> Self {
        Dialogs {
            machine,
            now: Timestamp::from_nanos(i64::MIN),
        }
    }

    /// One packet; its timestamp moves the clock (never backwards). The
    /// calls it finishes go to `rec`; returns the clock.
    pub(crate) fn packet(&mut self, p: &SipPacket, rec: &mut impl FnMut(CallRecord)) -> Timestamp {
        // The packet's time is the clock, as far as the machine's clock
        // rule accepts it (one wild timestamp never moves it).
        self.machine.handle(p, p.ts);
        self.after_packet(rec)
    }

    /// [`Dialogs::packet`] with the payload scanned already (`scan` is
    /// [`Prescan::scan`] of `p.payload`, made on the reading thread).
    pub(crate) fn packet_scanned(
        &mut self,
        p: &SipPacket,
        scan: &Prescan,
        rec: &mut impl FnMut(CallRecord),
    ) -> Timestamp {
        self.machine.handle_scanned(p, scan, p.ts);
        self.after_packet(rec)
    }

    fn after_packet(&mut self, rec: &mut impl FnMut(CallRecord)) -> Timestamp {
        if let Some(c) = self.machine.clock() {
            self.now = self.now.max(c);
        }
        self.collect(rec);
        self.now
    }

    /// Moves the clock to `now` without a packet: timers due by then fire.
    pub(crate) fn advance(
        &mut self,
        now: Timestamp,
        rec: &mut impl FnMut(CallRecord),
    ) -> Timestamp {
        self.now = self.now.max(now);
        self.machine.handle_timeout(self.now);
        self.collect(rec);
        self.now
    }

    /// End of input: every open call ends by its rule.
    pub(crate) fn finish(&mut self, rec: &mut impl FnMut(CallRecord)) {
        self.machine.handle_timeout(Timestamp::from_nanos(i64::MAX));
        self.collect(rec);
    }

    /// The dialog machine's counters.
    pub(crate) fn stats(&self) -> &sip_fsm::Stats {
        self.machine.stats()
    }

    /// Finished calls out of the machine.
    fn collect(&mut self, rec: &mut impl FnMut(CallRecord)) {
        while let Some(ev) = self.machine.poll_event() {
            match ev {
                DialogEvent::End(r) | DialogEvent::Failed(r) => rec(r),
                DialogEvent::Attempt { .. }
                | DialogEvent::Answer { .. }
                | DialogEvent::Update { .. } => {}
            }
        }
    }
}

impl Release {
    /// Holds finished calls `window` long (see [`EndTimeOrder::window_for`]).
    pub(crate) fn new(window: Duration) -> Self {
        Release {
            order: EndTimeOrder::new(window),
            since: None,
            before_since: 0,
        }
    }

    /// Leaves out calls that ended before `since` (they are still
    /// followed, and counted in [`Release::before_since`]).
    pub(crate) fn set_since(&mut self, since: Option<Timestamp>) {
        self.since = since;
    }

    /// Takes a finished call in.
    pub(crate) fn push(&mut self, rec: CallRecord) {
        self.order.push(rec);
    }

    /// Gives `out` every held call due by `now`, in end-time order (the
    /// record itself: the caller decides where it is freed).
    pub(crate) fn release<E>(
        &mut self,
        now: Timestamp,
        out: &mut impl FnMut(CallRecord) -> Result<(), E>,
    ) -> Result<(), E> {
        while let Some(rec) = self.order.pop_ready(now) {
            self.emit(rec, out)?;
        }
        Ok(())
    }

    /// End of input: every held call goes to `out`.
    pub(crate) fn finish<E>(
        &mut self,
        out: &mut impl FnMut(CallRecord) -> Result<(), E>,
    ) -> Result<(), E> {
        while let Some(rec) = self.order.pop() {
            self.emit(rec, out)?;
        }
        Ok(())
    }

    /// Calls left out by `since`.
    pub(crate) fn before_since(&self) -> u64 {
        self.before_since
    }

    fn emit<E>(
        &mut self,
        rec: CallRecord,
        out: &mut impl FnMut(CallRecord) -> Result<(), E>,
    ) -> Result<(), E> {
        if self.since.is_some_and(|s| rec.end_time < s) {
            self.before_since += 1;
            return Ok(());
        }
        out(rec)
    }
}

impl Pipeline {
    /// A pipeline holding finished calls `window` long before releasing
    /// them (see [`EndTimeOrder::window_for`]).
    pub(crate) fn new(machine: DialogMachine, window: Duration, opts: CdrOptions) -> Self {
        Pipeline {
            dialogs: Dialogs::new(machine),
            release: Release::new(window),
            opts,
        }
    }

    /// Leaves out calls that ended before `since` (they are still
    /// followed, and counted in [`Pipeline::before_since`]).
    pub(crate) fn set_since(&mut self, since: Option<Timestamp>) {
        self.release.set_since(since);
    }

    /// One packet; its timestamp moves the clock (never backwards). Each
    /// call it releases goes to `out`.
    pub(crate) fn packet_records<E>(
        &mut self,
        p: &SipPacket,
        out: &mut impl FnMut(&CallRecord) -> Result<(), E>,
    ) -> Result<(), E> {
        let release = &mut self.release;
        let now = self.dialogs.packet(p, &mut |r| release.push(r));
        self.release.release(now, &mut |r| out(&r))
    }

    /// End of input: every open call ends by its rule, every held record
    /// goes to `out`.
    pub(crate) fn finish_records<E>(
        &mut self,
        out: &mut impl FnMut(&CallRecord) -> Result<(), E>,
    ) -> Result<(), E> {
        let release = &mut self.release;
        self.dialogs.finish(&mut |r| release.push(r));
        self.release.finish(&mut |r| out(&r))
    }

    /// [`Pipeline::packet_records`] with each record as a [`Cdr`].
    // For a live caller, and tested below; `replay` writes records.
    #[allow(dead_code)]
    pub(crate) fn packet<E>(
        &mut self,
        p: &SipPacket,
        out: &mut impl FnMut(Cdr) -> Result<(), E>,
    ) -> Result<(), E> {
        let opts = &self.opts;
        let release = &mut self.release;
        let now = self.dialogs.packet(p, &mut |r| release.push(r));
        release.release(now, &mut |r| out(Cdr::from_record(&r, opts)))
    }

    /// Moves the clock to `now` without a packet: timers due by then fire.
    // Not called by `replay` (its clock is the packets'); for a live caller
    // such as a future `serve`, and tested below.
    #[allow(dead_code)]
    pub(crate) fn advance<E>(
        &mut self,
        now: Timestamp,
        out: &mut impl FnMut(Cdr) -> Result<(), E>,
    ) -> Result<(), E> {
        let opts = &self.opts;
        let release = &mut self.release;
        let now = self.dialogs.advance(now, &mut |r| release.push(r));
        release.release(now, &mut |r| out(Cdr::from_record(&r, opts)))
    }

    /// The dialog machine's counters.
    pub(crate) fn dialog_stats(&self) -> &sip_fsm::Stats {
        self.dialogs.stats()
    }

    /// Calls left out by `since`.
    pub(crate) fn before_since(&self) -> u64 {
        self.release.before_since()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use capture::{Source, Transport};

    fn invite(ts: Timestamp) -> SipPacket {
        let msg = "INVITE sip:1002@10.0.0.2 SIP/2.0\r\n\
                   Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK-1\r\n\
                   From: <sip:1001@10.0.0.1>;tag=a\r\n\
                   To: <sip:1002@10.0.0.2>\r\n\
                   Call-ID: pipeline-test\r\n\
                   CSeq: 1 INVITE\r\n\
                   Content-Length: 0\r\n\r\n";
        SipPacket {
            ts,
            src: "10.0.0.1:5060".parse().unwrap(),
            dst: "10.0.0.2:5060".parse().unwrap(),
            transport: Transport::Udp,
            source: Source::Pcap,
            capture_id: None,
            node: None,
            correlation_id: None,
            vlan: None,
            payload: bytes::Bytes::from(msg),
        }
    }

    /// A live caller moves the clock without packets: an unanswered call
    /// ends (408 timeout) once the clock passes its timer and the window.
    #[test]
    fn advance_releases_calls_without_packets() {
        let cfg = sip_fsm::Config::default();
        let window = EndTimeOrder::window_for(&cfg);
        let machine = DialogMachine::new(cfg.clone()).unwrap();
        let mut p = Pipeline::new(machine, window, CdrOptions::default());
        let mut got = Vec::new();
        let mut out = |c: Cdr| -> Result<(), ()> {
            got.push(c);
            Ok(())
        };
        let t0 = Timestamp::from_secs_nanos(1_700_000_000, 0);
        p.packet(&invite(t0), &mut out).unwrap();
        p.advance(t0.saturating_add(Duration::from_secs(1)), &mut out)
            .unwrap();
        let later = t0
            .saturating_add(Duration::from_secs(cfg.invite_timeout_secs))
            .saturating_add(window)
            .saturating_add(Duration::from_secs(1));
        p.advance(later, &mut out).unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].origin_id, "pipeline-test");
        assert_eq!(p.dialog_stats().attempts, 1);
    }
}
