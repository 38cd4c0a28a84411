//! INFO replies from masters and replicas (Redis's sentinelRefreshInstanceInfo): the run ID
//! (a new one is a reboot), the replicas a master lists (new ones are discovered), a
//! replica's master, link status, priority and offset; then what the reported role means:
//! a promotion during a failover, a replica to convert or to fix, a reconfiguration's progress.

use super::instance::{Addr, FailoverState, Kind, Master, FAILOVER_IN_PROGRESS, MASTER_REBOOT, PROMOTED};
use super::instance::{RECONF_DONE, RECONF_INPROG, RECONF_SENT};
use super::{now_ms, Global, Who, SIMFAILURE_CRASH_AFTER_PROMOTION};
use crate::server::log;
use crate::util::num::atoi;

/// What one INFO reply says, as Sentinel reads it.
#[derive(Debug, Default, PartialEq)]
pub struct Parsed {
    pub run_id: Option<String>,
    /// (ip, port) of each `slaveN:` line.
    pub replicas: Vec<(String, i64)>,
    pub master_link_down_since: Option<i64>,
    pub role: Option<Kind>,
    pub master_host: Option<String>,
    pub master_port: Option<i64>,
    pub master_link_up: Option<bool>,
    pub slave_priority: Option<i64>,
    pub slave_repl_offset: Option<u64>,
    pub replica_announced: Option<i64>,
}

/// Parse an INFO text.
pub fn parse(info: &str) -> Parsed {
    let mut p = Parsed::default();
    for l in info.split("\r\n") {
        // (`get`: an instance's INFO is untrusted text, not always ASCII.)
        if let Some(id) = l.strip_prefix("run_id:").and_then(|v| v.get(..40)) {
            p.run_id = Some(id.to_string());
        }
        let b = l.as_bytes();
        if l.len() >= 7 && l.starts_with("slave") && b[5].is_ascii_digit() {
            if let Some(r) = replica_line(l) {
                p.replicas.push(r);
            }
        }
        if let Some(v) = l.strip_prefix("master_link_down_since_seconds").and_then(|v| v.get(1..)) {
            p.master_link_down_since = Some(atoi(v) * 1000);
        }
        if l.starts_with("role:master") {
            p.role = Some(Kind::Master);
        } else if l.starts_with("role:slave") {
            p.role = Some(Kind::Replica);
        }
        if p.role == Some(Kind::Replica) {
            if let Some(v) = l.strip_prefix("master_host:") {
                p.master_host = Some(v.to_string());
            }
            if let Some(v) = l.strip_prefix("master_port:") {
                p.master_port = Some(atoi(v));
            }
            if let Some(v) = l.strip_prefix("master_link_status:") {
                p.master_link_up = Some(v.eq_ignore_ascii_case("up"));
            }
            if let Some(v) = l.strip_prefix("slave_priority:") {
                p.slave_priority = Some(atoi(v));
            }
            if let Some(v) = l.strip_prefix("slave_repl_offset:") {
                p.slave_repl_offset = Some(atoi(v).max(0) as u64);
            }
            if let Some(v) = l.strip_prefix("replica_announced:") {
                p.replica_announced = Some(atoi(v));
            }
        }
    }
    p
}

/// `slave0:ip=...,port=...,...` (or the old `slave0:<ip>,<port>,<state>`): (ip, port).
fn replica_line(l: &str) -> Option<(String, i64)> {
    let value = &l[l.find(':')? + 1..];
    if !l.contains("ip=") {
        let mut it = value.split(',');
        let ip = it.next()?;
        let port = it.next()?;
        it.next()?;
        return Some((ip.to_string(), atoi(port)));
    }
    let field = |name: &str| value.split(',').find_map(|kv| kv.strip_prefix(name)).map(str::to_string);
    Some((field("ip=")?, atoi(&field("port=")?)))
}

/// Whether the master looks sane enough to reconfigure replicas after it.
pub fn master_looks_sane(g: &Global, m: &Master) -> bool {
    m.inst.role_reported == Kind::Master
        && !m.inst.has(super::instance::S_DOWN | super::instance::O_DOWN)
        && now_ms() - m.inst.info_refresh < g.periods.info_period * 2
}

