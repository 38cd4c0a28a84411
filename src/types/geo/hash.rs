//! Geohash cells (as Redis's geohash.c): a cell of `step` bits per axis, latitude and
//! longitude bits interleaved (longitude in the odd positions), encoding and decoding against
//! a coordinate range, and the eight neighbouring cells. Redis's own ranges are longitude
//! -180..180 and latitude -85.05112878..85.05112878 (the Web Mercator limits); GEOHASH strings
//! use the standard -90..90 latitude range.

/// Finest cell size: 26 bits per axis, 52 bits in all (what a sorted set score holds exactly).
pub const STEP_MAX: u8 = 26;
pub const LAT_MIN: f64 = -85.05112878;
pub const LAT_MAX: f64 = 85.05112878;
pub const LONG_MIN: f64 = -180.0;
pub const LONG_MAX: f64 = 180.0;

/// A coordinate interval.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Range {
    pub min: f64,
    pub max: f64,
}

impl Range {
    fn is_zero(&self) -> bool {
        self.min == 0.0 && self.max == 0.0
    }
}

/// Longitude and latitude ranges of Redis's geo encoding.
pub const WGS84_LONG: Range = Range { min: LONG_MIN, max: LONG_MAX };
pub const WGS84_LAT: Range = Range { min: LAT_MIN, max: LAT_MAX };

/// A cell: its interleaved bits and its precision in bits per axis. The all-zero value means
/// "no cell" (a neighbour excluded from a search).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HashBits {
    pub bits: u64,
    pub step: u8,
}

impl HashBits {
    pub const ZERO: HashBits = HashBits { bits: 0, step: 0 };

    pub fn is_zero(&self) -> bool {
        self.bits == 0 && self.step == 0
    }

    /// The cell's bits left-aligned to 52 bits: the lowest sorted set score inside the cell.
    pub fn align52(&self) -> u64 {
        self.bits << (52 - u32::from(self.step) * 2)
    }
}

/// The area a cell covers.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Area {
    pub hash: HashBits,
    pub longitude: Range,
    pub latitude: Range,
}

/// The eight cells around a cell, at the same precision.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Neighbors {
    pub north: HashBits,
    pub east: HashBits,
    pub west: HashBits,
    pub south: HashBits,
    pub north_east: HashBits,
    pub south_east: HashBits,
    pub north_west: HashBits,
    pub south_west: HashBits,
}

/// Interleave the low 32 bits of `x` (even positions) and `y` (odd positions).
fn interleave64(x: u32, y: u32) -> u64 {
    fn spread(v: u32) -> u64 {
        let mut v = u64::from(v);
        v = (v | (v << 16)) & 0x0000_FFFF_0000_FFFF;
        v = (v | (v << 8)) & 0x00FF_00FF_00FF_00FF;
        v = (v | (v << 4)) & 0x0F0F_0F0F_0F0F_0F0F;
        v = (v | (v << 2)) & 0x3333_3333_3333_3333;
        (v | (v << 1)) & 0x5555_5555_5555_5555
    }
    spread(x) | (spread(y) << 1)
}

/// Undo [`interleave64`]: even bits in the low 32 bits of the result, odd bits in the high.
fn deinterleave64(v: u64) -> u64 {
    fn squash(mut v: u64) -> u64 {
        v &= 0x5555_5555_5555_5555;
        v = (v | (v >> 1)) & 0x3333_3333_3333_3333;
        v = (v | (v >> 2)) & 0x0F0F_0F0F_0F0F_0F0F;
        v = (v | (v >> 4)) & 0x00FF_00FF_00FF_00FF;
        v = (v | (v >> 8)) & 0x0000_FFFF_0000_FFFF;
        (v | (v >> 16)) & 0x0000_0000_FFFF_FFFF
    }
    squash(v) | (squash(v >> 1) << 32)
}

/// The cell of `step` bits per axis holding a point, or None when the point lies outside the
/// Web Mercator limits or the given ranges (Redis's geohashEncode).
pub fn encode(long_range: Range, lat_range: Range, longitude: f64, latitude: f64, step: u8) -> Option<HashBits> {
    if step > 32 || step == 0 || lat_range.is_zero() || long_range.is_zero() {
        return None;
    }
    if !(LONG_MIN..=LONG_MAX).contains(&longitude) || !(LAT_MIN..=LAT_MAX).contains(&latitude) {
        return None;
    }
    if latitude < lat_range.min || latitude > lat_range.max || longitude < long_range.min || longitude > long_range.max
    {
        return None;
    }
    let scale = (1u64 << step) as f64;
    let lat_offset = (latitude - lat_range.min) / (lat_range.max - lat_range.min) * scale;
    let long_offset = (longitude - long_range.min) / (long_range.max - long_range.min) * scale;
    Some(HashBits { bits: interleave64(lat_offset as u32, long_offset as u32), step })
}

