//! SENTINEL and its subcommands (sentinel mode only): one handler per subcommand, each
//! locking the Sentinel state (`crate::sentinel`) for what it reads or changes; replies and
//! errors as Redis 7.2's sentinelCommand writes them.

use super::args;
use super::{CmdError, CmdResult, CommandSpec, Ctx};
use crate::sentinel::instance::{Addr, FAILOVER_IN_PROGRESS, FORCE_FAILOVER, O_DOWN, S_DOWN};
use crate::sentinel::{config, reply, Guard, Sentinel};
use crate::server::log;

pub static COMMANDS: &[CommandSpec] = &[CommandSpec::new("sentinel", super::server::container_help).subs(&[
    CommandSpec::new("ckquorum", ckquorum),
    CommandSpec::new("config", config_cmd),
    CommandSpec::new("debug", debug),
    CommandSpec::new("failover", failover),
    CommandSpec::new("flushconfig", flushconfig),
    CommandSpec::new("get-master-addr-by-name", get_master_addr),
    CommandSpec::new("help", help),
    CommandSpec::new("info-cache", info_cache),
    CommandSpec::new("is-master-down-by-addr", is_master_down),
    CommandSpec::new("master", master),
    CommandSpec::new("masters", masters),
    CommandSpec::new("monitor", monitor),
    CommandSpec::new("myid", myid),
    CommandSpec::new("pending-scripts", pending_scripts),
    CommandSpec::new("remove", remove),
    CommandSpec::new("replicas", replicas),
    CommandSpec::new("reset", reset),
    CommandSpec::new("sentinels", sentinels),
    CommandSpec::new("set", set),
    CommandSpec::new("simulate-failure", simulate_failure),
    CommandSpec::new("slaves", replicas),
])];

const NO_SUCH_MASTER: &str = "No such master with that name";

fn sentinel<'a>(ctx: &Ctx<'a, '_>) -> Result<&'a Sentinel, CmdError> {
    ctx.server.sentinel.get().map(|s| &**s).ok_or_else(|| CmdError::new("This instance is not a Sentinel"))
}

fn text(a: &[u8]) -> String {
    String::from_utf8_lossy(a).into_owned()
}

fn flush_reply(ctx: &mut Ctx, st: &mut Guard) -> CmdResult {
    st.flush_now().map_err(CmdError::new)?;
    ctx.reply.ok();
    Ok(())
}

fn masters(ctx: &mut Ctx) -> CmdResult {
    let st = sentinel(ctx)?.lock(ctx.server);
    reply::masters(ctx.reply, &st);
    Ok(())
}

fn master(ctx: &mut Ctx) -> CmdResult {
    let st = sentinel(ctx)?.lock(ctx.server);
    let m = st.masters.get(&text(&ctx.args[2])).ok_or_else(|| CmdError::new(NO_SUCH_MASTER))?;
    reply::instance(ctx.reply, &m.inst, Some(m));
    Ok(())
}

fn replicas(ctx: &mut Ctx) -> CmdResult {
    let st = sentinel(ctx)?.lock(ctx.server);
    let m = st.masters.get(&text(&ctx.args[2])).ok_or_else(|| CmdError::new(NO_SUCH_MASTER))?;
    reply::replicas(ctx.reply, m);
    Ok(())
}

fn sentinels(ctx: &mut Ctx) -> CmdResult {
    let st = sentinel(ctx)?.lock(ctx.server);
    let m = st.masters.get(&text(&ctx.args[2])).ok_or_else(|| CmdError::new(NO_SUCH_MASTER))?;
    reply::sentinels(ctx.reply, m);
    Ok(())
}

fn myid(ctx: &mut Ctx) -> CmdResult {
    let st = sentinel(ctx)?.lock(ctx.server);
    ctx.reply.bulk(st.g.myid.as_bytes());
    Ok(())
}

fn is_master_down(ctx: &mut Ctx) -> CmdResult {
    let port = args::int(&ctx.args[3])?;
    let req_epoch = args::int(&ctx.args[4])?;
    let (ip, runid) = (text(&ctx.args[2]), text(&ctx.args[5]));
    let mut st = sentinel(ctx)?.lock(ctx.server);
    let st = &mut *st;
    let tilt = st.g.tilt;
    let found = st.masters.values_mut().find(|m| m.inst.addr.same(&ip, port as u16) && (0..=65535).contains(&port));
    let (down, leader) = match found {
        None => (false, (None, 0)),
        Some(m) => {
            let down = !tilt && m.inst.has(S_DOWN);
            let vote = if runid != "*" {
                crate::sentinel::election_vote(&mut st.g, m, req_epoch as u64, &runid)
            } else {
                (None, 0)
            };
            (down, vote)
        }
    };
    let r = &mut *ctx.reply;
    r.array(3);
    r.int(down as i64);
    r.bulk(leader.0.as_deref().unwrap_or("*").as_bytes());
    r.int(leader.1 as i64);
    Ok(())
}

