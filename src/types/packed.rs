//! A compact sequence of byte strings in one allocation, the role Redis's listpack plays for
//! small collections: each entry is a LEB128 length followed by its bytes, so a 2-byte field
//! costs 3 bytes instead of a 24-byte slot. Lookups are linear scans, which is what small
//! encodings are for (they convert to a hash table past the `*-max-listpack-*` limits).
//!
//! A `Packed` is one [`ThinBuf`] (16 bytes, exactly sized, the entry count in its spare
//! field), so `HashValue` and `SetValue` are 16 bytes too and sit in a keyspace entry without a
//! box of their own.

use super::thin_buf::{OverThinBuf, ThinBuf};
use crate::util::leb128;

/// (Transparent, so that `SetValue` can lend its `ThinBuf` as a `Packed`: [`OverThinBuf`]. Its
/// buffer is untagged, `Tag::Zero`.)
#[derive(Clone, Default)]
#[repr(transparent)]
pub struct Packed {
    /// The entries; its `meta` counts them, `u16::MAX` meaning that many or more (then
    /// counted by a walk).
    buf: ThinBuf,
}

// SAFETY: Packed is a transparent wrapper of ThinBuf.
unsafe impl OverThinBuf for Packed {}

impl PartialEq for Packed {
    fn eq(&self, other: &Self) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for Packed {}

/// Bytes `encode` writes for an entry of `len` bytes.
fn encoded_len(len: usize) -> usize {
    leb128::len(len) + len
}

fn encode(out: &mut Vec<u8>, s: &[u8]) {
    leb128::push(out, s.len());
    out.extend_from_slice(s);
}

/// Bytes an entry of `len` bytes takes in a [`Packed`] (what a [`Builder`] is sized by).
pub fn entry_bytes(len: usize) -> usize {
    encoded_len(len)
}

/// The most entries a caller should push into a [`Builder`] while it finds duplicates with
/// [`Builder::contains`] (a scan of the entries before each, so quadratic; more go through a hash
/// table).
pub const SCANNED_MAX: usize = 128;

/// Builds a [`Packed`] in one allocation of the size its caller counted (an RDB loader, which
/// walked its listpack first), instead of growing the block entry by entry.
pub struct Builder {
    v: Vec<u8>,
    count: usize,
}

impl Builder {
    /// For entries taking `bytes` in all (the sum of their [`entry_bytes`]).
    pub fn with_bytes(bytes: usize) -> Self {
        Builder { v: Vec::with_capacity(bytes), count: 0 }
    }

    pub fn push(&mut self, s: &[u8]) {
        encode(&mut self.v, s);
        self.count += 1;
    }

    /// Whether an entry pushed so far equals `s` (every `step`-th entry, from the first: 2 looks
    /// at a hash's fields only).
    pub fn contains(&self, s: &[u8], step: usize) -> bool {
        (Iter { buf: &self.v, pos: 0 }).step_by(step).any(|e| e == s)
    }

    pub fn finish(self) -> Packed {
        debug_assert_eq!(self.v.len(), self.v.capacity(), "a builder is sized by its caller");
        Packed::from_vec(self.v, self.count)
    }
}

/// Iterator over the entries.
pub struct Iter<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Iterator for Iter<'a> {
    type Item = &'a [u8];
    fn next(&mut self) -> Option<&'a [u8]> {
        if self.pos >= self.buf.len() {
            return None;
        }
        let (len, start) = leb128::read(self.buf, self.pos);
        self.pos = start + len;
        Some(&self.buf[start..start + len])
    }
}

/// Redis's LISTPACK_MAX_SAFETY_SIZE: a compact encoding never grows past 1 GiB; a write that
/// would take it past converts it to the table encoding first (whatever the `*-max-listpack-*`
/// limits allow: set to 1 GB, they let a few 500 MB entries in).
pub const SAFETY_BYTES: usize = 1 << 30;

/// Whether an encoding that can hold at most `bound` bytes under its `*-max-listpack-*` limits,
/// and holds `held()` bytes now, takes `add` more within [`SAFETY_BYTES`]; `held` is counted only
/// where the limits let the encoding get there (for encodings without a byte count of their own).
pub fn takes(bound: usize, add: usize, held: impl FnOnce() -> usize) -> bool {
    bound.saturating_add(add) <= SAFETY_BYTES || held().saturating_add(add) <= SAFETY_BYTES
}

