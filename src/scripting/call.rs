//! `redis.call` / `redis.pcall`: Redis's scriptCall. The command goes through the generic
//! checks (unknown command, arity, NOSCRIPT, writes from read-only scripts) and then
//! `dispatch::run_locked` on the script's all-shards view, as a command of a transaction does;
//! its RESP reply is converted to Lua values as redisProtocolToLuaType does.

use bytes::Bytes;
use mlua::{Lua, MultiValue, Table, Value};
use std::time::Instant;

use crate::commands::dispatch::{run_locked, Queued};
use crate::commands::table::{table, Command};
use crate::commands::{flags, Action};
use crate::keyspace::Db;
use crate::protocol::{Proto, ReplySink};
use crate::server::client::Client;
use crate::server::Server;

/// The state of one script run that redis.call and friends share.
pub struct RunState<'a> {
    pub server: &'a Server,
    /// The client commands run as (its own selected database and protocol, like Redis's
    /// script client).
    pub client: Client,
    /// redis.setresp(3) was called.
    pub resp3: bool,
    /// Write commands are refused (EVAL_RO, FCALL_RO, `no-writes`).
    pub read_only: bool,
    /// redis.set_repl flags (REPL_ALL by default).
    pub repl: u8,
    /// Writes whose waiters and watchers are told once the locks are released.
    pub queued: Vec<Queued>,
    /// Script start (time is frozen for the whole script, as in Redis).
    pub start: Instant,
    /// A read-only command was called: a tracking caller then remembers the declared keys.
    pub read_called: bool,
}

fn error_value(lua: &Lua, msg: &str, counted: bool) -> mlua::Result<Value> {
    let t = super::engine::error_table(lua, msg.as_bytes())?;
    if counted {
        t.raw_set("ignore_error_stats_update", true)?;
    }
    Ok(Value::Table(t))
}

fn lookup(argv: &[Bytes]) -> Option<&'static Command> {
    let cmd = table().lookup(&argv[0])?;
    if cmd.is_container() && argv.len() >= 2 {
        return cmd.subcommand(&argv[1]);
    }
    Some(cmd)
}

/// Build the argument vector: strings as they are, numbers as `%.17g`.
fn argv_of(args: &MultiValue) -> Result<Vec<Bytes>, &'static str> {
    if args.len() <= 1 {
        return Err("Please specify at least one argument for this redis lib call");
    }
    let mut argv = Vec::with_capacity(args.len() - 1);
    for a in args.iter().skip(1) {
        match a {
            Value::String(s) => argv.push(Bytes::copy_from_slice(&s.as_bytes())),
            Value::Integer(i) => argv.push(Bytes::from(i.to_string())),
            Value::Number(n) => {
                let mut b = Vec::new();
                crate::util::num::format_double(*n, &mut b);
                argv.push(Bytes::from(b));
            }
            _ => return Err("Lua redis lib command arguments must be strings or integers"),
        }
    }
    Ok(argv)
}

/// Run one command for the script. Returns the Lua result and whether it is an error that
/// redis.call must raise.
pub fn exec(lua: &Lua, st: &mut RunState, db: &mut Db, args: MultiValue) -> mlua::Result<(Value, bool)> {
    let raise = matches!(args.front(), Some(Value::Boolean(true)));
    let argv = match argv_of(&args) {
        Ok(a) => a,
        Err(e) => return Ok((error_value(lua, e, false)?, raise)),
    };
    let refuse = |msg: &str| -> mlua::Result<(Value, bool)> {
        st.server.count_error(msg.strip_prefix('-').and_then(|m| m.split(' ').next()).unwrap_or("ERR"));
        Ok((error_value(lua, msg, true)?, raise))
    };
    let Some(cmd) = lookup(&argv) else {
        return refuse("Unknown Redis command called from script");
    };
    let arity = cmd.spec.arity;
    let argc = argv.len() as i32;
    if (arity > 0 && arity != argc) || argc < -arity {
        cmd.stats.rejected.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        return refuse("Wrong number of args calling Redis command from script");
    }
    if cmd.spec.has_flag(flags::NOSCRIPT) {
        cmd.stats.rejected.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        return refuse("This Redis command is not allowed from script");
    }
    if st.read_only && cmd.spec.has_flag(flags::WRITE | flags::MAY_REPLICATE) {
        cmd.stats.rejected.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        return refuse("Write commands are not allowed from read-only scripts.");
    }
    if cmd.spec.has_flag(flags::READONLY) {
        st.read_called = true;
    }
    if cmd.spec.has_flag(flags::WRITE) {
        st.server.scripting.busy.wrote.store(true, std::sync::atomic::Ordering::SeqCst);
    }
    let mut sink = ReplySink::new(if st.resp3 { Proto::Resp3 } else { Proto::Resp2 });
    st.client.proto = sink.proto;
    let mark = db.effects_len();
    let outcome = run_locked(st.server, &mut st.client, cmd, &argv, &mut sink, db, st.start);
    if st.repl == 0 {
        db.truncate_effects(mark);
    }
    if let Action::Block(spec) = outcome.action {
        // Blocking commands never block in a script: they answer as if timed out.
        if spec.timeout_null_array {
            sink.null_array()
        } else {
            sink.null()
        }
    }
    for code in sink.errors.drain(..) {
        st.server.count_error(&code);
    }
    if outcome.wrote {
        st.queued.push(Queued { cmd, args: argv, db: db.index, modified: outcome.modified });
    }
    let mut p = Parser { buf: &sink.buf, pos: 0, lua };
    let v = p.value()?;
    let is_err = matches!(&v, Value::Table(t) if t.raw_get::<Value>("err").is_ok_and(|e| !e.is_nil()))
        && sink.buf.first() == Some(&b'-');
    Ok((v, raise && is_err))
}

