//! Blocking XREAD / XREADGROUP against the real binary: every reader a write can serve is
//! served (not only the first), in the order they blocked (per worker thread); consumers of
//! one group share the entries; `$` waits for entries after the ID it stood for when the client blocked; timeouts
//! in milliseconds; CLIENT UNBLOCK; a blocked XREADGROUP is run again when its key is deleted,
//! replaced or loses its group, and fails as a fresh call would (Redis 7.2); and a client that
//! disconnects while blocked gets nothing (its group's pending entries stay empty).

mod common;

use common::{query, wait_until, Raw, Server};
use std::net::Shutdown;
use std::time::{Duration, Instant};

fn blocked_clients(con: &mut redis::Connection) -> usize {
    let info: String = query(con, &["INFO", "clients"]);
    info.lines()
        .find_map(|l| l.strip_prefix("blocked_clients:"))
        .and_then(|n| n.trim().parse().ok())
        .expect("blocked_clients in INFO")
}

fn wait_blocked(con: &mut redis::Connection, n: usize) {
    assert!(wait_until(Duration::from_secs(5), || blocked_clients(con) == n), "expected {n} blocked clients");
}

/// A raw client sending `args` (which blocks).
fn blocked(server: &Server, args: &[&str]) -> Raw {
    let mut raw = server.raw();
    raw.send_cmd(args);
    raw
}

fn text(reply: Vec<u8>) -> String {
    String::from_utf8_lossy(&reply).into_owned()
}

/// What a blocked `XREADGROUP GROUP g c ... STREAMS s >` gets when `s` or `g` went away.
const NOGROUP: &str = "-NOGROUP No such key 's' or consumer group 'g' in XREADGROUP with GROUP option\r\n";

fn info_field(con: &mut redis::Connection, name: &str) -> String {
    let info: String = query(con, &["INFO", "clients"]);
    info.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix(':')))
        .unwrap_or_else(|| panic!("{name} in INFO"))
        .trim()
        .to_string()
}

#[test]
fn every_reader_a_write_can_serve_is_served() {
    let server = Server::start(&[]);
    let mut con = server.conn();
    let _: String = query(&mut con, &["XADD", "s", "1-0", "f", "v"]);
    // Two XREADs from the last ID, one waiting for a later ID, one on another key.
    let mut a = blocked(&server, &["XREAD", "BLOCK", "0", "STREAMS", "s", "$"]);
    let mut b = blocked(&server, &["XREAD", "BLOCK", "0", "STREAMS", "s", "1-0"]);
    let mut far = blocked(&server, &["XREAD", "BLOCK", "0", "STREAMS", "s", "9-0"]);
    let mut other = blocked(&server, &["XREAD", "BLOCK", "0", "STREAMS", "other", "$"]);
    wait_blocked(&mut con, 4);
    let _: String = query(&mut con, &["XADD", "s", "2-0", "f", "w"]);
    let want = "*1\r\n*2\r\n$1\r\ns\r\n*1\r\n*2\r\n$3\r\n2-0\r\n*2\r\n$1\r\nf\r\n$1\r\nw\r\n";
    assert_eq!(text(a.read_reply()), want);
    assert_eq!(text(b.read_reply()), want);
    wait_blocked(&mut con, 2);
    let _: String = query(&mut con, &["XADD", "s", "9-1", "f", "x"]);
    assert!(text(far.read_reply()).contains("9-1"));
    wait_blocked(&mut con, 1);
    let _: String = query(&mut con, &["XADD", "other", "1-0", "f", "y"]);
    assert!(text(other.read_reply()).contains("other"));
    wait_blocked(&mut con, 0);
}

