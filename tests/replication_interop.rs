//! Replication between Ferrous and the real Redis 7.0, both ways: a Redis replica of a Ferrous
//! master and a Ferrous replica of a Redis master, through a full synchronisation, links
//! killed mid-stream (each reconnection must be a partial resynchronisation: +CONTINUE, no
//! second full sync), a master restarted from its RDB file (its replication ID and offset in
//! the aux fields) and FAILOVER from one to the other. Datasets are compared key by key.

mod common;

use common::interop::{assert_same_contents, contents, redis_or_skip, Redis};
use common::{free_port, wait_until, work_dir};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

const LONG: Duration = Duration::from_secs(30);

fn con(port: u16) -> redis::Connection {
    redis::Client::open(format!("redis://127.0.0.1:{port}/")).unwrap().get_connection().unwrap()
}

fn info(port: u16, section: &str) -> String {
    redis::cmd("INFO").arg(section).query(&mut con(port)).unwrap()
}

fn field(port: u16, section: &str, name: &str) -> String {
    info(port, section)
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name}:")).map(str::to_string))
        .unwrap_or_default()
}

fn stat(port: u16, name: &str) -> i64 {
    field(port, "stats", name).parse().unwrap_or(-1)
}

fn link_up(port: u16) -> bool {
    info(port, "replication").contains("master_link_status:up")
}

/// Wait until the replica's offset equals the master's (and the link is up).
fn in_sync(master: u16, replica: u16) -> bool {
    wait_until(LONG, || {
        link_up(replica)
            && field(master, "replication", "master_repl_offset") == field(replica, "replication", "master_repl_offset")
    })
}

/// A ferrous-server (or redis-server) on a chosen port and directory, so it can be restarted
/// in place.
struct Proc {
    port: u16,
    dir: PathBuf,
    child: Child,
}

impl Proc {
    fn start(port: u16, dir: &Path, extra: &[&str]) -> Proc {
        Self::start_bin(Path::new(env!("CARGO_BIN_EXE_ferrous-server")), port, dir, extra)
    }

    fn start_bin(bin: &Path, port: u16, dir: &Path, extra: &[&str]) -> Proc {
        std::fs::create_dir_all(dir).unwrap();
        let log = std::fs::File::create(dir.join(format!("server-{port}.log"))).unwrap();
        let child = Command::new(bin)
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", ""])
            .arg("--dir")
            .arg(dir)
            .args(extra)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("spawn ferrous-server");
        let mut f = Proc { port, dir: dir.to_path_buf(), child };
        // Up once this process answers on its port (a neighbour's server may hold the port).
        let up = common::wait_serving(&mut f.child, port, LONG);
        assert!(up, "{} did not start on port {port}", bin.display());
        f
    }

