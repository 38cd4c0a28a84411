//! Every caller kind admitted through the one pipeline: the same refusal (wrong arity, OOM,
//! READONLY) reads as Redis 7.0 writes it for a client, a transaction, a script, our master's
//! stream and the AOF loader (texts checked against redis-server 7.0.15).

use super::{resolve, Caller};
use crate::commands::testing::Harness;
use bytes::Bytes;
use std::sync::atomic::Ordering;

fn argv(args: &[&str]) -> Vec<Bytes> {
    args.iter().map(|a| Bytes::copy_from_slice(a.as_bytes())).collect()
}

#[test]
fn wrong_arity_for_every_caller() {
    let mut h = Harness::new();
    assert_eq!(h.run(&["GET"]), "-ERR wrong number of arguments for 'get' command\r\n");
    // A script's call.
    assert_eq!(
        h.run(&["EVAL", "return redis.pcall('get')", "0"]),
        "-ERR Wrong number of args calling Redis command from script\r\n"
    );
    // Inside MULTI: refused when queued, and the transaction is aborted.
    assert_eq!(h.run(&["MULTI"]), "+OK\r\n");
    assert_eq!(h.run(&["GET"]), "-ERR wrong number of arguments for 'get' command\r\n");
    assert_eq!(h.run(&["EXEC"]), "-EXECABORT Transaction discarded because of previous errors.\r\n");
    // Our master's stream: refused the same way (the reply is discarded), nothing runs.
    assert_eq!(h.run_as(Caller::Master, &["SET", "k"]), "-ERR wrong number of arguments for 'set' command\r\n");
    assert_eq!(h.run(&["EXISTS", "k"]), ":0\r\n");
    // The AOF loader finds no command to replay.
    assert!(resolve(&argv(&["GET"]), Caller::AofLoad).is_err());
    assert!(resolve(&argv(&["GET", "k"]), Caller::AofLoad).is_ok());
}

#[test]
fn out_of_memory_for_every_caller() {
    let mut h = Harness::new();
    h.server.maxmemory.store(1, Ordering::Relaxed);
    h.server.out_of_memory.store(true, Ordering::Relaxed);
    let oom = "-OOM command not allowed when used memory > 'maxmemory'.\r\n";
    assert_eq!(h.run(&["SET", "a", "b"]), oom);
    assert_eq!(h.run(&["GET", "a"]), "$-1\r\n");
    // A script started out of memory: its first denyoom call is refused.
    assert_eq!(h.run(&["EVAL", "return redis.pcall('set','a','b')", "0"]), oom);
    // Anything queued in MULTI is refused over maxmemory, and EXEC aborts.
    assert_eq!(h.run(&["MULTI"]), "+OK\r\n");
    assert_eq!(h.run(&["SET", "a", "b"]), oom);
    assert_eq!(h.run(&["EXEC"]), "-EXECABORT Transaction discarded because of previous errors.\r\n");
    // Our master is obeyed (a replica ignores maxmemory).
    assert_eq!(h.run_as(Caller::Master, &["SET", "a", "b"]), "+OK\r\n");
    assert_eq!(h.run(&["GET", "a"]), "$1\r\nb\r\n");
}

#[test]
fn read_only_replica_for_every_caller() {
    let mut h = Harness::new();
    h.server.replica.set_master(Some(("127.0.0.1".into(), 1)));
    let ro = "-READONLY You can't write against a read only replica.\r\n";
    assert_eq!(h.run(&["SET", "a", "b"]), ro);
    assert_eq!(h.run(&["EVAL", "return redis.pcall('set','a','b')", "0"]), ro);
    assert_eq!(h.run(&["MULTI"]), "+OK\r\n");
    assert_eq!(h.run(&["SET", "a", "b"]), ro);
    assert_eq!(h.run(&["EXEC"]), "-EXECABORT Transaction discarded because of previous errors.\r\n");
    // The master's writes are applied.
    assert_eq!(h.run_as(Caller::Master, &["SET", "a", "b"]), "+OK\r\n");
    assert_eq!(h.run(&["GET", "a"]), "$1\r\nb\r\n");
}

