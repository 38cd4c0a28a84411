//! RDB persistence of the running server: SAVE (synchronous, under every shard lock), BGSAVE
//! (a point-in-time image written by a background thread while the server keeps serving, see
//! [`rdb::PointInTime`]: shards are serialised copy-on-write), the save points the cron
//! checks against the dirty counter, loading the file at start-up and DEBUG RELOAD, and the
//! state INFO persistence reports. Files carry the function libraries too (written before the
//! databases, installed through the scripting engine when loading).
//!
//! Files are written as Redis does: to `temp-<pid>.rdb` (a BGSAVE's to `temp-<child pid>.rdb`,
//! named after its stand-in child, see `save_child`, or `temp-bg-<pid>.rdb` without one, so a
//! SAVE during a BGSAVE never shares its temporary file) in `dir`, flushed, fsynced, then
//! renamed over `dir/dbfilename`, and the directory is fsynced.

use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::time::Instant;

use super::save_child::{self, SaveChild};
use super::staged_load::{self, StageError, Staged};
use super::{log, Server};
use crate::config::Config;
use crate::keyspace::{now_ms, Db};
use crate::persistence::rdb::{self, SaveOptions};
use crate::persistence::rdb_load::{self, LoadOptions};
use crate::persistence::rdb_value::Limits;
use crate::persistence::rdb_window::Window;
use crate::persistence::reader::{RdbError, Report};

/// Redis waits this long after a failed BGSAVE before a save point may trigger another.
const BGSAVE_RETRY_DELAY_S: i64 = 5;

/// Persistence state (INFO persistence, LASTSAVE).
pub struct SaveState {
    /// Unix seconds of the last successful save (start-up time before the first).
    pub lastsave: AtomicI64,
    pub last_bgsave_ok: AtomicBool,
    /// `stop-writes-on-bgsave-error yes` with save points configured: a failed BGSAVE refuses
    /// writes (MISCONF) until one succeeds.
    pub stop_writes_on_error: AtomicBool,
    pub in_progress: AtomicBool,
    /// BGSAVE SCHEDULE: run a BGSAVE as soon as none is in progress.
    pub scheduled: AtomicBool,
    /// Unix ms the running BGSAVE started at.
    pub bgsave_started_ms: AtomicI64,
    pub last_bgsave_time_sec: AtomicI64,
    /// Unix seconds of the last BGSAVE attempt.
    pub last_bgsave_try: AtomicI64,
    pub saves: AtomicU64,
    pub last_load_keys_loaded: AtomicU64,
    pub last_load_keys_expired: AtomicU64,
    /// Stops the running background save (Redis kills its RDB child).
    pub child_abort: parking_lot::Mutex<Option<std::sync::Arc<AtomicBool>>>,
    /// The running background save's temporary file (removed at shutdown, as Redis removes
    /// its child's).
    pub temp_file: parking_lot::Mutex<Option<PathBuf>>,
    /// The progress of the running save, AOF rewrite or transfer (published by its
    /// [`SaveChild`]).
    pub child_info: parking_lot::Mutex<Option<std::sync::Arc<rdb::SaveProgress>>>,
    /// The copy-on-write bytes of the last successful save (INFO's rdb_last_cow_size).
    pub last_cow: AtomicU64,
}

impl Default for SaveState {
    fn default() -> Self {
        SaveState {
            lastsave: AtomicI64::new(now_ms() / 1000),
            last_bgsave_ok: AtomicBool::new(true),
            stop_writes_on_error: AtomicBool::new(true),
            in_progress: AtomicBool::new(false),
            scheduled: AtomicBool::new(false),
            bgsave_started_ms: AtomicI64::new(0),
            last_bgsave_time_sec: AtomicI64::new(-1),
            last_bgsave_try: AtomicI64::new(0),
            saves: AtomicU64::new(0),
            last_load_keys_loaded: AtomicU64::new(0),
            last_load_keys_expired: AtomicU64::new(0),
            child_abort: parking_lot::Mutex::new(None),
            temp_file: parking_lot::Mutex::new(None),
            child_info: parking_lot::Mutex::new(None),
            last_cow: AtomicU64::new(0),
        }
    }
}

