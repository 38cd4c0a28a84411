//! The effect stream: every change to the dataset, expressed as the command that reproduces it
//! deterministically (relative expiry as PXAT, an expired key as DEL), in one ordered stream.
//! AOF subscribes to it; replication is its [`EffectSink`], fed synchronously in publishing
//! order (so the replication offset after a write is known when the write returns). Effects are
//! published while the writer still holds the shard locks of the keys involved, so the stream's
//! order agrees with the order of the writes on every key.

use bytes::Bytes;
use parking_lot::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};

/// One effect: a command to replay in a database.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Effect {
    pub db: usize,
    pub argv: Vec<Bytes>,
    /// For replicas only, not the AOF (PUBLISH: replicas' subscribers get the message, a
    /// reload must not replay it), like Redis's PROPAGATE_REPL.
    pub replicas_only: bool,
    /// For the AOF only, not replicas (a script's writes under `redis.set_repl(REPL_AOF)`),
    /// like Redis's PROPAGATE_AOF.
    pub aof_only: bool,
    /// Belongs to no database (the MULTI and EXEC around a transaction's effects): no SELECT
    /// goes before it, as Redis 7.2 propagates them with dbid -1 (the SELECT, if needed, comes
    /// inside the MULTI, before the first command).
    pub any_db: bool,
}

impl Effect {
    pub fn new(db: usize, argv: Vec<Bytes>) -> Self {
        Effect { db, argv, replicas_only: false, aof_only: false, any_db: false }
    }

    /// MULTI or EXEC around a transaction (see [`Effect::any_db`]).
    pub fn marker(db: usize, name: &'static [u8]) -> Self {
        Effect { any_db: true, ..Effect::new(db, vec![Bytes::from_static(name)]) }
    }
}

/// A batch of effects from one command (or one transaction): applied atomically by consumers.
pub type EffectBatch = Vec<Effect>;

/// A consumer called with every batch, in publishing order, while the stream's lock is held
/// (replication encodes the batch into its backlog there).
pub trait EffectSink: Send + Sync {
    fn feed(&self, batch: &EffectBatch);
}

/// The publisher side of the stream.
#[derive(Default)]
pub struct EffectStream {
    subscribers: Mutex<Vec<UnboundedSender<EffectBatch>>>,
    active: AtomicBool,
    sink: std::sync::OnceLock<std::sync::Arc<dyn EffectSink>>,
    /// Whether the sink wants batches now.
    sink_on: AtomicBool,
    /// Number of batches published to subscribers so far (the AOF waits for its fsync of a
    /// given sequence number before replies leave, with `appendfsync always`).
    seq: AtomicU64,
}

impl EffectStream {
    /// Whether anyone listens: writers skip building effects when nobody does.
    pub fn is_active(&self) -> bool {
        self.active.load(Ordering::Relaxed)
    }

    /// Install the sink (once, at start-up); it receives batches while [`Self::set_sink_on`]
    /// says so.
    pub fn install_sink(&self, sink: std::sync::Arc<dyn EffectSink>) {
        let _ = self.sink.set(sink);
    }

    /// Turn the sink on or off (the stream is active while it is on or anyone subscribes).
    pub fn set_sink_on(&self, on: bool) {
        let subs = self.subscribers.lock();
        self.sink_on.store(on, Ordering::SeqCst);
        self.active.store(on || !subs.is_empty(), Ordering::SeqCst);
    }

    /// Run `f` under the stream's lock: nothing is published meanwhile (replication takes its
    /// point in time and switches its sink there).
    pub fn exclusive<R>(&self, f: impl FnOnce() -> R) -> R {
        let _subs = self.subscribers.lock();
        f()
    }

    pub fn subscribe(&self) -> UnboundedReceiver<EffectBatch> {
        self.subscribe_at().1
    }

    /// Subscribe, also returning the sequence number of the last batch published before: the
    /// n-th batch the receiver gets has sequence number `returned + n`.
    pub fn subscribe_at(&self) -> (u64, UnboundedReceiver<EffectBatch>) {
        let (tx, rx) = unbounded_channel();
        let mut subs = self.subscribers.lock();
        subs.push(tx);
        self.active.store(true, Ordering::Relaxed);
        (self.seq.load(Ordering::Acquire), rx)
    }

    /// Sequence number of the last batch published.
    pub fn seq(&self) -> u64 {
        self.seq.load(Ordering::Acquire)
    }

    pub fn publish(&self, batch: EffectBatch) {
        if batch.is_empty() || !self.is_active() {
            return;
        }
        let mut subs = self.subscribers.lock();
        self.seq.fetch_add(1, Ordering::AcqRel);
        if self.sink_on.load(Ordering::Relaxed) {
            if let Some(sink) = self.sink.get() {
                sink.feed(&batch);
            }
        }
        if subs.is_empty() {
            return;
        }
        subs.retain(|s| s.send(batch.clone()).is_ok());
        if subs.is_empty() && !self.sink_on.load(Ordering::Relaxed) {
            self.active.store(false, Ordering::Relaxed);
        }
    }
}
