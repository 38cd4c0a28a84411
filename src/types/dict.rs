//! A chained hash table with incremental rehashing and a stateless scan cursor, the structure
//! Redis's keyspace is built on. Written by hand (instead of using `std`'s map) for two reasons
//! the server depends on:
//! - growing or shrinking never moves the whole table at once: a second table is allocated and
//!   buckets migrate a few at a time on each operation (and from the server's cron), so a resize
//!   of a 10M-key table causes no latency spike;
//! - [`Dict::scan`] walks buckets in reverse-binary order, which guarantees that an element
//!   present for the whole iteration is returned at least once even if the table is resized
//!   between calls (SCAN's guarantee).

use rand::Rng;
use std::sync::LazyLock;

use crate::types::SmallBytes;
use crate::util::prefetch::prefetch;

struct Node<V, K> {
    key: K,
    val: V,
    next: Option<Box<Node<V, K>>>,
}

type Bucket<V, K> = Option<Box<Node<V, K>>>;

struct Table<V, K> {
    buckets: Vec<Bucket<V, K>>,
    used: usize,
}

impl<V, K> Table<V, K> {
    fn empty() -> Self {
        Table { buckets: Vec::new(), used: 0 }
    }
    fn with_size(n: usize) -> Self {
        let mut buckets = Vec::with_capacity(n);
        buckets.resize_with(n, || None);
        Table { buckets, used: 0 }
    }
    fn mask(&self) -> usize {
        self.buckets.len().wrapping_sub(1)
    }
}

const MIN_SIZE: usize = 4;

/// The one hash function of every dict, seeded at random once per process (as Redis seeds its
/// siphash once): a key's hash computed once can choose its keyspace shard and then find it
/// in the shard's dict (see `keyspace::locate`). Chained buckets do not suffer from filling
/// one table in another's order with the same function, as open addressing would.
static HASHER: LazyLock<ahash::RandomState> = LazyLock::new(ahash::RandomState::new);

/// The hash every [`Dict`] gives `key`.
#[inline]
pub fn hash_key(key: &[u8]) -> usize {
    HASHER.hash_one(key) as usize
}

/// What a [`Dict`] is keyed by: byte strings ([`SmallBytes`], looked up by `&[u8]`), or a
/// `u64` that is itself a key's [`hash_key`] (the keyspace's TTL index keys keys by hash, so
/// that a key with a TTL costs no second copy of it: 24-byte nodes, not 48).
pub trait DictKey {
    /// What lookups take.
    type Probe: ?Sized + PartialEq;
    fn probe(&self) -> &Self::Probe;
    fn own(p: &Self::Probe) -> Self;
    fn hash(p: &Self::Probe) -> usize;
}

impl DictKey for SmallBytes {
    type Probe = [u8];
    #[inline]
    fn probe(&self) -> &[u8] {
        self
    }
    #[inline]
    fn own(p: &[u8]) -> Self {
        SmallBytes::new(p)
    }
    #[inline]
    fn hash(p: &[u8]) -> usize {
        hash_key(p)
    }
}

impl DictKey for u64 {
    type Probe = u64;
    #[inline]
    fn probe(&self) -> &u64 {
        self
    }
    #[inline]
    fn own(p: &u64) -> Self {
        *p
    }
    #[inline]
    fn hash(p: &u64) -> usize {
        *p as usize
    }
}

/// A hash map from keys (byte strings unless said otherwise) to `V` with incremental rehashing.
pub struct Dict<V, K = SmallBytes> {
    ht: [Table<V, K>; 2],
    /// Index of the next bucket of `ht[0]` to migrate, when a rehash is in progress.
    rehash_idx: Option<usize>,
}

impl<V, K> Default for Dict<V, K> {
    fn default() -> Self {
        Dict { ht: [Table::empty(), Table::empty()], rehash_idx: None }
    }
}

impl<V, K: DictKey> Dict<V, K> {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn len(&self) -> usize {
        self.ht[0].used + self.ht[1].used
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Number of buckets (both tables), for memory estimates and DEBUG output.
    pub fn buckets(&self) -> usize {
        self.ht[0].buckets.len() + self.ht[1].buckets.len()
    }

