//! The stand-in for Redis's fork child. Ferrous writes its snapshots, AOF rewrites and diskless
//! transfers on a thread of its own process, without fork; but operators, monitoring scripts
//! and Redis's own test suite see and act on the child a Redis save runs in: they find it as
//! the server's child process (`pgrep -P`), read its title (`redis-rdb-bgsave`,
//! `redis-aof-rewrite`, `redis-rdb-to-slaves`) and its `oom_score_adj` (the `bgchild` class of
//! `oom-score-adj-values`), and kill it to stop the save. So each such job starts a small
//! process — this same executable, re-run in a mode that only waits — that lives while the
//! job runs:
//! - the job's temporary file is named after its pid, as Redis's child names it;
//! - killed before the job ends, it stops the job (its abort flag) and the job reports the
//!   signal as Redis reports its child's: "terminated by signal N", an error unless SIGUSR1;
//! - it exits when the job ends (its stdin pipe is closed) or when the server dies (the pipe
//!   closes with the process), as Redis's child notices its parent is gone.
//!
//! If it cannot be started (no /proc/self/exe, no processes left), the job runs without it.
//! The same guard shows the job's progress in INFO persistence while it lives (Redis's child
//! info, which its parent resets when the child exits).

use std::io::Read;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::Arc;

use super::Server;
use crate::persistence::rdb::SaveProgress;

/// The environment variable that tells the executable to run as a stand-in child; its value
/// is the `oom_score_adj` to take (empty: leave it).
const CHILD_ENV: &str = "FERROUS_SAVE_CHILD";

/// SIGUSR1: the signal Redis kills its child with when it stops a save on purpose (FLUSHALL,
/// the last replica gone); a child ended by it is no error.
pub const SIGUSR1: i32 = 10;

/// A background job's stand-in child and published progress, for the job's life (see the
/// module doc): dropped when the job ends.
pub struct SaveChild {
    /// The stand-in process, when one could be started.
    process: Option<Process>,
    server: Arc<Server>,
}

/// A running stand-in process.
struct Process {
    pid: u32,
    /// Held open while the job runs: the child exits when it closes.
    _pipe: Option<ChildStdin>,
    /// The signal that ended the child before the job did (0: none).
    killed_by: Arc<AtomicI32>,
}

impl SaveChild {
    /// Start a stand-in titled `title` for a job that stops when `abort` is set, and show the
    /// job's `progress` in INFO. Without a process (none could be started) the job goes on.
    pub fn start(server: &Arc<Server>, title: &str, abort: Arc<AtomicBool>, progress: &Arc<SaveProgress>) -> Self {
        *server.saving.child_info.lock() = Some(progress.clone());
        let oom = super::process::child_oom_score(&server.config.load()).map(|v| v.to_string()).unwrap_or_default();
        let process = spawn(title, &oom).map(|mut child| {
            let pipe = child.stdin.take();
            let pid = child.id();
            let killed_by = Arc::new(AtomicI32::new(0));
            let killed = killed_by.clone();
            // The watcher reaps the child; a child that ended by a signal while the job still
            // runs (its pipe open) stops the job.
            let watcher =
                std::thread::Builder::new().name("ferrous-child".into()).spawn(move || watch(child, &killed, &abort));
            if let Err(e) = watcher {
                super::log::warning(&format!("Can't watch the background child process: {e}"));
            }
            Process { pid, _pipe: pipe, killed_by }
        });
        SaveChild { process, server: server.clone() }
    }

    /// Whether a stand-in process runs beside the job.
    pub fn has_process(&self) -> bool {
        self.process.is_some()
    }

    /// The pid the job's temporary file is named after, as Redis names it after its child:
    /// the stand-in's, or the server's own without one.
    pub fn pid(&self) -> u32 {
        self.process.as_ref().map_or_else(std::process::id, |p| p.pid)
    }

    /// The signal that killed the child before the job ended, if one did.
    pub fn killed_by(&self) -> Option<i32> {
        let p = self.process.as_ref()?;
        Some(p.killed_by.load(Ordering::SeqCst)).filter(|&s| s != 0)
    }
}

impl Drop for SaveChild {
    /// The job is over: the child sees its pipe close and exits (the watcher reaps it), and
    /// INFO shows no job any more.
    fn drop(&mut self) {
        self.process.take();
        *self.server.saving.child_info.lock() = None;
    }
}

fn spawn(title: &str, oom: &str) -> Option<Child> {
    use std::os::unix::process::CommandExt;
    Command::new("/proc/self/exe")
        .arg0(title)
        .env(CHILD_ENV, oom)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| super::log::verbose(&format!("Can't start the background child process: {e}")))
        .ok()
}

fn watch(mut child: Child, killed: &AtomicI32, abort: &AtomicBool) {
    use std::os::unix::process::ExitStatusExt;
    if let Ok(status) = child.wait() {
        if let Some(sig) = status.signal() {
            killed.store(sig, Ordering::SeqCst);
            abort.store(true, Ordering::SeqCst);
        }
    }
}

/// Run as a stand-in child if this process was started as one: take the given
/// `oom_score_adj`, wait for the server to close the pipe (the job is over, or the server
/// died), and exit. Returns (doing nothing) in a normal start.
pub fn run_if_child() {
    let Some(oom) = std::env::var_os(CHILD_ENV) else { return };
    if !oom.is_empty() {
        let _ = std::fs::write("/proc/self/oom_score_adj", oom.as_encoded_bytes());
    }
    let mut sink = [0u8; 64];
    let mut stdin = std::io::stdin().lock();
    while matches!(stdin.read(&mut sink), Ok(n) if n > 0) {}
    std::process::exit(0);
}
