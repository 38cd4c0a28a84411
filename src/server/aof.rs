//! The append-only file of the running server, in Redis 7.0's multi-part layout
//! (`<dir>/<appenddirname>/`: a base file, incr files, the manifest; see `persistence::aof`).
//!
//! **Appending**: a dedicated writer thread subscribes to the effect stream and appends every
//! batch as RESP commands (SELECT when the database changes, `#TS:` annotations with
//! `aof-timestamp-enabled`) to the current incr file. Batches that arrived together are written
//! at once, then the writer publishes the sequence number it reached; a connection whose
//! replies may depend on a write waits for that number (see [`AofState::wait_synced`]) before
//! its replies leave, as Redis writes its AOF buffer before sending an event-loop cycle's
//! replies. `appendfsync always` also fsyncs before publishing; `everysec`: fsync once a second;
//! `no`: the OS decides. With AOF off nothing subscribes and the hot path pays one atomic load.
//!
//! **Disk errors** (Redis's flushAppendOnlyFile): a failed or short write is cut off the file
//! and its buffer kept for the next attempt (each batch and every second); with `always` the
//! server exits instead, as Redis. A failed write or fsync makes the pipeline refuse writes
//! with MISCONF (`server::disk`) until a write and an fsync succeed again.
//!
//! **Rewriting** (BGREWRITEAOF, auto rewrite, turning AOF on at runtime): the point in time is
//! fixed with the BGSAVE capture machinery; while every shard is locked at that point the writer
//! switches to a new incr file (listed in the manifest at once), so every later write lands in
//! it and nothing is lost or doubled. A thread writes the new base (an RDB file, or commands
//! with `aof-use-rdb-preamble no`) to a temporary file; the writer then renames it, makes the old
//! base and incr files history in the manifest (written atomically) and deletes them (unless
//! `aof-disable-auto-gc yes`). Failed rewrites follow Redis: the temporary incr file of an AOF
//! being turned on is dropped and the next rewrite scheduled; from three failures in a row
//! automatic rewrites back off ([`rewrite_limited`]).

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};

use super::save_child::{self, SaveChild};
use super::{log, saving, Server};
use crate::keyspace::effects::EffectBatch;
use crate::keyspace::now_ms;
use crate::persistence::aof::{manifest_name, temp_manifest_name, Manifest};
use crate::persistence::rdb::{PointInTime, SaveOptions};
use crate::protocol::encode_command;

/// Runtime state of the AOF (INFO persistence, the fsync handshake, the writer's mailbox).
pub struct AofState {
    /// A writer is running (the AOF is on, possibly waiting for its first rewrite).
    pub on: AtomicBool,
    /// `appendfsync always` while on: replies wait for the fsync of what preceded them.
    pub fsync_always: AtomicBool,
    /// Effect sequence number written (and, with `always`, fsynced) by the writer.
    synced: tokio::sync::watch::Sender<u64>,
    /// Effect sequence number fsynced to the file (WAITAOF's local acknowledgement).
    fsynced: AtomicU64,
    ctl: Mutex<Option<UnboundedSender<Ctl>>>,
    /// AOF enabled while it could not start (a BGSAVE was running): the cron retries.
    pub start_pending: AtomicBool,
    /// On, but the first rewrite has not succeeded yet (writes go to a temporary incr file).
    pub wait_rewrite: AtomicBool,
    pub rewrite_in_progress: AtomicBool,
    /// Stops the rewrite in progress (Redis kills its AOF child): see [`kill_rewrite`].
    rewrite_abort: Mutex<Option<Arc<AtomicBool>>>,
    pub rewrite_scheduled: AtomicBool,
    pub rewrite_started_ms: AtomicI64,
    pub last_rewrite_time_sec: AtomicI64,
    pub last_bgrewrite_ok: AtomicBool,
    pub last_write_ok: AtomicBool,
    /// The last fsync succeeded (Redis's aof_bio_fsync_status).
    pub fsync_ok: AtomicBool,
    /// errno of the last failed write or fsync (the MISCONF error's text).
    pub last_errno: AtomicI32,
    /// Bytes encoded and not yet written (INFO's aof_buffer_length).
    pub buffer_len: AtomicU64,
    pub rewrites: AtomicU64,
    pub consecutive_failures: AtomicU64,
    /// Redis's aofRewriteLimited back-off: (minutes of the last delay, unix time before which
    /// automatic rewrites wait; 0: not waiting).
    limit: Mutex<(i64, i64)>,
    pub current_size: AtomicU64,
    pub base_size: AtomicU64,
    pub delayed_fsync: AtomicU64,
    /// The copy-on-write bytes of the last successful rewrite (INFO's aof_last_cow_size).
    pub last_cow: AtomicU64,
}

impl Default for AofState {
    fn default() -> Self {
        AofState {
            on: AtomicBool::new(false),
            fsync_always: AtomicBool::new(false),
            synced: tokio::sync::watch::Sender::new(u64::MAX),
            fsynced: AtomicU64::new(0),
            ctl: Mutex::new(None),
            start_pending: AtomicBool::new(false),
            wait_rewrite: AtomicBool::new(false),
            rewrite_in_progress: AtomicBool::new(false),
            rewrite_abort: Mutex::new(None),
            rewrite_scheduled: AtomicBool::new(false),
            rewrite_started_ms: AtomicI64::new(0),
            last_rewrite_time_sec: AtomicI64::new(-1),
            last_bgrewrite_ok: AtomicBool::new(true),
            last_write_ok: AtomicBool::new(true),
            fsync_ok: AtomicBool::new(true),
            last_errno: AtomicI32::new(0),
            buffer_len: AtomicU64::new(0),
            rewrites: AtomicU64::new(0),
            consecutive_failures: AtomicU64::new(0),
            limit: Mutex::new((0, 0)),
            current_size: AtomicU64::new(0),
            base_size: AtomicU64::new(0),
            delayed_fsync: AtomicU64::new(0),
            last_cow: AtomicU64::new(0),
        }
    }
}

