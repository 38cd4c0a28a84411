//! Latency monitoring as Redis 7.0: named events ("command", "fast-command", "expire-cycle",
//! "eviction-cycle", "aof-fsync-always"...) record a sample when they take at least
//! `latency-monitor-threshold` milliseconds (160 samples per event, one per second at most,
//! the all-time maximum kept) for LATENCY LATEST/HISTORY/RESET/GRAPH/DOCTOR; and per-command
//! latency histograms (HdrHistogram, 1 ns to 1 s, 2 significant digits, as Redis's) for
//! LATENCY HISTOGRAM, INFO latencystats and the Prometheus endpoint.

use hdrhistogram::Histogram;
use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

use crate::util::striped::Striped;

/// Samples kept per event (Redis's LATENCY_TS_LEN).
const TS_LEN: usize = 160;
const GRAPH_COLS: usize = 80;

#[derive(Clone, Copy, Debug, Default)]
pub struct Sample {
    /// Unix seconds.
    pub time: i64,
    /// Milliseconds.
    pub latency: u64,
}

#[derive(Default)]
struct Series {
    samples: Vec<Sample>,
    max: u64,
}

/// The latency events seen so far.
#[derive(Default)]
pub struct LatencyMonitor {
    events: Mutex<BTreeMap<String, Series>>,
}

fn now_secs() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

impl LatencyMonitor {
    /// Record `ms` for `event` if the monitor is on (`threshold` > 0) and it is at least the
    /// threshold (Redis's latencyAddSampleIfNeeded).
    pub fn add_if_needed(&self, threshold: i64, event: &str, ms: u64) {
        if threshold > 0 && ms >= threshold as u64 {
            self.add(event, ms);
        }
    }

    pub fn add(&self, event: &str, ms: u64) {
        let now = now_secs();
        let mut events = self.events.lock();
        let s = events.entry(event.to_string()).or_default();
        s.max = s.max.max(ms);
        // Several samples within one second keep the highest.
        if let Some(last) = s.samples.last_mut() {
            if last.time == now {
                last.latency = last.latency.max(ms);
                return;
            }
        }
        s.samples.push(Sample { time: now, latency: ms });
        if s.samples.len() > TS_LEN {
            s.samples.remove(0);
        }
    }

    /// LATENCY LATEST: (event, time of the last sample, its latency, all-time max).
    pub fn latest(&self) -> Vec<(String, i64, u64, u64)> {
        let events = self.events.lock();
        events
            .iter()
            .filter_map(|(name, s)| s.samples.last().map(|l| (name.clone(), l.time, l.latency, s.max)))
            .collect()
    }

    /// LATENCY HISTORY: the event's samples, oldest first.
    pub fn history(&self, event: &str) -> Vec<Sample> {
        self.events.lock().get(event).map(|s| s.samples.clone()).unwrap_or_default()
    }

    /// LATENCY RESET: forget these events (all when empty); how many were reset.
    pub fn reset(&self, names: &[String]) -> usize {
        let mut events = self.events.lock();
        if names.is_empty() {
            let n = events.len();
            events.clear();
            return n;
        }
        names.iter().filter(|n| events.remove(n.as_str()).is_some()).count()
    }

    /// LATENCY GRAPH: an ASCII graph of the event's samples (None: no samples).
    pub fn graph(&self, event: &str) -> Option<String> {
        let events = self.events.lock();
        let s = events.get(event).filter(|s| !s.samples.is_empty())?;
        let min = s.samples.iter().map(|x| x.latency).min().unwrap_or(0);
        let max = s.samples.iter().map(|x| x.latency).max().unwrap_or(0);
        let mut g = format!("{event} - high {max} ms, low {min} ms (all time high {} ms)\n", s.max);
        g.push_str(&"-".repeat(GRAPH_COLS));
        g.push('\n');
        let now = now_secs();
        let rows = 4u64;
        let cols: Vec<&Sample> =
            s.samples.iter().rev().take(GRAPH_COLS).collect::<Vec<_>>().into_iter().rev().collect();
        // Bars: each sample scaled between min and max over `rows` rows.
        let level = |v: u64| if max == min { rows } else { 1 + (v - min) * (rows - 1) / (max - min) };
        for r in (1..=rows).rev() {
            let line: String = cols.iter().map(|x| if level(x.latency) >= r { '#' } else { ' ' }).collect();
            g.push_str(line.trim_end());
            g.push('\n');
        }
        // Labels (how long ago), written vertically.
        let labels: Vec<String> = cols
            .iter()
            .map(|x| {
                let e = now - x.time;
                if e < 60 {
                    format!("{e}s")
                } else if e < 3600 {
                    format!("{}m", e / 60)
                } else if e < 86400 {
                    format!("{}h", e / 3600)
                } else {
                    format!("{}d", e / 86400)
                }
            })
            .collect();
        let height = labels.iter().map(String::len).max().unwrap_or(0);
        for i in 0..height {
            let line: String = labels.iter().map(|l| l.as_bytes().get(i).map_or(' ', |b| *b as char)).collect();
            g.push_str(line.trim_end());
            g.push('\n');
        }
        Some(g)
    }

