//! The scheduling priority of the calling thread (Linux: `nice` is per thread).

/// Set the calling thread's nice value (0 to 19; higher yields the CPU more readily). Only this
/// thread changes, not the process. Failure (a sandbox that forbids it) leaves the thread as it
/// was: the priority is a latency aid, never needed for correctness.
pub fn set_current_nice(nice: i32) {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: gettid takes no arguments; setpriority with PRIO_PROCESS and a thread id
        // changes that thread only, and reads no memory of ours.
        unsafe {
            let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
            libc::setpriority(libc::PRIO_PROCESS, tid, nice.clamp(0, 19));
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = nice;
}

/// The current thread's nice value (Linux), for tests.
#[cfg(all(test, target_os = "linux"))]
pub fn current_nice() -> i32 {
    // SAFETY: as above; getpriority reads no memory of ours. (-1 is a valid nice value, but not
    // one this module sets.)
    unsafe { libc::getpriority(libc::PRIO_PROCESS, libc::syscall(libc::SYS_gettid) as libc::id_t) }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    fn lowers_only_the_calling_thread() {
        let before = current_nice();
        let inside = std::thread::spawn(|| {
            set_current_nice(19);
            current_nice()
        })
        .join()
        .unwrap();
        assert_eq!(inside, 19);
        assert_eq!(current_nice(), before, "another thread's priority changed");
    }
}
