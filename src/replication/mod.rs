//! Replication, as Redis 7 does it, master side and replica side.
//!
//! **The stream.** A master turns every write into its effect (the effect stream,
//! `keyspace::effects`), and this module is the stream's sink: each batch is encoded as RESP
//! commands (with SELECT when the database changes, as Redis's `slaveseldb`) into the
//! replication buffer ([`backlog::ReplBuffer`]) while the writer still holds its shard locks, so
//! `master_repl_offset` is exact when the write returns. The buffer is both the backlog
//! (`repl-backlog-size`, `repl-backlog-ttl`) and every replica's output: a replica sender reads
//! from its own position ([`master`]). A replica does not encode its own effects: it proxies the
//! bytes it applied from its master into its buffer, so chained replicas get the top master's
//! stream byte for byte, with its replication ID and offsets (PSYNC2).
//!
//! **IDs.** `replid` / `replid2` / `second_repl_offset` as Redis: a new history gets a new
//! ID; a replica promoted to master keeps its master's ID as `replid2` up to the offset it
//! reached, so the other replicas of the old master continue with it (+CONTINUE).
//!
//! **Full synchronisation** ([`fullsync`]) uses the fork-less point-in-time capture BGSAVE
//! uses; the replica side is [`replica`], FAILOVER is [`failover`], INFO replication and ROLE
//! are [`status`].

pub mod backlog;
pub mod failover;
pub mod fullsync;
pub mod master;
pub mod replica;
pub mod status;

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use parking_lot::Mutex;
use tokio::sync::Notify;

use crate::keyspace::effects::{EffectBatch, EffectSink, EffectStream};
use crate::keyspace::ExpireMode;
use crate::protocol::{encode_command, encode_command_apart};
use crate::server::{log, Server};
use crate::session::ClientHandle;
use backlog::{ObufLimit, Read, ReplBuffer};

/// An argument this long goes to the stream as it is, not through the encoding buffer.
const BIG_ARG: usize = 64 * 1024;

/// A replication ID that means "none" (`master_replid2` without a second history).
pub const NO_REPLID: &str = "0000000000000000000000000000000000000000";

/// 40 random hex digits.
pub fn random_replid() -> String {
    (0..40).map(|_| char::from_digit(rand::random::<u32>() % 16, 16).unwrap_or('0')).collect()
}

/// Unix seconds.
pub fn now_s() -> i64 {
    crate::keyspace::now_ms() / 1000
}

/// The replication IDs (Redis's replid, replid2, second_replid_offset).
#[derive(Clone, Debug)]
pub struct Ids {
    pub replid: String,
    pub replid2: String,
    pub second_offset: i64,
}

/// The stream state behind one lock: the offset, the selected database of the stream, the
/// buffer (None: no backlog, the offset does not move).
struct Stream {
    offset: i64,
    seldb: i64,
    buf: Option<ReplBuffer>,
    scratch: Vec<u8>,
}

/// A replica's state, as INFO names it (Redis's SLAVE_STATE_*).
pub const WAIT_BGSAVE_START: u8 = 0;
pub const WAIT_BGSAVE_END: u8 = 1;
pub const SEND_BULK: u8 = 2;
pub const ONLINE: u8 = 3;
pub const RDB_TRANSMITTED: u8 = 4;

pub fn state_name(s: u8) -> &'static str {
    match s {
        WAIT_BGSAVE_START | WAIT_BGSAVE_END => "wait_bgsave",
        SEND_BULK => "send_bulk",
        ONLINE => "online",
        RDB_TRANSMITTED => "rdb_transmitted",
        _ => "",
    }
}

/// A replica attached to this server (its connection did SYNC or PSYNC).
pub struct Link {
    pub handle: Arc<ClientHandle>,
    /// The address INFO shows: `REPLCONF ip-address`, else the peer's.
    pub ip: String,
    /// `REPLCONF listening-port`.
    pub port: i64,
    pub capa_eof: bool,
    pub capa_psync2: bool,
    /// Came with SYNC (no acknowledgements expected).
    pub pre_psync: bool,
    pub rdb_only: bool,
    /// `rdb-filter-only functions`: a file of function libraries only, no data.
    pub functions_only: bool,
    pub state: AtomicU8,
    /// REPLCONF ACK: the offset it processed, the offset its AOF fsynced (-1: never said).
    pub ack_off: AtomicI64,
    pub fack_off: AtomicI64,
    /// Unix seconds of its last acknowledgement.
    pub ack_time: AtomicI64,
    /// Its reader in the replication buffer (0: none yet).
    pub reader: AtomicU64,
    /// The offset its snapshot covers (+FULLRESYNC's).
    pub initial_offset: AtomicI64,
    /// A diskless transfer ended: the stream starts with its first ACK.
    pub start_on_ack: AtomicBool,
    /// Unix seconds of the last write to it that did not complete (diskless transfer).
    pub last_partial_write: AtomicI64,
    /// Unix seconds when it asked for synchronization (repl-diskless-sync-delay).
    pub since: i64,
    /// Woken on a state change, on a kill and when asked for an ACK.
    pub wake: Notify,
    /// The full synchronisation it takes part in.
    pub job: Mutex<Option<Arc<fullsync::Job>>>,
    /// A diskless transfer: the snapshot's bytes, as they are serialised.
    pub rdb_rx: Mutex<Option<tokio::sync::mpsc::Receiver<Bytes>>>,
    /// A disk transfer: the file, opened as soon as it was written (a later save may replace
    /// it before the link gets to send it).
    pub rdb_file: Mutex<Option<std::fs::File>>,
}

