//! `redis.call` / `redis.pcall`: Redis's scriptCall. The command goes through the command
//! pipeline as a script call (`pipeline::script_call`: lookup, arity, NOSCRIPT, stale replica,
//! writes from read-only scripts, READONLY/NOREPLICAS before the first write, OOM) and runs on
//! the script's view, as a command of a transaction does;
//! its RESP reply is converted to Lua values as redisProtocolToLuaType does.
//! `redis.acl_check_cmd` reads its arguments the same way and asks the pipeline whether the
//! caller may run them (`pipeline::acl_permits`).
//!
//! All three are plain C functions, not mlua callbacks: the arguments are read straight off the Lua
//! stack (any number, as in Redis; mlua's callbacks stop near 8000 values) and the reply is
//! pushed with the raw API, without mlua's per-value protected calls. The running script's
//! [`RunState`] is reached through a thread-local pointer ([`activate`]). Lua may raise (out
//! of memory) while pushing: the frames it would unwind hold only borrowed data.

use bytes::{Bytes, BytesMut};
use mlua::ffi;
use std::cell::{Cell, RefCell};
use std::os::raw::c_int;
use std::time::Instant;

use crate::commands::pipeline::{self, ScriptCall};
use crate::commands::{flags, Action};
use crate::keyspace::Db;
use crate::protocol::{Proto, ReplySink};
use crate::server::Server;
use crate::session::client::Client;
use crate::session::Written;

/// The state of one script run that redis.call and friends share.
pub struct RunState<'a> {
    pub server: &'a Server,
    /// The client commands run as (its own selected database and protocol, like Redis's
    /// script client): a local of the run, borrowed rather than moved in (it is large).
    pub client: &'a mut Client,
    /// redis.setresp(3) was called.
    pub resp3: bool,
    /// Write commands are refused (EVAL_RO, FCALL_RO, `no-writes`).
    pub read_only: bool,
    /// redis.set_repl flags (REPL_ALL by default).
    pub repl: u8,
    /// Writes whose waiters and watchers are told once the locks are released: the caller's
    /// own list (`Client::after_exec`, taken for the run and given back), whose capacity
    /// outlives the run.
    pub queued: Vec<Written>,
    /// Script start (time is frozen for the whole script, as in Redis).
    pub start: Instant,
    /// The keys of the read-only commands the script called: a tracking caller remembers them
    /// (Redis 7.2, #11770; 7.0 remembered the keys the caller declared).
    pub read_keys: Vec<Bytes>,
    /// busy-reply-threshold (read when the hook first fires): past it the script steps aside
    /// now and then (see `fiber.rs`).
    pub threshold: Option<Option<std::time::Duration>>,
    /// The script's SHA-1 (EVAL) or the function's name, for the slow-script log line.
    pub name: &'a str,
    /// The script ran past busy-reply-threshold (Redis's SCRIPT_TIMEDOUT; logged once).
    pub timed_out: bool,
    /// The kill hook replaced the engine's hook: install it again after the run.
    pub rehook: bool,
    /// The server was over maxmemory when the script started and the script did not declare
    /// `allow-oom`: its first denyoom command is refused unless it already wrote (Redis's
    /// scriptVerifyOOM).
    pub deny_oom: bool,
    /// The script has written (Redis's SCRIPT_WRITE_DIRTY).
    pub dirty: bool,
    /// Debugged in a SCRIPT DEBUG YES session: write commands are refused (`ldb/`).
    pub debug_no_writes: bool,
    /// The script's locked view (a `*mut Db`), valid for the whole run.
    db: *mut (),
    /// The last command's reply (reused).
    sink: ReplySink,
    /// The last error text handed to Lua.
    scratch: Vec<u8>,
}

impl<'a> RunState<'a> {
    pub fn new(
        server: &'a Server,
        client: &'a mut Client,
        queued: Vec<Written>,
        read_only: bool,
        start: Instant,
        name: &'a str,
        db: &mut Db<'_>,
    ) -> Self {
        RunState {
            server,
            client,
            resp3: false,
            read_only,
            repl: 3,
            queued,
            start,
            read_keys: Vec::new(),
            threshold: None,
            name,
            timed_out: false,
            rehook: false,
            deny_oom: false,
            dirty: false,
            debug_no_writes: false,
            db: db as *mut Db<'_> as *mut (),
            sink: {
                let mut sink = SPARE_SINK.take().unwrap_or_else(|| ReplySink::new(Proto::Resp2));
                // A command's reply past the ceiling is an error for the script (see `run`).
                sink.limit = server.obuf_limits.read().normal.ceiling;
                sink
            },
            scratch: Vec::new(),
        }
    }
}

