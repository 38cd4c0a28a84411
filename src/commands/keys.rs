//! Generic keyspace commands (Redis's db.c and expire.c): deletion, existence, renaming,
//! expiry, iteration (KEYS, SCAN, RANDOMKEY), databases (MOVE, COPY, SWAPDB, FLUSHDB/ALL) and
//! OBJECT introspection.

use bytes::Bytes;
use std::sync::atomic::Ordering;

use super::args::{self, is};
use super::flags::*;
use super::{errors, CmdError, CmdResult, CommandSpec, Ctx};
use crate::keyspace::idle_seconds;
use crate::keyspace::notify as ev;
use crate::types::{StrValue, Value};
use crate::util::glob::glob_match;

pub static COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("del", del),
    CommandSpec::new("unlink", del),
    CommandSpec::new("exists", exists),
    CommandSpec::new("type", type_cmd),
    CommandSpec::new("touch", touch),
    CommandSpec::new("rename", rename),
    CommandSpec::new("renamenx", renamenx),
    CommandSpec::new("copy", copy),
    CommandSpec::new("move", move_cmd),
    CommandSpec::new("swapdb", swapdb).internal(ALL_KEYS),
    CommandSpec::new("keys", keys).internal(ALL_KEYS),
    CommandSpec::new("scan", scan).internal(ALL_KEYS),
    CommandSpec::new("randomkey", randomkey).internal(ALL_KEYS),
    CommandSpec::new("dbsize", dbsize).internal(ALL_KEYS),
    CommandSpec::new("flushdb", flushdb).internal(ALL_KEYS),
    CommandSpec::new("flushall", flushall).internal(ALL_KEYS),
    CommandSpec::new("expire", expire),
    CommandSpec::new("pexpire", pexpire),
    CommandSpec::new("expireat", expireat),
    CommandSpec::new("pexpireat", pexpireat),
    CommandSpec::new("ttl", ttl),
    CommandSpec::new("pttl", pttl),
    CommandSpec::new("expiretime", expiretime),
    CommandSpec::new("pexpiretime", pexpiretime),
    CommandSpec::new("persist", persist),
    CommandSpec::new("object", super::server::container_help).subs(OBJECT_SUBS),
];

static OBJECT_SUBS: &[CommandSpec] = &[
    CommandSpec::new("encoding", object_encoding),
    CommandSpec::new("freq", object_freq),
    CommandSpec::new("idletime", object_idletime),
    CommandSpec::new("refcount", object_refcount),
    CommandSpec::new("help", object_help),
];

fn del(ctx: &mut Ctx) -> CmdResult {
    let args = ctx.args;
    // UNLINK frees big values in the background.
    let lazy = is(&args[0], "unlink");
    let mut n = 0;
    for k in &args[1..] {
        let deleted = if lazy {
            ctx.db.take(k).map(|(e, _)| crate::keyspace::lazyfree::free(e.value)).is_some()
        } else {
            ctx.db.delete(k)
        };
        if deleted {
            ctx.db.notify(ev::GENERIC, "del", k);
            n += 1;
        }
    }
    ctx.db.touch_dirty(n as u64);
    ctx.reply.int(n);
    Ok(())
}

fn exists(ctx: &mut Ctx) -> CmdResult {
    let args = ctx.args;
    let n = args[1..].iter().filter(|k| ctx.db.exists(k)).count();
    ctx.reply.int(n as i64);
    Ok(())
}

fn touch(ctx: &mut Ctx) -> CmdResult {
    // TOUCH updates the access time even for a CLIENT NO-TOUCH client (as Redis 7.2).
    ctx.db.no_touch = false;
    let args = ctx.args;
    let n = args[1..].iter().filter(|k| ctx.db.get(k).is_some()).count();
    ctx.reply.int(n as i64);
    Ok(())
}

fn type_cmd(ctx: &mut Ctx) -> CmdResult {
    let name = ctx.db.peek(&ctx.args[1]).map_or("none", |e| e.value.type_name());
    ctx.reply.simple(name);
    Ok(())
}