/// `dir/dbfilename`.
pub fn rdb_path(cfg: &Config) -> PathBuf {
    Path::new(&cfg.dir).join(&cfg.dbfilename)
}

/// The configured save points: (seconds, changes) pairs.
pub fn save_points(cfg: &Config) -> Vec<(i64, u64)> {
    cfg.save.iter().map(|&(s, c)| (s, c.max(0) as u64)).collect()
}

/// Write `path` atomically through the temporary file `temp_name` in the same directory.
pub fn write_atomically(
    path: &Path,
    temp_name: &str,
    write: impl FnOnce(&mut BufWriter<File>) -> io::Result<()>,
) -> io::Result<()> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let temp = dir.join(temp_name);
    let result = (|| {
        let mut w = BufWriter::with_capacity(1 << 16, File::create(&temp)?);
        write(&mut w)?;
        w.flush()?;
        w.get_ref().sync_all()?;
        drop(w);
        fs::rename(&temp, path)?;
        // Make the rename itself durable.
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&temp);
    }
    result
}

/// The dirty counter drops by what a save captured (changes made meanwhile stay counted).
fn saved(server: &Server, dirty_before: u64) {
    server.keyspace.stats.dirty.sub_saturating(dirty_before);
    let st = &server.saving;
    st.lastsave.store(now_ms() / 1000, Ordering::Relaxed);
    st.saves.fetch_add(1, Ordering::Relaxed);
}

/// SAVE: serialise through `db` (every shard locked: a point-in-time image) and write the file.
pub fn save(server: &Server, db: &mut Db) -> Result<(), String> {
    let (path, mut opts) = {
        let cfg = server.config.load();
        (rdb_path(&cfg), SaveOptions::from_config(&cfg))
    };
    opts.repl = crate::replication::save_info(server);
    let dirty_before = server.keyspace.stats.dirty.load(Ordering::Relaxed);
    let functions = server.scripting.library_sources();
    let databases = server.keyspace.databases();
    let temp = format!("temp-{}.rdb", std::process::id());
    // rdb-key-save-delay (a testing aid) slows a foreground save too, as Redis's rdbSaveRio:
    // the temporary file stays meanwhile.
    let delay_us = server.config.load().rdb_key_save_delay;
    let write = |w: &mut BufWriter<File>| {
        crate::util::fault::check(crate::util::fault::Point::RdbSave)?;
        rdb::write_snapshot(db, databases, &functions, opts, w)?;
        if delay_us > 0 {
            let current = db.index;
            let keys: usize = (0..databases)
                .map(|i| {
                    db.index = i;
                    db.len()
                })
                .sum();
            db.index = current;
            std::thread::sleep(std::time::Duration::from_micros(delay_us as u64 * keys as u64));
        }
        Ok(())
    };
    match write_atomically(&path, &temp, write) {
        Ok(()) => {
            saved(server, dirty_before);
            db.saved_now();
            server.saving.last_bgsave_ok.store(true, Ordering::Relaxed);
            log::notice("DB saved on disk");
            Ok(())
        }
        Err(e) => {
            log::warning(&format!("Failed saving the DB to {}: {e}", path.display()));
            Err(e.to_string())
        }
    }
}

/// SAVE from a context holding no shard lock (SHUTDOWN, signals).
pub fn save_locking(server: &Server) -> Result<(), String> {
    let mut db = server.keyspace.lock_all(0);
    save(server, &mut db)
}

/// BGSAVE: fix the point in time and start the background save. Errs when one is already
/// running. The caller must hold no shard lock.
pub fn bgsave(server: &Server) -> Result<(), &'static str> {
    bgsave_with(server, BgHooks::default()).map(|_| ())
}

