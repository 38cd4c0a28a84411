//! maxmemory eviction (Redis's evict.c): when `used_memory` is over `maxmemory`, keys are
//! evicted by the configured policy until it is not, before the next command runs.
//!
//! Like Redis the choice is approximate: for each eviction a random shard of a database is
//! locked and `maxmemory-samples` of its keys (or of its keys with an expiry, for the
//! `volatile-*` policies) are sampled; the best candidate (idlest for LRU, least used for LFU
//! by the decayed counter of `lfu.rs`,
//! nearest expiry for TTL, any for random) is deleted — propagated as DEL, announced as an
//! `evicted` keyspace event, and invalidated for client-side caching. Only one shard is locked
//! at a time, so eviction never stalls the whole server.

use bytes::Bytes;
use rand::Rng;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::{idle_seconds, notify, Keyspace, NSHARDS};

/// `maxmemory-policy`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Policy {
    #[default]
    NoEviction,
    AllKeysLru,
    VolatileLru,
    AllKeysLfu,
    VolatileLfu,
    AllKeysRandom,
    VolatileRandom,
    VolatileTtl,
}

impl Policy {
    pub fn parse(name: &str) -> Policy {
        match name {
            "allkeys-lru" => Policy::AllKeysLru,
            "volatile-lru" => Policy::VolatileLru,
            "allkeys-lfu" => Policy::AllKeysLfu,
            "volatile-lfu" => Policy::VolatileLfu,
            "allkeys-random" => Policy::AllKeysRandom,
            "volatile-random" => Policy::VolatileRandom,
            "volatile-ttl" => Policy::VolatileTtl,
            _ => Policy::NoEviction,
        }
    }

    fn volatile(self) -> bool {
        matches!(self, Policy::VolatileLru | Policy::VolatileLfu | Policy::VolatileRandom | Policy::VolatileTtl)
    }
}

/// The outcome of [`perform_evictions`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Evict {
    /// Within the limit (possibly after evicting).
    Ok,
    /// Still over the limit and nothing more can be evicted: write commands get -OOM.
    Fail,
}

/// How long one call may spend evicting (Redis bounds it the same way, 500 µs at the default
/// maxmemory-eviction-tenacity);
/// the next command carries on.
const TIME_BUDGET: Duration = Duration::from_micros(500);

/// How eviction reads memory (the keyspace does not count it itself).
pub struct Gauge<'a> {
    /// Memory used, as maxmemory counts it.
    pub used: &'a dyn Fn() -> usize,
    /// The calling thread's net allocations so far: the difference around a deletion is what
    /// the deletion freed, however busy other threads are.
    pub thread_net: fn() -> isize,
}

/// Evict keys until `used()` is within `maxmemory`, as Redis's performEvictions: the amount
/// to free is fixed when the call starts, and each eviction counts only the memory its
/// deletion gave back. What the eviction itself makes (the DEL propagated to replicas, the
/// invalidation messages pushed to tracking clients, keyspace events) is not counted against
/// progress, so output that those messages need cannot make eviction feed on itself and
/// drain the keyspace; the next command sees whatever is still over.
pub fn perform_evictions(ks: &Keyspace, maxmemory: usize, policy: Policy, samples: usize, gauge: &Gauge) -> Evict {
    let used = gauge.used;
    let now = used();
    if now <= maxmemory {
        return Evict::Ok;
    }
    if policy == Policy::NoEviction {
        return Evict::Fail;
    }
    let to_free = now - maxmemory;
    let mut freed = 0;
    let mut keys = 0u32;
    let start = Instant::now();
    while freed < to_free {
        let Some(gave_back) = evict_one(ks, policy, samples.max(1), gauge.thread_net) else {
            return Evict::Fail;
        };
        freed += gave_back;
        keys += 1;
        // Now and then: stop early when memory is within the limit after all (a value freed
        // elsewhere, lazily), or when the time is up while still over (Redis's
        // EVICT_RUNNING: the command runs, the next one evicts more).
        if keys.is_multiple_of(16) && (used() <= maxmemory || start.elapsed() > TIME_BUDGET) {
            break;
        }
    }
    Evict::Ok
}

