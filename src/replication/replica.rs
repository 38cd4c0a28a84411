//! Replication, replica side (REPLICAOF host port): a task connects to the master and performs
//! Redis's handshake (PING, AUTH, REPLCONF listening-port / ip-address / capa eof psync2), then
//! `PSYNC <replid> <offset+1>` when it holds a history to continue (its master's, cached when
//! the link dropped; its own when a master becomes a replica; the one an RDB file carried at
//! start-up) or `PSYNC ? -1`.
//!
//! +CONTINUE resumes the stream where it stopped (adopting the master's new replication ID if
//! it changed, the old one becoming our second ID). +FULLRESYNC transfers a snapshot —
//! `$<len>` or the diskless `$EOF:<mark>` form — written to disk and loaded
//! (`repl-diskless-load disabled`), or loaded from memory (`swapdb`: the old data stays
//! served until the new is complete; `on-empty-db`: only when empty).
//!
//! The stream is applied through the pipeline as the master client (registered as a client
//! with the `M` flag: CLIENT KILL TYPE MASTER drops the link), and every byte applied is
//! proxied into our own replication buffer, so our replicas get the master's stream as is.
//! The offset is acknowledged every second and on REPLCONF GETACK (with the AOF's fsynced
//! offset, Redis 7.2's FACK, while the AOF is on). A lost link reconnects at once, then every
//! second; REPLICAOF NO ONE ends the task and keeps the data and the history.

use crate::server::listen::Stream;
use bytes::{Buf, Bytes, BytesMut};
use parking_lot::Mutex;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::now_s;
use crate::persistence::rdb_load;
use crate::persistence::rdb_window::Window;
use crate::protocol::parser::{parse_request_framed, Framing};
use crate::protocol::{ParseLimits, Proto, ReplySink};
use crate::server::{log, staged_load, Server};
use crate::session::client::{ClientHandle, REPL_MASTER};
use crate::session::Client;

/// The link's state (Redis's REPL_STATE_*), for ROLE and INFO.
pub const NONE: u8 = 0;
pub const CONNECT: u8 = 1;
pub const CONNECTING: u8 = 2;
pub const HANDSHAKE: u8 = 3;
pub const TRANSFER: u8 = 4;
pub const CONNECTED: u8 = 5;

/// The replica state: who the master is and how the link is doing.
#[derive(Default)]
pub struct ReplicaState {
    /// (host, port) of the master; None when this server is a master (see [`Self::set_master`]).
    pub master: Mutex<Option<(String, u16)>>,
    /// `master` is set (read by every command: no lock).
    replica: AtomicBool,
    /// Bumped by every REPLICAOF: a link task whose generation is stale stops.
    generation: AtomicU64,
    /// The link is up (the snapshot was loaded and the stream is being applied).
    pub link_up: AtomicBool,
    pub state: AtomicU8,
    /// A history to continue with PSYNC (Redis's cached master): our replid / offset.
    history: AtomicBool,
    /// The database the master's stream has selected.
    stream_db: AtomicUsize,
    /// Bytes read from the master but not applied yet.
    pub unapplied: AtomicI64,
    /// Unix seconds of the last byte received from the master.
    pub last_io: AtomicI64,
    /// Unix seconds since the link is down (0: never up).
    pub down_since: AtomicI64,
    /// A transfer: total (-1: unknown, EOF-marked), read so far, unix seconds of the last read.
    pub transfer_size: AtomicI64,
    pub transfer_read: AtomicI64,
    pub transfer_last_io: AtomicI64,
    /// Loading a snapshot while the old data is still served (swapdb with the same history).
    pub async_loading: AtomicBool,
    /// REPLCONF GETACK from the master: acknowledge now.
    pub ack_now: tokio::sync::Notify,
    /// The link task applies each command of the stream (and proxies its bytes) under a read
    /// lock, checking its generation; REPLICAOF takes the write lock to change it, so no
    /// command of an old link is applied once the role or the master changed.
    gate: parking_lot::RwLock<()>,
    /// Woken when the generation changes (a link of an older one closes at once).
    changed: tokio::sync::Notify,
}

impl ReplicaState {
    pub fn is_replica(&self) -> bool {
        self.replica.load(Ordering::SeqCst)
    }

    /// Set (or clear) the master.
    pub fn set_master(&self, master: Option<(String, u16)>) {
        let mut m = self.master.lock();
        self.replica.store(master.is_some(), Ordering::SeqCst);
        *m = master;
    }

    pub fn state(&self) -> u8 {
        self.state.load(Ordering::SeqCst)
    }

    /// Whether we hold a history PSYNC can continue (the RDB aux fields need it too).
    pub fn has_history(&self) -> bool {
        self.history.load(Ordering::SeqCst)
    }

    pub fn stream_db(&self) -> i64 {
        self.stream_db.load(Ordering::SeqCst) as i64
    }

    /// Keep a history loaded from an RDB file (start-up).
    pub fn cache_history(&self, db: usize) {
        self.history.store(true, Ordering::SeqCst);
        self.stream_db.store(db, Ordering::SeqCst);
    }

    fn discard_history(&self) {
        if self.history.swap(false, Ordering::SeqCst) {
            log::notice("Discarding previously cached master state.");
        }
    }
}

