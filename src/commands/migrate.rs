//! MIGRATE host port key|"" destination-db timeout [COPY] [REPLACE] [AUTH password |
//! AUTH2 username password] [KEYS key ...]: move keys to another server as Redis does — DUMP
//! payloads sent as RESTORE (RESTORE-ASKING in cluster mode, so a node importing the slot
//! accepts them) with the remaining TTL, after AUTH and SELECT, over a connection kept for 10
//! seconds per target (SELECT is sent only when the database changes); the local keys are
//! deleted (and DEL propagated) once the target accepted them, unless COPY. A failed cached
//! connection is retried once with a new one. Like Redis, the command waits for the target.
//! With `tls-cluster yes` the connection is TLS, as Redis's (connTypeOfCluster).

use bytes::Bytes;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use super::args::{self, is};
use super::{errors, CmdError, CmdResult, CommandSpec, Ctx};
use crate::keyspace::notify;
use crate::metrics::memory::Apart;
use crate::persistence::dump;
use crate::persistence::rdb::SaveOptions;

pub static COMMANDS: &[CommandSpec] = &[CommandSpec::new("migrate", migrate).getkeys(super::key_specs::procs::migrate)];

/// Cached connections live this long without use; at most this many are kept.
const CACHE_TTL: Duration = Duration::from_secs(10);
const CACHE_ITEMS: usize = 64;

/// A connection to a target: plain, or TLS with `tls-cluster yes` (used in its ledger's scope:
/// rustls's memory is not `used_memory`).
enum Link {
    Tcp(TcpStream),
    Tls(Apart<Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>>),
}

impl Link {
    fn tcp(&self) -> &TcpStream {
        match self {
            Link::Tcp(s) => s,
            Link::Tls(s) => s.get().get_ref(),
        }
    }

    fn set_timeouts(&self, timeout: Duration) {
        let _ = self.tcp().set_read_timeout(Some(timeout));
        let _ = self.tcp().set_write_timeout(Some(timeout));
    }
}

impl Read for Link {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Link::Tcp(s) => s.read(buf),
            Link::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Link {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Link::Tcp(s) => s.write(buf),
            Link::Tls(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Link::Tcp(s) => s.flush(),
            Link::Tls(s) => s.flush(),
        }
    }
}

struct Cached {
    reader: BufReader<Link>,
    /// The database last selected on this connection (-1: unknown).
    last_dbid: i64,
    last_use: Instant,
}

fn cache() -> &'static Mutex<HashMap<String, Cached>> {
    static CACHE: OnceLock<Mutex<HashMap<String, Cached>>> = OnceLock::new();
    CACHE.get_or_init(Default::default)
}

/// Close the connections unused for more than 10 seconds (Redis's
/// migrateCloseTimedoutSockets, from the cron).
pub fn close_timed_out_sockets() {
    if let Some(c) = cache().try_lock() {
        if c.is_empty() {
            return;
        }
        drop(c);
        cache().lock().retain(|_, c| c.last_use.elapsed() <= CACHE_TTL);
    }
}

/// INFO's migrate_cached_sockets.
pub fn cached_sockets() -> usize {
    cache().lock().len()
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

/// Read one reply line (status, error or integer: AUTH, SELECT and RESTORE answer with those).
/// None on an I/O error or timeout (`timed_out` tells which).
fn read_line(r: &mut BufReader<Link>, timed_out: &mut bool) -> Option<String> {
    let mut line = String::new();
    match r.read_line(&mut line) {
        Ok(n) if n > 0 => Some(line.trim_end().to_string()),
        Ok(_) => None,
        Err(e) => {
            *timed_out = matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut);
            None
        }
    }
}

/// Why no connection to the target. Redis connects without blocking: only what the connect
/// call reports at once (a host that does not resolve, an unreachable network, a bad port) is
/// a connection error; a refusal or a timeout shows when the request is written.
enum NoSocket {
    Connect,
    Write { timed_out: bool },
}

