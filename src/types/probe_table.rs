//! An open-addressing table from a key's hash to a small value, 12 bytes a slot for an `i64`
//! (the keyspace's TTL index: a chained table's node and bucket took 35 bytes a key). A slot
//! holds the hash's low 31 bits as a tag (the top bit marks the slot used) and the value, so
//! keys whose hashes share those bits share a tag: [`super::hash_index::HashIndex`] keeps such
//! keys by key, as it keeps keys whose whole hashes are equal.
//!
//! Robin Hood linear probing: an insert takes the slot of an entry nearer its home than the new
//! one is, so a lookup for a tag that is absent stops as soon as it meets an entry nearer its
//! home than the probe, after a few slots even when the table is 85% full (most lookups of the
//! TTL index are for keys without a TTL). Removal shifts the entries after it back.
//!
//! A tag's home is its place in the table scaled to the table's length (multiply and shift),
//! so the length need not be a power of two: the table grows by half (from 85% to 57% full),
//! not double (to 42%), and stays about 70% full on average (an entry of 12-byte slots takes
//! 17 bytes, not 20).
//!
//! Resizing never moves the whole table at once (no latency spike, as with [`super::Dict`]): a
//! new table is allocated and the old one's entries move over a run of entries at a time on
//! each insert and removal and from the cron. A run (a cluster: occupied slots between two
//! empty ones) moves whole, so that the old table's remaining runs stay intact and lookups in
//! it still find every entry left there.

use rand::Rng;

/// The tag bit that marks a slot used; the other 31 are the hash's low bits.
const USED: u32 = 1 << 31;

/// The bits of a hash that a tag keeps ([`tag_of`]).
pub const TAG_BITS: u64 = (USED - 1) as u64;

/// Past the last tag value: where a SCAN ends.
const END: u64 = 1 << 31;

/// The tag of a hash.
#[inline]
pub fn tag_of(h: u64) -> u32 {
    (h as u32 & !USED) | USED
}

/// Smallest table allocated.
const MIN_SLOTS: usize = 8;

/// Most entries per 20 slots (85%).
const MAX_PER_20: usize = 17;

/// Slots visited per insert or removal while a resize is under way (a run in progress is
/// always finished).
const STEP_SLOTS: usize = 16;

/// A slot: packed, so that a tag and an `i64` take 12 bytes, not 16.
#[repr(C, packed(4))]
#[derive(Clone, Copy)]
struct Slot<V: Copy> {
    /// 0 when the slot is free.
    tag: u32,
    val: V,
}

#[derive(Clone)]
struct Slots<V: Copy> {
    slots: Box<[Slot<V>]>,
    used: usize,
}

impl<V: Copy + Default> Slots<V> {
    fn empty() -> Self {
        Slots { slots: Box::new([]), used: 0 }
    }

    fn with_len(n: usize) -> Self {
        Slots { slots: vec![Slot { tag: 0, val: V::default() }; n].into_boxed_slice(), used: 0 }
    }

    /// Where a lookup of `tag` starts: its 31 bits scaled to the length (the table must have
    /// slots).
    #[inline]
    fn home(&self, tag: u32) -> usize {
        ((u64::from(tag & !USED) * self.slots.len() as u64) >> 31) as usize
    }

    /// The slot after `i`.
    #[inline]
    fn next(&self, i: usize) -> usize {
        if i + 1 == self.slots.len() {
            0
        } else {
            i + 1
        }
    }

    /// How far slot `i`, holding `tag`, is from the tag's home slot.
    #[inline]
    fn distance(&self, i: usize, tag: u32) -> usize {
        let home = self.home(tag);
        if i >= home {
            i - home
        } else {
            i + self.slots.len() - home
        }
    }

    #[inline]
    fn find(&self, tag: u32) -> Option<usize> {
        if self.used == 0 {
            return None;
        }
        let (mut i, mut d) = (self.home(tag), 0);
        loop {
            let t = self.slots[i].tag;
            if t == tag {
                return Some(i);
            }
            if t == 0 || self.distance(i, t) < d {
                return None;
            }
            i = self.next(i);
            d += 1;
        }
    }

