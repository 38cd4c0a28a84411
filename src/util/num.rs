//! Number parsing and formatting with the exact rules of Redis 7.0.
//!
//! * [`parse_i64`] is `string2ll`: optional `-`, no `+`, no spaces, no
//!   leading zeros (only `"0"` itself; `"-0"` is rejected), at most 20 bytes,
//!   overflow rejected.
//! * [`parse_f64`] is `string2d` (what `getDoubleFromObject` accepts): the
//!   whole string must be a glibc `strtod` number — decimal, hexadecimal
//!   (`0x1.8p3`), `inf`/`infinity` in any case, with optional sign — with no
//!   leading whitespace; NaN is rejected, and so are overflow to ±inf and
//!   underflow to zero (the `ERANGE` cases). Subnormal results are accepted.
//! * [`LongDouble`] is a software model of the x86-64 80-bit `long double`
//!   that Redis uses for INCRBYFLOAT / HINCRBYFLOAT: [`LongDouble::parse`]
//!   is `string2ld` (strtold, at most 5119 bytes), [`LongDouble::add`] is one
//!   x87 addition (64-bit mantissa, round-to-nearest-even) and
//!   [`LongDouble::format_human`] is `ld2string(.., LD_STR_HUMAN)` (`%.17Lf`
//!   with trailing zeros, the dot and the sign of `-0` removed). Using these
//!   three reproduces Redis's replies bit for bit, including its artefacts
//!   (`1000000.1` → `1000000.10000000000002274`, `1e400` is accepted).
//! * [`parse_long_double`] / [`format_long_double_human`] are the `f64`
//!   flavoured equivalents. `parse_long_double` rounds the exact `string2ld`
//!   value to `f64`, so values outside the `f64` range but inside the `long
//!   double` range come back as ±inf or ±0 (Redis would accept them and keep
//!   computing). `format_long_double_human` first picks the decimal the
//!   `f64` most plausibly stands for (its shortest round-trip digits, or 15
//!   significant digits when that is within 2 ulps, so that the `f64` sum
//!   `0.1 + 0.2` prints `0.3` like Redis's long double sum does), then
//!   formats that decimal exactly as Redis would format the `long double`
//!   parsed from it. It agrees with Redis on typical inputs, but a chain of
//!   `f64` operations can still differ from the `long double` chain in the
//!   last printed digits; prefer [`LongDouble`] where exactness matters.
//! * [`format_double`] is `addReplyDouble`'s `%.17g` (with `inf`/`-inf`).
//! * [`format_i64`] appends a decimal integer.

use std::cmp::Ordering;
use std::io::Write as _;

/// Maximum accepted length (exclusive) of a `string2ll` input (`LONG_STR_SIZE`).
const LONG_STR_SIZE: usize = 21;
/// Buffer size used by `string2ld` (`MAX_LONG_DOUBLE_CHARS`); inputs must be
/// strictly shorter.
pub const MAX_LONG_DOUBLE_CHARS: usize = 5 * 1024;

// ---------------------------------------------------------------------------
// Integers
// ---------------------------------------------------------------------------

/// C's `strtol(s, NULL, 10)` on a 64-bit long (what Redis's `atoi`/`atol` calls read): leading
/// white space, a sign, then the digits up to the first other byte; 0 when there are none,
/// and the nearest bound when they overflow.
pub fn atoi(s: impl AsRef<[u8]>) -> i64 {
    let s = s.as_ref();
    let mut i = s.iter().take_while(|c| matches!(c, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)).count();
    let neg = s.get(i) == Some(&b'-');
    if matches!(s.get(i), Some(b'-' | b'+')) {
        i += 1;
    }
    let mut n: i64 = 0;
    for &d in s[i..].iter().take_while(|c| c.is_ascii_digit()) {
        let d = (d - b'0') as i64;
        n = if neg { n.saturating_mul(10).saturating_sub(d) } else { n.saturating_mul(10).saturating_add(d) };
    }
    n
}

/// Parses a signed 64-bit integer exactly like Redis's `string2ll`.
pub fn parse_i64(s: &[u8]) -> Option<i64> {
    if s.is_empty() || s.len() >= LONG_STR_SIZE {
        return None;
    }
    if s == b"0" {
        return Some(0);
    }
    let (negative, digits) = match s[0] {
        b'-' => (true, &s[1..]),
        _ => (false, s),
    };
    match digits.first() {
        Some(b'1'..=b'9') => {}
        _ => return None,
    }
    let mut v: u64 = 0;
    for &c in digits {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(u64::from(c - b'0'))?;
    }
    if negative {
        if v > i64::MAX as u64 + 1 {
            return None;
        }
        Some((v as i64).wrapping_neg())
    } else {
        i64::try_from(v).ok()
    }
}

/// Appends the decimal representation of `v`.
pub fn format_i64(v: i64, out: &mut Vec<u8>) {
    let mut buf = itoa::Buffer::new();
    out.extend_from_slice(buf.format(v).as_bytes());
}

// ---------------------------------------------------------------------------
// strtod grammar
// ---------------------------------------------------------------------------

/// A string that glibc's `strtod` would consume completely.
#[derive(Debug, Clone, Copy)]
struct Scanned<'a> {
    neg: bool,
    kind: ScanKind<'a>,
}

#[derive(Debug, Clone, Copy)]
enum ScanKind<'a> {
    Inf,
    /// `int.frac` digits (decimal or hex) and the exponent (base 10 for
    /// decimal, base 2 for hex), saturated to ±`EXP_SATURATE`.
    Num {
        hex: bool,
        int: &'a [u8],
        frac: &'a [u8],
        exp: i64,
    },
}

const EXP_SATURATE: i64 = 1_000_000_000;

impl ScanKind<'_> {
    fn mantissa_is_zero(&self) -> bool {
        match self {
            ScanKind::Inf => false,
            ScanKind::Num { int, frac, .. } => int.iter().chain(frac.iter()).all(|&c| c == b'0'),
        }
    }
}

/// Recognises exactly the strings `strtod` parses completely (leading
/// whitespace excluded, as Redis rejects it). NaN is rejected here.
fn scan_float(s: &[u8]) -> Option<Scanned<'_>> {
    let (neg, rest) = match s.first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    if rest.eq_ignore_ascii_case(b"inf") || rest.eq_ignore_ascii_case(b"infinity") {
        return Some(Scanned { neg, kind: ScanKind::Inf });
    }
    let hex = rest.len() > 2 && rest[0] == b'0' && (rest[1] | 0x20) == b'x';
    let body = if hex { &rest[2..] } else { rest };
    let is_digit = |c: u8| {
        if hex {
            c.is_ascii_hexdigit()
        } else {
            c.is_ascii_digit()
        }
    };
    let mut i = 0;
    while i < body.len() && is_digit(body[i]) {
        i += 1;
    }
    let int = &body[..i];
    let mut frac: &[u8] = &[];
    if i < body.len() && body[i] == b'.' {
        let start = i + 1;
        i = start;
        while i < body.len() && is_digit(body[i]) {
            i += 1;
        }
        frac = &body[start..i];
    }
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    let mut exp: i64 = 0;
    if i < body.len() {
        let marker = body[i] | 0x20;
        if marker != if hex { b'p' } else { b'e' } {
            return None;
        }
        i += 1;
        let mut eneg = false;
        if i < body.len() && (body[i] == b'+' || body[i] == b'-') {
            eneg = body[i] == b'-';
            i += 1;
        }
        if i >= body.len() {
            return None;
        }
        for &c in &body[i..] {
            if !c.is_ascii_digit() {
                return None;
            }
            exp = (exp * 10 + i64::from(c - b'0')).min(EXP_SATURATE);
        }
        if eneg {
            exp = -exp;
        }
    }
    Some(Scanned { neg, kind: ScanKind::Num { hex, int, frac, exp } })
}

