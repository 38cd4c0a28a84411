//! Integration tests of server behaviour that the differential tests (`tests/differential.rs`,
//! reply-by-reply comparison with a real Redis) cannot express: process start-up and exit,
//! signals, connection limits and timeouts, protocol errors that close the connection, large
//! pipelines, authentication, one connection acting on another (CLIENT KILL / LIST), concurrency
//! across the sharded keyspace, active expiry and the SCAN guarantee under concurrent resizes.
//!
//! Every test starts its own `ferrous-server` on a free port (see `common::Server`) and talks
//! to it with the `redis` crate, or over a raw TCP socket where the bytes on the wire matter.

mod common;

use common::{encode, query, run_to_exit, wait_until, work_dir, Closed, Raw, Server};
use std::collections::HashSet;
use std::fs;
use std::io::Write;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

/// Bound on a process exiting by itself (bad start-up options, SIGTERM, SHUTDOWN).
const EXIT_TIMEOUT: Duration = Duration::from_secs(10);
/// Bound on the server closing a connection it should close.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

// ---------------------------------------------------------------------------
// Helpers.
// ---------------------------------------------------------------------------

/// Runs a command that must fail, and returns the error's text.
fn query_err(con: &mut redis::Connection, args: &[&str]) -> String {
    match redis::cmd(args[0]).arg(&args[1..]).query::<redis::Value>(con) {
        Ok(v) => panic!("{args:?} should have failed, got {v:?}"),
        Err(e) => e.to_string(),
    }
}

/// One `field:value` line of INFO `section`.
fn info_field(con: &mut redis::Connection, section: &str, field: &str) -> String {
    let info: String = query(con, &["INFO", section]);
    let prefix = format!("{field}:");
    info.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no {field} in INFO {section}: {info}"))
        .to_string()
}

/// The line of CLIENT LIST describing client `id`, if any.
fn client_list_line(con: &mut redis::Connection, id: i64) -> Option<String> {
    let list: String = query(con, &["CLIENT", "LIST"]);
    let prefix = format!("id={id} ");
    list.lines().find(|l| l.starts_with(&prefix)).map(String::from)
}

/// The client id of a raw connection.
fn raw_client_id(raw: &mut Raw) -> i64 {
    let reply = raw.cmd(&["CLIENT", "ID"]);
    let text = String::from_utf8(reply).expect("ASCII reply");
    text.trim().strip_prefix(':').and_then(|n| n.parse().ok()).unwrap_or_else(|| panic!("CLIENT ID gave {text:?}"))
}

/// Lossy text of raw bytes, for assertions that print nicely.
fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A path in the work directory unique to this test process and `name`.
fn temp_path(name: &str) -> String {
    work_dir().join(format!("{}-{name}", std::process::id())).display().to_string()
}

/// Sends `signal` (e.g. "TERM") to process `pid` with kill(1).
fn send_signal(pid: u32, signal: &str) {
    let status = Command::new("kill").arg(format!("-{signal}")).arg(pid.to_string()).status().expect("run kill");
    assert!(status.success(), "kill -{signal} {pid} failed");
}

/// Connects a raw client that the server admitted (answers PING). Right after another
/// connection closes the server may still count it, so a `max number of clients` rejection is
/// retried until `timeout`.
fn connect_admitted(server: &Server, timeout: Duration) -> Raw {
    let mut admitted = None;
    let ok = wait_until(timeout, || {
        let mut raw = server.raw();
        raw.send(b"PING\r\n");
        let pong = matches!(raw.try_read_reply(Duration::from_secs(2)), Ok(r) if r == b"+PONG\r\n");
        if pong {
            admitted = Some(raw);
        }
        pong
    });
    assert!(ok, "no connection admitted within {timeout:?}");
    admitted.expect("admitted connection")
}

// ---------------------------------------------------------------------------
// 1. Start-up: options, config files, --version.
// ---------------------------------------------------------------------------

/// MEMORY DOCTOR / STATS inside a transaction read the key counts through the transaction's
/// locks: MEMORY DOCTOR waited for a shard lock its own EXEC held, and the whole server hung.
#[test]
fn memory_reports_inside_exec_answer() {
    let server = Server::start(&[]);
    for queued in [&["MEMORY", "DOCTOR"][..], &["SET", "a", "1"], &["MEMORY", "STATS"], &["MEMORY", "DOCTOR"]] {
        let mut raw = server.raw();
        raw.cmd(&["MULTI"]);
        if queued[0] == "MEMORY" && queued[1] == "STATS" {
            raw.cmd(&["SET", "a", "1"]);
        }
        raw.cmd(queued);
        raw.send_cmd(&["EXEC"]);
        let reply = raw.try_read_reply(Duration::from_secs(10)).expect("EXEC answered");
        assert!(reply.starts_with(b"*"), "{}", text(&reply));
    }
    assert_eq!(server.raw().cmd(&["PING"]), b"+PONG\r\n");
}

/// `supervised auto` with $UPSTART_JOB set (as `supervised upstart`): the server stops itself with SIGSTOP before it
/// listens (upstart's `expect stop`), serves once continued, and logs Redis's line.
#[test]
fn upstart_supervision_stops_the_process_until_continued() {
    let port = common::free_port();
    let log = temp_path("upstart.log");
    let _ = fs::remove_file(&log);
    let mut child = Command::new(env!("CARGO_BIN_EXE_ferrous-server"))
        .args(["--port", &port.to_string(), "--supervised", "auto", "--logfile", &log, "--save", ""])
        .env("UPSTART_JOB", "ferrous-test")
        .current_dir(work_dir())
        .stdin(std::process::Stdio::null())
        .spawn()
        .expect("spawn ferrous-server");
    let state = || {
        let stat = fs::read_to_string(format!("/proc/{}/stat", child.id())).unwrap_or_default();
        stat.rsplit(')').next().and_then(|r| r.split_whitespace().next()).unwrap_or("").to_string()
    };
    let stopped = wait_until(Duration::from_secs(10), || state() == "T");
    assert!(stopped, "the process did not stop itself (state {})", state());
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err(), "it listened before stopping");
    send_signal(child.id(), "CONT");
    let served = wait_until(Duration::from_secs(10), || {
        common::listens_on(child.id(), port)
            && std::net::TcpStream::connect(("127.0.0.1", port))
                .is_ok_and(|s| Raw::new(s).cmd(&["PING"]) == b"+PONG\r\n")
    });
    let text = fs::read_to_string(&log).unwrap_or_default();
    let info = std::net::TcpStream::connect(("127.0.0.1", port))
        .map(|s| String::from_utf8_lossy(&Raw::new(s).cmd(&["INFO", "server"])).into_owned())
        .unwrap_or_default();
    let _ = child.kill();
    let _ = child.wait();
    assert!(served, "no PONG after SIGCONT: {text}");
    // Reported from what start-up found, though $UPSTART_JOB is gone by then.
    assert!(info.contains("process_supervised:upstart"), "{info}");
    assert!(text.contains("supervised by upstart, will stop to signal readiness."), "{text}");
}

/// The TCP listeners listen with `tcp-backlog` (Redis's anetTcpServer), read back from the
/// socket's queue limit as `ss` shows it (skipped where `ss` is missing).
#[test]
fn tcp_listeners_use_tcp_backlog() {
    let server = Server::start(&["--tcp-backlog", "17"]);
    let Ok(out) = Command::new("ss").args(["-ltnH", &format!("sport = :{}", server.port)]).output() else {
        eprintln!("SKIPPED: no ss");
        return;
    };
    let text = String::from_utf8_lossy(&out.stdout);
    let limits: Vec<&str> = text.lines().filter_map(|l| l.split_whitespace().nth(2)).collect();
    assert!(!limits.is_empty(), "no listener in: {text}");
    assert!(limits.iter().all(|&q| q == "17"), "{text}");
}

#[test]
fn unknown_option_stops_startup_naming_it() {
    let port = common::free_port().to_string();
    let out = run_to_exit(&["--port", &port, "--nosuch", "1"], EXIT_TIMEOUT);
    assert!(!out.status.success(), "exit status {:?}", out.status);
    assert!(out.stderr.contains("nosuch"), "stderr: {}", out.stderr);
    assert!(out.stderr.contains("Bad directive or wrong number of arguments"), "stderr: {}", out.stderr);
    // As redis-server: the options follow an empty first line.
    assert!(out.stderr.contains("line 3"), "stderr: {}", out.stderr);
}