/// What a background save does besides writing the file (a save for replicas: note the
/// replication offset at the point in time, hand the file to the replicas when done).
#[derive(Default)]
pub struct BgHooks {
    /// Run at the point in time, every shard locked.
    pub at_point: Option<Box<dyn FnOnce() + Send>>,
    /// Run on the saving thread once the file is written (true) or the save failed (false).
    pub done: Option<Box<dyn FnOnce(bool) + Send>>,
}

/// [`bgsave`] with hooks. Returns the flag that stops the save early (Redis kills its child
/// when no replica wants the file any more and no save point asked for it).
pub fn bgsave_with(server: &Server, hooks: BgHooks) -> Result<std::sync::Arc<AtomicBool>, &'static str> {
    let st = &server.saving;
    if st.in_progress.swap(true, Ordering::SeqCst) {
        return Err("Background save already in progress");
    }
    // One point-in-time capture at a time: an AOF rewrite uses the same machinery.
    if server.aof.rewrite_in_progress.load(Ordering::SeqCst) {
        st.in_progress.store(false, Ordering::SeqCst);
        return Err("Another child process is active (AOF?): can't BGSAVE right now. Use BGSAVE SCHEDULE in order to schedule a BGSAVE whenever possible.");
    }
    let Some(server) = server.me.upgrade() else {
        st.in_progress.store(false, Ordering::Release);
        return Err("Background save failed: the server is shutting down");
    };
    st.last_bgsave_try.store(now_ms() / 1000, Ordering::Relaxed);
    st.bgsave_started_ms.store(now_ms(), Ordering::Relaxed);
    let (path, opts) = {
        let cfg = server.config.load();
        (rdb_path(&cfg), SaveOptions::from_config(&cfg))
    };
    let start = Instant::now();
    // Read just before the point in time: changes in between stay counted (the safe side).
    let dirty_before = server.keyspace.stats.dirty.load(Ordering::Relaxed);
    let functions = server.scripting.library_sources();
    let BgHooks { at_point, done } = hooks;
    let (mut snapshot, repl) = rdb::PointInTime::begin_then(&server.keyspace, &functions, opts, || {
        let repl = crate::replication::save_info(&server);
        if let Some(f) = at_point {
            f();
        }
        repl
    });
    server.count_fork(start);
    snapshot.set_repl(repl);
    snapshot.key_delay = Some(key_delay(&server));
    let abort = snapshot.abort.clone();
    *st.child_abort.lock() = Some(abort.clone());
    let nice = server.config.load().snapshot_nice as i32;
    let progress = snapshot.progress.clone();
    let child = SaveChild::start(&server, "redis-rdb-bgsave", abort.clone(), &progress);
    let child_pid = child.pid();
    // Named after the child as Redis's; without one, apart from a SAVE's `temp-<pid>.rdb`.
    let temp = match child.has_process() {
        true => format!("temp-{child_pid}.rdb"),
        false => format!("temp-bg-{child_pid}.rdb"),
    };
    *st.temp_file.lock() = Some(path.with_file_name(&temp));
    let spawned = std::thread::Builder::new().name("ferrous-bgsave".into()).spawn(move || {
        crate::util::thread_priority::lower_current(nice);
        let abort = snapshot.abort.clone();
        let result = write_atomically(&path, &temp, |w| {
            let written = match crate::util::fault::check(crate::util::fault::Point::RdbSave) {
                Ok(()) => snapshot.write(&server.keyspace, w),
                // An injected failure still releases the capture (through a failing writer).
                Err(e) => snapshot.write(&server.keyspace, &mut crate::util::fault::Failing(e.kind())),
            };
            written.map(|_| ())
        });
        let st = &server.saving;
        let ok = result.is_ok();
        // The status is published once the save is over (below; Redis's done handler does both
        // at once): a client that has read `rdb_last_bgsave_status:err` may BGSAVE again.
        let mut status = None;
        match result {
            Ok(()) => {
                saved(&server, dirty_before);
                st.last_cow.store(progress.cow_bytes.load(Ordering::Relaxed), Ordering::Relaxed);
                status = Some(true);
                log::notice("Background saving terminated with success");
            }
            Err(_) if abort.load(Ordering::Relaxed) => {
                // Stopped on purpose (FLUSHALL) as Redis's SIGUSR1, which is no error; its child
                // killed by anything else is one.
                let signal = child.killed_by().unwrap_or(save_child::SIGUSR1);
                log::warning(&format!("Background saving terminated by signal {signal}"));
                if signal != save_child::SIGUSR1 {
                    status = Some(false);
                }
            }
            Err(e) => {
                status = Some(false);
                log::warning(&format!("Background saving error: {} ({e})", path.display()));
            }
        }
        // Before another save may replace the file (replicas open it here).
        if let Some(f) = done {
            f(ok);
        }
        drop(child);
        *st.child_abort.lock() = None;
        *st.temp_file.lock() = None;
        st.last_bgsave_time_sec.store(start.elapsed().as_secs() as i64, Ordering::Relaxed);
        st.in_progress.store(false, Ordering::Release);
        if let Some(ok) = status {
            st.last_bgsave_ok.store(ok, Ordering::Release);
        }
    });
    match spawned {
        Ok(_) => {
            log::notice(&format!("Background saving started by pid {child_pid}"));
            Ok(abort)
        }
        Err(e) => {
            log::warning(&format!("Can't save in background: {e}"));
            *st.temp_file.lock() = None;
            st.in_progress.store(false, Ordering::Release);
            st.last_bgsave_ok.store(false, Ordering::Relaxed);
            Err("Background save failed to start")
        }
    }
}

