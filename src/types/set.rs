//! A set of byte strings (Redis sets): the representation and its encodings.
//!
//! Three encodings, as in Redis 7.2 (t_set.c):
//! - `intset`: a sorted vector of integers, used while every member is a canonical 64-bit
//!   integer (Redis's string2ll) and the set has at most `set-max-intset-entries` members;
//! - `listpack`: members in insertion order in one [`Packed`] buffer, for sets of at most
//!   `set-max-listpack-entries` members of at most `set-max-listpack-value` bytes;
//! - `hashtable`: a [`Dict`] otherwise.
//!
//! An intset that gets a non-integer member becomes a listpack when the result fits in one,
//! else a hash table; a listpack becomes a hash table past its limits. Sets never convert
//! back on removal; only SINTERSTORE's result may become an intset again (Redis's
//! maybeConvertToIntset).

use rand::Rng;

use crate::types::intset::{self, IntSet};
use crate::types::packed::{self, Packed, SAFETY_BYTES};
use crate::types::thin_buf::{OverThinBuf, ThinBuf};
use crate::types::Dict;
use crate::types::SmallBytes;
use crate::util::num::{format_i64, parse_i64};

/// Redis caps intsets at 2^30 entries whatever the configuration says.
const INTSET_HARD_MAX: usize = 1 << 30;

/// Up to this size a hash-table set picks random members exactly uniformly by walking to a
/// random position; beyond it, the dict's bucket-then-chain sampling is used (cheaper, slightly
/// biased towards members alone in their bucket, like Redis's dictGetRandomKey).
pub const FAIR_MAX: usize = 4096;

/// The conversion thresholds (from the configuration at the time of the write).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SetLimits {
    /// `set-max-intset-entries`.
    pub max_intset_entries: usize,
    /// `set-max-listpack-entries`.
    pub max_listpack_entries: usize,
    /// `set-max-listpack-value`.
    pub max_listpack_value: usize,
}

impl Default for SetLimits {
    /// Redis 7.2's defaults.
    fn default() -> Self {
        SetLimits { max_intset_entries: 512, max_listpack_entries: 128, max_listpack_value: 64 }
    }
}

impl SetLimits {
    fn intset_max(&self) -> usize {
        self.max_intset_entries.min(INTSET_HARD_MAX)
    }
}

/// A set: one of the two compact encodings in one tagged [`ThinBuf`] (intset or listpack), or
/// a hash table. 16 bytes, so that a keyspace entry holds it without a box of its own: an enum
/// of two 16-byte encodings and a box would take 24, so the compact two share one buffer and
/// its [`Tag`](crate::types::thin_buf::Tag) says which it holds. [`SetValue::enc`] lends the
/// encoding as its own type.
pub struct SetValue(Store);

enum Store {
    /// Tagged [`intset::TAG`]: an [`IntSet`]; otherwise a listpack, a [`Packed`].
    Compact(ThinBuf),
    Table(Box<Dict<()>>),
}

