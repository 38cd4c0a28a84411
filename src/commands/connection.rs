//! Connection commands: PING, ECHO, QUIT, SELECT, HELLO, RESET, AUTH and CLIENT.

use super::args::{self, is};
use super::client_tracking as ct;
use super::flags::*;
use super::{errors, Action, CmdError, CmdResult, CommandSpec, Ctx};
use crate::protocol::Proto;
use crate::session::client::ReplyMode;

pub static COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("ping", ping).internal(SUBSCRIBED_OK | REPORTS_DISK_ERROR),
    CommandSpec::new("echo", echo),
    CommandSpec::new("quit", quit).internal(TX_RUN_NOW | TX_END | SUBSCRIBED_OK),
    CommandSpec::new("select", select),
    CommandSpec::new("hello", hello),
    CommandSpec::new("reset", reset).internal(TX_RUN_NOW | TX_END | SUBSCRIBED_OK),
    CommandSpec::new("auth", auth),
    CommandSpec::new("client", super::server::container_help).internal(KEEPS_CACHING).subs(CLIENT_SUBS),
];

static CLIENT_SUBS: &[CommandSpec] = &[
    CommandSpec::new("id", client_id),
    CommandSpec::new("info", client_info),
    CommandSpec::new("list", client_list),
    CommandSpec::new("kill", client_kill),
    CommandSpec::new("setname", client_setname),
    CommandSpec::new("getname", client_getname),
    CommandSpec::new("setinfo", client_setinfo),
    CommandSpec::new("reply", client_reply),
    CommandSpec::new("no-evict", client_no_evict),
    CommandSpec::new("no-touch", client_no_touch),
    CommandSpec::new("unblock", client_unblock),
    CommandSpec::new("pause", client_pause),
    CommandSpec::new("unpause", client_unpause),
    CommandSpec::new("tracking", ct::client_tracking),
    CommandSpec::new("caching", ct::client_caching),
    CommandSpec::new("getredir", ct::client_getredir),
    CommandSpec::new("trackinginfo", ct::client_trackinginfo),
    CommandSpec::new("help", client_help),
];

fn ping(ctx: &mut Ctx) -> CmdResult {
    if ctx.argc() <= 2 && ctx.client.subs.active() && ctx.client.proto == Proto::Resp2 {
        // In RESP2 subscribed mode PING answers in the shape of a message.
        ctx.reply.array(2);
        ctx.reply.bulk(b"pong");
        ctx.reply.bulk(ctx.args.get(1).map_or(&b""[..], |a| &a[..]));
        return Ok(());
    }
    match ctx.argc() {
        1 => ctx.reply.simple("PONG"),
        2 => ctx.reply.bulk(&ctx.args[1]),
        _ => return Err(CmdError::new("wrong number of arguments for 'ping' command")),
    }
    Ok(())
}

fn echo(ctx: &mut Ctx) -> CmdResult {
    ctx.reply.bulk(&ctx.args[1]);
    Ok(())
}

fn quit(ctx: &mut Ctx) -> CmdResult {
    ctx.reply.ok();
    ctx.action = Action::Close;
    Ok(())
}

fn select(ctx: &mut Ctx) -> CmdResult {
    let id = args::int(&ctx.args[1])?;
    if id < i32::MIN as i64 || id > i32::MAX as i64 {
        return Err(CmdError::new(errors::NOT_INTEGER));
    }
    if ctx.server.cluster.get().is_some() && id != 0 {
        return Err(CmdError::new("SELECT is not allowed in cluster mode"));
    }
    if id < 0 || id as usize >= ctx.server.keyspace.databases() {
        return Err(CmdError::new(errors::DB_INDEX));
    }
    ctx.client.db = id as usize;
    ctx.reply.ok();
    Ok(())
}

/// Client names may only hold printable characters other than space (Redis's clientSetName).
fn valid_name(name: &[u8]) -> bool {
    name.iter().all(|&c| (b'!'..=b'~').contains(&c))
}

fn set_name(ctx: &mut Ctx, name: &[u8]) -> CmdResult {
    if !valid_name(name) {
        return Err(CmdError::new("Client names cannot contain spaces, newlines or special characters."));
    }
    ctx.client.set_name(if name.is_empty() { None } else { Some(bytes::Bytes::copy_from_slice(name)) });
    Ok(())
}

