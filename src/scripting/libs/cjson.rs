//! `cjson`: lua-cjson 2.1.0 as bundled with Redis, in Rust. Numbers are written with `%.14g`,
//! `/` is escaped, tables whose keys are all positive integers are arrays (with `null` holes,
//! refusing excessively sparse ones), `cjson.null` is a NULL light userdata, and decoding
//! errors read "Expected X but found Y at character N" exactly as lua-cjson words them.

use mlua::{LightUserData, Lua, MultiValue, Table, Value};
use parking_lot::Mutex;
use std::sync::Arc;

use super::{add, fail, fmt_g, ok, type_name, LResult};

/// The settings of one cjson instance, which its configuration functions change for every
/// later call (Redis keeps them in the Lua state until SCRIPT FLUSH); lua-cjson's defaults.
#[derive(Clone, Copy)]
struct Settings {
    sparse_convert: bool,
    sparse_ratio: i32,
    sparse_safe: i32,
    encode_max_depth: i32,
    decode_max_depth: i32,
    /// NaN and Inf: 0 refused, 1 written as numbers, 2 written as `null`.
    encode_invalid_numbers: usize,
    decode_invalid_numbers: bool,
    keep_buffer: bool,
    number_precision: i32,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            sparse_convert: false,
            sparse_ratio: 2,
            sparse_safe: 10,
            encode_max_depth: 1000,
            decode_max_depth: 1000,
            encode_invalid_numbers: 0,
            decode_invalid_numbers: true,
            keep_buffer: true,
            number_precision: 14,
        }
    }
}

type Config = Mutex<Settings>;

pub fn table(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    let cfg = Arc::new(Config::default());
    // Each call works on a copy of the settings (the lock is not held while it runs).
    let c = cfg.clone();
    add(lua, &t, "encode", move |l, a| encode(l, a, &{ *c.lock() }))?;
    let c = cfg.clone();
    add(lua, &t, "decode", move |l, a| decode(l, a, &{ *c.lock() }))?;
    let settings: [(&str, Setter); 7] = [
        ("encode_sparse_array", sparse_array),
        ("encode_max_depth", |o, s| o.integer(1, &mut s.encode_max_depth, 1, i32::MAX).map(|v| vec![v])),
        ("decode_max_depth", |o, s| o.integer(1, &mut s.decode_max_depth, 1, i32::MAX).map(|v| vec![v])),
        ("encode_number_precision", |o, s| o.integer(1, &mut s.number_precision, 1, 14).map(|v| vec![v])),
        ("encode_keep_buffer", |o, s| o.boolean(1, &mut s.keep_buffer).map(|v| vec![v])),
        ("encode_invalid_numbers", |o, s| o.enumerated(1, &mut s.encode_invalid_numbers).map(|v| vec![v])),
        ("decode_invalid_numbers", |o, s| o.boolean(1, &mut s.decode_invalid_numbers).map(|v| vec![v])),
    ];
    for (name, set) in settings {
        let c = cfg.clone();
        let max_args = if name == "encode_sparse_array" { 3 } else { 1 };
        add(lua, &t, name, move |l, a| {
            let o = Options { lua: l, args: &a, name };
            if a.len() > max_args {
                return o.fail(max_args + 1, "found too many arguments");
            }
            let mut s = c.lock();
            match set(&o, &mut s) {
                Ok(values) => ok(l, MultiValue::from_vec(values)),
                Err(e) => Ok(e),
            }
        })?;
    }
    add(lua, &t, "new", |l, _| ok(l, table(l)?))?;
    t.raw_set("null", Value::LightUserData(LightUserData(std::ptr::null_mut())))?;
    t.raw_set("_NAME", "cjson")?;
    t.raw_set("_VERSION", "2.1.0")?;
    Ok(t)
}

/// A configuration function: its results, or the failure to raise.
type Setter = fn(&Options, &mut Settings) -> Result<Vec<Value>, MultiValue>;

/// `cjson.encode_sparse_array([convert [, ratio [, safe]]])`.
fn sparse_array(o: &Options, s: &mut Settings) -> Result<Vec<Value>, MultiValue> {
    Ok(vec![
        o.boolean(1, &mut s.sparse_convert)?,
        o.integer(2, &mut s.sparse_ratio, 0, i32::MAX)?,
        o.integer(3, &mut s.sparse_safe, 0, i32::MAX)?,
    ])
}

