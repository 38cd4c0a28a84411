//! String commands (Redis's t_string.c): GET/SET and their variants, counters, ranges and LCS.

use bytes::Bytes;

use super::args::{self, is};
use super::{errors, CmdError, CmdResult, CommandSpec, Ctx};
use crate::keyspace::notify as ev;
use crate::types::{SmallBytes, StrValue, Value};
use crate::util::num::LongDouble;

pub static COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("get", get),
    CommandSpec::new("set", set).getkeys(super::key_specs::procs::set),
    CommandSpec::new("setnx", setnx),
    CommandSpec::new("setex", setex),
    CommandSpec::new("psetex", psetex),
    CommandSpec::new("getset", getset),
    CommandSpec::new("getdel", getdel),
    CommandSpec::new("getex", getex),
    CommandSpec::new("mget", mget),
    CommandSpec::new("mset", mset),
    CommandSpec::new("msetnx", msetnx),
    CommandSpec::new("append", append),
    CommandSpec::new("strlen", strlen),
    CommandSpec::new("incr", incr),
    CommandSpec::new("decr", decr),
    CommandSpec::new("incrby", incrby),
    CommandSpec::new("decrby", decrby),
    CommandSpec::new("incrbyfloat", incrbyfloat),
    CommandSpec::new("getrange", getrange),
    CommandSpec::new("substr", getrange),
    CommandSpec::new("setrange", setrange),
    CommandSpec::new("lcs", lcs),
];

fn b(s: &'static str) -> Bytes {
    Bytes::from_static(s.as_bytes())
}

/// The value a SET-like command stores for `arg`: kept as it is when it is a big argument that
/// is most of a request owning its buffer (no copy, as Redis keeps the argument's sds; see
/// `protocol::parser::Framing`), else built as SET builds it.
fn value_of(ctx: &Ctx, arg: &Bytes) -> StrValue {
    if crate::protocol::parser::frame_holds(ctx.client.own_frame, arg) {
        StrValue::shared(arg.clone())
    } else {
        StrValue::from_bytes(arg)
    }
}

fn max_bulk(ctx: &Ctx) -> i64 {
    ctx.server.config.load().proto_max_bulk_len
}

/// Redis's checkStringLength.
fn check_len(ctx: &Ctx, size: i64, append: i64) -> CmdResult {
    match size.checked_add(append) {
        Some(total) if total <= max_bulk(ctx) => Ok(()),
        _ => Err(CmdError::new("string exceeds maximum allowed size (proto-max-bulk-len)")),
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum ExpireKind {
    Ex,
    Px,
    ExAt,
    PxAt,
}

/// Options of SET / GETEX (Redis's parseExtendedStringArgumentsOrReply).
#[derive(Default)]
struct SetOpts<'a> {
    nx: bool,
    xx: bool,
    get: bool,
    keepttl: bool,
    persist: bool,
    expire: Option<(ExpireKind, &'a [u8])>,
}

fn parse_set_opts<'a>(args: &'a [Bytes], start: usize, is_set: bool) -> Result<SetOpts<'a>, CmdError> {
    let mut o = SetOpts::default();
    let mut j = start;
    while j < args.len() {
        let a = &args[j][..];
        let next = args.get(j + 1).map(|n| &n[..]);
        if is(a, "nx") && !o.xx && is_set {
            o.nx = true;
        } else if is(a, "xx") && !o.nx && is_set {
            o.xx = true;
        } else if is(a, "get") && is_set {
            o.get = true;
        } else if is(a, "keepttl") && !o.persist && o.expire.is_none() && is_set {
            o.keepttl = true;
        } else if is(a, "persist") && !is_set && o.expire.is_none() && !o.keepttl {
            o.persist = true;
        } else if let (Some(kind), Some(n)) = (expire_word(a), next) {
            if o.keepttl || o.persist || o.expire.is_some_and(|(k, _)| k != kind) {
                return Err(CmdError::new(errors::SYNTAX));
            }
            o.expire = Some((kind, n));
            j += 1;
        } else {
            return Err(CmdError::new(errors::SYNTAX));
        }
        j += 1;
    }
    Ok(o)
}

