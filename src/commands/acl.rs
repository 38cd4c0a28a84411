//! ACL glue: the ACL command (SETUSER, GETUSER, DELUSER, USERS, LIST, WHOAMI, CAT, GENPASS,
//! DRYRUN, LOG, LOAD, SAVE, HELP), the permission check the pipeline's admission runs for
//! every caller, authentication (AUTH, HELLO AUTH), and what a change of users does to the
//! connected clients (killed when their user is deleted or loses the channels they listen to).

use std::sync::Arc;

use bytes::Bytes;

use super::args::{self, is};
use super::flags::*;
use super::key_specs::{self, kflags};
use super::table::{lookup_args, table, Command};
use super::{Action, CmdError, CmdResult, CommandSpec, Ctx};
use crate::acl::log::{Context, Entry, Reason};
use crate::acl::selector::{READ, WRITE};
use crate::acl::{Acl, Call, Catalog, Denied, KeyArg, User, UserCell};
use crate::server::Server;
use crate::session::Client;

pub static COMMANDS: &[CommandSpec] = &[CommandSpec::new("acl", super::server::container_help).subs(ACL_SUBS)];

static ACL_SUBS: &[CommandSpec] = &[
    CommandSpec::new("cat", acl_cat),
    CommandSpec::new("deluser", acl_deluser),
    CommandSpec::new("dryrun", acl_dryrun),
    CommandSpec::new("genpass", acl_genpass),
    CommandSpec::new("getuser", acl_getuser),
    CommandSpec::new("help", acl_help),
    CommandSpec::new("list", acl_list),
    CommandSpec::new("load", acl_load),
    CommandSpec::new("log", acl_log),
    CommandSpec::new("save", acl_save),
    CommandSpec::new("setuser", acl_setuser),
    CommandSpec::new("users", acl_users),
    CommandSpec::new("whoami", acl_whoami),
];

/// The ACL catalog of the command table: every command and subcommand by its original name.
pub fn catalog() -> Catalog {
    let entries = table()
        .originals()
        .flat_map(|c| std::iter::once(c).chain(c.subcommands.values()))
        .map(|c| (c.full_name.clone(), c.meta.acl, c.has_flag(NO_AUTH)));
    Catalog::new(entries)
}

/// The permissions a key needs, from its key-spec flags (Redis's ACLSelectorCheckKey).
fn needs(flags: u32) -> u8 {
    let mut n = 0;
    if flags & kflags::ACCESS != 0 {
        n |= READ;
    }
    if flags & (kflags::INSERT | kflags::DELETE | kflags::UPDATE) != 0 {
        n |= WRITE;
    }
    n
}

/// Check a call against a user's rules.
pub fn check_user(acl: &Acl, user: &User, cmd: &Command, args: &[Bytes]) -> Result<(), Denied> {
    if user.unrestricted {
        return Ok(());
    }
    let find = || cmd.reported_keys(args).iter().map(|k| KeyArg { pos: k.pos, needs: needs(k.flags) }).collect();
    let has_keys = key_specs::may_have_keys(&cmd.meta.key_specs, cmd.spec.getkeys);
    let call = Call::new(acl.catalog.get(cmd.acl_id), args, has_keys, &find);
    Acl::check(user, &call)
}

/// The admission check: may this client run this call? (Clients without a user, such as our
/// master's link and the AOF loader, may run anything.)
pub fn check(server: &Server, client: &Client, cmd: &Command, args: &[Bytes]) -> Result<(), Denied> {
    match &client.user {
        Some(cell) if cell.is_unrestricted() => Ok(()),
        Some(cell) => check_user(&server.acl, &cell.rules(), cmd, args),
        None => Ok(()),
    }
}

