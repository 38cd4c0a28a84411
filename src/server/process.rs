//! The process around the server, as redis-server manages it: `daemonize yes` (fork, new
//! session, standard streams to /dev/null), the pidfile, `supervised systemd` readiness
//! notifications (sd_notify over $NOTIFY_SOCKET), `oom-score-adj` (the kernel's OOM killer
//! preference in /proc/self/oom_score_adj) and `disable-thp` (no transparent huge pages).

use std::sync::atomic::{AtomicI64, Ordering};

use crate::config::Config;

/// Fork into the background like Redis's daemonize(): the parent exits at once, the child
/// starts a new session and points its standard streams at /dev/null. Call before any thread
/// is started.
#[cfg(unix)]
pub fn daemonize(_logfile: &str) -> Result<(), String> {
    // SAFETY: called from main before any other thread exists; the child continues with a
    // copy of this single-threaded process.
    unsafe {
        match libc::fork() {
            -1 => return Err(std::io::Error::last_os_error().to_string()),
            0 => {}
            _ => libc::_exit(0),
        }
        libc::setsid();
        let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR);
        if null != -1 {
            libc::dup2(null, 0);
            libc::dup2(null, 1);
            libc::dup2(null, 2);
            if null > 2 {
                libc::close(null);
            }
        }
    }
    Ok(())
}

#[cfg(not(unix))]
pub fn daemonize(_logfile: &str) -> Result<(), String> {
    Err("daemonize is only supported on Unix".into())
}

/// Write the pidfile (with `daemonize yes` and no pidfile, Redis writes /var/run/redis.pid).
pub fn write_pidfile(cfg: &Config) {
    let path = pidfile_path(cfg);
    if let Some(path) = path {
        if let Err(e) = std::fs::write(&path, format!("{}\n", std::process::id())) {
            super::log::warning(&format!("Failed to write PID file: {e}"));
        }
    }
}

pub fn remove_pidfile(cfg: &Config) {
    if let Some(path) = pidfile_path(cfg) {
        let _ = std::fs::remove_file(path);
    }
}

fn pidfile_path(cfg: &Config) -> Option<String> {
    if !cfg.pidfile.is_empty() {
        Some(cfg.pidfile.clone())
    } else if cfg.daemonize {
        Some("/var/run/redis.pid".into())
    } else {
        None
    }
}

/// `supervised systemd` (or `auto` under systemd): send `state` to $NOTIFY_SOCKET.
pub fn notify_supervisor(cfg: &Config, state: &str) {
    let systemd = match cfg.supervised {
        2 => true,
        3 => std::env::var_os("NOTIFY_SOCKET").is_some(),
        _ => false,
    };
    if !systemd {
        return;
    }
    #[cfg(unix)]
    if let Some(path) = std::env::var_os("NOTIFY_SOCKET") {
        let path = std::path::PathBuf::from(path);
        if let Ok(sock) = std::os::unix::net::UnixDatagram::unbound() {
            let _ = sock.send_to(state.as_bytes(), &path);
        }
    }
}

/// The oom_score_adj the process had before Ferrous took control of it (read each time
/// `oom-score-adj` is switched on), and whether Ferrous changed it since.
static BASE_OOM_SCORE: AtomicI64 = AtomicI64::new(0);
static OOM_ADJUSTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Apply `oom-score-adj` / `oom-score-adj-values` for this process's role (0 master, 1
/// replica), as Redis's setOOMScoreAdj: switching it on saves the current score as the base
/// (relative values add to it), switching it off restores that base, and while it is off the
/// score is left alone. Err when the kernel refuses the value.
pub fn set_oom_score_adj(cfg: &Config, replica: bool) -> Result<(), String> {
    const PATH: &str = "/proc/self/oom_score_adj";
    let read = || std::fs::read_to_string(PATH).ok().and_then(|s| s.trim().parse::<i64>().ok());
    let value = if cfg.oom_score_adj != 0 {
        if !OOM_ADJUSTED.swap(true, Ordering::Relaxed) {
            BASE_OOM_SCORE.store(read().unwrap_or(0), Ordering::Relaxed);
        }
        let class = cfg.oom_score_adj_values[replica as usize];
        let relative = cfg.oom_score_adj == 1;
        (if relative { class + BASE_OOM_SCORE.load(Ordering::Relaxed) } else { class }).clamp(-1000, 1000)
    } else if OOM_ADJUSTED.swap(false, Ordering::Relaxed) {
        BASE_OOM_SCORE.load(Ordering::Relaxed)
    } else {
        return Ok(());
    };
    std::fs::write(PATH, value.to_string()).map_err(|e| {
        super::log::warning(&format!("Unable to write oom_score_adj: {e}"));
        "Failed to set current oom_score_adj. Check server logs.".to_string()
    })
}

