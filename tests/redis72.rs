//! Integration tests of Redis 7.2 behaviour the differential case files cannot express: SCAN
//! page sizes on hash-table encodings (their contents depend on hash order), and RDB files of
//! version 11 (listpack sets, RDB type 20; streams, type 21) written with `rdb-version 11` and read back by
//! Ferrous and by Valkey 9.1, while the default files stay loadable by Redis 7.0.

mod common;

use common::interop::*;
use common::{query, work_dir, Server};
use std::fs;
use std::path::PathBuf;

fn test_dir(name: &str) -> PathBuf {
    let dir = work_dir().join(format!("r72-{name}"));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).expect("create the test directory");
    dir
}

/// One SCAN-family call: the next cursor and the reply's elements.
fn scan_page(con: &mut redis::Connection, args: &[&str]) -> (String, Vec<Vec<u8>>) {
    query(con, args)
}

#[test]
fn scan_pages_hold_count_entries_for_every_encoding() {
    let server = Server::start(&[]);
    let mut c = server.conn();
    // A 100-field hash-table hash: HSCAN COUNT 50 gives about 50 field/value pairs (Redis's
    // scanGenericCommand counts entries, not reply elements), not 25.
    for i in 0..100 {
        let _: () = query(&mut c, &["HSET", "h", &format!("field-{i:03}-{}", "x".repeat(70)), "v"]);
    }
    assert_eq!(query::<String>(&mut c, &["OBJECT", "ENCODING", "h"]), "hashtable");
    let (cursor, items) = scan_page(&mut c, &["HSCAN", "h", "0", "COUNT", "50"]);
    assert!(items.len() >= 100, "HSCAN COUNT 50 gave {} pairs (cursor {cursor})", items.len() / 2);
    // The same for a skiplist sorted set and a hash-table set.
    for i in 0..200 {
        let m = format!("member-{i:03}");
        let _: () = query(&mut c, &["ZADD", "z", &i.to_string(), &m]);
        let _: () = query(&mut c, &["SADD", "s", &m]);
    }
    assert_eq!(query::<String>(&mut c, &["OBJECT", "ENCODING", "z"]), "skiplist");
    assert_eq!(query::<String>(&mut c, &["OBJECT", "ENCODING", "s"]), "hashtable");
    let (_, items) = scan_page(&mut c, &["ZSCAN", "z", "0", "COUNT", "50"]);
    assert!(items.len() >= 100, "ZSCAN COUNT 50 gave {} pairs", items.len() / 2);
    let (_, items) = scan_page(&mut c, &["SSCAN", "s", "0", "COUNT", "50"]);
    assert!(items.len() >= 50, "SSCAN COUNT 50 gave {} members", items.len());
    // Compact encodings come back whole, with cursor 0: a 65-member set of short strings is a
    // listpack since Redis 7.2 (a job queue paging through it expects one page).
    for i in 0..65 {
        let _: () = query(&mut c, &["SADD", "jobs", &format!("job:{i}")]);
    }
    assert_eq!(query::<String>(&mut c, &["OBJECT", "ENCODING", "jobs"]), "listpack");
    let (cursor, items) = scan_page(&mut c, &["SSCAN", "jobs", "0", "COUNT", "10"]);
    assert_eq!((cursor.as_str(), items.len()), ("0", 65));
    let (cursor, items) = scan_page(&mut c, &["HSCAN", "small", "0"]);
    assert_eq!((cursor.as_str(), items.len()), ("0", 0));
}

/// A dataset with every set encoding.
fn fill_sets(c: &mut redis::Connection) {
    let _: () = query(c, &["SADD", "set:listpack", "b", "1", "a"]);
    let _: () = query(c, &["SADD", "set:intset", "3", "1", "2"]);
    let members: Vec<String> = (0..200).map(|i| format!("m{i}")).collect();
    let mut args = vec!["SADD", "set:table"];
    args.extend(members.iter().map(String::as_str));
    let _: () = query(c, &args);
}

fn set_view(c: &mut redis::Connection) -> Vec<(String, Vec<String>)> {
    ["set:listpack", "set:intset", "set:table"]
        .iter()
        .map(|k| {
            let mut m: Vec<String> = query(c, &["SMEMBERS", k]);
            if *k == "set:table" {
                m.sort();
            }
            (query(c, &["OBJECT", "ENCODING", k]), m)
        })
        .collect()
}