/// Log a refusal (ACL LOG, INFO counters) and return the error text for the caller: a client
/// (`context` Toplevel/Multi), a queued command at EXEC, or a script.
pub fn refusal(
    server: &Server,
    client: &Client,
    cmd: &'static Command,
    args: &[Bytes],
    denied: Denied,
    context: Context,
    exec: bool,
) -> String {
    let (reason, object) = match denied {
        Denied::Command => (Reason::Command, cmd.full_name.as_bytes().to_vec()),
        Denied::Key(p) => (Reason::Key, args[p].to_vec()),
        Denied::Channel(p) => (Reason::Channel, args[p].to_vec()),
    };
    log_entry(server, client, reason, context, object, None, &cmd.full_name, args, exec || context == Context::Lua);
    if exec {
        let why = match denied {
            Denied::Command => "no permission to execute the command or subcommand",
            Denied::Key(_) => "no permission to touch the specified keys",
            Denied::Channel(_) => "no permission to access one of the channels used as arguments",
        };
        return format!("-NOPERM ACLs rules changed between the moment the transaction was accumulated and the EXEC call. This command is no longer allowed for the following reason: {why}");
    }
    let user = client.user.as_ref().map_or(&b"default"[..], |u| &u.name);
    let msg = String::from_utf8_lossy(&error_message(user, cmd, args, denied, false)).into_owned();
    if context == Context::Lua {
        return format!("ACL failure in script: {msg}");
    }
    format!("-NOPERM {msg}")
}

/// Redis 7.2's getAclErrorMessage: the refusal of `args` (a call of `cmd`) for `user`; verbose
/// (ACL DRYRUN) names the key or channel, the client's error (verbose false) does not.
pub fn error_message(user: &[u8], cmd: &Command, args: &[Bytes], denied: Denied, verbose: bool) -> Vec<u8> {
    let (what, pos) = match denied {
        Denied::Command => {
            let mut s = b"User ".to_vec();
            s.extend_from_slice(user);
            s.extend_from_slice(format!(" has no permissions to run the '{}' command", cmd.full_name).as_bytes());
            return s;
        }
        Denied::Key(p) => ("key", p),
        Denied::Channel(p) => ("channel", p),
    };
    if !verbose {
        return format!("No permissions to access a {what}").into_bytes();
    }
    let mut s = b"User ".to_vec();
    s.extend_from_slice(user);
    s.extend_from_slice(b" has no permissions to access the '");
    s.extend_from_slice(args.get(pos).map_or(&b""[..], |a| a));
    s.extend_from_slice(format!("' {what}").as_bytes());
    s
}

/// Add an ACL LOG entry for this client (its CLIENT LIST line as it runs `cmd_name`).
#[allow(clippy::too_many_arguments)]
fn log_entry(
    server: &Server,
    client: &Client,
    reason: Reason,
    context: Context,
    object: Vec<u8>,
    username: Option<&[u8]>,
    cmd_name: &'static str,
    args: &[Bytes],
    nested: bool,
) {
    let username = username.map(|u| u.to_vec()).unwrap_or_else(|| user_name(client).into_bytes());
    // Inside EXEC or a script, Redis 7.2 describes the client running the top-level command
    // (its current_client: cmd=exec, cmd=eval...); 7.0 showed the refused inner command.
    let client_info = if nested {
        client.handle.info_line(Some(client.running))
    } else {
        client.sync_current(cmd_name, args);
        client.handle.info_line(Some(cmd_name))
    };
    let max = server.config.load().acllog_max_len.max(0) as usize;
    server.acl.log_denial(
        Entry {
            count: 1,
            reason,
            context,
            object,
            username,
            ctime_ms: crate::acl::now_ms(),
            created_ms: 0,
            entry_id: 0,
            client_info,
        },
        max,
    );
}

/// The name of the client's user ("default" for clients without one).
pub fn user_name(client: &Client) -> String {
    client.user.as_ref().map_or_else(|| "default".to_string(), |u| u.name_str())
}

/// Make a client run as a user (authenticated), and show it in CLIENT LIST.
pub fn set_user(client: &mut Client, cell: Arc<UserCell>, authenticated: bool) {
    client.handle.view.lock().user = cell.name_str();
    client.user = Some(cell);
    client.authenticated = authenticated;
}