// ---------------------------------------------------------------------------
// Minimal arbitrary precision unsigned integer
// ---------------------------------------------------------------------------

/// Little-endian base 2^32 natural number, always trimmed (no high zero limbs).
#[derive(Clone, Debug, PartialEq, Eq)]
struct Big {
    limbs: Vec<u32>,
}

impl Big {
    fn from_u64(v: u64) -> Big {
        let mut b = Big { limbs: vec![v as u32, (v >> 32) as u32] };
        b.trim();
        b
    }

    fn trim(&mut self) {
        while self.limbs.last() == Some(&0) {
            self.limbs.pop();
        }
    }

    fn is_zero(&self) -> bool {
        self.limbs.is_empty()
    }

    fn bit_len(&self) -> i64 {
        match self.limbs.last() {
            None => 0,
            Some(&top) => (self.limbs.len() as i64) * 32 - i64::from(top.leading_zeros()),
        }
    }

    fn bit(&self, i: i64) -> bool {
        if i < 0 {
            return false;
        }
        let (w, b) = ((i / 32) as usize, (i % 32) as u32);
        self.limbs.get(w).is_some_and(|&l| (l >> b) & 1 == 1)
    }

    /// Whether any bit at a position strictly below `i` is set.
    fn any_below(&self, i: i64) -> bool {
        if i <= 0 {
            return false;
        }
        let (w, b) = ((i / 32) as usize, (i % 32) as u32);
        if self.limbs.iter().take(w).any(|&l| l != 0) {
            return true;
        }
        b > 0 && self.limbs.get(w).is_some_and(|&l| l & ((1u32 << b) - 1) != 0)
    }

    /// Bits `[n, n + 64)` as a `u64`.
    fn bits_from(&self, n: i64) -> u64 {
        let mut r = 0u64;
        for k in 0..64 {
            if self.bit(n + k) {
                r |= 1 << k;
            }
        }
        r
    }

    fn mul_small(&mut self, m: u32) {
        let mut carry = 0u64;
        for l in self.limbs.iter_mut() {
            let v = u64::from(*l) * u64::from(m) + carry;
            *l = v as u32;
            carry = v >> 32;
        }
        if carry != 0 {
            self.limbs.push(carry as u32);
        }
        self.trim();
    }

    fn add_small(&mut self, a: u32) {
        let mut carry = u64::from(a);
        for l in self.limbs.iter_mut() {
            if carry == 0 {
                break;
            }
            let v = u64::from(*l) + carry;
            *l = v as u32;
            carry = v >> 32;
        }
        if carry != 0 {
            self.limbs.push(carry as u32);
        }
    }

    fn mul_pow10(&mut self, mut n: u64) {
        while n >= 9 {
            self.mul_small(1_000_000_000);
            n -= 9;
        }
        if n > 0 {
            self.mul_small(10u32.pow(n as u32));
        }
    }

    fn shl(&self, n: i64) -> Big {
        debug_assert!(n >= 0);
        if self.is_zero() {
            return self.clone();
        }
        let (w, b) = ((n / 32) as usize, (n % 32) as u32);
        let mut limbs = vec![0u32; w];
        limbs.reserve(self.limbs.len() + 1);
        if b == 0 {
            limbs.extend_from_slice(&self.limbs);
        } else {
            let mut carry = 0u32;
            for &l in &self.limbs {
                limbs.push((l << b) | carry);
                carry = l >> (32 - b);
            }
            limbs.push(carry);
        }
        let mut r = Big { limbs };
        r.trim();
        r
    }

    fn shr(&self, n: i64) -> Big {
        debug_assert!(n >= 0);
        let (w, b) = ((n / 32) as usize, (n % 32) as u32);
        if w >= self.limbs.len() {
            return Big { limbs: Vec::new() };
        }
        let src = &self.limbs[w..];
        let mut limbs = Vec::with_capacity(src.len());
        for i in 0..src.len() {
            let lo = src[i] >> b;
            let hi = if b == 0 { 0 } else { src.get(i + 1).map_or(0, |&h| h << (32 - b)) };
            limbs.push(lo | hi);
        }
        let mut r = Big { limbs };
        r.trim();
        r
    }

    fn shr1(&mut self) {
        let mut carry = 0u32;
        for l in self.limbs.iter_mut().rev() {
            let nl = (*l >> 1) | (carry << 31);
            carry = *l & 1;
            *l = nl;
        }
        self.trim();
    }

    fn cmp_big(&self, o: &Big) -> Ordering {
        self.limbs.len().cmp(&o.limbs.len()).then_with(|| self.limbs.iter().rev().cmp(o.limbs.iter().rev()))
    }

    fn add_big(&self, o: &Big) -> Big {
        let n = self.limbs.len().max(o.limbs.len());
        let mut limbs = Vec::with_capacity(n + 1);
        let mut carry = 0u64;
        for i in 0..n {
            let v = u64::from(self.limbs.get(i).copied().unwrap_or(0))
                + u64::from(o.limbs.get(i).copied().unwrap_or(0))
                + carry;
            limbs.push(v as u32);
            carry = v >> 32;
        }
        limbs.push(carry as u32);
        let mut r = Big { limbs };
        r.trim();
        r
    }

    /// `self -= o`; requires `self >= o`.
    fn sub_assign(&mut self, o: &Big) {
        let mut borrow = 0i64;
        for i in 0..self.limbs.len() {
            let v = i64::from(self.limbs[i]) - i64::from(o.limbs.get(i).copied().unwrap_or(0)) - borrow;
            if v < 0 {
                self.limbs[i] = (v + (1i64 << 32)) as u32;
                borrow = 1;
            } else {
                self.limbs[i] = v as u32;
                borrow = 0;
            }
        }
        debug_assert_eq!(borrow, 0);
        self.trim();
    }

    /// Divides in place by `d`, returning the remainder.
    fn div_rem_small(&mut self, d: u32) -> u32 {
        let mut rem = 0u64;
        for l in self.limbs.iter_mut().rev() {
            let cur = (rem << 32) | u64::from(*l);
            *l = (cur / u64::from(d)) as u32;
            rem = cur % u64::from(d);
        }
        self.trim();
        rem as u32
    }

    /// Quotient (which must fit in 127 bits) and "remainder is non-zero".
    fn div_small_quotient(a: &Big, b: &Big) -> (Big, bool) {
        let mut rem = a.clone();
        let qbits = a.bit_len() - b.bit_len() + 1;
        if qbits <= 0 {
            return (Big::from_u64(0), !rem.is_zero());
        }
        debug_assert!(qbits < 127);
        let mut q = 0u128;
        let mut d = b.shl(qbits - 1);
        for i in (0..qbits).rev() {
            if rem.cmp_big(&d) != Ordering::Less {
                rem.sub_assign(&d);
                q |= 1u128 << i;
            }
            d.shr1();
        }
        let mut qb = Big::from_u64(q as u64);
        if (q >> 64) != 0 {
            qb = qb.add_big(&Big::from_u64((q >> 64) as u64).shl(64));
        }
        (qb, !rem.is_zero())
    }

    /// Decimal digits (no leading zeros; "0" for zero).
    fn to_decimal(&self) -> Vec<u8> {
        if self.is_zero() {
            return b"0".to_vec();
        }
        let mut n = self.clone();
        let mut chunks = Vec::new();
        while !n.is_zero() {
            chunks.push(n.div_rem_small(1_000_000_000));
        }
        let mut out = Vec::with_capacity(chunks.len() * 9);
        let last = chunks.len() - 1;
        let _ = write!(out, "{}", chunks[last]);
        for c in chunks[..last].iter().rev() {
            let _ = write!(out, "{:09}", c);
        }
        out
    }