/// The `oom_score_adj` a background save's child takes (the `bgchild` class of
/// `oom-score-adj-values`, as Redis's child sets it), or None while `oom-score-adj` is off.
pub fn child_oom_score(cfg: &Config) -> Option<i64> {
    if cfg.oom_score_adj == 0 {
        return None;
    }
    let class = cfg.oom_score_adj_values[2];
    let relative = cfg.oom_score_adj == 1;
    Some((if relative { class + BASE_OOM_SCORE.load(Ordering::Relaxed) } else { class }).clamp(-1000, 1000))
}

/// `disable-thp yes` (the default): opt the process out of transparent huge pages, as Redis
/// does. Redis only needs this when the kernel's THP mode is `always`, since jemalloc never
/// asks for huge pages; mimalloc does ask (MADV_HUGEPAGE) even in `madvise` mode, so the
/// opt-out is taken whatever the mode. Huge pages cost a fork-less server memory too: RSS
/// rounds up to 2 MB per page, and on first touch each is zeroed whole (loading a 5M-key RDB
/// file took ~45% more CPU with them on a VM).
#[cfg(target_os = "linux")]
pub fn disable_thp(cfg: &Config) {
    if !cfg.disable_thp {
        return;
    }
    // SAFETY: prctl with integer arguments only sets a flag of this process.
    if unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) } != 0 {
        super::log::warning(&format!(
            "WARNING can't disable transparent huge pages: {}",
            std::io::Error::last_os_error()
        ));
    }
}

#[cfg(not(target_os = "linux"))]
pub fn disable_thp(_cfg: &Config) {}

/// Log Redis's crash report (the signal and a stack trace) and die of the same signal:
/// installed for SIGSEGV, SIGBUS, SIGFPE, SIGILL and SIGABRT when `crash-log-enabled` is yes.
#[cfg(unix)]
pub fn install_crash_handlers() {
    extern "C" fn on_crash(sig: libc::c_int) {
        crash_report(sig);
        // SAFETY: restoring the default action and re-raising is what the handler is for.
        unsafe {
            libc::signal(sig, libc::SIG_DFL);
            libc::raise(sig);
        }
    }
    for sig in [libc::SIGSEGV, libc::SIGBUS, libc::SIGFPE, libc::SIGILL, libc::SIGABRT] {
        // SAFETY: installs a handler with the C signature signal() expects.
        unsafe {
            libc::signal(sig, on_crash as extern "C" fn(libc::c_int) as libc::sighandler_t);
        }
    }
}

#[cfg(not(unix))]
pub fn install_crash_handlers() {}

/// The crash report: "crashed by signal", then the STACK TRACE of the crashing thread.
fn crash_report(sig: i32) {
    super::log::raw("\n\n=== REDIS BUG REPORT START: Cut & paste starting from here ===\n");
    super::log::warning(&format!("Redis {} crashed by signal: {sig}, si_code: 0", crate::REDIS_VERSION));
    let trace = std::backtrace::Backtrace::force_capture();
    super::log::raw(&format!("\n------ STACK TRACE ------\n\nBacktrace:\n{trace}\n"));
    super::log::raw("\n=== REDIS BUG REPORT END. Make sure to include from START to END. ===\n\n");
}

/// DEBUG SEGFAULT / DEBUG PANIC: crash on purpose (the crash handler reports it).
pub fn crash_now(segfault: bool) -> ! {
    #[cfg(unix)]
    // SAFETY: raising a signal at ourselves; the installed handler logs and re-raises.
    unsafe {
        libc::raise(if segfault { libc::SIGSEGV } else { libc::SIGABRT });
    }
    std::process::abort()
}
