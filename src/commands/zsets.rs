//! Sorted set commands (Redis's t_zset.c): ZADD and friends, ranges by rank / score / lex,
//! removals, pops, random members, set operations (ZUNION / ZINTER / ZDIFF and their STORE
//! variants, ZINTERCARD) and ZSCAN.
//!
//! The blocking variants (BZPOPMIN, BZPOPMAX, BZMPOP) live with the blocking machinery; they
//! use [`pop`], the pop core shared with ZPOPMIN / ZPOPMAX / ZMPOP.

use crate::keyspace::notify as ev;
use std::collections::HashMap;

use bytes::Bytes;

use super::args::{self, is};
use super::{errors, CmdError, CmdResult, CommandSpec, Ctx};
use crate::keyspace::Db;
use crate::protocol::{ReplySink, MIN_BULK_BYTES};
use crate::types::zset::{LexBound, LexRange, Limits, ScoreRange};
use crate::types::{SetValue, Value, ZSetValue};
use crate::util::glob::glob_match;
use crate::util::num::{format_double, parse_f64, parse_long_double};

/// A member and its score.
pub type Element = (Vec<u8>, f64);

pub static COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("zadd", zadd),
    CommandSpec::new("zincrby", zincrby),
    CommandSpec::new("zrem", zrem),
    CommandSpec::new("zremrangebyscore", zremrangebyscore),
    CommandSpec::new("zremrangebyrank", zremrangebyrank),
    CommandSpec::new("zremrangebylex", zremrangebylex),
    // The numkeys commands lock every argument from the first key on: the trailing options
    // (WEIGHTS, AGGREGATE, MIN|MAX, COUNT...) are locked too, which is harmless.
    CommandSpec::new("zunionstore", zunionstore).getkeys(super::key_specs::procs::store_numkeys),
    CommandSpec::new("zinterstore", zinterstore).getkeys(super::key_specs::procs::store_numkeys),
    CommandSpec::new("zdiffstore", zdiffstore).getkeys(super::key_specs::procs::store_numkeys),
    CommandSpec::new("zunion", zunion).getkeys(super::key_specs::procs::numkeys_at_1),
    CommandSpec::new("zinter", zinter).getkeys(super::key_specs::procs::numkeys_at_1),
    CommandSpec::new("zintercard", zintercard).getkeys(super::key_specs::procs::numkeys_at_1),
    CommandSpec::new("zdiff", zdiff).getkeys(super::key_specs::procs::numkeys_at_1),
    CommandSpec::new("zrange", zrange),
    CommandSpec::new("zrangestore", zrangestore),
    CommandSpec::new("zrangebyscore", zrangebyscore),
    CommandSpec::new("zrevrangebyscore", zrevrangebyscore),
    CommandSpec::new("zrangebylex", zrangebylex),
    CommandSpec::new("zrevrangebylex", zrevrangebylex),
    CommandSpec::new("zcount", zcount),
    CommandSpec::new("zlexcount", zlexcount),
    CommandSpec::new("zrevrange", zrevrange),
    CommandSpec::new("zcard", zcard),
    CommandSpec::new("zscore", zscore),
    CommandSpec::new("zmscore", zmscore),
    // Arity -3: WITHSCORE (Redis 7.2) is accepted.
    CommandSpec::new("zrank", zrank),
    CommandSpec::new("zrevrank", zrevrank),
    CommandSpec::new("zscan", zscan),
    CommandSpec::new("zpopmin", zpopmin),
    CommandSpec::new("zpopmax", zpopmax),
    CommandSpec::new("zmpop", zmpop).getkeys(super::key_specs::procs::numkeys_at_1),
    CommandSpec::new("zrandmember", zrandmember),
];

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

fn limits(ctx: &Ctx) -> Limits {
    let c = ctx.server.config.load();
    Limits { max_entries: c.zset_max_listpack_entries as usize, max_value: c.zset_max_listpack_value as usize }
}

/// The members of a plain set, for the set operations (a set member has score 1).
/// The set type is being written in parallel: until `SetValue` exposes its members this
/// returns None, and sets are treated as WRONGTYPE by ZUNION / ZINTER / ZDIFF.
/// The members of a plain set used as a ZUNION/ZINTER/ZDIFF input (score 1 each).
fn set_members(s: &SetValue) -> Option<Vec<Vec<u8>>> {
    Some(s.members())
}

/// Redis's strtod-based score bound parsing (zslParseRange): leading whitespace is skipped, an
/// empty string is 0, overflow gives ±inf, NaN is rejected.
fn strtod_full(s: &[u8]) -> Option<f64> {
    if s.is_empty() {
        return Some(0.0);
    }
    let t = s.iter().position(|c| !matches!(c, b' ' | b'\t' | b'\n' | b'\x0b' | b'\x0c' | b'\r'))?;
    let t = &s[t..];
    parse_f64(t).or_else(|| parse_long_double(t)).filter(|v| !v.is_nan())
}

/// A score bound as zslParseRange reads it: a C string (up to a NUL), `(` for exclusive.
fn parse_score_bound(arg: &[u8]) -> Option<(f64, bool)> {
    let arg = crate::util::bytetext::c_bytes(arg, usize::MAX);
    match arg.first() {
        Some(b'(') => strtod_full(&arg[1..]).map(|v| (v, true)),
        _ => strtod_full(arg).map(|v| (v, false)),
    }
}

/// Parse a score range (`(1`, `inf`, `-inf`...) with Redis's error.
pub fn parse_score_range(min: &[u8], max: &[u8]) -> Result<ScoreRange, CmdError> {
    match (parse_score_bound(min), parse_score_bound(max)) {
        (Some((min, minex)), Some((max, maxex))) => Ok(ScoreRange { min, max, minex, maxex }),
        _ => Err(CmdError::new("min or max is not a float")),
    }
}