    /// LATENCY DOCTOR: a human report of the events and what may cause them.
    pub fn doctor(&self, threshold: i64) -> String {
        let events = self.events.lock();
        if threshold == 0 && events.is_empty() {
            return "I'm sorry, Dave, I can't do that. Latency monitoring is disabled in this Redis instance. You may use \"CONFIG SET latency-monitor-threshold <milliseconds>.\" in order to enable it. If we weren't in a deep space mission I'd suggest to take a look at https://redis.io/topics/latency-monitor.\n".into();
        }
        if events.is_empty() {
            return "Dave, no latency spike was observed during the lifetime of this Redis instance, not in the slightest bit. I honestly think you ought to sit down calmly, take a stress pill, and think things over.\n".into();
        }
        let mut r = String::from(
            "Dave, I have observed latency spikes in this Redis instance. You don't mind talking about it, do you Dave?\n\n",
        );
        for (i, (name, s)) in events.iter().enumerate() {
            let n = s.samples.len() as u64;
            let avg = s.samples.iter().map(|x| x.latency).sum::<u64>() / n.max(1);
            let mad = s.samples.iter().map(|x| x.latency.abs_diff(avg)).sum::<u64>() / n.max(1);
            let period = match (s.samples.first(), s.samples.last()) {
                (Some(a), Some(b)) if n > 1 => (b.time - a.time) as f64 / (n - 1) as f64,
                _ => 0.0,
            };
            let _ = writeln!(
                r,
                "{}. {name}: {n} latency spikes (average {avg}ms, mean deviation {mad}ms, period {period:.2} sec). Worst all time event {}ms.",
                i + 1,
                s.max
            );
        }
        r.push_str("\nI have a few advices for you:\n\n");
        if threshold > 0 {
            let _ = writeln!(
                r,
                "- The system is slow to execute Redis code paths not containing system calls. This usually means the system does not provide Redis CPU time to run for long periods. You should try to:\n  1) Lower the system load.\n  2) Use a computer / VM just for Redis if you are running other software in the same system.\n  3) Check if you have a \"noisy neighbour\" problem.\n  4) Check with 'redis-cli --intrinsic-latency 100' what is the intrinsic latency in your system.\n  5) Check if the problem is allocator-related by recompiling Redis with MALLOC=libc, if you are using Jemalloc. However this may create fragmentation problems."
            );
        }
        if events.contains_key("command") || events.contains_key("fast-command") {
            r.push_str("- Check your Slow Log to understand what are the commands you are running which are too slow to execute. Please check https://redis.io/commands/slowlog for more information.\n");
            r.push_str("- Deleting, expiring or evicting (because of maxmemory policy) large objects is a blocking operation. If you have very large objects that are often deleted, expired, or evicted, try to fragment those objects into multiple smaller objects.\n");
        }
        r
    }
}

/// A command's latency histogram (nanoseconds, 1 ns .. 1 s, 2 significant digits, as Redis's):
/// HdrHistogram's buckets kept as atomic counters, allocated on the command's first call on
/// each worker thread (`util::striped`: the workers do not share bucket lines). Recording runs
/// after every command, so it is one relaxed add on the bucket's counter — no lock, no
/// min/max/total bookkeeping; the readers (rare) rebuild an `hdrhistogram::Histogram` from the
/// counts, which gives exactly the figures recording into it directly would have.
#[derive(Default)]
pub struct CommandHistogram(Striped<OnceLock<Box<[AtomicU64]>>>);