impl AofState {
    /// Wait until every effect published so far has been handed to the AOF (`appendfsync
    /// always`: and fsynced), as Redis writes its AOF buffer before it sends the replies of an
    /// event-loop cycle: called by connections before their replies leave. A reply is never
    /// sent for a write the writer has not tried to write yet, so a disk that fills up refuses
    /// the next write (MISCONF) instead of acknowledging writes that only sit in memory, and
    /// the AOF buffer cannot grow ahead of the disk. Costs one atomic load with the AOF off,
    /// two more when no write is in flight.
    pub async fn wait_synced(&self, published: impl FnOnce() -> u64) {
        if let Some(target) = self.unsynced(published) {
            // Boxed: it waits only while a write is in flight, and inline its watch future
            // (~230 bytes) would be part of every connection's task, idle or not.
            Box::pin(self.synced_to(target)).await;
        }
    }

    async fn synced_to(&self, target: u64) {
        let mut rx = self.synced.subscribe();
        let _ = rx.wait_for(|&v| v >= target).await;
    }

    /// The sequence number [`AofState::wait_synced`] would wait for, or None when it would not
    /// wait (a caller's synchronous fast path).
    #[inline]
    pub fn unsynced(&self, published: impl FnOnce() -> u64) -> Option<u64> {
        if !self.on.load(Ordering::Acquire) {
            return None;
        }
        let target = published();
        (*self.synced.borrow() < target).then_some(target)
    }

    /// The errno refusing writes while the AOF is on and its last write or fsync failed
    /// (Redis's DISK_ERROR_TYPE_AOF).
    pub fn error(&self) -> Option<i32> {
        if !self.on.load(Ordering::Relaxed) {
            return None;
        }
        let failed = !self.last_write_ok.load(Ordering::Relaxed) || !self.fsync_ok.load(Ordering::Relaxed);
        failed.then(|| self.last_errno.load(Ordering::Relaxed))
    }

    /// The effect sequence number the AOF has fsynced up to (WAITAOF).
    pub fn fsynced(&self) -> u64 {
        self.fsynced.load(Ordering::Acquire)
    }

    fn send(&self, c: Ctl) -> bool {
        self.ctl.lock().as_ref().is_some_and(|tx| tx.send(c).is_ok())
    }
}

/// Messages to the writer thread.
enum Ctl {
    /// Rewrite point (every shard locked): write everything up to `seq`, then continue in a
    /// new incr file.
    Switch { seq: u64, done: std::sync::mpsc::Sender<Result<(), String>> },
    /// The rewrite thread ended.
    RewriteDone(RewriteEnd),
    /// Delete the history files now (aof-disable-auto-gc set to no, DEBUG LOADAOF).
    Gc { done: std::sync::mpsc::Sender<()> },
    /// Write and fsync everything up to `seq`.
    Sync { seq: u64, done: std::sync::mpsc::Sender<()> },
    /// Write, fsync and stop.
    Stop { done: std::sync::mpsc::Sender<()> },
}

/// How a rewrite thread ended.
enum RewriteEnd {
    /// The new base is in the file (`true`: an RDB).
    Written(PathBuf, bool),
    /// Writing it failed.
    Failed(String),
    /// Its child was killed by this signal (SIGUSR1 is no error, as in Redis).
    Killed(i32),
}

impl RewriteEnd {
    /// Log the end of a rewrite that did not write its base; whether it counts as a failure
    /// (Redis's aof_lastbgrewrite_status and stat_aofrw_consecutive_failures).
    fn report_failure(&self) -> bool {
        match self {
            RewriteEnd::Written(..) => false,
            RewriteEnd::Failed(e) => {
                log::warning(&format!("Background AOF rewrite failed: {e}"));
                true
            }
            RewriteEnd::Killed(signal) => {
                log::warning(&format!("Background AOF rewrite terminated by signal {signal}"));
                *signal != save_child::SIGUSR1
            }
        }
    }
}

/// `dir/appenddirname`, and `appendfilename`.
pub fn paths(server: &Server) -> (PathBuf, String) {
    let cfg = server.config.load();
    let dir = Path::new(&cfg.dir).join(&cfg.appenddirname);
    (dir, cfg.appendfilename.clone())
}

/// Write the manifest atomically (temp file, fsync, rename, directory fsync), as Redis does.
pub fn persist_manifest(dir: &Path, fname: &str, m: &Manifest) -> io::Result<()> {
    let text = m.to_text();
    saving::write_atomically(&dir.join(manifest_name(fname)), &temp_manifest_name(fname), |w| {
        w.write_all(text.as_bytes())
    })
}

/// Delete the history files and drop them from the manifest, unless `aof-disable-auto-gc`
/// keeps them (Redis's aofDelHistoryFiles).
fn delete_history(server: &Server, dir: &Path, fname: &str, m: &mut Manifest) {
    if m.history.is_empty() || server.config.load().aof_disable_auto_gc {
        return;
    }
    for h in m.history.drain(..) {
        log::notice(&format!("Removing the history file {} in the background", h.name));
        let _ = fs::remove_file(dir.join(&h.name));
    }
    if let Err(e) = persist_manifest(dir, fname, m) {
        log::warning(&format!("Can't persist the AOF manifest after deleting history files: {e}"));
    }
}

fn file_size(p: &Path) -> u64 {
    fs::metadata(p).map(|m| m.len()).unwrap_or(0)
}

/// The writer thread's state.
struct Writer {
    server: Arc<Server>,
    dir: PathBuf,
    fname: String,
    manifest: Manifest,
    file: File,
    /// Length of `file` when known (so a write costs no fstat); None after a switch.
    file_len: Option<u64>,
    /// Waiting for the first rewrite (AOF turned on at runtime): `file` is a temporary incr
    /// file, not yet in the manifest.
    wait_rewrite: bool,
    buf: Vec<u8>,
    selected: Option<usize>,
    /// Sequence number of the last batch encoded into `buf` / written to `file`.
    processed: u64,
    written: u64,
    needs_fsync: bool,
    last_fsync: Instant,
    last_ts: i64,
}