/// REPLICAOF host port: become a replica of `host:port` (returns false when already replicating
/// exactly that master). Redis's replicationSetMaster: a master keeps its own history to try a
/// PSYNC with the new master; replicas of ours stay attached (they may continue with us).
pub fn start(server: &Arc<Server>, host: String, port: u16) -> bool {
    let st = &server.replica;
    let _gate = st.gate.write();
    let was_master = {
        let mut m = st.master.lock();
        if m.as_ref().is_some_and(|(h, p)| h.eq_ignore_ascii_case(&host) && *p == port) {
            return false;
        }
        let was = m.is_none();
        *m = Some((host.clone(), port));
        st.replica.store(true, Ordering::SeqCst);
        was
    };
    let generation = st.generation.fetch_add(1, Ordering::SeqCst) + 1;
    st.changed.notify_waiters();
    server.config.update(|c| c.replicaof = Some((host.clone(), port)));
    log::set_role(true);
    let _ = crate::server::process::set_oom_score_adj(&server.config.load(), true);
    disconnect_blocked_clients(server);
    server.repl.set_proxying(&server.keyspace.effects, true);
    if was_master {
        st.discard_history();
        log::notice("Before turning into a replica, using my own master parameters to synthesize a cached master: I may be able to synchronize with the new master with just a partial transfer.");
        st.history.store(true, Ordering::SeqCst);
        st.stream_db.store(0, Ordering::SeqCst);
        super::fullsync::abort_all(server);
    }
    spawn_link(server, host, port, generation);
    true
}

/// Start replicating the master `replicaof` names in the configuration, once the data is
/// loaded (with the history the RDB file carried, if any).
pub fn start_at_boot(server: &Arc<Server>, host: String, port: u16) {
    let _gate = server.replica.gate.write();
    let generation = server.replica.generation.fetch_add(1, Ordering::SeqCst) + 1;
    server.replica.changed.notify_waiters();
    server.replica.set_master(Some((host.clone(), port)));
    server.repl.set_proxying(&server.keyspace.effects, true);
    spawn_link(server, host, port, generation);
}

fn spawn_link(server: &Arc<Server>, host: String, port: u16, generation: u64) {
    let st = &server.replica;
    st.link_up.store(false, Ordering::SeqCst);
    st.state.store(CONNECT, Ordering::SeqCst);
    log::notice(&format!("Connecting to MASTER {host}:{port}"));
    let server = server.clone();
    tokio::spawn(async move { link(server, host, port, generation).await });
}

/// Clients blocked on keys when the server becomes a replica are told so and disconnected
/// (their keys will now change under the master's stream only).
fn disconnect_blocked_clients(server: &Server) {
    let handles: Vec<Arc<ClientHandle>> = server.clients.lock().values().cloned().collect();
    for h in handles {
        server.blocking.request_unblock(&h.waiter, crate::session::blocking::Unblock::StateChanged);
    }
}

/// REPLICAOF NO ONE (Redis's replicationUnsetMaster): stop replicating; the data stays, the
/// master's history becomes our second ID (our replicas continue with us after reconnecting).
pub fn stop(server: &Server) {
    let st = &server.replica;
    let _gate = st.gate.write();
    {
        let mut m = st.master.lock();
        if m.take().is_none() {
            return;
        }
        st.replica.store(false, Ordering::SeqCst);
    }
    server.keyspace.replica_local_expires.lock().clear();
    server.config.update(|c| c.replicaof = None);
    st.generation.fetch_add(1, Ordering::SeqCst);
    st.changed.notify_waiters();
    st.link_up.store(false, Ordering::SeqCst);
    st.discard_history();
    st.state.store(NONE, Ordering::SeqCst);
    st.async_loading.store(false, Ordering::SeqCst);
    let repl = &server.repl;
    repl.shift_replid();
    repl.disconnect_replicas();
    repl.reset_seldb();
    repl.set_proxying(&server.keyspace.effects, false);
    repl.touch_no_replicas();
    st.down_since.store(0, Ordering::SeqCst);
    log::set_role(false);
    let _ = crate::server::process::set_oom_score_adj(&server.config.load(), false);
    if server.config.load().appendonly && !server.aof.on.load(Ordering::Acquire) {
        server.aof.rewrite_scheduled.store(true, Ordering::Release);
    }
}

fn current(server: &Server, generation: u64) -> bool {
    server.replica.generation.load(Ordering::SeqCst) == generation
}

/// Resolves once `generation` is no longer the current link's.
async fn superseded(server: &Server, generation: u64) {
    loop {
        let changed = server.replica.changed.notified();
        tokio::pin!(changed);
        changed.as_mut().enable();
        if !current(server, generation) {
            return;
        }
        changed.await;
    }
}

/// Once a second: nothing to do here (acknowledgements and timeouts live in the link task).
pub fn cron(_server: &Server) {}

async fn link(server: Arc<Server>, host: String, port: u16, generation: u64) {
    let st = &server.replica;
    let mut was_up = false;
    while current(&server, generation) {
        // REPLICAOF closes the link at once, whatever it is doing.
        let result = tokio::select! {
            r = sync_and_stream(&server, &host, port, generation, &mut was_up) => r,
            _ = superseded(&server, generation) => return,
        };
        if !current(&server, generation) {
            return;
        }
        st.link_up.store(false, Ordering::SeqCst);
        st.async_loading.store(false, Ordering::SeqCst);
        st.state.store(CONNECT, Ordering::SeqCst);
        if let Err(e) = &result {
            log::warning(&e.to_string());
        }
        // After a working link dropped, reconnect at once (the backlog may be recycled
        // meanwhile); after a failed attempt, once a second.
        if was_up {
            was_up = false;
            log::notice(&format!("Reconnecting to MASTER {host}:{port}"));
        } else {
            crate::util::timer::sleep(Duration::from_secs(1)).await;
            if current(&server, generation) {
                log::notice(&format!("Connecting to MASTER {host}:{port}"));
            }
        }
    }
}