/// Stop the background save in progress, if any (FLUSHALL: Redis kills its RDB child).
pub fn kill_child(server: &Server) {
    if let Some(a) = server.saving.child_abort.lock().as_ref() {
        a.store(true, Ordering::SeqCst);
    }
}

/// Cron step: a scheduled BGSAVE, or one triggered by a save point.
pub fn cron(server: &Server) {
    let st = &server.saving;
    if st.in_progress.load(Ordering::Acquire) || server.aof.rewrite_in_progress.load(Ordering::Acquire) {
        return;
    }
    if st.scheduled.swap(false, Ordering::AcqRel) {
        let _ = bgsave(server);
        return;
    }
    let points = save_points(&server.config.load());
    let dirty = server.keyspace.stats.dirty.load(Ordering::Relaxed);
    let now = now_ms() / 1000;
    let since = now - st.lastsave.load(Ordering::Relaxed);
    let may_retry = st.last_bgsave_ok.load(Ordering::Relaxed)
        || now - st.last_bgsave_try.load(Ordering::Relaxed) > BGSAVE_RETRY_DELAY_S;
    if let Some((secs, _)) = points.iter().find(|&&(secs, changes)| dirty >= changes && since > secs && may_retry) {
        log::notice(&format!("{dirty} changes in {secs} seconds. Saving..."));
        let _ = bgsave(server);
    }
}

/// Options for loading with the server's configuration.
pub fn load_options(server: &Server) -> LoadOptions {
    // Only a master drops the keys that expired while stored (Redis's iAmMaster in rdbLoad): a
    // replica keeps them until its master's DELs arrive (a cluster node asks its nodes.conf).
    let master = match server.cluster.get() {
        Some(c) => !c.read(|st| st.is_myself_slave()),
        None => !server.replica.is_replica(),
    };
    LoadOptions {
        databases: server.keyspace.databases(),
        limits: Limits::from_config(&server.config.load()),
        now_ms: if master { now_ms() } else { i64::MIN },
    }
}

