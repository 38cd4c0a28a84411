//! The storage of a list's elements: a deque of packed nodes, each one buffer of entries laid
//! out as Redis's listpack lays them out (a length header, the bytes, then the entry's size
//! written backwards so the node can be walked from either end).
//!
//! An element costs its bytes plus two (up to 127 bytes; a few more beyond), where a ring of
//! 24-byte slots cost 24 and, past 22 bytes, a heap block of its own: a list of ids takes about
//! a quarter of the memory, as a Redis list does. Nodes hold up to [`NODE_MAX`] bytes (an
//! element bigger than that gets a node of its own); a node keeps its free room at the end
//! pushes grow it from, so pushing and popping at either end is O(1) amortised; an element in
//! the middle is found by walking node counts, then entries, as Redis walks its quicklist.

use std::collections::VecDeque;

use super::SmallBytes;
use crate::util::leb128;

/// A node's entries stop growing here: the next element at that end starts a new node. (A
/// power of two, as every node buffer's size, so that the allocator's size classes fit them.)
const NODE_MAX: usize = 2048;
/// The smallest node buffer.
const NODE_MIN: usize = 16;

/// Bytes an element of `len` bytes takes in a node: header, bytes, backward size.
#[inline]
pub(super) fn entry_len(len: usize) -> usize {
    let h = leb128::len(len);
    h + len + leb128::len(h + len)
}

/// Write `s`'s entry into `dst`, which is exactly [`entry_len`] bytes.
pub(super) fn write_entry(dst: &mut [u8], s: &[u8]) {
    let i = leb128::write(dst, s.len());
    dst[i..i + s.len()].copy_from_slice(s);
    // The entry's size before this trailer, its low 7 bits last: read from the right.
    let mut t = i + s.len();
    let mut j = dst.len();
    loop {
        j -= 1;
        let low = (t & 0x7f) as u8;
        t >>= 7;
        dst[j] = if t > 0 { low | 0x80 } else { low };
        if t == 0 {
            break;
        }
    }
}

/// The entry starting at `pos`: (first byte of the element, its end, the next entry's start).
#[inline(always)]
pub(super) fn read_forward(buf: &[u8], pos: usize) -> (usize, usize, usize) {
    let b = buf[pos];
    if b < 0x80 {
        // An element under 128 bytes (the usual case): a one-byte header, and a one-byte
        // trailer unless header and element make 128.
        let (start, len) = (pos + 1, b as usize);
        let end = start + len;
        return (start, end, end + 1 + (len >= 127) as usize);
    }
    read_forward_long(buf, pos)
}

#[inline(never)]
fn read_forward_long(buf: &[u8], pos: usize) -> (usize, usize, usize) {
    let (len, i) = leb128::read(buf, pos);
    let end = i + len;
    (i, end, end + leb128::len(i - pos + len))
}

/// The entry ending at `end`: (first byte of the element, its end, the entry's start).
#[inline]
pub(super) fn read_backward(buf: &[u8], end: usize) -> (usize, usize, usize) {
    let (mut size, mut shift, mut i) = (0usize, 0, end);
    loop {
        i -= 1;
        let b = buf[i];
        size |= ((b & 0x7f) as usize) << shift;
        if b & 0x80 == 0 {
            break;
        }
        shift += 7;
    }
    let start = i - size;
    let (s, e, _) = read_forward(buf, start);
    (s, e, start)
}

/// Byte offset of entry `k` of the `count` entries in `buf[head..tail]` (`k == count`: `tail`),
/// walked from the nearer end.
pub(super) fn offset_of(buf: &[u8], head: usize, tail: usize, count: usize, k: usize) -> usize {
    if k <= count / 2 {
        (0..k).fold(head, |pos, _| read_forward(buf, pos).2)
    } else {
        (k..count).fold(tail, |end, _| read_backward(buf, end).2)
    }
}

/// Keep, in order, the entries of `buf[head..tail]` that `keep` says yes to (it is asked once
/// per entry): they move down from `head`. Returns their end and how many entries went.
pub(super) fn retain_entries(
    buf: &mut [u8],
    head: usize,
    tail: usize,
    mut keep: impl FnMut() -> bool,
) -> (usize, usize) {
    let (mut pos, mut to, mut gone) = (head, head, 0);
    while pos < tail {
        let next = read_forward(buf, pos).2;
        if keep() {
            buf.copy_within(pos..next, to);
            to += next - pos;
        } else {
            gone += 1;
        }
        pos = next;
    }
    (to, gone)
}

