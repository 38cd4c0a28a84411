//! A sandboxed Lua 5.1 state with Redis's script API: the standard libraries Redis keeps
//! (base, table, string, math, coroutine; no os, io, package, debug), the `redis` table, the
//! bundled cjson / cmsgpack / bit / struct, protected globals (`prelude.lua`), and the EVAL
//! engine's script cache.

use bytes::Bytes;
use mlua::{ffi, Function, Lua, LuaOptions, MultiValue, StdLib, Table, Value};
use std::collections::HashMap;

use super::libs::{self, arg_str, fail_table, ok, LResult};

/// The chunk names of EVAL scripts and FUNCTION libraries (Redis's).
pub const USER_SCRIPT: &str = "@user_script";
pub const USER_FUNCTION: &str = "@user_function";

/// The largest chunk (in bytes) Ferrous hands to Lua 5.1's parser, from any source: EVAL,
/// FUNCTION LOAD, the debugger's `eval`, and `loadstring` / `load` inside scripts.
///
/// Lua 5.1's lexer counts lines and long-bracket levels in C ints. A chunk whose first token
/// came after INT_MAX - 4 line breaks made it report "chunk has too many lines" about a token it
/// had not read yet, an uninitialised one: a segfault, in Redis 7.2.4 and in Ferrous alike, from
/// a script that feeds `load` 2^31 newlines (CVE-2025-46819, fixed in Redis 7.2.11's Lua and in
/// Ferrous's, vendor/lua-src). 2^31 '=' of a long bracket overflow its level the same way, so
/// every chunk is also kept below half of those counts: a longer one is refused with a compile
/// error, before the parser sees any of it.
pub const MAX_CHUNK_BYTES: usize = 1 << 30;

/// Why a chunk must not reach Lua's loader, as the compile error to give (`chunk_id` is the
/// chunk's name as luaO_chunkid shows it: `user_script` for `@user_script`); None to compile it.
/// Only a chunk over [`MAX_CHUNK_BYTES`] is refused here. (Precompiled chunks need no check:
/// Ferrous's Lua, like Redis's, always runs the text parser, which fails on their ESC byte.)
pub fn refused_chunk(code: &[u8], chunk_id: &str) -> Option<String> {
    (code.len() > MAX_CHUNK_BYTES).then(|| format!("{chunk_id}: chunk has too many bytes"))
}

/// Lua heap limit per engine: a script that allocates without bound gets an error instead of
/// taking the process down. Half the memory the process may use (the machine's, or its
/// cgroup's limit), at least 1 GiB: Redis sets none, and its suite builds a 3 GB string in a
/// script (cjson of a string past 2 GB).
pub fn memory_limit() -> usize {
    static LIMIT: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *LIMIT.get_or_init(|| {
        let half = crate::util::sysmem::usable_memory() / 2;
        usize::try_from(half).unwrap_or(usize::MAX).max(1 << 30)
    })
}

/// The Lua-side objects Rust needs to run code in an engine.
pub struct Api {
    /// Per-run slots (`exec`, `setresp`, ... set while a script runs; `killed`).
    pub ctx: Table,
    /// The protected environment scripts run in, and its metatable (whose `__index` FUNCTION
    /// LOAD points at the library API while a library loads).
    pub env: Table,
    pub env_meta: Table,
    /// The real global table (KEYS and ARGV are set there).
    pub real: Table,
    /// `run0(f)` (EVAL) and `run2(f, keys, args)` (functions): xpcall with Redis's error handler.
    pub run0: Function,
    pub run2: Function,
    /// The error handler of script runs (what run0 / run2 give xpcall), for runs made from Rust.
    pub handler: Function,
    /// Field names a run sets, created once: [`names`] gives their indexes.
    pub names: Table,
    /// `runp(f)`: a plain pcall (library loading).
    pub runp: Function,
    /// The globals seen while a library loads (only `redis` with the library API).
    pub lib_api: Table,
    /// Script runs through the C API.
    pub runner: super::run::Runner,
    /// The heap's allocator (`heap.rs`): dropped with the Api, before the engine's Lua.
    pub heap: super::heap::HeapGuard,
}

