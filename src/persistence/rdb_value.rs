//! Decoding one RDB value (what follows the type byte and the key, in a file or in a DUMP
//! payload) into a [`Value`], for every type and encoding Redis up to 7.0 writes.
//!
//! Values are rebuilt through the types' own constructors with the *current* encoding limits
//! (`hash-max-listpack-*`, `set-max-intset-entries`, `zset-max-listpack-*`), so a loaded value
//! gets the encoding Redis would give it, whatever encoding the file used. Duplicate members
//! or fields, NaN scores, odd pair counts and malformed blobs are errors; an empty collection
//! decodes to `None` (Redis skips such keys when loading).

use super::rdb::*;
use super::reader::{RdbError, Reader, Result};
use super::{intset, listpack, ziplist, zipmap};
use crate::config::Settings;
use crate::types::hash::HashLimits;
use crate::types::zset::Limits as ZLimits;
use crate::types::{HashValue, ListValue, SetValue, StrValue, Value, ZSetValue};

/// A blob decoder (listpack, ziplist): the elements, or why the blob is malformed.
type Decoder = fn(&[u8]) -> std::result::Result<Vec<Vec<u8>>, &'static str>;

/// The encoding thresholds values are rebuilt with.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub hash: HashLimits,
    pub set_max_intset: usize,
    pub zset: ZLimits,
}

impl Limits {
    pub fn from_settings(s: &Settings) -> Self {
        Limits {
            hash: HashLimits { max_entries: s.hash_max_listpack_entries, max_value: s.hash_max_listpack_value },
            set_max_intset: s.set_max_intset_entries,
            zset: ZLimits { max_entries: s.zset_max_listpack_entries, max_value: s.zset_max_listpack_value },
        }
    }
}

impl Default for Limits {
    /// Redis's defaults.
    fn default() -> Self {
        Limits {
            hash: HashLimits { max_entries: 512, max_value: 64 },
            set_max_intset: 512,
            zset: ZLimits { max_entries: 128, max_value: 64 },
        }
    }
}

/// The name of a module type from its 64-bit id (9 characters of 6 bits, then a 10-bit
/// encoding version), for the error that refuses module values.
fn module_name(id: u64) -> String {
    const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    (0..9).map(|i| CHARS[((id >> (10 + 6 * (8 - i))) & 63) as usize] as char).collect()
}