/// Entries in `buf[head..tail]`; the room before `head` and after `tail` is free.
#[derive(Clone)]
struct Node {
    buf: Box<[u8]>,
    head: usize,
    tail: usize,
    count: usize,
}

impl Node {
    /// A node of no entries, its buffer of `size` bytes free from `at` on.
    fn empty(size: usize, at: usize) -> Node {
        Node { buf: vec![0; size].into_boxed_slice(), head: at, tail: at, count: 0 }
    }

    /// A node holding `s` alone, its room on the side pushes at `front` (or the back) fill.
    fn with(s: &[u8], front: bool) -> Node {
        let es = entry_len(s.len());
        let size = buffer_size(es);
        let mut n = Node::empty(size, if front { size } else { 0 });
        if front {
            n.push_front(s, es)
        } else {
            n.push_back(s, es)
        }
        n
    }

    fn used(&self) -> usize {
        self.tail - self.head
    }

    /// Whether an entry of `es` bytes may join this node.
    fn takes(&self, es: usize) -> bool {
        self.used() + es <= NODE_MAX
    }

    /// Move the entries into a buffer of `size` bytes, starting at `at`.
    fn relocate(&mut self, size: usize, at: usize) {
        let mut buf = vec![0; size].into_boxed_slice();
        buf[at..at + self.used()].copy_from_slice(&self.buf[self.head..self.tail]);
        (self.tail, self.head, self.buf) = (at + self.used(), at, buf);
    }

    /// Make room for `es` more bytes at the back (or the `front`): a bigger buffer puts all its
    /// room on that side; the same buffer (the room was on the other side) shares it between
    /// the two, so that pushes alternating between the ends move the entries rarely.
    fn make_room(&mut self, es: usize, front: bool) {
        let size = buffer_size(self.used() + es).max(self.buf.len());
        let free = size - self.used();
        let at = match (size == self.buf.len(), front) {
            (true, false) => (free / 2).min(free - es),
            (true, true) => (free - free / 2).max(es),
            (false, false) => 0,
            (false, true) => free,
        };
        self.relocate(size, at);
    }

    fn push_back(&mut self, s: &[u8], es: usize) {
        if self.buf.len() - self.tail < es {
            self.make_room(es, false);
        }
        write_entry(&mut self.buf[self.tail..self.tail + es], s);
        self.tail += es;
        self.count += 1;
    }

    fn push_front(&mut self, s: &[u8], es: usize) {
        if self.head < es {
            self.make_room(es, true);
        }
        self.head -= es;
        write_entry(&mut self.buf[self.head..self.head + es], s);
        self.count += 1;
    }

    fn front(&self) -> &[u8] {
        let (s, e, _) = read_forward(&self.buf, self.head);
        &self.buf[s..e]
    }

    fn back(&self) -> &[u8] {
        let (s, e, _) = read_backward(&self.buf, self.tail);
        &self.buf[s..e]
    }

    fn pop_front(&mut self) -> SmallBytes {
        let (s, e, next) = read_forward(&self.buf, self.head);
        let v = SmallBytes::new(&self.buf[s..e]);
        self.head = next;
        self.count -= 1;
        self.fit();
        v
    }

    fn pop_back(&mut self) -> SmallBytes {
        let (s, e, start) = read_backward(&self.buf, self.tail);
        let v = SmallBytes::new(&self.buf[s..e]);
        self.tail = start;
        self.count -= 1;
        self.fit();
        v
    }

    /// Byte offset of entry `k` (`k == count`: the end), walked from the nearer end.
    fn offset_of(&self, k: usize) -> usize {
        offset_of(&self.buf, self.head, self.tail, self.count, k)
    }

    fn get(&self, k: usize) -> &[u8] {
        let (s, e, _) = read_forward(&self.buf, self.offset_of(k));
        &self.buf[s..e]
    }

