//! Failure detection: SDOWN (an instance that did not answer PING for down-after-milliseconds,
//! a master reporting itself a replica for too long, or a rebooted master too slow to answer),
//! ODOWN (a master SDOWN for at least `quorum` Sentinels, asked with SENTINEL
//! IS-MASTER-DOWN-BY-ADDR), and closing links that look stuck.

use super::instance::{FailoverState, Kind, Master, MASTER_DOWN, MASTER_REBOOT, O_DOWN, SCRIPT_KILL_SENT, S_DOWN};
use super::link::Pending;
use super::resp::Reply;
use super::{now_ms, Global, Who};
use crate::server::log;

/// Redis's sentinelCheckSubjectivelyDown.
pub fn check_sdown(g: &mut Global, m: &mut Master, who: &Who) {
    let now = now_ms();
    let (reboot_period, reboot_since) = (m.master_reboot_down_after_period, m.master_reboot_since_time);
    let Some(inst) = m.get_mut(who) else { return };
    let link = &mut inst.link;
    let elapsed = if link.act_ping_time != 0 {
        now - link.act_ping_time
    } else if link.disconnected() {
        now - link.last_avail_time
    } else {
        0
    };
    let half = inst.down_after_period / 2;
    if link.cc.is_some()
        && now - link.cc_conn_time > g.periods.min_link_reconnect_period
        && link.act_ping_time != 0
        && now - link.act_ping_time > half
        && now - link.last_pong_time > half
    {
        link.close_cc();
    }
    if link.pc.is_some()
        && now - link.pc_conn_time > g.periods.min_link_reconnect_period
        && now - link.pc_last_activity > g.periods.publish_period * 3
    {
        link.close_pc();
    }
    let master_says_replica = inst.kind == Kind::Master
        && inst.role_reported == Kind::Replica
        && now - inst.role_reported_time > inst.down_after_period + g.periods.info_period * 2;
    let reboot_slow = inst.has(MASTER_REBOOT) && now - reboot_since > reboot_period;
    let down = elapsed > inst.down_after_period || master_says_replica || reboot_slow;
    if down {
        if !inst.has(S_DOWN) {
            inst.s_down_since_time = now;
            inst.flags |= S_DOWN;
            let (i, mm) = pick(m, who);
            g.event(log::WARNING, "+sdown", Some((i, mm)), "");
        }
    } else if inst.has(S_DOWN) {
        inst.flags &= !(S_DOWN | SCRIPT_KILL_SENT);
        let (i, mm) = pick(m, who);
        g.event(log::WARNING, "-sdown", Some((i, mm)), "");
    }
}

fn pick<'a>(m: &'a Master, who: &Who) -> (&'a super::instance::Instance, Option<&'a super::instance::Instance>) {
    match m.get(who) {
        Some(i) if *who != Who::Master => (i, Some(&m.inst)),
        _ => (&m.inst, None),
    }
}

/// Redis's sentinelCheckObjectivelyDown.
pub fn check_odown(g: &mut Global, m: &mut Master) {
    let mut quorum = 0u32;
    let mut odown = false;
    if m.inst.has(S_DOWN) {
        quorum = 1 + m.sentinels.values().filter(|s| s.has(MASTER_DOWN)).count() as u32;
        odown = quorum >= m.quorum;
    }
    if odown {
        if !m.inst.has(O_DOWN) {
            m.inst.flags |= O_DOWN;
            m.inst.o_down_since_time = now_ms();
            let rest = format!("#quorum {}/{}", quorum, m.quorum);
            g.event(log::WARNING, "+odown", Some((&m.inst, None)), &rest);
        }
    } else if m.inst.has(O_DOWN) {
        m.inst.flags &= !O_DOWN;
        g.event(log::WARNING, "-odown", Some((&m.inst, None)), "");
    }
}

/// Ask the other Sentinels whether they see the master down (and, during a failover, for
/// their vote); stale answers are forgotten (Redis's sentinelAskMasterStateToOtherSentinels).
pub fn ask_others(g: &mut Global, m: &mut Master, forced: bool) {
    let now = now_ms();
    let sdown = m.inst.has(S_DOWN);
    let host = m.inst.addr.announced().to_string();
    let port = m.inst.addr.port.to_string();
    let epoch = g.current_epoch.to_string();
    let runid = if m.failover_state > FailoverState::None { g.myid.clone() } else { "*".to_string() };
    let cmd = m.command_name("SENTINEL").to_string();
    for s in m.sentinels.values_mut() {
        let elapsed = now - s.last_master_down_reply_time;
        if elapsed > g.periods.ask_period * 5 {
            s.flags &= !MASTER_DOWN;
            s.leader = None;
        }
        if !sdown || s.link.disconnected() {
            continue;
        }
        if !forced && now - s.last_master_down_reply_time < g.periods.ask_period {
            continue;
        }
        s.link.send(&[&cmd, "is-master-down-by-addr", &host, &port, &epoch, &runid], Pending::IsMasterDown);
    }
}

/// A reply to IS-MASTER-DOWN-BY-ADDR: `[down (0|1), leader runid or *, leader epoch]`.
pub fn on_is_master_down_reply(m: &mut Master, sentinel: &str, reply: &Reply) {
    let Some(s) = m.sentinels.get_mut(sentinel) else { return };
    let Reply::Array(items) = reply else { return };
    let [Reply::Int(down), Reply::Bulk(leader), Reply::Int(epoch)] = items.as_slice() else { return };
    s.last_master_down_reply_time = now_ms();
    if *down == 1 {
        s.flags |= MASTER_DOWN;
    } else {
        s.flags &= !MASTER_DOWN;
    }
    if leader.as_slice() != b"*" {
        let leader = String::from_utf8_lossy(leader).into_owned();
        if s.leader_epoch as i64 != *epoch {
            log::notice(&format!("{} voted for {} {}", s.name, leader, epoch));
        }
        s.leader = Some(leader);
        s.leader_epoch = (*epoch).max(0) as u64;
    }
}
