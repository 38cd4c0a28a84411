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
