//! The monitored instances (Redis's sentinelRedisInstance): a master with its replicas and the
//! other Sentinels monitoring it, each with its address, flags, link and what its INFO said.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};

use super::link::Link;
use super::now_ms;
use super::timing::Periods;

/// Instance flags (Redis's SRI_*; the kind is [`Kind`]).
pub const S_DOWN: u32 = 1 << 3;
pub const O_DOWN: u32 = 1 << 4;
pub const MASTER_DOWN: u32 = 1 << 5;
pub const FAILOVER_IN_PROGRESS: u32 = 1 << 6;
pub const PROMOTED: u32 = 1 << 7;
pub const RECONF_SENT: u32 = 1 << 8;
pub const RECONF_INPROG: u32 = 1 << 9;
pub const RECONF_DONE: u32 = 1 << 10;
pub const FORCE_FAILOVER: u32 = 1 << 11;
pub const SCRIPT_KILL_SENT: u32 = 1 << 12;
pub const MASTER_REBOOT: u32 = 1 << 13;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Master,
    Replica,
    Sentinel,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Master => "master",
            Kind::Replica => "slave",
            Kind::Sentinel => "sentinel",
        }
    }
}

/// `announce-hostnames`: addresses are shown and sent by hostname rather than IP (one
/// Sentinel per process; kept here so every address can be announced without the state).
static ANNOUNCE_HOSTNAMES: AtomicBool = AtomicBool::new(false);

pub fn set_announce_hostnames(on: bool) {
    ANNOUNCE_HOSTNAMES.store(on, Ordering::Relaxed);
}

/// An instance's address: the host as given, the IP it resolved to (the same when the host is
/// an IP; hostnames resolve only with resolve-hostnames), and the port.
#[derive(Debug, Clone, Eq)]
pub struct Addr {
    pub host: String,
    pub ip: String,
    pub port: u16,
}

impl PartialEq for Addr {
    /// Redis's sentinelAddrOrHostnameEqual: the same port, and the same IP or hostname.
    fn eq(&self, other: &Addr) -> bool {
        self.port == other.port
            && (self.ip.eq_ignore_ascii_case(&other.ip) || self.host.eq_ignore_ascii_case(&other.host))
    }
}

impl Addr {
    /// Redis's createSentinelAddr: a valid port, and an IP address unless hostnames may be
    /// resolved (then the name must resolve). Err: Redis's reason.
    pub fn new(host: &str, port: i64, resolve_hostnames: bool) -> Result<Addr, &'static str> {
        if !(0..=65535).contains(&port) {
            return Err("Invalid port number.");
        }
        let ip = if host.parse::<std::net::IpAddr>().is_ok() {
            host.to_string()
        } else {
            let resolved = resolve_hostnames
                .then(|| std::net::ToSocketAddrs::to_socket_addrs(&(host, port as u16)).ok()?.next())
                .flatten();
            match resolved {
                Some(a) => a.ip().to_string(),
                None => return Err("Can't resolve instance hostname."),
            }
        };
        Ok(Addr { host: host.to_string(), ip, port: port as u16 })
    }

    /// The address as Sentinel shows and sends it (Redis's announceSentinelAddr).
    pub fn announced(&self) -> &str {
        if ANNOUNCE_HOSTNAMES.load(Ordering::Relaxed) {
            &self.host
        } else {
            &self.ip
        }
    }

    /// `host:port` (a replica's name), `[host]:port` for IPv6 as Redis writes it.
    pub fn name(&self) -> String {
        let h = self.announced();
        if h.contains(':') {
            format!("[{h}]:{}", self.port)
        } else {
            format!("{h}:{}", self.port)
        }
    }

    /// The same port and host (its IP or its name, case-insensitively).
    pub fn same(&self, host: &str, port: u16) -> bool {
        self.port == port && (self.host.eq_ignore_ascii_case(host) || self.ip.eq_ignore_ascii_case(host))
    }
}

/// The failover state of a master (Redis's SENTINEL_FAILOVER_STATE_*).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum FailoverState {
    None,
    WaitStart,
    SelectSlave,
    SendSlaveofNoOne,
    WaitPromotion,
    ReconfSlaves,
    UpdateConfig,
}

impl FailoverState {
    pub fn name(self) -> &'static str {
        match self {
            FailoverState::None => "none",
            FailoverState::WaitStart => "wait_start",
            FailoverState::SelectSlave => "select_slave",
            FailoverState::SendSlaveofNoOne => "send_slaveof_noone",
            FailoverState::WaitPromotion => "wait_promotion",
            FailoverState::ReconfSlaves => "reconf_slaves",
            FailoverState::UpdateConfig => "update_config",
        }
    }
}

