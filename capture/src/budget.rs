//! [`ByteBudget`]: one bound on the bytes every reassembler of a process
//! holds together — the frame decoders' IP fragments and TCP streams (one
//! decoder per capture file or live tap) and the HEP-over-TCP framers'
//! partial frames.
//!
//! Sans-IO: an atomic counter, no clock and no runtime. Each holder keeps a
//! [`Charge`] and tells it what it holds whenever that changes; the holder
//! whose growth takes the total past the limit is the one that lets go
//! (counted as `reassembly_budget`).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// One byte budget shared by every holder it is handed to. Cloning shares
/// it; [`ByteBudget::new`] makes a separate one.
#[derive(Clone, Debug)]
pub struct ByteBudget {
    used: Arc<AtomicUsize>,
    limit: usize,
}

impl ByteBudget {
    /// A budget of `limit` bytes, none used.
    pub fn new(limit: usize) -> Self {
        ByteBudget {
            used: Arc::new(AtomicUsize::new(0)),
            limit,
        }
    }

    /// Bytes charged now over every holder.
    pub fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    /// The limit.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Whether two values are the same budget (clones of one another).
    pub fn same(&self, other: &ByteBudget) -> bool {
        Arc::ptr_eq(&self.used, &other.used)
    }

    /// A holder's account, charged nothing yet; it gives its bytes back
    /// when dropped.
    pub fn account(&self) -> Charge {
        Charge {
            budget: self.clone(),
            charged: 0,
        }
    }
}

/// What one holder (a decoder, a HEP connection) has charged to a
/// [`ByteBudget`]. Dropping it gives the bytes back.
#[derive(Debug)]
pub struct Charge {
    budget: ByteBudget,
    charged: usize,
}

impl Charge {
    /// Sets this holder's bytes to `now`. False if the holder grew and the
    /// budget is exceeded afterwards: it took the total past the limit and
    /// should let go of its bytes. A holder that did not grow is never
    /// refused (another holder passed the limit, and goes). Costs no
    /// atomic operation when `now` is what is charged already.
    pub fn set(&mut self, now: usize) -> bool {
        if now == self.charged {
            return true;
        }
        if now < self.charged {
            let d = self.charged - now;
            self.budget.used.fetch_sub(d, Ordering::Relaxed);
            self.charged = now;
            return true;
        }
        let d = now - self.charged;
        let used = self.budget.used.fetch_add(d, Ordering::Relaxed) + d;
        self.charged = now;
        used <= self.budget.limit
    }

    /// The bytes this holder has charged.
    pub fn charged(&self) -> usize {
        self.charged
    }

    /// The budget charged.
    pub fn budget(&self) -> &ByteBudget {
        &self.budget
    }
}

impl Drop for Charge {
    fn drop(&mut self) {
        self.budget.used.fetch_sub(self.charged, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_charges_and_gives_back() {
        let b = ByteBudget::new(100);
        let mut a = b.account();
        let mut c = b.account();
        assert!(a.set(60));
        assert!(!c.set(50), "110 > 100");
        assert!(c.set(40));
        assert_eq!(b.used(), 100);
        assert!(a.set(10));
        drop(c);
        assert_eq!(b.used(), 10);
        drop(a);
        assert_eq!(b.used(), 0);
    }

    #[test]
    fn only_the_holder_that_grows_past_the_limit_is_refused() {
        let b = ByteBudget::new(100);
        let mut a = b.account();
        let mut c = b.account();
        assert!(a.set(80));
        assert!(!c.set(30), "c took the total to 110");
        // a holding still, or shrinking, is not the one to go.
        assert!(a.set(80));
        assert!(a.set(75));
        assert_eq!(b.used(), 105);
        assert!(!a.set(76), "growing while over is refused");
        assert_eq!(a.charged(), 76);
        assert!(b.same(c.budget()));
        assert!(!b.same(&ByteBudget::new(100)));
    }
}