/// Apply an INFO reply of `who` (a master or a replica of `m`).
pub fn refresh(g: &mut Global, m: &mut Master, who: &Who, info: &str) {
    let p = parse(info);
    let now = now_ms();
    let resolve = g.resolve_hostnames;
    let is_master = *who == Who::Master;
    let Some(inst) = m.get_mut(who) else { return };
    inst.info = Some(info.to_string());
    inst.master_link_down_time = 0;
    let mut reboot = false;
    if let Some(id) = &p.run_id {
        match &inst.runid {
            None => inst.runid = Some(id.clone()),
            Some(old) if old != id => {
                reboot = true;
                inst.runid = Some(id.clone());
            }
            _ => {}
        }
    }
    if let Some(d) = p.master_link_down_since {
        inst.master_link_down_time = d;
    }
    let role = p.role;
    if role == Some(Kind::Replica) {
        if let Some(h) = &p.master_host {
            if !inst.slave_master_host.as_ref().is_some_and(|o| o.eq_ignore_ascii_case(h)) {
                inst.slave_master_host = Some(h.clone());
                inst.slave_conf_change_time = now;
            }
        }
        if let Some(port) = p.master_port {
            if inst.slave_master_port != port {
                inst.slave_master_port = port;
                inst.slave_conf_change_time = now;
            }
        }
        if let Some(up) = p.master_link_up {
            inst.slave_master_link_up = up;
        }
        if let Some(v) = p.slave_priority {
            inst.slave_priority = v;
        }
        if let Some(v) = p.slave_repl_offset {
            inst.slave_repl_offset = v;
        }
        if let Some(v) = p.replica_announced {
            inst.replica_announced = v;
        }
    }
    inst.info_refresh = now;
    // The role, as Redis compares it: 0 (neither line) counts as a change too.
    let reported = role.unwrap_or(Kind::Sentinel);
    let role_changed = reported != inst.role_reported;
    if role_changed {
        inst.role_reported_time = now;
        inst.role_reported = reported;
        if role == Some(Kind::Replica) {
            inst.slave_conf_change_time = now;
        }
    }
    let inst_kind = inst.kind;
    if reboot {
        let rest = "";
        let (i, mm) = pick(m, who);
        g.event(log::NOTICE, "+reboot", Some((i, mm)), rest);
        if is_master && m.master_reboot_down_after_period != 0 {
            m.inst.flags |= MASTER_REBOOT;
            m.master_reboot_since_time = now;
        }
    }
    if is_master {
        for (ip, port) in &p.replicas {
            let Ok(addr) = Addr::new(ip, *port, resolve) else { continue };
            if m.replicas.contains_key(&addr.name()) {
                continue;
            }
            if let Some(r) = m.add_replica(addr) {
                let name = r.name.clone();
                let r = &m.replicas[&name];
                g.event(log::NOTICE, "+slave", Some((r, Some(&m.inst))), "");
                g.flush();
            }
        }
    }
    if role_changed {
        let kind = if inst_kind == reported { "+role-change" } else { "-role-change" };
        let rest = format!("new reported role is {}", if role == Some(Kind::Master) { "master" } else { "slave" });
        let (i, mm) = pick(m, who);
        g.event(log::VERBOSE, kind, Some((i, mm)), &rest);
    }
    if g.tilt {
        return;
    }
    let Who::Replica(name) = who else { return };
    let name = name.clone();
    if role == Some(Kind::Master) {
        replica_reports_master(g, m, &name);
    }
    if role == Some(Kind::Replica) {
        replica_reports_replica(g, m, &name);
    }
}

/// The instance and its master, for an event.
fn pick<'a>(m: &'a Master, who: &Who) -> (&'a super::instance::Instance, Option<&'a super::instance::Instance>) {
    match m.get(who) {
        Some(i) if *who != Who::Master => (i, Some(&m.inst)),
        _ => (&m.inst, None),
    }
}

/// A replica says it is a master: our promotion succeeded, or it must be turned back.
fn replica_reports_master(g: &mut Global, m: &mut Master, name: &str) {
    let Some(r) = m.replicas.get(name) else { return };
    let promoted = r.has(PROMOTED);
    if promoted && m.inst.has(FAILOVER_IN_PROGRESS) && m.failover_state == FailoverState::WaitPromotion {
        m.config_epoch = m.failover_epoch;
        m.failover_state = FailoverState::ReconfSlaves;
        m.failover_state_change_time = now_ms();
        g.flush();
        let r = &m.replicas[name];
        g.event(log::WARNING, "+promoted-slave", Some((r, Some(&m.inst))), "");
        if g.simfailure_flags & SIMFAILURE_CRASH_AFTER_PROMOTION != 0 {
            g.crash = true;
        }
        g.event(log::WARNING, "+failover-state-reconf-slaves", Some((&m.inst, None)), "");
        let (from, to) = (m.inst.addr.clone(), m.replicas[name].addr.clone());
        super::scripts::client_reconfig(g, m, true, &from, &to);
        super::hello::force_hello_update(g, m);
    } else {
        let wait = g.periods.publish_period * 4;
        let r = &m.replicas[name];
        if !promoted && master_looks_sane(g, m) && r.no_down_for(wait) && now_ms() - r.role_reported_time > wait {
            let to = m.inst.addr.clone();
            if super::failover::send_slaveof(m, &Who::Replica(name.to_string()), Some(&to)) {
                let r = &m.replicas[name];
                g.event(log::NOTICE, "+convert-to-slave", Some((r, Some(&m.inst))), "");
            }
        }
    }
}

