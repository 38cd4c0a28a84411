//! Hash-field expiry (Redis 7.4+/8: HEXPIRE, HTTL, HPERSIST, HGETEX, HSETEX...): the TTLs of
//! a hash's fields and the two encodings that carry them.
//!
//! - `listpackex` ([`LpEx`]): Redis's OBJ_ENCODING_LISTPACK_EX, a small hash whose pairs carry
//!   a TTL each (0 = none), kept in Redis's order: fields with a TTL first, by ascending TTL (a
//!   field goes before those with the same or a later TTL), then fields without one, in the
//!   order they were added. A listpack hash becomes one the first time a field-expiry command
//!   touches it, and stays one (HGETALL shows that order).
//! - a hash table with TTLs ([`TableEx`]): the fields' absolute expiry times beside the dict,
//!   plus an index by time for the earliest ones.
//!
//! Times are unix milliseconds. Nothing here deletes a field because its time passed: the
//! commands do (lazily, on access) and the active expiry cycle does, as they must propagate
//! and notify.

use std::collections::{BTreeSet, HashMap};

use super::hash::HashValue;
use crate::types::Dict;
use crate::types::SmallBytes;

/// Redis's HFE_MAX_ABS_TIME_MSEC: the largest expiry time the commands accept (2^46 - 1 ms).
pub const MAX_EXPIRE_MS: i64 = (1 << 46) - 1;

/// A small hash with field TTLs (see the module doc for the order).
#[derive(Clone, Debug, Default)]
pub struct LpEx {
    /// (field, value, ttl): ttl 0 means none.
    pub entries: Vec<(SmallBytes, SmallBytes, i64)>,
}

impl LpEx {
    /// A listpack hash's pairs, none with a TTL.
    pub fn from_pairs<'a>(pairs: impl Iterator<Item = (&'a [u8], &'a [u8])>) -> LpEx {
        LpEx { entries: pairs.map(|(f, v)| (SmallBytes::new(f), SmallBytes::new(v), 0)).collect() }
    }

    fn find(&self, field: &[u8]) -> Option<usize> {
        self.entries.iter().position(|(f, _, _)| **f == *field)
    }

    /// Insert at the place Redis's listpackExAddInternal gives: a field without TTL at the
    /// end, else before the first field without TTL or with a TTL at least as late.
    pub fn insert_ordered(&mut self, e: (SmallBytes, SmallBytes, i64)) {
        if e.2 == 0 {
            self.entries.push(e);
            return;
        }
        let at = self.entries.iter().position(|&(_, _, t)| t == 0 || t >= e.2).unwrap_or(self.entries.len());
        self.entries.insert(at, e);
    }

    /// Set a value; a field with a TTL loses it (and moves last) unless `keep_ttl`. Returns
    /// whether the field is new.
    pub fn set(&mut self, field: &[u8], value: &[u8], keep_ttl: bool) -> bool {
        match self.find(field) {
            Some(i) => {
                self.entries[i].1 = SmallBytes::new(value);
                if !keep_ttl && self.entries[i].2 != 0 {
                    let mut e = self.entries.remove(i);
                    e.2 = 0;
                    self.insert_ordered(e);
                }
                false
            }
            None => {
                self.entries.push((SmallBytes::new(field), SmallBytes::new(value), 0));
                true
            }
        }
    }

    pub fn remove(&mut self, field: &[u8]) -> bool {
        match self.find(field) {
            Some(i) => {
                self.entries.remove(i);
                true
            }
            None => false,
        }
    }

    /// Change a field's TTL (0: none), moving it to its place.
    fn retime(&mut self, i: usize, ttl: i64) {
        let mut e = self.entries.remove(i);
        e.2 = ttl;
        self.insert_ordered(e);
    }

    /// The same hash as a hash table.
    pub fn to_table(&self) -> TableEx {
        let mut t = TableEx::default();
        for (f, v, ttl) in &self.entries {
            t.dict.insert_new(f.clone(), v.clone());
            if *ttl != 0 {
                t.set_ttl(f, *ttl);
            }
        }
        t
    }
}