/// Read a value of RDB type `ty`. `Ok(None)`: a valid but empty collection.
pub fn read_value(r: &mut Reader, ty: u8, lim: &Limits) -> Result<Option<Value>> {
    let at = r.pos();
    let fail = |msg: &str| Err(RdbError { offset: at, msg: msg.to_string() });
    let blob = |r: &mut Reader, decode: Decoder| {
        let at = r.pos();
        let b = r.string()?;
        decode(&b).map_err(|e| RdbError { offset: at, msg: e.to_string() })
    };
    let value = match ty {
        TYPE_STRING => Value::Str(StrValue::from_bytes(&r.string()?)),
        TYPE_LIST => {
            let n = r.count(1)?;
            let mut l = ListValue::new();
            for _ in 0..n {
                l.push_back(&r.string()?);
            }
            Value::List(l)
        }
        TYPE_LIST_ZIPLIST => list_from(blob(r, ziplist::decode)?),
        TYPE_LIST_QUICKLIST | TYPE_LIST_QUICKLIST_2 => {
            let nodes = r.count(1)?;
            let mut l = ListValue::new();
            for _ in 0..nodes {
                let container = if ty == TYPE_LIST_QUICKLIST_2 { r.length()? } else { QUICKLIST_NODE_PACKED };
                match container {
                    QUICKLIST_NODE_PLAIN => l.push_back(&r.string()?),
                    QUICKLIST_NODE_PACKED => {
                        let decode = if ty == TYPE_LIST_QUICKLIST { ziplist::decode } else { listpack::decode };
                        // Empty nodes are skipped silently, as Redis does.
                        for e in blob(r, decode)? {
                            l.push_back(&e);
                        }
                    }
                    _ => return r.err(format!("unknown quicklist node container {container}")),
                }
            }
            Value::List(l)
        }
        TYPE_SET => {
            let n = r.count(1)?;
            let mut s = SetValue::default();
            for _ in 0..n {
                let m = r.string()?;
                if !s.add(&m, lim.set_max_intset) {
                    return fail("duplicate set member");
                }
            }
            Value::Set(Box::new(s))
        }
        TYPE_SET_INTSET => {
            let b = r.string()?;
            let ints = intset::decode(&b).map_err(|e| RdbError { offset: at, msg: e.to_string() })?;
            let mut s = SetValue::default();
            for v in ints {
                s.add(v.to_string().as_bytes(), lim.set_max_intset);
            }
            Value::Set(Box::new(s))
        }
        TYPE_ZSET | TYPE_ZSET_2 => {
            let n = r.count(2)?;
            let mut pairs = Vec::with_capacity(n.min(1024));
            for _ in 0..n {
                let m = r.string()?;
                let s = if ty == TYPE_ZSET { r.text_double()? } else { r.binary_double()? };
                pairs.push((m, s));
            }
            zset_from(pairs, lim, at)?
        }
        TYPE_ZSET_ZIPLIST | TYPE_ZSET_LISTPACK => {
            let items = blob(r, if ty == TYPE_ZSET_ZIPLIST { ziplist::decode } else { listpack::decode })?;
            if items.len() % 2 != 0 {
                return fail("sorted set blob with an odd number of elements");
            }
            let mut pairs = Vec::with_capacity(items.len() / 2);
            let mut it = items.into_iter();
            while let (Some(m), Some(s)) = (it.next(), it.next()) {
                match crate::util::num::parse_f64(&s) {
                    Some(score) => pairs.push((m, score)),
                    None => return fail("sorted set blob with an invalid score"),
                }
            }
            zset_from(pairs, lim, at)?
        }
        TYPE_HASH => {
            let n = r.count(2)?;
            let mut pairs = Vec::with_capacity(n.min(1024));
            for _ in 0..n {
                pairs.push((r.string()?, r.string()?));
            }
            hash_from(pairs, lim, at)?
        }
        TYPE_HASH_ZIPMAP => {
            let b = r.string()?;
            hash_from(zipmap::decode(&b).map_err(|e| RdbError { offset: at, msg: e.to_string() })?, lim, at)?
        }
        TYPE_HASH_ZIPLIST | TYPE_HASH_LISTPACK => {
            let items = blob(r, if ty == TYPE_HASH_ZIPLIST { ziplist::decode } else { listpack::decode })?;
            if items.len() % 2 != 0 {
                return fail("hash blob with an odd number of elements");
            }
            let mut pairs = Vec::with_capacity(items.len() / 2);
            let mut it = items.into_iter();
            while let (Some(f), Some(v)) = (it.next(), it.next()) {
                pairs.push((f, v));
            }
            hash_from(pairs, lim, at)?
        }
        TYPE_STREAM_LISTPACKS | TYPE_STREAM_LISTPACKS_2 | super::rdb_stream::TYPE_STREAM_LISTPACKS_3 => {
            // Streams are kept even when empty (as Redis does).
            return Ok(Some(Value::Stream(Box::new(super::rdb_stream::read(r, ty)?))));
        }
        TYPE_MODULE | TYPE_MODULE_2 => {
            let id = r.length()?;
            return fail(&format!(
                "module values (RDB type {ty}, module type '{}') are not supported by Ferrous",
                module_name(id)
            ));
        }
        _ => return fail(&format!("unknown RDB value type {ty}")),
    };
    let empty = match &value {
        Value::Str(_) => false,
        Value::List(l) => l.is_empty(),
        Value::Hash(h) => h.is_empty(),
        Value::Set(s) => s.is_empty(),
        Value::ZSet(z) => z.is_empty(),
        Value::Stream(_) => false,
    };
    Ok((!empty).then_some(value))
}

fn list_from(items: Vec<Vec<u8>>) -> Value {
    let mut l = ListValue::new();
    for e in items {
        l.push_back(&e);
    }
    Value::List(l)
}

fn hash_from(pairs: Vec<(Vec<u8>, Vec<u8>)>, lim: &Limits, at: usize) -> Result<Value> {
    let mut h = HashValue::default();
    if pairs.len() > lim.hash.max_entries {
        h.convert_to_table();
    }
    for (f, v) in pairs {
        if !h.set(&f, &v, lim.hash) {
            return Err(RdbError { offset: at, msg: "duplicate hash field".into() });
        }
    }
    Ok(Value::Hash(Box::new(h)))
}

