//! A list Redis would keep as one listpack (OBJECT ENCODING "listpack"), in one exactly sized
//! allocation: a 4-byte header (the byte count Redis's listpack would have, which decides the
//! conversions), then the entries laid out as a packed node lays them out (`list_packed.rs`: a
//! length, the bytes, the entry's size written backwards). The element count is the
//! [`ThinBuf`]'s count.
//!
//! Most lists are small, and a deque of nodes behind a boxed header cost three allocations
//! each (header, deque, node) where Redis takes one: 100k lists of ten ids took twice Redis's
//! memory. A `ThinList` is one [`ThinBuf`]: 16 bytes, with a spare byte where `ListValue`
//! keeps its tag. Edits move the bytes after the edit
//! point, as Redis's listpack edits do; a listpack is bounded by `list-max-listpack-size`
//! (8 KB by default, 64 KB at most), past which the list becomes a quicklist.

use super::list_packed::{entry_len, offset_of, read_backward, read_forward, retain_entries, write_entry};
use super::thin_buf::ThinBuf;
use super::SmallBytes;

/// The header: Redis's listpack byte count (u32, little endian).
const HEADER: usize = 4;

#[derive(Clone)]
pub struct ThinList {
    /// The header, then the entries.
    buf: ThinBuf,
}

impl std::fmt::Debug for ThinList {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter().map(String::from_utf8_lossy)).finish()
    }
}

impl ThinList {
    /// An empty list whose listpack would take `lp_bytes`.
    pub fn new(lp_bytes: usize) -> ThinList {
        ThinList::from_entries(lp_bytes, 0, Vec::with_capacity(HEADER))
    }

    /// A list of `items` whose listpack takes `lp_bytes` (a quicklist of one node converting).
    pub fn collect<'a>(lp_bytes: usize, items: impl ExactSizeIterator<Item = &'a [u8]> + Clone) -> ThinList {
        let size = items.clone().map(|s| entry_len(s.len())).sum::<usize>();
        ThinList::build(lp_bytes, items.len(), size, |push| items.for_each(push))
    }

    /// A list of the `count` elements `fill` pushes, whose entries take `size` bytes (the sum of
    /// their [`entry_len`]) and whose listpack takes `lp_bytes`: one allocation of that size.
    pub fn build(lp_bytes: usize, count: usize, size: usize, fill: impl FnOnce(&mut dyn FnMut(&[u8]))) -> ThinList {
        let mut v = Vec::with_capacity(HEADER + size);
        v.resize(HEADER, 0);
        fill(&mut |s| {
            let (at, es) = (v.len(), entry_len(s.len()));
            v.resize(at + es, 0);
            write_entry(&mut v[at..], s);
        });
        debug_assert_eq!(v.len(), HEADER + size, "a list is built as sized");
        ThinList::from_entries(lp_bytes, count, v)
    }

    /// `v` (its first [`HEADER`] bytes room for the header) with the header written.
    fn from_entries(lp_bytes: usize, count: usize, mut v: Vec<u8>) -> ThinList {
        v.resize(v.len().max(HEADER), 0);
        v[..HEADER].copy_from_slice(&header_field(lp_bytes));
        let mut buf = ThinBuf::new(v, 0);
        buf.set_count(count);
        ThinList { buf }
    }

    /// The bytes Redis's listpack of these elements would take.
    pub fn lp_bytes(&self) -> usize {
        u32::from_le_bytes(self.buf.bytes()[..HEADER].try_into().expect("four bytes")) as usize
    }

    pub fn set_lp_bytes(&mut self, n: usize) {
        self.buf.bytes_mut()[..HEADER].copy_from_slice(&header_field(n));
    }

    pub fn len(&self) -> usize {
        let buf = self.entries();
        self.buf.count(|| {
            std::iter::successors(Some(0), |&pos| Some(read_forward(buf, pos).2))
                .take_while(|&pos| pos < buf.len())
                .count()
        })
    }

    /// The block this list owns.
    pub fn heap_size(&self) -> usize {
        self.buf.len()
    }

    fn entries(&self) -> &[u8] {
        &self.buf.bytes()[HEADER..]
    }

    /// Replace `remove` bytes of entries at offset `at` with `add` bytes, the element count
    /// changing by `counted`; returns the `add` bytes to write.
    fn splice(&mut self, at: usize, remove: usize, add: usize, counted: isize) -> &mut [u8] {
        let count = self.len().checked_add_signed(counted).expect("a count within the list");
        self.buf.set_count(count);
        self.buf.splice(HEADER + at, remove, add)
    }

    /// Byte offset (into the entries) of element `k` (`k == len`: the end), walked from the
    /// nearer end.
    fn offset_of(&self, k: usize) -> usize {
        let buf = self.entries();
        offset_of(buf, 0, buf.len(), self.len(), k)
    }

    /// Insert `s` before element `k` (`k == len`: at the tail).
    pub fn insert(&mut self, k: usize, s: &[u8]) {
        let at = self.offset_of(k);
        let es = entry_len(s.len());
        write_entry(self.splice(at, 0, es, 1), s);
    }

    pub fn push(&mut self, s: &[u8], front: bool) {
        self.insert(if front { 0 } else { self.len() }, s)
    }

    pub fn pop(&mut self, front: bool) -> Option<SmallBytes> {
        let buf = self.entries();
        if buf.is_empty() {
            return None;
        }
        let (s, e, start, next) = if front {
            let (s, e, next) = read_forward(buf, 0);
            (s, e, 0, next)
        } else {
            let (s, e, start) = read_backward(buf, buf.len());
            (s, e, start, buf.len())
        };
        let v = SmallBytes::new(&buf[s..e]);
        self.splice(start, next - start, 0, -1);
        Some(v)
    }

    pub fn front(&self) -> Option<&[u8]> {
        let buf = self.entries();
        (!buf.is_empty()).then(|| {
            let (s, e, _) = read_forward(buf, 0);
            &buf[s..e]
        })
    }

    pub fn back(&self) -> Option<&[u8]> {
        let buf = self.entries();
        (!buf.is_empty()).then(|| {
            let (s, e, _) = read_backward(buf, buf.len());
            &buf[s..e]
        })
    }

    /// Element `k`, if there is one.
    pub fn get(&self, k: usize) -> Option<&[u8]> {
        (k < self.len()).then(|| {
            let buf = self.entries();
            let (s, e, _) = read_forward(buf, self.offset_of(k));
            &buf[s..e]
        })
    }

    /// Replace element `k` (< len).
    pub fn set(&mut self, k: usize, s: &[u8]) {
        let at = self.offset_of(k);
        let old = read_forward(self.entries(), at).2 - at;
        write_entry(self.splice(at, old, entry_len(s.len()), 0), s);
    }

    /// Remove the elements at `indexes` (ascending, each < len) in one pass.
    pub fn remove_indexes(&mut self, indexes: &[usize]) {
        let count = self.len() - indexes.len();
        self.buf.set_count(count);
        self.buf.edit(0, |v| {
            let (mut doomed, mut k) = (indexes.iter().copied().peekable(), 0);
            let end = v.len();
            let (to, _) = retain_entries(v, HEADER, end, || {
                let gone = doomed.next_if_eq(&k).is_some();
                k += 1;
                !gone
            });
            v.truncate(to);
        });
    }

    pub fn iter(&self) -> Iter<'_> {
        let buf = self.entries();
        Iter { buf, pos: 0, back: Some(buf.len()), remaining: self.len() }
    }

    /// `n` elements from element `first` (first + n <= len).
    pub fn range(&self, first: usize, n: usize) -> Iter<'_> {
        let pos = if n == 0 { 0 } else { self.offset_of(first) };
        let back = (first + n == self.len()).then_some(self.entries().len());
        Iter { buf: self.entries(), pos, back, remaining: n }
    }
}

