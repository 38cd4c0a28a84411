//! The keyspace: `databases` logical databases, split into [`NSHARDS`] shards by key hash (by
//! hash slot in cluster mode, see [`shard_of`]).
//! Each shard has its own lock and holds, for every database, a main dict (key → entry) and a
//! TTL index (the keys with a TTL → absolute unix time in ms: Redis's expires dict, keyed by
//! hash, see `ttl_index`).
//!
//! Concurrency: a command locks the shards of all its keys, in ascending shard order (so two
//! commands can never deadlock), does its work, publishes its effects and unlocks. Commands on
//! keys of different shards therefore run on different cores at the same time, while a
//! multi-key command is atomic. Keyspace-wide commands (FLUSHDB, SCAN, KEYS, DBSIZE...) lock
//! every shard; EXEC locks the shards of its queued commands and watched keys, and a script its
//! declared keys up front and any other shard when it first touches it ([`Keyspace::lock_for_command`]).
//!
//! All access goes through a [`Db`] view, which applies lazy expiry (an expired key is deleted
//! when touched, and a DEL effect is published), keeps each entry's LRU clock (or LFU counter,
//! see `lfu`) and the hit/miss counters.

pub mod capture;
pub mod clock;
pub mod effects;
pub mod evict;
pub mod expire;
pub mod hfe;
pub mod hfe_index;
pub mod lazyfree;
pub mod lfu;
#[cfg(test)]
mod model_tests;
pub mod notify;
pub mod ready;
pub mod slot;
pub mod staging;
pub mod ttl_index;
pub mod watch;

use crate::util::lean_vec::LeanVec;
use bytes::Bytes;
use parking_lot::{Mutex, MutexGuard};
use smallvec::SmallVec;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;

pub use crate::types::Dict;
use crate::types::{Entry, Kind, Value, WrongType};
pub use effects::{Effect, EffectStream};

/// Number of shards. A power of two; SCAN cursors carry the shard index in their low bits.
/// Many more shards than cores keep two multi-key commands (MSET of 10 random keys, say) from
/// usually sharing a shard, so they rarely wait for each other.
pub const NSHARDS: usize = 256;
pub const SHARD_BITS: u32 = NSHARDS.trailing_zeros();

/// The most keys one [`Db::reserve`] sizes a database's tables for: size hints come from files.
pub const MAX_SIZE_HINT: u64 = 1 << 26;

/// One database's slice of a shard.
#[derive(Default)]
pub struct ShardDb {
    pub main: Dict<Entry>,
    /// The expiry times of the keys with a TTL (only through `ShardDb`'s TTL methods, which
    /// keep each entry's flag in step).
    pub ttls: ttl_index::TtlIndex,
    /// Keys whose hash has (or had) fields with a TTL, by their earliest: what the field-expiry
    /// cycle takes (`hfe.rs`). Kept by `set`/`insert_entry`/`delete` and the field-expiry
    /// commands; a key that no longer qualifies is dropped by the cycle.
    pub hexpires: hfe_index::HashTtlIndex,
}

/// A database's line in INFO keyspace: keys, keys with a TTL, hashes with field TTLs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DbCounts {
    pub keys: usize,
    pub expires: usize,
    /// Hashes noted as having field TTLs (Redis 7.4's `subexpiry`; one whose last field TTL
    /// went counts until the field-expiry cycle forgets it, as in Redis).
    pub hashes_with_ttls: usize,
}

impl DbCounts {
    pub fn plus(self, o: DbCounts) -> DbCounts {
        DbCounts {
            keys: self.keys + o.keys,
            expires: self.expires + o.expires,
            hashes_with_ttls: self.hashes_with_ttls + o.hashes_with_ttls,
        }
    }
}

impl ShardDb {
    /// This slice's share of [`DbCounts`].
    pub fn info_counts(&self) -> DbCounts {
        DbCounts { keys: self.main.len(), expires: self.ttls.len(), hashes_with_ttls: self.hexpires.len() }
    }

    /// Whether some key of this database holds a hash with field TTLs.
    pub fn has_hash_field_ttls(&self) -> bool {
        let mut any = false;
        self.hexpires.for_each(|k, _| {
            any = any || matches!(self.main.get(k), Some(Entry { value: Value::Hash(h), .. }) if h.has_ttls());
        });
        any
    }

    /// Note (or forget) `key` as holding a hash with field TTLs, after it got `value`. Returns
    /// whether it was added (the caller marks the shard as holding TTLs).
    #[must_use]
    fn track_hash_ttls(&mut self, key: &[u8], value: &Value) -> bool {
        match value.earliest_field_ttl() {
            Some(t) => return self.hexpires.note(key, t),
            None if !self.hexpires.is_empty() => self.hexpires.remove(key),
            None => {}
        }
        false
    }
}

/// One shard: its slice of every database.
pub struct Shard {
    pub dbs: Vec<ShardDb>,
    /// A point-in-time capture (BGSAVE) that has not seen all of this shard yet.
    capture: Option<capture::Pending>,
}

/// A point-in-time capture of the keyspace without fork: once started
/// ([`Keyspace::begin_capture`], atomically over all shards), every segment of every shard is
/// handed to [`ShardCapture::capture`] exactly once, under its lock, before anything else
/// accesses it (see `capture`). So the whole capture is one point in time.
pub use capture::ShardCapture;

/// Counters shared by all shards (INFO stats / keyspace).
#[derive(Default)]
pub struct KeyspaceStats {
    pub hits: crate::util::striped::Counter,
    pub misses: crate::util::striped::Counter,
    pub expired_keys: crate::util::striped::Counter,
    /// Hash fields reclaimed after their TTL, or deleted by a TTL in the past (INFO's
    /// expired_subkeys, Redis 7.4+).
    pub expired_subkeys: crate::util::striped::Counter,
    /// Keys evicted by maxmemory (INFO's evicted_keys).
    pub evicted_keys: AtomicU64,
    /// Changes since the last save (`rdb_changes_since_last_save`).
    pub dirty: crate::util::striped::Counter,
    /// Active expiry's running estimate of the share of sampled keys found expired (an f64's
    /// bits; INFO's expired_stale_perc), and the cycles that ran out of time.
    pub expired_stale_perc: AtomicU64,
    pub expired_time_cap_reached: AtomicU64,
}

pub struct Keyspace {
    shards: Box<[Mutex<Shard>]>,
    ndbs: usize,
    pub effects: EffectStream,
    pub stats: KeyspaceStats,
    /// Keys watched by transactions (WATCH).
    pub watches: watch::Watches,
    /// Keyspace notifications.
    pub notifier: notify::Notifier,
    /// Client-side caching, told of every modified key (installed by the server; see
    /// [`KeyObserver`]).
    observer: std::sync::OnceLock<Arc<dyn KeyObserver>>,
    /// How many clients are blocked for each kind of value (kept by the blocking registry): a
    /// view records readiness only for a kind some client waits for (see `ready`).
    pub waiting: Arc<ready::Waiting>,
    /// The blocking registry (installed by the server; see [`ready::BlockedKeys`]).
    blocked: std::sync::OnceLock<Arc<dyn ready::BlockedKeys>>,
    /// While clients are paused (CLIENT PAUSE), expired keys are hidden but not deleted, and
    /// active expiry stops, as in Redis: unix ms until which this holds (0: not paused).
    pub expiry_paused_until: AtomicI64,
    /// A lazy view (a running script, see [`Keyspace::lock_for_command`]) may be waiting for shards out
    /// of order: multi-shard lockers then back off instead of waiting while holding shards.
    lazy_view: std::sync::atomic::AtomicBool,
    /// The first shard of the next [`Keyspace::cron_step`].
    rehash_cursor: std::sync::atomic::AtomicUsize,
    /// Keys per shard (all databases) as [`Keyspace::cron_step`] last saw them, and their
    /// sum: whether a batch's keys are worth prefetching ([`Keyspace::prefetch`]).
    shard_keys: Box<[std::sync::atomic::AtomicUsize]>,
    keys_seen: std::sync::atomic::AtomicUsize,
    /// The first shard of the next active-expiry cycle (`expire::active_expire_cycle`).
    expire_cursor: std::sync::atomic::AtomicUsize,
    /// The shards that may hold TTLs: the ones active expiry visits.
    ttl_shards: expire::TtlShards,
    /// Per database, active expiry's running average of the TTLs it samples, in ms (INFO
    /// keyspace's avg_ttl; see `expire::CycleStats`).
    avg_ttl: Box<[AtomicI64]>,
    /// Whether entries count accesses (an LFU maxmemory policy), and how.
    pub lfu: lfu::LfuSettings,
    /// On a writable replica: keys given an expiry by its own clients (Redis's
    /// slaveKeysWithExpire), the only ones a replica expires by itself.
    pub replica_local_expires: Mutex<std::collections::HashSet<(usize, Bytes)>>,
}

/// How a command sees expired keys (Redis's expireIfNeeded on masters and replicas).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ExpireMode {
    /// A master: an expired key is deleted (and DEL propagated).
    #[default]
    Delete,
    /// A replica's client: an expired key is reported missing but kept (its master's DEL
    /// removes it).
    Hide,
    /// A replica applying its master's stream: keys never expire on their own.
    Keep,
    /// A write on a writable replica: expired keys are deleted, and keys it gives an expiry are
    /// remembered as the replica's own.
    LocalWrite,
}

