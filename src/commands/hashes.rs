//! Hash commands (Redis's t_hash.c): HSET and friends, counters, whole-hash reads, HRANDFIELD
//! and HSCAN. Fields whose TTL passed (hash-field expiry, see `hash_expire.rs`) are reclaimed
//! when a command reads them, and never returned.

use bytes::Bytes;

use super::args::{self, is};
use super::keys::{parse_cursor, parse_scan_options, reply_scan};
use super::{errors, CmdError, CmdResult, CommandSpec, Ctx};
use crate::keyspace::hfe::{FieldLookup, Lazy};
use crate::protocol::MIN_BULK_BYTES;
use crate::types::hash::{HashLimits, HashValue};
use crate::types::{Entry, Value};
use crate::util::glob::glob_match;
use crate::util::num::LongDouble;

pub static COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("hset", hset),
    CommandSpec::new("hsetnx", hsetnx),
    CommandSpec::new("hget", hget),
    CommandSpec::new("hmset", hset),
    CommandSpec::new("hmget", hmget),
    CommandSpec::new("hgetall", hgetall),
    CommandSpec::new("hdel", hdel),
    CommandSpec::new("hlen", hlen),
    CommandSpec::new("hexists", hexists),
    CommandSpec::new("hkeys", hkeys),
    CommandSpec::new("hvals", hvals),
    CommandSpec::new("hincrby", hincrby),
    CommandSpec::new("hincrbyfloat", hincrbyfloat),
    CommandSpec::new("hstrlen", hstrlen),
    CommandSpec::new("hrandfield", hrandfield),
    CommandSpec::new("hscan", hscan),
];

/// The current conversion thresholds.
pub(super) fn limits(ctx: &Ctx) -> HashLimits {
    let c = ctx.server.config.load();
    HashLimits { max_entries: c.hash_max_listpack_entries as usize, max_value: c.hash_max_listpack_value as usize }
}

/// The hash at `key`, created empty if missing (Redis's hashTypeLookupWriteOrCreate). Callers
/// only fail after this when the key already held fields, so no empty hash is ever left behind.
pub(super) fn write_or_create<'a>(ctx: &'a mut Ctx, key: &[u8]) -> Result<&'a mut HashValue, CmdError> {
    let (e, _) = ctx.db.get_or_insert_with(key, || Value::Hash(HashValue::default()));
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
    write_or_create(ctx, &args[1])?;
    match ctx.db.hash_field(&args[1], &args[2], Lazy::NOW) {
        FieldLookup::Found(_) => {
            ctx.reply.int(0);
            return Ok(());
        }
        // The field's TTL had passed and it was the last one: a new hash.
        FieldLookup::ExpiredHash => ctx.db.set(&args[1], Value::Hash(HashValue::default()), false),
        FieldLookup::NotFound | FieldLookup::Expired => {}
    }
    let h = write_or_create(ctx, &args[1])?;
    h.try_conversion([&args[2][..], &args[3][..]], lim);
    h.set(&args[2], &args[3], lim);
    ctx.db.touch_dirty(1);
    ctx.db.notify(crate::keyspace::notify::HASH, "hset", &args[1]);
    ctx.reply.int(1);
    Ok(())
}

/// Look `field` up in the hash at `key` (already type-checked), reclaiming it if expired.
fn field(ctx: &mut Ctx, key: &[u8], field: &[u8]) -> Option<Vec<u8>> {
    match ctx.db.hash_field(key, field, Lazy::NOW) {
        FieldLookup::Found(v) => Some(v),
        _ => None,
    }
}

fn hget(ctx: &mut Ctx) -> CmdResult {
    let args = ctx.args;
    if ctx.db.read::<HashValue>(&args[1])?.is_none() {
        ctx.reply.null();
        return Ok(());
    }
    match field(ctx, &args[1], &args[2]) {
        Some(v) => ctx.reply.bulk(&v),
        None => ctx.reply.null(),
    }
    Ok(())
}

