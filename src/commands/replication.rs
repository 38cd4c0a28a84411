//! Replication commands. Master side: SYNC and PSYNC (always a full resynchronisation for now),
//! REPLCONF (accepted), WAIT and WAITAOF (Redis 7.2: the client's last write, acknowledged by
//! replicas and/or fsynced to the AOF). Replica side: REPLICAOF / SLAVEOF (see
//! `crate::replication::replica`).

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
    CommandSpec::new("wait", wait),
    CommandSpec::new("waitaof", waitaof),
];

/// Redis's getTimeoutFromObjectOrReply in milliseconds: 0 = forever.
fn timeout_ms(ctx: &Ctx, arg: &[u8]) -> Result<Option<std::time::Instant>, CmdError> {
    let ms = args::int_or(arg, "timeout is not an integer or out of range")?;
    if ms < 0 {
        return Err(CmdError::new("timeout is negative"));
    }
    if ms > 0 && ms.checked_add(ctx.db.now_ms).is_none() {
        return Err(CmdError::new("timeout is out of range"));
    }
    Ok((ms > 0).then(|| std::time::Instant::now() + std::time::Duration::from_millis(ms as u64)))
}

/// Answer now when the acknowledgements are already there, or inside MULTI / a script (which
/// never block); else wait (the connection replies when done).
fn wait_or_block(ctx: &mut Ctx, spec: crate::replication::WaitSpec) {
    let server = ctx.server;
    let aof = spec.numlocal.is_some();
    let ready = server.acks.count(spec.target, aof) as u64 >= spec.numreplicas
        && (spec.numlocal.unwrap_or(0) == 0 || crate::replication::local_fsynced(server, spec.target));
    if ready || ctx.client.script || ctx.client.multi.is_some() {
        crate::replication::reply_acks(server, &spec, ctx.reply);
    } else {
        server.acks.request();
        ctx.action = Action::WaitAcks(spec);
    }
}

/// WAIT numreplicas timeout: the replicas that acknowledged the client's last write.
fn wait(ctx: &mut Ctx) -> CmdResult {
    if ctx.server.replica.is_replica() {
        return Err(CmdError::new("WAIT cannot be used with replica instances. Please also note that since Redis 4.0 if a replica is configured to be writable (which is not the default) writes to replicas are just local and are not propagated."));
    }
    let args = ctx.args;
    let n = args::int(&args[1])?;
    let deadline = timeout_ms(ctx, &args[2])?;
    let spec = crate::replication::WaitSpec {
        target: ctx.client.woff,
        numreplicas: n.max(0) as u64,
        numlocal: None,
        deadline,
    };
    wait_or_block(ctx, spec);
    Ok(())
}

/// WAITAOF numlocal numreplicas timeout: [fsynced locally, replicas that fsynced] for the
/// client's last write.
fn waitaof(ctx: &mut Ctx) -> CmdResult {
    let args = ctx.args;
    let numlocal = args::int(&args[1])?;
    if !(0..=1).contains(&numlocal) {
        return Err(CmdError::new("value is out of range, value must between 0 and 1"));
    }
    let numreplicas = args::int(&args[2])?;
    if numreplicas < 0 {
        return Err(CmdError::new("value is out of range, must be positive"));
    }
    let deadline = timeout_ms(ctx, &args[3])?;
    if ctx.server.replica.is_replica() {
        return Err(CmdError::new("WAITAOF cannot be used with replica instances. Please also note that writes to replicas are just local and are not propagated."));
    }
    if numlocal > 0 && !ctx.server.config.load().appendonly {
        return Err(CmdError::new("WAITAOF cannot be used when numlocal is set but appendonly is disabled."));
    }
    let spec = crate::replication::WaitSpec {
        target: ctx.client.woff,
        numreplicas: numreplicas as u64,
        numlocal: Some(numlocal as u64),
        deadline,
    };
    wait_or_block(ctx, spec);
    Ok(())
}

/// Start a full synchronisation: snapshot every database and subscribe to the effect stream
/// while all shards are locked, send `$<len>\r\n<rdb>`, then stream effects.
fn full_sync(ctx: &mut Ctx, psync: bool) -> CmdResult {
    let (base_seq, effects) = ctx.server.keyspace.effects.subscribe_at();
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
    ctx.action = Action::Replicate(base_seq, effects);
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
    if ctx.server.cluster.get().is_some() {
        return Err(CmdError::new("REPLICAOF not allowed in cluster mode."));
    }
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
