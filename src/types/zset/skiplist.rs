//! An indexable skiplist (Redis's zskiplist, with spans) over `(score, member)` pairs, stored in
//! arenas: nodes are indexes into parallel `Vec`s, so there is no unsafe code and freed slots are
//! reused. Every level's link records its span (how many elements it jumps over), which makes
//! rank lookups, rank-to-element and counting below a bound O(log n).
//!
//! Layout (for big sets, where every step of a search is a cache miss): what a search step reads
//! of a node is one 16-byte record ([`Hot`]: the score, the level-0 link and where the node's
//! higher links are), four to a cache line; the links of levels 1 and up live in their own arena
//! (`upper`, a quarter of the nodes have any), the members in another (read on equal scores and
//! by the walks), the back links and heights in others. A level-0 link always spans one element.
//! An upper link also says where its target's links are, so that a search step loads the next
//! node's score and its link of the same level at once, not one after the other.
//!
//! Order: by score, then by member bytes (Redis's order). The skiplist does not check for
//! duplicate members: the owner keeps a member → node map beside it.

use std::cmp::Ordering;

use rand::Rng;

use crate::types::SmallBytes;
use crate::util::prefetch::prefetch;

const NIL: u32 = u32::MAX;
const HEAD: u32 = 0;
pub const MAX_LEVEL: usize = 32;

#[derive(Clone, Copy, Debug)]
struct Link {
    next: u32,
    span: u32,
    /// `next`'s `up`: where its links are (see [`Descent::ahead`]).
    next_up: u32,
}

const NO_LINK: Link = Link { next: NIL, span: 0, next_up: 0 };

/// The part of a node a search step reads.
#[derive(Clone, Copy, Debug)]
struct Hot {
    score: f64,
    /// The level-0 link (its span is always 1).
    next: u32,
    /// Where the node's links of levels 1.. start in `upper` (unused for one-level nodes).
    up: u32,
}

#[derive(Clone, Debug)]
pub struct SkipList {
    hot: Vec<Hot>,
    members: Vec<SmallBytes>,
    prev: Vec<u32>,
    height: Vec<u8>,
    /// Links of levels 1 and up: `height - 1` of them per node, from its `up`.
    upper: Vec<Link>,
    /// Freed runs of `upper`, by length - 1.
    upper_free: Vec<Vec<u32>>,
    free: Vec<u32>,
    level: usize,
    len: usize,
    tail: u32,
}

impl Default for SkipList {
    fn default() -> Self {
        Self::new()
    }
}

/// Redis's order of sorted-set elements.
pub fn cmp_elem(s1: f64, m1: &[u8], s2: f64, m2: &[u8]) -> Ordering {
    s1.partial_cmp(&s2).unwrap_or(Ordering::Equal).then_with(|| m1.cmp(m2))
}

fn random_level() -> usize {
    let mut rng = rand::thread_rng();
    let mut level = 1;
    // Redis: ZSKIPLIST_P = 0.25.
    while level < MAX_LEVEL && rng.gen::<u32>() & 0xFFFF < 0xFFFF / 4 {
        level += 1;
    }
    level
}

/// A search going down the levels from the head: the node it has reached, and the link it
/// looks along.
struct Descent<'s> {
    list: &'s SkipList,
    x: u32,
    /// `x`'s `up`.
    x_up: u32,
    /// The link [`Descent::ahead`] last read (levels >= 1).
    ahead: Link,
}

impl<'s> Descent<'s> {
    fn new(list: &'s SkipList) -> Self {
        Descent { list, x: HEAD, x_up: list.hot[HEAD as usize].up, ahead: NO_LINK }
    }

