//! List commands (Redis's t_list.c): pushes and pops at both ends, indexed access, LINSERT,
//! LREM, LTRIM, LPOS, LMOVE/RPOPLPUSH and LMPOP.
//!
//! The blocking variants (BLPOP, BRPOP, BLMOVE, BRPOPLPUSH, BLMPOP) live elsewhere and build on
//! the `pub` cores here: [`pop_elements`], [`move_element`], [`mpop`], [`parse_end`] and
//! [`parse_mpop`]. Those cores change the keyspace and count the change (`touch_dirty`) but
//! write no reply; propagation is the caller's business except where documented. Every list key
//! is created through [`list_for_push`], the place to signal clients blocked on that key.
//!
//! Rules shared by every command, as in Redis: a key holding another type gives WRONGTYPE
//! before anything changes, and a list left empty is deleted.

use crate::keyspace::notify as ev;
use bytes::Bytes;

use super::args::{self, is};
use super::{errors, CmdError, CmdResult, CommandSpec, Ctx};
use crate::keyspace::Db;
use crate::types::{ListValue, SmallBytes, Value};

pub static COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("lpush", lpush),
    CommandSpec::new("rpush", rpush),
    CommandSpec::new("lpushx", lpushx),
    CommandSpec::new("rpushx", rpushx),
    CommandSpec::new("lpop", lpop),
    CommandSpec::new("rpop", rpop),
    CommandSpec::new("llen", llen),
    CommandSpec::new("lrange", lrange),
    CommandSpec::new("lindex", lindex),
    CommandSpec::new("lset", lset),
    CommandSpec::new("linsert", linsert),
    CommandSpec::new("lrem", lrem),
    CommandSpec::new("ltrim", ltrim),
    CommandSpec::new("lpos", lpos),
    CommandSpec::new("lmove", lmove),
    CommandSpec::new("rpoplpush", rpoplpush),
    CommandSpec::new("lmpop", lmpop).getkeys(super::key_specs::procs::numkeys_at_1),
];

/// One end of a list: LEFT is the head, RIGHT the tail.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum End {
    Left,
    Right,
}

impl End {
    fn front(self) -> bool {
        self == End::Left
    }

    /// The keyword, as written in LMOVE (for rewriting blocking commands' effects).
    pub fn keyword(self) -> &'static str {
        match self {
            End::Left => "LEFT",
            End::Right => "RIGHT",
        }
    }
}

/// Parse LEFT / RIGHT (case-insensitive); anything else is a syntax error.
pub fn parse_end(arg: &[u8]) -> Result<End, CmdError> {
    if is(arg, "left") {
        Ok(End::Left)
    } else if is(arg, "right") {
        Ok(End::Right)
    } else {
        Err(CmdError::new(errors::SYNTAX))
    }
}

fn wrongtype() -> CmdError {
    CmdError::new(errors::WRONGTYPE)
}

fn pop_event(end: End) -> &'static str {
    if end == End::Left {
        "lpop"
    } else {
        "rpop"
    }
}

fn push_event(end: End) -> &'static str {
    if end == End::Left {
        "lpush"
    } else {
        "rpush"
    }
}

/// A non-negative integer argument; `msg` for both parse and range errors (Redis's
/// getPositiveLongFromObjectOrReply).
fn non_negative(arg: &[u8], msg: &str) -> Result<i64, CmdError> {
    match args::int_or(arg, msg)? {
        n if n < 0 => Err(CmdError::new(msg)),
        n => Ok(n),
    }
}

