//! Zipmap decoding (RDB_TYPE_HASH_ZIPMAP, the small-hash encoding of Redis before 2.6).
//!
//! Layout: a count byte (254 or more: unknown), then pairs of `len key len free value` (a
//! length is one byte below 254, or 254 and a u32 LE; `free` unused bytes follow the value),
//! and a 0xFF terminator that must be the last byte. A zipmap without pairs is refused, as
//! Redis's integrity check refuses it.

/// (field, value) pairs.
pub type Pairs = Vec<(Vec<u8>, Vec<u8>)>;

/// Decode the (field, value) pairs.
pub fn decode(buf: &[u8]) -> Result<Pairs, &'static str> {
    let count = *buf.first().ok_or("zipmap is empty")? as usize;
    let mut p = 1;
    let len_at = |p: &mut usize| -> Result<Option<usize>, &'static str> {
        let b = *buf.get(*p).ok_or("zipmap runs past the end")?;
        *p += 1;
        match b {
            255 => Ok(None),
            254 => {
                let s = buf.get(*p..*p + 4).ok_or("zipmap runs past the end")?;
                *p += 4;
                Ok(Some(u32::from_le_bytes([s[0], s[1], s[2], s[3]]) as usize))
            }
            n => Ok(Some(n as usize)),
        }
    };
    let take = |p: &mut usize, n: usize| -> Result<Vec<u8>, &'static str> {
        let s = buf.get(*p..p.saturating_add(n)).ok_or("zipmap runs past the end")?;
        *p += n;
        Ok(s.to_vec())
    };
    let mut out = Vec::new();
    while let Some(klen) = len_at(&mut p)? {
        let key = take(&mut p, klen)?;
        let vlen = len_at(&mut p)?.ok_or("zipmap key without a value")?;
        let free = *buf.get(p).ok_or("zipmap runs past the end")? as usize;
        p += 1;
        let value = take(&mut p, vlen)?;
        take(&mut p, free)?;
        out.push((key, value));
    }
    if p != buf.len() {
        return Err("zipmap has bytes after its terminator");
    }
    if out.is_empty() {
        return Err("zipmap is empty");
    }
    if count < 254 && count != out.len() {
        return Err("zipmap element count does not match its entries");
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_pairs_with_free_space() {
        let zm = [2, 1, b'a', 2, 1, b'x', b'y', 0, 3, b'k', b'e', b'y', 1, 0, b'v', 0xff];
        assert_eq!(decode(&zm).unwrap(), vec![(b"a".to_vec(), b"xy".to_vec()), (b"key".to_vec(), b"v".to_vec())]);
        assert!(decode(&zm[..zm.len() - 1]).is_err());
        let mut bad = zm;
        bad[0] = 3;
        assert!(decode(&bad).is_err());
        // No pairs (what the "hash empty zipmap" payload of Redis's corrupt-dump test holds).
        assert_eq!(decode(&[0, 0xff]), Err("zipmap is empty"));
    }
}
