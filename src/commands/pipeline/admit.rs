//! Admission: every generic check a command passes before it runs, in Redis's order, driven by
//! the command table's flags and by who is calling ([`Caller`]) — as Redis's processCommand
//! does for clients and scriptCall for scripts. No check is written anywhere else, and no
//! command is named here: what makes a command special is a flag.

use bytes::Bytes;
use std::sync::atomic::Ordering;

use super::super::table::{self, Command};
use super::super::{errors, flags, Action};
use crate::server::Server;
use crate::session::client::Client;

/// Who issues a command. The caller decides which checks apply and how a refusal reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Caller {
    /// A client connection (Redis's processCommand).
    Client,
    /// A command queued in MULTI, run by EXEC (it was checked when queued; EXEC itself was
    /// admitted for what the transaction holds).
    Exec,
    /// `redis.call`/`redis.pcall` inside a script (Redis's scriptCall).
    Script(ScriptCall),
    /// Our master's replication stream (obeyed: no READONLY, OOM, NOREPLICAS).
    Master,
    /// Replaying the AOF at start-up or DEBUG LOADAOF: nothing but lookup and arity.
    AofLoad,
}

/// What a script call's checks depend on (Redis's scriptRunCtx flags).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct ScriptCall {
    /// EVAL_RO/FCALL_RO, or a script that declared `no-writes`.
    pub read_only: bool,
    /// The server was out of memory when the script started and the script did not declare
    /// `allow-oom`: its first `denyoom` command is refused.
    pub deny_oom: bool,
    /// The script already wrote: it can no longer be stopped half-way by OOM or replica state.
    pub wrote: bool,
    /// Debugged in a SCRIPT DEBUG YES session, whose writes Ferrous cannot throw away (no
    /// fork): its write commands (and those that may replicate, as PUBLISH) are refused.
    pub debug_no_writes: bool,
}

/// The outcome of admission.
#[derive(Debug)]
pub enum Admitted {
    /// Run the command now.
    Run,
    /// Queue it in the transaction (`+QUEUED`).
    Queue,
    /// Hold it back and retry later (CLIENT PAUSE, a running script).
    Wait(Action),
}

/// A refused command: the error text, and the command when it was found (its rejected-calls
/// counter then counts the refusal).
pub type Refusal = (Option<&'static Command>, String);

/// Redis's processCommand: a request named `POST` or `Host:` is an HTTP request (a web page
/// made a browser send one to the server: cross-protocol scripting). The connection is closed
/// without a reply, and the attempt logged at most once a minute (Redis's
/// securityWarningCommand).
pub fn cross_protocol_attack(client: &Client, name: &[u8]) -> bool {
    if !name.eq_ignore_ascii_case(b"post") && !name.eq_ignore_ascii_case(b"host:") {
        return false;
    }
    static LOGGED: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(0);
    let now = crate::keyspace::now_ms() / 1000;
    let last = LOGGED.load(Ordering::Relaxed);
    if (now - last).abs() > 60 && LOGGED.compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed).is_ok() {
        let from = match client.handle.addr.as_str() {
            "" => String::new(),
            addr => format!(" from {addr}"),
        };
        crate::server::log::warning(&format!("Possible SECURITY ATTACK detected. It looks like somebody is sending POST or Host: commands to Redis. This is likely due to an attacker attempting to use Cross Protocol Scripting to compromise your Redis instance. Connection{from} aborted."));
    }
    true
}

/// Find the command (or subcommand) an argument vector names and check its arity.
pub fn resolve(args: &[Bytes], caller: Caller) -> Result<&'static Command, Refusal> {
    let script = matches!(caller, Caller::Script(_));
    let unknown =
        |text: String| (None, if script { "Unknown Redis command called from script".to_string() } else { text });
    let Some(mut cmd) = table::lookup(&args[0]) else {
        return Err(unknown(unknown_command(args)));
    };
    if cmd.is_container() && args.len() >= 2 {
        match cmd.subcommand(&args[1]) {
            Some(sub) => cmd = sub,
            None => {
                let sub = crate::util::bytetext::c_string(&args[1], 128);
                return Err(unknown(format!(
                    "unknown subcommand '{}'. Try {} HELP.",
                    sub,
                    cmd.spec.name.to_ascii_uppercase()
                )));
            }
        }
    }
    if !cmd.arity_ok(args.len()) {
        let text = if script {
            "Wrong number of args calling Redis command from script".to_string()
        } else {
            format!("wrong number of arguments for '{}' command", cmd.full_name)
        };
        return Err((Some(cmd), text));
    }
    Ok(cmd)
}

