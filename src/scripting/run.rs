//! Running one script (EVAL) or function (FCALL) for a client: Redis's scriptPrepareForRun
//! checks, the functions that act on the running script (setresp, set_repl, math.random), the
//! kill hook, the conversion of the result (or of the error, with its "script: ..." context)
//! into the reply, and the publication of the script's effects as one MULTI/EXEC batch.

use bytes::Bytes;
use mlua::{ffi, HookTriggers, Lua, MultiValue, Table};
use std::os::raw::{c_char, c_int, c_void};
use std::sync::atomic::Ordering;
use std::time::Instant;

use super::call::{self, RunState};
use super::engine::{names, Api};
use super::flags;
use super::libs;
use super::reply::{self, ScriptError};
use crate::commands::{CmdError, CmdResult, Ctx};
use crate::protocol::ReplySink;
use crate::session::client::Client;

/// What to run.
pub struct Target<'a> {
    pub lua: &'a Lua,
    pub api: &'a Api,
    /// The script's (or function's) Lua function: its registry reference.
    pub func: &'a mlua::RegistryKey,
    /// The script's SHA-1 (EVAL) or the function's name, for error messages.
    pub name: &'a str,
    pub is_eval: bool,
    pub flags: u32,
    /// Called as EVAL_RO / EVALSHA_RO / FCALL_RO.
    pub ro_command: bool,
}

/// Scripts between two garbage collection steps (Redis's LUA_GC_CYCLE_PERIOD).
const GC_PERIOD: u64 = 50;

/// Instructions between two checks of the kill flag (Redis uses the same period).
const HOOK_PERIOD: u32 = 100_000;

