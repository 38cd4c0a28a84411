//! One node of the cluster as this node sees it (Redis's clusterNode): its name, flags,
//! addresses, slots, master/replicas, failure reports and ping times.

use super::msg::{Name, SlotBitmap, NAMELEN};

/// Node flags (the bits Redis sends in headers and gossip).
pub mod flag {
    pub const MASTER: u16 = 1;
    pub const SLAVE: u16 = 2;
    pub const PFAIL: u16 = 4;
    pub const FAIL: u16 = 8;
    pub const MYSELF: u16 = 16;
    pub const HANDSHAKE: u16 = 32;
    pub const NOADDR: u16 = 64;
    pub const MEET: u16 = 128;
    pub const MIGRATE_TO: u16 = 256;
    pub const NOFAILOVER: u16 = 512;

    /// CLUSTER NODES' names, in Redis's order.
    pub const NAMES: &[(u16, &str)] = &[
        (MYSELF, "myself"),
        (MASTER, "master"),
        (SLAVE, "slave"),
        (PFAIL, "fail?"),
        (FAIL, "fail"),
        (HANDSHAKE, "handshake"),
        (NOADDR, "noaddr"),
        (NOFAILOVER, "nofailover"),
    ];
}

/// A node's identity inside this process (names change during a handshake; ids never do).
pub type NodeId = u64;
/// A bus connection's identity.
pub type LinkId = u64;

#[derive(Debug)]
pub struct Node {
    pub id: NodeId,
    pub name: Name,
    /// Unix ms the node was created here.
    pub ctime: i64,
    pub flags: u16,
    pub config_epoch: u64,
    pub slots: SlotBitmap,
    pub numslots: usize,
    pub slaves: Vec<NodeId>,
    pub slaveof: Option<NodeId>,
    /// The ping round that last put this node in a gossip section.
    pub last_in_ping_gossip: u64,
    /// Unix ms: the ping we are waiting a pong for (0: none), the last pong, the last data.
    pub ping_sent: i64,
    pub pong_received: i64,
    pub data_received: i64,
    pub fail_time: i64,
    /// Last time we voted for a replica of this master.
    pub voted_time: i64,
    pub repl_offset_time: i64,
    pub orphaned_time: i64,
    pub repl_offset: i64,
    pub ip: String,
    pub hostname: String,
    pub human_nodename: String,
    /// The shard it belongs to (Redis 7.2): random at creation, the master's for a replica.
    pub shard_id: Name,
    pub port: u16,
    pub pport: u16,
    pub cport: u16,
    /// Our connection to it, and its connection to us.
    pub link: Option<LinkId>,
    pub inbound_link: Option<LinkId>,
    /// Masters that reported it failing, and when.
    pub fail_reports: Vec<(NodeId, i64)>,
}

impl Node {
    pub fn new(id: NodeId, name: Name, flags: u16, now: i64) -> Node {
        Node {
            id,
            name,
            ctime: now,
            flags,
            config_epoch: 0,
            slots: SlotBitmap::default(),
            numslots: 0,
            slaves: Vec::new(),
            slaveof: None,
            last_in_ping_gossip: 0,
            ping_sent: 0,
            pong_received: 0,
            data_received: 0,
            fail_time: 0,
            voted_time: 0,
            repl_offset_time: 0,
            orphaned_time: 0,
            repl_offset: 0,
            ip: String::new(),
            hostname: String::new(),
            human_nodename: String::new(),
            shard_id: random_name(),
            port: 0,
            pport: 0,
            cport: 0,
            link: None,
            inbound_link: None,
            fail_reports: Vec::new(),
        }
    }

    pub fn has(&self, f: u16) -> bool {
        self.flags & f != 0
    }
    pub fn is_master(&self) -> bool {
        self.has(flag::MASTER)
    }
    pub fn is_slave(&self) -> bool {
        self.has(flag::SLAVE)
    }
    pub fn failed(&self) -> bool {
        self.has(flag::FAIL)
    }
    pub fn timed_out(&self) -> bool {
        self.has(flag::PFAIL)
    }
    pub fn in_handshake(&self) -> bool {
        self.has(flag::HANDSHAKE)
    }
    pub fn name_str(&self) -> &str {
        name_str(&self.name)
    }

    /// Its (plain, TLS) client ports: `port` is the TLS one with `tls-cluster`, `pport` the
    /// other one (as Redis 7.2's tcp_port and tls_port).
    pub fn client_ports(&self, tls_cluster: bool) -> (u16, u16) {
        if tls_cluster {
            (self.pport, self.port)
        } else {
            (self.port, self.pport)
        }
    }

    /// How log lines name the node: its name and, in parentheses, its human node name (empty
    /// when it announces none), as Redis 7.2's "%.40s (%s)".
    pub fn log_name(&self) -> String {
        format!("{} ({})", self.name_str(), self.human_nodename)
    }
}

/// A node name as text (names are checked to be hex when they arrive).
pub fn name_str(n: &Name) -> &str {
    std::str::from_utf8(n).unwrap_or("????????????????????????????????????????")
}

/// A fresh random node name (40 hex characters).
pub fn random_name() -> Name {
    let mut n = [0u8; NAMELEN];
    for c in n.iter_mut() {
        *c = b"0123456789abcdef"[rand::random::<usize>() % 16];
    }
    n
}

/// Redis's verifyClusterNodeId: exactly 40 characters of [a-z0-9].
pub fn valid_name(s: &[u8]) -> bool {
    s.len() == NAMELEN && s.iter().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
}

pub fn to_name(s: &[u8]) -> Option<Name> {
    if valid_name(s) {
        s.try_into().ok()
    } else {
        None
    }
}

/// The comma-separated flag list of CLUSTER NODES (`noflags` when none applies).
pub fn flags_repr(flags: u16) -> String {
    let names: Vec<&str> = flag::NAMES.iter().filter(|(f, _)| flags & f != 0).map(|(_, n)| *n).collect();
    if names.is_empty() {
        "noflags".to_string()
    } else {
        names.join(",")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_ports_follow_tls_cluster() {
        let mut n = Node::new(1, random_name(), flag::MASTER, 0);
        (n.port, n.pport) = (7001, 7101);
        // Without tls-cluster a node's first port is its plain one, the other its TLS one.
        assert_eq!(n.client_ports(false), (7001, 7101));
        assert_eq!(n.client_ports(true), (7101, 7001));
    }

    #[test]
    fn flags_and_names() {
        assert_eq!(flags_repr(flag::MYSELF | flag::MASTER), "myself,master");
        assert_eq!(flags_repr(flag::SLAVE | flag::FAIL | flag::MIGRATE_TO), "slave,fail");
        assert_eq!(flags_repr(flag::MIGRATE_TO), "noflags");
        let n = random_name();
        assert!(valid_name(&n));
        assert!(!valid_name(b"ABC"));
        assert!(!valid_name(&[b'A'; 40]));
    }
}
