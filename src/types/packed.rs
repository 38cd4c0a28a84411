//! A compact sequence of byte strings in one allocation, the role Redis's listpack plays for
//! small collections: each entry is a LEB128 length followed by its bytes, so a 2-byte field
//! costs 3 bytes instead of a 24-byte slot. Lookups are linear scans, which is what small
//! encodings are for (they convert to a hash table past the `*-max-listpack-*` limits).

#[derive(Clone, Default, PartialEq, Eq)]
pub struct Packed {
    buf: Vec<u8>,
    count: u32,
}

fn read_len(buf: &[u8], mut pos: usize) -> (usize, usize) {
    let mut len = 0usize;
    let mut shift = 0;
    loop {
        let b = buf[pos];
        pos += 1;
        len |= ((b & 0x7f) as usize) << shift;
        if b & 0x80 == 0 {
            return (len, pos);
        }
        shift += 7;
    }
}

/// Bytes `encode` writes for an entry of `len` bytes.
fn encoded_len(len: usize) -> usize {
    let mut prefix = 1;
    let mut n = len >> 7;
    while n > 0 {
        prefix += 1;
        n >>= 7;
    }
    prefix + len
}

fn encode(out: &mut Vec<u8>, s: &[u8]) {
    let mut n = s.len();
    loop {
        let b = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(b);
            break;
        }
        out.push(b | 0x80);
    }
    out.extend_from_slice(s);
}

/// Bytes up to which [`reserve_tight`] grows a buffer exactly.
const TIGHT_MAX: usize = 64 << 10;

/// Make room for `extra` more elements in a small collection's buffer: exactly while the buffer
/// is small (at most [`TIGHT_MAX`] bytes), by doubling past that. Small collections are many,
/// and a doubled buffer wastes up to half of each. Exact growth is not quadratic here: the
/// allocator rounds a block up to its size class (mimalloc has four per doubling), so a
/// reallocation that still fits the block moves nothing and a buffer is copied only when it
/// outgrows its class. Past `TIGHT_MAX` classes are coarse (whole pages) and doubling is cheaper.
pub fn reserve_tight<T>(v: &mut Vec<T>, extra: usize) {
    if (v.len() + extra) * std::mem::size_of::<T>() <= TIGHT_MAX {
        v.reserve_exact(extra);
    } else {
        v.reserve(extra);
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
        let (len, start) = read_len(self.buf, self.pos);
        self.pos = start + len;
        Some(&self.buf[start..start + len])
    }
}

impl Packed {
    pub fn new() -> Self {
        Packed::default()
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.count as usize
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Bytes of payload (for memory accounting).
    pub fn bytes(&self) -> usize {
        self.buf.capacity()
    }

    pub fn iter(&self) -> Iter<'_> {
        Iter { buf: &self.buf, pos: 0 }
    }

    pub fn push(&mut self, s: &[u8]) {
        self.grow(encoded_len(s.len()));
        encode(&mut self.buf, s);
        self.count += 1;
    }

    /// Byte ranges (start of the length prefix, end) of every entry.
    fn spans(&self) -> impl Iterator<Item = (usize, usize, usize)> + '_ {
        let mut pos = 0;
        std::iter::from_fn(move || {
            if pos >= self.buf.len() {
                return None;
            }
            let (len, start) = read_len(&self.buf, pos);
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
        let found = self.spans().find(|&(_, a, b)| &self.buf[a..b] == s);
        match found {
            Some((start, _, end)) => {
                self.buf.drain(start..end);
                self.count -= 1;
                self.compact();
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
        let mut out = Packed::new();
        let mut next = indexes.iter().peekable();
        for (i, e) in self.iter().enumerate() {
            if next.peek() == Some(&&i) {
                next.next();
            } else {
                out.push(e);
            }
        }
        out.compact();
        *self = out;
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
        let mut spans = self.spans();
        while let (Some((fstart, fs, fe)), Some((vstart, _, vend))) = (spans.next(), spans.next()) {
            if &self.buf[fs..fe] == field {
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
                    self.buf[vstart..vend].copy_from_slice(&enc);
                    return false;
                }
                self.grow(enc.len().saturating_sub(vend - vstart));
                self.buf.splice(vstart..vend, enc);
                self.compact();
                false
            }
            None => {
                self.grow(encoded_len(field.len()) + encoded_len(value.len()));
                self.push(field);
                self.push(value);
                true
            }
        }
    }

    /// Remove a pair. Returns whether it existed.
    pub fn pair_remove(&mut self, field: &[u8]) -> bool {
        match self.find_pair(field) {
            Some((a, _, b)) => {
                self.buf.drain(a..b);
                self.count -= 2;
                self.compact();
                true
            }
            None => false,
        }
    }

    /// Make room for `extra` more bytes (exactly, while small: see [`reserve_tight`]).
    fn grow(&mut self, extra: usize) {
        reserve_tight(&mut self.buf, extra);
    }

    /// Give back the slack a removal left. Into a fresh block rather than by `shrink_to_fit`:
    /// mimalloc (like most allocators) keeps a block that shrinks by less than half where it is,
    /// so a shrinking reallocation would release nothing.
    fn compact(&mut self) {
        if self.buf.capacity() > self.buf.len() + self.buf.len() / 4 + 8 {
            self.buf = self.buf.as_slice().to_vec();
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
        assert_eq!(p.pair_get(b"g").map(|v| v.len()), Some(300));
        assert_eq!(p.len(), 4);
        assert!(p.pair_remove(b"f"));
        assert!(!p.pair_remove(b"f"));
        assert_eq!(p.iter().collect::<Vec<_>>(), vec![&b"g"[..], &[b'x'; 300][..]]);
        assert!(p.pair_set(b"", b""));
        assert_eq!(p.pair_get(b""), Some(&b""[..]));
    }

    #[test]
    fn buffers_stay_exact() {
        let mut p = Packed::new();
        for i in 0..40 {
            p.pair_set(format!("field{i}").as_bytes(), b"val00000");
            assert_eq!(p.buf.capacity(), p.buf.len(), "after {i} inserts");
        }
        p.pair_set(b"field3", &[b'x'; 200]);
        assert_eq!(p.buf.capacity(), p.buf.len());
        for i in 0..30 {
            p.pair_remove(format!("field{i}").as_bytes());
        }
        assert!(p.buf.capacity() <= p.buf.len() + p.buf.len() / 4 + 8);
        let mut s = Packed::new();
        for i in 0..50 {
            s.push(format!("m{i}").as_bytes());
        }
        assert_eq!(s.buf.capacity(), s.buf.len());
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
