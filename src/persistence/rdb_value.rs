//! Decoding one RDB value (what follows the type byte and the key, in a file or in a DUMP
//! payload) into a [`Value`], for every type and encoding Redis up to 8.6 writes (streams in
//! `rdb_stream`; module values are refused).
//!
//! Values are rebuilt through the types' own constructors with the *current* encoding limits
//! (`hash-max-listpack-*`, `set-max-*`, `zset-max-listpack-*`), so a loaded value
//! gets the encoding Redis would give it, whatever encoding the file used. Duplicate members
//! or fields, NaN scores, odd pair counts and malformed blobs are errors; an empty collection
//! decodes to `None` (Redis skips such keys when loading). Errors carry what Redis 7.2 reports
//! for the same damage (`reader::Report`: "Hash ziplist integrity check failed.", "Duplicate
//! set members detected", ...), which the server logs as Redis does; Ferrous validates every
//! value whole, as Redis's deep sanitisation does, whatever `sanitize-dump-payload` says.

use super::rdb::*;
use super::reader::{RdbError, Reader, Report, Result, Stored};
use super::{intset, listpack, ziplist, zipmap};
use crate::config::Config;
use crate::types::hash::HashLimits;
use crate::types::list::NodeSize;
use crate::types::packed::{self, SAFETY_BYTES};
use crate::types::set::{DuplicateMember, SetLimits};
use crate::types::zset::{listpack_pair_bytes, Limits as ZLimits, ListpackBuilder};
use crate::types::{HashValue, ListValue, SetValue, StrValue, Value, ZSetValue};

/// A blob decoder (listpack, ziplist): the elements, or why the blob is malformed.
type Decoder = fn(&[u8]) -> std::result::Result<Vec<Vec<u8>>, &'static str>;

/// The encoding thresholds values are rebuilt with, and whether the caller asked for deep
/// sanitisation (`sanitize-dump-payload`). Ferrous always validates a value whole; the flag
/// only decides which of Redis's reports a refusal carries where Redis's own check depends
/// on it (see [`Report::DupListpack`]).
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub hash: HashLimits,
    pub set: SetLimits,
    pub zset: ZLimits,
    pub deep_sanitize: bool,
}

impl Limits {
    /// The configured thresholds; deep sanitisation as `sanitize-dump-payload yes` asks (a
    /// RESTORE under `clients` decides for its client itself).
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
            deep_sanitize: c.sanitize_dump_payload == SANITIZE_YES,
        }
    }
}

/// `sanitize-dump-payload yes`.
pub const SANITIZE_YES: u32 = 1;
/// `sanitize-dump-payload clients`.
pub const SANITIZE_CLIENTS: u32 = 2;

impl Default for Limits {
    /// Redis's defaults.
    fn default() -> Self {
        Limits {
            hash: HashLimits { max_entries: 512, max_value: 64 },
            set: SetLimits::default(),
            zset: ZLimits { max_entries: 128, max_value: 64 },
            deep_sanitize: false,
        }
    }
}

/// The name of a module type from its 64-bit id (9 characters of 6 bits, then a 10-bit
/// encoding version), for the error that refuses module values.
fn module_name(id: u64) -> String {
    const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    (0..9).map(|i| CHARS[((id >> (10 + 6 * (8 - i))) & 63) as usize] as char).collect()
}

/// How Redis 7.2 reports a malformed value of a compact type (a blob its integrity check
/// refuses, duplicates and odd counts included): the rdb.c line and the reason.
fn integrity(ty: u8) -> Option<(u32, &'static str)> {
    Some(match ty {
        TYPE_HASH_ZIPMAP => (2265, "Zipmap integrity check failed."),
        TYPE_LIST_ZIPLIST => (2323, "List ziplist integrity check failed."),
        TYPE_SET_INTSET => (2348, "Intset integrity check failed."),
        TYPE_SET_LISTPACK => (2362, "Set listpack integrity check failed."),
        TYPE_ZSET_ZIPLIST => (2384, "Zset ziplist integrity check failed."),
        TYPE_ZSET_LISTPACK => (2410, "Zset listpack integrity check failed."),
        TYPE_HASH_ZIPLIST => (2430, "Hash ziplist integrity check failed."),
        TYPE_HASH_LISTPACK => (2456, "Hash listpack integrity check failed."),
        // A quicklist's nodes: ziplists (RDB 7-10), listpacks (RDB 11+).
        TYPE_LIST_QUICKLIST => (2213, "Ziplist integrity check failed."),
        TYPE_LIST_QUICKLIST_2 => (2203, "Listpack integrity check failed."),
        _ => return None,
    })
}