    pub fn is_rehashing(&self) -> bool {
        self.rehash_idx.is_some()
    }

    /// Migrate up to `n` buckets from the old table to the new one. Returns true if more work remains.
    pub fn rehash(&mut self, n: usize) -> bool {
        let Some(mut idx) = self.rehash_idx else {
            return false;
        };
        let mut empty_visits = n * 10;
        let mut n = n;
        while n > 0 && self.ht[0].used > 0 {
            while self.ht[0].buckets[idx].is_none() {
                idx += 1;
                empty_visits -= 1;
                if empty_visits == 0 {
                    self.rehash_idx = Some(idx);
                    return true;
                }
            }
            let mut chain = self.ht[0].buckets[idx].take();
            let mask = self.ht[1].mask();
            while let Some(mut node) = chain {
                chain = node.next.take();
                let h = K::hash(node.key.probe()) & mask;
                node.next = self.ht[1].buckets[h].take();
                self.ht[1].buckets[h] = Some(node);
                self.ht[0].used -= 1;
                self.ht[1].used += 1;
            }
            idx += 1;
            n -= 1;
        }
        if self.ht[0].used == 0 {
            self.ht[0] = std::mem::replace(&mut self.ht[1], Table::empty());
            self.rehash_idx = None;
            return false;
        }
        self.rehash_idx = Some(idx);
        true
    }

    /// Rehash for at most about `budget` of wall time (called from the server cron).
    pub fn rehash_for(&mut self, budget: std::time::Duration) {
        if self.rehash_idx.is_none() {
            return; // nothing to do: no clock reading either (the cron calls this per table)
        }
        let start = std::time::Instant::now();
        while self.rehash(100) {
            if start.elapsed() >= budget {
                break;
            }
        }
    }

    fn step(&mut self) {
        if self.rehash_idx.is_some() {
            self.rehash(1);
        }
    }

    /// Size an empty table for `n` entries (at most one per bucket), so that inserting them
    /// never grows it. A table that holds entries is left as it is.
    pub fn reserve(&mut self, n: usize) {
        if self.ht[0].used == 0 && self.rehash_idx.is_none() && n > self.ht[0].buckets.len() {
            self.ht[0] = Table::with_size(n.max(MIN_SIZE).next_power_of_two());
        }
    }

    fn start_resize(&mut self, size: usize) {
        let size = size.max(MIN_SIZE).next_power_of_two();
        if self.ht[0].buckets.is_empty() {
            self.ht[0] = Table::with_size(size);
            return;
        }
        if size == self.ht[0].buckets.len() {
            return;
        }
        self.ht[1] = Table::with_size(size);
        self.rehash_idx = Some(0);
    }

    fn expand_if_needed(&mut self) {
        if self.rehash_idx.is_some() {
            return;
        }
        let t = &self.ht[0];
        if t.buckets.is_empty() {
            self.start_resize(MIN_SIZE);
        } else if t.used >= t.buckets.len() {
            self.start_resize(t.used + 1);
        }
    }

    /// Shrink the table when it is less than 10% full (Redis's rule); called from the cron.
    /// The cron's work on this table: start shrinking it if it became sparse, then rehash for
    /// at most `budget`. Nearly free for a table with nothing to do.
    #[inline]
    pub fn cron_step(&mut self, budget: std::time::Duration) {
        if self.rehash_idx.is_none() && self.ht[0].buckets.len() <= MIN_SIZE {
            return;
        }
        self.shrink_if_needed();
        self.rehash_for(budget);
    }

    pub fn shrink_if_needed(&mut self) {
        if self.rehash_idx.is_some() {
            return;
        }
        let size = self.ht[0].buckets.len();
        if size > MIN_SIZE && self.ht[0].used * 100 / size < 10 {
            self.start_resize(self.ht[0].used);
        }
    }