/// The histogram's layout, as `Histogram::new_with_bounds(1, 1_000_000_000, 2)` lays it out:
/// 2 significant digits need 256 sub-buckets (the upper half of each bucket is new values),
/// and 23 buckets reach 1 s.
mod layout {
    /// log2 of half the sub-bucket count.
    pub const SUB_HALF_MAGNITUDE: u32 = 7;
    pub const SUB_HALF: usize = 1 << SUB_HALF_MAGNITUDE;
    /// Values below this many ns share bucket 0 (one counter per value).
    const SUB_MASK: u64 = (2 << SUB_HALF_MAGNITUDE) - 1;
    /// Buckets from 1 ns to 1 s.
    const BUCKETS: usize = 23;
    pub const COUNTS: usize = (BUCKETS + 1) * SUB_HALF;
    pub const HIGHEST: u64 = 1_000_000_000;

    /// The counter of a value in 1..=HIGHEST.
    #[inline]
    pub fn index(v: u64) -> usize {
        let bucket = 64 - SUB_HALF_MAGNITUDE - 1 - (v | SUB_MASK).leading_zeros();
        let sub = (v >> bucket) as usize;
        ((bucket as usize + 1) << SUB_HALF_MAGNITUDE) + sub - SUB_HALF
    }

    /// The lowest value counted by counter `i` (a value that lands on it).
    pub fn value(i: usize) -> u64 {
        let bucket = (i >> SUB_HALF_MAGNITUDE) as i64 - 1;
        let sub = (i & (SUB_HALF - 1)) + SUB_HALF;
        if bucket < 0 {
            (sub - SUB_HALF) as u64
        } else {
            (sub as u64) << bucket
        }
    }
}

impl CommandHistogram {
    /// Record one call of `ns` nanoseconds (clamped to 1 ns .. 1 s, as Redis).
    #[inline]
    pub fn record(&self, ns: u64) {
        let counts = self.0.local().get_or_init(|| (0..layout::COUNTS).map(|_| AtomicU64::new(0)).collect());
        counts[layout::index(ns.clamp(1, layout::HIGHEST))].fetch_add(1, Ordering::Relaxed);
    }

    /// Every stripe's counters that were allocated.
    fn stripes(&self) -> impl Iterator<Item = &[AtomicU64]> {
        self.0.iter().filter_map(|s| s.get().map(|c| &c[..]))
    }

    pub fn reset(&self) {
        for counts in self.stripes() {
            for c in counts {
                c.store(0, Ordering::Relaxed);
            }
        }
    }

    /// The counts as an HdrHistogram; None before the first call (or since a reset).
    fn snapshot(&self) -> Option<Histogram<u64>> {
        let mut h = Histogram::new_with_bounds(1, layout::HIGHEST, 2).expect("valid histogram bounds");
        for counts in self.stripes() {
            for (i, c) in counts.iter().enumerate() {
                let n = c.load(Ordering::Relaxed);
                if n > 0 {
                    let _ = h.record_n(layout::value(i), n);
                }
            }
        }
        (!h.is_empty()).then_some(h)
    }

    /// Total calls recorded.
    pub fn calls(&self) -> u64 {
        self.stripes().map(|counts| counts.iter().map(|c| c.load(Ordering::Relaxed)).sum::<u64>()).sum()
    }

    /// LATENCY HISTOGRAM's buckets: (upper bound in µs, cumulative count), powers of two from
    /// 1024 ns, only where the count grows (Redis's fillCommandCDF).
    pub fn cdf(&self) -> Vec<(u64, u64)> {
        let Some(h) = self.snapshot() else { return Vec::new() };
        let mut out = Vec::new();
        let mut previous = 0;
        let mut cumulative = 0;
        for v in h.iter_log(1024, 2.0) {
            cumulative += v.count_since_last_iteration();
            if cumulative > previous {
                out.push((h.highest_equivalent(v.value_iterated_to()) / 1000, cumulative));
            }
            previous = cumulative;
        }
        out
    }