impl Writer {
    fn append(&mut self, batch: &EffectBatch) {
        self.processed += 1;
        if self.server.config.load().aof_timestamp_enabled {
            let now = now_ms() / 1000;
            if now != self.last_ts {
                self.buf.extend_from_slice(format!("#TS:{now}\r\n").as_bytes());
                self.last_ts = now;
            }
        }
        for e in batch.iter().filter(|e| !e.replicas_only) {
            if self.selected != Some(e.db) && !e.any_db {
                encode_command(&mut self.buf, &[b"SELECT".as_slice(), itoa::Buffer::new().format(e.db).as_bytes()]);
                self.selected = Some(e.db);
            }
            encode_command(&mut self.buf, &e.argv);
        }
    }

    /// Write the buffer; fsync if the policy says so now (or `force`). A failed write keeps the
    /// buffer (nothing half-written stays in the file) and is retried on the next batch and
    /// every second; meanwhile the pipeline refuses writes with MISCONF, so the buffer only
    /// grows by what the server itself propagates (expiries, evictions, our master's stream).
    fn flush(&mut self, force: bool) {
        let server = self.server.clone();
        let st = &server.aof;
        let policy = self.server.config.load().appendfsync_name().to_string();
        if !self.buf.is_empty() {
            if let Err(errno) = self.write_buf() {
                st.last_errno.store(errno, Ordering::Relaxed);
                st.last_write_ok.store(false, Ordering::Relaxed);
                st.buffer_len.store(self.buf.len() as u64, Ordering::Relaxed);
                if policy == "always" {
                    log::warning(
                        "Can't recover from AOF write error when the AOF fsync policy is 'always'. Exiting...",
                    );
                    std::process::exit(1);
                }
                // Tried: the replies waiting for this attempt may leave (Redis sends them
                // after a failed write too); later writes are refused until one succeeds.
                st.synced.send_replace(self.processed);
                return;
            }
            st.buffer_len.store(0, Ordering::Relaxed);
            self.needs_fsync = true;
            if !st.last_write_ok.swap(true, Ordering::Relaxed) {
                log::notice("AOF write error looks solved, Redis can write again.");
            }
            // Give back a buffer grown by a burst (as Redis frees an aof_buf over 4k).
            if self.buf.capacity() > 1 << 20 {
                self.buf = Vec::with_capacity(64 * 1024);
            }
        }
        self.written = self.processed;
        let skip =
            self.server.config.load().no_appendfsync_on_rewrite && st.rewrite_in_progress.load(Ordering::Relaxed);
        let due = match policy.as_str() {
            "always" => true,
            "everysec" => self.last_fsync.elapsed() >= Duration::from_secs(1),
            _ => false,
        };
        if self.needs_fsync && (force || (due && !skip)) {
            let synced =
                crate::util::fault::check(crate::util::fault::Point::AofFsync).and_then(|_| self.file.sync_data());
            match synced {
                Ok(()) => {
                    self.needs_fsync = false;
                    st.fsync_ok.store(true, Ordering::Relaxed);
                }
                Err(e) => {
                    let errno = crate::util::fault::errno_of(&e);
                    let text = crate::util::fault::strerror(errno);
                    if policy == "always" {
                        log::warning(&format!(
                            "Can't persist AOF for fsync error when the AOF fsync policy is 'always': {text}. Exiting..."
                        ));
                        std::process::exit(1);
                    }
                    st.last_errno.store(errno, Ordering::Relaxed);
                    if st.fsync_ok.swap(false, Ordering::Relaxed) {
                        log::warning(&format!("Fail to fsync the AOF file: {text}"));
                    }
                }
            }
            self.last_fsync = Instant::now();
        }
        // Until the first rewrite succeeds nothing is durable (Redis's fsynced_reploff stays 0
        // in AOF_WAIT_REWRITE): WAITAOF and FACK count it from the rewrite's end.
        if !self.needs_fsync && !self.wait_rewrite {
            st.fsynced.store(self.written, Ordering::Release);
        }
        st.synced.send_replace(self.written);
    }

