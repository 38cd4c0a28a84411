//! `cmsgpack`: lua-cmsgpack 0.4.0 as bundled with Redis, in Rust. Integral numbers use the
//! smallest integer encoding, other numbers float32 when exact, else float64; a table whose
//! keys are exactly 1..n is an array, any other table a map; nesting deeper than 16 and
//! unsupported types encode as nil.

use mlua::{Lua, MultiValue, Table, Value};

use super::{add, bad_arg, fail, ok, type_name, Failure, LResult};

const MAX_NESTING: usize = 16;

pub fn table(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    add(lua, &t, "pack", pack)?;
    add(lua, &t, "unpack", |l, a| unpack_impl(l, a, "unpack", Mode::All))?;
    add(lua, &t, "unpack_one", |l, a| unpack_impl(l, a, "unpack_one", Mode::Limit(1)))?;
    add(lua, &t, "unpack_limit", |l, a| unpack_impl(l, a, "unpack_limit", Mode::Limit(0)))?;
    t.raw_set("_NAME", "cmsgpack")?;
    t.raw_set("_VERSION", "lua-cmsgpack 0.4.0")?;
    Ok(t)
}

fn pack(lua: &Lua, args: MultiValue) -> LResult {
    if args.is_empty() {
        return bad_arg(lua, 0, "pack", "MessagePack pack needs input.");
    }
    let mut out = Vec::new();
    let room = super::heap_room(lua);
    for a in args.iter() {
        if encode(a, &mut out, 0, room).is_err() {
            return super::out_of_memory(lua);
        }
    }
    ok(lua, lua.create_string(&out)?)
}

/// The output went past the room the Lua heap has for it (`libs::heap_room`).
struct Full;

fn encode(v: &Value, out: &mut Vec<u8>, level: usize, room: usize) -> Result<(), Full> {
    match v {
        Value::Boolean(b) => out.push(if *b { 0xc3 } else { 0xc2 }),
        Value::Integer(i) => encode_int(*i, out),
        Value::Number(n) => encode_number(*n, out),
        Value::String(s) => {
            encode_bytes(&s.as_bytes(), out);
            if out.len() > room {
                return Err(Full);
            }
        }
        Value::Table(t) if level < MAX_NESTING => encode_table(t, out, level + 1, room)?,
        _ => out.push(0xc0),
    }
    Ok(())
}

fn encode_number(n: f64, out: &mut Vec<u8>) {
    if n.is_finite() && n == n.trunc() && n >= i64::MIN as f64 && n < 9.223_372_036_854_776e18 {
        encode_int(n as i64, out);
    } else if (n as f32) as f64 == n || n.is_nan() {
        out.push(0xca);
        out.extend_from_slice(&(n as f32).to_be_bytes());
    } else {
        out.push(0xcb);
        out.extend_from_slice(&n.to_be_bytes());
    }
}

fn encode_int(i: i64, out: &mut Vec<u8>) {
    if i >= 0 {
        let u = i as u64;
        if u < 128 {
            out.push(u as u8);
        } else if u <= 0xff {
            out.extend_from_slice(&[0xcc, u as u8]);
        } else if u <= 0xffff {
            out.push(0xcd);
            out.extend_from_slice(&(u as u16).to_be_bytes());
        } else if u <= 0xffff_ffff {
            out.push(0xce);
            out.extend_from_slice(&(u as u32).to_be_bytes());
        } else {
            out.push(0xcf);
            out.extend_from_slice(&u.to_be_bytes());
        }
    } else if i >= -32 {
        out.push(i as i8 as u8);
    } else if i >= -128 {
        out.extend_from_slice(&[0xd0, i as i8 as u8]);
    } else if i >= -32768 {
        out.push(0xd1);
        out.extend_from_slice(&(i as i16).to_be_bytes());
    } else if i >= i32::MIN as i64 {
        out.push(0xd2);
        out.extend_from_slice(&(i as i32).to_be_bytes());
    } else {
        out.push(0xd3);
        out.extend_from_slice(&i.to_be_bytes());
    }
}

fn encode_bytes(s: &[u8], out: &mut Vec<u8>) {
    let n = s.len();
    if n < 32 {
        out.push(0xa0 | n as u8);
    } else if n <= 0xff {
        out.extend_from_slice(&[0xd9, n as u8]);
    } else if n <= 0xffff {
        out.push(0xda);
        out.extend_from_slice(&(n as u16).to_be_bytes());
    } else {
        out.push(0xdb);
        out.extend_from_slice(&(n as u32).to_be_bytes());
    }
    out.extend_from_slice(s);
}

fn header(out: &mut Vec<u8>, n: usize, fix: u8, b16: u8, b32: u8) {
    if n < 16 {
        out.push(fix | n as u8);
    } else if n <= 0xffff {
        out.push(b16);
        out.extend_from_slice(&(n as u16).to_be_bytes());
    } else {
        out.push(b32);
        out.extend_from_slice(&(n as u32).to_be_bytes());
    }
}

