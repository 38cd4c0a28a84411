//! Transactions: MULTI, EXEC, DISCARD, WATCH, UNWATCH.
//!
//! While a client is in MULTI the dispatcher queues its commands (after the generic checks; a
//! failed check marks the transaction aborted). EXEC locks the shards of every key the queued
//! commands and the watched keys name (every shard when one of them needs the whole keyspace,
//! see [`exec_shards`]), so nothing touching those keys runs on any core while the queued
//! commands execute, one after the other, against that single view; their effects are published as one batch wrapped in
//! MULTI/EXEC before the locks are released.

use bytes::Bytes;
use std::sync::atomic::Ordering;
use std::time::Instant;

use super::dispatch::{run_locked, Queued};
use super::flags::*;
use super::table::table;
use super::{Action, CmdError, CmdResult, CommandSpec, Ctx};
use crate::server::client::Client;

const T: &[&str] = &["transaction"];

pub static COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("multi", 1, NOSCRIPT | LOADING | STALE | FAST | ALLOW_BUSY, multi)
        .acl(T)
        .group("transactions")
        .doc("1.2.0", "Starts a transaction."),
    CommandSpec::new("exec", 1, NOSCRIPT | LOADING | STALE | SKIP_SLOWLOG | ALL_KEYS, exec)
        .acl(T)
        .group("transactions")
        .doc("1.2.0", "Executes all commands in a transaction."),
    CommandSpec::new("discard", 1, NOSCRIPT | LOADING | STALE | FAST | ALLOW_BUSY, discard)
        .acl(T)
        .group("transactions")
        .doc("2.0.0", "Discards a transaction."),
    CommandSpec::new("watch", -2, NOSCRIPT | LOADING | STALE | FAST | ALLOW_BUSY, watch)
        .keys(1, -1, 1)
        .acl(T)
        .group("transactions")
        .doc("2.2.0", "Monitors changes to keys to determine the execution of a transaction."),
    CommandSpec::new("unwatch", 1, NOSCRIPT | LOADING | STALE | FAST | ALLOW_BUSY, unwatch)
        .acl(T)
        .group("transactions")
        .doc("2.2.0", "Forgets about watched keys of a transaction."),
];

/// A transaction being queued.
#[derive(Default, Debug)]
pub struct MultiState {
    pub commands: Vec<Vec<Bytes>>,
    /// A queued command was refused (unknown, wrong arity...): EXEC will fail with EXECABORT.
    pub aborted: bool,
}

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
    ctx.client.multi = Some(MultiState::default());
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
            ctx.client.watched.push((db, key.clone(), expired));
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
    for argv in state.commands {
        let Some(cmd) = lookup(&argv) else {
            // Queued commands were checked; a lookup cannot fail, but never panic.
            ctx.reply.error("unknown command");
            continue;
        };
        let outcome = run_locked(ctx.server, ctx.client, cmd, &argv, ctx.reply, ctx.db, exec_start);
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
            // DEBUG SLEEP inside a transaction stalls everything, as it does in Redis.
            Action::Sleep(d) => std::thread::sleep(d),
            _ => {}
        }
        if outcome.wrote {
            ctx.client.after_exec.push(Queued { cmd, args: argv, db: ctx.db.index, modified: outcome.modified });
        }
    }
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
        let cmd = lookup(argv)?;
        if cmd.spec.has_flag(ALL_KEYS) {
            return None;
        }
        // Keyless commands (INFO, BGSAVE, CONFIG...) may look at the whole server: take
        // everything, as before, rather than reason about each one.
        let mut keys = cmd.spec.key_indices(argv.len()).peekable();
        keys.peek()?;
        for i in keys {
            set.add_key(&argv[i]);
        }
    }
    for (_, key, _) in &client.watched {
        set.add_key(key);
    }
    Some(set)
}

fn lookup(argv: &[Bytes]) -> Option<&'static super::table::Command> {
    let cmd = table().lookup(argv.first()?)?;
    if cmd.is_container() && argv.len() >= 2 {
        return cmd.subcommand(&argv[1]);
    }
    Some(cmd)
}