/// The socket to the master and what was read from it.
struct Conn {
    sock: Stream,
    buf: BytesMut,
}

impl Conn {
    fn timeout(server: &Server) -> Duration {
        Duration::from_secs(server.config.load().repl_timeout.max(1) as u64)
    }

    /// Read more, failing with `what` once the master has been silent for `repl-timeout` —
    /// the setting as it is now, looked at every second (as Redis's replication cron does), so
    /// a lowered timeout applies to a read already waiting.
    async fn fill(&mut self, server: &Server, what: &str) -> Result<(), String> {
        self.buf.reserve(64 * 1024);
        let since = std::time::Instant::now();
        let n = loop {
            let left = Self::timeout(server).saturating_sub(since.elapsed());
            if left.is_zero() {
                return Err(what.to_string());
            }
            // Reading is cancel-safe: a slice that ends unread loses nothing.
            let slice = left.min(Duration::from_secs(1));
            if let Ok(r) = crate::util::timer::timeout(slice, self.sock.read_buf(&mut self.buf)).await {
                break r.map_err(|e| e.to_string())?;
            }
        };
        if n == 0 {
            return Err("connection lost".into());
        }
        server.repl.stats.net_repl_input_bytes.fetch_add(n as u64, Ordering::Relaxed);
        server.replica.last_io.store(now_s(), Ordering::Relaxed);
        server.replica.transfer_last_io.store(now_s(), Ordering::Relaxed);
        Ok(())
    }

    /// One reply line (without CRLF); an empty line is a keep-alive newline.
    async fn line(&mut self, server: &Server, what: &str) -> Result<String, String> {
        loop {
            if let Some(pos) = memchr::memchr(b'\n', &self.buf) {
                let end = if pos > 0 && self.buf[pos - 1] == b'\r' { pos - 1 } else { pos };
                let line = String::from_utf8_lossy(&self.buf[..end]).to_string();
                self.buf.advance(pos + 1);
                return Ok(line);
            }
            self.fill(server, what).await?;
        }
    }

    /// A reply line, skipping keep-alive newlines.
    async fn reply(&mut self, server: &Server, what: &str) -> Result<String, String> {
        loop {
            let l = self.line(server, what).await?;
            if !l.is_empty() {
                return Ok(l);
            }
        }
    }

    async fn send(&mut self, argv: &[&str]) -> Result<(), String> {
        let out = super::encode(argv);
        self.sock.write_all(&out).await.map_err(|e| e.to_string())
    }
}

const HANDSHAKE_TIMEOUT: &str = "Timeout connecting to the MASTER...";

