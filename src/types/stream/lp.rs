//! The listpack byte layout of a stream node (Redis's listpack.c), limited to what streams do
//! with it: append strings and integers, replace an integer in place, walk forward and
//! backward, read an element. Nodes are built here or validated when loaded
//! ([`super::node::validate`]), so these functions trust the bytes they are given.
//!
//! Layout: total bytes (u32 LE), element count (u16 LE, saturating at 65535 = unknown), the
//! elements, a 0xFF terminator. An element is an encoding byte (small integers and short
//! strings carry their value or length in it), the payload, and its own length as a
//! "backlen" (1 to 5 bytes, read backwards) so the list can be walked from the tail. Strings
//! that are canonical integers are stored as integers, in the smallest encoding, as Redis's
//! lpAppend does: nodes are byte-identical to Redis's, so RDB files and DUMP payloads are too.

pub const HDR: usize = 6;
const EOF: u8 = 0xff;
const COUNT_UNKNOWN: u16 = 0xffff;

/// One element: an integer or a string.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ele<'a> {
    Int(i64),
    Str(&'a [u8]),
}

impl Ele<'_> {
    /// The integer value (strings are parsed as Redis's lpGetInteger does).
    pub fn int(&self) -> Option<i64> {
        match self {
            Ele::Int(v) => Some(*v),
            Ele::Str(s) => crate::util::num::parse_i64(s),
        }
    }

    /// Append the element's text (integers in decimal).
    pub fn write_to(&self, out: &mut Vec<u8>) {
        match self {
            Ele::Int(v) => out.extend_from_slice(itoa::Buffer::new().format(*v).as_bytes()),
            Ele::Str(s) => out.extend_from_slice(s),
        }
    }

    pub fn to_vec(&self) -> Vec<u8> {
        let mut v = Vec::new();
        self.write_to(&mut v);
        v
    }

    /// Whether the element's text equals `s`.
    pub fn eq_bytes(&self, s: &[u8]) -> bool {
        match self {
            Ele::Str(x) => *x == s,
            Ele::Int(v) => itoa::Buffer::new().format(*v).as_bytes() == s,
        }
    }

    /// The length of the element's text.
    pub fn text_len(&self) -> usize {
        match self {
            Ele::Str(s) => s.len(),
            Ele::Int(v) => itoa::Buffer::new().format(*v).len(),
        }
    }
}

/// A new empty listpack with room for `cap` bytes.
pub fn new(cap: usize) -> Vec<u8> {
    let mut lp = Vec::with_capacity(cap.max(HDR + 1));
    lp.extend_from_slice(&[7, 0, 0, 0, 0, 0, EOF]);
    lp
}

pub fn total_bytes(lp: &[u8]) -> usize {
    u32::from_le_bytes([lp[0], lp[1], lp[2], lp[3]]) as usize
}

fn set_total(lp: &mut [u8]) {
    let n = lp.len() as u32;
    lp[..4].copy_from_slice(&n.to_le_bytes());
}

/// The header's element count (65535 when unknown).
pub fn count_field(lp: &[u8]) -> u16 {
    u16::from_le_bytes([lp[4], lp[5]])
}

fn bump_count(lp: &mut [u8]) {
    let c = count_field(lp);
    if c != COUNT_UNKNOWN {
        lp[4..6].copy_from_slice(&(c + 1).to_le_bytes());
    }
}

/// The size of the encoding byte(s) plus payload of the element at `p` (without backlen).
/// None if the encoding is invalid or runs past `lp`.
pub fn entry_len(lp: &[u8], p: usize) -> Option<usize> {
    let e = *lp.get(p)?;
    let b = |i: usize| lp.get(p + i).copied();
    Some(match e {
        _ if e & 0x80 == 0 => 1,
        _ if e & 0xc0 == 0x80 => 1 + (e & 0x3f) as usize,
        _ if e & 0xe0 == 0xc0 => 2,
        _ if e & 0xf0 == 0xe0 => 2 + ((((e & 0x0f) as usize) << 8) | b(1)? as usize),
        0xf0 => 5 + u32::from_le_bytes([b(1)?, b(2)?, b(3)?, b(4)?]) as usize,
        0xf1 => 3,
        0xf2 => 4,
        0xf3 => 5,
        0xf4 => 9,
        _ => return None,
    })
}

