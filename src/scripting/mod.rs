//! Lua scripting as Redis 7.0 has it: EVAL scripts and FUNCTION libraries, run by Lua 5.1
//! (`mlua`, vendored). This module owns the shared state ([`Scripting`]): the two Lua engines
//! (one for EVAL, one for functions, as in Redis), the script cache, the function libraries,
//! and the "busy script" state other clients consult without taking any lock.
//!
//! - `engine.rs`: a sandboxed Lua state (protected globals, Redis's API table, bundled libraries).
//! - `call.rs`: `redis.call` / `redis.pcall`: the per-command checks and the reply → Lua conversion.
//! - `reply.rs`: a script's Lua result → RESP reply.
//! - `run.rs`: running one script or function against the caller's all-shards view.
//! - `functions.rs`: libraries, `#!lua name=` parsing, FUNCTION DUMP / RESTORE payloads.
//! - `libs/`: cjson, cmsgpack, bit and struct, written in Rust (mlua ships none of them).
//! - `fiber.rs`: scripts run inline on their own stack and step aside while past the busy threshold.
//! - `rand.rs`: Redis's `redisLrand48`, behind `math.random`.
//! - `trampoline.rs`: the C trampoline every library function goes through (error positions).
//! - `ldb/`: the Lua debugger (SCRIPT DEBUG YES / SYNC).

pub mod call;
pub mod declared;
pub mod engine;
pub mod fiber;
pub mod functions;
pub mod heap;
pub mod ldb;
pub mod libs;
pub mod rand;
pub mod readonly;
pub mod reply;
pub mod run;
pub mod trampoline;

use parking_lot::Mutex;
use std::sync::atomic::{fence, AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Instant;

/// Script flags (shebang `flags=` and `redis.register_function` flags), as Redis's SCRIPT_FLAG_*.
pub mod flags {
    pub const NO_WRITES: u32 = 1 << 0;
    pub const ALLOW_OOM: u32 = 1 << 1;
    pub const ALLOW_STALE: u32 = 1 << 2;
    pub const NO_CLUSTER: u32 = 1 << 3;
    pub const ALLOW_CROSS_SLOT: u32 = 1 << 4;
    /// An EVAL script without a shebang (Redis's backwards-compatible mode).
    pub const EVAL_COMPAT: u32 = 1 << 5;

    pub const NAMES: &[(u32, &str)] = &[
        (NO_WRITES, "no-writes"),
        (ALLOW_OOM, "allow-oom"),
        (ALLOW_STALE, "allow-stale"),
        (NO_CLUSTER, "no-cluster"),
        (ALLOW_CROSS_SLOT, "allow-cross-slot-keys"),
    ];

    pub fn by_name(name: &[u8]) -> Option<u32> {
        NAMES.iter().find(|(_, n)| n.as_bytes() == name).map(|(f, _)| *f)
    }
}

/// The busy-script state: set while a script or function runs, read by every other client
/// before it takes any shard lock (so BUSY and SCRIPT KILL never wait for the script).
#[derive(Default)]
pub struct Busy {
    /// Microseconds since `epoch` at which the running script started; 0 = none running.
    since_us: AtomicU64,
    /// The running script is a function (FCALL): BUSY and KILL texts differ.
    is_function: AtomicBool,
    /// The running script has written (it can no longer be killed).
    pub wrote: AtomicBool,
    /// SCRIPT KILL / FUNCTION KILL asked the running script to stop (read by the Lua hook).
    pub kill: std::sync::Arc<AtomicBool>,
    /// Serialises script runs (taken before the shard locks).
    gate: Mutex<()>,
    /// Wakes the clients waiting for the running script to end.
    pub done: tokio::sync::Notify,
    /// How many clients are between [`Busy::waiting`] and the end of their wait: a script's
    /// end is announced on `done` only when there are some (notify_waiters takes a lock, twice
    /// per script, ~2% of an EVALSHA's time).
    waiters: AtomicUsize,
    epoch: std::sync::OnceLock<Instant>,
    /// The running function's name and command (FUNCTION STATS).
    pub info: Mutex<Option<(String, Vec<bytes::Bytes>)>>,
    /// The running script is being debugged (`ldb/`): it is not timed, so other clients
    /// wait for it instead of getting BUSY (Redis serves nobody during a SYNC session).
    pub debugging: AtomicBool,
}

/// The script gate, held while a script runs; releasing it wakes the waiting clients (after
/// the release, so that they find it free).
pub struct Gate<'a> {
    guard: Option<parking_lot::MutexGuard<'a, ()>>,
    busy: &'a Busy,
}

