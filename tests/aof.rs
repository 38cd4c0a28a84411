//! The append-only file, interchangeable with Redis 7.0: Ferrous's multi-part AOF directory
//! restarts Ferrous, passes `redis-check-aof` and loads in a real `redis-server`; Redis's AOF
//! directories (with and without RDB preamble, with incr commands after a rewrite) load in
//! Ferrous; torn tails follow `aof-load-truncated`; and with `appendfsync always` no
//! acknowledged write is lost when the server is killed with SIGKILL.
//!
//! Tests that need `redis-server` print `SKIPPED:` and pass without it, unless
//! `FERROUS_REQUIRE_REDIS=1` (the rule of `tests/persistence.rs`).

mod common;

use common::interop::*;
use common::{free_port, query, reply_len, run_to_exit, server_ms, wait_until, work_dir, Server};

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

fn test_dir(name: &str) -> PathBuf {
    let d = work_dir().join(format!("aof-{name}"));
    let _ = fs::remove_dir_all(&d);
    fs::create_dir_all(&d).expect("create the test directory");
    d
}

/// Every type and encoding, expiries, three databases, a transaction and effects that are
/// rewritten (relative expiry, INCRBYFLOAT, GETDEL).
fn build_dataset(con: &mut redis::Connection) {
    let many: Vec<String> = (0..50).map(|i| format!("item-{i}")).collect();
    for db in ["0", "2", "15"] {
        cmd(con, &[b"SELECT", db.as_bytes()]);
        let mut run = |args: Vec<Vec<u8>>| {
            let refs: Vec<&[u8]> = args.iter().map(|a| a.as_slice()).collect();
            cmd(con, &refs);
        };
        let v = |parts: &[&str]| parts.iter().map(|p| p.as_bytes().to_vec()).collect::<Vec<_>>();
        run(v(&["SET", "str:int", "12345"]));
        run(v(&["SET", "str:raw", &"compressible ".repeat(40)]));
        run(vec![b"SET".to_vec(), b"str:bin".to_vec(), b"a\x00b\r\n\xff".to_vec()]);
        run(v(&["RPUSH", "list:small", "a", "1", "-2"]));
        let mut big = v(&["RPUSH", "list:big"]);
        big.extend(many.iter().map(|s| s.as_bytes().to_vec()));
        run(big);
        run(v(&["LPOP", "list:big"]));
        run(v(&["HSET", "hash:small", "f", "v", "n", "42"]));
        let mut h = v(&["HSET", "hash:big"]);
        many.iter().for_each(|s| h.extend([s.as_bytes().to_vec(), b"value".to_vec()]));
        run(h);
        run(v(&["SADD", "set:intset", "1", "-5", "100000"]));
        run(v(&["SADD", "set:strings", "a", "b", "c", "d", "e", "f"]));
        run(v(&["ZADD", "zset:small", "1", "a", "2.5", "b", "-inf", "c"]));
        let mut z = v(&["ZADD", "zset:big"]);
        many.iter()
            .enumerate()
            .for_each(|(i, s)| z.extend([format!("{}", i as f64 / 7.0).into_bytes(), s.as_bytes().to_vec()]));
        run(z);
        run(v(&["SET", "exp:ex", "v", "EX", "100000"]));
        run(v(&["RPUSH", "exp:list", "x"]));
        run(v(&["EXPIRE", "exp:list", "200000"]));
        run(v(&["SET", "float", "1.5"]));
        run(v(&["INCRBYFLOAT", "float", "0.25"]));
        run(v(&["SET", "gone", "x"]));
        run(v(&["GETDEL", "gone"]));
        build_streams(&mut run, false);
    }
    cmd(con, &[b"SELECT", b"2"]);
    let _: () = redis::pipe()
        .atomic()
        .cmd("INCR")
        .arg("tx:counter")
        .ignore()
        .cmd("RPUSH")
        .arg("tx:list")
        .arg("a")
        .ignore()
        .cmd("SET")
        .arg("tx:str")
        .arg("v")
        .arg("PX")
        .arg("90000000")
        .ignore()
        .query(con)
        .expect("MULTI/EXEC");
    cmd(con, &[b"SELECT", b"0"]);
}

fn info_field(con: &mut redis::Connection, field: &str) -> String {
    let info: String = redis::cmd("INFO").arg("persistence").query(con).expect("INFO");
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")).map(str::to_string))
        .unwrap_or_else(|| panic!("no {field} in INFO"))
}

/// BGREWRITEAOF, then wait for it to finish successfully.
fn rewrite(con: &mut redis::Connection) {
    let _: String = redis::cmd("BGREWRITEAOF").query(con).expect("BGREWRITEAOF");
    let done = wait_until(Duration::from_secs(30), || {
        info_field(con, "aof_rewrite_in_progress") == "0" && info_field(con, "aof_rewrite_scheduled") == "0"
    });
    assert!(done, "the rewrite did not finish");
    assert_eq!(info_field(con, "aof_last_bgrewrite_status"), "ok");
}

/// A few writes after a rewrite (they land in the new incr file).
fn more_writes(con: &mut redis::Connection) {
    cmd(con, &[b"SELECT", b"15"]);
    cmd(con, &[b"INCRBY", b"after", b"5"]);
    cmd(con, &[b"RPUSH", b"list:small", b"tail"]);
    cmd(con, &[b"ZINCRBY", b"zset:small", b"10", b"a"]);
    cmd(con, &[b"SELECT", b"0"]);
    cmd(con, &[b"HDEL", b"hash:big", b"item-3"]);
    cmd(con, &[b"SET", b"late", b"x", b"EXAT", b"4102444800"]);
}

