//! ferrous-server as a drop-in redis-server: every directive of Redis 7.0's configuration (at
//! its default, and the Redis test suite's own default.conf) starts it; CONFIG GET reports
//! Redis's defaults; CONFIG SET is atomic; CONFIG REWRITE keeps the file; `include`, the Unix
//! socket, daemonize with a pidfile and the start-up log lines work as redis-server's.

mod common;

use std::fs;
use std::time::Duration;

use common::{run_to_exit, wait_until, Server};

const EXIT_TIMEOUT: Duration = Duration::from_secs(10);

fn asset(name: &str) -> String {
    format!("{}/tests/assets/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn temp_path(name: &str) -> String {
    common::work_dir().join(format!("dropin-{}-{name}", std::process::id())).display().to_string()
}

fn config_get(con: &mut redis::Connection, name: &str) -> String {
    let v: Vec<String> = redis::cmd("CONFIG").arg("GET").arg(name).query(con).expect("CONFIG GET");
    assert_eq!(v.len(), 2, "CONFIG GET {name}: {v:?}");
    v[1].clone()
}

/// Every directive of a stock Redis 7.0.15 configuration, each at Redis's default, is accepted
/// and CONFIG GET shows the same value.
#[test]
fn every_redis_7_0_directive_at_its_default_starts_the_server() {
    let file = asset("redis-7.0-defaults.conf");
    let server = Server::start(&[file.as_str()]);
    let mut con = server.conn();
    let text = fs::read_to_string(&file).expect("read the asset");
    let mut checked = 0;
    for line in text.lines().filter(|l| !l.is_empty() && !l.starts_with('#')) {
        let (name, value) = line.split_once(' ').expect("name value");
        if matches!(name, "dir" | "save" | "port") {
            continue;
        }
        let expected = value.trim_matches('"');
        let got = config_get(&mut con, name);
        assert_eq!(got, expected, "CONFIG GET {name}");
        checked += 1;
    }
    assert!(checked > 150, "only {checked} directives checked");
}

/// The Redis test suite's default.conf (normal mode) starts the server, and the log has what
/// the suite waits for: ` PID: <pid>` and "Ready to accept connections".
#[test]
fn the_test_suites_default_conf_starts_the_server() {
    let pidfile = temp_path("suite.pid");
    let sock = temp_path("suite.sock");
    let file = asset("redis-test-default.conf");
    let server = Server::start(&[file.as_str(), "--pidfile", &pidfile, "--unixsocket", &sock]);
    let log = server.log();
    assert!(log.contains(&format!(" PID: {}", server.pid())), "log: {log}");
    assert!(log.contains("Ready to accept connections"), "log: {log}");
    assert!(log.contains("Server initialized"), "log: {log}");
    let mut con = server.conn();
    assert_eq!(config_get(&mut con, "notify-keyspace-events"), "AKE");
    assert_eq!(config_get(&mut con, "slave-serve-stale-data"), "yes");
    assert_eq!(config_get(&mut con, "propagation-error-behavior"), "panic");
    assert_eq!(fs::read_to_string(&pidfile).expect("pidfile").trim(), server.pid().to_string());
    // The Unix socket serves the same commands.
    #[cfg(unix)]
    {
        use std::io::{Read, Write};
        let mut s = std::os::unix::net::UnixStream::connect(&sock).expect("connect to the unix socket");
        s.write_all(b"*1\r\n$4\r\nPING\r\n").expect("write");
        let mut buf = [0u8; 7];
        s.read_exact(&mut buf).expect("read");
        assert_eq!(&buf, b"+PONG\r\n");
    }
}

/// `unixsocketperm` (CVE-2023-45145, fixed in Redis 7.2.2): the socket is at its path with the
/// configured mode, clients connect through it, and the private directory it was bound in
/// beside the path is gone.
#[cfg(unix)]
#[test]
fn the_unix_socket_has_unixsocketperm_and_serves() {
    use std::io::{Read, Write};
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};
    let dir = common::work_dir().join(format!("dropin-{}-sockdir", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    let sock = dir.join("redis.sock").display().to_string();
    for perm in ["700", "770"] {
        let server = Server::start(&["--unixsocket", &sock, "--unixsocketperm", perm]);
        let meta = fs::metadata(&sock).expect("the socket file");
        assert!(meta.file_type().is_socket());
        assert_eq!(format!("{:o}", meta.permissions().mode() & 0o777), perm);
        assert_eq!(config_get(&mut server.conn(), "unixsocketperm"), perm);
        let mut s = std::os::unix::net::UnixStream::connect(&sock).expect("connect to the unix socket");
        s.write_all(b"*1\r\n$4\r\nPING\r\n").expect("write");
        let mut buf = [0u8; 7];
        s.read_exact(&mut buf).expect("read");
        assert_eq!(&buf, b"+PONG\r\n");
        let names: Vec<String> =
            fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        assert_eq!(names, ["redis.sock"]);
    }
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn config_set_many_is_all_or_nothing_with_redis_errors() {
    let server = Server::start(&[]);
    let mut con = server.conn();
    let err = redis::cmd("CONFIG")
        .arg(&["SET", "maxmemory", "10mb", "maxmemory-policy", "bogus"])
        .query::<()>(&mut con)
        .unwrap_err()
        .to_string();
    assert!(err.contains("CONFIG SET failed (possibly related to argument 'maxmemory-policy')"), "{err}");
    assert_eq!(config_get(&mut con, "maxmemory"), "0", "nothing applied");
    let err = redis::cmd("CONFIG").arg(&["SET", "port", "7", "port", "8"]).query::<()>(&mut con).unwrap_err();
    assert!(err.to_string().contains("duplicate parameter"), "{err}");
    let err = redis::cmd("CONFIG").arg(&["SET", "daemonize", "yes"]).query::<()>(&mut con).unwrap_err();
    assert!(err.to_string().contains("can't set immutable config"), "{err}");
    // A port taken by another process: the apply step fails and the change is rolled back.
    let busy = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let busy_port = busy.local_addr().expect("addr").port().to_string();
    let err = redis::cmd("CONFIG")
        .arg(&["SET", "timeout", "55", "port", &busy_port])
        .query::<()>(&mut con)
        .unwrap_err()
        .to_string();
    assert!(err.contains("Unable to listen on this port"), "{err}");
    assert_eq!(config_get(&mut con, "timeout"), "0", "rolled back");
    assert_eq!(config_get(&mut con, "port"), server.port.to_string());
    // Aliases and hidden parameters.
    redis::cmd("CONFIG").arg(&["SET", "slave-read-only", "no", "key-load-delay", "5"]).query::<()>(&mut con).unwrap();
    assert_eq!(config_get(&mut con, "replica-read-only"), "no");
    assert_eq!(config_get(&mut con, "key-load-delay"), "5");
    let all: Vec<String> = redis::cmd("CONFIG").arg(&["GET", "*"]).query(&mut con).unwrap();
    assert!(!all.iter().any(|n| n == "key-load-delay"), "hidden parameters need their exact name");
    assert!(all.iter().any(|n| n == "slaveof"), "aliases match patterns");
}

#[test]
fn config_rewrite_keeps_comments_and_order() {
    let path = temp_path("rewrite.conf");
    fs::write(
        &path,
        "# my settings\nmaxmemory 1mb\n\n# keep me\nhz 20\nsave 100 10\nsave 200 20\nslave-read-only yes\n",
    )
    .expect("write config");
    let server = Server::start(&[path.as_str()]);
    let mut con = server.conn();
    redis::cmd("CONFIG")
        .arg(&["SET", "maxmemory", "2mb", "timeout", "30", "save", "300 30", "replica-read-only", "no"])
        .query::<()>(&mut con)
        .unwrap();
    redis::cmd("CONFIG").arg("REWRITE").query::<()>(&mut con).unwrap();
    let text = fs::read_to_string(&path).expect("read back");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "# my settings");
    assert_eq!(lines[1], "maxmemory 2mb");
    assert_eq!(lines[3], "# keep me");
    assert_eq!(lines[4], "hz 20");
    assert_eq!(lines[5], "save 300 30");
    assert!(lines.contains(&"replica-read-only no"), "{text}");
    assert!(lines.contains(&"# Generated by CONFIG REWRITE"), "{text}");
    assert!(lines.contains(&"timeout 30"), "{text}");
    // The rewritten file starts a server with the same values.
    drop(server);
    let again = Server::start(&[path.as_str()]);
    let mut con = again.conn();
    assert_eq!(config_get(&mut con, "maxmemory"), "2097152");
    assert_eq!(config_get(&mut con, "timeout"), "30");
    let _ = fs::remove_file(&path);
}

#[test]
fn include_and_rename_command() {
    let inc = temp_path("inc.conf");
    fs::write(&inc, "timeout 42\n").expect("write include");
    let main = temp_path("main.conf");
    fs::write(&main, format!("include {inc}\nrename-command flushdb badger\n")).expect("write config");
    let server = Server::start(&[main.as_str()]);
    let mut con = server.conn();
    assert_eq!(config_get(&mut con, "timeout"), "42");
    let err = redis::cmd("FLUSHDB").query::<()>(&mut con).unwrap_err().to_string();
    assert!(err.contains("unknown command"), "{err}");
    redis::cmd("BADGER").query::<()>(&mut con).expect("renamed FLUSHDB");
    let out = run_to_exit(&["--rename-command", "nosuchcmd", "x"], EXIT_TIMEOUT);
    assert!(!out.status.success());
    assert!(out.stderr.contains("No such command in rename-command") || out.stdout.contains("No such command"));
}

#[test]
fn version_help_and_test_memory() {
    let out = run_to_exit(&["--version"], EXIT_TIMEOUT);
    assert!(out.status.success());
    assert!(out.stdout.starts_with("Redis server v="), "{}", out.stdout);
    let out = run_to_exit(&["--test-memory", "10"], EXIT_TIMEOUT);
    assert!(!out.status.success());
    assert!(out.stderr.contains("--test-memory is not supported"), "{}", out.stderr);
}

#[cfg(unix)]
#[test]
fn daemonize_writes_the_pidfile_and_detaches() {
    let pidfile = temp_path("daemon.pid");
    let logfile = temp_path("daemon.log");
    let _ = fs::remove_file(&pidfile);
    let port = common::free_port().to_string();
    let out = run_to_exit(
        &["--port", &port, "--daemonize", "yes", "--pidfile", &pidfile, "--logfile", &logfile, "--save", ""],
        EXIT_TIMEOUT,
    );
    assert!(out.status.success(), "the parent exits at once");
    assert!(wait_until(Duration::from_secs(10), || fs::read_to_string(&pidfile).is_ok_and(|p| !p.trim().is_empty())));
    let pid = fs::read_to_string(&pidfile).unwrap().trim().to_string();
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}/")).unwrap();
    assert!(wait_until(Duration::from_secs(10), || client.get_connection().is_ok()));
    let mut con = client.get_connection().unwrap();
    let _ = redis::cmd("SHUTDOWN").arg("NOSAVE").query::<()>(&mut con);
    assert!(wait_until(Duration::from_secs(10), || !std::path::Path::new(&format!("/proc/{pid}")).exists()));
    assert!(!std::path::Path::new(&pidfile).exists(), "pidfile removed at exit");
    let log = fs::read_to_string(&logfile).unwrap_or_default();
    assert!(log.contains("Ready to accept connections"), "{log}");
}

// ---------------------------------------------------------------------------
// RDB files of newer servers: Valkey 9 (made by valkey-server 9.1.2), Redis 7.2 / 7.4 (built
// here byte by byte from the format).
// ---------------------------------------------------------------------------

/// A directory holding `dump.rdb` = `data`, for a server started with `--dir` there.
fn rdb_dir(name: &str, data: &[u8]) -> String {
    let dir = temp_path(name);
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).expect("create dir");
    fs::write(format!("{dir}/dump.rdb"), data).expect("write rdb");
    dir
}

