//! The effect stream: every change to the dataset, expressed as the command that reproduces it
//! deterministically (relative expiry as PXAT, an expired key as DEL), in one ordered stream.
//! AOF and replication subscribe to it. Effects are published while the writer still holds the
//! shard locks of the keys involved, so the stream's order agrees with the order of the writes
//! on every key.

use bytes::Bytes;
use parking_lot::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};

/// One effect: a command to replay in a database.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Effect {
    pub db: usize,
    pub argv: Vec<Bytes>,
}

impl Effect {
    pub fn new(db: usize, argv: Vec<Bytes>) -> Self {
        Effect { db, argv }
    }
}

/// A batch of effects from one command (or one transaction): applied atomically by consumers.
pub type EffectBatch = Vec<Effect>;

/// The publisher side of the stream.
#[derive(Default)]
pub struct EffectStream {
    subscribers: Mutex<Vec<UnboundedSender<EffectBatch>>>,
    active: AtomicBool,
}

impl EffectStream {
    /// Whether anyone listens: writers skip building effects when nobody does.
    pub fn is_active(&self) -> bool {
        self.active.load(Ordering::Relaxed)
    }

    pub fn subscribe(&self) -> UnboundedReceiver<EffectBatch> {
        let (tx, rx) = unbounded_channel();
        let mut subs = self.subscribers.lock();
        subs.push(tx);
        self.active.store(true, Ordering::Relaxed);
        rx
    }

    pub fn publish(&self, batch: EffectBatch) {
        if batch.is_empty() || !self.is_active() {
            return;
        }
        let mut subs = self.subscribers.lock();
        subs.retain(|s| s.send(batch.clone()).is_ok());
        if subs.is_empty() {
            self.active.store(false, Ordering::Relaxed);
        }
    }
}
