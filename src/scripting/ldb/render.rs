//! Readable forms for the log: a RESP reply as Redis's ldbRedisProtocolToHuman writes it, a Lua
//! value as ldbCatStackValue does, and the `maxlen` limit that trims logged replies and values
//! (the `maxlen` command and the one-time hint).

use mlua::ffi;
use std::ffi::CStr;
use std::os::raw::c_int;

use super::wire::atoi;
use super::{with, Session};
use crate::scripting::libs::fmt_g;
use crate::util::bytetext::c_str;

/// Default length limit of logged replies and values.
pub(super) const MAX_LEN_DEFAULT: usize = 256;
/// Nesting shown of a value (Redis's LDB_MAX_VALUES_DEPTH, LUA_MINSTACK / 2).
const MAX_VALUES_DEPTH: usize = 10;

impl Session<'_> {
    /// Redis's ldbLogWithMaxLen: trimmed to `maxlen`, with a hint the first time.
    pub(super) fn log_max_len(&mut self, mut entry: Vec<u8>) {
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

    /// Redis's ldbMaxlen.
    pub(super) fn set_maxlen(&mut self, argv: &[Vec<u8>]) {
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
        ffi::LUA_TNUMBER => out.extend_from_slice(fmt_g(ffi::lua_tonumber(l, idx), 6).as_bytes()),
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
pub(super) fn log_value(prefix: &[u8], l: *mut ffi::lua_State, idx: c_int) {
    let mut entry = prefix.to_vec();
    // SAFETY: the callers have a value at `idx` on the live state `l`.
    unsafe { cat_value(l, idx, &mut entry, 0) };
    with(|s| s.log_max_len(entry));
}

pub(super) fn log_text(prefix: &str, l: *mut ffi::lua_State, idx: c_int) {
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
}
