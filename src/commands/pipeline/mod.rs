//! The command pipeline: the one path every command takes, whoever issues it — a client, EXEC,
//! a script's `redis.call`, our master's stream or the AOF loader ([`Caller`]).
//!
//! 1. [`resolve`]: the command or subcommand, and its arity.
//! 2. [`admit`]: every generic check, in Redis's order, driven by flags; the caller decides which
//!    apply. A refusal is answered (and counted) in one place.
//! 3. [`run`]: lock the shards of the command's keys (from its key specs), run the handler on the
//!    locked view ([`call_locked`]: the handler, its effect, its statistics), release the locks,
//!    then wake the clients blocked on what it wrote and invalidate the transactions watching it.
//!
//! EXEC and scripts call [`call_locked`] on the view they already hold.

mod admit;
pub mod prefetch;

pub use super::flags;
pub use super::table::Command;
pub use super::Action;
pub use admit::{busy_threshold, resolve, Admitted, Caller, Refusal, ScriptCall};

/// What the server needs from the command layer besides running commands: the ACL hooks of a
/// connection's life (its default user, TLS client certificates, requirepass, the command
/// catalog ACL rules are written against) and MIGRATE's cached connections. The server reaches
/// the command layer only through this module.
pub mod services {
    pub use crate::commands::acl::{
        apply_requirepass, auth_required, authenticate_certificate, catalog as acl_catalog, set_default_auth,
    };
    pub use crate::commands::cluster::blocked_redirect;
    pub use crate::commands::migrate::{cached_sockets as migrate_cached_sockets, close_timed_out_sockets};
}

use bytes::Bytes;
use std::time::Instant;

use crate::keyspace::clock::{self, Stamp};
use crate::keyspace::ready::Ready;
use crate::keyspace::Modified;
use crate::util::lean_vec::LeanVec;

use super::Ctx;
use crate::protocol::ReplySink;
use crate::server::Server;
use crate::session::client::{Client, ReplyMode};
use crate::session::Written;

/// Run one request from a client (or from our master: `caller`) and write its reply.
pub fn execute_as(
    server: &Server,
    client: &mut Client,
    caller: Caller,
    args: &[Bytes],
    reply: &mut ReplySink,
) -> Action {
    if args.is_empty() {
        return Action::None;
    }
    if matches!(caller, Caller::Client | Caller::Master) && admit::cross_protocol_attack(client, &args[0]) {
        return Action::Drop;
    }
    let mark = reply.len();
    let errors_before = reply.errors.len();
    let skipped = client.reply_mode == ReplyMode::Skip;
    let admitted =
        resolve(args, caller).and_then(|cmd| admit::admit(server, client, caller, cmd, args).map(|a| (cmd, a)));
    let (action, cmd) = match admitted {
        Ok((cmd, Admitted::Run)) => (run(server, client, cmd, args, reply), Some(cmd)),
        Ok((cmd, Admitted::Queue)) => {
            if let Some(m) = client.multi.as_mut() {
                m.commands.push(args.to_vec());
            }
            reply.simple("QUEUED");
            (Action::None, Some(cmd))
        }
        Ok((_, Admitted::Wait(action))) => {
            // Nothing ran and nothing was answered: the connection waits and retries.
            reply.errors.truncate(errors_before);
            return action;
        }
        Err((cmd, text)) => {
            refuse(server, client, cmd, args, &text, reply);
            (Action::None, cmd)
        }
    };
    for code in &reply.errors[errors_before..] {
        server.count_error(code);
    }
    reply.errors.truncate(errors_before);
    // Subscription notifications are pushes: CLIENT REPLY OFF/SKIP does not silence them.
    if !cmd.is_some_and(|c| c.has_flag(flags::PUSH_REPLY)) {
        match client.reply_mode {
            ReplyMode::On => {}
            ReplyMode::Off => reply.truncate(mark),
            ReplyMode::Skip => {
                reply.truncate(mark);
                client.reply_mode = ReplyMode::On;
            }
            // CLIENT REPLY SKIP itself (perhaps skipped too): the command after it is skipped.
            ReplyMode::SkipNext => {
                if skipped {
                    reply.truncate(mark);
                }
                client.reply_mode = ReplyMode::Skip;
            }
        }
    }
    if let Some(t) = client.tracking.as_mut() {
        // CLIENT CACHING applies to the next command (or the next transaction) only.
        if client.multi.is_none() && !cmd.is_some_and(|c| c.has_flag(flags::KEEPS_CACHING)) {
            t.caching = false;
        }
    }
    // BCAST messages go out once the clients this command woke have run their commands too
    // (Redis sends them before the event loop sleeps, after serving blocked clients: a key a
    // woken client popped is its write for NOLOOP); the last of them to settle sends them.
    // A client connection sends them itself once its batch of pipelined requests is done (or
    // before it waits), as Redis sends them once per event-loop cycle.
    let tracking = &server.tracking;
    if caller != Caller::Client && tracking.any() && !server.blocking.has_unsettled() {
        tracking.flush_bcast();
    }
    if client.asking {
        super::cluster::after_command(client, cmd);
    }
    // CLIENT LIST's view is published once per batch of pipelined requests by the connection.
    client.last_cmd = cmd.map_or("NULL", |c| c.full_name.as_str());
    action
}

