//! The single dispatch path. Every request goes through [`execute`], which runs Redis's
//! generic checks in Redis's order, driven by the command table's flags, before any handler:
//! lookup (unknown command / subcommand), arity, protected commands (DEBUG), authentication.
//! Later checks (MULTI queueing, cluster redirection, OOM, read-only replica, busy script) belong
//! here too. Then it locks the shards of the command's keys, runs the handler, propagates the
//! command's effect and records statistics.

use bytes::Bytes;
use std::time::Instant;

use super::table::{table, Command};
use super::{flags, Action, Ctx};
use crate::protocol::ReplySink;
use crate::server::client::{Client, ReplyMode};
use crate::server::Server;

/// Run one request and write its reply into `reply`.
pub fn execute(server: &Server, client: &mut Client, args: &[Bytes], reply: &mut ReplySink) -> Action {
    if args.is_empty() {
        return Action::None;
    }
    let mark = reply.len();
    let errors_before = reply.errors.len();
    let tracking = &server.keyspace.tracking;
    let (action, name) = match check(server, client, args) {
        Ok(cmd) if !cmd.spec.has_flag(flags::ALLOW_BUSY) && server.scripting.busy.running_for().is_some() => {
            // A script holds every shard: never wait for a lock here. Past busy-reply-threshold
            // the command is refused with BUSY; before it, the connection waits for the script.
            let busy = &server.scripting.busy;
            let threshold = busy_threshold(server);
            if threshold.is_some_and(|t| busy.running_for().is_some_and(|d| d >= t)) {
                if let Some(m) = client.multi.as_mut() {
                    m.aborted = true;
                }
                cmd.stats.rejected.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                reject(server, client, cmd, busy.error(), reply);
                (Action::None, cmd.full_name.as_str())
            } else {
                reply.errors.truncate(errors_before);
                return Action::WaitScript;
            }
        }
        Ok(cmd) if server.pause.active() && server.pause.blocks(may_write(server, client, cmd, args)) => {
            // Nothing ran and nothing was answered: the connection waits and retries.
            reply.errors.truncate(errors_before);
            return Action::Paused;
        }
        Ok(cmd) if client.multi.is_some() && !is_transaction_control(cmd) => {
            if let Some(m) = client.multi.as_mut() {
                m.commands.push(args.to_vec());
            }
            reply.simple("QUEUED");
            (Action::None, cmd.full_name.as_str())
        }
        Ok(cmd) => (run(server, client, cmd, args, reply), cmd.full_name.as_str()),
        Err((cmd, err)) => {
            // A refused command aborts the transaction being queued (Redis's flagTransaction).
            if let Some(m) = client.multi.as_mut() {
                m.aborted = true;
            }
            match cmd {
                Some(cmd) => {
                    cmd.stats.rejected.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    reject(server, client, cmd, &err, reply);
                }
                None => reply.error(&err),
            }
            (Action::None, cmd.map(|c| c.full_name.as_str()).unwrap_or(""))
        }
    };
    for code in &reply.errors[errors_before..] {
        server.count_error(code);
    }
    reply.errors.truncate(errors_before);
    // Subscription notifications are pushes: CLIENT REPLY OFF/SKIP does not silence them.
    let pushes =
        matches!(name, "subscribe" | "psubscribe" | "ssubscribe" | "unsubscribe" | "punsubscribe" | "sunsubscribe");
    match client.reply_mode {
        _ if pushes => {}
        ReplyMode::On => {}
        ReplyMode::Off => reply.buf.truncate(mark),
        ReplyMode::Skip => {
            // CLIENT REPLY SKIP itself is answered nothing; the command after it is skipped.
            reply.buf.truncate(mark);
            if !name.eq_ignore_ascii_case("client|reply") {
                client.reply_mode = ReplyMode::On;
            }
        }
    }
    if let Some(t) = client.tracking.as_mut() {
        // CLIENT CACHING applies to the next command (or the next transaction) only.
        if client.multi.is_none() && !name.starts_with("client|") {
            t.caching = false;
        }
    }
    if tracking.any() {
        tracking.flush_bcast();
    }
    // CLIENT LIST's view is published once per batch of pipelined requests by the connection.
    client.last_cmd = if name.is_empty() { "NULL" } else { name };
    action
}

