//! Replication commands. Master side: SYNC and PSYNC (always a full resynchronisation for now),
//! REPLCONF (accepted). Replica side: REPLICAOF / SLAVEOF (see `crate::replication::replica`).

use super::args::{self, is};
use super::flags::*;
use super::{Action, CmdError, CmdResult, CommandSpec, Ctx};
use crate::persistence::rdb;

pub static COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("sync", sync).internal(ALL_KEYS),
    CommandSpec::new("psync", psync).internal(ALL_KEYS),
    CommandSpec::new("replicaof", replicaof),
    CommandSpec::new("slaveof", replicaof),
    CommandSpec::new("replconf", replconf),
];

/// Start a full synchronisation: snapshot every database and subscribe to the effect stream
/// while all shards are locked, send `$<len>\r\n<rdb>`, then stream effects.
fn full_sync(ctx: &mut Ctx, psync: bool) -> CmdResult {
    let effects = ctx.server.keyspace.effects.subscribe();
    let payload = rdb::snapshot(
        ctx.db,
        ctx.server.keyspace.databases(),
        &ctx.server.scripting.library_sources(),
        rdb::SaveOptions::from_config(&ctx.server.config.read()),
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