/// Every command and subcommand of the table (INFO commandstats).
pub fn all_commands() -> impl Iterator<Item = &'static Command> {
    super::table::table().iter().flat_map(|c| std::iter::once(c).chain(c.subcommands.values()))
}

/// A connection is closing: leave its transaction's watches and its subscriptions.
pub fn client_closed(server: &Server, client: &mut Client) {
    super::transactions::unwatch_all(&server.keyspace, client);
    super::pubsub::unsubscribe_all(server, client);
}

/// Run one request from a client connection.
pub fn execute(server: &Server, client: &mut Client, args: &[Bytes], reply: &mut ReplySink) -> Action {
    execute_as(server, client, Caller::Client, args, reply)
}

/// Answer a refused command. A refusal inside MULTI aborts the transaction (Redis's
/// flagTransaction); a refused EXEC discards it and says why (Redis's execCommandAbort), in a
/// transaction or not: outside one it still drops the watched keys and is shown to MONITOR.
fn refuse(
    server: &Server,
    client: &mut Client,
    cmd: Option<&'static Command>,
    args: &[Bytes],
    text: &str,
    reply: &mut ReplySink,
) {
    if let Some(cmd) = cmd {
        cmd.stats.record_rejected();
    }
    if cmd.is_some_and(|c| c.has_flag(flags::TX_EXEC)) && client.multi.is_some() && super::cluster::is_redirect(text) {
        // A cluster redirection discards the transaction and is the answer itself.
        client.multi = None;
        super::transactions::unwatch_all(&server.keyspace, client);
        reply.error(text);
        return;
    }
    if cmd.is_some_and(|c| c.has_flag(flags::TX_EXEC)) {
        client.multi = None;
        super::transactions::unwatch_all(&server.keyspace, client);
        let why = text.strip_prefix('-').unwrap_or(text);
        reply.error(&format!("-EXECABORT Transaction discarded because of: {why}"));
        crate::server::monitor::exec_aborted(server, client, args);
        return;
    }
    if let Some(m) = client.multi.as_mut() {
        m.aborted = true;
    }
    reply.error(text);
}

/// Run a command the server itself issues on a client's behalf (putting back what a blocked
/// client took when its reply could not be written): the lookup, no admission checks.
pub fn execute_internal(server: &Server, client: &mut Client, args: &[Bytes], reply: &mut ReplySink) {
    if let Ok(cmd) = resolve(args, Caller::AofLoad) {
        run(server, client, cmd, args, reply);
    }
}

/// Whether this request may run a Lua script outside a transaction (the connection then runs
/// it on a script stack, see [`flags::SCRIPT_RUN`] and [`flags::SCRIPT_STACK`]).
pub fn runs_script(client: &Client, args: &[Bytes]) -> bool {
    // EVAL*, FCALL*, DEBUG: a first-letter test spares most other commands a table lookup.
    client.multi.is_none()
        && matches!(args.first().and_then(|a| a.first()), Some(b'e' | b'E' | b'f' | b'F' | b'd' | b'D'))
        && super::table::table().lookup(&args[0]).is_some_and(|c| c.has_flag(flags::SCRIPT_RUN | flags::SCRIPT_STACK))
}