fn zset_from(pairs: Vec<(Vec<u8>, f64)>, lim: &Limits, at: usize) -> Result<Value> {
    let mut z = if pairs.len() > lim.zset.max_entries { ZSetValue::new_skiplist() } else { ZSetValue::new() };
    for (m, s) in pairs {
        if s.is_nan() {
            return Err(RdbError { offset: at, msg: "sorted set score is NaN".into() });
        }
        if !z.insert(&m, s, lim.zset) {
            return Err(RdbError { offset: at, msg: "duplicate sorted set member".into() });
        }
    }
    Ok(Value::ZSet(Box::new(z)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keyspace::now_ms;
    use crate::types::Entry;

    fn round_trip(v: &Value, lim: &Limits) -> Value {
        let mut out = vec![value_type(v)];
        write_value(&mut out, v, SaveOptions::default());
        let mut r = Reader::new(&out[1..]);
        let back = read_value(&mut r, out[0], lim).unwrap().unwrap();
        assert_eq!(r.remaining(), 0);
        back
    }

    #[test]
    fn every_type_round_trips_with_its_encoding() {
        let lim = Limits::default();
        let mut values = vec![
            Value::Str(StrValue::from_bytes(b"12345")),
            Value::Str(StrValue::from_bytes(&b"long string ".repeat(20))),
        ];
        let mut l = ListValue::new();
        (0..1000).for_each(|i| l.push_back(format!("element-{i}").as_bytes()));
        values.push(Value::List(l));
        for n in [3, 600] {
            let mut h = HashValue::default();
            (0..n).for_each(|i| {
                h.set(format!("f{i}").as_bytes(), format!("{i}").as_bytes(), lim.hash);
            });
            values.push(Value::Hash(Box::new(h)));
            let mut s = SetValue::default();
            (0..n).for_each(|i| {
                s.add(format!("{}", i * 1000).as_bytes(), lim.set_max_intset);
            });
            values.push(Value::Set(Box::new(s.clone())));
            s.add(b"not-a-number", lim.set_max_intset);
            values.push(Value::Set(Box::new(s)));
            let mut z = ZSetValue::new();
            (0..n).for_each(|i| {
                z.insert(format!("m{i}").as_bytes(), i as f64 / 3.0, lim.zset);
            });
            z.insert(b"inf", f64::INFINITY, lim.zset);
            values.push(Value::ZSet(Box::new(z)));
        }
        for v in &values {
            let back = round_trip(v, &lim);
            assert_eq!(&back, v);
            assert_eq!(back.encoding(), v.encoding());
            let _ = Entry::new(back, 0);
        }
        let _ = now_ms();
    }

    #[test]
    fn limits_decide_the_encoding() {
        let mut h = HashValue::default();
        (0..10).for_each(|i| {
            h.set(format!("f{i}").as_bytes(), b"v", Limits::default().hash);
        });
        let small = Limits { hash: HashLimits { max_entries: 4, max_value: 64 }, ..Limits::default() };
        assert_eq!(round_trip(&Value::Hash(Box::new(h)), &small).encoding(), "hashtable");
    }

    #[test]
    fn duplicates_and_bad_types_are_refused() {
        // A plain hash with the same field twice.
        let dup = [TYPE_HASH, 2, 1, b'a', 1, b'b', 1, b'a', 1, b'c'];
        assert!(read_value(&mut Reader::new(&dup[1..]), dup[0], &Limits::default()).is_err());
        // A truncated stream is an error; an empty one (no nodes, no groups) is a value.
        assert!(read_value(&mut Reader::new(&[]), TYPE_STREAM_LISTPACKS_2, &Limits::default()).is_err());
        let empty = [0u8, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        let v = read_value(&mut Reader::new(&empty), TYPE_STREAM_LISTPACKS_2, &Limits::default()).unwrap();
        assert_eq!(v.map(|v| v.type_name()), Some("stream"));
        assert!(read_value(&mut Reader::new(&[0]), 42, &Limits::default()).is_err());
        // An empty set is valid and skipped.
        assert!(read_value(&mut Reader::new(&[0]), TYPE_SET, &Limits::default()).unwrap().is_none());
    }
}