fn ferrous_args<'a>(dir: &'a Path, extra: &[&'a str]) -> Vec<&'a str> {
    let mut a = vec!["--dir", dir.to_str().expect("utf-8 path"), "--appendonly", "yes"];
    a.extend_from_slice(SMALL_LIMITS);
    a.extend_from_slice(extra);
    a
}

fn shutdown_ferrous(mut s: Server) {
    let _ = redis::cmd("SHUTDOWN").arg("NOSAVE").query::<()>(&mut s.conn());
    assert!(s.wait_exit(EXIT_TIMEOUT).is_some(), "ferrous did not exit");
}

fn manifest(dir: &Path) -> String {
    fs::read_to_string(dir.join("appendonlydir/appendonly.aof.manifest")).expect("manifest written")
}

// ---------------------------------------------------------------------------
// (a) Ferrous writes: Ferrous restarts, redis-check-aof accepts it, Redis loads it.
// ---------------------------------------------------------------------------

#[test]
fn ferrous_aof_restarts_passes_redis_check_aof_and_loads_in_redis() {
    let dir = test_dir("ferrous-writes");
    let ferrous = Server::start(&ferrous_args(&dir, &[]));
    let mut fc = ferrous.conn();
    build_dataset(&mut fc);
    rewrite(&mut fc);
    let m = manifest(&dir);
    assert_eq!(m, "file appendonly.aof.2.base.rdb seq 2 type b\nfile appendonly.aof.2.incr.aof seq 2 type i\n");
    assert!(!dir.join("appendonlydir/appendonly.aof.1.incr.aof").exists(), "history files are deleted");
    more_writes(&mut fc);
    let expected = contents(&mut fc);
    drop(fc);
    shutdown_ferrous(ferrous);

    let ferrous = Server::start(&ferrous_args(&dir, &[]));
    assert_eq!(contents(&mut ferrous.conn()), expected, "after a restart");
    shutdown_ferrous(ferrous);

    let Some(bin) = redis_or_skip("ferrous_aof_restarts_passes_redis_check_aof_and_loads_in_redis") else { return };
    let check = bin.with_file_name("redis-check-aof");
    let check = if check.is_file() { check } else { find_tool("redis-check-aof").expect("redis-check-aof") };
    let out = Command::new(&check)
        .arg(dir.join("appendonlydir/appendonly.aof.manifest"))
        .output()
        .expect("run redis-check-aof");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && text.contains("All AOF files and manifest are valid"), "{text}");

    let mut extra = vec!["--appendonly", "yes"];
    extra.extend_from_slice(SMALL_LIMITS);
    let redis = Redis::start(&bin, &dir, &extra);
    assert_eq!(contents(&mut redis.conn()), expected, "real Redis loading Ferrous's AOF");
}

// ---------------------------------------------------------------------------
// (b) Redis writes, Ferrous loads.
// ---------------------------------------------------------------------------

#[test]
fn ferrous_loads_redis_aof_directories_with_and_without_preamble() {
    let Some(bin) = redis_or_skip("ferrous_loads_redis_aof_directories_with_and_without_preamble") else { return };
    for preamble in ["yes", "no"] {
        let dir = test_dir(&format!("redis-writes-{preamble}"));
        let mut extra = vec!["--appendonly", "yes", "--aof-use-rdb-preamble", preamble];
        extra.extend_from_slice(SMALL_LIMITS);
        let redis = Redis::start(&bin, &dir, &extra);
        let mut rc = redis.conn();
        build_dataset(&mut rc);
        rewrite(&mut rc);
        more_writes(&mut rc);
        let expected = contents(&mut rc);
        drop(rc);
        redis.shutdown();
        let base = if preamble == "yes" { "rdb" } else { "aof" };
        assert!(manifest(&dir).contains(&format!("appendonly.aof.2.base.{base}")), "{}", manifest(&dir));

        let ferrous = Server::start(&ferrous_args(&dir, &["--aof-use-rdb-preamble", preamble]));
        let mut fc = ferrous.conn();
        assert_eq!(contents(&mut fc), expected, "preamble {preamble}");
        // Ferrous appends to Redis's last incr file and rewrites in the same format.
        cmd(&mut fc, &[b"SET", b"from-ferrous", b"1"]);
        rewrite(&mut fc);
        assert!(manifest(&dir).contains(&format!("appendonly.aof.3.base.{base}")), "{}", manifest(&dir));
        let expected = contents(&mut fc);
        drop(fc);
        shutdown_ferrous(ferrous);
        let ferrous = Server::start(&ferrous_args(&dir, &[]));
        assert_eq!(contents(&mut ferrous.conn()), expected, "preamble {preamble}, after Ferrous's rewrite");
    }
}

// ---------------------------------------------------------------------------
// (c) Torn and corrupt files.
// ---------------------------------------------------------------------------