/// Every check after lookup and arity, in Redis's order.
pub fn admit(
    server: &Server,
    client: &Client,
    caller: Caller,
    cmd: &'static Command,
    args: &[Bytes],
) -> Result<Admitted, Refusal> {
    let refuse = |text: &str| Err((Some(cmd), text.to_string()));
    match caller {
        Caller::AofLoad => return Ok(Admitted::Run),
        // A queued command: its ACL permissions are checked again when EXEC runs it.
        Caller::Exec => return acl(server, client, caller, cmd, args).map(|_| Admitted::Run),
        Caller::Script(call) => {
            return admit_script(server, client, call, cmd, args).map(|_| Admitted::Run).map_err(|t| (Some(cmd), t))
        }
        Caller::Client | Caller::Master => {}
    }
    let obeyed = caller == Caller::Master;
    let tx = TxView { client, cmd };
    if cmd.has_flag(flags::DEBUG_COMMAND | flags::PROTECTED) {
        // Protected commands: DEBUG (enable-debug-command), MODULE LOAD/UNLOAD
        // (enable-module-command): no, yes, or only from a local connection.
        let debug = cmd.has_flag(flags::DEBUG_COMMAND);
        let cfg = server.config.load();
        let setting = if debug { cfg.enable_debug_command } else { cfg.enable_module_command };
        if !crate::server::allows_protected(setting, client) {
            let (name, option) =
                if debug { ("DEBUG", "enable-debug-command") } else { ("MODULE", "enable-module-command") };
            return Err((Some(cmd), format!("{name} command not allowed. If the {option} option is set to \"local\", you can run it from a local connection, otherwise you need to set this option in the configuration file, and then restart the server.")));
        }
    }
    if crate::commands::acl::auth_required(server, client) && !cmd.has_flag(flags::NO_AUTH) {
        return refuse(errors::NOAUTH);
    }
    if client.multi.is_some() && cmd.has_flag(flags::NO_MULTI) {
        return refuse("Command not allowed inside a transaction");
    }
    acl(server, client, caller, cmd, args)?;
    // Cluster redirection (after ACL, before OOM), never for our master.
    if !obeyed && server.cluster.get().is_some() {
        super::super::cluster::admission(server, client, cmd, args).map_err(|text| (Some(cmd), text))?;
    }
    if !obeyed && server.out_of_memory.load(Ordering::Relaxed) {
        let in_multi = client.multi.is_some() && !cmd.has_flag(flags::TX_END);
        if in_multi || tx.any(|c, a| is_denyoom(server, c, a), args) {
            return refuse("-OOM command not allowed when used memory > 'maxmemory'.");
        }
    }
    let write = tx.any(|c, a| is_write(server, c, a), args);
    // Writes (and PING) while persistence fails: MISCONF (our master's are applied anyway).
    if write || cmd.has_flag(flags::REPORTS_DISK_ERROR) {
        if let Some(e) = crate::server::disk::write_denied(server) {
            if !obeyed {
                return refuse(&e.message());
            }
            crate::server::disk::master_write_denied(server, !write);
        }
    }
    // min-replicas-to-write: replicas that acknowledged within min-replicas-max-lag seconds.
    if !obeyed && write && !crate::replication::good_replicas_ok(server) {
        return refuse("-NOREPLICAS Not enough good replicas to write.");
    }
    if !obeyed && write && server.replica.is_replica() && server.config.load().replica_read_only {
        return refuse("-READONLY You can't write against a read only replica.");
    }
    if client.proto == crate::protocol::Proto::Resp2 && client.subs.active() && !cmd.has_flag(flags::SUBSCRIBED_OK) {
        return Err((
            Some(cmd),
            format!(
                "Can't execute '{}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context",
                cmd.full_name
            ),
        ));
    }
    if server.replica.is_replica()
        && !server.replica.link_up.load(Ordering::Relaxed)
        && !server.config.load().replica_serve_stale_data
        && tx.any(|c, a| !allowed_stale(server, c, a), args)
    {
        return refuse("-MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'.");
    }
    if server.stats.loading.load(Ordering::Relaxed) && tx.any(|c, _| !c.has_flag(flags::LOADING), args) {
        return refuse("-LOADING Redis is loading the dataset in memory");
    }
    // A replica loading its master's snapshot while serving the old data (swapdb).
    if server.replica.async_loading.load(Ordering::Relaxed) && tx.any(|c, _| c.has_flag(flags::NO_ASYNC_LOADING), args)
    {
        return refuse("-LOADING Redis is loading the dataset in memory");
    }
    if !cmd.has_flag(flags::ALLOW_BUSY) && server.scripting.busy.running_for().is_some() {
        // A script holds the keyspace: never wait for a lock. Past busy-reply-threshold the
        // command is refused with BUSY (our master waits instead); before it, the caller waits.
        let busy = &server.scripting.busy;
        let past = busy_threshold(server).is_some_and(|t| busy.running_for().is_some_and(|d| d >= t));
        if past && !obeyed {
            return Err((Some(cmd), busy.error().to_string()));
        }
        return Ok(Admitted::Wait(Action::WaitScript));
    }
    // A replica's link (or a MONITOR) may send REPLCONF and the like, never touch the keyspace.
    if client.replica_flagged() && cmd.has_flag(flags::READONLY | flags::WRITE | flags::MAY_REPLICATE) {
        return refuse("Replica can't interact with the keyspace");
    }
    if server.pause.active()
        && !client.replica_flagged()
        && server.pause.blocks(tx.any(|c, a| may_write(server, client, c, a), args))
    {
        return Ok(Admitted::Wait(Action::Paused));
    }
    if client.multi.is_some() && !cmd.has_flag(flags::TX_RUN_NOW) {
        return Ok(Admitted::Queue);
    }
    Ok(Admitted::Run)
}

