//! Shared helpers for the integration tests: start the real `ferrous-server` binary on a free
//! port ([`Server`]), and speak raw RESP to it ([`Raw`]) for checks below the level of a client
//! library (pipelining, protocol errors, connection closes).
//!
//! Every wait is a bounded poll loop: nothing sleeps for a fixed time hoping a condition holds.
// Each test crate uses a different part of these helpers.
#![allow(dead_code)]

pub mod interop;
pub mod ports;

pub use ports::listens_on;

use std::cell::Cell;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

/// How long a server may take to start answering PING.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(20);
/// How long [`Raw::read_reply`] waits for one complete reply.
const REPLY_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a test waits for background work: a replica's sync (the master waits
/// `repl-diskless-sync-delay`, 5 s by default, before it starts one), an AOF rewrite, a save,
/// recovery from a disk error. CI's two cores are often both busy with other tests.
pub const BACKGROUND_WORK: Duration = Duration::from_secs(30);
/// Interval of every poll loop.
pub const POLL: Duration = Duration::from_millis(10);

/// The directory for config files, pid files and server logs of the tests.
pub fn work_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("server-tests");
    fs::create_dir_all(&dir).expect("create the test work directory");
    dir
}

/// A port that was free a moment ago (the listener is dropped before the server binds it, so
/// [`Server::start`] retries with another port if the server fails to come up).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("bind an ephemeral port").port()
}

/// Polls `cond` every [`POLL`] until it returns true or `timeout` passes; returns whether it did.
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(POLL);
    }
}

/// A log file path named after the running test (libtest names each test's thread after it)
/// and the number of servers it started, so the files of a later run replace earlier ones.
fn log_path() -> PathBuf {
    thread_local!(static SERVERS: Cell<usize> = const { Cell::new(0) });
    let n = SERVERS.with(|c| c.replace(c.get() + 1));
    let test = thread::current().name().unwrap_or("server").replace("::", "-");
    work_dir().join(format!("{test}-{n}.log"))
}

/// A running `ferrous-server` process, killed when dropped.
pub struct Server {
    pub port: u16,
    child: Child,
    log: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// Starts `ferrous-server [CONFIG-FILE] --port N --save "" ARGS...` and waits until it
    /// answers PING (`-NOAUTH` counts as an answer, for servers started with `requirepass`). A
    /// first argument not starting with `--` is a config file, passed first like redis-server
    /// wants it.
    pub fn start(args: &[&str]) -> Server {
        Server::start_env(args, &[])
    }

    /// [`Server::start`] with these environment variables set for the server.
    pub fn start_env(args: &[&str], env: &[(&str, &str)]) -> Server {
        Server::start_limited(args, env, None)
    }