/// Pop up to `count` elements from `end` of the list at `key` (the core of LPOP/RPOP with a
/// count, LMPOP, BLPOP/BRPOP/BLMPOP).
///
/// Returns `Ok(None)` when the key is missing (or, for lists loaded from very old data, empty),
/// WRONGTYPE when it holds another type, otherwise the popped elements in popping order (head
/// first for [`End::Left`], tail first for [`End::Right`]); `count == 0` returns an empty vector
/// and changes nothing. The key is deleted when emptied and every popped element counts as one
/// change (`touch_dirty`). Nothing is propagated here: the pipeline propagates the command as
/// received; a blocking caller records its effect (`LPOP key n`, say) itself.
pub fn pop_elements(db: &mut Db, key: &[u8], end: End, count: usize) -> Result<Option<Vec<SmallBytes>>, CmdError> {
    let Some(list) = db.write::<ListValue>(key)? else {
        return Ok(None);
    };
    if list.is_empty() {
        return Ok(None);
    }
    let out = list.pop_many(count, end.front());
    let emptied = list.is_empty();
    if !out.is_empty() {
        db.notify(ev::LIST, pop_event(end), key);
    }
    if emptied {
        db.delete(key);
        db.notify(ev::GENERIC, "del", key);
    }
    db.touch_dirty(out.len() as u64);
    Ok(Some(out))
}

/// The LMOVE core (LMOVE, RPOPLPUSH, BLMOVE, BRPOPLPUSH): pop one element from `from` of `src`
/// and push it at `to` of `dst`, creating `dst` if needed.
///
/// Returns `Ok(None)` when `src` is missing or empty (`dst` is then not looked at, as in Redis),
/// WRONGTYPE when `src` or `dst` holds another type — both are checked before anything changes —
/// otherwise the moved element. `src == dst` rotates the list in place (it keeps its TTL). The
/// source is deleted when emptied; counts one change. Propagation is the caller's (the
/// dispatcher propagates LMOVE/RPOPLPUSH as received; BLMOVE must record `LMOVE src dst ..`).
pub fn move_element(db: &mut Db, src: &[u8], dst: &[u8], from: End, to: End) -> Result<Option<SmallBytes>, CmdError> {
    // Checks without touching the statistics, so each key is counted once below.
    match db.peek(src).map(|e| &e.value) {
        None => return Ok(None),
        Some(Value::List(l)) if l.is_empty() => return Ok(None),
        Some(Value::List(_)) => {}
        Some(_) => return Err(wrongtype()),
    }
    if src == dst {
        let list = db.write::<ListValue>(src)?.expect("source checked above");
        let v = list.rotate(from.front(), to.front()).map(SmallBytes::new);
        db.touch_dirty(1);
        // Redis notifies the push before the pop (lmoveHandlePush, then listElementsRemoved).
        db.notify(ev::LIST, push_event(to), dst);
        db.notify(ev::LIST, pop_event(from), src);
        return Ok(v);
    }
    if db.peek(dst).is_some_and(|e| !matches!(e.value, Value::List(_))) {
        return Err(wrongtype());
    }
    let list = db.write::<ListValue>(src)?.expect("source checked above");
    let Some(v) = list.pop(from.front()) else {
        return Ok(None);
    };
    let emptied = list.is_empty();
    if emptied {
        db.delete(src);
    }
    list_for_push(db, dst)?.push_elem(v.clone(), to.front());
    // Events in Redis's order: the push, then the pop, then the source's deletion.
    db.notify(ev::LIST, push_event(to), dst);
    db.notify(ev::LIST, pop_event(from), src);
    if emptied {
        db.notify(ev::GENERIC, "del", src);
    }
    db.touch_dirty(1);
    Ok(Some(v))
}

/// The list at `key` for pushing, created empty when the key is missing; WRONGTYPE when it
/// holds another type. This is the one place a list key is created (LPUSH/RPUSH and the
/// destination of LMOVE/RPOPLPUSH): where clients blocked on the key are to be signalled.
pub fn list_for_push<'a>(db: &'a mut Db, key: &[u8]) -> Result<&'a mut ListValue, CmdError> {
    let (e, _) = db.get_or_insert_with(key, || Value::List(ListValue::new()));
    match &mut e.value {
        Value::List(l) => Ok(l),
        _ => Err(wrongtype()),
    }
}

/// The parsed arguments of LMPOP / BLMPOP.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MpopArgs {
    /// The keys are `args[first_key..first_key + numkeys]`.
    pub first_key: usize,
    pub numkeys: usize,
    pub end: End,
    /// How many elements to pop at most (1 without COUNT).
    pub count: usize,
}

