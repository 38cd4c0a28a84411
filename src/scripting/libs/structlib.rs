//! `struct`: Roberto Ierusalimschy's struct library (as bundled with Redis) in Rust:
//! `struct.pack(fmt, ...)`, `struct.unpack(fmt, data [, pos])`, `struct.size(fmt)` with the
//! options `> < !n x b B h H l L T i[n] I[n] f d s c[n]` and a space, byte for byte what
//! Redis's C library gives: integers up to 32 bytes (bytes past the eighth are zeros, as its
//! 64-bit arithmetic leaves them), its alignment arithmetic, its error texts, and a format
//! that ends at its first NUL (a C string).

use mlua::{Lua, MultiValue, Table, Value};

use super::{add, arg_num, arg_str, ok, Failure, LResult};

pub fn table(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    add(lua, &t, "pack", pack)?;
    add(lua, &t, "unpack", unpack)?;
    add(lua, &t, "size", size)?;
    Ok(t)
}

/// The largest integer size (`i32`, say).
const MAX_INT_SIZE: usize = 32;
/// `!` without a number: the platform's strictest alignment.
const MAX_ALIGN: usize = 8;
/// Lua 5.1's LUAI_MAXCSTACK: the values a C function may have on its stack (unpack's results).
const MAX_C_STACK: usize = 8000;

/// A format being read, with its endianness and alignment options.
struct Format {
    f: Vec<u8>,
    i: usize,
    little: bool,
    align: usize,
}

impl Format {
    fn new(mut f: Vec<u8>) -> Self {
        if let Some(nul) = f.iter().position(|&c| c == 0) {
            f.truncate(nul);
        }
        Format { f, i: 0, little: true, align: 1 }
    }

    /// The next option and its size (0 for options without one).
    fn next(&mut self) -> Option<Result<(u8, usize), Failure>> {
        let opt = *self.f.get(self.i)?;
        self.i += 1;
        let size = match opt {
            b'b' | b'B' | b'x' => 1,
            b'h' | b'H' => 2,
            b'l' | b'L' | b'T' | b'd' => 8,
            b'f' => 4,
            b'c' => match self.number(1) {
                Ok(n) => n,
                Err(e) => return Some(Err(e)),
            },
            b'i' | b'I' => match self.number(4) {
                Ok(n) if n > MAX_INT_SIZE => {
                    let msg = format!("integral size {n} is larger than limit of {MAX_INT_SIZE}");
                    return Some(Err(Failure::Error(msg.into_bytes())));
                }
                Ok(n) => n,
                Err(e) => return Some(Err(e)),
            },
            _ => 0,
        };
        Some(Ok((opt, size)))
    }

    /// The digits at the cursor, or `default` when there are none.
    fn number(&mut self, default: usize) -> Result<usize, Failure> {
        if !self.f.get(self.i).is_some_and(u8::is_ascii_digit) {
            return Ok(default);
        }
        let mut n: i32 = 0;
        while let Some(d) = self.f.get(self.i).filter(|c| c.is_ascii_digit()) {
            n = n
                .checked_mul(10)
                .and_then(|n| n.checked_add((d - b'0') as i32))
                .ok_or_else(|| Failure::Error(b"integral size overflow".to_vec()))?;
            self.i += 1;
        }
        Ok(n as usize)
    }

    /// Padding before an option of `size` bytes at offset `len` (Redis's arithmetic, which a
    /// size that is not a power of two makes odd).
    fn padding(&self, opt: u8, size: usize, len: usize) -> usize {
        if size == 0 || opt == b'c' {
            return 0;
        }
        let a = size.min(self.align);
        (a - (len & (a - 1))) & (a - 1)
    }

    /// The options that are not data: a space, `>`, `<` and `!n`.
    fn control(&mut self, opt: u8) -> Result<(), Failure> {
        match opt {
            b' ' => {}
            b'>' => self.little = false,
            b'<' => self.little = true,
            b'!' => {
                let a = self.number(MAX_ALIGN)?;
                if !a.is_power_of_two() {
                    return Err(Failure::Error(format!("alignment {a} is not a power of 2").into_bytes()));
                }
                self.align = a;
            }
            _ => {
                let mut msg = b"invalid format option '".to_vec();
                msg.extend_from_slice(&[opt, b'\'']);
                return Err(Failure::Arg(1, msg));
            }
        }
        Ok(())
    }
}

/// 2^63.
const TWO_63: f64 = (1u64 << 63) as f64;

/// C's conversion of a double to a signed 64-bit integer on x86-64 (out of range: the
/// "integer indefinite" value).
fn c_to_i64(n: f64) -> i64 {
    if (-TWO_63..TWO_63).contains(&n) {
        n as i64
    } else {
        i64::MIN
    }
}

