//! maxmemory: used-memory accounting, the OOM refusal of `denyoom` commands (also inside
//! MULTI), and eviction by policy, against the real binary.

mod common;

use common::{wait_until, Server};
use std::time::Duration;

fn info_field(con: &mut redis::Connection, section: &str, field: &str) -> u64 {
    let info: String = redis::cmd("INFO").arg(section).query(con).expect("INFO");
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in INFO {section}"))
}

fn fill(con: &mut redis::Connection, prefix: &str, n: usize, ttl: bool) {
    let value = "x".repeat(200);
    let mut pipe = redis::pipe();
    for i in 0..n {
        if ttl {
            pipe.cmd("SET").arg(format!("{prefix}{i}")).arg(&value).arg("EX").arg(100_000).ignore();
        } else {
            pipe.cmd("SET").arg(format!("{prefix}{i}")).arg(&value).ignore();
        }
    }
    let _: () = pipe.query(con).expect("fill");
}

/// used_memory follows the dataset: it grows with keys and falls back when they are deleted.
#[test]
fn used_memory_tracks_the_dataset() {
    let server = Server::start(&[]);
    let mut con = server.conn();
    let before = info_field(&mut con, "memory", "used_memory");
    fill(&mut con, "k", 20_000, false);
    let full = info_field(&mut con, "memory", "used_memory");
    assert!(full > before + 20_000 * 200, "20k values of 200 bytes: {before} -> {full}");
    let _: () = redis::cmd("FLUSHALL").arg("SYNC").query(&mut con).expect("FLUSHALL");
    let after = info_field(&mut con, "memory", "used_memory");
    assert!(after < before + (full - before) / 4, "memory comes back after FLUSHALL: {after}");
}

/// With noeviction, over the limit: denyoom commands get Redis's OOM error, reads and
/// deletions still work, a transaction that queues a write is aborted.
#[test]
fn noeviction_refuses_writes_over_the_limit() {
    let server = Server::start(&[]);
    let mut con = server.conn();
    fill(&mut con, "k", 1000, false);
    let _: () = redis::cmd("CONFIG").arg("SET").arg("maxmemory").arg(1).query(&mut con).expect("CONFIG");
    let mut raw = server.raw();
    assert_eq!(raw.cmd(&["SET", "new", "v"]), b"-OOM command not allowed when used memory > 'maxmemory'.\r\n");
    assert_eq!(raw.cmd(&["STRLEN", "k1"]), b":200\r\n");
    assert_eq!(raw.cmd(&["DEL", "k1"]), b":1\r\n");
    assert_eq!(raw.cmd(&["MULTI"]), b"+OK\r\n");
    assert_eq!(raw.cmd(&["GET", "k2"]), b"-OOM command not allowed when used memory > 'maxmemory'.\r\n");
    assert_eq!(raw.cmd(&["EXEC"]), b"-EXECABORT Transaction discarded because of previous errors.\r\n");
    let _: () = redis::cmd("CONFIG").arg("SET").arg("maxmemory").arg(0).query(&mut con).expect("CONFIG");
    assert_eq!(raw.cmd(&["SET", "new", "v"]), b"+OK\r\n");
    assert_eq!(info_field(&mut con, "stats", "evicted_keys"), 0);
}

/// allkeys-lru brings used memory back under the limit by evicting keys.
#[test]
fn allkeys_lru_evicts_down_to_the_limit() {
    let server = Server::start(&[]);
    let mut con = server.conn();
    fill(&mut con, "k", 20_000, false);
    let used = info_field(&mut con, "memory", "used_memory");
    let limit = used - 1_000_000;
    let _: () = redis::cmd("CONFIG").arg("SET").arg("maxmemory-policy").arg("allkeys-lru").query(&mut con).unwrap();
    let _: () = redis::cmd("CONFIG").arg("SET").arg("maxmemory").arg(limit).query(&mut con).unwrap();
    let under = wait_until(Duration::from_secs(30), || {
        let _: () = redis::cmd("SET").arg("probe").arg("v").query(&mut con).expect("writes are not refused");
        // INFO's own reply is counted while it is built: allow it some slack.
        info_field(&mut con, "memory", "used_memory") <= limit + 64 * 1024
    });
    assert!(under, "used memory never got under maxmemory");
    let evicted = info_field(&mut con, "stats", "evicted_keys");
    let keys: u64 = redis::cmd("DBSIZE").query(&mut con).unwrap();
    assert!(evicted > 0 && keys < 20_001, "evicted {evicted}, {keys} keys left");
}

