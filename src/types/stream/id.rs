//! Stream entry IDs (`<ms>-<seq>`, two unsigned 64-bit numbers) and their textual forms,
//! parsed exactly as Redis's streamGenericParseIDOrReply does (including its string2ull
//! quirks: leading spaces, `+`, leading zeros and wrapped negatives accepted by strtoull).

use std::fmt;

/// A stream entry ID. Ordered as the 128-bit number `ms << 64 | seq` (field order matters for
/// the derived `Ord`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StreamId {
    pub ms: u64,
    pub seq: u64,
}

impl StreamId {
    pub const MIN: StreamId = StreamId { ms: 0, seq: 0 };
    pub const MAX: StreamId = StreamId { ms: u64::MAX, seq: u64::MAX };

    pub const fn new(ms: u64, seq: u64) -> Self {
        StreamId { ms, seq }
    }

    pub fn is_zero(&self) -> bool {
        self.ms == 0 && self.seq == 0
    }

    /// The next ID (Redis's streamIncrID); None (and 0-0 in Redis) past the maximum.
    pub fn incr(self) -> Option<StreamId> {
        if self.seq == u64::MAX {
            if self.ms == u64::MAX {
                None
            } else {
                Some(StreamId::new(self.ms + 1, 0))
            }
        } else {
            Some(StreamId::new(self.ms, self.seq + 1))
        }
    }

    /// The previous ID (Redis's streamDecrID); None below the minimum.
    pub fn decr(self) -> Option<StreamId> {
        if self.seq == 0 {
            if self.ms == 0 {
                None
            } else {
                Some(StreamId::new(self.ms - 1, u64::MAX))
            }
        } else {
            Some(StreamId::new(self.ms, self.seq - 1))
        }
    }

    /// The 128-bit big-endian form Redis uses as radix-tree key and in RDB files.
    pub fn to_be_bytes(self) -> [u8; 16] {
        let mut b = [0u8; 16];
        b[..8].copy_from_slice(&self.ms.to_be_bytes());
        b[8..].copy_from_slice(&self.seq.to_be_bytes());
        b
    }

    pub fn from_be_bytes(b: &[u8; 16]) -> Self {
        let mut ms = [0u8; 8];
        let mut seq = [0u8; 8];
        ms.copy_from_slice(&b[..8]);
        seq.copy_from_slice(&b[8..]);
        StreamId::new(u64::from_be_bytes(ms), u64::from_be_bytes(seq))
    }

    /// Append `<ms>-<seq>`.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        let mut b = itoa::Buffer::new();
        out.extend_from_slice(b.format(self.ms).as_bytes());
        out.push(b'-');
        out.extend_from_slice(b.format(self.seq).as_bytes());
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(41);
        self.write_to(&mut v);
        v
    }
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.ms, self.seq)
    }
}

/// How an ID argument is read (the parameters of Redis's streamGenericParseIDOrReply).
#[derive(Clone, Copy, Debug)]
pub struct IdSyntax {
    /// The sequence used when only `<ms>` is given.
    pub missing_seq: u64,
    /// `-` and `+` are refused.
    pub strict: bool,
    /// `<ms>-*` is accepted (XADD): the sequence is then left to be generated.
    pub seq_star: bool,
}

/// A parsed ID argument: the ID, and whether its sequence was given (false for `<ms>-*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ParsedId {
    pub id: StreamId,
    pub seq_given: bool,
}

/// Parse an ID argument; None means "Invalid stream ID specified as stream command argument".
pub fn parse(arg: &[u8], syn: IdSyntax) -> Option<ParsedId> {
    if arg.len() > 127 {
        return None;
    }
    // Redis copies the argument into a C string: everything after a NUL byte is ignored.
    let buf = match memchr::memchr(0, arg) {
        Some(n) => &arg[..n],
        None => arg,
    };
    if syn.strict && (buf == b"-" || buf == b"+") {
        return None;
    }
    if buf == b"-" {
        return Some(ParsedId { id: StreamId::MIN, seq_given: true });
    }
    if buf == b"+" {
        return Some(ParsedId { id: StreamId::MAX, seq_given: true });
    }
    let (ms_part, seq_part) = match memchr::memchr(b'-', buf) {
        Some(n) => (&buf[..n], Some(&buf[n + 1..])),
        None => (buf, None),
    };
    let ms = string2ull(ms_part)?;
    let (seq, seq_given) = match seq_part {
        Some(b"*") if syn.seq_star => (0, false),
        Some(s) => (string2ull(s)?, true),
        None => (syn.missing_seq, true),
    };
    Some(ParsedId { id: StreamId::new(ms, seq), seq_given })
}