fn rename_generic(ctx: &mut Ctx, nx: bool) -> CmdResult {
    let args = ctx.args;
    let (src, dst) = (&args[1], &args[2]);
    if !ctx.db.exists(src) {
        return Err(CmdError::new(errors::NO_KEY));
    }
    if src == dst {
        if nx {
            ctx.reply.int(0);
        } else {
            ctx.reply.ok();
        }
        return Ok(());
    }
    if ctx.db.exists(dst) {
        if nx {
            ctx.reply.int(0);
            return Ok(());
        }
        ctx.db.delete(dst);
    }
    let (entry, ttl) = ctx.db.take(src).ok_or_else(|| CmdError::new(errors::NO_KEY))?;
    ctx.db.add_entry(dst, entry);
    if let Some(when) = ttl {
        ctx.db.set_expire(dst, when);
    }
    ctx.db.touch_dirty(1);
    ctx.db.notify(ev::GENERIC, "rename_from", src);
    ctx.db.notify(ev::GENERIC, "rename_to", dst);
    if nx {
        ctx.reply.int(1);
    } else {
        ctx.reply.ok();
    }
    Ok(())
}

fn rename(ctx: &mut Ctx) -> CmdResult {
    rename_generic(ctx, false)
}

fn renamenx(ctx: &mut Ctx) -> CmdResult {
    rename_generic(ctx, true)
}

/// A database index argument: an int, within range.
fn db_index(ctx: &Ctx, arg: &[u8], not_int: &str) -> Result<usize, CmdError> {
    db_in_range(ctx, db_int(arg, not_int)?)
}

/// A database index as getIntFromObjectOrReply reads it (an `int`), not yet range-checked.
fn db_int(arg: &[u8], not_int: &str) -> Result<i64, CmdError> {
    let id = args::int_or(arg, not_int)?;
    if id < i32::MIN as i64 || id > i32::MAX as i64 {
        return Err(CmdError::new(not_int));
    }
    Ok(id)
}

fn db_in_range(ctx: &Ctx, id: i64) -> Result<usize, CmdError> {
    if id < 0 || id as usize >= ctx.server.keyspace.databases() {
        return Err(CmdError::new(errors::DB_INDEX));
    }
    Ok(id as usize)
}

fn copy(ctx: &mut Ctx) -> CmdResult {
    let args = ctx.args;
    let src_db = ctx.db.index;
    let mut dst_db = src_db;
    let mut replace = false;
    let mut j = 3;
    while j < args.len() {
        if is(&args[j], "replace") {
            replace = true;
        } else if is(&args[j], "db") && j + 1 < args.len() {
            dst_db = db_index(ctx, &args[j + 1], errors::NOT_INTEGER)?;
            j += 1;
        } else {
            return Err(CmdError::new(errors::SYNTAX));
        }
        j += 1;
    }
    if ctx.server.cluster.get().is_some() && (src_db != 0 || dst_db != 0) {
        return Err(CmdError::new("Copying to another database is not allowed in cluster mode"));
    }
    let (src, dst) = (&args[1], &args[2]);
    if src_db == dst_db && src == dst {
        return Err(CmdError::new("source and destination objects are the same"));
    }
    let Some(entry) = ctx.db.get(src).cloned() else {
        ctx.reply.int(0);
        return Ok(());
    };
    let ttl = ctx.db.expire_of(src);
    ctx.db.index = dst_db;
    let result = (|| {
        if ctx.db.exists(dst) {
            if !replace {
                return 0;
            }
            ctx.db.delete(dst);
        }
        ctx.db.add_entry(dst, entry);
        if let Some(when) = ttl {
            ctx.db.set_expire(dst, when);
        }
        ctx.db.touch_dirty(1);
        ctx.db.notify(ev::GENERIC, "copy_to", dst);
        if dst_db != src_db {
            ctx.server.keyspace.watches.touch(dst_db, dst, false);
        }
        1
    })();
    ctx.db.index = src_db;
    ctx.reply.int(result);
    Ok(())
}