    fn from_decimal_digits(digits: impl Iterator<Item = u8>) -> Big {
        let mut b = Big { limbs: Vec::new() };
        let mut chunk = 0u32;
        let mut chunk_len = 0u32;
        for d in digits {
            chunk = chunk * 10 + u32::from(d - b'0');
            chunk_len += 1;
            if chunk_len == 9 {
                b.mul_small(1_000_000_000);
                b.add_small(chunk);
                chunk = 0;
                chunk_len = 0;
            }
        }
        if chunk_len > 0 {
            b.mul_small(10u32.pow(chunk_len));
            b.add_small(chunk);
        }
        b
    }

    fn from_hex_digits(digits: &[u8]) -> Big {
        let mut limbs = Vec::with_capacity(digits.len() / 8 + 1);
        let mut cur = 0u32;
        let mut nbits = 0;
        for &c in digits.iter().rev() {
            let v = (c as char).to_digit(16).unwrap_or(0);
            cur |= v << nbits;
            nbits += 4;
            if nbits == 32 {
                limbs.push(cur);
                cur = 0;
                nbits = 0;
            }
        }
        limbs.push(cur);
        let mut b = Big { limbs };
        b.trim();
        b
    }
}

// ---------------------------------------------------------------------------
// Correct rounding into a binary floating point format
// ---------------------------------------------------------------------------

/// A binary format: values are `m * 2^e` with `m < 2^mant_bits`,
/// `e >= min_exp` and (for normalized `m`) `e <= max_exp`.
#[derive(Clone, Copy)]
struct Format {
    mant_bits: i64,
    min_exp: i64,
    max_exp: i64,
    /// Decimal exponent bounds used to short-circuit hopeless inputs: a
    /// value `>= 10^max_dec10` overflows, one `< 10^min_dec10` rounds to 0.
    max_dec10: i64,
    min_dec10: i64,
}

/// x87 80-bit extended precision.
const LD: Format = Format { mant_bits: 64, min_exp: -16445, max_exp: 16320, max_dec10: 4933, min_dec10: -4950 };

/// IEEE-754 binary64.
const F64: Format = Format { mant_bits: 53, min_exp: -1074, max_exp: 971, max_dec10: 309, min_dec10: -323 };

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Rounded {
    Zero,
    Finite { mant: u64, exp: i64 },
    Overflow,
}

/// Rounds `n * 2^e2` (plus a positive amount smaller than `2^e2` when
/// `sticky`) to nearest-even in `fmt`. When `sticky` is set `n` must have at
/// least `mant_bits + 2` bits.
fn round_big(n: &Big, e2: i64, sticky: bool, fmt: Format) -> Rounded {
    let bl = n.bit_len();
    if bl == 0 {
        return Rounded::Zero;
    }
    let mut sh = bl - fmt.mant_bits;
    if e2 + sh < fmt.min_exp {
        sh = fmt.min_exp - e2;
    }
    let mut mant: u128;
    if sh <= 0 {
        debug_assert!(!sticky);
        mant = u128::from(n.bits_from(0)) << (-sh);
    } else {
        mant = u128::from(n.bits_from(sh));
        let half = n.bit(sh - 1);
        let low = sticky || n.any_below(sh - 1);
        if half && (low || mant & 1 == 1) {
            mant += 1;
        }
    }
    let mut exp = e2 + sh;
    if mant >> fmt.mant_bits != 0 {
        mant >>= 1;
        exp += 1;
    }
    if mant == 0 {
        return Rounded::Zero;
    }
    if exp > fmt.max_exp {
        return Rounded::Overflow;
    }
    Rounded::Finite { mant: mant as u64, exp }
}

/// Converts the exact value of a scanned (non-inf) number into `fmt`.
fn convert(hex: bool, int: &[u8], frac: &[u8], exp: i64, fmt: Format) -> Rounded {
    let lead = int.iter().take_while(|&&c| c == b'0').count();
    let int = &int[lead..];
    let frac_len = frac.len() as i64;
    let all = || int.iter().chain(frac.iter()).copied();
    let nd_total = int.len() + frac.len();
    let lead_frac = if int.is_empty() { frac.iter().take_while(|&&c| c == b'0').count() } else { 0 };
    let trail = all().rev().take_while(|&c| c == b'0').count();
    if trail + lead_frac >= nd_total {
        return Rounded::Zero;
    }
    let digits = all().skip(lead_frac).take(nd_total - lead_frac - trail);
    // value = D * base^k with D the significant digits
    let nd = (nd_total - lead_frac - trail) as i64;
    if hex {
        let v: Vec<u8> = digits.collect();
        let d = Big::from_hex_digits(&v);
        let e2 = exp - 4 * (frac_len - trail as i64);
        let top = d.bit_len() + e2; // value in [2^(top-1), 2^top)
        if top > fmt.max_exp + fmt.mant_bits {
            return Rounded::Overflow;
        }
        if top < fmt.min_exp - 1 {
            return Rounded::Zero;
        }
        return round_big(&d, e2, false, fmt);
    }
    let k = exp - (frac_len - trail as i64);
    // value in [10^(nd+k-1), 10^(nd+k))
    if nd + k > fmt.max_dec10 {
        return Rounded::Overflow;
    }
    if nd + k < fmt.min_dec10 {
        return Rounded::Zero;
    }
    let mut d = Big::from_decimal_digits(digits);
    if k >= 0 {
        d.mul_pow10(k as u64);
        return round_big(&d, 0, false, fmt);
    }
    let mut b = Big::from_u64(1);
    b.mul_pow10((-k) as u64);
    let t = d.bit_len() - b.bit_len() - (fmt.mant_bits + 2);
    let (q, sticky) =
        if t >= 0 { Big::div_small_quotient(&d, &b.shl(t)) } else { Big::div_small_quotient(&d.shl(-t), &b) };
    round_big(&q, t, sticky, fmt)
}

fn rounded_to_f64(neg: bool, r: Rounded) -> f64 {
    let mag = match r {
        Rounded::Zero => 0.0,
        Rounded::Overflow => f64::INFINITY,
        Rounded::Finite { mant, exp } => {
            if mant >> 52 == 0 {
                // subnormal: exp == -1074
                f64::from_bits(mant)
            } else {
                let biased = (exp + 52 + 1023) as u64;
                f64::from_bits((biased << 52) | (mant & ((1u64 << 52) - 1)))
            }
        }
    };
    if neg {
        -mag
    } else {
        mag
    }
}

// ---------------------------------------------------------------------------
// Doubles
// ---------------------------------------------------------------------------

/// Parses a double exactly like Redis's `string2d`.
pub fn parse_f64(s: &[u8]) -> Option<f64> {
    // A plain integer of up to 15 digits (ZADD's usual score) is exact as an f64: what the
    // full parse below would give, without its scan and text conversion.
    let (neg, digits) = match s.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, s),
    };
    if !digits.is_empty() && digits.len() <= 15 && digits.iter().all(u8::is_ascii_digit) {
        let v = digits.iter().fold(0u64, |n, d| n * 10 + (d - b'0') as u64) as f64;
        return Some(if neg { -v } else { v });
    }
    let sc = scan_float(s)?;
    match sc.kind {
        ScanKind::Inf => Some(if sc.neg { f64::NEG_INFINITY } else { f64::INFINITY }),
        ScanKind::Num { hex, int, frac, exp } => {
            let v = if hex {
                rounded_to_f64(sc.neg, convert(true, int, frac, exp, F64))
            } else {
                // The scanner only lets ASCII through; Rust's parser is
                // correctly rounded like glibc's.
                match std::str::from_utf8(s).ok().and_then(|t| t.parse::<f64>().ok()) {
                    Some(v) => v,
                    None => rounded_to_f64(sc.neg, convert(false, int, frac, exp, F64)),
                }
            };
            if v.is_infinite() || (v == 0.0 && !sc.kind.mantissa_is_zero()) {
                None // ERANGE
            } else {
                Some(v)
            }
        }
    }
}