/// A new connection's user: the default one, authenticated if it needs no password (Redis's
/// clientSetDefaultAuth; RESET does the same).
pub fn set_default_auth(server: &Server, client: &mut Client) {
    let cell = server.acl.default_user();
    let open = {
        let r = cell.rules();
        r.has(crate::acl::user::NOPASS) && !r.has(crate::acl::user::DISABLED)
    };
    set_user(client, cell, open);
}

/// A TLS client's verified certificate: with `tls-auth-clients-user CN`, the client starts
/// authenticated as the enabled ACL user its subject Common Name names (Redis 8.6's feature).
pub fn authenticate_certificate(server: &Server, client: &mut Client, der: &[u8]) {
    if server.config.load().tls_auth_clients_user != 1 {
        return;
    }
    let Some(cn) = crate::server::tls::subject_common_name(der) else { return };
    if let Some(cell) = server.acl.get(&cn) {
        if !cell.rules().has(crate::acl::user::DISABLED) {
            set_user(client, cell, true);
        }
    }
}

/// Whether this client must authenticate before running anything but AUTH/HELLO (Redis's
/// authRequired).
pub fn auth_required(server: &Server, client: &Client) -> bool {
    !client.authenticated && server.acl.auth_required()
}

/// AUTH / HELLO AUTH: check the pair and switch the client to the user, or log the failure
/// (object: the command as typed). Returns whether it succeeded.
pub fn authenticate(ctx: &mut Ctx, user: &[u8], pass: &[u8]) -> bool {
    match ctx.server.acl.authenticate(user, pass) {
        Some(cell) => {
            set_user(ctx.client, cell, true);
            true
        }
        None => {
            let context = if ctx.client.multi.is_some() { Context::Multi } else { Context::Toplevel };
            // AUTH or HELLO, as the table names them.
            let name = crate::commands::table::lookup(&ctx.args[0]).map_or("auth", |c| c.full_name.as_str());
            log_entry(
                ctx.server,
                ctx.client,
                Reason::Auth,
                context,
                ctx.args[0].to_vec(),
                Some(user),
                name,
                ctx.args,
                false,
            );
            false
        }
    }
}

/// Disconnect the clients authenticated as one of these users (deleted or replaced). The
/// current client gets its reply first.
fn kill_clients_of(ctx: &mut Ctx, cells: &[Arc<UserCell>]) {
    if cells.is_empty() {
        return;
    }
    let names: Vec<String> = cells.iter().map(|c| c.name_str()).collect();
    let me = ctx.client.id();
    let victims: Vec<_> = ctx
        .server
        .clients
        .lock()
        .values()
        .filter(|h| h.id != me && names.contains(&h.view.lock().user))
        .cloned()
        .collect();
    for h in victims {
        h.kill();
    }
    if ctx.client.user.as_ref().is_some_and(|u| cells.iter().any(|c| Arc::ptr_eq(c, u))) {
        // As Redis: back to the default user, unauthenticated, closed after this reply.
        let cell = ctx.server.acl.default_user();
        set_user(ctx.client, cell, false);
        ctx.action = Action::Close;
    }
}

/// After a user lost channel permissions: disconnect its subscribers whose subscriptions the
/// new list no longer allows (Redis's ACLKillPubsubClientsIfNeeded), at once.
fn kill_revoked_subscribers(ctx: &mut Ctx, cell: &UserCell, upcoming: &[Vec<u8>]) {
    let name = cell.name_str();
    let me = ctx.client.id();
    let subscribers: Vec<_> = ctx
        .server
        .clients
        .lock()
        .values()
        .filter(|h| {
            let v = h.view.lock();
            v.user == name && v.sub + v.psub + v.ssub > 0
        })
        .cloned()
        .collect();
    for h in subscribers {
        let (channels, patterns) = if h.id == me {
            let c = &ctx.client.subs;
            (c.channels.iter().chain(&c.shard_channels).cloned().collect::<Vec<_>>(), c.patterns.clone())
        } else {
            ctx.server.pubsub.subscriptions_of(h.id)
        };
        if crate::acl::subscriptions_allowed(upcoming, &channels, &patterns) {
            continue;
        }
        if h.id == me {
            ctx.action = Action::Close;
            continue;
        }
        // Gone at once for everyone else: no more messages, not in CLIENT LIST.
        h.kill();
        ctx.server.pubsub.remove_subscriber(h.id);
        ctx.server.clients.lock().remove(&h.id);
    }
}