/// A malformed value of type `ty` at `at`: reported as the type's integrity check, else (the
/// plain encodings) as `plain` says.
fn damaged(ty: u8, at: usize, msg: impl Into<String>, plain: Option<(u32, &str)>) -> RdbError {
    let e = RdbError::new(at, msg);
    match integrity(ty).or(plain) {
        Some((line, why)) => e.reported(line, why),
        None => e,
    }
}

/// Read a value of RDB type `ty`. `Ok(None)`: a valid but empty collection.
pub fn read_value(r: &mut Reader, ty: u8, lim: &Limits) -> Result<Option<Value>> {
    let at = r.pos();
    let fail = |msg: &str| Err(damaged(ty, at, msg, None));
    let blob = |r: &mut Reader, decode: Decoder| {
        let at = r.pos();
        let b = r.string_cow()?;
        decode(&b).map_err(|e| damaged(ty, at, e, None))
    };
    let value = match ty {
        TYPE_STRING => Value::Str(match r.stored_string()? {
            Stored::Bytes(b) => StrValue::from_bytes(&b),
            Stored::Int(v) => StrValue::Int(v),
        }),
        TYPE_LIST => {
            let n = r.count(1)?;
            let mut items = Vec::with_capacity(n.min(1024));
            for _ in 0..n {
                items.push(r.string()?);
            }
            Value::List(ListValue::loaded(items))
        }
        TYPE_LIST_ZIPLIST => Value::List(ListValue::from_nodes(vec![blob(r, ziplist::decode)?])),
        TYPE_LIST_QUICKLIST | TYPE_LIST_QUICKLIST_2 => Value::List(read_quicklist(r, ty)?),
        TYPE_SET => {
            let n = r.count(1)?;
            let mut members = Vec::with_capacity(n.min(1024));
            for _ in 0..n {
                members.push(r.string_cow()?);
            }
            match SetValue::from_members(&members, lim.set) {
                Ok(s) => Value::Set(s),
                Err(_) => {
                    return Err(damaged(ty, at, "duplicate set member", Some((1961, "Duplicate set members detected"))))
                }
            }
        }
        TYPE_SET_INTSET => {
            let b = r.string()?;
            let (width, ints) = intset::decode(&b).map_err(|e| damaged(ty, at, e, None))?;
            Value::Set(SetValue::from_intset(ints, width, lim.set))
        }
        TYPE_SET_LISTPACK => {
            // Checked whole, counted and sized first, then walked again to build.
            let (lp, n, size) = packed_listpack(r, ty)?;
            match set_from_listpack(&lp, n, size, lim.set) {
                Ok(s) => Value::Set(s),
                Err(_) => return fail("duplicate set member"),
            }
        }
        TYPE_ZSET | TYPE_ZSET_2 => {
            let n = r.count(2)?;
            let mut pairs = Vec::with_capacity(n.min(1024));
            for _ in 0..n {
                let m = r.string_cow()?;
                let s = if ty == TYPE_ZSET { r.text_double()? } else { r.binary_double()? };
                pairs.push((m, s));
            }
            zset_from(pairs, lim, ty, at)?
        }
        TYPE_ZSET_LISTPACK => {
            let lp_at = r.pos();
            let lp = r.string_cow()?;
            // Checked whole, sized (see `Sizes`) and its scores read first (a bad score is
            // refused before any member is looked at, as when the elements were decoded first),
            // then walked again to build: no element is copied on the way.
            let (mut scores, mut bad, mut member_next) = (Vec::new(), false, true);
            let (mut size, mut member_len) = (Sizes::default(), 0);
            listpack::walk(&lp, |e| {
                if member_next {
                    member_len = e.text_len();
                    size.widest = size.widest.max(member_len);
                } else {
                    match e.with_bytes(crate::util::num::parse_f64) {
                        Some(score) => {
                            scores.push(score);
                            size.bytes = size.bytes.saturating_add(listpack_pair_bytes(member_len, score));
                        }
                        None => bad = true,
                    }
                }
                member_next = !member_next;
            })
            .map_err(|e| damaged(ty, lp_at, e, None))?;
            if !member_next {
                return fail("sorted set blob with an odd number of elements");
            }
            if bad {
                return fail("sorted set blob with an invalid score");
            }
            zset_from_listpack(&lp, &scores, size, lim, ty, at)?
        }
        TYPE_ZSET_ZIPLIST => {
            let items = blob(r, ziplist::decode)?;
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
            zset_from(pairs, lim, ty, at)?
        }
        TYPE_HASH => {
            let n = r.count(2)?;
            let mut pairs = Vec::with_capacity(n.min(1024));
            for _ in 0..n {
                pairs.push((r.string_cow()?, r.string_cow()?));
            }
            // Redis reads a hash of more than hash-max-listpack-entries fields into a table.
            let dup = if n > lim.hash.max_entries {
                (2151, "Duplicate hash fields detected")
            } else {
                (2083, "Hash with dup elements")
            };
            hash_from(pairs, lim).map_err(|_| damaged(ty, at, "duplicate hash field", Some(dup)))?
        }
        TYPE_HASH_ZIPMAP => {
            let b = r.string()?;
            let pairs = zipmap::decode(&b).map_err(|e| damaged(ty, at, e, None))?;
            hash_from(pairs, lim).map_err(|field| {
                let why = format!("Hash zipmap with dup elements, or big length ({})", field.len());
                RdbError::new(at, "duplicate hash field").reported(2289, &why)
            })?
        }
        TYPE_HASH_ZIPLIST => {
            let items = blob(r, ziplist::decode)?;
            hash_from(hash_pairs(items).ok_or_else(|| odd_hash(ty, at))?, lim)
                .map_err(|_| damaged(ty, at, "duplicate hash field", None))?
        }
        TYPE_HASH_LISTPACK => {
            // Checked whole, counted and sized first, then walked again to build (see the
            // sorted sets' listpack above).
            let (lp, n, size) = packed_listpack(r, ty)?;
            if n % 2 != 0 {
                return Err(odd_hash(ty, at));
            }
            let converts = n / 2 > lim.hash.max_entries;
            hash_from_listpack(&lp, n / 2, size, lim).map_err(|_| {
                let e = RdbError::new(at, "duplicate hash field");
                match converts && !lim.deep_sanitize {
                    // Without deep sanitisation Redis finds the duplicate only when it converts.
                    true => RdbError { report: Some(Report::DupListpack(lp.to_vec())), ..e },
                    false => damaged(ty, at, e.msg, None),
                }
            })?
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
        TYPE_STREAM_LISTPACKS
        | TYPE_STREAM_LISTPACKS_2
        | super::rdb_stream::TYPE_STREAM_LISTPACKS_3
        | super::rdb_stream::TYPE_STREAM_LISTPACKS_4 => {
            // Streams are kept even when empty (as Redis does).
            return Ok(Some(Value::Stream(Box::new(super::rdb_stream::read(r, ty)?))));
        }
        TYPE_MODULE => {
            let msg = format!("module values of the pre-release format (RDB type {ty}) are not supported");
            return Err(RdbError::new(at, msg).reported(2784, "Pre-release module format not supported"));
        }
        TYPE_MODULE_2 => {
            let name = module_name(r.length()?);
            let msg = format!("module values (RDB type {ty}, module type '{name}') are not supported by Ferrous");
            let why = format!("The RDB file contains module data I can't load: no matching module type '{name}'");
            return Err(RdbError::new(at, msg).reported(2803, &why));
        }
        _ => {
            let msg = format!("unknown RDB value type {ty}");
            return Err(RdbError::new(at, msg).reported(2845, &format!("Unknown RDB encoding type {ty}")));
        }
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

/// A listpack blob of a value of type `ty`, walked once: checked whole, its elements counted,
/// and sized as the entries of a [`packed::Packed`] (see [`Sizes`]).
fn packed_listpack<'a>(r: &mut Reader<'a>, ty: u8) -> Result<(std::borrow::Cow<'a, [u8]>, usize, Sizes)> {
    let at = r.pos();
    let lp = r.string_cow()?;
    let mut size = Sizes::default();
    let n = listpack::walk(&lp, |e| size.add_entry(e.text_len())).map_err(|e| damaged(ty, at, e, None))?;
    Ok((lp, n, size))
}

/// A list stored as a quicklist's nodes: ziplists (RDB 7-10), listpacks or plain nodes (RDB 11+).
fn read_quicklist(r: &mut Reader, ty: u8) -> Result<ListValue> {
    let n = r.count(1)?;
    let mut nodes = Vec::with_capacity(n.min(1024));
    for _ in 0..n {
        let container = if ty == TYPE_LIST_QUICKLIST_2 { r.length()? } else { QUICKLIST_NODE_PACKED };
        if container != QUICKLIST_NODE_PLAIN && container != QUICKLIST_NODE_PACKED {
            let msg = format!("unknown quicklist node container {container}");
            return Err(RdbError::new(r.pos(), msg).reported(2180, "Quicklist integrity check failed."));
        }
        let node_at = r.pos();
        let data = r.string_cow()?;
        if data.is_empty() {
            // Redis refuses a node of no bytes (whatever its container), reporting nothing.
            return Err(RdbError::new(node_at, "quicklist node of 0 bytes"));
        }
        if container == QUICKLIST_NODE_PLAIN {
            nodes.push(vec![data.into_owned()]);
            continue;
        }
        if ty == TYPE_LIST_QUICKLIST {
            nodes.push(ziplist::decode(&data).map_err(|e| damaged(ty, node_at, e, None))?);
            continue;
        }
        if n == 1 {
            // A list of one node (most lists): checked whole and sized first; if it stays one
            // listpack, built from a second walk, its elements not copied on the way.
            let mut size = NodeSize::default();
            listpack::walk(&data, |e| e.with_bytes(|s| size.add(s))).map_err(|e| damaged(ty, node_at, e, None))?;
            let walked = ListValue::from_walked_node(&size, |push| {
                let _ = listpack::walk(&data, |e| e.with_bytes(&mut *push));
            });
            if let Some(list) = walked {
                return Ok(list);
            }
        }
        // Empty nodes are skipped silently, as Redis does.
        nodes.push(listpack::decode(&data).map_err(|e| damaged(ty, node_at, e, None))?);
    }
    Ok(ListValue::from_nodes(nodes))
}

/// A hash blob's elements as (field, value) pairs (`None`: an odd number of elements).
fn hash_pairs(items: Vec<Vec<u8>>) -> Option<Vec<(Vec<u8>, Vec<u8>)>> {
    if !items.len().is_multiple_of(2) {
        return None;
    }
    let mut pairs = Vec::with_capacity(items.len() / 2);
    let mut it = items.into_iter();
    while let (Some(f), Some(v)) = (it.next(), it.next()) {
        pairs.push((f, v));
    }
    Some(pairs)
}

fn odd_hash(ty: u8, at: usize) -> RdbError {
    damaged(ty, at, "hash blob with an odd number of elements", None)
}

/// A hash of these pairs (`Err`: the first field found twice).
fn hash_from<F: AsRef<[u8]>, V: AsRef<[u8]>>(pairs: Vec<(F, V)>, lim: &Limits) -> std::result::Result<Value, F> {
    let mut h = hash_for(pairs.len(), lim);
    for (f, v) in pairs {
        if !h.set(f.as_ref(), v.as_ref(), lim.hash) {
            return Err(f);
        }
    }
    Ok(Value::Hash(h))
}

/// An empty hash for `fields` fields: a table sized for them when there are more than
/// `hash-max-listpack-entries` (Redis reads those into a table, expanded to the length read).
fn hash_for(fields: usize, lim: &Limits) -> HashValue {
    match fields > lim.hash.max_entries {
        true => HashValue::table_for(fields),
        false => HashValue::default(),
    }
}

/// A hash of the `pairs` (field, value) pairs of listpack `lp`, which the caller has checked
/// (`Err`: a field found twice).
fn hash_from_listpack(lp: &[u8], pairs: usize, size: Sizes, lim: &Limits) -> std::result::Result<Value, ()> {
    if pairs <= lim.hash.max_entries && size.widest <= lim.hash.max_value && size.bytes <= SAFETY_BYTES {
        // It stays a listpack (none of `HashValue::set`'s conversions applies): built at once.
        return packed_unique(lp, size.bytes, 2).map(|p| Value::Hash(HashValue::Listpack(p))).ok_or(());
    }
    let mut h = hash_for(pairs, lim);
    let mut dup = false;
    each_pair(lp, |f, v| dup = dup || !f.with_bytes(|f| v.with_bytes(|v| h.set(f, v, lim.hash))));
    if dup {
        return Err(());
    }
    Ok(Value::Hash(h))
}

/// Hand `f` each pair of elements of listpack `lp` (a hash's field and value, a sorted set's
/// member and score), which the caller has checked whole; an odd last element is left out.
fn each_pair<'a>(lp: &'a [u8], mut f: impl FnMut(listpack::Elem<'a>, listpack::Elem<'a>)) {
    let mut first = None;
    // (The caller's walk found it whole: this one goes through every element.)
    let _ = listpack::walk(lp, |e| match first.take() {
        None => first = Some(e),
        Some(a) => f(a, e),
    });
}

/// A set of a listpack's `n` members (checked whole by the caller's walk, which found `size`).
fn set_from_listpack(
    lp: &[u8],
    n: usize,
    size: Sizes,
    lim: SetLimits,
) -> std::result::Result<SetValue, DuplicateMember> {
    // Within `SetValue::from_listpack`'s own bound for a listpack, and few enough members for a
    // scan of those before to find a duplicate.
    if n > lim.max_listpack_entries || n > packed::SCANNED_MAX || !SetValue::listpack_fits(n, size.widest) {
        // (It cannot fail: the caller's walk found the listpack whole.)
        let members = listpack::decode(lp).map_err(|_| DuplicateMember)?;
        return SetValue::from_listpack(members, lim);
    }
    packed_unique(lp, size.bytes, 1).map(SetValue::listpack).ok_or(DuplicateMember)
}

/// The elements of listpack `lp` (checked whole by the caller, whose walk counted their `bytes`)
/// in one block, every `stride`-th from the first (a hash's fields, a set's members) found
/// once: None when one of those comes twice.
fn packed_unique(lp: &[u8], bytes: usize, stride: usize) -> Option<packed::Packed> {
    let mut b = packed::Builder::with_bytes(bytes);
    let (mut i, mut dup) = (0, false);
    // (The caller's walk found it whole: this one goes through every element.)
    let _ = listpack::walk(lp, |e| {
        if !dup {
            e.with_bytes(|x| match i % stride == 0 && b.contains(x, stride) {
                true => dup = true,
                false => b.push(x),
            });
        }
        i += 1;
    });
    (!dup).then(|| b.finish())
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
            return Err(RdbError::new(at, format!("invalid hash field TTL {ttl}")));
        }
        if !h.set(&f, &v, lim.hash) {
            return Err(RdbError::new(at, "duplicate hash field"));
        }
        if ttl != 0 {
            h.put_ttl(&f, ttl);
        }
    }
    Ok(Value::Hash(h))
}

