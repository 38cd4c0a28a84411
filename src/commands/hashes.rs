//! Hash commands (Redis's t_hash.c): HSET and friends, counters, whole-hash reads, HRANDFIELD
//! and HSCAN.

use bytes::Bytes;

use super::args::{self, is};
use super::flags::*;
use super::keys::{parse_cursor, parse_scan_options, reply_scan};
use super::{errors, CmdError, CmdResult, CommandSpec, Ctx};
use crate::types::hash::{HashLimits, HashValue};
use crate::types::{Entry, Value};
use crate::util::glob::glob_match;
use crate::util::num::LongDouble;

const H: &[&str] = &["hash"];

pub static COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("hset", -4, WRITE | DENYOOM | FAST, hset)
        .keys(1, 1, 1)
        .acl(H)
        .group("hash")
        .doc("2.0.0", "Set the string value of a hash field"),
    CommandSpec::new("hsetnx", 4, WRITE | DENYOOM | FAST, hsetnx)
        .keys(1, 1, 1)
        .key_spec(&["RW", "insert"], "")
        .acl(H)
        .group("hash")
        .doc("2.0.0", "Set the value of a hash field, only if the field does not exist"),
    CommandSpec::new("hget", 3, READONLY | FAST, hget)
        .keys(1, 1, 1)
        .acl(H)
        .group("hash")
        .doc("2.0.0", "Get the value of a hash field"),
    CommandSpec::new("hmset", -4, WRITE | DENYOOM | FAST, hset)
        .keys(1, 1, 1)
        .acl(H)
        .group("hash")
        .doc("2.0.0", "Set multiple hash fields to multiple values"),
    CommandSpec::new("hmget", -3, READONLY | FAST, hmget)
        .keys(1, 1, 1)
        .acl(H)
        .group("hash")
        .doc("2.0.0", "Get the values of all the given hash fields"),
    CommandSpec::new("hgetall", 2, READONLY, hgetall)
        .keys(1, 1, 1)
        .acl(H)
        .group("hash")
        .doc("2.0.0", "Get all the fields and values in a hash"),
    CommandSpec::new("hdel", -3, WRITE | FAST, hdel)
        .keys(1, 1, 1)
        .key_spec(&["RW", "delete"], "")
        .acl(H)
        .group("hash")
        .doc("2.0.0", "Delete one or more hash fields"),
    CommandSpec::new("hlen", 2, READONLY | FAST, hlen)
        .keys(1, 1, 1)
        .key_spec(&["RO"], "")
        .acl(H)
        .group("hash")
        .doc("2.0.0", "Get the number of fields in a hash"),
    CommandSpec::new("hexists", 3, READONLY | FAST, hexists)
        .keys(1, 1, 1)
        .key_spec(&["RO"], "")
        .acl(H)
        .group("hash")
        .doc("2.0.0", "Determine if a hash field exists"),
    CommandSpec::new("hkeys", 2, READONLY, hkeys)
        .keys(1, 1, 1)
        .acl(H)
        .group("hash")
        .doc("2.0.0", "Get all the fields in a hash"),
    CommandSpec::new("hvals", 2, READONLY, hvals)
        .keys(1, 1, 1)
        .acl(H)
        .group("hash")
        .doc("2.0.0", "Get all the values in a hash"),
    CommandSpec::new("hincrby", 4, WRITE | DENYOOM | FAST, hincrby)
        .keys(1, 1, 1)
        .key_spec(&["RW", "access", "update"], "")
        .acl(H)
        .group("hash")
        .doc("2.0.0", "Increment the integer value of a hash field by the given number"),
    CommandSpec::new("hincrbyfloat", 4, WRITE | DENYOOM | FAST, hincrbyfloat)
        .keys(1, 1, 1)
        .key_spec(&["RW", "access", "update"], "")
        .acl(H)
        .group("hash")
        .doc("2.6.0", "Increment the float value of a hash field by the given amount"),
    CommandSpec::new("hstrlen", 3, READONLY | FAST, hstrlen)
        .keys(1, 1, 1)
        .key_spec(&["RO"], "")
        .acl(H)
        .group("hash")
        .doc("3.2.0", "Get the length of the value of a hash field"),
    CommandSpec::new("hrandfield", -2, READONLY, hrandfield)
        .keys(1, 1, 1)
        .acl(H)
        .group("hash")
        .doc("6.2.0", "Get one or multiple random fields from a hash"),
    CommandSpec::new("hscan", -3, READONLY, hscan)
        .keys(1, 1, 1)
        .acl(H)
        .group("hash")
        .doc("2.8.0", "Incrementally iterate hash fields and associated values"),
];