fn hmget(ctx: &mut Ctx) -> CmdResult {
    let args = ctx.args;
    let exists = ctx.db.read::<HashValue>(&args[1])?.is_some();
    ctx.reply.array(args.len() - 2);
    let (mut expired, mut deleted) = (false, false);
    for f in &args[2..] {
        let found = if exists && !deleted {
            match ctx.db.hash_field(&args[1], f, Lazy { notify: false, delete_empty: true }) {
                FieldLookup::Found(v) => Some(v),
                FieldLookup::Expired => {
                    expired = true;
                    None
                }
                FieldLookup::ExpiredHash => {
                    (expired, deleted) = (true, true);
                    None
                }
                FieldLookup::NotFound => None,
            }
        } else {
            None
        };
        match found {
            Some(v) => ctx.reply.bulk(&v),
            None => ctx.reply.null(),
        }
    }
    if expired {
        ctx.db.notify(crate::keyspace::notify::HASH, "hexpired", &args[1]);
        if deleted {
            ctx.db.notify(crate::keyspace::notify::GENERIC, "del", &args[1]);
        }
    }
    Ok(())
}

/// HGETALL / HKEYS / HVALS.
fn getall_generic(ctx: &mut Ctx, keys: bool, vals: bool) -> CmdResult {
    let now = ctx.db.now_ms;
    let Some(h) = ctx.db.read::<HashValue>(&ctx.args[1])? else {
        if keys && vals {
            ctx.reply.map(0);
        } else {
            ctx.reply.array(0);
        }
        return Ok(());
    };
    // Fields whose TTL passed are left out (and left for the expiry cycle).
    let len = h.live_len(now);
    if keys && vals {
        ctx.reply.map(len);
    } else {
        ctx.reply.array(len);
    }
    let reply = &mut *ctx.reply;
    h.for_each(|f, v| {
        if h.is_expired(f, now) {
            return;
        }
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
    let had_ttls = h.has_ttls();
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
    if had_ttls && !emptied && !h.has_ttls() {
        ctx.db.untrack_hash_ttls(key);
    }
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
    let n = ctx.db.read::<HashValue>(&ctx.args[1])?.map_or(0, |h| h.len());
    ctx.reply.int(n as i64);
    Ok(())
}

fn hexists(ctx: &mut Ctx) -> CmdResult {
    let args = ctx.args;
    let found = ctx.db.read::<HashValue>(&args[1])?.is_some() && field(ctx, &args[1], &args[2]).is_some();
    ctx.reply.int(found as i64);
    Ok(())
}

fn hstrlen(ctx: &mut Ctx) -> CmdResult {
    let args = ctx.args;
    let n = if ctx.db.read::<HashValue>(&args[1])?.is_some() {
        field(ctx, &args[1], &args[2]).map_or(0, |v| v.len())
    } else {
        0
    };
    ctx.reply.int(n as i64);
    Ok(())
}

/// The current value of a counter field for HINCRBY/HINCRBYFLOAT: the hash at `key` is
/// created if missing (and again if reclaiming an expired field deleted it).
fn counter_field(ctx: &mut Ctx, key: &[u8], f: &[u8]) -> Result<Option<Vec<u8>>, CmdError> {
    write_or_create(ctx, key)?;
    Ok(match ctx.db.hash_field(key, f, Lazy::NOW) {
        FieldLookup::Found(v) => Some(v),
        FieldLookup::ExpiredHash => {
            ctx.db.set(key, Value::Hash(HashValue::default()), false);
            None
        }
        FieldLookup::NotFound | FieldLookup::Expired => None,
    })
}

fn hincrby(ctx: &mut Ctx) -> CmdResult {
    let args = ctx.args;
    let incr = args::int(&args[3])?;
    let lim = limits(ctx);
    let cur = match counter_field(ctx, &args[1], &args[2])? {
        Some(v) => crate::util::num::parse_i64(&v).ok_or_else(|| CmdError::new("hash value is not an integer"))?,
        None => 0,
    };
    let new = cur.checked_add(incr).ok_or_else(|| CmdError::new("increment or decrement would overflow"))?;
    let h = write_or_create(ctx, &args[1])?;
    h.set_keep_ttl(&args[2], new.to_string().as_bytes(), lim);
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
    let cur = match counter_field(ctx, &args[1], &args[2])? {
        Some(v) => LongDouble::parse(&v).ok_or_else(|| CmdError::new("hash value is not a float"))?,
        None => LongDouble::ZERO,
    };
    let new = cur.add(incr);
    if !new.is_finite() {
        return Err(CmdError::new("increment would produce NaN or Infinity"));
    }
    let mut text = Vec::with_capacity(32);
    new.format_human(&mut text);
    let h = write_or_create(ctx, &args[1])?;
    h.set_keep_ttl(&args[2], &text, lim);
    let has_ttl = h.ttl(&args[2]).is_some();
    ctx.db.touch_dirty(1);
    ctx.db.notify(crate::keyspace::notify::HASH, "hincrbyfloat", &args[1]);
    ctx.reply.bulk(&text);
    // Replicated with the final value, so replicas never redo float arithmetic: as HSET (what
    // Redis 7.2 sends), or as HSETEX KEEPTTL (Redis 8's form) when the field has a TTL to keep.
    let (k, f, v) = (args[1].clone(), args[2].clone(), Bytes::from(text));
    let effect = if has_ttl {
        let s = Bytes::from_static;
        vec![s(b"HSETEX"), k, s(b"KEEPTTL"), s(b"FIELDS"), s(b"1"), f, v]
    } else {
        vec![Bytes::from_static(b"HSET"), k, f, v]
    };
    ctx.db.propagate_effect(effect);
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
    if ctx.db.read::<HashValue>(&args[1])?.is_none() {
        ctx.reply.null();
        return Ok(());
    }
    // Fields whose TTL passed go first (Redis's hashTypeExpireIfNeeded).
    if ctx.db.expire_hash_fields(&args[1], false, usize::MAX).1 {
        ctx.reply.null();
        return Ok(());
    }
    let Some(Entry { value: Value::Hash(h), .. }) = ctx.db.peek_mut(&args[1]) else {
        ctx.reply.null();
        return Ok(());
    };
    match h.random_pair() {
        Some((f, _)) => ctx.reply.bulk(&f),
        None => ctx.reply.null(),
    }
    Ok(())
}

/// Samples drawn at a time by a negative RANDFIELD/RANDMEMBER count.
pub const SAMPLE_CHUNK: usize = 1024;

fn hrandfield_count(ctx: &mut Ctx, l: i64, withvalues: bool) -> CmdResult {
    let key = &ctx.args[1];
    if ctx.db.read::<HashValue>(key)?.is_none() || ctx.db.expire_hash_fields(key, false, usize::MAX).1 {
        ctx.reply.array(0);
        return Ok(());
    }
    let Some(Entry { value: Value::Hash(h), .. }) = ctx.db.peek_mut(key) else {
        ctx.reply.array(0);
        return Ok(());
    };
    let count = l.unsigned_abs() as usize;
    if l < -1 {
        // Independent samples, written as they are drawn: the loop stops once the reply is
        // over the client's output-buffer limit (Redis checks for a closing client in it).
        let reply = &mut *ctx.reply;
        let resp3 = reply.is_resp3();
        reply.array(if withvalues && !resp3 { count * 2 } else { count });
        let mut left = count;
        let per_pick = if withvalues { 2 * MIN_BULK_BYTES } else { MIN_BULK_BYTES };
        if !reply.room_for(count.saturating_mul(per_pick)) {
            return Ok(());
        }
        while left > 0 && !reply.over_limit() {
            let n = left.min(SAMPLE_CHUNK);
            for (f, v) in &h.sample(n) {
                if withvalues && resp3 {
                    reply.array(2);
                }
                reply.bulk(f);
                if withvalues {
                    reply.bulk(v);
                }
            }
            left -= n;
        }
        return Ok(());
    }
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
    let now = ctx.db.now_ms;
    let cursor = parse_cursor(&args[2])?;
    let Some(h) = ctx.db.read::<HashValue>(&args[1])? else {
        reply_scan::<&[u8]>(ctx.reply, 0, &[]);
        return Ok(());
    };
    let opts = parse_scan_options(args, 3, false)?;
    let mut out: Vec<Vec<u8>> = Vec::new();
    let next = h.scan(cursor, opts.count, now, |f: &[u8], v: &[u8]| {
        if opts.pattern.is_none_or(|p| glob_match(p, f, false)) {
            out.push(f.to_vec());
            out.push(v.to_vec());
        }
    });
    reply_scan(ctx.reply, next, &out);
    Ok(())
}
