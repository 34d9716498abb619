//! Resource policies of the listeners, as plain values so they can be
//! tested without sockets or clocks: the accept back-off when descriptors
//! run out, and rate-limited warnings. (The reassembly byte budget they
//! share with the frame decoders is [`crate::ByteBudget`].)

use std::time::{Duration, Instant};

/// Exponential back-off for `accept` failing because descriptors (or
/// kernel memory) ran out: retrying at once would spin at 100% CPU until a
/// descriptor frees.
#[derive(Debug)]
pub(crate) struct Backoff {
    next: Duration,
}

/// First back-off after a failure.
const BACKOFF_MIN: Duration = Duration::from_millis(10);
/// Longest back-off.
const BACKOFF_MAX: Duration = Duration::from_secs(1);

impl Default for Backoff {
    fn default() -> Self {
        Backoff { next: BACKOFF_MIN }
    }
}

impl Backoff {
    /// How long to wait after one more failure: 10 ms, doubling to 1 s.
    pub(crate) fn fail(&mut self) -> Duration {
        let d = self.next;
        self.next = (self.next * 2).min(BACKOFF_MAX);
        d
    }

    /// A success: the next failure waits the minimum again.
    pub(crate) fn reset(&mut self) {
        self.next = BACKOFF_MIN;
    }
}

/// Whether an `accept` error means a resource ran out (descriptors of
/// the process or the system, socket buffers), as opposed to one
/// connection failing.
pub(crate) fn is_exhaustion(e: &std::io::Error) -> bool {
    use nix::errno::Errno;
    e.raw_os_error().is_some_and(|n| {
        [Errno::EMFILE, Errno::ENFILE, Errno::ENOBUFS, Errno::ENOMEM]
            .iter()
            .any(|x| *x as i32 == n)
    })
}

/// Kinds of warning a listener rate-limits separately.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Warn {
    /// `accept` failed.
    Accept,
    /// A connection was refused over the connection limit.
    ConnLimit,
    /// A connection was closed for a bad frame.
    BadFrame,
    /// A connection was closed because the byte budget ran out.
    Budget,
}

/// At most one warning per kind per `every`; the ones held back are
/// counted and reported with the next one let through.
#[derive(Debug)]
pub(crate) struct WarnLimiter {
    every: Duration,
    /// Per kind: when one was last let through, and how many were held back
    /// since.
    last: Vec<(Warn, Instant, u64)>,
}

impl WarnLimiter {
    /// A limiter letting one warning per kind through per `every`.
    pub(crate) fn new(every: Duration) -> Self {
        WarnLimiter {
            every,
            last: Vec::new(),
        }
    }

    /// Whether a warning of `kind` at `now` should be logged: `Some(n)`
    /// with the number held back since the last one, or `None` to stay
    /// quiet.
    pub(crate) fn allow(&mut self, kind: Warn, now: Instant) -> Option<u64> {
        match self.last.iter_mut().find(|(k, _, _)| *k == kind) {
            None => {
                self.last.push((kind, now, 0));
                Some(0)
            }
            Some((_, at, held)) if now.saturating_duration_since(*at) >= self.every => {
                let n = *held;
                *at = now;
                *held = 0;
                Some(n)
            }
            Some((_, _, held)) => {
                *held += 1;
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_a_second_and_resets() {
        let mut b = Backoff::default();
        let waits: Vec<u128> = (0..10).map(|_| b.fail().as_millis()).collect();
        assert_eq!(waits, [10, 20, 40, 80, 160, 320, 640, 1000, 1000, 1000]);
        b.reset();
        assert_eq!(b.fail(), Duration::from_millis(10));
    }

    #[test]
    fn exhaustion_errors() {
        use nix::errno::Errno;
        for e in [Errno::EMFILE, Errno::ENFILE, Errno::ENOBUFS, Errno::ENOMEM] {
            assert!(is_exhaustion(&std::io::Error::from_raw_os_error(e as i32)));
        }
        let other = std::io::Error::from_raw_os_error(Errno::ECONNABORTED as i32);
        assert!(!is_exhaustion(&other));
    }

    #[test]
    fn warnings_are_rate_limited_per_kind() {
        let mut w = WarnLimiter::new(Duration::from_secs(10));
        let t0 = Instant::now();
        assert_eq!(w.allow(Warn::Accept, t0), Some(0));
        for i in 1..=1000 {
            assert_eq!(w.allow(Warn::Accept, t0 + Duration::from_millis(i)), None);
        }
        // Another kind is not held back by the first.
        assert_eq!(w.allow(Warn::ConnLimit, t0), Some(0));
        assert_eq!(
            w.allow(Warn::Accept, t0 + Duration::from_secs(10)),
            Some(1000)
        );
        assert_eq!(w.allow(Warn::Accept, t0 + Duration::from_secs(11)), None);
    }
}
