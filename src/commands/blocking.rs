//! Blocking commands: BZPOPMIN, BZPOPMAX, BZMPOP (and the list ones, BLPOP & co). Each tries
//! its keys in order; when none is ready it returns `Action::Block` and the connection waits
//! (see `server/blocking.rs`), then runs it again. While re-running after a wake-up
//! (`client.block_retry`), a key of the wrong type means "not ready", as in Redis, where such a
//! client stays blocked.

use bytes::Bytes;

use super::flags::*;
use super::zsets;
use super::{args, errors, Action, CmdError, CmdResult, CommandSpec, Ctx};
use crate::server::blocking::BlockSpec;

const Z: &[&str] = &["sortedset"];

pub static COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("bzpopmin", -3, WRITE | FAST | BLOCKING, bzpopmin)
        .keys(1, -2, 1)
        .acl(Z)
        .group("sorted-set")
        .doc("5.0.0", "Removes and returns the member with the lowest score from one or more sorted sets. Blocks until a member is available otherwise. Deletes the sorted set if the last element was popped."),
    CommandSpec::new("bzpopmax", -3, WRITE | FAST | BLOCKING, bzpopmax)
        .keys(1, -2, 1)
        .acl(Z)
        .group("sorted-set")
        .doc("5.0.0", "Removes and returns the member with the highest score from one or more sorted sets. Blocks until a member available otherwise.  Deletes the sorted set if the last element was popped."),
    CommandSpec::new("bzmpop", -5, WRITE | BLOCKING, bzmpop)
        .keys(3, -1, 1)
        .acl(Z)
        .group("sorted-set")
        .doc("7.0.0", "Removes and returns a member by score from one or more sorted sets. Blocks until a member is available otherwise. Deletes the sorted set if the last element was popped."),
];

/// Ask the connection to wait on `keys` (in the client's database) until `deadline`.
pub fn block_on(ctx: &mut Ctx, keys: &[Bytes], deadline: Option<std::time::Instant>, null_array: bool) {
    let db = ctx.client.db;
    ctx.action = Action::Block(BlockSpec {
        keys: keys.iter().map(|k| (db, k.clone())).collect(),
        deadline,
        timeout_null_array: null_array,
    });
}

/// A WRONGTYPE met while re-running after a wake-up is "not ready yet".
fn not_ready_on_retry<T>(retry: bool, r: Result<Option<T>, CmdError>) -> Result<Option<T>, CmdError> {
    match r {
        Err(e) if retry && e.0 == errors::WRONGTYPE => Ok(None),
        other => other,
    }
}

fn bzpop(ctx: &mut Ctx, max: bool) -> CmdResult {
    let argv = ctx.args;
    let deadline = args::timeout(&argv[argv.len() - 1])?;
    let keys = &argv[1..argv.len() - 1];
    for key in keys {
        let popped = not_ready_on_retry(ctx.client.block_retry, zsets::pop(ctx.db, key, 1, max))?;
        if let Some(mut elems) = popped.filter(|e| !e.is_empty()) {
            let (member, score) = elems.remove(0);
            zsets::propagate_pop(ctx.db, key, max, None);
            ctx.reply.array(3);
            ctx.reply.bulk(key);
            ctx.reply.bulk(&member);
            ctx.reply.double(score);
            return Ok(());
        }
    }
    block_on(ctx, keys, deadline, true);
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
    for key in keys {
        let popped = not_ready_on_retry(ctx.client.block_retry, zsets::pop(ctx.db, key, count, max))?;
        if let Some(elems) = popped.filter(|e| !e.is_empty()) {
            zsets::propagate_pop(ctx.db, key, max, Some(elems.len()));
            zsets::reply_mpop(ctx.reply, key, &elems);
            return Ok(());
        }
    }
    block_on(ctx, keys, deadline, true);
    Ok(())
}