impl std::fmt::Debug for Link {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "replica {} ({})", self.name(), state_name(self.state()))
    }
}

impl Link {
    pub fn state(&self) -> u8 {
        self.state.load(Ordering::SeqCst)
    }

    pub fn set_state(&self, s: u8) {
        self.state.store(s, Ordering::SeqCst);
        self.wake.notify_one();
    }

    /// Redis's replicationGetSlaveName.
    pub fn name(&self) -> String {
        if self.port != 0 {
            format_addr(&self.ip, self.port)
        } else {
            format!("{}:<unknown-replica-port>", self.ip)
        }
    }
}

/// `ip:port`, with brackets for IPv6 (Redis's anetFormatAddr).
pub fn format_addr(ip: &str, port: i64) -> String {
    if ip.contains(':') {
        format!("[{ip}]:{port}")
    } else {
        format!("{ip}:{port}")
    }
}

/// Counters INFO stats shows.
#[derive(Default)]
pub struct ReplStats {
    pub sync_full: AtomicU64,
    pub sync_partial_ok: AtomicU64,
    pub sync_partial_err: AtomicU64,
    pub net_repl_input_bytes: AtomicU64,
    pub net_repl_output_bytes: AtomicU64,
}

/// The master side of replication, and the stream both sides keep.
pub struct Repl {
    ids: Mutex<Ids>,
    stream: Mutex<Stream>,
    /// `master_repl_offset`, readable without the lock.
    offset: AtomicI64,
    /// Woken whenever bytes are appended to the stream.
    pub data: Notify,
    /// Attached replicas, in attach order (INFO's slaveN).
    pub replicas: Mutex<Vec<Arc<Link>>>,
    /// Woken when a replica acknowledges something or leaves (WAIT).
    pub acked: Notify,
    pub stats: ReplStats,
    /// Unix seconds since when no replica is attached (repl-backlog-ttl).
    no_replicas_since: AtomicI64,
    /// Replicas online with a lag under min-replicas-max-lag (refreshed every second).
    good: AtomicUsize,
    obuf: Mutex<ObufLimit>,
    /// We are a replica: our stream is our master's, proxied.
    proxying: AtomicBool,
    /// A REPLCONF GETACK is wanted (WAIT), sent when clients are not paused.
    pub getack: AtomicBool,
    pub getack_notify: Notify,
    /// Seconds the replication cron ran (PINGs every repl-ping-replica-period of them).
    pub cron_loops: AtomicU64,
    /// Unix ms until which the links stand still (DEBUG SLEEP: Redis sleeps whole).
    stalled_until: AtomicI64,
    /// The buffer's memory beyond the backlog's size ([`ReplBuffer::uncounted`]), readable
    /// without the lock by the eviction before every command.
    uncounted: AtomicUsize,
    /// The links' send buffers (what each copies out of the buffer for its next write): part
    /// of the replicas' output, which maxmemory does not count.
    pub send_buffers: AtomicUsize,
    pub full: fullsync::FullSync,
    pub failover: failover::Failover,
}

impl Default for Repl {
    fn default() -> Self {
        Repl {
            ids: Mutex::new(Ids { replid: random_replid(), replid2: NO_REPLID.into(), second_offset: -1 }),
            stream: Mutex::new(Stream { offset: 0, seldb: -1, buf: None, scratch: Vec::new() }),
            offset: AtomicI64::new(0),
            data: Notify::new(),
            replicas: Mutex::new(Vec::new()),
            acked: Notify::new(),
            stats: ReplStats::default(),
            no_replicas_since: AtomicI64::new(now_s()),
            good: AtomicUsize::new(0),
            obuf: Mutex::new(ObufLimit::default()),
            proxying: AtomicBool::new(false),
            getack: AtomicBool::new(false),
            getack_notify: Notify::new(),
            cron_loops: AtomicU64::new(0),
            stalled_until: AtomicI64::new(0),
            uncounted: AtomicUsize::new(0),
            send_buffers: AtomicUsize::new(0),
            full: fullsync::FullSync::default(),
            failover: failover::Failover::default(),
        }
    }
}

/// The sink of the effect stream: a master encodes its writes into the stream.
struct Sink(Arc<Repl>);

impl EffectSink for Sink {
    fn feed(&self, batch: &EffectBatch) {
        self.0.feed_batch(batch);
    }
}

impl Repl {
    /// Become the effect stream's sink (once, at start-up).
    pub fn install(self: &Arc<Self>, effects: &EffectStream) {
        effects.install_sink(Arc::new(Sink(self.clone())));
    }

