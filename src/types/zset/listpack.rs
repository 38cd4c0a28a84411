//! A small sorted set (OBJECT ENCODING "listpack") in one exactly sized block ([`ThinBuf`]):
//! (member, score) pairs in Redis's order (by score, then member bytes). A member is a LEB128
//! length and its bytes; a score is a width byte and an integer of that many bytes, or `0xFF`
//! and the f64's 8 bytes. Most scores are small integers (ranks, counts, timestamps), so a pair
//! of a 5-byte member and score 7 takes 8 bytes, about what Redis's listpack takes, where a
//! vector of (member, score) pairs took 32 and its doubling slack.
//!
//! Everything is a walk from the start, as in Redis's listpack: these sets hold at most
//! `zset-max-listpack-entries` (128 by default) members.

use std::cmp::Ordering;

use smallvec::SmallVec;

use super::skiplist::cmp_elem;
use crate::types::thin_buf::ThinBuf;
use crate::util::leb128;

/// The width byte of a score kept as its f64 bytes.
const FLOAT: u8 = 0xFF;

/// Integers up to here are exact in an f64 (2^53).
const EXACT: f64 = 9_007_199_254_740_992.0;

/// The bytes `score` takes (its width byte included).
fn score_len(score: f64) -> usize {
    match as_int(score) {
        Some(i) => 1 + int_width(i),
        None => 9,
    }
}

/// The score as an integer when it is one exactly (`-0` reads as 0, as a listpack stores it).
fn as_int(score: f64) -> Option<i64> {
    (score.fract() == 0.0 && score.abs() < EXACT).then_some(score as i64)
}

/// Bytes of the shortest two's complement form of `i` (0 for 0).
fn int_width(i: i64) -> usize {
    let magnitude = if i < 0 { !i } else { i } as u64;
    // One sign bit more than the significant bits, rounded up to bytes.
    if i == 0 {
        0
    } else {
        (64 - magnitude.leading_zeros() as usize + 1).div_ceil(8)
    }
}

fn write_score(out: &mut [u8], score: f64) {
    match as_int(score) {
        Some(i) => {
            let w = int_width(i);
            out[0] = w as u8;
            out[1..1 + w].copy_from_slice(&i.to_le_bytes()[..w]);
        }
        None => {
            out[0] = FLOAT;
            out[1..9].copy_from_slice(&score.to_le_bytes());
        }
    }
}

/// The score at `pos`, and the position after it.
#[inline]
fn read_score(buf: &[u8], pos: usize) -> (f64, usize) {
    let w = buf[pos];
    if w == FLOAT {
        let b: [u8; 8] = buf[pos + 1..pos + 9].try_into().expect("eight bytes");
        return (f64::from_le_bytes(b), pos + 9);
    }
    let w = w as usize;
    let mut b = [0u8; 8];
    b[..w].copy_from_slice(&buf[pos + 1..pos + 1 + w]);
    // Sign-extend from the top byte written.
    let shift = 64 - 8 * w as u32;
    let i = if w == 0 { 0 } else { (i64::from_le_bytes(b) << shift) >> shift };
    (i as f64, pos + 1 + w)
}

/// The pair at `pos`: (member start, member end, score, next pair).
#[inline]
fn read_pair(buf: &[u8], pos: usize) -> (usize, usize, f64, usize) {
    let (len, i) = leb128::read(buf, pos);
    let end = i + len;
    let (score, next) = read_score(buf, end);
    (i, end, score, next)
}

/// Bytes a pair takes.
fn pair_len(member: &[u8], score: f64) -> usize {
    pair_bytes(member.len(), score)
}

fn write_pair(out: &mut [u8], member: &[u8], score: f64) {
    let i = leb128::write(out, member.len());
    out[i..i + member.len()].copy_from_slice(member);
    write_score(&mut out[i + member.len()..], score);
}

/// Bytes a pair of a `member_len`-byte member and `score` takes (what a [`Builder`] is sized by).
pub fn pair_bytes(member_len: usize, score: f64) -> usize {
    leb128::len(member_len) + member_len + score_len(score)
}

/// Builds a [`ZListpack`] in one allocation of the size its caller counted (an RDB loader, which
/// walked its listpack first), from pairs that usually come in order already: each is appended,
/// and the pairs are put in order at the end only if one came out of it.
pub struct Builder {
    v: Vec<u8>,
    count: usize,
    /// Where the last pair pushed starts.
    last: Option<usize>,
    in_order: bool,
}

impl Builder {
    /// For pairs taking `bytes` in all (the sum of their [`pair_bytes`]).
    pub fn with_bytes(bytes: usize) -> Self {
        Builder { v: Vec::with_capacity(bytes), count: 0, last: None, in_order: true }
    }