/// The arguments of a configuration function, read as lua-cjson's json_integer_option and
/// json_enum_option read them (a nil argument leaves the setting; the setting is returned).
struct Options<'a> {
    lua: &'a Lua,
    args: &'a MultiValue,
    name: &'static str,
}

impl Options<'_> {
    fn fail(&self, n: usize, msg: &str) -> LResult {
        super::bad_arg(self.lua, n, self.name, msg)
    }

    fn err(&self, n: usize, msg: &str) -> MultiValue {
        self.fail(n, msg).unwrap_or_default()
    }

    fn arg(&self, n: usize) -> Option<&Value> {
        self.args.get(n - 1).filter(|v| !matches!(v, Value::Nil))
    }

    /// An integer setting in `min..=max` (luaL_checkinteger, then C's int; a range error
    /// names argument 1 whichever it is, as lua-cjson's does).
    fn integer(&self, n: usize, setting: &mut i32, min: i32, max: i32) -> Result<Value, MultiValue> {
        if let Some(v) = self.arg(n) {
            let Some(x) = super::arg_num(v) else {
                return Err(self.err(n, &format!("number expected, got {}", type_name(Some(v)))));
            };
            let x = x as i64 as i32;
            if x < min || x > max {
                return Err(self.err(1, &format!("expected integer between {min} and {max}")));
            }
            *setting = x;
        }
        Ok(Value::Integer(*setting as i64))
    }

    /// An on/off setting: a boolean, or "on" / "off".
    fn boolean(&self, n: usize, setting: &mut bool) -> Result<Value, MultiValue> {
        let mut v = *setting as usize;
        let r = self.option(n, &mut v, &["off", "on"]);
        *setting = v == 1;
        r
    }

    /// encode_invalid_numbers: a boolean, or "off" / "on" / "null".
    fn enumerated(&self, n: usize, setting: &mut usize) -> Result<Value, MultiValue> {
        self.option(n, setting, &["off", "on", "null"])
    }

    fn option(&self, n: usize, setting: &mut usize, names: &[&str]) -> Result<Value, MultiValue> {
        match self.arg(n) {
            None => {}
            Some(Value::Boolean(b)) => *setting = *b as usize,
            Some(v) => {
                let Some(text) = super::arg_str(v) else {
                    return Err(self.err(n, &format!("string expected, got {}", type_name(Some(v)))));
                };
                match names.iter().position(|o| o.as_bytes() == text.as_slice()) {
                    Some(i) => *setting = i,
                    None => {
                        let msg = format!("invalid option '{}'", String::from_utf8_lossy(&text));
                        return Err(self.err(n, &msg));
                    }
                }
            }
        }
        Ok(match *setting {
            0 | 1 => Value::Boolean(*setting == 1),
            i => Value::String(self.lua.create_string(names[i]).map_err(|_| MultiValue::new())?),
        })
    }
}

fn encode(lua: &Lua, args: MultiValue, cfg: &Settings) -> LResult {
    if args.len() != 1 {
        return fail(lua, "bad argument #1 to 'encode' (expected 1 argument)");
    }
    let mut out = Vec::new();
    match encode_value(&args[0], &mut out, 0, cfg, super::heap_room(lua)) {
        Ok(()) => ok(lua, lua.create_string(&out)?),
        Err(e) if e.is_empty() => super::out_of_memory(lua),
        Err(e) => fail(lua, e),
    }
}