#[test]
fn rdb_version_11_writes_listpack_sets_that_valkey_and_ferrous_load() {
    let dir = test_dir("rdb11");
    let d = dir.to_str().unwrap();
    let expected = {
        let ferrous = Server::start(&["--dir", d, "--rdb-version", "11"]);
        let mut c = ferrous.conn();
        fill_sets(&mut c);
        let _: () = query(&mut c, &["SAVE"]);
        set_view(&mut c)
    };
    assert_eq!(expected[0], ("listpack".to_string(), vec!["b".to_string(), "1".into(), "a".into()]));
    let file = fs::read(dir.join("dump.rdb")).expect("dump.rdb");
    assert_eq!(&file[..9], b"REDIS0011");
    assert!(file.windows(14).any(|w| w == b"\x14\x0cset:listpack"), "no RDB type 20 entry");
    // Ferrous reads it back with the same encodings and order.
    {
        let ferrous = Server::start(&["--dir", d]);
        assert_eq!(set_view(&mut ferrous.conn()), expected);
    }
    // And so does Valkey 9.1 (Redis 7.2.4's loader).
    let Some(bin) = valkey_or_skip("rdb_version_11_writes_listpack_sets_that_valkey_and_ferrous_load") else {
        return;
    };
    let valkey = Redis::start(&bin, &dir, &["--dbfilename", "dump.rdb"]);
    assert_eq!(set_view(&mut valkey.conn()), expected);
}

/// Each consumer's (name, seen-time, active-time) in XINFO STREAM st FULL.
fn consumer_times(c: &mut redis::Connection) -> Vec<(String, i64, i64)> {
    ["alice", "bob"]
        .iter()
        .map(|name| {
            let times: Vec<i64> = query(c, &["EVAL", CONSUMER_TIMES, "1", "st", name]);
            (name.to_string(), times[0], times[1])
        })
        .collect()
}

/// The seen-time and active-time of consumer ARGV[1] of the first group of stream KEYS[1].
const CONSUMER_TIMES: &str = "local f = redis.call('XINFO', 'STREAM', KEYS[1], 'FULL') local g \
    for i = 1, #f, 2 do if f[i] == 'groups' then g = f[i + 1][1] end end \
    for i = 1, #g, 2 do if g[i] == 'consumers' then \
    for _, c in ipairs(g[i + 1]) do if c[2] == ARGV[1] then return {c[4], c[6]} end end end end";

#[test]
fn rdb_version_11_writes_streams_with_active_times_that_valkey_loads() {
    let dir = test_dir("rdb11-stream");
    let d = dir.to_str().unwrap();
    let expected = {
        let ferrous = Server::start(&["--dir", d, "--rdb-version", "11"]);
        let mut c = ferrous.conn();
        let _: () = query(&mut c, &["XGROUP", "CREATE", "st", "g", "$", "MKSTREAM"]);
        let _: String = query(&mut c, &["XADD", "st", "1-0", "f", "v"]);
        let _: redis::Value = query(&mut c, &["XREADGROUP", "GROUP", "g", "alice", "STREAMS", "st", ">"]);
        let _: i64 = query(&mut c, &["XGROUP", "CREATECONSUMER", "st", "g", "bob"]);
        let _: () = query(&mut c, &["SAVE"]);
        consumer_times(&mut c)
    };
    assert!(expected[0].2 > 0, "alice read: active {expected:?}");
    assert_eq!(expected[1].2, -1, "bob never read");
    let file = fs::read(dir.join("dump.rdb")).expect("dump.rdb");
    assert!(file.windows(4).any(|w| w == b"\x15\x02st"), "no RDB type 21 entry");
    {
        let ferrous = Server::start(&["--dir", d]);
        assert_eq!(consumer_times(&mut ferrous.conn()), expected);
    }
    let Some(bin) = valkey_or_skip("rdb_version_11_writes_streams_with_active_times_that_valkey_loads") else {
        return;
    };
    let valkey = Redis::start(&bin, &dir, &["--dbfilename", "dump.rdb"]);
    assert_eq!(consumer_times(&mut valkey.conn()), expected);
}

