//! The keys of one shard database that have a TTL, with their expiry times (Redis's `expires`
//! dict, absolute unix time in ms), kept without a second copy of each key.
//!
//! A key's entry says whether it has a TTL ([`Entry::has_ttl`]). The index maps the key's
//! 64-bit hash (the one the main dict uses) to its time, in a dict of 24-byte nodes (hash, time,
//! link): a copy of the key took 48. Two keys with TTLs whose hashes are equal (a pair in about
//! 10^19) cannot share an entry: that hash is then marked shared, and its keys are kept by key
//! instead, now and later (the marks stay; there are a few at most).
//!
//! A key without a TTL is never looked for here: its entry's flag answers. Sampling (active
//! expiry, volatile eviction) draws an entry of the index and finds its key in the main dict's
//! bucket for the hash ([`Dict::find_by_hash`]).
//!
//! Unit tests fold the hashes to three bits ([`FOLD`]), so that shared hashes happen all the
//! time and every test that sets TTLs goes through their handling.

use std::collections::HashSet;

use rand::Rng;

use super::ShardDb;
use crate::types::dict::hash_key;
use crate::types::{Dict, Entry, SmallBytes};

/// The bits of a key's hash the index keys it by: all of them in the server; three in unit
/// tests (see the module's comment).
const FOLD: u64 = if cfg!(test) { 0b111 } else { u64::MAX };

fn fold(h: usize) -> u64 {
    h as u64 & FOLD
}

#[derive(Default)]
pub struct TtlIndex {
    /// Hash -> time, for keys whose hash no other key with a TTL has had.
    by_hash: Dict<i64, u64>,
    /// The keys whose hash is shared. Boxed: almost always absent, and every database of every
    /// shard has an index (an empty one must stay small).
    shared: Option<Box<Shared>>,
}

#[derive(Default)]
struct Shared {
    /// Hashes two keys with TTLs have had.
    hashes: HashSet<u64>,
    /// Key -> time, for keys whose hash is in `hashes`.
    by_key: Dict<i64>,
}

