//! The keys of one shard database that have a TTL, with their expiry times (Redis's `expires`
//! dict, absolute unix time in ms), kept without a second copy of each key.
//!
//! A key's entry says whether it has a TTL ([`Entry::has_ttl`]). The index maps the low 31
//! bits of the key's hash (the one the main dict uses) to its time, a [`HashIndex`] over a
//! [`ProbeTable`] of 12-byte slots: a copy of the key took 48 bytes, a chained table's node
//! and bucket 35. Keys with TTLs whose hashes are equal in those bits are kept by key (see
//! `types::hash_index`); the only key with a TTL and given bits is the one whose entry is
//! marked.
//!
//! A lookup asks the index first: a key whose hash no key with a TTL has costs one probe (a
//! hash compared, not the key); a hit is confirmed by the entry's flag. Sampling (active
//! expiry, volatile eviction) draws an entry of the index and finds its key in the main dict's
//! bucket for the hash bits ([`Dict::find_by_hash`]; a bucket index never needs more than 31).
//!
//! Unit tests fold the hashes to three bits (`hash_index::fold`), so that shared hashes happen
//! all the time and every test that sets TTLs goes through their handling.

use super::ShardDb;
use crate::types::dict::hash_key;
use crate::types::hash_index::{fold, hash_of, Drawn, HashIndex, FOLDED};
use crate::types::probe_table::TAG_BITS;
use crate::types::{Dict, Entry, SmallBytes};

/// The keys with a TTL, by hash, and their times.
pub type TtlIndex = HashIndex<i64>;

/// The stored key marked as having a TTL whose (folded) hash equals `h` in the bits the index
/// keeps: the only one, or, when a key about to get a TTL has those bits too, the other one.
fn key_of(main: &Dict<Entry>, h: u64) -> Option<SmallBytes> {
    if !FOLDED {
        return main.find_by_hash(h as usize, TAG_BITS as usize, Entry::has_ttl).map(|(k, _)| SmallBytes::new(k));
    }
    let mut found = None;
    main.for_each(|k, e| {
        if e.has_ttl() && hash_of(k) & TAG_BITS == h & TAG_BITS {
            found = Some(SmallBytes::new(k));
        }
    });
    found
}

impl ShardDb {
    /// The expiry time of `key` (whose hash is `h`), when it is stored and has one.
    #[inline]
    pub fn ttl_hashed(&self, h: usize, key: &[u8]) -> Option<i64> {
        // Every time is at most i64::MAX: the time, confirmed as this key's.
        self.due_ttl(h, key, i64::MAX)
    }

    /// The expiry time of `key` (hash `h`) when it has one that is at most `now`: whether the
    /// key is due to expire. A time after `now` found for the key's hash answers without
    /// confirming that it is this key's (either way the key is not due), so a key with a TTL
    /// that is not due costs one probe of the index and no lookup of the main dict.
    #[inline]
    pub fn due_ttl(&self, h: usize, key: &[u8], now: i64) -> Option<i64> {
        if self.ttls.is_empty() {
            return None;
        }
        // No key with this hash has a TTL: nothing more to look up (most keys, where some
        // have TTLs and others not). Else the time is this key's if it has one: the one key
        // with a TTL and this hash.
        let (when, certain) = self.ttls.lookup(fold(h), key)?;
        (when <= now && (certain || self.main.get_hashed(h, key).is_some_and(Entry::has_ttl))).then_some(when)
    }

    /// [`ShardDb::ttl_hashed`], hashing `key`.
    pub fn ttl(&self, key: &[u8]) -> Option<i64> {
        self.ttl_hashed(hash_key(key), key)
    }

    /// The expiry time of the stored entry `e` of `key` (a walk that holds it: saving).
    pub fn ttl_of(&self, key: &[u8], e: &Entry) -> Option<i64> {
        if !e.has_ttl() {
            return None;
        }
        let when = self.ttls.lookup(hash_of(key), key).map(|(when, _)| when);
        debug_assert!(when.is_some(), "a key marked as having a TTL is in the index");
        when
    }

    /// Set the expiry time of the stored `key` (hash `h`). Returns whether it had none (false
    /// too when the key is not stored: nothing is set then).
    pub fn set_ttl(&mut self, h: usize, key: &[u8], when: i64) -> bool {
        let Some(e) = self.main.get_hashed(h, key) else { return false };
        if e.has_ttl() {
            self.ttls.set(fold(h), key, when);
            return false;
        }
        let main = &self.main;
        self.ttls.insert(fold(h), key, when, |_| key_of(main, fold(h)));
        if let Some(e) = self.main.get_mut_hashed(h, key) {
            e.mark_ttl(true);
        }
        true
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
        match self.ttls.draw()? {
            Drawn::Key(k, when) => Some((k.to_vec(), when)),
            Drawn::Hash(h, when) => Some((key_of(&self.main, h)?.to_vec(), when)),
        }
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
                        prop_assert_eq!(sd.set_ttl(hash_key(&key(k)), &key(k), t), had == Some(true));
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
                for now in [i64::MIN, 0, t.unwrap_or(0), i64::MAX] {
                    prop_assert_eq!(sd.due_ttl(hash_key(k), k, now), t.filter(|&w| w <= now));
                }
                prop_assert_eq!(sd.main.get(k).map(|e| sd.ttl_of(k, e)), Some(*t));
            }
            // A key not stored has no TTL, even one whose folded hash a key with a TTL has.
            for k in (0..=255u8).map(key).filter(|k| !model.contains_key(k)) {
                prop_assert_eq!(sd.due_ttl(hash_key(&k), &k, i64::MAX), None);
            }
        }
    }

    #[test]
    fn an_empty_index_is_small() {
        // Every database of every shard has one (16 x 256 by default): start-up memory.
        assert_eq!(std::mem::size_of::<TtlIndex>(), 40);
    }

    #[test]
    fn a_shared_hash_keeps_both_keys_apart() {
        let mut sd = ShardDb::default();
        // Two keys whose folded hashes are equal.
        let a = b"a".to_vec();
        let b = (0..).map(|i| format!("b{i}").into_bytes()).find(|b| hash_of(b) == hash_of(&a)).unwrap();
        for k in [&a, &b] {
            sd.main.insert(k, Entry::new(Value::Str(StrValue::from_bytes(b"v")), 0));
        }
        assert!(sd.set_ttl(hash_key(&a), &a, 10));
        assert_eq!((sd.ttls.len(), sd.ttls.kept_by_key()), (1, 0));
        assert!(sd.set_ttl(hash_key(&b), &b, 20));
        assert_eq!((sd.ttls.len(), sd.ttls.kept_by_key()), (2, 2));
        assert_eq!((sd.ttl(&a), sd.ttl(&b)), (Some(10), Some(20)));
        assert!(!sd.set_ttl(hash_key(&a), &a, 11));
        assert_eq!(sd.clear_ttl(hash_key(&b), &b), Some(20));
        assert_eq!((sd.ttl(&a), sd.ttl(&b), sd.ttls.len()), (Some(11), None, 1));
        assert_eq!(sd.random_ttl(), Some((a.clone(), 11)));
    }
}