#[test]
fn default_files_stay_version_10_and_dump_follows_rdb_version() {
    let dir = test_dir("rdb10");
    let d = dir.to_str().unwrap();
    let ferrous = Server::start(&["--dir", d]);
    let mut c = ferrous.conn();
    fill_sets(&mut c);
    let _: () = query(&mut c, &["SAVE"]);
    let file = fs::read(dir.join("dump.rdb")).expect("dump.rdb");
    assert_eq!(&file[..9], b"REDIS0010");
    // A DUMP of a listpack set: a plain set (type 2) and version 10 by default, type 20 and
    // version 11 with rdb-version 11; both restore as the listpack they were.
    let v10: Vec<u8> = query(&mut c, &["DUMP", "set:listpack"]);
    assert_eq!((v10[0], &v10[v10.len() - 10..v10.len() - 8]), (2, &[10u8, 0][..]));
    let _: () = query(&mut c, &["CONFIG", "SET", "rdb-version", "11"]);
    let v11: Vec<u8> = query(&mut c, &["DUMP", "set:listpack"]);
    assert_eq!((v11[0], &v11[v11.len() - 10..v11.len() - 8]), (20, &[11u8, 0][..]));
    for (name, payload) in [("r10", &v10), ("r11", &v11)] {
        let _: () = redis::cmd("RESTORE").arg(name).arg(0).arg(payload).query(&mut c).expect("RESTORE");
        assert_eq!(query::<String>(&mut c, &["OBJECT", "ENCODING", name]), "listpack");
        assert_eq!(query::<Vec<String>>(&mut c, &["SMEMBERS", name]), vec!["b", "1", "a"]);
    }
    // Redis 7.0 loads the default file (the listpack set becomes its hash table).
    let Some(bin) = redis_or_skip("default_files_stay_version_10_and_dump_follows_rdb_version") else {
        return;
    };
    drop(c);
    drop(ferrous);
    let redis = Redis::start(&bin, &dir, &[]);
    let mut rc = redis.conn();
    let mut m: Vec<String> = query(&mut rc, &["SMEMBERS", "set:listpack"]);
    m.sort();
    assert_eq!(m, vec!["1", "a", "b"]);
    assert_eq!(query::<i64>(&mut rc, &["SCARD", "set:table"]), 200);
}

#[test]
fn wait_and_waitaof_count_acknowledgements_of_the_last_write() {
    let dir = test_dir("waitaof");
    let d = dir.to_str().unwrap();
    let master = Server::start(&[
        "--dir",
        d,
        "--appendonly",
        "yes",
        "--appendfsync",
        "always",
        "--repl-diskless-sync-delay",
        "0",
    ]);
    let mut c = master.conn();
    // No replica: WAIT answers 0 at once for 0 replicas, after the timeout for more.
    assert_eq!(query::<i64>(&mut c, &["WAIT", "0", "0"]), 0);
    let _: () = query(&mut c, &["SET", "k", "v"]);
    let start = std::time::Instant::now();
    assert_eq!(query::<i64>(&mut c, &["WAIT", "1", "100"]), 0);
    assert!(start.elapsed() >= std::time::Duration::from_millis(90));
    // The local AOF fsynced the write (appendfsync always).
    assert_eq!(query::<Vec<i64>>(&mut c, &["WAITAOF", "1", "0", "0"]), vec![1, 0]);
    // Inside MULTI nothing blocks.
    let _: () = query(&mut c, &["MULTI"]);
    let _: () = query(&mut c, &["WAIT", "5", "0"]);
    assert_eq!(query::<Vec<i64>>(&mut c, &["EXEC"]), vec![0]);
    // A replica acknowledges: WAIT returns as soon as it has the write.
    let replica = Server::start(&["--dir", d, "--dbfilename", "replica.rdb"]);
    let mut r = replica.conn();
    let _: () = query(&mut r, &["REPLICAOF", "127.0.0.1", &master.port.to_string()]);
    // (-LOADING while the replica loads the snapshot, as Redis answers.)
    assert!(common::wait_until(std::time::Duration::from_secs(10), || {
        redis::cmd("GET").arg("k").query::<Option<String>>(&mut r).ok().flatten().is_some()
    }));
    let _: () = query(&mut c, &["SET", "k2", "v2"]);
    assert_eq!(query::<i64>(&mut c, &["WAIT", "1", "5000"]), 1);
    assert_eq!(query::<Option<String>>(&mut r, &["GET", "k2"]), Some("v2".into()));
    // Errors, as Redis 7.2 words them.
    for (args, want) in [
        (&["WAITAOF", "2", "0", "0"][..], "value is out of range, value must between 0 and 1"),
        (&["WAITAOF", "0", "-1", "0"][..], "value is out of range, must be positive"),
        (&["WAIT", "0", "-1"][..], "timeout is negative"),
    ] {
        let e = redis::cmd(args[0]).arg(&args[1..]).query::<redis::Value>(&mut c).unwrap_err().to_string();
        assert!(e.contains(want), "{args:?}: {e}");
    }
    let e = redis::cmd("WAIT").arg(0).arg(0).query::<redis::Value>(&mut r).unwrap_err().to_string();
    assert!(e.contains("WAIT cannot be used with replica instances"), "{e}");
    let plain = Server::start(&[]);
    let e =
        redis::cmd("WAITAOF").arg(1).arg(0).arg(0).query::<redis::Value>(&mut plain.conn()).unwrap_err().to_string();
    assert!(e.contains("appendonly is disabled"), "{e}");
}