fn expire_word(a: &[u8]) -> Option<ExpireKind> {
    if is(a, "ex") {
        Some(ExpireKind::Ex)
    } else if is(a, "px") {
        Some(ExpireKind::Px)
    } else if is(a, "exat") {
        Some(ExpireKind::ExAt)
    } else if is(a, "pxat") {
        Some(ExpireKind::PxAt)
    } else {
        None
    }
}

/// Convert an expire argument to an absolute unix time in ms (getExpireMillisecondsOrReply).
fn expire_at_ms(ctx: &Ctx, kind: ExpireKind, arg: &[u8], cmd: &str) -> Result<i64, CmdError> {
    let n = args::int(arg)?;
    let invalid = || CmdError::new(format!("invalid expire time in '{cmd}' command"));
    let secs = matches!(kind, ExpireKind::Ex | ExpireKind::ExAt);
    if n <= 0 || (secs && n > i64::MAX / 1000) {
        return Err(invalid());
    }
    let mut ms = if secs { n * 1000 } else { n };
    if matches!(kind, ExpireKind::Ex | ExpireKind::Px) {
        ms = ms.checked_add(ctx.db.now_ms).ok_or_else(invalid)?;
    }
    if ms <= 0 {
        return Err(invalid());
    }
    Ok(ms)
}

fn get(ctx: &mut Ctx) -> CmdResult {
    match ctx.db.read::<StrValue>(&ctx.args[1])? {
        None => ctx.reply.null(),
        Some(s) => ctx.reply.bulk(&s.to_bytes()),
    }
    Ok(())
}

/// The core of SET and its variants. `ok_reply`/`abort` select SETNX's integer replies.
fn set_generic(ctx: &mut Ctx, opts: &SetOpts, key: &Bytes, val: &Bytes, cmd: &str, int_reply: bool) -> CmdResult {
    let expire = match opts.expire {
        Some((kind, arg)) => Some(expire_at_ms(ctx, kind, arg, cmd)?),
        None => None,
    };
    if opts.get {
        match ctx.db.read::<StrValue>(key)? {
            None => ctx.reply.null(),
            Some(s) => ctx.reply.bulk(&s.to_bytes()),
        }
    }
    if (opts.nx || opts.xx) && opts.nx == ctx.db.exists(key) {
        if !opts.get {
            if int_reply {
                ctx.reply.int(0);
            } else {
                ctx.reply.null();
            }
        }
        return Ok(());
    }
    let value = value_of(ctx, val);
    ctx.db.set(key, Value::Str(value), opts.keepttl);
    ctx.db.touch_dirty(1);
    ctx.db.notify(ev::STRING, "set", key);
    if let Some(when) = expire {
        ctx.db.set_expire(key, when);
        ctx.db.notify(ev::GENERIC, "expire", key);
        // As SET ... PXAT (an absolute time), unless it was given so: then verbatim, as 7.2.
        let pxat = matches!(opts.expire, Some((ExpireKind::PxAt, _)));
        if ctx.db.propagating() && !pxat {
            let ms = Bytes::from(when.to_string());
            ctx.db.propagate_effect(vec![b("SET"), key.clone(), val.clone(), b("PXAT"), ms]);
        }
    } else if opts.get && ctx.db.propagating() {
        let argv: Vec<Bytes> =
            ctx.args.iter().enumerate().filter(|(j, a)| *j < 3 || !is(a, "get")).map(|(_, a)| a.clone()).collect();
        ctx.db.propagate_effect(argv);
    }
    if !opts.get {
        if int_reply {
            ctx.reply.int(1);
        } else {
            ctx.reply.ok();
        }
    }
    Ok(())
}

fn set(ctx: &mut Ctx) -> CmdResult {
    let args = ctx.args;
    let opts = parse_set_opts(args, 3, true)?;
    set_generic(ctx, &opts, &args[1], &args[2], "set", false)
}