impl Drop for RunState<'_> {
    /// The reply buffer serves this thread's next script (unless a big reply grew it), empty
    /// and otherwise as new.
    fn drop(&mut self) {
        if self.sink.buf.capacity() <= SPARE_LIMIT {
            let ReplySink { mut buf, mut errors, .. } = std::mem::take(&mut self.sink);
            buf.clear();
            errors.clear();
            let mut spare = ReplySink::default();
            spare.buf = buf;
            spare.errors = errors;
            SPARE_SINK.set(Some(spare));
        }
    }
}

/// Buffers bigger than this are not kept for the next script or command.
const SPARE_LIMIT: usize = 64 * 1024;
/// The argument arena is refilled (`ARENA_CHUNK` bytes) when less than this is left.
const ARENA_MIN_FREE: usize = 256;
const ARENA_CHUNK: usize = 4096;

thread_local! {
    /// The reply buffer of this thread's last script, for its next one.
    static SPARE_SINK: Cell<Option<ReplySink>> = const { Cell::new(None) };
    /// The memory `redis.call`'s string arguments are copied into, reclaimed once the previous
    /// call's arguments are all dropped (Redis's script argument cache saves the same
    /// allocations): no allocation per argument.
    static ARG_ARENA: RefCell<BytesMut> = RefCell::new(BytesMut::new());
    /// The running script's `RunState` on this thread (null outside a run, and while in use).
    static ACTIVE: Cell<*mut ()> = const { Cell::new(std::ptr::null_mut()) };
}

/// Makes a run state the running script's until dropped.
pub struct Activation {
    prev: *mut (),
}

impl Drop for Activation {
    fn drop(&mut self) {
        ACTIVE.with(|a| a.set(self.prev));
    }
}