/// What every kind of instance has.
pub struct Instance {
    pub kind: Kind,
    /// A master's configured name, a replica's `host:port`, a Sentinel's run ID.
    pub name: String,
    pub addr: Addr,
    pub runid: Option<String>,
    pub flags: u32,
    pub link: Link,
    pub last_pub_time: i64,
    pub last_hello_time: i64,
    pub last_master_down_reply_time: i64,
    pub s_down_since_time: i64,
    pub o_down_since_time: i64,
    pub down_after_period: i64,
    pub master_link_down_time: i64,
    pub slave_priority: i64,
    pub replica_announced: i64,
    pub slave_reconf_sent_time: i64,
    pub slave_master_host: Option<String>,
    pub slave_master_port: i64,
    pub slave_master_link_up: bool,
    pub slave_repl_offset: u64,
    /// When the last INFO reply arrived (0: never).
    pub info_refresh: i64,
    pub info: Option<String>,
    pub role_reported: Kind,
    pub role_reported_time: i64,
    pub slave_conf_change_time: i64,
    /// The leader this instance voted for (a Sentinel's reply) / we voted for (a master).
    pub leader: Option<String>,
    pub leader_epoch: u64,
    /// A master's `notification-script`, run for its warning events (and its instances').
    pub notification_script: Option<String>,
}

impl Instance {
    pub fn new(kind: Kind, name: String, addr: Addr, down_after_period: i64) -> Instance {
        let now = now_ms();
        Instance {
            kind,
            name,
            addr,
            runid: None,
            flags: 0,
            link: Link::new(now),
            last_pub_time: now,
            last_hello_time: now,
            last_master_down_reply_time: now,
            s_down_since_time: 0,
            o_down_since_time: 0,
            down_after_period,
            master_link_down_time: 0,
            slave_priority: 100,
            replica_announced: 1,
            slave_reconf_sent_time: 0,
            slave_master_host: None,
            slave_master_port: 0,
            slave_master_link_up: false,
            slave_repl_offset: 0,
            info_refresh: 0,
            info: None,
            role_reported: if kind == Kind::Sentinel { Kind::Master } else { kind },
            role_reported_time: now,
            slave_conf_change_time: now,
            leader: None,
            leader_epoch: 0,
            notification_script: None,
        }
    }

    pub fn has(&self, flags: u32) -> bool {
        self.flags & flags != 0
    }

    /// No SDOWN or ODOWN in the last `ms` milliseconds.
    pub fn no_down_for(&self, ms: i64) -> bool {
        let recent = self.s_down_since_time.max(self.o_down_since_time);
        recent == 0 || now_ms() - recent > ms
    }

    /// The flags as SENTINEL MASTER lists them.
    pub fn flags_text(&self) -> String {
        let mut out: Vec<&str> = Vec::new();
        let named = [(S_DOWN, "s_down"), (O_DOWN, "o_down")];
        named.iter().filter(|(f, _)| self.has(*f)).for_each(|(_, n)| out.push(n));
        out.push(match self.kind {
            Kind::Master => "master",
            Kind::Replica => "slave",
            Kind::Sentinel => "sentinel",
        });
        if self.link.disconnected() {
            out.push("disconnected");
        }
        let rest = [
            (MASTER_DOWN, "master_down"),
            (FAILOVER_IN_PROGRESS, "failover_in_progress"),
            (PROMOTED, "promoted"),
            (RECONF_SENT, "reconf_sent"),
            (RECONF_INPROG, "reconf_inprog"),
            (RECONF_DONE, "reconf_done"),
            (FORCE_FAILOVER, "force_failover"),
            (SCRIPT_KILL_SENT, "script_kill_sent"),
            (MASTER_REBOOT, "master_reboot"),
        ];
        rest.iter().filter(|(f, _)| self.has(*f)).for_each(|(_, n)| out.push(n));
        out.join(",")
    }
}

/// A monitored master: its own instance state, its settings, failover state, replicas and
/// the other Sentinels.
pub struct Master {
    pub inst: Instance,
    pub quorum: u32,
    pub parallel_syncs: i64,
    pub failover_timeout: i64,
    pub config_epoch: u64,
    pub failover_epoch: u64,
    pub failover_state: FailoverState,
    pub failover_state_change_time: i64,
    pub failover_start_time: i64,
    pub failover_delay_logged: i64,
    /// The replica chosen for promotion (its name in `replicas`).
    pub promoted: Option<String>,
    pub client_reconfig_script: Option<String>,
    pub auth_pass: Option<String>,
    pub auth_user: Option<String>,
    pub master_reboot_down_after_period: i64,
    pub master_reboot_since_time: i64,
    /// `rename-command` for this master and its replicas: (command, renamed), case-insensitive.
    pub renamed: Vec<(String, String)>,
    pub replicas: BTreeMap<String, Instance>,
    pub sentinels: BTreeMap<String, Instance>,
}