    /// Start loading what the lookups of `(dict, hash)` pairs will read, without waiting for
    /// it, in two rounds: every bucket, then (loaded since) every bucket's first entry. Issued
    /// for a whole batch of keys, the cache misses of their lookups overlap instead of following
    /// one another. `lookups` gives the pairs, once per round (a pipelined batch's prefetch runs
    /// per request: no list of them is built).
    pub fn prefetch_lookups<'d, I>(lookups: impl Fn() -> I)
    where
        I: Iterator<Item = (&'d Dict<V, K>, usize)>,
        V: 'd,
        K: 'd,
    {
        for (d, h) in lookups() {
            d.prefetch(h, false);
        }
        for (d, h) in lookups() {
            d.prefetch(h, true);
        }
    }

    /// One round of [`Dict::prefetch_lookups`] for hash `h`: the bucket when `chain` is false;
    /// when true, the first entry of its chain.
    fn prefetch(&self, h: usize, chain: bool) {
        let tables = if self.rehash_idx.is_some() { 2 } else { 1 };
        for t in &self.ht[..tables] {
            if let Some(bucket) = t.buckets.get(h & t.mask()) {
                match (chain, bucket) {
                    (false, _) => prefetch(bucket as *const Bucket<V, K>),
                    (true, Some(node)) => prefetch(&**node as *const Node<V, K>),
                    (true, None) => {}
                }
            }
        }
    }

    fn find_in(&self, table: usize, h: usize, key: &K::Probe) -> Option<&Node<V, K>> {
        let t = &self.ht[table];
        if t.buckets.is_empty() {
            return None;
        }
        let mut cur = t.buckets[h & t.mask()].as_deref();
        while let Some(n) = cur {
            if n.key.probe() == key {
                return Some(n);
            }
            cur = n.next.as_deref();
        }
        None
    }

    fn find_node(&self, key: &K::Probe) -> Option<&Node<V, K>> {
        self.find_node_hashed(K::hash(key), key)
    }

    fn find_node_hashed(&self, h: usize, key: &K::Probe) -> Option<&Node<V, K>> {
        if self.is_empty() {
            return None;
        }
        self.find_in(0, h, key).or_else(|| if self.rehash_idx.is_some() { self.find_in(1, h, key) } else { None })
    }

    /// An entry whose key's hash ([`DictKey::hash`]) equals `h` in the `bits` (which must
    /// cover the buckets' bits) and whose value `pred` accepts: how the keyspace finds the key
    /// behind an entry of its TTL index, which holds 31 bits of hashes.
    pub fn find_by_hash(&self, h: usize, bits: usize, mut pred: impl FnMut(&V) -> bool) -> Option<(&K::Probe, &V)> {
        debug_assert!(self.ht.iter().all(|t| t.mask() & !bits == 0 || t.buckets.is_empty()));
        let tables = if self.rehash_idx.is_some() { 2 } else { 1 };
        for t in &self.ht[..tables] {
            if t.buckets.is_empty() {
                continue;
            }
            let mut cur = t.buckets[h & t.mask()].as_deref();
            while let Some(n) = cur {
                if pred(&n.val) && K::hash(n.key.probe()) & bits == h & bits {
                    return Some((n.key.probe(), &n.val));
                }
                cur = n.next.as_deref();
            }
        }
        None
    }

    pub fn get(&self, key: &K::Probe) -> Option<&V> {
        self.find_node(key).map(|n| &n.val)
    }

    /// [`Dict::get`] with `key`'s hash already computed ([`hash_key`]).
    pub fn get_hashed(&self, h: usize, key: &K::Probe) -> Option<&V> {
        debug_assert_eq!(h, K::hash(key));
        self.find_node_hashed(h, key).map(|n| &n.val)
    }

    pub fn contains_key(&self, key: &K::Probe) -> bool {
        self.find_node(key).is_some()
    }

    pub fn get_mut(&mut self, key: &K::Probe) -> Option<&mut V> {
        self.get_mut_hashed(K::hash(key), key)
    }

    /// [`Dict::get_mut`] with `key`'s hash already computed ([`hash_key`]).
    pub fn get_mut_hashed(&mut self, h: usize, key: &K::Probe) -> Option<&mut V> {
        debug_assert_eq!(h, K::hash(key));
        if self.is_empty() {
            return None;
        }
        self.step();
        // Find the table first, then walk it mutably (one mutable borrow per call). Outside a
        // rehash there is only one table, so a single walk suffices.
        let table = if self.rehash_idx.is_none() || self.find_in(0, h, key).is_some() {
            0
        } else if self.rehash_idx.is_some() && self.find_in(1, h, key).is_some() {
            1
        } else {
            return None;
        };
        let t = &mut self.ht[table];
        let mask = t.mask();
        let mut cur = t.buckets[h & mask].as_deref_mut();
        while let Some(n) = cur {
            if n.key.probe() == key {
                return Some(&mut n.val);
            }
            cur = n.next.as_deref_mut();
        }
        None
    }

    /// Insert or replace; returns the previous value.
    pub fn insert(&mut self, key: &K::Probe, val: V) -> Option<V> {
        if let Some(slot) = self.get_mut(key) {
            return Some(std::mem::replace(slot, val));
        }
        self.insert_new(K::own(key), val);
        None
    }

    /// Insert a key known to be absent (the caller checked); returns the stored value.
    pub fn insert_new(&mut self, key: K, val: V) -> &mut V {
        let h = K::hash(key.probe());
        self.insert_new_hashed(h, key, val)
    }

    /// [`Dict::insert_new`] with the key's hash already computed ([`hash_key`]).
    pub fn insert_new_hashed(&mut self, h: usize, key: K, val: V) -> &mut V {
        debug_assert_eq!(h, K::hash(key.probe()));
        self.step();
        self.expand_if_needed();
        let table = if self.rehash_idx.is_some() { 1 } else { 0 };
        let t = &mut self.ht[table];
        let b = h & t.mask();
        let next = t.buckets[b].take();
        t.used += 1;
        &mut t.buckets[b].insert(Box::new(Node { key, val, next })).val
    }

    /// The value of `key`, inserting `make()` first if it is absent. The flag tells whether it
    /// was inserted. One hash and one chain walk when the key is there (INCR's usual case; a
    /// lookup then a second `get_mut` cost ~180 instructions more).
    pub fn get_or_insert_with(&mut self, key: &K::Probe, make: impl FnOnce() -> V) -> (&mut V, bool) {
        self.get_or_insert_with_hashed(K::hash(key), key, make)
    }

    /// [`Dict::get_or_insert_with`] with `key`'s hash already computed ([`hash_key`]).
    pub fn get_or_insert_with_hashed(&mut self, h: usize, key: &K::Probe, make: impl FnOnce() -> V) -> (&mut V, bool) {
        if let Some(v) = self.get_mut_hashed(h, key) {
            let v: *mut V = v;
            // SAFETY: `v` points into a node of this dict and is returned with the same mutable
            // borrow of `self` that produced it; it is released early only because the borrow
            // checker cannot see that this branch returns it (NLL "problem case #3").
            return (unsafe { &mut *v }, false);
        }
        (self.insert_new_hashed(h, K::own(key), make()), true)
    }

    /// Remove a key, returning its stored key and value.
    pub fn remove_entry(&mut self, key: &K::Probe) -> Option<(K, V)> {
        if self.is_empty() {
            return None;
        }
        self.step();
        let h = K::hash(key);
        for table in 0..2 {
            if table == 1 && self.rehash_idx.is_none() {
                break;
            }
            let t = &mut self.ht[table];
            if t.buckets.is_empty() {
                continue;
            }
            let b = h & t.mask();
            let mut link = &mut t.buckets[b];
            loop {
                match link {
                    None => break,
                    Some(n) if n.key.probe() == key => {
                        let mut node = link.take().expect("matched node");
                        *link = node.next.take();
                        t.used -= 1;
                        return Some((node.key, node.val));
                    }
                    Some(n) => link = &mut n.next,
                }
            }
        }
        None
    }

    pub fn remove(&mut self, key: &K::Probe) -> Option<V> {
        self.remove_entry(key).map(|(_, v)| v)
    }

    /// Drop everything (the memory is released by the caller's choice of thread).
    pub fn take_all(&mut self) -> Dict<V, K> {
        std::mem::take(self)
    }

    /// Visit every entry.
    pub fn for_each(&self, mut f: impl FnMut(&K::Probe, &V)) {
        for t in &self.ht {
            for b in &t.buckets {
                let mut cur = b.as_deref();
                while let Some(n) = cur {
                    f(n.key.probe(), &n.val);
                    cur = n.next.as_deref();
                }
            }
        }
    }

    /// The segment of `key` when the dict is cut into `n` segments (`n` a power of two): the
    /// low bits of its hash. A key's segment never changes, whatever the table sizes.
    pub fn segment_of(&self, key: &K::Probe, n: usize) -> usize {
        K::hash(key) & (n - 1)
    }

    /// Visit the entries of segment `seg` of `n` (see [`Dict::segment_of`]): the buckets it
    /// owns in each table, about `buckets / n` of them.
    pub fn for_each_in_segment(&self, seg: usize, n: usize, mut f: impl FnMut(&K::Probe, &V)) {
        for t in &self.ht {
            let size = t.buckets.len();
            if size == 0 {
                continue;
            }
            // A table at least `n` buckets large keeps a segment's keys in every n-th bucket
            // from `seg`; a smaller one mixes segments in a bucket: filter by hash.
            let (start, step, filter) = if size >= n { (seg, n, false) } else { (seg & (size - 1), size, true) };
            let mut b = start;
            while b < size {
                let mut cur = t.buckets[b].as_deref();
                while let Some(node) = cur {
                    if !filter || self.segment_of(node.key.probe(), n) == seg {
                        f(node.key.probe(), &node.val);
                    }
                    cur = node.next.as_deref();
                }
                b += step;
            }
        }
    }

    /// Keys of every entry, copied.
    pub fn keys(&self) -> Vec<K> {
        let mut out = Vec::with_capacity(self.len());
        self.for_each(|k, _| out.push(K::own(k)));
        out
    }

    /// A random entry, fairer than [`Dict::random_entry`] where chains differ in length (as
    /// Redis's dictGetFairRandomKey): up to 15 entries are gathered from consecutive buckets
    /// starting at a random one (jumping elsewhere after more than 15 empty buckets in a row), and one of
    /// them is picked. O(1) whatever the size, unlike walking the table.
    pub fn fair_random_entry(&mut self) -> Option<(&K::Probe, &V)> {
        const SAMPLE: usize = 15;
        if self.is_empty() {
            return None;
        }
        self.step();
        let mut rng = rand::thread_rng();
        // (table, bucket, position in the chain) of each gathered entry.
        let mut found = [(0usize, 0usize, 0usize); SAMPLE];
        let mut n = 0;
        {
            let this = &*self;
            let rehash_idx = this.rehash_idx;
            let tables = if rehash_idx.is_some() { 2 } else { 1 };
            let size = this.ht[0].buckets.len().max(this.ht[1].buckets.len());
            let mask = size - 1;
            let mut i = rng.gen::<usize>() & mask;
            let mut empty_run = 0;
            let mut steps = SAMPLE * 10;
            'walk: while n < SAMPLE && steps > 0 {
                steps -= 1;
                for t in 0..tables {
                    let buckets = &this.ht[t].buckets;
                    // Buckets of ht[0] below the rehash index have moved to ht[1].
                    if t == 0 && rehash_idx.is_some_and(|idx| i < idx) {
                        continue;
                    }
                    let Some(head) = buckets.get(i) else { continue };
                    match head.as_deref() {
                        None => {
                            empty_run += 1;
                            if empty_run > SAMPLE {
                                i = rng.gen::<usize>() & mask;
                                empty_run = 0;
                                continue 'walk;
                            }
                        }
                        Some(first) => {
                            empty_run = 0;
                            let mut cur = Some(first);
                            let mut pos = 0;
                            while let Some(node) = cur {
                                found[n] = (t, i, pos);
                                n += 1;
                                if n == SAMPLE {
                                    break 'walk;
                                }
                                pos += 1;
                                cur = node.next.as_deref();
                            }
                        }
                    }
                }
                i = (i + 1) & mask;
            }
        }
        if n == 0 {
            return self.random_entry();
        }
        let (t, b, pos) = found[rng.gen_range(0..n)];
        self.chain_entry(t, b, pos)
    }

