//! What the debugger's commands do, once `repl` has parsed them: the source listing and
//! breakpoints (Redis's ldbList, ldbBreak), help, and the ones that look into the suspended
//! script (print, trace, eval, redis). Their texts are Redis 7.0's.

use mlua::ffi;
use std::ffi::CStr;
use std::os::raw::{c_char, c_int};

use super::render::{log_text, log_value};
use super::{in_script, with, Session};
use crate::util::bytetext::c_str;

const MAX_BREAKPOINTS: usize = 64;

impl Session<'_> {
    pub(super) fn is_breakpoint(&self, line: i32) -> bool {
        self.bp.contains(&line)
    }

    fn source_line(&self, line: i32) -> &[u8] {
        match usize::try_from(line - 1).ok().and_then(|i| self.src.get(i)) {
            Some(l) => l,
            None => b"<out of range source code line>",
        }
    }

    /// Redis's ldbLogSourceLine: "->#12  code".
    pub(super) fn log_source_line(&mut self, line: i32) {
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
    pub(super) fn list(&mut self, around: i32, context: i32) {
        for j in 1..=self.src.len() as i32 {
            if around != 0 && (around as i64 - j as i64).abs() > context as i64 {
                continue;
            }
            self.log_source_line(j);
        }
    }

    /// Redis's ldbBreak.
    pub(super) fn breakpoints(&mut self, argv: &[Vec<u8>]) {
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
                match self.bp.iter().position(|&b| -(b as i64) == line) {
                    Some(i) => {
                        self.bp.remove(i);
                        self.log(b"Breakpoint removed.".to_vec());
                    }
                    None => self.log(b"No breakpoint in the specified line.".to_vec()),
                }
            }
        }
    }

    pub(super) fn help(&mut self) {
        for line in HELP {
            self.log(line.as_bytes().to_vec());
        }
    }
}
/// Call `f` with each local of the frame `ar` describes, its value on top of the stack (popped
/// after `f`), until `f` returns true; whether it did.
unsafe fn find_local(l: *mut ffi::lua_State, ar: &ffi::lua_Debug, mut f: impl FnMut(&[u8]) -> bool) -> bool {
    let mut i = 1;
    loop {
        let local = ffi::lua_getlocal(l, ar, i);
        if local.is_null() {
            return false;
        }
        i += 1;
        let stop = f(CStr::from_ptr(local).to_bytes());
        ffi::lua_pop(l, 1);
        if stop {
            return true;
        }
    }
}

/// Redis's ldbPrint: the first local of that name from the current frame outwards, else the
/// globals KEYS and ARGV.
pub(super) unsafe fn print(l: *mut ffi::lua_State, name: &[u8]) {
    let mut ar: ffi::lua_Debug = std::mem::zeroed();
    let mut level = 0;
    while ffi::lua_getstack(l, level, &mut ar) != 0 {
        level += 1;
        let found = find_local(l, &ar, |local| {
            let hit = local == name;
            if hit {
                log_value(b"<value> ", l, -1);
            }
            hit
        });
        if found {
            return;
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
pub(super) unsafe fn print_all(l: *mut ffi::lua_State) {
    let mut ar: ffi::lua_Debug = std::mem::zeroed();
    let mut vars = 0;
    if ffi::lua_getstack(l, 0, &mut ar) != 0 {
        find_local(l, &ar, |name| {
            if !name.windows(12).any(|w| w == b"(*temporary)") {
                let mut prefix = b"<value> ".to_vec();
                prefix.extend_from_slice(name);
                prefix.extend_from_slice(b" = ");
                log_value(&prefix, l, -1);
                vars += 1;
            }
            false
        });
    }
    if vars == 0 {
        with(|s| s.log(b"No local variables in the current context.".to_vec()));
    }
}

/// Redis's ldbTrace: the script's frames, innermost first.
pub(super) unsafe fn trace(l: *mut ffi::lua_State) {
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
pub(super) unsafe fn eval_code(l: *mut ffi::lua_State, argv: &[Vec<u8>]) {
    let code = argv[1..].join(&b' ');
    let expr = [b"return ".as_slice(), &code].concat();
    let name = c"@ldb_eval";
    // A chunk never given to Lua's loader, logged as its compile errors are; `code` is shorter
    // than `expr`, so the bound holds for it too.
    if let Some(text) = crate::scripting::engine::refused_chunk(&expr, "ldb_eval") {
        with(|s| s.log([b"<error> ".as_slice(), text.as_bytes()].concat()));
        return;
    }
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
pub(super) unsafe fn redis_command(l: *mut ffi::lua_State, argv: &[Vec<u8>]) {
    if ffi::lua_checkstack(l, argv.len() as c_int + 1) == 0 {
        with(|s| s.log(b"<reply> ".to_vec()));
        return;
    }
    ffi::lua_pushcfunction(l, crate::scripting::call::lua_redis_call);
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
    use super::super::render::MAX_LEN_DEFAULT;
    use super::super::split_source;
    use super::*;
    use crate::server::Server;
    use crate::session::ClientHandle;
    use std::time::Instant;

    #[test]
    fn session_texts() {
        let server = Server::new(crate::config::Config::defaults(), None);
        let handle = ClientHandle::new(1, String::new(), String::new(), -1);
        let mut s = Session {
            server: &server,
            handle: &handle,
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
        s.breakpoints(&argv(&["b", "3", "3", "9", "x", "-1", "-9223372036854775808", "-3"]));
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
