//! Set commands (Redis's t_set.c): membership, random access (SPOP, SRANDMEMBER), SMOVE, the
//! algebra (SUNION, SINTER, SDIFF, their STORE variants, SINTERCARD) and SSCAN.

use bytes::Bytes;

use crate::keyspace::notify as ev;

use super::args::{self, is};
use super::keys::parse_scan_options;
use super::{errors, CmdError, CmdResult, CommandSpec, Ctx};
use crate::protocol::MIN_BULK_BYTES;
use crate::types::set::SetLimits;
use crate::types::{Entry, SetValue, Value};
use crate::util::glob::glob_match;

pub static COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("sadd", sadd),
    CommandSpec::new("srem", srem),
    CommandSpec::new("smembers", smembers),
    CommandSpec::new("sismember", sismember),
    CommandSpec::new("smismember", smismember),
    CommandSpec::new("scard", scard),
    CommandSpec::new("spop", spop),
    CommandSpec::new("srandmember", srandmember),
    CommandSpec::new("smove", smove),
    CommandSpec::new("sunion", sunion),
    CommandSpec::new("sinter", sinter),
    CommandSpec::new("sdiff", sdiff),
    CommandSpec::new("sunionstore", sunionstore),
    CommandSpec::new("sinterstore", sinterstore),
    CommandSpec::new("sdiffstore", sdiffstore),
    // SINTERCARD numkeys key [key ...] [LIMIT limit]: Redis declares its keys with a numkeys
    // key spec (movablekeys). The table has only ranges, so this one covers every argument
    // after numkeys: the trailing LIMIT arguments get their shards locked too, which is
    // harmless (a little more locking, never less).
    CommandSpec::new("sintercard", sintercard).getkeys(super::key_specs::procs::numkeys_at_1),
    CommandSpec::new("sscan", sscan),
];

/// `set-max-intset-entries`, `set-max-listpack-entries`, `set-max-listpack-value`.
pub(crate) fn limits(ctx: &Ctx) -> SetLimits {
    let c = ctx.server.config.load();
    SetLimits {
        max_intset_entries: c.set_max_intset_entries as usize,
        max_listpack_entries: c.set_max_listpack_entries as usize,
        max_listpack_value: c.set_max_listpack_value as usize,
    }
}

fn b(s: &'static str) -> Bytes {
    Bytes::from_static(s.as_bytes())
}

fn sadd(ctx: &mut Ctx) -> CmdResult {
    let args = ctx.args;
    let lim = limits(ctx);
    let hint = args.len() - 2;
    let (e, created) = ctx.db.get_or_insert_with(&args[1], || Value::Set(SetValue::create(&args[2], hint, lim)));
    let Value::Set(s) = &mut e.value else {
        return Err(CmdError::new(errors::WRONGTYPE));
    };
    if !created {
        s.maybe_convert(hint, lim);
    }
    let added = args[2..].iter().filter(|m| s.add(m, lim)).count();
    ctx.db.touch_dirty(added as u64);
    if added > 0 {
        ctx.db.notify(ev::SET, "sadd", &args[1]);
    }
    ctx.reply.int(added as i64);
    Ok(())
}

fn srem(ctx: &mut Ctx) -> CmdResult {
    let args = ctx.args;
    let key = &args[1];
    let Some(s) = ctx.db.write::<SetValue>(key)? else {
        ctx.reply.int(0);
        return Ok(());
    };
    let mut deleted = 0;
    for m in &args[2..] {
        if s.remove(m) {
            deleted += 1;
            if s.is_empty() {
                break;
            }
        }
    }
    let emptied = s.is_empty();
    if deleted > 0 {
        ctx.db.notify(ev::SET, "srem", key);
    }
    if emptied {
        ctx.db.delete(key);
        ctx.db.notify(ev::GENERIC, "del", key);
    }
    ctx.db.touch_dirty(deleted);
    ctx.reply.int(deleted as i64);
    Ok(())
}

fn smembers(ctx: &mut Ctx) -> CmdResult {
    let Some(s) = ctx.db.read::<SetValue>(&ctx.args[1])? else {
        ctx.reply.set(0);
        return Ok(());
    };
    let reply = &mut *ctx.reply;
    reply.set(s.len());
    s.for_each(|m| reply.bulk(m));
    Ok(())
}