/// Run a command the server itself issues on a client's behalf (putting back what a blocked
/// client took when its reply could not be written): no admission checks, only the lookup.
pub fn execute_internal(server: &Server, client: &mut Client, args: &[Bytes], reply: &mut ReplySink) {
    if let Some(cmd) = args.first().and_then(|name| table().lookup(name)) {
        run(server, client, cmd, args, reply);
    }
}

type Rejection = (Option<&'static Command>, String);

/// Answer a refused command. A refused EXEC discards its transaction and says why, as
/// Redis's execCommandAbort does (`-EXECABORT Transaction discarded because of: ...`).
fn reject(server: &Server, client: &mut Client, cmd: &Command, err: &str, reply: &mut ReplySink) {
    if cmd.parent.is_none() && cmd.spec.name == "exec" && client.multi.is_some() {
        client.multi = None;
        super::transactions::unwatch_all(&server.keyspace, client);
        let why = err.strip_prefix('-').unwrap_or(err);
        reply.error(&format!("-EXECABORT Transaction discarded because of: {why}"));
    } else {
        reply.error(err);
    }
}

/// `busy-reply-threshold` (alias lua-time-limit); None when 0 (never answer BUSY).
pub fn busy_threshold(server: &Server) -> Option<std::time::Duration> {
    let ms: u64 = server.config.read().get("busy-reply-threshold").and_then(|v| v.parse().ok()).unwrap_or(5000);
    (ms > 0).then(|| std::time::Duration::from_millis(ms))
}

/// Whether this request runs a Lua script outside a transaction (the connection then runs it
/// off its worker thread, see [`flags::SCRIPT_RUN`]).
pub fn runs_script(client: &Client, args: &[Bytes]) -> bool {
    // EVAL*, FCALL*: a first-letter test spares every other command a table lookup.
    client.multi.is_none()
        && matches!(args.first().and_then(|a| a.first()), Some(b'e' | b'E' | b'f' | b'F'))
        && table().lookup(&args[0]).is_some_and(|c| c.spec.has_flag(flags::SCRIPT_RUN))
}

/// Lookup, arity, protection and authentication checks.
fn check(server: &Server, client: &Client, args: &[Bytes]) -> Result<&'static Command, Rejection> {
    let Some(mut cmd) = table().lookup(&args[0]) else {
        return Err((None, unknown_command(args)));
    };
    if cmd.is_container() && args.len() >= 2 {
        match cmd.subcommand(&args[1]) {
            Some(sub) => cmd = sub,
            None => {
                let sub = String::from_utf8_lossy(&args[1]);
                let sub: String = sub.chars().take(128).collect();
                return Err((
                    None,
                    format!(
                        "unknown subcommand '{}'. Try {} HELP.",
                        sub.replace(['\r', '\n'], " "),
                        cmd.spec.name.to_ascii_uppercase()
                    ),
                ));
            }
        }
    }
    let arity = cmd.spec.arity;
    let argc = args.len() as i32;
    if (arity > 0 && arity != argc) || argc < -arity {
        return Err((Some(cmd), format!("wrong number of arguments for '{}' command", cmd.full_name)));
    }
    if cmd.spec.has_flag(flags::PROTECTED) && cmd.spec.name == "debug" {
        let mode = crate::server::client_protected_mode(client);
        if !mode {
            return Err((
                Some(cmd),
                "DEBUG command not allowed. If the enable-debug-command option is set to \"local\", you can run it from a local connection, otherwise you need to set this option in the configuration file, and then restart the server.".to_string(),
            ));
        }
    }
    if !client.authenticated && !cmd.spec.has_flag(flags::NO_AUTH) {
        return Err((Some(cmd), super::errors::NOAUTH.to_string()));
    }
    if server.out_of_memory.load(std::sync::atomic::Ordering::Relaxed) && rejected_on_oom(server, client, cmd, args) {
        return Err((Some(cmd), "-OOM command not allowed when used memory > 'maxmemory'.".to_string()));
    }
    // Replicas never acknowledge their offset to Ferrous yet, so none counts as good: with
    // min-replicas-to-write set, writes are refused as Redis refuses them without good replicas.
    if server.min_replicas_to_write.load(std::sync::atomic::Ordering::Relaxed) > 0
        && is_write(server, client, cmd, args)
    {
        return Err((Some(cmd), "-NOREPLICAS Not enough good replicas to write.".to_string()));
    }
    if !client.is_master && server.replica.is_replica() {
        if is_write(server, client, cmd, args) && server.config.read().get("replica-read-only") == Some("yes") {
            return Err((Some(cmd), "-READONLY You can't write against a read only replica.".to_string()));
        }
        if !server.replica.link_up.load(std::sync::atomic::Ordering::Relaxed)
            && server.config.read().get("replica-serve-stale-data") == Some("no")
            && denies_stale(client, cmd)
        {
            return Err((
                Some(cmd),
                "-MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'.".to_string(),
            ));
        }
    }
    if client.proto == crate::protocol::Proto::Resp2
        && client.subs.active()
        && !super::pubsub::allowed_when_subscribed(cmd.spec.name)
    {
        return Err((
            Some(cmd),
            format!(
                "Can't execute '{}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context",
                cmd.full_name
            ),
        ));
    }
    if client.multi.is_some() && cmd.spec.has_flag(flags::NO_MULTI) {
        return Err((Some(cmd), "Command not allowed inside a transaction".to_string()));
    }
    Ok(cmd)
}