    /// One attempt to append the whole buffer, as Redis's flushAppendOnlyFile: a short write is
    /// cut off again (ftruncate) so the file never ends in half a command. Err(errno) on failure
    /// (logged at most every 30 seconds); the buffer is then kept whole for the next attempt.
    fn write_buf(&mut self) -> Result<(), i32> {
        let server = self.server.clone();
        let st = &server.aof;
        let before = self.file_len.or_else(|| self.file.metadata().map(|m| m.len()).ok());
        let mut written = 0;
        let mut error = None;
        while written < self.buf.len() {
            let r = crate::util::fault::check(crate::util::fault::Point::AofWrite)
                .and_then(|_| self.file.write(&self.buf[written..]));
            match r {
                Ok(0) => break,
                Ok(n) => written += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    error = Some(crate::util::fault::errno_of(&e));
                    break;
                }
            }
        }
        if written == self.buf.len() {
            self.file_len = before.map(|l| l + written as u64);
            st.current_size.fetch_add(written as u64, Ordering::Relaxed);
            self.buf.clear();
            return Ok(());
        }
        static LAST_LOG_MS: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(i64::MIN / 2);
        let now = now_ms();
        let can_log = now - LAST_LOG_MS.load(Ordering::Relaxed) > 30_000;
        if can_log {
            LAST_LOG_MS.store(now, Ordering::Relaxed);
        }
        let errno = match (written, error) {
            (0, Some(errno)) => {
                if can_log {
                    log::warning(&format!("Error writing to the AOF file: {}", crate::util::fault::strerror(errno)));
                }
                errno
            }
            _ => {
                if can_log {
                    log::warning(&format!(
                        "Short write while writing to the AOF file: (nwritten={}, expected={})",
                        written,
                        self.buf.len()
                    ));
                }
                libc::ENOSPC
            }
        };
        self.file_len = None;
        if written > 0 {
            let cut = match before {
                Some(len) => self.file.set_len(len),
                None => Err(io::Error::from_raw_os_error(libc::EBADF)),
            };
            if let Err(e) = cut {
                // The partial write cannot be undone: keep it, and only what is left to write.
                if can_log {
                    log::warning(&format!(
                        "Could not remove short write from the append-only file.  Redis may refuse to load the AOF the next time it starts.  ftruncate: {}",
                        crate::util::fault::strerror(crate::util::fault::errno_of(&e))
                    ));
                }
                st.current_size.fetch_add(written as u64, Ordering::Relaxed);
                self.buf.drain(..written);
            }
        }
        Err(errno)
    }

    /// Drain the batches already published up to `seq` (they are queued: published before).
    fn catch_up(&mut self, effects: &mut UnboundedReceiver<EffectBatch>, seq: u64) {
        while self.processed < seq {
            match effects.try_recv() {
                Ok(b) => self.append(&b),
                Err(_) => break,
            }
        }
    }

    /// Open for appending (O_APPEND, so a write after a failed one's truncation never leaves
    /// a hole); `truncate` empties the file first.
    fn open_append(path: &Path, truncate: bool) -> io::Result<File> {
        let f = OpenOptions::new().create(true).append(true).open(path)?;
        if truncate {
            f.set_len(0)?;
        }
        Ok(f)
    }

    /// The rewrite point: continue in a new incr file (listed in the manifest now), or, while
    /// waiting for the first rewrite, start the temporary incr file afresh (the new base will
    /// hold everything before this point).
    fn switch(&mut self) -> Result<(), String> {
        self.flush(true);
        if self.wait_rewrite {
            self.file_len = None;
            self.file =
                Self::open_append(&self.dir.join(temp_incr_name(&self.fname)), true).map_err(|e| e.to_string())?;
            // A new file: its first command selects its database again.
            self.selected = None;
            return Ok(());
        }
        let before = self.manifest.clone();
        let name = self.manifest.new_incr(&self.fname);
        let opened = Self::open_append(&self.dir.join(&name), false)
            .and_then(|f| persist_manifest(&self.dir, &self.fname, &self.manifest).map(|_| f));
        match opened {
            Ok(f) => {
                self.file_len = None;
                self.file = f;
                self.selected = None;
                log::notice(&format!("Creating AOF incr file {name} on background rewrite"));
                Ok(())
            }
            Err(e) => {
                self.manifest = before;
                let _ = fs::remove_file(self.dir.join(&name));
                Err(format!("can't open the new AOF incr file {name}: {e}"))
            }
        }
    }

    /// Install the new base written by a rewrite.
    fn rewrite_done(&mut self, temp: &Path, rdb: bool) -> Result<(), String> {
        self.flush(true);
        let before = self.manifest.clone();
        let base = self.manifest.new_base(&self.fname, rdb);
        let result = (|| -> io::Result<()> {
            fs::rename(temp, self.dir.join(&base))?;
            if self.wait_rewrite {
                let incr = self.manifest.new_incr(&self.fname);
                fs::rename(self.dir.join(temp_incr_name(&self.fname)), self.dir.join(&incr))?;
            }
            self.manifest.incrs_to_history(true);
            persist_manifest(&self.dir, &self.fname, &self.manifest)
        })();
        if let Err(e) = result {
            self.manifest = before;
            return Err(e.to_string());
        }
        // The AOF is on now; `rewrite_ended` says so once the rewrite is over.
        self.wait_rewrite = false;
        delete_history(&self.server, &self.dir, &self.fname, &mut self.manifest);
        let base_size = file_size(&self.dir.join(&base));
        let incr_size = self.manifest.incrs.last().map_or(0, |i| file_size(&self.dir.join(&i.name)));
        // The size the next automatic rewrite's growth is measured from, as Redis's
        // aof_rewrite_base_size: the new base and what the incr file holds already.
        let st = &self.server.aof;
        st.base_size.store(base_size + incr_size, Ordering::Relaxed);
        st.current_size.store(base_size + incr_size, Ordering::Relaxed);
        Ok(())
    }

    /// The end of a rewrite (Redis's backgroundRewriteDoneHandler).
    fn rewrite_ended(&mut self, end: RewriteEnd) {
        let server = self.server.clone();
        let st = &server.aof;
        let was_waiting = self.wait_rewrite;
        let installed = match end {
            RewriteEnd::Written(temp, rdb) => {
                let r = self.rewrite_done(&temp, rdb);
                if r.is_err() {
                    let _ = fs::remove_file(&temp);
                }
                r.map_err(RewriteEnd::Failed)
            }
            other => Err(other),
        };
        record_rewrite_end(st, &installed);
        if installed.is_err() && self.wait_rewrite {
            // What the temporary incr file holds will be in the next rewrite's base: drop it,
            // and schedule that rewrite (the AOF is not on until one succeeds).
            let name = temp_incr_name(&self.fname);
            log::notice(&format!("Removing the temp incr aof file {name} in the background"));
            let _ = fs::remove_file(self.dir.join(&name));
            st.rewrite_scheduled.store(true, Ordering::Release);
        }
        st.rewrite_in_progress.store(false, Ordering::Release);
        if was_waiting && !self.wait_rewrite {
            // The temporary incr file, fsynced by the installation, is the AOF's now: WAITAOF
            // counts from here, when the rewrite is over as far as INFO tells.
            if !self.needs_fsync {
                st.fsynced.store(self.written, Ordering::Release);
            }
            st.wait_rewrite.store(false, Ordering::Release);
        }
    }

    /// Handle a control message; false to stop.
    fn control(&mut self, c: Ctl, effects: &mut UnboundedReceiver<EffectBatch>) -> bool {
        match c {
            Ctl::Switch { seq, done } => {
                self.catch_up(effects, seq);
                let _ = done.send(self.switch());
            }
            Ctl::RewriteDone(end) => self.rewrite_ended(end),
            Ctl::Gc { done } => {
                delete_history(&self.server, &self.dir, &self.fname, &mut self.manifest);
                let _ = done.send(());
            }
            Ctl::Sync { seq, done } => {
                self.catch_up(effects, seq);
                self.flush(true);
                let _ = done.send(());
            }
            Ctl::Stop { done } => {
                while let Ok(b) = effects.try_recv() {
                    self.append(&b);
                }
                self.flush(true);
                let _ = done.send(());
                return false;
            }
        }
        true
    }

    /// The writer's loop, on its own thread.
    fn run(mut self, mut effects: UnboundedReceiver<EffectBatch>, mut ctl: UnboundedReceiver<Ctl>) {
        let rt = match tokio::runtime::Builder::new_current_thread().enable_time().build() {
            Ok(rt) => rt,
            Err(e) => {
                log::warning(&format!("Can't start the AOF writer: {e}"));
                return;
            }
        };
        rt.block_on(async move {
            let mut tick = crate::util::timer::interval(Duration::from_secs(1));
            loop {
                tokio::select! {
                    biased;
                    c = ctl.recv() => {
                        let Some(c) = c else { break };
                        if !self.control(c, &mut effects) {
                            break;
                        }
                    }
                    b = effects.recv() => {
                        let Some(b) = b else { break };
                        self.append(&b);
                        while let Ok(b) = effects.try_recv() {
                            self.append(&b);
                        }
                        self.flush(false);
                    }
                    _ = tick.tick() => self.flush(false),
                }
            }
        });
    }
}

