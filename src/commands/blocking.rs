//! Blocking commands: BZPOPMIN, BZPOPMAX, BZMPOP (and the list ones, BLPOP & co). Each tries
//! its keys in order; when none is ready it returns `Action::Block` and the connection waits
//! (see `server/blocking.rs`), then runs it again. As Redis 7.2, a wake-up re-runs the command
//! only if a key that signalled holds the type it pops (else the client keeps waiting); the
//! re-run is then a fresh call, failing with WRONGTYPE on an earlier key of another type.

use bytes::Bytes;

use super::lists::{self, End};
use super::zsets;
use super::{args, Action, CmdResult, CommandSpec, Ctx};
use crate::keyspace::ready::WaitKind;
use crate::session::blocking::BlockSpec;
use crate::types::Value;

pub static COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("blpop", blpop),
    CommandSpec::new("brpop", brpop),
    CommandSpec::new("brpoplpush", brpoplpush),
    CommandSpec::new("blmove", blmove),
    // The keys are args[3..3+numkeys]: the range over-locks the trailing options, harmlessly.
    CommandSpec::new("blmpop", blmpop).getkeys(super::key_specs::procs::numkeys_at_2),
    CommandSpec::new("bzpopmin", bzpopmin),
    CommandSpec::new("bzpopmax", bzpopmax),
    CommandSpec::new("bzmpop", bzmpop).getkeys(super::key_specs::procs::numkeys_at_2),
];

/// Ask the connection to wait on `keys` (in the client's database) until `deadline`.
pub fn block_on(ctx: &mut Ctx, keys: &[Bytes], deadline: Option<std::time::Instant>, null_array: bool, kind: WaitKind) {
    let db = ctx.client.db;
    ctx.action = Action::Block(Box::new(BlockSpec {
        keys: keys.iter().map(|k| (db, k.clone())).collect(),
        deadline,
        timeout_null_array: null_array,
        rerun_args: None,
        wake_all: false,
        unblock_on_nokey: false,
        kind,
        epoch: ctx.server.blocking.epoch(),
    }));
}

/// A client served on a re-run after a wake-up: remember how to put back what it took, in case
/// its reply cannot be written (see `server::connection::block`).
fn undo_on_retry(ctx: &mut Ctx, undo: impl FnOnce() -> Vec<Bytes>) {
    if ctx.client.block_retry {
        ctx.client.block_undo.push(undo());
    }
}

/// `ZADD key score member ...` putting popped members back.
fn zadd_back<M: AsRef<[u8]>>(key: &Bytes, elems: &[(M, f64)]) -> Vec<Bytes> {
    let mut argv = vec![Bytes::from_static(b"ZADD"), key.clone()];
    for (member, score) in elems {
        let mut text = Vec::new();
        crate::util::num::format_double(*score, &mut text);
        argv.push(Bytes::from(text));
        argv.push(Bytes::copy_from_slice(member.as_ref()));
    }
    argv
}

/// `LPUSH`/`RPUSH key ...` putting elements popped from `end` back in their order.
fn push_back<E: AsRef<[u8]>>(key: &Bytes, end: End, popped: &[E]) -> Vec<Bytes> {
    let cmd: &'static [u8] = if end == End::Left { b"LPUSH" } else { b"RPUSH" };
    let mut argv = vec![Bytes::from_static(cmd), key.clone()];
    argv.extend(popped.iter().rev().map(|e| Bytes::copy_from_slice(e.as_ref())));
    argv
}

/// On a re-run after a wake-up: whether the client is to be served (or fail) now, that is,
/// whether a key that woke it (`client.block_woken_by`; all of `keys` when empty) holds a value
/// of the type it waits for. Redis 7.2's handleClientsBlockedOnKey re-runs a blocked command
/// only for a ready key of its type; a key of another type keeps it blocked.
pub fn woken_for(ctx: &mut Ctx, keys: &[Bytes], is_type: fn(&Value) -> bool) -> bool {
    if !ctx.client.block_retry {
        return true;
    }
    let db = ctx.client.db;
    let woken: Vec<Bytes> = if ctx.client.block_woken_by.is_empty() {
        keys.to_vec()
    } else {
        ctx.client.block_woken_by.iter().filter(|(d, _)| *d == db).map(|(_, k)| k.clone()).collect()
    };
    woken.iter().any(|k| ctx.db.peek(k).is_some_and(|e| is_type(&e.value)))
}

fn is_list(v: &Value) -> bool {
    matches!(v, Value::List(_))
}

fn is_zset(v: &Value) -> bool {
    matches!(v, Value::ZSet(_))
}

fn bzpop(ctx: &mut Ctx, max: bool) -> CmdResult {
    let argv = ctx.args;
    let deadline = args::timeout(&argv[argv.len() - 1])?;
    let keys = &argv[1..argv.len() - 1];
    if !woken_for(ctx, keys, is_zset) {
        block_on(ctx, keys, deadline, true, WaitKind::ZSet);
        return Ok(());
    }
    for key in keys {
        let popped = zsets::pop(ctx.db, key, 1, max)?;
        if let Some(mut elems) = popped.filter(|e| !e.is_empty()) {
            let (member, score) = elems.remove(0);
            zsets::propagate_pop(ctx.db, key, max, None);
            undo_on_retry(ctx, || zadd_back(key, &[(member.clone(), score)]));
            ctx.reply.array(3);
            ctx.reply.bulk(key);
            ctx.reply.bulk(&member);
            ctx.reply.double(score);
            return Ok(());
        }
    }
    block_on(ctx, keys, deadline, true, WaitKind::ZSet);
    Ok(())
}