/// A hash table with field TTLs.
#[derive(Default)]
pub struct TableEx {
    pub dict: Dict<SmallBytes>,
    /// field → absolute expiry (ms), for the fields that have one.
    pub ttls: HashMap<Box<[u8]>, i64>,
    /// The same, ordered by time.
    pub by_time: BTreeSet<(i64, Box<[u8]>)>,
}

impl TableEx {
    /// A hash table with no TTL yet.
    pub fn from_dict(dict: Dict<SmallBytes>) -> TableEx {
        TableEx { dict, ttls: HashMap::new(), by_time: BTreeSet::new() }
    }

    fn clear_ttl(&mut self, field: &[u8]) -> Option<i64> {
        let t = self.ttls.remove(field)?;
        self.by_time.remove(&(t, Box::from(field)));
        Some(t)
    }

    pub fn set_ttl(&mut self, field: &[u8], when: i64) {
        self.clear_ttl(field);
        self.ttls.insert(Box::from(field), when);
        self.by_time.insert((when, Box::from(field)));
    }

    pub fn set(&mut self, field: &[u8], value: &[u8], keep_ttl: bool) -> bool {
        let new = if let Some(slot) = self.dict.get_mut(field) {
            *slot = SmallBytes::new(value);
            false
        } else {
            self.dict.insert_new(SmallBytes::new(field), SmallBytes::new(value));
            true
        };
        if !keep_ttl {
            self.clear_ttl(field);
        }
        new
    }

    pub fn remove(&mut self, field: &[u8]) -> bool {
        let found = self.dict.remove(field).is_some();
        if found {
            self.clear_ttl(field);
            self.dict.shrink_if_needed();
        }
        found
    }

    /// Whether `field` has a TTL before `now`.
    pub fn expired(&self, field: &[u8], now: i64) -> bool {
        self.ttls.get(field).is_some_and(|&t| t < now)
    }
}

/// A condition of HEXPIRE and friends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExpireCond {
    None,
    Nx,
    Xx,
    Gt,
    Lt,
}

/// What setting a field's TTL did (the reply codes of HEXPIRE).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SetTtl {
    NoField = -2,
    NotMet = 0,
    Set = 1,
    /// The time had passed: the field was deleted.
    Deleted = 2,
}

impl HashValue {
    /// A field's TTL (absolute ms), None when it has none or does not exist.
    pub fn ttl(&self, field: &[u8]) -> Option<i64> {
        match self {
            HashValue::ListpackEx(v) => v.find(field).map(|i| v.entries[i].2).filter(|&t| t != 0),
            HashValue::TableEx(t) => t.ttls.get(field).copied(),
            _ => None,
        }
    }

    /// Whether `field` exists with a TTL before `now` (logically gone).
    pub fn is_expired(&self, field: &[u8], now: i64) -> bool {
        self.ttl(field).is_some_and(|t| t < now)
    }

    /// Whether some field has a TTL.
    pub fn has_ttls(&self) -> bool {
        self.min_ttl().is_some()
    }

    /// The earliest field TTL.
    pub fn min_ttl(&self) -> Option<i64> {
        match self {
            HashValue::ListpackEx(v) => v.entries.first().map(|e| e.2).filter(|&t| t != 0),
            HashValue::TableEx(t) => t.by_time.first().map(|(w, _)| *w),
            _ => None,
        }
    }

    /// Give the hash the encoding that carries TTLs (Redis's hashTypeSetExInit: a listpack
    /// becomes a listpackex even if no field ends up with a TTL).
    pub fn ensure_ttl_encoding(&mut self) {
        match self {
            HashValue::Listpack(p) => {
                let mut it = p.iter();
                let mut pairs = Vec::new();
                while let (Some(f), Some(v)) = (it.next(), it.next()) {
                    pairs.push((f, v));
                }
                *self = HashValue::ListpackEx(Box::new(LpEx::from_pairs(pairs.into_iter())));
            }
            HashValue::Table(d) => {
                let d = std::mem::take(&mut **d);
                *self = HashValue::TableEx(Box::new(TableEx::from_dict(d)));
            }
            HashValue::ListpackEx(_) | HashValue::TableEx(_) => {}
        }
    }

