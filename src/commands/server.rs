//! Server commands: INFO, CONFIG, TIME, DEBUG, SHUTDOWN, plus the helpers for
//! container commands' HELP replies.

use bytes::Bytes;
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::args::{self, is};
use super::flags::*;
use super::table::table;
use super::{errors, Action, CmdError, CmdResult, CommandSpec, Ctx};
use crate::persistence::rdb::SaveOptions;
use crate::protocol::Proto;
use crate::server::Server;
use crate::types::Value;
use crate::util::digest;

pub static COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("info", info),
    CommandSpec::new("time", time),
    CommandSpec::new("config", container_help).subs(CONFIG_SUBS),
    CommandSpec::new("debug", debug).internal(ALL_KEYS | DEBUG_COMMAND | SCRIPT_STACK),
    CommandSpec::new("shutdown", shutdown),
    CommandSpec::new("memory", container_help).subs(MEMORY_SUBS),
];

static CONFIG_SUBS: &[CommandSpec] = &[
    CommandSpec::new("get", config_get),
    CommandSpec::new("set", config_set),
    CommandSpec::new("resetstat", config_resetstat),
    CommandSpec::new("rewrite", config_rewrite),
    CommandSpec::new("help", config_help),
];

static MEMORY_SUBS: &[CommandSpec] = &[
    CommandSpec::new("usage", memory_usage),
    CommandSpec::new("doctor", memory_doctor),
    CommandSpec::new("purge", memory_purge),
    CommandSpec::new("stats", super::observability::memory_stats),
    CommandSpec::new("malloc-stats", super::observability::memory_malloc_stats),
    CommandSpec::new("help", memory_help),
];

fn memory_usage(ctx: &mut Ctx) -> CmdResult {
    let args = ctx.args;
    if args.len() != 3 && !(args.len() == 5 && is(&args[3], "samples")) {
        return Err(CmdError::new(errors::SYNTAX));
    }
    if args.len() == 5 {
        args::int(&args[4])?;
    }
    let key = &args[2];
    match ctx.db.peek(key) {
        None => ctx.reply.null(),
        // Entry node, key and value, as Redis counts the dict entry, key and object.
        Some(e) => ctx.reply.int(
            (80 + key.len().saturating_sub(crate::types::small_bytes::INLINE_CAP) + e.value.memory_usage()) as i64,
        ),
    }
    Ok(())
}

fn memory_doctor(ctx: &mut Ctx) -> CmdResult {
    super::observability::memory_doctor(ctx)
}

fn memory_purge(ctx: &mut Ctx) -> CmdResult {
    super::observability::memory_purge(ctx)
}

fn memory_help(ctx: &mut Ctx) -> CmdResult {
    reply_help(
        ctx,
        "MEMORY",
        &[
            "DOCTOR",
            "    Return memory problems reports.",
            "MALLOC-STATS",
            "    Return internal statistics report from the memory allocator.",
            "PURGE",
            "    Attempt to purge dirty pages for reclamation by the allocator.",
            "STATS",
            "    Return information about the memory usage of the server.",
            "USAGE <key> [SAMPLES <count>]",
            "    Return memory in bytes used by <key> and its value. Nested values are",
            "    sampled up to <count> times (default: 5, 0 means sample all).",
        ],
    );
    Ok(())
}

/// Handler of a container command called without a subcommand it knows (the pipeline
/// normally answers these before any handler runs).
pub fn container_help(ctx: &mut Ctx) -> CmdResult {
    Err(CmdError::new(format!(
        "unknown subcommand or wrong number of arguments for '{}'. Try {} HELP.",
        args::echo(ctx.args.get(1).map(|a| &a[..]).unwrap_or(b"")),
        args::echo(&ctx.args[0]).to_ascii_uppercase()
    )))
}

/// Redis's addReplyHelp: a header line, the given lines, and the HELP footer, as status replies
/// (7.2 says "Print this help."; 7.0 said "Prints").
pub fn reply_help(ctx: &mut Ctx, name: &str, lines: &[&str]) {
    let r = &mut *ctx.reply;
    r.array(lines.len() + 3);
    r.simple(&format!("{name} <subcommand> [<arg> [value] [opt] ...]. Subcommands are:"));
    for l in lines {
        r.simple(l);
    }
    r.simple("HELP");
    r.simple("    Print this help.");
}

