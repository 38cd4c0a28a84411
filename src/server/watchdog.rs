//! The software watchdog (`watchdog-period`, Redis's debug.c): when the server has spent longer
//! than the period inside one blocking section, log `--- WATCHDOG TIMER EXPIRED ---` and the
//! stack trace of the thread running it, once per section. A debugging aid for finding what
//! stalls the server.
//!
//! Redis re-arms a one-shot SIGALRM from its cron: the signal fires when its one thread has not
//! returned to the event loop within the period, and its handler logs the interrupted stack.
//! Ferrous has no single event loop, so the blocking sections announce themselves instead
//! ([`busy`]: a command or script on a worker thread; [`busy_unbound`]: a replica's load of its
//! master's snapshot, during which clients get -LOADING as from Redis's blocked loop) and a
//! watchdog thread compares their age with the period. The trace is real: the watchdog sends
//! SIGALRM to the busy thread alone, whose handler only records the return addresses of its own
//! stack into a static array (no allocation, no lock of ours); the watchdog thread symbolises
//! and logs them. A section that no thread is running at that moment (the load while it waits
//! for the master's bytes) is reported without a trace, saying so.

use parking_lot::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// `watchdog-period` in ms once adjusted to the cron (0: off).
static PERIOD_MS: AtomicU64 = AtomicU64::new(0);
/// Whether sections are recorded (the watchdog has been enabled at least once and is on).
static ENABLED: AtomicBool = AtomicBool::new(false);
static STARTED: AtomicBool = AtomicBool::new(false);
static SECTIONS: Mutex<Vec<Arc<Section>>> = Mutex::new(Vec::new());

/// One blocking section: what it is, since when, and the thread running it (0: none).
struct Section {
    what: &'static str,
    since: Instant,
    thread: AtomicU64,
    reported: AtomicBool,
}

/// A section in progress; it ends when dropped.
pub struct Busy(Option<Arc<Section>>);

impl Drop for Busy {
    /// Inline: while the watchdog is off (every command, nearly always) there is nothing to do.
    #[inline]
    fn drop(&mut self) {
        if self.0.is_some() {
            self.end();
        }
    }
}

impl Busy {
    #[inline(never)]
    fn end(&mut self) {
        if let Some(s) = self.0.take() {
            let mut sections = SECTIONS.lock();
            sections.retain(|o| !Arc::ptr_eq(o, &s));
            // Under the lock, as Bound::drop: a report that picked the section before it ended
            // must not signal its thread, which is doing something else now or has exited
            // (pthread_kill of an exited thread is undefined).
            s.thread.store(0, Ordering::SeqCst);
        }
    }
}

/// A section that can be handed to the thread that goes on with it (see [`Busy::handle`]).
#[derive(Clone)]
pub struct Handle(Option<Arc<Section>>);

/// The current thread runs the section until this is dropped.
pub struct Bound<'a>(&'a Handle);

impl Drop for Bound<'_> {
    fn drop(&mut self) {
        if let Some(s) = &self.0 .0 {
            // Under the lock: the watchdog never signals a thread that left the section.
            let _g = SECTIONS.lock();
            s.thread.store(0, Ordering::SeqCst);
        }
    }
}

impl Busy {
    pub fn handle(&self) -> Handle {
        Handle(self.0.clone())
    }
}

impl Handle {
    /// Run the section on this thread for the guard's life.
    pub fn bind_here(&self) -> Bound<'_> {
        if let Some(s) = &self.0 {
            s.thread.store(this_thread(), Ordering::SeqCst);
        }
        Bound(self)
    }
}

fn this_thread() -> u64 {
    #[cfg(unix)]
    // SAFETY: pthread_self has no preconditions.
    return unsafe { libc::pthread_self() } as u64;
    #[cfg(not(unix))]
    return 0;
}

fn start(what: &'static str, thread: u64) -> Busy {
    if !ENABLED.load(Ordering::Relaxed) {
        return Busy(None);
    }
    let s = Arc::new(Section {
        what,
        since: Instant::now(),
        thread: AtomicU64::new(thread),
        reported: AtomicBool::new(false),
    });
    SECTIONS.lock().push(s.clone());
    Busy(Some(s))
}

/// The current thread enters a blocking section (a command, a script). Costs one relaxed load
/// while the watchdog is off.
#[inline]
pub fn busy(what: &'static str) -> Busy {
    if !ENABLED.load(Ordering::Relaxed) {
        return Busy(None);
    }
    start(what, this_thread())
}

/// A blocking section no thread runs yet (a load waiting for its input).
pub fn busy_unbound(what: &'static str) -> Busy {
    start(what, 0)
}

/// Apply `watchdog-period` (ms; 0 disables). As Redis, a period under two cron ticks is raised
/// to two ticks.
pub fn configure(period_ms: i64, hz: i64) {
    if period_ms <= 0 {
        PERIOD_MS.store(0, Ordering::Relaxed);
        ENABLED.store(false, Ordering::Relaxed);
        return;
    }
    let min = (1000 / hz.clamp(1, 500)) * 2;
    PERIOD_MS.store(period_ms.max(min) as u64, Ordering::Relaxed);
    ENABLED.store(true, Ordering::Relaxed);
    if !STARTED.swap(true, Ordering::SeqCst) {
        capture::install();
        let spawned = std::thread::Builder::new().name("ferrous-watchdog".into()).spawn(watch);
        if spawned.is_err() {
            STARTED.store(false, Ordering::SeqCst);
        }
    }
}