fn encode_table(t: &Table, out: &mut Vec<u8>, level: usize, room: usize) -> Result<(), Full> {
    let pairs: Vec<(Value, Value)> = t.clone().pairs::<Value, Value>().filter_map(Result::ok).collect();
    let (mut max, mut count, mut array) = (0f64, 0usize, true);
    for (k, _) in &pairs {
        let n = match k {
            Value::Integer(i) => *i as f64,
            Value::Number(n) => *n,
            _ => {
                array = false;
                break;
            }
        };
        if n <= 0.0 || n.floor() != n {
            array = false;
            break;
        }
        max = max.max(n);
        count += 1;
    }
    if array && max as usize == count {
        header(out, count, 0x90, 0xdc, 0xdd);
        for i in 1..=count {
            let v: Value = t.raw_get(i).unwrap_or(Value::Nil);
            encode(&v, out, level, room)?;
        }
    } else {
        header(out, pairs.len(), 0x80, 0xde, 0xdf);
        for (k, v) in &pairs {
            encode(k, out, level, room)?;
            encode(v, out, level, room)?;
        }
    }
    Ok(())
}

#[derive(Clone, Copy)]
enum Mode {
    All,
    /// At most this many objects (0: read the limit from the arguments).
    Limit(usize),
}

fn unpack_impl(lua: &Lua, args: MultiValue, fname: &str, mode: Mode) -> LResult {
    let s = match args.front() {
        Some(Value::String(s)) => s.as_bytes().to_vec(),
        Some(v @ (Value::Integer(_) | Value::Number(_))) => super::arg_str(v).unwrap_or_default(),
        other => return bad_arg(lua, 1, fname, format!("string expected, got {}", type_name(other))),
    };
    // luaL_checkinteger / luaL_optinteger: a number (or numeric string), truncated.
    let int_arg = |i: usize, optional: bool| -> Result<i64, LResult> {
        match args.get(i) {
            None | Some(Value::Nil) if optional => Ok(0),
            Some(v) => super::arg_num(v)
                .map(|n| n as i64)
                .ok_or_else(|| bad_arg(lua, i + 1, fname, format!("number expected, got {}", type_name(Some(v))))),
            None => Err(bad_arg(lua, i + 1, fname, "number expected, got no value")),
        }
    };
    let parsed = match mode {
        Mode::All => Ok((0, 0)),
        Mode::Limit(1) => int_arg(1, true).map(|offset| (1, offset)),
        Mode::Limit(_) => int_arg(1, false).and_then(|limit| int_arg(2, true).map(|offset| (limit, offset))),
    };
    let (limit, offset) = match parsed {
        Ok(p) => p,
        Err(failure) => return failure,
    };
    // lua_cmsgpack's mp_unpack_full, its texts included (the "limit" it prints is the length).
    let len = s.len() as i64;
    if offset < 0 || limit < 0 {
        return fail(
            lua,
            format!("Invalid request to unpack with offset of {} and limit of {}.", offset as i32, len as i32),
        );
    }
    if offset > len {
        return fail(lua, format!("Start offset {} greater than input length {}.", offset as i32, len as i32));
    }
    let decode_all = limit == 0 && offset == 0;
    // The C stack starts with the arguments (unpack_one and unpack_limit drop all but one).
    let args_kept = if matches!(mode, Mode::All) { args.len() } else { 1 };
    let mut d = Decoder { s: &s, pos: offset as usize, lua, top: args_kept };
    let mut values = Vec::new();
    while d.pos < s.len() && (decode_all || (values.len() as i64) < limit) {
        match d.value() {
            Ok(v) => values.push(v),
            Err(e) => return e.raise(lua, fname),
        }
    }
    if !decode_all {
        if let Err(e) = d.check_stack("in function mp_unpack_full") {
            return e.raise(lua, fname);
        }
        let next = if d.pos >= s.len() { -1 } else { d.pos as i64 };
        values.insert(0, Value::Integer(next));
    }
    super::ok_spread(lua, values)
}

/// Lua 5.1's LUAI_MAXCSTACK: the values a C function may have on its stack.
const MAX_C_STACK: usize = 8000;

/// lua_cmsgpack's decoder. `top` follows what the C decoder keeps on its Lua stack (each open
/// table, and the index or key being filled), so that nesting and result counts fail where
/// Redis's do: its checks, its texts, and no deeper recursion than its stack allows.
struct Decoder<'a> {
    s: &'a [u8],
    pos: usize,
    lua: &'a Lua,
    top: usize,
}

const MISSING: &[u8] = b"Missing bytes in input.";

