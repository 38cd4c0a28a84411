//! Redis Sentinel (`ferrous-server sentinel.conf --sentinel`, or a binary whose name contains
//! `redis-sentinel`), as Redis 7.2 runs it: the server serves only the commands flagged for
//! sentinel mode (`commands.rs`), has no keyspace to load or save, and monitors masters.
//!
//! The state ([`State`]: the monitored masters with their replicas and the other Sentinels, the
//! epochs, the time parameters) sits behind one mutex. A timer task on the server's background
//! runtime runs Redis's sentinelTimer every 100 ms (`tick.rs`): it (re)connects the links
//! (`link.rs`: one task per connection, which owns the socket), sends PING, INFO and hello
//! messages (`hello.rs`), checks SDOWN/ODOWN (`down.rs`), elects a leader (`election.rs`) and
//! drives failovers (`failover.rs`) and runs notification scripts (`scripts.rs`). Replies come
//! back from the link tasks to the state (`replies.rs`, INFO parsed in `info.rs`). Commands (SENTINEL, and INFO/ROLE/PUBLISH's
//! sentinel forms, `commands/sentinel.rs` + `reply.rs`) lock the state like the timer does.
//!
//! Every change is applied under [`Guard`], which on release writes the configuration file when
//! the state changed (Redis rewrites sentinel.conf at every change of what it persists:
//! `config.rs`) and then logs and publishes the events raised meanwhile (`events.rs`).

pub mod commands;
pub mod config;
mod down;
mod election;
pub mod events;
mod failover;
mod hello;
mod info;
pub mod instance;
pub mod link;
mod replies;
pub mod reply;
mod resp;
pub mod scripts;
mod tick;
pub mod timing;

pub use election::vote as election_vote;
pub use failover::{select_replica, start as start_failover};

use std::collections::BTreeMap;
use std::sync::Arc;

use parking_lot::{Mutex, MutexGuard};

use crate::server::{log, Server};
use events::Event;
use instance::{Instance, Kind, Master};
use timing::Periods;

static ACTIVE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Whether this process is a Sentinel (set when its state is created).
pub fn active() -> bool {
    ACTIVE.load(std::sync::atomic::Ordering::Relaxed)
}

/// Milliseconds since the epoch (Redis's mstime).
pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

/// Failure simulation flags (SENTINEL SIMULATE-FAILURE).
pub const SIMFAILURE_CRASH_AFTER_ELECTION: u32 = 1;
pub const SIMFAILURE_CRASH_AFTER_PROMOTION: u32 = 2;

/// Which instance a link task talks to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceId {
    pub master: String,
    pub kind: Kind,
    pub name: String,
}

/// One of a master's instances, by kind and name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Who {
    Master,
    Replica(String),
    Sentinel(String),
}

impl Master {
    pub fn get(&self, who: &Who) -> Option<&Instance> {
        match who {
            Who::Master => Some(&self.inst),
            Who::Replica(n) => self.replicas.get(n),
            Who::Sentinel(n) => self.sentinels.get(n),
        }
    }

    pub fn get_mut(&mut self, who: &Who) -> Option<&mut Instance> {
        match who {
            Who::Master => Some(&mut self.inst),
            Who::Replica(n) => self.replicas.get_mut(n),
            Who::Sentinel(n) => self.sentinels.get_mut(n),
        }
    }
}

/// Everything but the masters (so code can hold a master and this at once).
pub struct Global {
    pub myid: String,
    pub current_epoch: u64,
    pub tilt: bool,
    pub tilt_start_time: i64,
    pub previous_time: i64,
    pub announce_ip: Option<String>,
    pub announce_port: u16,
    pub simfailure_flags: u32,
    pub deny_scripts_reconfig: bool,
    pub sentinel_auth_user: Option<String>,
    pub sentinel_auth_pass: Option<String>,
    pub resolve_hostnames: bool,
    pub announce_hostnames: bool,
    pub periods: Periods,
    /// Events raised under the lock, emitted when it is released.
    pub events: Vec<Event>,
    /// The configuration file must be rewritten when the lock is released.
    pub flush_needed: bool,
    /// A simulated failure: exit once the events are out.
    pub crash: bool,
    /// Connections the timer must start once it releases the lock.
    pub connects: Vec<(InstanceId, bool, instance::Addr, u64)>,
    next_generation: u64,
    /// Notification and client-reconfiguration scripts.
    pub scripts: scripts::Scripts,
    /// This server's port and requirepass (refreshed by the timer).
    pub port: u16,
    pub requirepass: Option<String>,
}

impl Global {
    pub fn new() -> Global {
        Global {
            myid: String::new(),
            current_epoch: 0,
            tilt: false,
            tilt_start_time: 0,
            previous_time: now_ms(),
            announce_ip: None,
            announce_port: 0,
            simfailure_flags: 0,
            deny_scripts_reconfig: true,
            sentinel_auth_user: None,
            sentinel_auth_pass: None,
            resolve_hostnames: false,
            announce_hostnames: false,
            periods: Periods::default(),
            events: Vec::new(),
            flush_needed: false,
            crash: false,
            connects: Vec::new(),
            scripts: scripts::Scripts::default(),
            next_generation: 0,
            port: 26379,
            requirepass: None,
        }
    }

    pub fn generation(&mut self) -> u64 {
        self.next_generation += 1;
        self.next_generation
    }

