//! Clients that leave while blocked (BLPOP, BZPOPMIN, BLMOVE, BLMPOP..., WAIT, held by CLIENT
//! PAUSE): they must be gone from CLIENT LIST and `blocked_clients` at once, and nothing pushed
//! afterwards may be handed to them. Also what CLIENT LIST shows for a blocked and for a fresh connection (Redis's
//! fields: `flags=b`, `cmd=blpop`, `multi=-1`).

mod common;

use common::{info_field, query, wait_until, Server};
use std::io::Write;
use std::net::Shutdown;
use std::time::{Duration, Instant};

/// How soon a disconnected blocked client must be gone.
const GONE_WITHIN: Duration = Duration::from_millis(100);

fn blocked_clients(con: &mut redis::Connection) -> usize {
    let info: String = query(con, &["INFO", "clients"]);
    info.lines()
        .find_map(|l| l.strip_prefix("blocked_clients:"))
        .and_then(|n| n.trim().parse().ok())
        .expect("blocked_clients in INFO")
}

fn client_count(con: &mut redis::Connection) -> usize {
    let list: String = query(con, &["CLIENT", "LIST"]);
    list.lines().count()
}

/// Block a raw client with `request` (raw bytes, possibly with more pipelined after it), wait
/// until the server counts it as blocked, then close it (and, with `reset`, make the close an
/// RST). Returns the moment of the close.
fn block_then_leave(server: &Server, con: &mut redis::Connection, request: &[u8], then: Option<&[u8]>) -> Instant {
    let mut raw = server.raw();
    raw.send(request);
    assert!(
        wait_until(Duration::from_secs(5), || blocked_clients(con) == 1),
        "the client never blocked on {:?}",
        String::from_utf8_lossy(request)
    );
    if let Some(more) = then {
        raw.stream.write_all(more).expect("send more while blocked");
    }
    raw.stream.shutdown(Shutdown::Both).expect("close");
    drop(raw);
    Instant::now()
}

/// Wait (at most [`GONE_WITHIN`] after the close, with slack for a loaded test machine) for
/// the blocked client to disappear; returns how long it took.
fn wait_gone(con: &mut redis::Connection, clients_before: usize, closed_at: Instant) -> Duration {
    let gone = wait_until(Duration::from_secs(5), || blocked_clients(con) == 0 && client_count(con) == clients_before);
    assert!(gone, "the disconnected client is still blocked / listed");
    closed_at.elapsed()
}

#[test]
fn a_client_that_disconnects_while_blocked_takes_nothing() {
    let server = Server::start(&[]);
    let mut con = server.conn();
    let before = client_count(&mut con);
    let cases: [(&str, &[u8], &[&str]); 6] = [
        ("l", b"BLPOP l 0\r\n", &["RPUSH", "l", "x"]),
        ("l", b"BRPOP l 0\r\n", &["RPUSH", "l", "x"]),
        ("l", b"BLMOVE l dst LEFT RIGHT 0\r\n", &["RPUSH", "l", "x"]),
        ("l", b"BLMPOP 0 1 l LEFT\r\n", &["RPUSH", "l", "x"]),
        ("z", b"BZPOPMIN z 0\r\n", &["ZADD", "z", "1", "x"]),
        ("z", b"BZMPOP 0 1 z MAX\r\n", &["ZADD", "z", "1", "x"]),
    ];
    let mut slowest = Duration::ZERO;
    for (key, request, push) in cases {
        // Alone, followed by a pipelined command in the same packet, and followed by a command
        // sent while blocked.
        let mut pipelined = request.to_vec();
        pipelined.extend_from_slice(b"PING\r\n");
        for (req, then) in [(request.to_vec(), None), (pipelined, None), (request.to_vec(), Some(&b"PING\r\n"[..]))] {
            let closed_at = block_then_leave(&server, &mut con, &req, then);
            slowest = slowest.max(wait_gone(&mut con, before, closed_at));
            let _: i64 = query(&mut con, push);
            let len: i64 = if key == "l" { query(&mut con, &["LLEN", "l"]) } else { query(&mut con, &["ZCARD", "z"]) };
            assert_eq!(len, 1, "{}: the element went to the departed client", String::from_utf8_lossy(request));
            let dst: i64 = query(&mut con, &["EXISTS", "dst"]);
            assert_eq!(dst, 0);
            let _: i64 = query(&mut con, &["DEL", key]);
        }
    }
    // Slack for a loaded machine; still under the 1 s of a cron-driven check.
    assert!(slowest <= GONE_WITHIN * 8, "a departed blocked client lingered {slowest:?}");
    eprintln!("slowest removal of a departed blocked client: {slowest:?}");
}

