//! MODULE: Ferrous loads no Redis modules (they are C shared objects written against Redis's
//! internals), but the command exists as Redis's does: LIST shows none, LOAD/LOADEX fail as a
//! module that cannot be loaded does, UNLOAD finds nothing, and LOAD/LOADEX/UNLOAD are
//! protected by `enable-module-command` (a Redis `protected` command, refused in admission).

use super::flags::PROTECTED;
use super::{CmdError, CmdResult, CommandSpec, Ctx};

pub static COMMANDS: &[CommandSpec] = &[CommandSpec::new("module", super::server::container_help).subs(MODULE_SUBS)];

static MODULE_SUBS: &[CommandSpec] = &[
    CommandSpec::new("help", module_help),
    CommandSpec::new("list", module_list),
    CommandSpec::new("load", module_load).internal(PROTECTED),
    CommandSpec::new("loadex", module_load).internal(PROTECTED),
    CommandSpec::new("unload", module_unload).internal(PROTECTED),
];

fn module_help(ctx: &mut Ctx) -> CmdResult {
    super::server::reply_help(
        ctx,
        "MODULE",
        &[
            "LIST",
            "    Return a list of loaded modules.",
            "LOAD <path> [<arg> ...]",
            "    Load a module library from <path>, passing to it any optional arguments.",
            "LOADEX <path> [[CONFIG NAME VALUE] [CONFIG NAME VALUE]] [ARGS ...]",
            "    Load a module library from <path>, while passing it module configurations and optional arguments.",
            "UNLOAD <name>",
            "    Unload a module.",
        ],
    );
    Ok(())
}

fn module_list(ctx: &mut Ctx) -> CmdResult {
    ctx.reply.array(0);
    Ok(())
}

fn module_load(ctx: &mut Ctx) -> CmdResult {
    crate::server::log::warning(&format!(
        "Module {} failed to load: Ferrous cannot load Redis modules",
        super::args::text(&ctx.args[2])
    ));
    Err(CmdError::new("Error loading the extension. Please check the server logs."))
}

fn module_unload(_ctx: &mut Ctx) -> CmdResult {
    Err(CmdError::new("Error unloading module: no such module with that name"))
}
