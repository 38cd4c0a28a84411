//! Sentinel's configuration: the `sentinel ...` directives of the configuration file (applied
//! once the whole file is read: first the global ones, then `monitor`, then the per-master
//! ones, so their order in the file does not matter), and the lines written back at every
//! change (Redis's rewriteConfigSentinelOption: myid, epochs, known replicas and Sentinels).

use super::instance::{Addr, Instance, Kind, Master};
use super::State;
use crate::config::rewrite::{repr, Rewrite};
use crate::config::UserDirective;
use crate::util::num::atoi;

/// Directives applied before `monitor` lines.
const PRE_MONITOR: &[&str] = &[
    "announce-ip",
    "announce-port",
    "deny-scripts-reconfig",
    "sentinel-user",
    "sentinel-pass",
    "current-epoch",
    "myid",
    "resolve-hostnames",
    "announce-hostnames",
];

/// Redis's yesnotoi.
pub fn yes_no(s: &str) -> Option<bool> {
    if s.eq_ignore_ascii_case("yes") {
        Some(true)
    } else if s.eq_ignore_ascii_case("no") {
        Some(false)
    } else {
        None
    }
}

/// C's strtoull on a decimal number (0 when none).
fn strtoull(s: &str) -> u64 {
    let t = s.trim_start();
    let end = t.bytes().position(|b| !b.is_ascii_digit()).unwrap_or(t.len());
    t[..end].parse().unwrap_or(0)
}

/// Apply the queued directives: the state, or Redis's fatal configuration error.
pub fn load(directives: &[UserDirective]) -> Result<State, String> {
    let mut st = State::default();
    let word = |d: &UserDirective| String::from_utf8_lossy(d.words.first().map_or(&[][..], |w| w)).to_ascii_lowercase();
    let pre = directives.iter().filter(|d| PRE_MONITOR.contains(&word(d).as_str()));
    let monitor = directives.iter().filter(|d| word(d) == "monitor");
    let post = directives.iter().filter(|d| word(d) != "monitor" && !PRE_MONITOR.contains(&word(d).as_str()));
    for d in pre.chain(monitor).chain(post) {
        let argv: Vec<String> = d.words.iter().map(|w| String::from_utf8_lossy(w).into_owned()).collect();
        if let Err(e) = apply(&mut st, &argv) {
            return Err(format!(
                "\n*** FATAL CONFIG FILE ERROR (Redis {}) ***\nReading the configuration file, at line {}\n>>> '{}'\n{}",
                crate::REDIS_VERSION,
                d.line,
                d.text,
                e
            ));
        }
    }
    Ok(st)
}

fn master<'a>(st: &'a mut State, name: &str) -> Result<&'a mut Master, &'static str> {
    st.masters.get_mut(name).ok_or("No such master with specified name.")
}

