//! Clients blocked on keys (BLPOP, BZPOPMIN, BLMOVE...). A blocked client's task is simply
//! suspended on its [`Waiter`]: it holds no thread and no lock. The registry keeps, per
//! (database, key), the FIFO of clients waiting on it.
//!
//! Waking: after a write command, the pipeline signals the keys it made ready (those Redis 7.2
//! signals: see `keyspace::ready`). A signal wakes the first waiter of the key; that client
//! re-runs its command, then passes the signal on to the waiters queued behind it (served or
//! not), and so on — so clients are served in FIFO order while data remains, as Redis goes
//! through a ready key's clients once, and a waiter that finds nothing (someone else took the
//! data) re-registers in its place. A key that went away (`gone`) is signalled only if a
//! client waiting on it also waits for that (XREADGROUP).

use crate::keyspace::ready::{BlockedKeys, Ready, WaitKind, Waiting};
use bytes::Bytes;
use parking_lot::Mutex;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// How CLIENT UNBLOCK asked a client to stop waiting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unblock {
    /// As if the timeout had expired.
    Timeout,
    /// With the error `-UNBLOCKED client unblocked via CLIENT UNBLOCK`.
    Error,
    /// The server became a replica: `-UNBLOCKED force unblock from blocking operation,
    /// instance state changed (master -> replica?)`, then the connection closes.
    StateChanged,
}

/// A client's wake-up handle (one per connection).
#[derive(Default)]
pub struct Waiter {
    notify: tokio::sync::Notify,
    /// Set when a signal picked this waiter (so other keys' signals skip it).
    woken: AtomicBool,
    /// Whether the client is currently blocked.
    blocked: AtomicBool,
    /// 0 none, 1 unblock as timeout, 2 unblock with error.
    unblock: AtomicU8,
    /// The order the client blocked in (kept while it is re-registered after a wake-up that
    /// did not serve it, so it keeps its place in every queue).
    ticket: AtomicU64,
    /// Woken with every other such waiter (see [`BlockSpec::wake_all`]).
    wake_all: AtomicBool,
    /// Also waiting for its keys to go away (see [`BlockSpec::unblock_on_nokey`]).
    on_nokey: AtomicBool,
    /// The kind of value it waits for, while blocked (counted in [`Blocking::waiting`]).
    kind: Mutex<Option<WaitKind>>,
    /// Woken and not yet done with its wake-up (counted in [`Blocking::unsettled`]).
    unsettled: AtomicBool,
    /// The keys signalled since the last [`Waiter::take_signalled`]. Redis re-runs a blocked
    /// command only when the key that became ready holds the type it waits for.
    signalled: Mutex<Vec<(usize, Bytes)>>,
}

impl Waiter {
    pub fn is_blocked(&self) -> bool {
        self.blocked.load(Ordering::SeqCst)
    }

    /// Mark a re-registered waiter as woken again (it goes on to serve itself after all): other
    /// signals skip it, and if it leaves instead, its wake-up is passed on (see
    /// [`Blocking::abandon`]).
    pub fn claim(&self) {
        self.woken.store(true, Ordering::SeqCst);
    }

    /// Whether a CLIENT UNBLOCK request is pending (not taken).
    pub fn unblock_requested(&self) -> bool {
        self.unblock.load(Ordering::SeqCst) != 0
    }

    /// Take a pending CLIENT UNBLOCK request.
    pub fn take_unblock(&self) -> Option<Unblock> {
        match self.unblock.swap(0, Ordering::SeqCst) {
            1 => Some(Unblock::Timeout),
            2 => Some(Unblock::Error),
            3 => Some(Unblock::StateChanged),
            _ => None,
        }
    }

    fn note_signal(&self, db: usize, key: &[u8]) {
        let mut signalled = self.signalled.lock();
        if !signalled.iter().any(|(d, k)| *d == db && k[..] == *key) {
            signalled.push((db, Bytes::copy_from_slice(key)));
        }
    }

    /// The keys signalled since the last call: which of its keys became ready (empty: a
    /// wake-up without a signal, to be taken as all of them).
    pub fn take_signalled(&self) -> Vec<(usize, Bytes)> {
        std::mem::take(&mut *self.signalled.lock())
    }

    /// Wait until signalled (or until a CLIENT UNBLOCK request).
    pub async fn wait(&self) {
        self.notify.notified().await;
    }
}

