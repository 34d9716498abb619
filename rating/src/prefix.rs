//! Destination prefixes: a byte trie for longest-prefix lookups, and a
//! small fast hasher for the maps on the rating path.
//!
//! A lookup walks the dialled number once, byte by byte, and remembers
//! every node where some destination has a prefix; the rating plan then
//! picks the deepest of those it prices. With 100,000 prefixes a lookup is
//! a dozen child scans.

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

/// The read-only form of the trie: one small record per node and the
/// children of each node side by side, so a lookup step costs about two
/// cache lines.
#[derive(Debug, Clone, Default)]
struct Frozen {
    nodes: Vec<FrozenNode>,
    children: Vec<Child>,
    dests: Vec<u32>,
}

#[derive(Debug, Clone, Copy)]
struct FrozenNode {
    child_start: u32,
    dest_start: u32,
    child_count: u32,
    dest_len: u32,
}

#[derive(Debug, Clone, Copy)]
struct Child {
    byte: u8,
    node: u32,
}

/// The nodes with destinations along a number, shallowest first.
pub(crate) struct Matches {
    /// Prefix lengths.
    depths: [u8; MAX_MATCH_DEPTH],
    /// Frozen node indexes.
    nodes: [u32; MAX_MATCH_DEPTH],
    len: usize,
}

impl Matches {
    /// (prefix length, node), deepest (longest prefix) first.
    pub fn deepest_first(&self) -> impl Iterator<Item = (usize, u32)> + '_ {
        self.depths[..self.len]
            .iter()
            .zip(&self.nodes[..self.len])
            .rev()
            .map(|(&d, &n)| (usize::from(d), n))
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
        // Breadth-first order: old index -> new index.
        let mut order = vec![0_usize];
        let mut new_index = vec![NONE; self.nodes.len()];
        new_index[0] = 0;
        let mut head = 0;
        while head < order.len() {
            let old = order[head];
            head += 1;
            let mut kids = Vec::new();
            let mut c = self.nodes[old].first_child;
            while c != NONE {
                kids.push(c as usize);
                c = self.nodes[c as usize].next_sibling;
            }
            kids.sort_by_key(|&k| self.nodes[k].byte);
            for k in kids {
                new_index[k] = u32::try_from(order.len()).unwrap_or(NONE);
                order.push(k);
            }
        }
        for &old in &order {
            let node = &self.nodes[old];
            let mut kids = Vec::new();
            let mut c = node.first_child;
            while c != NONE {
                kids.push((self.nodes[c as usize].byte, new_index[c as usize]));
                c = self.nodes[c as usize].next_sibling;
            }
            kids.sort_unstable();
            f.nodes.push(FrozenNode {
                child_start: u32::try_from(f.children.len()).unwrap_or(NONE),
                dest_start: u32::try_from(f.dests.len()).unwrap_or(NONE),
                child_count: u32::try_from(kids.len()).unwrap_or(0),
                dest_len: u32::try_from(node.dests.len()).unwrap_or(0),
            });
            f.children
                .extend(kids.into_iter().map(|(byte, node)| Child { byte, node }));
            f.dests.extend_from_slice(&node.dests);
        }
        self.frozen = f;
    }

    /// Every node with destinations along `number` (on the frozen trie).
    pub fn matches(&self, number: &[u8]) -> Matches {
        let f = &self.frozen;
        let mut m = Matches {
            depths: [0; MAX_MATCH_DEPTH],
            nodes: [0; MAX_MATCH_DEPTH],
            len: 0,
        };
        let Some(mut node) = f.nodes.first() else {
            return m;
        };
        for (depth, &b) in number.iter().enumerate().take(MAX_MATCH_DEPTH) {
            let start = node.child_start as usize;
            let kids = f
                .children
                .get(start..start + node.child_count as usize)
                .unwrap_or(&[]);
            let Some(child) = kids.iter().find(|c| c.byte == b) else {
                break;
            };
            let Some(next) = f.nodes.get(child.node as usize) else {
                break;
            };
            node = next;
            if node.dest_len != 0 {
                // depth < 64: fits in u8.
                m.depths[m.len] = u8::try_from(depth + 1).unwrap_or(u8::MAX);
                m.nodes[m.len] = child.node;
                m.len += 1;
            }
        }
        m
    }

    /// Destinations at a node returned by [`PrefixTrie::matches`].
    pub fn dests(&self, node: u32) -> &[u32] {
        let f = &self.frozen;
        f.nodes.get(node as usize).map_or(&[], |n| {
            let s = n.dest_start as usize;
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
