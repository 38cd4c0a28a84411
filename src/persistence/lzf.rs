//! LZF compression, the format Redis uses for long strings in RDB files (`RDB_ENC_LZF`).
//!
//! Written here rather than taken from a crate: the format is tiny (two kinds of tokens), the
//! decoder must be hardened against hostile input (exact output length, no back reference
//! before the start, bounded allocation), and the compressor only has to produce *valid* LZF,
//! not liblzf's exact bytes: any conforming decoder (Redis's included) reads it back.
//!
//! Tokens: a control byte `c < 32` is followed by `c + 1` literal bytes; otherwise
//! `len = c >> 5` (7 means "add the next byte") and the offset is `((c & 31) << 8) + next byte`:
//! copy `len + 2` bytes starting `offset + 1` bytes back in the output (copies may overlap).

/// Longest back reference distance (13 bits, plus one).
const MAX_OFF: usize = 1 << 13;
/// Longest match: 7 + 255 extra, plus the implicit 2.
const MAX_REF: usize = 7 + 255 + 2;
/// Longest literal run.
const MAX_LIT: usize = 32;
const HASH_BITS: u32 = 14;

/// The best ratio an LZF stream can reach (a 264-byte match costs 3 bytes, plus slack): a
/// declared length beyond `compressed * MAX_RATIO` cannot be right.
pub const MAX_RATIO: usize = 100;

fn hash3(b: &[u8], bits: u32) -> usize {
    let v = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
    (v.wrapping_mul(2654435761) >> (32 - bits)) as usize
}

fn flush_literals(out: &mut Vec<u8>, lit: &[u8]) {
    for chunk in lit.chunks(MAX_LIT) {
        out.push((chunk.len() - 1) as u8);
        out.extend_from_slice(chunk);
    }
}

/// Compress `input`. Returns `None` unless the result is shorter than `max_out` bytes (Redis
/// only stores a string compressed when that saves at least a few bytes).
pub fn compress(input: &[u8], max_out: usize) -> Option<Vec<u8>> {
    let n = input.len();
    let mut out = Vec::with_capacity(max_out.min(n));
    // A table sized to the input (zeroing a full 16K-entry table for every short string cost
    // more than compressing it: SAVE was 2.7x slower with compression on than off).
    let bits = (usize::BITS - n.leading_zeros()).clamp(8, HASH_BITS);
    let mut table = vec![0u32; 1 << bits];
    let mut lit_start = 0;
    let mut i = 0;
    while i + 2 < n {
        let h = hash3(&input[i..], bits);
        let cand = table[h] as usize;
        table[h] = (i + 1) as u32;
        if cand > 0 {
            let r = cand - 1;
            let off = i - r - 1;
            if off < MAX_OFF && input[r..r + 3] == input[i..i + 3] {
                let max = MAX_REF.min(n - i);
                let mut len = 3;
                while len < max && input[r + len] == input[i + len] {
                    len += 1;
                }
                flush_literals(&mut out, &input[lit_start..i]);
                let l = len - 2;
                if l < 7 {
                    out.push(((l << 5) | (off >> 8)) as u8);
                } else {
                    out.push(((7 << 5) | (off >> 8)) as u8);
                    out.push((l - 7) as u8);
                }
                out.push(off as u8);
                i += len;
                lit_start = i;
                if out.len() >= max_out {
                    return None;
                }
                continue;
            }
        }
        i += 1;
    }
    flush_literals(&mut out, &input[lit_start..]);
    (out.len() < max_out).then_some(out)
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