fn move_cmd(ctx: &mut Ctx) -> CmdResult {
    let args = ctx.args;
    if ctx.server.cluster.get().is_some() {
        return Err(CmdError::new("MOVE is not allowed in cluster mode"));
    }
    let key = &args[1];
    let src_db = ctx.db.index;
    let dst_db = db_index(ctx, &args[2], errors::NOT_INTEGER)?;
    if src_db == dst_db {
        return Err(CmdError::new("source and destination objects are the same"));
    }
    if !ctx.db.exists(key) {
        ctx.reply.int(0);
        return Ok(());
    }
    ctx.db.index = dst_db;
    let taken = ctx.db.exists(key);
    ctx.db.index = src_db;
    if taken {
        ctx.reply.int(0);
        return Ok(());
    }
    let (entry, ttl) = ctx.db.take(key).ok_or_else(|| CmdError::new(errors::NO_KEY))?;
    // As Redis: added to the target first (its `new` event), then the move events.
    ctx.db.index = dst_db;
    ctx.db.add_entry(key, entry);
    if let Some(when) = ttl {
        ctx.db.set_expire(key, when);
    }
    ctx.db.index = src_db;
    ctx.db.notify(ev::GENERIC, "move_from", key);
    ctx.db.index = dst_db;
    ctx.db.notify(ev::GENERIC, "move_to", key);
    ctx.db.index = src_db;
    ctx.server.keyspace.watches.touch(dst_db, key, false);
    ctx.db.touch_dirty(1);
    ctx.reply.int(1);
    Ok(())
}

fn swapdb(ctx: &mut Ctx) -> CmdResult {
    let args = ctx.args;
    if ctx.server.cluster.get().is_some() {
        return Err(CmdError::new("SWAPDB is not allowed in cluster mode"));
    }
    // Both indexes are parsed before either is range-checked (7.2 swapdbCommand).
    let a = db_int(&args[1], "invalid first DB index")?;
    let b = db_int(&args[2], "invalid second DB index")?;
    let (a, b) = (db_in_range(ctx, a)?, db_in_range(ctx, b)?);
    // Swapping a database with itself changes nothing (and touches no WATCH), though it
    // still counts as a write (7.2 dbSwapDatabases / swapdbCommand).
    if a != b {
        // A watched key changes if it exists in either database before the swap.
        touch_watched_existing(ctx, Some(a), Some(b));
        touch_watched_existing(ctx, Some(b), Some(a));
        ctx.db.swap_dbs(a, b);
    }
    ctx.db.touch_dirty(1);
    ctx.reply.ok();
    Ok(())
}

/// Touch the watched keys of database `db` (all databases when None) that exist there, or in
/// `other` (the database swapped in by SWAPDB). Runs with every shard locked.
fn touch_watched_existing(ctx: &mut Ctx, db: Option<usize>, other: Option<usize>) {
    let watches = &ctx.server.keyspace.watches;
    if !watches.any() {
        return;
    }
    let home = ctx.db.index;
    let dbs: Vec<usize> = match db {
        Some(d) => vec![d],
        None => (0..ctx.server.keyspace.databases()).collect(),
    };
    // The rules of Redis's touchAllWatchedKeysInDb, stale (expired, not yet deleted) keys included.
    for d in dbs {
        for key in watches.keys_in(d) {
            ctx.db.index = d;
            let here = ctx.db.contains_raw(&key);
            let (there, there_stale) = match other {
                Some(o) => {
                    ctx.db.index = o;
                    (ctx.db.contains_raw(&key), ctx.db.is_expired(&key))
                }
                None => (false, false),
            };
            if !here && !there {
                continue;
            }
            watches.touch_with(d, &key, |expired| {
                if other.is_none() {
                    // Emptied, not replaced: a stale watched key simply goes away.
                    return !expired.swap(false, Ordering::SeqCst);
                }
                if expired.load(Ordering::SeqCst) {
                    if !there {
                        expired.store(false, Ordering::SeqCst);
                        return false;
                    }
                    !there_stale
                } else if !here && there_stale {
                    // Replaced by a stale key: still logically absent.
                    expired.store(true, Ordering::SeqCst);
                    false
                } else {
                    true
                }
            });
        }
    }
    ctx.db.index = home;
}

