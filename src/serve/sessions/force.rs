//! `SessionSv1.ForceDisconnect` on a shard: each session ended at once
//! ([`sessions::SessionManager::force_terminate`]), the reply sent once
//! every CDR it wrote is stored.

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use sessions::SessionKey;

use super::{Answer, Shard, lock};

/// What a `ForceDisconnect` did on one shard (or all of them).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Forced {
    /// Sessions found and ended.
    pub found: usize,
    /// Of those, the ones whose settle failed (their CDR written with the
    /// error).
    pub failed: usize,
}

/// A `ForceDisconnect` on one shard until every CDR it wrote is stored:
/// the reply goes when the last one is.
struct ForceWait {
    left: usize,
    forced: Forced,
    reply: Option<Answer<Forced>>,
}

impl ForceWait {
    fn done_one(w: &Mutex<ForceWait>) {
        let mut g = lock(w);
        g.left = g.left.saturating_sub(1);
        if g.left == 0
            && let Some(r) = g.reply.take()
        {
            let _ = r.send(g.forced);
        }
    }
}

impl Shard<'_> {
    /// Ends the sessions of `keys` (those found) for `reason`; `reply`
    /// gets what was done once their CDRs are stored.
    pub(super) fn force(
        &mut self,
        keys: &[SessionKey],
        reason: &str,
        reply: Answer<Forced>,
        now: DateTime<Utc>,
    ) {
        // One count for this loop, one per CDR written: the reply
        // goes once all of them are stored.
        let wait = Arc::new(Mutex::new(ForceWait {
            left: 1,
            forced: Forced::default(),
            reply: Some(reply),
        }));
        for k in keys {
            let w = Arc::clone(&wait);
            self.after_cdr = Some(Box::new(move |_| ForceWait::done_one(&w)));
            lock(&wait).left += 1;
            let r = self.with_charging(|mgr, ch| mgr.force_terminate(k, reason, now, ch));
            {
                let mut g = lock(&wait);
                match &r {
                    Ok(_) => g.forced.found += 1,
                    // Ended meanwhile: skipped, as CGRateS does.
                    Err(sessions::Error::SessionNotFound(_)) => {}
                    Err(e) => {
                        g.forced.found += 1;
                        g.forced.failed += 1;
                        tracing::warn!(session = %k, error = %e, "force-terminating a session");
                    }
                }
            }
            self.apply(Vec::new());
            // No CDR written (not found): nothing to wait for.
            if let Some(f) = self.after_cdr.take() {
                f(true);
            }
        }
        self.writes.flush();
        ForceWait::done_one(&wait);
    }
}