/// Client-side caching as the keyspace sees it: told of every modified key (Redis's
/// signalModifiedKey → trackingInvalidateKey), while a view still holds the key's lock. The
/// server installs its tracking table ([`Keyspace::observe`]); the keyspace knows nothing more
/// of it.
pub trait KeyObserver: Send + Sync {
    /// Whether anything must be told (no client tracks keys: every hook is free).
    fn active(&self) -> bool;
    /// `key` changed, as `by` says who changed it.
    fn key_modified(&self, key: &[u8], by: ModifiedBy);
}

/// Who modified a key, in the two senses Redis's tracking tells NOLOOP clients apart by
/// (trackingInvalidateKey). Client ids; 0 is none.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ModifiedBy {
    /// The client whose command is running (Redis's `server.current_client`): also a script's
    /// caller, and the client whose command found a key expired. A NOLOOP client that is not
    /// in BCAST mode is not told of the keys it modified in this sense.
    pub current: u64,
    /// The client that executed the write (the client given to signalModifiedKey): none for
    /// a script's commands (they run as the script's own client) and for expiry. A BCAST
    /// NOLOOP client is not told of the keys it wrote last in this sense.
    pub writer: u64,
}

impl ModifiedBy {
    /// A client's own command (outside a script) modified the key.
    pub fn client(id: u64) -> Self {
        ModifiedBy { current: id, writer: id }
    }
}

/// A set of shard indices (which shards a command must lock).
#[derive(Clone, Copy, Default, PartialEq, Eq, Debug)]
pub struct ShardSet([u64; NSHARDS / 64]);

impl ShardSet {
    pub fn all() -> Self {
        ShardSet([u64::MAX; NSHARDS / 64])
    }

    pub fn single(shard: usize) -> Self {
        let mut s = ShardSet::default();
        s.insert(shard);
        s
    }

    pub fn insert(&mut self, shard: usize) {
        self.0[shard / 64] |= 1 << (shard % 64);
    }

    /// The key's shard.
    pub fn add_key(&mut self, key: &[u8]) {
        self.insert(shard_of(key));
    }

    /// The only member, if there is exactly one.
    pub fn only(&self) -> Option<usize> {
        let mut found = None;
        for (w, &bits) in self.0.iter().enumerate() {
            if bits != 0 {
                if found.is_some() || bits & (bits - 1) != 0 {
                    return None;
                }
                found = Some(w * 64 + bits.trailing_zeros() as usize);
            }
        }
        found
    }

    /// Members in ascending order (the locking order).
    pub fn iter(&self) -> impl Iterator<Item = usize> + '_ {
        self.0.iter().enumerate().flat_map(|(w, &bits)| {
            let mut b = bits;
            std::iter::from_fn(move || {
                if b == 0 {
                    return None;
                }
                let i = b.trailing_zeros() as usize;
                b &= b - 1;
                Some(w * 64 + i)
            })
        })
    }
}

/// The shard a key lives in.
pub fn shard_of(key: &[u8]) -> usize {
    if BY_SLOT.load(Ordering::Relaxed) {
        shard_of_slot(slot::key_hash_slot(key))
    } else {
        shard_of_hash(crate::types::dict::hash_key(slot::hash_tag(key).unwrap_or(key)))
    }
}

/// The shard of a hash: its top bits (the shard's dict indexes its buckets with the low ones).
#[inline]
fn shard_of_hash(hash: usize) -> usize {
    hash >> (usize::BITS - SHARD_BITS)
}

/// Where a key lives: its shard, and the hash its shard's dicts find it by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyPlace {
    pub shard: usize,
    pub hash: usize,
}

/// A key's [`KeyPlace`]: outside cluster mode, a key without a hash tag is in the shard its
/// own hash names, so one hash serves both the shard and the lookup in it; other keys take
/// [`shard_of`]'s.
#[inline]
pub fn locate(key: &[u8]) -> KeyPlace {
    let hash = crate::types::dict::hash_key(key);
    let shard = if !BY_SLOT.load(Ordering::Relaxed) && slot::hash_tag(key).is_none() {
        shard_of_hash(hash)
    } else {
        shard_of(key)
    };
    KeyPlace { shard, hash }
}

/// Shards by hash slot (cluster mode) rather than by the dicts' hash (see [`shard_of`]).
static BY_SLOT: AtomicBool = AtomicBool::new(false);

/// Cluster mode: a key's shard follows its hash slot, so that a slot's keys are in one shard
/// (CLUSTER GETKEYSINSLOT, and deleting a lost slot, visit that shard only). Otherwise a
/// shard is chosen by the top bits of the hash the shard's dict then finds the key with
/// (a third of a CRC16's cost, computed once), or of its hash tag's: keys with the same tag
/// still share a shard. Set once by the server at start-up, before any key exists.
pub fn shard_by_slot() {
    BY_SLOT.store(true, Ordering::Relaxed);
}

/// The shard of a hash slot's keys, in cluster mode (see [`shard_by_slot`]).
pub fn shard_of_slot(slot: u16) -> usize {
    slot as usize & (NSHARDS - 1)
}

/// Current unix time in milliseconds.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// The LRU clock: unix seconds, truncated to 24 bits like Redis's.
pub fn lru_clock() -> u32 {
    lru_clock_at(now_ms())
}

/// The LRU clock at unix ms `now`.
pub fn lru_clock_at(now: i64) -> u32 {
    ((now / 1000) & 0xFF_FFFF) as u32
}

/// Seconds since an LRU clock value (handles the 24-bit wrap-around).
pub fn idle_seconds(lru: u32) -> u64 {
    let now = lru_clock();
    if now >= lru {
        (now - lru) as u64
    } else {
        (now + 0x100_0000 - lru) as u64
    }
}

impl Keyspace {
    pub fn new(ndbs: usize) -> Self {
        let shards = (0..NSHARDS)
            .map(|_| Mutex::new(Shard { dbs: (0..ndbs).map(|_| ShardDb::default()).collect(), capture: None }))
            .collect();
        Keyspace {
            shards,
            ndbs,
            effects: EffectStream::default(),
            stats: KeyspaceStats::default(),
            watches: watch::Watches::default(),
            observer: std::sync::OnceLock::new(),
            waiting: Arc::default(),
            blocked: std::sync::OnceLock::new(),
            notifier: notify::Notifier::default(),
            expiry_paused_until: AtomicI64::new(0),
            replica_local_expires: Mutex::new(std::collections::HashSet::new()),
            lazy_view: std::sync::atomic::AtomicBool::new(false),
            rehash_cursor: std::sync::atomic::AtomicUsize::new(0),
            shard_keys: (0..NSHARDS).map(|_| std::sync::atomic::AtomicUsize::new(0)).collect(),
            keys_seen: std::sync::atomic::AtomicUsize::new(0),
            expire_cursor: std::sync::atomic::AtomicUsize::new(0),
            ttl_shards: expire::TtlShards::default(),
            avg_ttl: (0..ndbs).map(|_| AtomicI64::new(0)).collect(),
            lfu: lfu::LfuSettings::default(),
        }
    }

    /// Install the observer of modified keys (once, at start-up).
    pub fn observe(&self, observer: Arc<dyn KeyObserver>) {
        let _ = self.observer.set(observer);
    }

    /// Install the blocking registry (once, at start-up): it keeps [`Keyspace::waiting`], and
    /// is told the readiness views record outside commands.
    pub fn install_blocked(&self, blocked: Arc<dyn ready::BlockedKeys>) {
        let _ = self.blocked.set(blocked);
    }

    /// Tell the observer (if any client tracks keys) that `key` changed.
    pub fn key_modified(&self, key: &[u8], by: ModifiedBy) {
        if let Some(o) = self.observer.get() {
            if o.active() {
                o.key_modified(key, by);
            }
        }
    }

    pub fn databases(&self) -> usize {
        self.ndbs
    }