async fn sync_and_stream(
    server: &Arc<Server>,
    host: &str,
    port: u16,
    generation: u64,
    was_up: &mut bool,
) -> Result<(), String> {
    let st = &server.replica;
    st.state.store(CONNECTING, Ordering::SeqCst);
    log::notice("MASTER <-> REPLICA sync started");
    let sock = crate::util::timer::timeout(
        Conn::timeout(server),
        crate::util::net::connect_from(host, port, &server.config.load().bind_source_addr),
    )
    .await
    .map_err(|_| HANDSHAKE_TIMEOUT.to_string())?
    .map_err(|e| format!("Unable to connect to MASTER: {e}"))?;
    let _ = sock.set_nodelay(!server.config.load().repl_disable_tcp_nodelay);
    // tls-replication: the link is TLS.
    let sock = crate::server::tls::secure_master_link(server, host, sock).await?;
    let mut c = Conn { sock, buf: BytesMut::new() };
    log::notice("Non blocking connect for SYNC fired the event.");
    st.state.store(HANDSHAKE, Ordering::SeqCst);
    c.send(&["PING"]).await?;
    let pong = c.reply(server, HANDSHAKE_TIMEOUT).await?;
    if !pong.starts_with('+')
        && !pong.starts_with("-NOAUTH")
        && !pong.starts_with("-NOPERM")
        && !pong.starts_with("-ERR operation not permitted")
    {
        return Err(format!("Error reply to PING from master: '{pong}'"));
    }
    log::notice("Master replied to PING, replication can continue...");
    let cfg = server.config.snapshot();
    if !cfg.masterauth.is_empty() {
        if cfg.masteruser.is_empty() {
            c.send(&["AUTH", &cfg.masterauth]).await?;
        } else {
            c.send(&["AUTH", &cfg.masteruser, &cfg.masterauth]).await?;
        }
        let r = c.reply(server, HANDSHAKE_TIMEOUT).await?;
        if r.starts_with('-') {
            return Err(format!("Unable to AUTH to MASTER: {r}"));
        }
    }
    // The port the master (and FAILOVER, INFO's slaveN) knows us by: the TLS port when
    // replication runs over TLS, as Redis's syncWithMaster.
    let my_port = if cfg.replica_announce_port != 0 {
        cfg.replica_announce_port as u64
    } else if cfg.tls_replication && cfg.tls_port != 0 {
        cfg.tls_port as u64
    } else {
        server.port.load(Ordering::Relaxed)
    };
    c.send(&["REPLCONF", "listening-port", &my_port.to_string()]).await?;
    let r = c.reply(server, HANDSHAKE_TIMEOUT).await?;
    if r.starts_with('-') {
        log::notice(&format!("(Non critical) Master does not understand REPLCONF listening-port: {r}"));
    }
    if !cfg.replica_announce_ip.is_empty() {
        c.send(&["REPLCONF", "ip-address", &cfg.replica_announce_ip]).await?;
        let r = c.reply(server, HANDSHAKE_TIMEOUT).await?;
        if r.starts_with('-') {
            log::notice(&format!("(Non critical) Master does not understand REPLCONF ip-address: {r}"));
        }
    }
    c.send(&["REPLCONF", "capa", "eof", "capa", "psync2"]).await?;
    let r = c.reply(server, HANDSHAKE_TIMEOUT).await?;
    if r.starts_with('-') {
        log::notice(&format!("(Non critical) Master does not understand REPLCONF capa: {r}"));
    }
    drop(cfg);
    let repl = &server.repl;
    // PSYNC: continue our history, or ask for a full synchronisation.
    let (psync_id, psync_off) = if st.has_history() {
        let id = repl.replid();
        let off = (repl.offset() + 1).to_string();
        log::notice(&format!("Trying a partial resynchronization (request {id}:{off})."));
        (id, off)
    } else {
        log::notice("Partial resynchronization not possible (no cached master)");
        ("?".to_string(), "-1".to_string())
    };
    if repl.failover.in_progress() {
        c.send(&["PSYNC", &psync_id, &psync_off, "FAILOVER"]).await?;
    } else {
        c.send(&["PSYNC", &psync_id, &psync_off]).await?;
    }
    let reply = match c.reply(server, HANDSHAKE_TIMEOUT).await {
        Ok(r) => r,
        Err(e) => {
            super::failover::psync_result(server, false);
            return Err(e);
        }
    };
    if !current(server, generation) {
        return Ok(());
    }
    let full = if let Some(rest) = reply.strip_prefix("+FULLRESYNC") {
        let mut it = rest.split_whitespace();
        match (it.next(), it.next().and_then(|o| o.parse::<i64>().ok())) {
            (Some(id), Some(off)) if id.len() == 40 => {
                log::notice(&format!("Full resync from master: {id}:{off}"));
                Some((id.to_string(), off))
            }
            _ => {
                log::warning("Master replied with wrong +FULLRESYNC syntax.");
                Some((String::new(), -1))
            }
        }
    } else if let Some(rest) = reply.strip_prefix("+CONTINUE") {
        log::notice("Successful partial resynchronization with master.");
        let new = rest.trim();
        let old = repl.replid();
        if new.len() == 40 && new != old {
            log::notice(&format!("Master replication ID changed to {new}"));
            repl.set_replid2(&old, repl.offset() + 1);
            repl.set_ids(new, None);
            repl.disconnect_replicas();
        }
        if !repl.backlog_active() {
            repl.create_backlog(&server.keyspace.effects, server.config.load().repl_backlog_size);
        }
        super::failover::psync_result(server, true);
        log::notice("MASTER <-> REPLICA sync: Master accepted a Partial Resynchronization.");
        crate::server::process::notify_systemd(
            "STATUS=MASTER <-> REPLICA sync: Partial Resynchronization accepted. Ready to accept connections in read-write mode.\n",
        );
        None
    } else if reply.starts_with("-NOMASTERLINK") || reply.starts_with("-LOADING") {
        log::notice(&format!("Master is currently unable to PSYNC but should be in the future: {reply}"));
        super::failover::psync_result(server, false);
        return Err("PSYNC not possible now".into());
    } else {
        if reply.starts_with("-ERR") {
            log::notice(&format!("Master does not support PSYNC or is in error state (reply: {reply})"));
        } else {
            log::warning(&format!("Unexpected reply to PSYNC from master: {reply}"));
        }
        if repl.failover.in_progress() {
            super::failover::psync_result(server, false);
            return Err("failover target rejected psync".into());
        }
        log::notice("Retrying with SYNC...");
        c.sock.write_all(b"SYNC\r\n").await.map_err(|e| format!("I/O error writing to MASTER: {e}"))?;
        Some((String::new(), -1))
    };
    if let Some((master_replid, initial_offset)) = full {
        super::failover::psync_result(server, true);
        transfer(server, &mut c, &master_replid, initial_offset, generation).await?;
        if !current(server, generation) {
            return Ok(());
        }
    }
    *was_up = true;
    stream(server, c, host, port, generation).await
}

/// Whether this transfer loads from memory (Redis's useDisklessLoad).
fn diskless_load(server: &Server) -> bool {
    match server.config.load().repl_diskless_load {
        2 => true,
        1 => dataset_empty(server),
        _ => false,
    }
}

/// Whether no database holds a key.
fn dataset_empty(server: &Server) -> bool {
    let mut db = server.keyspace.lock_all(0);
    (0..server.keyspace.databases()).all(|i| {
        db.index = i;
        db.is_empty()
    })
}