fn reset(ctx: &mut Ctx) -> CmdResult {
    let pattern = ctx.args[2].clone();
    let mut st = sentinel(ctx)?.lock(ctx.server);
    let st = &mut *st;
    let mut n = 0;
    for m in st.masters.values_mut() {
        if crate::util::glob::glob_match(&pattern, m.inst.name.as_bytes(), false) {
            m.reset(false);
            st.g.event(log::WARNING, "+reset-master", Some((&m.inst, None)), "");
            n += 1;
        }
    }
    ctx.reply.int(n);
    Ok(())
}

fn get_master_addr(ctx: &mut Ctx) -> CmdResult {
    let st = sentinel(ctx)?.lock(ctx.server);
    match st.masters.get(&text(&ctx.args[2])) {
        None => ctx.reply.null_array(),
        Some(m) => {
            let a = m.current_addr();
            ctx.reply.array(2);
            ctx.reply.bulk(a.announced().as_bytes());
            ctx.reply.bulk_int(a.port as i64);
        }
    }
    Ok(())
}

fn failover(ctx: &mut Ctx) -> CmdResult {
    let mut st = sentinel(ctx)?.lock(ctx.server);
    let st = &mut *st;
    let m = st.masters.get_mut(&text(&ctx.args[2])).ok_or_else(|| CmdError::new(NO_SUCH_MASTER))?;
    if m.inst.has(FAILOVER_IN_PROGRESS) {
        return Err(CmdError::new("-INPROG Failover already in progress"));
    }
    if crate::sentinel::select_replica(&st.g, m).is_none() {
        return Err(CmdError::new("-NOGOODSLAVE No suitable replica to promote"));
    }
    log::notice(&format!("Executing user requested FAILOVER of '{}'", m.inst.name));
    crate::sentinel::start_failover(&mut st.g, m);
    m.inst.flags |= FORCE_FAILOVER;
    ctx.reply.ok();
    Ok(())
}

fn pending_scripts(ctx: &mut Ctx) -> CmdResult {
    let st = sentinel(ctx)?.lock(ctx.server);
    crate::sentinel::scripts::pending(ctx.reply, &st.g.scripts);
    Ok(())
}

fn monitor(ctx: &mut Ctx) -> CmdResult {
    let quorum = args::int(&ctx.args[5]).map_err(|_| CmdError::new("Invalid quorum"))?;
    let port = args::int(&ctx.args[4]).map_err(|_| CmdError::new("Invalid port"))?;
    if quorum <= 0 {
        return Err(CmdError::new("Quorum must be 1 or greater."));
    }
    let (name, host) = (text(&ctx.args[2]), text(&ctx.args[3]));
    let mut st = sentinel(ctx)?.lock(ctx.server);
    let resolve = st.g.resolve_hostnames;
    let resolvable = host.parse::<std::net::IpAddr>().is_ok()
        || (resolve
            && std::net::ToSocketAddrs::to_socket_addrs(&(host.as_str(), 0)).is_ok_and(|mut a| a.next().is_some()));
    if !resolvable {
        return Err(CmdError::new("Invalid IP address or hostname specified"));
    }
    let addr = Addr::new(&host, port, resolve).map_err(CmdError::new)?;
    if st.masters.contains_key(&name) {
        return Err(CmdError::new("Duplicate master name."));
    }
    let m = crate::sentinel::instance::Master::new(name.clone(), addr, quorum as u32, &st.g.periods);
    st.masters.insert(name.clone(), m);
    flush_reply(ctx, &mut st)?;
    let st = &mut *st;
    let m = &st.masters[&name];
    st.g.event(log::WARNING, "+monitor", Some((&m.inst, None)), &format!("quorum {}", m.quorum));
    Ok(())
}

fn flushconfig(ctx: &mut Ctx) -> CmdResult {
    let mut st = sentinel(ctx)?.lock(ctx.server);
    flush_reply(ctx, &mut st)
}