impl Drop for Gate<'_> {
    fn drop(&mut self) {
        drop(self.guard.take());
        self.busy.announce_end();
    }
}

/// A client counted among the waiters for the running script's end (see [`Busy::waiting`]).
pub struct Waiting<'a>(&'a Busy);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.waiters.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Marks a script as running while alive.
pub struct Running<'a> {
    busy: &'a Busy,
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.busy.since_us.store(0, Ordering::SeqCst);
        self.busy.announce_end();
    }
}

impl Busy {
    /// Count the caller among the waiters for the running script's end. Call it before
    /// creating the `done.notified()` future and looking at the state again: either the end's
    /// [`Busy::announce_end`] sees the count (and wakes it), or the caller sees the new state.
    pub fn waiting(&self) -> Waiting<'_> {
        self.waiters.fetch_add(1, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        Waiting(self)
    }

    /// Wake the waiting clients, after the state changed (the gate released, the mark gone).
    fn announce_end(&self) {
        fence(Ordering::SeqCst);
        if self.waiters.load(Ordering::SeqCst) > 0 {
            self.done.notify_waiters();
        }
    }

    fn now_us(&self) -> u64 {
        self.epoch.get_or_init(Instant::now).elapsed().as_micros() as u64 + 1
    }

    /// Take the script gate (one script at a time), before the script's shard locks; None while
    /// another thread's script holds it (the caller then waits without blocking its thread).
    pub fn try_gate(&self) -> Option<Gate<'_>> {
        self.gate.try_lock().map(|guard| Gate { guard: Some(guard), busy: self })
    }

    /// Whether neither a script runs nor the gate is held: a client told to wait
    /// ([`crate::commands::Action::WaitScript`]) can try again at once. Checked after the
    /// waiter has registered for [`Busy::done`], so an end in between still wakes it.
    pub fn is_idle(&self) -> bool {
        !self.is_running() && !self.gate.is_locked()
    }

    /// Mark a script as running from now on (other clients then wait, or get BUSY past the
    /// threshold); the mark goes when the returned guard is dropped.
    pub fn mark(&self, is_function: bool) -> Running<'_> {
        self.mark_at(is_function, Instant::now())
    }

    /// [`Busy::mark`] with the start time already read.
    pub fn mark_at(&self, is_function: bool, at: Instant) -> Running<'_> {
        self.kill.store(false, Ordering::SeqCst);
        self.wrote.store(false, Ordering::SeqCst);
        self.is_function.store(is_function, Ordering::SeqCst);
        let epoch = *self.epoch.get_or_init(|| at);
        self.since_us.store(at.saturating_duration_since(epoch).as_micros() as u64 + 1, Ordering::SeqCst);
        Running { busy: self }
    }

    /// When the running script started (from the mark: no clock read).
    pub fn started_at(&self) -> Option<Instant> {
        let since = self.since_us.load(Ordering::SeqCst);
        let epoch = *self.epoch.get()?;
        (since != 0).then(|| epoch + std::time::Duration::from_micros(since - 1))
    }

    /// Whether a script is running (cheaper than [`Busy::running_for`]).
    pub fn is_running(&self) -> bool {
        self.since_us.load(Ordering::SeqCst) != 0
    }

    /// How long the running script has run, if one is running.
    pub fn running_for(&self) -> Option<std::time::Duration> {
        let since = self.since_us.load(Ordering::SeqCst);
        if since != 0 && self.debugging.load(Ordering::SeqCst) {
            return Some(std::time::Duration::ZERO);
        }
        (since != 0).then(|| std::time::Duration::from_micros(self.now_us().saturating_sub(since)))
    }

    pub fn is_function(&self) -> bool {
        self.is_function.load(Ordering::SeqCst)
    }

    /// The BUSY error for commands refused while a script runs past the threshold.
    pub fn error(&self) -> &'static str {
        if self.is_function() {
            "-BUSY Redis is busy running a script. You can only call FUNCTION KILL or SHUTDOWN NOSAVE."
        } else {
            "-BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE."
        }
    }

    /// SCRIPT KILL (`is_eval`) / FUNCTION KILL: Redis's scriptKill.
    pub fn kill(&self, is_eval: bool) -> Result<(), &'static str> {
        if self.running_for().is_none() {
            return Err("-NOTBUSY No scripts in execution right now.");
        }
        if self.wrote.load(Ordering::SeqCst) {
            return Err("-UNKILLABLE Sorry the script already executed write commands against the dataset. You can either wait the script termination or kill the server in a hard way using the SHUTDOWN NOSAVE command.");
        }
        if is_eval && self.is_function() {
            return Err("-BUSY Redis is busy running a script. You can only call FUNCTION KILL or SHUTDOWN NOSAVE.");
        }
        if !is_eval && !self.is_function() {
            return Err("-BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.");
        }
        self.kill.store(true, Ordering::SeqCst);
        Ok(())
    }
}