/// The hash stored in an entry, or WRONGTYPE.
fn as_hash(e: &Entry) -> Result<&HashValue, CmdError> {
    match &e.value {
        Value::Hash(h) => Ok(h),
        _ => Err(CmdError::new(errors::WRONGTYPE)),
    }
}

/// Read a hash key: `Ok(None)` if missing, WRONGTYPE if another type.
fn read(e: Option<&Entry>) -> Result<Option<&HashValue>, CmdError> {
    e.map(as_hash).transpose()
}

/// The current conversion thresholds.
fn limits(ctx: &Ctx) -> HashLimits {
    let c = ctx.server.config.load();
    HashLimits { max_entries: c.hash_max_listpack_entries as usize, max_value: c.hash_max_listpack_value as usize }
}

/// The hash at `key`, created empty if missing (Redis's hashTypeLookupWriteOrCreate). Callers
/// only fail after this when the key already held fields, so no empty hash is ever left behind.
fn write_or_create<'a>(ctx: &'a mut Ctx, key: &[u8]) -> Result<&'a mut HashValue, CmdError> {
    let (e, _) = ctx.db.get_or_insert_with(key, || Value::Hash(Box::default()));
    match &mut e.value {
        Value::Hash(h) => Ok(h),
        _ => Err(CmdError::new(errors::WRONGTYPE)),
    }
}

fn hset(ctx: &mut Ctx) -> CmdResult {
    let args = ctx.args;
    if !args.len().is_multiple_of(2) {
        let name = if is(&args[0], "hset") { "hset" } else { "hmset" };
        return Err(CmdError::new(format!("wrong number of arguments for '{name}' command")));
    }
    let lim = limits(ctx);
    let h = write_or_create(ctx, &args[1])?;
    h.try_conversion(args[2..].iter().map(|a| &a[..]), lim);
    let mut created = 0;
    for fv in args[2..].chunks(2) {
        if h.set(&fv[0], &fv[1], lim) {
            created += 1;
        }
    }
    ctx.db.touch_dirty((args.len() as u64 - 2) / 2);
    ctx.db.notify(crate::keyspace::notify::HASH, "hset", &args[1]);
    if is(&args[0], "hset") {
        ctx.reply.int(created);
    } else {
        ctx.reply.ok();
    }
    Ok(())
}

fn hsetnx(ctx: &mut Ctx) -> CmdResult {
    let args = ctx.args;
    let lim = limits(ctx);
    let h = write_or_create(ctx, &args[1])?;
    if h.contains(&args[2]) {
        ctx.reply.int(0);
        return Ok(());
    }
    h.try_conversion([&args[2][..], &args[3][..]], lim);
    h.set(&args[2], &args[3], lim);
    ctx.db.touch_dirty(1);
    ctx.db.notify(crate::keyspace::notify::HASH, "hset", &args[1]);
    ctx.reply.int(1);
    Ok(())
}

fn hget(ctx: &mut Ctx) -> CmdResult {
    let args = ctx.args;
    match read(ctx.db.get(&args[1]))?.and_then(|h| h.get(&args[2])) {
        Some(v) => ctx.reply.bulk(v),
        None => ctx.reply.null(),
    }
    Ok(())
}

fn hmget(ctx: &mut Ctx) -> CmdResult {
    let args = ctx.args;
    let h = read(ctx.db.get(&args[1]))?;
    ctx.reply.array(args.len() - 2);
    for f in &args[2..] {
        match h.and_then(|h| h.get(f)) {
            Some(v) => ctx.reply.bulk(v),
            None => ctx.reply.null(),
        }
    }
    Ok(())
}

