//! Full synchronisation, master side: the snapshot replicas load comes from the fork-less
//! point-in-time capture BGSAVE uses (`rdb::PointInTime`), taken while writes continue. At the
//! point in time (every shard locked) the replication offset is read and every replica waiting
//! for this snapshot gets a reader in the replication buffer at the next byte, so the stream
//! after the snapshot is exactly what the snapshot lacks.
//!
//! As Redis: replicas asking at once share one capture; with `repl-diskless-sync` (and
//! replicas that announced `capa eof`) the file is streamed to their sockets in the EOF-marker
//! format (`$EOF:<40 chars>\r\n` ... mark), after `repl-diskless-sync-delay` seconds unless
//! `repl-diskless-sync-max-replicas` are already waiting; otherwise a BGSAVE writes `dump.rdb`
//! and each replica is sent the file (`$<len>\r\n`). A disk save in progress that other
//! replicas wait for is joined; anything else waits for the next one. One capture at a time:
//! BGSAVE and AOF rewrites share the flag (`rdb_bgsave_in_progress` is 1 meanwhile).

use std::io;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use parking_lot::Mutex;

use super::{now_s, Link, WAIT_BGSAVE_END, WAIT_BGSAVE_START};
use crate::persistence::rdb::{PointInTime, SaveOptions};
use crate::server::save_child::SaveChild;
use crate::server::{log, Server};

/// One capture serving replicas.
pub struct Job {
    /// Written to `dump.rdb` (else streamed to the replicas' sockets).
    pub disk: bool,
    /// The replication offset the snapshot covers.
    pub offset: AtomicI64,
    /// Some(ok) once done.
    pub done: tokio::sync::watch::Sender<Option<bool>>,
    /// Stops the capture (nobody wants it any more).
    pub abort: Mutex<Option<Arc<AtomicBool>>>,
}

impl Job {
    fn new(disk: bool) -> Arc<Job> {
        Arc::new(Job {
            disk,
            offset: AtomicI64::new(0),
            done: tokio::sync::watch::channel(None).0,
            abort: Mutex::new(None),
        })
    }

    fn finish(&self, ok: bool) {
        self.done.send_replace(Some(ok));
    }

    fn stop(&self) {
        if let Some(a) = self.abort.lock().as_ref() {
            a.store(true, Ordering::SeqCst);
        }
    }
}

/// The capture in progress for replicas, if any.
#[derive(Default)]
pub struct FullSync {
    current: Mutex<Option<Arc<Job>>>,
}

impl FullSync {
    /// Whether a capture for replicas is running (and whether it goes to sockets).
    pub fn running(&self) -> Option<bool> {
        self.current.lock().as_ref().map(|j| !j.disk)
    }
}

/// The links waiting for a snapshot, or taking part in `job`.
fn links_where(server: &Server, f: impl Fn(&Link) -> bool) -> Vec<Arc<Link>> {
    server.repl.replicas.lock().iter().filter(|l| f(l)).cloned().collect()
}

fn same_job(l: &Link, job: &Arc<Job>) -> bool {
    l.job.lock().as_ref().is_some_and(|j| Arc::ptr_eq(j, job))
}