fn remove(ctx: &mut Ctx) -> CmdResult {
    let name = text(&ctx.args[2]);
    let mut st = sentinel(ctx)?.lock(ctx.server);
    let st2 = &mut *st;
    let m = st2.masters.remove(&name).ok_or_else(|| CmdError::new(NO_SUCH_MASTER))?;
    st2.g.event(log::WARNING, "-monitor", Some((&m.inst, None)), "");
    drop(m);
    flush_reply(ctx, &mut st)
}

fn ckquorum(ctx: &mut Ctx) -> CmdResult {
    let st = sentinel(ctx)?.lock(ctx.server);
    let m = st.masters.get(&text(&ctx.args[2])).ok_or_else(|| CmdError::new(NO_SUCH_MASTER))?;
    let voters = m.sentinels.len() + 1;
    let usable = 1 + m.sentinels.values().filter(|s| !s.has(S_DOWN | O_DOWN)).count();
    let no_quorum = usable < m.quorum as usize;
    let no_auth = usable < voters / 2 + 1;
    if !no_quorum && !no_auth {
        ctx.reply.simple(&format!("OK {usable} usable Sentinels. Quorum and failover authorization can be reached"));
        return Ok(());
    }
    let mut e = format!("-NOQUORUM {usable} usable Sentinels. ");
    if no_quorum {
        e.push_str("Not enough available Sentinels to reach the specified quorum for this master");
    }
    if no_auth {
        if no_quorum {
            e.push_str(". ");
        }
        e.push_str("Not enough available Sentinels to reach the majority and authorize a failover");
    }
    Err(CmdError::new(e))
}

/// SENTINEL SET <master> <option> <value> [...].
fn set(ctx: &mut Ctx) -> CmdResult {
    let argv: Vec<String> = ctx.args.iter().map(|a| text(a)).collect();
    let mut st = sentinel(ctx)?.lock(ctx.server);
    if !st.masters.contains_key(&argv[2]) {
        return Err(CmdError::new(NO_SUCH_MASTER));
    }
    let mut changes = 0;
    let mut j = 3;
    let result = loop {
        if j >= argv.len() {
            break Ok(());
        }
        let more = argv.len() - 1 - j;
        let option = argv[j].to_ascii_lowercase();
        let old_j = j;
        let mut redacted = false;
        let st2 = &mut *st;
        let deny = st2.g.deny_scripts_reconfig;
        let m = st2.masters.get_mut(&argv[2]).expect("checked above");
        let positive = |s: &str| args::int(s.as_bytes()).ok().filter(|&n| n > 0);
        let r: Result<(), CmdError> = match option.as_str() {
            "down-after-milliseconds" if more > 0 => {
                j += 1;
                positive(&argv[j])
                    .map(|n| {
                        m.inst.down_after_period = n;
                        m.propagate_down_after();
                    })
                    .ok_or(CmdError::new(""))
            }
            "failover-timeout" if more > 0 => {
                j += 1;
                positive(&argv[j]).map(|n| m.failover_timeout = n).ok_or(CmdError::new(""))
            }
            "parallel-syncs" if more > 0 => {
                j += 1;
                positive(&argv[j]).map(|n| m.parallel_syncs = n).ok_or(CmdError::new(""))
            }
            "quorum" if more > 0 => {
                j += 1;
                positive(&argv[j]).map(|n| m.quorum = n as u32).ok_or(CmdError::new(""))
            }
            "master-reboot-down-after-period" if more > 0 => {
                j += 1;
                args::int(argv[j].as_bytes())
                    .ok()
                    .filter(|&n| n >= 0)
                    .map(|n| m.master_reboot_down_after_period = n)
                    .ok_or(CmdError::new(""))
            }
            "notification-script" | "client-reconfig-script" if more > 0 => {
                j += 1;
                let value = &argv[j];
                let notification = option == "notification-script";
                if deny {
                    Err(CmdError::new("Reconfiguration of scripts path is denied for security reasons. Check the deny-scripts-reconfig configuration directive in your Sentinel configuration"))
                } else if !value.is_empty() && !config::executable(value) {
                    Err(CmdError::new(if notification {
                        "Notification script seems non existing or non executable"
                    } else {
                        "Client reconfiguration script seems non existing or non executable"
                    }))
                } else {
                    let v = (!value.is_empty()).then(|| value.clone());
                    if notification {
                        m.inst.notification_script = v;
                    } else {
                        m.client_reconfig_script = v;
                    }
                    Ok(())
                }
            }
            "auth-pass" | "auth-user" if more > 0 => {
                j += 1;
                let v = (!argv[j].is_empty()).then(|| argv[j].clone());
                if option == "auth-pass" {
                    m.auth_pass = v;
                    redacted = true;
                } else {
                    m.auth_user = v;
                }
                m.inst.link.close_all();
                m.replicas.values_mut().for_each(|r| r.link.close_all());
                Ok(())
            }
            "rename-command" if more > 1 => {
                let (from, to) = (argv[j + 1].clone(), argv[j + 2].clone());
                j += 2;
                if from.is_empty() || to.is_empty() {
                    if !to.is_empty() {
                        j -= 1;
                    }
                    Err(CmdError::new(""))
                } else {
                    m.renamed.retain(|(f, _)| !f.eq_ignore_ascii_case(&from));
                    if !from.eq_ignore_ascii_case(&to) {
                        m.renamed.push((from, to));
                    }
                    Ok(())
                }
            }
            _ => {
                break Err(CmdError::new(format!(
                    "Unknown option or number of arguments for SENTINEL SET '{}'",
                    argv[j]
                )))
            }
        };
        match r {
            Ok(()) => {}
            Err(e) if e.0.is_empty() => {
                break Err(CmdError::new(format!("Invalid argument '{}' for SENTINEL SET '{}'", argv[j], argv[old_j])))
            }
            Err(e) => break Err(e),
        }
        changes += 1;
        let rest = match j - old_j + 1 {
            2 => format!("{} {}", argv[old_j], if redacted { "******" } else { &argv[old_j + 1] }),
            3 => format!("{} {} {}", argv[old_j], argv[old_j + 1], argv[old_j + 2]),
            _ => argv[old_j].clone(),
        };
        let st2 = &mut *st;
        let m = &st2.masters[&argv[2]];
        st2.g.event(log::WARNING, "+set", Some((&m.inst, None)), &rest);
        j += 1;
    };
    match result {
        Ok(()) => {
            if changes > 0 {
                flush_reply(ctx, &mut st)?;
            }
            Ok(())
        }
        Err(e) => {
            if changes > 0 {
                st.g.flush();
            }
            Err(e)
        }
    }
}

