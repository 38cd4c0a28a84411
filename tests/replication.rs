//! REPLICAOF: Ferrous as a replica of a real Redis master and of another Ferrous: full
//! synchronisation, the command stream, READONLY, and promotion with REPLICAOF NO ONE.

mod common;

use common::{start_real_redis, wait_until, Server};
use std::time::Duration;

fn con(port: u16) -> redis::Connection {
    redis::Client::open(format!("redis://127.0.0.1:{port}/")).unwrap().get_connection().unwrap()
}

fn info(con: &mut redis::Connection) -> String {
    redis::cmd("INFO").arg("replication").query(con).unwrap()
}

/// Load data on the master, attach the replica, check the snapshot, the stream (several
/// databases, a transaction, expiry), READONLY, then promote it.
fn replicate_from(master_port: u16) {
    let mut m = con(master_port);
    let _: () = redis::cmd("FLUSHALL").query(&mut m).unwrap();
    let _: () = redis::cmd("MSET").arg("a").arg(1).arg("b").arg(2).query(&mut m).unwrap();
    let _: () = redis::cmd("RPUSH").arg("l").arg("x").arg("y").query(&mut m).unwrap();
    let _: () = redis::cmd("SET").arg("e").arg("v").arg("EX").arg(1000).query(&mut m).unwrap();

    let replica = Server::start(&[]);
    let mut r = replica.conn();
    let _: () = redis::cmd("REPLICAOF").arg("127.0.0.1").arg(master_port).query(&mut r).unwrap();
    assert!(
        wait_until(Duration::from_secs(10), || info(&mut r).contains("master_link_status:up")),
        "the link never came up: {}",
        info(&mut r)
    );
    let got: Vec<Option<String>> = redis::cmd("MGET").arg("a").arg("b").query(&mut r).unwrap();
    assert_eq!(got, vec![Some("1".into()), Some("2".into())]);
    let ttl: i64 = redis::cmd("TTL").arg("e").query(&mut r).unwrap();
    assert!((990..=1000).contains(&ttl), "ttl {ttl}");

    // The stream: writes in another database and a transaction.
    let _: i64 = redis::cmd("INCR").arg("a").query(&mut m).unwrap();
    let _: () =
        redis::pipe().atomic().cmd("SET").arg("t1").arg("x").cmd("SET").arg("t2").arg("y").query(&mut m).unwrap();
    let _: () = redis::cmd("SELECT").arg(3).query(&mut m).unwrap();
    let _: () = redis::cmd("SET").arg("d3").arg("z").query(&mut m).unwrap();
    let caught_up = wait_until(Duration::from_secs(5), || {
        let d3: Option<String> = redis::cmd("GET").arg("d3").query(&mut con_db(replica.port, 3)).unwrap();
        d3.is_some()
    });
    assert!(caught_up, "the replica never applied the stream");
    let a: String = redis::cmd("GET").arg("a").query(&mut r).unwrap();
    let t: Vec<String> = redis::cmd("MGET").arg("t1").arg("t2").query(&mut r).unwrap();
    assert_eq!((a.as_str(), t), ("2", vec!["x".to_string(), "y".to_string()]));

    let err = redis::cmd("SET").arg("w").arg(1).query::<()>(&mut r).unwrap_err();
    assert_eq!(err.code(), Some("READONLY"), "{err}");
    let _: () = redis::cmd("REPLICAOF").arg("NO").arg("ONE").query(&mut r).unwrap();
    let _: () = redis::cmd("SET").arg("w").arg(1).query(&mut r).unwrap();
    assert!(info(&mut r).contains("role:master"));
}

fn con_db(port: u16, db: i64) -> redis::Connection {
    let mut c = con(port);
    let _: () = redis::cmd("SELECT").arg(db).query(&mut c).unwrap();
    c
}

#[test]
fn replica_of_ferrous() {
    let master = Server::start(&[]);
    replicate_from(master.port);
}

#[test]
fn replica_of_real_redis() {
    let Some(master) = start_real_redis("replica_of_real_redis") else { return };
    replicate_from(master.port);
}

/// A master that cannot be reached: the link stays down, writes are refused (READONLY), and
/// with replica-serve-stale-data no reads get MASTERDOWN.
#[test]
fn unreachable_master_keeps_the_link_down() {
    let replica = Server::start(&[]);
    let mut raw = replica.raw();
    let port = common::free_port().to_string();
    assert_eq!(raw.cmd(&["REPLICAOF", "127.0.0.1", &port]), b"+OK\r\n");
    assert_eq!(raw.cmd(&["REPLICAOF", "127.0.0.1", &port]), b"+OK Already connected to specified master\r\n");
    assert_eq!(raw.cmd(&["SET", "k", "v"]), b"-READONLY You can't write against a read only replica.\r\n");
    assert_eq!(raw.cmd(&["CONFIG", "SET", "replica-serve-stale-data", "no"]), b"+OK\r\n");
    assert_eq!(
        raw.cmd(&["GET", "k"]),
        b"-MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'.\r\n"
    );
    assert_eq!(raw.cmd(&["REPLICAOF", "NO", "ONE"]), b"+OK\r\n");
    assert_eq!(raw.cmd(&["SET", "k", "v"]), b"+OK\r\n");
}
