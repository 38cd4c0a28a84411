//! Fuzz target: random command sequences run in-process through the one command pipeline
//! (resolve, admission, locking, handlers) by two clients, one speaking RESP2 and one RESP3.
//! Invariants: nothing panics; every reply is a sequence of complete, well-formed RESP frames
//! of the client's protocol (no RESP3 type on the RESP2 connection); the dataset stays
//! consistent (DBSIZE equals what a full SCAN returns). The input is a small program: a byte
//! picks the command among every command of the table (server administration excluded: no
//! SHUTDOWN, SAVE, CONFIG, DEBUG...), the next its arity, then each argument from a pool of
//! keys, members, numbers, keywords and raw bytes.
#![no_main]

use bytes::Bytes;
use ferrous::commands::pipeline::{self, Action};
use ferrous::commands::{flags, table::table};
use ferrous::protocol::{Proto, ReplySink};
use ferrous::server::Server;
use ferrous::session::{Client, ClientHandle};
use libfuzzer_sys::fuzz_target;
use std::sync::{Arc, OnceLock};

struct World {
    server: Arc<Server>,
    names: Vec<String>,
    _rt: tokio::runtime::Runtime,
}

fn world() -> &'static World {
    static W: OnceLock<World> = OnceLock::new();
    W.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("ferrous-fuzz-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let _ = std::env::set_current_dir(&dir);
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let server = Server::new(ferrous::config::Config::defaults(), None);
        server.apply_config();
        let deny = [
            "shutdown",
            "debug",
            "monitor",
            "sync",
            "psync",
            "replicaof",
            "slaveof",
            "save",
            "bgsave",
            "bgrewriteaof",
            "config",
            "failover",
            "eval",
            "evalsha",
            "eval_ro",
            "evalsha_ro",
            "fcall",
            "fcall_ro",
            "function",
            "script",
            "client",
            "wait",
            "waitaof",
            "migrate",
            "acl",
        ];
        let mut names: Vec<String> = table()
            .iter()
            .filter(|c| !c.has_flag(flags::ADMIN) && !deny.contains(&c.spec.name))
            .map(|c| c.spec.name.to_string())
            .collect();
        names.sort();
        names.dedup();
        World { server, names, _rt: rt }
    })
}

const WORDS: &[&str] = &[
    "0",
    "1",
    "-1",
    "2",
    "10",
    "100",
    "-100",
    "1.5",
    "-inf",
    "+inf",
    "(1",
    "[a",
    "(b",
    "-",
    "+",
    "nan",
    "inf",
    "NX",
    "XX",
    "GT",
    "LT",
    "CH",
    "INCR",
    "EX",
    "PX",
    "EXAT",
    "KEEPTTL",
    "GET",
    "WITHSCORES",
    "LIMIT",
    "COUNT",
    "MATCH",
    "TYPE",
    "BYSCORE",
    "BYLEX",
    "REV",
    "LEFT",
    "RIGHT",
    "BEFORE",
    "AFTER",
    "RANK",
    "MAXLEN",
    "IDLE",
    "WITHVALUES",
    "AGGREGATE",
    "SUM",
    "MIN",
    "MAX",
    "WEIGHTS",
    "STORE",
    "ALPHA",
    "DESC",
    "BY",
    "FIELDS",
    "FNX",
    "REPLACE",
    "DB",
    "ABSTTL",
    "FREQ",
    "IDLETIME",
    "ENCODING",
    "OVERFLOW",
    "WRAP",
    "SAT",
    "FAIL",
    "u8",
    "i16",
    "#1",
    "BIT",
    "BYTE",
    "AND",
    "OR",
    "XOR",
    "NOT",
    "m",
    "km",
    "FROMLONLAT",
    "BYRADIUS",
    "BYBOX",
    "ASC",
    "WITHCOORD",
    "WITHDIST",
    "WITHHASH",
    "ANY",
    "*",
    "a*",
    "?",
    "\x00",
    "\u{ff}",
];