    /// The entry at position `pos` of the chain in bucket `bucket` of table `table`.
    fn chain_entry(&self, table: usize, bucket: usize, pos: usize) -> Option<(&K::Probe, &V)> {
        let mut cur = self.ht[table].buckets[bucket].as_deref();
        for _ in 0..pos {
            cur = cur.and_then(|node| node.next.as_deref());
        }
        cur.map(|node| (node.key.probe(), &node.val))
    }

    /// A random entry (uniform over buckets, then over the chain, like Redis's dictGetRandomKey).
    pub fn random_entry(&mut self) -> Option<(&K::Probe, &V)> {
        if self.is_empty() {
            return None;
        }
        self.step();
        let mut rng = rand::thread_rng();
        let (table, bucket) = loop {
            match self.rehash_idx {
                Some(idx) => {
                    let s0 = self.ht[0].buckets.len();
                    let total = s0 + self.ht[1].buckets.len();
                    // Buckets of ht[0] below idx are empty: skip them.
                    let i = idx + rng.gen_range(0..total - idx);
                    let (t, b) = if i >= s0 { (1, i - s0) } else { (0, i) };
                    if self.ht[t].buckets[b].is_some() {
                        break (t, b);
                    }
                }
                None => {
                    let b = rng.gen_range(0..self.ht[0].buckets.len());
                    if self.ht[0].buckets[b].is_some() {
                        break (0, b);
                    }
                }
            }
        };
        let mut len = 0;
        let mut cur = self.ht[table].buckets[bucket].as_deref();
        while let Some(n) = cur {
            len += 1;
            cur = n.next.as_deref();
        }
        self.chain_entry(table, bucket, rng.gen_range(0..len))
    }