    /// HEXPIRE's per-field step (Redis's hashTypeSetEx): check the condition against the
    /// field's current TTL (a field without one satisfies LT, not XX nor GT), then either
    /// delete the field (`when` has passed: `past`) or set its TTL. The hash must have its TTL
    /// encoding ([`HashValue::ensure_ttl_encoding`]).
    pub fn set_ttl(&mut self, field: &[u8], when: i64, cond: ExpireCond, past: bool) -> SetTtl {
        if !self.contains(field) {
            return SetTtl::NoField;
        }
        let met = match (self.ttl(field), cond) {
            (None, ExpireCond::Xx | ExpireCond::Gt) => false,
            (None, _) => true,
            (Some(_), ExpireCond::Nx) => false,
            (Some(p), ExpireCond::Gt) => p < when,
            (Some(p), ExpireCond::Lt) => p > when,
            (Some(_), _) => true,
        };
        if !met {
            return SetTtl::NotMet;
        }
        if past {
            self.remove(field);
            return SetTtl::Deleted;
        }
        self.put_ttl(field, when);
        SetTtl::Set
    }

    /// Set (or with 0 remove) a field's TTL without any check.
    pub fn put_ttl(&mut self, field: &[u8], when: i64) {
        self.ensure_ttl_encoding();
        match self {
            HashValue::ListpackEx(v) => {
                if let Some(i) = v.find(field) {
                    v.retime(i, when);
                }
            }
            HashValue::TableEx(t) if t.dict.contains_key(field) => {
                if when == 0 {
                    t.clear_ttl(field);
                } else {
                    t.set_ttl(field, when);
                }
            }
            _ => {}
        }
    }

    /// HPERSIST's per-field step: -2 no such field (or its time passed), -1 no TTL, 1 removed.
    pub fn persist_field(&mut self, field: &[u8], now: i64) -> i64 {
        if !self.contains(field) {
            return -2;
        }
        match self.ttl(field) {
            None => -1,
            Some(t) if t < now => -2,
            Some(_) => {
                self.put_ttl(field, 0);
                1
            }
        }
    }

    /// The fields whose TTL is before `now` (or at it, with `inclusive`, as the active expiry
    /// cycle counts them), earliest first, at most `max`.
    pub fn due_fields(&self, now: i64, inclusive: bool, max: usize) -> Vec<Vec<u8>> {
        let due = |t: i64| if inclusive { t <= now } else { t < now };
        match self {
            HashValue::ListpackEx(v) => {
                v.entries.iter().take_while(|e| e.2 != 0 && due(e.2)).take(max).map(|e| e.0.to_vec()).collect()
            }
            HashValue::TableEx(t) => {
                t.by_time.iter().take_while(|(w, _)| due(*w)).take(max).map(|(_, f)| f.to_vec()).collect()
            }
            _ => Vec::new(),
        }
    }

    /// Number of fields whose TTL has not passed at `now` (what HGETALL returns).
    pub fn live_len(&self, now: i64) -> usize {
        self.len() - self.due_fields(now, false, usize::MAX).len()
    }