/// The temporary incr file of an AOF waiting for its first rewrite.
fn temp_incr_name(fname: &str) -> String {
    format!("temp-{fname}.incr")
}

/// Start the writer thread on `manifest`, appending to `file`, subscribed to the effect stream
/// at `seq` with `effects`.
fn spawn_writer(
    server: &Arc<Server>,
    manifest: Manifest,
    file: File,
    wait_rewrite: bool,
    (seq, effects): (u64, UnboundedReceiver<EffectBatch>),
) -> io::Result<()> {
    let (dir, fname) = paths(server);
    let (tx, rx) = unbounded_channel();
    let st = &server.aof;
    st.synced.send_replace(seq);
    st.fsynced.store(seq, Ordering::Release);
    st.wait_rewrite.store(wait_rewrite, Ordering::Release);
    // A new writer starts with a clean slate, as Redis's startAppendOnly.
    if !st.fsync_ok.swap(true, Ordering::Relaxed) {
        log::warning("AOF reopen, just ignore the AOF fsync error in bio job");
    }
    if !st.last_write_ok.swap(true, Ordering::Relaxed) {
        log::warning("AOF reopen, just ignore the last error.");
    }
    st.buffer_len.store(0, Ordering::Relaxed);
    *st.ctl.lock() = Some(tx);
    st.on.store(true, Ordering::Release);
    apply_config(server);
    let w = Writer {
        server: server.clone(),
        dir,
        fname,
        manifest,
        file,
        file_len: None,
        wait_rewrite,
        buf: Vec::with_capacity(64 * 1024),
        selected: None,
        processed: seq,
        written: seq,
        needs_fsync: false,
        last_fsync: Instant::now(),
        last_ts: 0,
    };
    std::thread::Builder::new().name("ferrous-aof".into()).spawn(move || w.run(effects, rx)).map(|_| ())
}

/// Re-read `appendfsync` (after start-up or CONFIG SET).
pub fn apply_config(server: &Server) {
    let st = &server.aof;
    let always = st.on.load(Ordering::Acquire) && server.config.load().appendfsync_name() == "always";
    st.fsync_always.store(always, Ordering::Release);
}

/// Open the AOF for appending at start-up, after loading (nothing else runs yet): the last incr
/// file of the manifest, or a new one; with no AOF at all, an empty base is created first.
pub fn open_at_startup(server: &Arc<Server>, mut manifest: Manifest) -> Result<(), String> {
    let (dir, fname) = paths(server);
    fs::create_dir_all(&dir).map_err(|e| format!("Can't open or create append-only dir {}: {e}", dir.display()))?;
    if manifest.base.is_none() && manifest.incrs.is_empty() {
        let preamble = server.config.load().aof_use_rdb_preamble;
        let name = manifest.new_base(&fname, preamble);
        let functions = server.scripting.library_sources();
        let pit = PointInTime::begin(&server.keyspace, &functions, SaveOptions::from_config(&server.config.load()));
        write_base(server, pit, &dir.join(&name), preamble)?;
        log::notice(&format!("Creating AOF base file {name} on server start"));
    }
    let created = manifest.incrs.is_empty();
    if created {
        manifest.new_incr(&fname);
    }
    let incr = manifest.incrs.last().map(|i| i.name.clone()).unwrap_or_default();
    let file = Writer::open_append(&dir.join(&incr), false)
        .map_err(|e| format!("Can't open the append-only file {incr}: {e}"))?;
    persist_manifest(&dir, &fname, &manifest).map_err(|e| format!("Can't persist the AOF manifest: {e}"))?;
    log::notice(&format!("{} AOF incr file {incr} on server start", if created { "Creating" } else { "Opening" }));
    delete_history(server, &dir, &fname, &mut manifest);
    let st = &server.aof;
    let base = manifest.base.as_ref().map_or(0, |b| file_size(&dir.join(&b.name)));
    st.base_size.store(base, Ordering::Relaxed);
    st.current_size.store(manifest.files().map(|f| file_size(&dir.join(&f.name))).sum(), Ordering::Relaxed);
    let sub = server.keyspace.effects.subscribe_at();
    spawn_writer(server, manifest, file, false, sub).map_err(|e| format!("Can't start the AOF writer: {e}"))
}

