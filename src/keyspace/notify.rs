//! Keyspace notifications (`notify-keyspace-events`): event classes, parsing of the config
//! flags, and the events a command records through [`super::Db::notify`]. The server installs a
//! sink that publishes them on `__keyspace@<db>__:<key>` and `__keyevent@<db>__:<event>`.

use std::sync::atomic::{AtomicU32, Ordering};

pub const KEYSPACE: u32 = 1 << 0;
pub const KEYEVENT: u32 = 1 << 1;
pub const GENERIC: u32 = 1 << 2;
pub const STRING: u32 = 1 << 3;
pub const LIST: u32 = 1 << 4;
pub const SET: u32 = 1 << 5;
pub const HASH: u32 = 1 << 6;
pub const ZSET: u32 = 1 << 7;
pub const EXPIRED: u32 = 1 << 8;
pub const EVICTED: u32 = 1 << 9;
pub const STREAM: u32 = 1 << 10;
pub const KEY_MISS: u32 = 1 << 11;
pub const MODULE: u32 = 1 << 12;
pub const NEW: u32 = 1 << 13;
/// `A`: every class but key-miss and new.
pub const ALL: u32 = GENERIC | STRING | LIST | SET | HASH | ZSET | EXPIRED | EVICTED | STREAM | MODULE;

/// Parse the `notify-keyspace-events` string (Redis's keyspaceEventsStringToFlags).
pub fn parse_flags(s: &str) -> Option<u32> {
    let mut f = 0;
    for c in s.chars() {
        f |= match c {
            'A' => ALL,
            'g' => GENERIC,
            '$' => STRING,
            'l' => LIST,
            's' => SET,
            'h' => HASH,
            'z' => ZSET,
            'x' => EXPIRED,
            'e' => EVICTED,
            'K' => KEYSPACE,
            'E' => KEYEVENT,
            't' => STREAM,
            'm' => KEY_MISS,
            'd' => MODULE,
            'n' => NEW,
            _ => return None,
        };
    }
    Some(f)
}

/// The canonical form CONFIG GET shows (Redis's keyspaceEventsFlagsToString, quirks included).
pub fn flags_to_string(flags: u32) -> String {
    let mut s = String::new();
    if flags & ALL == ALL {
        s.push('A');
    } else {
        for (f, c) in [
            (GENERIC, 'g'),
            (STRING, '$'),
            (LIST, 'l'),
            (SET, 's'),
            (HASH, 'h'),
            (ZSET, 'z'),
            (EXPIRED, 'x'),
            (EVICTED, 'e'),
            (STREAM, 't'),
            (MODULE, 'd'),
            (NEW, 'n'),
        ] {
            if flags & f != 0 {
                s.push(c);
            }
        }
    }
    for (f, c) in [(KEYSPACE, 'K'), (KEYEVENT, 'E'), (KEY_MISS, 'm')] {
        if flags & f != 0 {
            s.push(c);
        }
    }
    s
}

/// One recorded event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub db: usize,
    pub class: u32,
    pub name: &'static str,
    pub key: bytes::Bytes,
}

/// Where events go (the server's Pub/Sub).
pub type Sink = Box<dyn Fn(&[Event]) + Send + Sync>;

/// The current flags and the sink.
#[derive(Default)]
pub struct Notifier {
    flags: AtomicU32,
    sink: std::sync::OnceLock<Sink>,
}

impl Notifier {
    pub fn set_flags(&self, flags: u32) {
        self.flags.store(flags, Ordering::Relaxed);
    }

    /// Whether events of `class` are wanted (at least one of K/E, and the class).
    pub fn wants(&self, class: u32) -> bool {
        let f = self.flags.load(Ordering::Relaxed);
        f & (KEYSPACE | KEYEVENT) != 0 && f & class != 0
    }

    pub fn flags(&self) -> u32 {
        self.flags.load(Ordering::Relaxed)
    }

    pub fn install(&self, sink: Sink) {
        let _ = self.sink.set(sink);
    }

    pub fn emit(&self, events: &[Event]) {
        if let Some(s) = self.sink.get() {
            s(events);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_parse_like_redis() {
        assert_eq!(parse_flags("KEA"), Some(KEYSPACE | KEYEVENT | ALL));
        assert_eq!(parse_flags(""), Some(0));
        assert_eq!(parse_flags("Kx"), Some(KEYSPACE | EXPIRED));
        assert_eq!(parse_flags("KQ"), None);
        let n = Notifier::default();
        n.set_flags(parse_flags("E$").unwrap());
        assert!(n.wants(STRING));
        assert!(!n.wants(GENERIC));
    }
}