fn all_channels_default(server: &Server) -> bool {
    server.config.load().acl_pubsub_default == 1
}

fn acl_setuser(ctx: &mut Ctx) -> CmdResult {
    let name = &ctx.args[2];
    if crate::acl::selector::has_spaces(name) {
        return Err(CmdError::new("Usernames can't contain spaces or null characters"));
    }
    let rules: Vec<Vec<u8>> = ctx.args[3..].iter().map(|a| a.to_vec()).collect();
    let all_channels = all_channels_default(ctx.server);
    let done =
        ctx.server.acl.set_user(name, &rules, all_channels).map_err(|e| CmdError::new(e.replace(['\r', '\n'], " ")))?;
    if let Some(upcoming) = done.revoked_channels {
        kill_revoked_subscribers(ctx, &done.cell, &upcoming);
    }
    ctx.reply.ok();
    Ok(())
}

fn acl_deluser(ctx: &mut Ctx) -> CmdResult {
    let names: Vec<&[u8]> = ctx.args[2..].iter().map(|a| &a[..]).collect();
    let removed = ctx.server.acl.del_users(&names).map_err(CmdError::new)?;
    kill_clients_of(ctx, &removed);
    ctx.reply.int(removed.len() as i64);
    Ok(())
}

/// One selector's `commands`, `keys` and `channels` fields.
fn reply_selector(ctx: &mut Ctx, s: &crate::acl::selector::Selector) {
    let cat = &ctx.server.acl.catalog;
    let r = &mut *ctx.reply;
    r.bulk(b"commands");
    r.bulk(&crate::acl::describe::describe_commands(cat, s));
    r.bulk(b"keys");
    if s.all_keys {
        r.bulk(b"~*");
    } else {
        let mut out = Vec::new();
        for (i, p) in s.patterns.iter().enumerate() {
            if i > 0 {
                out.push(b' ');
            }
            p.describe(&mut out);
        }
        r.bulk(&out);
    }
    r.bulk(b"channels");
    if s.all_channels {
        r.bulk(b"&*");
    } else {
        let mut out = Vec::new();
        for (i, c) in s.channels.iter().enumerate() {
            if i > 0 {
                out.push(b' ');
            }
            out.push(b'&');
            out.extend_from_slice(c);
        }
        r.bulk(&out);
    }
}

fn acl_getuser(ctx: &mut Ctx) -> CmdResult {
    let Some(cell) = ctx.server.acl.get(&ctx.args[2]) else {
        ctx.reply.null();
        return Ok(());
    };
    let u = cell.rules();
    ctx.reply.map(6);
    ctx.reply.bulk(b"flags");
    let flags: Vec<&str> = crate::acl::user::FLAG_NAMES.iter().filter(|(f, _)| u.has(*f)).map(|(_, n)| *n).collect();
    ctx.reply.set(flags.len());
    for f in flags {
        ctx.reply.bulk(f.as_bytes());
    }
    ctx.reply.bulk(b"passwords");
    ctx.reply.array(u.passwords.len());
    for p in &u.passwords {
        ctx.reply.bulk(p);
    }
    reply_selector(ctx, u.root());
    ctx.reply.bulk(b"selectors");
    ctx.reply.array(u.selectors.len() - 1);
    for s in &u.selectors[1..] {
        ctx.reply.map(3);
        reply_selector(ctx, s);
    }
    Ok(())
}

fn acl_users(ctx: &mut Ctx) -> CmdResult {
    if ctx.argc() != 2 {
        return Err(subcommand_error(ctx));
    }
    let users = ctx.server.acl.users();
    ctx.reply.array(users.len());
    for u in users {
        ctx.reply.bulk(&u.name);
    }
    Ok(())
}