pub fn backlen_size(l: usize) -> usize {
    match l {
        0..=127 => 1,
        128..=16382 => 2,
        16383..=2097150 => 3,
        2097151..=268435454 => 4,
        _ => 5,
    }
}

fn write_backlen(out: &mut Vec<u8>, l: usize) {
    let n = backlen_size(l);
    for i in (0..n).rev() {
        let group = ((l >> (7 * i)) & 0x7f) as u8;
        out.push(if i + 1 == n { group } else { group | 0x80 });
    }
}

/// The element at `p`.
pub fn get(lp: &[u8], p: usize) -> Ele<'_> {
    let e = lp[p];
    let i16le = |a: u8, b: u8| i16::from_le_bytes([a, b]) as i64;
    match e {
        _ if e & 0x80 == 0 => Ele::Int((e & 0x7f) as i64),
        _ if e & 0xc0 == 0x80 => {
            let n = (e & 0x3f) as usize;
            Ele::Str(&lp[p + 1..p + 1 + n])
        }
        _ if e & 0xe0 == 0xc0 => {
            let v = (((e & 0x1f) as i64) << 8) | lp[p + 1] as i64;
            Ele::Int(if v >= 1 << 12 { v - (1 << 13) } else { v })
        }
        _ if e & 0xf0 == 0xe0 => {
            let n = (((e & 0x0f) as usize) << 8) | lp[p + 1] as usize;
            Ele::Str(&lp[p + 2..p + 2 + n])
        }
        0xf0 => {
            let n = u32::from_le_bytes([lp[p + 1], lp[p + 2], lp[p + 3], lp[p + 4]]) as usize;
            Ele::Str(&lp[p + 5..p + 5 + n])
        }
        0xf1 => Ele::Int(i16le(lp[p + 1], lp[p + 2])),
        0xf2 => Ele::Int((i32::from_le_bytes([0, lp[p + 1], lp[p + 2], lp[p + 3]]) >> 8) as i64),
        0xf3 => Ele::Int(i32::from_le_bytes([lp[p + 1], lp[p + 2], lp[p + 3], lp[p + 4]]) as i64),
        _ => {
            let mut a = [0u8; 8];
            a.copy_from_slice(&lp[p + 1..p + 9]);
            Ele::Int(i64::from_le_bytes(a))
        }
    }
}

/// The integer at `p` (0 for a string that is not one; nodes only hold integers there).
pub fn get_int(lp: &[u8], p: usize) -> i64 {
    get(lp, p).int().unwrap_or(0)
}

/// The position of the first element.
pub fn first(lp: &[u8]) -> Option<usize> {
    (lp[HDR] != EOF).then_some(HDR)
}

/// The position of the element after the one at `p`.
pub fn next(lp: &[u8], p: usize) -> Option<usize> {
    let l = entry_len(lp, p).unwrap_or(0);
    let n = p + l + backlen_size(l);
    (lp[n] != EOF).then_some(n)
}

/// The most bytes a backlen takes (7 bits each: entries are under 2^32 bytes).
const MAX_BACKLEN: usize = 5;

/// Decode the backlen whose last byte is at `q`: (length, bytes used). A backlen longer than
/// [`MAX_BACKLEN`] (corrupt data) reads as `usize::MAX`, which matches no entry's length.
fn read_backlen(lp: &[u8], mut q: usize) -> (usize, usize) {
    let mut val = 0usize;
    let mut shift = 0;
    let mut used = 0;
    loop {
        let b = lp[q];
        val |= ((b & 0x7f) as usize) << shift;
        used += 1;
        if b & 0x80 == 0 || q == 0 {
            return (val, used);
        }
        if used == MAX_BACKLEN {
            return (usize::MAX, used);
        }
        shift += 7;
        q -= 1;
    }
}

