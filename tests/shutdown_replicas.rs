//! Shutting down a master with a lagging replica (Redis 7.0's shutdown-timeout): SHUTDOWN and
//! SIGTERM wait for the replica's acknowledgement with writes paused, SHUTDOWN ABORT cancels
//! the wait, and the timeout gives up on the replica.

mod common;

use common::{info_field, wait_until, Server};
use std::time::Duration;

static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

fn signal(pid: u32, sig: &str) {
    let ok = std::process::Command::new("kill").args([sig, &pid.to_string()]).status().unwrap().success();
    assert!(ok, "kill {sig} {pid}");
}

/// A master and its replica, in sync on k=1; the replica is then stopped (SIGSTOP), so it
/// acknowledges nothing more.
fn master_with_stopped_replica(timeout_s: &str) -> (Server, Server) {
    // Files of their own: a replica writes the snapshot it loads to its RDB file.
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let (m_rdb, r_rdb) = (format!("shutdown-master-{n}.rdb"), format!("shutdown-replica-{n}.rdb"));
    let master = Server::start(&["--shutdown-timeout", timeout_s, "--hz", "100", "--dbfilename", &m_rdb]);
    let replica = Server::start(&["--dbfilename", &r_rdb]);
    let mut r = replica.conn();
    let _: () = redis::cmd("REPLICAOF").arg("127.0.0.1").arg(master.port).query(&mut r).unwrap();
    let mut m = master.conn();
    let _: () = redis::cmd("SET").arg("k").arg(1).query(&mut m).unwrap();
    let synced = wait_until(common::BACKGROUND_WORK, || {
        info_field(&mut r, "replication", "master_link_status") == "up"
            && info_field(&mut m, "replication", "slave0")
                .contains(&format!("offset={},", info_field(&mut m, "replication", "master_repl_offset")))
    });
    assert!(synced, "the replica never caught up");
    signal(replica.pid(), "-STOP");
    (master, replica)
}

fn shutdown_in_ms(m: &mut redis::Connection) -> Option<i64> {
    let info: String = common::query(m, &["INFO", "server"]);
    info.lines().find_map(|l| l.strip_prefix("shutdown_in_milliseconds:")).map(|v| v.trim().parse().unwrap())
}

#[test]
fn shutdown_waits_for_the_replica_and_abort_cancels_it() {
    let (mut master, replica) = master_with_stopped_replica("300");
    let mut m = master.conn();
    let _: i64 = redis::cmd("INCR").arg("k").query(&mut m).unwrap();
    assert_eq!(shutdown_in_ms(&mut m), None);

    // SHUTDOWN blocks: the replica did not acknowledge the INCR.
    let mut waiter = master.raw();
    waiter.send_cmd(&["SHUTDOWN"]);
    assert!(wait_until(Duration::from_secs(5), || shutdown_in_ms(&mut m).is_some_and(|ms| ms > 0)));
    assert_eq!(info_field(&mut m, "clients", "blocked_clients"), "1");
    // Writes are held meanwhile; reads are served.
    let mut writer = master.raw();
    writer.send_cmd(&["SET", "held", "1"]);
    assert!(writer.try_read_reply(Duration::from_millis(300)).is_err(), "a write ran during the wait");
    let k: String = redis::cmd("GET").arg("k").query(&mut m).unwrap();
    assert_eq!(k, "2");

    // ABORT: the waiter gets its error, the held write runs, the server stays.
    assert_eq!(common::query::<String>(&mut m, &["SHUTDOWN", "ABORT"]), "OK");
    assert_eq!(waiter.read_reply(), b"-ERR Errors trying to SHUTDOWN. Check logs.\r\n");
    assert_eq!(writer.read_reply(), b"+OK\r\n");
    assert_eq!(shutdown_in_ms(&mut m), None);
    assert!(master.log().contains("Shutdown manually aborted."));

    // SIGTERM waits the same way; the replica resumes, acknowledges, and the master exits.
    let _: i64 = redis::cmd("INCR").arg("k").query(&mut m).unwrap();
    signal(master.pid(), "-TERM");
    assert!(wait_until(Duration::from_secs(5), || shutdown_in_ms(&mut m).is_some_and(|ms| ms > 0)));
    std::thread::sleep(Duration::from_millis(50));
    assert!(master.wait_exit(Duration::from_millis(1)).is_none(), "the master did not wait");
    signal(replica.pid(), "-CONT");
    let status = master.wait_exit(Duration::from_secs(20)).expect("the master never exited");
    assert!(status.success(), "{status}");
    let log = master.log();
    assert!(log.contains("Waiting for replicas before shutting down."), "{log}");
    assert!(log.contains("1 of 1 replicas are in sync when shutting down."), "{log}");
    assert!(!log.contains("Lagging replica"), "{log}");
    assert!(log.contains("ready to exit, bye bye"), "{log}");
    let mut r = replica.conn();
    let k: String = redis::cmd("GET").arg("k").query(&mut r).unwrap();
    assert_eq!(k, "3");
}

#[test]
fn shutdown_gives_up_on_a_replica_after_the_timeout() {
    let (mut master, replica) = master_with_stopped_replica("1");
    let mut m = master.conn();
    let _: i64 = redis::cmd("INCR").arg("k").query(&mut m).unwrap();
    let mut waiter = master.raw();
    let sent = std::time::Instant::now();
    waiter.send_cmd(&["SHUTDOWN", "NOSAVE"]);
    // It waits out its 1 s (asking INFO meanwhile could meet the exit on a loaded machine).
    let status = master.wait_exit(Duration::from_secs(10)).expect("the master never exited");
    assert!(sent.elapsed() >= Duration::from_millis(900), "exited after {:?}", sent.elapsed());
    assert!(status.success(), "{status}");
    let log = master.log();
    assert!(log.contains("Lagging replica 127.0.0.1:"), "{log}");
    assert!(log.contains("0 of 1 replicas are in sync when shutting down."), "{log}");
    signal(replica.pid(), "-CONT");
}

#[test]
fn shutdown_now_and_a_zero_timeout_do_not_wait() {
    for (timeout, args) in [("300", &["SHUTDOWN", "NOW", "NOSAVE"][..]), ("0", &["SHUTDOWN", "NOSAVE"][..])] {
        let (mut master, replica) = master_with_stopped_replica(timeout);
        let mut m = master.conn();
        let _: i64 = redis::cmd("INCR").arg("k").query(&mut m).unwrap();
        let mut raw = master.raw();
        raw.send_cmd(args);
        let status = master.wait_exit(Duration::from_secs(5)).expect("the master waited");
        assert!(status.success(), "{status}");
        assert!(!master.log().contains("Waiting for replicas"));
        signal(replica.pid(), "-CONT");
    }
}
