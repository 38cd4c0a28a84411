//! Write latency on a master while a replica does its full synchronisation. Used by
//! `bench/replication.sh` against Ferrous and real Redis in the same run.
//!
//! ```text
//! cargo run --release --example synclat -- MASTER_PORT REPLICA_PORT CLIENTS KEYSPACE
//! ```
//! CLIENTS connections write `SET key:<random below KEYSPACE> <16 bytes>` in a closed loop. After
//! one second of warm-up the replica is sent `REPLICAOF 127.0.0.1 MASTER_PORT`; the latency of
//! every write from then until the replica reports `master_link_status:up` is recorded.
//! Prints the sync time, the writes done meanwhile, and p50 / p99 / p99.9 / max in µs.

use std::sync::atomic::{AtomicBool, Ordering};
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

/// Send one command and read one line reply (or a bulk, for INFO).
async fn call(sock: &mut TcpStream, args: &[&str]) -> String {
    sock.write_all(&encode(args)).await.expect("write");
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        let n = sock.read(&mut chunk).await.expect("read");
        assert!(n > 0, "connection closed");
        buf.extend_from_slice(&chunk[..n]);
        if let Some(eol) = buf.windows(2).position(|w| w == b"\r\n") {
            if buf[0] != b'$' {
                return String::from_utf8_lossy(&buf[..eol]).into_owned();
            }
            let len: usize = std::str::from_utf8(&buf[1..eol]).unwrap().parse().unwrap_or(0);
            if buf.len() >= eol + 2 + len + 2 {
                return String::from_utf8_lossy(&buf[eol + 2..eol + 2 + len]).into_owned();
            }
        }
    }
}

fn main() {
    let a: Vec<String> = std::env::args().skip(1).collect();
    let [master, replica, clients, keyspace] = [0, 1, 2, 3].map(|i| a[i].parse::<u64>().expect("numeric argument"));
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    rt.block_on(run(master as u16, replica as u16, clients as usize, keyspace));
}

async fn run(master: u16, replica: u16, clients: usize, keyspace: u64) {
    let recording = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for c in 0..clients {
        let (recording, stop) = (recording.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            let mut sock = TcpStream::connect(("127.0.0.1", master)).await.expect("connect");
            sock.set_nodelay(true).ok();
            let mut lat = Vec::with_capacity(1 << 20);
            let mut x = 0x9E37_79B9_7F4A_7C15u64 ^ (c as u64 + 1);
            let mut chunk = [0u8; 256];
            while !stop.load(Ordering::Relaxed) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let req = encode(&["SET", &format!("key:{:012}", x % keyspace), "vvvvvvvvvvvvvvvv"]);
                let t = Instant::now();
                sock.write_all(&req).await.expect("write");
                let mut got = 0;
                while got < 5 {
                    let n = sock.read(&mut chunk).await.expect("read");
                    assert!(n > 0, "closed");
                    got += n;
                }
                if recording.load(Ordering::Relaxed) {
                    lat.push(t.elapsed().as_micros() as u64);
                }
            }
            lat
        }));
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut r = TcpStream::connect(("127.0.0.1", replica)).await.expect("connect to the replica");
    recording.store(true, Ordering::Relaxed);
    let start = Instant::now();
    let ok = call(&mut r, &["REPLICAOF", "127.0.0.1", &master.to_string()]).await;
    assert!(ok.starts_with("+OK"), "REPLICAOF: {ok}");
    loop {
        tokio::time::sleep(Duration::from_millis(20)).await;
        // The replica answers -LOADING while it loads.
        let info = call(&mut r, &["INFO", "replication"]).await;
        if info.contains("master_link_status:up") {
            break;
        }
    }
    let took = start.elapsed();
    recording.store(false, Ordering::Relaxed);
    stop.store(true, Ordering::Relaxed);
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.expect("client"));
    }
    all.sort_unstable();
    let p = |q: f64| all.get(((all.len() as f64 * q) as usize).min(all.len().saturating_sub(1))).copied().unwrap_or(0);
    println!(
        "sync_seconds {:.2} writes {} p50_us {} p99_us {} p999_us {} max_us {}",
        took.as_secs_f64(),
        all.len(),
        p(0.50),
        p(0.99),
        p(0.999),
        all.last().copied().unwrap_or(0)
    );
}