fn parse_lex_bound(arg: &[u8]) -> Option<LexBound> {
    let end_ok = arg.len() == 1 || arg.get(1) == Some(&0);
    match arg.first()? {
        b'+' if end_ok => Some(LexBound::Max),
        b'-' if end_ok => Some(LexBound::Min),
        b'(' => Some(LexBound::Excl(arg[1..].to_vec())),
        b'[' => Some(LexBound::Incl(arg[1..].to_vec())),
        _ => None,
    }
}

/// Parse a lex range (`-`, `+`, `[a`, `(a`) with Redis's error.
pub fn parse_lex_range(min: &[u8], max: &[u8]) -> Result<LexRange, CmdError> {
    match (parse_lex_bound(min), parse_lex_bound(max)) {
        (Some(min), Some(max)) => Ok(LexRange { min, max }),
        _ => Err(CmdError::new("min or max not valid string range item")),
    }
}

/// getPositiveLongFromObjectOrReply.
fn positive(arg: &[u8], msg: Option<&str>) -> Result<i64, CmdError> {
    let err = || CmdError::new(msg.unwrap_or("value is out of range, must be positive"));
    let v = args::int(arg).map_err(|_| err())?;
    if v < 0 {
        return Err(err());
    }
    Ok(v)
}

/// getRangeLongFromObjectOrReply.
fn ranged(arg: &[u8], min: i64, max: i64, msg: Option<&str>) -> Result<i64, CmdError> {
    let v = args::int(arg).map_err(|_| CmdError::new(msg.unwrap_or(errors::NOT_INTEGER)))?;
    if v < min || v > max {
        return Err(match msg {
            Some(m) => CmdError::new(m),
            None => CmdError::new(format!("value is out of range, value must between {min} and {max}")),
        });
    }
    Ok(v)
}

/// Reply with elements (and their scores): RESP2 flattens the pairs, RESP3 nests them.
fn reply_elements<M: AsRef<[u8]>>(reply: &mut ReplySink, elems: &[(M, f64)], withscores: bool) {
    let resp3 = reply.is_resp3();
    reply.array(if withscores && !resp3 { elems.len() * 2 } else { elems.len() });
    for (m, s) in elems {
        if withscores && resp3 {
            reply.array(2);
        }
        reply.bulk(m.as_ref());
        if withscores {
            reply.double(*s);
        }
    }
}

/// Store `elems` at `dst` as a new sorted set (or delete `dst` when empty) and reply with the
/// resulting cardinality (the store commands' epilogue). The set starts as a skiplist when
/// `skiplist` (as Redis builds ZUNIONSTORE's and its siblings' results, and a ZRANGESTORE of
/// more ranks than a listpack holds), else as a listpack; either way it ends as a listpack if
/// it fits. The start matters for `-0` scores: a listpack stores them as 0, a skiplist keeps
/// them when the result stays one.
fn store_result(ctx: &mut Ctx, dst: &[u8], elems: impl IntoIterator<Item = (Vec<u8>, f64)>, skiplist: bool) {
    let lim = limits(ctx);
    let mut z = if skiplist { ZSetValue::new_skiplist() } else { ZSetValue::new() };
    for (m, s) in elems {
        z.insert(&m, s, lim);
    }
    z.shrink_if_fits(lim);
    if z.is_empty() {
        if ctx.db.delete(dst) {
            ctx.db.touch_dirty(1);
            ctx.db.notify(ev::GENERIC, "del", dst);
        }
        ctx.reply.int(0);
    } else {
        let n = z.len();
        ctx.db.set(dst, Value::ZSet(z), false);
        ctx.db.touch_dirty(1);
        ctx.db.notify(ev::ZSET, event_name(&ctx.args[0]), dst);
        ctx.reply.int(n as i64);
    }
}

/// The keyspace event named after the command (Redis uses the lower-case command name for
/// the store and range-removal commands).
fn event_name(cmd: &[u8]) -> &'static str {
    const NAMES: &[&str] = &[
        "zunionstore",
        "zinterstore",
        "zdiffstore",
        "zrangestore",
        "zremrangebyscore",
        "zremrangebyrank",
        "zremrangebylex",
    ];
    NAMES.iter().find(|n| cmd.eq_ignore_ascii_case(n.as_bytes())).copied().unwrap_or("zadd")
}

// ---------------------------------------------------------------------------
// ZADD / ZINCRBY / ZREM
// ---------------------------------------------------------------------------

fn zadd(ctx: &mut Ctx) -> CmdResult {
    zadd_generic(ctx, false)
}

fn zincrby(ctx: &mut Ctx) -> CmdResult {
    zadd_generic(ctx, true)
}