#[test]
fn loads_a_valkey_9_rdb_and_names_its_producer() {
    let data = fs::read(asset("valkey-9.1.rdb")).expect("asset");
    assert_eq!(&data[..9], b"VALKEY080");
    let dir = rdb_dir("valkey", &data);
    let server = Server::start(&["--dir", &dir]);
    let mut con = server.conn();
    let get = |con: &mut redis::Connection, k: &str| -> Option<String> { redis::cmd("GET").arg(k).query(con).unwrap() };
    assert_eq!(get(&mut con, "s").as_deref(), Some("hello"));
    assert_eq!(get(&mut con, "n").as_deref(), Some("12345"));
    let l: Vec<String> = redis::cmd("LRANGE").arg(&["l", "0", "-1"]).query(&mut con).unwrap();
    assert_eq!(l, ["a", "b", "c"]);
    let h: Vec<String> = redis::cmd("HMGET").arg(&["h", "f", "f2"]).query(&mut con).unwrap();
    assert_eq!(h, ["v", "v2"]);
    let z: Vec<String> = redis::cmd("ZRANGE").arg(&["z", "0", "-1", "WITHSCORES"]).query(&mut con).unwrap();
    assert_eq!(z, ["a", "1", "b", "2.5"]);
    let si: i64 = redis::cmd("SCARD").arg("si").query(&mut con).unwrap();
    assert_eq!(si, 3);
    let ttl: i64 = redis::cmd("PEXPIRETIME").arg("e").query(&mut con).unwrap();
    assert_eq!(ttl, 4102444800000);
    let f: i64 = redis::cmd("FCALL").arg(&["vkf", "0"]).query(&mut con).unwrap();
    assert_eq!(f, 1, "the function library travelled too");
    redis::cmd("SELECT").arg(3).query::<()>(&mut con).unwrap();
    assert_eq!(get(&mut con, "d3").as_deref(), Some("v"));
    assert!(server.log().contains("Loading RDB produced by valkey version 9.1.2"), "{}", server.log());
}

