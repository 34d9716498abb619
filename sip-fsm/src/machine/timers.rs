//! An indexed binary heap: the dialog deadlines and the eviction order.
//!
//! Items are dialog slot numbers (`u32`), each in the heap at most once
//! with a priority; the heap knows where each item sits, so moving an
//! item's priority (a deadline moved by a 2xx or a BYE) or taking it out is
//! a sift of O(log n) steps on a flat array: no search, no allocation once
//! the arrays have grown, no stale entries left behind (as a lazy-deletion
//! heap would keep until they surface). The order is a caller's `less`
//! over (priority, item), so that equal deadlines can fire in the order of
//! the dialogs' keys (deterministic, as before).

/// No position: the item is not in the heap.
const NONE: u32 = u32::MAX;

/// Items with priorities, least first under the caller's order.
#[derive(Debug)]
pub(super) struct Heap<P> {
    items: Vec<(P, u32)>,
    /// Position of each item in `items`, by item number; `NONE` if absent.
    pos: Vec<u32>,
}

impl<P: Copy> Heap<P> {
    pub fn new() -> Self {
        Heap {
            items: Vec::new(),
            pos: Vec::new(),
        }
    }

    /// The least item and its priority.
    pub fn peek(&self) -> Option<(P, u32)> {
        self.items.first().copied()
    }

    /// The priority of `item`, if it is in the heap.
    #[cfg(test)]
    pub fn get(&self, item: u32) -> Option<P> {
        let at = *self.pos.get(item as usize)?;
        self.items.get(at as usize).map(|e| e.0)
    }

    /// Puts `item` in the heap at priority `p`, or moves it there.
    pub fn set(&mut self, item: u32, p: P, less: impl Fn(&(P, u32), &(P, u32)) -> bool) {
        let i = item as usize;
        if self.pos.len() <= i {
            self.pos.resize(i + 1, NONE);
        }
        let at = self.pos.get(i).copied().unwrap_or(NONE);
        if at == NONE {
            let at = self.items.len();
            self.items.push((p, item));
            self.place(item, at);
            self.up(at, &less);
        } else if let Some(e) = self.items.get_mut(at as usize) {
            e.0 = p;
            let at = self.up(at as usize, &less);
            self.down(at, &less);
        }
    }

    /// Takes `item` out of the heap (nothing if absent).
    pub fn remove(&mut self, item: u32, less: impl Fn(&(P, u32), &(P, u32)) -> bool) {
        let Some(slot) = self.pos.get_mut(item as usize) else {
            return;
        };
        let at = std::mem::replace(slot, NONE);
        if at == NONE {
            return;
        }
        let at = at as usize;
        let Some(last) = self.items.len().checked_sub(1) else {
            return;
        };
        self.items.swap(at, last);
        self.items.pop();
        if at < last {
            if let Some(&(_, moved)) = self.items.get(at) {
                self.place(moved, at);
            }
            let at = self.up(at, &less);
            self.down(at, &less);
        }
    }

    /// Takes the least item.
    pub fn pop(&mut self, less: impl Fn(&(P, u32), &(P, u32)) -> bool) -> Option<(P, u32)> {
        let top = self.peek()?;
        self.remove(top.1, less);
        Some(top)
    }

