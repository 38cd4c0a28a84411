//! The ACL LOG: denied commands, keys, channels and authentications, newest first, similar
//! events within a minute grouped into one entry with a count (Redis 7.2's addACLLogEntry:
//! each new entry gets the next id of a counter that ACL LOG RESET does not reset, and keeps
//! its creation time).

use std::collections::VecDeque;

/// Why an entry was logged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    Command,
    Key,
    Channel,
    Auth,
}

impl Reason {
    pub fn name(self) -> &'static str {
        match self {
            Reason::Command => "command",
            Reason::Key => "key",
            Reason::Channel => "channel",
            Reason::Auth => "auth",
        }
    }
}

/// Where the denied command ran.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Context {
    Toplevel,
    Multi,
    Lua,
}

impl Context {
    pub fn name(self) -> &'static str {
        match self {
            Context::Toplevel => "toplevel",
            Context::Multi => "multi",
            Context::Lua => "lua",
        }
    }
}

#[derive(Clone, Debug)]
pub struct Entry {
    pub count: u64,
    pub reason: Reason,
    pub context: Context,
    /// The command's full name, the key, the channel, or AUTH/HELLO as typed.
    pub object: Vec<u8>,
    pub username: Vec<u8>,
    /// Unix milliseconds of the last event.
    pub ctime_ms: i64,
    /// Unix milliseconds of the first event (set by [`AclLog::add`]).
    pub created_ms: i64,
    /// The entry's number, counting every entry created since the server started (set by
    /// [`AclLog::add`]).
    pub entry_id: u64,
    /// CLIENT LIST line of the client of the last event.
    pub client_info: String,
}

/// Events this close together (ms) are grouped.
const GROUPING_MS: i64 = 60_000;
/// How many recent entries are looked at for grouping.
const SCAN: usize = 10;

#[derive(Default)]
pub struct AclLog {
    /// Newest first.
    entries: VecDeque<Entry>,
    /// Entries created so far (Redis's ACLLogEntryCount): the next entry's id.
    created: u64,
}

impl AclLog {
    /// Add an event, grouping it with a similar recent one; keep at most `max_len` entries.
    pub fn add(&mut self, mut e: Entry, max_len: usize) {
        let similar = |x: &Entry| {
            x.reason == e.reason
                && x.context == e.context
                && (x.ctime_ms - e.ctime_ms).abs() <= GROUPING_MS
                && x.object == e.object
                && x.username == e.username
        };
        if let Some(i) = self.entries.iter().take(SCAN).position(similar) {
            if let Some(mut m) = self.entries.remove(i) {
                m.client_info = e.client_info;
                m.ctime_ms = e.ctime_ms;
                m.count += 1;
                self.entries.push_front(m);
            }
            return;
        }
        e.entry_id = self.created;
        e.created_ms = e.ctime_ms;
        self.created += 1;
        self.entries.push_front(e);
        self.entries.truncate(max_len);
    }

    pub fn reset(&mut self) {
        self.entries.clear();
    }

    /// The newest `n` entries.
    pub fn newest(&self, n: usize) -> impl Iterator<Item = &Entry> {
        self.entries.iter().take(n)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(object: &str, t: i64) -> Entry {
        Entry {
            count: 1,
            reason: Reason::Command,
            context: Context::Toplevel,
            object: object.as_bytes().to_vec(),
            username: b"u".to_vec(),
            ctime_ms: t,
            created_ms: 0,
            entry_id: 0,
            client_info: format!("at {t}"),
        }
    }

    #[test]
    fn groups_similar_events_and_trims() {
        let mut log = AclLog::default();
        log.add(entry("get", 0), 5);
        log.add(entry("set", 1), 5);
        log.add(entry("get", 2), 5);
        assert_eq!(log.len(), 2);
        let first = log.newest(1).next().unwrap();
        assert_eq!((first.object.as_slice(), first.count, first.client_info.as_str()), (&b"get"[..], 2, "at 2"));
        // Grouped: the entry keeps its id and creation time, its last update moves on.
        assert_eq!((first.entry_id, first.created_ms, first.ctime_ms), (0, 0, 2));
        assert_eq!(log.newest(2).nth(1).map(|e| (e.entry_id, e.created_ms)), Some((1, 1)));
        // Too far apart: a new entry.
        log.add(entry("get", 70_000), 5);
        assert_eq!(log.len(), 3);
        for i in 0..10 {
            log.add(entry(&format!("c{i}"), 70_000), 5);
        }
        assert_eq!(log.len(), 5);
        // max_len 0 keeps nothing.
        log.add(entry("x", 0), 0);
        assert!(log.is_empty());
        // RESET does not restart the ids.
        log.reset();
        log.add(entry("y", 0), 5);
        assert_eq!(log.newest(1).next().map(|e| e.entry_id), Some(14));
    }
}