/// `strtod` over a whole string (no leading whitespace) read the way code that tests
/// `errno == ERANGE` itself reads it (SORT's scores): [`parse_f64`], except that a subnormal
/// result glibc had to round (an inexact underflow, which sets `ERANGE`) is refused too.
pub fn parse_f64_errno(s: &[u8]) -> Option<f64> {
    let v = parse_f64(s)?;
    if v == 0.0 || !v.is_finite() || v.abs() >= f64::MIN_POSITIVE {
        return Some(v);
    }
    let ScanKind::Num { hex, int, frac, exp } = scan_float(s)?.kind else {
        return Some(v);
    };
    // v.abs() is m * 2^-1074; the input is exact when it is that very number.
    let m = Big::from_u64(v.abs().to_bits());
    let digits = int.iter().chain(frac.iter()).copied().skip_while(|&c| c == b'0');
    let exact = if hex {
        let h = Big::from_hex_digits(&digits.collect::<Vec<u8>>());
        // h * 2^e2 == m * 2^-1074, with e2 < -1074 when the input has bits below 2^-1074.
        let e2 = exp - 4 * frac.len() as i64;
        e2 >= -1074 || (h.bit_len() - m.bit_len() == -1074 - e2 && h == m.shl(-1074 - e2))
    } else {
        // d * 10^k == m * 2^-1074, i.e. d * 2^1074 == m * 10^-k (k < 0: the value is below 1).
        let mut d = Big::from_decimal_digits(digits);
        d.trim();
        let k = exp - frac.len() as i64;
        let mut rhs = m;
        rhs.mul_pow10(k.unsigned_abs());
        k < 0 && d.shl(1074) == rhs
    };
    exact.then_some(v)
}

/// Appends `d` formatted as Redis's `addReplyDouble` does (`%.17g`, with
/// `inf` / `-inf`).
pub fn format_double(d: f64, out: &mut Vec<u8>) {
    if d.is_nan() {
        out.extend_from_slice(if d.is_sign_negative() { b"-nan" } else { b"nan" });
        return;
    }
    if d.is_infinite() {
        out.extend_from_slice(if d > 0.0 { b"inf" } else { b"-inf" });
        return;
    }
    if d == 0.0 {
        out.extend_from_slice(if d.is_sign_negative() { b"-0" } else { b"0" });
        return;
    }
    // 17 significant digits, correctly rounded (ties to even, like glibc).
    let mut sci = [0u8; 40];
    let len = {
        let mut cur = std::io::Cursor::new(&mut sci[..]);
        let _ = write!(cur, "{:.16e}", d.abs());
        cur.position() as usize
    };
    let sci = &sci[..len];
    let epos = sci.iter().position(|&c| c == b'e').unwrap_or(len);
    let mut digits = [0u8; 17];
    let mut nd = 0;
    for &c in &sci[..epos] {
        if c.is_ascii_digit() && nd < 17 {
            digits[nd] = c;
            nd += 1;
        }
    }
    let x: i32 = std::str::from_utf8(&sci[epos + 1..]).ok().and_then(|t| t.parse().ok()).unwrap_or(0);
    // Strip trailing zeros (the %g rule); keep at least one digit.
    while nd > 1 && digits[nd - 1] == b'0' {
        nd -= 1;
    }
    let digits = &digits[..nd];
    if d < 0.0 {
        out.push(b'-');
    }
    if !(-4..17).contains(&x) {
        out.push(digits[0]);
        if nd > 1 {
            out.push(b'.');
            out.extend_from_slice(&digits[1..]);
        }
        out.push(b'e');
        out.push(if x < 0 { b'-' } else { b'+' });
        let ax = x.unsigned_abs();
        if ax < 10 {
            out.push(b'0');
        }
        let mut buf = itoa::Buffer::new();
        out.extend_from_slice(buf.format(ax).as_bytes());
    } else if x >= 0 {
        let int_len = (x + 1) as usize;
        if nd <= int_len {
            out.extend_from_slice(digits);
            out.resize(out.len() + int_len - nd, b'0');
        } else {
            out.extend_from_slice(&digits[..int_len]);
            out.push(b'.');
            out.extend_from_slice(&digits[int_len..]);
        }
    } else {
        out.extend_from_slice(b"0.");
        out.resize(out.len() + (-x - 1) as usize, b'0');
        out.extend_from_slice(digits);
    }
}

// ---------------------------------------------------------------------------
// long double
// ---------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum LdKind {
    Zero,
    /// `mant * 2^exp`; `mant` has its top bit set unless `exp` is the
    /// minimum exponent (subnormal).
    Finite {
        mant: u64,
        exp: i32,
    },
    Inf,
    Nan,
}

/// Software model of the x86-64 80-bit `long double` (64-bit mantissa,
/// 15-bit exponent, round to nearest even), which is what Redis on x86-64
/// Linux uses for INCRBYFLOAT and HINCRBYFLOAT.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LongDouble {
    neg: bool,
    kind: LdKind,
}

impl LongDouble {
    /// Positive zero.
    pub const ZERO: LongDouble = LongDouble { neg: false, kind: LdKind::Zero };

    fn from_rounded(neg: bool, r: Rounded) -> LongDouble {
        let kind = match r {
            Rounded::Zero => LdKind::Zero,
            Rounded::Overflow => LdKind::Inf,
            Rounded::Finite { mant, exp } => LdKind::Finite { mant, exp: exp as i32 },
        };
        LongDouble { neg, kind }
    }

    /// Parses like Redis's `string2ld` (`strtold` over the whole string, at
    /// most 5119 bytes, no leading space, NaN rejected, overflow and
    /// underflow-to-zero rejected). `inf` / `-infinity` are accepted.
    pub fn parse(s: &[u8]) -> Option<LongDouble> {
        if s.is_empty() || s.len() >= MAX_LONG_DOUBLE_CHARS {
            return None;
        }
        let sc = scan_float(s)?;
        match sc.kind {
            ScanKind::Inf => Some(LongDouble { neg: sc.neg, kind: LdKind::Inf }),
            ScanKind::Num { hex, int, frac, exp } => match convert(hex, int, frac, exp, LD) {
                Rounded::Overflow => None,
                Rounded::Zero if !sc.kind.mantissa_is_zero() => None,
                r => Some(LongDouble::from_rounded(sc.neg, r)),
            },
        }
    }

    /// Whether it is +0 or -0.
    pub fn is_zero(self) -> bool {
        self.kind == LdKind::Zero
    }

    /// Whether its sign is negative (-0 included).
    pub fn is_negative(self) -> bool {
        self.neg
    }

    /// Exact conversion from an integer (`(long double)ll`).
    pub fn from_i64(v: i64) -> LongDouble {
        let r = round_big(&Big::from_u64(v.unsigned_abs()), 0, false, LD);
        LongDouble::from_rounded(v < 0, r)
    }

