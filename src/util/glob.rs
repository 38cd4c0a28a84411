//! Glob-style pattern matching with the exact semantics of Redis's
//! `stringmatchlen` (util.c), as used by KEYS, SCAN MATCH, PSUBSCRIBE,
//! CONFIG GET, ACL key patterns and friends.
//!
//! Supported syntax: `*` (any run of bytes), `?` (any single byte),
//! `[...]` classes with `^` negation, `a-z` ranges (reversed ranges such as
//! `z-a` are accepted), `\` escapes both inside and outside classes, and
//! ASCII-only case folding when `nocase` is set.
//!
//! Quirks that are reproduced on purpose:
//! * an unterminated class (`[abc` at the end of the pattern) is treated as
//!   if it was closed at the end of the pattern, so `[^` matches any byte;
//! * inside a class an escaped byte is always compared case-sensitively;
//! * range bounds are compared as C `char`, which is signed on x86-64, so a
//!   byte >= 0x80 sorts *below* ASCII inside ranges; with `nocase` the
//!   bounds and the subject byte also go through glibc's `tolower`, which
//!   maps negative `char`s other than -1 back to 128..254;
//! * reads one past the end of the pattern see a NUL byte (Redis patterns are
//!   NUL-terminated `sds` strings).
//!
//! Protections: the "skip longer matches" short-circuit keeps patterns such
//! as `*a*a*a*...b` linear-ish instead of exponential, and the recursion
//! depth is capped (CVE-2024-31228): a pattern needing more than
//! [`MAX_NESTING`] nested `*` expansions simply fails to match.

/// Maximum nesting of recursive `*` expansions before the match is declared
/// failed (the limit introduced upstream for CVE-2024-31228).
pub const MAX_NESTING: u32 = 1000;

/// Returns true if `string` matches the glob `pattern`.
pub fn glob_match(pattern: &[u8], string: &[u8], nocase: bool) -> bool {
    let mut skip_longer = false;
    match_impl(pattern, string, nocase, &mut skip_longer, 0)
}

/// Byte at `i`, or NUL when reading past the end (C string semantics).
#[inline]
fn at(s: &[u8], i: usize) -> u8 {
    s.get(i).copied().unwrap_or(0)
}

/// glibc's `tolower` in the "C" locale applied to a (possibly negative)
/// `char` value: ASCII letters are folded, negative values other than `EOF`
/// (-1) come back as their unsigned byte value, everything else unchanged.
#[inline]
fn lower(c: i32) -> i32 {
    if (i32::from(b'A')..=i32::from(b'Z')).contains(&c) {
        c + 32
    } else if (-128..=-2).contains(&c) {
        c + 256
    } else {
        c
    }
}

/// A byte viewed as a signed C `char` promoted to `int`.
#[inline]
fn schar(b: u8) -> i32 {
    i32::from(b as i8)
}

#[inline]
fn eq_byte(a: u8, b: u8, nocase: bool) -> bool {
    if nocase {
        lower(schar(a)) == lower(schar(b))
    } else {
        a == b
    }
}