/// Run `t` with `keys` and `args`, writing its reply into the context.
pub fn run(ctx: &mut Ctx, t: Target, keys: &[Bytes], args: &[Bytes]) -> CmdResult {
    if t.flags & (flags::EVAL_COMPAT | flags::NO_CLUSTER) == flags::NO_CLUSTER && ctx.server.cluster.get().is_some() {
        return Err(CmdError::new("Can not run script on cluster, 'no-cluster' flag is set."));
    }
    let server = ctx.server;
    // Redis's scriptPrepareForRun: the replica checks the command pipeline could not make from
    // the declared flags (inside EXEC, from our master).
    let stale = server.replica.is_replica()
        && !server.replica.link_up.load(Ordering::Relaxed)
        && !server.config.load().replica_serve_stale_data;
    if t.flags & flags::EVAL_COMPAT != 0 {
        if stale {
            return Err(CmdError::new(
                "-MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'.",
            ));
        }
    } else {
        if stale && t.flags & flags::ALLOW_STALE == 0 {
            return Err(CmdError::new("-MASTERDOWN Link with MASTER is down, replica-serve-stale-data is set to 'no' and 'allow-stale' flag is not set on the script."));
        }
        if t.flags & flags::NO_WRITES == 0
            && server.replica.is_replica()
            && server.config.load().replica_read_only
            && !ctx.client.must_obey()
        {
            return Err(CmdError::new("-READONLY Can not run script with write flag on readonly replica"));
        }
        // A script that may write while persistence fails.
        if t.flags & flags::NO_WRITES == 0 && !ctx.client.must_obey() {
            if let Some(e) = crate::server::disk::write_denied(server) {
                return Err(CmdError::new(e.script_message()));
            }
        }
        if t.flags & flags::NO_WRITES == 0 && t.ro_command {
            return Err(CmdError::new("Can not execute a script with write flag using *_ro command."));
        }
    }
    // The OOM state when the script starts (Redis's pre_command_oom_state). A script with a
    // shebang that may write must declare allow-oom to run then (outside EXEC the pipeline
    // has already refused it, with the plain OOM error).
    let oom = server.out_of_memory.load(Ordering::Relaxed) && server.maxmemory.load(Ordering::Relaxed) > 0;
    let allow_oom = t.flags & (flags::ALLOW_OOM | flags::NO_WRITES) != 0;
    if oom && !allow_oom && t.flags & flags::EVAL_COMPAT == 0 {
        return Err(CmdError::new(
            "-OOM allow-oom flag is not set on the script, can not run it when used memory > 'maxmemory'",
        ));
    }
    let busy = &server.scripting.busy;
    // Marked already by the pipeline, except inside EXEC.
    let _running = (!busy.is_running()).then(|| busy.mark(!t.is_eval));
    if !t.is_eval {
        *busy.info.lock() = Some((t.name.to_string(), ctx.args.to_vec()));
    }
    let runs = server.scripting.calls.fetch_add(1, Ordering::Relaxed) + 1;
    let lua = t.lua;
    let api = t.api;
    let mut client = Client::for_script(ctx.client.handle.clone());
    // The script's commands run as the caller's ACL user (Redis's scriptCall).
    client.user = ctx.client.user.clone();
    // The command the caller runs (EVAL, FCALL, EXEC...): ACL LOG entries name it.
    client.running = ctx.client.running;
    client.db = ctx.client.db;
    client.script = true;
    client.readonly = ctx.client.readonly;
    // A script run by our master or the AOF loader is obeyed as they are.
    client.is_master = ctx.client.is_master;
    client.loading_aof = ctx.client.loading_aof;
    client.asking = ctx.client.asking;
    // CLUSTER SLOTS / NODES / SHARDS answer with the ports of the caller's connection (TLS or
    // plain), as Redis 7.2's shouldReturnTlsInfo looks at the caller (#12569).
    client.tls = ctx.client.tls;
    client.slot = crate::commands::cluster::declared_slot(server, keys);
    client.cross_slot = t.flags & (flags::ALLOW_CROSS_SLOT | flags::EVAL_COMPAT) != 0;
    let start = busy.started_at().unwrap_or_else(Instant::now);
    // TIME answers the caller's frozen time (its EXEC's), else the script's start.
    let caller_us = ctx.client.frozen_unix_us();
    client.frozen_time = Some(match ctx.client.frozen_time {
        Some((at, _)) => (at, caller_us),
        None => (start, None),
    });
    let read_only = t.ro_command || t.flags & flags::NO_WRITES != 0;
    let mark = ctx.db.effects_len();
    // The caller's after-EXEC list takes the script's writes (after any of its EXEC's).
    let queued = std::mem::take(&mut ctx.client.after_exec);
    let mut state = RunState::new(server, &mut client, queued, read_only, start, t.name, ctx.db);
    state.deny_oom = oom && t.flags & flags::ALLOW_OOM == 0;
    // Under the debugger (an EVAL only), its hook replaces the kill hook for the run.
    let debugging = t.is_eval && super::ldb::is_active();
    if debugging {
        state.debug_no_writes = super::ldb::forked();
        // SAFETY: the runner's state is the engine's main state, held by this run.
        unsafe { super::ldb::set_hook(api.runner.state()) };
    }
    // As Redis: a GC step every GC_PERIOD scripts keeps the heap small (a basic step: a larger
    // one would finish a whole cycle of a small heap each time).
    let gc = runs.is_multiple_of(GC_PERIOD);
    let outcome = {
        let _active = call::activate(&mut state);
        api.runner.run(t.func, keys, args, t.is_eval, gc, ctx.reply)
    };
    if matches!(outcome, Ran::Raised(_)) {
        // Raised past the runner: it could not mark the run over.
        let _ = api.ctx.raw_set("running", false);
    }
    let mut st = state;
    if st.rehook || debugging {
        install_hook(lua);
    }
    // The heap the script grew (or left garbage in) stays out of used_memory and maxmemory.
    let heap = if t.is_eval {
        crate::metrics::memory::ScriptHeap::Eval
    } else {
        crate::metrics::memory::ScriptHeap::Functions
    };
    crate::metrics::memory::set_script_heap(heap, lua.used_memory());
    // Client-side caching: the caller tracks the keys the script's read commands read (Redis
    // 7.2's rule), while the locks are still held.
    if !st.read_keys.is_empty() && ctx.client.tracking.as_ref().is_some_and(|t| t.remembers()) {
        server.tracking.remember(ctx.client.id(), st.read_keys.iter());
    }
    ctx.client.after_exec = std::mem::take(&mut st.queued);
    match outcome {
        // The runner wrote the result.
        Ran::Ok => {}
        Ran::Failed(ScriptError::Table { err, source, line, ignore_stats }) => {
            // Redis formats it with %s: its bytes, up to a NUL (util::bytetext).
            let msg = err
                .map(|m| crate::util::bytetext::c_string(&m, usize::MAX))
                .unwrap_or_else(|| "ERR unknown error".into());
            let mut text = format!("-{msg}");
            if let (Some(source), Some(line)) = (source, line) {
                text.push_str(&format!(" script: {}, on {}:{}.", t.name, source, line));
            }
            ctx.reply.error(&text);
            if ignore_stats {
                ctx.reply.errors.pop();
                ctx.reply.uncounted_errors += 1;
            }
        }
        Ran::Failed(other) => {
            let msg = match &other {
                ScriptError::String(s) => crate::util::bytetext::c_string(s, 100),
                _ => "execution failure".into(),
            };
            ctx.reply.error(&running_error(t.name, &msg));
            let _ = lua.gc_collect();
        }
        Ran::Raised(_) if api.ctx.raw_get::<bool>("killed").unwrap_or(false) => {
            ctx.reply.error("Script killed by user with SCRIPT KILL...");
        }
        Ran::Raised(e) => {
            let msg: String = e.chars().take(100).collect();
            ctx.reply.error(&running_error(t.name, &msg));
            let _ = lua.gc_collect();
        }
    }
    // The script's writes replay atomically; the script command itself is not propagated.
    ctx.db.wrap_effects_since(mark);
    ctx.db.begin_command(ctx.client.db);
    Ok(())
}

