//! Destination prefixes: a byte trie for longest-prefix lookups, and a
//! small fast hasher for the maps on the rating path.
//!
//! A lookup walks the dialled number once, byte by byte, and remembers
//! every node where some destination has a prefix; the rating plan then
//! picks the deepest of those it prices. Each byte of the number costs one
//! read of a 16-byte entry (see [`PrefixTrie::freeze`]).

/// Maximum number of prefix matches kept for one number (numbers are
/// matched on their first 64 bytes).
pub(crate) const MAX_MATCH_DEPTH: usize = 64;

const NONE: u32 = u32::MAX;

#[derive(Debug, Clone)]
struct Node {
    byte: u8,
    first_child: u32,
    next_sibling: u32,
    /// Destinations (indexes) having exactly this prefix.
    dests: Vec<u32>,
}

/// A trie of destination prefixes. Built with [`PrefixTrie::insert`], then
/// [`PrefixTrie::freeze`]d into flat arrays for lookups: the children of a
/// node sit side by side (breadth-first), so each step of a lookup scans
/// one short run of bytes.
#[derive(Debug, Clone)]
pub(crate) struct PrefixTrie {
    nodes: Vec<Node>,
    prefixes: usize,
    frozen: Frozen,
}

/// The read-only form of the trie: one 16-byte entry per node, holding
/// where its children are and its destinations, and the children of each
/// node side by side. A lookup step reads one entry of the parent's run of
/// children: one cache line per byte of the number. A run is dense (one
/// slot per byte value from the lowest child's to the highest's, so the
/// slot is found by subtraction; slots with no child hold a byte that
/// cannot match) when that wastes little room, as with digits; otherwise
/// it lists the children in byte order and is scanned.
#[derive(Debug, Clone, Default)]
struct Frozen {
    /// The root's children.
    root: Entry,
    entries: Vec<Entry>,
    /// Destination lists of nodes with more than one destination.
    dests: Vec<u32>,
}

/// A run is dense when it has at most this many slots, or at most twice
/// as many slots as children.
const DENSE_SLOTS: usize = 16;

#[derive(Debug, Clone, Copy, Default)]
struct Entry {
    /// Where the node's children start in `entries`.
    kids: u32,
    /// The node's destination when `dest_len` is 1, else where its list
    /// starts in `dests`.
    dest: u32,
    dest_len: u32,
    /// Slots in the run of children; the top bit marks a dense run.
    kids_len: u16,
    /// The lowest byte among the children (the first slot of a dense run).
    kids_lo: u8,
    /// The byte leading to this node.
    byte: u8,
}

const DENSE: u16 = 1 << 15;

impl Entry {
    /// The child for byte `b`, as an index into `entries`.
    fn child(&self, entries: &[Entry], b: u8) -> Option<usize> {
        let len = usize::from(self.kids_len & !DENSE);
        let start = self.kids as usize;
        if self.kids_len & DENSE != 0 {
            let slot = usize::from(b.wrapping_sub(self.kids_lo));
            if slot >= len {
                return None;
            }
            let i = start + slot;
            return entries.get(i).filter(|e| e.byte == b).map(|_| i);
        }
        let run = entries.get(start..start + len)?;
        run.iter().position(|e| e.byte == b).map(|k| start + k)
    }
}

/// The nodes with destinations along a number, shallowest first: (prefix
/// length, index of the node's entry). Inline for up to 16 (a number
/// along more prefixes than that spills to the heap); nothing is cleared
/// or copied beyond the matches found.
pub(crate) struct Matches {
    found: smallvec::SmallVec<[(u8, u32); 16]>,
}

impl Matches {
    /// (prefix length, node), deepest (longest prefix) first.
    pub fn deepest_first(&self) -> impl Iterator<Item = (usize, u32)> + '_ {
        self.found.iter().rev().map(|&(d, n)| (usize::from(d), n))
    }
}

impl Default for PrefixTrie {
    fn default() -> Self {
        PrefixTrie {
            nodes: vec![Node {
                byte: 0,
                first_child: NONE,
                next_sibling: NONE,
                dests: Vec::new(),
            }],
            prefixes: 0,
            frozen: Frozen::default(),
        }
    }
}