/// TIME: the clock now, or inside EXEC or a script the frozen time (Redis 7.2 answers with its
/// cached time, updated only when a top-level command starts or a busy script yields).
fn time(ctx: &mut Ctx) -> CmdResult {
    let us = match ctx.client.frozen_unix_us() {
        Some(us) => us,
        None => std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_micros() as i64),
    };
    ctx.reply.array(2);
    ctx.reply.bulk_int(us / 1_000_000);
    ctx.reply.bulk_int(us % 1_000_000);
    Ok(())
}

fn shutdown(ctx: &mut Ctx) -> CmdResult {
    use crate::config::table::{SHUTDOWN_FORCE, SHUTDOWN_NOSAVE, SHUTDOWN_NOW, SHUTDOWN_SAVE};
    let args = ctx.args;
    let (mut flags, mut abort) = (0u32, false);
    for a in &args[1..] {
        if is(a, "nosave") {
            flags |= SHUTDOWN_NOSAVE;
        } else if is(a, "save") {
            flags |= SHUTDOWN_SAVE;
        } else if is(a, "now") {
            flags |= SHUTDOWN_NOW;
        } else if is(a, "force") {
            flags |= SHUTDOWN_FORCE;
        } else if is(a, "abort") {
            abort = true;
        } else {
            return Err(CmdError::new(errors::SYNTAX));
        }
    }
    if (abort && flags != 0) || (flags & SHUTDOWN_SAVE != 0 && flags & SHUTDOWN_NOSAVE != 0) {
        return Err(CmdError::new(errors::SYNTAX));
    }
    if abort {
        // A signal's shutdown not begun yet, or one waiting for its replicas.
        let pending = ctx.server.shutdown_pending.swap(false, Ordering::SeqCst);
        if !pending && !ctx.server.shutdown_state.abort(ctx.server) {
            return Err(CmdError::new("No shutdown in progress."));
        }
        crate::server::log::notice("Shutdown manually aborted.");
        ctx.reply.ok();
        return Ok(());
    }
    // The connection waits for the outcome (server::shutdown): no reply when the server
    // exits, an error when the shutdown fails or is aborted.
    ctx.action = Action::Shutdown(flags);
    Ok(())
}

fn config_get(ctx: &mut Ctx) -> CmdResult {
    let pats: Vec<&[u8]> = ctx.args[2..].iter().map(|a| &a[..]).collect();
    let pairs = crate::config::get_matching(&ctx.server.config.load(), &pats);
    ctx.reply.map(pairs.len());
    for (k, v) in pairs {
        ctx.reply.bulk(k.as_bytes());
        ctx.reply.bulk(v.as_bytes());
    }
    Ok(())
}

fn config_set(ctx: &mut Ctx) -> CmdResult {
    let args = ctx.args;
    if !(args.len() - 2).is_multiple_of(2) {
        return Err(CmdError::new(errors::SYNTAX));
    }
    // Names as Redis looks them up and echoes them: C strings.
    let pairs: Vec<(String, String)> = args[2..].chunks(2).map(|kv| (args::echo(&kv[0]), args::text(&kv[1]))).collect();
    let server = ctx.server;
    let set_ctx = crate::config::SetContext {
        loading: server.stats.loading.load(Ordering::Relaxed) || server.replica.async_loading.load(Ordering::Relaxed),
        protected_allowed: crate::server::allows_protected(server.config.load().enable_protected_configs, ctx.client),
    };
    let log = |warning: bool, line: &str| crate::server::log::log(if warning { 3 } else { 2 }, line);
    server
        .config
        .set(&pairs, &set_ctx, |old, new| crate::server::config_apply::apply(server, old, new), &log)
        .map_err(CmdError::new)?;
    crate::server::aof::config_changed(ctx.server, ctx.db.is_all_locked());
    // A lower maxmemory takes effect at once, as in Redis (not inside EXEC: locks are held).
    if !ctx.db.holds_locks() {
        ctx.server.evict_before_command();
    }
    ctx.reply.ok();
    Ok(())
}

fn config_resetstat(ctx: &mut Ctx) -> CmdResult {
    reset_stats(ctx.server);
    ctx.reply.ok();
    Ok(())
}