fn header_field(n: usize) -> [u8; HEADER] {
    u32::try_from(n).expect("a listpack-encoded list's size fits in 32 bits").to_le_bytes()
}

/// Elements of a [`ThinList`] in order, from either end.
#[derive(Clone)]
pub struct Iter<'a> {
    buf: &'a [u8],
    /// The next entry from the front.
    pos: usize,
    /// The end of the next entry from the back, found (walking on from the front) when first
    /// needed.
    back: Option<usize>,
    remaining: usize,
}

impl<'a> Iterator for Iter<'a> {
    type Item = &'a [u8];

    #[inline]
    fn next(&mut self) -> Option<&'a [u8]> {
        if self.remaining == 0 {
            return None;
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
        let end = match self.back {
            Some(end) => end,
            // The back ends `remaining` entries after the front.
            None => (0..self.remaining).fold(self.pos, |pos, _| read_forward(self.buf, pos).2),
        };
        let (s, e, start) = read_backward(self.buf, end);
        self.back = Some(start);
        self.remaining -= 1;
        Some(&self.buf[s..e])
    }
}

impl ExactSizeIterator for Iter<'_> {}

#[cfg(test)]
mod tests {
    use super::*;

    fn items(l: &ThinList) -> Vec<Vec<u8>> {
        l.iter().map(<[u8]>::to_vec).collect()
    }

    #[test]
    fn edits_at_either_end_and_in_the_middle() {
        let mut l = ThinList::new(7);
        assert_eq!((l.len(), l.pop(true), l.front(), l.back()), (0, None, None, None));
        l.push(b"b", false);
        l.push(b"a", true);
        l.push(&[b'c'; 300], false);
        l.insert(1, b"x");
        assert_eq!(items(&l), [b"a".to_vec(), b"x".to_vec(), b"b".to_vec(), vec![b'c'; 300]]);
        l.set(1, b"yy");
        assert_eq!(l.get(1), Some(&b"yy"[..]));
        assert_eq!(l.get(4), None);
        assert_eq!(l.back(), Some(&[b'c'; 300][..]));
        assert_eq!(l.pop(false).as_deref(), Some(&[b'c'; 300][..]));
        l.remove_indexes(&[0, 2]);
        assert_eq!(items(&l), [b"yy".to_vec()]);
        assert_eq!((l.len(), l.lp_bytes()), (1, 7));
        l.set_lp_bytes(12);
        assert_eq!(l.clone().lp_bytes(), 12);
        assert_eq!(l.heap_size(), HEADER + 4);
    }

    #[test]
    fn ranges_from_either_end() {
        let words: Vec<Vec<u8>> = (0..20).map(|i| format!("w{i}").repeat(i % 3 * 50 + 1).into_bytes()).collect();
        let l = ThinList::collect(0, words.iter().map(|w| &w[..]));
        assert_eq!(l.len(), 20);
        for (first, n) in [(0, 20), (3, 10), (19, 1), (5, 0), (0, 1), (10, 10)] {
            let want: Vec<&[u8]> = words[first..first + n].iter().map(|w| &w[..]).collect();
            assert_eq!(l.range(first, n).collect::<Vec<_>>(), want);
            let back: Vec<&[u8]> = l.range(first, n).rev().collect();
            assert_eq!(back, want.iter().rev().copied().collect::<Vec<_>>());
            let mut it = l.range(first, n);
            if n >= 2 {
                assert_eq!((it.next(), it.next_back(), it.len()), (Some(want[0]), Some(want[n - 1]), n - 2));
            }
        }
    }
}