/// How a run through [`Runner::run`] ended.
pub enum Ran {
    /// The script returned; its result is written.
    Ok,
    /// The script raised (its error handler's value).
    Failed(ScriptError),
    /// The runner itself raised (out of memory): the message as mlua's errors show it.
    Raised(String),
}

/// An engine's way into script runs through the C API, without mlua's per-call costs (two C
/// closures and a protected call of its own, a reference per pushed value, the result as an
/// mlua value): its main Lua state and one C closure, made once, whose upvalues are the error
/// handler, `ctx`, the real globals and the names table. A run is one `lua_pcall` of that
/// closure, which sets KEYS and ARGV, calls the script under Redis's error handler as the
/// prelude's `run0` / `run2` would, and converts the result (or the error) straight off the
/// stack.
pub struct Runner {
    state: *mut ffi::lua_State,
    /// The closure's registry reference.
    closure: c_int,
}

// SAFETY: the state is used only by whoever holds its engine (behind the engine's mutex), as
// mlua's `Lua` (which is Send) uses it.
unsafe impl Send for Runner {}

/// What a run hands the closure (as a light userdata).
struct Call<'a> {
    keys: &'a [Bytes],
    args: &'a [Bytes],
    is_eval: bool,
    gc: bool,
    out: &'a mut ReplySink,
    error: Option<ScriptError>,
}

impl Runner {
    pub fn new(lua: &Lua, handler: &mlua::Function, ctx: &Table, real: &Table, names: &Table) -> mlua::Result<Runner> {
        let mut state = std::ptr::null_mut();
        let mut closure = 0;
        // SAFETY: exec_raw runs the closure protected with the four values pushed (the
        // closure's upvalues); it pops them all and leaves nothing. The state it gets is the
        // engine's main state (no coroutine runs while an engine is made).
        unsafe {
            lua.exec_raw::<()>((handler, ctx, real, names), |l| {
                ffi::lua_pushcclosure(l, run_closure, 4);
                closure = ffi::luaL_ref(l, ffi::LUA_REGISTRYINDEX);
                state = l;
            })?;
        }
        Ok(Runner { state, closure })
    }

    /// The engine's main state (where scripts run).
    pub fn state(&self) -> *mut ffi::lua_State {
        self.state
    }