fn setnx(ctx: &mut Ctx) -> CmdResult {
    let args = ctx.args;
    let opts = SetOpts { nx: true, ..Default::default() };
    set_generic(ctx, &opts, &args[1], &args[2], "setnx", true)
}

fn setex(ctx: &mut Ctx) -> CmdResult {
    let args = ctx.args;
    let opts = SetOpts { expire: Some((ExpireKind::Ex, &args[2])), ..Default::default() };
    set_generic(ctx, &opts, &args[1], &args[3], "setex", false)
}

fn psetex(ctx: &mut Ctx) -> CmdResult {
    let args = ctx.args;
    let opts = SetOpts { expire: Some((ExpireKind::Px, &args[2])), ..Default::default() };
    set_generic(ctx, &opts, &args[1], &args[3], "psetex", false)
}

fn getset(ctx: &mut Ctx) -> CmdResult {
    let args = ctx.args;
    match ctx.db.read::<StrValue>(&args[1])? {
        None => ctx.reply.null(),
        Some(s) => ctx.reply.bulk(&s.to_bytes()),
    }
    let value = value_of(ctx, &args[2]);
    ctx.db.set(&args[1], Value::Str(value), false);
    ctx.db.touch_dirty(1);
    ctx.db.notify(ev::STRING, "set", &args[1]);
    ctx.db.propagate_effect(vec![b("SET"), args[1].clone(), args[2].clone()]);
    Ok(())
}

fn getdel(ctx: &mut Ctx) -> CmdResult {
    let key = &ctx.args[1];
    match ctx.db.read::<StrValue>(key)? {
        None => {
            ctx.reply.null();
            return Ok(());
        }
        Some(s) => ctx.reply.bulk(&s.to_bytes()),
    }
    ctx.db.delete(key);
    ctx.db.touch_dirty(1);
    ctx.db.notify(ev::GENERIC, "del", key);
    ctx.db.propagate_effect(vec![b("DEL"), key.clone()]);
    Ok(())
}

fn getex(ctx: &mut Ctx) -> CmdResult {
    let args = ctx.args;
    let key = &args[1];
    let opts = parse_set_opts(args, 2, false)?;
    let val = match ctx.db.read::<StrValue>(key)? {
        None => {
            ctx.reply.null();
            return Ok(());
        }
        Some(s) => s.to_bytes().into_owned(),
    };
    let expire = match opts.expire {
        Some((kind, arg)) => Some((kind, expire_at_ms(ctx, kind, arg, "getex")?)),
        None => None,
    };
    ctx.reply.bulk(&val);
    match expire {
        Some((kind, when)) if matches!(kind, ExpireKind::ExAt | ExpireKind::PxAt) && when <= ctx.db.now_ms => {
            ctx.db.delete(key);
            ctx.db.touch_dirty(1);
            ctx.db.notify(ev::GENERIC, "del", key);
            ctx.db.propagate_effect(vec![b("DEL"), key.clone()]);
        }
        Some((_, when)) => {
            ctx.db.set_expire(key, when);
            ctx.db.touch_dirty(1);
            ctx.db.notify(ev::GENERIC, "expire", key);
            ctx.db.propagate_effect(vec![b("PEXPIREAT"), key.clone(), Bytes::from(when.to_string())]);
        }
        None => {
            if opts.persist && ctx.db.persist(key) {
                ctx.db.touch_dirty(1);
                ctx.db.notify(ev::GENERIC, "persist", key);
                ctx.db.propagate_effect(vec![b("PERSIST"), key.clone()]);
            }
        }
    }
    Ok(())
}

fn mget(ctx: &mut Ctx) -> CmdResult {
    let args = ctx.args;
    ctx.reply.array(args.len() - 1);
    for k in &args[1..] {
        match ctx.db.get(k).and_then(|e| e.value.as_str()) {
            Some(s) => ctx.reply.bulk(&s.to_bytes()),
            None => ctx.reply.null(),
        }
    }
    Ok(())
}