#[test]
fn a_valkey_set_in_listpack_encoding_loads() {
    let data = fs::read(asset("valkey-9.1-set-listpack.rdb")).expect("asset");
    let dir = rdb_dir("valkey-setlp", &data);
    let port = common::free_port().to_string();
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_ferrous-server"))
        .args(["--port", &port, "--dir", &dir, "--save", ""])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}/")).unwrap();
    let mut child = child;
    let mut status = None;
    // Connections are accepted while the file loads: wait for a PONG (loaded) or the exit.
    let loaded = |client: &redis::Client| {
        client.get_connection().is_ok_and(|mut c| redis::cmd("PING").query::<String>(&mut c).is_ok())
    };
    let up = wait_until(Duration::from_secs(10), || {
        status = child.try_wait().unwrap();
        status.is_some() || (common::listens_on(child.id(), port.parse().unwrap()) && loaded(&client))
    });
    assert!(up, "neither started nor refused");
    if status.is_some() {
        let mut out = String::new();
        std::io::Read::read_to_string(child.stdout.as_mut().unwrap(), &mut out).unwrap();
        panic!("refused a listpack set (RDB type 20): {out}");
    }
    let mut con = client.get_connection().unwrap();
    let mut m: Vec<String> = redis::cmd("SMEMBERS").arg("sl").query(&mut con).unwrap();
    m.sort();
    assert_eq!(m, ["a", "b", "c"]);
    let _ = child.kill();
    let _ = child.wait();
}

