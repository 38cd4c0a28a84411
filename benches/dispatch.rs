//! The whole in-process command path of one request, as a client connection runs it after
//! parsing (src/server/connection.rs): the script check, eviction before the command, then
//! src/commands/pipeline's resolve + admit + run (shard locks, handler, statistics, wake-ups)
//! into the connection's reply sink, which is then drained. No sockets, no tokio: the server
//! and client come from the in-process test harness (src/commands/testing.rs).
//!
//! Each case cycles through 1,000 keys (or fields/members) already loaded, as redis-benchmark's
//! `-r` does, so lookups hit a populated table rather than one hot key.

mod common;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion};
use ferrous::commands::pipeline;
use ferrous::commands::testing::Harness;
use ferrous::protocol::ReplySink;
use std::hint::black_box;

const SPREAD: usize = 1000;

fn argv(words: &[&str]) -> Vec<Bytes> {
    words.iter().map(|w| Bytes::copy_from_slice(w.as_bytes())).collect()
}

/// `SPREAD` requests built by `make(i)`.
fn requests(make: impl Fn(usize) -> Vec<String>) -> Vec<Vec<Bytes>> {
    (0..SPREAD).map(|i| argv(&make(i).iter().map(String::as_str).collect::<Vec<_>>())).collect()
}

/// One request through the path a connection takes for it; the reply is drained as if sent.
fn execute(h: &mut Harness, args: &[Bytes], sink: &mut ReplySink) {
    if pipeline::runs_script(&h.client, args) {
        unreachable!("no scripts here");
    }
    h.server.evict_before_command();
    black_box(pipeline::execute(&h.server, &mut h.client, args, sink));
    black_box(&sink.buf);
    sink.buf.clear();
}

/// Load with `setup`, check `expect` is the reply to the first request, then time the cycle.
fn case(c: &mut Criterion, name: &str, setup: &[Vec<Bytes>], reqs: &[Vec<Bytes>], expect: &str) {
    let mut h = Harness::new();
    let mut sink = ReplySink::new(h.client.proto);
    for r in setup {
        execute(&mut h, r, &mut sink);
    }
    pipeline::execute(&h.server, &mut h.client, &reqs[0], &mut sink);
    assert!(String::from_utf8_lossy(&sink.buf).starts_with(expect), "{name}: {:?}", String::from_utf8_lossy(&sink.buf));
    sink.buf.clear();
    let mut i = 0;
    c.benchmark_group("dispatch").bench_function(name, |b| {
        b.iter(|| {
            execute(&mut h, &reqs[i], &mut sink);
            i = (i + 1) % reqs.len();
        })
    });
}

fn dispatch(c: &mut Criterion) {
    let set = requests(|i| vec!["SET".into(), format!("key:{i:012}"), "xxx".into()]);
    let get = requests(|i| vec!["GET".into(), format!("key:{i:012}")]);
    let ping = requests(|_| vec!["PING".into()]);
    case(c, "ping", &[], &ping, "+PONG");
    case(c, "get", &set, &get, "$3\r\nxxx");
    case(c, "get_missing", &[], &get, "$-1");
    case(c, "set", &[], &set, "+OK");
    let incr = requests(|i| vec!["INCR".into(), format!("counter:{i:012}")]);
    case(c, "incr", &[], &incr, ":");
    let hset = requests(|i| vec!["HSET".into(), "myhash".into(), format!("element:{i:012}"), "xxx".into()]);
    case(c, "hset", &hset, &hset, ":0");
    let zadd = requests(|i| vec!["ZADD".into(), "myzset".into(), format!("{i}"), format!("element:{i:012}")]);
    case(c, "zadd", &zadd, &zadd, ":0");
    // Every request moves its member: each member's score alternates between two values.
    let zadd_move: Vec<Vec<Bytes>> = (0..2 * SPREAD)
        .map(|j| {
            let (i, score) = (j % SPREAD, if j < SPREAD { (j * 7919) % SPREAD } else { j - SPREAD });
            argv(&["ZADD", "myzset", &score.to_string(), &format!("element:{i:012}")])
        })
        .collect();
    case(c, "zadd_move", &zadd, &zadd_move, ":0");
    // bench/compare.sh's zrangebyscore row: LIMIT 0 10 from a random score of a 10k-member set.
    let zset: Vec<Vec<Bytes>> = (0..10)
        .map(|b| {
            let mut r = vec!["ZADD".to_string(), "bench:zset".into()];
            for j in b * 1000..(b + 1) * 1000 {
                r.extend([j.to_string(), format!("member:{j}")]);
            }
            argv(&r.iter().map(String::as_str).collect::<Vec<_>>())
        })
        .collect();
    let zrangebyscore = requests(|i| {
        ["ZRANGEBYSCORE", "bench:zset", &(i * 10).to_string(), "+inf", "LIMIT", "0", "10"].map(String::from).to_vec()
    });
    case(c, "zrangebyscore", &zset, &zrangebyscore, "*10\r\n$8\r\nmember:0");
    // LPUSH and LPOP alternately (the list's length stays constant): the mean of the two.
    let lpush_lpop = requests(|i| {
        if i % 2 == 0 {
            vec!["LPUSH".into(), "mylist".into(), "xxx".into()]
        } else {
            vec!["LPOP".into(), "mylist".into()]
        }
    });
    case(c, "lpush_lpop", &[], &lpush_lpop, ":1");
}

criterion_group! {
    name = benches;
    config = common::quick();
    targets = dispatch
}
criterion_main!(benches);
