//! COMMAND and its subcommands, answered from the command table.

use super::args::{self, is};
use super::flags;
use super::key_specs::{self, BeginSearch, FindKeys, KeySpec, Keys};
use super::table::{lookup_args, table, Command};
use super::{CmdError, CmdResult, CommandSpec, Ctx};
use crate::protocol::ReplySink;
use crate::util::glob::glob_match;

pub static COMMANDS: &[CommandSpec] = &[CommandSpec::new("command", command_all).subs(COMMAND_SUBS)];

static COMMAND_SUBS: &[CommandSpec] = &[
    CommandSpec::new("count", command_count),
    CommandSpec::new("info", command_info),
    CommandSpec::new("docs", command_docs),
    CommandSpec::new("list", command_list),
    CommandSpec::new("getkeys", command_getkeys),
    CommandSpec::new("getkeysandflags", command_getkeysandflags),
    CommandSpec::new("help", command_help),
];

/// COMMAND INFO's entry for a command (Redis's addReplyCommandInfo).
fn reply_info(r: &mut ReplySink, cmd: &Command) {
    let m = cmd.meta;
    r.array(10);
    r.bulk(cmd.full_name.as_bytes());
    r.int(m.arity as i64);
    let shown = m.flags & !flags::HIDDEN;
    let names: Vec<&str> = flags::NAMES.iter().filter(|(f, _)| shown & f != 0).map(|(_, n)| *n).collect();
    r.set(names.len());
    for n in names {
        r.simple(n);
    }
    for v in m.legacy_range {
        r.int(v as i64);
    }
    let cats: Vec<&str> = cmd.acl_categories().collect();
    r.set(cats.len());
    for c in cats {
        r.simple(&format!("@{c}"));
    }
    r.set(m.tips.len());
    for t in &m.tips {
        r.bulk(t.as_bytes());
    }
    r.set(m.key_specs.len());
    for ks in &m.key_specs {
        reply_key_spec(r, ks);
    }
    // A container's subcommands are an array; any other command has an empty set there
    // (addReplyCommandSubCommands), which RESP3 tells apart.
    if cmd.subcommands.is_empty() {
        r.set(0);
    } else {
        r.array(cmd.subcommands.len());
    }
    for sub in sorted(cmd.subcommands.values()) {
        reply_info(r, sub);
    }
}

fn reply_key_spec(r: &mut ReplySink, ks: &KeySpec) {
    r.map(if ks.notes.is_some() { 4 } else { 3 });
    if let Some(notes) = &ks.notes {
        r.bulk(b"notes");
        r.bulk(notes.as_bytes());
    }
    r.bulk(b"flags");
    reply_key_flags(r, ks.flags);
    r.bulk(b"begin_search");
    r.map(2);
    r.bulk(b"type");
    match &ks.begin {
        BeginSearch::Index(pos) => {
            r.bulk(b"index");
            r.bulk(b"spec");
            r.map(1);
            r.bulk(b"index");
            r.int(*pos as i64);
        }
        BeginSearch::Keyword { keyword, startfrom } => {
            r.bulk(b"keyword");
            r.bulk(b"spec");
            r.map(2);
            r.bulk(b"keyword");
            r.bulk(keyword.as_bytes());
            r.bulk(b"startfrom");
            r.int(*startfrom as i64);
        }
        BeginSearch::Unknown => {
            r.bulk(b"unknown");
            r.bulk(b"spec");
            r.map(0);
        }
    }
    r.bulk(b"find_keys");
    r.map(2);
    r.bulk(b"type");
    match &ks.find {
        FindKeys::Range { lastkey, keystep, limit } => {
            r.bulk(b"range");
            r.bulk(b"spec");
            r.map(3);
            for (name, v) in [("lastkey", lastkey), ("keystep", keystep), ("limit", limit)] {
                r.bulk(name.as_bytes());
                r.int(*v as i64);
            }
        }
        FindKeys::Keynum { keynumidx, firstkey, keystep } => {
            r.bulk(b"keynum");
            r.bulk(b"spec");
            r.map(3);
            for (name, v) in [("keynumidx", keynumidx), ("firstkey", firstkey), ("keystep", keystep)] {
                r.bulk(name.as_bytes());
                r.int(*v as i64);
            }
        }
        FindKeys::Unknown => {
            r.bulk(b"unknown");
            r.bulk(b"spec");
            r.map(0);
        }
    }
}

fn reply_key_flags(r: &mut ReplySink, f: u32) {
    let names: Vec<&str> = key_specs::flag_names(f).collect();
    r.set(names.len());
    for n in names {
        r.simple(n);
    }
}

/// COMMAND DOCS' entry: the documentation map, with the implemented subcommands added.
fn reply_docs(r: &mut ReplySink, cmd: &Command) {
    let entries = cmd.meta.docs.entries();
    r.map(entries.len() + usize::from(!cmd.subcommands.is_empty()));
    for (k, v) in entries {
        k.reply(r);
        v.reply(r);
    }
    if !cmd.subcommands.is_empty() {
        r.bulk(b"subcommands");
        r.map(cmd.subcommands.len());
        for sub in sorted(cmd.subcommands.values()) {
            r.bulk(sub.full_name.as_bytes());
            reply_docs(r, sub);
        }
    }
}

fn sorted<'a>(it: impl Iterator<Item = &'a Command>) -> Vec<&'a Command> {
    let mut v: Vec<&Command> = it.collect();
    v.sort_by(|a, b| a.full_name.cmp(&b.full_name));
    v
}

