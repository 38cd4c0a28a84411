//! SORT and SORT_RO (Redis's sort.c): sort the elements of a list, set or sorted set
//! numerically or lexicographically, optionally by external keys (`BY pattern`, with
//! `key->field` for hash fields), fetch external values (`GET pattern`, `GET #`), LIMIT,
//! ASC/DESC, and STORE into a list. Patterns may name any key, so SORT locks every shard.

use bytes::Bytes;
use std::cmp::Ordering;

use super::args::{self, is};
use super::flags::*;
use super::{errors, CmdError, CmdResult, CommandSpec, Ctx};
use crate::keyspace::notify as ev;
use crate::types::{ListValue, Value};
use crate::util::bytetext::c_str;

pub static COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("sort", sort).internal(ALL_KEYS).getkeys(super::key_specs::procs::sort),
    CommandSpec::new("sort_ro", sort_ro).internal(ALL_KEYS).getkeys(super::key_specs::procs::sort_ro),
];

fn sort(ctx: &mut Ctx) -> CmdResult {
    sort_generic(ctx, false)
}

fn sort_ro(ctx: &mut Ctx) -> CmdResult {
    sort_generic(ctx, true)
}

struct Item {
    elem: Vec<u8>,
    score: f64,
    by: Option<Vec<u8>>,
}

/// Redis's lookupKeyByPattern: `#` is the element itself; otherwise the first `*` is replaced
/// by the element and the key read (a string), or `key->field` reads a hash field. Redis
/// looks for `#`, `*` and `->` with C string functions, so a NUL ends the pattern for them
/// (the field name, taken by length, keeps what follows it).
fn lookup(ctx: &mut Ctx, pattern: &[u8], elem: &[u8]) -> Option<Vec<u8>> {
    if c_str(pattern) == b"#" {
        return Some(elem.to_vec());
    }
    let star = c_str(pattern).iter().position(|&c| c == b'*')?;
    let rest = &pattern[star + 1..];
    let arrow = c_str(rest).windows(2).position(|w| w == b"->").filter(|&p| rest.get(p + 2).is_some_and(|&c| c != 0));
    let (suffix, field) = match arrow {
        Some(p) => (&rest[..p], Some(&rest[p + 2..])),
        None => (rest, None),
    };
    let mut key = Vec::with_capacity(pattern.len() + elem.len());
    key.extend_from_slice(&pattern[..star]);
    key.extend_from_slice(elem);
    key.extend_from_slice(suffix);
    let e = ctx.db.get(&key)?;
    match (&e.value, field) {
        (Value::Hash(h), Some(f)) => h.get(f).map(|v| v.to_vec()),
        (Value::Str(s), None) => Some(s.to_bytes().into_owned()),
        _ => None,
    }
}

