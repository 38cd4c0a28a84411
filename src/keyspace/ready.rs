//! Readiness for blocked clients, signalled where Redis 7.2 signals it (signalKeyAsReady /
//! signalDeletedKeyAsReady), by the keyspace itself so no write path can miss it:
//! - a key *added* to a database holding a list, sorted set or stream (a new key, also the
//!   destination of RENAME, MOVE, COPY, RESTORE, which replace by delete + add);
//! - a stream that got entries or lost a group (XADD, XGROUP DESTROY: [`Db::signal_ready`]);
//! - a key deleted or overwritten in place (SET, SORT ... STORE, ZUNIONSTORE... over an
//!   existing key; DEL, expiry, eviction), which matters only to the clients that also wait for
//!   their key to go away (XREADGROUP): it is `gone`;
//! - SWAPDB, FLUSHDB/FLUSHALL and a dataset loaded whole (DEBUG RELOAD, a full sync), by a scan
//!   of the keys clients wait on ([`Db::swap_dbs`], [`Db::flush`], [`Db::adopt`]).
//!
//! Overwriting an existing key in place wakes nobody waiting for its new type, as in Redis: a
//! client blocked on a key that became a string, then a list by `SORT ... STORE`, stays blocked.
//! A view records readiness only while some client waits for the value's kind ([`Waiting`],
//! Redis's blocked_clients_by_type), so nothing is recorded when no client is blocked. The
//! pipeline hands a command's records to the blocking registry once its locks are released; a
//! view dropped with records left (active expiry, say) hands them over itself.

use super::Db;
use crate::types::Value;
use crate::util::lean_vec::LeanVec;
use bytes::Bytes;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// The kinds of value a client can block for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WaitKind {
    List = 0,
    ZSet = 1,
    Stream = 2,
}

impl WaitKind {
    /// The kind a value is, when a client can block for it.
    pub fn of(v: &Value) -> Option<WaitKind> {
        match v {
            Value::List(_) => Some(WaitKind::List),
            Value::ZSet(_) => Some(WaitKind::ZSet),
            Value::Stream(_) => Some(WaitKind::Stream),
            _ => None,
        }
    }
}

/// How many clients are blocked for each kind (Redis's blocked_clients_by_type), kept by the
/// blocking registry and read by the views before they record anything; and how many changes
/// to keys of those kinds the views announced (see [`Waiting::announce`]).
#[derive(Default)]
pub struct Waiting([AtomicUsize; 3], AtomicU64);

impl Waiting {
    /// A key of a kind clients can wait for was added, changed for its readers or went away:
    /// counted before the waiters are looked at, so that a client which found nothing and
    /// registers after the look (missing this change) sees the count moved and looks again
    /// (the blocking registry's epoch adds it).
    fn announce(&self) {
        self.1.fetch_add(1, Ordering::SeqCst);
    }

    /// How many changes were announced so far.
    pub fn announced(&self) -> u64 {
        self.1.load(Ordering::SeqCst)
    }

    /// A client starts (`+1`) or stops (`-1`) waiting for `kind`.
    pub fn add(&self, kind: WaitKind, delta: isize) {
        let c = &self.0[kind as usize];
        if delta >= 0 {
            c.fetch_add(delta as usize, Ordering::SeqCst);
        } else {
            c.fetch_sub(delta.unsigned_abs(), Ordering::SeqCst);
        }
    }

    /// Whether some client waits for `kind`.
    pub fn any(&self, kind: WaitKind) -> bool {
        self.0[kind as usize].load(Ordering::SeqCst) > 0
    }

    /// Whether some client waits for anything.
    pub fn any_kind(&self) -> bool {
        self.0.iter().any(|c| c.load(Ordering::SeqCst) > 0)
    }
}

/// A key clients wait on, its database, and what it held at a scan: `None` when missing,
/// `Some(kind)` when present (`Some(None)`: a kind nobody can wait for).
pub type WaitedKey = (usize, Bytes, Option<Option<WaitKind>>);

/// A key that became ready: `gone` when it was deleted or overwritten (it wakes only the clients
/// that also wait for their key to go away, as Redis's signalDeletedKeyAsReady).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ready {
    pub db: usize,
    pub key: Bytes,
    pub gone: bool,
}