/// volatile-* policies only evict keys with an expiry; with none left, writes get OOM.
#[test]
fn volatile_policies_keep_persistent_keys() {
    let server = Server::start(&[]);
    let mut con = server.conn();
    fill(&mut con, "p", 5_000, false);
    fill(&mut con, "v", 5_000, true);
    let used = info_field(&mut con, "memory", "used_memory");
    let _: () = redis::cmd("CONFIG").arg("SET").arg("maxmemory-policy").arg("volatile-ttl").query(&mut con).unwrap();
    let _: () = redis::cmd("CONFIG").arg("SET").arg("maxmemory").arg(used - 500_000).query(&mut con).unwrap();
    let _: redis::RedisResult<()> = redis::cmd("SET").arg("probe").arg("v").query(&mut con);
    let mut persistent = 0;
    for i in 0..5_000 {
        let e: bool = redis::cmd("EXISTS").arg(format!("p{i}")).query(&mut con).unwrap();
        persistent += e as usize;
    }
    assert_eq!(persistent, 5_000, "a persistent key was evicted under volatile-ttl");
    assert!(info_field(&mut con, "stats", "evicted_keys") > 0);
    // With no volatile key left, nothing is evictable: writes get OOM.
    let _: () = redis::cmd("CONFIG").arg("SET").arg("maxmemory").arg(0).query(&mut con).unwrap();
    let mut pipe = redis::pipe();
    for i in 0..5_000 {
        pipe.cmd("DEL").arg(format!("v{i}")).ignore();
    }
    let _: () = pipe.query(&mut con).unwrap();
    let _: () = redis::cmd("CONFIG").arg("SET").arg("maxmemory").arg(1).query(&mut con).unwrap();
    let err = redis::cmd("SET").arg("x").arg("y").query::<()>(&mut con).unwrap_err();
    assert!(err.to_string().contains("OOM"), "{err}");
}

/// The Lua heap is not the dataset (Redis's Lua allocates outside used_memory): a script that
/// builds a 50 MB string neither evicts keys nor makes writes fail with OOM afterwards, and
/// INFO reports it apart (used_memory_lua, used_memory_vm_eval).
#[test]
fn the_lua_heap_never_counts_toward_maxmemory() {
    let server = Server::start(&[]);
    let mut con = server.conn();
    let value = "v".repeat(10_000);
    let mut pipe = redis::pipe();
    for i in 0..1000 {
        pipe.cmd("SET").arg(format!("k{i}")).arg(&value).ignore();
    }
    let _: () = pipe.query(&mut con).expect("fill");
    let used = info_field(&mut con, "memory", "used_memory");
    let limit = used + 10 * 1024 * 1024;
    for policy in ["allkeys-lru", "noeviction"] {
        let _: () = redis::cmd("CONFIG")
            .arg(&["SET", "maxmemory", &limit.to_string(), "maxmemory-policy", policy])
            .query(&mut con)
            .expect("CONFIG SET");
        let n: i64 = redis::cmd("EVAL").arg("return #string.rep('x',5e7)").arg(0).query(&mut con).expect("EVAL");
        assert_eq!(n, 50_000_000);
        let lua = info_field(&mut con, "memory", "used_memory_lua");
        assert!(lua > 50_000_000, "used_memory_lua {lua} after building a 50 MB string");
        assert!(info_field(&mut con, "memory", "used_memory") < limit, "{policy}: the Lua heap counts in used_memory");
        let _: () = redis::cmd("SET").arg("after").arg("1").query(&mut con).unwrap_or_else(|e| panic!("{policy}: {e}"));
        let size: usize = redis::cmd("DBSIZE").query(&mut con).expect("DBSIZE");
        assert_eq!(size, 1001, "{policy}: keys evicted because of the Lua heap");
        assert_eq!(info_field(&mut con, "stats", "evicted_keys"), 0);
        let _: () = redis::cmd("DEL").arg("after").query(&mut con).expect("DEL");
    }
}

