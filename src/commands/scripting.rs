//! EVAL scripts: EVAL, EVALSHA, EVAL_RO, EVALSHA_RO and SCRIPT LOAD / EXISTS / FLUSH / KILL /
//! DEBUG. The script commands are flagged `ALL_KEYS | SCRIPT_RUN`: the pipeline takes the
//! script gate and marks the script running before locking every shard, so the script runs
//! atomically and other clients can be told BUSY without waiting for a lock. The Lua side
//! lives in `crate::scripting`.

use bytes::Bytes;

use super::args::{self, is};
use super::flags::*;
use super::server::reply_help;
use super::{CmdError, CmdResult, CommandSpec, Ctx};
use crate::scripting::run::{self, Target};
use crate::session::client::LuaDebug;

pub static COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("eval", eval).internal(ALL_KEYS | SCRIPT_RUN).getkeys(super::key_specs::procs::numkeys_at_2),
    CommandSpec::new("evalsha", evalsha).internal(ALL_KEYS | SCRIPT_RUN).getkeys(super::key_specs::procs::numkeys_at_2),
    CommandSpec::new("eval_ro", eval_ro).internal(ALL_KEYS | SCRIPT_RUN).getkeys(super::key_specs::procs::numkeys_at_2),
    CommandSpec::new("evalsha_ro", evalsha_ro)
        .internal(ALL_KEYS | SCRIPT_RUN)
        .getkeys(super::key_specs::procs::numkeys_at_2),
    CommandSpec::new("script", super::server::container_help).subs(SCRIPT_SUBS),
];

static SCRIPT_SUBS: &[CommandSpec] = &[
    CommandSpec::new("load", script_load),
    CommandSpec::new("exists", script_exists),
    CommandSpec::new("flush", script_flush),
    CommandSpec::new("kill", script_kill),
    CommandSpec::new("debug", script_debug),
    CommandSpec::new("help", script_help),
];

/// Parse `numkeys` and split the keys from the arguments (Redis's evalGenericCommand checks).
pub fn keys_and_args(args: &[Bytes]) -> Result<(&[Bytes], &[Bytes]), CmdError> {
    let n = args::int(&args[2])?;
    let rest = &args[3..];
    if n > rest.len() as i64 {
        return Err(CmdError::new("Number of keys can't be greater than number of args"));
    }
    if n < 0 {
        return Err(CmdError::new("Number of keys can't be negative"));
    }
    Ok(rest.split_at(n as usize))
}

fn eval(ctx: &mut Ctx) -> CmdResult {
    eval_generic(ctx, false, false)
}

fn evalsha(ctx: &mut Ctx) -> CmdResult {
    eval_generic(ctx, true, false)
}

fn eval_ro(ctx: &mut Ctx) -> CmdResult {
    eval_generic(ctx, false, true)
}

fn evalsha_ro(ctx: &mut Ctx) -> CmdResult {
    eval_generic(ctx, true, true)
}

const NOSCRIPT: &str = "-NOSCRIPT No matching script. Please use EVAL.";

fn eval_generic(ctx: &mut Ctx, by_sha: bool, ro: bool) -> CmdResult {
    // SCRIPT DEBUG YES / SYNC: the next EVAL is a debugging session (Redis's evalCommand).
    let debug = ctx.client.lua_debug;
    if debug.on() {
        if by_sha && ctx.args[1].len() != 40 {
            return Err(CmdError::new(NOSCRIPT));
        }
        if by_sha {
            return Err(CmdError::new("Please use EVAL instead of EVALSHA for debugging"));
        }
        let forked = debug == LuaDebug::Yes;
        return crate::scripting::ldb::eval(ctx, forked, |ctx| eval_script(ctx, by_sha, ro));
    }
    eval_script(ctx, by_sha, ro)
}

