//! Spinning briefly before a worker sleeps (busy polling, `busy-poll-us`): a worker about to
//! wait for input first polls, for a few microseconds, a second epoll set holding its
//! connections' sockets. A request that arrives meanwhile finds the worker awake, so the
//! client's send does not have to wake a sleeping thread (on a virtual machine an
//! inter-processor interrupt and a VM exit, paid by the sender), and the worker answers without
//! going through a sleep and a wake-up.
//!
//! The spin's length adapts, as the kernel's guest halt-polling does: `busy-poll-us` is its
//! ceiling (by default 100 µs, and none under a CPU quota). A sleep that a longer spin would
//! have avoided (it ended within the ceiling) doubles the window; a sleep longer than the
//! ceiling halves it, down to nothing. An idle server, or one whose requests come further apart
//! than the ceiling, therefore stops spinning after a few sleeps (a Redis user expects an idle
//! server to use no CPU); only requests arriving closer together than the ceiling keep it
//! spinning. The price is CPU: under such a load the worker's core stays busy. The spin yields
//! the core between polls, so a client on the same core is not starved of the CPU it needs to
//! send its request. Only TCP connections are watched (the others still wake the worker from
//! its sleep).

use std::cell::Cell;
use std::time::{Duration, Instant};

thread_local! {
    /// This worker's epoll set of connection sockets (-1: none, busy polling off).
    static EPOLL: Cell<i32> = const { Cell::new(-1) };
}

/// Give this worker thread its epoll set and its spin window, below `ceiling`; false when the
/// system refuses an epoll set (busy polling stays off).
pub fn init(ceiling: Duration) -> bool {
    // SAFETY: a plain system call; the descriptor lives as long as the thread.
    let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
    EPOLL.with(|e| e.set(fd));
    if fd >= 0 {
        WINDOW.with(|w| w.set(Some(Window::new(ceiling))));
    }
    fd >= 0
}

/// Add a connection's socket to this worker's set. Level-triggered: a poll reports the sockets
/// that hold unread input now. (Edge-triggered, the set would keep the arrivals the worker has
/// already read since the last poll, and these stale events would end most spins at once.) A
/// socket whose input is left unread ends every spin: the worker then just sleeps as without
/// busy polling. The kernel drops a socket from the set when it closes.
pub fn watch(fd: i32) {
    let ep = EPOLL.with(|e| e.get());
    if ep < 0 {
        return;
    }
    let mut ev = libc::epoll_event { events: libc::EPOLLIN as u32, u64: fd as u64 };
    // SAFETY: `ev` is a valid event for the call's duration.
    unsafe { libc::epoll_ctl(ep, libc::EPOLL_CTL_ADD, fd, &mut ev) };
}

/// Poll this worker's sockets for up to `budget`, returning as soon as one has input or
/// `other_work` says a task was woken from another thread: true when the spin ended early.
pub fn spin(budget: Duration, other_work: impl Fn() -> bool) -> bool {
    let ep = EPOLL.with(|e| e.get());
    if ep < 0 || budget.is_zero() {
        return false;
    }
    let start = Instant::now();
    let mut events = [libc::epoll_event { events: 0, u64: 0 }; 8];
    loop {
        // SAFETY: `events` holds 8 entries.
        let n = unsafe { libc::epoll_wait(ep, events.as_mut_ptr(), events.len() as i32, 0) };
        if n != 0 || other_work() {
            return true;
        }
        if start.elapsed() >= budget {
            return false;
        }
        // Let a thread waiting for this core run first (a client on the same core, whose
        // request the spin waits for); with none, this returns at once.
        // SAFETY: a plain system call.
        unsafe { libc::sched_yield() };
    }
}

/// The ceiling `busy-poll-us -1` (the default) stands for.
const AUTO_CEILING: Duration = Duration::from_micros(100);

/// The spin ceiling for a `busy-poll-us` value: 0 is off; -1, the default, is 100 µs unless a
/// CPU quota (a cgroup's, as containers set) gives this process less than its CPUs: spinning
/// would spend the quota and get the whole process throttled.
pub fn ceiling(configured: i64) -> Duration {
    match configured {
        ..0 if cpu_quota_limits() => Duration::ZERO,
        ..0 => AUTO_CEILING,
        us => Duration::from_micros(us as u64),
    }
}

/// Whether a CPU quota allows this process fewer cores than it may run on (the standard
/// library reads cgroup quotas into `available_parallelism`; the affinity mask is the rest).
fn cpu_quota_limits() -> bool {
    // SAFETY: `set` is a plain bit mask the call fills in.
    let cpus = unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 {
            return false;
        }
        libc::CPU_COUNT(&set) as usize
    };
    std::thread::available_parallelism().is_ok_and(|n| n.get() < cpus)
}

/// The first window after spinning had stopped (or the ceiling, if lower).
const GROW_FROM: Duration = Duration::from_micros(8);

/// A worker's adaptive spin window: how long it polls before its next sleep.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Window {
    /// `busy-poll-us`: the longest spin, and the longest sleep worth avoiding.
    ceiling: Duration,
    /// The spin before the next sleep.
    current: Duration,
    /// When the worker went to sleep after a spin that found nothing.
    slept_at: Option<Instant>,
}

impl Window {
    fn new(ceiling: Duration) -> Window {
        Window { ceiling, current: GROW_FROM.min(ceiling), slept_at: None }
    }

    /// The spin before the next sleep.
    fn current(&self) -> Duration {
        self.current
    }

    /// Note how the spin went: `found` when it ended early (no sleep follows).
    fn spun(&mut self, found: bool) {
        self.slept_at = (!found).then(Instant::now);
    }