/// HGETALL / HKEYS / HVALS.
fn getall_generic(ctx: &mut Ctx, keys: bool, vals: bool) -> CmdResult {
    let Some(h) = read(ctx.db.get(&ctx.args[1]))? else {
        if keys && vals {
            ctx.reply.map(0);
        } else {
            ctx.reply.array(0);
        }
        return Ok(());
    };
    if keys && vals {
        ctx.reply.map(h.len());
    } else {
        ctx.reply.array(h.len());
    }
    let reply = &mut *ctx.reply;
    h.for_each(|f, v| {
        if keys {
            reply.bulk(f);
        }
        if vals {
            reply.bulk(v);
        }
    });
    Ok(())
}

fn hgetall(ctx: &mut Ctx) -> CmdResult {
    getall_generic(ctx, true, true)
}

fn hkeys(ctx: &mut Ctx) -> CmdResult {
    getall_generic(ctx, true, false)
}

fn hvals(ctx: &mut Ctx) -> CmdResult {
    getall_generic(ctx, false, true)
}

fn hdel(ctx: &mut Ctx) -> CmdResult {
    let args = ctx.args;
    let key = &args[1];
    let Some(e) = ctx.db.get_mut(key) else {
        ctx.reply.int(0);
        return Ok(());
    };
    let Value::Hash(h) = &mut e.value else {
        return Err(CmdError::new(errors::WRONGTYPE));
    };
    let mut deleted = 0;
    for f in &args[2..] {
        if h.remove(f) {
            deleted += 1;
            if h.is_empty() {
                break;
            }
        }
    }
    let emptied = h.is_empty();
    if deleted > 0 {
        ctx.db.notify(crate::keyspace::notify::HASH, "hdel", key);
    }
    if emptied {
        ctx.db.delete(key);
        ctx.db.notify(crate::keyspace::notify::GENERIC, "del", key);
    }
    ctx.db.touch_dirty(deleted);
    ctx.reply.int(deleted as i64);
    Ok(())
}

fn hlen(ctx: &mut Ctx) -> CmdResult {
    let n = read(ctx.db.get(&ctx.args[1]))?.map_or(0, |h| h.len());
    ctx.reply.int(n as i64);
    Ok(())
}

fn hexists(ctx: &mut Ctx) -> CmdResult {
    let args = ctx.args;
    let found = read(ctx.db.get(&args[1]))?.is_some_and(|h| h.contains(&args[2]));
    ctx.reply.int(found as i64);
    Ok(())
}

fn hstrlen(ctx: &mut Ctx) -> CmdResult {
    let args = ctx.args;
    let n = read(ctx.db.get(&args[1]))?.and_then(|h| h.get(&args[2])).map_or(0, |v| v.len());
    ctx.reply.int(n as i64);
    Ok(())
}

fn hincrby(ctx: &mut Ctx) -> CmdResult {
    let args = ctx.args;
    let incr = args::int(&args[3])?;
    let lim = limits(ctx);
    let h = write_or_create(ctx, &args[1])?;
    let cur = match h.get(&args[2]) {
        Some(v) => crate::util::num::parse_i64(v).ok_or_else(|| CmdError::new("hash value is not an integer"))?,
        None => 0,
    };
    let new = cur.checked_add(incr).ok_or_else(|| CmdError::new("increment or decrement would overflow"))?;
    h.set(&args[2], new.to_string().as_bytes(), lim);
    ctx.db.touch_dirty(1);
    ctx.db.notify(crate::keyspace::notify::HASH, "hincrby", &args[1]);
    ctx.reply.int(new);
    Ok(())
}