/// The position of the element before the one at `p` (or before the terminator, for
/// `p == lp.len() - 1`).
pub fn prev(lp: &[u8], p: usize) -> Option<usize> {
    if p <= HDR {
        return None;
    }
    let (l, used) = read_backlen(lp, p - 1);
    Some(p - used - l)
}

/// The position of the last element.
pub fn last(lp: &[u8]) -> Option<usize> {
    prev(lp, lp.len() - 1)
}

/// Append the encoding of integer `v` (encoding byte(s) and payload, no backlen).
fn encode_int(out: &mut Vec<u8>, v: i64) {
    if (0..=127).contains(&v) {
        out.push(v as u8);
    } else if (-4096..4096).contains(&v) {
        let u = (v as u16) & 0x1fff;
        out.extend_from_slice(&[0xc0 | (u >> 8) as u8, u as u8]);
    } else if i16::try_from(v).is_ok() {
        out.push(0xf1);
        out.extend_from_slice(&(v as i16).to_le_bytes());
    } else if (-(1 << 23)..(1 << 23)).contains(&v) {
        out.push(0xf2);
        out.extend_from_slice(&(v as i32).to_le_bytes()[..3]);
    } else if i32::try_from(v).is_ok() {
        out.push(0xf3);
        out.extend_from_slice(&(v as i32).to_le_bytes());
    } else {
        out.push(0xf4);
        out.extend_from_slice(&v.to_le_bytes());
    }
}

/// Append the encoding of string `s` as lpAppend does (canonical integers become integers).
fn encode_str(out: &mut Vec<u8>, s: &[u8]) {
    if let Some(v) = crate::util::num::parse_i64(s) {
        return encode_int(out, v);
    }
    if s.len() < 64 {
        out.push(0x80 | s.len() as u8);
    } else if s.len() < 4096 {
        out.extend_from_slice(&[0xe0 | (s.len() >> 8) as u8, s.len() as u8]);
    } else {
        out.push(0xf0);
        out.extend_from_slice(&(s.len() as u32).to_le_bytes());
    }
    out.extend_from_slice(s);
}

fn append_with(lp: &mut Vec<u8>, enc: impl FnOnce(&mut Vec<u8>)) {
    lp.pop(); // the terminator
    let start = lp.len();
    enc(lp);
    let l = lp.len() - start;
    write_backlen(lp, l);
    lp.push(EOF);
    set_total(lp);
    bump_count(lp);
}

pub fn append_int(lp: &mut Vec<u8>, v: i64) {
    append_with(lp, |out| encode_int(out, v));
}

pub fn append_str(lp: &mut Vec<u8>, s: &[u8]) {
    append_with(lp, |out| encode_str(out, s));
}

/// The bytes an element appended with [`append_str`] takes (encoding, payload, backlen).
pub fn str_size(s: &[u8]) -> usize {
    let mut tmp = Vec::new();
    if s.len() <= 20 {
        encode_str(&mut tmp, s);
        let l = tmp.len();
        return l + backlen_size(l);
    }
    let l = s.len()
        + if s.len() < 64 {
            1
        } else if s.len() < 4096 {
            2
        } else {
            5
        };
    l + backlen_size(l)
}

/// Replace the element at `p` with integer `v` (the elements after it may move).
pub fn replace_int(lp: &mut Vec<u8>, p: usize, v: i64) {
    let old = entry_len(lp, p).unwrap_or(1);
    let old_total = old + backlen_size(old);
    let mut enc = Vec::with_capacity(10);
    encode_int(&mut enc, v);
    let l = enc.len();
    write_backlen(&mut enc, l);
    if enc.len() == old_total {
        lp[p..p + old_total].copy_from_slice(&enc);
    } else {
        lp.splice(p..p + old_total, enc);
        set_total(lp);
    }
}

