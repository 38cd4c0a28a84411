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
/// by the element and the key read (a string), or `key->field` reads a hash field.
fn lookup(ctx: &mut Ctx, pattern: &[u8], elem: &[u8]) -> Option<Vec<u8>> {
    if pattern == b"#" {
        return Some(elem.to_vec());
    }
    let star = pattern.iter().position(|&c| c == b'*')?;
    let rest = &pattern[star + 1..];
    let arrow = rest.windows(2).position(|w| w == b"->").filter(|&p| p + 2 < rest.len());
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

/// strtod over the whole string, as SORT parses weights (empty means 0).
fn weight(b: &[u8]) -> Option<f64> {
    // Redis hands the element's C string to strtod: it ends at the first NUL, leading C
    // whitespace is skipped, and the rest must be consumed whole (an empty string is 0, one of
    // whitespace alone is not a number).
    let s = b.split(|&c| c == 0).next().unwrap_or_default();
    if s.is_empty() {
        return Some(0.0);
    }
    let start = s.iter().position(|&c| !matches!(c, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r'))?;
    crate::util::num::parse_f64_errno(&s[start..]).filter(|v| !v.is_nan())
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
            dontsort = !argv[j + 1].contains(&b'*');
            if !dontsort && !full_key_access {
                return Err(CmdError::new("BY option of SORT denied due to insufficient ACL permissions."));
            }
            j += 1;
        } else if is(a, "get") && left >= 1 {
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
    let elems: Vec<Vec<u8>> = match ctx.db.get(key).map(|e| &e.value) {
        None => Vec::new(),
        Some(Value::List(l)) => l.iter().map(|e| e.to_vec()).collect(),
        Some(Value::Set(s)) => {
            kind = 's';
            s.members()
        }
        Some(Value::ZSet(z)) => {
            kind = 'z';
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
        let by_pattern = by.is_some();
        items.sort_by(|a, b| {
            let c = if !alpha {
                a.score.partial_cmp(&b.score).unwrap_or(Ordering::Equal).then_with(|| a.elem.cmp(&b.elem))
            } else if by_pattern {
                match (&a.by, &b.by) {
                    (None, None) => Ordering::Equal,
                    (None, Some(_)) => Ordering::Less,
                    (Some(_), None) => Ordering::Greater,
                    (Some(x), Some(y)) => x.cmp(y),
                }
            } else {
                a.elem.cmp(&b.elem)
            };
            if desc {
                c.reverse()
            } else {
                c
            }
        });
    }
    let range: Vec<&Item> =
        if end >= start { items[start as usize..=end as usize].iter().collect() } else { Vec::new() };
    let elems: Vec<Vec<u8>> = range.iter().map(|it| it.elem.clone()).collect();
    match store {
        None => {
            let n = if gets.is_empty() { elems.len() } else { gets.len() * elems.len() };
            ctx.reply.array(n);
            for e in &elems {
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
            let changed = if n > 0 {
                ctx.db.set(&dst, Value::List(list), false);
                ctx.db.touch_dirty(n as u64);
                ctx.db.notify(ev::LIST, "sortstore", &dst);
                true
            } else if ctx.db.delete(&dst) {
                ctx.db.touch_dirty(1);
                ctx.db.notify(ev::GENERIC, "del", &dst);
                true
            } else {
                false
            };
            // SORT locks every shard, so it tells the watchers of its destination itself.
            if changed {
                ctx.server.keyspace.watches.touch(ctx.db.index, &dst, false);
            }
            ctx.reply.int(n as i64);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::weight;

    #[test]
    fn weights_read_as_strtod_reads_a_c_string() {
        assert_eq!(weight(b""), Some(0.0));
        assert_eq!(weight(b"\x00\x01"), Some(0.0));
        assert_eq!(weight(b"1\x00abc"), Some(1.0));
        assert_eq!(weight(b" \t\x0b1"), Some(1.0));
        assert_eq!(weight(b"  "), None);
        assert_eq!(weight(b"1 "), None);
        assert_eq!(weight("\u{a0}5".as_bytes()), None);
        assert_eq!(weight(b"0x10"), Some(16.0));
        assert_eq!(weight(b"nan"), None);
        assert_eq!(weight(b"1e-310"), None);
        assert_eq!(weight(b"1e400"), None);
    }
}
