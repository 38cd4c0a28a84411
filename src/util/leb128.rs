//! LEB128 numbers (7 bits a byte, the low ones first, the top bit set on every byte but the
//! last): the length prefix of the compact encodings' entries (`types/packed.rs`,
//! `types/list_packed.rs`, `types/zset/listpack.rs`).

/// Bytes the encoding of `n` takes.
#[inline]
pub fn len(n: usize) -> usize {
    ((usize::BITS - (n | 1).leading_zeros()).div_ceil(7)) as usize
}

/// Write `n` at the start of `out` (which has room for [`len`] bytes); returns that length.
#[inline]
pub fn write(out: &mut [u8], mut n: usize) -> usize {
    let mut i = 0;
    loop {
        let low = (n & 0x7f) as u8;
        n >>= 7;
        out[i] = if n > 0 { low | 0x80 } else { low };
        i += 1;
        if n == 0 {
            return i;
        }
    }
}

/// Append `n` to `out`.
#[inline]
pub fn push(out: &mut Vec<u8>, n: usize) {
    let at = out.len();
    out.resize(at + len(n), 0);
    write(&mut out[at..], n);
}

/// The number at `pos`, and the position after it.
#[inline]
pub fn read(buf: &[u8], mut pos: usize) -> (usize, usize) {
    let (mut n, mut shift) = (0usize, 0);
    loop {
        let b = buf[pos];
        pos += 1;
        n |= ((b & 0x7f) as usize) << shift;
        if b & 0x80 == 0 {
            return (n, pos);
        }
        shift += 7;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_at_every_byte_boundary() {
        for n in [0, 1, 127, 128, 16_383, 16_384, 2_097_151, 2_097_152, usize::MAX >> 1] {
            let mut v = vec![0xAA];
            push(&mut v, n);
            assert_eq!(v.len(), 1 + len(n), "{n}");
            assert_eq!(read(&v, 1), (n, v.len()), "{n}");
        }
        assert_eq!((len(0), len(127), len(128), len(16_384)), (1, 1, 2, 3));
    }
}