    /// Lock the shards holding `keys` (in ascending order) and return a view of database `db`.
    pub fn lock_keys<'a, K: AsRef<[u8]>>(&'a self, db: usize, keys: &[K]) -> Db<'a> {
        let mut set = ShardSet::default();
        for k in keys {
            set.add_key(k.as_ref());
        }
        self.lock_set(db, set)
    }

    /// Lock every shard: the caller is alone in the keyspace.
    pub fn lock_all(&self, db: usize) -> Db<'_> {
        self.lock_set(db, ShardSet::all())
    }

    /// Lock one shard by index (active expiry, incremental SCAN).
    pub fn lock_shard(&self, db: usize, shard: usize) -> Db<'_> {
        self.lock_set(db, ShardSet::single(shard))
    }

    /// Lock the shards in `set`, in ascending order (none for commands without keys).
    pub fn lock_set(&self, db: usize, set: ShardSet) -> Db<'_> {
        self.lock_set_at(db, set, now_ms())
    }

    /// Like [`Keyspace::lock_set`], with the command's clock reading (unix ms) supplied.
    pub fn lock_set_at(&self, db: usize, set: ShardSet, now: i64) -> Db<'_> {
        // A capture in progress gets each part of these shards when it is first accessed.
        self.view(db, self.acquire(set), now, false)
    }

    /// The command pipeline's view: the shards of `set` (every shard when None). Its time is
    /// set by the caller ([`Db::set_time`]). One constructor call for every case, so the view is
    /// built in place (a `match` over separate lock functions moved a ~300-byte view per command).
    ///
    /// A running script's view is lazy: the shards of its declared keys are locked now
    /// (ascending, as any command); any other shard is locked when the script first touches it,
    /// whatever its order. That is deadlock-free because every multi-shard locker backs off
    /// (releases what it holds and starts again) instead of waiting for a shard while a lazy view
    /// exists, and only one script runs at a time. Scripts that touch few keys so skip locking
    /// all shards.
    pub fn lock_for_command(&self, db: usize, set: Option<ShardSet>, script: bool) -> Db<'_> {
        let lazy = script && set.is_some();
        let guards = self.acquire(set.unwrap_or_else(ShardSet::all));
        if lazy {
            self.lazy_view.store(true, Ordering::SeqCst);
        }
        self.view(db, guards, 0, lazy)
    }

    /// Start loading what looking up `keys` in database `db` will read (a pipelined batch's
    /// keys, before it runs): every key's dict bucket, then every bucket's first entry (see
    /// [`Dict::prefetch_lookups`]), so that their cache misses overlap. A hint: a shard another thread
    /// holds is skipped rather than waited for.
    pub fn prefetch(&self, db: usize, keys: &[&[u8]]) {
        // The shards stay locked until both rounds are issued (never waiting: no deadlock). A
        // shard is locked once however many of the keys are in it.
        const UNSEEN: u8 = u8::MAX;
        const SKIPPED: u8 = u8::MAX - 1;
        let mut slot_of = [UNSEEN; NSHARDS];
        let mut held: SmallVec<[MutexGuard<'_, Shard>; 32]> = SmallVec::new();
        let mut lookups: SmallVec<[(u8, usize); 32]> = SmallVec::new();
        for key in keys {
            let at = locate(key);
            if slot_of[at.shard] == UNSEEN {
                slot_of[at.shard] = match self.shards[at.shard].try_lock() {
                    Some(guard) if guard.dbs.len() > db && held.len() < SKIPPED as usize => {
                        held.push(guard);
                        (held.len() - 1) as u8
                    }
                    _ => SKIPPED,
                };
            }
            if slot_of[at.shard] != SKIPPED {
                lookups.push((slot_of[at.shard], at.hash));
            }
        }
        Dict::prefetch_lookups(|| lookups.iter().map(|&(slot, h)| (&held[slot as usize].dbs[db].main, h)));
        for &(slot, h) in &lookups {
            held[slot as usize].dbs[db].ttls.prefetch(crate::types::hash_index::fold(h));
        }
    }

    /// Lock the shards of `set` in ascending order. While a lazy view exists, never wait for a
    /// shard while holding another: release everything and start again.
    fn acquire(&self, set: ShardSet) -> Guards<'_> {
        // One shard (a single-key command): nothing to order or to back off from.
        if let Some(i) = set.only() {
            let mut guards: Guards<'_> = SmallVec::new();
            guards.push((i, self.shards[i].lock()));
            return guards;
        }
        'again: loop {
            let mut guards: Guards<'_> = SmallVec::new();
            for i in set.iter() {
                let m = &self.shards[i];
                let g = if guards.is_empty() {
                    m.lock()
                } else {
                    match m.try_lock() {
                        Some(g) => g,
                        None => loop {
                            if self.lazy_view.load(Ordering::SeqCst) {
                                drop(guards);
                                std::thread::sleep(std::time::Duration::from_micros(50));
                                continue 'again;
                            }
                            if let Some(g) = m.try_lock_for(std::time::Duration::from_micros(100)) {
                                break g;
                            }
                        },
                    }
                };
                guards.push((i, g));
            }
            return guards;
        }
    }

    fn view<'a>(&'a self, db: usize, guards: Guards<'a>, now: i64, lazy: bool) -> Db<'a> {
        let lfu = self.lfu.enabled();
        Db {
            lazy,
            ks: self,
            guards,
            index: db,
            now_ms: now,
            lru: if lfu { lfu::pack(now, lfu::LFU_INIT_VAL as u8) } else { lru_clock_at(now) },
            lfu,
            effects: LeanVec::new(),
            dirty: 0,
            dirty_before: 0,
            saved_total: 0,
            custom_effect: false,
            no_touch: false,
            expire_mode: ExpireMode::Delete,
            events: LeanVec::new(),
            modified: LeanVec::new(),
            ready: LeanVec::new(),
            by: ModifiedBy::default(),
            hits: 0,
            misses: 0,
            expired: 0,
            key_hint: None,
        }
    }

    /// Start a point-in-time capture (see [`ShardCapture`]). Takes every shard lock for the
    /// moment it takes to mark them, so the caller must hold none.
    pub fn begin_capture(&self, capture: Arc<dyn ShardCapture>) {
        self.begin_capture_then(capture, || ());
    }

    /// [`Keyspace::begin_capture`], running `at_point` while every shard is still locked: no
    /// write can happen in between (the AOF switches to a new file at exactly this point).
    pub fn begin_capture_then<R>(&self, capture: Arc<dyn ShardCapture>, at_point: impl FnOnce() -> R) -> R {
        self.begin_capture_checked(capture, at_point).0
    }

    /// [`Keyspace::begin_capture_then`], also telling whether the captured keyspace holds a
    /// hash with field TTLs (an RDB file holding one must be version 12), and how many keys
    /// it holds.
    pub fn begin_capture_checked<R>(
        &self,
        capture: Arc<dyn ShardCapture>,
        at_point: impl FnOnce() -> R,
    ) -> (R, bool, u64) {
        let mut guards = self.acquire(ShardSet::all());
        let mut field_ttls = false;
        let mut keys = 0;
        for (_, g) in guards.iter_mut() {
            g.capture = Some(capture::Pending::new(capture.clone(), g.dbs.len()));
            field_ttls = field_ttls || g.dbs.iter().any(ShardDb::has_hash_field_ttls);
            keys += g.dbs.iter().map(|d| d.main.len() as u64).sum::<u64>();
        }
        (at_point(), field_ttls, keys)
    }

    /// Hand the capture in progress whatever it has not seen of shard `shard` (the capturing
    /// thread, shard by shard), one segment per hold of the shard's lock: a command on the
    /// shard meanwhile waits for one segment's serialisation at most, not the whole shard's.
    ///
    /// Each hold ends with a fair unlock: parking_lot lets a thread that unlocks and locks
    /// again take the lock before a parked waiter wakes (barging), so a command waiting for the
    /// shard could otherwise miss every one of the 64 handovers and wait for the whole shard
    /// (5-10 ms stalls during a BGSAVE of 5M keys).
    pub fn finish_capture(&self, shard: usize) {
        let databases = self.shards[shard].lock().dbs.len();
        for db in 0..databases {
            for seg in 0..capture::SEGMENTS {
                let mut guard = self.shards[shard].lock();
                let pending = guard.capture_segment(shard, db, seg);
                MutexGuard::unlock_fair(guard);
                if !pending {
                    return;
                }
            }
        }
        self.shards[shard].lock().capture_all(shard);
    }

    /// One step of [`Keyspace::finish_capture`]: segment `seg` of database `db` of shard
    /// `shard` (tests interleave commands with the capturing thread's walk).
    #[cfg(test)]
    pub(crate) fn capture_segment_step(&self, shard: usize, db: usize, seg: usize) {
        self.shards[shard].lock().capture_segment(shard, db, seg);
    }

    /// Whether shard `shard` still has a capture pending (tests).
    #[cfg(test)]
    pub(crate) fn capture_pending(&self, shard: usize) -> bool {
        self.shards[shard].lock().capture.is_some()
    }

    /// Number of keys and keys with an expiry in database `db` (INFO keyspace), without taking
    /// more than one lock at a time.
    pub fn db_counts(&self, db: usize) -> (usize, usize) {
        let mut keys = 0;
        let mut expires = 0;
        for s in self.shards.iter() {
            let s = s.lock();
            keys += s.dbs[db].main.len();
            expires += s.dbs[db].ttls.len();
        }
        (keys, expires)
    }

    /// Active expiry's estimate of the average TTL of database `db`'s keys, in ms (0 when
    /// none was sampled since the database last had no key with a TTL).
    pub fn avg_ttl(&self, db: usize) -> i64 {
        self.avg_ttl.get(db).map_or(0, |a| a.load(Ordering::Relaxed))
    }

    /// Database `db` holds no key with a TTL (seen by INFO, or emptied): its estimate starts
    /// again from the next sample, as Redis's does.
    pub fn forget_avg_ttl(&self, db: usize) {
        if let Some(a) = self.avg_ttl.get(db) {
            a.store(0, Ordering::Relaxed);
        }
    }

    /// What INFO keyspace reports of database `db` (see [`ShardDb::info_counts`]).
    pub fn db_info_counts(&self, db: usize) -> DbCounts {
        self.shards.iter().fold(DbCounts::default(), |acc, s| acc.plus(s.lock().dbs[db].info_counts()))
    }

    /// The databases of `shard` that hold keys with a TTL or hash fields with one: the only
    /// ones active expiry has to visit (a plain lock, held for a few length reads). A shard
    /// with none is no longer marked as holding TTLs.
    pub fn dbs_with_ttls(&self, shard: usize) -> SmallVec<[usize; 16]> {
        let s = self.shards[shard].lock();
        let has_ttls = |d: &ShardDb| !d.ttls.is_empty() || !d.hexpires.is_empty();
        if !s.dbs.iter().any(has_ttls) {
            self.ttl_shards.clear(shard);
            return SmallVec::new();
        }
        s.dbs.iter().enumerate().filter(|(_, d)| has_ttls(d)).map(|(i, _)| i).collect()
    }

    /// Cron work on the next `REHASH_SHARDS_PER_STEP` shards (every shard in turn: with the
    /// default hz, each is looked at every 0.8 s): their key counts (for
    /// [`Keyspace::worth_prefetching`]) and, when `rehash` (activerehashing), a bounded slice of
    /// incremental rehashing and shrinking (commands rehash the tables they touch meanwhile).
    /// Visiting every shard and database at every tick cost an idle server ~60k instructions
    /// per tick.
    pub fn cron_step(&self, rehash: bool, budget: std::time::Duration) {
        const REHASH_SHARDS_PER_STEP: usize = NSHARDS / 8;
        let first = self.rehash_cursor.fetch_add(REHASH_SHARDS_PER_STEP, Ordering::Relaxed) % NSHARDS;
        let per_table = budget / REHASH_SHARDS_PER_STEP as u32;
        for i in (first..first + REHASH_SHARDS_PER_STEP).map(|i| i % NSHARDS) {
            let mut s = self.shards[i].lock();
            let mut keys = 0;
            for d in s.dbs.iter_mut() {
                if rehash {
                    d.main.cron_step(per_table);
                    d.ttls.cron_step(per_table);
                }
                keys += d.main.len();
            }
            drop(s);
            let before = self.shard_keys[i].swap(keys, Ordering::Relaxed);
            if keys >= before {
                self.keys_seen.fetch_add(keys - before, Ordering::Relaxed);
            } else {
                self.keys_seen.fetch_sub(before - keys, Ordering::Relaxed);
            }
        }
    }

    /// Whether the keyspace is big enough for [`Keyspace::prefetch`] to pay: below this many
    /// keys (about 5 MB of entries and buckets, past a usual L2 cache) lookups mostly hit the
    /// cache, and prefetching would only add work. As of the last full round of
    /// [`Keyspace::cron_step`] (8 cron ticks).
    #[inline]
    pub fn worth_prefetching(&self) -> bool {
        const PREFETCH_MIN_KEYS: usize = 64 * 1024;
        self.keys_seen.load(Ordering::Relaxed) >= PREFETCH_MIN_KEYS
    }
}