fn zadd_generic(ctx: &mut Ctx, mut incr: bool) -> CmdResult {
    const NANERR: &str = "resulting score is not a number (NaN)";
    let args = ctx.args;
    let key = &args[1][..];
    let (mut nx, mut xx, mut gt, mut lt, mut ch) = (false, false, false, false, false);
    let mut idx = 2;
    while idx < args.len() {
        let a = &args[idx][..];
        if is(a, "nx") {
            nx = true;
        } else if is(a, "xx") {
            xx = true;
        } else if is(a, "ch") {
            ch = true;
        } else if is(a, "incr") {
            incr = true;
        } else if is(a, "gt") {
            gt = true;
        } else if is(a, "lt") {
            lt = true;
        } else {
            break;
        }
        idx += 1;
    }
    let elements = args.len() - idx;
    if elements % 2 == 1 || elements == 0 {
        return Err(CmdError::new(errors::SYNTAX));
    }
    let elements = elements / 2;
    if nx && xx {
        return Err(CmdError::new("XX and NX options at the same time are not compatible"));
    }
    if ((gt || lt) && nx) || (gt && lt) {
        return Err(CmdError::new("GT, LT, and/or NX options at the same time are not compatible"));
    }
    if incr && elements > 1 {
        return Err(CmdError::new("INCR option supports a single increment-element pair"));
    }
    let mut scores = Vec::with_capacity(elements);
    for j in 0..elements {
        scores.push(args::float(&args[idx + 2 * j])?);
    }
    let lim = limits(ctx);
    // Type check without counting a lookup: get_or_insert_with below counts it.
    let exists = match ctx.db.peek(key) {
        Some(e) => {
            e.value.kind::<ZSetValue>()?;
            true
        }
        None => false,
    };
    let (mut added, mut updated, mut processed) = (0i64, 0i64, 0i64);
    let mut last_score = 0.0;
    if exists || !xx {
        // Redis 7.2 picks the encoding from the command's size before adding anything (its
        // zsetTypeCreate / zsetTypeMaybeConvert): more pairs than the listpack holds, or a
        // new key whose first member is too long for it, make a skiplist, whatever is added.
        let big = elements > lim.max_entries;
        let first_long = args[idx + 1].len() > lim.max_value;
        let (e, _) = ctx.db.get_or_insert_with(key, || {
            Value::ZSet(if first_long { ZSetValue::new_skiplist() } else { ZSetValue::new() })
        });
        let z = e.value.kind_mut::<ZSetValue>()?;
        if big {
            z.convert_to_skiplist();
        }
        for (j, &score) in scores.iter().enumerate() {
            let member = &args[idx + 2 * j + 1][..];
            // One lookup of the member: the score it has decides what is stored.
            z.update(member, lim, |cur| match cur {
                Some(cur) => {
                    if nx {
                        return Ok(None);
                    }
                    let new = if incr { cur + score } else { score };
                    if new.is_nan() {
                        // Only possible with INCR, i.e. a single pair: nothing changed.
                        return Err(CmdError::new(NANERR));
                    }
                    processed += 1;
                    last_score = new;
                    if (lt && new >= cur) || (gt && new <= cur) {
                        processed -= 1;
                        return Ok(None);
                    }
                    if new != cur {
                        updated += 1;
                        return Ok(Some(new));
                    }
                    Ok(None)
                }
                None => {
                    if xx {
                        return Ok(None);
                    }
                    added += 1;
                    processed += 1;
                    last_score = score;
                    Ok(Some(score))
                }
            })?;
        }
    }
    ctx.db.touch_dirty((added + updated) as u64);
    if added + updated > 0 {
        ctx.db.notify(ev::ZSET, if incr { "zincr" } else { "zadd" }, &ctx.args[1]);
    }
    if incr {
        if processed > 0 {
            ctx.reply.double(last_score);
        } else {
            ctx.reply.null();
        }
    } else {
        ctx.reply.int(if ch { added + updated } else { added });
    }
    Ok(())
}

fn zrem(ctx: &mut Ctx) -> CmdResult {
    let args = ctx.args;
    let key = &args[1][..];
    let mut deleted = 0;
    let mut emptied = false;
    if let Some(e) = ctx.db.get_mut(key) {
        let z = e.value.kind_mut::<ZSetValue>()?;
        for m in &args[2..] {
            if z.remove(m) {
                deleted += 1;
            }
            if z.is_empty() {
                emptied = true;
                break;
            }
        }
    }
    if deleted > 0 {
        ctx.db.notify(ev::ZSET, "zrem", key);
    }
    if emptied {
        ctx.db.delete(key);
        ctx.db.notify(ev::GENERIC, "del", key);
    }
    ctx.db.touch_dirty(deleted);
    ctx.reply.int(deleted as i64);
    Ok(())
}

// ---------------------------------------------------------------------------
// Reads: ZCARD ZSCORE ZMSCORE ZRANK ZREVRANK ZCOUNT ZLEXCOUNT
// ---------------------------------------------------------------------------

fn zcard(ctx: &mut Ctx) -> CmdResult {
    let n = match ctx.db.get(&ctx.args[1]) {
        Some(e) => e.value.kind::<ZSetValue>()?.len(),
        None => 0,
    };
    ctx.reply.int(n as i64);
    Ok(())
}

fn zscore(ctx: &mut Ctx) -> CmdResult {
    let s = match ctx.db.get(&ctx.args[1]) {
        Some(e) => e.value.kind::<ZSetValue>()?.score(&ctx.args[2]),
        None => None,
    };
    match s {
        Some(s) => ctx.reply.double(s),
        None => ctx.reply.null(),
    }
    Ok(())
}

fn zmscore(ctx: &mut Ctx) -> CmdResult {
    let args = ctx.args;
    let scores: Vec<Option<f64>> = match ctx.db.get(&args[1]) {
        Some(e) => {
            let z = e.value.kind::<ZSetValue>()?;
            args[2..].iter().map(|m| z.score(m)).collect()
        }
        None => vec![None; args.len() - 2],
    };
    ctx.reply.array(scores.len());
    for s in scores {
        match s {
            Some(s) => ctx.reply.double(s),
            None => ctx.reply.null(),
        }
    }
    Ok(())
}

fn zrank(ctx: &mut Ctx) -> CmdResult {
    zrank_generic(ctx, false)
}

fn zrevrank(ctx: &mut Ctx) -> CmdResult {
    zrank_generic(ctx, true)
}

fn zrank_generic(ctx: &mut Ctx, rev: bool) -> CmdResult {
    let args = ctx.args;
    if args.len() > 4 {
        let name = if rev { "zrevrank" } else { "zrank" };
        return Err(CmdError::new(format!("wrong number of arguments for '{name}' command")));
    }
    if args.len() == 4 && !is(&args[3], "withscore") {
        return Err(CmdError::new(errors::SYNTAX));
    }
    let withscore = args.len() == 4;
    let found = match ctx.db.get(&args[1]) {
        Some(e) => {
            let z = e.value.kind::<ZSetValue>()?;
            z.rank(&args[2]).map(|(r, s)| (if rev { z.len() - 1 - r } else { r }, s))
        }
        None => None,
    };
    match (found, withscore) {
        (Some((r, _)), false) => ctx.reply.int(r as i64),
        (Some((r, s)), true) => {
            ctx.reply.array(2);
            ctx.reply.int(r as i64);
            ctx.reply.double(s);
        }
        (None, false) => ctx.reply.null(),
        (None, true) => ctx.reply.null_array(),
    }
    Ok(())
}

