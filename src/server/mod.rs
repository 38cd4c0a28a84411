//! The server: shared state ([`Server`]), the TCP listener, the periodic cron (active expiry,
//! incremental rehashing, save points, AOF rewrites) and orderly shutdown. Each accepted
//! connection runs as its own tokio task (see [`connection`]) on one of the worker threads, each
//! a single-threaded runtime: a connection stays on its worker for its whole life.

pub mod aof;
pub mod aof_load;
pub mod busy_poll;
pub mod client_eviction;
pub mod config_apply;
pub mod connection;
mod console;
pub mod disk;
pub mod info;
pub mod listen;
pub mod log;
pub mod monitor;
pub mod observe;
pub mod outbox;
pub mod pass;
pub mod pause;
pub mod proc_title;
pub mod process;
pub mod query_buffer;
pub mod save_child;
pub mod saving;
pub mod shutdown;
pub mod staged_load;
pub mod stream_io;
pub mod tls;
mod tls_sessions;
mod tls_verify;
pub mod watchdog;

use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use crate::config::{Config, LiveConfig};
use crate::keyspace::{expire::active_expire_cycle, Keyspace};
use crate::session::{blocking, ClientHandle};

/// The counters every connection writes with each read, batch and write (INFO's
/// total_net_input_bytes, total_net_output_bytes, total_reads_processed,
/// total_writes_processed, eventloop_cycles, eventloop_duration_sum, total_commands_processed),
/// indexed by the constants of [`io`], one stripe line per thread for all of them.
/// The last two are per-thread maxima (INFO debug's eventloop_duration_max and
/// eventloop_cmd_per_cycle_max), read with `CounterSet::max`.
pub type IoStats = crate::util::striped::CounterSet<9>;

/// How long a reply buffer's peak counts before it starts again (Redis's
/// REPLY_BUFFER_DEFAULT_PEAK_RESET_TIME, ms): a buffer used under half for that long shrinks.
pub const REPLY_BUFFER_PEAK_RESET_MS: i64 = 5000;

/// The counters of [`IoStats`].
pub mod io {
    pub const NET_INPUT: usize = 0;
    pub const NET_OUTPUT: usize = 1;
    pub const READS: usize = 2;
    pub const WRITES: usize = 3;
    pub const CYCLES: usize = 4;
    pub const CYCLES_US: usize = 5;
    pub const COMMANDS: usize = 6;
    pub const CYCLE_MAX_US: usize = 7;
    pub const CYCLE_MAX_CMDS: usize = 8;
}

/// Server-wide counters (INFO stats).
#[derive(Default)]
pub struct Stats {
    /// What every read, batch and write of a connection counts (`IoStats`), per thread.
    pub io: IoStats,
    pub total_connections_received: AtomicU64,
    pub rejected_connections: AtomicU64,
    pub total_error_replies: AtomicU64,
    pub unexpected_error_replies: AtomicU64,
    pub client_query_buffer_limit_disconnections: AtomicU64,
    /// Point-in-time captures started for BGSAVE, AOF rewrites and full syncs: what Redis
    /// counts as forks (`total_forks`; monitoring and Redis's tests watch it to see a
    /// background save start), and how long the last one held the shard locks
    /// (`latest_fork_usec`).
    pub total_forks: AtomicU64,
    pub latest_fork_usec: AtomicU64,
    /// Clients closed for going over their `client-output-buffer-limit` (Redis 8's field).
    pub client_output_buffer_limit_disconnections: AtomicU64,
    /// Clients closed by client eviction (`maxmemory-clients`).
    pub evicted_clients: AtomicU64,
    /// Reply buffers the cron resized (`Outbox::resize_reply_buffer`).
    pub reply_buffer_shrinks: AtomicU64,
    pub reply_buffer_expands: AtomicU64,
    /// Time spent in active expiry (expire_cycle_cpu_milliseconds).
    pub expire_cycle_us: AtomicU64,
    /// Time spent in the cron (INFO debug's eventloop_duration_cron_sum).
    pub cron_us: AtomicU64,
    /// ops/sec and kbps, sampled by the cron.
    pub rates: crate::metrics::instantaneous::Rates,
    /// Loading the data at start-up: commands without the `loading` flag get -LOADING.
    pub loading: AtomicBool,
    /// Unix seconds when loading started, and the size of what is loaded (INFO persistence).
    pub loading_start: std::sync::atomic::AtomicI64,
    pub loading_total_bytes: AtomicU64,
    /// What was read of it so far.
    pub loading_loaded_bytes: AtomicU64,
}