    /// Ask for the configuration file to be rewritten (Redis's sentinelFlushConfig).
    pub fn flush(&mut self) {
        self.flush_needed = true;
    }
}

impl Default for Global {
    fn default() -> Self {
        Global::new()
    }
}

/// The Sentinel state.
#[derive(Default)]
pub struct State {
    pub masters: BTreeMap<String, Master>,
    pub g: Global,
}

/// The running Sentinel.
pub struct Sentinel {
    state: Mutex<State>,
    /// The configuration file, rewritten at every change.
    config_file: String,
}

/// The locked state; releasing it writes the configuration when needed and emits the events.
pub struct Guard<'a> {
    state: Option<MutexGuard<'a, State>>,
    sentinel: &'a Sentinel,
    pub server: &'a Server,
}

impl std::ops::Deref for Guard<'_> {
    type Target = State;
    fn deref(&self) -> &State {
        self.state.as_ref().expect("guard holds the state")
    }
}

impl std::ops::DerefMut for Guard<'_> {
    fn deref_mut(&mut self) -> &mut State {
        self.state.as_mut().expect("guard holds the state")
    }
}

impl Drop for Guard<'_> {
    fn drop(&mut self) {
        let Some(mut st) = self.state.take() else { return };
        if std::mem::take(&mut st.g.flush_needed) {
            let _ = self.sentinel.write_config(&st, self.server);
        }
        let events = std::mem::take(&mut st.g.events);
        let crash = st.g.crash;
        drop(st);
        for e in events {
            e.emit(self.server);
        }
        if crash {
            log::warning("Sentinel CRASH because of SENTINEL simulate-failure");
            std::process::exit(99);
        }
    }
}

impl Guard<'_> {
    /// Rewrite the configuration file now (SENTINEL FLUSHCONFIG, SET, MONITOR...): Err with
    /// the reply's text when it fails.
    pub fn flush_now(&mut self) -> Result<(), String> {
        let st = self.state.as_mut().expect("guard holds the state");
        st.g.flush_needed = false;
        self.sentinel.write_config(st, self.server).map_err(|_| "Failed to save config file. Check server logs.".into())
    }
}

impl Sentinel {
    /// A Sentinel over the state the configuration file described.
    pub fn new(state: State, config_file: String) -> Sentinel {
        instance::set_announce_hostnames(state.g.announce_hostnames);
        ACTIVE.store(true, std::sync::atomic::Ordering::Relaxed);
        Sentinel { state: Mutex::new(state), config_file }
    }

    pub fn lock<'a>(&'a self, server: &'a Server) -> Guard<'a> {
        Guard { state: Some(self.state.lock()), sentinel: self, server }
    }

    /// Redis's sentinelIsRunning and the timer: pick an ID if the file had none (and save it),
    /// announce every monitored master, then run the timer for the process's life.
    pub fn start(self: &Arc<Self>, server: &Arc<Server>) {
        {
            let mut st = self.lock(server);
            if st.g.myid.is_empty() {
                st.g.myid = (0..40).map(|_| char::from_digit(rand::random::<u32>() % 16, 16).unwrap_or('0')).collect();
                let _ = st.flush_now();
            }
            log::notice(&format!("Sentinel ID is {}", st.g.myid));
            // The TILT check measures from here, not from when the configuration was read.
            st.g.previous_time = now_ms();
            let names: Vec<String> = st.masters.keys().cloned().collect();
            for n in names {
                let st = &mut *st;
                if let Some(m) = st.masters.get(&n) {
                    let quorum = m.quorum;
                    st.g.event(log::WARNING, "+monitor", Some((&m.inst, None)), &format!("quorum {quorum}"));
                }
            }
        }
        let me = self.clone();
        let server = server.clone();
        tokio::spawn(async move {
            let mut every = crate::util::timer::interval(std::time::Duration::from_millis(100));
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                every.tick().await;
                let connects = {
                    let mut st = me.lock(&server);
                    let cfg = server.config.load();
                    // Hello messages announce the TLS port when the links use TLS.
                    st.g.port = if cfg.tls_replication && cfg.tls_port != 0 {
                        cfg.tls_port as u16
                    } else {
                        server.port.load(std::sync::atomic::Ordering::Relaxed) as u16
                    };
                    st.g.requirepass = cfg.password().map(String::from);
                    st.tick();
                    std::mem::take(&mut st.g.connects)
                };
                for (id, pubsub, addr, generation) in connects {
                    link::spawn(me.clone(), server.clone(), id, pubsub, addr, generation);
                }
            }
        });
    }

    /// Rewrite the configuration file with the state (Redis's sentinelFlushConfig).
    fn write_config(&self, st: &State, server: &Server) -> std::io::Result<()> {
        let cfg = server.config.load();
        let users = server.acl.config_lines(&cfg.aclfile);
        let lines = config::rewrite_lines(st);
        let r = crate::config::rewrite_file_with(
            &cfg,
            &self.config_file,
            false,
            users.as_deref(),
            Some(&|rw: &mut crate::config::rewrite::Rewrite| config::apply_rewrite(&lines, rw)),
        );
        match &r {
            Ok(()) => log::notice("Sentinel new configuration saved on disk"),
            Err(e) => log::warning(&format!(
                "WARNING: Sentinel was not able to save the new configuration on disk!!!: {}",
                crate::config::kinds::strerror(e)
            )),
        }
        r
    }
}