/// Create a sandboxed state. `functions` selects the function engine (with the library API).
pub fn new_state(functions: bool) -> mlua::Result<(Lua, Api)> {
    new_state_with(functions, MAX_CHUNK_BYTES)
}

/// [`new_state`] whose `loadstring` and `load` refuse chunks over `max_chunk` bytes (tests
/// use a small one).
fn new_state_with(functions: bool, max_chunk: usize) -> mlua::Result<(Lua, Api)> {
    // SAFETY: the debug library is loaded only for the prelude's error handler, which keeps it
    // as a local and removes the global before any user code runs.
    let lua = unsafe {
        Lua::unsafe_new_with(
            StdLib::TABLE | StdLib::STRING | StdLib::MATH | StdLib::DEBUG,
            LuaOptions::new().catch_rust_panics(false),
        )
    };
    // SAFETY: a Lua-callable C function that follows the Lua C API's rules.
    lua.globals().raw_set("unpack", unsafe { lua.create_c_function(libs::unpack::unpack)? })?;
    libs::patterns::install(&lua)?;
    let r = lua.create_table()?;
    r.raw_set("redis", redis_api(&lua)?)?;
    r.raw_set("library", library_api(&lua)?)?;
    r.raw_set("cjson", libs::cjson::table(&lua)?)?;
    r.raw_set("cmsgpack", libs::cmsgpack::table(&lua)?)?;
    r.raw_set("bit", libs::bit::table(&lua)?)?;
    r.raw_set("struct", libs::structlib::table(&lua)?)?;
    r.raw_set("max_chunk", max_chunk)?;
    r.raw_set("protect", lua.create_function(|lua, t: Table| super::readonly::protect(lua, &t))?)?;
    r.raw_set(
        "set_global",
        lua.create_function(|lua, (k, v): (String, Value)| super::readonly::raw_set(lua, &lua.globals(), &k, v))?,
    )?;
    r.raw_set("trampoline", lua.create_function(|lua, f: Function| super::trampoline::make(lua, f))?)?;
    // SAFETY: Lua-callable C functions that follow the Lua C API's rules (call.rs).
    unsafe {
        r.raw_set("call", lua.create_c_function(super::call::lua_redis_call)?)?;
        r.raw_set("pcall", lua.create_c_function(super::call::lua_redis_pcall)?)?;
        r.raw_set("acl_check_cmd", lua.create_c_function(super::call::lua_redis_acl_check_cmd)?)?;
        r.raw_set("debug", lua.create_c_function(super::ldb::lua_redis_debug)?)?;
        r.raw_set("breakpoint", lua.create_c_function(super::ldb::lua_redis_breakpoint)?)?;
    }
    let ctx = lua.create_table()?;
    lua.set_named_registry_value("ferrous_ctx", ctx.clone())?;
    super::run::install_functions(&lua, &ctx)?;
    let api: Table = lua.load(include_str!("prelude.lua")).set_name("=ferrous").call((
        r,
        ctx.clone(),
        if functions { "functions" } else { "eval" },
    ))?;
    let handler: Function = api.raw_get("handler")?;
    let names = lua.create_sequence_from(names::ALL.iter().copied())?;
    let real: Table = api.raw_get("real")?;
    let runner = super::run::Runner::new(&lua, &handler, &ctx, &real, &names)?;
    lua.set_memory_limit(memory_limit())?;
    // SAFETY: the runner's state is the engine's main state, which outlives the Api (the
    // engines declare their Api before their Lua), and mlua's limit is set on it.
    let heap = unsafe { super::heap::HeapGuard::install(runner.state(), lua.used_memory(), memory_limit()) };
    let api = Api {
        ctx,
        env: api.raw_get("env")?,
        env_meta: api.raw_get("env_meta")?,
        real,
        run0: api.raw_get("run0")?,
        run2: api.raw_get("run2")?,
        handler,
        names,
        runp: api.raw_get("runp")?,
        lib_api: api.raw_get("lib_api")?,
        runner,
        heap,
    };
    super::run::install_hook(&lua);
    Ok((lua, api))
}