/// Everything shared by all connections.
pub struct Server {
    pub config: LiveConfig,
    pub keyspace: Keyspace,
    /// Client-side caching: who read which key, invalidated as keys change (the keyspace
    /// tells it of every modified key).
    pub tracking: Arc<crate::tracking::Tracking>,
    /// Clients blocked on keys.
    pub blocking: Arc<blocking::Blocking>,
    /// Pub/Sub subscriptions.
    pub pubsub: crate::pubsub::PubSub,
    /// CLIENT PAUSE state.
    pub pause: pause::Pause,
    /// Lua scripting: engines, script cache, function libraries, busy-script state.
    pub scripting: crate::scripting::Scripting,
    pub clients: Mutex<HashMap<u64, Arc<ClientHandle>>>,
    /// `client-output-buffer-limit`, per client class.
    pub obuf_limits: parking_lot::RwLock<crate::metrics::obuf::Limits>,
    /// Bumped after every [`Server::apply_config`]: a connection re-reads the settings it
    /// keeps (see `connection::Settings`) only when this moved.
    pub config_epoch: AtomicU64,
    /// Memory all connections hold (see `client_eviction`), and `maxmemory-clients` in bytes
    /// (0: no client eviction).
    pub clients_mem: std::sync::atomic::AtomicUsize,
    /// Memory of clients client eviction closed whose tasks have not given it back yet.
    pub clients_mem_closing: std::sync::atomic::AtomicUsize,
    pub maxmemory_clients: std::sync::atomic::AtomicUsize,
    /// The settings every command's epilogue reads (`observe::command_done`).
    pub observe: observe::Settings,
    /// ACL users, the ACL LOG and the permission checks' catalog of commands.
    pub acl: crate::acl::Acl,
    next_client_id: AtomicU64,
    pub stats: Stats,
    pub error_stats: Mutex<HashMap<String, u64>>,
    pub started: Instant,
    pub run_id: String,
    /// Port actually bound (differs from the config when it was 0).
    pub port: AtomicU64,
    pub active_expire: AtomicBool,
    /// DEBUG PAUSE-CRON: the periodic background work is suspended.
    pub cron_paused: AtomicBool,
    /// DEBUG REPLYBUFFER: whether the cron resizes reply buffers (`resizing`), and how long a
    /// reply buffer's peak counts before it starts again (`peak-reset-time`, ms; -1: never).
    pub reply_buffer_resizing: AtomicBool,
    pub reply_buffer_peak_reset_ms: AtomicI64,
    /// A signal asked for a shutdown that has not begun yet (Redis's `shutdown_asap`): SHUTDOWN
    /// ABORT cancels it.
    pub shutdown_pending: AtomicBool,
    /// The shutdown in progress (waiting for replicas, finishing).
    pub shutdown_state: shutdown::Shutdown,
    /// `maxmemory` in bytes (0: no limit), kept outside the config lock for the hot path.
    pub maxmemory: std::sync::atomic::AtomicUsize,
    /// `maxmemory-policy` and `maxmemory-samples`.
    pub eviction: parking_lot::RwLock<(crate::keyspace::evict::Policy, usize)>,
    /// Over maxmemory with nothing left to evict: commands flagged `denyoom` are refused.
    pub out_of_memory: AtomicBool,
    /// `min-replicas-to-write`: writes are refused (NOREPLICAS) with fewer good replicas.
    pub min_replicas_to_write: std::sync::atomic::AtomicUsize,
    pub shutdown: tokio::sync::Notify,
    shutting_down: AtomicBool,
    /// RDB persistence state (SAVE, BGSAVE, save points, INFO persistence).
    pub saving: saving::SaveState,
    /// Replica side of replication (REPLICAOF).
    pub replica: crate::replication::replica::ReplicaState,
    /// Master side: the stream, its backlog, the attached replicas (WAIT, PSYNC, FAILOVER).
    pub repl: Arc<crate::replication::Repl>,
    /// AOF state (writer thread mailbox, fsync handshake, INFO persistence).
    pub aof: aof::AofState,
    /// MONITOR clients.
    pub monitors: monitor::Monitors,
    /// SLOWLOG.
    pub slowlog: crate::metrics::slowlog::SlowLog,
    /// LATENCY events.
    pub latency: crate::metrics::latency::LatencyMonitor,
    /// The accept loops (CONFIG SET port/bind replaces the TCP ones).
    pub listeners: listen::Listeners,
    /// TLS configurations (tls-port, tls-replication), rebuilt by CONFIG SET.
    pub tls: tls::Tls,
    /// This server, for work that outlives a command (BGSAVE's thread).
    pub me: Weak<Server>,
    /// Cluster mode (`cluster-enabled yes`): set once at start-up.
    pub cluster: std::sync::OnceLock<Arc<crate::cluster::Cluster>>,
    /// Sentinel mode: set once at start-up.
    pub sentinel: std::sync::OnceLock<Arc<crate::sentinel::Sentinel>>,
}