    /// The node after `x` on level `lvl`, and the span to it. On a level >= 1 this starts
    /// loading that node's link of the same level (the link says where it is), which the next
    /// step reads, while the caller reads the node's score: the two cache misses of a step
    /// overlap instead of following one another.
    #[inline]
    fn ahead(&mut self, lvl: usize) -> Option<(u32, u32)> {
        let l = self.list;
        if lvl == 0 {
            let f = l.hot[self.x as usize].next;
            return (f != NIL).then_some((f, 1));
        }
        self.ahead = l.upper[self.x_up as usize + lvl - 1];
        if self.ahead.next == NIL {
            return None;
        }
        if let Some(next) = l.upper.get(self.ahead.next_up as usize + lvl - 1) {
            prefetch(next as *const Link);
        }
        Some((self.ahead.next, self.ahead.span))
    }

    /// Move to the node [`Descent::ahead`] gave for level `lvl`.
    #[inline]
    fn step(&mut self, lvl: usize) {
        if lvl == 0 {
            self.x = self.list.hot[self.x as usize].next;
            self.x_up = self.list.hot[self.x as usize].up;
        } else {
            self.x = self.ahead.next;
            self.x_up = self.ahead.next_up;
        }
    }
}

/// The nodes before a position on every level, and their ranks (a search's result).
struct Path {
    update: [u32; MAX_LEVEL],
    rank: [u32; MAX_LEVEL],
}

impl SkipList {
    pub fn new() -> Self {
        SkipList {
            hot: vec![Hot { score: 0.0, next: NIL, up: 0 }],
            members: vec![SmallBytes::new(b"")],
            prev: vec![NIL],
            height: vec![MAX_LEVEL as u8],
            upper: vec![NO_LINK; MAX_LEVEL - 1],
            upper_free: vec![Vec::new(); MAX_LEVEL - 1],
            free: Vec::new(),
            level: 1,
            len: 0,
            tail: NIL,
        }
    }