/// CONFIG RESETSTAT: zero the counters INFO reports.
pub fn reset_stats(server: &Server) {
    crate::keyspace::lazyfree::reset_stats();
    let st = &server.stats;
    for c in [
        &st.total_connections_received,
        &st.rejected_connections,
        &st.total_error_replies,
        &st.unexpected_error_replies,
        &st.client_query_buffer_limit_disconnections,
        &st.client_output_buffer_limit_disconnections,
        &st.evicted_clients,
        &st.reply_buffer_shrinks,
        &st.reply_buffer_expands,
        &st.expire_cycle_us,
        &server.keyspace.stats.expired_stale_perc,
        &server.keyspace.stats.expired_time_cap_reached,
        &server.keyspace.stats.evicted_keys,
    ] {
        c.store(0, Ordering::Relaxed);
    }
    let ks = &server.keyspace.stats;
    use crate::server::io;
    st.cron_us.store(0, Ordering::Relaxed);
    let cycles = [io::CYCLES, io::CYCLES_US, io::CYCLE_MAX_US, io::CYCLE_MAX_CMDS];
    for i in [io::COMMANDS, io::NET_INPUT, io::NET_OUTPUT, io::READS, io::WRITES].into_iter().chain(cycles) {
        st.io.set(i, 0);
    }
    for c in [&ks.hits, &ks.misses, &ks.expired_keys, &ks.expired_subkeys] {
        c.store(0, Ordering::Relaxed);
    }
    st.rates.reset();
    server.aof.delayed_fsync.store(0, Ordering::Relaxed);
    let rs = &server.repl.stats;
    for c in
        [&rs.sync_full, &rs.sync_partial_ok, &rs.sync_partial_err, &rs.net_repl_input_bytes, &rs.net_repl_output_bytes]
    {
        c.store(0, Ordering::Relaxed);
    }
    crate::metrics::memory::reset_peak();
    server.error_stats.lock().clear();
    for c in table().iter() {
        c.stats.reset();
        for s in c.subcommands.values() {
            s.stats.reset();
        }
    }
}

fn config_rewrite(ctx: &mut Ctx) -> CmdResult {
    let Some(path) = ctx.server.config.file.clone() else {
        return Err(CmdError::new("The server is running without a config file"));
    };
    let cfg = ctx.server.config.snapshot();
    if let Err(e) =
        crate::config::rewrite_file(&cfg, &path, false, super::acl::config_rewrite_lines(ctx.server).as_deref())
    {
        let why = crate::config::kinds::strerror(&e);
        crate::server::log::warning(&format!("CONFIG REWRITE failed: {why}"));
        return Err(CmdError::new(format!("Rewriting config file: {why}")));
    }
    crate::server::log::notice("CONFIG REWRITE executed with success.");
    ctx.reply.ok();
    Ok(())
}

fn config_help(ctx: &mut Ctx) -> CmdResult {
    reply_help(
        ctx,
        "CONFIG",
        &[
            "GET <pattern>",
            "    Return parameters matching the glob-like <pattern> and their values.",
            "SET <directive> <value>",
            "    Set the configuration <directive> to <value>.",
            "RESETSTAT",
            "    Reset statistics reported by the INFO command.",
            "REWRITE",
            "    Rewrite the configuration file.",
        ],
    );
    Ok(())
}