#[test]
fn torn_tail_follows_aof_load_truncated_and_corruption_stops_the_start() {
    let dir = test_dir("torn");
    let ferrous = Server::start(&ferrous_args(&dir, &[]));
    let mut fc = ferrous.conn();
    cmd(&mut fc, &[b"SET", b"a", b"1"]);
    cmd(&mut fc, &[b"RPUSH", b"l", b"x", b"y"]);
    drop(fc);
    shutdown_ferrous(ferrous);
    let incr = dir.join("appendonlydir/appendonly.aof.1.incr.aof");
    let good = fs::read(&incr).expect("incr file");
    let run = |extra: &[&str]| {
        let mut args = vec!["--port".to_string(), free_port().to_string(), "--save".into(), String::new()];
        args.extend(ferrous_args(&dir, extra).into_iter().map(String::from));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let done = run_to_exit(&args, EXIT_TIMEOUT);
        (done.status.success(), format!("{}{}", done.stdout, done.stderr))
    };

    // A torn last command: refused with aof-load-truncated no...
    fs::write(&incr, [&good[..], b"*3\r\n$3\r\nSET\r\n$1\r\nb\r\n$5\r\nva"].concat()).expect("write");
    let (ok, log) = run(&["--aof-load-truncated", "no"]);
    assert!(!ok && log.contains("Unexpected end of file reading the append only file"), "{log}");
    // ...dropped (and the file truncated) with yes, the default.
    let ferrous = Server::start(&ferrous_args(&dir, &[]));
    let mut fc = ferrous.conn();
    assert_eq!(redis::cmd("GET").arg("a").query::<String>(&mut fc).expect("GET"), "1");
    assert_eq!(redis::cmd("EXISTS").arg("b").query::<i64>(&mut fc).expect("EXISTS"), 0);
    assert!(ferrous.log().contains("!!! Warning: short read while loading the AOF file"), "{}", ferrous.log());
    drop(fc);
    shutdown_ferrous(ferrous);
    assert!(fs::read(&incr).expect("incr").starts_with(&good));

    // A MULTI without its EXEC at the end is a torn tail too.
    let good = fs::read(&incr).expect("incr file");
    fs::write(&incr, [&good[..], b"*1\r\n$5\r\nMULTI\r\n*2\r\n$4\r\nINCR\r\n$1\r\nn\r\n"].concat()).expect("write");
    let ferrous = Server::start(&ferrous_args(&dir, &[]));
    assert_eq!(redis::cmd("EXISTS").arg("n").query::<i64>(&mut ferrous.conn()).expect("EXISTS"), 0);
    assert!(ferrous.log().contains("Revert incomplete MULTI/EXEC transaction"), "{}", ferrous.log());
    shutdown_ferrous(ferrous);
    assert_eq!(fs::read(&incr).expect("incr"), good, "the open transaction was cut off");

    // Garbage in the middle: a clear error, no start, nothing truncated.
    let mid = good.len() / 2;
    let corrupt = [&good[..mid], b"\r\n+garbage\r\n", &good[mid..]].concat();
    fs::write(&incr, &corrupt).expect("write");
    let (ok, log) = run(&[]);
    assert!(!ok && log.contains("Bad file format reading the append only file"), "{log}");
    assert_eq!(fs::read(&incr).expect("incr"), corrupt);
    // An unknown command.
    fs::write(&incr, [&good[..], b"*1\r\n$7\r\nNOTACMD\r\n"].concat()).expect("write");
    let (ok, log) = run(&[]);
    assert!(!ok && log.contains("Unknown command 'NOTACMD' reading the append only file"), "{log}");
}

// ---------------------------------------------------------------------------
// (d) appendfsync always: kill -9 loses no acknowledged write.
// ---------------------------------------------------------------------------

/// Per writer thread: (acked counter, sent INCRs, acked list length, sent RPUSHes) — absolute.
type Tally = (i64, i64, i64, i64);

#[test]
fn kill_9_with_appendfsync_always_keeps_every_acknowledged_write() {
    const THREADS: usize = 4;
    let dir = test_dir("kill9");
    let args = ferrous_args(&dir, &["--appendfsync", "always"]);
    // What the last incarnation is known to hold (counters and list lengths per thread).
    let mut base: Vec<(i64, i64)> = vec![(0, 0); THREADS];
    for round in 0..4 {
        let server = Server::start(&args);
        let mut con = server.conn();
        // Check what survived the previous kill.
        for (t, &(cnt, len)) in base.iter().enumerate() {
            let got: Option<i64> = redis::cmd("GET").arg(format!("cnt:{t}")).query(&mut con).expect("GET");
            assert_eq!(got.unwrap_or(0), cnt, "round {round} thread {t} counter");
            let list: Vec<i64> =
                redis::cmd("LRANGE").arg(format!("list:{t}")).arg(0).arg(-1).query(&mut con).expect("LRANGE");
            assert_eq!(list, (0..len).collect::<Vec<_>>(), "round {round} thread {t} list");
        }
        if round == 3 {
            break;
        }
        let stop = Arc::new(AtomicBool::new(false));
        let tallies: Arc<Mutex<Vec<Tally>>> = Arc::new(Mutex::new(base.iter().map(|&(c, l)| (c, c, l, l)).collect()));
        let workers: Vec<_> = (0..THREADS)
            .map(|t| {
                let client = server.client();
                let (stop, tallies) = (stop.clone(), tallies.clone());
                std::thread::spawn(move || {
                    let Ok(mut c) = client.get_connection() else { return };
                    while !stop.load(Ordering::Relaxed) {
                        tallies.lock().unwrap()[t].1 += 1;
                        let Ok(v) = redis::cmd("INCR").arg(format!("cnt:{t}")).query::<i64>(&mut c) else { return };
                        tallies.lock().unwrap()[t].0 = v;
                        let next = {
                            let mut g = tallies.lock().unwrap();
                            g[t].3 += 1;
                            g[t].3 - 1
                        };
                        let Ok(n) = redis::cmd("RPUSH").arg(format!("list:{t}")).arg(next).query::<i64>(&mut c) else {
                            return;
                        };
                        tallies.lock().unwrap()[t].2 = n;
                    }
                })
            })
            .collect();
        // Every thread has a write acknowledged, then the kill comes at a random moment.
        let started = wait_until(common::BACKGROUND_WORK, || {
            let g = tallies.lock().unwrap();
            g.iter().enumerate().all(|(t, tally)| tally.0 > base[t].0)
        });
        assert!(started, "round {round}: a writer never had a write acknowledged");
        std::thread::sleep(Duration::from_millis(150 + rand::random::<u64>() % 300));
        drop(con);
        drop(server); // SIGKILL
        stop.store(true, Ordering::Relaxed);
        for w in workers {
            let _ = w.join();
        }
        let tallies = tallies.lock().unwrap().clone();
        let server = Server::start(&args);
        let mut con = server.conn();
        for (t, &(acked, sent, acked_len, sent_len)) in tallies.iter().enumerate() {
            assert!(acked > base[t].0, "round {round} thread {t}: no write acknowledged");
            let got: i64 = redis::cmd("GET").arg(format!("cnt:{t}")).query(&mut con).expect("GET");
            assert!(got >= acked && got <= sent, "round {round} thread {t}: counter {got} not in [{acked}, {sent}]");
            let list: Vec<i64> =
                redis::cmd("LRANGE").arg(format!("list:{t}")).arg(0).arg(-1).query(&mut con).expect("LRANGE");
            let len = list.len() as i64;
            assert!(
                len >= acked_len && len <= sent_len,
                "round {round} thread {t}: list {len} not in [{acked_len}, {sent_len}]"
            );
            assert_eq!(list, (0..len).collect::<Vec<_>>(), "round {round} thread {t}: list contents");
            base[t] = (got, len);
        }
        eprintln!("round {round}: {tallies:?} survived as {base:?}");
        // Kill this one too before it wrote anything: the next round starts from `base`.
        drop(con);
        drop(server);
    }
}

