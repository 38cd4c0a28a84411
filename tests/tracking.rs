//! Client-side caching against the real binary: RESP3 invalidation pushes, and no lost
//! invalidation when reads and writes of the same keys race on several worker threads.

mod common;

use common::Server;
use std::time::Duration;

fn push_for(key: &str) -> Vec<u8> {
    format!(">2\r\n$10\r\ninvalidate\r\n*1\r\n${}\r\n{key}\r\n", key.len()).into_bytes()
}

/// A RESP3 client is sent an invalidation push after another client modifies a key it read,
/// once; its own write is invalidated after the reply of that write.
#[test]
fn resp3_invalidation_pushes() {
    let server = Server::start(&[]);
    let mut tracker = server.raw();
    let hello = tracker.cmd(&["HELLO", "3"]);
    assert!(hello.starts_with(b"%"), "HELLO 3: {}", String::from_utf8_lossy(&hello));
    assert_eq!(tracker.cmd(&["CLIENT", "TRACKING", "ON"]), b"+OK\r\n");
    let mut writer = server.raw();
    assert_eq!(writer.cmd(&["SET", "k", "1"]), b"+OK\r\n");
    assert_eq!(tracker.cmd(&["GET", "k"]), b"$1\r\n1\r\n");
    assert_eq!(writer.cmd(&["SET", "k", "2"]), b"+OK\r\n");
    assert_eq!(tracker.read_reply(), push_for("k"));
    // Not tracked any more until read again.
    assert_eq!(writer.cmd(&["SET", "k", "3"]), b"+OK\r\n");
    assert_eq!(tracker.cmd(&["PING"]), b"+PONG\r\n");
    // Its own write: the reply first, then the push.
    assert_eq!(tracker.cmd(&["GET", "k"]), b"$1\r\n3\r\n");
    assert_eq!(tracker.cmd(&["DEL", "k"]), b":1\r\n");
    assert_eq!(tracker.read_reply(), push_for("k"));
    assert_eq!(tracker.cmd(&["CLIENT", "TRACKING", "OFF"]), b"+OK\r\n");
}

/// RENAME and RENAMENX invalidate the source, then the destination, as Redis's
/// renameGenericCommand signals them (creating the destination signals nothing by itself).
#[test]
fn rename_invalidates_the_source_then_the_destination() {
    let server = Server::start(&[]);
    let mut tracker = server.raw();
    tracker.cmd(&["HELLO", "3"]);
    assert_eq!(tracker.cmd(&["CLIENT", "TRACKING", "ON"]), b"+OK\r\n");
    let mut writer = server.raw();
    for (cmd, reply) in [("RENAME", &b"+OK\r\n"[..]), ("RENAMENX", &b":1\r\n"[..])] {
        assert_eq!(writer.cmd(&["SET", "src", "1"]), b"+OK\r\n");
        assert_eq!(writer.cmd(&["DEL", "dst"]).len(), 4);
        assert_eq!(tracker.cmd(&["GET", "src"]), b"$1\r\n1\r\n");
        assert_eq!(tracker.cmd(&["GET", "dst"]), b"_\r\n");
        assert_eq!(writer.cmd(&[cmd, "src", "dst"]), reply);
        assert_eq!(tracker.read_reply(), push_for("src"), "{cmd}");
        assert_eq!(tracker.read_reply(), push_for("dst"), "{cmd}");
        // WATCH still sees the destination created.
        let mut watcher = server.raw();
        watcher.cmd(&["DEL", "dst2"]);
        assert_eq!(watcher.cmd(&["WATCH", "dst2"]), b"+OK\r\n");
        assert_eq!(writer.cmd(&[cmd, "dst", "dst2"]), reply);
        watcher.cmd(&["MULTI"]);
        watcher.cmd(&["PING"]);
        assert_eq!(watcher.cmd(&["EXEC"]), b"*-1\r\n", "{cmd}");
        writer.cmd(&["DEL", "dst2"]);
    }
}

/// What a client's own command queues for it follows the reply in the same write, as Redis
/// appends it to the reply buffer after the command: a client that looks for pushes without
/// waiting before its next command (redis-py's client-side cache) finds it already there.
#[test]
fn own_pushes_arrive_with_the_reply() {
    let server = Server::start(&[]);
    let mut tracker = server.raw();
    tracker.cmd(&["HELLO", "3"]);
    assert_eq!(tracker.cmd(&["CLIENT", "TRACKING", "ON"]), b"+OK\r\n");
    let already_there = |raw: &mut common::Raw| raw.try_read_reply(Duration::ZERO).expect("the push with the reply");
    for round in 0..30 {
        let value = round.to_string();
        tracker.cmd(&["GET", "k"]);
        assert_eq!(tracker.cmd(&["SET", "k", &value]), b"+OK\r\n");
        assert_eq!(already_there(&mut tracker), push_for("k"));
    }
    // After EXEC's reply, not inside it.
    tracker.cmd(&["GET", "k"]);
    assert_eq!(tracker.cmd(&["MULTI"]), b"+OK\r\n");
    assert_eq!(tracker.cmd(&["DEL", "k"]), b"+QUEUED\r\n");
    assert_eq!(tracker.cmd(&["EXEC"]), b"*1\r\n:1\r\n");
    assert_eq!(already_there(&mut tracker), push_for("k"));
    // A message published to its own channel.
    let subscribed = tracker.cmd(&["SUBSCRIBE", "ch"]);
    assert!(subscribed.starts_with(b">3\r\n$9\r\nsubscribe\r\n"), "{}", String::from_utf8_lossy(&subscribed));
    for _ in 0..10 {
        assert_eq!(tracker.cmd(&["PUBLISH", "ch", "hi"]), b":1\r\n");
        assert_eq!(already_there(&mut tracker), b">3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$2\r\nhi\r\n");
    }
}