/// Empty every database (freeing the old data on another thread with replica-lazy-flush).
fn flush_all(server: &Server) {
    let old = server.keyspace.lock_all(0).flush(true);
    drop_old(server, old);
}

/// Free a flushed dataset: in the background when replica-lazy-flush says so.
fn drop_old(server: &Server, old: Vec<crate::keyspace::ShardDb>) {
    if server.config.load().replica_lazy_flush {
        std::thread::spawn(move || drop(old));
    } else {
        drop(old);
    }
}

/// The snapshot of a full synchronisation: read it, then load it.
async fn transfer(
    server: &Arc<Server>,
    c: &mut Conn,
    master_replid: &str,
    initial_offset: i64,
    generation: u64,
) -> Result<(), String> {
    let st = &server.replica;
    st.state.store(TRANSFER, Ordering::SeqCst);
    st.transfer_size.store(-1, Ordering::SeqCst);
    st.transfer_read.store(0, Ordering::SeqCst);
    st.transfer_last_io.store(now_s(), Ordering::SeqCst);
    const BULK_TIMEOUT: &str = "Timeout receiving bulk data from MASTER... If the problem persists try to set the 'repl-timeout' parameter in redis.conf to a larger value.";
    let header = loop {
        let l = c.line(server, BULK_TIMEOUT).await?;
        if !l.is_empty() {
            break l;
        }
    };
    if let Some(e) = header.strip_prefix('-') {
        return Err(format!("MASTER aborted replication with an error: {e}"));
    }
    if !header.starts_with('$') {
        return Err(format!(
            "Bad protocol from MASTER, the first byte is not '$' (we received '{header}'), are you sure the host and port are right?"
        ));
    }
    let diskless = diskless_load(server);
    let target = if diskless { "to parser" } else { "to disk" };
    let mark = header.strip_prefix("$EOF:").filter(|m| m.len() >= 40).map(|m| m.as_bytes()[..40].to_vec());
    let size = match &mark {
        Some(_) => {
            log::notice(&format!("MASTER <-> REPLICA sync: receiving streamed RDB from master with EOF {target}"));
            None
        }
        None => {
            let n: usize = header[1..].trim().parse().map_err(|_| format!("bad bulk length from MASTER: {header}"))?;
            log::notice(&format!("MASTER <-> REPLICA sync: receiving {n} bytes from master {target}"));
            st.transfer_size.store(n as i64, Ordering::SeqCst);
            Some(n)
        }
    };
    let swapdb = diskless && server.config.load().repl_diskless_load == 2;
    if diskless {
        // Loading starts now (Redis parses straight from the socket).
        if swapdb && server.repl.replid() == master_replid {
            st.async_loading.store(true, Ordering::SeqCst);
        } else {
            server.stats.loading.store(true, Ordering::SeqCst);
        }
        log::notice("MASTER <-> REPLICA sync: Loading DB in memory");
    }
    // For the watchdog the load is one blocking section, as Redis's loop is stuck in it: from
    // the first byte when parsing from the socket, else from reading the file.
    const LOADING: &str = "loading the master's snapshot";
    let section = diskless.then(|| crate::server::watchdog::busy_unbound(LOADING));
    let result = receive(server, c, mark.as_deref(), size, BULK_TIMEOUT, !diskless).await;
    let finish_loading = || {
        server.stats.loading.store(false, Ordering::SeqCst);
        st.async_loading.store(false, Ordering::SeqCst);
    };
    let rdb = match result {
        Ok(r) => r,
        Err(e) => {
            finish_loading();
            if diskless {
                // What Redis's loader reports when the socket ends mid-file.
                log::warning(
                    "Internal error in RDB reading offset 0, function at rdb.c:0 -> Unexpected EOF reading RDB file",
                );
                log::warning(&format!("Failed trying to load the MASTER synchronization DB from socket: {e}"));
            }
            return Err(format!("I/O error trying to sync with MASTER: {e}"));
        }
    };
    if !current(server, generation) {
        finish_loading();
        return Ok(());
    }
    let s = server.clone();
    let replid = master_replid.to_string();
    let section = section.unwrap_or_else(|| crate::server::watchdog::busy_unbound(LOADING));
    let on_thread = section.handle();
    let loaded = tokio::task::spawn_blocking(move || {
        let _bound = on_thread.bind_here();
        load(&s, rdb, diskless, swapdb, &replid, initial_offset, generation)
    })
    .await
    .unwrap_or_else(|e| Err(format!("loading panicked: {e}")));
    drop(section);
    finish_loading();
    loaded
}