// ---------------------------------------------------------------------------
// Turning AOF on at runtime, rewrites with AOF off, automatic rewrites, no preamble.
// ---------------------------------------------------------------------------

#[test]
fn runtime_enable_standalone_and_automatic_rewrites() {
    let dir = test_dir("runtime");
    let d = dir.to_str().expect("utf-8 path");
    let ferrous = Server::start(&["--dir", d, "--aof-use-rdb-preamble", "no", "--aof-timestamp-enabled", "yes"]);
    let mut fc = ferrous.conn();
    cmd(&mut fc, &[b"SET", b"before", b"1"]);
    // AOF off: a rewrite writes a base (commands, without preamble) and a manifest only.
    rewrite(&mut fc);
    assert_eq!(manifest(&dir), "file appendonly.aof.1.base.aof seq 1 type b\n");
    // Turning it on rewrites, then appends.
    cmd(&mut fc, &[b"SET", b"mid", b"2"]);
    let _: () = redis::cmd("CONFIG").arg("SET").arg("appendonly").arg("yes").query(&mut fc).expect("CONFIG SET");
    assert!(wait_until(common::BACKGROUND_WORK, || info_field(&mut fc, "aof_rewrite_in_progress") == "0"));
    cmd(&mut fc, &[b"SET", b"after", b"3"]);
    assert_eq!(
        manifest(&dir),
        "file appendonly.aof.2.base.aof seq 2 type b\nfile appendonly.aof.1.incr.aof seq 1 type i\n"
    );
    // aof-timestamp-enabled: annotations before the commands (loaders skip them).
    let incr = dir.join("appendonlydir/appendonly.aof.1.incr.aof");
    assert!(wait_until(Duration::from_secs(5), || fs::read_to_string(&incr)
        .is_ok_and(|t| t.starts_with("#TS:") && t.contains("after"))));
    // Automatic rewrite once the AOF doubled past the minimum size.
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("auto-aof-rewrite-min-size")
        .arg("1")
        .arg("auto-aof-rewrite-percentage")
        .arg("100")
        .query(&mut fc)
        .expect("CONFIG SET");
    for i in 0..50 {
        cmd(&mut fc, &[b"RPUSH", b"grow", i.to_string().as_bytes()]);
    }
    assert!(
        wait_until(common::BACKGROUND_WORK, || manifest(&dir).contains("appendonly.aof.3.base.aof")),
        "{}",
        manifest(&dir)
    );
    let expected = contents(&mut fc);
    drop(fc);
    shutdown_ferrous(ferrous);
    let ferrous = Server::start(&["--dir", d, "--appendonly", "yes"]);
    assert_eq!(contents(&mut ferrous.conn()), expected);
    assert_eq!(expected.len(), 4);
}

fn resp(args: &[&str]) -> String {
    let mut s = format!("*{}\r\n", args.len());
    for a in args {
        s.push_str(&format!("${}\r\n{a}\r\n", a.len()));
    }
    s
}

/// Loading obeys the file as Redis obeys its AOF client: scripts write on a read-only replica,
/// and an expiry already past is an expiry, not a deletion, while the file loads (a later
/// command may still write to the key; it expires once loaded).
#[test]
fn the_aof_loader_is_obeyed_on_read_only_replicas_and_past_expiries_wait() {
    let dir = test_dir("obeyed");
    fs::create_dir_all(dir.join("appendonlydir")).unwrap();
    fs::write(dir.join("appendonlydir/appendonly.aof.manifest"), "file appendonly.aof.1.incr.aof seq 1 type i\n")
        .unwrap();
    let commands = [
        resp(&["SELECT", "9"]),
        resp(&["EVAL", "redis.call('set',KEYS[1],'100')", "1", "foo"]),
        resp(&["EVAL", "redis.call('incr',KEYS[1])", "1", "foo"]),
        resp(&["RPUSH", "list", "a"]),
        resp(&["PEXPIREAT", "list", "1000"]),
        resp(&["RPUSH", "list", "b"]),
    ]
    .concat();
    fs::write(dir.join("appendonlydir/appendonly.aof.1.incr.aof"), commands).unwrap();
    let server = Server::start(&[
        "--dir",
        dir.to_str().unwrap(),
        "--appendonly",
        "yes",
        "--replica-read-only",
        "yes",
        "--replicaof",
        "127.0.0.1 0",
    ]);
    let mut con = server.conn();
    let _: () = redis::cmd("SELECT").arg(9).query(&mut con).unwrap();
    let foo: Option<String> = redis::cmd("GET").arg("foo").query(&mut con).unwrap();
    assert_eq!(foo.as_deref(), Some("101"));
    // On a replica the expired list is hidden, not deleted: it held both elements with the TTL.
    let len: i64 = redis::cmd("LLEN").arg("list").query(&mut con).unwrap();
    assert_eq!(len, 0);
    let _: () = redis::cmd("REPLICAOF").arg("NO").arg("ONE").query(&mut con).unwrap();
    let ttl: i64 = redis::cmd("PTTL").arg("list").query(&mut con).unwrap();
    assert_eq!(ttl, -2);
    drop(server);
    // A master loading the same list commands: the push after the past PEXPIREAT goes to the
    // expiring list, so nothing is left once loaded (deleting at the PEXPIREAT left ["b"]).
    let dir = test_dir("past-expiry");
    fs::create_dir_all(dir.join("appendonlydir")).unwrap();
    fs::write(dir.join("appendonlydir/appendonly.aof.manifest"), "file appendonly.aof.1.incr.aof seq 1 type i\n")
        .unwrap();
    let list = [resp(&["RPUSH", "list", "a"]), resp(&["PEXPIREAT", "list", "1000"]), resp(&["RPUSH", "list", "b"])];
    fs::write(dir.join("appendonlydir/appendonly.aof.1.incr.aof"), list.concat()).unwrap();
    let server = Server::start(&["--dir", dir.to_str().unwrap(), "--appendonly", "yes"]);
    let len: i64 = redis::cmd("LLEN").arg("list").query(&mut server.conn()).unwrap();
    assert_eq!(len, 0);
}