/// C's conversion of a double to an unsigned 64-bit integer, as gcc compiles it for x86-64
/// (NaN takes the signed conversion).
fn c_to_u64(n: f64) -> u64 {
    if n.is_nan() || n < TWO_63 {
        c_to_i64(n) as u64
    } else {
        c_to_i64(n - TWO_63) as u64 ^ (1 << 63)
    }
}

/// The bytes of an integer of `size` bytes (past eight, zeros).
fn put_integer(out: &mut Vec<u8>, n: f64, size: usize, little: bool) {
    let mut value = if n < 0.0 { c_to_i64(n) as u64 } else { c_to_u64(n) };
    let start = out.len();
    out.resize(start + size, 0);
    for k in 0..size {
        let at = if little { start + k } else { start + size - 1 - k };
        out[at] = value as u8;
        value = value.checked_shr(8).unwrap_or(0);
    }
}

/// An integer of `size` bytes (only the last eight read count, as in Redis's 64-bit
/// arithmetic, whose sign mask shifts by the count modulo 64 as x86 does).
fn get_integer(b: &[u8], little: bool, signed: bool) -> f64 {
    let size = b.len();
    let mut l: u64 = 0;
    for k in 0..size {
        let byte = if little { b[size - 1 - k] } else { b[k] };
        l = (l << 8) | byte as u64;
    }
    if !signed {
        return l as f64;
    }
    let mask = u64::MAX << ((size * 8).wrapping_sub(1) & 63);
    if l & mask != 0 {
        l |= mask;
    }
    l as i64 as f64
}

/// Argument `n` (1-based) as a number, or luaL_checknumber's error.
fn number_arg(args: &MultiValue, n: usize) -> Result<f64, Failure> {
    args.get(n - 1).and_then(arg_num).ok_or_else(|| {
        Failure::Arg(n, format!("number expected, got {}", super::type_name(args.get(n - 1))).into_bytes())
    })
}

/// Argument `n` (1-based) as a string, or luaL_checklstring's error.
fn string_arg(args: &MultiValue, n: usize) -> Result<Vec<u8>, Failure> {
    args.get(n - 1).and_then(arg_str).ok_or_else(|| {
        Failure::Arg(n, format!("string expected, got {}", super::type_name(args.get(n - 1))).into_bytes())
    })
}

fn pack(lua: &Lua, args: MultiValue) -> LResult {
    match packed(&args) {
        Ok(out) => ok(lua, lua.create_string(&out)?),
        Err(e) => e.raise(lua, "pack"),
    }
}

fn packed(args: &MultiValue) -> Result<Vec<u8>, Failure> {
    let mut fmt = Format::new(string_arg(args, 1)?);
    let mut out = Vec::new();
    let mut arg = 2;
    while let Some(next) = fmt.next() {
        let (opt, mut size) = next?;
        let pad = fmt.padding(opt, size, out.len());
        out.resize(out.len() + pad, 0);
        match opt {
            b'b' | b'B' | b'h' | b'H' | b'l' | b'L' | b'T' | b'i' | b'I' => {
                let n = number_arg(args, arg)?;
                arg += 1;
                put_integer(&mut out, n, size, fmt.little);
            }
            b'x' => out.push(0),
            b'f' | b'd' => {
                let n = number_arg(args, arg)?;
                arg += 1;
                let start = out.len();
                if opt == b'f' {
                    out.extend_from_slice(&(n as f32).to_le_bytes());
                } else {
                    out.extend_from_slice(&n.to_le_bytes());
                }
                if !fmt.little {
                    out[start..].reverse();
                }
            }
            b'c' | b's' => {
                let s = string_arg(args, arg)?;
                arg += 1;
                if size == 0 {
                    size = s.len();
                }
                if s.len() < size {
                    // Redis names the argument after this one.
                    return Err(Failure::Arg(arg, b"string too short".to_vec()));
                }
                out.extend_from_slice(&s[..size]);
                if opt == b's' {
                    out.push(0);
                }
            }
            other => fmt.control(other)?,
        }
    }
    Ok(out)
}

fn unpack(lua: &Lua, args: MultiValue) -> LResult {
    match unpacked(lua, &args) {
        Ok(values) => super::ok_spread(lua, values),
        Err(e) => e.raise(lua, "unpack"),
    }
}