impl Packed {
    pub fn new() -> Self {
        Packed::default()
    }

    pub fn into_buf(self) -> ThinBuf {
        self.buf
    }

    fn from_vec(v: Vec<u8>, count: usize) -> Self {
        let mut buf = ThinBuf::new(v, 0);
        buf.set_count(count);
        Packed { buf }
    }

    /// The encoded bytes.
    fn as_bytes(&self) -> &[u8] {
        self.buf.bytes()
    }

    /// Edit the bytes as a vector with room for `extra` more, then store them exactly again.
    /// `count` is the entry count afterwards (from the one before, which `f` receives).
    fn edit<R>(&mut self, extra: usize, f: impl FnOnce(&mut Vec<u8>, &mut usize) -> R) -> R {
        let mut count = self.len();
        let r = self.buf.edit(extra, |v| f(v, &mut count));
        self.buf.set_count(count);
        r
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.buf.count(|| self.iter().count())
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Bytes of payload (for memory accounting).
    pub fn bytes(&self) -> usize {
        self.buf.len()
    }

    /// Whether `add` more bytes of entries keep this within [`SAFETY_BYTES`] (Redis's
    /// lpSafeToAdd).
    pub fn fits(&self, add: usize) -> bool {
        self.bytes().saturating_add(add) <= SAFETY_BYTES
    }

    pub fn iter(&self) -> Iter<'_> {
        Iter { buf: self.as_bytes(), pos: 0 }
    }

    pub fn push(&mut self, s: &[u8]) {
        self.edit(encoded_len(s.len()), |v, count| {
            encode(v, s);
            *count += 1;
        });
    }

    /// Byte ranges (start of the length prefix, end) of every entry.
    fn spans(&self) -> impl Iterator<Item = (usize, usize, usize)> + '_ {
        let buf = self.as_bytes();
        let mut pos = 0;
        std::iter::from_fn(move || {
            if pos >= buf.len() {
                return None;
            }
            let (len, start) = leb128::read(buf, pos);
            let item = (pos, start, start + len);
            pos = start + len;
            Some(item)
        })
    }

    /// The entry at `index`, if any.
    pub fn get(&self, index: usize) -> Option<&[u8]> {
        self.iter().nth(index)
    }

    /// Whether some entry equals `s`.
    pub fn contains(&self, s: &[u8]) -> bool {
        self.iter().any(|e| e == s)
    }

    /// Remove the first entry equal to `s`. Returns whether there was one.
    pub fn remove(&mut self, s: &[u8]) -> bool {
        let buf = self.as_bytes();
        let found = self.spans().find(|&(_, a, b)| &buf[a..b] == s);
        match found {
            Some((start, _, end)) => {
                self.edit(0, |v, count| {
                    v.drain(start..end);
                    *count -= 1;
                });
                true
            }
            None => false,
        }
    }

    /// Remove the entries at `indexes` (ascending, distinct), keeping the others in order.
    pub fn remove_indexes(&mut self, indexes: &[usize]) {
        if indexes.is_empty() {
            return;
        }
        let mut out = Vec::with_capacity(self.as_bytes().len());
        let mut kept = 0;
        let mut next = indexes.iter().peekable();
        for (i, e) in self.iter().enumerate() {
            if next.peek() == Some(&&i) {
                next.next();
            } else {
                encode(&mut out, e);
                kept += 1;
            }
        }
        *self = Packed::from_vec(out, kept);
    }

    /// Treating entries as (field, value) pairs: the value of `field`.
    pub fn pair_get(&self, field: &[u8]) -> Option<&[u8]> {
        let mut it = self.iter();
        while let (Some(f), Some(v)) = (it.next(), it.next()) {
            if f == field {
                return Some(v);
            }
        }
        None
    }

    /// Byte offsets of the pair whose field is `field`: (field start, value start, value end).
    fn find_pair(&self, field: &[u8]) -> Option<(usize, usize, usize)> {
        let buf = self.as_bytes();
        let mut spans = self.spans();
        while let (Some((fstart, fs, fe)), Some((vstart, _, vend))) = (spans.next(), spans.next()) {
            if &buf[fs..fe] == field {
                return Some((fstart, vstart, vend));
            }
        }
        None
    }

    /// Set a pair's value (appending the pair when new). Returns true if the field was new.
    pub fn pair_set(&mut self, field: &[u8], value: &[u8]) -> bool {
        match self.find_pair(field) {
            Some((_, vstart, vend)) => {
                let mut enc = Vec::with_capacity(encoded_len(value.len()));
                encode(&mut enc, value);
                if enc.len() == vend - vstart {
                    self.buf.bytes_mut()[vstart..vend].copy_from_slice(&enc);
                    return false;
                }
                self.edit(enc.len().saturating_sub(vend - vstart), |v, _| {
                    v.splice(vstart..vend, enc);
                });
                false
            }
            None => {
                self.edit(encoded_len(field.len()) + encoded_len(value.len()), |v, count| {
                    encode(v, field);
                    encode(v, value);
                    *count += 2;
                });
                true
            }
        }
    }

    /// Remove a pair. Returns whether it existed.
    pub fn pair_remove(&mut self, field: &[u8]) -> bool {
        match self.find_pair(field) {
            Some((a, _, b)) => {
                self.edit(0, |v, count| {
                    v.drain(a..b);
                    *count -= 2;
                });
                true
            }
            None => false,
        }
    }
}