/// Read the snapshot: `size` bytes, or up to the EOF `mark`. On disk (`to_disk`) it goes to a
/// temporary file first; either way its bytes are returned for loading.
async fn receive(
    server: &Server,
    c: &mut Conn,
    mark: Option<&[u8]>,
    size: Option<usize>,
    timeout_text: &str,
    to_disk: bool,
) -> Result<Vec<u8>, String> {
    let st = &server.replica;
    let mut data: Vec<u8> = Vec::with_capacity(size.unwrap_or(1 << 20).min(1 << 30));
    loop {
        if !c.buf.is_empty() {
            let want = match size {
                Some(n) => (n - data.len()).min(c.buf.len()),
                None => c.buf.len(),
            };
            data.extend_from_slice(&c.buf[..want]);
            c.buf.advance(want);
            st.transfer_read.store(data.len() as i64, Ordering::Relaxed);
        }
        match (size, mark) {
            (Some(n), _) if data.len() >= n => break,
            (None, Some(m)) if data.len() >= 40 && &data[data.len() - 40..] == m => {
                data.truncate(data.len() - 40);
                break;
            }
            _ => {}
        }
        c.fill(server, timeout_text).await?;
    }
    if to_disk {
        let cfg = server.config.load();
        let dir = std::path::Path::new(&cfg.dir).to_path_buf();
        let temp = dir.join(format!("temp-{}.{}.rdb", now_s(), std::process::id()));
        let path = crate::server::saving::rdb_path(&cfg);
        drop(cfg);
        let bytes = data.clone();
        let written = tokio::task::spawn_blocking(move || -> std::io::Result<()> {
            use std::io::Write;
            let mut f = std::fs::File::create(&temp)?;
            f.write_all(&bytes)?;
            f.sync_all()?;
            std::fs::rename(&temp, &path).inspect_err(|_| {
                let _ = std::fs::remove_file(&temp);
            })
        })
        .await
        .map_err(|e| e.to_string())?;
        written.map_err(|e| {
            format!("Failed trying to rename the temp DB into dump.rdb in MASTER <-> REPLICA synchronization: {e}")
        })?;
    }
    Ok(data)
}

/// Load a received snapshot (on a blocking thread): load it apart, then replace the dataset
/// under every shard lock. A swapdb load that fails leaves the old data in place.
fn load(
    server: &Arc<Server>,
    rdb: Vec<u8>,
    diskless: bool,
    swapdb: bool,
    master_replid: &str,
    initial_offset: i64,
    generation: u64,
) -> Result<(), String> {
    let st = &server.replica;
    // REPLICAOF waits for the load to end; a load for an older link changes nothing.
    let _gate = st.gate.read();
    if !current(server, generation) {
        return Ok(());
    }
    // Redis loads on its only thread and serves clients (with -LOADING) only every
    // loading-process-events-interval-bytes of input: a smaller snapshot is loaded with every
    // shard held from the flush to the install, so clients wait instead of seeing -LOADING or
    // the emptied dataset (the cluster suite's CLUSTER NODES right after CLUSTER REPLICATE).
    let small = !diskless && rdb.len() < server.config.load().loading_process_events_interval_bytes.max(0) as usize;
    let mut held = None;
    if !swapdb {
        // Loading from here on: clients never see the emptied dataset.
        if !small {
            server.stats.loading.store(true, Ordering::SeqCst);
        }
        attach_to_new_master(server);
        log::notice("MASTER <-> REPLICA sync: Flushing old data");
        if small {
            let mut db = server.keyspace.lock_all(0);
            drop_old(server, db.flush(true));
            held = Some(db);
        } else {
            flush_all(server);
        }
        if !diskless {
            log::notice("MASTER <-> REPLICA sync: Loading DB in memory");
        }
    }
    let mut opts = crate::server::saving::load_options(server);
    // A replica keeps what its master keeps: the master's DELs expire keys here.
    opts.now_ms = i64::MIN;
    // Loaded apart into a keyspace of its own, swapped in below once the whole snapshot
    // checked out (see `staged_load`): never the snapshot's bytes and its decoded keys at once.
    let mut w = Window::new(&rdb[..]);
    let staged = staged_load::stage(server, &mut w, &opts)
        .and_then(|s| rdb_load::check_end(&mut w).map(|()| s).map_err(|e| e.to_string()));
    drop(rdb);
    let mut staged = match staged {
        Ok(s) => s,
        Err(e) => {
            log::warning(&format!("Internal error in RDB reading offset 0, function at rdb.c:0 -> {e}"));
            if swapdb {
                log::notice("MASTER <-> REPLICA sync: Discarding temporary DB in background");
            }
            return Err(format!("Failed trying to load the MASTER synchronization DB: {e}"));
        }
    };
    let loaded = &mut staged.loaded;
    let stream_db = loaded
        .aux
        .iter()
        .find(|(k, _)| k == b"repl-stream-db")
        .and_then(|(_, v)| std::str::from_utf8(v).ok()?.parse::<usize>().ok())
        .unwrap_or(0);
    if swapdb {
        attach_to_new_master(server);
        log::notice("MASTER <-> REPLICA sync: Swapping active DB with loaded DB");
    }
    let functions = std::mem::take(&mut loaded.functions);
    {
        // One lock for the swap: the old data is replaced at once.
        let mut db = held.take().unwrap_or_else(|| server.keyspace.lock_all(0));
        let old = db.flush(true);
        if server.config.load().replica_lazy_flush || swapdb {
            std::thread::spawn(move || drop(old));
        } else {
            drop(old);
        }
        server.scripting.flush_functions();
        if let Err(e) = server.scripting.load_library_sources(&functions, false) {
            log::warning(&format!("Failed loading library, {e}"));
        }
        // The old data is gone already: nothing to free.
        drop(db.adopt(staged.keyspace));
        db.touch_dirty(1);
    }
    if swapdb {
        log::notice("MASTER <-> REPLICA sync: Discarding old DB in background");
    }
    // The master's history is ours from now on.
    let repl = &server.repl;
    if !master_replid.is_empty() {
        repl.set_ids(master_replid, None);
    }
    repl.clear_replid2();
    repl.set_offset(initial_offset.max(0));
    repl.create_backlog(&server.keyspace.effects, server.config.load().repl_backlog_size);
    st.stream_db.store(stream_db, Ordering::SeqCst);
    st.history.store(initial_offset >= 0, Ordering::SeqCst);
    log::notice("MASTER <-> REPLICA sync: Finished with success");
    crate::server::process::notify_systemd(
        "STATUS=MASTER <-> REPLICA sync: Finished with success. Ready to accept connections in read-write mode.\n",
    );
    if server.config.load().appendonly {
        server.aof.rewrite_scheduled.store(true, Ordering::Release);
    }
    Ok(())
}

