//! A list of byte strings (Redis lists): the representation and its operations.
//!
//! # Representation
//!
//! As Redis's encodings: a list Redis would keep as one listpack is a [`ThinList`]
//! (`list_thin.rs`), one block holding its entries; a longer one (a quicklist in Redis) is a
//! deque of packed nodes ([`PackedList`], `list_packed.rs`) behind a box, with [`Shape`]'s
//! record of the quicklist nodes Redis would hold. An element costs its bytes plus two (up to
//! 127 bytes) in either. Pushing and popping at both ends is O(1) amortised in a quicklist (the
//! LPUSH/RPOP queues, the hot path), O(listpack) in a listpack, as in Redis; an index is found
//! by walking node counts, then entries, from the nearer end, as Redis walks its quicklist.
//!
//! OBJECT ENCODING reports the form: "listpack" until `list-max-listpack-size` is passed,
//! "quicklist" past it, back to "listpack" when a one-node quicklist shrinks to half the
//! limit, exactly as Redis converts ([`Shape`] decides, and keeps the quicklist's node layout
//! that RDB files and DEBUG show).

use super::list_packed::{self, PackedList};
use super::list_shape::{entry_size, Shape, LP_OVERHEAD};
use super::list_thin::{self, ThinList};
use super::SmallBytes;

/// A list in packed nodes: its elements and the encoding Redis would give them.
#[derive(Clone, Debug)]
struct NodeList {
    items: PackedList,
    shape: Shape,
}

/// Listpack bytes up to which a listpack-encoded list is a [`ThinList`]: past them the edits
/// at its head, which move the whole block, would cost more than the nodes' bookkeeping saves
/// (a list of 600 ids, pushed at the head, ran a third slower in one block). A list in nodes
/// comes back at half of it.
const THIN_MAX: usize = 2048;

/// The listpack bytes of a list in nodes whose shape has become one listpack small enough to
/// go back into one block (at half of [`THIN_MAX`]); None while it stays in nodes.
fn thin_from_nodes(shape: &Shape) -> Option<usize> {
    match *shape {
        Shape::Listpack { bytes } if bytes <= THIN_MAX / 2 => Some(bytes),
        _ => None,
    }
}

/// The bytes of Redis's listpack of a quicklist node's elements.
fn node_bytes(node: &[Vec<u8>]) -> usize {
    LP_OVERHEAD + node.iter().map(|e| entry_size(e)).sum::<usize>()
}

/// Whether a list loaded as one node of `count` elements, `node_bytes` in Redis's listpack, is
/// kept as one listpack: its listpack's bytes if so (`thin_from_nodes` is the decision
/// `reshape` takes at the end of `from_node_list`).
fn one_node_thin(count: usize, node_bytes: usize) -> Option<usize> {
    let mut shape = Shape::quicklist_configured();
    shape.append_node(count, node_bytes);
    shape.after_change(count, false);
    thin_from_nodes(&shape).filter(|_| count > 0)
}

/// What [`ListValue::from_walked_node`] needs to know of a node's elements, counted one by one.
pub struct NodeSize {
    count: usize,
    /// Redis's listpack of them ([`node_bytes`]).
    lp_bytes: usize,
    /// Their entries in a `ThinList`.
    entries: usize,
}

impl Default for NodeSize {
    fn default() -> Self {
        NodeSize { count: 0, lp_bytes: LP_OVERHEAD, entries: 0 }
    }
}

impl NodeSize {
    pub fn add(&mut self, s: &[u8]) {
        self.count += 1;
        self.lp_bytes += entry_size(s);
        self.entries += super::list_packed::entry_len(s.len());
    }
}

#[derive(Clone, Debug)]
enum Repr {
    /// A small listpack-encoded list (most lists are small): one block.
    Thin(ThinList),
    /// Any other list; boxed so that a list stays 16 bytes in the keyspace entry.
    Nodes(Box<NodeList>),
}

#[derive(Clone, Debug)]
pub struct ListValue {
    repr: Repr,
}

impl Default for ListValue {
    fn default() -> Self {
        ListValue { repr: Repr::Thin(ThinList::new(LP_OVERHEAD)) }
    }
}

impl PartialEq for ListValue {
    /// Same elements in the same order (the encoding is compared separately where it matters).
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

/// Normalise Redis-style inclusive `[start, end]` indexes (negative ones count from the end)
/// against a length: the first index and the number of elements, or `None` when empty.
pub fn normalize_range(start: i64, end: i64, len: usize) -> Option<(usize, usize)> {
    let llen = len as i64;
    let mut start = if start < 0 { llen.saturating_add(start) } else { start };
    let mut end = if end < 0 { llen.saturating_add(end) } else { end };
    if start < 0 {
        start = 0;
    }
    if start > end || start >= llen {
        return None;
    }
    if end >= llen {
        end = llen - 1;
    }
    Some((start as usize, (end - start + 1) as usize))
}

impl ListValue {
    pub fn new() -> Self {
        Self::default()
    }