/// ACL permissions (Redis's ACLCheckAllPerm), for every caller that has a user: a refusal is
/// logged and worded for the caller (a client, a command queued in MULTI at EXEC, a script).
fn acl(server: &Server, client: &Client, caller: Caller, cmd: &'static Command, args: &[Bytes]) -> Result<(), Refusal> {
    use crate::acl::log::Context;
    let Err(denied) = crate::commands::acl::check(server, client, cmd, args) else {
        return Ok(());
    };
    let context = match caller {
        Caller::Script(_) => Context::Lua,
        Caller::Exec => Context::Multi,
        _ if client.multi.is_some() => Context::Multi,
        _ => Context::Toplevel,
    };
    let text = crate::commands::acl::refusal(server, client, cmd, args, denied, context, caller == Caller::Exec);
    Err((Some(cmd), text))
}

/// Redis's scriptCall checks after lookup and arity.
fn admit_script(
    server: &Server,
    client: &Client,
    call: ScriptCall,
    cmd: &'static Command,
    args: &[Bytes],
) -> Result<(), String> {
    if cmd.has_flag(flags::NOSCRIPT) && !server.scripting.allow_noscript() {
        return Err("This Redis command is not allowed from script".into());
    }
    if server.replica.is_replica()
        && !server.replica.link_up.load(Ordering::Relaxed)
        && !server.config.load().replica_serve_stale_data
        && !cmd.has_flag(flags::STALE)
    {
        return Err("Can not execute the command on a stale replica".into());
    }
    acl(server, client, Caller::Script(call), cmd, args).map_err(|(_, t)| t)?;
    if call.read_only && cmd.has_flag(flags::WRITE | flags::MAY_REPLICATE) {
        return Err("Write commands are not allowed from read-only scripts.".into());
    }
    if call.debug_no_writes && cmd.has_flag(flags::WRITE | flags::MAY_REPLICATE) {
        return Err(crate::scripting::ldb::WRITE_REFUSED.into());
    }
    if cmd.has_flag(flags::WRITE) && !call.wrote {
        if server.replica.is_replica() && server.config.load().replica_read_only && !client.must_obey() {
            return Err("-READONLY You can't write against a read only replica.".into());
        }
        if let Some(e) = crate::server::disk::write_denied(server).filter(|_| !client.must_obey()) {
            return Err(e.message());
        }
        if !crate::replication::good_replicas_ok(server) {
            return Err("-NOREPLICAS Not enough good replicas to write.".into());
        }
    }
    if call.deny_oom && !call.wrote && cmd.has_flag(flags::DENYOOM) {
        return Err("-OOM command not allowed when used memory > 'maxmemory'.".into());
    }
    Ok(())
}