/// What a blocking command asks the connection to wait for.
#[derive(Debug)]
pub struct BlockSpec {
    /// (database, key) pairs to wait on.
    pub keys: Vec<(usize, Bytes)>,
    /// When to give up; `None` waits forever.
    pub deadline: Option<Instant>,
    /// The reply when the command cannot block (inside MULTI or a script): a null array
    /// (BLPOP, BZPOPMIN...) or a null bulk (BLMOVE, BRPOPLPUSH). A real timeout is always
    /// answered with a null array, as Redis's replyToBlockedClientTimedOut does.
    pub timeout_null_array: bool,
    /// Run these arguments instead of the original ones after a wake-up (XREAD with `$`
    /// replaced by the ID it resolved to).
    pub rerun_args: Option<Vec<Bytes>>,
    /// Woken by every signal of its keys together with the other such waiters, not one at a
    /// time (stream readers: every reader the new entries can serve is served).
    pub wake_all: bool,
    /// The command fails when a key is deleted or replaced, so the wait ends then too
    /// (XREADGROUP: Redis 7.2's `unblock_on_nokey`, counted in INFO's
    /// total_blocking_keys_on_nokey).
    pub unblock_on_nokey: bool,
    /// The kind of value it waits for (Redis's blocked type): only a key added with that kind
    /// of value (or signalled as a stream) can serve it.
    pub kind: WaitKind,
    /// [`Blocking::epoch`] when the command found nothing, read under its keys' locks: if it
    /// changed by the time the client is registered, a signal may have come in between and
    /// found no queue, so the command runs again at once instead of waiting.
    pub epoch: u64,
}

type Queue = VecDeque<Arc<Waiter>>;

/// A blocked client's place in the timeout count (see [`Blocking::timeout_entry`]).
pub struct TimeoutEntry<'a> {
    blocking: &'a Blocking,
    counted: bool,
}