impl Decoder<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], Failure> {
        if self.pos + n > self.s.len() {
            return Err(Failure::Error(MISSING.to_vec()));
        }
        let b = &self.s[self.pos..self.pos + n];
        self.pos += n;
        Ok(b)
    }

    fn uint(&mut self, n: usize) -> Result<u64, Failure> {
        Ok(self.take(n)?.iter().fold(0u64, |acc, &b| (acc << 8) | b as u64))
    }

    /// luaL_checkstack(L, 1, what).
    fn check_stack(&self, what: &str) -> Result<(), Failure> {
        if self.top + 1 > MAX_C_STACK {
            return Err(Failure::Error(format!("stack overflow ({what})").into_bytes()));
        }
        Ok(())
    }

    /// One value (counted on the stack: the caller pops it).
    fn value(&mut self) -> Result<Value, Failure> {
        if self.pos >= self.s.len() {
            return Err(Failure::Error(MISSING.to_vec()));
        }
        self.check_stack("too many return values at once; use unpack_one or unpack_limit instead.")?;
        let c = self.take(1)?[0];
        let v = match c {
            0x00..=0x7f => Value::Integer(c as i64),
            0x80..=0x8f => self.map((c & 0x0f) as usize)?,
            0x90..=0x9f => self.array((c & 0x0f) as usize)?,
            0xa0..=0xbf => self.string((c & 0x1f) as usize)?,
            0xc0 => Value::Nil,
            0xc2 => Value::Boolean(false),
            0xc3 => Value::Boolean(true),
            0xd9 => {
                let n = self.uint(1)? as usize;
                self.string(n)?
            }
            0xda => {
                let n = self.uint(2)? as usize;
                self.string(n)?
            }
            0xdb => {
                let n = self.uint(4)? as usize;
                self.string(n)?
            }
            0xca => Value::Number(f32::from_be_bytes(self.take(4)?.try_into().unwrap_or([0; 4])) as f64),
            0xcb => Value::Number(f64::from_be_bytes(self.take(8)?.try_into().unwrap_or([0; 8]))),
            0xcc => Value::Integer(self.uint(1)? as i64),
            0xcd => Value::Integer(self.uint(2)? as i64),
            0xce => Value::Integer(self.uint(4)? as i64),
            // lua_pushinteger of the unsigned value: past 2^63 it reads as negative.
            0xcf => Value::Number(self.uint(8)? as i64 as f64),
            0xd0 => Value::Integer(self.uint(1)? as u8 as i8 as i64),
            0xd1 => Value::Integer(self.uint(2)? as u16 as i16 as i64),
            0xd2 => Value::Integer(self.uint(4)? as u32 as i32 as i64),
            0xd3 => Value::Number(self.uint(8)? as i64 as f64),
            0xdc => {
                let n = self.uint(2)? as usize;
                self.array(n)?
            }
            0xdd => {
                let n = self.uint(4)? as usize;
                self.array(n)?
            }
            0xde => {
                let n = self.uint(2)? as usize;
                self.map(n)?
            }
            0xdf => {
                let n = self.uint(4)? as usize;
                self.map(n)?
            }
            0xe0..=0xff => Value::Integer(c as i8 as i64),
            // bin, ext and the reserved byte: lua-cmsgpack 0.4.0 predates them.
            _ => return Err(Failure::Error(b"Bad data format in input.".to_vec())),
        };
        self.top += 1;
        Ok(v)
    }

    fn string(&mut self, n: usize) -> Result<Value, Failure> {
        let b = self.take(n)?.to_vec();
        Ok(Value::String(self.lua.create_string(&b)?))
    }

    fn array(&mut self, n: usize) -> Result<Value, Failure> {
        let t = self.lua.create_table()?;
        self.top += 1;
        self.check_stack("in function mp_decode_to_lua_array")?;
        for i in 1..=n {
            self.top += 1; // the index
            let v = self.value()?;
            t.raw_set(i, v)?;
            self.top -= 2;
        }
        self.top -= 1;
        Ok(Value::Table(t))
    }

    fn map(&mut self, n: usize) -> Result<Value, Failure> {
        let t = self.lua.create_table()?;
        self.top += 1;
        for _ in 0..n {
            let k = self.value()?;
            let v = self.value()?;
            match k {
                Value::Nil => return Err(Failure::Core(b"table index is nil".to_vec())),
                Value::Number(n) if n.is_nan() => return Err(Failure::Core(b"table index is NaN".to_vec())),
                k => t.raw_set(k, v)?,
            }
            self.top -= 2;
        }
        self.top -= 1;
        Ok(Value::Table(t))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packs_like_redis() {
        let lua = Lua::new();
        let v: Value = lua.load("return {1,2}").eval().unwrap();
        let mut out = Vec::new();
        assert!(encode(&v, &mut out, 0, usize::MAX).is_ok());
        assert_eq!(out, b"\x92\x01\x02");
        let mut out = Vec::new();
        assert!(encode(&Value::Number(-1.0), &mut out, 0, usize::MAX).is_ok());
        assert!(encode(&Value::Number(300.0), &mut out, 0, usize::MAX).is_ok());
        assert!(encode(&Value::Number(0.5), &mut out, 0, usize::MAX).is_ok());
        assert_eq!(out, b"\xff\xcd\x01\x2c\xca\x3f\x00\x00\x00");
        // Past the room the Lua heap has for the result.
        let big: Value = lua.load("local s = string.rep('x', 1000) return {s, s, s, s}").eval().unwrap();
        assert!(encode(&big, &mut Vec::new(), 0, 2500).is_err());
        assert!(encode(&big, &mut Vec::new(), 0, 4100).is_ok());
    }
}