fn acl_list(ctx: &mut Ctx) -> CmdResult {
    if ctx.argc() != 2 {
        return Err(subcommand_error(ctx));
    }
    let users = ctx.server.acl.users();
    ctx.reply.array(users.len());
    for u in users {
        let line = ctx.server.acl.describe_line(&u);
        ctx.reply.bulk(&line);
    }
    Ok(())
}

fn acl_whoami(ctx: &mut Ctx) -> CmdResult {
    if ctx.argc() != 2 {
        return Err(subcommand_error(ctx));
    }
    let name = user_name(ctx.client);
    ctx.reply.bulk(name.as_bytes());
    Ok(())
}

/// Redis's addReplySubcommandSyntaxError.
fn subcommand_error(ctx: &Ctx) -> CmdError {
    let sub: String = args::text(&ctx.args[1]).chars().take(128).collect();
    CmdError::new(format!(
        "unknown subcommand or wrong number of arguments for '{}'. Try {} HELP.",
        sub,
        args::text(&ctx.args[0]).to_ascii_uppercase()
    ))
}

const NO_ACL_FILE: &str = "This Redis instance is not configured to use an ACL file. You may want to specify users via the ACL SETUSER command and then issue a CONFIG REWRITE (assuming you have a Redis configuration file set) in order to store users in the Redis configuration.";

fn acl_load(ctx: &mut Ctx) -> CmdResult {
    let file = ctx.server.config.load().aclfile.clone();
    if file.is_empty() {
        return Err(CmdError::new(NO_ACL_FILE));
    }
    if ctx.argc() != 2 {
        return Err(subcommand_error(ctx));
    }
    let all_channels = all_channels_default(ctx.server);
    let users = crate::acl::file::read_acl_file(&ctx.server.acl.catalog, &file, all_channels).map_err(CmdError::new)?;
    let dropped = ctx.server.acl.replace_all(users);
    kill_clients_of(ctx, &dropped);
    ctx.reply.ok();
    Ok(())
}

fn acl_save(ctx: &mut Ctx) -> CmdResult {
    let file = ctx.server.config.load().aclfile.clone();
    if file.is_empty() {
        return Err(CmdError::new(NO_ACL_FILE));
    }
    if ctx.argc() != 2 {
        return Err(subcommand_error(ctx));
    }
    if let Err(line) = crate::acl::file::save_acl_file(&ctx.server.acl, &file) {
        crate::server::log::warning(&line);
        return Err(CmdError::new(
            "There was an error trying to save the ACLs. Please check the server logs for more information",
        ));
    }
    ctx.reply.ok();
    Ok(())
}

fn acl_cat(ctx: &mut Ctx) -> CmdResult {
    use crate::acl::catalog::CATEGORIES;
    match ctx.argc() {
        2 => {
            ctx.reply.array(CATEGORIES.len());
            for c in CATEGORIES {
                ctx.reply.bulk(c.as_bytes());
            }
        }
        3 => {
            let Some(flag) = crate::acl::catalog::category(&ctx.args[2]) else {
                let name: String = args::text(&ctx.args[2]).chars().take(128).collect();
                return Err(CmdError::new(format!("Unknown category '{name}'")));
            };
            let names: Vec<&str> = ctx
                .server
                .acl
                .catalog
                .walk()
                .filter(|c| c.categories & flag != 0)
                .map(|c| c.full_name.as_str())
                .collect();
            ctx.reply.array(names.len());
            for n in names {
                ctx.reply.bulk(n.as_bytes());
            }
        }
        _ => return Err(subcommand_error(ctx)),
    }
    Ok(())
}

fn acl_genpass(ctx: &mut Ctx) -> CmdResult {
    if ctx.argc() > 3 {
        return Err(subcommand_error(ctx));
    }
    let bits = match ctx.args.get(2) {
        Some(a) => args::int(a)?,
        None => 256,
    };
    if bits <= 0 || bits > 4096 {
        return Err(CmdError::new(
            "ACL GENPASS argument must be the number of bits for the output password, a positive number up to 4096",
        ));
    }
    let chars = ((bits + 3) / 4) as usize;
    let mut bytes = vec![0u8; chars.div_ceil(2)];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut bytes);
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let hex: Vec<u8> =
        bytes.iter().flat_map(|b| [HEX[(b >> 4) as usize], HEX[(b & 15) as usize]]).take(chars).collect();
    ctx.reply.bulk(&hex);
    Ok(())
}