/// The watchdog thread: every tick, report the sections older than the period.
fn watch() {
    loop {
        let period = PERIOD_MS.load(Ordering::Relaxed);
        let tick = if period == 0 { 100 } else { (period / 10).clamp(5, 100) };
        std::thread::sleep(Duration::from_millis(tick));
        if period == 0 {
            continue;
        }
        let expired: Vec<Arc<Section>> = SECTIONS
            .lock()
            .iter()
            .filter(|s| s.since.elapsed() >= Duration::from_millis(period) && !s.reported.swap(true, Ordering::SeqCst))
            .cloned()
            .collect();
        for s in expired {
            report(&s);
        }
    }
}

/// The thread to signal for a trace of `s` (the caller holds the registry lock): none once the
/// section ended or no thread runs it.
fn signal_target(s: &Section) -> Option<u64> {
    match s.thread.load(Ordering::SeqCst) {
        0 => None,
        t => Some(t),
    }
}

fn report(s: &Section) {
    let trace = {
        // Held while signalling: the section's thread is still in it (see Bound::drop and
        // Busy::drop), so the signal reaches the thread that is busy.
        let _g = SECTIONS.lock();
        signal_target(s).map(capture::of_thread)
    };
    let pid = std::process::id();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_secs();
    let mut text = format!("{pid}:signal-handler ({now}) \n--- WATCHDOG TIMER EXPIRED ---\n");
    text.push_str(&format!("Busy for {} ms: {}\n", s.since.elapsed().as_millis(), s.what));
    text.push_str("\n------ STACK TRACE ------\n\nBacktrace:\n");
    match trace {
        None => text.push_str("(no thread is running it now: it is waiting for its input)\n"),
        Some(Err(e)) => text.push_str(&format!("(not captured: {e})\n")),
        Some(Ok(ips)) => text.push_str(&capture::symbolise(&ips)),
    }
    text.push_str(&format!("{pid}:signal-handler ({now}) --------\n\n"));
    super::log::raw_warning(&text);
}

/// Capturing another thread's stack: SIGALRM to that thread, whose handler walks its own stack.
mod capture {
    use super::*;

    const MAX_FRAMES: usize = 100;
    static FRAMES: [AtomicUsize; MAX_FRAMES] = [const { AtomicUsize::new(0) }; MAX_FRAMES];
    static COUNT: AtomicUsize = AtomicUsize::new(0);
    /// 0: no capture asked, 1: asked (the handler records), 2: recorded.
    static STATE: AtomicU8 = AtomicU8::new(0);

    #[cfg(unix)]
    pub fn install() {
        extern "C" fn on_alarm(_: libc::c_int) {
            if STATE.load(Ordering::SeqCst) != 1 {
                return;
            }
            // The interrupted code may be about to read errno (a system call's failure): the
            // unwinder's calls must not change it.
            // SAFETY: __errno_location returns this thread's errno, valid for the thread's life.
            let errno = unsafe { *libc::__errno_location() };
            let mut n = 0;
            // SAFETY: only this handler walks the stack while STATE is 1 (one capture at a
            // time, asked by the watchdog thread); the closure records into atomics, no
            // allocation or lock of ours.
            unsafe {
                backtrace::trace_unsynchronized(|frame| {
                    FRAMES[n].store(frame.ip() as usize, Ordering::Relaxed);
                    n += 1;
                    n < MAX_FRAMES
                });
            }
            COUNT.store(n, Ordering::SeqCst);
            STATE.store(2, Ordering::SeqCst);
            // SAFETY: as above.
            unsafe { *libc::__errno_location() = errno };
        }
        // SAFETY: installs a handler with the signature sigaction expects; SA_RESTART keeps
        // the interrupted thread's system calls going.
        unsafe {
            let mut act: libc::sigaction = std::mem::zeroed();
            act.sa_sigaction = on_alarm as extern "C" fn(libc::c_int) as libc::sighandler_t;
            act.sa_flags = libc::SA_RESTART;
            libc::sigemptyset(&mut act.sa_mask);
            libc::sigaction(libc::SIGALRM, &act, std::ptr::null_mut());
        }
    }

    #[cfg(not(unix))]
    pub fn install() {}