#[test]
fn bad_option_value_stops_startup_naming_it() {
    let out = run_to_exit(&["--port", "notanumber"], EXIT_TIMEOUT);
    assert!(!out.status.success(), "exit status {:?}", out.status);
    assert!(out.stderr.contains("port"), "stderr: {}", out.stderr);
    assert!(out.stderr.contains("line 2"), "stderr: {}", out.stderr);
    assert!(out.stderr.contains("argument couldn't be parsed into an integer"), "stderr: {}", out.stderr);

    let port = common::free_port().to_string();
    let out = run_to_exit(&["--port", &port, "--maxclients", "0"], EXIT_TIMEOUT);
    assert!(!out.status.success(), "maxclients 0 accepted: {:?}", out.status);
    assert!(out.stderr.contains("maxclients"), "stderr: {}", out.stderr);
    assert!(out.stderr.contains("argument must be between"), "stderr: {}", out.stderr);
}

#[test]
fn bad_config_file_line_is_named_by_number() {
    let path = temp_path("bad.conf");
    fs::write(&path, "# a comment\n\ntimeout 5\nbogus-directive yes\nport 1234\n").expect("write config");
    let out = run_to_exit(&[path.as_str()], EXIT_TIMEOUT);
    assert!(!out.status.success(), "exit status {:?}", out.status);
    assert!(out.stderr.contains("line 4"), "stderr: {}", out.stderr);
    assert!(out.stderr.contains("bogus-directive"), "stderr: {}", out.stderr);

    fs::write(&path, "timeout 5\ntimeout abc\n").expect("write config");
    let out = run_to_exit(&[path.as_str()], EXIT_TIMEOUT);
    assert!(!out.status.success(), "exit status {:?}", out.status);
    assert!(out.stderr.contains("line 2"), "stderr: {}", out.stderr);
    assert!(out.stderr.contains("timeout abc"), "stderr: {}", out.stderr);

    let missing = temp_path("missing.conf");
    let out = run_to_exit(&[missing.as_str()], EXIT_TIMEOUT);
    assert!(!out.status.success(), "exit status {:?}", out.status);
    assert!(out.stderr.contains(&missing), "stderr: {}", out.stderr);
    let _ = fs::remove_file(&path);
}

#[test]
fn config_file_is_applied_and_command_line_overrides_it() {
    let path = temp_path("good.conf");
    fs::write(&path, "# test config\ntimeout 77\nmaxclients 1234\ndatabases 5\nport 1\n").expect("write config");
    // Server::start passes --port after the file, which must win over the file's `port 1`.
    let server = Server::start(&[path.as_str(), "--maxclients", "99"]);
    let mut con = server.conn();
    let got: Vec<String> = query(&mut con, &["CONFIG", "GET", "timeout"]);
    assert_eq!(got, ["timeout", "77"]);
    let got: Vec<String> = query(&mut con, &["CONFIG", "GET", "maxclients"]);
    assert_eq!(got, ["maxclients", "99"]);
    let got: Vec<String> = query(&mut con, &["CONFIG", "GET", "databases"]);
    assert_eq!(got, ["databases", "5"]);
    assert!(query_err(&mut con, &["SELECT", "5"]).contains("DB index is out of range"));
    let _ = fs::remove_file(&path);
}

#[test]
fn version_flag_prints_version_and_exits() {
    let out = run_to_exit(&["--version"], EXIT_TIMEOUT);
    assert!(out.status.success(), "exit status {:?}", out.status);
    assert!(out.stdout.contains("v="), "stdout: {}", out.stdout);
    assert!(out.stdout.contains(env!("CARGO_PKG_VERSION")), "stdout: {}", out.stdout);
}

// ---------------------------------------------------------------------------
// 2. Orderly exit: SIGTERM and SHUTDOWN.
// ---------------------------------------------------------------------------

/// A signal's shutdown waits for the cron (DEBUG PAUSE-CRON holds it), and SHUTDOWN ABORT
/// cancels it, as Redis; without a pending shutdown ABORT is an error; once the cron resumes
/// with nothing pending the server keeps serving.
#[test]
fn shutdown_abort_cancels_a_signalled_shutdown() {
    let mut server = Server::start(&["--enable-debug-command", "yes"]);
    let mut raw = server.raw();
    assert_eq!(raw.cmd(&["SHUTDOWN", "ABORT"]), b"-ERR No shutdown in progress.\r\n");
    assert_eq!(raw.cmd(&["DEBUG", "PAUSE-CRON", "1"]), b"+OK\r\n");
    send_signal(server.pid(), "TERM");
    assert!(wait_until(EXIT_TIMEOUT, || server.log().contains("Received SIGTERM")));
    assert_eq!(raw.cmd(&["SHUTDOWN", "ABORT"]), b"+OK\r\n");
    assert!(server.log().contains("Shutdown manually aborted"));
    assert_eq!(raw.cmd(&["DEBUG", "PAUSE-CRON", "0"]), b"+OK\r\n");
    assert_eq!(raw.cmd(&["PING"]), b"+PONG\r\n");
    // The handlers stay in place: a later SIGTERM still stops it.
    send_signal(server.pid(), "TERM");
    assert!(server.wait_exit(EXIT_TIMEOUT).is_some(), "server still running after the second SIGTERM");
}

#[test]
fn sigterm_exits_cleanly_and_removes_the_pidfile() {
    let pidfile = temp_path("sigterm.pid");
    let mut server = Server::start(&["--pidfile", &pidfile]);
    let written = fs::read_to_string(&pidfile).expect("pidfile written at start-up");
    assert_eq!(written.trim(), server.pid().to_string());
    // A connected client must not keep the server alive.
    let mut raw = server.raw();
    assert_eq!(raw.cmd(&["PING"]), b"+PONG\r\n");

    send_signal(server.pid(), "TERM");
    let status = server.wait_exit(EXIT_TIMEOUT).expect("server still running after SIGTERM");
    assert!(status.success(), "exit status after SIGTERM: {status:?}");
    assert!(!std::path::Path::new(&pidfile).exists(), "pidfile left behind");
    let log = server.log();
    assert!(log.contains("SIGTERM"), "the log should say why it stopped: {log}");
    assert!(raw.wait_closed(CLOSE_TIMEOUT).is_ok());
}

#[test]
fn shutdown_nosave_stops_the_server() {
    let mut server = Server::start(&[]);
    let mut other = server.raw();
    assert_eq!(other.cmd(&["PING"]), b"+PONG\r\n");
    let mut raw = server.raw();
    raw.send_cmd(&["SHUTDOWN", "NOSAVE"]);
    // SHUTDOWN does not reply on success: the connection just closes.
    raw.wait_closed(CLOSE_TIMEOUT).expect("the SHUTDOWN connection closes without a reply");
    let status = server.wait_exit(EXIT_TIMEOUT).expect("server still running after SHUTDOWN NOSAVE");
    assert!(status.success(), "exit status after SHUTDOWN: {status:?}");
    other.wait_closed(CLOSE_TIMEOUT).expect("other connections close too");
    assert!(std::net::TcpStream::connect(("127.0.0.1", server.port)).is_err(), "port still accepting");
}