/// Parse `numkeys key [key ...] LEFT|RIGHT [COUNT count]` starting with numkeys at
/// `args[numkeys_idx]` (1 for LMPOP, 2 for BLMPOP), with Redis's errors and their order.
pub fn parse_mpop(args: &[Bytes], numkeys_idx: usize) -> Result<MpopArgs, CmdError> {
    const NUMKEYS: &str = "numkeys should be greater than 0";
    let numkeys = args::int_or(&args[numkeys_idx], NUMKEYS)?;
    if numkeys < 1 {
        return Err(CmdError::new(NUMKEYS));
    }
    let where_idx = (numkeys as u64).saturating_add(numkeys_idx as u64 + 1);
    if where_idx >= args.len() as u64 {
        return Err(CmdError::new(errors::SYNTAX));
    }
    let where_idx = where_idx as usize;
    let end = parse_end(&args[where_idx])?;
    let mut count: Option<usize> = None;
    let mut j = where_idx + 1;
    while j < args.len() {
        let more = j + 1 < args.len();
        if count.is_none() && is(&args[j], "count") && more {
            j += 1;
            const COUNT: &str = "count should be greater than 0";
            let n = args::int_or(&args[j], COUNT)?;
            if n < 1 {
                return Err(CmdError::new(COUNT));
            }
            count = Some(n as usize);
        } else {
            return Err(CmdError::new(errors::SYNTAX));
        }
        j += 1;
    }
    Ok(MpopArgs { first_key: numkeys_idx + 1, numkeys: numkeys as usize, end, count: count.unwrap_or(1) })
}

/// The LMPOP core: pop up to `count` elements from `end` of the first non-empty list among
/// `keys`. Returns the key and the elements, `Ok(None)` when every key is missing, WRONGTYPE
/// when a key met before the first non-empty list holds another type. Records the effect as
/// `LPOP key n` / `RPOP key n` (Redis's rewrite) and counts the changes.
pub fn mpop(db: &mut Db, keys: &[Bytes], end: End, count: usize) -> Result<Option<(Bytes, Vec<SmallBytes>)>, CmdError> {
    for key in keys {
        if let Some(v) = pop_elements(db, key, end, count)? {
            let cmd = if end == End::Left { "LPOP" } else { "RPOP" };
            db.propagate_effect(vec![
                Bytes::from_static(cmd.as_bytes()),
                key.clone(),
                Bytes::from(v.len().to_string()),
            ]);
            return Ok(Some((key.clone(), v)));
        }
    }
    Ok(None)
}

// ---------------------------------------------------------------------------------------------
// Handlers

fn push_generic(ctx: &mut Ctx, front: bool, xx: bool) -> CmdResult {
    let args = ctx.args;
    let key = &args[1];
    let list = if xx {
        match ctx.db.write::<ListValue>(key)? {
            Some(l) => l,
            None => {
                ctx.reply.int(0);
                return Ok(());
            }
        }
    } else {
        list_for_push(ctx.db, key)?
    };
    list.push_all(args[2..].iter().map(|v| &v[..]), front);
    let len = list.len();
    ctx.db.touch_dirty(args.len() as u64 - 2);
    ctx.db.notify(ev::LIST, if front { "lpush" } else { "rpush" }, key);
    ctx.reply.int(len as i64);
    Ok(())
}

fn lpush(ctx: &mut Ctx) -> CmdResult {
    push_generic(ctx, true, false)
}

fn rpush(ctx: &mut Ctx) -> CmdResult {
    push_generic(ctx, false, false)
}

fn lpushx(ctx: &mut Ctx) -> CmdResult {
    push_generic(ctx, true, true)
}

fn rpushx(ctx: &mut Ctx) -> CmdResult {
    push_generic(ctx, false, true)
}

fn pop_generic(ctx: &mut Ctx, end: End) -> CmdResult {
    let args = ctx.args;
    if args.len() > 3 {
        return Err(CmdError::new(format!(
            "wrong number of arguments for '{}' command",
            args::text(&args[0]).to_lowercase()
        )));
    }
    let count = match args.get(2) {
        Some(a) => Some(non_negative(a, "value is out of range, must be positive")? as usize),
        None => None,
    };
    let key = &args[1];
    match count {
        None => match pop_elements(ctx.db, key, end, 1)? {
            Some(v) => ctx.reply.bulk(&v[0]),
            None => ctx.reply.null(),
        },
        Some(n) => match pop_elements(ctx.db, key, end, n)? {
            // A zero count on an existing list gives an empty array (changing nothing).
            Some(v) => {
                ctx.reply.array(v.len());
                for e in &v {
                    ctx.reply.bulk(e);
                }
            }
            None => ctx.reply.null_array(),
        },
    }
    Ok(())
}