#[test]
fn consumers_of_a_group_share_the_entries_in_blocking_order() {
    // Woken readers are re-run in the order they blocked on each worker thread; on several
    // workers, consumers woken together race for the entries (each is delivered once).
    let server = Server::start(&["--worker-threads", "1"]);
    let mut con = server.conn();
    let _: () = query(&mut con, &["XGROUP", "CREATE", "s", "g", "$", "MKSTREAM"]);
    let mut first =
        blocked(&server, &["XREADGROUP", "GROUP", "g", "c1", "COUNT", "1", "BLOCK", "0", "STREAMS", "s", ">"]);
    wait_blocked(&mut con, 1);
    let mut second =
        blocked(&server, &["XREADGROUP", "GROUP", "g", "c2", "COUNT", "1", "BLOCK", "0", "STREAMS", "s", ">"]);
    // Another group's reader is served by the same entry.
    let mut other = blocked(&server, &["XREADGROUP", "GROUP", "h", "c3", "BLOCK", "0", "STREAMS", "s", ">"]);
    // (h does not exist yet: that reader fails at once.)
    assert!(text(other.read_reply()).starts_with("-NOGROUP"));
    let _: () = query(&mut con, &["XGROUP", "CREATE", "s", "h", "$"]);
    other = blocked(&server, &["XREADGROUP", "GROUP", "h", "c3", "BLOCK", "0", "STREAMS", "s", ">"]);
    wait_blocked(&mut con, 3);
    let _: String = query(&mut con, &["XADD", "s", "1-0", "f", "v"]);
    assert!(text(first.read_reply()).contains("1-0"), "the first consumer to block gets the first entry");
    assert!(text(other.read_reply()).contains("1-0"), "another group's consumer gets it too");
    wait_blocked(&mut con, 1);
    let _: String = query(&mut con, &["XADD", "s", "2-0", "f", "v"]);
    assert!(text(second.read_reply()).contains("2-0"));
    let pending: Vec<redis::Value> = query(&mut con, &["XPENDING", "s", "g"]);
    assert_eq!(pending[0], redis::Value::Int(2));
}

#[test]
fn timeouts_unblock_and_errors() {
    let server = Server::start(&[]);
    let mut con = server.conn();
    // A timeout in milliseconds answers a null array.
    let started = Instant::now();
    let mut t = blocked(&server, &["XREAD", "BLOCK", "50", "STREAMS", "s", "$"]);
    assert_eq!(text(t.read_reply()), "*-1\r\n");
    assert!(started.elapsed() >= Duration::from_millis(50));
    // CLIENT UNBLOCK, as a timeout and as an error.
    let mut u = server.raw();
    let id = text(u.cmd(&["CLIENT", "ID"]));
    let id = id.trim_start_matches(':').trim();
    u.send_cmd(&["XREAD", "BLOCK", "0", "STREAMS", "s", "$"]);
    wait_blocked(&mut con, 1);
    let n: i64 = query(&mut con, &["CLIENT", "UNBLOCK", id, "TIMEOUT"]);
    assert_eq!(n, 1);
    assert_eq!(text(u.read_reply()), "*-1\r\n");
    u.send_cmd(&["XREAD", "BLOCK", "0", "STREAMS", "s", "$"]);
    wait_blocked(&mut con, 1);
    let _: i64 = query(&mut con, &["CLIENT", "UNBLOCK", id, "ERROR"]);
    assert_eq!(text(u.read_reply()), "-UNBLOCKED client unblocked via CLIENT UNBLOCK\r\n");
    // A deleted stream and a destroyed group fail a blocked XREADGROUP (Redis 7.2: the command
    // runs again and finds no group).
    let _: () = query(&mut con, &["XGROUP", "CREATE", "s", "g", "$", "MKSTREAM"]);
    let mut d = blocked(&server, &["XREADGROUP", "GROUP", "g", "c", "BLOCK", "0", "STREAMS", "s", ">"]);
    wait_blocked(&mut con, 1);
    let _: i64 = query(&mut con, &["DEL", "s"]);
    assert_eq!(text(d.read_reply()), NOGROUP);
    let _: () = query(&mut con, &["XGROUP", "CREATE", "s", "g", "$", "MKSTREAM"]);
    d.send_cmd(&["XREADGROUP", "GROUP", "g", "c", "BLOCK", "0", "STREAMS", "s", ">"]);
    wait_blocked(&mut con, 1);
    let _: i64 = query(&mut con, &["XGROUP", "DESTROY", "s", "g"]);
    assert_eq!(text(d.read_reply()), NOGROUP);
    // An XREAD keeps waiting when its stream is deleted or replaced, then reads the new one.
    let mut r = blocked(&server, &["XREAD", "BLOCK", "0", "STREAMS", "s", "$"]);
    wait_blocked(&mut con, 1);
    let _: i64 = query(&mut con, &["DEL", "s"]);
    let _: () = query(&mut con, &["SET", "s", "x"]);
    let _: i64 = query(&mut con, &["DEL", "s"]);
    let _: String = query(&mut con, &["XADD", "s", "5-0", "f", "v"]);
    assert!(text(r.read_reply()).contains("5-0"));
}