    /// Place an entry whose tag is not in the table; there must be a free slot.
    fn insert(&mut self, tag: u32, val: V) {
        debug_assert!(self.used < self.slots.len());
        let mut carry = Slot { tag, val };
        let (mut i, mut d) = (self.home(tag), 0);
        loop {
            let here = self.slots[i];
            if here.tag == 0 {
                self.slots[i] = carry;
                self.used += 1;
                return;
            }
            let theirs = self.distance(i, here.tag);
            if theirs < d {
                self.slots[i] = carry;
                carry = here;
                d = theirs;
            }
            i = self.next(i);
            d += 1;
        }
    }

    /// Empty slot `i`, shifting the entries after it back; returns its value.
    fn remove_at(&mut self, mut i: usize) -> V {
        let val = self.slots[i].val;
        loop {
            let next = self.next(i);
            let t = self.slots[next].tag;
            if t == 0 || self.distance(next, t) == 0 {
                break;
            }
            self.slots[i] = self.slots[next];
            i = next;
        }
        self.slots[i].tag = 0;
        self.used -= 1;
        val
    }

    /// The first slot whose entries' homes are at least `bits` (31 tag bits): the smallest
    /// such tag's home.
    fn home_of_bits(&self, bits: u64) -> usize {
        ((bits * self.slots.len() as u64) >> 31) as usize
    }

    /// Visit the entries whose tag bits are in `from..to`, in the order of the slots from
    /// `from`'s home on. With `count` entries visited, stop at the next free slot: every entry
    /// whose home is before it was visited, so every tag below the first one whose home is
    /// that slot was. Returns the tag bits up to which every entry was visited: that one, or
    /// `to`.
    fn walk(&self, from: u64, to: u64, count: usize, f: &mut impl FnMut(u32, V)) -> u64 {
        let n = self.slots.len();
        if self.used == 0 {
            return to;
        }
        let last_home = if to >= END { n } else { self.home_of_bits(to - 1) };
        let mut seen = 0;
        for i in self.home_of_bits(from)..n {
            let Slot { tag, val } = self.slots[i];
            if tag == 0 {
                if i > last_home {
                    return to;
                }
                if seen >= count {
                    // The smallest tag bits whose home is slot i (none has it: it is free).
                    return ((i as u64) << 31).div_ceil(n as u64);
                }
            } else if self.home(tag) <= i {
                // (An entry whose home is after its slot wrapped around from the end: it
                // comes after the last slot.)
                let bits = u64::from(tag & !USED);
                if (from..to).contains(&bits) {
                    f(tag, val);
                    seen += 1;
                }
            }
        }
        // The walk reached the last slot: a run that goes on at slot 0 ends there.
        for i in 0..n {
            let Slot { tag, val } = self.slots[i];
            if tag == 0 || self.home(tag) <= i {
                break;
            }
            if (from..to).contains(&u64::from(tag & !USED)) {
                f(tag, val);
            }
        }
        to
    }

    /// The first used slot from `from` on, at most `len` slots on (wrapping).
    fn first_used(&self, from: usize, len: usize) -> Option<usize> {
        let n = self.slots.len();
        (0..len).map(|k| (from + k) % n).find(|&i| self.slots[i].tag != 0)
    }
}

/// An old table whose entries are moving to the new one.
#[derive(Clone)]
struct Resize<V: Copy> {
    from: Slots<V>,
    /// A slot that was free when the resize began: the walk starts there, so that no run is
    /// cut at its start.
    start: usize,
    /// Slots walked from `start`: those are empty now.
    walked: usize,
}

/// A map from hash tags to `V`; see the module comment.
#[derive(Clone)]
pub struct ProbeTable<V: Copy> {
    table: Slots<V>,
    /// Boxed: a table not resizing stays 32 bytes (every database of every shard has one).
    resize: Option<Box<Resize<V>>>,
}

impl<V: Copy + Default> Default for ProbeTable<V> {
    fn default() -> Self {
        ProbeTable { table: Slots::empty(), resize: None }
    }
}

