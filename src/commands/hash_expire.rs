//! Hash-field expiry commands (Redis 7.4 / 8.0): HEXPIRE, HPEXPIRE, HEXPIREAT, HPEXPIREAT
//! (NX | XX | GT | LT), HTTL, HPTTL, HEXPIRETIME, HPEXPIRETIME, HPERSIST, and Redis 8's
//! HGETEX, HSETEX (FNX | FXX, EX | PX | EXAT | PXAT | KEEPTTL) and HGETDEL, with Redis 8's
//! syntax, replies and error texts (t_hash.c).
//!
//! Effects are absolute and deterministic: HEXPIRE and friends propagate as HPEXPIREAT with
//! only the fields whose TTL was set, HSETEX with a relative time as HSETEX ... PXAT, HGETEX as
//! HPEXPIREAT or HPERSIST, HGETDEL as HDEL; a field whose time is in the past is deleted and
//! propagated as HDEL. Fields whose TTL passed are reclaimed by `keyspace::hfe`.

use bytes::Bytes;

use super::args::is;
use super::hashes::{limits, write_or_create};
use super::{errors, CmdError, CmdResult, CommandSpec, Ctx};
use crate::keyspace::hfe::{FieldLookup, Lazy};
use crate::keyspace::notify;
use crate::types::hash_ttl::{ExpireCond, SetTtl, MAX_EXPIRE_MS};
use crate::types::{Entry, HashValue, Value};

pub static COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("hexpire", hexpire),
    CommandSpec::new("hpexpire", hpexpire),
    CommandSpec::new("hexpireat", hexpireat),
    CommandSpec::new("hpexpireat", hpexpireat),
    CommandSpec::new("httl", httl),
    CommandSpec::new("hpttl", hpttl),
    CommandSpec::new("hexpiretime", hexpiretime),
    CommandSpec::new("hpexpiretime", hpexpiretime),
    CommandSpec::new("hpersist", hpersist),
    CommandSpec::new("hgetdel", hgetdel),
    CommandSpec::new("hgetex", hgetex),
    CommandSpec::new("hsetex", hsetex),
];

const FIELDS_MISSING: &str = "Mandatory argument FIELDS is missing or not at the right position";
const NUMFIELDS_MISMATCH: &str = "The `numfields` parameter must match the number of arguments";
const NUMFIELDS_POSITIVE: &str = "Number of fields must be a positive integer";

fn arity_error(args: &[Bytes]) -> CmdError {
    let name = String::from_utf8_lossy(&args[0]).to_lowercase();
    CmdError::new(format!("wrong number of arguments for '{name}' command"))
}

/// The hash at `key` (WRONGTYPE for another type), looked up once for the statistics.
fn lookup(ctx: &mut Ctx, key: &[u8]) -> Result<bool, CmdError> {
    match ctx.db.get(key) {
        None => Ok(false),
        Some(Entry { value: Value::Hash(_), .. }) => Ok(true),
        Some(_) => Err(CmdError::new(errors::WRONGTYPE)),
    }
}

/// The hash at `key` for a second look (no statistics), if it is still there.
fn hash<'a>(ctx: &'a mut Ctx, key: &[u8]) -> Option<&'a mut HashValue> {
    match ctx.db.peek_mut(key) {
        Some(Entry { value: Value::Hash(h), .. }) => Some(h),
        _ => None,
    }
}

/// Redis's parseExpireTime: a non-negative integer, in seconds or milliseconds, plus
/// `basetime`, no later than HFE_MAX_ABS_TIME_MSEC.
fn parse_expire(args: &[Bytes], arg: &[u8], seconds: bool, basetime: i64) -> Result<i64, CmdError> {
    let v = super::args::int(arg)?;
    if v < 0 {
        return Err(CmdError::new("invalid expire time, must be >= 0"));
    }
    let expire_error = || {
        let name = String::from_utf8_lossy(&args[0]).to_lowercase();
        CmdError::new(format!("invalid expire time in '{name}' command"))
    };
    let ms = if seconds {
        if v > MAX_EXPIRE_MS / 1000 {
            return Err(expire_error());
        }
        v * 1000
    } else {
        v
    };
    if ms > MAX_EXPIRE_MS - basetime {
        return Err(expire_error());
    }
    Ok(ms + basetime)
}

