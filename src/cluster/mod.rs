//! Redis Cluster (`cluster-enabled yes`): the cluster state of this node, nodes.conf, the
//! cluster bus speaking Redis 7.0's binary protocol (so Ferrous and Redis nodes form one
//! cluster), failure detection, replica elections and manual failover, and the routing
//! snapshot commands are admitted against (MOVED/ASK/TRYAGAIN/CROSSSLOT/CLUSTERDOWN).
//!
//! - `msg`: the wire format; `node`: one node; `state`: the cluster state and its
//!   operations; `send` / `packet`: building and processing bus messages; `cron`: the
//!   periodic work and elections; `config`: nodes.conf and CLUSTER NODES lines; `bus`: the
//!   TCP links; `route`: the routing snapshot and getNodeByQuery.
//!
//! Every change to the state goes through [`Cluster::with`]: under the state lock, then the
//! before-sleep work (state update, nodes.conf), a new routing snapshot if anything moved,
//! and — after the lock is released — the effects on the rest of the server ([`Deferred`]).

pub mod bus;
pub mod config;
pub mod cron;
pub mod msg;
pub mod node;
pub mod outgoing;
pub mod packet;
pub mod route;
pub mod send;
pub mod state;

use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::Duration;

use arc_swap::ArcSwap;
use parking_lot::Mutex;

use crate::server::{log, Server};
pub use route::Route;
pub use state::{Deferred, State};

/// Redis Cluster's number of hash slots.
pub const SLOTS: usize = crate::keyspace::slot::SLOTS;

/// The cluster side of a server started with `cluster-enabled yes`.
pub struct Cluster {
    state: Mutex<State>,
    /// What commands are routed against (read without a lock).
    route: ArcSwap<Route>,
    server: Weak<Server>,
    /// The runtime the bus tasks run on.
    rt: tokio::runtime::Handle,
}

/// Read the cluster settings from the server's configuration.
fn settings(server: &Server) -> state::Settings {
    let c = server.config.load();
    state::Settings {
        node_timeout: c.cluster_node_timeout,
        require_full_coverage: c.cluster_require_full_coverage,
        allow_reads_when_down: c.cluster_allow_reads_when_down,
        allow_pubsubshard_when_down: c.cluster_allow_pubsubshard_when_down,
        allow_replica_migration: c.cluster_allow_replica_migration,
        migration_barrier: c.cluster_migration_barrier,
        replica_validity_factor: c.cluster_replica_validity_factor,
        replica_no_failover: c.cluster_replica_no_failover,
        announce_ip: c.cluster_announce_ip.clone(),
        announce_hostname: c.cluster_announce_hostname.clone(),
        announce_human_nodename: c.cluster_announce_human_nodename.clone(),
        port: server.port.load(Ordering::Relaxed) as u16,
        tls_port: c.tls_port as u16,
        tls_cluster: c.tls_cluster,
        tls_replication: c.tls_replication,
        announce_tls_port: c.cluster_announce_tls_port as u16,
        cluster_port: c.cluster_port as u16,
        announce_port: c.cluster_announce_port as u16,
        announce_bus_port: c.cluster_announce_bus_port as u16,
        link_sendbuf_limit: c.cluster_link_sendbuf_limit as u64,
        preferred_endpoint: c.cluster_preferred_endpoint_type,
        repl_ping_replica_period: c.repl_ping_replica_period,
        config_file: c.cluster_config_file.clone(),
    }
}

/// Replication as the cluster sees it.
fn repl_view(server: &Server) -> state::ReplView {
    let r = &server.replica;
    state::ReplView {
        configured: r.is_replica(),
        connected: r.link_up.load(Ordering::Relaxed),
        // Both sides of the stream count the same offsets (a replica's is its master's); a
        // replica with no master link and no cached master (a full sync under way) has none
        // (replicationGetSlaveOffset: 0, which CLUSTER SHARDS shows as health "loading").
        replica_offset: if r.is_replica() && !r.has_history() { 0 } else { server.repl.offset() },
        master_offset: server.repl.offset(),
        last_io: r.last_io.load(Ordering::Relaxed),
    }
}

