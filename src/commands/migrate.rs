//! MIGRATE host port key|"" destination-db timeout [COPY] [REPLACE] [AUTH password |
//! AUTH2 username password] [KEYS key ...]: move keys to another server as Redis does — DUMP
//! payloads sent as RESTORE (with the remaining TTL) after AUTH and SELECT, over one connection
//! bounded by the timeout; the local keys are deleted (and DEL propagated) once the target
//! accepted them, unless COPY. Like Redis, the command waits for the target while it runs.

use bytes::Bytes;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use super::args::{self, is};
use super::flags::*;
use super::{errors, CmdError, CmdResult, CommandSpec, Ctx};
use crate::keyspace::notify;
use crate::persistence::dump;
use crate::persistence::rdb::SaveOptions;

pub static COMMANDS: &[CommandSpec] =
    &[CommandSpec::new("migrate", migrate).internal(ALL_KEYS).getkeys(super::key_specs::procs::migrate)];

/// MIGRATE's key positions: the key argument, or those after KEYS.
pub fn migrate_keys(args: &[Bytes]) -> Vec<usize> {
    for i in 6..args.len() {
        if is(&args[i], "keys") && args.get(3).is_some_and(|k| k.is_empty()) {
            return (i + 1..args.len()).collect();
        }
        if is(&args[i], "auth") {
            return vec![3];
        }
    }
    vec![3]
}

struct Options {
    copy: bool,
    replace: bool,
    auth: Option<(Option<Bytes>, Bytes)>,
    keys: Vec<Bytes>,
}

fn parse(args: &[Bytes]) -> Result<Options, CmdError> {
    let mut o = Options { copy: false, replace: false, auth: None, keys: Vec::new() };
    let mut j = 6;
    let mut keys_at = None;
    while j < args.len() {
        let left = args.len() - j - 1;
        if is(&args[j], "copy") {
            o.copy = true;
        } else if is(&args[j], "replace") {
            o.replace = true;
        } else if is(&args[j], "auth") {
            if left < 1 {
                return Err(CmdError::new(errors::SYNTAX));
            }
            j += 1;
            o.auth = Some((None, args[j].clone()));
        } else if is(&args[j], "auth2") {
            if left < 2 {
                return Err(CmdError::new(errors::SYNTAX));
            }
            o.auth = Some((Some(args[j + 1].clone()), args[j + 2].clone()));
            j += 2;
        } else if is(&args[j], "keys") {
            if !args[3].is_empty() {
                return Err(CmdError::new(
                    "When using MIGRATE KEYS option, the key argument must be set to the empty string",
                ));
            }
            keys_at = Some(j + 1);
            break;
        } else {
            return Err(CmdError::new(errors::SYNTAX));
        }
        j += 1;
    }
    o.keys = match keys_at {
        Some(k) => args[k..].to_vec(),
        None => vec![args[3].clone()],
    };
    Ok(o)
}

fn encode(out: &mut Vec<u8>, argv: &[&[u8]]) {
    out.extend_from_slice(format!("*{}\r\n", argv.len()).as_bytes());
    for a in argv {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
}

/// Read one reply line (status, error or integer; RESTORE/AUTH/SELECT answer with those).
fn read_line(r: &mut BufReader<TcpStream>) -> Result<String, CmdError> {
    let mut line = String::new();
    match r.read_line(&mut line) {
        Ok(n) if n > 0 => Ok(line.trim_end().to_string()),
        _ => Err(CmdError::new("-IOERR error or timeout reading to target instance")),
    }
}

fn migrate(ctx: &mut Ctx) -> CmdResult {
    let args = ctx.args;
    let o = parse(args)?;
    let timeout = args::int(&args[5])?;
    let dbid = args::int(&args[4])?;
    let timeout = Duration::from_millis(if timeout <= 0 { 1000 } else { timeout as u64 });
    // The keys that exist; none at all answers NOKEY before connecting.
    let opts = SaveOptions::from_config(&ctx.server.config.load());
    let mut found: Vec<(Bytes, Vec<u8>, i64)> = Vec::new();
    for k in &o.keys {
        if let Some(e) = ctx.db.get(k) {
            let payload = dump::dump(&e.value, opts);
            let ttl = ctx.db.expire_of(k).map_or(0, |at| (at - ctx.db.now_ms).max(1));
            found.push((k.clone(), payload, ttl));
        }
    }
    if found.is_empty() {
        ctx.reply.simple("NOKEY");
        return Ok(());
    }
    let host = args::text(&args[1]);
    let port = args::text(&args[2]);
    let addr = format!("{host}:{port}").to_socket_addrs().ok().and_then(|mut a| a.next());
    let io_err = || CmdError::new("-IOERR error or timeout connecting to the client");
    let sock = addr.and_then(|a| TcpStream::connect_timeout(&a, timeout).ok()).ok_or_else(io_err)?;
    let _ = sock.set_read_timeout(Some(timeout));
    let _ = sock.set_write_timeout(Some(timeout));
    let mut req = Vec::new();
    match &o.auth {
        Some((None, pass)) => encode(&mut req, &[b"AUTH", pass]),
        Some((Some(user), pass)) => encode(&mut req, &[b"AUTH", user, pass]),
        None => {}
    }
    let db = dbid.to_string();
    encode(&mut req, &[b"SELECT", db.as_bytes()]);
    for (k, payload, ttl) in &found {
        let ttl = ttl.to_string();
        let mut argv: Vec<&[u8]> = vec![b"RESTORE", k, ttl.as_bytes(), payload];
        if o.replace {
            argv.push(b"REPLACE");
        }
        encode(&mut req, &argv);
    }
    let mut w = sock.try_clone().map_err(|_| io_err())?;
    w.write_all(&req).map_err(|_| CmdError::new("-IOERR error or timeout writing to target instance"))?;
    let mut r = BufReader::new(sock);
    let replied_error = |line: &str| CmdError::new(format!("Target instance replied with error: {}", &line[1..]));
    if o.auth.is_some() {
        let line = read_line(&mut r)?;
        if line.starts_with('-') {
            return Err(replied_error(&line));
        }
    }
    let line = read_line(&mut r)?;
    if line.starts_with('-') {
        return Err(replied_error(&line));
    }
    let mut first_error = None;
    let mut moved = Vec::new();
    for (k, _, _) in &found {
        let line = read_line(&mut r)?;
        if line.starts_with('-') {
            first_error.get_or_insert(line);
        } else if !o.copy {
            moved.push(k.clone());
        }
    }
    // Keys the target accepted leave this server (and the deletion propagates), even when another
    // key failed, as in Redis.
    if !moved.is_empty() {
        let mut del: Vec<Bytes> = vec![Bytes::from_static(b"DEL")];
        for k in &moved {
            if ctx.db.delete(k) {
                ctx.db.notify(notify::GENERIC, "del", k);
                del.push(k.clone());
            }
        }
        if del.len() > 1 {
            ctx.db.touch_dirty((del.len() - 1) as u64);
            ctx.db.propagate_effect(del);
        }
    }
    match first_error {
        Some(line) => Err(replied_error(&line)),
        None => {
            ctx.reply.ok();
            Ok(())
        }
    }
}