fn eval_script(ctx: &mut Ctx, by_sha: bool, ro: bool) -> CmdResult {
    let args = ctx.args;
    // Redis's evalShaCommand: a digest of the wrong length cannot match, and says so before
    // the other arguments are read.
    if by_sha && args[1].len() != 40 {
        return Err(CmdError::new(NOSCRIPT));
    }
    let (keys, argv) = keys_and_args(args)?;
    let server = ctx.server;
    let mut guard = server.scripting.eval.lock();
    if guard.is_none() {
        *guard = Some(crate::scripting::engine::EvalEngine::new().map_err(|e| CmdError::new(e.to_string()))?);
    }
    let Some(engine) = guard.as_mut() else {
        return Err(CmdError::new("Lua engine unavailable"));
    };
    let loaded;
    let (sha, script) = if by_sha {
        engine.by_sha(&args[1]).ok_or_else(|| CmdError::new(NOSCRIPT))?
    } else {
        loaded = engine.load(&args[1]).map_err(CmdError::new)?;
        (loaded.as_str(), engine.scripts.get(&loaded).ok_or_else(|| CmdError::new(NOSCRIPT))?)
    };
    let target = Target {
        lua: &engine.lua,
        api: &engine.api,
        func: &script.func,
        name: sha,
        is_eval: true,
        flags: script.flags,
        ro_command: ro,
    };
    run::run(ctx, target, keys, argv)
}

fn script_load(ctx: &mut Ctx) -> CmdResult {
    let body = ctx.args[2].clone();
    let sha = ctx.server.scripting.with_eval(|e| e.load(&body)).map_err(CmdError::new)?.map_err(CmdError::new)?;
    ctx.reply.bulk(sha.as_bytes());
    Ok(())
}

fn script_exists(ctx: &mut Ctx) -> CmdResult {
    let shas: Vec<String> = ctx.args[2..].iter().map(|a| String::from_utf8_lossy(a).to_ascii_lowercase()).collect();
    let found: Vec<bool> = ctx
        .server
        .scripting
        .with_eval(|e| shas.iter().map(|s| e.scripts.contains_key(s)).collect())
        .map_err(CmdError::new)?;
    ctx.reply.array(found.len());
    for f in found {
        ctx.reply.int(f as i64);
    }
    Ok(())
}

fn script_flush(ctx: &mut Ctx) -> CmdResult {
    let args = ctx.args;
    if args.len() > 3 || (args.len() == 3 && !is(&args[2], "sync") && !is(&args[2], "async")) {
        return Err(CmdError::new("SCRIPT FLUSH only support SYNC|ASYNC option"));
    }
    *ctx.server.scripting.eval.lock() = None;
    ctx.server.scripting.note_eval(None);
    ctx.reply.ok();
    Ok(())
}

fn script_kill(ctx: &mut Ctx) -> CmdResult {
    ctx.server.scripting.busy.kill(true).map_err(CmdError::new)?;
    ctx.reply.ok();
    Ok(())
}

/// SCRIPT DEBUG YES / SYNC / NO: the client's next EVAL runs under the Lua debugger
/// (`scripting::ldb`).
fn script_debug(ctx: &mut Ctx) -> CmdResult {
    // Redis's clientHasPendingReplies: the replies of earlier requests of this batch are
    // still here (the session would write before them).
    if !ctx.reply.is_empty() {
        return Err(CmdError::new("SCRIPT DEBUG must be called outside a pipeline"));
    }
    let a = &ctx.args[2];
    let mode = if is(a, "no") {
        LuaDebug::Off
    } else if is(a, "yes") {
        LuaDebug::Yes
    } else if is(a, "sync") {
        LuaDebug::Sync
    } else {
        return Err(CmdError::new("Use SCRIPT DEBUG YES/SYNC/NO"));
    };
    ctx.client.lua_debug = mode;
    ctx.reply.ok();
    Ok(())
}

fn script_help(ctx: &mut Ctx) -> CmdResult {
    reply_help(
        ctx,
        "SCRIPT",
        &[
            "DEBUG (YES|SYNC|NO)",
            "    Set the debug mode for subsequent scripts executed.",
            "EXISTS <sha1> [<sha1> ...]",
            "    Return information about the existence of the scripts in the script cache.",
            "FLUSH [ASYNC|SYNC]",
            "    Flush the Lua scripts cache. Very dangerous on replicas.",
            "    When called without the optional mode argument, the behavior is determined by the",
            "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
            "    * ASYNC: Asynchronously flush the scripts cache.",
            "    * SYNC: Synchronously flush the scripts cache.",
            "KILL",
            "    Kill the currently executing Lua script.",
            "LOAD <script>",
            "    Load a script into the scripts cache without executing it.",
        ],
    );
    Ok(())
}