    /// Insert `s` as entry `k` (before the entry now there).
    fn insert(&mut self, k: usize, s: &[u8]) {
        let es = entry_len(s.len());
        let mut pos = self.offset_of(k);
        if self.buf.len() - self.tail < es {
            let before = pos - self.head;
            self.make_room(es, false);
            pos = self.head + before;
        }
        self.buf.copy_within(pos..self.tail, pos + es);
        write_entry(&mut self.buf[pos..pos + es], s);
        self.tail += es;
        self.count += 1;
    }

    /// Remove entry `k`.
    fn remove(&mut self, k: usize) {
        let pos = self.offset_of(k);
        let next = read_forward(&self.buf, pos).2;
        self.buf.copy_within(next..self.tail, pos);
        self.tail -= next - pos;
        self.count -= 1;
        self.fit();
    }

    /// Keep only the entries `keep` says yes to, in order (`keep` is asked once per entry).
    fn retain(&mut self, keep: impl FnMut() -> bool) {
        let (tail, gone) = retain_entries(&mut self.buf, self.head, self.tail, keep);
        (self.tail, self.count) = (tail, self.count - gone);
        self.fit();
    }

    /// Give back a buffer used under a quarter.
    fn fit(&mut self) {
        if self.count > 0 && self.buf.len() > NODE_MIN && self.used() < self.buf.len() / 4 {
            self.relocate(buffer_size(self.used()), 0);
        }
    }

    /// Split a node past [`NODE_MAX`] holding several entries into nodes within it (an element
    /// too big for a shared node alone in its own); empty when it is within it already.
    fn split(&mut self) -> Vec<Node> {
        if self.used() <= NODE_MAX || self.count < 2 {
            return Vec::new();
        }
        // Cut points (byte offset, entry index): an entry starts a new node when the current
        // one would pass the limit.
        let mut cuts = Vec::new();
        let (mut pos, mut from) = (self.head, self.head);
        for k in 0..self.count {
            let next = read_forward(&self.buf, pos).2;
            if next - from > NODE_MAX && pos > from {
                cuts.push((pos, k));
                from = pos;
            }
            pos = next;
        }
        let ends = cuts.iter().skip(1).copied().chain([(self.tail, self.count)]);
        let parts = cuts
            .iter()
            .zip(ends)
            .map(|(&(at, k), (end, next_k))| {
                let mut n = Node::empty(buffer_size(end - at), 0);
                n.buf[..end - at].copy_from_slice(&self.buf[at..end]);
                (n.tail, n.count) = (end - at, next_k - k);
                n
            })
            .collect();
        (self.tail, self.count) = cuts[0];
        self.relocate(buffer_size(self.used()), 0);
        parts
    }
}

/// The buffer for `used` bytes: the next power of two (at least [`NODE_MIN`]), or exactly
/// `used` past [`NODE_MAX`] (an element too big for a shared node).
fn buffer_size(used: usize) -> usize {
    if used > NODE_MAX {
        used
    } else {
        used.next_power_of_two().max(NODE_MIN)
    }
}

/// A list's elements, head to tail.
#[derive(Clone, Default)]
pub struct PackedList {
    nodes: VecDeque<Node>,
    len: usize,
}

impl PackedList {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Heap bytes held: the node buffers and the deque of nodes.
    pub fn heap_size(&self) -> usize {
        self.nodes.capacity() * std::mem::size_of::<Node>() + self.nodes.iter().map(|n| n.buf.len()).sum::<usize>()
    }

    pub fn push_front(&mut self, s: &[u8]) {
        self.push(s, true)
    }

    pub fn push_back(&mut self, s: &[u8]) {
        self.push(s, false)
    }

    /// Push at the head (`front`) or the tail: into the end node when it takes the entry, else
    /// into a new node there.
    pub fn push(&mut self, s: &[u8], front: bool) {
        let es = entry_len(s.len());
        let end = if front { self.nodes.front_mut() } else { self.nodes.back_mut() };
        match end {
            Some(n) if n.takes(es) && front => n.push_front(s, es),
            Some(n) if n.takes(es) => n.push_back(s, es),
            _ => {
                // A list's first node takes a deque of one slot (most lists are small; a grown
                // deque starts at four).
                if self.nodes.capacity() == 0 {
                    self.nodes.reserve_exact(1);
                }
                let node = Node::with(s, front);
                if front {
                    self.nodes.push_front(node)
                } else {
                    self.nodes.push_back(node)
                }
            }
        }
        self.len += 1;
    }

