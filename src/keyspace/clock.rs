//! A cheap unix-time clock for the hot path: the wall clock is read once per thread and then
//! derived from the monotonic `Instant` the dispatcher reads anyway, so a command costs no extra
//! clock system call. The anchor is refreshed every second so wall-clock adjustments are picked
//! up quickly.

use std::cell::Cell;
use std::time::{Duration, Instant};

thread_local! {
    static ANCHOR: Cell<Option<(Instant, i64)>> = const { Cell::new(None) };
}

/// Unix time in milliseconds at the moment `at` (an `Instant` taken just now).
pub fn unix_ms_at(at: Instant) -> i64 {
    ANCHOR.with(|a| {
        if let Some((base, ms)) = a.get() {
            if let Some(d) = at.checked_duration_since(base) {
                if d < Duration::from_secs(1) {
                    return ms + d.as_millis() as i64;
                }
            }
        }
        let ms = super::now_ms();
        a.set(Some((at, ms)));
        ms
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
