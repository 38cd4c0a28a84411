//! Redis 7.2's double formatting: `d2string` (every double reply, listpack scores) and the
//! `fpconv_dtoa` it falls back to (also used, after the integer case, for Lua numbers passed to
//! `redis.call`: `lua_number_arg`).
//!
//! Redis 7.2 replaced `%.17g` with Grisu2 (Florian Loitsch, "Printing Floating-Point Numbers
//! Quickly and Accurately with Integers", PLDI 2010) through the fpconv library. Grisu2 is not
//! always the shortest representation (e.g. -22.09436 prints as -22.094360000000002), so a
//! shortest-digits algorithm such as Ryu would differ from Redis: this module implements
//! Grisu2 itself, with 64-bit "diy-fp" arithmetic, the paper's cached powers of ten (one per 8
//! decimal exponents, normalized binary significands rounded to nearest) and fpconv's digit
//! rounding and layout (plain integer, plain decimal or `d.ddde+XX`).

/// A floating-point number as a 64-bit significand and a binary exponent.
#[derive(Clone, Copy, Debug)]
struct Fp {
    f: u64,
    e: i32,
}

const FRAC_MASK: u64 = 0x000F_FFFF_FFFF_FFFF;
const EXP_MASK: u64 = 0x7FF0_0000_0000_0000;
const HIDDEN_BIT: u64 = 0x0010_0000_0000_0000;
const SIGN_MASK: u64 = 0x8000_0000_0000_0000;
const EXP_BIAS: i32 = 1023 + 52;

/// 10^k for k = -348, -340, ..., 340: (normalized significand, binary exponent).
const POWERS: [(u64, i32); 87] = [
    (0xfa8fd5a0081c0288, -1220),
    (0xbaaee17fa23ebf76, -1193),
    (0x8b16fb203055ac76, -1166),
    (0xcf42894a5dce35ea, -1140),
    (0x9a6bb0aa55653b2d, -1113),
    (0xe61acf033d1a45df, -1087),
    (0xab70fe17c79ac6ca, -1060),
    (0xff77b1fcbebcdc4f, -1034),
    (0xbe5691ef416bd60c, -1007),
    (0x8dd01fad907ffc3c, -980),
    (0xd3515c2831559a83, -954),
    (0x9d71ac8fada6c9b5, -927),
    (0xea9c227723ee8bcb, -901),
    (0xaecc49914078536d, -874),
    (0x823c12795db6ce57, -847),
    (0xc21094364dfb5637, -821),
    (0x9096ea6f3848984f, -794),
    (0xd77485cb25823ac7, -768),
    (0xa086cfcd97bf97f4, -741),
    (0xef340a98172aace5, -715),
    (0xb23867fb2a35b28e, -688),
    (0x84c8d4dfd2c63f3b, -661),
    (0xc5dd44271ad3cdba, -635),
    (0x936b9fcebb25c996, -608),
    (0xdbac6c247d62a584, -582),
    (0xa3ab66580d5fdaf6, -555),
    (0xf3e2f893dec3f126, -529),
    (0xb5b5ada8aaff80b8, -502),
    (0x87625f056c7c4a8b, -475),
    (0xc9bcff6034c13053, -449),
    (0x964e858c91ba2655, -422),
    (0xdff9772470297ebd, -396),
    (0xa6dfbd9fb8e5b88f, -369),
    (0xf8a95fcf88747d94, -343),
    (0xb94470938fa89bcf, -316),
    (0x8a08f0f8bf0f156b, -289),
    (0xcdb02555653131b6, -263),
    (0x993fe2c6d07b7fac, -236),
    (0xe45c10c42a2b3b06, -210),
    (0xaa242499697392d3, -183),
    (0xfd87b5f28300ca0e, -157),
    (0xbce5086492111aeb, -130),
    (0x8cbccc096f5088cc, -103),
    (0xd1b71758e219652c, -77),
    (0x9c40000000000000, -50),
    (0xe8d4a51000000000, -24),
    (0xad78ebc5ac620000, 3),
    (0x813f3978f8940984, 30),
    (0xc097ce7bc90715b3, 56),
    (0x8f7e32ce7bea5c70, 83),
    (0xd5d238a4abe98068, 109),
    (0x9f4f2726179a2245, 136),
    (0xed63a231d4c4fb27, 162),
    (0xb0de65388cc8ada8, 189),
    (0x83c7088e1aab65db, 216),
    (0xc45d1df942711d9a, 242),
    (0x924d692ca61be758, 269),
    (0xda01ee641a708dea, 295),
    (0xa26da3999aef774a, 322),
    (0xf209787bb47d6b85, 348),
    (0xb454e4a179dd1877, 375),
    (0x865b86925b9bc5c2, 402),
    (0xc83553c5c8965d3d, 428),
    (0x952ab45cfa97a0b3, 455),
    (0xde469fbd99a05fe3, 481),
    (0xa59bc234db398c25, 508),
    (0xf6c69a72a3989f5c, 534),
    (0xb7dcbf5354e9bece, 561),
    (0x88fcf317f22241e2, 588),
    (0xcc20ce9bd35c78a5, 614),
    (0x98165af37b2153df, 641),
    (0xe2a0b5dc971f303a, 667),
    (0xa8d9d1535ce3b396, 694),
    (0xfb9b7cd9a4a7443c, 720),
    (0xbb764c4ca7a44410, 747),
    (0x8bab8eefb6409c1a, 774),
    (0xd01fef10a657842c, 800),
    (0x9b10a4e5e9913129, 827),
    (0xe7109bfba19c0c9d, 853),
    (0xac2820d9623bf429, 880),
    (0x80444b5e7aa7cf85, 907),
    (0xbf21e44003acdd2d, 933),
    (0x8e679c2f5e44ff8f, 960),
    (0xd433179d9c8cb841, 986),
    (0x9e19db92b4e31ba9, 1013),
    (0xeb96bf6ebadf77d9, 1039),
    (0xaf87023b9bf0ee6b, 1066),
];
const FIRST_POWER: i32 = -348;
const STEP_POWERS: i32 = 8;
/// The product of a number and its cached power lands in this binary exponent range.
const EXP_MIN: i32 = -60;
const EXP_MAX: i32 = -32;

