//! Which encoding Redis 7.2 would give a list, and its quicklist's node layout: small lists are
//! one listpack (OBJECT ENCODING "listpack"), bigger ones a quicklist of listpack nodes
//! (`list-max-listpack-size`: a count per node when positive, a byte size class when
//! negative), and a quicklist goes back to a listpack when it is down to one node of half
//! the limit (t_list.c's listTypeTryConversion*).
//!
//! Ferrous keeps a list's elements in a ring (see `list.rs`); this module only keeps the
//! bookkeeping Redis's choices depend on: the listpack's byte size, or each quicklist node's
//! element count and listpack bytes, updated by the same rules quicklist.c follows when it
//! pushes, inserts (splitting and merging nodes), replaces and deletes. Element sizes are
//! exact listpack entry sizes, so the node layout — which RDB files and DUMP payloads show —
//! is Redis's.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicI64, Ordering};

/// Listpack header (total bytes, element count) and terminator.
pub const LP_OVERHEAD: usize = 7;

/// quicklist.c's SIZE_ESTIMATE_OVERHEAD: the bytes an insert is assumed to add beyond the
/// element's length.
const SIZE_ESTIMATE_OVERHEAD: usize = 8;
/// A node holding a count (positive fill) never grows past this many bytes.
const SIZE_SAFETY_LIMIT: usize = 8192;
/// Byte limits of the negative fills -1 .. -5.
const OPTIMIZATION_LEVEL: [usize; 5] = [4096, 8192, 16384, 32768, 65536];
/// Elements this large get a node of their own ("plain" nodes).
const PACKED_THRESHOLD: usize = 1 << 30;

/// `list-max-listpack-size`, as Redis's server.list_max_listpack_size: read when a list
/// converts; a quicklist keeps the fill it was created with.
static MAX_LISTPACK_SIZE: AtomicI64 = AtomicI64::new(-2);

/// Set `list-max-listpack-size` (the configuration calls this on every change).
pub fn set_max_listpack_size(fill: i64) {
    MAX_LISTPACK_SIZE.store(fill, Ordering::Relaxed);
}

/// `list-compress-depth`, as Redis's server.list_compress_depth: a new quicklist takes it.
/// Ferrous compresses no nodes; DEBUG OBJECT shows whether Redis's would be (ql_compressed).
static COMPRESS_DEPTH: AtomicI64 = AtomicI64::new(0);

/// Set `list-compress-depth` (the configuration calls this on every change).
pub fn set_compress_depth(depth: i64) {
    COMPRESS_DEPTH.store(depth, Ordering::Relaxed);
}

fn server_fill() -> i64 {
    MAX_LISTPACK_SIZE.load(Ordering::Relaxed)
}

/// A new quicklist's fill and compression as quicklistNew gives them: the configured values,
/// the fill held within what its 16-bit field holds (quicklistSetFill: -5 ..= 32767; the node
/// limits it selects are the same as the unclamped value's).
fn new_quicklist(fill: i64, compressed: bool) -> Shape {
    Shape::Quicklist { fill: fill.clamp(-5, (1 << 15) - 1), compressed, nodes: VecDeque::new() }
}

fn configured_quicklist() -> Shape {
    new_quicklist(server_fill(), COMPRESS_DEPTH.load(Ordering::Relaxed) != 0)
}

fn backlen_size(l: usize) -> usize {
    match l {
        0..=127 => 1,
        128..=16382 => 2,
        16383..=2097150 => 3,
        2097151..=268435454 => 4,
        _ => 5,
    }
}

/// The bytes `s` takes as a listpack entry: encoding, payload and back length (canonical
/// integers of up to 20 characters are stored as integers, as lpAppend does).
pub fn entry_size(s: &[u8]) -> usize {
    let int = if s.len() <= 20 { crate::util::num::parse_i64(s) } else { None };
    let len = match int {
        Some(v) if (0..=127).contains(&v) => 1,
        Some(v) if (-4096..4096).contains(&v) => 2,
        Some(v) if i16::try_from(v).is_ok() => 3,
        Some(v) if (-(1 << 23)..(1 << 23)).contains(&v) => 4,
        Some(v) if i32::try_from(v).is_ok() => 5,
        Some(_) => 9,
        None if s.len() < 64 => 1 + s.len(),
        None if s.len() < 4096 => 2 + s.len(),
        None => 5 + s.len(),
    };
    len + backlen_size(len)
}

