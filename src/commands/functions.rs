//! Functions: FCALL, FCALL_RO and FUNCTION LOAD / DELETE / LIST / DUMP / RESTORE / FLUSH /
//! STATS / KILL. FCALL runs like EVAL (all shards locked, script gate, busy state); the
//! libraries live in `crate::scripting::functions`.

use super::args::is;
use super::flags::*;
use super::scripting::keys_and_args;
use super::server::reply_help;
use super::{CmdError, CmdResult, CommandSpec, Ctx};
use crate::scripting::functions::{dump, parse_dump, Functions};
use crate::scripting::run::{self, Target};

pub static COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("fcall", fcall).internal(ALL_KEYS | SCRIPT_RUN).getkeys(super::key_specs::procs::numkeys_at_2),
    CommandSpec::new("fcall_ro", fcall_ro)
        .internal(ALL_KEYS | SCRIPT_RUN)
        .getkeys(super::key_specs::procs::numkeys_at_2),
    CommandSpec::new("function", super::server::container_help).subs(FUNCTION_SUBS),
];

static FUNCTION_SUBS: &[CommandSpec] = &[
    CommandSpec::new("load", function_load),
    CommandSpec::new("delete", function_delete),
    CommandSpec::new("list", function_list),
    CommandSpec::new("dump", function_dump),
    CommandSpec::new("restore", function_restore),
    CommandSpec::new("flush", function_flush),
    CommandSpec::new("stats", function_stats),
    CommandSpec::new("kill", function_kill),
    CommandSpec::new("help", function_help),
];

fn fcall(ctx: &mut Ctx) -> CmdResult {
    fcall_generic(ctx, false)
}

fn fcall_ro(ctx: &mut Ctx) -> CmdResult {
    fcall_generic(ctx, true)
}

fn fcall_generic(ctx: &mut Ctx, ro: bool) -> CmdResult {
    let args = ctx.args;
    let server = ctx.server;
    let mut guard = server.scripting.functions.lock();
    if guard.is_none() {
        *guard = Some(Functions::new().map_err(|e| CmdError::new(e.to_string()))?);
    }
    let Some(f) = guard.as_mut() else {
        return Err(CmdError::new("Function not found"));
    };
    let Some(info) = f.get(&args[1]) else {
        return Err(CmdError::new("Function not found"));
    };
    if crate::util::num::parse_i64(&args[2]).is_none() {
        return Err(CmdError::new("Bad number of keys provided"));
    }
    let (keys, argv) = keys_and_args(args)?;
    let target = Target {
        lua: &f.lua,
        api: &f.api,
        func: &info.func,
        name: &info.name,
        is_eval: false,
        flags: info.flags,
        ro_command: ro,
    };
    run::run(ctx, target, keys, argv)
}

/// Run `op` on the libraries (created on first use).
fn with<R>(ctx: &Ctx, op: impl FnOnce(&mut Functions) -> R) -> Result<R, CmdError> {
    ctx.server.scripting.with_functions(op).map_err(CmdError::new)
}

fn function_load(ctx: &mut Ctx) -> CmdResult {
    let args = ctx.args;
    let mut replace = false;
    let mut i = 2;
    while i < args.len() - 1 {
        if is(&args[i], "replace") {
            replace = true;
            i += 1;
        } else {
            return Err(CmdError::new(format!("Unknown option given: {}", String::from_utf8_lossy(&args[i]))));
        }
    }
    if i != args.len() - 1 {
        return Err(CmdError::new("Function code is missing"));
    }
    let code = args[i].clone();
    // From a master or the AOF the library loads however long its code runs (Redis 7.2).
    let untimed = ctx.client.must_obey();
    let name = with(ctx, |f| if untimed { f.load_untimed(&code, replace) } else { f.load(&code, replace) })?
        .map_err(CmdError::new)?;
    ctx.db.touch_dirty(1);
    ctx.reply.bulk(name.as_bytes());
    Ok(())
}