/// Read and install the RDB file at `path` through `db` (every shard locked): its function
/// libraries first (all or nothing; a library that fails to load, or exists already without
/// `merge`, fails the load with nothing changed, as Redis refuses such a file), then its keys.
/// Into an empty keyspace (DEBUG RELOAD) the file is loaded apart and swapped in (see
/// `staged_load`); with `merge` or keys present, the parsed keys are inserted one by one (on
/// any error the keyspace is emptied again).
pub fn load_file(server: &Server, db: &mut Db, path: &Path, merge: bool) -> Result<u64, String> {
    if !merge && is_empty(db) {
        let staged = stage_file(server, path)?;
        return adopt(server, db, staged);
    }
    let loaded = read_file(server, path)?;
    install_loaded(server, db, loaded, merge)
}

/// Whether no database of the view holds a key.
fn is_empty(db: &mut Db) -> bool {
    let current = db.index;
    let empty = (0..db.keyspace().databases()).all(|i| {
        db.index = i;
        db.is_empty()
    });
    db.index = current;
    empty
}

/// Open `path` for streaming.
fn open(path: &Path) -> Result<Window<File>, String> {
    File::open(path).map(Window::new).map_err(|e| format!("can't read {}: {e}", path.display()))
}

/// A file being loaded, counting the bytes read from it (INFO's loading_loaded_bytes).
struct Counted<'a> {
    file: File,
    read: &'a AtomicU64,
}

impl Read for Counted<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.file.read(buf)?;
        self.read.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// Read and parse the RDB file at `path`, collecting its keys (no lock held: the keyspace
/// stays readable meanwhile), logging which server wrote it.
fn read_file(server: &Server, path: &Path) -> Result<rdb_load::Loaded, String> {
    let mut w = open(path)?;
    let loaded = rdb_load::parse_whole(&mut w, &load_options(server)).map_err(|e| {
        staged_load::log_rdb_error(&e);
        e.to_string()
    })?;
    log_producer(&loaded);
    Ok(loaded)
}

/// Load the RDB file at `path` into a keyspace of its own (see `staged_load`), logging which
/// server wrote it.
fn stage_file(server: &Server, path: &Path) -> Result<Staged, StageError> {
    let read = &server.stats.loading_loaded_bytes;
    read.store(0, Ordering::Relaxed);
    let file = File::open(path).map_err(|e| StageError::Other(format!("can't read {}: {e}", path.display())))?;
    let mut w = Window::new(Counted { file, read });
    let staged = staged_load::stage_rdb(server, &mut w, &load_options(server))?;
    rdb_load::check_end(&mut w).map_err(StageError::Rdb)?;
    log_producer(&staged.loaded);
    Ok(staged)
}

/// Log which server wrote the file, and the empty keys it skipped (Redis names the first 10).
fn log_producer(loaded: &rdb_load::Loaded) {
    if let Some(line) = loaded.producer_line() {
        log::notice(&line);
    }
    log::notice(&format!("RDB format version {}", loaded.version));
    if let Some(age) = loaded.age_secs(now_ms()) {
        log::notice(&format!("RDB age {age} seconds"));
    }
    if let Some(mem) = loaded.used_mem() {
        log::notice(&format!("RDB memory usage when created {:.2} Mb", mem as f64 / (1024.0 * 1024.0)));
    }
    for key in &loaded.empty_keys {
        log::notice(&format!("rdbLoadObject skipping empty key: {}", String::from_utf8_lossy(key)));
    }
}

/// A file that failed to load at start-up for its RDB data: after the error line (logged as
/// the load failed), what Redis adds before it exits: the report of redis-check-rdb, which
/// it runs on the file (printed on stdout), and its last words.
fn report_startup_failure(e: &RdbError) {
    let line = match &e.report {
        Some(Report::Corrupt { line, reason }) => Report::internal_error(*line, reason, e.offset),
        // Redis finds this one converting the value, and panics rather than checking the file.
        Some(Report::DupListpack(_)) => return,
        None if e.is_short() => Report::internal_error(3365, "Unexpected EOF reading RDB file", e.offset),
        None => return,
    };
    let report = format!("--- RDB ERROR DETECTED ---\n[offset {}] {line}\n[additional info] {e}\n", e.offset);
    let _ = io::stdout().lock().write_all(report.as_bytes());
    log::warning("Terminating server after rdb file reading failure.");
}