#[test]
fn refused_exec_aborts_even_outside_a_transaction() {
    // Redis's rejectCommand answers a refused EXEC with execCommandAbort, MULTI or not, and
    // drops the watched keys.
    let mut h = Harness::new();
    let arity = "-EXECABORT Transaction discarded because of: wrong number of arguments for 'exec' command\r\n";
    assert_eq!(h.run(&["EXEC", "x"]), arity);
    assert_eq!(h.run(&["WATCH", "w"]), "+OK\r\n");
    assert_eq!(h.run(&["EXEC", "x"]), arity);
    assert!(h.client.watched.is_empty());
    assert_eq!(h.run(&["EXEC"]), "-ERR EXEC without MULTI\r\n");
}

#[test]
fn monitor_is_refused_in_exec_and_a_monitor_cannot_touch_the_keyspace() {
    let mut h = Harness::new();
    h.run(&["MULTI"]);
    assert_eq!(h.run(&["MONITOR"]), "+QUEUED\r\n");
    assert_eq!(h.run(&["EXEC"]), "*1\r\n-ERR MONITOR isn't allowed for DENY BLOCKING client\r\n");
    assert!(!h.client.monitor && !h.client.in_exec);
    // Redis flags a monitor as a replica: no keyspace access, and a pause does not hold it.
    h.client.monitor = true;
    let refused = "-ERR Replica can't interact with the keyspace\r\n";
    assert_eq!(h.run(&["GET", "k"]), refused);
    assert_eq!(h.run(&["PUBLISH", "c", "m"]), refused);
    assert_eq!(h.run(&["PING"]), "+PONG\r\n");
}

#[test]
fn exec_runs_queued_commands_through_the_pipeline() {
    let mut h = Harness::new();
    h.run(&["MULTI"]);
    assert_eq!(h.run(&["SET", "x", "1"]), "+QUEUED\r\n");
    assert_eq!(h.run(&["INCR", "x"]), "+QUEUED\r\n");
    assert_eq!(h.run(&["EXEC"]), "*2\r\n+OK\r\n:2\r\n");
    h.resp3();
    assert_eq!(
        h.run(&["COMMAND", "GETKEYSANDFLAGS", "LMOVE", "a", "b", "LEFT", "RIGHT"]),
        "*2\r\n*2\r\n$1\r\na\r\n~3\r\n+RW\r\n+access\r\n+delete\r\n*2\r\n$1\r\nb\r\n~2\r\n+RW\r\n+insert\r\n"
    );
}

/// `redis.acl_check_cmd` answers with the script's caller's permissions (commands, keys,
/// subcommands), as redis-server 7.0.15 does; arity is not checked.
#[test]
fn acl_check_cmd_follows_the_callers_permissions() {
    let mut h = Harness::new();
    super::services::set_default_auth(&h.server, &mut h.client);
    let check = |h: &mut Harness, args: &str| h.run(&["EVAL", &format!("return redis.acl_check_cmd({args})"), "0"]);
    assert_eq!(check(&mut h, "'hset','xx','f',1"), ":1\r\n");
    assert_eq!(h.run(&["ACL", "SETUSER", "default", "-hset", "-config|set", "resetkeys", "~a*"]), "+OK\r\n");
    assert_eq!(check(&mut h, "'hset','ab','f',1"), "$-1\r\n");
    assert_eq!(check(&mut h, "'get','xx'"), "$-1\r\n");
    assert_eq!(check(&mut h, "'get','ab'"), ":1\r\n");
    assert_eq!(check(&mut h, "'get'"), ":1\r\n");
    assert_eq!(check(&mut h, "'config','get','x'"), ":1\r\n");
    assert_eq!(check(&mut h, "'config','set','x','y'"), "$-1\r\n");
    let invalid = check(&mut h, "'config','nosuch'");
    assert!(invalid.starts_with("-ERR Invalid command passed to redis.acl_check_cmd()"), "{invalid}");
}
