//! The keyspace's hash table (src/types/dict.rs) at a million keys: filling it, hits and
//! misses, a remove + re-insert, one SCAN call, and the incremental rehash step.

mod common;

use criterion::{criterion_group, criterion_main, Criterion, SamplingMode, Throughput};
use ferrous::types::Dict;
use std::hint::black_box;
use std::time::{Duration, Instant};

const N: usize = 1_000_000;
/// A step through the keys that visits them in an order unrelated to insertion.
const STRIDE: usize = 7919;

fn filled(keys: &[Vec<u8>]) -> Dict<u64> {
    let mut d: Dict<u64> = Dict::new();
    for (i, k) in keys.iter().enumerate() {
        d.insert(k, i as u64);
    }
    d
}

fn dict(c: &mut Criterion) {
    let keys = common::keys("key:", N);
    let mut g = c.benchmark_group("dict");

    // Filling an empty table to 1M keys (every growth and its rehash included): per key.
    // (The fewest samples criterion takes, one fill each.)
    g.sample_size(10).sampling_mode(SamplingMode::Flat).measurement_time(Duration::from_secs(8));
    g.throughput(Throughput::Elements(N as u64));
    g.bench_function("insert_1m", |b| b.iter_with_large_drop(|| filled(&keys)));
    g.sample_size(20).sampling_mode(SamplingMode::Auto).measurement_time(Duration::from_millis(800));
    g.throughput(Throughput::Elements(1));

    let mut d = filled(&keys);
    while d.rehash(1000) {}
    let mut i = 0;
    g.bench_function("get_hit_1m", |b| {
        b.iter(|| {
            i = (i + STRIDE) % N;
            black_box(d.get(&keys[i]))
        })
    });
    let misses = common::keys("miss:", N);
    g.bench_function("get_miss_1m", |b| {
        b.iter(|| {
            i = (i + STRIDE) % N;
            black_box(d.get(&misses[i]))
        })
    });
    g.bench_function("remove_insert_1m", |b| {
        b.iter(|| {
            i = (i + STRIDE) % N;
            let v = d.remove(&keys[i]).expect("present");
            d.insert(&keys[i], v)
        })
    });
    // One SCAN call with COUNT 10, the cursor carried from call to call.
    let mut cursor = 0;
    g.throughput(Throughput::Elements(10));
    g.bench_function("scan_count10_1m", |b| {
        b.iter(|| {
            let mut seen = 0u64;
            cursor = d.scan_budget(cursor, 10, |_, v| seen += v);
            black_box(seen)
        })
    });
    drop(d);

    // One step of the incremental rehash (100 buckets, the cron's unit) of a table that just
    // started doubling from 64k buckets. Tables are rebuilt untimed whenever one finishes.
    const SMALL: usize = 1 << 16;
    let fresh = || {
        let mut d = filled(&keys[..SMALL]);
        while d.rehash(1000) {}
        let mut j = SMALL;
        while !d.is_rehashing() {
            d.insert(&keys[j], 0);
            j += 1;
        }
        d
    };
    let mut d = fresh();
    g.throughput(Throughput::Elements(100));
    g.bench_function("rehash_step100", |b| {
        b.iter_custom(|iters| {
            let mut spent = Duration::ZERO;
            for _ in 0..iters {
                if !d.is_rehashing() {
                    d = fresh();
                }
                let t = Instant::now();
                black_box(d.rehash(100));
                spent += t.elapsed();
            }
            spent
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = common::quick();
    targets = dict
}
criterion_main!(benches);