/// Clients waiting in WAIT (no replica will ever acknowledge) or held by CLIENT PAUSE are
/// blocked too (Redis's BLOCKED_WAIT, BLOCKED_POSTPONE): one that disconnects is gone at once,
/// not when the wait ends; input sent while waiting runs afterwards.
#[test]
fn a_client_that_disconnects_while_waiting_or_paused_is_gone() {
    let server = Server::start(&[]);
    let mut con = server.conn();
    let before = client_count(&mut con);
    for then in [None, Some(&b"PING\r\n"[..])] {
        let closed_at = block_then_leave(&server, &mut con, b"WAIT 1 0\r\n", then);
        wait_gone(&mut con, before, closed_at);
    }
    // A write pause holds SET, not this connection's INFO / CLIENT LIST.
    let _: String = query(&mut con, &["CLIENT", "PAUSE", "100000", "WRITE"]);
    for then in [None, Some(&b"PING\r\n"[..])] {
        let closed_at = block_then_leave(&server, &mut con, b"SET paused 1\r\n", then);
        wait_gone(&mut con, before, closed_at);
    }
    let mut raw = server.raw();
    raw.send(b"SET paused 1\r\n");
    assert!(wait_until(Duration::from_secs(5), || blocked_clients(&mut con) == 1));
    raw.send(b"ECHO after\r\n");
    let _: String = query(&mut con, &["CLIENT", "UNPAUSE"]);
    assert_eq!(String::from_utf8_lossy(&raw.read_reply()), "+OK\r\n");
    assert_eq!(String::from_utf8_lossy(&raw.read_reply()), "$5\r\nafter\r\n");
    let mut raw = server.raw();
    raw.send(b"WAIT 1 200\r\n");
    raw.send(b"ECHO after\r\n");
    assert_eq!(String::from_utf8_lossy(&raw.read_reply()), ":0\r\n");
    assert_eq!(String::from_utf8_lossy(&raw.read_reply()), "$5\r\nafter\r\n");
}

/// INFO's clients_in_timeout_table counts the blocked clients that wait with a timeout, as
/// Redis's timeout table holds them: not those that wait forever, nor paused ones.
#[test]
fn clients_in_timeout_table_counts_waits_with_a_timeout() {
    let server = Server::start(&[]);
    let mut con = server.conn();
    let in_table = |con: &mut redis::Connection| -> String { info_field(con, "clients", "clients_in_timeout_table") };
    let mut forever = Vec::new();
    for request in [&b"BLPOP l 0\r\n"[..], b"XREAD BLOCK 0 STREAMS s $\r\n", b"WAIT 1 0\r\n"] {
        let mut raw = server.raw();
        raw.send(request);
        forever.push(raw);
    }
    assert!(wait_until(Duration::from_secs(5), || blocked_clients(&mut con) == 3));
    assert_eq!(in_table(&mut con), "0");
    let mut timed = Vec::new();
    for request in [&b"BLPOP l 100\r\n"[..], b"WAIT 1 100000\r\n"] {
        let mut raw = server.raw();
        raw.send(request);
        timed.push(raw);
    }
    assert!(wait_until(Duration::from_secs(5), || blocked_clients(&mut con) == 5));
    assert_eq!(in_table(&mut con), "2");
    drop(timed);
    assert!(wait_until(Duration::from_secs(5), || blocked_clients(&mut con) == 3));
    assert_eq!(in_table(&mut con), "0");
}