/// 10^19 down to 10^0.
const TENS: [u64; 20] = {
    let mut t = [1u64; 20];
    let mut i = 19;
    while i > 0 {
        t[i - 1] = t[i] * 10;
        i -= 1;
    }
    t
};

fn build_fp(d: f64) -> Fp {
    let bits = d.to_bits();
    let f = bits & FRAC_MASK;
    let e = ((bits & EXP_MASK) >> 52) as i32;
    if e != 0 {
        Fp { f: f + HIDDEN_BIT, e: e - EXP_BIAS }
    } else {
        Fp { f, e: 1 - EXP_BIAS }
    }
}

fn normalize(mut fp: Fp) -> Fp {
    while fp.f & HIDDEN_BIT == 0 {
        fp.f <<= 1;
        fp.e -= 1;
    }
    Fp { f: fp.f << 11, e: fp.e - 11 }
}

/// The boundaries m- and m+ halfway to the neighbouring doubles, with m+ normalized and m-
/// brought to its exponent.
fn boundaries(fp: Fp) -> (Fp, Fp) {
    let mut upper = Fp { f: (fp.f << 1) + 1, e: fp.e - 1 };
    while upper.f & (HIDDEN_BIT << 1) == 0 {
        upper.f <<= 1;
        upper.e -= 1;
    }
    upper.f <<= 10;
    upper.e -= 10;
    let l_shift = if fp.f == HIDDEN_BIT { 2 } else { 1 };
    let mut lower = Fp { f: (fp.f << l_shift) - 1, e: fp.e - l_shift };
    lower.f <<= lower.e - upper.e;
    lower.e = upper.e;
    (lower, upper)
}

/// The rounded upper 64 bits of the 128-bit product.
fn multiply(a: Fp, b: Fp) -> Fp {
    let product = (a.f as u128) * (b.f as u128);
    // Round on bit 63 of the low half (the paper's "round up").
    let f = ((product + (1u128 << 63)) >> 64) as u64;
    Fp { f, e: a.e + b.e + 64 }
}

/// The cached power c = 10^k such that `e` + c's exponent + 64 falls in [EXP_MIN, EXP_MAX].
fn cached_power(e: i32) -> (Fp, i32) {
    const ONE_LOG_TEN: f64 = 0.30102999566398114;
    let approx = (-(e + POWERS.len() as i32) as f64 * ONE_LOG_TEN) as i32;
    let mut idx = ((approx - FIRST_POWER) / STEP_POWERS) as usize;
    loop {
        let current = e + POWERS[idx].1 + 64;
        if current < EXP_MIN {
            idx += 1;
        } else if current > EXP_MAX {
            idx -= 1;
        } else {
            let (f, e) = POWERS[idx];
            return (Fp { f, e }, FIRST_POWER + idx as i32 * STEP_POWERS);
        }
    }
}