impl Cluster {
    /// Start cluster mode: lock and load (or create) nodes.conf, bind the bus port, start the
    /// cron. Called once at start-up, before the data is loaded. Err is the log line to exit
    /// with.
    pub async fn start(server: &Arc<Server>) -> Result<(), String> {
        let cfg = settings(server);
        config::lock_config(&cfg.config_file)?;
        let mut st = State::new(cfg.clone());
        let loaded = st.load_config(&cfg.config_file)?;
        if !loaded {
            log::notice(&format!("No cluster configuration found, I'm {}", st.me().name_str()));
            st.save_config(true).map_err(|e| format!("Fatal: can't update cluster config file. ({e})"))?;
        }
        let (port, pport, cport) = cfg.announced_ports();
        {
            let me = st.me_mut();
            me.port = port;
            me.pport = pport;
            me.cport = cport;
        }
        if cfg.base_port() > 55535 && cfg.cluster_port == 0 {
            return Err("Redis port number too high. Cluster communication port is 10,000 port numbers higher than your Redis port. Your Redis port number must be 55535 or less.".into());
        }
        let bus_port = if cfg.cluster_port != 0 { cfg.cluster_port } else { cfg.base_port() + 10000 };
        let binds = server.config.load().bind.clone();
        let listeners = crate::server::listen::bind_tcp(&binds, bus_port, server.config.load().tcp_backlog)
            .await
            .map_err(|line| {
                log::warning(&line);
                format!("Failed listening on port {bus_port} (cluster), aborting.")
            })?;
        st.update_myself_announced(&cfg);
        st.reset_manual_failover();
        st.pending.clear();
        let route = Route::build(&st);
        let cluster = Arc::new(Cluster {
            state: Mutex::new(st),
            route: ArcSwap::from_pointee(route),
            server: Arc::downgrade(server),
            rt: tokio::runtime::Handle::current(),
        });
        if server.cluster.set(cluster.clone()).is_err() {
            return Err("cluster already started".into());
        }
        for l in listeners {
            cluster.rt.spawn(bus::accept_loop(cluster.clone(), l));
        }
        cluster.rt.spawn(cron_loop(cluster.clone()));
        Ok(())
    }

    /// The routing snapshot.
    pub fn route(&self) -> arc_swap::Guard<Arc<Route>> {
        self.route.load()
    }