fn function_delete(ctx: &mut Ctx) -> CmdResult {
    let name = String::from_utf8_lossy(&ctx.args[2]).into_owned();
    if !with(ctx, |f| f.delete(&name))? {
        return Err(CmdError::new("Library not found"));
    }
    ctx.db.touch_dirty(1);
    ctx.reply.ok();
    Ok(())
}

struct LibView {
    name: String,
    code: bytes::Bytes,
    functions: Vec<(String, Option<Vec<u8>>, u32)>,
}

fn function_list(ctx: &mut Ctx) -> CmdResult {
    let args = ctx.args;
    let (mut with_code, mut pattern) = (false, None);
    let mut i = 2;
    while i < args.len() {
        if !with_code && is(&args[i], "withcode") {
            with_code = true;
        } else if pattern.is_none() && is(&args[i], "libraryname") {
            if i >= args.len() - 1 {
                return Err(CmdError::new("library name argument was not given"));
            }
            i += 1;
            pattern = Some(args[i].clone());
        } else {
            return Err(CmdError::new(format!("Unknown argument {}", String::from_utf8_lossy(&args[i]))));
        }
        i += 1;
    }
    let libs: Vec<LibView> = with(ctx, |f| {
        f.libraries
            .values()
            .filter(|l| pattern.as_ref().is_none_or(|p| crate::util::glob::glob_match(p, l.name.as_bytes(), false)))
            .map(|l| LibView {
                name: l.name.clone(),
                code: l.code.clone(),
                functions: l.functions.values().map(|fi| (fi.name.clone(), fi.desc.clone(), fi.flags)).collect(),
            })
            .collect()
    })?;
    let r = &mut *ctx.reply;
    r.array(libs.len());
    for l in libs {
        r.map(if with_code { 4 } else { 3 });
        r.bulk(b"library_name");
        r.bulk(l.name.as_bytes());
        r.bulk(b"engine");
        r.bulk(b"LUA");
        r.bulk(b"functions");
        r.array(l.functions.len());
        for (name, desc, flags) in l.functions {
            r.map(3);
            r.bulk(b"name");
            r.bulk(name.as_bytes());
            r.bulk(b"description");
            match desc {
                Some(d) => r.bulk(&d),
                None => r.null(),
            }
            r.bulk(b"flags");
            let names: Vec<&str> =
                crate::scripting::flags::NAMES.iter().filter(|(f, _)| flags & f != 0).map(|(_, n)| *n).collect();
            r.set(names.len());
            for n in names {
                r.simple(n);
            }
        }
        if with_code {
            r.bulk(b"library_code");
            r.bulk(&l.code);
        }
    }
    Ok(())
}

fn function_dump(ctx: &mut Ctx) -> CmdResult {
    let sources: Vec<bytes::Bytes> = with(ctx, |f| f.libraries.values().map(|l| l.code.clone()).collect())?;
    let refs: Vec<&[u8]> = sources.iter().map(|s| &s[..]).collect();
    ctx.reply.bulk(&dump(&refs));
    Ok(())
}

fn function_restore(ctx: &mut Ctx) -> CmdResult {
    let args = ctx.args;
    if args.len() > 4 {
        return Err(CmdError::new(format!(
            "unknown subcommand or wrong number of arguments for '{}'. Try FUNCTION HELP.",
            super::args::echo(&args[1])
        )));
    }
    let policy = match args.get(3) {
        None => "append",
        Some(p) if is(p, "append") => "append",
        Some(p) if is(p, "replace") => "replace",
        Some(p) if is(p, "flush") => "flush",
        Some(_) => {
            return Err(CmdError::new("Wrong restore policy given, value should be either FLUSH, APPEND or REPLACE."))
        }
    };
    let sources = parse_dump(&args[2]).map_err(CmdError::new)?;
    with(ctx, |f| f.restore(sources, policy))?.map_err(CmdError::new)?;
    ctx.db.touch_dirty(1);
    ctx.reply.ok();
    Ok(())
}