/// `FIELDS numfields field...` starting at `at` (the FIELDS token): the fields.
fn parse_fields<'a>(args: &'a [Bytes], at: usize, positive_msg: &str) -> Result<&'a [Bytes], CmdError> {
    if at >= args.len() || !is(&args[at], "fields") {
        return Err(CmdError::new(FIELDS_MISSING));
    }
    let Some(num) = args.get(at + 1) else {
        return Err(arity_error(args));
    };
    let n = match crate::util::num::parse_i64(num) {
        Some(n) if n >= 1 => n,
        _ => return Err(CmdError::new(positive_msg)),
    };
    if n as u64 != (args.len() - at - 2) as u64 {
        return Err(CmdError::new(NUMFIELDS_MISMATCH));
    }
    Ok(&args[at + 2..])
}

fn hdel_effect(key: &Bytes, field: &[u8]) -> Vec<Bytes> {
    vec![Bytes::from_static(b"HDEL"), key.clone(), Bytes::copy_from_slice(field)]
}

// ---------------------------------------------------------------------------------------------
// HEXPIRE, HPEXPIRE, HEXPIREAT, HPEXPIREAT

fn hexpire(ctx: &mut Ctx) -> CmdResult {
    let now = ctx.db.now_ms;
    hexpire_generic(ctx, now, true)
}

fn hpexpire(ctx: &mut Ctx) -> CmdResult {
    let now = ctx.db.now_ms;
    hexpire_generic(ctx, now, false)
}

fn hexpireat(ctx: &mut Ctx) -> CmdResult {
    hexpire_generic(ctx, 0, true)
}

fn hpexpireat(ctx: &mut Ctx) -> CmdResult {
    hexpire_generic(ctx, 0, false)
}

