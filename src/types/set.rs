//! A set of byte strings (Redis sets): the representation and its encodings.
//!
//! Two encodings, as in Redis 7.0 (which has no set listpack):
//! - `intset`: a sorted vector of integers, used while every member is a canonical 64-bit
//!   integer (Redis's string2ll) and the set has at most `set-max-intset-entries` members;
//! - `hashtable`: a [`Dict`] otherwise. A set never converts back.

use rand::Rng;

use crate::keyspace::Dict;
use crate::types::SmallBytes;
use crate::util::num::{format_i64, parse_i64};

/// Redis caps intsets at 2^30 entries whatever the configuration says.
const INTSET_HARD_MAX: usize = 1 << 30;

/// Up to this size a hash-table set picks random members exactly uniformly by walking to a
/// random position; beyond it, the dict's bucket-then-chain sampling is used (cheaper, slightly
/// biased towards members alone in their bucket, like Redis's dictGetRandomKey).
pub const FAIR_MAX: usize = 4096;

pub enum SetValue {
    Intset(Vec<i64>),
    Table(Box<Dict<()>>),
}

impl Default for SetValue {
    /// An empty intset, like Redis's createIntsetObject (the first non-integer member converts it).
    fn default() -> Self {
        SetValue::Intset(Vec::new())
    }
}

impl Clone for SetValue {
    fn clone(&self) -> Self {
        match self {
            SetValue::Intset(v) => SetValue::Intset(v.clone()),
            SetValue::Table(d) => {
                let mut n = Dict::new();
                d.for_each(|k, _| {
                    n.insert_new(k.into(), ());
                });
                SetValue::Table(Box::new(n))
            }
        }
    }
}

impl PartialEq for SetValue {
    /// Same encoding and same members.
    fn eq(&self, other: &Self) -> bool {
        if self.encoding() != other.encoding() || self.len() != other.len() {
            return false;
        }
        let mut eq = true;
        self.for_each(|m| eq &= other.contains(m));
        eq
    }
}

impl std::fmt::Debug for SetValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut s = f.debug_set();
        self.for_each(|m| {
            s.entry(&String::from_utf8_lossy(m));
        });
        s.finish()
    }
}

fn int_text(v: i64) -> Vec<u8> {
    let mut out = Vec::with_capacity(20);
    format_i64(v, &mut out);
    out
}