    /// Add a pair; false (nothing added) when `member` is there already.
    pub fn push(&mut self, member: &[u8], score: f64) -> bool {
        let mut pos = 0;
        while pos < self.v.len() {
            let (ms, me, _, next) = read_pair(&self.v, pos);
            if &self.v[ms..me] == member {
                return false;
            }
            pos = next;
        }
        if let Some(at) = self.last {
            let (ms, me, s, _) = read_pair(&self.v, at);
            self.in_order &= cmp_elem(s, &self.v[ms..me], score, member) == Ordering::Less;
        }
        let at = self.v.len();
        self.v.resize(at + pair_len(member, score), 0);
        write_pair(&mut self.v[at..], member, score);
        self.last = Some(at);
        self.count += 1;
        true
    }

    pub fn finish(self) -> ZListpack {
        debug_assert_eq!(self.v.len(), self.v.capacity(), "a builder is sized by its caller");
        let mut buf = ThinBuf::new(self.v, 0);
        buf.set_count(self.count);
        let z = ZListpack { buf };
        if self.in_order {
            return z;
        }
        let mut pairs: Vec<(&[u8], f64)> = z.iter().collect();
        pairs.sort_by(|a, b| cmp_elem(a.1, a.0, b.1, b.0));
        ZListpack::from_sorted(pairs)
    }
}

/// The pairs, in order. `meta` counts them (`u16::MAX`: that many or more, counted by a walk).
#[derive(Clone, Default)]
pub struct ZListpack {
    buf: ThinBuf,
}

/// One pair's place: its first byte, its member's bytes, its score and the next pair's start.
struct Span {
    start: usize,
    member: (usize, usize),
    score: f64,
    next: usize,
}

