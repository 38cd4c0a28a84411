//! Persistence commands: SAVE, BGSAVE, LASTSAVE (the file work lives in
//! `server::saving`), BGREWRITEAOF (`server::aof`), and DUMP / RESTORE (payloads in
//! `persistence::dump`).

use bytes::Bytes;
use std::sync::atomic::Ordering;

use super::args::{self, is};
use super::flags::*;
use super::{errors, CmdError, CmdResult, CommandSpec, Ctx};
use crate::acl::user::SKIP_SANITIZE;
use crate::keyspace::notify;
use crate::persistence::dump;
use crate::persistence::rdb::SaveOptions;
use crate::persistence::rdb_value::{Limits, SANITIZE_CLIENTS};
use crate::server::{log, saving};
use crate::types::Entry;

pub static COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("save", save).internal(ALL_KEYS),
    CommandSpec::new("bgsave", bgsave),
    CommandSpec::new("bgrewriteaof", bgrewriteaof),
    CommandSpec::new("lastsave", lastsave),
    CommandSpec::new("dump", dump_cmd),
    CommandSpec::new("restore", restore),
];

fn save(ctx: &mut Ctx) -> CmdResult {
    if ctx.server.saving.in_progress.load(Ordering::Acquire) {
        return Err(CmdError::new("Background save already in progress"));
    }
    match saving::save(ctx.server, ctx.db) {
        Ok(()) => ctx.reply.ok(),
        // Redis answers a bare "-ERR" (the reason is in the log).
        Err(_) => return Err(CmdError::new("-ERR")),
    }
    Ok(())
}

fn bgsave(ctx: &mut Ctx) -> CmdResult {
    let args = ctx.args;
    let schedule = match args.len() {
        1 => false,
        2 if is(&args[1], "schedule") => true,
        _ => return Err(CmdError::new(errors::SYNTAX)),
    };
    let st = &ctx.server.saving;
    // Inside EXEC every shard is locked here: like Redis in a transaction, schedule it.
    if ctx.db.is_all_locked() {
        st.scheduled.store(true, Ordering::Release);
        ctx.reply.simple("Background saving scheduled");
        return Ok(());
    }
    if st.in_progress.load(Ordering::Acquire) || ctx.server.aof.rewrite_in_progress.load(Ordering::Acquire) {
        if !st.in_progress.load(Ordering::Acquire) && !schedule {
            return Err(CmdError::new(
                "Another child process is active (AOF?): can't BGSAVE right now. Use BGSAVE SCHEDULE in order to schedule a BGSAVE whenever possible.",
            ));
        }
        if schedule {
            st.scheduled.store(true, Ordering::Release);
            ctx.reply.simple("Background saving scheduled");
            return Ok(());
        }
        return Err(CmdError::new("Background save already in progress"));
    }
    saving::bgsave(ctx.server).map_err(CmdError::new)?;
    ctx.reply.simple("Background saving started");
    Ok(())
}

/// BGREWRITEAOF: start a rewrite now, or schedule it while a BGSAVE runs (or inside EXEC).
fn bgrewriteaof(ctx: &mut Ctx) -> CmdResult {
    let server = ctx.server;
    let aof = &server.aof;
    if aof.rewrite_in_progress.load(Ordering::Acquire) {
        return Err(CmdError::new("Background append only file rewriting already in progress"));
    }
    if ctx.db.is_all_locked() || server.saving.in_progress.load(Ordering::Acquire) {
        aof.rewrite_scheduled.store(true, Ordering::Release);
        // Asked for by hand: it runs as soon as it can, whatever the failures before it.
        aof.consecutive_failures.store(0, Ordering::Relaxed);
        ctx.reply.simple("Background append only file rewriting scheduled");
        return Ok(());
    }
    match crate::server::aof::rewrite(server, false) {
        Ok(()) => ctx.reply.simple("Background append only file rewriting started"),
        Err(_) => {
            return Err(CmdError::new(
                "Can't execute an AOF background rewriting. Please check the server logs for more information.",
            ))
        }
    }
    Ok(())
}

fn lastsave(ctx: &mut Ctx) -> CmdResult {
    ctx.reply.int(ctx.server.saving.lastsave.load(Ordering::Relaxed));
    Ok(())
}

fn dump_cmd(ctx: &mut Ctx) -> CmdResult {
    let opts = SaveOptions::from_config(&ctx.server.config.load());
    match ctx.db.get(&ctx.args[1]) {
        None => ctx.reply.null(),
        Some(e) => {
            let payload = dump::dump(&e.value, opts);
            ctx.reply.bulk(&payload);
        }
    }
    Ok(())
}

