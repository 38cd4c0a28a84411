//! A stream's nodes by master ID, in order (the part of Redis's radix tree that holds the
//! listpacks). A stream of a few nodes keeps them in a sorted vector; past `SMALL_MAX` they move
//! to a B-tree, whose O(log n) edits keep a long stream's deletes cheap. (A B-tree's first leaf
//! takes about 500 bytes for one node: that was most of what a one-entry stream cost above
//! Redis's, and small streams, one per user or device, are many.)

use std::collections::{btree_map, BTreeMap};
use std::ops::Bound::{Excluded, Included, Unbounded};

use super::id::StreamId;

/// Up to this many nodes, a sorted vector.
const SMALL_MAX: usize = 8;

#[derive(Clone, Debug)]
pub enum NodeMap {
    Small(Vec<(StreamId, Vec<u8>)>),
    Large(BTreeMap<StreamId, Vec<u8>>),
}

impl Default for NodeMap {
    fn default() -> Self {
        NodeMap::Small(Vec::new())
    }
}

impl PartialEq for NodeMap {
    /// The same nodes, whatever the form.
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl Eq for NodeMap {}

/// The nodes in order, either way.
pub enum Iter<'a> {
    Small(std::slice::Iter<'a, (StreamId, Vec<u8>)>),
    Large(btree_map::Iter<'a, StreamId, Vec<u8>>),
}

impl<'a> Iterator for Iter<'a> {
    type Item = (&'a StreamId, &'a Vec<u8>);

    fn next(&mut self) -> Option<Self::Item> {
        match self {
            Iter::Small(i) => i.next().map(|(k, v)| (k, v)),
            Iter::Large(i) => i.next(),
        }
    }
}

impl DoubleEndedIterator for Iter<'_> {
    fn next_back(&mut self) -> Option<Self::Item> {
        match self {
            Iter::Small(i) => i.next_back().map(|(k, v)| (k, v)),
            Iter::Large(i) => i.next_back(),
        }
    }
}

type Node<'a> = (&'a StreamId, &'a Vec<u8>);

impl NodeMap {
    pub fn len(&self) -> usize {
        match self {
            NodeMap::Small(v) => v.len(),
            NodeMap::Large(m) => m.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn iter(&self) -> Iter<'_> {
        match self {
            NodeMap::Small(v) => Iter::Small(v.iter()),
            NodeMap::Large(m) => Iter::Large(m.iter()),
        }
    }

    /// The last node, to append to.
    pub fn last_mut(&mut self) -> Option<(&StreamId, &mut Vec<u8>)> {
        match self {
            NodeMap::Small(v) => v.last_mut().map(|(k, lp)| (&*k, lp)),
            NodeMap::Large(m) => m.iter_mut().next_back(),
        }
    }

    /// Where `id` is or would go in the small form.
    fn small_pos(v: &[(StreamId, Vec<u8>)], id: StreamId) -> Result<usize, usize> {
        v.binary_search_by(|(k, _)| k.cmp(&id))
    }

    pub fn contains_key(&self, id: StreamId) -> bool {
        match self {
            NodeMap::Small(v) => Self::small_pos(v, id).is_ok(),
            NodeMap::Large(m) => m.contains_key(&id),
        }
    }

    /// Add a node under a master ID not yet present.
    pub fn insert(&mut self, id: StreamId, lp: Vec<u8>) {
        match self {
            NodeMap::Small(v) if v.len() < SMALL_MAX => {
                let (Ok(at) | Err(at)) = Self::small_pos(v, id);
                if v.capacity() == 0 {
                    // A stream's first node: room for it alone (most streams keep one).
                    v.reserve_exact(1);
                }
                v.insert(at, (id, lp));
            }
            NodeMap::Small(v) => {
                let mut m: BTreeMap<_, _> = std::mem::take(v).into_iter().collect();
                m.insert(id, lp);
                *self = NodeMap::Large(m);
            }
            NodeMap::Large(m) => {
                m.insert(id, lp);
            }
        }
    }

    pub fn get_mut(&mut self, id: StreamId) -> Option<&mut Vec<u8>> {
        match self {
            NodeMap::Small(v) => Self::small_pos(v, id).ok().map(|i| &mut v[i].1),
            NodeMap::Large(m) => m.get_mut(&id),
        }
    }

    pub fn remove(&mut self, id: StreamId) {
        match self {
            NodeMap::Small(v) => {
                if let Ok(i) = Self::small_pos(v, id) {
                    v.remove(i);
                }
            }
            NodeMap::Large(m) => {
                m.remove(&id);
                if m.len() <= SMALL_MAX / 2 {
                    *self = NodeMap::Small(std::mem::take(m).into_iter().collect());
                }
            }
        }
    }

    /// The node with the greatest master ID `<= id` (or `< id` when not `inclusive`).
    pub fn floor(&self, id: StreamId, inclusive: bool) -> Option<Node<'_>> {
        match self {
            NodeMap::Small(v) => {
                let end = match Self::small_pos(v, id) {
                    Ok(i) if inclusive => i + 1,
                    Ok(i) | Err(i) => i,
                };
                end.checked_sub(1).map(|i| (&v[i].0, &v[i].1))
            }
            NodeMap::Large(m) => {
                let upper = if inclusive { Included(id) } else { Excluded(id) };
                m.range((Unbounded, upper)).next_back()
            }
        }
    }

