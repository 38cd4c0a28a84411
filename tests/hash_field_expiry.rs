//! Hash-field expiry where Ferrous follows Redis 8 and Valkey 9.1 (the differential oracle,
//! tests/diff/hash_field_expiry.txt) differs, or where a reply cannot show it: the listpackex
//! encoding and its order, Redis 8's error texts, the reclaiming of a hash's last field,
//! active expiry, keyspace events, what is propagated (read back from the AOF) and
//! persistence (RDB 12 types, DUMP/RESTORE, DEBUG RELOAD, AOF rewrite).

mod common;

use common::{query, wait_until, work_dir, Raw, Server};
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

fn query_err(con: &mut redis::Connection, args: &[&str]) -> String {
    match redis::cmd(args[0]).arg(&args[1..]).query::<redis::Value>(con) {
        Ok(v) => panic!("{args:?} should have failed, got {v:?}"),
        Err(e) => e.to_string(),
    }
}

fn test_dir(name: &str) -> PathBuf {
    let dir = work_dir().join(format!("hfe-{name}"));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).expect("create the test directory");
    dir
}

const FAR: &str = "4102444800";

#[test]
fn listpackex_encoding_order_and_redis_8_errors() {
    let server = Server::start(&[]);
    let mut c = server.conn();
    let _: () = query(&mut c, &["HSET", "h", "a", "1", "b", "2", "c", "3"]);
    assert_eq!(query::<String>(&mut c, &["OBJECT", "ENCODING", "h"]), "listpack");
    // A field-expiry command turns a listpack into a listpackex, even without a match.
    assert_eq!(query::<Vec<i64>>(&mut c, &["HEXPIREAT", "h", FAR, "FIELDS", "1", "nofield"]), vec![-2]);
    assert_eq!(query::<String>(&mut c, &["OBJECT", "ENCODING", "h"]), "listpackex");
    // Fields with a TTL come first, by time; the others after, in insertion order.
    let _: Vec<i64> = query(&mut c, &["HEXPIREAT", "h", FAR, "FIELDS", "1", "c"]);
    let _: Vec<i64> = query(&mut c, &["HEXPIREAT", "h", "4102444000", "FIELDS", "1", "b"]);
    assert_eq!(query::<Vec<String>>(&mut c, &["HKEYS", "h"]), vec!["b", "c", "a"]);
    let _: Vec<i64> = query(&mut c, &["HPERSIST", "h", "FIELDS", "1", "b"]);
    assert_eq!(query::<Vec<String>>(&mut c, &["HKEYS", "h"]), vec!["c", "a", "b"]);
    // HEXPIRETIME rounds a millisecond time up.
    let _: Vec<i64> = query(&mut c, &["HPEXPIREAT", "h", "4102444800001", "FIELDS", "1", "a"]);
    assert_eq!(query::<Vec<i64>>(&mut c, &["HEXPIRETIME", "h", "FIELDS", "1", "a"]), vec![4102444801]);
    // Redis 8's error texts.
    let cases: &[(&[&str], &str)] = &[
        (&["HEXPIRE", "h", "10", "FIELDS", "2", "a"], "The `numfields` parameter must match the number of arguments"),
        (&["HEXPIRE", "h", "10", "FOO", "1", "a"], "Mandatory argument FIELDS is missing or not at the right position"),
        (&["HEXPIRE", "h", "10", "FIELDS", "0", "a"], "Parameter `numFields` should be greater than 0"),
        (&["HEXPIRE", "h", "-1", "FIELDS", "1", "a"], "invalid expire time, must be >= 0"),
        (&["HEXPIRE", "h", "99999999999999", "FIELDS", "1", "a"], "invalid expire time in 'hexpire' command"),
        (&["HTTL", "h", "FIELDS", "0", "a"], "Number of fields must be a positive integer"),
        (
            &["HSETEX", "h", "EX", "10", "PX", "10", "FIELDS", "1", "a", "b"],
            "Only one of EX, PX, EXAT, PXAT or KEEPTTL",
        ),
        (&["HSETEX", "h", "FNX", "FXX", "FIELDS", "1", "a", "b"], "Only one of FXX or FNX arguments can be specified"),
        (&["HSETEX", "h", "BOGUS", "FIELDS", "1", "a", "b"], "unknown argument: BOGUS"),
        (&["HSETEX", "h", "FIELDS", "2", "a", "b"], "wrong number of arguments for 'hsetex' command"),
        (&["HSETEX", "h", "FIELDS", "x", "a", "b"], "invalid number of fields"),
        (&["HGETDEL", "h", "FIELD", "1", "a"], "Mandatory argument FIELDS is missing or not at the right position"),
        (
            &["HGETEX", "h", "EX", "10", "FIELDS", "2", "a"],
            "The `numfields` parameter must match the number of arguments",
        ),
    ];
    for (args, want) in cases {
        let e = query_err(&mut c, args);
        assert!(e.contains(want), "{args:?}: {e}");
    }
}