fn hello(ctx: &mut Ctx) -> CmdResult {
    let args = ctx.args;
    let mut ver = 0;
    let mut j = 1;
    if args.len() >= 2 {
        ver = args::int_or(&args[1], "Protocol version is not an integer or out of range")?;
        if !(2..=3).contains(&ver) {
            return Err(CmdError::new("-NOPROTO unsupported protocol version"));
        }
        j = 2;
    }
    // Redis 7.2: the options are read first (the last AUTH and the last SETNAME win, a bad
    // name fails before anything changes), then the client authenticates, then it is named.
    let mut auth: Option<(usize, usize)> = None;
    let mut name: Option<usize> = None;
    while j < args.len() {
        let more = args.len() - 1 - j;
        if is(&args[j], "auth") && more >= 2 {
            auth = Some((j + 1, j + 2));
            j += 3;
        } else if is(&args[j], "setname") && more >= 1 {
            if !valid_name(&args[j + 1]) {
                return Err(CmdError::new("Client names cannot contain spaces, newlines or special characters."));
            }
            name = Some(j + 1);
            j += 2;
        } else {
            return Err(CmdError::new(format!("Syntax error in HELLO option '{}'", args::echo(&args[j]))));
        }
    }
    if let Some((u, p)) = auth {
        if !super::acl::authenticate(ctx, &args[u], &args[p]) {
            return Err(CmdError::new("-WRONGPASS invalid username-password pair or user is disabled."));
        }
    }
    if !ctx.client.authenticated {
        return Err(CmdError::new("-NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time"));
    }
    if let Some(n) = name {
        set_name(ctx, &args[n])?;
    }
    if ver == 3 {
        ctx.client.proto = Proto::Resp3;
    } else if ver == 2 {
        ctx.client.proto = Proto::Resp2;
    }
    if ver != 0 && ctx.client.tracking.is_some() {
        ctx.server.tracking.set_protocol(ctx.client.id(), ver == 3);
    }
    // The reply is encoded in the protocol just selected.
    ctx.reply.proto = ctx.client.proto;
    // A Sentinel says so, and has no role.
    let sentinel = ctx.server.sentinel.get().is_some();
    let r = &mut *ctx.reply;
    r.map(if sentinel { 6 } else { 7 });
    r.bulk(b"server");
    r.bulk(b"redis");
    r.bulk(b"version");
    r.bulk(crate::REDIS_VERSION.as_bytes());
    r.bulk(b"proto");
    r.int(if ctx.client.proto == Proto::Resp3 { 3 } else { 2 });
    r.bulk(b"id");
    r.int(ctx.client.id() as i64);
    r.bulk(b"mode");
    if sentinel {
        r.bulk(b"sentinel");
    } else {
        r.bulk(b"standalone");
        r.bulk(b"role");
        r.bulk(b"master");
    }
    r.bulk(b"modules");
    r.array(0);
    Ok(())
}

fn reset(ctx: &mut Ctx) -> CmdResult {
    ctx.client.multi = None;
    super::pubsub::unsubscribe_all(ctx.server, ctx.client);
    super::transactions::unwatch_all(&ctx.server.keyspace, ctx.client);
    if ctx.client.tracking.take().is_some() {
        ctx.server.tracking.disable(ctx.client.id());
    }
    if ctx.client.monitor {
        ctx.server.monitors.remove(ctx.client.id());
        ctx.client.monitor = false;
    }
    let c = &mut *ctx.client;
    c.db = 0;
    c.proto = Proto::Resp2;
    super::acl::set_default_auth(ctx.server, c);
    c.set_name(None);
    c.reply_mode = ReplyMode::On;
    c.no_evict = false;
    c.no_touch = false;
    ctx.reply.proto = Proto::Resp2;
    ctx.reply.simple("RESET");
    Ok(())
}

fn auth(ctx: &mut Ctx) -> CmdResult {
    let args = ctx.args;
    if args.len() > 3 {
        return Err(CmdError::new(errors::SYNTAX));
    }
    let (user, pass): (&[u8], &[u8]) = if args.len() == 2 {
        if ctx.server.acl.default_nopass() {
            return Err(CmdError::new("AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?"));
        }
        (b"default", &args[1])
    } else {
        (&args[1], &args[2])
    };
    if super::acl::authenticate(ctx, user, pass) {
        ctx.reply.ok();
        Ok(())
    } else {
        Err(CmdError::new("-WRONGPASS invalid username-password pair or user is disabled."))
    }
}