/// `redis.acl_check_cmd` from a script: may the script's caller run `args`? Redis 7.2's
/// luaRedisAclCheckCmdPermissionsCommand: the command or subcommand looked up without an arity
/// check, then the caller's ACL permissions for it, its keys and its channels. None: no such
/// command.
pub fn acl_permits(server: &Server, client: &Client, args: &[Bytes]) -> Option<bool> {
    let cmd = super::table::lookup_args(args)?;
    Some(super::acl::check(server, client, cmd, args).is_ok())
}

/// `redis.call` from a script: resolve and admit the command as a script call, then run it on
/// the script's view. Err is the refusal's text.
#[allow(clippy::too_many_arguments)]
pub fn script_call(
    server: &Server,
    client: &mut Client,
    call: ScriptCall,
    args: &[Bytes],
    reply: &mut ReplySink,
    db: &mut crate::keyspace::Db<'_>,
    start: Instant,
) -> Result<(&'static Command, Outcome), String> {
    let caller = Caller::Script(call);
    let admitted = resolve(args, caller).and_then(|cmd| admit::admit(server, client, caller, cmd, args).map(|_| cmd));
    let admitted = admitted.and_then(|cmd| {
        super::cluster::script_check(server, client, cmd, args, db).map(|_| cmd).map_err(|t| (Some(cmd), t))
    });
    let cmd = match admitted {
        Ok(cmd) => cmd,
        Err((cmd, text)) => {
            if let Some(cmd) = cmd {
                cmd.stats.record_rejected();
            }
            return Err(text);
        }
    };
    Ok((cmd, call_locked(server, client, cmd, args, reply, db, Some(start))))
}

/// A command queued in MULTI, about to be run by EXEC: what admission still checks at that
/// moment (ACL permissions, which may have changed since it was queued). Err is the reply.
pub fn admit_queued(server: &Server, client: &Client, cmd: &'static Command, args: &[Bytes]) -> Result<(), String> {
    admit::admit(server, client, Caller::Exec, cmd, args).map(|_| ()).map_err(|(_, text)| text)
}

/// A write done inside EXEC or a script: what [`after_write`] needs once the locks are released.
pub fn written(mut modified: LeanVec<Modified>, mut ready: LeanVec<Ready>) -> Written {
    Written { modified: modified.take(), ready: ready.take() }
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
    pub modified: LeanVec<Modified>,
    /// The keys it made ready for blocked clients (see `keyspace::ready`).
    pub ready: LeanVec<Ready>,
}

impl Outcome {
    /// Whether the command touched keys others may be waiting on or watching: it made a key
    /// ready for blocked clients (a lazy expiry does, without changing the dataset), or it
    /// reported a key as modified (Redis's signalModifiedKey runs regardless of
    /// `server.dirty`: LTRIM that keeps every element still invalidates a WATCH).
    pub fn touched(&self) -> bool {
        !self.modified.is_empty() || !self.ready.is_empty()
    }
}

/// The shards a command must lock: those of its keys (from its key specs), or every one; and
/// its first key with its place (the view's key hint).
fn shards_of(
    client: &Client,
    cmd: &Command,
    args: &[Bytes],
) -> (Option<crate::keyspace::ShardSet>, Option<(usize, crate::keyspace::KeyPlace)>) {
    if cmd.has_flag(flags::TX_EXEC) {
        return (super::transactions::exec_shards(client), None);
    }
    if cmd.has_flag(flags::ALL_KEYS) && !cmd.has_flag(flags::SCRIPT_RUN) {
        return (None, None);
    }
    let mut set = crate::keyspace::ShardSet::default();
    let mut first = None;
    cmd.for_each_key(args, |i| {
        if first.is_none() {
            let place = crate::keyspace::locate(&args[i]);
            set.insert(place.shard);
            first = Some((i, place));
        } else {
            set.insert(crate::keyspace::shard_of(&args[i]));
        }
    });
    (Some(set), first)
}