/// One directive (the words after `sentinel`), as Redis's sentinelHandleConfiguration.
pub fn apply(st: &mut State, argv: &[String]) -> Result<(), &'static str> {
    let name = argv[0].to_ascii_lowercase();
    let resolve = st.g.resolve_hostnames;
    match (name.as_str(), argv.len()) {
        ("monitor", 5) => {
            let quorum = atoi(&argv[4]);
            if quorum <= 0 {
                return Err("Quorum must be 1 or greater.");
            }
            let addr = Addr::new(&argv[2], atoi(&argv[3]), resolve)?;
            if st.masters.contains_key(&argv[1]) {
                return Err("Duplicate master name.");
            }
            let m = Master::new(argv[1].clone(), addr, quorum as u32, &st.g.periods);
            st.masters.insert(argv[1].clone(), m);
        }
        ("down-after-milliseconds", 3) => {
            let m = master(st, &argv[1])?;
            m.inst.down_after_period = atoi(&argv[2]);
            if m.inst.down_after_period <= 0 {
                return Err("negative or zero time parameter.");
            }
            m.propagate_down_after();
        }
        ("failover-timeout", 3) => {
            let m = master(st, &argv[1])?;
            m.failover_timeout = atoi(&argv[2]);
            if m.failover_timeout <= 0 {
                return Err("negative or zero time parameter.");
            }
        }
        ("parallel-syncs", 3) => master(st, &argv[1])?.parallel_syncs = atoi(&argv[2]),
        ("notification-script", 3) => {
            let m = master(st, &argv[1])?;
            if !executable(&argv[2]) {
                return Err("Notification script seems non existing or non executable.");
            }
            m.inst.notification_script = Some(argv[2].clone());
        }
        ("client-reconfig-script", 3) => {
            let m = master(st, &argv[1])?;
            if !executable(&argv[2]) {
                return Err("Client reconfiguration script seems non existing or non executable.");
            }
            m.client_reconfig_script = Some(argv[2].clone());
        }
        ("auth-pass", 3) => master(st, &argv[1])?.auth_pass = Some(argv[2].clone()),
        ("auth-user", 3) => master(st, &argv[1])?.auth_user = Some(argv[2].clone()),
        ("current-epoch", 2) => st.g.current_epoch = st.g.current_epoch.max(strtoull(&argv[1])),
        ("myid", 2) => {
            if argv[1].len() != 40 {
                return Err("Malformed Sentinel id in myid option.");
            }
            st.g.myid = argv[1].clone();
        }
        ("config-epoch", 3) => {
            let epoch = strtoull(&argv[2]);
            master(st, &argv[1])?.config_epoch = epoch;
            st.g.current_epoch = st.g.current_epoch.max(epoch);
        }
        ("leader-epoch", 3) => master(st, &argv[1])?.inst.leader_epoch = strtoull(&argv[2]),
        ("known-slave" | "known-replica", 4) => {
            let m = master(st, &argv[1])?;
            let addr = Addr::new(&argv[2], atoi(&argv[3]), resolve)?;
            if m.add_replica(addr).is_none() {
                return Err("Duplicate hostname and port for replica.");
            }
        }
        ("known-sentinel", 4) => {} // The old form without a run ID is ignored.
        ("known-sentinel", 5) => {
            let m = master(st, &argv[1])?;
            let addr = Addr::new(&argv[2], atoi(&argv[3]), resolve)?;
            if m.sentinels.contains_key(&argv[4]) {
                return Err("Duplicate runid for sentinel.");
            }
            let mut s = Instance::new(Kind::Sentinel, argv[4].clone(), addr, m.inst.down_after_period);
            s.runid = Some(argv[4].clone());
            m.sentinels.insert(argv[4].clone(), s);
        }
        ("rename-command", 4) => {
            let m = master(st, &argv[1])?;
            if m.renamed.iter().any(|(from, _)| from.eq_ignore_ascii_case(&argv[2])) {
                return Err("Same command renamed multiple times with rename-command.");
            }
            m.renamed.push((argv[2].clone(), argv[3].clone()));
        }
        ("announce-ip", 2) => {
            if !argv[1].is_empty() {
                st.g.announce_ip = Some(argv[1].clone());
            }
        }
        ("announce-port", 2) => st.g.announce_port = atoi(&argv[1]).clamp(0, 65535) as u16,
        ("deny-scripts-reconfig", 2) => {
            st.g.deny_scripts_reconfig =
                yes_no(&argv[1]).ok_or("Please specify yes or no for the deny-scripts-reconfig options.")?
        }
        ("sentinel-user", 2) => {
            if !argv[1].is_empty() {
                st.g.sentinel_auth_user = Some(argv[1].clone());
            }
        }
        ("sentinel-pass", 2) => {
            if !argv[1].is_empty() {
                st.g.sentinel_auth_pass = Some(argv[1].clone());
            }
        }
        ("resolve-hostnames", 2) => {
            st.g.resolve_hostnames =
                yes_no(&argv[1]).ok_or("Please specify yes or no for the resolve-hostnames option.")?
        }
        ("announce-hostnames", 2) => {
            st.g.announce_hostnames =
                yes_no(&argv[1]).ok_or("Please specify yes or no for the announce-hostnames option.")?
        }
        ("master-reboot-down-after-period", 3) => {
            let m = master(st, &argv[1])?;
            m.master_reboot_down_after_period = atoi(&argv[2]);
            if m.master_reboot_down_after_period < 0 {
                return Err("negative time parameter.");
            }
        }
        _ => return Err("Unrecognized sentinel configuration statement."),
    }
    Ok(())
}

/// Whether a script path exists and is executable (access(X_OK)).
pub fn executable(path: &str) -> bool {
    let Ok(c) = std::ffi::CString::new(path) else { return false };
    // SAFETY: access only reads the NUL-terminated path.
    unsafe { libc::access(c.as_ptr(), libc::X_OK) == 0 }
}