impl PrefixTrie {
    /// Adds `prefix` for destination `dest` (duplicates are ignored).
    pub fn insert(&mut self, prefix: &[u8], dest: u32) {
        let mut node = 0_usize;
        for &b in prefix {
            node = match self.child(node, b) {
                Some(c) => c,
                None => {
                    let idx = self.nodes.len();
                    let Ok(idx32) = u32::try_from(idx) else {
                        return;
                    };
                    let first = self.nodes[node].first_child;
                    self.nodes.push(Node {
                        byte: b,
                        first_child: NONE,
                        next_sibling: first,
                        dests: Vec::new(),
                    });
                    self.nodes[node].first_child = idx32;
                    idx
                }
            };
        }
        let dests = &mut self.nodes[node].dests;
        if !dests.contains(&dest) {
            dests.push(dest);
            self.prefixes += 1;
        }
    }

    fn child(&self, node: usize, b: u8) -> Option<usize> {
        let mut c = self.nodes[node].first_child;
        while c != NONE {
            let n = &self.nodes[c as usize];
            if n.byte == b {
                return Some(c as usize);
            }
            c = n.next_sibling;
        }
        None
    }

    /// Number of (prefix, destination) pairs.
    pub fn len(&self) -> usize {
        self.prefixes
    }

    /// Lays the trie out flat, breadth-first, for fast lookups. Called
    /// once when loading is done; later inserts need another freeze.
    pub fn freeze(&mut self) {
        let mut f = Frozen::default();
        // (node being built, where its entry is: None for the root).
        let mut queue = std::collections::VecDeque::from([(0_usize, None)]);
        while let Some((old, at)) = queue.pop_front() {
            let mut kids = Vec::new();
            let mut c = self.nodes[old].first_child;
            while c != NONE {
                kids.push((self.nodes[c as usize].byte, c as usize));
                c = self.nodes[c as usize].next_sibling;
            }
            kids.sort_unstable();
            let (lo, hi) = match (kids.first(), kids.last()) {
                (Some(&(lo, _)), Some(&(hi, _))) => (lo, hi),
                _ => (0, 0),
            };
            let span = usize::from(hi - lo) + 1;
            let dense = !kids.is_empty() && (span <= DENSE_SLOTS || span <= 2 * kids.len());
            let start = f.entries.len();
            let slots = if dense { span } else { kids.len() };
            // A free slot of a dense run holds a byte other than its own.
            f.entries.extend((0..slots).map(|k| Entry {
                byte: !lo.wrapping_add(u8::try_from(k).unwrap_or(0)),
                ..Entry::default()
            }));
            for (k, &(byte, child)) in kids.iter().enumerate() {
                let slot = start + if dense { usize::from(byte - lo) } else { k };
                let dests = &self.nodes[child].dests;
                let (dest, dest_len) = match dests.as_slice() {
                    [d] => (*d, 1),
                    _ => {
                        let s = u32::try_from(f.dests.len()).unwrap_or(NONE);
                        f.dests.extend_from_slice(dests);
                        (s, u32::try_from(dests.len()).unwrap_or(0))
                    }
                };
                f.entries[slot] = Entry {
                    byte,
                    dest,
                    dest_len,
                    ..Entry::default()
                };
                queue.push_back((child, Some(slot)));
            }
            let entry = match at {
                Some(i) => &mut f.entries[i],
                None => &mut f.root,
            };
            entry.kids = u32::try_from(start).unwrap_or(NONE);
            // At most 256 slots: fits below the dense bit.
            entry.kids_len = u16::try_from(slots).unwrap_or(0) | if dense { DENSE } else { 0 };
            entry.kids_lo = lo;
        }
        self.frozen = f;
    }

    /// Every node with destinations along `number` (on the frozen trie).
    pub fn matches(&self, number: &[u8]) -> Matches {
        let f = &self.frozen;
        let mut m = Matches {
            found: smallvec::SmallVec::new(),
        };
        let mut node = &f.root;
        for (depth, &b) in number.iter().enumerate().take(MAX_MATCH_DEPTH) {
            let Some(i) = node.child(&f.entries, b) else {
                break;
            };
            let Some(next) = f.entries.get(i) else {
                break;
            };
            node = next;
            if node.dest_len != 0 {
                // depth < 64: fits in u8.
                m.found.push((
                    u8::try_from(depth + 1).unwrap_or(u8::MAX),
                    u32::try_from(i).unwrap_or(NONE),
                ));
            }
        }
        m
    }

    /// Destinations at a node returned by [`PrefixTrie::matches`].
    pub fn dests(&self, node: u32) -> &[u32] {
        let f = &self.frozen;
        f.entries.get(node as usize).map_or(&[], |n| {
            if n.dest_len == 1 {
                return std::slice::from_ref(&n.dest);
            }
            let s = n.dest as usize;
            f.dests.get(s..s + n.dest_len as usize).unwrap_or(&[])
        })
    }
}

