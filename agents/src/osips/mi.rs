//! OpenSIPS's `mi_datagram` commands (`:name:\narg\n...`), as CGRateS's
//! OpenSIPS session manager sends them, and the event subscription
//! schedule: subscribed at start, renewed before the subscription
//! expires, retried on failure, renewed at once when OpenSIPS restarts
//! (`E_OPENSIPS_START`).

use std::time::Duration;

use chrono::{DateTime, Utc};

/// The events the agent subscribes to.
pub const EVENTS: [&str; 3] = ["E_ACC_CDR", "E_ACC_EVENT", "E_ACC_MISSED_EVENT"];

/// A command argument: one line, no control characters.
fn arg_ok(a: &str) -> bool {
    !a.is_empty() && !a.chars().any(char::is_control)
}

/// `:event_subscribe:` of `event` to `socket` (`udp:IP:PORT`) for
/// `expire` seconds; `None` when an argument would break the framing.
pub fn event_subscribe(event: &str, socket: &str, expire: u64) -> Option<Vec<u8>> {
    (arg_ok(event) && arg_ok(socket))
        .then(|| format!(":event_subscribe:\n{event}\n{socket}\n{expire}\n").into_bytes())
}

/// `:dlg_end_dlg:` of the dialog `h_entry`/`h_id` (both numbers); `None`
/// when they are not.
pub fn dlg_end_dlg(h_entry: &str, h_id: &str) -> Option<Vec<u8>> {
    let num = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    (num(h_entry) && num(h_id))
        .then(|| format!(":dlg_end_dlg:\n{h_entry}\n{h_id}\n\n").into_bytes())
}

/// Whether an MI reply says success (`200 OK`...).
pub fn reply_ok(reply: &[u8]) -> bool {
    reply.starts_with(b"200")
}

/// The longest wait between two failed subscription attempts.
const RETRY_MAX: Duration = Duration::from_secs(30);

/// When the subscriptions are (re)sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    expire: Duration,
    next: Option<DateTime<Utc>>,
    failures: u32,
}

impl Subscription {
    /// A schedule of subscriptions lasting `expire` (at least 2 s), due
    /// at once.
    pub fn new(expire: Duration) -> Self {
        Subscription {
            expire: expire.max(Duration::from_secs(2)),
            next: None,
            failures: 0,
        }
    }

    /// The subscription's lifetime in whole seconds, as sent.
    pub fn expire_secs(&self) -> u64 {
        self.expire.as_secs()
    }

    /// The time between two renewals: the lifetime less a margin of a
    /// tenth of it, at least one second.
    pub fn renew_every(&self) -> Duration {
        let margin = (self.expire / 10).max(Duration::from_secs(1));
        self.expire.saturating_sub(margin)
    }

    /// When the subscriptions must next be sent (`None`: now).
    pub fn next_due(&self) -> Option<DateTime<Utc>> {
        self.next
    }

    /// Whether they are due at `now`.
    pub fn due(&self, now: DateTime<Utc>) -> bool {
        self.next.is_none_or(|t| t <= now)
    }

    /// The commands of one round, for `socket`.
    pub fn commands(&self, socket: &str) -> Vec<Vec<u8>> {
        EVENTS
            .iter()
            .filter_map(|e| event_subscribe(e, socket, self.expire_secs()))
            .collect()
    }

    /// A round OpenSIPS accepted at `now`: the next before expiry.
    pub fn succeeded(&mut self, now: DateTime<Utc>) {
        self.failures = 0;
        self.next = Some(now + self.renew_every());
    }

    /// A round that failed at `now`: retried after 1, 2, 4... seconds (at
    /// most 30).
    pub fn failed(&mut self, now: DateTime<Utc>) {
        let wait = Duration::from_secs(1u64 << self.failures.min(5)).min(RETRY_MAX);
        self.failures = self.failures.saturating_add(1);
        self.next = Some(now + wait);
    }

    /// OpenSIPS restarted (`E_OPENSIPS_START`): due at once.
    pub fn restart(&mut self) {
        self.failures = 0;
        self.next = None;
    }
}
