//! `struct`: Roberto Ierusalimschy's struct library (as bundled with Redis) in Rust:
//! `struct.pack(fmt, ...)`, `struct.unpack(fmt, data [, pos])`, `struct.size(fmt)` with the
//! options `> < = !n x b B h H l L T i[n] I[n] f d s c[n]` and a space.

use mlua::{Lua, MultiValue, Table, Value};

use super::{add, arg_num, arg_str, bad_arg, fail, ok, LResult};

pub fn table(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    add(lua, &t, "pack", pack)?;
    add(lua, &t, "unpack", unpack)?;
    add(lua, &t, "size", size)?;
    Ok(t)
}

const NATIVE_ALIGN: usize = 8;

struct Fmt<'a> {
    f: &'a [u8],
    i: usize,
    little: bool,
    align: usize,
}

enum Opt {
    Pad,
    Int { size: usize, signed: bool },
    Float,
    Double,
    ZStr,
    Chars(usize),
}

impl<'a> Fmt<'a> {
    fn new(f: &'a [u8]) -> Self {
        Fmt { f, i: 0, little: true, align: 1 }
    }

    fn num(&mut self, default: usize) -> usize {
        let start = self.i;
        let mut n = 0usize;
        while self.i < self.f.len() && self.f[self.i].is_ascii_digit() {
            n = n.saturating_mul(10).saturating_add((self.f[self.i] - b'0') as usize);
            self.i += 1;
        }
        if self.i == start {
            default
        } else {
            n
        }
    }

    /// The next data option and its size, or an error text (for argument #1).
    fn next(&mut self) -> Option<Result<(Opt, usize), String>> {
        loop {
            let c = *self.f.get(self.i)?;
            self.i += 1;
            let opt = match c {
                b' ' => continue,
                b'>' => {
                    self.little = false;
                    continue;
                }
                b'<' | b'=' => {
                    self.little = true;
                    continue;
                }
                b'!' => {
                    self.align = self.num(NATIVE_ALIGN);
                    continue;
                }
                b'x' => (Opt::Pad, 1),
                b'b' | b'B' => (Opt::Int { size: 1, signed: c == b'b' }, 1),
                b'h' | b'H' => (Opt::Int { size: 2, signed: c == b'h' }, 2),
                b'l' | b'L' | b'T' => (Opt::Int { size: 8, signed: c == b'l' }, 8),
                b'i' | b'I' => {
                    let n = self.num(4);
                    if n > 8 || n == 0 {
                        return Some(Err(format!("integral size {n} is larger than limit of 8")));
                    }
                    (Opt::Int { size: n, signed: c == b'i' }, n)
                }
                b'f' => (Opt::Float, 4),
                b'd' => (Opt::Double, 8),
                b's' => (Opt::ZStr, 0),
                b'c' => {
                    let n = self.num(1);
                    (Opt::Chars(n), n)
                }
                other => return Some(Err(format!("invalid format option '{}'", other as char))),
            };
            return Some(Ok(opt));
        }
    }

    fn padding(&self, opt: &Opt, size: usize, len: usize) -> usize {
        if matches!(opt, Opt::Pad | Opt::ZStr | Opt::Chars(_)) || size <= 1 || self.align <= 1 {
            return 0;
        }
        let a = size.min(self.align);
        if !a.is_power_of_two() {
            return 0;
        }
        (a - (len & (a - 1))) & (a - 1)
    }
}

fn fmt_arg(lua: &Lua, args: &MultiValue, fname: &str) -> Result<Vec<u8>, LResult> {
    match args.front().and_then(arg_str) {
        Some(f) => Ok(f),
        None => Err(bad_arg(lua, 1, fname, &format!("string expected, got {}", super::type_name(args.front())))),
    }
}

fn put_int(out: &mut Vec<u8>, v: u64, size: usize, little: bool) {
    let bytes = v.to_le_bytes();
    if little {
        out.extend_from_slice(&bytes[..size]);
    } else {
        out.extend(bytes[..size].iter().rev());
    }
}