impl<V: Copy + Default> ProbeTable<V> {
    pub fn len(&self) -> usize {
        self.table.used + self.resize.as_ref().map_or(0, |r| r.from.used)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Slots of both tables (memory reports).
    pub fn slots(&self) -> usize {
        self.table.slots.len() + self.resize.as_ref().map_or(0, |r| r.from.slots.len())
    }

    pub fn is_resizing(&self) -> bool {
        self.resize.is_some()
    }

    pub fn get(&self, tag: u32) -> Option<V> {
        if let Some(i) = self.table.find(tag) {
            return Some(self.table.slots[i].val);
        }
        let r = self.resize.as_ref()?;
        r.from.find(tag).map(|i| r.from.slots[i].val)
    }

    /// Replace the value of `tag`, when it has one.
    pub fn set(&mut self, tag: u32, val: V) -> bool {
        if let Some(i) = self.table.find(tag) {
            self.table.slots[i].val = val;
            return true;
        }
        match &mut self.resize {
            Some(r) => match r.from.find(tag) {
                Some(i) => {
                    r.from.slots[i].val = val;
                    true
                }
                None => false,
            },
            None => false,
        }
    }

    /// Add `tag`, which has no entry.
    pub fn insert_new(&mut self, tag: u32, val: V) {
        debug_assert!(tag & USED != 0 && self.get(tag).is_none());
        self.step(STEP_SLOTS);
        let cap = self.table.slots.len();
        if (self.len() + 1) * 20 > cap * MAX_PER_20 {
            // The table would be past 85% full with every entry in it: grow. Mid-resize (a
            // shrink that new entries outran), finish first: there is room, since every insert
            // checks this.
            self.step(usize::MAX);
            self.start_resize((cap + cap / 2).max(MIN_SLOTS));
        }
        self.table.insert(tag, val);
    }

    pub fn remove(&mut self, tag: u32) -> Option<V> {
        let val = match self.table.find(tag) {
            Some(i) => self.table.remove_at(i),
            None => {
                let r = self.resize.as_mut()?;
                let i = r.from.find(tag)?;
                r.from.remove_at(i)
            }
        };
        self.step(STEP_SLOTS);
        self.shrink_if_sparse();
        Some(val)
    }

    /// An entry drawn at random: a random slot of one table (chosen by their entries), then
    /// the first entry from there on.
    pub fn random_entry(&self) -> Option<(u32, V)> {
        let total = self.len();
        if total == 0 {
            return None;
        }
        let mut rng = rand::thread_rng();
        let i = match &self.resize {
            Some(r) if rng.gen_range(0..total) < r.from.used => {
                // Only the slots not walked yet hold entries.
                let left = r.from.slots.len() - r.walked;
                let from = r.start + r.walked + rng.gen_range(0..left);
                let i = r.from.first_used(from, left).or_else(|| r.from.first_used(r.start + r.walked, left))?;
                return Some((r.from.slots[i].tag, r.from.slots[i].val));
            }
            _ => {
                let n = self.table.slots.len();
                self.table.first_used(rng.gen_range(0..n), n)?
            }
        };
        Some((self.table.slots[i].tag, self.table.slots[i].val))
    }

    /// The cron's work: start shrinking a sparse table, then move entries for at most `budget`.
    pub fn cron_step(&mut self, budget: std::time::Duration) {
        if self.resize.is_none() && self.table.slots.len() <= MIN_SLOTS {
            return;
        }
        self.shrink_if_sparse();
        let start = std::time::Instant::now();
        while self.resize.is_some() && start.elapsed() < budget {
            self.step(1000);
        }
    }

    /// One step of a SCAN: the entries whose tag bits are at least `cursor`, in slot order,
    /// `count` or a few more (to the end of a run) unless fewer are left. Returns the next
    /// cursor, 0 when done. The cursor is a tag value, not a slot: it means the same whatever
    /// the table's length, so an entry there from the first step to the last is visited
    /// (once, as no entry moves back past a cursor) however the table is resized between
    /// steps. Mid-resize, both tables are walked for the same tags.
    pub fn scan(&self, cursor: u64, count: usize, mut f: impl FnMut(u32, V)) -> u64 {
        if cursor >= END {
            return 0;
        }
        let next = self.table.walk(cursor, END, count.max(1), &mut f);
        if let Some(r) = &self.resize {
            r.from.walk(cursor, next, usize::MAX, &mut f);
        }
        if next >= END {
            0
        } else {
            next
        }
    }

    /// Hint the CPU to load `tag`'s home slot.
    #[inline]
    pub fn prefetch(&self, tag: u32) {
        if let Some(s) = self.table.slots.get(self.table.home(tag)) {
            crate::util::prefetch::prefetch(s as *const Slot<V>);
        }
    }

    /// Size an empty table for `n` entries (a bulk load's hint), so that inserting them never
    /// grows it: the table is then at most 80% full. A table with entries is left alone.
    pub fn reserve(&mut self, n: usize) {
        let to = n + n / 4 + 1;
        if self.is_empty() && self.resize.is_none() && to > self.table.slots.len() {
            self.table = Slots::with_len(to.max(MIN_SLOTS));
        }
    }

    /// Under 10% full (Redis's rule): move to a table about 60% full.
    fn shrink_if_sparse(&mut self) {
        let cap = self.table.slots.len();
        if self.resize.is_some() || cap <= MIN_SLOTS || self.table.used * 10 >= cap {
            return;
        }
        let to = (self.table.used * 5 / 3 + 1).max(MIN_SLOTS);
        self.start_resize(to);
    }

    fn start_resize(&mut self, to: usize) {
        debug_assert!(self.resize.is_none());
        let from = std::mem::replace(&mut self.table, Slots::with_len(to));
        if from.used == 0 {
            return;
        }
        let start = (0..from.slots.len()).find(|&i| from.slots[i].tag == 0).expect("a table is never full");
        self.resize = Some(Box::new(Resize { from, start, walked: 0 }));
    }

    /// Walk at least `slots` slots of the old table (more to finish a run), moving their
    /// entries to the new one.
    fn step(&mut self, slots: usize) {
        let Some(r) = self.resize.as_mut() else { return };
        let cap = r.from.slots.len();
        let mut walked = 0;
        while r.walked < cap {
            let i = (r.start + r.walked) % cap;
            let s = r.from.slots[i];
            if s.tag == 0 && walked >= slots {
                break;
            }
            if s.tag != 0 {
                self.table.insert(s.tag, s.val);
                r.from.slots[i].tag = 0;
                r.from.used -= 1;
            }
            r.walked += 1;
            walked += 1;
        }
        if r.walked == cap {
            debug_assert_eq!(r.from.used, 0);
            self.resize = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;

    #[derive(Debug, Clone)]
    enum Op {
        Insert(u32, i64),
        Set(u32, i64),
        Remove(u32),
        Draw,
        Cron,
    }

    fn op(tags: u32) -> impl Strategy<Value = Op> {
        prop_oneof![
            5 => (0..tags, any::<i64>()).prop_map(|(t, v)| Op::Insert(t, v)),
            1 => (0..tags, any::<i64>()).prop_map(|(t, v)| Op::Set(t, v)),
            4 => (0..tags).prop_map(Op::Remove),
            1 => Just(Op::Draw),
            1 => Just(Op::Cron),
        ]
    }

    /// Tags: half of them spread over the 31 bits, half so small that their home is slot 0
    /// at any length (one long run).
    fn tag(t: u32) -> u32 {
        match t % 2 {
            0 => tag_of(u64::from(t).wrapping_mul(0x9e37_79b9)),
            _ => tag_of(u64::from(t)),
        }
    }

    proptest! {
        /// The table holds what a map holds through inserts, updates, removals (growing and
        /// shrinking mid-resize) and draws.
        #[test]
        fn matches_a_map(ops in proptest::collection::vec(op(300), 1..2000)) {
            let mut t: ProbeTable<i64> = ProbeTable::default();
            let mut model: HashMap<u32, i64> = HashMap::new();
            for op in ops {
                match op {
                    Op::Insert(k, v) => {
                        if let std::collections::hash_map::Entry::Vacant(e) = model.entry(tag(k)) {
                            t.insert_new(tag(k), v);
                            e.insert(v);
                        }
                    }
                    Op::Set(k, v) => {
                        let had = model.get_mut(&tag(k)).map(|w| *w = v).is_some();
                        prop_assert_eq!(t.set(tag(k), v), had);
                    }
                    Op::Remove(k) => prop_assert_eq!(t.remove(tag(k)), model.remove(&tag(k))),
                    Op::Draw => match t.random_entry() {
                        Some((k, v)) => prop_assert_eq!(model.get(&k), Some(&v)),
                        None => prop_assert!(model.is_empty()),
                    },
                    Op::Cron => t.cron_step(std::time::Duration::from_millis(10)),
                }
                prop_assert_eq!(t.len(), model.len());
            }
            for (&k, &v) in &model {
                prop_assert_eq!(t.get(k), Some(v));
            }
            for k in 0..300 {
                prop_assert_eq!(t.get(tag(k)), model.get(&tag(k)).copied());
            }
        }
    }

    proptest! {
        /// A SCAN visits every entry present from its first step to its last, whatever is
        /// inserted and removed between steps (resizes included), and each at most once when
        /// nothing changes.
        #[test]
        fn a_scan_visits_every_entry_that_stays(
            stay in proptest::collection::hash_set(0..2000u32, 0..300),
            churn in proptest::collection::vec((0..2000u32, any::<bool>()), 0..600),
            count in 1..40usize,
        ) {
            let mut t: ProbeTable<i64> = ProbeTable::default();
            for &k in &stay {
                t.insert_new(tag(k), i64::from(k));
            }
            // An unchanged table first: each entry once.
            let (mut seen, mut cursor) = (Vec::new(), 0);
            loop {
                cursor = t.scan(cursor, count, |k, _| seen.push(k));
                if cursor == 0 {
                    break;
                }
            }
            seen.sort_unstable();
            let mut want: Vec<u32> = stay.iter().map(|&k| tag(k)).collect();
            want.sort_unstable();
            prop_assert_eq!(&seen, &want);
            // Then with inserts and removals of other entries between steps.
            let (mut seen, mut cursor, mut churn) = (std::collections::HashSet::new(), 0, churn.into_iter());
            loop {
                cursor = t.scan(cursor, count, |k, v| {
                    seen.insert((k, v));
                });
                if cursor == 0 {
                    break;
                }
                for (k, add) in churn.by_ref().take(20) {
                    if stay.contains(&k) {
                        continue;
                    }
                    match (add, t.get(tag(k)).is_some()) {
                        (true, false) => t.insert_new(tag(k), i64::from(k)),
                        (false, true) => prop_assert_eq!(t.remove(tag(k)), Some(i64::from(k))),
                        _ => {}
                    }
                }
            }
            for &k in &stay {
                prop_assert!(seen.contains(&(tag(k), i64::from(k))));
            }
        }
    }

    #[test]
    fn a_slot_is_twelve_bytes_or_eight_and_an_idle_table_thirty_two() {
        assert_eq!(std::mem::size_of::<Slot<i64>>(), 12);
        assert_eq!(std::mem::size_of::<Slot<u32>>(), 8);
        assert_eq!(std::mem::size_of::<ProbeTable<i64>>(), 32);
    }

    #[test]
    fn resizing_moves_entries_a_run_at_a_time() {
        let mut t: ProbeTable<i64> = ProbeTable::default();
        for k in 0..1000u32 {
            t.insert_new(tag_of(u64::from(k).wrapping_mul(0x9e37_79b9_7f4a_7c15)), i64::from(k));
        }
        // Grown by half from 8 slots, at 85% full each time: 1000 entries fill 1531 slots to
        // 65%. The growth from 1021 (at 868 entries) moved entries with each insert since and
        // is done.
        assert_eq!((t.len(), t.slots(), t.is_resizing()), (1000, 1531, false));
        for k in 0..950u32 {
            assert_eq!(t.remove(tag_of(u64::from(k).wrapping_mul(0x9e37_79b9_7f4a_7c15))), Some(i64::from(k)));
        }
        // Under 10% full (at 153 entries) it began shrinking to 256 slots; entries were moved
        // as others were removed, and every one left is found.
        assert!(t.slots() <= 1531 + 256);
        for k in 950..1000u32 {
            assert_eq!(t.get(tag_of(u64::from(k).wrapping_mul(0x9e37_79b9_7f4a_7c15))), Some(i64::from(k)));
        }
        t.cron_step(std::time::Duration::from_secs(1));
        assert!(!t.is_resizing());
        assert_eq!(t.slots(), 256);
    }

    #[test]
    fn a_reserved_table_takes_its_entries_without_growing() {
        let key = |k: u32| tag_of(u64::from(k).wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let mut t: ProbeTable<i64> = ProbeTable::default();
        t.reserve(1000);
        assert_eq!(t.slots(), 1251);
        for k in 0..1000u32 {
            t.insert_new(key(k), i64::from(k));
        }
        assert_eq!((t.len(), t.slots(), t.is_resizing()), (1000, 1251, false));
        assert!((0..1000u32).all(|k| t.get(key(k)) == Some(i64::from(k))));
        // A table with entries keeps its size.
        t.reserve(100_000);
        assert_eq!(t.slots(), 1251);
        // One whose entries never came (keys that expired before the load took them) shrinks
        // at its next cron step.
        let mut empty: ProbeTable<i64> = ProbeTable::default();
        empty.reserve(100_000);
        empty.cron_step(std::time::Duration::from_millis(1));
        assert_eq!(empty.slots(), MIN_SLOTS);
    }
}