    /// Items in the heap.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.items.len()
    }

    fn place(&mut self, item: u32, at: usize) {
        if let Some(p) = self.pos.get_mut(item as usize) {
            // Positions fit: there are never more than u32::MAX items.
            *p = u32::try_from(at).unwrap_or(NONE);
        }
    }

    /// Moves the entry at `at` towards the root while it is less than its
    /// parent; returns where it ends.
    fn up(&mut self, mut at: usize, less: &impl Fn(&(P, u32), &(P, u32)) -> bool) -> usize {
        while at > 0 {
            let parent = (at - 1) / 2;
            match (self.items.get(at), self.items.get(parent)) {
                (Some(a), Some(b)) if less(a, b) => {}
                _ => break,
            }
            self.items.swap(at, parent);
            self.fix(at);
            at = parent;
        }
        self.fix(at);
        at
    }

    /// Moves the entry at `at` towards the leaves while a child is less.
    fn down(&mut self, mut at: usize, less: &impl Fn(&(P, u32), &(P, u32)) -> bool) {
        loop {
            let l = 2 * at + 1;
            let r = l + 1;
            let Some(left) = self.items.get(l) else {
                break;
            };
            let child = match self.items.get(r) {
                Some(right) if less(right, left) => r,
                _ => l,
            };
            match (self.items.get(child), self.items.get(at)) {
                (Some(c), Some(e)) if less(c, e) => {}
                _ => break,
            }
            self.items.swap(at, child);
            self.fix(at);
            at = child;
        }
        self.fix(at);
    }

    /// Records where the entry at `at` now is.
    fn fix(&mut self, at: usize) {
        if let Some(&(_, item)) = self.items.get(at) {
            self.place(item, at);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use capture::Timestamp;

    fn t(s: i64) -> Timestamp {
        Timestamp::from_nanos(s * 1_000_000_000)
    }

    /// Deadline order, ties by a key per item (as the machine's by Key).
    fn less<'a>(keys: &'a [&'a str]) -> impl Fn(&(Timestamp, u32), &(Timestamp, u32)) -> bool + 'a {
        move |a, b| (a.0, keys[a.1 as usize]) < (b.0, keys[b.1 as usize])
    }

    #[test]
    fn earliest_first_reset_and_cancel() {
        let keys = ["a", "b", "c"];
        let mut q = Heap::new();
        q.set(1, t(5), less(&keys));
        q.set(0, t(5), less(&keys));
        q.set(2, t(9), less(&keys));
        q.set(2, t(1), less(&keys));
        q.remove(1, less(&keys));
        assert_eq!(q.peek().map(|e| e.0), Some(t(1)));
        assert_eq!(q.pop(less(&keys)), Some((t(1), 2)));
        assert_eq!(q.pop(less(&keys)), Some((t(5), 0)));
        assert_eq!(q.pop(less(&keys)), None);
    }

    #[test]
    fn matches_a_sorted_model_under_random_moves() {
        // A small deterministic generator (no dependency): xorshift.
        let mut x = 0x9e37_79b9_7f4a_7c15_u64;
        let mut rnd = move |n: u64| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % n
        };
        let keys: Vec<String> = (0..64).map(|i| format!("k{:02}", 63 - i)).collect();
        let key_refs: Vec<&str> = keys.iter().map(String::as_str).collect();
        let mut q = Heap::new();
        let mut model: std::collections::BTreeSet<(Timestamp, &str, u32)> = Default::default();
        let mut at: Vec<Option<Timestamp>> = vec![None; 64];
        for _ in 0..20_000 {
            let item = u32::try_from(rnd(64)).unwrap();
            let i = item as usize;
            match rnd(4) {
                0 => {
                    if let Some(old) = at[i].take() {
                        model.remove(&(old, key_refs[i], item));
                    }
                    q.remove(item, less(&key_refs));
                }
                1 => {
                    let top = q.pop(less(&key_refs));
                    let want = model.pop_first();
                    assert_eq!(top, want.map(|(t, _, item)| (t, item)));
                    if let Some((_, _, item)) = want {
                        at[item as usize] = None;
                    }
                }
                _ => {
                    let new = t(rnd(50) as i64);
                    if let Some(old) = at[i].replace(new) {
                        model.remove(&(old, key_refs[i], item));
                    }
                    model.insert((new, key_refs[i], item));
                    q.set(item, new, less(&key_refs));
                }
            }
            assert_eq!(q.len(), model.len());
            assert_eq!(q.peek(), model.first().map(|&(t, _, item)| (t, item)));
            assert_eq!(q.get(item), at[i]);
        }
    }
}
