//! EVAL scripts: EVAL, EVALSHA, EVAL_RO, EVALSHA_RO and SCRIPT LOAD / EXISTS / FLUSH / KILL /
//! DEBUG. The script commands are flagged `ALL_KEYS | SCRIPT_RUN`: the dispatcher takes the
//! script gate and marks the script running before locking every shard, so the script runs
//! atomically and other clients can be told BUSY without waiting for a lock. The Lua side
//! lives in `crate::scripting`.

use bytes::Bytes;

use super::args::{self, is};
use super::flags::*;
use super::server::reply_help;
use super::{getkeys, CmdError, CmdResult, CommandSpec, Ctx};
use crate::scripting::run::{self, Target};

const S: &[&str] = &["scripting"];

pub static COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("eval", -3, NOSCRIPT | SKIP_MONITOR | MAY_REPLICATE | STALE | ALL_KEYS | SCRIPT_RUN, eval)
        .movable(getkeys::numkeys2)
        .acl(S)
        .group("scripting")
        .doc("2.6.0", "Executes a server-side Lua script."),
    CommandSpec::new("evalsha", -3, NOSCRIPT | SKIP_MONITOR | MAY_REPLICATE | STALE | ALL_KEYS | SCRIPT_RUN, evalsha)
        .movable(getkeys::numkeys2)
        .acl(S)
        .group("scripting")
        .doc("2.6.0", "Executes a server-side Lua script by SHA1 digest."),
    CommandSpec::new("eval_ro", -3, NOSCRIPT | SKIP_MONITOR | STALE | READONLY | ALL_KEYS | SCRIPT_RUN, eval_ro)
        .movable(getkeys::numkeys2)
        .acl(S)
        .group("scripting")
        .doc("7.0.0", "Executes a read-only server-side Lua script."),
    CommandSpec::new("evalsha_ro", -3, NOSCRIPT | SKIP_MONITOR | STALE | READONLY | ALL_KEYS | SCRIPT_RUN, evalsha_ro)
        .movable(getkeys::numkeys2)
        .acl(S)
        .group("scripting")
        .doc("7.0.0", "Executes a read-only server-side Lua script by SHA1 digest."),
    CommandSpec::new("script", -2, 0, super::server::container_help)
        .acl(S)
        .group("scripting")
        .doc("2.6.0", "A container for Lua scripts management commands.")
        .subs(SCRIPT_SUBS),
];

static SCRIPT_SUBS: &[CommandSpec] = &[
    CommandSpec::new("load", 3, NOSCRIPT | STALE, script_load)
        .acl(S)
        .group("scripting")
        .doc("2.6.0", "Loads a server-side Lua script to the script cache."),
    CommandSpec::new("exists", -3, NOSCRIPT, script_exists)
        .acl(S)
        .group("scripting")
        .doc("2.6.0", "Determines whether server-side Lua scripts exist in the script cache."),
    CommandSpec::new("flush", -2, NOSCRIPT, script_flush)
        .acl(S)
        .group("scripting")
        .doc("2.6.0", "Removes all server-side Lua scripts from the script cache."),
    CommandSpec::new("kill", 2, NOSCRIPT | ALLOW_BUSY, script_kill)
        .acl(S)
        .group("scripting")
        .doc("2.6.0", "Terminates a server-side Lua script during execution."),
    CommandSpec::new("debug", 3, NOSCRIPT, script_debug)
        .acl(S)
        .group("scripting")
        .doc("3.2.0", "Sets the debug mode of server-side Lua scripts."),
    CommandSpec::new("help", 2, LOADING | STALE, script_help)
        .acl(S)
        .group("scripting")
        .doc("5.0.0", "Returns helpful text about the different subcommands."),
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

fn eval_generic(ctx: &mut Ctx, by_sha: bool, ro: bool) -> CmdResult {
    let args = ctx.args;
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
    let sha: &str = if by_sha {
        // Usually given in lower case already: look it up without a copy.
        match std::str::from_utf8(&args[1]) {
            Ok(s) if !s.bytes().any(|c| c.is_ascii_uppercase()) => s,
            _ => {
                loaded = String::from_utf8_lossy(&args[1]).to_ascii_lowercase();
                &loaded
            }
        }
    } else {
        loaded = engine.load(&args[1]).map_err(CmdError::new)?;
        &loaded
    };
    let Some(script) = engine.scripts.get(sha) else {
        return Err(CmdError::new("-NOSCRIPT No matching script. Please use EVAL."));
    };
    let target = Target {
        lua: &engine.lua,
        api: &engine.api,
        func: script.func.clone(),
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

fn script_debug(ctx: &mut Ctx) -> CmdResult {
    let a = &ctx.args[2];
    if is(a, "no") {
        ctx.reply.ok();
        return Ok(());
    }
    if is(a, "yes") || is(a, "sync") {
        return Err(CmdError::new("The Lua debugger is not supported by this server"));
    }
    Err(CmdError::new("Use SCRIPT DEBUG YES/SYNC/NO"))
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