fn debug(ctx: &mut Ctx) -> CmdResult {
    let args = ctx.args;
    let sub = &args[1];
    if is(sub, "help") && args.len() == 2 {
        reply_help(
            ctx,
            "DEBUG",
            &[
                "CHANGE-REPL-ID",
                "    Change the replication IDs of the instance.",
                "CONFIG-REWRITE-FORCE-ALL",
                "    Like CONFIG REWRITE but writes all configuration options, including keywords not listed in original configuration file or default values.",
                "HTSTATS <dbid> [full]",
                "    Return hash table statistics of the specified Redis database.",
                "HTSTATS-KEY <key> [full]",
                "    Like HTSTATS but for the hash table stored at <key>'s value.",
                "LISTPACK <key>",
                "    Show low level info about the listpack encoding of <key>.",
                "LOG <message>",
                "    Write <message> to the server log.",
                "POPULATE <count> [<prefix>] [<size>]",
                "    Create <count> string keys named key:<num>. If <prefix> is specified then it is used instead of the 'key' prefix. These are not propagated to replicas. Cluster slots are not respected so keys not belonging to the current node can be created in cluster mode.",
                "SEGFAULT",
                "    Crash the server with sigsegv.",
                "SET-SKIP-CHECKSUM-VALIDATION <0|1>",
                "    Enables or disables checksum checks for RDB files and RESTORE's payload.",
                "REPLYBUFFER PEAK-RESET-TIME <never||reset|time>",
                "    Sets the time (in milliseconds) to wait between client reply buffer peak resets.",
                "LOADAOF",
                "    Flush the AOF buffers on disk and reload the AOF in memory.",
                "OBJECT <key>",
                "    Show low level info about the `key` and associated value.",
                "RELOAD [option ...]",
                "    Save the RDB on disk and reload it back to memory. Options: MERGE, NOFLUSH, NOSAVE.",
                "PROTOCOL <type>",
                "    Reply with a test value of the specified type.",
                "SET-ACTIVE-EXPIRE <0|1>",
                "    Setting it to 0 disables expiring keys in background when they are not accessed.",
                "SLEEP <seconds>",
                "    Stop this connection for <seconds> (float).",
                "SET-DISABLE-DENY-SCRIPTS <0|1>",
                "    Allow scripts to call commands flagged noscript (for tests).",
                "PAUSE-CRON <0|1>",
                "    Stop periodic cron job processing.",
                "QUICKLIST <key> [<0|1>]",
                "    Show low level info about the quicklist encoding of <key>.",
                "QUICKLIST-PACKED-THRESHOLD <size>",
                "    Accepted for compatibility.",
                "FAULT-INJECT <aof-write|aof-fsync|rdb-save> <errno|OFF>",
                "    Make that disk operation fail with errno (ENOSPC, EIO...) until OFF (Ferrous, for tests).",
            ],
        );
    } else if is(sub, "sleep") && args.len() == 3 {
        let secs = args::text(&args[2]).trim().parse::<f64>().unwrap_or(0.0);
        let d = Duration::from_secs_f64(secs.clamp(0.0, 1e9));
        // Redis sleeps whole: every shard is held (DEBUG is ALL_KEYS), this worker's other
        // clients wait, and the replication links stand still meanwhile too.
        ctx.server.repl.stall_for(d);
        std::thread::sleep(d);
        ctx.reply.ok();
    } else if is(sub, "set-active-expire") && args.len() == 3 {
        let on = args::text(&args[2]).trim().parse::<i64>().unwrap_or(0) != 0;
        ctx.server.active_expire.store(on, Ordering::Relaxed);
        ctx.reply.ok();
    } else if is(sub, "set-disable-deny-scripts") && args.len() == 3 {
        let on = args::text(&args[2]).trim().parse::<i64>().unwrap_or(0) != 0;
        ctx.server.scripting.disable_deny_scripts.store(on, Ordering::Relaxed);
        ctx.reply.ok();
    } else if is(sub, "fault-inject") && args.len() == 4 {
        use crate::util::fault;
        let point = fault::Point::by_name(&args::text(&args[2]));
        let errno = fault::errno_by_name(&args::text(&args[3]));
        let (Some(point), Some(errno)) = (point, errno) else {
            return Err(CmdError::new(errors::SYNTAX));
        };
        fault::arm(point, errno);
        ctx.reply.ok();
    } else if is(sub, "pause-cron") && args.len() == 3 {
        let on = args::text(&args[2]).trim().parse::<i64>().unwrap_or(0) != 0;
        ctx.server.cron_paused.store(on, Ordering::Relaxed);
        ctx.reply.ok();
    } else if let Some(done) = super::debug_extra::run(ctx) {
        return done;
    } else if is(sub, "digest-value") {
        // Redis's digests, key by key (40 zeros for a missing key); expired keys not yet
        // reclaimed count, as Redis looks them up without expiring them.
        let keys: Vec<Bytes> = args[2..].to_vec();
        ctx.reply.array(keys.len());
        for k in &keys {
            let mut d = [0u8; 20];
            let expires = ctx.db.expire_of(k).is_some();
            add_entry_to_digest(ctx.db, k, expires, &mut d);
            ctx.reply.simple(&digest::to_hex(&d));
        }
    } else if is(sub, "digest") && args.len() == 2 {
        // Redis's dataset digest: per non-empty database, its number mixed into the total,
        // then each key's digest (name, value, expiry mark) xored into it.
        let mut total = [0u8; 20];
        for db in 0..ctx.server.keyspace.databases() {
            ctx.db.index = db;
            let mut keys = Vec::new();
            ctx.db.all_keys(|k, expire| keys.push((k.to_vec(), expire.is_some())));
            if keys.is_empty() {
                continue;
            }
            digest::mix_digest(&mut total, &(db as u32).to_be_bytes());
            for (k, expires) in keys {
                let mut d = [0u8; 20];
                digest::mix_digest(&mut d, &k);
                add_entry_to_digest(ctx.db, &k, expires, &mut d);
                digest::xor_digest(&mut total, &d);
            }
        }
        ctx.db.index = ctx.client.db;
        ctx.reply.simple(&digest::to_hex(&total));
    } else if is(sub, "object") && args.len() == 3 {
        debug_object(ctx)?;
    } else if is(sub, "reload") {
        debug_reload(ctx)?;
    } else if is(sub, "loadaof") && args.len() == 2 {
        let loaded = crate::server::aof_load::debug_loadaof(ctx.server, ctx.db);
        ctx.db.index = ctx.client.db;
        if let Err(e) = loaded {
            crate::server::log::warning(&format!("DEBUG LOADAOF failed: {e}"));
            return Err(CmdError::new("Error loading the AOF, check server logs."));
        }
        ctx.reply.ok();
    } else if is(sub, "protocol") && args.len() == 3 {
        debug_protocol(ctx)?;
    } else {
        return Err(CmdError::new(format!(
            "unknown subcommand or wrong number of arguments for '{}'. Try DEBUG HELP.",
            args::echo(sub)
        )));
    }
    Ok(())
}