/// For an EXEC with a transaction queued: whether any queued command satisfies `pred`; None
/// for any other command (the checks below then look at the command itself).
fn exec_queued_any(client: &Client, cmd: &Command, pred: impl Fn(&'static Command, &[Bytes]) -> bool) -> Option<bool> {
    let m = client.multi.as_ref()?;
    if cmd.parent.is_some() || cmd.spec.name != "exec" {
        return None;
    }
    Some(m.commands.iter().any(|argv| table().lookup(&argv[0]).is_some_and(|c| pred(c, argv))))
}

/// A command not flagged `stale`, or an EXEC holding one: refused by a replica whose master link
/// is down when replica-serve-stale-data is no.
fn denies_stale(client: &Client, cmd: &Command) -> bool {
    let stale = |c: &Command| !c.spec.has_flag(flags::STALE);
    exec_queued_any(client, cmd, |c, _| stale(c)).unwrap_or_else(|| stale(cmd))
}

/// A write command, or an EXEC whose transaction holds one (Redis's is_write_command); a
/// script with a shebang or a function unless it declared `no-writes`.
fn is_write(server: &Server, client: &Client, cmd: &Command, args: &[Bytes]) -> bool {
    if cmd.spec.has_flag(flags::WRITE) {
        return true;
    }
    if let Some(any) = exec_queued_any(client, cmd, |c, _| c.spec.has_flag(flags::WRITE)) {
        return any;
    }
    cmd.spec.has_flag(flags::SCRIPT_RUN)
        && client.multi.is_none()
        && script_flags(server, cmd, args).is_some_and(|f| f.write)
}

/// A `denyoom` command, or a script with a shebang or a function that did not declare
/// `allow-oom` or `no-writes`.
fn is_denyoom(server: &Server, cmd: &Command, args: &[Bytes]) -> bool {
    cmd.spec.has_flag(flags::DENYOOM)
        || (cmd.spec.has_flag(flags::SCRIPT_RUN) && script_flags(server, cmd, args).is_some_and(|f| f.denyoom))
}

/// Over maxmemory, Redis refuses `denyoom` commands, an EXEC whose transaction holds one, and
/// anything queued inside MULTI (queueing itself uses memory) except EXEC, DISCARD, QUIT, RESET.
fn rejected_on_oom(server: &Server, client: &Client, cmd: &Command, args: &[Bytes]) -> bool {
    if let Some(any) = exec_queued_any(client, cmd, |c, argv| is_denyoom(server, c, argv)) {
        return any;
    }
    if client.multi.is_some() {
        return !(cmd.parent.is_none() && matches!(cmd.spec.name, "discard" | "quit" | "reset"));
    }
    is_denyoom(server, cmd, args)
}

/// Whether a command may write (CLIENT PAUSE WRITE holds it back): write and may-replicate
/// commands, scripts that did not declare `no-writes`, and an EXEC whose transaction holds one.
fn may_write(server: &Server, client: &Client, cmd: &Command, args: &[Bytes]) -> bool {
    if cmd.spec.has_flag(flags::SCRIPT_RUN) {
        return crate::scripting::declared::may_write(&server.scripting, cmd.spec.name, args);
    }
    if cmd.spec.has_flag(flags::WRITE | flags::MAY_REPLICATE) {
        return true;
    }
    exec_queued_any(client, cmd, |c, argv| may_write(server, client, c, argv)).unwrap_or(false)
}

/// What a script command stands for, from its declared flags (see
/// `scripting::declared::command_flags`).
fn script_flags(server: &Server, cmd: &Command, args: &[Bytes]) -> Option<crate::scripting::declared::CommandFlags> {
    crate::scripting::declared::command_flags(&server.scripting, cmd.spec.name, args)
}

/// Commands that run immediately even inside MULTI.
fn is_transaction_control(cmd: &Command) -> bool {
    cmd.parent.is_none() && matches!(cmd.spec.name, "exec" | "discard" | "multi" | "watch" | "quit" | "reset")
}

/// Redis's "unknown command" text, with up to 128 bytes of the arguments.
fn unknown_command(args: &[Bytes]) -> String {
    let mut rest = String::new();
    for a in &args[1..] {
        if rest.len() >= 128 {
            break;
        }
        let room = 128 - rest.len();
        let s = String::from_utf8_lossy(a);
        let s: String = s.chars().take(room).collect();
        rest.push_str(&format!("'{s}' "));
    }
    let name: String = String::from_utf8_lossy(&args[0]).chars().take(128).collect();
    format!("unknown command '{name}', with args beginning with: {rest}").replace(['\r', '\n'], " ")
}

/// A write done inside EXEC, whose waiters and watchers are told after the locks are released.
#[derive(Debug)]
pub struct Queued {
    pub cmd: &'static Command,
    pub args: Vec<Bytes>,
    pub db: usize,
    pub modified: Vec<(usize, Bytes)>,
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.full_name)
    }
}

