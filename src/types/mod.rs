//! Value types stored in the keyspace, independent of the server and the protocol.
//! Each type lives in its own module with its encodings; `Value` is the sum of them.

pub mod bitfield;
pub mod bits;
pub mod dict;
pub mod geo;
pub mod hash;
pub mod hash_index;
pub mod hash_ttl;
pub mod hll;
pub mod intset;
pub mod list;
pub mod list_packed;
pub mod list_shape;
mod list_thin;
pub mod packed;
pub mod probe_table;
pub mod set;
pub mod small_bytes;
pub mod stream;
pub mod string;
mod thin_buf;
pub mod zset;

pub use dict::Dict;
pub use hash::HashValue;
pub use list::ListValue;
pub use set::SetValue;
pub use small_bytes::SmallBytes;
pub use stream::StreamValue;
pub use string::StrValue;
pub use zset::ZSetValue;

/// A key holds a value of another type than the command works on (Redis's WRONGTYPE).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WrongType;

/// The value types a key can hold, for typed access to the keyspace
/// (`db.read::<HashValue>(key)`, `value.kind::<ZSetValue>()`).
pub trait Kind: Sized {
    fn of(v: &Value) -> Option<&Self>;
    fn of_mut(v: &mut Value) -> Option<&mut Self>;
    /// An empty value of this type, for a key a write creates.
    fn empty() -> Value;
    /// Whether a key holding this value must be deleted (an emptied collection).
    fn is_spent(&self) -> bool;
}

macro_rules! kind {
    ($ty:ty, $variant:ident, $empty:expr, $spent:expr) => {
        impl Kind for $ty {
            fn of(v: &Value) -> Option<&Self> {
                match v {
                    Value::$variant(x) => Some(x),
                    _ => None,
                }
            }
            fn of_mut(v: &mut Value) -> Option<&mut Self> {
                match v {
                    Value::$variant(x) => Some(x),
                    _ => None,
                }
            }
            fn empty() -> Value {
                $empty
            }
            fn is_spent(&self) -> bool {
                $spent(self)
            }
        }
    };
}

kind!(StrValue, Str, Value::Str(StrValue::from_bytes(b"")), |_: &StrValue| false);
kind!(ListValue, List, Value::List(ListValue::default()), |l: &ListValue| l.is_empty());
kind!(HashValue, Hash, Value::Hash(HashValue::default()), |h: &HashValue| h.is_empty());
kind!(SetValue, Set, Value::Set(SetValue::default()), |s: &SetValue| s.is_empty());
kind!(ZSetValue, ZSet, Value::ZSet(ZSetValue::default()), |z: &ZSetValue| z.is_empty());
// Streams are kept when empty, as in Redis.
kind!(stream::StreamValue, Stream, Value::Stream(Box::default()), |_: &stream::StreamValue| false);

/// A value stored under a key.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Str(StrValue),
    List(ListValue),
    // Collections live behind a pointer so that every entry (most of them strings) stays small.
    // Lists, hashes, sets and sorted sets are 16 bytes (a small one a thin buffer, the other
    // encodings boxed), so they need no box of their own: small collections are many.
    Hash(HashValue),
    Set(SetValue),
    ZSet(ZSetValue),
    Stream(Box<StreamValue>),
}

impl Value {
    /// The value as type `T`, or WRONGTYPE.
    pub fn kind<T: Kind>(&self) -> Result<&T, WrongType> {
        T::of(self).ok_or(WrongType)
    }

    pub fn kind_mut<T: Kind>(&mut self) -> Result<&mut T, WrongType> {
        T::of_mut(self).ok_or(WrongType)
    }