    pub fn ids(&self) -> Ids {
        self.ids.lock().clone()
    }

    pub fn replid(&self) -> String {
        self.ids.lock().replid.clone()
    }

    /// `master_repl_offset`.
    pub fn offset(&self) -> i64 {
        self.offset.load(Ordering::SeqCst)
    }

    /// A new history: a new random ID (Redis's changeReplicationId).
    pub fn change_replid(&self) {
        self.ids.lock().replid = random_replid();
    }

    /// Forget the second ID (clearReplicationId2).
    pub fn clear_replid2(&self) {
        let mut ids = self.ids.lock();
        ids.replid2 = NO_REPLID.into();
        ids.second_offset = -1;
    }

    /// The current ID becomes the second one, valid up to the current offset; a new ID starts
    /// (shiftReplicationId: a replica promoted to master).
    pub fn shift_replid(&self) {
        let offset = self.offset();
        let mut ids = self.ids.lock();
        ids.replid2 = std::mem::replace(&mut ids.replid, random_replid());
        ids.second_offset = offset + 1;
        log::notice(&format!(
            "Setting secondary replication ID to {}, valid up to offset: {}. New replication ID is {}",
            ids.replid2, ids.second_offset, ids.replid
        ));
    }

    /// Set the IDs (a replica adopting its master's history, or a restart from an RDB file).
    pub fn set_ids(&self, replid: &str, replid2: Option<(&str, i64)>) {
        let mut ids = self.ids.lock();
        ids.replid = replid.to_string();
        if let Some((id2, off)) = replid2 {
            ids.replid2 = id2.to_string();
            ids.second_offset = off;
        }
    }

    pub fn set_replid2(&self, replid2: &str, second_offset: i64) {
        let mut ids = self.ids.lock();
        ids.replid2 = replid2.to_string();
        ids.second_offset = second_offset;
    }

    /// Whether a backlog exists.
    pub fn backlog_active(&self) -> bool {
        self.stream.lock().buf.is_some()
    }

    /// (first byte offset, histlen, memory) of the backlog.
    pub fn backlog_info(&self) -> Option<(i64, i64, usize)> {
        self.stream.lock().buf.as_ref().map(|b| (b.first_offset(), b.histlen(), b.memory()))
    }

    /// Memory the replication buffer holds beyond the backlog's size, for lagging replicas:
    /// not counted toward maxmemory (INFO's mem_not_counted_for_evict).
    pub fn uncounted_memory(&self) -> usize {
        self.uncounted.load(Ordering::Relaxed) + self.send_buffers.load(Ordering::Relaxed)
    }

    /// Publish [`Repl::uncounted_memory`] after the buffer changed (under the stream lock).
    fn note_memory(&self, st: &Stream) {
        let m = st.buf.as_ref().map_or(0, ReplBuffer::uncounted);
        if self.uncounted.load(Ordering::Relaxed) != m {
            self.uncounted.store(m, Ordering::Relaxed);
        }
    }

    /// The stream's selected database (-1: the next command will SELECT).
    pub fn seldb(&self) -> i64 {
        self.stream.lock().seldb
    }

    /// Force a SELECT before the next command (a new replica starts its stream there).
    pub fn reset_seldb(&self) {
        self.stream.lock().seldb = -1;
    }

    /// Set the offset (no backlog may exist: a replica taking its master's offset).
    pub fn set_offset(&self, offset: i64) {
        let mut st = self.stream.lock();
        if let Some(b) = st.buf.as_mut() {
            let delta = offset - b.end;
            b.rebase(delta);
        }
        st.offset = offset;
        self.offset.store(offset, Ordering::SeqCst);
    }

    /// Create the backlog if there is none (its first byte will be the next one).
    pub fn create_backlog(&self, effects: &EffectStream, size: i64) {
        effects.exclusive(|| {
            let mut st = self.stream.lock();
            if st.buf.is_none() {
                st.buf = Some(ReplBuffer::new(st.offset, size.max(1) as usize));
            }
            self.note_memory(&st);
        });
        self.update_sink(effects);
    }

    /// Free the backlog (no replica may be attached).
    pub fn free_backlog(&self, effects: &EffectStream) {
        effects.exclusive(|| {
            let mut st = self.stream.lock();
            if let Some(b) = st.buf.take() {
                st.offset = b.end;
            }
            self.note_memory(&st);
        });
        self.update_sink(effects);
    }

    /// `repl-backlog-size` changed.
    pub fn resize_backlog(&self, size: i64) {
        let mut st = self.stream.lock();
        if let Some(b) = st.buf.as_mut() {
            b.set_limit(size.max(1) as usize);
        }
        self.note_memory(&st);
    }

    /// Switch between master (our writes make the stream) and replica (we proxy our master's).
    pub fn set_proxying(&self, effects: &EffectStream, on: bool) {
        self.proxying.store(on, Ordering::SeqCst);
        self.update_sink(effects);
    }

    pub fn proxying(&self) -> bool {
        self.proxying.load(Ordering::SeqCst)
    }

