//! Intset decoding and encoding (the RDB_TYPE_SET_INTSET blob): encoding width (u32 LE: 2, 4
//! or 8), count (u32 LE), then the integers in ascending order, little endian. Decoding checks
//! the size, that there is at least one integer and that they are strictly ascending, as
//! Redis's integrity check does.

/// Decode the width and the integers.
pub fn decode(buf: &[u8]) -> Result<(usize, Vec<i64>), &'static str> {
    if buf.len() < 8 {
        return Err("intset shorter than its header");
    }
    let width = u32::from_le_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
    let count = u32::from_le_bytes([buf[4], buf[5], buf[6], buf[7]]) as usize;
    if !matches!(width, 2 | 4 | 8) {
        return Err("intset has an invalid encoding");
    }
    if count.checked_mul(width) != Some(buf.len() - 8) {
        return Err("intset size does not match its count");
    }
    if count == 0 {
        // Redis's integrity check refuses an empty intset (it is not an empty key).
        return Err("intset is empty");
    }
    let mut out: Vec<i64> = Vec::with_capacity(count);
    for c in buf[8..].chunks_exact(width) {
        let v = match width {
            2 => i16::from_le_bytes([c[0], c[1]]) as i64,
            4 => i32::from_le_bytes([c[0], c[1], c[2], c[3]]) as i64,
            _ => i64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]),
        };
        if out.last().is_some_and(|&l| l >= v) {
            return Err("intset is not sorted or has duplicates");
        }
        out.push(v);
    }
    Ok((width, out))
}

/// The blob of an intset whose integers are `raw`: ascending, little endian, `width` (2, 4 or
/// 8) bytes each, as Redis keeps them.
pub fn encode(width: usize, raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + raw.len());
    out.extend_from_slice(&(width as u32).to_le_bytes());
    out.extend_from_slice(&((raw.len() / width) as u32).to_le_bytes());
    out.extend_from_slice(raw);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `vals` as `width`-byte little-endian integers.
    fn raw(width: usize, vals: &[i64]) -> Vec<u8> {
        vals.iter().flat_map(|v| v.to_le_bytes()[..width].to_vec()).collect()
    }

    #[test]
    fn round_trips_each_width() {
        for (w, vals) in [(2, vec![-3i64, 5, 100]), (4, vec![1, 70000]), (8, vec![-1, i64::MAX]), (8, vec![1, 2])] {
            assert_eq!(decode(&encode(w, &raw(w, &vals))).unwrap(), (w, vals));
        }
        assert_eq!(encode(2, &raw(2, &[1, 2])), vec![2, 0, 0, 0, 2, 0, 0, 0, 1, 0, 2, 0]);
    }

    #[test]
    fn corrupt_intsets_are_refused() {
        assert!(decode(&[2, 0, 0, 0, 2, 0, 0, 0, 2, 0, 1, 0]).is_err());
        assert!(decode(&[3, 0, 0, 0, 0, 0, 0, 0]).is_err());
        assert!(decode(&[2, 0, 0, 0, 0xff, 0xff, 0xff, 0xff]).is_err());
        // Empty: refused, as Redis's integrity check refuses it.
        assert!(decode(&encode(2, &[])).is_err());
    }
}
