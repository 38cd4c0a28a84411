//! A byte string that stores up to [`INLINE_CAP`] bytes inline (no heap allocation, no pointer
//! to chase) and longer ones on the heap, in 24 bytes either way. Keys and short string values
//! are mostly this small, so the keyspace saves an allocation and a cache miss per key.
//! (Hand-written because the crates that do this are UTF-8 strings, not bytes.)

use std::ops::Deref;

pub const INLINE_CAP: usize = 22;

#[derive(Clone)]
pub enum SmallBytes {
    Inline(u8, [u8; INLINE_CAP]),
    Heap(Box<[u8]>),
}

impl SmallBytes {
    pub fn new(b: &[u8]) -> Self {
        if b.len() <= INLINE_CAP {
            let mut buf = [0u8; INLINE_CAP];
            buf[..b.len()].copy_from_slice(b);
            SmallBytes::Inline(b.len() as u8, buf)
        } else {
            SmallBytes::Heap(b.into())
        }
    }

    /// Bytes held on the heap (0 when inline), for memory accounting.
    pub fn heap_size(&self) -> usize {
        match self {
            SmallBytes::Inline(..) => 0,
            SmallBytes::Heap(b) => b.len(),
        }
    }
}

impl Deref for SmallBytes {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match self {
            SmallBytes::Inline(len, buf) => &buf[..*len as usize],
            SmallBytes::Heap(b) => b,
        }
    }
}

impl AsRef<[u8]> for SmallBytes {
    fn as_ref(&self) -> &[u8] {
        self
    }
}

impl From<&[u8]> for SmallBytes {
    fn from(b: &[u8]) -> Self {
        SmallBytes::new(b)
    }
}

impl PartialEq for SmallBytes {
    fn eq(&self, other: &Self) -> bool {
        **self == **other
    }
}

impl Eq for SmallBytes {}

impl std::fmt::Debug for SmallBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", String::from_utf8_lossy(self))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_and_heap_round_trip() {
        assert_eq!(std::mem::size_of::<SmallBytes>(), 24);
        for len in [0, 1, 21, 22, 23, 100] {
            let v: Vec<u8> = (0..len as u8).collect();
            let s = SmallBytes::new(&v);
            assert_eq!(&*s, &v[..]);
            assert_eq!(matches!(s, SmallBytes::Inline(..)), len <= INLINE_CAP);
        }
    }
}