    /// Exact conversion from a double.
    pub fn from_f64(d: f64) -> LongDouble {
        let neg = d.is_sign_negative();
        if d.is_nan() {
            return LongDouble { neg, kind: LdKind::Nan };
        }
        if d.is_infinite() {
            return LongDouble { neg, kind: LdKind::Inf };
        }
        let bits = d.to_bits();
        let biased = ((bits >> 52) & 0x7ff) as i64;
        let frac = bits & ((1u64 << 52) - 1);
        let (m, e) = if biased == 0 { (frac, -1074) } else { (frac | (1u64 << 52), biased - 1075) };
        LongDouble::from_rounded(neg, round_big(&Big::from_u64(m), e, false, LD))
    }

    /// Rounds to the nearest `f64` (ties to even); out of range values
    /// become ±inf or ±0.
    pub fn to_f64(self) -> f64 {
        match self.kind {
            LdKind::Nan => {
                if self.neg {
                    -f64::NAN
                } else {
                    f64::NAN
                }
            }
            LdKind::Inf => rounded_to_f64(self.neg, Rounded::Overflow),
            LdKind::Zero => rounded_to_f64(self.neg, Rounded::Zero),
            LdKind::Finite { mant, exp } => {
                rounded_to_f64(self.neg, round_big(&Big::from_u64(mant), i64::from(exp), false, F64))
            }
        }
    }

    /// One x87 multiplication by a small integer, rounded to nearest even (Redis's
    /// `ftval *= 1000.0` for a timeout in seconds).
    pub fn mul_u32(self, m: u32) -> LongDouble {
        match self.kind {
            LdKind::Finite { mant, exp } if m != 0 => {
                let mut big = Big::from_u64(mant);
                big.mul_small(m);
                LongDouble::from_rounded(self.neg, round_big(&big, i64::from(exp), false, LD))
            }
            LdKind::Finite { .. } => LongDouble { neg: self.neg, kind: LdKind::Zero },
            LdKind::Inf if m == 0 => LongDouble { neg: true, kind: LdKind::Nan },
            _ => self,
        }
    }

    /// `(long long) ceill(x)` on x86-64: the smallest integer not below the value; what does not
    /// fit (infinities, NaN, beyond the i64 range) is the "integer indefinite", i64::MIN.
    pub fn ceil_i64(self) -> i64 {
        let LdKind::Finite { mant, exp } = self.kind else {
            return if self.kind == LdKind::Zero { 0 } else { i64::MIN };
        };
        let magnitude: Option<u128> = if exp >= 0 {
            (exp < 64).then(|| u128::from(mant) << exp)
        } else if exp <= -64 {
            // Below one: ceil is 1 for a positive value, -0 for a negative one.
            Some(u128::from(!self.neg))
        } else {
            let whole = u128::from(mant >> -exp);
            let frac = mant & ((1u64 << -exp) - 1);
            // Upward for a positive value with a fraction; a negative one truncates.
            Some(whole + u128::from(frac != 0 && !self.neg))
        };
        match magnitude {
            Some(m) if self.neg && m <= 1u128 << 63 => (m as i128).wrapping_neg() as i64,
            Some(m) if !self.neg && m <= i64::MAX as u128 => m as i64,
            _ => i64::MIN,
        }
    }

    /// Whether the value is above `i64::MAX` (`x > LLONG_MAX`, compared as long doubles).
    pub fn above_i64_max(self) -> bool {
        match self.kind {
            LdKind::Inf => !self.neg,
            LdKind::Finite { .. } if !self.neg => self.ceil_i64() == i64::MIN,
            _ => false,
        }
    }

    /// True unless infinite or NaN.
    pub fn is_finite(self) -> bool {
        matches!(self.kind, LdKind::Zero | LdKind::Finite { .. })
    }

    /// True for NaN (only produced by `inf + -inf`).
    pub fn is_nan(self) -> bool {
        self.kind == LdKind::Nan
    }

    /// One x87 addition, rounded to nearest even.
    #[allow(clippy::should_implement_trait)]
    pub fn add(self, other: LongDouble) -> LongDouble {
        use LdKind::*;
        match (self.kind, other.kind) {
            (Nan, _) => self,
            (_, Nan) => other,
            // x87 "real indefinite": a NaN with the sign bit set.
            (Inf, Inf) if self.neg != other.neg => LongDouble { neg: true, kind: Nan },
            (Inf, _) => self,
            (_, Inf) => other,
            (Zero, Zero) => LongDouble { neg: self.neg && other.neg, kind: Zero },
            (Zero, _) => other,
            (_, Zero) => self,
            (Finite { mant: ma, exp: ea }, Finite { mant: mb, exp: eb }) => {
                let (ea, eb) = (i64::from(ea), i64::from(eb));
                let top_a = 64 - i64::from(ma.leading_zeros()) + ea;
                let top_b = 64 - i64::from(mb.leading_zeros()) + eb;
                // A much smaller operand is below a quarter ulp: no effect.
                if top_a - top_b > LD.mant_bits + 3 {
                    return self;
                }
                if top_b - top_a > LD.mant_bits + 3 {
                    return other;
                }
                let e = ea.min(eb);
                let a = Big::from_u64(ma).shl(ea - e);
                let b = Big::from_u64(mb).shl(eb - e);
                let (neg, sum) = if self.neg == other.neg {
                    (self.neg, a.add_big(&b))
                } else {
                    match a.cmp_big(&b) {
                        Ordering::Equal => return LongDouble::ZERO,
                        Ordering::Greater => {
                            let mut d = a;
                            d.sub_assign(&b);
                            (self.neg, d)
                        }
                        Ordering::Less => {
                            let mut d = b;
                            d.sub_assign(&a);
                            (other.neg, d)
                        }
                    }
                };
                LongDouble::from_rounded(neg, round_big(&sum, e, false, LD))
            }
        }
    }

    /// Appends the value as `ld2string(.., LD_STR_HUMAN)` does: `%.17Lf`,
    /// then trailing zeros and a trailing dot removed, `-0` printed as `0`,
    /// infinities as `inf` / `-inf`. Never uses exponent notation.
    pub fn format_human(self, out: &mut Vec<u8>) {
        let (mant, exp) = match self.kind {
            LdKind::Inf => {
                out.extend_from_slice(if self.neg { b"-inf" } else { b"inf" });
                return;
            }
            LdKind::Nan => {
                out.extend_from_slice(if self.neg { b"-nan" } else { b"nan" });
                return;
            }
            LdKind::Zero => (0, 0),
            LdKind::Finite { mant, exp } => (mant, i64::from(exp)),
        };
        // R = round_half_even(|value| * 10^17)
        let mut n = Big::from_u64(mant);
        n.mul_pow10(17);
        let r = if exp >= 0 {
            n.shl(exp)
        } else {
            let sh = -exp;
            let mut q = n.shr(sh);
            let half = n.bit(sh - 1);
            let low = n.any_below(sh - 1);
            if half && (low || q.bit(0)) {
                q.add_small(1);
            }
            q
        };
        let digits = r.to_decimal();
        let start = out.len();
        if self.neg {
            out.push(b'-');
        }
        if digits.len() <= 17 {
            out.extend_from_slice(b"0.");
            out.resize(out.len() + 17 - digits.len(), b'0');
            out.extend_from_slice(&digits);
        } else {
            let int_len = digits.len() - 17;
            out.extend_from_slice(&digits[..int_len]);
            out.push(b'.');
            out.extend_from_slice(&digits[int_len..]);
        }
        while out.last() == Some(&b'0') {
            out.pop();
        }
        if out.last() == Some(&b'.') {
            out.pop();
        }
        if &out[start..] == b"-0" {
            out.truncate(start);
            out.push(b'0');
        }
    }
}