/// The area a cell covers (Redis's geohashDecode); None for the zero cell.
pub fn decode(long_range: Range, lat_range: Range, hash: HashBits) -> Option<Area> {
    if hash.is_zero() || lat_range.is_zero() || long_range.is_zero() {
        return None;
    }
    let sep = deinterleave64(hash.bits);
    let lat_scale = lat_range.max - lat_range.min;
    let long_scale = long_range.max - long_range.min;
    let ilato = sep as u32;
    let ilono = (sep >> 32) as u32;
    let div = (1u64 << hash.step) as f64;
    // As in C, `ilato + 1` is 32-bit arithmetic.
    Some(Area {
        hash,
        latitude: Range {
            min: lat_range.min + (f64::from(ilato) / div) * lat_scale,
            max: lat_range.min + (f64::from(ilato.wrapping_add(1)) / div) * lat_scale,
        },
        longitude: Range {
            min: long_range.min + (f64::from(ilono) / div) * long_scale,
            max: long_range.min + (f64::from(ilono.wrapping_add(1)) / div) * long_scale,
        },
    })
}

/// The centre of an area, clamped to the valid coordinates: `[longitude, latitude]`.
pub fn area_center(area: &Area) -> [f64; 2] {
    let lon = ((area.longitude.min + area.longitude.max) / 2.0).clamp(LONG_MIN, LONG_MAX);
    let lat = ((area.latitude.min + area.latitude.max) / 2.0).clamp(LAT_MIN, LAT_MAX);
    [lon, lat]
}

/// C's `(uint64_t)` conversion of a double as x86-64 code compiled by GCC performs it: values
/// out of range (negative, huge, infinite) give the bits the hardware produces rather than
/// saturating as Rust's `as` does. Geo commands decode any sorted set score this way.
pub fn c_double_to_u64(d: f64) -> u64 {
    const TWO63: f64 = (1u64 << 63) as f64;
    // cvttsd2si: truncation, or i64::MIN when the value does not fit (or is NaN).
    fn cvtt(d: f64) -> i64 {
        if (-TWO63..TWO63).contains(&d) {
            d as i64
        } else {
            i64::MIN
        }
    }
    if d < TWO63 {
        cvtt(d) as u64
    } else {
        (cvtt(d - TWO63) as u64) ^ (1u64 << 63)
    }
}

/// The point a sorted set score stands for (Redis's decodeGeohash): `[longitude, latitude]`.
pub fn decode_score(score: f64) -> [f64; 2] {
    let hash = HashBits { bits: c_double_to_u64(score), step: STEP_MAX };
    let area = decode(WGS84_LONG, WGS84_LAT, hash).expect("a step-26 cell is never the zero cell");
    area_center(&area)
}

/// The score of a point: its step-26 cell aligned to 52 bits. None outside the valid range.
pub fn encode_score(longitude: f64, latitude: f64) -> Option<u64> {
    encode(WGS84_LONG, WGS84_LAT, longitude, latitude, STEP_MAX).map(|h| h.align52())
}

/// The standard 11-character geohash of a sorted set score (GEOHASH): the point re-encoded
/// with latitude range -90..90; the 11th character is always `0` (52 bits only).
pub fn geohash_string(score: f64) -> [u8; 11] {
    const ALPHABET: &[u8; 32] = b"0123456789bcdefghjkmnpqrstuvwxyz";
    let [lon, lat] = decode_score(score);
    let std_long = Range { min: -180.0, max: 180.0 };
    let std_lat = Range { min: -90.0, max: 90.0 };
    let bits = encode(std_long, std_lat, lon, lat, 26).map_or(0, |h| h.bits);
    let mut out = [b'0'; 11];
    for (i, c) in out.iter_mut().enumerate().take(10) {
        *c = ALPHABET[((bits >> (52 - (i + 1) * 5)) & 0x1f) as usize];
    }
    out
}