/// An accessed entry's new metadata: the command's LRU clock, or its LFU counter updated.
fn touched(ks: &Keyspace, lfu: bool, lru: u32, old: u32, now_ms: i64) -> u32 {
    if lfu {
        ks.lfu.touch(old, now_ms)
    } else {
        lru
    }
}

type Guards<'a> = SmallVec<[(usize, MutexGuard<'a, Shard>); 4]>;

/// The slice of database `index` in shard `s` for `key` (which the command must have locked),
/// handed first to a capture in progress; a free function so that a `Db` method can keep
/// using its other fields while holding the result.
fn shard_db_in<'g>(guards: &'g mut Guards<'_>, index: usize, s: usize, key: &[u8]) -> &'g mut ShardDb {
    let guard =
        guard_of(guards, s).expect("command touched a key whose shard it did not lock: its key specs are wrong");
    guard.capture_key(s, index, key);
    &mut guard.dbs[index]
}

/// The guard of shard `s`, if it is locked (the guards are sorted by shard).
fn guard_of<'g, 'a>(guards: &'g mut Guards<'a>, s: usize) -> Option<&'g mut MutexGuard<'a, Shard>> {
    let pos = guard_index(guards, s)?;
    Some(&mut guards[pos].1)
}

/// Where shard `s`'s guard is in `guards`, if it is there.
fn guard_index(guards: &Guards<'_>, s: usize) -> Option<usize> {
    if guards.len() == NSHARDS {
        return Some(s);
    }
    guards.binary_search_by_key(&s, |(i, _)| *i).ok()
}

/// A locked view of one database (plus the ability to switch to another one, for MOVE, COPY
/// and SWAPDB). Dropping it publishes the collected effects, then releases the locks.
pub struct Db<'a> {
    ks: &'a Keyspace,
    /// A script's view: shards not yet locked are locked on first use (see [`Keyspace::lock_for_command`]).
    lazy: bool,
    /// The locked shards, sorted by index.
    guards: Guards<'a>,
    /// The selected database.
    pub index: usize,
    /// The command's notion of "now" (one clock reading per command, as Redis).
    pub now_ms: i64,
    /// A new entry's metadata: the LRU clock, or (LFU) this minute with the initial counter.
    lru: u32,
    /// Entries hold LFU counters (read once per command).
    lfu: bool,
    effects: LeanVec<Effect>,
    /// Number of changes the current command made (Redis's `server.dirty` delta). When it is
    /// non-zero and the handler published no effect of its own, the pipeline propagates the
    /// command as it was received.
    pub dirty: u64,
    /// Changes of the earlier commands run through this view (EXEC).
    dirty_before: u64,
    /// Changes through this view a save made while it was held already wrote to disk.
    saved_total: u64,
    custom_effect: bool,
    /// CLIENT NO-TOUCH: reads do not update the LRU clock.
    pub no_touch: bool,
    /// How expired keys look to the current command.
    pub expire_mode: ExpireMode,
    /// Keyspace events recorded by the command, emitted before the locks are released.
    events: LeanVec<notify::Event>,
    /// Keys the current command reported as modified (through [`Db::notify`]), kept only while
    /// some transaction watches keys: WATCH is invalidated by exactly these.
    modified: LeanVec<Modified>,
    /// Keys that became ready for blocked clients (see `ready`), kept only while some client
    /// waits for the kind of value concerned.
    ready: LeanVec<ready::Ready>,
    /// Who the command's modifications are by (none by default): invalidations they cause
    /// are not sent back to that client in NOLOOP mode.
    pub by: ModifiedBy,
    hits: u64,
    misses: u64,
    expired: u64,
    /// The shard of one key the command named, computed when its locks were chosen (see
    /// [`Db::set_key_hint`]): (address, length, place).
    key_hint: Option<(usize, usize, KeyPlace)>,
}

/// A key a command signalled as modified (Redis's signalModifiedKey), for WATCH: `gone` when
/// the key no longer existed at that moment, which is no change for a watcher that found it
/// already expired (Redis's touchWatchedKey).
#[derive(Debug)]
pub struct Modified {
    pub db: usize,
    pub key: Bytes,
    pub gone: bool,
}

impl Drop for Db<'_> {
    fn drop(&mut self) {
        if self.lazy {
            self.ks.lazy_view.store(false, Ordering::SeqCst);
        }
        let st = &self.ks.stats;
        if self.hits > 0 {
            st.hits.fetch_add(self.hits, Ordering::Relaxed);
        }
        if self.misses > 0 {
            st.misses.fetch_add(self.misses, Ordering::Relaxed);
        }
        if self.expired > 0 {
            st.expired_keys.fetch_add(self.expired, Ordering::Relaxed);
        }
        let dirty = (self.dirty_before + self.dirty + self.expired).saturating_sub(self.saved_total);
        if dirty > 0 {
            st.dirty.fetch_add(dirty, Ordering::Relaxed);
        }
        if !self.effects.is_empty() {
            self.ks.effects.publish(self.effects.take());
        }
        if !self.events.is_empty() {
            self.ks.notifier.emit(&self.events);
        }
        // Readiness no command took (active expiry, eviction, a replica's load...).
        if !self.ready.is_empty() {
            if let Some(b) = self.ks.blocked.get() {
                b.ready(&self.ready);
            }
        }
        // The guards are released after this, so the effects are ordered with the writes.
    }
}

impl<'a> Db<'a> {
    /// Record a keyspace event (Redis's notifyKeyspaceEvent) for `key` in the selected database
    /// and mark the key modified (Redis's signalModifiedKey), the pair Redis's commands call
    /// together; "expired" marks nothing. The event costs nothing unless
    /// notify-keyspace-events enables its class.
    pub fn notify(&mut self, class: u32, event: &'static str, key: &[u8]) {
        if class != notify::EXPIRED {
            self.signal_modified(key);
        }
        self.event_only(class, event, key);
    }

    /// Redis's signalModifiedKey alone: WATCH (through the keys this view reports as
    /// modified) and client-side caching see `key` as modified. This is the only way a
    /// write invalidates them: a change Redis does not signal (a stream's consumer-group
    /// bookkeeping) must not call it.
    pub fn signal_modified(&mut self, key: &[u8]) {
        if self.ks.watches.any() {
            let gone = !self.contains_raw(key);
            self.modified.push(Modified { db: self.index, key: Bytes::copy_from_slice(key), gone });
        }
        self.ks.key_modified(key, self.by);
    }

    /// Redis's notifyKeyspaceEvent alone, for the changes Redis reports without signalling
    /// the key (XGROUP's and XSETID's events): no WATCH or client-side caching invalidation.
    pub fn event_only(&mut self, class: u32, event: &'static str, key: &[u8]) {
        if self.ks.notifier.wants(class) {
            self.events.push(notify::Event { db: self.index, class, name: event, key: Bytes::copy_from_slice(key) });
        }
    }