impl Server {
    pub fn new(config: Config, file: Option<String>) -> Arc<Server> {
        let dbs = config.databases as usize;
        let run_id: String = (0..40).map(|_| char::from_digit(rand::random::<u32>() % 16, 16).unwrap_or('0')).collect();
        let keyspace = Keyspace::new(dbs);
        let tracking = Arc::new(crate::tracking::Tracking::default());
        keyspace.observe(tracking.clone());
        let blocking = Arc::new(blocking::Blocking::new(keyspace.waiting.clone()));
        keyspace.install_blocked(blocking.clone());
        let observe = observe::Settings::default();
        observe.configure(&config);
        Arc::new_cyclic(|me| Server {
            config: LiveConfig::new(config, file),
            keyspace,
            tracking,
            blocking,
            pubsub: crate::pubsub::PubSub::default(),
            pause: pause::Pause::default(),
            scripting: crate::scripting::Scripting::default(),
            clients: Mutex::new(HashMap::new()),
            obuf_limits: Default::default(),
            config_epoch: AtomicU64::new(0),
            clients_mem: Default::default(),
            clients_mem_closing: Default::default(),
            maxmemory_clients: Default::default(),
            observe,
            acl: crate::acl::Acl::new(Arc::new(crate::commands::pipeline::services::acl_catalog())),
            next_client_id: AtomicU64::new(1),
            stats: Stats::default(),
            error_stats: Mutex::new(HashMap::new()),
            started: Instant::now(),
            run_id,
            port: AtomicU64::new(0),
            active_expire: AtomicBool::new(true),
            cron_paused: AtomicBool::new(false),
            reply_buffer_resizing: AtomicBool::new(true),
            reply_buffer_peak_reset_ms: AtomicI64::new(REPLY_BUFFER_PEAK_RESET_MS),
            shutdown_pending: AtomicBool::new(false),
            shutdown_state: Default::default(),
            maxmemory: Default::default(),
            eviction: Default::default(),
            out_of_memory: AtomicBool::new(false),
            min_replicas_to_write: Default::default(),
            shutdown: tokio::sync::Notify::new(),
            shutting_down: AtomicBool::new(false),
            saving: saving::SaveState::default(),
            replica: Default::default(),
            repl: Default::default(),
            aof: aof::AofState::default(),
            monitors: Default::default(),
            slowlog: Default::default(),
            latency: Default::default(),
            listeners: Default::default(),
            tls: Default::default(),
            me: me.clone(),
            cluster: std::sync::OnceLock::new(),
            sentinel: std::sync::OnceLock::new(),
        })
    }

    /// Before a command: evict keys while used memory is over `maxmemory` (Redis's
    /// performEvictions), and note whether the server is out of memory for the pipeline's
    /// `denyoom` check. Skipped while a script holds the keyspace (its locks would be waited for).
    pub fn evict_before_command(&self) {
        let max = self.maxmemory.load(Ordering::Relaxed);
        if max == 0 || self.scripting.busy.running_for().is_some() {
            return;
        }
        // replica-ignore-maxmemory: a replica leaves eviction to its master.
        if self.replica.is_replica() && self.config.load().replica_ignore_maxmemory {
            self.out_of_memory.store(false, Ordering::Relaxed);
            return;
        }
        let (policy, samples) = *self.eviction.read();
        let started = Instant::now();
        let evicted_before = self.keyspace.stats.evicted_keys.load(Ordering::Relaxed);
        // Clients closed by client eviction are as good as gone (Redis frees them at once;
        // here their tasks give the memory back when they next run).
        let used = || {
            let not_counted = self.memory_not_counted_for_evict() + self.clients_mem_closing.load(Ordering::Relaxed);
            crate::metrics::memory::used().saturating_sub(not_counted)
        };
        let gauge = crate::keyspace::evict::Gauge { used: &used, thread_net: crate::metrics::memory::thread_net };
        let result = crate::keyspace::evict::perform_evictions(&self.keyspace, max, policy, samples, &gauge);
        if result != crate::keyspace::evict::Evict::Ok
            || self.keyspace.stats.evicted_keys.load(Ordering::Relaxed) != evicted_before
        {
            let threshold = self.config.load().latency_monitor_threshold;
            self.latency.add_if_needed(threshold, "eviction-cycle", started.elapsed().as_millis() as u64);
        }
        self.out_of_memory.store(result == crate::keyspace::evict::Evict::Fail, Ordering::Relaxed);
    }