/// As unit/maxmemory's "is the memory limit honoured?": with a limit 100 KB above the current
/// use, writing as many small keys again as it took to reach the limit leaves used_memory (as
/// full INFO reports it, its own text not counted) within 4 KB of the limit.
#[test]
fn used_memory_stays_within_the_limit_as_info_reports_it() {
    let server = Server::start(&[]);
    let mut con = server.conn();
    // The server's first cron runs allocate what it keeps (rates, histograms): measure from a
    // settled server, as the TCL suite does (its servers have run a while).
    let uptime = |con: &mut redis::Connection| info_field(con, "server", "uptime_in_seconds");
    assert!(wait_until(Duration::from_secs(5), || uptime(&mut con) >= 2));
    for policy in ["allkeys-random", "allkeys-lru", "volatile-ttl"] {
        let _: () = redis::cmd("FLUSHALL").query(&mut con).unwrap();
        let used = info_field(&mut con, "default", "used_memory");
        let limit = used + 100 * 1024;
        let _: () = redis::cmd("CONFIG").arg("SET").arg("maxmemory").arg(limit).query(&mut con).unwrap();
        let _: () = redis::cmd("CONFIG").arg("SET").arg("maxmemory-policy").arg(policy).query(&mut con).unwrap();
        let mut n = 0;
        let set = |con: &mut redis::Connection, i: usize| {
            let r: redis::RedisResult<()> = redis::cmd("SETEX").arg(format!("k{i}")).arg(10_000).arg("x").query(con);
            if let Err(e) = r {
                let info: String = redis::cmd("INFO").arg("memory").query(con).unwrap();
                let n: i64 = redis::cmd("DBSIZE").query(con).unwrap();
                let cl: String = redis::cmd("CLIENT").arg("LIST").query(con).unwrap();
                panic!("{policy}: SETEX k{i}: {e} (limit {limit}, keys {n}): {info} {cl}");
            }
        };
        while info_field(&mut con, "default", "used_memory") + 4096 <= limit {
            set(&mut con, n);
            n += 1;
        }
        assert!(n > 10, "{policy}: only {n} keys fit");
        for i in 0..n {
            set(&mut con, n + i);
        }
        let now = info_field(&mut con, "default", "used_memory");
        assert!(now < limit + 4096, "{policy}: used_memory {now} over the limit {limit} + 4096");
        let _: () = redis::cmd("CONFIG").arg("SET").arg("maxmemory").arg(0).query(&mut con).unwrap();
    }
}