fn hincrbyfloat(ctx: &mut Ctx) -> CmdResult {
    let args = ctx.args;
    let incr = LongDouble::parse(&args[3]).ok_or_else(|| CmdError::new(errors::NOT_FLOAT))?;
    if !incr.is_finite() {
        return Err(CmdError::new("value is NaN or Infinity"));
    }
    let lim = limits(ctx);
    let h = write_or_create(ctx, &args[1])?;
    let cur = match h.get(&args[2]) {
        Some(v) => LongDouble::parse(v).ok_or_else(|| CmdError::new("hash value is not a float"))?,
        None => LongDouble::ZERO,
    };
    let new = cur.add(incr);
    if !new.is_finite() {
        return Err(CmdError::new("increment would produce NaN or Infinity"));
    }
    let mut text = Vec::with_capacity(32);
    new.format_human(&mut text);
    h.set(&args[2], &text, lim);
    ctx.db.touch_dirty(1);
    ctx.db.notify(crate::keyspace::notify::HASH, "hincrbyfloat", &args[1]);
    ctx.reply.bulk(&text);
    // Replicated as HSET with the final value, so replicas never redo float arithmetic.
    ctx.db.propagate_effect(vec![Bytes::from_static(b"HSET"), args[1].clone(), args[2].clone(), Bytes::from(text)]);
    Ok(())
}

/// HRANDFIELD key [count [WITHVALUES]].
fn hrandfield(ctx: &mut Ctx) -> CmdResult {
    let args = ctx.args;
    if args.len() >= 3 {
        let l = args::int(&args[2])?;
        if l == i64::MIN {
            return Err(CmdError::new(format!(
                "value is out of range, value must between {} and {}",
                -i64::MAX,
                i64::MAX
            )));
        }
        if args.len() > 4 || (args.len() == 4 && !is(&args[3], "withvalues")) {
            return Err(CmdError::new(errors::SYNTAX));
        }
        let withvalues = args.len() == 4;
        if withvalues && !(-i64::MAX / 2..=i64::MAX / 2).contains(&l) {
            return Err(CmdError::new("value is out of range"));
        }
        return hrandfield_count(ctx, l, withvalues);
    }
    let Some(e) = ctx.db.get_mut(&args[1]) else {
        ctx.reply.null();
        return Ok(());
    };
    let Value::Hash(h) = &mut e.value else {
        return Err(CmdError::new(errors::WRONGTYPE));
    };
    match h.random_pair() {
        Some((f, _)) => ctx.reply.bulk(&f),
        None => ctx.reply.null(),
    }
    Ok(())
}

fn hrandfield_count(ctx: &mut Ctx, l: i64, withvalues: bool) -> CmdResult {
    let Some(e) = ctx.db.get_mut(&ctx.args[1]) else {
        ctx.reply.array(0);
        return Ok(());
    };
    let Value::Hash(h) = &mut e.value else {
        return Err(CmdError::new(errors::WRONGTYPE));
    };
    let count = l.unsigned_abs() as usize;
    let pairs = if count == 0 {
        Vec::new()
    } else if l < 0 || count == 1 {
        // Negative count (or 1): independent samples, repetitions allowed.
        h.sample(count)
    } else if count >= h.len() {
        // The whole hash, in its order.
        h.pairs()
    } else {
        h.sample_distinct(count)
    };
    let reply = &mut *ctx.reply;
    let resp3 = reply.is_resp3();
    reply.array(if withvalues && !resp3 { pairs.len() * 2 } else { pairs.len() });
    for (f, v) in &pairs {
        if withvalues && resp3 {
            reply.array(2);
        }
        reply.bulk(f);
        if withvalues {
            reply.bulk(v);
        }
    }
    Ok(())
}

fn hscan(ctx: &mut Ctx) -> CmdResult {
    let args = ctx.args;
    let cursor = parse_cursor(&args[2])?;
    let Some(h) = read(ctx.db.get(&args[1]))? else {
        reply_scan::<&[u8]>(ctx.reply, 0, &[]);
        return Ok(());
    };
    let opts = parse_scan_options(args, 3, false)?;
    let mut out: Vec<Vec<u8>> = Vec::new();
    let next = h.scan(cursor, opts.count, |f, v| {
        if opts.pattern.is_none_or(|p| glob_match(p, f, false)) {
            out.push(f.to_vec());
            out.push(v.to_vec());
        }
    });
    reply_scan(ctx.reply, next, &out);
    Ok(())
}