impl Master {
    pub fn new(name: String, addr: Addr, quorum: u32, periods: &Periods) -> Master {
        Master {
            inst: Instance::new(Kind::Master, name, addr, periods.default_down_after),
            quorum,
            parallel_syncs: 1,
            failover_timeout: periods.default_failover_timeout,
            config_epoch: 0,
            failover_epoch: 0,
            failover_state: FailoverState::None,
            failover_state_change_time: 0,
            failover_start_time: 0,
            failover_delay_logged: 0,
            promoted: None,
            client_reconfig_script: None,
            auth_pass: None,
            auth_user: None,
            master_reboot_down_after_period: 0,
            master_reboot_since_time: 0,
            renamed: Vec::new(),
            replicas: BTreeMap::new(),
            sentinels: BTreeMap::new(),
        }
    }

    pub fn name(&self) -> &str {
        &self.inst.name
    }

    /// Add a replica by address (None when one with that address exists).
    pub fn add_replica(&mut self, addr: Addr) -> Option<&mut Instance> {
        let name = addr.name();
        if self.replicas.contains_key(&name) {
            return None;
        }
        let r = Instance::new(Kind::Replica, name.clone(), addr, self.inst.down_after_period);
        Some(self.replicas.entry(name).or_insert(r))
    }

    /// The address clients should use: the promoted replica's once the failover reached the
    /// reconfiguration of the replicas, the master's otherwise.
    pub fn current_addr(&self) -> &Addr {
        if self.inst.has(FAILOVER_IN_PROGRESS) && self.failover_state >= FailoverState::ReconfSlaves {
            if let Some(p) = self.promoted.as_ref().and_then(|n| self.replicas.get(n)) {
                return &p.addr;
            }
        }
        &self.inst.addr
    }

    /// The name a command is sent under to this master and its replicas.
    pub fn command_name<'a>(&'a self, cmd: &'a str) -> &'a str {
        self.renamed.iter().find(|(from, _)| from.eq_ignore_ascii_case(cmd)).map_or(cmd, |(_, to)| to.as_str())
    }

    /// Give every replica and Sentinel the master's down-after-milliseconds.
    pub fn propagate_down_after(&mut self) {
        let d = self.inst.down_after_period;
        self.replicas.values_mut().chain(self.sentinels.values_mut()).for_each(|i| i.down_after_period = d);
    }

    /// Remove every Sentinel with this run ID; how many were.
    pub fn remove_sentinels_with_runid(&mut self, runid: &str) -> usize {
        let before = self.sentinels.len();
        self.sentinels.retain(|_, s| s.runid.as_deref() != Some(runid));
        before - self.sentinels.len()
    }

    /// Redis's sentinelResetMaster: forget replicas (and Sentinels unless `keep_sentinels`),
    /// drop the links, clear the runtime flags and the failover.
    pub fn reset(&mut self, keep_sentinels: bool) {
        self.replicas.clear();
        if !keep_sentinels {
            self.sentinels.clear();
        }
        let now = now_ms();
        let i = &mut self.inst;
        i.link.close_all();
        i.flags = 0;
        i.leader = None;
        self.failover_state = FailoverState::None;
        self.failover_state_change_time = 0;
        self.failover_start_time = 0;
        self.promoted = None;
        i.runid = None;
        i.slave_master_host = None;
        i.link.act_ping_time = now;
        i.link.last_ping_time = 0;
        i.link.last_avail_time = now;
        i.link.last_pong_time = now;
        i.role_reported_time = now;
        i.role_reported = Kind::Master;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses() {
        assert_eq!(Addr::new("127.0.0.1", 6379, false).unwrap().name(), "127.0.0.1:6379");
        assert_eq!(Addr::new("::1", 6379, false).unwrap().name(), "[::1]:6379");
        assert_eq!(Addr::new("127.0.0.1", 70000, false), Err("Invalid port number."));
        assert_eq!(Addr::new("no.such.host.invalid", 1, false), Err("Can't resolve instance hostname."));
    }

    #[test]
    fn flags_text_order() {
        let mut i = Instance::new(Kind::Master, "m".into(), Addr::new("127.0.0.1", 1, false).unwrap(), 1000);
        i.flags |= S_DOWN | O_DOWN | FAILOVER_IN_PROGRESS;
        assert_eq!(i.flags_text(), "s_down,o_down,master,disconnected,failover_in_progress");
    }
}
