//! `bit`: LuaBitOp 1.0 semantics (32-bit operations on Lua numbers), as bundled with Redis.
//! Numbers are normalised like LuaBitOp does (the 2^52+2^51 trick: round to nearest, keep the
//! low 32 bits, signed result).

use mlua::{Lua, MultiValue, Table};

use super::{add, arg_num, bad_arg, ok, type_name, LResult};

pub fn table(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    add(lua, &t, "tobit", |l, a| unary(l, a, "tobit", |x| x))?;
    add(lua, &t, "bnot", |l, a| unary(l, a, "bnot", |x| !x))?;
    add(lua, &t, "bswap", |l, a| unary(l, a, "bswap", |x| x.swap_bytes()))?;
    add(lua, &t, "band", |l, a| fold(l, a, "band", |x, y| x & y))?;
    add(lua, &t, "bor", |l, a| fold(l, a, "bor", |x, y| x | y))?;
    add(lua, &t, "bxor", |l, a| fold(l, a, "bxor", |x, y| x ^ y))?;
    add(lua, &t, "lshift", |l, a| shift(l, a, "lshift", |x, n| x << n))?;
    add(lua, &t, "rshift", |l, a| shift(l, a, "rshift", |x, n| x >> n))?;
    add(lua, &t, "arshift", |l, a| shift(l, a, "arshift", |x, n| ((x as i32) >> n) as u32))?;
    add(lua, &t, "rol", |l, a| shift(l, a, "rol", |x, n| x.rotate_left(n)))?;
    add(lua, &t, "ror", |l, a| shift(l, a, "ror", |x, n| x.rotate_right(n)))?;
    add(lua, &t, "tohex", tohex)?;
    Ok(t)
}

/// LuaBitOp's barg: a number normalised to 32 bits.
pub fn tobit(n: f64) -> u32 {
    let b = n + 6755399441055744.0;
    b.to_bits() as u32
}

fn arg(args: &MultiValue, i: usize, fname: &str) -> Result<u32, String> {
    match args.get(i).and_then(arg_num) {
        Some(n) => Ok(tobit(n)),
        None => {
            Err(format!("bad argument #{} to '{}' (number expected, got {})", i + 1, fname, type_name(args.get(i))))
        }
    }
}

fn num(lua: &Lua, x: u32) -> LResult {
    ok(lua, x as i32 as f64)
}

fn unary(lua: &Lua, args: MultiValue, fname: &str, f: fn(u32) -> u32) -> LResult {
    match arg(&args, 0, fname) {
        Ok(x) => num(lua, f(x)),
        Err(e) => super::fail(lua, e),
    }
}

fn fold(lua: &Lua, args: MultiValue, fname: &str, f: fn(u32, u32) -> u32) -> LResult {
    let mut acc = match arg(&args, 0, fname) {
        Ok(x) => x,
        Err(e) => return super::fail(lua, e),
    };
    for i in 1..args.len() {
        match arg(&args, i, fname) {
            Ok(x) => acc = f(acc, x),
            Err(e) => return super::fail(lua, e),
        }
    }
    num(lua, acc)
}

fn shift(lua: &Lua, args: MultiValue, fname: &str, f: fn(u32, u32) -> u32) -> LResult {
    let x = match arg(&args, 0, fname) {
        Ok(x) => x,
        Err(e) => return super::fail(lua, e),
    };
    let n = match arg(&args, 1, fname) {
        Ok(n) => n & 31,
        Err(e) => return super::fail(lua, e),
    };
    num(lua, f(x, n))
}

fn tohex(lua: &Lua, args: MultiValue) -> LResult {
    let x = match arg(&args, 0, "tohex") {
        Ok(x) => x,
        Err(e) => return super::fail(lua, e),
    };
    let mut n: i32 = 8;
    if args.len() > 1 && !matches!(args.get(1), Some(mlua::Value::Nil)) {
        match arg(&args, 1, "tohex") {
            Ok(v) => n = v as i32,
            Err(_) => return bad_arg(lua, 2, "tohex", format!("number expected, got {}", type_name(args.get(1)))),
        }
    }
    let digits: &[u8] = if n < 0 { b"0123456789ABCDEF" } else { b"0123456789abcdef" };
    let mut len = n.unsigned_abs().min(8) as usize;
    if n == i32::MIN {
        len = 8;
    }
    let mut out = vec![0u8; len];
    let mut v = x;
    for i in (0..len).rev() {
        out[i] = digits[(v & 15) as usize];
        v >>= 4;
    }
    ok(lua, lua.create_string(&out)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalisation() {
        assert_eq!(tobit(1.0) as i32, 1);
        assert_eq!(tobit(4294967295.0) as i32, -1);
        assert_eq!(tobit(2147483648.0) as i32, i32::MIN);
        assert_eq!(tobit(-1.0) as i32, -1);
        assert_eq!(tobit(1.5) as i32, 2);
        assert_eq!(tobit(2.5) as i32, 2);
    }
}