    /// [`Server::start_env`] with the server's address space limited to `address_space`
    /// bytes (RLIMIT_AS), so that the system refuses its big allocations.
    pub fn start_limited(args: &[&str], env: &[(&str, &str)], address_space: Option<u64>) -> Server {
        let (file, args) = match args.split_first() {
            Some((first, rest)) if !first.starts_with("--") => (Some(*first), rest),
            _ => (None, args),
        };
        // A server in the shared work directory gets an RDB file of its own: the default
        // dump.rdb there is whatever another test's server saved last (a master's snapshot for
        // a full sync, say), and loading it at start-up gave unrelated tests its keys and its
        // replication backlog. Tests that restart from a file name one (or use their own --dir).
        let own_file = (file.is_none() && !args.iter().any(|a| *a == "--dir" || *a == "--dbfilename")).then(|| {
            static NEXT: AtomicUsize = AtomicUsize::new(0);
            let name = format!("dump-{}-{}.rdb", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
            let _ = fs::remove_file(work_dir().join(&name));
            name
        });
        let own_file: Vec<&str> = own_file.as_deref().map(|f| vec!["--dbfilename", f]).unwrap_or_default();
        let mut failures = Vec::new();
        for _attempt in 0..5 {
            let port = free_port();
            let log = log_path();
            let log_file = File::create(&log).expect("create the server log file");
            let mut command = Command::new(env!("CARGO_BIN_EXE_ferrous-server"));
            command
                .args(file)
                .args(["--port", &port.to_string(), "--save", ""])
                .args(&own_file)
                .args(args)
                .current_dir(work_dir())
                .envs(env.iter().copied())
                .stdin(Stdio::null())
                .stdout(log_file.try_clone().expect("clone the log file handle"))
                .stderr(log_file);
            if let Some(limit) = address_space {
                use std::os::unix::process::CommandExt;
                // SAFETY: setrlimit is async-signal-safe; nothing else runs between fork and exec.
                unsafe {
                    command.pre_exec(move || {
                        let rl = libc::rlimit { rlim_cur: limit, rlim_max: limit };
                        if libc::setrlimit(libc::RLIMIT_AS, &rl) == 0 {
                            Ok(())
                        } else {
                            Err(std::io::Error::last_os_error())
                        }
                    });
                }
            }
            let child = command.spawn().expect("spawn ferrous-server");
            let mut server = Server { port, child, log };
            match server.wait_until_ready() {
                Ok(()) => return server,
                Err(why) => failures.push(why),
            }
        }
        panic!("ferrous-server {args:?} did not start: {failures:#?}");
    }

    fn wait_until_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                let log = fs::read_to_string(&self.log).unwrap_or_default();
                return Err(format!("exited during startup ({status}): {log}"));
            }
            // Ready once it answers and has loaded its data (it serves PING while loading, and
            // NOAUTH comes before LOADING): "Ready to accept connections" follows loading; a
            // server whose notices go elsewhere (logfile, loglevel warning) counts when it answers.
            if self.answers_ping() && listens_on(self.child.id(), self.port) {
                let log = fs::read_to_string(&self.log).unwrap_or_default();
                if log.contains("Ready to accept connections") || !log.contains("Server initialized") {
                    return Ok(());
                }
            }
            if Instant::now() >= deadline {
                return Err(format!("no PONG on port {} within {STARTUP_TIMEOUT:?}", self.port));
            }
            thread::sleep(POLL);
        }
    }

    fn answers_ping(&self) -> bool {
        let Ok(stream) = TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let mut raw = Raw::new(stream);
        raw.stream.write_all(b"PING\r\n").is_ok()
            && matches!(raw.try_read_reply(Duration::from_secs(2)), Ok(r) if r == b"+PONG\r\n" || r.starts_with(b"-NOAUTH"))
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// A memory figure of the server process from /proc/PID/status, in kB: "VmRSS:" (resident
    /// now), "VmHWM:" (its peak).
    #[allow(dead_code)]
    pub fn status_kb(&self, field: &str) -> u64 {
        let status = fs::read_to_string(format!("/proc/{}/status", self.pid())).expect("/proc status");
        let line = status.lines().find(|l| l.starts_with(field)).unwrap_or_else(|| panic!("no {field}"));
        line.split_whitespace().nth(1).and_then(|v| v.parse().ok()).expect("a number of kB")
    }

    /// The server's combined stdout and stderr so far.
    pub fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn client(&self) -> redis::Client {
        redis::Client::open(format!("redis://127.0.0.1:{}/", self.port)).expect("valid redis URL")
    }

    /// A new `redis` crate connection.
    pub fn conn(&self) -> redis::Connection {
        self.client().get_connection().expect("connect with the redis crate")
    }

    /// A new `redis` crate connection with CLIENT NO-EVICT ON: a control connection that client
    /// eviction leaves alone.
    pub fn no_evict_conn(&self) -> redis::Connection {
        let mut con = self.conn();
        let _: () = query(&mut con, &["CLIENT", "NO-EVICT", "ON"]);
        con
    }

    /// A new raw TCP connection.
    pub fn raw(&self) -> Raw {
        Raw::new(TcpStream::connect(("127.0.0.1", self.port)).expect("connect over TCP"))
    }

    /// Waits up to `timeout` for the process to exit by itself.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let mut status = None;
        wait_until(timeout, || {
            status = self.child.try_wait().expect("query the child's status");
            status.is_some()
        });
        status
    }
}

