//! What the link tasks hand back to the state: a connection up or lost, and every reply, which
//! is matched with the request it answers (Redis's reply callbacks: PING, INFO, PUBLISH,
//! IS-MASTER-DOWN-BY-ADDR) or, on a Pub/Sub connection, read as a hello message.

use super::instance::{Kind, MASTER_REBOOT, SCRIPT_KILL_SENT, S_DOWN};
use super::link::Pending;
use super::resp::Reply;
use super::{now_ms, Guard, InstanceId, Who};
use crate::server::log;

impl InstanceId {
    fn who(&self) -> Who {
        match self.kind {
            Kind::Master => Who::Master,
            Kind::Replica => Who::Replica(self.name.clone()),
            Kind::Sentinel => Who::Sentinel(self.name.clone()),
        }
    }
}

impl Guard<'_> {
    /// A connection is up: install it and send what starts it (AUTH, CLIENT SETNAME, then PING
    /// or SUBSCRIBE). False when the instance or the attempt is gone.
    pub fn link_up(
        &mut self,
        id: &InstanceId,
        pubsub: bool,
        generation: u64,
        tx: tokio::sync::mpsc::UnboundedSender<Vec<u8>>,
    ) -> bool {
        let st = &mut **self;
        let g = &mut st.g;
        let Some(m) = st.masters.get_mut(&id.master) else { return false };
        let (auth_user, auth_pass) = match id.kind {
            Kind::Master | Kind::Replica => (m.auth_user.clone(), m.auth_pass.clone()),
            Kind::Sentinel => match &g.sentinel_auth_pass {
                Some(p) => (g.sentinel_auth_user.clone(), Some(p.clone())),
                None => (None, g.requirepass.clone()),
            },
        };
        let names: Vec<String> =
            ["AUTH", "CLIENT", "PING", "SUBSCRIBE"].iter().map(|c| m.command_name(c).to_string()).collect();
        let Some(inst) = m.get_mut(&id.who()) else { return false };
        if !inst.link.install(pubsub, generation, tx, now_ms()) {
            return false;
        }
        let short: String = g.myid.chars().take(8).collect();
        let client_name = format!("sentinel-{short}-{}", if pubsub { "pubsub" } else { "cmd" });
        let link = &mut inst.link;
        if pubsub {
            match (&auth_user, &auth_pass) {
                (Some(u), Some(p)) => link.send_pubsub(&[&names[0], u, p], true),
                (None, Some(p)) => link.send_pubsub(&[&names[0], p], true),
                _ => true,
            };
            link.send_pubsub(&[&names[1], "SETNAME", &client_name], true);
            link.send_pubsub(&[&names[3], "__sentinel__:hello"], false);
        } else {
            match (&auth_user, &auth_pass) {
                (Some(u), Some(p)) => link.send(&[&names[0], u, p], Pending::Discard),
                (None, Some(p)) => link.send(&[&names[0], p], Pending::Discard),
                _ => true,
            };
            link.send(&[&names[1], "SETNAME", &client_name], Pending::Discard);
            super::tick::send_ping(link, &names[2]);
        }
        link.update_connected(inst.kind != Kind::Sentinel);
        true
    }

    /// A connection closed (or its attempt failed).
    pub fn link_lost(&mut self, id: &InstanceId, pubsub: bool, generation: u64) {
        let st = &mut **self;
        if let Some(inst) = st.masters.get_mut(&id.master).and_then(|m| m.get_mut(&id.who())) {
            inst.link.lost(pubsub, generation);
        }
    }

    /// A connection attempt failed: Redis's debug-level `-cmd-link-reconnection` event.
    pub fn link_event_debug(&mut self, id: &InstanceId, pubsub: bool, err: &str) {
        let st = &mut **self;
        let Some(m) = st.masters.get(&id.master) else { return };
        let Some(inst) = m.get(&id.who()) else { return };
        let master = (id.kind != Kind::Master).then_some(&m.inst);
        let kind = if pubsub { "-pubsub-link-reconnection" } else { "-cmd-link-reconnection" };
        st.g.event(log::DEBUG, kind, Some((inst, master)), &format!("#{err}"));
    }

    /// One reply from a connection of `generation`; false when that connection is stale.
    pub fn on_reply(&mut self, id: &InstanceId, pubsub: bool, generation: u64, reply: Reply) -> bool {
        let who = id.who();
        let st = &mut **self;
        let Some(m) = st.masters.get_mut(&id.master) else { return false };
        let Some(inst) = m.get_mut(&who) else { return false };
        if !inst.link.is_current(pubsub, generation) {
            return false;
        }
        if pubsub {
            inst.link.pc_last_activity = now_ms();
            if inst.link.take_pubsub_pending() {
                return true;
            }
            // An error with nothing waiting for it (SUBSCRIBE refused: -NOAUTH) drops the
            // connection, as hiredis does.
            if matches!(reply, Reply::Error(_)) {
                inst.link.close_pc();
                return false;
            }
            if let Reply::Array(items) = &reply {
                if let [Reply::Bulk(kind), Reply::Bulk(_), Reply::Bulk(payload)] = items.as_slice() {
                    if kind == b"message" {
                        let text = String::from_utf8_lossy(payload).into_owned();
                        if !text.contains(&st.g.myid) {
                            st.process_hello(&text);
                        }
                    }
                }
            }
            return true;
        }
        let Some(pending) = inst.link.take_pending(generation) else { return true };
        match pending {
            Pending::Discard => {}
            Pending::Ping => on_ping(&mut st.g, m, &who, &reply),
            Pending::Info => {
                if let Reply::Bulk(b) = &reply {
                    let text = String::from_utf8_lossy(b).into_owned();
                    super::info::refresh(&mut st.g, m, &who, &text);
                }
            }
            Pending::Publish => {
                if !matches!(reply, Reply::Error(_)) {
                    inst.last_pub_time = now_ms();
                }
            }
            Pending::IsMasterDown => {
                if let Who::Sentinel(name) = &who {
                    super::down::on_is_master_down_reply(m, name, &reply);
                }
            }
        }
        true
    }
}

/// A PING reply (Redis's sentinelPingReplyCallback): PONG, LOADING or MASTERDOWN mean the
/// instance is available; BUSY while it is SDOWN gets a SCRIPT KILL once.
fn on_ping(_g: &mut super::Global, m: &mut super::instance::Master, who: &Who, reply: &Reply) {
    let script = m.command_name("SCRIPT").to_string();
    let Some(inst) = m.get_mut(who) else { return };
    let now = now_ms();
    let text = match reply {
        Reply::Status(s) | Reply::Error(s) => Some(s.as_str()),
        _ => None,
    };
    if let Some(t) = text {
        if t.starts_with("PONG") || t.starts_with("LOADING") || t.starts_with("MASTERDOWN") {
            inst.link.last_avail_time = now;
            inst.link.act_ping_time = 0;
            if inst.has(MASTER_REBOOT) && t.starts_with("PONG") {
                inst.flags &= !MASTER_REBOOT;
            }
        } else if t.starts_with("BUSY") && inst.has(S_DOWN) && !inst.has(SCRIPT_KILL_SENT) {
            inst.link.send(&[&script, "KILL"], Pending::Discard);
            inst.flags |= SCRIPT_KILL_SENT;
        }
    }
    inst.link.last_pong_time = now;
}