    fn update_sink(&self, effects: &EffectStream) {
        let on = !self.proxying() && self.stream.lock().buf.is_some();
        effects.set_sink_on(on);
    }

    /// `client-output-buffer-limit replica` changed.
    pub fn set_obuf_limit(&self, limit: ObufLimit) {
        *self.obuf.lock() = limit;
    }

    /// The sink: encode a batch of effects into the stream.
    fn feed_batch(&self, batch: &EffectBatch) {
        if self.proxying() {
            return;
        }
        {
            let mut st = self.stream.lock();
            let st = &mut *st;
            if st.buf.is_none() {
                return;
            }
            let mut out = std::mem::take(&mut st.scratch);
            out.clear();
            // A script's writes under redis.set_repl(REPL_AOF) go to the AOF only.
            for e in batch.iter().filter(|e| !e.aof_only) {
                if st.seldb != e.db as i64 && !e.any_db {
                    encode_command(&mut out, &[b"SELECT".as_slice(), itoa::Buffer::new().format(e.db).as_bytes()]);
                    st.seldb = e.db as i64;
                }
                // A big argument goes to the stream as it is, after what precedes it: copied
                // once, into the stream, not first into `out`.
                encode_command_apart(&mut out, &e.argv, BIG_ARG, |out, arg| {
                    self.append(st, out);
                    out.clear();
                    self.append(st, arg);
                });
            }
            self.append(st, &out);
            if out.capacity() <= 1 << 16 {
                st.scratch = out;
            }
        }
        self.after_append();
    }

    /// Append a command for database `db` (SELECT first when the stream is elsewhere).
    pub fn feed_effect(&self, db: usize, argv: &[&[u8]]) {
        let batch = vec![crate::keyspace::Effect::new(db, argv.iter().map(|a| Bytes::copy_from_slice(a)).collect())];
        self.feed_batch(&batch);
    }

    /// Move every offset by `delta` (a master restarted from a file that recorded where its
    /// history was: Redis's rebaseReplicationBuffer).
    pub fn rebase(&self, delta: i64) {
        let mut st = self.stream.lock();
        match st.buf.as_mut() {
            Some(b) => {
                b.rebase(delta);
                st.offset = b.end;
            }
            None => st.offset += delta,
        }
        self.offset.store(st.offset, Ordering::SeqCst);
    }

    /// Append a command that touches no key (PING, REPLCONF GETACK): no SELECT before it.
    /// Nothing happens without a backlog, or on a replica (which proxies its master's stream).
    pub fn feed_command(&self, argv: &[&[u8]]) {
        if self.proxying() {
            return;
        }
        let mut out = Vec::new();
        encode_command(&mut out, argv);
        {
            let mut st = self.stream.lock();
            if st.buf.is_none() {
                return;
            }
            self.append(&mut st, &out);
        }
        self.after_append();
    }

    /// A replica: append the bytes of its master's stream it just applied.
    pub fn feed_from_master(&self, bytes: &[u8]) {
        {
            let mut st = self.stream.lock();
            if st.buf.is_none() {
                st.offset += bytes.len() as i64;
                self.offset.store(st.offset, Ordering::SeqCst);
                return;
            }
            self.append(&mut st, bytes);
        }
        self.after_append();
    }

    fn append(&self, st: &mut Stream, bytes: &[u8]) {
        let Some(buf) = st.buf.as_mut() else { return };
        buf.feed(bytes);
        st.offset = buf.end;
        self.offset.store(st.offset, Ordering::SeqCst);
        self.note_memory(st);
    }

    fn after_append(&self) {
        self.data.notify_waiters();
    }

    /// Disconnect the replicas over the output-buffer limit of their class (cron), each counted
    /// in `disconnections` (INFO's client_output_buffer_limit_disconnections) before its link is
    /// killed, so whoever sees the replica gone sees it counted.
    pub fn check_obuf(&self, disconnections: &AtomicU64) {
        let limit = *self.obuf.lock();
        let over = match self.stream.lock().buf.as_mut() {
            Some(b) => b.over_limit(limit, now_s()),
            None => return,
        };
        if over.is_empty() {
            return;
        }
        let links: Vec<Arc<Link>> = self.replicas.lock().clone();
        for l in links {
            if over.contains(&l.reader.load(Ordering::SeqCst)) && !l.handle.is_killed() {
                log::warning(&format!(
                    "Client {} scheduled to be closed ASAP for overcoming of output buffer limits.",
                    l.handle.info_line(None)
                ));
                disconnections.fetch_add(1, Ordering::Relaxed);
                self.kill_link(&l);
            }
        }
    }

    /// A reader at `pos` (None: no backlog, or it no longer holds `pos`).
    pub fn add_reader(&self, pos: i64) -> Option<u64> {
        let mut st = self.stream.lock();
        let buf = st.buf.as_mut()?;
        buf.can_serve(pos).then(|| buf.add_reader(pos))
    }

    /// PSYNC: whether the backlog holds `pos` (and a reader there when it does).
    pub fn remove_reader(&self, id: u64) {
        if id == 0 {
            return;
        }
        let mut st = self.stream.lock();
        if let Some(b) = st.buf.as_mut() {
            b.remove_reader(id);
        }
        self.note_memory(&st);
    }