/// Redis's string2ull: string2ll first (negative values refused), then C's strtoull, which
/// skips leading white space, takes an optional sign (a `-` wraps the value around), and must
/// consume the whole string without overflowing.
pub fn string2ull(s: &[u8]) -> Option<u64> {
    if let Some(v) = crate::util::num::parse_i64(s) {
        return (v >= 0).then_some(v as u64);
    }
    let mut i = 0;
    while i < s.len() && matches!(s[i], b' ' | b'\t' | b'\n' | b'\x0b' | b'\x0c' | b'\r') {
        i += 1;
    }
    let mut neg = false;
    if i < s.len() && (s[i] == b'+' || s[i] == b'-') {
        neg = s[i] == b'-';
        i += 1;
    }
    let digits = &s[i..];
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut v: u64 = 0;
    for &c in digits {
        v = v.checked_mul(10)?.checked_add(u64::from(c - b'0'))?;
    }
    Some(if neg { v.wrapping_neg() } else { v })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PLAIN: IdSyntax = IdSyntax { missing_seq: 0, strict: false, seq_star: false };
    const STRICT: IdSyntax = IdSyntax { missing_seq: 0, strict: true, seq_star: false };
    const XADD: IdSyntax = IdSyntax { missing_seq: 0, strict: true, seq_star: true };

    fn id(s: &str, syn: IdSyntax) -> Option<(u64, u64, bool)> {
        parse(s.as_bytes(), syn).map(|p| (p.id.ms, p.id.seq, p.seq_given))
    }

    #[test]
    fn parses_like_redis() {
        assert_eq!(id("1-2", PLAIN), Some((1, 2, true)));
        assert_eq!(id("5", IdSyntax { missing_seq: u64::MAX, ..PLAIN }), Some((5, u64::MAX, true)));
        assert_eq!(id("-", PLAIN), Some((0, 0, true)));
        assert_eq!(id("+", PLAIN), Some((u64::MAX, u64::MAX, true)));
        assert_eq!(id("-", STRICT), None);
        assert_eq!(id("+", STRICT), None);
        assert_eq!(id("7-*", XADD), Some((7, 0, false)));
        assert_eq!(id("7-*", STRICT), None);
        assert_eq!(id("", PLAIN), None);
        assert_eq!(id("1-", PLAIN), None);
        assert_eq!(id("-1", PLAIN), None);
        assert_eq!(id("1-2-3", PLAIN), None);
        assert_eq!(id("abc", PLAIN), None);
        // strtoull's leniency.
        assert_eq!(id(" 12", PLAIN), Some((12, 0, true)));
        assert_eq!(id("+12", PLAIN), Some((12, 0, true)));
        assert_eq!(id("007-01", PLAIN), Some((7, 1, true)));
        assert_eq!(id("1--05", PLAIN), Some((1, 5u64.wrapping_neg(), true)));
        assert_eq!(id("1--5", PLAIN), None);
        assert_eq!(id("18446744073709551615-18446744073709551615", PLAIN), Some((u64::MAX, u64::MAX, true)));
        assert_eq!(id("18446744073709551616", PLAIN), None);
        assert_eq!(id("3\0junk", PLAIN), Some((3, 0, true)));
        assert!(parse(&[b'1'; 128], PLAIN).is_none());
    }

    #[test]
    fn incr_decr_and_order() {
        assert_eq!(StreamId::new(1, u64::MAX).incr(), Some(StreamId::new(2, 0)));
        assert_eq!(StreamId::MAX.incr(), None);
        assert_eq!(StreamId::new(2, 0).decr(), Some(StreamId::new(1, u64::MAX)));
        assert_eq!(StreamId::MIN.decr(), None);
        assert!(StreamId::new(1, 5) < StreamId::new(2, 0));
        let x = StreamId::new(0x0102, 0x0304);
        assert_eq!(StreamId::from_be_bytes(&x.to_be_bytes()), x);
        assert_eq!(x.to_string(), "258-772");
    }
}