fn zcount(ctx: &mut Ctx) -> CmdResult {
    let range = parse_score_range(&ctx.args[2], &ctx.args[3])?;
    let n = match ctx.db.get(&ctx.args[1]) {
        Some(e) => {
            let (a, b) = e.value.kind::<ZSetValue>()?.score_range_ranks(&range);
            b - a
        }
        None => 0,
    };
    ctx.reply.int(n as i64);
    Ok(())
}

fn zlexcount(ctx: &mut Ctx) -> CmdResult {
    let range = parse_lex_range(&ctx.args[2], &ctx.args[3])?;
    let n = match ctx.db.get(&ctx.args[1]) {
        Some(e) => e.value.kind::<ZSetValue>()?.lex_count(&range),
        None => 0,
    };
    ctx.reply.int(n);
    Ok(())
}

// ---------------------------------------------------------------------------
// ZRANGE and its variants
// ---------------------------------------------------------------------------

#[derive(Clone, Copy, PartialEq, Eq)]
enum RangeType {
    Auto,
    Rank,
    Score,
    Lex,
}

enum Range {
    Rank(i64, i64),
    Score(ScoreRange),
    Lex(LexRange),
}

/// Sanitize rank indexes like Redis: `None` when the range is empty.
fn rank_bounds(start: i64, end: i64, len: usize) -> Option<(usize, usize)> {
    let llen = len as i64;
    let mut start = if start < 0 { llen + start } else { start };
    let mut end = if end < 0 { llen + end } else { end };
    if start < 0 {
        start = 0;
    }
    if start > end || start >= llen {
        return None;
    }
    if end >= llen {
        end = llen - 1;
    }
    Some((start as usize, end as usize))
}

/// The elements of `z` selected by `range` (with Redis's LIMIT semantics for score and lex:
/// a negative offset selects nothing, a negative count means all). Score ranges find their
/// first element with one descent and then walk while the range holds (the far bound is never
/// searched for), as Redis does.
fn select<'z>(z: &'z ZSetValue, range: &Range, rev: bool, offset: i64, limit: i64, mut out: impl FnMut(&'z [u8], f64)) {
    let r = match range {
        Range::Rank(start, end) => {
            if let Some((s, e)) = rank_bounds(*start, *end, z.len()) {
                z.walk_ranks(s, e, rev, out);
            }
            return;
        }
        Range::Lex(r) => return select_lex(z, r, rev, offset, limit, out),
        Range::Score(r) => r,
    };
    let n = if limit < 0 { usize::MAX } else { limit as usize };
    if r.is_empty() || offset < 0 || n == 0 {
        return;
    }
    if !rev && offset < 64 {
        // Forward with a small offset (the usual LIMIT 0 n): one descent to the first element
        // in range, then a walk along it skipping `offset` elements, as Redis does.
        let mut skip = offset as usize;
        let mut taken = 0;
        z.walk_after(
            |_, s| !r.gte_min(s),
            |m, s| {
                if skip > 0 {
                    skip -= 1;
                    return true;
                }
                if !r.lte_max(s) {
                    return false;
                }
                out(m, s);
                taken += 1;
                taken < n
            },
        );
        return;
    }
    // Forward: the rank of the first element >= min. Reverse: the number of elements <= max,
    // so the walk starts just below it.
    let start = if rev { z.count_while(|_, s| r.lte_max(s)) } else { z.count_while(|_, s| !r.gte_min(s)) };
    let first = if rev {
        match start.checked_sub(1 + offset as usize) {
            Some(f) => f,
            None => return,
        }
    } else {
        start + offset as usize
    };
    if first >= z.len() {
        return;
    }
    let mut taken = 0;
    z.walk(first, rev, |m, s| {
        if !(r.gte_min(s) && r.lte_max(s)) {
            return false;
        }
        out(m, s);
        taken += 1;
        taken < n
    });
}

/// A lex range's elements, as Redis's genericZrangebylexCommand selects them: from the
/// encoding's first (last when `rev`) element in range, `offset` elements on without a check,
/// then while the far bound holds (see [`crate::types::zset::lex`] for sets whose order is not
/// the lex order).
fn select_lex<'z>(
    z: &'z ZSetValue,
    r: &LexRange,
    rev: bool,
    offset: i64,
    limit: i64,
    mut out: impl FnMut(&'z [u8], f64),
) {
    let n = if limit < 0 { usize::MAX } else { limit as usize };
    if offset < 0 || n == 0 {
        return;
    }
    let first = if rev {
        z.lex_last(r).and_then(|l| l.checked_sub(offset as usize))
    } else {
        z.lex_first(r).map(|f| f.saturating_add(offset as usize))
    };
    let Some(first) = first else { return };
    let mut taken = 0;
    z.walk(first, rev, |m, s| {
        if !(if rev { r.gte_min(m) } else { r.lte_max(m) }) {
            return false;
        }
        out(m, s);
        taken += 1;
        taken < n
    });
}