    pub fn pop_front(&mut self) -> Option<SmallBytes> {
        self.pop(true)
    }

    pub fn pop_back(&mut self) -> Option<SmallBytes> {
        self.pop(false)
    }

    /// Pop from the head (`front`) or the tail; an emptied node goes.
    pub fn pop(&mut self, front: bool) -> Option<SmallBytes> {
        let n = if front { self.nodes.front_mut()? } else { self.nodes.back_mut()? };
        let v = if front { n.pop_front() } else { n.pop_back() };
        if n.count == 0 {
            if front {
                self.nodes.pop_front();
            } else {
                self.nodes.pop_back();
            }
            self.fit_deque();
        }
        self.len -= 1;
        Some(v)
    }

    pub fn front(&self) -> Option<&[u8]> {
        self.nodes.front().map(Node::front)
    }

    pub fn back(&self) -> Option<&[u8]> {
        self.nodes.back().map(Node::back)
    }

    /// The node holding element `i` (< len) and its index there, walked from the nearer end.
    fn locate(&self, i: usize) -> (usize, usize) {
        if i < self.len / 2 {
            let mut k = i;
            for (ni, n) in self.nodes.iter().enumerate() {
                if k < n.count {
                    return (ni, k);
                }
                k -= n.count;
            }
        } else {
            let mut from_end = self.len - i;
            for (ni, n) in self.nodes.iter().enumerate().rev() {
                if from_end <= n.count {
                    return (ni, n.count - from_end);
                }
                from_end -= n.count;
            }
        }
        unreachable!("index {i} within a list of {}", self.len)
    }

    pub fn get(&self, i: usize) -> Option<&[u8]> {
        (i < self.len).then(|| {
            let (ni, k) = self.locate(i);
            self.nodes[ni].get(k)
        })
    }

    /// Insert `s` before element `i` (`i == len`: at the tail).
    pub fn insert(&mut self, i: usize, s: &[u8]) {
        if i == 0 {
            return self.push_front(s);
        }
        if i >= self.len {
            return self.push_back(s);
        }
        let (ni, k) = self.locate(i);
        self.nodes[ni].insert(k, s);
        self.len += 1;
        self.split_node(ni);
    }

    /// Replace element `i` (< len).
    pub fn set(&mut self, i: usize, s: &[u8]) {
        let (ni, k) = self.locate(i);
        let n = &mut self.nodes[ni];
        n.remove(k);
        n.insert(k, s);
        self.split_node(ni);
    }

    /// After an element joined node `ni` in the middle: split it if it passed the limit.
    fn split_node(&mut self, ni: usize) {
        for (j, part) in self.nodes[ni].split().into_iter().enumerate() {
            self.nodes.insert(ni + 1 + j, part);
        }
    }

    /// Remove the elements at `indexes` (ascending, each < len) in one pass.
    pub fn remove_indexes(&mut self, indexes: &[usize]) {
        let mut doomed = indexes.iter().copied().peekable();
        let mut base = 0;
        for n in self.nodes.iter_mut() {
            let end = base + n.count;
            if doomed.peek().is_some_and(|&i| i < end) {
                let mut i = base;
                n.retain(|| {
                    let gone = doomed.next_if_eq(&i).is_some();
                    i += 1;
                    !gone
                });
            }
            base = end;
        }
        self.len -= indexes.len();
        self.nodes.retain(|n| n.count > 0);
        self.merge_small_nodes();
        self.fit_deque();
    }

    /// Join neighbouring nodes that fit in one (after removals in the middle left them small).
    fn merge_small_nodes(&mut self) {
        let mut i = 0;
        while i + 1 < self.nodes.len() {
            let (a, b) = (&self.nodes[i], &self.nodes[i + 1]);
            if a.used() + b.used() <= NODE_MAX / 2 {
                let b = self.nodes.remove(i + 1).expect("a next node");
                let a = &mut self.nodes[i];
                a.relocate(buffer_size(a.used() + b.used()), 0);
                a.buf[a.tail..a.tail + b.used()].copy_from_slice(&b.buf[b.head..b.tail]);
                (a.tail, a.count) = (a.tail + b.used(), a.count + b.count);
            } else {
                i += 1;
            }
        }
    }

