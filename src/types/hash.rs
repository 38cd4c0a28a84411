//! A hash of field → value byte strings (Redis hashes): the representation and its encodings.
//!
//! Encodings, as in Redis 7.4+:
//! - `listpack`: a small vector of (field, value) pairs in insertion order, used while the hash
//!   has at most `hash-max-listpack-entries` entries and every field and value is at most
//!   `hash-max-listpack-value` bytes;
//! - `listpackex`: the same once a field-expiry command touched the hash, with a TTL per pair
//!   (see `hash_ttl.rs`);
//! - `hashtable`: a [`Dict`], once either limit is exceeded (with the fields' TTLs beside it
//!   when some field has one). A hash never converts back.
//!
//! Field TTLs (hash-field expiry, HEXPIRE and friends) live in `hash_ttl.rs`; the plain
//! operations here keep working on every encoding, seeing every field, expired or not (the
//! commands decide when a field whose time has passed is reclaimed).

use rand::Rng;

pub use super::hash_ttl::{LpEx, TableEx};
use crate::types::packed::{takes, Packed};
use crate::types::Dict;
use crate::types::SmallBytes;

/// The conversion thresholds (from the configuration at the time of the write).
#[derive(Clone, Copy, Debug)]
pub struct HashLimits {
    pub max_entries: usize,
    pub max_value: usize,
}

pub enum HashValue {
    /// Alternating field and value entries.
    Listpack(Packed),
    /// Pairs with a TTL each, in Redis's listpackex order.
    ListpackEx(Box<LpEx>),
    Table(Box<Dict<SmallBytes>>),
    /// A hash table with some field TTLs.
    TableEx(Box<TableEx>),
}

impl Default for HashValue {
    fn default() -> Self {
        HashValue::Listpack(Packed::new())
    }
}

fn clone_dict(d: &Dict<SmallBytes>) -> Dict<SmallBytes> {
    let mut n = Dict::new();
    d.for_each(|k, v| {
        n.insert_new(k.into(), v.clone());
    });
    n
}

impl Clone for HashValue {
    fn clone(&self) -> Self {
        match self {
            HashValue::Listpack(v) => HashValue::Listpack(v.clone()),
            HashValue::ListpackEx(v) => HashValue::ListpackEx(v.clone()),
            HashValue::Table(d) => HashValue::Table(Box::new(clone_dict(d))),
            HashValue::TableEx(t) => HashValue::TableEx(Box::new(TableEx {
                dict: clone_dict(&t.dict),
                ttls: t.ttls.clone(),
                by_time: t.by_time.clone(),
            })),
        }
    }
}

impl PartialEq for HashValue {
    /// Same encoding and same field → (value, TTL) contents (the order of a listpack is
    /// ignored).
    fn eq(&self, other: &Self) -> bool {
        if self.encoding() != other.encoding() || self.len() != other.len() {
            return false;
        }
        let mut eq = true;
        self.for_each(|f, v| eq &= other.get(f) == Some(v) && self.ttl(f) == other.ttl(f));
        eq
    }
}

impl std::fmt::Debug for HashValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut m = f.debug_map();
        self.for_each(|k, v| {
            m.entry(&String::from_utf8_lossy(k), &String::from_utf8_lossy(v));
        });
        m.finish()
    }
}