fn sismember(ctx: &mut Ctx) -> CmdResult {
    let args = ctx.args;
    let found = ctx.db.read::<SetValue>(&args[1])?.is_some_and(|s| s.contains(&args[2]));
    ctx.reply.int(found as i64);
    Ok(())
}

fn smismember(ctx: &mut Ctx) -> CmdResult {
    let args = ctx.args;
    let s = ctx.db.read::<SetValue>(&args[1])?;
    ctx.reply.array(args.len() - 2);
    for m in &args[2..] {
        ctx.reply.int(s.is_some_and(|s| s.contains(m)) as i64);
    }
    Ok(())
}

fn scard(ctx: &mut Ctx) -> CmdResult {
    let n = ctx.db.read::<SetValue>(&ctx.args[1])?.map_or(0, |s| s.len());
    ctx.reply.int(n as i64);
    Ok(())
}

/// Redis's getPositiveLongFromObjectOrReply with its default message.
fn positive(arg: &[u8], msg: &str) -> Result<usize, CmdError> {
    match crate::util::num::parse_i64(arg) {
        Some(n) if n >= 0 => Ok(n as usize),
        _ => Err(CmdError::new(msg)),
    }
}

/// Record the removal of `members` from `key` as SREM effects (batches of 1024 members).
fn propagate_srem(ctx: &mut Ctx, key: &Bytes, members: &[Vec<u8>]) {
    if !ctx.db.propagating() {
        return;
    }
    for chunk in members.chunks(1024) {
        let mut argv = Vec::with_capacity(chunk.len() + 2);
        argv.push(b("SREM"));
        argv.push(key.clone());
        argv.extend(chunk.iter().map(|m| Bytes::copy_from_slice(m)));
        ctx.db.propagate_effect(argv);
    }
}

fn spop(ctx: &mut Ctx) -> CmdResult {
    let args = ctx.args;
    if args.len() == 3 {
        return spop_count(ctx);
    } else if args.len() > 3 {
        return Err(CmdError::new(errors::SYNTAX));
    }
    let key = &args[1];
    let Some(s) = ctx.db.write::<SetValue>(key)? else {
        ctx.reply.null();
        return Ok(());
    };
    let Some(m) = s.pop_random() else {
        ctx.reply.null();
        return Ok(());
    };
    let empty = s.is_empty();
    ctx.reply.bulk(&m);
    ctx.db.notify(ev::SET, "spop", key);
    if empty {
        ctx.db.delete(key);
        ctx.db.notify(ev::GENERIC, "del", key);
    }
    ctx.db.touch_dirty(1);
    ctx.db.propagate_effect(vec![b("SREM"), key.clone(), Bytes::from(m)]);
    Ok(())
}

fn spop_count(ctx: &mut Ctx) -> CmdResult {
    let args = ctx.args;
    let key = &args[1];
    let count = positive(&args[2], "value is out of range, must be positive")?;
    let lim = limits(ctx);
    let Some(s) = ctx.db.write::<SetValue>(key)? else {
        ctx.reply.set(0);
        return Ok(());
    };
    if count == 0 {
        ctx.reply.set(0);
        return Ok(());
    }
    let size = s.len();
    if count >= size {
        // The whole set: returned as SUNION would, the key deleted, propagated as DEL.
        let mut all = SetValue::default();
        s.for_each(|m| {
            all.add(m, lim);
        });
        ctx.reply.set(all.len());
        let reply = &mut *ctx.reply;
        all.for_each(|m| reply.bulk(m));
        ctx.db.delete(key);
        ctx.db.touch_dirty(size as u64);
        ctx.db.notify(ev::SET, "spop", key);
        ctx.db.notify(ev::GENERIC, "del", key);
        // Redis 7.2 (#12320): UNLINK when server deletes are lazy.
        let lazy = ctx.server.config.load().lazyfree_lazy_server_del;
        ctx.db.propagate_effect(vec![b(if lazy { "UNLINK" } else { "DEL" }), key.clone()]);
        return Ok(());
    }
    let popped = s.pop_count(count, lim);
    ctx.reply.set(popped.len());
    for m in &popped {
        ctx.reply.bulk(m);
    }
    ctx.db.touch_dirty(count as u64);
    ctx.db.notify(ev::SET, "spop", key);
    propagate_srem(ctx, key, &popped);
    Ok(())
}