fn keys(ctx: &mut Ctx) -> CmdResult {
    let pattern = &ctx.args[1][..];
    let all = pattern == b"*";
    let now = ctx.db.now_ms;
    let mut out: Vec<Vec<u8>> = Vec::new();
    ctx.db.all_keys(|k, ttl| {
        if ttl.is_some_and(|t| t <= now) {
            return;
        }
        if all || glob_match(pattern, k, false) {
            out.push(k.to_vec());
        }
    });
    ctx.reply.array(out.len());
    for k in &out {
        ctx.reply.bulk(k);
    }
    Ok(())
}

/// Parse a SCAN cursor like Redis (strtoul over the whole C string: up to a NUL, so
/// `"\x00"` and `"5\x00x"` are cursors 0 and 5). Like strtoul, a leading `+` is accepted and a
/// leading `-` wraps around (`-1` is the largest cursor); an empty string is cursor 0.
pub fn parse_cursor(arg: &[u8]) -> Result<u64, CmdError> {
    let arg = crate::util::bytetext::c_bytes(arg, usize::MAX);
    let invalid = || CmdError::new("invalid cursor");
    let digits = |d: &[u8]| -> Result<u64, CmdError> {
        if d.is_empty() {
            return Ok(0);
        }
        if !d.iter().all(|c| c.is_ascii_digit()) {
            return Err(invalid());
        }
        std::str::from_utf8(d).ok().and_then(|s| s.parse::<u64>().ok()).ok_or_else(invalid)
    };
    match arg.first() {
        Some(b'-') if arg.len() > 1 => digits(&arg[1..]).map(u64::wrapping_neg),
        Some(b'+') if arg.len() > 1 => digits(&arg[1..]),
        _ => digits(arg),
    }
}

/// The reply of SCAN and its siblings: `[cursor, [items...]]`.
pub fn reply_scan<T: AsRef<[u8]>>(reply: &mut crate::protocol::ReplySink, next: u64, items: &[T]) {
    reply.array(2);
    reply.bulk(next.to_string().as_bytes());
    reply.array(items.len());
    for i in items {
        reply.bulk(i.as_ref());
    }
}

/// Options of SCAN and its HSCAN/SSCAN/ZSCAN siblings (Redis's scanGenericCommand parsing).
pub struct ScanOptions<'a> {
    pub count: usize,
    /// None when absent or exactly `*` (which matches everything).
    pub pattern: Option<&'a [u8]>,
    /// TYPE filter (SCAN only).
    pub type_filter: Option<&'a [u8]>,
}

/// Parse `[MATCH pattern] [COUNT n] [TYPE t]` from `args[start..]`; TYPE only when `allow_type`.
pub fn parse_scan_options(args: &[Bytes], start: usize, allow_type: bool) -> Result<ScanOptions<'_>, CmdError> {
    let mut o = ScanOptions { count: 10, pattern: None, type_filter: None };
    let mut i = start;
    while i < args.len() {
        let more = args.len() - i;
        if is(&args[i], "count") && more >= 2 {
            let n = args::int(&args[i + 1])?;
            if n < 1 {
                return Err(CmdError::new(errors::SYNTAX));
            }
            o.count = n as usize;
        } else if is(&args[i], "match") && more >= 2 {
            o.pattern = Some(&args[i + 1]).filter(|p| &p[..] != b"*").map(|p| &p[..]);
        } else if allow_type && is(&args[i], "type") && more >= 2 {
            o.type_filter = Some(&args[i + 1]);
        } else {
            return Err(CmdError::new(errors::SYNTAX));
        }
        i += 2;
    }
    Ok(o)
}

