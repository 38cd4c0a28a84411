//! Running one script (EVAL) or function (FCALL) for a client: Redis's scriptPrepareForRun
//! checks, the functions that act on the running script (setresp, set_repl, math.random), the
//! kill hook, the conversion of the result (or of the error, with its "script: ..." context)
//! into the reply, and the publication of the script's effects as one MULTI/EXEC batch.

use bytes::Bytes;
use mlua::{ffi, Function, HookTriggers, Lua, MultiValue, Table, Value};
use std::sync::atomic::Ordering;
use std::time::Instant;

use super::call::{self, RunState};
use super::engine::Api;
use super::flags;
use super::libs;
use crate::commands::{CmdError, CmdResult, Ctx};
use crate::session::client::Client;

/// What to run.
pub struct Target<'a> {
    pub lua: &'a Lua,
    pub api: &'a Api,
    pub func: Function,
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
    let mut client = Client::new(ctx.client.handle.clone(), true);
    // The script's commands run as the caller's ACL user (Redis's scriptCall).
    client.user = ctx.client.user.clone();
    client.db = ctx.client.db;
    client.script = true;
    client.readonly = ctx.client.readonly;
    // A script run by our master or the AOF loader is obeyed as they are.
    client.is_master = ctx.client.is_master;
    client.loading_aof = ctx.client.loading_aof;
    client.asking = ctx.client.asking;
    client.slot = crate::commands::cluster::declared_slot(server, keys);
    client.cross_slot = t.flags & (flags::ALLOW_CROSS_SLOT | flags::EVAL_COMPAT) != 0;
    let start = busy.started_at().unwrap_or_else(Instant::now);
    let read_only = t.ro_command || t.flags & flags::NO_WRITES != 0;
    let mark = ctx.db.effects_len();
    let mut state = RunState::new(server, client, read_only, start, ctx.db);
    state.deny_oom = oom && t.flags & flags::ALLOW_OOM == 0;
    let outcome = {
        let _active = call::activate(&mut state);
        call_runner(lua, api, &t.func, keys, args, t.is_eval)
    };
    if outcome.is_err() {
        // Raised past the runner (a kill): the runner could not mark the run over.
        let _ = api.ctx.raw_set("running", false);
    }
    let st = state;
    if st.rehook {
        install_hook(lua);
    }
    if runs.is_multiple_of(GC_PERIOD) {
        // As Redis: a GC step every GC_PERIOD scripts keeps the heap small (a basic step: a
        // larger one would finish a whole cycle of a small heap each time).
        // SAFETY: a protected call that only runs the collector.
        let _ = unsafe {
            lua.exec_raw::<()>((), |state| {
                ffi::lua_gc(state, ffi::LUA_GCSTEP, 0);
            })
        };
    }
    // The heap the script grew (or left garbage in) stays out of used_memory and maxmemory.
    let heap = if t.is_eval {
        crate::metrics::memory::ScriptHeap::Eval
    } else {
        crate::metrics::memory::ScriptHeap::Functions
    };
    crate::metrics::memory::set_script_heap(heap, lua.used_memory());
    let resp3 = st.resp3;
    // Client-side caching: the caller tracks the keys the script's read commands read (Redis
    // 7.2's rule), while the locks are still held.
    if !st.read_keys.is_empty() && ctx.client.tracking.as_ref().is_some_and(|t| t.remembers()) {
        server.tracking.remember(ctx.client.id(), st.read_keys.iter());
    }
    ctx.client.after_exec.extend(st.queued);
    match outcome {
        Ok((true, v)) => super::reply::write(&v, ctx.reply, resp3),
        Ok((false, Value::Table(e))) => {
            let msg: Option<mlua::LuaString> = e.raw_get("err").ok();
            // Redis formats it with %s: its bytes, up to a NUL (util::bytetext).
            let msg = msg
                .map(|m| crate::util::bytetext::c_string(&m.as_bytes(), usize::MAX))
                .unwrap_or_else(|| "ERR unknown error".into());
            let mut text = format!("-{msg}");
            let source: Option<String> = e.raw_get("source").ok();
            let line: Value = e.raw_get("line").unwrap_or(Value::Nil);
            let line = match line {
                Value::Integer(i) => Some(i.to_string()),
                Value::Number(n) => Some((n as i64).to_string()),
                Value::String(s) => Some(s.to_string_lossy()),
                _ => None,
            };
            if let (Some(source), Some(line)) = (source, line) {
                text.push_str(&format!(" script: {}, on {}:{}.", t.name, source, line));
            }
            ctx.reply.error(&text);
            if super::reply::ignores_stats(&e) {
                ctx.reply.errors.pop();
                ctx.reply.uncounted_errors += 1;
            }
        }
        Ok((false, other)) => {
            let msg = match &other {
                Value::String(s) => crate::util::bytetext::c_string(&s.as_bytes(), 100),
                _ => "execution failure".into(),
            };
            ctx.reply.error(&format!("Error running script {}, {}\n", t.name, msg));
            let _ = lua.gc_collect();
        }
        // Once killed, the hook fires everywhere, also in the runner after the script's frames
        // are gone: the kill error then arrives here.
        Err(_) if api.ctx.raw_get::<bool>("killed").unwrap_or(false) => {
            ctx.reply.error("Script killed by user with SCRIPT KILL...");
        }
        Err(e) => {
            let msg: String = e.to_string().chars().take(100).collect();
            ctx.reply.error(&format!("Error running script {}, {}\n", t.name, msg));
            let _ = lua.gc_collect();
        }
    }
    // The script's writes replay atomically; the script command itself is not propagated.
    ctx.db.wrap_effects_since(mark);
    ctx.db.begin_command(ctx.client.db);
    Ok(())
}