    /// The return addresses on `thread`'s stack now (the handler's own frames included).
    #[cfg(unix)]
    pub fn of_thread(thread: u64) -> Result<Vec<usize>, String> {
        STATE.store(1, Ordering::SeqCst);
        // SAFETY: `thread` is running a registered section, so it is alive (the caller holds
        // the registry lock that ending or leaving a section takes).
        let rc = unsafe { libc::pthread_kill(thread as libc::pthread_t, libc::SIGALRM) };
        if rc != 0 {
            STATE.store(0, Ordering::SeqCst);
            return Err(format!("pthread_kill: {}", std::io::Error::from_raw_os_error(rc)));
        }
        let asked = Instant::now();
        while STATE.load(Ordering::SeqCst) != 2 {
            if asked.elapsed() > Duration::from_millis(500) {
                // The handler may still run later: it records nothing once STATE is 0.
                STATE.store(0, Ordering::SeqCst);
                return Err("the busy thread did not answer within 500 ms".into());
            }
            std::thread::sleep(Duration::from_micros(200));
        }
        let n = COUNT.load(Ordering::SeqCst);
        let ips = FRAMES[..n].iter().map(|f| f.load(Ordering::Relaxed)).collect();
        STATE.store(0, Ordering::SeqCst);
        Ok(ips)
    }

    #[cfg(not(unix))]
    pub fn of_thread(_: u64) -> Result<Vec<usize>, String> {
        Err("not supported on this platform".into())
    }

    /// One line per frame (inlined functions included), `binary(symbol)[0xip]` as
    /// backtrace_symbols_fd writes them, with the source line when known. The frames of the
    /// handler itself, up to the signal trampoline, are left out.
    pub fn symbolise(ips: &[usize]) -> String {
        let exe = std::env::current_exe()
            .ok()
            .and_then(|p| p.file_name().map(|f| f.to_string_lossy().into_owned()))
            .unwrap_or_else(|| "ferrous-server".into());
        let mut lines: Vec<(usize, String)> = Vec::new();
        for (i, &ip) in ips.iter().enumerate().filter(|(_, ip)| **ip != 0) {
            let mut named = false;
            backtrace::resolve(ip as *mut std::ffi::c_void, |sym| {
                named = true;
                let name = sym.name().map(|n| format!("{n:#}")).unwrap_or_else(|| "??".into());
                let at = match (sym.filename(), sym.lineno()) {
                    (Some(f), Some(l)) => format!(" at {}:{l}", f.display()),
                    _ => String::new(),
                };
                lines.push((i, format!("{exe}({name})[{ip:#x}]{at}\n")));
            });
            if !named {
                lines.push((i, format!("{exe}(??)[{ip:#x}]\n")));
            }
        }
        // The handler's frames (walking the stack) and the signal trampoline after them are not
        // the busy thread's work.
        let mut skip = lines.iter().rposition(|(_, l)| l.contains("on_alarm")).map_or(0, |p| lines[p].0 + 1);
        if let Some((_, l)) = lines.iter().find(|(i, _)| *i == skip) {
            if l.contains("restore_rt") || l.contains("(??") {
                skip += 1;
            }
        }
        lines.into_iter().filter(|(i, _)| *i >= skip).map(|(_, l)| l).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A section past the period is reported with the busy thread's own stack.
    #[cfg(unix)]
    #[test]
    fn captures_the_busy_threads_stack() {
        capture::install();
        let (tx, rx) = std::sync::mpsc::channel();
        let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
        let busy_thread = std::thread::spawn(move || {
            #[inline(never)]
            fn watchdog_test_spin(tx: std::sync::mpsc::Sender<u64>, done: std::sync::mpsc::Receiver<()>) {
                tx.send(this_thread()).unwrap();
                while done.try_recv().is_err() {
                    std::hint::spin_loop();
                }
            }
            watchdog_test_spin(tx, done_rx);
        });
        let t = rx.recv().unwrap();
        let ips = capture::of_thread(t).expect("captured");
        done_tx.send(()).unwrap();
        busy_thread.join().unwrap();
        let text = capture::symbolise(&ips);
        assert!(text.contains("watchdog_test_spin"), "{text}");
        assert!(!text.contains("on_alarm"), "the handler's frames are left out: {text}");
    }

    /// A section that ended after the watchdog picked it (between its scan of the registry and
    /// the report) is not signalled: its thread has moved on, or exited.
    #[test]
    fn an_ended_section_is_never_signalled() {
        let section = Arc::new(Section {
            what: "ended",
            since: Instant::now(),
            thread: AtomicU64::new(this_thread()),
            reported: AtomicBool::new(false),
        });
        SECTIONS.lock().push(section.clone());
        let busy = Busy(Some(section.clone()));
        // The watchdog's scan picked it; then the command ends before the report.
        drop(busy);
        let _g = SECTIONS.lock();
        assert_eq!(signal_target(&section), None);
    }

    /// Sections are recorded only while the watchdog is on, and a period under two cron ticks
    /// is raised to two ticks, as Redis does.
    #[test]
    fn period_and_recording_follow_the_configuration() {
        configure(50, 10);
        assert_eq!(PERIOD_MS.load(Ordering::Relaxed), 200);
        let on = busy("test");
        assert!(on.0.is_some());
        assert!(SECTIONS.lock().iter().any(|s| s.what == "test"));
        drop(on);
        assert!(!SECTIONS.lock().iter().any(|s| s.what == "test"), "a section ends when dropped");
        configure(0, 10);
        assert!(busy("test").0.is_none());
    }
}