/// Whether the configuration file may be written (access(W_OK)).
pub fn writable(path: &str) -> bool {
    let Ok(c) = std::ffi::CString::new(path) else { return false };
    // SAFETY: access only reads the NUL-terminated path.
    unsafe { libc::access(c.as_ptr(), libc::W_OK) == 0 }
}

/// One step of the rewrite.
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    /// (option, line, force)
    Line(String, String, bool),
    /// A known replica: reuse an old `known-slave` line, else write `known-replica`.
    KnownReplica(String),
    Processed(&'static str),
}

/// The rewrite of Sentinel's state, as Redis orders it.
pub fn rewrite_lines(st: &State) -> Vec<Op> {
    let g = &st.g;
    let mut ops = Vec::new();
    let l = |opt: &str, text: String, force: bool| Op::Line(format!("sentinel {opt}"), text, force);
    let mut line = |op: Op| ops.push(op);
    let yn = |b: bool| if b { "yes" } else { "no" };
    line(l("myid", format!("sentinel myid {}", g.myid), true));
    line(l(
        "deny-scripts-reconfig",
        format!("sentinel deny-scripts-reconfig {}", yn(g.deny_scripts_reconfig)),
        !g.deny_scripts_reconfig,
    ));
    line(l(
        "resolve-hostnames",
        format!("sentinel resolve-hostnames {}", yn(g.resolve_hostnames)),
        g.resolve_hostnames,
    ));
    line(l(
        "announce-hostnames",
        format!("sentinel announce-hostnames {}", yn(g.announce_hostnames)),
        g.announce_hostnames,
    ));
    for m in st.masters.values() {
        let n = &m.inst.name;
        let cur = m.current_addr();
        line(l("monitor", format!("sentinel monitor {n} {} {} {}", cur.announced(), cur.port, m.quorum), true));
        if m.inst.down_after_period != g.periods.default_down_after {
            line(l(
                "down-after-milliseconds",
                format!("sentinel down-after-milliseconds {n} {}", m.inst.down_after_period),
                true,
            ));
        }
        if m.failover_timeout != g.periods.default_failover_timeout {
            line(l("failover-timeout", format!("sentinel failover-timeout {n} {}", m.failover_timeout), true));
        }
        if m.parallel_syncs != 1 {
            line(l("parallel-syncs", format!("sentinel parallel-syncs {n} {}", m.parallel_syncs), true));
        }
        if let Some(s) = &m.inst.notification_script {
            line(l("notification-script", format!("sentinel notification-script {n} {s}"), true));
        }
        if let Some(s) = &m.client_reconfig_script {
            line(l("client-reconfig-script", format!("sentinel client-reconfig-script {n} {s}"), true));
        }
        if let Some(p) = &m.auth_pass {
            line(l("auth-pass", format!("sentinel auth-pass {n} {p}"), true));
        }
        if let Some(u) = &m.auth_user {
            line(l("auth-user", format!("sentinel auth-user {n} {u}"), true));
        }
        if m.master_reboot_down_after_period != 0 {
            line(l(
                "master-reboot-down-after-period",
                format!("sentinel master-reboot-down-after-period {n} {}", m.master_reboot_down_after_period),
                true,
            ));
        }
        line(l("config-epoch", format!("sentinel config-epoch {n} {}", m.config_epoch), true));
        line(l("leader-epoch", format!("sentinel leader-epoch {n} {}", m.inst.leader_epoch), true));
        for r in m.replicas.values() {
            // The promoted replica, mid-failover, is written as the old master's address.
            let a = if r.addr == *cur { &m.inst.addr } else { &r.addr };
            line(Op::KnownReplica(format!("sentinel known-replica {n} {} {}", a.announced(), a.port)));
        }
        for s in m.sentinels.values() {
            if let Some(id) = &s.runid {
                line(l(
                    "known-sentinel",
                    format!("sentinel known-sentinel {n} {} {} {id}", s.addr.announced(), s.addr.port),
                    true,
                ));
            }
        }
        for (from, to) in &m.renamed {
            line(l("rename-command", format!("sentinel rename-command {n} {from} {to}"), true));
        }
    }
    line(l("current-epoch", format!("sentinel current-epoch {}", g.current_epoch), true));
    let mut tail = |opt: &'static str, text: Option<String>| match text {
        Some(t) => ops.push(Op::Line(format!("sentinel {opt}"), t, true)),
        None => ops.push(Op::Processed(opt)),
    };
    tail("announce-ip", g.announce_ip.as_ref().map(|ip| format!("sentinel announce-ip {}", repr(ip.as_bytes()))));
    tail("announce-port", (g.announce_port != 0).then(|| format!("sentinel announce-port {}", g.announce_port)));
    tail("sentinel-user", g.sentinel_auth_user.as_ref().map(|u| format!("sentinel sentinel-user {u}")));
    tail("sentinel-pass", g.sentinel_auth_pass.as_ref().map(|p| format!("sentinel sentinel-pass {p}")));
    for opt in [
        "monitor",
        "down-after-milliseconds",
        "failover-timeout",
        "parallel-syncs",
        "notification-script",
        "client-reconfig-script",
        "auth-pass",
        "auth-user",
        "config-epoch",
        "leader-epoch",
        "known-replica",
        "known-sentinel",
        "rename-command",
        "master-reboot-down-after-period",
    ] {
        ops.push(Op::Processed(opt));
    }
    ops
}

