//! INFO's instantaneous rates (ops/sec, input/output kbps), as Redis computes them: a counter is
//! sampled every 100 ms and the rate is the mean over the last 16 samples.

use parking_lot::Mutex;

const SAMPLES: usize = 16;

#[derive(Default)]
struct Track {
    last_time_ms: i64,
    last_value: u64,
    samples: [f64; SAMPLES],
    idx: usize,
}

/// The tracked rates.
#[derive(Default)]
pub struct Rates {
    tracks: Mutex<[Track; 5]>,
}

/// What is tracked.
pub const OPS: usize = 0;
pub const NET_INPUT: usize = 1;
pub const NET_OUTPUT: usize = 2;
/// Event-loop cycles per second, and their mean duration in µs (Redis 7.2's
/// STATS_METRIC_EL_CYCLE / STATS_METRIC_EL_DURATION).
pub const EL_CYCLES: usize = 3;
pub const EL_DURATION: usize = 4;

impl Rates {
    /// Sample `value` (a counter) of metric `m` at `now_ms` (Redis's trackInstantaneousMetric).
    pub fn track(&self, m: usize, now_ms: i64, value: u64) {
        let mut t = self.tracks.lock();
        let t = &mut t[m];
        if t.last_time_ms > 0 && now_ms > t.last_time_ms {
            let per_sec = value.saturating_sub(t.last_value) as f64 * 1000.0 / (now_ms - t.last_time_ms) as f64;
            t.samples[t.idx] = per_sec;
            t.idx = (t.idx + 1) % SAMPLES;
        }
        t.last_time_ms = now_ms;
        t.last_value = value;
    }

    /// Sample `value` of metric `m` per unit of `base` (another counter) rather than per
    /// second: the mean duration of a cycle is the duration sum per cycle.
    pub fn track_per(&self, m: usize, base: u64, value: u64) {
        let mut t = self.tracks.lock();
        let t = &mut t[m];
        let base = base as i64;
        if t.last_time_ms > 0 {
            let b = base - t.last_time_ms;
            let v = value.saturating_sub(t.last_value) as f64;
            t.samples[t.idx] = if b > 0 { v / b as f64 } else { 0.0 };
            t.idx = (t.idx + 1) % SAMPLES;
        }
        t.last_time_ms = base.max(1);
        t.last_value = value;
    }

    /// The mean of the last samples, per second.
    pub fn get(&self, m: usize) -> f64 {
        let t = self.tracks.lock();
        t[m].samples.iter().sum::<f64>() / SAMPLES as f64
    }

    pub fn reset(&self) {
        *self.tracks.lock() = Default::default();
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn rate() {
        let r = super::Rates::default();
        for i in 0..=16 {
            r.track(super::OPS, 1000 + i * 100, (i * 10) as u64);
        }
        assert!((r.get(super::OPS) - 100.0).abs() < 0.01);
    }
}
