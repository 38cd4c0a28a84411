//! An indexable skiplist (Redis's zskiplist, with spans) over `(score, member)` pairs, stored in
//! an arena: nodes live in a `Vec` and link to each other by index, so there is no unsafe code
//! and freed slots are reused. Every level's link records its span (how many elements it jumps
//! over), which makes rank lookups, rank-to-element and counting below a bound O(log n).
//!
//! Order: by score, then by member bytes (Redis's order). The skiplist does not check for
//! duplicate members: the owner keeps a member → score map beside it.

use smallvec::{smallvec, SmallVec};
use std::cmp::Ordering;

use rand::Rng;

use crate::types::SmallBytes;

const NIL: u32 = u32::MAX;
const HEAD: u32 = 0;
pub const MAX_LEVEL: usize = 32;

#[derive(Clone, Copy, Debug)]
struct Link {
    next: u32,
    span: u32,
}

#[derive(Clone, Debug)]
struct Node {
    member: SmallBytes,
    score: f64,
    prev: u32,
    /// Levels of the node; most nodes have one or two (p = 1/4), kept inline so a step of a
    /// search costs one cache miss, not two.
    links: SmallVec<[Link; 2]>,
}

#[derive(Clone, Debug)]
pub struct SkipList {
    nodes: Vec<Node>,
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

/// Hint the CPU to bring `node` (both cache lines it may straddle) into the cache.
#[inline(always)]
fn prefetch(node: &Node) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        let p = node as *const Node as *const i8;
        // SAFETY: prefetching never faults and reads nothing; both addresses lie in `node`.
        unsafe {
            _mm_prefetch::<_MM_HINT_T0>(p);
            _mm_prefetch::<_MM_HINT_T0>(p.add(std::mem::size_of::<Node>() - 1));
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = node;
}

impl SkipList {
    pub fn new() -> Self {
        let head = Node {
            member: SmallBytes::new(b""),
            score: 0.0,
            prev: NIL,
            links: smallvec![Link { next: NIL, span: 0 }; MAX_LEVEL],
        };
        SkipList { nodes: vec![head], free: Vec::new(), level: 1, len: 0, tail: NIL }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn next(&self, x: u32, lvl: usize) -> u32 {
        self.nodes[x as usize].links[lvl].next
    }

    fn span(&self, x: u32, lvl: usize) -> u32 {
        self.nodes[x as usize].links[lvl].span
    }

    fn link_mut(&mut self, x: u32, lvl: usize) -> &mut Link {
        &mut self.nodes[x as usize].links[lvl]
    }

    /// Whether node `x` comes before `(score, member)`: the member bytes are compared only on
    /// equal scores (the descents of insert and remove run this at every step).
    #[inline]
    fn before(&self, x: u32, score: f64, member: &[u8]) -> bool {
        let n = &self.nodes[x as usize];
        n.score < score || (n.score == score && *n.member < *member)
    }

    /// Insert an element (which must not be present).
    pub fn insert(&mut self, score: f64, member: &[u8]) {
        let mut update = [HEAD; MAX_LEVEL];
        let mut rank = [0u32; MAX_LEVEL];
        let mut x = HEAD;
        for i in (0..self.level).rev() {
            rank[i] = if i == self.level - 1 { 0 } else { rank[i + 1] };
            loop {
                let f = self.next(x, i);
                if f != NIL && self.before(f, score, member) {
                    rank[i] += self.span(x, i);
                    x = f;
                } else {
                    break;
                }
            }
            update[i] = x;
        }
        let lvl = random_level();
        if lvl > self.level {
            for i in self.level..lvl {
                rank[i] = 0;
                update[i] = HEAD;
                self.link_mut(HEAD, i).span = self.len as u32;
            }
            self.level = lvl;
        }
        let node = Node {
            member: SmallBytes::new(member),
            score,
            prev: if update[0] == HEAD { NIL } else { update[0] },
            links: smallvec![Link { next: NIL, span: 0 }; lvl],
        };
        let n = match self.free.pop() {
            Some(i) => {
                self.nodes[i as usize] = node;
                i
            }
            None => {
                self.nodes.push(node);
                (self.nodes.len() - 1) as u32
            }
        };
        for i in 0..lvl {
            let u = update[i];
            let unext = self.next(u, i);
            let uspan = self.span(u, i);
            let d = rank[0] - rank[i];
            *self.link_mut(n, i) = Link { next: unext, span: uspan - d };
            *self.link_mut(u, i) = Link { next: n, span: d + 1 };
        }
        for (i, &u) in update.iter().enumerate().take(self.level).skip(lvl) {
            self.link_mut(u, i).span += 1;
        }
        let f = self.next(n, 0);
        if f != NIL {
            self.nodes[f as usize].prev = n;
        } else {
            self.tail = n;
        }
        self.len += 1;
    }

    /// Remove an element. Returns whether it was there.
    pub fn remove(&mut self, score: f64, member: &[u8]) -> bool {
        let mut update = [HEAD; MAX_LEVEL];
        let mut x = HEAD;
        for i in (0..self.level).rev() {
            loop {
                let f = self.next(x, i);
                if f != NIL && self.before(f, score, member) {
                    x = f;
                } else {
                    break;
                }
            }
            update[i] = x;
        }
        let x = self.next(x, 0);
        if x == NIL {
            return false;
        }
        let n = &self.nodes[x as usize];
        if n.score != score || &*n.member != member {
            return false;
        }
        self.unlink(x, &update);
        true
    }

    fn unlink(&mut self, x: u32, update: &[u32; MAX_LEVEL]) {
        for (i, &u) in update.iter().enumerate().take(self.level) {
            if self.next(u, i) == x {
                let xl = self.nodes[x as usize].links[i];
                let l = self.link_mut(u, i);
                l.span = l.span + xl.span - 1;
                l.next = xl.next;
            } else {
                self.link_mut(u, i).span -= 1;
            }
        }
        let f = self.next(x, 0);
        let p = self.nodes[x as usize].prev;
        if f != NIL {
            self.nodes[f as usize].prev = p;
        } else {
            self.tail = p;
        }
        while self.level > 1 && self.next(HEAD, self.level - 1) == NIL {
            self.level -= 1;
        }
        self.len -= 1;
        let n = &mut self.nodes[x as usize];
        n.member = SmallBytes::new(b"");
        n.links = SmallVec::new();
        self.free.push(x);
    }

    /// The number of leading elements for which `pred(score, member)` holds; `pred` must be
    /// true for a prefix of the order and false after it.
    pub fn count_while(&self, mut pred: impl FnMut(f64, &[u8]) -> bool) -> usize {
        let mut x = HEAD;
        let mut r = 0usize;
        for i in (0..self.level).rev() {
            loop {
                let f = self.next(x, i);
                if f != NIL && {
                    let n = &self.nodes[f as usize];
                    pred(n.score, &n.member)
                } {
                    r += self.span(x, i) as usize;
                    x = f;
                } else {
                    break;
                }
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
        let mut x = HEAD;
        for i in (0..self.level).rev() {
            loop {
                let nx = self.next(x, i);
                if nx != NIL && {
                    let n = &self.nodes[nx as usize];
                    skip(n.score, &n.member)
                } {
                    x = nx;
                } else {
                    break;
                }
            }
        }
        let mut x = self.next(x, 0);
        while x != NIL {
            let n = &self.nodes[x as usize];
            let nx = n.links[0].next;
            // The next node is a cache miss: start loading it while `f` works on this one.
            if nx != NIL {
                prefetch(&self.nodes[nx as usize]);
            }
            if !f(n.score, &n.member) {
                break;
            }
            x = nx;
        }
    }

    /// The 0-based rank of an element, if present.
    pub fn rank(&self, score: f64, member: &[u8]) -> Option<usize> {
        let r = self.count_while(|s, m| cmp_elem(s, m, score, member) == Ordering::Less);
        let (s, m) = self.get(r)?;
        (s == score && m == member).then_some(r)
    }

    fn node_at(&self, rank: usize) -> u32 {
        if rank >= self.len {
            return NIL;
        }
        let target = rank + 1;
        let mut x = HEAD;
        let mut traversed = 0usize;
        for i in (0..self.level).rev() {
            loop {
                let f = self.next(x, i);
                if f != NIL && traversed + self.span(x, i) as usize <= target {
                    traversed += self.span(x, i) as usize;
                    x = f;
                } else {
                    break;
                }
            }
            if traversed == target {
                return x;
            }
        }
        NIL
    }

    /// The element at a 0-based rank.
    pub fn get(&self, rank: usize) -> Option<(f64, &[u8])> {
        let x = self.node_at(rank);
        (x != NIL).then(|| {
            let n = &self.nodes[x as usize];
            (n.score, &*n.member)
        })
    }

    /// Visit the elements from rank `start`, forward (or backward when `rev`), while `f`
    /// returns true.
    pub fn walk<'a>(&'a self, start: usize, rev: bool, mut f: impl FnMut(f64, &'a [u8]) -> bool) {
        let mut x = self.node_at(start);
        while x != NIL {
            let n = &self.nodes[x as usize];
            if !f(n.score, &n.member) {
                break;
            }
            x = if rev { n.prev } else { n.links[0].next };
        }
    }

    /// The first and last elements.
    pub fn first(&self) -> Option<(f64, &[u8])> {
        self.get(0)
    }

    pub fn last(&self) -> Option<(f64, &[u8])> {
        (self.tail != NIL).then(|| {
            let n = &self.nodes[self.tail as usize];
            (n.score, &*n.member)
        })
    }

    /// Check the structure's invariants (tests).
    #[cfg(test)]
    pub fn check(&self) {
        // Level 0 is the full order, with span 1 links and consistent back links.
        let mut x = self.next(HEAD, 0);
        let mut prev = NIL;
        let mut count = 0;
        while x != NIL {
            let n = &self.nodes[x as usize];
            assert_eq!(n.prev, prev);
            if prev != NIL {
                let p = &self.nodes[prev as usize];
                assert_eq!(cmp_elem(p.score, &p.member, n.score, &n.member), Ordering::Less);
            }
            prev = x;
            x = n.links[0].next;
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
                let n = &self.nodes[f as usize];
                assert_eq!(self.rank(n.score, &n.member), Some(r - 1));
                x = f;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