/// A replica needs a full synchronisation (Redis's syncCommand, cases 1-3): join the disk
/// save other replicas wait for, or wait for the next capture, or start one now.
pub fn request(server: &Server, link: &Arc<Link>) {
    let cfg = server.config.load();
    let current = server.repl.full.current.lock().clone();
    match current {
        Some(job) if job.disk => {
            // Another replica records the differences since this save's point in time: share.
            let other = links_where(server, |l| l.state() == WAIT_BGSAVE_END && same_job(l, &job))
                .into_iter()
                .find(|l| !l.rdb_only || link.rdb_only);
            let compatible =
                other.as_ref().is_some_and(|o| (link.capa_eof || !o.capa_eof) && o.rdb_only == link.rdb_only);
            let offset = job.offset.load(Ordering::SeqCst);
            let reader = if compatible && !link.rdb_only { server.repl.add_reader(offset + 1) } else { None };
            if compatible && (reader.is_some() || link.rdb_only) {
                link.reader.store(reader.unwrap_or(0), Ordering::SeqCst);
                link.initial_offset.store(offset, Ordering::SeqCst);
                *link.job.lock() = Some(job);
                link.set_state(WAIT_BGSAVE_END);
                log::notice("Waiting for end of BGSAVE for SYNC");
            } else {
                log::notice("Can't attach the replica to the current BGSAVE. Waiting for next BGSAVE for SYNC");
            }
        }
        Some(_) => log::notice("Current BGSAVE has socket target. Waiting for next BGSAVE for SYNC"),
        None if server.saving.in_progress.load(Ordering::SeqCst) => {
            log::notice("Can't attach the replica to the current BGSAVE. Waiting for next BGSAVE for SYNC")
        }
        None if cfg.repl_diskless_sync && link.capa_eof && cfg.repl_diskless_sync_delay > 0 => {
            log::notice("Delay next BGSAVE for diskless SYNC")
        }
        None if server.aof.rewrite_in_progress.load(Ordering::SeqCst) => {
            log::notice("No BGSAVE in progress, but another BG operation is active. BGSAVE for replication delayed")
        }
        None => {
            drop(cfg);
            start(server, link.capa_eof);
        }
    }
}

/// Cron: start a capture for the replicas waiting for one, once nothing else runs and (for a
/// diskless one) the delay passed or enough replicas wait (Redis's shouldStartChildReplication).
pub fn start_pending(server: &Server) {
    if server.repl.full.current.lock().is_some()
        || server.saving.in_progress.load(Ordering::SeqCst)
        || server.aof.rewrite_in_progress.load(Ordering::SeqCst)
    {
        return;
    }
    let waiting = links_where(server, |l| l.state() == WAIT_BGSAVE_START && !l.handle.is_killed());
    if waiting.is_empty() {
        return;
    }
    let cfg = server.config.load();
    let now = now_s();
    let max_idle = waiting.iter().map(|l| now - l.since).max().unwrap_or(0);
    let eof = waiting.iter().all(|l| l.capa_eof);
    let max = cfg.repl_diskless_sync_max_replicas;
    if !cfg.repl_diskless_sync || (max > 0 && waiting.len() as i64 >= max) || max_idle >= cfg.repl_diskless_sync_delay {
        drop(cfg);
        start(server, eof);
    }
}

/// Start a capture for every replica waiting for one (Redis's startBgsaveForReplication).
fn start(server: &Server, mincapa_eof: bool) {
    let socket = server.config.load().repl_diskless_sync && mincapa_eof;
    log::notice(&format!("Starting BGSAVE for SYNC with target: {}", if socket { "replicas sockets" } else { "disk" }));
    let Some(me) = server.me.upgrade() else { return };
    let job = Job::new(!socket);
    let mut current = server.repl.full.current.lock();
    let result = if socket { start_socket(&me, &job) } else { start_disk(&me, &job) };
    match result {
        Ok(abort) => {
            *job.abort.lock() = Some(abort);
            *current = Some(job);
        }
        Err(e) => {
            log::warning(&format!("BGSAVE for replication failed: {e}"));
            drop(current);
            for l in links_where(server, |l| l.state() == WAIT_BGSAVE_START) {
                log::warning("BGSAVE failed, replication can't continue");
                l.handle.kill();
                l.wake.notify_one();
            }
        }
    }
}

/// At the point in time: the offset the snapshot covers, and a reader for each waiting
/// replica at the byte after it (Redis's replicationSetupSlaveForFullResync).
fn setup_waiting(
    server: &Server,
    job: &Arc<Job>,
    socket: bool,
) -> Vec<(Arc<Link>, Option<tokio::sync::mpsc::Sender<Bytes>>)> {
    let repl = &server.repl;
    let offset = repl.offset();
    job.offset.store(offset, Ordering::SeqCst);
    repl.reset_seldb();
    let mut out = Vec::new();
    for l in links_where(server, |l| l.state() == WAIT_BGSAVE_START && !l.handle.is_killed()) {
        if socket && !l.capa_eof {
            continue;
        }
        let reader = if l.rdb_only { None } else { repl.add_reader(offset + 1) };
        l.reader.store(reader.unwrap_or(0), Ordering::SeqCst);
        l.initial_offset.store(offset, Ordering::SeqCst);
        *l.job.lock() = Some(job.clone());
        let tx = socket.then(|| {
            let (tx, rx) = tokio::sync::mpsc::channel(16);
            *l.rdb_rx.lock() = Some(rx);
            tx
        });
        l.set_state(WAIT_BGSAVE_END);
        out.push((l, tx));
    }
    out
}