/// Swap a staged file's dataset in through `db` (every shard locked, the keyspace empty):
/// its function libraries first (a library that fails to load fails the load with nothing
/// changed).
fn adopt(server: &Server, db: &mut Db, staged: Staged) -> Result<u64, String> {
    if let Err(e) = server.scripting.load_library_sources(&staged.loaded.functions, false) {
        log::warning(&format!("Failed loading library, {e}"));
        return Err(format!("Failed loading library, {e}"));
    }
    drop(db.adopt(staged.keyspace));
    let st = &server.saving;
    st.last_load_keys_loaded.store(staged.keys, Ordering::Relaxed);
    st.last_load_keys_expired.store(staged.loaded.expired_skipped, Ordering::Relaxed);
    Ok(staged.keys)
}

/// Install a parsed file through `db` (see [`load_file`]).
fn install_loaded(server: &Server, db: &mut Db, mut loaded: rdb_load::Loaded, merge: bool) -> Result<u64, String> {
    let functions = std::mem::take(&mut loaded.functions);
    if let Err(e) = server.scripting.load_library_sources(&functions, merge) {
        log::warning(&format!("Failed loading library, {e}"));
        return Err(format!("Failed loading library, {e}"));
    }
    let expired = loaded.expired_skipped;
    match rdb_load::install(db, loaded, merge) {
        Ok(n) => {
            let st = &server.saving;
            st.last_load_keys_loaded.store(n, Ordering::Relaxed);
            st.last_load_keys_expired.store(expired, Ordering::Relaxed);
            Ok(n)
        }
        Err(e) => {
            drop(db.flush(true));
            Err(e)
        }
    }
}

/// Load `dir/dbfilename` at start-up, if it exists (true when it did).
pub fn load_at_startup(server: &Server) -> Result<bool, String> {
    let path = rdb_path(&server.config.load());
    if !path.exists() {
        return Ok(false);
    }
    if let Ok(m) = fs::metadata(&path) {
        server.stats.loading_total_bytes.store(m.len(), Ordering::Relaxed);
    }
    // Clients are served (-LOADING) while the file loads.
    server.listeners.open();
    // Load apart first, then take every shard only to swap the dataset in.
    let mut staged = stage_file(server, &path).map_err(|e| {
        if let StageError::Rdb(e) = &e {
            report_startup_failure(e);
        }
        format!("{}: {}", path.display(), String::from(e))
    })?;
    let aux = std::mem::take(&mut staged.loaded.aux);
    let empty = staged.loaded.empty_skipped;
    let expired = std::mem::take(&mut staged.loaded.expired_keys);
    let mut db = server.keyspace.lock_all(0);
    let n = adopt(server, &mut db, staged).map_err(|e| format!("{}: {e}", path.display()))?;
    drop(db);
    // The file's replication history: PSYNC can continue it.
    crate::replication::restore(server, &aux, &expired);
    // Loading is not a change to save again.
    server.keyspace.stats.dirty.store(0, Ordering::Relaxed);
    // (The caller logs "DB loaded from disk", after this, as Redis does.)
    let expired = server.saving.last_load_keys_expired.load(Ordering::Relaxed);
    log::notice(&match empty {
        0 => format!("Done loading RDB, keys loaded: {n}, keys expired: {expired}."),
        _ => format!("Done loading RDB, keys loaded: {n}, keys expired: {expired}, empty keys skipped: {empty}."),
    });
    Ok(true)
}

/// `rdb-key-save-delay` as a save in progress reads it (see [`rdb::KeyDelay`]): the current
/// setting while the server lives.
pub fn key_delay(server: &Server) -> rdb::KeyDelay {
    let me = server.me.clone();
    Box::new(move || me.upgrade().map_or(0, |s| s.config.load().rdb_key_save_delay))
}