/// The field names a run sets and its result's conversion reads (as a Lua array, so they are
/// pushed without interning them again).
pub mod names {
    pub const ALL: [&str; 16] = [
        "killed",
        "running",
        "KEYS",
        "ARGV",
        "err",
        "ok",
        "double",
        "big_number",
        "verbatim_string",
        "map",
        "set",
        "format",
        "string",
        "source",
        "line",
        "ignore_error_stats_update",
    ];
    pub const KILLED: i32 = 1;
    pub const RUNNING: i32 = 2;
    pub const KEYS: i32 = 3;
    pub const ARGV: i32 = 4;
    pub const ERR: i32 = 5;
    pub const OK: i32 = 6;
    pub const DOUBLE: i32 = 7;
    pub const BIG_NUMBER: i32 = 8;
    pub const VERBATIM: i32 = 9;
    pub const MAP: i32 = 10;
    pub const SET: i32 = 11;
    pub const FORMAT: i32 = 12;
    pub const STRING: i32 = 13;
    pub const SOURCE: i32 = 14;
    pub const LINE: i32 = 15;
    pub const IGNORE_STATS: i32 = 16;
}

/// Constants and functions of the `redis` table that need no running script.
fn redis_api(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    libs::add(lua, &t, "sha1hex", sha1hex)?;
    libs::add(lua, &t, "error_reply", error_reply)?;
    libs::add(lua, &t, "status_reply", status_reply)?;
    add_log_and_version(lua, &t)?;
    for (name, v) in [("REPL_NONE", 0), ("REPL_AOF", 1), ("REPL_SLAVE", 2), ("REPL_REPLICA", 2), ("REPL_ALL", 3)] {
        t.raw_set(name, v)?;
    }
    Ok(t)
}

/// What library code sees of `redis` while FUNCTION LOAD runs it.
fn library_api(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    add_log_and_version(lua, &t)?;
    Ok(t)
}

fn add_log_and_version(lua: &Lua, t: &Table) -> mlua::Result<()> {
    libs::add(lua, t, "log", log)?;
    for (name, v) in [("LOG_DEBUG", 0), ("LOG_VERBOSE", 1), ("LOG_NOTICE", 2), ("LOG_WARNING", 3)] {
        t.raw_set(name, v)?;
    }
    t.raw_set("REDIS_VERSION", crate::REDIS_VERSION)?;
    t.raw_set("REDIS_VERSION_NUM", version_num(crate::REDIS_VERSION))?;
    Ok(())
}

/// "7.2.4" → 0x070204, as Redis's REDIS_VERSION_NUM.
fn version_num(v: &str) -> i64 {
    v.split('.').take(3).fold(0i64, |acc, p| (acc << 8) | p.parse::<i64>().unwrap_or(0))
}

fn sha1hex(lua: &Lua, args: MultiValue) -> LResult {
    if args.len() != 1 {
        return fail_table(lua, "wrong number of arguments");
    }
    let s = arg_str(&args[0]).unwrap_or_default();
    ok(lua, super::sha1hex(&s))
}

/// Redis's luaPushErrorBuff: "-CODE msg" or "msg" → {err = "CODE msg"}.
pub fn error_table(lua: &Lua, text: &[u8]) -> mlua::Result<Table> {
    if super::ldb::is_active() {
        super::ldb::log_error(text);
    }
    let mut full = Vec::new();
    super::call::error_text(text, &mut full);
    let t = lua.create_table()?;
    t.raw_set("err", lua.create_string(&full)?)?;
    Ok(t)
}

fn error_reply(lua: &Lua, args: MultiValue) -> LResult {
    let msg = match (args.len(), args.front()) {
        (1, Some(Value::String(s))) => s.as_bytes().to_vec(),
        _ => return ok(lua, error_table(lua, b"wrong number or type of arguments")?),
    };
    let text = if msg.starts_with(b"-") { msg } else { [b"-".as_slice(), &msg].concat() };
    ok(lua, error_table(lua, &text)?)
}

