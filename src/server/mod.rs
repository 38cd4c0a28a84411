//! The server: shared state ([`Server`]), the TCP listener, the periodic cron (active expiry,
//! incremental rehashing, save points, AOF rewrites) and orderly shutdown. Each accepted connection runs as its own tokio
//! task (see [`connection`]); tokio's multi-threaded runtime spreads them over all cores.

pub mod aof;
pub mod aof_load;
pub mod blocking;
pub mod client;
pub mod client_eviction;
pub mod connection;
pub mod disk;
pub mod info;
pub mod log;
pub mod outbox;
pub mod pause;
pub mod saving;

use parking_lot::{Mutex, RwLock};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use crate::config::Config;
use crate::keyspace::{expire::active_expire_cycle, Keyspace};
use client::ClientHandle;

/// Server-wide counters (INFO stats).
#[derive(Default)]
pub struct Stats {
    pub total_connections_received: AtomicU64,
    pub total_commands_processed: AtomicU64,
    pub rejected_connections: AtomicU64,
    pub net_input_bytes: AtomicU64,
    pub net_output_bytes: AtomicU64,
    pub total_error_replies: AtomicU64,
    pub unexpected_error_replies: AtomicU64,
    pub expired_stale_perc: AtomicU64,
    pub client_query_buffer_limit_disconnections: AtomicU64,
    /// Clients closed for going over their `client-output-buffer-limit` (Redis 8's field).
    pub client_output_buffer_limit_disconnections: AtomicU64,
    /// Clients closed by client eviction (`maxmemory-clients`).
    pub evicted_clients: AtomicU64,
    /// Request batches processed, and the microseconds they took (Redis 7.2's event-loop
    /// metrics, with one connection's batch as a cycle).
    pub eventloop_cycles: AtomicU64,
    pub eventloop_duration_us: AtomicU64,
    /// Failed AUTH / HELLO AUTH (Redis 7.2's acl_access_denied_auth).
    pub acl_access_denied_auth: AtomicU64,
}

/// Everything shared by all connections.
pub struct Server {
    pub config: RwLock<Config>,
    pub keyspace: Keyspace,
    /// Clients blocked on keys.
    pub blocking: blocking::Blocking,
    /// Pub/Sub subscriptions.
    pub pubsub: crate::pubsub::PubSub,
    /// CLIENT PAUSE state.
    pub pause: pause::Pause,
    /// Lua scripting: engines, script cache, function libraries, busy-script state.
    pub scripting: crate::scripting::Scripting,
    pub clients: Mutex<HashMap<u64, Arc<ClientHandle>>>,
    /// `client-output-buffer-limit`, per client class.
    pub obuf_limits: RwLock<crate::metrics::obuf::Limits>,
    /// Memory all connections hold (see `client_eviction`), and `maxmemory-clients` in bytes
    /// (0: no client eviction).
    pub clients_mem: std::sync::atomic::AtomicUsize,
    pub maxmemory_clients: std::sync::atomic::AtomicUsize,
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
    /// Master side: the connected replicas' acknowledgements (WAIT, WAITAOF).
    pub acks: crate::replication::Acks,
    /// AOF state (writer thread mailbox, fsync handshake, INFO persistence).
    pub aof: aof::AofState,
    /// This server, for work that outlives a command (BGSAVE's thread).
    pub me: Weak<Server>,
}

impl Server {
    pub fn new(config: Config) -> Arc<Server> {
        let dbs = config.settings.databases;
        let run_id: String = (0..40).map(|_| char::from_digit(rand::random::<u32>() % 16, 16).unwrap_or('0')).collect();
        Arc::new_cyclic(|me| Server {
            config: RwLock::new(config),
            keyspace: Keyspace::new(dbs),
            blocking: blocking::Blocking::default(),
            pubsub: crate::pubsub::PubSub::default(),
            pause: pause::Pause::default(),
            scripting: crate::scripting::Scripting::default(),
            clients: Mutex::new(HashMap::new()),
            obuf_limits: Default::default(),
            clients_mem: Default::default(),
            maxmemory_clients: Default::default(),
            next_client_id: AtomicU64::new(1),
            stats: Stats::default(),
            error_stats: Mutex::new(HashMap::new()),
            started: Instant::now(),
            run_id,
            port: AtomicU64::new(0),
            active_expire: AtomicBool::new(true),
            cron_paused: AtomicBool::new(false),
            maxmemory: Default::default(),
            eviction: Default::default(),
            out_of_memory: AtomicBool::new(false),
            min_replicas_to_write: Default::default(),
            shutdown: tokio::sync::Notify::new(),
            shutting_down: AtomicBool::new(false),
            saving: saving::SaveState::default(),
            replica: Default::default(),
            acks: Default::default(),
            aof: aof::AofState::default(),
            me: me.clone(),
        })
    }