/// A sorted set of these pairs, for a value of type `ty` (which decides Redis's report of a
/// NaN score or a duplicate member).
fn zset_from<M: AsRef<[u8]>>(pairs: Vec<(M, f64)>, lim: &Limits, ty: u8, at: usize) -> Result<Value> {
    let mut z = zset_for(pairs.len(), lim);
    for (m, s) in pairs {
        zset_add(&mut z, m.as_ref(), s, lim, ty, at)?;
    }
    Ok(Value::ZSet(z))
}

/// [`zset_from`] for the members of listpack `lp`, which the caller has checked, and their
/// `scores`, read from it.
fn zset_from_listpack(lp: &[u8], scores: &[f64], size: Sizes, lim: &Limits, ty: u8, at: usize) -> Result<Value> {
    if scores.len() <= lim.zset.max_entries && size.widest <= lim.zset.max_value && size.bytes <= SAFETY_BYTES {
        // It stays a listpack (none of `ZSetValue::insert`'s conversions applies): built at
        // once, refusing as `zset_add` does.
        let mut b = ListpackBuilder::with_bytes(size.bytes);
        each_member(lp, scores, |m, score| match score.is_nan() {
            true => Err(nan_score(ty, at)),
            false if b.push(m, score) => Ok(()),
            false => Err(duplicate_member(ty, at)),
        })?;
        return Ok(Value::ZSet(ZSetValue::from_listpack(b)));
    }
    let mut z = zset_for(scores.len(), lim);
    each_member(lp, scores, |m, score| zset_add(&mut z, m, score, lim, ty, at))?;
    Ok(Value::ZSet(z))
}

