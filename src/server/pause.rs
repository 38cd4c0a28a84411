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
        ks.expiry_paused_until.store(0, Ordering::Relaxed);
        self.changed.notify_waiters();
    }

    /// Whether a pause is set at all (one atomic load; the command's write-ness is only worked
    /// out then).
    pub fn active(&self) -> bool {
        self.set.load(Ordering::Acquire)
    }

    /// Whether a command must wait: all commands under PAUSE ALL, writes under PAUSE WRITE.
    pub fn blocks(&self, may_write: bool) -> bool {
        match *self.state.lock() {
            Some(p) if p.end_ms > now_ms() => p.all || may_write,
            _ => false,
        }
    }

    /// Wait until the pause in force ends or changes (the caller checks again).
    pub async fn released(&self) {
        let end = match *self.state.lock() {
            Some(p) => p.end_ms,
            None => return,
        };
        let wait = Duration::from_millis((end - now_ms()).max(0) as u64 + 1);
        let changed = self.changed.notified();
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = changed => {}
        }
    }
}
