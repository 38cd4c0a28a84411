//! Bit operations over the bytes of a string value (Redis's bitops.c), independent of the
//! server: population count, first set/clear bit, BITCOUNT/BITPOS range resolution and BITOP.
//! Bit 0 is the most significant bit of the first byte, as in SETBIT.

/// How BITCOUNT/BITPOS read their `start`/`end` arguments.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    Byte,
    Bit,
}

/// Number of set bits in `b`.
pub fn popcount(b: &[u8]) -> u64 {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("popcnt") {
            // SAFETY: the CPU supports the features the function is compiled for.
            return unsafe { popcount_avx2(b) };
        }
    }
    popcount_words(b)
}

/// The portable count, a 64-bit word at a time.
fn popcount_words(b: &[u8]) -> u64 {
    let mut chunks = b.chunks_exact(8);
    let mut n: u64 = 0;
    for c in &mut chunks {
        n += u64::from_ne_bytes(c.try_into().expect("8-byte chunk")).count_ones() as u64;
    }
    n + chunks.remainder().iter().map(|x| x.count_ones() as u64).sum::<u64>()
}

/// The same loop compiled for AVX2, which LLVM vectorises into a nibble-lookup popcount
/// (several times faster than scalar counting on long strings: BITCOUNT of a 1 MB bitmap).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,popcnt")]
unsafe fn popcount_avx2(b: &[u8]) -> u64 {
    let mut chunks = b.chunks_exact(32);
    let mut n: u64 = 0;
    for c in &mut chunks {
        let mut w = 0u64;
        for q in c.chunks_exact(8) {
            w += u64::from_ne_bytes(q.try_into().expect("8-byte chunk")).count_ones() as u64;
        }
        n += w;
    }
    n + popcount_words(chunks.remainder())
}

/// Position of the first bit equal to `bit` (Redis's redisBitpos): when looking for a 1 in a
/// string without one the answer is -1; when looking for a 0 in a string of ones it is the
/// first bit past the end (the string is taken as zero-padded on the right).
pub fn first_bit(b: &[u8], bit: bool) -> i64 {
    let skip = if bit { 0u64 } else { u64::MAX };
    let mut i = 0;
    while i + 8 <= b.len() && u64::from_ne_bytes(b[i..i + 8].try_into().expect("8 bytes")) == skip {
        i += 8;
    }
    for (j, &byte) in b[i..].iter().enumerate() {
        let x = if bit { byte } else { !byte };
        if x != 0 {
            return ((i + j) as i64) * 8 + x.leading_zeros() as i64;
        }
    }
    if bit {
        -1
    } else {
        b.len() as i64 * 8
    }
}

/// A byte range of the string after Redis's index conversion, with the bits of the first and
/// last byte that lie outside a BIT range.
struct Resolved {
    start: i64,
    end: i64,
    first_mask: u8,
    last_mask: u8,
}

/// Redis's conversion of `start`/`end` (negative from the end, clamped) into a byte range;
/// a missing `end` (BITPOS) means the end of the string.
fn resolve(len: usize, start: i64, end: Option<i64>, unit: Unit) -> Resolved {
    let mut totlen = len as i64;
    let isbit = unit == Unit::Bit;
    let mut end = end.unwrap_or(if isbit { (totlen << 3) + 7 } else { totlen - 1 });
    let mut start = start;
    if isbit {
        totlen <<= 3;
    }
    if start < 0 {
        start += totlen;
    }
    if end < 0 {
        end += totlen;
    }
    start = start.max(0);
    end = end.max(0);
    if end >= totlen {
        end = totlen - 1;
    }
    let (mut first_mask, mut last_mask) = (0u8, 0u8);
    if isbit && start <= end {
        first_mask = !((1u32 << (8 - (start & 7))) - 1) as u8;
        last_mask = ((1u32 << (7 - (end & 7))) - 1) as u8;
        start >>= 3;
        end >>= 3;
    }
    Resolved { start, end, first_mask, last_mask }
}

/// BITCOUNT: the set bits of `s`, or of the range `start..=end` (bytes or bits).
pub fn bitcount(s: &[u8], range: Option<(i64, i64, Unit)>) -> i64 {
    let Some((start, end, unit)) = range else {
        return popcount(s) as i64;
    };
    let r = resolve(s.len(), start, Some(end), unit);
    if r.start > r.end {
        return 0;
    }
    let (a, b) = (r.start as usize, r.end as usize);
    let mut count = popcount(&s[a..=b]) as i64;
    count -= (s[a] & r.first_mask).count_ones() as i64;
    count -= (s[b] & r.last_mask).count_ones() as i64;
    count
}