fn mset_generic(ctx: &mut Ctx, nx: bool) -> CmdResult {
    let args = ctx.args;
    if args.len().is_multiple_of(2) {
        return Err(CmdError::new(format!(
            "wrong number of arguments for '{}' command",
            if nx { "msetnx" } else { "mset" }
        )));
    }
    if nx && args[1..].chunks(2).any(|kv| ctx.db.exists(&kv[0])) {
        ctx.reply.int(0);
        return Ok(());
    }
    for kv in args[1..].chunks(2) {
        let value = value_of(ctx, &kv[1]);
        ctx.db.set(&kv[0], Value::Str(value), false);
        ctx.db.notify(ev::STRING, "set", &kv[0]);
    }
    ctx.db.touch_dirty((args.len() as u64 - 1) / 2);
    if nx {
        ctx.reply.int(1);
    } else {
        ctx.reply.ok();
    }
    Ok(())
}

fn mset(ctx: &mut Ctx) -> CmdResult {
    mset_generic(ctx, false)
}

fn msetnx(ctx: &mut Ctx) -> CmdResult {
    mset_generic(ctx, true)
}

fn append(ctx: &mut Ctx) -> CmdResult {
    let args = ctx.args;
    let (key, tail) = (&args[1], &args[2]);
    let cur_len = ctx.db.read::<StrValue>(key)?.map(|s| s.len());
    let total = match cur_len {
        None => {
            let value = value_of(ctx, tail);
            ctx.db.set(key, Value::Str(value), false);
            tail.len()
        }
        Some(len) => {
            check_len(ctx, len as i64, tail.len() as i64)?;
            let e = ctx
                .db
                .get_mut(key)
                .and_then(|e| e.value.as_str_mut())
                .ok_or_else(|| CmdError::new(errors::WRONGTYPE))?;
            let raw = e.make_raw();
            raw.extend_from_slice(tail);
            raw.len()
        }
    };
    ctx.db.touch_dirty(1);
    ctx.db.notify(ev::STRING, "append", key);
    ctx.reply.int(total as i64);
    Ok(())
}

fn strlen(ctx: &mut Ctx) -> CmdResult {
    let n = ctx.db.read::<StrValue>(&ctx.args[1])?.map_or(0, |s| s.len());
    ctx.reply.int(n as i64);
    Ok(())
}

fn incr_decr(ctx: &mut Ctx, by: i64) -> CmdResult {
    let key = &ctx.args[1];
    // One lookup: a missing key starts at 0 and is updated in place like an existing one.
    let (e, _) = ctx.db.get_or_insert_with(key, || Value::Str(StrValue::Int(0)));
    let s = e.value.as_str_mut().ok_or_else(|| CmdError::new(errors::WRONGTYPE))?;
    let cur = s.as_i64().ok_or_else(|| CmdError::new(errors::NOT_INTEGER))?;
    let new = cur.checked_add(by).ok_or_else(|| CmdError::new(errors::OVERFLOW))?;
    *s = StrValue::Int(new);
    ctx.db.touch_dirty(1);
    ctx.db.notify(ev::STRING, "incrby", key);
    ctx.reply.int(new);
    Ok(())
}

fn incr(ctx: &mut Ctx) -> CmdResult {
    incr_decr(ctx, 1)
}

fn decr(ctx: &mut Ctx) -> CmdResult {
    incr_decr(ctx, -1)
}

fn incrby(ctx: &mut Ctx) -> CmdResult {
    let by = args::int(&ctx.args[2])?;
    incr_decr(ctx, by)
}

fn decrby(ctx: &mut Ctx) -> CmdResult {
    let by = args::int(&ctx.args[2])?;
    if by == i64::MIN {
        return Err(CmdError::new("decrement would overflow"));
    }
    incr_decr(ctx, -by)
}