/// The port as Redis reaches it: C's atoi (strtol, saturating, cut to an int), printed with
/// `%d` for getaddrinfo, which refuses a negative service at once and keeps the low 16 bits
/// of a larger one. None: the connect call fails at once.
fn target_port(text: &str) -> Option<u16> {
    let t = text.trim_start_matches([' ', '\t', '\n', '\r', '\x0b', '\x0c']);
    let (negative, digits) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let mut n: i64 = 0;
    for b in digits.bytes().take_while(u8::is_ascii_digit) {
        let d = i64::from(b - b'0');
        n = if negative { n.saturating_mul(10).saturating_sub(d) } else { n.saturating_mul(10).saturating_add(d) };
    }
    let int = n as i32;
    (int >= 0).then_some(int as u16)
}

/// A connection to the target: the cached one, or a new one (Redis's migrateGetSocket).
/// `tls` is the client configuration when `tls-cluster` is on.
fn get_socket(
    name: &str,
    host: &str,
    port: &str,
    timeout: Duration,
    tls: Option<std::sync::Arc<rustls::ClientConfig>>,
) -> Result<Cached, NoSocket> {
    if let Some(mut c) = cache().lock().remove(name) {
        c.last_use = Instant::now();
        c.reader.get_ref().set_timeouts(timeout);
        return Ok(c);
    }
    let port = target_port(port).ok_or(NoSocket::Connect)?;
    let addr = (host, port).to_socket_addrs().ok().and_then(|mut a| a.next()).ok_or(NoSocket::Connect)?;
    let sock = TcpStream::connect_timeout(&addr, timeout).map_err(|e| match e.kind() {
        std::io::ErrorKind::ConnectionRefused | std::io::ErrorKind::ConnectionReset => {
            NoSocket::Write { timed_out: false }
        }
        std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock => NoSocket::Write { timed_out: true },
        _ => NoSocket::Connect,
    })?;
    let _ = sock.set_nodelay(true);
    // Before a TLS handshake, which they bound too.
    let _ = sock.set_read_timeout(Some(timeout));
    let _ = sock.set_write_timeout(Some(timeout));
    let link = match tls {
        None => Link::Tcp(sock),
        Some(config) => {
            let server_name =
                rustls::pki_types::ServerName::try_from(host.to_string()).map_err(|_| NoSocket::Connect)?;
            let conn = Apart::new(|| rustls::ClientConnection::new(config, server_name));
            let mut tls =
                conn.transpose().map_err(|_| NoSocket::Connect)?.map(|c| Box::new(rustls::StreamOwned::new(c, sock)));
            // The handshake now, so that a target that refuses it fails as a connection does.
            tls.with(|tls| {
                while tls.conn.is_handshaking() {
                    tls.conn.complete_io(&mut tls.sock)?;
                }
                Ok::<_, std::io::Error>(())
            })
            .map_err(|_| NoSocket::Connect)?;
            Link::Tls(tls)
        }
    };
    Ok(Cached { reader: BufReader::new(link), last_dbid: -1, last_use: Instant::now() })
}

