//! LZF compression, the format Redis uses for long strings in RDB files (`RDB_ENC_LZF`).
//!
//! The compressor is liblzf 3.6's `lzf_compress` as Redis builds it (HLOG 16, VERY_FAST,
//! unaligned 16-bit compares), reproduced step by step so that DUMP payloads and RDB files
//! are byte-identical to Redis's: the same hash of three bytes into 65,536 slots, the same
//! match extension (including its unrolled first 16 bytes), the same re-hashing of the last
//! two positions of a match, the same output-size checks. Redis's table is uninitialised stack
//! memory that liblzf validates by position (a slot only counts if it points into the input
//! before the current position); here each slot carries the number of the compression that
//! wrote it, so a table allocated once per thread is never zeroed (zeroing 64K slots for
//! every short string made SAVE 2.7x slower with compression on) and a slot from an earlier
//! call never counts — what Redis's checks give whenever its stack holds no pointer into the
//! same buffer.
//!
//! The decoder is hardened against hostile input (exact output length, no back reference
//! before the start, bounded allocation).
//!
//! Tokens: a control byte `c < 32` is followed by `c + 1` literal bytes; otherwise
//! `len = c >> 5` (7 means "add the next byte") and the offset is `((c & 31) << 8) + next byte`:
//! copy `len + 2` bytes starting `offset + 1` bytes back in the output (copies may overlap).

use std::cell::RefCell;

/// Longest back reference distance (13 bits, plus one).
const MAX_OFF: usize = 1 << 13;
/// liblzf's MAX_REF: the longest match is `MAX_REF + 2`... as liblzf counts it.
const MAX_REF: usize = (1 << 8) + (1 << 3);
/// Longest literal run.
const MAX_LIT: usize = 32;
/// liblzf's HLOG as Redis builds it.
const HLOG: u32 = 16;
const HSIZE: usize = 1 << HLOG;

/// The best ratio an LZF stream can reach (a 264-byte match costs 3 bytes, plus slack): a
/// declared length beyond `compressed * MAX_RATIO` cannot be right.
pub const MAX_RATIO: usize = 100;

/// liblzf's FRST / NEXT / IDX (VERY_FAST): a rolling 3-byte value and its slot.
#[inline]
fn frst(p: &[u8], i: usize) -> u32 {
    (p[i] as u32) << 8 | p[i + 1] as u32
}

#[inline]
fn next(v: u32, p: &[u8], i: usize) -> u32 {
    (v << 8) | p[i + 2] as u32
}

#[inline]
fn idx(h: u32) -> usize {
    ((h >> (3 * 8 - HLOG)).wrapping_sub(h.wrapping_mul(5)) as usize) & (HSIZE - 1)
}

/// The hash table: per slot, the compression that wrote it (high 32 bits) and the position.
struct Table {
    slots: Vec<u64>,
    generation: u32,
}

impl Table {
    /// Start a compression: slots of earlier ones stop counting.
    fn begin(&mut self) -> u64 {
        if self.slots.is_empty() {
            self.slots = vec![0; HSIZE];
        }
        self.generation = self.generation.wrapping_add(1);
        if self.generation == 0 {
            self.slots.iter_mut().for_each(|s| *s = 0);
            self.generation = 1;
        }
        (self.generation as u64) << 32
    }
}

thread_local! {
    static TABLE: RefCell<Table> = const { RefCell::new(Table { slots: Vec::new(), generation: 0 }) };
}

/// Compress `input` into at most `out_len` bytes, as Redis's `lzf_compress(in, len, out,
/// out_len)`: None where liblzf returns 0 (the result would not fit). Redis asks for
/// `len - 4` bytes, so a string is only stored compressed when that saves at least 4.
pub fn compress(input: &[u8], out_len: usize) -> Option<Vec<u8>> {
    if input.is_empty() || out_len == 0 || input.len() > u32::MAX as usize {
        return None;
    }
    TABLE.with(|t| {
        let mut t = t.borrow_mut();
        let generation = t.begin();
        compress_with(input, out_len, &mut t.slots, generation)
    })
}

