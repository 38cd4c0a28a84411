//! The debugger's I/O with its client: the log written (Redis's 5 s send timeout) and the
//! commands awaited in slices, to notice a disconnect, CLIENT KILL, SCRIPT KILL or shutdown;
//! both done by the connection task through the script's stack (`fiber::console`). Also the
//! parsing of those commands as Redis's ldbReplParseCommand does (with the C-string helpers
//! it relies on).

use std::sync::atomic::Ordering;
use std::time::Duration;

use super::Session;
use crate::scripting::{call, fiber};
use crate::session::console::{ConsoleDone, ConsoleIo};
use crate::util::bytetext::c_str;

/// How long a write of the log may wait for the client (Redis's send timeout).
const SEND_TIMEOUT: Duration = Duration::from_secs(5);
/// Waits for input are cut in slices this long, to notice a shutdown or CLIENT KILL.
const READ_SLICE: Duration = Duration::from_millis(100);

impl Session<'_> {
    /// Redis's ldbSendLogs: the log as an array of status replies (CR and LF as spaces).
    pub(super) fn send_logs(&mut self) {
        let bytes = logs_reply(&mut self.logs);
        if self.gone {
            return;
        }
        // As Redis, a write that fails is not acted upon: the next read finds the client gone.
        if console(ConsoleIo::Write { bytes, within: SEND_TIMEOUT }).is_none() {
            self.gone = true;
        }
    }

    /// Wait for more input. Err: the client is gone, or the server shuts down.
    pub(super) fn read_more(&mut self) -> Result<(), Gone> {
        if self.gone {
            return Err(Gone::Client);
        }
        loop {
            if self.handle.is_killed()
                || self.server.is_shutting_down()
                || self.server.shutdown_pending.load(Ordering::SeqCst)
            {
                self.gone = true;
                return Err(Gone::Client);
            }
            if self.server.scripting.busy.kill.load(Ordering::SeqCst) {
                return Err(Gone::Killed);
            }
            match console(ConsoleIo::Read { within: READ_SLICE }) {
                Some(ConsoleDone::Input(bytes)) => {
                    self.cbuf.extend_from_slice(&bytes);
                    return Ok(());
                }
                Some(ConsoleDone::Idle) => {}
                _ => {
                    self.gone = true;
                    return Err(Gone::Client);
                }
            }
        }
    }
}

/// Have the connection do `io` (None: there is no client to talk to). The script is suspended
/// meanwhile and the worker's other tasks run: as when it steps aside, the running script's
/// state is taken away from them.
fn console(io: ConsoleIo) -> Option<ConsoleDone> {
    let active = call::deactivate();
    let done = fiber::console(io);
    call::reactivate(active);
    done
}

/// Why the debugger stopped reading.
pub(super) enum Gone {
    /// The client closed the connection (or was killed, or the server shuts down).
    Client,
    /// SCRIPT KILL from another client.
    Killed,
}