/// Redis's zrangeGenericCommand: `start` is the index of the source key; `dst` is the
/// destination for ZRANGESTORE.
fn zrange_generic(
    ctx: &mut Ctx,
    start: usize,
    dst: Option<usize>,
    mut rtype: RangeType,
    rev_fixed: Option<bool>,
) -> CmdResult {
    let args = ctx.args;
    let store = dst.is_some();
    let key = &args[start][..];
    let mut minidx = start + 1;
    let mut maxidx = start + 2;
    let mut withscores = false;
    let mut offset = 0i64;
    let mut limit = -1i64;
    let mut rev = false;
    let mut j = start + 3;
    while j < args.len() {
        let a = &args[j][..];
        let left = args.len() - j - 1;
        if !store && is(a, "withscores") {
            withscores = true;
        } else if is(a, "limit") && left >= 2 {
            offset = args::int(&args[j + 1])?;
            limit = args::int(&args[j + 2])?;
            j += 2;
        } else if rev_fixed.is_none() && !rev && is(a, "rev") {
            rev = true;
        } else if rtype == RangeType::Auto && is(a, "bylex") {
            rtype = RangeType::Lex;
        } else if rtype == RangeType::Auto && is(a, "byscore") {
            rtype = RangeType::Score;
        } else {
            return Err(CmdError::new(errors::SYNTAX));
        }
        j += 1;
    }
    if let Some(r) = rev_fixed {
        rev = r;
    }
    if rtype == RangeType::Auto {
        rtype = RangeType::Rank;
    }
    // As in Redis, `LIMIT x -1` is not considered a LIMIT.
    if limit != -1 && rtype == RangeType::Rank {
        return Err(CmdError::new("syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX"));
    }
    if withscores && rtype == RangeType::Lex {
        return Err(CmdError::new("syntax error, WITHSCORES not supported in combination with BYLEX"));
    }
    if rev && rtype != RangeType::Rank {
        std::mem::swap(&mut minidx, &mut maxidx);
    }
    let range = match rtype {
        RangeType::Score => Range::Score(parse_score_range(&args[minidx], &args[maxidx])?),
        RangeType::Lex => Range::Lex(parse_lex_range(&args[minidx], &args[maxidx])?),
        _ => Range::Rank(args::int(&args[minidx])?, args::int(&args[maxidx])?),
    };
    let z = match ctx.db.get(key) {
        Some(e) => Some(e.value.kind::<ZSetValue>()?),
        None => None,
    };
    match dst {
        Some(d) => {
            let mut elems = Vec::new();
            if let Some(z) = z {
                select(z, &range, rev, offset, limit, |m, s| elems.push((m.to_vec(), s)));
            }
            // Redis sizes the destination by the rank range's length; score and lex ranges
            // start as a listpack (7.2.4 passed -1 there, a size_t past any limit, which later
            // versions and Valkey fixed to 0).
            let big = matches!(range, Range::Rank(..)) && elems.len() > limits(ctx).max_entries;
            store_result(ctx, &args[d], elems, big);
        }
        None => {
            // The reply borrows the members (no copy of each).
            let mut elems = smallvec::SmallVec::<[(&[u8], f64); 16]>::new();
            if let Some(z) = z {
                select(z, &range, rev, offset, limit, |m, s| elems.push((m, s)));
            }
            reply_elements(ctx.reply, &elems, withscores);
        }
    }
    Ok(())
}

fn zrange(ctx: &mut Ctx) -> CmdResult {
    zrange_generic(ctx, 1, None, RangeType::Auto, None)
}

fn zrangestore(ctx: &mut Ctx) -> CmdResult {
    zrange_generic(ctx, 2, Some(1), RangeType::Auto, None)
}

fn zrevrange(ctx: &mut Ctx) -> CmdResult {
    zrange_generic(ctx, 1, None, RangeType::Rank, Some(true))
}

fn zrangebyscore(ctx: &mut Ctx) -> CmdResult {
    zrange_generic(ctx, 1, None, RangeType::Score, Some(false))
}

fn zrevrangebyscore(ctx: &mut Ctx) -> CmdResult {
    zrange_generic(ctx, 1, None, RangeType::Score, Some(true))
}

fn zrangebylex(ctx: &mut Ctx) -> CmdResult {
    zrange_generic(ctx, 1, None, RangeType::Lex, Some(false))
}

fn zrevrangebylex(ctx: &mut Ctx) -> CmdResult {
    zrange_generic(ctx, 1, None, RangeType::Lex, Some(true))
}

// ---------------------------------------------------------------------------
// ZREMRANGEBY*
// ---------------------------------------------------------------------------

fn zremrange_generic(ctx: &mut Ctx, rtype: RangeType) -> CmdResult {
    let args = ctx.args;
    let key = &args[1][..];
    let range = match rtype {
        RangeType::Score => Range::Score(parse_score_range(&args[2], &args[3])?),
        RangeType::Lex => Range::Lex(parse_lex_range(&args[2], &args[3])?),
        _ => Range::Rank(args::int(&args[2])?, args::int(&args[3])?),
    };
    let mut deleted = 0usize;
    if let Some(e) = ctx.db.get_mut(key) {
        let z = e.value.kind_mut::<ZSetValue>()?;
        let (a, b) = match &range {
            Range::Rank(s, e) => match rank_bounds(*s, *e, z.len()) {
                Some((s, e)) => (s, e + 1),
                None => (0, 0),
            },
            Range::Score(r) => z.score_range_ranks(r),
            Range::Lex(r) => z.lex_delete_ranks(r),
        };
        if a < b {
            let victims = z.range_by_rank(a, b - 1, false);
            for (m, _) in &victims {
                z.remove(m);
            }
            deleted = victims.len();
        }
    }
    if deleted > 0 {
        ctx.db.notify(ev::ZSET, event_name(&ctx.args[0]), key);
        ctx.db.remove_if_empty::<ZSetValue>(key);
        ctx.db.touch_dirty(deleted as u64);
    }
    ctx.reply.int(deleted as i64);
    Ok(())
}

fn zremrangebyscore(ctx: &mut Ctx) -> CmdResult {
    zremrange_generic(ctx, RangeType::Score)
}

fn zremrangebyrank(ctx: &mut Ctx) -> CmdResult {
    zremrange_generic(ctx, RangeType::Rank)
}