    /// The name TYPE reports.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Str(_) => "string",
            Value::List(_) => "list",
            Value::Hash(_) => "hash",
            Value::Set(_) => "set",
            Value::ZSet(_) => "zset",
            Value::Stream(_) => "stream",
        }
    }

    /// The string inside, if this is a string.
    pub fn as_str(&self) -> Option<&StrValue> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_str_mut(&mut self) -> Option<&mut StrValue> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// How many allocations freeing this value takes, as Redis's lazyfreeGetFreeEffort counts
    /// them (compact encodings are one block; a list counts its nodes).
    pub fn free_effort(&self) -> usize {
        match self {
            Value::Str(_) => 1,
            Value::List(l) => l.len().div_ceil(128).max(1),
            Value::Hash(h) if h.encoding() == "hashtable" => h.len(),
            Value::Set(s) if s.encoding() == "hashtable" => s.len(),
            Value::ZSet(z) if z.encoding() == "skiplist" => z.len(),
            Value::Stream(s) => s.free_effort(),
            _ => 1,
        }
    }

    /// An estimate of the bytes this value occupies (MEMORY USAGE): payload plus per-element
    /// bookkeeping of its representation.
    pub fn memory_usage(&self) -> usize {
        use std::mem::size_of;
        const SMALL: usize = small_bytes::INLINE_CAP;
        let elem = |len: usize| if len <= SMALL { 24 } else { 24 + len };
        match self {
            Value::Str(s) => 16 + s.heap_size(),
            // The listpack's block, or the quicklist's box and nodes.
            Value::List(l) => size_of::<ListValue>() + l.heap_size(),
            // A compact encoding is its value and its one buffer (as Redis counts
            // the object header and the listpack's allocation); tables count their entries.
            Value::Hash(h) => match h {
                HashValue::Listpack(p) => size_of::<HashValue>() + p.bytes(),
                _ => {
                    let mut n = 48;
                    h.for_each(|f, v| n += elem(f.len()) + elem(v.len()) + 16);
                    n
                }
            },
            Value::Set(s) => match s.enc() {
                set::Enc::Listpack(p) => size_of::<SetValue>() + p.bytes(),
                set::Enc::Intset(v) => size_of::<SetValue>() + v.bytes(),
                set::Enc::Table(_) => {
                    let mut n = 48;
                    s.for_each(|m| n += elem(m.len()) + 16);
                    n
                }
            },
            Value::ZSet(z) => match z.listpack_bytes() {
                Some(bytes) => size_of::<ZSetValue>() + bytes,
                None => {
                    let mut n = 64;
                    z.for_each(|m, _| n += elem(m.len()) + 40);
                    n
                }
            },
            Value::Stream(s) => s.memory_usage(),
        }
    }

    /// Adds the value to a key's digest as Redis's DEBUG DIGEST does (its type code, then its
    /// contents; the caller adds the key name before and the expiry mark after), so that
    /// digests equal Redis's: strings and list elements mixed in order, set members xored,
    /// each hash field and sorted-set member digested on its own (with its TTL mark, or its
    /// score as Redis 7.2 prints it) and xored, stream entries mixed in order.
    pub fn add_to_digest(&self, digest: &mut [u8; 20]) {
        use crate::util::digest::{mix_digest, xor_digest};
        // Redis's object type numbers (OBJ_STRING .. OBJ_STREAM), big-endian.
        let code: u32 = match self {
            Value::Str(_) => 0,
            Value::List(_) => 1,
            Value::Set(_) => 2,
            Value::ZSet(_) => 3,
            Value::Hash(_) => 4,
            Value::Stream(_) => 6,
        };
        mix_digest(digest, &code.to_be_bytes());
        match self {
            Value::Str(s) => mix_digest(digest, &s.to_bytes()),
            Value::List(l) => l.iter().for_each(|e| mix_digest(digest, e)),
            Value::Set(s) => s.for_each(|m| xor_digest(digest, m)),
            Value::ZSet(z) => {
                let mut score = Vec::with_capacity(32);
                z.for_each(|m, s| {
                    let mut one = [0u8; 20];
                    mix_digest(&mut one, m);
                    score.clear();
                    crate::util::dtoa::fpconv_dtoa(s, &mut score);
                    mix_digest(&mut one, &score);
                    xor_digest(digest, &one);
                });
            }
            Value::Hash(h) => h.for_each_with_ttl(|f, v, ttl| {
                let mut one = [0u8; 20];
                mix_digest(&mut one, f);
                mix_digest(&mut one, v);
                if ttl.is_some() {
                    // As Redis 7.4, which has hash-field expiry, marks a field with a TTL.
                    xor_digest(&mut one, b"!!hexpire!!");
                }
                xor_digest(digest, &one);
            }),
            Value::Stream(st) => {
                // Entries only, as Redis: its digest covers neither groups nor metadata.
                for e in st.range(stream::StreamId::MIN, stream::StreamId::MAX, false) {
                    mix_digest(digest, format!("{}.{}", e.id.ms, e.id.seq).as_bytes());
                    for (f, v) in e.fields() {
                        mix_digest(digest, &f.to_vec());
                        mix_digest(digest, &v.to_vec());
                    }
                }
            }
        }
    }

    /// The earliest field TTL of a hash (None: not a hash, or no field has a TTL).
    pub fn earliest_field_ttl(&self) -> Option<i64> {
        match self {
            Value::Hash(h) => h.min_ttl(),
            _ => None,
        }
    }

    /// The name OBJECT ENCODING reports.
    pub fn encoding(&self) -> &'static str {
        match self {
            Value::Str(s) => s.encoding(),
            Value::List(v) => v.encoding(),
            Value::Hash(v) => v.encoding(),
            Value::Set(v) => v.encoding(),
            Value::ZSet(v) => v.encoding(),
            Value::Stream(_) => "stream",
        }
    }
}