    /// Memory maxmemory does not count (Redis's freeMemoryGetNotCountedMemory): what the
    /// replication buffer holds beyond the backlog for lagging replicas, and the AOF buffer.
    /// Otherwise a replica that stops reading would make the master evict its keys.
    pub fn memory_not_counted_for_evict(&self) -> usize {
        self.repl.uncounted_memory() + self.aof.buffer_len.load(Ordering::Relaxed) as usize
    }

    /// Re-read the settings that live outside the configuration (after start-up or CONFIG SET).
    pub fn apply_config(&self) {
        let cfg = self.config.load();
        let ceiling = match cfg.output_buffer_ceiling {
            0 => crate::metrics::obuf::auto_ceiling(),
            n => n as usize,
        };
        let limits = crate::metrics::obuf::Limits::from_classes(cfg.client_output_buffer_limit, ceiling);
        *self.pubsub.limits.write() = limits.pubsub;
        *self.obuf_limits.write() = limits;
        self.keyspace.notifier.set_flags(cfg.notify_keyspace_events);
        self.observe.configure(&cfg);
        let maxmemory = cfg.maxmemory as u64 as usize;
        self.maxmemory.store(maxmemory, Ordering::Relaxed);
        let policy = crate::keyspace::evict::Policy::parse(cfg.maxmemory_policy_name());
        *self.eviction.write() = (policy, cfg.maxmemory_samples as usize);
        if maxmemory == 0 {
            self.out_of_memory.store(false, Ordering::Relaxed);
        }
        self.min_replicas_to_write.store(cfg.min_replicas_to_write as usize, Ordering::Relaxed);
        let (hard, soft, secs) = cfg.client_output_buffer_limit[1];
        self.repl.set_obuf_limit(crate::replication::backlog::ObufLimit { hard, soft, soft_seconds: secs });
        self.repl.resize_backlog(cfg.repl_backlog_size);
        self.repl.refresh_good(cfg.min_replicas_max_lag);
        let clients_limit = client_eviction::limit_of(cfg.maxmemory_clients, maxmemory);
        self.maxmemory_clients.store(clients_limit, Ordering::Relaxed);
        let _ = client_eviction::enforce(self);
        let stop_writes = cfg.stop_writes_on_bgsave_error && !cfg.save.is_empty();
        self.saving.stop_writes_on_error.store(stop_writes, Ordering::Relaxed);
        self.tracking.max_keys.store(cfg.tracking_table_max_keys as usize, Ordering::Relaxed);
        self.keyspace.lfu.configure(cfg.maxmemory_policy_name(), cfg.lfu_log_factor as u32, cfg.lfu_decay_time as u32);
        crate::persistence::rdb_load::KEY_LOAD_DELAY_US.store(cfg.key_load_delay, Ordering::Relaxed);
        crate::types::list_shape::set_max_listpack_size(cfg.list_max_listpack_size);
        crate::types::list_shape::set_compress_depth(cfg.list_compress_depth);
        log::set_level(cfg.loglevel as usize);
        watchdog::configure(cfg.watchdog_period, cfg.hz);
        proc_title::update(&cfg, self.config.file.as_deref());
        drop(cfg);
        aof::apply_config(self);
        self.config_epoch.fetch_add(1, Ordering::Release);
    }

    /// Publish keyspace events through Pub/Sub (installed once, at start-up).
    fn install_notifications(server: &Arc<Server>) {
        use crate::keyspace::notify::{KEYEVENT, KEYSPACE};
        let weak = Arc::downgrade(server);
        server.keyspace.notifier.install(Box::new(move |events| {
            let Some(s) = weak.upgrade() else { return };
            let flags = s.keyspace.notifier.flags();
            for e in events {
                if flags & KEYSPACE != 0 {
                    let mut ch = format!("__keyspace@{}__:", e.db).into_bytes();
                    ch.extend_from_slice(&e.key);
                    s.pubsub.publish(&bytes::Bytes::from(ch), &bytes::Bytes::from_static(e.name.as_bytes()), false);
                }
                if flags & KEYEVENT != 0 {
                    let ch = bytes::Bytes::from(format!("__keyevent@{}__:{}", e.db, e.name));
                    s.pubsub.publish(&ch, &e.key, false);
                }
            }
        }));
    }

