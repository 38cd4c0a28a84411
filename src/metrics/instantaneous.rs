//! INFO's instantaneous rates (ops/sec, input/output kbps), as Redis computes them: a counter is
//! sampled every 100 ms and the rate is the mean over the last 16 samples.

use parking_lot::Mutex;

const SAMPLES: usize = 16;

#[derive(Default)]
struct Track {
    /// A first reading was taken (the next one makes a sample).
    started: bool,
    last_base: u64,
    last_value: u64,
    samples: [f64; SAMPLES],
    idx: usize,
}

/// The tracked rates.
#[derive(Default)]
pub struct Rates {
    tracks: Mutex<[Track; 7]>,
}

/// What is tracked.
pub const OPS: usize = 0;
pub const NET_INPUT: usize = 1;
pub const NET_OUTPUT: usize = 2;
/// Event-loop cycles per second, and their mean duration in µs (Redis 7.2's
/// STATS_METRIC_EL_CYCLE / STATS_METRIC_EL_DURATION).
pub const EL_CYCLES: usize = 3;
pub const EL_DURATION: usize = 4;
/// Replication traffic (instantaneous_input_repl_kbps / instantaneous_output_repl_kbps).
pub const NET_REPL_INPUT: usize = 5;
pub const NET_REPL_OUTPUT: usize = 6;

impl Rates {
    /// Sample `value` (a counter) of metric `m` at `now_ms`: a rate per second.
    pub fn track(&self, m: usize, now_ms: i64, value: u64) {
        self.sample(m, now_ms.max(0) as u64, value, 1000.0);
    }

    /// Sample `value` of metric `m` per unit of `base` (another counter) rather than per
    /// second: the mean duration of a cycle is the duration sum per cycle.
    pub fn track_per(&self, m: usize, base: u64, value: u64) {
        self.sample(m, base, value, 1.0);
    }

    /// Redis's trackInstantaneousMetric: the growth of `value` times `factor` per unit of
    /// growth of `base`, as one of the samples (none while `base` has not moved).
    fn sample(&self, m: usize, base: u64, value: u64, factor: f64) {
        let mut t = self.tracks.lock();
        let t = &mut t[m];
        if t.started && base > t.last_base {
            let growth = value.saturating_sub(t.last_value) as f64;
            t.samples[t.idx] = growth * factor / (base - t.last_base) as f64;
            t.idx = (t.idx + 1) % SAMPLES;
        }
        t.started = true;
        t.last_base = base;
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
