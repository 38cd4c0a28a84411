//! Lex ranges over a sorted set (ZRANGEBYLEX, ZLEXCOUNT, ZREMRANGEBYLEX), found the way Redis
//! 7.2 finds them.
//!
//! A lex range is only meaningful when every member has the same score, but the commands answer
//! for any set, and what they answer then is what Redis's algorithm gives (users and replicas see
//! it). That algorithm assumes the lex order: it first checks that the range reaches the set (the
//! last element is `>= min`, the first `<= max`), then finds the starting element, checks the
//! other bound on that one element only, and walks while the far bound holds. The two encodings
//! find the start differently, and Ferrous follows each:
//!
//! - **listpack**: a scan from the head for the first element `>= min` (from the tail for the
//!   last element `<= max`);
//! - **skiplist**: a descent of the skiplist going forward while the next node is `< min` (while
//!   it is `<= max`). Over members out of lex order the node it stops at depends on the nodes'
//!   random levels, in Redis as here; ZREMRANGEBYLEX's descent skips the reach check.
//!
//! When all scores are equal (the first and last are), the order is the lex order and every
//! variant gives the exact range.

use std::cmp::Ordering;

use super::{Repr, ZSetValue};

/// One end of a lex range: `-`, `+`, `[x` or `(x`.
#[derive(Clone, Debug, PartialEq)]
pub enum LexBound {
    Min,
    Max,
    Incl(Vec<u8>),
    Excl(Vec<u8>),
}

impl LexBound {
    fn value(&self) -> LexVal<'_> {
        match self {
            LexBound::Min => LexVal::Min,
            LexBound::Max => LexVal::Max,
            LexBound::Incl(v) | LexBound::Excl(v) => LexVal::Str(v),
        }
    }
    fn exclusive(&self) -> bool {
        !matches!(self, LexBound::Incl(_))
    }
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum LexVal<'a> {
    Min,
    Str(&'a [u8]),
    Max,
}

/// A lex range (Redis's zlexrangespec).
#[derive(Clone, Debug, PartialEq)]
pub struct LexRange {
    pub min: LexBound,
    pub max: LexBound,
}

impl LexRange {
    pub fn gte_min(&self, m: &[u8]) -> bool {
        let c = LexVal::Str(m).cmp(&self.min.value());
        if self.min.exclusive() {
            c == Ordering::Greater
        } else {
            c != Ordering::Less
        }
    }
    pub fn lte_max(&self, m: &[u8]) -> bool {
        let c = LexVal::Str(m).cmp(&self.max.value());
        if self.max.exclusive() {
            c == Ordering::Less
        } else {
            c != Ordering::Greater
        }
    }
    pub fn is_empty(&self) -> bool {
        let c = self.min.value().cmp(&self.max.value());
        c == Ordering::Greater || (c == Ordering::Equal && (self.min.exclusive() || self.max.exclusive()))
    }
}

impl ZSetValue {
    /// Whether the range can reach the set at all (Redis's zzlIsInLexRange / zslIsInLexRange):
    /// not an empty range, the last element `>= min` and the first `<= max`.
    fn lex_reaches(&self, r: &LexRange) -> bool {
        if r.is_empty() || self.is_empty() {
            return false;
        }
        let last = self.get(self.len() - 1).map(|(m, _)| r.gte_min(m));
        let first = self.get(0).map(|(m, _)| r.lte_max(m));
        last == Some(true) && first == Some(true)
    }

    /// Whether the order is the lex order (all scores equal), where a lex bound splits the set
    /// into a prefix and a suffix.
    fn lex_ordered(&self) -> bool {
        match (self.get(0), self.get(self.len().saturating_sub(1))) {
            (Some((_, a)), Some((_, b))) => a == b,
            _ => true,
        }
    }

    /// The rank of the first element `>= min`, as the encoding's search finds it (see the module
    /// doc), without the reach check; `len` when there is none.
    fn lex_min_rank(&self, r: &LexRange) -> usize {
        match &self.repr {
            Repr::Listpack(v) => v.iter().position(|(m, _)| r.gte_min(m)).unwrap_or(v.len()),
            Repr::Skiplist(sk) => sk.zsl.count_while(|_, m| !r.gte_min(m)),
        }
    }