/// aof-timestamp-enabled: `#TS:` annotations head the incr file's writes and a base of
/// commands (as Redis writes them), and a file holding them loads again.
#[test]
fn timestamp_annotations_head_incr_and_base_files() {
    let dir = test_dir("timestamps");
    let args = ferrous_args(&dir, &["--aof-timestamp-enabled", "yes", "--aof-use-rdb-preamble", "no"]);
    let server = Server::start(&args);
    let mut con = server.conn();
    let _: () = redis::cmd("SET").arg("foo").arg("bar").query(&mut con).unwrap();
    let incr = dir.join("appendonlydir/appendonly.aof.1.incr.aof");
    assert!(wait_until(Duration::from_secs(5), || fs::read(&incr).is_ok_and(|b| b.starts_with(b"#TS:"))));
    rewrite(&mut con);
    let base = fs::read(dir.join("appendonlydir/appendonly.aof.2.base.aof")).expect("a base of commands");
    assert!(base.starts_with(b"#TS:"), "{}", String::from_utf8_lossy(&base[..base.len().min(40)]));
    shutdown_ferrous(server);
    let server = Server::start(&args);
    let foo: String = redis::cmd("GET").arg("foo").query(&mut server.conn()).unwrap();
    assert_eq!(foo, "bar");
}

/// Function libraries survive an AOF rewrite and a restart, with and without the RDB preamble
/// (the preamble's libraries were dropped by the loader, so FUNCTION LIST came back empty).
#[test]
fn function_libraries_survive_a_rewrite_and_a_restart() {
    for preamble in ["yes", "no"] {
        let dir = test_dir(&format!("functions-{preamble}"));
        let args = ferrous_args(&dir, &["--aof-use-rdb-preamble", preamble]);
        let ferrous = Server::start(&args);
        let mut con = ferrous.conn();
        let code = "#!lua name=mylib\nredis.register_function('f1', function() return 7 end)";
        let name: String = redis::cmd("FUNCTION").arg("LOAD").arg(code).query(&mut con).unwrap();
        assert_eq!(name, "mylib");
        rewrite(&mut con);
        shutdown_ferrous(ferrous);
        let ferrous = Server::start(&args);
        let mut con = ferrous.conn();
        let got: i64 = redis::cmd("FCALL").arg("f1").arg(0).query(&mut con).expect("f1 after the restart");
        assert_eq!(got, 7, "preamble {preamble}");
        shutdown_ferrous(ferrous);
    }
}

/// DEBUG LOADAOF loads as start-up does, with the server marked loading: a slow script of the
/// file ("Slow script detected" logged once it runs past busy-reply-threshold) steps aside, and
/// meanwhile other clients — on the same worker thread too — get -LOADING, as from Redis.
#[test]
fn debug_loadaof_answers_loading_while_a_slow_script_of_the_file_runs() {
    let dir = test_dir("slow-script");
    let d = dir.to_str().unwrap();
    let args = ["--dir", d, "--appendonly", "yes", "--aof-use-rdb-preamble", "no", "--enable-debug-command", "yes"];
    let server = Server::start(&[&args[..], &["--lua-time-limit", "1", "--worker-threads", "1"]].concat());
    let mut con = server.conn();
    let _: () = query(&mut con, &["SET", "x", "old"]);
    let script = "redis.call('set',KEYS[1],'y'); for i=1,1000000 do redis.call('ping') end return 'ok'";
    let sha: String = query(&mut con, &["SCRIPT", "LOAD", script]);
    fs::write(
        dir.join("appendonlydir/appendonly.aof.1.incr.aof"),
        [resp(&["SELECT", "0"]), resp(&["EVAL", script, "1", "x"])].concat(),
    )
    .unwrap();
    let mut loader = server.raw();
    loader.send_cmd(&["DEBUG", "LOADAOF"]);
    let mut other = server.raw();
    let mut seen = Vec::new();
    let answered = wait_until(Duration::from_secs(30), || {
        seen = other.cmd(&["PING"]);
        seen.starts_with(b"-LOADING")
    });
    assert!(answered, "PING during the load: {}", String::from_utf8_lossy(&seen));
    // A debug build under load runs the script's million calls slowly: allow for it.
    assert_eq!(loader.try_read_reply(Duration::from_secs(120)).expect("the DEBUG LOADAOF reply"), b"+OK\r\n");
    assert_eq!(other.cmd(&["PING"]), b"+PONG\r\n");
    assert_eq!(other.cmd(&["GET", "x"]), b"$1\r\ny\r\n");
    let log = server.log();
    let line = log.lines().find(|l| l.contains("Slow script detected")).expect("the slow-script warning");
    assert!(
        line.ends_with(&format!(
            "You can try killing the script using the SCRIPT KILL command. Script name is: {sha}."
        )),
        "{line}"
    );
}