/// Two clients blocked on one key; the first leaves: a push goes to the second.
#[test]
fn the_next_waiter_is_served_when_the_first_has_left() {
    let server = Server::start(&[]);
    let mut con = server.conn();
    let mut first = server.raw();
    first.send(b"BLPOP q 0\r\n");
    assert!(wait_until(Duration::from_secs(5), || blocked_clients(&mut con) == 1));
    let mut second = server.raw();
    second.send(b"BLPOP q 0\r\n");
    assert!(wait_until(Duration::from_secs(5), || blocked_clients(&mut con) == 2));
    first.stream.shutdown(Shutdown::Both).expect("close");
    drop(first);
    assert!(wait_until(Duration::from_secs(5), || blocked_clients(&mut con) == 1));
    let _: i64 = query(&mut con, &["RPUSH", "q", "v"]);
    assert_eq!(String::from_utf8_lossy(&second.read_reply()), "*2\r\n$1\r\nq\r\n$1\r\nv\r\n");
    let len: i64 = query(&mut con, &["LLEN", "q"]);
    assert_eq!(len, 0);
}

/// A command sent while blocked runs after the blocking command is served, in order.
#[test]
fn input_sent_while_blocked_runs_afterwards() {
    let server = Server::start(&[]);
    let mut con = server.conn();
    let mut raw = server.raw();
    raw.send(b"BLPOP w 0\r\n");
    assert!(wait_until(Duration::from_secs(5), || blocked_clients(&mut con) == 1));
    raw.send(b"ECHO after\r\n");
    let _: i64 = query(&mut con, &["RPUSH", "w", "v"]);
    assert_eq!(String::from_utf8_lossy(&raw.read_reply()), "*2\r\n$1\r\nw\r\n$1\r\nv\r\n");
    assert_eq!(String::from_utf8_lossy(&raw.read_reply()), "$5\r\nafter\r\n");
}

/// CLIENT LIST as Redis 7 shows a blocked client and one that has not finished a command.
#[test]
fn client_list_shows_blocked_and_fresh_clients_as_redis() {
    let server = Server::start(&[]);
    let mut con = server.conn();
    let mut blocked = server.raw();
    blocked.send(b"SET a b\r\nBLPOP nothing 0\r\n");
    assert!(wait_until(Duration::from_secs(5), || blocked_clients(&mut con) == 1));
    let mut fresh = server.raw();
    fresh.send(b"*3\r\n$3\r\nSET\r\n");
    let fresh_listed = wait_until(Duration::from_secs(5), || client_count(&mut con) == 3);
    assert!(fresh_listed);
    let list: String = query(&mut con, &["CLIENT", "LIST"]);
    let lines: Vec<&str> = list.lines().collect();
    let field = |line: &str, name: &str| -> String {
        let prefix = format!("{name}=");
        line.split(' ').find_map(|f| f.strip_prefix(&prefix)).unwrap_or_default().to_string()
    };
    let blocked_line =
        lines.iter().find(|l| l.contains("cmd=blpop")).unwrap_or_else(|| panic!("no blocked client in {list}"));
    assert_eq!(field(blocked_line, "flags"), "b");
    assert_eq!(field(blocked_line, "multi"), "-1");
    let fresh_line =
        lines.iter().find(|l| l.contains("cmd=NULL")).unwrap_or_else(|| panic!("no fresh client in {list}"));
    assert_eq!(field(fresh_line, "flags"), "N");
    assert_eq!(field(fresh_line, "multi"), "-1");
    drop(fresh);
    drop(blocked);
}

