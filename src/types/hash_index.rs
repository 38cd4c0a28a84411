//! A map keyed by a key's hash instead of a copy of the key, for an index whose owner can tell
//! which key an entry belongs to: the keyspace's TTL index (by the entry's TTL flag) and a
//! sorted set's member index (by the skiplist node's member). Entries live in a
//! [`ProbeTable`], keyed by the hash's low 31 bits (12-byte slots for a TTL, 8 for a node).
//! Two keys whose hashes agree in those bits cannot share an entry: the second one's insert
//! marks the tag shared, and the keys of a shared tag are kept by key, now and later (the
//! marks stay: about n^2 / 2^32 pairs among n keys in one table, 230 in a sorted set of a
//! million members, none in most TTL tables, which hold a 256th of a database each).
//!
//! Unit tests fold the hashes to three bits ([`fold`]), so that shared hashes happen all the
//! time and every test of the owners goes through their handling.

use std::collections::HashSet;

use rand::Rng;

use super::dict::hash_key;
use super::probe_table::{tag_of, ProbeTable, TAG_BITS};
use super::{Dict, SmallBytes};

/// The bits of a hash an index keys by: all of them in the server, three in unit tests.
const FOLD: u64 = if cfg!(test) { 0b111 } else { u64::MAX };

/// Whether hashes are folded (unit tests): a folded hash does not locate a dict bucket.
pub const FOLDED: bool = FOLD != u64::MAX;

/// The hash an index keys a key by, from its dict hash `h` ([`hash_key`]).
#[inline]
pub fn fold(h: usize) -> u64 {
    h as u64 & FOLD
}

/// The hash an index keys `key` by.
pub fn hash_of(key: &[u8]) -> u64 {
    fold(hash_key(key))
}

pub struct HashIndex<V: Copy + Default> {
    /// Hash -> value, for keys whose hash (the bits a tag keeps) no other key has had.
    by_hash: ProbeTable<V>,
    /// The keys whose hash is shared. Boxed: almost always absent, and an empty index must
    /// stay small (every database of every shard has a TTL index).
    shared: Option<Box<Shared<V>>>,
}

struct Shared<V> {
    /// Tags two keys' hashes have had (already random: ahash, not SipHash).
    hashes: HashSet<u32, ahash::RandomState>,
    /// Key -> value, for keys whose hash is in `hashes`.
    by_key: Dict<V>,
}

impl<V: Copy + Default> Default for HashIndex<V> {
    fn default() -> Self {
        HashIndex { by_hash: ProbeTable::default(), shared: None }
    }
}

/// An entry drawn at random: by hash (its owner finds the key: the one whose hash equals it in
/// the bits [`TAG_BITS`] names) or by key.
pub enum Drawn<'a, V> {
    Hash(u64, V),
    Key(&'a [u8], V),
}

impl<V: Copy + Default> HashIndex<V> {
    /// Size an empty index for `n` entries (see [`ProbeTable::reserve`]).
    pub fn reserve(&mut self, n: usize) {
        self.by_hash.reserve(n);
    }