    /// A list built whole and converted afterwards, as Redis builds SORT ... STORE's result
    /// (a quicklist with the default fill, then LIST_CONV_AUTO).
    pub fn built<T: AsRef<[u8]>>(items: impl IntoIterator<Item = T>) -> Self {
        Self::build(Shape::quicklist_default(), items)
    }

    /// A list loaded element by element from an RDB file (a quicklist with the configured
    /// fill, then LIST_CONV_AUTO).
    pub fn loaded<T: AsRef<[u8]>>(items: impl IntoIterator<Item = T>) -> Self {
        Self::build(Shape::quicklist_configured(), items)
    }

    fn quicklist(shape: Shape) -> Self {
        ListValue { repr: Repr::Nodes(Box::new(NodeList { items: PackedList::default(), shape })) }
    }

    fn build<T: AsRef<[u8]>>(shape: Shape, items: impl IntoIterator<Item = T>) -> Self {
        let mut l = Self::quicklist(shape);
        for e in items {
            l.push_raw(e.as_ref(), false);
        }
        let len = l.len();
        l.reshape(|s| s.after_change(len, false));
        l
    }

    /// A list loaded from an RDB quicklist, node by node (each node as in the file), then
    /// converted as Redis's loader does (LIST_CONV_AUTO).
    pub fn from_nodes(nodes: Vec<Vec<Vec<u8>>>) -> Self {
        // One node that the list keeps as one listpack (most loaded lists): its block is built
        // from the elements at once, not from a quicklist built first (`thin_from_nodes` is the
        // decision `reshape` takes at the end of `from_node_list`).
        if let [node] = &nodes[..] {
            if let Some(bytes) = one_node_thin(node.len(), node_bytes(node)) {
                return ListValue { repr: Repr::Thin(ThinList::collect(bytes, node.iter().map(Vec::as_slice))) };
            }
        }
        Self::from_node_list(nodes)
    }

    /// [`ListValue::from_nodes`]' shortcut for a one-node list whose node the caller walks
    /// itself (an RDB loader, without decoding it into vectors): the list of the elements
    /// `fill` pushes, the ones `size` counted; None when the list would not be kept as one
    /// listpack (build it with `from_nodes`).
    pub fn from_walked_node(size: &NodeSize, fill: impl FnOnce(&mut dyn FnMut(&[u8]))) -> Option<Self> {
        let bytes = one_node_thin(size.count, size.lp_bytes)?;
        Some(ListValue { repr: Repr::Thin(ThinList::build(bytes, size.count, size.entries, fill)) })
    }

    /// [`ListValue::from_nodes`] built as a quicklist first, whatever its size.
    fn from_node_list(nodes: Vec<Vec<Vec<u8>>>) -> Self {
        let mut l = Self::quicklist(Shape::quicklist_configured());
        if let Repr::Nodes(q) = &mut l.repr {
            for node in nodes.iter().filter(|n| !n.is_empty()) {
                q.shape.append_node(node.len(), node_bytes(node));
                node.iter().for_each(|e| q.items.push_back(e));
            }
        }
        let len = l.len();
        l.reshape(|s| s.after_change(len, false));
        l
    }

    /// Apply a change to the encoding's bookkeeping; the elements move between the two forms
    /// as it changes (listTypeTryConversion's conversions, both ways) and as a listpack passes
    /// [`THIN_MAX`].
    fn reshape<R>(&mut self, f: impl FnOnce(&mut Shape) -> R) -> R {
        match &mut self.repr {
            Repr::Thin(t) => {
                let mut shape = Shape::Listpack { bytes: t.lp_bytes() };
                let r = f(&mut shape);
                match shape {
                    Shape::Listpack { bytes } if bytes <= THIN_MAX => t.set_lp_bytes(bytes),
                    shape => {
                        let mut items = PackedList::default();
                        t.iter().for_each(|e| items.push_back(e));
                        self.repr = Repr::Nodes(Box::new(NodeList { items, shape }));
                    }
                }
                r
            }
            Repr::Nodes(q) => {
                let r = f(&mut q.shape);
                if let Some(bytes) = thin_from_nodes(&q.shape) {
                    self.repr = Repr::Thin(ThinList::collect(bytes, q.items.iter()));
                }
                r
            }
        }
    }

    /// The name OBJECT ENCODING reports.
    pub fn encoding(&self) -> &'static str {
        match &self.repr {
            Repr::Thin(_) => "listpack",
            Repr::Nodes(q) => q.shape.encoding(),
        }
    }