#[test]
fn reclaimed_fields_delete_an_emptied_hash() {
    let server = Server::start(&[]);
    let mut c = server.conn();
    let _: () = query(&mut c, &["HSET", "h", "a", "1"]);
    let _: Vec<i64> = query(&mut c, &["HPEXPIRE", "h", "1", "FIELDS", "1", "a"]);
    std::thread::sleep(Duration::from_millis(5));
    assert_eq!(query::<Option<String>>(&mut c, &["HGET", "h", "a"]), None);
    assert_eq!(query::<i64>(&mut c, &["EXISTS", "h"]), 0);
    // HINCRBY on a reclaimed last field starts a new hash.
    let _: () = query(&mut c, &["HSET", "n", "a", "5"]);
    let _: Vec<i64> = query(&mut c, &["HPEXPIRE", "n", "1", "FIELDS", "1", "a"]);
    std::thread::sleep(Duration::from_millis(5));
    assert_eq!(query::<i64>(&mut c, &["HINCRBY", "n", "a", "2"]), 2);
}

#[test]
fn active_expiry_reclaims_fields_nobody_reads() {
    let server = Server::start(&[]);
    let mut c = server.conn();
    let _: () = query(&mut c, &["HSET", "h", "a", "1", "b", "2"]);
    let _: () = query(&mut c, &["HSET", "gone", "x", "1"]);
    let _: Vec<i64> = query(&mut c, &["HPEXPIRE", "h", "30", "FIELDS", "1", "a"]);
    let _: Vec<i64> = query(&mut c, &["HPEXPIRE", "gone", "30", "FIELDS", "1", "x"]);
    // HLEN counts fields not yet reclaimed (as Redis's does): wait for the cron.
    assert!(wait_until(Duration::from_secs(20), || query::<i64>(&mut c, &["HLEN", "h"]) == 1));
    assert!(wait_until(Duration::from_secs(20), || query::<i64>(&mut c, &["EXISTS", "gone"]) == 0));
    assert_eq!(query::<Vec<String>>(&mut c, &["HKEYS", "h"]), vec!["b"]);
}

fn read_message(sub: &mut Raw) -> String {
    String::from_utf8_lossy(&sub.read_reply()).into_owned()
}

#[test]
fn keyspace_events() {
    let server = Server::start(&[]);
    let mut c = server.conn();
    let _: () = query(&mut c, &["CONFIG", "SET", "notify-keyspace-events", "Ehg"]);
    let mut sub = server.raw();
    sub.cmd(&["PSUBSCRIBE", "__keyevent@0__:*"]);
    let _: () = query(&mut c, &["HSET", "h", "a", "1", "b", "2", "c", "3"]);
    assert!(read_message(&mut sub).contains("hset"));
    let expect = |sub: &mut Raw, event: &str| {
        let m = read_message(sub);
        assert!(m.contains(&format!(":{event}\r\n")), "expected {event}: {m}");
    };
    let _: Vec<i64> = query(&mut c, &["HEXPIRE", "h", "100", "FIELDS", "1", "a"]);
    expect(&mut sub, "hexpire");
    let _: Vec<i64> = query(&mut c, &["HPERSIST", "h", "FIELDS", "1", "a"]);
    expect(&mut sub, "hpersist");
    let _: Vec<i64> = query(&mut c, &["HEXPIREAT", "h", "1", "FIELDS", "1", "a"]);
    expect(&mut sub, "hdel");
    let _: Vec<i64> = query(&mut c, &["HPEXPIRE", "h", "20", "FIELDS", "1", "b"]);
    expect(&mut sub, "hexpire");
    // Reclaimed by the cron: hexpired.
    expect(&mut sub, "hexpired");
    let _: i64 = query(&mut c, &["HSETEX", "h", "EX", "100", "FIELDS", "1", "d", "4"]);
    expect(&mut sub, "hset");
    expect(&mut sub, "hexpire");
    let _: Vec<Option<String>> = query(&mut c, &["HGETDEL", "h", "FIELDS", "2", "c", "d"]);
    expect(&mut sub, "hdel");
    expect(&mut sub, "del");
}

