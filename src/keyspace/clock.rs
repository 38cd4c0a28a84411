//! Cheap clocks for the hot path.
//!
//! [`Stamp`]: a reading of the monotonic clock (the one `Instant` reads) as plain nanoseconds,
//! so that taking it, subtracting two and deriving the unix time cost a few instructions
//! (`Instant`'s checked timespec arithmetic cost ~80 per subtraction, and the per-command path
//! does several). The thread's latest reading is kept ([`Stamp::last`]) for callers that need
//! "about now" without reading the clock again.
//!
//! Unix time: the wall clock is read once per thread and then derived from a monotonic reading
//! the pipeline takes anyway, so a command costs no extra clock system call. The anchor is
//! refreshed every second so wall-clock adjustments are picked up quickly.

use std::cell::Cell;
use std::time::{Duration, Instant};

thread_local! {
    /// (an Instant, the unix time in microseconds at that instant)
    static ANCHOR: Cell<Option<(Instant, i64)>> = const { Cell::new(None) };
    /// (a stamp, the unix time in microseconds at that stamp)
    static STAMP_ANCHOR: Cell<(Stamp, i64)> = const { Cell::new((Stamp(0), 0)) };
    /// This thread's latest reading.
    static LAST: Cell<Stamp> = const { Cell::new(Stamp(0)) };
}

/// A monotonic clock reading, in nanoseconds (comparable across threads).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Stamp(u64);

impl Stamp {
    /// Read the monotonic clock.
    pub fn now() -> Stamp {
        let s = Stamp(monotonic_ns());
        LAST.with(|l| l.set(s));
        s
    }

    /// The latest reading this thread took (a zero stamp before the first).
    pub fn last() -> Stamp {
        LAST.with(|l| l.get())
    }

    /// Time from `earlier` to this reading (zero if `earlier` is later).
    pub fn since(self, earlier: Stamp) -> Duration {
        Duration::from_nanos(self.0.saturating_sub(earlier.0))
    }

    /// Milliseconds on the monotonic clock (for intervals between readings).
    pub fn as_ms(self) -> u64 {
        self.0 / 1_000_000
    }
}

#[cfg(unix)]
fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes the timespec it is given; CLOCK_MONOTONIC always exists.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

#[cfg(not(unix))]
fn monotonic_ns() -> u64 {
    static EPOCH: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    EPOCH.get_or_init(Instant::now).elapsed().as_nanos() as u64 + 1
}

fn now_us() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_micros() as i64).unwrap_or(0)
}

/// Unix time in milliseconds at the moment `at` (an `Instant` taken just now). Derived in
/// microseconds, so it never lags the wall clock's millisecond.
pub fn unix_ms_at(at: Instant) -> i64 {
    ANCHOR.with(|a| {
        if let Some((base, us)) = a.get() {
            if let Some(d) = at.checked_duration_since(base) {
                if d < Duration::from_secs(1) {
                    return (us + d.as_micros() as i64) / 1000;
                }
            }
        }
        let us = now_us();
        a.set(Some((at, us)));
        us / 1000
    })
}

/// Unix time in microseconds at the moment `at` (an `Instant` of the past).
pub fn unix_us_at(at: Instant) -> i64 {
    now_us() - Instant::now().saturating_duration_since(at).as_micros() as i64
}

/// [`unix_ms_at`] for a [`Stamp`] taken just now.
pub fn unix_ms_at_stamp(at: Stamp) -> i64 {
    STAMP_ANCHOR.with(|a| {
        let (base, us) = a.get();
        let d = at.0.wrapping_sub(base.0);
        if base.0 != 0 && d < 1_000_000_000 {
            return (us + (d / 1000) as i64) / 1000;
        }
        let us = now_us();
        a.set((at, us));
        us / 1000
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn tracks_the_wall_clock() {
        let a = super::unix_ms_at(std::time::Instant::now());
        let b = crate::keyspace::now_ms();
        assert!((b - a).abs() <= 2, "{a} vs {b}");
        let c = super::unix_ms_at_stamp(super::Stamp::now());
        assert!((c - b).abs() <= 2, "{c} vs {b}");
    }

    #[test]
    fn stamps_follow_the_monotonic_clock() {
        use super::Stamp;
        let a = Stamp::now();
        let i = std::time::Instant::now();
        std::thread::sleep(std::time::Duration::from_millis(5));
        let b = Stamp::now();
        assert_eq!(Stamp::last(), b);
        let by_stamp = b.since(a);
        let by_instant = i.elapsed();
        assert!(by_stamp >= std::time::Duration::from_millis(5));
        assert!(by_stamp.abs_diff(by_instant) < std::time::Duration::from_millis(2), "{by_stamp:?} vs {by_instant:?}");
        assert_eq!(a.since(b), std::time::Duration::ZERO);
        assert!((b.as_ms() - a.as_ms()).abs_diff(by_stamp.as_millis() as u64) <= 1);
    }
}
