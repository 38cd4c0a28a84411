//! CLIENT PAUSE: while a pause is in force, commands from clients (all of them, or only those
//! that may write) wait before running, and expiry is suspended (expired keys are hidden, not
//! deleted). The pipeline asks [`Pause::blocks`]; the connection then waits on
//! [`Pause::released`] and runs the command again.

use parking_lot::Mutex;
use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::keyspace::{now_ms, Keyspace};

#[derive(Clone, Copy, Debug)]
struct State {
    /// Pause every command, not only writes.
    all: bool,
    /// Unix ms when the pause ends.
    end_ms: i64,
}

#[derive(Default)]
pub struct Pause {
    state: Mutex<Option<State>>,
    /// Whether `state` is set: the per-command check reads this, not the mutex.
    set: std::sync::atomic::AtomicBool,
    /// FAILOVER holds the writes (Redis's PAUSE_DURING_FAILOVER: independent of CLIENT
    /// PAUSE / UNPAUSE).
    failover: std::sync::atomic::AtomicBool,
    /// A shutdown waiting for its replicas holds the writes (Redis's PAUSE_DURING_SHUTDOWN).
    shutdown: std::sync::atomic::AtomicBool,
    changed: tokio::sync::Notify,
}

impl Pause {
    /// CLIENT PAUSE: combines with a pause in force (the stricter mode, the later end).
    pub fn pause(&self, all: bool, end_ms: i64, ks: &Keyspace) {
        let mut s = self.state.lock();
        let merged = match *s {
            Some(p) if p.end_ms > now_ms() => State { all: all || p.all, end_ms: end_ms.max(p.end_ms) },
            _ => State { all, end_ms },
        };
        *s = Some(merged);
        self.set.store(true, Ordering::Release);
        ks.expiry_paused_until.store(merged.end_ms, Ordering::Relaxed);
        self.changed.notify_waiters();
    }

    /// CLIENT UNPAUSE.
    pub fn unpause(&self, ks: &Keyspace) {
        *self.state.lock() = None;
        self.set.store(false, Ordering::Release);
        ks.expiry_paused_until.store(if self.holds_writes() { i64::MAX } else { 0 }, Ordering::Relaxed);
        self.changed.notify_waiters();
    }

    /// FAILOVER: hold (or release) every write until the failover ends.
    pub fn set_failover(&self, on: bool, ks: &Keyspace) {
        self.failover.store(on, Ordering::Release);
        self.held_changed(ks);
    }

    /// A shutdown waiting for replicas: hold (or release) every write until it ends.
    pub fn set_shutdown(&self, on: bool, ks: &Keyspace) {
        self.shutdown.store(on, Ordering::Release);
        self.held_changed(ks);
    }

    fn held_changed(&self, ks: &Keyspace) {
        let until = if self.holds_writes() { i64::MAX } else { self.state.lock().map_or(0, |p| p.end_ms) };
        ks.expiry_paused_until.store(until, Ordering::Relaxed);
        self.changed.notify_waiters();
    }

    /// A failover or a shutdown holds the writes, whatever CLIENT PAUSE says.
    fn holds_writes(&self) -> bool {
        self.failover.load(Ordering::Acquire) || self.shutdown.load(Ordering::Acquire)
    }

    /// Whether a pause is set at all (one atomic load; the command's write-ness is only worked
    /// out then).
    pub fn active(&self) -> bool {
        self.set.load(Ordering::Acquire) || self.holds_writes()
    }

    /// Whether a command must wait: all commands under PAUSE ALL, writes under PAUSE WRITE and
    /// during a failover.
    pub fn blocks(&self, may_write: bool) -> bool {
        if may_write && self.holds_writes() {
            return true;
        }
        match *self.state.lock() {
            Some(p) if p.end_ms > now_ms() => p.all || may_write,
            _ => false,
        }
    }

    /// Wait until the pause in force ends or changes (the caller checks again).
    pub async fn released(&self) {
        let changed = self.changed.notified();
        tokio::pin!(changed);
        changed.as_mut().enable();
        let end = match *self.state.lock() {
            Some(p) => p.end_ms,
            None if self.holds_writes() => i64::MAX / 2,
            None => return,
        };
        let wait = Duration::from_millis(((end - now_ms()).max(0) as u64).min(1 << 40) + 1);
        tokio::select! {
            _ = crate::util::timer::sleep(wait) => {}
            _ = changed => {}
        }
    }
}