fn config_cmd(ctx: &mut Ctx) -> CmdResult {
    let sub = text(&ctx.args[2]);
    if sub.eq_ignore_ascii_case("set") && ctx.args.len() >= 5 {
        config_set(ctx)
    } else if sub.eq_ignore_ascii_case("get") && ctx.args.len() >= 4 {
        config_get(ctx)
    } else {
        Err(CmdError::new("Only SENTINEL CONFIG GET <param> [<param> <param> ...]/ SET <param> <value> [<param> <value> ...] are supported."))
    }
}

const CONFIG_OPTIONS: &[&str] = &[
    "announce-ip",
    "sentinel-user",
    "sentinel-pass",
    "resolve-hostnames",
    "announce-port",
    "announce-hostnames",
    "loglevel",
];
const LOGLEVELS: &[&str] = &["debug", "verbose", "notice", "warning", "nothing"];

fn config_set(ctx: &mut Ctx) -> CmdResult {
    let argv: Vec<String> = ctx.args.iter().map(|a| text(a)).collect();
    let mut seen: Vec<String> = Vec::new();
    let mut i = 3;
    // Check everything first: nothing is applied unless all of it is valid.
    while i < argv.len() {
        let option = &argv[i];
        if !CONFIG_OPTIONS.contains(&option.as_str()) {
            return Err(CmdError::new(format!("Invalid argument '{option}' to SENTINEL CONFIG SET")));
        }
        if seen.contains(option) {
            return Err(CmdError::new(format!("Duplicate argument '{option}' to SENTINEL CONFIG SET")));
        }
        seen.push(option.clone());
        if i + 1 == argv.len() {
            return Err(CmdError::new(format!("Missing argument '{option}' value")));
        }
        i += 1;
        let val = &argv[i];
        let ok = match option.as_str() {
            "resolve-hostnames" | "announce-hostnames" => config::yes_no(val).is_some(),
            "announce-port" => args::int(val.as_bytes()).is_ok_and(|n| (0..=65535).contains(&n)),
            "loglevel" => LOGLEVELS.iter().any(|l| l.eq_ignore_ascii_case(val)),
            _ => true,
        };
        if !ok {
            return Err(CmdError::new(format!("Invalid value '{val}' to SENTINEL CONFIG SET '{option}'")));
        }
        i += 1;
    }
    let mut st = sentinel(ctx)?.lock(ctx.server);
    let mut drop_links = false;
    for pair in argv[3..].chunks(2) {
        let (option, val) = (pair[0].as_str(), pair[1].clone());
        let g = &mut st.g;
        match option {
            "loglevel" => {
                let level = LOGLEVELS.iter().position(|l| l.eq_ignore_ascii_case(&val)).unwrap_or(2);
                ctx.server.config.update(|c| c.loglevel = level as u32);
                log::set_level(level);
            }
            "resolve-hostnames" => g.resolve_hostnames = config::yes_no(&val).unwrap_or(false),
            "announce-hostnames" => {
                g.announce_hostnames = config::yes_no(&val).unwrap_or(false);
                crate::sentinel::instance::set_announce_hostnames(g.announce_hostnames);
            }
            "announce-ip" => g.announce_ip = Some(val),
            "announce-port" => g.announce_port = args::int(val.as_bytes()).unwrap_or(0) as u16,
            "sentinel-user" => {
                g.sentinel_auth_user = (!val.is_empty()).then_some(val);
                drop_links = true;
            }
            _ => {
                g.sentinel_auth_pass = (!val.is_empty()).then_some(val);
                drop_links = true;
            }
        }
    }
    flush_reply(ctx, &mut st)?;
    // New credentials for the other Sentinels: reconnect to them (sentinelDropConnections).
    if drop_links {
        for m in st.masters.values_mut() {
            m.sentinels.values_mut().for_each(|i| i.link.close_all());
        }
    }
    Ok(())
}