/// Keep a connection for the next MIGRATE to the same target.
fn put_socket(name: String, c: Cached) {
    let mut cache = cache().lock();
    if cache.len() >= CACHE_ITEMS && !cache.contains_key(&name) {
        if let Some(k) = cache.keys().next().cloned() {
            cache.remove(&k);
        }
    }
    cache.insert(name, c);
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
            let ttl = match ctx.db.expire_of(k) {
                None => 0,
                Some(at) if at - ctx.db.now_ms < 0 => continue,
                Some(at) => (at - ctx.db.now_ms).max(1),
            };
            found.push((k.clone(), payload, ttl));
        }
    }
    if found.is_empty() {
        ctx.reply.simple("NOKEY");
        return Ok(());
    }
    let host = args::text(&args[1]);
    let port = args::text(&args[2]);
    let name = format!("{host}:{port}");
    let restore: &[u8] = if ctx.server.cluster.get().is_some() { b"RESTORE-ASKING" } else { b"RESTORE" };
    let mut may_retry = true;
    loop {
        let tls = if ctx.server.config.load().tls_cluster { ctx.server.tls.client() } else { None };
        let mut cs = match get_socket(&name, &host, &port, timeout, tls) {
            Ok(cs) => cs,
            Err(NoSocket::Connect) => return Err(CmdError::new("-IOERR error or timeout connecting to the client")),
            // Retried once with a new connection, as a failed write is (not after a timeout).
            Err(NoSocket::Write { timed_out }) => {
                if !timed_out && may_retry {
                    may_retry = false;
                    continue;
                }
                return Err(CmdError::new("-IOERR error or timeout writing to target instance"));
            }
        };
        let mut req = Vec::new();
        match &o.auth {
            Some((None, pass)) => encode(&mut req, &[b"AUTH", pass]),
            Some((Some(user), pass)) => encode(&mut req, &[b"AUTH", user, pass]),
            None => {}
        }
        let select = cs.last_dbid != dbid;
        if select {
            encode(&mut req, &[b"SELECT", dbid.to_string().as_bytes()]);
        }
        for (k, payload, ttl) in &found {
            let ttl = ttl.to_string();
            let mut argv: Vec<&[u8]> = vec![restore, k, ttl.as_bytes(), payload];
            if o.replace {
                argv.push(b"REPLACE");
            }
            encode(&mut req, &argv);
        }
        let mut timed_out = false;
        if let Err(e) = cs.reader.get_mut().write_all(&req) {
            timed_out = matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut);
            if !timed_out && may_retry {
                may_retry = false;
                continue;
            }
            return Err(CmdError::new("-IOERR error or timeout writing to target instance"));
        }
        let auth_line = match o.auth.is_some() {
            true => read_line(&mut cs.reader, &mut timed_out),
            false => Some(String::new()),
        };
        let select_line = match (select, &auth_line) {
            (true, Some(_)) => read_line(&mut cs.reader, &mut timed_out),
            (_, Some(_)) => Some(String::new()),
            (_, None) => None,
        };
        let (Some(auth_line), Some(select_line)) = (auth_line, select_line) else {
            if !timed_out && may_retry {
                may_retry = false;
                continue;
            }
            return Err(CmdError::new("-IOERR error or timeout reading to target instance"));
        };
        let mut first_error: Option<String> = None;
        let mut moved = Vec::new();
        let mut socket_error = false;
        let mut read = 0;
        for (k, _, _) in &found {
            let Some(line) = read_line(&mut cs.reader, &mut timed_out) else {
                socket_error = true;
                break;
            };
            read += 1;
            let err = if auth_line.starts_with('-') {
                Some(&auth_line)
            } else if select_line.starts_with('-') {
                Some(&select_line)
            } else if line.starts_with('-') {
                Some(&line)
            } else {
                None
            };
            match err {
                Some(e) => {
                    first_error.get_or_insert_with(|| e.clone());
                }
                None if !o.copy => moved.push(k.clone()),
                None => {}
            }
        }
        // Nothing was processed and the first reply never came: a fresh connection may work.
        if first_error.is_none() && socket_error && read == 0 && may_retry && !timed_out {
            may_retry = false;
            continue;
        }
        // Keys the target accepted leave this server (and the deletion propagates), even when
        // another key failed, as in Redis.
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
        if socket_error {
            // The connection is dropped (not cached).
            if first_error.is_none() {
                return Err(CmdError::new("-IOERR error or timeout reading to target instance"));
            }
        } else {
            if first_error.is_none() {
                cs.last_dbid = dbid;
            } else {
                cs.last_dbid = -1;
            }
            put_socket(name, cs);
        }
        return match first_error {
            Some(line) => Err(CmdError::new(format!("Target instance replied with error: {}", &line[1..]))),
            None => {
                ctx.reply.ok();
                Ok(())
            }
        };
    }
}

#[cfg(test)]
mod tests {
    use super::target_port;

    #[test]
    fn target_port_reads_like_atoi_then_getaddrinfo() {
        assert_eq!(target_port("6379"), Some(6379));
        assert_eq!(target_port(" +12x"), Some(12));
        assert_eq!(target_port("abc"), Some(0));
        assert_eq!(target_port("65536"), Some(0));
        assert_eq!(target_port("70000"), Some(4464));
        assert_eq!(target_port("4294967297"), Some(1));
        assert_eq!(target_port("-1"), None);
        assert_eq!(target_port("99999999999999999999"), None);
        assert_eq!(target_port("-99999999999999999999"), Some(0));
    }
}