    /// The values (µs) at these percentiles, for INFO latencystats.
    pub fn percentiles(&self, ps: &[f64]) -> Option<Vec<f64>> {
        let h = self.snapshot()?;
        Some(ps.iter().map(|p| h.value_at_percentile(*p) as f64 / 1000.0).collect())
    }

    /// (upper bound in seconds, cumulative count) buckets, for Prometheus.
    pub fn buckets_seconds(&self) -> Vec<(f64, u64)> {
        self.cdf().into_iter().map(|(us, n)| (us as f64 / 1e6, n)).collect()
    }

    /// Total recorded time in seconds (approximated from the histogram).
    pub fn sum_seconds(&self) -> f64 {
        self.snapshot().map_or(0.0, |h| h.mean() * h.len() as f64 / 1e9)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_and_histograms() {
        let m = LatencyMonitor::default();
        m.add_if_needed(0, "command", 500);
        assert!(m.latest().is_empty(), "monitor off");
        m.add_if_needed(100, "command", 50);
        assert!(m.latest().is_empty(), "under the threshold");
        m.add_if_needed(100, "command", 300);
        m.add_if_needed(100, "command", 400);
        let l = m.latest();
        assert_eq!(l.len(), 1);
        assert_eq!((l[0].2, l[0].3), (400, 400), "same second: one sample, the highest");
        assert!(m.graph("command").unwrap().starts_with("command - high 400 ms, low 400 ms"));
        assert!(m.doctor(100).contains("1. command: 1 latency spikes"));
        assert_eq!(m.reset(&["nosuch".into()]), 0);
        assert_eq!(m.reset(&[]), 1);

        let h = CommandHistogram::default();
        assert!(h.cdf().is_empty());
        for ns in [500, 1500, 3000, 3000, 1_000_000] {
            h.record(ns);
        }
        assert_eq!(h.calls(), 5);
        let cdf = h.cdf();
        assert_eq!(cdf.last().unwrap().1, 5);
        assert_eq!(cdf[0], (1, 1));
        let p = h.percentiles(&[50.0, 100.0]).unwrap();
        assert!((p[0] - 3.0).abs() < 0.1, "{p:?}");
    }

    /// The atomic counters land every value where HdrHistogram would, so every figure read
    /// back is the one recording into an HdrHistogram directly gives.
    #[test]
    fn counters_match_hdrhistogram() {
        let direct = Histogram::<u64>::new_with_bounds(1, layout::HIGHEST, 2).unwrap();
        assert!(direct.distinct_values() <= layout::COUNTS);
        let mut values: Vec<u64> = (1..5000).collect();
        let mut v = 1u64;
        while v <= layout::HIGHEST {
            values.extend([v - 1, v, v + 1, v * 3 / 2]);
            v *= 2;
        }
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..20_000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            values.push(seed % (layout::HIGHEST + 1));
        }
        values.push(layout::HIGHEST);
        let values: Vec<u64> = values.into_iter().map(|v| v.clamp(1, layout::HIGHEST)).collect();
        let mut direct = direct;
        let ours = CommandHistogram::default();
        for &v in &values {
            assert_eq!(layout::value(layout::index(v)), direct.lowest_equivalent(v), "value {v}");
            assert!(layout::index(v) < layout::COUNTS);
            direct.record(v).unwrap();
            ours.record(v);
        }
        let snap = ours.snapshot().unwrap();
        assert_eq!(snap.len(), direct.len());
        assert_eq!(snap.max(), direct.max());
        assert_eq!(snap.min_nz(), direct.min_nz());
        assert_eq!(snap.mean(), direct.mean());
        for p in [0.0, 50.0, 90.0, 99.0, 99.9, 100.0] {
            assert_eq!(snap.value_at_percentile(p), direct.value_at_percentile(p));
        }
        let a: Vec<_> =
            snap.iter_log(1024, 2.0).map(|v| (v.value_iterated_to(), v.count_since_last_iteration())).collect();
        let b: Vec<_> =
            direct.iter_log(1024, 2.0).map(|v| (v.value_iterated_to(), v.count_since_last_iteration())).collect();
        assert_eq!(a, b);
        ours.reset();
        assert_eq!(ours.calls(), 0);
        assert!(ours.cdf().is_empty() && ours.percentiles(&[50.0]).is_none());
    }
}
