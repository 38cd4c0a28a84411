//! The process around the server, as redis-server manages it: `daemonize yes` (fork, new
//! session, standard streams to /dev/null), the pidfile, `supervised systemd` readiness
//! notifications (sd_notify over $NOTIFY_SOCKET), `oom-score-adj` (the kernel's OOM killer
//! preference in /proc/self/oom_score_adj) and `disable-thp` (no transparent huge pages).

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

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
    } else if cfg.daemonize && !supervised() {
        // Redis writes its default pidfile only when it forked (daemonize and not supervised).
        Some("/var/run/redis.pid".into())
    } else {
        None
    }
}

/// Redis's server.supervised: supervision was set up at start-up (then `daemonize yes` does
/// not fork, and there is no default pidfile).
static SUPERVISED: AtomicBool = AtomicBool::new(false);
/// Redis's `server.supervised_mode == SUPERVISED_SYSTEMD`: systemd is told the server's state.
static SYSTEMD: AtomicBool = AtomicBool::new(false);

/// What [`supervise`] found, logged by [`Supervision::log`] once the log is set up (Redis
/// logs it before its start-up banner).
pub enum Supervision {
    None,
    /// `supervised upstart`, or `auto` with $UPSTART_JOB set: the process stopped itself with
    /// SIGSTOP (upstart's `expect stop` continues it) and is not daemonized.
    Upstart,
    /// `supervised upstart` without $UPSTART_JOB: not supervised, with Redis's warning.
    UpstartMissing,
    /// systemd took the first notification.
    Systemd,
    /// The first notification could not be sent: the warning Redis logs.
    SystemdFailed(String),
}

impl Supervision {
    pub fn supervised(&self) -> bool {
        matches!(self, Supervision::Upstart | Supervision::Systemd)
    }

    pub fn log(&self) {
        match self {
            Supervision::Systemd => super::log::notice(
                "Supervised by systemd. Please make sure you set appropriate values for TimeoutStartSec and TimeoutStopSec in your service unit.",
            ),
            Supervision::SystemdFailed(w) => super::log::warning(w),
            Supervision::Upstart => super::log::notice("supervised by upstart, will stop to signal readiness."),
            Supervision::UpstartMissing => {
                super::log::warning("upstart supervision requested, but UPSTART_JOB not found!")
            }
            Supervision::None => {}
        }
    }
}

/// Redis's redisIsSupervised, at start-up before daemonizing: `supervised systemd` (or `auto`
/// with $NOTIFY_SOCKET set and no $UPSTART_JOB) tells systemd "STATUS=Redis is loading..."
/// and, from then on, the server's state (see [`notify_systemd`]). An explicit `supervised
/// systemd` keeps notifying (and warning) even when that first message failed, as Redis does.
pub fn supervise(cfg: &Config) -> Supervision {
    let upstart = std::env::var_os("UPSTART_JOB").is_some();
    let systemd = match cfg.supervised {
        1 | 3 if upstart => {
            stop_for_upstart();
            return Supervision::Upstart;
        }
        1 => return Supervision::UpstartMissing,
        2 => true,
        3 => std::env::var_os("NOTIFY_SOCKET").is_some(),
        _ => false,
    };
    if !systemd {
        return Supervision::None;
    }
    let sent = sd_notify("STATUS=Redis is loading...\n");
    SYSTEMD.store(cfg.supervised == 2 || sent.is_ok(), Ordering::Relaxed);
    SUPERVISED.store(sent.is_ok(), Ordering::Relaxed);
    match sent {
        Ok(()) => Supervision::Systemd,
        Err(w) => Supervision::SystemdFailed(w),
    }
}

/// Redis's redisSupervisedUpstart: stop (upstart's `expect stop` takes the SIGSTOP as the
/// sign the job started, and continues it), then forget $UPSTART_JOB so that children do not
/// stop too. Called at start-up, before any thread exists.
fn stop_for_upstart() {
    SUPERVISED.store(true, Ordering::Relaxed);
    // SAFETY: raise has no memory effects; the process stops until SIGCONT.
    unsafe { libc::raise(libc::SIGSTOP) };
    std::env::remove_var("UPSTART_JOB");
}