fn acl_log(ctx: &mut Ctx) -> CmdResult {
    if ctx.argc() > 3 {
        return Err(subcommand_error(ctx));
    }
    let mut count: i64 = 10;
    if let Some(a) = ctx.args.get(2) {
        if is(a, "reset") {
            ctx.server.acl.log.lock().reset();
            ctx.reply.ok();
            return Ok(());
        }
        count = args::int(a)?.max(0);
    }
    let now = crate::acl::now_ms();
    let log = ctx.server.acl.log.lock();
    let n = (count as usize).min(log.len());
    let r = &mut *ctx.reply;
    r.array(n);
    for e in log.newest(n) {
        r.map(10);
        r.bulk(b"count");
        r.int(e.count as i64);
        r.bulk(b"reason");
        r.bulk(e.reason.name().as_bytes());
        r.bulk(b"context");
        r.bulk(e.context.name().as_bytes());
        r.bulk(b"object");
        r.bulk(&e.object);
        r.bulk(b"username");
        r.bulk(&e.username);
        r.bulk(b"age-seconds");
        r.double((now - e.ctime_ms) as f64 / 1000.0);
        r.bulk(b"client-info");
        r.bulk(e.client_info.as_bytes());
        r.bulk(b"entry-id");
        r.int(e.entry_id as i64);
        r.bulk(b"timestamp-created");
        r.int(e.created_ms);
        r.bulk(b"timestamp-last-updated");
        r.int(e.ctime_ms);
    }
    Ok(())
}

fn acl_dryrun(ctx: &mut Ctx) -> CmdResult {
    let Some(cell) = ctx.server.acl.get(&ctx.args[2]) else {
        return Err(CmdError::new(format!(
            "User '{}' not found",
            args::text(crate::acl::selector::cstr(&ctx.args[2]))
        )));
    };
    let call = &ctx.args[3..];
    let Some(cmd) = lookup_args(call) else {
        return Err(CmdError::new(format!("Command '{}' not found", args::text(crate::acl::selector::cstr(&call[0])))));
    };
    if !cmd.arity_ok(call.len()) {
        return Err(CmdError::new(format!("wrong number of arguments for '{}' command", cmd.full_name)));
    }
    match check_user(&ctx.server.acl, &cell.rules(), cmd, call) {
        Ok(()) => ctx.reply.ok(),
        Err(denied) => ctx.reply.bulk(&error_message(&cell.name, cmd, call, denied, true)),
    }
    Ok(())
}

fn acl_help(ctx: &mut Ctx) -> CmdResult {
    super::server::reply_help(
        ctx,
        "ACL",
        &[
            "CAT [<category>]",
            "    List all commands that belong to <category>, or all command categories",
            "    when no category is specified.",
            "DELUSER <username> [<username> ...]",
            "    Delete a list of users.",
            "DRYRUN <username> <command> [<arg> ...]",
            "    Returns whether the user can execute the given command without executing the command.",
            "GETUSER <username>",
            "    Get the user's details.",
            "GENPASS [<bits>]",
            "    Generate a secure 256-bit user password. The optional `bits` argument can",
            "    be used to specify a different size.",
            "LIST",
            "    Show users details in config file format.",
            "LOAD",
            "    Reload users from the ACL file.",
            "LOG [<count> | RESET]",
            "    Show the ACL log entries.",
            "SAVE",
            "    Save the current config to the ACL file.",
            "SETUSER <username> <attribute> [<attribute> ...]",
            "    Create or modify a user with the specified attributes.",
            "USERS",
            "    List all the registered usernames.",
            "WHOAMI",
            "    Return the current connection username.",
        ],
    );
    Ok(())
}