    /// Give back the deque's room when it holds a quarter of it.
    fn fit_deque(&mut self) {
        let cap = self.nodes.capacity();
        if cap > 16 && self.nodes.len() < cap / 4 {
            self.nodes.shrink_to(self.nodes.len() * 2);
        }
    }

    pub fn iter(&self) -> Iter<'_> {
        self.range(0, self.len)
    }

    /// `n` elements from element `first` (first + n <= len).
    pub fn range(&self, first: usize, n: usize) -> Iter<'_> {
        let (node, buf, pos, end): (usize, &[u8], usize, usize) = if n == 0 {
            (0, &[], 0, 0)
        } else {
            let (ni, k) = self.locate(first);
            let node = &self.nodes[ni];
            (ni, &node.buf, node.offset_of(k), node.tail)
        };
        Iter { list: self, node, buf, pos, end, back: None, last: first + n.max(1) - 1, remaining: n }
    }
}

impl PartialEq for PackedList {
    fn eq(&self, other: &Self) -> bool {
        self.len == other.len && self.iter().eq(other.iter())
    }
}

impl std::fmt::Debug for PackedList {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter().map(String::from_utf8_lossy)).finish()
    }
}

/// Elements of a [`PackedList`] in order, from either end.
#[derive(Clone)]
pub struct Iter<'a> {
    list: &'a PackedList,
    /// The front: its node, that node's buffer, the next entry's offset and the entries' end.
    node: usize,
    buf: &'a [u8],
    pos: usize,
    end: usize,
    /// (node, byte end of the next entry from the back), found when first needed.
    back: Option<(usize, usize)>,
    /// The element the back starts from.
    last: usize,
    remaining: usize,
}

impl<'a> Iterator for Iter<'a> {
    type Item = &'a [u8];

    #[inline]
    fn next(&mut self) -> Option<&'a [u8]> {
        if self.remaining == 0 {
            return None;
        }
        if self.pos >= self.end {
            self.node += 1;
            let n = &self.list.nodes[self.node];
            (self.buf, self.pos, self.end) = (&n.buf, n.head, n.tail);
        }
        let (s, e, next) = read_forward(self.buf, self.pos);
        self.pos = next;
        self.remaining -= 1;
        Some(&self.buf[s..e])
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining, Some(self.remaining))
    }
}

impl DoubleEndedIterator for Iter<'_> {
    fn next_back(&mut self) -> Option<Self::Item> {
        if self.remaining == 0 {
            return None;
        }
        let nodes = &self.list.nodes;
        let (mut ni, mut end) = *self.back.get_or_insert_with(|| {
            let (ni, k) = self.list.locate(self.last);
            (ni, nodes[ni].offset_of(k + 1))
        });
        if end <= nodes[ni].head {
            ni -= 1;
            end = nodes[ni].tail;
        }
        let buf = &nodes[ni].buf;
        let (s, e, start) = read_backward(buf, end);
        self.back = Some((ni, start));
        self.remaining -= 1;
        Some(&buf[s..e])
    }
}