/// A disk target: a BGSAVE whose file the replicas are then sent.
fn start_disk(server: &Arc<Server>, job: &Arc<Job>) -> Result<Arc<AtomicBool>, String> {
    let (s1, j1) = (server.clone(), job.clone());
    let (s2, j2) = (server.clone(), job.clone());
    let hooks = crate::server::saving::BgHooks {
        at_point: Some(Box::new(move || {
            setup_waiting(&s1, &j1, false);
        })),
        done: Some(Box::new(move |ok| {
            if !ok {
                log::warning("SYNC failed. BGSAVE child returned an error");
            } else {
                // Open the file for each replica now: the next save may replace it.
                let path = crate::server::saving::rdb_path(&s2.config.load());
                for l in links_where(&s2, |l| l.state() == WAIT_BGSAVE_END && same_job(l, &j2)) {
                    match std::fs::File::open(&path) {
                        Ok(f) => *l.rdb_file.lock() = Some(f),
                        Err(e) => {
                            log::warning(&format!("SYNC failed. Can't open/stat DB after BGSAVE: {e}"));
                            l.handle.kill();
                        }
                    }
                }
            }
            j2.finish(ok);
            finished(&s2, &j2);
        })),
    };
    crate::server::saving::bgsave_with(server, hooks).map_err(str::to_string)
}

/// The capture ended: the next one may start.
fn finished(server: &Server, job: &Arc<Job>) {
    let mut cur = server.repl.full.current.lock();
    if cur.as_ref().is_some_and(|j| Arc::ptr_eq(j, job)) {
        *cur = None;
    }
}

fn attached(server: &Server, link: &Arc<Link>) -> bool {
    !link.handle.is_killed() && server.repl.replicas.lock().iter().any(|l| Arc::ptr_eq(l, link))
}

/// The EOF mark of a diskless transfer: 40 random characters.
fn eof_mark() -> String {
    super::random_replid()
}

