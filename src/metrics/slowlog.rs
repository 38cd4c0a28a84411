//! The slow log (SLOWLOG GET/LEN/RESET): commands that ran longer than
//! `slowlog-log-slower-than` microseconds, newest first, at most `slowlog-max-len` of them. As
//! Redis stores them: at most 32 arguments (the last slot then says how many more there were),
//! each cut to 128 bytes ("... (N more bytes)"), secrets replaced by "(redacted)", with the
//! client's address and name.

use bytes::Bytes;
use parking_lot::Mutex;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};

const MAX_ARGC: usize = 32;
const MAX_STRING: usize = 128;

/// One logged command.
#[derive(Clone, Debug)]
pub struct SlowEntry {
    pub id: u64,
    /// Unix time (seconds) when it was logged.
    pub time: i64,
    pub duration_us: u64,
    pub args: Vec<Bytes>,
    pub peer: String,
    pub name: Bytes,
}

#[derive(Default)]
pub struct SlowLog {
    entries: Mutex<VecDeque<SlowEntry>>,
    next_id: AtomicU64,
}

/// The arguments as the slow log keeps them.
fn trimmed(args: &[Bytes], redact: &[usize]) -> Vec<Bytes> {
    let argc = args.len().min(MAX_ARGC);
    let mut out = Vec::with_capacity(argc);
    for (i, a) in args.iter().enumerate().take(argc) {
        if argc != args.len() && i == argc - 1 {
            out.push(Bytes::from(format!("... ({} more arguments)", args.len() - argc + 1)));
        } else if redact.contains(&i) {
            out.push(Bytes::from_static(b"(redacted)"));
        } else if a.len() > MAX_STRING {
            let mut s = a[..MAX_STRING].to_vec();
            s.extend_from_slice(format!("... ({} more bytes)", a.len() - MAX_STRING).as_bytes());
            out.push(Bytes::from(s));
        } else {
            // A copy, not a slice of the request: a slice keeps the whole read buffer it came
            // from alive (an XADD with two 500 MB fields kept 1 GB per entry).
            out.push(Bytes::copy_from_slice(a));
        }
    }
    out
}

impl SlowLog {
    /// Log a command if it ran at least `slower_than` µs (negative: the log is off), keeping
    /// at most `max_len` entries.
    #[allow(clippy::too_many_arguments)]
    pub fn push_if_needed(
        &self,
        slower_than: i64,
        max_len: usize,
        duration_us: u64,
        args: &[Bytes],
        redact: &[usize],
        peer: &str,
        name: &[u8],
    ) {
        if slower_than < 0 || duration_us < slower_than as u64 {
            return;
        }
        let entry = SlowEntry {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            time: std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64),
            duration_us,
            args: trimmed(args, redact),
            peer: peer.to_string(),
            name: Bytes::copy_from_slice(name),
        };
        let mut e = self.entries.lock();
        e.push_front(entry);
        e.truncate(max_len);
    }

    /// The newest `count` entries (None: all).
    pub fn get(&self, count: Option<usize>) -> Vec<SlowEntry> {
        let e = self.entries.lock();
        e.iter().take(count.unwrap_or(usize::MAX)).cloned().collect()
    }

    pub fn len(&self) -> usize {
        self.entries.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn reset(&self) {
        self.entries.lock().clear();
    }

    /// CONFIG SET slowlog-max-len: drop what no longer fits.
    pub fn trim(&self, max_len: usize) {
        self.entries.lock().truncate(max_len);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(v: &[&str]) -> Vec<Bytes> {
        v.iter().map(|s| Bytes::copy_from_slice(s.as_bytes())).collect()
    }

    #[test]
    fn an_entry_does_not_keep_the_request_alive() {
        // The arguments are slices of the request; the entry's are copies.
        let request = Bytes::from(b"XADD s * 1 ".repeat(1000));
        let args = [request.slice(0..4), request.slice(5..6)];
        let kept = trimmed(&args, &[]);
        let span = request.as_ptr_range();
        assert!(kept.iter().all(|a| !span.contains(&a.as_ptr())));
        assert_eq!(kept, args);
    }

    #[test]
    fn trims_like_redis() {
        let log = SlowLog::default();
        let many: Vec<String> = (0..35).map(|i| i.to_string()).collect();
        let many: Vec<&str> = many.iter().map(String::as_str).collect();
        log.push_if_needed(0, 10, 5, &args(&many), &[], "a:1", b"");
        let e = &log.get(None)[0];
        assert_eq!(e.args.len(), 32);
        assert_eq!(e.args[31], "... (4 more arguments)");
        let long = "A".repeat(129);
        log.push_if_needed(0, 10, 5, &args(&["set", &long, "pw"]), &[2], "a:1", b"n");
        let e = &log.get(Some(1))[0];
        assert_eq!(e.args[1], format!("{}... (1 more bytes)", "A".repeat(128)));
        assert_eq!(e.args[2], "(redacted)");
        assert_eq!(e.id, 1);
        log.push_if_needed(100, 10, 5, &args(&["get"]), &[], "a:1", b"");
        assert_eq!(log.len(), 2, "faster than the threshold");
        log.push_if_needed(-1, 10, 500, &args(&["get"]), &[], "a:1", b"");
        assert_eq!(log.len(), 2, "disabled");
    }
}