/// Redis serves the clients a write unblocked before it runs the next command: after RPUSH
/// returns, a chain of two BLMOVEs has already carried the element to the last list (Redis's
/// "Linked LMOVEs"), and the same within one pipeline.
#[test]
fn clients_a_write_unblocked_are_served_before_the_next_command() {
    let server = Server::start(&[]);
    let mut con = server.conn();
    for round in 0..20 {
        let mut first = server.raw();
        first.send(b"BLMOVE list1{t} list2{t} RIGHT LEFT 0\r\n");
        assert!(wait_until(Duration::from_secs(5), || blocked_clients(&mut con) == 1));
        let mut second = server.raw();
        second.send(b"BLMOVE list2{t} list3{t} LEFT RIGHT 0\r\n");
        assert!(wait_until(Duration::from_secs(5), || blocked_clients(&mut con) == 2));
        let lists: (i64, Vec<String>, Vec<String>, Vec<String>) = redis::pipe()
            .cmd("RPUSH")
            .arg("list1{t}")
            .arg("foo")
            .cmd("LRANGE")
            .arg("list1{t}")
            .arg(0)
            .arg(-1)
            .cmd("LRANGE")
            .arg("list2{t}")
            .arg(0)
            .arg(-1)
            .cmd("LRANGE")
            .arg("list3{t}")
            .arg(0)
            .arg(-1)
            .query(&mut con)
            .expect("pipeline");
        assert_eq!(lists, (1, vec![], vec![], vec!["foo".to_string()]), "round {round}");
        let _: i64 = query(&mut con, &["DEL", "list3{t}"]);
        drop((first, second));
        assert!(wait_until(Duration::from_secs(5), || blocked_clients(&mut con) == 0));
    }
}

/// Redis 7.2 looks a woken client's key up without side effects before serving it: when the
/// list a write created has already expired, the client stays blocked and the key is not
/// deleted by that look (the next command to touch it expires it). CLIENT UNBLOCK then answers
/// the client before the unblocker's next command, so its BLPOP is counted once, at once.
#[test]
fn a_client_woken_by_a_key_that_already_expired_stays_blocked() {
    let server = Server::start(&["--enable-debug-command", "yes"]);
    let mut con = server.conn();
    let _: String = query(&mut con, &["DEBUG", "SET-ACTIVE-EXPIRE", "0"]);
    let mut raw = server.raw();
    raw.send_cmd(&["CLIENT", "ID"]);
    let id = String::from_utf8(raw.read_reply()).unwrap();
    let id = id.trim_start_matches(':').trim().to_string();
    raw.send(b"BLPOP k 0\r\n");
    assert!(wait_until(Duration::from_secs(5), || blocked_clients(&mut con) == 1));
    let _: String = query(&mut con, &["CONFIG", "RESETSTAT"]);
    let _: () = redis::pipe()
        .atomic()
        .cmd("RPUSH")
        .arg("k")
        .arg("x")
        .ignore()
        .cmd("PEXPIRE")
        .arg("k")
        .arg(20)
        .ignore()
        .cmd("DEBUG")
        .arg("SLEEP")
        .arg("0.05")
        .ignore()
        .query(&mut con)
        .expect("MULTI/EXEC");
    assert_eq!(blocked_clients(&mut con), 1, "the client was served an expired key");
    assert_eq!(info_field(&mut con, "stats", "expired_keys"), "0", "the wake-up's look deleted the key");
    let unblocked: i64 = query(&mut con, &["CLIENT", "UNBLOCK", &id, "TIMEOUT"]);
    assert_eq!(unblocked, 1);
    let stats = info_field(&mut con, "commandstats", "cmdstat_blpop");
    assert!(stats.starts_with("calls=1,") && stats.ends_with("failed_calls=0"), "{stats}");
    assert_eq!(raw.read_reply(), b"*-1\r\n");
    let exists: i64 = query(&mut con, &["EXISTS", "k"]);
    assert_eq!(exists, 0);
    assert_eq!(info_field(&mut con, "stats", "expired_keys"), "1");
}