/// Parses an INCRBYFLOAT-style argument like Redis's `string2ld` and rounds
/// the (exact `long double`) result to `f64`. Values representable as a
/// `long double` but not as an `f64` come back as ±inf / ±0 instead of being
/// carried on; `inf` itself is accepted (the command rejects it).
pub fn parse_long_double(s: &[u8]) -> Option<f64> {
    LongDouble::parse(s).map(LongDouble::to_f64)
}

/// Appends `d` the way Redis replies to INCRBYFLOAT / HINCRBYFLOAT
/// (`ld2string(.., LD_STR_HUMAN)`), given that Redis computed in
/// `long double` while `d` is an `f64`; see the module docs.
pub fn format_long_double_human(d: f64, out: &mut Vec<u8>) {
    if !d.is_finite() || d == 0.0 {
        LongDouble::from_f64(d).format_human(out);
        return;
    }
    let decimal = plausible_decimal(d);
    match LongDouble::parse(&decimal) {
        Some(ld) => ld.format_human(out),
        None => LongDouble::from_f64(d).format_human(out),
    }
}

/// The shortest decimal that round-trips to `d`, or a 15 significant digit
/// one when that lies within 2 ulps (undoing `f64` noise such as
/// `0.30000000000000004`). Returned in `strtod`-parsable exponent form.
fn plausible_decimal(d: f64) -> Vec<u8> {
    let shortest = format!("{:e}", d).into_bytes();
    let sig = shortest.iter().take_while(|&&c| c != b'e').filter(|c| c.is_ascii_digit()).count();
    if sig > 15 {
        let short15 = format!("{:.14e}", d).into_bytes();
        if let Some(v) = std::str::from_utf8(&short15).ok().and_then(|t| t.parse::<f64>().ok()) {
            if v.is_sign_negative() == d.is_sign_negative() && (v.to_bits() as i64 - d.to_bits() as i64).abs() <= 2 {
                return short15;
            }
        }
    }
    shortest
}

#[cfg(test)]
mod tests {

    #[test]
    fn atoi_reads_as_strtol() {
        for (s, n) in [
            ("12", 12),
            ("  -7x", -7),
            ("+3", 3),
            ("1abc", 1),
            ("abc", 0),
            ("", 0),
            ("- 1", 0),
            ("99999999999999999999", i64::MAX),
            ("-99999999999999999999", i64::MIN),
            ("-9223372036854775808", i64::MIN),
        ] {
            assert_eq!(super::atoi(s.as_bytes()), n, "{s:?}");
        }
    }

    use super::*;

    fn fd(d: f64) -> String {
        let mut v = Vec::new();
        format_double(d, &mut v);
        String::from_utf8(v).unwrap()
    }

    fn ldh(d: f64) -> String {
        let mut v = Vec::new();
        format_long_double_human(d, &mut v);
        String::from_utf8(v).unwrap()
    }

    fn ld(s: &str) -> LongDouble {
        LongDouble::parse(s.as_bytes()).unwrap_or_else(|| panic!("parse {s}"))
    }

    fn human(x: LongDouble) -> String {
        let mut v = Vec::new();
        x.format_human(&mut v);
        String::from_utf8(v).unwrap()
    }

    /// What Redis replies to `SET k <a>` + `INCRBYFLOAT k <b>`.
    fn incr(a: &str, b: &str) -> Option<String> {
        let v = ld(a).add(LongDouble::parse(b.as_bytes())?);
        v.is_finite().then(|| human(v))
    }

    #[test]
    fn i64_parsing() {
        assert_eq!(parse_i64(b"0"), Some(0));
        assert_eq!(parse_i64(b"1"), Some(1));
        assert_eq!(parse_i64(b"-1"), Some(-1));
        assert_eq!(parse_i64(b"1234567890"), Some(1234567890));
        assert_eq!(parse_i64(b"9223372036854775807"), Some(i64::MAX));
        assert_eq!(parse_i64(b"-9223372036854775808"), Some(i64::MIN));
        assert_eq!(parse_i64(b"9223372036854775808"), None);
        assert_eq!(parse_i64(b"-9223372036854775809"), None);
        assert_eq!(parse_i64(b"18446744073709551616"), None);
        assert_eq!(parse_i64(b"99999999999999999999"), None);
        assert_eq!(parse_i64(b"-99999999999999999999"), None); // 21 bytes
        assert_eq!(parse_i64(b""), None);
        assert_eq!(parse_i64(b"-"), None);
        assert_eq!(parse_i64(b"-0"), None);
        assert_eq!(parse_i64(b"+1"), None);
        assert_eq!(parse_i64(b"01"), None);
        assert_eq!(parse_i64(b"00"), None);
        assert_eq!(parse_i64(b" 1"), None);
        assert_eq!(parse_i64(b"1 "), None);
        assert_eq!(parse_i64(b"1a"), None);
        assert_eq!(parse_i64(b"1.0"), None);
        assert_eq!(parse_i64(b"1\0"), None);
    }

    #[test]
    fn i64_formatting() {
        let mut v = Vec::new();
        format_i64(-42, &mut v);
        v.push(b' ');
        format_i64(i64::MIN, &mut v);
        assert_eq!(v, b"-42 -9223372036854775808");
    }

    #[test]
    fn f64_parsing_accepts_strtod_syntax() {
        let ok = |s: &str, v: f64| {
            let got = parse_f64(s.as_bytes());
            assert_eq!(got.map(f64::to_bits), Some(v.to_bits()), "{s}");
        };
        ok("0", 0.0);
        ok("-0", -0.0);
        ok("1.5", 1.5);
        ok("+1.5", 1.5);
        ok("-1.5", -1.5);
        ok(".5", 0.5);
        ok("5.", 5.0);
        ok("1e3", 1000.0);
        ok("1E+3", 1000.0);
        ok("1.e3", 1000.0);
        ok("25e-1", 2.5);
        ok("0.1", 0.1);
        ok("007", 7.0);
        ok("inf", f64::INFINITY);
        ok("+inf", f64::INFINITY);
        ok("-inf", f64::NEG_INFINITY);
        ok("INF", f64::INFINITY);
        ok("Infinity", f64::INFINITY);
        ok("-INFINITY", f64::NEG_INFINITY);
        ok("0x10", 16.0);
        ok("0x1p3", 8.0);
        ok("0X1.8P1", 3.0);
        ok("-0x.8", -0.5);
        ok("0x1p-1074", 5e-324);
        ok("0x1.fffffffffffff8p0", 2.0); // ties to even
        ok("0x1.fffffffffffff7p0", f64::from_bits(0x3fff_ffff_ffff_ffff));
        ok("0x0p99999999999", 0.0);
        ok("1e-320", 1e-320); // subnormal: ERANGE but non-zero, accepted
        ok("0e999999", 0.0);
        ok("1.7976931348623157e308", f64::MAX);
        ok("1e0000000000000000000000000000001", 10.0);
    }

    #[test]
    fn f64_errno_refuses_inexact_subnormals() {
        let p = |s: &str| parse_f64_errno(s.as_bytes());
        assert_eq!(p("1e-310"), None);
        assert_eq!(p("2.2250738585072011e-308"), None);
        assert_eq!(p("0x1p-1074"), Some(5e-324));
        assert_eq!(p("0x1.8p-1030"), Some(f64::from_bits(3 << 43)));
        assert_eq!(p("0x1.0000000000001p-1030"), None);
        assert_eq!(p("2.2250738585072014e-308"), Some(f64::MIN_POSITIVE));
        // 2^-1074 written out in full is exact.
        let exact = format!("{:.1074}", 5e-324);
        assert_eq!(p(&exact), Some(5e-324));
        assert_eq!(p(&format!("{}1", exact)), None);
        assert_eq!(p("1.5"), Some(1.5));
        assert_eq!(p("0e-400"), Some(0.0));
        assert_eq!(p("1e-400"), None);
        assert_eq!(p("nan"), None);
    }