impl Drop for TimeoutEntry<'_> {
    fn drop(&mut self) {
        if self.counted {
            self.blocking.timed.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

/// The registry of blocked clients.
#[derive(Default)]
pub struct Blocking {
    queues: Mutex<HashMap<(usize, Bytes), Queue>>,
    blocked: AtomicUsize,
    /// Clients held back by CLIENT PAUSE (Redis counts them as blocked too).
    postponed: AtomicUsize,
    /// Blocked clients that wait with a timeout (Redis's clients_timeout_table).
    timed: AtomicUsize,
    next_ticket: AtomicU64,
    /// Woken clients that have not yet re-run their command. Redis serves the clients a write
    /// unblocked before it reads the next command, so the writer's connection waits for this
    /// to reach zero before going on (see `server::connection`).
    unsettled: AtomicUsize,
    /// Blocked clients per kind of value, shared with the keyspace (see `keyspace::ready`).
    waiting: Arc<Waiting>,
    /// Counts signals (see [`BlockSpec::epoch`]).
    epoch: AtomicU64,
}

impl Blocking {
    /// A registry that keeps `waiting` (the keyspace's) up to date.
    pub fn new(waiting: Arc<Waiting>) -> Self {
        Blocking { waiting, ..Default::default() }
    }

    /// The number of signals so far, and of the changes to keys of a kind a client can wait
    /// for that the keyspace announced (see [`BlockSpec::epoch`]; both only grow, so the sum
    /// moves when either does). The announcements cover a write that found nobody waiting just
    /// before a client that had found nothing registered: that client sees the count moved.
    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::SeqCst).wrapping_add(self.waiting.announced())
    }

    /// Whether any client is blocked (a cluster slot change wakes them all only then).
    pub fn any(&self) -> bool {
        self.blocked.load(Ordering::Relaxed) > 0
    }

    /// Keys some client is blocked on (INFO's total_blocking_keys).
    pub fn blocking_keys(&self) -> usize {
        self.queues.lock().len()
    }

    /// Keys some client is blocked on that also wake it when they go away (INFO's
    /// total_blocking_keys_on_nokey).
    pub fn blocking_keys_on_nokey(&self) -> usize {
        let q = self.queues.lock();
        q.values().filter(|queue| queue.iter().any(|w| w.on_nokey.load(Ordering::SeqCst))).count()
    }

    pub fn blocked_clients(&self) -> usize {
        self.blocked.load(Ordering::Relaxed) + self.postponed.load(Ordering::Relaxed)
    }

    /// Blocked clients with a timeout (INFO's clients_in_timeout_table).
    pub fn clients_with_timeout(&self) -> usize {
        self.timed.load(Ordering::Relaxed)
    }

    /// A client blocks until `deadline` (BLPOP's, WAIT's...): counted while the guard lives,
    /// as Redis keeps such clients in its timeout table; a wait without one is not.
    pub fn timeout_entry(&self, deadline: Option<Instant>) -> TimeoutEntry<'_> {
        if deadline.is_some() {
            self.timed.fetch_add(1, Ordering::Relaxed);
        }
        TimeoutEntry { blocking: self, counted: deadline.is_some() }
    }

    /// Whether some woken client has not yet re-run its command.
    pub fn has_unsettled(&self) -> bool {
        self.unsettled.load(Ordering::Acquire) > 0
    }

    /// `w` was woken: count it until it [settles](Blocking::settle).
    fn wake(&self, w: &Waiter) {
        if !w.unsettled.swap(true, Ordering::SeqCst) {
            self.unsettled.fetch_add(1, Ordering::SeqCst);
        }
        w.notify.notify_one();
    }

    /// `w` is done with its wake-up (it re-ran its command, timed out, or left).
    pub fn settle(&self, w: &Waiter) {
        if w.unsettled.swap(false, Ordering::SeqCst) {
            self.unsettled.fetch_sub(1, Ordering::SeqCst);
        }
    }

    /// CLIENT UNBLOCK (and a server turned replica): wake `w` to stop waiting `how`. Counted as a
    /// wake-up, so the caller's next command waits for it to reply, as Redis unblocks it within
    /// CLIENT UNBLOCK. Returns false when the client is not blocked.
    pub fn request_unblock(&self, w: &Waiter, how: Unblock) -> bool {
        if !w.is_blocked() {
            return false;
        }
        let code = match how {
            Unblock::Timeout => 1,
            Unblock::Error => 2,
            Unblock::StateChanged => 3,
        };
        w.unblock.store(code, Ordering::SeqCst);
        self.wake(w);
        true
    }

    /// A client starts / stops waiting for CLIENT PAUSE to end.
    pub fn postpone(&self, waiting: bool) {
        if waiting {
            self.postponed.fetch_add(1, Ordering::Relaxed);
        } else {
            self.postponed.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// Register `w` on every key. `again` re-registers a client that was woken but not
    /// served: it goes back to the place it had (queues are ordered by when clients blocked).
    #[cfg(test)]
    fn register(&self, w: &Arc<Waiter>, keys: &[(usize, Bytes)], again: bool) {
        let spec = BlockSpec {
            keys: keys.to_vec(),
            deadline: None,
            timeout_null_array: true,
            rerun_args: None,
            wake_all: false,
            unblock_on_nokey: false,
            kind: WaitKind::List,
            epoch: 0,
        };
        self.register_for(w, &spec, again)
    }

    /// Register `w` on every key of `spec`, as it says: whether the client is woken with every
    /// other `wake_all` waiter of its keys (stream readers) rather than one at a time, whether
    /// it waits for its keys to go away too (`unblock_on_nokey`), and for what kind of value.
    pub fn register_for(&self, w: &Arc<Waiter>, spec: &BlockSpec, again: bool) {
        let keys = &spec.keys[..];
        w.woken.store(false, Ordering::SeqCst);
        w.wake_all.store(spec.wake_all, Ordering::SeqCst);
        w.on_nokey.store(spec.unblock_on_nokey, Ordering::SeqCst);
        if !w.blocked.swap(true, Ordering::SeqCst) {
            self.blocked.fetch_add(1, Ordering::Relaxed);
            self.waiting.add(spec.kind, 1);
            *w.kind.lock() = Some(spec.kind);
        }
        if !again {
            w.ticket.store(self.next_ticket.fetch_add(1, Ordering::Relaxed), Ordering::SeqCst);
        }
        let ticket = w.ticket.load(Ordering::SeqCst);
        let mut q = self.queues.lock();
        for k in keys {
            let queue = q.entry(k.clone()).or_default();
            if queue.iter().any(|x| Arc::ptr_eq(x, w)) {
                continue;
            }
            let pos = queue.iter().position(|x| x.ticket.load(Ordering::SeqCst) > ticket).unwrap_or(queue.len());
            queue.insert(pos, w.clone());
        }
    }

    /// Remove `w` from every key's queue.
    pub fn unregister(&self, w: &Arc<Waiter>, keys: &[(usize, Bytes)]) {
        if w.blocked.swap(false, Ordering::SeqCst) {
            self.blocked.fetch_sub(1, Ordering::Relaxed);
            if let Some(kind) = w.kind.lock().take() {
                self.waiting.add(kind, -1);
            }
        }
        let mut q = self.queues.lock();
        for k in keys {
            if let Some(queue) = q.get_mut(k) {
                queue.retain(|x| !Arc::ptr_eq(x, w));
                if queue.is_empty() {
                    q.remove(k);
                }
            }
        }
    }

    /// Remove a client that leaves while blocked (it disconnected or was killed). If a signal
    /// had already picked it, the signal goes on to the next waiter of the keys signalled, so
    /// whatever woke it is served to a client that is still there.
    pub fn abandon(&self, w: &Arc<Waiter>, keys: &[(usize, Bytes)]) {
        let was_woken = w.woken.swap(true, Ordering::SeqCst);
        self.unregister(w, keys);
        if was_woken {
            let signalled = w.take_signalled();
            for (db, key) in if signalled.is_empty() { keys } else { &signalled[..] } {
                self.signal(*db, key);
            }
        }
    }

    /// Keys became ready (see `keyspace::ready`): signal each, a `gone` one only where a client
    /// waiting on it also waits for its key to go away (Redis's signalDeletedKeyAsReady; the
    /// other clients blocked on the key are then looked at too, as Redis does).
    pub fn ready(&self, signals: &[Ready]) {
        for r in signals {
            if r.gone && !self.waits_on_nokey(r.db, &r.key) {
                continue;
            }
            self.signal(r.db, &r.key);
        }
    }

    fn waits_on_nokey(&self, db: usize, key: &Bytes) -> bool {
        let q = self.queues.lock();
        q.get(&(db, key.clone())).is_some_and(|queue| queue.iter().any(|w| w.on_nokey.load(Ordering::SeqCst)))
    }

    /// A key may have become ready: wake its first waiter not already woken, and every
    /// `wake_all` waiter (stream readers), in queue order.
    pub fn signal(&self, db: usize, key: &[u8]) {
        self.signal_behind(db, key, None);
    }

    /// `w` was woken by a signal of `key` but not served (the key holds another type than its
    /// command pops): pass the signal on to the waiters queued behind `w`, never to one before
    /// it, so a write wakes each waiter at most once (as Redis goes through a ready key's
    /// clients once, skipping those blocked for another type).
    pub fn pass_on(&self, w: &Waiter, db: usize, key: &[u8]) {
        self.signal_behind(db, key, Some(w.ticket.load(Ordering::SeqCst)));
    }

    fn signal_behind(&self, db: usize, key: &[u8], after: Option<u64>) {
        // A new signal is counted before the queue is looked at: a client registering meanwhile
        // either is in the queue or sees the count changed (see `BlockSpec::epoch`). One passed
        // on is not new (and a client passing one on, then blocking again, must not see it as
        // one it missed).
        if after.is_none() {
            self.epoch.fetch_add(1, Ordering::SeqCst);
        }
        let q = self.queues.lock();
        let Some(queue) = q.get(&(db, Bytes::copy_from_slice(key))) else {
            return;
        };
        let mut one_woken = false;
        for w in queue {
            if after.is_some_and(|t| w.ticket.load(Ordering::SeqCst) <= t) {
                continue;
            }
            let all = w.wake_all.load(Ordering::SeqCst);
            if !all && one_woken {
                continue;
            }
            w.note_signal(db, key);
            if !w.woken.swap(true, Ordering::SeqCst) {
                self.wake(w);
                one_woken |= !all;
            }
        }
    }

    /// Wake every blocked client (a cluster node's slots changed: they re-check their keys).
    pub fn signal_all(&self) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
        let q = self.queues.lock();
        for ((db, key), queue) in q.iter() {
            for w in queue {
                w.note_signal(*db, key);
                if !w.woken.swap(true, Ordering::SeqCst) {
                    self.wake(w);
                }
            }
        }
    }
}