    /// Sample the instantaneous rates (at most every 100 ms, as Redis's cron does).
    fn track_rates(&self) {
        use crate::metrics::instantaneous::{
            EL_CYCLES, EL_DURATION, NET_INPUT, NET_OUTPUT, NET_REPL_INPUT, NET_REPL_OUTPUT, OPS,
        };
        let now = crate::keyspace::now_ms();
        let r = &self.stats.rates;
        r.track(OPS, now, self.stats.io.get(io::COMMANDS));
        r.track(NET_INPUT, now, self.stats.io.get(io::NET_INPUT));
        r.track(NET_OUTPUT, now, self.stats.io.get(io::NET_OUTPUT));
        let rs = &self.repl.stats;
        r.track(NET_REPL_INPUT, now, rs.net_repl_input_bytes.load(Ordering::Relaxed));
        r.track(NET_REPL_OUTPUT, now, rs.net_repl_output_bytes.load(Ordering::Relaxed));
        let cycles = self.stats.io.get(io::CYCLES);
        r.track(EL_CYCLES, now, cycles);
        r.track_per(EL_DURATION, cycles, self.stats.io.get(io::CYCLES_US));
    }

    pub fn next_client_id(&self) -> u64 {
        self.next_client_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Ask the server to stop (SHUTDOWN, signals).
    pub fn request_shutdown(&self) {
        self.listeners.stop_accepting();
        self.shutting_down.store(true, Ordering::SeqCst);
        self.shutdown.notify_waiters();
        self.shutdown.notify_one();
    }

    pub fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::SeqCst)
    }

    /// A background save's point in time was taken (`started` just before it): count it as
    /// Redis counts a fork.
    pub fn count_fork(&self, started: std::time::Instant) {
        self.stats.total_forks.fetch_add(1, Ordering::Relaxed);
        self.stats.latest_fork_usec.store(started.elapsed().as_micros() as u64, Ordering::Relaxed);
    }

    /// Count an error reply for INFO errorstats.
    pub fn count_error(&self, code: &str) {
        self.stats.total_error_replies.fetch_add(1, Ordering::Relaxed);
        let mut m = self.error_stats.lock();
        match m.get_mut(code) {
            Some(n) => *n += 1,
            None => {
                // Redis stops tracking new error codes past 128 distinct ones.
                if m.len() < 128 {
                    m.insert(code.to_string(), 1);
                }
            }
        }
    }
}

/// The periodic background work, `hz` times a second.
async fn cron(server: Arc<Server>) {
    let mut ticks = 0u64;
    loop {
        let hz = server.config.load().hz_clamped();
        crate::util::timer::sleep(Duration::from_millis(1000 / hz)).await;
        ticks += 1;
        let every_second = ticks.is_multiple_of(hz);
        if server.is_shutting_down() {
            return;
        }
        if server.cron_paused.load(Ordering::Relaxed) {
            continue;
        }
        let s = server.clone();
        // The cron locks shards one at a time; run it off the async workers.
        let _ = tokio::task::spawn_blocking(move || {
            let began = Instant::now();
            // The cron runs as its own event-loop cycle, as Redis's timer event wakes its loop
            // hz times a second (instantaneous_eventloop_* of an idle server).
            let _cycle = CronCycle(&s, began);
            if s.active_expire.load(Ordering::Relaxed) {
                // Like Redis: at most 25% of the cron period goes to active expiry.
                let t = Instant::now();
                // A replica expires only the keys its own clients gave a TTL (its master's
                // DELs expire the rest).
                if s.replica.is_replica() {
                    crate::replication::expire_replica_keys(&s);
                } else {
                    active_expire_cycle(&s.keyspace, Duration::from_millis(250 / hz));
                }
                let took = t.elapsed();
                s.stats.expire_cycle_us.fetch_add(took.as_micros() as u64, Ordering::Relaxed);
                s.latency.add_if_needed(
                    s.config.load().latency_monitor_threshold,
                    "expire-cycle",
                    took.as_millis() as u64,
                );
            }
            s.track_rates();
            let tracking = &s.tracking;
            if tracking.any() {
                // Invalidations caused by active expiry, and the tracking table's limit.
                tracking.flush_bcast();
                tracking.enforce_limit(0);
            }
            s.keyspace.cron_step(s.config.load().activerehashing, Duration::from_millis(1));
            saving::cron(&s);
            aof::cron(&s);
            crate::commands::pipeline::services::close_timed_out_sockets();
            query_buffer::resize_client_buffers(&s, every_second);
            // A backstop for client eviction: a worker whose turns never end (always another
            // task ready) still has its clients checked, as Redis's loop sleeps after its cron.
            let _ = client_eviction::enforce(&s);
            crate::metrics::memory::give_back_freed();
        })
        .await;
    }
}