/// Make `st` the running script's state on this thread; it must outlive the activation.
pub fn activate(st: &mut RunState<'_>) -> Activation {
    Activation { prev: ACTIVE.with(|a| a.replace(st as *mut RunState<'_> as *mut ())) }
}

/// Take the running script's state away while it is suspended (other tasks of the thread run
/// meanwhile); give it back with [`reactivate`].
pub fn deactivate() -> *mut () {
    ACTIVE.with(|a| a.replace(std::ptr::null_mut()))
}

pub fn reactivate(p: *mut ()) {
    ACTIVE.with(|a| a.set(p));
}

/// Run `f` with the running script's state; None outside a script run.
pub fn with_active<R>(f: impl FnOnce(&mut RunState<'_>) -> R) -> Option<R> {
    let p = deactivate();
    if p.is_null() {
        return None;
    }
    // SAFETY: `activate` stored a live `&mut RunState` that outlives its activation, and the
    // pointer is taken out while `f` runs, so this is the only reference.
    let r = f(unsafe { &mut *(p as *mut RunState<'_>) });
    reactivate(p);
    Some(r)
}

/// What a command left for Lua: its RESP reply (in `sink`) or an error text (in `scratch`).
enum Left {
    Reply,
    Error { counted: bool },
}

/// A command's reply in a script went past `output-buffer-ceiling`.
const REPLY_TOO_BIG: &str = "-ERR reply bigger than output-buffer-ceiling allows";

const NO_RUN: &[u8] = b"ERR redis.call/pcall can only be called inside a script invocation";

/// `redis.call`: errors are raised.
///
/// # Safety
/// Only to be called by the Lua VM, as a C function of the state it belongs to.
pub unsafe extern "C-unwind" fn lua_redis_call(state: *mut ffi::lua_State) -> c_int {
    command(state, true)
}

/// `redis.pcall`: errors are returned as error tables.
///
/// # Safety
/// Only to be called by the Lua VM, as a C function of the state it belongs to.
pub unsafe extern "C-unwind" fn lua_redis_pcall(state: *mut ffi::lua_State) -> c_int {
    command(state, false)
}

/// `redis.acl_check_cmd` (Redis's luaRedisAclCheckCmdPermissionsCommand): whether the
/// script's caller may run the command its arguments name, on those keys and channels
/// (`pipeline::acl_permits`). Errors are raised.
///
/// # Safety
/// Only to be called by the Lua VM, as a C function of the state it belongs to.
pub unsafe extern "C-unwind" fn lua_redis_acl_check_cmd(state: *mut ffi::lua_State) -> c_int {
    // (Nothing with a destructor outlives the closure: the Lua API may raise below.)
    let answer = with_active(|st| {
        let argv = stack_args(state)?;
        pipeline::acl_permits(st.server, st.client, &argv).ok_or("Invalid command passed to redis.acl_check_cmd()")
    });
    ffi::lua_settop(state, 0);
    let msg = match answer {
        Some(Ok(allowed)) => {
            ffi::lua_pushboolean(state, allowed as c_int);
            return 1;
        }
        Some(Err(msg)) => msg,
        None => "redis.acl_check_cmd can only be called inside a script invocation",
    };
    // `{err = "ERR " .. msg}`, built on the Lua stack: nothing of ours to free when it raises.
    ffi::lua_createtable(state, 0, 1);
    push_bytes(state, b"err");
    push_bytes(state, b"ERR ");
    push_bytes(state, msg.as_bytes());
    ffi::lua_concat(state, 2);
    ffi::lua_rawset(state, -3);
    ffi::lua_error(state)
}

/// The arguments of a `redis.call` (Redis's luaArgsToRedisArgv): every value on the Lua stack,
/// strings copied into the thread's argument arena, numbers formatted as Redis 7.2 does. Err:
/// Redis's error text. Nothing here calls Lua.
unsafe fn stack_args(state: *mut ffi::lua_State) -> Result<smallvec::SmallVec<[Bytes; 6]>, &'static str> {
    let n = ffi::lua_gettop(state);
    if n < 1 {
        return Err("Please specify at least one argument for this redis lib call");
    }
    // Inline up to six arguments: no vector allocated per call for the usual command.
    let mut argv: smallvec::SmallVec<[Bytes; 6]> = smallvec::SmallVec::with_capacity(n as usize);
    let mut arena = ARG_ARENA.take();
    if arena.capacity() < ARENA_MIN_FREE {
        // The whole buffer back if the previous calls' arguments are gone, else a new one
        // (the old one is freed with the last of them).
        arena.reserve(ARENA_CHUNK);
    }
    for i in 1..=n {
        match ffi::lua_type(state, i) {
            ffi::LUA_TSTRING => {
                let mut len = 0;
                let p = ffi::lua_tolstring(state, i, &mut len);
                arena.extend_from_slice(std::slice::from_raw_parts(p as *const u8, len));
                argv.push(arena.split().freeze());
            }
            ffi::LUA_TNUMBER => {
                let x = ffi::lua_tonumber(state, i);
                // Redis 7.2.5: an integer as such, else fpconv_dtoa (7.0: "%.17g").
                let mut b = Vec::new();
                crate::util::dtoa::lua_number_arg(x, &mut b);
                argv.push(Bytes::from(b));
            }
            _ => return Err("Lua redis lib command arguments must be strings or integers"),
        }
    }
    if arena.capacity() <= SPARE_LIMIT {
        ARG_ARENA.set(arena);
    }
    Ok(argv)
}

/// SAFETY (for the Lua VM calling it): no value with a destructor is alive in this frame when
/// the Lua API raises.
unsafe fn command(state: *mut ffi::lua_State, raise: bool) -> c_int {
    let left = with_active(|st| st.exec(state));
    // The arguments are copied: drop them, so the reply has the whole stack (there may be
    // thousands of arguments, and a C function gets no more than LUAI_MAXCSTACK slots).
    ffi::lua_settop(state, 0);
    let st = ACTIVE.with(|a| a.get()) as *const RunState<'_>;
    let failed = match left {
        None => {
            push_error(state, NO_RUN, false);
            ffi::lua_error(state)
        }
        Some(Left::Error { counted }) => {
            push_error(state, &(*st).scratch, counted);
            true
        }
        Some(Left::Reply) => {
            let buf = &(*st).sink.buf;
            if super::ldb::is_active() {
                super::ldb::log_reply(buf);
            }
            let mut p = Parser { buf, pos: 0, state };
            p.value();
            buf.first() == Some(&b'-')
        }
    };
    if raise && failed {
        ffi::lua_error(state);
    }
    1
}

/// Push `{err = text}` (with `ignore_error_stats_update = true` when already counted).
unsafe fn push_error(state: *mut ffi::lua_State, text: &[u8], counted: bool) {
    ffi::lua_createtable(state, 0, 2);
    push_bytes(state, b"err");
    push_bytes(state, text);
    ffi::lua_rawset(state, -3);
    if counted {
        push_bytes(state, b"ignore_error_stats_update");
        ffi::lua_pushboolean(state, 1);
        ffi::lua_rawset(state, -3);
    }
}

unsafe fn push_bytes(state: *mut ffi::lua_State, b: &[u8]) {
    ffi::lua_pushlstring_(state, b.as_ptr() as *const std::os::raw::c_char, b.len());
}

/// Redis's luaPushErrorBuff text: "-CODE msg" or "msg" → "CODE msg" (trimmed of CR/LF).
pub fn error_text(text: &[u8], out: &mut Vec<u8>) {
    let (code, msg): (&[u8], &[u8]) = match text.strip_prefix(b"-") {
        Some(rest) => match rest.iter().position(|&c| c == b' ') {
            Some(i) => (&rest[..i], &rest[i + 1..]),
            None => (b"ERR", rest),
        },
        None => (b"ERR", text),
    };
    let mut end = msg.len();
    while end > 0 && (msg[end - 1] == b'\r' || msg[end - 1] == b'\n') {
        end -= 1;
    }
    let mut start = 0;
    while start < end && (msg[start] == b'\r' || msg[start] == b'\n') {
        start += 1;
    }
    out.clear();
    out.extend_from_slice(code);
    out.push(b' ');
    out.extend_from_slice(&msg[start..end]);
}

impl RunState<'_> {
    fn fail(&mut self, msg: &str, counted: bool) -> Left {
        if super::ldb::is_active() {
            super::ldb::log_error(msg.as_bytes());
        }
        if counted {
            self.server.count_error(msg.strip_prefix('-').and_then(|m| m.split(' ').next()).unwrap_or("ERR"));
        }
        error_text(msg.as_bytes(), &mut self.scratch);
        Left::Error { counted }
    }

    /// Read the command off the Lua stack and run it; nothing here calls Lua.
    unsafe fn exec(&mut self, state: *mut ffi::lua_State) -> Left {
        match stack_args(state) {
            Ok(argv) => {
                if super::ldb::is_active() {
                    super::ldb::log_command(&argv);
                }
                self.run(&argv)
            }
            Err(msg) => self.fail(msg, false),
        }
    }

    fn run(&mut self, argv: &[Bytes]) -> Left {
        let sink = &mut self.sink;
        sink.clear();
        sink.errors.clear();
        sink.proto = if self.resp3 { Proto::Resp3 } else { Proto::Resp2 };
        self.client.proto = sink.proto;
        // SAFETY: the view outlives the run (see `RunState::new`) and only this run uses it.
        let db = unsafe { &mut *(self.db as *mut Db<'_>) };
        let mark = db.effects_len();
        let call = ScriptCall {
            read_only: self.read_only,
            deny_oom: self.deny_oom,
            wrote: self.dirty,
            debug_no_writes: self.debug_no_writes,
        };
        let (cmd, outcome) = match pipeline::script_call(self.server, self.client, call, argv, sink, db, self.start) {
            Ok(ran) => ran,
            Err(text) => return self.fail(&text, true),
        };
        if cmd.has_flag(flags::WRITE) {
            self.dirty = true;
            self.server.scripting.busy.wrote.store(true, std::sync::atomic::Ordering::SeqCst);
        }
        if cmd.has_flag(flags::READONLY) {
            self.read_keys.extend(cmd.keys(argv).iter().filter_map(|k| argv.get(k.pos).cloned()));
        }
        // redis.set_repl: REPL_NONE (0) drops the command's effects, REPL_AOF (1) and
        // REPL_REPLICA (2) send them to one side only, REPL_ALL (3) to both.
        match self.repl {
            0 => db.truncate_effects(mark),
            1 | 2 => db.restrict_effects_since(mark, self.repl & 1 != 0, self.repl & 2 != 0),
            _ => {}
        }
        let touched = outcome.touched();
        match outcome.action {
            // Blocking commands never block in a script: they answer as if timed out.
            Action::Block(spec) if spec.timeout_null_array => sink.null_array(),
            Action::Block(_) => sink.null(),
            // WAIT / WAITAOF never block in a script (Redis 7.2): what is acknowledged now.
            Action::WaitAcks(spec) => crate::replication::reply_acks(self.server, &spec, sink),
            _ => {}
        }
        for code in sink.errors.drain(..) {
            self.server.count_error(&code);
        }
        let cut_short = sink.over_limit();
        if touched {
            self.queued.push(pipeline::written(outcome.modified, outcome.ready));
        }
        if cut_short {
            // Past the ceiling (see `ReplySink::limit`): Redis would grow the reply until the
            // process is killed. The command's effects stand, as when a client is closed for
            // its reply.
            return self.fail(REPLY_TOO_BIG, true);
        }
        Left::Reply
    }
}

/// RESP (as the script's protocol produced it) → Lua values, pushed on the stack. Holds only
/// borrowed data (the Lua API may raise while it runs).
struct Parser<'a> {
    buf: &'a [u8],
    pos: usize,
    state: *mut ffi::lua_State,
}

impl Parser<'_> {
    fn line(&mut self) -> &[u8] {
        let start = self.pos.min(self.buf.len());
        let end = memchr::memchr(b'\r', &self.buf[start..]).map_or(self.buf.len(), |i| start + i);
        self.pos = (end + 2).min(self.buf.len());
        &self.buf[start..end]
    }

    fn int(&mut self) -> i64 {
        crate::util::num::parse_i64(self.line()).unwrap_or(0)
    }

    /// Bulk payload of `n` bytes (and its CRLF).
    fn payload(&mut self, n: usize) -> &[u8] {
        let start = self.pos.min(self.buf.len());
        let end = (start + n).min(self.buf.len());
        self.pos = (end + 2).min(self.buf.len());
        &self.buf[start..end]
    }

    /// Wrap the value on top of the stack as `{key = value}`.
    unsafe fn wrap(&self, key: &[u8]) {
        let l = self.state;
        ffi::lua_createtable(l, 0, 1);
        ffi::lua_insert(l, -2);
        push_bytes(l, key);
        ffi::lua_insert(l, -2);
        ffi::lua_rawset(l, -3);
    }

    /// Push the next value (exactly one; nil at the end of the buffer).
    unsafe fn value(&mut self) {
        let l = self.state;
        if ffi::lua_checkstack(l, 4) == 0 {
            ffi::luaL_error(l, c"reached lua stack limit".as_ptr());
        }
        let Some(&kind) = self.buf.get(self.pos) else {
            ffi::lua_pushnil(l);
            return;
        };
        self.pos += 1;
        match kind {
            b'+' => {
                let s = self.line();
                push_bytes(l, s);
                self.wrap(b"ok");
            }
            b'-' => {
                let line = self.line();
                // "CODE msg" as luaPushErrorBuff makes it (the line is "CODE msg" already,
                // trimmed of its CRLF; a code alone gets "ERR" in front).
                match line.iter().position(|&c| c == b' ') {
                    Some(_) => {
                        ffi::lua_createtable(l, 0, 2);
                        push_bytes(l, b"err");
                        push_bytes(l, line);
                        ffi::lua_rawset(l, -3);
                    }
                    None => {
                        ffi::lua_createtable(l, 0, 2);
                        push_bytes(l, b"err");
                        push_bytes(l, b"ERR ");
                        push_bytes(l, line);
                        ffi::lua_concat(l, 2);
                        ffi::lua_rawset(l, -3);
                    }
                }
                push_bytes(l, b"ignore_error_stats_update");
                ffi::lua_pushboolean(l, 1);
                ffi::lua_rawset(l, -3);
            }
            b':' => {
                let n = self.int();
                ffi::lua_pushnumber(l, n as f64);
            }
            b'$' => {
                let n = self.int();
                if n < 0 {
                    ffi::lua_pushboolean(l, 0);
                    return;
                }
                let s = self.payload(n as usize);
                push_bytes(l, s);
            }
            b'*' | b'~' | b'>' => {
                let n = self.int();
                if n < 0 {
                    ffi::lua_pushboolean(l, 0);
                    return;
                }
                let set = kind == b'~';
                ffi::lua_createtable(l, if set { 0 } else { n.min(1 << 20) as c_int }, 0);
                for i in 1..=n {
                    self.value();
                    if set {
                        if ffi::lua_type(l, -1) == ffi::LUA_TNIL {
                            ffi::lua_pop(l, 1);
                        } else {
                            ffi::lua_pushboolean(l, 1);
                            ffi::lua_rawset(l, -3);
                        }
                    } else {
                        ffi::lua_rawseti_(l, -2, i as c_int);
                    }
                }
                if set {
                    self.wrap(b"set");
                }
            }
            b'%' | b'|' => {
                let n = self.int();
                // Not presized: Redis grows the table from empty (lua_newtable), and a table
                // grown by rehashes can iterate its keys in another order than a presized one.
                ffi::lua_createtable(l, 0, 0);
                for _ in 0..n {
                    self.value();
                    self.value();
                    if ffi::lua_type(l, -2) == ffi::LUA_TNIL {
                        ffi::lua_pop(l, 2);
                    } else {
                        ffi::lua_rawset(l, -3);
                    }
                }
                if kind == b'|' {
                    // Attributes are skipped; the reply follows them.
                    ffi::lua_pop(l, 1);
                    self.value();
                    return;
                }
                self.wrap(b"map");
            }
            b'_' => {
                self.line();
                ffi::lua_pushnil(l);
            }
            b'#' => {
                let b = self.line() == b"t";
                ffi::lua_pushboolean(l, b as c_int);
            }
            b',' => {
                let line = self.line();
                let d = crate::util::num::parse_f64(line).unwrap_or(match line {
                    b"inf" => f64::INFINITY,
                    b"-inf" => f64::NEG_INFINITY,
                    _ => f64::NAN,
                });
                ffi::lua_pushnumber(l, d);
                self.wrap(b"double");
            }
            b'(' => {
                let s = self.line();
                push_bytes(l, s);
                self.wrap(b"big_number");
            }
            b'=' => {
                let n = self.int().max(0) as usize;
                let body = self.payload(n);
                let (format, text) = if body.len() >= 4 { (&body[..3], &body[4..]) } else { (&b"txt"[..], body) };
                ffi::lua_createtable(l, 0, 2);
                push_bytes(l, b"format");
                push_bytes(l, format);
                ffi::lua_rawset(l, -3);
                push_bytes(l, b"string");
                push_bytes(l, text);
                ffi::lua_rawset(l, -3);
                self.wrap(b"verbatim_string");
            }
            _ => ffi::lua_pushnil(l),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::commands::testing::Harness;

    /// The argument arena is reused only once every argument copied into it is gone: values a
    /// script wrote earlier (its effects hold them until it ends) stay intact while later
    /// calls refill the arena many times, and an argument bigger than the arena is copied whole.
    #[test]
    fn arguments_outlive_the_argument_arena() {
        let mut h = Harness::new();
        let script = "for i = 1, 2000 do redis.call('SET', 'k' .. i, string.rep('v', i % 50) .. i) end
            redis.call('SET', 'big', string.rep('x', 100000))
            for i = 1, 2000 do
              if redis.call('GET', 'k' .. i) ~= string.rep('v', i % 50) .. i then return 'k' .. i end
            end
            return redis.call('STRLEN', 'big')";
        assert_eq!(h.run(&["EVAL", script, "0"]), ":100000\r\n");
        assert_eq!(h.run(&["GET", "k1999"]), format!("$53\r\n{}1999\r\n", "v".repeat(49)));
        assert_eq!(h.run(&["EVAL", "return redis.call('GET', KEYS[1])", "1", "k7"]), "$8\r\nvvvvvvv7\r\n");
    }
}