    /// Run `f` on the state, then the before-sleep work, then the deferred effects.
    pub fn with<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        let server = self.server.upgrade();
        let mut wake_blocked = false;
        let (r, pending) = {
            let mut st = self.state.lock();
            if let Some(s) = &server {
                // (Compared, not read: reading clones the announced names, each call, PUBLISH's
                // included.)
                let (config, port) = (s.config.load(), s.port.load(Ordering::Relaxed));
                if !st.cfg_source.as_ref().is_some_and(|(c, p)| Arc::ptr_eq(c, &config) && *p == port) {
                    st.cfg_source = Some((Arc::clone(&config), port));
                    let preferred = st.cfg.preferred_endpoint;
                    st.cfg = settings(s);
                    // Redirections name the endpoint this setting picks.
                    st.route_dirty |= st.cfg.preferred_endpoint != preferred;
                    let cfg = st.cfg.clone();
                    st.update_myself_announced(&cfg);
                }
                st.repl = repl_view(s);
            }
            let r = f(&mut st);
            st.before_sleep();
            if st.route_dirty {
                st.route_dirty = false;
                let new = Route::build(&st);
                wake_blocked = self.route.load().serving_changed(&new);
                self.route.store(Arc::new(new));
            }
            (r, std::mem::take(&mut st.pending))
        };
        if let Some(s) = server {
            // Clients blocked on keys of slots that moved (or while the cluster went down)
            // run their command again: it answers the redirection (or CLUSTERDOWN).
            if wake_blocked && s.blocking.any() {
                s.blocking.signal_all();
            }
            self.run_deferred(&s, pending);
        }
        r
    }

    /// Read the state (after the same refresh and before-sleep work as [`Cluster::with`], so
    /// a configuration change, say of an announced port, shows at once).
    pub fn read<R>(&self, f: impl FnOnce(&State) -> R) -> R {
        self.with(|st| f(st))
    }

    fn run_deferred(self: &Cluster, server: &Arc<Server>, pending: Vec<Deferred>) {
        for d in pending {
            match d {
                Deferred::SetMaster { host, port } => {
                    if !host.is_empty() && port != 0 {
                        crate::replication::replica::start(server, host, port);
                    }
                }
                Deferred::UnsetMaster => crate::replication::replica::stop(server),
                Deferred::DelKeysInSlots(slots) => {
                    let s = server.clone();
                    self.rt.spawn_blocking(move || {
                        for slot in slots {
                            del_keys_in_slot(&s, slot);
                        }
                    });
                }
                // The shard channels of a slot this shard lost: their subscribers are told.
                Deferred::RemoveChannelsInSlot(slot) => {
                    server.pubsub.unsubscribe_shard_channels(|c| crate::keyspace::slot::key_hash_slot(c) == slot);
                }
                Deferred::Publish { channel, message, shard } => {
                    server.pubsub.publish(&bytes::Bytes::from(channel), &bytes::Bytes::from(message), shard);
                }
                Deferred::PauseWrites(end) => server.pause.pause(false, end, &server.keyspace),
                Deferred::Unpause => server.pause.unpause(&server.keyspace),
                Deferred::Connect { link, ip, port, out } => {
                    self.rt.spawn(bus::connect(server.cluster.get().cloned().expect("started"), link, ip, port, out));
                }
            }
        }
    }

    /// After loading: keys of slots nobody serves are claimed, keys of slots others serve put
    /// the slot in importing state (verifyClusterConfigWithData). Keys outside database 0 are
    /// an error.
    pub fn verify_config_with_data(&self, server: &Server) -> Result<(), String> {
        if self.read(|st| st.is_myself_slave()) {
            return Ok(());
        }
        for db in 1..server.keyspace.databases() {
            if server.keyspace.db_counts(db).0 > 0 {
                return Err("Found keys in a database other than DB 0 in cluster mode, exiting.".into());
            }
        }
        let mut with_keys = vec![false; SLOTS];
        let mut view = server.keyspace.lock_all(0);
        for (_, sd) in view.locked_shards() {
            sd.main.for_each(|k, _| with_keys[crate::keyspace::slot::key_hash_slot(k) as usize] = true);
        }
        drop(view);
        self.with(|st| {
            let me = st.myself;
            let mut changed = false;
            for (j, has) in with_keys.iter().enumerate() {
                if !has || st.slots[j] == Some(me) || st.importing_from[j].is_some() {
                    continue;
                }
                changed = true;
                match st.slots[j] {
                    None => {
                        log::notice(&format!("I have keys for unassigned slot {j}. Taking responsibility for it."));
                        st.add_slot(me, j);
                    }
                    owner => {
                        log::notice(&format!(
                            "I have keys for slot {j}, but the slot is assigned to another node. Setting it to importing state."
                        ));
                        st.importing_from[j] = owner;
                        st.route_dirty = true;
                    }
                }
            }
            if changed {
                st.todo |= state::todo::FSYNC_CONFIG;
                st.save_now_or_die();
            }
        });
        Ok(())
    }

    /// PUBLISH / SPUBLISH reach the other nodes through the bus.
    pub fn propagate_publish(&self, channel: &[u8], message: &[u8], shard: bool) {
        self.with(|st| st.propagate_publish(channel, message, shard));
    }
}