/// What running a command produced, beyond its reply.
pub struct Outcome {
    pub action: Action,
    /// Whether it changed the dataset.
    pub wrote: bool,
    /// The keys it reported as modified (while transactions watch keys).
    pub modified: Vec<(usize, Bytes)>,
}

/// Lock what the command needs, run it, release the locks (publishing its effects), then wake
/// the clients waiting on what it wrote.
fn run(server: &Server, client: &mut Client, cmd: &'static Command, args: &[Bytes], reply: &mut ReplySink) -> Action {
    let spec = cmd.spec;
    let ks = &server.keyspace;
    let db_index = client.db;
    // Scripts: one at a time, marked running before they wait for the shard locks, so other
    // clients wait (or get BUSY) before taking any lock themselves.
    let busy = &server.scripting.busy;
    // Never block a worker thread on the gate: another worker's script may run for long.
    let _gate = if spec.has_flag(flags::SCRIPT_RUN) {
        match busy.try_gate() {
            Some(g) => Some(g),
            None => return Action::WaitScript,
        }
    } else {
        None
    };
    let start = Instant::now();
    let _running = spec.has_flag(flags::SCRIPT_RUN).then(|| busy.mark_at(spec.name.starts_with("fcall"), start));
    let exec_set =
        if cmd.parent.is_none() && spec.name == "exec" { super::transactions::exec_shards(client) } else { None };
    let mut db = if let Some(set) = exec_set {
        ks.lock_set_at(db_index, set, crate::keyspace::clock::unix_ms_at(start))
    } else if spec.has_flag(flags::SCRIPT_RUN) {
        // The declared keys now, any other shard when the script touches it.
        // (EVAL*/FCALL* script numkeys key... arg...: a bad numkeys locks nothing up front.)
        let mut set = crate::keyspace::ShardSet::default();
        let numkeys = args.get(2).and_then(|n| crate::util::num::parse_i64(n)).unwrap_or(0).max(0) as usize;
        for k in args.iter().skip(3).take(numkeys) {
            set.add_key(k);
        }
        ks.lock_lazy(db_index, set, crate::keyspace::clock::unix_ms_at(start))
    } else if spec.has_flag(flags::ALL_KEYS) {
        ks.lock_all(db_index)
    } else {
        let mut set = crate::keyspace::ShardSet::default();
        for i in spec.key_indices(args.len()) {
            set.add_key(&args[i]);
        }
        ks.lock_set_at(db_index, set, crate::keyspace::clock::unix_ms_at(start))
    };
    let outcome = run_locked(server, client, cmd, args, reply, &mut db, start);
    drop(db);
    client.last_wrote = outcome.wrote;
    if outcome.wrote {
        after_write(server, cmd, args, db_index, &outcome.modified);
    }
    for q in std::mem::take(&mut client.after_exec) {
        after_write(server, q.cmd, &q.args, q.db, &q.modified);
    }
    outcome.action
}