fn compress_with(input: &[u8], out_len: usize, htab: &mut [u64], generation: u64) -> Option<Vec<u8>> {
    let n = input.len();
    let in_end = n;
    let mut out: Vec<u8> = Vec::with_capacity(out_len.min(n + n / 32 + 2));
    // `op` is out.len(); a literal run's header byte is reserved when the run starts.
    let mut lit: usize = 0;
    let mut run = out.len();
    out.push(0);
    let mut ip = 0usize;
    let mut hval = if n >= 2 { frst(input, ip) } else { 0 };
    let get = |htab: &[u64], slot: usize| -> Option<usize> {
        let s = htab[slot];
        (s >> 32 << 32 == generation).then_some((s & 0xffff_ffff) as usize)
    };
    while ip + 2 < in_end {
        hval = next(hval, input, ip);
        let slot = idx(hval);
        let r = get(htab, slot);
        htab[slot] = generation | ip as u64;
        let matched = r.filter(|&r| {
            r > 0
                && ip - r - 1 < MAX_OFF
                && input[r + 2] == input[ip + 2]
                && input[r] == input[ip]
                && input[r + 1] == input[ip + 1]
        });
        if let Some(r) = matched {
            let off = ip - r - 1;
            let mut len = 2usize;
            let maxlen = (in_end - ip - len).min(MAX_REF);
            let op = out.len();
            if op + 3 + 1 >= out_len && op - (lit == 0) as usize + 3 + 1 >= out_len {
                return None;
            }
            // Stop the literal run (or take back its header if it is empty).
            if lit > 0 {
                out[run] = (lit - 1) as u8;
            } else {
                out.pop();
            }
            'extend: {
                if maxlen > 16 {
                    for _ in 0..16 {
                        len += 1;
                        if input[r + len] != input[ip + len] {
                            break 'extend;
                        }
                    }
                }
                loop {
                    len += 1;
                    if !(len < maxlen && input[r + len] == input[ip + len]) {
                        break;
                    }
                }
            }
            len -= 2; // now #octets - 1
            ip += 1;
            if len < 7 {
                out.push(((off >> 8) + (len << 5)) as u8);
            } else {
                out.push(((off >> 8) + (7 << 5)) as u8);
                out.push((len - 7) as u8);
            }
            out.push(off as u8);
            lit = 0;
            run = out.len();
            out.push(0);
            ip += len + 1;
            if ip + 2 >= in_end {
                break;
            }
            // VERY_FAST: hash the last two positions of the match.
            ip -= 2;
            hval = frst(input, ip);
            hval = next(hval, input, ip);
            htab[idx(hval)] = generation | ip as u64;
            ip += 1;
            hval = next(hval, input, ip);
            htab[idx(hval)] = generation | ip as u64;
            ip += 1;
        } else {
            // One more literal byte.
            if out.len() >= out_len {
                return None;
            }
            lit += 1;
            out.push(input[ip]);
            ip += 1;
            if lit == MAX_LIT {
                out[run] = (lit - 1) as u8;
                lit = 0;
                run = out.len();
                out.push(0);
            }
        }
    }
    if out.len() + 3 > out_len {
        return None;
    }
    while ip < in_end {
        lit += 1;
        out.push(input[ip]);
        ip += 1;
        if lit == MAX_LIT {
            out[run] = (lit - 1) as u8;
            lit = 0;
            run = out.len();
            out.push(0);
        }
    }
    if lit > 0 {
        out[run] = (lit - 1) as u8;
    } else {
        out.pop();
    }
    Some(out)
}