impl BlockedKeys for Blocking {
    fn waited_keys(&self, db: usize) -> Vec<Bytes> {
        self.queues.lock().keys().filter(|(d, _)| *d == db).map(|(_, k)| k.clone()).collect()
    }

    fn ready(&self, signals: &[Ready]) {
        Blocking::ready(self, signals);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn signals_wake_in_fifo_order() {
        let b = Blocking::default();
        let (w1, w2) = (Arc::new(Waiter::default()), Arc::new(Waiter::default()));
        let key = vec![(0, Bytes::from_static(b"k"))];
        b.register(&w1, &key, false);
        b.register(&w2, &key, false);
        assert_eq!(b.blocked_clients(), 2);
        b.signal(0, b"k");
        // Only the first waiter was picked.
        assert!(w1.woken.load(Ordering::SeqCst));
        assert!(!w2.woken.load(Ordering::SeqCst));
        assert!(b.has_unsettled());
        w1.wait().await;
        b.unregister(&w1, &key);
        b.settle(&w1);
        assert!(!b.has_unsettled());
        b.signal(0, b"k");
        w2.wait().await;
        b.unregister(&w2, &key);
        b.settle(&w2);
        assert!(!b.any());
        assert!(!b.has_unsettled());
    }

    #[tokio::test]
    async fn a_wakeup_not_served_passes_on_behind_only() {
        let b = Blocking::default();
        let (w1, w2, w3) = (Arc::new(Waiter::default()), Arc::new(Waiter::default()), Arc::new(Waiter::default()));
        let key = vec![(0, Bytes::from_static(b"k"))];
        for w in [&w1, &w2, &w3] {
            b.register(w, &key, false);
        }
        b.signal(0, b"k");
        w1.wait().await;
        // w1 re-ran its command and blocks again (the key holds another type): the signal goes
        // to w2, and when w2 passes it on too, to w3, never back to w1.
        b.register(&w1, &key, true);
        b.pass_on(&w1, 0, b"k");
        assert!(w2.woken.load(Ordering::SeqCst));
        b.register(&w2, &key, true);
        b.pass_on(&w2, 0, b"k");
        assert!(w3.woken.load(Ordering::SeqCst));
        b.register(&w3, &key, true);
        b.pass_on(&w3, 0, b"k");
        assert!(!w1.woken.load(Ordering::SeqCst));
        assert!(!w2.woken.load(Ordering::SeqCst));
    }

    #[test]
    fn only_new_signals_count_in_the_epoch() {
        let b = Blocking::default();
        let w = Arc::new(Waiter::default());
        let key = vec![(0, Bytes::from_static(b"k"))];
        b.register(&w, &key, false);
        let e = b.epoch();
        // A signal passed on is not new: a client that passes one on and blocks again must not
        // take it for one it missed (it would run again and again).
        b.pass_on(&w, 0, b"k");
        assert_eq!(b.epoch(), e);
        b.signal(0, b"nobody waits here");
        assert_eq!(b.epoch(), e + 1);
        b.ready(&[Ready { db: 0, key: Bytes::from_static(b"k"), gone: true }]);
        assert!(!w.woken.load(Ordering::SeqCst), "a key gone wakes only who waits for that");
        b.unregister(&w, &key);
    }

    #[tokio::test]
    async fn an_abandoned_wakeup_passes_to_the_next_waiter() {
        let b = Blocking::default();
        let (w1, w2) = (Arc::new(Waiter::default()), Arc::new(Waiter::default()));
        let key = vec![(0, Bytes::from_static(b"k"))];
        b.register(&w1, &key, false);
        b.register(&w2, &key, false);
        b.signal(0, b"k");
        assert!(!w2.woken.load(Ordering::SeqCst));
        // The first client disconnects before it could use its wake-up.
        b.abandon(&w1, &key);
        assert!(w2.woken.load(Ordering::SeqCst));
        w2.wait().await;
        b.unregister(&w2, &key);
        assert_eq!(b.blocked_clients(), 0);
        // A client leaving without having been woken wakes nobody.
        let w3 = Arc::new(Waiter::default());
        b.register(&w3, &key, false);
        b.register(&w1, &key, false);
        b.abandon(&w1, &key);
        assert!(!w3.woken.load(Ordering::SeqCst));
    }
}
