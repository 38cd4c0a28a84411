//! The Lua debugger (Redis's LDB): SCRIPT DEBUG SYNC / YES, then an EVAL runs as a debugging
//! session. The session talks to the client's socket itself, as Redis does: the Lua line hook
//! sends the log lines (an array of status replies) and reads the debugger's commands with
//! blocking reads, so the script is suspended on its own worker thread meanwhile (that thread
//! serves nobody else; clients of other workers wait for the script, never get BUSY: see
//! `Busy::debugging`). The session's state is a thread-local of the script's thread; nothing
//! here takes a lock.
//!
//! - SYNC: as Redis. The session's writes are kept; the connection closes after the EVAL reply.
//! - YES: Redis forks and the child runs the session, throwing its writes away. Ferrous cannot
//!   fork, so the session runs as SYNC does (other clients wait) and the script's write
//!   commands are refused with an error instead of being kept (`Session::forked`).
//!
//! Every text and the byte layout of the replies follow Redis 7.0's eval.c.

use bytes::Bytes;
use mlua::ffi;
use std::cell::Cell;
use std::ffi::CStr;
use std::os::raw::{c_char, c_int};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::commands::{Action, CmdResult, Ctx};
use crate::server::Server;
use crate::session::ClientHandle;

const MAX_BREAKPOINTS: usize = 64;
/// Default length limit of logged replies and values.
const MAX_LEN_DEFAULT: usize = 256;
/// Nesting shown of a value (Redis's LDB_MAX_VALUES_DEPTH, LUA_MINSTACK / 2).
const MAX_VALUES_DEPTH: usize = 10;
/// The most unparsed input the debugger keeps.
const MAX_INPUT: usize = 1 << 20;
/// How long a write of the log may wait for the client (Redis's send timeout).
const SEND_TIMEOUT: Duration = Duration::from_secs(5);
/// Waits for input are cut in slices this long, to notice a shutdown or CLIENT KILL.
const READ_SLICE_MS: c_int = 100;

/// The error texts Redis raises in the script.
const ABORTED: &str = "script aborted for user request";
const PROTOCOL_ERROR: &str = "protocol error";
const MAX_BUFFER: &str = "max client buffer reached";
const TIMEOUT_GONE: &str = "timeout during Lua debugging with client closing connection";
const KILLED: &str = "Script killed by user with SCRIPT KILL...";

/// One debugging session (Redis's `struct ldbState`).
struct Session<'a> {
    server: &'a Server,
    handle: &'a ClientHandle,
    /// The client's socket (read and written directly, blocking).
    fd: c_int,
    /// SCRIPT DEBUG YES: the script's writes are refused.
    forked: bool,
    /// The client is gone (or the server shuts down): output is dropped, nothing is read.
    gone: bool,
    logs: Vec<Vec<u8>>,
    bp: Vec<i32>,
    /// Stop at the next line.
    step: bool,
    /// Stop at the next line: redis.breakpoint() was called.
    luabp: bool,
    src: Vec<Vec<u8>>,
    currentline: i32,
    /// Input not parsed yet.
    cbuf: Vec<u8>,
    maxlen: usize,
    maxlen_hint_sent: bool,
    /// Since when the script has run without stopping (the timeout check).
    timer: Instant,
}

thread_local! {
    /// The session of the script running on this thread (null when none, and while in use).
    static SESSION: Cell<*mut ()> = const { Cell::new(std::ptr::null_mut()) };
}