/// Hand `add` each member of a sorted set's listpack `lp` (checked whole by the caller) with its
/// score, read from it before, until `add` fails.
fn each_member(lp: &[u8], scores: &[f64], mut add: impl FnMut(&[u8], f64) -> Result<()>) -> Result<()> {
    let (mut scores, mut failed) = (scores.iter(), Ok(()));
    each_pair(lp, |m, _| {
        if let (Some(&score), Ok(())) = (scores.next(), &failed) {
            failed = m.with_bytes(|m| add(m, score));
        }
    });
    failed
}

/// An empty sorted set in the encoding `members` members take.
fn zset_for(members: usize, lim: &Limits) -> ZSetValue {
    if members > lim.zset.max_entries {
        ZSetValue::skiplist_for(members)
    } else {
        ZSetValue::new()
    }
}

/// Add a loaded member: a NaN score or a member seen before is refused, as Redis reports them
/// for a value of type `ty`.
fn zset_add(z: &mut ZSetValue, m: &[u8], s: f64, lim: &Limits, ty: u8, at: usize) -> Result<()> {
    if s.is_nan() {
        return Err(nan_score(ty, at));
    }
    if !z.insert(m, s, lim.zset) {
        return Err(duplicate_member(ty, at));
    }
    Ok(())
}