impl ZListpack {
    /// A set of `pairs`, already in order.
    pub fn from_sorted<'a>(pairs: impl IntoIterator<Item = (&'a [u8], f64)>) -> ZListpack {
        let mut v = Vec::new();
        let mut count = 0;
        for (m, s) in pairs {
            let at = v.len();
            v.resize(at + pair_len(m, s), 0);
            write_pair(&mut v[at..], m, s);
            count += 1;
        }
        let mut buf = ThinBuf::new(v, 0);
        buf.set_count(count);
        ZListpack { buf }
    }

    pub fn len(&self) -> usize {
        self.buf.count(|| self.iter().count())
    }

    /// The block's bytes.
    pub fn bytes(&self) -> usize {
        self.buf.len()
    }

    fn spans(&self) -> impl Iterator<Item = Span> + '_ {
        let buf = self.buf.bytes();
        let mut pos = 0;
        std::iter::from_fn(move || {
            (pos < buf.len()).then(|| {
                let (ms, me, score, next) = read_pair(buf, pos);
                let span = Span { start: pos, member: (ms, me), score, next };
                pos = next;
                span
            })
        })
    }

    /// The pairs in order.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], f64)> + '_ {
        let buf = self.buf.bytes();
        self.spans().map(move |s| (&buf[s.member.0..s.member.1], s.score))
    }

    fn find(&self, member: &[u8]) -> Option<(usize, Span)> {
        let buf = self.buf.bytes();
        self.spans().enumerate().find(|(_, s)| &buf[s.member.0..s.member.1] == member)
    }

    /// A member's rank and score.
    pub fn rank(&self, member: &[u8]) -> Option<(usize, f64)> {
        self.find(member).map(|(rank, s)| (rank, s.score))
    }

    pub fn score(&self, member: &[u8]) -> Option<f64> {
        self.find(member).map(|(_, s)| s.score)
    }

    /// Remove a member; its score, if it was there.
    pub fn remove(&mut self, member: &[u8]) -> Option<f64> {
        let (_, s) = self.find(member)?;
        let count = self.len() - 1;
        self.buf.splice(s.start, s.next - s.start, 0);
        self.buf.set_count(count);
        Some(s.score)
    }

    /// Give a member that is there `score`, moving it to its new place; its old score (None,
    /// changing nothing, when it is not there).
    pub fn replace(&mut self, member: &[u8], score: f64) -> Option<f64> {
        let (_, s) = self.find(member)?;
        if s.score != score {
            self.buf.splice(s.start, s.next - s.start, 0);
            self.insert_at_order(member, score);
        }
        Some(s.score)
    }

    /// Add a member that is not there, at its place in the order.
    pub fn insert(&mut self, member: &[u8], score: f64) {
        let count = self.len() + 1;
        self.insert_at_order(member, score);
        self.buf.set_count(count);
    }

    /// Write a pair at its place in the order (the count is the caller's).
    fn insert_at_order(&mut self, member: &[u8], score: f64) {
        let buf = self.buf.bytes();
        let at = self
            .spans()
            .find(|s| cmp_elem(s.score, &buf[s.member.0..s.member.1], score, member) != Ordering::Less)
            .map_or(buf.len(), |s| s.start);
        write_pair(self.buf.splice(at, 0, pair_len(member, score)), member, score);
    }

    /// The pair at a rank.
    pub fn get(&self, rank: usize) -> Option<(&[u8], f64)> {
        self.iter().nth(rank)
    }

    /// How many leading pairs `pred` holds for (it must hold for a prefix of the order only).
    pub fn partition_point(&self, mut pred: impl FnMut(&[u8], f64) -> bool) -> usize {
        self.iter().take_while(|&(m, s)| pred(m, s)).count()
    }

    /// Visit pairs from rank `start` forward (backward when `rev`) while `f` returns true.
    pub fn walk<'a>(&'a self, start: usize, rev: bool, mut f: impl FnMut(&'a [u8], f64) -> bool) {
        let buf = self.buf.bytes();
        if !rev {
            for (m, s) in self.iter().skip(start) {
                if !f(m, s) {
                    break;
                }
            }
            return;
        }
        // No way back through the pairs: note where the first `start + 1` begin.
        let starts: SmallVec<[u32; 64]> = self.spans().take(start + 1).map(|s| s.start as u32).collect();
        if starts.len() <= start {
            return;
        }
        for &pos in starts.iter().rev() {
            let (ms, me, score, _) = read_pair(buf, pos as usize);
            if !f(&buf[ms..me], score) {
                break;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_read_back_exactly_and_small_integers_are_short() {
        for s in [0.0, -0.0, 1.0, -1.0, 127.0, 128.0, -128.0, -129.0, 65535.0, 1e15, -1e15, 9.007199254740991e15] {
            let mut b = vec![0u8; score_len(s)];
            write_score(&mut b, s);
            let (back, end) = read_score(&b, 0);
            assert_eq!((back, end), (if s == 0.0 { 0.0 } else { s }, b.len()), "{s}");
            assert!(back.to_bits() != (-0.0f64).to_bits());
        }
        for s in [0.5, -2.25, f64::INFINITY, f64::NEG_INFINITY, 1e300, 9.007199254740992e15, f64::MIN_POSITIVE] {
            let mut b = vec![0u8; score_len(s)];
            write_score(&mut b, s);
            assert_eq!(read_score(&b, 0), (s, 9), "{s}");
        }
        assert_eq!((score_len(0.0), score_len(7.0), score_len(300.0), score_len(-200.0)), (1, 2, 3, 3));
        assert_eq!(pair_len(b"m0001", 7.0), 8);
    }

    #[test]
    fn keeps_redis_order_and_edits_in_place() {
        let mut z = ZListpack::default();
        for (m, s) in [(&b"b"[..], 2.0), (b"a", 2.0), (b"c", -1.5), (b"d", 1e20), (b"", 0.0)] {
            z.insert(m, s);
        }
        let order: Vec<(&[u8], f64)> = z.iter().collect();
        assert_eq!(order, [(&b"c"[..], -1.5), (b"", 0.0), (b"a", 2.0), (b"b", 2.0), (b"d", 1e20)]);
        assert_eq!((z.len(), z.rank(b"b"), z.score(b"zz")), (5, Some((3, 2.0)), None));
        assert_eq!((z.replace(b"zz", 1.0), z.replace(b"d", 1e20)), (None, Some(1e20)));
        assert_eq!(z.replace(b"c", 3.0), Some(-1.5));
        assert_eq!(z.iter().map(|(m, _)| m).collect::<Vec<_>>(), [&b""[..], b"a", b"b", b"c", b"d"]);
        assert_eq!(z.replace(b"c", -1.5), Some(3.0));
        assert_eq!(z.len(), 5);
        assert_eq!(z.remove(b"a"), Some(2.0));
        assert_eq!(z.remove(b"a"), None);
        assert_eq!((z.len(), z.get(2), z.get(4)), (4, Some((&b"b"[..], 2.0)), None));
        assert_eq!(z.partition_point(|_, s| s < 1.0), 2);
        let mut back = Vec::new();
        z.walk(2, true, |m, _| {
            back.push(m);
            true
        });
        assert_eq!(back, [&b"b"[..], b"", b"c"]);
        let mut fwd = Vec::new();
        z.walk(1, false, |m, _| {
            fwd.push(m);
            fwd.len() < 2
        });
        assert_eq!(fwd, [&b""[..], b"b"]);
        let copy = ZListpack::from_sorted(z.iter());
        assert_eq!(copy.iter().collect::<Vec<_>>(), z.iter().collect::<Vec<_>>());
        assert_eq!(copy.bytes(), z.bytes());
    }
}