fn zremrangebylex(ctx: &mut Ctx) -> CmdResult {
    zremrange_generic(ctx, RangeType::Lex)
}

// ---------------------------------------------------------------------------
// Pops
// ---------------------------------------------------------------------------

/// The pop core of ZPOPMIN / ZPOPMAX / ZMPOP and their blocking variants: remove up to `count`
/// members with the lowest scores (the highest when `max`) from the sorted set at `key`, in pop
/// order, with their scores.
///
/// - `Ok(None)`: the key does not exist;
/// - `Err(WRONGTYPE)`: the key holds another type;
/// - `Ok(Some(v))`: the popped elements (`v` is empty only when `count` is 0). The key is
///   deleted when emptied, and `db` is marked dirty by the number of elements popped.
///
/// Nothing is propagated here: ZPOPMIN/ZPOPMAX propagate as themselves, ZMPOP and the blocking
/// commands must record `ZPOPMIN|ZPOPMAX key <number popped>` with [`Db::propagate_effect`].
pub fn pop(db: &mut Db, key: &[u8], count: usize, max: bool) -> Result<Option<Vec<Element>>, CmdError> {
    let Some(e) = db.get_mut(key) else { return Ok(None) };
    let z = e.value.kind_mut::<ZSetValue>()?;
    let n = count.min(z.len());
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let rank = if max { z.len() - 1 } else { 0 };
        let Some((m, s)) = z.get(rank).map(|(m, s)| (m.to_vec(), s)) else { break };
        z.remove(&m);
        out.push((m, s));
    }
    let emptied = z.is_empty();
    if !out.is_empty() {
        db.notify(ev::ZSET, if max { "zpopmax" } else { "zpopmin" }, key);
    }
    if emptied {
        db.delete(key);
        db.notify(ev::GENERIC, "del", key);
    }
    db.touch_dirty(out.len() as u64);
    Ok(Some(out))
}

fn zpop_minmax(ctx: &mut Ctx, max: bool) -> CmdResult {
    let args = ctx.args;
    if args.len() > 3 {
        return Err(CmdError::new(errors::SYNTAX));
    }
    let count = if args.len() == 3 { Some(positive(&args[2], None)?) } else { None };
    let popped = pop(ctx.db, &args[1], count.unwrap_or(1) as usize, max)?;
    let elems = popped.unwrap_or_default();
    let nested = ctx.reply.is_resp3() && count.is_some();
    if nested {
        ctx.reply.array(elems.len());
    } else {
        ctx.reply.array(elems.len() * 2);
    }
    for (m, s) in &elems {
        if nested {
            ctx.reply.array(2);
        }
        ctx.reply.bulk(m);
        ctx.reply.double(*s);
    }
    Ok(())
}

fn zpopmin(ctx: &mut Ctx) -> CmdResult {
    zpop_minmax(ctx, false)
}

fn zpopmax(ctx: &mut Ctx) -> CmdResult {
    zpop_minmax(ctx, true)
}

/// Parse `numkeys key... MIN|MAX [COUNT count]` from `args[numkeys_idx..]` (ZMPOP / BZMPOP):
/// returns (the key argument indexes, max, count).
pub fn parse_mpop(args: &[Bytes], numkeys_idx: usize) -> Result<(std::ops::Range<usize>, bool, usize), CmdError> {
    let numkeys = ranged(&args[numkeys_idx], 1, i64::MAX, Some("numkeys should be greater than 0"))? as usize;
    let where_idx = numkeys_idx.saturating_add(numkeys).saturating_add(1);
    if where_idx >= args.len() {
        return Err(CmdError::new(errors::SYNTAX));
    }
    let max = if is(&args[where_idx], "min") {
        false
    } else if is(&args[where_idx], "max") {
        true
    } else {
        return Err(CmdError::new(errors::SYNTAX));
    };
    let mut count: Option<i64> = None;
    let mut j = where_idx + 1;
    while j < args.len() {
        if count.is_none() && is(&args[j], "count") && j + 1 < args.len() {
            j += 1;
            count = Some(ranged(&args[j], 1, i64::MAX, Some("count should be greater than 0"))?);
        } else {
            return Err(CmdError::new(errors::SYNTAX));
        }
        j += 1;
    }
    Ok((numkeys_idx + 1..where_idx, max, count.unwrap_or(1) as usize))
}

/// The ZMPOP / BZMPOP reply (the same in RESP2 and RESP3): `[key, [[member, score], ...]]`.
pub fn reply_mpop(reply: &mut ReplySink, key: &[u8], elems: &[Element]) {
    reply.array(2);
    reply.bulk(key);
    reply.array(elems.len());
    for (m, s) in elems {
        reply.array(2);
        reply.bulk(m);
        reply.double(*s);
    }
}

/// Record a pop's effect as Redis propagates ZMPOP / BZMPOP / BZPOPMIN / BZPOPMAX:
/// `ZPOPMIN|ZPOPMAX key [count]`, with `count` the number popped for ZMPOP / BZMPOP and none
/// for BZPOPMIN / BZPOPMAX.
pub fn propagate_pop(db: &mut Db, key: &Bytes, max: bool, count: Option<usize>) {
    let cmd: &'static [u8] = if max { b"ZPOPMAX" } else { b"ZPOPMIN" };
    let mut argv = vec![Bytes::from_static(cmd), key.clone()];
    if let Some(n) = count {
        argv.push(Bytes::from(n.to_string()));
    }
    db.propagate_effect(argv);
}

fn zmpop(ctx: &mut Ctx) -> CmdResult {
    let args = ctx.args;
    let (keys, max, count) = parse_mpop(args, 1)?;
    for k in keys {
        let key = &args[k][..];
        if let Some(elems) = pop(ctx.db, key, count, max)? {
            reply_mpop(ctx.reply, key, &elems);
            propagate_pop(ctx.db, &args[k], max, Some(elems.len()));
            return Ok(());
        }
    }
    ctx.reply.null_array();
    Ok(())
}