    /// The worker woke from its sleep: adapt the window to the sleep's length.
    fn woke(&mut self) {
        if let Some(at) = self.slept_at.take() {
            self.adapt(at.elapsed());
        }
    }

    /// A sleep within the ceiling could have been spun through: double the window. A longer
    /// one means the requests come too far apart to be worth spinning for: halve it, and stop
    /// spinning below the first window.
    fn adapt(&mut self, slept: Duration) {
        self.current = if slept <= self.ceiling {
            (self.current * 2).max(GROW_FROM).min(self.ceiling)
        } else if self.current / 2 < GROW_FROM {
            Duration::ZERO
        } else {
            self.current / 2
        };
    }
}

thread_local! {
    /// This worker's spin window (its runtime's park hooks run on its thread; None: no busy
    /// polling).
    static WINDOW: Cell<Option<Window>> = const { Cell::new(None) };
}

/// The runtime's park hook: spin for this worker's current window.
pub fn before_sleep(other_work: impl Fn() -> bool) {
    let Some(mut window) = WINDOW.with(|w| w.get()) else { return };
    let found = spin(window.current(), other_work);
    window.spun(found);
    WINDOW.with(|w| w.set(Some(window)));
}

/// The runtime's unpark hook: adapt this worker's window to how long it slept.
pub fn after_wake() {
    WINDOW.with(|w| {
        if let Some(mut window) = w.get() {
            window.woke();
            w.set(Some(window));
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::os::fd::AsRawFd;

    #[test]
    fn the_spin_ends_when_a_watched_socket_has_input_or_the_budget_is_spent() {
        assert!(init(Duration::from_micros(100)));
        let (a, mut b) = std::os::unix::net::UnixStream::pair().unwrap();
        watch(a.as_raw_fd());
        // Nothing to read: the whole (short) budget is spent.
        let t = Instant::now();
        assert!(!spin(Duration::from_millis(5), || false));
        assert!(t.elapsed() >= Duration::from_millis(5));
        // Input waiting: the spin ends at once, long before its budget, and again while it
        // stays unread.
        b.write_all(b"PING\r\n").unwrap();
        for _ in 0..2 {
            let t = Instant::now();
            assert!(spin(Duration::from_secs(30), || false));
            assert!(t.elapsed() < Duration::from_secs(10));
        }
        // Once read, it no longer counts: the whole budget is spent again.
        let mut got = [0u8; 6];
        (&a).read_exact(&mut got).unwrap();
        let t = Instant::now();
        spin(Duration::from_millis(5), || false);
        assert!(t.elapsed() >= Duration::from_millis(5));
        // Work from another thread ends it too.
        let t = Instant::now();
        assert!(spin(Duration::from_secs(30), || true));
        assert!(t.elapsed() < Duration::from_secs(10));
    }

    #[test]
    fn short_sleeps_widen_the_window_to_the_ceiling_and_long_ones_close_it() {
        let ceiling = Duration::from_micros(50);
        let mut w = Window::new(ceiling);
        assert_eq!(w.current(), GROW_FROM);
        // Sleeps within the ceiling: 8, 16, 32, then capped at 50.
        for want in [16, 32, 50, 50] {
            w.adapt(Duration::from_micros(20));
            assert_eq!(w.current(), Duration::from_micros(want));
        }
        // Sleeps longer than the ceiling: 25, 12.5, then below the first window, nothing.
        w.adapt(Duration::from_millis(5));
        assert_eq!(w.current(), Duration::from_micros(25));
        w.adapt(Duration::from_millis(5));
        assert_eq!(w.current(), Duration::from_nanos(12_500));
        w.adapt(Duration::from_millis(5));
        assert_eq!(w.current(), Duration::ZERO);
        w.adapt(Duration::from_secs(1));
        assert_eq!(w.current(), Duration::ZERO);
        // Requests coming close together again: spinning resumes at the first window.
        w.adapt(Duration::from_micros(3));
        assert_eq!(w.current(), GROW_FROM);
        // A ceiling below the first window is never exceeded.
        let mut small = Window::new(Duration::from_micros(3));
        assert_eq!(small.current(), Duration::from_micros(3));
        small.adapt(Duration::from_micros(1));
        assert_eq!(small.current(), Duration::from_micros(3));
    }

    #[test]
    fn only_a_spin_that_found_nothing_is_followed_by_a_sleep_that_adapts_the_window() {
        let mut w = Window::new(Duration::from_micros(50));
        // A spin that found input: no sleep, nothing to adapt.
        w.spun(true);
        w.woke();
        assert_eq!(w.current(), GROW_FROM);
        // A spin that found nothing, then a long sleep: the window halves to nothing.
        w.spun(false);
        std::thread::sleep(Duration::from_millis(2));
        w.woke();
        assert_eq!(w.current(), Duration::ZERO);
        // Waking again without a new spin changes nothing.
        w.woke();
        assert_eq!(w.current(), Duration::ZERO);
    }

    #[test]
    fn the_default_ceiling_is_off_under_a_cpu_quota_and_explicit_ones_are_kept() {
        assert_eq!(ceiling(0), Duration::ZERO);
        assert_eq!(ceiling(30), Duration::from_micros(30));
        let auto = if cpu_quota_limits() { Duration::ZERO } else { AUTO_CEILING };
        assert_eq!(ceiling(-1), auto);
    }

    #[test]
    fn without_an_epoll_set_nothing_spins() {
        // A thread that never called init (a runtime's other threads) returns at once.
        std::thread::spawn(|| {
            let t = Instant::now();
            assert!(!spin(Duration::from_secs(30), || false));
            assert!(t.elapsed() < Duration::from_secs(10));
        })
        .join()
        .unwrap();
    }
}