/// Iterate over every element, checking the structure as Redis's lpValidateIntegrity does
/// (each element inside the buffer, backlens consistent, terminator last, header fields
/// right). Returns the element positions.
pub fn validate(lp: &[u8]) -> Result<Vec<usize>, &'static str> {
    if lp.len() < HDR + 1 {
        return Err("listpack shorter than its header");
    }
    if total_bytes(lp) != lp.len() {
        return Err("listpack total length does not match its size");
    }
    if lp[lp.len() - 1] != EOF {
        return Err("listpack is not terminated");
    }
    let end = lp.len() - 1;
    let mut out = Vec::new();
    let mut p = HDR;
    while p < end {
        let l = entry_len(&lp[..end], p).ok_or("listpack entry is invalid or runs past the end")?;
        let b = backlen_size(l);
        if p + l + b > end {
            return Err("listpack entry runs past the end");
        }
        let (bl, used) = read_backlen(lp, p + l + b - 1);
        if bl != l || used != b {
            return Err("listpack entry has a wrong back length");
        }
        out.push(p);
        p += l + b;
    }
    let count = count_field(lp);
    if count != COUNT_UNKNOWN && count as usize != out.len() {
        return Err("listpack element count does not match its entries");
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn append_walk_and_replace() {
        let mut lp = new(64);
        let long = vec![b'z'; 5000];
        let mid = vec![b'y'; 300];
        let items: Vec<&[u8]> = vec![b"1", b"0", b"-5000", b"hello", b"007", &mid, &long, b"9223372036854775807"];
        for i in &items {
            append_str(&mut lp, i);
        }
        append_int(&mut lp, 70000);
        assert_eq!(validate(&lp).unwrap().len(), items.len() + 1);
        // forward
        let mut p = first(&lp);
        let mut seen = Vec::new();
        while let Some(x) = p {
            seen.push(get(&lp, x).to_vec());
            p = next(&lp, x);
        }
        assert_eq!(seen.len(), 9);
        assert_eq!(seen[4], b"007");
        assert_eq!(seen[8], b"70000");
        // backward
        let mut p = last(&lp);
        let mut back = Vec::new();
        while let Some(x) = p {
            back.push(get(&lp, x).to_vec());
            p = prev(&lp, x);
        }
        back.reverse();
        assert_eq!(back, seen);
        // replace the first integer with one needing a wider encoding, then a narrower one
        let f = first(&lp).unwrap();
        replace_int(&mut lp, f, 128);
        assert_eq!(get(&lp, f), Ele::Int(128));
        assert!(validate(&lp).is_ok());
        replace_int(&mut lp, f, 3);
        assert_eq!(get(&lp, f), Ele::Int(3));
        assert!(validate(&lp).is_ok());
        assert_eq!(get(&lp, last(&lp).unwrap()), Ele::Int(70000));
    }

    #[test]
    fn a_corrupt_back_length_is_refused() {
        // An entry whose data and back length are all 0xff: read backwards, the back length
        // never ends (it once shifted past 64 bits and panicked; fuzz target aof_load).
        let mut lp = new(8);
        append_str(&mut lp, &[0xff; 300]);
        let end = lp.len() - 1;
        lp[end - 2..end].fill(0xff);
        assert!(validate(&lp).is_err());
    }

    #[test]
    fn str_size_matches_appended_bytes() {
        for s in [&b"12"[..], b"-1", b"abc", &[b'q'; 63], &[b'q'; 64], &[b'q'; 5000], b"99999999999"] {
            let mut lp = new(8);
            let before = lp.len();
            append_str(&mut lp, s);
            assert_eq!(lp.len() - before, str_size(s), "{}", String::from_utf8_lossy(s));
        }
    }
}
