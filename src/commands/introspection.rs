//! COMMAND and its subcommands, answered from the command table.

use super::args::{self, is};
use super::flags::{self, *};
use super::table::{table, Command};
use super::{CmdError, CmdResult, CommandSpec, Ctx};
use crate::protocol::ReplySink;
use crate::util::glob::glob_match;

const CN: &[&str] = &["connection"];

pub static COMMANDS: &[CommandSpec] = &[CommandSpec::new("command", -1, LOADING | STALE, command_all)
    .acl(CN)
    .group("server")
    .doc("2.8.13", "Returns detailed information about all commands.")
    .subs(COMMAND_SUBS)];

static COMMAND_SUBS: &[CommandSpec] = &[
    CommandSpec::new("count", 2, LOADING | STALE, command_count)
        .acl(CN)
        .group("server")
        .doc("2.8.13", "Returns a count of commands."),
    CommandSpec::new("info", -2, LOADING | STALE, command_info)
        .acl(CN)
        .group("server")
        .doc("2.8.13", "Returns information about one, multiple or all commands."),
    CommandSpec::new("docs", -2, LOADING | STALE, command_docs)
        .acl(CN)
        .group("server")
        .doc("7.0.0", "Returns documentary information about one, multiple or all commands."),
    CommandSpec::new("list", -2, LOADING | STALE, command_list)
        .acl(CN)
        .group("server")
        .doc("7.0.0", "Returns a list of command names."),
    CommandSpec::new("getkeys", -4, LOADING | STALE, command_getkeys)
        .acl(CN)
        .group("server")
        .doc("2.8.13", "Extracts the key names from an arbitrary command."),
    CommandSpec::new("getkeysandflags", -4, LOADING | STALE, command_getkeysandflags)
        .acl(CN)
        .group("server")
        .doc("7.0.0", "Extracts the key names and access flags for an arbitrary command."),
    CommandSpec::new("help", 2, LOADING | STALE, command_help)
        .acl(CN)
        .group("server")
        .doc("5.0.0", "Returns helpful text about the different subcommands."),
];

/// Key-spec flags derived from the command flags (the table has one range spec per command).
fn key_flags(spec: &CommandSpec) -> &'static [&'static str] {
    if let Some(f) = spec.key_flags {
        f
    } else if spec.has_flag(flags::WRITE) {
        &["RW", "update"]
    } else {
        &["RO", "access"]
    }
}

fn reply_info(r: &mut ReplySink, cmd: &Command) {
    let s = cmd.spec;
    r.array(10);
    r.bulk(cmd.full_name.as_bytes());
    r.int(s.arity as i64);
    let mut names: Vec<&str> = flags::NAMES.iter().filter(|(f, _)| s.flags & f != 0).map(|(_, n)| *n).collect();
    if s.getkeys.is_some() {
        // Redis lists it before allow_busy.
        let pos = names.iter().position(|n| *n == "allow_busy").unwrap_or(names.len());
        names.insert(pos, "movablekeys");
    }
    r.set(names.len());
    for n in names {
        r.simple(n);
    }
    r.int(s.first_key as i64);
    r.int(s.last_key as i64);
    r.int(s.step as i64);
    let cats = s.acl_categories();
    r.set(cats.len());
    for c in cats {
        r.simple(&format!("@{c}"));
    }
    r.set(0);
    if s.first_key > 0 {
        r.set(1);
        r.map(if s.key_notes.is_empty() { 3 } else { 4 });
        if !s.key_notes.is_empty() {
            r.bulk(b"notes");
            r.bulk(s.key_notes.as_bytes());
        }
        r.bulk(b"flags");
        let kf = key_flags(s);
        r.set(kf.len());
        for f in kf {
            r.simple(f);
        }
        r.bulk(b"begin_search");
        r.map(2);
        r.bulk(b"type");
        r.bulk(b"index");
        r.bulk(b"spec");
        r.map(1);
        r.bulk(b"index");
        r.int(s.first_key as i64);
        r.bulk(b"find_keys");
        r.map(2);
        r.bulk(b"type");
        r.bulk(b"range");
        r.bulk(b"spec");
        r.map(3);
        r.bulk(b"lastkey");
        r.int(if s.last_key < 0 { s.last_key as i64 } else { (s.last_key - s.first_key) as i64 });
        r.bulk(b"keystep");
        r.int(s.step as i64);
        r.bulk(b"limit");
        r.int(0);
    } else {
        r.set(0);
    }
    if cmd.subcommands.is_empty() {
        r.set(0);
    } else {
        r.array(cmd.subcommands.len());
        for sub in sorted(cmd.subcommands.values()) {
            reply_info(r, sub);
        }
    }
}

fn reply_docs(r: &mut ReplySink, cmd: &Command) {
    let s = cmd.spec;
    let mut n = 2;
    if !s.summary.is_empty() {
        n += 1;
    }
    if !cmd.subcommands.is_empty() {
        n += 1;
    }
    r.map(n);
    if !s.summary.is_empty() {
        r.bulk(b"summary");
        r.bulk(s.summary.as_bytes());
    }
    r.bulk(b"since");
    r.bulk(s.since.as_bytes());
    r.bulk(b"group");
    r.bulk(s.group.as_bytes());
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
                push_all(&mut names, &|c| c.spec.acl_categories().contains(&cat.as_str()));
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

/// Resolve the command named in COMMAND GETKEYS and return its key positions.
fn getkeys_of(args: &[bytes::Bytes]) -> Result<(&'static Command, Vec<usize>), CmdError> {
    let target = &args[2..];
    let mut cmd = table().lookup(&target[0]).ok_or_else(|| CmdError::new("Invalid command specified"))?;
    if cmd.is_container() && target.len() >= 2 {
        cmd = cmd.subcommand(&target[1]).ok_or_else(|| CmdError::new("Invalid command specified"))?;
    }
    let arity = cmd.spec.arity;
    let argc = target.len() as i32;
    if (arity > 0 && arity != argc) || argc < -arity {
        return Err(CmdError::new("Invalid number of arguments specified for command"));
    }
    let keys: Vec<usize> = match cmd.spec.getkeys {
        Some(f) => f(target),
        None => cmd.spec.key_indices(target.len()).collect(),
    };
    if keys.is_empty() {
        return Err(CmdError::new("The command has no key arguments"));
    }
    Ok((cmd, keys))
}

fn command_getkeys(ctx: &mut Ctx) -> CmdResult {
    let args = ctx.args;
    let (_, keys) = getkeys_of(args)?;
    ctx.reply.array(keys.len());
    for i in keys {
        ctx.reply.bulk(&args[2 + i]);
    }
    Ok(())
}

fn command_getkeysandflags(ctx: &mut Ctx) -> CmdResult {
    let args = ctx.args;
    let (cmd, keys) = getkeys_of(args)?;
    let kf = key_flags(cmd.spec);
    ctx.reply.array(keys.len());
    for i in keys {
        ctx.reply.array(2);
        ctx.reply.bulk(&args[2 + i]);
        ctx.reply.set(kf.len());
        for f in kf {
            ctx.reply.simple(f);
        }
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