/// `supervised systemd` (or `auto` with $NOTIFY_SOCKET set): systemd hears what Redis 7.2.4
/// tells it, one datagram per message, at the same moments: loading, ready (a replica: ready
/// read-only, waiting for its master), a replica's full and partial syncs, STOPPING=1, the final
/// save, and why a shutdown could not go on.
#[cfg(unix)]
#[test]
fn systemd_is_told_the_servers_state() {
    use std::os::unix::net::UnixDatagram;
    let base = work_dir().join(format!("notify-{}", std::process::id()));
    let _ = fs::remove_dir_all(&base);
    fs::create_dir_all(&base).unwrap();
    let listen = |name: &str| {
        let path = base.join(format!("{name}.sock"));
        let sock = UnixDatagram::bind(&path).expect("bind the notify socket");
        sock.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        (sock, path.to_str().unwrap().to_string())
    };
    let next = |sock: &UnixDatagram| -> String {
        let mut buf = [0u8; 512];
        let n = sock.recv(&mut buf).expect("a notification within 20 s");
        String::from_utf8_lossy(&buf[..n]).into_owned()
    };
    let (msock, mpath) = listen("master");
    let data = base.join("data");
    fs::create_dir_all(&data).unwrap();
    let data_s = data.to_str().unwrap().to_string();
    let mut master = Server::start_env(
        &["--supervised", "systemd", "--dir", &data_s, "--enable-protected-configs", "yes"],
        &[("NOTIFY_SOCKET", mpath.as_str())],
    );
    assert_eq!(next(&msock), "STATUS=Redis is loading...\n");
    assert_eq!(next(&msock), "STATUS=Ready to accept connections\n");
    assert_eq!(next(&msock), "READY=1\n");
    let log = master.log();
    assert!(
        log.contains("Supervised by systemd. Please make sure you set appropriate values for TimeoutStartSec and TimeoutStopSec in your service unit."),
        "{log}"
    );
    let mut mc = master.conn();
    assert_eq!(common::info_field(&mut mc, "server", "process_supervised"), "systemd");

    // A replica (`supervised auto` detects systemd): read-only until its first sync, then a
    // partial resynchronisation after its master link is killed.
    {
        let (rsock, rpath) = listen("replica");
        let mport = master.port.to_string();
        let replica = Server::start_env(
            &["--supervised", "auto", "--replicaof", "127.0.0.1", &mport],
            &[("NOTIFY_SOCKET", rpath.as_str())],
        );
        assert_eq!(next(&rsock), "STATUS=Redis is loading...\n");
        assert_eq!(
            next(&rsock),
            "STATUS=Ready to accept connections in read-only mode. Waiting for MASTER <-> REPLICA sync\n"
        );
        assert_eq!(next(&rsock), "READY=1\n");
        assert_eq!(
            next(&rsock),
            "STATUS=MASTER <-> REPLICA sync: Finished with success. Ready to accept connections in read-write mode.\n"
        );
        let mut rc = replica.conn();
        assert_eq!(common::info_field(&mut rc, "server", "process_supervised"), "systemd");
        let _: i64 = query(&mut rc, &["CLIENT", "KILL", "TYPE", "master"]);
        assert_eq!(
            next(&rsock),
            "STATUS=MASTER <-> REPLICA sync: Partial Resynchronization accepted. Ready to accept connections in read-write mode.\n"
        );
    }

    // The final save fails: the shutdown stops, and systemd is told why.
    let gone = data.join("gone");
    fs::create_dir_all(&gone).unwrap();
    let _: () = query(&mut mc, &["CONFIG", "SET", "dir", gone.to_str().unwrap()]);
    fs::remove_dir(&gone).unwrap();
    let mut raw = master.raw();
    assert_eq!(raw.cmd(&["SHUTDOWN", "SAVE"]), b"-ERR Errors trying to SHUTDOWN. Check logs.\r\n");
    assert_eq!(next(&msock), "STOPPING=1\n");
    assert_eq!(next(&msock), "STATUS=Saving the final RDB snapshot\n");
    assert_eq!(next(&msock), "STATUS=Error trying to save the DB, can't exit.\n");

    // AOF turned on: while its first rewrite runs, a shutdown cannot go on.
    let _: () = query(&mut mc, &["CONFIG", "SET", "dir", &data_s]);
    let _: () = query(&mut mc, &["CONFIG", "SET", "rdb-key-save-delay", "10000000"]);
    let _: () = query(&mut mc, &["SET", "k", "v"]);
    let _: () = query(&mut mc, &["CONFIG", "SET", "appendonly", "yes"]);
    assert_eq!(raw.cmd(&["SHUTDOWN"]), b"-ERR Errors trying to SHUTDOWN. Check logs.\r\n");
    assert_eq!(next(&msock), "STOPPING=1\n");
    assert_eq!(next(&msock), "STATUS=Writing initial AOF, can't exit.\n");

    // FORCE: the rewrite is given up, the final save made, and the server exits.
    let _: () = query(&mut mc, &["CONFIG", "SET", "rdb-key-save-delay", "0"]);
    raw.send_cmd(&["SHUTDOWN", "SAVE", "FORCE"]);
    assert_eq!(next(&msock), "STOPPING=1\n");
    assert_eq!(next(&msock), "STATUS=Saving the final RDB snapshot\n");
    let status = master.wait_exit(EXIT_TIMEOUT).expect("the server exits");
    assert!(status.success(), "{status:?}");
    let _ = fs::remove_dir_all(&base);
}

// ---------------------------------------------------------------------------
// 3. Pipelining and inline commands.
// ---------------------------------------------------------------------------

#[test]
fn thousand_pipelined_commands_get_replies_in_order() {
    let server = Server::start(&[]);
    let mut raw = server.raw();
    let mut request = Vec::new();
    let mut expected = Vec::new();
    let mut counter = 0;
    for i in 0..1000 {
        if i % 2 == 0 {
            let msg = format!("message-{i}");
            request.extend(encode(&["ECHO", &msg]));
            expected.push(format!("${}\r\n{msg}\r\n", msg.len()));
        } else {
            counter += 1;
            request.extend(encode(&["INCR", "pipeline-counter"]));
            expected.push(format!(":{counter}\r\n"));
        }
    }
    assert!(request.len() > 32 * 1024, "the pipeline should span several reads");
    raw.send(&request);
    for (i, want) in expected.iter().enumerate() {
        assert_eq!(text(&raw.read_reply()), *want, "reply #{i}");
    }
    // Exactly 1000 replies: the next reply is the next command's.
    assert_eq!(raw.cmd(&["PING"]), b"+PONG\r\n");
}

#[test]
fn inline_commands_work() {
    let server = Server::start(&[]);
    let mut raw = server.raw();
    raw.send(b"PING\r\n");
    assert_eq!(text(&raw.read_reply()), "+PONG\r\n");
    raw.send(b"SET a \"b c\"\r\n");
    assert_eq!(text(&raw.read_reply()), "+OK\r\n");
    raw.send(b"GET a\r\n");
    assert_eq!(text(&raw.read_reply()), "$3\r\nb c\r\n");
    // A bare \n ends a line too; empty lines are ignored; inline and multibulk mix.
    raw.send(b"\r\n\nECHO 'x y'\n*2\r\n$4\r\nECHO\r\n$2\r\nhi\r\nPING\r\n");
    assert_eq!(text(&raw.read_reply()), "$3\r\nx y\r\n");
    assert_eq!(text(&raw.read_reply()), "$2\r\nhi\r\n");
    assert_eq!(text(&raw.read_reply()), "+PONG\r\n");
}

// ---------------------------------------------------------------------------
// 4. Protocol errors close the connection.
// ---------------------------------------------------------------------------

#[test]
fn malformed_request_gets_error_then_close() {
    let server = Server::start(&[]);
    let cases: &[(&[u8], &str)] = &[
        (b"*1\r\n$x\r\n", "-ERR Protocol error: invalid bulk length\r\n"),
        (b"*1\r\n:1\r\n", "-ERR Protocol error: expected '$', got ':'\r\n"),
        (b"*x\r\n", "-ERR Protocol error: invalid multibulk length\r\n"),
        (b"SET a \"b\r\n", "-ERR Protocol error: unbalanced quotes in request\r\n"),
    ];
    for (request, error) in cases {
        let mut raw = server.raw();
        // A complete command in the same write as the bad one is still answered first.
        let mut bytes = b"PING\r\n".to_vec();
        bytes.extend_from_slice(request);
        raw.send(&bytes);
        assert_eq!(text(&raw.read_reply()), "+PONG\r\n", "request {:?}", text(request));
        assert_eq!(text(&raw.read_reply()), *error, "request {:?}", text(request));
        assert_eq!(raw.wait_closed(CLOSE_TIMEOUT), Ok(Closed::Eof), "request {:?}", text(request));
    }
    // The server itself is unaffected.
    assert_eq!(server.raw().cmd(&["PING"]), b"+PONG\r\n");
}

// ---------------------------------------------------------------------------
// 5. maxclients.
// ---------------------------------------------------------------------------