/// A replica reports a master: fix it when it follows the wrong one; track a reconfiguration.
fn replica_reports_replica(g: &mut Global, m: &mut Master, name: &str) {
    let maddr = m.inst.addr.clone();
    let Some(r) = m.replicas.get(name) else { return };
    let follows_master = r.slave_master_port == maddr.port as i64
        && r.slave_master_host.as_ref().is_some_and(|h| maddr.same(h, maddr.port));
    if !follows_master {
        let wait = m.failover_timeout;
        if master_looks_sane(g, m)
            && r.no_down_for(wait)
            && now_ms() - r.slave_conf_change_time > wait
            && super::failover::send_slaveof(m, &Who::Replica(name.to_string()), Some(&maddr))
        {
            let r = &m.replicas[name];
            g.event(log::NOTICE, "+fix-slave-config", Some((r, Some(&m.inst))), "");
        }
    }
    let promoted_addr = m.promoted.as_ref().and_then(|p| m.replicas.get(p)).map(|p| p.addr.clone());
    let Some(r) = m.replicas.get_mut(name) else { return };
    if !r.has(RECONF_SENT | RECONF_INPROG) {
        return;
    }
    if r.has(RECONF_SENT) {
        if let (Some(pa), Some(h)) = (&promoted_addr, &r.slave_master_host) {
            if pa.same(h, pa.port) && r.slave_master_port == pa.port as i64 {
                r.flags &= !RECONF_SENT;
                r.flags |= RECONF_INPROG;
                let r = &m.replicas[name];
                g.event(log::NOTICE, "+slave-reconf-inprog", Some((r, Some(&m.inst))), "");
            }
        }
    }
    let Some(r) = m.replicas.get_mut(name) else { return };
    if r.has(RECONF_INPROG) && r.slave_master_link_up {
        r.flags &= !RECONF_INPROG;
        r.flags |= RECONF_DONE;
        let r = &m.replicas[name];
        g.event(log::NOTICE, "+slave-reconf-done", Some((r, Some(&m.inst))), "");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_master() {
        let info = "# Server\r\nrun_id:0123456789012345678901234567890123456789\r\n# Replication\r\nrole:master\r\nconnected_slaves:2\r\nslave0:ip=127.0.0.1,port=30001,state=online,offset=14,lag=0\r\nslave1:127.0.0.2,30002,online\r\nmaster_repl_offset:14\r\n";
        let p = parse(info);
        assert_eq!(p.run_id.as_deref(), Some("0123456789012345678901234567890123456789"));
        assert_eq!(p.role, Some(Kind::Master));
        assert_eq!(p.replicas, vec![("127.0.0.1".into(), 30001), ("127.0.0.2".into(), 30002)]);
        assert_eq!(p.master_host, None);
    }

    #[test]
    fn odd_text_does_not_panic() {
        let run_id = "€".repeat(14); // 42 bytes: byte 40 is inside a character
        let p = parse(&format!("run_id:{run_id}\r\nmaster_link_down_since_seconds€5\r\nslave0:€\r\n"));
        assert_eq!(p.run_id, None);
        assert_eq!(p.master_link_down_since, None);
        assert!(p.replicas.is_empty());
    }

    #[test]
    fn parses_a_replica() {
        let info = "role:slave\r\nmaster_host:127.0.0.1\r\nmaster_port:30000\r\nmaster_link_status:up\r\nmaster_link_down_since_seconds:3\r\nslave_repl_offset:1234\r\nslave_priority:50\r\nreplica_announced:0\r\n";
        let p = parse(info);
        assert_eq!(p.role, Some(Kind::Replica));
        assert_eq!(p.master_host.as_deref(), Some("127.0.0.1"));
        assert_eq!(p.master_port, Some(30000));
        assert_eq!(p.master_link_up, Some(true));
        assert_eq!(p.master_link_down_since, Some(3000));
        assert_eq!((p.slave_repl_offset, p.slave_priority, p.replica_announced), (Some(1234), Some(50), Some(0)));
    }
}
