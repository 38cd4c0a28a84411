//! BITFIELD integers (Redis's bitops.c): signed and unsigned integers of 1 to 64 bits at any
//! bit offset of a string (bit 0 = most significant bit of the first byte, big-endian inside
//! a field), and the overflow rules of INCRBY/SET (WRAP, SAT, FAIL).

/// A field type: `i1`..`i64` or `u1`..`u63`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FieldType {
    pub signed: bool,
    pub bits: u32,
}

impl FieldType {
    /// Parse `i<bits>` / `u<bits>` (u64 is refused: its values do not fit a RESP integer).
    pub fn parse(arg: &[u8]) -> Option<FieldType> {
        let signed = match arg.first()? {
            b'i' => true,
            b'u' => false,
            _ => return None,
        };
        // Redis reads the width as a C string: it ends at a NUL byte.
        let width = crate::util::bytetext::c_str(&arg[1..]);
        let bits = crate::util::num::parse_i64(width)?;
        if bits < 1 || bits > if signed { 64 } else { 63 } {
            return None;
        }
        Some(FieldType { signed, bits: bits as u32 })
    }
}

/// Overflow behaviour of SET and INCRBY.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Overflow {
    Wrap,
    Sat,
    Fail,
}

/// Read `bits` bits at bit `offset` as an unsigned integer; bits past the end of `p` are 0.
pub fn get_unsigned(p: &[u8], offset: u64, bits: u32) -> u64 {
    let mut v = 0u64;
    for j in 0..u64::from(bits) {
        let off = offset + j;
        let byte = p.get((off >> 3) as usize).copied().unwrap_or(0);
        v = (v << 1) | u64::from((byte >> (7 - (off & 7))) & 1);
    }
    v
}

/// Read a two's complement integer of `bits` bits.
pub fn get_signed(p: &[u8], offset: u64, bits: u32) -> i64 {
    let mut v = get_unsigned(p, offset, bits) as i64;
    if bits < 64 && v & (1i64 << (bits - 1)) != 0 {
        v |= -1i64 << bits;
    }
    v
}

/// Write the low `bits` bits of `value` at bit `offset`; `p` must be long enough.
pub fn set_unsigned(p: &mut [u8], offset: u64, bits: u32, value: u64) {
    for j in 0..u64::from(bits) {
        let off = offset + j;
        let bit = (value >> (u64::from(bits) - 1 - j)) & 1;
        let b = &mut p[(off >> 3) as usize];
        let shift = 7 - (off & 7);
        *b = (*b & !(1 << shift)) | ((bit as u8) << shift);
    }
}

/// The outcome of an overflow check: `None` when `value + incr` fits, otherwise the value to
/// store under WRAP or SAT (`None` inside for FAIL, which stores nothing).
pub type Checked<T> = Option<Option<T>>;

/// Redis's checkUnsignedBitfieldOverflow: does `value + incr` fit in `bits` unsigned bits?
pub fn check_unsigned(value: u64, incr: i64, bits: u32, ow: Overflow) -> Checked<u64> {
    let max: u64 = if bits == 64 { u64::MAX } else { (1u64 << bits) - 1 };
    let maxincr = max.wrapping_sub(value) as i64;
    let minincr = 0u64.wrapping_sub(value) as i64;
    let wrapped = || {
        let mask = if bits >= 64 { 0 } else { u64::MAX << bits };
        value.wrapping_add(incr as u64) & !mask
    };
    if value > max || (incr > 0 && incr > maxincr) {
        Some(match ow {
            Overflow::Wrap => Some(wrapped()),
            Overflow::Sat => Some(max),
            Overflow::Fail => None,
        })
    } else if incr < 0 && incr < minincr {
        Some(match ow {
            Overflow::Wrap => Some(wrapped()),
            Overflow::Sat => Some(0),
            Overflow::Fail => None,
        })
    } else {
        None
    }
}