/// A socket target: the snapshot is written, as it is serialised, to every replica's link
/// (through a bounded channel each: the slowest replica sets the pace, as Redis's pipe).
fn start_socket(server: &Arc<Server>, job: &Arc<Job>) -> Result<Arc<AtomicBool>, String> {
    let st = &server.saving;
    if st.in_progress.swap(true, Ordering::SeqCst) {
        return Err("Background save already in progress".into());
    }
    if server.aof.rewrite_in_progress.load(Ordering::SeqCst) {
        st.in_progress.store(false, Ordering::SeqCst);
        return Err("Another child process is active (AOF?)".into());
    }
    st.bgsave_started_ms.store(crate::keyspace::now_ms(), Ordering::Relaxed);
    let opts = SaveOptions::from_config(&server.config.load());
    let functions = server.scripting.library_sources();
    let (mut snapshot, (repl, targets)) = PointInTime::begin_then(&server.keyspace, &functions, opts, || {
        let repl = super::save_info(server);
        (repl, setup_waiting(server, job, true))
    });
    snapshot.set_repl(repl);
    snapshot.key_delay = Some(crate::server::saving::key_delay(server));
    let abort = snapshot.abort.clone();
    *st.child_abort.lock() = Some(abort.clone());
    let progress = snapshot.progress.clone();
    let child = SaveChild::start(server, "redis-rdb-to-slaves", abort.clone(), &progress);
    let child_pid = child.pid();
    let (server, job) = (server.clone(), job.clone());
    let spawned = std::thread::Builder::new().name("ferrous-replsync".into()).spawn(move || {
        let mark = eof_mark();
        let mut w = Fanout { targets, buf: Vec::with_capacity(CHUNK), abort: snapshot.abort.clone() };
        let result = (|| -> io::Result<()> {
            io::Write::write_all(&mut w, format!("$EOF:{mark}\r\n").as_bytes())?;
            snapshot.write(&server.keyspace, &mut w)?;
            io::Write::write_all(&mut w, mark.as_bytes())?;
            io::Write::flush(&mut w)
        })();
        // Replicas still attached (one that went away may not have closed its channel yet).
        let up = w.targets.iter().filter(|(l, _)| attached(&server, l)).count();
        drop(w);
        let ok = result.is_ok() && up > 0;
        let killed = child.killed_by();
        drop(child);
        if ok {
            server.saving.last_cow.store(progress.cow_bytes.load(Ordering::Relaxed), Ordering::Relaxed);
        }
        if let Some(signal) = killed.filter(|_| result.is_err()) {
            log::warning(&format!("Background transfer terminated by signal {signal}"));
        } else if ok {
            log::notice(&format!("Diskless rdb transfer, done reading from pipe, {up} replicas still up."));
            log::notice("Background RDB transfer terminated with success");
        } else if up == 0 {
            log::warning("Diskless rdb transfer, last replica dropped, killing fork child.");
            log::warning("Background transfer terminated by signal 10");
        } else {
            log::warning("Background transfer error");
        }
        *server.saving.child_abort.lock() = None;
        server.saving.in_progress.store(false, Ordering::Release);
        job.finish(ok);
        finished(&server, &job);
    });
    match spawned {
        Ok(_) => {
            log::notice(&format!("Background RDB transfer started by pid {child_pid}"));
            Ok(abort)
        }
        Err(e) => {
            st.in_progress.store(false, Ordering::Release);
            Err(e.to_string())
        }
    }
}

const CHUNK: usize = 64 * 1024;

/// Writes the snapshot to every replica still there.
struct Fanout {
    targets: Vec<(Arc<Link>, Option<tokio::sync::mpsc::Sender<Bytes>>)>,
    buf: Vec<u8>,
    abort: Arc<AtomicBool>,
}

impl Fanout {
    fn send(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK)));
        self.targets.retain(|(l, tx)| {
            tx.as_ref().is_some_and(|tx| !l.handle.is_killed() && tx.blocking_send(chunk.clone()).is_ok())
        });
        if self.targets.is_empty() || self.abort.load(Ordering::Relaxed) {
            return Err(io::Error::other("no replica left"));
        }
        Ok(())
    }
}

impl io::Write for Fanout {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let mut rest = data;
        while !rest.is_empty() {
            let n = (CHUNK - self.buf.len()).min(rest.len());
            self.buf.extend_from_slice(&rest[..n]);
            rest = &rest[n..];
            if self.buf.len() >= CHUNK {
                self.send()?;
            }
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send()
    }
}

/// A replica left: stop a capture nobody needs any more (a diskless one always; a disk one
/// when no save point wants the file, as Redis kills its child then).
pub fn replica_left(server: &Server, link: &Link) {
    let Some(job) = link.job.lock().clone() else { return };
    if link.state() != WAIT_BGSAVE_END {
        return;
    }
    let current = server.repl.full.current.lock().clone();
    if !current.as_ref().is_some_and(|c| Arc::ptr_eq(c, &job)) {
        return;
    }
    let others = links_where(server, |l| !std::ptr::eq(l, link) && l.state() == WAIT_BGSAVE_END && same_job(l, &job));
    if !others.is_empty() {
        return;
    }
    if !job.disk || server.config.load().save.is_empty() {
        job.stop();
    }
}

/// Drop the waiting replicas' claim on a capture (a replica becoming someone's replica).
pub fn abort_all(server: &Server) {
    if let Some(job) = server.repl.full.current.lock().clone() {
        if !job.disk {
            job.stop();
        }
    }
}

/// What a link waiting for its snapshot sees (Redis writes +FULLRESYNC once it is set up).
pub fn waiting(link: &Link) -> bool {
    link.state() == WAIT_BGSAVE_START
}