    /// Run `func` (a registry reference) with `keys` and `args` (globals KEYS and ARGV of an
    /// EVAL script, arguments of a function); its result goes to `out`. With `gc`, a GC step
    /// follows. The caller holds the engine (and has activated the run's state).
    pub fn run(
        &self,
        func: &mlua::RegistryKey,
        keys: &[Bytes],
        args: &[Bytes],
        is_eval: bool,
        gc: bool,
        out: &mut ReplySink,
    ) -> Ran {
        let l = self.state;
        let (len, errors, uncounted) = (out.buf.len(), out.errors.len(), out.uncounted_errors);
        let mut call = Call { keys, args, is_eval, gc, out, error: None };
        // SAFETY: the state outlives its engine's runner; nothing runs on it meanwhile (the
        // caller holds the engine). Three slots are pushed on the main state's stack, which
        // has LUA_MINSTACK free (nothing is left on it between calls); the closure runs
        // protected and only reads `call` through the pointer while this frame waits.
        let raised = unsafe {
            let top = ffi::lua_gettop(l);
            ffi::lua_rawgeti(l, ffi::LUA_REGISTRYINDEX, self.closure as _);
            ffi::lua_pushlightuserdata(l, &mut call as *mut Call<'_> as *mut c_void);
            ffi::lua_rawgeti(l, ffi::LUA_REGISTRYINDEX, func.id() as _);
            let status = ffi::lua_pcall(l, 2, 0, 0);
            let raised = (status != 0).then(|| {
                let mut n = 0;
                let p = ffi::lua_tolstring(l, -1, &mut n);
                let msg = if p.is_null() {
                    String::from("unknown error")
                } else {
                    String::from_utf8_lossy(std::slice::from_raw_parts(p as *const u8, n)).into_owned()
                };
                match status {
                    ffi::LUA_ERRMEM => format!("memory error: {msg}"),
                    _ => format!("runtime error: {msg}"),
                }
            });
            ffi::lua_settop(l, top);
            raised
        };
        let error = call.error.take();
        match raised {
            Some(msg) => {
                // Whatever the conversion had written when it raised is not a reply.
                let out = call.out;
                out.buf.truncate(len);
                out.errors.truncate(errors);
                out.uncounted_errors = uncounted;
                Ran::Raised(msg)
            }
            None => match error {
                None => Ran::Ok,
                Some(e) => Ran::Failed(e),
            },
        }
    }
}

/// The runner closure: (call, func) → nothing; see [`Runner`].
///
/// SAFETY (for the Lua VM calling it): no value with a destructor is alive in this frame when
/// the Lua API raises (the conversion's own values live in `Call`).
unsafe extern "C-unwind" fn run_closure(l: *mut ffi::lua_State) -> c_int {
    const CALL: c_int = 1;
    const FUNC: c_int = 2;
    const HANDLER: c_int = 3;
    const CTX: c_int = 4;
    const REAL: c_int = 5;
    const NAMES: c_int = 6;
    const KEYS: c_int = 7;
    const ARGV: c_int = 8;
    const RESULT: c_int = 9;
    let call = &mut *(ffi::lua_touserdata(l, CALL) as *mut Call<'_>);
    ffi::lua_checkstack(l, 12);
    for i in 1..=4 {
        ffi::lua_pushvalue(l, ffi::lua_upvalueindex(i));
    }
    let set_flag = |name: i32, b: bool| {
        ffi::lua_rawgeti(l, NAMES, name as _);
        ffi::lua_pushboolean(l, b as c_int);
        ffi::lua_rawset(l, CTX);
    };
    set_flag(names::KILLED, false);
    set_flag(names::RUNNING, true);
    for items in [call.keys, call.args] {
        ffi::lua_createtable(l, items.len().min(1 << 24) as c_int, 0);
        for (i, a) in items.iter().enumerate() {
            ffi::lua_pushlstring_(l, a.as_ptr() as *const c_char, a.len());
            ffi::lua_rawseti_(l, -2, (i + 1) as c_int);
        }
    }
    let status = if call.is_eval {
        // The globals are read-only to scripts; KEYS and ARGV are set past the flag.
        super::readonly::enable(l, REAL, false);
        for (name, t) in [(names::KEYS, KEYS), (names::ARGV, ARGV)] {
            ffi::lua_rawgeti(l, NAMES, name as _);
            ffi::lua_pushvalue(l, t);
            ffi::lua_rawset(l, REAL);
        }
        super::readonly::enable(l, REAL, true);
        ffi::lua_pushvalue(l, FUNC);
        ffi::lua_pcall(l, 0, 1, HANDLER)
    } else {
        ffi::lua_pushvalue(l, FUNC);
        ffi::lua_pushvalue(l, KEYS);
        ffi::lua_pushvalue(l, ARGV);
        ffi::lua_pcall(l, 2, 1, HANDLER)
    };
    set_flag(names::RUNNING, false);
    let st = reply::Stack { state: l, names: NAMES };
    if status == 0 {
        let resp3 = call::with_active(|s| s.resp3).unwrap_or(false);
        reply::write(st, RESULT, call.out, resp3);
    } else {
        call.error = Some(reply::script_error(st, RESULT));
    }
    if call.gc {
        ffi::lua_gc(l, ffi::LUA_GCSTEP, 0);
    }
    0
}

/// Redis's "Error running script <name>, <message>\n" through addReplyErrorFormat, which trims
/// the newlines at its end (the reply's CRLF follows the message, not a space).
fn running_error(name: &str, msg: &str) -> String {
    format!("Error running script {name}, {msg}").trim_end_matches(['\r', '\n']).to_string()
}

/// The kill check every [`HOOK_PERIOD`] instructions, installed once per engine (and again
/// after a kill or a library load replaced it). Once killed, the hook fires on every line and
/// instruction, so a script cannot swallow the error with pcall and carry on. Past
/// busy-reply-threshold the script also steps aside at each check, so the other clients of its
/// worker thread get BUSY and can send SCRIPT KILL (`fiber.rs`).
pub fn install_hook(lua: &Lua) {
    let _ = lua.set_hook(HookTriggers::new().every_nth_instruction(HOOK_PERIOD), |lua, _| {
        let killed = |st: &mut RunState| st.server.scripting.busy.kill.load(Ordering::SeqCst);
        let Some((kill, past)) = call::with_active(|st| {
            let threshold = *st.threshold.get_or_insert_with(|| crate::commands::pipeline::busy_threshold(st.server));
            (killed(st), threshold.is_some_and(|t| st.start.elapsed() >= t))
        }) else {
            return Ok(mlua::VmState::Continue);
        };
        if !kill && past {
            call::with_active(log_timed_out);
            let active = call::deactivate();
            super::fiber::step_aside();
            call::reactivate(active);
            call::with_active(refresh_time);
        }
        if !call::with_active(|st| killed(st)).unwrap_or(false) {
            return Ok(mlua::VmState::Continue);
        }
        crate::server::log::notice("Lua script killed by user with SCRIPT KILL.");
        call::with_active(|st| st.rehook = true);
        let _ = lua.set_hook(HookTriggers::new().every_line().every_nth_instruction(1), |lua, _| {
            mark_killed(lua);
            Err(mlua::Error::runtime("Script killed by user with SCRIPT KILL..."))
        });
        mark_killed(lua);
        Err(mlua::Error::runtime("Script killed by user with SCRIPT KILL..."))
    });
}

/// A script past busy-reply-threshold sees the clock move: Redis 7.2 updates its cached time
/// each time the timed-out script's hook lets other clients in (processEventsWhileBlocked).
fn refresh_time(st: &mut RunState) {
    if let Some((_, us)) = &mut st.client.frozen_time {
        *us = Some(crate::keyspace::clock::unix_us_at(Instant::now()));
    }
}

/// Redis's "Slow script detected" warning, once per run, when it first runs past the
/// threshold.
fn log_timed_out(st: &mut RunState) {
    if std::mem::replace(&mut st.timed_out, true) {
        return;
    }
    let kill = if st.server.scripting.busy.is_function() { "FUNCTION KILL" } else { "SCRIPT KILL" };
    crate::server::log::warning(&format!(
        "Slow script detected: still in execution after {} milliseconds. You can try killing the script using the {kill} command. Script name is: {}.",
        st.start.elapsed().as_millis(),
        st.name
    ));
}

fn mark_killed(lua: &Lua) {
    if let Ok(ctx) = lua.named_registry_value::<mlua::Table>("ferrous_ctx") {
        let _ = ctx.raw_set("killed", true);
    }
}

/// The functions that act on the running script, set once per engine in the prelude's `ctx`
/// (its wrappers answer Redis's "can only be called inside a script invocation" outside runs).
pub fn install_functions(lua: &Lua, ctx: &Table) -> mlua::Result<()> {
    let outside = |lua: &Lua, name: &str| {
        libs::fail_table(lua, &format!("redis.{name} can only be called inside a script invocation"))
    };
    let setresp = lua.create_function(move |lua, a: MultiValue| {
        if a.len() != 1 {
            return libs::fail_table(lua, "redis.setresp() requires one argument.");
        }
        let resp3 = match a.front().and_then(libs::arg_num).map(|n| n as i64) {
            Some(2) => false,
            Some(3) => true,
            _ => return libs::fail_table(lua, "RESP version must be 2 or 3."),
        };
        match call::with_active(|st| st.resp3 = resp3) {
            Some(()) => libs::ok(lua, ()),
            None => outside(lua, "setresp"),
        }
    })?;
    let set_repl = lua.create_function(move |lua, a: MultiValue| {
        if a.len() != 1 {
            return libs::fail_table(lua, "redis.set_repl() requires one argument.");
        }
        // lua_tonumber: what is not a number reads as 0 (REPL_NONE).
        let flags = match a.front().and_then(libs::arg_num).map_or(0, |n| n as i64) {
            f @ 0..=3 => f as u8,
            _ => {
                return libs::fail_table(
                    lua,
                    "Invalid replication flags. Use REPL_AOF, REPL_REPLICA, REPL_ALL or REPL_NONE.",
                )
            }
        };
        match call::with_active(|st| st.repl = flags) {
            Some(()) => libs::ok(lua, ()),
            None => outside(lua, "set_repl"),
        }
    })?;
    let random = lua.create_function(|lua, a: MultiValue| {
        match call::with_active(|st| st.server.scripting.rand.lock().next_unit()) {
            Some(r) => random(lua, r, a),
            None => libs::fail(lua, "math.random can only be called inside a script invocation"),
        }
    })?;
    let randomseed = lua.create_function(|lua, a: MultiValue| {
        let Some(seed) = a.front().and_then(libs::arg_num) else {
            return libs::bad_arg(lua, 1, "randomseed", format!("number expected, got {}", libs::type_name(a.front())));
        };
        match call::with_active(|st| st.server.scripting.rand.lock().seed(seed as i64 as i32)) {
            Some(()) => libs::ok(lua, ()),
            None => libs::fail(lua, "math.randomseed can only be called inside a script invocation"),
        }
    })?;
    ctx.raw_set("setresp", setresp)?;
    ctx.raw_set("set_repl", set_repl)?;
    ctx.raw_set("random", random)?;
    ctx.raw_set("randomseed", randomseed)?;
    Ok(())
}

/// math.random as Redis's redis_math_random (on the server-wide redisLrand48 state).
fn random(lua: &Lua, r: f64, a: MultiValue) -> libs::LResult {
    let int = |i: usize| a.get(i).and_then(libs::arg_num).map(|n| n as i64 as i32);
    match a.len() {
        0 => libs::ok(lua, r),
        1 => {
            let Some(u) = int(0) else {
                return libs::bad_arg(lua, 1, "random", format!("number expected, got {}", libs::type_name(a.front())));
            };
            if u < 1 {
                return libs::bad_arg(lua, 1, "random", "interval is empty");
            }
            libs::ok(lua, (r * u as f64).floor() + 1.0)
        }
        2 => {
            let (Some(l), Some(u)) = (int(0), int(1)) else {
                return libs::bad_arg(lua, 2, "random", "number expected");
            };
            if l > u {
                return libs::bad_arg(lua, 2, "random", "interval is empty");
            }
            libs::ok(lua, (r * (u as f64 - l as f64 + 1.0)).floor() + l as f64)
        }
        _ => libs::fail(lua, "wrong number of arguments"),
    }
}
