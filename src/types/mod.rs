//! Value types stored in the keyspace, independent of the server and the protocol.
//! Each type lives in its own module with its encodings; `Value` is the sum of them.

pub mod bitfield;
pub mod bits;
pub mod dict;
pub mod geo;
pub mod hash;
pub mod hash_ttl;
pub mod hll;
pub mod list;
pub mod list_shape;
pub mod packed;
pub mod set;
pub mod small_bytes;
pub mod stream;
pub mod string;
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
kind!(SetValue, Set, Value::Set(Box::default()), |s: &SetValue| s.is_empty());
kind!(ZSetValue, ZSet, Value::ZSet(Box::default()), |z: &ZSetValue| z.is_empty());
// Streams are kept when empty, as in Redis.
kind!(stream::StreamValue, Stream, Value::Stream(Box::default()), |_: &stream::StreamValue| false);

/// A value stored under a key.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Str(StrValue),
    List(ListValue),
    // Collections live behind a pointer so that every entry (most of them strings) stays small.
    // A hash is 16 bytes (its listpack a thin buffer, its other encodings boxed), so it needs
    // no box of its own: small hashes are many.
    Hash(HashValue),
    Set(Box<SetValue>),
    ZSet(Box<ZSetValue>),
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
            Value::List(l) => 32 + l.iter().map(|e| elem(e.len())).sum::<usize>(),
            // A compact encoding is its one buffer behind the value's box (as Redis counts
            // the object header and the listpack's allocation); tables count their entries.
            Value::Hash(h) => match h {
                HashValue::Listpack(p) => size_of::<HashValue>() + p.bytes(),
                _ => {
                    let mut n = 48;
                    h.for_each(|f, v| n += elem(f.len()) + elem(v.len()) + 16);
                    n
                }
            },
            Value::Set(s) => match &**s {
                SetValue::Listpack(p) => size_of::<SetValue>() + p.bytes(),
                SetValue::Intset(v) => size_of::<SetValue>() + v.capacity() * size_of::<i64>(),
                SetValue::Table(_) => {
                    let mut n = 48;
                    s.for_each(|m| n += elem(m.len()) + 16);
                    n
                }
            },
            Value::ZSet(z) => {
                let mut n = 64;
                z.for_each(|m, _| n += elem(m.len()) + 40);
                n
            }
            Value::Stream(s) => s.memory_usage(),
        }
    }

    /// A digest of the value's contents (DEBUG DIGEST-VALUE): equal contents give equal digests
    /// whatever the encoding; order matters for strings, lists and sorted sets only.
    pub fn digest(&self) -> [u8; 20] {
        use std::hash::{Hash, Hasher};
        fn h(parts: &[&[u8]]) -> u64 {
            // A fixed-key hasher: digests must be stable across processes.
            let mut s = std::collections::hash_map::DefaultHasher::new();
            for p in parts {
                p.hash(&mut s);
            }
            s.finish()
        }
        let (mut a, mut b) = (0u64, 0u64);
        let mut ordered = |parts: &[&[u8]]| {
            a = a.rotate_left(7) ^ h(parts);
            b = b.wrapping_mul(31).wrapping_add(h(parts).rotate_left(13));
        };
        match self {
            Value::Str(s) => ordered(&[b"string", &s.to_bytes()]),
            Value::List(l) => {
                ordered(&[b"list"]);
                l.iter().for_each(|e| ordered(&[e]));
            }
            Value::ZSet(z) => {
                ordered(&[b"zset"]);
                z.for_each(|m, s| ordered(&[m, &s.to_bits().to_le_bytes()]));
            }
            Value::Set(s) => {
                let mut x = h(&[b"set"]);
                s.for_each(|m| x ^= h(&[m]));
                ordered(&[&x.to_le_bytes()]);
            }
            Value::Hash(hv) => {
                let mut x = h(&[b"hash"]);
                hv.for_each(|f, v| x ^= h(&[f, v]));
                ordered(&[&x.to_le_bytes()]);
            }
            Value::Stream(st) => {
                // Entries in order, then the metadata and groups (as Redis's DEBUG DIGEST
                // covers the whole stream). The listpack bytes are not hashed: equal streams
                // built differently (COPY, RESTORE) digest the same.
                ordered(&[b"stream"]);
                for e in st.range(stream::StreamId::MIN, stream::StreamId::MAX, false) {
                    ordered(&[&e.id.to_be_bytes()]);
                    for (f, v) in e.fields() {
                        ordered(&[&f.to_vec(), &v.to_vec()]);
                    }
                }
                for id in [st.last_id, st.first_id, st.max_deleted_entry_id] {
                    ordered(&[&id.to_be_bytes()]);
                }
                ordered(&[&st.entries_added.to_le_bytes(), &st.len().to_le_bytes()]);
                for (name, g) in &st.groups {
                    ordered(&[name, &g.last_id.to_be_bytes(), &g.entries_read.to_le_bytes()]);
                    for (id, n) in &g.pel {
                        ordered(&[
                            &id.to_be_bytes(),
                            &n.delivery_time.to_le_bytes(),
                            &n.delivery_count.to_le_bytes(),
                            &n.consumer,
                        ]);
                    }
                    for (cname, c) in &g.consumers {
                        ordered(&[cname, &c.seen_time.to_le_bytes(), &(c.pel.len() as u64).to_le_bytes()]);
                    }
                }
            }
        }
        let mut out = [0u8; 20];
        out[..8].copy_from_slice(&a.to_le_bytes());
        out[8..16].copy_from_slice(&b.to_le_bytes());
        out[16..].copy_from_slice(&(a ^ b).to_le_bytes()[..4]);
        out
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
}

impl Entry {
    pub fn new(value: Value, lru: u32) -> Self {
        Entry { value, lru }
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
        assert!(sizes.0 <= 24 && sizes.1 <= 24 && sizes.2 <= 32 && sizes.3 <= 16, "{sizes:?}");
    }
}