fn lpop(ctx: &mut Ctx) -> CmdResult {
    pop_generic(ctx, End::Left)
}

fn rpop(ctx: &mut Ctx) -> CmdResult {
    pop_generic(ctx, End::Right)
}

fn llen(ctx: &mut Ctx) -> CmdResult {
    let n = ctx.db.read::<ListValue>(&ctx.args[1])?.map_or(0, |l| l.len());
    ctx.reply.int(n as i64);
    Ok(())
}

fn lrange(ctx: &mut Ctx) -> CmdResult {
    let start = args::int(&ctx.args[2])?;
    let end = args::int(&ctx.args[3])?;
    match ctx.db.read::<ListValue>(&ctx.args[1])? {
        None => ctx.reply.array(0),
        Some(l) => {
            let it = l.range(start, end);
            ctx.reply.array(it.len());
            it.for_each(|e| ctx.reply.bulk(e));
        }
    }
    Ok(())
}

fn lindex(ctx: &mut Ctx) -> CmdResult {
    let Some(l) = ctx.db.read::<ListValue>(&ctx.args[1])? else {
        ctx.reply.null();
        return Ok(());
    };
    let index = args::int(&ctx.args[2])?;
    match l.get(index) {
        Some(e) => ctx.reply.bulk(e),
        None => ctx.reply.null(),
    }
    Ok(())
}

fn lset(ctx: &mut Ctx) -> CmdResult {
    let args = ctx.args;
    let Some(l) = ctx.db.write::<ListValue>(&args[1])? else {
        return Err(CmdError::new(errors::NO_KEY));
    };
    let index = args::int(&args[2])?;
    if !l.set(index, &args[3]) {
        return Err(CmdError::new(errors::OUT_OF_RANGE));
    }
    ctx.db.touch_dirty(1);
    ctx.db.notify(ev::LIST, "lset", &args[1]);
    ctx.reply.ok();
    Ok(())
}

fn linsert(ctx: &mut Ctx) -> CmdResult {
    let args = ctx.args;
    let after = if is(&args[2], "after") {
        true
    } else if is(&args[2], "before") {
        false
    } else {
        return Err(CmdError::new(errors::SYNTAX));
    };
    let Some(l) = ctx.db.write::<ListValue>(&args[1])? else {
        ctx.reply.int(0);
        return Ok(());
    };
    if !l.insert(&args[3], &args[4], after) {
        ctx.reply.int(-1);
        return Ok(());
    }
    let len = l.len();
    ctx.db.touch_dirty(1);
    ctx.db.notify(ev::LIST, "linsert", &args[1]);
    ctx.reply.int(len as i64);
    Ok(())
}

fn lrem(ctx: &mut Ctx) -> CmdResult {
    let args = ctx.args;
    let count = args::int(&args[2])?;
    let Some(l) = ctx.db.write::<ListValue>(&args[1])? else {
        ctx.reply.int(0);
        return Ok(());
    };
    let removed = l.remove(count, &args[3]);
    if removed > 0 {
        ctx.db.notify(ev::LIST, "lrem", &args[1]);
        ctx.db.remove_if_empty::<ListValue>(&args[1]);
        ctx.db.touch_dirty(removed as u64);
    }
    ctx.reply.int(removed as i64);
    Ok(())
}

fn ltrim(ctx: &mut Ctx) -> CmdResult {
    let args = ctx.args;
    let start = args::int(&args[2])?;
    let end = args::int(&args[3])?;
    if let Some(l) = ctx.db.write::<ListValue>(&args[1])? {
        let removed = l.trim(start, end);
        ctx.db.notify(ev::LIST, "ltrim", &args[1]);
        if removed > 0 {
            ctx.db.remove_if_empty::<ListValue>(&args[1]);
            ctx.db.touch_dirty(removed as u64);
        }
    }
    ctx.reply.ok();
    Ok(())
}

