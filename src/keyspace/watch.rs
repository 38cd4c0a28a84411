//! WATCH bookkeeping: which transactions watch which keys. A write to a watched key (or its
//! deletion by expiry, or a FLUSHDB/FLUSHALL/SWAPDB) marks the watching clients' transactions
//! as dirty, and their EXEC then fails, as in Redis.

use bytes::Bytes;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

struct Watcher {
    /// The client's "transaction is dirty" flag.
    dirty: Arc<AtomicBool>,
    /// The watched key is logically expired (it was when watched, or became so by a SWAPDB):
    /// its deletion is not a change (Redis's `wk->expired`). Shared with the client, whose EXEC
    /// reads it.
    expired: Arc<AtomicBool>,
}

#[derive(Default)]
pub struct Watches {
    map: Mutex<HashMap<(usize, Bytes), Vec<Watcher>>>,
    count: AtomicUsize,
}

impl Watches {
    /// Whether anything is watched (writers skip the bookkeeping otherwise).
    pub fn any(&self) -> bool {
        self.count.load(Ordering::Relaxed) > 0
    }

    pub fn watch(&self, db: usize, key: &[u8], dirty: &Arc<AtomicBool>, expired: &Arc<AtomicBool>) {
        let mut m = self.map.lock();
        let list = m.entry((db, Bytes::copy_from_slice(key))).or_default();
        if list.iter().any(|w| Arc::ptr_eq(&w.dirty, dirty)) {
            return;
        }
        list.push(Watcher { dirty: dirty.clone(), expired: expired.clone() });
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    pub fn unwatch(&self, db: usize, key: &[u8], dirty: &Arc<AtomicBool>) {
        let mut m = self.map.lock();
        let k = (db, Bytes::copy_from_slice(key));
        if let Some(list) = m.get_mut(&k) {
            let before = list.len();
            list.retain(|w| !Arc::ptr_eq(&w.dirty, dirty));
            self.count.fetch_sub(before - list.len(), Ordering::Relaxed);
            if list.is_empty() {
                m.remove(&k);
            }
        }
    }

    /// A key was modified (`gone`: it no longer exists — deleted by expiry, or by a command —
    /// which does not count for clients that watched it when it was already expired, Redis's
    /// touchWatchedKey).
    pub fn touch(&self, db: usize, key: &[u8], gone: bool) {
        self.touch_with(db, key, |expired| !(gone && expired.load(Ordering::SeqCst)));
    }

    /// Touch `key` for the watchers for which `changes(expired flag)` says it changed (the
    /// closure may also update the watcher's expired flag).
    pub fn touch_with(&self, db: usize, key: &[u8], changes: impl Fn(&AtomicBool) -> bool) {
        let m = self.map.lock();
        if let Some(list) = m.get(&(db, Bytes::copy_from_slice(key))) {
            for w in list {
                if changes(&w.expired) {
                    w.dirty.store(true, Ordering::SeqCst);
                }
            }
        }
    }

    /// The watched keys of database `db`.
    pub fn keys_in(&self, db: usize) -> Vec<Bytes> {
        self.map.lock().keys().filter(|(d, _)| *d == db).map(|(_, k)| k.clone()).collect()
    }
}