/// Read the next byte of the program (0 past its end).
fn next(data: &[u8], pos: &mut usize) -> u8 {
    let b = data.get(*pos).copied().unwrap_or(0);
    *pos += 1;
    b
}

fn arg(data: &[u8], pos: &mut usize) -> Bytes {
    let b = next(data, pos);
    match b % 8 {
        0..=2 => Bytes::from(format!("k{}", b % 6)),
        3 => Bytes::from(format!("m{}", next(data, pos) % 8)),
        4 => Bytes::from((next(data, pos) as i64 - 128).to_string()),
        5 | 6 => Bytes::from(WORDS[next(data, pos) as usize % WORDS.len()]),
        _ => {
            let n = (next(data, pos) % 24) as usize;
            let end = (*pos + n).min(data.len());
            let raw = Bytes::copy_from_slice(&data[(*pos).min(end)..end]);
            *pos = end;
            raw
        }
    }
}

fn client(id: u64) -> (Client, ferrous::pubsub::PushReceiver) {
    let handle = ClientHandle::new(id, format!("127.0.0.1:{id}"), "127.0.0.1:6379".into(), -1);
    let mut c = Client::new(handle.clone(), true);
    let (tx, rx) = ferrous::pubsub::queue();
    let sub = ferrous::pubsub::Subscriber::new(id, tx, handle.meter.clone(), Arc::new(|| {}));
    let _ = handle.push.set(sub.clone());
    c.subs.subscriber = Some(sub);
    (c, rx)
}

/// Check `buf` is a sequence of complete RESP frames of `proto`; panics otherwise.
fn check_frames(buf: &[u8], proto: Proto) {
    let mut i = 0;
    while i < buf.len() {
        i = frame(buf, i, proto, 0);
    }
}

fn line(buf: &[u8], i: usize) -> (&[u8], usize) {
    let end = buf[i..].windows(2).position(|w| w == b"\r\n").map(|p| i + p).expect("incomplete line");
    (&buf[i..end], end + 2)
}

fn frame(buf: &[u8], i: usize, proto: Proto, depth: usize) -> usize {
    assert!(depth < 1000, "nesting too deep");
    let t = buf[i];
    let (body, after) = line(buf, i + 1);
    let num = || -> i64 { std::str::from_utf8(body).ok().and_then(|s| s.parse().ok()).expect("bad length") };
    let resp3_only = matches!(t, b'_' | b',' | b'#' | b'(' | b'=' | b'%' | b'~' | b'|' | b'>');
    assert!(!(resp3_only && proto == Proto::Resp2), "RESP3 type {:?} on a RESP2 connection", t as char);
    match t {
        b'+' | b'-' | b':' | b'_' | b',' | b'#' | b'(' => after,
        b'$' | b'=' => {
            let n = num();
            if n < 0 {
                assert!(n == -1 && proto == Proto::Resp2, "null bulk in RESP3");
                return after;
            }
            let end = after + n as usize;
            assert_eq!(&buf[end..end + 2], b"\r\n", "bulk without CRLF");
            end + 2
        }
        b'*' | b'~' | b'>' | b'%' | b'|' => {
            let n = num();
            if n < 0 {
                assert!(n == -1 && t == b'*' && proto == Proto::Resp2, "null aggregate in RESP3");
                return after;
            }
            let items = if matches!(t, b'%' | b'|') { 2 * n } else { n };
            let mut j = after;
            for _ in 0..items {
                j = frame(buf, j, proto, depth + 1);
            }
            if t == b'|' {
                // An attribute precedes the reply it describes.
                j = frame(buf, j, proto, depth + 1);
            }
            j
        }
        other => panic!("unknown RESP type byte {other:#x}"),
    }
}

