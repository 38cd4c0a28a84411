//! Each value type's small encoding against its large one (src/types), at the type level:
//! hash listpack vs hashtable get/set at 8 and 128 fields; set intset / listpack / hashtable
//! add + contains; zset listpack vs skiplist add and a 10-element range; list push/pop and
//! LRANGE at listpack and quicklist sizes; string int / embstr / raw for APPEND and INCR.
//! Every case asserts the encoding it claims to measure.

mod common;

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion};
use ferrous::types::hash::HashLimits;
use ferrous::types::set::SetLimits;
use ferrous::types::zset::Limits as ZLimits;
use ferrous::types::{HashValue, ListValue, SetValue, StrValue, ZSetValue};
use std::hint::black_box;

/// Redis 7.2's default `*-max-listpack-*` limits.
const HASH_LIMITS: HashLimits = HashLimits { max_entries: 128, max_value: 64 };
const ZSET_LIMITS: ZLimits = ZLimits { max_entries: 128, max_value: 64 };

fn hash(c: &mut Criterion) {
    let mut g = c.benchmark_group("hash");
    for n in [8usize, 128] {
        let fields = common::keys("field:", n);
        for table in [false, true] {
            let mut h = HashValue::default();
            for f in &fields {
                h.set(f, b"value", HASH_LIMITS);
            }
            if table {
                h.convert_to_table();
            }
            let enc = h.encoding();
            assert_eq!(enc, if table { "hashtable" } else { "listpack" });
            let mut i = 0;
            g.bench_function(BenchmarkId::new(format!("get/{enc}"), n), |b| {
                b.iter(|| {
                    i = (i + 1) % n;
                    black_box(h.get(&fields[i]))
                })
            });
            g.bench_function(BenchmarkId::new(format!("set/{enc}"), n), |b| {
                b.iter(|| {
                    i = (i + 1) % n;
                    black_box(h.set(&fields[i], b"other", HASH_LIMITS))
                })
            });
            assert_eq!(h.encoding(), enc);
        }
    }
    g.finish();
}

/// Sets of 100 members (all three encodings can hold that many with the default limits).
fn set(c: &mut Criterion) {
    const N: usize = 100;
    let lim = SetLimits::default();
    let ints: Vec<Vec<u8>> = (0..N).map(|i| (i * 2).to_string().into_bytes()).collect();
    let strs = common::keys("member:", N);
    let mut g = c.benchmark_group("set");
    for enc in ["intset", "listpack", "hashtable"] {
        let members = if enc == "intset" { &ints } else { &strs };
        let mut s = SetValue::create(&members[0], 1, lim);
        for m in members {
            s.add(m, lim);
        }
        if enc == "hashtable" {
            s.convert_to_table();
        }
        assert_eq!(s.encoding(), enc);
        // Absent members: odd numbers for the intset, another prefix for the others.
        let absent: Vec<Vec<u8>> = if enc == "intset" {
            (0..N).map(|i| (i * 2 + 1).to_string().into_bytes()).collect()
        } else {
            common::keys("other:", N)
        };
        let mut i = 0;
        g.bench_function(BenchmarkId::new("contains", enc), |b| {
            b.iter(|| {
                i = (i + 1) % N;
                black_box(s.contains(&members[i]))
            })
        });
        // Add a new member and remove it again (the set's size and encoding stay put).
        g.bench_function(BenchmarkId::new("add_remove", enc), |b| {
            b.iter(|| {
                i = (i + 1) % N;
                black_box(s.add(&absent[i], lim));
                black_box(s.remove(&absent[i]))
            })
        });
        assert_eq!(s.encoding(), enc);
    }
    g.finish();
}

