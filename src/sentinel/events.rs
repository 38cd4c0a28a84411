//! Sentinel events (Redis's sentinelEvent): logged at their level and, unless they are debug
//! events, published on the Sentinel's own Pub/Sub channel named after the event (`+sdown`,
//! `+switch-master`...), with Redis's message text: `<type> <name> <ip> <port>` for the
//! instance, followed by `@ <master name> <ip> <port>` when it is not a master.

use bytes::Bytes;

use super::instance::Instance;
use super::Global;
use crate::server::{log, Server};

/// An event waiting to be logged and published.
#[derive(Debug, Clone)]
pub struct Event {
    pub level: usize,
    pub kind: String,
    pub msg: String,
}

impl Event {
    pub fn emit(&self, server: &Server) {
        log::log(self.level, &format!("{} {}", self.kind, self.msg));
        if self.level != log::DEBUG {
            let channel = Bytes::copy_from_slice(self.kind.as_bytes());
            let payload = Bytes::copy_from_slice(self.msg.as_bytes());
            server.pubsub.publish(&channel, &payload, false);
        }
    }
}

/// An instance as events name it (Redis's `%@`).
pub fn describe(inst: &Instance, master: Option<&Instance>) -> String {
    let mut s = format!("{} {} {} {}", inst.kind.name(), inst.name, inst.addr.announced(), inst.addr.port);
    if let Some(m) = master {
        s.push_str(&format!(" @ {} {} {}", m.name, m.addr.announced(), m.addr.port));
    }
    s
}

impl Global {
    /// Raise an event about `who` (the instance, and its master unless it is one), with `rest`
    /// appended; without an instance the message is `rest` alone.
    pub fn event(&mut self, level: usize, kind: &str, who: Option<(&Instance, Option<&Instance>)>, rest: &str) {
        let msg = match who {
            Some((inst, master)) => {
                let mut m = describe(inst, master);
                if !rest.is_empty() {
                    m.push(' ');
                    m.push_str(rest);
                }
                m
            }
            None => rest.to_string(),
        };
        let master = who.map(|(i, m)| m.unwrap_or(i));
        self.push_event(level, kind, msg, master);
    }

    /// An event about `master` whose text has no instance prefix (+new-epoch,
    /// +vote-for-leader, +switch-master): it still runs the master's notification script.
    pub fn event_about(&mut self, level: usize, kind: &str, master: &Instance, msg: &str) {
        self.push_event(level, kind, msg.to_string(), Some(master));
    }

    fn push_event(&mut self, level: usize, kind: &str, msg: String, master: Option<&Instance>) {
        if level == log::WARNING {
            if let Some(path) = master.and_then(|m| m.notification_script.as_ref()) {
                self.scripts.schedule(vec![path.clone(), kind.to_string(), msg.clone()]);
            }
        }
        self.events.push(Event { level, kind: kind.to_string(), msg });
    }
}

#[cfg(test)]
mod tests {
    use super::super::instance::{Addr, Kind};
    use super::*;

    #[test]
    fn event_text() {
        let m = Instance::new(Kind::Master, "mymaster".into(), Addr::new("127.0.0.1", 6379, false).unwrap(), 1);
        let r = Instance::new(Kind::Replica, "127.0.0.1:6380".into(), Addr::new("127.0.0.1", 6380, false).unwrap(), 1);
        let mut g = Global::new();
        g.event(log::WARNING, "+monitor", Some((&m, None)), "quorum 2");
        g.event(log::NOTICE, "+slave", Some((&r, Some(&m))), "");
        g.event(log::WARNING, "+tilt", None, "#tilt mode entered");
        assert_eq!(g.events[0].msg, "master mymaster 127.0.0.1 6379 quorum 2");
        assert_eq!(g.events[1].msg, "slave 127.0.0.1:6380 127.0.0.1 6380 @ mymaster 127.0.0.1 6379");
        assert_eq!(g.events[2].msg, "#tilt mode entered");
    }
}