/// NOLOOP leaves out the keys the client's own command modified in the sense of Redis's running
/// client (`server.current_client` in 7.2.4's trackingInvalidateKey): a key its own read found
/// expired is not sent back to it either. Another client's write to the key is.
#[test]
fn noloop_skips_a_key_its_own_read_expired() {
    let server = Server::start(&["--enable-debug-command", "yes"]);
    let mut admin = server.raw();
    assert_eq!(admin.cmd(&["DEBUG", "SET-ACTIVE-EXPIRE", "0"]), b"+OK\r\n");
    let now_ms = |admin: &mut common::Raw| {
        let time = String::from_utf8(admin.cmd(&["TIME"])).unwrap();
        let parts: Vec<u64> = time.split("\r\n").filter_map(|l| l.parse().ok()).collect();
        parts[0] * 1000 + parts[1] / 1000
    };
    let mut tracker = server.raw();
    tracker.cmd(&["HELLO", "3"]);
    assert_eq!(tracker.cmd(&["CLIENT", "TRACKING", "ON", "NOLOOP"]), b"+OK\r\n");
    // Written and read in one transaction: the key is tracked with its expiry set.
    // Far enough ahead for the transaction's four round trips on a loaded machine.
    let deadline = now_ms(&mut admin) + 500;
    tracker.cmd(&["MULTI"]);
    tracker.cmd(&["SET", "k", "v", "PXAT", &deadline.to_string()]);
    tracker.cmd(&["GET", "k"]);
    assert_eq!(tracker.cmd(&["EXEC"]), b"*2\r\n+OK\r\n$1\r\nv\r\n");
    // Wait on the server's clock, touching nothing.
    while now_ms(&mut admin) <= deadline {
        std::thread::yield_now();
    }
    assert_eq!(tracker.cmd(&["GET", "k"]), b"_\r\n");
    assert_eq!(tracker.cmd(&["PING"]), b"+PONG\r\n", "no invalidation of the key it expired");
    assert_eq!(admin.cmd(&["SET", "k", "again"]), b"+OK\r\n");
    assert_eq!(tracker.read_reply(), push_for("k"));
}