/// quicklistNodeLimit: (byte limit, count limit) of a fill; `usize::MAX` / `u32::MAX` for none.
fn node_limit(fill: i64) -> (usize, usize) {
    if fill >= 0 {
        (usize::MAX, if fill == 0 { 1 } else { fill.min(u32::MAX as i64) as usize })
    } else {
        let level = ((-fill - 1) as usize).min(OPTIMIZATION_LEVEL.len() - 1);
        (OPTIMIZATION_LEVEL[level], u32::MAX as usize)
    }
}

/// quicklistNodeExceedsLimit.
fn exceeds(fill: i64, bytes: usize, count: usize) -> bool {
    let (sz_limit, count_limit) = node_limit(fill);
    if sz_limit != usize::MAX {
        bytes > sz_limit
    } else {
        bytes > SIZE_SAFETY_LIMIT || count > count_limit
    }
}

/// One quicklist node: how many elements, and its listpack's bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Node {
    pub count: usize,
    pub bytes: usize,
}

impl Node {
    fn with(es: usize) -> Node {
        Node { count: 1, bytes: LP_OVERHEAD + es }
    }

    /// _quicklistNodeAllowInsert for an element of `len` bytes.
    fn allows_insert(&self, fill: i64, len: usize) -> bool {
        len < PACKED_THRESHOLD && !exceeds(fill, self.bytes + len + SIZE_ESTIMATE_OVERHEAD, self.count + 1)
    }
}

/// _quicklistNodeAllowMerge.
fn allows_merge(a: &Node, b: &Node, fill: i64) -> bool {
    !exceeds(fill, (a.bytes + b.bytes - LP_OVERHEAD) & 0xffff_ffff, a.count + b.count)
}

/// A list's encoding and what its conversions depend on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Shape {
    /// One listpack of this many bytes.
    Listpack { bytes: usize },
    /// A quicklist of `fill` and compression (fixed when it was created) and its nodes,
    /// head first.
    Quicklist { fill: i64, compressed: bool, nodes: VecDeque<Node> },
}

impl Default for Shape {
    fn default() -> Self {
        Shape::Listpack { bytes: LP_OVERHEAD }
    }
}

impl Shape {
    /// An empty quicklist as quicklistCreate makes it (fill -2), for lists built whole and
    /// converted afterwards (SORT ... STORE).
    pub fn quicklist_default() -> Shape {
        new_quicklist(-2, false)
    }

    /// An empty quicklist with the current `list-max-listpack-size` (RDB loading).
    pub fn quicklist_configured() -> Shape {
        configured_quicklist()
    }