/// A set's encoding, borrowed.
pub enum Enc<'a> {
    Intset(&'a IntSet),
    Listpack(&'a Packed),
    Table(&'a Dict<()>),
}

/// A set's encoding, borrowed to change.
pub enum EncMut<'a> {
    Intset(&'a mut IntSet),
    Listpack(&'a mut Packed),
    Table(&'a mut Dict<()>),
}

impl Default for SetValue {
    /// An empty intset, like Redis's createIntsetObject (the first non-integer member converts it).
    fn default() -> Self {
        SetValue::intset(IntSet::default())
    }
}

impl Clone for SetValue {
    fn clone(&self) -> Self {
        match &self.0 {
            Store::Compact(b) => SetValue(Store::Compact(b.clone())),
            Store::Table(d) => {
                let mut n = Dict::new();
                d.for_each(|k, _| {
                    n.insert_new(k.into(), ());
                });
                SetValue::table(n)
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

/// Decimal digits of `v`, the minus sign included (Redis's sdigits10).
fn digits(v: i64) -> usize {
    let mut buf = itoa::Buffer::new();
    buf.format(v).len()
}

/// `k` distinct indexes of `0..len`, chosen uniformly, in ascending order (what Redis's
/// lpNextRandom walk yields: a random subset, in listpack order).
fn ordered_sample(len: usize, k: usize) -> Vec<usize> {
    let mut picked = rand::seq::index::sample(&mut rand::thread_rng(), len, k.min(len)).into_vec();
    picked.sort_unstable();
    picked
}

/// The outcome of a duplicate member while loading a set from a file.
#[derive(Debug, PartialEq, Eq)]
pub struct DuplicateMember;

impl SetValue {
    pub fn intset(v: IntSet) -> Self {
        SetValue(Store::Compact(v.into_buf()))
    }

    pub fn listpack(p: Packed) -> Self {
        SetValue(Store::Compact(p.into_buf()))
    }

    pub fn table(d: Dict<()>) -> Self {
        SetValue(Store::Table(Box::new(d)))
    }

    /// The encoding, as its own type.
    pub fn enc(&self) -> Enc<'_> {
        match &self.0 {
            Store::Compact(b) if b.tag() == intset::TAG => Enc::Intset(IntSet::view(b)),
            Store::Compact(b) => Enc::Listpack(Packed::view(b)),
            Store::Table(d) => Enc::Table(d),
        }
    }

    /// The encoding, as its own type, to change.
    pub fn enc_mut(&mut self) -> EncMut<'_> {
        match &mut self.0 {
            Store::Compact(b) => match b.tag() == intset::TAG {
                true => EncMut::Intset(IntSet::view_mut(b)),
                false => EncMut::Listpack(Packed::view_mut(b)),
            },
            Store::Table(d) => EncMut::Table(d),
        }
    }

    /// An empty listpack set (Redis's createSetListpackObject).
    pub fn new_listpack() -> Self {
        SetValue::listpack(Packed::new())
    }

    /// An empty set that can hold `first` and about `size_hint` members (Redis's setTypeCreate):
    /// an intset for an integer when the hint fits one, else a listpack when the hint fits one,
    /// else a hash table.
    pub fn create(first: &[u8], size_hint: usize, lim: SetLimits) -> Self {
        if parse_i64(first).is_some() && size_hint <= lim.max_intset_entries {
            SetValue::intset(IntSet::default())
        } else if size_hint <= lim.max_listpack_entries {
            SetValue::new_listpack()
        } else {
            SetValue::table(Dict::new())
        }
    }

    /// Redis's setTypeMaybeConvert: a compact set about to receive `size_hint` members whose
    /// encoding cannot hold that many becomes a hash table first.
    pub fn maybe_convert(&mut self, size_hint: usize, lim: SetLimits) {
        let too_many = match self.enc() {
            Enc::Listpack(_) => size_hint > lim.max_listpack_entries,
            Enc::Intset(_) => size_hint > lim.max_intset_entries,
            Enc::Table(_) => false,
        };
        if too_many {
            self.convert_to_table();
        }
    }

    /// The name OBJECT ENCODING reports.
    pub fn encoding(&self) -> &'static str {
        match self.enc() {
            Enc::Intset(_) => "intset",
            Enc::Listpack(_) => "listpack",
            Enc::Table(_) => "hashtable",
        }
    }

    pub fn len(&self) -> usize {
        match self.enc() {
            Enc::Intset(v) => v.len(),
            Enc::Listpack(p) => p.len(),
            Enc::Table(d) => d.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn contains(&self, member: &[u8]) -> bool {
        match self.enc() {
            Enc::Intset(v) => parse_i64(member).is_some_and(|n| v.contains(n)),
            Enc::Listpack(p) => p.contains(member),
            Enc::Table(d) => d.contains_key(member),
        }
    }

    /// Convert to a hash table (no-op if already one).
    pub fn convert_to_table(&mut self) {
        if matches!(self.enc(), Enc::Table(_)) {
            return;
        }
        let mut d = Dict::new();
        self.for_each(|m| {
            d.insert_new(SmallBytes::new(m), ());
        });
        *self = SetValue::table(d);
    }

    /// Convert to a listpack, keeping the current iteration order (no-op if already one).
    fn convert_to_listpack(&mut self) {
        if matches!(self.enc(), Enc::Listpack(_)) {
            return;
        }
        let mut p = Packed::new();
        self.for_each(|m| p.push(m));
        *self = SetValue::listpack(p);
    }

    /// Redis's maybeConvertToIntset, for a set whose members are all integers: becomes an
    /// intset unless it has too many members for one.
    pub fn maybe_convert_to_intset(&mut self, lim: SetLimits) {
        if matches!(self.enc(), Enc::Intset(_)) || self.len() > lim.intset_max() {
            return;
        }
        let mut v: Vec<i64> = Vec::with_capacity(self.len());
        self.for_each(|m| v.extend(parse_i64(m)));
        v.sort_unstable();
        v.dedup();
        *self = SetValue::intset(IntSet::from_sorted(&v));
    }

    /// Whether an intset can become a listpack on receiving a `len`-byte non-integer member
    /// (Redis's estimate: every integer as long as the widest of its min and max).
    fn intset_fits_listpack(v: &IntSet, len: usize, lim: SetLimits) -> bool {
        let (widest, total) = match (v.first(), v.last()) {
            (Some(lo), Some(hi)) => {
                let w = digits(lo).max(digits(hi));
                (w, v.len() * 11)
            }
            _ => (0, 0),
        };
        v.len() < lim.max_listpack_entries
            && len <= lim.max_listpack_value
            && widest <= lim.max_listpack_value
            && total + len <= SAFETY_BYTES
    }

    /// Add a member; returns whether it was new (Redis's setTypeAdd).
    pub fn add(&mut self, member: &[u8], lim: SetLimits) -> bool {
        match self.enc_mut() {
            EncMut::Intset(v) => match parse_i64(member) {
                Some(n) => {
                    if !v.insert(n) {
                        return false;
                    }
                    if v.len() > lim.intset_max() {
                        self.convert_to_table();
                    }
                    true
                }
                None => {
                    if Self::intset_fits_listpack(v, member.len(), lim) {
                        self.convert_to_listpack();
                    } else {
                        self.convert_to_table();
                    }
                    self.add(member, lim)
                }
            },
            EncMut::Listpack(p) => {
                if p.contains(member) {
                    return false;
                }
                if p.len() < lim.max_listpack_entries && member.len() <= lim.max_listpack_value && p.fits(member.len())
                {
                    p.push(member);
                } else {
                    self.convert_to_table();
                    self.add(member, lim);
                }
                true
            }
            EncMut::Table(d) => {
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
        match self.enc_mut() {
            EncMut::Intset(v) => parse_i64(member).is_some_and(|n| v.remove(n)),
            EncMut::Listpack(p) => p.remove(member),
            EncMut::Table(d) => {
                let found = d.remove(member).is_some();
                if found {
                    d.shrink_if_needed();
                }
                found
            }
        }
    }

    /// Visit every member, in the encoding's order (ascending for an intset, insertion order
    /// for a listpack).
    pub fn for_each(&self, mut f: impl FnMut(&[u8])) {
        match self.enc() {
            Enc::Intset(v) => {
                let mut buf = Vec::with_capacity(20);
                for n in v.iter() {
                    buf.clear();
                    format_i64(n, &mut buf);
                    f(&buf);
                }
            }
            Enc::Listpack(p) => p.iter().for_each(f),
            Enc::Table(d) => d.for_each(|k, _| f(k)),
        }
    }

    /// Every member, copied, in the encoding's order.
    pub fn members(&self) -> Vec<Vec<u8>> {
        let mut out = Vec::with_capacity(self.len());
        self.for_each(|m| out.push(m.to_vec()));
        out
    }

    /// A random member; None when empty (from a hash table as Redis's dictGetFairRandomKey
    /// picks: O(1), so draining a set with SPOP stays linear).
    pub fn random_member(&mut self) -> Option<Vec<u8>> {
        let len = self.len();
        if len == 0 {
            return None;
        }
        match self.enc_mut() {
            EncMut::Intset(v) => Some(int_text(v.get(rand::thread_rng().gen_range(0..len)))),
            EncMut::Listpack(p) => p.get(rand::thread_rng().gen_range(0..len)).map(<[u8]>::to_vec),
            EncMut::Table(d) => d.fair_random_entry().map(|(k, _)| k.to_vec()),
        }
    }

    /// `k` random members, with repetitions (SRANDMEMBER with a negative count).
    pub fn sample(&mut self, k: usize) -> Vec<Vec<u8>> {
        let len = self.len();
        if len == 0 {
            return Vec::new();
        }
        if matches!(self.enc(), Enc::Table(_)) && len > FAIR_MAX && k < len / 4 {
            return (0..k).filter_map(|_| self.random_member()).collect();
        }
        let all = self.members();
        let mut rng = rand::thread_rng();
        (0..k).map(|_| all[rng.gen_range(0..len)].clone()).collect()
    }

    /// `k` distinct random members (`k` < len): in random order, except from a listpack, whose
    /// chosen members keep their listpack order (as Redis's lpNextRandom walk returns them).
    pub fn sample_distinct(&mut self, k: usize) -> Vec<Vec<u8>> {
        use rand::seq::SliceRandom;
        let len = self.len();
        if let EncMut::Listpack(p) = self.enc_mut() {
            let picked = ordered_sample(len, k);
            let mut next = picked.iter().peekable();
            let mut out = Vec::with_capacity(picked.len());
            for (i, m) in p.iter().enumerate() {
                if next.peek() == Some(&&i) {
                    next.next();
                    out.push(m.to_vec());
                }
            }
            return out;
        }
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
        match self.enc_mut() {
            EncMut::Intset(v) => {
                if v.is_empty() {
                    return None;
                }
                let i = rand::thread_rng().gen_range(0..v.len());
                Some(int_text(v.remove_at(i)))
            }
            EncMut::Listpack(_) | EncMut::Table(_) => {
                let m = self.random_member()?;
                self.remove(&m);
                Some(m)
            }
        }
    }

    /// SPOP with a count smaller than the set (Redis's spopWithCountCommand, cases 2 and 3):
    /// removes and returns `count` random members. When few members are popped they are
    /// picked one by one; when most of the set goes, the members that stay are moved into a
    /// new set (a listpack, or an intset for an intset: its encoding is chosen afresh) and
    /// what is left of the old one is returned. From a listpack, the popped members come in
    /// listpack order.
    pub fn pop_count(&mut self, count: usize, lim: SetLimits) -> Vec<Vec<u8>> {
        let size = self.len();
        debug_assert!(count < size);
        let remaining = size - count;
        if remaining * 5 > count {
            if let EncMut::Listpack(p) = self.enc_mut() {
                let picked = ordered_sample(size, count);
                let out = picked.iter().filter_map(|&i| p.get(i).map(<[u8]>::to_vec)).collect();
                p.remove_indexes(&picked);
                return out;
            }
            return (0..count).filter_map(|_| self.pop_random()).collect();
        }
        let mut kept = match self.enc() {
            Enc::Intset(_) => SetValue::intset(IntSet::default()),
            _ => SetValue::new_listpack(),
        };
        if let EncMut::Listpack(p) = self.enc_mut() {
            let picked = ordered_sample(size, remaining);
            for &i in &picked {
                if let Some(m) = p.get(i) {
                    kept.add(m, lim);
                }
            }
            p.remove_indexes(&picked);
        } else {
            for m in self.sample_distinct(remaining) {
                self.remove(&m);
                kept.add(&m, lim);
            }
        }
        std::mem::replace(self, kept).members()
    }

    /// Rebuild a set stored as a plain list of members (RDB_TYPE_SET), the way Redis 7.2's
    /// loader does: a hash table straight away when there are more members than an intset may
    /// hold, else an intset that becomes a listpack or a hash table at the first non-integer.
    pub fn from_members<M: AsRef<[u8]>>(members: &[M], lim: SetLimits) -> Result<Self, DuplicateMember> {
        Self::compact_from_members(members, lim).unwrap_or_else(|| Self::from_members_one_by_one(members, lim))
    }

    /// [`SetValue::from_members`] for a set that ends as an intset or a listpack (most loaded
    /// sets), in one allocation: the intset of all the members, or the listpack that the
    /// one-by-one rebuild makes (the integers before the first other member, sorted, as the
    /// intset they were in leaves them, then the members from there in their order). None when
    /// the set would convert to a table (it is then rebuilt one by one), or has too many members
    /// for a scan of those before each to find duplicates.
    fn compact_from_members<M: AsRef<[u8]>>(members: &[M], lim: SetLimits) -> Option<Result<Self, DuplicateMember>> {
        let n = members.len();
        if n > lim.intset_max() || n > packed::SCANNED_MAX {
            return None;
        }
        let first_text = members.iter().position(|m| parse_i64(m.as_ref()).is_none()).unwrap_or(n);
        let mut ints: smallvec::SmallVec<[i64; 16]> =
            members[..first_text].iter().filter_map(|m| parse_i64(m.as_ref())).collect();
        ints.sort_unstable();
        if ints.windows(2).any(|w| w[0] == w[1]) {
            return Some(Err(DuplicateMember));
        }
        if first_text == n {
            return Some(Ok(SetValue::intset(IntSet::from_sorted(&ints))));
        }
        // A listpack only if no member converts it on the way (the bound as `from_listpack`'s).
        let widest = members.iter().map(|m| m.as_ref().len()).max().unwrap_or(0);
        if n > lim.max_listpack_entries || widest > lim.max_listpack_value || !Self::listpack_fits(n, widest) {
            return None;
        }
        // (An integer's text is the member's own: `parse_i64` takes only Redis's canonical form.)
        let mut b = packed::Builder::with_bytes(members.iter().map(|m| packed::entry_bytes(m.as_ref().len())).sum());
        ints.iter().for_each(|i| b.push(itoa::Buffer::new().format(*i).as_bytes()));
        for m in &members[first_text..] {
            if b.contains(m.as_ref(), 1) {
                return Some(Err(DuplicateMember));
            }
            b.push(m.as_ref());
        }
        Some(Ok(SetValue::listpack(b.finish())))
    }

    /// Whether `n` members, none longer than `widest` bytes, are surely within the bound
    /// [`SetValue::from_listpack`] keeps a listpack under (a length prefix takes at most 9 bytes).
    pub fn listpack_fits(n: usize, widest: usize) -> bool {
        widest.saturating_add(9).saturating_mul(n) <= SAFETY_BYTES
    }

    /// [`SetValue::from_members`], member by member, as Redis 7.2's loader adds them.
    fn from_members_one_by_one<M: AsRef<[u8]>>(members: &[M], lim: SetLimits) -> Result<Self, DuplicateMember> {
        let mut s = if members.len() > lim.intset_max() {
            // Sized for all of them, as Redis's rdbLoad expands the set's dict.
            let mut d = Dict::new();
            d.reserve(members.len());
            SetValue::table(d)
        } else {
            SetValue::intset(IntSet::default())
        };
        let (mut widest, mut total) = (0usize, 0usize);
        for m in members {
            let m = m.as_ref();
            widest = widest.max(m.len());
            total += m.len();
            if let EncMut::Intset(v) = s.enc_mut() {
                match parse_i64(m) {
                    Some(n) if v.insert(n) => continue,
                    Some(_) => return Err(DuplicateMember),
                    None if v.len() < lim.max_listpack_entries
                        && widest <= lim.max_listpack_value
                        && total <= SAFETY_BYTES =>
                    {
                        s.convert_to_listpack()
                    }
                    None => s.convert_to_table(),
                }
            }
            if let EncMut::Listpack(p) = s.enc_mut() {
                if p.len() < lim.max_listpack_entries && m.len() <= lim.max_listpack_value && p.fits(m.len()) {
                    if p.contains(m) {
                        return Err(DuplicateMember);
                    }
                    p.push(m);
                    continue;
                }
                s.convert_to_table();
            }
            if let EncMut::Table(d) = s.enc_mut() {
                if !d.get_or_insert_with(m, || ()).1 {
                    return Err(DuplicateMember);
                }
            }
        }
        Ok(s)
    }

    /// A set stored as one listpack (RDB_TYPE_SET_LISTPACK): kept as a listpack unless it has
    /// more members than `set-max-listpack-entries`.
    pub fn from_listpack(members: Vec<Vec<u8>>, lim: SetLimits) -> Result<Self, DuplicateMember> {
        let mut seen = std::collections::HashSet::with_capacity(members.len());
        for m in &members {
            if !seen.insert(&m[..]) {
                return Err(DuplicateMember);
            }
        }
        // (A length prefix takes at most 9 bytes: within the bound, every push fits.)
        let bytes = members.iter().fold(0usize, |n, m| n.saturating_add(m.len() + 9));
        if members.len() > lim.max_listpack_entries || bytes > SAFETY_BYTES {
            let mut s = SetValue::new_listpack();
            s.convert_to_table();
            for m in &members {
                s.add(m, lim);
            }
            return Ok(s);
        }
        let mut p = Packed::new();
        for m in &members {
            p.push(m);
        }
        Ok(SetValue::listpack(p))
    }

    /// A set stored as an intset (RDB_TYPE_SET_INTSET) `width` bytes wide: kept as an intset,
    /// as wide, unless it has more members than `set-max-intset-entries`.
    pub fn from_intset(mut ints: Vec<i64>, width: usize, lim: SetLimits) -> Self {
        ints.sort_unstable();
        ints.dedup();
        let mut s = SetValue::intset(IntSet::from_sorted_wide(&ints, width));
        if s.len() > lim.max_intset_entries {
            s.convert_to_table();
        }
        s
    }

    /// One step of SSCAN: visits at least `count` members (an intset or a listpack is returned
    /// whole, with a zero cursor, as Redis does). Returns the next cursor.
    pub fn scan(&self, cursor: u64, count: usize, mut f: impl FnMut(&[u8])) -> u64 {
        match self.enc() {
            Enc::Intset(_) | Enc::Listpack(_) => {
                self.for_each(f);
                0
            }
            Enc::Table(d) => d.scan_budget(cursor, count, |k, _| f(k)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const L: SetLimits = SetLimits { max_intset_entries: 4, max_listpack_entries: 3, max_listpack_value: 5 };

    #[test]
    fn intset_sorted_and_converts() {
        let mut s = SetValue::default();
        for m in ["5", "-3", "10", "5"] {
            s.add(m.as_bytes(), L);
        }
        assert_eq!(s.encoding(), "intset");
        assert_eq!(s.members(), vec![b"-3".to_vec(), b"5".to_vec(), b"10".to_vec()]);
        assert!(!s.contains(b"05"));
        assert!(s.contains(b"-3"));
        s.add(b"7", L);
        assert_eq!(s.encoding(), "intset");
        s.add(b"8", L);
        assert_eq!(s.encoding(), "hashtable");
        assert_eq!(s.len(), 5);
        assert!(s.contains(b"8") && s.contains(b"-3"));
        let mut t = SetValue::default();
        t.add(b"1", L);
        t.add(b"a", L);
        assert_eq!(t.encoding(), "listpack");
        assert_eq!(t.members(), vec![b"1".to_vec(), b"a".to_vec()]);
        assert!(t.remove(b"1"));
        assert!(!t.remove(b"1"));
        assert_eq!(t.encoding(), "listpack");
        assert_eq!(t.clone(), t);
    }

    #[test]
    fn listpack_keeps_insertion_order_and_converts_at_its_limits() {
        let mut s = SetValue::create(b"b", 1, L);
        assert_eq!(s.encoding(), "listpack");
        for m in ["b", "a", "c", "a"] {
            s.add(m.as_bytes(), L);
        }
        assert_eq!(s.members(), vec![b"b".to_vec(), b"a".to_vec(), b"c".to_vec()]);
        s.add(b"d", L);
        assert_eq!(s.encoding(), "hashtable");
        let mut long = SetValue::create(b"x", 1, L);
        long.add(b"12345", L);
        assert_eq!(long.encoding(), "listpack");
        long.add(b"123456", L);
        assert_eq!(long.encoding(), "hashtable");
        // An intset whose widest integer is longer than the value limit goes to a hash table.
        let mut wide = SetValue::default();
        wide.add(b"1234567", L);
        wide.add(b"x", L);
        assert_eq!(wide.encoding(), "hashtable");
        // Too many integers for a listpack (3 already, limit 3 entries): hash table.
        let mut many = SetValue::default();
        for m in ["1", "2", "3"] {
            many.add(m.as_bytes(), L);
        }
        many.add(b"x", L);
        assert_eq!(many.encoding(), "hashtable");
    }

    #[test]
    fn create_and_maybe_convert_follow_the_size_hint() {
        assert_eq!(SetValue::create(b"1", 4, L).encoding(), "intset");
        assert_eq!(SetValue::create(b"1", 5, L).encoding(), "hashtable");
        assert_eq!(SetValue::create(b"a", 3, L).encoding(), "listpack");
        assert_eq!(SetValue::create(b"a", 4, L).encoding(), "hashtable");
        let mut s = SetValue::create(b"a", 1, L);
        s.add(b"a", L);
        s.maybe_convert(4, L);
        assert_eq!(s.encoding(), "hashtable");
        let mut i = SetValue::default();
        i.maybe_convert(4, L);
        assert_eq!(i.encoding(), "intset");
        i.maybe_convert(5, L);
        assert_eq!(i.encoding(), "hashtable");
    }

    #[test]
    fn non_canonical_integers_are_strings() {
        let mut s = SetValue::default();
        s.add(b"007", L);
        assert_eq!(s.encoding(), "listpack");
        assert!(s.contains(b"007") && !s.contains(b"7"));
        s.maybe_convert_to_intset(L);
        let mut ints = SetValue::new_listpack();
        ints.add(b"3", L);
        ints.add(b"-1", L);
        ints.maybe_convert_to_intset(L);
        assert_eq!(ints.encoding(), "intset");
        assert_eq!(ints.members(), vec![b"-1".to_vec(), b"3".to_vec()]);
    }

    #[test]
    fn a_loaded_set_built_at_once_is_the_set_built_member_by_member() {
        use rand::{Rng, SeedableRng};
        // Members from a small pool (integers, their non-canonical forms, text, long text), so
        // that duplicates, conversions at each limit and every encoding come up.
        let pool: Vec<Vec<u8>> =
            ["0", "1", "-1", "7", "300", "70000", "9999999999", "01", "+1", "a", "bb", "-", "longer-member"]
                .iter()
                .map(|s| s.as_bytes().to_vec())
                .collect();
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let (mut compact, mut table) = (0, 0);
        for _ in 0..20_000 {
            let lim = SetLimits {
                max_intset_entries: rng.gen_range(1..8),
                max_listpack_entries: rng.gen_range(1..8),
                max_listpack_value: rng.gen_range(1..14),
            };
            let n = rng.gen_range(0..9);
            let members: Vec<&[u8]> = (0..n).map(|_| &pool[rng.gen_range(0..pool.len())][..]).collect();
            let described = |r: &Result<SetValue, DuplicateMember>| match r {
                Ok(s) => match s.enc() {
                    Enc::Intset(v) => format!("intset {s:?} {} wide", v.width()),
                    _ => format!("{} {s:?}", s.encoding()),
                },
                Err(_) => "duplicate".to_string(),
            };
            let one_by_one = SetValue::from_members_one_by_one(&members, lim);
            if let Some(at_once) = SetValue::compact_from_members(&members, lim) {
                assert_eq!(described(&at_once), described(&one_by_one), "{members:?} under {lim:?}");
                compact += 1;
            } else {
                assert!(matches!(&one_by_one, Ok(s) if s.encoding() == "hashtable") || one_by_one.is_err());
                table += 1;
            }
            assert_eq!(described(&SetValue::from_members(&members, lim)), described(&one_by_one));
        }
        assert!(compact > 5_000 && table > 5_000, "{compact} built at once, {table} one by one");
    }

    #[test]
    fn loading_follows_redis_7_2() {
        let m = |v: &[&str]| v.iter().map(|s| s.as_bytes().to_vec()).collect::<Vec<_>>();
        let s = SetValue::from_members(&m(&["1", "a", "2"]), L).unwrap();
        assert_eq!((s.encoding(), s.members()), ("listpack", m(&["1", "a", "2"])));
        let s = SetValue::from_members(&m(&["2", "1"]), L).unwrap();
        assert_eq!((s.encoding(), s.members()), ("intset", m(&["1", "2"])));
        assert_eq!(SetValue::from_members(&m(&["1", "2", "3", "4", "5"]), L).unwrap().encoding(), "hashtable");
        assert_eq!(SetValue::from_members(&m(&["a", "b", "c", "d"]), L).unwrap().encoding(), "hashtable");
        assert!(SetValue::from_members(&m(&["a", "a"]), L).is_err());
        assert!(SetValue::from_members(&m(&["1", "1"]), L).is_err());
        assert!(SetValue::from_listpack(m(&["a", "a"]), L).is_err());
        assert_eq!(SetValue::from_listpack(m(&["a", "1"]), L).unwrap().encoding(), "listpack");
        assert_eq!(SetValue::from_listpack(m(&["a", "1", "b", "c"]), L).unwrap().encoding(), "hashtable");
        assert_eq!(SetValue::from_intset(vec![1, 2, 3, 4], 2, L).encoding(), "intset");
        assert_eq!(SetValue::from_intset(vec![1, 2, 3, 4, 5], 2, L).encoding(), "hashtable");
    }

    #[test]
    fn random_picks_from_a_listpack_keep_its_order() {
        let big = SetLimits { max_listpack_entries: 128, ..L };
        let mut s = SetValue::create(b"m", 1, big);
        for i in 0..50 {
            s.add(format!("m{i}").as_bytes(), big);
        }
        let order = s.members();
        let pos = |m: &Vec<u8>| order.iter().position(|o| o == m).unwrap();
        let picked = s.sample_distinct(10);
        assert_eq!(picked.len(), 10);
        assert!(picked.windows(2).all(|w| pos(&w[0]) < pos(&w[1])));
        let popped = s.pop_count(5, big);
        assert!(popped.windows(2).all(|w| pos(&w[0]) < pos(&w[1])));
        assert_eq!(s.len(), 45);
        let rest = s.pop_count(44, big);
        assert_eq!(rest.len(), 44);
        assert_eq!(s.len(), 1);
        assert_eq!(s.encoding(), "listpack");
    }

    #[test]
    fn pop_empties_and_scan_covers() {
        let mut s = SetValue::default();
        for i in 0..100 {
            s.add(format!("m{i}").as_bytes(), SetLimits::default());
        }
        assert_eq!(s.encoding(), "listpack");
        s.convert_to_table();
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