/// SORT's BY and GET patterns name keys the key specs cannot see: they need a selector that
/// allows the call and may read every key (Redis's ACLUserCheckCmdWithUnrestrictedKeyAccess).
pub fn may_read_any_key(server: &Server, client: &Client, args: &[Bytes]) -> bool {
    let Some(cell) = &client.user else { return true };
    let user = cell.rules();
    if user.unrestricted {
        return true;
    }
    let Ok(cmd) = super::pipeline::resolve(args, super::pipeline::Caller::AofLoad) else {
        return true;
    };
    let find = || cmd.reported_keys(args).iter().map(|k| KeyArg { pos: k.pos, needs: needs(k.flags) }).collect();
    let has_keys = key_specs::may_have_keys(&cmd.meta.key_specs, cmd.spec.getkeys);
    let call = Call::new(server.acl.catalog.get(cmd.acl_id), args, has_keys, &find);
    Acl::check_unrestricted_keys(&user, &call, READ)
}

/// CLIENT KILL USER: whether the user exists.
pub fn user_exists(server: &Server, name: &[u8]) -> bool {
    server.acl.get(name).is_some()
}

/// `requirepass` changed: the default user's password follows.
pub fn apply_requirepass(server: &Server, pass: &str) {
    server.acl.set_default_password((!pass.is_empty()).then_some(pass.as_bytes()));
}

/// Start-up: `requirepass`, then the users of the configuration or of the ACL file. Ok holds
/// notice lines; Err the warning to log before exiting.
pub fn load_at_startup(server: &Server, config_users: &[Vec<Vec<u8>>]) -> Result<Vec<String>, String> {
    let cfg = server.config.load();
    apply_requirepass(server, &cfg.requirepass);
    if !cfg.aclfile.is_empty() && !config_users.is_empty() {
        return Err("Configuring Redis with users defined in redis.conf and at the same setting an ACL file path is invalid. This setup is very likely to lead to configuration errors and security holes, please define either an ACL file or declare users directly in your redis.conf, but not both.".into());
    }
    let all_channels = cfg.acl_pubsub_default == 1;
    let notices = crate::acl::file::load_config_users(&server.acl, config_users, all_channels)
        .map_err(|e| format!("{e}\nCritical error while loading ACLs. Exiting."))?;
    if !cfg.aclfile.is_empty() {
        let users = crate::acl::file::read_acl_file(&server.acl.catalog, &cfg.aclfile, all_channels)
            .map_err(|e| format!("Aborting Redis startup because of ACL errors: {e}"))?;
        server.acl.replace_all(users);
    }
    Ok(notices)
}

/// The `user` lines CONFIG REWRITE writes (None with an ACL file: the users live there).
pub fn config_rewrite_lines(server: &Server) -> Option<Vec<String>> {
    server.acl.config_lines(&server.config.load().aclfile)
}

/// Validate the `user` directives of the configuration (Redis's ACLAppendUserForLoading):
/// Err((directive index, message)) naming the offending word as Redis does.
pub fn check_config_users(directives: &[Vec<Vec<u8>>]) -> Result<(), (usize, String)> {
    let cat = catalog();
    let mut seen: Vec<Vec<u8>> = Vec::new();
    for (i, words) in directives.iter().enumerate() {
        if let Err((at, e)) = crate::acl::file::check_user_directive(&cat, words, &seen) {
            let word = words.get(at).map(|w| String::from_utf8_lossy(crate::acl::selector::cstr(w)).into_owned());
            return Err((i, format!("Error in user declaration '{}': {}", word.unwrap_or_default(), e.message())));
        }
        seen.push(words[1].clone());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalog_ids_are_the_table_ids() {
        let cat = catalog();
        for c in table().iter().flat_map(|c| std::iter::once(c).chain(c.subcommands.values())) {
            assert_eq!(cat.get(c.acl_id).full_name, c.full_name);
        }
        assert!(cat.lookup(b"acl|setuser").is_some());
        assert!(cat.get(table().lookup(b"auth").unwrap().acl_id).no_auth);
    }
}