    /// Before a command: evict keys while used memory is over `maxmemory` (Redis's
    /// performEvictions), and note whether the server is out of memory for the dispatcher's
    /// `denyoom` check. Skipped while a script holds the keyspace (its locks would be waited for).
    pub fn evict_before_command(&self) {
        let max = self.maxmemory.load(Ordering::Relaxed);
        if max == 0 || self.scripting.busy.running_for().is_some() {
            return;
        }
        let (policy, samples) = *self.eviction.read();
        let result = crate::keyspace::evict::perform_evictions(
            &self.keyspace,
            max,
            policy,
            samples,
            crate::metrics::memory::used,
        );
        self.out_of_memory.store(result == crate::keyspace::evict::Evict::Fail, Ordering::Relaxed);
    }

    /// Re-read the settings that live outside the configuration (after start-up or CONFIG SET).
    pub fn apply_config(&self) {
        let cfg = self.config.read();
        // A numeric parameter (the configuration holds validated values; `default` is a fallback).
        fn num<T: std::str::FromStr>(cfg: &crate::config::Config, name: &str, default: T) -> T {
            cfg.get(name).and_then(|v| v.parse().ok()).unwrap_or(default)
        }
        let limits = crate::metrics::obuf::Limits::parse(cfg.get("client-output-buffer-limit").unwrap_or(""));
        *self.pubsub.limits.write() = limits.pubsub;
        *self.obuf_limits.write() = limits;
        let events = crate::keyspace::notify::parse_flags(cfg.get("notify-keyspace-events").unwrap_or("")).unwrap_or(0);
        self.keyspace.notifier.set_flags(events);
        let maxmemory = num(&cfg, "maxmemory", 0);
        self.maxmemory.store(maxmemory, Ordering::Relaxed);
        let policy = crate::keyspace::evict::Policy::parse(cfg.get("maxmemory-policy").unwrap_or(""));
        *self.eviction.write() = (policy, num(&cfg, "maxmemory-samples", 5));
        if maxmemory == 0 {
            self.out_of_memory.store(false, Ordering::Relaxed);
        }
        self.min_replicas_to_write.store(num(&cfg, "min-replicas-to-write", 0), Ordering::Relaxed);
        let clients_limit = client_eviction::limit_of(cfg.get("maxmemory-clients").unwrap_or("0"), maxmemory);
        self.maxmemory_clients.store(clients_limit, Ordering::Relaxed);
        let stop_writes =
            cfg.get("stop-writes-on-bgsave-error") == Some("yes") && !saving::save_points(&cfg).is_empty();
        self.saving.stop_writes_on_error.store(stop_writes, Ordering::Relaxed);
        self.keyspace.tracking.max_keys.store(num(&cfg, "tracking-table-max-keys", 0), Ordering::Relaxed);
        let (log_factor, decay_time) = (num(&cfg, "lfu-log-factor", 0), num(&cfg, "lfu-decay-time", 0));
        self.keyspace.lfu.configure(&cfg.settings.maxmemory_policy, log_factor, decay_time);
        drop(cfg);
        aof::apply_config(self);
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

    pub fn next_client_id(&self) -> u64 {
        self.next_client_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Ask the server to stop (SHUTDOWN, signals).
    pub fn request_shutdown(&self) {
        self.shutting_down.store(true, Ordering::SeqCst);
        self.shutdown.notify_waiters();
        self.shutdown.notify_one();
    }

    pub fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::SeqCst)
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
    loop {
        let hz = server.config.read().settings.hz.max(1);
        tokio::time::sleep(Duration::from_millis(1000 / hz)).await;
        if server.is_shutting_down() {
            return;
        }
        if server.cron_paused.load(Ordering::Relaxed) {
            continue;
        }
        let s = server.clone();
        // The cron locks shards one at a time; run it off the async workers.
        let _ = tokio::task::spawn_blocking(move || {
            if s.active_expire.load(Ordering::Relaxed) {
                // Like Redis: at most 25% of the cron period goes to active expiry.
                active_expire_cycle(&s.keyspace, Duration::from_millis(250 / hz));
            }
            let tracking = &s.keyspace.tracking;
            if tracking.any() {
                // Invalidations caused by active expiry, and the tracking table's limit.
                tracking.flush_bcast();
                tracking.enforce_limit();
            }
            if s.config.read().get("activerehashing") == Some("yes") {
                s.keyspace.rehash_step(Duration::from_millis(1));
            }
            saving::cron(&s);
            aof::cron(&s);
        })
        .await;
    }
}

/// Bind the listeners, then serve until shutdown. Returns the process exit code.
pub async fn run(server: Arc<Server>, ready: Option<tokio::sync::oneshot::Sender<u16>>) -> i32 {
    let (binds, port) = {
        let c = server.config.read();
        (c.settings.bind.clone(), c.settings.port)
    };
    // Before loading: loaded entries take the LRU or LFU metadata the policy calls for.
    server.apply_config();
    let loaded = match aof_load::load_at_startup(&server) {
        Ok(true) => Ok(()),
        Ok(false) => saving::load_at_startup(&server),
        Err(e) => Err(e),
    };
    if let Err(e) = loaded {
        log::warning(&format!("Fatal error loading the DB: {e}. Exiting."));
        return 1;
    }
    let mut listeners = Vec::new();
    for addr in &binds {
        let addr = addr.trim_start_matches('-');
        let target = if addr == "*" { "0.0.0.0".to_string() } else { addr.to_string() };
        let target = if target.contains(':') { format!("[{target}]:{port}") } else { format!("{target}:{port}") };
        match tokio::net::TcpListener::bind(&target).await {
            Ok(l) => listeners.push(l),
            Err(e) => {
                log::warning(&format!("Warning: Could not create server TCP listening socket {target}: {e}"));
                return 1;
            }
        }
    }
    Server::install_notifications(&server);
    let bound = listeners.first().and_then(|l| l.local_addr().ok()).map(|a| a.port()).unwrap_or(port);
    server.port.store(bound as u64, Ordering::Relaxed);
    log::notice(&format!("Ferrous {} started, pid={}, port={}", crate::VERSION, std::process::id(), bound));
    write_pidfile(&server);
    log::notice("Ready to accept connections tcp");
    if let Some(tx) = ready {
        let _ = tx.send(bound);
    }
    tokio::spawn(cron(server.clone()));
    let workers = Arc::new(Workers::start(&server));
    for l in listeners {
        let workers = workers.clone();
        tokio::spawn(async move {
            loop {
                match l.accept().await {
                    Ok((sock, peer)) => workers.hand_over(sock, peer),
                    Err(e) => {
                        log::warning(&format!("Accepting client connection: {e}"));
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                }
            }
        });
    }
    let s = server.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        log::warning("Received SIGTERM scheduling shutdown...");
        // Like Redis: with save points configured, save before exiting.
        if !saving::save_points(&s.config.read()).is_empty() {
            let s2 = s.clone();
            let saved = tokio::task::spawn_blocking(move || saving::save_locking(&s2)).await;
            if !matches!(saved, Ok(Ok(()))) {
                log::warning("Error trying to save the DB, can't exit.");
                return;
            }
        }
        s.request_shutdown();
    });
    while !server.is_shutting_down() {
        server.shutdown.notified().await;
    }
    log::warning("User requested shutdown...");
    if server.aof.on.load(Ordering::Acquire) {
        log::notice("Calling fsync() on the AOF file.");
        let s = server.clone();
        let _ = tokio::task::spawn_blocking(move || aof::stop(&s)).await;
    }
    remove_pidfile(&server);
    log::warning("Ferrous is now ready to exit, bye bye...");
    0
}