/// The server is loading (INFO `loading:1`; commands without the `loading` flag are refused)
/// until this is dropped: start-up's load, DEBUG LOADAOF.
pub(crate) struct Loading<'a>(&'a Server);

impl<'a> Loading<'a> {
    pub(crate) fn start(server: &'a Server) -> Self {
        server.stats.loading_start.store(crate::keyspace::now_ms() / 1000, Ordering::Relaxed);
        server.stats.loading.store(true, Ordering::SeqCst);
        Loading(server)
    }
}

impl Drop for Loading<'_> {
    fn drop(&mut self) {
        self.0.stats.loading.store(false, Ordering::SeqCst);
    }
}

/// Counts the cron step it lives in as an event-loop cycle, with its duration (at least 1 µs).
struct CronCycle<'a>(&'a Server, Instant);

impl Drop for CronCycle<'_> {
    fn drop(&mut self) {
        let us = (self.1.elapsed().as_micros() as u64).max(1);
        let io = self.0.stats.io.local();
        io[io::CYCLES].fetch_add(1, Ordering::Relaxed);
        io[io::CYCLES_US].fetch_add(us, Ordering::Relaxed);
        crate::util::striped::raise(&io[io::CYCLE_MAX_US], us);
        self.0.stats.cron_us.fetch_add(us, Ordering::Relaxed);
    }
}