/// Apply the ops to a rewrite of the file.
pub fn apply_rewrite(ops: &[Op], rw: &mut Rewrite) {
    for op in ops {
        match op {
            Op::Line(opt, text, force) => {
                rw.line(opt, text.clone(), *force);
            }
            Op::KnownReplica(text) => {
                if !rw.line("sentinel known-slave", text.clone(), false) {
                    rw.line("sentinel known-replica", text.clone(), true);
                }
            }
            Op::Processed(opt) => rw.processed(&format!("sentinel {opt}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn directives(text: &str) -> Vec<UserDirective> {
        text.lines()
            .enumerate()
            .map(|(i, l)| UserDirective {
                words: l.split(' ').skip(1).map(|w| w.as_bytes().to_vec()).collect(),
                line: i + 1,
                text: l.to_string(),
            })
            .collect()
    }

    #[test]
    fn per_master_lines_may_precede_monitor() {
        let st = load(&directives(
            "sentinel down-after-milliseconds m 20000\nsentinel myid 0123456789012345678901234567890123456789\nsentinel monitor m 127.0.0.1 30000 2\nsentinel known-replica m 127.0.0.1 30001\nsentinel known-sentinel m 127.0.0.1 20001 abcd\nsentinel config-epoch m 7",
        ))
        .unwrap();
        let m = &st.masters["m"];
        assert_eq!((m.inst.down_after_period, m.quorum, m.config_epoch), (20000, 2, 7));
        assert_eq!(st.g.current_epoch, 7);
        assert!(m.replicas.contains_key("127.0.0.1:30001") && m.sentinels.contains_key("abcd"));
    }

    #[test]
    fn errors_name_the_line() {
        let e = load(&directives("sentinel monitor m 127.0.0.1 30000 0")).err().unwrap();
        assert!(
            e.ends_with("at line 1\n>>> 'sentinel monitor m 127.0.0.1 30000 0'\nQuorum must be 1 or greater."),
            "{e}"
        );
        let e = load(&directives("sentinel parallel-syncs x 1")).err().unwrap();
        assert!(e.ends_with("No such master with specified name."));
        let e = load(&directives("sentinel bogus 1")).err().unwrap();
        assert!(e.ends_with("Unrecognized sentinel configuration statement."));
    }

    #[test]
    fn rewrite_keeps_places_and_appends_state() {
        let old = "# c\nsentinel down-after-milliseconds m 20000\nsentinel monitor m 10.0.0.1 30000 2\nsentinel known-slave m 10.0.0.2 30001\n";
        let st = load(&directives(
            "sentinel down-after-milliseconds m 20000\nsentinel monitor m 10.0.0.1 30000 2\nsentinel known-slave m 10.0.0.2 30001\nsentinel myid 0123456789012345678901234567890123456789",
        ))
        .unwrap();
        let ops = rewrite_lines(&st);
        let mut rw = Rewrite::from_text(old, |n| Some(n.to_string()));
        apply_rewrite(&ops, &mut rw);
        let text = rw.finish();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            &lines[..4],
            &[
                "# c",
                "sentinel down-after-milliseconds m 20000",
                "sentinel monitor m 10.0.0.1 30000 2",
                "sentinel known-replica m 10.0.0.2 30001"
            ]
        );
        assert!(text.contains("sentinel myid 0123456789012345678901234567890123456789\n"));
        assert!(text.contains("sentinel config-epoch m 0\nsentinel leader-epoch m 0\n"));
        assert!(text.ends_with("sentinel current-epoch 0\n"));
    }
}
