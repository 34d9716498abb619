//! The totals `replay` prints on stderr at the end.

use std::io::{self, Write};

use capture::Stats;
use sessions::Cdr;
use sip_fsm::ScanError;

use crate::output::print_stats;

/// Totals over the CDRs written.
#[derive(Default)]
pub(crate) struct Summary {
    pub(crate) calls: u64,
    pub(crate) answered: u64,
    pub(crate) usage_ns: u128,
    /// Calls that ended before `--since` (followed, not printed).
    pub(crate) before_since: u64,
    /// The dialog machine's counters.
    pub(crate) dialog: sip_fsm::Stats,
}

impl Summary {
    /// Counts one CDR written.
    pub(crate) fn add(&mut self, cdr: &Cdr) {
        self.calls += 1;
        if cdr.answered() {
            self.answered += 1;
            self.usage_ns += cdr.usage.as_nanos();
        }
    }

    /// Counts the CDR of one call record written (as [`Summary::add`] of
    /// its CDR would).
    pub(crate) fn add_record(&mut self, rec: &sip_fsm::CallRecord) {
        self.calls += 1;
        if rec.answer_time.is_some() {
            self.answered += 1;
            self.usage_ns += rec.duration.as_nanos();
        }
    }

    /// Prints the totals, then the capture counters and the dialog
    /// machine's, one `replay: NAME: VALUE` line each. Integer arithmetic:
    /// the figures do not depend on float rounding.
    pub(crate) fn print(&self, capture: &Stats) {
        let mut e = io::stderr().lock();
        let _ = writeln!(e, "replay: calls: {}", self.calls);
        let _ = writeln!(e, "replay: answered: {}", self.answered);
        // ASR: answered / calls, percent with two decimals.
        let asr = (u128::from(self.answered) * 10_000)
            .checked_div(u128::from(self.calls))
            .unwrap_or(0);
        let _ = writeln!(e, "replay: asr: {}.{:02}%", asr / 100, asr % 100);
        // ACD: mean usage of answered calls, seconds with three decimals.
        let acd_ms = (self.usage_ns / 1_000_000)
            .checked_div(u128::from(self.answered))
            .unwrap_or(0);
        let _ = writeln!(e, "replay: acd: {}.{:03} s", acd_ms / 1000, acd_ms % 1000);
        let total_ms = self.usage_ns / 1_000_000;
        let _ = writeln!(
            e,
            "replay: minutes: {}.{:03}",
            total_ms / 60_000,
            (total_ms % 60_000) / 60
        );
        let _ = writeln!(e, "replay: before_since: {}", self.before_since);
        drop(e);
        let named = dialog_counters(&self.dialog);
        let extra: Vec<(&str, u64)> = named.iter().map(|(k, v)| (k.as_str(), *v)).collect();
        print_stats("replay", capture, &extra);
    }
}

/// The dialog machine's counters by name, `dialog.` first.
pub(crate) fn dialog_counters(s: &sip_fsm::Stats) -> Vec<(String, u64)> {
    let mut v: Vec<(String, u64)> = [
        ("packets", s.packets),
        ("attempts", s.attempts),
        ("answers", s.answers),
        ("updates", s.updates),
        ("ends", s.ends),
        ("failures", s.failures),
        ("late", s.late),
        ("retransmissions", s.retransmissions),
        ("hop_copies", s.hop_copies),
        ("orphan_requests", s.orphan_requests),
        ("orphan_responses", s.orphan_responses),
        ("non_call", s.non_call),
        ("stray_byes", s.stray_byes),
        ("extra_fork_answers", s.extra_fork_answers),
        ("branch_finals", s.branch_finals),
        ("retried_invites", s.retried_invites),
        ("call_id_reuse", s.call_id_reuse),
        ("late_answers", s.late_answers),
        ("reaped", s.reaped),
        ("session_expired", s.session_expired),
        ("max_duration", s.max_duration),
        ("dialogs_dropped", s.dialogs_dropped),
        ("dialogs_evicted_lingering", s.dialogs_evicted_lingering),
        ("dialogs_evicted_unanswered", s.dialogs_evicted_unanswered),
        ("reused_call_ids", s.reused_call_ids),
        ("clock_stamp_corrected", s.clock_stamp_corrected),
        ("clock_jump_future", s.clock_jump_future),
        ("clock_jump_past", s.clock_jump_past),
        ("clock_jumps_confirmed", s.clock_jumps_confirmed),
        ("malformed", s.malformed_total()),
        (
            "malformed_content_length_tolerated",
            s.malformed_content_length_tolerated,
        ),
    ]
    .into_iter()
    .map(|(k, n)| (format!("dialog.{k}"), n))
    .collect();
    for r in ScanError::ALL {
        v.push((format!("dialog.malformed.{}", r.as_str()), s.malformed(r)));
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_dialog_counter_has_a_unique_name() {
        let mut names: Vec<String> = dialog_counters(&sip_fsm::Stats::default())
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        let n = names.len();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), n);
        assert!(n > 30, "{n}");
    }
}