// ---------------------------------------------------------------------------
// ZRANDMEMBER
// ---------------------------------------------------------------------------

fn zrandmember(ctx: &mut Ctx) -> CmdResult {
    let args = ctx.args;
    if args.len() == 2 {
        let pick = match ctx.db.get(&args[1]) {
            Some(e) => e.value.kind::<ZSetValue>()?.random().map(|(m, _)| m.to_vec()),
            None => None,
        };
        match pick {
            Some(m) => ctx.reply.bulk(&m),
            None => ctx.reply.null(),
        }
        return Ok(());
    }
    let l = ranged(&args[2], -i64::MAX, i64::MAX, None)?;
    if args.len() > 4 || (args.len() == 4 && !is(&args[3], "withscores")) {
        return Err(CmdError::new(errors::SYNTAX));
    }
    let withscores = args.len() == 4;
    if withscores && !(-i64::MAX / 2..=i64::MAX / 2).contains(&l) {
        return Err(CmdError::new("value is out of range"));
    }
    if l < -1 {
        // Written as drawn, stopping past the output-buffer limit (see HRANDFIELD).
        let Some(e) = ctx.db.get(&args[1]) else {
            ctx.reply.array(0);
            return Ok(());
        };
        let z = e.value.kind::<ZSetValue>()?;
        let size = z.len();
        let n = if size == 0 { 0 } else { l.unsigned_abs() as usize };
        let reply = &mut *ctx.reply;
        let resp3 = reply.is_resp3();
        reply.array(if withscores && !resp3 { n * 2 } else { n });
        let per_pick = if withscores { 2 * MIN_BULK_BYTES } else { MIN_BULK_BYTES };
        if !reply.room_for(n.saturating_mul(per_pick)) {
            return Ok(());
        }
        let mut rng = rand::thread_rng();
        for i in 0..n {
            if i % super::hashes::SAMPLE_CHUNK == 0 && reply.over_limit() {
                break;
            }
            let r = rand::Rng::gen_range(&mut rng, 0..size);
            if let Some((m, s)) = z.get(r) {
                if withscores && resp3 {
                    reply.array(2);
                }
                reply.bulk(m);
                if withscores {
                    reply.double(s);
                }
            }
        }
        return Ok(());
    }
    let elems: Vec<(Vec<u8>, f64)> = match ctx.db.get(&args[1]) {
        None => Vec::new(),
        Some(e) => {
            let z = e.value.kind::<ZSetValue>()?;
            let size = z.len();
            let mut rng = rand::thread_rng();
            if l == 0 || size == 0 {
                Vec::new()
            } else if l < 0 || l == 1 {
                let n = l.unsigned_abs() as usize;
                (0..n)
                    .filter_map(|_| {
                        let r = rand::Rng::gen_range(&mut rng, 0..size);
                        z.get(r).map(|(m, s)| (m.to_vec(), s))
                    })
                    .collect()
            } else if l as usize >= size {
                // The whole set, from the highest to the lowest, as Redis's iterator goes.
                let mut v = Vec::with_capacity(size);
                z.walk(size - 1, true, |m, s| {
                    v.push((m.to_vec(), s));
                    true
                });
                v
            } else {
                rand::seq::index::sample(&mut rng, size, l as usize)
                    .into_iter()
                    .filter_map(|r| z.get(r).map(|(m, s)| (m.to_vec(), s)))
                    .collect()
            }
        }
    };
    reply_elements(ctx.reply, &elems, withscores);
    Ok(())
}

// ---------------------------------------------------------------------------
// Set operations
// ---------------------------------------------------------------------------