impl HashValue {
    /// The name OBJECT ENCODING reports.
    pub fn encoding(&self) -> &'static str {
        match self {
            HashValue::Listpack(_) => "listpack",
            HashValue::ListpackEx(_) => "listpackex",
            HashValue::Table(_) | HashValue::TableEx(_) => "hashtable",
        }
    }

    /// Number of fields, expired ones not yet reclaimed included (Redis's hashTypeLength(o, 0),
    /// what HLEN answers).
    pub fn len(&self) -> usize {
        match self {
            HashValue::Listpack(v) => v.len() / 2,
            HashValue::ListpackEx(v) => v.entries.len(),
            HashValue::Table(d) => d.len(),
            HashValue::TableEx(t) => t.dict.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A field's value, whether its TTL has passed or not.
    pub fn get(&self, field: &[u8]) -> Option<&[u8]> {
        match self {
            HashValue::Listpack(v) => v.pair_get(field),
            HashValue::ListpackEx(v) => v.entries.iter().find(|e| *e.0 == *field).map(|e| &*e.1),
            HashValue::Table(d) => d.get(field).map(|v| &**v),
            HashValue::TableEx(t) => t.dict.get(field).map(|v| &**v),
        }
    }

    pub fn contains(&self, field: &[u8]) -> bool {
        self.get(field).is_some()
    }

    /// An empty hash in the table encoding, sized for `fields` fields (a loaded hash: Redis's
    /// rdbLoad expands its dict to the length read too).
    pub fn table_for(fields: usize) -> Self {
        let mut d = Dict::new();
        d.reserve(fields);
        HashValue::Table(Box::new(d))
    }

    /// Convert to a hash table (no-op if already one); field TTLs are kept.
    pub fn convert_to_table(&mut self) {
        match self {
            HashValue::Listpack(v) => {
                let mut d = Dict::new();
                let mut it = v.iter();
                while let (Some(f), Some(val)) = (it.next(), it.next()) {
                    d.insert_new(SmallBytes::new(f), SmallBytes::new(val));
                }
                *self = HashValue::Table(Box::new(d));
            }
            HashValue::ListpackEx(v) => *self = HashValue::TableEx(Box::new(v.to_table())),
            HashValue::Table(_) | HashValue::TableEx(_) => {}
        }
    }

    fn is_listpack(&self) -> bool {
        matches!(self, HashValue::Listpack(_) | HashValue::ListpackEx(_))
    }

    /// Whether `add` more bytes of fields and values keep a listpack within Redis's 1 GiB
    /// (lpSafeToAdd); a table always takes them. A listpackex is summed only where the limits
    /// let it get there.
    fn listpack_takes(&self, add: usize, limits: HashLimits) -> bool {
        match self {
            HashValue::Listpack(p) => p.fits(add),
            HashValue::ListpackEx(v) => {
                let bound = limits.max_entries.saturating_mul(limits.max_value.saturating_mul(2));
                takes(bound, add, || v.entries.iter().map(|(f, v, _)| f.len() + v.len()).sum())
            }
            HashValue::Table(_) | HashValue::TableEx(_) => true,
        }
    }

    /// Redis 7.2's hashTypeTryConversion: convert before a write of these field/value strings
    /// if there are more pairs than the listpack entry limit (counting duplicates: Redis presizes
    /// the table from the argument count), any string is longer than the value limit, or the
    /// listpack would pass 1 GiB.
    pub fn try_conversion<'a>(&mut self, args: impl IntoIterator<Item = &'a [u8]>, limits: HashLimits) {
        if !self.is_listpack() {
            return;
        }
        let (mut strings, mut long, mut sum) = (0usize, false, 0usize);
        for a in args {
            strings += 1;
            long |= a.len() > limits.max_value;
            sum = sum.saturating_add(a.len());
        }
        if long || strings / 2 > limits.max_entries || !self.listpack_takes(sum, limits) {
            self.convert_to_table();
        }
    }

    /// Set a field, dropping any TTL it had (HSET); returns true if the field is new (Redis's
    /// hashTypeSet, returning !update).
    pub fn set(&mut self, field: &[u8], value: &[u8], limits: HashLimits) -> bool {
        self.set_with(field, value, limits, false)
    }

    /// Set a field keeping the TTL it had (HINCRBY, HSETEX KEEPTTL...); returns true if new.
    pub fn set_keep_ttl(&mut self, field: &[u8], value: &[u8], limits: HashLimits) -> bool {
        self.set_with(field, value, limits, true)
    }

    fn set_with(&mut self, field: &[u8], value: &[u8], limits: HashLimits, keep_ttl: bool) -> bool {
        if self.is_listpack()
            && (field.len() > limits.max_value
                || value.len() > limits.max_value
                || !self.listpack_takes(field.len() + value.len(), limits))
        {
            self.convert_to_table();
        }
        let new = match self {
            HashValue::Listpack(v) => v.pair_set(field, value),
            HashValue::ListpackEx(v) => v.set(field, value, keep_ttl),
            HashValue::Table(d) => {
                if let Some(slot) = d.get_mut(field) {
                    *slot = SmallBytes::new(value);
                    false
                } else {
                    d.insert_new(SmallBytes::new(field), SmallBytes::new(value));
                    true
                }
            }
            HashValue::TableEx(t) => t.set(field, value, keep_ttl),
        };
        if self.is_listpack() && self.len() > limits.max_entries {
            self.convert_to_table();
        }
        new
    }

    /// Delete a field; returns whether it existed.
    pub fn remove(&mut self, field: &[u8]) -> bool {
        match self {
            HashValue::Listpack(v) => v.pair_remove(field),
            HashValue::ListpackEx(v) => v.remove(field),
            HashValue::Table(d) => {
                let found = d.remove(field).is_some();
                if found {
                    d.shrink_if_needed();
                }
                found
            }
            HashValue::TableEx(t) => t.remove(field),
        }
    }

    /// Visit every (field, value), in the encoding's order (expired fields included).
    pub fn for_each(&self, mut f: impl FnMut(&[u8], &[u8])) {
        match self {
            HashValue::Listpack(v) => {
                let mut it = v.iter();
                while let (Some(k), Some(val)) = (it.next(), it.next()) {
                    f(k, val);
                }
            }
            HashValue::ListpackEx(v) => v.entries.iter().for_each(|(k, val, _)| f(k, val)),
            HashValue::Table(d) => d.for_each(|k, val| f(k, val)),
            HashValue::TableEx(t) => t.dict.for_each(|k, val| f(k, val)),
        }
    }

    /// Every (field, value) pair, copied, in the encoding's order.
    pub fn pairs(&self) -> Vec<(Vec<u8>, Vec<u8>)> {
        let mut out = Vec::with_capacity(self.len());
        self.for_each(|k, v| out.push((k.to_vec(), v.to_vec())));
        out
    }

    fn dict_mut(&mut self) -> Option<&mut Dict<SmallBytes>> {
        match self {
            HashValue::Table(d) => Some(d),
            HashValue::TableEx(t) => Some(&mut t.dict),
            _ => None,
        }
    }

    /// One random (field, value) pair; None when empty (from a hash table as Redis's
    /// dictGetFairRandomKey picks, in O(1)).
    pub fn random_pair(&mut self) -> Option<(Vec<u8>, Vec<u8>)> {
        let len = self.len();
        if len == 0 {
            return None;
        }
        if self.is_listpack() {
            let mut i = rand::thread_rng().gen_range(0..len);
            let mut out = None;
            self.for_each(|k, val| {
                if i == 0 {
                    out = Some((k.to_vec(), val.to_vec()));
                }
                i = i.wrapping_sub(1);
            });
            return out;
        }
        self.dict_mut()?.fair_random_entry().map(|(k, val)| (k.to_vec(), val.to_vec()))
    }

    /// `k` random pairs, with repetitions (HRANDFIELD with a negative count).
    pub fn sample(&mut self, k: usize) -> Vec<(Vec<u8>, Vec<u8>)> {
        let len = self.len();
        if len == 0 {
            return Vec::new();
        }
        if !self.is_listpack() && len > crate::types::set::FAIR_MAX && k < len / 4 {
            return (0..k).filter_map(|_| self.random_pair()).collect();
        }
        let all = self.pairs();
        let mut rng = rand::thread_rng();
        (0..k).map(|_| all[rng.gen_range(0..len)].clone()).collect()
    }

    /// `k` distinct random pairs (`k` < len), in random order.
    pub fn sample_distinct(&mut self, k: usize) -> Vec<(Vec<u8>, Vec<u8>)> {
        use rand::seq::SliceRandom;
        let len = self.len();
        if len <= crate::types::set::FAIR_MAX || k * 3 > len {
            let mut all = self.pairs();
            let (chosen, _) = all.partial_shuffle(&mut rand::thread_rng(), k.min(len));
            return chosen.to_vec();
        }
        let mut seen = std::collections::HashSet::with_capacity(k);
        let mut out = Vec::with_capacity(k);
        while out.len() < k {
            let Some(p) = self.random_pair() else { break };
            if seen.insert(p.0.clone()) {
                out.push(p);
            }
        }
        out
    }

    /// One step of HSCAN: visits at least `count` entries, i.e. about `count` field/value pairs
    /// (a listpack is returned whole, with a zero cursor, as Redis does). Fields whose TTL is
    /// before `now` are skipped (but counted against `count`, as Redis samples them). Returns
    /// the next cursor.
    pub fn scan(&self, cursor: u64, count: usize, now: i64, mut f: impl FnMut(&[u8], &[u8])) -> u64 {
        match self {
            HashValue::Listpack(_) | HashValue::ListpackEx(_) => {
                self.for_each(|k, v| {
                    if !self.is_expired(k, now) {
                        f(k, v)
                    }
                });
                0
            }
            HashValue::Table(d) => d.scan_budget(cursor, count, |k, v| f(k, v)),
            HashValue::TableEx(t) => t.dict.scan_budget(cursor, count, |k, v| {
                if !t.expired(k, now) {
                    f(k, v)
                }
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const L: HashLimits = HashLimits { max_entries: 4, max_value: 8 };

    #[test]
    fn listpack_keeps_order_and_converts_on_entries() {
        let mut h = HashValue::default();
        for i in 0..4 {
            assert!(h.set(format!("f{i}").as_bytes(), b"v", L));
        }
        assert_eq!(h.encoding(), "listpack");
        assert!(!h.set(b"f0", b"new", L));
        assert_eq!(h.pairs()[0], (b"f0".to_vec(), b"new".to_vec()));
        assert!(h.set(b"f4", b"v", L));
        assert_eq!(h.encoding(), "hashtable");
        assert_eq!(h.len(), 5);
        assert_eq!(h.get(b"f0"), Some(&b"new"[..]));
        assert!(h.remove(b"f0"));
        assert!(!h.remove(b"f0"));
        assert_eq!(h.encoding(), "hashtable");
        let c = h.clone();
        assert_eq!(c, h);
    }

    #[test]
    fn a_listpack_never_passes_one_gib() {
        // hash-max-listpack-value at 1 GB lets 600 MB values in, but not two into one listpack
        // (Redis's lpSafeToAdd; a 4 GiB one crashed). The zeroed buffer is never touched.
        let big = vec![0u8; 600 << 20];
        let wide = HashLimits { max_entries: 128, max_value: 1 << 30 };
        let mut h = HashValue::default();
        h.try_conversion([&b"f"[..], &big[..], b"g", &big[..]], wide);
        assert_eq!(h.encoding(), "hashtable");
        let mut h = HashValue::default();
        h.try_conversion([&b"f"[..], &big[..]], wide);
        assert_eq!(h.encoding(), "listpack");
    }

    #[test]
    fn long_values_convert() {
        let mut h = HashValue::default();
        h.try_conversion([&b"short"[..], b"123456789"], L);
        assert_eq!(h.encoding(), "hashtable");
        // More pairs than the entry limit convert even when the fields repeat.
        let mut h = HashValue::default();
        let pairs: Vec<&[u8]> = (0..L.max_entries + 1).flat_map(|_| [&b"f"[..], b"v"]).collect();
        h.try_conversion(pairs.iter().copied(), L);
        assert_eq!(h.encoding(), "hashtable");
        let mut h = HashValue::default();
        h.try_conversion(pairs[2..].iter().copied(), L);
        assert_eq!(h.encoding(), "listpack");
        let mut h = HashValue::default();
        h.set(b"f", b"123456789", L);
        assert_eq!(h.encoding(), "hashtable");
    }

    #[test]
    fn scan_covers_everything() {
        let mut h = HashValue::default();
        for i in 0..100 {
            h.set(format!("f{i}").as_bytes(), b"v", L);
        }
        let mut seen = std::collections::HashSet::new();
        let mut cursor = 0;
        loop {
            cursor = h.scan(cursor, 5, 0, |k, _| {
                seen.insert(k.to_vec());
            });
            if cursor == 0 {
                break;
            }
        }
        assert_eq!(seen.len(), 100);
    }

    #[test]
    fn scan_page_is_count_pairs() {
        // HSCAN h 0 COUNT 50 on a 100-field hashtable hash: at least 50 pairs, like Redis
        // (an earlier version counted field and value separately and returned ~25).
        let mut h = HashValue::default();
        for i in 0..100 {
            h.set(format!("field:{i}").as_bytes(), b"v", L);
        }
        assert_eq!(h.encoding(), "hashtable");
        let mut pairs = 0;
        let cursor = h.scan(0, 50, 0, |_, _| pairs += 1);
        assert!(pairs >= 50, "{pairs} pairs, cursor {cursor}");
    }
}