/// Whether the server is supervised (Redis's server.supervised).
pub fn supervised() -> bool {
    SUPERVISED.load(Ordering::Relaxed)
}

/// INFO's `process_supervised`, from what [`supervise`] found (Redis's server.supervised and
/// supervised_mode): "no" unless supervision was set up ($UPSTART_JOB is gone by then).
pub fn supervised_mode_name() -> &'static str {
    if !supervised() {
        "no"
    } else if SYSTEMD.load(Ordering::Relaxed) {
        "systemd"
    } else {
        "upstart"
    }
}

/// Under systemd supervision, tell systemd `state` (Redis's redisCommunicateSystemd: one
/// datagram per call, such as "STATUS=...\n" or "READY=1\n"); a failure is logged.
pub fn notify_systemd(state: &str) {
    if SYSTEMD.load(Ordering::Relaxed) {
        if let Err(w) = sd_notify(state) {
            super::log::warning(&w);
        }
    }
}

/// libsystemd's sd_notify: one datagram to $NOTIFY_SOCKET (a path, or `@name` for the
/// abstract namespace). Err with the warning Redis logs.
fn sd_notify(state: &str) -> Result<(), String> {
    match std::env::var_os("NOTIFY_SOCKET") {
        Some(path) => sd_notify_to(&path, state),
        None => Err("systemd supervision error: NOTIFY_SOCKET not found!".into()),
    }
}

fn sd_notify_to(path: &std::ffi::OsStr, state: &str) -> Result<(), String> {
    let failed =
        |e: std::io::Error| format!("systemd supervision error: sd_notify: {}", -e.raw_os_error().unwrap_or(0));
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        let sock = std::os::unix::net::UnixDatagram::unbound().map_err(failed)?;
        let bytes = path.as_bytes();
        #[cfg(any(target_os = "linux", target_os = "android"))]
        if let Some(name) = bytes.strip_prefix(b"@") {
            use std::os::linux::net::SocketAddrExt;
            let addr = std::os::unix::net::SocketAddr::from_abstract_name(name).map_err(failed)?;
            return sock.send_to_addr(state.as_bytes(), &addr).map(|_| ()).map_err(failed);
        }
        if bytes.first() != Some(&b'/') {
            return Err(failed(std::io::Error::from_raw_os_error(libc::EINVAL)));
        }
        sock.send_to(state.as_bytes(), std::path::Path::new(path)).map(|_| ()).map_err(failed)
    }
    #[cfg(not(unix))]
    {
        let _ = (state, failed);
        Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;

    /// sd_notify's addresses: a path, `@name` in the abstract namespace; anything else is
    /// EINVAL, and an address nobody listens on is the send's error, as sd_notify returns them.
    #[cfg(any(target_os = "linux", target_os = "android"))]
    #[test]
    fn sd_notify_addresses() {
        use std::os::linux::net::SocketAddrExt;
        use std::os::unix::net::{SocketAddr, UnixDatagram};
        let path = std::env::temp_dir().join(format!("ferrous-notify-{}.sock", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let sock = UnixDatagram::bind(&path).unwrap();
        sd_notify_to(path.as_os_str(), "READY=1\n").unwrap();
        let mut buf = [0u8; 64];
        let n = sock.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1\n");
        drop(sock);
        let _ = std::fs::remove_file(&path);
        let err = sd_notify_to(path.as_os_str(), "READY=1\n").unwrap_err();
        assert_eq!(err, format!("systemd supervision error: sd_notify: -{}", libc::ENOENT));

        let name = format!("ferrous-notify-{}", std::process::id());
        let sock = UnixDatagram::bind_addr(&SocketAddr::from_abstract_name(name.as_bytes()).unwrap()).unwrap();
        sd_notify_to(std::ffi::OsStr::new(&format!("@{name}")), "STATUS=x\n").unwrap();
        let n = sock.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"STATUS=x\n");

        let err = sd_notify_to(std::ffi::OsStr::new("relative.sock"), "READY=1\n").unwrap_err();
        assert_eq!(err, format!("systemd supervision error: sd_notify: -{}", libc::EINVAL));
    }
}