/// Err: the error text; empty when the output went past `room` (see `libs::heap_room`).
fn encode_value(v: &Value, out: &mut Vec<u8>, depth: usize, cfg: &Settings, room: usize) -> Result<(), String> {
    match v {
        Value::Nil => out.extend_from_slice(b"null"),
        Value::LightUserData(p) if p.0.is_null() => out.extend_from_slice(b"null"),
        Value::Boolean(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Value::Integer(i) => encode_number(*i as f64, out, cfg)?,
        Value::Number(n) => encode_number(*n, out, cfg)?,
        Value::String(s) => {
            encode_string(&s.as_bytes(), out);
            if out.len() > room {
                return Err(String::new());
            }
        }
        Value::Table(t) => {
            let depth = depth + 1;
            if depth > cfg.encode_max_depth as usize {
                return Err(format!("Cannot serialise, excessive nesting ({depth})"));
            }
            match array_length(t, cfg)? {
                Some(n) if n > 0 => {
                    out.push(b'[');
                    for i in 1..=n {
                        if i > 1 {
                            out.push(b',');
                        }
                        let v: Value = t.raw_get(i).map_err(|e| e.to_string())?;
                        encode_value(&v, out, depth, cfg, room)?;
                    }
                    out.push(b']');
                }
                _ => {
                    out.push(b'{');
                    let mut first = true;
                    for pair in t.clone().pairs::<Value, Value>() {
                        let (k, v) = pair.map_err(|e| e.to_string())?;
                        if !first {
                            out.push(b',');
                        }
                        first = false;
                        match &k {
                            Value::String(s) => encode_string(&s.as_bytes(), out),
                            Value::Integer(_) | Value::Number(_) => {
                                out.push(b'"');
                                encode_number(super::arg_num(&k).unwrap_or(0.0), out, cfg)?;
                                out.push(b'"');
                            }
                            other => {
                                return Err(format!(
                                    "Cannot serialise {}: table key must be a number or string",
                                    type_name(Some(other))
                                ))
                            }
                        }
                        out.push(b':');
                        encode_value(&v, out, depth, cfg, room)?;
                    }
                    out.push(b'}');
                }
            }
        }
        other => return Err(format!("Cannot serialise {}: type not supported", type_name(Some(other)))),
    }
    Ok(())
}

/// lua-cjson's lua_array_length: Some(max index) when every key is a positive integer; an
/// excessively sparse one (past `encode_sparse_array`'s ratio and safe size) is refused, or
/// written as an object when it converts them. The largest index is a C `int`, as there: a key
/// past 2^31 - 1 stores INT_MIN (x86's conversion), which makes the table an object unless a
/// later key (in Lua's iteration order) raises it again.
fn array_length(t: &Table, cfg: &Settings) -> Result<Option<usize>, String> {
    let (mut max, mut items) = (0i32, 0i64);
    for pair in t.clone().pairs::<Value, Value>() {
        let (k, _) = pair.map_err(|e| e.to_string())?;
        let n = match k {
            Value::Integer(i) => i as f64,
            Value::Number(n) => n,
            _ => return Ok(None),
        };
        if n < 1.0 || n.floor() != n {
            return Ok(None);
        }
        if n > max as f64 {
            max = if n < 2_147_483_648.0 { n as i32 } else { i32::MIN };
        }
        items += 1;
    }
    let ratio = cfg.sparse_ratio as i64;
    if ratio > 0 && max as i64 > items * ratio && max > cfg.sparse_safe {
        if !cfg.sparse_convert {
            return Err("Cannot serialise table: excessively sparse array".into());
        }
        return Ok(None);
    }
    Ok((max > 0).then_some(max as usize))
}

fn encode_number(n: f64, out: &mut Vec<u8>, cfg: &Settings) -> Result<(), String> {
    if !n.is_finite() {
        match cfg.encode_invalid_numbers {
            0 => return Err("Cannot serialise number: must not be NaN or Inf".into()),
            2 => {
                out.extend_from_slice(b"null");
                return Ok(());
            }
            _ => {}
        }
    }
    // lua-cjson writes "nan" itself (never "-nan").
    if n.is_nan() {
        out.extend_from_slice(b"nan");
        return Ok(());
    }
    out.extend_from_slice(fmt_g(n, cfg.number_precision as usize).as_bytes());
    Ok(())
}

fn encode_string(s: &[u8], out: &mut Vec<u8>) {
    out.push(b'"');
    for &c in s {
        match c {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'/' => out.extend_from_slice(b"\\/"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x0c => out.extend_from_slice(b"\\f"),
            c if c < 0x20 || c == 0x7f => out.extend_from_slice(format!("\\u{:04x}", c).as_bytes()),
            c => out.push(c),
        }
    }
    out.push(b'"');
}

fn decode(lua: &Lua, args: MultiValue, cfg: &Settings) -> LResult {
    let s = match args.front() {
        Some(Value::String(s)) if args.len() == 1 => s.as_bytes().to_vec(),
        Some(v @ (Value::Integer(_) | Value::Number(_))) if args.len() == 1 => super::arg_str(v).unwrap_or_default(),
        _ if args.len() != 1 => return fail(lua, "bad argument #1 to 'decode' (expected 1 argument)"),
        other => return fail(lua, format!("bad argument #1 to 'decode' (string expected, got {})", type_name(other))),
    };
    // lua-cjson refuses UTF-16/32 (a NUL among the first two bytes).
    if s.len() >= 2 && (s[0] == 0 || s[1] == 0) {
        return fail(lua, "JSON parser does not support UTF-16 or UTF-32");
    }
    let max_depth = cfg.decode_max_depth as usize;
    let invalid_numbers = cfg.decode_invalid_numbers;
    let mut p = Parser { s: &s, pos: 0, lua, depth: 0, max_depth, invalid_numbers };
    let r = (|| {
        let tok = p.next_token()?;
        let v = p.value(tok)?;
        let end = p.next_token()?;
        if !matches!(end.kind, Tok::End) {
            return Err(p.unexpected("the end", &end));
        }
        Ok(v)
    })();
    match r {
        Ok(v) => ok(lua, v),
        Err(e) => fail(lua, e),
    }
}

enum Tok {
    ObjBegin,
    ObjEnd,
    ArrBegin,
    ArrEnd,
    Str(Vec<u8>),
    Num(f64),
    Bool(bool),
    Null,
    Colon,
    Comma,
    End,
    Error(&'static str),
}

struct Token {
    kind: Tok,
    index: usize,
}

struct Parser<'a> {
    s: &'a [u8],
    pos: usize,
    lua: &'a Lua,
    depth: usize,
    max_depth: usize,
    /// decode_invalid_numbers: Inf, NaN, hexadecimal, a leading '+' or zero are read.
    invalid_numbers: bool,
}

impl Parser<'_> {
    fn unexpected(&self, expected: &str, t: &Token) -> String {
        let found = match &t.kind {
            Tok::ObjBegin => "T_OBJ_BEGIN",
            Tok::ObjEnd => "T_OBJ_END",
            Tok::ArrBegin => "T_ARR_BEGIN",
            Tok::ArrEnd => "T_ARR_END",
            Tok::Str(_) => "T_STRING",
            Tok::Num(_) => "T_NUMBER",
            Tok::Bool(_) => "T_BOOLEAN",
            Tok::Null => "T_NULL",
            Tok::Colon => "T_COLON",
            Tok::Comma => "T_COMMA",
            Tok::End => "T_END",
            Tok::Error(e) => e,
        };
        format!("Expected {} but found {} at character {}", expected, found, t.index + 1)
    }

    fn next_token(&mut self) -> Result<Token, String> {
        while self.pos < self.s.len() && matches!(self.s[self.pos], b' ' | b'\t' | b'\n' | b'\r') {
            self.pos += 1;
        }
        let index = self.pos;
        let tok = |kind| Ok(Token { kind, index });
        let Some(&c) = self.s.get(self.pos) else {
            return tok(Tok::End);
        };
        let single = match c {
            b'{' => Some(Tok::ObjBegin),
            b'}' => Some(Tok::ObjEnd),
            b'[' => Some(Tok::ArrBegin),
            b']' => Some(Tok::ArrEnd),
            b':' => Some(Tok::Colon),
            b',' => Some(Tok::Comma),
            _ => None,
        };
        if let Some(k) = single {
            self.pos += 1;
            return tok(k);
        }
        let rest = &self.s[self.pos..];
        match c {
            b'"' => self.string(),
            b'-' | b'0'..=b'9' if !self.invalid_numbers && self.is_invalid_number() => {
                tok(Tok::Error("invalid number"))
            }
            b'-' | b'0'..=b'9' => self.number(),
            _ if rest.starts_with(b"true") => {
                self.pos += 4;
                tok(Tok::Bool(true))
            }
            _ if rest.starts_with(b"false") => {
                self.pos += 5;
                tok(Tok::Bool(false))
            }
            _ if rest.starts_with(b"null") => {
                self.pos += 4;
                tok(Tok::Null)
            }
            _ if self.invalid_numbers && self.is_invalid_number() => self.number(),
            _ => tok(Tok::Error("invalid token")),
        }
    }

    /// lua-cjson's json_is_invalid_number: a number JSON does not allow (a leading '+',
    /// hexadecimal, leading zeros, Inf, NaN).
    fn is_invalid_number(&self) -> bool {
        let mut p = &self.s[self.pos..];
        if p.first() == Some(&b'+') {
            return true;
        }
        if p.first() == Some(&b'-') {
            p = &p[1..];
        }
        match p.first() {
            Some(b'0') => p.get(1).is_some_and(|&c| (c | 0x20) == b'x' || c.is_ascii_digit()),
            Some(&c) if c <= b'9' => false,
            None => false,
            Some(_) => p.len() >= 3 && (p[..3].eq_ignore_ascii_case(b"inf") || p[..3].eq_ignore_ascii_case(b"nan")),
        }
    }

    /// strtod over the longest numeric prefix (lua-cjson accepts hex, a leading '+', inf, nan).
    fn number(&mut self) -> Result<Token, String> {
        let index = self.pos;
        let rest = &self.s[self.pos..];
        let mut end = 0;
        if end < rest.len() && (rest[end] == b'-' || rest[end] == b'+') {
            end += 1;
        }
        let body = &rest[end..];
        let value = if body.len() >= 2 && body[0] == b'0' && (body[1] | 0x20) == b'x' {
            let hex: usize = body[2..].iter().take_while(|c| c.is_ascii_hexdigit()).count();
            if hex == 0 {
                None
            } else {
                let v = u64::from_str_radix(std::str::from_utf8(&body[2..2 + hex]).unwrap_or("0"), 16)
                    .map(|n| n as f64)
                    .unwrap_or(f64::INFINITY);
                end += 2 + hex;
                Some(v)
            }
        } else if body.len() >= 3 && (body[..3].eq_ignore_ascii_case(b"inf") || body[..3].eq_ignore_ascii_case(b"nan"))
        {
            let inf = body[..3].eq_ignore_ascii_case(b"inf");
            end += if inf && body.len() >= 8 && body[..8].eq_ignore_ascii_case(b"infinity") {
                8
            } else if !inf && body.get(3) == Some(&b'(') {
                // strtod's "nan(chars)", when the parenthesis closes.
                let chars = body[4..].iter().take_while(|c| c.is_ascii_alphanumeric() || **c == b'_').count();
                if body.get(4 + chars) == Some(&b')') {
                    5 + chars
                } else {
                    3
                }
            } else {
                3
            };
            Some(if inf { f64::INFINITY } else { f64::NAN })
        } else {
            let mut i = 0;
            let digits = |i: &mut usize| {
                let s = *i;
                while *i < body.len() && body[*i].is_ascii_digit() {
                    *i += 1;
                }
                *i - s
            };
            let int = digits(&mut i);
            let mut frac = 0;
            if i < body.len() && body[i] == b'.' {
                i += 1;
                frac = digits(&mut i);
            }
            if int + frac == 0 {
                None
            } else {
                if i < body.len() && (body[i] | 0x20) == b'e' {
                    let mut j = i + 1;
                    if j < body.len() && (body[j] == b'+' || body[j] == b'-') {
                        j += 1;
                    }
                    if digits(&mut j) > 0 {
                        i = j;
                    }
                }
                let text = std::str::from_utf8(&body[..i]).unwrap_or("0");
                end += i;
                Some(text.parse::<f64>().unwrap_or(0.0))
            }
        };
        match value {
            Some(mut v) => {
                if rest[0] == b'-' {
                    v = -v;
                }
                self.pos += end;
                Ok(Token { kind: Tok::Num(v), index })
            }
            None => Ok(Token { kind: Tok::Error("invalid number"), index }),
        }
    }

    fn string(&mut self) -> Result<Token, String> {
        let index = self.pos;
        self.pos += 1;
        let mut out = Vec::new();
        loop {
            let Some(&c) = self.s.get(self.pos) else {
                return Ok(Token { kind: Tok::Error("unexpected end of string"), index: self.pos });
            };
            match c {
                b'"' => {
                    self.pos += 1;
                    return Ok(Token { kind: Tok::Str(out), index });
                }
                b'\\' => {
                    let esc_at = self.pos;
                    let Some(&e) = self.s.get(self.pos + 1) else {
                        return Ok(Token { kind: Tok::Error("unexpected end of string"), index: self.pos + 1 });
                    };
                    let simple = match e {
                        b'"' => Some(b'"'),
                        b'\\' => Some(b'\\'),
                        b'/' => Some(b'/'),
                        b'b' => Some(8),
                        b'f' => Some(12),
                        b'n' => Some(b'\n'),
                        b'r' => Some(b'\r'),
                        b't' => Some(b'\t'),
                        _ => None,
                    };
                    if let Some(b) = simple {
                        out.push(b);
                        self.pos += 2;
                    } else if e == b'u' {
                        match self.unicode_escape() {
                            Some(ch) => {
                                let mut buf = [0u8; 4];
                                out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                            }
                            None => {
                                return Ok(Token { kind: Tok::Error("invalid unicode escape code"), index: esc_at })
                            }
                        }
                    } else {
                        return Ok(Token { kind: Tok::Error("invalid escape code"), index: esc_at });
                    }
                }
                c => {
                    out.push(c);
                    self.pos += 1;
                }
            }
        }
    }

    fn hex4(&self, at: usize) -> Option<u32> {
        let h = self.s.get(at..at + 4)?;
        u32::from_str_radix(std::str::from_utf8(h).ok()?, 16).ok()
    }

    /// `\uXXXX` (with a surrogate pair when needed); on success `pos` is past the escape.
    fn unicode_escape(&mut self) -> Option<char> {
        let hi = self.hex4(self.pos + 2)?;
        if (0xDC00..0xE000).contains(&hi) {
            return None;
        }
        if (0xD800..0xDC00).contains(&hi) {
            if self.s.get(self.pos + 6..self.pos + 8) != Some(b"\\u") {
                return None;
            }
            let lo = self.hex4(self.pos + 8)?;
            if !(0xDC00..0xE000).contains(&lo) {
                return None;
            }
            self.pos += 12;
            return char::from_u32(0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00));
        }
        self.pos += 6;
        char::from_u32(hi)
    }

    fn nest(&mut self, t: &Token) -> Result<(), String> {
        self.depth += 1;
        if self.depth > self.max_depth {
            return Err(format!("Found too many nested data structures ({}) at character {}", self.depth, t.index + 1));
        }
        Ok(())
    }

    fn value(&mut self, t: Token) -> Result<Value, String> {
        let lua_err = |e: mlua::Error| e.to_string();
        match t.kind {
            Tok::Str(s) => Ok(Value::String(self.lua.create_string(&s).map_err(lua_err)?)),
            Tok::Num(n) => Ok(Value::Number(n)),
            Tok::Bool(b) => Ok(Value::Boolean(b)),
            Tok::Null => Ok(Value::LightUserData(LightUserData(std::ptr::null_mut()))),
            Tok::ObjBegin => {
                self.nest(&t)?;
                let table = self.lua.create_table().map_err(lua_err)?;
                let mut k = self.next_token()?;
                if matches!(k.kind, Tok::ObjEnd) {
                    self.depth -= 1;
                    return Ok(Value::Table(table));
                }
                loop {
                    let Tok::Str(key) = &k.kind else {
                        return Err(self.unexpected("object key string", &k));
                    };
                    let key = self.lua.create_string(key).map_err(lua_err)?;
                    let colon = self.next_token()?;
                    if !matches!(colon.kind, Tok::Colon) {
                        return Err(self.unexpected("colon", &colon));
                    }
                    let vt = self.next_token()?;
                    let v = self.value(vt)?;
                    table.raw_set(key, v).map_err(lua_err)?;
                    let sep = self.next_token()?;
                    match sep.kind {
                        Tok::ObjEnd => break,
                        Tok::Comma => k = self.next_token()?,
                        _ => return Err(self.unexpected("comma or object end", &sep)),
                    }
                }
                self.depth -= 1;
                Ok(Value::Table(table))
            }
            Tok::ArrBegin => {
                self.nest(&t)?;
                let table = self.lua.create_table().map_err(lua_err)?;
                let mut vt = self.next_token()?;
                if matches!(vt.kind, Tok::ArrEnd) {
                    self.depth -= 1;
                    return Ok(Value::Table(table));
                }
                let mut i = 1;
                loop {
                    let v = self.value(vt)?;
                    table.raw_set(i, v).map_err(lua_err)?;
                    i += 1;
                    let sep = self.next_token()?;
                    match sep.kind {
                        Tok::ArrEnd => break,
                        Tok::Comma => vt = self.next_token()?,
                        _ => return Err(self.unexpected("comma or array end", &sep)),
                    }
                }
                self.depth -= 1;
                Ok(Value::Table(table))
            }
            _ => Err(self.unexpected("value", &t)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(lua: &Lua, src: &str) -> String {
        let v: Value = lua.load(src).eval().unwrap();
        let mut out = Vec::new();
        match encode_value(&v, &mut out, 0, &Settings::default(), usize::MAX) {
            Ok(()) => String::from_utf8_lossy(&out).into_owned(),
            Err(e) => e,
        }
    }

    #[test]
    fn encodes_like_redis() {
        let lua = Lua::new();
        assert_eq!(enc(&lua, "return {1,2,{a=0.1}}"), r#"[1,2,{"a":0.1}]"#);
        assert_eq!(enc(&lua, "return {}"), "{}");
        assert_eq!(enc(&lua, "return {[1]=1,[3]=3}"), "[1,null,3]");
        assert_eq!(enc(&lua, "return {[1]=1,[20]=3}"), "Cannot serialise table: excessively sparse array");
        assert_eq!(enc(&lua, "return 1e15"), "1e+15");
        assert_eq!(enc(&lua, "return 'a/b\"\\1\\127'"), r#""a\/b\"\u0001\u007f""#);
        assert_eq!(enc(&lua, "return 0/0"), "Cannot serialise number: must not be NaN or Inf");
        assert_eq!(enc(&lua, "return {[1.5]=1}"), r#"{"1.5":1}"#);
        let v: Value = lua.load("return {a={b=0/0}}").eval().unwrap();
        let mut cfg = Settings { encode_max_depth: 1, ..Settings::default() };
        assert!(encode_value(&v, &mut Vec::new(), 0, &cfg, usize::MAX).unwrap_err().contains("excessive nesting (2)"));
        // Past the room the Lua heap has for the result: Lua's memory error (an empty text).
        let big: Value = lua.load("local s = string.rep('x', 1000) return {s, s, s, s}").eval().unwrap();
        assert_eq!(encode_value(&big, &mut Vec::new(), 0, &cfg, 2500), Err(String::new()));
        assert!(encode_value(&big, &mut Vec::new(), 0, &cfg, 4100).is_ok());
        cfg.encode_max_depth = 5;
        cfg.encode_invalid_numbers = 2;
        let mut out = Vec::new();
        encode_value(&v, &mut out, 0, &cfg, usize::MAX).unwrap();
        assert_eq!(out, br#"{"a":{"b":null}}"#);
        // Sparse arrays written as objects, fewer digits.
        let cfg = Settings { sparse_convert: true, number_precision: 3, ..Settings::default() };
        let v: Value = lua.load("return {[1]=1/3,[20]=2}").eval().unwrap();
        let mut out = Vec::new();
        encode_value(&v, &mut out, 0, &cfg, usize::MAX).unwrap();
        assert!(
            out == br#"{"1":0.333,"20":2}"# || out == br#"{"20":2,"1":0.333}"#,
            "{}",
            String::from_utf8_lossy(&out)
        );
    }

    fn dec(lua: &Lua, s: &str) -> String {
        match decode(
            lua,
            MultiValue::from_vec(vec![Value::String(lua.create_string(s).unwrap())]),
            &Settings::default(),
        ) {
            Ok(mv) => match (&mv[0], &mv[1]) {
                (Value::Boolean(true), v) => {
                    let mut out = Vec::new();
                    encode_value(v, &mut out, 0, &Settings::default(), usize::MAX).unwrap();
                    String::from_utf8_lossy(&out).into_owned()
                }
                (_, Value::String(e)) => e.to_string_lossy(),
                _ => "?".into(),
            },
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn decodes_like_redis() {
        let lua = Lua::new();
        assert_eq!(dec(&lua, "[1,2,null]"), "[1,2,null]");
        assert_eq!(dec(&lua, "[1,]"), "Expected value but found T_ARR_END at character 4");
        assert_eq!(dec(&lua, "{\"a\":1} x"), "Expected the end but found invalid token at character 9");
        assert_eq!(dec(&lua, "  "), "Expected value but found T_END at character 3");
        assert_eq!(dec(&lua, "nul"), "Expected value but found invalid token at character 1");
        assert_eq!(dec(&lua, r#""\x""#), "Expected value but found invalid escape code at character 2");
        assert_eq!(dec(&lua, "[\"abc"), "Expected value but found unexpected end of string at character 6");
        assert_eq!(dec(&lua, "{1:2}"), "Expected object key string but found T_NUMBER at character 2");
        assert_eq!(dec(&lua, "[1 2]"), "Expected comma or array end but found T_NUMBER at character 4");
        assert_eq!(dec(&lua, "0x10"), "16");
        assert_eq!(dec(&lua, "+1"), "1");
        assert_eq!(dec(&lua, r#""\u00e9""#), "\"\u{e9}\"");
    }
}