/// Turning the AOF off stops a rewrite in progress, as Redis kills its AOF child: CONFIG SET
/// returns once it has stopped, its temporary file is gone, and a new rewrite may start.
#[test]
fn turning_the_aof_off_stops_a_rewrite_in_progress() {
    let dir = test_dir("kill-rewrite");
    let d = dir.to_str().expect("utf-8 path");
    let ferrous = Server::start(&["--dir", d, "--aof-use-rdb-preamble", "no"]);
    let mut fc = ferrous.conn();
    let _: () = query(&mut fc, &["CONFIG", "SET", "appendonly", "yes"]);
    assert!(wait_until(common::BACKGROUND_WORK, || info_field(&mut fc, "aof_rewrite_in_progress") == "0"));
    let _: () = query(&mut fc, &["SET", "k", "v"]);
    let _: () = query(&mut fc, &["CONFIG", "SET", "rdb-key-save-delay", "10000000"]);
    let _: String = query(&mut fc, &["BGREWRITEAOF"]);
    assert_eq!(info_field(&mut fc, "aof_rewrite_in_progress"), "1");
    let _: () = query(&mut fc, &["CONFIG", "SET", "appendonly", "no"]);
    assert_eq!(info_field(&mut fc, "aof_rewrite_in_progress"), "0");
    assert!(ferrous.log().contains("Killing running AOF rewrite child"), "{}", ferrous.log());
    let temp = fs::read_dir(dir.join("appendonlydir"))
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("temp-rewriteaof-bg"));
    assert_eq!(temp.count(), 0);
    let _: () = query(&mut fc, &["CONFIG", "SET", "rdb-key-save-delay", "0"]);
    let started: String = query(&mut fc, &["BGREWRITEAOF"]);
    assert_eq!(started, "Background append only file rewriting started");
}

/// A transaction is written as Redis 7.2 propagates it: MULTI first, then the SELECT its
/// first command needs (MULTI and EXEC belong to no database), and SET ... PXAT given by the
/// client verbatim.
#[test]
fn multi_comes_before_select_and_pxat_is_verbatim() {
    let dir = test_dir("multi-select");
    let d = dir.to_str().expect("utf-8 path");
    let ferrous = Server::start(&["--dir", d, "--appendonly", "yes"]);
    let mut fc = ferrous.conn();
    let _: () = redis::cmd("SELECT").arg(3).query(&mut fc).unwrap();
    let _: () =
        redis::pipe().atomic().cmd("SET").arg("a").arg("1").cmd("SET").arg("b").arg("2").query(&mut fc).unwrap();
    let _: () = query(&mut fc, &["SET", "c", "3", "pxat", "4000000000000"]);
    let incr = dir.join("appendonlydir/appendonly.aof.1.incr.aof");
    let expected = [
        resp(&["MULTI"]),
        resp(&["SELECT", "3"]),
        resp(&["SET", "a", "1"]),
        resp(&["SET", "b", "2"]),
        resp(&["EXEC"]),
        resp(&["SET", "c", "3", "pxat", "4000000000000"]),
    ]
    .concat();
    assert!(
        wait_until(Duration::from_secs(5), || fs::read_to_string(&incr).is_ok_and(|t| t.ends_with(&expected))),
        "{:?}",
        fs::read_to_string(&incr)
    );
}

/// The stand-in for the save's fork child (see `server/save_child.rs`): found as the
/// server's child process and killed with SIGKILL, as Redis's tests kill a rewrite's child.
fn kill_save_child(server: &Server) {
    let mut pid = String::new();
    let found = wait_until(Duration::from_secs(10), || {
        let out = Command::new("pgrep").arg("-P").arg(server.pid().to_string()).output().expect("pgrep");
        pid = String::from_utf8_lossy(&out.stdout).lines().next().unwrap_or("").to_string();
        !pid.is_empty()
    });
    assert!(found, "no child process");
    assert!(Command::new("kill").arg("-9").arg(&pid).status().expect("kill").success());
}

/// Wait for the rewrite in progress to end, and return whether it ended well.
fn rewrite_ended(con: &mut redis::Connection) -> bool {
    assert!(wait_until(Duration::from_secs(30), || info_field(con, "aof_rewrite_in_progress") == "0"));
    info_field(con, "aof_last_bgrewrite_status") == "ok"
}

fn aof_file(dir: &Path, name: &str) -> bool {
    dir.join("appendonlydir").join(name).exists()
}