    /// Set the command's clock reading (unix ms): what expiry compares with, and the access
    /// time (LRU clock or LFU minute) entries get.
    pub fn set_time(&mut self, now: i64) {
        self.now_ms = now;
        self.lru = if self.lfu { lfu::pack(now, lfu::LFU_INIT_VAL as u8) } else { lru_clock_at(now) };
    }

    /// The keys the current command reported as modified (see `modified`).
    pub fn take_modified(&mut self) -> LeanVec<Modified> {
        std::mem::take(&mut self.modified)
    }

    /// Start the next command on this view (EXEC runs several): its change counter and
    /// custom-effect flag start afresh; effects accumulate.
    /// Tell the view the place (shard and hash) of a key argument of the command it serves,
    /// already computed to choose the locks, so that looking the key up does not hash it
    /// again (hashing is the dearest part of a small lookup). The key is recognised by its address and length: that
    /// is sound only for bytes that stay allocated, unchanged, for the view's whole life — the
    /// arguments of the command the view was locked for (scripts' and transactions' inner
    /// calls pass other slices, which simply miss).
    pub fn set_key_hint(&mut self, key: &[u8], place: KeyPlace) {
        self.key_hint = Some((key.as_ptr() as usize, key.len(), place));
    }

    /// The hint's place, when `key` is the argument it was given for.
    #[inline]
    fn hinted(&self, key: &[u8]) -> Option<KeyPlace> {
        match self.key_hint {
            Some((at, len, place)) if at == key.as_ptr() as usize && len == key.len() => Some(place),
            _ => None,
        }
    }

    /// The shard of `key` (the hint's, when `key` is that argument).
    fn shard_of_key(&self, key: &[u8]) -> usize {
        self.hinted(key).map_or_else(|| shard_of(key), |place| place.shard)
    }

    /// The place of `key` (the hint's, when `key` is that argument).
    #[inline]
    fn place_of_key(&self, key: &[u8]) -> KeyPlace {
        self.hinted(key).unwrap_or_else(|| locate(key))
    }

    pub fn begin_command(&mut self, db: usize) {
        self.dirty_before += self.dirty;
        self.dirty = 0;
        self.custom_effect = false;
        self.index = db;
    }

    /// Number of effects recorded so far (to wrap a transaction's effects).
    #[inline]
    pub fn effects_len(&self) -> usize {
        self.effects.len()
    }

    /// Send the effects recorded since `mark` to the AOF only or to replicas only (a script's
    /// writes under `redis.set_repl(REPL_AOF)` / `REPL_REPLICA`).
    pub fn restrict_effects_since(&mut self, mark: usize, aof: bool, replicas: bool) {
        for e in &mut self.effects[mark..] {
            e.aof_only |= aof && !replicas;
            e.replicas_only |= replicas && !aof;
        }
    }

    /// Drop the effects recorded since `mark` (a script's writes under `redis.set_repl(REPL_NONE)`).
    pub fn truncate_effects(&mut self, mark: usize) {
        self.effects.truncate(mark);
    }

    /// Wrap the effects recorded since `mark` in MULTI ... EXEC (a transaction or a script
    /// that wrote more than once is replayed atomically).
    pub fn wrap_effects_since(&mut self, mark: usize) {
        if self.effects.len() - mark < 2 {
            return;
        }
        let db = self.effects[mark].db;
        self.effects.insert(mark, Effect::marker(db, b"MULTI"));
        let last_db = self.effects.last().map_or(db, |e| e.db);
        self.effects.push(Effect::marker(last_db, b"EXEC"));
    }