impl std::fmt::Debug for Packed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter().map(String::from_utf8_lossy)).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_behave_like_a_map() {
        let mut p = Packed::new();
        assert!(p.pair_set(b"f", b"1"));
        assert!(p.pair_set(b"g", &[b'x'; 300]));
        assert!(!p.pair_set(b"f", b"22"));
        assert_eq!(p.pair_get(b"f"), Some(&b"22"[..]));
        assert!(!p.pair_set(b"f", b"33"));
        assert_eq!(p.pair_get(b"f"), Some(&b"33"[..]));
        assert!(!p.pair_set(b"f", b"22"));
        assert_eq!(p.pair_get(b"g").map(|v| v.len()), Some(300));
        assert_eq!(p.len(), 4);
        assert!(p.pair_remove(b"f"));
        assert!(!p.pair_remove(b"f"));
        assert_eq!(p.iter().collect::<Vec<_>>(), vec![&b"g"[..], &[b'x'; 300][..]]);
        assert!(p.pair_set(b"", b""));
        assert_eq!(p.pair_get(b""), Some(&b""[..]));
    }

    #[test]
    fn sixteen_bytes_with_room_for_a_tag() {
        use std::mem::size_of;
        assert_eq!(size_of::<Packed>(), 16);
        assert_eq!(size_of::<Option<Packed>>(), 16);
        enum Around {
            _A(Packed),
            _B(Box<u8>),
            _C(Box<u8>),
            _D(Box<u8>),
        }
        assert_eq!(size_of::<Around>(), 16);
    }

    #[test]
    fn counts_past_what_the_count_field_holds() {
        let mut p = Packed::new();
        for i in 0..70_000u32 {
            p.push(&i.to_le_bytes()[..2]);
        }
        assert_eq!(p.len(), 70_000);
        assert!(p.remove(&[0, 0]));
        assert_eq!(p.len(), 69_999);
        p.remove_indexes(&(0..5000).collect::<Vec<_>>());
        assert_eq!(p.len(), 64_999);
        assert_eq!(p.get(0), Some(&5001u32.to_le_bytes()[..2]));
        let q = p.clone();
        assert_eq!(q, p);
        assert_eq!(q.len(), 64_999);
        assert!(!Packed::new().contains(b""));
    }

    #[test]
    fn fits_within_one_gib() {
        let mut p = Packed::new();
        p.push(b"abc");
        assert!(p.fits(SAFETY_BYTES - 4));
        assert!(!p.fits(SAFETY_BYTES - 3));
        assert!(!p.fits(usize::MAX));
    }

    #[test]
    fn single_entries() {
        let mut p = Packed::new();
        for e in ["a", "bb", "", "ccc", "bb"] {
            p.push(e.as_bytes());
        }
        assert!(p.contains(b"") && p.contains(b"ccc") && !p.contains(b"c"));
        assert_eq!(p.get(3), Some(&b"ccc"[..]));
        assert!(p.remove(b"bb"));
        assert_eq!(p.iter().collect::<Vec<_>>(), vec![&b"a"[..], b"", b"ccc", b"bb"]);
        p.remove_indexes(&[0, 2]);
        assert_eq!(p.iter().collect::<Vec<_>>(), vec![&b""[..], b"bb"]);
        assert_eq!(p.len(), 2);
        assert!(!p.remove(b"zz"));
    }
}
