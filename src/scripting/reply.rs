//! A script's result → the caller's reply, as Redis's luaReplyToRedisReply: strings are bulk
//! strings, numbers integers (truncated), booleans `:1` / null (or RESP3 booleans after
//! `redis.setresp(3)`), tables with `err` / `ok` / `double` / `big_number` /
//! `verbatim_string` / `map` / `set` fields those reply types, any other table an array that
//! stops at the first nil.

use mlua::{Table, Value};

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

/// Write `v` as a reply. `resp3` is the script's protocol (redis.setresp).
pub fn write(v: &Value, out: &mut ReplySink, resp3: bool) {
    write_at(v, out, resp3, 0)
}

fn write_at(v: &Value, out: &mut ReplySink, resp3: bool, depth: usize) {
    if depth > MAX_DEPTH {
        out.error("reached lua stack limit");
        return;
    }
    match v {
        Value::String(s) => out.bulk(&s.as_bytes()),
        Value::Boolean(b) => {
            if resp3 {
                out.boolean(*b)
            } else if *b {
                out.int(1)
            } else {
                out.null()
            }
        }
        Value::Integer(i) => out.int(*i),
        Value::Number(n) => out.int(to_long_long(*n)),
        Value::Table(t) => write_table(t, out, resp3, depth),
        _ => out.null(),
    }
}

fn field(t: &Table, name: &str) -> Value {
    t.raw_get(name).unwrap_or(Value::Nil)
}

fn write_table(t: &Table, out: &mut ReplySink, resp3: bool, depth: usize) {
    if let Value::String(e) = field(t, "err") {
        let msg = error_text(t, &e.as_bytes());
        out.error(&msg);
        if ignores_stats(t) {
            // Counted in errorstats when the command failed; the script still fails.
            out.errors.pop();
            out.uncounted_errors += 1;
        }
        return;
    }
    if let Value::String(s) = field(t, "ok") {
        out.simple_bytes(crate::util::bytetext::c_bytes(&s.as_bytes(), usize::MAX));
        return;
    }
    match field(t, "double") {
        Value::Number(n) => return out.double(n),
        Value::Integer(i) => return out.double(i as f64),
        _ => {}
    }
    if let Value::String(s) = field(t, "big_number") {
        let s: String = String::from_utf8_lossy(&s.as_bytes()).replace(['\r', '\n'], " ");
        out.big_number(&s);
        return;
    }
    if let Value::Table(v) = field(t, "verbatim_string") {
        if let (Value::String(f), Value::String(s)) = (field(&v, "format"), field(&v, "string")) {
            let f = String::from_utf8_lossy(&f.as_bytes()).into_owned();
            let f: String = f.chars().chain("   ".chars()).take(3).collect();
            out.verbatim(&f, &s.as_bytes());
            return;
        }
    }
    if let Value::Table(m) = field(t, "map") {
        let pairs: Vec<(Value, Value)> = m.pairs::<Value, Value>().filter_map(Result::ok).collect();
        out.map(pairs.len());
        for (k, v) in &pairs {
            write_at(k, out, resp3, depth + 1);
            write_at(v, out, resp3, depth + 1);
        }
        return;
    }
    if let Value::Table(s) = field(t, "set") {
        let keys: Vec<Value> = s.pairs::<Value, Value>().filter_map(Result::ok).map(|(k, _)| k).collect();
        out.set(keys.len());
        for k in &keys {
            write_at(k, out, resp3, depth + 1);
        }
        return;
    }
    let mut items = Vec::new();
    for i in 1.. {
        match t.raw_get::<Value>(i) {
            Ok(Value::Nil) | Err(_) => break,
            Ok(v) => items.push(v),
        }
    }
    out.array(items.len());
    for v in &items {
        write_at(v, out, resp3, depth + 1);
    }
}

/// An error table's reply text: "-" + its message (the code is its first word).
pub fn error_text(_t: &Table, msg: &[u8]) -> String {
    // Redis formats it with %s: its bytes, up to a NUL (util::bytetext).
    format!("-{}", crate::util::bytetext::c_string(msg, usize::MAX))
}

/// Whether the error was already counted in INFO errorstats (it came from a command).
pub fn ignores_stats(t: &Table) -> bool {
    matches!(field(t, "ignore_error_stats_update"), Value::Boolean(true))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::Proto;
    use mlua::Lua;

    fn render(src: &str, proto: Proto, resp3: bool) -> String {
        let lua = Lua::new();
        let v: Value = lua.load(src).eval().unwrap();
        let mut out = ReplySink::new(proto);
        write(&v, &mut out, resp3);
        String::from_utf8_lossy(&out.buf).into_owned()
    }

    #[test]
    fn conversions_like_redis() {
        assert_eq!(
            render("return {1,2,3,'ciao',{1,2}}", Proto::Resp2, false),
            "*5\r\n:1\r\n:2\r\n:3\r\n$4\r\nciao\r\n*2\r\n:1\r\n:2\r\n"
        );
        assert_eq!(render("return 3.99", Proto::Resp2, false), ":3\r\n");
        assert_eq!(render("return {1,2,nil,4}", Proto::Resp2, false), "*2\r\n:1\r\n:2\r\n");
        assert_eq!(render("return false", Proto::Resp2, false), "$-1\r\n");
        assert_eq!(render("return false", Proto::Resp3, false), "_\r\n");
        assert_eq!(render("return true", Proto::Resp3, true), "#t\r\n");
        assert_eq!(render("return false", Proto::Resp2, true), ":0\r\n");
        assert_eq!(render("return {err='My Error'}", Proto::Resp2, false), "-My Error\r\n");
        assert_eq!(render("return {ok='fine'}", Proto::Resp2, false), "+fine\r\n");
        // Redis 7.2 formats doubles with Grisu2 (7.0: %.17g, ",3.1400000000000001").
        assert_eq!(render("return {double=3.14}", Proto::Resp3, true), ",3.14\r\n");
        assert_eq!(render("return {map={a=1}}", Proto::Resp3, true), "%1\r\n$1\r\na\r\n:1\r\n");
        assert_eq!(render("return {set={a=true}}", Proto::Resp2, true), "*1\r\n$1\r\na\r\n");
    }
}