/// Run `f` with the thread's session; None when no session runs. `f` must not call Lua.
fn with<R>(f: impl FnOnce(&mut Session<'_>) -> R) -> Option<R> {
    let p = SESSION.with(|s| s.replace(std::ptr::null_mut()));
    if p.is_null() {
        return None;
    }
    // SAFETY: `eval` stored a live session that outlives its installation, and the pointer is
    // taken out while `f` runs, so this is the only reference.
    let r = f(unsafe { &mut *(p as *mut Session<'_>) });
    SESSION.with(|s| s.set(p));
    Some(r)
}

/// Whether a debugging session runs on this thread.
pub fn is_active() -> bool {
    SESSION.with(|s| !s.get().is_null())
}

/// Whether the running session is a SCRIPT DEBUG YES one (its writes are refused).
pub fn forked() -> bool {
    with(|s| s.forked).unwrap_or(false)
}

/// Redis's ldbIsEnabled: a session runs and is stepping (redis.call logs its commands).
pub fn logging() -> bool {
    with(|s| s.step).unwrap_or(false)
}

/// The error a YES session's write command gets.
pub const WRITE_REFUSED: &str = "Write commands are not allowed in a SCRIPT DEBUG YES session: Ferrous cannot fork to throw the session's changes away (use SCRIPT DEBUG SYNC to keep them)";

/// Clears the thread's session (and the busy state's mark) when the session ends, however.
struct Installed<'a>(&'a Server);

impl Drop for Installed<'_> {
    fn drop(&mut self) {
        SESSION.with(|s| s.set(std::ptr::null_mut()));
        self.0.scripting.busy.debugging.store(false, Ordering::SeqCst);
    }
}

/// EVAL under the debugger (Redis's evalGenericCommandWithDebugging): start the session, run
/// the script through `run`, end the session (the `<endsession>` mark) and close the
/// connection after the reply.
pub fn eval(ctx: &mut Ctx, forked: bool, run: impl FnOnce(&mut Ctx) -> CmdResult) -> CmdResult {
    let server = ctx.server;
    let handle = ctx.client.handle.clone();
    if forked {
        crate::server::log::warning("Redis forked for debugging eval");
    } else {
        crate::server::log::warning("Redis synchronous debugging eval session started");
    }
    let mut session = Session {
        server,
        handle: &handle,
        fd: handle.fd as c_int,
        forked,
        gone: handle.fd < 0,
        logs: Vec::new(),
        bp: Vec::new(),
        step: true,
        luabp: false,
        src: split_source(&ctx.args[1]),
        currentline: 0,
        cbuf: Vec::new(),
        maxlen: MAX_LEN_DEFAULT,
        maxlen_hint_sent: false,
        timer: Instant::now(),
    };
    let result = {
        server.scripting.busy.debugging.store(true, Ordering::SeqCst);
        SESSION.with(|s| s.set(&mut session as *mut Session<'_> as *mut ()));
        let _installed = Installed(server);
        run(ctx)
    };
    session.log(b"<endsession>".to_vec());
    session.send_logs();
    if forked {
        crate::server::log::warning("Lua debugging session child exiting");
    } else {
        crate::server::log::warning("Redis synchronous debugging eval session ended");
    }
    // The end of the session is the end of the connection, after the EVAL reply.
    ctx.action = Action::Close;
    result
}

/// The script's lines (Redis's ldbStartSession: trailing newlines dropped, split at '\n').
fn split_source(body: &[u8]) -> Vec<Vec<u8>> {
    let mut end = body.len();
    while end > 0 && (body[end - 1] == b'\n' || body[end - 1] == b'\r') {
        end -= 1;
    }
    if end == 0 {
        return Vec::new();
    }
    body[..end].split(|&c| c == b'\n').map(|l| l.to_vec()).collect()
}

/// Install the debugger's hook (every line, and every 100k instructions for the timeout
/// check) on the state scripts run on; the engine's own hook is installed again after the run.
///
/// # Safety
/// `state` is the engine's main state, which no one else uses meanwhile.
pub unsafe fn set_hook(state: *mut ffi::lua_State) {
    ffi::lua_sethook(state, Some(line_hook), ffi::LUA_MASKLINE | ffi::LUA_MASKCOUNT, 100_000);
}

impl Session<'_> {
    fn log(&mut self, entry: Vec<u8>) {
        self.logs.push(entry);
    }

    /// Redis's ldbLogWithMaxLen: trimmed to `maxlen`, with a hint the first time.
    fn log_max_len(&mut self, mut entry: Vec<u8>) {
        let trimmed = self.maxlen > 0 && entry.len() > self.maxlen;
        if trimmed {
            entry.truncate(self.maxlen);
            entry.extend_from_slice(b" ...");
        }
        self.log(entry);
        if trimmed && !self.maxlen_hint_sent {
            self.maxlen_hint_sent = true;
            self.log(b"<hint> The above reply was trimmed. Use 'maxlen 0' to disable trimming.".to_vec());
        }
    }

    /// Redis's ldbSendLogs: the log as an array of status replies (CR and LF as spaces).
    fn send_logs(&mut self) {
        let out = logs_reply(&mut self.logs);
        self.write_all(&out);
    }

    fn write_all(&mut self, mut b: &[u8]) {
        if self.gone {
            return;
        }
        let deadline = Instant::now() + SEND_TIMEOUT;
        while !b.is_empty() {
            // SAFETY: a write of a live buffer to the connection's own descriptor.
            let n = unsafe { libc::write(self.fd, b.as_ptr().cast(), b.len()) };
            if n > 0 {
                b = &b[n as usize..];
                continue;
            }
            let err = std::io::Error::last_os_error();
            match err.kind() {
                std::io::ErrorKind::Interrupted => continue,
                std::io::ErrorKind::WouldBlock => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() || wait(self.fd, libc::POLLOUT, left.as_millis() as c_int) < 0 {
                        return;
                    }
                }
                // As Redis, a failed write is not acted upon: the next read finds the client gone.
                _ => return,
            }
        }
    }

    /// Read more input (blocking). Err: the client is gone, or the server shuts down.
    fn read_more(&mut self) -> Result<(), Gone> {
        if self.gone {
            return Err(Gone::Client);
        }
        let mut buf = [0u8; 1024];
        loop {
            if self.handle.is_killed()
                || self.server.is_shutting_down()
                || self.server.shutdown_pending.load(Ordering::SeqCst)
            {
                self.gone = true;
                return Err(Gone::Client);
            }
            if self.server.scripting.busy.kill.load(Ordering::SeqCst) {
                return Err(Gone::Killed);
            }
            if wait(self.fd, libc::POLLIN, READ_SLICE_MS) == 0 {
                continue;
            }
            // SAFETY: a read into a live buffer from the connection's own descriptor.
            let n = unsafe { libc::read(self.fd, buf.as_mut_ptr().cast(), buf.len()) };
            if n > 0 {
                self.cbuf.extend_from_slice(&buf[..n as usize]);
                return Ok(());
            }
            if n < 0 {
                let kind = std::io::Error::last_os_error().kind();
                if matches!(kind, std::io::ErrorKind::Interrupted | std::io::ErrorKind::WouldBlock) {
                    continue;
                }
            }
            self.gone = true;
            return Err(Gone::Client);
        }
    }

    fn is_breakpoint(&self, line: i32) -> bool {
        self.bp.contains(&line)
    }

    fn source_line(&self, line: i32) -> &[u8] {
        match usize::try_from(line - 1).ok().and_then(|i| self.src.get(i)) {
            Some(l) => l,
            None => b"<out of range source code line>",
        }
    }

    /// Redis's ldbLogSourceLine: "->#12  code".
    fn log_source_line(&mut self, line: i32) {
        let prefix = match (self.currentline == line, self.is_breakpoint(line)) {
            (true, true) => "->#",
            (true, false) => "-> ",
            (false, true) => "  #",
            (false, false) => "   ",
        };
        let mut entry = format!("{prefix}{line:<3} ").into_bytes();
        entry.extend_from_slice(self.source_line(line));
        self.log(entry);
    }

    /// Redis's ldbList: the whole source, or `context` lines around `around`.
    fn list(&mut self, around: i32, context: i32) {
        for j in 1..=self.src.len() as i32 {
            if around != 0 && (around as i64 - j as i64).abs() > context as i64 {
                continue;
            }
            self.log_source_line(j);
        }
    }

    /// Redis's ldbBreak.
    fn breakpoints(&mut self, argv: &[Vec<u8>]) {
        if argv.len() == 1 {
            if self.bp.is_empty() {
                self.log(b"No breakpoints set. Use 'b <line>' to add one.".to_vec());
            } else {
                self.log(format!("{} breakpoints set:", self.bp.len()).into_bytes());
                for line in self.bp.clone() {
                    self.log_source_line(line);
                }
            }
            return;
        }
        for arg in &argv[1..] {
            let Some(line) = crate::util::num::parse_i64(arg) else {
                let mut entry = b"Invalid argument:'".to_vec();
                entry.extend_from_slice(c_str(arg));
                entry.push(b'\'');
                self.log(entry);
                continue;
            };
            if line == 0 {
                self.bp.clear();
                self.log(b"All breakpoints removed.".to_vec());
            } else if line > 0 {
                if self.bp.len() == MAX_BREAKPOINTS {
                    self.log(b"Too many breakpoints set.".to_vec());
                } else if line <= self.src.len() as i64 && !self.is_breakpoint(line as i32) {
                    self.bp.push(line as i32);
                    self.list(line as i32, 1);
                } else {
                    self.log(b"Wrong line number.".to_vec());
                }
            } else {
                match self.bp.iter().position(|&b| b as i64 == -line) {
                    Some(i) => {
                        self.bp.remove(i);
                        self.log(b"Breakpoint removed.".to_vec());
                    }
                    None => self.log(b"No breakpoint in the specified line.".to_vec()),
                }
            }
        }
    }

    /// Redis's ldbMaxlen.
    fn set_maxlen(&mut self, argv: &[Vec<u8>]) {
        if argv.len() == 2 {
            let mut n = atoi(&argv[1]);
            self.maxlen_hint_sent = true;
            if n != 0 && n <= 60 {
                n = 60;
            }
            self.maxlen = n as usize;
        }
        let entry = if self.maxlen > 0 {
            format!("<value> replies are truncated at {} bytes.", self.maxlen as c_int)
        } else {
            "<value> replies are unlimited.".to_string()
        };
        self.log(entry.into_bytes());
    }

    fn help(&mut self) {
        for line in HELP {
            self.log(line.as_bytes().to_vec());
        }
    }
}

/// Why the debugger stopped reading.
enum Gone {
    /// The client closed the connection (or was killed, or the server shuts down).
    Client,
    /// SCRIPT KILL from another client.
    Killed,
}

/// poll(2) on one descriptor: > 0 ready (or hung up / failed: the read or write says which),
/// 0 timed out, < 0 failed.
fn wait(fd: c_int, events: libc::c_short, ms: c_int) -> c_int {
    let mut p = libc::pollfd { fd, events, revents: 0 };
    // SAFETY: one valid pollfd.
    let r = unsafe { libc::poll(&mut p, 1, ms) };
    if r < 0 && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
        return 0;
    }
    r
}

/// The log as Redis's ldbSendLogs writes it; the log is emptied.
fn logs_reply(logs: &mut Vec<Vec<u8>>) -> Vec<u8> {
    let mut out = format!("*{}\r\n", logs.len()).into_bytes();
    for entry in logs.drain(..) {
        out.push(b'+');
        out.extend(entry.iter().map(|&c| if c == b'\r' || c == b'\n' { b' ' } else { c }));
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// The bytes of `s` up to its first NUL (what Redis's C string functions see).
fn c_str(s: &[u8]) -> &[u8] {
    s.iter().position(|&c| c == 0).map_or(s, |i| &s[..i])
}

/// C's atoi as glibc has it: (int) strtol(s, NULL, 10).
fn atoi(s: &[u8]) -> i32 {
    let s = c_str(s);
    let mut i = s.iter().take_while(|c| matches!(c, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)).count();
    let neg = match s.get(i) {
        Some(b'-') => {
            i += 1;
            true
        }
        Some(b'+') => {
            i += 1;
            false
        }
        _ => false,
    };
    let mut n: i64 = 0;
    for &c in s[i..].iter().take_while(|c| c.is_ascii_digit()) {
        n = n.saturating_mul(10).saturating_add((c - b'0') as i64);
    }
    (if neg { n.saturating_neg() } else { n }) as i32
}

/// Redis's ldbReplParseCommand: one multibulk command off the front of `buf`. Ok(None): more
/// input is needed; Err: a protocol error. As Redis, `buf` is searched as a C string (a NUL
/// ends it) and limits arguments to 1024 of up to 1024 bytes each.
fn parse_command(buf: &[u8]) -> Result<Option<Vec<Vec<u8>>>, ()> {
    if buf.is_empty() {
        return Ok(None);
    }
    let cstr = c_str(buf);
    let find_crlf = |from: usize| -> Option<usize> {
        cstr.get(from..).and_then(|s| s.windows(2).position(|w| w == b"\r\n")).map(|i| from + i)
    };
    let Some(star) = cstr.iter().position(|&c| c == b'*') else {
        return Err(());
    };
    let Some(crlf) = find_crlf(star) else {
        return Ok(None);
    };
    let argc = atoi(&buf[star + 1..crlf]);
    if argc <= 0 || argc > 1024 {
        return Err(());
    }
    let mut p = crlf + 2;
    let mut argv = Vec::with_capacity(argc as usize);
    while argv.len() < argc as usize {
        match buf.get(p) {
            None | Some(0) => return Ok(None),
            Some(b'$') => {}
            Some(_) => return Err(()),
        }
        let Some(crlf) = find_crlf(p) else {
            return Ok(None);
        };
        let len = atoi(&buf[p + 1..crlf]);
        if len <= 0 || len > 1024 {
            return Err(());
        }
        p = crlf + 2;
        let len = len as usize;
        if p + len + 2 > buf.len() {
            return Ok(None);
        }
        argv.push(buf[p..p + len].to_vec());
        p += len;
        if &buf[p..p + 2] != b"\r\n" {
            return Err(());
        }
        p += 2;
    }
    Ok(Some(argv))
}

/// Redis's ldbRedisProtocolToHuman: a RESP reply in a readable form, appended to `out`;
/// returns the bytes it read.
pub fn protocol_to_human(out: &mut Vec<u8>, reply: &[u8]) -> usize {
    let line_end =
        |from: usize| reply[from.min(reply.len())..].iter().position(|&c| c == b'\r').map_or(reply.len(), |i| from + i);
    let Some(&kind) = reply.first() else {
        return 0;
    };
    let end = line_end(1);
    let next = (end + 2).min(reply.len());
    let header = &reply[1..end];
    let count = || crate::util::num::parse_i64(header).unwrap_or(0);
    match kind {
        b':' => {
            out.extend_from_slice(header);
            next
        }
        b'$' => {
            let n = count();
            if n < 0 {
                out.extend_from_slice(b"NULL");
                return next;
            }
            let body_end = (next + n as usize).min(reply.len());
            crate::server::monitor::repr_into(out, &reply[next..body_end]);
            (body_end + 2).min(reply.len())
        }
        b'+' | b'-' => {
            crate::server::monitor::repr_into(out, &reply[..end]);
            next
        }
        b'*' | b'~' | b'%' => {
            let n = count();
            if kind == b'*' && n < 0 {
                out.extend_from_slice(b"NULL");
                return next;
            }
            let (open, close) = match kind {
                b'*' => (&b"["[..], b']'),
                b'~' => (&b"~("[..], b')'),
                _ => (&b"{"[..], b'}'),
            };
            out.extend_from_slice(open);
            let mut p = next;
            for j in 0..n.max(0) {
                p += protocol_to_human(out, &reply[p..]);
                if kind == b'%' {
                    out.extend_from_slice(b" => ");
                    p += protocol_to_human(out, &reply[p..]);
                }
                if j != n - 1 {
                    out.push(b',');
                }
            }
            out.push(close);
            p
        }
        b'_' => {
            out.extend_from_slice(b"(null)");
            next
        }
        b'#' => {
            out.extend_from_slice(if header.first() == Some(&b't') { b"#true" } else { b"#false" });
            next
        }
        b',' => {
            out.extend_from_slice(b"(double) ");
            out.extend_from_slice(header);
            next
        }
        // Types Redis does not render (a script's replies never have them).
        _ => next,
    }
}

/// `<redis> cmd args...` before a redis.call runs, when stepping (Redis's luaRedisGenericCommand).
pub fn log_command(argv: &[Bytes]) {
    with(|s| {
        if !s.step {
            return;
        }
        let mut entry = b"<redis>".to_vec();
        for (j, a) in argv.iter().enumerate() {
            if j == 10 {
                entry.extend_from_slice(format!(" ... ({} more)", argv.len() - j - 1).as_bytes());
                break;
            }
            entry.push(b' ');
            entry.extend_from_slice(c_str(a));
        }
        s.log(entry);
    });
}

/// `<error> text` for an error handed to Lua, when stepping (Redis's luaPushErrorBuff).
pub fn log_error(text: &[u8]) {
    with(|s| {
        if s.step {
            let mut entry = b"<error> ".to_vec();
            entry.extend_from_slice(c_str(text));
            s.log(entry);
        }
    });
}

/// After a redis.call, when stepping: an error reply's `<error>` line, then `<reply> ...`.
pub fn log_reply(reply: &[u8]) {
    with(|s| {
        if !s.step {
            return;
        }
        if reply.first() == Some(&b'-') {
            let end = reply.iter().position(|&c| c == b'\r').unwrap_or(reply.len());
            let mut entry = b"<error> ".to_vec();
            entry.extend_from_slice(c_str(&reply[..end]));
            s.log(entry);
        }
        let mut entry = b"<reply> ".to_vec();
        protocol_to_human(&mut entry, reply);
        s.log_max_len(entry);
    });
}

/// `redis.debug(...)`: log its arguments (nothing outside a session).
///
/// # Safety
/// Only to be called by the Lua VM, as a C function of the state it belongs to.
pub unsafe extern "C-unwind" fn lua_redis_debug(l: *mut ffi::lua_State) -> c_int {
    let Some(line) = with(|s| s.currentline) else {
        return 0;
    };
    let argc = ffi::lua_gettop(l);
    let mut entry = format!("<debug> line {line}: ").into_bytes();
    for i in 1..=argc {
        cat_value(l, i, &mut entry, 0);
        if i != argc {
            entry.extend_from_slice(b", ");
        }
    }
    with(|s| s.log(entry));
    0
}

/// `redis.breakpoint()`: stop at the next line; true in a session, false outside.
///
/// # Safety
/// Only to be called by the Lua VM, as a C function of the state it belongs to.
pub unsafe extern "C-unwind" fn lua_redis_breakpoint(l: *mut ffi::lua_State) -> c_int {
    let active = with(|s| s.luabp = true).is_some();
    ffi::lua_pushboolean(l, active as c_int);
    1
}

/// Redis's ldbCatStackValue: the value at `idx` in a readable form (strings quoted, tables
/// as `{1; 2}` or `{["k"]=v}`), appended to `out`.
///
/// # Safety
/// `l` is a live state with a value at `idx`.
pub unsafe fn cat_value(l: *mut ffi::lua_State, idx: c_int, out: &mut Vec<u8>, level: usize) {
    let idx = if idx < 0 && idx > ffi::LUA_REGISTRYINDEX { ffi::lua_gettop(l) + idx + 1 } else { idx };
    if level == MAX_VALUES_DEPTH {
        out.extend_from_slice(b"<max recursion level reached! Nested table?>");
        return;
    }
    let level = level + 1;
    let t = ffi::lua_type(l, idx);
    match t {
        ffi::LUA_TSTRING => {
            let mut n = 0;
            let p = ffi::lua_tolstring(l, idx, &mut n);
            crate::server::monitor::repr_into(out, std::slice::from_raw_parts(p as *const u8, n));
        }
        ffi::LUA_TBOOLEAN => out.extend_from_slice(if ffi::lua_toboolean(l, idx) != 0 { b"true" } else { b"false" }),
        ffi::LUA_TNUMBER => out.extend_from_slice(super::libs::fmt_g(ffi::lua_tonumber(l, idx), 6).as_bytes()),
        ffi::LUA_TNIL => out.extend_from_slice(b"nil"),
        ffi::LUA_TTABLE => {
            if ffi::lua_checkstack(l, 3) == 0 {
                out.extend_from_slice(b"<max recursion level reached! Nested table?>");
                return;
            }
            let mut expected = 1.0;
            let mut is_array = true;
            let (mut array, mut full) = (Vec::new(), Vec::new());
            ffi::lua_pushnil(l);
            while ffi::lua_next(l, idx) != 0 {
                let (key, value) = (ffi::lua_gettop(l) - 1, ffi::lua_gettop(l));
                if is_array && (ffi::lua_type(l, key) != ffi::LUA_TNUMBER || ffi::lua_tonumber(l, key) != expected) {
                    is_array = false;
                }
                cat_value(l, value, &mut array, level);
                array.extend_from_slice(b"; ");
                full.push(b'[');
                cat_value(l, key, &mut full, level);
                full.extend_from_slice(b"]=");
                cat_value(l, value, &mut full, level);
                full.extend_from_slice(b"; ");
                ffi::lua_pop(l, 1);
                expected += 1.0;
            }
            let body = if is_array { &mut array } else { &mut full };
            body.truncate(body.len().saturating_sub(2));
            out.push(b'{');
            out.extend_from_slice(body);
            out.push(b'}');
        }
        ffi::LUA_TFUNCTION | ffi::LUA_TUSERDATA | ffi::LUA_TTHREAD | ffi::LUA_TLIGHTUSERDATA => {
            let name = match t {
                ffi::LUA_TFUNCTION => "function",
                ffi::LUA_TUSERDATA => "userdata",
                ffi::LUA_TTHREAD => "thread",
                _ => "light-userdata",
            };
            let p = ffi::lua_topointer(l, idx);
            // glibc's %p.
            let p = if p.is_null() { "(nil)".to_string() } else { format!("{p:p}") };
            out.extend_from_slice(format!("\"{name}@{p}\"").as_bytes());
        }
        _ => out.extend_from_slice(b"\"<unknown-lua-type>\""),
    }
}

/// The debugger's hook (Redis's luaLdbLineHook): stop when stepping, at a breakpoint, after
/// redis.breakpoint(), or when the script ran too long without a stop; then serve the
/// debugger's commands until one resumes the script.
///
/// SAFETY (for the Lua VM calling it): when it raises, nothing with a destructor is alive in
/// this frame (`hook` has returned).
unsafe extern "C-unwind" fn line_hook(l: *mut ffi::lua_State, ar: *mut ffi::lua_Debug) {
    if let Some(msg) = hook(l, ar) {
        // luaPushError + luaError: {err = "ERR <msg>"}.
        ffi::lua_createtable(l, 0, 1);
        ffi::lua_pushlstring_(l, b"err".as_ptr() as *const c_char, 3);
        ffi::lua_pushlstring_(l, b"ERR ".as_ptr() as *const c_char, 4);
        ffi::lua_pushlstring_(l, msg.as_ptr() as *const c_char, msg.len());
        ffi::lua_concat(l, 2);
        ffi::lua_rawset(l, -3);
        ffi::lua_error(l);
    }
}

/// Where a hook event is: the script's own code ("user_script"), not the prelude's.
unsafe fn in_script(ar: *const ffi::lua_Debug) -> bool {
    let src = CStr::from_ptr((*ar).short_src.as_ptr()).to_bytes();
    src.windows(11).any(|w| w == b"user_script")
}

/// The hook's work; Some: the error to raise in the script.
unsafe fn hook(l: *mut ffi::lua_State, ar: *mut ffi::lua_Debug) -> Option<&'static str> {
    let event = (*ar).event;
    if ffi::lua_getstack(l, 0, ar) == 0 {
        return None;
    }
    ffi::lua_getinfo(l, c"Sl".as_ptr(), ar);
    // (Events of the prelude's Lua code are not the script's: its current line stays.)
    if !in_script(ar) {
        return None;
    }
    let line = (*ar).currentline;
    let timeout = with(|s| {
        s.currentline = line;
        let bp = s.is_breakpoint(line) || s.luabp;
        let mut timeout = false;
        if event == ffi::LUA_HOOKCOUNT && !s.step && !bp {
            let limit = crate::commands::pipeline::busy_threshold(s.server).unwrap_or(Duration::from_secs(5));
            if s.timer.elapsed() < limit {
                return None;
            }
            timeout = true;
            s.step = true;
        }
        if !s.step && !bp {
            return None;
        }
        let reason = if bp {
            if s.luabp {
                "redis.breakpoint() called"
            } else {
                "break point"
            }
        } else if timeout {
            "timeout reached, infinite loop?"
        } else {
            "step over"
        };
        s.step = false;
        s.luabp = false;
        s.log(format!("* Stopped at {line}, stop reason = {reason}").into_bytes());
        s.log_source_line(line);
        s.send_logs();
        Some(timeout)
    })??;
    match repl(l) {
        Ok(()) => {}
        Err(Stop::Raise(msg)) => return Some(msg),
        // The client is gone: the script runs on without stopping, unless it is stuck.
        Err(Stop::Gone) if timeout => return Some(TIMEOUT_GONE),
        Err(Stop::Gone) => {}
    }
    let now = Instant::now();
    with(|s| s.timer = now);
    super::call::with_active(|st| st.start = now);
    None
}

/// Why the debugger's command loop ended other than by resuming the script.
enum Stop {
    Gone,
    Raise(&'static str),
}

/// Redis's ldbRepl: read and serve the debugger's commands until one resumes the script.
unsafe fn repl(l: *mut ffi::lua_State) -> Result<(), Stop> {
    loop {
        let argv = loop {
            let parsed = with(|s| parse_command(&s.cbuf)).unwrap_or(Err(()));
            match parsed {
                Ok(Some(argv)) => break argv,
                Ok(None) => {}
                Err(()) => return Err(Stop::Raise(PROTOCOL_ERROR)),
            }
            let read = with(|s| {
                let r = s.read_more();
                if r.is_err() {
                    // The script runs on without the client's input.
                    s.step = false;
                    s.bp.clear();
                }
                (r, s.cbuf.len())
            });
            match read {
                Some((Ok(()), n)) if n > MAX_INPUT => {
                    with(|s| s.cbuf = Vec::new());
                    return Err(Stop::Raise(MAX_BUFFER));
                }
                Some((Ok(()), _)) => {}
                Some((Err(Gone::Killed), _)) => return Err(Stop::Raise(KILLED)),
                Some((Err(Gone::Client), _)) | None => return Err(Stop::Gone),
            }
        };
        // As Redis, input past the command is dropped.
        with(|s| s.cbuf.clear());
        let name = c_str(&argv[0]).to_ascii_lowercase();
        let argc = argv.len();
        match name.as_slice() {
            b"h" | b"help" => {
                with(|s| s.help());
            }
            b"s" | b"step" | b"n" | b"next" => {
                with(|s| s.step = true);
                return Ok(());
            }
            b"c" | b"continue" => return Ok(()),
            b"t" | b"trace" => trace(l),
            b"m" | b"maxlen" => {
                with(|s| s.set_maxlen(&argv));
            }
            b"b" | b"break" => {
                with(|s| s.breakpoints(&argv));
            }
            b"e" | b"eval" => eval_code(l, &argv),
            b"a" | b"abort" => return Err(Stop::Raise(ABORTED)),
            b"r" | b"redis" if argc > 1 => redis_command(l, &argv),
            b"p" | b"print" if argc == 2 => print(l, c_str(&argv[1])),
            b"p" | b"print" => print_all(l),
            b"l" | b"list" => {
                with(|s| {
                    let mut around = s.currentline;
                    if argc > 1 {
                        let n = atoi(&argv[1]);
                        if n > 0 {
                            around = n;
                        }
                    }
                    let context = if argc > 2 { atoi(&argv[2]) } else { 5 };
                    s.list(around, context);
                });
            }
            b"w" | b"whole" => {
                with(|s| s.list(1, 1_000_000));
            }
            _ => {
                with(|s| s.log(b"<error> Unknown Redis Lua debugger command or wrong number of arguments.".to_vec()));
            }
        }
        with(|s| s.send_logs());
    }
}

fn log_value(prefix: &[u8], l: *mut ffi::lua_State, idx: c_int) {
    let mut entry = prefix.to_vec();
    // SAFETY: the callers have a value at `idx` on the live state `l`.
    unsafe { cat_value(l, idx, &mut entry, 0) };
    with(|s| s.log_max_len(entry));
}

fn log_text(prefix: &str, l: *mut ffi::lua_State, idx: c_int) {
    let mut entry = prefix.as_bytes().to_vec();
    let mut n = 0;
    // SAFETY: a value at `idx` on the live state `l`; a value that is not a string or number
    // gives null (Redis would crash on it; its type name is shown instead).
    unsafe {
        let p = ffi::lua_tolstring(l, idx, &mut n);
        if p.is_null() {
            entry.extend_from_slice(CStr::from_ptr(ffi::lua_typename(l, ffi::lua_type(l, idx))).to_bytes());
        } else {
            entry.extend_from_slice(c_str(std::slice::from_raw_parts(p as *const u8, n)));
        }
    }
    with(|s| s.log(entry));
}

/// Redis's ldbPrint: the first local of that name from the current frame outwards, else the
/// globals KEYS and ARGV.
unsafe fn print(l: *mut ffi::lua_State, name: &[u8]) {
    let mut ar: ffi::lua_Debug = std::mem::zeroed();
    let mut level = 0;
    while ffi::lua_getstack(l, level, &mut ar) != 0 {
        level += 1;
        let mut i = 1;
        loop {
            let local = ffi::lua_getlocal(l, &ar, i);
            if local.is_null() {
                break;
            }
            i += 1;
            if CStr::from_ptr(local).to_bytes() == name {
                log_value(b"<value> ", l, -1);
                ffi::lua_pop(l, 1);
                return;
            }
            ffi::lua_pop(l, 1);
        }
    }
    if name == b"ARGV" || name == b"KEYS" {
        let cname = if name == b"ARGV" { c"ARGV" } else { c"KEYS" };
        ffi::lua_getfield(l, ffi::LUA_GLOBALSINDEX, cname.as_ptr());
        log_value(b"<value> ", l, -1);
        ffi::lua_pop(l, 1);
    } else {
        with(|s| s.log(b"No such variable.".to_vec()));
    }
}

/// Redis's ldbPrintAll: the current frame's locals.
unsafe fn print_all(l: *mut ffi::lua_State) {
    let mut ar: ffi::lua_Debug = std::mem::zeroed();
    let mut vars = 0;
    if ffi::lua_getstack(l, 0, &mut ar) != 0 {
        let mut i = 1;
        loop {
            let local = ffi::lua_getlocal(l, &ar, i);
            if local.is_null() {
                break;
            }
            i += 1;
            let name = CStr::from_ptr(local).to_bytes();
            if !name.windows(12).any(|w| w == b"(*temporary)") {
                let mut prefix = b"<value> ".to_vec();
                prefix.extend_from_slice(name);
                prefix.extend_from_slice(b" = ");
                log_value(&prefix, l, -1);
                vars += 1;
            }
            ffi::lua_pop(l, 1);
        }
    }
    if vars == 0 {
        with(|s| s.log(b"No local variables in the current context.".to_vec()));
    }
}

/// Redis's ldbTrace: the script's frames, innermost first.
unsafe fn trace(l: *mut ffi::lua_State) {
    let mut ar: ffi::lua_Debug = std::mem::zeroed();
    let mut level = 0;
    while ffi::lua_getstack(l, level, &mut ar) != 0 {
        ffi::lua_getinfo(l, c"Snl".as_ptr(), &mut ar);
        if in_script(&ar) {
            let name = if ar.name.is_null() {
                "top level".to_string()
            } else {
                CStr::from_ptr(ar.name).to_string_lossy().into_owned()
            };
            let line = ar.currentline;
            let head = format!("{} {}:", if level == 0 { "In" } else { "From" }, name).into_bytes();
            with(|s| {
                s.log(head);
                s.log_source_line(line);
            });
        }
        level += 1;
    }
    if level == 0 {
        with(|s| s.log(b"<error> Can't retrieve Lua stack.".to_vec()));
    }
}

/// Redis's ldbEval: the code as an expression (`return <code>`), else as statements, run in
/// the script's environment; its value or its error is logged.
unsafe fn eval_code(l: *mut ffi::lua_State, argv: &[Vec<u8>]) {
    let code = argv[1..].join(&b' ');
    let expr = [b"return ".as_slice(), &code].concat();
    let name = c"@ldb_eval";
    if ffi::luaL_loadbuffer(l, expr.as_ptr() as *const c_char, expr.len(), name.as_ptr()) != 0 {
        ffi::lua_pop(l, 1);
        if ffi::luaL_loadbuffer(l, code.as_ptr() as *const c_char, code.len(), name.as_ptr()) != 0 {
            log_text("<error> ", l, -1);
            ffi::lua_pop(l, 1);
            return;
        }
    }
    // The script's environment (the real globals are not the scripts' protected view).
    let mut ar: ffi::lua_Debug = std::mem::zeroed();
    if ffi::lua_getstack(l, 0, &mut ar) != 0 && ffi::lua_getinfo(l, c"f".as_ptr(), &mut ar) != 0 {
        ffi::lua_getfenv(l, -1);
        ffi::lua_setfenv(l, -3);
        ffi::lua_pop(l, 1);
    }
    if ffi::lua_pcall(l, 0, 1, 0) != 0 {
        log_text("<error> ", l, -1);
        ffi::lua_pop(l, 1);
        return;
    }
    log_value(b"<retval> ", l, -1);
    ffi::lua_pop(l, 1);
}

/// Redis's ldbRedis: redis.call with the arguments, stepping, so that the command and its
/// reply are logged.
unsafe fn redis_command(l: *mut ffi::lua_State, argv: &[Vec<u8>]) {
    if ffi::lua_checkstack(l, argv.len() as c_int + 1) == 0 {
        with(|s| s.log(b"<reply> ".to_vec()));
        return;
    }
    ffi::lua_pushcfunction(l, super::call::lua_redis_call);
    for a in &argv[1..] {
        ffi::lua_pushlstring_(l, a.as_ptr() as *const c_char, a.len());
    }
    with(|s| s.step = true);
    ffi::lua_pcall(l, argv.len() as c_int - 1, 1, 0);
    with(|s| s.step = false);
    ffi::lua_pop(l, 1);
}

const HELP: &[&str] = &[
    "Redis Lua debugger help:",
    "[h]elp               Show this help.",
    "[s]tep               Run current line and stop again.",
    "[n]ext               Alias for step.",
    "[c]ontinue           Run till next breakpoint.",
    "[l]ist               List source code around current line.",
    "[l]ist [line]        List source code around [line].",
    "                     line = 0 means: current position.",
    "[l]ist [line] [ctx]  In this form [ctx] specifies how many lines",
    "                     to show before/after [line].",
    "[w]hole              List all source code. Alias for 'list 1 1000000'.",
    "[p]rint              Show all the local variables.",
    "[p]rint <var>        Show the value of the specified variable.",
    "                     Can also show global vars KEYS and ARGV.",
    "[b]reak              Show all breakpoints.",
    "[b]reak <line>       Add a breakpoint to the specified line.",
    "[b]reak -<line>      Remove breakpoint from the specified line.",
    "[b]reak 0            Remove all breakpoints.",
    "[t]race              Show a backtrace.",
    "[e]val <code>        Execute some Lua code (in a different callframe).",
    "[r]edis <cmd>        Execute a Redis command.",
    "[m]axlen [len]       Trim logged Redis replies and Lua var dumps to len.",
    "                     Specifying zero as <len> means unlimited.",
    "[a]bort              Stop the execution of the script. In sync",
    "                     mode dataset changes will be retained.",
    "",
    "Debugger functions you can call from Lua scripts:",
    "redis.debug()        Produce logs in the debugger console.",
    "redis.breakpoint()   Stop execution like if there was a breakpoint in the",
    "                     next line of code.",
];

#[cfg(test)]
mod tests {
    use super::*;

    fn human(reply: &[u8]) -> (String, usize) {
        let mut out = Vec::new();
        let n = protocol_to_human(&mut out, reply);
        (String::from_utf8(out).unwrap(), n)
    }

    #[test]
    fn replies_in_human_form() {
        assert_eq!(human(b":12\r\n"), ("12".into(), 5));
        assert_eq!(human(b"$3\r\nfoo\r\n"), ("\"foo\"".into(), 9));
        assert_eq!(human(b"$-1\r\n"), ("NULL".into(), 5));
        assert_eq!(human(b"*-1\r\n"), ("NULL".into(), 5));
        assert_eq!(human(b"+OK\r\n"), ("\"+OK\"".into(), 5));
        assert_eq!(human(b"-ERR bad \"x\"\r\n").0, "\"-ERR bad \\\"x\\\"\"");
        assert_eq!(human(b"*3\r\n$1\r\na\r\n$-1\r\n:3\r\n").0, "[\"a\",NULL,3]");
        assert_eq!(human(b"*0\r\n").0, "[]");
        assert_eq!(human(b"*2\r\n*1\r\n:1\r\n*0\r\n").0, "[[1],[]]");
        assert_eq!(human(b"%2\r\n+a\r\n:1\r\n$1\r\nb\r\n_\r\n").0, "{\"+a\" => 1,\"b\" => (null)}");
        assert_eq!(human(b"~2\r\n:1\r\n#t\r\n").0, "~(1,#true)");
        assert_eq!(human(b"#f\r\n").0, "#false");
        assert_eq!(human(b",3.5\r\n").0, "(double) 3.5");
        assert_eq!(human(b"$2\r\n\x01\n\r\n").0, "\"\\x01\\n\"");
    }

    #[test]
    fn commands_parse_as_redis_does() {
        let ok = |b: &[u8]| parse_command(b);
        assert_eq!(ok(b""), Ok(None));
        assert_eq!(ok(b"*1\r\n$1\r\ns\r\n"), Ok(Some(vec![b"s".to_vec()])));
        assert_eq!(ok(b"junk*2\r\n$1\r\np\r\n$1\r\na\r\n"), Ok(Some(vec![b"p".to_vec(), b"a".to_vec()])));
        assert_eq!(ok(b"*2\r\n$1\r\np\r\n"), Ok(None));
        assert_eq!(ok(b"*2\r\n$1\r\np\r\n$1\r\n"), Ok(None));
        assert_eq!(ok(b"*1\r"), Ok(None));
        assert_eq!(ok(b"hello\r\n"), Err(()));
        assert_eq!(ok(b"*0\r\n"), Err(()));
        assert_eq!(ok(b"*1025\r\n"), Err(()));
        assert_eq!(ok(b"*1\r\n$0\r\n\r\n"), Err(()));
        assert_eq!(ok(b"*1\r\n$1025\r\n"), Err(()));
        assert_eq!(ok(b"*1\r\n+s\r\n"), Err(()));
        assert_eq!(ok(b"*1\r\n$1\r\nsx\r\n"), Err(()));
        // A NUL inside an argument is data; NUL where a '$' should be means "read more".
        assert_eq!(ok(b"*1\r\n$3\r\na\0b\r\n"), Ok(Some(vec![b"a\0b".to_vec()])));
        assert_eq!(ok(b"*1\r\n\0"), Ok(None));
    }

    #[test]
    fn atoi_as_glibc() {
        assert_eq!(atoi(b"12"), 12);
        assert_eq!(atoi(b" -3x"), -3);
        assert_eq!(atoi(b"+7"), 7);
        assert_eq!(atoi(b"x"), 0);
        assert_eq!(atoi(b""), 0);
        assert_eq!(atoi(b"99999999999999999999"), -1);
    }

    #[test]
    fn source_split_and_logs() {
        assert_eq!(split_source(b"a\nb\r\n\n"), vec![b"a".to_vec(), b"b".to_vec()]);
        assert_eq!(split_source(b"a\r\nb"), vec![b"a\r".to_vec(), b"b".to_vec()]);
        assert!(split_source(b"\n").is_empty());
        let mut logs = vec![b"a\r\nb".to_vec(), Vec::new()];
        assert_eq!(logs_reply(&mut logs), b"*2\r\n+a  b\r\n+\r\n");
        assert!(logs.is_empty());
    }

    /// Values rendered as ldbCatStackValue does (checked against Redis 7.0.15).
    #[test]
    fn values_in_human_form() {
        let lua = mlua::Lua::new();
        let show = |code: &str| -> String {
            let v: mlua::Value = lua.load(code).eval().unwrap();
            let mut out = Vec::new();
            // SAFETY: exec_raw runs the closure with the value pushed; cat_value only reads it.
            unsafe {
                lua.exec_raw::<()>(v, |l| {
                    cat_value(l, -1, &mut out, 0);
                    ffi::lua_pop(l, 1);
                })
                .unwrap();
            }
            String::from_utf8(out).unwrap()
        };
        assert_eq!(show("{1,2,'x',{k='v'}}"), "{1; 2; \"x\"; {[\"k\"]=\"v\"}}");
        assert_eq!(show("{1,2,nil,4}"), "{[1]=1; [2]=2; [4]=4}");
        assert_eq!(show("{a=1}"), "{[\"a\"]=1}");
        assert_eq!(show("{}"), "{}");
        assert_eq!(show("3.5"), "3.5");
        assert_eq!(show("1e20"), "1e+20");
        assert_eq!(show("1/3"), "0.333333");
        assert_eq!(show("'a\\n\"'"), "\"a\\n\\\"\"");
        assert_eq!(show("nil"), "nil");
        assert_eq!(show("true"), "true");
        assert!(show("print").starts_with("\"function@0x"));
        let deep = show("local t = {} local c = t for i = 1, 12 do c[1] = {} c = c[1] end return t");
        assert_eq!(deep, format!("{}<max recursion level reached! Nested table?>{}", "{".repeat(10), "}".repeat(10)));
    }

    #[test]
    fn session_texts() {
        let server = Server::new(crate::config::Config::defaults(), None);
        let handle = ClientHandle::new(1, String::new(), String::new(), -1);
        let mut s = Session {
            server: &server,
            handle: &handle,
            fd: -1,
            forked: false,
            gone: true,
            logs: Vec::new(),
            bp: Vec::new(),
            step: false,
            luabp: false,
            src: split_source(b"local a = 1\nlocal b = 2\nreturn a + b\n"),
            currentline: 2,
            cbuf: Vec::new(),
            maxlen: MAX_LEN_DEFAULT,
            maxlen_hint_sent: false,
            timer: Instant::now(),
        };
        let argv = |v: &[&str]| v.iter().map(|a| a.as_bytes().to_vec()).collect::<Vec<_>>();
        s.breakpoints(&argv(&["b", "3", "3", "9", "x", "-1", "-3"]));
        s.set_maxlen(&argv(&["m", "10"]));
        s.log_max_len(vec![b'x'; 70]);
        s.list(1, 0);
        s.log_source_line(7);
        let text: Vec<String> = s.logs.iter().map(|l| String::from_utf8_lossy(l).into_owned()).collect();
        assert_eq!(
            text,
            [
                "-> 2   local b = 2",
                "  #3   return a + b",
                "Wrong line number.",
                "Wrong line number.",
                "Invalid argument:'x'",
                "No breakpoint in the specified line.",
                "Breakpoint removed.",
                "<value> replies are truncated at 60 bytes.",
                &format!("{} ...", "x".repeat(60)),
                "   1   local a = 1",
                "   7   <out of range source code line>",
            ]
        );
    }
}
