//! Replication commands. Master side: SYNC and PSYNC (always a full resynchronisation for now),
//! REPLCONF (accepted). Replica side: REPLICAOF / SLAVEOF (see `crate::replication::replica`).

use super::args::{self, is};
use super::flags::*;
use super::{Action, CmdError, CmdResult, CommandSpec, Ctx};
use crate::persistence::rdb;

pub static COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("sync", 1, ADMIN | NOSCRIPT | NO_MULTI | ALL_KEYS, sync)
        .group("server")
        .doc("1.0.0", "An internal command used in replication."),
    CommandSpec::new("psync", -3, ADMIN | NOSCRIPT | NO_MULTI | ALL_KEYS, psync)
        .group("server")
        .doc("2.8.0", "An internal command used in replication."),
    CommandSpec::new("replicaof", 3, ADMIN | NOSCRIPT | STALE, replicaof)
        .group("server")
        .doc("5.0.0", "Configures a server as replica of another, or promotes it to a master."),
    CommandSpec::new("slaveof", 3, ADMIN | NOSCRIPT | STALE, replicaof)
        .group("server")
        .doc("1.0.0", "Sets a Redis server as a replica of another, or promotes it to being a master."),
    CommandSpec::new("replconf", -1, ADMIN | NOSCRIPT | LOADING | STALE | ALLOW_BUSY, replconf)
        .group("server")
        .doc("3.0.0", "An internal command for configuring the replication stream."),
];

/// Start a full synchronisation: snapshot every database and subscribe to the effect stream
/// while all shards are locked, send `$<len>\r\n<rdb>`, then stream effects.
fn full_sync(ctx: &mut Ctx, psync: bool) -> CmdResult {
    let effects = ctx.server.keyspace.effects.subscribe();
    let payload = rdb::snapshot(
        ctx.db,
        ctx.server.keyspace.databases(),
        &ctx.server.scripting.library_sources(),
        rdb::SaveOptions::from_config(&ctx.server.config.load()),
    );
    if psync {
        ctx.reply.simple(&format!("FULLRESYNC {} 0", ctx.server.run_id));
    }
    ctx.reply.raw(format!("${}\r\n", payload.len()).as_bytes());
    ctx.reply.raw(&payload);
    ctx.action = Action::Replicate(effects);
    Ok(())
}

fn sync(ctx: &mut Ctx) -> CmdResult {
    full_sync(ctx, false)
}

fn psync(ctx: &mut Ctx) -> CmdResult {
    full_sync(ctx, true)
}

/// REPLICAOF host port | NO ONE.
fn replicaof(ctx: &mut Ctx) -> CmdResult {
    let args = ctx.args;
    if is(&args[1], "no") && is(&args[2], "one") {
        crate::replication::replica::stop(ctx.server);
        ctx.reply.ok();
        return Ok(());
    }
    let port = args::int(&args[2])?;
    if !(0..=65535).contains(&port) {
        return Err(CmdError::new("Invalid master port"));
    }
    let Some(server) = ctx.server.me.upgrade() else {
        return Err(CmdError::new("server is shutting down"));
    };
    let host = args::text(&args[1]);
    if crate::replication::replica::start(&server, host, port as u16) {
        ctx.reply.ok();
    } else {
        ctx.reply.simple("OK Already connected to specified master");
    }
    Ok(())
}

fn replconf(ctx: &mut Ctx) -> CmdResult {
    ctx.reply.ok();
    Ok(())
}