fn status_reply(lua: &Lua, args: MultiValue) -> LResult {
    let msg = match (args.len(), args.front()) {
        (1, Some(Value::String(s))) => s.clone(),
        _ => return ok(lua, error_table(lua, b"wrong number or type of arguments")?),
    };
    let t = lua.create_table()?;
    t.raw_set("ok", msg)?;
    ok(lua, t)
}

fn log(lua: &Lua, args: MultiValue) -> LResult {
    if args.len() < 2 {
        return fail_table(lua, "redis.log() requires two arguments or more.");
    }
    let Some(level) = libs::arg_num(&args[0]) else {
        return fail_table(lua, "First argument must be a number (log level).");
    };
    let level = level as i64;
    if !(0..=3).contains(&level) {
        return fail_table(lua, "Invalid debug level.");
    }
    let mut msg = Vec::new();
    for (i, a) in args.iter().skip(1).enumerate() {
        if i > 0 {
            msg.push(b' ');
        }
        if let Some(s) = arg_str(a) {
            msg.extend_from_slice(&s);
        }
    }
    crate::server::log::log(level as usize, &String::from_utf8_lossy(&msg));
    ok(lua, ())
}

/// Whether `b` is ASCII without upper-case letters, eight bytes at a time (every EVALSHA asks
/// this of its 40-byte digest, twice: for the pipeline's checks and to run it).
fn lower_ascii(b: &[u8]) -> bool {
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let mut words = b.chunks_exact(8);
    for w in &mut words {
        let x = u64::from_le_bytes([w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7]]);
        // For bytes below 0x80 (no carries): bit 7 of x + 0x3f is set from 'A' (0x41) up, bit 7
        // of x + 0x25 from past 'Z' (0x5b) up.
        let from_a = x.wrapping_add(0x3f3f_3f3f_3f3f_3f3f);
        let past_z = x.wrapping_add(0x2525_2525_2525_2525);
        if (x | (from_a & !past_z)) & HIGH != 0 {
            return false;
        }
    }
    words.remainder().iter().all(|c| c.is_ascii() && !c.is_ascii_uppercase())
}

/// A compiled EVAL script.
pub struct Script {
    pub body: Bytes,
    pub flags: u32,
    /// The compiled function (a registry reference: runs push it with the C API).
    pub func: mlua::RegistryKey,
}

/// The EVAL engine: its Lua state and the scripts it compiled (by SHA-1).
pub struct EvalEngine {
    /// Declared before `lua`: dropped first (its allocator guard needs the state; `heap.rs`).
    pub api: Api,
    pub lua: Lua,
    pub scripts: HashMap<String, Script, ahash::RandomState>,
    /// The cached scripts' source bytes (INFO).
    pub bytes: usize,
}

impl EvalEngine {
    pub fn new() -> mlua::Result<Self> {
        let (lua, api) = new_state(false)?;
        Ok(EvalEngine { lua, api, scripts: HashMap::default(), bytes: 0 })
    }

    /// Compile and cache `body` (SCRIPT LOAD, EVAL): its SHA-1, or Redis's error text.
    pub fn load(&mut self, body: &Bytes) -> Result<String, String> {
        let sha = super::sha1hex(body);
        if self.scripts.contains_key(&sha) {
            return Ok(sha);
        }
        let (flags, shebang_len) = super::eval_shebang(body)?;
        if let Some(text) = refused_chunk(&body[shebang_len..], "user_script") {
            return Err(format!("Error compiling script (new function): {text}"));
        }
        let func = self
            .lua
            .load(&body[shebang_len..])
            .set_name(USER_SCRIPT)
            .set_mode(mlua::chunk::ChunkMode::Text)
            .set_environment(self.api.env.clone())
            .into_function()
            .map_err(|e| {
                let text = compile_error(&self.lua, &body[shebang_len..], USER_SCRIPT, &e);
                format!("Error compiling script (new function): {text}")
            })?;
        let func = self.lua.create_registry_value(func).map_err(|e| e.to_string())?;
        self.bytes += body.len();
        self.scripts.insert(sha.clone(), Script { body: crate::protocol::detached(body), flags, func });
        Ok(sha)
    }