    /// The element counts of the quicklist nodes Redis would hold (one node for a listpack).
    pub fn node_counts(&self) -> Vec<usize> {
        match &self.repr {
            Repr::Nodes(q) => q.shape.nodes().map(|nodes| nodes.iter().map(|n| n.count).collect()),
            Repr::Thin(_) => None,
        }
        .unwrap_or_else(|| vec![self.len()])
    }

    /// DEBUG OBJECT's quicklist figures: (nodes, the fill and compression it was created
    /// with, the nodes' listpack bytes together); None for a listpack-encoded list.
    pub fn quicklist_stats(&self) -> Option<(usize, i64, bool, usize)> {
        match &self.repr {
            Repr::Nodes(q) => match &q.shape {
                Shape::Listpack { .. } => None,
                Shape::Quicklist { fill, compressed, nodes } => {
                    Some((nodes.len(), *fill, *compressed, nodes.iter().map(|n| n.bytes).sum()))
                }
            },
            Repr::Thin(_) => None,
        }
    }

    pub fn len(&self) -> usize {
        match &self.repr {
            Repr::Thin(t) => t.len(),
            Repr::Nodes(q) => q.items.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Heap bytes held (the listpack's block, or the quicklist's box, nodes and node
    /// records), for memory estimates.
    pub fn heap_size(&self) -> usize {
        match &self.repr {
            Repr::Thin(t) => t.heap_size(),
            Repr::Nodes(q) => {
                let records =
                    q.shape.nodes().map_or(0, |n| n.capacity() * std::mem::size_of::<super::list_shape::Node>());
                std::mem::size_of::<NodeList>() + q.items.heap_size() + records
            }
        }
    }

    pub fn push_front(&mut self, v: &[u8]) {
        self.push(v, true)
    }

    pub fn push_back(&mut self, v: &[u8]) {
        self.push(v, false)
    }

    /// Push at the head (`front`) or the tail.
    pub fn push(&mut self, v: &[u8], front: bool) {
        self.growing(v.len(), 1);
        self.push_raw(v, front);
    }

    /// Before adding `count` elements of `bytes` bytes in all: the growing conversion (only
    /// a listpack converts as it grows).
    #[inline]
    fn growing(&mut self, bytes: usize, count: usize) {
        if let Repr::Nodes(q) = &self.repr {
            if !matches!(q.shape, Shape::Listpack { .. }) {
                return;
            }
        }
        self.growing_listpack(bytes, count)
    }

    #[inline(never)]
    fn growing_listpack(&mut self, bytes: usize, count: usize) {
        let len = self.len();
        self.reshape(|s| s.before_growing(len, bytes, count));
    }

    /// Push several elements, one after the other, at the head (`front`) or the tail
    /// (LPUSH/RPUSH: the conversion is decided once, for all of them).
    pub fn push_all<'a>(&mut self, vals: impl IntoIterator<Item = &'a [u8]> + Clone, front: bool) {
        let (bytes, count) = vals.clone().into_iter().fold((0, 0), |(b, c), v| (b + v.len(), c + 1));
        self.growing(bytes, count);
        for v in vals {
            self.push_raw(v, front);
        }
    }

    /// Push an element popped from a list (LMOVE).
    pub fn push_elem(&mut self, v: SmallBytes, front: bool) {
        self.push(&v, front)
    }

    #[inline]
    fn push_raw(&mut self, v: &[u8], front: bool) {
        match &mut self.repr {
            // The hot path (LPUSH/RPUSH on a long list): the encoding stays.
            Repr::Nodes(q) => {
                q.shape.push(front, v.len(), entry_size(v));
                q.items.push(v, front)
            }
            Repr::Thin(_) => self.push_thin(v, front),
        }
    }

    /// `push_raw` into a small list (which may leave it in nodes).
    #[inline(never)]
    fn push_thin(&mut self, v: &[u8], front: bool) {
        let es = entry_size(v);
        self.reshape(|s| s.push(front, v.len(), es));
        match &mut self.repr {
            Repr::Thin(t) => t.push(v, front),
            Repr::Nodes(q) => q.items.push(v, front),
        }
    }

    /// After elements were removed: the shrinking conversion, unless the list is empty (its
    /// key goes away).
    fn removed(&mut self) {
        let len = self.len();
        if len > 0 {
            self.reshape(|s| s.after_change(len, true));
        }
    }

    fn pop_raw(&mut self, front: bool) -> Option<SmallBytes> {
        let v = match &mut self.repr {
            Repr::Thin(t) => t.pop(front),
            Repr::Nodes(q) => q.items.pop(front),
        }?;
        let es = entry_size(&v);
        match &mut self.repr {
            // (The conversions happen once the removals are done: see `removed`.)
            Repr::Nodes(q) => q.shape.pop_end(front, es),
            Repr::Thin(_) => self.reshape(|s| s.pop_end(front, es)),
        }
        Some(v)
    }

    pub fn pop_front(&mut self) -> Option<SmallBytes> {
        self.pop(true)
    }

    pub fn pop_back(&mut self) -> Option<SmallBytes> {
        self.pop(false)
    }

    /// Pop from the head (`front`) or the tail.
    pub fn pop(&mut self, front: bool) -> Option<SmallBytes> {
        let v = self.pop_raw(front);
        self.removed();
        v
    }

    /// Pop up to `count` elements from the head (`front`) or the tail, in popping order.
    pub fn pop_many(&mut self, count: usize, front: bool) -> Vec<SmallBytes> {
        let n = count.min(self.len());
        if n == 0 {
            return Vec::new();
        }
        let out = (0..n).filter_map(|_| self.pop_raw(front)).collect();
        self.removed();
        out
    }

    /// Resolve a Redis index (negative counts from the tail) to a position.
    fn position(&self, index: i64) -> Option<usize> {
        let len = self.len() as i64;
        let i = if index < 0 { len.checked_add(index)? } else { index };
        (0..len).contains(&i).then_some(i as usize)
    }

    /// Element `i` (a position, not a Redis index).
    fn at(&self, i: usize) -> Option<&[u8]> {
        match &self.repr {
            Repr::Thin(t) => t.get(i),
            Repr::Nodes(q) => q.items.get(i),
        }
    }

    /// The element at a Redis index (negative counts from the tail).
    pub fn get(&self, index: i64) -> Option<&[u8]> {
        self.position(index).and_then(|i| self.at(i))
    }

    /// Replace the element at a Redis index; false when out of range (LSET: the growing
    /// conversion is checked first, the shrinking one after).
    pub fn set(&mut self, index: i64, v: &[u8]) -> bool {
        self.growing(v.len(), 1);
        let Some(i) = self.position(index) else {
            return false;
        };
        let old = self.at(i).map_or(0, entry_size);
        self.reshape(|s| s.replace(i, old, entry_size(v)));
        match &mut self.repr {
            Repr::Thin(t) => t.set(i, v),
            Repr::Nodes(q) => q.items.set(i, v),
        }
        self.removed();
        true
    }

    /// Elements from head to tail.
    pub fn iter(&self) -> Iter<'_> {
        match &self.repr {
            Repr::Thin(t) => Iter::Thin(t.iter()),
            Repr::Nodes(q) => Iter::Nodes(q.items.iter()),
        }
    }

    /// The elements of a Redis inclusive range (see [`normalize_range`]), head to tail.
    pub fn range(&self, start: i64, end: i64) -> Iter<'_> {
        let (first, n) = normalize_range(start, end, self.len()).unwrap_or((0, 0));
        match &self.repr {
            Repr::Thin(t) => Iter::Thin(t.range(first, n)),
            Repr::Nodes(q) => Iter::Nodes(q.items.range(first, n)),
        }
    }