/// BITPOS: the position of the first `bit` in `s`, or within `start[..end]` (bytes or bits).
/// With an explicit end, looking for a 0 in a range of ones gives -1 rather than the bit past
/// the range.
pub fn bitpos(s: &[u8], bit: bool, range: Option<(i64, Option<i64>, Unit)>) -> i64 {
    let (r, end_given) = match range {
        None => (Resolved { start: 0, end: s.len() as i64 - 1, first_mask: 0, last_mask: 0 }, false),
        Some((start, end, unit)) => (resolve(s.len(), start, end, unit), end.is_some()),
    };
    if r.start > r.end {
        return -1;
    }
    let finish = |pos: i64, start: i64, bytes: i64| -> i64 {
        if end_given && !bit && pos == bytes << 3 {
            -1
        } else if pos != -1 {
            pos + (start << 3)
        } else {
            -1
        }
    };
    // Keep only the wanted bits of a partial byte: the others are set to the opposite value.
    let only = |byte: u8, outside: u8| if bit { byte & !outside } else { byte | outside };
    let mut start = r.start;
    let mut bytes = r.end - r.start + 1;
    if r.first_mask != 0 {
        let mut tmp = only(s[start as usize], r.first_mask);
        if r.last_mask != 0 && bytes == 1 {
            tmp = only(tmp, r.last_mask);
        }
        let pos = first_bit(&[tmp], bit);
        if bytes == 1 || (pos != -1 && pos != 8) {
            return finish(pos, start, bytes);
        }
        start += 1;
        bytes -= 1;
    }
    let whole = bytes - i64::from(r.last_mask != 0);
    if whole > 0 {
        let pos = first_bit(&s[start as usize..(start + whole) as usize], bit);
        if bytes == whole || (pos != -1 && pos != whole << 3) {
            return finish(pos, start, bytes);
        }
        start += whole;
        bytes -= whole;
    }
    let pos = first_bit(&[only(s[r.end as usize], r.last_mask)], bit);
    finish(pos, start, bytes)
}

/// A BITOP operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BitOp {
    And,
    Or,
    Xor,
    Not,
}

impl BitOp {
    /// The operation named by BITOP's first argument (case-insensitive).
    pub fn parse(name: &[u8]) -> Option<BitOp> {
        [(&b"and"[..], BitOp::And), (b"or", BitOp::Or), (b"xor", BitOp::Xor), (b"not", BitOp::Not)]
            .into_iter()
            .find(|(n, _)| name.eq_ignore_ascii_case(n))
            .map(|(_, op)| op)
    }
}

/// BITOP's result built one source at a time, so that the sources need not all be borrowed
/// (or copied) at once: missing keys are empty strings, shorter strings are zero-padded, and
/// the result is as long as the longest source.
pub struct BitOpFold {
    op: BitOp,
    res: Vec<u8>,
    first: bool,
}

impl BitOpFold {
    pub fn new(op: BitOp) -> Self {
        BitOpFold { op, res: Vec::new(), first: true }
    }

    /// Fold in the next source.
    pub fn add(&mut self, src: &[u8]) {
        if self.first {
            self.first = false;
            self.res.extend_from_slice(src);
            if self.op == BitOp::Not {
                self.res.iter_mut().for_each(|b| *b = !*b);
            }
            return;
        }
        let n = src.len().min(self.res.len());
        match self.op {
            BitOp::And => {
                self.res[..n].iter_mut().zip(&src[..n]).for_each(|(r, s)| *r &= *s);
                // Past this source's end every result byte is 0 (and stays 0).
                self.res[n..].iter_mut().for_each(|r| *r = 0);
            }
            BitOp::Or => self.res[..n].iter_mut().zip(&src[..n]).for_each(|(r, s)| *r |= *s),
            BitOp::Xor => self.res[..n].iter_mut().zip(&src[..n]).for_each(|(r, s)| *r ^= *s),
            BitOp::Not => unreachable!("NOT takes a single source"),
        }
        if src.len() > self.res.len() {
            // Bytes only this source has: every earlier source was 0 there.
            let extra = &src[self.res.len()..];
            match self.op {
                BitOp::And => self.res.resize(src.len(), 0),
                _ => self.res.extend_from_slice(extra),
            }
        }
    }

