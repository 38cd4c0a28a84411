//! Replication under load: four writers on a master with two replicas while replication links
//! are dropped at random (from either side). Every write a WAIT reported as acknowledged by N
//! replicas must be on at least N replicas when checked right away, and once the load stops
//! both replicas hold exactly the master's dataset.

mod common;

use common::interop::{assert_same_contents, contents};
use common::{wait_until, Server};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn con(port: u16) -> redis::Connection {
    redis::Client::open(format!("redis://127.0.0.1:{port}/")).unwrap().get_connection().unwrap()
}

fn field(port: u16, name: &str) -> String {
    let info: String = redis::cmd("INFO").arg("replication").query(&mut con(port)).unwrap();
    info.lines().find_map(|l| l.strip_prefix(&format!("{name}:")).map(str::to_string)).unwrap_or_default()
}

/// A small deterministic generator (the seed is printed, so a failure can be replayed).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[test]
fn acknowledged_writes_survive_random_link_drops() {
    let master = Server::start(&["--repl-diskless-sync-delay", "0", "--repl-backlog-size", "256kb"]);
    let mport = master.port.to_string();
    // One replica loads snapshots from disk, the other from memory (swapdb).
    let rdb = format!("consistency-replica-{mport}.rdb");
    let replicas = [
        Server::start(&["--replicaof", "127.0.0.1", &mport, "--dbfilename", &rdb]),
        Server::start(&["--replicaof", "127.0.0.1", &mport, "--repl-diskless-load", "swapdb"]),
    ];
    let ports: Vec<u16> = replicas.iter().map(|r| r.port).collect();
    let up = |p: u16| field(p, "master_link_status") == "up";
    assert!(wait_until(Duration::from_secs(20), || ports.iter().all(|&p| up(p))), "replicas never synced");

    let seed = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64 | 1;
    eprintln!("seed {seed}");
    let stop = Arc::new(AtomicBool::new(false));
    let acked_checks = Arc::new(AtomicU64::new(0));
    let mut writers = Vec::new();
    for w in 0..4u64 {
        let (stop, acked_checks, ports) = (stop.clone(), acked_checks.clone(), ports.clone());
        let port = master.port;
        writers.push(std::thread::spawn(move || -> Result<u64, String> {
            let mut c = con(port);
            let mut readers: Vec<redis::Connection> = ports.iter().map(|&p| con(p)).collect();
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let key = format!("w{w}:k{i}");
                let _: () = redis::cmd("SET").arg(&key).arg(i).query(&mut c).map_err(|e| e.to_string())?;
                let n: i64 =
                    redis::cmd("INCR").arg(format!("w{w}:counter")).query(&mut c).map_err(|e| e.to_string())?;
                let _: i64 =
                    redis::cmd("RPUSH").arg(format!("w{w}:list")).arg(i).query(&mut c).map_err(|e| e.to_string())?;
                let _: () = redis::pipe()
                    .atomic()
                    .cmd("HSET")
                    .arg(format!("w{w}:h"))
                    .arg(i % 20)
                    .arg(i)
                    .cmd("SADD")
                    .arg(format!("w{w}:s"))
                    .arg(i % 50)
                    .query(&mut c)
                    .map_err(|e| e.to_string())?;
                if i % 4 == 3 {
                    let acked: i64 = redis::cmd("WAIT").arg(2).arg(500).query(&mut c).map_err(|e| e.to_string())?;
                    // The replicas that acknowledged have every write up to here.
                    let mut holding = 0;
                    for r in readers.iter_mut() {
                        let got: redis::RedisResult<Option<u64>> = redis::cmd("GET").arg(&key).query(r);
                        let counter: redis::RedisResult<Option<i64>> =
                            redis::cmd("GET").arg(format!("w{w}:counter")).query(r);
                        match (got, counter) {
                            (Ok(got), Ok(counter)) if got == Some(i) && counter.is_some_and(|v| v >= n) => holding += 1,
                            // A replica loading a new snapshot (-LOADING) cannot be looked at.
                            (Err(e), _) | (_, Err(e)) if e.code() == Some("LOADING") => holding += 1,
                            _ => {}
                        }
                    }
                    if holding < acked {
                        return Err(format!("WAIT said {acked} replicas have {key}, {holding} do"));
                    }
                    if acked > 0 {
                        acked_checks.fetch_add(1, Ordering::Relaxed);
                    }
                }
                i += 1;
            }
            Ok(i)
        }));
    }
    // Drop links at random, from the replica's side or the master's.
    let mut rng = Rng(seed);
    let deadline = Instant::now() + Duration::from_secs(6);
    let mut drops = 0;
    while Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100 + rng.next() % 300));
        let r = ports[(rng.next() % 2) as usize];
        let (port, kind) = if rng.next().is_multiple_of(2) { (r, "master") } else { (master.port, "replica") };
        let _: redis::RedisResult<i64> = redis::cmd("CLIENT").arg("KILL").arg("TYPE").arg(kind).query(&mut con(port));
        drops += 1;
    }
    stop.store(true, Ordering::Relaxed);
    let mut total = 0;
    for w in writers {
        total += w.join().unwrap().unwrap_or_else(|e| panic!("seed {seed}: {e}"));
    }
    assert!(total > 100 && drops > 5, "too little happened: {total} writes, {drops} drops");
    assert!(acked_checks.load(Ordering::Relaxed) > 0, "no WAIT was ever acknowledged");
    // Quiet now: both replicas catch up and hold exactly the master's data.
    assert!(wait_until(Duration::from_secs(30), || ports.iter().all(|&p| up(p))));
    let acked: i64 = redis::cmd("WAIT").arg(2).arg(10_000).query(&mut con(master.port)).unwrap();
    assert_eq!(acked, 2, "seed {seed}");
    let want = contents(&mut con(master.port));
    for (i, &p) in ports.iter().enumerate() {
        assert!(wait_until(Duration::from_secs(10), || field(p, "master_repl_offset")
            == field(master.port, "master_repl_offset")));
        assert_same_contents(&contents(&mut con(p)), &want, &format!("replica {i} (seed {seed})"));
    }
    let _ = std::fs::remove_file(common::work_dir().join(rdb));
}
