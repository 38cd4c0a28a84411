//! Transactions: MULTI, EXEC, DISCARD, WATCH, UNWATCH.
//!
//! While a client is in MULTI the pipeline queues its commands (after the generic checks; a
//! failed check marks the transaction aborted). EXEC locks the shards of every key the queued
//! commands and the watched keys name (every shard when one of them needs the whole keyspace,
//! see [`exec_shards`]), so nothing touching those keys runs on any core while the queued
//! commands execute, one after the other, against that single view; their effects are published as one batch wrapped in
//! MULTI/EXEC before the locks are released.

use std::sync::atomic::Ordering;
use std::time::Instant;

use super::flags::*;
use super::pipeline::{call_locked, resolve, written, Caller};
use super::{Action, CmdError, CmdResult, CommandSpec, Ctx};
use crate::session::client::Client;

pub static COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("multi", multi).internal(TX_RUN_NOW),
    CommandSpec::new("exec", exec).internal(ALL_KEYS | TX_RUN_NOW | TX_END | TX_EXEC),
    CommandSpec::new("discard", discard).internal(TX_RUN_NOW | TX_END),
    CommandSpec::new("watch", watch).internal(TX_RUN_NOW),
    CommandSpec::new("unwatch", unwatch),
];

/// Forget every watched key of `client` and clear its dirty flag.
pub fn unwatch_all(ks: &crate::keyspace::Keyspace, client: &mut Client) {
    for (db, key, _) in client.watched.drain(..) {
        ks.watches.unwatch(db, &key, &client.cas_dirty);
    }
    client.cas_dirty.store(false, Ordering::SeqCst);
}

fn multi(ctx: &mut Ctx) -> CmdResult {
    if ctx.client.multi.is_some() {
        return Err(CmdError::new("MULTI calls can not be nested"));
    }
    ctx.client.multi = Some(crate::session::MultiState::default());
    ctx.reply.ok();
    Ok(())
}

fn discard(ctx: &mut Ctx) -> CmdResult {
    if ctx.client.multi.take().is_none() {
        return Err(CmdError::new("DISCARD without MULTI"));
    }
    unwatch_all(&ctx.server.keyspace, ctx.client);
    ctx.reply.ok();
    Ok(())
}

fn watch(ctx: &mut Ctx) -> CmdResult {
    if ctx.client.multi.is_some() {
        return Err(CmdError::new("WATCH inside MULTI is not allowed"));
    }
    if !ctx.client.cas_dirty.load(Ordering::SeqCst) {
        let db = ctx.db.index;
        for key in &ctx.args[1..] {
            if ctx.client.watched.iter().any(|(d, k, _)| *d == db && k == key) {
                continue;
            }
            let expired = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(ctx.db.is_expired(key)));
            ctx.server.keyspace.watches.watch(db, key, &ctx.client.cas_dirty, &expired);
            ctx.client.watched.push((db, crate::protocol::detached(key), expired));
        }
    }
    ctx.reply.ok();
    Ok(())
}

fn unwatch(ctx: &mut Ctx) -> CmdResult {
    unwatch_all(&ctx.server.keyspace, ctx.client);
    ctx.reply.ok();
    Ok(())
}

fn exec(ctx: &mut Ctx) -> CmdResult {
    let Some(state) = ctx.client.multi.take() else {
        return Err(CmdError::new("EXEC without MULTI"));
    };
    // A watched key that expired since WATCH counts as changed (Redis's isWatchedKeyExpired).
    let home = ctx.db.index;
    let expired = ctx.client.watched.iter().any(|(db, key, was_expired)| {
        ctx.db.index = *db;
        !was_expired.load(Ordering::SeqCst) && ctx.db.is_expired(key)
    });
    ctx.db.index = home;
    let dirty = expired || ctx.client.cas_dirty.load(Ordering::SeqCst);
    unwatch_all(&ctx.server.keyspace, ctx.client);
    if state.aborted {
        return Err(CmdError::new("-EXECABORT Transaction discarded because of previous errors."));
    }
    if dirty {
        ctx.reply.null_array();
        return Ok(());
    }
    ctx.reply.array(state.commands.len());
    let mark = ctx.db.effects_len();
    // Redis 7.2 freezes the time for the whole transaction (#10300): every queued command sees
    // EXEC's time, so a key cannot expire between two of them.
    let exec_start = Instant::now();
    ctx.client.in_exec = true;
    // TIME too answers EXEC's time (7.2's cached time is not updated by a nested call).
    let outer_time = ctx.client.frozen_time.replace((exec_start, None));
    for argv in state.commands {
        // Queued commands were resolved when queued; this cannot fail, but never panic.
        let cmd = match resolve(&argv, Caller::Exec) {
            Ok(cmd) => cmd,
            Err((_, text)) => {
                ctx.reply.error(&text);
                continue;
            }
        };
        if let Err(text) = super::pipeline::admit_queued(ctx.server, ctx.client, cmd, &argv) {
            ctx.reply.error(&text);
            continue;
        }
        let outcome = call_locked(ctx.server, ctx.client, cmd, &argv, ctx.reply, ctx.db, Some(exec_start));
        let touched = outcome.touched();
        match outcome.action {
            // Blocking commands never block inside a transaction: they time out at once.
            Action::Block(spec) => {
                if spec.timeout_null_array {
                    ctx.reply.null_array()
                } else {
                    ctx.reply.null()
                }
            }
            Action::Close => ctx.action = Action::Close,
            // WAIT / WAITAOF never block inside a transaction (they answer what is acknowledged).
            Action::WaitAcks(spec) => crate::replication::reply_acks(ctx.server, &spec, ctx.reply),
            _ => {}
        }
        if touched {
            ctx.client.after_exec.push(written(outcome.modified, outcome.ready));
        }
    }
    ctx.client.in_exec = false;
    ctx.client.frozen_time = outer_time;
    ctx.db.wrap_effects_since(mark);
    // EXEC itself is not propagated: its commands were (reset the per-command counters).
    ctx.db.begin_command(ctx.client.db);
    Ok(())
}

/// The shards EXEC must lock: those of the queued commands' keys and of the watched keys
/// (checked for expiry), or None (every shard) when a queued command needs the whole keyspace
/// (FLUSHALL, SCAN, a script...), names no key at all, or is unknown. Locking only these keeps a transaction as
/// atomic as the commands it holds, without stopping the other cores.
pub fn exec_shards(client: &Client) -> Option<crate::keyspace::ShardSet> {
    let multi = client.multi.as_ref()?;
    let mut set = crate::keyspace::ShardSet::default();
    for argv in &multi.commands {
        let cmd = resolve(argv, Caller::Exec).ok()?;
        if cmd.has_flag(ALL_KEYS) {
            return None;
        }
        // Keyless commands (INFO, BGSAVE, CONFIG...) may look at the whole server: take
        // everything, as before, rather than reason about each one.
        let keys = cmd.keys(argv);
        if keys.is_empty() {
            return None;
        }
        for k in keys {
            set.add_key(&argv[k.pos]);
        }
    }
    for (_, key, _) in &client.watched {
        set.add_key(key);
    }
    Some(set)
}