/// A big SET keeps its argument as the value, as Redis keeps the argument's sds: the value is
/// held once, not copied out of the request (peak RSS for a 64 MB SET: +64 MB, not +128 MB).
/// Requests around it (pipelined, with options after the value, MSET) keep their values whole
/// and in order, and the value is changed in place like any other.
#[test]
fn a_big_set_holds_its_value_once() {
    use std::io::Write;
    let server = Server::start(&[]);
    let mut con = server.conn();
    let n = 64 << 20;
    let before = server.status_kb("VmRSS:");
    let mut raw = std::net::TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    raw.write_all(format!("*3\r\n$3\r\nSET\r\n$3\r\nbig\r\n${n}\r\n").as_bytes()).unwrap();
    let chunk = vec![b'v'; 1 << 20];
    for _ in 0..64 {
        raw.write_all(&chunk).unwrap();
    }
    raw.write_all(b"\r\n").unwrap();
    let mut raw = common::Raw::new(raw);
    assert_eq!(raw.read_reply(), b"+OK\r\n");
    let grew_mb = (server.status_kb("VmHWM:") - before) >> 10;
    assert!(grew_mb < 96, "a 64 MB SET raised peak RSS by {grew_mb} MB");
    let len: u64 = redis::cmd("STRLEN").arg("big").query(&mut con).unwrap();
    assert_eq!(len, n as u64);
    let encoding: String = redis::cmd("OBJECT").arg("ENCODING").arg("big").query(&mut con).unwrap();
    assert_eq!(encoding, "raw");

    // Pipelined big requests, options after the value, an MSET: all whole and in order.
    let a = "a".repeat(100_000);
    let b = "b".repeat(200_000);
    let mut pipe = Vec::new();
    pipe.extend(common::encode(&["SET", "a", &a, "EX", "1000"]));
    pipe.extend(common::encode(&["SET", "b", &b]));
    pipe.extend(common::encode(&["MSET", "m1", &b, "m2", "small", "m3", &a]));
    pipe.extend(common::encode(&["APPEND", "big", "tail"]));
    pipe.extend(common::encode(&["SETRANGE", "a", "0", "X"]));
    raw.send(&pipe);
    for want in [&b"+OK\r\n"[..], b"+OK\r\n", b"+OK\r\n", format!(":{}\r\n", n + 4).as_bytes(), b":100000\r\n"] {
        assert_eq!(raw.read_reply(), want);
    }
    let got: Vec<String> = redis::cmd("MGET").arg(&["a", "b", "m1", "m2", "m3"]).query(&mut con).unwrap();
    assert_eq!(got, [format!("X{}", &a[1..]), b.clone(), b, "small".into(), a]);
    let ttl: i64 = redis::cmd("TTL").arg("a").query(&mut con).unwrap();
    assert!(ttl > 900, "{ttl}");
    let tail: String = redis::cmd("GETRANGE").arg("big").arg(-6).arg(-1).query(&mut con).unwrap();
    assert_eq!(tail, "vvtail");
}

/// Memory freed in many small blocks goes back to the system while the server idles, as
/// Redis's does: after a FLUSHALL of ~100 MB of 33 KB values, resident memory falls back near
/// where it was before the values (it stayed at its peak: mimalloc purges only when asked).
#[test]
fn a_flushall_gives_memory_back_to_the_system() {
    let server = Server::start(&[]);
    let mut con = server.conn();
    let before = server.status_kb("VmRSS:") >> 10;
    let value = "x".repeat(33_000);
    let mut pipe = redis::pipe();
    for i in 0..3000 {
        pipe.cmd("SET").arg(format!("k{i}")).arg(&value).ignore();
    }
    let _: () = pipe.query(&mut con).unwrap();
    let full = server.status_kb("VmRSS:") >> 10;
    assert!(full > before + 90, "{before} -> {full} MB");
    let _: () = redis::cmd("FLUSHALL").query(&mut con).unwrap();
    let back = wait_until(Duration::from_secs(20), || server.status_kb("VmRSS:") >> 10 < before + 30);
    assert!(back, "RSS {} MB after FLUSHALL ({before} MB before the values)", server.status_kb("VmRSS:") >> 10);
}