/// The command-executing threads. Each runs its own single-threaded tokio runtime and serves
/// the connections handed to it for their whole life (thread-per-core): no work stealing and no
/// cross-thread wake-ups on the hot path, while different connections still run on different
/// cores at the same time. The shard locks make their keyspace accesses safe.
struct Workers {
    senders: Vec<tokio::sync::mpsc::UnboundedSender<(std::net::TcpStream, std::net::SocketAddr)>>,
    next: std::sync::atomic::AtomicUsize,
}

impl Workers {
    fn start(server: &Arc<Server>) -> Workers {
        let configured: usize = server.config.read().get("worker-threads").and_then(|v| v.parse().ok()).unwrap_or(0);
        // By default one core is left to the kernel's network processing and to background work
        // (cron, lazy freeing); on a 2-core machine that means one worker.
        let n = if configured > 0 {
            configured
        } else {
            std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2).saturating_sub(1).max(1)
        };
        let senders = (0..n)
            .map(|i| {
                let (tx, mut rx) =
                    tokio::sync::mpsc::unbounded_channel::<(std::net::TcpStream, std::net::SocketAddr)>();
                let server = server.clone();
                let spawned = std::thread::Builder::new().name(format!("ferrous-worker-{i}")).spawn(move || {
                    // Deep Lua results and libraries recurse (scripts inside EXEC run on this stack).
                    let rt = match tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .thread_stack_size(64 << 20)
                        .build()
                    {
                        Ok(rt) => rt,
                        Err(e) => {
                            log::warning(&format!("Failed to start worker {i}: {e}"));
                            return;
                        }
                    };
                    let local = tokio::task::LocalSet::new();
                    local.block_on(&rt, async move {
                        while let Some((sock, peer)) = rx.recv().await {
                            match tokio::net::TcpStream::from_std(sock) {
                                Ok(sock) => {
                                    tokio::task::spawn_local(connection::serve(server.clone(), sock, peer));
                                }
                                Err(e) => log::warning(&format!("Registering client connection: {e}")),
                            }
                        }
                    });
                });
                if let Err(e) = spawned {
                    log::warning(&format!("Failed to start worker thread {i}: {e}"));
                }
                tx
            })
            .collect();
        Workers { senders, next: std::sync::atomic::AtomicUsize::new(0) }
    }

    /// Give a new connection to the next worker (round robin).
    fn hand_over(&self, sock: tokio::net::TcpStream, peer: std::net::SocketAddr) {
        let Ok(std_sock) = sock.into_std() else {
            return;
        };
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.senders.len();
        let _ = self.senders[i].send((std_sock, peer));
    }
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = match signal(SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => return std::future::pending().await,
        };
        let mut int = match signal(SignalKind::interrupt()) {
            Ok(s) => s,
            Err(_) => return std::future::pending().await,
        };
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

fn write_pidfile(server: &Server) {
    let path = server.config.read().settings.pidfile.clone();
    if !path.is_empty() {
        if let Err(e) = std::fs::write(&path, format!("{}\n", std::process::id())) {
            log::warning(&format!("Failed to write PID file {path}: {e}"));
        }
    }
}

fn remove_pidfile(server: &Server) {
    let path = server.config.read().settings.pidfile.clone();
    if !path.is_empty() {
        let _ = std::fs::remove_file(&path);
    }
}

/// Whether a protected command (DEBUG) may run for this client, per `enable-debug-command`.
pub fn client_protected_mode(client: &client::Client) -> bool {
    // The setting is immutable, so it is read from the process-wide copy made at start-up.
    match PROTECTED_DEBUG.get().map(String::as_str) {
        Some("yes") => true,
        Some("local") => {
            let a = &client.handle.addr;
            a.starts_with("127.") || a.starts_with("[::1]") || a.starts_with("/")
        }
        _ => false,
    }
}

/// `enable-debug-command`, fixed at start-up.
pub static PROTECTED_DEBUG: std::sync::OnceLock<String> = std::sync::OnceLock::new();
