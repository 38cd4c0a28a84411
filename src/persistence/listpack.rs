//! Listpack decoding and encoding (Redis 7's compact sequence, used in RDB files for small
//! hashes and sorted sets and for the nodes of a list's quicklist).
//!
//! Layout: total bytes (u32 LE), element count (u16 LE, 65535 = unknown), the entries, and a
//! 0xFF terminator. An entry is an encoding byte (small integers and short strings carry their
//! value or length in it), the payload, then the entry's own length as a "backlen" (1 to 5
//! bytes, read backwards) so the list can be walked from the tail. Decoding validates all of
//! it, as Redis's deep integrity check does: every entry inside the buffer, backlens right,
//! the count right, the terminator last.

/// Decode every element; integers come back as their decimal text.
pub fn decode(buf: &[u8]) -> Result<Vec<Vec<u8>>, &'static str> {
    let mut out = Vec::with_capacity(claimed_count(buf).min(buf.len() / 2));
    walk(buf, |e| out.push(e.with_bytes(<[u8]>::to_vec)))?;
    Ok(out)
}

/// One element of a listpack, as stored: a string (borrowed from the listpack) or an integer.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Elem<'a> {
    Bytes(&'a [u8]),
    Int(i64),
}

impl Elem<'_> {
    /// Call `f` with the element's bytes: an integer as its decimal text, written on the stack
    /// (a load of small collections would otherwise allocate a string per integer).
    pub fn with_bytes<R>(self, f: impl FnOnce(&[u8]) -> R) -> R {
        match self {
            Elem::Bytes(b) => f(b),
            Elem::Int(v) => f(itoa::Buffer::new().format(v).as_bytes()),
        }
    }

    /// The length of the element's bytes (an integer's: of its decimal text).
    pub fn text_len(self) -> usize {
        self.with_bytes(<[u8]>::len)
    }
}

/// The element count the header claims (65535: unknown, so 0 here); 0 for a short buffer.
fn claimed_count(buf: &[u8]) -> usize {
    match buf.get(4..6) {
        Some(&[a, b]) if u16::from_le_bytes([a, b]) != 0xffff => u16::from_le_bytes([a, b]) as usize,
        _ => 0,
    }
}