/// The log as Redis's ldbSendLogs writes it; the log is emptied.
fn logs_reply(logs: &mut Vec<Vec<u8>>) -> Vec<u8> {
    let mut out = format!("*{}\r\n", logs.len()).into_bytes();
    for entry in logs.drain(..) {
        out.push(b'+');
        out.extend(entry.iter().map(|&c| if c == b'\r' || c == b'\n' { b' ' } else { c }));
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// C's atoi as glibc has it: (int) strtol(s, NULL, 10).
pub(super) fn atoi(s: &[u8]) -> i32 {
    let s = c_str(s);
    let mut i = s.iter().take_while(|c| matches!(c, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)).count();
    let neg = match s.get(i) {
        Some(b'-') => {
            i += 1;
            true
        }
        Some(b'+') => {
            i += 1;
            false
        }
        _ => false,
    };
    let mut n: i64 = 0;
    for &c in s[i..].iter().take_while(|c| c.is_ascii_digit()) {
        n = n.saturating_mul(10).saturating_add((c - b'0') as i64);
    }
    (if neg { n.saturating_neg() } else { n }) as i32
}

/// Redis's ldbReplParseCommand: one multibulk command off the front of `buf`. Ok(None): more
/// input is needed; Err: a protocol error. As Redis, `buf` is searched as a C string (a NUL
/// ends it) and limits arguments to 1024 of up to 1024 bytes each.
pub(super) fn parse_command(buf: &[u8]) -> Result<Option<Vec<Vec<u8>>>, ()> {
    if buf.is_empty() {
        return Ok(None);
    }
    let cstr = c_str(buf);
    let find_crlf = |from: usize| -> Option<usize> {
        cstr.get(from..).and_then(|s| s.windows(2).position(|w| w == b"\r\n")).map(|i| from + i)
    };
    let Some(star) = cstr.iter().position(|&c| c == b'*') else {
        return Err(());
    };
    let Some(crlf) = find_crlf(star) else {
        return Ok(None);
    };
    let argc = atoi(&buf[star + 1..crlf]);
    if argc <= 0 || argc > 1024 {
        return Err(());
    }
    let mut p = crlf + 2;
    let mut argv = Vec::with_capacity(argc as usize);
    while argv.len() < argc as usize {
        match buf.get(p) {
            None | Some(0) => return Ok(None),
            Some(b'$') => {}
            Some(_) => return Err(()),
        }
        let Some(crlf) = find_crlf(p) else {
            return Ok(None);
        };
        let len = atoi(&buf[p + 1..crlf]);
        if len <= 0 || len > 1024 {
            return Err(());
        }
        p = crlf + 2;
        let len = len as usize;
        if p + len + 2 > buf.len() {
            return Ok(None);
        }
        argv.push(buf[p..p + len].to_vec());
        p += len;
        if &buf[p..p + 2] != b"\r\n" {
            return Err(());
        }
        p += 2;
    }
    Ok(Some(argv))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_parse_as_redis_does() {
        let ok = |b: &[u8]| parse_command(b);
        assert_eq!(ok(b""), Ok(None));
        assert_eq!(ok(b"*1\r\n$1\r\ns\r\n"), Ok(Some(vec![b"s".to_vec()])));
        assert_eq!(ok(b"junk*2\r\n$1\r\np\r\n$1\r\na\r\n"), Ok(Some(vec![b"p".to_vec(), b"a".to_vec()])));
        assert_eq!(ok(b"*2\r\n$1\r\np\r\n"), Ok(None));
        assert_eq!(ok(b"*2\r\n$1\r\np\r\n$1\r\n"), Ok(None));
        assert_eq!(ok(b"*1\r"), Ok(None));
        assert_eq!(ok(b"hello\r\n"), Err(()));
        assert_eq!(ok(b"*0\r\n"), Err(()));
        assert_eq!(ok(b"*1025\r\n"), Err(()));
        assert_eq!(ok(b"*1\r\n$0\r\n\r\n"), Err(()));
        assert_eq!(ok(b"*1\r\n$1025\r\n"), Err(()));
        assert_eq!(ok(b"*1\r\n+s\r\n"), Err(()));
        assert_eq!(ok(b"*1\r\n$1\r\nsx\r\n"), Err(()));
        // A NUL inside an argument is data; NUL where a '$' should be means "read more".
        assert_eq!(ok(b"*1\r\n$3\r\na\0b\r\n"), Ok(Some(vec![b"a\0b".to_vec()])));
        assert_eq!(ok(b"*1\r\n\0"), Ok(None));
    }

    #[test]
    fn atoi_as_glibc() {
        assert_eq!(atoi(b"12"), 12);
        assert_eq!(atoi(b" -3x"), -3);
        assert_eq!(atoi(b"+7"), 7);
        assert_eq!(atoi(b"x"), 0);
        assert_eq!(atoi(b""), 0);
        assert_eq!(atoi(b"99999999999999999999"), -1);
    }

    #[test]
    fn logs_as_status_replies() {
        let mut logs = vec![b"a\r\nb".to_vec(), Vec::new()];
        assert_eq!(logs_reply(&mut logs), b"*2\r\n+a  b\r\n+\r\n");
        assert!(logs.is_empty());
    }
}
