//! What the four micro-benchmarks share: a short default run (so `cargo bench` of all of them
//! stays within a few minutes on a 2-core machine) that the command line can still lengthen
//! (`-- --measurement-time 5 --sample-size 50`), and the server's allocator.

use criterion::Criterion;
use std::time::Duration;

/// The server's allocator (src/main.rs), so allocation costs are the ones it pays.
#[global_allocator]
static GLOBAL: ferrous::metrics::memory::Counting<mimalloc::MiMalloc> =
    ferrous::metrics::memory::Counting(mimalloc::MiMalloc);

/// Criterion with short warm-up and measurement; command-line options override it.
pub fn quick() -> Criterion {
    Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_millis(800))
        .noise_threshold(0.03)
}

/// `n` distinct keys `prefix` + number, as byte vectors.
#[allow(dead_code)] // not every bench uses it
pub fn keys(prefix: &str, n: usize) -> Vec<Vec<u8>> {
    (0..n).map(|i| format!("{prefix}{i}").into_bytes()).collect()
}