fn lpos(ctx: &mut Ctx) -> CmdResult {
    let args = ctx.args;
    let ele = &args[2][..];
    let mut rank: i64 = 1;
    let mut count: Option<i64> = None;
    let mut maxlen: i64 = 0;
    let mut j = 3;
    while j < args.len() {
        let more = j + 1 < args.len();
        let opt = &args[j];
        if is(opt, "rank") && more {
            j += 1;
            rank = args::int(&args[j])?;
            // Redis 7.2 (#12167) reads RANK in [-LONG_MAX, LONG_MAX].
            if rank == i64::MIN {
                return Err(CmdError::new(format!(
                    "value is out of range, value must between {} and {}",
                    -i64::MAX,
                    i64::MAX
                )));
            }
            if rank == 0 {
                return Err(CmdError::new(
                    "RANK can't be zero: use 1 to start from the first match, 2 from the second ... or use negative to start from the end of the list",
                ));
            }
        } else if is(opt, "count") && more {
            j += 1;
            count = Some(non_negative(&args[j], "COUNT can't be negative")?);
        } else if is(opt, "maxlen") && more {
            j += 1;
            maxlen = non_negative(&args[j], "MAXLEN can't be negative")?;
        } else {
            return Err(CmdError::new(errors::SYNTAX));
        }
        j += 1;
    }
    // A negative rank searches from the tail.
    let from_tail = rank < 0;
    if from_tail {
        rank = -rank;
    }
    let Some(l) = ctx.db.read::<ListValue>(&args[1])? else {
        match count {
            Some(_) => ctx.reply.array(0),
            None => ctx.reply.null(),
        }
        return Ok(());
    };
    let len = l.len();
    let limit = if maxlen == 0 { usize::MAX } else { maxlen as usize };
    let mut found: Vec<i64> = Vec::new();
    let mut matches: i64 = 0;
    let want = match count {
        None => 1,
        Some(0) => i64::MAX,
        Some(c) => c,
    };
    let mut visit = |index: usize, e: &[u8]| -> bool {
        if e == ele {
            matches += 1;
            if matches >= rank {
                found.push(if from_tail { (len - 1 - index) as i64 } else { index as i64 });
                if found.len() as i64 >= want {
                    return false;
                }
            }
        }
        true
    };
    if from_tail {
        for (i, e) in l.iter().rev().take(limit).enumerate() {
            if !visit(i, e) {
                break;
            }
        }
    } else {
        for (i, e) in l.iter().take(limit).enumerate() {
            if !visit(i, e) {
                break;
            }
        }
    }
    match count {
        Some(_) => {
            ctx.reply.array(found.len());
            for i in found {
                ctx.reply.int(i);
            }
        }
        None => match found.first() {
            Some(&i) => ctx.reply.int(i),
            None => ctx.reply.null(),
        },
    }
    Ok(())
}

fn lmove_generic(ctx: &mut Ctx, from: End, to: End) -> CmdResult {
    let args = ctx.args;
    match move_element(ctx.db, &args[1], &args[2], from, to)? {
        Some(v) => ctx.reply.bulk(&v),
        None => ctx.reply.null(),
    }
    Ok(())
}

fn lmove(ctx: &mut Ctx) -> CmdResult {
    let from = parse_end(&ctx.args[3])?;
    let to = parse_end(&ctx.args[4])?;
    lmove_generic(ctx, from, to)
}

fn rpoplpush(ctx: &mut Ctx) -> CmdResult {
    lmove_generic(ctx, End::Right, End::Left)
}

fn lmpop(ctx: &mut Ctx) -> CmdResult {
    let args = ctx.args;
    let a = parse_mpop(args, 1)?;
    let keys = &args[a.first_key..a.first_key + a.numkeys];
    match mpop(ctx.db, keys, a.end, a.count)? {
        Some((key, v)) => {
            ctx.reply.array(2);
            ctx.reply.bulk(&key);
            ctx.reply.array(v.len());
            for e in &v {
                ctx.reply.bulk(e);
            }
        }
        None => ctx.reply.null_array(),
    }
    Ok(())
}
