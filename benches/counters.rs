//! The statistics every command writes (its calls/usec counters and a latency bucket), from one
//! thread and from two threads at once: one set of shared atomics, as every worker wrote them
//! before, against the per-thread stripes of `util::striped` that replace them. With two
//! threads on two cores the shared line moves between the cores at each write (the coherence
//! cost of docs/SCALING.md); the stripes do not share lines.

mod common;

use criterion::{criterion_group, criterion_main, Criterion};
use ferrous::util::striped::CounterSet;
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A command's statistics as one set of atomics (calls, usec, a latency bucket).
#[derive(Default)]
struct Shared([AtomicU64; 3]);

trait Stats: Send + Sync + 'static {
    fn record(&self, usec: u64);
}

impl Stats for Shared {
    #[inline]
    fn record(&self, usec: u64) {
        self.0[0].fetch_add(1, Relaxed);
        self.0[1].fetch_add(usec, Relaxed);
        self.0[2].fetch_add(1, Relaxed);
    }
}

impl Stats for CounterSet<3> {
    #[inline]
    fn record(&self, usec: u64) {
        let c = self.local();
        c[0].fetch_add(1, Relaxed);
        c[1].fetch_add(usec, Relaxed);
        c[2].fetch_add(1, Relaxed);
    }
}

/// Time per `record` while `threads` threads record `iters` calls each at the same time.
fn run<S: Stats + Default>(threads: usize, iters: u64) -> Duration {
    let stats = Arc::new(S::default());
    let start = Arc::new(std::sync::Barrier::new(threads));
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let (stats, start) = (stats.clone(), start.clone());
            std::thread::spawn(move || {
                start.wait();
                let t = Instant::now();
                for i in 0..iters {
                    stats.record(black_box(i & 7));
                }
                t.elapsed()
            })
        })
        .collect();
    let total: Duration = handles.into_iter().map(|h| h.join().unwrap()).sum();
    total / threads as u32
}

fn counters(c: &mut Criterion) {
    let mut g = c.benchmark_group("command_stats");
    for threads in [1, 2] {
        g.bench_function(format!("shared_atomics/{threads}_threads"), |b| {
            b.iter_custom(|iters| run::<Shared>(threads, iters))
        });
        g.bench_function(format!("striped/{threads}_threads"), |b| {
            b.iter_custom(|iters| run::<CounterSet<3>>(threads, iters))
        });
    }
    g.finish();
}

criterion_group! { name = benches; config = common::quick(); targets = counters }
criterion_main!(benches);