fn client_id(ctx: &mut Ctx) -> CmdResult {
    ctx.reply.int(ctx.client.id() as i64);
    Ok(())
}

fn client_info(ctx: &mut Ctx) -> CmdResult {
    ctx.client.sync_current("client|info", ctx.args);
    let mut line = ctx.client.handle.info_line(Some("client|info"));
    line.push('\n');
    ctx.reply.verbatim(b"txt", line.as_bytes());
    Ok(())
}

fn client_list(ctx: &mut Ctx) -> CmdResult {
    let args = ctx.args;
    let mut ids: Option<Vec<u64>> = None;
    let mut ctype: Option<&str> = None;
    if args.len() > 2 {
        if is(&args[2], "type") && args.len() == 4 {
            let t = &args[3];
            if !(is(t, "normal") || is(t, "master") || is(t, "replica") || is(t, "slave") || is(t, "pubsub")) {
                return Err(CmdError::new(format!("Unknown client type '{}'", args::echo(t))));
            }
            ctype = Some(client_kind_arg(t));
        } else if is(&args[2], "id") && args.len() >= 4 {
            let mut v = Vec::new();
            // Any integer: one no client has (0, negative) lists nothing.
            for a in &args[3..] {
                match args::int(a) {
                    Ok(n) => v.extend(u64::try_from(n).ok()),
                    Err(_) => return Err(CmdError::new("Invalid client ID")),
                }
            }
            ids = Some(v);
        } else {
            return Err(CmdError::new(errors::SYNTAX));
        }
    }
    ctx.client.sync_current("client|list", ctx.args);
    let me = ctx.client.id();
    // A client killed already (evicted, over its output limit) is gone for Redis, which frees
    // it at once; its task may still be finishing here.
    let mut handles: Vec<_> =
        ctx.server.clients.lock().values().filter(|h| h.id == me || !h.is_killed()).cloned().collect();
    handles.sort_by_key(|h| h.id);
    let mut out = String::new();
    for h in handles {
        if ids.as_ref().is_some_and(|ids| !ids.contains(&h.id)) || ctype.is_some_and(|t| client_type(&h) != t) {
            continue;
        }
        out.push_str(&h.info_line(if h.id == me { Some("client|list") } else { None }));
        out.push('\n');
    }
    ctx.reply.verbatim(b"txt", out.as_bytes());
    Ok(())
}

/// A connection's type for CLIENT KILL / LIST TYPE: master, replica, pubsub or normal.
fn client_type(h: &crate::session::client::ClientHandle) -> &'static str {
    h.kind()
}

/// The TYPE argument (already validated) as [`client_type`] names it.
fn client_kind_arg(t: &[u8]) -> &'static str {
    if is(t, "normal") {
        "normal"
    } else if is(t, "pubsub") {
        "pubsub"
    } else if is(t, "master") {
        "master"
    } else {
        "replica"
    }
}