    pub fn encoding(&self) -> &'static str {
        match self {
            Shape::Listpack { .. } => "listpack",
            Shape::Quicklist { .. } => "quicklist",
        }
    }

    /// The quicklist nodes (None for a listpack).
    pub fn nodes(&self) -> Option<&VecDeque<Node>> {
        match self {
            Shape::Listpack { .. } => None,
            Shape::Quicklist { nodes, .. } => Some(nodes),
        }
    }

    /// Append a node of `count` elements taking `bytes` (a node read from an RDB file).
    pub fn append_node(&mut self, count: usize, bytes: usize) {
        if let Shape::Quicklist { nodes, .. } = self {
            nodes.push_back(Node { count, bytes });
        }
    }

    /// Before adding `add_count` elements of `add_bytes` bytes in all to a list of `len`
    /// elements: a listpack that would exceed `list-max-listpack-size` becomes a quicklist
    /// whose one node is the listpack (listTypeTryConvertListpack).
    pub fn before_growing(&mut self, len: usize, add_bytes: usize, add_count: usize) {
        if let Shape::Listpack { bytes } = *self {
            let fill = server_fill();
            if exceeds(fill, bytes + add_bytes, len + add_count) {
                *self = configured_quicklist();
                if len > 0 {
                    self.append_node(len, bytes);
                }
            }
        }
    }

    /// After removing elements (`shrinking`), or after building a list whole: a quicklist of
    /// one node within the limit (half of it when shrinking) becomes that node's listpack;
    /// without `shrinking` a listpack over the limit becomes a quicklist
    /// (listTypeTryConversion, LIST_CONV_SHRINKING / LIST_CONV_AUTO).
    pub fn after_change(&mut self, len: usize, shrinking: bool) {
        match self {
            Shape::Quicklist { nodes, .. } => {
                if nodes.len() != 1 {
                    return;
                }
                let (mut sz_limit, mut count_limit) = node_limit(server_fill());
                if shrinking {
                    sz_limit /= 2;
                    count_limit /= 2;
                }
                let node = nodes[0];
                if node.bytes > sz_limit || len > count_limit {
                    return;
                }
                *self = Shape::Listpack { bytes: node.bytes };
            }
            Shape::Listpack { .. } if !shrinking => self.before_growing(len, 0, 0),
            Shape::Listpack { .. } => {}
        }
    }

    /// An element of listpack entry size `es` (and raw length `len`) pushed at one end.
    pub fn push(&mut self, front: bool, len: usize, es: usize) {
        match self {
            Shape::Listpack { bytes } => *bytes += es,
            Shape::Quicklist { fill, nodes, .. } => {
                let end = if front { nodes.front_mut() } else { nodes.back_mut() };
                match end {
                    Some(n) if n.allows_insert(*fill, len) => {
                        n.count += 1;
                        n.bytes += es;
                    }
                    _ if front => nodes.push_front(Node::with(es)),
                    _ => nodes.push_back(Node::with(es)),
                }
            }
        }
    }

    /// The node holding element `index` and the index's offset inside it.
    fn locate(nodes: &VecDeque<Node>, mut index: usize) -> (usize, usize) {
        for (i, n) in nodes.iter().enumerate() {
            if index < n.count {
                return (i, index);
            }
            index -= n.count;
        }
        (nodes.len().saturating_sub(1), 0)
    }

    /// The head (`front`) or tail element (of entry size `es`) was popped: O(1).
    pub fn pop_end(&mut self, front: bool, es: usize) {
        match self {
            Shape::Listpack { bytes } => *bytes -= es,
            Shape::Quicklist { nodes, .. } => {
                let n = if front { nodes.front_mut() } else { nodes.back_mut() };
                let Some(n) = n else { return };
                n.count -= 1;
                n.bytes -= es;
                if n.count == 0 {
                    if front {
                        nodes.pop_front();
                    } else {
                        nodes.pop_back();
                    }
                }
            }
        }
    }

    /// The element at `index` (of entry size `es`) was deleted; an emptied node goes.
    pub fn remove_at(&mut self, index: usize, es: usize) {
        match self {
            Shape::Listpack { bytes } => *bytes -= es,
            Shape::Quicklist { nodes, .. } => {
                if nodes.is_empty() {
                    return;
                }
                let (i, _) = Self::locate(nodes, index);
                nodes[i].count -= 1;
                nodes[i].bytes -= es;
                if nodes[i].count == 0 {
                    nodes.remove(i);
                }
            }
        }
    }

    /// The element at `index` changed from entry size `old` to `new` (lpReplace).
    pub fn replace(&mut self, index: usize, old: usize, new: usize) {
        match self {
            Shape::Listpack { bytes } => *bytes = *bytes + new - old,
            Shape::Quicklist { nodes, .. } => {
                if nodes.is_empty() {
                    return;
                }
                let (i, _) = Self::locate(nodes, index);
                nodes[i].bytes = nodes[i].bytes + new - old;
            }
        }
    }

    /// An element of raw length `len` and entry size `es` inserted before (or `after`) the
    /// element at `pivot`; `sizes(from, to)` is the sum of the entry sizes of the elements at
    /// indexes `from..to` before the insertion (_quicklistInsert: into the pivot's node when it
    /// has room, else the neighbour's end, else a new node, else the node is split and its
    /// neighbours merged).
    pub fn insert(&mut self, pivot: usize, after: bool, len: usize, es: usize, sizes: impl Fn(usize, usize) -> usize) {
        let (fill, nodes) = match self {
            Shape::Listpack { bytes } => {
                *bytes += es;
                return;
            }
            Shape::Quicklist { fill, nodes, .. } => (*fill, nodes),
        };
        let (ni, offset) = Self::locate(nodes, pivot);
        let node = nodes[ni];
        let full = !node.allows_insert(fill, len);
        let at_tail = after && offset == node.count - 1;
        let at_head = !after && offset == 0;
        let avail_next = at_tail && nodes.get(ni + 1).is_some_and(|n| n.allows_insert(fill, len));
        let avail_prev = at_head && ni > 0 && nodes[ni - 1].allows_insert(fill, len);
        if !full {
            nodes[ni].count += 1;
            nodes[ni].bytes += es;
        } else if at_tail && avail_next {
            nodes[ni + 1].count += 1;
            nodes[ni + 1].bytes += es;
        } else if at_head && avail_prev {
            nodes[ni - 1].count += 1;
            nodes[ni - 1].bytes += es;
        } else if at_tail || at_head {
            nodes.insert(if after { ni + 1 } else { ni }, Node::with(es));
        } else {
            // Split: with `after` the node keeps [0, offset] and the new node takes the rest
            // with the element in front; else the new node takes [0, offset) with the
            // element at its end, and the node keeps [offset, end).
            let start: usize = nodes.iter().take(ni).map(|n| n.count).sum();
            let sum = |from: usize, to: usize| sizes(start + from, start + to);
            let (keep, moved) =
                if after { ((0, offset + 1), (offset + 1, node.count)) } else { ((offset, node.count), (0, offset)) };
            nodes[ni] = Node { count: keep.1 - keep.0, bytes: LP_OVERHEAD + sum(keep.0, keep.1) };
            let new_node = Node { count: moved.1 - moved.0 + 1, bytes: LP_OVERHEAD + sum(moved.0, moved.1) + es };
            let center = if after {
                nodes.insert(ni + 1, new_node);
                ni
            } else {
                nodes.insert(ni, new_node);
                ni + 1
            };
            Self::merge_around(nodes, center, fill);
        }
    }

    /// _quicklistMergeNodes: merge (prev-prev, prev), (next, next-next), (prev, center), then
    /// (that, next), each when the merged node stays within the limits.
    fn merge_around(nodes: &mut VecDeque<Node>, mut center: usize, fill: i64) {
        let merge = |nodes: &mut VecDeque<Node>, a: usize| {
            let b = nodes.remove(a + 1).expect("merge partner");
            nodes[a] = Node { count: nodes[a].count + b.count, bytes: nodes[a].bytes + b.bytes - LP_OVERHEAD };
        };
        if center >= 2 && allows_merge(&nodes[center - 1], &nodes[center - 2], fill) {
            merge(nodes, center - 2);
            center -= 1;
        }
        if center + 2 < nodes.len() && allows_merge(&nodes[center + 1], &nodes[center + 2], fill) {
            merge(nodes, center + 1);
        }
        let target = if center >= 1 && allows_merge(&nodes[center], &nodes[center - 1], fill) {
            merge(nodes, center - 1);
            center - 1
        } else {
            center
        };
        if target + 1 < nodes.len() && allows_merge(&nodes[target], &nodes[target + 1], fill) {
            merge(nodes, target);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_sizes_are_listpack_sizes() {
        let lp = |items: &[&[u8]]| {
            let mut b = crate::persistence::listpack::Builder::new();
            items.iter().for_each(|i| b.push(i));
            b.finish().len()
        };
        let long = vec![b'x'; 5000];
        let mid = vec![b'y'; 300];
        for item in [&b"0"[..], b"127", b"128", b"-4096", b"32767", b"8388607", b"2147483647", b"-9223372036854775808"]
            .into_iter()
            .chain([&b""[..], b"hello", b"007", &mid, &long])
        {
            assert_eq!(LP_OVERHEAD + entry_size(item), lp(&[item]), "{}", String::from_utf8_lossy(item));
        }
    }

    #[test]
    fn limits() {
        assert!(exceeds(-2, 8193, 1) && !exceeds(-2, 8192, 1_000_000));
        assert!(exceeds(4, 100, 5) && !exceeds(4, 100, 4) && exceeds(4, 8193, 1));
        assert!(exceeds(0, 10, 2) && !exceeds(0, 10, 1));
        assert_eq!(node_limit(-9).0, 65536);
    }
}