fn srandmember(ctx: &mut Ctx) -> CmdResult {
    let args = ctx.args;
    if args.len() > 3 {
        return Err(CmdError::new(errors::SYNTAX));
    }
    if args.len() == 3 {
        let l = args::int(&args[2])?;
        if l == i64::MIN {
            return Err(CmdError::new(format!(
                "value is out of range, value must between {} and {}",
                -i64::MAX,
                i64::MAX
            )));
        }
        let Some(s) = ctx.db.write::<SetValue>(&args[1])? else {
            ctx.reply.array(0);
            return Ok(());
        };
        let count = l.unsigned_abs() as usize;
        if l < -1 {
            // Written as drawn, stopping past the output-buffer limit (see HRANDFIELD).
            ctx.reply.array(count);
            let mut left = count;
            if !ctx.reply.room_for(count.saturating_mul(MIN_BULK_BYTES)) {
                return Ok(());
            }
            while left > 0 && !ctx.reply.over_limit() {
                let n = left.min(super::hashes::SAMPLE_CHUNK);
                for m in &s.sample(n) {
                    ctx.reply.bulk(m);
                }
                left -= n;
            }
            return Ok(());
        }
        let members = if count == 0 {
            Vec::new()
        } else if l < 0 || count == 1 {
            s.sample(count)
        } else if count >= s.len() {
            s.members()
        } else {
            s.sample_distinct(count)
        };
        ctx.reply.array(members.len());
        for m in &members {
            ctx.reply.bulk(m);
        }
        return Ok(());
    }
    match ctx.db.write::<SetValue>(&args[1])?.and_then(|s| s.random_member()) {
        Some(m) => ctx.reply.bulk(&m),
        None => ctx.reply.null(),
    }
    Ok(())
}

fn smove(ctx: &mut Ctx) -> CmdResult {
    let args = ctx.args;
    let (src, dst, member) = (&args[1], &args[2], &args[3]);
    let lim = limits(ctx);
    let src_is_set = ctx.db.get(src).map(|e| matches!(e.value, Value::Set(_)));
    let dst_ok = ctx.db.get(dst).is_none_or(|e| matches!(e.value, Value::Set(_)));
    match src_is_set {
        None => {
            ctx.reply.int(0);
            return Ok(());
        }
        Some(false) => return Err(CmdError::new(errors::WRONGTYPE)),
        Some(true) if !dst_ok => return Err(CmdError::new(errors::WRONGTYPE)),
        Some(true) => {}
    }
    let s = ctx.db.write::<SetValue>(src)?.ok_or_else(|| CmdError::new(errors::NO_KEY))?;
    if src == dst {
        let found = s.contains(member);
        ctx.reply.int(found as i64);
        return Ok(());
    }
    if !s.remove(member) {
        ctx.reply.int(0);
        return Ok(());
    }
    let emptied = s.is_empty();
    ctx.db.notify(ev::SET, "srem", src);
    if emptied {
        ctx.db.delete(src);
        ctx.db.notify(ev::GENERIC, "del", src);
    }
    ctx.db.touch_dirty(1);
    let (e, _) = ctx.db.get_or_insert_with(dst, || Value::Set(SetValue::create(member, 1, lim)));
    let added = match &mut e.value {
        Value::Set(d) => d.add(member, lim),
        _ => false,
    };
    if added {
        ctx.db.touch_dirty(1);
        ctx.db.notify(ev::SET, "sadd", dst);
    }
    ctx.reply.int(1);
    Ok(())
}

/// The sizes of the sets at `keys` (None for missing keys), all type-checked before any work,
/// as Redis's lookups do.
fn sizes(ctx: &mut Ctx, keys: &[Bytes]) -> Result<Vec<Option<usize>>, CmdError> {
    let mut out = Vec::with_capacity(keys.len());
    for k in keys {
        out.push(ctx.db.read::<SetValue>(k)?.map(|s| s.len()));
    }
    Ok(out)
}