impl SetValue {
    /// The name OBJECT ENCODING reports.
    pub fn encoding(&self) -> &'static str {
        match self {
            SetValue::Intset(_) => "intset",
            SetValue::Table(_) => "hashtable",
        }
    }

    pub fn len(&self) -> usize {
        match self {
            SetValue::Intset(v) => v.len(),
            SetValue::Table(d) => d.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn contains(&self, member: &[u8]) -> bool {
        match self {
            SetValue::Intset(v) => parse_i64(member).is_some_and(|n| v.binary_search(&n).is_ok()),
            SetValue::Table(d) => d.contains_key(member),
        }
    }

    /// Convert to a hash table (no-op if already one).
    pub fn convert_to_table(&mut self) {
        if let SetValue::Intset(v) = self {
            let mut d = Dict::new();
            for n in std::mem::take(v) {
                d.insert_new(SmallBytes::new(&int_text(n)), ());
            }
            *self = SetValue::Table(Box::new(d));
        }
    }

    /// Add a member; returns whether it was new (Redis's setTypeAdd). `max_intset` is
    /// `set-max-intset-entries`.
    pub fn add(&mut self, member: &[u8], max_intset: usize) -> bool {
        match self {
            SetValue::Intset(v) => match parse_i64(member) {
                Some(n) => match v.binary_search(&n) {
                    Ok(_) => false,
                    Err(pos) => {
                        v.insert(pos, n);
                        if v.len() > max_intset.min(INTSET_HARD_MAX) {
                            self.convert_to_table();
                        }
                        true
                    }
                },
                None => {
                    self.convert_to_table();
                    self.add(member, max_intset)
                }
            },
            SetValue::Table(d) => {
                if d.contains_key(member) {
                    false
                } else {
                    d.insert_new(SmallBytes::new(member), ());
                    true
                }
            }
        }
    }

    /// Remove a member; returns whether it was there.
    pub fn remove(&mut self, member: &[u8]) -> bool {
        match self {
            SetValue::Intset(v) => match parse_i64(member).map(|n| v.binary_search(&n)) {
                Some(Ok(pos)) => {
                    v.remove(pos);
                    true
                }
                _ => false,
            },
            SetValue::Table(d) => {
                let found = d.remove(member).is_some();
                if found {
                    d.shrink_if_needed();
                }
                found
            }
        }
    }

    /// Visit every member, in the encoding's order (ascending for an intset).
    pub fn for_each(&self, mut f: impl FnMut(&[u8])) {
        match self {
            SetValue::Intset(v) => {
                let mut buf = Vec::with_capacity(20);
                for &n in v {
                    buf.clear();
                    format_i64(n, &mut buf);
                    f(&buf);
                }
            }
            SetValue::Table(d) => d.for_each(|k, _| f(k)),
        }
    }

    /// Every member, copied, in the encoding's order.
    pub fn members(&self) -> Vec<Vec<u8>> {
        let mut out = Vec::with_capacity(self.len());
        self.for_each(|m| out.push(m.to_vec()));
        out
    }

    /// A random member; None when empty. Uniform (a hash table of up to [`FAIR_MAX`] members is
    /// walked to the chosen position; a larger one samples a bucket, then a chain position).
    pub fn random_member(&mut self) -> Option<Vec<u8>> {
        let len = self.len();
        if len == 0 {
            return None;
        }
        match self {
            SetValue::Intset(v) => Some(int_text(v[rand::thread_rng().gen_range(0..len)])),
            SetValue::Table(d) if len <= FAIR_MAX => {
                let mut i = rand::thread_rng().gen_range(0..len);
                let mut out = None;
                d.for_each(|k, _| {
                    if i == 0 {
                        out = Some(k.to_vec());
                    }
                    i = i.wrapping_sub(1);
                });
                out
            }
            SetValue::Table(d) => d.random_entry().map(|(k, _)| k.to_vec()),
        }
    }

    /// `k` random members, with repetitions (SRANDMEMBER with a negative count).
    pub fn sample(&mut self, k: usize) -> Vec<Vec<u8>> {
        let len = self.len();
        if len == 0 {
            return Vec::new();
        }
        if matches!(self, SetValue::Table(_)) && len > FAIR_MAX && k < len / 4 {
            return (0..k).filter_map(|_| self.random_member()).collect();
        }
        let all = self.members();
        let mut rng = rand::thread_rng();
        (0..k).map(|_| all[rng.gen_range(0..len)].clone()).collect()
    }

    /// `k` distinct random members (`k` < len), in random order.
    pub fn sample_distinct(&mut self, k: usize) -> Vec<Vec<u8>> {
        use rand::seq::SliceRandom;
        let len = self.len();
        if len <= FAIR_MAX || k * 3 > len {
            let mut all = self.members();
            let (chosen, _) = all.partial_shuffle(&mut rand::thread_rng(), k.min(len));
            return chosen.to_vec();
        }
        let mut seen = std::collections::HashSet::with_capacity(k);
        let mut out = Vec::with_capacity(k);
        while out.len() < k {
            let Some(m) = self.random_member() else { break };
            if seen.insert(m.clone()) {
                out.push(m);
            }
        }
        out
    }

    /// Remove and return a random member; None when empty.
    pub fn pop_random(&mut self) -> Option<Vec<u8>> {
        match self {
            SetValue::Intset(v) => {
                if v.is_empty() {
                    return None;
                }
                let i = rand::thread_rng().gen_range(0..v.len());
                Some(int_text(v.remove(i)))
            }
            SetValue::Table(_) => {
                let m = self.random_member()?;
                self.remove(&m);
                Some(m)
            }
        }
    }

    /// One step of SSCAN: visits at least `count` members (an intset is returned whole, with a
    /// zero cursor, as Redis does). Returns the next cursor.
    pub fn scan(&self, cursor: u64, count: usize, mut f: impl FnMut(&[u8])) -> u64 {
        match self {
            SetValue::Intset(_) => {
                self.for_each(f);
                0
            }
            SetValue::Table(d) => d.scan_budget(cursor, count, 1, |k, _| f(k)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intset_sorted_and_converts() {
        let mut s = SetValue::default();
        for m in ["5", "-3", "10", "5"] {
            s.add(m.as_bytes(), 4);
        }
        assert_eq!(s.encoding(), "intset");
        assert_eq!(s.members(), vec![b"-3".to_vec(), b"5".to_vec(), b"10".to_vec()]);
        assert!(!s.contains(b"05"));
        assert!(s.contains(b"-3"));
        s.add(b"7", 4);
        assert_eq!(s.encoding(), "intset");
        s.add(b"8", 4);
        assert_eq!(s.encoding(), "hashtable");
        assert_eq!(s.len(), 5);
        assert!(s.contains(b"8") && s.contains(b"-3"));
        let mut t = SetValue::default();
        t.add(b"1", 512);
        t.add(b"a", 512);
        assert_eq!(t.encoding(), "hashtable");
        assert!(t.remove(b"1"));
        assert!(!t.remove(b"1"));
        assert_eq!(t.encoding(), "hashtable");
        assert_eq!(t.clone(), t);
    }

    #[test]
    fn non_canonical_integers_are_strings() {
        let mut s = SetValue::default();
        s.add(b"007", 512);
        assert_eq!(s.encoding(), "hashtable");
        assert!(s.contains(b"007") && !s.contains(b"7"));
    }

    #[test]
    fn pop_empties_and_scan_covers() {
        let mut s = SetValue::default();
        for i in 0..100 {
            s.add(format!("m{i}").as_bytes(), 512);
        }
        let mut seen = std::collections::HashSet::new();
        let mut cursor = 0;
        loop {
            cursor = s.scan(cursor, 3, |m| {
                seen.insert(m.to_vec());
            });
            if cursor == 0 {
                break;
            }
        }
        assert_eq!(seen.len(), 100);
        let mut popped = std::collections::HashSet::new();
        while let Some(m) = s.pop_random() {
            popped.insert(m);
        }
        assert_eq!(popped, seen);
        assert!(s.is_empty());
    }
}