/// The result of running the binary to completion (for start-up failures).
pub struct Finished {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `ferrous-server ARGS...` and waits (bounded) for it to exit by itself; panics, after
/// killing it, if it is still running after `timeout` (e.g. it started despite a bad option).
pub fn run_to_exit(args: &[&str], timeout: Duration) -> Finished {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ferrous-server"))
        .args(args)
        .current_dir(work_dir())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn ferrous-server");
    let mut status = None;
    wait_until(timeout, || {
        status = child.try_wait().expect("query the child's status");
        status.is_some()
    });
    let Some(status) = status else {
        let _ = child.kill();
        let _ = child.wait();
        panic!("ferrous-server {args:?} was still running after {timeout:?}");
    };
    let mut stdout = String::new();
    let mut stderr = String::new();
    child.stdout.take().expect("piped stdout").read_to_string(&mut stdout).expect("read stdout");
    child.stderr.take().expect("piped stderr").read_to_string(&mut stderr).expect("read stderr");
    Finished { status, stdout, stderr }
}

/// A raw TCP connection speaking RESP byte by byte, with a buffer of received bytes.
pub struct Raw {
    pub stream: TcpStream,
    buf: Vec<u8>,
}

/// How [`Raw::wait_closed`] saw the connection end.
#[derive(Debug, PartialEq, Eq)]
pub enum Closed {
    /// Orderly close: read returned 0.
    Eof,
    /// The server reset the connection (it closed with unread input).
    Reset,
}

impl Raw {
    pub fn new(stream: TcpStream) -> Raw {
        stream.set_nodelay(true).expect("set TCP_NODELAY");
        Raw { stream, buf: Vec::new() }
    }

    /// Writes all of `bytes`; panics on error.
    pub fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("write to the server");
    }

    /// Sends one command as a RESP multibulk.
    pub fn send_cmd(&mut self, args: &[&str]) {
        self.send(&encode(args));
    }

    /// Sends one command and reads its reply.
    pub fn cmd(&mut self, args: &[&str]) -> Vec<u8> {
        self.send_cmd(args);
        self.read_reply()
    }

    /// Reads one complete reply (raw bytes, any RESP2/RESP3 type); panics on timeout or close.
    pub fn read_reply(&mut self) -> Vec<u8> {
        match self.try_read_reply(REPLY_TIMEOUT) {
            Ok(r) => r,
            Err(e) => panic!("reading a reply: {e} (buffered: {:?})", String::from_utf8_lossy(&self.buf)),
        }
    }

    /// Reads one complete reply, failing on timeout, error or close.
    pub fn try_read_reply(&mut self, timeout: Duration) -> io::Result<Vec<u8>> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(len) = reply_len(&self.buf, 0) {
                return Ok(self.buf.drain(..len).collect());
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(io::Error::new(io::ErrorKind::TimedOut, "no complete reply in time"));
            }
            self.stream.set_read_timeout(Some(left))?;
            let mut chunk = [0u8; 64 * 1024];
            match self.stream.read(&mut chunk)? {
                0 => return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "connection closed")),
                n => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
    }

    /// Waits up to `timeout` for the server to close the connection. Any data received
    /// meanwhile is an error, as is the connection still being open at the deadline.
    pub fn wait_closed(&mut self, timeout: Duration) -> Result<Closed, String> {
        if !self.buf.is_empty() {
            return Err(format!("unexpected data: {:?}", String::from_utf8_lossy(&self.buf)));
        }
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(format!("connection still open after {timeout:?}"));
            }
            self.stream.set_read_timeout(Some(left)).map_err(|e| e.to_string())?;
            let mut chunk = [0u8; 4096];
            match self.stream.read(&mut chunk) {
                Ok(0) => return Ok(Closed::Eof),
                Ok(n) => return Err(format!("unexpected data: {:?}", String::from_utf8_lossy(&chunk[..n]))),
                Err(e) if e.kind() == io::ErrorKind::ConnectionReset => return Ok(Closed::Reset),
                Err(e) if is_timeout(&e) => {}
                Err(e) => return Err(format!("read error: {e}")),
            }
        }
    }
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut)
}

