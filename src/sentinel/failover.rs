//! The failover (Redis's failover state machine): once a master is ODOWN (or SENTINEL FAILOVER
//! forces it) a Sentinel starts a new epoch, waits to be elected leader, selects the best
//! replica, promotes it with REPLICAOF NO ONE, waits for it to report itself a master, points
//! the other replicas at it (parallel-syncs at a time), then switches the monitored address.
//! Instances are reconfigured as Redis does it: MULTI, SLAVEOF, CONFIG REWRITE, CLIENT KILL
//! TYPE normal / pubsub, EXEC.

use std::cmp::Ordering;

use super::instance::{Addr, FailoverState, Instance, Master};
use super::instance::{
    FAILOVER_IN_PROGRESS, FORCE_FAILOVER, O_DOWN, PROMOTED, RECONF_DONE, RECONF_INPROG, RECONF_SENT, S_DOWN,
};
use super::link::Pending;
use super::{now_ms, Global, State, Who, SIMFAILURE_CRASH_AFTER_ELECTION};
use crate::server::log;

/// Send the reconfiguration transaction to `who` (None: promote it). False when its link is down.
pub fn send_slaveof(m: &mut Master, who: &Who, to: Option<&Addr>) -> bool {
    let names: Vec<String> =
        ["MULTI", "SLAVEOF", "CONFIG", "CLIENT", "EXEC"].iter().map(|c| m.command_name(c).to_string()).collect();
    let (host, port) = match to {
        Some(a) => (a.announced().to_string(), a.port.to_string()),
        None => ("NO".to_string(), "ONE".to_string()),
    };
    let Some(inst) = m.get_mut(who) else { return false };
    let link = &mut inst.link;
    link.send(&[&names[0]], Pending::Discard)
        && link.send(&[&names[1], &host, &port], Pending::Discard)
        && link.send(&[&names[2], "REWRITE"], Pending::Discard)
        && link.send(&[&names[3], "KILL", "TYPE", "normal"], Pending::Discard)
        && link.send(&[&names[3], "KILL", "TYPE", "pubsub"], Pending::Discard)
        && link.send(&[&names[4]], Pending::Discard)
}

/// Start a failover: a new epoch, and a start time a little in the future.
pub fn start(g: &mut Global, m: &mut Master) {
    m.failover_state = FailoverState::WaitStart;
    m.inst.flags |= FAILOVER_IN_PROGRESS;
    g.current_epoch += 1;
    m.failover_epoch = g.current_epoch;
    let epoch = g.current_epoch.to_string();
    g.event_about(log::WARNING, "+new-epoch", &m.inst, &epoch);
    g.event(log::WARNING, "+try-failover", Some((&m.inst, None)), "");
    m.failover_start_time = now_ms() + (rand::random::<u64>() % 1000) as i64;
    m.failover_state_change_time = now_ms();
}

/// Start a failover of an ODOWN master unless one ran recently (twice the failover timeout).
pub fn start_if_needed(g: &mut Global, m: &mut Master) -> bool {
    if !m.inst.has(O_DOWN) || m.inst.has(FAILOVER_IN_PROGRESS) {
        return false;
    }
    if now_ms() - m.failover_start_time < m.failover_timeout * 2 {
        if m.failover_delay_logged != m.failover_start_time {
            m.failover_delay_logged = m.failover_start_time;
            let at = (m.failover_start_time + m.failover_timeout * 2) / 1000;
            log::notice(&format!("Next failover delay: I will not start a failover before {}", ctime(at)));
        }
        return false;
    }
    start(g, m);
    true
}

/// A unix time as ctime(3) writes it, without the newline.
fn ctime(secs: i64) -> String {
    let t = secs as libc::time_t;
    let mut buf = [0 as libc::c_char; 32];
    // SAFETY: ctime_r writes at most 26 bytes into the 32-byte buffer we pass.
    let p = unsafe { libc::ctime_r(&t, buf.as_mut_ptr()) };
    if p.is_null() {
        return secs.to_string();
    }
    let bytes: Vec<u8> = buf.iter().take_while(|c| **c != 0).map(|c| *c as u8).collect();
    String::from_utf8_lossy(&bytes).trim_end().to_string()
}

