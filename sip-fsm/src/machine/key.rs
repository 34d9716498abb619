//! Call identity: which dialog a message belongs to, and the OriginID of a
//! new call.
//!
//! A call is its Call-ID plus the caller's From tag (RFC 3261 12: the
//! dialog id is Call-ID and both tags; the caller's tag is the part fixed
//! from the first INVITE on). Copies of one message at several hops and a
//! retried INVITE after 401/407/3xx keep both, so they stay one call; a new
//! INVITE that reuses a Call-ID with another From tag is another call.

use std::borrow::Borrow;
use std::collections::VecDeque;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use capture::Timestamp;
use rustc_hash::FxHashMap;

use super::dialog::hash;

/// The map key of a dialog: Call-ID bytes and the hash of the caller's
/// From tag (of the empty string when the caller sent none).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct Key {
    pub call_id: Arc<[u8]>,
    pub tag: u64,
}

/// What a lookup needs of a key, so a borrowed Call-ID can look up without
/// allocating (the `Borrow<dyn Trait>` pattern).
pub(super) trait KeyRef {
    fn call_id(&self) -> &[u8];
    fn tag(&self) -> u64;
}

impl KeyRef for Key {
    fn call_id(&self) -> &[u8] {
        &self.call_id
    }
    fn tag(&self) -> u64 {
        self.tag
    }
}

impl KeyRef for (&[u8], u64) {
    fn call_id(&self) -> &[u8] {
        self.0
    }
    fn tag(&self) -> u64 {
        self.1
    }
}

impl<'a> Borrow<dyn KeyRef + 'a> for Key {
    fn borrow(&self) -> &(dyn KeyRef + 'a) {
        self
    }
}

impl Hash for dyn KeyRef + '_ {
    fn hash<H: Hasher>(&self, h: &mut H) {
        self.call_id().hash(h);
        self.tag().hash(h);
    }
}

impl PartialEq for dyn KeyRef + '_ {
    fn eq(&self, o: &Self) -> bool {
        self.call_id() == o.call_id() && self.tag() == o.tag()
    }
}

impl Eq for dyn KeyRef + '_ {}

// `Key`'s derived Hash must agree with the trait object's: hash the same
// fields in the same order.
impl Hash for Key {
    fn hash<H: Hasher>(&self, h: &mut H) {
        (self as &dyn KeyRef).hash(h);
    }
}

/// Tags remembered per Call-ID; beyond this every later call gets the
/// `;tag;N` form, which is unique on its own.
const MAX_TAGS: usize = 16;

struct Seen {
    /// Calls started on this Call-ID while remembered.
    calls: u32,
    /// Hash of the first call's From tag.
    first: u64,
}

/// Call-IDs of recent calls, so a later call reusing one gets its own
/// OriginID (and so its own CGRID) even after the first call's dialog is
/// gone. Bounded in time (`call-id-memory-secs`) and in entries (the
/// oldest is forgotten first).
pub(super) struct Remembered {
    memory: std::time::Duration,
    max: usize,
    /// By Call-ID hash (already a hash: the map's own is a multiply).
    seen: FxHashMap<u64, Seen>,
    /// Hashes of later calls' From tags, for the few Call-IDs that had
    /// more than one call (kept apart so `seen` stays small).
    more: FxHashMap<u64, Vec<u64>>,
    /// (forget time, Call-ID hash) in the order calls started.
    queue: VecDeque<(Timestamp, u64)>,
}

impl Remembered {
    pub fn new(memory: std::time::Duration, max: usize) -> Self {
        Remembered {
            memory,
            max,
            seen: FxHashMap::default(),
            more: FxHashMap::default(),
            queue: VecDeque::new(),
        }
    }

    /// Records a new call on `call_id` with From tag `tag` at `at`; returns
    /// the OriginID suffix: `None` for the first call on this Call-ID,
    /// `;tag` for a later call with a tag not used before, `;tag;N` (N the
    /// call's ordinal on this Call-ID) otherwise. A Call-ID is remembered
    /// from its first call for the configured time (not extended by later
    /// calls, so there is one queue entry per Call-ID).
    pub fn start(
        &mut self,
        call_id: &[u8],
        tag: Option<&[u8]>,
        at: Timestamp,
    ) -> Option<Box<[u8]>> {
        self.expire(at);
        let id = hash(call_id);
        let tag_bytes = tag.unwrap_or_default();
        let th = hash(tag_bytes);
        let Some(s) = self.seen.get_mut(&id) else {
            if self.memory.is_zero() || self.max == 0 {
                return None;
            }
            while self.seen.len() >= self.max {
                match self.queue.pop_front() {
                    Some((_, h)) => self.forget(h),
                    None => break,
                }
            }
            let until = at.saturating_add(self.memory);
            self.seen.insert(
                id,
                Seen {
                    calls: 1,
                    first: th,
                },
            );
            self.queue.push_back((until, id));
            return None;
        };
        s.calls = s.calls.saturating_add(1);
        let mut v = Vec::with_capacity(tag_bytes.len() + 12);
        v.push(b';');
        v.extend_from_slice(tag_bytes);
        let more = self.more.entry(id).or_default();
        if s.first == th || more.contains(&th) || more.len() >= MAX_TAGS {
            v.extend_from_slice(format!(";{}", s.calls).as_bytes());
        } else {
            more.push(th);
        }
        Some(v.into_boxed_slice())
    }

    fn expire(&mut self, now: Timestamp) {
        while let Some(&(t, h)) = self.queue.front() {
            if t > now {
                break;
            }
            self.queue.pop_front();
            self.forget(h);
        }
    }

    fn forget(&mut self, h: u64) {
        self.seen.remove(&h);
        if !self.more.is_empty() {
            self.more.remove(&h);
        }
    }

    /// Call-IDs remembered.
    pub fn len(&self) -> usize {
        self.seen.len()
    }
}