fn hexpire_generic(ctx: &mut Ctx, basetime: i64, seconds: bool) -> CmdResult {
    let args = ctx.args;
    let key = &args[1];
    let exists = lookup(ctx, key)?;
    let when = parse_expire(args, &args[2], seconds, basetime)?;
    let (cond, fields_at) = match &args[3] {
        a if is(a, "nx") => (ExpireCond::Nx, 4),
        a if is(a, "xx") => (ExpireCond::Xx, 4),
        a if is(a, "gt") => (ExpireCond::Gt, 4),
        a if is(a, "lt") => (ExpireCond::Lt, 4),
        _ => (ExpireCond::None, 3),
    };
    let fields = parse_fields(ctx.args, fields_at, "Parameter `numFields` should be greater than 0")?;
    if !exists {
        ctx.reply.array(fields.len());
        for _ in fields {
            ctx.reply.int(SetTtl::NoField as i64);
        }
        return Ok(());
    }
    let past = when <= ctx.db.now_ms;
    let h = hash(ctx, key).expect("looked up above");
    h.ensure_ttl_encoding();
    let results: Vec<SetTtl> = fields.iter().map(|f| h.set_ttl(f, when, cond, past)).collect();
    ctx.reply.array(results.len());
    let (mut updated, mut deleted) = (0u64, 0u64);
    let mut set_fields = Vec::new();
    for (f, r) in fields.iter().zip(&results) {
        ctx.reply.int(*r as i64);
        match r {
            SetTtl::Set => {
                updated += 1;
                set_fields.push(f.clone());
            }
            SetTtl::Deleted => {
                deleted += 1;
                ctx.db.propagate(hdel_effect(key, f));
            }
            _ => {}
        }
    }
    ctx.db.count_expired_fields(deleted);
    if updated + deleted > 0 {
        ctx.db.touch_dirty(updated + deleted);
        ctx.db.notify(notify::HASH, if deleted > 0 { "hdel" } else { "hexpire" }, key);
    }
    ctx.db.remove_if_empty::<HashValue>(key);
    ctx.db.track_hash_ttls(key);
    // Propagated as HPEXPIREAT with the absolute time and only the fields that were set.
    if updated == 0 {
        ctx.db.suppress_command_effect();
    } else {
        let mut argv = vec![Bytes::from_static(b"HPEXPIREAT"), key.clone(), Bytes::from(when.to_string())];
        if cond != ExpireCond::None {
            argv.push(args[3].clone());
        }
        argv.push(Bytes::from_static(b"FIELDS"));
        argv.push(Bytes::from(set_fields.len().to_string()));
        argv.extend(set_fields);
        ctx.db.propagate_effect(argv);
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// HTTL, HPTTL, HEXPIRETIME, HPEXPIRETIME

fn httl(ctx: &mut Ctx) -> CmdResult {
    let now = ctx.db.now_ms;
    ttl_generic(ctx, now, true)
}

fn hpttl(ctx: &mut Ctx) -> CmdResult {
    let now = ctx.db.now_ms;
    ttl_generic(ctx, now, false)
}

fn hexpiretime(ctx: &mut Ctx) -> CmdResult {
    ttl_generic(ctx, 0, true)
}

fn hpexpiretime(ctx: &mut Ctx) -> CmdResult {
    ttl_generic(ctx, 0, false)
}

fn ttl_generic(ctx: &mut Ctx, basetime: i64, seconds: bool) -> CmdResult {
    let key = &ctx.args[1];
    let exists = lookup(ctx, key)?;
    let fields = parse_fields(ctx.args, 2, NUMFIELDS_POSITIVE)?;
    let now = ctx.db.now_ms;
    let answers: Vec<i64> = match hash(ctx, key).filter(|_| exists) {
        None => vec![-2; fields.len()],
        Some(h) => {
            // Redis's listpackex counts a field expiring right now as gone, its hash table not.
            let listpackex = h.encoding() == "listpackex";
            fields
                .iter()
                .map(|f| match (h.contains(f), h.ttl(f)) {
                    (false, _) => -2,
                    (true, None) => -1,
                    (true, Some(t)) if t < now || (listpackex && t == now) => -2,
                    (true, Some(t)) if seconds => (t + 999 - basetime) / 1000,
                    (true, Some(t)) => t - basetime,
                })
                .collect()
        }
    };
    ctx.reply.array(answers.len());
    for a in answers {
        ctx.reply.int(a);
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// HPERSIST

fn hpersist(ctx: &mut Ctx) -> CmdResult {
    let key = &ctx.args[1];
    let exists = lookup(ctx, key)?;
    let fields = parse_fields(ctx.args, 2, NUMFIELDS_POSITIVE)?;
    let now = ctx.db.now_ms;
    let answers: Vec<i64> = match hash(ctx, key).filter(|_| exists) {
        None => vec![-2; fields.len()],
        Some(h) => fields.iter().map(|f| h.persist_field(f, now)).collect(),
    };
    ctx.reply.array(answers.len());
    for &a in &answers {
        ctx.reply.int(a);
    }
    if answers.contains(&1) {
        ctx.db.notify(notify::HASH, "hpersist", key);
        ctx.db.touch_dirty(1);
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// HGETDEL, HGETEX

fn hgetdel(ctx: &mut Ctx) -> CmdResult {
    let args = ctx.args;
    let key = &args[1];
    let exists = lookup(ctx, key)?;
    let fields = parse_fields(ctx.args, 2, NUMFIELDS_POSITIVE)?;
    ctx.reply.array(fields.len());
    let (mut expired, mut deleted) = (false, 0u64);
    for f in fields {
        let found = if exists { ctx.db.hash_field(key, f, Lazy::DEFERRED) } else { FieldLookup::NotFound };
        match found {
            FieldLookup::Found(v) => {
                ctx.reply.bulk(&v);
                if let Some(h) = hash(ctx, key) {
                    h.remove(f);
                }
                deleted += 1;
            }
            FieldLookup::Expired | FieldLookup::ExpiredHash => {
                expired = true;
                ctx.reply.null();
            }
            FieldLookup::NotFound => ctx.reply.null(),
        }
    }
    if !expired && deleted == 0 {
        return Ok(());
    }
    if expired {
        ctx.db.notify(notify::HASH, "hexpired", key);
    }
    if deleted > 0 {
        ctx.db.notify(notify::HASH, "hdel", key);
        ctx.db.touch_dirty(deleted);
        // Propagated as HDEL key field... (every field named).
        let mut argv = vec![Bytes::from_static(b"HDEL"), key.clone()];
        argv.extend(fields.iter().cloned());
        ctx.db.propagate_effect(argv);
    }
    ctx.db.remove_if_empty::<HashValue>(key);
    Ok(())
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum GetExCond {
    None,
    Expire,
    Persist,
}

fn hgetex(ctx: &mut Ctx) -> CmdResult {
    let args = ctx.args;
    let key = &args[1];
    let exists = lookup(ctx, key)?;
    let now = ctx.db.now_ms;
    let opt = &args[2];
    let (cond, fields_at, when, pxat) = if is(opt, "ex") || is(opt, "px") || is(opt, "exat") || is(opt, "pxat") {
        let seconds = is(opt, "ex") || is(opt, "exat");
        let basetime = if is(opt, "ex") || is(opt, "px") { now } else { 0 };
        let when = parse_expire(args, &args[3], seconds, basetime)?;
        (GetExCond::Expire, 4, when, is(opt, "pxat"))
    } else if is(opt, "persist") {
        (GetExCond::Persist, 3, 0, false)
    } else {
        (GetExCond::None, 2, 0, false)
    };
    if fields_at + 1 >= args.len() && fields_at < args.len() && is(&args[fields_at], "fields") {
        return Err(arity_error(args));
    }
    let fields = parse_fields(ctx.args, fields_at, NUMFIELDS_POSITIVE)?;
    if !exists {
        ctx.reply.array(fields.len());
        for _ in fields {
            ctx.reply.null();
        }
        return Ok(());
    }
    if cond != GetExCond::None {
        if let Some(h) = hash(ctx, key) {
            h.ensure_ttl_encoding();
        }
    }
    let past = when <= now;
    ctx.reply.array(fields.len());
    let (mut expired, mut deleted, mut updated) = (false, 0u64, 0u64);
    for f in fields {
        match ctx.db.hash_field(key, f, Lazy::DEFERRED) {
            FieldLookup::Found(v) => {
                ctx.reply.bulk(&v);
                let Some(h) = hash(ctx, key) else { continue };
                match cond {
                    GetExCond::None => {}
                    GetExCond::Persist => {
                        if h.ttl(f).is_some() {
                            h.put_ttl(f, 0);
                            updated += 1;
                        }
                    }
                    GetExCond::Expire => match h.set_ttl(f, when, ExpireCond::None, past) {
                        SetTtl::Set => updated += 1,
                        SetTtl::Deleted => {
                            deleted += 1;
                            ctx.db.propagate(hdel_effect(key, f));
                        }
                        _ => {}
                    },
                }
            }
            FieldLookup::Expired | FieldLookup::ExpiredHash => {
                expired = true;
                ctx.reply.null();
            }
            FieldLookup::NotFound => ctx.reply.null(),
        }
    }
    ctx.db.count_expired_fields(deleted);
    if !expired && deleted == 0 && updated == 0 {
        return Ok(());
    }
    ctx.db.touch_dirty(deleted + updated);
    if expired {
        ctx.db.notify(notify::HASH, "hexpired", key);
    }
    if updated > 0 {
        // Propagated as HPERSIST, or HPEXPIREAT with the absolute time (every field named).
        let mut argv = if cond == GetExCond::Persist {
            ctx.db.notify(notify::HASH, "hpersist", key);
            vec![Bytes::from_static(b"HPERSIST"), key.clone()]
        } else {
            ctx.db.notify(notify::HASH, "hexpire", key);
            let t = if pxat { args[3].clone() } else { Bytes::from(when.to_string()) };
            vec![Bytes::from_static(b"HPEXPIREAT"), key.clone(), t]
        };
        argv.extend(args[fields_at..].iter().cloned());
        ctx.db.propagate_effect(argv);
    } else if deleted > 0 {
        ctx.db.notify(notify::HASH, "hdel", key);
        ctx.db.suppress_command_effect();
    }
    ctx.db.remove_if_empty::<HashValue>(key);
    ctx.db.track_hash_ttls(key);
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// HSETEX

/// HSETEX's options, parsed as Redis's hsetexParseArgs does.
struct SetExArgs {
    fnx: bool,
    fxx: bool,
    /// The expiry option (EX/PX/EXAT/PXAT) and its argument's position, and the absolute time.
    expire: Option<(usize, i64, bool)>,
    keepttl: bool,
    first_field: usize,
}

fn parse_hsetex(ctx: &Ctx) -> Result<SetExArgs, CmdError> {
    let args = ctx.args;
    let now = ctx.db.now_ms;
    let mut a = SetExArgs { fnx: false, fxx: false, expire: None, keepttl: false, first_field: 0 };
    let mut i = 2;
    while i < args.len() {
        let t = &args[i];
        if is(t, "fields") {
            if i + 3 >= args.len() {
                return Err(arity_error(args));
            }
            let n = match crate::util::num::parse_i64(&args[i + 1]) {
                Some(n) if (1..=i32::MAX as i64).contains(&n) => n as usize,
                _ => return Err(CmdError::new("invalid number of fields")),
            };
            let remaining = args.len() - i - 2;
            if !remaining.is_multiple_of(2) || n != remaining / 2 {
                return Err(arity_error(args));
            }
            a.first_field = i + 2;
            return Ok(a);
        }
        let expiry = ["ex", "px", "exat", "pxat"].iter().position(|o| is(t, o));
        if expiry.is_some() || is(t, "keepttl") {
            if a.expire.is_some() || a.keepttl {
                return Err(CmdError::new("Only one of EX, PX, EXAT, PXAT or KEEPTTL arguments can be specified"));
            }
            match expiry {
                Some(k) => {
                    if i + 1 >= args.len() {
                        return Err(CmdError::new("missing expire time"));
                    }
                    let seconds = k == 0 || k == 2;
                    let basetime = if k < 2 { now } else { 0 };
                    let when = parse_expire(args, &args[i + 1], seconds, basetime)?;
                    a.expire = Some((i + 1, when, k == 3));
                    i += 1;
                }
                None => a.keepttl = true,
            }
        } else if is(t, "fxx") || is(t, "fnx") {
            if a.fnx || a.fxx {
                return Err(CmdError::new("Only one of FXX or FNX arguments can be specified"));
            }
            if is(t, "fxx") {
                a.fxx = true;
            } else {
                a.fnx = true;
            }
        } else {
            return Err(CmdError::new(format!("unknown argument: {}", String::from_utf8_lossy(t))));
        }
        i += 1;
    }
    Err(CmdError::new(errors::SYNTAX))
}

fn hsetex(ctx: &mut Ctx) -> CmdResult {
    let args = ctx.args;
    let key = &args[1];
    let a = parse_hsetex(ctx)?;
    let exists = lookup(ctx, key)?;
    if !exists {
        if a.fxx {
            ctx.reply.int(0);
            return Ok(());
        }
        ctx.db.set(key, Value::Hash(HashValue::default()), false);
    }
    let pairs: Vec<(Bytes, Bytes)> = args[a.first_field..].chunks(2).map(|c| (c[0].clone(), c[1].clone())).collect();
    let mut expired = false;
    if a.fnx || a.fxx {
        let mut found = 0;
        for (f, _) in &pairs {
            let exists = match ctx.db.hash_field(key, f, Lazy::DEFERRED) {
                FieldLookup::Found(_) => true,
                FieldLookup::Expired | FieldLookup::ExpiredHash => {
                    expired = true;
                    false
                }
                FieldLookup::NotFound => false,
            };
            found += exists as usize;
            if (a.fxx && !exists) || (a.fnx && exists) {
                break;
            }
        }
        if (a.fnx && found != 0) || (a.fxx && found != pairs.len()) {
            ctx.reply.int(0);
            if expired {
                ctx.db.notify(notify::HASH, "hexpired", key);
            }
            ctx.db.remove_if_empty::<HashValue>(key);
            return Ok(());
        }
    }
    let lim = limits(ctx);
    let now = ctx.db.now_ms;
    let h = write_or_create(ctx, key)?;
    h.try_conversion(args[a.first_field..].iter().map(|x| &x[..]), lim);
    if a.expire.is_some() {
        h.ensure_ttl_encoding();
    }
    let (mut updated, mut deleted) = (0u64, 0u64);
    let mut hdels = Vec::new();
    for (f, v) in &pairs {
        let h = write_or_create(ctx, key)?;
        if a.expire.is_some() || a.keepttl {
            h.set_keep_ttl(f, v, lim);
        } else {
            h.set(f, v, lim);
        }
        if let Some((_, when, _)) = a.expire {
            match h.set_ttl(f, when, ExpireCond::None, when <= now) {
                SetTtl::Set => updated += 1,
                SetTtl::Deleted => {
                    deleted += 1;
                    hdels.push(f.clone());
                }
                _ => {}
            }
        }
    }
    ctx.db.count_expired_fields(deleted);
    for f in &hdels {
        ctx.db.propagate(hdel_effect(key, f));
    }
    ctx.db.touch_dirty(pairs.len() as u64);
    if deleted > 0 {
        // The fields were set and deleted (a time in the past): only the HDELs propagate.
        ctx.db.suppress_command_effect();
    } else if let Some((at, when, false)) = a.expire {
        let mut argv = args.to_vec();
        argv[at - 1] = Bytes::from_static(b"PXAT");
        argv[at] = Bytes::from(when.to_string());
        ctx.db.propagate_effect(argv);
    }
    ctx.reply.int(1);
    if expired {
        ctx.db.notify(notify::HASH, "hexpired", key);
    }
    ctx.db.notify(notify::HASH, "hset", key);
    if deleted > 0 || updated > 0 {
        ctx.db.notify(notify::HASH, if deleted > 0 { "hdel" } else { "hexpire" }, key);
    }
    ctx.db.remove_if_empty::<HashValue>(key);
    ctx.db.track_hash_ttls(key);
    Ok(())
}