/// The cron, ten times a second.
async fn cron_loop(cluster: Arc<Cluster>) {
    let mut tick = crate::util::timer::interval(Duration::from_millis(100));
    loop {
        tick.tick().await;
        let Some(server) = cluster.server.upgrade() else { return };
        if server.is_shutting_down() {
            return;
        }
        // Redis runs no timer while it loads (at startup, or a replica's synchronous load):
        // a replica must not start replicating before its own data is loaded.
        let loading = server.stats.loading.load(Ordering::SeqCst);
        drop(server);
        if loading {
            continue;
        }
        cluster.with(|st| st.cron());
    }
}

/// Delete every key of a slot (a slot this master lost), propagating the deletions.
pub fn del_keys_in_slot(server: &Server, slot: u16) -> usize {
    let shard = crate::keyspace::shard_of_slot(slot);
    let mut db = server.keyspace.lock_shard(0, shard);
    let mut keys = Vec::new();
    if let Some((_, sd)) = db.locked_shards().next() {
        sd.main.for_each(|k, _| {
            if crate::keyspace::slot::key_hash_slot(k) == slot {
                keys.push(bytes::Bytes::copy_from_slice(k));
            }
        });
    }
    // As Redis's delKeysInSlot: deleted whatever their expiry (dbDelete), WATCH and tracking
    // told, the replicas sent a DEL, and no keyspace event (the keys moved to another node;
    // Redis 7.2 tells modules only, 7.0 no one).
    for k in &keys {
        if db.delete_stored(k) {
            db.touch_dirty(1);
            db.signal_modified(k);
            db.propagate(vec![bytes::Bytes::from_static(b"DEL"), k.clone()]);
        }
    }
    // The WATCHes of what was signalled are lost (the pipeline does this after a command).
    let watches = &server.keyspace.watches;
    for m in db.take_modified().take() {
        watches.touch(m.db, &m.key, m.gone);
    }
    keys.len()
}

/// The keys of a slot in database 0, at most `max` (CLUSTER GETKEYSINSLOT), and how many there
/// are (COUNTKEYSINSLOT), read from the one shard that holds the slot.
pub fn keys_in_slot(db: &mut crate::keyspace::Db<'_>, slot: u16, max: usize) -> (usize, Vec<bytes::Bytes>) {
    let shard = crate::keyspace::shard_of_slot(slot);
    let mut count = 0;
    let mut keys = Vec::new();
    for (s, sd) in db.locked_shards() {
        if s != shard {
            continue;
        }
        sd.main.for_each(|k, _| {
            if crate::keyspace::slot::key_hash_slot(k) == slot {
                count += 1;
                if keys.len() < max {
                    keys.push(bytes::Bytes::copy_from_slice(k));
                }
            }
        });
    }
    (count, keys)
}

impl State {
    /// Keep myself's announced ports, IP and hostname in line with the configuration.
    pub fn update_myself_announced(&mut self, cfg: &state::Settings) {
        let (port, pport, cport) = cfg.announced_ports();
        let nofailover = cfg.replica_no_failover;
        let me = self.me_mut();
        let mut changed = false;
        if (me.port, me.pport, me.cport) != (port, pport, cport) {
            me.port = port;
            me.pport = pport;
            me.cport = cport;
            changed = true;
        }
        if !cfg.announce_ip.is_empty() && me.ip != cfg.announce_ip {
            me.ip = cfg.announce_ip.clone();
            changed = true;
        }
        if me.hostname != cfg.announce_hostname {
            me.hostname = cfg.announce_hostname.clone();
            changed = true;
        }
        me.human_nodename = cfg.announce_human_nodename.clone();
        let flags = if nofailover { me.flags | node::flag::NOFAILOVER } else { me.flags & !node::flag::NOFAILOVER };
        if flags != me.flags {
            me.flags = flags;
            changed = true;
        }
        if changed {
            self.route_dirty = true;
            self.do_before_sleep(state::todo::SAVE_CONFIG);
        }
    }
}