/// Move the last digit down while that brings the number closer to the exact value and stays
/// inside the rounding interval (Grisu's "weed" step, without the safety check of Grisu3).
fn round_digit(digits: &mut [u8], delta: u64, mut rem: u64, kappa: u64, frac: u64) {
    let last = digits.len() - 1;
    while rem < frac
        && delta.wrapping_sub(rem) >= kappa
        && (rem.wrapping_add(kappa) < frac || frac.wrapping_sub(rem) > rem.wrapping_add(kappa).wrapping_sub(frac))
    {
        digits[last] -= 1;
        rem = rem.wrapping_add(kappa);
    }
}

/// Grisu2's digit generation: the digits of `upper` until what is left is within `delta`;
/// `k` gets the decimal exponent of the last digit added.
fn generate_digits(w: Fp, upper: Fp, lower: Fp, digits: &mut [u8; 20], k: &mut i32) -> usize {
    let wfrac = upper.f.wrapping_sub(w.f);
    let mut delta = upper.f.wrapping_sub(lower.f);
    let shift = (-upper.e) as u32;
    let one = 1u64 << shift;
    let mut part1 = upper.f >> shift;
    let mut part2 = upper.f & (one - 1);
    let mut n = 0;
    // The integral part, against 10^9 down to 10^0.
    let mut kappa = 10;
    while kappa > 0 {
        let div = TENS[20 - kappa as usize];
        let digit = part1 / div;
        if digit != 0 || n != 0 {
            digits[n] = b'0' + digit as u8;
            n += 1;
        }
        part1 -= digit * div;
        kappa -= 1;
        let rest = (part1 << shift) + part2;
        if rest <= delta {
            *k += kappa;
            round_digit(&mut digits[..n], delta, rest, div << shift, wfrac);
            return n;
        }
    }
    // The fractional part, one digit at a time.
    let mut unit = 18;
    loop {
        part2 = part2.wrapping_mul(10);
        delta = delta.wrapping_mul(10);
        kappa -= 1;
        let digit = part2 >> shift;
        if digit != 0 || n != 0 {
            digits[n] = b'0' + digit as u8;
            n += 1;
        }
        part2 &= one - 1;
        if part2 < delta {
            *k += kappa;
            round_digit(&mut digits[..n], delta, part2, one, wfrac.wrapping_mul(TENS[unit]));
            return n;
        }
        unit -= 1;
    }
}

/// The digits of a finite, non-zero `d` and the decimal exponent of the last one.
fn grisu2(d: f64, digits: &mut [u8; 20]) -> (usize, i32) {
    let w = build_fp(d);
    let (lower, upper) = boundaries(w);
    let w = normalize(w);
    let (cached, k) = cached_power(upper.e);
    let w = multiply(w, cached);
    let mut upper = multiply(upper, cached);
    let mut lower = multiply(lower, cached);
    lower.f += 1;
    upper.f -= 1;
    let mut exp10 = -k;
    let n = generate_digits(w, upper, lower, digits, &mut exp10);
    (n, exp10)
}

/// fpconv's layout of `digits` × 10^`k`: a plain integer, a plain decimal, or scientific.
fn emit_digits(digits: &[u8], k: i32, neg: bool, out: &mut Vec<u8>) {
    let nd = digits.len() as i32;
    let mut exp = (k + nd - 1).abs();
    if k >= 0 && exp < nd + 7 {
        out.extend_from_slice(digits);
        out.extend(std::iter::repeat_n(b'0', k as usize));
        return;
    }
    if k < 0 && (k > -7 || exp < 4) {
        let offset = nd - k.abs();
        if offset <= 0 {
            out.extend_from_slice(b"0.");
            out.extend(std::iter::repeat_n(b'0', (-offset) as usize));
            out.extend_from_slice(digits);
        } else {
            out.extend_from_slice(&digits[..offset as usize]);
            out.push(b'.');
            out.extend_from_slice(&digits[offset as usize..]);
        }
        return;
    }
    let nd = nd.min(18 - neg as i32);
    out.push(digits[0]);
    if nd > 1 {
        out.push(b'.');
        out.extend_from_slice(&digits[1..nd as usize]);
    }
    out.push(b'e');
    out.push(if k + nd - 1 < 0 { b'-' } else { b'+' });
    let mut cent = 0;
    if exp > 99 {
        cent = exp / 100;
        out.push(b'0' + cent as u8);
        exp -= cent * 100;
    }
    if exp > 9 {
        let dec = exp / 10;
        out.push(b'0' + dec as u8);
        exp -= dec * 10;
    } else if cent != 0 {
        out.push(b'0');
    }
    out.push(b'0' + (exp % 10) as u8);
}