/// The arrays that growing tables left behind go back to the system while the server idles: a
/// load of keys with a TTL grows every shard's dictionary and TTL index many times, and the
/// old arrays stayed resident until MEMORY PURGE, because the cron asked mimalloc to purge
/// only after a big free: 1M keys settled 16-19 MB above what the purge left (debug build).
/// Now they settle within a few MB of it (0-28 kB above, twice).
#[test]
fn the_arrays_that_tables_outgrew_go_back_to_the_system() {
    let server = Server::start(&[]);
    let mut con = server.conn();
    // Pipelines of 5,000 keep the query buffer under 4 MB: a bigger one's buffer was a big
    // free of its own, after which the old cron purged for a second anyway.
    for chunk in 0..200 {
        let mut pipe = redis::pipe();
        for i in 0..5_000 {
            pipe.cmd("SET").arg(format!("key:{chunk}:{i}")).arg("v".repeat(16)).arg("EX").arg(100_000).ignore();
        }
        let _: () = pipe.query(&mut con).expect("fill");
    }
    let rss = || server.status_kb("VmRSS:");
    // Settled: no change over 3 s (freed pages are due a second after they are freed).
    let (mut last, mut same_since) = (rss(), std::time::Instant::now());
    let settled = wait_until(Duration::from_secs(30), || {
        let now = rss();
        if now != last {
            (last, same_since) = (now, std::time::Instant::now());
        }
        same_since.elapsed() >= Duration::from_secs(3)
    });
    assert!(settled, "RSS still moving: {} kB", rss());
    let _: () = redis::cmd("MEMORY").arg("PURGE").query(&mut con).unwrap();
    let purged = rss();
    assert!(last <= purged + 4096, "RSS {last} kB settled, {purged} kB after MEMORY PURGE");
}

/// A list holds its elements packed, as Redis's listpacks do: 200k elements of 8 bytes take
/// about 10 bytes each (Redis 7.2.4: 10.1), where a ring of 24-byte slots took 25.
#[test]
fn a_list_of_small_elements_takes_about_their_bytes() {
    let server = Server::start(&[]);
    let mut con = server.conn();
    let before = info_field(&mut con, "memory", "used_memory");
    for chunk in 0..200 {
        let mut cmd = redis::cmd("RPUSH");
        cmd.arg("queue");
        for i in 0..1000 {
            cmd.arg(format!("{:08}", chunk * 1000 + i));
        }
        let _: i64 = cmd.query(&mut con).expect("RPUSH");
    }
    let per_element = (info_field(&mut con, "memory", "used_memory") - before) / 200_000;
    assert!(per_element <= 12, "{per_element} bytes per element");
    // Both ends still work, and the middle.
    let first: String = redis::cmd("LPOP").arg("queue").query(&mut con).expect("LPOP");
    let last: String = redis::cmd("RPOP").arg("queue").query(&mut con).expect("RPOP");
    let middle: String = redis::cmd("LINDEX").arg("queue").arg(99_999).query(&mut con).expect("LINDEX");
    assert_eq!((first.as_str(), last.as_str(), middle.as_str()), ("00000000", "00199999", "00100000"));
}

/// An idle connection holds its task, its shared handle, a 1 KB reply buffer and the runtime's
/// registration of its socket: 5.2 KB of used memory here (5.0 KB in a release build). Its
/// task alone took 3.2 KB while the rare waits (a blocked command, the Lua debugger...) sized
/// it, and its argument vector stayed allocated: 6.2 KB (6.0 KB). Redis 7.2.4 holds 2.4 KB,
/// Valkey 9.1 1.8 KB.
#[test]
fn an_idle_connection_holds_a_few_kilobytes() {
    let server = Server::start(&[]);
    let mut con = server.conn();
    let before = info_field(&mut con, "memory", "used_memory");
    let conns: Vec<_> = (0..500)
        .map(|_| {
            let mut raw = server.raw();
            assert_eq!(raw.cmd(&["PING"]), b"+PONG\r\n");
            raw
        })
        .collect();
    // Idle for 2 s, each gives its read buffer and argument vector back at the cron's next
    // look (once a second).
    let mut per_connection = 0;
    let trimmed = wait_until(Duration::from_secs(15), || {
        per_connection = info_field(&mut con, "memory", "used_memory").saturating_sub(before) / 500;
        per_connection <= 5_500
    });
    assert!(trimmed, "{per_connection} bytes a connection");
    drop(conns);
}
