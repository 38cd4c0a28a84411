//! Hash-field expiry in the keyspace: reclaiming fields whose TTL passed, lazily when a command
//! reaches them and actively from the cron, each deletion propagated as `HDEL key field` and
//! announced with a `hexpired` event (a hash left empty is deleted, with a `del` event), as
//! Redis 7.4+ does. The TTLs themselves live with the hash (`types::hash_ttl`).

use bytes::Bytes;

use super::{notify, Db};
use crate::types::{Entry, Value};

/// What a command finds when it reads a field (Redis's GetFieldRes).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FieldLookup {
    Found(Vec<u8>),
    NotFound,
    /// The field's TTL had passed: it was reclaimed.
    Expired,
    /// ... and it was the hash's last field: the key was deleted too.
    ExpiredHash,
}

/// How a lazy reclaim announces itself (Redis's HFE_LAZY_* flags).
#[derive(Clone, Copy, Debug)]
pub struct Lazy {
    /// Fire `hexpired` (and `del`) now; commands reading several fields fire them once, at
    /// the end.
    pub notify: bool,
    /// Delete a hash left empty (else the command does it at its end).
    pub delete_empty: bool,
}

impl Lazy {
    /// HGET, HEXISTS, HSTRLEN, HINCRBY...: announce and delete at once.
    pub const NOW: Lazy = Lazy { notify: true, delete_empty: true };
    /// HGETDEL, HGETEX, HSETEX: the command announces and deletes at its end.
    pub const DEFERRED: Lazy = Lazy { notify: false, delete_empty: false };
}

impl Db<'_> {
    /// Count `n` hash fields reclaimed after their TTL or deleted by a TTL in the past
    /// (INFO's expired_subkeys).
    pub fn count_expired_fields(&self, n: u64) {
        if n > 0 {
            self.ks.stats.expired_subkeys.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
        }
    }

    fn hash_mut(&mut self, key: &[u8]) -> Option<&mut crate::types::HashValue> {
        match self.peek_mut(key) {
            Some(Entry { value: Value::Hash(h), .. }) => Some(h),
            _ => None,
        }
    }

    /// Read `field` of the hash at `key` (which the caller already looked up and type-checked),
    /// reclaiming it if its TTL has passed (Redis's hashTypeGetValue).
    pub fn hash_field(&mut self, key: &[u8], field: &[u8], how: Lazy) -> FieldLookup {
        let now = self.now_ms;
        let Some(h) = self.hash_mut(key) else {
            return FieldLookup::NotFound;
        };
        let Some(value) = h.get(field) else {
            return FieldLookup::NotFound;
        };
        if !h.is_expired(field, now) {
            return FieldLookup::Found(value.to_vec());
        }
        h.remove(field);
        let emptied = h.is_empty();
        self.count_expired_fields(1);
        self.propagate(vec![Bytes::from_static(b"HDEL"), Bytes::copy_from_slice(key), Bytes::copy_from_slice(field)]);
        if how.notify {
            self.notify(notify::HASH, "hexpired", key);
        }
        if emptied && how.delete_empty {
            if how.notify {
                self.notify(notify::GENERIC, "del", key);
            }
            self.delete(key);
            return FieldLookup::ExpiredHash;
        }
        FieldLookup::Expired
    }

    /// Reclaim every field of the hash at `key` whose TTL passed (before `now`; with
    /// `inclusive` also at it, as the active cycle counts), at most `max`. Announces `hexpired`
    /// once, deletes an emptied hash (`del`). Returns (fields reclaimed, key deleted).
    pub fn expire_hash_fields(&mut self, key: &[u8], inclusive: bool, max: usize) -> (usize, bool) {
        let now = self.now_ms;
        let Some(h) = self.hash_mut(key) else {
            return (0, false);
        };
        let due = h.due_fields(now, inclusive, max);
        if due.is_empty() {
            return (0, false);
        }
        for f in &due {
            h.remove(f);
        }
        let emptied = h.is_empty();
        self.count_expired_fields(due.len() as u64);
        let k = Bytes::copy_from_slice(key);
        for f in &due {
            self.propagate(vec![Bytes::from_static(b"HDEL"), k.clone(), Bytes::copy_from_slice(f)]);
        }
        self.notify(notify::HASH, "hexpired", key);
        if emptied {
            self.notify(notify::GENERIC, "del", key);
            self.delete(key);
        }
        (due.len(), emptied)
    }
}

/// Fields reclaimed per hash and cycle at most (Redis's active field-expiry quota).
const FIELDS_PER_HASH: usize = 1000;
/// Hashes taken per database slice and cycle at most (a database has 256 slices: a cycle
/// collects at most 51,200 of its hashes, and reclaims what its time allows).
const HASHES_PER_SLICE: usize = 200;

/// A hash due for field expiry, as one cycle collects them from every shard: its queued time,
/// shard, database and key. Sorted, they are taken in Redis's order: earliest first.
pub type Due = (i64, usize, usize, Vec<u8>);

/// Collect into `out` the hashes of the slice `view` locks (database `db` of `shard`) queued at
/// or before `now`.
pub fn collect_due(view: &mut Db, shard: usize, db: usize, now: i64, out: &mut Vec<Due>) {
    if let Some((_, sd)) = view.locked_shards().next() {
        out.extend(sd.hexpires.due(now, HASHES_PER_SLICE).map(|(at, k)| (at, shard, db, k.to_vec())));
    }
}

/// Reclaim the due fields of the hash at `key` (in the slice `view` locks), then queue it again
/// at its next field TTL, or forget it if it has none. Returns the number of fields reclaimed.
pub fn reclaim_due(view: &mut Db, key: &[u8]) -> usize {
    let (n, deleted) = view.expire_hash_fields(key, true, FIELDS_PER_HASH);
    if !deleted {
        let earliest = view.peek_raw(key).and_then(|e| e.value.earliest_field_ttl());
        if let Some((_, sd)) = view.locked_shards().next() {
            match earliest {
                Some(t) => sd.hexpires.requeue(key, t),
                None => sd.hexpires.remove(key),
            }
        }
    }
    n
}