impl ExactSizeIterator for Iter<'_> {}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn entries_read_back_from_either_end() {
        for len in [0, 1, 127, 128, 200, 16_383, 16_384, 70_000] {
            let s: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let es = entry_len(len);
            let mut buf = vec![0u8; es + 2];
            write_entry(&mut buf[1..1 + es], &s);
            assert_eq!(read_forward(&buf, 1), (1 + leb128::len(len), 1 + leb128::len(len) + len, 1 + es), "{len}");
            assert_eq!(read_backward(&buf, 1 + es), (1 + leb128::len(len), 1 + leb128::len(len) + len, 1), "{len}");
        }
        assert_eq!((leb128::len(0), leb128::len(127), leb128::len(128), leb128::len(16_384)), (1, 1, 2, 3));
    }

    #[test]
    fn small_elements_cost_their_bytes_and_two() {
        let mut l = PackedList::default();
        for i in 0..1000 {
            l.push_back(format!("e{:03}", i % 1000).as_bytes());
        }
        // 1000 entries of 6 bytes: three 2 KB nodes and the deque.
        assert!(l.heap_size() < 6 * 1024 + 512, "{}", l.heap_size());
    }

    /// What the model and the list are told to do.
    #[derive(Clone, Debug)]
    enum Op {
        Push(bool, Vec<u8>),
        Pop(bool),
        Insert(usize, Vec<u8>),
        Set(usize, Vec<u8>),
        Remove(Vec<usize>),
    }

    fn element() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            8 => proptest::collection::vec(any::<u8>(), 0..12),
            2 => proptest::collection::vec(any::<u8>(), 100..300),
            1 => proptest::collection::vec(any::<u8>(), 1900..5000),
        ]
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            6 => (any::<bool>(), element()).prop_map(|(f, e)| Op::Push(f, e)),
            2 => any::<bool>().prop_map(Op::Pop),
            2 => (any::<usize>(), element()).prop_map(|(i, e)| Op::Insert(i, e)),
            2 => (any::<usize>(), element()).prop_map(|(i, e)| Op::Set(i, e)),
            1 => proptest::collection::vec(any::<usize>(), 0..20).prop_map(Op::Remove),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]
        #[test]
        fn behaves_as_a_deque(ops in proptest::collection::vec(op(), 1..400)) {
            let mut model: VecDeque<Vec<u8>> = VecDeque::new();
            let mut l = PackedList::default();
            for op in ops {
                match op {
                    Op::Push(true, e) => { l.push_front(&e); model.push_front(e); }
                    Op::Push(false, e) => { l.push_back(&e); model.push_back(e); }
                    Op::Pop(front) => {
                        let (a, b) = if front { (l.pop_front(), model.pop_front()) } else { (l.pop_back(), model.pop_back()) };
                        prop_assert_eq!(a.map(|v| v.to_vec()), b);
                    }
                    Op::Insert(i, e) => {
                        let i = i % (model.len() + 1);
                        l.insert(i, &e);
                        model.insert(i, e);
                    }
                    Op::Set(i, e) if !model.is_empty() => {
                        let i = i % model.len();
                        l.set(i, &e);
                        model[i] = e;
                    }
                    Op::Set(..) => {}
                    Op::Remove(mut idx) => {
                        if model.is_empty() { continue; }
                        idx.iter_mut().for_each(|i| *i %= model.len());
                        idx.sort_unstable();
                        idx.dedup();
                        l.remove_indexes(&idx);
                        for &i in idx.iter().rev() { model.remove(i); }
                    }
                }
                prop_assert_eq!(l.len(), model.len());
                prop_assert!(l.nodes.iter().all(|n| n.count > 0 && (n.used() <= NODE_MAX || n.count == 1)));
            }
            prop_assert!(l.iter().eq(model.iter().map(|e| &e[..])));
            prop_assert!(l.iter().rev().eq(model.iter().rev().map(|e| &e[..])));
            for (i, e) in model.iter().enumerate() {
                prop_assert_eq!(l.get(i), Some(&e[..]));
            }
            prop_assert_eq!(l.get(model.len()), None);
            prop_assert_eq!(l.front(), model.front().map(|e| &e[..]));
            prop_assert_eq!(l.back(), model.back().map(|e| &e[..]));
            let n = model.len();
            for (first, count) in [(0, n), (n / 3, n / 2), (n.saturating_sub(1), n.min(1)), (n / 2, 0)] {
                let want: Vec<&[u8]> = model.range(first..first + count).map(|e| &e[..]).collect();
                prop_assert_eq!(l.range(first, count).collect::<Vec<_>>(), want.clone());
                prop_assert_eq!(l.range(first, count).rev().collect::<Vec<_>>(), want.iter().rev().copied().collect::<Vec<_>>());
                let mut it = l.range(first, count);
                let mut both = Vec::new();
                let mut back = Vec::new();
                loop {
                    match (it.next(), it.next_back()) {
                        (Some(a), Some(b)) => { both.push(a); back.push(b); }
                        (Some(a), None) => { both.push(a); break; }
                        (None, _) => break,
                    }
                }
                both.extend(back.into_iter().rev());
                prop_assert_eq!(both, want);
            }
        }
    }
}