/// Decompress `input`, which must expand to exactly `expected` bytes.
pub fn decompress(input: &[u8], expected: usize) -> Result<Vec<u8>, &'static str> {
    if expected > input.len().saturating_mul(MAX_RATIO).saturating_add(MAX_LIT) {
        return Err("LZF declared length too large for its compressed size");
    }
    let mut out: Vec<u8> = Vec::with_capacity(expected);
    let mut i = 0;
    while i < input.len() {
        let c = input[i] as usize;
        i += 1;
        if c < 32 {
            let len = c + 1;
            let lit = input.get(i..i + len).ok_or("LZF literal run past the end of the input")?;
            if out.len() + len > expected {
                return Err("LZF output longer than declared");
            }
            out.extend_from_slice(lit);
            i += len;
        } else {
            let mut len = c >> 5;
            if len == 7 {
                len += *input.get(i).ok_or("LZF truncated back reference")? as usize;
                i += 1;
            }
            let low = *input.get(i).ok_or("LZF truncated back reference")? as usize;
            i += 1;
            let back = ((c & 0x1f) << 8) + low + 1;
            let len = len + 2;
            if back > out.len() {
                return Err("LZF back reference before the start of the output");
            }
            if out.len() + len > expected {
                return Err("LZF output longer than declared");
            }
            let start = out.len() - back;
            for k in 0..len {
                let b = out[start + k];
                out.push(b);
            }
        }
    }
    if out.len() != expected {
        return Err("LZF output shorter than declared");
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn round_trips_repetitive_data() {
        let data: Vec<u8> = b"abcabcabcabcabcabcabcabcabcabcabcabcabc hello hello hello".repeat(50);
        let c = compress(&data, data.len()).expect("compressible");
        assert!(c.len() < data.len() / 5);
        assert_eq!(decompress(&c, data.len()).unwrap(), data);
    }

    #[test]
    fn decodes_a_known_stream() {
        // Literal "ab", then copy 3 bytes from 2 back: "ababa".
        let stream = [1, b'a', b'b', 1 << 5, 1];
        assert_eq!(decompress(&stream, 5).unwrap(), b"ababa");
        assert!(decompress(&stream, 6).is_err());
        assert!(decompress(&stream, 4).is_err());
        assert!(decompress(&[1 << 5, 0], 3).is_err());
        assert!(decompress(&[5, b'a'], 6).is_err());
    }

    #[test]
    fn incompressible_data_is_refused() {
        let data: Vec<u8> = (0..200u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect();
        assert!(compress(&data, data.len() - 4).is_none());
    }

    /// Streams Redis 7.0.15 wrote (DUMP payloads' LZF bodies): the compressor must produce
    /// exactly these bytes.
    #[test]
    fn byte_identical_to_redis() {
        let all: Vec<u8> = (0..=255u8).chain(0..=255u8).collect();
        let cases: Vec<(Vec<u8>, &[u8])> = vec![
            (b"a".repeat(100), b"\x01aa\xe0W\x00\x01aa"),
            (b"abcabcabcabcabcabcabcabcabcabcabcabc".repeat(3), b"\x03abca\xe0]\x02\x01bc"),
            (
                b"The quick brown fox jumps over the lazy dog. The quick brown fox jumps over the lazy dog.".to_vec(),
                b"\x1fThe quick brown fox jumps over t \x1e\nlazy dog. T \r\xe0\x1d,\x01g.",
            ),
        ];
        let mut expected_all = Vec::new();
        for chunk in (0..=255u8).collect::<Vec<_>>().chunks(32) {
            expected_all.push(31u8);
            expected_all.extend_from_slice(chunk);
        }
        expected_all.extend_from_slice(b"\x00\x00\xe0\xf4\xff\x01\xfe\xff");
        assert_eq!(compress(&all, all.len() - 4), Some(expected_all));
        for (input, expected) in &cases {
            assert_eq!(
                compress(input, input.len() - 4).as_deref(),
                Some(*expected),
                "{:?}",
                String::from_utf8_lossy(input)
            );
        }
    }

    proptest! {
        #[test]
        fn round_trip(data in proptest::collection::vec(prop_oneof![Just(b'a'), Just(b'b'), any::<u8>()], 0..3000)) {
            if let Some(c) = compress(&data, data.len() + 64) {
                prop_assert_eq!(decompress(&c, data.len()).unwrap(), data);
            }
        }

        #[test]
        fn garbage_never_panics(data in proptest::collection::vec(any::<u8>(), 0..200), n in 0usize..5000) {
            let _ = decompress(&data, n);
        }
    }
}