    pub fn keyspace(&self) -> &'a Keyspace {
        self.ks
    }

    /// The slice of the selected database in the shard of `key` (which the command must have
    /// locked, or which a lazy view locks now).
    fn shard_db(&mut self, key: &[u8]) -> &mut ShardDb {
        self.shard_db_at(self.shard_of_key(key), key)
    }

    /// [`Db::shard_db`] for a key whose shard the caller already computed (a key's CRC16 is
    /// the dearest part of a lookup: compute it once per access).
    fn shard_db_at(&mut self, s: usize, key: &[u8]) -> &mut ShardDb {
        let index = self.index;
        let g = self.guard(s);
        g.capture_key(s, index, key);
        &mut g.dbs[index]
    }

    fn guard(&mut self, s: usize) -> &mut MutexGuard<'a, Shard> {
        self.ensure(s);
        guard_of(&mut self.guards, s)
            .expect("command touched a key whose shard it did not lock: its key specs are wrong")
    }

    /// Start loading what looking up `keys` in the selected database will read, in shards this
    /// view holds: every key's bucket, then every bucket's first entry (see
    /// [`Dict::prefetch_lookups`]), so that the cache misses of their lookups overlap. Used by bulk
    /// inserts (an RDB load), whose keys are known a batch ahead.
    pub fn prefetch(&self, keys: &[&[u8]]) {
        let places: SmallVec<[KeyPlace; 32]> = keys.iter().map(|key| locate(key)).collect();
        Dict::prefetch_lookups(|| {
            places.iter().filter_map(|at| {
                let guard = &self.guards[guard_index(&self.guards, at.shard)?].1;
                Some((&guard.dbs.get(self.index)?.main, at.hash))
            })
        });
    }

    /// Size the selected database's tables, in the shards this view holds, for `keys` keys in
    /// all, `expires` of them with a TTL (an RDB file's RESIZEDB hint, before a bulk load into
    /// an empty keyspace), so that inserting them never grows a table: each growth moves every
    /// entry, a cache miss each. Tables that hold keys already are left alone; the hints are
    /// capped (they come from a file).
    pub fn reserve(&mut self, keys: u64, expires: u64) {
        let per_shard = |n: u64| (n.min(MAX_SIZE_HINT) as usize).div_ceil(NSHARDS);
        let (keys, expires) = (per_shard(keys), per_shard(expires.min(keys)));
        let index = self.index;
        for (_, g) in self.guards.iter_mut() {
            if let Some(d) = g.dbs.get_mut(index) {
                d.main.reserve(keys);
                d.ttls.reserve(expires);
            }
        }
    }

    /// A lazy view locks shard `s` if it has not yet.
    fn ensure(&mut self, s: usize) {
        if self.lazy && guard_of(&mut self.guards, s).is_none() {
            self.lock_more(s);
        }
    }

    /// Lock shard `s` for a lazy view (out of order: see [`Keyspace::lock_for_command`]).
    fn lock_more(&mut self, s: usize) {
        let g = self.ks.shards[s].lock();
        let pos = self.guards.binary_search_by_key(&s, |(i, _)| *i).unwrap_or_else(|p| p);
        self.guards.insert(pos, (s, g));
    }

    /// A lazy view about to cover the whole keyspace (KEYS, SCAN, FLUSHALL...): lock the rest.
    fn lock_everything(&mut self) {
        if self.lazy && self.guards.len() < NSHARDS {
            for s in 0..NSHARDS {
                if guard_of(&mut self.guards, s).is_none() {
                    self.lock_more(s);
                }
            }
        }
    }

    /// Iterate over the locked shards' slices of the selected database (every shard, for a lazy
    /// view).
    /// A capture in progress gets these shards first (the caller may change anything).
    pub fn locked_shards(&mut self) -> impl Iterator<Item = (usize, &mut ShardDb)> + use<'_, 'a> {
        self.lock_everything();
        for (i, g) in self.guards.iter_mut() {
            g.capture_all(*i);
        }
        let index = self.index;
        self.guards.iter_mut().map(move |(i, g)| (*i, &mut g.dbs[index]))
    }

    /// [`Db::locked_shards`] for callers that only read, count or sample (a sample's
    /// incremental rehash step moves entries between tables, it changes none): a capture in
    /// progress is not made to take the shards now. Anything that changes an entry must go
    /// through the key accessors (or [`Db::locked_shards`]).
    pub fn sampled_shards(&mut self) -> impl Iterator<Item = (usize, &mut ShardDb)> + use<'_, 'a> {
        self.lock_everything();
        let index = self.index;
        self.guards.iter_mut().map(move |(i, g)| (*i, &mut g.dbs[index]))
    }

    /// Whether this view holds any shard lock, or may take one (a lazy script view).
    pub fn holds_locks(&self) -> bool {
        self.lazy || !self.guards.is_empty()
    }

    /// Whether every shard is locked, or can be (the view covers the whole keyspace).
    pub fn is_all_locked(&self) -> bool {
        self.lazy || self.guards.len() == NSHARDS
    }

    /// Metadata for an entry created now with a recorded idle time or access frequency
    /// (RESTORE, RDB loading): see [`lfu::initial`].
    pub fn entry_meta(&self, idle: Option<u64>, freq: Option<u8>) -> u32 {
        lfu::initial(self.lfu, self.now_ms, idle, freq)
    }

    /// Whether entries hold LFU counters rather than LRU clocks.
    pub fn lfu(&self) -> bool {
        self.lfu
    }

    /// Record an effect (a command to replay) in the selected database.
    pub fn propagate(&mut self, argv: Vec<Bytes>) {
        if self.ks.effects.is_active() {
            self.effects.push(Effect::new(self.index, argv));
        }
    }

    /// Propagate `argv` to replicas only (not to the AOF): PUBLISH.
    pub fn propagate_to_replicas(&mut self, argv: Vec<Bytes>) {
        if self.ks.effects.is_active() {
            let mut e = Effect::new(self.index, argv);
            e.replicas_only = true;
            self.effects.push(e);
        }
    }

    /// Record the effect of the current command as `argv` instead of the command itself
    /// (Redis's rewriteClientCommandVector / alsoPropagate), e.g. SET EX as SET PXAT.
    pub fn propagate_effect(&mut self, argv: Vec<Bytes>) {
        self.custom_effect = true;
        self.propagate(argv);
    }

    /// The command's own effect is what it already recorded (possibly nothing: HEXPIRE whose
    /// fields were all deleted propagates only their HDELs, XREADGROUP its XCLAIMs), not the
    /// command itself (Redis's preventCommandPropagation).
    pub fn suppress_command_effect(&mut self) {
        self.custom_effect = true;
    }

    /// Whether the handler recorded its own effect (see [`Db::propagate_effect`]).
    pub fn has_custom_effect(&self) -> bool {
        self.custom_effect
    }

    /// Whether anyone consumes effects (so handlers can skip building rewritten commands).
    pub fn propagating(&self) -> bool {
        self.ks.effects.is_active()
    }

    /// Delete `key` if its expiry time has passed. Returns true if it was expired.
    pub fn expire_if_needed(&mut self, key: &[u8]) -> bool {
        self.expire_if_needed_at(self.place_of_key(key), key)
    }

    /// [`Db::expire_if_needed`] for a key at `at`.
    fn expire_if_needed_at(&mut self, at: KeyPlace, key: &[u8]) -> bool {
        let now = self.now_ms;
        let mode = self.expire_mode;
        let ks = self.ks;
        let sd = self.shard_db_at(at.shard, key);
        if sd.ttls.is_empty() || mode == ExpireMode::Keep {
            return false;
        }
        let paused_until = ks.expiry_paused_until.load(Ordering::Relaxed);
        // (`due_ttl` answers only a time that is at most now.)
        match sd.due_ttl(at.hash, key, now) {
            Some(_) if now < paused_until || mode == ExpireMode::Hide => {
                // Paused: the key is gone for readers, but nothing is deleted or propagated.
                true
            }
            Some(_) => {
                let gone = sd.remove_key(at.hash, key).and_then(|(e, _)| ready::WaitKind::of(&e.value));
                if !sd.hexpires.is_empty() {
                    sd.hexpires.remove(key);
                }
                self.note_gone(key, gone);
                self.expired += 1;
                self.notify(notify::EXPIRED, "expired", key);
                self.propagate(vec![Bytes::from_static(b"DEL"), Bytes::copy_from_slice(key)]);
                if self.ks.watches.any() {
                    self.ks.watches.touch(self.index, key, true);
                }
                // Expiry is no client's write, but a NOLOOP client whose own command found
                // the key expired is not told (Redis compares with server.current_client).
                self.ks.key_modified(key, ModifiedBy { current: self.by.current, writer: 0 });
                true
            }
            _ => false,
        }
    }

    /// A key's value as type `T` for reading (lazy expiry, hit/miss, LRU as [`Db::get`]):
    /// None when missing, WRONGTYPE when it holds another type.
    pub fn read<T: Kind>(&mut self, key: &[u8]) -> Result<Option<&T>, WrongType> {
        self.get(key).map(|e| e.value.kind::<T>()).transpose()
    }

    /// A key's value as type `T` for writing (as [`Db::get_mut`]).
    pub fn write<T: Kind>(&mut self, key: &[u8]) -> Result<Option<&mut T>, WrongType> {
        self.get_mut(key).map(|e| e.value.kind_mut::<T>()).transpose()
    }

    /// A key's value as type `T`, created empty when missing (Redis's lookupKeyWrite +
    /// create). A caller that then fails must leave no empty value behind (see
    /// [`Db::remove_if_empty`]).
    pub fn write_or_create<T: Kind>(&mut self, key: &[u8]) -> Result<&mut T, WrongType> {
        self.get_or_insert_with(key, T::empty).0.value.kind_mut::<T>()
    }

    /// The epilogue of every command that removes from a collection: a key whose value of
    /// type `T` is now empty is deleted, with Redis's `del` event. Returns whether it was.
    pub fn remove_if_empty<T: Kind>(&mut self, key: &[u8]) -> bool {
        let spent = self.peek(key).is_some_and(|e| T::of(&e.value).is_some_and(T::is_spent));
        if spent {
            self.delete(key);
            self.notify(notify::GENERIC, "del", key);
        }
        spent
    }

    /// Look a key up for reading: applies lazy expiry, counts a hit or miss, updates the LRU.
    pub fn get(&mut self, key: &[u8]) -> Option<&Entry> {
        self.get_mut(key).map(|e| &*e)
    }

    /// Look a key up for writing (same bookkeeping as [`Db::get`]).
    pub fn get_mut(&mut self, key: &[u8]) -> Option<&mut Entry> {
        let at = self.place_of_key(key);
        if self.expire_if_needed_at(at, key) {
            self.misses += 1;
            return None;
        }
        self.ensure(at.shard);
        match shard_db_in(&mut self.guards, self.index, at.shard, key).main.get_mut_hashed(at.hash, key) {
            Some(e) => {
                self.hits += 1;
                if !self.no_touch {
                    e.lru = touched(self.ks, self.lfu, self.lru, e.lru, self.now_ms);
                }
                Some(e)
            }
            None => {
                self.misses += 1;
                None
            }
        }
    }

    /// The entry of `key`, created with `make()` if absent (or expired); the flag tells whether
    /// it was created. Counts a hit or a miss and touches the LRU like [`Db::get_mut`].
    pub fn get_or_insert_with(&mut self, key: &[u8], make: impl FnOnce() -> Value) -> (&mut Entry, bool) {
        let at = self.place_of_key(key);
        self.expire_if_needed_at(at, key);
        let lru = self.lru;
        self.ensure(at.shard);
        let (e, created) = shard_db_in(&mut self.guards, self.index, at.shard, key).main.get_or_insert_with_hashed(
            at.hash,
            key,
            || Entry::new(make(), lru),
        );
        if created {
            ready::record(&mut self.ready, self.ks, self.index, key, ready::WaitKind::of(&e.value), false);
            self.misses += 1;
            if self.ks.notifier.wants(notify::NEW) {
                let ev =
                    notify::Event { db: self.index, class: notify::NEW, name: "new", key: Bytes::copy_from_slice(key) };
                self.events.push(ev);
            }
        } else {
            self.hits += 1;
            if !self.no_touch {
                e.lru = touched(self.ks, self.lfu, lru, e.lru, self.now_ms);
            }
        }
        (e, created)
    }

    /// Look a key up without touching its LRU clock or the hit/miss statistics (OBJECT, TYPE of internals).
    pub fn peek(&mut self, key: &[u8]) -> Option<&Entry> {
        let at = self.place_of_key(key);
        if self.expire_if_needed_at(at, key) {
            return None;
        }
        self.shard_db_at(at.shard, key).main.get_hashed(at.hash, key)
    }

    /// [`Db::peek`] for writing: lazy expiry, but no LRU or hit/miss bookkeeping (a command's
    /// second look at a key it already looked up).
    pub fn peek_mut(&mut self, key: &[u8]) -> Option<&mut Entry> {
        let at = self.place_of_key(key);
        if self.expire_if_needed_at(at, key) {
            return None;
        }
        self.shard_db_at(at.shard, key).main.get_mut_hashed(at.hash, key)
    }

    /// The entry of `key`, expired or not (no lazy expiry, no statistics: DEBUG OBJECT).
    pub fn peek_raw(&mut self, key: &[u8]) -> Option<&Entry> {
        self.shard_db(key).main.get(key)
    }

    /// Whether `key` is stored, expired or not (no lazy expiry, no statistics).
    pub fn contains_raw(&mut self, key: &[u8]) -> bool {
        self.shard_db(key).main.contains_key(key)
    }

    /// Whether `key` is present but past its expiry time (not yet reclaimed). Deletes nothing.
    pub fn is_expired(&mut self, key: &[u8]) -> bool {
        let now = self.now_ms;
        let sd = self.shard_db(key);
        sd.due_ttl(crate::types::dict::hash_key(key), key, now).is_some()
    }

    pub fn exists(&mut self, key: &[u8]) -> bool {
        let at = self.place_of_key(key);
        if self.expire_if_needed_at(at, key) {
            return false;
        }
        self.shard_db_at(at.shard, key).main.get_hashed(at.hash, key).is_some()
    }

    /// Store `value` under `key`. Unless `keep_ttl`, any expiry is removed (Redis's setKey).
    pub fn set(&mut self, key: &[u8], value: Value, keep_ttl: bool) {
        let (ks, lru, lfu, now) = (self.ks, self.lru, self.lfu, self.now_ms);
        let at = self.place_of_key(key);
        // Redis's setKey looks the key up for writing first: a key past its time is deleted
        // (and its expiry with it, which KEEPTTL must not keep), so the value is added anew.
        self.expire_if_needed_at(at, key);
        let kind = ready::WaitKind::of(&value);
        let sd = self.shard_db_at(at.shard, key);
        if sd.track_hash_ttls(key, &value) {
            ks.ttl_shards.mark(at.shard);
        }
        // The kind the key held when it was overwritten in place (None: it was added).
        let replaced = match sd.main.get_mut_hashed(at.hash, key) {
            Some(e) => {
                let old = ready::WaitKind::of(&e.value);
                e.value = value;
                // Under LFU an overwritten key keeps its counter, counting this access (Redis's
                // setKey: lookupKeyWrite, then dbOverwrite keeps the old `lru` field).
                e.lru = touched(ks, lfu, lru, e.lru, now);
                Some(old)
            }
            None => {
                sd.main.insert_new_hashed(at.hash, key.into(), Entry::new(value, lru));
                None
            }
        };
        if !keep_ttl {
            sd.clear_ttl(at.hash, key);
        }
        match replaced {
            // An overwrite in place (Redis's dbSetValue): only a key's going away is signalled.
            Some(old) => self.note_gone(key, old),
            None => {
                self.note_added(key, kind);
                self.notify(notify::NEW, "new", key);
            }
        }
    }

    /// [`Db::insert_entry`] for a key a command creates (RENAME, COPY, MOVE, RESTORE: Redis's
    /// dbAdd), which tells the `new` event's subscribers. Like dbAdd it does not signal the key
    /// (WATCH, client-side caching): the command does, in Redis's order (RENAME invalidates its
    /// source, then its destination).
    pub fn add_entry(&mut self, key: &[u8], entry: Entry) {
        self.insert_entry(key, entry);
        self.event_only(notify::NEW, "new", key);
    }

    /// Insert an entry as is (RENAME, MOVE, COPY keep the source's metadata).
    pub fn insert_entry(&mut self, key: &[u8], entry: Entry) {
        self.put_entry(key, entry, true);
    }

    /// [`Db::insert_entry`] for a key loaded from a file (Redis's dbAddRDBLoad): no blocked
    /// client is told of it. Returns whether the key is new (else it replaced an entry: one
    /// lookup where a check first took two).
    pub fn load_entry(&mut self, key: &[u8], entry: Entry) -> bool {
        !self.put_entry(key, entry, false)
    }

    /// Returns whether an entry was replaced.
    fn put_entry(&mut self, key: &[u8], entry: Entry, signal: bool) -> bool {
        let kind = ready::WaitKind::of(&entry.value).filter(|_| signal);
        let (ks, at) = (self.ks, self.place_of_key(key));
        let sd = self.shard_db_at(at.shard, key);
        if sd.track_hash_ttls(key, &entry.value) {
            ks.ttl_shards.mark(at.shard);
        }
        // A TTL is the caller's to set again (`set_expire`): the index keeps none for it.
        sd.clear_ttl(at.hash, key);
        let mut entry = entry;
        entry.mark_ttl(false);
        let old = sd.main.insert(key, entry).map(|e| ready::WaitKind::of(&e.value));
        // Replacing is deleting, then adding (RENAME, COPY ... REPLACE, RESTORE ... REPLACE).
        let replaced = old.is_some();
        if let Some(old) = old {
            self.note_gone(key, old);
        }
        self.note_added(key, kind);
        replaced
    }

    /// Delete a key. Returns whether it existed.
    pub fn delete(&mut self, key: &[u8]) -> bool {
        !self.expire_if_needed(key) && self.delete_stored(key)
    }

    /// Delete a key as Redis's dbDelete does, without looking at its expiry first: a key past
    /// its time that is still stored is deleted (and counts as existing), not expired.
    pub fn delete_stored(&mut self, key: &[u8]) -> bool {
        let at = self.place_of_key(key);
        let sd = self.shard_db_at(at.shard, key);
        if let Some((e, _)) = sd.remove_key(at.hash, key) {
            if !sd.hexpires.is_empty() {
                sd.hexpires.remove(key);
            }
            self.note_gone(key, ready::WaitKind::of(&e.value));
            true
        } else {
            false
        }
    }

    /// Remove a key and return its entry and expiry.
    pub fn take(&mut self, key: &[u8]) -> Option<(Entry, Option<i64>)> {
        if self.expire_if_needed(key) {
            return None;
        }
        let at = self.place_of_key(key);
        let sd = self.shard_db_at(at.shard, key);
        let (e, ttl) = sd.remove_key(at.hash, key)?;
        if !sd.hexpires.is_empty() {
            sd.hexpires.remove(key);
        }
        self.note_gone(key, ready::WaitKind::of(&e.value));
        Some((e, ttl))
    }

    /// The absolute expiry (unix ms) of an existing key.
    pub fn expire_of(&mut self, key: &[u8]) -> Option<i64> {
        let at = self.place_of_key(key);
        self.shard_db_at(at.shard, key).ttl_hashed(at.hash, key)
    }

    /// Set the absolute expiry (unix ms) of an existing key.
    pub fn set_expire(&mut self, key: &[u8], when: i64) {
        if self.expire_mode == ExpireMode::LocalWrite {
            self.ks.replica_local_expires.lock().insert((self.index, Bytes::copy_from_slice(key)));
        }
        let at = self.place_of_key(key);
        if self.shard_db_at(at.shard, key).set_ttl(at.hash, key, when) {
            self.ks.ttl_shards.mark(at.shard);
        }
    }

    /// Remove an expiry. Returns whether there was one.
    pub fn persist(&mut self, key: &[u8]) -> bool {
        let at = self.place_of_key(key);
        self.shard_db_at(at.shard, key).clear_ttl(at.hash, key).is_some()
    }

    /// After a field-expiry command changed `key`'s hash in place: queue it for the field-expiry
    /// cycle at its earliest field TTL (moving it up if it was queued later).
    pub fn track_hash_ttls(&mut self, key: &[u8]) {
        let s = self.shard_of_key(key);
        let sd = self.shard_db_at(s, key);
        if let Some(t) = sd.main.get(key).and_then(|e| e.value.earliest_field_ttl()) {
            if sd.hexpires.note(key, t) {
                self.ks.ttl_shards.mark(s);
            }
        }
    }

    /// After HDEL took the last field of `key`'s hash that had a TTL: it no longer counts as a
    /// hash with field TTLs (INFO's subexpiry drops at once, as in Redis 8).
    pub fn untrack_hash_ttls(&mut self, key: &[u8]) {
        self.shard_db(key).hexpires.remove(key);
    }

    /// Count a change (for `rdb_changes_since_last_save`).
    /// A save through this view captured every change made so far: they no longer count as
    /// changes since the last save (Redis's rdbSave resetting `server.dirty`), though the
    /// command still counts as a write for propagation and waking.
    pub fn saved_now(&mut self) {
        self.saved_total = self.dirty_before + self.dirty + self.expired;
    }

    pub fn touch_dirty(&mut self, n: u64) {
        self.dirty += n;
    }

    /// Count an expired key deleted outside of lazy expiry (active expiry).
    pub fn count_expired(&mut self, key: &[u8]) {
        self.expired += 1;
        self.propagate(vec![Bytes::from_static(b"DEL"), Bytes::copy_from_slice(key)]);
    }

    /// Number of keys in the selected database over the locked shards.
    pub fn len(&mut self) -> usize {
        self.sampled_shards().map(|(_, sd)| sd.main.len()).sum()
    }

    pub fn is_empty(&mut self) -> bool {
        self.len() == 0
    }

    /// One SCAN step over the locked shards of the selected database. The cursor holds the
    /// shard index in its low [`SHARD_BITS`] bits and the shard dict's cursor above them.
    /// Visits at least `count` keys unless the iteration ends; returns the next cursor.
    pub fn scan(&mut self, cursor: u64, count: usize, mut f: impl FnMut(&[u8], &Entry)) -> u64 {
        self.lock_everything();
        let mut shard = (cursor & (NSHARDS as u64 - 1)) as usize;
        let mut inner = cursor >> SHARD_BITS;
        let index = self.index;
        let mut visited = 0usize;
        let mut iterations = count.saturating_mul(10).max(1);
        loop {
            let Some(g) = guard_of(&mut self.guards, shard) else {
                return 0;
            };
            let dict = &g.dbs[index].main;
            // Empty shards cost nothing: only visited buckets count against the budget.
            let empty = dict.is_empty();
            inner = dict.scan(inner, |k, e| {
                visited += 1;
                f(k, e)
            });
            if inner == 0 {
                shard += 1;
                if shard == NSHARDS {
                    return 0;
                }
            }
            if empty {
                continue;
            }
            iterations -= 1;
            if visited >= count || iterations == 0 {
                return (inner << SHARD_BITS) | shard as u64;
            }
        }
    }

    /// A random key of the selected database (over the locked shards), skipping expired keys.
    pub fn random_key(&mut self) -> Option<Vec<u8>> {
        use rand::Rng;
        for _ in 0..100 {
            let sizes: Vec<(usize, usize)> = self.sampled_shards().map(|(i, sd)| (i, sd.main.len())).collect();
            let total: usize = sizes.iter().map(|(_, n)| n).sum();
            if total == 0 {
                return None;
            }
            let mut pick = rand::thread_rng().gen_range(0..total);
            let shard = sizes
                .iter()
                .find(|(_, n)| {
                    if pick < *n {
                        true
                    } else {
                        pick -= n;
                        false
                    }
                })
                .map(|(i, _)| *i)?;
            let index = self.index;
            let key = guard_of(&mut self.guards, shard)?.dbs[index].main.random_entry().map(|(k, _)| k.to_vec())?;
            if !self.expire_if_needed(&key) {
                return Some(key);
            }
        }
        None
    }

    /// Every key of the selected database over the locked shards (expired keys included; the
    /// caller filters them with [`Db::is_expired`]).
    pub fn all_keys(&mut self, mut f: impl FnMut(&[u8], Option<i64>)) {
        for (_, sd) in self.sampled_shards() {
            sd.main.for_each(|k, e| f(k, sd.ttl_of(k, e)));
        }
    }

    /// Swap two databases in every shard (requires all shards locked).
    pub fn swap_dbs(&mut self, a: usize, b: usize) {
        self.lock_everything();
        let waited = self.waited_kinds(&[a, b]);
        for (i, g) in self.guards.iter_mut() {
            g.capture_all(*i);
            g.dbs.swap(a, b);
        }
        let avg = &self.ks.avg_ttl;
        let (ta, tb) = (avg[a].load(Ordering::Relaxed), avg[b].load(Ordering::Relaxed));
        avg[a].store(tb, Ordering::Relaxed);
        avg[b].store(ta, Ordering::Relaxed);
        self.after_replace(waited, true);
    }

    /// Empty the selected database (or all of them), returning the old contents so the caller
    /// can free them where it likes (FLUSHDB ASYNC frees on another thread).
    pub fn flush(&mut self, all: bool) -> Vec<ShardDb> {
        self.lock_everything();
        let index = self.index;
        let dbs: Vec<usize> = if all { (0..self.ks.ndbs).collect() } else { vec![index] };
        dbs.iter().for_each(|&db| self.ks.forget_avg_ttl(db));
        let waited = self.waited_kinds(&dbs);
        let mut old = Vec::new();
        for (s, g) in self.guards.iter_mut() {
            g.capture_all(*s);
            for (i, d) in g.dbs.iter_mut().enumerate() {
                if all || i == index {
                    old.push(std::mem::take(d));
                }
            }
        }
        self.after_replace(waited, false);
        old
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn shard_set_only_member() {
        assert_eq!(ShardSet::default().only(), None);
        assert_eq!(ShardSet::single(0).only(), Some(0));
        assert_eq!(ShardSet::single(200).only(), Some(200));
        let mut two = ShardSet::single(3);
        two.insert(4);
        assert_eq!(two.only(), None);
        let mut apart = ShardSet::single(3);
        apart.insert(130);
        assert_eq!(apart.only(), None);
        assert_eq!(ShardSet::all().only(), None);
    }

    use super::*;
    use crate::types::StrValue;

    fn s(v: &str) -> Value {
        Value::Str(StrValue::from_bytes(v.as_bytes()))
    }

    #[test]
    fn a_size_hint_sizes_the_main_and_ttl_tables_of_an_empty_database() {
        let ks = Keyspace::new(2);
        let mut db = ks.lock_all(1);
        // 100 keys a shard, 40 of them with a TTL; the TTL count is capped by the key count.
        db.reserve(100 * NSHARDS as u64, 40 * NSHARDS as u64);
        for (_, sd) in db.locked_shards() {
            assert_eq!((sd.main.buckets(), sd.ttls.buckets()), (128, 51));
        }
        drop(db);
        let mut db = ks.lock_all(0);
        db.reserve(10 * NSHARDS as u64, u64::MAX);
        for (_, sd) in db.locked_shards() {
            assert_eq!(sd.ttls.buckets(), 13);
        }
    }

    #[test]
    fn prefetching_starts_once_the_cron_has_seen_a_big_keyspace_and_never_waits() {
        let ks = Keyspace::new(2);
        let keys: Vec<String> = (0..70_000).map(|i| format!("key:{i}")).collect();
        {
            let mut db = ks.lock_for_command(1, None, false);
            db.set_time(now_ms());
            for k in &keys {
                db.set(k.as_bytes(), s("v"), false);
            }
        }
        assert!(!ks.worth_prefetching(), "not before the cron has counted the keys");
        for _ in 0..8 {
            ks.cron_step(false, std::time::Duration::from_millis(1));
        }
        assert!(ks.worth_prefetching(), "70,000 keys counted in 8 steps");
        // A hint: a shard held elsewhere is skipped, not waited for (this would deadlock).
        let held = ks.lock_keys(1, &[keys[0].as_bytes()]);
        let batch: Vec<&[u8]> = keys[..16].iter().map(|k| k.as_bytes()).chain([&b"missing"[..], b""]).collect();
        ks.prefetch(1, &batch);
        ks.prefetch(15, &batch);
        // Keys sharing a shard (a hash tag, a repeat): the shard is locked once.
        ks.prefetch(1, &[&b"{t}a"[..], b"{t}b", b"{t}a"]);
        drop(held);
        // Flushed: the next full round of steps sees it.
        ks.lock_for_command(1, None, false).flush(true);
        for _ in 0..8 {
            ks.cron_step(false, std::time::Duration::from_millis(1));
        }
        assert!(!ks.worth_prefetching());
    }

    #[test]
    fn lazy_views_lock_on_first_touch_without_deadlock() {
        let ks = Arc::new(Keyspace::new(16));
        // Two keys in different shards; the view declares only the higher one.
        // (The shard hash is seeded per process: "k0" may land in the last shard, so the pair is
        // any two keys of different shards, ordered by shard.)
        let first = "k0".to_string();
        let other = (1..1000)
            .map(|i| format!("k{i}"))
            .find(|k| shard_of(k.as_bytes()) != shard_of(first.as_bytes()))
            .expect("1000 keys over 16 shards reach a second shard");
        let (a, b) =
            if shard_of(first.as_bytes()) < shard_of(other.as_bytes()) { (first, other) } else { (other, first) };
        let mut set = ShardSet::default();
        set.add_key(b.as_bytes());
        let mut view = ks.lock_for_command(0, Some(set), true);
        view.set_time(now_ms());
        view.set(b.as_bytes(), s("1"), false);
        // Another thread locks both shards in order: it must back off while the view holds b.
        let ks2 = ks.clone();
        let (a2, b2) = (a.clone(), b.clone());
        let other = std::thread::spawn(move || {
            let mut db = ks2.lock_keys(0, &[a2.as_bytes(), b2.as_bytes()]);
            db.get(b2.as_bytes()).is_some()
        });
        std::thread::sleep(std::time::Duration::from_millis(20));
        // Out of order (a's shard is lower): locked on first touch.
        view.set(a.as_bytes(), s("2"), false);
        assert!(view.is_all_locked());
        assert_eq!(view.locked_shards().count(), NSHARDS);
        drop(view);
        assert!(other.join().unwrap());
    }

    #[test]
    fn lazy_expiry_deletes_and_propagates_del() {
        let ks = Keyspace::new(16);
        let mut rx = ks.effects.subscribe();
        {
            let mut db = ks.lock_keys(0, &[b"k"]);
            db.set(b"k", s("v"), false);
            let past = db.now_ms - 1;
            db.set_expire(b"k", past);
        }
        {
            let mut db = ks.lock_keys(0, &[b"k"]);
            assert!(db.get(b"k").is_none());
        }
        let batch = rx.try_recv().unwrap();
        assert_eq!(batch, vec![Effect::new(0, vec![Bytes::from_static(b"DEL"), Bytes::from_static(b"k")])]);
        assert_eq!(ks.stats.expired_keys.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn databases_are_separate_and_swappable() {
        let ks = Keyspace::new(16);
        ks.lock_keys(0, &[b"a"]).set(b"a", s("zero"), false);
        ks.lock_keys(1, &[b"a"]).set(b"a", s("one"), false);
        ks.lock_all(0).swap_dbs(0, 1);
        let mut db = ks.lock_keys(0, &[b"a"]);
        assert_eq!(db.get(b"a").unwrap().value, s("one"));
        drop(db);
        assert_eq!(ks.db_counts(1).0, 1);
    }

    #[test]
    fn keys_with_a_hash_tag_share_a_shard_and_others_spread() {
        let shards: std::collections::HashSet<usize> =
            (0..64).map(|i| shard_of(format!("{{user1}}:{i}").as_bytes())).collect();
        assert_eq!(shards.len(), 1);
        assert_eq!(shards.into_iter().next(), Some(shard_of(b"user1")));
        let spread: std::collections::HashSet<usize> =
            (0..4096).map(|i| shard_of(format!("k{i}").as_bytes())).collect();
        assert!(spread.len() > NSHARDS * 9 / 10, "{} shards", spread.len());
        for key in [&b"{user1}:a"[..], b"plain", b"{}x", b"a{b}c"] {
            let at = locate(key);
            assert_eq!((at.shard, at.hash), (shard_of(key), crate::types::dict::hash_key(key)));
        }
    }

    #[test]
    fn keys_of_different_shards_lock_independently() {
        let ks = Keyspace::new(1);
        let a = b"a".as_slice();
        let other = (0..).map(|i| format!("b{i}")).find(|k| shard_of(k.as_bytes()) != shard_of(a)).unwrap();
        let b = other.as_bytes();
        let _ga = ks.lock_keys(0, &[a]);
        // Would deadlock if shards were not independent.
        let mut gb = ks.lock_keys(0, &[b]);
        gb.set(b, s("1"), false);
    }
}
