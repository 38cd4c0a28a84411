//! MONITOR: the clients watching every command, and the feed they receive, as Redis 7.0 writes
//! it: `+<unix seconds>.<micros> [<db> <client addr | lua | unix:<socket>>] "arg" ...`, one
//! status line per command, arguments quoted like sdscatrepr and secrets redacted. Commands are
//! fed after they run (so a transaction shows MULTI, its commands, then EXEC); scripts are fed
//! before they run, so the commands they call follow them; commands flagged admin or
//! skip_monitor are never shown. Also the list of arguments to redact (AUTH, HELLO's AUTH,
//! MIGRATE's AUTH/AUTH2, CONFIG SET of a sensitive parameter), shared with SLOWLOG.

use bytes::Bytes;
use parking_lot::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::commands::pipeline::flags;
use crate::commands::pipeline::Command;
use crate::pubsub::{Push, Subscriber};
use crate::server::Server;
use crate::session::Client;

/// The monitoring clients.
#[derive(Default)]
pub struct Monitors {
    any: AtomicBool,
    list: Mutex<Vec<Subscriber>>,
}

impl Monitors {
    pub fn add(&self, sub: Subscriber) {
        let mut l = self.list.lock();
        if !l.iter().any(|s| s.id == sub.id) {
            l.push(sub);
        }
        self.any.store(true, Ordering::Release);
    }

    pub fn remove(&self, id: u64) {
        let mut l = self.list.lock();
        l.retain(|s| s.id != id && !s.is_closed());
        self.any.store(!l.is_empty(), Ordering::Release);
    }

    pub fn active(&self) -> bool {
        self.any.load(Ordering::Acquire)
    }

    pub fn count(&self) -> usize {
        self.list.lock().len()
    }

    /// Send one command to every monitor.
    pub fn feed(&self, db: usize, source: &str, args: &[Bytes]) {
        if !self.active() {
            return;
        }
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        let mut line = format!("{}.{:06} [{} {}]", now.as_secs(), now.subsec_micros(), db, source).into_bytes();
        let redact = redacted_args(args);
        for (i, a) in args.iter().enumerate() {
            line.push(b' ');
            if redact.contains(&i) {
                line.extend_from_slice(b"\"(redacted)\"");
            } else {
                repr_into(&mut line, a);
            }
        }
        let line = Bytes::from(line);
        let mut l = self.list.lock();
        l.retain(|s| !s.is_closed());
        for s in l.iter() {
            s.push(Push::Monitor(line.clone()));
        }
        self.any.store(!l.is_empty(), Ordering::Release);
    }
}

/// Where a command comes from, as the feed names it.
fn source(client: &Client) -> String {
    if client.script {
        "lua".into()
    } else if client.handle.addr.starts_with('/') {
        format!("unix:{}", client.handle.addr.trim_end_matches(":0"))
    } else {
        client.handle.addr.clone()
    }
}

/// Before a command runs: scripts (EVAL*, FCALL*) are shown first.
pub fn before(server: &Server, client: &Client, cmd: &Command, args: &[Bytes]) {
    if server.monitors.active() && cmd.has_flag(flags::SCRIPT_RUN) && !client.script {
        server.monitors.feed(client.db, &source(client), args);
    }
}

/// After a command ran.
pub fn after(server: &Server, client: &Client, cmd: &Command, args: &[Bytes]) {
    if !server.monitors.active() {
        return;
    }
    // A blocked command is shown once, when it first runs (Redis 7.2): not again when a
    // wake-up runs it anew.
    if !cmd.has_flag(flags::SKIP_MONITOR | flags::ADMIN | flags::SCRIPT_RUN) && !client.block_retry {
        server.monitors.feed(client.db, &source(client), args);
    }
}

/// A refused EXEC (EXECABORT) is shown, closing the MULTI the monitors saw.
pub fn exec_aborted(server: &Server, client: &Client, args: &[Bytes]) {
    if server.monitors.active() {
        server.monitors.feed(client.db, &source(client), args);
    }
}

/// The arguments of a command that must never be shown (MONITOR, SLOWLOG).
pub fn redacted_args(args: &[Bytes]) -> Vec<usize> {
    let Some(name) = args.first() else { return Vec::new() };
    let is = |a: &Bytes, s: &str| a.eq_ignore_ascii_case(s.as_bytes());
    if is(name, "auth") {
        return (1..args.len()).collect();
    }
    if is(name, "hello") {
        let mut out = Vec::new();
        let mut i = 2;
        while i < args.len() {
            if is(&args[i], "auth") && i + 2 < args.len() {
                out.extend([i + 1, i + 2]);
                i += 3;
            } else if is(&args[i], "setname") {
                i += 2;
            } else {
                i += 1;
            }
        }
        return out;
    }
    if is(name, "migrate") {
        let mut out = Vec::new();
        for i in 6..args.len() {
            if is(&args[i], "auth") && i + 1 < args.len() {
                out.push(i + 1);
                break;
            }
            if is(&args[i], "auth2") && i + 2 < args.len() {
                out.extend([i + 1, i + 2]);
                break;
            }
        }
        return out;
    }
    if is(name, "config") && args.len() > 2 && is(&args[1], "set") {
        let mut out = Vec::new();
        let mut i = 2;
        while i + 1 < args.len() {
            let p = crate::config::find_param(&String::from_utf8_lossy(&args[i]));
            if p.is_some_and(|p| p.has(crate::config::table::SENSITIVE)) {
                out.push(i + 1);
            }
            i += 2;
        }
        return out;
    }
    if is(name, "acl") && args.len() > 2 && is(&args[1], "setuser") {
        return (2..args.len()).collect();
    }
    Vec::new()
}

/// Append `s` quoted as Redis's sdscatrepr.
pub fn repr_into(out: &mut Vec<u8>, s: &[u8]) {
    out.push(b'"');
    for &c in s {
        match c {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'"' => out.extend_from_slice(b"\\\""),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            7 => out.extend_from_slice(b"\\a"),
            8 => out.extend_from_slice(b"\\b"),
            c if c.is_ascii_graphic() || c == b' ' => out.push(c),
            c => out.extend_from_slice(format!("\\x{c:02x}").as_bytes()),
        }
    }
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(v: &[&str]) -> Vec<Bytes> {
        v.iter().map(|s| Bytes::copy_from_slice(s.as_bytes())).collect()
    }

    #[test]
    fn redaction() {
        assert_eq!(redacted_args(&args(&["AUTH", "u", "p"])), vec![1, 2]);
        assert_eq!(redacted_args(&args(&["hello", "2", "AUTH", "u", "p"])), vec![3, 4]);
        assert_eq!(redacted_args(&args(&["migrate", "h", "1", "k", "9", "5000", "AUTH2", "u", "p"])), vec![7, 8]);
        assert_eq!(redacted_args(&args(&["config", "set", "masterauth", "x", "hz", "5"])), vec![3]);
        assert!(redacted_args(&args(&["get", "k"])).is_empty());
        let mut out = Vec::new();
        repr_into(&mut out, b"a\"b\x01");
        assert_eq!(out, b"\"a\\\"b\\x01\"");
    }
}
