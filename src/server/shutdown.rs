//! The shutdown sequence shared by SHUTDOWN and the termination signals (Redis 7.0's
//! prepareForShutdown / isReadyToShutdown / finishShutdown / abortShutdown).
//!
//! Unless NOW is given or `shutdown-timeout` is 0, a master whose replicas have not all
//! acknowledged its replication offset waits for them: writes are paused, the replicas are
//! asked for an acknowledgement (REPLCONF GETACK), and the sequence finishes as soon as every
//! replica acknowledged the offset or the timeout passed (INFO `shutdown_in_milliseconds`
//! counts down meanwhile). The wait is a task of its own that only sleeps and wakes on
//! acknowledgements: it never holds a thread that a replica link or a client needs. SHUTDOWN
//! clients wait for the outcome (Redis blocks them); a failed or aborted shutdown answers
//! them `Errors trying to SHUTDOWN. Check logs.` and lets the writes go on.

use parking_lot::Mutex;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::{log, saving, Server};
use crate::config::table::{SHUTDOWN_FORCE, SHUTDOWN_NOSAVE, SHUTDOWN_NOW, SHUTDOWN_SAVE};
use crate::keyspace::now_ms;

/// What a SHUTDOWN client gets when the shutdown does not happen.
pub const FAILED: &str = "Errors trying to SHUTDOWN. Check logs.";

/// The state of a shutdown in progress (at most one at a time).
pub struct Shutdown {
    /// The flags of the shutdown in progress (None: none).
    flags: Mutex<Option<u32>>,
    /// Unix ms at which the wait for replicas gives up (0: not waiting).
    deadline_ms: AtomicI64,
    /// Counts the shutdowns that failed or were aborted: waiters see it move.
    failed: tokio::sync::watch::Sender<u64>,
    /// Wakes the wait (SHUTDOWN ABORT).
    wake: tokio::sync::Notify,
}

impl Default for Shutdown {
    fn default() -> Self {
        Shutdown {
            flags: Mutex::new(None),
            deadline_ms: AtomicI64::new(0),
            failed: tokio::sync::watch::channel(0).0,
            wake: tokio::sync::Notify::new(),
        }
    }
}

impl Shutdown {
    /// Whether a shutdown is in progress (waiting for replicas or finishing).
    pub fn initiated(&self) -> bool {
        self.flags.lock().is_some()
    }

    /// INFO's `shutdown_in_milliseconds`: None unless the shutdown waits for replicas.
    pub fn remaining_ms(&self) -> Option<i64> {
        match self.deadline_ms.load(Ordering::SeqCst) {
            0 => None,
            d => Some(d - now_ms()),
        }
    }

    /// SHUTDOWN ABORT of a shutdown waiting for replicas: true when there was one.
    pub fn abort(&self, server: &Server) -> bool {
        let mut flags = self.flags.lock();
        if flags.is_none() || self.deadline_ms.load(Ordering::SeqCst) == 0 {
            return false;
        }
        *flags = None;
        drop(flags);
        self.cancel(server);
        true
    }

    /// The shutdown does not happen: clients waiting on it get their error, writes resume.
    fn cancel(&self, server: &Server) {
        *self.flags.lock() = None;
        self.deadline_ms.store(0, Ordering::SeqCst);
        server.pause.set_shutdown(false, &server.keyspace);
        self.failed.send_modify(|n| *n += 1);
        self.wake.notify_waiters();
    }
}

/// Shut the server down with SHUTDOWN's flags (`SHUTDOWN_*`). Returns Ok once the server is
/// exiting, Err when this shutdown (or the one in progress it joined) failed or was aborted.
pub async fn request(server: &Arc<Server>, flags: u32) -> Result<(), &'static str> {
    let st = &server.shutdown_state;
    let mut failed = st.failed.subscribe();
    let seen = *failed.borrow_and_update();
    let lead = {
        let mut f = st.flags.lock();
        if f.is_some() {
            false
        } else {
            *f = Some(flags);
            true
        }
    };
    if lead {
        // The sequence runs on its own: a client that goes away does not stop it.
        let s = server.clone();
        tokio::spawn(async move { run(&s, flags).await });
    }
    loop {
        let exiting = server.shutdown.notified();
        if server.is_shutting_down() {
            return Ok(());
        }
        if *failed.borrow_and_update() != seen {
            return Err(FAILED);
        }
        tokio::select! {
            _ = exiting => {}
            _ = failed.changed() => {}
        }
    }
}

/// Redis's prepareForShutdown, then the wait, then finishShutdown.
async fn run(server: &Arc<Server>, mut flags: u32) {
    let st = &server.shutdown_state;
    if server.stats.loading.load(Ordering::SeqCst) {
        // Never save a half-loaded dataset.
        flags = (flags & !SHUTDOWN_SAVE) | SHUTDOWN_NOSAVE;
    }
    log::notice("User requested shutdown...");
    super::process::notify_systemd("STOPPING=1\n");
    let timeout_s = server.config.load().shutdown_timeout;
    if flags & SHUTDOWN_NOW == 0 && timeout_s != 0 && !replicas_in_sync(server) {
        st.deadline_ms.store(now_ms() + timeout_s * 1000, Ordering::SeqCst);
        if !server.pause.active() {
            server.repl.feed_command(&[b"REPLCONF", b"GETACK", b"*"]);
        }
        server.pause.set_shutdown(true, &server.keyspace);
        log::notice("Waiting for replicas before shutting down.");
        let go_on = wait_for_replicas(server).await;
        st.deadline_ms.store(0, Ordering::SeqCst);
        if !go_on {
            return; // aborted
        }
    }
    if finish(server, flags).await {
        server.request_shutdown();
    } else {
        log::warning("Errors trying to shut down the server. Check the logs for more information.");
        st.cancel(server);
    }
}