/// A fresh Lua state's memory (what INFO shows before the first script, as Redis's 32K or so).
const EMPTY_VM: u64 = 32 * 1024;

/// Sizes INFO reports, recorded after loads and when INFO can look (see [`Scripting::note_eval`]).
#[derive(Default)]
pub struct MemoryStats {
    eval_vm: AtomicU64,
    eval_scripts: AtomicU64,
    eval_bytes: AtomicU64,
    functions_vm: AtomicU64,
    functions_bytes: AtomicU64,
}

/// All scripting state of a server.
pub struct Scripting {
    /// The EVAL engine (created on first use) and its script cache.
    pub eval: Mutex<Option<engine::EvalEngine>>,
    /// The function libraries and their engine.
    pub functions: Mutex<Option<functions::Functions>>,
    pub busy: Busy,
    /// `redisLrand48`'s state, shared by every script (as in Redis, never reset per script).
    pub rand: Mutex<rand::Lrand48>,
    /// Scripts run since start (INFO).
    pub calls: AtomicU64,
    /// DEBUG SET-DISABLE-DENY-SCRIPTS: scripts may call `noscript` commands (tests).
    pub disable_deny_scripts: AtomicBool,
    /// Sizes for INFO memory.
    pub memory: MemoryStats,
    /// Library and function counts, readable while a function runs (FUNCTION STATS).
    libraries: AtomicU64,
    functions_count: AtomicU64,
    /// The registry's published sources (see `functions::Published`): what SAVE, BGSAVE and
    /// full synchronisations write, readable without waiting for a running function.
    sources: Mutex<Option<functions::Published>>,
}

impl Default for Scripting {
    fn default() -> Self {
        Scripting {
            eval: Mutex::new(None),
            functions: Mutex::new(None),
            busy: Busy::default(),
            rand: Mutex::new(rand::Lrand48::default()),
            calls: AtomicU64::new(0),
            disable_deny_scripts: AtomicBool::new(false),
            memory: MemoryStats::default(),
            libraries: AtomicU64::new(0),
            functions_count: AtomicU64::new(0),
            sources: Mutex::new(None),
        }
    }
}

impl Scripting {
    /// Whether scripts may call `noscript` commands (DEBUG SET-DISABLE-DENY-SCRIPTS 1).
    pub fn allow_noscript(&self) -> bool {
        self.disable_deny_scripts.load(Ordering::Relaxed)
    }

    /// Run `f` with the EVAL engine, creating it on first use.
    pub fn with_eval<R>(&self, f: impl FnOnce(&mut engine::EvalEngine) -> R) -> Result<R, String> {
        let mut g = self.eval.lock();
        if g.is_none() {
            *g = Some(engine::EvalEngine::new().map_err(|e| format!("Lua engine failed to start: {e}"))?);
        }
        match g.as_mut() {
            Some(e) => {
                let r = f(e);
                self.note_eval(Some(e));
                Ok(r)
            }
            None => Err("Lua engine unavailable".into()),
        }
    }

    /// Run `f` with the function registry, creating it on first use.
    pub fn with_functions<R>(&self, f: impl FnOnce(&mut functions::Functions) -> R) -> Result<R, String> {
        let mut g = self.functions.lock();
        if g.is_none() {
            *g = Some(functions::Functions::new().map_err(|e| format!("Lua engine failed to start: {e}"))?);
        }
        match g.as_mut() {
            Some(e) => {
                let r = f(e);
                self.libraries.store(e.libraries.len() as u64, Ordering::Relaxed);
                self.functions_count.store(e.function_count() as u64, Ordering::Relaxed);
                self.note_functions(Some(e));
                *self.sources.lock() = Some(e.published.clone());
                Ok(r)
            }
            None => Err("Lua engine unavailable".into()),
        }
    }