impl TtlIndex {
    /// Keys with a TTL (INFO keyspace's `expires`).
    pub fn len(&self) -> usize {
        self.by_hash.len() + self.shared.as_ref().map_or(0, |s| s.by_key.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Buckets of both tables (DEBUG HTSTATS, MEMORY STATS).
    pub fn buckets(&self) -> usize {
        self.by_hash.buckets() + self.shared.as_ref().map_or(0, |s| s.by_key.buckets())
    }

    /// The cron's rehash and shrink work (see [`Dict::cron_step`]).
    pub fn cron_step(&mut self, budget: std::time::Duration) {
        self.by_hash.cron_step(budget);
        if let Some(s) = &mut self.shared {
            s.by_key.cron_step(budget);
        }
    }

    /// The keys kept by key, when `h` is a shared hash.
    fn shared_for(&self, h: u64) -> Option<&Dict<i64>> {
        self.shared.as_ref().filter(|s| s.hashes.contains(&h)).map(|s| &s.by_key)
    }

    fn by_key(&mut self) -> &mut Dict<i64> {
        &mut self.shared.get_or_insert_with(Box::default).by_key
    }

    /// The time of a key marked as having a TTL.
    fn get(&self, h: u64, key: &[u8]) -> Option<i64> {
        let when = match self.shared_for(h) {
            Some(by_key) => by_key.get(key).copied(),
            None => self.by_hash.get(&h).copied(),
        };
        debug_assert!(when.is_some(), "a key marked as having a TTL is in the index");
        when
    }

    fn remove(&mut self, h: u64, key: &[u8]) -> Option<i64> {
        match self.shared_for(h).is_some() {
            true => self.by_key().remove(key),
            false => self.by_hash.remove(&h),
        }
    }
}

impl ShardDb {
    /// The expiry time of `key` (whose hash is `h`), when it is stored and has one.
    #[inline]
    pub fn ttl_hashed(&self, h: usize, key: &[u8]) -> Option<i64> {
        if self.ttls.is_empty() {
            return None;
        }
        let h64 = fold(h);
        if let Some(by_key) = self.ttls.shared_for(h64) {
            return by_key.get(key).copied();
        }
        // No key with this hash has a TTL: nothing more to look up (most keys, where some
        // have TTLs and others not). Else the time is this key's if it has one: the one key
        // with a TTL and this hash.
        let when = *self.ttls.by_hash.get(&h64)?;
        self.main.get_hashed(h, key).is_some_and(Entry::has_ttl).then_some(when)
    }

    /// [`ShardDb::ttl_hashed`], hashing `key`.
    pub fn ttl(&self, key: &[u8]) -> Option<i64> {
        self.ttl_hashed(hash_key(key), key)
    }

    /// The expiry time of the stored entry `e` of `key` (a walk that holds it: saving).
    pub fn ttl_of(&self, key: &[u8], e: &Entry) -> Option<i64> {
        match e.has_ttl() {
            true => self.ttls.get(fold(hash_key(key)), key),
            false => None,
        }
    }

    /// Set the expiry time of the stored `key`. Returns whether it had none (false too when
    /// the key is not stored: nothing is set then).
    pub fn set_ttl(&mut self, key: &[u8], when: i64) -> bool {
        let h = hash_key(key);
        let h64 = fold(h);
        let Some(e) = self.main.get_hashed(h, key) else { return false };
        let had = e.has_ttl();
        let shared = self.ttls.shared_for(h64).is_some();
        if had || shared {
            match shared {
                true => self.ttls.by_key().insert(key, when),
                false => self.ttls.by_hash.insert(&h64, when),
            };
        } else if let Some(&other_when) = self.ttls.by_hash.get(&h64) {
            // Another key with a TTL has this hash: from now on its keys are kept by key.
            let other = self.key_of(h64);
            debug_assert!(other.is_some(), "an indexed hash belongs to a key marked as having a TTL");
            self.ttls.by_hash.remove(&h64);
            self.ttls.shared.get_or_insert_with(Box::default).hashes.insert(h64);
            let by_key = self.ttls.by_key();
            if let Some(other) = other {
                by_key.insert_new(other, other_when);
            }
            by_key.insert_new(key.into(), when);
        } else {
            self.ttls.by_hash.insert_new(h64, when);
        }
        if let Some(e) = self.main.get_mut_hashed(h, key) {
            e.mark_ttl(true);
        }
        !had
    }

    /// Remove the expiry of the stored `key` (hash `h`), returning it.
    pub fn clear_ttl(&mut self, h: usize, key: &[u8]) -> Option<i64> {
        if self.ttls.is_empty() {
            return None;
        }
        let e = self.main.get_mut_hashed(h, key)?;
        if !e.has_ttl() {
            return None;
        }
        e.mark_ttl(false);
        self.ttls.remove(fold(h), key)
    }

    /// Remove `key` (hash `h`) with its expiry: its entry, unmarked, and the time it had.
    pub fn remove_key(&mut self, h: usize, key: &[u8]) -> Option<(Entry, Option<i64>)> {
        let mut e = self.main.remove(key)?;
        let when = match e.has_ttl() {
            true => {
                e.mark_ttl(false);
                self.ttls.remove(fold(h), key)
            }
            false => None,
        };
        Some((e, when))
    }

    /// A key with a TTL, drawn at random, and its time (Redis's sampling of `expires`).
    pub fn random_ttl(&mut self) -> Option<(Vec<u8>, i64)> {
        let (by_hash, by_key) = (self.ttls.by_hash.len(), self.ttls.len() - self.ttls.by_hash.len());
        if by_key > 0 && rand::thread_rng().gen_range(0..by_hash + by_key) < by_key {
            let (k, &when) = self.ttls.by_key().random_entry()?;
            return Some((k.to_vec(), when));
        }
        let (&h, &when) = self.ttls.by_hash.random_entry()?;
        Some((self.key_of(h)?.to_vec(), when))
    }

    /// The stored key marked as having a TTL whose (folded) hash is `h`, the only one if `h`
    /// is not shared.
    fn key_of(&self, h: u64) -> Option<SmallBytes> {
        if FOLD == u64::MAX {
            return self.main.find_by_hash(h as usize, Entry::has_ttl).map(|(k, _)| SmallBytes::new(k));
        }
        let mut found = None;
        self.main.for_each(|k, e| {
            if e.has_ttl() && fold(hash_key(k)) == h {
                found = Some(SmallBytes::new(k));
            }
        });
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{StrValue, Value};
    use proptest::prelude::*;
    use std::collections::HashMap;

    #[derive(Debug, Clone)]
    enum Op {
        Add(u8),
        SetTtl(u8, i64),
        ClearTtl(u8),
        Remove(u8),
        Sample,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            3 => any::<u8>().prop_map(Op::Add),
            4 => (any::<u8>(), any::<i64>()).prop_map(|(k, t)| Op::SetTtl(k, t)),
            2 => any::<u8>().prop_map(Op::ClearTtl),
            2 => any::<u8>().prop_map(Op::Remove),
            1 => Just(Op::Sample),
        ]
    }

    fn key(k: u8) -> Vec<u8> {
        format!("key:{k}").into_bytes()
    }

    proptest! {
        /// Keys, their TTLs and the samples match a map of key -> TTL, through any sequence of
        /// edits. With the hashes folded to three bits, most keys share a hash with another.
        #[test]
        fn keeps_every_keys_ttl(ops in proptest::collection::vec(op(), 1..400)) {
            let mut sd = ShardDb::default();
            let mut model: HashMap<Vec<u8>, Option<i64>> = HashMap::new();
            for op in ops {
                match op {
                    Op::Add(k) => {
                        if let std::collections::hash_map::Entry::Vacant(slot) = model.entry(key(k)) {
                            sd.main.insert(&key(k), Entry::new(Value::Str(StrValue::from_bytes(b"v")), 0));
                            slot.insert(None);
                        }
                    }
                    Op::SetTtl(k, t) => {
                        let had = model.get(&key(k)).map(|ttl| ttl.is_none());
                        prop_assert_eq!(sd.set_ttl(&key(k), t), had == Some(true));
                        if let Some(ttl) = model.get_mut(&key(k)) {
                            *ttl = Some(t);
                        }
                    }
                    Op::ClearTtl(k) => {
                        let want = model.get_mut(&key(k)).and_then(Option::take);
                        prop_assert_eq!(sd.clear_ttl(hash_key(&key(k)), &key(k)), want);
                    }
                    Op::Remove(k) => {
                        let got = sd.remove_key(hash_key(&key(k)), &key(k)).map(|(e, t)| (e.has_ttl(), t));
                        prop_assert_eq!(got, model.remove(&key(k)).map(|t| (false, t)));
                    }
                    Op::Sample => {
                        let with_ttls = model.values().filter(|t| t.is_some()).count();
                        match sd.random_ttl() {
                            Some((k, t)) => prop_assert_eq!(model.get(&k), Some(&Some(t))),
                            None => prop_assert_eq!(with_ttls, 0),
                        }
                    }
                }
                prop_assert_eq!(sd.ttls.len(), model.values().filter(|t| t.is_some()).count());
            }
            for (k, t) in &model {
                prop_assert_eq!(sd.ttl(k), *t);
                prop_assert_eq!(sd.main.get(k).map(|e| sd.ttl_of(k, e)), Some(*t));
            }
        }
    }

    #[test]
    fn an_empty_index_is_a_dict_and_a_pointer() {
        // Every database of every shard has one (16 x 256 by default): start-up memory.
        assert_eq!(std::mem::size_of::<TtlIndex>(), std::mem::size_of::<Dict<i64>>() + 8);
    }

    #[test]
    fn a_shared_hash_keeps_both_keys_apart() {
        let mut sd = ShardDb::default();
        // Two keys whose folded hashes are equal.
        let a = b"a".to_vec();
        let b = (0..).map(|i| format!("b{i}").into_bytes()).find(|b| fold(hash_key(b)) == fold(hash_key(&a))).unwrap();
        for k in [&a, &b] {
            sd.main.insert(k, Entry::new(Value::Str(StrValue::from_bytes(b"v")), 0));
        }
        assert!(sd.set_ttl(&a, 10));
        assert_eq!((sd.ttls.by_hash.len(), sd.ttls.len()), (1, 1));
        assert!(sd.ttls.shared.is_none());
        assert!(sd.set_ttl(&b, 20));
        assert_eq!((sd.ttls.by_hash.len(), sd.ttls.by_key().len()), (0, 2));
        assert_eq!((sd.ttl(&a), sd.ttl(&b)), (Some(10), Some(20)));
        assert!(!sd.set_ttl(&a, 11));
        assert_eq!(sd.clear_ttl(hash_key(&b), &b), Some(20));
        assert_eq!((sd.ttl(&a), sd.ttl(&b), sd.ttls.len()), (Some(11), None, 1));
        assert_eq!(sd.random_ttl(), Some((a.clone(), 11)));
    }
}