/// A HashMap with rustc's Fx hasher: fast for the short keys (IDs,
/// tenants, u32 indexes) hashed on every call; the keys come from the
/// operator's own files, so collision flooding is not a concern.
pub(crate) type FastMap<K, V> = rustc_hash::FxHashMap<K, V>;

#[cfg(test)]
mod tests {
    use super::*;

    fn deepest(t: &mut PrefixTrie, n: &str) -> Vec<(usize, Vec<u32>)> {
        t.freeze();
        t.matches(n.as_bytes())
            .deepest_first()
            .map(|(d, node)| (d, t.dests(node).to_vec()))
            .collect()
    }

    #[test]
    fn longest_prefix_first_and_shared_prefixes() {
        let mut t = PrefixTrie::default();
        t.insert(b"10", 0); // DST_FS
        t.insert(b"1002", 1); // DST_1002
        t.insert(b"20", 2); // DST_20
        t.insert(b"20", 3); // DST_2030
        t.insert(b"20", 3); // duplicate ignored
        t.insert(b"voicemail", 4);
        assert_eq!(t.len(), 5);
        assert_eq!(deepest(&mut t, "1002"), vec![(4, vec![1]), (2, vec![0])]);
        assert_eq!(deepest(&mut t, "10029"), vec![(4, vec![1]), (2, vec![0])]);
        assert_eq!(deepest(&mut t, "1001"), vec![(2, vec![0])]);
        assert_eq!(deepest(&mut t, "2012"), vec![(2, vec![2, 3])]);
        assert_eq!(deepest(&mut t, "voicemail"), vec![(9, vec![4])]);
        assert!(deepest(&mut t, "3").is_empty());
        assert!(deepest(&mut t, "").is_empty());
    }

    #[test]
    fn very_long_numbers_do_not_overflow_the_match_stack() {
        let mut t = PrefixTrie::default();
        let long = "1".repeat(100);
        for i in 1..=100 {
            t.insert(&long.as_bytes()[..i], 0);
        }
        t.freeze();
        let m = t.matches(long.as_bytes());
        assert_eq!(m.deepest_first().next().map(|x| x.0), Some(64));
    }

    proptest::proptest! {
        /// Dense runs (digits, with gaps), sparse runs (bytes far apart)
        /// and nodes with several destinations all find what a plain scan
        /// of the inserted prefixes finds.
        #[test]
        fn lookups_agree_with_a_scan_of_the_prefixes(
            prefixes in proptest::collection::vec(
                (proptest::collection::vec(proptest::sample::select(
                    vec![b'0', b'1', b'3', b'9', b'+', b'a', b'z', 0xC3, 0xFF, 0]), 0..6), 0u32..5),
                0..60),
            numbers in proptest::collection::vec(proptest::collection::vec(
                proptest::sample::select(vec![b'0', b'1', b'2', b'3', b'9', b'+', b'a', b'z', 0xC3, 0xFF, 0]), 0..8), 1..20),
        ) {
            let mut t = PrefixTrie::default();
            for (p, d) in &prefixes {
                t.insert(p, *d);
            }
            t.freeze();
            for n in &numbers {
                let mut want: Vec<(usize, Vec<u32>)> = Vec::new();
                for len in (1..=n.len()).rev() {
                    let mut ds: Vec<u32> = Vec::new();
                    for (p, d) in &prefixes {
                        if p.as_slice() == &n[..len] && !ds.contains(d) {
                            ds.push(*d);
                        }
                    }
                    if !ds.is_empty() {
                        want.push((len, ds));
                    }
                }
                let got: Vec<(usize, Vec<u32>)> = t
                    .matches(n)
                    .deepest_first()
                    .map(|(d, node)| (d, t.dests(node).to_vec()))
                    .collect();
                proptest::prop_assert_eq!(got, want);
            }
        }
    }

    #[test]
    fn fast_map_works_for_strings_and_ints() {
        let mut m: FastMap<u32, &str> = FastMap::default();
        m.insert(7, "x");
        assert_eq!(m.get(&7), Some(&"x"));
        let mut s: FastMap<Box<str>, u32> = FastMap::default();
        s.insert("cgrates.org".into(), 1);
        assert_eq!(s.get("cgrates.org"), Some(&1));
    }
}