    #[test]
    fn f64_parsing_rejects() {
        for s in [
            "",
            " 1",
            "1 ",
            "\t1",
            "1\0",
            "nan",
            "NaN",
            "-nan",
            "nan(1)",
            "+",
            "-",
            ".",
            "e5",
            ".e5",
            "1e",
            "1e+",
            "1e-",
            "1.5.2",
            "1,5",
            "0x",
            "0x.",
            "0xg",
            "0x1p",
            "0x1e+",
            "infi",
            "infinit",
            "1e400",
            "-1e400",
            "1e-400",
            "0x1p1024",
            "0x1p-1076",
            "++1",
            "--1",
            "1x",
            "\u{a0}1",
        ] {
            assert_eq!(parse_f64(s.as_bytes()), None, "{s:?}");
        }
    }

    #[test]
    fn f64_parsing_matches_rust_on_random_decimals() {
        let mut x = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..2000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let d = f64::from_bits(x);
            if !d.is_finite() || d == 0.0 {
                continue;
            }
            for s in [format!("{d:e}"), format!("{d:.20e}"), format!("{d}")] {
                let p = parse_f64(s.as_bytes());
                assert_eq!(p, Some(s.parse::<f64>().unwrap()), "{s}");
                // The bignum path must agree with the fast path.
                let sc = scan_float(s.as_bytes()).unwrap();
                if let ScanKind::Num { hex, int, frac, exp } = sc.kind {
                    let slow = rounded_to_f64(sc.neg, convert(hex, int, frac, exp, F64));
                    assert_eq!(slow.to_bits(), p.unwrap().to_bits(), "{s}");
                }
            }
        }
    }

    #[test]
    fn double_formatting() {
        assert_eq!(fd(0.1), "0.10000000000000001");
        assert_eq!(fd(1.5), "1.5");
        assert_eq!(fd(1e100), "1e+100");
        assert_eq!(fd(3.0), "3");
        assert_eq!(fd(-3.0), "-3");
        assert_eq!(fd(0.0), "0");
        assert_eq!(fd(-0.0), "-0");
        assert_eq!(fd(1e-5), "1.0000000000000001e-05");
        assert_eq!(fd(1e-4), "0.0001");
        assert_eq!(fd(0.00012), "0.00012");
        assert_eq!(fd(123456789012345678.0), "1.2345678901234568e+17");
        assert_eq!(fd(1e16), "10000000000000000");
        assert_eq!(fd(1e17), "1e+17");
        assert_eq!(fd(12345678901234567.0), "12345678901234568");
        assert_eq!(fd(f64::INFINITY), "inf");
        assert_eq!(fd(f64::NEG_INFINITY), "-inf");
        assert_eq!(fd(f64::MAX), "1.7976931348623157e+308");
        assert_eq!(fd(5e-324), "4.9406564584124654e-324");
        assert_eq!(fd(2.5), "2.5");
        assert_eq!(fd(-1.25e-7), "-1.2499999999999999e-07");
        assert_eq!(fd(-0.5), "-0.5");
        assert_eq!(fd(1.0 / 3.0), "0.33333333333333331");
        assert_eq!(fd(2f64.powi(-25)), "2.9802322387695312e-08"); // tie → even
        assert_eq!(fd(100.0), "100");
        assert_eq!(fd(1234.5), "1234.5");
    }

    /// Bit patterns and their glibc `printf("%.17g")` output.
    #[test]
    fn double_formatting_matches_glibc_table() {
        let table: &[(u64, &str)] = &[
            (0x3fb999999999999a, "0.10000000000000001"),
            (0x3fc999999999999a, "0.20000000000000001"),
            (0x3fd3333333333333, "0.29999999999999999"),
            (0x3fd5555555555555, "0.33333333333333331"),
            (0x3fe5555555555555, "0.66666666666666663"),
            (0x430c6bf526340000, "1000000000000000"),
            (0x4341c37937e08000, "10000000000000000"),
            (0x4376345785d8a000, "1e+17"),
            (0x444b1ae4d6e2ef50, "1e+21"),
            (0x4480f0cf064dd592, "1e+22"),
            (0x3f1a36e2eb1c432d, "0.0001"),
            (0x3f23a92a30553261, "0.00014999999999999999"),
            (0x3f1a36e2eb1c432c, "9.9999999999999991e-05"),
            (0x3ee4f8b588e368f1, "1.0000000000000001e-05"),
            (0x405edd2f1a9fbe77, "123.456"),
            (0xc12e240ca45a1cac, "-987654.321"),
            (0x4011666666666666, "4.3499999999999996"),
            (0x4005666666666666, "2.6749999999999998"),
            (0x3ff0147ae147ae14, "1.0049999999999999"),
            (0x3fd3333333333334, "0.30000000000000004"),
            (0x7fe1ccf385ebc8a0, "1e+308"),
            (0x0010000000000000, "2.2250738585072014e-308"),
            (0x0000000000000001, "4.9406564584124654e-324"),
            (0x4340000000000000, "9007199254740992"),
            (0x43f0000000000000, "1.8446744073709552e+19"),
            (0x3fe0000000000000, "0.5"),
            (0x4376345785d8a000, "1e+17"),
            (0x3eb0000000000000, "9.5367431640625e-07"),
            (0x3f00000000000000, "3.0517578125e-05"),
            (0x41d26580b486522c, "1234567890.0987654"),
            (0x44dfe185ca57c517, "6.0221407599999999e+23"),
            (0xbc07a4da290c1653, "-1.6021766339999999e-19"),
            (0x41b1de784a000000, "299792458"),
            (0x7fefffffffffffff, "1.7976931348623157e+308"),
            (0x400921fb54442d18, "3.1415926535897931"),
            (0x4005bf0a8b145769, "2.7182818284590451"),
        ];
        for &(bits, want) in table {
            assert_eq!(fd(f64::from_bits(bits)), want, "{bits:#x}");
            let negated = match want.strip_prefix('-') {
                Some(pos) => pos.to_string(),
                None => format!("-{want}"),
            };
            assert_eq!(fd(-f64::from_bits(bits)), negated, "{bits:#x}");
        }
    }

    #[test]
    fn long_double_parsing() {
        assert_eq!(LongDouble::parse(b""), None);
        assert_eq!(LongDouble::parse(b" 1"), None);
        assert_eq!(LongDouble::parse(b"1 "), None);
        assert_eq!(LongDouble::parse(b"nan"), None);
        assert_eq!(LongDouble::parse(b"1\x002"), None);
        assert_eq!(LongDouble::parse(b"1e5000"), None);
        assert_eq!(LongDouble::parse(b"1.2e4932"), None);
        assert_eq!(LongDouble::parse(b"1.8e-4951"), None);
        assert!(LongDouble::parse(b"1.9e-4951").is_some());
        assert!(LongDouble::parse(b"1e4932").is_some());
        assert!(LongDouble::parse(b"1e400").is_some());
        assert!(LongDouble::parse(b"0e99999999").is_some());
        assert!(!ld("inf").is_finite());
        assert!(!ld("-Infinity").is_finite());
        let long = format!("{}1", "0".repeat(MAX_LONG_DOUBLE_CHARS - 2));
        assert_eq!(ld(&long), LongDouble::from_i64(1));
        let long = format!("{}1", "0".repeat(MAX_LONG_DOUBLE_CHARS - 1));
        assert_eq!(LongDouble::parse(long.as_bytes()), None);
        let long = "1".repeat(MAX_LONG_DOUBLE_CHARS - 1); // ~1e5118: overflow
        assert_eq!(LongDouble::parse(long.as_bytes()), None);
        let long = format!("0.{}", "1".repeat(MAX_LONG_DOUBLE_CHARS - 3));
        assert_eq!(human(ld(&long)), "0.11111111111111111");
        assert_eq!(parse_long_double(b"10.5"), Some(10.5));
        assert_eq!(parse_long_double(b"0.1"), Some(0.1));
        assert_eq!(parse_long_double(b"1e400"), Some(f64::INFINITY));
        assert_eq!(parse_long_double(b"-inf"), Some(f64::NEG_INFINITY));
        assert_eq!(parse_long_double(b"abc"), None);
        assert_eq!(LongDouble::from_f64(0.1).to_f64(), 0.1);
        assert_eq!(LongDouble::from_i64(i64::MIN).to_f64(), i64::MIN as f64);
        assert_eq!(ld("5e-324").to_f64(), 5e-324);
        assert_eq!(ld("1e-400").to_f64(), 0.0);
    }

    /// Outputs recorded from redis-server 7.0.15 on x86-64.
    #[test]
    fn incrbyfloat_matches_redis() {
        let cases: &[(&str, &str, Option<&str>)] = &[
            ("10.5", "0.1", Some("10.6")),
            ("0.1", "0.2", Some("0.3")),
            ("1.1", "2.2", Some("3.3")),
            ("1000000.1", "0", Some("1000000.10000000000002274")),
            ("1000.1", "-1000", Some("0.09999999999999998")),
            ("5.0e3", "0", Some("5000")),
            ("1e20", "0", Some("100000000000000000000")),
            ("1e-400", "0", Some("0")),
            ("0x1p3", "0", Some("8")),
            ("0.12345678901234567890", "0", Some("0.12345678901234568")),
            ("123456789.123456789", "0", Some("123456789.12345678899873747")),
            ("17179869184", "1.5", Some("17179869185.5")),
            ("17179869184", "17179869184", Some("34359738368")),
            ("3", "-3", Some("0")),
            ("1e-20", "0", Some("0")),
            ("1e-17", "0", Some("0.00000000000000001")),
            ("5e-18", "0", Some("0")),
            ("1.5e-17", "0", Some("0.00000000000000002")),
            ("2.5e-17", "0", Some("0.00000000000000002")),
            ("1", ".5", Some("1.5")),
            ("1", "5.", Some("6")),
            ("0.000003814697265625", "0", Some("0.00000381469726562")),
            ("0.000011444091796875", "0", Some("0.00001144409179688")),
            ("0.1", "0", Some("0.1")),
            ("1", "0.25", Some("1.25")),
            ("1.5", "1.5", Some("3")),
            ("1", "-1.1", Some("-0.1")),
            ("inf", "0", None),
            ("1", "+inf", None),
            ("1", "infinity", None),
            ("1", "-iNf", None),
        ];
        for &(a, b, want) in cases {
            assert_eq!(incr(a, b).as_deref(), want, "{a} + {b}");
        }
        let big = incr("1e400", "0").unwrap();
        assert!(big.starts_with("10000000000000000000281880683947586514586453433629052038625910693539685534"));
        assert_eq!(big.len(), 401);
        let big = incr("1e4932", "0").unwrap();
        assert!(big.starts_with("100000000000000000000601894938796389132383777425453311477378"));
        // 1/41 - 1/41 is an exact zero, printed without sign.
        let third = format!("{:e}", 1.0 / 41.0);
        let minus = format!("{:e}", -1.0 / 41.0);
        assert_eq!(incr(&third, &minus).as_deref(), Some("0"));
        assert_eq!(human(ld("-0")), "0");
        assert_eq!(human(ld("-1e-30")), "0");
        assert!(ld("inf").add(ld("-inf")).is_nan());
    }

    #[test]
    fn long_double_timeouts_as_redis_computes_them() {
        let ms = |s: &str| LongDouble::parse(s.as_bytes()).unwrap().mul_u32(1000);
        // 0.001 as a long double is a hair below it: -0.001 s is -0.99999... ms, ceil -0 = 0.
        assert_eq!(ms("-0.001").ceil_i64(), 0);
        assert_eq!(ms("-1e-3").ceil_i64(), 0);
        assert_eq!(ms("-0.0011").ceil_i64(), -1);
        assert_eq!(ms("-0.002").ceil_i64(), -1);
        assert_eq!(ms("0.001").ceil_i64(), 1);
        assert_eq!(ms("0.0001").ceil_i64(), 1);
        assert_eq!(ms("1.5").ceil_i64(), 1500);
        assert_eq!(ms("-1.5").ceil_i64(), -1500);
        assert_eq!(ms("0").ceil_i64(), 0);
        assert_eq!(ms("-0").ceil_i64(), 0);
        assert_eq!(ms("1e-4000").ceil_i64(), 1);
        assert_eq!(ms("-inf").ceil_i64(), i64::MIN);
        assert!(ms("inf").above_i64_max());
        assert!(!ms("9223372036854775.807").above_i64_max());
        assert!(ms("9223372036854775.808").above_i64_max());
        assert!(!ms("-1e300").above_i64_max());
        assert_eq!(ms("-1e300").ceil_i64(), i64::MIN);
    }

    #[test]
    fn long_double_addition_rounding() {
        // 2^64 + 1 is not representable: ties to even gives 2^64.
        let two64 = ld("18446744073709551616");
        assert_eq!(two64.add(LongDouble::from_i64(1)), two64);
        assert_eq!(human(two64.add(LongDouble::from_i64(2))), "18446744073709551618");
        assert_eq!(human(two64.add(LongDouble::from_i64(3))), "18446744073709551620");
        assert_eq!(human(ld("1e30").add(ld("1e-30"))), human(ld("1e30")));
        assert_eq!(human(ld("-5").add(ld("2"))), "-3");
        assert_eq!(human(LongDouble::from_i64(i64::MIN)), "-9223372036854775808");
        let max = ld("1.18973149535723176502e4932");
        assert!(max.is_finite());
        assert!(!max.add(max).is_finite());
    }

    #[test]
    fn f64_long_double_human_formatting() {
        assert_eq!(ldh(10.5 + 0.1), "10.6");
        assert_eq!(ldh(0.1 + 0.2), "0.3");
        assert_eq!(ldh(1.1 + 2.2), "3.3");
        assert_eq!(ldh(5000.0), "5000");
        assert_eq!(ldh(1e20), "100000000000000000000");
        assert_eq!(ldh(17179869185.5), "17179869185.5");
        assert_eq!(ldh(-0.1), "-0.1");
        // Known difference: f64 cancellation noise beyond 2 ulps is kept
        // (Redis, computing in long double, replies "-0.1"); LongDouble
        // gets it right.
        assert_eq!(ldh(1.0 - 1.1), "-0.10000000000000009");
        assert_eq!(human(ld("1").add(ld("-1.1"))), "-0.1");
        assert_eq!(ldh(-0.0), "0");
        assert_eq!(ldh(0.0), "0");
        assert_eq!(ldh(1000000.1), "1000000.10000000000002274");
        assert_eq!(ldh(0.12345678901234568), "0.12345678901234568");
        assert_eq!(ldh(f64::INFINITY), "inf");
        assert_eq!(ldh(f64::NEG_INFINITY), "-inf");
        assert_eq!(ldh(1e-30), "0");
        assert_eq!(ldh(3.0), "3");
        assert_eq!(ldh(-2.5), "-2.5");
    }
}