fn move_x(hash: &mut HashBits, d: i8) {
    if d == 0 {
        return;
    }
    let shift = 64 - u32::from(hash.step) * 2;
    let mut x = hash.bits & 0xaaaa_aaaa_aaaa_aaaa;
    let y = hash.bits & 0x5555_5555_5555_5555;
    let zz = 0x5555_5555_5555_5555u64 >> shift;
    if d > 0 {
        x = x.wrapping_add(zz.wrapping_add(1));
    } else {
        x = (x | zz).wrapping_sub(zz.wrapping_add(1));
    }
    x &= 0xaaaa_aaaa_aaaa_aaaau64 >> shift;
    hash.bits = x | y;
}

fn move_y(hash: &mut HashBits, d: i8) {
    if d == 0 {
        return;
    }
    let shift = 64 - u32::from(hash.step) * 2;
    let x = hash.bits & 0xaaaa_aaaa_aaaa_aaaa;
    let mut y = hash.bits & 0x5555_5555_5555_5555;
    let zz = 0xaaaa_aaaa_aaaa_aaaau64 >> shift;
    if d > 0 {
        y = y.wrapping_add(zz.wrapping_add(1));
    } else {
        y = (y | zz).wrapping_sub(zz.wrapping_add(1));
    }
    y &= 0x5555_5555_5555_5555u64 >> shift;
    hash.bits = x | y;
}

/// The eight neighbours of a cell (wrapping around at the edges of the range).
pub fn neighbors(hash: HashBits) -> Neighbors {
    let at = |dx: i8, dy: i8| {
        let mut h = hash;
        move_x(&mut h, dx);
        move_y(&mut h, dy);
        h
    };
    Neighbors {
        east: at(1, 0),
        west: at(-1, 0),
        south: at(0, -1),
        north: at(0, 1),
        north_west: at(-1, 1),
        north_east: at(1, 1),
        south_east: at(1, -1),
        south_west: at(-1, -1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interleaving_round_trips() {
        for (x, y) in [(0u32, 0u32), (1, 0), (0, 1), (0xdead_beef, 0x1234_5678), (u32::MAX, 7)] {
            let v = interleave64(x, y);
            assert_eq!(deinterleave64(v), u64::from(x) | (u64::from(y) << 32));
        }
        assert_eq!(interleave64(1, 0), 1);
        assert_eq!(interleave64(0, 1), 2);
    }

    #[test]
    fn scores_match_redis() {
        // GEOADD Sicily 13.361389 38.115556 "Palermo" 15.087269 37.502669 "Catania" in Redis.
        assert_eq!(encode_score(13.361389, 38.115556), Some(3479099956230698));
        assert_eq!(encode_score(15.087269, 37.502669), Some(3479447370796909));
        // The corner cell overflows each axis by one: what Redis stores too.
        assert_eq!(encode_score(180.0, 85.05112878), Some(13510798882111488));
        assert_eq!(encode_score(-180.0, -85.05112878), Some(0));
        assert_eq!(encode_score(180.1, 0.0), None);
        assert_eq!(encode_score(0.0, 85.06), None);
        assert_eq!(&geohash_string(3479099956230698.0), b"sqc8b49rny0");
        assert_eq!(&geohash_string(3479447370796909.0), b"sqdtr74hyu0");
    }

    #[test]
    fn c_conversion_of_odd_scores() {
        assert_eq!(c_double_to_u64(-1.0), u64::MAX);
        assert_eq!(c_double_to_u64(-1.5), u64::MAX);
        assert_eq!(c_double_to_u64(f64::INFINITY), 0);
        assert_eq!(c_double_to_u64(f64::NEG_INFINITY), 1 << 63);
        assert_eq!(c_double_to_u64(1e30), 0);
        assert_eq!(c_double_to_u64(9.3e18), 0x8110_3cb9_fb22_0000);
        assert_eq!(c_double_to_u64(4503599627370496.0), 1 << 52);
    }

    #[test]
    fn neighbours_are_adjacent_cells() {
        let h = encode(WGS84_LONG, WGS84_LAT, 10.0, 10.0, 10).unwrap();
        let n = neighbors(h);
        let a = decode(WGS84_LONG, WGS84_LAT, h).unwrap();
        let e = decode(WGS84_LONG, WGS84_LAT, n.east).unwrap();
        let no = decode(WGS84_LONG, WGS84_LAT, n.north).unwrap();
        assert_eq!(e.longitude.min, a.longitude.max);
        assert_eq!(e.latitude, a.latitude);
        assert_eq!(no.latitude.min, a.latitude.max);
        assert_eq!(no.longitude, a.longitude);
    }
}