fn client_kill(ctx: &mut Ctx) -> CmdResult {
    let args = ctx.args;
    let me = ctx.client.id();
    // A client already killed is gone for Redis (freed at once); its task may still be
    // finishing here.
    let handles: Vec<_> = ctx.server.clients.lock().values().filter(|h| !h.is_killed()).cloned().collect();
    if args.len() == 3 {
        // Old form: CLIENT KILL addr:port.
        let addr = args::text(&args[2]);
        let Some(h) = handles.iter().find(|h| h.addr == addr) else {
            return Err(CmdError::new("No such client"));
        };
        ctx.client.kill_after.push(h.clone());
        if h.id == me {
            ctx.action = Action::Close;
        }
        ctx.reply.ok();
        return Ok(());
    }
    // Redis 7.2's filters (MAXAGE came with 7.4).
    let (mut id, mut addr, mut laddr, mut user, mut skipme) = (None, None, None, None, true);
    // TYPE: normal, pubsub (subscribed), replica or master.
    let mut kind: Option<&str> = None;
    let mut i = 2;
    while i < args.len() {
        if i + 1 >= args.len() {
            return Err(CmdError::new(errors::SYNTAX));
        }
        let v = &args[i + 1];
        if is(&args[i], "id") {
            match args::int(v) {
                Ok(n) if n > 0 => id = Some(n as u64),
                _ => return Err(CmdError::new("client-id should be greater than 0")),
            }
        } else if is(&args[i], "addr") {
            addr = Some(args::text(v));
        } else if is(&args[i], "laddr") {
            laddr = Some(args::text(v));
        } else if is(&args[i], "user") {
            if !super::acl::user_exists(ctx.server, v) {
                return Err(CmdError::new(format!("No such user '{}'", args::text(v))));
            }
            user = Some(args::text(v));
        } else if is(&args[i], "type") {
            if !(is(v, "normal") || is(v, "master") || is(v, "replica") || is(v, "slave") || is(v, "pubsub")) {
                return Err(CmdError::new(format!("Unknown client type '{}'", args::echo(v))));
            }
            kind = Some(client_kind_arg(v));
        } else if is(&args[i], "skipme") {
            if is(v, "yes") {
                skipme = true;
            } else if is(v, "no") {
                skipme = false;
            } else {
                return Err(CmdError::new(errors::SYNTAX));
            }
        } else {
            return Err(CmdError::new(errors::SYNTAX));
        }
        i += 2;
    }
    let mut killed = 0;
    for h in &handles {
        if id.is_some_and(|x| x != h.id)
            || addr.as_ref().is_some_and(|a| *a != h.addr)
            || laddr.as_ref().is_some_and(|a| *a != h.laddr)
            || user.as_ref().is_some_and(|u| *u != h.view.lock().user)
            || kind.is_some_and(|k| k != client_type(h))
            || (skipme && h.id == me)
        {
            continue;
        }
        ctx.client.kill_after.push(h.clone());
        if h.id == me {
            ctx.action = Action::Close;
        }
        killed += 1;
    }
    ctx.reply.int(killed);
    Ok(())
}

fn client_unblock(ctx: &mut Ctx) -> CmdResult {
    use crate::session::blocking::Unblock;
    let args = ctx.args;
    if args.len() > 4 {
        return Err(CmdError::new(errors::SYNTAX));
    }
    let how = match args.get(3) {
        None => Unblock::Timeout,
        Some(a) if is(a, "timeout") => Unblock::Timeout,
        Some(a) if is(a, "error") => Unblock::Error,
        Some(_) => return Err(CmdError::new("CLIENT UNBLOCK reason should be TIMEOUT or ERROR")),
    };
    let id = args::int(&args[2])?;
    let target = ctx.server.clients.lock().get(&(id as u64)).cloned();
    let done = target.is_some_and(|h| ctx.server.blocking.request_unblock(&h.waiter, how));
    ctx.reply.int(done as i64);
    Ok(())
}

fn client_pause(ctx: &mut Ctx) -> CmdResult {
    let args = ctx.args;
    if args.len() > 4 {
        return Err(CmdError::new(errors::SYNTAX));
    }
    let all = match args.get(3) {
        None => true,
        Some(a) if is(a, "all") => true,
        Some(a) if is(a, "write") => false,
        Some(_) => return Err(CmdError::new("CLIENT PAUSE mode must be WRITE or ALL")),
    };
    let ms = args::int_or(&args[2], "timeout is not an integer or out of range")?;
    if ms < 0 {
        return Err(CmdError::new("timeout is negative"));
    }
    let end = crate::keyspace::now_ms().saturating_add(ms);
    ctx.server.pause.pause(all, end, &ctx.server.keyspace);
    ctx.reply.ok();
    Ok(())
}

fn client_unpause(ctx: &mut Ctx) -> CmdResult {
    ctx.server.pause.unpause(&ctx.server.keyspace);
    ctx.reply.ok();
    Ok(())
}

fn client_setname(ctx: &mut Ctx) -> CmdResult {
    let args = ctx.args;
    set_name(ctx, &args[2])?;
    ctx.reply.ok();
    Ok(())
}

fn client_getname(ctx: &mut Ctx) -> CmdResult {
    match ctx.client.name() {
        Some(n) => ctx.reply.bulk(n),
        None => ctx.reply.null(),
    }
    Ok(())
}