#[test]
fn a_reader_blocked_again_after_a_wake_up_keeps_its_deadline() {
    // Redis 7.2.5 (#13004): a reader woken by an entry another consumer takes first blocks
    // again until its first deadline, not for a whole new timeout (7.2.4 timed out at 1.5 s here).
    let server = Server::start(&["--worker-threads", "1"]);
    let mut con = server.conn();
    let _: () = query(&mut con, &["XGROUP", "CREATE", "s", "g", "$", "MKSTREAM"]);
    let mut first = blocked(&server, &["XREADGROUP", "GROUP", "g", "c", "BLOCK", "0", "STREAMS", "s", ">"]);
    wait_blocked(&mut con, 1);
    let started = Instant::now();
    let mut second = blocked(&server, &["XREADGROUP", "GROUP", "g", "c", "BLOCK", "1000", "STREAMS", "s", ">"]);
    wait_blocked(&mut con, 2);
    std::thread::sleep(Duration::from_millis(900));
    let _: String = query(&mut con, &["XADD", "s", "1-0", "f", "v"]);
    assert!(text(first.read_reply()).contains("1-0"));
    assert_eq!(text(second.read_reply()), "*-1\r\n");
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(1000), "timed out after {waited:?}");
    // A deadline counted again from the XADD would end at 1.9 s.
    assert!(waited < Duration::from_millis(1800), "timed out after {waited:?}, not at its first deadline");
}

#[test]
fn a_reader_that_disconnects_while_blocked_gets_nothing() {
    let server = Server::start(&[]);
    let mut con = server.conn();
    let _: () = query(&mut con, &["XGROUP", "CREATE", "s", "g", "$", "MKSTREAM"]);
    let leaving = blocked(&server, &["XREADGROUP", "GROUP", "g", "gone", "BLOCK", "0", "STREAMS", "s", ">"]);
    wait_blocked(&mut con, 1);
    let mut staying = blocked(&server, &["XREADGROUP", "GROUP", "g", "here", "BLOCK", "0", "STREAMS", "s", ">"]);
    wait_blocked(&mut con, 2);
    leaving.stream.shutdown(Shutdown::Both).expect("close");
    drop(leaving);
    wait_blocked(&mut con, 1);
    let _: String = query(&mut con, &["XADD", "s", "1-0", "f", "v"]);
    assert!(text(staying.read_reply()).contains("1-0"));
    // The entry is pending for the consumer that is still there, and only for it.
    let consumers: Vec<Vec<redis::Value>> = query(&mut con, &["XPENDING", "s", "g", "-", "+", "10"]);
    assert_eq!(consumers.len(), 1);
    assert_eq!(consumers[0][1], redis::Value::BulkString(b"here".to_vec()));
    // Both consumers exist (Redis 7.2 creates a consumer when it blocks); the one that left
    // has nothing pending.
    let info: Vec<Vec<redis::Value>> = query(&mut con, &["XINFO", "CONSUMERS", "s", "g"]);
    assert_eq!(info.len(), 2);
    assert_eq!(info[0][1], redis::Value::BulkString(b"gone".to_vec()));
    assert_eq!(info[0][3], redis::Value::Int(0));
}

#[test]
fn blocking_is_refused_in_scripts_and_ignored_in_transactions() {
    let server = Server::start(&[]);
    let mut con = server.conn();
    let err = redis::cmd("EVAL")
        .arg("return redis.call('xread','BLOCK',0,'STREAMS',KEYS[1],'$')")
        .arg(1)
        .arg("s")
        .query::<redis::Value>(&mut con)
        .unwrap_err();
    assert!(err.to_string().contains("xread command is not allowed with BLOCK option from scripts"), "{err}");
    let mut raw = server.raw();
    raw.send(b"MULTI\r\nXREAD BLOCK 0 STREAMS s $\r\nEXEC\r\n");
    assert_eq!(text(raw.read_reply()), "+OK\r\n");
    assert_eq!(text(raw.read_reply()), "+QUEUED\r\n");
    assert_eq!(text(raw.read_reply()), "*1\r\n*-1\r\n");
}