    /// FUNCTION FLUSH: drop every library (and the engine).
    pub fn flush_functions(&self) {
        *self.functions.lock() = None;
        self.note_functions(None);
        self.libraries.store(0, Ordering::Relaxed);
        self.functions_count.store(0, Ordering::Relaxed);
        *self.sources.lock() = None;
    }

    /// (libraries, functions), without waiting for a running function.
    pub fn function_counts(&self) -> (u64, u64) {
        (self.libraries.load(Ordering::Relaxed), self.functions_count.load(Ordering::Relaxed))
    }

    /// The running function: name, command, milliseconds so far.
    pub fn running_info(&self) -> Option<(String, Vec<bytes::Bytes>, u128)> {
        let d = self.busy.running_for()?;
        if !self.busy.is_function() {
            return None;
        }
        let (name, argv) = self.busy.info.lock().clone()?;
        Some((name, argv, d.as_millis()))
    }

    /// The sources of every function library, in name order (for RDB persistence: written as
    /// Redis's FUNCTION2 opcode payloads, given back to [`Scripting::load_library_sources`]).
    /// Never waits for a running function.
    pub fn library_sources(&self) -> Vec<Vec<u8>> {
        let published = self.sources.lock().clone();
        published.map_or_else(Vec::new, |p| p.lock().values().map(|code| code.to_vec()).collect())
    }

    /// Install library sources read from an RDB file, all or nothing: on the first library
    /// that fails to load (Redis's error text), nothing changes. A library that already exists
    /// is an error unless `replace` (DEBUG RELOAD MERGE, Redis's RDBFLAGS_ALLOW_DUP).
    pub fn load_library_sources(&self, sources: &[Vec<u8>], replace: bool) -> Result<(), String> {
        if sources.is_empty() {
            return Ok(());
        }
        let current = self.library_sources();
        let mut fresh = functions::Functions::new().map_err(|e| format!("Lua engine failed to start: {e}"))?;
        for s in current.iter().chain(sources) {
            fresh.load_untimed(s, replace)?;
        }
        self.with_functions(|f| *f = fresh)
    }

    /// Record the EVAL engine's sizes for INFO (which must not wait for the engine's lock: a
    /// script may call INFO).
    pub fn note_eval(&self, e: Option<&engine::EvalEngine>) {
        let m = &self.memory;
        let heap = e.map_or(0, |e| e.lua.used_memory());
        crate::metrics::memory::set_script_heap(crate::metrics::memory::ScriptHeap::Eval, heap);
        m.eval_vm.store(if e.is_some() { heap as u64 } else { EMPTY_VM }, Ordering::Relaxed);
        m.eval_scripts.store(e.map_or(0, |e| e.scripts.len() as u64), Ordering::Relaxed);
        m.eval_bytes.store(e.map_or(0, |e| e.bytes as u64), Ordering::Relaxed);
    }

    /// Record the function engine's sizes for INFO.
    pub fn note_functions(&self, f: Option<&functions::Functions>) {
        let m = &self.memory;
        let heap = f.map_or(0, |f| f.lua.used_memory());
        crate::metrics::memory::set_script_heap(crate::metrics::memory::ScriptHeap::Functions, heap);
        m.functions_vm.store(if f.is_some() { heap as u64 } else { EMPTY_VM }, Ordering::Relaxed);
        m.functions_bytes.store(f.map_or(0, |f| f.code_bytes), Ordering::Relaxed);
    }

    /// INFO memory's scripting fields, as Redis 7.0 prints them.
    pub fn info_memory(&self) -> Vec<(&'static str, u64)> {
        // Fresh figures unless an engine is in use (a running script, maybe the caller itself).
        if let Some(g) = self.eval.try_lock() {
            self.note_eval(g.as_ref());
        }
        if let Some(g) = self.functions.try_lock() {
            self.note_functions(g.as_ref());
        }
        let m = &self.memory;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let (eval_vm, functions_vm) = (get(&m.eval_vm).max(EMPTY_VM), get(&m.functions_vm).max(EMPTY_VM));
        let scripts = get(&m.eval_scripts);
        // The cache's dictionary and script objects, roughly as Redis counts them.
        let eval_scripts = get(&m.eval_bytes) + scripts * 96;
        let (libs, funcs) = self.function_counts();
        let functions = get(&m.functions_bytes) + libs * 128 + funcs * 96;
        vec![
            ("used_memory_lua", eval_vm),
            ("used_memory_vm_eval", eval_vm),
            ("used_memory_scripts_eval", eval_scripts),
            ("number_of_cached_scripts", scripts),
            ("number_of_functions", funcs),
            ("number_of_libraries", libs),
            ("used_memory_vm_functions", functions_vm),
            ("used_memory_vm_total", eval_vm + functions_vm),
            ("used_memory_functions", functions),
            ("used_memory_scripts", eval_scripts + functions),
        ]
    }
}

