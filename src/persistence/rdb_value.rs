//! Decoding one RDB value (what follows the type byte and the key, in a file or in a DUMP
//! payload) into a [`Value`], for every type and encoding Redis up to 7.4 writes (streams and
//! module values aside).
//!
//! Values are rebuilt through the types' own constructors with the *current* encoding limits
//! (`hash-max-listpack-*`, `set-max-*`, `zset-max-listpack-*`), so a loaded value
//! gets the encoding Redis would give it, whatever encoding the file used. Duplicate members
//! or fields, NaN scores, odd pair counts and malformed blobs are errors; an empty collection
//! decodes to `None` (Redis skips such keys when loading).

use super::rdb::*;
use super::reader::{RdbError, Reader, Result};
use super::{intset, listpack, ziplist, zipmap};
use crate::config::Config;
use crate::types::hash::HashLimits;
use crate::types::set::SetLimits;
use crate::types::zset::Limits as ZLimits;
use crate::types::{HashValue, ListValue, SetValue, StrValue, Value, ZSetValue};

/// A blob decoder (listpack, ziplist): the elements, or why the blob is malformed.
type Decoder = fn(&[u8]) -> std::result::Result<Vec<Vec<u8>>, &'static str>;

/// The encoding thresholds values are rebuilt with.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub hash: HashLimits,
    pub set: SetLimits,
    pub zset: ZLimits,
}

impl Limits {
    pub fn from_config(c: &Config) -> Self {
        Limits {
            hash: HashLimits {
                max_entries: c.hash_max_listpack_entries as usize,
                max_value: c.hash_max_listpack_value as usize,
            },
            set: SetLimits {
                max_intset_entries: c.set_max_intset_entries as usize,
                max_listpack_entries: c.set_max_listpack_entries as usize,
                max_listpack_value: c.set_max_listpack_value as usize,
            },
            zset: ZLimits {
                max_entries: c.zset_max_listpack_entries as usize,
                max_value: c.zset_max_listpack_value as usize,
            },
        }
    }
}