fn nan_score(ty: u8, at: usize) -> RdbError {
    damaged(ty, at, "sorted set score is NaN", Some((2014, "Zset with NAN score detected")))
}

fn duplicate_member(ty: u8, at: usize) -> RdbError {
    damaged(ty, at, "duplicate sorted set member", Some((2026, "Duplicate zset fields detected")))
}

/// What a first walk of a listpack finds about the block a second walk builds: the bytes it
/// takes in the type's own encoding, and its longest element (a value of one over the
/// `*-max-listpack-value` limit converts, and is built element by element instead).
#[derive(Clone, Copy, Default)]
struct Sizes {
    bytes: usize,
    widest: usize,
}

impl Sizes {
    /// Count an element of `len` bytes, an entry of a [`packed::Packed`].
    fn add_entry(&mut self, len: usize) {
        self.bytes = self.bytes.saturating_add(packed::entry_bytes(len));
        self.widest = self.widest.max(len);
    }
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
            values.push(Value::Set(s.clone()));
            s.add(b"not-a-number", lim.set);
            values.push(Value::Set(s));
            let mut z = ZSetValue::new();
            (0..n).for_each(|i| {
                z.insert(format!("m{i}").as_bytes(), i as f64 / 3.0, lim.zset);
            });
            z.insert(b"inf", f64::INFINITY, lim.zset);
            values.push(Value::ZSet(z));
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
    fn intsets_keep_their_width_as_redis_does() {
        // SADD s 1 2 3 5000000000, SREM s 5000000000: Redis keeps the 8-byte width and writes
        // it (its DUMP, without the compression, is this blob); loading keeps it too.
        let lim = Limits::default();
        let mut s = SetValue::default();
        for m in ["1", "2", "3", "5000000000"] {
            s.add(m.as_bytes(), lim.set);
        }
        s.remove(b"5000000000");
        let v = Value::Set(s);
        let mut out = Vec::new();
        write_value(&mut out, &v, SaveOptions { compression: false, ..SaveOptions::default() });
        let mut want = vec![32u8, 8, 0, 0, 0, 3, 0, 0, 0];
        for n in [1u64, 2, 3] {
            want.extend_from_slice(&n.to_le_bytes());
        }
        assert_eq!(out, want);
        let back = round_trip_as(&v, &lim, 10);
        let Value::Set(b) = &back else { panic!() };
        let crate::types::set::Enc::Intset(i) = b.enc() else { panic!("{}", back.encoding()) };
        assert_eq!((i.width(), b.members()), (8, vec![b"1".to_vec(), b"2".to_vec(), b"3".to_vec()]));
    }