/// DEBUG RELOAD [MERGE] [NOFLUSH] [NOSAVE]: save the RDB file (unless NOSAVE), empty the
/// dataset and the function libraries (unless NOFLUSH), load the file back (MERGE: loaded keys
/// and libraries replace existing ones).
/// DEBUG holds every shard lock, so nothing runs in between.
fn debug_reload(ctx: &mut Ctx) -> CmdResult {
    let (mut merge, mut flush, mut save) = (false, true, true);
    for a in &ctx.args[2..] {
        if is(a, "merge") {
            merge = true;
        } else if is(a, "noflush") {
            flush = false;
        } else if is(a, "nosave") {
            save = false;
        } else {
            return Err(CmdError::new("DEBUG RELOAD only supports the MERGE, NOFLUSH and NOSAVE options."));
        }
    }
    let server = ctx.server;
    if save && crate::server::saving::save(server, ctx.db).is_err() {
        return Err(CmdError::new("-ERR"));
    }
    if flush {
        // Redis's emptyData: the keyspace and the function libraries.
        drop(ctx.db.flush(true));
        server.scripting.flush_functions();
    }
    let path = crate::server::saving::rdb_path(&server.config.load());
    let loaded = crate::server::saving::load_file(server, ctx.db, &path, merge);
    ctx.db.index = ctx.client.db;
    if let Err(e) = loaded {
        crate::server::log::warning(&format!("DEBUG RELOAD failed loading {}: {e}", path.display()));
        return Err(CmdError::new("Error trying to load the RDB dump, check server logs."));
    }
    crate::server::log::notice("DB reloaded by DEBUG RELOAD");
    ctx.reply.ok();
    Ok(())
}

/// Adds a stored key's value and, when it `expires`, the expiry mark to its digest, as Redis's
/// xorObjectDigest does (nothing for a missing key; no lazy expiry).
fn add_entry_to_digest(db: &mut crate::keyspace::Db, key: &[u8], expires: bool, d: &mut [u8; 20]) {
    let Some(e) = db.peek_raw(key) else { return };
    e.value.add_to_digest(d);
    if expires {
        digest::xor_digest(d, b"!!expire!!");
    }
}