/// The blocking registry as the keyspace sees it (installed by the server, see
/// [`super::Keyspace::install_blocked`]).
pub trait BlockedKeys: Send + Sync {
    /// The keys some client waits on in database `db`.
    fn waited_keys(&self, db: usize) -> Vec<Bytes>;
    /// Readiness recorded by a view no command took it from (active expiry...).
    fn ready(&self, signals: &[Ready]);
}

/// Record that `key` of database `db` was added (or went away: `gone`) holding a value of
/// `kind`, if some client waits for that kind. (A function of the fields it needs, for the
/// views' code that holds a borrow of an entry.)
pub(super) fn record(
    list: &mut LeanVec<Ready>,
    ks: &super::Keyspace,
    db: usize,
    key: &[u8],
    kind: Option<WaitKind>,
    gone: bool,
) {
    let Some(kind) = kind else { return };
    ks.waiting.announce();
    if ks.waiting.any(kind) {
        push(list, db, key, gone);
    }
}

fn push(list: &mut LeanVec<Ready>, db: usize, key: &[u8], gone: bool) {
    if list.iter().any(|r| r.db == db && r.gone == gone && r.key[..] == *key) {
        return;
    }
    list.push(Ready { db, key: Bytes::copy_from_slice(key), gone });
}

impl Db<'_> {
    /// `key` was added holding a value of `kind` (Redis's dbAdd → signalKeyAsReady).
    pub(super) fn note_added(&mut self, key: &[u8], kind: Option<WaitKind>) {
        record(&mut self.ready, self.ks, self.index, key, kind, false);
    }

    /// `key`, holding a value of `kind`, was deleted or overwritten (signalDeletedKeyAsReady).
    pub(super) fn note_gone(&mut self, key: &[u8], kind: Option<WaitKind>) {
        record(&mut self.ready, self.ks, self.index, key, kind, true);
    }

    /// A stream got new entries or lost a consumer group (XADD, XGROUP DESTROY): its readers are
    /// signalled though the key was not added.
    pub fn signal_ready(&mut self, key: &[u8]) {
        record(&mut self.ready, self.ks, self.index, key, Some(WaitKind::Stream), false);
    }

    /// Keep readiness taken from this view to be told when it is dropped (a command replayed
    /// from the AOF, whose records no pipeline tells).
    pub fn defer_ready(&mut self, mut ready: LeanVec<Ready>) {
        for r in ready.take() {
            push(&mut self.ready, r.db, &r.key, r.gone);
        }
    }

    /// The readiness the current command recorded (see the module's comment).
    pub fn take_ready(&mut self) -> LeanVec<Ready> {
        std::mem::take(&mut self.ready)
    }

    /// The waited keys of databases `dbs` with the kind of what each holds now (expired or not,
    /// as Redis's scans look at the dict).
    pub(super) fn waited_kinds(&mut self, dbs: &[usize]) -> Vec<WaitedKey> {
        let Some(blocked) = self.ks.blocked.get().cloned() else {
            return Vec::new();
        };
        if !self.ks.waiting.any_kind() {
            return Vec::new();
        }
        let here = self.index;
        let mut out = Vec::new();
        for &db in dbs {
            self.index = db;
            for key in blocked.waited_keys(db) {
                let kind = self.peek_raw(&key).map(|e| WaitKind::of(&e.value));
                out.push((db, key, kind));
            }
        }
        self.index = here;
        out
    }

    /// After databases were emptied or replaced (FLUSHDB, FLUSHALL, SWAPDB, a dataset loaded
    /// whole): `before` is [`Db::waited_kinds`] taken before. A waited key that was there and
    /// is gone, or changed type, is `gone` (Redis's scanDatabaseForDeletedKeys); with `rescan`
    /// (SWAPDB), one that now holds a kind some client waits for is ready
    /// (scanDatabaseForReadyKeys).
    pub(super) fn after_replace(&mut self, before: Vec<WaitedKey>, rescan: bool) {
        let here = self.index;
        for (db, key, was) in before {
            self.index = db;
            let now = self.peek_raw(&key).map(|e| WaitKind::of(&e.value));
            let waited = |k: Option<Option<WaitKind>>| k.flatten().filter(|&k| self.ks.waiting.any(k));
            if was.is_some() && was != now && waited(was).is_some() {
                push(&mut self.ready, db, &key, true);
            }
            if rescan && waited(now).is_some() {
                push(&mut self.ready, db, &key, false);
            }
        }
        self.index = here;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keyspace::Keyspace;
    use crate::types::{Entry, StrValue};
    use std::sync::Arc;

    fn list() -> Value {
        Value::List(Default::default())
    }

    fn string() -> Value {
        Value::Str(StrValue::from_bytes(b"s"))
    }

    fn ready(db: usize, key: &'static [u8], gone: bool) -> Ready {
        Ready { db, key: Bytes::from_static(key), gone }
    }

    /// A registry where clients wait on `k` in databases 0 and 1.
    struct Waiters;

    impl BlockedKeys for Waiters {
        fn waited_keys(&self, db: usize) -> Vec<Bytes> {
            if db < 2 {
                vec![Bytes::from_static(b"k")]
            } else {
                Vec::new()
            }
        }
        fn ready(&self, _: &[Ready]) {}
    }

    fn keyspace(kind: WaitKind) -> Keyspace {
        let ks = Keyspace::new(4);
        ks.waiting.add(kind, 1);
        ks.install_blocked(Arc::new(Waiters));
        ks
    }

    #[test]
    fn nothing_is_recorded_while_no_client_waits_but_the_change_is_announced() {
        let ks = Keyspace::new(2);
        let before = ks.waiting.announced();
        let mut db = ks.lock_all(0);
        db.set(b"k", string(), false);
        assert_eq!(ks.waiting.announced(), before, "a string is no kind a client waits for");
        db.set(b"l", list(), false);
        db.delete(b"l");
        assert!(db.take_ready().is_empty());
        // A client that found nothing and registers after these looks sees the count moved.
        assert_eq!(ks.waiting.announced(), before + 2);
    }

    #[test]
    fn an_added_key_is_ready_an_overwrite_is_not() {
        let ks = keyspace(WaitKind::List);
        let mut db = ks.lock_all(0);
        db.set(b"k", string(), false);
        assert!(db.take_ready().is_empty(), "a string wakes nobody");
        db.set(b"k", list(), false);
        assert!(db.take_ready().is_empty(), "an overwrite in place is no addition");
        db.delete(b"k");
        db.set(b"k", list(), false);
        assert_eq!(db.take_ready().take(), vec![ready(0, b"k", true), ready(0, b"k", false)]);
        // Created by a write that finds no key; replaced whole (RENAME, COPY ... REPLACE).
        db.get_or_insert_with(b"n", list);
        db.insert_entry(b"k", Entry::new(list(), 0));
        assert_eq!(db.take_ready().take(), vec![ready(0, b"n", false), ready(0, b"k", true), ready(0, b"k", false)]);
        // A key loaded from a file signals nothing but the key it replaces (and says it
        // replaced one).
        assert!(!db.load_entry(b"k", Entry::new(list(), 0)));
        assert_eq!(db.take_ready().take(), vec![ready(0, b"k", true)]);
    }

    #[test]
    fn a_kind_nobody_waits_for_is_not_recorded() {
        let ks = keyspace(WaitKind::ZSet);
        let mut db = ks.lock_all(0);
        db.set(b"k", list(), false);
        db.signal_ready(b"k");
        assert!(db.take_ready().is_empty());
    }

    #[test]
    fn swapdb_signals_what_went_away_and_what_is_there_now() {
        let ks = keyspace(WaitKind::List);
        let mut db = ks.lock_all(0);
        db.set(b"k", list(), false);
        db.index = 1;
        db.set(b"k", string(), false);
        db.take_ready();
        db.swap_dbs(0, 1);
        // Database 0 lost its list (gone) and got a string; database 1 got the list (ready).
        assert_eq!(db.take_ready().take(), vec![ready(0, b"k", true), ready(1, b"k", false)]);
        db.flush(true);
        assert_eq!(db.take_ready().take(), vec![ready(1, b"k", true)]);
    }
}