    #[test]
    fn listpack_sets_are_type_20_from_version_11() {
        let lim = Limits::default();
        let mut s = SetValue::new_listpack();
        for m in ["b", "1", "a"] {
            s.add(m.as_bytes(), lim.set);
        }
        let v = Value::Set(s);
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

    /// The report of a value of type `ty` refused by `read_value`.
    fn report_of(ty: u8, body: &[u8], lim: &Limits) -> Option<Report> {
        read_value(&mut Reader::new(body), ty, lim).unwrap_err().report
    }

    #[test]
    fn plain_encodings_report_as_redis_does() {
        let lim = Limits::default();
        let corrupt = |line, why: &str| Some(Report::corrupt(line, why));
        // A set with a member twice.
        let dup_set = [2, 1, b'a', 1, b'a'];
        assert_eq!(report_of(TYPE_SET, &dup_set, &lim), corrupt(1961, "Duplicate set members detected"));
        // A sorted set with a NaN score, and with a member twice (ZSET_2: binary scores).
        let mut nan = vec![1, 1, b'm'];
        nan.extend_from_slice(&f64::NAN.to_le_bytes());
        assert_eq!(report_of(TYPE_ZSET_2, &nan, &lim), corrupt(2014, "Zset with NAN score detected"));
        let mut dup_zset = vec![2];
        for _ in 0..2 {
            dup_zset.extend_from_slice(&[1, b'm']);
            dup_zset.extend_from_slice(&1f64.to_le_bytes());
        }
        assert_eq!(report_of(TYPE_ZSET_2, &dup_zset, &lim), corrupt(2026, "Duplicate zset fields detected"));
        // A hash with a field twice: as a listpack, or (more fields than the listpack limit)
        // as a table.
        let dup_hash = [2, 1, b'a', 1, b'b', 1, b'a', 1, b'c'];
        assert_eq!(report_of(TYPE_HASH, &dup_hash, &lim), corrupt(2083, "Hash with dup elements"));
        let small = Limits { hash: HashLimits { max_entries: 1, max_value: 64 }, ..lim };
        assert_eq!(report_of(TYPE_HASH, &dup_hash, &small), corrupt(2151, "Duplicate hash fields detected"));
        // A zipmap with a field twice names the field's length.
        let zipmap = [12, 2, 1, b'a', 1, 0, b'x', 1, b'a', 1, 0, b'y', 0xff];
        let why = "Hash zipmap with dup elements, or big length (1)";
        assert_eq!(report_of(TYPE_HASH_ZIPMAP, &zipmap[..], &lim), corrupt(2289, why));
        // Module values; a type no server writes.
        assert_eq!(report_of(TYPE_MODULE, &[], &lim), corrupt(2784, "Pre-release module format not supported"));
        let why = "The RDB file contains module data I can't load: no matching module type 'AAAAAAAAA'";
        assert_eq!(report_of(TYPE_MODULE_2, &[0], &lim), corrupt(2803, why));
        assert_eq!(report_of(42, &[], &lim), corrupt(2845, "Unknown RDB encoding type 42"));
    }

    #[test]
    fn listpack_hashes_and_sorted_sets_are_built_from_a_walk_and_refused_as_when_decoded() {
        let lim = Limits::default();
        // A listpack as an RDB string (its length, under 64, in one byte).
        let blob = |items: &[&[u8]]| {
            let mut b = listpack::Builder::new();
            items.iter().for_each(|i| b.push(i));
            let lp = b.finish();
            let mut out = vec![lp.len() as u8];
            out.extend_from_slice(&lp);
            out
        };
        let read = |ty, items: &[&[u8]]| read_value(&mut Reader::new(&blob(items)), ty, &lim);
        let refused = |ty, items: &[&[u8]]| read(ty, items).unwrap_err().msg;
        // Integers (stored as such in the listpack) come back as their text.
        let Some(Value::Hash(h)) = read(TYPE_HASH_LISTPACK, &[b"a", b"12", b"-7", b"x"]).unwrap() else { panic!() };
        assert_eq!(h.get(b"a"), Some(&b"12"[..]));
        assert_eq!(h.get(b"-7"), Some(&b"x"[..]));
        let Some(Value::ZSet(z)) = read(TYPE_ZSET_LISTPACK, &[b"m", b"5", b"n", b"1.5"]).unwrap() else { panic!() };
        assert_eq!((z.score(b"m"), z.score(b"n"), z.len()), (Some(5.0), Some(1.5), 2));
        assert!(refused(TYPE_HASH_LISTPACK, &[b"a", b"1", b"a", b"2"]).contains("duplicate hash field"));
        assert!(refused(TYPE_HASH_LISTPACK, &[b"a", b"1", b"b"]).contains("odd number"));
        assert!(refused(TYPE_ZSET_LISTPACK, &[b"m", b"1", b"m", b"2"]).contains("duplicate sorted set member"));
        assert!(refused(TYPE_ZSET_LISTPACK, &[b"m", b"1", b"n"]).contains("odd number"));
        // A bad score anywhere is found before a duplicate member ahead of it.
        assert!(refused(TYPE_ZSET_LISTPACK, &[b"m", b"1", b"m", b"x"]).contains("invalid score"));
        // A damaged listpack is refused before anything else is looked at.
        let mut bad = blob(&[b"m", b"1", b"m", b"2"]);
        bad[5] = 3;
        let e = read_value(&mut Reader::new(&bad), TYPE_ZSET_LISTPACK, &lim).unwrap_err().msg;
        assert!(e.contains("count does not match"), "{e}");
    }

    #[test]
    fn a_listpack_loaded_in_one_block_is_the_value_built_element_by_element() {
        let lim = Limits::default();
        let read = |ty, items: &[Vec<u8>]| {
            let mut b = listpack::Builder::new();
            items.iter().for_each(|i| b.push(i));
            let mut out = Vec::new();
            write_string(&mut out, &b.finish(), SaveOptions::default());
            read_value(&mut Reader::new(&out), ty, &lim)
        };
        let s = |v: &str| v.as_bytes().to_vec();
        let n = |i: usize| format!("{i}").into_bytes();
        let long = vec![b'x'; lim.hash.max_value + 1];
        let items = |k: usize, f: &dyn Fn(usize) -> Vec<Vec<u8>>| (0..k).flat_map(f).collect::<Vec<_>>();
        // Each case: the hash, sorted set and set a walk of these elements built, against the
        // same elements given to the type one by one (`*_from`'s and `from_members`' paths).
        let cases: Vec<Vec<Vec<u8>>> = vec![
            vec![s("b"), s("2"), s("a"), s("1"), s("c"), s("1")],
            vec![s("m"), s("-0"), s("-5"), s("1.5"), s("n"), s("0")],
            items(lim.hash.max_entries, &|i| vec![[s("f"), n(i)].concat(), n(i * 7)]),
            items(lim.hash.max_entries + 1, &|i| vec![n(i), n(i)]),
            vec![s("a"), long.clone(), s("b"), s("1")],
            vec![long.clone(), s("3")],
        ];
        for items in &cases {
            let pairs: Vec<(Vec<u8>, Vec<u8>)> = items.chunks(2).map(|p| (p[0].clone(), p[1].clone())).collect();
            let Some(Value::Hash(h)) = read(TYPE_HASH_LISTPACK, items).unwrap() else { panic!() };
            let Value::Hash(want) = hash_from(pairs.clone(), &lim).unwrap() else { panic!() };
            assert_eq!((h.encoding(), format!("{h:?}")), (want.encoding(), format!("{want:?}")));
            if let (HashValue::Listpack(a), HashValue::Listpack(b)) = (&h, &want) {
                assert!(a == b);
            }
            let scored = items.chunks(2).all(|p| crate::util::num::parse_f64(&p[1]).is_some());
            if scored {
                let Some(Value::ZSet(z)) = read(TYPE_ZSET_LISTPACK, items).unwrap() else { panic!() };
                let scores = pairs.iter().map(|(m, v)| (m.clone(), crate::util::num::parse_f64(v).unwrap()));
                let Value::ZSet(want) = zset_from(scores.collect(), &lim, TYPE_ZSET, 0).unwrap() else { panic!() };
                assert_eq!((z.encoding(), format!("{z:?}")), (want.encoding(), format!("{want:?}")));
            }
            // A list of one node.
            let mut node = vec![1, QUICKLIST_NODE_PACKED as u8];
            let mut b = listpack::Builder::new();
            items.iter().for_each(|i| b.push(i));
            write_string(&mut node, &b.finish(), SaveOptions::default());
            let Some(Value::List(l)) = read_value(&mut Reader::new(&node), TYPE_LIST_QUICKLIST_2, &lim).unwrap() else {
                panic!()
            };
            let want = ListValue::from_nodes(vec![items.clone()]);
            assert_eq!((l.encoding(), format!("{l:?}")), (want.encoding(), format!("{want:?}")));
            let members: Vec<Vec<u8>> = pairs.iter().map(|(m, _)| m.clone()).collect();
            let Some(Value::Set(set)) = read(TYPE_SET_LISTPACK, &members).unwrap() else { panic!() };
            let want = SetValue::from_listpack(members.clone(), lim.set).unwrap();
            assert_eq!((set.encoding(), format!("{set:?}")), (want.encoding(), format!("{want:?}")));
        }
        // Duplicates are refused, as before.
        let dup_set = read(TYPE_SET_LISTPACK, &[s("a"), s("7"), s("a")]).unwrap_err().msg;
        assert!(dup_set.contains("duplicate set member"), "{dup_set}");
        let dup_ints = read(TYPE_SET_LISTPACK, &[s("7"), s("b"), s("7")]).unwrap_err().msg;
        assert!(dup_ints.contains("duplicate set member"), "{dup_ints}");
        let dup_z = read(TYPE_ZSET_LISTPACK, &[s("b"), s("2"), s("a"), s("1"), s("b"), s("0")]).unwrap_err().msg;
        assert!(dup_z.contains("duplicate sorted set member"), "{dup_z}");
        let nan = read(TYPE_ZSET_LISTPACK, &[s("b"), s("nan"), s("b"), s("1")]).unwrap_err().msg;
        assert!(nan.contains("invalid score"), "{nan}");
        let dup_h = read(TYPE_HASH_LISTPACK, &[s("1"), s("a"), s("2"), s("b"), s("1"), s("c")]).unwrap_err().msg;
        assert!(dup_h.contains("duplicate hash field"), "{dup_h}");
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

    #[test]
    fn a_big_loaded_hash_or_set_is_sized_once() {
        // Sized for all its elements before the first goes in (as Redis's rdbLoad expands the
        // dict): grown by doubling instead, 520 fields leave the table of 1,024 buckets still
        // being rehashed into (it started at the 513th).
        let lim = Limits::default();
        let pairs: Vec<(Vec<u8>, Vec<u8>)> = (0..520).map(|i| (format!("f{i}").into_bytes(), b"v".to_vec())).collect();
        let Value::Hash(HashValue::Table(d)) = hash_from(pairs, &lim).unwrap() else { panic!("not a table") };
        assert_eq!((d.len(), d.buckets(), d.is_rehashing()), (520, 1024, false));
        let members: Vec<Vec<u8>> = (0..520).map(|i| format!("m{i}").into_bytes()).collect();
        let set = SetValue::from_members(&members, lim.set).unwrap();
        let crate::types::set::Enc::Table(d) = set.enc() else { panic!("not a table") };
        assert_eq!((d.len(), d.buckets(), d.is_rehashing()), (520, 1024, false));
    }
}