fn match_impl(pattern: &[u8], string: &[u8], nocase: bool, skip_longer: &mut bool, nesting: u32) -> bool {
    if nesting > MAX_NESTING {
        return false;
    }
    let plen = pattern.len();
    let slen = string.len();
    let mut p = 0usize; // index into pattern; remaining = plen - p
    let mut s = 0usize; // index into string; remaining = slen - s

    while p < plen && s < slen {
        match pattern[p] {
            b'*' => {
                while p < plen && at(pattern, p + 1) == b'*' {
                    p += 1;
                }
                if plen - p == 1 {
                    return true;
                }
                while s < slen {
                    if match_impl(&pattern[p + 1..], &string[s..], nocase, skip_longer, nesting + 1) {
                        return true;
                    }
                    if *skip_longer {
                        return false;
                    }
                    s += 1;
                }
                // The rest of the pattern matched nowhere in the remaining
                // string: earlier stars can't help by consuming more.
                *skip_longer = true;
                return false;
            }
            b'?' => {
                s += 1;
            }
            b'[' => {
                p += 1;
                let not = at(pattern, p) == b'^';
                if not {
                    p += 1;
                }
                let c = string[s];
                let mut matched = false;
                loop {
                    let rem = plen.saturating_sub(p);
                    let pc = at(pattern, p);
                    if pc == b'\\' && rem >= 2 {
                        p += 1;
                        if pattern[p] == c {
                            matched = true;
                        }
                    } else if pc == b']' {
                        break;
                    } else if rem == 0 {
                        // Unterminated class: step back so that the common
                        // advance below lands exactly at the pattern end.
                        p -= 1;
                        break;
                    } else if rem >= 3 && pattern[p + 1] == b'-' {
                        let mut start = schar(pattern[p]);
                        let mut end = schar(pattern[p + 2]);
                        let mut ch = schar(c);
                        if start > end {
                            std::mem::swap(&mut start, &mut end);
                        }
                        if nocase {
                            start = lower(start);
                            end = lower(end);
                            ch = lower(ch);
                        }
                        p += 2;
                        if ch >= start && ch <= end {
                            matched = true;
                        }
                    } else if eq_byte(pc, c, nocase) {
                        matched = true;
                    }
                    p += 1;
                }
                if not {
                    matched = !matched;
                }
                if !matched {
                    return false;
                }
                s += 1;
            }
            first => {
                let mut pc = first;
                if first == b'\\' && plen - p >= 2 {
                    p += 1;
                    pc = pattern[p];
                }
                if !eq_byte(pc, string[s], nocase) {
                    return false;
                }
                s += 1;
            }
        }
        p += 1;
        if s == slen {
            while at(pattern, p) == b'*' {
                p += 1;
            }
            break;
        }
    }
    p >= plen && s == slen
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    fn m(p: &str, s: &str) -> bool {
        glob_match(p.as_bytes(), s.as_bytes(), false)
    }
    fn mi(p: &str, s: &str) -> bool {
        glob_match(p.as_bytes(), s.as_bytes(), true)
    }

    #[test]
    fn literals_and_empty() {
        assert!(m("", ""));
        assert!(!m("", "a"));
        assert!(!m("a", ""));
        assert!(m("abc", "abc"));
        assert!(!m("abc", "abd"));
        assert!(!m("abc", "ab"));
        assert!(!m("ab", "abc"));
        assert!(!m("abc", "ABC"));
        assert!(mi("abc", "ABC"));
        assert!(mi("HeLLo", "hello"));
    }

    #[test]
    fn star_and_question() {
        // Quirk: an empty subject never matches, not even "*" (KEYS
        // special-cases a lone "*" itself).
        assert!(!m("*", ""));
        assert!(!m("**", ""));
        assert!(m("*", "anything"));
        assert!(m("***", "x"));
        assert!(m("a*", "a"));
        assert!(m("a*", "abc"));
        assert!(!m("a*", "bac"));
        assert!(m("*c", "abc"));
        assert!(m("a*c", "ac"));
        assert!(m("a*c", "abbbbc"));
        assert!(!m("a*c", "abbbbcd"));
        assert!(m("a*b*c", "a-b-c"));
        assert!(m("h?llo", "hello"));
        assert!(m("h?llo", "hallo"));
        assert!(!m("h?llo", "hllo"));
        assert!(!m("?", ""));
        assert!(m("??", "ab"));
        assert!(m("*?", "a"));
        assert!(!m("*?", ""));
        assert!(m("user:*:name", "user:1000:name"));
        assert!(!m("user:*:name", "user:1000:email"));
    }

    #[test]
    fn classes() {
        assert!(m("h[ae]llo", "hello"));
        assert!(m("h[ae]llo", "hallo"));
        assert!(!m("h[ae]llo", "hillo"));
        assert!(!m("h[^e]llo", "hello"));
        assert!(m("h[^e]llo", "hallo"));
        assert!(m("h[a-b]llo", "hbllo"));
        assert!(!m("h[a-b]llo", "hcllo"));
        // reversed range
        assert!(m("h[b-a]llo", "hallo"));
        assert!(m("[z-a]", "m"));
        assert!(m("[0-9]*", "42abc"));
        assert!(!m("[0-9]*", "x42"));
        // empty class never matches, negated empty class matches anything
        assert!(!m("[]", "a"));
        assert!(m("[^]", "a"));
        assert!(!m("[]a]", "]"));
        // a leading '-' is literal; "[a-]" is the range a..']' (then the
        // class is unterminated), so it does not match '-'
        assert!(m("[-a]", "-"));
        assert!(!m("[a-]", "-"));
        assert!(m("[a-]", "^"));
        // class needs a subject byte
        assert!(!m("[a]", ""));
        // nocase in classes and ranges
        assert!(mi("[A-C]", "b"));
        assert!(mi("[a-c]", "B"));
        assert!(!m("[A-C]", "b"));
        assert!(mi("[X]", "x"));
        // escaped byte inside a class is compared case-sensitively
        assert!(!mi("[\\X]", "x"));
        assert!(mi("[\\X]", "X"));
        assert!(m("[\\]]", "]"));
        assert!(m("[\\-]", "-"));
        assert!(m("[a\\-z]", "-"));
        assert!(!m("[a\\-z]", "b"));
        assert!(m("[\\^]", "^"));
    }

    #[test]
    fn unterminated_classes() {
        assert!(!m("[", "a"));
        assert!(m("[^", "a"));
        assert!(m("[abc", "b"));
        assert!(!m("[abc", "d"));
        assert!(m("[^abc", "d"));
        assert!(m("a[b", "ab"));
        assert!(!m("a[b", "abx"));
        assert!(m("[a-", "-"));
        assert!(m("[a-", "a"));
        assert!(!m("[a-", "b"));
        assert!(m("[\\", "\\"));
        assert!(!m("x[", "x"));
        assert!(!m("x[", "xy"));
    }

    #[test]
    fn escapes() {
        assert!(m("\\*", "*"));
        assert!(!m("\\*", "a"));
        assert!(m("\\?", "?"));
        assert!(!m("\\?", "a"));
        assert!(m("\\[a]", "[a]"));
        assert!(m("a\\\\b", "a\\b"));
        // trailing backslash matches a literal backslash
        assert!(m("a\\", "a\\"));
        assert!(!m("a\\", "a"));
        assert!(m("\\a", "a"));
        assert!(mi("\\A", "a"));
    }

    #[test]
    fn trailing_stars_after_exhausted_string() {
        assert!(m("a*", "a"));
        assert!(m("a***", "a"));
        assert!(m("a?*", "ab"));
        assert!(!m("a*b", "a"));
        assert!(!m("a*\\", "a"));
    }

    #[test]
    fn high_bytes_are_signed_chars_in_ranges() {
        // 0x80..0xff are negative as C chars, so [a-\xff] is really [\xff-a]
        // and matches control characters and '0'..'9' too.
        assert!(glob_match(b"[a-\xff]", b"5", false));
        assert!(glob_match(b"[a-\xff]", b"\xff", false));
        assert!(!glob_match(b"[a-\xff]", b"\x80", false));
        assert!(!glob_match(b"[a-\xff]", b"b", false));
        assert!(glob_match(b"[\x80-\xff]", b"\x90", false));
        assert!(!glob_match(b"[\x80-\xff]", b"a", false));
        assert!(glob_match(b"\xe9*", b"\xe9t\xe9", true));
        // no case folding outside ASCII
        assert!(!glob_match(b"\xc9", b"\xe9", true));
        // with nocase, glibc's tolower() turns negative chars (except EOF,
        // i.e. 0xff) back into 128..254, which changes range membership
        assert!(glob_match(b"[\x80-a]", b"\x90", false));
        assert!(!glob_match(b"[\x80-a]", b"\x90", true));
        assert!(glob_match(b"[\xff-a]", b"5", true));
    }

    #[test]
    fn binary_safe() {
        assert!(glob_match(b"a\0b", b"a\0b", false));
        assert!(glob_match(b"*\0*", b"xx\0yy", false));
        assert!(!glob_match(b"a\0b", b"a\0c", false));
        assert!(glob_match(b"[\0]", b"\0", false));
    }

    #[test]
    fn pathological_patterns_are_fast() {
        let start = Instant::now();
        let s = "a".repeat(10_000);
        let pat = format!("{}b", "*a".repeat(50));
        assert!(!m(&pat, &s));
        let pat = format!("{}*b", "a*".repeat(30));
        assert!(!m(&pat, &s));
        let pat = "*?".repeat(200);
        assert!(!m(&pat, "short"));
        let s2 = "ab".repeat(5_000);
        assert!(!m("*a*b*a*b*a*b*a*b*c", &s2));
        assert!(m("*a*b*a*b*a*b*a*b", &s2));
        assert!(start.elapsed() < Duration::from_secs(5), "took {:?}", start.elapsed());
    }

    #[test]
    fn nesting_limit() {
        // 1000 nested stars are fine ...
        let s = "a".repeat(1100);
        let pat = "a*".repeat(1000);
        assert!(m(&pat, &s));
        // ... but a pattern needing more than MAX_NESTING recursions fails.
        let pat = "*a".repeat(1001);
        assert!(m(&"*a".repeat(1000), &s));
        assert!(!m(&pat, &s));
        let pat = "a*".repeat(1002);
        assert!(!m(&pat, &s));
        // Consecutive stars collapse and don't count.
        let pat = format!("{}a", "*".repeat(5000));
        assert!(m(&pat, "xxa"));
    }

    #[test]
    fn matches_redis_test_suite_examples() {
        // From tests/unit/keyspace.tcl and pubsub tests.
        assert!(m("foo*", "foo_a"));
        assert!(m("foo*", "foo_b"));
        assert!(!m("foo*", "key_x"));
        assert!(m("a*", "a"));
        assert!(m("__keyspace@*__:*", "__keyspace@9__:foo"));
        assert!(m("*[0-9]", "key5"));
        assert!(m("*[^0-9]", "key_"));
    }
}
