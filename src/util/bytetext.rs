//! Raw bytes inside error texts. Redis echoes arguments into its errors as C strings: every
//! byte as it came (`\xff` stays `\xff`), up to the first NUL. Ferrous builds error texts as
//! Rust strings, so an argument is embedded with [`encode`] — valid UTF-8 as it is, any other
//! byte as an escape — and the reply encoder turns the escapes back into the bytes
//! ([`decode_into`]). The escape is lossless and cannot be confused with input: the escape
//! character itself, when it occurs in an argument, is escaped too.

/// Starts an escape (a noncharacter, never meaningful in text).
const ESC: char = '\u{FDD0}';
/// An escaped byte `b` is `ESC` followed by `BYTE_BASE + b`.
const BYTE_BASE: u32 = 0xE000;

/// `bytes` as text that [`decode_into`] turns back into exactly these bytes.
pub fn encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            if c == ESC {
                out.push(ESC);
            }
            out.push(c);
        }
        for &b in chunk.invalid() {
            out.push(ESC);
            out.push(char::from_u32(BYTE_BASE + b as u32).unwrap_or(char::REPLACEMENT_CHARACTER));
        }
    }
    out
}

/// An argument as Redis's `%s` (or `%.<max>s`) prints it: up to its first NUL, at most `max`
/// bytes, every byte kept.
pub fn c_string(arg: &[u8], max: usize) -> String {
    encode(c_bytes(arg, max))
}

/// The bytes C's string functions see: up to the first NUL.
pub fn c_str(arg: &[u8]) -> &[u8] {
    memchr::memchr(0, arg).map_or(arg, |end| &arg[..end])
}

/// The bytes C's string functions see: up to the first NUL, at most `max`.
pub fn c_bytes(arg: &[u8], max: usize) -> &[u8] {
    let s = c_str(arg);
    &s[..s.len().min(max)]
}

/// Whether `s` holds escapes (most error texts do not: they are copied as they are).
pub fn has_escapes(s: &str) -> bool {
    s.contains(ESC)
}

/// Append the bytes `s` stands for.
pub fn decode_into(s: &str, out: &mut Vec<u8>) {
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != ESC {
            let mut b = [0u8; 4];
            out.extend_from_slice(c.encode_utf8(&mut b).as_bytes());
            continue;
        }
        match chars.next() {
            Some(ESC) => out.extend_from_slice(ESC.encode_utf8(&mut [0u8; 4]).as_bytes()),
            Some(e) if (BYTE_BASE..BYTE_BASE + 256).contains(&(e as u32)) => out.push((e as u32 - BYTE_BASE) as u8),
            // Not produced by `encode`: keep what is there.
            Some(e) => {
                out.extend_from_slice(ESC.encode_utf8(&mut [0u8; 4]).as_bytes());
                out.extend_from_slice(e.encode_utf8(&mut [0u8; 4]).as_bytes());
            }
            None => out.extend_from_slice(ESC.encode_utf8(&mut [0u8; 4]).as_bytes()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(b: &[u8]) {
        let mut out = Vec::new();
        decode_into(&encode(b), &mut out);
        assert_eq!(out, b);
    }

    #[test]
    fn any_bytes_survive() {
        round_trip(b"plain");
        round_trip(b"\xff\xfe return 1");
        round_trip("caf\u{e9} \u{FDD0}x \u{E0FF}".as_bytes());
        round_trip(b"\xef\xb7\x90\xee\x80\x80");
        for b in 0..=255u8 {
            round_trip(&[b, b'a', b]);
        }
        assert!(!has_escapes(&encode(b"plain")));
    }

    #[test]
    fn c_strings_stop_at_nul() {
        assert_eq!(c_bytes(b"k\x00\r\n", 128), b"k");
        assert_eq!(c_bytes(b"abcdef", 3), b"abc");
        let mut out = Vec::new();
        decode_into(&c_string(b"\xffx\x00y", 128), &mut out);
        assert_eq!(out, b"\xffx");
    }
}