/// Redis's checkSignedBitfieldOverflow: does `value + incr` fit in `bits` signed bits?
pub fn check_signed(value: i64, incr: i64, bits: u32, ow: Overflow) -> Checked<i64> {
    let max: i64 = if bits == 64 { i64::MAX } else { (1i64 << (bits - 1)) - 1 };
    let min = -max - 1;
    let maxincr = (max as u64).wrapping_sub(value as u64) as i64;
    let minincr = min.wrapping_sub(value);
    let wrapped = || {
        let mut c = (value as u64).wrapping_add(incr as u64);
        if bits < 64 {
            let mask = u64::MAX << bits;
            if c & (1u64 << (bits - 1)) != 0 {
                c |= mask;
            } else {
                c &= !mask;
            }
        }
        c as i64
    };
    if value > max || (bits != 64 && incr > maxincr) || (value >= 0 && incr > 0 && incr > maxincr) {
        Some(match ow {
            Overflow::Wrap => Some(wrapped()),
            Overflow::Sat => Some(max),
            Overflow::Fail => None,
        })
    } else if value < min || (bits != 64 && incr < minincr) || (value < 0 && incr < 0 && incr < minincr) {
        Some(match ow {
            Overflow::Wrap => Some(wrapped()),
            Overflow::Sat => Some(min),
            Overflow::Fail => None,
        })
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_parse_like_redis() {
        assert_eq!(FieldType::parse(b"i64"), Some(FieldType { signed: true, bits: 64 }));
        assert_eq!(FieldType::parse(b"u63"), Some(FieldType { signed: false, bits: 63 }));
        for bad in [&b"u64"[..], b"i65", b"i0", b"u", b"x8", b"", b"I8", b"i+8x"] {
            assert_eq!(FieldType::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn fields_round_trip_at_odd_offsets() {
        // The example of bitops.c: u5 = 23 at offset 7 gives 00000001 01110000.
        let mut p = vec![0u8; 2];
        set_unsigned(&mut p, 7, 5, 23);
        assert_eq!(p, [0b0000_0001, 0b0111_0000]);
        assert_eq!(get_unsigned(&p, 7, 5), 23);
        let mut p = vec![0u8; 10];
        set_unsigned(&mut p, 3, 64, (-5i64) as u64);
        assert_eq!(get_signed(&p, 3, 64), -5);
        set_unsigned(&mut p, 13, 4, (-3i64) as u64);
        assert_eq!(get_signed(&p, 13, 4), -3);
        assert_eq!(get_unsigned(&p, 13, 4), 13);
        // Past the end reads zeros.
        assert_eq!(get_unsigned(&[0xff], 4, 8), 0xf0);
    }

    #[test]
    fn overflow_rules() {
        assert_eq!(check_unsigned(250, 10, 8, Overflow::Wrap), Some(Some(4)));
        assert_eq!(check_unsigned(250, 10, 8, Overflow::Sat), Some(Some(255)));
        assert_eq!(check_unsigned(250, 10, 8, Overflow::Fail), Some(None));
        assert_eq!(check_unsigned(5, -10, 8, Overflow::Sat), Some(Some(0)));
        assert_eq!(check_unsigned(5, -10, 8, Overflow::Wrap), Some(Some(251)));
        assert_eq!(check_unsigned(5, 250, 8, Overflow::Wrap), None);
        assert_eq!(check_unsigned(u64::MAX, 0, 8, Overflow::Wrap), Some(Some(255)));
        assert_eq!(check_signed(120, 10, 8, Overflow::Wrap), Some(Some(-126)));
        assert_eq!(check_signed(120, 10, 8, Overflow::Sat), Some(Some(127)));
        assert_eq!(check_signed(-120, -10, 8, Overflow::Sat), Some(Some(-128)));
        assert_eq!(check_signed(-120, -10, 8, Overflow::Wrap), Some(Some(126)));
        assert_eq!(check_signed(i64::MAX, 1, 64, Overflow::Wrap), Some(Some(i64::MIN)));
        assert_eq!(check_signed(i64::MIN, -1, 64, Overflow::Sat), Some(Some(i64::MIN)));
        assert_eq!(check_signed(-1, i64::MAX, 64, Overflow::Fail), None);
        assert_eq!(check_signed(300, 0, 8, Overflow::Wrap), Some(Some(44)));
    }
}