/// Find a command or subcommand by `name` or `parent|sub`.
fn find(name: &[u8]) -> Option<&'static Command> {
    let name = std::str::from_utf8(name).ok()?;
    match name.split_once('|') {
        Some((p, s)) => table().lookup(p.as_bytes())?.subcommand(s.as_bytes()),
        None => table().lookup(name.as_bytes()),
    }
}

fn command_all(ctx: &mut Ctx) -> CmdResult {
    let all = sorted(table().iter());
    ctx.reply.array(all.len());
    for c in all {
        reply_info(ctx.reply, c);
    }
    Ok(())
}

fn command_count(ctx: &mut Ctx) -> CmdResult {
    ctx.reply.int(table().len() as i64);
    Ok(())
}

fn command_info(ctx: &mut Ctx) -> CmdResult {
    let args = ctx.args;
    if args.len() == 2 {
        return command_all(ctx);
    }
    ctx.reply.array(args.len() - 2);
    for a in &args[2..] {
        match find(a) {
            Some(c) => reply_info(ctx.reply, c),
            None => ctx.reply.null(),
        }
    }
    Ok(())
}

fn command_docs(ctx: &mut Ctx) -> CmdResult {
    let args = ctx.args;
    let cmds: Vec<&Command> =
        if args.len() == 2 { sorted(table().iter()) } else { args[2..].iter().filter_map(|a| find(a)).collect() };
    ctx.reply.map(cmds.len());
    for c in cmds {
        ctx.reply.bulk(c.full_name.as_bytes());
        reply_docs(ctx.reply, c);
    }
    Ok(())
}

fn command_list(ctx: &mut Ctx) -> CmdResult {
    let args = ctx.args;
    let mut names: Vec<&str> = Vec::new();
    let all = sorted(table().iter());
    let push_all = |names: &mut Vec<&'static str>, keep: &dyn Fn(&Command) -> bool| {
        for c in &all {
            if keep(c) {
                names.push(c.full_name.as_str());
            }
            for s in sorted(c.subcommands.values()) {
                if keep(s) {
                    names.push(s.full_name.as_str());
                }
            }
        }
    };
    match args.len() {
        2 => push_all(&mut names, &|_| true),
        5 if is(&args[2], "filterby") => {
            let v = &args[4];
            if is(&args[3], "module") {
            } else if is(&args[3], "aclcat") {
                let cat = args::text(v).to_ascii_lowercase();
                push_all(&mut names, &|c| c.acl_categories().any(|x| x == cat));
            } else if is(&args[3], "pattern") {
                push_all(&mut names, &|c| glob_match(v, c.full_name.as_bytes(), true));
            } else {
                return Err(CmdError::new(super::errors::SYNTAX));
            }
        }
        _ => return Err(CmdError::new(super::errors::SYNTAX)),
    }
    ctx.reply.array(names.len());
    for n in names {
        ctx.reply.bulk(n.as_bytes());
    }
    Ok(())
}

/// The command named by COMMAND GETKEYS[ANDFLAGS] and its keys (Redis's getKeysSubcommandImpl).
fn getkeys_of(args: &[bytes::Bytes]) -> Result<Keys, CmdError> {
    let target = &args[2..];
    let cmd = lookup_args(target).ok_or_else(|| CmdError::new("Invalid command specified"))?;
    if !key_specs::may_have_keys(&cmd.meta.key_specs, cmd.spec.getkeys) {
        return Err(CmdError::new("The command has no key arguments"));
    }
    if !cmd.arity_ok(target.len()) {
        return Err(CmdError::new("Invalid number of arguments specified for command"));
    }
    let keys = cmd.reported_keys(target);
    if keys.is_empty() && !cmd.has_flag(flags::NO_MANDATORY_KEYS) {
        return Err(CmdError::new("Invalid arguments specified for command"));
    }
    Ok(keys)
}

fn command_getkeys(ctx: &mut Ctx) -> CmdResult {
    let args = ctx.args;
    let keys = getkeys_of(args)?;
    ctx.reply.array(keys.len());
    for k in keys {
        ctx.reply.bulk(&args[2 + k.pos]);
    }
    Ok(())
}

fn command_getkeysandflags(ctx: &mut Ctx) -> CmdResult {
    let args = ctx.args;
    let keys = getkeys_of(args)?;
    ctx.reply.array(keys.len());
    for k in keys {
        ctx.reply.array(2);
        ctx.reply.bulk(&args[2 + k.pos]);
        reply_key_flags(ctx.reply, k.flags);
    }
    Ok(())
}

fn command_help(ctx: &mut Ctx) -> CmdResult {
    super::server::reply_help(
        ctx,
        "COMMAND",
        &[
            "(no subcommand)",
            "    Return details about all Redis commands.",
            "COUNT",
            "    Return the total number of commands in this Redis server.",
            "LIST",
            "    Return a list of all commands in this Redis server.",
            "INFO [<command-name> ...]",
            "    Return details about multiple Redis commands.",
            "    If no command names are given, documentation details for all",
            "    commands are returned.",
            "DOCS [<command-name> ...]",
            "    Return documentation details about multiple Redis commands.",
            "    If no command names are given, documentation details for all",
            "    commands are returned.",
            "GETKEYS <full-command>",
            "    Return the keys from a full Redis command.",
            "GETKEYSANDFLAGS <full-command>",
            "    Return the keys and the access flags from a full Redis command.",
        ],
    );
    Ok(())
}