/// A different dataset arrives: our cached history goes, our replicas must resynchronise with
/// us, and the backlog is dropped (Redis's replicationAttachToNewMaster).
fn attach_to_new_master(server: &Server) {
    server.replica.discard_history();
    server.repl.disconnect_replicas();
    server.repl.free_backlog(&server.keyspace.effects);
}

/// Apply the master's stream until the link drops or REPLICAOF changes.
async fn stream(server: &Arc<Server>, mut c: Conn, host: &str, port: u16, generation: u64) -> Result<(), String> {
    let st = &server.replica;
    let repl = &server.repl;
    let tcp = c.sock.tcp();
    let peer = tcp.and_then(|t| t.peer_addr().ok()).map(|a| a.to_string()).unwrap_or_else(|| format!("{host}:{port}"));
    let local = tcp.and_then(|t| t.local_addr().ok()).map(|a| a.to_string()).unwrap_or_default();
    let handle = ClientHandle::new(server.next_client_id(), peer, local, -1);
    handle.repl_kind.store(REPL_MASTER, Ordering::SeqCst);
    server.clients.lock().insert(handle.id, handle.clone());
    let mut client = Client::new(handle.clone(), true);
    client.is_master = true;
    client.db = st.stream_db.load(Ordering::SeqCst);
    st.state.store(CONNECTED, Ordering::SeqCst);
    st.link_up.store(true, Ordering::SeqCst);
    st.down_since.store(0, Ordering::SeqCst);
    st.history.store(true, Ordering::SeqCst);
    st.last_io.store(now_s(), Ordering::Relaxed);
    // The master client leaves the client list however the link ends (REPLICAOF drops this
    // future).
    struct Registered<'a>(&'a Server, u64);
    impl Drop for Registered<'_> {
        fn drop(&mut self) {
            self.0.clients.lock().remove(&self.1);
            self.0.replica.unapplied.store(0, Ordering::SeqCst);
        }
    }
    let _registered = Registered(server, handle.id);
    let result = apply_loop(server, &mut c, &mut client, generation).await;
    crate::commands::pipeline::client_closed(server, &mut client);
    if current(server, generation) {
        st.link_up.store(false, Ordering::SeqCst);
        st.down_since.store(now_s(), Ordering::SeqCst);
        log::notice("Connection with master lost.");
        log::notice("Caching the disconnected master state.");
        let _ = repl;
    }
    result
}

/// Where the AOF has fsynced the stream (Redis 7.2's FACK): the offsets after each applied
/// command that wrote, with the effect sequence number it reached.
#[derive(Default)]
struct Fsynced {
    pending: VecDeque<(u64, i64)>,
    fack: i64,
}

impl Fsynced {
    fn applied(&mut self, server: &Server, seq_before: u64, offset: i64) {
        if !server.aof.on.load(Ordering::Relaxed) {
            return;
        }
        let seq = server.keyspace.effects.seq();
        if seq != seq_before {
            self.pending.push_back((seq, offset));
        } else if self.pending.is_empty() {
            self.fack = offset;
        }
    }

    fn fack(&mut self, server: &Server, offset: i64) -> Option<i64> {
        if !server.aof.on.load(Ordering::Relaxed) {
            return None;
        }
        let fsynced = server.aof.fsynced();
        while let Some(&(seq, off)) = self.pending.front() {
            if seq > fsynced {
                break;
            }
            self.fack = off;
            self.pending.pop_front();
        }
        if self.pending.is_empty() {
            self.fack = offset;
        }
        Some(self.fack)
    }
}

async fn send_ack(server: &Server, c: &mut Conn, offset: i64, fsynced: &mut Fsynced) -> Result<(), String> {
    server.repl.wait_unstalled().await;
    let off = offset.to_string();
    let out = match fsynced.fack(server, offset) {
        Some(f) => super::encode(&["REPLCONF", "ACK", &off, "FACK", &f.to_string()]),
        None => super::encode(&["REPLCONF", "ACK", &off]),
    };
    c.sock.write_all(&out).await.map_err(|e| e.to_string())
}

/// Account a read of the master's stream: Err when the connection is gone.
fn streamed(server: &Server, read: std::io::Result<usize>) -> Result<(), String> {
    match read {
        Ok(0) => Err("Connection with master lost.".into()),
        Ok(n) => {
            server.repl.stats.net_repl_input_bytes.fetch_add(n as u64, Ordering::Relaxed);
            server.replica.last_io.store(now_s(), Ordering::Relaxed);
            Ok(())
        }
        Err(e) => Err(format!("Connection with master lost: {e}")),
    }
}