    /// The cached script an EVALSHA digest names (any case, as Redis); looked up without a
    /// copy when it is lower-case already, as clients send it.
    pub fn by_sha(&self, sha: &[u8]) -> Option<(&str, &Script)> {
        let found = if lower_ascii(sha) {
            // SAFETY: ASCII is UTF-8.
            self.scripts.get_key_value(unsafe { std::str::from_utf8_unchecked(sha) })
        } else {
            self.scripts.get_key_value(&String::from_utf8_lossy(sha).to_ascii_lowercase())
        };
        found.map(|(k, v)| (k.as_str(), v))
    }

    /// SCRIPT FLUSH: forget every script and start a fresh state.
    pub fn flush(&mut self) -> mlua::Result<()> {
        *self = EvalEngine::new()?;
        Ok(())
    }
}

/// The text of a Lua compilation error, as lua_tostring shows it: byte for byte (Redis prints
/// the message's raw bytes, a `\xff` in the source stays one), through `util::bytetext`.
pub fn compile_error(lua: &Lua, code: &[u8], chunk_name: &str, e: &mlua::Error) -> String {
    match e {
        mlua::Error::SyntaxError { message, .. } => {
            raw_syntax_error(lua, code, chunk_name).unwrap_or_else(|| message.clone())
        }
        mlua::Error::RuntimeError(m) | mlua::Error::MemoryError(m) => m.clone(),
        other => other.to_string(),
    }
}