    /// Visit every (field, value, TTL) in the encoding's order.
    pub fn for_each_with_ttl(&self, mut f: impl FnMut(&[u8], &[u8], Option<i64>)) {
        match self {
            HashValue::ListpackEx(v) => {
                for (k, val, t) in &v.entries {
                    f(k, val, (*t != 0).then_some(*t));
                }
            }
            HashValue::TableEx(t) => t.dict.for_each(|k, val| f(k, val, t.ttls.get(k).copied())),
            _ => self.for_each(|k, val| f(k, val, None)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::hash::HashLimits;

    const L: HashLimits = HashLimits { max_entries: 4, max_value: 8 };

    fn fields(h: &HashValue) -> Vec<String> {
        let mut out = Vec::new();
        h.for_each(|f, _| out.push(String::from_utf8_lossy(f).into_owned()));
        out
    }

    #[test]
    fn listpackex_orders_fields_by_ttl() {
        let mut h = HashValue::default();
        for f in ["a", "b", "c", "d"] {
            h.set(f.as_bytes(), b"v", L);
        }
        h.ensure_ttl_encoding();
        assert_eq!(h.encoding(), "listpackex");
        assert_eq!(h.set_ttl(b"c", 200, ExpireCond::None, false), SetTtl::Set);
        assert_eq!(h.set_ttl(b"d", 100, ExpireCond::None, false), SetTtl::Set);
        assert_eq!(h.set_ttl(b"a", 200, ExpireCond::None, false), SetTtl::Set);
        // d(100) a(200, before c: same TTL goes first) c(200) then b without TTL.
        assert_eq!(fields(&h), ["d", "a", "c", "b"]);
        assert_eq!(h.min_ttl(), Some(100));
        // HSET drops the TTL and moves the field last; KEEPTTL keeps both.
        h.set(b"d", b"w", L);
        assert_eq!(fields(&h), ["a", "c", "b", "d"]);
        h.set_keep_ttl(b"a", b"x", L);
        assert_eq!((fields(&h)[0].as_str(), h.ttl(b"a")), ("a", Some(200)));
        assert_eq!(h.persist_field(b"a", 0), 1);
        assert_eq!(fields(&h), ["c", "b", "d", "a"]);
        assert_eq!(h.persist_field(b"a", 0), -1);
        assert_eq!(h.persist_field(b"zz", 0), -2);
        assert_eq!(h.persist_field(b"c", 201), -2);
        assert_eq!(h.due_fields(200, true, 10), vec![b"c".to_vec()]);
        assert!(h.due_fields(200, false, 10).is_empty());
        // Past the entry limit it becomes a hash table, TTLs kept.
        h.set(b"e", b"v", L);
        assert_eq!(h.encoding(), "hashtable");
        assert_eq!((h.ttl(b"c"), h.ttl(b"b")), (Some(200), None));
    }

    #[test]
    fn conditions_and_past_times() {
        let mut h = HashValue::default();
        for i in 0..6 {
            h.set(format!("f{i}").as_bytes(), b"v", L);
        }
        h.ensure_ttl_encoding();
        assert_eq!(h.encoding(), "hashtable");
        assert_eq!(h.set_ttl(b"f0", 100, ExpireCond::Xx, false), SetTtl::NotMet);
        assert_eq!(h.set_ttl(b"f0", 100, ExpireCond::Gt, false), SetTtl::NotMet);
        assert_eq!(h.set_ttl(b"f0", 100, ExpireCond::Lt, false), SetTtl::Set);
        assert_eq!(h.set_ttl(b"f0", 50, ExpireCond::Nx, false), SetTtl::NotMet);
        assert_eq!(h.set_ttl(b"f0", 100, ExpireCond::Gt, false), SetTtl::NotMet);
        assert_eq!(h.set_ttl(b"f0", 101, ExpireCond::Gt, false), SetTtl::Set);
        assert_eq!(h.set_ttl(b"f0", 101, ExpireCond::Lt, false), SetTtl::NotMet);
        assert_eq!(h.set_ttl(b"f0", 90, ExpireCond::Lt, false), SetTtl::Set);
        assert_eq!(h.set_ttl(b"nope", 90, ExpireCond::None, false), SetTtl::NoField);
        assert_eq!(h.set_ttl(b"f1", 90, ExpireCond::None, true), SetTtl::Deleted);
        assert!(!h.contains(b"f1"));
        assert_eq!(h.live_len(91), 4);
        let mut seen = Vec::new();
        h.for_each_with_ttl(|f, _, t| seen.push((f.to_vec(), t)));
        assert!(seen.contains(&(b"f0".to_vec(), Some(90))));
        let c = h.clone();
        assert_eq!(c, h);
    }
}