fn debug_object(ctx: &mut Ctx) -> CmdResult {
    let key = ctx.args[2].clone();
    let shared = super::keys::shares_integers(ctx);
    let cfg = ctx.server.config.load();
    // As Redis: the stored entry, even if expired (DEBUG OBJECT never expires a key).
    let Some(e) = ctx.db.peek_raw(&key) else {
        return Err(CmdError::new(errors::NO_KEY));
    };
    // rdbSavedObjectLen: the value's RDB serialisation, which DUMP frames with a type byte,
    // the RDB version (2 bytes) and a CRC-64 (8 bytes).
    let serialized = crate::persistence::dump::dump(&e.value, SaveOptions::from_config(&cfg)).len() - 11;
    let mut line = format!(
        "Value at:0x{:x} refcount:{} encoding:{} serializedlength:{} lru:{} lru_seconds_idle:{}",
        e as *const _ as usize,
        super::keys::refcount(&e.value, shared),
        e.value.encoding(),
        serialized,
        e.lru,
        crate::keyspace::idle_seconds(e.lru)
    );
    if let Value::List(l) = &e.value {
        if let Some((nodes, fill, compressed, bytes)) = l.quicklist_stats() {
            line += &format!(
                " ql_nodes:{nodes} ql_avg_node:{:.2} ql_listpack_max:{fill} ql_compressed:{} ql_uncompressed_size:{bytes}",
                l.len() as f64 / nodes as f64,
                u8::from(compressed),
            );
        }
    }
    ctx.reply.simple(&line);
    Ok(())
}

fn debug_protocol(ctx: &mut Ctx) -> CmdResult {
    let name = &ctx.args[2];
    let r = &mut *ctx.reply;
    if is(name, "string") {
        r.bulk(b"Hello World");
    } else if is(name, "integer") {
        r.int(12345);
    } else if is(name, "double") {
        #[allow(clippy::approx_constant)] // Redis's own test value, not pi.
        r.double(3.141);
    } else if is(name, "bignum") {
        r.big_number("1234567999999999999999999999999999999");
    } else if is(name, "null") {
        r.null();
    } else if is(name, "array") {
        r.array(3);
        (0..3).for_each(|j| r.int(j));
    } else if is(name, "set") {
        r.set(3);
        (0..3).for_each(|j| r.int(j));
    } else if is(name, "map") {
        r.map(3);
        for j in 0..3 {
            r.int(j);
            r.boolean(j == 1);
        }
    } else if is(name, "attrib") {
        if r.proto == Proto::Resp3 {
            r.attribute(1);
            r.bulk(b"key-popularity");
            r.array(2);
            r.bulk(b"key:123");
            r.int(90);
        }
        r.bulk(b"Some real reply following the attribute");
    } else if is(name, "push") {
        if r.proto != Proto::Resp3 {
            return Err(CmdError::new("RESP2 is not supported by this command"));
        }
        r.push(2);
        r.bulk(b"server-cpu-usage");
        r.int(42);
        r.bulk(b"Some real reply following the push reply");
    } else if is(name, "true") {
        r.boolean(true);
    } else if is(name, "false") {
        r.boolean(false);
    } else if is(name, "verbatim") {
        r.verbatim(b"txt", b"This is a verbatim\nstring");
    } else {
        return Err(CmdError::new("Wrong protocol type name. Please use one of the following: string|integer|double|bignum|null|array|set|map|attrib|push|verbatim|true|false"));
    }
    Ok(())
}

fn info(ctx: &mut Ctx) -> CmdResult {
    // Inside EXEC or a script this thread holds the shard locks already: count the keys through
    // its view (INFO's own shard-by-shard locking would wait for this very thread forever).
    let counts: Option<Vec<crate::keyspace::DbCounts>> = ctx.db.is_all_locked().then(|| {
        let selected = ctx.db.index;
        let counts = (0..ctx.server.keyspace.databases())
            .map(|i| {
                ctx.db.index = i;
                ctx.db
                    .sampled_shards()
                    .fold(crate::keyspace::DbCounts::default(), |acc, (_, sd)| acc.plus(sd.info_counts()))
            })
            .collect();
        ctx.db.index = selected;
        counts
    });
    let text = crate::server::info::render_with(ctx.server, &ctx.args[1..], counts.as_deref());
    ctx.reply.verbatim(b"txt", text.as_bytes());
    Ok(())
}