    /// One SCAN call over this dict, as Redis 7.2's scanGenericCommand budgets it: scan steps
    /// until the iteration ends, at least `count` entries were visited (before any MATCH
    /// filter; one per entry, so HSCAN/ZSCAN return about `count` field/value pairs, as Redis
    /// 7.0 did by doubling COUNT), or `count * 10` steps were taken. Returns the next cursor.
    pub fn scan_budget(&self, mut cursor: u64, count: usize, mut f: impl FnMut(&K::Probe, &V)) -> u64 {
        let mut produced = 0usize;
        let mut iterations = count.saturating_mul(10);
        loop {
            cursor = self.scan(cursor, |k, v| {
                produced += 1;
                f(k, v)
            });
            if cursor == 0 || iterations == 0 || produced >= count {
                return cursor;
            }
            iterations -= 1;
        }
    }

    /// Visit one step of a SCAN starting at `cursor`, calling `f` for each entry in the visited
    /// bucket(s). Returns the next cursor; 0 means the iteration is complete.
    pub fn scan(&self, cursor: u64, mut f: impl FnMut(&K::Probe, &V)) -> u64 {
        if self.is_empty() {
            return 0;
        }
        let visit = |t: &Table<V, K>, idx: usize, f: &mut dyn FnMut(&K::Probe, &V)| {
            let mut cur = t.buckets[idx].as_deref();
            while let Some(n) = cur {
                f(n.key.probe(), &n.val);
                cur = n.next.as_deref();
            }
        };
        let mut v = cursor as usize;
        if self.rehash_idx.is_none() {
            let t0 = &self.ht[0];
            let m0 = t0.mask();
            visit(t0, v & m0, &mut f);
            v |= !m0;
            v = v.reverse_bits().wrapping_add(1).reverse_bits();
        } else {
            let (small, big) = if self.ht[0].buckets.len() <= self.ht[1].buckets.len() {
                (&self.ht[0], &self.ht[1])
            } else {
                (&self.ht[1], &self.ht[0])
            };
            let m0 = small.mask();
            let m1 = big.mask();
            visit(small, v & m0, &mut f);
            // Visit every bucket of the big table that expands from the small table's bucket.
            loop {
                visit(big, v & m1, &mut f);
                v |= !m1;
                v = v.reverse_bits().wrapping_add(1).reverse_bits();
                if v & (m0 ^ m1) == 0 {
                    break;
                }
            }
        }
        v as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{HashMap, HashSet};

    #[test]
    fn a_keyspace_node_fills_one_64_byte_block() {
        // Key, entry and chain link: mimalloc's 64-byte class (not 80) holds each key.
        assert_eq!(std::mem::size_of::<Node<crate::types::Entry, SmallBytes>>(), 64);
    }

    #[test]
    fn segments_partition_the_entries_at_every_size_and_mid_rehash() {
        let mut d: Dict<u32> = Dict::new();
        for count in [0u32, 3, 40, 1000, 1025, 4097, 5000] {
            while d.len() < count as usize {
                let i = d.len() as u32;
                d.insert(format!("k{i}").as_bytes(), i);
            }
            for n in [1usize, 8, 64] {
                let mut seen = HashSet::new();
                for seg in 0..n {
                    d.for_each_in_segment(seg, n, |k, v| {
                        assert_eq!(d.segment_of(k, n), seg);
                        assert!(seen.insert(*v), "entry {v} in two segments");
                    });
                }
                assert_eq!(seen.len(), d.len(), "{} entries, {n} segments (rehashing: {})", d.len(), d.is_rehashing());
            }
        }
    }

    #[test]
    fn insert_get_remove_through_resizes() {
        let mut d: Dict<u32> = Dict::new();
        for i in 0..10_000u32 {
            assert!(d.insert(format!("k{i}").as_bytes(), i).is_none());
        }
        assert_eq!(d.len(), 10_000);
        for i in 0..10_000u32 {
            assert_eq!(d.get(format!("k{i}").as_bytes()), Some(&i));
        }
        assert_eq!(d.insert(b"k5", 55), Some(5));
        for i in 0..9_990u32 {
            assert!(d.remove(format!("k{i}").as_bytes()).is_some());
            d.shrink_if_needed();
        }
        assert_eq!(d.len(), 10);
        assert!(d.get(b"k0").is_none());
        assert_eq!(d.get(b"k9995"), Some(&9995));
    }

    #[test]
    fn scan_returns_every_stable_key_despite_resizes() {
        let mut d: Dict<()> = Dict::new();
        for i in 0..1000 {
            d.insert(format!("stable{i}").as_bytes(), ());
        }
        let mut seen = HashSet::new();
        let mut cursor = 0;
        let mut round = 0;
        loop {
            cursor = d.scan(cursor, |k, _| {
                seen.insert(k.to_vec());
            });
            // Grow and shrink the table while the scan is in progress.
            round += 1;
            if round % 3 == 0 {
                for j in 0..200 {
                    d.insert(format!("tmp{round}-{j}").as_bytes(), ());
                }
            } else if round % 3 == 1 {
                for k in d.keys() {
                    if k.starts_with(b"tmp") {
                        d.remove(&k);
                    }
                }
                d.shrink_if_needed();
            }
            d.rehash(1);
            if cursor == 0 {
                break;
            }
        }
        for i in 0..1000 {
            assert!(seen.contains(format!("stable{i}").as_bytes()), "missing stable{i}");
        }
    }

    #[test]
    fn fair_random_entry_is_near_uniform() {
        let mut d: Dict<u32> = Dict::new();
        for i in 0..64u32 {
            d.insert(&i.to_le_bytes(), i);
        }
        let mut counts = [0u32; 64];
        for _ in 0..64_000 {
            counts[*d.fair_random_entry().unwrap().1 as usize] += 1;
        }
        // 1000 expected each. Like Redis's dictGetFairRandomKey the pick is not exactly
        // uniform (an entry after a run of empty buckets starts more samples), but no member
        // may be starved or dominate: within 5x of the expectation either way.
        assert!(counts.iter().all(|&c| (200..5000).contains(&c)), "{counts:?}");
        // Mid-rehash (a shrink in progress) too.
        for i in 8..64u32 {
            d.remove(&i.to_le_bytes());
        }
        d.shrink_if_needed();
        let mut seen = [false; 8];
        for _ in 0..2000 {
            seen[*d.fair_random_entry().unwrap().1 as usize] = true;
        }
        assert!(seen.iter().all(|&s| s));
    }

    #[test]
    fn random_entry_hits_everything() {
        let mut d: Dict<u8> = Dict::new();
        for i in 0..8u8 {
            d.insert(&[i], i);
        }
        let mut counts: HashMap<u8, u32> = HashMap::new();
        for _ in 0..2000 {
            let (_, v) = d.random_entry().unwrap();
            *counts.entry(*v).or_default() += 1;
        }
        assert_eq!(counts.len(), 8);
    }

    #[test]
    fn a_reserved_table_takes_its_entries_without_growing() {
        let mut d: Dict<u32> = Dict::new();
        d.reserve(3000);
        let buckets = d.ht[0].buckets.len();
        assert_eq!(buckets, 4096);
        for i in 0u32..4096 {
            d.insert(&i.to_le_bytes(), i);
            assert!(!d.is_rehashing(), "grew at {i}");
        }
        assert_eq!(d.ht[0].buckets.len(), buckets);
        // a table with entries is left as it is
        d.reserve(1 << 20);
        assert_eq!(d.ht[0].buckets.len(), buckets);
        assert_eq!(d.get(&4095u32.to_le_bytes()), Some(&4095));
    }

    #[test]
    fn rehash_is_incremental() {
        let mut d: Dict<u32> = Dict::new();
        for i in 0u32..(1 << 16) {
            d.insert(&i.to_le_bytes(), i);
        }
        // The next insert that crosses the load factor starts a rehash, which must not finish in one go.
        let mut saw_rehash = false;
        for i in (1u32 << 16)..(1 << 16) + 10 {
            d.insert(&i.to_le_bytes(), i);
            saw_rehash |= d.is_rehashing();
        }
        assert!(saw_rehash);
        assert_eq!(d.get(&5u32.to_le_bytes()), Some(&5));
    }

    mod model {
        use super::super::Dict;
        use proptest::prelude::*;
        use std::collections::{HashMap, HashSet};

        #[derive(Debug, Clone)]
        enum Op {
            Insert(u16, u32),
            Remove(u16),
            Get(u16),
            Rehash(u8),
            Shrink,
        }

        fn op() -> impl Strategy<Value = Op> {
            prop_oneof![
                4 => (0u16..512, any::<u32>()).prop_map(|(k, v)| Op::Insert(k, v)),
                3 => (0u16..512).prop_map(Op::Remove),
                2 => (0u16..512).prop_map(Op::Get),
                1 => any::<u8>().prop_map(Op::Rehash),
                1 => Just(Op::Shrink),
            ]
        }

        fn key(k: u16) -> Vec<u8> {
            format!("key:{k}").into_bytes()
        }

        proptest! {
            /// The dict behaves like a HashMap through any sequence of operations, resizes
            /// included, and a full SCAN returns every key exactly as stored.
            #[test]
            fn behaves_like_a_hashmap(ops in proptest::collection::vec(op(), 1..600)) {
                let mut d: Dict<u32> = Dict::new();
                let mut m: HashMap<Vec<u8>, u32> = HashMap::new();
                for op in ops {
                    match op {
                        Op::Insert(k, v) => prop_assert_eq!(d.insert(&key(k), v), m.insert(key(k), v)),
                        Op::Remove(k) => prop_assert_eq!(d.remove(&key(k)), m.remove(&key(k))),
                        Op::Get(k) => prop_assert_eq!(d.get(&key(k)), m.get(&key(k))),
                        Op::Rehash(n) => { d.rehash(n as usize); }
                        Op::Shrink => d.shrink_if_needed(),
                    }
                    prop_assert_eq!(d.len(), m.len());
                }
                let mut seen = HashSet::new();
                let mut cursor = 0;
                loop {
                    cursor = d.scan(cursor, |k, v| {
                        assert_eq!(m.get(k), Some(v));
                        seen.insert(k.to_vec());
                    });
                    if cursor == 0 {
                        break;
                    }
                }
                prop_assert_eq!(seen.len(), m.len());
            }
        }
    }
}
