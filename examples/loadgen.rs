//! Load generator for what redis-benchmark cannot drive: transactions and Pub/Sub fan-out.
//! Used by `bench/compare-tx-pubsub.sh` against Ferrous and real Redis in the same run.
//!
//! ```text
//! cargo run --release --example loadgen -- multi  PORT CLIENTS SECONDS
//! cargo run --release --example loadgen -- pubsub PORT SUBSCRIBERS PUBLISHERS SECONDS
//! cargo run --release --example loadgen -- xconsume PORT CLIENTS SECONDS COUNT
//! ```
//! `multi`: each client loops on MULTI, 5 × INCR, EXEC (sent as one write, like a client
//! library's transaction pipeline) and waits for the 7 replies; prints transactions/s.
//! `pubsub`: subscribers on one channel, publishers sending PUBLISH (16 in flight each);
//! prints messages published/s and delivered/s (deliveries counted by the subscribers).
//! `xconsume`: consumers of group `g` on the stream `bench:stream` (filled and the group
//! created beforehand), each looping on XREADGROUP ... COUNT n STREAMS bench:stream > and an
//! XACK of the IDs it got; prints entries consumed (read and acknowledged)/s. Stops early when
//! the stream is exhausted.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn encode(args: &[&str]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n{}\r\n", a.len(), a).as_bytes());
    }
    out
}

/// Length of the complete RESP value at the start of `buf`, if it is all there.
fn value_len(buf: &[u8]) -> Option<usize> {
    let line_end = buf.windows(2).position(|w| w == b"\r\n")?;
    let head = std::str::from_utf8(&buf[1..line_end]).ok()?;
    let after = line_end + 2;
    match buf[0] {
        b'+' | b'-' | b':' => Some(after),
        b'$' => {
            let n: i64 = head.parse().ok()?;
            if n < 0 {
                return Some(after);
            }
            let end = after + n as usize + 2;
            (buf.len() >= end).then_some(end)
        }
        b'*' | b'>' => {
            let n: i64 = head.parse().ok()?;
            let mut pos = after;
            for _ in 0..n.max(0) {
                pos += value_len(&buf[pos..])?;
            }
            Some(pos)
        }
        _ => None,
    }
}

/// Read until `n` complete replies have arrived; returns how many replies were consumed.
async fn read_replies(sock: &mut TcpStream, buf: &mut Vec<u8>, n: usize) -> std::io::Result<()> {
    let mut got = 0;
    let mut chunk = [0u8; 64 * 1024];
    loop {
        while got < n {
            match value_len(buf) {
                Some(len) => {
                    buf.drain(..len);
                    got += 1;
                }
                None => break,
            }
        }
        if got == n {
            return Ok(());
        }
        let r = sock.read(&mut chunk).await?;
        if r == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..r]);
    }
}