    /// Insert `v` before (or `after`) the first occurrence of `pivot`, searching from the head.
    /// Returns false when the pivot is not found (the growing conversion happens anyway, as
    /// in Redis, which checks it before searching).
    pub fn insert(&mut self, pivot: &[u8], v: &[u8], after: bool) -> bool {
        self.growing(v.len(), 1);
        let Some(i) = self.iter().position(|e| e == pivot) else {
            return false;
        };
        let (at, es) = (if after { i + 1 } else { i }, entry_size(v));
        match &mut self.repr {
            Repr::Thin(_) => {
                // A listpack only counts its bytes: the sizes are for splitting quicklist nodes.
                self.reshape(|s| s.insert(i, after, v.len(), es, |_, _| 0));
                match &mut self.repr {
                    Repr::Thin(t) => t.insert(at, v),
                    Repr::Nodes(q) => q.items.insert(at, v),
                }
            }
            Repr::Nodes(q) => {
                let NodeList { items, shape } = &mut **q;
                // (The sizes of a node's elements are read in one walk: finding each one by
                // its index would walk the list's nodes again for every element.)
                shape.insert(i, after, v.len(), es, |from, to| items.range(from, to - from).map(entry_size).sum());
                items.insert(at, v);
            }
        }
        true
    }

    /// LREM: remove up to `count` occurrences of `v` (all when 0) from the head, or from the
    /// tail when `count` is negative. Returns the number removed.
    pub fn remove(&mut self, count: i64, v: &[u8]) -> usize {
        let limit = if count == 0 { usize::MAX } else { count.unsigned_abs().min(usize::MAX as u64) as usize };
        let mut matches: Vec<usize> = self.iter().enumerate().filter(|(_, e)| *e == v).map(|(i, _)| i).collect();
        if count < 0 {
            // Remove the last `limit` matches.
            let keep = matches.len().saturating_sub(limit);
            matches.drain(..keep);
        } else {
            matches.truncate(limit);
        }
        if matches.is_empty() {
            return 0;
        }
        let es = entry_size(v);
        self.reshape(|s| matches.iter().rev().for_each(|&i| s.remove_at(i, es)));
        match &mut self.repr {
            Repr::Thin(t) => t.remove_indexes(&matches),
            Repr::Nodes(q) => q.items.remove_indexes(&matches),
        }
        self.removed();
        matches.len()
    }

