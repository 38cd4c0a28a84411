//! A cheap unix-time clock for the hot path: the wall clock is read once per thread and then
//! derived from the monotonic `Instant` the pipeline reads anyway, so a command costs no extra
//! clock system call. The anchor is refreshed every second so wall-clock adjustments are picked
//! up quickly.

use std::cell::Cell;
use std::time::{Duration, Instant};

thread_local! {
    /// (an Instant, the unix time in microseconds at that instant)
    static ANCHOR: Cell<Option<(Instant, i64)>> = const { Cell::new(None) };
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

#[cfg(test)]
mod tests {
    #[test]
    fn tracks_the_wall_clock() {
        let a = super::unix_ms_at(std::time::Instant::now());
        let b = crate::keyspace::now_ms();
        assert!((b - a).abs() <= 2, "{a} vs {b}");
    }
}