async fn multi(port: u16, clients: usize, secs: u64) {
    let done = Arc::new(AtomicU64::new(0));
    let stop = Instant::now() + Duration::from_secs(secs);
    let mut tasks = Vec::new();
    for c in 0..clients {
        let done = done.clone();
        tasks.push(tokio::spawn(async move {
            let mut sock = TcpStream::connect(("127.0.0.1", port)).await.expect("connect");
            sock.set_nodelay(true).ok();
            let mut req = encode(&["MULTI"]);
            for i in 0..5 {
                req.extend(encode(&["INCR", &format!("tx:{c}:{i}")]));
            }
            req.extend(encode(&["EXEC"]));
            let mut buf = Vec::new();
            while Instant::now() < stop {
                sock.write_all(&req).await.expect("write");
                read_replies(&mut sock, &mut buf, 7).await.expect("read");
                done.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    for t in tasks {
        t.await.expect("client");
    }
    println!("transactions_per_sec {:.0}", done.load(Ordering::Relaxed) as f64 / secs as f64);
}

async fn pubsub(port: u16, subscribers: usize, publishers: usize, secs: u64) {
    let delivered = Arc::new(AtomicU64::new(0));
    let published = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let mut subs = Vec::new();
    for _ in 0..subscribers {
        let mut sock = TcpStream::connect(("127.0.0.1", port)).await.expect("connect");
        sock.write_all(&encode(&["SUBSCRIBE", "bench"])).await.expect("subscribe");
        let mut buf = Vec::new();
        read_replies(&mut sock, &mut buf, 1).await.expect("subscribe reply");
        let delivered = delivered.clone();
        let stop = stop.clone();
        subs.push(tokio::spawn(async move {
            let mut chunk = vec![0u8; 256 * 1024];
            while !stop.load(Ordering::Relaxed) {
                let read = tokio::time::timeout(Duration::from_millis(200), sock.read(&mut chunk)).await;
                let Ok(Ok(n)) = read else { continue };
                if n == 0 {
                    return;
                }
                buf.extend_from_slice(&chunk[..n]);
                let mut count = 0;
                while let Some(len) = value_len(&buf[..]) {
                    buf.drain(..len);
                    count += 1;
                }
                delivered.fetch_add(count, Ordering::Relaxed);
            }
        }));
    }
    let start = Instant::now();
    let deadline = start + Duration::from_secs(secs);
    let mut pubs = Vec::new();
    for _ in 0..publishers {
        let published = published.clone();
        pubs.push(tokio::spawn(async move {
            let mut sock = TcpStream::connect(("127.0.0.1", port)).await.expect("connect");
            sock.set_nodelay(true).ok();
            let one = encode(&["PUBLISH", "bench", "0123456789abcdef"]);
            let req: Vec<u8> = one.iter().copied().cycle().take(one.len() * 16).collect();
            let mut buf = Vec::new();
            while Instant::now() < deadline {
                sock.write_all(&req).await.expect("write");
                read_replies(&mut sock, &mut buf, 16).await.expect("read");
                published.fetch_add(16, Ordering::Relaxed);
            }
        }));
    }
    for p in pubs {
        p.await.expect("publisher");
    }
    let elapsed = start.elapsed().as_secs_f64();
    // Let subscribers drain what was published, then count.
    let expected = published.load(Ordering::Relaxed) * subscribers as u64;
    let drain_deadline = Instant::now() + Duration::from_secs(10);
    while delivered.load(Ordering::Relaxed) < expected && Instant::now() < drain_deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let total = start.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    for s in subs {
        s.await.ok();
    }
    println!(
        "published_per_sec {:.0} delivered_per_sec {:.0}",
        published.load(Ordering::Relaxed) as f64 / elapsed,
        delivered.load(Ordering::Relaxed) as f64 / total
    );
}

/// The IDs in an XREADGROUP reply for one stream (`*1 [key, [[id, fields]...]]`); empty for a
/// null reply.
fn entry_ids(reply: &[u8]) -> Vec<String> {
    // Skip `*1\r\n*2\r\n$<key>`, then walk the entries array.
    let skip_header = |b: &[u8]| -> usize { b.windows(2).position(|w| w == b"\r\n").expect("header") + 2 };
    if reply.starts_with(b"*-1") || reply.starts_with(b"_") {
        return Vec::new();
    }
    let mut pos = skip_header(reply); // *1
    pos += skip_header(&reply[pos..]); // *2
    pos += value_len(&reply[pos..]).expect("key"); // key
    let head_end = pos + skip_header(&reply[pos..]);
    let n: usize = std::str::from_utf8(&reply[pos + 1..head_end - 2]).expect("count").parse().expect("count");
    pos = head_end;
    let mut ids = Vec::with_capacity(n);
    for _ in 0..n {
        let entry_len = value_len(&reply[pos..]).expect("entry");
        let mut p = pos + skip_header(&reply[pos..]); // *2
        let id_head = skip_header(&reply[p..]);
        let id_len: usize = std::str::from_utf8(&reply[p + 1..p + id_head - 2]).expect("len").parse().expect("len");
        p += id_head;
        ids.push(String::from_utf8_lossy(&reply[p..p + id_len]).into_owned());
        pos += entry_len;
    }
    ids
}

async fn xconsume(port: u16, clients: usize, secs: u64, count: usize) {
    let consumed = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let stop = start + Duration::from_secs(secs);
    let mut tasks = Vec::new();
    for c in 0..clients {
        let consumed = consumed.clone();
        tasks.push(tokio::spawn(async move {
            let mut sock = TcpStream::connect(("127.0.0.1", port)).await.expect("connect");
            sock.set_nodelay(true).ok();
            let (name, n) = (format!("c{c}"), count.to_string());
            let read = encode(&["XREADGROUP", "GROUP", "g", &name, "COUNT", &n, "STREAMS", "bench:stream", ">"]);
            let mut buf = Vec::new();
            let mut chunk = vec![0u8; 256 * 1024];
            while Instant::now() < stop {
                sock.write_all(&read).await.expect("write");
                let len = loop {
                    if let Some(len) = value_len(&buf) {
                        break len;
                    }
                    let r = sock.read(&mut chunk).await.expect("read");
                    assert!(r > 0, "connection closed");
                    buf.extend_from_slice(&chunk[..r]);
                };
                let ids = entry_ids(&buf[..len]);
                buf.drain(..len);
                if ids.is_empty() {
                    return;
                }
                let mut ack = vec!["XACK", "bench:stream", "g"];
                ack.extend(ids.iter().map(String::as_str));
                sock.write_all(&encode(&ack)).await.expect("write");
                read_replies(&mut sock, &mut buf, 1).await.expect("read");
                consumed.fetch_add(ids.len() as u64, Ordering::Relaxed);
            }
        }));
    }
    for t in tasks {
        t.await.expect("consumer");
    }
    let elapsed = start.elapsed().as_secs_f64().min(secs as f64);
    println!("consumed_per_sec {:.0}", consumed.load(Ordering::Relaxed) as f64 / elapsed);
}

#[tokio::main(flavor = "multi_thread", worker_threads = 1)]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let num = |i: usize| -> u64 { args.get(i).and_then(|a| a.parse().ok()).expect("numeric argument") };
    match args.first().map(String::as_str) {
        Some("multi") => multi(num(1) as u16, num(2) as usize, num(3)).await,
        Some("pubsub") => pubsub(num(1) as u16, num(2) as usize, num(3) as usize, num(4)).await,
        Some("xconsume") => xconsume(num(1) as u16, num(2) as usize, num(3), num(4) as usize).await,
        _ => {
            eprintln!(
                "usage: loadgen multi PORT CLIENTS SECONDS | pubsub PORT SUBSCRIBERS PUBLISHERS SECONDS | xconsume PORT CLIENTS SECONDS COUNT"
            );
            std::process::exit(2);
        }
    }
}