/// Sorted sets of 100 members in both encodings, and a 10,000-member skiplist.
fn zset(c: &mut Criterion) {
    let mut g = c.benchmark_group("zset");
    for (enc, n) in [("listpack", 100usize), ("skiplist", 100), ("skiplist", 10_000)] {
        let members = common::keys("member:", n);
        let mut z = ZSetValue::new();
        for (i, m) in members.iter().enumerate() {
            z.insert(m, (i * 2) as f64, ZSET_LIMITS);
        }
        if enc == "skiplist" {
            z.convert_to_skiplist();
        }
        assert_eq!(z.encoding(), enc);
        let absent = common::keys("other:", n);
        let mut i = 0;
        let label = format!("{enc}/{n}");
        // ZADD of a new member (between two scores) and ZREM of it.
        g.bench_function(BenchmarkId::new("add_remove", &label), |b| {
            b.iter(|| {
                i = (i + 1) % n;
                black_box(z.insert(&absent[i], (i * 2 + 1) as f64, ZSET_LIMITS));
                black_box(z.remove(&absent[i]))
            })
        });
        // ZRANGE key start start+9 from a rank in the middle: the walk, no reply encoding.
        let start = n / 2;
        g.bench_function(BenchmarkId::new("range10", &label), |b| {
            b.iter(|| {
                let mut sum = 0.0;
                let mut left = 10;
                z.walk(start, false, |m, s| {
                    sum += s + m.len() as f64;
                    left -= 1;
                    left > 0
                });
                black_box(sum)
            })
        });
        assert_eq!(z.encoding(), enc);
    }
    g.finish();
}

/// Lists of 10 (listpack) and 10,000 (quicklist) 3-byte elements.
fn list(c: &mut Criterion) {
    let mut g = c.benchmark_group("list");
    for n in [10usize, 10_000] {
        let mut l: ListValue = (0..n).map(|_| b"xxx").collect();
        let enc = l.encoding();
        assert_eq!(enc, if n == 10 { "listpack" } else { "quicklist" });
        let label = format!("{enc}/{n}");
        // LPUSH + RPOP (a queue: the length stays put).
        g.bench_function(BenchmarkId::new("push_pop", &label), |b| {
            b.iter(|| {
                l.push_front(b"xxx");
                black_box(l.pop_back())
            })
        });
        // LRANGE 0 9 (a listpack holds all of it) or LRANGE 0 99.
        let stop = (n.min(100) - 1) as i64;
        g.bench_function(BenchmarkId::new(format!("lrange0-{stop}"), &label), |b| {
            b.iter(|| black_box(l.range(0, stop).map(<[u8]>::len).sum::<usize>()))
        });
        assert_eq!(l.encoding(), enc);
    }
    g.finish();
}

/// APPEND and INCR as the string commands do them, from each encoding.
fn string(c: &mut Criterion) {
    let mut g = c.benchmark_group("string");
    // SET's encoding choice (Redis's tryObjectEncoding) for each encoding.
    for (enc, v) in [("int", &b"123456"[..]), ("embstr", b"hello world"), ("raw", &[b'x'; 64][..])] {
        assert_eq!(StrValue::from_bytes(v).encoding(), enc);
        g.bench_function(BenchmarkId::new("from_bytes", enc), |b| b.iter(|| StrValue::from_bytes(black_box(v))));
    }
    // APPEND of 3 bytes: int and embstr values are converted to raw first (timed), a raw one
    // grows in place (amortised; trimmed back now and then).
    for (enc, v) in [("int", &b"123456"[..]), ("embstr", b"hello world")] {
        g.bench_function(BenchmarkId::new("append", enc), |b| {
            b.iter_batched(
                || StrValue::from_bytes(v),
                |mut s| {
                    s.make_raw().extend_from_slice(b"xxx");
                    s
                },
                BatchSize::SmallInput,
            )
        });
    }
    let mut raw = StrValue::raw(b"hello world".to_vec());
    g.bench_function(BenchmarkId::new("append", "raw"), |b| {
        b.iter(|| {
            let r = raw.make_raw();
            if r.len() > 1 << 16 {
                r.truncate(11);
            }
            r.extend_from_slice(b"xxx");
            black_box(r.len())
        })
    });
    // INCR: an int is updated in place; a raw numeric string (after an APPEND) is parsed and
    // becomes an int. (No embstr holds an integer: SET stores those as int.)
    let mut int = StrValue::Int(0);
    g.bench_function(BenchmarkId::new("incr", "int"), |b| {
        b.iter(|| {
            let n = int.as_i64().expect("int").wrapping_add(1);
            int = StrValue::Int(n);
            black_box(&int);
        })
    });
    g.bench_function(BenchmarkId::new("incr", "raw"), |b| {
        b.iter_batched(
            || StrValue::raw(b"1234567".to_vec()),
            |mut s| {
                let n = s.as_i64().expect("numeric") + 1;
                s = StrValue::Int(n);
                s
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = common::quick();
    targets = hash, set, zset, list, string
}
criterion_main!(benches);