    /// Copy up to `max` bytes for a reader; also returns the memory it holds in the buffer.
    pub fn read(&self, id: u64, max: usize, out: &mut Vec<u8>) -> (Read, usize) {
        let mut st = self.stream.lock();
        match st.buf.as_mut() {
            Some(b) => {
                let r = b.read(id, max, out);
                let mem = b.reader_memory(id);
                (r, mem)
            }
            None => (Read::Gone, 0),
        }
    }

    /// Trim what nobody needs any more (cron).
    pub fn trim(&self) {
        let mut st = self.stream.lock();
        if let Some(b) = st.buf.as_mut() {
            b.trim_step();
        }
        self.note_memory(&st);
    }

    /// The newest bytes of the stream, for a log line.
    pub fn latest(&self, n: usize) -> Vec<u8> {
        self.stream.lock().buf.as_ref().map(|b| b.tail(n)).unwrap_or_default()
    }

    /// DEBUG SLEEP: the replication links stand still for `d` (neither side sends or applies).
    pub fn stall_for(&self, d: std::time::Duration) {
        let until = crate::keyspace::now_ms().saturating_add(d.as_millis().min(i64::MAX as u128) as i64);
        self.stalled_until.fetch_max(until, Ordering::SeqCst);
    }

    /// Wait while the links are stalled.
    pub async fn wait_unstalled(&self) {
        loop {
            let left = self.stalled_until.load(Ordering::SeqCst) - crate::keyspace::now_ms();
            if left <= 0 {
                return;
            }
            crate::util::timer::sleep(std::time::Duration::from_millis(left as u64)).await;
        }
    }

    /// Ask the replicas for an acknowledgement (sent by the replication task unless clients
    /// are paused).
    pub fn request_ack(&self) {
        self.getack.store(true, Ordering::SeqCst);
        self.getack_notify.notify_one();
    }

    /// Online replicas that acknowledged `offset` (WAIT).
    pub fn count_acks(&self, offset: i64) -> usize {
        self.replicas
            .lock()
            .iter()
            .filter(|l| l.state() == ONLINE && l.ack_off.load(Ordering::SeqCst) >= offset)
            .count()
    }

    /// Online replicas whose AOF fsynced `offset` (WAITAOF).
    pub fn count_facks(&self, offset: i64) -> usize {
        self.replicas
            .lock()
            .iter()
            .filter(|l| l.state() == ONLINE && l.fack_off.load(Ordering::SeqCst) >= offset)
            .count()
    }

    pub fn good_replicas(&self) -> usize {
        self.good.load(Ordering::Relaxed)
    }

    /// Count the online replicas whose last acknowledgement is at most `max_lag` seconds old
    /// (Redis's refreshGoodSlavesCount).
    pub fn refresh_good(&self, max_lag: i64) {
        let now = now_s();
        let n = self
            .replicas
            .lock()
            .iter()
            .filter(|l| l.state() == ONLINE && now - l.ack_time.load(Ordering::SeqCst) <= max_lag)
            .count();
        self.good.store(n, Ordering::Relaxed);
    }

    pub fn no_replicas_since(&self) -> i64 {
        self.no_replicas_since.load(Ordering::Relaxed)
    }

    pub fn touch_no_replicas(&self) {
        self.no_replicas_since.store(now_s(), Ordering::Relaxed);
    }

    /// Attach a replica (it is listed from now on).
    pub fn attach(&self, link: Arc<Link>) {
        self.replicas.lock().push(link);
    }

    /// Detach a replica: its reader goes, and the clock of repl-backlog-ttl starts when it was
    /// the last.
    pub fn detach(&self, link: &Arc<Link>) {
        let empty = {
            let mut v = self.replicas.lock();
            v.retain(|l| !Arc::ptr_eq(l, link));
            v.is_empty()
        };
        self.remove_reader(link.reader.swap(0, Ordering::SeqCst));
        if empty {
            self.touch_no_replicas();
        }
        self.acked.notify_waiters();
    }

    /// Disconnect every replica (our history changed: they must resynchronise with us).
    pub fn disconnect_replicas(&self) {
        let links: Vec<Arc<Link>> = self.replicas.lock().clone();
        for l in links {
            self.kill_link(&l);
        }
    }

    /// Close a replica's link now: it is detached at once (its share of the buffer is released
    /// before anyone else is served, as Redis frees it), its task ends soon after.
    pub fn kill_link(&self, link: &Arc<Link>) {
        link.handle.kill();
        link.wake.notify_one();
        self.detach(link);
    }

    /// CLIENT KILL of a connection that may be a replica's link.
    pub fn kill_client(&self, handle: &ClientHandle) {
        let link = self.replicas.lock().iter().find(|l| l.handle.id == handle.id).cloned();
        match link {
            Some(l) => self.kill_link(&l),
            None => {
                handle.kill();
            }
        }
    }

    pub fn replica_count(&self) -> usize {
        self.replicas.lock().len()
    }
}

