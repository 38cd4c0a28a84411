//! Ziplist decoding (the compact encoding of Redis before 7.0, still found in RDB files written
//! by Redis 3.2-6.2: quicklist nodes, small hashes and sorted sets).
//!
//! Layout: total bytes (u32 LE), offset of the last entry (u32 LE), count (u16 LE, 65535 =
//! unknown), entries, 0xFF. An entry is the previous entry's length (1 byte, or 0xFE and a
//! u32 LE), an encoding (string lengths of 6, 14 or 32 bits, or one of six integer widths, or a
//! 4-bit immediate 0..12) and the payload. Decoding checks every entry against the buffer, the
//! previous-length chain, the tail offset and the count.

/// Decode every element; integers come back as their decimal text.
pub fn decode(buf: &[u8]) -> Result<Vec<Vec<u8>>, &'static str> {
    if buf.len() < 11 {
        return Err("ziplist shorter than its header");
    }
    let rd32 = |i: usize| u32::from_le_bytes([buf[i], buf[i + 1], buf[i + 2], buf[i + 3]]) as usize;
    if rd32(0) != buf.len() {
        return Err("ziplist total length does not match its size");
    }
    let tail = rd32(4);
    let count = u16::from_le_bytes([buf[8], buf[9]]) as usize;
    let end = buf.len() - 1;
    if buf[end] != 0xff {
        return Err("ziplist is not terminated");
    }
    let mut out = Vec::with_capacity(count.min(end / 2));
    let mut p = 10;
    let mut prev_len = 0;
    let mut last = None;
    while p < end {
        let b = &buf[p..end];
        let get = |i: usize| b.get(i).copied().ok_or("ziplist entry runs past the end");
        let (stored_prev, mut h) = if get(0)? < 254 {
            (get(0)? as usize, 1)
        } else if get(0)? == 254 {
            (u32::from_le_bytes([get(1)?, get(2)?, get(3)?, get(4)?]) as usize, 5)
        } else {
            return Err("ziplist entry has an invalid previous length");
        };
        if stored_prev != prev_len {
            return Err("ziplist entry has a wrong previous length");
        }
        let e = get(h)?;
        h += 1;
        let int = |v: i64, size: usize| (Some(v), size);
        let (value, payload) = match e >> 6 {
            0 => (None, (e & 0x3f) as usize),
            1 => {
                let l = (((e & 0x3f) as usize) << 8) | get(h)? as usize;
                h += 1;
                (None, l)
            }
            2 => {
                let l = u32::from_be_bytes([get(h)?, get(h + 1)?, get(h + 2)?, get(h + 3)?]) as usize;
                h += 4;
                (None, l)
            }
            _ => match e {
                0xc0 => int(i16::from_le_bytes([get(h)?, get(h + 1)?]) as i64, 2),
                0xd0 => int(i32::from_le_bytes([get(h)?, get(h + 1)?, get(h + 2)?, get(h + 3)?]) as i64, 4),
                0xe0 => {
                    let mut a = [0u8; 8];
                    for (i, x) in a.iter_mut().enumerate() {
                        *x = get(h + i)?;
                    }
                    int(i64::from_le_bytes(a), 8)
                }
                0xf0 => int((i32::from_le_bytes([0, get(h)?, get(h + 1)?, get(h + 2)?]) >> 8) as i64, 3),
                0xfe => int(get(h)? as i8 as i64, 1),
                0xf1..=0xfd => int(((e & 0x0f) - 1) as i64, 0),
                _ => return Err("ziplist entry has an invalid encoding"),
            },
        };
        let data = b.get(h..h + payload).ok_or("ziplist entry runs past the end")?;
        out.push(match value {
            Some(v) => v.to_string().into_bytes(),
            None => data.to_vec(),
        });
        last = Some(p);
        prev_len = h + payload;
        p += prev_len;
    }
    if last.is_some_and(|l| l != tail) || (last.is_none() && tail != 10) {
        return Err("ziplist tail offset is wrong");
    }
    if count != 0xffff && count != out.len() {
        return Err("ziplist element count does not match its entries");
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A ziplist as Redis 6 writes it for the list ["a", 12, 1000, "hello"].
    fn sample() -> Vec<u8> {
        let entries: Vec<Vec<u8>> =
            vec![vec![0x01, b'a'], vec![0xfd], vec![0xc0, 0xe8, 0x03], vec![0x05, b'h', b'e', b'l', b'l', b'o']];
        let mut body = Vec::new();
        let mut prev = 0;
        let mut tail = 10;
        for e in &entries {
            tail = 10 + body.len();
            body.push(prev as u8);
            body.extend_from_slice(e);
            prev = e.len() + 1;
        }
        let mut zl = Vec::new();
        zl.extend_from_slice(&((11 + body.len()) as u32).to_le_bytes());
        zl.extend_from_slice(&(tail as u32).to_le_bytes());
        zl.extend_from_slice(&4u16.to_le_bytes());
        zl.extend_from_slice(&body);
        zl.push(0xff);
        zl
    }

    #[test]
    fn decodes_strings_and_integers() {
        assert_eq!(
            decode(&sample()).unwrap(),
            vec![b"a".to_vec(), b"12".to_vec(), b"1000".to_vec(), b"hello".to_vec()]
        );
    }

    #[test]
    fn corrupt_ziplists_are_refused() {
        let good = sample();
        let mut bad = good.clone();
        bad[8] = 5;
        assert!(decode(&bad).is_err());
        let mut bad = good.clone();
        bad[13] = 9; // the second entry's previous length
        assert!(decode(&bad).is_err());
        for i in 0..good.len() {
            let mut b = good.clone();
            b[i] = b[i].wrapping_add(0x33);
            let _ = decode(&b);
        }
    }

    proptest! {
        #[test]
        fn garbage_never_panics(mut data in proptest::collection::vec(any::<u8>(), 11..300)) {
            let n = data.len() as u32;
            data[..4].copy_from_slice(&n.to_le_bytes());
            let _ = decode(&data);
        }
    }
}