/// Bind the listeners, load the data, then serve until shutdown. Returns the process exit code.
/// The log follows redis-server's start-up lines (the banner with ` PID: <pid>`, "Server
/// initialized", "Ready to accept connections").
pub async fn run(server: Arc<Server>, ready: Option<tokio::sync::oneshot::Sender<u16>>) -> i32 {
    let cfg = server.config.snapshot();
    log::set_role(cfg.replicaof.is_some());
    log::notice("monotonic clock: POSIX clock_gettime");
    // TLS first: a configuration that cannot work stops the start-up (Redis's tlsConfigure).
    if tls::needed(&cfg) {
        match tls::configure(&cfg) {
            Ok(c) => server.tls.install(c),
            Err(line) => {
                log::warning(&line);
                log::warning("Failed to configure TLS. Check logs for more info.");
                return 1;
            }
        }
    }
    // `port 0` with a TLS port: no plain TCP listener (as Redis; without TLS, port 0 binds an
    // ephemeral port, which in-process tests use).
    let plain = cfg.port != 0 || cfg.tls_port == 0;
    let listeners = match if plain {
        listen::bind_tcp(&cfg.bind, cfg.port as u16, cfg.tcp_backlog).await
    } else {
        Ok(Vec::new())
    } {
        Ok(l) => l,
        Err(line) => {
            log::warning(&line);
            log::warning(&format!("Failed listening on port {} (TCP), aborting.", cfg.port));
            return 1;
        }
    };
    let tls_listeners = if cfg.tls_port != 0 {
        match listen::bind_tcp(&cfg.bind, cfg.tls_port as u16, cfg.tcp_backlog).await {
            Ok(l) => l,
            Err(line) => {
                log::warning(&line.replace("server TCP listening", "server TLS listening"));
                log::warning(&format!("Failed listening on port {} (tls), aborting.", cfg.tls_port));
                return 1;
            }
        }
    } else {
        Vec::new()
    };
    let bound = listeners.first().and_then(|l| l.local_addr().ok()).map(|a| a.port()).unwrap_or(cfg.port as u16);
    server.port.store(bound as u64, Ordering::Relaxed);
    process::write_pidfile(&cfg);
    let tty = {
        use std::io::IsTerminal;
        std::io::stdout().is_terminal()
    };
    if cfg.always_show_logo || (cfg.logfile.is_empty() && !cfg.syslog_enabled && tty) {
        let logo = log::logo(bound);
        let logo = if server.sentinel.get().is_some() {
            logo.replace("in standalone mode", "in sentinel mode  ")
        } else if cfg.cluster_enabled {
            logo.replace("in standalone mode", "in cluster mode   ")
        } else {
            logo
        };
        log::raw(&logo);
    } else {
        let mode = if server.sentinel.get().is_some() {
            "sentinel"
        } else if cfg.cluster_enabled {
            "cluster"
        } else {
            "standalone"
        };
        log::notice(&format!("Running mode={mode}, port={bound}."));
    }
    if server.sentinel.get().is_none() {
        log::notice("Server initialized");
    }
    crate::metrics::memory::mark_startup();
    // Before loading: loaded entries take the LRU or LFU metadata the policy calls for.
    server.apply_config();
    server.repl.install(&server.keyspace.effects);
    if cfg.replicaof.is_some() {
        // Until the link starts, a replica's stream is its master's.
        server.replica.set_master(cfg.replicaof.clone());
        server.repl.set_proxying(&server.keyspace.effects, true);
    }
    let _ = process::set_oom_score_adj(&cfg, cfg.replicaof.is_some());
    Server::install_notifications(&server);
    // Clients are served while the data loads, as in Redis: commands without the `loading`
    // flag answer -LOADING until it is done (and the cluster cron waits for it).
    let loading = Loading::start(&server);
    if cfg.cluster_enabled {
        crate::keyspace::shard_by_slot();
        if let Err(line) = crate::cluster::Cluster::start(&server).await {
            log::warning(&line);
            return 1;
        }
    }
    if let Err(e) = server.listeners.start(&server, listeners) {
        log::warning(&e);
        return 1;
    }
    server.listeners.replace_tls(tls_listeners);
    let started = std::time::Instant::now();
    let s = server.clone();
    // A Sentinel has no data set: nothing to load.
    let sentinel = server.sentinel.get().cloned();
    // Whether an RDB file was loaded (the AOF logs its own line), or the error and whether it
    // came from the RDB file (else the AOF).
    let loaded = match &sentinel {
        Some(_) => {
            server.listeners.open();
            Ok(false)
        }
        None => tokio::task::spawn_blocking(move || match aof_load::load_at_startup(&s) {
            Ok(true) => Ok(false),
            Ok(false) => saving::load_at_startup(&s).map_err(|e| (e, true)),
            Err(e) => Err((e, false)),
        })
        .await
        .unwrap_or_else(|e| Err((format!("loading panicked: {e}"), true))),
    };
    let rdb_loaded = match loaded {
        Ok(rdb_loaded) => rdb_loaded,
        Err((e, rdb)) => {
            // What failed (the file, and Ferrous's account of it); after an RDB file, Redis's
            // last words (an AOF's error is Redis's last line).
            log::warning(&e);
            if rdb {
                log::warning("Fatal error loading the DB, check server logs. Exiting.");
            }
            return 1;
        }
    };
    match &sentinel {
        Some(s) => s.start(&server),
        // As Redis, only when the file was there.
        None if rdb_loaded => {
            log::notice(&format!("DB loaded from disk: {:.3} seconds", started.elapsed().as_secs_f64()))
        }
        None => {}
    }
    if let Some(c) = server.cluster.get() {
        if let Err(e) = c.verify_config_with_data(&server) {
            log::warning(&e);
            return 1;
        }
    }
    drop(loading);
    server.listeners.open();
    if let Some((host, port)) = cfg.replicaof.clone() {
        crate::replication::replica::start_at_boot(&server, host, port);
    }
    tokio::spawn(crate::replication::cron(server.clone()));
    if cfg.metrics_port != 0 {
        if let Err(e) = crate::metrics::prometheus::start(&server, &cfg.bind, cfg.metrics_port as u16).await {
            log::warning(&e);
            return 1;
        }
    }
    if plain {
        log::notice("Ready to accept connections tcp");
    }
    if cfg.tls_port != 0 {
        log::notice("Ready to accept connections tls");
    }
    if !cfg.unixsocket.is_empty() {
        log::notice("Ready to accept connections unix");
    }
    // Redis tells systemd whether a replica still waits for its master's data.
    if server.sentinel.get().is_none() && server.replica.is_replica() {
        process::notify_systemd(
            "STATUS=Ready to accept connections in read-only mode. Waiting for MASTER <-> REPLICA sync\n",
        );
    } else {
        process::notify_systemd("STATUS=Ready to accept connections\n");
    }
    process::notify_systemd("READY=1\n");
    if cfg.maxmemory > 0 && cfg.maxmemory < 1024 * 1024 {
        log::warning(&format!(
            "WARNING: You specified a maxmemory value that is less than 1MB (current value is {} bytes). Are you sure this is what you really want?",
            cfg.maxmemory
        ));
    }
    if let Some(tx) = ready {
        let _ = tx.send(bound);
    }
    tokio::spawn(cron(server.clone()));
    tokio::spawn(signal_loop(server.clone()));
    while !server.is_shutting_down() {
        server.shutdown.notified().await;
    }
    crate::replication::flush_on_shutdown(&server).await;
    if server.aof.on.load(Ordering::Acquire) {
        log::notice("Calling fsync() on the AOF file.");
        let s = server.clone();
        let _ = tokio::task::spawn_blocking(move || aof::stop(&s)).await;
    }
    let cfg = server.config.load();
    process::remove_pidfile(&cfg);
    if !cfg.unixsocket.is_empty() {
        log::notice("Removing the unix socket file.");
        let _ = std::fs::remove_file(&cfg.unixsocket);
    }
    log::warning(if server.sentinel.get().is_some() {
        "Sentinel is now ready to exit, bye bye..."
    } else {
        "Redis is now ready to exit, bye bye..."
    });
    0
}