fn client_setinfo(ctx: &mut Ctx) -> CmdResult {
    let args = ctx.args;
    let (attr, val) = (&args[2], &args[3]);
    let lib_name = is(attr, "lib-name");
    if !lib_name && !is(attr, "lib-ver") {
        return Err(CmdError::new(format!("Unrecognized option '{}'", args::echo(attr))));
    }
    // Like client names, but lib-ver may not contain spaces either and lib-name not '-'.
    if !valid_name(val) {
        // The attribute as the client spelled it (Redis 7.2 echoes argv[2]).
        return Err(CmdError::new(format!(
            "{} cannot contain spaces, newlines or special characters.",
            args::echo(attr)
        )));
    }
    let v = if val.is_empty() { None } else { Some(bytes::Bytes::copy_from_slice(val)) };
    ctx.client.set_lib(lib_name, v);
    ctx.reply.ok();
    Ok(())
}

fn client_reply(ctx: &mut Ctx) -> CmdResult {
    let a = &ctx.args[2];
    if is(a, "on") {
        ctx.client.reply_mode = ReplyMode::On;
        ctx.reply.ok();
    } else if is(a, "off") {
        ctx.client.reply_mode = ReplyMode::Off;
    } else if is(a, "skip") {
        if ctx.client.reply_mode != ReplyMode::Off {
            ctx.client.reply_mode = ReplyMode::SkipNext;
        }
    } else {
        return Err(CmdError::new(errors::SYNTAX));
    }
    Ok(())
}

fn on_off(arg: &[u8]) -> Result<bool, CmdError> {
    if is(arg, "on") {
        Ok(true)
    } else if is(arg, "off") {
        Ok(false)
    } else {
        Err(CmdError::new(errors::SYNTAX))
    }
}

fn client_no_evict(ctx: &mut Ctx) -> CmdResult {
    ctx.client.no_evict = on_off(&ctx.args[2])?;
    ctx.reply.ok();
    Ok(())
}

fn client_no_touch(ctx: &mut Ctx) -> CmdResult {
    ctx.client.no_touch = on_off(&ctx.args[2])?;
    ctx.reply.ok();
    Ok(())
}

fn client_help(ctx: &mut Ctx) -> CmdResult {
    super::server::reply_help(
        ctx,
        "CLIENT",
        &[
            "CACHING (YES|NO)",
            "    Enable/disable tracking of the keys for next command in OPTIN/OPTOUT modes.",
            "GETREDIR",
            "    Return the client ID we are redirecting to when tracking is enabled.",
            "GETNAME",
            "    Return the name of the current connection.",
            "ID",
            "    Return the ID of the current connection.",
            "INFO",
            "    Return information about the current client connection.",
            "KILL <ip:port>",
            "    Kill connection made from <ip:port>.",
            "KILL <option> <value> [<option> <value> [...]]",
            "    Kill connections. Options are:",
            "    * ADDR (<ip:port>|<unixsocket>:0)",
            "      Kill connections made from the specified address",
            "    * LADDR (<ip:port>|<unixsocket>:0)",
            "      Kill connections made to specified local address",
            "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
            "      Kill connections by type.",
            "    * USER <username>",
            "      Kill connections authenticated by <username>.",
            "    * SKIPME (YES|NO)",
            "      Skip killing current connection (default: yes).",
            "LIST [options ...]",
            "    Return information about client connections. Options:",
            "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
            "      Return clients of specified type.",
            "UNPAUSE",
            "    Stop the current client pause, resuming traffic.",
            "PAUSE <timeout> [WRITE|ALL]",
            "    Suspend all, or just write, clients for <timeout> milliseconds.",
            "REPLY (ON|OFF|SKIP)",
            "    Control the replies sent to the current connection.",
            "SETNAME <name>",
            "    Assign the name <name> to the current connection.",
            "SETINFO <option> <value>",
            "    Set client meta attr. Options are:",
            "    * LIB-NAME: the client lib name.",
            "    * LIB-VER: the client lib version.",
            "UNBLOCK <clientid> [TIMEOUT|ERROR]",
            "    Unblock the specified blocked client.",
            "TRACKING (ON|OFF) [REDIRECT <id>] [BCAST] [PREFIX <prefix> [...]]",
            "         [OPTIN] [OPTOUT] [NOLOOP]",
            "    Control server assisted client side caching.",
            "TRACKINGINFO",
            "    Report tracking status for the current connection.",
            "NO-EVICT (ON|OFF)",
            "    Protect current client connection from eviction.",
            "NO-TOUCH (ON|OFF)",
            "    Will not touch LRU/LFU stats when this mode is on.",
        ],
    );
    Ok(())
}
