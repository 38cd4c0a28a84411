//! The scheduling priority of the calling thread (Linux: `nice` is per thread).

/// Lower the calling thread's priority by `by` nice steps (its nice value, inherited from the
/// process, plus `by`, at most 19, the lowest). Only this thread changes, not the process; 0
/// leaves it as it is, so it never runs ahead of its siblings. Failure (a sandbox that forbids
/// it) leaves the thread as it was: the priority is a latency aid, never needed for correctness.
pub fn lower_current(by: i32) {
    #[cfg(target_os = "linux")]
    if by > 0 {
        // SAFETY: gettid takes no arguments; getpriority/setpriority with PRIO_PROCESS and a
        // thread id read or change that thread only, and touch no memory of ours.
        unsafe {
            let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
            let now = libc::getpriority(libc::PRIO_PROCESS, tid);
            libc::setpriority(libc::PRIO_PROCESS, tid, now.saturating_add(by).min(19));
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = by;
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    fn current_nice() -> i32 {
        // SAFETY: as above.
        unsafe { libc::getpriority(libc::PRIO_PROCESS, libc::syscall(libc::SYS_gettid) as libc::id_t) }
    }

    #[test]
    fn lowers_only_the_calling_thread_and_never_past_19() {
        let before = current_nice();
        let (once, twice) = std::thread::spawn(|| {
            lower_current(5);
            let once = current_nice();
            lower_current(30);
            (once, current_nice())
        })
        .join()
        .unwrap();
        assert_eq!(once, (before + 5).min(19));
        assert_eq!(twice, 19);
        assert_eq!(current_nice(), before, "another thread's priority changed");
    }
}