/// SIGTERM / SIGINT: shut down as `shutdown-on-sigterm` / `shutdown-on-sigint` say (by
/// default saving first when save points are configured). Returns whether shutdown began.
async fn shutdown_on_signal(s: &Arc<Server>, sig: Signal) -> bool {
    let cfg = s.config.snapshot();
    let (flags, name) = match sig {
        Signal::Term => (cfg.shutdown_on_sigterm, "SIGTERM"),
        Signal::Int => (cfg.shutdown_on_sigint, "SIGINT"),
    };
    log::warning(&format!("Received {name} scheduling shutdown..."));
    // Redis acts on the signal in its cron: while DEBUG PAUSE-CRON holds it, SHUTDOWN ABORT
    // can still cancel it.
    s.shutdown_pending.store(true, Ordering::SeqCst);
    while s.cron_paused.load(Ordering::Relaxed) && s.shutdown_pending.load(Ordering::SeqCst) {
        crate::util::timer::sleep(std::time::Duration::from_millis(10)).await;
    }
    if !s.shutdown_pending.swap(false, Ordering::SeqCst) {
        return false;
    }
    shutdown::request(s, flags).await.is_ok()
}

enum Signal {
    Term,
    Int,
}

/// Wait for SIGTERM or SIGINT, repeatedly (a refused shutdown leaves the handlers in place).
async fn signal_loop(s: Arc<Server>) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) else {
            return;
        };
        // The shutdown runs beside this loop: a second SIGINT meanwhile exits at once; another
        // SIGTERM asks again (Redis sets shutdown_asap again), so a shutdown that was aborted
        // meanwhile starts over.
        let mut running: Option<tokio::task::JoinHandle<bool>> = None;
        let mut again: Option<Signal> = None;
        loop {
            let sig = tokio::select! {
                _ = term.recv() => Signal::Term,
                _ = int.recv() => Signal::Int,
                done = async { running.as_mut().expect("guarded").await }, if running.is_some() => {
                    running = None;
                    if matches!(done, Ok(true)) {
                        return;
                    }
                    match again.take() {
                        Some(sig) => sig,
                        None => continue,
                    }
                }
            };
            if running.is_some() {
                if matches!(sig, Signal::Int) {
                    // Redis's sigShutdownHandler: the user insists.
                    log::warning("You insist... exiting now.");
                    let _ = std::fs::remove_file(format!("temp-{}.rdb", std::process::id()));
                    std::process::exit(1);
                }
                log::warning("Received SIGTERM scheduling shutdown...");
                s.shutdown_pending.store(true, Ordering::SeqCst);
                again = Some(sig);
                continue;
            }
            let s2 = s.clone();
            running = Some(tokio::spawn(async move { shutdown_on_signal(&s2, sig).await }));
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
        shutdown_on_signal(&s, Signal::Int).await;
    }
}

/// Redis's allowProtectedAction for an `enable-*` setting (0 no, 1 yes, 2 local).
pub fn allows_protected(setting: u32, client: &crate::session::Client) -> bool {
    setting == 1 || (setting == 2 && crate::session::is_local(client))
}