/// The limits a RESTORE decodes its payload with. Under `sanitize-dump-payload clients` the
/// payload is sanitised deeply unless it comes from our master, the AOF or a user with
/// `skip-sanitize-payload` (only which report a refusal logs depends on it: Ferrous always
/// validates the whole value).
fn restore_limits(ctx: &Ctx) -> Limits {
    let cfg = ctx.server.config.load();
    let mut limits = Limits::from_config(&cfg);
    if cfg.sanitize_dump_payload == SANITIZE_CLIENTS {
        let skip_user = ctx.client.user.as_ref().is_some_and(|u| u.rules().flags & SKIP_SANITIZE != 0);
        limits.deep_sanitize = !(ctx.client.is_master || ctx.client.loading_aof || skip_user);
    }
    limits
}

/// RESTORE key ttl payload [REPLACE] [ABSTTL] [IDLETIME seconds] [FREQ frequency], with
/// Redis's checks in Redis's order.
pub fn restore(ctx: &mut Ctx) -> CmdResult {
    let args = ctx.args;
    let (mut replace, mut absttl) = (false, false);
    let (mut idle, mut freq): (Option<i64>, Option<i64>) = (None, None);
    let mut j = 4;
    while j < args.len() {
        let more = j + 1 < args.len();
        if is(&args[j], "replace") {
            replace = true;
        } else if is(&args[j], "absttl") {
            absttl = true;
        } else if is(&args[j], "idletime") && more && freq.is_none() {
            let v = args::int(&args[j + 1])?;
            if v < 0 {
                return Err(CmdError::new("Invalid IDLETIME value, must be >= 0"));
            }
            idle = Some(v);
            j += 1;
        } else if is(&args[j], "freq") && more && idle.is_none() {
            let v = args::int(&args[j + 1])?;
            if !(0..=255).contains(&v) {
                return Err(CmdError::new("Invalid FREQ value, must be >= 0 and <= 255"));
            }
            freq = Some(v);
            j += 1;
        } else {
            return Err(CmdError::new(errors::SYNTAX));
        }
        j += 1;
    }
    let key = &args[1];
    if !replace && ctx.db.exists(key) {
        return Err(CmdError::new("-BUSYKEY Target key name already exists."));
    }
    let mut ttl = args::int(&args[2])?;
    if ttl < 0 {
        return Err(CmdError::new("Invalid TTL value, must be >= 0"));
    }
    let payload = &args[3];
    let skip = super::debug_extra::SKIP_CHECKSUM.load(std::sync::atomic::Ordering::Relaxed);
    if !dump::verify_with(payload, skip) {
        return Err(CmdError::new("DUMP payload version or checksum are wrong"));
    }
    let value = match dump::restore_value(payload, &restore_limits(ctx)) {
        Ok(Some(value)) => value,
        // An empty collection: refused without a report, as in Redis.
        Ok(None) => return Err(CmdError::new("Bad data format")),
        Err(e) => {
            // Redis logs why in a RESTORE at verbose level, with offset 0 (replaying the AOF,
            // as a load, at warning level).
            if let Some(report) = &e.report {
                let level = if ctx.client.loading_aof { log::WARNING } else { log::VERBOSE };
                log::rdb_report(report, level, 0);
            }
            return Err(CmdError::new("Bad data format"));
        }
    };
    let deleted = replace && ctx.db.delete(key);
    if ttl > 0 && !absttl {
        ttl = ttl.saturating_add(ctx.db.now_ms);
    }
    if ttl > 0 && ttl <= ctx.db.now_ms {
        // Already expired: nothing is created, an overwritten key is simply deleted.
        if deleted {
            ctx.db.notify(notify::GENERIC, "del", key);
            ctx.db.touch_dirty(1);
            // Redis 7.2 (#12320): UNLINK when server deletes are lazy.
            let lazy = ctx.server.config.load().lazyfree_lazy_server_del;
            let cmd: &'static [u8] = if lazy { b"UNLINK" } else { b"DEL" };
            ctx.db.propagate_effect(vec![Bytes::from_static(cmd), key.clone()]);
        }
        ctx.reply.ok();
        return Ok(());
    }
    // Redis's objectSetLRUOrLFU: FREQ counts under an LFU policy, IDLETIME otherwise.
    let meta = ctx.db.entry_meta(idle.map(|i| i as u64), freq.map(|f| f as u8));
    ctx.db.add_entry(key, Entry::new(value, meta));
    if ttl > 0 {
        ctx.db.set_expire(key, ttl);
        if !absttl {
            // Propagate the TTL as an absolute time, as Redis does.
            let mut argv = args.to_vec();
            argv[2] = Bytes::from(ttl.to_string());
            argv.push(Bytes::from_static(b"ABSTTL"));
            ctx.db.propagate_effect(argv);
        }
    }
    ctx.db.notify(notify::GENERIC, "restore", key);
    ctx.db.touch_dirty(1);
    ctx.reply.ok();
    Ok(())
}