/// Redis 7.2's fpconv_dtoa: `-` for a negative sign bit, then `0`, `nan`, `inf`, or Grisu2's
/// digits laid out by [`emit_digits`].
pub fn fpconv_dtoa(d: f64, out: &mut Vec<u8>) {
    let bits = d.to_bits();
    let neg = bits & SIGN_MASK != 0;
    if neg {
        out.push(b'-');
    }
    if d == 0.0 {
        out.push(b'0');
        return;
    }
    if bits & EXP_MASK == EXP_MASK {
        out.extend_from_slice(if bits & FRAC_MASK != 0 { b"nan" } else { b"inf" });
        return;
    }
    let mut digits = [0u8; 20];
    let (n, k) = grisu2(d, &mut digits);
    emit_digits(&digits[..n], k, neg, out);
}

/// Redis 7.2's d2string (addReplyDouble, sorted-set listpack scores): `nan`, `inf`/`-inf`,
/// `0`/`-0`, an integer when the value is one within ±2^62, else [`fpconv_dtoa`].
pub fn d2string(d: f64, out: &mut Vec<u8>) {
    if d.is_nan() {
        out.extend_from_slice(b"nan");
    } else if d.is_infinite() {
        out.extend_from_slice(if d < 0.0 { b"-inf" } else { b"inf" });
    } else if d == 0.0 {
        out.extend_from_slice(if d.is_sign_negative() { b"-0" } else { b"0" });
    } else {
        lua_number_arg(d, out);
    }
}

/// A Lua number given to `redis.call` as an argument (Redis 7.2.5's luaArgsToRedisArgv, #13115):
/// an integer when it is one within ±2^62 (`-0` too: `0`), else [`fpconv_dtoa`]. 7.2.0-7.2.4
/// wrote `1e+09` for 1000000000, which integer arguments (HINCRBY, EXPIRE...) then refused.
/// [`d2string`] ends the same way, after its own cases.
pub fn lua_number_arg(d: f64, out: &mut Vec<u8>) {
    match double_to_i64(d) {
        Some(n) => out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes()),
        None => fpconv_dtoa(d, out),
    }
}

/// Redis's double2ll: the value as an integer when it is one and within ±(2^62).
fn double_to_i64(d: f64) -> Option<i64> {
    let lim = (i64::MAX / 2) as f64;
    if !(-lim..=lim).contains(&d) {
        return None;
    }
    let n = d as i64;
    (n as f64 == d).then_some(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d2s(d: f64) -> String {
        let mut v = Vec::new();
        d2string(d, &mut v);
        String::from_utf8(v).unwrap()
    }

    fn fp(d: f64) -> String {
        let mut v = Vec::new();
        fpconv_dtoa(d, &mut v);
        String::from_utf8(v).unwrap()
    }

    #[test]
    fn matches_redis_7_2() {
        // Replies of Valkey 9.1 (Redis 7.2.4's formatting) to ZADD z <x> m; ZSCORE z m.
        let cases: &[(f64, &str)] = &[
            (0.1, "0.1"),
            (-48.986, "-48.986"),
            (-81.0, "-81"),
            (-22038238.595773187, "-2.2038238595773187e+7"),
            (-5.674664918136216e+64, "-5.674664918136216e+64"),
            (9.822759224672002e+16, "98227592246720016"),
            (-22.09436, "-22.094360000000002"),
            (473.56973053822, "473.56973053822003"),
            (6.198476455269489e+17, "619847645526948864"),
            (1.5, "1.5"),
            (1e100, "1e+100"),
            (1e-7, "1e-7"),
            (0.000123, "0.000123"),
            (1.7976931348623157e308, "1.7976931348623157e+308"),
            (5e-324, "5e-324"),
            (f64::INFINITY, "inf"),
            (f64::NEG_INFINITY, "-inf"),
            (f64::NAN, "nan"),
            (-0.0, "-0"),
        ];
        for &(d, want) in cases {
            assert_eq!(d2s(d), want, "{d:e}");
        }
        assert_eq!(fp(1e16), "1e+16");
        // Lua numbers as redis.call arguments: Redis 7.2.5 (#13115) writes integers as such.
        let arg = |d: f64| {
            let mut v = Vec::new();
            lua_number_arg(d, &mut v);
            String::from_utf8(v).unwrap()
        };
        assert_eq!(arg(200000000.0), "200000000");
        assert_eq!(arg(1e16), "10000000000000000");
        assert_eq!(arg(-0.0), "0");
        assert_eq!(arg(0.1), "0.1");
        assert_eq!(arg(1e19), "1e+19");
        assert_eq!(fp(123.0), "123");
        assert_eq!(fp(-f64::NAN), "-nan");
    }

    #[test]
    fn round_trips() {
        let mut x = 0x1234_5678_9abc_def0u64;
        for _ in 0..100_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let d = f64::from_bits(x);
            if !d.is_finite() {
                continue;
            }
            let s = d2s(d);
            assert_eq!(s.parse::<f64>().unwrap(), d, "{s}");
        }
    }
}