fn function_flush(ctx: &mut Ctx) -> CmdResult {
    let args = ctx.args;
    if args.len() > 3 {
        return Err(CmdError::new("unknown subcommand or wrong number of arguments for 'flush'. Try FUNCTION HELP."));
    }
    if args.len() == 3 && !is(&args[2], "async") && !is(&args[2], "sync") {
        return Err(CmdError::new("FUNCTION FLUSH only supports SYNC|ASYNC option"));
    }
    ctx.server.scripting.flush_functions();
    ctx.db.touch_dirty(1);
    ctx.reply.ok();
    Ok(())
}

fn function_stats(ctx: &mut Ctx) -> CmdResult {
    let scripting = &ctx.server.scripting;
    let running = scripting.running_info();
    let (libs, funcs) = scripting.function_counts();
    let r = &mut *ctx.reply;
    r.map(2);
    r.bulk(b"running_script");
    match running {
        Some((name, argv, ms)) => {
            r.map(3);
            r.bulk(b"name");
            r.bulk(name.as_bytes());
            r.bulk(b"command");
            r.array(argv.len());
            for a in &argv {
                r.bulk(a);
            }
            r.bulk(b"duration_ms");
            r.int(ms as i64);
        }
        None => r.null(),
    }
    r.bulk(b"engines");
    r.map(1);
    r.bulk(b"LUA");
    r.map(2);
    r.bulk(b"libraries_count");
    r.int(libs as i64);
    r.bulk(b"functions_count");
    r.int(funcs as i64);
    Ok(())
}

fn function_kill(ctx: &mut Ctx) -> CmdResult {
    ctx.server.scripting.busy.kill(false).map_err(CmdError::new)?;
    ctx.reply.ok();
    Ok(())
}

fn function_help(ctx: &mut Ctx) -> CmdResult {
    reply_help(
        ctx,
        "FUNCTION",
        &[
            "LOAD [REPLACE] <FUNCTION CODE>",
            "    Create a new library with the given library name and code.",
            "DELETE <LIBRARY NAME>",
            "    Delete the given library.",
            "LIST [LIBRARYNAME PATTERN] [WITHCODE]",
            "    Return general information on all the libraries:",
            "    * Library name",
            "    * The engine used to run the Library",
            "    * Library description",
            "    * Functions list",
            "    * Library code (if WITHCODE is given)",
            "    It also possible to get only function that matches a pattern using LIBRARYNAME argument.",
            "STATS",
            "    Return information about the current function running:",
            "    * Function name",
            "    * Command used to run the function",
            "    * Duration in MS that the function is running",
            "    If no function is running, return nil",
            "    In addition, returns a list of available engines.",
            "KILL",
            "    Kill the current running function.",
            "FLUSH [ASYNC|SYNC]",
            "    Delete all the libraries.",
            "    When called without the optional mode argument, the behavior is determined by the",
            "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
            "    * ASYNC: Asynchronously flush the libraries.",
            "    * SYNC: Synchronously flush the libraries.",
            "DUMP",
            "    Return a serialized payload representing the current libraries, can be restored using FUNCTION RESTORE command",
            "RESTORE <PAYLOAD> [FLUSH|APPEND|REPLACE]",
            "    Restore the libraries represented by the given payload, it is possible to give a restore policy to",
            "    control how to handle existing libraries (default APPEND):",
            "    * FLUSH: delete all existing libraries.",
            "    * APPEND: appends the restored libraries to the existing libraries. On collision, abort.",
            "    * REPLACE: appends the restored libraries to the existing libraries, On collision, replace the old",
            "      libraries with the new libraries (notice that even on this option there is a chance of failure",
            "      in case of functions name collision with another library).",
        ],
    );
    Ok(())
}
