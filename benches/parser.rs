//! The RESP request decoder (src/protocol/parser.rs) as a connection drives it: one reused
//! argument vector, the request's bytes split off the read buffer. Cases: a single GET, a
//! batch of 16 pipelined SETs, a 1 MB bulk argument (buffered, and arriving in 16 KiB reads),
//! and inline commands.

mod common;

use bytes::{Bytes, BytesMut};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use ferrous::protocol::{encode_command, parse_request_into, ParseLimits};
use std::hint::black_box;

/// Time parsing every request in `input` (a fresh read buffer per iteration, filled untimed).
fn parse_all(c: &mut Criterion, name: &str, input: &[u8], requests: u64, throughput: Option<Throughput>) {
    let limits = ParseLimits::default();
    let mut args: Vec<Bytes> = Vec::new();
    let mut g = c.benchmark_group("parser");
    if let Some(t) = throughput {
        g.throughput(t);
    }
    let size = if input.len() > 64 * 1024 { BatchSize::LargeInput } else { BatchSize::SmallInput };
    g.bench_function(name, |b| {
        b.iter_batched(
            || BytesMut::from(input),
            |mut buf| {
                let mut n = 0;
                while let Ok(Some(inline)) = parse_request_into(&mut buf, &limits, &mut args) {
                    black_box((inline, &args));
                    n += 1;
                }
                assert_eq!(n, requests);
                buf
            },
            size,
        )
    });
    g.finish();
}

fn parser(c: &mut Criterion) {
    let mut get = Vec::new();
    encode_command(&mut get, &["GET", "key:000000000042"]);
    parse_all(c, "get", &get, 1, None);

    let mut sets = Vec::new();
    for i in 0..16 {
        encode_command(&mut sets, &["SET", &format!("key:{i:012}"), "xxx"]);
    }
    parse_all(c, "set_pipeline_16", &sets, 16, Some(Throughput::Elements(16)));

    let mut big = Vec::new();
    encode_command(&mut big, &[&b"SET"[..], b"bigkey", &vec![b'x'; 1 << 20]]);
    // Fully buffered: the argument is split off the buffer without a copy.
    parse_all(c, "set_bulk_1mb", &big, 1, None);
    // As it arrives: 16 KiB reads appended to the buffer, the decoder tried after each one
    // (the copy into the buffer is timed too, as a connection pays it).
    let limits = ParseLimits::default();
    let mut args: Vec<Bytes> = Vec::new();
    let mut g = c.benchmark_group("parser");
    g.throughput(Throughput::Bytes(big.len() as u64));
    g.bench_function("set_bulk_1mb_16k_reads", |b| {
        b.iter_with_large_drop(|| {
            let mut buf = BytesMut::with_capacity(16 * 1024);
            let mut done = false;
            for chunk in big.chunks(16 * 1024) {
                buf.extend_from_slice(chunk);
                assert!(!done);
                done = parse_request_into(&mut buf, &limits, &mut args).expect("valid").is_some();
            }
            assert!(done && args[2].len() == 1 << 20);
            buf
        })
    });
    g.finish();

    parse_all(c, "inline_get", b"GET key:000000000042\r\n", 1, None);
    parse_all(c, "inline_set", b"SET key:000000000042 \"hello world\"\r\n", 1, None);
}

criterion_group! {
    name = benches;
    config = common::quick();
    targets = parser
}
criterion_main!(benches);