/// Encodes a command as a RESP multibulk request.
pub fn encode(args: &[&str]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// The length of the complete RESP2/RESP3 reply starting at `buf[at..]`, if it is complete.
pub fn reply_len(buf: &[u8], at: usize) -> Option<usize> {
    let line_end = at + buf.get(at..)?.windows(2).position(|w| w == b"\r\n")?;
    let header = std::str::from_utf8(&buf[at + 1..line_end]).ok()?;
    let after = line_end + 2;
    match *buf.get(at)? {
        b'+' | b'-' | b':' | b'_' | b'#' | b',' | b'(' => Some(after - at),
        b'$' | b'=' | b'!' => {
            let n: i64 = header.parse().ok()?;
            if n < 0 {
                return Some(after - at);
            }
            let end = after + n as usize + 2;
            (buf.len() >= end).then_some(end - at)
        }
        b'*' | b'~' | b'>' | b'%' | b'|' => {
            let n: i64 = header.parse().ok()?;
            let items = if matches!(buf[at], b'%' | b'|') { n * 2 } else { n };
            let mut pos = after;
            for _ in 0..items.max(0) {
                pos += reply_len(buf, pos)?;
            }
            // An attribute is followed by the reply it annotates.
            if buf[at] == b'|' {
                pos += reply_len(buf, pos)?;
            }
            Some(pos - at)
        }
        other => panic!("not a RESP reply type: {:?}", other as char),
    }
}

/// A real redis-server (the oracle), killed when dropped.
pub type RealRedis = interop::Redis;

/// `redis-server` from `$REDIS_SERVER` or the PATH.
pub fn find_redis_server() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("REDIS_SERVER") {
        return Some(PathBuf::from(p));
    }
    let path_var = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path_var)
        .chain(["/usr/bin", "/usr/local/bin"].map(PathBuf::from))
        .map(|d| d.join("redis-server"))
        .find(|c| c.is_file())
}

/// Start a real redis-server (no persistence, never loading a stray dump), or None after
/// printing why the test is skipped; FERROUS_REQUIRE_REDIS=1 turns a missing server into a
/// failure.
pub fn start_real_redis(test: &str) -> Option<RealRedis> {
    let Some(path) = find_redis_server() else {
        if std::env::var("FERROUS_REQUIRE_REDIS").as_deref() == Ok("1") {
            panic!("FERROUS_REQUIRE_REDIS=1 but no redis-server was found");
        }
        eprintln!("SKIPPED: {test} needs redis-server (apt-get install redis-server)");
        return None;
    };
    // Never loading a stray dump: a file name of its own that nothing writes (saves are off).
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let dump = format!("ferrous-test-nonexistent-{}-{}.rdb", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
    Some(interop::Redis::start(&path, &work_dir(), &["--dbfilename", &dump]))
}

/// Waits up to `timeout` for `child` to answer PING on `port` as the process listening there;
/// false when it never did, or exited first (having lost the port to another server, which
/// answers PING there too).
pub fn wait_serving(child: &mut Child, port: u16, timeout: Duration) -> bool {
    let up = wait_until(timeout, || {
        child.try_wait().ok().flatten().is_some()
            || (listens_on(child.id(), port)
                && redis::Client::open(format!("redis://127.0.0.1:{port}/"))
                    .and_then(|c| c.get_connection())
                    .and_then(|mut c| redis::cmd("PING").query::<String>(&mut c))
                    .is_ok())
    });
    up && child.try_wait().ok().flatten().is_none()
}

/// The server's clock (TIME) in Unix milliseconds.
pub fn server_ms(con: &mut redis::Connection) -> i64 {
    let t: Vec<String> = query(con, &["TIME"]);
    t[0].parse::<i64>().expect("seconds") * 1000 + t[1].parse::<i64>().expect("microseconds") / 1000
}

/// Run a command with the `redis` crate, panicking with the command on an error.
pub fn query<T: redis::FromRedisValue>(con: &mut redis::Connection, args: &[&str]) -> T {
    redis::cmd(args[0]).arg(&args[1..]).query(con).unwrap_or_else(|e| panic!("{args:?} failed: {e}"))
}

/// A field of an INFO section, as text.
pub fn info_field(con: &mut redis::Connection, section: &str, field: &str) -> String {
    let info: String = query(con, &["INFO", section]);
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .unwrap_or_else(|| panic!("{field} in INFO {section}"))
        .trim()
        .to_string()
}