/// Write a base file from a point-in-time capture: the RDB itself, or the commands rebuilding
/// it. The file is fsynced.
fn write_base(server: &Server, pit: PointInTime, path: &Path, preamble: bool) -> Result<(), String> {
    let result = (|| -> io::Result<()> {
        let mut w = io::BufWriter::with_capacity(1 << 16, File::create(path)?);
        if preamble {
            pit.write(&server.keyspace, &mut w)?;
        } else {
            let mut rdb = Vec::new();
            pit.write(&server.keyspace, &mut rdb)?;
            let opts = crate::persistence::rdb_load::LoadOptions {
                databases: server.keyspace.databases(),
                limits: crate::persistence::rdb_value::Limits::from_config(&server.config.load()),
                now_ms: i64::MIN,
            };
            let loaded =
                crate::persistence::rdb_load::parse(&rdb, &opts).map_err(|e| io::Error::other(e.to_string()))?;
            // A base of commands starts with its time, as Redis's rewriteAppendOnlyFileRio.
            if server.config.load().aof_timestamp_enabled {
                w.write_all(format!("#TS:{}\r\n", now_ms() / 1000).as_bytes())?;
            }
            w.write_all(&crate::persistence::aof_rewrite::commands(&loaded))?;
        }
        w.flush()?;
        w.get_ref().sync_all()
    })();
    if result.is_err() {
        let _ = fs::remove_file(path);
    }
    result.map_err(|e| e.to_string())
}

/// A writer that fails at once: releases a capture without serialising it.
struct Refuse;