    /// Room for `n` more nodes (one allocation per column instead of doubling as they come:
    /// a loaded set's size is known).
    pub fn reserve(&mut self, n: usize) {
        self.hot.reserve_exact(n);
        self.members.reserve_exact(n);
        self.prev.reserve_exact(n);
        self.height.reserve_exact(n);
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    #[inline]
    fn next(&self, x: u32, lvl: usize) -> u32 {
        let h = &self.hot[x as usize];
        if lvl == 0 {
            h.next
        } else {
            self.upper[h.up as usize + lvl - 1].next
        }
    }

    /// The span of `x`'s link of level `lvl` (the checks; searches read it with the link).
    #[cfg(test)]
    fn span(&self, x: u32, lvl: usize) -> u32 {
        if lvl == 0 {
            1
        } else {
            self.upper[self.hot[x as usize].up as usize + lvl - 1].span
        }
    }

    /// The link of level `lvl` >= 1 of `x`.
    #[inline]
    fn link_mut(&mut self, x: u32, lvl: usize) -> &mut Link {
        let up = self.hot[x as usize].up as usize;
        &mut self.upper[up + lvl - 1]
    }

    #[inline]
    fn link(&self, x: u32, lvl: usize) -> Link {
        self.upper[self.hot[x as usize].up as usize + lvl - 1]
    }

    /// Whether node `x` comes before `(score, member)`: the member bytes are compared only on
    /// equal scores (the descents of insert and remove run this at every step).
    #[inline]
    fn before(&self, x: u32, score: f64, member: &[u8]) -> bool {
        let s = self.hot[x as usize].score;
        s < score || (s == score && *self.members[x as usize] < *member)
    }

    /// The last node before `(score, member)` on every level, with its rank.
    fn path_to(&self, score: f64, member: &[u8]) -> Path {
        let mut p = Path { update: [HEAD; MAX_LEVEL], rank: [0; MAX_LEVEL] };
        let mut d = Descent::new(self);
        for i in (0..self.level).rev() {
            p.rank[i] = if i == self.level - 1 { 0 } else { p.rank[i + 1] };
            while let Some((f, span)) = d.ahead(i) {
                if !self.before(f, score, member) {
                    break;
                }
                p.rank[i] += span;
                d.step(i);
            }
            p.update[i] = d.x;
        }
        p
    }

    /// A slot for a node of `lvl` levels (its links unset).
    fn alloc(&mut self, score: f64, member: SmallBytes, lvl: usize) -> u32 {
        let up = if lvl > 1 {
            match self.upper_free[lvl - 2].pop() {
                Some(at) => at,
                None => {
                    let at = self.upper.len() as u32;
                    self.upper.resize(self.upper.len() + lvl - 1, NO_LINK);
                    at
                }
            }
        } else {
            0
        };
        let hot = Hot { score, next: NIL, up };
        match self.free.pop() {
            Some(i) => {
                let n = i as usize;
                self.hot[n] = hot;
                self.members[n] = member;
                self.height[n] = lvl as u8;
                i
            }
            None => {
                self.hot.push(hot);
                self.members.push(member);
                self.prev.push(NIL);
                self.height.push(lvl as u8);
                (self.hot.len() - 1) as u32
            }
        }
    }

    /// Link node `n` (its score and member set) in at the position `p` was searched for.
    fn link_in(&mut self, n: u32, mut p: Path) {
        let lvl = self.height[n as usize] as usize;
        if lvl > self.level {
            for i in self.level..lvl {
                p.rank[i] = 0;
                p.update[i] = HEAD;
                self.link_mut(HEAD, i).span = self.len as u32;
            }
            self.level = lvl;
        }
        let u0 = p.update[0];
        self.hot[n as usize].next = self.hot[u0 as usize].next;
        self.hot[u0 as usize].next = n;
        for i in 1..lvl {
            let u = p.update[i];
            let ul = self.link(u, i);
            let d = p.rank[0] - p.rank[i];
            *self.link_mut(n, i) = Link { next: ul.next, span: ul.span - d, next_up: ul.next_up };
            *self.link_mut(u, i) = Link { next: n, span: d + 1, next_up: self.hot[n as usize].up };
        }
        for i in lvl..self.level {
            self.link_mut(p.update[i], i).span += 1;
        }
        self.prev[n as usize] = if u0 == HEAD { NIL } else { u0 };
        let f = self.hot[n as usize].next;
        if f != NIL {
            self.prev[f as usize] = n;
        } else {
            self.tail = n;
        }
        self.len += 1;
    }

    /// Insert an element (which must not be present). Returns its node, which stays its own
    /// until it is removed (a score update keeps it).
    pub fn insert(&mut self, score: f64, member: &[u8]) -> u32 {
        let p = self.path_to(score, member);
        let n = self.alloc(score, SmallBytes::new(member), random_level());
        self.link_in(n, p);
        n
    }

    /// The member of node `x` (one [`SkipList::insert`] returned).
    #[inline]
    pub fn member(&self, x: u32) -> &[u8] {
        &self.members[x as usize]
    }

    /// The score of node `x`.
    #[inline]
    pub fn score(&self, x: u32) -> f64 {
        self.hot[x as usize].score
    }

    /// The node of an element, unlinked (still allocated), if present.
    fn unlink_found(&mut self, score: f64, member: &[u8]) -> Option<u32> {
        let p = self.path_to(score, member);
        let x = self.next(p.update[0], 0);
        if x == NIL || self.hot[x as usize].score != score || *self.members[x as usize] != *member {
            return None;
        }
        self.unlink(x, &p.update);
        Some(x)
    }

    /// Remove an element. Returns whether it was there.
    pub fn remove(&mut self, score: f64, member: &[u8]) -> bool {
        match self.unlink_found(score, member) {
            Some(x) => {
                self.release(x);
                true
            }
            None => false,
        }
    }

    /// Move an element from score `old` to `new` (Redis's zslUpdateScore): its node is unlinked
    /// and linked in again at its new place, keeping its member and its levels. Returns whether
    /// it was there.
    pub fn update_score(&mut self, old: f64, new: f64, member: &[u8]) -> bool {
        let Some(x) = self.unlink_found(old, member) else {
            return false;
        };
        self.relink(x, new);
        true
    }

    /// [`SkipList::update_score`] of the element at node `x`.
    pub fn rescore(&mut self, x: u32, new: f64) {
        let p = self.path_to(self.hot[x as usize].score, &self.members[x as usize]);
        debug_assert_eq!(self.next(p.update[0], 0), x, "node {x} is linked");
        self.unlink(x, &p.update);
        self.relink(x, new);
    }

    /// Link the unlinked node `x` in again with score `new`.
    fn relink(&mut self, x: u32, new: f64) {
        self.hot[x as usize].score = new;
        let p = self.path_to(new, &self.members[x as usize]);
        self.link_in(x, p);
    }

    fn unlink(&mut self, x: u32, update: &[u32; MAX_LEVEL]) {
        let xnext = self.hot[x as usize].next;
        // Level 0: the node right before `x` links to it.
        self.hot[update[0] as usize].next = xnext;
        for (i, &u) in update.iter().enumerate().take(self.level).skip(1) {
            if self.next(u, i) == x {
                let xl = self.link(x, i);
                let l = self.link_mut(u, i);
                l.span = l.span + xl.span - 1;
                l.next = xl.next;
                l.next_up = xl.next_up;
            } else {
                self.link_mut(u, i).span -= 1;
            }
        }
        let p = self.prev[x as usize];
        if xnext != NIL {
            self.prev[xnext as usize] = p;
        } else {
            self.tail = p;
        }
        while self.level > 1 && self.next(HEAD, self.level - 1) == NIL {
            self.level -= 1;
        }
        self.len -= 1;
    }

    /// Give an unlinked node's slots back.
    fn release(&mut self, x: u32) {
        let n = x as usize;
        self.members[n] = SmallBytes::new(b"");
        let lvl = self.height[n] as usize;
        if lvl > 1 {
            self.upper_free[lvl - 2].push(self.hot[n].up);
        }
        self.free.push(x);
    }

    /// The number of leading elements for which `pred(score, member)` holds; `pred` must be
    /// true for a prefix of the order and false after it.
    pub fn count_while(&self, mut pred: impl FnMut(f64, &[u8]) -> bool) -> usize {
        let mut d = Descent::new(self);
        let mut r = 0usize;
        for i in (0..self.level).rev() {
            while let Some((f, span)) = d.ahead(i) {
                if !pred(self.hot[f as usize].score, &self.members[f as usize]) {
                    break;
                }
                r += span as usize;
                d.step(i);
            }
        }
        r
    }

    /// Visit, in order, the elements after the leading ones for which `skip(score, member)`
    /// holds (`skip` must be true for a prefix of the order), while `f` returns true: one
    /// descent, then a walk along level 0 (range scans, as Redis's zslFirstInRange).
    pub fn walk_after<'a>(
        &'a self,
        mut skip: impl FnMut(f64, &[u8]) -> bool,
        mut f: impl FnMut(f64, &'a [u8]) -> bool,
    ) {
        let mut d = Descent::new(self);
        for i in (0..self.level).rev() {
            while let Some((f, _)) = d.ahead(i) {
                if !skip(self.hot[f as usize].score, &self.members[f as usize]) {
                    break;
                }
                d.step(i);
            }
        }
        let mut x = self.next(d.x, 0);
        while x != NIL {
            let n = self.hot[x as usize];
            // The next node is a cache miss: start loading it while `f` works on this one.
            if n.next != NIL {
                prefetch(&self.hot[n.next as usize] as *const _);
                prefetch(&self.members[n.next as usize] as *const _);
            }
            if !f(n.score, &self.members[x as usize]) {
                break;
            }
            x = n.next;
        }
    }

    /// The 0-based rank of an element, if present (one descent).
    pub fn rank(&self, score: f64, member: &[u8]) -> Option<usize> {
        let p = self.path_to(score, member);
        let x = self.next(p.update[0], 0);
        (x != NIL && self.hot[x as usize].score == score && *self.members[x as usize] == *member)
            .then_some(p.rank[0] as usize)
    }

    fn node_at(&self, rank: usize) -> u32 {
        if rank >= self.len {
            return NIL;
        }
        let target = rank + 1;
        let mut d = Descent::new(self);
        let mut traversed = 0usize;
        for i in (0..self.level).rev() {
            while let Some((_, span)) = d.ahead(i) {
                if traversed + span as usize > target {
                    break;
                }
                traversed += span as usize;
                d.step(i);
            }
            if traversed == target {
                return d.x;
            }
        }
        NIL
    }

    /// The element at a 0-based rank.
    pub fn get(&self, rank: usize) -> Option<(f64, &[u8])> {
        let x = self.node_at(rank);
        (x != NIL).then(|| (self.hot[x as usize].score, &*self.members[x as usize]))
    }

    /// Visit the elements from rank `start`, forward (or backward when `rev`), while `f`
    /// returns true.
    pub fn walk<'a>(&'a self, start: usize, rev: bool, mut f: impl FnMut(f64, &'a [u8]) -> bool) {
        let mut x = self.node_at(start);
        while x != NIL {
            let n = self.hot[x as usize];
            if !f(n.score, &self.members[x as usize]) {
                break;
            }
            x = if rev { self.prev[x as usize] } else { n.next };
        }
    }

    /// The first and last elements.
    pub fn first(&self) -> Option<(f64, &[u8])> {
        self.get(0)
    }

    pub fn last(&self) -> Option<(f64, &[u8])> {
        (self.tail != NIL).then(|| (self.hot[self.tail as usize].score, &*self.members[self.tail as usize]))
    }

    /// Check the structure's invariants (tests).
    #[cfg(test)]
    pub fn check(&self) {
        // Level 0 is the full order, with span 1 links and consistent back links.
        let mut x = self.next(HEAD, 0);
        let mut prev = NIL;
        let mut count = 0;
        while x != NIL {
            let (n, m) = (self.hot[x as usize], &self.members[x as usize]);
            assert_eq!(self.prev[x as usize], prev);
            if prev != NIL {
                let (p, pm) = (self.hot[prev as usize], &self.members[prev as usize]);
                assert_eq!(cmp_elem(p.score, pm, n.score, m), Ordering::Less);
            }
            prev = x;
            x = n.next;
            count += 1;
        }
        assert_eq!(self.tail, prev);
        assert_eq!(count, self.len);
        // Spans add up to ranks on every level.
        for i in 0..self.level {
            let mut x = HEAD;
            let mut r = 0usize;
            loop {
                let f = self.next(x, i);
                if f == NIL {
                    break;
                }
                r += self.span(x, i) as usize;
                assert_eq!(self.rank(self.hot[f as usize].score, &self.members[f as usize]), Some(r - 1));
                if i > 0 {
                    assert_eq!(self.link(x, i).next_up, self.hot[f as usize].up, "a link knows where its target's are");
                }
                x = f;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn insert_rank_remove() {
        let mut s = SkipList::new();
        for i in 0..1000u32 {
            let m = format!("m{:04}", (i * 7919) % 1000);
            s.insert(((i * 7919) % 1000 / 10) as f64, m.as_bytes());
        }
        s.check();
        assert_eq!(s.len(), 1000);
        for r in 0..1000 {
            let (sc, m) = s.get(r).unwrap();
            assert_eq!(sc, (r / 10) as f64);
            assert_eq!(m, format!("m{:04}", r).as_bytes());
        }
        for i in (0..1000).step_by(3) {
            assert!(s.remove((i / 10) as f64, format!("m{:04}", i).as_bytes()));
        }
        assert!(!s.remove(0.0, b"m0000"));
        s.check();
        assert_eq!(s.count_while(|sc, _| sc < 50.0), 500 - 167);
        assert_eq!(s.last().unwrap().1, b"m0998");
    }

    #[derive(Debug, Clone)]
    enum Op {
        Insert(u8, i8),
        Remove(u8),
        Update(u8, i8),
    }

    fn key(m: u8) -> Vec<u8> {
        // Some members long enough to live on the heap.
        if m.is_multiple_of(7) {
            format!("a-member-longer-than-the-inline-capacity-{m}").into_bytes()
        } else {
            format!("m{m}").into_bytes()
        }
    }

    proptest! {
        /// Inserts, removes and score updates against a plain model (a map member → score,
        /// sorted on demand): the order, ranks, rank lookups, prefix counts, both walks and the
        /// structure's invariants (spans, back links, the tail) after every batch.
        #[test]
        fn behaves_like_a_sorted_model(ops in prop::collection::vec(
            prop_oneof![
                (0u8..60, -4i8..4).prop_map(|(m, s)| Op::Insert(m, s)),
                (0u8..60).prop_map(Op::Remove),
                (0u8..60, -4i8..4).prop_map(|(m, s)| Op::Update(m, s)),
            ], 1..400)) {
            let mut s = SkipList::new();
            let mut model: std::collections::HashMap<Vec<u8>, f64> = Default::default();
            for op in ops {
                match op {
                    Op::Insert(m, sc) => {
                        let k = key(m);
                        if let std::collections::hash_map::Entry::Vacant(e) = model.entry(k) {
                            s.insert(sc as f64, e.key());
                            e.insert(sc as f64);
                        }
                    }
                    Op::Remove(m) => {
                        let k = key(m);
                        let was = model.remove(&k);
                        prop_assert_eq!(s.remove(was.unwrap_or(0.5), &k), was.is_some());
                    }
                    Op::Update(m, sc) => {
                        let k = key(m);
                        match model.get_mut(&k) {
                            Some(old) => {
                                prop_assert!(s.update_score(*old, sc as f64, &k));
                                *old = sc as f64;
                            }
                            None => prop_assert!(!s.update_score(sc as f64, 1.0, &k)),
                        }
                    }
                }
                prop_assert_eq!(s.len(), model.len());
            }
            s.check();
            let mut want: Vec<(f64, Vec<u8>)> = model.iter().map(|(k, v)| (*v, k.clone())).collect();
            want.sort_by(|a, b| cmp_elem(a.0, &a.1, b.0, &b.1));
            let mut got = Vec::new();
            s.walk(0, false, |sc, m| {
                got.push((sc, m.to_vec()));
                true
            });
            prop_assert_eq!(&got, &want);
            if !want.is_empty() {
                let mut back = Vec::new();
                s.walk(want.len() - 1, true, |sc, m| {
                    back.push((sc, m.to_vec()));
                    true
                });
                back.reverse();
                prop_assert_eq!(&back, &want);
                prop_assert_eq!(s.first(), Some((want[0].0, &want[0].1[..])));
                let l = want.last().unwrap();
                prop_assert_eq!(s.last(), Some((l.0, &l.1[..])));
            }
            for (i, (sc, m)) in want.iter().enumerate() {
                prop_assert_eq!(s.rank(*sc, m), Some(i));
                prop_assert_eq!(s.get(i), Some((*sc, &m[..])));
            }
            prop_assert_eq!(s.get(want.len()), None);
            prop_assert_eq!(s.rank(0.25, b"absent"), None);
            for bound in -5..5 {
                let b = bound as f64;
                let n = want.iter().filter(|(sc, _)| *sc < b).count();
                prop_assert_eq!(s.count_while(|sc, _| sc < b), n);
                let mut after = Vec::new();
                s.walk_after(|sc, _| sc < b, |sc, m| {
                    after.push((sc, m.to_vec()));
                    after.len() < 5
                });
                let expect: Vec<_> = want.iter().skip(n).take(5).cloned().collect();
                prop_assert_eq!(after, expect);
            }
        }
    }
}