    /// The rank Redis's zzlFirstInLexRange / zslFirstInLexRange return: where a forward
    /// ZRANGEBYLEX starts.
    pub fn lex_first(&self, r: &LexRange) -> Option<usize> {
        if !self.lex_reaches(r) {
            return None;
        }
        let i = self.lex_min_rank(r);
        self.get(i).filter(|(m, _)| r.lte_max(m)).map(|_| i)
    }

    /// The rank Redis's zzlLastInLexRange / zslLastInLexRange return: where a reverse
    /// ZRANGEBYLEX starts.
    pub fn lex_last(&self, r: &LexRange) -> Option<usize> {
        if !self.lex_reaches(r) {
            return None;
        }
        let i = match &self.repr {
            Repr::Listpack(v) => v.iter().enumerate().filter(|(_, (m, _))| r.lte_max(m)).last()?.0,
            Repr::Skiplist(sk) => sk.zsl.count_while(|_, m| r.lte_max(m)).checked_sub(1)?,
        };
        self.get(i).filter(|(m, _)| r.gte_min(m)).map(|_| i)
    }

    /// The number of elements from rank `from` on while `<= max`.
    fn lex_run(&self, from: usize, r: &LexRange) -> usize {
        let mut n = 0;
        self.walk(from, false, |m, _| {
            let in_range = r.lte_max(m);
            n += in_range as usize;
            in_range
        });
        n
    }

    /// ZLEXCOUNT's answer. A listpack counts from the first element on while `<= max`; a
    /// skiplist subtracts the ranks of the first and last elements, and counts to the end when
    /// there is no last one (neither differs from the plain count over a lex-ordered set).
    pub fn lex_count(&self, r: &LexRange) -> i64 {
        if self.lex_ordered() {
            let (a, b) = self.lex_range_ranks(r);
            return (b - a) as i64;
        }
        let Some(first) = self.lex_first(r) else { return 0 };
        match &self.repr {
            Repr::Listpack(_) => self.lex_run(first, r) as i64,
            Repr::Skiplist { .. } => {
                let len = self.len() as i64;
                let mut count = len - first as i64;
                if let Some(last) = self.lex_last(r) {
                    count -= len - (last as i64 + 1);
                }
                count
            }
        }
    }

    /// The ranks `[start, end)` ZREMRANGEBYLEX deletes: from the first element on while
    /// `<= max` (a skiplist's descent does no reach check first).
    pub fn lex_delete_ranks(&self, r: &LexRange) -> (usize, usize) {
        if self.lex_ordered() {
            return self.lex_range_ranks(r);
        }
        let first = match &self.repr {
            Repr::Listpack(_) => self.lex_first(r),
            Repr::Skiplist { .. } => Some(self.lex_min_rank(r)),
        };
        match first {
            Some(f) => (f, f + self.lex_run(f, r)),
            None => (0, 0),
        }
    }

    /// The ranks `[start, end)` of the elements in the lex range, for a lex-ordered set.
    fn lex_range_ranks(&self, r: &LexRange) -> (usize, usize) {
        if r.is_empty() {
            return (0, 0);
        }
        let start = self.count_while(|m, _| !r.gte_min(m));
        let end = self.count_while(|m, _| r.lte_max(m));
        (start, end.max(start))
    }
}

#[cfg(test)]
mod tests {
    use super::super::Limits;
    use super::*;

    const LP: Limits = Limits { max_entries: 128, max_value: 64 };

    fn set(elems: &[(f64, &str)], skiplist: bool) -> ZSetValue {
        let mut z = if skiplist { ZSetValue::new_skiplist() } else { ZSetValue::new() };
        for (s, m) in elems {
            z.insert(m.as_bytes(), *s, LP);
        }
        z
    }

