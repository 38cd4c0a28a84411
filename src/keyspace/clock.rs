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

/// How far an anchor's readings are trusted: past it, the wall clock is read again.
const ANCHOR_SPAN_US: i64 = 1_000_000;

/// Unix time in microseconds at the moment `at` (an `Instant` of the recent past: a script's
/// or an EXEC's start, or just now), derived from the thread's anchor. A new anchor pairs two
/// fresh readings of the clocks and `at` is placed against it: pairing `at` itself with the
/// wall clock read now would put every time derived from that anchor ahead by the age of `at`,
/// for as long as the anchor lasts (scripts then set and checked expiry times up to that age
/// late, and TIME disagreed with them).
pub fn unix_us_at(at: Instant) -> i64 {
    ANCHOR.with(|a| {
        if let Some((base, us)) = a.get() {
            if let Some(off) = offset_us(base, at) {
                if off.abs() < ANCHOR_SPAN_US {
                    return us + off;
                }
            }
        }
        let now = Instant::now();
        let us = now_us();
        a.set(Some((now, us)));
        us - now.saturating_duration_since(at).as_micros() as i64
    })
}

/// `at` minus `base` in microseconds, either way round (None if it does not fit an i64).
fn offset_us(base: Instant, at: Instant) -> Option<i64> {
    match at.checked_duration_since(base) {
        Some(d) => i64::try_from(d.as_micros()).ok(),
        None => i64::try_from(base.duration_since(at).as_micros()).ok().map(|d| -d),
    }
}

/// Unix time in milliseconds at the moment `at` (see [`unix_us_at`]). Derived in
/// microseconds, so it never lags the wall clock's millisecond.
pub fn unix_ms_at(at: Instant) -> i64 {
    unix_us_at(at).div_euclid(1000)
}

/// [`unix_ms_at`] for a [`Stamp`] taken on this thread (a new anchor is taken from a fresh
/// stamp, as in [`unix_us_at`]).
pub fn unix_ms_at_stamp(at: Stamp) -> i64 {
    STAMP_ANCHOR.with(|a| {
        let (base, us) = a.get();
        let d = at.0.wrapping_sub(base.0);
        if base.0 != 0 && d < ANCHOR_SPAN_US as u64 * 1000 {
            return (us + (d / 1000) as i64) / 1000;
        }
        let now = Stamp::now();
        let us = now_us();
        a.set((now, us));
        (us - (now.since(at).as_micros() as i64)).div_euclid(1000)
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

    #[test]
    fn a_new_anchor_places_a_past_instant_in_the_past() {
        // A thread of its own, so the conversion below is the one that takes the anchor.
        std::thread::spawn(|| {
            // Bounds from wall-clock readings taken around each step, so a busy machine
            // preempting the thread between readings cannot fail the test.
            let age = std::time::Duration::from_millis(50);
            let before = crate::keyspace::now_ms();
            let Some(past) = std::time::Instant::now().checked_sub(age) else { return };
            let got = super::unix_ms_at(past);
            let after = crate::keyspace::now_ms();
            assert!(before - 51 <= got && got <= after - 49, "{got} not in [{before}-50, {after}-50]");
            // Times derived from that anchor afterwards are not ahead of the wall clock either.
            let before = crate::keyspace::now_ms();
            let now = super::unix_ms_at(std::time::Instant::now());
            let after = crate::keyspace::now_ms();
            assert!(before - 1 <= now && now <= after + 1, "{now} not in [{before}, {after}]");
            assert_eq!(super::unix_us_at(past).div_euclid(1000), got);
        })
        .join()
        .unwrap();
    }

    #[test]
    fn a_new_stamp_anchor_places_an_old_stamp_in_the_past() {
        std::thread::spawn(|| {
            let before = crate::keyspace::now_ms();
            let old = super::Stamp(super::monotonic_ns().saturating_sub(50_000_000));
            let got = super::unix_ms_at_stamp(old);
            let after = crate::keyspace::now_ms();
            assert!(before - 51 <= got && got <= after - 49, "{got} not in [{before}-50, {after}-50]");
            let before = crate::keyspace::now_ms();
            let now = super::unix_ms_at_stamp(super::Stamp::now());
            let after = crate::keyspace::now_ms();
            assert!(before - 1 <= now && now <= after + 1, "{now} not in [{before}, {after}]");
        })
        .join()
        .unwrap();
    }
}
