//! The timer (Redis's sentinelTimer), every 100 ms: the TILT check, then for every master, its
//! replicas and its Sentinels: reconnect the links, send the periodic commands, check SDOWN;
//! for masters also ODOWN, the failover and asking the other Sentinels.

use super::instance::{FailoverState, Kind, Master};
use super::link::Pending;
use super::{now_ms, Global, InstanceId, State, Who};
use crate::server::log;

impl State {
    pub fn tick(&mut self) {
        self.g.check_tilt();
        let names: Vec<String> = self.masters.keys().cloned().collect();
        let mut switch_to = None;
        for name in names {
            let Some(m) = self.masters.get_mut(&name) else { continue };
            handle(&mut self.g, m, &Who::Master);
            let replicas: Vec<String> = m.replicas.keys().cloned().collect();
            for r in replicas {
                handle(&mut self.g, m, &Who::Replica(r));
            }
            let sentinels: Vec<String> = m.sentinels.keys().cloned().collect();
            for s in sentinels {
                handle(&mut self.g, m, &Who::Sentinel(s));
            }
            if m.failover_state == FailoverState::UpdateConfig {
                switch_to = Some(name);
            }
        }
        if let Some(name) = switch_to {
            self.switch_to_promoted(&name);
        }
        self.g.run_scripts();
    }
}

impl Global {
    /// Enter TILT when the clock jumped or the process stalled (Redis's sentinelCheckTiltCondition).
    fn check_tilt(&mut self) {
        let now = now_ms();
        let delta = now - self.previous_time;
        if delta < 0 || delta > self.periods.tilt_trigger {
            self.tilt = true;
            self.tilt_start_time = now;
            self.event(log::WARNING, "+tilt", None, "#tilt mode entered");
        }
        self.previous_time = now;
    }
}

/// Redis's sentinelHandleRedisInstance.
fn handle(g: &mut Global, m: &mut Master, who: &Who) {
    reconnect(g, m, who);
    send_periodic(g, m, who);
    if g.tilt {
        if now_ms() - g.tilt_start_time < g.periods.tilt_period {
            return;
        }
        g.tilt = false;
        g.event(log::WARNING, "-tilt", None, "#tilt mode exited");
    }
    super::down::check_sdown(g, m, who);
    if *who == Who::Master {
        super::down::check_odown(g, m);
        if super::failover::start_if_needed(g, m) {
            super::down::ask_others(g, m, true);
        }
        super::failover::state_machine(g, m);
        super::down::ask_others(g, m, false);
    }
}

/// Start the connections an instance lacks, at most once per ping period.
fn reconnect(g: &mut Global, m: &mut Master, who: &Who) {
    let master_name = m.inst.name.clone();
    let Some(inst) = m.get_mut(who) else { return };
    if !inst.link.disconnected() || inst.addr.port == 0 {
        return;
    }
    let now = now_ms();
    if now - inst.link.last_reconn_time < g.periods.ping_period {
        return;
    }
    inst.link.last_reconn_time = now;
    let id = InstanceId { master: master_name, kind: inst.kind, name: inst.name.clone() };
    if inst.link.cc.is_none() && inst.link.cc_connecting.is_none() {
        let generation = g.generation();
        inst.link.cc_connecting = Some(generation);
        g.connects.push((id.clone(), false, inst.addr.clone(), generation));
    }
    if inst.kind != Kind::Sentinel && inst.link.pc.is_none() && inst.link.pc_connecting.is_none() {
        let generation = g.generation();
        inst.link.pc_connecting = Some(generation);
        g.connects.push((id, true, inst.addr.clone(), generation));
    }
}

/// PING, INFO and hello when they are due (Redis's sentinelSendPeriodicCommands).
fn send_periodic(g: &mut Global, m: &mut Master, who: &Who) {
    let master_busy = m.inst.has(super::instance::O_DOWN | super::instance::FAILOVER_IN_PROGRESS);
    let info_cmd = m.command_name("INFO").to_string();
    let ping_cmd = m.command_name("PING").to_string();
    let now = now_ms();
    let Some(inst) = m.get_mut(who) else { return };
    if inst.link.disconnected() || inst.link.pending_commands >= 100 {
        return;
    }
    let info_period = if inst.kind == Kind::Replica && (master_busy || inst.master_link_down_time != 0) {
        1000
    } else {
        g.periods.info_period
    };
    let ping_period = inst.down_after_period.min(g.periods.ping_period);
    if inst.kind != Kind::Sentinel && (inst.info_refresh == 0 || now - inst.info_refresh > info_period) {
        inst.link.send(&[info_cmd.as_str()], Pending::Info);
    }
    if now - inst.link.last_pong_time > ping_period && now - inst.link.last_ping_time > ping_period / 2 {
        send_ping(&mut inst.link, &ping_cmd);
    }
    if now - inst.last_pub_time > g.periods.publish_period {
        super::hello::send_hello(g, m, who);
    }
}

/// Send a PING, remembering when the first unanswered one left.
pub fn send_ping(link: &mut super::link::Link, cmd: &str) -> bool {
    if !link.send(&[cmd], Pending::Ping) {
        return false;
    }
    link.last_ping_time = now_ms();
    if link.act_ping_time == 0 {
        link.act_ping_time = link.last_ping_time;
    }
    true
}