#[test]
fn maxclients_rejects_the_extra_connection() {
    let server = Server::start(&["--maxclients", "2"]);
    let first = connect_admitted(&server, CLOSE_TIMEOUT);
    let mut second = connect_admitted(&server, CLOSE_TIMEOUT);

    let mut third = server.raw();
    assert_eq!(text(&third.read_reply()), "-ERR max number of clients reached\r\n");
    assert!(third.wait_closed(CLOSE_TIMEOUT).is_ok(), "rejected connection left open");

    // Closing one admitted connection frees its slot.
    drop(first);
    let mut fourth = connect_admitted(&server, CLOSE_TIMEOUT);
    assert_eq!(fourth.cmd(&["PING"]), b"+PONG\r\n");
    assert_eq!(second.cmd(&["PING"]), b"+PONG\r\n");
    let reply = text(&second.cmd(&["INFO", "stats"]));
    let rejected = reply.lines().find_map(|l| l.strip_prefix("rejected_connections:")).expect("rejected_connections");
    assert!(rejected.parse::<u64>().expect("a number") >= 1, "rejected_connections:{rejected}");
}

// ---------------------------------------------------------------------------
// 6. Idle timeout.
// ---------------------------------------------------------------------------

#[test]
fn idle_connection_is_closed_after_timeout() {
    let server = Server::start(&["--timeout", "1"]);
    let mut idle = server.raw();
    assert_eq!(idle.cmd(&["PING"]), b"+PONG\r\n");
    let started = Instant::now();
    let watcher = thread::spawn(move || {
        let closed = idle.wait_closed(Duration::from_secs(4));
        (closed, started.elapsed())
    });

    // Meanwhile a connection that keeps talking is not closed.
    let mut busy = server.raw();
    let until = Instant::now() + Duration::from_millis(2500);
    while Instant::now() < until {
        assert_eq!(busy.cmd(&["PING"]), b"+PONG\r\n", "an active connection was closed");
        thread::sleep(Duration::from_millis(200));
    }

    let (closed, elapsed) = watcher.join().expect("watcher thread");
    assert!(closed.is_ok(), "idle connection: {closed:?}");
    assert!(elapsed >= Duration::from_millis(900), "closed too early, after {elapsed:?}");
    assert_eq!(busy.cmd(&["PING"]), b"+PONG\r\n");
}

#[test]
fn monitor_is_not_closed_by_the_idle_timeout() {
    // Redis flags a monitor as a replica, and replicas never time out.
    let server = Server::start(&["--timeout", "1"]);
    let mut monitor = server.raw();
    assert_eq!(monitor.cmd(&["MONITOR"]), b"+OK\r\n");
    // A connection opened after the monitor's last traffic, silent (anything it sent would be
    // shown to the monitor): once the timeout closed it, the monitor has been idle longer.
    let mut idle = server.raw();
    assert!(idle.wait_closed(Duration::from_secs(4)).is_ok(), "the idle connection was not closed");
    assert_eq!(monitor.cmd(&["PING"]), b"+PONG\r\n", "the monitor was closed");
}

// ---------------------------------------------------------------------------
// 7. proto-max-bulk-len and client-query-buffer-limit.
// ---------------------------------------------------------------------------