fn aof_text(dir: &Path) -> String {
    let mut text = String::new();
    for e in fs::read_dir(dir.join("appendonlydir")).expect("appendonlydir") {
        let p = e.expect("entry").path();
        if p.to_string_lossy().ends_with(".incr.aof") {
            text.push_str(&String::from_utf8_lossy(&fs::read(&p).expect("read the AOF")));
        }
    }
    text
}

/// A command as the AOF holds it.
fn resp(args: &[&str]) -> String {
    String::from_utf8(common::encode(args)).expect("utf-8")
}

#[test]
fn effects_are_absolute_and_deterministic() {
    let dir = test_dir("aof");
    let d = dir.to_str().unwrap();
    let server = Server::start(&["--dir", d, "--appendonly", "yes", "--appendfsync", "always"]);
    let mut c = server.conn();
    let _: () = query(&mut c, &["HSET", "h", "a", "1", "b", "2", "c", "3"]);
    let _: Vec<i64> = query(&mut c, &["HEXPIRE", "h", "1000", "FIELDS", "2", "a", "nofield"]);
    let t: Vec<i64> = query(&mut c, &["HPEXPIRETIME", "h", "FIELDS", "1", "a"]);
    let _: Vec<i64> = query(&mut c, &["HEXPIREAT", "h", "1", "FIELDS", "1", "b"]);
    let _: i64 = query(&mut c, &["HSETEX", "h", "PX", "5000", "FIELDS", "1", "d", "4"]);
    let td: Vec<i64> = query(&mut c, &["HPEXPIRETIME", "h", "FIELDS", "1", "d"]);
    let _: Vec<Option<String>> = query(&mut c, &["HGETDEL", "h", "FIELDS", "2", "c", "zz"]);
    let _: Vec<Option<String>> = query(&mut c, &["HGETEX", "h", "PERSIST", "FIELDS", "1", "a"]);
    let _: String = query(&mut c, &["HINCRBYFLOAT", "h", "d", "1.5"]);
    let aof = aof_text(&dir);
    let want = [
        resp(&["HPEXPIREAT", "h", &t[0].to_string(), "FIELDS", "1", "a"]),
        resp(&["HDEL", "h", "b"]),
        resp(&["HSETEX", "h", "PXAT", &td[0].to_string(), "FIELDS", "1", "d", "4"]),
        resp(&["HDEL", "h", "c", "zz"]),
        resp(&["HPERSIST", "h", "FIELDS", "1", "a"]),
        resp(&["HSETEX", "h", "KEEPTTL", "FIELDS", "1", "d", "5.5"]),
    ];
    let mut at = 0;
    for w in &want {
        match aof[at..].find(w.as_str()) {
            Some(i) => at += i + w.len(),
            None => panic!("{w:?} missing (in order) from the AOF:\n{aof}"),
        }
    }
    assert!(!aof.contains("HEXPIREAT"), "a past time propagates only its HDEL: {aof}");
}