    /// LTRIM: keep only the inclusive Redis range. Returns the number of elements removed.
    pub fn trim(&mut self, start: i64, end: i64) -> usize {
        let len = self.len();
        let (first, n) = normalize_range(start, end, len).unwrap_or((0, 0));
        // The tail beyond the range, then the head before it (Redis deletes both ranges).
        for _ in first + n..len {
            self.pop_raw(false);
        }
        for _ in 0..first.min(len - n) {
            self.pop_raw(true);
        }
        self.removed();
        len - n
    }

    /// Move the element at one end to the other end (LMOVE with the same source and
    /// destination). Returns the moved element.
    pub fn rotate(&mut self, from_front: bool, to_front: bool) -> Option<&[u8]> {
        let e = self.pop_raw(from_front)?;
        self.push_elem(e, to_front);
        self.removed();
        match &self.repr {
            Repr::Thin(t) if to_front => t.front(),
            Repr::Thin(t) => t.back(),
            Repr::Nodes(q) if to_front => q.items.front(),
            Repr::Nodes(q) => q.items.back(),
        }
    }
}

/// A list's elements in order, from either end.
pub enum Iter<'a> {
    Thin(list_thin::Iter<'a>),
    Nodes(list_packed::Iter<'a>),
}

impl<'a> Iterator for Iter<'a> {
    type Item = &'a [u8];

    #[inline]
    fn next(&mut self) -> Option<&'a [u8]> {
        match self {
            Iter::Thin(i) => i.next(),
            Iter::Nodes(i) => i.next(),
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        match self {
            Iter::Thin(i) => i.size_hint(),
            Iter::Nodes(i) => i.size_hint(),
        }
    }

    /// One dispatch for the whole walk (`for_each`, `sum`... come here), not one per element.
    fn fold<B, F: FnMut(B, Self::Item) -> B>(self, init: B, f: F) -> B {
        match self {
            Iter::Thin(i) => i.fold(init, f),
            Iter::Nodes(i) => i.fold(init, f),
        }
    }
}

impl DoubleEndedIterator for Iter<'_> {
    fn next_back(&mut self) -> Option<Self::Item> {
        match self {
            Iter::Thin(i) => i.next_back(),
            Iter::Nodes(i) => i.next_back(),
        }
    }
}

impl ExactSizeIterator for Iter<'_> {}