/// At shutdown: give the online replicas' links a moment to send what the stream holds (Redis
/// flushes its replicas' output buffers before exiting), so a replica restarting from the same
/// history continues it.
pub async fn flush_on_shutdown(server: &Server) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_millis(500);
    while std::time::Instant::now() < deadline {
        let pending = {
            let links: Vec<Arc<Link>> = server.repl.replicas.lock().clone();
            let st = server.repl.stream.lock();
            match st.buf.as_ref() {
                Some(b) => links.iter().any(|l| {
                    l.state() == ONLINE
                        && !l.start_on_ack.load(Ordering::SeqCst)
                        && b.reader_pos(l.reader.load(Ordering::SeqCst)).is_some_and(|p| p <= b.end)
                }),
                None => false,
            }
        };
        if !pending {
            return;
        }
        crate::util::timer::sleep(std::time::Duration::from_millis(5)).await;
    }
}

/// Whether enough good replicas are attached for a write (Redis's checkGoodReplicasStatus):
/// always on a replica, or with min-replicas-to-write / -max-lag at 0.
pub fn good_replicas_ok(server: &Server) -> bool {
    let want = server.min_replicas_to_write.load(Ordering::Relaxed);
    if want == 0 || server.replica.is_replica() {
        return true;
    }
    if server.config.load().min_replicas_max_lag == 0 {
        return true;
    }
    server.repl.good_replicas() >= want
}

/// How the command about to run sees expired keys: on a master they are deleted; on a replica
/// its master's stream sees them as they are (the master's DEL comes), other clients do not
/// see them, and a write on a writable replica deletes them (Redis's expireIfNeeded).
pub fn expire_mode(
    server: &Server,
    client: &crate::session::Client,
    cmd: &crate::commands::table::Command,
) -> ExpireMode {
    if !server.replica.is_replica() {
        // While the dataset loads (the AOF replayed at start-up) keys do not expire: a later
        // command of the file may still write to one (Redis's keyIsExpired during loading).
        return if server.stats.loading.load(Ordering::Relaxed) { ExpireMode::Keep } else { ExpireMode::Delete };
    }
    if client.is_master {
        return ExpireMode::Keep;
    }
    if cmd.has_flag(crate::commands::flags::WRITE) && !server.config.load().replica_read_only {
        ExpireMode::LocalWrite
    } else {
        ExpireMode::Hide
    }
}

/// A replica's active expiry: the keys its own clients gave an expiry (Redis's
/// expireSlaveKeys).
pub fn expire_replica_keys(server: &Server) {
    let ks = &server.keyspace;
    let keys: Vec<(usize, Bytes)> = ks.replica_local_expires.lock().iter().cloned().collect();
    for (index, key) in keys {
        let mut db = ks.lock_keys(index, &[&key]);
        let done = match db.expire_of(&key) {
            None => true,
            Some(t) if t <= db.now_ms => {
                db.expire_if_needed(&key);
                true
            }
            Some(_) => false,
        };
        drop(db);
        if done {
            ks.replica_local_expires.lock().remove(&(index, key));
        }
    }
}

/// A WAIT / WAITAOF that blocks: what it waits for.
#[derive(Debug)]
pub struct WaitSpec {
    /// The replication offset of the client's last write.
    pub target: i64,
    /// The effect sequence number of that write (WAITAOF's local fsync).
    pub target_seq: u64,
    pub numreplicas: u64,
    /// WAITAOF: the local fsync wanted (0 or 1); None for WAIT.
    pub numlocal: Option<u64>,
    pub deadline: Option<std::time::Instant>,
}

/// Whether the local AOF has fsynced everything up to `seq` (WAITAOF's local count): not
/// before the first rewrite of an AOF turned on has succeeded, as Redis.
pub fn local_fsynced(server: &Server, seq: u64) -> bool {
    let aof = &server.aof;
    aof.on.load(Ordering::Acquire) && !aof.wait_rewrite.load(Ordering::Acquire) && aof.fsynced() >= seq
}

fn acked(server: &Server, spec: &WaitSpec) -> usize {
    match spec.numlocal {
        None => server.repl.count_acks(spec.target),
        Some(_) => server.repl.count_facks(spec.target),
    }
}

/// Whether WAIT / WAITAOF already has what it asks for.
pub fn wait_done(server: &Server, spec: &WaitSpec) -> bool {
    acked(server, spec) as u64 >= spec.numreplicas
        && (spec.numlocal.unwrap_or(0) == 0 || local_fsynced(server, spec.target_seq))
}

/// The reply of WAIT (the replicas count) or WAITAOF ([local, replicas]).
pub fn reply_acks(server: &Server, spec: &WaitSpec, out: &mut crate::protocol::ReplySink) {
    match spec.numlocal {
        None => out.int(acked(server, spec) as i64),
        Some(_) => {
            out.array(2);
            out.int(local_fsynced(server, spec.target_seq) as i64);
            out.int(acked(server, spec) as i64);
        }
    }
}