/// A command, or — for EXEC with a transaction queued — the commands it holds: Redis decides
/// EXEC's admission by the flags of what it will run (`mstate.cmd_flags`).
struct TxView<'a> {
    client: &'a Client,
    cmd: &'static Command,
}

impl TxView<'_> {
    fn any(&self, pred: impl Fn(&'static Command, &[Bytes]) -> bool, args: &[Bytes]) -> bool {
        match &self.client.multi {
            Some(m) if self.cmd.has_flag(flags::TX_EXEC) => {
                m.commands.iter().any(|argv| resolve(argv, Caller::Exec).is_ok_and(|c| pred(c, argv)))
            }
            _ => pred(self.cmd, args),
        }
    }
}

/// A `stale` command (served by a replica whose master link is down); a script with a shebang
/// or a function only if it declared `allow-stale` (Redis's scriptFlagsToCmdFlags).
fn allowed_stale(server: &Server, cmd: &Command, args: &[Bytes]) -> bool {
    match cmd.has_flag(flags::SCRIPT_RUN).then(|| script_flags(server, cmd, args)).flatten() {
        Some(f) => f.stale,
        None => cmd.has_flag(flags::STALE),
    }
}

/// A write command (Redis's is_write_command); a script with a shebang or a function unless it
/// declared `no-writes` — also when queued or run by EXEC (Redis's getCommandFlags, which
/// `mstate.cmd_flags` collects: EXEC of such a script on a read-only replica is EXECABORT).
fn is_write(server: &Server, cmd: &Command, args: &[Bytes]) -> bool {
    if cmd.has_flag(flags::WRITE) {
        return true;
    }
    cmd.has_flag(flags::SCRIPT_RUN) && script_flags(server, cmd, args).is_some_and(|f| f.write)
}

/// A `denyoom` command, or a script with a shebang or a function that did not declare
/// `allow-oom` or `no-writes`.
fn is_denyoom(server: &Server, cmd: &Command, args: &[Bytes]) -> bool {
    cmd.has_flag(flags::DENYOOM)
        || (cmd.has_flag(flags::SCRIPT_RUN) && script_flags(server, cmd, args).is_some_and(|f| f.denyoom))
}

/// Whether a command may write (CLIENT PAUSE WRITE holds it back): write and may-replicate
/// commands, and scripts that did not declare `no-writes`.
fn may_write(server: &Server, _client: &Client, cmd: &Command, args: &[Bytes]) -> bool {
    if cmd.has_flag(flags::SCRIPT_RUN) {
        return crate::scripting::declared::may_write(&server.scripting, cmd.spec.name, args);
    }
    cmd.has_flag(flags::WRITE | flags::MAY_REPLICATE)
}

/// What a script command stands for, from its declared flags (see
/// `scripting::declared::command_flags`).
fn script_flags(server: &Server, cmd: &Command, args: &[Bytes]) -> Option<crate::scripting::declared::CommandFlags> {
    crate::scripting::declared::command_flags(&server.scripting, cmd.spec.name, args)
}

/// `busy-reply-threshold` (alias lua-time-limit); None when 0 (never answer BUSY).
pub fn busy_threshold(server: &Server) -> Option<std::time::Duration> {
    let ms = server.config.load().busy_reply_threshold as u64;
    (ms > 0).then(|| std::time::Duration::from_millis(ms))
}

/// Redis's "unknown command" text, with up to 128 bytes of the arguments.
fn unknown_command(args: &[Bytes]) -> String {
    use crate::util::bytetext::{c_bytes, encode};
    // As Redis builds it: C strings (up to a NUL), 128 bytes of the name and of the arguments.
    let mut rest: Vec<u8> = Vec::new();
    for a in &args[1..] {
        if rest.len() >= 128 {
            break;
        }
        let room = 128 - rest.len();
        rest.push(b'\'');
        rest.extend_from_slice(c_bytes(a, room));
        rest.extend_from_slice(b"' ");
    }
    let mut msg = b"unknown command '".to_vec();
    msg.extend_from_slice(c_bytes(&args[0], 128));
    msg.extend_from_slice(b"', with args beginning with: ");
    msg.extend_from_slice(&rest);
    encode(&msg)
}