/// `aof-disable-auto-gc yes` keeps the history files of each rewrite (listed newest first,
/// type h, as Redis 7.2 writes them); setting it back to no deletes them at once.
#[test]
fn history_files_stay_with_auto_gc_disabled_until_it_is_enabled_again() {
    let dir = test_dir("auto-gc");
    let ferrous = Server::start(&ferrous_args(&dir, &["--aof-disable-auto-gc", "yes"]));
    let mut fc = ferrous.conn();
    let _: () = query(&mut fc, &["SET", "k", "v"]);
    rewrite(&mut fc);
    let _: () = query(&mut fc, &["SET", "k2", "v"]);
    rewrite(&mut fc);
    assert_eq!(
        manifest(&dir),
        "file appendonly.aof.3.base.rdb seq 3 type b\nfile appendonly.aof.2.incr.aof seq 2 type h\n\
         file appendonly.aof.2.base.rdb seq 2 type h\nfile appendonly.aof.1.incr.aof seq 1 type h\n\
         file appendonly.aof.1.base.rdb seq 1 type h\nfile appendonly.aof.3.incr.aof seq 3 type i\n"
    );
    for f in ["appendonly.aof.1.base.rdb", "appendonly.aof.2.base.rdb", "appendonly.aof.1.incr.aof"] {
        assert!(aof_file(&dir, f), "{f} deleted");
    }
    let _: () = query(&mut fc, &["CONFIG", "SET", "aof-disable-auto-gc", "no"]);
    assert_eq!(
        manifest(&dir),
        "file appendonly.aof.3.base.rdb seq 3 type b\nfile appendonly.aof.3.incr.aof seq 3 type i\n"
    );
    for f in ["appendonly.aof.1.base.rdb", "appendonly.aof.2.base.rdb", "appendonly.aof.1.incr.aof"] {
        assert!(!aof_file(&dir, f), "{f} kept");
    }
    assert!(!ferrous.log().contains("does not apply"), "{}", ferrous.log());
}

/// Three rewrites in a row whose child is killed: each left a new incr file; then automatic
/// rewrites wait (Redis's "triggered the limit" back-off) and open no more incr files, while
/// BGREWRITEAOF still runs at once and, succeeding, ends the back-off.
#[test]
fn repeated_rewrite_failures_delay_automatic_rewrites_but_not_bgrewriteaof() {
    let dir = test_dir("rewrite-limit");
    let ferrous = Server::start(&ferrous_args(&dir, &["--auto-aof-rewrite-percentage", "0"]));
    let mut fc = ferrous.conn();
    let _: () = query(&mut fc, &["CONFIG", "SET", "rdb-key-save-delay", "10000000"]);
    let _: () = query(&mut fc, &["SET", "k", "v"]);
    for _ in 0..3 {
        let _: String = query(&mut fc, &["BGREWRITEAOF"]);
        kill_save_child(&ferrous);
        assert!(!rewrite_ended(&mut fc));
    }
    assert_eq!(info_field(&mut fc, "aof_rewrites_consecutive_failures"), "3");
    assert!(ferrous.log().contains("Background AOF rewrite terminated by signal 9"), "{}", ferrous.log());
    let four_incrs = "file appendonly.aof.1.base.rdb seq 1 type b\nfile appendonly.aof.1.incr.aof seq 1 type i\n\
         file appendonly.aof.2.incr.aof seq 2 type i\nfile appendonly.aof.3.incr.aof seq 3 type i\n\
         file appendonly.aof.4.incr.aof seq 4 type i\n";
    assert_eq!(manifest(&dir), four_incrs);
    let _: () =
        query(&mut fc, &["CONFIG", "SET", "auto-aof-rewrite-percentage", "1", "auto-aof-rewrite-min-size", "1kb"]);
    let _: () = query(&mut fc, &["SET", "x", &"x".repeat(1024)]);
    let limited = "Background AOF rewrite has repeatedly failed and triggered the limit, will retry in 1 minutes";
    assert!(wait_until(common::BACKGROUND_WORK, || ferrous.log().contains(limited)), "{}", ferrous.log());
    assert_eq!(info_field(&mut fc, "aof_rewrite_in_progress"), "0");
    assert_eq!(manifest(&dir), four_incrs);
    let _: () = query(&mut fc, &["CONFIG", "SET", "rdb-key-save-delay", "0"]);
    rewrite(&mut fc);
    assert_eq!(info_field(&mut fc, "aof_rewrites_consecutive_failures"), "0");
    assert_eq!(
        manifest(&dir),
        "file appendonly.aof.2.base.rdb seq 2 type b\nfile appendonly.aof.5.incr.aof seq 5 type i\n"
    );
}

/// AOF turned on at runtime writes to a temporary incr file until its first rewrite succeeds:
/// a rewrite whose child is killed removes that file (no manifest, no base yet), schedules the
/// next one at once, and WAITAOF counts the local fsync only once a rewrite succeeded.
#[test]
fn a_failed_first_rewrite_drops_the_temporary_incr_file_and_is_retried() {
    let dir = test_dir("temp-incr");
    let d = dir.to_str().expect("utf-8 path");
    let ferrous = Server::start(&["--dir", d, "--appendonly", "no", "--enable-debug-command", "yes"]);
    let mut fc = ferrous.conn();
    // Writes in another database than 0: each temporary incr file selects it again.
    let _: () = query(&mut fc, &["SELECT", "9"]);
    let _: () = query(&mut fc, &["CONFIG", "SET", "rdb-key-save-delay", "10000000"]);
    let _: () = query(&mut fc, &["SET", "k", "v"]);
    let _: () = query(&mut fc, &["CONFIG", "SET", "appendonly", "yes"]);
    assert_eq!(info_field(&mut fc, "aof_rewrite_in_progress"), "1");
    assert!(aof_file(&dir, "temp-appendonly.aof.incr"));
    // Nothing is durable yet: WAITAOF's local count stays 0.
    let acks: Vec<i64> = query(&mut fc, &["WAITAOF", "1", "0", "100"]);
    assert_eq!(acks, [0, 0]);
    kill_save_child(&ferrous);
    let removed = "Removing the temp incr aof file temp-appendonly.aof.incr in the background";
    assert!(wait_until(common::BACKGROUND_WORK, || ferrous.log().contains(removed)), "{}", ferrous.log());
    assert!(!aof_file(&dir, "appendonly.aof.manifest"));
    assert!(!aof_file(&dir, "appendonly.aof.1.base.rdb"));
    // The next rewrite starts by itself (it also waits, and is killed again).
    assert!(wait_until(common::BACKGROUND_WORK, || info_field(&mut fc, "aof_rewrite_in_progress") == "1"));
    let _: () = query(&mut fc, &["SET", "k1", "v"]);
    let _: () = query(&mut fc, &["CONFIG", "SET", "rdb-key-save-delay", "0"]);
    kill_save_child(&ferrous);
    assert!(wait_until(common::BACKGROUND_WORK, || ferrous.log().matches(removed).count() == 2));
    // (A child to start and a whole rewrite to run: on a loaded 2-core machine, CI's among
    // them, this took over 10 s once; 2 s alone.)
    assert!(wait_until(Duration::from_secs(30), || aof_file(&dir, "appendonly.aof.manifest")
        && info_field(&mut fc, "aof_rewrite_in_progress") == "0"));
    assert_eq!(
        manifest(&dir),
        "file appendonly.aof.1.base.rdb seq 1 type b\nfile appendonly.aof.1.incr.aof seq 1 type i\n"
    );
    let _: () = query(&mut fc, &["SET", "k2", "v"]);
    let acks: Vec<i64> = query(&mut fc, &["WAITAOF", "1", "0", "0"]);
    assert_eq!(acks, [1, 0]);
    let digest: String = query(&mut fc, &["DEBUG", "DIGEST"]);
    // DEBUG LOADAOF's data is no change since the last save.
    let _: () = query(&mut fc, &["DEBUG", "LOADAOF"]);
    assert_eq!(query::<String>(&mut fc, &["GET", "k2"]), "v");
    assert_eq!(query::<String>(&mut fc, &["DEBUG", "DIGEST"]), digest);
    assert_eq!(info_field(&mut fc, "rdb_changes_since_last_save"), "0");
}