fn pack(lua: &Lua, args: MultiValue) -> LResult {
    let f = match fmt_arg(lua, &args, "pack") {
        Ok(f) => f,
        Err(r) => return r,
    };
    let mut fmt = Fmt::new(&f);
    let mut out = Vec::new();
    let mut arg = 1;
    while let Some(next) = fmt.next() {
        let (opt, size) = match next {
            Ok(x) => x,
            Err(e) => return bad_arg(lua, 1, "pack", &e),
        };
        let pad = fmt.padding(&opt, size, out.len());
        out.resize(out.len() + pad, 0);
        let argn = arg + 1;
        match opt {
            Opt::Pad => out.push(0),
            Opt::Int { size, signed } => {
                let Some(n) = args.get(arg).and_then(arg_num) else {
                    return bad_arg(
                        lua,
                        argn,
                        "pack",
                        &format!("number expected, got {}", super::type_name(args.get(arg))),
                    );
                };
                arg += 1;
                let v = if signed || n < 0.0 { n as i64 as u64 } else { n as u64 };
                put_int(&mut out, v, size, fmt.little);
            }
            Opt::Float | Opt::Double => {
                let Some(n) = args.get(arg).and_then(arg_num) else {
                    return bad_arg(
                        lua,
                        argn,
                        "pack",
                        &format!("number expected, got {}", super::type_name(args.get(arg))),
                    );
                };
                arg += 1;
                let mut b: Vec<u8> = if matches!(opt, Opt::Float) {
                    (n as f32).to_le_bytes().to_vec()
                } else {
                    n.to_le_bytes().to_vec()
                };
                if !fmt.little {
                    b.reverse();
                }
                out.extend_from_slice(&b);
            }
            Opt::ZStr | Opt::Chars(_) => {
                let Some(s) = args.get(arg).and_then(arg_str) else {
                    return bad_arg(
                        lua,
                        argn,
                        "pack",
                        &format!("string expected, got {}", super::type_name(args.get(arg))),
                    );
                };
                arg += 1;
                match opt {
                    Opt::Chars(n) if n > 0 => {
                        if s.len() < n {
                            return bad_arg(lua, argn, "pack", "string too short");
                        }
                        out.extend_from_slice(&s[..n]);
                    }
                    Opt::Chars(_) => out.extend_from_slice(&s),
                    _ => {
                        out.extend_from_slice(&s);
                        out.push(0);
                    }
                }
            }
        }
    }
    ok(lua, lua.create_string(&out)?)
}

fn unpack(lua: &Lua, args: MultiValue) -> LResult {
    let f = match fmt_arg(lua, &args, "unpack") {
        Ok(f) => f,
        Err(r) => return r,
    };
    let Some(data) = args.get(1).and_then(arg_str) else {
        return bad_arg(lua, 2, "unpack", &format!("string expected, got {}", super::type_name(args.get(1))));
    };
    let init = args.get(2).and_then(arg_num).unwrap_or(1.0) as i64;
    if init <= 0 {
        return bad_arg(lua, 3, "unpack", "offset must be 1 or greater");
    }
    let mut pos = (init - 1) as usize;
    let mut fmt = Fmt::new(&f);
    let mut out: Vec<Value> = Vec::new();
    while let Some(next) = fmt.next() {
        let (opt, size) = match next {
            Ok(x) => x,
            Err(e) => return bad_arg(lua, 1, "unpack", &e),
        };
        pos += fmt.padding(&opt, size, pos);
        let need = |n: usize| pos + n <= data.len();
        match opt {
            Opt::Pad => pos += 1,
            Opt::Int { size, signed } => {
                if !need(size) {
                    return bad_arg(lua, 2, "unpack", "data string too short");
                }
                let b = &data[pos..pos + size];
                let mut v: u64 = 0;
                for i in 0..size {
                    let byte = if fmt.little { b[size - 1 - i] } else { b[i] };
                    v = (v << 8) | byte as u64;
                }
                let n = if signed && size < 8 {
                    let shift = 64 - 8 * size as u32;
                    ((v << shift) as i64 >> shift) as f64
                } else if signed {
                    v as i64 as f64
                } else {
                    v as f64
                };
                out.push(Value::Number(n));
                pos += size;
            }
            Opt::Float | Opt::Double => {
                if !need(size) {
                    return bad_arg(lua, 2, "unpack", "data string too short");
                }
                let mut b = data[pos..pos + size].to_vec();
                if !fmt.little {
                    b.reverse();
                }
                let n = if size == 4 {
                    f32::from_le_bytes(b.try_into().unwrap_or([0; 4])) as f64
                } else {
                    f64::from_le_bytes(b.try_into().unwrap_or([0; 8]))
                };
                out.push(Value::Number(n));
                pos += size;
            }
            Opt::ZStr => {
                let Some(end) = data[pos.min(data.len())..].iter().position(|&c| c == 0) else {
                    return bad_arg(lua, 2, "unpack", "unfinished string in data");
                };
                out.push(Value::String(lua.create_string(&data[pos..pos + end])?));
                pos += end + 1;
            }
            Opt::Chars(mut n) => {
                if n == 0 {
                    match out.pop().as_ref().and_then(arg_num) {
                        Some(v) => n = v as usize,
                        None => return fail(lua, "format 'c0' needs a previous size"),
                    }
                }
                if !need(n) {
                    return bad_arg(lua, 2, "unpack", "data string too short");
                }
                out.push(Value::String(lua.create_string(&data[pos..pos + n])?));
                pos += n;
            }
        }
    }
    out.push(Value::Number((pos + 1) as f64));
    ok(lua, MultiValue::from_vec(out))
}

fn size(lua: &Lua, args: MultiValue) -> LResult {
    let f = match fmt_arg(lua, &args, "size") {
        Ok(f) => f,
        Err(r) => return r,
    };
    let mut fmt = Fmt::new(&f);
    let mut total = 0usize;
    while let Some(next) = fmt.next() {
        let (opt, size) = match next {
            Ok(x) => x,
            Err(e) => return bad_arg(lua, 1, "size", &e),
        };
        if matches!(opt, Opt::ZStr) || matches!(opt, Opt::Chars(0)) {
            return bad_arg(lua, 1, "size", "options 'c0' - 's' have undefined sizes");
        }
        total += fmt.padding(&opt, size, total) + size;
    }
    ok(lua, total as f64)
}