impl Default for Limits {
    /// Redis's defaults.
    fn default() -> Self {
        Limits {
            hash: HashLimits { max_entries: 512, max_value: 64 },
            set: SetLimits::default(),
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
            let mut items = Vec::with_capacity(n.min(1024));
            for _ in 0..n {
                items.push(r.string()?);
            }
            Value::List(ListValue::loaded(items))
        }
        TYPE_LIST_ZIPLIST => Value::List(ListValue::from_nodes(vec![blob(r, ziplist::decode)?])),
        TYPE_LIST_QUICKLIST | TYPE_LIST_QUICKLIST_2 => {
            let n = r.count(1)?;
            let mut nodes = Vec::with_capacity(n.min(1024));
            for _ in 0..n {
                let container = if ty == TYPE_LIST_QUICKLIST_2 { r.length()? } else { QUICKLIST_NODE_PACKED };
                match container {
                    QUICKLIST_NODE_PLAIN => nodes.push(vec![r.string()?]),
                    QUICKLIST_NODE_PACKED => {
                        let decode = if ty == TYPE_LIST_QUICKLIST { ziplist::decode } else { listpack::decode };
                        // Empty nodes are skipped silently, as Redis does.
                        nodes.push(blob(r, decode)?);
                    }
                    _ => return r.err(format!("unknown quicklist node container {container}")),
                }
            }
            Value::List(ListValue::from_nodes(nodes))
        }
        TYPE_SET => {
            let n = r.count(1)?;
            let mut members = Vec::with_capacity(n.min(1024));
            for _ in 0..n {
                members.push(r.string()?);
            }
            match SetValue::from_members(n, members, lim.set) {
                Ok(s) => Value::Set(Box::new(s)),
                Err(_) => return fail("duplicate set member"),
            }
        }
        TYPE_SET_INTSET => {
            let b = r.string()?;
            let ints = intset::decode(&b).map_err(|e| RdbError { offset: at, msg: e.to_string() })?;
            Value::Set(Box::new(SetValue::from_intset(ints, lim.set)))
        }
        TYPE_SET_LISTPACK => match SetValue::from_listpack(blob(r, listpack::decode)?, lim.set) {
            Ok(s) => Value::Set(Box::new(s)),
            Err(_) => return fail("duplicate set member"),
        },
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
        TYPE_HASH_METADATA | TYPE_HASH_METADATA_PRE_GA => {
            // [min TTL (ms, u64 LE)] count, then (TTL, field, value) per field: the TTL is
            // relative to the minimum (+1, 0 = none), absolute in the pre-GA type.
            let min = if ty == TYPE_HASH_METADATA { r.u64_le()? as i64 } else { 0 };
            let n = r.count(3)?;
            let mut entries = Vec::with_capacity(n.min(1024));
            for _ in 0..n {
                let t = r.length()? as i64;
                let ttl = match (t, ty) {
                    (0, _) => 0,
                    (t, TYPE_HASH_METADATA) => t.checked_add(min - 1).unwrap_or(-1),
                    (t, _) => t,
                };
                entries.push((r.string()?, r.string()?, ttl));
            }
            hash_with_ttls_from(entries, lim, at)?
        }
        TYPE_HASH_LISTPACK_EX | TYPE_HASH_LISTPACK_EX_PRE_GA => {
            // [min TTL (ms, u64 LE)] then a listpack of (field, value, TTL) triplets.
            if ty == TYPE_HASH_LISTPACK_EX {
                r.u64_le()?;
            }
            let items = blob(r, listpack::decode)?;
            if items.len() % 3 != 0 {
                return fail("hash listpackex blob whose length is not a multiple of 3");
            }
            let mut entries = Vec::with_capacity(items.len() / 3);
            let mut it = items.into_iter();
            while let (Some(f), Some(v), Some(t)) = (it.next(), it.next(), it.next()) {
                match crate::util::num::parse_i64(&t) {
                    Some(ttl) => entries.push((f, v, ttl)),
                    None => return fail("hash listpackex blob with an invalid TTL"),
                }
            }
            hash_with_ttls_from(entries, lim, at)?
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
    Ok(Value::Hash(h))
}

/// A hash with field TTLs (RDB types 22-25): a listpackex when it fits the listpack limits,
/// else a hash table; TTLs of 0 mean none, and must not exceed Redis's EB_EXPIRE_TIME_MAX.
fn hash_with_ttls_from(entries: Vec<(Vec<u8>, Vec<u8>, i64)>, lim: &Limits, at: usize) -> Result<Value> {
    const MAX_TTL: i64 = (1 << 48) - 1;
    let mut h = HashValue::default();
    if entries.len() > lim.hash.max_entries {
        h.convert_to_table();
    }
    h.ensure_ttl_encoding();
    for (f, v, ttl) in entries {
        if !(0..=MAX_TTL).contains(&ttl) {
            return Err(RdbError { offset: at, msg: format!("invalid hash field TTL {ttl}") });
        }
        if !h.set(&f, &v, lim.hash) {
            return Err(RdbError { offset: at, msg: "duplicate hash field".into() });
        }
        if ttl != 0 {
            h.put_ttl(&f, ttl);
        }
    }
    Ok(Value::Hash(h))
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
        round_trip_as(v, lim, RDB_VERSION)
    }

    fn round_trip_as(v: &Value, lim: &Limits, version: u16) -> Value {
        let mut out = vec![value_type(v, version)];
        write_value(&mut out, v, SaveOptions { version, ..SaveOptions::default() });
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
            values.push(Value::Hash(h));
            let mut s = SetValue::default();
            (0..n).for_each(|i| {
                s.add(format!("{}", i * 1000).as_bytes(), lim.set);
            });
            values.push(Value::Set(Box::new(s.clone())));
            s.add(b"not-a-number", lim.set);
            values.push(Value::Set(Box::new(s)));
            let mut z = ZSetValue::new();
            (0..n).for_each(|i| {
                z.insert(format!("m{i}").as_bytes(), i as f64 / 3.0, lim.zset);
            });
            z.insert(b"inf", f64::INFINITY, lim.zset);
            values.push(Value::ZSet(Box::new(z)));
        }
        for version in [RDB_VERSION, 11, RDB_VERSION_MAX] {
            for v in &values {
                let back = round_trip_as(v, &lim, version);
                assert_eq!(&back, v);
                assert_eq!(back.encoding(), v.encoding());
                let _ = Entry::new(back, 0);
            }
        }
        let _ = now_ms();
    }

    #[test]
    fn listpack_sets_are_type_20_from_version_11() {
        let lim = Limits::default();
        let mut s = SetValue::new_listpack();
        for m in ["b", "1", "a"] {
            s.add(m.as_bytes(), lim.set);
        }
        let v = Value::Set(Box::new(s));
        assert_eq!(value_type(&v, 10), TYPE_SET);
        assert_eq!(value_type(&v, 11), TYPE_SET_LISTPACK);
        let back = round_trip_as(&v, &lim, 11);
        assert_eq!(back.encoding(), "listpack");
        let Value::Set(b) = &back else { panic!() };
        assert_eq!(b.members(), vec![b"b".to_vec(), b"1".to_vec(), b"a".to_vec()]);
        // What Redis 7.2 writes for SADD s b 1 a (DUMP without its footer): type 20, then the
        // listpack as a string.
        let mut out = vec![value_type(&v, 11)];
        write_value(&mut out, &v, SaveOptions { version: 11, ..SaveOptions::default() });
        assert_eq!(out, b"\x14\x0f\x0f\x00\x00\x00\x03\x00\x81b\x02\x01\x01\x81a\x02\xff".to_vec());
        // A listpack set larger than set-max-listpack-entries loads as a hash table.
        let small = Limits { set: SetLimits { max_listpack_entries: 2, ..SetLimits::default() }, ..Limits::default() };
        assert_eq!(round_trip_as(&v, &small, 11).encoding(), "hashtable");
    }

    #[test]
    fn limits_decide_the_encoding() {
        let mut h = HashValue::default();
        (0..10).for_each(|i| {
            h.set(format!("f{i}").as_bytes(), b"v", Limits::default().hash);
        });
        let small = Limits { hash: HashLimits { max_entries: 4, max_value: 64 }, ..Limits::default() };
        assert_eq!(round_trip(&Value::Hash(h), &small).encoding(), "hashtable");
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