async fn apply_loop(server: &Arc<Server>, c: &mut Conn, client: &mut Client, generation: u64) -> Result<(), String> {
    let st = &server.replica;
    let repl = &server.repl;
    let mut sink = ReplySink::discarding(Proto::Resp2);
    let limits = ParseLimits { max_bulk_len: i64::MAX, unauthenticated: false };
    let mut ack = crate::util::timer::interval(Duration::from_secs(1));
    let mut fsynced = Fsynced::default();
    let handle = client.handle.clone();
    // The first acknowledgement goes at once (a diskless master starts streaming on it).
    send_ack(server, c, repl.offset(), &mut fsynced).await?;
    // Each command's bytes as received, to proxy it exactly (no copy: its arguments are slices
    // of them), and a big command's own buffer (see `Framing`): its value is kept, not copied.
    let mut framing = Framing::keeping_frames();
    let mut args: Vec<Bytes> = Vec::new();
    loop {
        server.repl.wait_unstalled().await;
        // Set when the buffer received more while a command waited for CLIENT PAUSE: the batch
        // ends there and the next one starts at once.
        let mut read_while_paused = false;
        loop {
            match parse_request_framed(&mut c.buf, &limits, &mut args, &mut framing) {
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(e) => {
                    let latest = repl.latest(256);
                    log::notice(&format!("Latest backlog is: '{}'", String::from_utf8_lossy(&latest).escape_debug()));
                    return Err(format!("Protocol error from MASTER: {}", e.0));
                }
            };
            let bytes = framing.frame.take().unwrap_or_default();
            if args.is_empty() {
                // A bare newline: keep-alive, not part of the stream.
                if bytes.iter().all(|&b| b == b'\n' || b == b'\r') {
                    continue;
                }
                repl.feed_from_master(&bytes);
                continue;
            }
            let getack = args.len() >= 2 && super::is_word(&args[0], "replconf") && super::is_word(&args[1], "getack");
            if getack {
                // Acknowledge what was applied before this command (as Redis: the offset moves
                // once the command is processed).
                send_ack(server, c, repl.offset(), &mut fsynced).await?;
                let _gate = st.gate.read();
                if !current(server, generation) {
                    return Ok(());
                }
                repl.feed_from_master(&bytes);
                continue;
            }
            let seq_before = server.keyspace.effects.seq();
            loop {
                let applied = {
                    let _gate = st.gate.read();
                    if !current(server, generation) {
                        return Ok(());
                    }
                    // CLIENT PAUSE holds the master's writes too; they run once it ends.
                    client.own_frame = framing.owned;
                    let action = crate::commands::pipeline::execute_as(
                        server,
                        client,
                        crate::commands::pipeline::Caller::Master,
                        &args,
                        &mut sink,
                    );
                    client.own_frame = None;
                    let applied = !matches!(action, crate::commands::Action::Paused);
                    if applied {
                        repl.feed_from_master(&bytes);
                    }
                    applied
                };
                if applied {
                    break;
                }
                // Held by CLIENT PAUSE: the stream keeps being read meanwhile (as Redis reads a
                // paused master's query buffer), so `slave_read_repl_offset` moves on while
                // `slave_repl_offset` stays.
                st.unapplied.store((bytes.len() + c.buf.len()) as i64, Ordering::Relaxed);
                crate::server::query_buffer::make_room(&mut c.buf);
                tokio::select! {
                    _ = server.pause.released() => {}
                    r = c.sock.read_buf(&mut c.buf) => {
                        streamed(server, r)?;
                        read_while_paused = true;
                    }
                    _ = handle.killed() => return Err("Connection with master lost (killed).".into()),
                }
            }
            if sink.buf.first() == Some(&b'-') {
                let text = String::from_utf8_lossy(&sink.buf[1..]).trim_end().to_string();
                log::warning(&format!(
                    "== CRITICAL == This replica is sending an error to its master: '{text}' after processing the command '{}'",
                    client.last_cmd
                ));
            }
            sink.clear();
            sink.errors.clear();
            // The database the stream has selected (PSYNC continues there).
            st.stream_db.store(client.db, Ordering::Relaxed);
            fsynced.applied(server, seq_before, repl.offset());
            if read_while_paused {
                break;
            }
        }
        if read_while_paused {
            continue;
        }
        st.unapplied.store(c.buf.len() as i64, Ordering::Relaxed);
        client.sync_view(client.last_cmd, c.buf.len());
        handle.touch();
        if !current(server, generation) {
            return Ok(());
        }
        let timeout = Conn::timeout(server);
        // Reads of up to 64 KB; not while a big command's own buffer has room for the rest of
        // it (see `Framing`).
        crate::server::query_buffer::make_room_with(&mut c.buf, 64 * 1024, 64 * 1024);
        tokio::select! {
            r = crate::util::timer::timeout(timeout, c.sock.read_buf(&mut c.buf)) => {
                match r {
                    Err(_) => return Err("MASTER timeout: no data nor PING received...".into()),
                    Ok(r) => streamed(server, r)?,
                }
            }
            _ = ack.tick() => {
                if !current(server, generation) {
                    return Ok(());
                }
                send_ack(server, c, repl.offset(), &mut fsynced).await?;
            }
            _ = st.ack_now.notified() => {
                send_ack(server, c, repl.offset(), &mut fsynced).await?;
            }
            _ = handle.killed() => return Err("Connection with master lost (killed).".into()),
        }
    }
}