/// Redis's compareSlavesForPromotion: lower priority first, then the larger offset, then the
/// smaller run ID (a replica without one last).
pub fn compare_for_promotion(a: &Instance, b: &Instance) -> Ordering {
    a.slave_priority.cmp(&b.slave_priority).then_with(|| b.slave_repl_offset.cmp(&a.slave_repl_offset)).then_with(
        || match (&a.runid, &b.runid) {
            (None, None) => Ordering::Equal,
            (None, Some(_)) => Ordering::Greater,
            (Some(_), None) => Ordering::Less,
            (Some(x), Some(y)) => x.to_ascii_lowercase().cmp(&y.to_ascii_lowercase()),
        },
    )
}

/// The replica to promote (Redis's sentinelSelectSlave): up, recently answering, with recent
/// INFO, not disconnected from the master for too long, priority not 0; the best by
/// [`compare_for_promotion`].
pub fn select_replica(g: &Global, m: &Master) -> Option<String> {
    let now = now_ms();
    let mut max_down = 0;
    if m.inst.has(S_DOWN) {
        max_down += now - m.inst.s_down_since_time;
    }
    max_down += m.inst.down_after_period * 10;
    let validity = if m.inst.has(S_DOWN) { g.periods.ping_period * 5 } else { g.periods.info_period * 3 };
    let mut candidates: Vec<&Instance> = m
        .replicas
        .values()
        .filter(|r| {
            !r.has(S_DOWN | O_DOWN)
                && !r.link.disconnected()
                && now - r.link.last_avail_time <= g.periods.ping_period * 5
                && r.slave_priority != 0
                && now - r.info_refresh <= validity
                && r.master_link_down_time <= max_down
        })
        .collect();
    candidates.sort_by(|a, b| compare_for_promotion(a, b));
    candidates.first().map(|r| r.name.clone())
}

/// Abort a failover that has not promoted anything yet.
pub fn abort(m: &mut Master) {
    m.inst.flags &= !(FAILOVER_IN_PROGRESS | FORCE_FAILOVER);
    m.failover_state = FailoverState::None;
    m.failover_state_change_time = now_ms();
    if let Some(p) = m.promoted.take() {
        if let Some(r) = m.replicas.get_mut(&p) {
            r.flags &= !PROMOTED;
        }
    }
}

/// One step of the state machine.
pub fn state_machine(g: &mut Global, m: &mut Master) {
    if !m.inst.has(FAILOVER_IN_PROGRESS) {
        return;
    }
    match m.failover_state {
        FailoverState::WaitStart => wait_start(g, m),
        FailoverState::SelectSlave => select_slave(g, m),
        FailoverState::SendSlaveofNoOne => send_slaveof_noone(g, m),
        FailoverState::WaitPromotion => {
            if now_ms() - m.failover_state_change_time > m.failover_timeout {
                g.event(log::WARNING, "-failover-abort-slave-timeout", Some((&m.inst, None)), "");
                abort(m);
            }
        }
        FailoverState::ReconfSlaves => reconf_next_replica(g, m),
        FailoverState::None | FailoverState::UpdateConfig => {}
    }
}

fn wait_start(g: &mut Global, m: &mut Master) {
    let epoch = m.failover_epoch;
    let leader = super::election::leader(g, m, epoch);
    let is_leader = leader.as_ref().is_some_and(|l| l.eq_ignore_ascii_case(&g.myid));
    if !is_leader && !m.inst.has(FORCE_FAILOVER) {
        let timeout = g.periods.election_timeout.min(m.failover_timeout);
        if now_ms() - m.failover_start_time > timeout {
            g.event(log::WARNING, "-failover-abort-not-elected", Some((&m.inst, None)), "");
            abort(m);
        }
        return;
    }
    g.event(log::WARNING, "+elected-leader", Some((&m.inst, None)), "");
    if g.simfailure_flags & SIMFAILURE_CRASH_AFTER_ELECTION != 0 {
        g.crash = true;
    }
    m.failover_state = FailoverState::SelectSlave;
    m.failover_state_change_time = now_ms();
    g.event(log::WARNING, "+failover-state-select-slave", Some((&m.inst, None)), "");
}

fn select_slave(g: &mut Global, m: &mut Master) {
    match select_replica(g, m) {
        None => {
            g.event(log::WARNING, "-failover-abort-no-good-slave", Some((&m.inst, None)), "");
            abort(m);
        }
        Some(name) => {
            if let Some(r) = m.replicas.get_mut(&name) {
                r.flags |= PROMOTED;
            }
            let r = &m.replicas[&name];
            g.event(log::WARNING, "+selected-slave", Some((r, Some(&m.inst))), "");
            g.event(log::NOTICE, "+failover-state-send-slaveof-noone", Some((r, Some(&m.inst))), "");
            m.promoted = Some(name);
            m.failover_state = FailoverState::SendSlaveofNoOne;
            m.failover_state_change_time = now_ms();
        }
    }
}