fn bzpopmin(ctx: &mut Ctx) -> CmdResult {
    bzpop(ctx, false)
}

fn bzpopmax(ctx: &mut Ctx) -> CmdResult {
    bzpop(ctx, true)
}

fn bzmpop(ctx: &mut Ctx) -> CmdResult {
    let argv = ctx.args;
    let deadline = args::timeout(&argv[1])?;
    let (range, max, count) = zsets::parse_mpop(argv, 2)?;
    let keys = &argv[range];
    if !woken_for(ctx, keys, is_zset) {
        block_on(ctx, keys, deadline, true, WaitKind::ZSet);
        return Ok(());
    }
    for key in keys {
        let popped = zsets::pop(ctx.db, key, count, max)?;
        if let Some(elems) = popped.filter(|e| !e.is_empty()) {
            zsets::propagate_pop(ctx.db, key, max, Some(elems.len()));
            undo_on_retry(ctx, || zadd_back(key, &elems));
            zsets::reply_mpop(ctx.reply, key, &elems);
            return Ok(());
        }
    }
    block_on(ctx, keys, deadline, true, WaitKind::ZSet);
    Ok(())
}

fn bpop(ctx: &mut Ctx, end: End) -> CmdResult {
    let argv = ctx.args;
    let deadline = args::timeout(&argv[argv.len() - 1])?;
    let keys = &argv[1..argv.len() - 1];
    if !woken_for(ctx, keys, is_list) {
        block_on(ctx, keys, deadline, true, WaitKind::List);
        return Ok(());
    }
    for key in keys {
        let popped = lists::pop_elements(ctx.db, key, end, 1)?;
        if let Some(elem) = popped.and_then(|mut v| v.pop()) {
            let cmd: &'static [u8] = if end == End::Left { b"LPOP" } else { b"RPOP" };
            ctx.db.propagate_effect(vec![Bytes::from_static(cmd), key.clone()]);
            undo_on_retry(ctx, || push_back(key, end, std::slice::from_ref(&elem)));
            ctx.reply.array(2);
            ctx.reply.bulk(key);
            ctx.reply.bulk(&elem);
            return Ok(());
        }
    }
    block_on(ctx, keys, deadline, true, WaitKind::List);
    Ok(())
}

fn blpop(ctx: &mut Ctx) -> CmdResult {
    bpop(ctx, End::Left)
}

fn brpop(ctx: &mut Ctx) -> CmdResult {
    bpop(ctx, End::Right)
}

fn bmove(ctx: &mut Ctx, from: End, to: End, timeout_arg: usize) -> CmdResult {
    let argv = ctx.args;
    let deadline = args::timeout(&argv[timeout_arg])?;
    let (src, dst) = (&argv[1], &argv[2]);
    // After a wake-up, only a source that is not (or no longer) a list means "keep waiting"; a
    // destination of the wrong type is an error for the client, as in Redis.
    if !woken_for(ctx, std::slice::from_ref(src), is_list) {
        block_on(ctx, std::slice::from_ref(src), deadline, false, WaitKind::List);
        return Ok(());
    }
    let moved = lists::move_element(ctx.db, src, dst, from, to)?;
    match moved {
        Some(elem) => {
            // As Redis: BRPOPLPUSH propagates as RPOPLPUSH, BLMOVE as LMOVE with the client's
            // own LEFT/RIGHT arguments.
            let effect = if timeout_arg == 3 {
                vec![Bytes::from_static(b"RPOPLPUSH"), src.clone(), dst.clone()]
            } else {
                vec![Bytes::from_static(b"LMOVE"), src.clone(), dst.clone(), argv[3].clone(), argv[4].clone()]
            };
            ctx.db.propagate_effect(effect);
            undo_on_retry(ctx, || {
                vec![
                    Bytes::from_static(b"LMOVE"),
                    dst.clone(),
                    src.clone(),
                    Bytes::from_static(to.keyword().as_bytes()),
                    Bytes::from_static(from.keyword().as_bytes()),
                ]
            });
            ctx.reply.bulk(&elem);
        }
        None => block_on(ctx, std::slice::from_ref(src), deadline, false, WaitKind::List),
    }
    Ok(())
}

fn brpoplpush(ctx: &mut Ctx) -> CmdResult {
    bmove(ctx, End::Right, End::Left, 3)
}

fn blmove(ctx: &mut Ctx) -> CmdResult {
    let argv = ctx.args;
    let from = lists::parse_end(&argv[3])?;
    let to = lists::parse_end(&argv[4])?;
    bmove(ctx, from, to, 5)
}

fn blmpop(ctx: &mut Ctx) -> CmdResult {
    let argv = ctx.args;
    let deadline = args::timeout(&argv[1])?;
    let m = lists::parse_mpop(argv, 2)?;
    let keys = &argv[m.first_key..m.first_key + m.numkeys];
    if !woken_for(ctx, keys, is_list) {
        block_on(ctx, keys, deadline, true, WaitKind::List);
        return Ok(());
    }
    let popped = lists::mpop(ctx.db, keys, m.end, m.count)?;
    match popped {
        Some((key, elems)) => {
            undo_on_retry(ctx, || push_back(&key, m.end, &elems));
            ctx.reply.array(2);
            ctx.reply.bulk(&key);
            ctx.reply.array(elems.len());
            for e in &elems {
                ctx.reply.bulk(e);
            }
        }
        None => block_on(ctx, keys, deadline, true, WaitKind::List),
    }
    Ok(())
}