    fn range(min: &str, max: &str) -> LexRange {
        let b = |a: &str| match a.as_bytes()[0] {
            b'-' => LexBound::Min,
            b'+' => LexBound::Max,
            b'(' => LexBound::Excl(a.as_bytes()[1..].to_vec()),
            _ => LexBound::Incl(a.as_bytes()[1..].to_vec()),
        };
        LexRange { min: b(min), max: b(max) }
    }

    #[test]
    fn a_lex_ordered_set_gives_the_exact_range() {
        for sl in [false, true] {
            let z = set(&[(0.0, "a"), (0.0, "b"), (0.0, "c"), (0.0, "d")], sl);
            let r = range("(a", "[c");
            assert_eq!((z.lex_first(&r), z.lex_last(&r)), (Some(1), Some(2)));
            assert_eq!(z.lex_count(&r), 2);
            assert_eq!(z.lex_delete_ranks(&r), (1, 3));
            assert_eq!(z.lex_count(&range("(d", "+")), 0);
        }
    }

    #[test]
    fn the_reach_check_looks_at_the_first_and_last_elements_only() {
        // Order h(-2.5) c(5): the first element is past "(d", so nothing is in range.
        for sl in [false, true] {
            let z = set(&[(-2.5, "h"), (5.0, "c")], sl);
            let r = range("[", "(d");
            assert_eq!(z.lex_first(&r), None);
            assert_eq!(z.lex_count(&r), 0);
        }
        // Order -2 d 10 c (scores -100 -2 1.5 1.5), "[c [c": the first element >= c from the
        // head is d, past max.
        let z = set(&[(-100.0, "-2"), (1.5, "10"), (1.5, "c"), (-2.0, "d")], false);
        assert_eq!(z.lex_count(&range("[c", "[c")), 0);
        // Order c a, "[b [c": the last element a is below b, so a listpack deletes nothing.
        // ZREMRANGEBYLEX on a skiplist has no reach check: its descent stops before c (then
        // deletes c and a, both <= c) unless a higher level of a jumps over c.
        let z = set(&[(1.0, "c"), (2.0, "a")], false);
        assert_eq!(z.lex_delete_ranks(&range("[b", "[c")), (0, 0));
        let z = set(&[(1.0, "c"), (2.0, "a")], true);
        assert!(matches!(z.lex_delete_ranks(&range("[b", "[c")), (0, 2) | (2, 2)));
    }

    #[test]
    fn listpack_scans_from_either_end() {
        // Order a(1) z(2) b(3): the last element <= "[c" scanning from the tail is b.
        let z = set(&[(1.0, "a"), (2.0, "z"), (3.0, "b")], false);
        let r = range("-", "[c");
        assert_eq!(z.lex_first(&r), Some(0));
        assert_eq!(z.lex_last(&r), Some(2));
        assert_eq!(z.lex_count(&r), 1);
        assert_eq!(z.lex_delete_ranks(&r), (0, 1));
    }

    #[test]
    fn skiplist_count_subtracts_ranks() {
        // Order b a z c, "[b [c". A listpack starts at b and counts b, a, stopping at z: 2.
        // A skiplist's first element is b, or z (past max: count 0) when a higher level of a
        // jumps over b; from b its last element is a (below min: no last, so it counts to the
        // end) or c (when a higher level jumps over z): 4 either way.
        let elems = [(1.0, "b"), (2.0, "a"), (3.0, "z"), (4.0, "c")];
        let r = range("[b", "[c");
        assert_eq!(set(&elems, false).lex_count(&r), 2);
        assert!(matches!(set(&elems, true).lex_count(&r), 0 | 4));
        // Monotone bounds over an order that is not the lex one: one answer for both.
        let elems = [(1.0, "a"), (2.0, "c"), (3.0, "b"), (4.0, "z")];
        for sl in [false, true] {
            assert_eq!(set(&elems, sl).lex_count(&range("[b", "(d")), 2);
            assert_eq!(set(&elems, sl).lex_first(&range("[b", "(d")), Some(1));
            assert_eq!(set(&elems, sl).lex_last(&range("[b", "(d")), Some(2));
        }
    }
}
