//! The Lua debugger (Redis's LDB): SCRIPT DEBUG SYNC / YES, then an EVAL runs as a debugging
//! session. As in Redis, the session talks to its client from inside the script: the Lua line
//! hook sends the log lines (an array of status replies) straight to the client, ahead of any
//! reply, and waits for the debugger's commands. It does not touch the connection itself: each
//! write and each wait suspends the script on its stack while the connection task does the I/O
//! on its stream (`session::console`, `fiber::console`), so TCP, Unix and TLS connections are
//! served alike. Meanwhile the worker serves its other connections, and every other client
//! waits for the script (never gets BUSY: see `Busy::debugging`). The session's state is a
//! thread-local of the script's thread; nothing here takes a lock.
//!
//! - SYNC: as Redis. The session's writes are kept; the connection closes after the EVAL reply.
//! - YES: Redis forks and the child runs the session, throwing its writes away. Ferrous cannot
//!   fork, so the session runs as SYNC does (other clients wait) and the script's write
//!   commands are refused with an error instead of being kept (`Session::forked`).
//!
//! Every text and the byte layout of the replies follow Redis 7.0's eval.c.
//!
//! This file owns the session (its state, `eval`, the entry points the rest of scripting calls)
//! and the line hook with its command loop (`repl`). The rest:
//! - `commands.rs`: what the debugger's commands do (list, break, print, trace, eval, redis, help).
//! - `render.rs`: replies and Lua values in readable form, and the `maxlen` trimming of the log.
//! - `wire.rs`: the I/O with the client (the log written, input awaited in slices) and the
//!   command parser.

mod commands;
mod render;
mod wire;

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

use crate::util::bytetext::c_str;
use commands::{eval_code, print, print_all, redis_command, trace};
use render::MAX_LEN_DEFAULT;
pub use render::{cat_value, protocol_to_human};
use wire::{atoi, parse_command, Gone};

/// The most unparsed input the debugger keeps.
const MAX_INPUT: usize = 1 << 20;

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
        crate::server::log::notice("Redis forked for debugging eval");
    } else {
        crate::server::log::notice("Redis synchronous debugging eval session started");
    }
    let mut session = Session {
        server,
        handle: &handle,
        forked,
        // (Off a connection's script stack there is no client: the first write finds it gone.)
        gone: false,
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
        crate::server::log::notice("Lua debugging session child exiting");
    } else {
        crate::server::log::notice("Redis synchronous debugging eval session ended");
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_split() {
        assert_eq!(split_source(b"a\nb\r\n\n"), vec![b"a".to_vec(), b"b".to_vec()]);
        assert_eq!(split_source(b"a\r\nb"), vec![b"a\r".to_vec(), b"b".to_vec()]);
        assert!(split_source(b"\n").is_empty());
    }
}