/// The database the last eviction happened in.
static LAST_DB: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Evict one key; the memory its deletion gave back. None when no key can be evicted under
/// the policy.
fn evict_one(ks: &Keyspace, policy: Policy, samples: usize, thread_net: fn() -> isize) -> Option<usize> {
    let mut rng = rand::thread_rng();
    let ndbs = ks.databases();
    // Start with the database the last eviction found keys in (usually the only one in use),
    // so empty databases are not probed shard by shard every time.
    let first_db = LAST_DB.load(Ordering::Relaxed) % ndbs;
    for d in 0..ndbs {
        let db = (first_db + d) % ndbs;
        // Random shards first; then every shard in order, so a nearly empty keyspace is found.
        let start = rng.gen_range(0..NSHARDS);
        let order = (0..16).map(|_| rng.gen_range(0..NSHARDS)).chain((0..NSHARDS).map(|i| (start + i) % NSHARDS));
        for shard in order {
            let mut view = ks.lock_shard(db, shard);
            let Some(key) = pick(&mut view, policy, samples) else { continue };
            let freed = view.evict(&key, thread_net);
            ks.stats.evicted_keys.fetch_add(1, Ordering::Relaxed);
            LAST_DB.store(db, Ordering::Relaxed);
            return Some(freed);
        }
    }
    None
}

/// Eviction score of an entry under an LRU or LFU policy: higher is evicted first (idle
/// seconds; 255 minus the decayed access counter, as Redis's evictionPoolPopulate).
fn score(ks: &Keyspace, policy: Policy, meta: u32, now_ms: i64) -> u64 {
    match policy {
        Policy::AllKeysLfu | Policy::VolatileLfu => 255 - super::lfu::counter(meta, now_ms, ks.lfu.decay_time()) as u64,
        _ => idle_seconds(meta),
    }
}

/// The best candidate among `samples` keys of the (single) locked shard.
fn pick(view: &mut super::Db<'_>, policy: Policy, samples: usize) -> Option<Bytes> {
    let now_ms = view.now_ms;
    let ks = view.keyspace();
    let (_, sd) = view.sampled_shards().next()?;
    let pool = if policy.volatile() { sd.ttls.len() } else { sd.main.len() };
    if pool == 0 {
        return None;
    }
    let mut best: Option<(Bytes, u64)> = None;
    for _ in 0..samples.min(pool.max(1)) {
        // Score: higher is evicted first.
        let (key, score) = if policy.volatile() {
            let (k, when) = sd.random_ttl()?;
            let key = Bytes::from(k);
            let score = match policy {
                Policy::VolatileTtl => u64::MAX - when.max(0) as u64,
                Policy::VolatileRandom => 0,
                _ => sd.main.get(&key).map_or(0, |e| score(ks, policy, e.lru, now_ms)),
            };
            (key, score)
        } else {
            let (k, e) = sd.main.random_entry()?;
            let score = if policy == Policy::AllKeysRandom { 0 } else { score(ks, policy, e.lru, now_ms) };
            (Bytes::copy_from_slice(k), score)
        };
        if matches!(policy, Policy::AllKeysRandom | Policy::VolatileRandom) {
            return Some(key);
        }
        if best.as_ref().is_none_or(|(_, s)| score > *s) {
            best = Some((key, score));
        }
    }
    best.map(|(k, _)| k)
}

impl super::Db<'_> {
    /// Delete a key chosen for eviction: propagated as DEL, announced as `evicted`, and
    /// invalidated for watchers and client-side caching. Returns the memory the deletion
    /// itself gave back (this thread's net allocations before and after it: what announcing
    /// it takes, and what other threads do meanwhile, is not subtracted).
    pub fn evict(&mut self, key: &[u8], thread_net: fn() -> isize) -> usize {
        let before = thread_net();
        let at = self.place_of_key(key);
        let Some((entry, _)) = self.shard_db_at(at.shard, key).remove_key(at.hash, key) else { return 0 };
        let kind = super::ready::WaitKind::of(&entry.value);
        drop(entry);
        let freed = before.saturating_sub(thread_net()).max(0) as usize;
        self.note_gone(key, kind);
        self.notify(notify::EVICTED, "evicted", key);
        self.propagate(vec![Bytes::from_static(b"DEL"), Bytes::copy_from_slice(key)]);
        if self.ks.watches.any() {
            self.ks.watches.touch(self.index, key, true);
        }
        freed
    }
}