    /// The node with the least master ID `>= id` (or `> id` when not `inclusive`).
    pub fn ceil(&self, id: StreamId, inclusive: bool) -> Option<Node<'_>> {
        match self {
            NodeMap::Small(v) => {
                let start = match Self::small_pos(v, id) {
                    Ok(i) if !inclusive => i + 1,
                    Ok(i) | Err(i) => i,
                };
                v.get(start).map(|(k, lp)| (k, lp))
            }
            NodeMap::Large(m) => {
                let lower = if inclusive { Included(id) } else { Excluded(id) };
                m.range((lower, Unbounded)).next()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn answers_as_a_btree_map(ops in proptest::collection::vec((0u8..3, 0u64..40), 1..200), probe in 0u64..42) {
            let mut map = NodeMap::default();
            let mut model = BTreeMap::new();
            for (op, ms) in ops {
                let id = StreamId::new(ms, 0);
                match op {
                    0 | 1 if !model.contains_key(&id) => {
                        map.insert(id, vec![ms as u8]);
                        model.insert(id, vec![ms as u8]);
                    }
                    0 | 1 => {
                        map.get_mut(id).expect("present").push(1);
                        model.get_mut(&id).expect("present").push(1);
                    }
                    _ => {
                        map.remove(id);
                        model.remove(&id);
                    }
                }
                prop_assert_eq!(map.len(), model.len());
                prop_assert_eq!(map.contains_key(id), model.contains_key(&id));
            }
            prop_assert!(map.iter().eq(model.iter()));
            prop_assert!(map.iter().rev().eq(model.iter().rev()));
            let p = StreamId::new(probe, 0);
            prop_assert_eq!(map.floor(p, true), model.range(..=p).next_back());
            prop_assert_eq!(map.floor(p, false), model.range(..p).next_back());
            prop_assert_eq!(map.ceil(p, true), model.range(p..).next());
            prop_assert_eq!(map.ceil(p, false), model.range((Excluded(p), Unbounded)).next());
            prop_assert_eq!(map.last_mut().map(|(k, v)| (*k, v.clone())), model.iter().next_back().map(|(k, v)| (*k, v.clone())));
        }
    }

    #[test]
    fn one_node_takes_one_slot() {
        let mut map = NodeMap::default();
        map.insert(StreamId::new(1, 0), vec![1]);
        let NodeMap::Small(v) = &map else { panic!("one node is small") };
        assert_eq!(v.capacity(), 1);
        for ms in 2..=SMALL_MAX as u64 + 1 {
            map.insert(StreamId::new(ms, 0), vec![]);
        }
        assert!(matches!(map, NodeMap::Large(_)));
        for ms in 1..=6 {
            map.remove(StreamId::new(ms, 0));
        }
        assert!(matches!(map, NodeMap::Small(_)));
        assert_eq!(map.len(), SMALL_MAX + 1 - 6);
    }
}
