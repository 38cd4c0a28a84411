//! maxmemory against the memory clients hold, as Redis's unit/maxmemory measures it: clients
//! over maxmemory-clients are closed before keys are evicted, a replica that stops reading
//! does not make its master evict, and the invalidations an eviction sends to tracking
//! clients do not make eviction feed on itself.

mod common;

use common::{encode, info_field, query, wait_until, Server};

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

fn stat(con: &mut redis::Connection, field: &str) -> u64 {
    info_field(con, "all", field).parse().unwrap()
}

fn dbsize(con: &mut redis::Connection) -> u64 {
    query(con, &["DBSIZE"])
}

#[test]
fn clients_piling_up_big_replies_are_evicted_before_any_key() {
    let server =
        Server::start(&["--maxmemory", "11mb", "--maxmemory-policy", "allkeys-lru", "--maxmemory-clients", "3mb"]);
    let mut con = server.no_evict_conn();
    for j in 0..50 {
        let _: i64 = query(&mut con, &["SETRANGE", &j.to_string(), "100000", "x"]);
    }
    // Twenty clients ask for a 100 KB value, ten at a time, and never read: their replies pile
    // up in the server once the sockets are full.
    let mut readers: Vec<TcpStream> =
        (0..20).map(|_| TcpStream::connect(("127.0.0.1", server.port)).unwrap()).collect();
    let batch = b"MGET 1\r\n".repeat(10);
    let deadline = Instant::now() + Duration::from_secs(20);
    while stat(&mut con, "evicted_clients") == 0 && stat(&mut con, "evicted_keys") == 0 && Instant::now() < deadline {
        readers.retain_mut(|r| r.write_all(&batch).is_ok());
    }
    assert!(stat(&mut con, "evicted_clients") > 0, "no client was evicted");
    assert_eq!(stat(&mut con, "evicted_keys"), 0, "keys were evicted for the clients' memory");
    assert_eq!(dbsize(&mut con), 50);
}

/// Bytes up to and including the first occurrence of `end`.
fn read_through(s: &mut TcpStream, end: &[u8]) {
    let mut seen = Vec::new();
    let mut byte = [0u8; 1];
    while !seen.ends_with(end) {
        s.read_exact(&mut byte).expect("read from the server");
        seen.push(byte[0]);
    }
}

#[test]
fn invalidations_sent_by_an_eviction_do_not_feed_it() {
    let server = Server::start(&["--maxmemory-policy", "allkeys-lru"]);
    let mut con = server.conn();
    // Ten clients cache every key (long names, short values).
    let mut trackers: Vec<TcpStream> =
        (0..10).map(|_| TcpStream::connect(("127.0.0.1", server.port)).unwrap()).collect();
    for t in &mut trackers {
        t.write_all(&[encode(&["HELLO", "3"]), encode(&["CLIENT", "TRACKING", "ON"]), encode(&["PING"])].concat())
            .unwrap();
        read_through(t, b"+PONG\r\n");
    }
    let keys: Vec<String> = (0..300).map(|j| format!("{j}{}", "x".repeat(1000))).collect();
    for key in &keys {
        let _: () = query(&mut con, &["SET", key, "x"]);
        for t in &mut trackers {
            t.write_all(&encode(&["GET", key])).unwrap();
            read_through(t, b"$1\r\nx\r\n");
        }
    }
    // A limit 40 KB under what is used: a few dozen keys go. Each eviction sends ten
    // invalidations of a 1 KB name; once the trackers have them, memory is back under the
    // limit and the commands that follow evict nothing more (each looks at memory first).
    let used: u64 = stat(&mut con, "used_memory");
    let _: () = query(&mut con, &["CONFIG", "SET", "maxmemory", &(used - 40_000).to_string()]);
    let first = stat(&mut con, "evicted_keys");
    for t in &mut trackers {
        t.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut got = Vec::new();
        let mut chunk = [0u8; 64 * 1024];
        while got.windows(10).filter(|w| w == b"invalidate").count() < first as usize {
            let n = t.read(&mut chunk).expect("the invalidations");
            got.extend_from_slice(&chunk[..n]);
        }
    }
    for _ in 0..5 {
        let _ = stat(&mut con, "used_memory");
    }
    // Redis's bound for the first look (unit/maxmemory); later commands may evict a little
    // more here (a command can run before the trackers' tasks took their messages, and a
    // command's first run on a thread allocates its latency histogram), but not keep
    // evicting (before, 100 and more of the 300 keys went).
    assert!((10..=50).contains(&first), "evicted {first} keys at once");
    let evicted = stat(&mut con, "evicted_keys");
    assert!(evicted <= 80, "evicted {evicted} keys in all ({first} at once)");
    assert_eq!(dbsize(&mut con), 300 - evicted);
}

/// A replica that took its snapshot and then stopped reading: SYNC, the RDB payload read,
/// nothing more.
fn stalled_replica(server: &Server) -> TcpStream {
    let mut s = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    s.write_all(b"SYNC\r\n").unwrap();
    // Newlines keep the link alive while the snapshot is made, then `$<len>\r\n<payload>`.
    let mut byte = [0u8; 1];
    loop {
        s.read_exact(&mut byte).unwrap();
        if byte[0] == b'$' {
            break;
        }
    }
    let mut header = Vec::new();
    while !header.ends_with(b"\r\n") {
        s.read_exact(&mut byte).unwrap();
        header.push(byte[0]);
    }
    let len: usize = std::str::from_utf8(&header[..header.len() - 2]).unwrap().parse().unwrap();
    let mut payload = vec![0u8; len];
    s.read_exact(&mut payload).unwrap();
    s
}

#[test]
fn a_replica_that_stops_reading_does_not_make_its_master_evict() {
    let server = Server::start(&["--maxmemory-policy", "allkeys-random", "--repl-backlog-size", "16kb"]);
    let mut con = server.no_evict_conn();
    for j in 0..100 {
        let _: i64 = query(&mut con, &["SETRANGE", &format!("key:{j}"), "100000", "asdf"]);
    }
    let replica = stalled_replica(&server);
    assert!(wait_until(Duration::from_secs(5), || info_field(&mut con, "replication", "connected_slaves") == "1"));
    let used: u64 = stat(&mut con, "used_memory");
    let _: () = query(&mut con, &["CONFIG", "SET", "maxmemory", &(used + 256 * 1024).to_string()]);
    // 20 MB of writes that change no memory but the replica's stream, which the replica does
    // not take: its buffer grows far past maxmemory.
    let payload = "A".repeat(100);
    let mut raw = server.raw();
    let batch: Vec<u8> = (0..1000).flat_map(|_| encode(&["SETRANGE", "key:0", "0", &payload])).collect();
    for _ in 0..150 {
        raw.send(&batch);
        for _ in 0..1000 {
            assert_eq!(raw.read_reply(), b":100004\r\n");
        }
    }
    let not_counted = stat(&mut con, "mem_not_counted_for_evict");
    assert!(not_counted > 2 << 20, "mem_not_counted_for_evict {not_counted}");
    assert_eq!(stat(&mut con, "evicted_keys"), 0);
    assert_eq!(dbsize(&mut con), 100);
    drop(replica);
}
