//! Blocking XREAD / XREADGROUP against the real binary: every reader a write can serve is
//! served (not only the first), in the order they blocked (per worker thread); consumers of
//! one group share the entries; `$` waits for entries after the ID it stood for when the client blocked; timeouts
//! in milliseconds; CLIENT UNBLOCK; a deleted stream or a destroyed group fails a blocked
//! XREADGROUP as Redis 7.0 does; and a client that disconnects while blocked gets nothing
//! (its group's pending entries stay empty).

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
    // A deleted stream and a destroyed group fail a blocked XREADGROUP (Redis 7.0's texts).
    let _: () = query(&mut con, &["XGROUP", "CREATE", "s", "g", "$", "MKSTREAM"]);
    let mut d = blocked(&server, &["XREADGROUP", "GROUP", "g", "c", "BLOCK", "0", "STREAMS", "s", ">"]);
    wait_blocked(&mut con, 1);
    let _: i64 = query(&mut con, &["DEL", "s"]);
    assert_eq!(text(d.read_reply()), "-UNBLOCKED the stream key no longer exists\r\n");
    let _: () = query(&mut con, &["XGROUP", "CREATE", "s", "g", "$", "MKSTREAM"]);
    d.send_cmd(&["XREADGROUP", "GROUP", "g", "c", "BLOCK", "0", "STREAMS", "s", ">"]);
    wait_blocked(&mut con, 1);
    let _: i64 = query(&mut con, &["XGROUP", "DESTROY", "s", "g"]);
    assert_eq!(text(d.read_reply()), "-NOGROUP the consumer group this client was blocked on no longer exists\r\n");
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
    let info: Vec<redis::Value> = query(&mut con, &["XINFO", "CONSUMERS", "s", "g"]);
    assert_eq!(info.len(), 1, "the consumer that left was never created");
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
        assert_eq!(text(d.read_reply()), "-UNBLOCKED the stream key no longer exists\r\n", "save {save:?}");
        if !save.is_empty() {
            // Saved at once, as Redis: nothing left unsaved.
            let info: String = query(&mut con, &["INFO", "persistence"]);
            assert!(info.contains("rdb_changes_since_last_save:0"), "{info}");
        }
        drop(server);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