/// Lock what the command needs, run it, release the locks (publishing its effects), then wake
/// the clients waiting on what it wrote.
fn run(server: &Server, client: &mut Client, cmd: &'static Command, args: &[Bytes], reply: &mut ReplySink) -> Action {
    let _watched = crate::server::watchdog::busy(cmd.name());
    client.running = cmd.full_name.as_str();
    let ks = &server.keyspace;
    let db_index = client.db;
    // Scripts: one at a time, marked running before they wait for the shard locks, so other
    // clients wait (or get BUSY) before taking any lock themselves.
    let busy = &server.scripting.busy;
    // Never block a worker thread on the gate: another worker's script may run for long.
    let script = cmd.has_flag(flags::SCRIPT_RUN);
    let _gate = if script {
        match busy.try_gate() {
            Some(g) => Some(g),
            None => return Action::WaitScript,
        }
    } else {
        None
    };
    // Only a script reads the clock here (its run is timed from before it waits for locks);
    // any other command's time is read once, by call_locked.
    let start = script.then(Instant::now);
    let _running = start.map(|t| busy.mark_at(cmd.spec.name.starts_with("fcall"), t));
    // A script locks its declared keys now and any other shard when it touches it. The
    // view's time is set by call_locked.
    let (shards, first_key) = shards_of(client, cmd, args);
    // The view is dropped (its locks released) where it lies at the end of this block:
    // `drop(db)` moved its ~280 bytes first.
    let (outcome, seq_before, offset_before) = {
        let mut db = ks.lock_for_command(db_index, shards, script);
        // `args` outlive `db` (see Db::set_key_hint).
        if let Some((i, place)) = first_key {
            db.set_key_hint(&args[i], place);
        }
        let (seq_before, offset_before) = (ks.effects.seq(), server.repl.offset());
        let mark = db.effects_len();
        let ran = (call_locked(server, client, cmd, args, reply, &mut db, start), seq_before, offset_before);
        // One execution unit: a command that propagated several effects (the DELs of keys it
        // found expired and its own write, the HDELs of several fields) is replayed atomically,
        // in MULTI ... EXEC, as Redis's propagatePendingCommands does. EXEC and scripts wrap
        // their own; SCAN and RANDOMKEY's DELs stay apart (touches_arbitrary_keys). (The count
        // first: nearly every command records one effect or none.)
        if db.effects_len() > mark + 1
            && !cmd.has_flag(flags::TX_EXEC | flags::SCRIPT_RUN | flags::TOUCHES_ARBITRARY_KEYS)
        {
            db.wrap_effects_since(mark);
        }
        ran
    };
    // (Looked at first: a drain costs more than the check, and these are nearly always empty.)
    if !client.kill_after.is_empty() {
        for h in client.kill_after.drain(..) {
            server.repl.kill_client(&h);
        }
    }
    // What WAIT / WAITAOF wait for: the stream position after the last command that
    // propagated something (an EXEC or script too, whatever its last command did).
    if ks.effects.seq() != seq_before || outcome.wrote {
        client.woff = ks.effects.seq();
    }
    if server.repl.offset() != offset_before {
        client.repl_woff = server.repl.offset();
    }
    if outcome.touched() {
        tell(server, &outcome.ready, &outcome.modified);
    }
    if !client.after_exec.is_empty() {
        // Drained in place: the list keeps its capacity for the next EXEC or script (one that
        // grew past a small batch gives it back).
        let mut done = std::mem::take(&mut client.after_exec);
        for w in done.drain(..) {
            after_write(server, &w);
        }
        if done.capacity() <= 64 {
            client.after_exec = done;
        }
    }
    outcome.action
}