#[derive(Clone, Copy, PartialEq, Eq)]
enum SetOp {
    Union,
    Inter,
    Diff,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Aggregate {
    Sum,
    Min,
    Max,
}

fn aggregate(target: &mut f64, val: f64, agg: Aggregate) {
    match agg {
        Aggregate::Sum => {
            *target += val;
            if target.is_nan() {
                *target = 0.0;
            }
        }
        Aggregate::Min => {
            if val < *target {
                *target = val
            }
        }
        Aggregate::Max => {
            if val > *target {
                *target = val
            }
        }
    }
}

struct Source {
    elems: Vec<(Vec<u8>, f64)>,
    map: Option<HashMap<Vec<u8>, f64>>,
    weight: f64,
}

impl Source {
    fn find(&mut self, m: &[u8]) -> Option<f64> {
        let elems = &self.elems;
        let map = self.map.get_or_insert_with(|| elems.iter().cloned().collect());
        map.get(m).copied()
    }
}

/// Redis's zunionInterDiffGenericCommand.
fn setop_generic(ctx: &mut Ctx, dst: Option<usize>, numkeys_idx: usize, op: SetOp, card_only: bool) -> CmdResult {
    let args = ctx.args;
    let setnum = args::int(&args[numkeys_idx])?;
    if setnum < 1 {
        let name = String::from_utf8_lossy(&args[0]).to_lowercase();
        return Err(CmdError::new(format!("at least 1 input key is needed for '{name}' command")));
    }
    if setnum > (args.len() - (numkeys_idx + 1)) as i64 {
        return Err(CmdError::new(errors::SYNTAX));
    }
    let setnum = setnum as usize;
    let mut srcs: Vec<Source> = Vec::with_capacity(setnum);
    for k in &args[numkeys_idx + 1..numkeys_idx + 1 + setnum] {
        let elems = match ctx.db.get(k) {
            None => Vec::new(),
            Some(e) => match &e.value {
                Value::ZSet(z) => {
                    let mut v = Vec::with_capacity(z.len());
                    z.for_each(|m, s| v.push((m.to_vec(), s)));
                    v
                }
                Value::Set(s) => match set_members(s) {
                    Some(ms) => ms.into_iter().map(|m| (m, 1.0)).collect(),
                    None => return Err(CmdError::new(errors::WRONGTYPE)),
                },
                _ => return Err(CmdError::new(errors::WRONGTYPE)),
            },
        };
        srcs.push(Source { elems, map: None, weight: 1.0 });
    }
    let mut agg = Aggregate::Sum;
    let mut withscores = false;
    let mut limit = 0i64;
    let mut j = numkeys_idx + 1 + setnum;
    while j < args.len() {
        let remaining = args.len() - j;
        let a = &args[j][..];
        if op != SetOp::Diff && !card_only && remaining > setnum && is(a, "weights") {
            j += 1;
            for s in srcs.iter_mut() {
                s.weight = parse_f64(&args[j]).ok_or_else(|| CmdError::new("weight value is not a float"))?;
                j += 1;
            }
        } else if op != SetOp::Diff && !card_only && remaining >= 2 && is(a, "aggregate") {
            let v = &args[j + 1][..];
            agg = if is(v, "sum") {
                Aggregate::Sum
            } else if is(v, "min") {
                Aggregate::Min
            } else if is(v, "max") {
                Aggregate::Max
            } else {
                return Err(CmdError::new(errors::SYNTAX));
            };
            j += 2;
        } else if dst.is_none() && !card_only && is(a, "withscores") {
            withscores = true;
            j += 1;
        } else if card_only && remaining >= 2 && is(a, "limit") {
            limit = positive(&args[j + 1], Some("LIMIT can't be negative"))?;
            j += 2;
        } else {
            return Err(CmdError::new(errors::SYNTAX));
        }
    }
    if op != SetOp::Diff {
        srcs.sort_by_key(|s| s.elems.len());
    }
    let mut result: Vec<(Vec<u8>, f64)> = Vec::new();
    let mut cardinality = 0i64;
    match op {
        SetOp::Inter => {
            if !srcs[0].elems.is_empty() {
                let (first, rest) = srcs.split_at_mut(1);
                let w0 = first[0].weight;
                'outer: for (m, s0) in &first[0].elems {
                    let mut score = w0 * s0;
                    if score.is_nan() {
                        score = 0.0;
                    }
                    for src in rest.iter_mut() {
                        match src.find(m) {
                            Some(v) => aggregate(&mut score, v * src.weight, agg),
                            None => continue 'outer,
                        }
                    }
                    if card_only {
                        cardinality += 1;
                        if limit > 0 && cardinality >= limit {
                            break;
                        }
                    } else {
                        result.push((m.clone(), score));
                    }
                }
            }
        }
        SetOp::Union => {
            let mut acc: HashMap<Vec<u8>, f64> = HashMap::new();
            for src in &srcs {
                for (m, s) in &src.elems {
                    let mut score = src.weight * s;
                    if score.is_nan() {
                        score = 0.0;
                    }
                    match acc.get_mut(m) {
                        Some(t) => aggregate(t, score, agg),
                        None => {
                            acc.insert(m.clone(), score);
                        }
                    }
                }
            }
            result = acc.into_iter().collect();
        }
        SetOp::Diff => {
            let (first, rest) = srcs.split_at_mut(1);
            for (m, s) in &first[0].elems {
                if rest.iter_mut().all(|src| src.find(m).is_none()) {
                    result.push((m.clone(), *s));
                }
            }
        }
    }
    if card_only {
        ctx.reply.int(cardinality);
        return Ok(());
    }
    match dst {
        Some(d) => store_result(ctx, &args[d], result, true),
        None => {
            result.sort_by(|a, b| crate::types::zset::skiplist::cmp_elem(a.1, &a.0, b.1, &b.0));
            reply_elements(ctx.reply, &result, withscores);
        }
    }
    Ok(())
}

fn zunionstore(ctx: &mut Ctx) -> CmdResult {
    setop_generic(ctx, Some(1), 2, SetOp::Union, false)
}

fn zinterstore(ctx: &mut Ctx) -> CmdResult {
    setop_generic(ctx, Some(1), 2, SetOp::Inter, false)
}

fn zdiffstore(ctx: &mut Ctx) -> CmdResult {
    setop_generic(ctx, Some(1), 2, SetOp::Diff, false)
}

fn zunion(ctx: &mut Ctx) -> CmdResult {
    setop_generic(ctx, None, 1, SetOp::Union, false)
}

fn zinter(ctx: &mut Ctx) -> CmdResult {
    setop_generic(ctx, None, 1, SetOp::Inter, false)
}

fn zdiff(ctx: &mut Ctx) -> CmdResult {
    setop_generic(ctx, None, 1, SetOp::Diff, false)
}

fn zintercard(ctx: &mut Ctx) -> CmdResult {
    setop_generic(ctx, None, 1, SetOp::Inter, true)
}

// ---------------------------------------------------------------------------
// ZSCAN
// ---------------------------------------------------------------------------

fn zscan(ctx: &mut Ctx) -> CmdResult {
    let args = ctx.args;
    let cursor = super::keys::parse_cursor(&args[2])?;
    let mut found: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    let next = match ctx.db.get(&args[1]) {
        None => 0,
        Some(e) => {
            let z = e.value.kind::<ZSetValue>()?;
            let opts = super::keys::parse_scan_options(args, 3, false)?;
            let listpack = z.encoding() == "listpack";
            z.scan(cursor, opts.count, |m, s| {
                if opts.pattern.is_some_and(|p| !glob_match(p, m, false)) {
                    return;
                }
                let mut t = Vec::new();
                if listpack {
                    ZSetValue::listpack_score_text(s, &mut t);
                } else {
                    format_double(s, &mut t);
                }
                found.push((m.to_vec(), t));
            })
        }
    };
    let flat: Vec<&Vec<u8>> = found.iter().flat_map(|(m, s)| [m, s]).collect();
    super::keys::reply_scan(ctx.reply, next, &flat);
    Ok(())
}