fn send_slaveof_noone(g: &mut Global, m: &mut Master) {
    let Some(name) = m.promoted.clone() else { return };
    let disconnected = m.replicas.get(&name).is_none_or(|r| r.link.disconnected());
    if disconnected {
        if now_ms() - m.failover_state_change_time > m.failover_timeout {
            g.event(log::WARNING, "-failover-abort-slave-timeout", Some((&m.inst, None)), "");
            abort(m);
        }
        return;
    }
    if !send_slaveof(m, &Who::Replica(name.clone()), None) {
        return;
    }
    let r = &m.replicas[&name];
    g.event(log::NOTICE, "+failover-state-wait-promotion", Some((r, Some(&m.inst))), "");
    m.failover_state = FailoverState::WaitPromotion;
    m.failover_state_change_time = now_ms();
}

/// Point the replicas at the promoted one, parallel-syncs at a time, then detect the end.
fn reconf_next_replica(g: &mut Global, m: &mut Master) {
    let mut in_progress = m.replicas.values().filter(|r| r.has(RECONF_SENT | RECONF_INPROG)).count() as i64;
    let Some(promoted) = m.promoted.clone() else { return };
    let Some(to) = m.replicas.get(&promoted).map(|r| r.addr.clone()) else { return };
    let names: Vec<String> = m.replicas.keys().cloned().collect();
    let now = now_ms();
    for name in names {
        if in_progress >= m.parallel_syncs {
            break;
        }
        let Some(r) = m.replicas.get_mut(&name) else { continue };
        if r.has(PROMOTED | RECONF_DONE) {
            continue;
        }
        if r.has(RECONF_SENT) && now - r.slave_reconf_sent_time > g.periods.slave_reconf_timeout {
            r.flags &= !RECONF_SENT;
            r.flags |= RECONF_DONE;
            let r = &m.replicas[&name];
            g.event(log::NOTICE, "-slave-reconf-sent-timeout", Some((r, Some(&m.inst))), "");
        }
        let r = &m.replicas[&name];
        if r.has(RECONF_SENT | RECONF_INPROG) || r.link.disconnected() {
            continue;
        }
        if send_slaveof(m, &Who::Replica(name.clone()), Some(&to)) {
            if let Some(r) = m.replicas.get_mut(&name) {
                r.flags |= RECONF_SENT;
                r.slave_reconf_sent_time = now_ms();
            }
            let r = &m.replicas[&name];
            g.event(log::NOTICE, "+slave-reconf-sent", Some((r, Some(&m.inst))), "");
            in_progress += 1;
        }
    }
    detect_end(g, m);
}

/// The failover ends when every replica is reconfigured (or the timeout passes: then the rest
/// are told anyway, best effort).
fn detect_end(g: &mut Global, m: &mut Master) {
    let elapsed = now_ms() - m.failover_state_change_time;
    let Some(promoted) = m.promoted.clone() else { return };
    let Some(p) = m.replicas.get(&promoted) else { return };
    if p.has(S_DOWN) {
        return;
    }
    let to = p.addr.clone();
    let mut not_reconfigured = m.replicas.values().filter(|r| !r.has(PROMOTED | RECONF_DONE) && !r.has(S_DOWN)).count();
    let timeout = elapsed > m.failover_timeout;
    if timeout {
        not_reconfigured = 0;
        g.event(log::WARNING, "+failover-end-for-timeout", Some((&m.inst, None)), "");
    }
    if not_reconfigured == 0 {
        g.event(log::WARNING, "+failover-end", Some((&m.inst, None)), "");
        m.failover_state = FailoverState::UpdateConfig;
        m.failover_state_change_time = now_ms();
    }
    if timeout {
        let names: Vec<String> = m.replicas.keys().cloned().collect();
        for name in names {
            let r = &m.replicas[&name];
            if r.has(PROMOTED | RECONF_DONE | RECONF_SENT) || r.link.disconnected() {
                continue;
            }
            if send_slaveof(m, &Who::Replica(name.clone()), Some(&to)) {
                let r = &m.replicas[&name];
                g.event(log::NOTICE, "+slave-reconf-sent-be", Some((r, Some(&m.inst))), "");
                if let Some(r) = m.replicas.get_mut(&name) {
                    r.flags |= RECONF_SENT;
                }
            }
        }
    }
}