/// Run `f` on the set at `key` (which the caller checked to be a set).
fn with_set<R>(ctx: &mut Ctx, key: &[u8], f: impl FnOnce(&SetValue) -> R) -> Option<R> {
    match ctx.db.peek(key) {
        Some(Entry { value: Value::Set(s), .. }) => Some(f(s)),
        _ => None,
    }
}

/// The intersection of the sets at `keys`, in the order of the smallest set (empty if a key is
/// missing), and that smallest set's encoding (which SINTERSTORE's result starts from).
/// `limit` (0: none) stops early (SINTERCARD).
fn intersect(ctx: &mut Ctx, keys: &[Bytes], limit: usize) -> Result<(Vec<Vec<u8>>, &'static str), CmdError> {
    let sizes = sizes(ctx, keys)?;
    if sizes.iter().any(|s| s.is_none()) {
        return Ok((Vec::new(), "intset"));
    }
    let mut order: Vec<usize> = (0..keys.len()).collect();
    order.sort_by_key(|&i| sizes[i]);
    let first = &keys[order[0]];
    let (mut result, encoding) =
        with_set(ctx, first, |s| (s.members(), s.encoding())).unwrap_or((Vec::new(), "intset"));
    for &i in &order[1..] {
        if keys[i] == *first {
            continue;
        }
        result =
            with_set(ctx, &keys[i], |s| result.into_iter().filter(|m| s.contains(m)).collect()).unwrap_or_default();
    }
    if limit > 0 {
        result.truncate(limit);
    }
    Ok((result, encoding))
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Op {
    Union,
    Diff,
}

/// SUNION / SDIFF into a new set (Redis's sunionDiffGenericCommand, same algorithm choice so
/// the result's encoding matches).
fn union_diff(ctx: &mut Ctx, keys: &[Bytes], op: Op) -> Result<SetValue, CmdError> {
    let max = limits(ctx);
    let sizes = sizes(ctx, keys)?;
    let mut out = SetValue::default();
    match op {
        Op::Union => {
            for k in keys {
                with_set(ctx, k, |s| {
                    s.for_each(|m| {
                        out.add(m, max);
                    })
                });
            }
        }
        Op::Diff => {
            if sizes[0].is_none() || keys[1..].iter().any(|k| *k == keys[0]) {
                return Ok(out);
            }
            let first = sizes[0].unwrap_or(0);
            let present = sizes.iter().flatten().count();
            let algo_one = (first * present) / 2;
            let algo_two: usize = sizes.iter().flatten().sum();
            if algo_one <= algo_two {
                let mut cand = with_set(ctx, &keys[0], |s| s.members()).unwrap_or_default();
                for k in &keys[1..] {
                    if let Some(c) = with_set(ctx, k, |s| cand.iter().filter(|m| !s.contains(m)).cloned().collect()) {
                        cand = c;
                    }
                }
                for m in &cand {
                    out.add(m, max);
                }
            } else {
                with_set(ctx, &keys[0], |s| {
                    s.for_each(|m| {
                        out.add(m, max);
                    })
                });
                for k in &keys[1..] {
                    if out.is_empty() {
                        break;
                    }
                    with_set(ctx, k, |s| {
                        s.for_each(|m| {
                            out.remove(m);
                        })
                    });
                }
            }
        }
    }
    Ok(out)
}

fn reply_set(ctx: &mut Ctx, s: &SetValue) {
    let reply = &mut *ctx.reply;
    reply.set(s.len());
    s.for_each(|m| reply.bulk(m));
}

/// Store `s` at `dst` (or delete `dst` when empty) and reply with its size.
fn store(ctx: &mut Ctx, dst: &[u8], s: SetValue) {
    let n = s.len();
    let event = match &ctx.args[0][..] {
        a if a.eq_ignore_ascii_case(b"sinterstore") => "sinterstore",
        a if a.eq_ignore_ascii_case(b"sdiffstore") => "sdiffstore",
        _ => "sunionstore",
    };
    if n > 0 {
        ctx.db.set(dst, Value::Set(s), false);
        ctx.db.touch_dirty(1);
        ctx.db.notify(ev::SET, event, dst);
    } else if ctx.db.delete(dst) {
        ctx.db.touch_dirty(1);
        ctx.db.notify(ev::GENERIC, "del", dst);
    }
    ctx.reply.int(n as i64);
}

fn sunion(ctx: &mut Ctx) -> CmdResult {
    let args = ctx.args;
    let s = union_diff(ctx, &args[1..], Op::Union)?;
    reply_set(ctx, &s);
    Ok(())
}

fn sdiff(ctx: &mut Ctx) -> CmdResult {
    let args = ctx.args;
    let s = union_diff(ctx, &args[1..], Op::Diff)?;
    reply_set(ctx, &s);
    Ok(())
}

fn sunionstore(ctx: &mut Ctx) -> CmdResult {
    let args = ctx.args;
    let s = union_diff(ctx, &args[2..], Op::Union)?;
    store(ctx, &args[1], s);
    Ok(())
}

fn sdiffstore(ctx: &mut Ctx) -> CmdResult {
    let args = ctx.args;
    let s = union_diff(ctx, &args[2..], Op::Diff)?;
    store(ctx, &args[1], s);
    Ok(())
}

fn sinter(ctx: &mut Ctx) -> CmdResult {
    let args = ctx.args;
    let (members, _) = intersect(ctx, &args[1..], 0)?;
    ctx.reply.set(members.len());
    for m in &members {
        ctx.reply.bulk(m);
    }
    Ok(())
}

/// SINTERSTORE's result set, as Redis 7.2 builds it: an intset when the smallest input is one,
/// else a listpack (converting at the usual limits), made an intset at the end when every
/// member is an integer and an intset can hold them.
fn sinterstore(ctx: &mut Ctx) -> CmdResult {
    let args = ctx.args;
    let lim = limits(ctx);
    let (members, first_encoding) = intersect(ctx, &args[2..], 0)?;
    let mut s = if first_encoding == "intset" { SetValue::default() } else { SetValue::new_listpack() };
    let mut only_integers = true;
    for m in &members {
        only_integers &= crate::util::num::parse_i64(m).is_some();
        s.add(m, lim);
    }
    if only_integers && !s.is_empty() {
        s.maybe_convert_to_intset(lim);
    }
    store(ctx, &args[1], s);
    Ok(())
}

fn sintercard(ctx: &mut Ctx) -> CmdResult {
    let args = ctx.args;
    let numkeys = match crate::util::num::parse_i64(&args[1]) {
        Some(n) if n >= 1 => n as usize,
        _ => return Err(CmdError::new("numkeys should be greater than 0")),
    };
    if numkeys > args.len() - 2 {
        return Err(CmdError::new("Number of keys can't be greater than number of args"));
    }
    let mut limit = 0;
    let mut j = 2 + numkeys;
    while j < args.len() {
        if is(&args[j], "limit") && j + 1 < args.len() {
            limit = positive(&args[j + 1], "LIMIT can't be negative")?;
            j += 2;
        } else {
            return Err(CmdError::new(errors::SYNTAX));
        }
    }
    let (members, _) = intersect(ctx, &args[2..2 + numkeys], limit)?;
    ctx.reply.int(members.len() as i64);
    Ok(())
}

fn sscan(ctx: &mut Ctx) -> CmdResult {
    let args = ctx.args;
    let cursor = super::keys::parse_cursor(&args[2])?;
    let Some(s) = ctx.db.read::<SetValue>(&args[1])? else {
        super::keys::reply_scan::<&[u8]>(ctx.reply, 0, &[]);
        return Ok(());
    };
    let opts = parse_scan_options(args, 3, false)?;
    let mut out: Vec<Vec<u8>> = Vec::new();
    let next = s.scan(cursor, opts.count, |m| {
        if opts.pattern.is_none_or(|p| glob_match(p, m, false)) {
            out.push(m.to_vec());
        }
    });
    super::keys::reply_scan(ctx.reply, next, &out);
    Ok(())
}
