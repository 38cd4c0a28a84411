//! A script's result → the caller's reply, as Redis's luaReplyToRedisReply: strings are bulk
//! strings, numbers integers (truncated), booleans `:1` / null (or RESP3 booleans after
//! `redis.setresp(3)`), tables with `err` / `ok` / `double` / `big_number` /
//! `verbatim_string` / `map` / `set` fields those reply types, any other table an array that
//! stops at the first nil. And a failed script's error value → what its error reply is made of.
//!
//! Both read the value straight off the Lua stack with the raw API (no mlua values: no
//! registry reference per value), inside the protected call that ran the script (`run.rs`):
//! the field names come from the engine's interned names table (`engine::names`), so reading a
//! field allocates nothing and cannot raise. The only call that may raise is `lua_checkstack`
//! (out of memory), at the top of each level, while this frame holds nothing to drop.

use mlua::ffi;
use std::os::raw::c_int;

use super::engine::names;
use crate::protocol::ReplySink;

/// Deepest nesting converted before answering "reached lua stack limit" (Redis's Lua stack).
const MAX_DEPTH: usize = 7000;

/// C's `(long long)` of a Lua number (x86: out of range and NaN give i64::MIN).
pub fn to_long_long(n: f64) -> i64 {
    if n.is_nan() || !(-9.223_372_036_854_776e18..9.223_372_036_854_776e18).contains(&n) {
        i64::MIN
    } else {
        n as i64
    }
}

/// The Lua stack a conversion reads: the state and the (absolute) index of the names table.
#[derive(Clone, Copy)]
pub struct Stack {
    pub state: *mut ffi::lua_State,
    pub names: c_int,
}

impl Stack {
    /// Push `t[name]` (raw) and return its type; the caller pops it.
    unsafe fn field(self, t: c_int, name: i32) -> c_int {
        ffi::lua_rawgeti(self.state, self.names, name as _);
        ffi::lua_rawget(self.state, t);
        ffi::lua_type(self.state, -1)
    }

    /// The bytes of the string (or number, converted in place) at `idx`.
    unsafe fn bytes<'a>(self, idx: c_int) -> &'a [u8] {
        let mut len = 0;
        let p = ffi::lua_tolstring(self.state, idx, &mut len);
        if p.is_null() {
            return &[];
        }
        std::slice::from_raw_parts(p as *const u8, len)
    }

    /// `t[name]` as bytes when it is a string (numbers too when `numbers`).
    unsafe fn string_field(self, t: c_int, name: i32, numbers: bool) -> Option<Vec<u8>> {
        let ty = self.field(t, name);
        let v = (ty == ffi::LUA_TSTRING || (numbers && ty == ffi::LUA_TNUMBER)).then(|| self.bytes(-1).to_vec());
        ffi::lua_pop(self.state, 1);
        v
    }

    /// Whether `t[name]` is `true`.
    unsafe fn true_field(self, t: c_int, name: i32) -> bool {
        let ty = self.field(t, name);
        let b = ty == ffi::LUA_TBOOLEAN && ffi::lua_toboolean(self.state, -1) != 0;
        ffi::lua_pop(self.state, 1);
        b
    }
}

/// Write the value at `idx` as a reply. `resp3` is the script's protocol (redis.setresp).
///
/// # Safety
/// `idx` (absolute) and `st.names` are valid indexes of `st.state`'s stack, in a protected call
/// (see the module's comment).
pub unsafe fn write(st: Stack, idx: c_int, out: &mut ReplySink, resp3: bool) {
    write_at(st, idx, out, resp3, 0)
}

unsafe fn write_at(st: Stack, idx: c_int, out: &mut ReplySink, resp3: bool, depth: usize) {
    let l = st.state;
    if depth > MAX_DEPTH || ffi::lua_checkstack(l, 4) == 0 {
        out.error("reached lua stack limit");
        return;
    }
    match ffi::lua_type(l, idx) {
        ffi::LUA_TSTRING => out.bulk(st.bytes(idx)),
        ffi::LUA_TBOOLEAN => {
            let b = ffi::lua_toboolean(l, idx) != 0;
            if resp3 {
                out.boolean(b)
            } else if b {
                out.int(1)
            } else {
                out.null()
            }
        }
        ffi::LUA_TNUMBER => out.int(to_long_long(ffi::lua_tonumber(l, idx))),
        ffi::LUA_TTABLE => write_table(st, idx, out, resp3, depth),
        _ => out.null(),
    }
}

/// The number of entries `lua_next` visits in the table at `t`.
unsafe fn count_pairs(l: *mut ffi::lua_State, t: c_int) -> usize {
    let mut n = 0;
    ffi::lua_pushnil(l);
    while ffi::lua_next(l, t) != 0 {
        n += 1;
        ffi::lua_pop(l, 1);
    }
    n
}