/// Run a script as the prelude's `run0` / `run2` do, in one protected call with the raw API:
/// KEYS and ARGV (globals of an EVAL script, arguments of a function), `ctx.killed` and
/// `ctx.running`, and `lua_pcall` with Redis's error handler. Returns (ok, result or error).
fn call_runner(
    lua: &Lua,
    api: &Api,
    func: &Function,
    keys: &[Bytes],
    args: &[Bytes],
    is_eval: bool,
) -> mlua::Result<(bool, Value)> {
    use std::os::raw::{c_char, c_int};
    // SAFETY: exec_raw runs the closure protected, with stack space checked and the five values
    // pushed at 1-5; everything it builds comes from borrowed slices (nothing to drop if Lua
    // raises); it leaves exactly (ok, result) on the stack.
    unsafe {
        lua.exec_raw::<(bool, Value)>((&api.handler, func, &api.ctx, &api.real, &api.names), |state| {
            use super::engine::names;
            const HANDLER: c_int = 1;
            const FUNC: c_int = 2;
            const CTX: c_int = 3;
            const REAL: c_int = 4;
            const NAMES: c_int = 5;
            let set = |t: c_int, name: i32| {
                // value on top → t[name] = value (raw: these tables have no metatable)
                ffi::lua_rawgeti(state, NAMES, name as _);
                ffi::lua_insert(state, -2);
                ffi::lua_rawset(state, t);
            };
            ffi::lua_checkstack(state, 8);
            ffi::lua_pushboolean(state, 0);
            set(CTX, names::KILLED);
            ffi::lua_pushboolean(state, 1);
            set(CTX, names::RUNNING);
            for items in [keys, args] {
                ffi::lua_createtable(state, items.len().min(1 << 24) as c_int, 0);
                for (i, a) in items.iter().enumerate() {
                    ffi::lua_pushlstring_(state, a.as_ptr() as *const c_char, a.len());
                    ffi::lua_rawseti_(state, -2, (i + 1) as c_int);
                }
            }
            // Stack: handler, func, ctx, real, names, keys (6), args (7).
            let status = if is_eval {
                ffi::lua_pushvalue(state, 6);
                set(REAL, names::KEYS);
                ffi::lua_pushvalue(state, 7);
                set(REAL, names::ARGV);
                ffi::lua_pushvalue(state, FUNC);
                ffi::lua_pcall(state, 0, 1, HANDLER)
            } else {
                ffi::lua_pushvalue(state, FUNC);
                ffi::lua_pushvalue(state, 6);
                ffi::lua_pushvalue(state, 7);
                ffi::lua_pcall(state, 2, 1, HANDLER)
            };
            // Stack: handler, func, ctx, real, names, keys, args, result (8).
            ffi::lua_pushboolean(state, 0);
            set(CTX, names::RUNNING);
            ffi::lua_pushboolean(state, (status == 0) as c_int);
            ffi::lua_replace(state, 1);
            ffi::lua_replace(state, 2);
            ffi::lua_settop(state, 2);
        })
    }
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
            let active = call::deactivate();
            super::fiber::step_aside();
            call::reactivate(active);
        }
        if !call::with_active(|st| killed(st)).unwrap_or(false) {
            return Ok(mlua::VmState::Continue);
        }
        crate::server::log::warning("Lua script killed by user with SCRIPT KILL.");
        call::with_active(|st| st.rehook = true);
        let _ = lua.set_hook(HookTriggers::new().every_line().every_nth_instruction(1), |lua, _| {
            mark_killed(lua);
            Err(mlua::Error::runtime("Script killed by user with SCRIPT KILL..."))
        });
        mark_killed(lua);
        Err(mlua::Error::runtime("Script killed by user with SCRIPT KILL..."))
    });
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
            return libs::fail_table(lua, "redis.set_repl() requires two arguments.");
        }
        let flags = match a.front().and_then(libs::arg_num).map(|n| n as i64) {
            Some(f @ 0..=3) => f as u8,
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
            return libs::bad_arg(
                lua,
                1,
                "randomseed",
                &format!("number expected, got {}", libs::type_name(a.front())),
            );
        };
        match call::with_active(|st| st.server.scripting.rand.lock().seed(seed as i64 as i32)) {
            Some(()) => libs::ok(lua, ()),
            None => libs::fail(lua, "math.randomseed can only be called inside a script invocation"),
        }
    })?;
    let acl_check_cmd = lua.create_function(|lua, _a: MultiValue| libs::ok(lua, true))?;
    ctx.raw_set("setresp", setresp)?;
    ctx.raw_set("set_repl", set_repl)?;
    ctx.raw_set("random", random)?;
    ctx.raw_set("randomseed", randomseed)?;
    ctx.raw_set("acl_check_cmd", acl_check_cmd)?;
    Ok(())
}

/// math.random as Redis's redis_math_random (on the server-wide redisLrand48 state).
fn random(lua: &Lua, r: f64, a: MultiValue) -> libs::LResult {
    let int = |i: usize| a.get(i).and_then(libs::arg_num).map(|n| n as i64 as i32);
    match a.len() {
        0 => libs::ok(lua, r),
        1 => {
            let Some(u) = int(0) else {
                return libs::bad_arg(
                    lua,
                    1,
                    "random",
                    &format!("number expected, got {}", libs::type_name(a.front())),
                );
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