/// FLUSHALL fails a blocked XREADGROUP, also when save points make it save the empty dataset
/// at once (the save must not hide that the command wrote).
#[test]
fn flushall_fails_a_blocked_group_reader_with_and_without_save_points() {
    for save in ["", "3600 1"] {
        let dir = std::env::temp_dir().join(format!("ferrous-flushall-wake-{}-{}", std::process::id(), save.len()));
        std::fs::create_dir_all(&dir).unwrap();
        let server = Server::start(&["--save", save, "--dir", dir.to_str().unwrap()]);
        let mut con = server.conn();
        let _: () = query(&mut con, &["XGROUP", "CREATE", "s", "g", "$", "MKSTREAM"]);
        let mut d = blocked(&server, &["XREADGROUP", "GROUP", "g", "c", "BLOCK", "0", "STREAMS", "s", ">"]);
        wait_blocked(&mut con, 1);
        let _: () = query(&mut con, &["FLUSHALL"]);
        assert_eq!(text(d.read_reply()), NOGROUP, "save {save:?}");
        if !save.is_empty() {
            // Saved at once, as Redis: nothing left unsaved.
            let info: String = query(&mut con, &["INFO", "persistence"]);
            assert!(info.contains("rdb_changes_since_last_save:0"), "{info}");
        }
        drop(server);
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// Redis 7.2 re-runs a blocked XREADGROUP when its key is replaced: the type changed (SET, a
/// transaction, SWAPDB) fails it with WRONGTYPE; keys with such readers are counted in
/// total_blocking_keys_on_nokey; the failure counts once in the command's statistics.
#[test]
fn a_replaced_key_fails_a_blocked_group_reader_with_wrongtype() {
    let server = Server::start(&[]);
    let mut con = server.conn();
    let _: () = query(&mut con, &["XGROUP", "CREATE", "s", "g", "$", "MKSTREAM"]);
    let mut list = blocked(&server, &["BLPOP", "s2", "0"]);
    let mut d = blocked(&server, &["XREADGROUP", "GROUP", "g", "c", "BLOCK", "0", "STREAMS", "s", ">"]);
    wait_blocked(&mut con, 2);
    assert_eq!(info_field(&mut con, "total_blocking_keys"), "2");
    assert_eq!(info_field(&mut con, "total_blocking_keys_on_nokey"), "1");
    let _: () = query(&mut con, &["CONFIG", "RESETSTAT"]);
    let _: () = query(&mut con, &["SET", "s", "x"]);
    assert!(text(d.read_reply()).starts_with("-WRONGTYPE"));
    assert_eq!(info_field(&mut con, "total_blocking_keys_on_nokey"), "0");
    let stats: String = query(&mut con, &["INFO", "commandstats"]);
    assert!(stats.contains("cmdstat_xreadgroup:calls=1,"), "{stats}");
    assert!(stats.contains("failed_calls=1"), "{stats}");
    // In a transaction, and with SWAPDB bringing a list in.
    for replace in [&["MULTI"][..], &["SWAPDB"]] {
        let _: i64 = query(&mut con, &["DEL", "s"]);
        let _: () = query(&mut con, &["XGROUP", "CREATE", "s", "g", "$", "MKSTREAM"]);
        d.send_cmd(&["XREADGROUP", "GROUP", "g", "c", "BLOCK", "0", "STREAMS", "s", ">"]);
        wait_blocked(&mut con, 2);
        if replace[0] == "MULTI" {
            let mut raw = server.raw();
            raw.send(b"MULTI\r\nDEL s\r\nSADD s e\r\nEXEC\r\n");
            for _ in 0..4 {
                raw.read_reply();
            }
        } else {
            let mut other = server.raw();
            other.cmd(&["SELECT", "1"]);
            other.cmd(&["LPUSH", "s", "e"]);
            let _: () = query(&mut con, &["SWAPDB", "0", "1"]);
        }
        assert!(text(d.read_reply()).starts_with("-WRONGTYPE"), "{replace:?}");
        if replace[0] == "SWAPDB" {
            let _: () = query(&mut con, &["SWAPDB", "0", "1"]);
        }
    }
    // The list reader still waits.
    assert_eq!(blocked_clients(&mut con), 1);
    let _: i64 = query(&mut con, &["RPUSH", "s2", "v"]);
    assert!(text(list.read_reply()).contains("s2"));
}

/// A blocked XREADGROUP is a consumer of its group from the moment it blocks (Redis 7.2).
#[test]
fn a_blocked_group_reader_is_a_consumer() {
    let server = Server::start(&[]);
    let mut con = server.conn();
    let _: () = query(&mut con, &["XGROUP", "CREATE", "s", "g", "$", "MKSTREAM"]);
    let mut d = blocked(&server, &["XREADGROUP", "GROUP", "g", "bob", "BLOCK", "0", "STREAMS", "s", ">"]);
    wait_blocked(&mut con, 1);
    let info: Vec<Vec<redis::Value>> = query(&mut con, &["XINFO", "CONSUMERS", "s", "g"]);
    assert_eq!(info.len(), 1);
    assert_eq!(info[0][1], redis::Value::BulkString(b"bob".to_vec()));
    assert_eq!(info[0][7], redis::Value::Int(-1), "never active");
    let _: String = query(&mut con, &["XADD", "s", "1-0", "f", "v"]);
    assert!(text(d.read_reply()).contains("1-0"));
}

/// Only XADD, XGROUP DESTROY and the key's going away wake a blocked XREADGROUP (Redis 7.2):
/// moving the group's last ID back, creating or deleting consumers, trimming or setting the
/// stream's ID leave it blocked, with entries it could read; the next XADD serves them all.
/// A key that expires (looked up by another client, or by active expiry) fails it.
#[test]
fn group_bookkeeping_wakes_no_blocked_group_reader() {
    let server = Server::start(&["--enable-debug-command", "yes"]);
    let mut con = server.conn();
    let _: String = query(&mut con, &["XADD", "s", "1-1", "f", "v"]);
    let _: () = query(&mut con, &["XGROUP", "CREATE", "s", "g", "$"]);
    let mut d = blocked(&server, &["XREADGROUP", "GROUP", "g", "c", "BLOCK", "0", "STREAMS", "s", ">"]);
    wait_blocked(&mut con, 1);
    let _: () = query(&mut con, &["XGROUP", "SETID", "s", "g", "0"]);
    let _: i64 = query(&mut con, &["XGROUP", "CREATECONSUMER", "s", "g", "other"]);
    let _: i64 = query(&mut con, &["XGROUP", "DELCONSUMER", "s", "g", "other"]);
    let _: () = query(&mut con, &["XGROUP", "CREATE", "s", "g2", "0"]);
    let _: i64 = query(&mut con, &["XTRIM", "s", "MAXLEN", "5"]);
    let _: () = query(&mut con, &["XSETID", "s", "1-1"]);
    let _: () = query(&mut con, &["EVAL", "return redis.call('xgroup','setid',KEYS[1],'g','0')", "1", "s"]);
    assert_eq!(blocked_clients(&mut con), 1);
    assert!(d.try_read_reply(Duration::from_millis(20)).is_err(), "woken by group bookkeeping");
    let _: String = query(&mut con, &["XADD", "s", "2-2", "a", "b"]);
    let got = text(d.read_reply());
    assert!(got.contains("1-1") && got.contains("2-2"), "{got}");
    // Expired, then looked up by another client's read: the reader fails.
    d.send_cmd(&["XREADGROUP", "GROUP", "g", "c", "BLOCK", "0", "STREAMS", "s", ">"]);
    wait_blocked(&mut con, 1);
    let _: String = query(&mut con, &["DEBUG", "SET-ACTIVE-EXPIRE", "0"]);
    let _: i64 = query(&mut con, &["PEXPIRE", "s", "1"]);
    std::thread::sleep(Duration::from_millis(5));
    let _: i64 = query(&mut con, &["EXISTS", "s"]);
    assert_eq!(text(d.read_reply()), NOGROUP);
    // Expired by active expiry.
    let _: () = query(&mut con, &["XGROUP", "CREATE", "s", "g", "$", "MKSTREAM"]);
    d.send_cmd(&["XREADGROUP", "GROUP", "g", "c", "BLOCK", "0", "STREAMS", "s", ">"]);
    wait_blocked(&mut con, 1);
    let _: String = query(&mut con, &["DEBUG", "SET-ACTIVE-EXPIRE", "1"]);
    let _: i64 = query(&mut con, &["PEXPIRE", "s", "1"]);
    assert_eq!(text(d.read_reply()), NOGROUP);
}