#[test]
fn ttls_survive_rdb_dump_reload_and_aof_rewrite() {
    let dir = test_dir("persist");
    let d = dir.to_str().unwrap();
    let mut expected = Vec::new();
    {
        let server = Server::start(&["--dir", d, "--enable-debug-command", "yes"]);
        let mut c = server.conn();
        let _: () = query(&mut c, &["HSET", "small", "a", "1", "b", "2"]);
        let _: Vec<i64> = query(&mut c, &["HPEXPIREAT", "small", "4102444800123", "FIELDS", "1", "b"]);
        let big: Vec<String> = (0..600).flat_map(|i| [format!("f{i}"), "v".to_string()]).collect();
        let mut args = vec!["HSET", "big"];
        args.extend(big.iter().map(String::as_str));
        let _: () = query(&mut c, &args);
        let _: Vec<i64> = query(&mut c, &["HPEXPIREAT", "big", "4102444800456", "FIELDS", "2", "f1", "f2"]);
        let _: () = query(&mut c, &["SET", "plain", "v"]);
        for k in ["small", "big"] {
            let t: Vec<i64> = query(&mut c, &["HPEXPIRETIME", k, "FIELDS", "3", "a", "b", "f1"]);
            expected.push((
                k,
                query::<String>(&mut c, &["OBJECT", "ENCODING", k]),
                t,
                query::<i64>(&mut c, &["HLEN", k]),
            ));
        }
        // A file with a hash with field TTLs is RDB 12 (types 25 and 24).
        let _: () = query(&mut c, &["SAVE"]);
        let file = fs::read(dir.join("dump.rdb")).expect("dump.rdb");
        assert_eq!(&file[..9], b"REDIS0012");
        // DUMP / RESTORE: version 12 payloads.
        let payload: Vec<u8> = query(&mut c, &["DUMP", "small"]);
        assert_eq!((payload[0], &payload[payload.len() - 10..payload.len() - 8]), (25, &[12u8, 0][..]));
        let _: () = redis::cmd("RESTORE").arg("copy").arg(0).arg(&payload).query(&mut c).expect("RESTORE");
        assert_eq!(
            query::<Vec<i64>>(&mut c, &["HPEXPIRETIME", "copy", "FIELDS", "2", "a", "b"]),
            vec![-1, 4102444800123]
        );
        // DEBUG RELOAD keeps them.
        let _: () = query(&mut c, &["DEBUG", "RELOAD"]);
        for (k, enc, t, len) in &expected {
            let now: Vec<i64> = query(&mut c, &["HPEXPIRETIME", k, "FIELDS", "3", "a", "b", "f1"]);
            assert_eq!(
                (&query::<String>(&mut c, &["OBJECT", "ENCODING", k]), &now, query::<i64>(&mut c, &["HLEN", k])),
                (enc, t, *len)
            );
        }
        // Without field TTLs the file goes back to version 10.
        let _: Vec<i64> = query(&mut c, &["HPERSIST", "small", "FIELDS", "1", "b"]);
        let _: Vec<i64> = query(&mut c, &["HPERSIST", "big", "FIELDS", "2", "f1", "f2"]);
        let _: () = query(&mut c, &["DEL", "copy"]);
        let _: () = query(&mut c, &["SAVE"]);
        assert_eq!(&fs::read(dir.join("dump.rdb")).expect("dump.rdb")[..9], b"REDIS0010");
        let _: Vec<i64> = query(&mut c, &["HPEXPIREAT", "small", "4102444800123", "FIELDS", "1", "b"]);
        let _: Vec<i64> = query(&mut c, &["HPEXPIREAT", "big", "4102444800456", "FIELDS", "2", "f1", "f2"]);
        // An AOF rewritten as commands (HMSET + HPEXPIREAT per field) restores them too.
        let _: () = query(&mut c, &["CONFIG", "SET", "aof-use-rdb-preamble", "no"]);
        let _: () = query(&mut c, &["CONFIG", "SET", "appendonly", "yes"]);
        assert!(wait_until(common::BACKGROUND_WORK, || {
            let info: String = query(&mut c, &["INFO", "persistence"]);
            info.contains("aof_rewrite_in_progress:0")
                && info.contains("aof_enabled:1")
                && !info.contains("aof_rewrite_scheduled:1")
        }));
    }
    let server = Server::start(&["--dir", d, "--appendonly", "yes"]);
    let mut c = server.conn();
    for (k, enc, t, len) in &expected {
        let now: Vec<i64> = query(&mut c, &["HPEXPIRETIME", k, "FIELDS", "3", "a", "b", "f1"]);
        assert_eq!(
            (&query::<String>(&mut c, &["OBJECT", "ENCODING", k]), &now, query::<i64>(&mut c, &["HLEN", k])),
            (enc, t, *len)
        );
    }
}