/// One keyspace entry: the value plus its access metadata (LRU clock, for OBJECT IDLETIME).
#[derive(Clone, Debug)]
pub struct Entry {
    pub value: Value,
    /// Last access time in seconds since the server started, truncated (like Redis's LRU clock).
    pub lru: u32,
    /// Whether the key has a TTL, which its database's TTL index holds (kept by the keyspace
    /// alone: a key without one costs no second lookup, and the index can key keys by hash).
    /// In the padding after `lru`: the entry stays 32 bytes.
    ttl: bool,
}

impl Entry {
    pub fn new(value: Value, lru: u32) -> Self {
        Entry { value, lru, ttl: false }
    }

    pub fn has_ttl(&self) -> bool {
        self.ttl
    }

    /// For the keyspace, which keeps the flag and its TTL index in step.
    pub(crate) fn mark_ttl(&mut self, ttl: bool) {
        self.ttl = ttl;
    }
}

#[cfg(test)]
mod size_tests {
    #[test]
    fn values_stay_small() {
        // Every key's entry embeds a Value: keep it at 24 bytes (collections and raw strings
        // live behind a pointer, the string's tag sits in SmallBytes's spare tag values), so
        // that a keyspace node (key, entry, chain link) is 64 bytes: one mimalloc size class
        // below the 80 a 72-byte node takes.
        use std::mem::size_of;
        let sizes = (
            size_of::<super::Value>(),
            size_of::<super::StrValue>(),
            size_of::<super::Entry>(),
            size_of::<super::HashValue>(),
            size_of::<super::SetValue>(),
            size_of::<super::ZSetValue>(),
        );
        assert!(
            sizes.0 <= 24 && sizes.1 <= 24 && sizes.2 <= 32 && sizes.3 <= 16 && sizes.4 <= 16 && sizes.5 <= 16,
            "{sizes:?}"
        );
    }
}

#[cfg(test)]
mod digest_tests {
    use super::hash::{HashLimits, HashValue};
    use super::Value;

    fn digest(v: &Value) -> [u8; 20] {
        let mut d = [0u8; 20];
        v.add_to_digest(&mut d);
        d
    }

    #[test]
    fn a_field_ttl_marks_the_hash_digest_and_encodings_do_not() {
        // Redis 7.2's digests are compared with real Redis by the differential tests; here the
        // hash-field TTL mark (Redis 7.4's, which 7.2 lacks) and the encoding independence.
        let limits = HashLimits { max_entries: 128, max_value: 64 };
        let mut h = HashValue::default();
        h.set(b"a", b"1", limits);
        h.set(b"b", b"2", limits);
        let plain = digest(&Value::Hash(h.clone()));
        let mut table = h.clone();
        table.convert_to_table();
        assert_eq!(digest(&Value::Hash(table)), plain);
        h.ensure_ttl_encoding();
        assert_eq!(digest(&Value::Hash(h.clone())), plain, "TTL encoding alone");
        h.put_ttl(b"a", 4_000_000_000_000);
        assert_ne!(digest(&Value::Hash(h)), plain);
    }
}
