//! The libraries Redis bundles with its Lua (cjson, cmsgpack, bit, struct), written in Rust
//! because mlua ships none of them and no crate reproduces Redis's behaviour. Each function
//! follows the prelude's convention: it never raises, it returns `true, results...` or
//! `false, error` and the prelude's wrapper raises the error at the caller's level (so a
//! message gets the `user_script:N:` position luaL_error gives it in Redis). `unpack` replaces
//! Lua 5.1's own, which a wide range crashed, and `patterns` bounds the string library's
//! pattern matcher, which a deep pattern crashed.

pub mod bit;
pub mod cjson;
pub mod cmsgpack;
pub mod patterns;
pub mod structlib;
pub mod unpack;

use mlua::{IntoLuaMulti, Lua, MultiValue, Table, Value};

pub type LResult = mlua::Result<MultiValue>;

/// Success: `true` followed by the results.
pub fn ok(lua: &Lua, v: impl IntoLuaMulti) -> LResult {
    let mut mv = v.into_lua_multi(lua)?;
    mv.push_front(Value::Boolean(true));
    Ok(mv)
}

/// A luaL_error-style failure (a string, positioned at the caller).
pub fn fail(lua: &Lua, msg: impl AsRef<[u8]>) -> LResult {
    Ok(MultiValue::from_vec(vec![Value::Boolean(false), Value::String(lua.create_string(msg)?)]))
}

/// Many results (an unpack's): handed to the trampoline in a table, which it spreads onto the
/// stack (a Rust callback returns its values through mlua's stack with less room than Redis's
/// C functions have; the libraries enforce Redis's own limits before getting here).
pub fn ok_spread(lua: &Lua, values: Vec<Value>) -> LResult {
    if values.len() < 256 {
        return ok(lua, MultiValue::from_vec(values));
    }
    let n = values.len();
    let t = lua.create_sequence_from(values)?;
    Ok(MultiValue::from_vec(vec![
        Value::LightUserData(mlua::LightUserData(std::ptr::null_mut())),
        Value::Table(t),
        Value::Integer(n as i64),
    ]))
}

/// A failure raised without the caller's position, as an error the Lua core raises inside a C
/// function is ("table index is nil").
fn fail_unpositioned(lua: &Lua, msg: impl AsRef<[u8]>) -> LResult {
    Ok(MultiValue::from_vec(vec![Value::Boolean(false), Value::String(lua.create_string(msg)?), Value::Boolean(true)]))
}

/// How much a library may build outside the Lua heap for a result that becomes a Lua string
/// (so must fit under the heap's limit too). An encoder past it fails with Lua's own memory
/// error ([`out_of_memory`]): `cjson.encode` of a table holding one 100 MB string a million
/// times would otherwise grow its buffer until the process dies, as Redis's does.
pub fn heap_room(lua: &Lua) -> usize {
    super::engine::memory_limit().saturating_sub(lua.used_memory())
}

/// Lua's error when its heap is full.
pub fn out_of_memory(lua: &Lua) -> LResult {
    fail_unpositioned(lua, "not enough memory")
}

/// A failure raised as Redis's error table (`luaPushError` + `luaError`: no position).
pub fn fail_table(lua: &Lua, msg: &str) -> LResult {
    let t = super::engine::error_table(lua, msg.as_bytes())?;
    Ok(MultiValue::from_vec(vec![Value::Boolean(false), Value::Table(t)]))
}

/// luaL_argerror's text: "bad argument #N to 'fname' (msg)", the message's bytes as they are.
pub fn bad_arg(lua: &Lua, n: usize, fname: &str, msg: impl AsRef<[u8]>) -> LResult {
    let mut text = format!("bad argument #{n} to '{fname}' (").into_bytes();
    text.extend_from_slice(msg.as_ref());
    text.push(b')');
    fail(lua, text)
}

/// Why a library function written in Rust failed, raised as Lua would raise it from the C
/// function Redis has: luaL_error (the caller's position first), luaL_argerror, or an error
/// the Lua core raises inside the C function (no position: "table index is nil").
pub enum Failure {
    Error(Vec<u8>),
    Arg(usize, Vec<u8>),
    Core(Vec<u8>),
}