impl State {
    /// The failover is over: monitor the promoted replica under the master's name.
    pub fn switch_to_promoted(&mut self, name: &str) {
        let Some(m) = self.masters.get(name) else { return };
        let to = m.promoted.as_ref().and_then(|p| m.replicas.get(p)).map_or(m.inst.addr.clone(), |r| r.addr.clone());
        let rest =
            format!("{} {} {} {} {}", m.inst.name, m.inst.addr.announced(), m.inst.addr.port, to.announced(), to.port);
        self.g.event_about(log::WARNING, "+switch-master", &m.inst, &rest);
        self.reset_master_and_change_address(name, &to.host.clone(), to.port as i64);
    }

    /// Redis's sentinelResetMasterAndChangeAddress: the master moves to `host:port`; the old
    /// address and the other replicas become its replicas.
    pub fn reset_master_and_change_address(&mut self, name: &str, host: &str, port: i64) -> bool {
        let resolve = self.g.resolve_hostnames;
        let Ok(new_addr) = Addr::new(host, port, resolve) else { return false };
        let Some(m) = self.masters.get_mut(name) else { return false };
        let mut replicas: Vec<Addr> =
            m.replicas.values().filter(|r| r.addr != new_addr).map(|r| r.addr.clone()).collect();
        if new_addr != m.inst.addr {
            replicas.push(m.inst.addr.clone());
        }
        m.reset(true);
        m.inst.addr = new_addr;
        m.inst.o_down_since_time = 0;
        m.inst.s_down_since_time = 0;
        for a in replicas {
            if let Some(r) = m.add_replica(a) {
                let rname = r.name.clone();
                self.g.event(log::NOTICE, "+slave", Some((&m.replicas[&rname], Some(&m.inst))), "");
            }
        }
        self.g.flush();
        true
    }
}

#[cfg(test)]
mod tests {
    use super::super::instance::Kind;
    use super::*;

    fn replica(port: i64, priority: i64, offset: u64, runid: Option<&str>) -> Instance {
        let mut r = Instance::new(
            Kind::Replica,
            format!("127.0.0.1:{port}"),
            Addr::new("127.0.0.1", port, false).unwrap(),
            1000,
        );
        r.slave_priority = priority;
        r.slave_repl_offset = offset;
        r.runid = runid.map(String::from);
        r
    }

    /// A replica whose links are up, answering and with a fresh INFO.
    fn usable(port: i64, priority: i64, offset: u64) -> Instance {
        let mut r = replica(port, priority, offset, Some(&format!("id{port}")));
        let now = now_ms();
        for pubsub in [false, true] {
            let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
            if pubsub {
                r.link.pc_connecting = Some(1);
            } else {
                r.link.cc_connecting = Some(1);
            }
            assert!(r.link.install(pubsub, 1, tx, now));
        }
        r.link.update_connected(true);
        r.link.last_avail_time = now;
        r.info_refresh = now;
        r
    }

    #[test]
    fn replica_selection_skips_unusable_replicas() {
        let g = Global::new();
        let mut m = Master::new("m".into(), Addr::new("127.0.0.1", 1, false).unwrap(), 1, &g.periods);
        let add = |m: &mut Master, r: Instance| {
            m.replicas.insert(r.name.clone(), r);
        };
        add(&mut m, usable(2, 100, 10));
        add(&mut m, usable(3, 100, 50));
        let mut down = usable(4, 1, 99);
        down.flags |= S_DOWN;
        add(&mut m, down);
        add(&mut m, usable(5, 0, 99)); // priority 0: never promoted
        let mut stale = usable(6, 1, 99);
        stale.info_refresh -= g.periods.info_period * 4;
        add(&mut m, stale);
        add(&mut m, replica(7, 1, 99, Some("x"))); // never connected
        assert_eq!(select_replica(&g, &m).as_deref(), Some("127.0.0.1:3"));
        m.replicas.retain(|n, _| n != "127.0.0.1:3" && n != "127.0.0.1:2");
        assert_eq!(select_replica(&g, &m), None);
    }

    #[test]
    fn promotion_order() {
        let a = replica(1, 100, 10, Some("b"));
        let b = replica(2, 50, 5, Some("c"));
        let c = replica(3, 100, 20, Some("a"));
        let d = replica(4, 100, 20, None);
        let e = replica(5, 100, 20, Some("0"));
        let mut v = [&a, &b, &c, &d, &e];
        v.sort_by(|x, y| compare_for_promotion(x, y));
        let ports: Vec<u16> = v.iter().map(|r| r.addr.port).collect();
        assert_eq!(ports, vec![2, 5, 3, 4, 1]);
    }
}