/// An RDB file of `version` written by "Redis `redis_ver`": a string with an expiry in db 0
/// and a hash (listpack) in db 2; RDB 12 files carry a SLOT_INFO opcode before the keys.
fn hand_made_rdb(version: u16, redis_ver: &str) -> Vec<u8> {
    fn string(out: &mut Vec<u8>, s: &[u8]) {
        assert!(s.len() < 64);
        out.push(s.len() as u8);
        out.extend_from_slice(s);
    }
    let mut out = format!("REDIS{version:04}").into_bytes();
    for (k, v) in [("redis-ver", redis_ver), ("redis-bits", "64"), ("ctime", "1700000000")] {
        out.push(0xfa);
        string(&mut out, k.as_bytes());
        string(&mut out, v.as_bytes());
    }
    out.extend_from_slice(&[0xfe, 0x00, 0xfb, 0x01, 0x01]);
    if version >= 12 {
        out.extend_from_slice(&[0xf4, 0x00, 0x01, 0x01]);
    }
    out.push(0xfc);
    out.extend_from_slice(&4102444800000u64.to_le_bytes());
    out.push(0x00);
    string(&mut out, b"greeting");
    string(&mut out, b"hi there");
    out.extend_from_slice(&[0xfe, 0x02]);
    // A listpack hash {f: v}: header (total bytes, 2 entries), 2 one-byte strings, end.
    let lp: Vec<u8> = vec![15, 0, 0, 0, 2, 0, 0x81, b'f', 2, 0x81, b'v', 2, 0xff];
    let mut lp = lp;
    lp[0] = lp.len() as u8;
    out.push(16);
    string(&mut out, b"hash");
    string(&mut out, &lp);
    out.push(0xff);
    let crc = crc::Crc::<u64>::new(&crc::CRC_64_REDIS).checksum(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

#[test]
fn loads_redis_7_2_and_7_4_rdb_formats() {
    for (version, ver) in [(11u16, "7.2.4"), (12, "7.4.0")] {
        let dir = rdb_dir(&format!("rdb{version}"), &hand_made_rdb(version, ver));
        let server = Server::start(&["--dir", &dir]);
        let mut con = server.conn();
        let v: String = redis::cmd("GET").arg("greeting").query(&mut con).unwrap();
        assert_eq!(v, "hi there");
        let t: i64 = redis::cmd("PEXPIRETIME").arg("greeting").query(&mut con).unwrap();
        assert_eq!(t, 4102444800000);
        redis::cmd("SELECT").arg(2).query::<()>(&mut con).unwrap();
        let f: String = redis::cmd("HGET").arg(&["hash", "f"]).query(&mut con).unwrap();
        assert_eq!(f, "v");
        let log = server.log();
        assert!(log.contains(&format!("Loading RDB produced by version {ver}\n")), "{log}");
        assert!(log.contains(&format!("RDB format version {version}\n")), "{log}");
    }
}

#[test]
fn metrics_port_serves_prometheus_text() {
    let mport = common::free_port().to_string();
    let server = Server::start(&["--metrics-port", &mport]);
    let mut con = server.conn();
    redis::cmd("SET").arg(&["k", "v"]).query::<()>(&mut con).unwrap();
    let _ = redis::cmd("GET").arg("k").query::<String>(&mut con).unwrap();
    let _ = redis::cmd("NOSUCHCMD").query::<()>(&mut con);
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", mport.parse::<u16>().unwrap())).expect("connect to metrics");
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut body = String::new();
    s.read_to_string(&mut body).unwrap();
    assert!(body.starts_with("HTTP/1.1 200 OK"), "{body}");
    assert!(body.contains("\nredis_connected_clients 1"), "{body}");
    assert!(body.contains("redis_commands_total{cmd=\"set\"} 1"), "{body}");
    assert!(body.contains("redis_db_keys{db=\"db0\"} 1"), "{body}");
    assert!(body.contains("redis_errors_total{err=\"ERR\"} 1"), "{body}");
    assert!(body.contains("redis_command_latency_seconds_count{cmd=\"get\"} 1"), "{body}");
    assert!(body.contains("redis_command_latency_seconds_bucket{cmd=\"get\",le=\"+Inf\"} 1"), "{body}");
    assert!(body.contains("role=\"master\""), "{body}");
}

#[test]
fn migrate_moves_keys_to_another_server() {
    let source = Server::start(&[]);
    let target = Server::start(&[]);
    let mut s = source.conn();
    let mut t = target.conn();
    let port = target.port.to_string();
    let nokey: String = redis::cmd("MIGRATE").arg(&["127.0.0.1", &port, "nokey", "0", "5000"]).query(&mut s).unwrap();
    assert_eq!(nokey, "NOKEY");
    redis::cmd("SET").arg(&["a", "1", "PX", "600000"]).query::<()>(&mut s).unwrap();
    redis::cmd("RPUSH").arg(&["b", "x", "y"]).query::<()>(&mut s).unwrap();
    redis::cmd("SET").arg(&["c", "3"]).query::<()>(&mut s).unwrap();
    let ok: String = redis::cmd("MIGRATE").arg(&["127.0.0.1", &port, "a", "3", "5000"]).query(&mut s).unwrap();
    assert_eq!(ok, "OK");
    let ok: String = redis::cmd("MIGRATE")
        .arg(&["127.0.0.1", &port, "", "3", "5000", "COPY", "KEYS", "b", "c"])
        .query(&mut s)
        .unwrap();
    assert_eq!(ok, "OK");
    let left: i64 = redis::cmd("EXISTS").arg(&["a", "b", "c"]).query(&mut s).unwrap();
    assert_eq!(left, 2, "a moved, b and c copied");
    redis::cmd("SELECT").arg(3).query::<()>(&mut t).unwrap();
    let a: String = redis::cmd("GET").arg("a").query(&mut t).unwrap();
    assert_eq!(a, "1");
    let ttl: i64 = redis::cmd("PTTL").arg("a").query(&mut t).unwrap();
    assert!(ttl > 500_000, "the TTL travels: {ttl}");
    let b: Vec<String> = redis::cmd("LRANGE").arg(&["b", "0", "-1"]).query(&mut t).unwrap();
    assert_eq!(b, ["x", "y"]);
    // Without REPLACE the target refuses an existing key.
    let err = redis::cmd("MIGRATE").arg(&["127.0.0.1", &port, "c", "3", "5000"]).query::<()>(&mut s).unwrap_err();
    assert!(err.to_string().contains("Target instance replied with error: BUSYKEY"), "{err}");
    let ok: String =
        redis::cmd("MIGRATE").arg(&["127.0.0.1", &port, "c", "3", "5000", "REPLACE"]).query(&mut s).unwrap();
    assert_eq!(ok, "OK");
    let err = redis::cmd("MIGRATE").arg(&["127.0.0.1", "1", "b", "0", "100"]).query::<()>(&mut s).unwrap_err();
    assert!(err.to_string().contains("IOERR"), "{err}");
}

#[test]
fn a_failed_bgsave_stops_writes_with_misconf() {
    let dir = temp_path("misconf");
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    let server = Server::start(&["--dir", &dir, "--save", "3600 1"]);
    let mut con = server.conn();
    redis::cmd("SET").arg(&["k", "v"]).query::<()>(&mut con).unwrap();
    fs::remove_dir_all(&dir).unwrap();
    let _: String = redis::cmd("BGSAVE").query(&mut con).unwrap();
    let info = |con: &mut redis::Connection| -> String { redis::cmd("INFO").arg("persistence").query(con).unwrap() };
    assert!(wait_until(Duration::from_secs(10), || info(&mut con).contains("rdb_last_bgsave_status:err")));
    let err = redis::cmd("SET").arg(&["k", "v2"]).query::<()>(&mut con).unwrap_err().to_string();
    assert!(err.contains("MISCONF"), "{err}");
    let _: String = redis::cmd("GET").arg("k").query(&mut con).expect("reads still work");
    redis::cmd("CONFIG").arg(&["SET", "stop-writes-on-bgsave-error", "no"]).query::<()>(&mut con).unwrap();
    redis::cmd("SET").arg(&["k", "v3"]).query::<()>(&mut con).expect("allowed when the option is off");
    redis::cmd("CONFIG").arg(&["SET", "stop-writes-on-bgsave-error", "yes"]).query::<()>(&mut con).unwrap();
    fs::create_dir_all(&dir).unwrap();
    let _: String = redis::cmd("BGSAVE").query(&mut con).unwrap();
    assert!(wait_until(Duration::from_secs(10), || info(&mut con).contains("rdb_last_bgsave_status:ok")));
    redis::cmd("SET").arg(&["k", "v4"]).query::<()>(&mut con).expect("a good save allows writes again");
}

/// While the data loads, clients are served: commands without the `loading` flag answer
/// -LOADING, INFO says loading:1, CONFIG SET refuses the parameters Redis refuses then.
#[test]
fn clients_are_answered_loading_while_the_data_loads() {
    let dir = temp_path("loading");
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    {
        let server = Server::start(&["--dir", &dir, "--enable-debug-command", "yes"]);
        let mut con = server.conn();
        redis::cmd("DEBUG").arg(&["POPULATE", "20000"]).query::<()>(&mut con).unwrap();
        redis::cmd("SAVE").query::<()>(&mut con).unwrap();
    }
    let port = common::free_port().to_string();
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_ferrous-server"))
        .args(["--port", &port, "--dir", &dir, "--save", "", "--key-load-delay", "200"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    // Killed however the test ends.
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let child = Kill(child);
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}/")).unwrap();
    let ours = |c: &Kill| common::listens_on(c.0.id(), port.parse().unwrap());
    assert!(wait_until(Duration::from_secs(10), || ours(&child) && client.get_connection().is_ok()));
    let mut con = client.get_connection().unwrap();
    let info: String = redis::cmd("INFO").arg("persistence").query(&mut con).unwrap();
    assert!(info.contains("loading:1"), "{info}");
    // The progress: what was read of the file, its share, the time left.
    let size = fs::metadata(format!("{dir}/dump.rdb")).unwrap().len();
    assert!(info.contains(&format!("loading_total_bytes:{size}\r\n")), "{info}");
    let field = |c: &mut redis::Connection, f: &str| common::info_field(c, "persistence", f);
    assert!(wait_until(Duration::from_secs(10), || field(&mut con, "loading_loaded_bytes") != "0"));
    let perc: f64 = field(&mut con, "loading_loaded_perc").parse().unwrap();
    assert!(perc > 0.0 && perc <= 100.0, "{perc}");
    let err = redis::cmd("GET").arg("key:1").query::<Option<String>>(&mut con).unwrap_err().to_string();
    assert!(err.contains("loading the dataset"), "{err}");
    redis::cmd("CONFIG").arg(&["SET", "loglevel", "debug"]).query::<()>(&mut con).expect("allowed while loading");
    let err = redis::cmd("CONFIG").arg(&["SET", "appendonly", "yes"]).query::<()>(&mut con).unwrap_err().to_string();
    assert!(err.contains("loading the dataset"), "{err}");
    redis::cmd("CONFIG").arg(&["SET", "key-load-delay", "0"]).query::<()>(&mut con).unwrap();
    assert!(wait_until(Duration::from_secs(20), || {
        redis::cmd("GET").arg("key:1").query::<Option<String>>(&mut con).is_ok()
    }));
    let v: String = redis::cmd("GET").arg("key:19999").query(&mut con).unwrap();
    assert_eq!(v, "value:19999");
}