/// Block until the acknowledgements WAIT / WAITAOF asked for arrived or the timeout passed,
/// then write the reply. As Redis 7.2, the wait ends with an error when the server becomes a
/// replica (then returns true: the connection closes after the reply, as other blocked
/// clients') or, for a WAITAOF that wants the local fsync, when the AOF is turned off.
pub async fn wait_acks(server: &Server, spec: &WaitSpec, out: &mut crate::protocol::ReplySink) -> bool {
    loop {
        let notified = server.repl.acked.notified();
        if server.replica.is_replica() {
            out.error("-UNBLOCKED force unblock from blocking operation, instance state changed (master -> replica?)");
            return true;
        }
        if spec.numlocal.unwrap_or(0) > 0 && !server.config.load().appendonly {
            out.error("WAITAOF cannot be used when numlocal is set but appendonly is disabled.");
            return false;
        }
        if wait_done(server, spec) || spec.deadline.is_some_and(|d| std::time::Instant::now() >= d) {
            break;
        }
        // Woken by an acknowledgement; the AOF's fsync and the deadline are polled.
        let tick = std::time::Duration::from_millis(10);
        let _ = crate::util::timer::timeout(tick, notified).await;
    }
    reply_acks(server, spec, out);
    false
}

/// The replication information an RDB file carries (aux fields repl-stream-db, repl-id,
/// repl-offset), as Redis's rdbPopulateSaveInfo: on a master only with a backlog; on a replica
/// the database its master's stream has selected.
pub fn save_info(server: &Server) -> Option<crate::persistence::rdb::ReplAux> {
    let repl = &server.repl;
    let stream_db = if server.replica.is_replica() {
        if !server.replica.has_history() {
            return None;
        }
        server.replica.stream_db()
    } else {
        let st = repl.stream.lock();
        st.buf.as_ref()?;
        st.seldb.max(0)
    };
    let ids = repl.ids.lock();
    let mut id = [b'0'; 40];
    let n = ids.replid.len().min(40);
    id[..n].copy_from_slice(&ids.replid.as_bytes()[..n]);
    Some(crate::persistence::rdb::ReplAux { stream_db, id, offset: repl.offset() })
}

/// Restore the replication state an RDB file carried, after loading it at start-up (Redis's
/// loadDataFromDisk): a replica continues its master's history (a cached master for PSYNC); a
/// master keeps the file's history as its second ID, so its replicas continue with it.
///
/// `expired` are the keys the file held already expired: a master propagates their deletion
/// (DEL, or UNLINK with lazyfree-lazy-expire), so its offset moves on from the file's.
pub fn restore(server: &Server, aux: &[(Vec<u8>, Vec<u8>)], expired: &[(usize, Vec<u8>)]) {
    let get = |name: &str| {
        aux.iter().find(|(k, _)| k == name.as_bytes()).map(|(_, v)| String::from_utf8_lossy(v).into_owned())
    };
    let (Some(id), Some(offset), Some(db)) = (get("repl-id"), get("repl-offset"), get("repl-stream-db")) else {
        return;
    };
    let (Ok(offset), Ok(db)) = (offset.parse::<i64>(), db.parse::<i64>()) else { return };
    if id.len() != 40 || offset < 0 || db < 0 {
        return;
    }
    let repl = &server.repl;
    if server.replica.is_replica() {
        repl.set_ids(&id, None);
        repl.set_offset(offset);
        server.replica.cache_history(db as usize);
    } else {
        let cfg = server.config.load();
        repl.create_backlog(&server.keyspace.effects, cfg.repl_backlog_size);
        let del: &[u8] = if cfg.lazyfree_lazy_expire { b"UNLINK" } else { b"DEL" };
        for (db, key) in expired {
            repl.feed_effect(*db, &[del, key.as_slice()]);
        }
        repl.set_replid2(&id, offset + 1);
        repl.rebase(offset);
        repl.touch_no_replicas();
    }
}

/// The replication cron's work: PINGs to replicas, timeouts, good-replica count, backlog TTL,
/// pending full synchronisations, the replica link's acknowledgements, failover progress.
pub async fn cron(server: Arc<Server>) {
    let getack = {
        let s = server.clone();
        async move {
            loop {
                s.repl.getack_notify.notified().await;
                send_getack_when_unpaused(&s).await;
            }
        }
    };
    tokio::spawn(getack);
    let mut tick = crate::util::timer::interval(std::time::Duration::from_millis(100));
    let mut n = 0u64;
    loop {
        tick.tick().await;
        if server.is_shutting_down() {
            return;
        }
        fullsync::start_pending(&server);
        failover::cron(&server);
        server.repl.check_obuf(&server.stats.client_output_buffer_limit_disconnections);
        server.repl.trim();
        // Redis's replicationCron runs at once, then every second (its first run, before any
        // replica can attach, is PING round 0).
        if n.is_multiple_of(10) {
            second(&server);
        }
        n += 1;
    }
}