#[test]
fn bulk_longer_than_proto_max_bulk_len_is_rejected() {
    // 1mb is Redis's minimum for this setting, so the test holds with or without that check.
    let server = Server::start(&["--proto-max-bulk-len", "1mb"]);
    let mut con = server.conn();
    let got: Vec<String> = query(&mut con, &["CONFIG", "GET", "proto-max-bulk-len"]);
    assert_eq!(got, ["proto-max-bulk-len", "1048576"]);

    let mut raw = server.raw();
    let fits = "x".repeat(1024 * 1024);
    assert_eq!(raw.cmd(&["SET", "k", &fits]), b"+OK\r\n");
    assert_eq!(raw.cmd(&["STRLEN", "k"]), b":1048576\r\n");

    // The header alone is enough for the server to refuse the argument.
    raw.send(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1048577\r\n");
    assert_eq!(text(&raw.read_reply()), "-ERR Protocol error: invalid bulk length\r\n");
    assert_eq!(raw.wait_closed(CLOSE_TIMEOUT), Ok(Closed::Eof), "connection left open after the protocol error");
}

/// Streams `prefix` and then `filler` repeatedly (up to 16 MiB, far past the 1mb limit) and
/// checks that the server drops the connection.
fn assert_disconnected_while_streaming(server: &Server, prefix: &[u8], filler: &[u8]) {
    let mut raw = server.raw();
    raw.send(prefix);
    let chunk: Vec<u8> = filler.iter().copied().cycle().take(64 * 1024 / filler.len() * filler.len()).collect();
    let mut sent = prefix.len();
    let mut write_failed = false;
    while sent < 16 * 1024 * 1024 {
        if raw.stream.write_all(&chunk).is_err() {
            write_failed = true;
            break;
        }
        sent += chunk.len();
    }
    assert!(write_failed || raw.wait_closed(CLOSE_TIMEOUT).is_ok(), "still connected after {sent} bytes");
}

#[test]
fn client_query_buffer_limit_disconnects_huge_incomplete_requests() {
    let server = Server::start(&["--client-query-buffer-limit", "1mb"]);
    let mut con = server.conn();
    let got: Vec<String> = query(&mut con, &["CONFIG", "GET", "client-query-buffer-limit"]);
    assert_eq!(got, ["client-query-buffer-limit", "1048576"]);

    // Many small arguments of a multibulk that never completes: not over the limit, as in Redis,
    // which moves each complete argument out of its query buffer (Redis 7.0.15 keeps such a
    // client after 28 MB; its arguments count toward maxmemory-clients instead).
    let mut small = server.raw();
    small.send(b"*10000000\r\n");
    small.send(&b"$1\r\nx\r\n".repeat((4 << 20) / 7));
    // Read to the end: CLIENT LIST shows its 4 MB as 599,186 one-byte arguments.
    let read_all = wait_until(Duration::from_secs(10), || {
        let list: String = query(&mut con, &["CLIENT", "LIST"]);
        list.contains(" argv-mem=599186 ")
    });
    assert!(read_all, "the client of small arguments was closed, or not read");
    assert_eq!(info_field(&mut con, "stats", "client_query_buffer_limit_disconnections"), "0");
    // One huge argument that never completes.
    assert_disconnected_while_streaming(&server, b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$100000000\r\n", b"y");
    assert_eq!(info_field(&mut con, "stats", "client_query_buffer_limit_disconnections"), "1");
    let pong: String = query(&mut con, &["PING"]);
    assert_eq!(pong, "PONG");
}

// ---------------------------------------------------------------------------
// 8. requirepass, AUTH and HELLO.
// ---------------------------------------------------------------------------

#[test]
fn requirepass_demands_auth() {
    let server = Server::start(&["--requirepass", "s3cret"]);
    let mut raw = server.raw();
    assert_eq!(text(&raw.cmd(&["PING"])), "-NOAUTH Authentication required.\r\n");
    assert_eq!(text(&raw.cmd(&["GET", "k"])), "-NOAUTH Authentication required.\r\n");
    let wrongpass = "-WRONGPASS invalid username-password pair or user is disabled.\r\n";
    assert_eq!(text(&raw.cmd(&["AUTH", "wrong"])), wrongpass);
    assert_eq!(text(&raw.cmd(&["AUTH", "default", "wrong"])), wrongpass);
    assert_eq!(text(&raw.cmd(&["AUTH", "nobody", "s3cret"])), wrongpass);
    assert_eq!(text(&raw.cmd(&["PING"])), "-NOAUTH Authentication required.\r\n");
    assert_eq!(text(&raw.cmd(&["AUTH", "s3cret"])), "+OK\r\n");
    assert_eq!(text(&raw.cmd(&["SET", "k", "v"])), "+OK\r\n");

    // HELLO 3 AUTH authenticates and switches to RESP3 in one step.
    let mut resp3 = server.raw();
    let hello = resp3.cmd(&["HELLO", "3", "AUTH", "default", "s3cret"]);
    assert!(hello.starts_with(b"%"), "HELLO 3 reply is not a RESP3 map: {}", text(&hello));
    assert_eq!(text(&resp3.cmd(&["GET", "k"])), "$1\r\nv\r\n");
    assert_eq!(text(&resp3.cmd(&["GET", "nosuchkey"])), "_\r\n", "RESP3 null");
    let mut wrong = server.raw();
    assert_eq!(text(&wrong.cmd(&["HELLO", "3", "AUTH", "default", "nope"])), wrongpass);

    // Unauthenticated clients may not send big multibulks.
    let mut big = server.raw();
    big.send(b"*20\r\n");
    assert_eq!(text(&big.read_reply()), "-ERR Protocol error: unauthenticated multibulk length\r\n");
    assert!(big.wait_closed(CLOSE_TIMEOUT).is_ok());

    // The redis crate authenticates from the URL.
    let client = redis::Client::open(format!("redis://:s3cret@127.0.0.1:{}/", server.port)).expect("URL");
    let mut con = client.get_connection().expect("authenticated connection");
    let v: String = query(&mut con, &["GET", "k"]);
    assert_eq!(v, "v");
}

// ---------------------------------------------------------------------------
// 9. CLIENT subcommands.
// ---------------------------------------------------------------------------

#[test]
fn client_list_and_kill_act_on_other_connections() {
    let server = Server::start(&[]);
    let mut admin = server.conn();
    let admin_id: i64 = query(&mut admin, &["CLIENT", "ID"]);
    let mut victim = server.raw();
    let victim_id = raw_client_id(&mut victim);
    let victim_addr = victim.stream.local_addr().expect("local address").to_string();
    assert_ne!(admin_id, victim_id);

    let line = client_list_line(&mut admin, victim_id).expect("victim in CLIENT LIST");
    assert!(line.contains(&format!(" addr={victim_addr} ")), "{line}");
    let line = client_list_line(&mut admin, admin_id).expect("admin in CLIENT LIST");
    assert!(line.contains(" addr=127.0.0.1:"), "{line}");
    assert!(line.contains(" cmd=client|list "), "{line}");

    let killed: i64 = query(&mut admin, &["CLIENT", "KILL", "ID", &victim_id.to_string()]);
    assert_eq!(killed, 1);
    assert_eq!(victim.wait_closed(CLOSE_TIMEOUT), Ok(Closed::Eof));
    assert!(
        wait_until(CLOSE_TIMEOUT, || client_list_line(&mut admin, victim_id).is_none()),
        "killed client still in CLIENT LIST"
    );
    let killed: i64 = query(&mut admin, &["CLIENT", "KILL", "ID", &victim_id.to_string()]);
    assert_eq!(killed, 0);

    // By address, both the new and the old form.
    let mut by_addr = server.raw();
    raw_client_id(&mut by_addr);
    let addr = by_addr.stream.local_addr().expect("local address").to_string();
    let killed: i64 = query(&mut admin, &["CLIENT", "KILL", "ADDR", &addr]);
    assert_eq!(killed, 1);
    assert!(by_addr.wait_closed(CLOSE_TIMEOUT).is_ok());
    let mut old_form = server.raw();
    raw_client_id(&mut old_form);
    let addr = old_form.stream.local_addr().expect("local address").to_string();
    let ok: String = query(&mut admin, &["CLIENT", "KILL", &addr]);
    assert_eq!(ok, "OK");
    assert!(old_form.wait_closed(CLOSE_TIMEOUT).is_ok());

    // SKIPME defaults to yes: the caller survives killing every normal client.
    let mut bystander = server.raw();
    raw_client_id(&mut bystander);
    let killed: i64 = query(&mut admin, &["CLIENT", "KILL", "TYPE", "normal"]);
    assert!(killed >= 1, "CLIENT KILL TYPE normal killed {killed}");
    assert!(bystander.wait_closed(CLOSE_TIMEOUT).is_ok());
    let pong: String = query(&mut admin, &["PING"]);
    assert_eq!(pong, "PONG");
}

#[test]
fn client_setname_getname_and_setinfo() {
    let server = Server::start(&[]);
    let mut con = server.conn();
    let id: i64 = query(&mut con, &["CLIENT", "ID"]);
    let name: Option<String> = query(&mut con, &["CLIENT", "GETNAME"]);
    assert_eq!(name, None);
    let ok: String = query(&mut con, &["CLIENT", "SETNAME", "worker-1"]);
    assert_eq!(ok, "OK");
    let name: Option<String> = query(&mut con, &["CLIENT", "GETNAME"]);
    assert_eq!(name.as_deref(), Some("worker-1"));
    assert!(query_err(&mut con, &["CLIENT", "SETNAME", "has space"]).contains("cannot contain spaces"));

    let ok: String = query(&mut con, &["CLIENT", "SETINFO", "LIB-NAME", "mylib"]);
    assert_eq!(ok, "OK");
    let ok: String = query(&mut con, &["CLIENT", "SETINFO", "LIB-VER", "1.2.3"]);
    assert_eq!(ok, "OK");
    let info: String = query(&mut con, &["CLIENT", "INFO"]);
    assert!(info.starts_with(&format!("id={id} ")), "{info}");
    assert!(info.contains(" name=worker-1 "), "{info}");
    assert!(info.contains(" lib-name=mylib "), "{info}");
    assert!(info.contains(" lib-ver=1.2.3"), "{info}");

    // Another connection sees the same in CLIENT LIST.
    let mut other = server.conn();
    let line = client_list_line(&mut other, id).expect("client in CLIENT LIST");
    assert!(line.contains(" name=worker-1 ") && line.contains(" lib-name=mylib "), "{line}");

    // An empty name clears it.
    let ok: String = query(&mut con, &["CLIENT", "SETNAME", ""]);
    assert_eq!(ok, "OK");
    let name: Option<String> = query(&mut con, &["CLIENT", "GETNAME"]);
    assert_eq!(name, None);
}

#[test]
fn client_no_touch_leaves_idle_time_but_touch_resets_it() {
    let server = Server::start(&[]);
    let mut con = server.conn();
    let ok: String = query(&mut con, &["CLIENT", "NO-TOUCH", "ON"]);
    assert_eq!(ok, "OK");
    let info: String = query(&mut con, &["CLIENT", "INFO"]);
    let flags = info.split(' ').find_map(|f| f.strip_prefix("flags=")).expect("flags field");
    assert!(flags.contains('T'), "{info}");

    let _: () = query(&mut con, &["SET", "k", "v"]);
    let idle = |con: &mut redis::Connection| -> i64 { query(con, &["OBJECT", "IDLETIME", "k"]) };
    // The LRU clock ticks in whole seconds: wait for 2 so that "reset" (0, or 1 if a second
    // boundary passes in between) is unambiguous.
    assert!(wait_until(Duration::from_secs(6), || idle(&mut con) >= 2), "idle time never reached 2 s");
    let v: String = query(&mut con, &["GET", "k"]);
    assert_eq!(v, "v");
    assert!(idle(&mut con) >= 2, "GET from a no-touch client reset the idle time");
    let touched: i64 = query(&mut con, &["TOUCH", "k", "missing"]);
    assert_eq!(touched, 1);
    assert!(idle(&mut con) < 2, "TOUCH from a no-touch client must still update the LRU");

    let ok: String = query(&mut con, &["CLIENT", "NO-TOUCH", "OFF"]);
    assert_eq!(ok, "OK");
    assert!(query_err(&mut con, &["CLIENT", "NO-TOUCH", "maybe"]).contains("syntax error"));
}

#[test]
fn client_reply_off_skip_on() {
    let server = Server::start(&[]);
    let mut raw = server.raw();
    let mut batch = Vec::new();
    for cmd in [
        &["CLIENT", "REPLY", "OFF"][..],
        &["SET", "x", "1"],
        &["PING"],
        &["NOSUCHCOMMAND"],
        &["GET", "x"],
        &["CLIENT", "REPLY", "ON"],
        &["GET", "x"],
        &["CLIENT", "REPLY", "SKIP"],
        &["ECHO", "skipped"],
        &["ECHO", "shown"],
    ] {
        batch.extend(encode(cmd));
    }
    raw.send(&batch);
    // While OFF nothing is sent (not even errors); the SET still ran.
    assert_eq!(text(&raw.read_reply()), "+OK\r\n", "reply of CLIENT REPLY ON");
    assert_eq!(text(&raw.read_reply()), "$1\r\n1\r\n");
    assert_eq!(text(&raw.read_reply()), "$5\r\nshown\r\n");
    assert_eq!(text(&raw.cmd(&["PING"])), "+PONG\r\n", "no stray replies");
}

// ---------------------------------------------------------------------------
// 10. Concurrency across shards.
// ---------------------------------------------------------------------------

/// Keys on distinct shards of the keyspace (one per shard, at most 64), so that multi-key
/// commands on them span many shard locks.
fn keys_on_distinct_shards() -> Vec<String> {
    let wanted = ferrous::keyspace::NSHARDS.min(64);
    let mut shards = HashSet::new();
    let mut keys = Vec::new();
    for i in 0.. {
        let key = format!("atomic:{i}");
        if shards.insert(ferrous::keyspace::shard_of(key.as_bytes())) {
            keys.push(key);
            if keys.len() == wanted {
                break;
            }
        }
    }
    keys
}

#[test]
fn mset_is_atomic_across_shards() {
    const WRITERS: usize = 8;
    const READERS: usize = 4;
    const MSETS: usize = 2000;
    // Several worker threads, whatever the machine's core count, so commands really overlap.
    let server = Server::start(&["--worker-threads", "4"]);
    let keys = Arc::new(keys_on_distinct_shards());
    assert!(keys.len() >= 8, "keys should span many shards: {keys:?}");
    let done = Arc::new(AtomicBool::new(false));
    let start = Arc::new(Barrier::new(WRITERS + READERS));

    let writers: Vec<_> = (0..WRITERS)
        .map(|t| {
            let (keys, start, mut con) = (keys.clone(), start.clone(), server.conn());
            thread::spawn(move || {
                start.wait();
                for n in 0..MSETS {
                    let value = format!("{t}:{n}");
                    let mut cmd = redis::cmd("MSET");
                    for k in keys.iter() {
                        cmd.arg(k).arg(&value);
                    }
                    let _: () = cmd.query(&mut con).expect("MSET");
                }
            })
        })
        .collect();
    let readers: Vec<_> = (0..READERS)
        .map(|_| {
            let (keys, start, done, mut con) = (keys.clone(), start.clone(), done.clone(), server.conn());
            thread::spawn(move || {
                start.wait();
                let (mut reads, mut states) = (0usize, HashSet::new());
                while !done.load(Ordering::Relaxed) {
                    let values: Vec<Option<String>> = redis::cmd("MGET").arg(&keys[..]).query(&mut con).expect("MGET");
                    assert!(values.iter().all(|v| *v == values[0]), "MGET saw a partial MSET: {values:?}");
                    reads += 1;
                    states.insert(values[0].clone());
                }
                (reads, states)
            })
        })
        .collect();
    for w in writers {
        w.join().expect("writer thread");
    }
    done.store(true, Ordering::Relaxed);
    let mut states = HashSet::new();
    for r in readers {
        let (reads, seen) = r.join().expect("reader thread (a failed assertion panics it)");
        assert!(reads > 0, "a reader never ran");
        states.extend(seen);
    }
    // The check means something only if the readers ran while the writers did.
    assert!(states.len() > 2, "the readers saw only {} states", states.len());
    let mut con = server.conn();
    let last: Vec<String> = redis::cmd("MGET").arg(&keys[..]).query(&mut con).expect("MGET");
    assert!(last.iter().all(|v| *v == last[0]) && last[0].ends_with(&format!(":{}", MSETS - 1)), "{last:?}");
}

/// With busy polling on, a worker that spins before it sleeps still serves every client,
/// blocked ones included (woken from another connection while the worker spins or sleeps).
#[test]
fn busy_polling_workers_serve_every_client() {
    let server = Server::start(&["--worker-threads", "2", "--busy-poll-us", "200"]);
    let mut con = server.conn();
    let budget: Vec<String> = query(&mut con, &["CONFIG", "GET", "busy-poll-us"]);
    assert_eq!(budget, vec!["busy-poll-us".to_string(), "200".to_string()]);
    let waiter = {
        let mut con = server.conn();
        thread::spawn(move || -> Vec<String> { query(&mut con, &["BLPOP", "queue", "0"]) })
    };
    let handles: Vec<_> = (0..4)
        .map(|t| {
            let mut con = server.conn();
            thread::spawn(move || {
                for n in 0..500 {
                    let _: i64 = query(&mut con, &["INCR", &format!("c{t}")]);
                    if n % 100 == 0 {
                        // A pause longer than the budget: the worker goes to sleep between.
                        thread::sleep(std::time::Duration::from_millis(1));
                    }
                }
            })
        })
        .collect();
    for h in handles {
        h.join().expect("INCR thread");
    }
    let _: i64 = query(&mut con, &["RPUSH", "queue", "job"]);
    assert_eq!(waiter.join().expect("BLPOP thread"), vec!["queue".to_string(), "job".to_string()]);
    for t in 0..4 {
        let value: i64 = query(&mut con, &["GET", &format!("c{t}")]);
        assert_eq!(value, 500);
    }
}

#[test]
fn concurrent_incr_loses_no_update() {
    const THREADS: usize = 8;
    const INCRS: usize = 5000;
    let server = Server::start(&["--worker-threads", "4"]);
    let total = Arc::new(AtomicUsize::new(0));
    let handles: Vec<_> = (0..THREADS)
        .map(|_| {
            let (mut con, total) = (server.conn(), total.clone());
            thread::spawn(move || {
                for _ in 0..INCRS {
                    let _: i64 = redis::cmd("INCR").arg("counter").query(&mut con).expect("INCR");
                    total.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for h in handles {
        h.join().expect("INCR thread");
    }
    assert_eq!(total.load(Ordering::Relaxed), THREADS * INCRS);
    let mut con = server.conn();
    let value: i64 = query(&mut con, &["GET", "counter"]);
    assert_eq!(value, (THREADS * INCRS) as i64);
}

/// MULTI/EXEC transfers between accounts on different shards, from several connections on
/// several worker threads, while readers check in every read that the total never changes: no
/// reader ever sees half a transaction.
#[test]
fn transactions_are_atomic_across_shards() {
    const ACCOUNTS: usize = 8;
    const WRITERS: usize = 4;
    const TRANSFERS: usize = 400;
    let server = Server::start(&["--worker-threads", "4"]);
    let keys: Vec<String> = keys_on_distinct_shards().into_iter().take(ACCOUNTS).collect();
    assert_eq!(keys.len(), ACCOUNTS);
    let mut con = server.conn();
    for k in &keys {
        let _: () = redis::cmd("SET").arg(k).arg(1000).query(&mut con).expect("SET");
    }
    let total = (ACCOUNTS * 1000) as i64;
    let done = Arc::new(AtomicBool::new(false));
    let keys = Arc::new(keys);
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let (mut con, keys, done) = (server.conn(), keys.clone(), done.clone());
            thread::spawn(move || {
                let mut reads = 0;
                while !done.load(Ordering::Relaxed) {
                    let vals: Vec<i64> = redis::cmd("MGET").arg(&keys[..]).query(&mut con).expect("MGET");
                    assert_eq!(vals.iter().sum::<i64>(), total, "a read saw half a transaction: {vals:?}");
                    reads += 1;
                }
                reads
            })
        })
        .collect();
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let (mut con, keys) = (server.conn(), keys.clone());
            thread::spawn(move || {
                for i in 0..TRANSFERS {
                    let (from, to) = (&keys[(w + i) % ACCOUNTS], &keys[(w + 3 * i + 1) % ACCOUNTS]);
                    let amount = (i % 7 + 1) as i64;
                    let replies: Vec<i64> = redis::pipe()
                        .atomic()
                        .cmd("DECRBY")
                        .arg(from)
                        .arg(amount)
                        .cmd("INCRBY")
                        .arg(to)
                        .arg(amount)
                        .query(&mut con)
                        .expect("MULTI/EXEC transfer");
                    assert_eq!(replies.len(), 2);
                }
            })
        })
        .collect();
    for w in writers {
        w.join().expect("writer");
    }
    done.store(true, Ordering::Relaxed);
    for r in readers {
        assert!(r.join().expect("reader") > 0);
    }
    let vals: Vec<i64> = redis::cmd("MGET").arg(&keys[..]).query(&mut con).expect("MGET");
    assert_eq!(vals.iter().sum::<i64>(), total);
}

/// WATCH makes EXEC fail when another client changed the key in between.
#[test]
fn watch_detects_a_concurrent_change() {
    let server = Server::start(&[]);
    let (mut a, mut b) = (server.conn(), server.conn());
    let _: () = redis::cmd("SET").arg("w").arg(1).query(&mut a).expect("SET");
    let _: () = redis::cmd("WATCH").arg("w").query(&mut a).expect("WATCH");
    let _: () = redis::cmd("SET").arg("w").arg(2).query(&mut b).expect("SET from b");
    let res: Option<Vec<i64>> = redis::pipe().atomic().cmd("INCR").arg("w").query(&mut a).expect("EXEC");
    assert_eq!(res, None, "EXEC must fail after a watched key changed");
    let res: Option<Vec<i64>> = redis::pipe().atomic().cmd("INCR").arg("w").query(&mut a).expect("EXEC");
    assert_eq!(res, Some(vec![3]), "without WATCH the transaction runs");
}

/// CLIENT PAUSE WRITE holds writes (they complete after UNPAUSE) but not reads.
#[test]
fn client_pause_write_holds_writes_until_unpause() {
    let server = Server::start(&[]);
    let mut admin = server.conn();
    let _: () = redis::cmd("CLIENT").arg("PAUSE").arg(60_000).arg("WRITE").query(&mut admin).expect("PAUSE");
    let mut reader = server.conn();
    let got: Option<String> = redis::cmd("GET").arg("paused").query(&mut reader).expect("reads are not paused");
    assert_eq!(got, None);
    let mut writer = server.conn();
    let handle = thread::spawn(move || {
        let _: () = redis::cmd("SET").arg("paused").arg("v").query(&mut writer).expect("SET after unpause");
    });
    // The writer is held back: it shows up as a blocked client and its write has not happened.
    let held = wait_until(Duration::from_secs(5), || {
        let info: String = redis::cmd("INFO").arg("clients").query(&mut admin).expect("INFO");
        info.contains("blocked_clients:1")
    });
    assert!(held, "the paused writer never showed up as blocked");
    let got: Option<String> = redis::cmd("GET").arg("paused").query(&mut reader).expect("GET");
    assert_eq!(got, None, "a paused write must not run");
    let _: () = redis::cmd("CLIENT").arg("UNPAUSE").query(&mut admin).expect("UNPAUSE");
    handle.join().expect("writer");
    let got: Option<String> = redis::cmd("GET").arg("paused").query(&mut reader).expect("GET");
    assert_eq!(got.as_deref(), Some("v"));
}

/// Wait until INFO reports `n` blocked clients.
fn wait_blocked(server: &Server, n: usize) {
    let mut con = server.conn();
    let want = format!("blocked_clients:{n}\r");
    let ok = wait_until(Duration::from_secs(5), || {
        let info: String = redis::cmd("INFO").arg("clients").query(&mut con).expect("INFO");
        info.contains(&want)
    });
    assert!(ok, "never saw {n} blocked clients");
}

/// Clients blocked on the same list are served in the order they blocked, one element each.
#[test]
fn blocked_clients_are_served_fifo() {
    let server = Server::start(&["--worker-threads", "2"]);
    let mut waiters = Vec::new();
    for i in 0..3 {
        let mut raw = server.raw();
        raw.send_cmd(&["BLPOP", "fifo", "0"]);
        wait_blocked(&server, i + 1);
        waiters.push(raw);
    }
    let mut con = server.conn();
    let _: i64 = redis::cmd("RPUSH").arg("fifo").arg("a").arg("b").arg("c").query(&mut con).expect("RPUSH");
    let got: Vec<String> = waiters.iter_mut().map(|w| String::from_utf8_lossy(&w.read_reply()).into_owned()).collect();
    assert_eq!(
        got,
        ["*2\r\n$4\r\nfifo\r\n$1\r\na\r\n", "*2\r\n$4\r\nfifo\r\n$1\r\nb\r\n", "*2\r\n$4\r\nfifo\r\n$1\r\nc\r\n"]
    );
    let len: i64 = redis::cmd("LLEN").arg("fifo").query(&mut con).expect("LLEN");
    assert_eq!(len, 0);
}

/// A client blocked on keys of different shards is served by a push to any of them, and a key
/// renamed into place wakes it too.
#[test]
fn blocking_across_shards_and_rename() {
    let server = Server::start(&["--worker-threads", "2"]);
    let keys = keys_on_distinct_shards();
    let (a, b) = (&keys[0], &keys[1]);
    let mut waiter = server.raw();
    waiter.send_cmd(&["BLPOP", a, b, "0"]);
    wait_blocked(&server, 1);
    let mut con = server.conn();
    let _: i64 = redis::cmd("LPUSH").arg(b).arg("x").query(&mut con).expect("LPUSH");
    assert_eq!(waiter.read_reply(), format!("*2\r\n${}\r\n{b}\r\n$1\r\nx\r\n", b.len()).into_bytes());
    // RENAME a list into the watched key.
    waiter.send_cmd(&["BLPOP", a, "0"]);
    wait_blocked(&server, 1);
    let _: i64 = redis::cmd("LPUSH").arg("elsewhere").arg("y").query(&mut con).expect("LPUSH");
    let _: () = redis::cmd("RENAME").arg("elsewhere").arg(a).query(&mut con).expect("RENAME");
    assert_eq!(waiter.read_reply(), format!("*2\r\n${}\r\n{a}\r\n$1\r\ny\r\n", a.len()).into_bytes());
    // A key of the wrong type keeps the client waiting; the timeout then answers null.
    waiter.send_cmd(&["BLPOP", a, "2"]);
    wait_blocked(&server, 1);
    let _: () = redis::cmd("SET").arg(a).arg("string").query(&mut con).expect("SET");
    assert_eq!(waiter.read_reply(), b"*-1\r\n");
}

// ---------------------------------------------------------------------------
// 11. Active expiry.
// ---------------------------------------------------------------------------

#[test]
fn active_expiry_removes_untouched_keys() {
    let server = Server::start(&[]);
    let mut con = server.conn();
    let mut pipe = redis::pipe();
    for i in 0..200 {
        pipe.cmd("SET").arg(format!("volatile:{i}")).arg("v").arg("PX").arg(50).ignore();
    }
    for i in 0..10 {
        pipe.cmd("SET").arg(format!("persistent:{i}")).arg("v").ignore();
    }
    let _: () = pipe.query(&mut con).expect("pipeline of SETs");

    let mut size = -1;
    let gone = wait_until(Duration::from_secs(5), || {
        size = query(&mut con, &["DBSIZE"]);
        size == 10
    });
    assert!(gone, "DBSIZE still {size} 5 s after the keys expired");
    assert_eq!(info_field(&mut con, "stats", "expired_keys"), "200");
    let exists: i64 = query(&mut con, &["EXISTS", "persistent:0", "persistent:9"]);
    assert_eq!(exists, 2);
}

// ---------------------------------------------------------------------------
// 12. SCAN guarantee.
// ---------------------------------------------------------------------------

#[test]
fn scan_returns_every_key_despite_concurrent_resizes() {
    const KEYS: usize = 2000;
    let server = Server::start(&[]);
    let mut con = server.conn();
    let mut pipe = redis::pipe();
    for i in 0..KEYS {
        pipe.cmd("SET").arg(format!("orig:{i}")).arg(i).ignore();
    }
    let _: () = pipe.query(&mut con).expect("pipeline of SETs");

    let mut seen = HashSet::new();
    let mut temp: Vec<String> = Vec::new();
    let mut cursor = "0".to_string();
    let mut calls = 0usize;
    loop {
        let (next, keys): (String, Vec<String>) = redis::cmd("SCAN")
            .arg(&cursor)
            .arg("COUNT")
            .arg(10)
            .query(&mut con)
            .unwrap_or_else(|e| panic!("SCAN {cursor}: {e}"));
        seen.extend(keys.into_iter().filter(|k| k.starts_with("orig:")));
        calls += 1;
        if next == "0" {
            break;
        }
        assert!(calls < 100_000, "SCAN did not terminate");
        cursor = next;
        // Churn between calls: grow the tables with batches of temporary keys, then empty
        // them again every 30 calls so they shrink.
        if calls.is_multiple_of(30) {
            let _: i64 = redis::cmd("UNLINK").arg(&temp).query(&mut con).expect("UNLINK");
            temp.clear();
        } else {
            let batch: Vec<String> = (0..100).map(|j| format!("temp:{calls}:{j}")).collect();
            let mut mset = redis::cmd("MSET");
            for k in &batch {
                mset.arg(k).arg("t");
            }
            let _: () = mset.query(&mut con).expect("MSET");
            temp.extend(batch);
        }
    }
    let missing: Vec<usize> = (0..KEYS).filter(|i| !seen.contains(&format!("orig:{i}"))).collect();
    assert!(missing.is_empty(), "SCAN ({calls} calls) never returned {} keys, e.g. {:?}", missing.len(), &missing[..]);
}

// ---------------------------------------------------------------------------
// 13. Databases: SELECT, SWAPDB, MOVE.
// ---------------------------------------------------------------------------

#[test]
fn select_swapdb_and_move_between_databases() {
    let server = Server::start(&["--databases", "4"]);
    let mut con = server.conn();
    let _: () = query(&mut con, &["SET", "a", "zero"]);
    let _: () = query(&mut con, &["SELECT", "1"]);
    let _: () = query(&mut con, &["SET", "a", "one"]);
    let _: () = query(&mut con, &["SET", "only1", "x"]);

    let _: () = query(&mut con, &["SWAPDB", "0", "1"]);
    // This connection stays on db 1, which now holds what db 0 held.
    let a: String = query(&mut con, &["GET", "a"]);
    assert_eq!(a, "zero");
    let size: i64 = query(&mut con, &["DBSIZE"]);
    assert_eq!(size, 1);
    let _: () = query(&mut con, &["SELECT", "0"]);
    let a: String = query(&mut con, &["GET", "a"]);
    assert_eq!(a, "one");

    let moved: i64 = query(&mut con, &["MOVE", "only1", "2"]);
    assert_eq!(moved, 1);
    let exists: i64 = query(&mut con, &["EXISTS", "only1"]);
    assert_eq!(exists, 0);
    // The destination already has `a`: nothing moves.
    let moved: i64 = query(&mut con, &["MOVE", "a", "1"]);
    assert_eq!(moved, 0);
    let a: String = query(&mut con, &["GET", "a"]);
    assert_eq!(a, "one");

    // A connection opened on db 2 sees the moved key.
    let client = redis::Client::open(format!("redis://127.0.0.1:{}/2", server.port)).expect("URL");
    let mut db2 = client.get_connection().expect("connection to db 2");
    let v: String = query(&mut db2, &["GET", "only1"]);
    assert_eq!(v, "x");

    assert!(query_err(&mut con, &["SELECT", "4"]).contains("DB index is out of range"));
    assert!(query_err(&mut con, &["SWAPDB", "0", "4"]).contains("DB index is out of range"));
    assert!(query_err(&mut con, &["MOVE", "a", "0"]).contains("source and destination objects are the same"));
}

/// total_reads_processed / total_writes_processed count socket reads and writes: each
/// unpipelined request is at least one read and one write.
#[test]
fn info_counts_socket_reads_and_writes() {
    let server = Server::start(&[]);
    let mut con = server.conn();
    let count = |con: &mut redis::Connection, field: &str| info_field(con, "stats", field).parse::<u64>().unwrap();
    let (reads, writes) = (count(&mut con, "total_reads_processed"), count(&mut con, "total_writes_processed"));
    for _ in 0..10 {
        let _: String = query(&mut con, &["PING"]);
    }
    assert!(count(&mut con, "total_reads_processed") >= reads + 11);
    assert!(count(&mut con, "total_writes_processed") >= writes + 11);
}

/// DEBUG SLEEP stalls the whole server, as Redis's does: a command another client sends
/// meanwhile is answered only once the sleep is over, after the sleeper's own OK.
#[test]
fn debug_sleep_stalls_other_clients() {
    let server = Server::start(&["--enable-debug-command", "yes"]);
    let mut sleeper = server.raw();
    let mut other = server.raw();
    let start = Instant::now();
    sleeper.send_cmd(&["DEBUG", "SLEEP", "2"]);
    // No condition to await: the sleep has begun well within this.
    thread::sleep(Duration::from_millis(500));
    other.send_cmd(&["GET", "k"]);
    assert_eq!(other.read_reply(), b"$-1\r\n");
    let other_done = start.elapsed();
    assert_eq!(sleeper.read_reply(), b"+OK\r\n");
    assert!(other_done >= Duration::from_millis(1900), "answered after {other_done:?}, during the sleep");
}

/// Redis 7.2's INFO debug section (only when asked for by name) and the event-loop rates,
/// which an idle server's cron keeps above zero.
#[test]
fn info_debug_section_and_eventloop_rates() {
    let server = Server::start(&[]);
    let mut con = server.conn();
    let all: String = redis::cmd("INFO").arg("everything").query(&mut con).unwrap();
    assert!(!all.contains("eventloop_duration_cron_sum"));
    let debug: String = redis::cmd("INFO").arg("debug").query(&mut con).unwrap();
    for field in [
        "eventloop_duration_aof_sum:",
        "eventloop_duration_cron_sum:",
        "eventloop_duration_max:",
        "eventloop_cmd_per_cycle_max:",
    ] {
        assert!(debug.contains(field), "{debug}");
    }
    let rate = |con: &mut redis::Connection, f: &str| info_field(con, "stats", f).parse::<u64>().unwrap_or(0);
    assert!(wait_until(Duration::from_secs(5), || rate(&mut con, "instantaneous_eventloop_cycles_per_sec") > 0));
    assert!(rate(&mut con, "instantaneous_eventloop_cycles_per_sec") < 1000);
    assert!(wait_until(Duration::from_secs(5), || rate(&mut con, "instantaneous_eventloop_duration_usec") > 0));
}

/// INFO memory's script fields in Redis 7.2.4's order (the deprecated used_memory_lua_human
/// after used_memory_vm_eval), and CONFIG GET * leaves out the hidden aof-disable-auto-gc.
#[test]
fn info_memory_script_fields_and_hidden_configs_as_redis_72() {
    let server = Server::start(&[]);
    let mut con = server.conn();
    let memory: String = redis::cmd("INFO").arg("memory").query(&mut con).unwrap();
    let names: Vec<&str> = memory.lines().filter_map(|l| l.split_once(':').map(|(n, _)| n)).collect();
    let at = names.iter().position(|n| *n == "used_memory_lua").expect("used_memory_lua");
    assert_eq!(names[at..at + 3], ["used_memory_lua", "used_memory_vm_eval", "used_memory_lua_human"]);
    let all: Vec<String> = redis::cmd("CONFIG").arg("GET").arg("*").query(&mut con).unwrap();
    assert!(!all.iter().any(|n| n == "aof-disable-auto-gc"));
    let one: Vec<String> = redis::cmd("CONFIG").arg("GET").arg("aof-disable-auto-gc").query(&mut con).unwrap();
    assert_eq!(one, ["aof-disable-auto-gc", "no"]);
}

/// MONITOR shows a blocked command once, when it first runs, not again when the push that
/// wakes it runs it anew (Redis 7.2).
#[test]
fn monitor_shows_a_blocked_command_once() {
    let server = Server::start(&[]);
    let mut monitor = server.raw();
    assert_eq!(monitor.cmd(&["MONITOR"]), b"+OK\r\n");
    let mut blocked = server.raw();
    blocked.send_cmd(&["BLPOP", "mylist", "0"]);
    let mut con = server.conn();
    assert!(wait_until(Duration::from_secs(5), || info_field(&mut con, "clients", "blocked_clients") == "1"));
    let _: i64 = query(&mut con, &["LPUSH", "mylist", "1"]);
    assert_eq!(blocked.read_reply(), b"*2\r\n$6\r\nmylist\r\n$1\r\n1\r\n");
    let _: i64 = query(&mut con, &["LPUSH", "mylist", "2"]);
    let mut seen = Vec::new();
    while seen.len() < 3 {
        let line = text(&monitor.read_reply());
        if line.contains("mylist") {
            seen.push(line);
        }
    }
    assert!(seen[0].contains("\"BLPOP\" \"mylist\" \"0\""), "{seen:?}");
    assert!(seen[1].contains("\"LPUSH\" \"mylist\" \"1\""), "{seen:?}");
    assert!(seen[2].contains("\"LPUSH\" \"mylist\" \"2\""), "{seen:?}");
}

/// The start-up helpers' test of whose server answers on a port: a test's own listener and a
/// started server are told apart by process.
#[test]
fn listens_on_tells_which_process_owns_a_port() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = Server::start(&[]);
    assert!(common::listens_on(std::process::id(), port));
    assert!(common::listens_on(server.pid(), server.port));
    assert!(!common::listens_on(server.pid(), port));
    assert!(!common::listens_on(std::process::id(), server.port));
    drop(listener);
    assert!(!common::listens_on(std::process::id(), port));
}