fn scan(ctx: &mut Ctx) -> CmdResult {
    let args = ctx.args;
    let cursor = parse_cursor(&args[1])?;
    let ScanOptions { count, pattern, type_filter } = parse_scan_options(args, 2, true)?;
    let mut found: Vec<(Vec<u8>, &'static str)> = Vec::new();
    let next = ctx.db.scan(cursor, count, |k, e| found.push((k.to_vec(), e.value.type_name())));
    let mut keys = Vec::with_capacity(found.len());
    for (k, t) in found {
        if pattern.is_some_and(|p| !glob_match(p, &k, false)) {
            continue;
        }
        // Expired keys are reclaimed whether or not a TYPE filter keeps them (Redis 7.2
        // looks each key up for its type, which expires it).
        if ctx.db.expire_if_needed(&k) {
            continue;
        }
        if type_filter.is_some_and(|tf| !tf.eq_ignore_ascii_case(t.as_bytes())) {
            continue;
        }
        keys.push(k);
    }
    reply_scan(ctx.reply, next, &keys);
    Ok(())
}

fn randomkey(ctx: &mut Ctx) -> CmdResult {
    match ctx.db.random_key() {
        Some(k) => ctx.reply.bulk(&k),
        None => ctx.reply.null(),
    }
    Ok(())
}

fn dbsize(ctx: &mut Ctx) -> CmdResult {
    let n = ctx.db.len();
    ctx.reply.int(n as i64);
    Ok(())
}

/// FLUSHDB / FLUSHALL option: SYNC, ASYNC, or the lazyfree-lazy-user-flush default.
fn flush_async(ctx: &Ctx) -> Result<bool, CmdError> {
    match ctx.args.len() {
        1 => Ok(ctx.server.config.load().lazyfree_lazy_user_flush),
        2 if is(&ctx.args[1], "sync") => Ok(false),
        2 if is(&ctx.args[1], "async") => Ok(true),
        _ => Err(CmdError::new(errors::SYNTAX)),
    }
}

fn flush(ctx: &mut Ctx, all: bool) -> CmdResult {
    let lazy = flush_async(ctx)?;
    let removed: usize = if all {
        (0..ctx.server.keyspace.databases())
            .map(|d| {
                let cur = ctx.db.index;
                ctx.db.index = d;
                let n = ctx.db.len();
                ctx.db.index = cur;
                n
            })
            .sum()
    } else {
        ctx.db.len()
    };
    // Watched keys that exist in an emptied database are touched (Redis's touchAllWatchedKeysInDb).
    touch_watched_existing(ctx, if all { None } else { Some(ctx.db.index) }, None);
    let old = ctx.db.flush(all);
    ctx.server.tracking.invalidate_all(ctx.client.id());
    if lazy {
        // Free the old tables on another thread, as Redis's lazyfree does.
        std::thread::spawn(move || drop(old));
    } else {
        drop(old);
    }
    ctx.db.touch_dirty(removed.max(1) as u64);
    if all {
        // As Redis's flushAllDataAndResetRDB: a background save of the old data is stopped
        // (before the empty dataset is saved, so it cannot replace that file).
        crate::server::saving::kill_child(ctx.server);
    }
    // FLUSHALL with save points saves the empty dataset at once (Redis's
    // flushAllDataAndResetRDB), so a restart cannot bring the old data back; nothing is left
    // unsaved, yet the command still counts as a write: it is propagated and wakes the clients
    // blocked on the keys it deleted.
    if all && !crate::server::saving::save_points(&ctx.server.config.load()).is_empty() {
        if let Err(e) = crate::server::saving::save(ctx.server, ctx.db) {
            crate::server::log::warning(&format!("Error saving the empty dataset after FLUSHALL: {e}"));
        }
    }
    ctx.reply.ok();
    Ok(())
}

fn flushdb(ctx: &mut Ctx) -> CmdResult {
    flush(ctx, false)
}

fn flushall(ctx: &mut Ctx) -> CmdResult {
    flush(ctx, true)
}

#[derive(Clone, Copy)]
enum Base {
    Relative,
    Absolute,
}

fn expire_generic(ctx: &mut Ctx, base: Base, seconds: bool, name: &str) -> CmdResult {
    let args = ctx.args;
    let key = &args[1];
    let (mut nx, mut xx, mut gt, mut lt) = (false, false, false, false);
    for opt in &args[3..] {
        if is(opt, "nx") {
            nx = true;
        } else if is(opt, "xx") {
            xx = true;
        } else if is(opt, "gt") {
            gt = true;
        } else if is(opt, "lt") {
            lt = true;
        } else {
            return Err(CmdError::new(format!("Unsupported option {}", args::echo(opt))));
        }
    }
    if nx && (xx || gt || lt) {
        return Err(CmdError::new("NX and XX, GT or LT options at the same time are not compatible"));
    }
    if gt && lt {
        return Err(CmdError::new("GT and LT options at the same time are not compatible"));
    }
    let mut when = args::int(&args[2])?;
    let invalid = || CmdError::new(format!("invalid expire time in '{name}' command"));
    if seconds {
        when = when.checked_mul(1000).ok_or_else(invalid)?;
    }
    if let Base::Relative = base {
        when = when.checked_add(ctx.db.now_ms).ok_or_else(invalid)?;
    }
    if !ctx.db.exists(key) {
        ctx.reply.int(0);
        return Ok(());
    }
    let current = ctx.db.expire_of(key);
    let refuse = (nx && current.is_some())
        || (xx && current.is_none())
        || (gt && current.is_none_or(|c| when <= c))
        || (lt && current.is_some_and(|c| when >= c));
    if refuse {
        ctx.reply.int(0);
        return Ok(());
    }
    // A time already past deletes the key at once, except while loading or on a replica, which
    // keep the expiry as given (Redis's checkAlreadyExpired).
    if when <= ctx.db.now_ms && ctx.db.expire_mode == crate::keyspace::ExpireMode::Delete {
        ctx.db.delete(key);
        ctx.db.touch_dirty(1);
        ctx.db.notify(ev::GENERIC, "del", key);
        ctx.db.propagate_effect(vec![Bytes::from_static(b"DEL"), key.clone()]);
    } else {
        ctx.db.set_expire(key, when);
        ctx.db.touch_dirty(1);
        ctx.db.notify(ev::GENERIC, "expire", key);
        if ctx.db.propagating() {
            let mut argv = vec![Bytes::from_static(b"PEXPIREAT"), key.clone(), Bytes::from(when.to_string())];
            argv.extend(args[3..].iter().cloned());
            ctx.db.propagate_effect(argv);
        }
    }
    ctx.reply.int(1);
    Ok(())
}

fn expire(ctx: &mut Ctx) -> CmdResult {
    expire_generic(ctx, Base::Relative, true, "expire")
}

fn pexpire(ctx: &mut Ctx) -> CmdResult {
    expire_generic(ctx, Base::Relative, false, "pexpire")
}

fn expireat(ctx: &mut Ctx) -> CmdResult {
    expire_generic(ctx, Base::Absolute, true, "expireat")
}

fn pexpireat(ctx: &mut Ctx) -> CmdResult {
    expire_generic(ctx, Base::Absolute, false, "pexpireat")
}

/// TTL and friends: -2 missing, -1 no expiry, else the remaining or absolute time.
fn ttl_generic(ctx: &mut Ctx, ms: bool, absolute: bool) -> CmdResult {
    let key = &ctx.args[1];
    if ctx.db.peek(key).is_none() {
        ctx.reply.int(-2);
        return Ok(());
    }
    match ctx.db.expire_of(key) {
        None => ctx.reply.int(-1),
        Some(when) => {
            let t = if absolute { when } else { (when - ctx.db.now_ms).max(0) };
            // Rounded to seconds without overflow: an expiry near i64::MAX gives its true
            // quotient, as Redis's compiled `(ttl+500)/1000` does.
            ctx.reply.int(if ms { t } else { ((t as i128 + 500) / 1000) as i64 });
        }
    }
    Ok(())
}

fn ttl(ctx: &mut Ctx) -> CmdResult {
    ttl_generic(ctx, false, false)
}

fn pttl(ctx: &mut Ctx) -> CmdResult {
    ttl_generic(ctx, true, false)
}

fn expiretime(ctx: &mut Ctx) -> CmdResult {
    ttl_generic(ctx, false, true)
}

fn pexpiretime(ctx: &mut Ctx) -> CmdResult {
    ttl_generic(ctx, true, true)
}

fn persist(ctx: &mut Ctx) -> CmdResult {
    let key = &ctx.args[1];
    let n = if ctx.db.exists(key) && ctx.db.persist(key) {
        ctx.db.touch_dirty(1);
        ctx.db.notify(ev::GENERIC, "persist", key);
        1
    } else {
        0
    };
    ctx.reply.int(n);
    Ok(())
}

fn object_encoding(ctx: &mut Ctx) -> CmdResult {
    match ctx.db.peek(&ctx.args[2]) {
        Some(e) => ctx.reply.bulk(e.value.encoding().as_bytes()),
        None => ctx.reply.null(),
    }
    Ok(())
}

fn lfu_policy(ctx: &Ctx) -> bool {
    ctx.server.config.load().maxmemory_policy_name().contains("lfu")
}

fn object_freq(ctx: &mut Ctx) -> CmdResult {
    let Some(meta) = ctx.db.peek(&ctx.args[2]).map(|e| e.lru) else {
        ctx.reply.null();
        return Ok(());
    };
    if !lfu_policy(ctx) {
        return Err(CmdError::new("An LFU maxmemory policy is not selected, access frequency not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust."));
    }
    let decay = ctx.server.keyspace.lfu.decay_time();
    ctx.reply.int(crate::keyspace::lfu::counter(meta, ctx.db.now_ms, decay) as i64);
    Ok(())
}

fn object_idletime(ctx: &mut Ctx) -> CmdResult {
    let Some(lru) = ctx.db.peek(&ctx.args[2]).map(|e| e.lru) else {
        ctx.reply.null();
        return Ok(());
    };
    if lfu_policy(ctx) {
        return Err(CmdError::new("An LFU maxmemory policy is selected, idle time not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust."));
    }
    ctx.reply.int(idle_seconds(lru) as i64);
    Ok(())
}

fn object_refcount(ctx: &mut Ctx) -> CmdResult {
    let shared = shares_integers(ctx);
    match ctx.db.peek(&ctx.args[2]) {
        None => ctx.reply.null(),
        Some(e) => ctx.reply.int(refcount(&e.value, shared)),
    }
    Ok(())
}

/// The refcount OBJECT REFCOUNT and DEBUG OBJECT report. Redis shares the objects of small
/// integers (0..10000) and reports them as immortal, except while maxmemory is set with an
/// LRU or LFU policy (each value then needs its own access clock). Redis decides when the
/// value is created; Ferrous keeps no such mark, so the policy in force now (`shared`) decides.
pub(super) fn refcount(value: &Value, shared: bool) -> i64 {
    match value {
        Value::Str(StrValue::Int(n)) if (0..10_000).contains(n) && shared => i32::MAX as i64,
        _ => 1,
    }
}

/// Redis's MAXMEMORY_FLAG_NO_SHARED_INTEGERS: volatile-lru, volatile-lfu, allkeys-lru and
/// allkeys-lfu (`maxmemory-policy` values 0, 1, 4, 5) with a maxmemory set.
pub(super) fn shares_integers(ctx: &Ctx) -> bool {
    let cfg = ctx.server.config.load();
    cfg.maxmemory == 0 || !matches!(cfg.maxmemory_policy, 0 | 1 | 4 | 5)
}

fn object_help(ctx: &mut Ctx) -> CmdResult {
    super::server::reply_help(
        ctx,
        "OBJECT",
        &[
            "ENCODING <key>",
            "    Return the kind of internal representation used in order to store the value",
            "    associated with a <key>.",
            "FREQ <key>",
            "    Return the access frequency index of the <key>. The returned integer is",
            "    proportional to the logarithm of the recent access frequency of the key.",
            "IDLETIME <key>",
            "    Return the idle time of the <key>, that is the approximated number of",
            "    seconds elapsed since the last access to the key.",
            "REFCOUNT <key>",
            "    Return the number of references of the value associated with the specified",
            "    <key>.",
        ],
    );
    Ok(())
}