impl<T: AsRef<[u8]>> FromIterator<T> for ListValue {
    /// Elements pushed at the tail one by one, as RPUSH of each would.
    fn from_iter<I: IntoIterator<Item = T>>(iter: I) -> Self {
        let mut l = ListValue::new();
        for e in iter {
            l.push_back(e.as_ref());
        }
        l
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn l(v: &[&str]) -> ListValue {
        v.iter().collect()
    }

    fn items(l: &ListValue) -> Vec<String> {
        l.iter().map(|e| String::from_utf8_lossy(e).into_owned()).collect()
    }

    #[test]
    fn a_loaded_node_kept_as_one_listpack_is_built_as_the_quicklist_path_builds_it() {
        let node = |n: usize, width: usize| (0..n).map(|i| format!("{i:0width$}").into_bytes()).collect::<Vec<_>>();
        let cases = [
            vec![node(0, 1)],
            vec![node(5, 3)],
            vec![node(128, 8)],
            // Near THIN_MAX / 2, on both sides (a listpack past it stays in nodes).
            vec![node(30, 30)],
            vec![node(40, 30)],
            // Past list-max-listpack-size's 8 KB: a quicklist of the one node.
            vec![node(200, 60)],
            vec![node(1, 5000)],
            vec![node(3, 2), node(2, 2)],
            vec![node(0, 1), node(4, 2)],
        ];
        // The elements, the encoding and nodes (Debug), and a listpack's size in its header.
        let described = |l: &ListValue| match &l.repr {
            Repr::Thin(t) => format!("{l:?} of {} bytes", t.lp_bytes()),
            Repr::Nodes(_) => format!("{l:?}"),
        };
        for nodes in cases {
            let quick = ListValue::from_nodes(nodes.clone());
            let whole = ListValue::from_node_list(nodes.clone());
            let counts = nodes.iter().map(Vec::len).collect::<Vec<_>>();
            // The same elements, encoding, nodes and listpack size: the same value, byte for byte.
            assert_eq!(described(&quick), described(&whole), "nodes of {counts:?}");
            // A loader that walks a lone node itself builds it so too, or leaves it to from_nodes.
            if let [node] = &nodes[..] {
                let mut size = NodeSize::default();
                node.iter().for_each(|e| size.add(e));
                let walked = ListValue::from_walked_node(&size, |push| node.iter().for_each(|e| push(e)));
                match walked {
                    Some(w) => assert_eq!(described(&w), described(&whole), "a node of {counts:?}"),
                    None => assert!(node.is_empty() || matches!(whole.repr, Repr::Nodes(_)), "a node of {counts:?}"),
                }
            }
        }
    }

    #[test]
    fn push_pop_both_ends() {
        let mut x = ListValue::new();
        assert!(x.is_empty());
        x.push(b"b", true);
        x.push(b"a", true);
        x.push(b"c", false);
        assert_eq!(items(&x), ["a", "b", "c"]);
        assert_eq!(&*x.pop(true).unwrap(), b"a");
        assert_eq!(&*x.pop(false).unwrap(), b"c");
        assert_eq!(x.len(), 1);
        assert_eq!(&*x.pop_back().unwrap(), b"b");
        assert!(x.pop_front().is_none());
        assert_eq!(x.encoding(), "listpack");
    }

    #[test]
    fn pop_many_order() {
        let mut x = l(&["1", "2", "3", "4", "5"]);
        let f: Vec<_> = x.pop_many(2, true).iter().map(|e| e.to_vec()).collect();
        assert_eq!(f, [b"1".to_vec(), b"2".to_vec()]);
        let b: Vec<_> = x.pop_many(10, false).iter().map(|e| e.to_vec()).collect();
        assert_eq!(b, [b"5".to_vec(), b"4".to_vec(), b"3".to_vec()]);
        assert!(x.is_empty());
    }

    #[test]
    fn indexes_and_ranges() {
        let mut x = l(&["a", "b", "c", "d"]);
        assert_eq!(x.get(0), Some(&b"a"[..]));
        assert_eq!(x.get(-1), Some(&b"d"[..]));
        assert_eq!(x.get(-4), Some(&b"a"[..]));
        assert_eq!(x.get(-5), None);
        assert_eq!(x.get(4), None);
        assert_eq!(x.get(i64::MIN), None);
        assert!(x.set(-2, b"C"));
        assert!(!x.set(10, b"z"));
        assert_eq!(x.range(1, -1).collect::<Vec<_>>(), [&b"b"[..], b"C", b"d"]);
        assert_eq!(x.range(-100, 100).len(), 4);
        assert_eq!(x.range(2, 1).len(), 0);
        assert_eq!(x.range(5, 10).len(), 0);
        assert_eq!(x.range(i64::MIN, i64::MAX).len(), 4);
        assert_eq!(normalize_range(0, -1, 0), None);
    }

    #[test]
    fn insert_remove_trim() {
        let mut x = l(&["a", "b", "a", "c", "a"]);
        assert!(x.insert(b"b", b"X", false));
        assert!(x.insert(b"c", b"Y", true));
        assert!(!x.insert(b"zz", b"Q", true));
        assert_eq!(items(&x), ["a", "X", "b", "a", "c", "Y", "a"]);
        assert_eq!(x.remove(-1, b"a"), 1);
        assert_eq!(items(&x), ["a", "X", "b", "a", "c", "Y"]);
        assert_eq!(x.remove(1, b"a"), 1);
        assert_eq!(items(&x), ["X", "b", "a", "c", "Y"]);
        assert_eq!(x.remove(0, b"nope"), 0);
        let mut y = l(&["a", "a", "b", "a", "a"]);
        assert_eq!(y.remove(-3, b"a"), 3);
        assert_eq!(items(&y), ["a", "b"]);
        assert_eq!(y.remove(0, b"a"), 1);
        assert_eq!(x.trim(1, -2), 2);
        assert_eq!(items(&x), ["b", "a", "c"]);
        assert_eq!(x.trim(5, 10), 3);
        assert!(x.is_empty());
    }

    #[test]
    fn rotate_and_binary() {
        let mut x = l(&["1", "2", "3"]);
        assert_eq!(x.rotate(false, true), Some(&b"3"[..]));
        assert_eq!(items(&x), ["3", "1", "2"]);
        let big = vec![0u8; 100];
        x.push_back(&big);
        x.push_back(b"\x00\r\n");
        assert_eq!(x.get(-2), Some(&big[..]));
        assert_eq!(x.get(-1), Some(&b"\x00\r\n"[..]));
        assert_eq!(x.clone(), x);
    }

    #[test]
    fn shrinks_after_draining() {
        let mut x = ListValue::new();
        for i in 0..10_000 {
            x.push_back(i.to_string().as_bytes());
        }
        let full = x.heap_size();
        let _ = x.pop_many(9_990, true);
        assert!(x.heap_size() < 1_000, "{full} -> {}", x.heap_size());
        assert_eq!(x.len(), 10);
    }

    #[test]
    fn sixteen_bytes_in_the_entry() {
        // The keyspace entry must not grow because of lists (see `Repr`).
        assert_eq!(std::mem::size_of::<ListValue>(), 16);
    }

    #[test]
    fn converts_as_redis_does_and_keeps_the_elements() {
        // Past 8 KB (the default fill, -2) a listpack becomes a quicklist; a one-node
        // quicklist under half of it becomes a listpack again.
        let mut x = ListValue::new();
        let big = vec![b'x'; 2500];
        for _ in 0..3 {
            x.push_back(&big);
        }
        x.push_front(b"head");
        assert_eq!(x.encoding(), "listpack");
        x.push_back(&[b'y'; 1000]);
        assert_eq!((x.encoding(), x.len()), ("quicklist", 5));
        assert_eq!(x.quicklist_stats().map(|s| s.0), Some(2));
        assert_eq!(&*x.pop_back().unwrap(), &[b'y'; 1000][..]);
        assert_eq!(&*x.pop_back().unwrap(), &big[..]);
        assert_eq!(x.encoding(), "quicklist");
        assert_eq!(&*x.pop_back().unwrap(), &big[..]);
        assert_eq!((x.encoding(), x.node_counts()), ("listpack", vec![2]));
        assert_eq!(x.iter().collect::<Vec<_>>(), [&b"head"[..], &big[..]]);
        // Small again: one block of its entries and header.
        assert_eq!(&*x.pop_back().unwrap(), &big[..]);
        assert_eq!((x.encoding(), x.heap_size()), ("listpack", 4 + 6));
    }

    mod model {
        use super::super::*;
        use proptest::prelude::*;

        #[derive(Debug, Clone)]
        enum Op {
            Push(u8, bool),
            Pop(bool),
            PopMany(u8, bool),
            Set(i8, u8),
            Insert(u8, u8, bool),
            Remove(i8, u8),
            Trim(i8, i8),
            Rotate(bool, bool),
        }

        fn op() -> impl Strategy<Value = Op> {
            prop_oneof![
                6 => (any::<u8>(), any::<bool>()).prop_map(|(v, f)| Op::Push(v, f)),
                2 => any::<bool>().prop_map(Op::Pop),
                1 => (0u8..8, any::<bool>()).prop_map(|(n, f)| Op::PopMany(n, f)),
                1 => (any::<i8>(), any::<u8>()).prop_map(|(i, v)| Op::Set(i, v)),
                1 => (any::<u8>(), any::<u8>(), any::<bool>()).prop_map(|(p, v, a)| Op::Insert(p, v, a)),
                1 => (-3i8..4, any::<u8>()).prop_map(|(c, v)| Op::Remove(c, v)),
                1 => (any::<i8>(), any::<i8>()).prop_map(|(a, b)| Op::Trim(a, b)),
                1 => (any::<bool>(), any::<bool>()).prop_map(|(a, b)| Op::Rotate(a, b)),
            ]
        }

        /// Elements from a small alphabet (so that searches match), some of them longer than
        /// the inline capacity.
        fn elem(v: u8) -> Vec<u8> {
            let base = format!("e{}", v % 8).into_bytes();
            if v >= 240 {
                // Three of these pass the default 8 KB: the list becomes a quicklist.
                base.repeat(1400)
            } else if v >= 200 {
                base.repeat(10)
            } else {
                base
            }
        }

        /// Redis's index arithmetic, written the naive way.
        fn model_range(start: i64, end: i64, len: usize) -> Vec<usize> {
            (0..len)
                .filter(|&i| {
                    let (i, l) = (i as i64, len as i64);
                    let s = if start < 0 { (l + start).max(0) } else { start };
                    let e = if end < 0 { l + end } else { end };
                    i >= s && i <= e
                })
                .collect()
        }

        proptest! {
            /// ListValue behaves like a plain vector with Redis's list semantics.
            #[test]
            fn behaves_like_a_vec(ops in proptest::collection::vec(op(), 1..400)) {
                let mut l = ListValue::new();
                let mut m: Vec<Vec<u8>> = Vec::new();
                for op in ops {
                    match op {
                        Op::Push(v, front) => {
                            l.push(&elem(v), front);
                            if front { m.insert(0, elem(v)) } else { m.push(elem(v)) }
                        }
                        Op::Pop(front) => {
                            let want = if m.is_empty() { None } else if front { Some(m.remove(0)) } else { m.pop() };
                            prop_assert_eq!(l.pop(front).map(|e| e.to_vec()), want);
                        }
                        Op::PopMany(n, front) => {
                            let got: Vec<Vec<u8>> = l.pop_many(n as usize, front).iter().map(|e| e.to_vec()).collect();
                            let k = (n as usize).min(m.len());
                            let want: Vec<Vec<u8>> = if front {
                                m.drain(..k).collect()
                            } else {
                                let len = m.len();
                                m.drain(len - k..).rev().collect()
                            };
                            prop_assert_eq!(got, want);
                        }
                        Op::Set(i, v) => {
                            let idx = if i < 0 { m.len() as i64 + i as i64 } else { i as i64 };
                            let ok = idx >= 0 && (idx as usize) < m.len();
                            prop_assert_eq!(l.set(i as i64, &elem(v)), ok);
                            if ok { m[idx as usize] = elem(v); }
                        }
                        Op::Insert(p, v, after) => {
                            let pos = m.iter().position(|e| *e == elem(p));
                            prop_assert_eq!(l.insert(&elem(p), &elem(v), after), pos.is_some());
                            if let Some(i) = pos { m.insert(if after { i + 1 } else { i }, elem(v)); }
                        }
                        Op::Remove(c, v) => {
                            let target = elem(v);
                            let mut idxs: Vec<usize> = (0..m.len()).filter(|&i| m[i] == target).collect();
                            if c < 0 { idxs.reverse(); }
                            if c != 0 { idxs.truncate(c.unsigned_abs() as usize); }
                            idxs.sort_unstable();
                            for &i in idxs.iter().rev() { m.remove(i); }
                            prop_assert_eq!(l.remove(c as i64, &target), idxs.len());
                        }
                        Op::Trim(a, b) => {
                            let keep = model_range(a as i64, b as i64, m.len());
                            let before = m.len();
                            m = keep.iter().map(|&i| m[i].clone()).collect();
                            prop_assert_eq!(l.trim(a as i64, b as i64), before - m.len());
                        }
                        Op::Rotate(from_front, to_front) => {
                            let got = l.rotate(from_front, to_front).map(|e| e.to_vec());
                            let want = if m.is_empty() {
                                None
                            } else {
                                let e = if from_front { m.remove(0) } else { m.pop().unwrap() };
                                if to_front { m.insert(0, e.clone()) } else { m.push(e.clone()) }
                                Some(e)
                            };
                            prop_assert_eq!(got, want);
                        }
                    }
                    prop_assert_eq!(l.len(), m.len());
                    prop_assert_eq!(l.iter().map(|e| e.to_vec()).collect::<Vec<_>>(), m.clone());
                    // The encoding's bookkeeping matches the elements in either form, and a
                    // listpack stays within the default 8 KB (plus the last entry's header).
                    let lp_bytes = match &l.repr {
                        Repr::Thin(t) => Some(t.lp_bytes()),
                        Repr::Nodes(q) => match q.shape { Shape::Listpack { bytes } => Some(bytes), _ => None },
                    };
                    if let Some(bytes) = lp_bytes {
                        prop_assert_eq!(bytes, LP_OVERHEAD + l.iter().map(entry_size).sum::<usize>());
                        prop_assert!(bytes <= 8192 + 8, "{}", bytes);
                        prop_assert_eq!(l.encoding(), "listpack");
                    } else {
                        prop_assert_eq!(l.node_counts().iter().sum::<usize>(), l.len());
                    }
                    if let Repr::Thin(t) = &l.repr {
                        prop_assert!(t.lp_bytes() <= THIN_MAX);
                    }
                }
                // Every range and index agrees with the naive arithmetic.
                for a in -12i64..12 {
                    prop_assert_eq!(l.get(a).map(|e| e.to_vec()), {
                        let i = if a < 0 { m.len() as i64 + a } else { a };
                        if i >= 0 && (i as usize) < m.len() { Some(m[i as usize].clone()) } else { None }
                    });
                    for b in -12i64..12 {
                        let got: Vec<Vec<u8>> = l.range(a, b).map(|e| e.to_vec()).collect();
                        let want: Vec<Vec<u8>> = model_range(a, b, m.len()).iter().map(|&i| m[i].clone()).collect();
                        prop_assert_eq!(got, want);
                    }
                }
            }
        }
    }
}
