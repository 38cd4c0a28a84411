//! Replication commands. Master side: SYNC and PSYNC (a partial resynchronisation from the
//! backlog, or a full one; the connection then becomes the replica's link, see
//! `crate::replication::master`), REPLCONF, WAIT and WAITAOF (Redis 7.2: the client's last
//! write, acknowledged by replicas and/or fsynced to the AOF). Both sides: REPLICAOF / SLAVEOF
//! (see `crate::replication::replica`). FAILOVER is in `crate::replication::failover`.

use std::sync::atomic::Ordering;

use super::args::{self, is};
use super::{Action, CmdError, CmdResult, CommandSpec, Ctx};
use crate::replication::{self, master};

pub static COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("sync", sync),
    CommandSpec::new("psync", psync),
    CommandSpec::new("replicaof", replicaof),
    CommandSpec::new("slaveof", replicaof),
    CommandSpec::new("replconf", replconf),
    CommandSpec::new("wait", wait),
    CommandSpec::new("waitaof", waitaof),
    CommandSpec::new("failover", replication::failover::command),
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
fn wait_or_block(ctx: &mut Ctx, spec: replication::WaitSpec) {
    let server = ctx.server;
    if replication::wait_done(server, &spec) || ctx.client.script || ctx.client.multi.is_some() {
        replication::reply_acks(server, &spec, ctx.reply);
    } else {
        server.repl.request_ack();
        ctx.action = Action::WaitAcks(Box::new(spec));
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
    let spec = replication::WaitSpec {
        target: ctx.client.repl_woff,
        target_seq: ctx.client.woff,
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
    let spec = replication::WaitSpec {
        target: ctx.client.repl_woff,
        target_seq: ctx.client.woff,
        numreplicas: numreplicas as u64,
        numlocal: Some(numlocal as u64),
        deadline,
    };
    wait_or_block(ctx, spec);
    Ok(())
}

fn sync(ctx: &mut Ctx) -> CmdResult {
    sync_or_psync(ctx, false)
}

fn psync(ctx: &mut Ctx) -> CmdResult {
    sync_or_psync(ctx, true)
}

/// SYNC / PSYNC replid offset [FAILOVER] (Redis's syncCommand).
fn sync_or_psync(ctx: &mut Ctx, psync: bool) -> CmdResult {
    if ctx.client.is_replica {
        return Ok(());
    }
    let server = ctx.server;
    let args = ctx.args;
    if psync && args.len() > 3 && is(&args[3], "failover") {
        replication::log_warning(&format!("Failover request received for replid {}.", args::text(&args[1])));
        if !server.replica.is_replica() {
            return Err(CmdError::new("PSYNC FAILOVER can't be sent to a master."));
        }
        if args[1].as_ref() != server.repl.replid().as_bytes() {
            return Err(CmdError::new("PSYNC FAILOVER replid must match my replid."));
        }
        replication::replica::stop(server);
        replication::log_notice(&format!(
            "MASTER MODE enabled (failover request from '{}')",
            ctx.client.handle.info_line(Some("psync"))
        ));
    }
    if server.repl.failover.in_progress() {
        return Err(CmdError::new("-NOMASTERLINK Can't SYNC while failing over"));
    }
    if server.replica.is_replica() && !server.replica.link_up.load(Ordering::SeqCst) {
        return Err(CmdError::new("-NOMASTERLINK Can't SYNC while not connected with my master"));
    }
    let link = master::new_link(ctx.client, !psync);
    replication::log_notice(&format!("Replica {} asks for synchronization", link.name()));
    let link = if psync {
        let Some(offset) = crate::util::num::parse_i64(&args[2]) else {
            replication::log_warning(&format!(
                "Replica {} asks for synchronization but with a wrong offset",
                link.name()
            ));
            return Err(CmdError::new(super::errors::NOT_INTEGER));
        };
        match master::try_partial(server, link, &args[1], offset, ctx.reply) {
            Ok(link) => {
                ctx.client.is_replica = true;
                ctx.action = Action::Replicate(link);
                return Ok(());
            }
            Err(link) => link,
        }
    } else {
        link
    };
    master::begin_full_sync(server, &link);
    ctx.client.is_replica = true;
    ctx.action = Action::Replicate(link);
    Ok(())
}

/// REPLICAOF host port | NO ONE.
fn replicaof(ctx: &mut Ctx) -> CmdResult {
    let server = ctx.server;
    let args = ctx.args;
    if server.cluster.get().is_some() {
        return Err(CmdError::new("REPLICAOF not allowed in cluster mode."));
    }
    if server.repl.failover.active() {
        return Err(CmdError::new("REPLICAOF not allowed while failing over."));
    }
    if is(&args[1], "no") && is(&args[2], "one") {
        if server.replica.is_replica() {
            replication::replica::stop(server);
            replication::log_notice(&format!(
                "MASTER MODE enabled (user request from '{}')",
                ctx.client.handle.info_line(Some(ctx.client.last_cmd))
            ));
        }
        ctx.reply.ok();
        return Ok(());
    }
    if ctx.client.is_replica {
        return Err(CmdError::new("Command is not valid when client is a replica."));
    }
    let port = args::int_or(&args[2], "Invalid master port")?;
    if !(0..=65535).contains(&port) {
        return Err(CmdError::new("Invalid master port"));
    }
    let Some(server) = server.me.upgrade() else {
        return Err(CmdError::new("server is shutting down"));
    };
    let host = args::text(&args[1]);
    if replication::replica::start(&server, host.clone(), port as u16) {
        replication::log_notice(&format!(
            "REPLICAOF {}:{} enabled (user request from '{}')",
            host,
            port,
            ctx.client.handle.info_line(Some("replicaof"))
        ));
        ctx.reply.ok();
    } else {
        replication::log_notice("REPLICAOF would result into synchronization with the master we are already connected with. No operation performed.");
        ctx.reply.simple("OK Already connected to specified master");
    }
    Ok(())
}

/// REPLCONF <option> <value> ...: what a replica tells us before SYNC (listening-port,
/// ip-address, capa, rdb-only); GETACK from our master (we acknowledge at once). ACK arrives
/// on a replica's link and is handled there (here, from a client that is not a replica, it is
/// ignored without a reply, as Redis does).
fn replconf(ctx: &mut Ctx) -> CmdResult {
    let args = ctx.args;
    if args.len().is_multiple_of(2) {
        return Err(CmdError::new(super::errors::SYNTAX));
    }
    let mut conf = ctx.client.replconf.clone();
    for pair in args[1..].chunks(2) {
        let (opt, val) = (&pair[0], &pair[1]);
        if is(opt, "listening-port") {
            conf.listening_port = args::int(val)?;
        } else if is(opt, "ip-address") {
            if val.len() >= 256 {
                return Err(CmdError::new(format!(
                    "REPLCONF ip-address provided by replica instance is too long: {} bytes",
                    val.len()
                )));
            }
            conf.ip_address = Some(args::text(val));
        } else if is(opt, "capa") {
            if is(val, "eof") {
                conf.capa_eof = true;
            } else if is(val, "psync2") {
                conf.capa_psync2 = true;
            }
        } else if is(opt, "ack") {
            return Ok(());
        } else if is(opt, "getack") {
            if ctx.client.is_master {
                ctx.server.replica.ack_now.notify_one();
            }
            return Ok(());
        } else if is(opt, "rdb-only") {
            let v = args::int(val)?;
            if !(0..=1).contains(&v) {
                return Err(CmdError::new("value is out of range, value must between 0 and 1"));
            }
            conf.rdb_only = v == 1;
        } else if is(opt, "rdb-filter-only") {
            let filters = crate::util::split_args::split_args(val)
                .ok_or_else(|| CmdError::new("Missing rdb-filter-only values"))?;
            conf.functions_only = false;
            for f in filters {
                if f.eq_ignore_ascii_case(b"functions") {
                    conf.functions_only = true;
                } else {
                    return Err(CmdError::new(format!(
                        "Unsupported rdb-filter-only option: {}",
                        String::from_utf8_lossy(&f)
                    )));
                }
            }
        } else {
            return Err(CmdError::new(format!("Unrecognized REPLCONF option: {}", args::text(opt))));
        }
    }
    ctx.client.replconf = conf;
    ctx.reply.ok();
    Ok(())
}
