//! A set of integers in one exactly sized block (OBJECT ENCODING "intset"), as Redis's intset
//! keeps it: sorted, every value as wide as the widest needs (2, 4 or 8 bytes, little endian),
//! so ten small ids take 20 bytes where a vector of i64 took 80 and its doubling slack. The
//! width is the [`ThinBuf`]'s 16-bit field; a value that needs more widens them all, as
//! Redis's intsetUpgradeAndAdd does (sets of integers never narrow again, in Redis neither, and
//! DUMP and RDB write the width as it is, so the bytes are Redis's).

use super::thin_buf::{OverThinBuf, Tag, ThinBuf};

/// An intset's buffer carries this tag, a set listpack's the other (`SetValue` keeps either in
/// one `ThinBuf`).
pub const TAG: Tag = Tag::One;

/// (Transparent, so that `SetValue` can lend its `ThinBuf` as an `IntSet`: [`OverThinBuf`].)
#[derive(Clone)]
#[repr(transparent)]
pub struct IntSet {
    /// The values; `meta` is their width in bytes, the tag [`TAG`].
    buf: ThinBuf,
}

// SAFETY: IntSet is a transparent wrapper of ThinBuf.
unsafe impl OverThinBuf for IntSet {}

impl Default for IntSet {
    fn default() -> Self {
        IntSet { buf: ThinBuf::tagged(Vec::new(), 2, TAG) }
    }
}

/// The width `n` needs.
fn width_of(n: i64) -> usize {
    if i16::try_from(n).is_ok() {
        2
    } else if i32::try_from(n).is_ok() {
        4
    } else {
        8
    }
}

fn write(out: &mut [u8], n: i64) {
    out.copy_from_slice(&n.to_le_bytes()[..out.len()]);
}

impl IntSet {
    /// The set of `values`, sorted and distinct.
    pub fn from_sorted(values: &[i64]) -> IntSet {
        IntSet::from_sorted_wide(values, 2)
    }

    /// The set of `values`, sorted and distinct, at least `width` (2, 4 or 8) bytes wide: an
    /// intset loaded from a file keeps its width, as Redis keeps the blob.
    pub fn from_sorted_wide(values: &[i64], width: usize) -> IntSet {
        let w = values.iter().map(|&n| width_of(n)).fold(width, usize::max);
        let mut v = vec![0u8; values.len() * w];
        for (slot, &n) in v.chunks_exact_mut(w).zip(values) {
            write(slot, n);
        }
        IntSet { buf: ThinBuf::tagged(v, w as u16, TAG) }
    }

    pub fn into_buf(self) -> ThinBuf {
        self.buf
    }

    /// Bytes per value: 2, 4 or 8.
    pub fn width(&self) -> usize {
        self.buf.meta() as usize
    }

    /// The values as Redis's intset holds them after its header: little endian, `width` each.
    pub fn raw(&self) -> &[u8] {
        self.buf.bytes()
    }

    pub fn len(&self) -> usize {
        self.buf.len() / self.width()
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// The block's bytes.
    pub fn bytes(&self) -> usize {
        self.buf.len()
    }

    /// The value at `i` (< len).
    pub fn get(&self, i: usize) -> i64 {
        let w = self.width();
        let mut b = [0u8; 8];
        b[..w].copy_from_slice(&self.buf.bytes()[i * w..i * w + w]);
        let shift = 64 - 8 * w as u32;
        (i64::from_le_bytes(b) << shift) >> shift
    }

    pub fn first(&self) -> Option<i64> {
        (!self.is_empty()).then(|| self.get(0))
    }

    pub fn last(&self) -> Option<i64> {
        (!self.is_empty()).then(|| self.get(self.len() - 1))
    }

    /// Where `n` is (Ok) or would go (Err), as slice::binary_search.
    pub fn binary_search(&self, n: i64) -> Result<usize, usize> {
        let (mut lo, mut hi) = (0, self.len());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            match self.get(mid).cmp(&n) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => return Ok(mid),
            }
        }
        Err(lo)
    }

    pub fn contains(&self, n: i64) -> bool {
        self.binary_search(n).is_ok()
    }

    /// Add `n`; false if it was there.
    pub fn insert(&mut self, n: i64) -> bool {
        let pos = match self.binary_search(n) {
            Ok(_) => return false,
            Err(pos) => pos,
        };
        if width_of(n) > self.width() {
            let mut all: Vec<i64> = self.iter().collect();
            all.insert(pos, n);
            *self = IntSet::from_sorted(&all);
            return true;
        }
        let w = self.width();
        write(self.buf.splice(pos * w, 0, w), n);
        true
    }

    /// Remove the value at `i` (< len) and return it.
    pub fn remove_at(&mut self, i: usize) -> i64 {
        let n = self.get(i);
        let w = self.width();
        self.buf.splice(i * w, w, 0);
        n
    }

    /// Remove `n`; false if it was not there.
    pub fn remove(&mut self, n: i64) -> bool {
        match self.binary_search(n) {
            Ok(i) => {
                self.remove_at(i);
                true
            }
            Err(_) => false,
        }
    }

    /// The values in order.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = i64> + ExactSizeIterator + '_ {
        (0..self.len()).map(|i| self.get(i))
    }
}

impl std::fmt::Debug for IntSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    #[test]
    fn widens_as_values_need_and_reads_back_signs() {
        let mut s = IntSet::default();
        for n in [5, -3, 300] {
            assert!(s.insert(n));
        }
        assert!(!s.insert(5));
        assert_eq!((s.bytes(), s.iter().collect::<Vec<_>>()), (6, vec![-3, 5, 300]));
        assert!(s.insert(-70_000));
        assert_eq!((s.bytes(), s.first(), s.last()), (16, Some(-70_000), Some(300)));
        assert!(s.insert(i64::MIN));
        assert!(s.insert(i64::MAX));
        assert_eq!(s.iter().collect::<Vec<_>>(), [i64::MIN, -70_000, -3, 5, 300, i64::MAX]);
        assert_eq!(s.bytes(), 48);
        assert!(s.remove(5) && !s.remove(5));
        assert_eq!((s.remove_at(0), s.len(), s.contains(-3)), (i64::MIN, 4, true));
        assert_eq!(IntSet::from_sorted(&[-32768, 32767]).bytes(), 4);
        assert_eq!(IntSet::from_sorted(&[]).first(), None);
        let wide = IntSet::from_sorted_wide(&[1, 2], 8);
        assert_eq!((wide.width(), wide.raw().len(), wide.iter().collect::<Vec<_>>()), (8, 16, vec![1, 2]));
        assert_eq!(IntSet::view(&wide.clone().into_buf()).width(), 8);
    }

    proptest! {
        #[test]
        fn behaves_as_a_sorted_set(ops in proptest::collection::vec((any::<bool>(), prop_oneof![
            -50i64..50, any::<i16>().prop_map(i64::from), any::<i32>().prop_map(i64::from), any::<i64>()
        ]), 1..200)) {
            let mut s = IntSet::default();
            let mut model = BTreeSet::new();
            for (add, n) in ops {
                if add {
                    prop_assert_eq!(s.insert(n), model.insert(n));
                } else {
                    prop_assert_eq!(s.remove(n), model.remove(&n));
                }
                prop_assert_eq!(s.len(), model.len());
            }
            prop_assert!(s.iter().eq(model.iter().copied()));
            prop_assert!(s.iter().rev().eq(model.iter().rev().copied()));
            for &n in &model {
                prop_assert!(s.contains(n));
            }
        }
    }
}