/// RESP (as the script's protocol produced it) → Lua values.
struct Parser<'a> {
    buf: &'a [u8],
    pos: usize,
    lua: &'a Lua,
}

impl Parser<'_> {
    fn line(&mut self) -> &[u8] {
        let start = self.pos;
        let end = memchr::memchr(b'\r', &self.buf[start..]).map_or(self.buf.len(), |i| start + i);
        self.pos = (end + 2).min(self.buf.len());
        &self.buf[start..end]
    }

    fn int(&mut self) -> i64 {
        crate::util::num::parse_i64(self.line()).unwrap_or(0)
    }

    fn table1(&self, key: &str, v: impl mlua::IntoLua) -> mlua::Result<Value> {
        let t = self.lua.create_table()?;
        t.raw_set(key, v)?;
        Ok(Value::Table(t))
    }

    fn value(&mut self) -> mlua::Result<Value> {
        let Some(&kind) = self.buf.get(self.pos) else {
            return Ok(Value::Nil);
        };
        self.pos += 1;
        match kind {
            b'+' => {
                let s = self.lua.create_string(self.line())?;
                self.table1("ok", s)
            }
            b'-' => {
                let mut msg = b"-".to_vec();
                msg.extend_from_slice(self.line());
                let t: Table = super::engine::error_table(self.lua, &msg)?;
                t.raw_set("ignore_error_stats_update", true)?;
                Ok(Value::Table(t))
            }
            b':' => Ok(Value::Number(self.int() as f64)),
            b'$' => {
                let n = self.int();
                if n < 0 {
                    return Ok(Value::Boolean(false));
                }
                let end = (self.pos + n as usize).min(self.buf.len());
                let s = self.lua.create_string(&self.buf[self.pos..end])?;
                self.pos = (end + 2).min(self.buf.len());
                Ok(Value::String(s))
            }
            b'*' | b'~' | b'>' => {
                let n = self.int();
                if n < 0 {
                    return Ok(Value::Boolean(false));
                }
                let t = self.lua.create_table_with_capacity(if kind == b'~' { 0 } else { n as usize }, 0)?;
                for i in 1..=n {
                    let v = self.value()?;
                    if kind == b'~' {
                        t.raw_set(v, true)?;
                    } else {
                        t.raw_set(i, v)?;
                    }
                }
                if kind == b'~' {
                    self.table1("set", t)
                } else {
                    Ok(Value::Table(t))
                }
            }
            b'%' | b'|' => {
                let n = self.int();
                let t = self.lua.create_table()?;
                for _ in 0..n {
                    let k = self.value()?;
                    let v = self.value()?;
                    if !k.is_nil() {
                        t.raw_set(k, v)?;
                    }
                }
                if kind == b'|' {
                    // Attributes are skipped; the reply follows them.
                    return self.value();
                }
                self.table1("map", t)
            }
            b'_' => {
                self.line();
                Ok(Value::Nil)
            }
            b'#' => {
                let b = self.line() == b"t";
                Ok(Value::Boolean(b))
            }
            b',' => {
                let line = self.line().to_vec();
                let d = crate::util::num::parse_f64(&line).unwrap_or_else(|| match &line[..] {
                    b"inf" => f64::INFINITY,
                    b"-inf" => f64::NEG_INFINITY,
                    _ => f64::NAN,
                });
                self.table1("double", d)
            }
            b'(' => {
                let s = self.lua.create_string(self.line())?;
                self.table1("big_number", s)
            }
            b'=' => {
                let n = self.int().max(0) as usize;
                let end = (self.pos + n).min(self.buf.len());
                let body = &self.buf[self.pos..end];
                let (format, text) = if body.len() >= 4 { (&body[..3], &body[4..]) } else { (&b"txt"[..], body) };
                let inner = self.lua.create_table()?;
                inner.raw_set("format", self.lua.create_string(format)?)?;
                inner.raw_set("string", self.lua.create_string(text)?)?;
                self.pos = (end + 2).min(self.buf.len());
                self.table1("verbatim_string", inner)
            }
            _ => Ok(Value::Nil),
        }
    }
}