    /// SHUTDOWN SAVE, then wait for the process to be gone.
    fn shutdown_save(mut self) -> PathBuf {
        let _ = redis::cmd("SHUTDOWN").arg("SAVE").query::<()>(&mut con(self.port));
        assert!(wait_until(LONG, || self.child.try_wait().ok().flatten().is_some()), "ferrous did not exit");
        self.dir.clone()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn scratch(name: &str) -> PathBuf {
    let d = work_dir().join(format!("repl-interop-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A dataset of every type in a few databases.
fn load(port: u16) {
    let mut c = con(port);
    for db in [0, 3, 9] {
        let _: () = redis::cmd("SELECT").arg(db).query(&mut c).unwrap();
        for i in 0..200 {
            let _: () = redis::cmd("SET").arg(format!("s:{i}")).arg(format!("v{i}")).query(&mut c).unwrap();
        }
        let _: () = redis::cmd("RPUSH").arg("list").arg(&["a", "b", "c", "d", "e"]).query(&mut c).unwrap();
        let _: () = redis::cmd("HSET").arg("hash").arg(&["f1", "1", "f2", "2"]).query(&mut c).unwrap();
        let _: () = redis::cmd("SADD").arg("set").arg(&["x", "y", "z"]).query(&mut c).unwrap();
        let _: () = redis::cmd("ZADD").arg("zset").arg(&["1", "a", "2.5", "b"]).query(&mut c).unwrap();
        let _: () = redis::cmd("SET").arg("ttl").arg("v").arg("EX").arg(10_000).query(&mut c).unwrap();
        let _: String = redis::cmd("XADD").arg("stream").arg("*").arg("f").arg("v").query(&mut c).unwrap();
    }
}

/// Writes in several databases until `stop`.
fn writer(port: u16, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<u64> {
    std::thread::spawn(move || {
        let mut c = con(port);
        let mut n = 0u64;
        while !stop.load(Ordering::Relaxed) {
            let db = [0, 3, 9][(n % 3) as usize];
            let _: () = redis::cmd("SELECT").arg(db).query(&mut c).unwrap();
            let _: i64 = redis::cmd("INCR").arg("counter").query(&mut c).unwrap();
            let _: i64 = redis::cmd("RPUSH").arg("log").arg(n).query(&mut c).unwrap();
            let _: () = redis::pipe()
                .atomic()
                .cmd("HSET")
                .arg("h")
                .arg(n % 50)
                .arg(n)
                .cmd("ZINCRBY")
                .arg("z")
                .arg(1)
                .arg(n % 7)
                .query(&mut c)
                .unwrap();
            let _: () =
                redis::cmd("SET").arg(format!("k:{}", n % 300)).arg(n).arg("PX").arg(600_000).query(&mut c).unwrap();
            n += 1;
        }
        n
    })
}

/// Kill the replica's link `times` times while a writer runs on the master; every reconnection
/// must be a partial resynchronisation. Returns the master's partial-sync count gained.
fn drops_while_writing(master: u16, replica: u16, times: usize) -> i64 {
    let (partial_before, full_before) = (stat(master, "sync_partial_ok"), stat(master, "sync_full"));
    let stop = Arc::new(AtomicBool::new(false));
    let w = writer(master, stop.clone());
    for i in 0..times {
        std::thread::sleep(Duration::from_millis(250));
        // Alternate the side that drops the link.
        let killed: i64 = if i % 2 == 0 {
            redis::cmd("CLIENT").arg("KILL").arg("TYPE").arg("master").query(&mut con(replica)).unwrap()
        } else {
            redis::cmd("CLIENT").arg("KILL").arg("TYPE").arg("replica").query(&mut con(master)).unwrap()
        };
        assert_eq!(killed, 1, "drop {i}: no link to kill");
        // Back once the master has served this drop's reconnection (a link that still looks up
        // may not have noticed the kill yet).
        let resumed = wait_until(LONG, || {
            stat(master, "sync_partial_ok") + stat(master, "sync_full") > partial_before + full_before + i as i64
                && link_up(replica)
        });
        assert!(resumed, "drop {i}: the link did not come back");
    }
    std::thread::sleep(Duration::from_millis(200));
    stop.store(true, Ordering::Relaxed);
    let written = w.join().unwrap();
    assert!(written > 0);
    stat(master, "sync_partial_ok") - partial_before
}

fn same_data(a: u16, b: u16, what: &str) {
    assert_same_contents(&contents(&mut con(a)), &contents(&mut con(b)), what);
}

#[test]
fn redis_replica_of_ferrous_resumes_with_partial_resyncs() {
    let Some(redis) = redis_or_skip("redis_replica_of_ferrous_resumes_with_partial_resyncs") else { return };
    let dir = scratch("r-of-f");
    let master = Proc::start(free_port(), &dir.join("m"), &["--repl-diskless-sync-delay", "0"]);
    load(master.port);
    let replica = Redis::start(&redis, &dir, &["--replicaof", "127.0.0.1", &master.port.to_string()]);
    assert!(in_sync(master.port, replica.port), "the Redis replica never caught up");
    assert_eq!(stat(master.port, "sync_full"), 1);
    let partial = drops_while_writing(master.port, replica.port, 4);
    assert_eq!(partial, 4, "each reconnection is a +CONTINUE");
    assert_eq!(stat(master.port, "sync_full"), 1, "no second full synchronisation");
    let acked: i64 = redis::cmd("WAIT").arg(1).arg(10_000).query(&mut con(master.port)).unwrap();
    assert_eq!(acked, 1);
    assert!(in_sync(master.port, replica.port));
    same_data(replica.port, master.port, "Redis replica vs Ferrous master");
}

#[test]
fn ferrous_replica_of_redis_resumes_with_partial_resyncs() {
    let Some(redis) = redis_or_skip("ferrous_replica_of_redis_resumes_with_partial_resyncs") else { return };
    let dir = scratch("f-of-r");
    let master = Redis::start(&redis, &dir, &["--repl-diskless-sync-delay", "0"]);
    load(master.port);
    let replica = Proc::start(free_port(), &dir.join("r"), &["--replicaof", "127.0.0.1", &master.port.to_string()]);
    assert!(in_sync(master.port, replica.port), "the Ferrous replica never caught up");
    assert_eq!(stat(master.port, "sync_full"), 1);
    let partial = drops_while_writing(master.port, replica.port, 4);
    assert_eq!(partial, 4, "each reconnection is a +CONTINUE");
    assert_eq!(stat(master.port, "sync_full"), 1, "no second full synchronisation");
    // Ferrous acknowledges its offset (REPLCONF ACK) so Redis's WAIT counts it.
    let acked: i64 = redis::cmd("WAIT").arg(1).arg(10_000).query(&mut con(master.port)).unwrap();
    assert_eq!(acked, 1);
    assert!(in_sync(master.port, replica.port));
    same_data(replica.port, master.port, "Ferrous replica vs Redis master");
}

#[test]
fn ferrous_master_restart_is_continued_by_a_redis_replica() {
    let Some(redis) = redis_or_skip("ferrous_master_restart_is_continued_by_a_redis_replica") else { return };
    let dir = scratch("f-restart");
    let port = free_port();
    let master = Proc::start(port, &dir.join("m"), &["--repl-diskless-sync-delay", "0"]);
    load(port);
    let replica = Redis::start(&redis, &dir, &["--replicaof", "127.0.0.1", &port.to_string()]);
    assert!(in_sync(port, replica.port));
    let replid = field(port, "replication", "master_replid");
    let offset: i64 = field(port, "replication", "master_repl_offset").parse().unwrap();
    let mdir = master.shutdown_save();
    let master = Proc::start(port, &mdir, &["--repl-diskless-sync-delay", "0"]);
    assert_eq!(field(port, "replication", "master_replid2"), replid, "the old history is the second ID");
    assert_eq!(field(port, "replication", "second_repl_offset"), (offset + 1).to_string());
    assert!(in_sync(port, replica.port), "the Redis replica did not reconnect");
    assert_eq!(stat(port, "sync_partial_ok"), 1, "the replica continued (+CONTINUE)");
    assert_eq!(stat(port, "sync_full"), 0);
    let _: () = redis::cmd("SET").arg("after-restart").arg("1").query(&mut con(port)).unwrap();
    assert!(in_sync(port, replica.port));
    same_data(replica.port, master.port, "after the master restarted");
}

#[test]
fn redis_master_restart_is_continued_by_a_ferrous_replica() {
    let Some(redis) = redis_or_skip("redis_master_restart_is_continued_by_a_ferrous_replica") else { return };
    let dir = scratch("r-restart");
    let port = free_port();
    let master = Proc::start_bin(&redis, port, &dir.join("m"), &[]);
    load(port);
    let replica = Proc::start(free_port(), &dir.join("r"), &["--replicaof", "127.0.0.1", &port.to_string()]);
    assert!(in_sync(port, replica.port));
    let mdir = master.shutdown_save();
    let _master = Proc::start_bin(&redis, port, &mdir, &[]);
    assert!(in_sync(port, replica.port), "the Ferrous replica did not reconnect");
    assert_eq!(stat(port, "sync_partial_ok"), 1, "Ferrous continued (+CONTINUE)");
    assert_eq!(stat(port, "sync_full"), 0);
    same_data(replica.port, port, "after the Redis master restarted");
}

/// FAILOVER TO the other server, both ways: the old master becomes a replica that continues
/// the new master's stream with a partial resynchronisation.
#[test]
fn failover_between_ferrous_and_redis() {
    let Some(redis) = redis_or_skip("failover_between_ferrous_and_redis") else { return };
    let dir = scratch("failover");
    let f = Proc::start(free_port(), &dir.join("f"), &["--repl-diskless-sync-delay", "0"]);
    load(f.port);
    let r = Redis::start(&redis, &dir, &["--replicaof", "127.0.0.1", &f.port.to_string()]);
    assert!(in_sync(f.port, r.port));
    let role = |port: u16| field(port, "replication", "role");
    // Ferrous hands over to Redis.
    let _: () = redis::cmd("FAILOVER").arg("TO").arg("127.0.0.1").arg(r.port).query(&mut con(f.port)).unwrap();
    assert!(wait_until(LONG, || role(f.port) == "slave" && role(r.port) == "master" && link_up(f.port)));
    assert!(wait_until(LONG, || field(f.port, "replication", "master_failover_state") == "no-failover"));
    assert_eq!(stat(r.port, "sync_partial_ok"), 1, "Ferrous continued Redis's stream");
    assert_eq!(stat(r.port, "sync_full"), 0);
    let _: () = redis::cmd("SET").arg("written-on-redis").arg("1").query(&mut con(r.port)).unwrap();
    assert!(in_sync(r.port, f.port));
    same_data(f.port, r.port, "after FAILOVER to Redis");
    // And back: Redis hands over to Ferrous.
    let partial = stat(f.port, "sync_partial_ok");
    let _: () = redis::cmd("FAILOVER").arg("TO").arg("127.0.0.1").arg(f.port).query(&mut con(r.port)).unwrap();
    assert!(wait_until(LONG, || role(r.port) == "slave" && role(f.port) == "master" && link_up(r.port)));
    assert!(wait_until(LONG, || field(r.port, "replication", "master_failover_state") == "no-failover"));
    assert_eq!(stat(f.port, "sync_partial_ok"), partial + 1, "Redis continued Ferrous's stream");
    let _: () = redis::cmd("SET").arg("written-on-ferrous").arg("1").query(&mut con(f.port)).unwrap();
    assert!(in_sync(f.port, r.port));
    same_data(r.port, f.port, "after FAILOVER back to Ferrous");
}