    /// The result (empty when every source was empty or missing).
    pub fn finish(self) -> Vec<u8> {
        self.res
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive_count(b: &[u8]) -> u64 {
        b.iter().map(|x| x.count_ones() as u64).sum()
    }

    #[test]
    fn popcount_matches_naive_at_every_length_and_alignment() {
        let data: Vec<u8> = (0..300u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect();
        for start in 0..9 {
            for end in start..data.len() {
                assert_eq!(popcount(&data[start..end]), naive_count(&data[start..end]));
                assert_eq!(popcount_words(&data[start..end]), naive_count(&data[start..end]));
            }
        }
    }

    #[test]
    fn first_bit_follows_redis() {
        assert_eq!(first_bit(&[], true), -1);
        assert_eq!(first_bit(&[], false), 0);
        assert_eq!(first_bit(&[0xff, 0xf0, 0x00], false), 12);
        assert_eq!(first_bit(&[0xff; 20], false), 160);
        assert_eq!(first_bit(&[0; 20], true), -1);
        let mut v = vec![0u8; 40];
        v[33] = 0x01;
        assert_eq!(first_bit(&v, true), 33 * 8 + 7);
    }

    #[test]
    fn bitcount_ranges() {
        // "foobar" as in the Redis documentation.
        let s = b"foobar";
        assert_eq!(bitcount(s, None), 26);
        assert_eq!(bitcount(s, Some((0, 0, Unit::Byte))), 4);
        assert_eq!(bitcount(s, Some((1, 1, Unit::Byte))), 6);
        assert_eq!(bitcount(s, Some((1, 1, Unit::Bit))), 1);
        assert_eq!(bitcount(s, Some((5, 30, Unit::Bit))), 17);
        assert_eq!(bitcount(s, Some((-100, 100, Unit::Byte))), 26);
        assert_eq!(bitcount(s, Some((3, 1, Unit::Byte))), 0);
        assert_eq!(bitcount(b"", Some((0, -1, Unit::Byte))), 0);
    }

    #[test]
    fn bitpos_ranges() {
        let s = [0xffu8, 0xf0, 0x00];
        assert_eq!(bitpos(&s, false, None), 12);
        assert_eq!(bitpos(&s, true, Some((2, None, Unit::Byte))), -1);
        assert_eq!(bitpos(&s, false, Some((2, None, Unit::Byte))), 16);
        assert_eq!(bitpos(&[0xff, 0xff], false, None), 16);
        assert_eq!(bitpos(&[0xff, 0xff], false, Some((0, Some(-1), Unit::Byte))), -1);
        assert_eq!(bitpos(&[0x00, 0xff, 0xf0], true, Some((7, Some(15), Unit::Bit))), 8);
        assert_eq!(bitpos(&[0x00, 0xff, 0xf0], true, Some((7, Some(7), Unit::Bit))), -1);
        assert_eq!(bitpos(&[0xff, 0xff, 0xff], false, Some((7, Some(15), Unit::Bit))), -1);
        assert_eq!(bitpos(&[0xff, 0xfe, 0xff], false, Some((7, Some(15), Unit::Bit))), 15);
    }

    #[test]
    fn bitop_fold_pads_and_truncates_like_redis() {
        let run = |op, srcs: &[&[u8]]| {
            let mut f = BitOpFold::new(op);
            srcs.iter().for_each(|s| f.add(s));
            f.finish()
        };
        assert_eq!(run(BitOp::And, &[b"\xff\xff\xff", b"\x0f"]), b"\x0f\x00\x00");
        assert_eq!(run(BitOp::And, &[b"\x0f", b"\xff\xff\xff"]), b"\x0f\x00\x00");
        assert_eq!(run(BitOp::And, &[b"\xff\xff", b"", b"\xff"]), b"\x00\x00");
        assert_eq!(run(BitOp::Or, &[b"\x01", b"\x10\x20"]), b"\x11\x20");
        assert_eq!(run(BitOp::Xor, &[b"\x01\x02", b"\x03", b"\x00\x00\x04"]), b"\x02\x02\x04");
        assert_eq!(run(BitOp::Not, &[b"\x0f\xf0"]), b"\xf0\x0f");
        assert_eq!(run(BitOp::Or, &[b"", b""]), b"");
    }
}
