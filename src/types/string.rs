//! The string type and its three encodings, named as OBJECT ENCODING reports them:
//! `int` (a canonical decimal integer held as an i64), `embstr` (an immutable short string,
//! <= 44 bytes, as created by SET) and `raw` (any other string, or one modified in place by
//! APPEND/SETRANGE, kept with spare capacity so appends are amortised O(1)).
//!
//! A `StrValue` is 24 bytes, with its tag in [`SmallBytes`]'s spare tag values, so that a
//! keyspace entry fits a 64-byte allocator block (see the size test in `types/mod.rs`): the
//! `raw` buffer sits behind one more pointer, as Redis's sds does behind its robj.
//!
//! A big value SET from a request that is its read buffer's whole allocation is kept as that
//! argument (`Shared`, also reported `raw`), as Redis keeps a big argument's sds as the value:
//! no copy, so a 256 MB SET does not hold 512 MB for a moment. It is copied into a `raw`
//! buffer the first time it is changed in place.

use super::SmallBytes;
use crate::util::num::parse_i64;

/// Longest string Redis stores with the `embstr` encoding.
pub const EMBSTR_MAX: usize = 44;

#[derive(Clone, Debug, Eq)]
pub enum StrValue {
    Int(i64),
    Embstr(SmallBytes),
    // Boxed: a bare Vec (24 bytes) would make every value, and so every keyspace entry, 8 bytes
    // bigger. Raw strings are the long or mutated ones, for which one more pointer is cheap.
    #[allow(clippy::box_collection)]
    Raw(Box<Vec<u8>>),
    /// A big argument kept as it is (see the module's doc): read-only.
    Shared(Box<bytes::Bytes>),
}

/// Equal when of the same encoding with the same contents (a kept argument is `raw`).
impl PartialEq for StrValue {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (StrValue::Int(a), StrValue::Int(b)) => a == b,
            (StrValue::Embstr(a), StrValue::Embstr(b)) => a == b,
            (StrValue::Raw(_) | StrValue::Shared(_), StrValue::Raw(_) | StrValue::Shared(_)) => {
                self.to_bytes() == other.to_bytes()
            }
            _ => false,
        }
    }
}

impl StrValue {
    /// Build a string value the way SET does (Redis's tryObjectEncoding): integers that
    /// round-trip exactly become `int`, short strings `embstr`, the rest `raw`.
    pub fn from_bytes(b: &[u8]) -> Self {
        if b.len() <= 20 {
            if let Some(n) = parse_i64(b) {
                return StrValue::Int(n);
            }
        }
        if b.len() <= EMBSTR_MAX {
            StrValue::Embstr(SmallBytes::new(b))
        } else {
            StrValue::Raw(Box::new(b.to_vec()))
        }
    }

    /// A big argument kept as it is (the caller knows its allocation holds little else: see
    /// `protocol::parser::Framing`); `raw` to OBJECT ENCODING.
    pub fn shared(arg: bytes::Bytes) -> Self {
        StrValue::Shared(Box::new(arg))
    }

    /// A string as a mutated value is kept: always `raw`.
    pub fn raw(b: Vec<u8>) -> Self {
        StrValue::Raw(Box::new(b))
    }

    pub fn encoding(&self) -> &'static str {
        match self {
            StrValue::Int(_) => "int",
            StrValue::Embstr(_) => "embstr",
            StrValue::Raw(_) | StrValue::Shared(_) => "raw",
        }
    }

    /// The bytes of the string (integers are formatted).
    pub fn to_bytes(&self) -> std::borrow::Cow<'_, [u8]> {
        match self {
            StrValue::Int(n) => std::borrow::Cow::Owned(itoa::Buffer::new().format(*n).as_bytes().to_vec()),
            StrValue::Embstr(b) => std::borrow::Cow::Borrowed(b),
            StrValue::Raw(b) => std::borrow::Cow::Borrowed(b),
            StrValue::Shared(b) => std::borrow::Cow::Borrowed(b),
        }
    }

    pub fn len(&self) -> usize {
        match self {
            StrValue::Int(n) => itoa::Buffer::new().format(*n).len(),
            StrValue::Embstr(b) => b.len(),
            StrValue::Raw(b) => b.len(),
            StrValue::Shared(b) => b.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The value as an integer, if it is one (Redis's getLongLongFromObject).
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            StrValue::Int(n) => Some(*n),
            StrValue::Embstr(b) => parse_i64(b),
            StrValue::Raw(b) => parse_i64(b),
            StrValue::Shared(b) => parse_i64(b),
        }
    }

    /// Turn into a mutable `raw` buffer (for APPEND and SETRANGE).
    pub fn make_raw(&mut self) -> &mut Vec<u8> {
        if !matches!(self, StrValue::Raw(_)) {
            *self = StrValue::raw(self.to_bytes().into_owned());
        }
        match self {
            StrValue::Raw(v) => v,
            _ => unreachable!("just converted to raw"),
        }
    }

    /// Approximate heap bytes used, for MEMORY USAGE / INFO estimates.
    pub fn heap_size(&self) -> usize {
        match self {
            StrValue::Int(_) => 0,
            StrValue::Embstr(b) => b.heap_size(),
            StrValue::Raw(v) => std::mem::size_of::<Vec<u8>>() + v.capacity(),
            StrValue::Shared(b) => std::mem::size_of::<bytes::Bytes>() + b.len(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodings_follow_redis() {
        assert_eq!(StrValue::from_bytes(b"123").encoding(), "int");
        assert_eq!(StrValue::from_bytes(b"-9223372036854775808").encoding(), "int");
        assert_eq!(StrValue::from_bytes(b"0123").encoding(), "embstr");
        assert_eq!(StrValue::from_bytes(b" 1").encoding(), "embstr");
        assert_eq!(StrValue::from_bytes(&[b'a'; 44]).encoding(), "embstr");
        assert_eq!(StrValue::from_bytes(&[b'a'; 45]).encoding(), "raw");
        let mut v = StrValue::from_bytes(b"12");
        v.make_raw().extend_from_slice(b"3");
        assert_eq!(v, StrValue::raw(b"123".to_vec()));
        assert_eq!(v.as_i64(), Some(123));
    }

    #[test]
    fn a_kept_argument_is_raw_until_changed_then_a_copy() {
        let arg = bytes::Bytes::from(vec![b'x'; 100]);
        let mut v = StrValue::shared(arg.slice(10..60));
        assert_eq!(v.encoding(), "raw");
        assert_eq!(v.len(), 50);
        assert_eq!(v, StrValue::raw(vec![b'x'; 50]));
        v.make_raw().push(b'y');
        assert!(matches!(v, StrValue::Raw(_)));
        assert_eq!(v.len(), 51);
        assert_eq!(arg.len(), 100, "the argument is untouched");
    }
}