fn incrbyfloat(ctx: &mut Ctx) -> CmdResult {
    let args = ctx.args;
    let key = &args[1];
    // Computed in 80-bit extended precision, like Redis's long double, so results and their
    // formatting match Redis digit for digit.
    let cur = match ctx.db.read::<StrValue>(key)? {
        None => LongDouble::ZERO,
        Some(s) => LongDouble::parse(&s.to_bytes()).ok_or_else(|| CmdError::new(errors::NOT_FLOAT))?,
    };
    let by = LongDouble::parse(&args[2]).ok_or_else(|| CmdError::new(errors::NOT_FLOAT))?;
    let new = cur.add(by);
    if !new.is_finite() {
        return Err(CmdError::new("increment would produce NaN or Infinity"));
    }
    let mut text = Vec::with_capacity(32);
    new.format_human(&mut text);
    let value = if text.len() <= crate::types::string::EMBSTR_MAX {
        StrValue::Embstr(SmallBytes::new(&text))
    } else {
        StrValue::raw(text.clone())
    };
    ctx.db.set(key, Value::Str(value), true);
    ctx.db.touch_dirty(1);
    ctx.db.notify(ev::STRING, "incrbyfloat", key);
    ctx.reply.bulk(&text);
    ctx.db.propagate_effect(vec![b("SET"), key.clone(), Bytes::from(text), b("KEEPTTL")]);
    Ok(())
}

fn getrange(ctx: &mut Ctx) -> CmdResult {
    let args = ctx.args;
    let mut start = args::int(&args[2])?;
    let mut end = args::int(&args[3])?;
    let Some(s) = ctx.db.read::<StrValue>(&args[1])? else {
        ctx.reply.bulk(b"");
        return Ok(());
    };
    let bytes = s.to_bytes();
    let len = bytes.len() as i64;
    if start < 0 && end < 0 && start > end {
        ctx.reply.bulk(b"");
        return Ok(());
    }
    if start < 0 {
        start += len;
    }
    if end < 0 {
        end += len;
    }
    start = start.max(0);
    end = end.max(0);
    if end >= len {
        end = len - 1;
    }
    if start > end || len == 0 {
        ctx.reply.bulk(b"");
    } else {
        ctx.reply.bulk(&bytes[start as usize..=end as usize]);
    }
    Ok(())
}

fn setrange(ctx: &mut Ctx) -> CmdResult {
    let args = ctx.args;
    let (key, value) = (&args[1], &args[3]);
    let offset = args::int(&args[2])?;
    if offset < 0 {
        return Err(CmdError::new("offset is out of range"));
    }
    let cur_len = ctx.db.read::<StrValue>(key)?.map(|s| s.len());
    match cur_len {
        None => {
            if value.is_empty() {
                ctx.reply.int(0);
                return Ok(());
            }
            check_len(ctx, offset, value.len() as i64)?;
            ctx.db.set(key, Value::Str(StrValue::raw(Vec::new())), false);
        }
        Some(len) => {
            if value.is_empty() {
                ctx.reply.int(len as i64);
                return Ok(());
            }
            check_len(ctx, offset, value.len() as i64)?;
        }
    }
    let s = ctx.db.get_mut(key).and_then(|e| e.value.as_str_mut()).ok_or_else(|| CmdError::new(errors::WRONGTYPE))?;
    let raw = s.make_raw();
    let off = offset as usize;
    if raw.len() < off + value.len() {
        raw.resize(off + value.len(), 0);
    }
    raw[off..off + value.len()].copy_from_slice(value);
    let n = raw.len();
    ctx.db.touch_dirty(1);
    ctx.db.notify(ev::STRING, "setrange", key);
    ctx.reply.int(n as i64);
    Ok(())
}