/// The syntax error of `code` as Lua's own bytes (mlua converts messages lossily): the chunk is
/// compiled again through the C API and the message taken off the stack.
fn raw_syntax_error(lua: &Lua, code: &[u8], chunk_name: &str) -> Option<String> {
    let name = std::ffi::CString::new(chunk_name).ok()?;
    // SAFETY: exec_raw runs the closure protected with stack space reserved; luaL_loadbuffer
    // reads `code` (a live borrowed slice of `len` bytes) and leaves one value, the compiled
    // chunk or the error message, which is what the closure returns.
    let msg: Value = unsafe {
        lua.exec_raw((), |state| {
            let rc = ffi::luaL_loadbuffer(state, code.as_ptr().cast(), code.len(), name.as_ptr());
            if rc == 0 {
                ffi::lua_pop(state, 1);
                ffi::lua_pushnil(state);
            }
        })
    }
    .ok()?;
    match msg {
        Value::String(s) => Some(crate::util::bytetext::encode(&s.as_bytes())),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lower_ascii_is_ascii_without_upper_case() {
        for c in 0..=255u8 {
            for at in [0, 5, 8, 13, 39] {
                let mut b = *b"0123456789abcdef0123456789abcdef01234567";
                b[at] = c;
                assert_eq!(lower_ascii(&b), c.is_ascii() && !c.is_ascii_uppercase(), "byte {c} at {at}");
            }
        }
        assert!(lower_ascii(b""));
    }

    #[test]
    fn version_number_like_redis() {
        assert_eq!(version_num("7.0.15"), 458767);
        assert_eq!(version_num("7.2.4"), 0x070204);
    }

    /// `loadstring` and `load` refuse a chunk over the limit before Lua's parser sees it (the
    /// state here takes 64 bytes; the real one MAX_CHUNK_BYTES).
    #[test]
    fn chunks_over_the_limit_never_reach_the_parser() {
        let (lua, api) = new_state_with(false, 64).unwrap();
        let run = |code: &str| -> String {
            let f = lua.load(code).set_environment(api.env.clone()).into_function().unwrap();
            f.call::<String>(()).unwrap()
        };
        let fits = "return type(loadstring(string.rep(' ', 58) .. 'return'))";
        assert_eq!(run(fits), "function");
        assert_eq!(
            run("return select(2, loadstring(string.rep(' ', 59) .. 'return', 'x'))"),
            "[string \"x\"]: chunk has too many bytes"
        );
        let long = run("return select(2, loadstring('return 1 ' .. string.rep('-', 60)))");
        assert!(
            long.starts_with("[string \"return 1 --") && long.ends_with("...\"]: chunk has too many bytes"),
            "{long}"
        );
        // load: the reader is not called again once the chunk is too long.
        let reader = "local n = 0
            local f, e = load(function() n = n + 1 return string.rep(' ', 30) end)
            return tostring(f) .. ' ' .. e .. ' ' .. n";
        assert_eq!(run(reader), "nil (load): chunk has too many bytes 3");
        let named = "return select(2, load(function() return string.rep(' ', 65) end, '=mine'))";
        assert_eq!(run(named), "mine: chunk has too many bytes");
        let parts = "local p = { string.rep(' ', 58), 'return', nil }
            local i = 0
            return type(load(function() i = i + 1 return p[i] end))";
        assert_eq!(run(parts), "function");
    }

    /// A chunk starting with ESC (Lua's precompiled-chunk signature) is never undumped: the
    /// text parser's error about that byte, as Redis's Lua gives.
    #[test]
    fn precompiled_chunks_are_refused_as_text() {
        let mut e = EvalEngine::new().unwrap();
        let dump: Bytes = {
            let f = e.lua.load("return 1").into_function().unwrap();
            Bytes::from(f.dump(false))
        };
        assert_eq!(
            e.load(&dump),
            Err("Error compiling script (new function): user_script:1: unexpected symbol near 'char(27)'".into())
        );
    }

    #[test]
    fn sandbox_basics() {
        let mut e = EvalEngine::new().unwrap();
        let run = |e: &mut EvalEngine, src: &str| -> (bool, String) {
            let sha = e.load(&Bytes::copy_from_slice(src.as_bytes())).unwrap();
            let f: Function = e.lua.registry_value(&e.scripts[&sha].func).unwrap();
            let (okv, v): (bool, Value) = e.api.run0.call(f).unwrap();
            let s = match v {
                Value::Table(t) => t.raw_get::<String>("err").unwrap_or_default(),
                Value::String(s) => s.to_string_lossy(),
                other => format!("{other:?}"),
            };
            (okv, s)
        };
        assert_eq!(
            run(&mut e, "return a"),
            (false, "ERR user_script:1: Script attempted to access nonexistent global variable 'a'".into())
        );
        assert_eq!(run(&mut e, "a = 1"), (false, "ERR user_script:1: Attempt to modify a readonly table".into()));
        assert_eq!(
            run(&mut e, "redis.call = 1"),
            (false, "ERR user_script:1: Attempt to modify a readonly table".into())
        );
        assert_eq!(run(&mut e, "setmetatable(_G, {})"), (false, "ERR Attempt to modify a readonly table".into()));
        assert_eq!(
            run(&mut e, "local g = getmetatable(_G)\ng.__index = {}"),
            (false, "ERR user_script:2: Attempt to modify a readonly table".into())
        );
        assert_eq!(run(&mut e, "return redis.sha1hex('')"), (true, "da39a3ee5e6b4b0d3255bfef95601890afd80709".into()));
        assert_eq!(run(&mut e, "return _VERSION"), (true, "Lua 5.1".into()));
        assert!(!run(&mut e, "return type(os)").0);
        assert_eq!(
            run(&mut e, "local ok, e = pcall(function() return foo end) return e"),
            (true, "user_script:1: Script attempted to access nonexistent global variable 'foo'".into())
        );
        assert_eq!(run(&mut e, "error('boom')"), (false, "ERR user_script:1: boom".into()));
        assert_eq!(run(&mut e, "return redis.sha1hex()"), (false, "ERR wrong number of arguments".into()));
        assert_eq!(run(&mut e, "local t = redis.error_reply('My Error') return t.err"), (true, "My Error".into()));
    }
}