/// Reads and writes of the same keys run on different workers at once: every read that saw
/// an old value is followed by an invalidation (keys are remembered while the read holds its
/// shard lock).
#[test]
fn no_invalidation_is_lost_across_workers() {
    let server = Server::start(&["--worker-threads", "2"]);
    let mut tracker = server.raw();
    tracker.cmd(&["HELLO", "3"]);
    assert_eq!(tracker.cmd(&["CLIENT", "TRACKING", "ON"]), b"+OK\r\n");
    let port = server.port;
    let writer = std::thread::spawn(move || {
        let mut con = redis::Client::open(format!("redis://127.0.0.1:{port}/")).unwrap().get_connection().unwrap();
        for round in 0..300 {
            let _: () = redis::cmd("SET").arg(format!("key{}", round % 10)).arg(round).query(&mut con).unwrap();
        }
    });
    let mut pending = std::collections::HashSet::new();
    for round in 0..300 {
        let key = format!("key{}", round % 10);
        tracker.send_cmd(&["GET", &key]);
        // Replies and pushes may interleave: collect pushes until the GET's reply arrives.
        loop {
            let r = tracker.read_reply();
            if r.starts_with(b">") {
                let text = String::from_utf8_lossy(&r).to_string();
                pending.retain(|k: &String| !text.contains(&format!("\r\n{k}\r\n")));
            } else {
                break;
            }
        }
        pending.insert(key);
    }
    writer.join().unwrap();
    // The writer is done: one last write to every key must invalidate every key still tracked.
    let mut con = server.conn();
    for i in 0..10 {
        let _: () = redis::cmd("SET").arg(format!("key{i}")).arg("final").query(&mut con).unwrap();
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while !pending.is_empty() && std::time::Instant::now() < deadline {
        let r = tracker.try_read_reply(Duration::from_millis(500)).unwrap_or_default();
        let text = String::from_utf8_lossy(&r).to_string();
        pending.retain(|k| !text.contains(&format!("\r\n{k}\r\n")));
    }
    assert!(pending.is_empty(), "never invalidated: {pending:?}");
}

/// An invalidation push of `keys` (RESP3) or the Pub/Sub message it is redirected as (RESP2).
fn bcast_push(keys: &[&str], resp3: bool) -> Vec<u8> {
    let head: &[u8] =
        if resp3 { b">2\r\n$10\r\ninvalidate\r\n" } else { b"*3\r\n$7\r\nmessage\r\n$20\r\n__redis__:invalidate\r\n" };
    let mut v = head.to_vec();
    v.extend(format!("*{}\r\n", keys.len()).bytes());
    for k in keys {
        v.extend(format!("${}\r\n{k}\r\n", k.len()).bytes());
    }
    v
}

/// Sends `cmds` in one write and reads `n` replies, concatenated.
fn pipeline(raw: &mut common::Raw, cmds: &[&[&str]], n: usize) -> Vec<u8> {
    raw.send(&cmds.iter().flat_map(|c| common::encode(c)).collect::<Vec<u8>>());
    (0..n).flat_map(|_| raw.read_reply()).collect()
}

fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

/// BCAST invalidations are collected while a batch of pipelined requests runs and sent once it
/// is done, one message per prefix and client with the batch's keys (Redis 7.2.4 sends them
/// in beforeSleep, once per event-loop cycle): after the whole batch's replies for the writer
/// itself, and before the client waits on a blocking command. Byte streams as 7.2.4's.
#[test]
fn bcast_invalidations_follow_the_pipelined_batch() {
    let server = Server::start(&[]);
    let mut own = server.raw();
    own.cmd(&["HELLO", "3"]);
    assert_eq!(own.cmd(&["CLIENT", "TRACKING", "ON", "BCAST"]), b"+OK\r\n");
    let batch: &[&[&str]] = &[&["SET", "ab", "1"], &["SET", "cd", "2"], &["MSET", "x", "1", "ab", "3"], &["PING"]];
    let expected = cat(&[b"+OK\r\n+OK\r\n+OK\r\n+PONG\r\n", &bcast_push(&["ab", "cd", "x"], true)]);
    assert_eq!(String::from_utf8_lossy(&pipeline(&mut own, batch, 5)), String::from_utf8_lossy(&expected));

    // Another client: one message per prefix, each key once.
    let mut prefixed = server.raw();
    prefixed.cmd(&["HELLO", "3"]);
    prefixed.cmd(&["CLIENT", "TRACKING", "ON", "BCAST", "PREFIX", "a", "PREFIX", "b"]);
    let mut sub = server.raw();
    let id = String::from_utf8(sub.cmd(&["CLIENT", "ID"])).unwrap();
    sub.cmd(&["SUBSCRIBE", "__redis__:invalidate"]);
    let mut redirecting = server.raw();
    let id = id.trim_start_matches(':').trim_end();
    redirecting.cmd(&["CLIENT", "TRACKING", "ON", "BCAST", "PREFIX", "a", "REDIRECT", id]);
    let mut writer = server.raw();
    let batch: &[&[&str]] =
        &[&["SET", "a1", "1"], &["SET", "b1", "1"], &["SET", "a2", "1"], &["SET", "c", "1"], &["DEL", "a1"]];
    assert_eq!(pipeline(&mut writer, batch, 5), b"+OK\r\n+OK\r\n+OK\r\n+OK\r\n:1\r\n");
    let got: Vec<u8> = (0..2).flat_map(|_| prefixed.read_reply()).collect();
    assert_eq!(got, cat(&[&bcast_push(&["a1", "a2"], true), &bcast_push(&["b1"], true)]));
    assert_eq!(sub.read_reply(), bcast_push(&["a1", "a2"], false));
    assert_eq!(own.read_reply(), bcast_push(&["a1", "a2", "b1", "c"], true));

    // Before a blocking command waits; and the keys of a client it wakes join the batch's.
    let mut own = server.raw();
    own.cmd(&["HELLO", "3"]);
    assert_eq!(own.cmd(&["CLIENT", "TRACKING", "ON", "BCAST", "PREFIX", "p"]), b"+OK\r\n");
    let batch: &[&[&str]] = &[&["SET", "p1", "1"], &["BLPOP", "pnone", "0.05"], &["SET", "p2", "1"]];
    let expected = cat(&[b"+OK\r\n", &bcast_push(&["p1"], true), b"_\r\n+OK\r\n", &bcast_push(&["p2"], true)]);
    assert_eq!(String::from_utf8_lossy(&pipeline(&mut own, batch, 5)), String::from_utf8_lossy(&expected));
    let mut blocked = server.raw();
    blocked.send_cmd(&["BLPOP", "pl", "0"]);
    while !String::from_utf8_lossy(&writer.cmd(&["INFO", "clients"])).contains("blocked_clients:1\r\n") {
        std::thread::yield_now();
    }
    let batch: &[&[&str]] = &[&["SET", "pa", "1"], &["LPUSH", "pl", "x"], &["SET", "pb", "1"], &["PING"]];
    assert_eq!(pipeline(&mut writer, batch, 4), b"+OK\r\n:1\r\n+OK\r\n+PONG\r\n");
    assert_eq!(blocked.read_reply(), b"*2\r\n$2\r\npl\r\n$1\r\nx\r\n");
    assert_eq!(own.read_reply(), bcast_push(&["pa", "pb", "pl"], true));
}