/// Send the REPLCONF GETACK WAIT asked for, once clients are not paused (Redis skips it while
/// they are: the GETACK would move the offsets a failover waits on).
async fn send_getack_when_unpaused(server: &Server) {
    while server.pause.active() {
        server.pause.released().await;
    }
    if server.repl.getack.swap(false, Ordering::SeqCst) {
        server.repl.feed_command(&[b"REPLCONF", b"GETACK", b"*"]);
    }
}

/// Once a second (Redis's replicationCron).
fn second(server: &Server) {
    let repl = &server.repl;
    let cfg = server.config.load();
    let loops = repl.cron_loops.fetch_add(1, Ordering::SeqCst);
    let now = now_s();
    let links: Vec<Arc<Link>> = repl.replicas.lock().clone();
    // PING the replicas every repl-ping-replica-period seconds (not while a failover holds
    // the writes: it would move the offset it waits for).
    let ping_due = loops.is_multiple_of(cfg.repl_ping_replica_period.max(1) as u64);
    let failover_holds = repl.failover.pausing() && server.pause.active();
    if ping_due && !failover_holds && !server.replica.is_replica() && !links.is_empty() {
        repl.feed_command(&[b"PING"]);
    }
    for l in &links {
        let st = l.state();
        if st == ONLINE && !l.pre_psync && now - l.ack_time.load(Ordering::SeqCst) > cfg.repl_timeout {
            log::warning(&format!("Disconnecting timedout replica (streaming sync): {}", l.name()));
            repl.kill_link(l);
            continue;
        }
        if st == WAIT_BGSAVE_END && l.job.lock().as_ref().is_some_and(|j| !j.disk) {
            let lp = l.last_partial_write.load(Ordering::SeqCst);
            if lp != 0 && now - lp > cfg.repl_timeout {
                log::warning(&format!("Disconnecting timedout replica (full sync): {}", l.name()));
                fullsync::replica_left(server, l);
                repl.kill_link(l);
            }
        }
    }
    // A master without replicas frees its backlog after repl-backlog-ttl.
    if links.is_empty()
        && cfg.repl_backlog_ttl > 0
        && !server.replica.is_replica()
        && repl.backlog_active()
        && now - repl.no_replicas_since() > cfg.repl_backlog_ttl
    {
        repl.change_replid();
        repl.clear_replid2();
        repl.free_backlog(&server.keyspace.effects);
        log::notice(&format!(
            "Replication backlog freed after {} seconds without connected replicas.",
            cfg.repl_backlog_ttl
        ));
    }
    repl.refresh_good(cfg.min_replicas_max_lag);
    drop(cfg);
    replica::cron(server);
}

/// Encode a command as the replication stream carries it (tests, the replica's handshake).
pub fn encode(argv: &[impl AsRef<[u8]>]) -> Vec<u8> {
    let mut out = Vec::new();
    encode_command(&mut out, argv);
    out
}

/// Argument helper: is `a` the word `w` (case-insensitive)?
pub(crate) fn is_word(a: &Bytes, w: &str) -> bool {
    a.eq_ignore_ascii_case(w.as_bytes())
}

/// Log lines for the command handlers (which do not reach the server's logger directly).
pub fn log_notice(msg: &str) {
    log::notice(msg);
}

pub fn log_warning(msg: &str) {
    log::warning(msg);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_are_resp_multibulks() {
        assert_eq!(encode(&[b"SET".as_slice(), b"k", b""]), b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$0\r\n\r\n");
    }

    #[test]
    fn the_stream_selects_databases_and_counts_every_byte() {
        let repl = Arc::new(Repl::default());
        let effects = EffectStream::default();
        repl.install(&effects);
        // Without a backlog nothing is encoded and the offset stays.
        effects
            .publish(vec![crate::keyspace::Effect::new(0, vec![Bytes::from_static(b"DEL"), Bytes::from_static(b"k")])]);
        assert_eq!(repl.offset(), 0);
        repl.create_backlog(&effects, 1 << 20);
        assert!(effects.is_active());
        let r = repl.add_reader(1).unwrap();
        effects
            .publish(vec![crate::keyspace::Effect::new(3, vec![Bytes::from_static(b"DEL"), Bytes::from_static(b"k")])]);
        effects
            .publish(vec![crate::keyspace::Effect::new(3, vec![Bytes::from_static(b"DEL"), Bytes::from_static(b"j")])]);
        repl.feed_command(&[b"PING"]);
        let mut out = Vec::new();
        repl.read(r, usize::MAX, &mut out);
        let expected =
            [encode(&["SELECT", "3"]), encode(&["DEL", "k"]), encode(&["DEL", "j"]), encode(&["PING"])].concat();
        assert_eq!(out, expected);
        assert_eq!(repl.offset(), expected.len() as i64);
        // A replica proxies instead.
        repl.set_proxying(&effects, true);
        effects
            .publish(vec![crate::keyspace::Effect::new(3, vec![Bytes::from_static(b"DEL"), Bytes::from_static(b"x")])]);
        assert_eq!(repl.offset(), expected.len() as i64);
        repl.feed_from_master(b"*1\r\n$4\r\nPING\r\n");
        assert_eq!(repl.offset(), expected.len() as i64 + 14);
    }
}