fn config_get(ctx: &mut Ctx) -> CmdResult {
    let st = sentinel(ctx)?.lock(ctx.server);
    let g = &st.g;
    let level = LOGLEVELS.get(ctx.server.config.load().loglevel as usize).copied().unwrap_or("unknown");
    let values: [(&str, String); 7] = [
        ("resolve-hostnames", if g.resolve_hostnames { "yes" } else { "no" }.into()),
        ("announce-hostnames", if g.announce_hostnames { "yes" } else { "no" }.into()),
        ("announce-ip", g.announce_ip.clone().unwrap_or_default()),
        ("announce-port", g.announce_port.to_string()),
        ("sentinel-user", g.sentinel_auth_user.clone().unwrap_or_default()),
        ("sentinel-pass", g.sentinel_auth_pass.clone().unwrap_or_default()),
        ("loglevel", level.into()),
    ];
    let mut out: Vec<(&str, &str)> = Vec::new();
    for pattern in &ctx.args[3..] {
        for (name, v) in &values {
            if !out.iter().any(|(n, _)| n == name) && crate::util::glob::glob_match(pattern, name.as_bytes(), true) {
                out.push((name, v));
            }
        }
    }
    ctx.reply.map(out.len());
    for (name, v) in out {
        ctx.reply.bulk(name.as_bytes());
        if name == "announce-port" {
            ctx.reply.bulk_int(v.parse().unwrap_or(0));
        } else {
            ctx.reply.bulk(v.as_bytes());
        }
    }
    Ok(())
}

fn info_cache(ctx: &mut Ctx) -> CmdResult {
    let names: Vec<String> = ctx.args[2..].iter().map(|a| text(a)).collect();
    let st = sentinel(ctx)?.lock(ctx.server);
    reply::info_cache(ctx.reply, &st, &names);
    Ok(())
}

fn simulate_failure(ctx: &mut Ctx) -> CmdResult {
    let mut st = sentinel(ctx)?.lock(ctx.server);
    st.g.simfailure_flags = 0;
    for a in &ctx.args[2..] {
        let a = text(a);
        if a.eq_ignore_ascii_case("crash-after-election") {
            st.g.simfailure_flags |= crate::sentinel::SIMFAILURE_CRASH_AFTER_ELECTION;
            log::warning(
                "Failure simulation: this Sentinel will crash after being successfully elected as failover leader",
            );
        } else if a.eq_ignore_ascii_case("crash-after-promotion") {
            st.g.simfailure_flags |= crate::sentinel::SIMFAILURE_CRASH_AFTER_PROMOTION;
            log::warning("Failure simulation: this Sentinel will crash after promoting the selected replica to master");
        } else if a.eq_ignore_ascii_case("help") {
            ctx.reply.array(2);
            ctx.reply.bulk(b"crash-after-election");
            ctx.reply.bulk(b"crash-after-promotion");
            return Ok(());
        } else {
            return Err(CmdError::new("Unknown failure simulation specified"));
        }
    }
    ctx.reply.ok();
    Ok(())
}