unsafe fn write_table(st: Stack, t: c_int, out: &mut ReplySink, resp3: bool, depth: usize) {
    let l = st.state;
    if st.field(t, names::ERR) == ffi::LUA_TSTRING {
        // Redis formats it with %s: its bytes, up to a NUL (util::bytetext).
        let msg = format!("-{}", crate::util::bytetext::c_string(st.bytes(-1), usize::MAX));
        ffi::lua_pop(l, 1);
        out.error(&msg);
        if st.true_field(t, names::IGNORE_STATS) {
            // Counted in errorstats when the command failed; the script still fails.
            out.errors.pop();
            out.uncounted_errors += 1;
        }
        return;
    }
    ffi::lua_pop(l, 1);
    if st.field(t, names::OK) == ffi::LUA_TSTRING {
        out.simple_bytes(crate::util::bytetext::c_bytes(st.bytes(-1), usize::MAX));
        ffi::lua_pop(l, 1);
        return;
    }
    ffi::lua_pop(l, 1);
    if st.field(t, names::DOUBLE) == ffi::LUA_TNUMBER {
        let d = ffi::lua_tonumber(l, -1);
        ffi::lua_pop(l, 1);
        out.double(d);
        return;
    }
    ffi::lua_pop(l, 1);
    if st.field(t, names::BIG_NUMBER) == ffi::LUA_TSTRING {
        let s: String = String::from_utf8_lossy(st.bytes(-1)).replace(['\r', '\n'], " ");
        ffi::lua_pop(l, 1);
        out.big_number(&s);
        return;
    }
    ffi::lua_pop(l, 1);
    if st.field(t, names::VERBATIM) == ffi::LUA_TTABLE {
        let v = ffi::lua_gettop(l);
        let format = st.string_field(v, names::FORMAT, false);
        let text = st.string_field(v, names::STRING, false);
        ffi::lua_pop(l, 1);
        if let (Some(f), Some(s)) = (format, text) {
            // Three bytes, whatever they are (Redis copies three; a shorter format is padded).
            let mut format = [b' '; 3];
            for (d, b) in format.iter_mut().zip(f.iter()) {
                *d = *b;
            }
            out.verbatim(&format, &s);
            return;
        }
    } else {
        ffi::lua_pop(l, 1);
    }
    if st.field(t, names::MAP) == ffi::LUA_TTABLE {
        let m = ffi::lua_gettop(l);
        out.map(count_pairs(l, m));
        ffi::lua_pushnil(l);
        while ffi::lua_next(l, m) != 0 {
            // Key at -2, value at -1; neither is converted in place (numbers are read with
            // lua_tonumber), so lua_next can go on from the key.
            let top = ffi::lua_gettop(l);
            write_at(st, top - 1, out, resp3, depth + 1);
            write_at(st, top, out, resp3, depth + 1);
            ffi::lua_pop(l, 1);
        }
        ffi::lua_pop(l, 1);
        return;
    }
    ffi::lua_pop(l, 1);
    if st.field(t, names::SET) == ffi::LUA_TTABLE {
        let s = ffi::lua_gettop(l);
        out.set(count_pairs(l, s));
        ffi::lua_pushnil(l);
        while ffi::lua_next(l, s) != 0 {
            write_at(st, ffi::lua_gettop(l) - 1, out, resp3, depth + 1);
            ffi::lua_pop(l, 1);
        }
        ffi::lua_pop(l, 1);
        return;
    }
    ffi::lua_pop(l, 1);
    let mut n = 0;
    loop {
        ffi::lua_rawgeti(l, t, (n + 1) as _);
        let nil = ffi::lua_type(l, -1) == ffi::LUA_TNIL;
        ffi::lua_pop(l, 1);
        if nil {
            break;
        }
        n += 1;
    }
    out.array(n);
    for i in 1..=n {
        ffi::lua_rawgeti(l, t, i as _);
        write_at(st, ffi::lua_gettop(l), out, resp3, depth + 1);
        ffi::lua_pop(l, 1);
    }
}

/// What a failed script left: an error table's fields, or another value.
#[derive(Debug, PartialEq)]
pub enum ScriptError {
    Table {
        /// `err` (a string or number), `source` and `line`, and whether
        /// `ignore_error_stats_update` is set.
        err: Option<Vec<u8>>,
        source: Option<String>,
        line: Option<String>,
        ignore_stats: bool,
    },
    String(Vec<u8>),
    Other,
}