/// A weight as SORT reads it: C's strtod on the NUL-terminated text, which must be used up;
/// NaN and out-of-range values (ERANGE, which glibc also sets for an inexact subnormal) are
/// refused. Leading whitespace is skipped, but whitespace alone is no number, while the empty
/// string is 0 (strtod converts nothing and stops at the terminator).
fn weight(b: &[u8]) -> Option<f64> {
    let s = c_str(b);
    if s.is_empty() {
        return Some(0.0);
    }
    let blank = |c: &&u8| matches!(**c, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r');
    let t = &s[s.iter().take_while(blank).count()..];
    // parse_f64_errno refuses what glibc's strtod flags with ERANGE, inexact subnormals included.
    crate::util::num::parse_f64_errno(t).filter(|v| !v.is_nan())
}

/// Redis's sortCompare. Numeric sorts break ties between equal weights by comparing the
/// elements' bytes; ALPHA sorts put missing BY values first and otherwise compare with
/// strcoll (the C locale's byte order, up to the first NUL), or with a full byte comparison
/// when storing.
fn compare(a: &Item, b: &Item, alpha: bool, by_pattern: bool, store: bool, desc: bool) -> Ordering {
    let text = |x: &[u8], y: &[u8]| if store { x.cmp(y) } else { c_str(x).cmp(c_str(y)) };
    let c = if !alpha {
        a.score.partial_cmp(&b.score).unwrap_or(Ordering::Equal).then_with(|| a.elem.cmp(&b.elem))
    } else if by_pattern {
        match (&a.by, &b.by) {
            (None, None) => Ordering::Equal,
            (None, Some(_)) => Ordering::Less,
            (Some(_), None) => Ordering::Greater,
            (Some(x), Some(y)) => text(x, y),
        }
    } else {
        text(&a.elem, &b.elem)
    };
    if desc {
        c.reverse()
    } else {
        c
    }
}

fn sort_generic(ctx: &mut Ctx, readonly: bool) -> CmdResult {
    let argv = ctx.args;
    let (mut desc, mut alpha) = (false, false);
    let (mut limit_start, mut limit_count) = (0i64, -1i64);
    let mut store: Option<Bytes> = None;
    let mut by: Option<Bytes> = None;
    let mut dontsort = false;
    let mut gets: Vec<Bytes> = Vec::new();
    // BY and GET patterns name keys the key specs cannot see: they need read access to every
    // key (the ACL check is made once, up front, as Redis does).
    let full_key_access = super::acl::may_read_any_key(ctx.server, ctx.client, argv);
    // Nor can a cluster node read them: they may live on other nodes (Redis 7.2 refuses them
    // outright; 7.4 accepts patterns that hash to the key's slot).
    let cluster = ctx.server.cluster.get().is_some();
    let mut j = 2;
    while j < argv.len() {
        let left = argv.len() - j - 1;
        let a = &argv[j];
        if is(a, "asc") {
            desc = false;
        } else if is(a, "desc") {
            desc = true;
        } else if is(a, "alpha") {
            alpha = true;
        } else if is(a, "limit") && left >= 2 {
            limit_start = args::int(&argv[j + 1])?;
            limit_count = args::int(&argv[j + 2])?;
            j += 2;
        } else if !readonly && is(a, "store") && left >= 1 {
            store = Some(argv[j + 1].clone());
            j += 1;
        } else if is(a, "by") && left >= 1 {
            by = Some(argv[j + 1].clone());
            dontsort = !c_str(&argv[j + 1]).contains(&b'*');
            if !dontsort && cluster {
                return Err(CmdError::new("BY option of SORT denied in Cluster mode."));
            }
            if !dontsort && !full_key_access {
                return Err(CmdError::new("BY option of SORT denied due to insufficient ACL permissions."));
            }
            j += 1;
        } else if is(a, "get") && left >= 1 {
            if cluster {
                return Err(CmdError::new("GET option of SORT denied in Cluster mode."));
            }
            if !full_key_access {
                return Err(CmdError::new("GET option of SORT denied due to insufficient ACL permissions."));
            }
            gets.push(argv[j + 1].clone());
            j += 1;
        } else {
            return Err(CmdError::new(errors::SYNTAX));
        }
        j += 1;
    }
    // Collect the elements (in natural order: list order, set order, score order).
    let key = &argv[1];
    let mut kind = 'l';
    // Like Redis, SORT (and SORT_RO) leaves a sorted set in the skiplist encoding: it
    // converts a listpack one before reading it, and nothing converts it back.
    let elems: Vec<Vec<u8>> = match ctx.db.get_mut(key).map(|e| &mut e.value) {
        None => Vec::new(),
        Some(Value::List(l)) => l.iter().map(|e| e.to_vec()).collect(),
        Some(Value::Set(s)) => {
            kind = 's';
            s.members()
        }
        Some(Value::ZSet(z)) => {
            kind = 'z';
            z.convert_to_skiplist();
            let mut v = Vec::with_capacity(z.len());
            z.for_each(|m, _| v.push(m.to_vec()));
            v
        }
        Some(_) => return Err(CmdError::new(errors::WRONGTYPE)),
    };
    // An unsorted set would give a different order on a replica (or to a script): sort it when
    // storing or when a script asks (Redis's rule).
    if dontsort && kind == 's' && (store.is_some() || ctx.client.script) {
        dontsort = false;
        alpha = true;
        by = None;
    }
    let len = elems.len() as i64;
    let start = limit_start.max(0).min(len);
    let count = limit_count.max(-1).min(len);
    let (mut start, mut end) = (start, if count < 0 { len - 1 } else { start + count - 1 });
    if start >= len {
        start = len - 1;
        end = len - 2;
    }
    end = end.min(len - 1);
    let mut items: Vec<Item> = if dontsort && kind != 's' {
        // Lists and sorted sets keep their order; DESC walks them from the end.
        let mut v: Vec<Vec<u8>> = elems;
        if desc {
            v.reverse();
        }
        let picked: Vec<Item> = if end >= start {
            v.into_iter()
                .skip(start as usize)
                .take((end - start + 1) as usize)
                .map(|elem| Item { elem, score: 0.0, by: None })
                .collect()
        } else {
            Vec::new()
        };
        end -= start;
        start = 0;
        picked
    } else {
        elems.into_iter().map(|elem| Item { elem, score: 0.0, by: None }).collect()
    };
    if !dontsort {
        let mut conversion_error = false;
        for it in items.iter_mut() {
            let byval = match &by {
                Some(p) => match lookup(ctx, p, &it.elem) {
                    Some(v) => v,
                    None => continue,
                },
                None => it.elem.clone(),
            };
            if alpha {
                if by.is_some() {
                    it.by = Some(byval);
                }
            } else {
                match weight(&byval) {
                    Some(w) => it.score = w,
                    None => conversion_error = true,
                }
            }
        }
        if conversion_error {
            return Err(CmdError::new("One or more scores can't be converted into double"));
        }
        let (by_pattern, storing) = (by.is_some(), store.is_some());
        let cmp = |a: &Item, b: &Item| compare(a, b, alpha, by_pattern, storing, desc);
        // Redis sorts with the C library's qsort (glibc's is a stable merge sort), or with its
        // own unstable partial quicksort when a BY pattern comes with a LIMIT.
        if by_pattern && (start != 0 || end != len - 1) {
            crate::util::pqsort::pqsort(&mut items, start, end, cmp);
        } else {
            items.sort_by(cmp);
        }
    }
    let range: Vec<&Item> =
        if end >= start { items[start as usize..=end as usize].iter().collect() } else { Vec::new() };
    let elems: Vec<Vec<u8>> = range.iter().map(|it| it.elem.clone()).collect();
    match store {
        None => {
            let n = if gets.is_empty() { elems.len() } else { gets.len() * elems.len() };
            ctx.reply.array(n);
            for e in &elems {
                // GET patterns multiply the reply (a thousand `GET #` over a big list): past the
                // client's limit it is never sent (see `ReplySink::limit`).
                if ctx.reply.over_limit() {
                    break;
                }
                if gets.is_empty() {
                    ctx.reply.bulk(e);
                }
                for g in &gets {
                    match lookup(ctx, g, e) {
                        Some(v) => ctx.reply.bulk(&v),
                        None => ctx.reply.null(),
                    }
                }
            }
        }
        Some(dst) => {
            let mut items: Vec<Vec<u8>> = Vec::new();
            for e in &elems {
                if gets.is_empty() {
                    items.push(e.to_vec());
                }
                for g in &gets {
                    items.push(lookup(ctx, g, e).unwrap_or_default());
                }
            }
            // Built as Redis builds it: a quicklist, converted at the end.
            let list = ListValue::built(items);
            let n = list.len();
            // The notifications signal the destination to its watchers (`Db::signal_modified`).
            if n > 0 {
                ctx.db.set(&dst, Value::List(list), false);
                ctx.db.touch_dirty(n as u64);
                ctx.db.notify(ev::LIST, "sortstore", &dst);
            } else if ctx.db.delete_stored(&dst) {
                // sortCommand's dbDelete: an expired destination still stored is deleted ("del"),
                // not expired.
                ctx.db.touch_dirty(1);
                ctx.db.notify(ev::GENERIC, "del", &dst);
            }
            ctx.reply.int(n as i64);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_are_read_as_strtod_reads_them() {
        assert_eq!(weight(b""), Some(0.0));
        assert_eq!(weight(b"\x00junk"), Some(0.0));
        assert_eq!(weight(b"3\x00junk"), Some(3.0));
        assert_eq!(weight(b" \t\x0b-2.5"), Some(-2.5));
        assert_eq!(weight(b"0x10"), Some(16.0));
        assert_eq!(weight(b"-inf"), Some(f64::NEG_INFINITY));
        // An exact subnormal is no ERANGE; a non-breaking space is not C whitespace.
        assert_eq!(weight(b"0x1p-1074"), Some(f64::from_bits(1)));
        assert_eq!(weight("\u{a0}5".as_bytes()), None);
        for bad in [&b" "[..], b"2 ", b"nan", b"abc", b"1e309", b"1e-400", b"1e-310", b"\xff", b"-"] {
            assert_eq!(weight(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn alpha_compares_up_to_a_nul_unless_storing() {
        let item = |e: &[u8]| Item { elem: e.to_vec(), score: 0.0, by: None };
        let (a, b) = (item(b"a\x00c"), item(b"a\x00b"));
        assert_eq!(compare(&a, &b, true, false, false, false), Ordering::Equal);
        assert_eq!(compare(&a, &b, true, false, true, false), Ordering::Greater);
        assert_eq!(compare(&a, &b, true, false, true, true), Ordering::Less);
        // Numeric ties are broken by all the bytes of the elements.
        assert_eq!(compare(&a, &b, false, false, false, false), Ordering::Greater);
    }
}