fn unpacked(lua: &Lua, args: &MultiValue) -> Result<Vec<Value>, Failure> {
    let mut fmt = Format::new(string_arg(args, 1)?);
    let data = string_arg(args, 2)?;
    let ld = data.len();
    // luaL_optinteger, stored in a size_t: a negative offset wraps to a huge one.
    let init = match args.get(2) {
        None | Some(Value::Nil) => 1,
        Some(_) => c_to_i64(number_arg(args, 3)?.trunc()) as usize,
    };
    if init == 0 {
        return Err(Failure::Arg(3, b"offset must be 1 or greater".to_vec()));
    }
    let lua_err = |e: mlua::Error| Failure::Error(e.to_string().into_bytes());
    let mut pos = init - 1;
    let mut out: Vec<Value> = Vec::new();
    let too_short = || Failure::Arg(2, b"data string too short".to_vec());
    while let Some(next) = fmt.next() {
        let (opt, mut size) = next?;
        pos = pos.wrapping_add(fmt.padding(opt, size, pos));
        if size > ld || pos > ld - size {
            return Err(too_short());
        }
        if args.len() + out.len() + 2 > MAX_C_STACK {
            return Err(Failure::Error(b"stack overflow (too many results)".to_vec()));
        }
        match opt {
            b'b' | b'B' | b'h' | b'H' | b'l' | b'L' | b'T' | b'i' | b'I' => {
                let n = get_integer(&data[pos..pos + size], fmt.little, opt.is_ascii_lowercase());
                out.push(Value::Number(n));
            }
            b'x' => {}
            b'f' | b'd' => {
                let mut b = data[pos..pos + size].to_vec();
                if !fmt.little {
                    b.reverse();
                }
                let n = match b.try_into() {
                    Ok(four) => f32::from_le_bytes(four) as f64,
                    Err(b) => f64::from_le_bytes(b.try_into().unwrap_or([0; 8])),
                };
                out.push(Value::Number(n));
            }
            b'c' => {
                if size == 0 {
                    let Some(n) = out.last().and_then(arg_num) else {
                        return Err(Failure::Error(b"format 'c0' needs a previous size".to_vec()));
                    };
                    out.pop();
                    size = c_to_u64(n) as usize;
                    if size > ld || pos > ld - size {
                        return Err(too_short());
                    }
                }
                out.push(Value::String(lua.create_string(&data[pos..pos + size]).map_err(lua_err)?));
            }
            b's' => {
                let Some(end) = data[pos..].iter().position(|&c| c == 0) else {
                    return Err(Failure::Error(b"unfinished string in data".to_vec()));
                };
                out.push(Value::String(lua.create_string(&data[pos..pos + end]).map_err(lua_err)?));
                size = end + 1;
            }
            other => fmt.control(other)?,
        }
        pos = pos.wrapping_add(size);
    }
    out.push(Value::Number(pos.wrapping_add(1) as i64 as f64));
    Ok(out)
}

fn size(lua: &Lua, args: MultiValue) -> LResult {
    match sized(&args) {
        Ok(n) => ok(lua, n as f64),
        Err(e) => e.raise(lua, "size"),
    }
}

fn sized(args: &MultiValue) -> Result<usize, Failure> {
    let mut fmt = Format::new(string_arg(args, 1)?);
    let mut pos = 0usize;
    while let Some(next) = fmt.next() {
        let (opt, size) = next?;
        pos += fmt.padding(opt, size, pos);
        if opt == b's' {
            return Err(Failure::Arg(1, b"option 's' has no fixed size".to_vec()));
        }
        if opt == b'c' && size == 0 {
            return Err(Failure::Arg(1, b"option 'c0' has no fixed size".to_vec()));
        }
        // Letters without a meaning count for nothing here (Redis checks only the others).
        if !opt.is_ascii_alphanumeric() {
            fmt.control(opt)?;
        }
        pos += size;
    }
    Ok(pos)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_past_eight_bytes_are_zeros_and_read_their_last_eight() {
        let mut out = Vec::new();
        put_integer(&mut out, -2.0, 16, false);
        assert_eq!(out, [[0u8; 8].as_slice(), &[0xff; 7], &[0xfe]].concat());
        assert_eq!(get_integer(&[0xff; 16], false, true), -1.0);
        assert_eq!(get_integer(&[1; 10], true, false), 72340172838076672.0);
    }

    #[test]
    fn conversions_follow_x86() {
        assert_eq!(c_to_u64(2f64.powi(63)), 1 << 63);
        assert_eq!(c_to_u64(2f64.powi(64)), 0);
        assert_eq!(c_to_i64(-1e300), i64::MIN);
        assert_eq!(c_to_u64(f64::NAN), 1 << 63);
    }

    #[test]
    fn padding_uses_redis_arithmetic() {
        let mut f = Format::new(b"!8".to_vec());
        let Some(Ok((opt, _))) = f.next() else { panic!() };
        f.control(opt).ok().unwrap();
        assert_eq!(f.padding(b'i', 3, 1), 2);
        assert_eq!(f.padding(b'd', 8, 1), 7);
        assert_eq!(f.padding(b'c', 8, 1), 0);
    }
}