/// Read the error value at `idx`.
///
/// # Safety
/// As [`write`].
pub unsafe fn script_error(st: Stack, idx: c_int) -> ScriptError {
    let l = st.state;
    match ffi::lua_type(l, idx) {
        ffi::LUA_TTABLE => {
            let err = st.string_field(idx, names::ERR, true);
            let source = st.string_field(idx, names::SOURCE, true).map(|s| String::from_utf8_lossy(&s).into_owned());
            let line = match st.field(idx, names::LINE) {
                ffi::LUA_TNUMBER => Some((ffi::lua_tonumber(l, -1) as i64).to_string()),
                ffi::LUA_TSTRING => Some(String::from_utf8_lossy(st.bytes(-1)).into_owned()),
                _ => None,
            };
            ffi::lua_pop(l, 1);
            let ignore_stats = st.true_field(idx, names::IGNORE_STATS);
            ScriptError::Table { err, source, line, ignore_stats }
        }
        ffi::LUA_TSTRING => ScriptError::String(st.bytes(idx).to_vec()),
        _ => ScriptError::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::Proto;
    use mlua::{Lua, Value};

    /// Evaluate `src` and convert its result (or, with `error`, read it as a script error).
    fn convert(src: &str, proto: Proto, resp3: bool) -> (String, Option<ScriptError>) {
        let lua = Lua::new();
        let v: Value = lua.load(src).eval().unwrap();
        let names = lua.create_sequence_from(names::ALL.iter().copied()).unwrap();
        let mut out = ReplySink::new(proto);
        let mut err = None;
        // SAFETY: exec_raw runs the closure protected with the two values pushed at 1 and 2.
        unsafe {
            lua.exec_raw::<()>((names, v), |state| {
                let st = Stack { state, names: 1 };
                write(st, 2, &mut out, resp3);
                err = Some(script_error(st, 2));
                ffi::lua_settop(state, 0);
            })
            .unwrap();
        }
        (String::from_utf8_lossy(&out.buf).into_owned(), err)
    }

    fn render(src: &str, proto: Proto, resp3: bool) -> String {
        convert(src, proto, resp3).0
    }

    #[test]
    fn conversions_like_redis() {
        assert_eq!(
            render("return {1,2,3,'ciao',{1,2}}", Proto::Resp2, false),
            "*5\r\n:1\r\n:2\r\n:3\r\n$4\r\nciao\r\n*2\r\n:1\r\n:2\r\n"
        );
        assert_eq!(render("return 3.99", Proto::Resp2, false), ":3\r\n");
        assert_eq!(render("return -3.99", Proto::Resp2, false), ":-3\r\n");
        assert_eq!(render("return 1e300", Proto::Resp2, false), ":-9223372036854775808\r\n");
        assert_eq!(render("return {1,2,nil,4}", Proto::Resp2, false), "*2\r\n:1\r\n:2\r\n");
        assert_eq!(render("return false", Proto::Resp2, false), "$-1\r\n");
        assert_eq!(render("return false", Proto::Resp3, false), "_\r\n");
        assert_eq!(render("return true", Proto::Resp3, true), "#t\r\n");
        assert_eq!(render("return false", Proto::Resp2, true), ":0\r\n");
        assert_eq!(render("return nil", Proto::Resp2, false), "$-1\r\n");
        assert_eq!(render("return {err='My Error'}", Proto::Resp2, false), "-My Error\r\n");
        assert_eq!(render("return {ok='fine'}", Proto::Resp2, false), "+fine\r\n");
        // Redis 7.2 formats doubles with Grisu2 (7.0: %.17g, ",3.1400000000000001").
        assert_eq!(render("return {double=3.14}", Proto::Resp3, true), ",3.14\r\n");
        assert_eq!(render("return {map={a=1}}", Proto::Resp3, true), "%1\r\n$1\r\na\r\n:1\r\n");
        assert_eq!(render("return {map={[7]='x'}}", Proto::Resp3, true), "%1\r\n:7\r\n$1\r\nx\r\n");
        assert_eq!(render("return {set={a=true}}", Proto::Resp2, true), "*1\r\n$1\r\na\r\n");
        assert_eq!(render("return {big_number='12\\r\\n3'}", Proto::Resp3, true), "(12  3\r\n");
        assert_eq!(
            render("return {verbatim_string={format='txt', string='hi'}}", Proto::Resp3, true),
            "=6\r\ntxt:hi\r\n"
        );
        // A table with an `err` that is not a string is an array.
        assert_eq!(render("return {err=1}", Proto::Resp2, false), "*0\r\n");
    }

    #[test]
    fn recursion_stops_at_the_stack_limit() {
        // On a stack as large as the ones scripts run on (a fiber's or a worker's, 64 MB): the
        // default 2 MB test thread overflows first in a debug build.
        let out = std::thread::Builder::new()
            .stack_size(64 << 20)
            .spawn(|| render("local a = {} local b = {a} a[1] = b return a", Proto::Resp2, false))
            .unwrap()
            .join()
            .unwrap();
        assert!(out.ends_with("-ERR reached lua stack limit\r\n"), "{}", &out[out.len() - 40..]);
        assert!(out.starts_with("*1\r\n*1\r\n"));
    }

    #[test]
    fn script_errors() {
        let (_, e) = convert("return {err='ERR x', source='@user_script', line=3}", Proto::Resp2, false);
        assert_eq!(
            e,
            Some(ScriptError::Table {
                err: Some(b"ERR x".to_vec()),
                source: Some("@user_script".into()),
                line: Some("3".into()),
                ignore_stats: false
            })
        );
        let (out, e) = convert("return {err=5, ignore_error_stats_update=true}", Proto::Resp2, false);
        assert_eq!(out, "*0\r\n");
        assert_eq!(
            e,
            Some(ScriptError::Table { err: Some(b"5".to_vec()), source: None, line: None, ignore_stats: true })
        );
        assert_eq!(convert("return 'boom'", Proto::Resp2, false).1, Some(ScriptError::String(b"boom".to_vec())));
        assert_eq!(convert("return 12", Proto::Resp2, false).1, Some(ScriptError::Other));
    }
}