fuzz_target!(|data: &[u8]| {
    let w = world();
    let _guard = w._rt.enter();
    let server = &w.server;
    let (mut c2, _rx2) = client(1);
    let (mut c3, _rx3) = client(2);
    let mut sink = ReplySink::new(Proto::Resp3);
    pipeline::execute(server, &mut c3, &[Bytes::from("HELLO"), Bytes::from("3")], &mut sink);
    let mut pos = 0;
    let mut steps = 0;
    while pos < data.len() && steps < 64 {
        steps += 1;
        let which = next(data, &mut pos);
        let name = &w.names[which as usize % w.names.len()];
        let argc = (next(data, &mut pos) % 7) as usize;
        let mut args = vec![Bytes::from(name.clone())];
        for _ in 0..argc {
            args.push(arg(data, &mut pos));
        }
        let client = if which & 0x80 == 0 { &mut c2 } else { &mut c3 };
        let mut out = ReplySink::new(client.proto);
        let action = pipeline::execute(server, client, &args, &mut out);
        if matches!(action, Action::Block(_) | Action::Paused | Action::WaitScript) {
            assert!(out.buf.is_empty(), "{args:?} waits but answered");
        }
        // HELLO switches the protocol for its own reply already.
        check_frames(&out.buf, client.proto);
    }
    // The dataset is consistent: a full SCAN of every database sees DBSIZE keys. DBSIZE is
    // taken after the SCAN: before it, it also counts keys whose time is up but that nothing
    // has reclaimed yet (no active expiry runs here), which SCAN skips and deletes — as Redis
    // (PSETEX k 2 v, 10 ms later: DBSIZE 1, SCAN finds nothing, DBSIZE 0).
    for db in 0..16 {
        let (mut c, _rx) = client(3);
        let mut out = ReplySink::new(Proto::Resp2);
        pipeline::execute(server, &mut c, &[Bytes::from("SELECT"), Bytes::from(db.to_string())], &mut out);
        let mut seen = std::collections::HashSet::new();
        let mut cursor = b"0".to_vec();
        loop {
            out.buf.clear();
            let scan = [Bytes::from("SCAN"), Bytes::from(cursor.clone()), Bytes::from("COUNT"), Bytes::from("1000")];
            pipeline::execute(server, &mut c, &scan, &mut out);
            let (next_cursor, keys) = parse_scan(&out.buf);
            seen.extend(keys);
            if next_cursor == b"0" {
                break;
            }
            cursor = next_cursor;
        }
        out.buf.clear();
        pipeline::execute(server, &mut c, &[Bytes::from("DBSIZE")], &mut out);
        let size: usize = std::str::from_utf8(&out.buf[1..out.buf.len() - 2]).unwrap().parse().unwrap();
        assert_eq!(seen.len(), size, "db {db}: SCAN saw {} keys, DBSIZE says {size}", seen.len());
        out.buf.clear();
        pipeline::execute(server, &mut c, &[Bytes::from("FLUSHDB")], &mut out);
    }
    // RESET both clients' state for the next input (transactions, watches, subscriptions).
    for c in [&mut c2, &mut c3] {
        let mut out = ReplySink::new(c.proto);
        pipeline::execute(server, c, &[Bytes::from("RESET")], &mut out);
    }
});

/// SCAN's reply (RESP2): the next cursor and the keys.
fn parse_scan(buf: &[u8]) -> (Vec<u8>, Vec<Vec<u8>>) {
    let (_, mut i) = line(buf, 1); // *2
    let (len, a) = line(buf, i + 1);
    let n: usize = std::str::from_utf8(len).unwrap().parse().unwrap();
    let cursor = buf[a..a + n].to_vec();
    i = a + n + 2;
    let (count, mut j) = line(buf, i + 1);
    let count: usize = std::str::from_utf8(count).unwrap().parse().unwrap();
    let mut keys = Vec::new();
    for _ in 0..count {
        let (len, a) = line(buf, j + 1);
        let n: usize = std::str::from_utf8(len).unwrap().parse().unwrap();
        keys.push(buf[a..a + n].to_vec());
        j = a + n + 2;
    }
    (cursor, keys)
}