/// Lower-case hex SHA-1 of `body` (script ids, redis.sha1hex).
pub fn sha1hex(body: &[u8]) -> String {
    sha1_smol::Sha1::from(body).digest().to_string()
}

/// Parse an EVAL script's shebang (`#!lua flags=no-writes,allow-oom`): its flags and the
/// shebang's length (the script is compiled without it, keeping the newline), or Redis's error.
/// A script without shebang gets [`flags::EVAL_COMPAT`].
pub fn eval_shebang(body: &[u8]) -> Result<(u32, usize), String> {
    if !body.starts_with(b"#!") {
        return Ok((flags::EVAL_COMPAT, 0));
    }
    let Some(end) = body.iter().position(|&c| c == b'\n') else {
        return Err("Invalid script shebang".into());
    };
    let parts = crate::util::split_args::split_args(&body[..end]).unwrap_or_default();
    let Some(first) = parts.first() else {
        return Err("Invalid engine in script shebang".into());
    };
    if first.as_slice() != b"#!lua" {
        return Err(format!("Unexpected engine in script shebang: {}", String::from_utf8_lossy(first)));
    }
    let mut out = 0;
    for p in &parts[1..] {
        let Some(list) = p.strip_prefix(b"flags=") else {
            return Err(format!("Unknown lua shebang option: {}", String::from_utf8_lossy(p)));
        };
        if list.is_empty() {
            continue;
        }
        for f in list.split(|&c| c == b',') {
            match flags::by_name(f) {
                Some(v) => out |= v,
                None => return Err(format!("Unexpected flag in script shebang: {}", String::from_utf8_lossy(f))),
            }
        }
    }
    Ok((out, end))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shebangs() {
        assert_eq!(eval_shebang(b"return 1"), Ok((flags::EVAL_COMPAT, 0)));
        assert_eq!(eval_shebang(b"#!lua\nreturn 1"), Ok((0, 5)));
        assert_eq!(
            eval_shebang(b"#!lua flags=no-writes,allow-oom\nreturn 1").map(|r| r.0),
            Ok(flags::NO_WRITES | flags::ALLOW_OOM)
        );
        assert_eq!(eval_shebang(b"#!lua flags=bad\n").unwrap_err(), "Unexpected flag in script shebang: bad");
        assert_eq!(eval_shebang(b"#!py\n").unwrap_err(), "Unexpected engine in script shebang: #!py");
        assert_eq!(eval_shebang(b"#!lua").unwrap_err(), "Invalid script shebang");
        assert_eq!(eval_shebang(b"#!lua x=1\n").unwrap_err(), "Unknown lua shebang option: x=1");
    }

    #[test]
    fn sha1_matches_redis() {
        assert_eq!(sha1hex(b""), "da39a3ee5e6b4b0d3255bfef95601890afd80709");
        assert_eq!(sha1hex(b"return 1"), "e0e1f9fabfc9d4800c877a703b823ac0578ff8db");
    }

    #[tokio::test]
    async fn a_counted_waiter_is_woken_when_the_script_ends() {
        let b = Busy::default();
        let gate = b.try_gate().unwrap();
        let running = b.mark(false);
        let waiting = b.waiting();
        let done = b.done.notified();
        tokio::pin!(done);
        done.as_mut().enable();
        assert!(!b.is_idle());
        drop(running);
        drop(gate);
        tokio::time::timeout(std::time::Duration::from_secs(10), done).await.expect("woken at the end");
        drop(waiting);
        assert_eq!(b.waiters.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn busy_kill_rules() {
        let b = Busy::default();
        assert!(b.kill(true).unwrap_err().starts_with("-NOTBUSY"));
        let g = b.mark(false);
        assert!(b.running_for().is_some());
        assert!(b.kill(false).unwrap_err().contains("SCRIPT KILL"));
        b.wrote.store(true, Ordering::SeqCst);
        assert!(b.kill(true).unwrap_err().starts_with("-UNKILLABLE"));
        drop(g);
        assert!(b.running_for().is_none());
    }
}