/// Run a command against an already locked view (EXEC runs all its commands on one): the
/// handler, the propagation of its effect, its statistics. `frozen` is the time the command
/// sees when it is not its own start (Redis 7.2 freezes the time for a whole EXEC or script).
pub fn call_locked(
    server: &Server,
    client: &mut Client,
    cmd: &'static Command,
    args: &[Bytes],
    reply: &mut ReplySink,
    db: &mut crate::keyspace::Db<'_>,
    frozen: Option<Instant>,
) -> Outcome {
    let began = Stamp::now();
    client.batch_began.get_or_insert(began);
    db.begin_command(client.db);
    db.set_time(frozen.map_or_else(|| clock::unix_ms_at_stamp(began), clock::unix_ms_at));
    db.no_touch = client.no_touch;
    db.expire_mode = crate::replication::expire_mode(server, client, cmd);
    // A script's commands run as the script's own client: the caller is the running client,
    // not the writer (Redis's lua client passed to signalModifiedKey).
    db.by = crate::keyspace::ModifiedBy { current: client.id(), writer: if client.script { 0 } else { client.id() } };
    let errors_before = reply.errors.len();
    let uncounted_before = reply.uncounted_errors;
    crate::server::monitor::before(server, client, cmd, args);
    let mut ctx = Ctx { server, client, args, db, reply, action: Action::None };
    let handler_failed = match (cmd.spec.handler)(&mut ctx) {
        Err(e) => {
            ctx.reply.error(&e.0);
            true
        }
        Ok(()) => false,
    };
    let took = Stamp::now().since(began);
    if ctx.db.dirty > 0 && !ctx.db.has_custom_effect() && ctx.db.propagating() {
        ctx.db.propagate(args.to_vec());
    }
    // Moved out (not taken): the view's leftover `Action::None` would be dropped out of line.
    let action = ctx.action;
    // Client-side caching: remember the keys a read-only command read, while its locks are
    // still held (a concurrent write then always finds them and invalidates them).
    // Scripts remember their declared keys themselves, and only if they ran a read command.
    if cmd.has_flag(flags::READONLY) && !cmd.has_flag(flags::PUBSUB | flags::SCRIPT_RUN) {
        if let Some(t) = &ctx.client.tracking {
            if t.remembers() {
                remember_keys(server, ctx.client.id(), cmd, args);
            }
        }
    }
    // EXEC fails only by its own error: its queued commands' errors are theirs.
    let failed = if cmd.has_flag(flags::TX_EXEC) {
        handler_failed
    } else {
        ctx.reply.errors.len() > errors_before || ctx.reply.uncounted_errors > uncounted_before
    };
    let wrote = ctx.db.dirty > 0;
    // An attempt that blocked counts no time: Redis 7.2 adds a blocking command's time when it
    // is finally served, and none if it is then refused (its ACL rules changed meanwhile).
    let us = if matches!(action, Action::Block(_)) { 0 } else { took.as_micros() as u64 };
    cmd.stats.record_call(us, failed);
    let modified = ctx.db.take_modified();
    let ready = ctx.db.take_ready();
    crate::server::observe::command_done(server, ctx.client, cmd, args, took, &action);
    Outcome { action, wrote, modified, ready }
}

/// Redis 7.2 counts a blocking command in INFO commandstats once, when it finally runs, times
/// out or is unblocked (#11012), not for the attempt that blocked: `delta` -1 undoes the count
/// of that attempt, +1 counts the timeout or CLIENT UNBLOCK ERROR reply (`failed` for the
/// latter).
pub fn adjust_blocked_call_stats(args: &[Bytes], delta: i64, failed: bool) {
    let Ok(cmd) = resolve(args, Caller::AofLoad) else {
        return;
    };
    if delta < 0 {
        cmd.stats.uncount_call();
    } else {
        cmd.stats.record_call(0, failed);
    }
}

/// Record the keys of a read-only command for a tracking client.
pub fn remember_keys(server: &Server, id: u64, cmd: &Command, args: &[Bytes]) {
    let mut keys = smallvec::SmallVec::<[&Bytes; 4]>::new();
    cmd.for_each_key(args, |i| keys.push(&args[i]));
    server.tracking.remember(id, keys.into_iter());
}

/// After a write (and once its locks are released): wake the clients blocked on the keys it
/// made ready and invalidate the transactions watching the keys it modified.
pub fn after_write(server: &Server, w: &Written) {
    tell(server, &w.ready, &w.modified);
}

fn tell(server: &Server, ready: &[Ready], modified: &[Modified]) {
    // Recorded only while a client waits for the kind of value concerned (see `keyspace::ready`).
    if !ready.is_empty() {
        server.blocking.ready(ready);
    }
    // Keyspace-wide commands (FLUSHDB, SWAPDB...) and the other database of MOVE/COPY touch
    // the watched keys they affect themselves, while they hold the locks. Otherwise the keys
    // the command signalled (`Db::signal_modified`, Redis's signalModifiedKey) are exactly
    // those a WATCH loses: SMOVE that adds nothing leaves its destination untouched, and
    // XACK, XCLAIM or XGROUP change a stream without touching its watchers, as in Redis.
    let watches = &server.keyspace.watches;
    if watches.any() {
        for m in modified {
            watches.touch(m.db, &m.key, m.gone);
        }
    }
}

#[cfg(test)]
mod tests;
