//! Tokenizer for inline commands with the exact semantics of Redis's
//! `sdssplitargs` (sds.c).
//!
//! * Tokens are separated by C `isspace` bytes (space, `\t`, `\n`, `\v`,
//!   `\f`, `\r`). An unquoted token, however, only ends at space, `\t`,
//!   `\n`, `\r` or end of input, so `a\x0bb` (vertical tab) is one token.
//! * `"double quotes"` support the escapes `\n \r \t \b \a \xHH` and turn any
//!   other `\c` into `c` (so `\\` and `\"` work).
//! * `'single quotes'` only support `\'`; every other byte is literal.
//! * A closing quote must be followed by whitespace or the end of the input,
//!   otherwise the whole line is rejected (`None`), as are unterminated
//!   quotes.
//! * Quotes may start in the middle of a token: `foo"bar"` yields `foobar`.
//!
//! Redis works on a NUL-terminated C string, so parsing stops at the first
//! NUL byte; this function does the same (everything after a NUL is
//! ignored). An empty or all-blank line yields `Some(vec![])`.

/// C `isspace` in the "C" locale.
#[inline]
fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

#[inline]
fn hex_val(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Splits an inline command line into arguments, or returns `None` for
/// unbalanced quotes.
pub fn split_args(line: &[u8]) -> Option<Vec<Vec<u8>>> {
    // C-string semantics: the input ends at the first NUL.
    let line = match memchr::memchr(0, line) {
        Some(n) => &line[..n],
        None => line,
    };
    // Byte at `i`, NUL past the end.
    let at = |i: usize| -> u8 { line.get(i).copied().unwrap_or(0) };

    let mut args = Vec::new();
    let mut p = 0usize;
    loop {
        while p < line.len() && is_space(line[p]) {
            p += 1;
        }
        if p >= line.len() {
            return Some(args);
        }
        let mut current = Vec::new();
        let mut in_dq = false;
        let mut in_sq = false;
        let mut done = false;
        while !done {
            let c = at(p);
            if in_dq {
                if c == b'\\' && at(p + 1) == b'x' {
                    if let (Some(hi), Some(lo)) = (hex_val(at(p + 2)), hex_val(at(p + 3))) {
                        current.push(hi * 16 + lo);
                        p += 3;
                    } else {
                        // "\x" not followed by two hex digits: plain escape.
                        current.push(b'x');
                        p += 1;
                    }
                } else if c == b'\\' && at(p + 1) != 0 {
                    p += 1;
                    current.push(match at(p) {
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        b'b' => 0x08,
                        b'a' => 0x07,
                        other => other,
                    });
                } else if c == b'"' {
                    let next = at(p + 1);
                    if next != 0 && !is_space(next) {
                        return None;
                    }
                    done = true;
                } else if c == 0 {
                    return None; // unterminated quotes
                } else {
                    current.push(c);
                }
            } else if in_sq {
                if c == b'\\' && at(p + 1) == b'\'' {
                    p += 1;
                    current.push(b'\'');
                } else if c == b'\'' {
                    let next = at(p + 1);
                    if next != 0 && !is_space(next) {
                        return None;
                    }
                    done = true;
                } else if c == 0 {
                    return None; // unterminated quotes
                } else {
                    current.push(c);
                }
            } else {
                match c {
                    b' ' | b'\n' | b'\r' | b'\t' | 0 => done = true,
                    b'"' => in_dq = true,
                    b'\'' => in_sq = true,
                    _ => current.push(c),
                }
            }
            if p < line.len() {
                p += 1;
            }
        }
        args.push(current);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(s: &[u8]) -> Option<Vec<Vec<u8>>> {
        split_args(s)
    }

    fn ok(s: &[u8]) -> Vec<Vec<u8>> {
        split(s).expect("should parse")
    }

    fn v(items: &[&[u8]]) -> Vec<Vec<u8>> {
        items.iter().map(|x| x.to_vec()).collect()
    }

    #[test]
    fn empty_and_blank() {
        assert_eq!(ok(b""), Vec::<Vec<u8>>::new());
        assert_eq!(ok(b"   \t \r\n"), Vec::<Vec<u8>>::new());
        assert_eq!(ok(b"\x0b\x0c"), Vec::<Vec<u8>>::new());
    }

    #[test]
    fn plain_tokens() {
        assert_eq!(ok(b"set foo bar"), v(&[b"set", b"foo", b"bar"]));
        assert_eq!(ok(b"  set   foo\tbar  "), v(&[b"set", b"foo", b"bar"]));
        assert_eq!(ok(b"PING\r\n"), v(&[b"PING"]));
        assert_eq!(ok(b"a\nb\rc"), v(&[b"a", b"b", b"c"]));
        // vertical tab / form feed only separate *between* tokens
        assert_eq!(ok(b"a\x0bb"), v(&[b"a\x0bb"]));
        assert_eq!(ok(b"a \x0bb"), v(&[b"a", b"b"]));
        assert_eq!(ok(b"a\x0c b"), v(&[b"a\x0c", b"b"]));
        // backslashes are literal outside quotes
        assert_eq!(ok(b"a\\nb"), v(&[b"a\\nb"]));
    }

    #[test]
    fn double_quotes() {
        assert_eq!(ok(b"set \"foo bar\" x"), v(&[b"set", b"foo bar", b"x"]));
        assert_eq!(ok(b"\"\""), v(&[b""]));
        assert_eq!(ok(b"\"\" \"\""), v(&[b"", b""]));
        assert_eq!(ok(b"\"\\n\\r\\t\\b\\a\\\\\\\"\\q\""), v(&[b"\n\r\t\x08\x07\\\"q"]));
        assert_eq!(ok(b"\"\\x41\\x7a\\xff\\x00\""), v(&[b"Az\xff\x00"]));
        assert_eq!(ok(b"\"\\xAbC\""), v(&[b"\xabC"]));
        // \x without two hex digits is just 'x'
        assert_eq!(ok(b"\"\\xg1\""), v(&[b"xg1"]));
        assert_eq!(ok(b"\"\\x4\""), v(&[b"x4"]));
        // quotes can start mid-token
        assert_eq!(ok(b"foo\"bar baz\""), v(&[b"foobar baz"]));
        // closing quote followed by whitespace or end
        assert_eq!(ok(b"\"a\"\tb"), v(&[b"a", b"b"]));
        assert_eq!(ok(b"\"a\"\x0bb"), v(&[b"a", b"b"]));
    }

    #[test]
    fn single_quotes() {
        assert_eq!(ok(b"'foo bar'"), v(&[b"foo bar"]));
        assert_eq!(ok(b"'a\\'b'"), v(&[b"a'b"]));
        assert_eq!(ok(b"'\\n\\x41\"'"), v(&[b"\\n\\x41\""]));
        assert_eq!(ok(b"''"), v(&[b""]));
        assert_eq!(ok(b"x'y z'"), v(&[b"xy z"]));
        assert_eq!(ok(b"'a\\b'"), v(&[b"a\\b"]));
        // a backslash right before the closing quote escapes it
        assert_eq!(split(b"'a\\'"), None);
        assert_eq!(ok(b"'a\\' '"), v(&[b"a' "]));
    }

    #[test]
    fn unbalanced() {
        assert_eq!(split(b"\"foo"), None);
        assert_eq!(split(b"'foo"), None);
        assert_eq!(split(b"\"foo\"bar"), None);
        assert_eq!(split(b"'foo'bar"), None);
        assert_eq!(split(b"set \"a\"\"b\""), None);
        assert_eq!(split(b"\"foo\\\""), None);
        assert_eq!(split(b"\"\\"), None);
        assert_eq!(split(b"'\\'"), None);
    }

    #[test]
    fn stops_at_nul() {
        assert_eq!(ok(b"get a\0b"), v(&[b"get", b"a"]));
        assert_eq!(split(b"\"ab\0c\""), None);
        assert_eq!(ok(b"\0set x"), Vec::<Vec<u8>>::new());
    }

    #[test]
    fn high_bytes_are_not_space() {
        assert_eq!(ok(b"\xa0x \x85"), v(&[b"\xa0x", b"\x85"]));
    }
}