/// Run a command against an already locked view (EXEC runs all its commands on one): the
/// handler, the propagation of its effect, its statistics.
pub fn run_locked(
    server: &Server,
    client: &mut Client,
    cmd: &'static Command,
    args: &[Bytes],
    reply: &mut ReplySink,
    db: &mut crate::keyspace::Db<'_>,
    start: Instant,
) -> Outcome {
    let spec = cmd.spec;
    db.begin_command(client.db);
    // Inside EXEC each command sees the time it runs at (as Redis 7.0 does).
    db.now_ms = crate::keyspace::clock::unix_ms_at(start);
    db.no_touch = client.no_touch && spec.name != "touch";
    db.client_id = client.id();
    let errors_before = reply.errors.len();
    let uncounted_before = reply.uncounted_errors;
    let mut ctx = Ctx { server, client, args, db, reply, action: Action::None };
    if let Err(e) = (spec.handler)(&mut ctx) {
        ctx.reply.error(&e.0);
    }
    if ctx.db.dirty > 0 && !ctx.db.has_custom_effect() && ctx.db.propagating() {
        ctx.db.propagate(args.to_vec());
    }
    let action = std::mem::take(&mut ctx.action);
    // Client-side caching: remember the keys a read-only command read, while its locks are
    // still held (a concurrent write then always finds them and invalidates them).
    // Scripts remember their declared keys themselves, and only if they ran a read command.
    if spec.has_flag(flags::READONLY) && !spec.has_flag(flags::PUBSUB | flags::SCRIPT_RUN) {
        if let Some(t) = &ctx.client.tracking {
            if t.remembers() {
                remember_keys(server, ctx.client.id(), spec, args);
            }
        }
    }
    let failed = ctx.reply.errors.len() > errors_before || ctx.reply.uncounted_errors > uncounted_before;
    let wrote = ctx.db.dirty > 0;
    let us = start.elapsed().as_micros() as u64;
    let st = &cmd.stats;
    // A command that blocked is counted once, when it is finally served (Redis counts a
    // blocked call at unblock time).
    if !matches!(action, Action::Block(_)) {
        st.calls.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
    st.usec.fetch_add(us, std::sync::atomic::Ordering::Relaxed);
    if failed {
        st.failed.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
    let modified = ctx.db.take_modified();
    Outcome { action, wrote, modified }
}

/// Record the key arguments of a read-only command for a tracking client.
pub fn remember_keys(server: &Server, id: u64, spec: &super::CommandSpec, args: &[Bytes]) {
    let tracking = &server.keyspace.tracking;
    match spec.getkeys {
        Some(f) => tracking.remember(id, f(args).into_iter().filter_map(|i| args.get(i))),
        None => tracking.remember(id, spec.key_indices(args.len()).map(|i| &args[i])),
    }
}

/// After a write (and once its locks are released): wake the clients blocked on the keys it
/// wrote and invalidate the transactions watching them.
pub fn after_write(server: &Server, cmd: &Command, args: &[Bytes], db_index: usize, modified: &[(usize, Bytes)]) {
    let spec = cmd.spec;
    let everything = spec.has_flag(flags::ALL_KEYS) || spec.name == "move" || spec.name == "copy";
    // Of the stream commands only XADD and XGROUP DESTROY can make a blocked reader servable
    // (as in Redis, which signals only those): XACK, XCLAIM, XREADGROUP... wake nobody.
    let signals = spec.group != "stream" || matches!(spec.name, "xadd" | "destroy");
    if signals && server.blocking.any() {
        if everything {
            server.blocking.signal_all();
        } else {
            for i in spec.key_indices(args.len()) {
                server.blocking.signal(db_index, &args[i]);
            }
        }
    }
    // Keyspace-wide commands (FLUSHDB, SWAPDB...) and the other database of MOVE/COPY touch
    // the watched keys they affect themselves, while they hold the locks.
    // Keys reported as modified are exact (SMOVE that adds nothing leaves its destination
    // untouched); a command that reported none falls back to all its key arguments.
    let watches = &server.keyspace.watches;
    if watches.any() {
        if !modified.is_empty() {
            for (db, key) in modified {
                watches.touch(*db, key, false);
            }
        } else if !spec.has_flag(flags::ALL_KEYS) {
            for i in spec.key_indices(args.len()) {
                watches.touch(db_index, &args[i], false);
            }
        }
    }
}
