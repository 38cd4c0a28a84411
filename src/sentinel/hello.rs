//! Hello messages (Redis's sentinelSendHello / sentinelProcessHelloMessage): every publish
//! period each Sentinel publishes on `__sentinel__:hello` of every instance it monitors (and
//! sends to the other Sentinels) `ip,port,runid,current_epoch,master,master_ip,master_port,
//! master_config_epoch`. Receiving one discovers Sentinels, raises the current epoch, and
//! takes a newer master configuration (a failover another Sentinel made).

use super::instance::{Addr, Instance, Kind, Master};
use super::link::Pending;
use super::{now_ms, Global, State, Who};
use crate::server::log;
use crate::util::num::atoi;

/// Send a hello through `who`'s command connection.
pub fn send_hello(g: &mut Global, m: &mut Master, who: &Who) -> bool {
    let addr = m.current_addr().clone();
    let publish = m.command_name("PUBLISH").to_string();
    let (name, config_epoch) = (m.inst.name.clone(), m.config_epoch);
    let Some(inst) = m.get_mut(who) else { return false };
    if inst.link.disconnected() {
        return false;
    }
    let ip = match &g.announce_ip {
        Some(ip) => ip.clone(),
        // Redis announces the local address of the command connection; the link tasks bind
        // no particular address, so the instance's own loopback/peer view is approximated by
        // the address that reaches it: the local IP of a connection to it.
        None => match local_ip_towards(&inst.addr) {
            Some(ip) => ip,
            None => return false,
        },
    };
    let port = if g.announce_port != 0 { g.announce_port } else { g.port };
    let payload =
        format!("{ip},{port},{},{},{name},{},{},{config_epoch}", g.myid, g.current_epoch, addr.announced(), addr.port);
    inst.link.send(&[&publish, "__sentinel__:hello", &payload], Pending::Publish)
}

/// The local IP address a connection to `addr` would use (a UDP socket's route, no packet sent).
fn local_ip_towards(addr: &Addr) -> Option<String> {
    let target: std::net::IpAddr = addr.ip.parse().ok()?;
    let bind = if target.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" };
    let sock = std::net::UdpSocket::bind(bind).ok()?;
    sock.connect((target, addr.port.max(1))).ok()?;
    Some(sock.local_addr().ok()?.ip().to_string())
}

/// Make every instance of the master send its hello at the next tick.
pub fn force_hello_update(g: &Global, m: &mut Master) {
    let back = g.periods.publish_period + 1;
    let all = std::iter::once(&mut m.inst).chain(m.sentinels.values_mut()).chain(m.replicas.values_mut());
    for i in all {
        if i.last_pub_time >= back {
            i.last_pub_time -= back;
        }
    }
}

impl State {
    /// A hello message, from a master's channel or PUBLISHed to us by another Sentinel.
    pub fn process_hello(&mut self, hello: &str) {
        let t: Vec<&str> = hello.split(',').collect();
        if t.len() != 8 {
            return;
        }
        let (ip, port, runid) = (t[0], atoi(t[1]), t[2]);
        let current_epoch: u64 = t[3].parse().unwrap_or(0);
        let (master_name, master_host, master_port) = (t[4], t[5], atoi(t[6]));
        let master_config_epoch: u64 = t[7].parse().unwrap_or(0);
        let resolve = self.g.resolve_hostnames;
        if !self.masters.contains_key(master_name) {
            return;
        }
        let known = self.masters[master_name]
            .sentinels
            .values()
            .any(|s| s.runid.as_deref() == Some(runid) && s.addr.same(ip, port as u16));
        let mut found = known;
        if !known {
            let m = self.masters.get_mut(master_name).expect("checked above");
            let removed = m.remove_sentinels_with_runid(runid);
            if removed > 0 {
                self.g.event(
                    log::NOTICE,
                    "+sentinel-address-switch",
                    Some((&m.inst, None)),
                    &format!("ip {ip} port {port} for {runid}"),
                );
            } else if let Some(other) = m.sentinels.values().find(|s| s.addr.same(ip, port as u16)) {
                // Another run ID at this address: that Sentinel restarted with a new ID; forget
                // the old one everywhere.
                let obsolete = other.runid.clone();
                self.g.event(log::NOTICE, "+sentinel-invalid-addr", Some((other, Some(&m.inst))), "");
                if let Some(old) = obsolete {
                    for m in self.masters.values_mut() {
                        m.remove_sentinels_with_runid(&old);
                    }
                }
            }
            let m = self.masters.get_mut(master_name).expect("checked above");
            if let Ok(addr) = Addr::new(ip, port, resolve) {
                if !m.sentinels.contains_key(runid) {
                    let mut si = Instance::new(Kind::Sentinel, runid.to_string(), addr, m.inst.down_after_period);
                    si.runid = Some(runid.to_string());
                    m.sentinels.insert(runid.to_string(), si);
                    if removed == 0 {
                        self.g.event(log::NOTICE, "+sentinel", Some((&m.sentinels[runid], Some(&m.inst))), "");
                    } else {
                        // The same Sentinel at a new address: update it for every master.
                        let new_addr = m.sentinels[runid].addr.clone();
                        for other in self.masters.values_mut() {
                            for s in other.sentinels.values_mut() {
                                if s.runid.as_deref() == Some(runid) && s.addr != new_addr {
                                    s.addr = new_addr.clone();
                                    s.link.close_all();
                                }
                            }
                        }
                    }
                    found = true;
                    self.g.flush();
                }
            }
        }
        if current_epoch > self.g.current_epoch {
            self.g.current_epoch = current_epoch;
            self.g.flush();
            let m = &self.masters[master_name];
            self.g.event_about(log::WARNING, "+new-epoch", &m.inst, &current_epoch.to_string());
        }
        let m = self.masters.get_mut(master_name).expect("checked above");
        let si_name = m.sentinels.values().find(|s| s.runid.as_deref() == Some(runid)).map(|s| s.name.clone());
        if found && m.config_epoch < master_config_epoch {
            m.config_epoch = master_config_epoch;
            if !m.inst.addr.same(master_host, master_port as u16) {
                if let Some(si) = si_name.as_ref().and_then(|n| m.sentinels.get(n)) {
                    self.g.event(log::WARNING, "+config-update-from", Some((si, Some(&m.inst))), "");
                }
                let rest = format!(
                    "{} {} {} {} {}",
                    m.inst.name,
                    m.inst.addr.announced(),
                    m.inst.addr.port,
                    master_host,
                    master_port
                );
                // Redis's +switch-master message has no instance prefix.
                self.g.event_about(log::WARNING, "+switch-master", &m.inst, &rest);
                let old = m.inst.addr.clone();
                let name = master_name.to_string();
                self.reset_master_and_change_address(&name, master_host, master_port);
                if let Some(m) = self.masters.get(&name) {
                    let new = m.inst.addr.clone();
                    super::scripts::client_reconfig(&mut self.g, m, false, &old, &new);
                }
            }
        }
        if let Some(si) = si_name.and_then(|n| self.masters.get_mut(master_name)?.sentinels.get_mut(&n)) {
            si.last_hello_time = now_ms();
        }
    }
}