fn lcs(ctx: &mut Ctx) -> CmdResult {
    let args = ctx.args;
    let type_err = || CmdError::new("The specified keys must contain string values");
    let a = match ctx.db.get(&args[1]) {
        None => Vec::new(),
        Some(e) => e.value.as_str().ok_or_else(type_err)?.to_bytes().into_owned(),
    };
    let bv = match ctx.db.get(&args[2]) {
        None => Vec::new(),
        Some(e) => e.value.as_str().ok_or_else(type_err)?.to_bytes().into_owned(),
    };
    let (mut getlen, mut getidx, mut withmatchlen, mut minmatchlen) = (false, false, false, 0i64);
    let mut j = 3;
    while j < args.len() {
        let opt = &args[j];
        let more = args.len() - 1 - j;
        if is(opt, "idx") {
            getidx = true;
        } else if is(opt, "len") {
            getlen = true;
        } else if is(opt, "withmatchlen") {
            withmatchlen = true;
        } else if is(opt, "minmatchlen") && more > 0 {
            minmatchlen = args::int(&args[j + 1])?.max(0);
            j += 1;
        } else {
            return Err(CmdError::new(errors::SYNTAX));
        }
        j += 1;
    }
    if getlen && getidx {
        return Err(CmdError::new("If you want both the length and indexes, please just use IDX."));
    }
    let (alen, blen) = (a.len(), bv.len());
    let cells = (alen as u64 + 1) * (blen as u64 + 1);
    if cells * 4 > max_bulk(ctx) as u64 {
        return Err(CmdError::new("Insufficient memory, transient memory for LCS exceeds proto-max-bulk-len"));
    }
    // Classic dynamic programming table of LCS lengths, indexed [i * (blen + 1) + j].
    let w = blen + 1;
    let mut t = vec![0u32; cells as usize];
    for i in 1..=alen {
        for jj in 1..=blen {
            t[i * w + jj] = if a[i - 1] == bv[jj - 1] {
                t[(i - 1) * w + jj - 1] + 1
            } else {
                t[(i - 1) * w + jj].max(t[i * w + jj - 1])
            };
        }
    }
    let total = t[alen * w + blen];
    if getlen {
        ctx.reply.int(total as i64);
        return Ok(());
    }
    // Walk back from the end, building the LCS string and the matching ranges.
    let mut result = vec![0u8; total as usize];
    let mut ranges: Vec<[i64; 5]> = Vec::new();
    let (mut i, mut jj, mut idx) = (alen, blen, total as usize);
    let (mut a_start, mut a_end, mut b_start, mut b_end) = (alen, 0usize, 0usize, 0usize);
    while i > 0 && jj > 0 {
        let mut emit = false;
        if a[i - 1] == bv[jj - 1] {
            result[idx - 1] = a[i - 1];
            if a_start == alen {
                a_start = i - 1;
                a_end = i - 1;
                b_start = jj - 1;
                b_end = jj - 1;
            } else if a_start == i && b_start == jj {
                a_start -= 1;
                b_start -= 1;
            } else {
                emit = true;
            }
            if a_start == 0 || b_start == 0 {
                emit = true;
            }
            idx -= 1;
            i -= 1;
            jj -= 1;
        } else {
            if t[(i - 1) * w + jj] > t[i * w + jj - 1] {
                i -= 1;
            } else {
                jj -= 1;
            }
            if a_start != alen {
                emit = true;
            }
        }
        if emit {
            let match_len = (a_end - a_start + 1) as i64;
            if minmatchlen == 0 || match_len >= minmatchlen {
                ranges.push([a_start as i64, a_end as i64, b_start as i64, b_end as i64, match_len]);
            }
            a_start = alen;
        }
    }
    if getidx {
        ctx.reply.map(2);
        ctx.reply.bulk(b"matches");
        ctx.reply.array(ranges.len());
        for r in &ranges {
            ctx.reply.array(2 + withmatchlen as usize);
            ctx.reply.array(2);
            ctx.reply.int(r[0]);
            ctx.reply.int(r[1]);
            ctx.reply.array(2);
            ctx.reply.int(r[2]);
            ctx.reply.int(r[3]);
            if withmatchlen {
                ctx.reply.int(r[4]);
            }
        }
        ctx.reply.bulk(b"len");
        ctx.reply.int(total as i64);
    } else {
        ctx.reply.bulk(&result);
    }
    Ok(())
}
