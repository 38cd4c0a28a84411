//! Spinning briefly before a worker sleeps (busy polling, `busy-poll-us`; off by default, as a
//! Redis user expects an idle server to use no CPU): a worker about to wait for input
//! first polls, for a few microseconds, a second epoll set holding its connections' sockets.
//! A request that arrives meanwhile finds the worker awake, so the client's send does not have
//! to wake a sleeping thread (on a virtual machine an inter-processor interrupt and a VM exit,
//! paid by the sender), and the worker answers without going through a sleep and a wake-up.
//! The price is CPU: up to the budget per sleep avoided, so that under a steady load of
//! unpipelined clients the worker's core stays busy. Only TCP connections are watched (the
//! others still wake the worker from its sleep).

use std::cell::Cell;
use std::time::{Duration, Instant};

thread_local! {
    /// This worker's epoll set of connection sockets (-1: none, busy polling off).
    static EPOLL: Cell<i32> = const { Cell::new(-1) };
}

/// Give this worker thread its epoll set; false when the system refuses one (busy polling
/// stays off).
pub fn init() -> bool {
    // SAFETY: a plain system call; the descriptor lives as long as the thread.
    let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
    EPOLL.with(|e| e.set(fd));
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
/// `other_work` says a task was woken from another thread.
pub fn spin(budget: Duration, other_work: impl Fn() -> bool) {
    let ep = EPOLL.with(|e| e.get());
    if ep < 0 || budget.is_zero() {
        return;
    }
    let start = Instant::now();
    let mut events = [libc::epoll_event { events: 0, u64: 0 }; 8];
    loop {
        // SAFETY: `events` holds 8 entries.
        let n = unsafe { libc::epoll_wait(ep, events.as_mut_ptr(), events.len() as i32, 0) };
        if n != 0 || other_work() || start.elapsed() >= budget {
            return;
        }
        std::hint::spin_loop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::os::fd::AsRawFd;

    #[test]
    fn the_spin_ends_when_a_watched_socket_has_input_or_the_budget_is_spent() {
        assert!(init());
        let (a, mut b) = std::os::unix::net::UnixStream::pair().unwrap();
        watch(a.as_raw_fd());
        // Nothing to read: the whole (short) budget is spent.
        let t = Instant::now();
        spin(Duration::from_millis(5), || false);
        assert!(t.elapsed() >= Duration::from_millis(5));
        // Input waiting: the spin ends at once, long before its budget, and again while it
        // stays unread.
        b.write_all(b"PING\r\n").unwrap();
        for _ in 0..2 {
            let t = Instant::now();
            spin(Duration::from_secs(30), || false);
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
        spin(Duration::from_secs(30), || true);
        assert!(t.elapsed() < Duration::from_secs(10));
    }

    #[test]
    fn without_an_epoll_set_nothing_spins() {
        // A thread that never called init (a runtime's other threads) returns at once.
        std::thread::spawn(|| {
            let t = Instant::now();
            spin(Duration::from_secs(30), || false);
            assert!(t.elapsed() < Duration::from_secs(10));
        })
        .join()
        .unwrap();
    }
}