impl Write for Refuse {
    fn write(&mut self, _: &[u8]) -> io::Result<usize> {
        Err(io::Error::other("aborted"))
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Start a background rewrite (BGREWRITEAOF, auto rewrite, AOF turned on). With AOF off,
/// `enable` starts the writer at the rewrite point, waiting for this first rewrite. The caller
/// holds no shard lock.
pub fn rewrite(server: &Server, enable: bool) -> Result<(), String> {
    let Some(server) = server.me.upgrade() else {
        return Err("the server is shutting down".into());
    };
    let st = &server.aof;
    if st.rewrite_in_progress.swap(true, Ordering::SeqCst) {
        return Err("Background append only file rewriting already in progress".into());
    }
    if server.saving.in_progress.load(Ordering::SeqCst) {
        st.rewrite_in_progress.store(false, Ordering::SeqCst);
        return Err("a background save is in progress".into());
    }
    // A rewrite that cannot start stays scheduled, as Redis clears aof_rewrite_scheduled only
    // once its child runs.
    let was_scheduled = st.rewrite_scheduled.swap(false, Ordering::Relaxed);
    st.rewrite_started_ms.store(now_ms(), Ordering::Relaxed);
    let (dir, fname) = paths(&server);
    let opts = SaveOptions::from_config(&server.config.load());
    let preamble = server.config.load().aof_use_rdb_preamble;
    // With the AOF off (and not being turned on), a rewrite only writes a new base, as Redis.
    let standalone = !enable && !st.on.load(Ordering::Acquire);
    let at_point = || -> Result<(), String> {
        if standalone {
            fs::create_dir_all(&dir).map_err(|e| e.to_string())
        } else if enable {
            fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
            let text = fs::read(dir.join(manifest_name(&fname))).ok();
            let manifest = text.map(|t| Manifest::parse(&t)).transpose()?.unwrap_or_default();
            let file = Writer::open_append(&dir.join(temp_incr_name(&fname)), true).map_err(|e| e.to_string())?;
            let sub = server.keyspace.effects.subscribe_at();
            spawn_writer(&server, manifest, file, true, sub).map_err(|e| e.to_string())
        } else {
            let (tx, rx) = std::sync::mpsc::channel();
            if !st.send(Ctl::Switch { seq: server.keyspace.effects.seq(), done: tx }) {
                return Err("the AOF is off".into());
            }
            rx.recv().unwrap_or_else(|_| Err("the AOF writer stopped".into()))
        }
    };
    let functions = server.scripting.library_sources();
    let fork_start = std::time::Instant::now();
    let (mut pit, switched) = PointInTime::begin_then(&server.keyspace, &functions, opts, at_point);
    server.count_fork(fork_start);
    // rdb-key-save-delay slows a rewrite too, as Redis's rewriteAppendOnlyFileRio / rdbSaveRio.
    pit.key_delay = Some(super::saving::key_delay(&server));
    if let Err(e) = switched {
        let _ = pit.write(&server.keyspace, &mut Refuse);
        st.rewrite_in_progress.store(false, Ordering::SeqCst);
        st.last_bgrewrite_ok.store(false, Ordering::Relaxed);
        if was_scheduled {
            st.rewrite_scheduled.store(true, Ordering::Relaxed);
        }
        log::warning(&format!("Can't rewrite append only file in background: {e}"));
        return Err(e);
    }
    let s = server.clone();
    // The first rewrite of an AOF being turned on keeps the normal priority, as a full sync
    // does: until it ends the AOF holds nothing durable and SHUTDOWN refuses to exit ("Writing
    // initial AOF"), so it must not starve behind other busy processes (at snapshot-nice 19 it
    // gets ~1.5% of a contended core).
    let nice = if enable { 0 } else { server.config.load().snapshot_nice as i32 };
    *st.rewrite_abort.lock() = Some(pit.abort.clone());
    let progress = pit.progress.clone();
    let child = SaveChild::start(&server, "redis-aof-rewrite", pit.abort.clone(), &progress);
    let child_pid = child.pid();
    let spawned = std::thread::Builder::new().name("ferrous-aofrw".into()).spawn(move || {
        crate::util::thread_priority::lower_current(nice);
        let temp = dir.join(format!("temp-rewriteaof-bg-{child_pid}.aof"));
        let end = match write_base(&s, pit, &temp, preamble) {
            Ok(()) => RewriteEnd::Written(temp.clone(), preamble),
            Err(e) => child.killed_by().map_or(RewriteEnd::Failed(e), RewriteEnd::Killed),
        };
        drop(child);
        *s.aof.rewrite_abort.lock() = None;
        if matches!(end, RewriteEnd::Written(..)) {
            s.aof.last_cow.store(progress.cow_bytes.load(Ordering::Relaxed), Ordering::Relaxed);
            log::notice("Background AOF rewrite terminated with success");
        }
        if standalone {
            finish_standalone(&s, &dir, &fname, end);
        } else if !s.aof.send(Ctl::RewriteDone(end)) {
            // The AOF was turned off meanwhile.
            let _ = fs::remove_file(&temp);
            s.aof.rewrite_in_progress.store(false, Ordering::SeqCst);
        }
    });
    match spawned {
        Ok(_) => {
            log::notice(&format!("Background append only file rewriting started by pid {child_pid}"));
            Ok(())
        }
        Err(e) => {
            *st.rewrite_abort.lock() = None;
            st.rewrite_in_progress.store(false, Ordering::SeqCst);
            Err(e.to_string())
        }
    }
}

/// Stop the rewrite in progress, if any, as Redis's killAppendOnlyChild (appendonly no,
/// shutdown): its file is dropped. With `wait`, return once it has stopped, as Redis waits
/// for its child (the caller must hold no shard lock: the rewrite releases its capture).
pub fn kill_rewrite(server: &Server, wait: bool) {
    let st = &server.aof;
    let Some(abort) = st.rewrite_abort.lock().clone() else { return };
    log::notice(&format!("Killing running AOF rewrite child: {}", std::process::id()));
    abort.store(true, Ordering::SeqCst);
    // The rewrite looks at the flag between shards and every 20 ms of rdb-key-save-delay.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while wait && st.rewrite_in_progress.load(Ordering::SeqCst) && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}

/// A rewrite's end in INFO's state: its time, its status and the count of failures in a row
/// behind the automatic rewrites' back-off (a rewrite stopped on purpose changes neither).
fn record_rewrite_end(st: &AofState, result: &Result<(), RewriteEnd>) {
    let secs = (now_ms() - st.rewrite_started_ms.load(Ordering::Relaxed)) / 1000;
    st.last_rewrite_time_sec.store(secs, Ordering::Relaxed);
    match result {
        Ok(()) => {
            st.last_bgrewrite_ok.store(true, Ordering::Relaxed);
            st.consecutive_failures.store(0, Ordering::Relaxed);
            st.rewrites.fetch_add(1, Ordering::Relaxed);
            log::notice("Background AOF rewrite finished successfully");
        }
        Err(end) if end.report_failure() => {
            st.last_bgrewrite_ok.store(false, Ordering::Relaxed);
            st.consecutive_failures.fetch_add(1, Ordering::Relaxed);
        }
        Err(_) => {}
    }
}

/// End of a rewrite with the AOF off: the new base replaces everything in the manifest.
fn finish_standalone(server: &Server, dir: &Path, fname: &str, end: RewriteEnd) {
    let st = &server.aof;
    let result = match end {
        RewriteEnd::Written(temp, rdb) => (|| {
            let text = fs::read(dir.join(manifest_name(fname))).ok();
            let mut m = text.map(|t| Manifest::parse(&t)).transpose()?.unwrap_or_default();
            let base = m.new_base(fname, rdb);
            m.incrs_to_history(false);
            fs::rename(&temp, dir.join(&base)).map_err(|e| e.to_string())?;
            persist_manifest(dir, fname, &m).map_err(|e| e.to_string())?;
            delete_history(server, dir, fname, &mut m);
            Ok(())
        })()
        .map_err(RewriteEnd::Failed),
        other => Err(other),
    };
    record_rewrite_end(st, &result);
    st.rewrite_in_progress.store(false, Ordering::SeqCst);
}

/// Delete the history files now, unless `aof-disable-auto-gc` keeps them (CONFIG SET
/// aof-disable-auto-gc no, DEBUG LOADAOF): the writer's manifest while the AOF is on, the one
/// on disk otherwise.
pub fn gc_history(server: &Server) {
    let (tx, rx) = std::sync::mpsc::channel();
    if server.aof.send(Ctl::Gc { done: tx }) {
        let _ = rx.recv();
        return;
    }
    let (dir, fname) = paths(server);
    let Ok(text) = fs::read(dir.join(manifest_name(&fname))) else { return };
    if let Ok(mut m) = Manifest::parse(&text) {
        delete_history(server, &dir, &fname, &mut m);
    }
}

/// Whether automatic rewrites wait after repeated failures (Redis's aofRewriteLimited): from
/// the third failure in a row, the next automatic rewrite waits 1 minute, then 2, 4, ... up
/// to 60; BGREWRITEAOF still runs at once.
fn rewrite_limited(server: &Server) -> bool {
    const THRESHOLD: u64 = 3;
    const MAX_MINUTES: i64 = 60;
    let st = &server.aof;
    let mut limit = st.limit.lock();
    if st.consecutive_failures.load(Ordering::Relaxed) < THRESHOLD {
        *limit = (0, 0);
        return false;
    }
    let now = now_ms() / 1000;
    if limit.1 != 0 {
        if now < limit.1 {
            return true;
        }
        limit.1 = 0;
        return false;
    }
    let minutes = if limit.0 == 0 { 1 } else { (limit.0 * 2).min(MAX_MINUTES) };
    *limit = (minutes, now + minutes * 60);
    log::warning(&format!(
        "Background AOF rewrite has repeatedly failed and triggered the limit, will retry in {minutes} minutes"
    ));
    true
}

/// Ask the writer to write and fsync every effect published so far, and wait for it.
pub fn sync(server: &Server) {
    let (tx, rx) = std::sync::mpsc::channel();
    if server.aof.send(Ctl::Sync { seq: server.keyspace.effects.seq(), done: tx }) {
        let _ = rx.recv();
    }
}

/// Stop the writer after a last write and fsync (appendonly no, shutdown).
pub fn stop(server: &Server) {
    let st = &server.aof;
    let (tx, rx) = std::sync::mpsc::channel();
    if st.send(Ctl::Stop { done: tx }) {
        let _ = rx.recv();
    }
    *st.ctl.lock() = None;
    st.on.store(false, Ordering::Release);
    st.wait_rewrite.store(false, Ordering::Release);
    st.fsync_always.store(false, Ordering::Release);
    st.synced.send_replace(u64::MAX);
}

/// CONFIG SET appendonly: start (with a rewrite) or stop the AOF. `locked`: the caller holds
/// every shard lock (inside EXEC), so the start is left to the cron.
pub fn config_changed(server: &Server, locked: bool) {
    let want = server.config.load().appendonly;
    let st = &server.aof;
    if want && !st.on.load(Ordering::Acquire) {
        if locked || rewrite(server, true).is_err() {
            log::notice("AOF was enabled but there is already another background operation. An AOF background was scheduled to start when possible.");
            st.start_pending.store(true, Ordering::Release);
        }
    } else if !want {
        st.start_pending.store(false, Ordering::Release);
        if st.on.load(Ordering::Acquire) {
            stop(server);
            kill_rewrite(server, !locked);
            log::notice("Background append only file rewriting stopped: AOF turned off");
        }
    }
    apply_config(server);
}

/// Cron step: a pending start, a scheduled rewrite, or an automatic one by growth.
pub fn cron(server: &Server) {
    let st = &server.aof;
    if st.rewrite_in_progress.load(Ordering::Acquire) || server.saving.in_progress.load(Ordering::Acquire) {
        return;
    }
    if st.start_pending.load(Ordering::Acquire) {
        if server.config.load().appendonly && rewrite(server, true).is_ok() {
            st.start_pending.store(false, Ordering::Release);
        }
        return;
    }
    // A scheduled BGREWRITEAOF runs whether or not the AOF is on, as in Redis.
    if st.rewrite_scheduled.load(Ordering::Acquire) {
        if !rewrite_limited(server) {
            let _ = rewrite(server, false);
        }
        return;
    }
    if !st.on.load(Ordering::Acquire) {
        return;
    }
    let (perc, min): (u64, u64) = {
        let c = server.config.load();
        (c.auto_aof_rewrite_percentage as u64, c.auto_aof_rewrite_min_size as u64)
    };
    if st.wait_rewrite.load(Ordering::Acquire) {
        // Waiting for the first rewrite: a failed one scheduled the next (above).
        return;
    }
    let current = st.current_size.load(Ordering::Relaxed);
    if perc > 0 && current > min {
        let base = st.base_size.load(Ordering::Relaxed).max(1);
        let growth = (current.saturating_sub(base)) * 100 / base;
        if growth >= perc && !rewrite_limited(server) {
            log::notice(&format!("Starting automatic rewriting of AOF on {growth}% growth"));
            let _ = rewrite(server, false);
        }
    }
}

/// INFO persistence's AOF lines.
pub fn info(server: &Server, out: &mut String) {
    use std::fmt::Write as _;
    let st = &server.aof;
    let in_progress = st.rewrite_in_progress.load(Ordering::Relaxed);
    let current = if in_progress { (now_ms() - st.rewrite_started_ms.load(Ordering::Relaxed)) / 1000 } else { -1 };
    let ok = |b: &AtomicBool| if b.load(Ordering::Relaxed) { "ok" } else { "err" };
    let _ = write!(
        out,
        "aof_enabled:{}\r\naof_rewrite_in_progress:{}\r\naof_rewrite_scheduled:{}\r\n\
         aof_last_rewrite_time_sec:{}\r\naof_current_rewrite_time_sec:{}\r\naof_last_bgrewrite_status:{}\r\n\
         aof_rewrites:{}\r\naof_rewrites_consecutive_failures:{}\r\naof_last_write_status:{}\r\naof_last_cow_size:{}\r\n",
        server.config.load().appendonly as u8,
        in_progress as u8,
        (st.rewrite_scheduled.load(Ordering::Relaxed) || st.start_pending.load(Ordering::Relaxed)) as u8,
        st.last_rewrite_time_sec.load(Ordering::Relaxed),
        current,
        ok(&st.last_bgrewrite_ok),
        st.rewrites.load(Ordering::Relaxed),
        st.consecutive_failures.load(Ordering::Relaxed),
        if st.last_write_ok.load(Ordering::Relaxed) && st.fsync_ok.load(Ordering::Relaxed) { "ok" } else { "err" },
        st.last_cow.load(Ordering::Relaxed),
    );
}

/// INFO persistence's AOF size lines (shown while appendonly is yes, after the module lines).
pub fn info_sizes(server: &Server, out: &mut String) {
    use std::fmt::Write as _;
    if !server.config.load().appendonly {
        return;
    }
    let st = &server.aof;
    let _ = write!(
        out,
        "aof_current_size:{}\r\naof_base_size:{}\r\naof_pending_rewrite:{}\r\naof_buffer_length:{}\r\n\
         aof_pending_bio_fsync:0\r\naof_delayed_fsync:{}\r\n",
        st.current_size.load(Ordering::Relaxed),
        st.base_size.load(Ordering::Relaxed),
        st.rewrite_scheduled.load(Ordering::Relaxed) as u8,
        st.buffer_len.load(Ordering::Relaxed),
        st.delayed_fsync.load(Ordering::Relaxed),
    );
}