/// Redis 7.4+'s statistics: INFO's expired_subkeys counts fields reclaimed or deleted by a time
/// in the past, and the keyspace line's subexpiry the hashes with field TTLs (HDEL of the last
/// such field drops it at once, as in Redis 8); DEBUG LISTPACK takes a listpackex; a past time
/// given to two fields propagates their HDELs as one transaction.
#[test]
fn statistics_debug_listpack_and_one_transaction_of_hdels() {
    let dir = test_dir("stats");
    let d = dir.to_str().unwrap();
    let server =
        Server::start(&["--dir", d, "--appendonly", "yes", "--appendfsync", "always", "--enable-debug-command", "yes"]);
    let mut c = server.conn();
    let keyspace = |c: &mut redis::Connection| query::<String>(c, &["INFO", "keyspace"]);
    let expired = |c: &mut redis::Connection| common::info_field(c, "stats", "expired_subkeys");
    let _: () = query(&mut c, &["HSET", "h", "a", "1", "b", "2", "c", "3"]);
    assert!(keyspace(&mut c).contains("db0:keys=1,expires=0,avg_ttl=0\r\n"), "{}", keyspace(&mut c));
    let _: Vec<i64> = query(&mut c, &["HEXPIREAT", "h", FAR, "FIELDS", "1", "c"]);
    assert!(keyspace(&mut c).contains("db0:keys=1,expires=0,avg_ttl=0,subexpiry=1\r\n"), "{}", keyspace(&mut c));
    assert_eq!(query::<String>(&mut c, &["DEBUG", "LISTPACK", "h"]), "Listpack structure printed on stdout");
    assert_eq!(expired(&mut c), "0");
    assert_eq!(query::<Vec<i64>>(&mut c, &["HEXPIREAT", "h", "1", "FIELDS", "2", "a", "b"]), vec![2, 2]);
    assert_eq!(expired(&mut c), "2");
    let _: i64 = query(&mut c, &["HDEL", "h", "c"]);
    let _: () = query(&mut c, &["HSET", "h", "d", "4"]);
    assert!(keyspace(&mut c).contains("db0:keys=1,expires=0,avg_ttl=0\r\n"), "{}", keyspace(&mut c));
    let _: () = query(&mut c, &["SET", "s", "v"]);
    assert!(query_err(&mut c, &["DEBUG", "LISTPACK", "s"]).contains("Not a listpack encoded object."));
    assert!(query_err(&mut c, &["DEBUG", "LISTPACK", "nokey"]).contains("no such key"));
    let aof = aof_text(&dir);
    let want = [resp(&["MULTI"]), resp(&["HDEL", "h", "a"]), resp(&["HDEL", "h", "b"]), resp(&["EXEC"])].concat();
    assert!(aof.contains(&want), "{aof}");
}

/// Active field expiry takes the due hashes earliest first across every shard, as Redis's
/// ordered index does: their fields' HDELs come in the order of their times (not of shards or
/// names); and a due hash among many thousands with later TTLs goes within a cycle or two
/// (hashes were sampled 20 per shard and cycle at random).
#[test]
fn active_field_expiry_goes_earliest_first_and_finds_the_due_among_many() {
    let dir = test_dir("active-order");
    let d = dir.to_str().unwrap();
    let server = Server::start(&["--dir", d, "--appendonly", "yes", "--enable-debug-command", "yes"]);
    let mut c = server.conn();
    let mut pipe = redis::pipe();
    for i in 0..12_000 {
        let k = format!("later:{i}");
        pipe.cmd("HSET").arg(&k).arg("f").arg("v").ignore();
        pipe.cmd("HEXPIRE").arg(&k).arg(100_000).arg("FIELDS").arg(1).arg("f").ignore();
    }
    let _: () = pipe.query(&mut c).unwrap();
    let _: () = query(&mut c, &["DEBUG", "SET-ACTIVE-EXPIRE", "0"]);
    let now = common::server_ms(&mut c);
    // z's fields are due first, a's after: the names' order (and their shards') is the other way.
    // (Far enough ahead that none is past already when it is set, on a loaded machine too.)
    for (k, f, dt) in [("z", "f1", 300), ("z", "f2", 310), ("a", "f1", 320), ("a", "f2", 330)] {
        let _: () = query(&mut c, &["HSET", k, f, "v"]);
        let _: Vec<i64> = query(&mut c, &["HPEXPIREAT", k, &(now + dt).to_string(), "FIELDS", "1", f]);
    }
    assert!(wait_until(Duration::from_secs(5), || common::server_ms(&mut c) > now + 335));
    let _: () = query(&mut c, &["DEBUG", "SET-ACTIVE-EXPIRE", "1"]);
    // DBSIZE counts a hash whose fields all passed until it is reclaimed.
    assert!(wait_until(Duration::from_secs(2), || query::<i64>(&mut c, &["DBSIZE"]) == 12_000));
    let order = [
        resp(&["HDEL", "z", "f1"]),
        resp(&["HDEL", "z", "f2"]),
        resp(&["HDEL", "a", "f1"]),
        resp(&["HDEL", "a", "f2"]),
    ];
    // appendfsync everysec: the AOF thread writes the expiry's HDELs after the fact.
    let mut aof = String::new();
    assert!(wait_until(common::BACKGROUND_WORK, || {
        aof = aof_text(&dir);
        order.iter().all(|w| aof.contains(w.as_str()))
    }));
    let at: Vec<usize> =
        order.iter().map(|w| aof.find(w.as_str()).unwrap_or_else(|| panic!("{w:?} in {aof}"))).collect();
    assert!(at.windows(2).all(|w| w[0] < w[1]), "{at:?}");
}