/// The commands of the AOF's incr file, each one line, with every 13-digit number (a time in
/// milliseconds) written `<ms>`.
fn incr_commands(dir: &Path) -> Vec<String> {
    let incr = fs::read_dir(dir.join("appendonlydir"))
        .expect("appendonlydir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.to_string_lossy().ends_with(".incr.aof"))
        .expect("an incr file");
    let text = fs::read(incr).expect("read the incr file");
    let mut out = Vec::new();
    let mut at = 0;
    while at < text.len() {
        let len = reply_len(&text, at).expect("a whole command");
        let mut parts = Vec::new();
        let frame = String::from_utf8_lossy(&text[at..at + len]).to_string();
        for line in frame.split("\r\n").skip(1).filter(|l| !l.starts_with('$') && !l.is_empty()) {
            let masked = line.len() == 13 && line.bytes().all(|b| b.is_ascii_digit());
            parts.push(if masked { "<ms>".to_string() } else { line.to_string() });
        }
        out.push(parts.join(" "));
        at += len;
    }
    out
}

/// What one command propagates is one execution unit, as Redis 7 writes it: a write that first
/// deleted keys it found expired (DEL k, then SET k) or a command with several effects (DEL of
/// two expired keys, XREADGROUP's XCLAIMs) is wrapped in MULTI ... EXEC; SCAN's DELs
/// (touches_arbitrary_keys) and a lone DEL are not. Compared with Redis 7.0's AOF (Valkey 9 has
/// its own lazyfree defaults and stream effects).
#[test]
fn a_command_with_several_effects_is_one_transaction_as_in_the_oracle() {
    let Some(oracle) = redis_or_skip("a_command_with_several_effects_is_one_transaction_as_in_the_oracle") else {
        return;
    };
    let scenario = |con: &mut redis::Connection| {
        let _: () = query(con, &["DEBUG", "SET-ACTIVE-EXPIRE", "0"]);
        let now_ms = server_ms(con);
        // Ahead of the nine fsynced writes that follow, on a loaded machine too.
        let at = (now_ms + 1000).to_string();
        for k in ["k", "a", "b", "s1", "s2", "only"] {
            let _: () = query(con, &["SET", k, "v", "PXAT", &at]);
        }
        let _: () = query(con, &["XADD", "st", "1-0", "f", "v"]);
        let _: () = query(con, &["XADD", "st", "2-0", "f", "v"]);
        let _: () = query(con, &["XGROUP", "CREATE", "st", "g", "0"]);
        // Wait (without touching the keys) until they are past their time.
        let past = wait_until(Duration::from_secs(5), || server_ms(con) > now_ms + 1005);
        assert!(past);
        let _: () = query(con, &["SET", "k", "v2"]);
        let _: i64 = query(con, &["DEL", "a", "b"]);
        let _: redis::Value = query(con, &["SCAN", "0", "MATCH", "s*"]);
        let _: i64 = query(con, &["EXISTS", "only"]);
        let _: redis::Value = query(con, &["XREADGROUP", "GROUP", "g", "c", "STREAMS", "st", ">"]);
        let _: () = query(con, &["SET", "last", "1"]);
    };
    let odir = test_dir("units-oracle");
    let r = Redis::start(
        &oracle,
        &odir,
        &["--appendonly", "yes", "--appendfsync", "always", "--enable-debug-command", "yes"],
    );
    scenario(&mut r.conn());
    r.shutdown();
    let fdir = test_dir("units-ferrous");
    let d = fdir.to_str().unwrap();
    let f =
        Server::start(&["--dir", d, "--appendonly", "yes", "--appendfsync", "always", "--enable-debug-command", "yes"]);
    scenario(&mut f.conn());
    shutdown_ferrous(f);
    // SCAN meets s1 and s2 in its own order: compare their DELs as a set.
    let scan_order = |mut v: Vec<String>| {
        let i = v.iter().position(|c| c.starts_with("DEL s")).expect("SCAN's DELs");
        v[i..i + 2].sort();
        v
    };
    let (want, got) = (scan_order(incr_commands(&odir)), scan_order(incr_commands(&fdir)));
    assert!(want.iter().any(|c| c == "MULTI"), "the oracle wrapped nothing: {want:#?}");
    assert_eq!(got, want);
}