/// Check all of a listpack (see the module's doc) and hand each element to `f`, in order, as
/// it goes: a listpack that fails a check may have handed some elements already. Returns the
/// element count. Nothing is allocated: [`walk`] once without a visitor to check and count,
/// then again to build, costs less than a vector of the elements.
pub fn walk<'a>(buf: &'a [u8], mut f: impl FnMut(Elem<'a>)) -> Result<usize, &'static str> {
    if buf.len() < 7 {
        return Err("listpack shorter than its header");
    }
    let total = u32::from_le_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
    if total != buf.len() {
        return Err("listpack total length does not match its size");
    }
    let count = u16::from_le_bytes([buf[4], buf[5]]) as usize;
    if buf[total - 1] != 0xff {
        return Err("listpack is not terminated");
    }
    let end = total - 1;
    let mut n = 0;
    let mut p = 6;
    while p < end {
        let (value, entry_len) = entry(&buf[p..end])?;
        let back = backlen_size(entry_len);
        if p + entry_len + back > end {
            return Err("listpack entry runs past the end");
        }
        if read_backlen(&buf[p + entry_len..p + entry_len + back]) != Some(entry_len) {
            return Err("listpack entry has a wrong back length");
        }
        f(value);
        n += 1;
        p += entry_len + back;
    }
    if count != 0xffff && count != n {
        return Err("listpack element count does not match its entries");
    }
    Ok(n)
}

/// One entry at the start of `b`: its value and its length without the backlen.
fn entry(b: &[u8]) -> Result<(Elem<'_>, usize), &'static str> {
    let get = |i: usize| b.get(i).copied().ok_or("listpack entry runs past the end");
    let e = get(0)?;
    let int = |v: i64, len: usize| Ok((Elem::Int(v), len));
    let string = |start: usize, len: usize| {
        let s = b.get(start..start + len).ok_or("listpack string runs past the end")?;
        Ok((Elem::Bytes(s), start + len))
    };
    match e {
        _ if e & 0x80 == 0 => int((e & 0x7f) as i64, 1),
        _ if e & 0xc0 == 0x80 => string(1, (e & 0x3f) as usize),
        _ if e & 0xe0 == 0xc0 => {
            let v = (((e & 0x1f) as i64) << 8) | get(1)? as i64;
            int(if v >= 1 << 12 { v - (1 << 13) } else { v }, 2)
        }
        _ if e & 0xf0 == 0xe0 => string(2, (((e & 0x0f) as usize) << 8) | get(1)? as usize),
        0xf0 => string(5, u32::from_le_bytes([get(1)?, get(2)?, get(3)?, get(4)?]) as usize),
        0xf1 => int(i16::from_le_bytes([get(1)?, get(2)?]) as i64, 3),
        0xf2 => {
            let v = i32::from_le_bytes([0, get(1)?, get(2)?, get(3)?]) >> 8;
            int(v as i64, 4)
        }
        0xf3 => int(i32::from_le_bytes([get(1)?, get(2)?, get(3)?, get(4)?]) as i64, 5),
        0xf4 => {
            let mut a = [0u8; 8];
            for (i, x) in a.iter_mut().enumerate() {
                *x = get(1 + i)?;
            }
            int(i64::from_le_bytes(a), 9)
        }
        _ => Err("listpack entry has an invalid encoding"),
    }
}

fn backlen_size(l: usize) -> usize {
    match l {
        0..=127 => 1,
        128..=16382 => 2,
        16383..=2097150 => 3,
        2097151..=268435454 => 4,
        _ => 5,
    }
}

/// The length stored in a backlen (its bytes in file order; read from the last one).
fn read_backlen(b: &[u8]) -> Option<usize> {
    let mut v = 0usize;
    let mut shift = 0;
    for (i, &x) in b.iter().rev().enumerate() {
        v |= ((x & 0x7f) as usize) << shift;
        let more = x & 0x80 != 0;
        if more != (i + 1 < b.len()) {
            return None;
        }
        shift += 7;
    }
    Some(v)
}

fn write_backlen(out: &mut Vec<u8>, l: usize) {
    let n = backlen_size(l);
    // Most significant group first; every byte but the first has the continuation bit.
    for i in (0..n).rev() {
        let group = ((l >> (7 * i)) & 0x7f) as u8;
        out.push(if i + 1 == n { group } else { group | 0x80 });
    }
}

/// Builds a listpack the way Redis encodes entries: strings that are canonical integers
/// (Redis's string2ll) are stored as integers, in the smallest integer encoding.
pub struct Builder {
    buf: Vec<u8>,
    count: usize,
}

impl Default for Builder {
    fn default() -> Self {
        Builder::new()
    }
}

impl Builder {
    pub fn new() -> Self {
        Builder { buf: vec![0; 6], count: 0 }
    }

    pub fn push(&mut self, s: &[u8]) {
        let start = self.buf.len();
        let int = if s.len() <= 20 { crate::util::num::parse_i64(s) } else { None };
        match int {
            Some(v) if (0..=127).contains(&v) => self.buf.push(v as u8),
            Some(v) if (-4096..4096).contains(&v) => {
                let u = (v as u16) & 0x1fff;
                self.buf.extend_from_slice(&[0xc0 | (u >> 8) as u8, u as u8]);
            }
            Some(v) if i16::try_from(v).is_ok() => {
                self.buf.push(0xf1);
                self.buf.extend_from_slice(&(v as i16).to_le_bytes());
            }
            Some(v) if (-(1 << 23)..(1 << 23)).contains(&v) => {
                self.buf.push(0xf2);
                self.buf.extend_from_slice(&(v as i32).to_le_bytes()[..3]);
            }
            Some(v) if i32::try_from(v).is_ok() => {
                self.buf.push(0xf3);
                self.buf.extend_from_slice(&(v as i32).to_le_bytes());
            }
            Some(v) => {
                self.buf.push(0xf4);
                self.buf.extend_from_slice(&v.to_le_bytes());
            }
            None if s.len() < 64 => {
                self.buf.push(0x80 | s.len() as u8);
                self.buf.extend_from_slice(s);
            }
            None if s.len() < 4096 => {
                self.buf.extend_from_slice(&[0xe0 | (s.len() >> 8) as u8, s.len() as u8]);
                self.buf.extend_from_slice(s);
            }
            None => {
                self.buf.push(0xf0);
                self.buf.extend_from_slice(&(s.len() as u32).to_le_bytes());
                self.buf.extend_from_slice(s);
            }
        }
        let len = self.buf.len() - start;
        write_backlen(&mut self.buf, len);
        self.count += 1;
    }

    /// Elements pushed so far.
    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Bytes so far (the terminator excluded).
    pub fn bytes(&self) -> usize {
        self.buf.len()
    }

    /// The finished listpack bytes.
    pub fn finish(mut self) -> Vec<u8> {
        self.buf.push(0xff);
        let total = self.buf.len() as u32;
        self.buf[..4].copy_from_slice(&total.to_le_bytes());
        let count = self.count.min(0xffff) as u16;
        self.buf[4..6].copy_from_slice(&count.to_le_bytes());
        self.buf
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn build(items: &[&[u8]]) -> Vec<u8> {
        let mut b = Builder::new();
        items.iter().for_each(|i| b.push(i));
        b.finish()
    }

    #[test]
    fn round_trips_every_encoding() {
        let long = vec![b'x'; 5000];
        let mid = vec![b'y'; 300];
        let items: Vec<&[u8]> = vec![
            b"0",
            b"127",
            b"128",
            b"-1",
            b"4095",
            b"-4096",
            b"32767",
            b"-32768",
            b"8388607",
            b"-8388608",
            b"2147483647",
            b"-2147483648",
            b"9223372036854775807",
            b"-9223372036854775808",
            b"",
            b"hello",
            b"007",
            &mid,
            &long,
        ];
        let lp = build(&items);
        let back = decode(&lp).unwrap();
        assert_eq!(back, items.iter().map(|i| i.to_vec()).collect::<Vec<_>>());
    }

    #[test]
    fn matches_redis_bytes() {
        // What Redis 7.0 writes for a hash {a: 1}: total 12, count 2, "a" as a 6-bit string,
        // 1 as a 7-bit integer, each followed by its backlen.
        assert_eq!(build(&[b"a", b"1"]), vec![12, 0, 0, 0, 2, 0, 0x81, b'a', 2, 1, 1, 0xff]);
    }

    #[test]
    fn corrupt_listpacks_are_refused() {
        let good = build(&[b"abc", b"12"]);
        for i in 0..good.len() {
            let mut bad = good.clone();
            bad[i] ^= 0x40;
            let _ = decode(&bad);
        }
        assert!(decode(&good[..good.len() - 1]).is_err());
        let mut bad_count = good.clone();
        bad_count[4] = 3;
        assert!(decode(&bad_count).is_err());
    }

    proptest! {
        #[test]
        fn garbage_never_panics(mut data in proptest::collection::vec(any::<u8>(), 7..300)) {
            let n = data.len() as u32;
            data[..4].copy_from_slice(&n.to_le_bytes());
            let _ = decode(&data);
        }
    }
}