    pub fn len(&self) -> usize {
        self.by_hash.len() + self.shared.as_ref().map_or(0, |s| s.by_key.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Entries kept by key (their hash is shared).
    pub fn kept_by_key(&self) -> usize {
        self.shared.as_ref().map_or(0, |s| s.by_key.len())
    }

    /// Slots and buckets of both tables (DEBUG HTSTATS, MEMORY STATS).
    pub fn buckets(&self) -> usize {
        self.by_hash.slots() + self.shared.as_ref().map_or(0, |s| s.by_key.buckets())
    }

    /// The cron's resizing work (see [`ProbeTable::cron_step`]).
    pub fn cron_step(&mut self, budget: std::time::Duration) {
        self.by_hash.cron_step(budget);
        if let Some(s) = &mut self.shared {
            s.by_key.cron_step(budget);
        }
    }

    fn is_shared(&self, t: u32) -> bool {
        self.shared.as_ref().is_some_and(|s| s.hashes.contains(&t))
    }

    fn shared_mut(&mut self) -> &mut Shared<V> {
        self.shared.get_or_insert_with(|| Box::new(Shared { hashes: HashSet::default(), by_key: Dict::new() }))
    }

    // A shared tag is never in `by_hash`: the table is asked first, the shared keys only when
    // it has no entry for the tag.

    /// The value for `key` (hash `h`), and whether it is certainly `key`'s: when false, it is
    /// the value of the one key with hash `h`, which the owner must check is `key`.
    #[inline]
    pub fn lookup(&self, h: u64, key: &[u8]) -> Option<(V, bool)> {
        let t = tag_of(h);
        if let Some(v) = self.by_hash.get(t) {
            return Some((v, false));
        }
        match &self.shared {
            Some(s) if s.hashes.contains(&t) => s.by_key.get(key).map(|&v| (v, true)),
            _ => None,
        }
    }

    /// Hint the CPU to load where a lookup of hash `h` starts (a pipelined batch's prefetch).
    #[inline]
    pub fn prefetch(&self, h: u64) {
        if !self.is_empty() {
            self.by_hash.prefetch(tag_of(h));
        }
    }

    /// Replace the value of `key`, which the owner knows has one.
    pub fn set(&mut self, h: u64, key: &[u8], v: V) {
        let done = self.by_hash.set(tag_of(h), v) || self.shared_mut().by_key.get_mut(key).map(|w| *w = v).is_some();
        debug_assert!(done, "the owner knows the key has an entry");
    }

    /// Add `key`, which has no entry yet. When another key has its hash, `owner` gets that
    /// key's value and names it, and both are kept by key from then on.
    pub fn insert(&mut self, h: u64, key: &[u8], v: V, owner: impl FnOnce(V) -> Option<SmallBytes>) {
        let t = tag_of(h);
        if let Some(other) = self.by_hash.remove(t) {
            let other_key = owner(other);
            debug_assert!(other_key.is_some(), "an indexed hash has an owner");
            let s = self.shared_mut();
            s.hashes.insert(t);
            if let Some(o) = other_key {
                s.by_key.insert_new(o, other);
            }
            s.by_key.insert_new(key.into(), v);
        } else if self.is_shared(t) {
            self.shared_mut().by_key.insert_new(key.into(), v);
        } else {
            self.by_hash.insert_new(t, v);
        }
    }

    /// Remove the entry of `key`, which the owner knows has one.
    pub fn remove(&mut self, h: u64, key: &[u8]) -> Option<V> {
        let t = tag_of(h);
        self.by_hash.remove(t).or_else(|| self.shared.as_mut()?.by_key.remove(key))
    }

    /// An entry drawn at random (as Redis samples a dict).
    pub fn draw(&mut self) -> Option<Drawn<'_, V>> {
        let by_hash = self.by_hash.len();
        let by_key = self.len() - by_hash;
        if by_key > 0 && rand::thread_rng().gen_range(0..by_hash + by_key) < by_key {
            let (k, &v) = self.shared_mut().by_key.random_entry()?;
            return Some(Drawn::Key(k, v));
        }
        self.by_hash.random_entry().map(|(k, v)| Drawn::Hash(u64::from(k) & TAG_BITS, v))
    }

    /// One step of a SCAN over the values, with the tag-ordered cursor of the table (see
    /// [`ProbeTable::scan`]); the values kept by key come with the last step.
    pub fn scan(&self, cursor: u64, count: usize, mut f: impl FnMut(V)) -> u64 {
        let next = self.by_hash.scan(cursor, count, |_, v| f(v));
        if next == 0 {
            if let Some(s) = &self.shared {
                s.by_key.for_each(|_, &v| f(v));
            }
        }
        next
    }

    /// A copy, entry for entry.
    pub fn copy(&self) -> HashIndex<V> {
        let shared = self.shared.as_ref().map(|s| {
            let mut by_key = Dict::new();
            s.by_key.for_each(|k, &v| {
                by_key.insert_new(k.into(), v);
            });
            Box::new(Shared { hashes: s.hashes.clone(), by_key })
        });
        HashIndex { by_hash: self.by_hash.clone(), shared }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_that_share_a_hash_are_kept_by_key() {
        let a = b"a".to_vec();
        let b = (0..).map(|i| format!("b{i}").into_bytes()).find(|b| hash_of(b) == hash_of(&a)).unwrap();
        let h = hash_of(&a);
        let mut ix: HashIndex<u32> = HashIndex::default();
        ix.insert(h, &a, 1, |_| unreachable!("no other key yet"));
        // By hash: the value of the one key with that hash, for the owner to check.
        assert_eq!((ix.lookup(h, &a), ix.lookup(h, &b)), (Some((1, false)), Some((1, false))));
        ix.insert(h, &b, 2, |v| (v == 1).then(|| a.as_slice().into()));
        assert_eq!((ix.len(), ix.kept_by_key()), (2, 2));
        assert_eq!((ix.lookup(h, &a), ix.lookup(h, &b), ix.lookup(h, b"c")), (Some((1, true)), Some((2, true)), None));
        ix.set(h, &b, 3);
        let copy = ix.copy();
        let mut seen = Vec::new();
        assert_eq!(copy.scan(0, 10, |v| seen.push(v)), 0);
        seen.sort_unstable();
        assert_eq!(seen, [1, 3]);
        assert!(matches!(ix.draw(), Some(Drawn::Key(_, _))));
        assert_eq!((ix.remove(h, &a), ix.len()), (Some(1), 1));
        // The hash stays shared: a key with it is kept by key.
        assert_eq!(ix.lookup(h, &b), Some((3, true)));
    }
}