fn debug(ctx: &mut Ctx) -> CmdResult {
    let mut st = sentinel(ctx)?.lock(ctx.server);
    if ctx.args.len() == 2 {
        reply::debug(ctx.reply, &st);
        return Ok(());
    }
    let mut j = 2;
    while j < ctx.args.len() {
        let option = text(&ctx.args[j]);
        let more = ctx.args.len() - 1 - j;
        let Some(field) = st.g.periods.field(&option).filter(|_| more > 0) else {
            return Err(CmdError::new(format!("Unknown option or number of arguments for SENTINEL DEBUG '{option}'")));
        };
        j += 1;
        match args::int(&ctx.args[j]).ok().filter(|&n| n > 0) {
            Some(n) => *field = n,
            None => {
                return Err(CmdError::new(format!(
                    "Invalid argument '{}' for SENTINEL DEBUG '{option}'",
                    text(&ctx.args[j])
                )))
            }
        }
        j += 1;
    }
    ctx.reply.ok();
    Ok(())
}

const HELP: &[&str] = &[
    "CKQUORUM <master-name>",
    "    Check if the current Sentinel configuration is able to reach the quorum",
    "    needed to failover a master and the majority needed to authorize the",
    "    failover.",
    "CONFIG SET param value [param value ...]",
    "    Set a global Sentinel configuration parameter.",
    "CONFIG GET <param> [param param param ...]",
    "    Get global Sentinel configuration parameter.",
    "DEBUG [<param> <value> ...]",
    "    Show a list of configurable time parameters and their values (milliseconds).",
    "    Or update current configurable parameters values (one or more).",
    "GET-MASTER-ADDR-BY-NAME <master-name>",
    "    Return the ip and port number of the master with that name.",
    "FAILOVER <master-name>",
    "    Manually failover a master node without asking for agreement from other",
    "    Sentinels",
    "FLUSHCONFIG",
    "    Force Sentinel to rewrite its configuration on disk, including the current",
    "    Sentinel state.",
    "INFO-CACHE <master-name>",
    "    Return last cached INFO output from masters and all its replicas.",
    "IS-MASTER-DOWN-BY-ADDR <ip> <port> <current-epoch> <runid>",
    "    Check if the master specified by ip:port is down from current Sentinel's",
    "    point of view.",
    "MASTER <master-name>",
    "    Show the state and info of the specified master.",
    "MASTERS",
    "    Show a list of monitored masters and their state.",
    "MONITOR <name> <ip> <port> <quorum>",
    "    Start monitoring a new master with the specified name, ip, port and quorum.",
    "MYID",
    "    Return the ID of the Sentinel instance.",
    "PENDING-SCRIPTS",
    "    Get pending scripts information.",
    "REMOVE <master-name>",
    "    Remove master from Sentinel's monitor list.",
    "REPLICAS <master-name>",
    "    Show a list of replicas for this master and their state.",
    "RESET <pattern>",
    "    Reset masters for specific master name matching this pattern.",
    "SENTINELS <master-name>",
    "    Show a list of Sentinel instances for this master and their state.",
    "SET <master-name> <option> <value> [<option> <value> ...]",
    "    Set configuration parameters for certain masters.",
    "SIMULATE-FAILURE [CRASH-AFTER-ELECTION] [CRASH-AFTER-PROMOTION] [HELP]",
    "    Simulate a Sentinel crash.",
];

fn help(ctx: &mut Ctx) -> CmdResult {
    super::server::reply_help(ctx, "SENTINEL", HELP);
    Ok(())
}

/// PUBLISH in sentinel mode: only hello messages, processed as if received on a master.
pub fn publish(ctx: &mut Ctx) -> CmdResult {
    if &ctx.args[1][..] != b"__sentinel__:hello" {
        return Err(CmdError::new("Only HELLO messages are accepted by Sentinel instances."));
    }
    let hello = text(&ctx.args[2]);
    sentinel(ctx)?.lock(ctx.server).process_hello(&hello);
    ctx.reply.int(1);
    Ok(())
}

/// ROLE in sentinel mode.
pub fn role(ctx: &mut Ctx) -> CmdResult {
    let st = sentinel(ctx)?.lock(ctx.server);
    reply::role(ctx.reply, &st);
    Ok(())
}