impl Failure {
    pub fn raise(self, lua: &Lua, fname: &str) -> LResult {
        match self {
            Failure::Error(msg) => fail(lua, msg),
            Failure::Arg(n, msg) => bad_arg(lua, n, fname, msg),
            Failure::Core(msg) => fail_unpositioned(lua, msg),
        }
    }
}

impl From<mlua::Error> for Failure {
    fn from(e: mlua::Error) -> Self {
        Failure::Error(e.to_string().into_bytes())
    }
}

/// Lua's type name of a value, as luaL_typename ("no value" for a missing argument).
pub fn type_name(v: Option<&Value>) -> &'static str {
    match v {
        None => "no value",
        Some(Value::Nil) => "nil",
        Some(Value::Boolean(_)) => "boolean",
        Some(Value::Integer(_)) | Some(Value::Number(_)) => "number",
        Some(Value::String(_)) => "string",
        Some(Value::Table(_)) => "table",
        Some(Value::Function(_)) => "function",
        Some(Value::Thread(_)) => "thread",
        Some(Value::LightUserData(_)) | Some(Value::UserData(_)) => "userdata",
        Some(_) => "userdata",
    }
}

/// A number argument the way lua_tonumber sees it (numbers, and strings that convert).
pub fn arg_num(v: &Value) -> Option<f64> {
    match v {
        Value::Integer(i) => Some(*i as f64),
        Value::Number(n) => Some(*n),
        Value::String(s) => {
            let b = s.as_bytes();
            let t = std::str::from_utf8(&b).ok()?.trim();
            if let Some(h) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
                return u64::from_str_radix(h, 16).ok().map(|n| n as f64);
            }
            t.parse::<f64>().ok()
        }
        _ => None,
    }
}

/// A string argument the way lua_tolstring sees it (strings, and numbers as "%.14g").
pub fn arg_str(v: &Value) -> Option<Vec<u8>> {
    match v {
        Value::String(s) => Some(s.as_bytes().to_vec()),
        Value::Integer(i) => Some(i.to_string().into_bytes()),
        Value::Number(n) => Some(fmt_g14(*n).into_bytes()),
        _ => None,
    }
}

/// C's `%.14g` (Lua 5.1's number-to-string format).
pub fn fmt_g14(n: f64) -> String {
    fmt_g(n, 14)
}

/// C's `%.<prec>g`.
pub fn fmt_g(n: f64, prec: usize) -> String {
    if n.is_nan() {
        return if n.is_sign_negative() { "-nan".into() } else { "nan".into() };
    }
    if n.is_infinite() {
        return if n < 0.0 { "-inf".into() } else { "inf".into() };
    }
    if n == 0.0 {
        return if n.is_sign_negative() { "-0".into() } else { "0".into() };
    }
    let p = prec.max(1);
    let e = format!("{:.*e}", p - 1, n);
    let (mant, exp) = e.split_once('e').unwrap_or((&e, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if exp < -4 || exp >= p as i32 {
        let mant = trim_zeros(mant);
        format!("{}e{}{:02}", mant, if exp < 0 { '-' } else { '+' }, exp.abs())
    } else {
        let decimals = (p as i32 - 1 - exp).max(0) as usize;
        trim_zeros(&format!("{:.*}", decimals, n)).to_string()
    }
}

fn trim_zeros(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}

/// Register a Rust function under `name` in `t`.
pub fn add(
    lua: &Lua,
    t: &Table,
    name: &str,
    f: impl Fn(&Lua, MultiValue) -> LResult + Send + 'static,
) -> mlua::Result<()> {
    t.raw_set(name, lua.create_function(f)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn g_formats_like_c() {
        assert_eq!(fmt_g14(1.0), "1");
        assert_eq!(fmt_g14(0.1), "0.1");
        assert_eq!(fmt_g14(1e100), "1e+100");
        assert_eq!(fmt_g14(123456789012345.0), "1.2345678901234e+14");
        assert_eq!(fmt_g14(-2.5e-7), "-2.5e-07");
        assert_eq!(fmt_g(0.1, 17), "0.10000000000000001");
        assert_eq!(fmt_g14(3.0e15), "3e+15");
    }
}