/// Wait until every replica acknowledged the offset or the deadline passed (checked at `hz`
/// like Redis's serverCron, and on every acknowledgement). False when the shutdown was
/// aborted meanwhile.
async fn wait_for_replicas(server: &Server) -> bool {
    let st = &server.shutdown_state;
    loop {
        let acked = server.repl.acked.notified();
        let woken = st.wake.notified();
        if !st.initiated() {
            return false;
        }
        if now_ms() >= st.deadline_ms.load(Ordering::SeqCst) || replicas_in_sync(server) {
            return true;
        }
        let tick = Duration::from_millis(1000 / server.config.load().hz_clamped());
        tokio::select! {
            _ = crate::util::timer::sleep(tick) => {}
            _ = acked => {}
            _ = woken => {}
        }
    }
}

/// Redis's isReadyToShutdown: every replica (in any state) acknowledged the master's offset.
fn replicas_in_sync(server: &Server) -> bool {
    let offset = server.repl.offset();
    server.repl.replicas.lock().iter().all(|l| l.ack_off.load(Ordering::SeqCst) == offset)
}

/// Redis's finishShutdown up to its exit: the lagging replicas reported, the AOF's initial
/// rewrite respected, the final RDB saved. False when the shutdown cannot go on.
async fn finish(server: &Arc<Server>, flags: u32) -> bool {
    let (mut save, mut nosave, force) =
        (flags & SHUTDOWN_SAVE != 0, flags & SHUTDOWN_NOSAVE != 0, flags & SHUTDOWN_FORCE != 0);
    // A Sentinel has no data set to save (Redis forces NOSAVE in sentinel mode).
    if server.sentinel.get().is_some() {
        (save, nosave) = (false, true);
    }
    report_replicas(server);
    if server.aof.wait_rewrite.load(Ordering::Acquire) {
        if force {
            log::warning("Writing initial AOF. Exit anyway.");
        } else {
            log::warning("Writing initial AOF, can't exit.");
            super::process::notify_systemd("STATUS=Writing initial AOF, can't exit.\n");
            return false;
        }
    }
    // A background save in progress is stopped and its temporary file removed (Redis kills
    // its child and unlinks the child's file).
    if server.saving.in_progress.load(Ordering::Acquire) {
        log::warning("There is a child saving an .rdb. Killing it!");
        saving::kill_child(server);
        if let Some(temp) = server.saving.temp_file.lock().take() {
            let _ = std::fs::remove_file(temp);
        }
    }
    // The AOF already holds the whole dataset: a rewrite in progress is not waited for.
    if server.aof.on.load(Ordering::Acquire) && server.aof.rewrite_in_progress.load(Ordering::Acquire) {
        log::warning("There is a child rewriting the AOF. Killing it!");
        let s = server.clone();
        let _ = tokio::task::spawn_blocking(move || super::aof::kill_rewrite(&s, true)).await;
    }
    if save || (!nosave && !saving::save_points(&server.config.load()).is_empty()) {
        log::notice("Saving the final RDB snapshot before exiting.");
        super::process::notify_systemd("STATUS=Saving the final RDB snapshot\n");
        let s = server.clone();
        // Every shard locked for the image: off the async threads.
        let saved = tokio::task::spawn_blocking(move || saving::save_locking(&s)).await;
        if !matches!(saved, Ok(Ok(()))) {
            if force {
                log::warning("Error trying to save the DB. Exit anyway.");
            } else {
                log::warning("Error trying to save the DB, can't exit.");
                super::process::notify_systemd("STATUS=Error trying to save the DB, can't exit.\n");
                return false;
            }
        }
    }
    true
}

/// One warning per replica that did not acknowledge the offset, then how many are in sync.
fn report_replicas(server: &Server) {
    let offset = server.repl.offset();
    let links: Vec<_> = server.repl.replicas.lock().clone();
    let now = crate::replication::now_s();
    let mut lagging = 0;
    for l in &links {
        let acked = l.ack_off.load(Ordering::SeqCst).max(0);
        if acked == offset {
            continue;
        }
        lagging += 1;
        let state = l.state();
        let lag = if state == crate::replication::ONLINE { now - l.ack_time.load(Ordering::SeqCst) } else { 0 };
        log::notice(&format!(
            "Lagging replica {} reported offset {} behind master, lag={lag}, state={}.",
            l.name(),
            offset - acked,
            crate::replication::state_name(state)
        ));
    }
    if !links.is_empty() {
        log::notice(&format!("{} of {} replicas are in sync when shutting down.", links.len() - lagging, links.len()));
    }
}
