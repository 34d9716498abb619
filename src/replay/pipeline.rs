//! From SIP packets to CDRs: the dialog machine, end-time ordering, CDR
//! building and (optionally) rating, driven one packet at a time.
//!
//! Time: the dialog machine is sans-IO; the clock is whatever the caller
//! passes. `replay` passes packet timestamps ([`Pipeline::packet`]); a live
//! caller can also move the clock with [`Pipeline::advance`] while no
//! packet comes, so timers still fire. [`Pipeline::finish`] moves the clock
//! to the end of time: every call still open ends by its own rule.
//!
//! Order: most records come out of the machine at about their end time, but
//! some later (see [`EndTimeOrder`]); they wait in a min-heap until the clock
//! is past their end time plus a window that covers the latest case, so the
//! CDRs come out in end-time order.

use std::time::Duration;

use capture::{SipPacket, Timestamp};
use sessions::{Cdr, CdrOptions, EndTimeOrder};
use sip_fsm::{CallRecord, DialogEvent, DialogMachine};

use super::rater::Rater;

/// Packets in, CDRs (in end-time order) out.
pub(crate) struct Pipeline {
    machine: DialogMachine,
    order: EndTimeOrder,
    opts: CdrOptions,
    rater: Option<Rater>,
    since: Option<Timestamp>,
    before_since: u64,
    now: Timestamp,
}

impl Pipeline {
    /// A pipeline holding finished calls `window` long before releasing
    /// them (see [`EndTimeOrder::window_for`]).
    pub(crate) fn new(machine: DialogMachine, window: Duration, opts: CdrOptions) -> Self {
        Pipeline {
            machine,
            order: EndTimeOrder::new(window),
            opts,
            rater: None,
            since: None,
            before_since: 0,
            now: Timestamp::from_nanos(i64::MIN),
        }
    }

    /// Prices every CDR with this plan.
    pub(crate) fn set_rater(&mut self, rater: Option<Rater>) {
        self.rater = rater;
    }

    /// Leaves out calls that ended before `since` (they are still
    /// followed, and counted in [`Pipeline::before_since`]).
    pub(crate) fn set_since(&mut self, since: Option<Timestamp>) {
        self.since = since;
    }

    /// One packet; its timestamp moves the clock (never backwards). Each
    /// CDR it releases goes to `out`.
    pub(crate) fn packet<E>(
        &mut self,
        p: &SipPacket,
        out: &mut impl FnMut(Cdr) -> Result<(), E>,
    ) -> Result<(), E> {
        // The packet's time is the clock, as far as the machine's clock
        // rule accepts it (one wild timestamp never moves it).
        self.machine.handle(p, p.ts);
        if let Some(c) = self.machine.clock() {
            self.now = self.now.max(c);
        }
        self.release(out)
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
        self.now = self.now.max(now);
        self.machine.handle_timeout(self.now);
        self.release(out)
    }

    /// End of input: every open call ends by its rule, every held record
    /// goes to `out`.
    pub(crate) fn finish<E>(
        &mut self,
        out: &mut impl FnMut(Cdr) -> Result<(), E>,
    ) -> Result<(), E> {
        self.machine.handle_timeout(Timestamp::from_nanos(i64::MAX));
        self.collect();
        while let Some(rec) = self.order.pop() {
            self.emit(&rec, out)?;
        }
        Ok(())
    }

    /// The dialog machine's counters.
    pub(crate) fn dialog_stats(&self) -> &sip_fsm::Stats {
        self.machine.stats()
    }

    /// Calls left out by `since`.
    pub(crate) fn before_since(&self) -> u64 {
        self.before_since
    }

    fn release<E>(&mut self, out: &mut impl FnMut(Cdr) -> Result<(), E>) -> Result<(), E> {
        self.collect();
        while let Some(rec) = self.order.pop_ready(self.now) {
            self.emit(&rec, out)?;
        }
        Ok(())
    }

    /// Moves finished calls from the machine into the order heap.
    fn collect(&mut self) {
        while let Some(ev) = self.machine.poll_event() {
            match ev {
                DialogEvent::End(rec) | DialogEvent::Failed(rec) => self.order.push(rec),
                DialogEvent::Attempt { .. }
                | DialogEvent::Answer { .. }
                | DialogEvent::Update { .. } => {}
            }
        }
    }

    fn emit<E>(
        &mut self,
        rec: &CallRecord,
        out: &mut impl FnMut(Cdr) -> Result<(), E>,
    ) -> Result<(), E> {
        if self.since.is_some_and(|s| rec.end_time < s) {
            self.before_since += 1;
            return Ok(());
        }
        let mut cdr = Cdr::from_record(rec, &self.opts);
        if let Some(r) = &self.rater {
            r.rate(&mut cdr);
        }
        out(cdr)
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