/// Redis 7.2 wakes a blocked client when its key is *added* (or by SWAPDB's scan), not when an
/// existing key is overwritten in place: a client blocked on a key that became a string, then
/// a list by SORT ... STORE (a sorted set by ZUNIONSTORE...), stays blocked, and pushes on that
/// existing list do not wake it either; a key deleted and added again, or SWAPDB, does.
#[test]
fn an_overwrite_in_place_wakes_nobody_as_redis() {
    let server = Server::start(&[]);
    let mut con = server.conn();
    let _: i64 = query(&mut con, &["RPUSH", "src", "1", "2"]);
    let _: i64 = query(&mut con, &["ZADD", "zsrc", "1", "a"]);
    let mut list = server.raw();
    list.send(b"BLMOVE k dst LEFT LEFT 0\r\n");
    let mut zset = server.raw();
    zset.send(b"BZPOPMIN z 0\r\n");
    assert!(wait_until(Duration::from_secs(5), || blocked_clients(&mut con) == 2));
    let stays = |con: &mut redis::Connection, raw: &mut common::Raw, what: &str| {
        // The writer's next command runs once the clients its write woke have re-run theirs.
        assert_eq!(blocked_clients(con), 2, "{what}");
        assert!(raw.try_read_reply(Duration::from_millis(20)).is_err(), "{what}: served");
    };
    let _: () = query(&mut con, &["MSET", "k", "s", "z", "s"]);
    let _: i64 = query(&mut con, &["SORT", "src", "STORE", "k"]);
    stays(&mut con, &mut list, "SORT ... STORE over a string");
    let _: i64 = query(&mut con, &["ZUNIONSTORE", "z", "1", "zsrc"]);
    stays(&mut con, &mut zset, "ZUNIONSTORE over a string");
    let _: i64 = query(&mut con, &["RPUSH", "k", "3"]);
    let _: i64 = query(&mut con, &["ZADD", "z", "2", "b"]);
    stays(&mut con, &mut list, "a push on the list it made");
    // In a transaction: a string added (nobody waits for strings), then overwritten; a sorted
    // set added while no client waits for one, then overwritten by a list.
    let _: () = redis::pipe()
        .atomic()
        .cmd("DEL")
        .arg("k")
        .ignore()
        .cmd("SET")
        .arg("k")
        .arg("s")
        .ignore()
        .cmd("SORT")
        .arg("src")
        .arg("STORE")
        .arg("k")
        .ignore()
        .query(&mut con)
        .expect("MULTI/EXEC");
    stays(&mut con, &mut list, "SET then SORT ... STORE in MULTI");
    // SWAPDB looks at every waited key: both are served there and back.
    let _: () = query(&mut con, &["SWAPDB", "0", "1"]);
    let _: () = query(&mut con, &["SWAPDB", "0", "1"]);
    assert_eq!(list.read_reply(), b"$1\r\n1\r\n");
    assert_eq!(zset.read_reply(), b"*3\r\n$1\r\nz\r\n$1\r\na\r\n$1\r\n1\r\n");
    // Deleted and added again: served.
    let _: i64 = query(&mut con, &["DEL", "k"]);
    list.send(b"BLPOP k 0\r\n");
    assert!(wait_until(Duration::from_secs(5), || blocked_clients(&mut con) == 1));
    let _: () = query(&mut con, &["SET", "k", "s"]);
    let _: () = query(&mut con, &["RENAME", "src", "k"]);
    assert_eq!(list.read_reply(), b"*2\r\n$1\r\nk\r\n$1\r\n1\r\n");
}

/// One signal goes through all the waiters of a key in the order they blocked, as Redis goes
/// through a ready key's clients: each takes what is left, whatever type the others wait for.
#[test]
fn a_push_serves_the_waiters_queued_in_order_while_data_remains() {
    let server = Server::start(&[]);
    let mut con = server.conn();
    let mut raws = Vec::new();
    for (i, req) in
        ["BLPOP k 0", "BZPOPMIN k 0", "BLMOVE k k LEFT RIGHT 0", "BLPOP k 0", "BLPOP k 0"].iter().enumerate()
    {
        let mut raw = server.raw();
        raw.send(format!("{req}\r\n").as_bytes());
        assert!(wait_until(Duration::from_secs(5), || blocked_clients(&mut con) == i + 1));
        raws.push(raw);
    }
    let _: i64 = query(&mut con, &["RPUSH", "k", "a", "b"]);
    assert_eq!(blocked_clients(&mut con), 2, "the sorted-set waiter and the last BLPOP still wait");
    assert_eq!(raws[0].read_reply(), b"*2\r\n$1\r\nk\r\n$1\r\na\r\n");
    assert_eq!(raws[2].read_reply(), b"$1\r\nb\r\n");
    assert_eq!(raws[3].read_reply(), b"*2\r\n$1\r\nk\r\n$1\r\nb\r\n");
    let len: i64 = query(&mut con, &["LLEN", "k"]);
    assert_eq!(len, 0);
}
